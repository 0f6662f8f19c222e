#!/usr/bin/env bash
# Builds the static release binary for this host and prints its path.
#   scripts/static-build.sh [cargo build options...]
# `+crt-static` with an explicit `--target` applies to the binary alone,
# never to build scripts or proc macros, on x86_64 and aarch64 alike.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
host="$(rustc -vV | sed -n 's/^host: //p')"
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
    cargo build --release --locked --quiet --target "$host" "$@" >&2
echo "$PWD/target/$host/release/process-guardian"

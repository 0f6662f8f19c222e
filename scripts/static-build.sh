#!/usr/bin/env bash
# Builds the static release binary for this host and prints its path.
#   scripts/static-build.sh [cargo build options...]
# `+crt-static` with an explicit `--target` applies to the binary alone,
# never to build scripts or proc macros, on x86_64 and aarch64 alike.
#
# A static executable at a fixed address (relocation-model=static, not
# static-PIE): nothing to relocate at start-up, so the read-only data stays
# shared between all supervisors instead of becoming a private copy in each
# (about 28 KiB less private memory a supervisor). What it trades: the
# binary's own code and data are not moved by ASLR (the stack, heap, mmap
# areas and vDSO still are), which makes a memory-safety bug in it easier to
# exploit; it is Rust with unsafe code only in proc.rs and launch.rs.
# PG_PIE=1 builds a static-PIE instead.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
host="$(rustc -vV | sed -n 's/^host: //p')"
model="-C relocation-model=static"
[ "${PG_PIE:-0}" = 1 ] && model=""
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static $model" \
    cargo build --release --locked --quiet --target "$host" "$@" >&2
echo "${CARGO_TARGET_DIR:-$PWD/target}/$host/release/process-guardian"

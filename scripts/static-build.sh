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
#
# On x86_64 Linux, where rustc links with its own lld, the functions our
# commands run (scripts/hot-symbols.txt, made by scripts/hot-symbols.sh;
# the supervisor shares their start-up) are laid out together: fewer code pages to fault
# in at each exec. A build with the list that fails is done again without
# it (a linker other than lld). PG_NO_SYMBOL_ORDER=1 leaves it out.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
host="$(rustc -vV | sed -n 's/^host: //p')"
model="-C relocation-model=static"
[ "${PG_PIE:-0}" = 1 ] && model=""
flags="${RUSTFLAGS:-} -C target-feature=+crt-static $model"
build() {
    RUSTFLAGS="$1" cargo build --release --locked --quiet --target "$host" "${@:2}" >&2
}
order="$PWD/scripts/hot-symbols.txt"
if [ "$host" = x86_64-unknown-linux-gnu ] && [ -f "$order" ] && [ "${PG_NO_SYMBOL_ORDER:-0}" != 1 ]; then
    ordered="$flags -C link-arg=-Wl,--symbol-ordering-file=$order -C link-arg=-Wl,--no-warn-symbol-ordering"
    if ! build "$ordered" "$@" 2>/dev/null; then
        echo "static-build: the build with a symbol order failed (a linker other than lld?); building without it" >&2
        build "$flags" "$@"
    fi
else
    build "$flags" "$@"
fi
echo "${CARGO_TARGET_DIR:-$PWD/target}/$host/release/process-guardian"

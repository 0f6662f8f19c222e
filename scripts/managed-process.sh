#!/usr/bin/env bash
# The original shell interface, kept working: every argument goes to the
# process-guardian binary, so the documented usage works as written:
#   bash scripts/managed-process.sh register my-bot "python3 bot.py" 480
#   bash scripts/managed-process.sh start my-bot
#   bash scripts/managed-process.sh status
# The binary is $PROCESS_GUARDIAN_BIN, else process-guardian on PATH, else
# this repository's target/release (or target/debug) build.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${PROCESS_GUARDIAN_BIN:-}"
if [ -z "$bin" ]; then
    if command -v process-guardian >/dev/null 2>&1; then
        bin="$(command -v process-guardian)"
    else
        for candidate in "$here"/target/*/release/process-guardian "$here"/target/release/process-guardian \
            "$here"/target/*/debug/process-guardian "$here"/target/debug/process-guardian; do
            if [ -x "$candidate" ]; then
                bin="$candidate"
                break
            fi
        done
    fi
    if [ -z "$bin" ]; then
        echo "managed-process.sh: process-guardian is not installed; run: bash $here/scripts/install.sh" >&2
        exit 1
    fi
fi
exec "$bin" "$@"

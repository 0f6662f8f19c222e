#!/usr/bin/env bash
# Builds the release binary and runs the benchmark (bench/bench.py).
#   scripts/bench.sh                 process-guardian alone
#   scripts/bench.sh --peers         beside supervisord, pm2, runit and s6 where installed
#   scripts/bench.sh --peers --write-docs   and rewrite docs/BENCHMARKS.md
# It reports; it never fails because the machine is slow.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bin="$(scripts/static-build.sh)"
exec python3 bench/bench.py --bin "$bin" "$@"

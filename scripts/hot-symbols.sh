#!/usr/bin/env bash
# Regenerates scripts/hot-symbols.txt: the functions that `status` and
# `healthcheck` of 100, `start` and `stop` run, most instructions first, as
# callgrind counts them in an unstripped build of the release profile (the
# supervisor is not in it: run under valgrind it does not exit in time to
# write its profile; the start-up code it shares with the commands is).
# scripts/static-build.sh hands the list to the linker (lld's
# --symbol-ordering-file), which lays
# those functions out together: a process then faults in fewer 64 KiB
# windows of code (a fault costs microseconds here, and every start execs
# two of our processes).
#
# The names are mangled with a hash that depends on the cargo profile and
# stays while a function's path and signature do; a renamed or new function
# is laid out after the list until this is run again. Needs valgrind.
#   scripts/hot-symbols.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v valgrind >/dev/null || { echo "needs valgrind: apt-get install -y valgrind" >&2; exit 1; }
target="$(mktemp -d /tmp/pg-hot-target.XXXXXX)"
work="$(mktemp -d /tmp/pg-hot.XXXXXX)"
bin=""
cleanup() {
    for ws in "$work/many" "$work/one"; do
        [ -n "$bin" ] && { PROCESS_GUARDIAN_WORKSPACE="$ws" "$bin" stop --all >/dev/null 2>&1 || true; }
    done
    rm -rf "$work" "$target"
}
trap cleanup EXIT
bin="$(CARGO_PROFILE_RELEASE_STRIP=false CARGO_TARGET_DIR="$target" PG_NO_SYMBOL_ORDER=1 scripts/static-build.sh)"
export PROCESS_GUARDIAN_ALERT_DIR="$work/alerts"
mkdir -p "$work/many" "$work/one" "$PROCESS_GUARDIAN_ALERT_DIR"
cg() { valgrind --tool=callgrind --demangle=no --callgrind-out-file="$work/cg.%p.out" "$@" >/dev/null 2>&1; }

export PROCESS_GUARDIAN_WORKSPACE="$work/many"
for i in $(seq 0 99); do "$bin" register "p$i" "sleep $((100000 + i))" >/dev/null; done
for i in $(seq 0 99); do "$bin" start "p$i" >/dev/null; done
cg "$bin" status --json
cg "$bin" healthcheck
"$bin" stop --all >/dev/null

# `start` and `stop` of one, in a workspace of its own.
export PROCESS_GUARDIAN_WORKSPACE="$work/one"
"$bin" register s "sleep 100000" >/dev/null
cg "$bin" start s
cg "$bin" stop s

python3 - "$work" scripts/hot-symbols.txt <<'EOF'
import collections, glob, re, sys
work, out = sys.argv[1], sys.argv[2]
cost = collections.Counter()
for path in glob.glob(f"{work}/cg.*.out"):
    names, current = {}, None
    for line in open(path, errors="replace"):
        m = re.match(r"^(c?fn)=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
        if m:
            kind, ident, name = m.groups()
            if name:
                names[ident] = name
            if kind == "fn":
                current = names.get(ident)
        elif current and re.match(r"^[0-9+-]", line):
            fields = line.split()
            if len(fields) >= 2 and fields[1].isdigit():
                cost[current] += int(fields[1])
symbols = [n for n, _ in cost.most_common() if re.match(r"^[A-Za-z_.$][\w.$]*$", n)]
with open(out, "w") as f:
    f.write("\n".join(symbols) + "\n")
print(f"{out}: {len(symbols)} functions")
EOF
# Cargo does not track the list: relink with it.
touch src/main.rs

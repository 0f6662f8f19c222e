#!/usr/bin/env bash
# Tries every bad input we know of against the binary in a scratch workspace
# and prints a Markdown table of what the user gets (docs/RELIABILITY.md).
#   bench/bad-inputs.sh [BINARY]
set -u
B="${1:-$(cd "$(dirname "$0")/.." && pwd)/target/debug/process-guardian}"
ws="$(mktemp -d)"
trap 'rm -rf "$ws"' EXIT
cd "$ws" || exit 1
export PROCESS_GUARDIAN_WORKSPACE="$ws" PROCESS_GUARDIAN_ALERT_DIR="$ws/alerts"
row() {
    local desc="$1"; shift
    local err code
    err=$("$@" 2>&1 >/dev/null | head -2 | tr '\n' ' ' | sed 's/|/\\|/g; s/  */ /g')
    "$@" >/dev/null 2>&1; code=$?
    printf '| %s | `%s` | %s | %s |\n' "$desc" "$(printf '%s ' "${@:2}" | sed 's/|/\\|/g; s/ $//')" "$code" "${err:-(nothing; see the note)}"
}
echo "| bad input | command | exit | what the user reads (stderr) |"
echo "| --- | --- | --- | --- |"
row "name with a path" "$B" register ../evil "sleep 1"
row "empty name" "$B" register "" "sleep 1"
row "name with a space" "$B" register "a b" "sleep 1"
row "name with a slash" "$B" register a/b "sleep 1"
row "65-character name" "$B" register "$(printf 'x%.0s' $(seq 65))" "sleep 1"
row "empty command" "$B" register x "  "
row "negative duration" "$B" register x "sleep 1" -5
row "duration not a number" "$B" register x "sleep 1" soon
row "negative cooldown" "$B" register x "sleep 1" --restart-cooldown -1
row "unknown stop signal" "$B" register x "sleep 1" --stop-signal NOPE
row "missing cwd" "$B" register x "sleep 1" --cwd /no/such/dir
row "env pair without =" "$B" register x "sleep 1" --env NOEQUALS
row "env key starting with a digit" "$B" register x "sleep 1" --env 1X=y
row "zero log size" "$B" register x "sleep 1" --log-max-bytes 0
row "stop timeout of 1e20 s" "$B" register x "sleep 1" --stop-timeout 1e20
row "log_keep of 2^32-1" "$B" register x "sleep 1" --log-keep 4294967295
row "stale-after of 1e20 min" "$B" register x "sleep 1" --stale-after 1e20
row "stop --timeout of 1e20 s" "$B" stop ghost --timeout 1e20
row "the healthcheck's own name" "$B" register healthcheck "sleep 1"
row "run without a program" "$B" run x
row "unknown name" "$B" start ghost
row "unknown subcommand" "$B" frobnicate
row "negative stop timeout" "$B" stop ghost --timeout -1
row "negative --wait" "$B" start ghost --wait -1
"$B" register typo "definitely-not-a-program --flag" >/dev/null
row "program not found" "$B" start typo
printf 'echo hi\n' > noexec.sh; chmod 644 noexec.sh; "$B" register noexec ./noexec.sh >/dev/null
row "program not executable" "$B" start noexec
mkdir gone; "$B" register nodir "sleep 100" --cwd gone >/dev/null; rmdir gone
row "cwd removed after register" "$B" start nodir
cp .process-registry.json good.json
head -c 40 good.json > .process-registry.json
row "truncated registry" "$B" status
row "truncated registry, on a write" "$B" register y "sleep 1"
echo '[1,2]' > .process-registry.json
row "registry not an object" "$B" status
echo '{"a": {"duration_min": 5}}' > .process-registry.json
row "entry without a command" "$B" start a
echo '{"a": {"command": "sleep 1", "max_restarts": -3}}' > .process-registry.json
row "entry with a negative count" "$B" start a
echo '{"a": {"command": "sleep 1", "stop_timeout_s": 1e20}, "b": {"command": "sleep 1"}}' > .process-registry.json
row "hand-written stop timeout of 1e20 s" "$B" start a
echo '{"a": {"command": "x"},' > .process-registry.json; echo ' "a": {"command": "y"}}' >> .process-registry.json
row "a key twice" "$B" status
printf '{"a": {"command": "\xff"}}' > .process-registry.json
row "invalid UTF-8" "$B" status
cp good.json .process-registry.json
chmod 666 .process-registry.json
row "registry writable by others" "$B" status
chmod 600 .process-registry.json
chown 65534 .process-registry.json 2>/dev/null && row "registry owned by another user" "$B" status
chown 0 .process-registry.json 2>/dev/null
echo 'garbage' > .process-guardian/run/typo.json
row "corrupt state file" "$B" status typo
row "workspace missing" "$B" --workspace /no/such/ws status

#!/usr/bin/env bash
# Installs process-guardian: builds and installs the binary, creates the
# registry, and installs the cron lines that run the healthcheck. Running it
# again changes nothing more.
#
#   bash scripts/install.sh [--prefix DIR] [--workspace DIR]
#   bash scripts/install.sh --uninstall [--workspace DIR] [--remove-binary]
#
# --prefix DIR     install to DIR/bin (default: cargo's bin directory, ~/.cargo/bin)
# --workspace DIR  where .process-registry.json lives (default:
#                  $PROCESS_GUARDIAN_WORKSPACE, else $HOME)
# --uninstall      remove this workspace's cron lines; the binary, registry
#                  and logs stay unless --remove-binary is given too
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
prefix=""
workspace="${PROCESS_GUARDIAN_WORKSPACE:-${HOME:-}}"
uninstall=0
remove_binary=0
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) prefix="${2:?--prefix needs a directory}"; shift 2 ;;
        --workspace) workspace="${2:?--workspace needs a directory}"; shift 2 ;;
        --uninstall) uninstall=1; shift ;;
        --remove-binary) remove_binary=1; shift ;;
        -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
if [ -z "$workspace" ]; then
    echo "install.sh: no workspace: pass --workspace DIR or set HOME" >&2
    exit 2
fi
mkdir -p "$workspace"
workspace="$(cd "$workspace" && pwd)"

if [ -n "$prefix" ]; then
    mkdir -p "$prefix"
    prefix="$(cd "$prefix" && pwd)"
    bin="$prefix/bin/process-guardian"
else
    bin="${CARGO_HOME:-$HOME/.cargo}/bin/process-guardian"
fi

if [ "$uninstall" = 1 ]; then
    if [ -x "$bin" ]; then
        "$bin" --workspace "$workspace" cron uninstall
    elif command -v process-guardian >/dev/null 2>&1; then
        process-guardian --workspace "$workspace" cron uninstall
    fi
    if [ "$remove_binary" = 1 ] && [ -e "$bin" ]; then
        rm -f "$bin"
        echo "removed $bin"
    fi
    exit 0
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "install.sh: cargo not found; install the Rust toolchain first (https://rustup.rs)" >&2
    exit 1
fi
if ! command -v crontab >/dev/null 2>&1; then
    echo "install.sh: crontab not found; install cron (Debian/Ubuntu: apt-get install cron)" >&2
    exit 1
fi

echo "building and installing process-guardian to $(dirname "$bin") ..."
# The static build for this host (see scripts/static-build.sh), copied into
# place through a temp file and a rename, so a running copy is never torn.
built="$("$repo/scripts/static-build.sh")"
mkdir -p "$(dirname "$bin")"
install -m 0755 "$built" "$bin.new.$$"
mv -f "$bin.new.$$" "$bin"

registry="$workspace/.process-registry.json"
if [ ! -e "$registry" ]; then
    (umask 077 && printf '{}\n' > "$registry")
    echo "created $registry"
fi

"$bin" --workspace "$workspace" cron install

cat <<TXT

process-guardian is installed: $bin
workspace: $workspace

  process-guardian register my-bot "python3 bot.py" 480   # define it once
  process-guardian start my-bot                           # detached, supervised
  process-guardian status                                 # what runs, what died
  process-guardian logs my-bot -f                         # its output

Alerts land in ${PROCESS_GUARDIAN_ALERT_DIR:-/tmp}/process_monitor_alert.flag and .txt.
TXT
case ":$PATH:" in
    *":$(dirname "$bin"):"*) ;;
    *) echo "note: $(dirname "$bin") is not on your PATH; add it, or call $bin directly." ;;
esac

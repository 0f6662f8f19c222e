#!/usr/bin/env bash
# Installs process-guardian: builds and installs the binary, creates the
# registry, and installs the cron lines that run the healthcheck. Running it
# again changes nothing more.
#
#   bash scripts/install.sh [--prefix DIR] [--workspace DIR]
#   bash scripts/install.sh --uninstall [--workspace DIR] [--remove-binary]
#
# --prefix DIR     install to DIR/bin, the bash completion to
#                  DIR/share/bash-completion/completions and the manual page to
#                  DIR/share/man/man1 (default prefix: ~/.cargo for the binary,
#                  ~/.local for the rest)
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
    share="$prefix/share"
else
    bin="${CARGO_HOME:-$HOME/.cargo}/bin/process-guardian"
    share="${XDG_DATA_HOME:-$HOME/.local/share}"
fi
completion="$share/bash-completion/completions/process-guardian"
manpage="$share/man/man1/process-guardian.1"

if [ "$uninstall" = 1 ]; then
    units="${XDG_CONFIG_HOME:-$HOME/.config}/systemd/user"
    if [ -e "$units/process-guardian-healthcheck.timer" ]; then
        systemctl --user disable --now process-guardian-healthcheck.timer >/dev/null 2>&1 || true
        rm -f "$units/process-guardian-healthcheck.timer" "$units/process-guardian-healthcheck.service"
        echo "removed the systemd user timer"
    fi
    if [ -x "$bin" ] && command -v crontab >/dev/null 2>&1; then
        "$bin" --workspace "$workspace" cron uninstall
    elif command -v process-guardian >/dev/null 2>&1 && command -v crontab >/dev/null 2>&1; then
        process-guardian --workspace "$workspace" cron uninstall
    fi
    if [ "$remove_binary" = 1 ]; then
        rm -f "$completion" "$manpage"
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

echo "building and installing process-guardian to $(dirname "$bin") ..."
# The static build for this host (see scripts/static-build.sh), copied into
# place through a temp file and a rename, so a running copy is never torn.
built="$("$repo/scripts/static-build.sh")"
mkdir -p "$(dirname "$bin")"
install -m 0755 "$built" "$bin.new.$$"
mv -f "$bin.new.$$" "$bin"
# The bash completion and the manual page, written by the binary itself.
mkdir -p "$(dirname "$completion")" "$(dirname "$manpage")"
"$bin" completions bash > "$completion.new.$$" && mv -f "$completion.new.$$" "$completion"
"$bin" man > "$manpage.new.$$" && mv -f "$manpage.new.$$" "$manpage"

registry="$workspace/.process-registry.json"
if [ ! -e "$registry" ]; then
    (umask 077 && printf '{}\n' > "$registry")
    echo "created $registry"
fi

# The backstop that revives what died while no supervisor lived (reboot,
# every supervisor killed): cron where a daemon runs, else a systemd user
# timer, else none, said plainly. The binary works either way, and the
# warden revives what dies while any supervisor lives.
cron_running() {
    local c
    for c in /proc/[0-9]*/comm; do
        case "$(cat "$c" 2>/dev/null)" in cron|crond) return 0 ;; esac
    done
    return 1
}
user_timer() {
    local units="${XDG_CONFIG_HOME:-$HOME/.config}/systemd/user"
    mkdir -p "$units"
    cat > "$units/process-guardian-healthcheck.service" <<UNIT
[Unit]
Description=process-guardian healthcheck of $workspace

[Service]
Type=oneshot
ExecStart="$bin" --workspace "$workspace" healthcheck
StandardOutput=append:$workspace/.process-guardian/logs/healthcheck.log
StandardError=append:$workspace/.process-guardian/logs/healthcheck.log
UNIT
    cat > "$units/process-guardian-healthcheck.timer" <<UNIT
[Unit]
Description=process-guardian healthcheck every 5 minutes and at login

[Timer]
OnStartupSec=30s
OnUnitActiveSec=5min

[Install]
WantedBy=timers.target
UNIT
    systemctl --user daemon-reload && systemctl --user enable --now process-guardian-healthcheck.timer >/dev/null
}
missing=""
if command -v crontab >/dev/null 2>&1 && cron_running; then
    "$bin" --workspace "$workspace" cron install
elif command -v systemctl >/dev/null 2>&1 && systemctl --user show-environment >/dev/null 2>&1 && user_timer; then
    echo "installed the systemd user timer process-guardian-healthcheck.timer (every 5 minutes and at login)"
elif command -v crontab >/dev/null 2>&1; then
    "$bin" --workspace "$workspace" cron install
    missing="no cron daemon is running, so the healthcheck lines will not run. Fix: start it: cron   (or: service cron start)"
else
    missing="no cron (crontab not found) and no systemd user manager, so nothing runs the healthcheck after a reboot. Fix: apt-get install -y cron && cron && process-guardian --workspace $workspace cron install"
fi

cat <<TXT

process-guardian is installed: $bin
workspace: $workspace
bash completion: $completion (loaded by bash-completion; or: source it from ~/.bashrc)
manual page: $manpage (man process-guardian, with $share/man on MANPATH)

  process-guardian register my-bot "python3 bot.py" 480   # define it once
  process-guardian start my-bot                           # detached, supervised
  process-guardian status                                 # what runs, what died
  process-guardian logs my-bot -f                         # its output

Alerts land in ${PROCESS_GUARDIAN_ALERT_DIR:-/tmp}/process_monitor_alert.flag and .txt.
TXT
if [ -n "$missing" ]; then
    echo
    echo "warning: $missing"
    echo "Until then the warden (inside the supervisors) revives what dies while any supervisor lives;"
    echo "process-guardian doctor says what is missing."
fi
case ":$PATH:" in
    *":$(dirname "$bin"):"*) ;;
    *) echo "note: $(dirname "$bin") is not on your PATH; add it, or call $bin directly." ;;
esac

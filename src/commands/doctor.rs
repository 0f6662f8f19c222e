//! `doctor [--json]`: checks what the safety net needs, and says what to
//! fix. Exit 0 when all is well, 1 with warnings.

use std::fs;

use serde::Serialize;

use super::output::Output;
use crate::alert;
use crate::error::Result;
use crate::fsutil;
use crate::workspace::Workspace;

/// A full healthcheck older than this means cron is not running it.
const HEALTHCHECK_STALE_S: f64 = 11.0 * 60.0;

#[derive(Serialize)]
struct Check {
    check: &'static str,
    ok: bool,
    detail: String,
    /// What to do, when it is not ok.
    fix: Option<String>,
}

fn ok(check: &'static str, detail: String) -> Check {
    Check {
        check,
        ok: true,
        detail,
        fix: None,
    }
}

fn warn(check: &'static str, detail: String, fix: String) -> Check {
    Check {
        check,
        ok: false,
        detail,
        fix: Some(fix),
    }
}

pub fn run(ws: &Workspace) -> Result<Output> {
    let checks = vec![
        // Refused before this point if another user owns or can write it.
        ok(
            "workspace",
            format!("{}: yours, writable by you alone", ws.root().display()),
        ),
        pidfds(),
        backstop(ws),
        last_healthcheck(ws),
        logind(),
        alert_dir(ws),
    ];
    let all_ok = checks.iter().all(|c| c.ok);
    let mut human = Vec::new();
    for c in &checks {
        human.push(format!(
            "{} {}: {}",
            if c.ok { "ok  " } else { "warn" },
            c.check,
            c.detail
        ));
        if let Some(fix) = &c.fix {
            human.push(format!("     fix: {fix}"));
        }
    }
    human.push(if all_ok {
        "doctor: all is well".to_string()
    } else {
        format!(
            "doctor: {} warning(s)",
            checks.iter().filter(|c| !c.ok).count()
        )
    });
    let json = serde_json::json!({ "ok": all_ok, "checks": checks });
    Ok(Output::new(human, json).with_code(if all_ok { 0 } else { 1 }))
}

/// Whether processes can be acted on at all: every signal and wait goes
/// through a pidfd.
fn pidfds() -> Check {
    match crate::proc::pidfds_available() {
        Ok(()) => ok("pidfds", "pidfd_open works here".into()),
        Err(e) => warn(
            "pidfds",
            format!(
                "pidfd_open fails here ({e}): start, run, stop, restart, deregister, signal and healthcheck refuse to run"
            ),
            "use Linux 5.3 or later, and a container seccomp profile that allows pidfd_open".into(),
        ),
    }
}

/// The second line of defence: a running cron daemon with our lines, or
/// the systemd user timer.
fn backstop(ws: &Workspace) -> Check {
    if timer_installed() {
        return ok(
            "backstop",
            "the systemd user timer process-guardian-healthcheck.timer runs the healthcheck".into(),
        );
    }
    let daemon = super::cron::cron_daemon_running();
    let lines = super::cron::installed_lines(ws);
    match (daemon, lines) {
        (_, Err(e)) => warn(
            "backstop",
            format!("no crontab to read: {e}"),
            "install cron (Debian: apt-get install cron), start it (cron), then: process-guardian cron install".into(),
        ),
        (false, _) => warn(
            "backstop",
            "no cron daemon is running: the healthcheck lines, if any, never run (the warden still revives what dies while any supervisor lives)".into(),
            "start it: cron (or: service cron start); in a container, start it from the entry point".into(),
        ),
        (true, Ok(lines)) if lines.is_empty() => warn(
            "backstop",
            "cron runs, but not our healthcheck lines".into(),
            "process-guardian cron install".into(),
        ),
        (true, Ok(lines)) => match lines.iter().find_map(|l| missing_binary(l)) {
            Some(bin) => warn(
                "backstop",
                format!("the crontab runs {bin}, which no longer exists"),
                "process-guardian cron install (rewrites the lines with this binary)".into(),
            ),
            None => ok(
                "backstop",
                format!("cron runs and has our {} healthcheck lines", lines.len()),
            ),
        },
    }
}

/// The binary a cron line of ours runs, if it is gone.
fn missing_binary(line: &str) -> Option<String> {
    let before = line.split(" --workspace ").next()?;
    let bin = before.rsplit(' ').next()?.trim_matches('\'');
    (!std::path::Path::new(bin).exists()).then(|| bin.to_string())
}

fn timer_installed() -> bool {
    let Some(home) = std::env::var_os("HOME") else {
        return false;
    };
    std::path::Path::new(&home)
        .join(".config/systemd/user/process-guardian-healthcheck.timer")
        .exists()
}

fn last_healthcheck(ws: &Workspace) -> Check {
    let stamp = fsutil::open_own_read(&ws.state_dir().join("healthcheck.stamp"))
        .and_then(fsutil::read_all)
        .ok()
        .map(|b| String::from_utf8_lossy(&b).trim().to_string());
    match stamp
        .as_deref()
        .and_then(|s| Some((s, fsutil::seconds_since(s)?)))
    {
        None => warn(
            "last healthcheck",
            "no healthcheck has run in this workspace yet".into(),
            "the backstop runs one every 5 minutes once installed; run one now: process-guardian healthcheck".into(),
        ),
        Some((at, age)) if age > HEALTHCHECK_STALE_S => warn(
            "last healthcheck",
            format!("the last one ran at {at}, {:.0} min ago", age / 60.0),
            "cron is not running it every 5 minutes: see the backstop above".into(),
        ),
        Some((at, age)) => ok(
            "last healthcheck",
            format!("ran at {at}, {:.0} s ago", age.max(0.0)),
        ),
    }
}

/// logind kills a user's processes at logout where `KillUserProcesses`
/// is on, unless the user lingers.
fn logind() -> Check {
    let mut texts = vec![fs::read_to_string("/etc/systemd/logind.conf").unwrap_or_default()];
    if let Ok(dir) = fs::read_dir("/etc/systemd/logind.conf.d") {
        texts.extend(
            dir.flatten()
                .filter_map(|e| fs::read_to_string(e.path()).ok()),
        );
    }
    let kills = texts.iter().flat_map(|t| t.lines()).any(|l| {
        let l = l.trim().to_ascii_lowercase();
        !l.starts_with('#')
            && l.replace(' ', "")
                .strip_prefix("killuserprocesses=")
                .is_some_and(|v| matches!(v, "yes" | "true" | "1" | "on"))
    });
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_default();
    let lingers = !user.is_empty()
        && std::path::Path::new("/var/lib/systemd/linger")
            .join(&user)
            .exists();
    if kills && !lingers {
        warn(
            "logout",
            "logind kills your processes when you log out (KillUserProcesses=yes), supervisors included".into(),
            format!("loginctl enable-linger {}", if user.is_empty() { "$USER" } else { &user }),
        )
    } else {
        ok(
            "logout",
            if kills {
                "you linger: logging out kills nothing".into()
            } else {
                "logind does not kill processes at logout".into()
            },
        )
    }
}

fn alert_dir(ws: &Workspace) -> Check {
    let dir = Workspace::alert_dir();
    if let Some(problem) = alert::alert_dir_problem(ws) {
        return warn(
            "alert files",
            problem,
            format!(
                "export {}=DIR (a directory of yours)",
                crate::workspace::ALERT_DIR_ENV
            ),
        );
    }
    let probe = dir.join(format!(".process-guardian-doctor.{}", std::process::id()));
    match fsutil::write_atomic(&probe, b"", 0o600, fsutil::Durability::Renamed) {
        Ok(()) => {
            let _ = fs::remove_file(&probe);
            ok("alert files", format!("{} is writable", dir.display()))
        }
        Err(e) => warn(
            "alert files",
            format!("cannot write in {}: {e}", dir.display()),
            format!(
                "export {}=DIR (a directory of yours)",
                crate::workspace::ALERT_DIR_ENV
            ),
        ),
    }
}

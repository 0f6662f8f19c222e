//! Alerts: a JSON record appended to `alerts.jsonl`, the flag and text files
//! an agent's heartbeat polls, and an optional hook command.
//!
//! The flag and text live in a shared directory (/tmp by default), so they
//! are written as a temp file renamed into place: a symlink planted under
//! their name is replaced, never followed. The flag is raised at most once
//! per (name, kind) within the cooldown; the history gets every alert.

use std::fs;
use std::io::{self, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use crate::fsutil::{self, Durability};
use crate::logs;
use crate::state::ExitRecord;
use crate::workspace::Workspace;

pub const FLAG_FILE: &str = "process_monitor_alert.flag";
pub const TEXT_FILE: &str = "process_monitor_alert.txt";
pub const COOLDOWN_ENV: &str = "PROCESS_GUARDIAN_ALERT_COOLDOWN";
pub const COMMAND_ENV: &str = "PROCESS_GUARDIAN_ALERT_COMMAND";
pub const DEFAULT_COOLDOWN_S: u64 = 900;
pub const HOOK_TIMEOUT: Duration = Duration::from_secs(10);
const LOG_TAIL_LINES: usize = 20;

#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Died,
    CrashLoop,
    Exited,
    Stale,
    SupervisorLost,
    StartFailed,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Died,
        Kind::CrashLoop,
        Kind::Exited,
        Kind::Stale,
        Kind::SupervisorLost,
        Kind::StartFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Died => "died",
            Kind::CrashLoop => "crash-loop",
            Kind::Exited => "exited",
            Kind::Stale => "stale",
            Kind::SupervisorLost => "supervisor-lost",
            Kind::StartFailed => "start-failed",
        }
    }
}

#[derive(Serialize, Debug)]
pub struct Alert {
    pub at: String,
    pub name: String,
    pub kind: Kind,
    pub message: String,
    pub pid: Option<i32>,
    pub exit: Option<ExitRecord>,
    pub log_tail: Vec<String>,
}

impl Alert {
    pub fn new(
        ws: &Workspace,
        name: &str,
        kind: Kind,
        message: String,
        pid: Option<i32>,
        exit: Option<ExitRecord>,
    ) -> Alert {
        Alert {
            at: fsutil::now_rfc3339(),
            name: name.to_string(),
            kind,
            message,
            pid,
            exit,
            log_tail: logs::tail(&ws.log_path(name), LOG_TAIL_LINES).unwrap_or_default(),
        }
    }

    fn text(&self) -> String {
        let mut t = format!(
            // The message names the process itself.
            "process-guardian alert at {}\n[{}] {}\n",
            self.at,
            self.kind.as_str(),
            self.message
        );
        if !self.log_tail.is_empty() {
            t.push_str("\nlast lines of its log:\n");
            for line in &self.log_tail {
                t.push_str("  ");
                t.push_str(line);
                t.push('\n');
            }
        }
        t
    }
}

fn cooldown() -> Duration {
    let secs = std::env::var(COOLDOWN_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v >= 0.0)
        .unwrap_or(DEFAULT_COOLDOWN_S as f64);
    Duration::from_secs_f64(secs)
}

/// Records the alert everywhere it goes and starts the hook, if any; the
/// caller owns the hook's process (see `wait_hook`). Failures are written to
/// the process's log, never returned: an alert must not stop a restart.
pub fn raise(ws: &Workspace, alert: &Alert, alert_command: Option<&str>) -> Option<Child> {
    let json = serde_json::to_string(alert).unwrap_or_default();
    let mut problems = Vec::new();
    if let Err(e) = append_history(ws, &json) {
        problems.push(format!(
            "cannot append to {}: {e}",
            ws.alerts_path().display()
        ));
    }
    if should_flag(ws, &alert.name, alert.kind)
        && let Err(e) = write_flag(alert)
    {
        problems.push(format!(
            "cannot write alert files in {}: {e}",
            Workspace::alert_dir().display()
        ));
    }
    let hook = alert_command
        .map(str::to_string)
        .or_else(|| std::env::var(COMMAND_ENV).ok())
        .filter(|c| !c.trim().is_empty());
    let child = hook.and_then(|cmd| match start_hook(ws, alert, &cmd, &json) {
        Ok(c) => Some(c),
        Err(e) => {
            problems.push(format!("alert hook {cmd:?} could not start: {e}"));
            None
        }
    });
    if !problems.is_empty()
        && let Ok(mut log) = logs::open_append(&ws.log_path(&alert.name))
    {
        for p in problems {
            logs::lifecycle(&mut log, &p);
        }
    }
    child
}

fn append_history(ws: &Workspace, json: &str) -> io::Result<()> {
    let mut f = logs::open_append(&ws.alerts_path())?;
    f.write_all(format!("{json}\n").as_bytes())
}

/// True if this (name, kind) has not raised the flag within the cooldown;
/// then it marks it as raised now.
fn should_flag(ws: &Workspace, name: &str, kind: Kind) -> bool {
    let marker = ws.cooldown_dir().join(format!("{name}.{}", kind.as_str()));
    let recent = fs::metadata(&marker)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|age| age < cooldown());
    if recent {
        return false;
    }
    let _ = fs::create_dir_all(ws.cooldown_dir());
    let _ = fsutil::write_atomic(
        &marker,
        fsutil::now_rfc3339().as_bytes(),
        0o600,
        Durability::Renamed,
    );
    true
}

fn write_flag(alert: &Alert) -> io::Result<()> {
    let dir = Workspace::alert_dir();
    fs::create_dir_all(&dir)?;
    fsutil::write_atomic(
        &dir.join(TEXT_FILE),
        alert.text().as_bytes(),
        0o644,
        Durability::Renamed,
    )?;
    let flag = format!("{} {} {}\n", alert.at, alert.kind.as_str(), alert.name);
    fsutil::write_atomic(
        &dir.join(FLAG_FILE),
        flag.as_bytes(),
        0o644,
        Durability::Renamed,
    )
}

fn start_hook(ws: &Workspace, alert: &Alert, cmd: &str, json: &str) -> io::Result<Child> {
    use std::os::unix::process::CommandExt;
    let out = logs::open_append(&ws.log_path(&alert.name))?;
    let mut hook = Command::new("/bin/sh");
    crate::proc::unblock_signals_in_child(&mut hook);
    let mut child = hook
        .arg("-c")
        .arg(cmd)
        .env("PG_ALERT_NAME", &alert.name)
        .env("PG_ALERT_KIND", alert.kind.as_str())
        .env("PG_ALERT_MESSAGE", &alert.message)
        .stdin(Stdio::piped())
        .stdout(out.try_clone()?)
        .stderr(out)
        .process_group(0)
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin must not block us: the pipe
        // holds far more than one alert, and a closed pipe is ignored.
        let _ = stdin.write_all(json.as_bytes());
        let _ = stdin.write_all(b"\n");
    }
    Ok(child)
}

/// Waits for a hook up to its limit, killing its process group past it, and
/// logs a failure into the process's log.
pub fn wait_hook(ws: &Workspace, name: &str, mut child: Child) {
    let deadline = Instant::now() + HOOK_TIMEOUT;
    let outcome = loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return,
            Ok(Some(status)) => break format!("alert hook failed: {status}"),
            Ok(None) if Instant::now() >= deadline => {
                let _ =
                    crate::proc::kill_group(child.id() as i32, nix::sys::signal::Signal::SIGKILL);
                let _ = child.wait();
                break format!("alert hook killed after {} s", HOOK_TIMEOUT.as_secs());
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => break format!("alert hook: {e}"),
        }
    };
    if let Ok(mut log) = logs::open_append(&ws.log_path(name)) {
        logs::lifecycle(&mut log, &outcome);
    }
}

/// Raises an alert from a command-line process and waits for its hook.
pub fn raise_and_wait(ws: &Workspace, alert: &Alert, alert_command: Option<&str>) {
    if let Some(child) = raise(ws, alert, alert_command) {
        wait_hook(ws, &alert.name, child);
    }
}

/// The flag file's path, for messages.
pub fn flag_path() -> std::path::PathBuf {
    Workspace::alert_dir().join(FLAG_FILE)
}

//! Alerts: a JSON record appended to `alerts.jsonl`, the flag and text files
//! an agent's heartbeat polls, and an optional hook command.
//!
//! The flag and text live in a shared directory (/tmp by default), so they
//! are written 0600 as a temp file renamed into place: a symlink planted
//! under their name is replaced, never followed, and another user's file
//! there makes the write fail, which is logged once with the fix and shown
//! by `healthcheck`. The flag and the hook fire at most once per (name,
//! kind) within the cooldown; the history gets every alert. The hook reads
//! the alert from an in-memory file, never from a pipe it could leave full,
//! so no hook can block the supervisor.

use std::fs;
use std::io;
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
/// A marker in the cooldown directory (no process name starts with a dot)
/// saying that the alert files could not be written, and why.
const ALERT_DIR_FAILING: &str = ".alert-dir-failing";

#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Died,
    CrashLoop,
    Exited,
    Stale,
    SupervisorLost,
    StartFailed,
    /// Its health probe failed too many times in a row.
    Unhealthy,
    /// Its tree used more memory than `max_memory_bytes`.
    Memory,
}

impl Kind {
    pub const ALL: [Kind; 8] = [
        Kind::Died,
        Kind::CrashLoop,
        Kind::Exited,
        Kind::Stale,
        Kind::SupervisorLost,
        Kind::StartFailed,
        Kind::Unhealthy,
        Kind::Memory,
    ];

    /// For "N more deaths since …".
    fn plural(self) -> &'static str {
        match self {
            Kind::Died => "deaths",
            Kind::CrashLoop => "crash loops",
            Kind::Exited => "exits",
            Kind::Stale => "stale alerts",
            Kind::SupervisorLost => "lost supervisors",
            Kind::StartFailed => "failed starts",
            Kind::Unhealthy => "unhealthy alerts",
            Kind::Memory => "memory alerts",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Died => "died",
            Kind::CrashLoop => "crash-loop",
            Kind::Exited => "exited",
            Kind::Stale => "stale",
            Kind::SupervisorLost => "supervisor-lost",
            Kind::StartFailed => "start-failed",
            Kind::Unhealthy => "unhealthy",
            Kind::Memory => "memory",
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
    /// Alerts of this process and kind not recorded one by one (a crash
    /// loop), counted since the last one that was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coalesced: Option<Coalesced>,
}

#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct Coalesced {
    pub count: u64,
    pub since: String,
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
            log_tail: logs::alert_tail(&ws.log_path(name)),
            coalesced: None,
        }
    }

    /// The alert for a person: control characters of the message made
    /// visible (the tail already is), so the text cannot drive a terminal.
    fn text(&self) -> String {
        let mut t = format!(
            // The message names the process itself.
            "process-guardian alert at {}\n[{}] {}\n",
            self.at,
            self.kind.as_str(),
            logs::visible_line(self.message.as_bytes(), false)
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
        .filter(|v| *v <= 10.0 * 365.0 * 86_400.0)
        .and_then(fsutil::secs);
    secs.unwrap_or(Duration::from_secs(DEFAULT_COOLDOWN_S))
}

/// Records the alert everywhere it goes and starts the hook, if any; the
/// caller owns the hook's process (see `wait_hook`). Failures are written to
/// the process's log, never returned: an alert must not stop a restart.
pub fn raise(ws: &Workspace, alert: &mut Alert, alert_command: Option<&str>) -> Option<i32> {
    match history_gate(ws, &alert.name, alert.kind) {
        Gate::Skip => return None,
        Gate::Record(None) => {}
        Gate::Record(Some(c)) => {
            alert.message = format!(
                "{} ({} more {} since {}, not recorded one by one)",
                alert.message,
                c.count,
                alert.kind.plural(),
                c.since
            );
            alert.coalesced = Some(c);
        }
    }
    let json = serde_json::to_string(alert).unwrap_or_default();
    let mut problems = Vec::new();
    if let Err(e) = append_history(ws, &json) {
        problems.push(format!(
            "cannot append to {}: {e}",
            ws.alerts_path().display()
        ));
    }
    // Within the cooldown of this (name, kind), the history alone hears of it.
    if !should_flag(ws, &alert.name, alert.kind) {
        log_problems(ws, &alert.name, &problems);
        return None;
    }
    match write_flag(alert) {
        Ok(()) => {
            let _ = fs::remove_file(ws.cooldown_dir().join(ALERT_DIR_FAILING));
        }
        Err(e) => {
            let msg = format!(
                "cannot write the alert files in {}: {e}; alerts still go to {} and the hook. Set {} to a directory of yours",
                Workspace::alert_dir().display(),
                ws.alerts_path().display(),
                crate::workspace::ALERT_DIR_ENV
            );
            // Said once, not at every alert, until a write succeeds again.
            let marker = ws.cooldown_dir().join(ALERT_DIR_FAILING);
            if fs::symlink_metadata(&marker).is_err() {
                problems.push(msg.clone());
            }
            let _ = fsutil::write_atomic(&marker, msg.as_bytes(), 0o600, Durability::Renamed);
        }
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
    log_problems(ws, &alert.name, &problems);
    child
}

fn log_problems(ws: &Workspace, name: &str, problems: &[String]) {
    for p in problems {
        crate::output::note(ws, name, p);
    }
}

/// What stands in the way of the alert files, if anything: a file there
/// that is not a regular file of ours, or the last write's failure.
pub fn alert_dir_problem(ws: &Workspace) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let dir = Workspace::alert_dir();
    for file in [TEXT_FILE, FLAG_FILE] {
        let path = dir.join(file);
        if let Ok(m) = fs::symlink_metadata(&path)
            && (!m.file_type().is_file() || m.uid() != fsutil::euid())
        {
            let what = if m.file_type().is_file() {
                format!("belongs to uid {}", m.uid())
            } else {
                "is not a regular file".to_string()
            };
            return Some(format!(
                "{} {what}, so alerts cannot be written there (they still go to {}); set {} to a directory of yours",
                path.display(),
                ws.alerts_path().display(),
                crate::workspace::ALERT_DIR_ENV
            ));
        }
    }
    let marker = ws.cooldown_dir().join(ALERT_DIR_FAILING);
    fsutil::open_own_read(&marker)
        .and_then(fsutil::read_all)
        .ok()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

fn append_history(ws: &Workspace, json: &str) -> io::Result<()> {
    logs::append_bounded(
        &ws.alerts_path(),
        format!("{json}\n").as_bytes(),
        logs::BOOKKEEPING_MAX_BYTES,
        logs::BOOKKEEPING_KEEP,
    )
}

/// At most this many alerts of one process and kind are recorded one by
/// one within `HISTORY_WINDOW`; the rest are counted, and the count goes
/// with the next one recorded, so a crash loop cannot flood the history.
const HISTORY_BURST: u64 = 5;
const HISTORY_WINDOW: Duration = Duration::from_secs(10);

enum Gate {
    Record(Option<Coalesced>),
    Skip,
}

/// The count kept for one (name, kind): `window_start_ms recorded skipped skipped_since`.
struct Counts {
    path: std::path::PathBuf,
    start: i64,
    recorded: u64,
    skipped: u64,
    since: String,
}

impl Counts {
    fn load(ws: &Workspace, name: &str, kind: Kind, now_ms: i64) -> Counts {
        let path = ws
            .cooldown_dir()
            .join(format!("{name}.{}.history", kind.as_str()));
        let text = fsutil::open_own_read(&path)
            .and_then(fsutil::read_all)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let mut f = text.split_whitespace();
        Counts {
            start: f.next().and_then(|v| v.parse().ok()).unwrap_or(now_ms),
            recorded: f.next().and_then(|v| v.parse().ok()).unwrap_or(0),
            skipped: f.next().and_then(|v| v.parse().ok()).unwrap_or(0),
            since: f.next().unwrap_or("-").to_string(),
            path,
        }
    }

    fn save(&self) {
        let body = format!(
            "{} {} {} {}\n",
            self.start, self.recorded, self.skipped, self.since
        );
        let _ = fsutil::write_atomic(&self.path, body.as_bytes(), 0o600, Durability::Renamed);
    }

    /// The alerts counted and not yet reported, reset.
    fn take(&mut self) -> Option<Coalesced> {
        let c = (self.skipped > 0).then(|| Coalesced {
            count: self.skipped,
            since: self.since.clone(),
        });
        self.skipped = 0;
        c
    }
}

/// Decides whether this alert is recorded one by one, or counted.
fn history_gate(ws: &Workspace, name: &str, kind: Kind) -> Gate {
    let now_ms = chrono::Utc::now().timestamp_millis();
    let mut c = Counts::load(ws, name, kind, now_ms);
    let window = i64::try_from(HISTORY_WINDOW.as_millis()).unwrap_or(i64::MAX);
    if now_ms.saturating_sub(c.start) >= window || now_ms < c.start {
        c.start = now_ms;
        c.recorded = 0;
    }
    let gate = if c.recorded < HISTORY_BURST {
        c.recorded += 1;
        Gate::Record(c.take())
    } else {
        if c.skipped == 0 {
            c.since = fsutil::now_rfc3339();
        }
        c.skipped = c.skipped.saturating_add(1);
        Gate::Skip
    };
    c.save();
    gate
}

/// Records what is still only counted for `name` (its supervisor is
/// leaving): every death is in the history, one by one or in a count.
pub fn flush_coalesced(ws: &Workspace, name: &str) {
    let now_ms = chrono::Utc::now().timestamp_millis();
    for kind in Kind::ALL {
        let mut c = Counts::load(ws, name, kind, now_ms);
        let Some(counted) = c.take() else {
            continue;
        };
        c.save();
        let alert = Alert {
            at: fsutil::now_rfc3339(),
            name: name.to_string(),
            kind,
            message: format!(
                "{name}: {} more {} since {}, not recorded one by one",
                counted.count,
                kind.plural(),
                counted.since
            ),
            pid: None,
            exit: None,
            log_tail: Vec::new(),
            coalesced: Some(counted),
        };
        if let Ok(json) = serde_json::to_string(&alert) {
            let _ = append_history(ws, &json);
        }
    }
}

/// True if this (name, kind) has not raised the flag within the cooldown;
/// then it marks it as raised now.
fn should_flag(ws: &Workspace, name: &str, kind: Kind) -> bool {
    let marker = ws.cooldown_dir().join(format!("{name}.{}", kind.as_str()));
    let recent = fs::symlink_metadata(&marker)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|age| age < cooldown());
    if recent {
        return false;
    }
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
        0o600,
        Durability::Renamed,
    )?;
    let flag = format!("{} {} {}\n", alert.at, alert.kind.as_str(), alert.name);
    fsutil::write_atomic(
        &dir.join(FLAG_FILE),
        flag.as_bytes(),
        0o600,
        Durability::Renamed,
    )
}

/// Starts the hook in its own process group, the alert JSON on its stdin
/// from an in-memory file: nothing the hook does or fails to do (not
/// reading, never exiting) can block the caller; its limit is the caller's.
/// Returns its pid; the caller reaps it.
fn start_hook(ws: &Workspace, alert: &Alert, cmd: &str, json: &str) -> io::Result<i32> {
    use std::os::fd::AsFd;
    let out = crate::output::open_for_others(ws, &alert.name)?;
    let input =
        crate::fsutil::memfd_with("process-guardian-alert", format!("{json}\n").as_bytes())?;
    let mut env: Vec<(String, String)> = crate::fsutil::env_pairs()
        .filter(|(k, _)| !k.starts_with("PG_ALERT_"))
        .collect();
    env.push(("PG_ALERT_NAME".into(), alert.name.clone()));
    env.push(("PG_ALERT_KIND".into(), alert.kind.as_str().into()));
    env.push(("PG_ALERT_MESSAGE".into(), alert.message.clone()));
    let argv = ["/bin/sh".to_string(), "-c".to_string(), cmd.to_string()];
    crate::launch::Spawner::new(&argv, &env, ws.root())
        .and_then(|s| s.spawn(Some(input.as_fd()), out.as_fd()))
        .map_err(|e| io::Error::other(e.to_string()))
}

/// Waits for a hook up to its limit, killing its process group past it, and
/// logs a failure into the process's log.
pub fn wait_hook(ws: &Workspace, name: &str, pid: i32) {
    let deadline = Instant::now() + HOOK_TIMEOUT;
    let outcome = loop {
        match crate::proc::reap(Some(pid)) {
            Some(r) if r.code == Some(0) => return,
            Some(r) => break format!("alert hook failed ({})", r.describe()),
            None if Instant::now() >= deadline => {
                let _ = crate::proc::kill_group(pid, crate::proc::Signal::KILL);
                let wait_end = Instant::now() + Duration::from_secs(1);
                while crate::proc::reap(Some(pid)).is_none() && Instant::now() < wait_end {
                    std::thread::sleep(Duration::from_millis(5));
                }
                break format!("alert hook killed after {} s", HOOK_TIMEOUT.as_secs());
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    crate::output::note(ws, name, &outcome);
}

/// Raises an alert from a command-line process and waits for its hook.
pub fn raise_and_wait(ws: &Workspace, alert: &mut Alert, alert_command: Option<&str>) {
    if let Some(pid) = raise(ws, alert, alert_command) {
        wait_hook(ws, &alert.name, pid);
    }
}

/// The flag file's path, for messages.
pub fn flag_path() -> std::path::PathBuf {
    Workspace::alert_dir().join(FLAG_FILE)
}

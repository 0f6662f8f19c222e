//! Readiness: after each start, the entry's probe is run (as the hidden
//! `probe` subcommand, a child of its own, so nothing here can block or
//! grow the supervisor) every quarter second until it passes; past the
//! entry's timeout, every two seconds, said once in the log.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::registry::Entry;

const EVERY: Duration = Duration::from_millis(250);
/// A probe past its own timeout by this much is killed (a name lookup,
/// say, that its timeout did not cover): a stuck probe cannot stop probing.
const OVERDUE: Duration = Duration::from_secs(1);

/// The `probe` subcommand of this binary, prepared once: a command probe
/// runs with the start's environment; the others need none of it (a copy
/// would stay in the supervisor while it probes).
fn probe_spawner(
    kind: &str,
    target: &str,
    timeout: Duration,
    cwd: &std::path::Path,
    extra: &[std::ffi::OsString],
) -> std::io::Result<crate::launch::Spawner> {
    use std::ffi::OsString;
    let exe = std::env::current_exe()?;
    // Paths byte for byte: a workspace's (and so a log's) need not be UTF-8.
    let mut argv: Vec<OsString> = vec![
        exe.into_os_string(),
        "probe".into(),
        kind.into(),
        target.into(),
        "--timeout".into(),
        timeout.as_secs_f64().to_string().into(),
        "--cwd".into(),
        cwd.as_os_str().to_owned(),
    ];
    argv.extend_from_slice(extra);
    let env: Vec<(String, String)> = if kind == "cmd" {
        crate::fsutil::env_pairs().collect()
    } else {
        Vec::new()
    };
    crate::launch::Spawner::new(&argv, &env, cwd).map_err(|e| std::io::Error::other(e.to_string()))
}

fn kill_overdue(child: Option<(i32, Instant)>, now: Instant) {
    if let Some((pid, until)) = child
        && now >= until
    {
        // Our own unreaped child: its pid cannot have been reused.
        let me = rustix::process::getpid().as_raw_nonzero().get();
        crate::proc::signal_if_child_of(pid, me, crate::proc::Signal::KILL);
    }
}
const EVERY_LATE: Duration = Duration::from_secs(2);

pub struct Readiness {
    /// (kind, target) of the probe, if the entry has one.
    probe: Option<(&'static str, String)>,
    timeout: Duration,
    cwd: PathBuf,
    log: PathBuf,
    /// The running command has not passed it yet.
    pending: bool,
    since: Instant,
    next: Instant,
    /// The probe under way, the start it belongs to, and when it must be done.
    child: Option<(i32, u64, Instant)>,
    /// Starts so far: a probe's answer counts only for its own start.
    generation: u64,
    /// Where the log stood at the start (a log probe reads from there).
    log_from: u64,
    late_said: bool,
    /// The probe, prepared at the first attempt of a start and dropped once
    /// it passes (a log probe's offset changes with each start).
    spawner: Option<crate::launch::Spawner>,
    null: Option<std::fs::File>,
}

impl Readiness {
    pub fn new(entry: &Entry, cwd: PathBuf, log: PathBuf, now: Instant) -> Readiness {
        let probe = entry
            .ready
            .as_ref()
            .and_then(|r| r.probe().map(|(k, t)| (k, t.to_string())));
        Readiness {
            timeout: entry.ready.as_ref().map_or(Duration::ZERO, |r| r.timeout()),
            probe,
            cwd,
            log,
            pending: false,
            since: now,
            next: now,
            child: None,
            generation: 0,
            log_from: 0,
            late_said: false,
            spawner: None,
            null: None,
        }
    }

    /// What the state file says: `None` without a probe.
    pub fn state(&self) -> Option<bool> {
        self.probe.as_ref().map(|_| !self.pending)
    }

    /// A command was started: it is not ready until its probe passes.
    pub fn started(&mut self, now: Instant, log_len: u64) {
        self.generation += 1;
        self.pending = self.probe.is_some();
        self.since = now;
        self.next = now;
        self.log_from = log_len;
        self.late_said = false;
        self.spawner = None;
    }

    /// An adopted command keeps what its previous supervisor knew.
    pub fn adopted(&mut self, was_ready: Option<bool>, now: Instant) {
        self.started(now, 0);
        self.pending = self.probe.is_some() && was_ready == Some(false);
    }

    pub fn next_wakeup(&self) -> Option<Instant> {
        match self.child {
            Some((_, _, until)) => Some(until),
            None => self.pending.then_some(self.next),
        }
    }

    pub fn pid(&self) -> Option<i32> {
        self.child.map(|(p, _, _)| p)
    }

    /// Starts a probe when one is due; a line for the log when it is late.
    pub fn tick(&mut self, now: Instant, running: bool) -> Option<String> {
        kill_overdue(self.child.map(|(p, _, until)| (p, until)), now);
        if !self.pending || !running || self.child.is_some() || now < self.next {
            return None;
        }
        let (kind, target) = self.probe.clone()?;
        let late = now.saturating_duration_since(self.since) >= self.timeout;
        self.next = crate::fsutil::after(now, if late { EVERY_LATE } else { EVERY });
        match self.spawn(kind, &target) {
            Ok(pid) => {
                let until = crate::fsutil::after(now, crate::probe::ATTEMPT_TIMEOUT + OVERDUE);
                self.child = Some((pid, self.generation, until));
            }
            Err(e) => return Some(format!("cannot run the readiness probe: {e}")),
        }
        if late && !self.late_said {
            self.late_said = true;
            return Some(format!(
                "not ready after {:.0} s ({kind} {target}); still probing every {} s",
                self.timeout.as_secs_f64(),
                EVERY_LATE.as_secs()
            ));
        }
        None
    }

    fn spawn(&mut self, kind: &str, target: &str) -> std::io::Result<i32> {
        if self.spawner.is_none() {
            self.spawner = Some(self.prepare(kind, target)?);
        }
        if self.null.is_none() {
            self.null = Some(std::fs::OpenOptions::new().write(true).open("/dev/null")?);
        }
        let (Some(spawner), Some(null)) = (&self.spawner, &self.null) else {
            return Err(std::io::Error::other("no probe"));
        };
        spawner
            .spawn(None, std::os::fd::AsFd::as_fd(null))
            .map_err(|e| std::io::Error::other(e.to_string()))
    }

    fn prepare(&self, kind: &str, target: &str) -> std::io::Result<crate::launch::Spawner> {
        let log_args = [
            "--file".into(),
            self.log.as_os_str().to_owned(),
            "--from".into(),
            self.log_from.to_string().into(),
        ];
        let extra: &[std::ffi::OsString] = if kind == "log" { &log_args } else { &[] };
        probe_spawner(
            kind,
            target,
            crate::probe::ATTEMPT_TIMEOUT,
            &self.cwd,
            extra,
        )
    }

    /// A child was reaped: if it was the probe, what it means. `Some(line)`
    /// when the command just became ready.
    pub fn reaped(&mut self, pid: i32, passed: bool, now: Instant) -> Option<Option<String>> {
        let (_, generation, _) = self.child.filter(|(p, _, _)| *p == pid)?;
        self.child = None;
        if !passed || generation != self.generation || !self.pending {
            return Some(None);
        }
        self.pending = false;
        self.spawner = None;
        self.null = None;
        let (kind, target) = self.probe.clone().unwrap_or(("", String::new()));
        Some(Some(format!(
            "ready after {:.1} s ({kind} {target})",
            now.saturating_duration_since(self.since).as_secs_f64()
        )))
    }
}

/// Liveness: the entry's health probe every `interval_s` while the command
/// runs and is ready; `failures` failures in a row and it is replaced with
/// an `unhealthy` alert naming the probe's last error.
pub struct Health {
    probe: Option<(&'static str, String)>,
    interval: Duration,
    timeout: Duration,
    failures: u32,
    cwd: PathBuf,
    /// Failures in a row, and the last one's words.
    failed: u32,
    last_error: String,
    next: Option<Instant>,
    /// The probe under way, its start, where its stderr can be read, and
    /// when it must be done.
    child: Option<(i32, u64, std::fs::File, Instant)>,
    generation: u64,
    spawner: Option<crate::launch::Spawner>,
}

impl Health {
    pub fn new(entry: &Entry, cwd: PathBuf) -> Health {
        let h = entry.health.as_ref();
        Health {
            probe: h.and_then(|h| h.probe().map(|(k, t)| (k, t.to_string()))),
            interval: h.map_or(Duration::from_secs(10), |h| h.interval()),
            timeout: h.map_or(Duration::from_secs(5), |h| h.timeout()),
            failures: h.map_or(3, |h| h.failures()),
            cwd,
            failed: 0,
            last_error: String::new(),
            next: None,
            child: None,
            generation: 0,
            spawner: None,
        }
    }

    /// A command was started (or adopted): probing begins an interval later.
    pub fn started(&mut self, now: Instant) {
        self.generation += 1;
        self.failed = 0;
        self.next = self
            .probe
            .as_ref()
            .map(|_| crate::fsutil::after(now, self.interval));
    }

    pub fn next_wakeup(&self) -> Option<Instant> {
        match &self.child {
            Some((_, _, _, until)) => Some(*until),
            None => self.next,
        }
    }

    pub fn pid(&self) -> Option<i32> {
        self.child.as_ref().map(|(p, _, _, _)| *p)
    }

    /// Starts a probe when one is due and the command is up and ready.
    pub fn tick(&mut self, now: Instant, active: bool) -> Option<String> {
        kill_overdue(
            self.child.as_ref().map(|(p, _, _, until)| (*p, *until)),
            now,
        );
        let due = self.next.is_some_and(|t| now >= t);
        if !due || !active || self.child.is_some() {
            if due && !active {
                self.next = Some(crate::fsutil::after(now, self.interval));
            }
            return None;
        }
        self.next = Some(crate::fsutil::after(now, self.interval));
        match self.spawn() {
            Ok((pid, err)) => {
                let until = crate::fsutil::after(now, self.timeout + OVERDUE);
                self.child = Some((pid, self.generation, err, until));
                None
            }
            Err(e) => Some(format!("cannot run the health probe: {e}")),
        }
    }

    fn spawn(&mut self) -> std::io::Result<(i32, std::fs::File)> {
        let Some((kind, target)) = self.probe.clone() else {
            return Err(std::io::Error::other("no health probe"));
        };
        if self.spawner.is_none() {
            self.spawner = Some(probe_spawner(kind, &target, self.timeout, &self.cwd, &[])?);
        }
        let (r, w) = rustix::pipe::pipe_with(
            rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK,
        )?;
        let Some(spawner) = &self.spawner else {
            return Err(std::io::Error::other("no health probe"));
        };
        let pid = spawner
            .spawn(None, std::os::fd::AsFd::as_fd(&w))
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok((pid, std::fs::File::from(r)))
    }

    /// A child was reaped: if it was the probe, `Some`, holding the message
    /// to replace the command with once too many failed in a row.
    pub fn reaped(&mut self, pid: i32, passed: bool, name: &str) -> Option<Option<String>> {
        if self.pid() != Some(pid) {
            return None;
        }
        let (_, generation, err, _) = self.child.take()?;
        if generation != self.generation {
            return Some(None);
        }
        if passed {
            self.failed = 0;
            return Some(None);
        }
        let mut buf = [0u8; 512];
        let n = rustix::io::read(&err, &mut buf).unwrap_or(0);
        self.last_error =
            crate::logs::visible_line(String::from_utf8_lossy(&buf[..n]).trim().as_bytes(), false);
        self.failed += 1;
        if self.failed < self.failures {
            return Some(None);
        }
        self.failed = 0;
        let (kind, target) = self.probe.clone().unwrap_or(("", String::new()));
        Some(Some(format!(
            "{name}: {} health probes ({kind} {target}) failed in a row, the last with: {}; restarting it",
            self.failures,
            if self.last_error.is_empty() {
                "no answer"
            } else {
                &self.last_error
            }
        )))
    }
}

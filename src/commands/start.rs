//! `start` and `restart`. Every decision about a name is taken under its
//! lock, from the registry check to the supervisor's report, so a
//! `deregister` or a healthcheck cannot interleave and leave a process
//! nobody can see.

use std::time::{Duration, Instant};

use super::output::{self, Output, StartOutcome};
use crate::error::{Error, Result};
use crate::launch::{self, Mode, Ready};
use crate::registry::{Entry, Registry};
use crate::state::{self, Phase, RunState};
use crate::workspace::Workspace;

/// The longest `--wait` and `--timeout` a command accepts: a day.
pub const MAX_WAIT_S: f64 = 86_400.0;

/// A number of seconds from a flag, range-checked, as a duration.
pub fn flag_secs(flag: &str, v: f64) -> Result<Duration> {
    if !(0.0..=MAX_WAIT_S).contains(&v) {
        return Err(Error::Invalid(format!(
            "{flag} must be a number of seconds from 0 to {MAX_WAIT_S}, not {v}"
        )));
    }
    crate::fsutil::secs(v).ok_or_else(|| Error::Invalid(format!("{flag}: {v} is not a duration")))
}

pub fn start(ws: &Workspace, name: &str, wait: Option<Duration>) -> Result<Output> {
    let entry = Registry::checked_entry(ws, name)?;
    let before = start_after(ws, name, &entry.after)?;
    let lock = state::lock_name(ws, name)?;
    let started = start_locked(ws, name, Some(&entry))?;
    drop(lock);
    let mut outcome = finish_start(ws, name, started, wait)?;
    outcome.after = before;
    Ok(outcome.output())
}

/// Waits until `name` is ready (its probe passed; without one, running):
/// the line to say, or, as soon as it dies (or the time is up), an error
/// with the last lines of its log.
pub fn wait_ready(ws: &Workspace, name: &str, timeout: Duration) -> Result<String> {
    use crate::state::Shown;
    let started = Instant::now();
    let deadline = crate::fsutil::after(started, timeout);
    let first = state::observe(ws, name)?.pid();
    loop {
        let seen = state::observe(ws, name)?;
        let same = seen.command_alive && seen.pid() == first;
        let why = match seen.shown {
            Shown::Running if same => {
                return Ok(format!(
                    "{name} is ready (after {:.1} s)",
                    started.elapsed().as_secs_f64()
                ));
            }
            Shown::Starting if same => {
                if Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
                format!("{name} is not ready after {:.1} s", timeout.as_secs_f64())
            }
            shown => format!("{name} died before it was ready (now {})", shown.as_str()),
        };
        let tail = crate::logs::alert_tail(&ws.log_path(name));
        let mut msg = why;
        if !tail.is_empty() {
            msg.push_str("; the last lines of its log:");
            for line in tail {
                msg.push_str("\n  ");
                msg.push_str(&line);
            }
        }
        return Err(Error::Failed(msg));
    }
}

/// Starts what `name` comes after (its `after`, transitively, in order), each
/// confirmed running before the next; what was already running is left as
/// it is. A failure stops there, naming the one that failed.
pub fn start_after(ws: &Workspace, name: &str, after: &[String]) -> Result<Vec<StartOutcome>> {
    if after.is_empty() {
        return Ok(Vec::new());
    }
    let order = Registry::load(ws)?.in_start_order(&[name])?;
    let mut done = Vec::new();
    for dep in order.iter().filter(|d| *d != name) {
        let lock = state::lock_name(ws, dep)?;
        // Its entry read once: for its supervisor, and for its readiness probe.
        let started = Registry::load_one(ws, dep)
            .and_then(|entry| Ok((start_locked(ws, dep, Some(&entry))?, entry)));
        drop(lock);
        let outcome = started.and_then(|(started, entry)| {
            let o = finish_start(ws, dep, started, None)?;
            // Running is not enough when it has a readiness probe: ready.
            match &entry.ready {
                Some(r) => wait_ready(ws, dep, r.timeout()).map(|_| o),
                None => Ok(o),
            }
        });
        match outcome {
            Ok(o) => done.push(o),
            Err(e) => {
                return Err(Error::Failed(format!(
                    "{name} comes after {dep}, which could not start: {e}"
                )));
            }
        }
    }
    Ok(done)
}

/// What a start under the name's lock found or did.
pub enum Started {
    /// A supervisor already runs it.
    Already {
        pid: Option<i32>,
        shown: &'static str,
    },
    /// A supervisor reported back.
    Spawned { mode: Mode, ready: Ready },
}

/// Starts `name` (adopting a command that outlived its supervisor); the
/// caller holds the name's lock and has checked that the name is
/// registered (before creating the lock). The registry is not read again
/// here: the supervisor reads its entry, and reports a name removed meanwhile.
pub fn start_locked(ws: &Workspace, name: &str, entry: Option<&Entry>) -> Result<Started> {
    let seen = state::observe(ws, name)?;
    if seen.supervisor_alive {
        return Ok(Started::Already {
            pid: seen.pid(),
            shown: seen.shown.as_str(),
        });
    }
    // A command that outlived its supervisor is adopted, never started twice.
    let mode = if seen.command_alive {
        Mode::Adopt
    } else {
        Mode::Fresh
    };
    let ready = launch::spawn_supervisor(ws, name, mode, entry)?;
    Ok(Started::Spawned { mode, ready })
}

/// What the start did, and with `--wait`, whether it still runs after that long.
pub fn finish_start(
    ws: &Workspace,
    name: &str,
    started: Started,
    wait: Option<Duration>,
) -> Result<StartOutcome> {
    let outcome = |result, pid, state| StartOutcome {
        name: name.to_string(),
        result,
        pid,
        state,
        waited_s: None,
        after: Vec::new(),
    };
    let (mode, ready) = match started {
        Started::Already { pid, shown } => {
            return Ok(outcome("already-running", pid, Some(shown)));
        }
        Started::Spawned { mode, ready } => (mode, ready),
    };
    match ready {
        Ready::Started(pid) => {
            let result = if mode == Mode::Adopt {
                "adopted"
            } else {
                "started"
            };
            let mut out = outcome(result, Some(pid), None);
            if let Some(wait) = wait {
                wait_alive(ws, name, pid, wait)?;
                out.waited_s = Some(wait.as_secs_f64());
            }
            Ok(out)
        }
        Ready::Already => Ok(outcome("already-running", None, Some("running"))),
        Ready::Failed(reason) => Err(Error::Failed(format!(
            "{name} cannot start: {reason}\n  fix the command with `process-guardian register {name} ...`, then start it again; its log: {}",
            ws.log_path(name).display()
        ))),
    }
}

/// `start --wait`: fails if the command started as `pid` dies within `wait`.
fn wait_alive(ws: &Workspace, name: &str, pid: i32, wait: Duration) -> Result<()> {
    let deadline = crate::fsutil::after(Instant::now(), wait);
    loop {
        let st = RunState::load(ws, name)?;
        let alive = st
            .as_ref()
            .is_some_and(|s| s.pid == Some(pid) && s.phase == Phase::Running && s.command_alive());
        if !alive {
            let why = st
                .and_then(|s| s.last_exit)
                .map(|e| {
                    format!(
                        ": it exited with {} after {:.1} s",
                        e.describe(),
                        e.uptime_s
                    )
                })
                .unwrap_or_default();
            return Err(Error::Failed(format!(
                "{name} died within {} s of starting{why}; see `process-guardian logs {name}`",
                wait.as_secs_f64()
            )));
        }
        if Instant::now() >= deadline {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn restart(ws: &Workspace, name: &str) -> Result<Output> {
    let entry = Registry::checked_entry(ws, name)?;
    let lock = state::lock_name(ws, name)?;
    let stopped = super::stop::stop_locked(ws, name, None)?;
    let started = start_locked(ws, name, Some(&entry))?;
    drop(lock);
    let started = finish_start(ws, name, started, None)?;
    Ok(output::both(name, &stopped, &started))
}

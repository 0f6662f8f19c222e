//! `stop`: the stop signal to the whole process group, SIGKILL after the
//! timeout, and a report of which signal ended it. Idempotent.

use std::time::{Duration, Instant};

use super::output::{Output, StopOutcome};
use crate::error::{Error, Result};
use crate::fsutil::{self, Durability};
use crate::proc::{self, PidFd, Signal};
use crate::registry::{Entry, Registry};
use crate::state::{self, Desired, Phase, RunState};
use crate::workspace::Workspace;

/// Extra time the supervisor gets beyond the stop timeout to finish its report.
const SUPERVISOR_GRACE: Duration = Duration::from_secs(5);

pub fn run(ws: &Workspace, name: &str, timeout: Option<Duration>) -> Result<Output> {
    Registry::precheck(ws, name)?;
    let _lock = state::lock_name(ws, name)?;
    Ok(stop_locked(ws, name, timeout)?.output())
}

/// Stops `name`; says what happened. The caller holds the name's lock.
pub fn stop_locked(ws: &Workspace, name: &str, timeout: Option<Duration>) -> Result<StopOutcome> {
    let entry = Registry::load(ws)?.require(name)?;
    stop_with(ws, name, timeout, &entry)
}

/// `stop_locked` with the entry given: `deregister` stops an entry that
/// no longer validates with the default stop signal and timeout.
pub fn stop_with(
    ws: &Workspace,
    name: &str,
    timeout: Option<Duration>,
    entry: &Entry,
) -> Result<StopOutcome> {
    let entry = entry.clone();
    let seen = state::observe(ws, name)?;
    let timeout = timeout.unwrap_or_else(|| entry.stop_timeout());
    let began = Instant::now();

    if seen.supervisor_alive
        && let Some(st) = &seen.state
        && stop_through_supervisor(ws, name, st, timeout)?
    {
        let after = RunState::load(ws, name)?.unwrap_or_default();
        return Ok(outcome(
            name,
            st.pid.filter(|_| seen.command_alive),
            after.stopped_by,
            &entry,
            began,
        ));
    }
    let mut st = seen.state.clone().unwrap_or_default();
    if seen.command_alive {
        // Nobody supervises the command: stop it ourselves.
        let by = stop_group_directly(&st, &entry, timeout)?;
        st.stopped_by = Some(by.clone());
        st.pid = None;
        st.phase = Phase::Stopped;
        st.desired = Desired::Stopped;
        st.save(ws, name)
            .map_err(|e| Error::io("write", ws.run_file(name, ".json"), e))?;
        return Ok(outcome(name, seen.pid(), Some(by), &entry, began));
    }
    if seen.state.is_some() {
        if matches!(st.phase, Phase::Running | Phase::Backoff | Phase::Failed) {
            st.phase = Phase::Stopped;
            st.pid = None;
        }
        st.desired = Desired::Stopped;
        st.save(ws, name)
            .map_err(|e| Error::io("write", ws.run_file(name, ".json"), e))?;
    }
    let mut out = outcome(name, None, None, &entry, began);
    out.stopped = false;
    Ok(out)
}

/// Asks the supervisor to stop (SIGTERM) and waits for it to finish; `false`
/// if it could not be reached, so the caller stops the command itself.
fn stop_through_supervisor(
    ws: &Workspace,
    name: &str,
    st: &RunState,
    timeout: Duration,
) -> Result<bool> {
    let (Some(pid), Some(start)) = (st.supervisor_pid, st.supervisor_start) else {
        return Ok(false);
    };
    let Some(sup) = PidFd::open_verified(pid, start, &st.boot_id) else {
        return Ok(false);
    };
    let request = ws.run_file(name, ".stop");
    fsutil::write_atomic(
        &request,
        timeout.as_secs_f64().to_string().as_bytes(),
        0o600,
        Durability::Renamed,
    )
    .map_err(|e| Error::io("write", &request, e))?;
    sup.signal(Signal::TERM)
        .map_err(|e| Error::io("signal the supervisor of", ws.run_file(name, ".json"), e))?;
    // A supervisor frozen by SIGSTOP would never act on it.
    let _ = sup.signal(Signal::CONT);
    if sup.wait_exit(timeout.saturating_add(SUPERVISOR_GRACE)) {
        return Ok(true);
    }
    // It did not answer: take it down and finish the job here.
    let _ = sup.signal(Signal::KILL);
    sup.wait_exit(Duration::from_secs(1));
    Ok(false)
}

/// Stops a command that no supervisor watches; returns the signal that
/// ended its last process. Like the supervisor, it waits for the whole
/// group and every descendant, not only the command.
fn stop_group_directly(st: &RunState, entry: &Entry, timeout: Duration) -> Result<String> {
    let (Some(pid), Some(start)) = (st.pid, st.pid_start) else {
        return Ok("none".into());
    };
    let Some(leader) = PidFd::open_verified(pid, start, &st.boot_id) else {
        return Ok("none".into());
    };
    let sig = entry.stop_signal().0;
    let tree = || {
        let mut t = proc::descendants(&[pid], &[]);
        if proc::is_ours_alive(pid, start, &st.boot_id) {
            t.push((pid, 0));
        }
        for m in proc::group_members(pid, start) {
            if !t.iter().any(|(p, _)| *p == m) {
                t.push((m, 0));
            }
        }
        t
    };
    // The leader is verified and alive, so its group id is still its own.
    let _ = leader.signal(sig);
    let _ = proc::kill_group(pid, sig);
    let _ = proc::kill_group(pid, Signal::CONT);
    for (p, parent) in proc::descendants(&[pid], &[]) {
        proc::signal_if_child_of(p, parent, sig);
    }
    let deadline = crate::fsutil::after(Instant::now(), timeout);
    while Instant::now() < deadline && !tree().is_empty() {
        std::thread::sleep(Duration::from_millis(20));
    }
    let by = if tree().is_empty() {
        crate::signals::name(sig.as_raw())
    } else {
        "KILL".to_string()
    };
    let _ = leader.signal(Signal::KILL);
    for _ in 0..5 {
        for (p, parent) in proc::descendants(&[pid], &[]) {
            proc::signal_if_child_of(p, parent, Signal::KILL);
        }
        proc::kill_leftover_group(pid, start, &st.boot_id);
        if tree().is_empty() {
            break;
        }
    }
    leader.wait_exit(Duration::from_secs(2));
    Ok(by)
}

fn outcome(
    name: &str,
    pid: Option<i32>,
    by: Option<String>,
    entry: &Entry,
    began: Instant,
) -> StopOutcome {
    StopOutcome {
        name: name.to_string(),
        stopped: true,
        pid,
        ended_by: by,
        took_s: (began.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
        stop_signal: entry.stop_signal().to_string(),
    }
}

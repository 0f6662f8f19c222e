//! `healthcheck [--json]`: the second line of defence, run by cron. Revives
//! whatever should run but is not supervised, hands a surviving command to a
//! new supervisor, and tidies up. Safe to run at any moment, concurrently with
//! itself: every decision about a name is taken under that name's lock.

use std::collections::HashSet;
use std::fs;

use serde::Serialize;

use super::output::Output;
use crate::alert::{self, Alert, Kind};
use crate::error::Result;
use crate::fsutil;
use crate::launch::{self, Mode, Ready};
use crate::policy::{self, Found, Heal};
use crate::proc;
use crate::registry::{Entry, Registry};
use crate::state::{self, Desired, Phase};
use crate::workspace::Workspace;

/// What `healthcheck --json` prints.
#[derive(Serialize)]
struct Report<'a> {
    healthy: bool,
    checked: usize,
    actions: &'a [Action],
    /// Problems that lose nothing yet but should be fixed (alert files that cannot be written).
    warnings: &'a [String],
    removed_state: &'a [String],
    processes: Vec<super::status::Row<'a>>,
}

#[derive(Serialize)]
struct Action {
    name: String,
    action: &'static str,
    detail: String,
    pid: Option<i32>,
}

pub fn run(ws: &Workspace, as_json: bool, only: Option<&str>) -> Result<Output> {
    let registry = Registry::load(ws)?;
    ws.ensure_dirs()?;
    // Our own log (cron and the warden append our output to it) stays bounded.
    let _ = crate::logs::rotate_if_over(
        &ws.logs_dir().join("healthcheck.log"),
        crate::logs::BOOKKEEPING_MAX_BYTES,
        crate::logs::BOOKKEEPING_KEEP,
    );
    if let Some(name) = only {
        registry.require(name)?;
    } else {
        // When the last full healthcheck ran, for `doctor`.
        let _ = fsutil::write_atomic(
            &ws.state_dir().join("healthcheck.stamp"),
            fsutil::now_rfc3339().as_bytes(),
            0o600,
            fsutil::Durability::Renamed,
        );
    }
    let mut actions: Vec<Action> = Vec::new();
    let mut healthy = 0usize;
    let mut to_drop = Vec::new();
    // What a process comes after is looked at (and revived) first.
    let wanted: Vec<&str> = match only {
        Some(o) => vec![o],
        None => registry.names().collect(),
    };
    let mut order_problem = None;
    let order: Vec<String> = match registry.in_start_order(&wanted) {
        Ok(order) => order,
        Err(e) => {
            order_problem = Some(format!("{e}; looked at in the registry's order"));
            wanted.iter().map(|n| n.to_string()).collect()
        }
    };
    for name in order.iter().map(String::as_str) {
        match registry.get(name) {
            Ok(Some(entry)) => match check(ws, name, &entry)? {
                Checked::Healthy => healthy += 1,
                Checked::Nothing => {}
                Checked::Drop => to_drop.push(name.to_string()),
                Checked::Acted(a) => actions.push(a),
            },
            Ok(None) => {}
            Err(e) => actions.push(action(name, "invalid", e.to_string(), None)),
        }
    }
    for name in &to_drop {
        if Registry::update(ws, |reg| reg.remove(name))? {
            let _ = fs::remove_file(ws.run_file(name, ".json"));
            let detail = format!(
                "exited over a day ago without auto_restart; removed from the registry (log kept at {})",
                ws.log_path(name).display()
            );
            actions.push(action(name, "dropped", detail, None));
        }
    }
    let removed = if only.is_none() {
        remove_orphan_state(ws)?
    } else {
        Vec::new()
    };
    let warnings: Vec<String> = alert::alert_dir_problem(ws)
        .into_iter()
        .chain(order_problem)
        .collect();
    let unhealthy = actions.iter().any(|a| a.action != "dropped");
    let registry = Registry::load(ws)?;
    let mut human: Vec<String> = actions
        .iter()
        .map(|a| format!("{} {}: {}", a.action, a.name, a.detail))
        .collect();
    human.extend(warnings.iter().map(|w| format!("warning: {w}")));
    human.push(format!(
        "healthcheck: {} registered, {healthy} healthy, {} acted on{}",
        registry.len(),
        actions.len(),
        if unhealthy {
            format!("; alerts in {}", alert::flag_path().display())
        } else {
            String::new()
        }
    ));
    let code = if unhealthy { 1 } else { 0 };
    if !as_json {
        return Ok(Output::human(human).with_code(code));
    }
    let names: Vec<String> = registry.names().map(str::to_string).collect();
    let rows = super::status::observe_all(ws, &registry, &names)?;
    let logs = super::status::logs_prefix(ws);
    let report = Report {
        healthy: !unhealthy,
        checked: registry.len(),
        actions: &actions,
        warnings: &warnings,
        removed_state: &removed,
        processes: rows
            .iter()
            .map(|(n, e, s)| super::status::row(&logs, n, e, s, None))
            .collect(),
    };
    Ok(Output::new(human, &report).with_code(code))
}

fn action(name: &str, action: &'static str, detail: String, pid: Option<i32>) -> Action {
    Action {
        name: name.to_string(),
        action,
        detail,
        pid,
    }
}

/// What the healthcheck did about one name.
enum Checked {
    Healthy,
    Nothing,
    /// An entry without auto_restart that exited over a day ago.
    Drop,
    Acted(Action),
}

/// What the healthcheck finds for `name`, in the terms of `policy::heal`.
fn found(ws: &Workspace, name: &str, entry: &Entry, seen: &state::Observed) -> Found {
    let st = seen.state.as_ref();
    Found {
        never_started: st.is_none(),
        desired_running: st.is_some_and(|s| s.desired == Desired::Running),
        phase: st.map_or(Phase::Stopped, |s| s.phase),
        // A frozen supervisor is judged as a live one first (a hung
        // command under it is replaced whole), then replaced.
        supervisor_alive: seen.supervisor_alive || seen.supervisor_frozen,
        command_alive: seen.command_alive,
        new_boot: st.is_some_and(|s| s.boot_id != proc::boot_id()),
        failed_for_s: st
            .and_then(|s| s.failed_at.as_deref())
            .and_then(fsutil::seconds_since),
        exited_for_s: st
            .and_then(|s| s.last_exit.as_ref())
            .and_then(|e| fsutil::seconds_since(&e.at)),
        auto_restart: entry.auto_restart,
        // Output waiting in its pipe is a command alive and writing under
        // a supervisor that does not drain it: that supervisor is replaced,
        // the command adopted, not killed.
        stale: entry.stale_after_min.is_some_and(|m| {
            log_quiet_for_s(ws, name).is_some_and(|q| q >= m * 60.0 + policy::STALE_GRACE_S)
                && crate::output::pending_output(ws, name) == 0
        }),
    }
}

/// Looks at one name cheaply, and takes its lock only where there is work.
fn check(ws: &Workspace, name: &str, entry: &Entry) -> Result<Checked> {
    let first_seen = state::observe(ws, name)?;
    match policy::heal(&found(ws, name, entry, &first_seen)) {
        Heal::Nothing => return Ok(Checked::Nothing),
        Heal::Healthy if !first_seen.supervisor_frozen => return Ok(Checked::Healthy),
        Heal::Drop => return Ok(Checked::Drop),
        _ => {}
    }
    let _lock = state::lock_name(ws, name)?;
    // Decide again under the lock: another healthcheck may have acted meanwhile.
    if !Registry::load(ws)?.contains(name) {
        return Ok(Checked::Nothing);
    }
    let mut seen = state::observe(ws, name)?;
    let mut decision = policy::heal(&found(ws, name, entry, &seen));
    // A frozen supervisor holds its lock and does nothing: replace it.
    let mut frozen = None;
    if decision == Heal::Healthy
        && seen.supervisor_frozen
        && let Some(st) = &seen.state
    {
        kill_verified(st.supervisor_pid, st.supervisor_start, &st.boot_id, false);
        frozen = st.supervisor_pid;
        seen = state::observe(ws, name)?;
        decision = policy::heal(&found(ws, name, entry, &seen));
    }
    let (mode, kind, why) = match plan(name, entry, &seen, decision, frozen) {
        Plan::Done(checked) => return Ok(checked),
        Plan::Launch(mode, kind, why) => (mode, kind, why),
    };
    Ok(launch(ws, name, entry, &seen, mode, kind, why))
}

enum Plan {
    Done(Checked),
    /// Start a supervisor in this mode; alert this kind with this reason.
    Launch(Mode, Kind, String),
}

/// What to do about a decision taken under the lock: one arm per `Heal`,
/// kept together as the table it is (hence its length).
fn plan(
    name: &str,
    entry: &Entry,
    seen: &state::Observed,
    decision: Heal,
    frozen: Option<i32>,
) -> Plan {
    match decision {
        Heal::Healthy => Plan::Done(Checked::Healthy),
        Heal::Nothing | Heal::Drop => Plan::Done(Checked::Nothing),
        Heal::ReportFailed => {
            let msg = seen
                .state
                .as_ref()
                .and_then(|s| s.message.clone())
                .unwrap_or_default();
            Plan::Done(Checked::Acted(action(
                name,
                "failed",
                format!(
                    "gave up: {msg}; it gets one fresh try an hour after failing, or start it yourself"
                ),
                None,
            )))
        }
        Heal::Adopt => Plan::Launch(
            Mode::Adopt,
            Kind::SupervisorLost,
            match frozen {
                Some(pid) => format!(
                    "its supervisor (pid {pid}) was frozen (stopped by a signal) and was replaced; the command kept running"
                ),
                None => "its supervisor died; the command kept running".to_string(),
            },
        ),
        Heal::Revive { new_boot: true } => {
            Plan::Launch(Mode::Revive, Kind::Died, "the machine rebooted".to_string())
        }
        Heal::Revive { new_boot: false } => Plan::Launch(
            Mode::Revive,
            Kind::Died,
            match frozen {
                Some(pid) => format!(
                    "its command was dead under a frozen supervisor (pid {pid}, stopped by a signal), which was replaced"
                ),
                None => "its supervisor and command were both dead".to_string(),
            },
        ),
        Heal::Stale => {
            // Its supervisor let a hung command be: replace both.
            if let Some(st) = &seen.state {
                kill_verified(st.supervisor_pid, st.supervisor_start, &st.boot_id, false);
                kill_verified(st.pid, st.pid_start, &st.boot_id, true);
            }
            Plan::Launch(
                Mode::Revive,
                Kind::Stale,
                format!(
                    "no output for over {} min and its supervisor did not act",
                    entry.stale_after_min.unwrap_or_default()
                ),
            )
        }
        Heal::Retry => Plan::Launch(
            Mode::Retry,
            Kind::Died,
            "it had been failed for an hour; one fresh try".to_string(),
        ),
    }
}

/// Starts a supervisor to adopt or revive `name`, and alerts.
fn launch(
    ws: &Workspace,
    name: &str,
    entry: &Entry,
    seen: &state::Observed,
    mode: Mode,
    kind: Kind,
    why: String,
) -> Checked {
    let old_pid = seen.state.as_ref().and_then(|s| s.pid);
    let (verb, detail, pid) = match launch::spawn_supervisor(ws, name, mode, Some(entry)) {
        Ok(Ready::Started(pid)) if mode == Mode::Adopt => (
            "adopted",
            format!("{why}; a new supervisor watches pid {pid}"),
            Some(pid),
        ),
        Ok(Ready::Started(pid)) => (
            "revived",
            format!("{why}; started again as pid {pid}"),
            Some(pid),
        ),
        Ok(Ready::Already) => return Checked::Healthy,
        Ok(Ready::Failed(reason)) => (
            "start-failed",
            format!("{why}; cannot start: {reason}"),
            None,
        ),
        Err(e) => (
            "start-failed",
            format!("{why}; cannot start a supervisor: {e}"),
            None,
        ),
    };
    if pid.is_some() {
        let mut a = Alert::new(
            ws,
            name,
            kind,
            format!("{name}: {detail}"),
            old_pid.or(pid), // the process that died (or was adopted)
            seen.state.as_ref().and_then(|s| s.last_exit.clone()),
        );
        alert::raise_and_wait(ws, &mut a, entry.alert_command.as_deref());
    }
    Checked::Acted(action(name, verb, detail, pid))
}

/// Seconds since the log of `name` last grew.
fn log_quiet_for_s(ws: &Workspace, name: &str) -> Option<f64> {
    let modified = fs::symlink_metadata(ws.log_path(name))
        .and_then(|m| m.modified())
        .ok()?;
    Some(
        std::time::SystemTime::now()
            .duration_since(modified)
            .ok()?
            .as_secs_f64(),
    )
}

/// SIGKILLs a recorded process (and with `group`, its process group) if it
/// is still the one recorded, and waits briefly for it to go.
fn kill_verified(pid: Option<i32>, start: Option<u64>, boot: &str, group: bool) {
    let (Some(pid), Some(start)) = (pid, start) else {
        return;
    };
    let Some(fd) = proc::PidFd::open_verified(pid, start, boot) else {
        return;
    };
    if group {
        let _ = proc::kill_group(pid, proc::Signal::KILL);
    }
    let _ = fd.signal(proc::Signal::KILL);
    fd.wait_exit(std::time::Duration::from_secs(2));
}

/// Removes run files of names no longer registered (and not supervised).
fn remove_orphan_state(ws: &Workspace) -> Result<Vec<String>> {
    let registry = Registry::load(ws)?;
    let known: HashSet<&str> = registry.names().collect();
    let mut removed = Vec::new();
    let Ok(dir) = fs::read_dir(ws.run_dir()) else {
        return Ok(removed);
    };
    for e in dir.flatten() {
        let file = e.file_name().to_string_lossy().into_owned();
        let Some(name) = [".json", ".lock", ".stop", ".env", ".out", state::SPARE]
            .iter()
            .find_map(|s| file.strip_suffix(s))
        else {
            continue;
        };
        if known.contains(name)
            || crate::registry::validate_name(name).is_err()
            || state::supervisor_alive(ws, name)
        {
            continue;
        }
        if fs::remove_file(e.path()).is_ok() && file.ends_with(".json") {
            removed.push(name.to_string());
        }
    }
    Ok(removed)
}

//! `register` and `run`: define (or update) an entry; `run` also starts it.

use super::output::Output;
use super::start;
use crate::cli::{EntryOpts, RunArgs};
use crate::cmdline;
use crate::error::{Error, Result};
use crate::registry::{self, Entry, Registry, parse_env_pair};
use crate::state;
use crate::workspace::Workspace;

fn build_entry(command: String, duration_min: Option<f64>, opts: &EntryOpts) -> Result<Entry> {
    let mut e = Entry::new(command);
    e.duration_min = duration_min.unwrap_or(0.0);
    e.auto_restart = !opts.no_auto_restart;
    if let Some(n) = opts.max_restarts {
        e.max_restarts = n;
    }
    if let Some(s) = opts.restart_cooldown {
        e.restart_cooldown = s;
    }
    // The working directory is captured now, so cron and the shell agree later.
    let cwd = match &opts.cwd {
        Some(dir) => std::fs::canonicalize(dir).map_err(|_| {
            Error::Invalid(format!(
                "--cwd {}: not an existing directory",
                dir.display()
            ))
        })?,
        None => {
            std::env::current_dir().map_err(|e| Error::io("read", "the current directory", e))?
        }
    };
    e.cwd = Some(cwd.display().to_string());
    for pair in &opts.env {
        let (k, v) = parse_env_pair(pair)?;
        e.env.insert(k, v);
    }
    e.stop_signal = opts
        .stop_signal
        .as_deref()
        .map(|s| crate::signals::parse(s).map(crate::signals::StopSignal))
        .transpose()?;
    e.stop_timeout_s = opts.stop_timeout;
    e.alert_command = opts.alert_command.clone();
    e.stale_after_min = opts.stale_after;
    e.log_max_bytes = opts.log_max_bytes;
    e.log_keep = opts.log_keep;
    e.timestamps = opts.timestamps;
    e.after = opts.after.clone();
    let probe = crate::probe::Ready {
        http: opts.ready_http.clone(),
        tcp: opts.ready_tcp.clone(),
        cmd: opts.ready_cmd.clone(),
        log: opts.ready_log.clone(),
        timeout_s: opts.ready_timeout,
    };
    e.ready = (probe != crate::probe::Ready::default()).then_some(probe);
    let health = crate::probe::Health {
        http: opts.health_http.clone(),
        tcp: opts.health_tcp.clone(),
        cmd: opts.health_cmd.clone(),
        interval_s: opts.health_interval,
        timeout_s: opts.health_timeout,
        failures: opts.health_failures,
    };
    e.health = (health != crate::probe::Health::default()).then_some(health);
    e.max_memory_bytes = opts
        .max_memory
        .as_deref()
        .map(|s| {
            crate::probe::parse_size(s).ok_or_else(|| {
                Error::Invalid(format!(
                    "--max-memory {s:?}: not a size (200M, 1.5G, 500K, or a number of bytes)"
                ))
            })
        })
        .transpose()?;
    // Kept as an absolute path, so that it means the same from anywhere.
    e.env_file = opts
        .env_file
        .as_ref()
        .map(|p| cwd.join(p).display().to_string());
    e.validate()?;
    Ok(e)
}

pub(super) fn describe(e: &Entry) -> String {
    let mut parts = vec![];
    if e.duration_min > 0.0 {
        parts.push(format!("duration {} min", e.duration_min));
    } else {
        parts.push("runs indefinitely".into());
    }
    if e.auto_restart {
        let limit = if e.max_restarts == 0 {
            "no limit".to_string()
        } else {
            e.max_restarts.to_string()
        };
        parts.push(format!(
            "auto-restart (quick crashes allowed: {limit}, cooldown {} s)",
            e.restart_cooldown
        ));
    } else {
        parts.push("no auto-restart".into());
    }
    parts.join(", ")
}

pub fn register(
    ws: &Workspace,
    name: &str,
    command: String,
    duration_min: Option<f64>,
    opts: &EntryOpts,
) -> Result<Output> {
    let entry = build_entry(command, duration_min, opts)?;
    // Fields this version does not know survive a re-registration (see Registry::insert).
    let updated = Registry::update(ws, |reg| reg.insert_in_order(name, &entry))?;
    let seen = state::observe(ws, name)?;
    let running = seen
        .state
        .as_ref()
        .and_then(|s| s.running_definition())
        .filter(|_| seen.supervisor_alive);
    let stale = running
        .as_ref()
        .map(|def| registry::changes(def, &entry))
        .unwrap_or_default();
    let mut human = vec![format!(
        "{} {name}: {} ({})",
        if updated { "updated" } else { "registered" },
        entry.command,
        describe(&entry)
    )];
    if !stale.is_empty() {
        human.push(format!(
            "it keeps running with its old definition ({}) until: process-guardian restart {name}",
            stale.join("; ")
        ));
    } else if running.is_none() && !seen.supervisor_alive {
        human.push(format!("start it with: process-guardian start {name}"));
    }
    Ok(Output::new(
        human,
        serde_json::json!({
            "name": name,
            "result": if updated { "updated" } else { "registered" },
            "entry": entry,
            "config_changed": !stale.is_empty(),
            "changes": stale,
        }),
    ))
}

/// `run`: declares what should run. Not running: register and start it.
/// Running with the same definition: nothing to do. Running with another:
/// the registry is updated and the process restarted, saying what changed.
pub fn run(ws: &Workspace, a: &RunArgs) -> Result<Output> {
    run_command(ws, &a.name, cmdline::join(&a.argv), a.duration, &a.opts)
}

/// `run` with the command line as one string (as `register` takes it).
pub fn run_command(
    ws: &Workspace,
    name: &str,
    command: String,
    duration_min: Option<f64>,
    opts: &EntryOpts,
) -> Result<Output> {
    let entry = build_entry(command, duration_min, opts)?;
    let lock = state::lock_name(ws, name)?;
    let before = Registry::load(ws)?.get(name).ok().flatten();
    Registry::update(ws, |reg| reg.insert_in_order(name, &entry))?;
    let seen = state::observe(ws, name)?;
    if !seen.supervisor_alive {
        let before = start::start_after(ws, name, &entry.after)?;
        let started = start::start_locked(ws, name, Some(&entry))?;
        drop(lock);
        let mut outcome = start::finish_start(ws, name, started, None)?;
        outcome.after = before;
        return Ok(outcome.output());
    }
    let running = seen
        .state
        .as_ref()
        .and_then(|s| s.running_definition())
        .or(before);
    let changed = match &running {
        Some(def) => registry::changes(def, &entry),
        None => vec!["definition: unknown → as given".to_string()],
    };
    if changed.is_empty() {
        let started = start::Started::Already {
            pid: seen.pid(),
            shown: seen.shown.as_str(),
        };
        drop(lock);
        return Ok(start::finish_start(ws, name, started, None)?.output());
    }
    let stopped = super::stop::stop_locked(ws, name, None)?;
    let started = start::start_locked(ws, name, Some(&entry))?;
    drop(lock);
    let started = start::finish_start(ws, name, started, None)?;
    let mut out = super::output::both(name, &stopped, &started);
    let mut human = vec![format!(
        "{name}: its definition changed, so it was restarted:"
    )];
    human.extend(changed.iter().map(|c| format!("  {c}")));
    human.append(&mut out.human);
    out.human = human;
    out.json = serde_json::to_string_pretty(&serde_json::json!({
        "name": name,
        "changes": changed,
        "stop": stopped,
        "start": started,
    }))
    .unwrap_or_default();
    Ok(out)
}

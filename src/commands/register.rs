//! `register` and `run`: define (or update) an entry; `run` also starts it.

use super::output::Output;
use crate::cli::{EntryOpts, RunArgs};
use crate::cmdline;
use crate::error::{Error, Result};
use crate::registry::{Entry, Registry, parse_env_pair};
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
    e.validate()?;
    Ok(e)
}

fn describe(e: &Entry) -> String {
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
    let updated = Registry::update(ws, |reg| reg.insert(name, &entry))?;
    let running = updated && state::supervisor_alive(ws, name);
    let mut human = vec![format!(
        "{} {name}: {} ({})",
        if updated { "updated" } else { "registered" },
        entry.command,
        describe(&entry)
    )];
    if running {
        human.push(format!(
            "it is running with the old settings; apply them with: process-guardian restart {name}"
        ));
    } else if !updated {
        human.push(format!("start it with: process-guardian start {name}"));
    }
    Ok(Output::new(
        human,
        serde_json::json!({
            "name": name,
            "result": if updated { "updated" } else { "registered" },
            "entry": entry,
            "running_with_old_definition": running,
        }),
    ))
}

pub fn run(ws: &Workspace, a: &RunArgs) -> Result<Output> {
    let command = cmdline::join(&a.argv);
    let entry = build_entry(command, a.duration, &a.opts)?;
    Registry::update(ws, |reg| reg.insert(&a.name, &entry))?;
    super::start::start(ws, &a.name, None)
}

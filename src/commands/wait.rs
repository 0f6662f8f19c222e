//! `wait <name> --for running|ready|stopped|exited [--timeout S]`: blocks
//! until the process reaches that state (exit 0) or the time is up (exit 1).
//! It looks again when the state file changes, checking its stamp every
//! 20 ms (a `stat`), and at least every half second for what no state file
//! records (a supervisor that died).

use std::time::{Duration, Instant};

use serde_json::json;

use super::output::Output;
use crate::cli::WaitFor;
use crate::error::Result;
use crate::registry::Registry;
use crate::state::{self, Shown};
use crate::workspace::Workspace;

/// How long `wait` waits without `--timeout`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

pub fn run(ws: &Workspace, name: &str, until: WaitFor, timeout: Option<f64>) -> Result<Output> {
    let timeout = timeout
        .map(|t| super::start::flag_secs("--timeout", t))
        .transpose()?
        .unwrap_or(DEFAULT_TIMEOUT);
    Registry::load(ws)?.require(name)?;
    let started = Instant::now();
    let deadline = crate::fsutil::after(started, timeout);
    let path = ws.run_file(name, ".json");
    let stamp = || {
        std::fs::symlink_metadata(&path)
            .ok()
            .map(|m| (m.modified().ok(), m.len()))
    };
    let mut last_stamp = None;
    let mut last_look = started;
    loop {
        let now = Instant::now();
        let changed = stamp();
        let look = changed != last_stamp
            || now >= deadline
            || now.duration_since(last_look) >= Duration::from_millis(500);
        if look {
            last_stamp = changed;
            last_look = now;
            let seen = state::observe(ws, name)?;
            if reached(until, seen.shown, seen.command_alive) {
                let waited = started.elapsed().as_secs_f64();
                let shown = seen.shown.as_str();
                return Ok(Output::new(
                    vec![format!("{name} is {shown} (after {waited:.2} s)")],
                    json!({ "name": name, "for": until, "reached": true, "state": shown,
                            "pid": seen.pid(), "waited_s": waited }),
                ));
            }
            if now >= deadline {
                let shown = seen.shown.as_str();
                let waited = started.elapsed().as_secs_f64();
                return Ok(Output::new(
                    vec![format!(
                        "{name} is still {shown} after {waited:.1} s (waited for {})",
                        serde_json::to_value(until)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string))
                            .unwrap_or_default()
                    )],
                    json!({ "name": name, "for": until, "reached": false, "state": shown,
                            "pid": seen.pid(), "waited_s": waited }),
                )
                .with_code(crate::error::EXIT_FAILURE));
            }
        }
        std::thread::sleep(Duration::from_millis(20).min(deadline.saturating_duration_since(now)));
    }
}

fn reached(until: WaitFor, shown: Shown, command_alive: bool) -> bool {
    match until {
        // Without a readiness probe, ready is running with its exec confirmed.
        WaitFor::Running => matches!(shown, Shown::Running | Shown::Starting) && command_alive,
        WaitFor::Ready => shown == Shown::Running && command_alive,
        WaitFor::Stopped => shown == Shown::Stopped,
        WaitFor::Exited => matches!(
            shown,
            Shown::Completed | Shown::Exited | Shown::Failed | Shown::Stopped | Shown::Dead
        ),
    }
}

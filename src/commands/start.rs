//! `start` and `restart`.

use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::launch::{self, Mode, Ready};
use crate::registry::Registry;
use crate::state::{self, Phase, RunState};
use crate::workspace::Workspace;

pub fn start(ws: &Workspace, name: &str, wait: Option<f64>) -> Result<i32> {
    if let Some(w) = wait
        && !(w.is_finite() && w >= 0.0)
    {
        return Err(Error::Invalid(format!(
            "--wait must be a non-negative number of seconds, not {w}"
        )));
    }
    Registry::load(ws)?.require(name)?;
    let lock = state::lock_name(ws, name)?;
    let seen = state::observe(ws, name)?;
    if seen.supervisor_alive {
        match seen.pid() {
            Some(pid) => println!("{name} is already running (pid {pid})"),
            None => println!("{name} is already supervised ({})", seen.shown.as_str()),
        }
        return Ok(0);
    }
    // A command that outlived its supervisor is adopted, never started twice.
    let mode = if seen.command_alive {
        Mode::Adopt
    } else {
        Mode::Fresh
    };
    let ready = launch::spawn_supervisor(ws, name, mode)?;
    drop(lock);
    match ready {
        Ready::Started(pid) => {
            if mode == Mode::Adopt {
                println!("{name} was still running (pid {pid}); it is supervised again");
            } else {
                println!("started {name} (pid {pid})");
            }
            if let Some(secs) = wait {
                wait_alive(ws, name, pid, secs)?;
                println!("{name} is still running after {secs} s");
            }
            Ok(0)
        }
        Ready::Already => {
            println!("{name} is already running");
            Ok(0)
        }
        Ready::Failed(reason) => Err(Error::Failed(format!(
            "{name} cannot start: {reason}\n  fix the command with `process-guardian register {name} ...`, then start it again; its log: {}",
            ws.log_path(name).display()
        ))),
    }
}

/// `start --wait`: fails if the command started as `pid` dies within `secs`.
fn wait_alive(ws: &Workspace, name: &str, pid: i32, secs: f64) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs_f64(secs.max(0.0));
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
                "{name} died within {secs} s of starting{why}; see `process-guardian logs {name}`"
            )));
        }
        if Instant::now() >= deadline {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn restart(ws: &Workspace, name: &str) -> Result<i32> {
    Registry::load(ws)?.require(name)?;
    super::stop::stop(ws, name, None)?;
    start(ws, name, None)
}

//! `signal <name> <SIG>`: a signal to the running command's process group.
//! The command keeps running unless the signal ends it; then its supervisor
//! handles the exit like any other.

use serde_json::json;

use super::output::Output;
use crate::error::{Error, Result};
use crate::proc::{self, PidFd};
use crate::registry::Registry;
use crate::state;
use crate::workspace::Workspace;

pub fn run(ws: &Workspace, name: &str, signal: &str) -> Result<Output> {
    let sig = crate::signals::parse(signal)?;
    let sig_name = crate::signals::name(sig.as_raw());
    Registry::load(ws)?.require(name)?;
    let seen = state::observe(ws, name)?;
    let not_running = || {
        Error::Failed(format!(
            "{name} is not running ({}): nothing to signal; start it with: process-guardian start {name}",
            seen.shown.as_str()
        ))
    };
    let st = seen.state.as_ref().filter(|_| seen.command_alive);
    let (pid, start, boot) = st
        .and_then(|s| Some((s.pid?, s.pid_start?, s.boot_id.as_str())))
        .ok_or_else(not_running)?;
    // The group is the leader's only while the leader is the recorded process.
    let _leader = PidFd::open_verified(pid, start, boot).ok_or_else(not_running)?;
    proc::kill_group(pid, sig).map_err(|e| {
        Error::Failed(format!(
            "cannot send SIG{sig_name} to {name} (process group {pid}): {e}"
        ))
    })?;
    Ok(Output::new(
        vec![format!(
            "sent SIG{sig_name} to {name} (process group {pid})"
        )],
        json!({ "name": name, "signal": sig_name, "pid": pid }),
    ))
}

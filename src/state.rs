//! Runtime state of one process, `run/<name>.json`, and what it means now.
//!
//! While a supervisor lives it is the only writer of its state file (it holds
//! its liveness lock, a byte of `supervisors.lock`); the CLI writes the file
//! only under the per-name lock `run/<name>.lock` and only when no
//! supervisor lives. Every write puts a whole file in place at once (a
//! rename, or an exchange with the supervisor's spare `run/<name>.spare`),
//! so a reader never sees half a file.

use std::fs;
use std::io;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fsutil::{self, Durability};
use crate::proc;
use crate::workspace::Workspace;

pub mod table;

/// The suffix of the supervisor's spare state file, `run/<name>.spare`.
pub const SPARE: &str = ".spare";

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Desired {
    #[default]
    Running,
    Stopped,
}

/// What the supervisor last recorded.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    #[default]
    Running,
    Backoff,
    Stopped,
    Completed,
    Exited,
    Failed,
}

/// The state a person or program sees: the phase, read against what is alive now.
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Shown {
    /// Running, its readiness probe not passed yet.
    Starting,
    Running,
    Backoff,
    Stopped,
    Completed,
    Exited,
    Failed,
    Dead,
    NeverStarted,
}

impl Shown {
    pub fn as_str(self) -> &'static str {
        match self {
            Shown::Starting => "starting",
            Shown::Running => "running",
            Shown::Backoff => "backoff",
            Shown::Stopped => "stopped",
            Shown::Completed => "completed",
            Shown::Exited => "exited",
            Shown::Failed => "failed",
            Shown::Dead => "dead",
            Shown::NeverStarted => "never-started",
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ExitRecord {
    pub code: Option<i32>,
    /// Signal name without `SIG`, e.g. `KILL`.
    pub signal: Option<String>,
    pub at: String,
    pub uptime_s: f64,
}

impl ExitRecord {
    pub fn describe(&self) -> String {
        describe_exit(self.code, self.signal.as_deref())
    }
}

/// How a process ended, in words: `signal KILL`, `code 1`: the one place
/// that says it, for records, reaped children and alerts.
pub fn describe_exit(code: Option<i32>, signal: Option<&str>) -> String {
    match (signal, code) {
        (Some(sig), _) => format!("signal {sig}"),
        (None, Some(code)) => format!("code {code}"),
        (None, None) => "unknown status".to_string(),
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, Default)]
#[serde(default)]
pub struct RunState {
    pub desired: Desired,
    pub phase: Phase,
    pub boot_id: String,
    /// The command (leader of its own process group).
    pub pid: Option<i32>,
    pub pid_start: Option<u64>,
    pub supervisor_pid: Option<i32>,
    pub supervisor_start: Option<u64>,
    /// When the current command started.
    pub started_at: Option<String>,
    /// Restarts since the last start by the user.
    pub restarts: u32,
    pub quick_crashes: u32,
    pub last_exit: Option<ExitRecord>,
    pub next_start_at: Option<String>,
    pub failed_at: Option<String>,
    pub stopped_by: Option<String>,
    pub message: Option<String>,
    /// With a readiness probe: whether the running command has passed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<bool>,
    /// Its tree's CPU and memory, as the supervisor last sampled them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<crate::proc::Usage>,
    /// The entry the command was started with, as the supervisor read it,
    /// kept as its JSON text: `status` compares that text with the
    /// registry's entry written the same way (`config_changed`) without
    /// parsing it; `run` and `register` parse it to say what changed.
    pub definition: Option<Box<serde_json::value::RawValue>>,
    /// Read from the state table (which keeps the definition's hash, not
    /// its text): the hash of the definition.
    #[serde(skip)]
    pub definition_hash: Option<u64>,
    /// Written when the state last changed.
    pub updated_at: Option<String>,
}

impl RunState {
    /// Reads `run/<name>.json`, which must be a regular file of ours.
    pub fn load(ws: &Workspace, name: &str) -> Result<Option<RunState>> {
        RunState::read(ws, name, true)
    }

    fn read(ws: &Workspace, name: &str, check_owner: bool) -> Result<Option<RunState>> {
        match ws
            .open_run_file(name, ".json", check_owner)
            .and_then(fsutil::read_all)
        {
            // Checked as UTF-8 once, not string by string.
            Ok(bytes) => Ok(std::str::from_utf8(&bytes)
                .ok()
                .and_then(|text| serde_json::from_str(text).ok())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            // The path is only spelled out for the message: a listing reads
            // one state file per process.
            Err(e) => Err(Error::io("read", ws.run_file(name, ".json"), e)),
        }
    }

    pub fn save(&mut self, ws: &Workspace, name: &str) -> io::Result<()> {
        self.save_with(ws, name, |path, bytes| {
            fsutil::write_atomic(path, bytes, 0o600, Durability::Renamed)
        })
    }

    /// `save` by the supervisor of `name`, which alone writes through
    /// `run/<name>.spare` (`fsutil::write_through_spare`): only the holder
    /// of the name's liveness lock may call it, so no two writers share the
    /// spare. A save creates no file then, and one save is on the way to
    /// `start`'s report.
    pub fn save_supervised(&mut self, ws: &Workspace, name: &str) -> io::Result<()> {
        self.save_with(ws, name, |path, bytes| {
            fsutil::write_through_spare(path, &ws.run_file(name, SPARE), bytes)
        })
    }

    /// Stamps, writes `run/<name>.json` with `write`, then copies the
    /// state to the table.
    fn save_with(
        &mut self,
        ws: &Workspace,
        name: &str,
        write: impl FnOnce(&std::path::Path, &[u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        self.updated_at = Some(fsutil::now_rfc3339());
        let bytes = serde_json::to_vec(self).map_err(io::Error::other)?;
        write(&ws.run_file(name, ".json"), &bytes)?;
        table::copy(ws, name, self);
        Ok(())
    }

    /// Whether the recorded command is alive and is the one recorded.
    pub fn command_alive(&self) -> bool {
        match (self.pid, self.pid_start) {
            (Some(pid), Some(start)) => proc::is_ours_alive(pid, start, &self.boot_id),
            _ => false,
        }
    }

    /// The entry the command runs with, if the supervisor recorded it.
    pub fn running_definition(&self) -> Option<crate::registry::Entry> {
        serde_json::from_str(self.definition.as_ref()?.get()).ok()
    }

    /// Whether the command runs with `entry` as it is now.
    pub fn runs_definition(&self, entry: &crate::registry::Entry) -> Option<bool> {
        match (&self.definition, self.definition_hash) {
            (Some(recorded), _) => {
                Some(serde_json::to_string(entry).is_ok_and(|now| now == recorded.get()))
            }
            (None, Some(hash)) => Some(table::hash_definition_of(entry) == Some(hash)),
            (None, None) => None,
        }
    }

    /// An entry as the definition to record.
    pub fn record_definition(&mut self, entry: &crate::registry::Entry) {
        self.definition = serde_json::to_string(entry)
            .ok()
            .and_then(|t| serde_json::value::RawValue::from_string(t).ok());
    }

    pub fn uptime_s(&self) -> Option<f64> {
        self.started_at.as_deref().and_then(fsutil::seconds_since)
    }
}

/// Whether a supervisor for `name` is alive: it holds its byte of `run/supervisors.lock`.
pub fn supervisor_alive(ws: &Workspace, name: &str) -> bool {
    ws.supervisors_lock()
        .is_some_and(|f| proc::lock_is_held_on(f, liveness_slot(name)))
}

/// The byte of `run/supervisors.lock` that the supervisor of `name` locks:
/// a 62-bit FNV-1a hash of the name, so two names practically never share one.
pub fn liveness_slot(name: &str) -> i64 {
    (crate::fnv::hash(name.as_bytes()) >> 2) as i64
}

/// Serialises decisions about one process (start, stop, revive) between
/// commands and concurrent healthchecks.
pub fn lock_name(ws: &Workspace, name: &str) -> Result<fs::File> {
    ws.ensure_dirs()?;
    fsutil::lock_exclusive(&ws.run_file(name, ".lock"))
}

/// The state and what it means now.
#[derive(Debug, Clone)]
pub struct Observed {
    pub shown: Shown,
    pub state: Option<RunState>,
    pub supervisor_alive: bool,
    /// Its supervisor holds its lock but is stopped (SIGSTOP) and so does
    /// nothing: it counts as no supervisor, and the healthcheck replaces it.
    pub supervisor_frozen: bool,
    pub command_alive: bool,
}

impl Observed {
    pub fn pid(&self) -> Option<i32> {
        if self.command_alive {
            self.state.as_ref().and_then(|s| s.pid)
        } else {
            None
        }
    }
    pub fn desired(&self) -> Desired {
        self.state
            .as_ref()
            .map(|s| s.desired)
            .unwrap_or(Desired::Stopped)
    }
}

/// The state of `name` and what it means now, looked at closely: a
/// supervisor frozen by SIGSTOP counts as none. For decisions (start,
/// stop, healthcheck) and `status NAME`.
pub fn observe(ws: &Workspace, name: &str) -> Result<Observed> {
    let state = RunState::load(ws, name)?;
    Ok(observe_state(ws, name, state, true))
}

/// `observe` for a listing of many: a live supervisor's record is trusted
/// without a look at `/proc` (which costs more than the rest of a row), and
/// read from the state table while it holds its lock (see `table`).
pub fn observe_quick(ws: &Workspace, name: &str) -> Result<Observed> {
    if let Some(state) = ws.state_table_to_read().and_then(|t| table::read(t, name))
        && supervisor_alive(ws, name)
    {
        return Ok(observe_known(ws, name, Some(state), false, Some(true)));
    }
    let state = RunState::read(ws, name, false)?;
    Ok(observe_state(ws, name, state, false))
}

/// What `state` means now; with `deep`, a frozen supervisor is detected.
pub fn observe_state(ws: &Workspace, name: &str, state: Option<RunState>, deep: bool) -> Observed {
    observe_known(ws, name, state, deep, None)
}

/// `observe_state`, told whether the supervisor holds its lock if that is known.
fn observe_known(
    ws: &Workspace,
    name: &str,
    state: Option<RunState>,
    deep: bool,
    holds: Option<bool>,
) -> Observed {
    let Some(st) = state else {
        return Observed {
            shown: Shown::NeverStarted,
            state: None,
            supervisor_alive: false,
            supervisor_frozen: false,
            command_alive: false,
        };
    };
    let same_boot = st.boot_id == proc::boot_id();
    // Only a process that may be running needs a look at the live system.
    let may_run = matches!(st.phase, Phase::Running | Phase::Backoff);
    let holds_lock = same_boot && may_run && holds.unwrap_or_else(|| supervisor_alive(ws, name));
    let supervisor_frozen = deep
        && holds_lock
        && st
            .supervisor_pid
            .and_then(proc::stat)
            .is_some_and(|s| s.is_frozen() && Some(s.start_time) == st.supervisor_start);
    let supervisor_alive = holds_lock && !supervisor_frozen;
    // A live supervisor rewrites its state the moment its command changes, so
    // its record is trusted; without one, the recorded identity is checked.
    let command_alive = if supervisor_alive && st.phase == Phase::Running {
        st.pid.is_some()
    } else {
        same_boot && st.command_alive()
    };
    let shown = match st.phase {
        Phase::Stopped => Shown::Stopped,
        Phase::Completed => Shown::Completed,
        Phase::Exited => Shown::Exited,
        Phase::Failed => Shown::Failed,
        Phase::Running | Phase::Backoff if !supervisor_alive => {
            if st.desired == Desired::Running {
                Shown::Dead
            } else {
                Shown::Stopped
            }
        }
        Phase::Running if st.ready == Some(false) => Shown::Starting,
        Phase::Running => Shown::Running,
        Phase::Backoff => Shown::Backoff,
    };
    Observed {
        shown,
        state: Some(st),
        supervisor_alive,
        supervisor_frozen,
        command_alive,
    }
}

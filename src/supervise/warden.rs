//! The warden: the safety net without cron. One supervisor of a workspace
//! at a time holds `.process-guardian/warden.lock` (an flock, released by
//! its death, kill -9 included); every supervisor tries it, without
//! waiting, once a second, so when the warden dies another takes over.
//!
//! Once a second the warden looks at every process that should run: one
//! `fcntl` on the supervisors' lock file each. For a name whose supervisor
//! is gone while its state says it should run, it starts a short-lived
//! `process-guardian healthcheck --only NAME`, which does exactly what the
//! cron healthcheck does for that name (adopt the live command, or revive
//! it; the same alerts; under the same per-name lock, so the warden, cron
//! and the user's commands never start two copies). The supervisor stays
//! lean: no repair logic lives in it.

use std::fs::{File, OpenOptions};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use crate::fsutil;
use crate::launch::Spawner;
use crate::proc;
use crate::registry::Registry;
use crate::state::{self, Desired, Phase, RunState};
use crate::workspace::Workspace;

/// A repair that has not ended by then is not waited for any longer.
const REPAIR_LIMIT: Duration = Duration::from_secs(60);

#[derive(Default)]
pub struct Warden {
    /// `warden.lock`, open; `held` once it is ours.
    lock: Option<File>,
    held: bool,
    /// The registered names, read again when the registry changes.
    names: Vec<String>,
    stamp: Option<(u64, i64, i64, u64)>,
    /// Repairs under way: name, pid of the healthcheck, when started.
    repairs: Vec<(String, i32, Instant)>,
}

impl Warden {
    /// The healthcheck processes it started (not part of any command's tree).
    pub fn pids(&self) -> Vec<i32> {
        self.repairs.iter().map(|(_, p, _)| *p).collect()
    }

    /// Takes a reaped child off the list if it was a repair.
    pub fn reaped(&mut self, pid: i32) -> bool {
        let before = self.repairs.len();
        self.repairs.retain(|(_, p, _)| *p != pid);
        self.repairs.len() != before
    }

    /// Once a second: become the warden if none is, and if it is, repair
    /// what should run but has no supervisor. Returns lines for the log.
    pub fn tick(&mut self, ws: &Workspace, me: &str, now: Instant) -> Vec<String> {
        let mut said = Vec::new();
        if !self.held {
            if !self.try_take(ws) {
                return said;
            }
            said.push("this supervisor is now the warden of the workspace".to_string());
        }
        self.refresh_names(ws);
        self.repairs
            .retain(|(_, _, at)| now.saturating_duration_since(*at) < REPAIR_LIMIT);
        let lost: Vec<String> = self
            .names
            .iter()
            .filter(|n| *n != me && !self.repairs.iter().any(|(r, _, _)| r == *n))
            .filter(|n| needs_repair(ws, n))
            .cloned()
            .collect();
        for name in lost {
            match spawn_repair(ws, &name) {
                Ok(pid) => {
                    said.push(format!(
                        "warden: {name} has no supervisor; healthcheck --only {name} (pid {pid})"
                    ));
                    self.repairs.push((name, pid, now));
                }
                Err(e) => said.push(format!("warden: cannot repair {name}: {e}")),
            }
        }
        said
    }

    fn try_take(&mut self, ws: &Workspace) -> bool {
        if self.lock.is_none() {
            self.lock = fsutil::open_own(
                &ws.state_dir().join("warden.lock"),
                OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false),
            )
            .ok();
        }
        self.held = self.lock.as_ref().is_some_and(|f| f.try_lock().is_ok());
        self.held
    }

    fn refresh_names(&mut self, ws: &Workspace) {
        use std::os::unix::fs::MetadataExt;
        let stamp = std::fs::symlink_metadata(ws.registry_path())
            .ok()
            .map(|m| (m.ino(), m.mtime(), m.mtime_nsec(), m.size()));
        if stamp == self.stamp {
            return;
        }
        self.stamp = stamp;
        if let Ok(names) = Registry::names_only(ws) {
            self.names = names;
            // Reading it took heap that a long-lived supervisor should not keep.
            proc::release_free_heap();
        }
    }
}

/// Whether `name` should run but nothing supervises it: its supervisor's
/// lock is free (one fcntl) and its state says it runs or backs off, in
/// this boot. A stopped, completed, exited or failed process is left alone.
fn needs_repair(ws: &Workspace, name: &str) -> bool {
    if state::supervisor_alive(ws, name) {
        return false;
    }
    let Ok(Some(st)) = RunState::load(ws, name) else {
        return false;
    };
    st.desired == Desired::Running
        && matches!(st.phase, Phase::Running | Phase::Backoff)
        && st.boot_id == proc::boot_id()
}

/// Starts `process-guardian --workspace WS healthcheck --only NAME`, its
/// output appended to `logs/healthcheck.log`.
fn spawn_repair(ws: &Workspace, name: &str) -> std::io::Result<i32> {
    let exe = std::env::current_exe()?;
    // Paths byte for byte: a workspace's need not be UTF-8.
    let argv: Vec<&std::ffi::OsStr> = vec![
        exe.as_os_str(),
        "--workspace".as_ref(),
        ws.root().as_os_str(),
        "healthcheck".as_ref(),
        "--only".as_ref(),
        name.as_ref(),
    ];
    // The alert directory as this supervisor resolved it: the repair runs
    // from `/`, where a relative one would mean something else.
    let alert_dir = Workspace::alert_dir().display().to_string();
    let env: Vec<(String, String)> = crate::fsutil::env_pairs()
        .filter(|(k, _)| k != crate::workspace::ALERT_DIR_ENV)
        .chain([(crate::workspace::ALERT_DIR_ENV.to_string(), alert_dir)])
        .collect();
    let log = crate::logs::open_append(&ws.logs_dir().join("healthcheck.log"))?;
    Spawner::new(&argv, &env, std::path::Path::new("/"))
        .and_then(|s| s.spawn(None, log.as_fd()))
        .map_err(|e| std::io::Error::other(e.to_string()))
}

//! What the supervisor looks at once a second: its log (rotation past its
//! size, silence past `stale_after`) and the registry (its name removed).
//! Each costs a `stat` or two when nothing changed.

use std::fs::File;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::logs;
use crate::registry::{Entry, Registry};
use crate::workspace::Workspace;

/// The log of the command: rotated by the supervisor's own descriptor.
pub struct LogWatch {
    pub file: File,
    pub path: PathBuf,
    max_bytes: u64,
    keep: u32,
    stale_after: Option<Duration>,
    len: u64,
    last_growth: Instant,
    /// A rotation failed (full disk); said once, not every second.
    rotate_failing: bool,
}

/// What one look at the log found.
#[derive(Default)]
pub struct LogLook {
    /// A line for the process's log (a rotation that failed).
    pub problem: Option<String>,
    /// The log has been quiet this many minutes, past `stale_after`.
    pub stale_min: Option<f64>,
}

impl LogWatch {
    pub fn new(file: File, path: PathBuf, entry: &Entry, now: Instant) -> LogWatch {
        LogWatch {
            file,
            path,
            max_bytes: entry.log_max_bytes(),
            keep: entry.log_keep(),
            stale_after: entry.stale_after(),
            len: 0,
            last_growth: now,
            rotate_failing: false,
        }
    }

    /// A new command starts: its silence counts from now.
    pub fn restarted(&mut self, now: Instant) {
        self.last_growth = now;
    }

    pub fn look(&mut self, now: Instant, running: bool) -> LogLook {
        let mut out = LogLook::default();
        let len = self.file.metadata().map(|m| m.len()).unwrap_or(0);
        if len > self.max_bytes {
            // Nothing here may panic or stop: a full disk is the command's
            // problem to report, not a reason for it to lose its supervisor.
            match logs::rotate(&self.file, &self.path, self.keep) {
                Ok(()) => self.rotate_failing = false,
                Err(e) if !self.rotate_failing => {
                    self.rotate_failing = true;
                    out.problem = Some(format!("cannot rotate {}: {e}", self.path.display()));
                }
                Err(_) => {}
            }
        }
        if len != self.len {
            self.len = len;
            self.last_growth = now;
        }
        if let Some(limit) = self.stale_after
            && running
            && now.saturating_duration_since(self.last_growth) >= limit
        {
            self.last_growth = now;
            out.stale_min = Some(limit.as_secs_f64() / 60.0);
        }
        out
    }
}

/// What identifies a version of the registry file: inode, mtime, size.
type FileStamp = (u64, i64, i64, u64);

/// The registry, read again only when it changed, for one name.
pub struct RegistryWatch {
    stamp: Option<FileStamp>,
}

impl RegistryWatch {
    pub fn new(ws: &Workspace) -> RegistryWatch {
        RegistryWatch { stamp: stamp(ws) }
    }

    /// Whether the registry changed and no longer holds `name` (a
    /// `deregister` that raced a `start`, or a hand edit). An unreadable or
    /// corrupt registry is no reason to stop anything.
    pub fn name_left(&mut self, ws: &Workspace, name: &str) -> bool {
        let now = stamp(ws);
        if now == self.stamp {
            return false;
        }
        self.stamp = now;
        if now.is_none() {
            return true;
        }
        let gone = Registry::has(ws, name) == Some(false);
        // Reading it took heap that a long-lived supervisor should not keep.
        crate::proc::release_free_heap();
        gone
    }
}

fn stamp(ws: &Workspace) -> Option<FileStamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(ws.registry_path()).ok()?;
    Some((m.ino(), m.mtime(), m.mtime_nsec(), m.size()))
}

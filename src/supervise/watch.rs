//! What the supervisor looks at once a second: its log (silence past
//! `stale_after`, a log removed by hand, an idle buffer to give back) and
//! the registry (its name removed). Each costs a `stat` or two when
//! nothing changed.

use std::time::{Duration, Instant};

use crate::output::Pump;
use crate::registry::{Entry, Registry};
use crate::workspace::Workspace;

/// The command's log, written by `pump`, and how long it has been quiet.
pub struct LogWatch {
    pub pump: Pump,
    stale_after: Option<Duration>,
    last_growth: Instant,
}

/// What one look at the log found.
#[derive(Default)]
pub struct LogLook {
    /// A line for the process's log (a write or rotation that failed).
    pub problem: Option<String>,
    /// The log has been quiet this many minutes, past `stale_after`.
    pub stale_min: Option<f64>,
}

impl LogWatch {
    pub fn new(pump: Pump, entry: &Entry, now: Instant) -> LogWatch {
        LogWatch {
            pump,
            stale_after: entry.stale_after(),
            last_growth: now,
        }
    }

    /// A new command starts: its silence counts from now.
    pub fn restarted(&mut self, now: Instant) {
        self.last_growth = now;
    }

    pub fn look(&mut self, now: Instant, running: bool) -> LogLook {
        self.pump.tick();
        let mut out = LogLook {
            problem: self.pump.problem.take(),
            stale_min: None,
        };
        if self.pump.take_moved() > 0 {
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
    /// Look at the first tick whatever the stamp: the entry came from the
    /// `start` that read it, and a `deregister` may have come in between.
    unchecked: bool,
}

impl RegistryWatch {
    /// `read_now`: the supervisor has just read its entry in the registry.
    pub fn new(ws: &Workspace, read_now: bool) -> RegistryWatch {
        RegistryWatch {
            stamp: stamp(ws),
            unchecked: !read_now,
        }
    }

    /// Whether the registry changed and no longer holds `name` (a
    /// `deregister` that raced a `start`, or a hand edit). An unreadable or
    /// corrupt registry is no reason to stop anything.
    pub fn name_left(&mut self, ws: &Workspace, name: &str) -> bool {
        let now = stamp(ws);
        if now == self.stamp && !std::mem::take(&mut self.unchecked) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handed_entry_is_checked_against_the_registry_once() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::at(dir.path()).unwrap();
        std::fs::write(ws.registry_path(), r#"{"other": {"command": "sleep 1"}}"#).unwrap();
        // Read from the registry just now: nothing changed, nothing to look at.
        assert!(!RegistryWatch::new(&ws, true).name_left(&ws, "gone"));
        // Handed over by `start`: the name may have left before the stamp was taken.
        let mut handed = RegistryWatch::new(&ws, false);
        assert!(handed.name_left(&ws, "gone"));
        assert!(
            !handed.name_left(&ws, "gone"),
            "looked at once, then by stamp"
        );
        assert!(!RegistryWatch::new(&ws, false).name_left(&ws, "other"));
    }
}

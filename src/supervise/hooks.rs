//! The alert hooks a supervisor started: each runs in its own process
//! group with a deadline; the supervisor reaps them as they end and kills
//! the group of any that outlives its limit. Nothing here ever waits.

use std::time::Instant;

use crate::alert;
use crate::proc::{self, Signal};

#[derive(Default)]
pub struct Hooks {
    running: Vec<(i32, Instant)>,
}

impl Hooks {
    pub fn add(&mut self, pid: i32, now: Instant) {
        self.running
            .push((pid, crate::fsutil::after(now, alert::HOOK_TIMEOUT)));
    }

    pub fn pids(&self) -> Vec<i32> {
        self.running.iter().map(|(p, _)| *p).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.running.iter().map(|(_, d)| *d).min()
    }

    /// Takes a reaped child off the list if it was a hook; a failure is
    /// returned as a line for the process's log.
    pub fn reaped(&mut self, r: &proc::Reaped) -> Option<Option<String>> {
        let i = self.running.iter().position(|(p, _)| *p == r.pid)?;
        self.running.swap_remove(i);
        Some(
            (r.code != Some(0))
                .then(|| format!("alert hook pid {} failed ({})", r.pid, r.describe())),
        )
    }

    /// Kills the hooks past their limit; returns a log line for each.
    pub fn expire(&mut self, now: Instant) -> Vec<String> {
        let (late, keep): (Vec<_>, Vec<_>) = self.running.iter().partition(|(_, d)| now >= *d);
        self.running = keep;
        late.into_iter()
            .map(|(pid, _)| {
                let _ = proc::kill_group(pid, Signal::KILL);
                format!(
                    "alert hook pid {pid} killed after {} s",
                    alert::HOOK_TIMEOUT.as_secs()
                )
            })
            .collect()
    }
}

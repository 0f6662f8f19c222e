//! What happens after the command exits: pure, so it is tested without
//! processes or clocks. The supervisor passes in the exit and the history.

use std::time::Duration;

/// The part of an entry the decision depends on.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    pub duration_min: f64,
    pub auto_restart: bool,
    pub max_restarts: u32,
    pub restart_cooldown_s: f64,
}

/// How the command ended.
#[derive(Debug, Clone, Copy)]
pub struct Ended {
    /// Exit code, if it exited (None when killed by a signal or unknown).
    pub code: Option<i32>,
    pub uptime: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    /// Ran at least 80 % of `duration_min` and exited 0: done, no alert.
    Completed,
    /// `auto_restart` is off: stays down, with an alert.
    Exited,
    /// Premature death: restart after `delay`; `quick_crashes` is the new count in a row.
    Restart { delay: Duration, quick_crashes: u32 },
    /// More than `max_restarts` quick crashes in a row: give up, alert `crash-loop`.
    GiveUp { quick_crashes: u32 },
}

/// Share of `duration_min` a run must reach to count as completed.
pub const COMPLETION_SHARE: f64 = 0.8;

pub fn decide(rules: &Rules, ended: &Ended, quick_crashes_before: u32) -> Decision {
    let ran_s = ended.uptime.as_secs_f64();
    if rules.duration_min > 0.0
        && ended.code == Some(0)
        && ran_s >= rules.duration_min * 60.0 * COMPLETION_SHARE
    {
        return Decision::Completed;
    }
    if !rules.auto_restart {
        return Decision::Exited;
    }
    // A clean-looking exit 0 before its time is still a premature death.
    if rules.restart_cooldown_s <= 0.0 || ran_s >= rules.restart_cooldown_s {
        return Decision::Restart {
            delay: Duration::ZERO,
            quick_crashes: 0,
        };
    }
    let k = quick_crashes_before.saturating_add(1);
    if rules.max_restarts > 0 && k > rules.max_restarts {
        return Decision::GiveUp { quick_crashes: k };
    }
    let backoff = 2f64.powi(k.saturating_sub(1).min(62) as i32);
    Decision::Restart {
        delay: crate::fsutil::secs(backoff.min(rules.restart_cooldown_s))
            .unwrap_or(Duration::from_secs(1)),
        quick_crashes: k,
    }
}

/// What the healthcheck finds for one registered process.
#[derive(Debug, Clone, Copy)]
pub struct Found {
    /// No state file: it was never started.
    pub never_started: bool,
    pub desired_running: bool,
    pub phase: crate::state::Phase,
    pub supervisor_alive: bool,
    pub command_alive: bool,
    /// The state was written in an earlier boot.
    pub new_boot: bool,
    /// Seconds since it failed / exited, when known.
    pub failed_for_s: Option<f64>,
    pub exited_for_s: Option<f64>,
    pub auto_restart: bool,
    /// Its log has been quiet for `stale_after_min` plus a grace period in
    /// which a working supervisor would have acted.
    pub stale: bool,
}

/// What the healthcheck does about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heal {
    /// Nothing to do (stopped, completed, never started…).
    Nothing,
    /// Its supervisor is alive.
    Healthy,
    /// Supervisor dead, command alive: a new supervisor adopts the command.
    Adopt,
    /// Both dead (or a new boot): start it again, counted as a restart.
    Revive { new_boot: bool },
    /// Failed for an hour: one fresh try.
    Retry,
    /// Failed, less than an hour ago: report it.
    ReportFailed,
    /// Exited without auto_restart more than a day ago: drop it from the registry.
    Drop,
    /// Hung, and its supervisor did not restart it (frozen or wedged): replace both.
    Stale,
}

/// How much longer than `stale_after_min` the healthcheck waits for the
/// supervisor to restart a hung command before it does so itself.
pub const STALE_GRACE_S: f64 = 60.0;

/// How long a `failed` process waits before the healthcheck gives it one fresh try.
pub const RETRY_FAILED_AFTER_S: f64 = 3600.0;
/// How long an exited process without auto_restart stays registered.
pub const DROP_EXITED_AFTER_S: f64 = 24.0 * 3600.0;

pub fn heal(f: &Found) -> Heal {
    use crate::state::Phase;
    if f.never_started || !f.desired_running {
        return Heal::Nothing;
    }
    if f.new_boot {
        return Heal::Revive { new_boot: true };
    }
    if f.supervisor_alive {
        return match f.phase {
            Phase::Failed => Heal::ReportFailed,
            Phase::Running if f.stale => Heal::Stale,
            _ => Heal::Healthy,
        };
    }
    match f.phase {
        Phase::Failed if f.failed_for_s.is_some_and(|s| s >= RETRY_FAILED_AFTER_S) => Heal::Retry,
        Phase::Failed => Heal::ReportFailed,
        Phase::Exited
            if !f.auto_restart && f.exited_for_s.is_some_and(|s| s >= DROP_EXITED_AFTER_S) =>
        {
            Heal::Drop
        }
        Phase::Completed | Phase::Exited | Phase::Stopped => Heal::Nothing,
        Phase::Running | Phase::Backoff if f.command_alive => Heal::Adopt,
        Phase::Running | Phase::Backoff => Heal::Revive { new_boot: false },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Rules {
        Rules {
            duration_min: 0.0,
            auto_restart: true,
            max_restarts: 3,
            restart_cooldown_s: 2.0,
        }
    }
    fn ended(code: Option<i32>, secs: f64) -> Ended {
        Ended {
            code,
            uptime: Duration::from_secs_f64(secs),
        }
    }

    #[test]
    fn completion_needs_exit_zero_and_eighty_percent() {
        let r = Rules {
            duration_min: 0.03,
            ..rules()
        };
        assert_eq!(decide(&r, &ended(Some(0), 2.0), 0), Decision::Completed);
        assert_eq!(decide(&r, &ended(Some(0), 1.44), 0), Decision::Completed);
        assert!(matches!(
            decide(&r, &ended(Some(0), 1.0), 0),
            Decision::Restart { .. }
        ));
        assert!(matches!(
            decide(&r, &ended(Some(1), 2.0), 0),
            Decision::Restart { .. }
        ));
        assert!(matches!(
            decide(&r, &ended(None, 2.0), 0),
            Decision::Restart { .. }
        ));
    }

    #[test]
    fn clean_exit_without_duration_is_premature() {
        assert!(matches!(
            decide(&rules(), &ended(Some(0), 100.0), 0),
            Decision::Restart { .. }
        ));
    }

    #[test]
    fn no_auto_restart_means_exited() {
        let r = Rules {
            auto_restart: false,
            ..rules()
        };
        assert_eq!(decide(&r, &ended(Some(1), 0.1), 0), Decision::Exited);
        let r = Rules {
            duration_min: 1.0,
            ..r
        };
        assert_eq!(decide(&r, &ended(Some(0), 60.0), 0), Decision::Completed);
    }

    #[test]
    fn long_run_restarts_at_once_and_resets_the_count() {
        assert_eq!(
            decide(&rules(), &ended(Some(1), 2.0), 2),
            Decision::Restart {
                delay: Duration::ZERO,
                quick_crashes: 0
            }
        );
    }

    #[test]
    fn quick_crashes_back_off_then_give_up() {
        let r = rules();
        let mut k = 0;
        let mut delays = vec![];
        loop {
            match decide(&r, &ended(Some(1), 0.01), k) {
                Decision::Restart {
                    delay,
                    quick_crashes,
                } => {
                    delays.push(delay.as_secs_f64());
                    k = quick_crashes;
                }
                Decision::GiveUp { quick_crashes } => {
                    assert_eq!(quick_crashes, 4);
                    break;
                }
                other => panic!("{other:?}"),
            }
        }
        // min(cooldown 2, 2^(k-1)): 1, 2, 2; three restarts, about 5 s.
        assert_eq!(delays, vec![1.0, 2.0, 2.0]);
    }

    #[test]
    fn zero_max_restarts_never_gives_up_and_zero_cooldown_is_immediate() {
        let r = Rules {
            max_restarts: 0,
            restart_cooldown_s: 30.0,
            ..rules()
        };
        let d = decide(&r, &ended(Some(1), 0.0), 1000);
        assert_eq!(
            d,
            Decision::Restart {
                delay: Duration::from_secs(30),
                quick_crashes: 1001
            }
        );
        let r = Rules {
            restart_cooldown_s: 0.0,
            ..rules()
        };
        assert_eq!(
            decide(&r, &ended(Some(1), 0.0), 50),
            Decision::Restart {
                delay: Duration::ZERO,
                quick_crashes: 0
            }
        );
    }

    fn found() -> Found {
        Found {
            never_started: false,
            desired_running: true,
            phase: crate::state::Phase::Running,
            supervisor_alive: true,
            command_alive: true,
            new_boot: false,
            failed_for_s: None,
            exited_for_s: None,
            auto_restart: true,
            stale: false,
        }
    }

    #[test]
    fn healthcheck_decisions() {
        use crate::state::Phase;
        assert_eq!(heal(&found()), Heal::Healthy);
        assert_eq!(
            heal(&Found {
                stale: true,
                ..found()
            }),
            Heal::Stale
        );
        let backing_off = Found {
            stale: true,
            phase: Phase::Backoff,
            ..found()
        };
        assert_eq!(heal(&backing_off), Heal::Healthy);
        let lost = Found {
            supervisor_alive: false,
            ..found()
        };
        assert_eq!(heal(&lost), Heal::Adopt);
        let dead = Found {
            command_alive: false,
            ..lost
        };
        assert_eq!(heal(&dead), Heal::Revive { new_boot: false });
        assert_eq!(
            heal(&Found {
                phase: Phase::Backoff,
                ..dead
            }),
            Heal::Revive { new_boot: false }
        );
        assert_eq!(
            heal(&Found {
                desired_running: false,
                ..dead
            }),
            Heal::Nothing
        );
        assert_eq!(
            heal(&Found {
                never_started: true,
                ..dead
            }),
            Heal::Nothing
        );
        assert_eq!(
            heal(&Found {
                phase: Phase::Completed,
                ..dead
            }),
            Heal::Nothing
        );
        assert_eq!(
            heal(&Found {
                phase: Phase::Completed,
                new_boot: true,
                ..dead
            }),
            Heal::Revive { new_boot: true }
        );
        let failed = Found {
            phase: Phase::Failed,
            failed_for_s: Some(60.0),
            ..dead
        };
        assert_eq!(heal(&failed), Heal::ReportFailed);
        assert_eq!(
            heal(&Found {
                failed_for_s: Some(3600.0),
                ..failed
            }),
            Heal::Retry
        );
        let exited = Found {
            phase: Phase::Exited,
            auto_restart: false,
            exited_for_s: Some(3600.0),
            ..dead
        };
        assert_eq!(heal(&exited), Heal::Nothing);
        assert_eq!(
            heal(&Found {
                exited_for_s: Some(90_000.0),
                ..exited
            }),
            Heal::Drop
        );
        assert_eq!(
            heal(&Found {
                exited_for_s: Some(90_000.0),
                auto_restart: true,
                ..exited
            }),
            Heal::Nothing
        );
    }
}

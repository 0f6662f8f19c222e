//! The supervisor's decisions as a pure state machine: one enum whose
//! variants carry their own data, and `step(event, now)`, which reads no
//! clock, makes no system call and touches no file. The event loop
//! (`supervise/mod.rs`) turns wake-ups into events and carries out the
//! actions; `Spawn` is answered at once with `Spawned` or `SpawnFailed`.
//!
//! Every transition is unit-tested below with a made-up clock.

use std::time::{Duration, Instant};

use crate::alert::Kind;
use crate::policy::{self, Decision, Rules};
use crate::state::{Desired, ExitRecord, Phase};

/// After SIGKILL, how long the tree may take to die before the stop gives up on it.
pub const KILL_GRACE: Duration = Duration::from_secs(5);
/// A command that exits 0 this soon while processes it started live on has
/// put itself in the background.
pub const DAEMONIZE_WINDOW: Duration = Duration::from_secs(1);
/// While stopping, how often the tree is looked at: processes that are not
/// our children end without telling us.
pub const STOP_TICK: Duration = Duration::from_millis(20);

#[derive(Debug, Clone, PartialEq)]
pub enum State {
    /// The command runs: our child, or adopted from a supervisor that died.
    Running {
        pid: i32,
        since: Instant,
        adopted: bool,
    },
    /// Waiting to start it again.
    Backoff { until: Instant },
    /// A `Spawn` was asked for; `after` is the death that called for it
    /// (none at the end of a backoff).
    Respawning { after: Option<Box<Death>> },
    /// The stop signal went to the tree; waiting for all of it to end.
    Stopping {
        began: Instant,
        deadline: Instant,
        killed_at: Option<Instant>,
        reason: &'static str,
        /// When the command started, if it was running.
        since: Option<Instant>,
    },
    /// Nothing more to do: the supervisor exits once its hooks are done.
    Done,
}

/// A death whose record waits for the outcome of the respawn.
#[derive(Debug, Clone, PartialEq)]
pub struct Death {
    exit: ExitRecord,
    how: String,
    pid: i32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The command ended. `at` is the wall-clock stamp of the record;
    /// `forked`: processes it started outlived it.
    Ended {
        pid: i32,
        code: Option<i32>,
        signal: Option<String>,
        at: String,
        forked: bool,
    },
    Spawned {
        pid: i32,
    },
    SpawnFailed {
        reason: String,
    },
    /// Stop: asked by a user (SIGTERM to the supervisor), or the name left the registry.
    Stop {
        reason: &'static str,
        timeout: Duration,
    },
    /// Its log has not grown for longer than `stale_after`.
    Stale {
        quiet_min: f64,
    },
    /// It must be replaced: failed health probes, too much memory. Killed
    /// and restarted like a hung command, with this alert instead of `died`.
    Unwell {
        kind: Kind,
        message: String,
    },
    /// Time passed; `alive` processes of the command's tree live.
    Tick {
        alive: usize,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Start the command now, and answer with `Spawned` or `SpawnFailed`.
    Spawn,
    /// SIGKILL what the ended command left behind (never a new copy).
    KillLeftovers,
    /// The stop signal (then SIGCONT) to every process of the tree.
    SignalTree,
    /// SIGKILL to every process of the tree.
    KillTree,
    /// SIGKILL to the command's group: it is hung.
    KillGroup,
    Log(String),
    Alert {
        kind: Kind,
        message: String,
        pid: Option<i32>,
        exit: Option<ExitRecord>,
    },
    /// Write the state file from `Status`.
    Save,
}

/// What the state file says, kept by the machine.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Status {
    pub phase: Phase,
    pub desired: Desired,
    pub pid: Option<i32>,
    pub restarts: u32,
    pub quick_crashes: u32,
    pub last_exit: Option<ExitRecord>,
    /// When the backoff ends.
    pub next_start: Option<Instant>,
    pub stopped_by: Option<String>,
    pub message: Option<String>,
}

pub struct Machine {
    pub name: String,
    pub rules: Rules,
    /// The stop signal's name, for the log (`TERM`).
    pub stop_signal: String,
    pub state: State,
    pub status: Status,
    /// The command was killed as hung: its death is alerted as `stale`, not `died`.
    killed_as_stale: bool,
}

impl Machine {
    /// A machine watching a command that runs as `pid` since `since`.
    pub fn running(
        name: &str,
        rules: Rules,
        stop_signal: String,
        status: Status,
        pid: i32,
        since: Instant,
        adopted: bool,
    ) -> Machine {
        let mut status = status;
        status.phase = Phase::Running;
        status.desired = Desired::Running;
        status.pid = Some(pid);
        Machine {
            name: name.to_string(),
            rules,
            stop_signal,
            state: State::Running {
                pid,
                since,
                adopted,
            },
            status,
            killed_as_stale: false,
        }
    }

    /// The first start failed: nothing runs, nothing will.
    pub fn start_failed(&mut self, reason: String) {
        self.status.phase = Phase::Failed;
        self.status.pid = None;
        self.status.message = Some(reason);
        self.state = State::Done;
    }

    /// How long the command has run, while it runs.
    pub fn uptime(&self, now: Instant) -> Option<Duration> {
        match self.state {
            State::Running { since, .. } => Some(now.saturating_duration_since(since)),
            _ => None,
        }
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    pub fn is_stopping(&self) -> bool {
        matches!(self.state, State::Stopping { .. })
    }

    /// When the machine wants to be woken even if nothing happens.
    pub fn next_wakeup(&self, now: Instant) -> Option<Instant> {
        match self.state {
            State::Backoff { until } => Some(until),
            State::Stopping { .. } => Some(now + STOP_TICK),
            _ => None,
        }
    }

    pub fn step(&mut self, event: Event, now: Instant) -> Vec<Action> {
        match event {
            Event::Ended {
                pid,
                code,
                signal,
                at,
                forked,
            } => self.ended(pid, code, signal, at, forked, now),
            Event::Spawned { pid } => self.spawned(pid, now),
            Event::SpawnFailed { reason } => self.spawn_failed(reason, now),
            Event::Stop { reason, timeout } => self.stop(reason, timeout, now),
            Event::Stale { quiet_min } => self.stale(quiet_min),
            Event::Unwell { kind, message } => self.unwell(kind, message),
            Event::Tick { alive } => self.tick(alive, now),
        }
    }

    fn ended(
        &mut self,
        pid: i32,
        code: Option<i32>,
        signal: Option<String>,
        at: String,
        forked: bool,
        now: Instant,
    ) -> Vec<Action> {
        let (since, adopted) = match self.state {
            State::Running {
                pid: p,
                since,
                adopted,
            } if p == pid => (since, adopted),
            State::Stopping { since, .. } => {
                // The rest of its tree may still be finishing: the stop waits for it.
                let uptime = since.map_or(Duration::ZERO, |s| now.saturating_duration_since(s));
                self.status.last_exit = Some(ExitRecord {
                    code,
                    signal,
                    at,
                    uptime_s: (uptime.as_secs_f64() * 1000.0).round() / 1000.0,
                });
                self.status.pid = None;
                return Vec::new();
            }
            _ => return Vec::new(),
        };
        let uptime = now.saturating_duration_since(since);
        let exit = ExitRecord {
            code,
            signal,
            at,
            uptime_s: (uptime.as_secs_f64() * 1000.0).round() / 1000.0,
        };
        let mut how = if adopted && code.is_none() && exit.signal.is_none() {
            "ended (adopted: status unknown)".to_string()
        } else if exit.signal.is_some() {
            format!("killed by {}", exit.describe())
        } else {
            format!("exited with {}", exit.describe())
        };
        if forked && code == Some(0) && uptime < DAEMONIZE_WINDOW {
            how.push_str(
                " while processes it started lived on: it forked into the background and exited; \
                 run it in the foreground (without its daemon or background option) so that it can be supervised",
            );
        }
        let how = format!("{how} after {:.1} s", uptime.as_secs_f64());
        self.on_death(Death { exit, how, pid }, uptime, now)
    }

    /// What a death leads to: policy's decision, carried out.
    fn on_death(&mut self, death: Death, uptime: Duration, now: Instant) -> Vec<Action> {
        self.status.pid = None;
        let ended = policy::Ended {
            code: death.exit.code,
            uptime,
        };
        let decision = policy::decide(&self.rules, &ended, self.status.quick_crashes);
        let mut out = vec![Action::KillLeftovers, Action::Log(death.how.clone())];
        let died = format!("{} {}", self.name, death.how);
        self.status.last_exit = Some(death.exit.clone());
        match decision {
            Decision::Completed => {
                out.push(Action::Log("completed its duration; not restarting".into()));
                self.finish(Phase::Completed, &mut out);
            }
            Decision::Exited => {
                out.push(Action::Log("auto_restart is off; not restarting".into()));
                self.finish(Phase::Exited, &mut out);
                out.push(self.alert(Kind::Exited, format!("{died}; auto_restart is off"), &death));
            }
            Decision::GiveUp { quick_crashes } => {
                self.status.quick_crashes = quick_crashes;
                let msg = format!(
                    "{} crashed {quick_crashes} times in a row within {} s of starting; gave up (start it again when fixed)",
                    self.name, self.rules.restart_cooldown_s
                );
                self.status.message = Some(msg.clone());
                out.push(Action::Log(msg.clone()));
                self.finish(Phase::Failed, &mut out);
                out.push(self.alert(Kind::CrashLoop, msg, &death));
            }
            Decision::Restart {
                delay,
                quick_crashes,
            } => {
                self.status.quick_crashes = quick_crashes;
                self.status.restarts = self.status.restarts.saturating_add(1);
                if delay.is_zero() {
                    // Respawn before anything else: records and alerts can wait a millisecond.
                    self.state = State::Respawning {
                        after: Some(Box::new(death)),
                    };
                    return vec![Action::Spawn];
                }
                let until = now + delay;
                self.back_off(until);
                out.push(Action::Log(format!(
                    "restarting in {:.1} s (quick crash {quick_crashes} in a row)",
                    delay.as_secs_f64()
                )));
                out.push(Action::Save);
                out.extend(self.died(
                    &death,
                    format!("restarting in {:.1} s", delay.as_secs_f64()),
                ));
            }
        }
        out
    }

    fn finish(&mut self, phase: Phase, out: &mut Vec<Action>) {
        self.status.phase = phase;
        self.status.pid = None;
        self.status.next_start = None;
        self.state = State::Done;
        out.push(Action::Save);
    }

    fn back_off(&mut self, until: Instant) {
        self.state = State::Backoff { until };
        self.status.phase = Phase::Backoff;
        self.status.next_start = Some(until);
    }

    fn alert(&self, kind: Kind, message: String, death: &Death) -> Action {
        Action::Alert {
            kind,
            message,
            pid: Some(death.pid),
            exit: Some(death.exit.clone()),
        }
    }

    fn spawned(&mut self, pid: i32, now: Instant) -> Vec<Action> {
        let State::Respawning { after } = std::mem::replace(&mut self.state, State::Done) else {
            return Vec::new();
        };
        self.state = State::Running {
            pid,
            since: now,
            adopted: false,
        };
        self.status.phase = Phase::Running;
        self.status.pid = Some(pid);
        self.status.next_start = None;
        self.status.message = None;
        let Some(death) = after else {
            return vec![Action::Log(format!("restarted: pid {pid}")), Action::Save];
        };
        let mut out = vec![
            Action::KillLeftovers,
            Action::Log(death.how.clone()),
            Action::Log(format!("restarted: pid {pid}")),
            Action::Save,
        ];
        out.extend(self.died(&death, format!("restarted as pid {pid}")));
        out
    }

    /// The `died` alert of a death, unless the command was killed as hung
    /// (then its `stale` alert says it all).
    fn died(&mut self, death: &Death, next: String) -> Option<Action> {
        (!std::mem::take(&mut self.killed_as_stale)).then(|| {
            self.alert(
                Kind::Died,
                format!("{} {}; {next}", self.name, death.how),
                death,
            )
        })
    }

    fn spawn_failed(&mut self, reason: String, now: Instant) -> Vec<Action> {
        let State::Respawning { after } = std::mem::replace(&mut self.state, State::Done) else {
            return Vec::new();
        };
        match after {
            // At the end of a backoff: a crash at once, so a missing program ends as `failed`.
            None => {
                let mut out = vec![Action::Log(format!("cannot restart: {reason}"))];
                let death = Death {
                    exit: ExitRecord {
                        code: Some(127),
                        signal: None,
                        at: self
                            .status
                            .last_exit
                            .as_ref()
                            .map(|e| e.at.clone())
                            .unwrap_or_default(),
                        uptime_s: 0.0,
                    },
                    how: format!("cannot start: {reason}"),
                    pid: 0,
                };
                out.extend(self.on_death(death, Duration::ZERO, now));
                out
            }
            // Right after a death: try again after a pause.
            Some(death) => {
                let pause = crate::fsutil::secs(self.rules.restart_cooldown_s.clamp(1.0, 30.0))
                    .unwrap_or(Duration::from_secs(1));
                self.back_off(now + pause);
                let mut out = vec![
                    Action::KillLeftovers,
                    Action::Log(death.how.clone()),
                    Action::Log(format!("cannot restart: {reason}")),
                    Action::Save,
                ];
                out.extend(self.died(
                    &death,
                    format!("restarting in {:.1} s", pause.as_secs_f64()),
                ));
                out
            }
        }
    }

    fn stop(&mut self, reason: &'static str, timeout: Duration, now: Instant) -> Vec<Action> {
        match &mut self.state {
            State::Done => Vec::new(),
            State::Stopping {
                deadline,
                killed_at: None,
                ..
            } => {
                // A second request: no more patience.
                *deadline = now;
                Vec::new()
            }
            State::Stopping { .. } => Vec::new(),
            _ => {
                let since = match self.state {
                    State::Running { since, .. } => Some(since),
                    _ => None,
                };
                self.status.desired = Desired::Stopped;
                self.status.next_start = None;
                self.state = State::Stopping {
                    began: now,
                    deadline: now.checked_add(timeout).unwrap_or(now),
                    killed_at: None,
                    reason,
                    since,
                };
                vec![
                    Action::Log(format!(
                        "stopping ({reason}): sent {} to its processes, waiting up to {:.1} s for all of them",
                        self.stop_signal,
                        timeout.as_secs_f64()
                    )),
                    Action::SignalTree,
                ]
            }
        }
    }

    fn stale(&mut self, quiet_min: f64) -> Vec<Action> {
        let State::Running { pid, .. } = self.state else {
            return Vec::new();
        };
        let msg = format!(
            "{}: no output for {quiet_min:.1} min; restarting it as hung",
            self.name
        );
        self.killed_as_stale = true;
        vec![
            Action::Log(msg.clone()),
            Action::KillGroup,
            Action::Alert {
                kind: Kind::Stale,
                message: msg,
                pid: Some(pid),
                exit: None,
            },
        ]
    }

    fn unwell(&mut self, kind: Kind, message: String) -> Vec<Action> {
        let State::Running { pid, .. } = self.state else {
            return Vec::new();
        };
        self.killed_as_stale = true;
        vec![
            Action::Log(message.clone()),
            Action::KillGroup,
            Action::Alert {
                kind,
                message,
                pid: Some(pid),
                exit: None,
            },
        ]
    }

    fn tick(&mut self, alive: usize, now: Instant) -> Vec<Action> {
        match self.state {
            State::Backoff { until } if now >= until => {
                self.state = State::Respawning { after: None };
                vec![Action::Spawn]
            }
            State::Stopping {
                began,
                deadline,
                killed_at,
                reason,
                since,
            } => {
                let by = if killed_at.is_some() {
                    "KILL".to_string()
                } else {
                    self.stop_signal.clone()
                };
                let mut out = Vec::new();
                let give_up = killed_at.is_some_and(|t| now >= t + KILL_GRACE);
                if alive > 0 && give_up {
                    out.push(Action::Log(
                        "some processes did not die after KILL; giving up on them".into(),
                    ));
                } else if alive > 0 {
                    if killed_at.is_none() && now >= deadline {
                        self.state = State::Stopping {
                            began,
                            deadline,
                            killed_at: Some(now),
                            reason,
                            since,
                        };
                        out.push(Action::Log(format!(
                            "{alive} process(es) still alive after the stop timeout: sent KILL"
                        )));
                        out.push(Action::KillTree);
                    } else if killed_at.is_some() {
                        out.push(Action::KillTree);
                    }
                    return out;
                }
                self.status.stopped_by = Some(by.clone());
                self.status.desired = Desired::Stopped;
                self.finish(Phase::Stopped, &mut out);
                out.push(Action::Log(format!(
                    "stopped ({reason}): its last process ended {:.1} s after the stop signal, by {by}",
                    now.saturating_duration_since(began).as_secs_f64()
                )));
                out
            }
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(cooldown: f64, max_restarts: u32) -> Rules {
        Rules {
            duration_min: 0.0,
            auto_restart: true,
            max_restarts,
            restart_cooldown_s: cooldown,
        }
    }

    /// A machine with the command running as pid 10 since `t0`.
    fn machine(rules: Rules, t0: Instant) -> Machine {
        Machine::running("m", rules, "TERM".into(), Status::default(), 10, t0, false)
    }

    fn ended(pid: i32, code: Option<i32>) -> Event {
        Event::Ended {
            pid,
            code,
            signal: None,
            at: "T".into(),
            forked: false,
        }
    }

    fn killed(pid: i32) -> Event {
        Event::Ended {
            pid,
            code: None,
            signal: Some("KILL".into()),
            at: "T".into(),
            forked: false,
        }
    }

    fn secs(t: Instant, s: f64) -> Instant {
        t + Duration::from_secs_f64(s)
    }

    fn alerts(actions: &[Action]) -> Vec<Kind> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Alert { kind, .. } => Some(*kind),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_long_run_is_restarted_at_once_and_alerted_after_the_respawn() {
        let t0 = Instant::now();
        let mut m = machine(rules(30.0, 5), t0);
        let out = m.step(killed(10), secs(t0, 60.0));
        assert_eq!(out, vec![Action::Spawn], "respawn comes first, alone");
        let out = m.step(Event::Spawned { pid: 11 }, secs(t0, 60.001));
        assert_eq!(out[0], Action::KillLeftovers);
        assert_eq!(alerts(&out), vec![Kind::Died]);
        assert!(out.contains(&Action::Save));
        assert_eq!(
            m.state,
            State::Running {
                pid: 11,
                since: secs(t0, 60.001),
                adopted: false
            }
        );
        assert_eq!(m.status.restarts, 1);
        assert_eq!(m.status.quick_crashes, 0);
        assert_eq!(m.status.last_exit.as_ref().unwrap().uptime_s, 60.0);
        assert_eq!(m.status.pid, Some(11));
    }

    #[test]
    fn quick_crashes_back_off_exactly_then_give_up() {
        let t0 = Instant::now();
        let mut m = machine(rules(30.0, 3), t0);
        let mut now = t0;
        let mut pid = 10;
        // Backoffs of 1, 2 and 4 s for the 1st, 2nd and 3rd quick crash.
        for (k, backoff) in [(1u32, 1.0), (2, 2.0), (3, 4.0)] {
            now = secs(now, 0.5);
            let out = m.step(ended(pid, Some(1)), now);
            assert_eq!(alerts(&out), vec![Kind::Died]);
            assert_eq!(
                m.state,
                State::Backoff {
                    until: secs(now, backoff)
                }
            );
            assert_eq!(m.status.phase, Phase::Backoff);
            assert_eq!(m.status.quick_crashes, k);
            // Nothing before the end of the backoff; a spawn exactly at it.
            assert!(
                m.step(Event::Tick { alive: 0 }, secs(now, backoff - 0.001))
                    .is_empty()
            );
            now = secs(now, backoff);
            assert_eq!(m.step(Event::Tick { alive: 0 }, now), vec![Action::Spawn]);
            pid += 1;
            let out = m.step(Event::Spawned { pid }, now);
            assert!(alerts(&out).is_empty(), "the death was alerted already");
        }
        now = secs(now, 0.5);
        let out = m.step(ended(pid, Some(1)), now);
        assert_eq!(alerts(&out), vec![Kind::CrashLoop]);
        assert_eq!(m.state, State::Done);
        assert_eq!(m.status.phase, Phase::Failed);
        assert_eq!(m.status.restarts, 3);
        assert!(m.status.message.as_ref().unwrap().contains("gave up"));
    }

    #[test]
    fn a_completed_duration_is_done_without_alert() {
        let t0 = Instant::now();
        let mut r = rules(30.0, 5);
        r.duration_min = 1.0;
        let mut m = machine(r, t0);
        let out = m.step(ended(10, Some(0)), secs(t0, 48.0));
        assert!(alerts(&out).is_empty());
        assert_eq!(m.status.phase, Phase::Completed);
        assert_eq!(m.state, State::Done);
        // Exit 0 before 80 % of the duration is a premature death.
        let mut m = machine(r, t0);
        let out = m.step(ended(10, Some(0)), secs(t0, 47.9));
        assert_eq!(out, vec![Action::Spawn]);
    }

    #[test]
    fn without_auto_restart_it_exits_with_an_alert() {
        let t0 = Instant::now();
        let mut r = rules(30.0, 5);
        r.auto_restart = false;
        let mut m = machine(r, t0);
        let out = m.step(ended(10, Some(3)), secs(t0, 5.0));
        assert_eq!(alerts(&out), vec![Kind::Exited]);
        assert_eq!(m.status.phase, Phase::Exited);
        assert_eq!(m.state, State::Done);
    }

    #[test]
    fn a_failed_respawn_after_a_death_waits_then_a_failed_backoff_end_counts_as_a_crash() {
        let t0 = Instant::now();
        let mut m = machine(rules(30.0, 1), t0);
        assert_eq!(m.step(killed(10), secs(t0, 100.0)), vec![Action::Spawn]);
        let out = m.step(
            Event::SpawnFailed {
                reason: "program not found: x".into(),
            },
            secs(t0, 100.0),
        );
        assert_eq!(alerts(&out), vec![Kind::Died]);
        assert_eq!(
            m.state,
            State::Backoff {
                until: secs(t0, 130.0)
            }
        );
        assert_eq!(
            m.step(Event::Tick { alive: 0 }, secs(t0, 130.0)),
            vec![Action::Spawn]
        );
        let out = m.step(
            Event::SpawnFailed {
                reason: "program not found: x".into(),
            },
            secs(t0, 130.0),
        );
        // A quick crash (code 127, no uptime): the 1st one waits 1 s.
        assert_eq!(
            m.state,
            State::Backoff {
                until: secs(t0, 131.0)
            }
        );
        assert_eq!(m.status.last_exit.as_ref().unwrap().code, Some(127));
        assert_eq!(alerts(&out), vec![Kind::Died]);
        assert_eq!(
            m.step(Event::Tick { alive: 0 }, secs(t0, 131.0)),
            vec![Action::Spawn]
        );
        let out = m.step(Event::SpawnFailed { reason: "x".into() }, secs(t0, 131.0));
        assert_eq!(alerts(&out), vec![Kind::CrashLoop]);
        assert_eq!(m.status.phase, Phase::Failed);
    }

    fn stop(m: &mut Machine, now: Instant, timeout: f64) -> Vec<Action> {
        m.step(
            Event::Stop {
                reason: "asked to stop",
                timeout: Duration::from_secs_f64(timeout),
            },
            now,
        )
    }

    #[test]
    fn a_stop_honoured_within_the_timeout_ends_by_the_stop_signal() {
        let t0 = Instant::now();
        let mut m = machine(rules(30.0, 5), t0);
        let out = stop(&mut m, secs(t0, 1.0), 10.0);
        assert!(out.contains(&Action::SignalTree));
        assert_eq!(m.status.desired, Desired::Stopped);
        // The command ends first; its child is still flushing.
        assert!(m.step(ended(10, Some(0)), secs(t0, 1.5)).is_empty());
        assert!(m.step(Event::Tick { alive: 1 }, secs(t0, 2.0)).is_empty());
        assert!(m.is_stopping());
        let out = m.step(Event::Tick { alive: 0 }, secs(t0, 3.0));
        assert!(out.contains(&Action::Save));
        assert_eq!(m.state, State::Done);
        assert_eq!(m.status.phase, Phase::Stopped);
        assert_eq!(m.status.stopped_by.as_deref(), Some("TERM"));
        assert_eq!(m.status.last_exit.as_ref().unwrap().code, Some(0));
        assert!(alerts(&out).is_empty());
        assert!(
            matches!(&out[out.len() - 1], Action::Log(l) if l.contains("2.0 s after the stop signal, by TERM"))
        );
    }

    #[test]
    fn a_stop_ignored_ends_by_kill_at_the_deadline() {
        let t0 = Instant::now();
        let mut m = machine(rules(30.0, 5), t0);
        stop(&mut m, t0, 10.0);
        assert!(m.step(Event::Tick { alive: 3 }, secs(t0, 9.999)).is_empty());
        let out = m.step(Event::Tick { alive: 3 }, secs(t0, 10.0));
        assert!(out.contains(&Action::KillTree));
        // KILL again on every tick while anything is left.
        assert_eq!(
            m.step(Event::Tick { alive: 1 }, secs(t0, 10.02)),
            vec![Action::KillTree]
        );
        m.step(Event::Tick { alive: 0 }, secs(t0, 10.04));
        assert_eq!(m.status.stopped_by.as_deref(), Some("KILL"));
        assert_eq!(m.state, State::Done);
    }

    #[test]
    fn a_stop_gives_up_on_what_survives_kill() {
        let t0 = Instant::now();
        let mut m = machine(rules(30.0, 5), t0);
        stop(&mut m, t0, 0.0);
        m.step(Event::Tick { alive: 1 }, t0);
        assert!(m.is_stopping());
        let out = m.step(Event::Tick { alive: 1 }, secs(t0, 5.0));
        assert_eq!(m.state, State::Done);
        assert!(matches!(&out[0], Action::Log(l) if l.contains("giving up")));
    }

    #[test]
    fn a_second_stop_request_cuts_the_wait_short() {
        let t0 = Instant::now();
        let mut m = machine(rules(30.0, 5), t0);
        stop(&mut m, t0, 60.0);
        assert!(stop(&mut m, secs(t0, 1.0), 60.0).is_empty());
        let out = m.step(Event::Tick { alive: 1 }, secs(t0, 1.0));
        assert!(out.contains(&Action::KillTree));
    }

    #[test]
    fn a_stop_during_backoff_never_starts_it_again() {
        let t0 = Instant::now();
        let mut m = machine(rules(30.0, 5), t0);
        m.step(ended(10, Some(1)), secs(t0, 0.5));
        assert!(matches!(m.state, State::Backoff { .. }));
        stop(&mut m, secs(t0, 0.6), 10.0);
        assert_eq!(m.status.next_start, None);
        let out = m.step(Event::Tick { alive: 0 }, secs(t0, 5.0));
        assert!(!out.contains(&Action::Spawn));
        assert_eq!(m.status.phase, Phase::Stopped);
        assert_eq!(m.status.pid, None);
    }

    #[test]
    fn a_death_during_a_stop_is_recorded_not_restarted() {
        let t0 = Instant::now();
        let mut m = machine(rules(30.0, 5), t0);
        stop(&mut m, t0, 10.0);
        let out = m.step(killed(10), secs(t0, 0.1));
        assert!(out.is_empty());
        assert_eq!(m.status.restarts, 0);
        assert_eq!(
            m.status.last_exit.as_ref().unwrap().signal.as_deref(),
            Some("KILL")
        );
        m.step(Event::Tick { alive: 0 }, secs(t0, 0.12));
        assert_eq!(m.status.phase, Phase::Stopped);
    }

    #[test]
    fn an_adopted_command_ending_is_restarted_with_its_status_unknown() {
        let t0 = Instant::now();
        let mut m = Machine::running(
            "m",
            rules(30.0, 5),
            "TERM".into(),
            Status::default(),
            10,
            t0,
            true,
        );
        assert_eq!(
            m.step(ended(10, None), secs(t0, 100.0)),
            vec![Action::Spawn]
        );
        let out = m.step(Event::Spawned { pid: 12 }, secs(t0, 100.0));
        assert!(
            out.iter()
                .any(|a| matches!(a, Action::Log(l) if l.contains("adopted: status unknown")))
        );
        assert_eq!(alerts(&out), vec![Kind::Died]);
    }

    #[test]
    fn a_hung_command_is_killed_and_alerted_as_stale_only() {
        let t0 = Instant::now();
        let mut m = machine(rules(30.0, 5), t0);
        let out = m.step(Event::Stale { quiet_min: 2.0 }, secs(t0, 120.0));
        assert!(out.contains(&Action::KillGroup));
        assert_eq!(alerts(&out), vec![Kind::Stale]);
        m.step(killed(10), secs(t0, 120.01));
        let out = m.step(Event::Spawned { pid: 11 }, secs(t0, 120.01));
        assert!(alerts(&out).is_empty(), "no died alert on top of stale");
    }

    #[test]
    fn an_unwell_command_is_replaced_with_its_own_alert_only() {
        let t0 = Instant::now();
        let mut m = machine(rules(30.0, 5), t0);
        let why = "svc: 3 health probes failed in a row".to_string();
        let out = m.step(
            Event::Unwell {
                kind: Kind::Unhealthy,
                message: why.clone(),
            },
            secs(t0, 60.0),
        );
        assert!(out.contains(&Action::KillGroup));
        assert!(out.contains(&Action::Log(why)));
        assert_eq!(alerts(&out), vec![Kind::Unhealthy]);
        m.step(killed(10), secs(t0, 60.01));
        let out = m.step(Event::Spawned { pid: 11 }, secs(t0, 60.01));
        assert!(alerts(&out).is_empty(), "no died alert on top of it");
        // Not running: nothing to replace.
        let mut stopped = machine(rules(30.0, 5), t0);
        stopped.step(
            Event::Stop {
                reason: "asked to stop",
                timeout: Duration::from_secs(1),
            },
            secs(t0, 1.0),
        );
        let out = stopped.step(
            Event::Unwell {
                kind: Kind::Memory,
                message: "x".into(),
            },
            secs(t0, 1.5),
        );
        assert!(alerts(&out).is_empty());
    }

    #[test]
    fn a_daemonizing_command_is_told_to_stay_in_the_foreground() {
        let t0 = Instant::now();
        let mut m = machine(rules(30.0, 5), t0);
        let ev = Event::Ended {
            pid: 10,
            code: Some(0),
            signal: None,
            at: "T".into(),
            forked: true,
        };
        // A quick crash: backed off, and told why.
        let out = m.step(ev, secs(t0, 0.2));
        assert!(matches!(m.state, State::Backoff { .. }));
        assert!(
            out.iter()
                .any(|a| matches!(a, Action::Log(l) if l.contains("run it in the foreground")))
        );
    }

    #[test]
    fn events_for_other_pids_or_after_the_end_change_nothing() {
        let t0 = Instant::now();
        let mut m = machine(rules(30.0, 5), t0);
        assert!(m.step(ended(99, Some(1)), t0).is_empty());
        assert!(m.step(Event::Spawned { pid: 5 }, t0).is_empty());
        m.state = State::Done;
        assert!(stop(&mut m, t0, 1.0).is_empty());
        assert!(m.step(Event::Tick { alive: 0 }, t0).is_empty());
    }
}

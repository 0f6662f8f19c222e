//! The per-process supervisor: the binary re-executed as the hidden
//! `supervise <name>` subcommand, one per managed process, no daemon above it.
//!
//! - `machine.rs`: what happens next, as a pure state machine (no clock, no
//!   system call, no file), unit-tested transition by transition;
//! - this file: the event loop, which sleeps in `poll` on a signalfd
//!   (SIGCHLD, stop signals) and, for an adopted command, a pidfd, turns
//!   wake-ups into events for the machine and carries out its actions;
//! - `setup.rs`: how a supervisor begins (lock, entry, adopt or spawn, report);
//! - `tree.rs`: the command's process tree and the signals sent to it;
//! - `watch.rs`: the log (rotation, staleness) and the registry (its name removed);
//! - `hooks.rs`: the alert hooks it started, each with its deadline.
//!
//! When the command dies, the machine asks for a respawn first and records,
//! logs and alerts afterwards, so a restart costs one waitpid and one spawn.
//! It is a child subreaper, so whatever the command leaves behind is reaped
//! here at once instead of lingering as a zombie under PID 1. It does not
//! parse the command line with clap and touches nothing only the CLI needs,
//! to stay small in memory.

mod hooks;
pub mod machine;
mod ready;
mod setup;
mod tree;
mod warden;
mod watch;

use std::ffi::OsString;
use std::fs::File;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::alert::{self, Alert, Kind};
use crate::fsutil;
use crate::launch::{Mode, Ready, SpawnError, Spawner, ready_line};
use crate::proc::{self, PidFd, Signal, SignalFd};
use crate::registry::Entry;
use crate::state::{ExitRecord, Phase, RunState};
use crate::workspace::Workspace;
use machine::{Action, Event, Machine};
use tree::Root;

/// How often the supervisor looks at its log and the registry.
const TICK: Duration = Duration::from_secs(1);
/// How long after its report to `start` the supervisor leaves its own
/// after-work (keeping the caller's environment, handing back start-up's
/// memory): the caller, the program that ran it and the command's own
/// start-up want the machine's cores in that moment, and nothing waits
/// on this work.
const AFTER_REPORT: Duration = Duration::from_millis(30);
/// How often it samples its tree's CPU and memory for `status` (which reads
/// them from the state file rather than from /proc for every process): a
/// walk of /proc costs more than the rest of an idle supervisor's second.
const USAGE_EVERY: Duration = Duration::from_secs(30);

pub(crate) struct Args {
    name: String,
    workspace: PathBuf,
    ready_fd: Option<i32>,
    /// A memfd holding the entry, from the `start` that just read it.
    entry_fd: Option<i32>,
    mode: Mode,
    /// GLIBC_TUNABLES was set by the launcher, not by the caller.
    own_tunables: bool,
}

fn parse_args(args: &[OsString]) -> Option<Args> {
    let mut it = args.iter();
    // A name is checked to be one of ours (ASCII) before it is used.
    let name = it.next()?.to_str()?.to_string();
    let mut workspace = None;
    let mut ready_fd = None;
    let mut entry_fd = None;
    let mut mode = Mode::Fresh;
    let mut own_tunables = false;
    let number = |v: Option<&OsString>| -> Option<i32> { v?.to_str()?.parse().ok() };
    while let Some(a) = it.next() {
        match a.to_str()? {
            // The path's bytes as they are: it need not be UTF-8.
            "--workspace" => workspace = Some(PathBuf::from(it.next()?)),
            "--ready-fd" => ready_fd = Some(number(it.next())?),
            "--entry-fd" => entry_fd = Some(number(it.next())?),
            "--fresh" => mode = Mode::Fresh,
            "--retry" => mode = Mode::Retry,
            "--revive" => mode = Mode::Revive,
            "--adopt" => mode = Mode::Adopt,
            "--own-tunables" => own_tunables = true,
            _ => return None,
        }
    }
    Some(Args {
        name,
        workspace: workspace?,
        ready_fd,
        entry_fd,
        mode,
        own_tunables,
    })
}

/// Entry point of `process-guardian supervise <name> --workspace DIR [--ready-fd N] [--entry-fd N] [--fresh|--retry|--revive|--adopt] [--own-tunables]`.
pub fn main(args: &[OsString]) -> i32 {
    let Some(args) = parse_args(args) else {
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            b"process-guardian: usage: supervise <name> --workspace DIR [--ready-fd N] [--entry-fd N] [--fresh|--retry|--revive|--adopt] [--own-tunables]\n",
        );
        return crate::error::EXIT_USAGE;
    };
    // Read by glibc at exec; nothing this supervisor starts may inherit it.
    if args.own_tunables {
        proc::forget_env(crate::launch::TUNABLES);
    }
    // Both taken before anything else is opened, so the numbers are the inherited ones.
    let mut ready = args.ready_fd.and_then(proc::take_inherited_fd);
    let entry = args.entry_fd.and_then(proc::take_inherited_fd);
    match setup::init(&args, &mut ready, entry) {
        Ok(Some(mut sup)) => {
            sup.run();
            sup.finish();
            0
        }
        Ok(None) => 0,
        Err(msg) => {
            report(&mut ready, &Ready::Failed(msg));
            1
        }
    }
}

fn report(ready: &mut Option<File>, what: &Ready) {
    if let Some(mut f) = ready.take() {
        use std::io::Write;
        let _ = f.write_all(ready_line(what).as_bytes());
    }
}

pub(crate) struct Supervisor {
    ws: Workspace,
    name: String,
    entry: Entry,
    machine: Machine,
    /// The state file's content; the machine's `Status` is copied in on `Save`.
    state: RunState,
    /// The command, prepared once; or why it cannot be.
    spawner: Result<Spawner, SpawnError>,
    log: watch::LogWatch,
    /// The pipe the command writes to; drained into `log`.
    fifo: crate::output::Fifo,
    /// The readiness probe of the running command.
    readiness: ready::Readiness,
    /// Its health probe, and its memory limit.
    health: ready::Health,
    /// When its tree's usage was last sampled into the state file.
    usage_at: Option<Instant>,
    /// The first look at the registry and at the command's usage is yet
    /// to come: what it touches is handed back after it.
    shed_due: bool,
    /// The caller's environment, to keep for revivals (see `AFTER_REPORT`).
    env_due: bool,
    registry: watch::RegistryWatch,
    hooks: hooks::Hooks,
    /// The safety net without cron, active while this supervisor holds the warden lock.
    warden: warden::Warden,
    sigfd: SignalFd,
    /// The command's pid while it lives, and its pidfd when it is adopted.
    command: Option<(i32, Option<PidFd>)>,
    /// Where the running command's tree hangs from.
    root: Root,
    /// Where the last ended command's tree hung from: what `KillLeftovers` cleans.
    leftovers: Root,
    /// The liveness lock, held for as long as the supervisor lives.
    liveness: Option<File>,
}

impl Supervisor {
    fn run(&mut self) {
        // Start-up is over: a hundred supervisors would otherwise each keep
        // what it touched (freed heap, code run once, deep stack) for life;
        // handed back `AFTER_REPORT` from now. Again after the first look
        // at the registry (later looks take its stamp only) and the first
        // usage sample. Not after each later sample (every 30 s): taking
        // back its pages each time cost a third more idle CPU for 5 KiB.
        let mut after_report = Some(fsutil::after(Instant::now(), AFTER_REPORT));
        // Output wakes the loop often; the registry and the log are looked at once a second.
        let mut next_watch = fsutil::after(Instant::now(), TICK);
        while !self.machine.is_done() {
            let now = Instant::now();
            if after_report.is_some_and(|t| now >= t) {
                after_report = None;
                self.after_report();
            }
            let mut at = next_watch;
            for t in [
                after_report,
                self.machine.next_wakeup(now),
                self.hooks.next_deadline(),
                self.readiness.next_wakeup(),
                self.health.next_wakeup(),
            ]
            .into_iter()
            .flatten()
            {
                at = at.min(t);
            }
            self.wait(at.saturating_duration_since(now));
            let now = Instant::now();
            for line in self.hooks.expire(now) {
                self.lifecycle(&line);
            }
            let alive = if self.machine.is_stopping() {
                tree::live(self.root, &self.not_ours()).len()
            } else {
                0
            };
            self.feed(Event::Tick { alive }, now);
            if let Some(line) = self.readiness.tick(now, self.command.is_some()) {
                self.lifecycle(&line);
            }
            let up = self.command.is_some() && self.readiness.state() != Some(false);
            if let Some(line) = self.health.tick(now, up && !self.machine.is_stopping()) {
                self.lifecycle(&line);
            }
            if now >= next_watch {
                next_watch = fsutil::after(now, TICK);
                if !self.machine.is_done() && !self.machine.is_stopping() {
                    self.watch(now);
                    if std::mem::take(&mut self.shed_due) {
                        proc::shed_memory();
                    }
                }
            }
        }
        if self.machine.status.phase == Phase::Stopped {
            let _ = std::fs::remove_file(self.ws.run_file(&self.name, ".stop"));
        }
    }

    /// What start-up leaves for after its report (see `AFTER_REPORT`);
    /// none of it once a stop has begun.
    fn after_report(&mut self) {
        if self.machine.is_stopping() {
            return;
        }
        if std::mem::take(&mut self.env_due) {
            setup::save_env(&self.ws, &self.name);
        }
        proc::shed_memory();
    }

    /// Sleeps until a signal, the adopted command's exit, or `timeout`,
    /// and turns what woke it into events.
    fn wait(&mut self, timeout: Duration) {
        let pidfd = self
            .command
            .as_ref()
            .and_then(|(_, fd)| fd.as_ref())
            .map(|fd| fd.as_fd());
        let [signalled, adopted_ended, output] = proc::poll_readable(
            [Some(self.sigfd.as_fd()), pidfd, Some(self.fifo.reader())],
            timeout,
        );
        if output {
            // Past its budget it returns: poll again at once, signals first.
            self.log.pump.drain(&self.fifo);
        }
        if signalled {
            while let Some(signo) = self.sigfd.read() {
                if [Signal::TERM, Signal::INT, Signal::QUIT]
                    .iter()
                    .any(|s| s.as_raw() == signo)
                {
                    self.request_stop("asked to stop");
                }
                // SIGCHLD is read below; SIGHUP: we have no terminal, ignore it.
            }
            // Signals coalesce: reap whatever is there, whichever woke us.
            self.reap();
        }
        if adopted_ended && let Some((pid, _)) = self.command.take() {
            self.leftovers = self.root;
            self.command_ended(pid, None, None);
        }
    }

    fn request_stop(&mut self, reason: &'static str) {
        let timeout = setup::stop_timeout(&self.ws, &self.name, &self.entry);
        self.feed(Event::Stop { reason, timeout }, Instant::now());
    }

    /// Collects every exited child: the command, hooks, and orphans we inherited.
    fn reap(&mut self) {
        while let Some(r) = proc::reap(None) {
            let ours = matches!(self.command, Some((pid, None)) if pid == r.pid);
            if ours {
                self.command = None;
                self.leftovers = self.root;
                self.command_ended(r.pid, r.code, r.signal);
            } else if let Some(ready) =
                self.readiness
                    .reaped(r.pid, r.code == Some(0), Instant::now())
            {
                if let Some(line) = ready {
                    self.lifecycle(&line);
                    self.save();
                    // What the probes allocated is handed back: a probe must
                    // not cost a long-lived supervisor memory.
                    proc::release_free_heap();
                }
            } else if let Some(verdict) = self.health.reaped(r.pid, r.code == Some(0), &self.name) {
                if let Some(message) = verdict {
                    let kind = alert::Kind::Unhealthy;
                    self.feed(Event::Unwell { kind, message }, Instant::now());
                }
            } else if let Some(Some(line)) = self.hooks.reaped(&r) {
                self.lifecycle(&line);
            } else {
                self.warden.reaped(r.pid);
            }
        }
    }

    /// Our children that are no part of the command: hooks and repairs.
    fn not_ours(&self) -> Vec<i32> {
        let mut pids = self.hooks.pids();
        pids.extend(self.warden.pids());
        pids.extend(self.readiness.pid());
        pids.extend(self.health.pid());
        pids
    }

    fn command_ended(&mut self, pid: i32, code: Option<i32>, signal: Option<i32>) {
        let now = Instant::now();
        // Only a quick exit 0 can be a command that put itself in the background.
        let forked = code == Some(0)
            && self
                .machine
                .uptime(now)
                .is_some_and(|u| u < machine::DAEMONIZE_WINDOW)
            && !tree::live(self.leftovers, &self.not_ours()).is_empty();
        self.feed(
            Event::Ended {
                pid,
                code,
                signal: signal.map(crate::signals::name),
                at: fsutil::now_rfc3339(),
                forked,
            },
            now,
        );
    }

    /// Once a second: the registry (its name gone stops the command) and the log.
    fn watch(&mut self, now: Instant) {
        if self.registry.name_left(&self.ws, &self.name) {
            self.request_stop("its name was removed from the registry");
            return;
        }
        for line in self.warden.tick(&self.ws, &self.name, now) {
            self.lifecycle(&line);
        }
        let running = self.command.is_some();
        if let Some(message) = self.over_memory() {
            self.feed(
                Event::Unwell {
                    kind: alert::Kind::Memory,
                    message,
                },
                now,
            );
            return;
        }
        self.sample_usage(now);
        let look = self.log.look(now, running);
        if let Some(problem) = look.problem {
            self.lifecycle(&problem);
        }
        if let Some(quiet_min) = look.stale_min {
            self.feed(Event::Stale { quiet_min }, now);
        }
    }

    /// Every `USAGE_EVERY` (and soon after a start), the tree's CPU and
    /// memory into the state file, written only when they moved.
    fn sample_usage(&mut self, now: Instant) {
        let due = self
            .usage_at
            .is_none_or(|t| now.saturating_duration_since(t) >= USAGE_EVERY);
        let Some((pid, _)) = self.command.as_ref().filter(|_| due) else {
            return;
        };
        self.usage_at = Some(now);
        let usage = proc::tree_usage(*pid, proc::uptime_s());
        let moved = match (usage, self.state.usage) {
            (Some(a), Some(b)) => {
                (a.cpu_pct - b.cpu_pct).abs() >= 0.5
                    || a.rss_bytes.abs_diff(b.rss_bytes) > b.rss_bytes / 50
            }
            (a, b) => a.is_some() != b.is_some(),
        };
        if moved {
            self.state.usage = usage;
            self.save();
        }
    }

    /// The command's tree above `max_memory_bytes`: what to say. Costs a
    /// walk of the tree once a second, only for an entry with a limit.
    fn over_memory(&self) -> Option<String> {
        let limit = self.entry.max_memory_bytes?;
        self.command.as_ref()?;
        let pids = tree::live(self.root, &self.not_ours());
        let rss: u64 = pids.iter().map(|(p, _)| proc::rss_bytes(*p)).sum();
        (rss > limit).then(|| {
            format!(
                "{}: its processes use {:.1} MiB, over its limit of {:.1} MiB; restarting it",
                self.name,
                rss as f64 / 1048576.0,
                limit as f64 / 1048576.0
            )
        })
    }

    /// Steps the machine and carries out what it asks for.
    fn feed(&mut self, event: Event, now: Instant) {
        for action in self.machine.step(event, now) {
            self.act(action);
        }
    }

    fn act(&mut self, action: Action) {
        match action {
            Action::Spawn => {
                let event = match self.spawn() {
                    Ok(pid) => Event::Spawned { pid },
                    Err(e) => Event::SpawnFailed {
                        reason: e.to_string(),
                    },
                };
                self.feed(event, Instant::now());
            }
            Action::KillLeftovers => {
                let mut prune = self.not_ours();
                prune.extend(self.command.as_ref().map(|(p, _)| *p));
                tree::kill_leftovers(self.leftovers, &prune, || self.reap_orphans());
            }
            Action::SignalTree => {
                let sig = self.entry.stop_signal().0;
                tree::signal_all(&tree::live(self.root, &self.not_ours()), sig);
                self.signal_group(sig);
                self.signal_group(Signal::CONT);
            }
            Action::KillTree => {
                self.signal_group(Signal::KILL);
                tree::signal_all(&tree::live(self.root, &self.not_ours()), Signal::KILL);
            }
            Action::KillGroup => self.signal_group(Signal::KILL),
            Action::Log(line) => self.lifecycle(&line),
            Action::Alert {
                kind,
                message,
                pid,
                exit,
            } => self.alert(kind, message, pid, exit),
            Action::Save => self.save(),
        }
    }

    /// Signals the command's group while its leader is alive or an unreaped
    /// child of ours: only then is the group id certainly still its own.
    fn signal_group(&self, sig: Signal) {
        if let Some((pid, _)) = &self.command {
            let _ = proc::kill_group(*pid, sig);
        }
    }

    /// Reaps children while killing leftovers, without feeding the machine:
    /// the command itself was already reaped.
    fn reap_orphans(&mut self) {
        while let Some(r) = proc::reap(None) {
            if let Some(Some(line)) = self.hooks.reaped(&r) {
                self.lifecycle(&line);
            } else {
                self.warden.reaped(r.pid);
            }
        }
    }

    /// A lifecycle line, after whatever output waits in the pipe.
    fn lifecycle(&mut self, text: &str) {
        self.log.pump.line(Some(&self.fifo), text);
    }

    /// Writes the state file from the machine's status.
    fn save(&mut self) {
        let st = &self.machine.status;
        self.state.phase = st.phase;
        self.state.desired = st.desired;
        self.state.pid = st.pid;
        self.state.restarts = st.restarts;
        self.state.quick_crashes = st.quick_crashes;
        self.state.last_exit = st.last_exit.clone();
        self.state.stopped_by = st.stopped_by.clone();
        self.state.message = st.message.clone();
        self.state.ready = self.readiness.state();
        let now = Instant::now();
        self.state.next_start_at = st.next_start.map(|t| {
            let ms = t.saturating_duration_since(now).as_millis();
            fsutil::rfc3339(
                chrono::Utc::now()
                    + chrono::Duration::try_milliseconds(i64::try_from(ms).unwrap_or(i64::MAX))
                        .unwrap_or(chrono::Duration::zero()),
            )
        });
        if st.phase == Phase::Failed && self.state.failed_at.is_none() {
            self.state.failed_at = Some(fsutil::now_rfc3339());
        }
        if let Err(e) = self.state.save_supervised(&self.ws, &self.name) {
            // A full disk must not cost the command its life: note it and go on.
            let msg = format!("cannot write the state of {}: {e}", self.name);
            self.lifecycle(&msg);
        }
    }

    fn alert(&mut self, kind: Kind, message: String, pid: Option<i32>, exit: Option<ExitRecord>) {
        let mut a = Alert::new(&self.ws, &self.name, kind, message, pid, exit);
        if let Some(hook) = alert::raise(&self.ws, &mut a, self.entry.alert_command.as_deref()) {
            self.hooks.add(hook, Instant::now());
        }
    }

    /// Lets hooks finish (within their limit) after the supervisor's work is done.
    fn finish(&mut self) {
        alert::flush_coalesced(&self.ws, &self.name);
        // Others may start a new supervisor from here on.
        self.liveness = None;
        while !self.hooks.is_empty() {
            let now = Instant::now();
            let until = self.hooks.next_deadline().unwrap_or(now);
            self.wait(until.saturating_duration_since(now));
            for line in self.hooks.expire(Instant::now()) {
                self.lifecycle(&line);
            }
        }
    }
}

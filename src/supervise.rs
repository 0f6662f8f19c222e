//! The per-process supervisor: the binary re-executed as the hidden
//! `supervise <name>` subcommand, one per managed process, no daemon above it.
//!
//! It is single-threaded and sleeps in `poll` on a signalfd (SIGCHLD, stop
//! signals) and, for an adopted command, a pidfd. When the command dies it
//! respawns first and records, logs and alerts afterwards, so a restart costs
//! one waitpid and one spawn. It is a child subreaper, so whatever the
//! command leaves behind is reaped here at once instead of lingering as a
//! zombie under PID 1. It does not parse the command line with clap and
//! touches nothing only the CLI needs, to stay small in memory.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::alert::{self, Alert, Kind};
use crate::cmdline;
use crate::fsutil;
use crate::launch::{Mode, Ready, Spawner, ready_line};
use crate::logs;
use crate::policy::{self, Decision, Ended, Rules};
use crate::proc::{self, PidFd};
use crate::registry::{Entry, Registry};
use crate::state::{Desired, ExitRecord, Phase, RunState};
use crate::workspace::Workspace;

/// How often the supervisor looks at its log (rotation, staleness).
const TICK: Duration = Duration::from_secs(1);
/// After SIGKILL, how long to wait for the command to be reaped before giving up on it.
const KILL_GRACE: Duration = Duration::from_secs(5);

struct Args {
    name: String,
    workspace: PathBuf,
    ready_fd: Option<i32>,
    mode: Mode,
}

fn parse_args(args: &[String]) -> Option<Args> {
    let mut it = args.iter();
    let name = it.next()?.clone();
    let mut workspace = None;
    let mut ready_fd = None;
    let mut mode = Mode::Fresh;
    while let Some(a) = it.next() {
        match a.as_str() {
            "--workspace" => workspace = Some(PathBuf::from(it.next()?)),
            "--ready-fd" => ready_fd = Some(it.next()?.parse().ok()?),
            "--fresh" => mode = Mode::Fresh,
            "--revive" => mode = Mode::Revive,
            "--adopt" => mode = Mode::Adopt,
            _ => return None,
        }
    }
    Some(Args {
        name,
        workspace: workspace?,
        ready_fd,
        mode,
    })
}

/// Entry point of `process-guardian supervise <name> --workspace DIR [--ready-fd N] [--fresh|--revive|--adopt]`.
pub fn main(args: &[String]) -> i32 {
    let Some(args) = parse_args(args) else {
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            b"process-guardian: usage: supervise <name> --workspace DIR [--ready-fd N] [--fresh|--revive|--adopt]\n",
        );
        return crate::error::EXIT_USAGE;
    };
    let mut ready = args.ready_fd.and_then(proc::take_inherited_fd);
    match Supervisor::init(&args, &mut ready) {
        Ok(Some(mut sup)) => {
            let code = sup.run();
            sup.finish();
            code
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

/// The command currently running under us.
struct Running {
    pid: i32,
    since: Instant,
    /// Set when the command is not our child (adopted): its exit is seen through this.
    pidfd: Option<PidFd>,
}

struct Stopping {
    deadline: Instant,
    signal: String,
    killed_at: Option<Instant>,
}

struct Supervisor {
    ws: Workspace,
    name: String,
    entry: Entry,
    rules: Rules,
    log: File,
    log_path: PathBuf,
    state: RunState,
    /// None when the command cannot be prepared (program not found); the reason is kept.
    spawner: std::result::Result<Spawner, String>,
    child: Option<Running>,
    next_start: Option<Instant>,
    stopping: Option<Stopping>,
    hooks: Vec<(i32, Instant)>,
    sigfd: SignalFd,
    stale_after: Option<Duration>,
    log_len: u64,
    last_growth: Instant,
    killed_as_stale: bool,
    /// A rotation failed (full disk); said once, not every second.
    rotate_failing: bool,
    done: bool,
    liveness: Option<File>,
}

impl Supervisor {
    /// Sets up, starts (or adopts) the command and reports to `start`.
    /// `Ok(None)`: another supervisor already holds this name.
    fn init(args: &Args, ready: &mut Option<File>) -> Result<Option<Supervisor>, String> {
        let ws = Workspace::at(&args.workspace).map_err(|e| e.to_string())?;
        let name = args.name.clone();
        crate::registry::validate_name(&name).map_err(|e| e.to_string())?;
        ws.ensure_dirs().map_err(|e| e.to_string())?;
        let log_path = ws.log_path(&name);
        let log = logs::open_append(&log_path)
            .map_err(|e| format!("cannot open {}: {e}", log_path.display()))?;
        proc::redirect_stdio(&log);

        let liveness = match proc::try_hold_lock(
            &ws.supervisors_lock_path(),
            crate::state::liveness_slot(&name),
        ) {
            Ok(Some(f)) => f,
            Ok(None) => {
                report(ready, &Ready::Already);
                return Ok(None);
            }
            Err(e) => return Err(format!("cannot take the supervisor lock: {e}")),
        };
        let entry = Registry::load_one(&ws, &name).map_err(|e| e.to_string())?;
        let _ = proc::become_subreaper();
        let mut mask = SigSet::empty();
        for s in [
            Signal::SIGCHLD,
            Signal::SIGTERM,
            Signal::SIGINT,
            Signal::SIGHUP,
            Signal::SIGQUIT,
        ] {
            mask.add(s);
        }
        mask.thread_block()
            .map_err(|e| format!("cannot block signals: {e}"))?;
        let sigfd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(|e| format!("cannot create a signalfd: {e}"))?;
        // Do not pin whatever directory the caller was in.
        let _ = std::env::set_current_dir("/");

        let previous = RunState::load(&ws, &name).ok().flatten();
        let me = std::process::id() as i32;
        let mut state = RunState {
            desired: Desired::Running,
            phase: Phase::Running,
            boot_id: proc::boot_id().to_string(),
            supervisor_pid: Some(me),
            supervisor_start: proc::stat(me).map(|s| s.start_time),
            ..RunState::default()
        };
        if let Some(prev) = &previous
            && args.mode != Mode::Fresh
        {
            state.restarts = prev.restarts;
            state.last_exit = prev.last_exit.clone();
        }
        let spawner = build_spawner(&ws, &name, &entry);
        let rules = Rules {
            duration_min: entry.duration_min,
            auto_restart: entry.auto_restart,
            max_restarts: entry.max_restarts,
            restart_cooldown_s: entry.restart_cooldown,
        };
        let stale_after = entry
            .stale_after_min
            .map(|m| Duration::from_secs_f64(m * 60.0));
        let mut sup = Supervisor {
            ws,
            name,
            rules,
            log,
            log_path,
            state,
            spawner,
            child: None,
            next_start: None,
            stopping: None,
            hooks: Vec::new(),
            sigfd,
            stale_after,
            log_len: 0,
            last_growth: Instant::now(),
            killed_as_stale: false,
            rotate_failing: false,
            done: false,
            liveness: Some(liveness),
            entry,
        };
        let _ = std::fs::remove_file(sup.ws.run_file(&sup.name, ".stop"));
        // The start-up parsing is done: hand its freed heap back, since a
        // hundred supervisors would otherwise each keep it for their lifetime.
        proc::release_free_heap();

        // The command that died while no supervisor watched it, if adoption finds it gone.
        let mut lost = None;
        if args.mode == Mode::Adopt {
            if let Some(pid) = previous.as_ref().and_then(|p| sup.adopt(p)) {
                sup.lifecycle(&format!(
                    "supervisor restarted: adopted running command pid {pid}"
                ));
                sup.save();
                report(ready, &Ready::Started(pid));
                return Ok(Some(sup));
            }
            // It died in the meantime: start it again, as a revival.
            sup.state.restarts += 1;
            lost = previous.as_ref().and_then(|p| p.pid);
        } else if args.mode == Mode::Revive {
            sup.state.restarts += 1;
        }
        sup.lifecycle(&format!("starting: {}", sup.entry.command));
        match sup.spawn() {
            Ok(pid) => {
                sup.lifecycle(&format!("started pid {pid}"));
                sup.save();
                report(ready, &Ready::Started(pid));
                if let Some(old) = lost {
                    let msg = format!(
                        "{} (pid {old}) died while its supervisor was being replaced; started again as pid {pid}",
                        sup.name
                    );
                    sup.lifecycle(&msg);
                    sup.alert(Kind::Died, msg, Some(old), None);
                }
                Ok(Some(sup))
            }
            Err(reason) => {
                sup.lifecycle(&format!("cannot start: {reason}"));
                sup.state.phase = Phase::Failed;
                sup.state.failed_at = Some(fsutil::now_rfc3339());
                sup.state.message = Some(reason.clone());
                sup.save();
                report(ready, &Ready::Failed(reason.clone()));
                sup.alert(
                    Kind::StartFailed,
                    format!("{} cannot start: {reason}", sup.name),
                    None,
                    None,
                );
                sup.done = true;
                Ok(Some(sup))
            }
        }
    }

    /// Takes over a command whose supervisor died, if it is still the recorded process.
    fn adopt(&mut self, prev: &RunState) -> Option<i32> {
        let (pid, start) = (prev.pid?, prev.pid_start?);
        let pidfd = PidFd::open_verified(pid, start, &prev.boot_id)?;
        let uptime = prev.uptime_s().unwrap_or(0.0).max(0.0);
        self.child = Some(Running {
            pid,
            since: Instant::now()
                .checked_sub(Duration::from_secs_f64(uptime))
                .unwrap_or_else(Instant::now),
            pidfd: Some(pidfd),
        });
        self.state.pid = Some(pid);
        self.state.pid_start = Some(start);
        self.state.started_at = prev.started_at.clone();
        self.state.quick_crashes = prev.quick_crashes;
        Some(pid)
    }

    /// Starts the command; on success records its identity (state not yet saved).
    fn spawn(&mut self) -> Result<i32, String> {
        let spawner = self.spawner.as_ref().map_err(Clone::clone)?;
        let pid = spawner
            .spawn(self.log.as_raw_fd())
            .map_err(|e| self.describe_spawn_error(e))?;
        let now = Instant::now();
        self.child = Some(Running {
            pid,
            since: now,
            pidfd: None,
        });
        self.state.pid = Some(pid);
        self.state.pid_start = proc::stat(pid).map(|s| s.start_time);
        self.state.started_at = Some(fsutil::now_rfc3339());
        self.state.phase = Phase::Running;
        self.state.next_start_at = None;
        self.state.message = None;
        self.last_growth = now;
        Ok(pid)
    }

    fn describe_spawn_error(&self, e: std::io::Error) -> String {
        let program = self
            .spawner
            .as_ref()
            .map(|s| s.program().to_string())
            .unwrap_or_default();
        let cwd = self.cwd();
        if !cwd.is_dir() {
            return format!("working directory {} not found", cwd.display());
        }
        match e.kind() {
            std::io::ErrorKind::NotFound => format!("program not found: {program}"),
            std::io::ErrorKind::PermissionDenied => {
                format!("permission denied: {program} is not executable")
            }
            _ => format!("cannot run {program}: {e}"),
        }
    }

    fn cwd(&self) -> PathBuf {
        command_cwd(&self.ws, &self.entry)
    }

    fn run(&mut self) -> i32 {
        while !self.done {
            let timeout = self.next_wakeup();
            self.wait(timeout);
            let now = Instant::now();
            if let Some(stop) = &mut self.stopping {
                if stop.killed_at.is_none() && now >= stop.deadline {
                    stop.killed_at = Some(now);
                    if let Some(pid) = self.child.as_ref().map(|c| c.pid) {
                        let _ = proc::kill_group(pid, Signal::SIGKILL);
                        self.lifecycle(&format!(
                            "no exit within the stop timeout: sent KILL to group {pid}"
                        ));
                    }
                } else if stop.killed_at.is_some_and(|t| now >= t + KILL_GRACE) {
                    self.lifecycle("the command did not die after KILL; giving up on it");
                    self.finish_stop(None);
                    continue;
                }
            }
            if self.next_start.is_some_and(|t| now >= t) {
                self.next_start = None;
                self.restart_now();
            }
            self.expire_hooks(now);
            self.tick(now);
        }
        0
    }

    fn next_wakeup(&self) -> Duration {
        let now = Instant::now();
        let mut at = now + TICK;
        if let Some(t) = self.next_start {
            at = at.min(t);
        }
        if let Some(s) = &self.stopping {
            at = at.min(match s.killed_at {
                None => s.deadline,
                Some(k) => k + KILL_GRACE,
            });
        }
        for (_, d) in &self.hooks {
            at = at.min(*d);
        }
        at.saturating_duration_since(now)
    }

    /// Sleeps until a signal, the adopted command's exit, or `timeout`.
    fn wait(&mut self, timeout: Duration) {
        let pidfd = self
            .child
            .as_ref()
            .and_then(|c| c.pidfd.as_ref())
            .map(|p| p.as_raw_fd());
        let [signalled, adopted_ended] =
            proc::poll_readable([Some(self.sigfd.as_raw_fd()), pidfd], timeout);
        if signalled {
            while let Ok(Some(info)) = self.sigfd.read_signal() {
                match Signal::try_from(info.ssi_signo as i32) {
                    Ok(Signal::SIGCHLD) => self.reap(),
                    Ok(Signal::SIGTERM | Signal::SIGINT | Signal::SIGQUIT) => self.begin_stop(),
                    _ => {} // SIGHUP: we have no terminal; ignore it.
                }
            }
            // Signals coalesce: reap whatever is there, whichever woke us.
            self.reap();
        }
        if adopted_ended {
            self.command_ended(None, None);
        }
    }

    /// Collects every exited child: the command, hooks, and orphans we inherited.
    fn reap(&mut self) {
        while let Some(reaped) = proc::reap_any() {
            let pid = reaped.pid;
            let ours = self
                .child
                .as_ref()
                .is_some_and(|c| c.pid == pid && c.pidfd.is_none());
            if ours {
                self.command_ended(reaped.code, reaped.signal);
            } else if let Some(i) = self.hooks.iter().position(|(p, _)| *p == pid) {
                self.hooks.swap_remove(i);
                if reaped.code != Some(0) {
                    self.lifecycle(&format!(
                        "alert hook pid {pid} failed ({})",
                        reaped.describe()
                    ));
                }
            }
        }
    }

    fn command_ended(&mut self, code: Option<i32>, signal: Option<i32>) {
        let Some(run) = self.child.take() else { return };
        // Whatever is left of its group goes with it; no second copy may run beside the next one.
        let _ = proc::kill_group(run.pid, Signal::SIGKILL);
        let uptime = run.since.elapsed();
        let record = ExitRecord {
            code,
            signal: signal.map(crate::signals::name),
            at: fsutil::now_rfc3339(),
            uptime_s: (uptime.as_secs_f64() * 1000.0).round() / 1000.0,
        };
        if self.stopping.is_some() {
            self.finish_stop(Some(record));
            return;
        }
        let ended = Ended { code, uptime };
        let decision = policy::decide(&self.rules, &ended, self.state.quick_crashes);
        let mut spawn_error = None;
        if let Decision::Restart { delay, .. } = decision
            && delay.is_zero()
        {
            // Respawn before anything else: records and alerts can wait a millisecond.
            if let Err(e) = self.spawn() {
                spawn_error = Some(e);
            }
        }
        self.kill_orphans();
        let how = if run.pidfd.is_some() && code.is_none() && signal.is_none() {
            "ended (adopted: status unknown)".to_string()
        } else {
            match signal {
                Some(_) => format!("killed by {}", record.describe()),
                None => format!("exited with {}", record.describe()),
            }
        };
        self.lifecycle(&format!("{how} after {:.1} s", uptime.as_secs_f64()));
        self.state.last_exit = Some(record.clone());
        let died = format!("{} {how} after {:.1} s", self.name, uptime.as_secs_f64());
        match decision {
            Decision::Completed => {
                self.lifecycle("completed its duration; not restarting");
                self.state.phase = Phase::Completed;
                self.state.pid = None;
                self.done = true;
                self.save();
            }
            Decision::Exited => {
                self.lifecycle("auto_restart is off; not restarting");
                self.state.phase = Phase::Exited;
                self.state.pid = None;
                self.done = true;
                self.save();
                self.alert(
                    Kind::Exited,
                    format!("{died}; auto_restart is off"),
                    Some(run.pid),
                    Some(record),
                );
            }
            Decision::GiveUp { quick_crashes } => {
                self.state.quick_crashes = quick_crashes;
                self.state.phase = Phase::Failed;
                self.state.pid = None;
                self.state.failed_at = Some(fsutil::now_rfc3339());
                let msg = format!(
                    "{} crashed {} times in a row within {} s of starting; gave up (start it again when fixed)",
                    self.name, quick_crashes, self.entry.restart_cooldown
                );
                self.state.message = Some(msg.clone());
                self.lifecycle(&msg);
                self.done = true;
                self.save();
                self.alert(Kind::CrashLoop, msg, Some(run.pid), Some(record));
            }
            Decision::Restart {
                delay,
                quick_crashes,
            } => {
                self.state.quick_crashes = quick_crashes;
                self.state.restarts += 1;
                if delay.is_zero() {
                    match &spawn_error {
                        None => {
                            let pid = self.state.pid.unwrap_or(0);
                            self.lifecycle(&format!("restarted: pid {pid}"));
                        }
                        Some(e) => {
                            self.lifecycle(&format!("cannot restart: {e}"));
                            self.state.pid = None;
                            self.schedule(Duration::from_secs_f64(
                                self.rules.restart_cooldown_s.clamp(1.0, 30.0),
                            ));
                        }
                    }
                } else {
                    self.state.pid = None;
                    self.lifecycle(&format!(
                        "restarting in {:.1} s (quick crash {quick_crashes} in a row)",
                        delay.as_secs_f64()
                    ));
                    self.schedule(delay);
                }
                self.save();
                if !std::mem::take(&mut self.killed_as_stale) {
                    let next = match (delay.is_zero(), self.state.pid) {
                        (true, Some(pid)) => format!("restarted as pid {pid}"),
                        _ => format!(
                            "restarting in {:.1} s",
                            self.next_start.map_or(0.0, |t| t
                                .saturating_duration_since(Instant::now())
                                .as_secs_f64())
                        ),
                    };
                    self.alert(
                        Kind::Died,
                        format!("{died}; {next}"),
                        Some(run.pid),
                        Some(record),
                    );
                }
            }
        }
    }

    fn schedule(&mut self, delay: Duration) {
        self.next_start = Some(Instant::now() + delay);
        self.state.phase = Phase::Backoff;
        self.state.next_start_at = Some(fsutil::rfc3339(
            chrono::Utc::now() + chrono::Duration::milliseconds(delay.as_millis() as i64),
        ));
    }

    /// The end of a backoff.
    fn restart_now(&mut self) {
        match self.spawn() {
            Ok(pid) => {
                self.lifecycle(&format!("restarted: pid {pid}"));
                self.save();
            }
            Err(e) => {
                self.lifecycle(&format!("cannot restart: {e}"));
                // Counts as a crash at once, so a missing program ends as `failed`.
                self.child = Some(Running {
                    pid: 0,
                    since: Instant::now(),
                    pidfd: None,
                });
                self.command_ended(Some(127), None);
            }
        }
    }

    /// Kills children that are neither the command nor a hook: orphans the command left.
    fn kill_orphans(&mut self) {
        let keep: Vec<i32> = self
            .hooks
            .iter()
            .map(|(p, _)| *p)
            .chain(self.child.as_ref().map(|c| c.pid))
            .collect();
        for pid in proc::own_children() {
            if !keep.contains(&pid) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }

    fn begin_stop(&mut self) {
        if let Some(stop) = &mut self.stopping {
            // A second request: no more patience.
            if stop.killed_at.is_none() {
                stop.deadline = Instant::now();
            }
            return;
        }
        self.state.desired = Desired::Stopped;
        self.next_start = None;
        let stop_file = self.ws.run_file(&self.name, ".stop");
        let timeout = std::fs::read_to_string(&stop_file)
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|t| t.is_finite() && *t >= 0.0)
            .map(Duration::from_secs_f64)
            .unwrap_or_else(|| self.entry.stop_timeout());
        let Some(run) = &self.child else {
            self.finish_stop(None);
            return;
        };
        let sig_name = self.entry.stop_signal_name().to_string();
        let sig = crate::signals::parse(&sig_name).unwrap_or(Signal::SIGTERM);
        let pid = run.pid;
        let _ = proc::kill_group(pid, sig);
        // A stopped group would never see the signal.
        let _ = proc::kill_group(pid, Signal::SIGCONT);
        self.lifecycle(&format!(
            "stopping: sent {} to group {pid}, waiting up to {:.1} s",
            sig_name.trim_start_matches("SIG"),
            timeout.as_secs_f64()
        ));
        self.stopping = Some(Stopping {
            deadline: Instant::now() + timeout,
            signal: sig_name.trim_start_matches("SIG").to_string(),
            killed_at: None,
        });
    }

    fn finish_stop(&mut self, record: Option<ExitRecord>) {
        let by = match &self.stopping {
            Some(s) if s.killed_at.is_some() => Some("KILL".to_string()),
            Some(s) => Some(s.signal.clone()),
            None => None,
        };
        if let Some(run) = self.child.take() {
            let _ = proc::kill_group(run.pid, Signal::SIGKILL);
        }
        self.kill_orphans();
        self.reap_briefly();
        self.state.phase = Phase::Stopped;
        self.state.desired = Desired::Stopped;
        self.state.pid = None;
        self.state.next_start_at = None;
        self.state.stopped_by = by.clone();
        if let Some(r) = record {
            self.state.last_exit = Some(r);
        }
        self.save();
        self.lifecycle(&match by {
            Some(sig) => format!("stopped (ended by {sig})"),
            None => "stopped".to_string(),
        });
        let _ = std::fs::remove_file(self.ws.run_file(&self.name, ".stop"));
        self.done = true;
    }

    /// After a stop: reap what we just killed, for at most a second.
    fn reap_briefly(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(1);
        while Instant::now() < deadline {
            let hooks: Vec<i32> = self.hooks.iter().map(|(p, _)| *p).collect();
            let left = proc::own_children()
                .into_iter()
                .any(|p| !hooks.contains(&p));
            self.reap();
            if !left {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn expire_hooks(&mut self, now: Instant) {
        let expired: Vec<i32> = self
            .hooks
            .iter()
            .filter(|(_, d)| now >= *d)
            .map(|(p, _)| *p)
            .collect();
        for pid in expired {
            let _ = proc::kill_group(pid, Signal::SIGKILL);
            self.lifecycle(&format!(
                "alert hook pid {pid} killed after {} s",
                alert::HOOK_TIMEOUT.as_secs()
            ));
            self.hooks.retain(|(p, _)| *p != pid);
        }
    }

    /// Once a second: rotate the log when it is too big; restart a command whose log went quiet.
    fn tick(&mut self, now: Instant) {
        let len = std::fs::metadata(&self.log_path)
            .map(|m| m.len())
            .unwrap_or(0);
        if len > self.entry.log_max_bytes() {
            // Nothing here may panic or stop: a full disk is the command's
            // problem to report, not a reason for it to lose its supervisor.
            match logs::rotate(&self.log_path, self.entry.log_keep()) {
                Ok(()) => self.rotate_failing = false,
                Err(e) if !self.rotate_failing => {
                    self.rotate_failing = true;
                    let msg = format!("cannot rotate {}: {e}", self.log_path.display());
                    self.lifecycle(&msg);
                }
                Err(_) => {}
            }
        }
        if len != self.log_len {
            self.log_len = len;
            self.last_growth = now;
        }
        let Some(limit) = self.stale_after else {
            return;
        };
        let Some(run) = &self.child else { return };
        if self.stopping.is_some() || now.duration_since(self.last_growth) < limit {
            return;
        }
        let pid = run.pid;
        let msg = format!(
            "{}: no output for {:.1} min; restarting it as hung",
            self.name,
            limit.as_secs_f64() / 60.0
        );
        self.lifecycle(&msg);
        self.killed_as_stale = true;
        self.last_growth = now;
        let _ = proc::kill_group(pid, Signal::SIGKILL);
        self.alert(Kind::Stale, msg, Some(pid), None);
    }

    fn lifecycle(&mut self, text: &str) {
        logs::lifecycle(&mut self.log, text);
    }

    fn save(&mut self) {
        if let Err(e) = self.state.save(&self.ws, &self.name) {
            // A full disk must not cost the command its life: note it and go on.
            let msg = format!("cannot write the state of {}: {e}", self.name);
            self.lifecycle(&msg);
        }
    }

    fn alert(&mut self, kind: Kind, message: String, pid: Option<i32>, exit: Option<ExitRecord>) {
        let a = Alert::new(&self.ws, &self.name, kind, message, pid, exit);
        if let Some(child) = alert::raise(&self.ws, &a, self.entry.alert_command.as_deref()) {
            self.hooks
                .push((child.id() as i32, Instant::now() + alert::HOOK_TIMEOUT));
        }
    }

    /// Lets hooks finish (within their limit) after the supervisor's work is done.
    fn finish(&mut self) {
        // Others may start a new supervisor from here on.
        self.liveness = None;
        while !self.hooks.is_empty() {
            let timeout = self.next_wakeup();
            self.wait(timeout);
            self.expire_hooks(Instant::now());
        }
    }
}

fn command_cwd(ws: &Workspace, entry: &Entry) -> PathBuf {
    entry
        .cwd
        .as_ref()
        .map(PathBuf::from)
        .unwrap_or_else(|| ws.root().to_path_buf())
}

/// The command as the supervisor runs it: its argv (under `sh -c` when it
/// uses shell syntax), in its cwd, with the caller's environment plus its
/// own. Prepared once, spawned on every restart.
fn build_spawner(ws: &Workspace, name: &str, entry: &Entry) -> Result<Spawner, String> {
    let cwd = command_cwd(ws, entry);
    if !cwd.is_dir() {
        return Err(format!("working directory {} not found", cwd.display()));
    }
    let mut env: std::collections::BTreeMap<String, String> = std::env::vars_os()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        })
        .collect();
    env.extend(entry.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    env.insert("PROCESS_GUARDIAN_NAME".into(), name.to_string());
    let env: Vec<(String, String)> = env.into_iter().collect();
    Spawner::new(&cmdline::argv(&entry.command), &env, &cwd)
}

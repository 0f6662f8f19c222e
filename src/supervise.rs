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

use crate::registry::MAX_STOP_TIMEOUT_S;

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
/// While stopping, how often the process tree is looked at: processes that
/// are not our children end without telling us.
const STOP_TICK: Duration = Duration::from_millis(20);
/// A command that exits 0 this soon while processes it started live on has
/// put itself in the background.
const DAEMONIZE_WINDOW: Duration = Duration::from_secs(1);

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
            "--retry" => mode = Mode::Retry,
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

/// Entry point of `process-guardian supervise <name> --workspace DIR [--ready-fd N] [--fresh|--retry|--revive|--adopt]`.
pub fn main(args: &[String]) -> i32 {
    let Some(args) = parse_args(args) else {
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            b"process-guardian: usage: supervise <name> --workspace DIR [--ready-fd N] [--fresh|--retry|--revive|--adopt]\n",
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
    /// Its start time (`/proc/<pid>/stat`), part of its identity.
    start: u64,
    since: Instant,
    /// Set when the command is not our child (adopted): its exit is seen through this.
    pidfd: Option<PidFd>,
}

/// A stop under way: the stop signal went to the command's whole tree, and
/// the supervisor waits for every process of it (not only the command) to
/// end, up to the deadline, before it SIGKILLs what is left.
struct Stopping {
    began: Instant,
    deadline: Instant,
    signal: Signal,
    killed_at: Option<Instant>,
    /// The adopted command (not our child): its pid and start time, whose
    /// group and descendants are looked up by identity.
    adopted: Option<(i32, u64)>,
    /// The command's own exit, once seen.
    exit: Option<ExitRecord>,
    /// Why: asked by a user, or its name left the registry.
    reason: &'static str,
}

/// What identifies a version of the registry file, so that the supervisor
/// re-reads it only when it changed.
type FileStamp = (u64, i64, i64, u64);

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
    /// The registry as last read: its name's disappearance stops the command.
    registry_stamp: Option<FileStamp>,
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
        let log = logs::open_rotatable(&log_path)
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
        // Do not pin whatever directory the caller was in (a relative alert
        // directory is resolved against it first).
        let _ = Workspace::alert_dir();
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
            && !matches!(args.mode, Mode::Fresh | Mode::Retry)
        {
            state.restarts = prev.restarts;
            state.last_exit = prev.last_exit.clone();
        }
        let spawner = build_spawner(&ws, &name, &entry, args.mode);
        let rules = Rules {
            duration_min: entry.duration_min,
            auto_restart: entry.auto_restart,
            max_restarts: entry.max_restarts,
            restart_cooldown_s: entry.restart_cooldown,
        };
        let stale_after = entry.stale_after();
        let registry_stamp = registry_stamp(&ws);
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
            registry_stamp,
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
        // Whatever is left of the previous command's group (its leader died
        // unsupervised) goes before a new copy starts beside it.
        if let Some(prev) = &previous
            && let (Some(pid), Some(start)) = (prev.pid, prev.pid_start)
        {
            let n = proc::kill_leftover_group(pid, start, &prev.boot_id);
            if n > 0 {
                sup.lifecycle(&format!(
                    "killed {n} process(es) left of the previous command's group {pid}"
                ));
            }
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
            start,
            since: fsutil::secs(uptime)
                .and_then(|u| Instant::now().checked_sub(u))
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
        let start = proc::stat(pid).map(|s| s.start_time);
        self.child = Some(Running {
            pid,
            start: start.unwrap_or(0),
            since: now,
            pidfd: None,
        });
        self.state.pid = Some(pid);
        self.state.pid_start = start;
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
            if self.stopping.is_some() {
                self.advance_stop(now);
                continue;
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
        let mut at = fsutil::after(now, TICK);
        if let Some(t) = self.next_start {
            at = at.min(t);
        }
        if self.stopping.is_some() {
            at = at.min(fsutil::after(now, STOP_TICK));
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
                    Ok(Signal::SIGTERM | Signal::SIGINT | Signal::SIGQUIT) => {
                        self.begin_stop("asked to stop")
                    }
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
        let uptime = run.since.elapsed();
        let record = ExitRecord {
            code,
            signal: signal.map(crate::signals::name),
            at: fsutil::now_rfc3339(),
            uptime_s: (uptime.as_secs_f64() * 1000.0).round() / 1000.0,
        };
        if let Some(stop) = &mut self.stopping {
            // The rest of its tree may still be finishing: the stop waits for it.
            stop.exit = Some(record);
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
        // Whatever is left of it goes with it; no second copy may run beside the next one.
        let left = self.kill_leftovers(&run);
        let mut how = if run.pidfd.is_some() && code.is_none() && signal.is_none() {
            "ended (adopted: status unknown)".to_string()
        } else {
            match signal {
                Some(_) => format!("killed by {}", record.describe()),
                None => format!("exited with {}", record.describe()),
            }
        };
        if left > 0 && code == Some(0) && uptime < DAEMONIZE_WINDOW {
            how.push_str(&format!(
                " while {left} process(es) it started lived on: it forked into the background and exited; run it in the foreground (without its daemon or background option) so that it can be supervised"
            ));
        }
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
                            self.schedule(
                                fsutil::secs(self.rules.restart_cooldown_s.clamp(1.0, 30.0))
                                    .unwrap_or(TICK),
                            );
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
        self.next_start = Some(fsutil::after(Instant::now(), delay));
        self.state.phase = Phase::Backoff;
        self.state.next_start_at = Some(fsutil::rfc3339(
            chrono::Utc::now()
                + chrono::Duration::try_milliseconds(
                    i64::try_from(delay.as_millis()).unwrap_or(i64::MAX),
                )
                .unwrap_or(chrono::Duration::zero()),
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
                    start: 0,
                    since: Instant::now(),
                    pidfd: None,
                });
                self.command_ended(Some(127), None);
            }
        }
    }

    fn hook_pids(&self) -> Vec<i32> {
        self.hooks.iter().map(|(p, _)| *p).collect()
    }

    /// The live processes of the command's tree, each with its parent: for
    /// our own child, every descendant of the supervisor but the hooks (as
    /// a subreaper, we inherit whatever the command orphans, including
    /// processes that left its group with setsid); for an adopted command,
    /// its descendants and what is left of its group.
    fn command_tree(&self, adopted: Option<(i32, u64)>, prune: &[i32]) -> Vec<(i32, i32)> {
        let me = std::process::id() as i32;
        let mut tree = proc::descendants(&[me], prune);
        if let Some((pid, start)) = adopted {
            if proc::is_ours_alive(pid, start, proc::boot_id()) {
                if let Some(st) = proc::stat(pid) {
                    tree.push((pid, st.ppid));
                }
                tree.extend(proc::descendants(&[pid], prune));
            }
            for m in proc::group_members(pid, start) {
                if !tree.iter().any(|(p, _)| *p == m)
                    && let Some(st) = proc::stat(m)
                {
                    tree.push((m, st.ppid));
                }
            }
        }
        tree
    }

    /// After the command ended: SIGKILLs everything it left behind (but a
    /// command just respawned); returns how many processes were left.
    fn kill_leftovers(&mut self, ended: &Running) -> usize {
        let mut prune = self.hook_pids();
        prune.extend(self.child.as_ref().map(|c| c.pid));
        let adopted = ended.pidfd.as_ref().map(|_| (ended.pid, ended.start));
        let mut first = None;
        for _ in 0..5 {
            let tree = self.command_tree(adopted, &prune);
            first.get_or_insert(tree.len());
            if tree.is_empty() {
                break;
            }
            for (pid, parent) in tree {
                proc::signal_if_child_of(pid, parent, Signal::SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(2));
            self.reap();
        }
        first.unwrap_or(0)
    }

    /// Starts a stop: the stop signal to the command's group and to every
    /// process of its tree, then `advance_stop` waits for all of them.
    fn begin_stop(&mut self, reason: &'static str) {
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
        let timeout = fsutil::open_own_read(&stop_file)
            .and_then(fsutil::read_all)
            .ok()
            .and_then(|b| String::from_utf8_lossy(&b).trim().parse::<f64>().ok())
            .filter(|t| *t <= MAX_STOP_TIMEOUT_S)
            .and_then(fsutil::secs)
            .unwrap_or_else(|| self.entry.stop_timeout());
        let sig = crate::signals::parse(self.entry.stop_signal_name()).unwrap_or(Signal::SIGTERM);
        let now = Instant::now();
        let adopted = self
            .child
            .as_ref()
            .filter(|c| c.pidfd.is_some())
            .map(|c| (c.pid, c.start));
        // One stop signal to every process of the tree as it stands now,
        // including those that left the group with setsid: walked before the
        // group is signalled, while every parent still lives.
        let hooks = self.hook_pids();
        for (pid, parent) in self.command_tree(adopted, &hooks) {
            proc::signal_if_child_of(pid, parent, sig);
            proc::signal_if_child_of(pid, parent, Signal::SIGCONT);
        }
        if let Some(run) = &self.child {
            // The leader is alive (or an unreaped zombie): its group id is still its own.
            let _ = proc::kill_group(run.pid, sig);
            let _ = proc::kill_group(run.pid, Signal::SIGCONT);
            self.lifecycle(&format!(
                "stopping ({reason}): sent {} to group {} and its other processes, waiting up to {:.1} s for all of them",
                crate::signals::name(sig as i32),
                run.pid,
                timeout.as_secs_f64()
            ));
        }
        self.stopping = Some(Stopping {
            began: now,
            deadline: fsutil::after(now, timeout),
            signal: sig,
            killed_at: None,
            adopted,
            exit: None,
            reason,
        });
        self.advance_stop(now);
    }

    /// One step of a stop: done once no process of the tree lives; past the
    /// deadline, SIGKILL to all of them, again on every step.
    fn advance_stop(&mut self, now: Instant) {
        self.reap();
        let Some(stop) = &self.stopping else { return };
        let hooks = self.hook_pids();
        let tree = self.command_tree(stop.adopted, &hooks);
        if tree.is_empty() {
            self.finish_stop();
            return;
        }
        let (killed_at, deadline) = (stop.killed_at, stop.deadline);
        match killed_at {
            // Processes born after the stop signal (a handler's own helpers)
            // are not signalled: like systemd, one signal to what ran then,
            // and SIGKILL to everything at the deadline.
            None if now < deadline => {}
            None => {
                if let Some(stop) = &mut self.stopping {
                    stop.killed_at = Some(now);
                }
                self.kill_tree(&tree);
                self.lifecycle(&format!(
                    "{} process(es) still alive after the stop timeout: sent KILL",
                    tree.len()
                ));
            }
            Some(t) if now >= fsutil::after(t, KILL_GRACE) => {
                self.lifecycle("some processes did not die after KILL; giving up on them");
                self.finish_stop();
            }
            Some(_) => self.kill_tree(&tree),
        }
    }

    fn kill_tree(&self, tree: &[(i32, i32)]) {
        if let Some(run) = &self.child {
            let _ = proc::kill_group(run.pid, Signal::SIGKILL);
        }
        for (pid, parent) in tree {
            proc::signal_if_child_of(*pid, *parent, Signal::SIGKILL);
        }
    }

    fn finish_stop(&mut self) {
        let Some(stop) = self.stopping.take() else {
            return;
        };
        let by = match stop.killed_at {
            Some(_) => "KILL".to_string(),
            None => crate::signals::name(stop.signal as i32),
        };
        let took = stop.began.elapsed().as_secs_f64();
        self.child = None;
        self.state.phase = Phase::Stopped;
        self.state.desired = Desired::Stopped;
        self.state.pid = None;
        self.state.next_start_at = None;
        self.state.stopped_by = Some(by.clone());
        if let Some(r) = stop.exit {
            self.state.last_exit = Some(r);
        }
        self.save();
        self.lifecycle(&format!(
            "stopped ({}): its last process ended {took:.1} s after the stop signal, by {by}",
            stop.reason
        ));
        let _ = std::fs::remove_file(self.ws.run_file(&self.name, ".stop"));
        self.done = true;
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
        if self.name_left_registry() {
            self.begin_stop("its name was removed from the registry");
            return;
        }
        let len = self.log.metadata().map(|m| m.len()).unwrap_or(0);
        if len > self.entry.log_max_bytes() {
            // Nothing here may panic or stop: a full disk is the command's
            // problem to report, not a reason for it to lose its supervisor.
            match logs::rotate(&self.log, &self.log_path, self.entry.log_keep()) {
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

    /// Whether the registry changed and no longer holds our name (a
    /// `deregister` that raced a `start`, or a hand edit). One `stat` a tick;
    /// the file is read only when it changed, and an unreadable or corrupt
    /// registry is no reason to stop anything.
    fn name_left_registry(&mut self) -> bool {
        let stamp = registry_stamp(&self.ws);
        if stamp == self.registry_stamp {
            return false;
        }
        self.registry_stamp = stamp;
        if stamp.is_none() {
            return true;
        }
        matches!(
            Registry::load_one(&self.ws, &self.name),
            Err(crate::error::Error::NoSuchProcess { .. })
        )
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

/// The entry's working directory; a relative one is taken from the workspace.
fn command_cwd(ws: &Workspace, entry: &Entry) -> PathBuf {
    entry
        .cwd
        .as_ref()
        .map(|c| ws.root().join(c))
        .unwrap_or_else(|| ws.root().to_path_buf())
}

/// The registry file's identity and version: inode, mtime, size.
fn registry_stamp(ws: &Workspace) -> Option<FileStamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(ws.registry_path()).ok()?;
    Some((m.ino(), m.mtime(), m.mtime_nsec(), m.size()))
}

/// The environment the command runs with: the caller's at a start by the
/// user, kept in `run/<name>.env` (0600, never in the registry), and that
/// same one at every revival, so a revival from cron's bare environment
/// keeps the user's PATH and variables.
fn command_env(
    ws: &Workspace,
    name: &str,
    mode: Mode,
) -> std::collections::BTreeMap<String, String> {
    let path = ws.run_file(name, ".env");
    if mode != Mode::Fresh
        && let Ok(bytes) = fsutil::open_own_read(&path).and_then(fsutil::read_all)
        && let Ok(saved) = serde_json::from_slice(&bytes)
    {
        return saved;
    }
    let env: std::collections::BTreeMap<String, String> = std::env::vars_os()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        })
        .collect();
    if mode == Mode::Fresh
        && let Ok(bytes) = serde_json::to_vec(&env)
    {
        let _ = fsutil::write_atomic(&path, &bytes, 0o600, fsutil::Durability::Renamed);
    }
    env
}

/// The command as the supervisor runs it: its argv (exec'd directly, or
/// under `sh -c` when it uses shell syntax), in its cwd, with the
/// environment of the last start plus its own. Prepared once, spawned on
/// every restart.
fn build_spawner(ws: &Workspace, name: &str, entry: &Entry, mode: Mode) -> Result<Spawner, String> {
    let cwd = command_cwd(ws, entry);
    if !cwd.is_dir() {
        return Err(format!("working directory {} not found", cwd.display()));
    }
    let mut env = command_env(ws, name, mode);
    let command = cmdline::parse(&entry.command);
    env.extend(command.env);
    env.extend(entry.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    env.insert("PROCESS_GUARDIAN_NAME".into(), name.to_string());
    let env: Vec<(String, String)> = env.into_iter().collect();
    Spawner::new(&command.argv, &env, &cwd)
}

//! How a supervisor begins: it takes its name's liveness lock, reads its
//! entry, blocks its signals, prepares the command once (program, argv,
//! environment, cwd), then adopts the command that outlived its previous
//! supervisor or starts it, and reports to `start` through the ready pipe.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::machine::{Machine, Status};
use super::tree::Root;
use super::watch::{LogWatch, RegistryWatch};
use super::{Args, Supervisor, hooks::Hooks};
use crate::alert::Kind;
use crate::cmdline;
use crate::fsutil;
use crate::launch::{Mode, Ready, SpawnError, Spawner};
use crate::logs;
use crate::output::{Adopted, Fifo, Pump};
use crate::policy::Rules;
use crate::proc::{self, PidFd, Signal, SignalFd};
use crate::registry::{Entry, Registry};
use crate::state::{Desired, Phase, RunState};
use crate::workspace::Workspace;

/// The longest a start waits for the kernel to finish loading the
/// command's program after its exec can no longer fail back to us.
const EXEC_LOAD_LIMIT: Duration = Duration::from_millis(100);

/// The signals the supervisor reads from its signalfd.
const SIGNALS: [Signal; 5] = [
    Signal::CHILD,
    Signal::TERM,
    Signal::INT,
    Signal::HUP,
    Signal::QUIT,
];

/// Sets up, starts (or adopts) the command and reports to `start`.
/// `Ok(None)`: another supervisor already holds this name.
/// Never inlined, and the supervisor boxed: start-up's locals then live in
/// a frame that is gone once the loop runs, not below it for life.
#[inline(never)]
pub fn init(
    args: &Args,
    ready: &mut Option<File>,
    entry_file: Option<File>,
) -> Result<Option<Box<Supervisor>>, String> {
    let ws = Workspace::at(&args.workspace).map_err(|e| e.to_string())?;
    let name = args.name.clone();
    crate::registry::validate_name(&name).map_err(|e| e.to_string())?;
    ws.ensure_dirs().map_err(|e| e.to_string())?;
    let log_path = ws.log_path(&name);
    // Our own stdout and stderr (a panic's message) go to the log, appended.
    let log = logs::open_append(&log_path)
        .map_err(|e| format!("cannot open {}: {e}", log_path.display()))?;
    proc::redirect_stdio(&log);
    drop(log);
    let liveness = match proc::try_hold_lock(
        &ws.supervisors_lock_path(),
        crate::state::liveness_slot(&name),
    ) {
        Ok(Some(f)) => f,
        Ok(None) => {
            super::report(ready, &Ready::Already);
            return Ok(None);
        }
        Err(e) => return Err(format!("cannot take the supervisor lock: {e}")),
    };
    // A record left by an earlier supervisor must not speak for this one.
    crate::state::table::forget(&ws, &name);
    let read_now = entry_file.is_none();
    let entry = match entry_file {
        Some(f) => handed_entry(f)?,
        None => Registry::load_one(&ws, &name).map_err(|e| e.to_string())?,
    };
    let pump = Pump::open(
        log_path.clone(),
        entry.log_max_bytes(),
        entry.log_keep(),
        entry.timestamps,
    )
    .map_err(|e| format!("cannot open {}: {e}", log_path.display()))?;
    let fifo = Fifo::open(&ws, &name).map_err(|e| {
        format!(
            "cannot open {}: {e}",
            crate::output::fifo_path(&ws, &name).display()
        )
    })?;
    let _ = proc::become_subreaper();
    let sigfd = SignalFd::new(&SIGNALS).map_err(|e| format!("cannot create a signalfd: {e}"))?;
    // Do not pin whatever directory the caller was in (a relative alert
    // directory is resolved against it first).
    let _ = Workspace::alert_dir();
    let _ = std::env::set_current_dir("/");

    let previous = RunState::load(&ws, &name).ok().flatten();
    let (mut state, status) = first_state(args.mode, previous.as_ref());
    state.record_definition(&entry);
    let spawner = build_spawner(&ws, &name, &entry, args.mode);
    let now = Instant::now();
    let rules = Rules {
        duration_min: entry.duration_min,
        auto_restart: entry.auto_restart,
        max_restarts: entry.max_restarts,
        restart_cooldown_s: entry.restart_cooldown,
    };
    let stop_signal = entry.stop_signal().to_string();
    let mut sup = Box::new(Supervisor {
        log: LogWatch::new(pump, &entry, now),
        fifo,
        health: super::ready::Health::new(&entry, command_cwd(&ws, &entry)),
        usage_at: None,
        shed_due: true,
        env_due: false,
        readiness: super::ready::Readiness::new(
            &entry,
            command_cwd(&ws, &entry),
            log_path.clone(),
            now,
        ),
        registry: RegistryWatch::new(&ws, read_now),
        machine: Machine::running(&name, rules, stop_signal, status, 0, now, false),
        ws,
        name,
        entry,
        state,
        spawner,
        hooks: Hooks::default(),
        warden: Default::default(),
        sigfd,
        command: None,
        root: Root::Own,
        leftovers: Root::Own,
        liveness: Some(liveness),
    });
    let _ = std::fs::remove_file(sup.ws.run_file(&sup.name, ".stop"));
    sup.begin(args.mode, previous, ready);
    Ok(Some(sup))
}

/// This supervisor's state file to begin with, and the counters it goes
/// on from: a start by the user resets them, a revival or adoption does not.
fn first_state(mode: Mode, previous: Option<&RunState>) -> (RunState, Status) {
    let me = rustix::process::getpid().as_raw_nonzero().get();
    let state = RunState {
        desired: Desired::Running,
        phase: Phase::Running,
        boot_id: proc::boot_id().to_string(),
        supervisor_pid: Some(me),
        supervisor_start: proc::stat(me).map(|s| s.start_time),
        ..RunState::default()
    };
    let mut status = Status::default();
    if let Some(prev) = previous
        && !matches!(mode, Mode::Fresh | Mode::Retry)
    {
        status.restarts = prev.restarts;
        status.last_exit = prev.last_exit.clone();
    }
    (state, status)
}

impl Supervisor {
    /// Adopts the surviving command, or starts one; reports either way.
    fn begin(&mut self, mode: Mode, previous: Option<RunState>, ready: &mut Option<File>) {
        self.start_or_adopt(mode, previous, ready);
        // (A failed start saved it before letting go of the name.)
        self.env_due = mode == Mode::Fresh && !self.machine.is_done();
    }

    fn start_or_adopt(&mut self, mode: Mode, previous: Option<RunState>, ready: &mut Option<File>) {
        let mut lost = None;
        if mode == Mode::Adopt {
            if let Some(pid) = previous.as_ref().and_then(|p| self.adopt(p)) {
                self.lifecycle(&format!(
                    "supervisor restarted: adopted running command pid {pid}"
                ));
                self.save();
                super::report(ready, &Ready::Started(pid));
                return;
            }
            // It died in the meantime: start it again, as a revival.
            lost = previous.as_ref().and_then(|p| p.pid);
        }
        if matches!(mode, Mode::Adopt | Mode::Revive) {
            self.machine.status.restarts = self.machine.status.restarts.saturating_add(1);
        }
        if let Some(prev) = &previous {
            self.kill_previous_group(prev);
        }
        self.lifecycle(&format!("starting: {}", self.entry.command));
        match self.spawn() {
            Ok(pid) => {
                self.machine = Machine::running(
                    &self.name,
                    self.machine.rules,
                    self.machine.stop_signal.clone(),
                    self.machine.status.clone(),
                    pid,
                    Instant::now(),
                    false,
                );
                self.lifecycle(&format!("started pid {pid}"));
                self.save();
                // `start` answers with the program running, not in the
                // middle of its exec (its command line still empty); a
                // revival, which nobody waits on, does not wait either.
                if ready.is_some() {
                    proc::wait_exec_loaded(pid, EXEC_LOAD_LIMIT);
                }
                super::report(ready, &Ready::Started(pid));
                if let Some(old) = lost {
                    let msg = format!(
                        "{} (pid {old}) died while its supervisor was being replaced; started again as pid {pid}",
                        self.name
                    );
                    self.lifecycle(&msg);
                    self.alert(Kind::Died, msg, Some(old), None);
                }
            }
            Err(e) => {
                let reason = e.to_string();
                self.lifecycle(&format!("cannot start: {reason}"));
                self.machine.start_failed(reason.clone());
                self.save();
                if mode == Mode::Fresh {
                    save_env(&self.ws, &self.name);
                }
                // This supervisor is done: the name is free before `start`
                // hears so, or a start right after it (the cause fixed)
                // would find the name still held and say "already running".
                // Nothing after this writes the state or the environment.
                self.liveness = None;
                super::report(ready, &Ready::Failed(reason.clone()));
                let msg = format!("{} cannot start: {reason}", self.name);
                self.alert(Kind::StartFailed, msg, None, None);
            }
        }
    }

    /// Whatever is left of the previous command's group (its leader died
    /// unsupervised) goes before a new copy starts beside it.
    fn kill_previous_group(&mut self, prev: &RunState) {
        if let (Some(pid), Some(start)) = (prev.pid, prev.pid_start) {
            let n = proc::kill_leftover_group(pid, start, &prev.boot_id);
            if n > 0 {
                self.lifecycle(&format!(
                    "killed {n} process(es) left of the previous command's group {pid}"
                ));
            }
        }
    }

    /// Takes over a command whose supervisor died, if it is still the recorded process.
    fn adopt(&mut self, prev: &RunState) -> Option<i32> {
        let (pid, start) = (prev.pid?, prev.pid_start?);
        let pidfd = PidFd::open_verified(pid, start, &prev.boot_id)?;
        let uptime = prev.uptime_s().unwrap_or(0.0).max(0.0);
        let since = fsutil::secs(uptime)
            .and_then(|u| Instant::now().checked_sub(u))
            .unwrap_or_else(Instant::now);
        self.machine = Machine::running(
            &self.name,
            self.machine.rules,
            self.machine.stop_signal.clone(),
            Status {
                quick_crashes: prev.quick_crashes,
                ..self.machine.status.clone()
            },
            pid,
            since,
            true,
        );
        self.command = Some((pid, Some(pidfd)));
        self.root = Root::Adopted(pid, start);
        self.readiness.adopted(prev.ready, Instant::now());
        self.health.started(Instant::now());
        if let Adopted::Elsewhere(to) = self.fifo.adopt(pid) {
            if to == self.log.pump.path().display().to_string() {
                self.log.pump.share_with_command();
            }
            self.lifecycle(&format!(
                "its output goes to {to}, not through its supervisor (it was started by an earlier version): its log is not rotated until it is restarted"
            ));
        }
        self.state.pid_start = Some(start);
        self.state.started_at = prev.started_at.clone();
        // The command runs as it was started, whatever the registry says now.
        if prev.definition.is_some() {
            self.state.definition = prev.definition.clone();
        }
        Some(pid)
    }

    /// Starts the command; on success records its identity (the machine is
    /// told by the caller, the state not saved yet).
    pub(super) fn spawn(&mut self) -> Result<i32, SpawnError> {
        let spawner = match &self.spawner {
            Ok(s) => s,
            Err(e) => return Err(clone_error(e)),
        };
        let pid = spawner.spawn(None, self.fifo.writer())?;
        let now = Instant::now();
        self.command = Some((pid, None));
        self.root = Root::Own;
        self.state.pid_start = proc::stat(pid).map(|s| s.start_time);
        self.state.started_at = Some(fsutil::now_rfc3339());
        self.log.restarted(now);
        self.log.pump.own_alone();
        self.readiness.started(now, self.log.pump.size());
        self.health.started(now);
        // A new tree: sampled afresh at the next look.
        self.state.usage = None;
        self.usage_at = None;
        Ok(pid)
    }
}

/// The same error again, for a spawner that could not be prepared.
fn clone_error(e: &SpawnError) -> SpawnError {
    match e {
        SpawnError::ProgramNotFound(p) => SpawnError::ProgramNotFound(p.clone()),
        SpawnError::NotExecutable(p) => SpawnError::NotExecutable(p.clone()),
        SpawnError::CwdMissing(d) => SpawnError::CwdMissing(d.clone()),
        SpawnError::Nul(w) => SpawnError::Nul(w.clone()),
        SpawnError::EnvFile(w) => SpawnError::EnvFile(w.clone()),
        SpawnError::Os { program, source } => SpawnError::Os {
            program: program.clone(),
            source: std::io::Error::new(source.kind(), source.to_string()),
        },
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

/// The environment the command runs with: the caller's at a start by the
/// user, kept in `run/<name>.env` (0600, never in the registry), and that
/// same one at every revival, so a revival from cron's bare environment
/// keeps the user's PATH and variables.
fn command_env(ws: &Workspace, name: &str, mode: Mode) -> BTreeMap<String, String> {
    let path = ws.run_file(name, ".env");
    if mode != Mode::Fresh
        && let Ok(bytes) = fsutil::read_own(&path)
        && let Ok(saved) = serde_json::from_slice(&bytes)
    {
        return saved;
    }
    let env: BTreeMap<String, String> = crate::fsutil::env_pairs().collect();
    env
}

/// Keeps the caller's environment for later revivals (after `start` has
/// heard back: it is not on the way to the report).
pub(super) fn save_env(ws: &Workspace, name: &str) {
    let env: BTreeMap<String, String> = crate::fsutil::env_pairs().collect();
    if let Ok(bytes) = serde_json::to_vec(&env) {
        let path = ws.run_file(name, ".env");
        let _ = fsutil::write_atomic(&path, &bytes, 0o600, fsutil::Durability::Renamed);
    }
}

/// The command as the supervisor runs it: its argv (exec'd directly, or
/// under `sh -c` when it uses shell syntax), in its cwd, with the
/// environment of the last start plus its own. Prepared once, spawned on
/// every restart.
fn build_spawner(
    ws: &Workspace,
    name: &str,
    entry: &Entry,
    mode: Mode,
) -> Result<Spawner, SpawnError> {
    let cwd = command_cwd(ws, entry);
    let mut env = command_env(ws, name, mode);
    if let Some(path) = &entry.env_file {
        env.extend(read_env_file(&cwd.join(path))?);
    }
    let command = cmdline::parse(&entry.command);
    env.extend(command.env);
    env.extend(entry.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    env.insert("PROCESS_GUARDIAN_NAME".into(), name.to_string());
    let env: Vec<(String, String)> = env.into_iter().collect();
    Spawner::new(&command.argv, &env, &cwd)
}

/// The pairs of an env file. It may be a link, but what it names must be a
/// regular file of ours that nobody else can write: its variables (such as
/// LD_PRELOAD) would run code as us.
fn read_env_file(path: &std::path::Path) -> Result<Vec<(String, String)>, SpawnError> {
    let shown = path.display();
    let fail = |why: String| SpawnError::EnvFile(format!("env file {shown}: {why}"));
    let file = File::open(path).map_err(|e| fail(e.to_string()))?;
    fsutil::check_own_file(&file, path).map_err(|e| fail(e.to_string()))?;
    let bytes = fsutil::read_all(file).map_err(|e| fail(e.to_string()))?;
    let text = String::from_utf8(bytes).map_err(|_| fail("not UTF-8 text".into()))?;
    crate::envfile::parse(&text).map_err(fail)
}

/// The entry `start` handed over in a memfd, checked as a registry's is.
fn handed_entry(mut f: File) -> Result<Entry, String> {
    use std::io::{Read, Seek};
    let mut bytes = Vec::new();
    f.seek(std::io::SeekFrom::Start(0))
        .and_then(|_| f.take(1 << 20).read_to_end(&mut bytes))
        .map_err(|e| format!("cannot read the entry handed over: {e}"))?;
    let entry: Entry = serde_json::from_slice(&bytes)
        .map_err(|e| format!("the entry handed over does not parse: {e}"))?;
    entry.validate().map_err(|e| e.to_string())?;
    Ok(entry)
}

/// How long a stop may take: the `stop --timeout` the CLI left in
/// `run/<name>.stop`, else the entry's.
pub fn stop_timeout(ws: &Workspace, name: &str, entry: &Entry) -> Duration {
    fsutil::open_own_read(&ws.run_file(name, ".stop"))
        .and_then(fsutil::read_all)
        .ok()
        .and_then(|b| String::from_utf8_lossy(&b).trim().parse::<f64>().ok())
        .filter(|t| *t <= crate::registry::MAX_STOP_TIMEOUT_S)
        .and_then(fsutil::secs)
        .unwrap_or_else(|| entry.stop_timeout())
}

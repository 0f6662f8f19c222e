//! Detaching: the double fork that puts a supervisor in its own session,
//! re-parented away from the caller, and the pipe through which it confirms
//! that the command exec'd (or says why not). No fixed sleep anywhere.

use std::ffi::CString;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::registry::Entry;
use crate::workspace::Workspace;

/// How long `start` waits for a supervisor's answer before giving up on it.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// How the new supervisor begins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A start by the user: counters reset, and the caller's environment
    /// is the command's (kept for later revivals).
    Fresh,
    /// The healthcheck's fresh try of a failed process: counters reset, the
    /// environment of the last start by the user.
    Retry,
    /// The healthcheck brings back a process that died unsupervised: counts as a restart.
    Revive,
    /// The healthcheck hands a still-running command to a new supervisor.
    Adopt,
}

impl Mode {
    pub fn flag(self) -> &'static str {
        match self {
            Mode::Fresh => "--fresh",
            Mode::Retry => "--retry",
            Mode::Revive => "--revive",
            Mode::Adopt => "--adopt",
        }
    }
}

/// What the supervisor reported through the ready pipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ready {
    /// The command exec'd (or was adopted) with this pid.
    Started(i32),
    /// Another supervisor already holds this name.
    Already,
    /// The command could not start; the reason in plain words.
    Failed(String),
}

/// The supervisor's side of the protocol: one line, then close.
pub fn ready_line(ready: &Ready) -> String {
    match ready {
        Ready::Started(pid) => format!("ok {pid}\n"),
        Ready::Already => "already\n".to_string(),
        Ready::Failed(msg) => format!("err {}\n", msg.replace('\n', " ")),
    }
}

fn parse_ready(text: &str) -> Option<Ready> {
    let line = text.lines().next()?;
    if let Some(pid) = line.strip_prefix("ok ") {
        return pid.trim().parse().ok().map(Ready::Started);
    }
    if line == "already" {
        return Some(Ready::Already);
    }
    line.strip_prefix("err ")
        .map(|m| Ready::Failed(m.to_string()))
}

fn cstring(bytes: &[u8]) -> Result<CString> {
    CString::new(bytes).map_err(|_| Error::Invalid("an argument contains a NUL byte".into()))
}

/// Starts `process-guardian supervise <name>` fully detached and waits for its
/// report. The supervisor runs in a new session (setsid in the middle
/// process), is not a session leader (the middle process exits), and is
/// re-parented away from the caller.
/// Starts the supervisor of `name`. With `entry` (the caller has just read
/// it), the supervisor gets it through a memfd instead of reading the
/// registry again: a start then costs one read of a large registry, not two.
pub fn spawn_supervisor(
    ws: &Workspace,
    name: &str,
    mode: Mode,
    entry: Option<&Entry>,
) -> Result<Ready> {
    let exe = std::env::current_exe().map_err(|e| Error::io("find", "/proc/self/exe", e))?;
    let (read_end, write_end) = pipe_cloexec()?;
    let fd_arg = write_end.as_raw_fd().to_string();
    let exe_c = cstring(exe.as_os_str().as_bytes())?;
    // Without a memfd (an old kernel), the supervisor reads the registry.
    let entry_fd = entry.and_then(entry_memfd);
    let entry_arg = entry_fd.as_ref().map(|f| f.as_raw_fd().to_string());
    let mut args = vec![
        exe_c.clone(),
        cstring(b"supervise")?,
        cstring(name.as_bytes())?,
        cstring(b"--workspace")?,
        cstring(ws.root().as_os_str().as_bytes())?,
        cstring(b"--ready-fd")?,
        cstring(fd_arg.as_bytes())?,
        cstring(mode.flag().as_bytes())?,
    ];
    if let Some(fd) = &entry_arg {
        args.push(cstring(b"--entry-fd")?);
        args.push(cstring(fd.as_bytes())?);
    }
    let env = supervisor_env(&mut args)?;
    let argv = null_terminated(&args);
    let envp = null_terminated(&env);
    let write_fd = write_end.as_raw_fd();
    let entry_raw = entry_fd.as_ref().map_or(-1, |f| f.as_raw_fd());

    let middle = detach(&exe_c, &argv, &envp, [write_fd, entry_raw]);
    if middle < 0 {
        return Err(Error::io(
            "fork for",
            ws.root(),
            std::io::Error::last_os_error(),
        ));
    }
    drop(write_end);
    drop(entry_fd);
    let status = rustix::process::Pid::from_raw(middle)
        .and_then(|p| {
            rustix::process::waitpid(Some(p), rustix::process::WaitOptions::empty()).ok()?
        })
        .and_then(|(_, st)| st.exit_status());
    if status != Some(0) {
        return Err(Error::Failed("could not fork the supervisor".into()));
    }
    let text = read_line_with_deadline(File::from(read_end), READY_TIMEOUT)?;
    parse_ready(&text).ok_or_else(|| {
        Error::Failed(format!(
            "the supervisor of {name:?} ended without reporting; see {}",
            ws.log_path(name).display()
        ))
    })
}

/// What the two processes between `start` and the supervisor need, all
/// prepared before the first clone.
struct Detach {
    exe: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    /// The ready pipe and the entry's memfd (-1: none), kept open across exec.
    keep: [i32; 2],
    grandchild_stack: *mut libc::c_void,
    /// The caller's signal mask, which the supervisor starts with.
    mask: libc::sigset_t,
}

/// Room for the stack of each of the two: they call a handful of libc
/// functions and nothing else.
const DETACH_STACK: usize = 64 * 1024;

/// The top of a stack that ends `len` bytes above `base`, 16-byte aligned.
fn stack_top(base: usize, len: usize) -> *mut libc::c_void {
    ((base + len) & !15) as *mut libc::c_void
}

/// The double fork, without copying the caller's memory twice: the middle
/// process and the supervisor-to-be share it (CLONE_VM) while the caller
/// waits for each to exec or exit (CLONE_VFORK), as posix_spawn does. The
/// middle makes a new session and exits; its child, not a session leader,
/// execs the supervisor. Signals stay blocked in between, so no handler of
/// the caller's runs on shared memory. Returns the middle's pid, or -1.
fn detach(
    exe: &CString,
    argv: &[*mut libc::c_char],
    envp: &[*mut libc::c_char],
    keep: [i32; 2],
) -> libc::pid_t {
    extern "C" fn middle(arg: *mut libc::c_void) -> libc::c_int {
        // SAFETY: `arg` is the caller's `Detach`, alive while the caller
        // waits (CLONE_VFORK); only async-signal-safe calls follow.
        unsafe {
            let plan = &*(arg as *const Detach);
            libc::setsid();
            let pid = libc::clone(
                supervisor,
                plan.grandchild_stack,
                libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
                arg,
            );
            libc::_exit(if pid < 0 { 1 } else { 0 })
        }
    }
    extern "C" fn supervisor(arg: *mut libc::c_void) -> libc::c_int {
        // SAFETY: as in `middle`; execve replaces the shared memory with
        // the supervisor's own, or _exit ends this process.
        unsafe {
            let plan = &*(arg as *const Detach);
            for fd in plan.keep {
                if fd >= 0 {
                    libc::fcntl(fd, libc::F_SETFD, 0);
                }
            }
            libc::sigprocmask(libc::SIG_SETMASK, &plan.mask, std::ptr::null_mut());
            libc::execve(plan.exe, plan.argv, plan.envp);
            libc::_exit(127)
        }
    }
    // Never read from here: each process only writes its own stack, so the
    // memory is left as it comes (zeroing it cost more than the clones).
    let mut stacks: Vec<u8> = Vec::with_capacity(2 * DETACH_STACK);
    let base = stacks.as_mut_ptr() as usize;
    let (middle_top, grandchild_top) = (
        stack_top(base, DETACH_STACK),
        stack_top(base, 2 * DETACH_STACK),
    );
    // SAFETY: the plan, the strings argv and envp point to (null-terminated
    // by the caller) and both stacks outlive the two processes' use of them:
    // the caller is suspended until the middle has exited, and the middle
    // until the supervisor has exec'd. Signals are blocked across (a set of
    // zeroes is a valid set for sigfillset to fill), and the caller's mask
    // is restored after.
    unsafe {
        let mut plan = Detach {
            exe: exe.as_ptr(),
            argv: argv.as_ptr().cast(),
            envp: envp.as_ptr().cast(),
            keep,
            grandchild_stack: grandchild_top,
            mask: std::mem::zeroed(),
        };
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut plan.mask);
        let pid = libc::clone(
            middle,
            middle_top,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            &mut plan as *mut Detach as *mut libc::c_void,
        );
        libc::pthread_sigmask(libc::SIG_SETMASK, &plan.mask, std::ptr::null_mut());
        pid
    }
}

/// The supervisor's environment: the caller's, which it keeps for the
/// command, plus a glibc setting that turns off the per-thread cache of
/// freed blocks: a cache of up to seven blocks of every size that the heap
/// can neither merge nor return, which held two thirds of a supervisor's
/// heap after start-up. The supervisor is told (`--own-tunables`) so that
/// it removes the setting before anything it starts can inherit it; a
/// caller's own GLIBC_TUNABLES is passed on untouched instead.
fn supervisor_env(args: &mut Vec<CString>) -> Result<Vec<CString>> {
    let mut env = Vec::new();
    let mut theirs = false;
    for (k, v) in std::env::vars_os() {
        theirs |= k == TUNABLES;
        let mut kv = k.into_vec();
        kv.push(b'=');
        kv.extend_from_slice(v.as_bytes());
        // A variable with a NUL cannot be passed on by anyone; exec drops it too.
        if let Ok(c) = CString::new(kv) {
            env.push(c);
        }
    }
    if !theirs {
        env.push(cstring(
            format!("{TUNABLES}={SUPERVISOR_TUNABLES}").as_bytes(),
        )?);
        args.push(cstring(b"--own-tunables")?);
    }
    Ok(env)
}

/// Pointers to `strings`, then a null: an argv or envp for exec or
/// posix_spawn (which take them as `*mut`, and write through none).
fn null_terminated(strings: &[CString]) -> Vec<*mut libc::c_char> {
    let mut v: Vec<*mut libc::c_char> = strings.iter().map(|a| a.as_ptr().cast_mut()).collect();
    v.push(std::ptr::null_mut());
    v
}

/// The variable glibc reads its settings from, and the supervisor's.
pub const TUNABLES: &str = "GLIBC_TUNABLES";
const SUPERVISOR_TUNABLES: &str = "glibc.malloc.tcache_count=0";

/// The entry as JSON in a memfd (close-on-exec until the supervisor's
/// exec); `None` where memfds are missing or the write fails.
fn entry_memfd(entry: &Entry) -> Option<OwnedFd> {
    let json = serde_json::to_vec(entry).ok()?;
    crate::fsutil::memfd_with("process-guardian-entry", &json)
        .ok()
        .map(OwnedFd::from)
}

fn pipe_cloexec() -> Result<(OwnedFd, OwnedFd)> {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| Error::io("create", "a pipe", e.into()))
}

/// Reads the supervisor's one line: until its newline, EOF or `timeout`.
/// Not until EOF alone: the supervisor closes the pipe a moment after it
/// writes, and a wait for that was one more wake-up of the caller.
fn read_line_with_deadline(mut f: File, timeout: Duration) -> Result<String> {
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::Failed(format!(
                "the supervisor did not report within {} s",
                timeout.as_secs()
            )));
        }
        if !crate::proc::poll_readable([Some(f.as_fd()), None], left)[0] {
            continue;
        }
        match f.read(&mut buf) {
            Ok(0) => return Ok(String::from_utf8_lossy(&out).into_owned()),
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if out.ends_with(b"\n") {
                    return Ok(String::from_utf8_lossy(&out).into_owned());
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io("read from", "the supervisor", e)),
        }
    }
}

/// Why a command could not be spawned, told apart where it happens rather
/// than guessed afterwards from a message.
#[derive(Debug)]
pub enum SpawnError {
    ProgramNotFound(String),
    NotExecutable(String),
    CwdMissing(std::path::PathBuf),
    /// An argument, a variable or a path holds a NUL byte.
    Nul(String),
    /// The entry's env_file is missing, not ours, or not KEY=VALUE lines.
    EnvFile(String),
    Os {
        program: String,
        source: std::io::Error,
    },
}

impl std::fmt::Display for SpawnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SpawnError::ProgramNotFound(p) => write!(f, "program not found: {p}"),
            SpawnError::NotExecutable(p) => {
                write!(f, "permission denied: {p} is not executable")
            }
            SpawnError::CwdMissing(d) => write!(f, "working directory {} not found", d.display()),
            SpawnError::Nul(what) => write!(f, "{what} contains a NUL byte"),
            SpawnError::EnvFile(why) => write!(f, "{why}"),
            SpawnError::Os { program, source } => write!(f, "cannot run {program}: {source}"),
        }
    }
}

/// Starts the command, over and over, as fast as the kernel allows: a
/// vfork-style clone (no page tables copied, see `spawn_child`) with the
/// program path, arguments, environment and working directory prepared once.
/// The child gets its own process group, an empty signal mask (the
/// supervisor blocks the signals it reads through a signalfd, and a mask
/// survives exec), SIGPIPE back to default, stdin from /dev/null (or the
/// descriptor given) and stdout and stderr on the log.
///
/// Why not `std::process::Command`: it resolves the program and builds the
/// argument and environment arrays again on every spawn; it can set an empty
/// signal mask only through `pre_exec`, which forces a full fork instead of
/// a vfork-style clone (a restart went from 0.5 to 3.9 ms). Why not glibc's
/// `posix_spawn`, used before: its child sets every one of the 64 signals'
/// disposition, 128 system calls before each exec, while the supervisor
/// waits.
pub struct Spawner {
    program: String,
    path: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
    cwd: CString,
    cwd_path: std::path::PathBuf,
}

impl Spawner {
    /// Resolves the program on the command's PATH now, so a restart does not search it again.
    /// The arguments go to exec byte for byte (a path need not be UTF-8).
    pub fn new<A: AsRef<std::ffi::OsStr>>(
        argv: &[A],
        env: &[(String, String)],
        cwd: &std::path::Path,
    ) -> std::result::Result<Spawner, SpawnError> {
        if !cwd.is_dir() {
            return Err(SpawnError::CwdMissing(cwd.to_path_buf()));
        }
        let argv0 = argv.first().map_or(std::ffi::OsStr::new(""), AsRef::as_ref);
        let program = argv0.to_string_lossy().into_owned();
        let path_var = env
            .iter()
            .rev()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".to_string());
        let path = resolve_program(argv0, &path_var, cwd)
            .ok_or_else(|| SpawnError::ProgramNotFound(program.clone()))?;
        let c = |s: &[u8], what: &str| CString::new(s).map_err(|_| SpawnError::Nul(what.into()));
        Ok(Spawner {
            path: c(path.as_os_str().as_bytes(), "the program's path")?,
            argv: argv
                .iter()
                .map(|a| c(a.as_ref().as_bytes(), "an argument"))
                .collect::<std::result::Result<_, _>>()?,
            envp: env
                .iter()
                .map(|(k, v)| c(format!("{k}={v}").as_bytes(), k))
                .collect::<std::result::Result<_, _>>()?,
            cwd: c(cwd.as_os_str().as_bytes(), "the working directory")?,
            cwd_path: cwd.to_path_buf(),
            program,
        })
    }

    pub fn program(&self) -> &str {
        &self.program
    }

    /// Spawns the command with `out` as its stdout and stderr and `stdin`
    /// (or /dev/null) as its stdin; returns its pid.
    pub fn spawn(
        &self,
        stdin: Option<std::os::fd::BorrowedFd<'_>>,
        out: std::os::fd::BorrowedFd<'_>,
    ) -> std::result::Result<i32, SpawnError> {
        let argv = null_terminated(&self.argv);
        let envp = null_terminated(&self.envp);
        let mut child = Child {
            path: self.path.as_ptr(),
            argv: argv.as_ptr().cast(),
            envp: envp.as_ptr().cast(),
            cwd: self.cwd.as_ptr(),
            stdin: stdin.map_or(-1, |f| f.as_raw_fd()),
            out: out.as_raw_fd(),
            err: 0,
        };
        spawn_child(&mut child).map_err(|e| self.error(e))
    }

    fn error(&self, e: std::io::Error) -> SpawnError {
        if !self.cwd_path.is_dir() {
            return SpawnError::CwdMissing(self.cwd_path.clone());
        }
        match e.kind() {
            std::io::ErrorKind::NotFound => SpawnError::ProgramNotFound(self.program.clone()),
            std::io::ErrorKind::PermissionDenied => SpawnError::NotExecutable(self.program.clone()),
            _ => SpawnError::Os {
                program: self.program.clone(),
                source: e,
            },
        }
    }
}

/// What the command's process does between its clone and its exec, all
/// prepared before the clone: the process shares the caller's memory.
struct Child {
    path: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    cwd: *const libc::c_char,
    /// The descriptor to read as stdin; -1: /dev/null.
    stdin: i32,
    out: i32,
    /// The errno of the step that failed, written by the child before it
    /// exits; 0 while nothing failed.
    err: i32,
}

/// Room for the child's stack: it calls a handful of libc functions.
const CHILD_STACK: usize = 32 * 1024;

/// The signals a handler may be set for in a process of ours: Rust's own
/// start-up catches these two in a test binary; process-guardian itself
/// sets no handler (it reads signals through a signalfd).
const MAY_BE_CAUGHT: [i32; 2] = [libc::SIGSEGV, libc::SIGBUS];

/// Starts `child` as posix_spawn would, without glibc's pass over every
/// signal in the child (two `sigaction` calls for each of 64 signals, a
/// third of a microsecond each here, while the caller waits): a clone that
/// shares the caller's memory (`CLONE_VM`) and suspends the caller until it
/// execs or exits (`CLONE_VFORK`), every signal blocked across, so no
/// handler of the caller's runs on that shared memory. The child takes a
/// process group of its own, puts the signals that may have a handler here
/// and SIGPIPE back to their default, sets stdin, stdout and stderr and the
/// working directory, empties its signal mask and execs. A step that fails
/// leaves its errno in `child.err`; the child is then reaped here, as
/// posix_spawn reaps it.
fn spawn_child(child: &mut Child) -> std::io::Result<i32> {
    extern "C" fn run(arg: *mut libc::c_void) -> libc::c_int {
        // SAFETY: `arg` is the caller's `Child`, alive while the caller is
        // suspended (CLONE_VFORK); its pointers point into strings and
        // null-terminated arrays the caller keeps; only async-signal-safe
        // calls follow, and execve replaces the shared memory or _exit ends
        // this process.
        unsafe {
            let c = &mut *(arg as *mut Child);
            let failed = |c: &mut Child| -> libc::c_int {
                let errno = *libc::__errno_location();
                // Never 0, which would read as success.
                c.err = if errno > 0 { errno } else { libc::EIO };
                libc::_exit(127)
            };
            if libc::setpgid(0, 0) != 0 {
                return failed(c);
            }
            for sig in MAY_BE_CAUGHT.into_iter().chain([libc::SIGPIPE]) {
                libc::signal(sig, libc::SIG_DFL);
            }
            let input = if c.stdin >= 0 {
                c.stdin
            } else {
                libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY)
            };
            if input < 0 {
                return failed(c);
            }
            // A descriptor already at its number only loses close-on-exec.
            let place = |fd: i32, at: i32| {
                if fd == at {
                    libc::fcntl(at, libc::F_SETFD, 0)
                } else {
                    libc::dup2(fd, at)
                }
            };
            if place(input, 0) < 0 || place(c.out, 1) < 0 || place(c.out, 2) < 0 {
                return failed(c);
            }
            if input != c.stdin && input > 2 {
                libc::close(input);
            }
            if libc::chdir(c.cwd) != 0 {
                return failed(c);
            }
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
            libc::execve(c.path, c.argv, c.envp);
            failed(c)
        }
    }
    #[cfg(debug_assertions)]
    debug_assert_no_other_handler();
    // SAFETY: the stack is a fresh private mapping, unmapped only after the
    // child has exec'd or exited (the caller is suspended until then);
    // `child` outlives the clone; signals are blocked across it (a set of
    // zeroes is a valid set for sigfillset to fill) and the caller's mask
    // is restored after.
    unsafe {
        let stack = libc::mmap(
            std::ptr::null_mut(),
            CHILD_STACK,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
            -1,
            0,
        );
        if stack == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        let mut mask: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut mask);
        let pid = libc::clone(
            run,
            stack_top(stack as usize, CHILD_STACK),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            (child as *mut Child).cast(),
        );
        let clone_error = std::io::Error::last_os_error();
        libc::pthread_sigmask(libc::SIG_SETMASK, &mask, std::ptr::null_mut());
        libc::munmap(stack, CHILD_STACK);
        if pid < 0 {
            return Err(clone_error);
        }
        let err = std::ptr::read_volatile(&child.err);
        if err != 0 {
            let mut status = 0;
            libc::waitpid(pid, &mut status, 0);
            return Err(std::io::Error::from_raw_os_error(err));
        }
        Ok(pid)
    }
}

/// That no signal but `MAY_BE_CAUGHT` has a handler in this process: one
/// could run in a spawned child between its unblocking and its exec, on
/// memory it shares with this process.
#[cfg(debug_assertions)]
fn debug_assert_no_other_handler() {
    for sig in 1..=libc::SIGRTMAX() {
        if MAY_BE_CAUGHT.contains(&sig) {
            continue;
        }
        // SAFETY: sigaction with a null new action only reads the current one.
        let handler = unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            libc::sigaction(sig, std::ptr::null(), &mut old);
            old.sa_sigaction
        };
        debug_assert!(
            handler == libc::SIG_DFL || handler == libc::SIG_IGN,
            "signal {sig} has a handler: a spawned child could run it before its exec"
        );
    }
}

/// `program` as an executable path: itself if it holds a `/` (relative to
/// `cwd`), else the first match on `path_var`.
pub(crate) fn resolve_program(
    program: impl AsRef<std::ffi::OsStr>,
    path_var: &str,
    cwd: &std::path::Path,
) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let program = program.as_ref();
    if program.is_empty() {
        return None;
    }
    if program.as_bytes().contains(&b'/') {
        let p = cwd.join(program);
        return p.exists().then_some(p);
    }
    path_var
        .split(':')
        .map(|dir| {
            cwd.join(if dir.is_empty() { "." } else { dir })
                .join(program)
        })
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_lines_round_trip() {
        for r in [
            Ready::Started(42),
            Ready::Already,
            Ready::Failed("program not found: x".into()),
        ] {
            assert_eq!(parse_ready(&ready_line(&r)), Some(r));
        }
        assert_eq!(parse_ready(""), None);
        assert_eq!(parse_ready("garbage"), None);
    }

    #[test]
    fn programs_resolve_on_the_given_path() {
        let cwd = std::path::Path::new("/");
        assert_eq!(
            resolve_program("sh", "/nonexistent:/bin", cwd),
            Some("/bin/sh".into())
        );
        assert_eq!(resolve_program("sh", "/nonexistent", cwd), None);
        assert_eq!(resolve_program("/bin/sh", "", cwd), Some("/bin/sh".into()));
        assert_eq!(
            resolve_program("definitely-not-a-program", "/bin:/usr/bin", cwd),
            None
        );
    }

    #[test]
    fn spawned_child_has_no_blocked_signal_and_runs_in_its_cwd() {
        let dir = tempfile::tempdir().unwrap();
        let env = vec![("PATH".to_string(), "/usr/bin:/bin".to_string())];
        let run = |argv: &[&str]| -> String {
            let log_path = dir.path().join("log");
            let log = std::fs::File::create(&log_path).unwrap();
            let argv: Vec<String> = argv.iter().map(|a| a.to_string()).collect();
            let pid = Spawner::new(&argv, &env, dir.path())
                .unwrap()
                .spawn(None, log.as_fd())
                .unwrap();
            rustix::process::waitpid(
                rustix::process::Pid::from_raw(pid),
                rustix::process::WaitOptions::empty(),
            )
            .unwrap();
            std::fs::read_to_string(log_path).unwrap()
        };
        // grep reads its own mask: no shell in between (a shell blocks
        // signals around its own forks, which would blur the reading).
        let out = run(&["grep", "-E", "^(SigBlk|SigIgn)", "/proc/self/status"]);
        assert!(out.contains("SigBlk:\t0000000000000000"), "{out}");
        let ignored = out
            .lines()
            .find_map(|l| l.strip_prefix("SigIgn:"))
            .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
            .unwrap();
        assert_eq!(
            ignored & (1 << (libc::SIGPIPE - 1)),
            0,
            "SIGPIPE is back to default: {out}"
        );
        let out = run(&["sh", "-c", "pwd; echo err >&2"]);
        assert!(
            out.contains(&dir.path().canonicalize().unwrap().display().to_string()),
            "{out}"
        );
        assert!(out.contains("err"), "{out}");
        assert!(Spawner::new(&["no-such-program-here"], &env, dir.path()).is_err());
    }

    #[test]
    fn spawned_child_leads_its_group_reads_its_stdin_and_failures_are_told() {
        use std::io::Write;
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let env = vec![("PATH".to_string(), "/usr/bin:/bin".to_string())];
        let log_path = dir.path().join("log");
        let wait = |pid: i32| {
            rustix::process::waitpid(
                rustix::process::Pid::from_raw(pid),
                rustix::process::WaitOptions::empty(),
            )
            .unwrap();
        };
        // Its own group, /dev/null for stdin when none is given.
        let log = File::create(&log_path).unwrap();
        let line = "readlink /proc/$$/fd/0; cut -d' ' -f1,5 /proc/$$/stat";
        let pid = Spawner::new(&["sh", "-c", line], &env, dir.path())
            .unwrap()
            .spawn(None, log.as_fd())
            .unwrap();
        wait(pid);
        let out = std::fs::read_to_string(&log_path).unwrap();
        assert!(out.starts_with("/dev/null\n"), "{out}");
        assert!(out.contains(&format!("{pid} {pid}")), "{out}");
        // The stdin given.
        let log = File::create(&log_path).unwrap();
        let (read, write) = pipe_cloexec().unwrap();
        let pid = Spawner::new(&["cat"], &env, dir.path())
            .unwrap()
            .spawn(Some(read.as_fd()), log.as_fd())
            .unwrap();
        drop(read);
        File::from(write).write_all(b"through the pipe").unwrap();
        wait(pid);
        let out = std::fs::read_to_string(&log_path).unwrap();
        assert_eq!(out, "through the pipe");
        // A program that stopped being executable, a directory that went.
        let script = dir.path().join("x");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let spawner = Spawner::new(&["./x"], &env, dir.path()).unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = spawner.spawn(None, log.as_fd()).unwrap_err();
        assert!(matches!(err, SpawnError::NotExecutable(_)), "{err}");
        let gone = dir.path().join("gone");
        std::fs::create_dir(&gone).unwrap();
        let spawner = Spawner::new(&["sh", "-c", "true"], &env, &gone).unwrap();
        std::fs::remove_dir(&gone).unwrap();
        let err = spawner.spawn(None, log.as_fd()).unwrap_err();
        assert!(matches!(err, SpawnError::CwdMissing(_)), "{err}");
    }
}

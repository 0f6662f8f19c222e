//! Detaching: the double fork that puts a supervisor in its own session,
//! re-parented away from the caller, and the pipe through which it confirms
//! that the command exec'd (or says why not). No fixed sleep anywhere.

use std::ffi::CString;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
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
pub fn spawn_supervisor(ws: &Workspace, name: &str, mode: Mode) -> Result<Ready> {
    let exe = std::env::current_exe().map_err(|e| Error::io("find", "/proc/self/exe", e))?;
    let (read_end, write_end) = pipe_cloexec()?;
    let fd_arg = write_end.as_raw_fd().to_string();
    let exe_c = cstring(exe.as_os_str().as_bytes())?;
    let args = [
        exe_c.clone(),
        cstring(b"supervise")?,
        cstring(name.as_bytes())?,
        cstring(b"--workspace")?,
        cstring(ws.root().as_os_str().as_bytes())?,
        cstring(b"--ready-fd")?,
        cstring(fd_arg.as_bytes())?,
        cstring(mode.flag().as_bytes())?,
    ];
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let write_fd = write_end.as_raw_fd();

    // SAFETY: the child calls only async-signal-safe functions (setsid, fork,
    // fcntl, execv, _exit) on memory prepared before the fork.
    let middle = unsafe { libc::fork() };
    if middle < 0 {
        return Err(Error::io(
            "fork for",
            ws.root(),
            std::io::Error::last_os_error(),
        ));
    }
    if middle == 0 {
        // SAFETY: see above; this branch never returns.
        unsafe {
            libc::setsid();
            let grandchild = libc::fork();
            if grandchild == 0 {
                // Keep the ready pipe open across exec; the supervisor marks it close-on-exec again.
                libc::fcntl(write_fd, libc::F_SETFD, 0);
                libc::execv(exe_c.as_ptr(), argv.as_ptr());
                libc::_exit(127);
            }
            libc::_exit(if grandchild < 0 { 1 } else { 0 });
        }
    }
    drop(write_end);
    let mut status = 0;
    // SAFETY: waits for the middle process we just forked; status is a valid out-pointer.
    unsafe { libc::waitpid(middle, &mut status, 0) };
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        return Err(Error::Failed("could not fork the supervisor".into()));
    }
    let text = read_with_deadline(File::from(read_end), READY_TIMEOUT)?;
    parse_ready(&text).ok_or_else(|| {
        Error::Failed(format!(
            "the supervisor of {name:?} ended without reporting; see {}",
            ws.log_path(name).display()
        ))
    })
}

fn pipe_cloexec() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0i32; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(Error::io(
            "create",
            "a pipe",
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: pipe2 succeeded, so both descriptors are open and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Reads until EOF or until `timeout` passes.
fn read_with_deadline(mut f: File, timeout: Duration) -> Result<String> {
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
        let mut pfd = [libc::pollfd {
            fd: f.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        // SAFETY: one valid pollfd for the duration of the call.
        let r = unsafe {
            libc::poll(
                pfd.as_mut_ptr(),
                1,
                left.as_millis().min(i32::MAX as u128) as i32,
            )
        };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(Error::io("read from", "the supervisor", e));
        }
        if r == 0 {
            continue;
        }
        match f.read(&mut buf) {
            Ok(0) => return Ok(String::from_utf8_lossy(&out).into_owned()),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io("read from", "the supervisor", e)),
        }
    }
}

/// Starts the command, over and over, as fast as the kernel allows:
/// `posix_spawn` (a vfork-style clone, no page tables copied) with the
/// program path, arguments, environment and working directory prepared once.
/// The child gets its own process group, an empty signal mask (the
/// supervisor blocks the signals it reads through a signalfd, and a mask
/// survives exec), SIGPIPE back to default, stdin from /dev/null and stdout
/// and stderr on the log.
pub struct Spawner {
    program: String,
    path: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
    cwd: CString,
}

impl Spawner {
    /// Resolves the program on the command's PATH now, so a restart does not search it again.
    pub fn new(
        argv: &[String],
        env: &[(String, String)],
        cwd: &std::path::Path,
    ) -> std::result::Result<Spawner, String> {
        let program = argv.first().cloned().unwrap_or_default();
        let path_var = env
            .iter()
            .rev()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".to_string());
        let path = resolve_program(&program, &path_var, cwd)
            .ok_or_else(|| format!("program not found: {program}"))?;
        let c = |s: &str| CString::new(s).map_err(|_| format!("{s:?} contains a NUL byte"));
        Ok(Spawner {
            path: CString::new(path.as_os_str().as_bytes())
                .map_err(|_| "program path contains a NUL byte".to_string())?,
            argv: argv
                .iter()
                .map(|a| c(a))
                .collect::<std::result::Result<_, _>>()?,
            envp: env
                .iter()
                .map(|(k, v)| c(&format!("{k}={v}")))
                .collect::<std::result::Result<_, _>>()?,
            cwd: CString::new(cwd.as_os_str().as_bytes())
                .map_err(|_| "cwd contains a NUL byte".to_string())?,
            program,
        })
    }

    pub fn program(&self) -> &str {
        &self.program
    }

    /// Spawns the command with `log_fd` as its stdout and stderr; returns its pid.
    pub fn spawn(&self, log_fd: i32) -> std::io::Result<i32> {
        let mut argv: Vec<*mut libc::c_char> =
            self.argv.iter().map(|a| a.as_ptr().cast_mut()).collect();
        argv.push(std::ptr::null_mut());
        let mut envp: Vec<*mut libc::c_char> =
            self.envp.iter().map(|a| a.as_ptr().cast_mut()).collect();
        envp.push(std::ptr::null_mut());
        let check = |r: i32| {
            if r == 0 {
                Ok(())
            } else {
                Err(std::io::Error::from_raw_os_error(r))
            }
        };
        // SAFETY: the attribute and file-action objects are initialised before
        // use and destroyed on every path; every pointer handed to libc points
        // into CStrings and vectors that outlive the call.
        unsafe {
            let mut attr: libc::posix_spawnattr_t = std::mem::zeroed();
            let mut actions: libc::posix_spawn_file_actions_t = std::mem::zeroed();
            check(libc::posix_spawnattr_init(&mut attr))?;
            if let Err(e) = check(libc::posix_spawn_file_actions_init(&mut actions)) {
                libc::posix_spawnattr_destroy(&mut attr);
                return Err(e);
            }
            let result = (|| {
                let mut empty: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut empty);
                let mut defaults: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut defaults);
                libc::sigaddset(&mut defaults, libc::SIGPIPE);
                check(libc::posix_spawnattr_setsigmask(&mut attr, &empty))?;
                check(libc::posix_spawnattr_setsigdefault(&mut attr, &defaults))?;
                check(libc::posix_spawnattr_setpgroup(&mut attr, 0))?;
                let flags = libc::POSIX_SPAWN_SETPGROUP
                    | libc::POSIX_SPAWN_SETSIGMASK
                    | libc::POSIX_SPAWN_SETSIGDEF;
                check(libc::posix_spawnattr_setflags(
                    &mut attr,
                    flags as libc::c_short,
                ))?;
                check(libc::posix_spawn_file_actions_addopen(
                    &mut actions,
                    0,
                    c"/dev/null".as_ptr(),
                    libc::O_RDONLY,
                    0,
                ))?;
                check(libc::posix_spawn_file_actions_adddup2(
                    &mut actions,
                    log_fd,
                    1,
                ))?;
                check(libc::posix_spawn_file_actions_adddup2(
                    &mut actions,
                    log_fd,
                    2,
                ))?;
                check(libc::posix_spawn_file_actions_addchdir_np(
                    &mut actions,
                    self.cwd.as_ptr(),
                ))?;
                let mut pid: libc::pid_t = 0;
                check(libc::posix_spawn(
                    &mut pid,
                    self.path.as_ptr(),
                    &actions,
                    &attr,
                    argv.as_ptr(),
                    envp.as_ptr(),
                ))?;
                Ok(pid)
            })();
            libc::posix_spawn_file_actions_destroy(&mut actions);
            libc::posix_spawnattr_destroy(&mut attr);
            result
        }
    }
}

/// `program` as an executable path: itself if it holds a `/` (relative to
/// `cwd`), else the first match on `path_var`.
fn resolve_program(
    program: &str,
    path_var: &str,
    cwd: &std::path::Path,
) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    if program.is_empty() {
        return None;
    }
    if program.contains('/') {
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
                .spawn(log.as_raw_fd())
                .unwrap();
            let mut status = 0;
            // SAFETY: waiting for the child just spawned.
            unsafe { libc::waitpid(pid, &mut status, 0) };
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
        assert!(Spawner::new(&["no-such-program-here".into()], &env, dir.path()).is_err());
    }
}

//! Process identity, liveness and signalling, read from /proc.
//!
//! A process is ours only if its pid, its start time (field 22 of
//! `/proc/<pid>/stat`) and the boot id all match what we recorded: a recycled
//! pid is never reported as ours and never signalled. A zombie counts as dead.
//! Signals to a single process go through a pidfd opened *before* the
//! identity check, so the check and the kill cannot race.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

/// Test-only: pretend the machine booted again by overriding the boot id.
pub const BOOT_ID_ENV: &str = "PROCESS_GUARDIAN_BOOT_ID";

/// The current boot's id (`/proc/sys/kernel/random/boot_id`).
pub fn boot_id() -> &'static str {
    static BOOT: OnceLock<String> = OnceLock::new();
    BOOT.get_or_init(|| {
        if let Some(v) = std::env::var_os(BOOT_ID_ENV).filter(|v| !v.is_empty()) {
            return v.to_string_lossy().into_owned();
        }
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    })
}

/// What `/proc/<pid>/stat` says of a process.
#[derive(Debug, Clone, Copy)]
pub struct Stat {
    pub state: u8,
    pub ppid: i32,
    pub pgrp: i32,
    pub start_time: u64,
}

impl Stat {
    pub fn is_dead(&self) -> bool {
        matches!(self.state, b'Z' | b'X' | b'x')
    }
    /// Stopped by a signal (SIGSTOP, SIGTSTP) or by a tracer: it runs no code.
    pub fn is_frozen(&self) -> bool {
        matches!(self.state, b'T' | b't')
    }
}

pub fn stat(pid: i32) -> Option<Stat> {
    if pid <= 0 {
        return None;
    }
    let mut buf = [0u8; 512];
    let n = {
        use std::io::Read;
        let mut f = File::open(format!("/proc/{pid}/stat")).ok()?;
        f.read(&mut buf).ok()?
    };
    parse_stat(&buf[..n])
}

/// The part after the command name (which may itself hold spaces and parentheses).
fn parse_stat(buf: &[u8]) -> Option<Stat> {
    let close = buf.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(buf.get(close + 2..)?).ok()?;
    let mut fields = rest.split(' ');
    // Fields counted from 3 (state).
    let state = fields.next()?.bytes().next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgrp = fields.next()?.parse().ok()?;
    // Field 22 (starttime): the fields after the name start at 3.
    let start_time = fields.nth(22 - 6)?.parse().ok()?;
    Some(Stat {
        state,
        ppid,
        pgrp,
        start_time,
    })
}

/// Whether `pid` is alive and is the process that started at `start_time` in this boot.
pub fn is_ours_alive(pid: i32, start_time: u64, boot: &str) -> bool {
    boot == boot_id() && stat(pid).is_some_and(|s| s.start_time == start_time && !s.is_dead())
}

/// A handle to one process that survives pid reuse.
pub struct PidFd {
    fd: OwnedFd,
}

impl PidFd {
    /// Opens a pidfd for `pid` and keeps it only if the process is the one
    /// identified by `start_time` and `boot`, and alive.
    pub fn open_verified(pid: i32, start_time: u64, boot: &str) -> Option<PidFd> {
        let p = rustix::process::Pid::from_raw(pid)?;
        let fd = rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok()?;
        // Checked after opening: from here on the fd names this very process.
        if is_ours_alive(pid, start_time, boot) {
            Some(PidFd { fd })
        } else {
            None
        }
    }

    pub fn signal(&self, sig: Signal) -> io::Result<()> {
        let s = rustix::process::Signal::from_named_raw(sig as i32)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
        match rustix::process::pidfd_send_signal(&self.fd, s) {
            Ok(()) => Ok(()),
            Err(e) if e == rustix::io::Errno::SRCH => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Waits until the process has exited (a zombie counts) or `timeout` passes.
    pub fn wait_exit(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let ms = left.as_millis().min(i32::MAX as u128) as i32;
            let mut fds = [libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            }];
            // SAFETY: `fds` is a valid array of one pollfd that outlives the call.
            let r = unsafe { libc::poll(fds.as_mut_ptr(), 1, ms) };
            if r > 0 {
                return true;
            }
            if r == 0 || Instant::now() >= deadline {
                return false;
            }
        }
    }

    pub fn as_raw_fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }
}

impl AsFd for PidFd {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The children of `pid`, from every thread's `children` list.
pub fn children_of(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for t in tasks.flatten() {
        let path = t.path().join("children");
        if let Ok(s) = std::fs::read_to_string(path) {
            out.extend(s.split_whitespace().filter_map(|p| p.parse::<i32>().ok()));
        }
    }
    out
}

/// Every live descendant of `roots` (the roots excluded), with its parent,
/// leaving out the subtrees of `prune`. Zombies are dead and left out.
pub fn descendants(roots: &[i32], prune: &[i32]) -> Vec<(i32, i32)> {
    let mut out = Vec::new();
    let mut todo: Vec<i32> = roots.to_vec();
    // A bound on the walk, so that a fork bomb cannot keep it going for ever.
    let mut budget = 100_000usize;
    while let Some(parent) = todo.pop() {
        for child in children_of(parent) {
            budget = budget.saturating_sub(1);
            if budget == 0 {
                return out;
            }
            if prune.contains(&child) {
                continue;
            }
            todo.push(child);
            if stat(child).is_some_and(|s| !s.is_dead()) {
                out.push((child, parent));
            }
        }
    }
    out
}

/// Sends `sig` to `pid` only if it is alive and still the child of `parent`,
/// or has become ours (a subreaper inherits the orphans of its tree):
/// checked through a pidfd opened first, so a recycled pid is never hit.
pub fn signal_if_child_of(pid: i32, parent: i32, sig: Signal) -> bool {
    let Some(p) = rustix::process::Pid::from_raw(pid) else {
        return false;
    };
    let Ok(fd) = rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()) else {
        return false;
    };
    let me = std::process::id() as i32;
    if !stat(pid).is_some_and(|s| (s.ppid == parent || s.ppid == me) && !s.is_dead()) {
        return false;
    }
    let Some(s) = rustix::process::Signal::from_named_raw(sig as i32) else {
        return false;
    };
    rustix::process::pidfd_send_signal(&fd, s).is_ok()
}

/// Live members of process group `pgid` that started no earlier than
/// `not_before` (a start time in clock ticks), by a scan of /proc.
pub fn group_members(pgid: i32, not_before: u64) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| {
            stat(pid).is_some_and(|s| s.pgrp == pgid && !s.is_dead() && s.start_time >= not_before)
        })
        .collect()
}

/// Kills what is left of a process group whose leader (`pgid`, started at
/// `leader_start` in boot `boot`) is gone: every member that started after
/// it, each through a pidfd checked again after opening. The kernel does
/// not reuse a pid while a group of that id has members, so a group found
/// under this id while its leader's pid is free is still the same group.
pub fn kill_leftover_group(pgid: i32, leader_start: u64, boot: &str) -> usize {
    if pgid <= 1 || boot != boot_id() {
        return 0;
    }
    // The pid belongs to another process now: nothing of the old group can be left.
    if stat(pgid).is_some_and(|s| s.start_time != leader_start && !s.is_dead()) {
        return 0;
    }
    let mut killed = 0;
    for _ in 0..5 {
        let members = group_members(pgid, leader_start);
        if members.is_empty() {
            break;
        }
        for pid in members {
            let Some(p) = rustix::process::Pid::from_raw(pid) else {
                continue;
            };
            let Ok(fd) = rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty())
            else {
                continue;
            };
            if stat(pid).is_some_and(|s| s.pgrp == pgid && s.start_time >= leader_start)
                && rustix::process::pidfd_send_signal(&fd, rustix::process::Signal::KILL).is_ok()
            {
                killed += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    killed
}

/// Sends `sig` to the process group `pgid`; a group already gone is not an error.
pub fn kill_group(pgid: i32, sig: Signal) -> io::Result<bool> {
    if pgid <= 1 {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    match nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), sig) {
        Ok(()) => Ok(true),
        Err(nix::errno::Errno::ESRCH) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Makes a command start with no signal blocked. The supervisor blocks the
/// signals it reads through its signalfd, and a blocked mask survives exec:
/// without this, the command could never be stopped with SIGTERM.
pub fn unblock_signals_in_child(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs between fork and exec and calls only
    // sigemptyset and sigprocmask, both async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            if libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut()) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Takes ownership of a descriptor inherited across exec (the ready pipe),
/// marking it close-on-exec so it does not leak into the command.
pub fn take_inherited_fd(fd: i32) -> Option<File> {
    use std::os::fd::FromRawFd;
    if fd <= 2 {
        return None;
    }
    // SAFETY: fcntl on a descriptor number only inspects or flags it; a
    // closed one fails with EBADF, and then we do not take it.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } == -1 {
        return None;
    }
    // SAFETY: the descriptor is open (fcntl succeeded) and the process that
    // passed it gave it to us alone.
    Some(unsafe { File::from_raw_fd(fd) })
}

/// Points stdout and stderr at `log` (so a panic lands there) and stdin at /dev/null.
pub fn redirect_stdio(log: &File) {
    // SAFETY: dup2 onto the standard descriptors, from descriptors that stay open for the call.
    unsafe {
        libc::dup2(log.as_raw_fd(), 1);
        libc::dup2(log.as_raw_fd(), 2);
        if let Ok(null) = File::open("/dev/null") {
            libc::dup2(null.as_raw_fd(), 0);
        }
    }
}

/// Waits until one of up to two descriptors is readable, or `timeout`;
/// says which are. `None` slots are not watched.
pub fn poll_readable(fds: [Option<i32>; 2], timeout: Duration) -> [bool; 2] {
    let mut set = fds.map(|fd| libc::pollfd {
        fd: fd.unwrap_or(-1),
        events: libc::POLLIN,
        revents: 0,
    });
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: `set` is a valid array of two pollfds for the call (poll ignores a negative fd).
    let r = unsafe { libc::poll(set.as_mut_ptr(), 2, ms) };
    if r <= 0 {
        return [false, false];
    }
    set.map(|p| p.revents != 0)
}

/// A child that exited, as `waitpid` reported it.
pub struct Reaped {
    pub pid: i32,
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

impl Reaped {
    pub fn describe(&self) -> String {
        match (self.code, self.signal) {
            (_, Some(sig)) => format!("signal {}", crate::signals::name(sig)),
            (Some(code), None) => format!("code {code}"),
            (None, None) => "unknown status".into(),
        }
    }
}

/// Collects one exited child, any of them, without waiting.
pub fn reap_any() -> Option<Reaped> {
    let mut status = 0;
    // SAFETY: waitpid with a valid out-pointer; WNOHANG never blocks.
    let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
    if pid <= 0 {
        return None;
    }
    let (code, signal) = if libc::WIFSIGNALED(status) {
        (None, Some(libc::WTERMSIG(status)))
    } else {
        (Some(libc::WEXITSTATUS(status)), None)
    };
    Some(Reaped { pid, code, signal })
}

/// Restores the default action of SIGPIPE (the Rust runtime ignores it).
pub fn default_sigpipe() {
    // SAFETY: setting a signal disposition to its default has no preconditions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Returns freed heap pages to the kernel.
pub fn release_free_heap() {
    // SAFETY: malloc_trim only walks glibc's own allocator state.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Makes the calling process a child subreaper: orphans of its descendants
/// become its children, so it reaps them at once.
pub fn become_subreaper() -> io::Result<()> {
    nix::sys::prctl::set_child_subreaper(true).map_err(io::Error::from)
}

fn write_lock_query(fd: i32, cmd: i32, slot: i64) -> io::Result<libc::flock> {
    // SAFETY: an all-zero flock is a valid value of the plain C struct.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as i16;
    fl.l_whence = libc::SEEK_SET as i16;
    fl.l_start = slot;
    fl.l_len = 1;
    // SAFETY: fd is an open descriptor and `fl` a valid flock for the call.
    let r = unsafe { libc::fcntl(fd, cmd, &mut fl) };
    if r == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(fl)
    }
}

/// Takes a supervisor's liveness lock: an open-file-description lock on one
/// byte (`slot`) of the shared lock file `path`, held until the supervisor's
/// last descriptor closes (its death, kill -9 included). `None` if another
/// process holds that byte. One file for all supervisors lets `status` probe
/// each with a single fcntl.
pub fn try_hold_lock(path: &Path, slot: i64) -> io::Result<Option<File>> {
    let file = crate::fsutil::open_own(
        path,
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false),
    )?;
    match write_lock_query(file.as_raw_fd(), libc::F_OFD_SETLK, slot) {
        Ok(_) => Ok(Some(file)),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EACCES)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether some process holds byte `slot` of the lock file; asks without
/// taking it, so a probe never makes a starting supervisor believe it has a rival.
pub fn lock_is_held_on(file: &File, slot: i64) -> bool {
    write_lock_query(file.as_raw_fd(), libc::F_OFD_GETLK, slot)
        .is_ok_and(|fl| fl.l_type != libc::F_UNLCK as i16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_awkward_names() {
        let line = b"1234 (a) b (c)) S 1 1235 1234 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 987654 1000 100 18446744073709551615";
        let s = parse_stat(line).unwrap();
        assert_eq!(s.state, b'S');
        assert_eq!(s.ppid, 1);
        assert_eq!(s.pgrp, 1235);
        assert_eq!(s.start_time, 987654);
    }

    #[test]
    fn own_process_is_alive_and_ours() {
        let me = std::process::id() as i32;
        let st = stat(me).unwrap();
        assert!(is_ours_alive(me, st.start_time, boot_id()));
        assert!(!is_ours_alive(me, st.start_time + 1, boot_id()));
        assert!(!is_ours_alive(me, st.start_time, "another-boot"));
        assert!(PidFd::open_verified(me, st.start_time + 1, boot_id()).is_none());
        assert!(PidFd::open_verified(me, st.start_time, boot_id()).is_some());
    }

    #[test]
    fn lock_probe_does_not_take_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("supervisors.lock");
        let held_by_other = |slot: i64| File::open(&p).is_ok_and(|f| lock_is_held_on(&f, slot));
        assert!(!held_by_other(7));
        let held = try_hold_lock(&p, 7).unwrap().unwrap();
        // OFD locks conflict between open file descriptions, even in one process.
        assert!(held_by_other(7));
        assert!(try_hold_lock(&p, 7).unwrap().is_none());
        // Other slots are free: one file serves every supervisor.
        assert!(!held_by_other(8));
        let neighbour = try_hold_lock(&p, 8).unwrap().unwrap();
        drop(held);
        // Another test's fork may hold a copy of the descriptor until its exec
        // closes it (close-on-exec): give that a moment.
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while held_by_other(7) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(!held_by_other(7));
        assert!(held_by_other(8));
        assert!(try_hold_lock(&p, 7).unwrap().is_some());
        drop(neighbour);
    }
}

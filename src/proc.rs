//! Process identity, liveness and signalling, read from /proc.
//!
//! A process is ours only if its pid, its start time (field 22 of
//! `/proc/<pid>/stat`) and the boot id all match what we recorded: a recycled
//! pid is never reported as ours and never signalled. A zombie counts as dead.
//! Signals to a single process go through a pidfd opened *before* the
//! identity check, so the check and the kill cannot race.
//!
//! This is the system-call layer of the program, with `launch.rs`: system
//! calls go through rustix where it has them, through libc where it does
//! not (signalfd, byte-range OFD locks, malloc_trim), and nowhere else.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rustix::process::{Pid, PidfdFlags, WaitOptions};

pub use crate::signals::Signal;

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
    pub session: i32,
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

/// CPU time and memory of a process tree, for `status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Usage {
    /// Percent of one core over the leader's lifetime (as `ps` counts it).
    pub cpu_pct: f64,
    pub rss_bytes: u64,
}

/// The usage of `pid` and its live descendants: their CPU time (and that of
/// the children they reaped) over the leader's age, and their resident
/// memory. One `stat` read a process, plus the children lists.
pub fn tree_usage(pid: i32, uptime_s: f64) -> Option<Usage> {
    // SAFETY: sysconf reads constants of the system; no memory is touched.
    let (hz, page) = unsafe {
        (
            libc::sysconf(libc::_SC_CLK_TCK),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    let hz = u64::try_from(hz).ok().filter(|h| *h > 0).unwrap_or(100) as f64;
    let page = u64::try_from(page).ok().filter(|p| *p > 0).unwrap_or(4096);
    let read = |p: i32| -> Option<(u64, u64, u64)> {
        let mut buf = [0u8; 512];
        let n = {
            use std::io::Read;
            let mut f = File::open(format!("/proc/{p}/stat")).ok()?;
            f.read(&mut buf).ok()?
        };
        let close = buf[..n].iter().rposition(|&b| b == b')')?;
        let rest = std::str::from_utf8(buf.get(close + 2..n)?).ok()?;
        // Fields from 3: utime 14, stime 15, cutime 16, cstime 17, starttime 22, rss 24.
        let mut f = rest.split(' ').skip(14 - 3).map(|v| v.parse::<u64>().ok());
        let mut next = || f.next().flatten();
        let cpu = next()? + next()? + next()? + next()?;
        let mut f = rest.split(' ').skip(22 - 3).map(|v| v.parse::<u64>().ok());
        let start = f.next().flatten()?;
        let rss = f.nth(1).flatten()?;
        Some((cpu, start, rss.saturating_mul(page)))
    };
    let (mut cpu, start, mut rss) = read(pid)?;
    for (child, _) in descendants(&[pid], &[]) {
        if let Some((c, _, r)) = read(child) {
            cpu += c;
            rss += r;
        }
    }
    let age_s = (uptime_s - start as f64 / hz).max(0.01);
    Some(Usage {
        cpu_pct: (100.0 * cpu as f64 / hz / age_s * 10.0).round() / 10.0,
        rss_bytes: rss,
    })
}

/// Seconds since boot, from `/proc/uptime`.
pub fn uptime_s() -> f64 {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// The resident memory of a process, from `/proc/<pid>/statm` (0 if gone).
pub fn rss_bytes(pid: i32) -> u64 {
    if pid <= 0 {
        return 0;
    }
    let mut buf = [0u8; 128];
    let n = {
        use std::io::Read;
        let Ok(mut f) = File::open(format!("/proc/{pid}/statm")) else {
            return 0;
        };
        f.read(&mut buf).unwrap_or(0)
    };
    let pages: u64 = std::str::from_utf8(&buf[..n])
        .ok()
        .and_then(|t| t.split(' ').nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages.saturating_mul(page_size())
}

/// The system's page size.
fn page_size() -> u64 {
    // SAFETY: sysconf reads a constant of the system; no memory is touched.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(n).ok().filter(|n| *n > 0).unwrap_or(4096)
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
    let session = fields.next()?.parse().ok()?;
    // Field 22 (starttime): the fields after the name start at 3.
    let start_time = fields.nth(22 - 7)?.parse().ok()?;
    Some(Stat {
        state,
        ppid,
        pgrp,
        session,
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
        let fd = pidfd(pid)?;
        // Checked after opening: from here on the fd names this very process.
        if is_ours_alive(pid, start_time, boot) {
            Some(PidFd { fd })
        } else {
            None
        }
    }

    pub fn signal(&self, sig: Signal) -> io::Result<()> {
        match rustix::process::pidfd_send_signal(&self.fd, sig) {
            Ok(()) => Ok(()),
            Err(e) if e == rustix::io::Errno::SRCH => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Waits until the process has exited (a zombie counts) or `timeout` passes.
    pub fn wait_exit(&self, timeout: Duration) -> bool {
        let deadline = crate::fsutil::after(Instant::now(), timeout);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if poll_readable([Some(self.fd.as_fd()), None], left)[0] {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
        }
    }
}

impl AsFd for PidFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Whether this system lets a process open pidfds (Linux 5.3 and later,
/// unless a seccomp profile refuses `pidfd_open`): every signal to and wait
/// on another process goes through one, and without them a running process
/// would look gone.
pub fn pidfds_available() -> io::Result<()> {
    rustix::process::pidfd_open(rustix::process::getpid(), PidfdFlags::empty())
        .map(drop)
        .map_err(io::Error::from)
}

fn pidfd(pid: i32) -> Option<OwnedFd> {
    rustix::process::pidfd_open(Pid::from_raw(pid)?, PidfdFlags::empty()).ok()
}

/// The numeric names in a /proc directory (pids, thread ids), read with a
/// buffer on the stack: `std::fs::read_dir` takes glibc's 32 KiB directory
/// buffer from the heap (massif's largest allocation of an idle
/// supervisor), and the pages it touched stayed resident.
fn numbered_entries(dir: &str) -> Vec<i32> {
    use rustix::fs::{Mode, OFlags, RawDir};
    let mut out = Vec::new();
    let Ok(fd) = rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return out;
    };
    let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 2048];
    let mut entries = RawDir::new(&fd, &mut buf);
    while let Some(Ok(entry)) = entries.next() {
        if let Some(n) = entry
            .file_name()
            .to_str()
            .ok()
            .and_then(|n| n.parse::<i32>().ok())
        {
            out.push(n);
        }
    }
    out
}

/// The children of `pid`, from every thread's `children` list.
pub fn children_of(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for tid in numbered_entries(&format!("/proc/{pid}/task")) {
        if let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/children")) {
            out.extend(s.split_whitespace().filter_map(|p| p.parse::<i32>().ok()));
        }
    }
    out
}

/// Whether `pid` is a process-guardian supervisor (`… supervise NAME …`).
pub fn is_supervisor(pid: i32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|c| c.split(|&b| b == 0).nth(1) == Some(b"supervise"))
}

/// Every live descendant of `roots` (the roots excluded), with its parent,
/// leaving out the subtrees of `prune`. Zombies are dead and left out.
///
/// A process that dies while the walk is under way hands its children to
/// the subreaper, a root here, before it shows as dead: the walk may have
/// read the root's children before they came and the dead one's after they
/// left. So the roots' children are read again once the walk is done, and
/// any that came meanwhile are walked too, until none came (a few rounds at
/// most: a tree that keeps dying under the walk is caught by the next one).
pub fn descendants(roots: &[i32], prune: &[i32]) -> Vec<(i32, i32)> {
    walk(roots, prune, |_| {})
}

/// `descendants`, calling `after_read` with each process whose children it
/// has just read: a test makes the race happen there.
fn walk(roots: &[i32], prune: &[i32], mut after_read: impl FnMut(i32)) -> Vec<(i32, i32)> {
    let mut out = Vec::new();
    let mut todo: Vec<i32> = roots.to_vec();
    let mut seen = std::collections::HashSet::new();
    // A bound on the walk, so that a fork bomb cannot keep it going for ever.
    let mut budget = 100_000usize;
    for round in 0..4 {
        let known = seen.len();
        while let Some(parent) = todo.pop() {
            let children = children_of(parent);
            after_read(parent);
            for child in children {
                budget = budget.saturating_sub(1);
                if budget == 0 {
                    return out;
                }
                if prune.contains(&child) || !seen.insert(child) {
                    continue;
                }
                todo.push(child);
                if stat(child).is_some_and(|s| !s.is_dead()) {
                    out.push((child, parent));
                }
            }
        }
        // A round after the first that found no one new: nothing came.
        if round > 0 && seen.len() == known {
            break;
        }
        // The roots again: those already seen are skipped, newcomers walked.
        todo = roots.to_vec();
    }
    out
}

/// Sends `sig` to `pid` only if it is alive and still the child of `parent`,
/// or has become ours (a subreaper inherits the orphans of its tree):
/// checked through a pidfd opened first, so a recycled pid is never hit.
pub fn signal_if_child_of(pid: i32, parent: i32, sig: Signal) -> bool {
    let Some(fd) = pidfd(pid) else {
        return false;
    };
    let me = rustix::process::getpid().as_raw_nonzero().get();
    if !stat(pid).is_some_and(|s| (s.ppid == parent || s.ppid == me) && !s.is_dead()) {
        return false;
    }
    rustix::process::pidfd_send_signal(&fd, sig).is_ok()
}

/// Live members of process group `pgid` that started no earlier than
/// `not_before` (a start time in clock ticks), by a scan of /proc.
pub fn group_members(pgid: i32, not_before: u64) -> Vec<i32> {
    numbered_entries("/proc")
        .into_iter()
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
            let Some(fd) = pidfd(pid) else {
                continue;
            };
            if stat(pid).is_some_and(|s| s.pgrp == pgid && s.start_time >= leader_start)
                && rustix::process::pidfd_send_signal(&fd, Signal::KILL).is_ok()
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
    let Some(p) = Pid::from_raw(pgid).filter(|_| pgid > 1) else {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    };
    match rustix::process::kill_process_group(p, sig) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::SRCH) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The signals a process blocks and reads instead through a file
/// descriptor: the supervisor's way to wait for SIGCHLD and stop requests
/// in the same `poll` as everything else, with no handler at all.
pub struct SignalFd {
    fd: OwnedFd,
}

impl SignalFd {
    /// Blocks `signals` in the calling thread and opens a non-blocking,
    /// close-on-exec signalfd for them. (A blocked mask survives exec: the
    /// command is spawned with an empty one.)
    pub fn new(signals: &[Signal]) -> io::Result<SignalFd> {
        // SAFETY: the sigset is initialised by sigemptyset before any use;
        // sigprocmask and signalfd only read it; a descriptor signalfd
        // returns is new and owned by nobody else, so OwnedFd may take it.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for s in signals {
                libc::sigaddset(&mut set, s.as_raw());
            }
            if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
                return Err(io::Error::last_os_error());
            }
            let fd = libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC);
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(SignalFd {
                fd: OwnedFd::from_raw_fd(fd),
            })
        }
    }

    /// The next pending signal's number, if any.
    pub fn read(&self) -> Option<i32> {
        // One `struct signalfd_siginfo` (128 bytes); its first field is the signal number.
        let mut buf = [0u8; 128];
        match rustix::io::read(&self.fd, &mut buf) {
            Ok(128) => Some(i32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]])),
            _ => None,
        }
    }
}

impl AsFd for SignalFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Takes ownership of a descriptor inherited across exec (the ready pipe),
/// marking it close-on-exec so it does not leak into the command.
pub fn take_inherited_fd(fd: i32) -> Option<File> {
    if fd <= 2 {
        return None;
    }
    // SAFETY: fcntl(F_SETFD) on a descriptor number only flags it, and fails
    // with EBADF on a closed one, in which case nothing takes it; an open one
    // was passed to this process alone by the one that exec'd it.
    unsafe {
        if libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) == -1 {
            return None;
        }
        Some(File::from_raw_fd(fd))
    }
}

/// Points stdout and stderr at `log` (so a panic lands there) and stdin at /dev/null.
pub fn redirect_stdio(log: &File) {
    let _ = rustix::stdio::dup2_stdout(log);
    let _ = rustix::stdio::dup2_stderr(log);
    if let Ok(null) = File::open("/dev/null") {
        let _ = rustix::stdio::dup2_stdin(&null);
    }
}

/// Waits until one of the descriptors is readable (or hung up), or
/// `timeout`; says which are. `None` slots are not watched.
pub fn poll_readable<const N: usize>(
    fds: [Option<BorrowedFd<'_>>; N],
    timeout: Duration,
) -> [bool; N] {
    use rustix::event::{PollFd, PollFlags};
    let mut set: Vec<(usize, PollFd<'_>)> = fds
        .iter()
        .enumerate()
        .filter_map(|(i, fd)| fd.as_ref().map(|fd| (i, PollFd::new(fd, PollFlags::IN))))
        .collect();
    let ts = rustix::event::Timespec::try_from(timeout).unwrap_or(rustix::event::Timespec {
        tv_sec: i64::MAX,
        tv_nsec: 0,
    });
    let mut polled: Vec<PollFd<'_>> = set.iter().map(|(_, p)| p.clone()).collect();
    let mut out = [false; N];
    if rustix::event::poll(&mut polled, Some(&ts)).unwrap_or(0) == 0 {
        return out;
    }
    for ((i, _), p) in set.iter_mut().zip(&polled) {
        out[*i] = !p.revents().is_empty();
    }
    out
}

/// A child that exited, as `waitpid` reported it.
pub struct Reaped {
    pub pid: i32,
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

impl Reaped {
    pub fn describe(&self) -> String {
        crate::state::describe_exit(self.code, self.signal.map(crate::signals::name).as_deref())
    }
}

/// Collects one exited child of `which` (any child when `None`), without waiting.
pub fn reap(which: Option<i32>) -> Option<Reaped> {
    let opts = WaitOptions::NOHANG;
    let (pid, status) = match which {
        None => rustix::process::wait(opts).ok()??,
        Some(p) => rustix::process::waitpid(Some(Pid::from_raw(p)?), opts).ok()??,
    };
    Some(Reaped {
        pid: pid.as_raw_nonzero().get(),
        code: status.exit_status(),
        signal: status.terminating_signal(),
    })
}

/// Waits, at most `limit`, until `pid` has finished loading the program it
/// exec'd: until its command line is in place. A vfork-style spawn returns once
/// the exec can no longer fail back to the caller, which is a moment
/// before the kernel has mapped the new program and set out its arguments;
/// a `ps` in that moment shows the process with no command line. A process
/// that is gone, or a zombie, ends the wait.
pub fn wait_exec_loaded(pid: i32, limit: Duration) {
    let path = format!("/proc/{pid}/cmdline");
    let deadline = crate::fsutil::after(Instant::now(), limit);
    let mut byte = [0u8; 1];
    loop {
        match File::open(&path).and_then(|mut f| std::io::Read::read(&mut f, &mut byte)) {
            Ok(0) => {}
            Ok(_) | Err(_) => return,
        }
        if stat(pid).is_none_or(|s| s.is_dead()) || Instant::now() >= deadline {
            return;
        }
        std::thread::yield_now();
    }
}

/// Ignores SIGPIPE, as Rust's start-up did: a supervisor or probe writing
/// to a pipe whose reader has gone gets EPIPE, and goes on.
pub fn ignore_sigpipe() {
    // SAFETY: setting a signal disposition to SIG_IGN has no preconditions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

/// Opens /dev/null on whichever of descriptors 0, 1 and 2 is closed, so
/// that no file this process opens later becomes its stdin, stdout or
/// stderr by accident (a log written to by `println!`, a lock read as
/// input). Rust's start-up did this; the binary now starts without it.
pub fn reopen_closed_stdio() {
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    });
    // SAFETY: poll reads and writes the three pollfd structs it is given
    // and touches no descriptor; open and fcntl take a constant path or a
    // descriptor number.
    unsafe {
        let polled = loop {
            let r = libc::poll(fds.as_mut_ptr(), 3, 0);
            if r != -1 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted
            {
                break r != -1;
            }
        };
        for p in fds {
            let closed = if polled {
                p.revents & libc::POLLNVAL != 0
            } else {
                libc::fcntl(p.fd, libc::F_GETFD) == -1
            };
            // The lowest free number: the one that is closed.
            if closed && libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) == -1 {
                libc::abort();
            }
        }
    }
}

/// Restores the default action of SIGPIPE (a caller may have left it
/// ignored, and an ignored signal stays ignored across exec).
pub fn default_sigpipe() {
    // SAFETY: setting a signal disposition to its default has no preconditions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Removes a variable from this process's environment. Only for a
/// single-threaded process (the supervisor, before it starts anything).
pub fn forget_env(name: &str) {
    // SAFETY: the caller is single-threaded, so no other thread reads the
    // environment meanwhile.
    unsafe {
        std::env::remove_var(name);
    }
}

/// Returns freed heap pages to the kernel.
pub fn release_free_heap() {
    // SAFETY: malloc_trim only walks glibc's own allocator state.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// What a long-lived supervisor touched for rare work (start-up, a usage
/// sample), handed back: the heap it freed, the pages of the executable's
/// code and read-only data it ran through (shared with every other copy of
/// the binary, but each mapping counts in its memory), and the stack below
/// the caller. What the loop uses again comes back on first touch.
pub fn shed_memory() {
    release_stack_below_here();
    release_code_pages();
    // Last: the stack's release reads /proc/self/maps into the heap.
    release_free_heap();
}

/// Unmaps from this process the pages of the executable's read-only
/// segments (code, read-only data). They are never written, so they come
/// back from the page cache as they were when next run; the segments that
/// can be written (data, relocations) are left alone.
fn release_code_pages() {
    let page = usize::try_from(page_size()).unwrap_or(4096);
    for (start, len) in read_only_segments(page) {
        // SAFETY: the range is whole pages of a read-only, never-written
        // private file mapping of this executable (its program headers say
        // so): dropping them only makes the next access fault them back in
        // from the same file, unchanged.
        unsafe {
            libc::madvise(start as *mut libc::c_void, len, libc::MADV_DONTNEED);
        }
    }
}

/// The executable's loaded segments without write permission, as whole
/// pages inside them: from its program headers, which the kernel mapped and
/// points at (AT_PHDR). Empty where they cannot be read with certainty.
#[cfg(target_pointer_width = "64")]
fn read_only_segments(page: usize) -> Vec<(usize, usize)> {
    // SAFETY: getauxval reads the auxiliary vector the kernel passed; it
    // touches no other memory.
    let (at, count) = unsafe {
        (
            libc::getauxval(libc::AT_PHDR),
            libc::getauxval(libc::AT_PHNUM),
        )
    };
    let (Ok(at), Ok(count)) = (usize::try_from(at), usize::try_from(count)) else {
        return Vec::new();
    };
    if at == 0 || count == 0 || count > 256 || at % std::mem::align_of::<libc::Elf64_Phdr>() != 0 {
        return Vec::new();
    }
    // SAFETY: AT_PHDR is the address of this executable's program header
    // table, mapped for the process's life, AT_PHNUM entries long (checked
    // non-null, aligned and of a sane count above).
    let headers = unsafe { std::slice::from_raw_parts(at as *const libc::Elf64_Phdr, count) };
    // Where the executable was loaded: the table's address minus where its
    // own header says it is (0 for a fixed-address executable).
    let Some(bias) = headers
        .iter()
        .find(|h| h.p_type == libc::PT_PHDR)
        .and_then(|h| usize::try_from(h.p_vaddr).ok())
        .and_then(|v| at.checked_sub(v))
    else {
        return Vec::new();
    };
    headers
        .iter()
        .filter(|h| h.p_type == libc::PT_LOAD && h.p_flags & libc::PF_W == 0)
        .filter_map(|h| {
            let lo = bias.checked_add(usize::try_from(h.p_vaddr).ok()?)?;
            let hi = lo.checked_add(usize::try_from(h.p_memsz).ok()?)?;
            // Inward to whole pages: a page shared with a neighbour is kept.
            let lo = lo.checked_next_multiple_of(page)?;
            let hi = hi - hi % page;
            (hi > lo).then(|| (lo, hi - lo))
        })
        .collect()
}

#[cfg(not(target_pointer_width = "64"))]
fn read_only_segments(_page: usize) -> Vec<(usize, usize)> {
    Vec::new()
}

/// Drops the pages of the stack below the caller's frame (keeping one page
/// of margin for this call): start-up went deeper than the loop ever goes
/// again, and each page it touched stays resident otherwise. Nothing lives
/// below the stack pointer; a deeper call later finds zeroed pages, as on
/// first use. Bounded by the stack's own mapping, read from
/// /proc/self/maps, so nothing mapped below it (the guard gap can be set
/// as small as a page) is ever touched.
#[inline(never)]
fn release_stack_below_here() {
    let page = usize::try_from(page_size()).unwrap_or(4096);
    let marker = 0u8;
    let here = std::hint::black_box(&marker) as *const u8 as usize;
    let Some(start) = std::fs::read_to_string("/proc/self/maps")
        .ok()
        .and_then(|maps| mapping_start(&maps, here))
    else {
        return;
    };
    let top = (here - here % page).saturating_sub(page);
    if top > start {
        // SAFETY: [start, top) is the part of this thread's own stack
        // mapping (the one that holds `marker`) at least a page below the
        // current stack pointer: no frame lives there.
        unsafe {
            libc::madvise(start as *mut libc::c_void, top - start, libc::MADV_DONTNEED);
        }
    }
}

/// The start of the mapping in `maps` (the text of /proc/PID/maps) that
/// holds `addr`.
fn mapping_start(maps: &str, addr: usize) -> Option<usize> {
    maps.lines().find_map(|line| {
        let range = line.split_whitespace().next()?;
        let (lo, hi) = range.split_once('-')?;
        let lo = usize::from_str_radix(lo, 16).ok()?;
        let hi = usize::from_str_radix(hi, 16).ok()?;
        (lo <= addr && addr < hi).then_some(lo)
    })
}

/// Makes the calling process a child subreaper: orphans of its descendants
/// become its children, so it reaps them at once.
pub fn become_subreaper() -> io::Result<()> {
    rustix::process::set_child_subreaper(Some(rustix::process::getpid())).map_err(io::Error::from)
}

/// A write lock on byte `slot` of `file`, set (`F_OFD_SETLK`) or asked
/// about (`F_OFD_GETLK`). rustix locks whole files only, hence libc.
fn write_lock_query(file: &File, cmd: i32, slot: i64) -> io::Result<libc::flock> {
    // SAFETY: an all-zero flock is a valid value of the plain C struct, and
    // the descriptor is open for the call (borrowed from `file`).
    let (r, fl) = unsafe {
        let mut fl: libc::flock = std::mem::zeroed();
        fl.l_type = libc::F_WRLCK as i16;
        fl.l_whence = libc::SEEK_SET as i16;
        fl.l_start = slot;
        fl.l_len = 1;
        (libc::fcntl(file.as_raw_fd(), cmd, &mut fl), fl)
    };
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
    match write_lock_query(&file, libc::F_OFD_SETLK, slot) {
        Ok(_) => Ok(Some(file)),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EACCES)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether some process holds byte `slot` of the lock file; asks without
/// taking it, so a probe never makes a starting supervisor believe it has a rival.
pub fn lock_is_held_on(file: &File, slot: i64) -> bool {
    write_lock_query(file, libc::F_OFD_GETLK, slot)
        .is_ok_and(|fl| fl.l_type != libc::F_UNLCK as i16)
}

#[cfg(test)]
mod tests {
    use super::*;

    static WRITTEN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

    /// The race the walk guards against, made to happen: the command dies
    /// right after the walk read the supervisor's children, handing its own
    /// child to the supervisor (a subreaper). Run in a process of its own,
    /// the test binary again, which becomes the subreaper.
    #[test]
    fn the_walk_finds_a_child_handed_over_while_it_walks() {
        const HELPER: &str = "PROCESS_GUARDIAN_TEST_SUBREAPER";
        let me = rustix::process::getpid().as_raw_nonzero().get();
        if std::env::var_os(HELPER).is_none() {
            let name = "proc::tests::the_walk_finds_a_child_handed_over_while_it_walks";
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args(["--exact", name, "--nocapture", "--test-threads=1"])
                .env(HELPER, "1")
                .output()
                .unwrap();
            let said = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success() && said.contains("1 passed"), "{said}");
            return;
        }
        become_subreaper().unwrap();
        let mut command = std::process::Command::new("sh")
            .args(["-c", "sleep 30 & echo $!; wait"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(command.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let sleep: i32 = line.trim().parse().unwrap();
        let leader = i32::try_from(command.id()).unwrap();
        let mut killed = false;
        let found = walk(&[me], &[], |parent| {
            if parent == me && !killed {
                killed = true;
                let pid = Pid::from_raw(leader).unwrap();
                rustix::process::kill_process(pid, Signal::KILL).unwrap();
                let deadline = Instant::now() + Duration::from_secs(5);
                while stat(sleep).is_some_and(|s| s.ppid != me) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        });
        let pid = Pid::from_raw(sleep).unwrap();
        rustix::process::kill_process(pid, Signal::KILL).unwrap();
        command.wait().unwrap();
        rustix::process::waitpid(Some(pid), WaitOptions::empty()).unwrap();
        assert!(killed);
        assert!(found.contains(&(sleep, me)), "{found:?}");
        assert!(!found.iter().any(|(p, _)| *p == leader), "{found:?}");
    }

    #[test]
    fn the_stack_is_released_within_its_own_mapping_only() {
        let maps = "00200000-00296000 r--p 00000000 fe:00 1 /bin/x\n\
                    7ffc0000-7ffd0000 rw-p 00000000 00:00 0 [stack]\n";
        assert_eq!(mapping_start(maps, 0x7ffc8000), Some(0x7ffc0000));
        assert_eq!(mapping_start(maps, 0x7ffd0000), None, "the end is outside");
        assert_eq!(mapping_start(maps, 0x1000), None);
        assert_eq!(mapping_start("garbage\n-\nzz-yy r", 5), None);
        // On a thread's own stack, a frame's data survives a release below it.
        std::thread::spawn(|| {
            let keep = std::hint::black_box([7u8; 512]);
            release_stack_below_here();
            assert!(std::hint::black_box(keep).iter().all(|&b| b == 7));
        })
        .join()
        .unwrap();
    }

    #[test]
    fn the_segments_given_back_hold_code_and_never_writable_data() {
        let page = usize::try_from(page_size()).unwrap();
        let segments = read_only_segments(page);
        let inside = |addr: usize| {
            segments
                .iter()
                .any(|&(lo, len)| addr >= lo && addr < lo + len)
        };
        // This very function's code is in one; a static that is written is in none.
        let code = the_segments_given_back_hold_code_and_never_writable_data as *const () as usize;
        assert!(inside(code), "{code:#x} not in {segments:x?}");
        WRITTEN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let data = &WRITTEN as *const _ as usize;
        assert!(!inside(data), "{data:#x} in {segments:x?}");
        for &(lo, len) in &segments {
            assert!(lo % page == 0 && len % page == 0 && len > 0);
        }
        // Handing them back and running on: they come back as they were.
        release_code_pages();
        assert_eq!(WRITTEN.load(std::sync::atomic::Ordering::Relaxed), 2);
        assert!(numbered_entries("/proc").contains(&(std::process::id() as i32)));
    }

    #[test]
    fn children_and_pids_are_read_from_proc() {
        let me = std::process::id() as i32;
        assert!(numbered_entries("/proc").contains(&me));
        assert!(numbered_entries(&format!("/proc/{me}/task")).contains(&me));
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        assert!(children_of(me).contains(&pid), "{:?}", children_of(me));
        let _ = child.kill();
        let _ = child.wait();
        assert!(numbered_entries("/no/such/dir").is_empty());
    }

    #[test]
    fn parses_stat_with_awkward_names() {
        let line = b"1234 (a) b (c)) S 1 1235 1236 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 987654 1000 100 18446744073709551615";
        let s = parse_stat(line).unwrap();
        assert_eq!(s.state, b'S');
        assert_eq!(s.ppid, 1);
        assert_eq!(s.pgrp, 1235);
        assert_eq!(s.session, 1236);
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

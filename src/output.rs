//! The command's output on its way to its log.
//!
//! The command's stdout and stderr are a named FIFO, `run/<name>.out`, and
//! its supervisor alone writes `logs/<name>.log`, so the size bound is held
//! exactly: a file is rotated (renamed) before it would pass `log_max_bytes`,
//! cut at the last line end that fits.
//!
//! The command's descriptor on the FIFO is opened read-write, so the pipe has
//! a reader for as long as the command lives, whoever else does: when its
//! supervisor dies, the command never sees SIGPIPE or EPIPE; its output
//! waits in the pipe (grown to 1 MiB where the system allows), and the next
//! supervisor opens the same pipe again, by path or through
//! `/proc/<pid>/fd/1`, and carries on from the first unread byte. If the
//! pipe fills while no supervisor lives, the command's writes block until
//! one comes back (the warden brings one back within a second or two).
//!
//! Without timestamps the bytes never enter our memory: `splice` moves
//! them from the pipe into the file inside the kernel, which is also why a
//! supervisor killed mid-copy loses nothing (what was not written stays in
//! the pipe). Near the end of a file, `tee` peeks at what is coming to find
//! the last line end that still fits. With timestamps, the bytes are read,
//! each line gets the time its first byte was read, and written.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};
use rustix::pipe::SpliceFlags;

use crate::workspace::Workspace;

/// What the pipe is grown to, tried in this order (an unprivileged user
/// past `/proc/sys/fs/pipe-user-pages-soft` may get less).
const PIPE_SIZES: [usize; 3] = [1 << 20, 256 << 10, 64 << 10];
/// How close to its bound a file is before what comes is looked at for a line end.
const EDGE: u64 = 64 * 1024;
/// The most one splice moves.
const SPLICE_MAX: usize = 1 << 20;
/// The most one drain moves before the supervisor looks at its signals again.
const DRAIN_BUDGET: u64 = 8 << 20;
/// How much one read takes when stamping lines.
const STAMP_READ: usize = 16 * 1024;

/// The pipe between a command and its supervisor.
pub struct Fifo {
    /// Read-write and non-blocking: what the supervisor drains.
    reader: File,
    /// Read-write and blocking: what the command's stdout and stderr become.
    writer: File,
}

/// Where the running command's output goes, as found when adopting it.
pub enum Adopted {
    /// Its stdout is our FIFO (or a pipe we could open again): all is well.
    Fifo,
    /// Its stdout is something else (a file, started by an earlier version):
    /// its output does not pass through us until it is restarted.
    Elsewhere(String),
}

pub fn fifo_path(ws: &Workspace, name: &str) -> PathBuf {
    ws.run_file(name, ".out")
}

fn open_fifo_fd(path: &Path, nonblock: bool) -> io::Result<File> {
    let mut flags = OFlags::RDWR | OFlags::CLOEXEC | OFlags::NOFOLLOW;
    if nonblock {
        flags |= OFlags::NONBLOCK;
    }
    let fd = rustix::fs::open(path, flags, Mode::empty())?;
    Ok(File::from(fd))
}

/// A FIFO of ours that nobody else can write to.
fn is_own_fifo(f: &File) -> io::Result<(u64, u64)> {
    let st = rustix::fs::fstat(f)?;
    let ours = st.st_mode & libc::S_IFMT == libc::S_IFIFO
        && st.st_uid == crate::fsutil::euid()
        && st.st_mode & 0o077 == 0;
    if ours {
        Ok((st.st_dev, st.st_ino))
    } else {
        Err(io::Error::other("not a FIFO of ours"))
    }
}

impl Fifo {
    /// Opens `run/<name>.out`, creating it (0600) if it is missing; anything
    /// else found at that name (a link, a file, a FIFO of another user) is
    /// removed and replaced: the directory is ours alone.
    pub fn open(ws: &Workspace, name: &str) -> io::Result<Fifo> {
        let path = fifo_path(ws, name);
        let mut last = None;
        for _ in 0..3 {
            match open_fifo_fd(&path, true) {
                Ok(reader) => match is_own_fifo(&reader) {
                    Ok(id) => {
                        let writer = open_fifo_fd(&path, false)?;
                        if is_own_fifo(&writer)? != id {
                            return Err(io::Error::other(format!(
                                "{} changed while it was opened",
                                path.display()
                            )));
                        }
                        grow(&reader);
                        return Ok(Fifo { reader, writer });
                    }
                    Err(e) => {
                        last = Some(e);
                        std::fs::remove_file(&path)?;
                    }
                },
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    rustix::fs::mknodat(
                        rustix::fs::CWD,
                        &path,
                        rustix::fs::FileType::Fifo,
                        Mode::from_raw_mode(0o600),
                        0,
                    )?;
                }
                Err(e) => {
                    // A symbolic link (ELOOP), or whatever else is in the way.
                    last = Some(e);
                    std::fs::remove_file(&path)?;
                }
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("cannot create the FIFO")))
    }

    /// The descriptor the command's stdout and stderr become.
    pub fn writer(&self) -> BorrowedFd<'_> {
        self.writer.as_fd()
    }

    /// The descriptor the supervisor drains (to poll on).
    pub fn reader(&self) -> BorrowedFd<'_> {
        self.reader.as_fd()
    }

    /// Makes sure we drain the pipe an adopted command writes to: our FIFO
    /// if its stdout is that, else its stdout itself if it is a pipe (the
    /// FIFO's name was replaced while it ran).
    pub fn adopt(&mut self, pid: i32) -> Adopted {
        let target = format!("/proc/{pid}/fd/1");
        let Ok(st) = rustix::fs::stat(target.as_str()) else {
            // It closed its stdout: nothing of it can reach us anyway.
            return Adopted::Fifo;
        };
        let ours = rustix::fs::fstat(&self.reader).ok();
        if ours.is_some_and(|o| o.st_dev == st.st_dev && o.st_ino == st.st_ino) {
            return Adopted::Fifo;
        }
        if st.st_mode & libc::S_IFMT == libc::S_IFIFO
            && let (Ok(reader), Ok(writer)) = (
                open_fifo_fd(Path::new(&target), true),
                open_fifo_fd(Path::new(&target), false),
            )
        {
            grow(&reader);
            *self = Fifo { reader, writer };
            return Adopted::Fifo;
        }
        let shown = std::fs::read_link(&target)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "something else".into());
        Adopted::Elsewhere(shown)
    }

    /// Bytes waiting in the pipe.
    pub fn pending(&self) -> u64 {
        rustix::io::ioctl_fionread(&self.reader).unwrap_or(0)
    }
}

fn grow(fd: impl AsFd) {
    for size in PIPE_SIZES {
        if rustix::pipe::fcntl_setpipe_size(&fd, size).is_ok() {
            return;
        }
    }
}

/// Bytes waiting in `name`'s pipe, for the healthcheck: output there means
/// the command is alive and writing, whatever the log's age says.
pub fn pending_output(ws: &Workspace, name: &str) -> u64 {
    let path = fifo_path(ws, name);
    let Ok(fd) = rustix::fs::open(
        &path,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    ) else {
        return 0;
    };
    let f = File::from(fd);
    if is_own_fifo(&f).is_err() {
        return 0;
    }
    rustix::io::ioctl_fionread(&f).unwrap_or(0)
}

/// Where something other than the command writes into its log (a hook's
/// output, a line from the command line): the FIFO while something holds it
/// open for reading, so the supervisor stays the log's only writer; the
/// log itself, appended to, when nothing does.
pub fn open_for_others(ws: &Workspace, name: &str) -> io::Result<File> {
    let path = fifo_path(ws, name);
    let flags = OFlags::WRONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOFOLLOW;
    if let Ok(fd) = rustix::fs::open(&path, flags, Mode::empty()) {
        let f = File::from(fd);
        if is_own_fifo(&f).is_ok() {
            // A hook's writes may wait for the supervisor, like the command's.
            let _ = rustix::fs::fcntl_setfl(&f, OFlags::WRONLY);
            return Ok(f);
        }
    }
    crate::logs::open_append(&ws.log_path(name))
}

/// Appends one lifecycle line to `name`'s log from outside its supervisor.
/// One write of a short line into a pipe is never interleaved with others.
pub fn note(ws: &Workspace, name: &str, text: &str) {
    let line = crate::logs::lifecycle_line(text);
    let path = fifo_path(ws, name);
    let flags = OFlags::WRONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOFOLLOW;
    if let Ok(fd) = rustix::fs::open(&path, flags, Mode::empty()) {
        let f = File::from(fd);
        if is_own_fifo(&f).is_ok() && rustix::io::write(&f, line.as_bytes()) == Ok(line.len()) {
            return;
        }
    }
    if let Ok(f) = crate::logs::open_append(&ws.log_path(name)) {
        let _ = rustix::io::write(&f, line.as_bytes());
    }
}

/// The supervisor's writer of one log: exact rotation, optional timestamps.
pub struct Pump {
    log: File,
    path: PathBuf,
    /// The log's size: where the next byte goes.
    len: u64,
    max: u64,
    keep: u32,
    stamps: bool,
    /// With timestamps: the next byte begins a line.
    at_line_start: bool,
    /// Near a file's end: a pipe that `tee` copies what is coming into.
    peek: Option<(File, File)>,
    /// The buffers for stamped lines and peeks; given back when idle.
    buf: Vec<u8>,
    input: Vec<u8>,
    /// Bytes of the command's output moved since the last `take_moved`.
    moved: u64,
    /// A write or rotation failed (full disk); said once, not every time.
    failing: bool,
    /// Output thrown away while the log could not be written (a full disk):
    /// the command must not block on a full pipe for it. Said once writing works again.
    dropped: u64,
    /// /dev/null, where that output goes.
    null: Option<File>,
    /// The command writes into the log file itself (started by an earlier
    /// version): no rotation under it, every write at the file's end.
    shared: bool,
    /// Said about a failure, for the supervisor to log once it can.
    pub problem: Option<String>,
    ticks: u32,
}

impl Pump {
    /// The log at `path`, opened (created 0600) to be written at its end.
    pub fn open(path: PathBuf, max: u64, keep: u32, stamps: bool) -> io::Result<Pump> {
        let log = open_log(&path)?;
        let len = log.metadata()?.len();
        let mut pump = Pump {
            log,
            path,
            len,
            max: max.max(1),
            keep,
            stamps,
            at_line_start: true,
            peek: None,
            buf: Vec::new(),
            input: Vec::new(),
            moved: 0,
            failing: false,
            dropped: 0,
            null: None,
            shared: false,
            problem: None,
            ticks: 0,
        };
        pump.at_line_start = pump.ends_with_newline();
        Ok(pump)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The log's size: where its next byte goes.
    pub fn size(&self) -> u64 {
        self.len
    }

    /// The command writes into this log itself: stop rotating it (a rename
    /// would leave the command writing into `.1`) until it is restarted.
    pub fn share_with_command(&mut self) {
        self.shared = true;
    }

    /// A command started by us writes into the pipe: the log is ours alone again.
    pub fn own_alone(&mut self) {
        self.shared = false;
    }

    /// Bytes of output moved since the last call (for staleness).
    pub fn take_moved(&mut self) -> u64 {
        std::mem::take(&mut self.moved)
    }

    /// Once a second: a log removed by hand is created again, a file
    /// appended to by someone else is measured again, and an idle buffer
    /// is given back (a hundred supervisors should not each keep one).
    pub fn tick(&mut self) {
        // The path is looked at every tenth tick: a log removed by hand is
        // noticed within ten seconds, at a tenth of the system calls.
        self.ticks = self.ticks.wrapping_add(1);
        let removed = self.ticks.is_multiple_of(10)
            && matches!(std::fs::symlink_metadata(&self.path),
                Err(e) if e.kind() == io::ErrorKind::NotFound);
        if removed {
            if let Ok(log) = open_log(&self.path) {
                self.log = log;
                self.len = 0;
            }
        } else {
            self.measure();
        }
        if self.buf.capacity() + self.input.capacity() > 0 {
            self.buf = Vec::new();
            self.input = Vec::new();
            crate::proc::release_free_heap();
        }
    }

    fn measure(&mut self) {
        if let Ok(st) = rustix::fs::fstat(&self.log) {
            self.len = u64::try_from(st.st_size).unwrap_or(self.len).max(self.len);
        }
    }

    /// Moves what waits in the pipe into the log, up to a budget; returns
    /// whether more may be waiting.
    pub fn drain(&mut self, fifo: &Fifo) -> bool {
        let mut moved = 0u64;
        while moved < DRAIN_BUDGET {
            let step = if self.stamps {
                self.pump_stamped(fifo)
            } else {
                self.pump_raw(fifo)
            };
            match step {
                Ok(0) => break,
                Ok(n) => {
                    moved += n;
                    self.failing = false;
                    if self.dropped > 0 {
                        let dropped = std::mem::take(&mut self.dropped);
                        let line = crate::logs::lifecycle_line(&format!(
                            "{dropped} bytes of output were dropped while {} could not be written",
                            self.path.display()
                        ));
                        let _ = self.write_lines(line.as_bytes(), None);
                    }
                }
                Err(e) => {
                    // What waits is thrown away rather than left to fill the
                    // pipe and block the command: it lives on, and is told.
                    self.fail(&e);
                    self.dropped = self.dropped.saturating_add(self.discard(fifo));
                    break;
                }
            }
        }
        self.moved += moved;
        moved >= DRAIN_BUDGET
    }

    /// Empties the pipe into /dev/null; returns how much went.
    fn discard(&mut self, fifo: &Fifo) -> u64 {
        if self.null.is_none() {
            self.null = std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/null")
                .ok();
        }
        let Some(null) = &self.null else {
            return 0;
        };
        let mut gone = 0u64;
        while gone < DRAIN_BUDGET {
            match rustix::pipe::splice(
                fifo.reader(),
                None,
                null,
                None,
                SPLICE_MAX,
                SpliceFlags::NONBLOCK,
            ) {
                Ok(0) | Err(_) => break,
                Ok(n) => gone += n as u64,
            }
        }
        gone
    }

    fn fail(&mut self, e: &io::Error) {
        if !self.failing {
            self.failing = true;
            self.problem = Some(format!("cannot write {}: {e}", self.path.display()));
        }
    }

    /// One step without timestamps; 0 when the pipe is empty.
    fn pump_raw(&mut self, fifo: &Fifo) -> io::Result<u64> {
        if self.shared {
            self.measure();
            return Ok(splice_to(fifo.reader(), &self.log, &mut self.len, SPLICE_MAX)? as u64);
        }
        if self.len >= self.max {
            self.rotate()?;
        }
        let room = self.max - self.len;
        let (want, rotate_after) = if room > EDGE {
            (
                usize::try_from(room - EDGE)
                    .unwrap_or(SPLICE_MAX)
                    .min(SPLICE_MAX),
                false,
            )
        } else {
            match self.cut_point(fifo.reader(), room)? {
                None => return Ok(0),
                Some(cut) => cut,
            }
        };
        let n = splice_to(fifo.reader(), &self.log, &mut self.len, want)?;
        if rotate_after && n == want {
            self.rotate()?;
        }
        Ok(n as u64)
    }

    /// Near the end of a file (`room` bytes left): how much of what waits
    /// to move now, and whether the file is full after it. Looks at what is
    /// coming through a `tee`, which copies without consuming.
    fn cut_point(&mut self, fifo: BorrowedFd<'_>, room: u64) -> io::Result<Option<(usize, bool)>> {
        let room = usize::try_from(room).unwrap_or(usize::MAX);
        if self.peek.is_none() {
            let (r, w) = rustix::pipe::pipe_with(
                rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK,
            )?;
            grow(&r);
            self.peek = Some((File::from(r), File::from(w)));
        }
        let Some((peek_r, peek_w)) = &self.peek else {
            return Ok(None);
        };
        let copied =
            match rustix::pipe::tee(fifo, peek_w, room.saturating_add(1), SpliceFlags::NONBLOCK) {
                Ok(0) => return Ok(None),
                Ok(n) => n,
                Err(rustix::io::Errno::AGAIN) => return Ok(None),
                Err(e) => return Err(e.into()),
            };
        self.buf.resize(copied, 0);
        let mut got = 0;
        while got < copied {
            match rustix::io::read(peek_r, &mut self.buf[got..copied]) {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
        if got <= room {
            // All that waits fits: move it.
            return Ok(Some((got, got == room)));
        }
        // More than fits: up to the last line end that does, or a full cut.
        let cut = self.buf[..room]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(room, |i| i + 1);
        Ok(Some((cut, true)))
    }

    /// One read with timestamps; 0 when the pipe is empty.
    fn pump_stamped(&mut self, fifo: &Fifo) -> io::Result<u64> {
        let mut input = std::mem::take(&mut self.input);
        input.resize(STAMP_READ, 0);
        let got = rustix::io::read(fifo.reader(), &mut input);
        let n = match got {
            Ok(n) => n,
            Err(rustix::io::Errno::AGAIN) => 0,
            Err(e) => return Err(e.into()),
        };
        if n == 0 {
            self.input = input;
            return Ok(0);
        }
        let stamp = format!("{} ", crate::fsutil::now_rfc3339());
        let mut out = std::mem::take(&mut self.buf);
        out.clear();
        for piece in input[..n].split_inclusive(|&b| b == b'\n') {
            if self.at_line_start {
                out.extend_from_slice(stamp.as_bytes());
            }
            out.extend_from_slice(piece);
            self.at_line_start = piece.ends_with(b"\n");
        }
        let r = self.write_lines(&out, Some(&stamp));
        self.buf = out;
        self.input = input;
        r?;
        Ok(n as u64)
    }

    /// Writes `out`, rotating at line ends so that no file passes the
    /// bound; a line longer than a whole file is cut, and with `stamp` its
    /// rest gets a stamp of its own.
    fn write_lines(&mut self, out: &[u8], stamp: Option<&str>) -> io::Result<()> {
        if self.shared {
            self.measure();
            return self.write_at_end(out);
        }
        let mut rest: std::borrow::Cow<'_, [u8]> = out.into();
        while !rest.is_empty() {
            if self.len >= self.max {
                self.rotate()?;
            }
            let room = usize::try_from(self.max - self.len).unwrap_or(usize::MAX);
            if rest.len() <= room {
                return self.write_at_end(&rest);
            }
            // A file holds at least 4 KiB, so a stamp always fits and the
            // rest shrinks at every turn.
            let cut = rest[..room]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(room, |i| i + 1);
            self.write_at_end(&rest[..cut])?;
            self.rotate()?;
            let mut next = Vec::with_capacity(rest.len() - cut + 32);
            if let Some(s) = stamp
                && rest[cut - 1] != b'\n'
            {
                next.extend_from_slice(s.as_bytes());
            }
            next.extend_from_slice(&rest[cut..]);
            rest = next.into();
        }
        Ok(())
    }

    fn write_at_end(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.log.write_all_at(bytes, self.len)?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    fn ends_with_newline(&self) -> bool {
        if self.len == 0 {
            return true;
        }
        let mut last = [0u8];
        self.log.read_exact_at(&mut last, self.len - 1).is_err() || last[0] == b'\n'
    }

    /// A lifecycle line, after what the pipe holds (so the order is kept)
    /// and on a line of its own.
    pub fn line(&mut self, fifo: Option<&Fifo>, text: &str) {
        if let Some(f) = fifo {
            self.drain(f);
        }
        self.measure();
        let mut line = String::new();
        if !(if self.stamps {
            self.at_line_start
        } else {
            self.ends_with_newline()
        }) {
            line.push('\n');
        }
        line.push_str(&crate::logs::lifecycle_line(text));
        self.at_line_start = true;
        if let Err(e) = self.write_lines(line.as_bytes(), None) {
            self.fail(&e);
        }
    }

    /// `.1`…`.keep-1` move up by one, the log becomes `.1`, and a new log
    /// begins. Should a rename fail (a full or read-only disk), the log is
    /// emptied instead: the bound holds whatever happens.
    fn rotate(&mut self) -> io::Result<()> {
        let renamed = self.keep > 0 && self.shift().is_ok();
        if renamed {
            match open_log(&self.path) {
                Ok(log) => self.log = log,
                Err(e) => {
                    // Go on in the renamed file, emptied.
                    self.log.set_len(0)?;
                    self.fail(&e);
                }
            }
        } else {
            self.log.set_len(0)?;
        }
        self.len = 0;
        if self.stamps {
            self.at_line_start = true;
        }
        Ok(())
    }

    fn shift(&self) -> io::Result<()> {
        crate::logs::shift(&self.path, self.keep)
    }
}

fn open_log(path: &Path) -> io::Result<File> {
    crate::fsutil::open_own(
        path,
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true),
    )
}

/// Moves up to `want` bytes from the pipe to the file at `*at`; 0 when the
/// pipe is empty.
fn splice_to(fifo: BorrowedFd<'_>, log: &File, at: &mut u64, want: usize) -> io::Result<usize> {
    if want == 0 {
        return Ok(0);
    }
    match rustix::pipe::splice(fifo, None, log, Some(at), want, SpliceFlags::NONBLOCK) {
        Ok(n) => Ok(n),
        Err(rustix::io::Errno::AGAIN) => Ok(0),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plain pipe stands in for the FIFO: the same kind of file.
    fn pipe_fifo() -> Fifo {
        let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
        rustix::fs::fcntl_setfl(&r, OFlags::NONBLOCK).unwrap();
        Fifo {
            reader: File::from(r),
            writer: File::from(w),
        }
    }

    fn write(fifo: &Fifo, bytes: &[u8]) {
        rustix::io::write(&fifo.writer, bytes).unwrap();
    }

    fn sizes(path: &Path, keep: u32) -> Vec<u64> {
        std::iter::once(path.to_path_buf())
            .chain((1..=keep + 1).map(|n| crate::logs::rotated_path(path, n)))
            .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
            .collect()
    }

    #[test]
    fn raw_output_rotates_at_line_ends_within_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        let fifo = pipe_fifo();
        let mut pump = Pump::open(path.clone(), 4096, 2, false).unwrap();
        let mut all = Vec::new();
        for i in 0..2000 {
            let line = format!("line {i:05} {}\n", "x".repeat(i % 50));
            all.extend_from_slice(line.as_bytes());
            write(&fifo, line.as_bytes());
            if i % 100 == 99 {
                while pump.drain(&fifo) {}
                let s = sizes(&path, 2);
                assert!(s.iter().all(|&n| n <= 4096), "{s:?}");
                assert_eq!(s[3], 0, "a third rotation kept: {s:?}");
            }
        }
        // Rotated files end with a whole line; together with the log they
        // are the end of what was written, in order.
        let mut kept = Vec::new();
        for n in [2, 1] {
            let body = std::fs::read(crate::logs::rotated_path(&path, n)).unwrap();
            assert_eq!(body.last(), Some(&b'\n'));
            kept.extend(body);
        }
        kept.extend(std::fs::read(&path).unwrap());
        assert!(all.ends_with(&kept));
        assert!(kept.starts_with(b"line "));
    }

    #[test]
    fn stamped_output_is_stamped_per_line_and_a_cut_line_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.log");
        let fifo = pipe_fifo();
        let mut pump = Pump::open(path.clone(), 4096, 2, true).unwrap();
        write(&fifo, b"one\ntw");
        while pump.drain(&fifo) {}
        write(&fifo, b"o\n");
        // A line longer than a whole file.
        write(&fifo, &[b'y'; 5000]);
        write(&fifo, b"\n");
        while pump.drain(&fifo) {}
        let mut text = String::new();
        for n in [2, 1] {
            text.push_str(&std::fs::read_to_string(crate::logs::rotated_path(&path, n)).unwrap());
        }
        text.push_str(&std::fs::read_to_string(&path).unwrap());
        assert!(sizes(&path, 2).iter().all(|&n| n <= 4096));
        let lines: Vec<&str> = text.lines().collect();
        for line in &lines {
            assert!(
                crate::logs::line_stamp(line.as_bytes()).is_some(),
                "unstamped: {line:?}"
            );
        }
        assert!(lines.iter().any(|l| l.ends_with(" two")), "{lines:?}");
        let ys: usize = text.bytes().filter(|&b| b == b'y').count();
        assert_eq!(ys, 5000, "nothing lost to the cut");
    }

    #[test]
    fn lifecycle_lines_start_a_line_and_follow_the_output() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.log");
        let fifo = pipe_fifo();
        let mut pump = Pump::open(path.clone(), 1 << 20, 1, false).unwrap();
        write(&fifo, b"no newline yet");
        pump.line(Some(&fifo), "exited");
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "no newline yet");
        assert!(lines[1].ends_with(" process-guardian] exited"), "{text}");
    }

    #[test]
    fn rotation_renames_over_a_planted_link_never_through_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.log");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious\n").unwrap();
        std::os::unix::fs::symlink(&victim, crate::logs::rotated_path(&path, 1)).unwrap();
        std::os::unix::fs::symlink(&victim, crate::logs::rotated_path(&path, 2)).unwrap();
        let fifo = pipe_fifo();
        let mut pump = Pump::open(path.clone(), 4096, 2, false).unwrap();
        for _ in 0..3 {
            write(&fifo, &[b'z'; 3000]);
            write(&fifo, b"\n");
            while pump.drain(&fifo) {}
        }
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
        let one = std::fs::symlink_metadata(crate::logs::rotated_path(&path, 1)).unwrap();
        assert!(one.file_type().is_file());
        // A link at the log's own name is refused, not followed.
        let q = dir.path().join("q.log");
        std::os::unix::fs::symlink(&victim, &q).unwrap();
        assert!(Pump::open(q, 4096, 1, false).is_err());
    }

    #[test]
    fn keep_zero_empties_the_log_instead() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.log");
        let fifo = pipe_fifo();
        let mut pump = Pump::open(path.clone(), 4096, 0, false).unwrap();
        for i in 0..100 {
            write(&fifo, format!("{i:0100}\n").as_bytes());
            while pump.drain(&fifo) {}
            assert!(std::fs::metadata(&path).unwrap().len() <= 4096);
        }
        assert!(!crate::logs::rotated_path(&path, 1).exists());
    }
}

//! Small file helpers shared by the registry, the state files and the alerts:
//! atomic replacement (temp file in the same directory, then exchanged or
//! renamed into place), opening
//! files that must be our own (never through a symlink, never one another
//! user owns), exclusive locks, checked durations and time stamps.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static TEMP_COUNTER: AtomicU32 = AtomicU32::new(0);

/// How hard `write_atomic` works to make the new content survive a power cut.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync the file and its directory: the registry.
    Synced,
    /// Rename only: runtime state, which is rewritten often and rebuilt after a boot.
    Renamed,
}

/// An in-memory file holding `bytes`, read from its start (close-on-exec:
/// a child gets it as its stdin, or by number after clearing the flag).
pub fn memfd_with(name: &str, bytes: &[u8]) -> io::Result<File> {
    use std::io::Seek;
    let mut file = File::from(
        rustix::fs::memfd_create(name, rustix::fs::MemfdFlags::CLOEXEC).map_err(io::Error::from)?,
    );
    file.write_all(bytes)?;
    file.rewind()?;
    Ok(file)
}

/// Replaces `path` with `bytes` so that a reader sees the old or the new
/// content, never a mix; a failure leaves the old file whole.
pub fn write_atomic(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    durability: Durability,
) -> io::Result<()> {
    write_atomic_with(path, bytes, mode, durability, |_| Ok(()))
}

/// `write_atomic` with a hook that runs after the temp file is complete and
/// before the rename; tests use it to inject a failure at that point.
pub fn write_atomic_with(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    durability: Durability,
    before_rename: impl FnOnce(&Path) -> io::Result<()>,
) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp: PathBuf = dir.join(format!(
        ".{file_name}.tmp.{}.{}",
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        // O_EXCL and O_NOFOLLOW: a name planted in a shared directory is never followed.
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        file.write_all(bytes)?;
        if durability == Durability::Synced {
            file.sync_all()?;
        }
        drop(file);
        before_rename(&tmp)?;
        replace(&tmp, path)?;
        if durability == Durability::Synced {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// `write_atomic` (rename only) for a writer that is the one user of
/// `spare`, a file kept beside `path`: the content is written over the
/// spare's, which is then exchanged with `path`, so the old content becomes
/// the next spare. A reader of `path` sees the old or the new file, as with
/// `write_atomic`, but no inode is created or freed: on ext4 here that was
/// two thirds of a write (about 160 µs against 70). Anything unexpected at
/// the spare (a link, another's file, a directory swapped in) is removed
/// and this write takes the temp-file way; the next one makes a new spare.
///
/// Only for a writer that no other can run beside (a supervisor holding
/// its liveness lock): two writers of one spare would mix their bytes.
pub fn write_through_spare(path: &Path, spare: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let written = (|| {
        let (file, len) = open_own_sized(spare, OpenOptions::new().write(true).create(true))?;
        file.write_all_at(bytes, 0)?;
        let want = u64::try_from(bytes.len()).map_err(io::Error::other)?;
        // Shortened, never emptied first: ext4 flushes a file truncated to
        // nothing at its close, as it does one renamed over another.
        if len > want {
            file.set_len(want)?;
        }
        Ok::<(), io::Error>(())
    })();
    if written.is_err() {
        let _ = fs::remove_file(spare);
        return write_atomic(path, bytes, 0o600, Durability::Renamed);
    }
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    match renameat_with(CWD, spare, CWD, path, RenameFlags::EXCHANGE) {
        Ok(()) => Ok(()),
        // Nothing at `path` yet, or a file system that cannot exchange.
        Err(_) => fs::rename(spare, path),
    }
}

/// Puts the complete file `tmp` in the place of `path`, atomically.
///
/// A rename over an existing file makes ext4 (with its default
/// `auto_da_alloc`) allocate and start writing the new file's blocks right
/// away, inside the rename: about 180 µs on the machine of
/// docs/BENCHMARKS.md, against 50 µs for exchanging the two names
/// (renameat2 RENAME_EXCHANGE) and unlinking the old file under the temp
/// name. A reader of `path` sees the old or the new file either way. Where
/// there is nothing to exchange with, or the file system cannot exchange,
/// a plain rename; and if what stood at `path` was not a file (a directory
/// cannot be unlinked), it goes back and the rename answers as it always did.
fn replace(tmp: &Path, path: &Path) -> io::Result<()> {
    use rustix::fs::{AtFlags, CWD, RenameFlags, renameat_with, unlinkat};
    if renameat_with(CWD, tmp, CWD, path, RenameFlags::EXCHANGE).is_err() {
        return fs::rename(tmp, path);
    }
    match unlinkat(CWD, tmp, AtFlags::empty()) {
        Ok(()) => Ok(()),
        Err(e) if e == rustix::io::Errno::NOENT => Ok(()),
        Err(_) => {
            renameat_with(CWD, tmp, CWD, path, RenameFlags::EXCHANGE)?;
            fs::rename(tmp, path)
        }
    }
}

/// Why a file we were about to use is not ours to use.
fn not_ours(path: &Path, why: String) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!(
            "{} {why}; process-guardian uses only regular files of its own here",
            path.display()
        ),
    )
}

/// The effective user id of this process.
pub fn euid() -> u32 {
    static EUID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *EUID.get_or_init(|| rustix::process::geteuid().as_raw())
}

/// Checks an opened file: a regular file, owned by us, writable by nobody
/// else; its length, from the same look. (A plain fstat: std's metadata
/// asks statx for every field, which costs several times more, on a path
/// `status` takes once per process.)
pub fn check_own_file(file: &File, path: &Path) -> io::Result<u64> {
    let st = rustix::fs::fstat(file)?;
    let mode = st.st_mode;
    if mode & libc::S_IFMT != libc::S_IFREG {
        return Err(not_ours(path, "is not a regular file".into()));
    }
    if st.st_uid != euid() {
        return Err(not_ours(
            path,
            format!("is owned by uid {}, not by you (uid {})", st.st_uid, euid()),
        ));
    }
    if mode & 0o022 != 0 {
        return Err(not_ours(
            path,
            format!("is writable by others (mode {:o})", mode & 0o7777),
        ));
    }
    Ok(u64::try_from(st.st_size).unwrap_or(0))
}

/// Opens a file of ours with `opts`, never following a symlink at its name
/// (a planted link fails with ELOOP), creating it 0600, and refuses one that
/// is not a regular file of ours.
pub fn open_own(path: &Path, opts: &mut OpenOptions) -> io::Result<File> {
    open_own_sized(path, opts).map(|(file, _)| file)
}

/// `open_own`, and the file's length from the same check.
fn open_own_sized(path: &Path, opts: &mut OpenOptions) -> io::Result<(File, u64)> {
    open_own_with(path, opts, 0)
}

/// Opens a file of ours for reading without updating its access time: for
/// a cache read many times a second, where each read would otherwise write
/// the inode's atime (on ext4 here, that made a `pread` cost several times
/// its copy). Never for files that age-based cleaners (systemd-tmpfiles in
/// /tmp) judge by their atime and that are rarely written, like the registry.
pub fn open_own_read_quietly(path: &Path) -> io::Result<File> {
    match open_own_with(path, OpenOptions::new().read(true), libc::O_NOATIME) {
        // Only the owner may ask it: let the ownership check say why not.
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => open_own_read(path),
        other => other.map(|(file, _)| file),
    }
}

fn open_own_with(path: &Path, opts: &mut OpenOptions, flags: i32) -> io::Result<(File, u64)> {
    let file = opts
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | flags)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                not_ours(path, "is a symbolic link".into())
            } else {
                e
            }
        })?;
    let size = check_own_file(&file, path)?;
    Ok((file, size))
}

/// Opens a file of ours for reading (see `open_own`).
pub fn open_own_read(path: &Path) -> io::Result<File> {
    open_own(path, OpenOptions::new().read(true))
}

/// The whole content of a file of ours (as `open_own_read`), read into
/// one buffer of the length its ownership check saw.
pub fn read_own(path: &Path) -> io::Result<Vec<u8>> {
    let (file, size) = open_own_sized(path, OpenOptions::new().read(true))?;
    read_all_expecting(file, size)
}

/// Opens (creating) a file of ours for appending (see `open_own`).
pub fn open_own_append(path: &Path) -> io::Result<File> {
    open_own(path, OpenOptions::new().append(true).create(true))
}

/// Opens (creating) and exclusively locks a lock file of ours; the lock
/// lasts as long as the returned file.
pub fn lock_exclusive(path: &Path) -> crate::error::Result<File> {
    let file = open_own(
        path,
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false),
    )
    .map_err(|e| crate::error::Error::io("open lock file", path, e))?;
    file.lock()
        .map_err(|e| crate::error::Error::io("lock", path, e))?;
    Ok(file)
}

/// Seconds as a `Duration`, or `None` for a negative, non-finite or
/// too-large number: every float that becomes a duration passes here.
pub fn secs(s: f64) -> Option<Duration> {
    if s.is_finite() && s >= 0.0 {
        Duration::try_from_secs_f64(s).ok()
    } else {
        None
    }
}

/// `now + d`, saturating far in the future instead of overflowing.
pub fn after(now: Instant, d: Duration) -> Instant {
    now.checked_add(d)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400))
}

/// The rest of an open file in as few system calls as possible (no size
/// query; a short read of a regular file means its end): `status` reads one
/// state file per process.
pub fn read_all(f: File) -> io::Result<Vec<u8>> {
    read_all_expecting(f, 8192)
}

/// `read_all` of a file expected to hold about `size` bytes (its length
/// when it was opened): one buffer of the right size, where doubling from
/// 8 KiB touched twice the memory of a large registry and copied it five times.
pub fn read_all_expecting(f: File, size: u64) -> io::Result<Vec<u8>> {
    // Into the vector's spare capacity: never zeroed first (zeroing 8 KiB
    // for each of a hundred state files was a sixth of `status`). One byte
    // more than expected, so that a file of exactly that size ends in one read.
    let first = usize::try_from(size)
        .unwrap_or(usize::MAX)
        .clamp(8191, 1 << 26)
        + 1;
    let mut buf = Vec::with_capacity(first);
    loop {
        if buf.len() == buf.capacity() {
            buf.reserve(buf.len());
        }
        let room = buf.capacity() - buf.len();
        match rustix::io::read(&f, rustix::buffer::spare_capacity(&mut buf)) {
            Ok(n) if n == 0 || n < room => return Ok(buf),
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Now, as an RFC 3339 UTC time stamp with milliseconds.
/// This process's environment as text pairs (bytes that are not UTF-8
/// replaced), for a child's environment.
pub fn env_pairs() -> impl Iterator<Item = (String, String)> {
    std::env::vars_os().map(|(k, v)| {
        (
            k.to_string_lossy().into_owned(),
            v.to_string_lossy().into_owned(),
        )
    })
}

pub fn now_rfc3339() -> String {
    rfc3339(chrono::Utc::now())
}

pub fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Seconds from an RFC 3339 time stamp to now (negative if it lies ahead).
pub fn seconds_since(stamp: &str) -> Option<f64> {
    let t = chrono::DateTime::parse_from_rfc3339(stamp).ok()?;
    let d = chrono::Utc::now().signed_duration_since(t.with_timezone(&chrono::Utc));
    Some(d.num_milliseconds() as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_all_reads_a_file_whole_at_any_size() {
        let dir = tempfile::tempdir().unwrap();
        for len in [0usize, 1, 8191, 8192, 8193, 20_000, 70_000] {
            let p = dir.path().join(format!("f{len}"));
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            std::fs::write(&p, &data).unwrap();
            let got = read_all(File::open(&p).unwrap()).unwrap();
            assert_eq!(got.len(), len);
            assert!(got == data, "content differs at length {len}");
            // Expecting the size, less, more, or far too much (a file that
            // changed since its length was taken): the whole file all the same.
            let lens = [
                len as u64,
                (len as u64).saturating_sub(1),
                len as u64 + 1,
                0,
                u64::MAX,
            ];
            for expected in lens {
                let got = read_all_expecting(File::open(&p).unwrap(), expected).unwrap();
                assert!(got == data, "length {len} expecting {expected}");
            }
        }
    }

    #[test]
    fn interrupted_write_leaves_old_file_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reg.json");
        fs::write(&path, b"old content").unwrap();
        let err = write_atomic_with(&path, b"new content", 0o600, Durability::Synced, |tmp| {
            assert_eq!(fs::read(tmp).unwrap(), b"new content");
            Err(io::Error::other("injected failure before rename"))
        })
        .unwrap_err();
        assert!(err.to_string().contains("injected"));
        assert_eq!(fs::read(&path).unwrap(), b"old content");
        // No temp file is left behind.
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn atomic_write_replaces_and_sets_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        write_atomic(&path, b"one", 0o600, Durability::Renamed).unwrap();
        write_atomic(&path, b"two", 0o600, Durability::Synced).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    /// The names in `dir`, sorted.
    fn listing(dir: &Path) -> Vec<String> {
        let mut v: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn replacing_leaves_one_file_and_moves_nothing_that_is_not_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let listing = || listing(dir.path());
        let path = dir.path().join("f");
        for body in [&b"one"[..], b"two", b"three"] {
            write_atomic(&path, body, 0o600, Durability::Renamed).unwrap();
            assert_eq!(fs::read(&path).unwrap(), body);
        }
        assert_eq!(listing(), ["f"]);
        // A directory where the file goes: refused as a rename refuses it,
        // and the directory stays where it was, whole.
        let d = dir.path().join("d");
        fs::create_dir(&d).unwrap();
        fs::write(d.join("inside"), b"kept").unwrap();
        assert!(write_atomic(&d, b"x", 0o600, Durability::Renamed).is_err());
        assert_eq!(fs::read(d.join("inside")).unwrap(), b"kept");
        assert_eq!(listing(), ["d", "f"]);
        // A symlink there is replaced, never written through.
        let victim = dir.path().join("victim");
        fs::write(&victim, b"untouched").unwrap();
        let link = dir.path().join("l");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        write_atomic(&link, b"mine", 0o600, Durability::Renamed).unwrap();
        assert!(
            !fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs::read(&link).unwrap(), b"mine");
        assert_eq!(fs::read(&victim).unwrap(), b"untouched");
        assert_eq!(listing(), ["d", "f", "l", "victim"]);
    }

    #[test]
    fn writing_through_a_spare_keeps_two_files_and_trusts_nothing_planted() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let (path, spare) = (dir.path().join("s.json"), dir.path().join("s.spare"));
        let listing = || listing(dir.path());
        // Longer and shorter by turns: each read is exactly the last write.
        for body in [&b"first"[..], b"a longer second", b"3", b"", b"fifth"] {
            write_through_spare(&path, &spare, body).unwrap();
            assert_eq!(fs::read(&path).unwrap(), body);
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        assert_eq!(listing(), ["s.json", "s.spare"]);
        // A symlink planted at the spare is never written through: removed,
        // and the write still lands.
        let victim = dir.path().join("victim");
        fs::write(&victim, b"untouched").unwrap();
        fs::remove_file(&spare).unwrap();
        std::os::unix::fs::symlink(&victim, &spare).unwrap();
        write_through_spare(&path, &spare, b"sixth").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"sixth");
        assert_eq!(fs::read(&victim).unwrap(), b"untouched");
        assert!(!fs::symlink_metadata(&spare).is_ok_and(|m| m.file_type().is_symlink()));
        // A spare others may write, or another user's, is not written
        // either: it goes, and the content takes the temp-file way.
        use std::os::unix::fs::MetadataExt;
        let mut plants: Vec<Box<dyn Fn()>> = vec![Box::new(|| {
            fs::set_permissions(&spare, fs::Permissions::from_mode(0o666)).unwrap()
        })];
        if euid() == 0 {
            plants.push(Box::new(|| {
                std::os::unix::fs::chown(&spare, Some(65534), Some(65534)).unwrap()
            }));
        }
        for plant in plants {
            write_through_spare(&path, &spare, b"to be the spare").unwrap();
            plant();
            write_through_spare(&path, &spare, b"eighth").unwrap();
            assert_eq!(fs::read(&path).unwrap(), b"eighth");
            // Not the planted file put in place: ours, 0600.
            let m = fs::metadata(&path).unwrap();
            assert_eq!((m.uid(), m.mode() & 0o777), (euid(), 0o600));
            assert!(!spare.exists(), "the planted spare was removed");
            assert_eq!(listing(), ["s.json", "victim"]);
        }
    }

    /// A reader of a file being replaced over and over sees one whole
    /// version every time: never a mix, never no file; by either way of
    /// writing it.
    #[test]
    fn a_reader_always_sees_a_whole_version() {
        whole_versions(|path, body| write_atomic(path, body, 0o600, Durability::Renamed));
        whole_versions(|path, body| write_through_spare(path, &path.with_extension("spare"), body));
    }

    fn whole_versions(write: impl Fn(&Path, &[u8]) -> io::Result<()>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let a = vec![b'a'; 700];
        let b = vec![b'b'; 300];
        write(&path, &a).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let (path, stop, a, b) = (path.clone(), stop.clone(), a.clone(), b.clone());
            std::thread::spawn(move || {
                let mut reads = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    let got = fs::read(&path).expect("the file is always there");
                    assert!(got == a || got == b, "a mix of {} bytes", got.len());
                    reads += 1;
                }
                reads
            })
        };
        for i in 0..2000 {
            let body = if i % 2 == 0 { &b } else { &a };
            write(&path, body).unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        assert!(reader.join().unwrap() > 0);
    }

    #[test]
    fn seconds_since_parses_our_stamps() {
        let s = now_rfc3339();
        let d = seconds_since(&s).unwrap();
        assert!((0.0..5.0).contains(&d), "{d}");
        assert!(seconds_since("not a time").is_none());
    }
}

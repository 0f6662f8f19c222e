//! Log files: lifecycle lines, rotation, tail and follow.
//!
//! The command writes straight into `logs/<name>.log` (O_APPEND), so its
//! output keeps flowing even while no supervisor lives. Rotation therefore
//! copies and truncates: the command's descriptor stays valid and, thanks to
//! O_APPEND, its next write lands at the start of the emptied file. Every
//! file here is opened without following a symlink (a link planted at a
//! log's name fails instead of redirecting our writes), and rotation works
//! on the supervisor's own descriptor, never on whatever the path names now.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Opens a log for appending, creating it (0600); never through a symlink,
/// never a file another user owns.
pub fn open_append(path: &Path) -> io::Result<File> {
    crate::fsutil::open_own_append(path)
}

/// The supervisor's log: appended to, and read back when it is rotated.
pub fn open_rotatable(path: &Path) -> io::Result<File> {
    crate::fsutil::open_own(
        path,
        OpenOptions::new().read(true).append(true).create(true),
    )
}

/// Appends one timestamped lifecycle line, in one write.
pub fn lifecycle(log: &mut File, text: &str) {
    let line = format!(
        "[{} process-guardian] {text}\n",
        crate::fsutil::now_rfc3339()
    );
    let _ = log.write_all(line.as_bytes());
}

pub fn rotated_path(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// Moves `.1`…`.keep-1` up by one and copies the open log `log` (whose
/// path is `path`) into a new `.1`, then truncates it. Bytes written while
/// copying are copied too before the truncate; only a write in the last
/// instant between the final size check and the truncate could be lost.
pub fn rotate(log: &File, path: &Path, keep: u32) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    if keep == 0 {
        return log.set_len(0);
    }
    // remove and rename act on a link itself, never on what it points to.
    let _ = fs::remove_file(rotated_path(path, keep));
    for n in (1..keep).rev() {
        let from = rotated_path(path, n);
        if fs::symlink_metadata(&from).is_ok() {
            fs::rename(&from, rotated_path(path, n + 1))?;
        }
    }
    let first = rotated_path(path, 1);
    let _ = fs::remove_file(&first);
    let mut dst = crate::fsutil::open_own(&first, OpenOptions::new().write(true).create_new(true))?;
    let mut copied = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    for _ in 0..8 {
        let len = log.metadata()?.len();
        while copied < len {
            let n = log.read_at(&mut buf, copied)?;
            if n == 0 {
                break;
            }
            dst.write_all(&buf[..n])?;
            copied += n as u64;
        }
        if log.metadata()?.len() <= copied {
            break;
        }
    }
    log.set_len(0)
}

/// Lines of an alert's log tail, and their total size: enough to see why it
/// died, bounded however long the lines are.
pub const TAIL_LINES: usize = 20;
pub const TAIL_MAX_BYTES: usize = 16 * 1024;
/// A line longer than this is cut, with a marker.
const TAIL_LINE_MAX: usize = 780;
/// How much of the end of the log is read for a tail.
const TAIL_WINDOW: u64 = 64 * 1024;

/// The last lines of a log for an alert: at most `TAIL_LINES` lines and
/// `TAIL_MAX_BYTES` bytes, read from at most the last 64 KiB, with long
/// lines cut, invalid UTF-8 replaced and control characters made visible
/// (`^[`), so that no log can make an alert large or paint a terminal.
pub fn alert_tail(path: &Path) -> Vec<String> {
    use std::os::unix::fs::FileExt;
    let Ok(f) = crate::fsutil::open_own_read(path) else {
        return Vec::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(TAIL_WINDOW);
    let mut buf = vec![0u8; (len - start) as usize];
    let mut got = 0;
    while got < buf.len() {
        match f.read_at(&mut buf[got..], start + got as u64) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    buf.truncate(got);
    let mut raw: Vec<&[u8]> = buf.split(|&b| b == b'\n').collect();
    if raw.last().is_some_and(|l| l.is_empty()) {
        raw.pop();
    }
    // The first line of a window that does not start the file is partial:
    // shown cut rather than dropped when it is all there is.
    let first_partial = start > 0;
    let skip = raw.len().saturating_sub(TAIL_LINES);
    let mut lines: Vec<String> = raw[skip..]
        .iter()
        .enumerate()
        .map(|(i, l)| visible_line(l, first_partial && i + skip == 0))
        .collect();
    while lines.iter().map(|l| l.len() + 1).sum::<usize>() > TAIL_MAX_BYTES && !lines.is_empty() {
        lines.remove(0);
    }
    lines
}

/// One log line made safe to show: lossy UTF-8, control characters as `^X`,
/// cut past `TAIL_LINE_MAX` bytes with a marker.
pub fn visible_line(line: &[u8], partial: bool) -> String {
    let text = String::from_utf8_lossy(line);
    let mut out = String::with_capacity(text.len().min(TAIL_LINE_MAX + 32));
    let mut cut = false;
    for c in text.chars() {
        if out.len() >= TAIL_LINE_MAX {
            cut = true;
            break;
        }
        match c {
            '\t' => out.push(c),
            c if (c as u32) < 0x20 => {
                out.push('^');
                out.push(char::from(b'@' + c as u8));
            }
            '\u{7f}' => out.push_str("^?"),
            c if ('\u{80}'..='\u{9f}').contains(&c) => out.push('?'),
            c => out.push(c),
        }
    }
    if cut || partial {
        out.push_str(" [… line cut]");
    }
    out
}

/// The most `logs -n` reads back to find its lines.
const MAX_TAIL_READ: u64 = 16 * 1024 * 1024;

/// The last `n` lines of a file (fewer if it has fewer).
#[cfg(test)]
fn tail(path: &Path, n: usize) -> io::Result<Vec<String>> {
    tail_with_end(path, n).map(|(lines, _)| lines)
}

/// `tail`, and the offset it read up to (where following goes on).
fn tail_with_end(path: &Path, n: usize) -> io::Result<(Vec<String>, u64)> {
    let mut f = crate::fsutil::open_own_read(path)?;
    let len = f.metadata()?.len();
    let mut chunk = 8192u64;
    loop {
        let start = len.saturating_sub(chunk);
        f.seek(SeekFrom::Start(start))?;
        let mut buf = Vec::with_capacity((len - start) as usize);
        f.read_to_end(&mut buf)?;
        let text = String::from_utf8_lossy(&buf);
        let mut lines: Vec<&str> = text.lines().collect();
        // A partial first line is dropped unless we read from the start;
        // past 16 MiB of one line, what was read is what is shown.
        if start == 0 || lines.len() > n || chunk >= MAX_TAIL_READ {
            if start > 0 && lines.len() > 1 {
                lines.remove(0);
            }
            let skip = lines.len().saturating_sub(n);
            let end = start + buf.len() as u64;
            return Ok((lines[skip..].iter().map(|l| l.to_string()).collect(), end));
        }
        chunk = chunk.saturating_mul(4);
    }
}

/// Prints the last `n` lines, then (with `follow`) everything appended,
/// across rotations: when the file shrinks, the rest of what we had not
/// read is taken from `.1` and reading goes on from the start.
pub fn print(path: &Path, n: usize, follow: bool, out: &mut impl Write) -> io::Result<()> {
    let (lines, mut pos) = tail_with_end(path, n)?;
    for line in lines {
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    if !follow {
        return Ok(());
    }
    let mut f = crate::fsutil::open_own_read(path)?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let len = match fs::metadata(path) {
            Ok(m) => m.len(),
            Err(_) => 0,
        };
        if len < pos {
            // Rotated: finish from the copy, then restart at the top.
            if let Ok(mut old) = crate::fsutil::open_own_read(&rotated_path(path, 1)) {
                old.seek(SeekFrom::Start(pos))?;
                io::copy(&mut old, out)?;
            }
            f = crate::fsutil::open_own_read(path)?;
            pos = 0;
        }
        f.seek(SeekFrom::Start(pos))?;
        let got = f.read(&mut buf)?;
        if got > 0 {
            out.write_all(&buf[..got])?;
            out.flush()?;
            pos += got as u64;
            continue;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_returns_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("l.log");
        let text: String = (0..5000).map(|i| format!("line {i}\n")).collect();
        fs::write(&p, text).unwrap();
        let t = tail(&p, 3).unwrap();
        assert_eq!(t, vec!["line 4997", "line 4998", "line 4999"]);
        let all = tail(&p, 10_000).unwrap();
        assert_eq!(all.len(), 5000);
        assert_eq!(all[0], "line 0");
    }

    #[test]
    fn alert_tail_is_bounded_and_safe() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.log");
        let mut text = String::new();
        for i in 0..30 {
            text.push_str(&format!("line {i} \x1b[31mred\x1b[0m\n"));
        }
        text.push_str(&"x".repeat(200_000));
        text.push('\n');
        fs::write(&p, text).unwrap();
        let t = alert_tail(&p);
        assert!(t.len() <= TAIL_LINES);
        assert!(t.iter().map(|l| l.len() + 1).sum::<usize>() <= TAIL_MAX_BYTES);
        assert!(t.last().unwrap().ends_with("[… line cut]"));
        assert!(t.iter().all(|l| !l.contains('\x1b')), "{t:?}");
        // Only the 200 KB line fits the 64 KiB window: it is shown cut.
        assert_eq!(t.len(), 1, "{t:?}");
        fs::write(&p, b"a\nb\x1bc\n\xff\n").unwrap();
        assert_eq!(alert_tail(&p), vec!["a", "b^[c", "\u{fffd}"]);
    }

    #[test]
    fn rotation_never_follows_a_planted_link() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.log");
        let victim = dir.path().join("victim");
        fs::write(&victim, "precious\n").unwrap();
        std::os::unix::fs::symlink(&victim, rotated_path(&p, 1)).unwrap();
        let f = open_rotatable(&p).unwrap();
        (&f).write_all(b"hello\n").unwrap();
        rotate(&f, &p, 1).unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
        assert_eq!(fs::read_to_string(rotated_path(&p, 1)).unwrap(), "hello\n");
        // A link at the log's own name is refused, not followed.
        let q = dir.path().join("q.log");
        std::os::unix::fs::symlink(&victim, &q).unwrap();
        assert!(open_append(&q).is_err());
        assert!(tail(&q, 5).is_err());
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
    }

    #[test]
    fn rotation_keeps_n_files_and_all_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.log");
        let mut f = open_rotatable(&p).unwrap();
        for round in 0..5 {
            writeln!(f, "round {round}").unwrap();
            rotate(&f, &p, 3).unwrap();
        }
        // Appends after a truncate land at the start.
        writeln!(f, "after").unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "after\n");
        assert_eq!(
            fs::read_to_string(rotated_path(&p, 1)).unwrap(),
            "round 4\n"
        );
        assert_eq!(
            fs::read_to_string(rotated_path(&p, 3)).unwrap(),
            "round 2\n"
        );
        assert!(!rotated_path(&p, 4).exists());
    }
}

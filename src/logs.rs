//! Log files: lifecycle lines, tails, follow, `--since`.
//!
//! The supervisor alone writes a process's log (see `output.rs`), rotating
//! it by rename; everything here reads. Every file is opened without
//! following a symlink (a link planted at a log's name fails instead of
//! redirecting anything) and must be a regular file of ours.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Opens a log for appending, creating it (0600); never through a symlink,
/// never a file another user owns.
pub fn open_append(path: &Path) -> io::Result<File> {
    crate::fsutil::open_own_append(path)
}

/// A lifecycle line: always stamped, so `logs --since` finds its place
/// in any log, with or without `timestamps`.
pub fn lifecycle_line(text: &str) -> String {
    format!(
        "[{} process-guardian] {text}\n",
        crate::fsutil::now_rfc3339()
    )
}

/// `alerts.jsonl` and `logs/healthcheck.log` rotate past 1 MiB, 3 kept.
pub const BOOKKEEPING_MAX_BYTES: u64 = 1 << 20;
pub const BOOKKEEPING_KEEP: u32 = 3;

/// Appends `bytes` to a file written by many processes (every supervisor,
/// the command line), rotating it first if it would pass `max`. The
/// append holds an exclusive lock on the file; whoever finds, once it has
/// the lock, that the name now points to a new file (someone rotated it)
/// opens that one instead.
pub fn append_bounded(path: &Path, bytes: &[u8], max: u64, keep: u32) -> io::Result<()> {
    for _ in 0..8 {
        let mut f = open_append(path)?;
        f.lock()?;
        let here = f.metadata()?;
        match fs::symlink_metadata(path) {
            Ok(now) if same_file(&here, &now) => {}
            _ => continue,
        }
        if here.len() > 0 && here.len() + bytes.len() as u64 > max {
            shift(path, keep)?;
            continue;
        }
        return f.write_all(bytes);
    }
    Err(io::Error::other(format!(
        "{} kept changing under us",
        path.display()
    )))
}

/// Rotates a file written by many processes if it has passed `max` (for a
/// file others append to without us: the healthcheck's log under cron).
pub fn rotate_if_over(path: &Path, max: u64, keep: u32) -> io::Result<()> {
    let f = match crate::fsutil::open_own_read(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    f.lock()?;
    let here = f.metadata()?;
    let still = fs::symlink_metadata(path).is_ok_and(|now| same_file(&here, &now));
    if still && here.len() > max {
        shift(path, keep)?;
    }
    Ok(())
}

/// `.1`…`.keep-1` move up by one and `path` becomes `.1` (with `keep` 0,
/// it is removed). Renames act on names, never through a link.
pub fn shift(path: &Path, keep: u32) -> io::Result<()> {
    if keep == 0 {
        return fs::remove_file(path);
    }
    let _ = fs::remove_file(rotated_path(path, keep));
    for n in (1..keep).rev() {
        let from = rotated_path(path, n);
        if fs::symlink_metadata(&from).is_ok() {
            fs::rename(&from, rotated_path(path, n + 1))?;
        }
    }
    fs::rename(path, rotated_path(path, 1))
}

pub fn rotated_path(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
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
        push_visible(&mut out, c);
    }
    if cut || partial {
        out.push_str(" [… line cut]");
    }
    out
}

/// The most `logs -n` reads back to find its lines.
const MAX_TAIL_READ: u64 = 16 * 1024 * 1024;

/// The last `n` lines of a file (fewer if it has fewer), lossy UTF-8.
pub fn tail(path: &Path, n: usize) -> io::Result<Vec<String>> {
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

/// Where `logs` starts: the last lines, or everything since a time.
pub enum From {
    Last(usize),
    /// RFC 3339 in UTC to the millisecond, as the stamps are written, and
    /// at most this many of the last lines matched.
    Since(String, Option<usize>),
}

/// Prints the lines chosen by `from`, then (with `follow`) everything
/// appended, across rotations. Invalid UTF-8 is replaced; on a terminal,
/// control characters are shown as `^X` rather than obeyed.
pub fn print(
    path: &Path,
    from: &From,
    follow: bool,
    json: bool,
    out: &mut impl Write,
) -> io::Result<()> {
    let visible = !json && std::io::IsTerminal::is_terminal(&std::io::stdout());
    // With `json`, one object a line: `{"at", "line"}`, where `at` is the
    // line's stamp, or that of the last stamped line before it (null before any).
    let mut at: Option<String> = None;
    let mut show = |out: &mut dyn Write, line: &[u8]| -> io::Result<()> {
        if json {
            if let Some(t) = line_stamp(line) {
                at = Some(t.to_string());
            }
            let doc = serde_json::json!({ "at": at, "line": String::from_utf8_lossy(line) });
            writeln!(out, "{doc}")
        } else if visible {
            writeln!(out, "{}", visible_line_full(line))
        } else {
            out.write_all(String::from_utf8_lossy(line).as_bytes())?;
            out.write_all(b"\n")
        }
    };
    let mut pos = match from {
        From::Last(n) => {
            let (lines, end) = tail_with_end(path, *n)?;
            for line in lines {
                show(out, line.as_bytes())?;
            }
            end
        }
        From::Since(since, limit) => {
            let (lines, end) = since_lines(path, since, *limit)?;
            for line in lines {
                show(out, &line)?;
            }
            end
        }
    };
    out.flush()?;
    if !follow {
        return Ok(());
    }
    let mut f = crate::fsutil::open_own_read(path)?;
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        f.seek(SeekFrom::Start(pos))?;
        let got = f.read(&mut buf)?;
        if got > 0 {
            pos += got as u64;
            pending.extend_from_slice(&buf[..got]);
            if let Some(end) = pending.iter().rposition(|&b| b == b'\n') {
                for line in pending[..end].split(|&b| b == b'\n') {
                    show(out, line)?;
                }
                pending.drain(..=end);
            }
            out.flush()?;
            continue;
        }
        // At the end of what we hold: a rotation renamed it away (read it
        // to its end first, done above), or emptied it (`log_keep` 0).
        let here = f.metadata()?;
        match fs::symlink_metadata(path) {
            Ok(now) if !same_file(&here, &now) => {
                f = crate::fsutil::open_own_read(path)?;
                pos = 0;
                continue;
            }
            _ if here.len() < pos => pos = 0,
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

/// A line made safe for a terminal, whole: `visible_line` without the cut.
fn visible_line_full(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        push_visible(&mut out, c);
    }
    out
}

/// One character as a terminal may safely be shown it: control characters
/// as `^X`, the C1 range as `?`.
fn push_visible(out: &mut String, c: char) {
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

/// The time a line carries: an output stamp at its start
/// (`2026-11-28T05:28:12.827Z `) or a lifecycle line's
/// (`[2026-11-28T05:28:12.827Z process-guardian] `).
pub fn line_stamp(line: &[u8]) -> Option<&str> {
    const LEN: usize = "2026-11-28T05:28:12.827Z".len();
    let body = line.strip_prefix(b"[").unwrap_or(line);
    let stamp = std::str::from_utf8(body.get(..LEN)?).ok()?;
    let b = stamp.as_bytes();
    let shaped = b[4] == b'-' && b[10] == b'T' && b[19] == b'.' && b[23] == b'Z';
    (shaped && body.get(LEN) == Some(&b' ')).then_some(stamp)
}

/// The lines written at or after `since`, from the oldest rotation to the
/// log itself: from the first stamped line at or after it, on. Output
/// without timestamps counts from the lifecycle line before it. Files last
/// written before `since` are not read.
fn since_lines(path: &Path, since: &str, limit: Option<usize>) -> io::Result<(Vec<Vec<u8>>, u64)> {
    use std::collections::VecDeque;
    let since_time = chrono::DateTime::parse_from_rfc3339(since)
        .map(|t| std::time::SystemTime::from(t.with_timezone(&chrono::Utc)))
        .ok();
    let mut files: Vec<PathBuf> = (1..=crate::registry::MAX_LOG_KEEP)
        .map(|n| rotated_path(path, n))
        .take_while(|p| fs::symlink_metadata(p).is_ok())
        .collect();
    files.reverse();
    files.push(path.to_path_buf());
    let mut on = false;
    let mut lines: VecDeque<Vec<u8>> = VecDeque::new();
    let mut end = 0;
    for (i, file) in files.iter().enumerate() {
        let last = i + 1 == files.len();
        let Ok(f) = crate::fsutil::open_own_read(file) else {
            continue;
        };
        let meta = f.metadata()?;
        if !last && since_time.is_some_and(|t| meta.modified().is_ok_and(|m| m < t)) {
            continue;
        }
        let mut reader = io::BufReader::new(f);
        let mut line = Vec::new();
        end = 0;
        loop {
            line.clear();
            let n = io::BufRead::read_until(&mut reader, b'\n', &mut line)?;
            if n == 0 {
                break;
            }
            end += n as u64;
            if line.ends_with(b"\n") {
                line.pop();
            }
            if !on && line_stamp(&line).is_some_and(|t| t >= since) {
                on = true;
            }
            if on {
                lines.push_back(line.clone());
                if limit.is_some_and(|l| lines.len() > l) {
                    lines.pop_front();
                }
            }
        }
    }
    Ok((lines.into(), end))
}

/// `--since`: a duration back from now (`90s`, `5m`, `2h`, `1d`, or plain
/// seconds) or an RFC 3339 time; as the stamps are written (UTC, ms).
pub fn parse_since(text: &str) -> Option<String> {
    let text = text.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(crate::fsutil::rfc3339(t.with_timezone(&chrono::Utc)));
    }
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let scale = match unit {
        "s" | "sec" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        _ => return None,
    };
    let secs: f64 = number.trim().parse().ok()?;
    let back = crate::fsutil::secs(secs * scale).filter(|d| d.as_secs() < 100 * 365 * 86_400)?;
    let back = chrono::Duration::from_std(back).ok()?;
    Some(crate::fsutil::rfc3339(chrono::Utc::now() - back))
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
    fn stamps_and_since_parse() {
        assert_eq!(
            line_stamp(b"2026-11-28T05:28:12.827Z hello"),
            Some("2026-11-28T05:28:12.827Z")
        );
        assert_eq!(
            line_stamp(b"[2026-11-28T05:28:12.827Z process-guardian] started"),
            Some("2026-11-28T05:28:12.827Z")
        );
        assert_eq!(line_stamp(b"hello"), None);
        assert_eq!(line_stamp(b"2026-11-28T05:28:12.827Zx"), None);
        assert_eq!(
            line_stamp(
                "\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}"
                    .as_bytes()
            ),
            None
        );
        assert_eq!(
            parse_since("2026-11-28T06:28:12+01:00").as_deref(),
            Some("2026-11-28T05:28:12.000Z")
        );
        for ok in ["5m", "90s", "2h", "1d", "30", "0.5m"] {
            assert!(parse_since(ok).is_some(), "{ok}");
        }
        for bad in ["soon", "-5m", "5y", "", "1e300d", "NaNs"] {
            assert!(parse_since(bad).is_none(), "{bad}");
        }
    }
}

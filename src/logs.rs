//! Log files: lifecycle lines, rotation, tail and follow.
//!
//! The command writes straight into `logs/<name>.log` (O_APPEND), so its
//! output keeps flowing even while no supervisor lives. Rotation therefore
//! copies and truncates: the command's descriptor stays valid and, thanks to
//! O_APPEND, its next write lands at the start of the emptied file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Opens a log for appending, creating it (0600); never through a symlink,
/// never a file another user owns.
pub fn open_append(path: &Path) -> io::Result<File> {
    crate::fsutil::open_own_append(path)
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

/// Moves `.1`…`.keep-1` up by one and copies the log into `.1`, then
/// truncates it. Bytes written while copying are copied too before the
/// truncate; only a write in the last instant between the final size check
/// and the truncate could be lost.
pub fn rotate(path: &Path, keep: u32) -> io::Result<()> {
    if keep == 0 {
        return OpenOptions::new().write(true).open(path)?.set_len(0);
    }
    let _ = fs::remove_file(rotated_path(path, keep));
    for n in (1..keep).rev() {
        let from = rotated_path(path, n);
        if from.exists() {
            fs::rename(&from, rotated_path(path, n + 1))?;
        }
    }
    let mut src = File::open(path)?;
    let first = rotated_path(path, 1);
    let mut dst = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&first)?;
    let mut copied = 0u64;
    for _ in 0..8 {
        let len = src.metadata()?.len();
        if len <= copied {
            break;
        }
        src.seek(SeekFrom::Start(copied))?;
        copied += io::copy(&mut (&mut src).take(len - copied), &mut dst)?;
    }
    OpenOptions::new().write(true).open(path)?.set_len(0)?;
    Ok(())
}

/// The last `n` lines of a file (fewer if it has fewer).
pub fn tail(path: &Path, n: usize) -> io::Result<Vec<String>> {
    tail_with_end(path, n).map(|(lines, _)| lines)
}

/// `tail`, and the offset it read up to (where following goes on).
fn tail_with_end(path: &Path, n: usize) -> io::Result<(Vec<String>, u64)> {
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    let mut chunk = 8192u64;
    loop {
        let start = len.saturating_sub(chunk);
        f.seek(SeekFrom::Start(start))?;
        let mut buf = Vec::with_capacity((len - start) as usize);
        f.read_to_end(&mut buf)?;
        let text = String::from_utf8_lossy(&buf);
        let mut lines: Vec<&str> = text.lines().collect();
        // A partial first line is dropped unless we read from the start.
        if start == 0 || lines.len() > n {
            if start > 0 && !lines.is_empty() {
                lines.remove(0);
            }
            let skip = lines.len().saturating_sub(n);
            let end = start + buf.len() as u64;
            return Ok((lines[skip..].iter().map(|l| l.to_string()).collect(), end));
        }
        chunk *= 4;
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
    let mut f = File::open(path)?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let len = match fs::metadata(path) {
            Ok(m) => m.len(),
            Err(_) => 0,
        };
        if len < pos {
            // Rotated: finish from the copy, then restart at the top.
            if let Ok(mut old) = File::open(rotated_path(path, 1)) {
                old.seek(SeekFrom::Start(pos))?;
                io::copy(&mut old, out)?;
            }
            f = File::open(path)?;
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
    fn rotation_keeps_n_files_and_all_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.log");
        let mut f = open_append(&p).unwrap();
        for round in 0..5 {
            writeln!(f, "round {round}").unwrap();
            rotate(&p, 3).unwrap();
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

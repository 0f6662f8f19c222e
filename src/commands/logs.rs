//! `logs <name> [-n N] [-f] [--since WHEN]`.

use super::output::Output;
use crate::error::{Error, Result};
use crate::logs;
use crate::registry::Registry;
use crate::workspace::Workspace;

/// Streams as it reads, so it prints itself instead of returning an output.
pub fn run(
    ws: &Workspace,
    name: &str,
    lines: Option<usize>,
    follow: bool,
    since: Option<&str>,
    json: bool,
) -> Result<Output> {
    let mut from = match since {
        Some(text) => logs::From::Since(
            logs::parse_since(text).ok_or_else(|| {
                Error::Invalid(format!(
                    "--since {text:?}: not a duration (30s, 5m, 2h, 1d) or an RFC 3339 time (2026-11-28T05:28:12Z)"
                ))
            })?,
            lines,
        ),
        None => logs::From::Last(lines.unwrap_or(50)),
    };
    let path = ws.log_path(name);
    if !Registry::load(ws)?.contains(name) && !path.exists() {
        Registry::load(ws)?.require(name)?;
    }
    if !path.exists() {
        eprintln!(
            "process-guardian: {name} has no log yet (it was never started): {}",
            path.display()
        );
        if !follow {
            return Ok(Output::nothing());
        }
        // Like `tail -F`: wait for it to appear.
        while !path.exists() {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        // All of it is new to the reader.
        from = logs::From::Last(usize::MAX);
    }
    let stdout = std::io::stdout();
    match logs::print(&path, &from, follow, json, &mut stdout.lock()) {
        Ok(()) => Ok(Output::nothing()),
        // The reader went away (`logs -f | head`): not our failure.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(Output::nothing()),
        Err(e) => Err(Error::io("read", &path, e)),
    }
}

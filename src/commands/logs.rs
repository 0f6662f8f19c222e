//! `logs <name> [-n N] [-f]`.

use super::output::Output;
use crate::error::{Error, Result};
use crate::logs;
use crate::registry::Registry;
use crate::workspace::Workspace;

/// Streams as it reads, so it prints itself instead of returning an output.
pub fn run(ws: &Workspace, name: &str, mut lines: usize, follow: bool) -> Result<Output> {
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
        lines = usize::MAX;
    }
    let stdout = std::io::stdout();
    match logs::print(&path, lines, follow, &mut stdout.lock()) {
        Ok(()) => Ok(Output::nothing()),
        // The reader went away (`logs -f | head`): not our failure.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(Output::nothing()),
        Err(e) => Err(Error::io("read", &path, e)),
    }
}

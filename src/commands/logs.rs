//! `logs <name> [-n N] [-f]`.

use crate::error::{Error, Result};
use crate::logs;
use crate::registry::Registry;
use crate::workspace::Workspace;

pub fn run(ws: &Workspace, name: &str, mut lines: usize, follow: bool) -> Result<i32> {
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
            return Ok(0);
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
        Ok(()) => Ok(0),
        // The reader went away (`logs -f | head`): not our failure.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(0),
        Err(e) => Err(Error::io("read", &path, e)),
    }
}

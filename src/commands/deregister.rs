//! `deregister [--purge]`: stop it, then drop it from the registry.

use std::fs;

use super::output::Output;
use crate::error::{Error, Result};
use crate::logs;
use crate::registry::{Entry, Registry};
use crate::workspace::Workspace;

pub fn run(ws: &Workspace, name: &str, purge: bool) -> Result<Output> {
    // One lock for the stop and the removal: a `start` cannot slip between
    // them and leave a supervisor running under a name nobody has.
    let _lock = crate::state::lock_name(ws, name)?;
    let registry = Registry::load(ws)?;
    if !registry.contains(name) {
        registry.require(name)?;
    }
    // An entry that no longer validates can still be removed: that is how it is fixed.
    let entry = registry
        .get(name)
        .ok()
        .flatten()
        .unwrap_or_else(|| Entry::new(String::new()));
    let stopped = super::stop::stop_with(ws, name, None, &entry)?;
    let removed = Registry::update(ws, |reg| reg.remove(name))?;
    for suffix in [".json", ".stop", ".env", ".out", crate::state::SPARE] {
        let _ = fs::remove_file(ws.run_file(name, suffix));
    }
    let mut human = stopped.lines();
    let mut purged = None;
    if purge {
        let log = ws.log_path(name);
        let mut n = 0;
        let mut paths = vec![log.clone()];
        paths.extend((1..=100).map(|i| logs::rotated_path(&log, i)));
        for p in paths {
            match fs::remove_file(&p) {
                Ok(()) => n += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("remove", &p, e)),
            }
        }
        for kind in crate::alert::Kind::ALL {
            let _ = fs::remove_file(ws.cooldown_dir().join(format!("{name}.{}", kind.as_str())));
        }
        human.push(format!(
            "deregistered {name}; removed its state and {n} log file(s)"
        ));
        purged = Some(n);
    } else if removed {
        human.push(format!(
            "deregistered {name}; its log stays at {}",
            ws.log_path(name).display()
        ));
    }
    Ok(Output::new(
        human,
        serde_json::json!({
            "name": name,
            "deregistered": removed,
            "stop": stopped,
            "log": ws.log_path(name),
            "log_files_removed": purged,
        }),
    ))
}

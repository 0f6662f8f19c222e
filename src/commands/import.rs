//! `import FILE`: registers the processes of a Procfile, a pm2 ecosystem
//! file or a supervisord configuration, all or none, under the registry lock.

use std::path::Path;

use super::output::Output;
use super::register::describe;
use crate::cli::ImportFormat;
use crate::error::{Error, Result};
use crate::import::{self, Imported};
use crate::registry::{self, Registry};
use crate::state;
use crate::workspace::Workspace;

/// What happens to one imported name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    New,
    /// Registered with the same definition: nothing to do.
    Same,
    /// Registered with another definition: replaced with `--force` only.
    Differs,
}

fn fate(reg: &Registry, p: &Imported) -> Result<(Fate, Vec<String>)> {
    Ok(match reg.get(&p.name)? {
        None => (Fate::New, Vec::new()),
        Some(old) => {
            let changes = registry::changes(&old, &p.entry);
            if changes.is_empty() {
                (Fate::Same, changes)
            } else {
                (Fate::Differs, changes)
            }
        }
    })
}

pub fn run(
    ws: &Workspace,
    file: &Path,
    format: Option<ImportFormat>,
    dry_run: bool,
    force: bool,
) -> Result<Output> {
    let (format, parsed) = import::read(file, format)?;
    let decide = |reg: &Registry| -> Result<Vec<(Fate, Vec<String>)>> {
        parsed.processes.iter().map(|p| fate(reg, p)).collect()
    };
    let conflicts = |fates: &[(Fate, Vec<String>)]| -> Vec<String> {
        parsed
            .processes
            .iter()
            .zip(fates)
            .filter(|(_, (f, _))| *f == Fate::Differs)
            .map(|(p, (_, changes))| format!("{} ({})", p.name, changes.join("; ")))
            .collect()
    };
    let refuse = |c: Vec<String>| {
        Error::Failed(format!(
            "already registered with another definition: {}; nothing was imported: --force replaces them",
            c.join(", ")
        ))
    };
    let fates = if dry_run {
        // Read only: not even the lock file is created.
        decide(&Registry::load(ws)?)?
    } else {
        Registry::update(ws, |reg| {
            let fates = decide(reg)?;
            let c = conflicts(&fates);
            if !c.is_empty() && !force {
                return Err(refuse(c));
            }
            for (p, (f, _)) in parsed.processes.iter().zip(&fates) {
                if *f != Fate::Same {
                    reg.insert(&p.name, &p.entry)?;
                }
            }
            Ok(fates)
        })?
    };

    let label = |f: Fate| match (f, dry_run) {
        (Fate::New, false) => "registered",
        (Fate::New, true) => "would register",
        (Fate::Same, _) => "unchanged",
        (Fate::Differs, false) => "replaced",
        (Fate::Differs, true) if force => "would replace",
        (Fate::Differs, true) => "conflicts",
    };
    let shown = file.display();
    let mut human = vec![format!(
        "{} {} process{} from {shown} ({}){}:",
        if dry_run { "would import" } else { "imported" },
        parsed.processes.len(),
        if parsed.processes.len() == 1 {
            ""
        } else {
            "es"
        },
        import::format_name(format),
        if dry_run { ", registry unchanged" } else { "" }
    )];
    let mut items = Vec::new();
    for (p, (f, changes)) in parsed.processes.iter().zip(&fates) {
        human.push(format!(
            "  {} {}: {} ({})",
            label(*f),
            p.name,
            p.entry.command,
            describe(&p.entry)
        ));
        for c in changes {
            human.push(format!("    changes {c}"));
        }
        for n in &p.notes {
            human.push(format!("    note: {n}"));
        }
        if !p.ignored.is_empty() {
            human.push(format!("    not translated: {}", p.ignored.join(", ")));
        }
        items.push(serde_json::json!({
            "name": p.name,
            "result": label(*f).replace(' ', "-"),
            "entry": p.entry,
            "changes": changes,
            "notes": p.notes,
            "ignored": p.ignored,
        }));
    }
    if !parsed.ignored.is_empty() {
        human.push(format!("not imported: {}", parsed.ignored.join(", ")));
    }
    let c = conflicts(&fates);
    let names: Vec<&str> = parsed.processes.iter().map(|p| p.name.as_str()).collect();
    if dry_run && !c.is_empty() && !force {
        human.push(format!(
            "{} already registered differently: add --force to replace",
            c.len()
        ));
    } else if !dry_run {
        // A replaced entry that runs keeps its old definition until restarted.
        let running: Vec<&str> = parsed
            .processes
            .iter()
            .zip(&fates)
            .filter(|(_, (f, _))| *f == Fate::Differs)
            .map(|(p, _)| p.name.as_str())
            .filter(|n| state::observe(ws, n).is_ok_and(|s| s.supervisor_alive))
            .collect();
        if !running.is_empty() {
            human.push(format!(
                "running with their old definitions until: process-guardian restart {}",
                running.join(" ")
            ));
        }
        human.push(format!(
            "start them with: process-guardian start {}",
            names.join(" ")
        ));
    }
    Ok(Output::new(
        human,
        serde_json::json!({
            "file": shown.to_string(),
            "format": import::format_name(format),
            "dry_run": dry_run,
            "processes": items,
            "ignored": parsed.ignored,
        }),
    ))
}

//! `export systemd` and `export kubernetes`: the registry's entries for
//! another engine, on stdout or (systemd) as files in a directory.

use std::path::Path;

use super::output::Output;
use crate::error::{Error, Result};
use crate::export::{Plan, kubernetes, systemd};
use crate::fsutil::{self, Durability};
use crate::registry::Registry;
use crate::workspace::Workspace;

/// The entries to export: the names given, or every one in start order.
fn plans(ws: &Workspace, names: &[String]) -> Result<(Registry, Vec<Plan>)> {
    let reg = Registry::load(ws)?;
    let chosen: Vec<String> = if names.is_empty() {
        let all: Vec<&str> = reg.names().collect();
        reg.in_start_order(&all)?
    } else {
        names.to_vec()
    };
    let plans = chosen
        .iter()
        .map(|n| Ok(Plan::new(n, &reg.require(n)?, ws.root())))
        .collect::<Result<Vec<_>>>()?;
    if plans.is_empty() {
        return Err(Error::Failed(format!(
            "nothing to export: no process is registered in {}",
            reg.path().display()
        )));
    }
    Ok((reg, plans))
}

pub fn systemd(ws: &Workspace, names: &[String], dir: Option<&Path>, user: bool) -> Result<Output> {
    let (reg, plans) = plans(ws, names)?;
    let path_var = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
    let euid = fsutil::euid();
    let run_as =
        (euid != 0).then(|| crate::workspace::user_name(euid).unwrap_or_else(|| euid.to_string()));
    let manager = if user {
        systemd::Manager::User
    } else {
        systemd::Manager::System
    };
    let mut units = Vec::new();
    for plan in &plans {
        let log = ws.log_path(&plan.name);
        let cx = systemd::Context {
            manager,
            registry: reg.path(),
            log: &log,
            path_var: &path_var,
            user: run_as.clone(),
        };
        let unit =
            systemd::unit(plan, &cx).map_err(|e| Error::Invalid(format!("{}: {e}", plan.name)))?;
        units.push(unit);
    }
    let mut stderr: Vec<String> = units
        .iter()
        .filter_map(|u| {
            u.unresolved.as_ref().map(|p| {
                format!(
                    "process-guardian: {}: the program {p} is not found here; check ExecStart",
                    u.unit
                )
            })
        })
        .collect();
    let Some(dir) = dir else {
        let text = units
            .iter()
            .map(|u| u.text.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        let mut out = Output::new(
            text.lines().map(str::to_string).collect(),
            serde_json::json!({ "units": units.iter().map(|u| unit_json(u, None)).collect::<Vec<_>>() }),
        );
        out.stderr.append(&mut stderr);
        return Ok(out);
    };
    std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
    check_ours(dir)?;
    let mut written = Vec::new();
    let mut human = Vec::new();
    for u in &units {
        let path = dir.join(&u.unit);
        fsutil::write_atomic(&path, u.text.as_bytes(), 0o644, Durability::Synced)
            .map_err(|e| Error::io("write", &path, e))?;
        human.push(format!("wrote {}", path.display()));
        written.push(unit_json(u, Some(&path)));
    }
    let names: Vec<&str> = plans.iter().map(|p| p.name.as_str()).collect();
    let shown = dir.display();
    human.push(match manager {
        systemd::Manager::System => format!(
            "install them with: sudo cp {shown}/*.service /etc/systemd/system/ && sudo systemctl daemon-reload && sudo systemctl enable --now {}",
            names.join(" ")
        ),
        systemd::Manager::User => format!(
            "install them with: cp {shown}/*.service ~/.config/systemd/user/ && systemctl --user daemon-reload && systemctl --user enable --now {}",
            names.join(" ")
        ),
    });
    human.push(format!(
        "then stop them here: process-guardian stop {}",
        names.join(" ")
    ));
    let mut out = Output::new(human, serde_json::json!({ "units": written }));
    out.stderr.append(&mut stderr);
    Ok(out)
}

/// Units are run as root once installed: a directory another user can
/// write would let them swap a unit before it is copied. Refused, as a
/// link is (it may point anywhere by then).
fn check_ours(dir: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(dir).map_err(|e| Error::io("inspect", dir, e))?;
    let me = fsutil::euid();
    let reason = if m.file_type().is_symlink() {
        Some("it is a symbolic link".to_string())
    } else if !m.is_dir() {
        Some("it is not a directory".to_string())
    } else if m.uid() != me {
        Some(format!(
            "it is owned by uid {}, not by you (uid {me})",
            m.uid()
        ))
    } else if m.mode() & 0o022 != 0 {
        Some(format!(
            "others can write it (mode {:o})",
            m.mode() & 0o7777
        ))
    } else {
        None
    };
    match reason {
        None => Ok(()),
        Some(reason) => Err(Error::Untrusted {
            path: dir.to_path_buf(),
            reason,
            risk: "another user could swap a unit before it is installed, and run as its user",
            fix: "Write the units to a directory of your own that only you can write (--dir DIR)."
                .into(),
        }),
    }
}

fn unit_json(u: &systemd::Unit, path: Option<&Path>) -> serde_json::Value {
    serde_json::json!({
        "name": u.name,
        "unit": u.unit,
        "path": path.map(|p| p.display().to_string()),
        "untranslated": u.untranslated,
        "text": u.text,
    })
}

pub fn kubernetes(
    ws: &Workspace,
    names: &[String],
    image: &str,
    namespace: Option<&str>,
) -> Result<Output> {
    if image.trim().is_empty() || image.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::Invalid(format!(
            "--image {image:?}: give an image reference such as python:3.12-slim"
        )));
    }
    if let Some(ns) = namespace
        && kubernetes::dns_name(ns, &[]) != ns
    {
        return Err(Error::Invalid(format!(
            "--namespace {ns:?}: a namespace is lower-case letters, digits and '-', at most 63"
        )));
    }
    let (reg, plans) = plans(ws, names)?;
    let registry = reg.path().display().to_string();
    let cx = kubernetes::Context {
        image,
        namespace,
        registry: &registry,
    };
    let mut taken: Vec<String> = Vec::new();
    let mut objects = Vec::new();
    for plan in &plans {
        let k8s_name = kubernetes::dns_name(&plan.name, &taken);
        taken.push(k8s_name.clone());
        objects.push(kubernetes::object(plan, &k8s_name, &cx));
    }
    let mut yaml = String::new();
    for o in &objects {
        let doc =
            kubernetes::to_yaml(o).map_err(|e| Error::Failed(format!("cannot write YAML: {e}")))?;
        yaml.push_str("---\n");
        yaml.push_str(&doc);
    }
    let mut out = Output::new(
        Vec::new(),
        serde_json::json!({ "apiVersion": "v1", "kind": "List", "items": objects }),
    );
    out.human = yaml.lines().map(str::to_string).collect();
    Ok(out)
}

//! One file per subcommand; each is thin and calls the modules above.

mod cron;
mod deregister;
mod doctor;
mod export;
mod healthcheck;
mod import;
mod logs;
mod mcp;
pub mod output;
mod register;
mod signal;
mod start;
mod status;
mod stop;
mod wait;

pub use output::{Output, print};

use crate::cli::{Cli, Cmd, ExportTo};
use crate::error::{Error, Result};
use crate::registry::{Registry, validate_name};
use crate::workspace::Workspace;

/// Runs a command and returns what it did; `print` shows it (as JSON with `--json`).
pub fn run(cli: Cli) -> Result<Output> {
    let as_json = cli.json;
    Ok(dispatch(cli)?.json(as_json))
}

/// Refuses where pidfds cannot be opened (see `proc::pidfds_available`):
/// every process would look gone, so `stop` would say stopped and leave it
/// running, and `healthcheck` would start a second one.
pub(crate) fn require_pidfds() -> Result<()> {
    crate::proc::pidfds_available().map_err(|e| {
        crate::error::Error::Failed(format!(
            "this system does not let process-guardian open pidfds ({e}): it needs Linux 5.3 or later, without a seccomp profile that refuses pidfd_open, to act on processes without ever hitting a recycled pid"
        ))
    })
}

fn dispatch(cli: Cli) -> Result<Output> {
    let as_json = cli.json;
    // Names are checked before anything touches a path.
    let names: Vec<&String> = match &cli.command {
        Cmd::Register(a) => vec![&a.name],
        Cmd::Run(a) => vec![&a.name],
        Cmd::Deregister { name, .. }
        | Cmd::Logs { name, .. }
        | Cmd::Signal { name, .. }
        | Cmd::Wait { name, .. } => vec![name],
        Cmd::Start { names, .. }
        | Cmd::Stop { names, .. }
        | Cmd::Restart { names, .. }
        | Cmd::Status { names } => names.iter().collect(),
        Cmd::Healthcheck { only } => only.iter().collect(),
        Cmd::Export { to } => match to {
            ExportTo::Systemd { names, .. } | ExportTo::Kubernetes { names, .. } => {
                names.iter().collect()
            }
        },
        Cmd::Import { .. } => Vec::new(),
        Cmd::Cron { .. } | Cmd::Doctor | Cmd::Mcp | Cmd::Completions { .. } | Cmd::Man => {
            Vec::new()
        }
    };
    for name in names {
        validate_name(name)?;
    }
    if matches!(
        cli.command,
        Cmd::Start { .. }
            | Cmd::Run(_)
            | Cmd::Stop { .. }
            | Cmd::Restart { .. }
            | Cmd::Deregister { .. }
            | Cmd::Signal { .. }
            | Cmd::Healthcheck { .. }
    ) {
        require_pidfds()?;
    }
    // What needs no workspace.
    match &cli.command {
        Cmd::Completions { shell } => return Ok(completions(*shell)),
        Cmd::Man => return man(),
        _ => {}
    }
    let ws = Workspace::resolve(cli.workspace.as_deref())?;
    match cli.command {
        Cmd::Register(a) => register::register(&ws, &a.name, a.command, a.duration_min, &a.opts),
        Cmd::Run(a) => {
            let ready = a
                .wait_ready
                .map(|t| start::flag_secs("--wait-ready", t))
                .transpose()?;
            let mut out = register::run(&ws, &a)?;
            if let Some(t) = ready {
                out.human.push(start::wait_ready(&ws, &a.name, t)?);
            }
            Ok(out)
        }
        Cmd::Deregister { name, purge } => deregister::run(&ws, &name, purge),
        Cmd::Start {
            names,
            all,
            wait,
            wait_ready,
        } => {
            let wait = wait.map(|w| start::flag_secs("--wait", w)).transpose()?;
            let ready = wait_ready
                .map(|t| start::flag_secs("--wait-ready", t))
                .transpose()?;
            each(&ws, names, all, |n| {
                let mut out = start::start(&ws, n, wait)?;
                if let Some(t) = ready {
                    out.human.push(start::wait_ready(&ws, n, t)?);
                }
                Ok(out)
            })
        }
        Cmd::Stop {
            names,
            all,
            timeout,
        } => {
            let timeout = timeout
                .map(|t| start::flag_secs("--timeout", t))
                .transpose()?;
            each(&ws, names, all, |n| stop::run(&ws, n, timeout))
        }
        Cmd::Restart { names, all } => each(&ws, names, all, |n| start::restart(&ws, n)),
        Cmd::Status { names } => status::run(&ws, &names, as_json),
        Cmd::Signal { name, signal } => signal::run(&ws, &name, &signal),
        Cmd::Wait {
            name,
            until,
            timeout,
        } => wait::run(&ws, &name, until, timeout),
        Cmd::Healthcheck { only } => healthcheck::run(&ws, as_json, only.as_deref()),
        Cmd::Logs {
            name,
            lines,
            follow,
            since,
        } => logs::run(&ws, &name, lines, follow, since.as_deref(), as_json),
        Cmd::Cron { action } => cron::run(&ws, action),
        Cmd::Doctor => doctor::run(&ws),
        Cmd::Mcp => mcp::serve(&ws),
        Cmd::Export { to } => match to {
            ExportTo::Systemd { names, dir, user } => {
                export::systemd(&ws, &names, dir.as_deref(), user)
            }
            ExportTo::Kubernetes {
                names,
                image,
                namespace,
            } => export::kubernetes(&ws, &names, &image, namespace.as_deref()),
        },
        Cmd::Import {
            file,
            dry_run,
            force,
            format,
        } => import::run(&ws, &file, format, dry_run, force),
        Cmd::Completions { .. } | Cmd::Man => unreachable!("answered above"),
    }
}

/// A command for several names (or `--all`): each in turn, in the order
/// given; the human lines of each, a JSON array of each outcome (an error
/// as `{"name", "error"}`), and the worst exit code. One name alone keeps
/// the shape of its single outcome.
fn each(
    ws: &Workspace,
    names: Vec<String>,
    all: bool,
    mut one: impl FnMut(&str) -> Result<Output>,
) -> Result<Output> {
    let names = if all {
        Registry::load(ws)?.names().map(str::to_string).collect()
    } else {
        names
    };
    if names.len() == 1 && !all {
        return one(&names[0]);
    }
    let mut out = Output::human(Vec::new());
    let mut items = Vec::new();
    for name in &names {
        match one(name) {
            Ok(o) => {
                out.code = out.code.max(o.code);
                out.human.extend(o.human);
                out.stderr.extend(o.stderr);
                items.push(serde_json::from_str(&o.json).unwrap_or(serde_json::Value::Null));
            }
            Err(e) => {
                out.code = out.code.max(e.exit_code());
                out.stderr.push(format!("process-guardian: {e}"));
                items.push(serde_json::json!({ "name": name, "error": output::error_json(&e) }));
            }
        }
    }
    if names.is_empty() {
        out.human.push("no processes registered".into());
    }
    out.json = serde_json::to_string_pretty(&items).unwrap_or_default();
    Ok(out)
}

fn completions(shell: clap_complete::Shell) -> Output {
    let mut cmd = crate::cli::whole_command();
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "process-guardian", &mut buf);
    Output::raw(buf)
}

fn man() -> Result<Output> {
    let cmd = crate::cli::whole_command();
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut buf)
        .map_err(|e| Error::Failed(format!("cannot render the manual page: {e}")))?;
    Ok(Output::raw(buf))
}

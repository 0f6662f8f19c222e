//! One file per subcommand; each is thin and calls the modules above.

mod cron;
mod deregister;
mod doctor;
mod healthcheck;
mod logs;
pub mod output;
mod register;
mod start;
mod status;
mod stop;

pub use output::{Output, print};

use crate::cli::{Cli, Cmd};
use crate::error::Result;
use crate::registry::validate_name;
use crate::workspace::Workspace;

/// Runs a command and returns what it did; `print` shows it.
pub fn run(cli: Cli) -> Result<Output> {
    // Names are checked before anything touches a path.
    let name = match &cli.command {
        Cmd::Register(a) => Some(&a.name),
        Cmd::Run(a) => Some(&a.name),
        Cmd::Deregister { name, .. }
        | Cmd::Start { name, .. }
        | Cmd::Stop { name, .. }
        | Cmd::Restart { name }
        | Cmd::Logs { name, .. } => Some(name),
        Cmd::Status { name, .. } => name.as_ref(),
        Cmd::Healthcheck { only, .. } => only.as_ref(),
        Cmd::Cron { .. } | Cmd::Doctor { .. } => None,
    };
    if let Some(name) = name {
        validate_name(name)?;
    }
    let ws = Workspace::resolve(cli.workspace.as_deref())?;
    match cli.command {
        Cmd::Register(a) => register::register(&ws, &a.name, a.command, a.duration_min, &a.opts),
        Cmd::Run(a) => register::run(&ws, &a),
        Cmd::Deregister { name, purge } => deregister::run(&ws, &name, purge),
        Cmd::Start { name, wait } => start::start(&ws, &name, wait),
        Cmd::Stop { name, timeout } => stop::run(&ws, &name, timeout),
        Cmd::Restart { name } => start::restart(&ws, &name),
        Cmd::Status { name, json } => status::run(&ws, name.as_deref(), json),
        Cmd::Healthcheck { json, only } => healthcheck::run(&ws, json, only.as_deref()),
        Cmd::Logs {
            name,
            lines,
            follow,
            since,
        } => logs::run(&ws, &name, lines, follow, since.as_deref()),
        Cmd::Cron { action } => cron::run(&ws, action),
        Cmd::Doctor { json } => doctor::run(&ws, json),
    }
}

//! The command line, as clap definitions and nothing else.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const AFTER_HELP: &str = "\
Exit codes:
  0  success (start/stop of something already running/stopped included)
  1  the operation failed; for healthcheck: something was unhealthy or had to be revived
  2  bad input: usage, an invalid name or value, an unparsable registry
  3  no process of that name is registered

Environment:
  PROCESS_GUARDIAN_WORKSPACE       workspace directory (else the nearest ancestor with a registry, else $HOME)
  PROCESS_GUARDIAN_ALERT_DIR       where the alert flag and text go (default /tmp)
  PROCESS_GUARDIAN_ALERT_COMMAND   hook run with `sh -c` for every alert, the alert JSON on stdin
  PROCESS_GUARDIAN_ALERT_COOLDOWN  seconds between two flags for the same process and kind (default 900)
  NO_COLOR                         no colour in tables";

#[derive(Parser, Debug)]
#[command(
    name = "process-guardian",
    version,
    about = "Keeps long-running background processes alive: detached start, instant restart, cron healthcheck, alerts.",
    after_help = AFTER_HELP
)]
pub struct Cli {
    /// Workspace directory holding .process-registry.json
    #[arg(long, global = true, value_name = "DIR")]
    pub workspace: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Define (or update) a managed process
    #[command(allow_negative_numbers = true)]
    Register(RegisterArgs),
    /// Register and start in one step: run <name> [options] -- <program> [args...]
    #[command(allow_negative_numbers = true)]
    Run(RunArgs),
    /// Stop a process and remove it from the registry
    Deregister {
        name: String,
        /// Delete its logs and state too
        #[arg(long)]
        purge: bool,
    },
    /// Start a registered process, fully detached; returns once it has exec'd
    #[command(allow_negative_numbers = true)]
    Start {
        name: String,
        /// Also wait this many seconds and fail if the command died meanwhile
        #[arg(long, value_name = "SECS")]
        wait: Option<f64>,
    },
    /// Stop a process: its stop signal to the whole group, then SIGKILL after the timeout
    #[command(allow_negative_numbers = true)]
    Stop {
        name: String,
        /// Seconds to wait before SIGKILL (default: the entry's stop_timeout_s, 10)
        #[arg(long, value_name = "S")]
        timeout: Option<f64>,
    },
    /// Stop and start again, resetting the crash counters
    Restart { name: String },
    /// Show processes: a table for people, --json for programs
    Status {
        name: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Revive whatever should run but does not; cron runs this every 5 minutes
    Healthcheck {
        #[arg(long)]
        json: bool,
        /// Look at this one name only (what the warden runs for a lost supervisor)
        #[arg(long, value_name = "NAME")]
        only: Option<String>,
    },
    /// Check what the safety net needs (cron or the user timer, the last healthcheck, logout, alert files)
    Doctor {
        #[arg(long)]
        json: bool,
    },
    /// Print the last lines of a process's log, or follow it
    Logs {
        name: String,
        /// How many lines (default 50; with --since, all of them)
        #[arg(short = 'n', long = "lines")]
        lines: Option<usize>,
        /// Keep printing what is appended (across rotations)
        #[arg(short = 'f', long)]
        follow: bool,
        /// Only what was written since then: a duration back (30s, 5m, 2h, 1d) or an RFC 3339 time
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
    },
    /// Manage the crontab lines that run the healthcheck
    Cron {
        #[command(subcommand)]
        action: CronAction,
    },
}

#[derive(Subcommand, Debug, Clone, Copy)]
pub enum CronAction {
    /// Add the two lines (*/5 and @reboot) for this workspace; idempotent
    Install {
        /// Run every minute instead of every 5 (for tests and impatient people)
        #[arg(long)]
        every_minute: bool,
    },
    /// Remove this workspace's lines, leaving every other line alone
    Uninstall,
    /// Print this workspace's lines
    Show,
}

#[derive(Args, Debug, Default, Clone)]
pub struct EntryOpts {
    /// Do not restart when it exits
    #[arg(long)]
    pub no_auto_restart: bool,
    /// Quick crashes in a row before giving up (0 = no limit; default 5)
    #[arg(long, value_name = "N")]
    pub max_restarts: Option<u32>,
    /// A run shorter than this many seconds is a quick crash (0 = no crash-loop protection; default 30)
    #[arg(long, value_name = "S")]
    pub restart_cooldown: Option<f64>,
    /// Working directory (default: the current directory)
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// Environment variable for the command (repeatable)
    #[arg(long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// Signal that asks it to stop (default TERM)
    #[arg(long, value_name = "SIG")]
    pub stop_signal: Option<String>,
    /// Seconds between the stop signal and SIGKILL (default 10)
    #[arg(long, value_name = "S")]
    pub stop_timeout: Option<f64>,
    /// Command run with `sh -c` on every alert of this process (JSON on stdin)
    #[arg(long, value_name = "CMD")]
    pub alert_command: Option<String>,
    /// Restart it when its log has not grown for this many minutes
    #[arg(long, value_name = "MIN")]
    pub stale_after: Option<f64>,
    /// Rotate its log past this size (default 10 MiB)
    #[arg(long, value_name = "BYTES")]
    pub log_max_bytes: Option<u64>,
    /// Rotated logs to keep (default 3)
    #[arg(long, value_name = "N")]
    pub log_keep: Option<u32>,
    /// Prefix each line of output with its UTC time (2026-11-28T05:28:12.827Z)
    #[arg(long)]
    pub timestamps: bool,
}

#[derive(Args, Debug)]
pub struct RegisterArgs {
    pub name: String,
    /// The command line; shell syntax runs under `sh -c`
    pub command: String,
    /// Expected run time in minutes (0 = indefinite); exiting 0 after 80 % of it counts as done
    pub duration_min: Option<f64>,
    #[command(flatten)]
    pub opts: EntryOpts,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    pub name: String,
    /// Expected run time in minutes (0 = indefinite)
    #[arg(long, value_name = "MIN")]
    pub duration: Option<f64>,
    #[command(flatten)]
    pub opts: EntryOpts,
    /// The program and its arguments, after --
    #[arg(last = true, required = true, value_name = "PROGRAM")]
    pub argv: Vec<String>,
}

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

    /// Print one JSON document for programs (errors too: {"error": {"code", "message"}} on stdout)
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Cmd,
}

/// The whole command line, for the completions and the manual page.
///
/// Parsing defines only the subcommand it runs (`defer` on [`Cmd`]: building
/// every subcommand's arguments was a third of a short command's time). But
/// clap copies the subcommand tree under `help` before it runs a deferred
/// definition, so `help cron …` would lose its subcommands: the two
/// subcommands that have subcommands are defined here up front, as the
/// derive defines them (checked by a test against the deferred definition).
pub fn whole_command() -> clap::Command {
    fn eager(sub: clap::Command, with: fn(clap::Command) -> clap::Command) -> clap::Command {
        with(sub.defer(|c| c))
            .subcommand_required(true)
            .arg_required_else_help(true)
    }
    <Cli as clap::CommandFactory>::command()
        .mut_subcommand("cron", |c| {
            eager(c, <CronAction as clap::Subcommand>::augment_subcommands)
        })
        .mut_subcommand("export", |c| {
            eager(c, <ExportTo as clap::Subcommand>::augment_subcommands)
        })
}

/// The command lines run most often (by scripts, cron and agents), parsed
/// without clap: `[--json] [--workspace DIR] COMMAND [NAME...]` for
/// `status`, `start`, `stop`, `restart` and `healthcheck`, each of `--json`
/// and `--workspace DIR` at most once and anywhere, each NAME UTF-8 and not
/// starting with `-`. `None` for anything else (any other option, help,
/// version, `--`, a repeated flag), which clap parses as before. Building
/// clap's parser cost a `status --json` of 100 about a twelfth of its time
/// (17 of its 87 page faults, 120 000 instructions). A property test holds
/// this parse equal to clap's on every line it accepts.
pub fn parse_plain(args: &[std::ffi::OsString]) -> Option<Cli> {
    let mut json = false;
    let mut workspace: Option<PathBuf> = None;
    let mut command: Option<&str> = None;
    let mut names = Vec::new();
    let mut words = args.get(1..)?.iter();
    while let Some(word) = words.next() {
        if word == "--workspace" {
            let dir = words.next()?;
            let dash_or_empty = dir.as_encoded_bytes().first().is_none_or(|b| *b == b'-');
            if workspace.is_some() || dash_or_empty {
                return None;
            }
            workspace = Some(PathBuf::from(dir));
            continue;
        }
        let word = word.to_str()?;
        if word == "--json" && !json {
            json = true;
        } else if word.is_empty() || word.starts_with('-') {
            return None;
        } else if command.is_none() {
            command = Some(word);
        } else {
            names.push(word.to_string());
        }
    }
    let command = match command? {
        "status" => Cmd::Status { names },
        "healthcheck" if names.is_empty() => Cmd::Healthcheck { only: None },
        "start" if !names.is_empty() => Cmd::Start {
            names,
            all: false,
            wait: None,
            wait_ready: None,
        },
        "stop" if !names.is_empty() => Cmd::Stop {
            names,
            all: false,
            timeout: None,
        },
        "restart" if !names.is_empty() => Cmd::Restart { names, all: false },
        _ => return None,
    };
    Some(Cli {
        workspace,
        json,
        command,
    })
}

/// What NAME is, for every subcommand's help.
pub const NAME_HELP: &str = "The process's name in the registry: letters, digits, '.', '_' and '-', at most 64, starting with a letter or digit";

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum Cmd {
    /// Define (or update) a managed process
    #[command(
        allow_negative_numbers = true,
        after_help = "Examples:\n  process-guardian register my-bot 'python3 bot.py' 480\n  process-guardian register web 'npm run dev' --env PORT=3000 --timestamps"
    )]
    Register(RegisterArgs),
    /// Register and start in one step: run <name> [options] -- <program> [args...]
    #[command(
        allow_negative_numbers = true,
        after_help = "Examples:\n  process-guardian run scraper -- python3 scrape.py --all\n  process-guardian --json run web --env PORT=3000 -- npm run dev"
    )]
    Run(RunArgs),
    /// Stop a process and remove it from the registry
    #[command(
        after_help = "Examples:\n  process-guardian deregister my-bot\n  process-guardian deregister my-bot --purge"
    )]
    Deregister {
        #[arg(help = NAME_HELP)]
        name: String,
        /// Delete its logs and state too
        #[arg(long)]
        purge: bool,
    },
    /// Start registered processes, fully detached; returns once each has exec'd
    #[command(
        allow_negative_numbers = true,
        after_help = "Examples:\n  process-guardian start my-bot\n  process-guardian start web worker --wait 3\n  process-guardian --json start --all"
    )]
    Start {
        #[arg(help = NAME_HELP, required_unless_present = "all")]
        names: Vec<String>,
        /// Every registered process
        #[arg(long, conflicts_with = "names")]
        all: bool,
        /// Also wait this many seconds and fail if the command died meanwhile
        #[arg(long, value_name = "SECS")]
        wait: Option<f64>,
        /// Return once it is ready (its probe passed; without one, exec'd), 1 if it dies or S pass (default 60)
        #[arg(long, value_name = "S", num_args = 0..=1, default_missing_value = "60")]
        wait_ready: Option<f64>,
    },
    /// Stop processes: the stop signal to the whole group, then SIGKILL after the timeout
    #[command(
        allow_negative_numbers = true,
        after_help = "Examples:\n  process-guardian stop my-bot\n  process-guardian stop --all --timeout 5"
    )]
    Stop {
        #[arg(help = NAME_HELP, required_unless_present = "all")]
        names: Vec<String>,
        /// Every registered process
        #[arg(long, conflicts_with = "names")]
        all: bool,
        /// Seconds to wait before SIGKILL (default: the entry's stop_timeout_s, 10)
        #[arg(long, value_name = "S")]
        timeout: Option<f64>,
    },
    /// Stop and start again, resetting the crash counters
    #[command(
        after_help = "Examples:\n  process-guardian restart my-bot\n  process-guardian restart --all"
    )]
    Restart {
        #[arg(help = NAME_HELP, required_unless_present = "all")]
        names: Vec<String>,
        /// Every registered process
        #[arg(long, conflicts_with = "names")]
        all: bool,
    },
    /// Show processes: a table for people, --json for programs
    #[command(
        after_help = "Examples:\n  process-guardian status\n  process-guardian status my-bot web --json"
    )]
    Status {
        /// Names to show (default: every registered process)
        names: Vec<String>,
    },
    /// Send a signal to a running command's process group (HUP to reload, USR1…)
    #[command(
        after_help = "Examples:\n  process-guardian signal web HUP\n  process-guardian signal worker USR1"
    )]
    Signal {
        #[arg(help = NAME_HELP)]
        name: String,
        /// A signal name (HUP, SIGUSR1, INT…) or number
        signal: String,
    },
    /// Wait until a process is running, ready, stopped or exited
    #[command(
        allow_negative_numbers = true,
        after_help = "Examples:\n  process-guardian wait web --for running --timeout 10\n  process-guardian wait batch --for exited"
    )]
    Wait {
        #[arg(help = NAME_HELP)]
        name: String,
        /// The state to wait for
        #[arg(long = "for", value_enum, default_value = "running")]
        until: WaitFor,
        /// Give up after this many seconds (exit 1; default: 60)
        #[arg(long, value_name = "S")]
        timeout: Option<f64>,
    },
    /// Revive whatever should run but does not; cron runs this every 5 minutes
    #[command(
        after_help = "Examples:\n  process-guardian healthcheck\n  process-guardian healthcheck --json"
    )]
    Healthcheck {
        /// Look at this one process only (what the warden runs for a lost supervisor); NAME: letters, digits, '.', '_' and '-', at most 64
        #[arg(long, value_name = "NAME")]
        only: Option<String>,
    },
    /// Check what the safety net needs (cron or the user timer, the last healthcheck, logout, alert files)
    #[command(after_help = "Examples:\n  process-guardian doctor")]
    Doctor,
    /// Print the last lines of a process's log, or follow it
    #[command(
        after_help = "Examples:\n  process-guardian logs my-bot -n 100\n  process-guardian logs web -f\n  process-guardian logs web --since 10m"
    )]
    Logs {
        #[arg(help = NAME_HELP)]
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
    #[command(
        after_help = "Examples:\n  process-guardian cron install\n  process-guardian cron show"
    )]
    Cron {
        #[command(subcommand)]
        action: CronAction,
    },
    /// A Model Context Protocol server on stdio, for agents (tools: status, register, run, start, stop, restart, logs, wait, alerts)
    #[command(
        after_help = "Example (an MCP client's configuration):\n  {\"command\": \"process-guardian\", \"args\": [\"--workspace\", \"/path/to/project\", \"mcp\"]}"
    )]
    Mcp,
    /// Write entries as systemd units or Kubernetes workloads, to move them to a bigger engine
    #[command(
        after_help = "Examples:\n  process-guardian export systemd --dir ./units\n  process-guardian export systemd web --user\n  process-guardian export kubernetes --image python:3.12-slim > app.yaml"
    )]
    Export {
        #[command(subcommand)]
        to: ExportTo,
    },
    /// Register the processes of a Procfile, a pm2 ecosystem file or a supervisord .conf
    #[command(
        after_help = "Examples:\n  process-guardian import Procfile --dry-run\n  process-guardian import ecosystem.config.json\n  process-guardian import /etc/supervisor/conf.d/app.conf --force\n\nA pm2 ecosystem.config.js is code; turn it into JSON first:\n  node -e 'console.log(JSON.stringify(require(\"./ecosystem.config.js\"), null, 2))' > ecosystem.json"
    )]
    Import {
        /// The file: Procfile, pm2 ecosystem (.json, .yml) or supervisord (.conf, .ini)
        file: PathBuf,
        /// Show what would be registered and change nothing
        #[arg(long)]
        dry_run: bool,
        /// Replace entries of the same names that are defined differently
        #[arg(long)]
        force: bool,
        /// The file's format, when its name and content do not tell
        #[arg(long, value_enum)]
        format: Option<ImportFormat>,
    },
    /// Print a shell completion script (bash, zsh, fish)
    #[command(
        after_help = "Examples:\n  process-guardian completions bash > ~/.local/share/bash-completion/completions/process-guardian"
    )]
    Completions { shell: clap_complete::Shell },
    /// Print the manual page (roff) on stdout
    #[command(after_help = "Examples:\n  process-guardian man | man -l -")]
    Man,
}

// What `export` writes. (A plain comment: under `defer`, a doc comment here
// would replace the help text of `export` itself.)
#[derive(Subcommand, Debug, Clone)]
pub enum ExportTo {
    /// One .service unit per entry (on stdout, or NAME.service files in --dir)
    Systemd {
        /// Names to export (default: every registered process)
        names: Vec<String>,
        /// Write NAME.service files here instead of printing them
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Units for a user's manager (systemctl --user) rather than the system's
        #[arg(long)]
        user: bool,
    },
    /// A Deployment per entry that runs indefinitely, a Job for one with a duration, as YAML
    Kubernetes {
        /// Names to export (default: every registered process)
        names: Vec<String>,
        /// The container image that holds the programs (such as python:3.12-slim)
        #[arg(long, required = true)]
        image: String,
        /// The namespace to put in each object's metadata
        #[arg(long)]
        namespace: Option<String>,
    },
}

/// The formats `import` reads.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportFormat {
    /// `name: command` lines (Heroku, foreman, honcho, overmind)
    Procfile,
    /// A pm2 ecosystem file in JSON or YAML (`apps: [...]`)
    Pm2,
    /// A supervisord configuration (`[program:NAME]` sections)
    Supervisord,
}

/// What `wait --for` waits for.
#[derive(
    clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum WaitFor {
    /// Its command runs (exec confirmed)
    Running,
    /// Running and ready (without a readiness probe: running)
    Ready,
    /// Stopped by `stop`
    Stopped,
    /// Not running and not about to be restarted: completed, exited, failed, stopped or dead
    Exited,
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

// The options of an entry, from flags or (for the MCP server) from JSON
// with the same names in snake_case. (A plain comment: under `defer`, a doc
// comment here would replace the help text of `register` and `run`.)
#[derive(Args, Debug, Default, Clone, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
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
    /// A .env file of KEY=VALUE lines read at each start (relative to --cwd); --env overrides it
    #[arg(long, value_name = "PATH")]
    pub env_file: Option<PathBuf>,
    /// Start (and revive) it after this registered process (repeatable)
    #[arg(long = "after", value_name = "NAME")]
    pub after: Vec<String>,
    /// Ready once this answers 2xx/3xx to a GET (plain http://)
    #[arg(long, value_name = "URL")]
    pub ready_http: Option<String>,
    /// Ready once this accepts a connection
    #[arg(long, value_name = "HOST:PORT")]
    pub ready_tcp: Option<String>,
    /// Ready once this exits 0 (sh -c, in the command's directory)
    #[arg(long, value_name = "CMD")]
    pub ready_cmd: Option<String>,
    /// Ready once a line of its output matches this regex
    #[arg(long, value_name = "REGEX")]
    pub ready_log: Option<String>,
    /// Seconds it may take to become ready (default 60)
    #[arg(long, value_name = "S")]
    pub ready_timeout: Option<f64>,
    /// Healthy while this answers 2xx/3xx to a GET (plain http://)
    #[arg(long, value_name = "URL")]
    pub health_http: Option<String>,
    /// Healthy while this accepts a connection
    #[arg(long, value_name = "HOST:PORT")]
    pub health_tcp: Option<String>,
    /// Healthy while this exits 0 (sh -c, in the command's directory)
    #[arg(long, value_name = "CMD")]
    pub health_cmd: Option<String>,
    /// Seconds between two health probes (default 10)
    #[arg(long, value_name = "S")]
    pub health_interval: Option<f64>,
    /// Seconds one health probe may take (default 5)
    #[arg(long, value_name = "S")]
    pub health_timeout: Option<f64>,
    /// Failed health probes in a row that restart it (default 3)
    #[arg(long, value_name = "N")]
    pub health_failures: Option<u32>,
    /// Restart it when its tree's resident memory passes this (200M, 1.5G, 500K, or bytes)
    #[arg(long, value_name = "SIZE")]
    pub max_memory: Option<String>,
}

#[derive(Args, Debug)]
pub struct RegisterArgs {
    #[arg(help = NAME_HELP)]
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
    #[arg(help = NAME_HELP)]
    pub name: String,
    /// Expected run time in minutes (0 = indefinite)
    #[arg(long, value_name = "MIN")]
    pub duration: Option<f64>,
    /// Return once it is ready (its probe passed; without one, exec'd), 1 if it dies or S pass (default 60)
    #[arg(long, value_name = "S", num_args = 0..=1, default_missing_value = "60")]
    pub wait_ready: Option<f64>,
    #[command(flatten)]
    pub opts: EntryOpts,
    /// The program and its arguments, after --
    #[arg(last = true, required = true, value_name = "PROGRAM")]
    pub argv: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn names(cmd: &clap::Command) -> Vec<String> {
        cmd.get_subcommands()
            .map(|s| s.get_name().to_string())
            .collect()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]
        /// Every command line `parse_plain` accepts, clap parses the same way;
        /// and the plain ones it is there for, it does accept.
        #[test]
        fn the_plain_parse_agrees_with_clap(
            words in proptest::collection::vec(proptest::sample::select(vec![
                "status", "start", "stop", "restart", "healthcheck", "help", "logs",
                "--json", "--json", "--workspace", "/tmp/w s", "-", "--", "--all",
                "--wait", "3", "-h", "--help", "--version", "-V", "--only", "web",
                "my-bot", "", "-1", "--json=true", "--workspace=/x", "a.b_c",
            ]), 0..6)
        ) {
            let args: Vec<std::ffi::OsString> = std::iter::once("process-guardian")
                .chain(words.iter().copied())
                .map(Into::into)
                .collect();
            if let Some(plain) = parse_plain(&args) {
                let clap = Cli::try_parse_from(&args);
                proptest::prop_assert!(clap.is_ok(), "{words:?}: clap refused it");
                proptest::prop_assert_eq!(
                    format!("{plain:?}"),
                    format!("{:?}", clap.unwrap()),
                    "{:?}",
                    words
                );
            }
        }
    }

    #[test]
    fn the_plain_parse_takes_the_lines_it_is_for() {
        let take = |line: &str| {
            let args: Vec<std::ffi::OsString> =
                line.split(' ').map(std::ffi::OsString::from).collect();
            parse_plain(&args).map(|c| format!("{c:?}"))
        };
        for line in [
            "pg status",
            "pg status --json",
            "pg --json status a b",
            "pg start web",
            "pg stop web worker --json",
            "pg restart web",
            "pg --workspace /srv/app healthcheck",
            "pg healthcheck --workspace /srv/app --json",
        ] {
            assert!(take(line).is_some(), "{line}");
        }
        for line in [
            "pg",
            "pg start",
            "pg stop --all",
            "pg healthcheck web",
            "pg status --json --json",
            "pg status -- a",
            "pg --workspace",
            "pg --workspace --json status",
            "pg logs web",
            "pg help status",
        ] {
            assert_eq!(take(line), None, "{line}");
        }
        // Non-UTF-8 names are clap's to refuse; a non-UTF-8 workspace is a path.
        use std::os::unix::ffi::OsStringExt;
        let odd = std::ffi::OsString::from_vec(vec![b'w', 0xff]);
        let args = |w: &std::ffi::OsString, name: &std::ffi::OsString| {
            [
                "pg".into(),
                "--workspace".into(),
                w.clone(),
                "status".into(),
                name.clone(),
            ]
        };
        assert!(parse_plain(&args(&odd, &"a".into())).is_some());
        assert!(parse_plain(&args(&"w".into(), &odd)).is_none());
    }

    #[test]
    fn the_definition_passes_claps_own_checks() {
        Cli::command().debug_assert();
        whole_command().debug_assert();
    }

    /// Under `defer`, a doc comment on a type a subcommand takes its
    /// arguments from would replace the subcommand's own help line once the
    /// arguments are defined.
    #[test]
    fn defining_a_subcommands_arguments_keeps_its_help_line() {
        let before: Vec<_> = Cli::command()
            .get_subcommands()
            .map(|s| {
                (
                    s.get_name().to_string(),
                    s.get_about().map(|a| a.to_string()),
                )
            })
            .collect();
        let mut built = Cli::command();
        built.build();
        for (name, about) in before {
            let sub = built.find_subcommand(&name).unwrap();
            assert!(about.is_some(), "{name} has no help line");
            assert_eq!(sub.get_about().map(|a| a.to_string()), about, "{name}");
        }
    }

    #[test]
    fn the_whole_command_defines_cron_and_export_as_parsing_does() {
        let mut parsing = Cli::command();
        parsing.build();
        let mut whole = whole_command();
        whole.build();
        for name in ["cron", "export"] {
            let p = parsing.find_subcommand(name).unwrap();
            let w = whole.find_subcommand(name).unwrap();
            assert!(!names(p).is_empty(), "{name}");
            assert_eq!(names(p), names(w), "{name}");
            assert_eq!(
                p.is_subcommand_required_set(),
                w.is_subcommand_required_set()
            );
            assert_eq!(
                p.is_arg_required_else_help_set(),
                w.is_arg_required_else_help_set()
            );
            for sub in p.get_subcommands() {
                let ids = |c: &clap::Command| -> Vec<String> {
                    c.get_arguments().map(|a| a.get_id().to_string()).collect()
                };
                let other = w.find_subcommand(sub.get_name()).unwrap();
                assert_eq!(ids(sub), ids(other), "{name} {}", sub.get_name());
            }
            // What the completions offer after `help cron`: the deferred
            // definition alone loses these.
            let help = whole.find_subcommand("help").unwrap();
            let mut under_help = names(help.find_subcommand(name).unwrap());
            under_help.retain(|n| n != "help");
            let mut expected = names(w);
            expected.retain(|n| n != "help");
            assert_eq!(under_help, expected, "help {name}");
        }
    }
}

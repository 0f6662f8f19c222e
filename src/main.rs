//! process-guardian: keeps long-running background processes alive.
//! The entry point: parse, run, turn an error into a message and an exit code.

#![forbid(unsafe_code)]
use clap::Parser;
use process_guardian::{cli, commands, error, proc, supervise};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // The supervisor skips clap and everything only the CLI needs; and the
    // command line's locals stay out of this frame, which sits above the
    // supervisor's loop for its whole life.
    if args.get(1).map(String::as_str) == Some("supervise") {
        std::process::exit(supervise::main(&args[2..]));
    }
    // A readiness probe, started by a supervisor: as light as the supervisor.
    if args.get(1).map(String::as_str) == Some("probe") {
        std::process::exit(process_guardian::probe::main(&args[2..]));
    }
    std::process::exit(command_line(&args));
}

/// The command line: parse, run, print; the exit code.
#[inline(never)]
fn command_line(args: &[String]) -> i32 {
    // A command-line tool whose reader went away (`status | head -1`) ends
    // quietly, as Unix tools do, instead of panicking on a broken pipe.
    proc::default_sigpipe();
    // Asked for JSON, before clap has had a say (a usage error is JSON too).
    let wants_json = args
        .iter()
        .skip(1)
        .take_while(|a| *a != "--")
        .any(|a| a == "--json");
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                error::EXIT_USAGE
            } else {
                error::EXIT_OK
            };
            if wants_json && code != error::EXIT_OK {
                let text = e.render().to_string();
                let first = text
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .trim_start_matches("error: ");
                commands::output::print_error_json(code, first);
            } else {
                let _ = e.print();
            }
            return code;
        }
    };
    let as_json = cli.json;
    match commands::run(cli) {
        Ok(out) => {
            commands::print(&out);
            out.code
        }
        Err(e) => {
            if as_json {
                commands::output::print_error_json(e.exit_code(), &e.to_string());
            } else {
                eprintln!("process-guardian: {e}");
            }
            e.exit_code()
        }
    }
}

//! process-guardian: keeps long-running background processes alive.
//! The entry point: parse, run, turn an error into a message and an exit code.

// Rust's own start-up is skipped (see `main`).
#![no_main]
#![deny(unsafe_code)]
use std::ffi::{OsStr, OsString};

use clap::Parser;
use process_guardian::{cli, commands, error, proc, supervise};

/// Called by the C runtime in place of Rust's start-up, which on every exec
/// read /proc/self/maps (to place a guard page the kernel already keeps)
/// and set up a stack for a stack-overflow message: a tenth of a
/// millisecond of CPU a process here, and a `start` execs this binary
/// twice. What it did that matters is done here: descriptors 0 to 2 are
/// made to exist, and SIGPIPE is ignored where it was (the supervisor and
/// its probes); the arguments are read by std as before.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
extern "C" fn main(
    _argc: std::ffi::c_int,
    _argv: *const *const std::ffi::c_char,
) -> std::ffi::c_int {
    proc::reopen_closed_stdio();
    // As bytes: an argument that is not UTF-8 (a workspace's path, say) is
    // passed on exactly or refused with a message, never a panic.
    let args: Vec<OsString> = std::env::args_os().collect();
    let first = args.get(1).map(OsString::as_os_str);
    // The supervisor skips clap and everything only the CLI needs; and the
    // command line's locals stay out of this frame, which sits above the
    // supervisor's loop for its whole life.
    if first == Some(OsStr::new("supervise")) {
        proc::ignore_sigpipe();
        std::process::exit(supervise::main(&args[2..]));
    }
    // A readiness probe, started by a supervisor: as light as the supervisor.
    if first == Some(OsStr::new("probe")) {
        proc::ignore_sigpipe();
        std::process::exit(process_guardian::probe::main(&args[2..]));
    }
    std::process::exit(command_line(&args));
}

/// The command line: parse, run, print; the exit code.
#[inline(never)]
fn command_line(args: &[OsString]) -> i32 {
    // A command-line tool whose reader went away (`status | head -1`) ends
    // quietly, as Unix tools do, instead of panicking on a broken pipe.
    proc::default_sigpipe();
    // Asked for JSON, before clap has had a say (a usage error is JSON too).
    let wants_json = args
        .iter()
        .skip(1)
        .take_while(|a| *a != "--")
        .any(|a| a == "--json");
    let parsed = cli::parse_plain(args).map_or_else(|| cli::Cli::try_parse_from(args), Ok);
    let cli = match parsed {
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

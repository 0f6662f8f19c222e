//! process-guardian: keeps long-running background processes alive.
//! The entry point: parse, run, turn an error into a message and an exit code.

#![forbid(unsafe_code)]
use clap::Parser;
use process_guardian::{cli, commands, error, proc, supervise};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // The supervisor skips clap and everything only the CLI needs.
    if args.get(1).map(String::as_str) == Some("supervise") {
        std::process::exit(supervise::main(&args[2..]));
    }
    // A command-line tool whose reader went away (`status | head -1`) ends
    // quietly, as Unix tools do, instead of panicking on a broken pipe.
    proc::default_sigpipe();
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                error::EXIT_USAGE
            } else {
                error::EXIT_OK
            };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let code = match commands::run(cli) {
        Ok(out) => {
            commands::print(&out);
            out.code
        }
        Err(e) => {
            eprintln!("process-guardian: {e}");
            e.exit_code()
        }
    };
    std::process::exit(code);
}

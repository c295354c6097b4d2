//! The `kargo` binary: the Kargo CLI, and `kargo server`.
//!
//! `main` parses the command line, runs one command and maps the outcome to an exit code: 0 on
//! success, 1 with `Error: <message>` on stderr otherwise. A closed stdout (`kargo ... | head`)
//! is not an error.

mod cli;
mod server;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            eprintln!("Error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn run(cli: cli::Cli) -> anyhow::Result<()> {
    match cli.command {
        cli::Command::Server(args) => server::run(args),
    }
}

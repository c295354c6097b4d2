//! The `kargo` binary: the Kargo CLI, and `kargo server`.
//!
//! `main` parses the command line, runs one command and maps the outcome to an exit code: 0 on
//! success, 1 with `Error: <message>` on stderr otherwise (command-line mistakes included). A
//! closed stdout (`kargo ... | head`) is not an error.
//!
//! Modules: [`cli`] defines every command and flag (help and completions come from it);
//! [`commands`] runs them; [`api`] builds the REST calls as values and [`client`] sends them;
//! [`config`] owns the configuration file and environment; [`output`], [`yaml`] and
//! [`jsonpath`] turn objects into text. `server` runs the API server from `kargo-server`.

mod api;
mod cli;
mod client;
mod commands;
mod config;
mod jsonpath;
mod output;
mod server;
mod sso;
mod yaml;

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser;

/// mimalloc rather than glibc's malloc: the server allocates on every request from several
/// threads, and glibc's arena locks showed up as most of its futex calls under load
/// (`docs/performance.md`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            return match cli::parse_failure(&err) {
                cli::ParseFailure::Info(text) => {
                    let _ = std::io::stdout().write_all(text.as_bytes());
                    ExitCode::SUCCESS
                }
                cli::ParseFailure::Mistake(line) => {
                    eprintln!("Error: {line}");
                    ExitCode::FAILURE
                }
            };
        }
    };
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
            || cause
                .downcast_ref::<commands::Error>()
                .is_some_and(commands::Error::is_broken_pipe)
    })
}

fn run(cli: cli::Cli) -> anyhow::Result<()> {
    match cli.command {
        cli::Command::Server(args) => server::run(*args),
        command => {
            let env = config::Environment::from_process()?;
            let mut stdout = std::io::stdout().lock();
            let mut stderr = std::io::stderr().lock();
            let mut ctx = commands::Context {
                env: &env,
                out: &mut stdout,
                err: &mut stderr,
                now_ms: output::now_ms(),
            };
            Ok(commands::run(&mut ctx, command)?)
        }
    }
}

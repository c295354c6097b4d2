//! The `kargo` binary: the Kargo CLI, and `kargo server`.
//!
//! `main` parses the command line, runs one command and maps the outcome to an exit code: 0 on
//! success, 1 with `Error: <message>` on stderr otherwise (command-line mistakes included). A
//! closed stdout (`kargo ... | head`) is not an error.
//!
//! Modules: [`cli`] defines every command and flag (help and completions come from it);
//! [`completion`] completes names from the server in the shell; [`commands`] runs them; [`api`] builds the REST calls as values and [`client`] sends them;
//! [`config`] owns the configuration file and environment; [`output`], [`yaml`] and
//! [`jsonpath`] turn objects into text; [`credentials`] turns a new token into a kubeconfig or
//! `KARGO_*` variables. `server` runs the API server from `kargo-server`.

mod api;
mod cli;
mod client;
mod commands;
mod completion;
mod config;
mod credentials;
mod jsonpath;
mod logs;
mod manifest;
mod output;
mod selector;
mod server;
mod sso;
mod watch;
mod yaml;

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser;

/// This build: the version, and the commit `build.rs` found (empty from a source archive).
pub(crate) const BUILD: kargo_api::version::Build = kargo_api::version::Build {
    version: env!("CARGO_PKG_VERSION"),
    git_commit: env!("KARGO_GIT_COMMIT"),
    git_tree_state: "",
    build_date: env!("KARGO_BUILD_DATE"),
};

/// mimalloc rather than glibc's malloc: the server allocates on every request from several
/// threads, and glibc's arena locks showed up as most of its futex calls under load
/// (`docs/performance.md`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // A run by the shell's completion script (`KARGO_COMPLETE=bash kargo -- WORDS`): print the
    // candidates and exit, before anything else writes to stdout.
    clap_complete::CompleteEnv::with_factory(<cli::Cli as clap::CommandFactory>::command)
        .var(completion::VAR)
        .complete();
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
            eprintln!("Error: {}", one_line(&err));
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes as `what: why: cause`, each said once: a message that already ends
/// with its cause's text (a wrapper whose message includes its source) does not repeat it, so
/// no error reads `listening on ...: Address already in use: Address already in use`.
pub(crate) fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if text.is_empty() || line.ends_with(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
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

#[cfg(test)]
mod tests {
    use super::one_line;

    #[derive(Debug, thiserror::Error)]
    #[error("listening on 127.0.0.1:1: {0}")]
    struct SaysItsSource(#[source] std::io::Error);

    #[test]
    fn a_cause_already_in_its_wrappers_message_is_said_once() {
        let io = std::io::Error::from(std::io::ErrorKind::AddrInUse);
        let err = anyhow::Error::new(SaysItsSource(io)).context("starting");
        assert_eq!(
            one_line(&err),
            "starting: listening on 127.0.0.1:1: address in use"
        );
    }

    #[test]
    fn distinct_causes_are_all_said() {
        let err = anyhow::anyhow!("no such file").context("reading a.yaml");
        assert_eq!(one_line(&err), "reading a.yaml: no such file");
    }
}

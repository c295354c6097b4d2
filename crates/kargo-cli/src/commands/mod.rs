//! The commands that talk to a Kargo API server or edit the configuration. Each one checks its
//! flags, resolves the project and server from the configuration, sends its requests and prints
//! through [`crate::output`]. Nothing is sent before every flag rule has passed.

mod apply;
mod config;
mod create;
mod delete;
mod describe;
mod federated;
mod federated_identity;
mod get;
mod lifecycle;
mod login;
mod role;
mod version;
mod whoami;

use std::io::Write;

use crate::api::Scope;
use crate::cli::{self, ClientFlags, Command, ProjectFlag, ScopeFlags, UsageError};
use crate::client::{Client, ClientError, Connection};
use crate::config::{ConfigError, ConfigFile, Environment};
use crate::jsonpath::JsonPathError;
use crate::output::Kind;
use crate::sso::SsoError;
use crate::sso::refresh::RefreshError;

/// Why a command failed; printed as `Error: <message>` (one line per failure).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line breaks a rule.
    #[error(transparent)]
    Usage(#[from] UsageError),
    /// The configuration file.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The API server, or the way to it.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Single sign-on.
    #[error(transparent)]
    Sso(#[from] SsoError),
    /// The saved token expired and could not be renewed.
    #[error(transparent)]
    Refresh(#[from] RefreshError),
    /// `-o jsonpath=...`.
    #[error(transparent)]
    Template(#[from] JsonPathError),
    /// Writing the output.
    #[error("writing the output: {0}")]
    Io(std::io::Error),
    /// A document of `kargo apply` that is not an object it takes, or an object it could not
    /// apply: where it is (`roles.yaml: document 2`) and why.
    #[error("{place}: {message}")]
    Manifest {
        /// The file and document, or the object.
        place: String,
        /// Why.
        message: String,
    },
    /// Several failures (one per name of a multi-name command).
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\nError: "))]
    Several(Vec<Error>),
}

// Not `#[from]`: the message already names the cause, and a `source` besides would make the
// CLI, which prints an error's whole chain, say it twice.
impl From<std::io::Error> for Error {
    fn from(error: std::io::Error) -> Error {
        Error::Io(error)
    }
}

impl Error {
    /// Whether the output went to a closed pipe (`kargo get ... | head`): not worth reporting.
    pub fn is_broken_pipe(&self) -> bool {
        match self {
            Error::Io(e) => e.kind() == std::io::ErrorKind::BrokenPipe,
            Error::Several(errors) => errors.iter().any(Error::is_broken_pipe),
            _ => false,
        }
    }

    fn from_many(mut errors: Vec<Error>) -> Result<(), Error> {
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(Error::Several(errors)),
        }
    }
}

/// What a command works with: the environment, the clock and the output streams.
pub struct Context<'a> {
    /// The environment variables.
    pub env: &'a Environment,
    /// Standard output.
    pub out: &'a mut dyn Write,
    /// Standard error (notes such as `No resources found`).
    pub err: &'a mut dyn Write,
    /// Now, in milliseconds since the epoch (for ages).
    pub now_ms: i64,
}

impl Context<'_> {
    fn config(&self) -> Result<ConfigFile, Error> {
        Ok(ConfigFile::load(self.env.config_path()?)?)
    }

    /// The configuration of a command that talks to the server: "not logged in" comes before
    /// any other complaint (a missing `--project` after `kargo logout` is not the problem).
    fn logged_in_config(&self) -> Result<ConfigFile, Error> {
        let config = self.config()?;
        if !config.has_login(self.env) {
            return Err(ClientError::NotLoggedIn.into());
        }
        Ok(config)
    }

    /// A client for the configured server, or "not logged in". The file's token is renewed
    /// first when it is an expired ID token ([`login::current_token`]).
    fn client(&self, config: &ConfigFile, flags: &ClientFlags) -> Result<Client, Error> {
        let mut connection = self.connection(config, flags)?;
        if !self.env.replaces_the_file() {
            connection.token = Some(login::current_token(
                self,
                config,
                flags.insecure_skip_tls_verify,
            )?);
        }
        Ok(Client::new(connection)?)
    }

    /// The server and certificate checking of [`Context::client`], its token as configured
    /// (not renewed).
    fn connection(&self, config: &ConfigFile, flags: &ClientFlags) -> Result<Connection, Error> {
        Ok(config
            .connection(self.env, flags.insecure_skip_tls_verify)?
            .ok_or(ClientError::NotLoggedIn)?)
    }

    fn print(&mut self, text: &str) -> Result<(), Error> {
        self.out.write_all(text.as_bytes())?;
        self.out.flush()?;
        Ok(())
    }
}

/// A failure about the object `name` of `kind`, its "not found" naming the kind as the user
/// typed it ([`Kind::not_found_as_typed`]).
fn about(kind: Kind, name: &str, error: ClientError) -> Error {
    match error {
        ClientError::Api {
            status,
            message,
            request_id,
        } => {
            let message = kind.not_found_as_typed(name, &message).unwrap_or(message);
            ClientError::Api {
                status,
                message,
                request_id,
            }
            .into()
        }
        other => other.into(),
    }
}

const NO_PROJECT: &str =
    "--project is required (or set a default project with `kargo config set-project NAME`)";
const NO_SCOPE: &str = "either --project or --system is required (or set a default project with `kargo config set-project NAME`)";

/// The project of a project-only command.
fn project(config: &ConfigFile, flag: &ProjectFlag) -> Result<String, Error> {
    let project = config
        .project(flag.project.as_deref().map(str::trim))
        .ok_or_else(|| UsageError(NO_PROJECT.to_owned()))?;
    cli::check_name(&project)?;
    Ok(project)
}

/// The scope of a command that also works at the system level.
fn scope(config: &ConfigFile, flags: &ScopeFlags) -> Result<Scope, Error> {
    if flags.system {
        return Ok(Scope::System);
    }
    let project = config
        .project(flags.project.project.as_deref().map(str::trim))
        .ok_or_else(|| UsageError(NO_SCOPE.to_owned()))?;
    cli::check_name(&project)?;
    Ok(Scope::Project(project))
}

/// Runs one command (not `kargo server`, which `main` runs itself).
pub fn run(ctx: &mut Context<'_>, command: Command) -> Result<(), Error> {
    match command {
        Command::Login(args) => login::login(ctx, &args),
        Command::Logout => login::logout(ctx),
        Command::Whoami(args) => whoami::run(ctx, &args),
        Command::Config(command) => config::run(ctx, command),
        Command::Create(command) => create::run(ctx, command),
        Command::Get(command) => get::run(ctx, command),
        Command::Describe(command) => describe::run(ctx, command),
        Command::Delete(command) => delete::run(ctx, command),
        Command::Disable(command) => lifecycle::set_disabled(ctx, command, true),
        Command::Enable(command) => lifecycle::set_disabled(ctx, command, false),
        Command::Rotate(command) => lifecycle::rotate(ctx, command),
        Command::Grant(args) => role::change(ctx, &args, role::Direction::Grant),
        Command::Revoke(args) => role::change(ctx, &args, role::Direction::Revoke),
        Command::Apply(args) => apply::run(ctx, &args),
        Command::Completion(args) => {
            crate::completion::write_registration(args.shell, ctx.out)?;
            ctx.out.flush()?;
            Ok(())
        }
        Command::Version(args) => version::run(ctx, &args),
        Command::Server(_) => Err(UsageError("kargo server runs from main".to_owned()).into()),
    }
}

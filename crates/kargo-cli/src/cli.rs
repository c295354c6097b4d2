//! The command line: every command and flag, defined once; help and completions come from here.
//!
//! Parsing here is pure (no files, no network): clap reads the arguments into these structs and
//! the `validate` functions apply the rules clap cannot express (grant/revoke's one-of, `--claim`
//! syntax, names a URL could misread). The commands resolve the rest (default project, server)
//! from the configuration.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use clap_complete::engine::ArgValueCompleter;
use kargo_api::kargo::Claim;

use crate::completion;
use crate::jsonpath;
use crate::output::{OutputFormat, TokenOutput};
use crate::selector::Selector;

/// A command line that breaks a rule: one line saying which.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

fn usage(message: impl Into<String>) -> UsageError {
    UsageError(message.into())
}

const ABOUT: &str = "Kargo: manage projects, roles, ServiceAccounts and their tokens.";

const EXAMPLES: &str = "\
Examples:
  # Log in, then give a CI job its own identity and token
  kargo login https://kargo.example.com --admin --certificate-authority ca.crt
  kargo create serviceaccount --project my-project my-sa
  kargo grant --project my-project --role developer --service-account my-sa
  kargo create serviceaccounttoken --project my-project --service-account my-sa my-sa-token";

/// The other names of `serviceaccount` (create, describe, delete).
pub(crate) const SERVICE_ACCOUNT_ALIASES: [&str; 3] = ["serviceaccounts", "sa", "sas"];
/// The other names of `serviceaccounttoken` (create, describe, delete).
pub(crate) const TOKEN_ALIASES: [&str; 5] =
    ["serviceaccounttokens", "sat", "sats", "satoken", "satokens"];
/// The other names of `token`, a Kargo Role's API token (create, delete), as upstream's.
pub(crate) const API_TOKEN_ALIASES: [&str; 1] = ["tokens"];
/// The other names of `project` (create, describe, delete).
pub(crate) const PROJECT_ALIASES: [&str; 1] = ["projects"];
/// The other names of `role` (create, describe, delete).
pub(crate) const ROLE_ALIASES: [&str; 1] = ["roles"];
/// The other names of `federatedidentity` (create, delete).
pub(crate) const FEDERATED_IDENTITY_ALIASES: [&str; 3] = ["federatedidentities", "fid", "fids"];

/// Kargo: manage projects, roles, ServiceAccounts and their tokens.
#[derive(Debug, Parser)]
#[command(
    name = "kargo",
    version,
    about = ABOUT,
    long_about = None,
    after_help = EXAMPLES,
    disable_help_subcommand = true
)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Log in to a Kargo API server.
    #[command(after_help = "\
Examples:
  # Log in as the admin user, trusting the server's CA (prompts for the password)
  kargo login https://127.0.0.1:8443 --admin --certificate-authority kargo-data/tls/ca.crt

  # Log in non-interactively
  kargo login https://kargo.example.com --admin --password \"$KARGO_ADMIN_PASSWORD\"

  # Sign in as yourself through the server's OpenID provider (opens the browser)
  kargo login https://kargo.example.com --sso

  # The same with a fixed callback port (http://localhost:8085/auth/callback)
  kargo login https://kargo.example.com --sso --port 8085

  # Use a ServiceAccount token (a CI job), read from standard input
  kargo login https://kargo.example.com --token - --certificate-authority ca.crt < my-sa.token")]
    Login(LoginArgs),
    /// Log out: end the admin session on the server and remove the configuration file.
    #[command(after_help = "Examples:\n  kargo logout")]
    Logout,
    /// Show who the server says you are, and how you logged in.
    #[command(after_help = "Examples:\n  kargo whoami\n  kargo whoami -o yaml")]
    Whoami(WhoamiArgs),
    /// Show or change the CLI's configuration.
    #[command(subcommand, arg_required_else_help = false)]
    Config(ConfigCommand),
    /// Create a project, ServiceAccount, ServiceAccount token, role or API token.
    #[command(
        subcommand,
        arg_required_else_help = false,
        after_help = "Examples:\n  kargo create serviceaccount --project my-project my-sa"
    )]
    Create(CreateCommand),
    /// Display one or many projects, ServiceAccounts, ServiceAccount tokens, roles or API tokens.
    #[command(
        subcommand,
        arg_required_else_help = false,
        after_help = "Examples:\n  kargo get serviceaccounts --project my-project"
    )]
    Get(GetCommand),
    /// Show the details of projects, ServiceAccounts, ServiceAccount tokens or roles.
    #[command(
        subcommand,
        arg_required_else_help = false,
        after_help = "\
Examples:
  # A ServiceAccount: its labels, the roles granted to it and its tokens (never their values)
  kargo describe serviceaccount --project my-project my-sa

  # A role: the ServiceAccounts and claims it is granted to, and its rules
  kargo describe role --project my-project developer"
    )]
    Describe(DescribeCommand),
    /// Delete projects, ServiceAccounts, ServiceAccount tokens or roles by name.
    #[command(
        subcommand,
        arg_required_else_help = false,
        after_help = "Examples:\n  kargo delete serviceaccounttoken --project my-project my-sa-token"
    )]
    Delete(DeleteCommand),
    /// Disable ServiceAccount tokens or API tokens without deleting them: refused from the next
    /// request on, until enabled again.
    #[command(
        subcommand,
        arg_required_else_help = false,
        after_help = "Examples:\n  kargo disable serviceaccounttoken --project my-project my-sa-token"
    )]
    Disable(TokenStateCommand),
    /// Enable disabled ServiceAccount tokens or API tokens again.
    #[command(
        subcommand,
        arg_required_else_help = false,
        after_help = "Examples:\n  kargo enable serviceaccounttoken --project my-project my-sa-token"
    )]
    Enable(TokenStateCommand),
    /// Give a ServiceAccount token or an API token a new value, shown once; the old value can
    /// stay valid for a grace period.
    #[command(
        subcommand,
        arg_required_else_help = false,
        after_help = "Examples:\n  kargo rotate serviceaccounttoken --project my-project my-sa-token --grace 24h"
    )]
    Rotate(RotateCommand),
    /// Grant a role to ServiceAccounts or users with a claim, or a permission to a role.
    #[command(after_help = "\
Examples:
  # Grant a Kargo Role to a Kargo ServiceAccount
  kargo grant --project my-project --role developer --service-account my-sa

  # Grant a role to users whose OIDC claims match
  kargo grant --project my-project --role developer --claim email=alice@example.com

  # Grant a role permission to promote to the stage dev
  kargo grant --project my-project --role developer --resource-type stages --resource-name dev --verb promote")]
    Grant(RoleChangeArgs),
    /// Revoke a role from ServiceAccounts or users with a claim, or a permission from a role.
    #[command(after_help = "\
Examples:
  # Revoke a Kargo Role from a Kargo ServiceAccount
  kargo revoke --project my-project --role developer --service-account my-sa

  # Revoke a permission from a role
  kargo revoke --project my-project --role developer --resource-type stages --verb promote")]
    Revoke(RoleChangeArgs),
    /// Create or update projects, ServiceAccounts and roles from manifests (YAML or JSON).
    #[command(after_help = "\
Examples:
  # Apply a file: each object is created, configured (changed) or left unchanged
  kargo apply -f my-project.yaml

  # Apply every *.yaml, *.yml and *.json file of a directory, in name order
  kargo apply -f manifests/

  # Show what would change, changing nothing
  kargo apply -f my-project.yaml --dry-run=client

  # From standard input; documents without a namespace go to the project given
  cat role.yaml | kargo apply -p my-project -f -

Tokens are never applied: a manifest must not hold a token. Create them with
`kargo create serviceaccounttoken`.")]
    Apply(ApplyArgs),
    /// Print the script that loads shell completion (bash, zsh, fish, elvish, powershell).
    ///
    /// Besides commands and flags, it completes the names of projects, ServiceAccounts, tokens
    /// and roles, asking the server with the saved login (nothing when not logged in).
    #[command(after_help = "\
Examples:
  # Load completions into the current bash session (add the line to ~/.bashrc to keep them)
  source <(kargo completion bash)

  # zsh (in ~/.zshrc, after compinit)
  source <(kargo completion zsh)

  # fish
  kargo completion fish > ~/.config/fish/completions/kargo.fish

The script runs this kargo binary; load it again after moving or upgrading kargo.")]
    Completion(CompletionArgs),
    /// Show the client and server version information.
    #[command(after_help = "\
Examples:
  # Print the client and server version information
  kargo version

  # Print the client version information only
  kargo version --client")]
    Version(VersionArgs),
    /// Run the Kargo API server.
    Server(Box<crate::server::ServerArgs>),
}

/// Flags of `kargo version`.
#[derive(Debug, Clone, Default, Args)]
pub struct VersionArgs {
    /// Show the client version only (no server required).
    #[arg(long)]
    pub client: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub output: OutputFlag,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub client_flags: ClientFlags,
}

/// `--insecure-skip-tls-verify`, on every command that talks to the server.
#[derive(Debug, Clone, Default, Args)]
pub struct ClientFlags {
    /// Skip verification of the server's TLS certificate (insecure).
    ///
    /// Stored in the configuration by `kargo login`, so later commands skip it too.
    #[arg(long)]
    pub insecure_skip_tls_verify: bool,
}

/// `--project/-p`.
#[derive(Debug, Clone, Default, Args)]
pub struct ProjectFlag {
    /// The project (default: the one set with `kargo config set-project`).
    #[arg(short = 'p', long, value_name = "PROJECT", add = ArgValueCompleter::new(completion::projects))]
    pub project: Option<String>,
}

/// `--project/-p` or `--system`.
#[derive(Debug, Clone, Default, Args)]
pub struct ScopeFlags {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub project: ProjectFlag,
    /// Use the system level (namespace `kargo`) instead of a project.
    #[arg(long, conflicts_with = "project")]
    pub system: bool,
}

/// `-o/--output`.
#[derive(Debug, Clone, Default, Args)]
pub struct OutputFlag {
    /// Output format: json, yaml, name, wide or custom-columns=SPEC (tables only), or
    /// jsonpath=TEMPLATE.
    ///
    /// With json and yaml, one object prints as itself and several as a `List`.
    #[arg(short = 'o', long, value_name = "FORMAT", value_parser = OutputFormat::parse)]
    pub output: Option<OutputFormat>,
}

impl OutputFlag {
    /// `-o` for a command that prints one object: `wide` and `custom-columns` are for tables only.
    pub fn for_object(&self) -> Result<Option<&OutputFormat>, UsageError> {
        not_table(self.output.as_ref())
    }
}

fn not_table(format: Option<&OutputFormat>) -> Result<Option<&OutputFormat>, UsageError> {
    match format {
        Some(OutputFormat::Wide) => Err(usage(
            "-o wide is for tables (kargo get); use json, yaml, name or jsonpath=TEMPLATE",
        )),
        Some(OutputFormat::CustomColumns(_)) => Err(usage(
            "-o custom-columns is for tables (kargo get); use json, yaml, name or jsonpath=TEMPLATE",
        )),
        other => Ok(other),
    }
}

/// `-o/--output` of `kargo create serviceaccounttoken`.
#[derive(Debug, Clone, Default, Args)]
pub struct TokenOutputFlag {
    /// Output format: kubeconfig, env, json, yaml, name or jsonpath=TEMPLATE (default: the
    /// token once, in a banner).
    ///
    /// kubeconfig prints a kubeconfig for kubectl with the token, the server and its CA, and a
    /// context whose namespace is the project; env prints the KARGO_API_ADDRESS,
    /// KARGO_API_TOKEN and KARGO_CERTIFICATE_AUTHORITY lines a CI job sets. Both show the
    /// token, as the banner does; json, yaml, name and jsonpath print the created Secret.
    #[arg(short = 'o', long, value_name = "FORMAT", value_parser = TokenOutput::parse)]
    pub output: Option<TokenOutput>,
}

impl TokenOutputFlag {
    /// `-o`, with `wide` refused as for any one object.
    pub fn checked(&self) -> Result<Option<&TokenOutput>, UsageError> {
        if let Some(TokenOutput::Object(format)) = &self.output {
            not_table(Some(format))?;
        }
        Ok(self.output.as_ref())
    }
}

/// `-o/--output` and `--no-headers`, for `kargo get`.
#[derive(Debug, Clone, Default, Args)]
pub struct ListFlags {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub output: OutputFlag,
    /// Print tables without their header row.
    #[arg(long)]
    pub no_headers: bool,
    /// Only objects whose labels match, as kubectl's: `k=v`, `k!=v`, `k`, `!k`, `k in (a,b)`,
    /// `k notin (a)`, comma-separated (all must hold). Applied by the CLI to the list.
    #[arg(short = 'l', long, value_name = "SELECTOR", value_parser = Selector::parse, conflicts_with = "names")]
    pub selector: Option<Selector>,
    /// Add a last LABELS column (`k=v,k2=v2` or `<none>`) to tables.
    #[arg(long)]
    pub show_labels: bool,
    /// Keep `metadata.managedFields` in `-o json|yaml|jsonpath` output (left out otherwise, as
    /// kubectl does).
    #[arg(long)]
    pub show_managed_fields: bool,
    /// Sort by the value at a JSONPath (`.metadata.name`, `{.metadata.creationTimestamp}`):
    /// missing values first, numbers by value, strings lexically.
    #[arg(long, value_name = "JSONPATH", value_parser = parse_path)]
    pub sort_by: Option<jsonpath::Path>,
    /// After printing the objects, watch for changes and print each object that is added,
    /// changed or deleted, until interrupted (as `kubectl get -w`).
    #[arg(short = 'w', long)]
    pub watch: bool,
    /// Watch for changes without printing the objects first.
    #[arg(long)]
    pub watch_only: bool,
}

fn parse_path(text: &str) -> Result<jsonpath::Path, String> {
    jsonpath::Path::parse(text).map_err(|e| e.to_string())
}

/// `-A/--all-projects`, for `kargo get` of project objects.
#[derive(Debug, Clone, Default, Args)]
pub struct AllProjectsFlag {
    /// List across every project you can see (a PROJECT column first); no NAME arguments.
    #[arg(short = 'A', long, conflicts_with_all = ["project", "system", "names"])]
    pub all_projects: bool,
}

/// Flags of `kargo login`.
#[derive(Debug, Clone, Default, Args)]
pub struct LoginArgs {
    /// The API server's address (default: the last one logged in to); `https://` is assumed.
    #[arg(value_name = "URL")]
    pub address: Option<String>,
    /// Log in as the Kargo admin user.
    #[arg(long, conflicts_with = "sso")]
    pub admin: bool,
    /// The admin password; prompted for on the terminal (without echo) when omitted.
    #[arg(long, value_name = "PASSWORD", conflicts_with = "sso")]
    pub password: Option<String>,
    /// Sign in as yourself through the server's OpenID provider, in the browser (the URL is
    /// also printed, for a machine without one).
    #[arg(long)]
    pub sso: bool,
    /// Use this bearer token (a ServiceAccount token from `kargo create serviceaccounttoken`),
    /// checked with the server, then saved; `-` reads it from standard input.
    #[arg(long, value_name = "TOKEN", conflicts_with_all = ["admin", "sso", "password"])]
    pub token: Option<String>,
    /// For a CI job: exchange the job's own OIDC token in this file for a short-lived
    /// ServiceAccount token that trusts the job (no stored secret); exchanged again before a
    /// command when it is about to expire. `KARGO_FEDERATED_TOKEN` gives the token itself.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["admin", "sso", "password", "token"])]
    pub federated_token_file: Option<PathBuf>,
    /// With a federated token: the ServiceAccount to act as, `project/<p>/serviceaccount/<name>`,
    /// when several trust the job.
    #[arg(long, value_name = "SCOPE")]
    pub federated_scope: Option<String>,
    /// With --sso: the local port of the sign-in callback (`http://localhost:PORT/auth/callback`);
    /// 0 or none picks a free one. Stored, and reused by a later `kargo login`.
    #[arg(long, value_name = "PORT", requires = "sso")]
    pub port: Option<u16>,
    /// A PEM file with the CA that signed the server's certificate; stored in the configuration.
    #[arg(long, value_name = "FILE", conflicts_with = "insecure_skip_tls_verify")]
    pub certificate_authority: Option<PathBuf>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub client: ClientFlags,
}

/// Flags of `kargo whoami`.
#[derive(Debug, Clone, Default, Args)]
pub struct WhoamiArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub output: OutputFlag,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub client: ClientFlags,
}

/// `kargo config ...`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Display the configuration, with the bearer token masked.
    #[command(
        after_help = "Examples:\n  kargo config view\n  kargo config view -o json\n\n  # With the tokens (keep the output private)\n  kargo config view --raw"
    )]
    View(ConfigViewArgs),
    /// Set the default project of commands given no --project ("" unsets it).
    #[command(after_help = "Examples:\n  kargo config set-project my-project")]
    SetProject(SetProjectArgs),
    /// Display the default project.
    #[command(after_help = "Examples:\n  kargo config get-project")]
    GetProject,
}

/// Flags of `kargo config view`.
#[derive(Debug, Clone, Default, Args)]
pub struct ConfigViewArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub output: OutputFlag,
    /// Show the configuration as stored, tokens included (as upstream's `--raw`).
    #[arg(long)]
    pub raw: bool,
}

/// Arguments of `kargo config set-project`.
#[derive(Debug, Clone, Default, Args)]
pub struct SetProjectArgs {
    /// The project.
    #[arg(value_name = "NAME")]
    pub name: String,
}

/// `kargo create ...`
#[derive(Debug, Subcommand)]
pub enum CreateCommand {
    /// Create a project.
    #[command(
        visible_aliases = PROJECT_ALIASES,
        after_help = "Examples:\n  kargo create project my-project"
    )]
    Project(CreateProjectArgs),
    /// Create a Kargo ServiceAccount.
    #[command(
        name = "serviceaccount",
        visible_aliases = SERVICE_ACCOUNT_ALIASES,
        after_help = "Examples:\n  kargo create serviceaccount --project my-project my-sa"
    )]
    ServiceAccount(CreateServiceAccountArgs),
    /// Create a token for a Kargo ServiceAccount; its value is shown only once.
    #[command(
        name = "serviceaccounttoken",
        visible_aliases = TOKEN_ALIASES,
        after_help = "\
Examples:
  kargo create serviceaccounttoken --project my-project --service-account my-sa my-sa-token
  kargo create sat --project my-project --service-account my-sa my-sa-token-1

  # A token that stops working after 90 days
  kargo create sat --project my-project --service-account my-sa ci --expires-in 90d

  # A kubeconfig for kubectl, its context's namespace the project
  kargo create sat -p my-project --service-account my-sa ci -o kubeconfig > ci.kubeconfig

  # The KARGO_* variables of a CI job
  kargo create sat -p my-project --service-account my-sa ci -o env > ci.env"
    )]
    ServiceAccountToken(CreateTokenArgs),
    /// Create an API token of a Kargo Role (upstream Kargo's tokens); its value is shown only once.
    #[command(
        name = "token",
        visible_aliases = API_TOKEN_ALIASES,
        after_help = "\
Examples:
  kargo create token --project my-project --role developer my-token

  # A token of a system role, that stops working after 30 days
  kargo create token --system --role kargo-viewer viewer-token --expires-in 30d

  # A kubeconfig for kubectl, its context's namespace the project
  kargo create token -p my-project --role developer ci -o kubeconfig > ci.kubeconfig"
    )]
    Token(CreateApiTokenArgs),
    /// Create a Kargo Role (a ServiceAccount, Role and RoleBinding of one name).
    #[command(
        visible_aliases = ROLE_ALIASES,
        after_help = "\
Examples:
  kargo create role --project my-project developer
  kargo create role --project my-project developer --claim groups=devops"
    )]
    Role(CreateRoleArgs),
    /// Trust an outside identity (a CI job's OIDC token) to act as a Kargo ServiceAccount.
    #[command(
        name = "federatedidentity",
        visible_aliases = FEDERATED_IDENTITY_ALIASES,
        after_help = "\
Examples:
  # GitHub Actions jobs of acme/app on any branch
  kargo create federatedidentity --project my-project --service-account ci \\
    --issuer https://token.actions.githubusercontent.com \\
    --subject 'repo:acme/app:ref:refs/heads/*' --claim workflow=deploy"
    )]
    FederatedIdentity(CreateFederatedIdentityArgs),
}

/// Arguments of `kargo create federatedidentity`.
#[derive(Debug, Clone, Default, Args)]
pub struct CreateFederatedIdentityArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub project: ProjectFlag,
    /// The Kargo ServiceAccount that trusts the identity.
    #[arg(long, value_name = "NAME", required = true, add = ArgValueCompleter::new(completion::service_accounts))]
    pub service_account: String,
    /// The issuer of the CI job's OIDC tokens (https); the server's operator must allow it.
    #[arg(long, value_name = "URL", required = true)]
    pub issuer: String,
    /// The token's `sub`: exact, or a glob whose `*` matches within one `:`-separated part.
    #[arg(long, value_name = "SUBJECT", required = true)]
    pub subject: String,
    /// The audience the token must carry (default: the server's URL).
    #[arg(long, value_name = "AUDIENCE")]
    pub audience: Option<String>,
    /// A claim the token must carry with exactly this value, as NAME=VALUE (repeatable).
    #[arg(long = "claim", value_name = "NAME=VALUE")]
    pub claims: Vec<String>,
    /// The identity's name (default: `fid-` and a hash of issuer, subject and audience).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub client: ClientFlags,
}

/// Arguments of `kargo get federatedidentities`.
#[derive(Debug, Clone, Default, Args)]
pub struct GetFederatedIdentitiesArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub project: ProjectFlag,
    /// Only the identities this Kargo ServiceAccount trusts.
    #[arg(long, value_name = "NAME", add = ArgValueCompleter::new(completion::service_accounts))]
    pub service_account: Option<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub client: ClientFlags,
}

/// Arguments of `kargo delete federatedidentity`.
#[derive(Debug, Clone, Default, Args)]
pub struct DeleteFederatedIdentityArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub project: ProjectFlag,
    /// The ServiceAccount whose identity it is (needed only when several have one of that name).
    #[arg(long, value_name = "NAME", add = ArgValueCompleter::new(completion::service_accounts))]
    pub service_account: Option<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub delete: DeleteArgs,
}

/// Arguments of `kargo create project`.
#[derive(Debug, Clone, Default, Args)]
pub struct CreateProjectArgs {
    /// The project's name.
    #[arg(value_name = "NAME")]
    pub name: String,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub output: OutputFlag,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub client: ClientFlags,
}

/// Arguments of `kargo create serviceaccount`.
#[derive(Debug, Clone, Default, Args)]
pub struct CreateServiceAccountArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub project: ProjectFlag,
    /// The ServiceAccount's name.
    #[arg(value_name = "NAME")]
    pub name: String,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub output: OutputFlag,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub client: ClientFlags,
}

/// Arguments of `kargo create serviceaccounttoken`.
#[derive(Debug, Clone, Default, Args)]
pub struct CreateTokenArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub scope: ScopeFlags,
    /// The Kargo ServiceAccount the token authenticates as.
    #[arg(long, value_name = "NAME", required = true, add = ArgValueCompleter::new(completion::service_accounts))]
    pub service_account: String,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub token: NewTokenFlags,
}

/// Arguments of `kargo create token` (a Kargo Role's API token).
#[derive(Debug, Clone, Default, Args)]
pub struct CreateApiTokenArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub scope: ScopeFlags,
    /// The Kargo Role whose permissions the token has (its own ServiceAccount).
    #[arg(long, value_name = "ROLE", required = true, add = ArgValueCompleter::new(completion::roles))]
    pub role: String,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub token: NewTokenFlags,
}

/// What every token creation takes, whatever the token belongs to: its name, lifetime, output
/// and connection.
#[derive(Debug, Clone, Default, Args)]
pub struct NewTokenFlags {
    /// The token's name.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// The token stops working this long after its creation (`90d`, `12h`, `30m`, `30s`).
    /// Without it, the token lives as long as the server's default allows (by default, for ever).
    #[arg(long, value_name = "DURATION")]
    pub expires_in: Option<kargo_api::expiry::Lifetime>,
    /// What the token is for (one line, at most 256 characters), shown by `kargo get
    /// serviceaccounttokens -o wide`.
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub output: TokenOutputFlag,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub client: ClientFlags,
}

/// Arguments of `kargo create role`.
#[derive(Debug, Clone, Default, Args)]
pub struct CreateRoleArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub project: ProjectFlag,
    /// The role's name.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// An OIDC claim to grant the role to, as NAME=VALUE (repeatable; commas are part of VALUE).
    #[arg(long = "claim", value_name = "NAME=VALUE")]
    pub claims: Vec<String>,
    /// A description of the role.
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub output: OutputFlag,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub client: ClientFlags,
}

/// `kargo get ...`
#[derive(Debug, Subcommand)]
pub enum GetCommand {
    /// Display one or many projects.
    #[command(
        visible_alias = "project",
        after_help = "Examples:\n  kargo get projects\n  kargo get project my-project -o yaml"
    )]
    Projects(GetArgs),
    /// Display one or many Kargo ServiceAccounts.
    #[command(
        name = "serviceaccounts",
        visible_aliases = ["serviceaccount", "sa", "sas"],
        after_help = "\
Examples:
  kargo get serviceaccounts --project my-project
  kargo get sas --project my-project"
    )]
    ServiceAccounts(GetScopedArgs),
    /// Display one or many Kargo ServiceAccount tokens (their values redacted).
    #[command(
        name = "serviceaccounttokens",
        visible_aliases = ["serviceaccounttoken", "sat", "sats", "satoken", "satokens"],
        after_help = "\
Examples:
  kargo get serviceaccounttokens --project my-project
  kargo get serviceaccounttokens --project my-project --service-account my-sa
  kargo get serviceaccounttoken --project my-project my-sa-token -o yaml"
    )]
    ServiceAccountTokens(GetTokensArgs),
    /// Display one or many API tokens of Kargo Roles (their values redacted).
    #[command(
        name = "tokens",
        visible_alias = "token",
        after_help = "\
Examples:
  kargo get tokens --project my-project
  kargo get tokens --project my-project --role developer
  kargo get tokens --system
  kargo get token --project my-project my-token -o yaml"
    )]
    Tokens(GetApiTokensArgs),
    /// Display one or many Kargo Roles.
    #[command(
        visible_alias = "role",
        after_help = "Examples:\n  kargo get roles --project my-project\n  kargo get role --project my-project developer -o yaml"
    )]
    Roles(GetScopedArgs),
    /// Display the outside identities (CI jobs) the project's Kargo ServiceAccounts trust.
    #[command(
        name = "federatedidentities",
        visible_aliases = ["federatedidentity", "fid", "fids"],
        after_help = "\
Examples:
  kargo get federatedidentities --project my-project
  kargo get fid --project my-project --service-account ci"
    )]
    FederatedIdentities(GetFederatedIdentitiesArgs),
}

/// Arguments of `kargo get projects`.
#[derive(Debug, Clone, Default, Args)]
pub struct GetArgs {
    /// Names to get (default: all).
    #[arg(value_name = "NAME", add = ArgValueCompleter::new(completion::names))]
    pub names: Vec<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub list: ListFlags,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub client: ClientFlags,
}

/// Arguments of `kargo get serviceaccounts|roles`.
#[derive(Debug, Clone, Default, Args)]
pub struct GetScopedArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub scope: ScopeFlags,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub all: AllProjectsFlag,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub get: GetArgs,
}

/// Arguments of `kargo get serviceaccounttokens`.
#[derive(Debug, Clone, Default, Args)]
pub struct GetTokensArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub scope: ScopeFlags,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub all: AllProjectsFlag,
    /// Only the tokens of this Kargo ServiceAccount.
    #[arg(long, value_name = "NAME", add = ArgValueCompleter::new(completion::service_accounts))]
    pub service_account: Option<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub get: GetArgs,
}

/// Arguments of `kargo get tokens`.
#[derive(Debug, Clone, Default, Args)]
pub struct GetApiTokensArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub scope: ScopeFlags,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub all: AllProjectsFlag,
    /// Only the API tokens of this Kargo Role.
    #[arg(long, value_name = "ROLE", add = ArgValueCompleter::new(completion::roles))]
    pub role: Option<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub get: GetArgs,
}

/// `kargo describe ...`
#[derive(Debug, Subcommand)]
pub enum DescribeCommand {
    /// Show the details of projects: labels, phase, and how many ServiceAccounts and roles.
    #[command(
        visible_aliases = PROJECT_ALIASES,
        after_help = "Examples:\n  kargo describe project my-project"
    )]
    Project(DescribeArgs),
    /// Show the details of Kargo ServiceAccounts: the roles granted to them and their tokens.
    #[command(
        name = "serviceaccount",
        visible_aliases = SERVICE_ACCOUNT_ALIASES,
        after_help = "Examples:\n  kargo describe serviceaccount --project my-project my-sa"
    )]
    ServiceAccount(DescribeScopedArgs),
    /// Show the details of Kargo ServiceAccount tokens (never their values).
    #[command(
        name = "serviceaccounttoken",
        visible_aliases = TOKEN_ALIASES,
        after_help = "Examples:\n  kargo describe serviceaccounttoken --project my-project my-sa-token"
    )]
    ServiceAccountToken(DescribeScopedArgs),
    /// Show the details of API tokens of Kargo Roles (never their values).
    #[command(
        name = "token",
        visible_aliases = API_TOKEN_ALIASES,
        after_help = "Examples:\n  kargo describe token --project my-project my-token"
    )]
    Token(DescribeScopedArgs),
    /// Show the details of Kargo Roles: whom they are granted to, and their rules.
    #[command(
        visible_aliases = ROLE_ALIASES,
        after_help = "\
Examples:
  kargo describe role --project my-project developer
  kargo describe role --system kargo-admin"
    )]
    Role(DescribeScopedArgs),
}

/// Arguments of `kargo describe project`.
#[derive(Debug, Clone, Default, Args)]
pub struct DescribeArgs {
    /// Names to describe.
    #[arg(value_name = "NAME", required = true, add = ArgValueCompleter::new(completion::names))]
    pub names: Vec<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub client: ClientFlags,
}

/// Arguments of `kargo describe serviceaccount|serviceaccounttoken|role`.
#[derive(Debug, Clone, Default, Args)]
pub struct DescribeScopedArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub scope: ScopeFlags,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub describe: DescribeArgs,
}

/// `kargo delete ...`
#[derive(Debug, Subcommand)]
pub enum DeleteCommand {
    /// Delete projects, with everything in them.
    #[command(
        visible_aliases = PROJECT_ALIASES,
        after_help = "Examples:\n  kargo delete project my-project"
    )]
    Project(DeleteArgs),
    /// Delete Kargo ServiceAccounts, with their tokens and role grants.
    #[command(
        name = "serviceaccount",
        visible_aliases = SERVICE_ACCOUNT_ALIASES,
        after_help = "Examples:\n  kargo delete serviceaccount --project my-project my-sa"
    )]
    ServiceAccount(DeleteInProjectArgs),
    /// Delete Kargo ServiceAccount tokens; they stop working at once.
    #[command(
        name = "serviceaccounttoken",
        visible_aliases = TOKEN_ALIASES,
        after_help = "Examples:\n  kargo delete serviceaccounttoken --project my-project my-sa-token"
    )]
    ServiceAccountToken(DeleteTokenArgs),
    /// Delete API tokens of Kargo Roles; they stop working at once.
    #[command(
        name = "token",
        visible_aliases = API_TOKEN_ALIASES,
        after_help = "\
Examples:
  kargo delete token --project my-project my-token
  kargo delete token --system viewer-token"
    )]
    Token(DeleteTokenArgs),
    /// Delete Kargo Roles (their ServiceAccount, Role and RoleBinding).
    #[command(
        visible_aliases = ROLE_ALIASES,
        after_help = "Examples:\n  kargo delete role --project my-project developer"
    )]
    Role(DeleteInProjectArgs),
    /// Stop trusting outside identities; tokens exchanged for them stop working at once.
    #[command(
        name = "federatedidentity",
        visible_aliases = FEDERATED_IDENTITY_ALIASES,
        after_help = "Examples:\n  kargo delete federatedidentity --project my-project fid-1a2b3c4d"
    )]
    FederatedIdentity(DeleteFederatedIdentityArgs),
}

/// Arguments of `kargo delete project`.
#[derive(Debug, Clone, Default, Args)]
pub struct DeleteArgs {
    /// Names to delete.
    #[arg(value_name = "NAME", required = true, add = ArgValueCompleter::new(completion::names))]
    pub names: Vec<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub client: ClientFlags,
}

/// Arguments of `kargo delete serviceaccount|role`.
#[derive(Debug, Clone, Default, Args)]
pub struct DeleteInProjectArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub project: ProjectFlag,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub delete: DeleteArgs,
}

/// `kargo disable ...` and `kargo enable ...`
#[derive(Debug, Subcommand)]
pub enum TokenStateCommand {
    /// Kargo ServiceAccount tokens, by name.
    #[command(
        name = "serviceaccounttoken",
        visible_aliases = TOKEN_ALIASES,
        after_help = "Examples:\n  kargo disable serviceaccounttoken --project my-project my-sa-token\n  kargo enable sat --project my-project my-sa-token"
    )]
    ServiceAccountToken(DeleteTokenArgs),
    /// API tokens of Kargo Roles, by name.
    #[command(
        name = "token",
        visible_aliases = API_TOKEN_ALIASES,
        after_help = "Examples:\n  kargo disable token --project my-project my-token\n  kargo enable token --system viewer-token"
    )]
    Token(DeleteTokenArgs),
}

/// `kargo rotate ...`
#[derive(Debug, Subcommand)]
pub enum RotateCommand {
    /// Give a Kargo ServiceAccount token a new value (the same name and ServiceAccount); the
    /// new value is shown only once.
    #[command(
        name = "serviceaccounttoken",
        visible_aliases = TOKEN_ALIASES,
        after_help = "\
Examples:
  # A new value; the old one is refused at once
  kargo rotate serviceaccounttoken --project my-project my-sa-token

  # A new value; the old one keeps working for 24 hours, while clients move to the new one
  kargo rotate sat --project my-project my-sa-token --grace 24h

  # The new value as a kubeconfig for kubectl
  kargo rotate sat -p my-project my-sa-token -o kubeconfig > ci.kubeconfig"
    )]
    ServiceAccountToken(RotateTokenArgs),
    /// Give an API token of a Kargo Role a new value (the same name and role); the new value is
    /// shown only once.
    #[command(
        name = "token",
        visible_aliases = API_TOKEN_ALIASES,
        after_help = "\
Examples:
  kargo rotate token --project my-project my-token

  # The old value keeps working for an hour
  kargo rotate token --system viewer-token --grace 1h"
    )]
    Token(RotateTokenArgs),
}

/// Arguments of `kargo rotate serviceaccounttoken|token`.
#[derive(Debug, Clone, Default, Args)]
pub struct RotateTokenArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub scope: ScopeFlags,
    /// The token's name.
    #[arg(value_name = "NAME", add = ArgValueCompleter::new(completion::names))]
    pub name: String,
    /// How long the old value stays valid (`0`, `30m`, `24h`, `7d`); by default it is refused
    /// at once.
    #[arg(long, value_name = "DURATION")]
    pub grace: Option<kargo_api::token_lifecycle::Grace>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub output: TokenOutputFlag,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub client: ClientFlags,
}

/// Arguments of `kargo delete|disable|enable serviceaccounttoken|token`.
#[derive(Debug, Clone, Default, Args)]
pub struct DeleteTokenArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub scope: ScopeFlags,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub delete: DeleteArgs,
}

/// Flags of `kargo grant` and `kargo revoke`.
#[derive(Debug, Clone, Default, Args)]
pub struct RoleChangeArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub project: ProjectFlag,
    /// The role to grant or revoke, or whose permissions to change (required).
    #[arg(long, value_name = "ROLE", add = ArgValueCompleter::new(completion::roles))]
    pub role: Option<String>,
    /// A Kargo ServiceAccount of the project (repeatable, or comma-separated).
    #[arg(
        long = "service-account",
        value_name = "NAME",
        value_delimiter = ',',
        add = ArgValueCompleter::new(completion::service_accounts)
    )]
    pub service_accounts: Vec<String>,
    /// An OIDC claim, as NAME=VALUE (repeatable; commas are part of VALUE).
    #[arg(long = "claim", value_name = "NAME=VALUE")]
    pub claims: Vec<String>,
    /// The type of resource of a permission, e.g. stages (requires --verb).
    #[arg(long, value_name = "TYPE")]
    pub resource_type: Option<String>,
    /// The one resource of a permission (default: all of the type).
    #[arg(long, value_name = "NAME")]
    pub resource_name: Option<String>,
    /// A verb of a permission, e.g. promote (repeatable, or comma-separated).
    #[arg(long = "verb", value_name = "VERB", value_delimiter = ',')]
    pub verbs: Vec<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub output: OutputFlag,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub client: ClientFlags,
}

/// What `kargo grant`/`kargo revoke` changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleChange {
    /// Grant the role to (revoke it from) these ServiceAccounts.
    ServiceAccounts(Vec<String>),
    /// Grant the role to (revoke it from) users with these claims.
    Claims(Vec<Claim>),
    /// Grant (revoke) a permission to (from) the role.
    Permission {
        /// The resource type.
        resource_type: String,
        /// One resource, or all.
        resource_name: Option<String>,
        /// The verbs.
        verbs: Vec<String>,
    },
}

impl RoleChangeArgs {
    /// The role and the change, or the first rule the flags break: `--role` is required; exactly
    /// one of `--claim`, `--service-account`, `--resource-type`; `--resource-type` goes with
    /// `--verb` (and `--resource-name` with `--resource-type`).
    pub fn validate(&self) -> Result<(String, RoleChange), UsageError> {
        let role = self
            .role
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .ok_or_else(|| usage("--role is required"))?;
        check_name(role)?;
        let given: Vec<&str> = [
            (!self.claims.is_empty(), "--claim"),
            (!self.service_accounts.is_empty(), "--service-account"),
            (self.resource_type.is_some(), "--resource-type"),
        ]
        .into_iter()
        .filter_map(|(present, flag)| present.then_some(flag))
        .collect();
        match given.as_slice() {
            [] => {
                if !self.verbs.is_empty() {
                    return Err(usage("--verb requires --resource-type"));
                }
                if self.resource_name.is_some() {
                    return Err(usage("--resource-name requires --resource-type"));
                }
                return Err(usage(
                    "one of --claim, --service-account or --resource-type is required",
                ));
            }
            [_] => {}
            [first, second, ..] => {
                return Err(usage(format!(
                    "{first} and {second} cannot be used together: give only one of --claim, --service-account or --resource-type"
                )));
            }
        }
        if self.resource_type.is_none() {
            if !self.verbs.is_empty() {
                return Err(usage("--verb requires --resource-type"));
            }
            if self.resource_name.is_some() {
                return Err(usage("--resource-name requires --resource-type"));
            }
        }
        let change = if let Some(resource_type) = &self.resource_type {
            let resource_type = resource_type.trim();
            if resource_type.is_empty() {
                return Err(usage("--resource-type must not be empty"));
            }
            let verbs: Vec<String> = self
                .verbs
                .iter()
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .collect();
            if verbs.is_empty() {
                return Err(usage("--resource-type requires --verb"));
            }
            RoleChange::Permission {
                resource_type: resource_type.to_owned(),
                resource_name: self
                    .resource_name
                    .as_deref()
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .map(str::to_owned),
                verbs,
            }
        } else if !self.claims.is_empty() {
            RoleChange::Claims(parse_claims(&self.claims)?)
        } else {
            let mut names = Vec::new();
            for name in &self.service_accounts {
                let name = name.trim();
                check_name(name).map_err(|_| {
                    usage(format!(
                        "--service-account must name a ServiceAccount, got {name:?}"
                    ))
                })?;
                if !names.iter().any(|n| n == name) {
                    names.push(name.to_owned());
                }
            }
            RoleChange::ServiceAccounts(names)
        };
        Ok((role.to_owned(), change))
    }
}

/// Parses `--claim NAME=VALUE` flags (split at the first `=`; values are not split on commas)
/// into claims, one per name in order of appearance, values deduplicated.
pub fn parse_claims(flags: &[String]) -> Result<Vec<Claim>, UsageError> {
    let mut claims: Vec<Claim> = Vec::new();
    for flag in flags {
        let (name, value) = flag
            .split_once('=')
            .map(|(n, v)| (n.trim(), v.trim()))
            .filter(|(n, v)| !n.is_empty() && !v.is_empty())
            .ok_or_else(|| usage(format!("--claim must be NAME=VALUE, got {flag:?}")))?;
        match claims.iter_mut().find(|c| c.name == name) {
            Some(claim) if !claim.values.iter().any(|v| v == value) => {
                claim.values.push(value.to_owned())
            }
            Some(_) => {}
            None => claims.push(Claim {
                name: name.to_owned(),
                values: vec![value.to_owned()],
            }),
        }
    }
    Ok(claims)
}

/// A name that goes into a URL path: not empty, and not `.` or `..` (which a URL would read as
/// "this" or "the parent" route).
pub fn check_name(name: &str) -> Result<(), UsageError> {
    match name {
        "" => Err(usage("a name must not be empty")),
        "." | ".." => Err(usage(format!(
            "invalid name {name:?}: may not be '.' or '..'"
        ))),
        _ => Ok(()),
    }
}

/// Names given on the command line, trimmed, checked, duplicates dropped.
pub fn names(given: &[String]) -> Result<Vec<String>, UsageError> {
    let mut names: Vec<String> = Vec::new();
    for name in given {
        let name = name.trim();
        check_name(name)?;
        if !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
    }
    Ok(names)
}

/// `--dry-run` of `kargo apply`: kubectl's values; only `client` (and `none`) are served.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum DryRun {
    /// Apply for real.
    #[default]
    None,
    /// Print what would be done, change nothing.
    Client,
}

/// Arguments of `kargo apply`.
#[derive(Debug, Clone, Default, Args)]
pub struct ApplyArgs {
    /// A manifest file, a directory of them (`*.yaml`, `*.yml`, `*.json`) or `-` for standard
    /// input; may be repeated.
    #[arg(short = 'f', long = "filename", value_name = "FILE", required = true)]
    pub filenames: Vec<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub project: ProjectFlag,
    /// `client`: print what would be done (`... created (dry run)`) and change nothing.
    #[arg(
        long,
        value_enum,
        value_name = "STRATEGY",
        num_args = 0..=1,
        require_equals = true,
        default_value = "none",
        default_missing_value = "client"
    )]
    pub dry_run: DryRun,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub output: OutputFlag,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub client: ClientFlags,
}

/// Arguments of `kargo completion`.
#[derive(Debug, Clone, Args)]
pub struct CompletionArgs {
    /// The shell.
    #[arg(value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

/// What to do with a command line clap rejected: print help or the version (exit 0), or one
/// `Error: ...` line (exit 1).
pub enum ParseFailure {
    /// `--help` or `--version`: clap's text, for stdout.
    Info(String),
    /// A mistake: the message for `Error: `.
    Mistake(String),
}

/// Classifies a clap error and flattens its message to one line: clap's first paragraph, and
/// its "a similar ... exists" tips (the usage and other tips that follow are left out).
pub fn parse_failure(err: &clap::Error) -> ParseFailure {
    use clap::error::ErrorKind;
    let rendered = err.render().to_string();
    match err.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => ParseFailure::Info(rendered),
        _ => {
            let text = rendered.strip_prefix("error: ").unwrap_or(&rendered);
            let mut paragraphs = text.split("\n\n");
            let first = paragraphs.next().unwrap_or(text);
            let mut parts = vec![
                first
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect::<Vec<_>>()
                    .join(" "),
            ];
            parts.extend(
                paragraphs
                    .flat_map(str::lines)
                    .map(str::trim)
                    .filter(|l| l.starts_with("tip: ") && l.contains("similar"))
                    .map(str::to_owned),
            );
            ParseFailure::Mistake(parts.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    fn parse(args: &[&str]) -> Result<Cli, String> {
        Cli::try_parse_from(std::iter::once("kargo").chain(args.iter().copied())).map_err(|e| {
            match parse_failure(&e) {
                ParseFailure::Info(text) => format!("info: {text}"),
                ParseFailure::Mistake(line) => line,
            }
        })
    }

    #[test]
    fn the_command_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_alias_of_the_spec_reaches_the_same_command() {
        let sa = ["serviceaccount", "serviceaccounts", "sa", "sas"];
        let sat = [
            "serviceaccounttoken",
            "serviceaccounttokens",
            "sat",
            "sats",
            "satoken",
            "satokens",
        ];
        for alias in sa {
            assert!(matches!(
                parse(&["get", alias, "-p", "p"]).map(|c| c.command),
                Ok(Command::Get(GetCommand::ServiceAccounts(_)))
            ));
            assert!(matches!(
                parse(&["create", alias, "-p", "p", "x"]).map(|c| c.command),
                Ok(Command::Create(CreateCommand::ServiceAccount(_)))
            ));
            assert!(matches!(
                parse(&["delete", alias, "-p", "p", "x"]).map(|c| c.command),
                Ok(Command::Delete(DeleteCommand::ServiceAccount(_)))
            ));
            assert!(matches!(
                parse(&["describe", alias, "-p", "p", "x"]).map(|c| c.command),
                Ok(Command::Describe(DescribeCommand::ServiceAccount(_)))
            ));
        }
        for alias in sat {
            assert!(matches!(
                parse(&["get", alias]).map(|c| c.command),
                Ok(Command::Get(GetCommand::ServiceAccountTokens(_)))
            ));
            assert!(matches!(
                parse(&["create", alias, "--service-account", "sa", "x"]).map(|c| c.command),
                Ok(Command::Create(CreateCommand::ServiceAccountToken(_)))
            ));
            assert!(matches!(
                parse(&["delete", alias, "x"]).map(|c| c.command),
                Ok(Command::Delete(DeleteCommand::ServiceAccountToken(_)))
            ));
            assert!(matches!(
                parse(&["describe", alias, "--system", "x"]).map(|c| c.command),
                Ok(Command::Describe(DescribeCommand::ServiceAccountToken(_)))
            ));
        }
        for alias in ["project", "projects"] {
            assert!(matches!(
                parse(&["get", alias]).map(|c| c.command),
                Ok(Command::Get(GetCommand::Projects(_)))
            ));
            assert!(matches!(
                parse(&["create", alias, "p"]).map(|c| c.command),
                Ok(Command::Create(CreateCommand::Project(_)))
            ));
            assert!(matches!(
                parse(&["delete", alias, "p"]).map(|c| c.command),
                Ok(Command::Delete(DeleteCommand::Project(_)))
            ));
            assert!(matches!(
                parse(&["describe", alias, "p"]).map(|c| c.command),
                Ok(Command::Describe(DescribeCommand::Project(_)))
            ));
        }
        for alias in ["role", "roles"] {
            assert!(matches!(
                parse(&["get", alias]).map(|c| c.command),
                Ok(Command::Get(GetCommand::Roles(_)))
            ));
            assert!(matches!(
                parse(&["create", alias, "r"]).map(|c| c.command),
                Ok(Command::Create(CreateCommand::Role(_)))
            ));
            assert!(matches!(
                parse(&["delete", alias, "r"]).map(|c| c.command),
                Ok(Command::Delete(DeleteCommand::Role(_)))
            ));
            assert!(matches!(
                parse(&["describe", alias, "r"]).map(|c| c.command),
                Ok(Command::Describe(DescribeCommand::Role(_)))
            ));
        }
    }

    #[test]
    fn project_has_a_short_flag_and_conflicts_with_system() {
        let Ok(Command::Get(GetCommand::ServiceAccounts(args))) =
            parse(&["get", "sas", "-p", "my-project", "a", "b"]).map(|c| c.command)
        else {
            panic!("get sas did not parse");
        };
        assert_eq!(args.scope.project.project.as_deref(), Some("my-project"));
        assert_eq!(args.get.names, ["a", "b"]);
        assert_eq!(
            parse(&["get", "sas", "--project", "p", "--system"]).err(),
            Some("the argument '--project <PROJECT>' cannot be used with '--system'".to_owned())
        );
    }

    #[test]
    fn output_and_no_headers_parse() {
        let Ok(Command::Get(GetCommand::ServiceAccountTokens(args))) = parse(&[
            "get",
            "sats",
            "-o",
            "wide",
            "--no-headers",
            "--service-account",
            "sa",
        ])
        .map(|c| c.command) else {
            panic!("get sats did not parse");
        };
        assert_eq!(args.get.list.output.output, Some(OutputFormat::Wide));
        assert!(args.get.list.no_headers);
        assert_eq!(args.service_account.as_deref(), Some("sa"));
        assert_eq!(
            parse(&["get", "sats", "-o", "table"]).err(),
            Some("invalid value 'table' for '--output <FORMAT>': unknown output format \"table\" (use json, yaml, name, wide, custom-columns=SPEC or jsonpath=TEMPLATE)".to_owned())
        );
    }

    #[test]
    fn upstreams_token_commands_are_api_tokens_of_roles() {
        for alias in ["token", "tokens"] {
            assert!(matches!(
                parse(&["get", alias, "--role", "r"]).map(|c| c.command),
                Ok(Command::Get(GetCommand::Tokens(GetApiTokensArgs { role: Some(r), .. }))) if r == "r"
            ));
            assert!(matches!(
                parse(&["create", alias, "--system", "--role", "kargo-viewer", "t"]).map(|c| c.command),
                Ok(Command::Create(CreateCommand::Token(CreateApiTokenArgs { role, .. }))) if role == "kargo-viewer"
            ));
            assert!(matches!(
                parse(&["delete", alias, "-p", "p", "t"]).map(|c| c.command),
                Ok(Command::Delete(DeleteCommand::Token(_)))
            ));
            assert!(matches!(
                parse(&["describe", alias, "-p", "p", "t"]).map(|c| c.command),
                Ok(Command::Describe(DescribeCommand::Token(_)))
            ));
            assert!(matches!(
                parse(&["disable", alias, "-p", "p", "t", "u"]).map(|c| c.command),
                Ok(Command::Disable(TokenStateCommand::Token(args))) if args.delete.names == ["t", "u"]
            ));
            assert!(matches!(
                parse(&["enable", alias, "--system", "t"]).map(|c| c.command),
                Ok(Command::Enable(TokenStateCommand::Token(_)))
            ));
            assert!(matches!(
                parse(&["rotate", alias, "-p", "p", "t", "--grace", "5s"]).map(|c| c.command),
                Ok(Command::Rotate(RotateCommand::Token(RotateTokenArgs {
                    grace: Some(_),
                    ..
                })))
            ));
        }
        let missing = parse(&["create", "token", "t"]).map(|_| ()).unwrap_err();
        assert!(missing.contains("--role <ROLE>"), "{missing}");
        let both = parse(&["create", "token", "--role", "r", "-p", "p", "--system", "t"])
            .map(|_| ())
            .unwrap_err();
        assert!(both.contains("cannot be used with"), "{both}");
    }

    #[test]
    fn a_token_prints_as_a_kubeconfig_or_env_and_other_formats_keep_their_error() {
        let token_output = |format: &str| {
            parse(&[
                "create",
                "sat",
                "--service-account",
                "sa",
                "t",
                "-o",
                format,
            ])
            .map(|c| match c.command {
                Command::Create(CreateCommand::ServiceAccountToken(args)) => {
                    args.token.output.output
                }
                _ => panic!("create sat did not parse"),
            })
        };
        assert_eq!(
            token_output("kubeconfig"),
            Ok(Some(TokenOutput::Kubeconfig))
        );
        assert_eq!(token_output("env"), Ok(Some(TokenOutput::Env)));
        assert_eq!(
            token_output("yaml"),
            Ok(Some(TokenOutput::Object(OutputFormat::Yaml)))
        );
        assert_eq!(
            token_output("kube"),
            Err("invalid value 'kube' for '--output <FORMAT>': unknown output format \"kube\" (use kubeconfig, env, json, yaml, name or jsonpath=TEMPLATE)".to_owned())
        );
        let wide = TokenOutputFlag {
            output: Some(TokenOutput::Object(OutputFormat::Wide)),
        };
        assert_eq!(
            wide.checked().err().map(|e| e.0),
            Some(
                "-o wide is for tables (kargo get); use json, yaml, name or jsonpath=TEMPLATE"
                    .to_owned()
            )
        );
        // The other commands do not take them.
        assert!(
            parse(&["create", "sa", "-p", "p", "x", "-o", "kubeconfig"])
                .err()
                .is_some_and(|e| e.contains("unknown output format \"kubeconfig\""))
        );
    }

    #[test]
    fn clap_mistakes_become_one_line() {
        let cases = [
            (
                &["create", "sat", "-p", "p", "t"][..],
                "the following required arguments were not provided: --service-account <NAME>",
            ),
            (
                &["delete", "sa", "-p", "p"][..],
                "the following required arguments were not provided: <NAME>...",
            ),
            (
                &["get", "sas", "--bogus"][..],
                "unexpected argument '--bogus' found",
            ),
            (
                &["get", "stages"][..],
                "unrecognized subcommand 'stages'; tip: some similar subcommands exist: 'sat', 'satokens', 'sa', 'sats'",
            ),
            (
                &["get", "serviceacount"][..],
                "unrecognized subcommand 'serviceacount'; tip: some similar subcommands exist: 'serviceaccounttokens', 'serviceaccounttoken', 'serviceaccounts', 'serviceaccount'",
            ),
            (
                &["describe", "role", "-p", "p"][..],
                "the following required arguments were not provided: <NAME>...",
            ),
            (
                &["describe", "rol", "x"][..],
                "unrecognized subcommand 'rol'; tip: some similar subcommands exist: 'roles', 'role'",
            ),
            (
                &["get", "sas", "--projet", "p"][..],
                "unexpected argument '--projet' found; tip: a similar argument exists: '--project'",
            ),
            (
                &[
                    "login",
                    "https://x",
                    "--insecure-skip-tls-verify",
                    "--certificate-authority",
                    "ca",
                ][..],
                "the argument '--insecure-skip-tls-verify' cannot be used with '--certificate-authority <FILE>'",
            ),
            (
                &["login", "https://x", "--sso", "--admin"][..],
                "the argument '--sso' cannot be used with '--admin'",
            ),
            (
                &["login", "https://x", "--sso", "--password", "p"][..],
                "the argument '--sso' cannot be used with '--password <PASSWORD>'",
            ),
            (
                &["login", "https://x", "--port", "8085"][..],
                "the following required arguments were not provided: --sso",
            ),
            (
                &["login", "https://x", "--sso", "--port", "70000"][..],
                "invalid value '70000' for '--port <PORT>': 70000 is not in 0..=65535",
            ),
        ];
        for (args, expected) in cases {
            assert_eq!(parse(args).err().as_deref(), Some(expected), "{args:?}");
        }
        assert!(matches!(parse(&["--help"]), Err(text) if text.starts_with("info: ")));
        assert!(matches!(parse(&[]), Err(text) if text.starts_with("info: ")));
        assert_eq!(
            parse(&["get"]).err().as_deref(),
            Some(
                "'kargo get' requires a subcommand but one was not provided [subcommands: projects, project, serviceaccounts, serviceaccount, sa, sas, serviceaccounttokens, serviceaccounttoken, sat, sats, satoken, satokens, tokens, token, roles, role, federatedidentities, federatedidentity, fid, fids]"
            )
        );
    }

    fn grant(args: &[&str]) -> Result<(String, RoleChange), String> {
        match parse(&[&["grant"][..], args].concat()) {
            Ok(Cli {
                command: Command::Grant(g),
            }) => g.validate().map_err(|e| e.0),
            Ok(_) => Err("not grant".into()),
            Err(e) => Err(e),
        }
    }

    #[test]
    fn grant_and_revoke_flag_rules() {
        let role = |change| Ok(("developer".to_owned(), change));
        type Case<'a> = (&'a [&'a str], Result<(String, RoleChange), String>);
        let cases: Vec<Case> = vec![
            (
                &["--role", "developer", "--service-account", "my-sa"],
                role(RoleChange::ServiceAccounts(vec!["my-sa".into()])),
            ),
            (
                &["--role", "developer", "--service-account", "a,b", "--service-account", "a"],
                role(RoleChange::ServiceAccounts(vec!["a".into(), "b".into()])),
            ),
            (
                &["--role", "developer", "--claim", "groups=a,b", "--claim", "groups=c", "--claim", "email=x@y"],
                role(RoleChange::Claims(vec![
                    Claim { name: "groups".into(), values: vec!["a,b".into(), "c".into()] },
                    Claim { name: "email".into(), values: vec!["x@y".into()] },
                ])),
            ),
            (
                &["--role", "developer", "--resource-type", "stages", "--resource-name", "dev", "--verb", "get,promote"],
                role(RoleChange::Permission {
                    resource_type: "stages".into(),
                    resource_name: Some("dev".into()),
                    verbs: vec!["get".into(), "promote".into()],
                }),
            ),
            (&["--service-account", "my-sa"], Err("--role is required".into())),
            (&["--role", "", "--service-account", "my-sa"], Err("--role is required".into())),
            (
                &["--role", "developer"],
                Err("one of --claim, --service-account or --resource-type is required".into()),
            ),
            (
                &["--role", "developer", "--claim", "a=b", "--service-account", "x"],
                Err("--claim and --service-account cannot be used together: give only one of --claim, --service-account or --resource-type".into()),
            ),
            (
                &["--role", "developer", "--service-account", "x", "--resource-type", "stages", "--verb", "get"],
                Err("--service-account and --resource-type cannot be used together: give only one of --claim, --service-account or --resource-type".into()),
            ),
            (
                &["--role", "developer", "--resource-type", "stages"],
                Err("--resource-type requires --verb".into()),
            ),
            (
                &["--role", "developer", "--verb", "get"],
                Err("--verb requires --resource-type".into()),
            ),
            (
                &["--role", "developer", "--service-account", "x", "--verb", "get"],
                Err("--verb requires --resource-type".into()),
            ),
            (
                &["--role", "developer", "--claim", "a=b", "--resource-name", "dev"],
                Err("--resource-name requires --resource-type".into()),
            ),
            (
                &["--role", "developer", "--claim", "novalue"],
                Err("--claim must be NAME=VALUE, got \"novalue\"".into()),
            ),
            (
                &["--role", "developer", "--claim", "=v"],
                Err("--claim must be NAME=VALUE, got \"=v\"".into()),
            ),
            (
                &["--role", "developer", "--service-account", ".."],
                Err("--service-account must name a ServiceAccount, got \"..\"".into()),
            ),
        ];
        for (args, expected) in cases {
            assert_eq!(grant(args), expected, "{args:?}");
        }
    }

    #[test]
    fn claim_values_keep_their_equals_signs() {
        assert_eq!(
            parse_claims(&["sub=a=b".into()]),
            Ok(vec![Claim {
                name: "sub".into(),
                values: vec!["a=b".into()]
            }])
        );
    }

    #[test]
    fn names_are_trimmed_deduplicated_and_never_path_tricks() {
        assert_eq!(
            names(&[" a ".into(), "b".into(), "a".into()]),
            Ok(vec!["a".into(), "b".into()])
        );
        assert_eq!(
            names(&["..".into()]),
            Err(usage("invalid name \"..\": may not be '.' or '..'"))
        );
        assert_eq!(names(&["".into()]), Err(usage("a name must not be empty")));
    }

    #[test]
    fn every_cli_command_has_help_with_an_example() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            let path = format!("{path} {}", command.get_name());
            let has_example = command
                .get_after_help()
                .is_some_and(|h| h.to_string().contains("Example"));
            let is_group = command.has_subcommands() && command.get_name() != "server";
            if !has_example && !is_group {
                missing.push(path.clone());
            }
            for sub in command.get_subcommands() {
                walk(sub, &path, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "", &mut missing);
        assert_eq!(missing, Vec::<String>::new());
    }
}

#[cfg(test)]
mod documented {
    use clap::CommandFactory;

    use super::Cli;

    /// `docs/cli.md`, which must name every command and flag of the client.
    const CLI_DOCS: &str = include_str!("../../../docs/cli.md");
    /// The operator's documents, which must name every command and flag of `kargo server`.
    const SERVER_DOCS: [&str; 2] = [
        include_str!("../../../docs/operations.md"),
        include_str!("../../../docs/storage.md"),
    ];

    /// Every command path (`kargo get serviceaccounts`) and every long flag under it.
    fn walk(command: &clap::Command, path: &str, out: &mut Vec<(String, Vec<String>)>) {
        let flags = command
            .get_arguments()
            .filter(|a| !a.is_hide_set())
            .filter_map(|a| a.get_long())
            .filter(|l| !matches!(*l, "help" | "version"))
            .map(|l| format!("--{l}"))
            .collect();
        out.push((path.to_owned(), flags));
        for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
            if sub.get_name() == "help" {
                continue;
            }
            walk(sub, &format!("{path} {}", sub.get_name()), out);
        }
    }

    #[test]
    fn docs_cli_md_names_every_command_and_flag() {
        let mut commands = Vec::new();
        walk(&Cli::command(), "kargo", &mut commands);
        let mut missing = Vec::new();
        for (path, flags) in &commands {
            let mentioned = |text: &str| {
                CLI_DOCS.contains(text)
                    || (path.starts_with("kargo server")
                        && SERVER_DOCS.iter().any(|d| d.contains(text)))
            };
            let leaf = path.rsplit(' ').next().unwrap_or_default();
            if !mentioned(leaf) {
                missing.push(format!("command `{path}`"));
            }
            for flag in flags {
                if !mentioned(flag) {
                    missing.push(format!("`{path} {flag}`"));
                }
            }
        }
        assert!(
            missing.is_empty(),
            "docs/cli.md (or, for `kargo server`, docs/operations.md and docs/storage.md) does not mention:\n{}",
            missing.join("\n")
        );
    }
}

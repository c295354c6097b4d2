//! `kargo server`: runs the API server in this process; `kargo server export`, `import` and
//! `migrate` copy a whole store (backups, and moving from SQLite to etcd); `reencrypt` rewrites
//! encrypted values with the first key (key rotation).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use kargo_server::http::limits::Limits;
use kargo_server::server::EtcdSecurity;
use kargo_server::{ServerConfig, StoreConfig};

/// Flags of `kargo server`.
#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "Examples:\n  kargo server --address 127.0.0.1:8443 --data-dir ./kargo-data\n  kargo server --store etcd --etcd-endpoints http://10.0.0.1:2379,http://10.0.0.2:2379,http://10.0.0.3:2379"
)]
pub struct ServerArgs {
    /// Copy a whole store instead of serving.
    #[command(subcommand)]
    pub command: Option<StoreCommand>,
    /// Address to serve HTTPS on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub address: SocketAddr,
    /// Where the objects live, and the data directory.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Also serve `/metrics` on plain HTTP, without authentication, at this address (bind it
    /// to a loopback or private address; the main port serves `/metrics` to users allowed to
    /// `get` the non-resource URL `/metrics`).
    #[arg(long, env = "KARGO_METRICS_ADDRESS", value_name = "ADDRESS")]
    pub metrics_address: Option<SocketAddr>,
    /// Extra DNS names or IP addresses for the serving certificate (repeatable).
    #[arg(long = "tls-san", value_name = "NAME")]
    pub tls_sans: Vec<String>,
    /// Issuer of bound service-account tokens (default: the server's URL).
    #[arg(long = "service-account-issuer", value_name = "URL")]
    pub issuer: Option<String>,
    /// How often to drop store history older than one interval (`30s`, `5m`, `1h`; `0` never).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub compaction_interval: Duration,
    /// How long Events are kept after they last happened (`1h`, `30m`; kube-apiserver's flag).
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_positive_duration)]
    pub event_ttl: Duration,
    /// How often to write when tokens were last used to their Secrets (`30s`, `1m`); a
    /// Secret is written at most once a minute whatever this is (see docs/operations.md,
    /// "Token last use").
    #[arg(long, value_name = "DURATION", default_value = "1m", value_parser = parse_interval)]
    pub token_last_used_interval: Duration,
    /// On SIGTERM, keep serving this long with `/readyz` failing (`[-]shutdown`), so that load
    /// balancers stop sending requests before the server stops (kube-apiserver's flag).
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "0s",
        value_parser = parse_duration,
        env = "KARGO_SHUTDOWN_DELAY_DURATION"
    )]
    pub shutdown_delay_duration: Duration,
    /// Disable the admin account: `kargo login --admin` is refused (the admin kubeconfig still
    /// works). With single sign-on configured, this leaves no shared password.
    #[arg(long, env = "KARGO_DISABLE_ADMIN_ACCOUNT")]
    pub disable_admin_account: bool,
    /// The largest object the server stores, in bytes as encoded (JSON); writes that would
    /// store a larger one get 413.
    #[arg(long, value_name = "BYTES", default_value_t = kargo_api::limits::MAX_OBJECT_BYTES as u64,
          value_parser = clap::value_parser!(u64).range(1024..=(64 << 20)))]
    pub max_object_size: u64,
    /// End every admin session at start-up: admin tokens issued before it stop working, on
    /// every replica (a new `KARGO_ADMIN_PASSWORD` does the same).
    #[arg(long)]
    pub revoke_admin_sessions: bool,
    /// Start a new, empty store in place of an unusable `DATA_DIR/kargo.db` (empty, not a
    /// Kargo store, damaged), which is renamed to `kargo.db.unusable-<time>`. Refused when the
    /// file holds a Kargo store, and with `--store etcd`.
    #[arg(long)]
    pub init: bool,
    /// Encrypt Secrets and the server's own keys in the store with the keys of this Kubernetes
    /// `EncryptionConfiguration` file (see docs/operations.md, "Encryption at rest").
    #[arg(long, env = "KARGO_ENCRYPTION_CONFIG", value_name = "FILE")]
    pub encryption_config: Option<PathBuf>,
    /// Log filter (`info`, `debug`, `kargo_server=debug`).
    #[arg(long, env = "KARGO_LOG", default_value = "info")]
    pub log: String,
    /// How log lines are written on stderr: `text` for a person, `json` (one object per line)
    /// for a log collector.
    #[arg(long, env = "KARGO_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: crate::logs::LogFormat,
    /// Bounds on connections, requests and watches.
    #[command(flatten)]
    pub limits: Box<LimitArgs>,
    /// Single sign-on through an OpenID provider.
    #[command(flatten)]
    pub oidc: Box<OidcArgs>,
    /// Workload identity federation: CI jobs exchange their OIDC tokens.
    #[command(flatten)]
    pub federation: Box<FederationArgs>,
    /// The audit log.
    #[command(flatten)]
    pub audit: AuditArgs,
    /// Bounds on token lifetimes.
    #[command(flatten)]
    pub token_lifetimes: TokenLifetimeArgs,
}

/// Bounds on the lifetime of tokens created through the Kargo API (see docs/operations.md,
/// "Token lifetime").
#[derive(Debug, Args, Clone)]
pub struct TokenLifetimeArgs {
    /// The longest a token may live (`90d`, `12h`, `30m`, `30s`): a longer `--expires-in` is
    /// refused, and a token asked for without expiry gets it when no default is set.
    #[arg(
        long,
        env = "KARGO_MAX_TOKEN_LIFETIME",
        value_name = "DURATION",
        help_heading = "Token lifetime"
    )]
    pub max_token_lifetime: Option<kargo_api::expiry::Lifetime>,
    /// The lifetime of a token asked for without expiry (`90d`, `12h`, `30m`, `30s`); at most
    /// `--max-token-lifetime`. Without either, such a token never expires.
    #[arg(
        long,
        env = "KARGO_DEFAULT_TOKEN_LIFETIME",
        value_name = "DURATION",
        help_heading = "Token lifetime"
    )]
    pub default_token_lifetime: Option<kargo_api::expiry::Lifetime>,
}

impl TokenLifetimeArgs {
    /// The bounds, or an error when the default exceeds the maximum.
    fn lifetimes(&self) -> anyhow::Result<kargo_server::kargo::TokenLifetimes> {
        Ok(kargo_server::kargo::TokenLifetimes::new(
            self.max_token_lifetime,
            self.default_token_lifetime,
        )?)
    }
}

/// The audit log (see docs/operations.md, "Audit log"), named as kube-apiserver's flags.
#[derive(Debug, Args, Clone)]
pub struct AuditArgs {
    /// Write an audit log, one JSON `audit.k8s.io/v1` Event per line, to this file (`-`:
    /// standard output). Without it, nothing is audited.
    #[arg(
        long,
        env = "KARGO_AUDIT_LOG_PATH",
        value_name = "FILE",
        help_heading = "Audit log"
    )]
    pub audit_log_path: Option<PathBuf>,
    /// Which requests are audited: `metadata` (requests that change something, and
    /// authentication failures) or `request` (every request). Bodies are never logged.
    #[arg(
        long,
        value_enum,
        default_value = "metadata",
        requires = "audit_log_path",
        help_heading = "Audit log"
    )]
    pub audit_level: AuditLevelArg,
    /// Rotate the audit log when it would pass this size, in megabytes (0: never).
    #[arg(
        long,
        value_name = "MB",
        default_value_t = 100,
        requires = "audit_log_path",
        help_heading = "Audit log"
    )]
    pub audit_log_maxsize: u64,
    /// How many rotated audit logs to keep (0: all).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 10,
        requires = "audit_log_path",
        help_heading = "Audit log"
    )]
    pub audit_log_maxbackup: usize,
}

/// `--audit-level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuditLevelArg {
    /// Requests that change something, and authentication failures.
    Metadata,
    /// Every request.
    Request,
}

impl AuditArgs {
    /// The configuration, when a path is given.
    pub fn config(&self) -> Option<kargo_server::http::audit::AuditConfig> {
        use kargo_server::http::audit::{AuditConfig, AuditLevel};
        Some(AuditConfig {
            path: self.audit_log_path.clone()?,
            level: match self.audit_level {
                AuditLevelArg::Metadata => AuditLevel::Metadata,
                AuditLevelArg::Request => AuditLevel::Request,
            },
            max_size_mb: self.audit_log_maxsize,
            max_backups: self.audit_log_maxbackup,
        })
    }
}

/// Single sign-on: people sign in with the company's OpenID provider (see docs, "SSO").
#[derive(Debug, Args, Clone)]
pub struct OidcArgs {
    /// The OpenID provider's issuer URL (https); its ID tokens are accepted.
    #[arg(
        long,
        env = "KARGO_OIDC_ISSUER_URL",
        value_name = "URL",
        help_heading = "Single sign-on (OIDC)"
    )]
    pub oidc_issuer_url: Option<String>,
    /// The client id registered for Kargo at the provider (an accepted audience).
    #[arg(
        long,
        env = "KARGO_OIDC_CLIENT_ID",
        value_name = "ID",
        requires = "oidc_issuer_url",
        help_heading = "Single sign-on (OIDC)"
    )]
    pub oidc_client_id: Option<String>,
    /// The client id of the CLI (a public client with PKCE; also an accepted audience).
    #[arg(
        long,
        env = "KARGO_OIDC_CLI_CLIENT_ID",
        value_name = "ID",
        requires = "oidc_issuer_url",
        help_heading = "Single sign-on (OIDC)"
    )]
    pub oidc_cli_client_id: Option<String>,
    /// The scopes clients ask for, comma-separated.
    #[arg(
        long,
        env = "KARGO_OIDC_SCOPES",
        value_name = "SCOPE,...",
        value_delimiter = ',',
        default_value = "openid,profile,email,groups",
        help_heading = "Single sign-on (OIDC)"
    )]
    pub oidc_scopes: Vec<String>,
    /// The ID-token claim that names a person.
    #[arg(long, env = "KARGO_OIDC_USERNAME_CLAIM", value_name = "CLAIM",
          default_value = kargo_server::auth::oidc::DEFAULT_USERNAME_CLAIM, help_heading = "Single sign-on (OIDC)")]
    pub oidc_username_claim: String,
    /// The ID-token claim holding a person's groups.
    #[arg(long, env = "KARGO_OIDC_GROUPS_CLAIM", value_name = "CLAIM",
          default_value = kargo_server::auth::oidc::DEFAULT_GROUPS_CLAIM, help_heading = "Single sign-on (OIDC)")]
    pub oidc_groups_claim: String,
    /// A PEM CA bundle to trust for the provider, besides the system's roots.
    #[arg(
        long,
        env = "KARGO_OIDC_CA_FILE",
        value_name = "FILE",
        help_heading = "Single sign-on (OIDC)"
    )]
    pub oidc_ca_file: Option<PathBuf>,
    /// People with this claim are system-wide admins (`email=a@b.c`; repeatable; the variable
    /// takes a comma-separated list).
    #[arg(
        long,
        env = "KARGO_OIDC_ADMIN_CLAIMS",
        value_name = "NAME=VALUE",
        value_delimiter = ',',
        help_heading = "Single sign-on (OIDC)"
    )]
    pub oidc_admin_claim: Vec<String>,
    /// People with this claim are system-wide viewers (`groups=auditors`; repeatable; the
    /// variable takes a comma-separated list).
    #[arg(
        long,
        env = "KARGO_OIDC_VIEWER_CLAIMS",
        value_name = "NAME=VALUE",
        value_delimiter = ',',
        help_heading = "Single sign-on (OIDC)"
    )]
    pub oidc_viewer_claim: Vec<String>,
}

impl OidcArgs {
    /// The server's OIDC settings, `None` without an issuer.
    fn config(&self) -> anyhow::Result<Option<kargo_server::auth::oidc::OidcConfig>> {
        use kargo_server::auth::oidc::{OidcConfig, parse_claim_setting};
        let Some(issuer) = &self.oidc_issuer_url else {
            return Ok(None);
        };
        let Some(client_id) = &self.oidc_client_id else {
            anyhow::bail!("--oidc-client-id is required with --oidc-issuer-url");
        };
        let mut config = OidcConfig::new(issuer.clone(), client_id.clone());
        config.cli_client_id = self.oidc_cli_client_id.clone().filter(|c| !c.is_empty());
        config.scopes = self
            .oidc_scopes
            .iter()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        config.username_claim = self.oidc_username_claim.clone();
        config.groups_claim = self.oidc_groups_claim.clone();
        if let Some(path) = &self.oidc_ca_file {
            config.ca_pem = Some(
                std::fs::read(path)
                    .with_context(|| format!("reading --oidc-ca-file {}", path.display()))?,
            );
        }
        for setting in &self.oidc_admin_claim {
            parse_claim_setting(setting, &mut config.admin_claims)
                .map_err(|e| anyhow::anyhow!("--oidc-admin-claim: {e}"))?;
        }
        for setting in &self.oidc_viewer_claim {
            parse_claim_setting(setting, &mut config.viewer_claims)
                .map_err(|e| anyhow::anyhow!("--oidc-viewer-claim: {e}"))?;
        }
        Ok(Some(config))
    }
}

/// Workload identity federation: CI jobs exchange their own OIDC token for a short-lived
/// ServiceAccount token (see docs/federation.md).
#[derive(Debug, Args, Clone)]
pub struct FederationArgs {
    /// A CI issuer whose OIDC tokens may be exchanged (https; repeatable; the variable takes a
    /// comma-separated list). Trusts naming any other issuer are never honoured, and the
    /// server fetches keys from these issuers only.
    #[arg(
        long,
        env = "KARGO_FEDERATED_ISSUERS",
        value_name = "URL",
        value_delimiter = ',',
        help_heading = "Workload identity federation"
    )]
    pub federated_issuer: Vec<String>,
    /// A PEM CA bundle to trust for the federated issuers, besides the system's roots.
    #[arg(
        long,
        env = "KARGO_FEDERATED_ISSUER_CA_FILE",
        value_name = "FILE",
        requires = "federated_issuer",
        help_heading = "Workload identity federation"
    )]
    pub federated_issuer_ca_file: Option<PathBuf>,
    /// The longest lifetime of a token issued by an exchange (default 1h; a request without
    /// `requested_lifetime` gets 15m, or this if shorter).
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_duration,
          help_heading = "Workload identity federation")]
    pub federated_token_max_lifetime: Duration,
}

impl FederationArgs {
    /// The server's federation settings, `None` without an issuer.
    fn config(&self) -> anyhow::Result<Option<kargo_server::auth::federation::FederationConfig>> {
        let issuers: Vec<String> = self
            .federated_issuer
            .iter()
            .map(|i| i.trim().to_owned())
            .filter(|i| !i.is_empty())
            .collect();
        if issuers.is_empty() {
            return Ok(None);
        }
        let mut config = kargo_server::auth::federation::FederationConfig::new(issuers);
        config.max_lifetime_secs = i64::try_from(self.federated_token_max_lifetime.as_secs())?;
        if let Some(path) = &self.federated_issuer_ca_file {
            config.ca_pem = Some(std::fs::read(path).with_context(|| {
                format!("reading --federated-issuer-ca-file {}", path.display())
            })?);
        }
        Ok(Some(config))
    }
}

/// The limits of `docs/operations.md` ("Limits"); defaults are kube-apiserver's where it has one.
#[derive(Debug, Args, Clone)]
pub struct LimitArgs {
    /// Time a client has to send a request header, from its first byte (slow clients are
    /// disconnected).
    #[arg(long, value_name = "DURATION", default_value = "32s", value_parser = parse_duration, help_heading = "Limits")]
    pub request_header_timeout: Duration,
    /// Time a connection with no request in flight stays open.
    #[arg(long, value_name = "DURATION", default_value = "90s", value_parser = parse_duration, help_heading = "Limits")]
    pub idle_connection_timeout: Duration,
    /// Open connections (default: the open-files limit less 256, at most 16384); past it new
    /// connections are closed at once.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..), help_heading = "Limits")]
    pub max_connections: Option<u64>,
    /// Open connections from one IPv4 address or IPv6 /64 (default: a quarter of
    /// --max-connections).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..), help_heading = "Limits")]
    pub max_connections_per_client: Option<u64>,
    /// HTTP/2 streams one connection may have open at once.
    #[arg(long, value_name = "N", default_value_t = kargo_server::http::limits::DEFAULT_HTTP2_MAX_STREAMS, value_parser = clap::value_parser!(u32).range(1..), help_heading = "Limits")]
    pub http2_max_streams_per_connection: u32,
    /// Reads (GET) served at once; past it a 429 (0: no limit).
    #[arg(long, value_name = "N", default_value_t = kargo_server::http::limits::DEFAULT_MAX_REQUESTS_INFLIGHT, help_heading = "Limits")]
    pub max_requests_inflight: usize,
    /// Other requests (writes, logins, reviews) served at once; past it a 429 (0: no limit).
    #[arg(long, value_name = "N", default_value_t = kargo_server::http::limits::DEFAULT_MAX_MUTATING_REQUESTS_INFLIGHT, help_heading = "Limits")]
    pub max_mutating_requests_inflight: usize,
    /// The longest a request other than a watch may take; past it a 504.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration, help_heading = "Limits")]
    pub request_timeout: Duration,
    /// A watch without timeoutSeconds ends after a random time between this and twice this.
    #[arg(long, value_name = "DURATION", default_value = "1800s", value_parser = parse_duration, help_heading = "Limits")]
    pub min_request_timeout: Duration,
    /// Watches open at once; past it a 429 (0: no limit).
    #[arg(long, value_name = "N", default_value_t = kargo_server::http::limits::DEFAULT_MAX_WATCHES, help_heading = "Limits")]
    pub max_watches: usize,
    /// Watches one user may have open at once; past it a 429 (0: no limit).
    #[arg(long, value_name = "N", default_value_t = kargo_server::http::limits::DEFAULT_MAX_WATCHES_PER_USER, help_heading = "Limits")]
    pub max_watches_per_user: usize,
}

impl LimitArgs {
    fn limits(&self) -> Limits {
        let count = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        Limits {
            header_timeout: self.request_header_timeout,
            idle_timeout: self.idle_connection_timeout,
            max_connections: self.max_connections.map(count),
            max_connections_per_client: self.max_connections_per_client.map(count),
            http2_max_streams: self.http2_max_streams_per_connection,
            max_requests_inflight: self.max_requests_inflight,
            max_mutating_requests_inflight: self.max_mutating_requests_inflight,
            request_timeout: self.request_timeout,
            min_request_timeout: self.min_request_timeout,
            max_watches: self.max_watches,
            max_watches_per_user: self.max_watches_per_user,
        }
    }
}

/// Which store, and the data directory.
#[derive(Debug, Args, Clone)]
pub struct StoreArgs {
    /// Directory for the SQLite store, the TLS material and the admin kubeconfig.
    #[arg(long, default_value = "kargo-data")]
    pub data_dir: PathBuf,
    /// The store: one SQLite file in the data directory, or an etcd cluster shared by replicas.
    #[arg(long = "store", value_enum, default_value = "sqlite")]
    pub kind: StoreKind,
    /// Client URLs of the etcd members, comma-separated (with `--store etcd`).
    #[arg(
        long,
        value_name = "URL,URL,...",
        value_delimiter = ',',
        required_if_eq("kind", "etcd")
    )]
    pub etcd_endpoints: Vec<String>,
    /// Prefix of every etcd key, for several installations on one cluster (e.g. `/kargo-prod`).
    #[arg(long, value_name = "PREFIX", default_value = "")]
    pub etcd_prefix: String,
    /// TLS and login to etcd.
    #[command(flatten)]
    pub etcd_security: EtcdSecurityArgs,
}

/// TLS and login to etcd, as kube-apiserver's flags of the same names.
#[derive(Args, Clone, Default)]
pub struct EtcdSecurityArgs {
    /// CA certificates (PEM) that sign the etcd members' certificates, for `https://`
    /// endpoints (default: the system's trusted roots).
    #[arg(long, value_name = "FILE", env = "KARGO_ETCD_CAFILE")]
    pub etcd_cafile: Option<PathBuf>,
    /// Client certificate (PEM) to present to etcd members that require one
    /// (`--client-cert-auth`).
    #[arg(
        long,
        value_name = "FILE",
        env = "KARGO_ETCD_CERTFILE",
        requires = "etcd_keyfile"
    )]
    pub etcd_certfile: Option<PathBuf>,
    /// Private key (PEM) of `--etcd-certfile`.
    #[arg(
        long,
        value_name = "FILE",
        env = "KARGO_ETCD_KEYFILE",
        requires = "etcd_certfile"
    )]
    pub etcd_keyfile: Option<PathBuf>,
    /// etcd user to log in as, on clusters with authentication enabled.
    #[arg(
        long,
        value_name = "USER",
        env = "KARGO_ETCD_USERNAME",
        requires = "etcd_password"
    )]
    pub etcd_username: Option<String>,
    /// Password of `--etcd-username`. Prefer the variable: a command line is visible to every
    /// user of the machine.
    #[arg(
        long,
        value_name = "PASSWORD",
        env = "KARGO_ETCD_PASSWORD",
        hide_env_values = true,
        requires = "etcd_username"
    )]
    pub etcd_password: Option<String>,
}

impl std::fmt::Debug for EtcdSecurityArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdSecurityArgs")
            .field("etcd_cafile", &self.etcd_cafile)
            .field("etcd_certfile", &self.etcd_certfile)
            .field("etcd_keyfile", &self.etcd_keyfile)
            .field("etcd_username", &self.etcd_username)
            .field(
                "etcd_password",
                &self.etcd_password.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl EtcdSecurityArgs {
    fn config(&self) -> EtcdSecurity {
        EtcdSecurity {
            ca_file: self.etcd_cafile.clone(),
            cert_file: self.etcd_certfile.clone(),
            key_file: self.etcd_keyfile.clone(),
            username: self.etcd_username.clone(),
            password: self.etcd_password.clone(),
        }
    }
}

/// The store backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StoreKind {
    /// One SQLite file (`DATA_DIR/kargo.db`): one server.
    Sqlite,
    /// An etcd v3 cluster: several servers.
    Etcd,
}

impl StoreArgs {
    fn config(&self) -> StoreConfig {
        match self.kind {
            StoreKind::Sqlite => StoreConfig::Sqlite,
            StoreKind::Etcd => StoreConfig::Etcd {
                endpoints: self.etcd_endpoints.clone(),
                prefix: self.etcd_prefix.clone(),
                security: self.etcd_security.config(),
            },
        }
    }
}

/// `kargo server export | import | migrate | reencrypt`.
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Write every key of the store to a file (a backup that either store can import). Stop the
    /// server first, or accept that the export is one consistent snapshot of a live store.
    #[command(
        after_help = "Examples:\n  kargo server export --data-dir ./kargo-data -o kargo-backup.json"
    )]
    Export {
        /// The store to read.
        #[command(flatten)]
        store: StoreArgs,
        /// The file to write (it holds the CA key, signing keys and admin password hash).
        #[arg(long, short)]
        output: PathBuf,
    },
    /// Load an export into an empty store.
    #[command(
        after_help = "Examples:\n  kargo server import --data-dir ./restored -i kargo-backup.json\n  kargo server import --store etcd --etcd-endpoints http://10.0.0.1:2379 -i kargo-backup.json"
    )]
    Import {
        /// The store to write; it must hold no keys.
        #[command(flatten)]
        store: StoreArgs,
        /// The export to read.
        #[arg(long, short)]
        input: PathBuf,
    },
    /// Copy the SQLite store of `--data-dir` into an empty etcd (then start the replicas with
    /// `--store etcd`).
    #[command(
        after_help = "Examples:\n  kargo server migrate --data-dir ./kargo-data --etcd-endpoints http://10.0.0.1:2379,http://10.0.0.2:2379,http://10.0.0.3:2379"
    )]
    Migrate {
        /// The data directory whose `kargo.db` is copied.
        #[arg(long, default_value = "kargo-data")]
        data_dir: PathBuf,
        /// Client URLs of the etcd members, comma-separated.
        #[arg(
            long,
            value_name = "URL,URL,...",
            value_delimiter = ',',
            required = true
        )]
        etcd_endpoints: Vec<String>,
        /// Prefix of every etcd key.
        #[arg(long, value_name = "PREFIX", default_value = "")]
        etcd_prefix: String,
        /// TLS and login to etcd.
        #[command(flatten)]
        etcd_security: EtcdSecurityArgs,
    },
    /// Rewrite every encrypted value that is not written with the first key of the encryption
    /// configuration (key rotation). Safe while servers run: each rewrite is a compare-and-swap.
    #[command(
        after_help = "Examples:\n  kargo server reencrypt --data-dir ./kargo-data --encryption-config /etc/kargo/encryption.yaml"
    )]
    Reencrypt {
        /// The store to rewrite.
        #[command(flatten)]
        store: StoreArgs,
        /// The `EncryptionConfiguration` whose first key writes (and whose keys read).
        #[arg(
            long,
            env = "KARGO_ENCRYPTION_CONFIG",
            value_name = "FILE",
            required = true
        )]
        encryption_config: PathBuf,
    },
}

/// Parses `500ms`, `30s`, `5m`, `1h`, or a number of seconds.
/// A duration of at least a second (`--event-ttl`).
fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    let duration = parse_duration(text)?;
    if duration < Duration::from_secs(1) {
        return Err(format!("{text:?} is shorter than a second"));
    }
    Ok(duration)
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 30s, 5m or 1h"))?;
    match unit {
        "" | "s" => Ok(Duration::from_secs(n)),
        "ms" => Ok(Duration::from_millis(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!("{text:?} is not a duration like 30s, 5m or 1h")),
    }
}

/// `--token-last-used-interval`: a duration from 1 s to 1 h.
fn parse_interval(text: &str) -> Result<Duration, String> {
    let interval = parse_duration(text)?;
    if (Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&interval) {
        Ok(interval)
    } else {
        Err(format!("{text:?} is not between 1s and 1h"))
    }
}

/// Runs the server until interrupted, or one of the store commands.
pub fn run(args: ServerArgs) -> anyhow::Result<()> {
    crate::logs::init(&args.log, args.log_format).map_err(anyhow::Error::msg)?;
    let json = args.log_format == crate::logs::LogFormat::Json;
    let outcome = serve(args);
    if let (Err(err), true) = (&outcome, json) {
        // A log collector reading JSON lines learns why the server stopped; the person (and
        // the exit code) still get the CLI's `Error: <message>` line after it.
        tracing::error!(error = %crate::one_line(err), "kargo server stopped");
    }
    outcome
}

/// [`run`] once logging is set up.
fn serve(args: ServerArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    if let Some(command) = args.command {
        return runtime.block_on(store_command(command));
    }
    let config = ServerConfig {
        address: args.address,
        data_dir: args.store.data_dir.clone(),
        store: args.store.config(),
        admin_password: std::env::var("KARGO_ADMIN_PASSWORD")
            .ok()
            .filter(|p| !p.is_empty()),
        admin_enabled: !args.disable_admin_account,
        revoke_admin_sessions: args.revoke_admin_sessions,
        tls_names: args.tls_sans,
        issuer: args.issuer,
        compaction_interval: Some(args.compaction_interval).filter(|i| !i.is_zero()),
        event_ttl: args.event_ttl,
        max_object_bytes: usize::try_from(args.max_object_size)?,
        init: args.init,
        encryption_config: args.encryption_config,
        limits: args.limits.limits(),
        oidc: args.oidc.config()?,
        federation: args.federation.config()?,
        metrics_address: args.metrics_address,
        observe: true,
        build: crate::BUILD,
        shutdown_delay: args.shutdown_delay_duration,
        audit: args.audit.config(),
        token_lifetimes: args.token_lifetimes.lifetimes()?,
        token_last_used_interval: args.token_last_used_interval,
    };
    let outcome = runtime.block_on(kargo_server::server::run(config, |started| {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(started.banner().as_bytes());
        let _ = out.flush();
    }));
    // A server that stops on a damaged store exits now, whatever is still running.
    runtime.shutdown_timeout(Duration::from_secs(2));
    outcome?;
    Ok(())
}

/// Prints one line of outcome on stdout.
fn report(line: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    Ok(())
}

async fn store_command(command: StoreCommand) -> anyhow::Result<()> {
    use kargo_server::backup;
    match command {
        StoreCommand::Export { store, output } => {
            if store.kind == StoreKind::Sqlite {
                let db = store.data_dir.join(kargo_server::server::SQLITE_FILE);
                anyhow::ensure!(db.is_file(), "no SQLite store at {}", db.display());
            }
            let source = store.config().open(&store.data_dir).await?;
            let file = kargo_server::data_dir::private_file(&output)
                .with_context(|| format!("creating {}", output.display()))?;
            let mut writer = std::io::BufWriter::new(file);
            let keys = backup::export(source.as_ref(), &mut writer).await?;
            report(&format!("exported {keys} keys to {}", output.display()))
        }
        StoreCommand::Import { store, input } => {
            let file = std::fs::File::open(&input)
                .with_context(|| format!("opening {}", input.display()))?;
            let kvs = backup::read_export(&mut std::io::BufReader::new(file))
                .with_context(|| format!("reading {}", input.display()))?;
            // A SQLite target's directory is made like a server's (private, locked meanwhile).
            let _locked = match store.kind {
                StoreKind::Sqlite => Some(kargo_server::data_dir::DataDir::open(&store.data_dir)?),
                StoreKind::Etcd => None,
            };
            let target = store.config().open(&store.data_dir).await?;
            let keys = backup::import(target.as_ref(), &kvs).await?;
            report(&format!("imported {keys} keys from {}", input.display()))
        }
        StoreCommand::Migrate {
            data_dir,
            etcd_endpoints,
            etcd_prefix,
            etcd_security,
        } => {
            let db = data_dir.join("kargo.db");
            anyhow::ensure!(db.is_file(), "no SQLite store at {}", db.display());
            let source = StoreConfig::Sqlite.open(&data_dir).await?;
            let target = StoreConfig::Etcd {
                endpoints: etcd_endpoints.clone(),
                prefix: etcd_prefix,
                security: etcd_security.config(),
            }
            .open(&data_dir)
            .await?;
            let keys = backup::copy(source.as_ref(), target.as_ref()).await?;
            report(&format!(
                "copied {keys} keys from {} to etcd at {}",
                db.display(),
                etcd_endpoints.join(",")
            ))
        }
        StoreCommand::Reencrypt {
            store,
            encryption_config,
        } => {
            let config = kargo_server::encryption::EncryptionConfig::load(&encryption_config)?;
            let target = store.config().open(&store.data_dir).await?;
            let done = kargo_server::encryption::reencrypt(target, &config).await?;
            report(&format!(
                "rewrote {} of {} encrypted values with the first key of {}",
                done.rewritten,
                done.values,
                encryption_config.display()
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        server: ServerArgs,
    }

    fn parse(args: &[&str]) -> Result<ServerArgs, clap::error::ErrorKind> {
        Cli::try_parse_from(std::iter::once("server").chain(args.iter().copied()))
            .map(|c| c.server)
            .map_err(|e| e.kind())
    }

    #[test]
    fn the_token_lifetime_flags_bound_token_lifetimes() {
        let lifetime = |v: &str| Some(kargo_api::expiry::Lifetime::parse(v).unwrap());
        let args = parse(&[]).unwrap();
        assert_eq!(
            args.token_lifetimes.lifetimes().unwrap(),
            kargo_server::kargo::TokenLifetimes::default()
        );
        let args = parse(&[
            "--max-token-lifetime",
            "90d",
            "--default-token-lifetime",
            "12h",
        ])
        .unwrap();
        assert_eq!(args.token_lifetimes.max_token_lifetime, lifetime("90d"));
        assert_eq!(args.token_lifetimes.default_token_lifetime, lifetime("12h"));
        assert_eq!(
            parse(&["--max-token-lifetime", "3 days"]).err(),
            Some(clap::error::ErrorKind::ValueValidation)
        );
        let args = parse(&[
            "--max-token-lifetime",
            "1d",
            "--default-token-lifetime",
            "2d",
        ])
        .unwrap();
        assert_eq!(
            args.token_lifetimes.lifetimes().unwrap_err().to_string(),
            "the default token lifetime 2d exceeds the maximum of 1d"
        );
    }

    #[test]
    fn the_token_last_used_interval_is_a_minute_by_default_and_between_1s_and_1h() {
        let interval = |args: &[&str]| parse(args).map(|a| a.token_last_used_interval);
        assert_eq!(interval(&[]), Ok(Duration::from_secs(60)));
        let flag = "--token-last-used-interval";
        assert_eq!(interval(&[flag, "1s"]), Ok(Duration::from_secs(1)));
        assert_eq!(interval(&[flag, "1h"]), Ok(Duration::from_secs(3600)));
        for bad in ["0s", "500ms", "61m", "soon"] {
            assert_eq!(
                interval(&[flag, bad]).err(),
                Some(clap::error::ErrorKind::ValueValidation),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_federation_flags_allow_issuers_and_bound_lifetimes() {
        let args = parse(&[
            "--federated-issuer",
            "https://token.actions.githubusercontent.com",
            "--federated-issuer",
            "https://gitlab.com",
            "--federated-token-max-lifetime",
            "30m",
        ])
        .unwrap();
        let config = args.federation.config().unwrap().unwrap();
        assert_eq!(
            config.issuers,
            [
                "https://token.actions.githubusercontent.com",
                "https://gitlab.com"
            ]
        );
        assert_eq!(config.max_lifetime_secs, 1800);
        assert!(parse(&[]).unwrap().federation.config().unwrap().is_none());
        assert_eq!(
            parse(&["--federated-issuer-ca-file", "ca.pem"]).err(),
            Some(clap::error::ErrorKind::MissingRequiredArgument)
        );
    }

    #[test]
    fn the_oidc_flags_make_the_servers_oidc_settings() {
        let args = parse(&[
            "--oidc-issuer-url",
            "https://idp.example.com",
            "--oidc-client-id",
            "kargo",
            "--oidc-cli-client-id",
            "kargo-cli",
            "--oidc-scopes",
            "openid,email",
            "--oidc-admin-claim",
            "email=a@b.c",
            "--oidc-admin-claim",
            "groups=admins",
            "--oidc-viewer-claim",
            "groups=auditors",
            "--disable-admin-account",
        ])
        .unwrap();
        assert!(args.disable_admin_account);
        let config = args.oidc.config().unwrap().unwrap();
        assert_eq!(config.issuer_url, "https://idp.example.com");
        assert_eq!(config.client_id, "kargo");
        assert_eq!(config.cli_client_id.as_deref(), Some("kargo-cli"));
        assert_eq!(config.scopes, ["openid", "email"]);
        assert_eq!(config.username_claim, "email");
        assert_eq!(config.groups_claim, "groups");
        assert_eq!(config.admin_claims["email"], ["a@b.c"]);
        assert_eq!(config.admin_claims["groups"], ["admins"]);
        assert_eq!(config.viewer_claims["groups"], ["auditors"]);

        // No issuer, no OIDC; a client id without an issuer is refused by clap.
        assert!(parse(&[]).unwrap().oidc.config().unwrap().is_none());
        assert_eq!(
            parse(&["--oidc-client-id", "kargo"]).err(),
            Some(clap::error::ErrorKind::MissingRequiredArgument)
        );
        let no_client = parse(&["--oidc-issuer-url", "https://idp.example.com"]).unwrap();
        assert_eq!(
            no_client.oidc.config().unwrap_err().to_string(),
            "--oidc-client-id is required with --oidc-issuer-url"
        );
        let bad_claim = parse(&[
            "--oidc-issuer-url",
            "https://idp.example.com",
            "--oidc-client-id",
            "kargo",
            "--oidc-admin-claim",
            "admins",
        ])
        .unwrap();
        assert!(
            bad_claim
                .oidc
                .config()
                .unwrap_err()
                .to_string()
                .starts_with("--oidc-admin-claim: invalid claim \"admins\": expected name=value")
        );
    }

    #[test]
    fn durations_take_a_unit_or_mean_seconds() {
        let check = |text: &str, expected: Result<Duration, ()>| {
            assert_eq!(parse_duration(text).map_err(|_| ()), expected, "{text}");
        };
        check("5m", Ok(Duration::from_secs(300)));
        check("30s", Ok(Duration::from_secs(30)));
        check("90", Ok(Duration::from_secs(90)));
        check("250ms", Ok(Duration::from_millis(250)));
        check("1h", Ok(Duration::from_secs(3600)));
        check("0", Ok(Duration::ZERO));
        check("5 minutes", Err(()));
        check("m", Err(()));
    }

    #[test]
    fn the_shutdown_delay_is_none_unless_asked_for() {
        assert_eq!(parse(&[]).unwrap().shutdown_delay_duration, Duration::ZERO);
        let args = parse(&["--shutdown-delay-duration", "15s"]).unwrap();
        assert_eq!(args.shutdown_delay_duration, Duration::from_secs(15));
        assert!(parse(&["--shutdown-delay-duration", "soon"]).is_err());
    }

    #[test]
    fn etcd_flags_select_the_etcd_store_and_split_endpoints_on_commas() {
        let args = parse(&[
            "--store",
            "etcd",
            "--etcd-endpoints",
            "http://a:2379,http://b:2379",
            "--etcd-prefix",
            "/kargo-a",
        ])
        .unwrap();
        match args.store.config() {
            StoreConfig::Etcd {
                endpoints, prefix, ..
            } => {
                assert_eq!(endpoints, vec!["http://a:2379", "http://b:2379"]);
                assert_eq!(prefix, "/kargo-a");
            }
            other => panic!("expected etcd, got {other:?}"),
        }
        assert_eq!(args.compaction_interval, Duration::from_secs(300));
        assert!(matches!(
            parse(&[]).unwrap().store.config(),
            StoreConfig::Sqlite
        ));
    }

    #[test]
    fn etcd_tls_and_login_flags_reach_the_store_config_and_go_in_pairs() {
        let args = parse(&[
            "--store",
            "etcd",
            "--etcd-endpoints",
            "https://a:2379",
            "--etcd-cafile",
            "/etc/etcd/ca.crt",
            "--etcd-certfile",
            "/etc/etcd/client.crt",
            "--etcd-keyfile",
            "/etc/etcd/client.key",
            "--etcd-username",
            "kargo",
            "--etcd-password",
            "hunter2-etcd",
        ])
        .unwrap();
        match args.store.config() {
            StoreConfig::Etcd { security, .. } => {
                assert_eq!(security.ca_file, Some(PathBuf::from("/etc/etcd/ca.crt")));
                assert_eq!(
                    security.cert_file,
                    Some(PathBuf::from("/etc/etcd/client.crt"))
                );
                assert_eq!(
                    security.key_file,
                    Some(PathBuf::from("/etc/etcd/client.key"))
                );
                assert_eq!(security.username.as_deref(), Some("kargo"));
                assert_eq!(security.password.as_deref(), Some("hunter2-etcd"));
                assert!(!format!("{security:?}").contains("hunter2-etcd"));
            }
            other => panic!("expected etcd, got {other:?}"),
        }
        assert!(!format!("{args:?}").contains("hunter2-etcd"));
        let alone = |flag: &str, value: &str| {
            parse(&[
                "--store",
                "etcd",
                "--etcd-endpoints",
                "https://a:2379",
                flag,
                value,
            ])
            .err()
        };
        for (flag, value) in [
            ("--etcd-certfile", "c.crt"),
            ("--etcd-keyfile", "c.key"),
            ("--etcd-username", "kargo"),
            ("--etcd-password", "p"),
        ] {
            assert_eq!(
                alone(flag, value),
                Some(clap::error::ErrorKind::MissingRequiredArgument),
                "{flag} alone"
            );
        }
        assert_eq!(alone("--etcd-cafile", "ca.crt"), None);
    }

    #[test]
    fn init_is_off_unless_given() {
        assert!(!parse(&[]).unwrap().init);
        assert!(parse(&["--init"]).unwrap().init);
    }

    #[test]
    fn reencrypt_takes_the_store_flags_and_an_encryption_config() {
        assert_eq!(
            parse(&["--encryption-config", "/etc/enc.yaml"])
                .unwrap()
                .encryption_config,
            Some(PathBuf::from("/etc/enc.yaml"))
        );
        let args = parse(&[
            "reencrypt",
            "--store",
            "etcd",
            "--etcd-endpoints",
            "http://a:2379",
            "--encryption-config",
            "/etc/enc.yaml",
        ])
        .unwrap();
        match args.command {
            Some(StoreCommand::Reencrypt {
                store,
                encryption_config,
            }) => {
                assert!(matches!(store.config(), StoreConfig::Etcd { .. }));
                assert_eq!(encryption_config, PathBuf::from("/etc/enc.yaml"));
            }
            other => panic!("expected reencrypt, got {other:?}"),
        }
    }

    #[test]
    fn limit_flags_default_to_kube_apiservers_values_and_can_be_set() {
        assert_eq!(parse(&[]).unwrap().limits.limits(), Limits::default());
        let args = parse(&[
            "--max-connections",
            "64",
            "--max-connections-per-client",
            "8",
            "--max-requests-inflight",
            "0",
            "--request-header-timeout",
            "2s",
            "--max-watches-per-user",
            "3",
        ])
        .unwrap();
        let limits = args.limits.limits();
        assert_eq!(limits.max_connections, Some(64));
        assert_eq!(limits.max_connections_per_client, Some(8));
        assert_eq!(limits.max_requests_inflight, 0);
        assert_eq!(limits.header_timeout, Duration::from_secs(2));
        assert_eq!(limits.max_watches_per_user, 3);
        assert_eq!(
            parse(&["--max-connections", "0"]).err(),
            Some(clap::error::ErrorKind::ValueValidation)
        );
    }

    #[test]
    fn the_etcd_store_needs_endpoints() {
        assert_eq!(
            parse(&["--store", "etcd"]).err(),
            Some(clap::error::ErrorKind::MissingRequiredArgument)
        );
    }
}

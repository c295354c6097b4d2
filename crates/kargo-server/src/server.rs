//! Starting the server: the store, TLS material, the admin account, first-start objects, the
//! informer and controllers, and the HTTPS listener.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use kargo_api::resources::{CLUSTERROLEBINDINGS, CLUSTERROLES, NAMESPACES};
use kargo_store::{ListRequest, Revision, Store, Tripped};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::data_dir::DataDir;
use kargo_auth::Authorizer;
use kargo_auth::admin::{Admin, AdminWatcher};
use kargo_auth::authn::{Authenticator, MASTERS};
use kargo_auth::keys;
use kargo_auth::mint::TokenMinter;
use kargo_auth::observe::{AuthObserver, AuthObservers};
use kargo_auth::oidc::OidcAuthenticator;
use kargo_auth::tls::{CaPair, TlsMaterial, write_file};
use kargo_auth::tokens::TokenAuthenticator;
use kargo_auth::view::AuthView;
use kargo_controllers::aggregation::AggregationController;
use kargo_controllers::tokens::TokenController;
use kargo_controllers::{gc::GarbageCollector, namespace::NamespaceController};
use kargo_core::controller::ProjectController;
use kargo_http::audit::Audit;
use kargo_http::observe::Observers;
use kargo_http::{App, AppState};
use kargo_registry::informer;
use kargo_registry::{Registry, Target, WriteOptions};

/// How many objects the read cache holds (recently read ones; see `registry::cache`).
const OBJECT_CACHE_CAPACITY: usize = 20_000;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A file or socket operation failed. (The failure is in the message, not a `source`: the
    /// CLI prints an error's whole chain, which would say it twice.)
    #[error("{what}: {error}")]
    Io {
        /// What was being done.
        what: String,
        /// The failure.
        error: std::io::Error,
    },
    /// The store could not be opened or read.
    #[error("{what}: {error}")]
    Store {
        /// What was being done.
        what: String,
        /// The failure.
        error: kargo_store::Error,
    },
    /// The TLS material could not be prepared.
    #[error(transparent)]
    Tls(#[from] kargo_auth::tls::TlsError),
    /// The admin account could not be set up.
    #[error(transparent)]
    Admin(#[from] kargo_auth::admin::AdminError),
    /// The signing keys could not be loaded or created.
    #[error(transparent)]
    Keys(#[from] kargo_auth::keys::KeyError),
    /// Encryption at rest could not be set up (`--encryption-config`).
    #[error(transparent)]
    Encryption(#[from] crate::encryption::EncryptionSetupError),
    /// The objects of a first start could not be created.
    #[error("creating the first-start objects: {0}")]
    Bootstrap(String),
    /// The OIDC settings cannot be used (`--oidc-*`).
    #[error(transparent)]
    Oidc(#[from] kargo_auth::oidc::ConfigError),
    /// The federation settings cannot be used (`--federated-*`).
    #[error(transparent)]
    Federation(#[from] kargo_auth::federation::ConfigError),
    /// The informer stopped before it had read the store.
    #[error("the informer stopped before its first sync")]
    Informer,
    /// The data directory cannot be used.
    #[error(transparent)]
    DataDir(#[from] crate::data_dir::DataDirError),
    /// The store is not one this server can start on (empty, not a Kargo store, damaged), or
    /// `--init` was given where it must not be.
    #[error("{0}")]
    Unusable(String),
    /// The store reported damage while the server ran (or started): it stopped.
    #[error(
        "{store} is damaged, so the server stopped: {detail}. Restore the store from a backup \
         (see docs/operations.md)"
    )]
    Damaged {
        /// Which store.
        store: String,
        /// What the store said.
        detail: String,
    },
}

impl StartError {
    fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> StartError {
        let what = what.into();
        move |error| StartError::Io { what, error }
    }

    fn store(what: impl Into<String>) -> impl FnOnce(kargo_store::Error) -> StartError {
        let what = what.into();
        move |error| StartError::Store { what, error }
    }
}

impl From<kargo_registry::status::Status> for StartError {
    fn from(status: kargo_registry::status::Status) -> StartError {
        StartError::Bootstrap(status.message)
    }
}

impl From<serde_json::Error> for StartError {
    fn from(e: serde_json::Error) -> StartError {
        StartError::Bootstrap(e.to_string())
    }
}

/// Which store backs the server.
#[derive(Debug, Clone)]
pub enum StoreConfig {
    /// One SQLite file in the data directory.
    Sqlite,
    /// An etcd cluster, shared by every replica.
    Etcd {
        /// Client URLs of the members.
        endpoints: Vec<String>,
        /// Prepended to every key (empty: kube-apiserver's keys, `/registry/...`).
        prefix: String,
        /// TLS and login to etcd.
        security: EtcdSecurity,
    },
}

/// TLS and login to etcd (`--etcd-cafile`, `--etcd-certfile`, `--etcd-keyfile`,
/// `--etcd-username`, `--etcd-password`).
#[derive(Clone, Default)]
pub struct EtcdSecurity {
    /// PEM CA certificates that sign the members' serving certificates (`None`: the system's
    /// roots, for `https://` endpoints).
    pub ca_file: Option<PathBuf>,
    /// A PEM client certificate, for members that require one.
    pub cert_file: Option<PathBuf>,
    /// The PEM private key of `cert_file`.
    pub key_file: Option<PathBuf>,
    /// The etcd user to log in as.
    pub username: Option<String>,
    /// Its password; never logged.
    pub password: Option<String>,
}

impl std::fmt::Debug for EtcdSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdSecurity")
            .field("ca_file", &self.ca_file)
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl EtcdSecurity {
    /// The store options these settings make: the files read, the pairs checked.
    fn apply(
        &self,
        mut options: kargo_store::etcd::EtcdOptions,
    ) -> Result<kargo_store::etcd::EtcdOptions, StartError> {
        let read = |flag: &str, path: &std::path::Path| {
            std::fs::read(path)
                .map_err(StartError::io(format!("reading {flag} {}", path.display())))
        };
        let identity = match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => {
                Some((read("--etcd-certfile", cert)?, read("--etcd-keyfile", key)?))
            }
            (None, None) => None,
            _ => {
                return Err(StartError::Unusable(
                    "--etcd-certfile and --etcd-keyfile go together: give both or neither".into(),
                ));
            }
        };
        let ca_pem = self
            .ca_file
            .as_deref()
            .map(|path| read("--etcd-cafile", path))
            .transpose()?;
        if ca_pem.is_some() || identity.is_some() {
            options = options.with_tls(kargo_store::etcd::EtcdTls { ca_pem, identity });
        }
        match (&self.username, &self.password) {
            (Some(user), Some(password)) => Ok(options.with_credentials(user, password)),
            (None, None) => Ok(options),
            _ => Err(StartError::Unusable(
                "--etcd-username and --etcd-password go together: give both or neither".into(),
            )),
        }
    }
}

/// The name of the SQLite store's file in the data directory.
pub const SQLITE_FILE: &str = "kargo.db";

impl StoreConfig {
    /// Opens the store; SQLite keeps its file in `data_dir`.
    pub async fn open(&self, data_dir: &std::path::Path) -> Result<Arc<dyn Store>, StartError> {
        match self {
            StoreConfig::Sqlite => {
                let path = data_dir.join(SQLITE_FILE);
                let store = kargo_store::sqlite::SqliteStore::open(&path)
                    .map_err(StartError::store(format!("opening {}", path.display())))?;
                Ok(Arc::new(store))
            }
            StoreConfig::Etcd {
                endpoints,
                prefix,
                security,
            } => {
                let options = security.apply(
                    kargo_store::etcd::EtcdOptions::new(endpoints.clone()).with_prefix(prefix),
                )?;
                let store = kargo_store::etcd::EtcdStore::connect(options)
                    .await
                    .map_err(StartError::store(format!(
                        "connecting to etcd at {}",
                        endpoints.join(",")
                    )))?;
                Ok(Arc::new(store))
            }
        }
    }

    /// The store, named for an operator: the SQLite file, or the etcd endpoints and prefix.
    /// The backend's name, as the store metrics label it (`sqlite`, `etcd`).
    pub(crate) fn backend(&self) -> &'static str {
        match self {
            StoreConfig::Sqlite => "sqlite",
            StoreConfig::Etcd { .. } => "etcd",
        }
    }

    pub(crate) fn describe(&self, data_dir: &std::path::Path) -> String {
        match self {
            StoreConfig::Sqlite => data_dir.join(SQLITE_FILE).display().to_string(),
            StoreConfig::Etcd {
                endpoints, prefix, ..
            } => format!(
                "the etcd store at {} (prefix {prefix:?})",
                endpoints.join(",")
            ),
        }
    }
}

/// How to run the server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where to listen (`127.0.0.1:8443`; port 0 picks a free port).
    pub address: SocketAddr,
    /// The data directory (store file, TLS material, admin kubeconfig).
    pub data_dir: PathBuf,
    /// The store.
    pub store: StoreConfig,
    /// The admin password from the environment, if any.
    pub admin_password: Option<String>,
    /// Whether the admin account may log in (`POST /v1beta1/login`).
    pub admin_enabled: bool,
    /// End every admin session at start-up (earlier admin tokens stop working on every replica).
    pub revoke_admin_sessions: bool,
    /// Extra names (DNS or IP) for the serving certificate.
    pub tls_names: Vec<String>,
    /// The issuer of bound service-account tokens (the server's URL when `None`).
    pub issuer: Option<String>,
    /// How often to compact the store's history (`None`: never).
    pub compaction_interval: Option<std::time::Duration>,
    /// How long Events are kept after their last occurrence (kube-apiserver's `--event-ttl`).
    pub event_ttl: std::time::Duration,
    /// The largest encoded object a write may store (kube-apiserver's etcd value limit,
    /// [`kargo_api::limits::MAX_OBJECT_BYTES`], by default).
    pub max_object_bytes: usize,
    /// `--init`: start a new store in place of an unusable SQLite file (empty, not a Kargo
    /// store, damaged), which is set aside; refused when the file holds a Kargo store.
    pub init: bool,
    /// Kubernetes' `EncryptionConfiguration` for encryption at rest (`--encryption-config`).
    pub encryption_config: Option<PathBuf>,
    /// Bounds on connections, requests and watches.
    pub limits: kargo_http::limits::Limits,
    /// Single sign-on: the OpenID provider whose ID tokens are accepted (`--oidc-*`).
    pub oidc: Option<kargo_auth::oidc::OidcConfig>,
    /// Workload identity federation: the CI issuers whose tokens may be exchanged for
    /// ServiceAccount tokens (`--federated-issuer`, ...); `None` turns the exchange off.
    pub federation: Option<kargo_auth::federation::FederationConfig>,
    /// Where to serve `/metrics` on plain HTTP besides the main port (`--metrics-address`).
    pub metrics_address: Option<SocketAddr>,
    /// Whether requests are observed for the metrics and the 5xx log (`kargo server`: always;
    /// off only to measure what observing costs, `api_tests::observing_cost`).
    pub observe: bool,
    /// This build (version, git commit), reported at `/version`.
    pub build: kargo_api::version::Build,
    /// How long to keep serving, not ready, after SIGTERM (`--shutdown-delay-duration`).
    pub shutdown_delay: std::time::Duration,
    /// The audit log (`--audit-log-*`); none by default, as kube-apiserver.
    pub audit: Option<kargo_http::audit::AuditConfig>,
    /// Bounds on the lifetime of tokens created through the Kargo API
    /// (`--max-token-lifetime`, `--default-token-lifetime`); none by default.
    pub token_lifetimes: kargo_core::TokenLifetimes,
    /// How often this replica writes when tokens were last used to their Secrets
    /// (`--token-last-used-interval`; a Secret is written at most once a minute whatever it is).
    pub token_last_used_interval: std::time::Duration,
}

impl ServerConfig {
    /// Names the serving certificate must carry.
    fn certificate_names(&self) -> Vec<String> {
        let mut names = vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ];
        let ip = self.address.ip();
        if !ip.is_unspecified() && !names.contains(&ip.to_string()) {
            names.push(ip.to_string());
        }
        for n in &self.tls_names {
            if !names.contains(n) {
                names.push(n.clone());
            }
        }
        names
    }
}

/// What a started server tells its caller.
pub struct Started {
    /// The URL clients use.
    pub(crate) url: String,
    /// The CA certificate clients trust.
    pub(crate) ca_path: PathBuf,
    /// The admin kubeconfig (client certificate).
    pub(crate) kubeconfig: PathBuf,
    /// The admin password, when this start generated it (to be shown once).
    pub(crate) generated_password: Option<String>,
    /// Cancel to stop the server.
    pub(crate) shutdown: CancellationToken,
    /// Cancel to make `/readyz` fail while the server still serves.
    pub(crate) draining: CancellationToken,
    /// How long to serve between `draining` and `shutdown`.
    shutdown_delay: std::time::Duration,
    /// Resolves when the store reports damage: the server must stop.
    pub(crate) tripped: Tripped,
    /// The store, named for messages.
    store_name: String,
    /// The data directory, locked while the server runs.
    _data_dir: DataDir,
}

impl Started {
    /// What an operator needs to connect, for the terminal. It holds the generated admin
    /// password, which is shown this once only.
    pub fn banner(&self) -> String {
        let mut banner = format!(
            "kargo server listening on {}\n  CA certificate:    {}\n  admin kubeconfig:  {}\n",
            self.url,
            self.ca_path.display(),
            self.kubeconfig.display()
        );
        if let Some(password) = &self.generated_password {
            banner.push_str(&format!(
                "  admin password:    {password}   (generated; shown only now; set KARGO_ADMIN_PASSWORD to choose one)\n"
            ));
        }
        banner.push_str(&format!(
            "  log in with:       kargo login {} --admin --certificate-authority {}\n",
            self.url,
            self.ca_path.display()
        ));
        banner
    }
}

/// Creates an object unless one of that name exists (first start, or another replica was
/// first).
async fn ensure(
    registry: &Registry,
    rt: &'static kargo_api::resources::ResourceType,
    body: serde_json::Value,
) -> Result<(), StartError> {
    let name = kargo_registry::Meta::name(&body).to_owned();
    if registry
        .try_get(Target::new(rt, None, &name))
        .await?
        .is_some()
    {
        return Ok(());
    }
    match registry
        .create(rt, None, body, &WriteOptions::default())
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.is_already_exists() => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Objects every server has from its first start: the `default` namespace, Kubernetes'
/// default ClusterRoles and ClusterRoleBindings (discovery, self reviews, issuer discovery), and
/// Kargo's system namespace with its system ServiceAccounts and ClusterRoles.
async fn bootstrap(registry: &Registry, config: &ServerConfig) -> Result<(), StartError> {
    ensure(
        registry,
        &NAMESPACES,
        json!({"metadata": {"name": "default"}}),
    )
    .await?;
    for role in kargo_auth::rbac::bootstrap::cluster_roles() {
        ensure(registry, &CLUSTERROLES, serde_json::to_value(role)?).await?;
    }
    for binding in kargo_auth::rbac::bootstrap::cluster_role_bindings() {
        ensure(
            registry,
            &CLUSTERROLEBINDINGS,
            serde_json::to_value(binding)?,
        )
        .await?;
    }
    let system_claims = kargo_core::projects::SystemClaims {
        admins: pairs(config.oidc.as_ref().map(|o| &o.admin_claims)),
        viewers: pairs(config.oidc.as_ref().map(|o| &o.viewer_claims)),
    };
    kargo_core::projects::bootstrap_system(registry, &system_claims)
        .await
        .map_err(|e| StartError::Bootstrap(format!("creating the system objects: {e}")))?;
    Ok(())
}

/// `--oidc-admin-claim`/`--oidc-viewer-claim` settings as the `name=value` pairs the system
/// accounts' claims annotation is written from.
fn pairs(
    claims: Option<&std::collections::BTreeMap<String, Vec<String>>>,
) -> Vec<(String, String)> {
    claims
        .into_iter()
        .flatten()
        .flat_map(|(name, values)| values.iter().map(move |v| (name.clone(), v.clone())))
        .collect()
}

fn write_admin_kubeconfig(
    config: &ServerConfig,
    tls: &TlsMaterial,
    address: SocketAddr,
) -> Result<PathBuf, StartError> {
    use kargo_api::kubeconfig::{Credential, Kubeconfig, ServerTrust};
    let (cert, key) = tls.issue_client_cert("admin", &[MASTERS])?;
    let kubeconfig = Kubeconfig {
        cluster: "kargo".to_owned(),
        server: format!("https://{}", connect_address(address)),
        trust: ServerTrust::CertificateAuthority(tls.ca_cert_pem.clone().into()),
        user: "admin".to_owned(),
        credential: Credential::ClientCertificate {
            certificate_pem: cert.into(),
            key_pem: key.into(),
        },
        context: "kargo".to_owned(),
        namespace: None,
    };
    let path = config.data_dir.join("admin.kubeconfig");
    let text = yaml_serde::to_string(&kubeconfig.to_value()).map_err(|e| StartError::Io {
        what: format!("writing {}", path.display()),
        error: std::io::Error::other(e),
    })?;
    write_file(&path, text.as_bytes())?;
    Ok(path)
}

/// The address clients use to reach a listener (loopback for an unspecified bind address).
fn connect_address(address: SocketAddr) -> String {
    if address.ip().is_unspecified() {
        format!("127.0.0.1:{}", address.port())
    } else {
        address.to_string()
    }
}

/// What to do about a store that cannot be started on.
const UNUSABLE_HINT: &str = "Restore it from a backup (see docs/operations.md), or start with \
     --init to set it aside and begin a new, empty store";

/// Where the server keeps its own state in the store (CA, signing keys, admin record).
const INTERNAL_PREFIX: &str = "/kargo/internal/";

/// What an opened store holds.
enum Contents {
    /// The server's own state, which every started store holds from its first start (the CA
    /// since it moved into the store; signing keys and the admin record since the beginning).
    Kargo,
    /// No key at all: a first start.
    Empty,
    /// Keys, but none of the server's own: not a Kargo store.
    Foreign(String),
}

async fn contents(store: &Arc<dyn Store>) -> Result<Contents, StartError> {
    let first = |prefix: &str| {
        store.list(ListRequest {
            prefix: prefix.into(),
            limit: Some(1),
            ..ListRequest::default()
        })
    };
    let own = first(INTERNAL_PREFIX)
        .await
        .map_err(StartError::store("reading the store"))?;
    if !own.kvs.is_empty() {
        return Ok(Contents::Kargo);
    }
    let any = first("/")
        .await
        .map_err(StartError::store("reading the store"))?;
    Ok(match any.kvs.first() {
        None => Contents::Empty,
        Some(kv) => Contents::Foreign(format!(
            "it holds keys (such as {}) but none of Kargo's own (its CA, signing keys and admin \
             record under {INTERNAL_PREFIX}), which every Kargo store has from its first start",
            kv.key
        )),
    })
}

/// Renames an unusable SQLite file (and its log) out of the way, for `--init`.
fn set_aside(db: &std::path::Path) -> Result<(), StartError> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let aside = db.with_file_name(format!("{SQLITE_FILE}.unusable-{stamp}"));
    for suffix in ["", "-wal"] {
        let from = PathBuf::from(format!("{}{suffix}", db.display()));
        let to = PathBuf::from(format!("{}{suffix}", aside.display()));
        match std::fs::rename(&from, &to) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(StartError::Io {
                    what: format!("setting {} aside", from.display()),
                    error: e,
                });
            }
        }
    }
    let shm = PathBuf::from(format!("{}-shm", db.display()));
    if let Err(e) = std::fs::remove_file(&shm)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        return Err(StartError::io(format!("removing {}", shm.display()))(e));
    }
    tracing::warn!(
        store = %db.display(),
        aside = %aside.display(),
        "--init: set the unusable store aside; starting a new, empty store"
    );
    Ok(())
}

/// Opens the store and decides whether to start on it: a missing SQLite file or an empty etcd
/// prefix is a first start; a Kargo store is a restart; anything else is refused, unless
/// `--init` lets a new SQLite store take the place of the unusable file. The store comes back
/// wrapped in the tripwire that stops the server on damage.
async fn open_store(config: &ServerConfig) -> Result<(Arc<dyn Store>, Tripped), StartError> {
    let name = config.store.describe(&config.data_dir);
    let sqlite = matches!(config.store, StoreConfig::Sqlite);
    if config.init && !sqlite {
        return Err(StartError::Unusable(
            "--init applies to the SQLite store only: an etcd prefix that holds no key starts a \
             new installation by itself"
                .into(),
        ));
    }
    let opened = match config.store.open(&config.data_dir).await {
        Ok(store) => contents(&store).await.map(|contents| (store, contents)),
        Err(e) => Err(e),
    };
    let unusable = match opened {
        Ok((_, Contents::Kargo)) if config.init => {
            return Err(StartError::Unusable(format!(
                "--init was given, but {name} holds a Kargo store: start without --init (to \
                 begin again from nothing, stop the server and move the file away)"
            )));
        }
        Ok((store, Contents::Kargo | Contents::Empty)) => return Ok(kargo_store::tripwire(store)),
        Ok((store, Contents::Foreign(why))) => {
            // Closed before its file is set aside.
            drop(store);
            why
        }
        Err(StartError::Store {
            error: kargo_store::Error::Corrupt(detail),
            ..
        }) => detail,
        Err(e) => return Err(e),
    };
    if !sqlite {
        return Err(StartError::Unusable(format!(
            "{name} is not a Kargo store: {unusable}. Use another --etcd-prefix, or delete the \
             keys under this one to begin a new installation"
        )));
    }
    if !config.init {
        return Err(StartError::Unusable(format!(
            "{name} is not a usable Kargo store: {unusable}. {UNUSABLE_HINT}"
        )));
    }
    tracing::warn!(store = %name, reason = %unusable, "--init: the store is unusable");
    set_aside(&config.data_dir.join(SQLITE_FILE))?;
    let store = config.store.open(&config.data_dir).await?;
    Ok(kargo_store::tripwire(store))
}

/// The listener's bounds: the connection cap derived from the open-files limit (raised to its
/// hard limit first) unless given.
fn connection_limits(limits: &kargo_http::limits::Limits) -> kargo_http::serve::ConnectionLimits {
    let open_files = kargo_http::limits::raise_open_files_limit();
    let max_connections = limits
        .max_connections
        .unwrap_or_else(|| kargo_http::limits::default_max_connections(open_files));
    let max_connections_per_client = limits
        .max_connections_per_client
        .unwrap_or((max_connections / 4).max(1));
    if let Some(files) = open_files
        && max_connections as u64 > files.saturating_sub(kargo_http::limits::RESERVED_FILES)
    {
        tracing::warn!(
            max_connections,
            open_files = files,
            "--max-connections leaves fewer than {} of the open-files limit for the store: \
             past it, accepting fails until connections close",
            kargo_http::limits::RESERVED_FILES
        );
    }
    tracing::info!(
        open_files = open_files.map_or_else(|| "unlimited".to_owned(), |n| n.to_string()),
        max_connections,
        max_connections_per_client,
        "connection limits"
    );
    kargo_http::serve::ConnectionLimits {
        header_timeout: limits.header_timeout,
        idle_timeout: limits.idle_timeout,
        max_connections,
        max_connections_per_client,
        http2_max_streams: limits.http2_max_streams,
    }
}

/// Starts the server and returns once it is listening.
pub(crate) async fn start(mut config: ServerConfig) -> Result<Started, StartError> {
    // Before anything is created: a refused password must leave no new installation behind.
    if let Some(password) = &config.admin_password {
        kargo_auth::admin::check_password(password)?;
    }
    let data_dir = DataDir::open(&config.data_dir)?;
    config.data_dir = data_dir.path().to_owned();
    let encryption = (config.encryption_config.as_deref())
        .map(crate::encryption::EncryptionConfig::load)
        .transpose()?;
    let (store, tripped) = open_store(&config).await?;
    let store_name = config.store.describe(&config.data_dir);
    let started = async {
        // Wrapped before anything reads a value.
        let store = crate::encryption::open(store, encryption.as_ref()).await?;
        start_on(config, store, tripped.clone(), data_dir).await
    };
    match started.await {
        Ok(started) => Ok(started),
        // Whatever step met the damage, the damage is what to report.
        Err(error) => Err(match tripped.get() {
            Some(detail) => StartError::Damaged {
                store: store_name,
                detail,
            },
            None => error,
        }),
    }
}

/// The rest of [`start`], on an opened store.
async fn start_on(
    config: ServerConfig,
    store: Arc<dyn Store>,
    tripped: Tripped,
    data_dir: DataDir,
) -> Result<Started, StartError> {
    let listener = TcpListener::bind(config.address)
        .await
        .map_err(StartError::io(format!("listening on {}", config.address)))?;
    let address = listener
        .local_addr()
        .map_err(StartError::io("reading the listening address"))?;
    let shutdown = CancellationToken::new();
    let assembled = assemble(
        &config,
        store,
        &tripped,
        connect_address(address),
        shutdown.clone(),
        Observers::default(),
    )
    .await?;
    if let Some(metrics_address) = config.metrics_address {
        let metrics_listener = TcpListener::bind(metrics_address)
            .await
            .map_err(StartError::io(format!(
                "listening on {metrics_address} (--metrics-address)"
            )))?;
        if let Ok(bound) = metrics_listener.local_addr() {
            tracing::info!(address = %bound, "serving /metrics on plain HTTP");
        }
        tokio::spawn(kargo_http::metrics::listener::serve(
            metrics_listener,
            assembled.metrics.clone(),
            shutdown.clone(),
        ));
    }
    let kubeconfig = write_admin_kubeconfig(&config, &assembled.tls, address)?;
    let url = format!("https://{}", connect_address(address));
    tokio::spawn(kargo_http::serve::serve(
        listener,
        assembled.tls.server_config()?,
        assembled.api,
        connection_limits(&config.limits),
        shutdown.clone(),
    ));

    tracing::info!(%url, "kargo server listening");
    Ok(Started {
        url,
        ca_path: assembled.tls.ca_path.clone(),
        kubeconfig,
        generated_password: assembled.generated_password,
        shutdown,
        draining: assembled.draining,
        shutdown_delay: config.shutdown_delay,
        tripped,
        store_name: config.store.describe(&config.data_dir),
        _data_dir: data_dir,
    })
}

/// The whole API assembled on an opened store, not yet listening.
pub(crate) struct Assembled {
    /// Every route, ready for [`kargo_http::Api::call`].
    pub(crate) api: kargo_http::Api,
    /// The CA and serving certificate.
    pub(crate) tls: TlsMaterial,
    /// The admin account (the test tier issues its token).
    #[cfg_attr(not(any(test, feature = "testing")), allow(dead_code))]
    pub(crate) admin: Arc<Admin>,
    /// The admin password, when this start generated it.
    pub(crate) generated_password: Option<String>,
    /// The metrics `/metrics` serves.
    pub(crate) metrics: Arc<kargo_http::metrics::Metrics>,
    /// Cancelled when shutdown begins: `/readyz` fails from then on.
    pub(crate) draining: CancellationToken,
}

/// Assembles the server on `store`, without a socket: the TLS material, the admin account, the
/// first-start objects, the registry, the signing keys and the auth view, the informer feeding
/// the read cache, the auth view and the controllers, then authentication and authorization,
/// Kargo, the [`App`] and its [`kargo_http::Api`]. Returns once the informer has applied every
/// write made before this start. `advertised_address` is the `host:port` clients reach;
/// `shutdown` stops the controllers, the informer and the watches.
pub(crate) async fn assemble(
    config: &ServerConfig,
    store: Arc<dyn Store>,
    tripped: &Tripped,
    advertised_address: String,
    shutdown: CancellationToken,
    observers: Observers,
) -> Result<Assembled, StartError> {
    let metrics = Arc::new(kargo_http::metrics::Metrics::new());
    let store = metrics.observe_store(store, config.store.backend());
    let tls_dir = config.data_dir.join("tls");
    let ca = CaPair::shared(&store, &tls_dir).await?;
    let tls = TlsMaterial::load_or_create(&tls_dir, &config.certificate_names(), &ca)?;
    let (admin, generated_password) = Admin::init(
        &store,
        config.admin_password.as_deref(),
        config.revoke_admin_sessions,
    )
    .await?;
    let admin = Arc::new(admin);
    let registry = Registry::new(store.clone()).with_max_object_bytes(config.max_object_bytes);
    bootstrap(&registry, config).await?;

    let key_set = keys::load_or_create(&store).await?;
    let view = AuthView::new(key_set);
    let cache = Arc::new(kargo_registry::cache::ObjectCache::new(
        OBJECT_CACHE_CAPACITY,
    ));
    let minter = TokenMinter::new(view.clone(), tls.ca_cert_pem.clone());
    let handlers: Vec<Box<dyn informer::Handler>> = vec![
        Box::new(kargo_registry::cache::CacheInvalidator(cache.clone())),
        Box::new(view.writer()),
        Box::new(AdminWatcher(admin.clone())),
        Box::new(GarbageCollector::start(registry.clone(), shutdown.clone())),
        Box::new(NamespaceController::start(
            registry.clone(),
            shutdown.clone(),
        )),
        Box::new(ProjectController::start(registry.clone(), shutdown.clone())),
        Box::new(AggregationController::start(
            registry.clone(),
            shutdown.clone(),
        )),
        Box::new(metrics.token_counter()),
        Box::new(TokenController::start(
            registry.clone(),
            minter.clone(),
            shutdown.clone(),
        )),
    ];
    let (synced_tx, mut synced_rx) = tokio::sync::watch::channel(Revision::ZERO);
    let initial = store
        .current_revision()
        .await
        .map_err(StartError::store("reading the store's revision"))?;
    tokio::spawn(kargo_controllers::event_ttl::run(
        registry.clone(),
        config.event_ttl,
        shutdown.clone(),
    ));
    if let Some(interval) = config.compaction_interval.filter(|i| !i.is_zero()) {
        tokio::spawn(kargo_controllers::compactor::run(
            store.clone(),
            interval,
            shutdown.clone(),
        ));
    }
    let watching = informer::Watching::default();
    tokio::spawn(informer::run_reporting(
        store.clone(),
        handlers,
        synced_tx,
        watching.clone(),
        shutdown.clone(),
    ));
    // Serve only once the auth view holds everything written before this start; a store that
    // reports damage meanwhile (the informer would relist it forever) ends the wait.
    let mut damage = tripped.clone();
    tokio::select! {
        synced = synced_rx.wait_for(|seen| *seen >= initial) => {
            synced.map_err(|_| StartError::Informer)?;
        }
        _ = damage.wait() => {
            shutdown.cancel();
            return Err(StartError::Informer);
        }
    }

    let registry = registry.with_cache(cache, synced_rx.clone());
    kargo_controllers::last_used::LastUsedFlusher::new(registry.clone(), view.clone())
        .start(config.token_last_used_interval, shutdown.clone());
    let issuer = (config.issuer.clone()).unwrap_or_else(|| format!("https://{advertised_address}"));
    let (mut observers, mut auth_observers): (_, Vec<Arc<dyn AuthObserver>>) = if config.observe {
        let observers = observers
            .with(metrics.clone())
            .with(Arc::new(kargo_http::failure_log::FailureLog));
        (observers, vec![metrics.clone()])
    } else {
        (observers, Vec::new())
    };
    let audit = match &config.audit {
        Some(audit) => {
            let log = Arc::new(Audit::start(audit).map_err(StartError::io(format!(
                "opening the audit log {}",
                audit.path.display()
            )))?);
            observers = observers.with(log.clone());
            auth_observers.push(log.clone());
            metrics.watch_audit(log.clone());
            Some(log)
        }
        None => None,
    };
    // One observer is called directly; several through the fan-out.
    let auth_observer: Option<Arc<dyn AuthObserver>> = match auth_observers.len() {
        0 => None,
        1 => auth_observers.pop(),
        _ => Some(Arc::new(AuthObservers(auth_observers))),
    };
    let mut authz = Authorizer::new(view.clone());
    if let Some(observer) = &auth_observer {
        authz = authz.with_observer(observer.clone());
    }
    let authz = Arc::new(authz);
    let kargo = kargo_core::Kargo::new(registry.clone(), authz.clone(), synced_rx.clone())
        .with_minter(minter)
        .with_token_lifetimes(config.token_lifetimes);
    let tokens = Arc::new(TokenAuthenticator::new(view.clone(), issuer));
    metrics.watch_token_cache(tokens.cache_stats());
    let mut authn =
        Authenticator::new(admin.clone(), tokens).with_admin_enabled(config.admin_enabled);
    if let Some(observer) = auth_observer {
        authn = authn.with_observer(observer);
    }
    if let Some(oidc) = &config.oidc {
        // Returns at once: the issuer's keys are fetched in the background.
        authn = authn.with_oidc(OidcAuthenticator::start(oidc.clone(), shutdown.clone())?);
    }
    if let Some(federation) = &config.federation {
        // Returns at once, as for single sign-on.
        let sso = authn.oidc().cloned();
        authn = authn.with_federation(kargo_auth::federation::Federation::start(
            federation.clone(),
            sso.as_ref(),
            shutdown.clone(),
        )?);
    }
    // Named as kube-apiserver names its store check on etcd.
    let store_check = match config.store {
        StoreConfig::Etcd { .. } => "etcd",
        StoreConfig::Sqlite => "store",
    };
    let draining = CancellationToken::new();
    let health = kargo_http::health::Health::new(store, store_check, watching, draining.clone());
    // The web UI signs people in at the same provider.
    let sso_for_ui = authn.oidc().cloned();
    let state = AppState::new(App {
        registry,
        authn: Arc::new(authn),
        authz,
        advertised_address,
        shutdown,
        kargo: Arc::new(kargo),
        synced: synced_rx,
        limits: kargo_http::limits::RequestLimits::new(&config.limits),
        observers,
        metrics: Some(metrics.clone()),
        health,
        build: config.build,
        audit,
    });
    let api = kargo_http::Api::new(state);
    // The web UI at `/`: a client of the same API, with the signed-in user's token.
    let ui = Arc::new(kargo_ui::Ui::new(api.clone(), sso_for_ui));
    Ok(Assembled {
        api: api.with_pages(ui),
        tls,
        admin,
        generated_password,
        metrics,
        draining,
    })
}

/// Runs the server until SIGINT or SIGTERM; `on_start` receives the started server (to print its
/// banner).
pub async fn run(config: ServerConfig, on_start: impl FnOnce(&Started)) -> Result<(), StartError> {
    let started = start(config).await?;
    on_start(&started);
    let mut damage = started.tripped.clone();
    let outcome = tokio::select! {
        _ = wait_for_signal() => Ok(()),
        detail = damage.wait() => Err(StartError::Damaged {
            store: started.store_name.clone(),
            detail,
        }),
    };
    if outcome.is_ok() && !started.shutdown_delay.is_zero() {
        // As kube-apiserver's --shutdown-delay-duration: not ready, still serving, so that load
        // balancers take the server out before it stops. A second signal stops it at once.
        started.draining.cancel();
        tracing::info!(delay = ?started.shutdown_delay, "shutting down: not ready, still serving");
        tokio::select! {
            _ = tokio::time::sleep(started.shutdown_delay) => {}
            _ = wait_for_signal() => {}
        }
    }
    tracing::info!("shutting down");
    started.draining.cancel();
    started.shutdown.cancel();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    outcome
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

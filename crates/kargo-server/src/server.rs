//! Starting the server: the store, TLS material, the admin account, first-start objects, the
//! informer and controllers, and the HTTPS listener.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use kargo_api::resources::{CLUSTERROLEBINDINGS, CLUSTERROLES, NAMESPACES};
use kargo_store::{Revision, Store};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::auth::Authorizer;
use crate::auth::admin::{Admin, AdminWatcher};
use crate::auth::authn::{Authenticator, MASTERS};
use crate::auth::keys;
use crate::auth::tokens::TokenAuthenticator;
use crate::auth::view::AuthView;
use crate::controllers::projects::ProjectController;
use crate::controllers::tokens::{TokenController, TokenMinter};
use crate::controllers::{gc::GarbageCollector, informer, namespace::NamespaceController};
use crate::http::{App, AppState};
use crate::registry::{Registry, Target, WriteOptions};
use crate::tls::{CaPair, TlsMaterial, write_file};

/// How many objects the read cache holds (recently read ones; see `registry::cache`).
const OBJECT_CACHE_CAPACITY: usize = 20_000;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A file or socket operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The failure.
        source: std::io::Error,
    },
    /// The store could not be opened or read.
    #[error("{what}: {source}")]
    Store {
        /// What was being done.
        what: String,
        /// The failure.
        source: kargo_store::Error,
    },
    /// The TLS material could not be prepared.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// The admin account could not be set up.
    #[error(transparent)]
    Admin(#[from] crate::auth::admin::AdminError),
    /// The signing keys could not be loaded or created.
    #[error(transparent)]
    Keys(#[from] crate::auth::keys::KeyError),
    /// The objects of a first start could not be created.
    #[error("creating the first-start objects: {0}")]
    Bootstrap(String),
    /// The informer stopped before it had read the store.
    #[error("the informer stopped before its first sync")]
    Informer,
}

impl StartError {
    fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> StartError {
        let what = what.into();
        move |source| StartError::Io { what, source }
    }

    fn store(what: impl Into<String>) -> impl FnOnce(kargo_store::Error) -> StartError {
        let what = what.into();
        move |source| StartError::Store { what, source }
    }
}

impl From<crate::status::Status> for StartError {
    fn from(status: crate::status::Status) -> StartError {
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
    },
}

impl StoreConfig {
    /// Opens the store; SQLite keeps its file in `data_dir`.
    pub async fn open(&self, data_dir: &std::path::Path) -> Result<Arc<dyn Store>, StartError> {
        match self {
            StoreConfig::Sqlite => {
                let path = data_dir.join("kargo.db");
                let store = kargo_store::sqlite::SqliteStore::open(&path)
                    .map_err(StartError::store(format!("opening {}", path.display())))?;
                Ok(Arc::new(store))
            }
            StoreConfig::Etcd { endpoints, prefix } => {
                let options =
                    kargo_store::etcd::EtcdOptions::new(endpoints.clone()).with_prefix(prefix);
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
    /// Extra names (DNS or IP) for the serving certificate.
    pub tls_names: Vec<String>,
    /// The issuer of bound service-account tokens (the server's URL when `None`).
    pub issuer: Option<String>,
    /// How often to compact the store's history (`None`: never).
    pub compaction_interval: Option<std::time::Duration>,
    /// Bounds on connections, requests and watches.
    pub limits: crate::limits::Limits,
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
    /// The address it listens on.
    pub address: SocketAddr,
    /// The URL clients use.
    pub url: String,
    /// The CA certificate clients trust.
    pub ca_path: PathBuf,
    /// The admin kubeconfig (client certificate).
    pub kubeconfig: PathBuf,
    /// The admin password, when this start generated it (to be shown once).
    pub generated_password: Option<String>,
    /// Cancel to stop the server.
    pub shutdown: CancellationToken,
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
    let name = crate::registry::Meta::name(&body).to_owned();
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
async fn bootstrap(registry: &Registry) -> Result<(), StartError> {
    ensure(
        registry,
        &NAMESPACES,
        json!({"metadata": {"name": "default"}}),
    )
    .await?;
    for role in crate::auth::rbac::bootstrap::cluster_roles() {
        ensure(registry, &CLUSTERROLES, serde_json::to_value(role)?).await?;
    }
    for binding in crate::auth::rbac::bootstrap::cluster_role_bindings() {
        ensure(
            registry,
            &CLUSTERROLEBINDINGS,
            serde_json::to_value(binding)?,
        )
        .await?;
    }
    crate::kargo::projects::bootstrap_system(registry)
        .await
        .map_err(|e| StartError::Bootstrap(format!("creating the system objects: {e}")))?;
    Ok(())
}

fn write_admin_kubeconfig(
    config: &ServerConfig,
    tls: &TlsMaterial,
    address: SocketAddr,
) -> Result<PathBuf, StartError> {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let (cert, key) = tls.issue_client_cert("admin", &[MASTERS])?;
    let server = format!("https://{}", connect_address(address));
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: kargo\n  cluster:\n    server: {server}\n    certificate-authority-data: {}\nusers:\n- name: admin\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\ncontexts:\n- name: kargo\n  context:\n    cluster: kargo\n    user: admin\ncurrent-context: kargo\n",
        b64(&tls.ca_cert_pem),
        b64(&cert),
        b64(&key),
    );
    let path = config.data_dir.join("admin.kubeconfig");
    write_file(&path, kubeconfig.as_bytes(), true)?;
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

/// The listener's bounds: the connection cap derived from the open-files limit (raised to its
/// hard limit first) unless given.
fn connection_limits(limits: &crate::limits::Limits) -> crate::serve::ConnectionLimits {
    let open_files = crate::limits::raise_open_files_limit();
    let max_connections = limits
        .max_connections
        .unwrap_or_else(|| crate::limits::default_max_connections(open_files));
    let max_connections_per_client = limits
        .max_connections_per_client
        .unwrap_or((max_connections / 4).max(1));
    if let Some(files) = open_files
        && max_connections as u64 > files.saturating_sub(crate::limits::RESERVED_FILES)
    {
        tracing::warn!(
            max_connections,
            open_files = files,
            "--max-connections leaves fewer than {} of the open-files limit for the store: \
             past it, accepting fails until connections close",
            crate::limits::RESERVED_FILES
        );
    }
    tracing::info!(
        open_files = open_files.map_or_else(|| "unlimited".to_owned(), |n| n.to_string()),
        max_connections,
        max_connections_per_client,
        "connection limits"
    );
    crate::serve::ConnectionLimits {
        header_timeout: limits.header_timeout,
        idle_timeout: limits.idle_timeout,
        max_connections,
        max_connections_per_client,
        http2_max_streams: limits.http2_max_streams,
    }
}

/// Starts the server and returns once it is listening.
pub async fn start(mut config: ServerConfig) -> Result<Started, StartError> {
    std::fs::create_dir_all(&config.data_dir).map_err(StartError::io(format!(
        "creating {}",
        config.data_dir.display()
    )))?;
    // Absolute, so that the paths the banner prints work from any directory.
    config.data_dir = std::fs::canonicalize(&config.data_dir).map_err(StartError::io(format!(
        "resolving {}",
        config.data_dir.display()
    )))?;
    let store = config.store.open(&config.data_dir).await?;
    let tls_dir = config.data_dir.join("tls");
    let ca = CaPair::shared(&store, &tls_dir).await?;
    let tls = TlsMaterial::load_or_create(&tls_dir, &config.certificate_names(), &ca)?;
    let (admin, generated) = Admin::init(&store, config.admin_password.as_deref()).await?;
    let admin = Arc::new(admin);
    let registry = Registry::new(store.clone());
    bootstrap(&registry).await?;

    let shutdown = CancellationToken::new();
    let listener = TcpListener::bind(config.address)
        .await
        .map_err(StartError::io(format!("listening on {}", config.address)))?;
    let address = listener
        .local_addr()
        .map_err(StartError::io("reading the listening address"))?;
    let kubeconfig = write_admin_kubeconfig(&config, &tls, address)?;

    let url = format!("https://{}", connect_address(address));
    let key_set = keys::load_or_create(&store).await?;
    let view = AuthView::new(key_set);
    let cache = Arc::new(crate::registry::cache::ObjectCache::new(
        OBJECT_CACHE_CAPACITY,
    ));
    let minter = TokenMinter::new(view.clone(), tls.ca_cert_pem.clone());
    let handlers: Vec<Box<dyn informer::Handler>> = vec![
        Box::new(crate::registry::cache::CacheInvalidator(cache.clone())),
        Box::new(view.writer()),
        Box::new(AdminWatcher(admin.clone())),
        Box::new(GarbageCollector::start(registry.clone(), shutdown.clone())),
        Box::new(NamespaceController::start(
            registry.clone(),
            shutdown.clone(),
        )),
        Box::new(ProjectController::start(registry.clone(), shutdown.clone())),
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
    if let Some(interval) = config.compaction_interval.filter(|i| !i.is_zero()) {
        tokio::spawn(crate::controllers::compactor::run(
            store.clone(),
            interval,
            shutdown.clone(),
        ));
    }
    tokio::spawn(informer::run(
        store.clone(),
        handlers,
        synced_tx,
        shutdown.clone(),
    ));
    // Serve only once the auth view holds everything written before this start.
    synced_rx
        .wait_for(|seen| *seen >= initial)
        .await
        .map_err(|_| StartError::Informer)?;

    let registry = registry.with_cache(cache, synced_rx.clone());
    let issuer = config.issuer.clone().unwrap_or_else(|| url.clone());
    let authz = Arc::new(Authorizer::new(view.clone()));
    let kargo = crate::kargo::Kargo::new(registry.clone(), authz.clone(), synced_rx.clone())
        .with_minter(minter);
    let state = AppState::new(App {
        registry,
        authn: Arc::new(
            Authenticator::new(
                admin,
                Arc::new(TokenAuthenticator::new(view.clone(), issuer)),
            )
            .with_admin_enabled(config.admin_enabled),
        ),
        authz,
        advertised_address: connect_address(address),
        shutdown: shutdown.clone(),
        kargo: Arc::new(kargo),
        synced: synced_rx,
        limits: crate::limits::RequestLimits::new(&config.limits),
    });
    let app = crate::http::Api::new(state);
    tokio::spawn(crate::serve::serve(
        listener,
        tls.server_config()?,
        app,
        connection_limits(&config.limits),
        shutdown.clone(),
    ));

    tracing::info!(%url, "kargo server listening");
    Ok(Started {
        address,
        url,
        ca_path: tls.ca_path.clone(),
        kubeconfig,
        generated_password: generated,
        shutdown,
    })
}

/// Runs the server until SIGINT or SIGTERM; `on_start` receives the started server (to print its
/// banner).
pub async fn run(config: ServerConfig, on_start: impl FnOnce(&Started)) -> Result<(), StartError> {
    let started = start(config).await?;
    on_start(&started);
    wait_for_signal().await;
    tracing::info!("shutting down");
    started.shutdown.cancel();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    Ok(())
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

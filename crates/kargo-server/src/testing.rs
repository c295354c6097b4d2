//! The in-process test tier: the whole API (`server::assemble`, the same assembly
//! `kargo server` listens with) over a temporary SQLite store, driven request by request through
//! [`kargo_http::Api::call`] with no socket and no TLS, as kube-rs tests its client against a
//! mock service. A test reads what a client would: the status code and the JSON body.
//!
//! ```no_run
//! # async fn example() {
//! use kargo_server::testing::TestApi;
//! let api = TestApi::new().await;
//! let admin = api.admin_token.clone();
//! let (code, body) = api.request(http::Method::GET, "/v1beta1/projects", None, Some(&admin)).await;
//! # }
//! ```

use std::net::SocketAddr;
use std::sync::Arc;

use http::{Method, StatusCode};
use kargo_http::observe::Observers;
use kargo_store::Store;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::server::{ServerConfig, StoreConfig, assemble};

/// The address requests come from (the listener would give the client's).
pub const CLIENT_ADDRESS: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 40000);

/// The largest response body [`TestApi::request`] reads.
const MAX_RESPONSE: usize = 16 * 1024 * 1024;

/// The whole API over a temporary SQLite store; stopped (controllers, informer) when dropped.
pub struct TestApi {
    api: kargo_http::Api,
    /// A bearer token of the admin (`system:masters`), as `POST /v1beta1/login` gives.
    pub admin_token: String,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

impl TestApi {
    /// A new API on an empty store.
    pub async fn new() -> TestApi {
        TestApi::with_observers(Observers::default()).await
    }

    /// A new API on an empty store, whose requests `observers` see.
    ///
    /// # Panics
    /// If the API cannot be assembled (a test cannot go on without it).
    pub async fn with_observers(observers: Observers) -> TestApi {
        TestApi::with_config(observers, |_| {}).await
    }

    /// A new API on an empty store, whose requests `observers` see, with the server's
    /// configuration changed by `configure` (OIDC, the admin account...).
    ///
    /// # Panics
    /// If the API cannot be assembled (a test cannot go on without it).
    pub async fn with_config(
        observers: Observers,
        configure: impl FnOnce(&mut ServerConfig),
    ) -> TestApi {
        TestApi::with_store(observers, configure, |store| store).await
    }

    /// [`TestApi::with_config`] with the store wrapped by `wrap` (to count or fail what the
    /// server asks of it).
    ///
    /// # Panics
    /// If the API cannot be assembled (a test cannot go on without it).
    #[allow(clippy::expect_used)]
    pub async fn with_store(
        observers: Observers,
        configure: impl FnOnce(&mut ServerConfig),
        wrap: impl FnOnce(Arc<dyn Store>) -> Arc<dyn Store>,
    ) -> TestApi {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut config = ServerConfig {
            address: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: dir.path().to_owned(),
            store: StoreConfig::Sqlite,
            admin_password: None,
            admin_enabled: true,
            revoke_admin_sessions: false,
            tls_names: Vec::new(),
            issuer: None,
            compaction_interval: None,
            event_ttl: std::time::Duration::from_secs(3600),
            max_object_bytes: kargo_api::limits::MAX_OBJECT_BYTES,
            init: false,
            encryption_config: None,
            limits: kargo_http::limits::Limits::default(),
            oidc: None,
            federation: None,
            metrics_address: None,
            observe: true,
            build: kargo_api::version::Build::unknown(),
            shutdown_delay: std::time::Duration::ZERO,
            audit: None,
            token_lifetimes: kargo_core::TokenLifetimes::default(),
            token_last_used_interval: kargo_controllers::last_used::INTERVAL,
        };
        configure(&mut config);
        let store = wrap(config.store.open(dir.path()).await.expect("a SQLite store"));
        let (store, tripped) = kargo_store::tripwire(store);
        let shutdown = CancellationToken::new();
        let assembled = assemble(
            &config,
            store,
            &tripped,
            "127.0.0.1:8443".into(),
            shutdown.clone(),
            observers,
        )
        .await
        .expect("the API assembles");
        let admin_token = assembled.admin.issue_token().expect("an admin token");
        TestApi {
            api: assembled.api,
            admin_token,
            shutdown,
            _dir: dir,
        }
    }

    /// Sends `request` as it is from [`CLIENT_ADDRESS`] and returns the whole response.
    pub async fn call(&self, request: http::Request<axum::body::Body>) -> axum::response::Response {
        self.api.clone().call(request, Some(CLIENT_ADDRESS)).await
    }

    /// Starts the server's shutdown (what SIGTERM does first).
    pub fn begin_shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Sends one request from [`CLIENT_ADDRESS`], with `body` as JSON and `bearer` as its
    /// `Authorization: Bearer` token, and returns the status code and the body as JSON (`Null`
    /// when empty, a string when not JSON).
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        bearer: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut request = http::Request::builder().method(method).uri(path);
        if let Some(token) = bearer {
            request = request.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let body = match body {
            Some(json) => {
                request = request.header(http::header::CONTENT_TYPE, "application/json");
                axum::body::Body::from(json.to_string())
            }
            None => axum::body::Body::empty(),
        };
        let request = match request.body(body) {
            Ok(request) => request,
            Err(e) => return (StatusCode::BAD_REQUEST, Value::String(e.to_string())),
        };
        let response = self.api.clone().call(request, Some(CLIENT_ADDRESS)).await;
        let code = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), MAX_RESPONSE)
            .await
            .unwrap_or_default();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        (code, body)
    }
}

impl Drop for TestApi {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

//! The HTTP layer: routes, authentication middleware and rendering. Thin by design: each handler
//! parses, calls one function of a lower layer, and renders the result. Kubernetes routes answer
//! with Kubernetes objects and `Status` errors; Kargo routes (`/v1beta1`) answer with Kargo bodies
//! and `{"error": "..."}`.

pub mod body;
pub mod discovery;
pub mod kargo;
pub mod kargo_openapi;
pub mod keys;
pub mod kube;
pub mod openapi;
pub mod request_info;
pub mod reviews;
pub mod table;
pub mod throttle;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderValue, StatusCode};
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::auth::Authorizer;
use crate::auth::authn::{AuthFailure, Authenticator, PeerIdentity};
use crate::auth::rbac::UserInfo;
use crate::registry::Registry;
use crate::status::{Result, Status};
use request_info::RequestInfo;

/// What every handler can reach: cheap to clone (one reference count), as axum clones it for
/// every extractor of every request.
#[derive(Clone)]
pub struct AppState(Arc<App>);

impl AppState {
    /// Shares `app` with every handler.
    pub fn new(app: App) -> AppState {
        AppState(Arc::new(app))
    }
}

impl std::ops::Deref for AppState {
    type Target = App;

    fn deref(&self) -> &App {
        &self.0
    }
}

/// The server's parts the HTTP layer uses.
pub struct App {
    /// Objects.
    pub registry: Registry,
    /// Who is calling.
    pub authn: Arc<Authenticator>,
    /// What they may do.
    pub authz: Arc<Authorizer>,
    /// `host:port` clients reach the server at.
    pub advertised_address: String,
    /// Cancelled when the server shuts down (ends watches).
    pub shutdown: CancellationToken,
    /// Kargo semantics on top of the registry.
    pub kargo: Arc<crate::kargo::Kargo>,
    /// The revision the informer (and so the auth view) has applied.
    pub synced: tokio::sync::watch::Receiver<kargo_store::Revision>,
}

impl App {
    /// Authorizes a request or answers 403 with kube-apiserver's message.
    pub fn authorize(&self, user: &UserInfo, info: &RequestInfo<'_>) -> Result<()> {
        self.authz.authorize_request(user, info)
    }

    /// Waits until this server's view holds exactly the keys of `set` (after a rotation).
    pub async fn await_key_set(&self, set: &crate::auth::keys::KeySet) {
        let wanted: Vec<String> = set.all().map(|k| k.kid.clone()).collect();
        for _ in 0..200 {
            let seen: Vec<String> = self
                .authz
                .view()
                .keys()
                .all()
                .map(|k| k.kid.clone())
                .collect();
            if seen == wanted {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// Waits until this server's views have applied the write that produced `object`, so that
    /// the client's next request sees it (a deleted token is refused by the very next request).
    pub async fn await_seen(&self, object: &serde_json::Value) {
        let Some(revision) = crate::registry::object::parse_revision(
            crate::registry::Meta::resource_version(object),
        ) else {
            return;
        };
        let mut synced = self.synced.clone();
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(2),
            synced.wait_for(|seen| *seen >= revision),
        )
        .await;
    }
}

/// The whole API as one service: requests to the Kubernetes API, the hottest path, go straight
/// to their handler; everything else goes through an axum router.
#[derive(Clone)]
pub struct Api {
    state: AppState,
    router: Router,
}

impl Api {
    /// The API of `state`.
    pub fn new(state: AppState) -> Api {
        Api {
            router: router(state.clone()),
            state,
        }
    }

    /// Answers one request.
    pub async fn call<B>(self, request: http::Request<B>) -> Response
    where
        B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        if is_kube_path(request.uri().path()) {
            return kube_request(self.state, request.map(axum::body::Body::new)).await;
        }
        match self.router.oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }
}

/// Everything but the Kubernetes API, as one axum router. The Kubernetes API (`/api...`,
/// `/apis...`) parses its own path ([`RequestInfo`]); [`Api`] sends it those requests without
/// routing.
fn router(state: AppState) -> Router {
    let openapi = Router::new()
        .route("/openapi/v3", get(openapi_root))
        .route("/openapi/v3/{*rest}", get(openapi_group_version))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            authenticate_kube,
        ));
    Router::new()
        .route("/healthz", get(health))
        .route("/livez", get(health))
        .route("/readyz", get(health))
        .route("/version", get(version))
        .route(
            "/.well-known/openid-configuration",
            get(reviews::openid_configuration),
        )
        .route("/openid/v1/jwks", get(reviews::jwks))
        .merge(openapi)
        .merge(kargo::router(state.clone()))
        .merge(keys::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// Whether a path belongs to the Kubernetes API.
fn is_kube_path(path: &str) -> bool {
    ["/api", "/apis"].iter().any(|root| {
        path.strip_prefix(root)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

/// A Kubernetes API request, authenticated here.
async fn kube_request(app: AppState, request: Request) -> Response {
    match authenticate(&app, request).await {
        Ok((user, request)) => kube::handle(&app, user, request).await,
        Err(response) => response,
    }
}

async fn health() -> &'static str {
    "ok"
}

async fn version() -> Response {
    json_response(StatusCode::OK, &discovery::version(), &[])
}

/// A route that exists with another method (only the Kargo routes are routed by method): read
/// what the client sends, then answer as the Kargo API does.
async fn method_not_allowed(request: Request) -> Response {
    drain(request).await;
    kargo::KargoError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed").into_response()
}

async fn not_found() -> Response {
    Status::no_route().into_response()
}

async fn openapi_root() -> Response {
    json_response(StatusCode::OK, openapi::root(), &[])
}

async fn openapi_group_version(axum::extract::Path(rest): axum::extract::Path<String>) -> Response {
    match openapi::group_version(&rest) {
        Some(doc) => json_response(StatusCode::OK, doc, &[]),
        None => Status::no_route().into_response(),
    }
}

/// Authenticates a Kubernetes API request: its user, or the 401 `Status` to answer.
async fn authenticate(
    app: &App,
    request: Request,
) -> std::result::Result<(Arc<UserInfo>, Request), Response> {
    let header = request
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let peer = request.extensions().get::<PeerIdentity>();
    let source = throttle::client_address(request.extensions());
    match app.authn.authenticate(header, peer, source) {
        Ok(user) => Ok((user, request)),
        Err(AuthFailure::Missing | AuthFailure::Invalid) => {
            drain(request).await;
            Err(Status::unauthorized().into_response())
        }
        Err(AuthFailure::TooMany { retry_after }) => {
            drain(request).await;
            let message = AuthFailure::too_many_message(retry_after);
            Err(throttle::kube_too_many(message, retry_after))
        }
    }
}

/// [`authenticate`] as a middleware (the OpenAPI documents).
async fn authenticate_kube(State(app): State<AppState>, request: Request, next: Next) -> Response {
    match authenticate(&app, request).await {
        Ok((user, mut request)) => {
            request.extensions_mut().insert(user);
            next.run(request).await
        }
        Err(response) => response,
    }
}

/// Reads (and drops) a small request body before answering without it, so that an HTTP/2 client
/// still sending it gets the answer rather than a reset stream.
pub async fn drain(request: Request) {
    let _ = body::read(request.into_body(), 64 * 1024).await;
}

/// A JSON response with `Warning` headers.
pub fn json_response<T: Serialize + ?Sized>(
    code: StatusCode,
    body: &T,
    warnings: &[String],
) -> Response {
    let bytes = match serde_json::to_vec(body) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "encoding a response failed");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "encoding the response failed",
            )
                .into_response();
        }
    };
    let mut response = (code, bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    for warning in warnings {
        let text = format!("299 - {}", crate::status::quote(warning));
        if let Ok(v) = HeaderValue::from_str(&text) {
            headers.append(http::header::WARNING, v);
        }
    }
    response
}

impl IntoResponse for Status {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        json_response(code, &self, &[])
    }
}

#[cfg(test)]
mod tests {
    use super::is_kube_path;

    #[test]
    fn the_kubernetes_api_is_api_and_apis_and_what_is_below_them() {
        for path in [
            "/api",
            "/api/",
            "/api/v1/namespaces",
            "/apis",
            "/apis/rbac.authorization.k8s.io/v1",
        ] {
            assert!(is_kube_path(path), "{path}");
        }
        for path in [
            "/",
            "/apix",
            "/apisx/v1",
            "/healthz",
            "/v1beta1/projects",
            "/openapi/v3",
        ] {
            assert!(!is_kube_path(path), "{path}");
        }
    }
}

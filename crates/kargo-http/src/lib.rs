//! The HTTP layer: routes, authentication middleware and rendering. Thin by design: each handler
//! parses, calls one function of a lower layer, and renders the result. Kubernetes routes answer
//! with Kubernetes objects and `Status` errors; Kargo routes (`/v1beta1`) answer with Kargo bodies
//! and `{"error": "..."}`.
//!
//! Also the HTTPS listener ([`serve`]), the limits on connections and requests ([`limits`]) and
//! the Kubernetes protobuf decoder ([`protobuf`]). Depends on `kargo-core` and below.

pub mod audit;
pub mod body;
mod discovery;
pub mod failure_log;
pub mod health;
mod impersonation;
mod kargo;
pub mod kargo_openapi;
mod keys;
mod kube;
pub mod limits;
mod metadata;
pub mod metrics;
pub mod observe;
mod openapi;
pub mod protobuf;
mod reviews;
pub mod serve;
mod table;
mod throttle;
mod token_exchange;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::extract::{RawQuery, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderValue, StatusCode};
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use kargo_api::request_info::RequestInfo;
use kargo_auth::Authorizer;
use kargo_auth::authn::{AuthFailure, Authenticator, PeerIdentity};
use kargo_auth::rbac::UserInfo;
use kargo_registry::Registry;
use kargo_registry::status::{Result, Status};

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
    pub kargo: Arc<kargo_core::Kargo>,
    /// The revision the informer (and so the auth view) has applied.
    pub synced: tokio::sync::watch::Receiver<kargo_store::Revision>,
    /// In-flight pools, watch slots and request timeouts.
    pub limits: crate::limits::RequestLimits,
    /// Who sees every request ([`observe`]); none by default.
    pub observers: observe::Observers,
    /// The metrics `GET /metrics` writes; without them `/metrics` is a 404.
    pub metrics: Option<Arc<metrics::Metrics>>,
    /// What `/livez` and `/readyz` check ([`health`]).
    pub health: health::Health,
    /// This build, reported at `/version`.
    pub build: kargo_api::version::Build,
    /// The audit log (also among the observers), for its counters; `None` without
    /// `--audit-log-path`.
    pub audit: Option<Arc<audit::Audit>>,
}

impl App {
    /// Authorizes a request or answers 403 with kube-apiserver's message.
    pub(crate) fn authorize(&self, user: &UserInfo, info: &RequestInfo<'_>) -> Result<()> {
        self.authz.authorize_request(user, info)
    }

    /// Waits until this server's view holds exactly the keys of `set` (after a rotation).
    pub(crate) async fn await_key_set(&self, set: &kargo_auth::keys::KeySet) {
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
    pub(crate) async fn await_seen(&self, object: &serde_json::Value) {
        let Some(revision) =
            kargo_registry::object::parse_revision(kargo_registry::Meta::resource_version(object))
        else {
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

/// Pages served beside the API, such as the web UI (`kargo-ui`, a layer above): given to
/// [`Api::with_pages`], they answer the paths they claim, under the same limits and request seam
/// as every other route, and reach the API itself only as a client would (through an [`Api`]
/// of their own, with the signed-in user's bearer token).
pub trait Pages: Send + Sync + 'static {
    /// Whether these pages answer `path` (never a path of the API).
    fn serves(&self, path: &str) -> bool;

    /// The answer to one request for a path they serve; `source` is the client's address.
    fn answer(&self, request: Request, source: Option<SocketAddr>) -> PagesFuture;
}

/// What [`Pages::answer`] returns.
pub type PagesFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Response> + Send>>;

/// The whole API as one service: requests to the Kubernetes API, the hottest path, go straight
/// to their handler; everything else goes through an axum router.
#[derive(Clone)]
pub struct Api {
    state: AppState,
    router: Router,
    pages: Option<Arc<dyn Pages>>,
}

impl Api {
    /// The API of `state`.
    pub fn new(state: AppState) -> Api {
        Api {
            router: router(state.clone()),
            state,
            pages: None,
        }
    }

    /// This API with `pages` answering the paths they serve (the API's own paths are theirs to
    /// leave alone).
    pub fn with_pages(self, pages: Arc<dyn Pages>) -> Api {
        Api {
            pages: Some(pages),
            ..self
        }
    }

    /// Answers one request. Every request passes here, so the request-side limits are enforced
    /// here (`limits`): health checks are always answered; watches are long-running (bounded by
    /// the watch slots and their own timeout); every other request takes a place in its
    /// in-flight pool or gets kube-apiserver's 429, and is answered within `--request-timeout`.
    /// As in kube-apiserver, a Kubernetes API request is authenticated before it takes a place,
    /// so that unauthenticated requests cannot fill the pools.
    ///
    /// `source` is the client's address, by which failed authentications are counted: handed to
    /// the Kubernetes API directly, and to the router as a `ConnectInfo` extension (not on the
    /// hot path: an extension costs an allocation per request).
    ///
    /// This is the request seam ([`observe`]): each answered request makes one record for the
    /// app's observers, when its response head is ready. With no observer, the cost is this one
    /// branch.
    pub async fn call<B>(self, request: http::Request<B>, source: Option<SocketAddr>) -> Response
    where
        B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        if self.state.observers.is_empty() {
            return self.answer(request, source, None).await;
        }
        // Not boxed: `call_observed` boxes `answer`, so its own future is small.
        self.call_observed(request, source).await
    }

    /// [`Api::call`] with observers: answers, then makes the request's record.
    async fn call_observed<B>(
        self,
        request: http::Request<B>,
        source: Option<SocketAddr>,
    ) -> Response
    where
        B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        let started = std::time::Instant::now();
        let id = observe::RequestId::next();
        let (method, uri) = (request.method().clone(), request.uri().clone());
        let user_agent = request.headers().get(http::header::USER_AGENT).cloned();
        self.state.observers.started(&method);
        let kargo_route = uri.path().starts_with("/v1beta1");
        let watch = is_kube_path(uri.path()) && is_watch(&request);
        // Parsed once, for the record and for the handler.
        let info = RequestInfo::parse(method.as_str(), uri.path(), watch);
        // A panic is logged by the process's panic hook (with this request's id); the client
        // gets a 500 `InternalError` instead of a dropped connection.
        let notes = self.state.observers.wants_notes(&method);
        let (answered, user, mut notes) = if notes && observe::is_mutating(&method) {
            // A write is recorded too (boxed: writes are few, and cost far more than a box).
            let recorded = Box::pin(kargo_registry::touched::recording(self.answer(
                request,
                source,
                Some(&info),
            )));
            let (answered, user, mut notes) = observe::Answering::new(id, recorded, true).await;
            let answered = answered.map(|(response, touched)| {
                if let Some(notes) = &mut notes {
                    notes.touched = touched;
                }
                response
            });
            (answered, user, notes)
        } else {
            observe::Answering::new(id, self.answer(request, source, Some(&info)), notes).await
        };
        let mut response = answered.unwrap_or_else(|_| {
            notes = None;
            id.as_current(|| render_limit(kargo_route, panicked()))
        });
        response
            .headers_mut()
            .insert(observe::AUDIT_ID_HEADER, id.header_value());
        self.state.observers.request(&observe::RequestRecord {
            id,
            user: user.as_deref(),
            info: &info,
            method: &method,
            uri: &uri,
            user_agent: user_agent.as_ref(),
            status: response.status(),
            duration: started.elapsed(),
            source,
            notes: notes.as_ref(),
        });
        response
    }

    /// [`Api::call`] without its observation; `info` is the request's, if already parsed.
    async fn answer<B>(
        &self,
        mut request: http::Request<B>,
        source: Option<SocketAddr>,
        info: Option<&RequestInfo<'_>>,
    ) -> Response
    where
        B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        let path = request.uri().path();
        if is_kube_path(path) {
            let watch = is_watch(&request);
            let request = request.map(axum::body::Body::new);
            let source = source.map(|s| s.ip());
            return kube_request(&self.state, request, watch, source, info).await;
        }
        if health::is_health_path(path) {
            return self.route(request).await;
        }
        let kargo_route = path.starts_with("/v1beta1");
        if let Some(source) = source {
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(source));
        }
        let limits = &self.state.limits;
        let Some(_permit) = limits.inflight.try_acquire(request.method()) else {
            drain_later(request.map(axum::body::Body::new));
            return too_many_requests(kargo_route);
        };
        let answered = match &self.pages {
            Some(pages) if pages.serves(request.uri().path()) => {
                let request = request.map(axum::body::Body::new);
                crate::limits::within(limits.request_timeout, pages.answer(request, source)).await
            }
            _ => crate::limits::within(limits.request_timeout, self.route(request)).await,
        };
        match answered {
            Ok(response) => response,
            Err(_) => render_limit(kargo_route, crate::limits::request_timed_out()),
        }
    }

    async fn route<B>(&self, request: http::Request<B>) -> Response
    where
        B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        match self.router.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }
}

/// Whether a path is one of the health checks, which no limit refuses.
/// Whether a Kubernetes API request is a watch: a GET with `?watch=true` (or `1`), or of the old
/// `/api/v1/watch/...` and `/apis/GROUP/VERSION/watch/...` paths.
fn is_watch<B>(request: &http::Request<B>) -> bool {
    if request.method() != http::Method::GET {
        return false;
    }
    let uri = request.uri();
    let path = uri.path();
    let watch_path = match path.strip_prefix("/apis/") {
        Some(rest) => rest.split('/').nth(2) == Some("watch"),
        None => path
            .strip_prefix("/api/")
            .is_some_and(|rest| rest.split('/').nth(1) == Some("watch")),
    };
    // The first `watch` parameter counts, as in kube-apiserver (and `kube::flag`).
    watch_path
        || uri.query().is_some_and(|q| {
            q.contains("watch=")
                && form_urlencoded::parse(q.as_bytes())
                    .find(|(k, _)| k == "watch")
                    .is_some_and(|(_, v)| matches!(&*v, "true" | "1"))
        })
}

/// kube-apiserver's 429 with `Retry-After`; Kargo routes get it as `{"error": ...}`.
fn too_many_requests(kargo_route: bool) -> Response {
    let mut response = render_limit(kargo_route, crate::limits::too_many_requests());
    response.headers_mut().insert(
        http::header::RETRY_AFTER,
        HeaderValue::from(crate::limits::RETRY_AFTER_SECONDS),
    );
    response
}

/// The answer to a request whose handling panicked: a 500 `InternalError` with a generic
/// message (the panic itself is in the log, under the request's id).
fn panicked() -> Status {
    Status::internal("an error on the server has prevented the request from succeeding")
}

/// A limit's (or a panic's) `Status`, or on a Kargo route (`/v1beta1`) the same code and
/// message as Kargo's `{"error": ...}`.
fn render_limit(kargo_route: bool, status: Status) -> Response {
    if kargo_route {
        kargo::KargoError::from(status).into_response()
    } else {
        status.into_response()
    }
}

/// Everything but the Kubernetes API, as one axum router. The Kubernetes API (`/api...`,
/// `/apis...`) parses its own path ([`RequestInfo`]); [`Api`] sends it those requests without
/// routing.
fn router(state: AppState) -> Router {
    let openapi = Router::new()
        .route("/openapi/v2", get(openapi_v2))
        .route("/openapi/v3", get(openapi_root))
        .route("/openapi/v3/{*rest}", get(openapi_group_version))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            authenticate_kube,
        ));
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/healthz/{name}", get(health::healthz_one))
        .route("/livez", get(health::livez))
        .route("/livez/{name}", get(health::livez_one))
        .route("/readyz", get(health::readyz))
        .route("/readyz/{name}", get(health::readyz_one))
        .route("/version", get(version))
        // The Python client (and client-go's RESTClient for `/version/`) ask with the slash.
        .route("/version/", get(version))
        .route("/metrics", get(serve_metrics))
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

/// A Kubernetes API request, authenticated here, then held to its in-flight pool (unless it is a
/// watch) and `--request-timeout`. `info` is its attributes, if the seam parsed them.
async fn kube_request(
    app: &AppState,
    request: Request,
    watch: bool,
    source: Option<IpAddr>,
    info: Option<&RequestInfo<'_>>,
) -> Response {
    let (user, request) = match authenticate(app, request, source).await {
        Ok(authenticated) => authenticated,
        Err(response) => return response,
    };
    kube_authenticated(app, &user, request, watch, info).await
}

/// [`kube_request`] once authenticated.
async fn kube_authenticated(
    app: &AppState,
    user: &UserInfo,
    request: Request,
    watch: bool,
    info: Option<&RequestInfo<'_>>,
) -> Response {
    let limits = &app.limits;
    // Watches take no place (the watch slots bound them); their stream outlives the timeout,
    // which bounds only the start (the body, the initial list).
    let permit = (!watch).then(|| limits.inflight.try_acquire(request.method()));
    // kube-apiserver lets system:masters through a full pool, so the operator can act during a
    // flood.
    if matches!(permit, Some(None)) && !user.groups.iter().any(|g| g == kargo_auth::authn::MASTERS)
    {
        drain_later(request);
        return too_many_requests(false);
    }
    let handled = kube::handle(app, user, request, info);
    let response = match crate::limits::within(limits.request_timeout, handled).await {
        Ok(response) => response,
        Err(_) => crate::limits::request_timed_out().into_response(),
    };
    drop(permit);
    response
}

/// `GET /metrics`: the metrics in the OpenMetrics text format, to an authenticated user allowed
/// to `get` the non-resource URL `/metrics` (RBAC `nonResourceURLs`, as kube-apiserver).
async fn serve_metrics(State(app): State<AppState>, request: Request) -> Response {
    let source = throttle::client_address(request.extensions());
    let (user, _request) = match authenticate(&app, request, source).await {
        Ok(authenticated) => authenticated,
        Err(response) => return response,
    };
    let attributes = kargo_auth::rbac::Attributes::non_resource("get", "/metrics");
    match (app.authz.authorize(&user, &attributes), &app.metrics) {
        (Err(status), _) => status.into_response(),
        (Ok(()), None) => Status::no_route().into_response(),
        (Ok(()), Some(metrics)) => (
            [(http::header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
            metrics.encode(),
        )
            .into_response(),
    }
}

async fn version(State(app): State<AppState>) -> Response {
    json_response(StatusCode::OK, &app.build.kube_info(), &[])
}

/// A route that exists with another method (only the Kargo routes are routed by method): read
/// what the client sends, then answer as the Kargo API does.
async fn method_not_allowed(request: Request) -> Response {
    drain(request).await;
    kargo::KargoError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed").into_response()
}

/// No such route: read what the client sends first, so that an HTTP/2 client still sending a
/// body gets the 404 rather than a reset stream.
async fn not_found(request: Request) -> Response {
    drain(request).await;
    Status::no_route().into_response()
}

async fn openapi_root(RawQuery(query): RawQuery, headers: http::HeaderMap) -> Response {
    openapi::serve(openapi::Request::Root, query.as_deref(), &headers)
}

async fn openapi_v2(RawQuery(query): RawQuery, headers: http::HeaderMap) -> Response {
    openapi::serve(openapi::Request::V2, query.as_deref(), &headers)
}

async fn openapi_group_version(
    axum::extract::Path(rest): axum::extract::Path<String>,
    RawQuery(query): RawQuery,
    headers: http::HeaderMap,
) -> Response {
    openapi::serve(
        openapi::Request::GroupVersion(&rest),
        query.as_deref(),
        &headers,
    )
}

/// Authenticates a Kubernetes API request: its user, or the 401 `Status` to answer.
async fn authenticate(
    app: &App,
    request: Request,
    source: Option<IpAddr>,
) -> std::result::Result<(observe::NotedUser, Request), Response> {
    let header = request
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let peer = request.extensions().get::<PeerIdentity>();
    match app.authn.authenticate_waiting(header, peer, source).await {
        Ok(user) => match impersonation::act_as(&app.authz, user, request.headers()) {
            Ok(user) => Ok((app.observers.note_user_at_end(user), request)),
            Err(status) => {
                Box::pin(drain(request)).await;
                Err(status.into_response())
            }
        },
        // The refusals' drains are boxed, to keep the authenticated path's future small.
        Err(AuthFailure::Missing | AuthFailure::Invalid) => {
            Box::pin(drain(request)).await;
            Err(Status::unauthorized().into_response())
        }
        Err(AuthFailure::TooMany { retry_after }) => {
            Box::pin(drain(request)).await;
            let message = AuthFailure::too_many_message(retry_after);
            Err(throttle::kube_too_many(message, retry_after))
        }
    }
}

/// [`authenticate`] as a middleware (the OpenAPI documents).
async fn authenticate_kube(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let source = throttle::client_address(request.extensions());
    match authenticate(&app, request, source).await {
        Ok((user, mut request)) => {
            request.extensions_mut().insert(user.shared());
            next.run(request).await
        }
        Err(response) => response,
    }
}

/// Reads (and drops) a small request body before answering without it, so that an HTTP/2 client
/// still sending it gets the answer rather than a reset stream. Bounded in size and time: a
/// client that sends slowly gets its answer after [`DRAIN_TIMEOUT`] anyway.
pub(crate) async fn drain(request: Request) {
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, body::read(request.into_body(), DRAIN_LIMIT)).await;
}

/// [`drain`] while the answer goes out: a refused client gets its 429 at once however slowly it
/// sends, and the drain holds no place in any pool.
pub(crate) fn drain_later(request: Request) {
    if !axum::body::HttpBody::is_end_stream(request.body()) {
        tokio::spawn(drain(request));
    }
}

/// How much of an unwanted body [`drain`] reads.
const DRAIN_LIMIT: usize = 64 * 1024;
/// How long [`drain`] waits for an unwanted body.
const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// A JSON response with `Warning` headers.
pub(crate) fn json_response<T: Serialize + ?Sized>(
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
        let text = format!("299 - {}", kargo_registry::status::quote(warning));
        if let Ok(v) = HeaderValue::from_str(&text) {
            headers.append(http::header::WARNING, v);
        }
    }
    response
}

/// A Kubernetes `Status` as a response. (`Status` lives in `kargo-registry`, which knows no
/// HTTP, so this layer adds the conversion.)
pub(crate) trait StatusResponse {
    /// The response: the status code and the `Status` as JSON.
    fn into_response(self) -> Response;
}

impl StatusResponse for Status {
    fn into_response(self) -> Response {
        if self.code >= 400 {
            observe::note(|notes| {
                notes.refusal = Some(observe::Refusal {
                    reason: self.reason,
                    message: self.message.clone(),
                });
            });
        }
        let status = with_request_id(self);
        let code = StatusCode::from_u16(status.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        json_response(code, &status, &[])
    }
}

/// A 5xx `Status` (`InternalError`, `ServiceUnavailable`, `Timeout`: what an operator looks up)
/// names its request, as a cause `{"reason":"RequestID","message":"<id>"}` beside the
/// `Audit-ID` header, so that a user can quote it from any client's output. Clients print the
/// message, not the causes, of such a status, so their output stays as kube-apiserver's.
fn with_request_id(mut status: Status) -> Status {
    if status.code < 500 {
        return status;
    }
    if let Some(id) = observe::RequestId::current() {
        let details = status.details.get_or_insert_with(Default::default);
        details.causes.push(kargo_registry::status::Cause {
            reason: "RequestID".to_owned(),
            message: id.to_string(),
            field: String::new(),
        });
    }
    status
}

#[cfg(test)]
mod tests {
    use super::{is_kube_path, is_watch};

    #[test]
    fn watches_are_gets_with_watch_true_or_of_the_old_watch_paths() {
        let check = |method: &str, uri: &str, expected: bool| {
            let request = http::Request::builder()
                .method(method)
                .uri(uri)
                .body(())
                .unwrap_or_default();
            assert_eq!(is_watch(&request), expected, "{method} {uri}");
        };
        check("GET", "/api/v1/namespaces/p/configmaps?watch=true", true);
        check("GET", "/api/v1/configmaps?watch=1&resourceVersion=5", true);
        check("GET", "/api/v1/watch/namespaces/p/configmaps", true);
        check(
            "GET",
            "/apis/rbac.authorization.k8s.io/v1/watch/roles",
            true,
        );
        check("GET", "/api/v1/namespaces/p/configmaps?watch=false", false);
        check("GET", "/api/v1/namespaces/watch/configmaps", false);
        check("GET", "/apis/watch/v1/namespaces/p/things", false);
        check("POST", "/api/v1/namespaces/p/configmaps?watch=true", false);
        check("DELETE", "/api/v1/watch/namespaces/p/configmaps/x", false);
    }

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

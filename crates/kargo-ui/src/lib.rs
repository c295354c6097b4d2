//! The web UI of `kargo server`, for project admins: server-rendered HTML pages (`maud`) under
//! `/ui/` (and `/`, which leads there), with a stylesheet and one small script embedded in the
//! binary. Every action is a request to the Kargo REST API or the Kubernetes API through
//! [`kargo_http::Api::call`], with the signed-in user's bearer token: the UI may do exactly what
//! that user may do with the CLI, and the API's refusal is what the page says.
//!
//! Sessions ([`session`]) are cookies holding a random id; the token stays on the server. Every
//! form carries the session's CSRF token; every answer carries a strict Content-Security-Policy
//! (no inline script or style, nothing from another origin). Pages work without JavaScript; the
//! script only adds the copy button and confirmations.
//!
//! Depends on `kargo-http` (and `kargo-api`'s pure helpers); `kargo-server` mounts it with
//! [`kargo_http::Api::with_pages`].

mod assets;
mod client;
mod extract;
mod form;
mod html;
mod kubeconfig;
mod pages;
mod scope;
mod session;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::response::Response;
use axum::routing::{get, post};
use http::HeaderValue;
use tower::ServiceExt;

use crate::session::Sessions;

/// What every page handler reaches.
pub(crate) struct UiState {
    /// The API the pages call (without these pages).
    pub(crate) api: kargo_http::Api,
    /// The signed-in users of this replica.
    pub(crate) sessions: Sessions,
    /// The identity provider, when single sign-on is configured.
    pub(crate) sso: Option<Arc<kargo_auth::oidc::OidcAuthenticator>>,
    /// Sign-ins under way at the provider.
    pub(crate) pending: pages::sso::Pending,
}

/// The shared state, as axum hands it to handlers.
pub(crate) type Shared = Arc<UiState>;

/// The browser's address, handed from [`kargo_http::Pages::answer`] to the handlers (the API
/// counts failed sign-ins by it).
#[derive(Clone, Copy)]
pub(crate) struct Source(pub(crate) Option<SocketAddr>);

/// The web UI, ready to be given to [`kargo_http::Api::with_pages`].
pub struct Ui {
    router: Router,
}

impl Ui {
    /// The UI over `api` (the API without these pages: the UI calls only API paths), with
    /// single sign-on through `sso` when the server has it.
    pub fn new(api: kargo_http::Api, sso: Option<Arc<kargo_auth::oidc::OidcAuthenticator>>) -> Ui {
        let state = Arc::new(UiState {
            api,
            sessions: Sessions::new(),
            sso,
            pending: pages::sso::Pending::new(),
        });
        Ui {
            router: router(state),
        }
    }
}

impl kargo_http::Pages for Ui {
    fn serves(&self, path: &str) -> bool {
        path == "/" || path == "/ui" || path.starts_with("/ui/")
    }

    fn answer(&self, mut request: Request, source: Option<SocketAddr>) -> kargo_http::PagesFuture {
        request.extensions_mut().insert(Source(source));
        let router = self.router.clone();
        Box::pin(async move {
            let mut response = match router.oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            secure(&mut response);
            response
        })
    }
}

/// The Content-Security-Policy of every UI answer: only this origin's script, style and
/// images; no inline script or style; forms post only here; no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; \
    frame-ancestors 'none'; base-uri 'none'";

/// Adds the security headers to an answer: the policy, no sniffing, no referrer, no framing,
/// and no caching (pages may show a new token once).
fn secure(response: &mut Response) {
    let headers = response.headers_mut();
    for (name, value) in [
        ("content-security-policy", CONTENT_SECURITY_POLICY),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("x-frame-options", "DENY"),
        ("cross-origin-opener-policy", "same-origin"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if !headers.contains_key(http::header::CACHE_CONTROL) {
        headers.insert(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        );
    }
}

/// The pages' routes: sign-in, projects, and the same pages for a project and for the system
/// level (`scope`).
fn router(state: Shared) -> Router {
    let scoped = Router::new()
        .route(
            "/accounts",
            get(pages::accounts::list).post(pages::accounts::create),
        )
        .route(
            "/accounts/{name}/delete",
            get(pages::accounts::confirm_delete).post(pages::accounts::delete),
        )
        .route("/roles", get(pages::roles::list).post(pages::roles::create))
        .route(
            "/roles/{name}",
            get(pages::roles::show).post(pages::roles::update),
        )
        .route("/roles/{name}/delete", post(pages::roles::delete))
        .route("/roles/{name}/grant", post(pages::roles::grant))
        .route("/roles/{name}/revoke", post(pages::roles::revoke))
        .route(
            "/tokens",
            get(pages::tokens::list).post(pages::tokens::create),
        )
        .route("/tokens/{kind}/{name}/{action}", post(pages::tokens::act));
    Router::new()
        .route("/", get(pages::home))
        .route("/ui", get(pages::home))
        .route("/ui/", get(pages::projects::list))
        .route("/ui/projects", post(pages::projects::create))
        .route("/ui/static/{file}", get(assets::serve))
        .route("/ui/login", get(pages::login::form))
        .route("/ui/login/password", post(pages::login::password))
        .route("/ui/login/token", post(pages::login::token))
        .route("/ui/login/sso", get(pages::sso::begin))
        .route("/ui/login/sso/callback", get(pages::sso::callback))
        .route("/ui/logout", post(pages::login::logout))
        .route("/ui/kubeconfig", post(kubeconfig::download))
        .nest("/ui/projects/{project}", scoped.clone())
        .nest("/ui/system", scoped)
        .fallback(pages::not_found)
        .with_state(state)
}

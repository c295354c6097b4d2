//! The Kargo REST API under `/v1beta1`: login, public configuration, the OpenAPI document, and
//! (on top of the `kargo` layer) projects, roles, service accounts and tokens. Errors are
//! `{"error": "<message>"}`.
//!
//! Every route but login, the public configuration and the OpenAPI document needs
//! `Authorization: Bearer <token>` (401 `no token provided` / `invalid token`; 429 with
//! `Retry-After` from an address that has sent too many invalid tokens, see `auth::limits`).
//! Bodies over 1 MiB are refused (413 `request body too large`); malformed JSON is a 400 with the
//! parser's message.

use std::collections::HashMap;

use axum::Extension;
use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequestParts, Path, Query, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::request::Parts;
use http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::json;

use super::throttle::{ClientAddress, client_address, kargo_too_many};
use super::{AppState, body, json_response};
use kargo_auth::authn::{AuthFailure, LoginError, bearer};
use kargo_auth::rbac::UserInfo;
use kargo_core::{self, Scope};
use kargo_registry::status::Status;

/// The largest request body the Kargo API takes.
pub const MAX_BODY: usize = 1024 * 1024;

/// A Kargo API error: a status code and a message, rendered as `{"error": message}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KargoError {
    /// The HTTP status code.
    pub code: StatusCode,
    /// The message.
    pub message: String,
}

impl KargoError {
    /// An error with a code and message.
    pub fn new(code: StatusCode, message: impl Into<String>) -> KargoError {
        KargoError {
            code,
            message: message.into(),
        }
    }
}

impl From<Status> for KargoError {
    fn from(status: Status) -> KargoError {
        KargoError::new(
            StatusCode::from_u16(status.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            status.message,
        )
    }
}

impl From<kargo_core::Error> for KargoError {
    fn from(err: kargo_core::Error) -> KargoError {
        let code = StatusCode::from_u16(err.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if code.is_server_error() {
            tracing::warn!(error = %err, "a Kargo API request failed");
        }
        KargoError::new(code, err.to_string())
    }
}

impl IntoResponse for KargoError {
    fn into_response(self) -> Response {
        json_response(self.code, &json!({"error": self.message}), &[])
    }
}

type Reply = Result<Response, KargoError>;

/// The Kargo routes.
pub fn router(state: AppState) -> Router<AppState> {
    let protected = Router::new()
        .route("/v1beta1/projects", get(list_projects).post(create_project))
        .route(
            "/v1beta1/projects/{project}",
            get(get_project).delete(delete_project),
        )
        .route(
            "/v1beta1/projects/{project}/service-accounts",
            get(list_service_accounts).post(create_service_account),
        )
        .route(
            "/v1beta1/projects/{project}/service-accounts/{sa}",
            get(get_service_account).delete(delete_service_account),
        )
        .route(
            "/v1beta1/projects/{project}/service-accounts/{sa}/tokens",
            post(create_token),
        )
        .route(
            "/v1beta1/projects/{project}/service-account-tokens",
            get(list_tokens),
        )
        .route(
            "/v1beta1/projects/{project}/service-account-tokens/{token}",
            get(get_token).delete(delete_token),
        )
        .route(
            "/v1beta1/projects/{project}/roles",
            get(list_roles).post(create_role),
        )
        .route("/v1beta1/projects/{project}/roles/grants", post(grant))
        .route(
            "/v1beta1/projects/{project}/roles/revocations",
            post(revoke),
        )
        .route(
            "/v1beta1/projects/{project}/roles/{role}",
            get(get_role).put(update_role).delete(delete_role),
        )
        .route(
            "/v1beta1/system/service-accounts",
            get(list_service_accounts),
        )
        .route(
            "/v1beta1/system/service-accounts/{sa}",
            get(get_service_account),
        )
        .route(
            "/v1beta1/system/service-accounts/{sa}/tokens",
            post(create_token),
        )
        .route("/v1beta1/system/service-account-tokens", get(list_tokens))
        .route(
            "/v1beta1/system/service-account-tokens/{token}",
            get(get_token).delete(delete_token),
        )
        .route("/v1beta1/system/roles", get(list_system_roles))
        .route("/v1beta1/system/roles/{role}", get(get_system_role))
        .route("/v1beta1/logout", post(logout))
        .route_layer(middleware::from_fn_with_state(state, authenticate));
    Router::new()
        .route("/v1beta1/login", post(login))
        .route(
            "/v1beta1/system/public-server-config",
            get(public_server_config),
        )
        .route("/v1beta1/openapi.json", get(openapi))
        .merge(protected)
}

/// Authenticates a Kargo API request by its bearer token.
async fn authenticate(State(app): State<AppState>, mut request: Request, next: Next) -> Response {
    let source = client_address(request.extensions());
    let header = request.headers().get(http::header::AUTHORIZATION);
    let text = header.map(|h| h.to_str().map(str::trim));
    let user = match text {
        None | Some(Ok("")) => Err(AuthFailure::Missing),
        Some(Ok(h)) if h.eq_ignore_ascii_case("bearer") => Err(AuthFailure::Missing),
        Some(Ok(h)) => match bearer(Some(h)) {
            Some(token) => app.authn.authenticate_token(token, source),
            None => Err(AuthFailure::Invalid),
        },
        Some(Err(_)) => Err(AuthFailure::Invalid),
    };
    match user {
        Ok(user) => {
            request.extensions_mut().insert(user.clone());
            let response = next.run(request).await;
            app.observers.note_user(response, &user)
        }
        Err(failure) => {
            // Read what the client sends while the answer goes out, so that it gets the answer
            // instead of a reset connection, and the request gives its place back at once.
            super::drain_later(request);
            token_error(failure)
        }
    }
}

/// The answer to a request whose token did not authenticate: 401, or 429 with `Retry-After`
/// for an address that has failed too often.
pub fn token_error(failure: AuthFailure) -> Response {
    match failure {
        AuthFailure::Missing => {
            KargoError::new(StatusCode::UNAUTHORIZED, "no token provided").into_response()
        }
        AuthFailure::Invalid => {
            KargoError::new(StatusCode::UNAUTHORIZED, "invalid token").into_response()
        }
        AuthFailure::TooMany { retry_after } => {
            kargo_too_many(AuthFailure::too_many_message(retry_after), retry_after)
        }
    }
}

/// Reads and decodes a JSON body: 413 over [`MAX_BODY`], 400 with the parser's message.
async fn json_body<T: DeserializeOwned>(body: Body) -> Result<T, KargoError> {
    let bytes = match body::read(body, MAX_BODY).await {
        Ok(Some(bytes)) => bytes,
        Ok(None) => {
            return Err(KargoError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body too large",
            ));
        }
        Err(status) => return Err(status.into()),
    };
    serde_json::from_slice(&bytes)
        .map_err(|e| KargoError::new(StatusCode::BAD_REQUEST, e.to_string()))
}

fn reply<T: serde::Serialize>(code: StatusCode, body: &T) -> Reply {
    Ok(json_response(code, body, &[]))
}

fn no_content() -> Reply {
    Ok(StatusCode::NO_CONTENT.into_response())
}

type User = Extension<std::sync::Arc<UserInfo>>;

/// Where a Kargo route acts, from its path: the project it names (`{project}`), or the system
/// scope for the `/v1beta1/system/...` routes (which name none); and the one object it names
/// (`{sa}`, `{token}` or `{role}`), empty for a collection. One handler serves both scopes.
struct At {
    scope: Scope,
    name: String,
}

impl<S: Send + Sync> FromRequestParts<S> for At {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<At, Response> {
        let Path(mut params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let scope = params
            .remove("project")
            .map_or(Scope::System, Scope::Project);
        let name = params.into_values().next().unwrap_or_default();
        Ok(At { scope, name })
    }
}

async fn list_projects(State(app): State<AppState>, Extension(user): User) -> Reply {
    reply(StatusCode::OK, &app.kargo.list_projects(&user).await?)
}

async fn create_project(State(app): State<AppState>, Extension(user): User, body: Body) -> Reply {
    let body: serde_json::Value = json_body(body).await?;
    reply(
        StatusCode::CREATED,
        &app.kargo.create_project(&user, body).await?,
    )
}

async fn get_project(
    State(app): State<AppState>,
    Extension(user): User,
    Path(project): Path<String>,
) -> Reply {
    reply(
        StatusCode::OK,
        &app.kargo.get_project(&user, &project).await?,
    )
}

async fn delete_project(
    State(app): State<AppState>,
    Extension(user): User,
    Path(project): Path<String>,
) -> Reply {
    app.kargo.delete_project(&user, &project).await?;
    no_content()
}

async fn list_service_accounts(
    State(app): State<AppState>,
    Extension(user): User,
    at: At,
) -> Reply {
    reply(
        StatusCode::OK,
        &app.kargo.list_service_accounts(&user, &at.scope).await?,
    )
}

async fn create_service_account(
    State(app): State<AppState>,
    Extension(user): User,
    at: At,
    body: Body,
) -> Reply {
    let body = json_body(body).await?;
    let sa = app
        .kargo
        .create_service_account(&user, &at.scope, body)
        .await?;
    reply(StatusCode::CREATED, &sa)
}

async fn get_service_account(State(app): State<AppState>, Extension(user): User, at: At) -> Reply {
    reply(
        StatusCode::OK,
        &app.kargo
            .get_service_account(&user, &at.scope, &at.name)
            .await?,
    )
}

async fn delete_service_account(
    State(app): State<AppState>,
    Extension(user): User,
    at: At,
) -> Reply {
    app.kargo
        .delete_service_account(&user, &at.scope, &at.name)
        .await?;
    no_content()
}

async fn create_token(
    State(app): State<AppState>,
    Extension(user): User,
    at: At,
    body: Body,
) -> Reply {
    let request: kargo_api::kargo::CreateTokenRequest = json_body(body).await?;
    let secret = app
        .kargo
        .create_token(&user, &at.scope, &at.name, &request.name)
        .await?;
    reply(StatusCode::CREATED, &secret)
}

async fn list_tokens(
    State(app): State<AppState>,
    Extension(user): User,
    at: At,
    Query(query): Query<HashMap<String, String>>,
) -> Reply {
    let account = query
        .get("serviceAccount")
        .map(String::as_str)
        .filter(|s| !s.is_empty());
    let list = app.kargo.list_tokens(&user, &at.scope, account).await?;
    reply(StatusCode::OK, &list)
}

async fn get_token(State(app): State<AppState>, Extension(user): User, at: At) -> Reply {
    reply(
        StatusCode::OK,
        &app.kargo.get_token(&user, &at.scope, &at.name).await?,
    )
}

async fn delete_token(State(app): State<AppState>, Extension(user): User, at: At) -> Reply {
    app.kargo.delete_token(&user, &at.scope, &at.name).await?;
    no_content()
}

async fn list_roles(State(app): State<AppState>, Extension(user): User, at: At) -> Reply {
    reply(
        StatusCode::OK,
        &app.kargo.list_roles(&user, &at.scope).await?,
    )
}

async fn create_role(
    State(app): State<AppState>,
    Extension(user): User,
    at: At,
    body: Body,
) -> Reply {
    let role = json_body(body).await?;
    reply(
        StatusCode::CREATED,
        &app.kargo.create_role(&user, &at.scope, role).await?,
    )
}

async fn get_role(State(app): State<AppState>, Extension(user): User, at: At) -> Reply {
    reply(
        StatusCode::OK,
        &app.kargo.get_role(&user, &at.scope, &at.name).await?,
    )
}

async fn update_role(
    State(app): State<AppState>,
    Extension(user): User,
    at: At,
    body: Body,
) -> Reply {
    let role = json_body(body).await?;
    let role = app
        .kargo
        .update_role(&user, &at.scope, &at.name, role)
        .await?;
    reply(StatusCode::OK, &role)
}

async fn delete_role(State(app): State<AppState>, Extension(user): User, at: At) -> Reply {
    app.kargo.delete_role(&user, &at.scope, &at.name).await?;
    no_content()
}

async fn grant(State(app): State<AppState>, Extension(user): User, at: At, body: Body) -> Reply {
    let request = json_body(body).await?;
    reply(
        StatusCode::OK,
        &app.kargo.grant(&user, &at.scope, request).await?,
    )
}

async fn revoke(State(app): State<AppState>, Extension(user): User, at: At, body: Body) -> Reply {
    let request = json_body(body).await?;
    reply(
        StatusCode::OK,
        &app.kargo.revoke(&user, &at.scope, request).await?,
    )
}

async fn list_system_roles(State(app): State<AppState>, Extension(user): User) -> Reply {
    reply(StatusCode::OK, &app.kargo.list_system_roles(&user).await?)
}

async fn get_system_role(
    State(app): State<AppState>,
    Extension(user): User,
    Path(role): Path<String>,
) -> Reply {
    reply(
        StatusCode::OK,
        &app.kargo.get_system_role(&user, &role).await?,
    )
}

async fn openapi() -> Response {
    json_response(StatusCode::OK, super::kargo_openapi::document(), &[])
}

async fn public_server_config(State(app): State<AppState>) -> Response {
    json_response(
        StatusCode::OK,
        &json!({"oidcConfig": null, "adminAccountEnabled": app.authn.admin_enabled(), "skipAuth": false}),
        &[],
    )
}

/// `POST /v1beta1/login` with `Authorization: Bearer <password>`.
async fn login(
    State(app): State<AppState>,
    ClientAddress(source): ClientAddress,
    headers: HeaderMap,
) -> Response {
    if !app.authn.admin_enabled() {
        return KargoError::new(StatusCode::FORBIDDEN, "admin user is not enabled").into_response();
    }
    let Some(header) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return KargoError::new(StatusCode::BAD_REQUEST, "Authorization header is required")
            .into_response();
    };
    let Some(password) = header.strip_prefix("Bearer ").filter(|p| !p.is_empty()) else {
        return KargoError::new(
            StatusCode::BAD_REQUEST,
            "Authorization header must be in format 'Bearer <password>'",
        )
        .into_response();
    };
    match app.authn.login(password.to_owned(), source).await {
        Ok(token) => json_response(StatusCode::OK, &json!({"idToken": token}), &[]),
        Err(e @ (LoginError::Disabled | LoginError::WrongPassword)) => {
            KargoError::new(StatusCode::FORBIDDEN, e.to_string()).into_response()
        }
        Err(
            e @ (LoginError::TooManyFailures { retry_after } | LoginError::Busy { retry_after }),
        ) => kargo_too_many(e.to_string(), retry_after),
        Err(LoginError::Internal) => {
            KargoError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

/// `POST /v1beta1/logout`: ends the session of the admin token that authenticates it, on every
/// replica, and answers once this replica refuses the token.
async fn logout(State(app): State<AppState>, headers: HeaderMap) -> Reply {
    let admin = app.authn.admin();
    let claims = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| bearer(Some(h)))
        .and_then(|token| admin.session(token))
        .ok_or_else(|| {
            KargoError::new(
                StatusCode::BAD_REQUEST,
                "only an admin session can be logged out; a ServiceAccount token is revoked by deleting it",
            )
        })?;
    let revision = admin
        .log_out(app.registry.store(), &claims)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "ending an admin session failed");
            KargoError::new(StatusCode::INTERNAL_SERVER_ERROR, "logging out failed")
        })?;
    let mut synced = app.synced.clone();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        synced.wait_for(|seen| *seen >= revision),
    )
    .await;
    no_content()
}

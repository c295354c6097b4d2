//! The Kargo REST API under `/v1beta1`: login, public configuration, and (on top of the `kargo`
//! layer) projects, roles, service accounts and tokens. Errors are `{"error": "<message>"}`.

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{HeaderMap, StatusCode};
use serde_json::json;

use super::{AppState, json_response};
use crate::status::Status;

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

impl IntoResponse for KargoError {
    fn into_response(self) -> Response {
        json_response(self.code, &json!({"error": self.message}), &[])
    }
}

/// The Kargo routes.
pub fn router(_state: AppState) -> Router<AppState> {
    Router::new().route("/v1beta1/login", post(login)).route(
        "/v1beta1/system/public-server-config",
        get(public_server_config),
    )
}

async fn public_server_config() -> Response {
    json_response(
        StatusCode::OK,
        &json!({"oidcConfig": null, "adminAccountEnabled": true, "skipAuth": false}),
        &[],
    )
}

/// `POST /v1beta1/login` with `Authorization: Bearer <password>`.
async fn login(State(app): State<AppState>, headers: HeaderMap) -> Response {
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
    let admin = app.authn.admin().clone();
    let password = password.to_owned();
    // PBKDF2 is deliberately slow: keep it off the async workers.
    let verified = tokio::task::spawn_blocking(move || admin.verify_password(&password))
        .await
        .unwrap_or(false);
    if !verified {
        return KargoError::new(StatusCode::FORBIDDEN, "invalid password").into_response();
    }
    match app.authn.admin().issue_token() {
        Ok(token) => json_response(StatusCode::OK, &json!({"idToken": token}), &[]),
        Err(e) => {
            tracing::error!(error = %e, "signing an admin token failed");
            KargoError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

//! Signing-key rotation for the admin, under `/v1beta1/system/signing-keys`:
//!
//! - `GET` lists the keys (`kid`, `created`, whether it signs);
//! - `POST .../rotate` adds a new signing key; tokens signed by older keys keep working;
//! - `DELETE .../{kid}` retires a key that no longer signs: tokens it signed stop working.
//!
//! Only `system:masters` (the admin) may call these. The key set lives in the store, so every
//! replica sees a rotation through its watch.

use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use http::{HeaderMap, StatusCode};
use serde_json::json;

use super::kargo::KargoError;
use super::throttle::ClientAddress;
use super::{AppState, json_response};
use kargo_auth::keys::{self, KeyError, KeySet};

/// The routes.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1beta1/system/signing-keys", get(list))
        .route("/v1beta1/system/signing-keys/rotate", post(rotate))
        .route("/v1beta1/system/signing-keys/{kid}", delete(retire))
}

/// Why the caller may not manage signing keys (the answer to send), or `None` for the admin.
fn refusal(
    app: &AppState,
    headers: &HeaderMap,
    ClientAddress(source): ClientAddress,
) -> Option<Response> {
    let header = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let Some(token) = kargo_auth::authn::bearer(header) else {
        return Some(
            KargoError::new(StatusCode::UNAUTHORIZED, "no token provided").into_response(),
        );
    };
    match app.authn.authenticate_token(token, source) {
        Err(failure) => Some(super::kargo::token_error(failure)),
        Ok(user) if !user.is_system_master() => Some(
            KargoError::new(
                StatusCode::FORBIDDEN,
                "only the admin may manage signing keys",
            )
            .into_response(),
        ),
        Ok(_) => None,
    }
}

fn describe(set: &KeySet) -> serde_json::Value {
    let signing = set.signing().kid.clone();
    json!({
        "keys": set
            .all()
            .map(|k| json!({"kid": k.kid, "signing": k.kid == signing}))
            .collect::<Vec<_>>(),
    })
}

fn key_error(e: KeyError) -> KargoError {
    match e {
        KeyError::Refused(why) => KargoError::new(StatusCode::BAD_REQUEST, why),
        other => {
            tracing::error!(error = %other, "signing key change failed");
            KargoError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "changing the signing keys failed",
            )
        }
    }
}

async fn list(State(app): State<AppState>, source: ClientAddress, headers: HeaderMap) -> Response {
    match refusal(&app, &headers, source) {
        None => json_response(StatusCode::OK, &describe(&app.authz.view().keys()), &[]),
        Some(response) => response,
    }
}

async fn rotate(
    State(app): State<AppState>,
    source: ClientAddress,
    headers: HeaderMap,
) -> Response {
    if let Some(response) = refusal(&app, &headers, source) {
        return response;
    }
    match keys::rotate(app.registry.store()).await {
        Ok(set) => {
            app.await_key_set(&set).await;
            json_response(StatusCode::OK, &describe(&set), &[])
        }
        Err(e) => key_error(e).into_response(),
    }
}

async fn retire(
    State(app): State<AppState>,
    source: ClientAddress,
    headers: HeaderMap,
    Path(kid): Path<String>,
) -> Response {
    if let Some(response) = refusal(&app, &headers, source) {
        return response;
    }
    match keys::retire(app.registry.store(), &kid).await {
        Ok(set) => {
            app.await_key_set(&set).await;
            json_response(StatusCode::OK, &describe(&set), &[])
        }
        Err(e) => key_error(e).into_response(),
    }
}

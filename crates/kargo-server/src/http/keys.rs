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
use super::{AppState, json_response};
use crate::auth::keys::{self, KeyError, KeySet};

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1beta1/system/signing-keys", get(list))
        .route("/v1beta1/system/signing-keys/rotate", post(rotate))
        .route("/v1beta1/system/signing-keys/{kid}", delete(retire))
}

fn require_admin(app: &AppState, headers: &HeaderMap) -> Result<(), KargoError> {
    let header = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let Some(token) = crate::auth::authn::bearer(header) else {
        return Err(KargoError::new(
            StatusCode::UNAUTHORIZED,
            "no token provided",
        ));
    };
    let user = app
        .authn
        .authenticate_token(token)
        .map_err(|_| KargoError::new(StatusCode::UNAUTHORIZED, "invalid token"))?;
    if !user.is_system_master() {
        return Err(KargoError::new(
            StatusCode::FORBIDDEN,
            "only the admin may manage signing keys",
        ));
    }
    Ok(())
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

async fn list(State(app): State<AppState>, headers: HeaderMap) -> Response {
    match require_admin(&app, &headers) {
        Ok(()) => json_response(StatusCode::OK, &describe(&app.authz.view().keys()), &[]),
        Err(e) => e.into_response(),
    }
}

async fn rotate(State(app): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(e) = require_admin(&app, &headers) {
        return e.into_response();
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
    headers: HeaderMap,
    Path(kid): Path<String>,
) -> Response {
    if let Err(e) = require_admin(&app, &headers) {
        return e.into_response();
    }
    match keys::retire(app.registry.store(), &kid).await {
        Ok(set) => {
            app.await_key_set(&set).await;
            json_response(StatusCode::OK, &describe(&set), &[])
        }
        Err(e) => key_error(e).into_response(),
    }
}

//! `POST /v1beta1/token-exchange`: RFC 8693 token exchange for workload identity federation
//! (`kargo_auth::federation`). Form-encoded in, RFC 6749 JSON out:
//! `{"access_token", "issued_token_type", "token_type": "Bearer", "expires_in"}` or
//! `{"error", "error_description"}`.
//!
//! A refused subject token gets one generic description; why it was refused goes to the
//! request's audit event (`authentication.k8s.io`-style failure annotation) and to the server
//! log, never to the caller.

use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::json;

use super::{AppState, body, json_response};
use kargo_auth::federation::{
    ExchangeError, ExchangeRequest, GRANT_TYPE, ISSUED_TOKEN_TYPE, SUBJECT_TOKEN_TYPES,
};
use kargo_auth::rbac::UserInfo;

/// The largest form the endpoint reads (a CI OIDC token is a few kilobytes).
const MAX_FORM: usize = 64 * 1024;

/// The form-urlencoded media type.
const FORM: &str = "application/x-www-form-urlencoded";

/// An RFC 6749 error answer.
fn oauth_error(code: StatusCode, error: &str, description: &str) -> Response {
    let mut response = json_response(
        code,
        &json!({"error": error, "error_description": description}),
        &[],
    );
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    response
}

/// A refusal of the request itself (`invalid_request` and kin), noted for the audit log.
fn bad_request(error: &str, description: String) -> Response {
    crate::observe::note(|notes| {
        notes.refusal = Some(crate::observe::Refusal {
            reason: "",
            message: description.clone(),
        });
    });
    oauth_error(StatusCode::BAD_REQUEST, error, &description)
}

/// The form's fields, each at most once (RFC 6749 §3.2: parameters must not repeat).
struct Form {
    fields: Vec<(String, String)>,
}

impl Form {
    fn parse(bytes: &[u8]) -> Result<Form, String> {
        let mut fields: Vec<(String, String)> = Vec::new();
        for (name, value) in form_urlencoded::parse(bytes) {
            if fields.iter().any(|(n, _)| *n == name) {
                return Err(format!("parameter {name} is given more than once"));
            }
            fields.push((name.into_owned(), value.into_owned()));
        }
        Ok(Form { fields })
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

/// `POST /v1beta1/token-exchange`.
pub(crate) async fn token_exchange(
    State(app): State<AppState>,
    headers: HeaderMap,
    request_body: Body,
) -> Response {
    let Some(federation) = app.authn.federation() else {
        return bad_request(
            "unsupported_grant_type",
            "token exchange is not enabled on this server (it allows no --federated-issuer)".into(),
        );
    };
    let content_type = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim)
        .unwrap_or("");
    if !content_type.eq_ignore_ascii_case(FORM) {
        return bad_request(
            "invalid_request",
            format!("the request body must be {FORM}, got {content_type:?}"),
        );
    }
    let bytes = match body::read(request_body, MAX_FORM).await {
        Ok(Some(bytes)) => bytes,
        Ok(None) => {
            return bad_request("invalid_request", "request body too large".into());
        }
        Err(status) => return bad_request("invalid_request", status.message),
    };
    let form = match Form::parse(&bytes) {
        Ok(form) => form,
        Err(e) => return bad_request("invalid_request", e),
    };
    match form.get("grant_type") {
        Some(GRANT_TYPE) => {}
        Some(other) => {
            return bad_request(
                "unsupported_grant_type",
                format!("grant_type must be {GRANT_TYPE}, got {other:?}"),
            );
        }
        None => return bad_request("invalid_request", "grant_type is required".into()),
    }
    match form.get("subject_token_type") {
        Some(t) if SUBJECT_TOKEN_TYPES.contains(&t) => {}
        Some(other) => {
            return bad_request(
                "invalid_request",
                format!(
                    "subject_token_type must be one of {}, got {other:?}",
                    SUBJECT_TOKEN_TYPES.join(", ")
                ),
            );
        }
        None => return bad_request("invalid_request", "subject_token_type is required".into()),
    }
    let requested_lifetime = match form.get("requested_lifetime").map(str::parse::<i64>) {
        None => None,
        Some(Ok(secs)) => Some(secs),
        Some(Err(_)) => {
            return bad_request(
                "invalid_request",
                "requested_lifetime must be a whole number of seconds".into(),
            );
        }
    };
    let request = ExchangeRequest {
        subject_token: form.get("subject_token").unwrap_or(""),
        scope: form.get("scope"),
        requested_lifetime,
    };
    match federation.exchange(app.authn.tokens(), &request).await {
        Ok(issued) => {
            tracing::info!(
                identity = %issued.identity,
                namespace = %issued.namespace,
                service_account = %issued.account,
                trust = %issued.trust,
                expires_in = issued.expires_in,
                "token exchanged"
            );
            let user = std::sync::Arc::new(UserInfo::service_account(
                &issued.namespace,
                &issued.account,
                issued.uid.as_str(),
            ));
            app.observers.note_user(&user);
            let mut response = json_response(
                StatusCode::OK,
                &json!({
                    "access_token": issued.access_token,
                    "issued_token_type": ISSUED_TOKEN_TYPE,
                    "token_type": "Bearer",
                    "expires_in": issued.expires_in,
                }),
                &[],
            );
            response.headers_mut().insert(
                http::header::CACHE_CONTROL,
                HeaderValue::from_static("no-store"),
            );
            response
        }
        Err(e) => refused(e),
    }
}

/// The answer to a refused exchange: the details to the logs, the generic text to the caller.
fn refused(e: ExchangeError) -> Response {
    let detail = e.detail();
    tracing::info!(reason = %detail, "token exchange refused");
    crate::observe::note(|notes| {
        notes.authentication_failure = Some(detail.clone());
        notes.refusal = Some(crate::observe::Refusal {
            reason: "",
            message: e.public(),
        });
    });
    let code = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = oauth_error(code, e.code(), &e.public());
    if let ExchangeError::RateLimited(_, after) = &e {
        response.headers_mut().insert(
            http::header::RETRY_AFTER,
            HeaderValue::from(after.as_secs().max(1)),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::Form;

    #[test]
    fn a_form_field_given_twice_is_refused() {
        assert!(Form::parse(b"a=1&b=2").is_ok());
        assert_eq!(
            Form::parse(b"a=1&a=2").err().as_deref(),
            Some("parameter a is given more than once")
        );
        let form = Form::parse(b"scope=project%2Fp%2Fserviceaccount%2Fci&x=").unwrap();
        assert_eq!(form.get("scope"), Some("project/p/serviceaccount/ci"));
        assert_eq!(form.get("x"), None);
    }
}

//! Single sign-on in the browser: the authorization code flow with PKCE for the public client
//! `--oidc-client-id`. `GET /ui/login/sso` sends the browser to the provider with a fresh state
//! and code challenge (the state also in a `SameSite=Lax` cookie, since the provider's redirect
//! back is a cross-site navigation); `GET /ui/login/sso/callback` checks the state against the
//! cookie, redeems the code with the verifier kept here, and starts a session with the ID token,
//! which the API verifies on every request like any other. The session ends when the ID token
//! expires (the API refuses it): the person signs in again.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{Query, Request, State};
use axum::response::Response;
use base64::Engine;
use http::{HeaderValue, StatusCode, header};

use super::login::{refused, start};
use crate::session::{cookie, random_token, same_secret};
use crate::{Shared, Source, html};

/// The cookie binding a sign-in at the provider to this browser.
const SSO_COOKIE: &str = "__Host-kargo-sso";
/// How long a sign-in at the provider may take.
const PENDING_AGE: Duration = Duration::from_secs(10 * 60);
/// At most this many sign-ins under way.
const MAX_PENDING: usize = 10_000;

/// Sign-ins under way: state → PKCE verifier.
pub(crate) struct Pending(Mutex<HashMap<String, (String, Instant)>>);

impl Pending {
    /// None.
    pub(crate) fn new() -> Pending {
        Pending(Mutex::new(HashMap::new()))
    }

    fn insert(&self, state: String, verifier: String) {
        let now = Instant::now();
        let mut pending = self.lock();
        if pending.len() >= MAX_PENDING {
            pending.retain(|_, (_, at)| now.duration_since(*at) < PENDING_AGE);
        }
        if pending.len() < MAX_PENDING {
            pending.insert(state, (verifier, now));
        }
    }

    /// The verifier of `state`, once, if not too old.
    fn take(&self, state: &str) -> Option<String> {
        let (verifier, at) = self.lock().remove(state)?;
        (at.elapsed() < PENDING_AGE).then_some(verifier)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, Instant)>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// `GET /ui/login/sso`: to the provider.
pub(crate) async fn begin(State(state): State<Shared>, request: Request) -> Response {
    let Some(sso) = &state.sso else {
        return super::not_found().await;
    };
    let endpoints = match sso.web_endpoints().await {
        Ok(endpoints) => endpoints,
        Err(error) => {
            tracing::warn!(%error, "single sign-on: reading the provider's discovery failed");
            return refused("The identity provider cannot be reached. Try again later.");
        }
    };
    let Some(redirect_uri) = callback_url(&request) else {
        return html::message_page(
            StatusCode::BAD_REQUEST,
            "No host",
            "The request named no host.",
        );
    };
    let (flow, verifier) = (random_token(), random_token());
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes()),
    );
    let config = sso.config();
    let scopes = config.scopes.join(" ");
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", config.client_id.as_str()),
            ("redirect_uri", redirect_uri.as_str()),
            ("scope", scopes.as_str()),
            ("state", flow.as_str()),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ])
        .finish();
    let separator = if endpoints.authorization.contains('?') {
        '&'
    } else {
        '?'
    };
    state.pending.insert(flow.clone(), verifier);
    let mut response = html::see_other(&format!("{}{separator}{query}", endpoints.authorization));
    let cookie = format!(
        "{SSO_COOKIE}={flow}; Max-Age={}; Path=/; Secure; HttpOnly; SameSite=Lax",
        PENDING_AGE.as_secs()
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// `GET /ui/login/sso/callback?code=...&state=...`: back from the provider.
pub(crate) async fn callback(
    State(state): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
    request: Request,
) -> Response {
    let Some(sso) = &state.sso else {
        return super::not_found().await;
    };
    if let Some(error) = query.get("error") {
        return refused(&format!(
            "The identity provider refused the sign-in: {error}."
        ));
    }
    let flow = query.get("state").map(String::as_str).unwrap_or("");
    let ours = cookie(request.headers(), SSO_COOKIE).unwrap_or("");
    let verifier = match state.pending.take(flow) {
        Some(verifier) if same_secret(flow, ours) => verifier,
        _ => {
            return refused(
                "This sign-in is unknown or expired, or was started in another browser. Try again.",
            );
        }
    };
    let (Some(code), Some(redirect_uri)) = (query.get("code"), callback_url(&request)) else {
        return refused("The identity provider sent no code.");
    };
    let redeemed = match sso.web_endpoints().await {
        Ok(endpoints) => {
            sso.redeem_code(&endpoints, code, &verifier, &redirect_uri)
                .await
        }
        Err(error) => Err(error),
    };
    let id_token = match redeemed {
        Ok(token) => token,
        Err(error) => {
            tracing::warn!(%error, "single sign-on: redeeming the code failed");
            return refused("The identity provider did not complete the sign-in. Try again.");
        }
    };
    let source = request.extensions().get::<Source>().and_then(|s| s.0);
    let mut response = start(&state, id_token, false, source).await;
    let clear = format!("{SSO_COOKIE}=; Max-Age=0; Path=/; Secure; HttpOnly; SameSite=Lax");
    if let Ok(value) = HeaderValue::from_str(&clear) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// `https://HOST/ui/login/sso/callback` for the host the browser reached.
fn callback_url(request: &Request) -> Option<String> {
    let host = request
        .uri()
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| {
            request
                .headers()
                .get(header::HOST)?
                .to_str()
                .ok()
                .map(str::to_owned)
        })?;
    host.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
        .then(|| format!("https://{host}/ui/login/sso/callback"))
}

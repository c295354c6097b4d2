//! The issuer's keys: discovery (`<issuer>/.well-known/openid-configuration`) then its
//! `jwks_uri`, over TLS with the system's roots plus the configured CA, fetched by one
//! background task per server.

use std::sync::Weak;
use std::time::Duration;

use jsonwebtoken::DecodingKey;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::{FIRST_BACKOFF, MAX_BACKOFF, OidcAuthenticator, REFRESH_INTERVAL};

/// How long one request to the issuer may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the keys could not be fetched.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KeyFetchError {
    /// The request failed or the answer was not 200.
    #[error("GET {url}: {detail}")]
    Http {
        /// What was asked for.
        url: String,
        /// What went wrong.
        detail: String,
    },
    /// The discovery document names another issuer (as go-oidc refuses).
    #[error(
        "oidc: issuer did not match the issuer returned by provider, expected {expected:?} got {got:?}"
    )]
    IssuerMismatch {
        /// The configured issuer.
        expected: String,
        /// The document's.
        got: String,
    },
    /// The discovery document or the key set does not read.
    #[error("{0}")]
    Invalid(String),
}

/// One verification key.
struct Key {
    kid: String,
    /// `RS256` or `ES256`: the algorithm the key verifies.
    alg: &'static str,
    key: DecodingKey,
}

/// The issuer's usable keys (RSA and EC P-256 signature keys; others are skipped).
pub(crate) struct Jwks {
    keys: Vec<Key>,
}

impl Jwks {
    /// How many keys.
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    /// The keys a token of `alg` with `kid` may be signed with: the one with that kid, or,
    /// for a token without a kid, every key of that algorithm (as go-oidc tries them all).
    pub(crate) fn candidates(&self, kid: &str, alg: &str) -> Vec<&DecodingKey> {
        self.keys
            .iter()
            .filter(|k| k.alg == alg && (kid.is_empty() || k.kid == kid))
            .map(|k| &k.key)
            .collect()
    }

    /// Reads a JWK Set document.
    pub(crate) fn parse(document: &Value) -> Result<Jwks, KeyFetchError> {
        let Some(entries) = document.get("keys").and_then(Value::as_array) else {
            return Err(KeyFetchError::Invalid(
                "the JWKS has no \"keys\" array".into(),
            ));
        };
        let field = |k: &Value, name: &str| k.get(name).and_then(Value::as_str).map(str::to_owned);
        let mut keys = Vec::new();
        for entry in entries {
            if field(entry, "use").is_some_and(|u| u != "sig") {
                continue;
            }
            let kid = field(entry, "kid").unwrap_or_default();
            let declared = field(entry, "alg");
            let parsed = match field(entry, "kty").as_deref() {
                Some("RSA") => match (field(entry, "n"), field(entry, "e")) {
                    (Some(n), Some(e)) => {
                        DecodingKey::from_rsa_components(&n, &e).map(|k| ("RS256", k))
                    }
                    _ => continue,
                },
                Some("EC") if field(entry, "crv").as_deref() == Some("P-256") => {
                    match (field(entry, "x"), field(entry, "y")) {
                        (Some(x), Some(y)) => {
                            DecodingKey::from_ec_components(&x, &y).map(|k| ("ES256", k))
                        }
                        _ => continue,
                    }
                }
                _ => continue,
            };
            match parsed {
                Ok((alg, key)) if declared.as_deref().is_none_or(|d| d == alg) => {
                    keys.push(Key { kid, alg, key })
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(%kid, error = %e, "skipping an OIDC key that does not read")
                }
            }
        }
        Ok(Jwks { keys })
    }
}

/// The HTTP client for the issuer: the system's roots, plus `ca_pem`'s certificates.
pub(super) fn client(ca_pem: Option<&[u8]>) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .https_only(true);
    if let Some(pem) = ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| e.to_string())?;
        if certs.is_empty() {
            return Err("no certificate in the CA file".into());
        }
        builder = builder.tls_certs_merge(certs);
    }
    builder.build().map_err(|e| e.to_string())
}

async fn get_json(client: &reqwest::Client, url: &str) -> Result<Value, KeyFetchError> {
    let http = |detail: String| KeyFetchError::Http {
        url: url.to_owned(),
        detail,
    };
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| http(error_chain(&e)))?;
    if !response.status().is_success() {
        return Err(http(response.status().to_string()));
    }
    response.json().await.map_err(|e| http(error_chain(&e)))
}

/// An error with its causes (reqwest's own text rarely says why a connection failed).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Discovery, then the key set.
pub(super) async fn fetch(client: &reqwest::Client, issuer: &str) -> Result<Jwks, KeyFetchError> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let discovery = get_json(client, &url).await?;
    let got = discovery
        .get("issuer")
        .and_then(Value::as_str)
        .unwrap_or("");
    if got != issuer {
        return Err(KeyFetchError::IssuerMismatch {
            expected: issuer.to_owned(),
            got: got.to_owned(),
        });
    }
    let Some(jwks_uri) = discovery.get("jwks_uri").and_then(Value::as_str) else {
        return Err(KeyFetchError::Invalid(format!("{url}: no jwks_uri")));
    };
    Jwks::parse(&get_json(client, jwks_uri).await?)
}

/// Fetches the keys until `shutdown` (or until the authenticator is dropped and a wait ends): at once, then
/// every [`REFRESH_INTERVAL`] or when asked; after a failure again after a back-off doubling
/// from [`FIRST_BACKOFF`] to [`MAX_BACKOFF`].
pub(super) async fn refresher(
    authenticator: Weak<OidcAuthenticator>,
    client: reqwest::Client,
    shutdown: CancellationToken,
) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        let Some(this) = authenticator.upgrade() else {
            return;
        };
        let outcome = tokio::select! {
            outcome = fetch(&client, &this.config.issuer_url) => outcome,
            _ = shutdown.cancelled() => return,
        };
        let wait = if outcome.is_ok() {
            backoff = FIRST_BACKOFF;
            REFRESH_INTERVAL
        } else {
            let wait = backoff;
            backoff = (backoff * 2).min(MAX_BACKOFF);
            wait
        };
        this.fetched(outcome);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
            _ = this.refresh.notified() => {}
        }
    }
}

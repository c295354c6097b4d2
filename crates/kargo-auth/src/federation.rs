//! Workload identity federation: a CI job exchanges its own OIDC token for a short-lived bound
//! token of a Kargo ServiceAccount that trusts it (RFC 8693 token exchange), so that no
//! long-lived secret is stored in CI.
//!
//! - [`FederationConfig`]: the issuers the operator allows (`--federated-issuer`), their extra CA
//!   and the lifetimes of issued tokens. A project admin names issuers in the trust annotation,
//!   but the server only ever fetches keys from the allowed ones.
//! - [`Federation::exchange`]: verifies the subject token with one [`OidcAuthenticator`] per
//!   allowed issuer (the same verifier, key cache and refresh as single sign-on, without its
//!   audience check: each trust names its own audience), limits exchanges per identity, finds
//!   the accounts whose `rbac.kargo.akuity.io/federated-identities` entries accept the token
//!   (`kargo_api::federation`, read from the [`AuthView`]), refuses a replayed `jti`, and signs a
//!   bound token through [`mint::bound_token`].
//! - An issued token carries the claim [`FEDERATED_CLAIM`] with the fingerprint of the trust
//!   entry that accepted it; `tokens.rs` checks on every request that the account still lists
//!   an entry with that fingerprint, so removing the trust (or the account) stops the token at
//!   once. Tokens without the claim pay one `Option` check.
//!
//! **Invariant:** the caller learns only that a token was refused ([`ExchangeError::public`]);
//! which check failed is in [`ExchangeError::detail`], for the audit and server logs.
//! Replay and rate records live in this replica's memory (see `docs/federation.md`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kargo_api::federation::{FederatedIdentity, Mismatch};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::jwt::{self, BoundRequest};
use crate::mint;
use crate::oidc::{OidcAuthenticator, OidcError};
use crate::tokens::TokenAuthenticator;
use crate::view::token_hash;

/// The claim of an issued token naming the trust entry that accepted the exchange:
/// `{"name": ..., "fingerprint": ..., "issuer": ..., "subject": ...}`.
pub const FEDERATED_CLAIM: &str = "kargo.akuity.io/federated-identity";
/// The grant type of RFC 8693.
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// Subject token types accepted.
pub const SUBJECT_TOKEN_TYPES: [&str; 2] = [
    "urn:ietf:params:oauth:token-type:id_token",
    "urn:ietf:params:oauth:token-type:jwt",
];
/// The type of the issued token.
pub const ISSUED_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
/// The lifetime of an issued token when the request names none (15 minutes).
pub const DEFAULT_LIFETIME_SECS: i64 = 15 * 60;
/// The longest lifetime an operator may allow by default (1 hour).
pub const DEFAULT_MAX_LIFETIME_SECS: i64 = 60 * 60;
/// The shortest lifetime a request may ask for.
pub const MIN_LIFETIME_SECS: i64 = 60;
/// Exchanges allowed per identity (issuer and subject) per [`RATE_WINDOW`].
pub const EXCHANGES_PER_WINDOW: u32 = 30;
/// The window of [`EXCHANGES_PER_WINDOW`].
pub const RATE_WINDOW: Duration = Duration::from_secs(60);
/// How many identities and `jti`s are remembered (replays, rates) before the oldest are dropped.
const MEMORY_LIMIT: usize = 100_000;

/// The operator's federation settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederationConfig {
    /// Allowed issuers (`--federated-issuer`, `KARGO_FEDERATED_ISSUERS`), `https://` URLs.
    pub issuers: Vec<String>,
    /// A PEM CA bundle trusted for them besides the system's roots
    /// (`--federated-issuer-ca-file`).
    pub ca_pem: Option<Vec<u8>>,
    /// The longest lifetime of an issued token (`--federated-token-max-lifetime`), seconds.
    pub max_lifetime_secs: i64,
}

impl FederationConfig {
    /// Settings for `issuers` with the default maximum lifetime and no extra CA.
    pub fn new(issuers: Vec<String>) -> FederationConfig {
        FederationConfig {
            issuers,
            ca_pem: None,
            max_lifetime_secs: DEFAULT_MAX_LIFETIME_SECS,
        }
    }
}

/// Why the federation settings cannot be used (a start-up error).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// An issuer is not an `https://` URL.
    #[error("--federated-issuer must be an https:// URL, got {0:?}")]
    Issuer(String),
    /// The CA bundle does not read.
    #[error("--federated-issuer-ca-file: {0}")]
    Ca(String),
    /// The maximum lifetime is too short.
    #[error("--federated-token-max-lifetime must be at least {MIN_LIFETIME_SECS}s")]
    Lifetime,
}

/// What a token exchange asks for (the form fields, already read).
#[derive(Debug, Clone, Default)]
pub struct ExchangeRequest<'a> {
    /// `subject_token`: the CI job's OIDC token.
    pub subject_token: &'a str,
    /// `scope`: `project/<p>/serviceaccount/<name>`, to choose among several trusting accounts.
    pub scope: Option<&'a str>,
    /// `requested_lifetime` in seconds.
    pub requested_lifetime: Option<i64>,
}

/// A successful exchange.
#[derive(Debug, Clone)]
pub struct Exchanged {
    /// The bound token.
    pub access_token: String,
    /// Its lifetime in seconds.
    pub expires_in: i64,
    /// The account's namespace (its project).
    pub namespace: String,
    /// The account's name.
    pub account: String,
    /// The account's uid.
    pub uid: String,
    /// The trust entry that accepted the token.
    pub trust: String,
    /// The outside identity, `<issuer> <subject>`, for the logs.
    pub identity: String,
}

/// Why an exchange is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExchangeError {
    /// A malformed request (`invalid_request`, 400); the text is for the caller.
    #[error("{0}")]
    InvalidRequest(String),
    /// The subject token is not accepted (`invalid_grant`, 400); the text is for the logs only.
    #[error("{0}")]
    Refused(String),
    /// Several accounts trust the identity and no `scope` chooses (`invalid_request`, 400).
    #[error(
        "several service accounts trust this identity; choose one with scope: {}",
        .0.join(", ")
    )]
    Ambiguous(Vec<String>),
    /// Too many exchanges for this identity (429).
    #[error("too many token exchanges for {0}")]
    RateLimited(String, Duration),
    /// Signing failed (500).
    #[error("signing the token failed")]
    Internal,
}

impl ExchangeError {
    /// The RFC 6749 error code.
    pub fn code(&self) -> &'static str {
        match self {
            ExchangeError::InvalidRequest(_) | ExchangeError::Ambiguous(_) => "invalid_request",
            ExchangeError::Refused(_) => "invalid_grant",
            ExchangeError::RateLimited(..) => "slow_down",
            ExchangeError::Internal => "server_error",
        }
    }

    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        match self {
            ExchangeError::RateLimited(..) => 429,
            ExchangeError::Internal => 500,
            _ => 400,
        }
    }

    /// The `error_description` the caller sees: a refused token never says which check
    /// failed.
    pub fn public(&self) -> String {
        match self {
            ExchangeError::Refused(_) => {
                "the subject token is not accepted for a token exchange".to_owned()
            }
            ExchangeError::RateLimited(_, after) => format!(
                "too many token exchanges for this identity; retry in {}s",
                after.as_secs().max(1)
            ),
            other => other.to_string(),
        }
    }

    /// The full reason, for the audit and server logs.
    pub fn detail(&self) -> String {
        self.to_string()
    }
}

/// A trust entry as the auth view keeps it: the entry and its fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Trust {
    /// The entry.
    pub identity: FederatedIdentity,
    /// Its name.
    pub name: String,
    /// 32 hexadecimal digits of the SHA-256 of its JSON: what an issued token names.
    pub fingerprint: String,
}

/// The trusts of an account's annotation value; `None` when absent or malformed (a malformed
/// value trusts nothing; writes of one are refused, so only an older store holds one).
pub(crate) fn trusts_of(annotation: Option<&str>) -> Option<Arc<[Trust]>> {
    let entries = kargo_api::federation::parse(annotation?).ok()?;
    if entries.is_empty() {
        return None;
    }
    Some(
        entries
            .into_iter()
            .map(|identity| {
                let json = serde_json::to_vec(&identity).unwrap_or_default();
                let fingerprint = token_hash(&json)[..16]
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                Trust {
                    name: identity.effective_name(),
                    identity,
                    fingerprint,
                }
            })
            .collect(),
    )
}

/// Exchanges per identity in the current window.
struct Window {
    started: Instant,
    count: u32,
}

/// Verifies CI tokens of the allowed issuers and issues bound tokens for them.
pub struct Federation {
    issuers: HashMap<String, Arc<OidcAuthenticator>>,
    max_lifetime: i64,
    /// `(issuer, jti)` of exchanged tokens, until their `exp`.
    used: Mutex<HashMap<(String, String), u64>>,
    rates: Mutex<HashMap<(String, String), Window>>,
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Federation {
    /// Checks `config` and starts fetching each issuer's keys in the background (until
    /// `shutdown`); returns at once. An allowed issuer that is also the single sign-on
    /// provider (`sso`) shares its verifier and key cache.
    pub fn start(
        config: FederationConfig,
        sso: Option<&Arc<OidcAuthenticator>>,
        shutdown: CancellationToken,
    ) -> Result<Arc<Federation>, ConfigError> {
        if config.max_lifetime_secs < MIN_LIFETIME_SECS {
            return Err(ConfigError::Lifetime);
        }
        let mut issuers = HashMap::new();
        for issuer in &config.issuers {
            if !issuer.starts_with("https://") {
                return Err(ConfigError::Issuer(issuer.clone()));
            }
            let verifier = match sso.filter(|s| s.config().issuer_url == *issuer) {
                Some(shared) => shared.clone(),
                None => {
                    OidcAuthenticator::start_issuer(issuer, config.ca_pem.clone(), shutdown.clone())
                        .map_err(|e| ConfigError::Ca(e.to_string()))?
                }
            };
            issuers.insert(issuer.clone(), verifier);
        }
        Ok(Arc::new(Federation {
            issuers,
            max_lifetime: config.max_lifetime_secs,
            used: Mutex::new(HashMap::new()),
            rates: Mutex::new(HashMap::new()),
        }))
    }

    /// Whether each allowed issuer's keys are known (for `/readyz?verbose`).
    pub fn readiness(&self) -> Result<(), String> {
        let failing: Vec<String> = self
            .issuers
            .values()
            .filter_map(|v| v.readiness().err())
            .collect();
        if failing.is_empty() {
            Ok(())
        } else {
            Err(failing.join("; "))
        }
    }

    /// The lifetime of an issued token for a request's `requested_lifetime`.
    fn lifetime(&self, requested: Option<i64>) -> Result<i64, ExchangeError> {
        match requested {
            None => Ok(DEFAULT_LIFETIME_SECS.min(self.max_lifetime)),
            Some(secs) if secs < MIN_LIFETIME_SECS => Err(ExchangeError::InvalidRequest(format!(
                "requested_lifetime must be at least {MIN_LIFETIME_SECS} seconds"
            ))),
            Some(secs) => Ok(secs.min(self.max_lifetime)),
        }
    }

    /// Verifies `request.subject_token` and, if exactly one account (or the one `scope` names)
    /// trusts it, signs a bound token of that account for the API's audience (`tokens`'
    /// issuer, the server's URL), which is also the default audience of a trust entry.
    pub async fn exchange(
        &self,
        tokens: &TokenAuthenticator,
        request: &ExchangeRequest<'_>,
    ) -> Result<Exchanged, ExchangeError> {
        let lifetime = self.lifetime(request.requested_lifetime)?;
        let scope = request.scope.map(parse_scope).transpose()?;
        let claims = self.verify(request.subject_token).await?;
        let text = |name: &str| claims.get(name).and_then(Value::as_str).unwrap_or("");
        let (issuer, subject) = (text("iss").to_owned(), text("sub").to_owned());
        let identity = format!("{issuer} {subject}");
        self.count(&issuer, &subject, &identity)?;

        let server = tokens.issuer();
        let view = tokens.view();
        let mut matches = Vec::new();
        let mut mismatches = Vec::new();
        {
            let ids = view.identities();
            for (namespace, name, account) in ids.federated_accounts() {
                if account.deleting {
                    continue;
                }
                if let Some((p, a)) = &scope
                    && (p != namespace || a != name)
                {
                    continue;
                }
                for trust in account.federated.iter().flat_map(|t| t.iter()) {
                    match trust.identity.accepts(&claims, server) {
                        Ok(()) => matches.push((
                            namespace.to_owned(),
                            name.to_owned(),
                            account.uid.clone(),
                            trust.clone(),
                        )),
                        Err(Mismatch::Issuer) => {}
                        Err(why) => mismatches.push(format!(
                            "{namespace}/{name} entry {}: {}",
                            trust.name,
                            describe(&why)
                        )),
                    }
                }
            }
        }
        // One account may list several entries accepting the token: the first decides.
        matches.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
        let (namespace, account, uid, trust) = match matches.len() {
            0 => {
                let why = if mismatches.is_empty() {
                    "no service account trusts this issuer".to_owned()
                } else {
                    mismatches.join("; ")
                };
                return Err(ExchangeError::Refused(format!(
                    "{identity}: no trust accepts the token ({why})"
                )));
            }
            1 => matches.remove(0),
            _ => {
                let mut candidates: Vec<String> = matches
                    .iter()
                    .map(|(ns, name, ..)| format!("project/{ns}/serviceaccount/{name}"))
                    .collect();
                candidates.sort();
                return Err(ExchangeError::Ambiguous(candidates));
            }
        };
        self.use_jti(&claims, &issuer, &identity)?;

        let now = unix_now();
        let jti = uuid::Uuid::new_v4().to_string();
        let audiences = tokens.api_audiences().to_vec();
        let federated = serde_json::json!({
            "name": trust.name,
            "fingerprint": trust.fingerprint,
            "issuer": issuer,
            "subject": subject,
        });
        let token = mint::federated_token(
            view,
            &BoundRequest {
                issuer: server,
                namespace: &namespace,
                account: &account,
                uid: &uid,
                audiences: &audiences,
                now,
                lifetime,
                jti: &jti,
                secret: None,
            },
            federated,
        )
        .map_err(|_| ExchangeError::Internal)?;
        Ok(Exchanged {
            access_token: token,
            expires_in: lifetime,
            namespace,
            account,
            uid,
            trust: trust.name,
            identity,
        })
    }

    /// Verifies the subject token with its issuer's verifier (waiting once for the keys when
    /// it names an unknown `kid`, as single sign-on does).
    async fn verify(&self, token: &str) -> Result<serde_json::Map<String, Value>, ExchangeError> {
        if token.is_empty() {
            return Err(ExchangeError::InvalidRequest(
                "subject_token is required".into(),
            ));
        }
        let parsed = jwt::parse(token)
            .map_err(|_| ExchangeError::Refused("the subject token is not a JWT".into()))?;
        let issuer = parsed
            .claims
            .get("iss")
            .and_then(Value::as_str)
            .unwrap_or("");
        let Some(verifier) = self.issuers.get(issuer) else {
            return Err(ExchangeError::Refused(format!(
                "issuer {issuer:?} is not allowed by the operator (--federated-issuer)"
            )));
        };
        let refused = |e: OidcError| ExchangeError::Refused(format!("issuer {issuer}: {e}"));
        match verifier.verify_claims(token) {
            Err(OidcError::UnknownKid(_)) if verifier.wait_for_keys().await => {
                verifier.verify_claims(token).map_err(refused)
            }
            other => other.map_err(refused),
        }
    }

    /// Counts an exchange of `identity` in its window.
    fn count(&self, issuer: &str, subject: &str, identity: &str) -> Result<(), ExchangeError> {
        let mut rates = self.rates.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if rates.len() >= MEMORY_LIMIT {
            rates.retain(|_, w| now.duration_since(w.started) < RATE_WINDOW);
            if rates.len() >= MEMORY_LIMIT {
                rates.clear();
            }
        }
        let window = rates
            .entry((issuer.to_owned(), subject.to_owned()))
            .or_insert(Window {
                started: now,
                count: 0,
            });
        if now.duration_since(window.started) >= RATE_WINDOW {
            *window = Window {
                started: now,
                count: 0,
            };
        }
        if window.count >= EXCHANGES_PER_WINDOW {
            let after = RATE_WINDOW.saturating_sub(now.duration_since(window.started));
            return Err(ExchangeError::RateLimited(identity.to_owned(), after));
        }
        window.count += 1;
        Ok(())
    }

    /// Records the token's `jti` until its `exp`, refusing one seen before.
    fn use_jti(
        &self,
        claims: &serde_json::Map<String, Value>,
        issuer: &str,
        identity: &str,
    ) -> Result<(), ExchangeError> {
        let Some(jti) = claims.get("jti").and_then(Value::as_str) else {
            return Ok(());
        };
        let exp = claims.get("exp").and_then(Value::as_u64).unwrap_or(0);
        let now = unix_now().max(0) as u64;
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        if used.len() >= MEMORY_LIMIT {
            used.retain(|_, until| *until + crate::oidc::LEEWAY >= now);
        }
        let key = (issuer.to_owned(), jti.to_owned());
        if used.contains_key(&key) {
            return Err(ExchangeError::Refused(format!(
                "{identity}: the subject token (jti {jti:?}) was exchanged before"
            )));
        }
        if used.len() >= MEMORY_LIMIT {
            return Err(ExchangeError::Refused(
                "too many subject tokens remembered; refusing until some expire".into(),
            ));
        }
        used.insert(key, exp);
        Ok(())
    }
}

/// `project/<p>/serviceaccount/<name>` to `(p, name)`.
fn parse_scope(scope: &str) -> Result<(String, String), ExchangeError> {
    let parts: Vec<&str> = scope.trim().split('/').collect();
    match parts.as_slice() {
        ["project", project, "serviceaccount", name] if !project.is_empty() && !name.is_empty() => {
            Ok(((*project).to_owned(), (*name).to_owned()))
        }
        _ => Err(ExchangeError::InvalidRequest(format!(
            "scope must be project/<project>/serviceaccount/<name>, got {scope:?}"
        ))),
    }
}

fn describe(why: &Mismatch) -> String {
    match why {
        Mismatch::Issuer => "another issuer".into(),
        Mismatch::Subject => "the subject does not match".into(),
        Mismatch::Audience => "the audience does not match".into(),
        Mismatch::Claim(name) => format!("claim {name:?} does not match"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scope_names_one_project_and_account() {
        assert_eq!(
            parse_scope("project/p/serviceaccount/ci"),
            Ok(("p".into(), "ci".into()))
        );
        for bad in ["p/ci", "project/p/serviceaccount/", "project/p/sa/ci", ""] {
            assert!(
                matches!(parse_scope(bad), Err(ExchangeError::InvalidRequest(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_refusal_tells_the_caller_nothing_of_the_check_that_failed() {
        let refused = ExchangeError::Refused("issuer x: oidc: token is expired".into());
        assert_eq!(refused.code(), "invalid_grant");
        assert!(!refused.public().contains("expired"));
        assert!(refused.detail().contains("expired"));
    }

    #[test]
    fn a_trust_fingerprint_changes_with_the_entry() {
        let a = trusts_of(Some(
            r#"[{"issuer":"https://ci","subject":"repo:a/b:ref:refs/heads/main"}]"#,
        ))
        .unwrap();
        let b = trusts_of(Some(
            r#"[{"issuer":"https://ci","subject":"repo:a/b:ref:refs/heads/*"}]"#,
        ))
        .unwrap();
        assert_eq!(a[0].fingerprint.len(), 32);
        assert_ne!(a[0].fingerprint, b[0].fingerprint);
        assert!(trusts_of(Some("[]")).is_none());
        assert!(trusts_of(Some("nope")).is_none());
    }
}

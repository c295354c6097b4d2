//! OpenID Connect single sign-on: ID tokens of the company's identity provider verified against
//! its published keys, so that people sign in as themselves.
//!
//! - [`OidcConfig`]: the server's settings (`--oidc-*`);
//! - [`OidcAuthenticator`]: recognises a JWT whose unverified `iss` is the configured issuer and
//!   verifies it (RS256 or ES256 only, against the JWKS; `iss`; `aud` = the client id or the
//!   CLI's client id; `exp` and `nbf` with [`LEEWAY`] seconds of skew), then names the person:
//!   username from the username claim, groups from the groups claim plus
//!   `system:authenticated`, and every string or string-array claim in [`UserInfo::claims`];
//! - `keys` (private): discovery and the JWKS over TLS (`reqwest`, the system's roots plus
//!   `--oidc-ca-file`), fetched in the background at start-up with back-off while the issuer is
//!   down, again every [`REFRESH_INTERVAL`], and at once on a token with an unknown `kid` (at
//!   most once per [`KID_REFRESH_INTERVAL`]).
//!
//! Verified tokens are remembered by the SHA-256 of the token until their `exp` (at most
//! [`CACHE_LIMIT`] of them), so a person's request costs what a service account's does.
//!
//! **Invariant:** an issuer that is down never stops the server: until its keys are known its
//! tokens are refused (401), every other credential works, and `/readyz?verbose` says so
//! ([`OidcAuthenticator::readiness`]).

mod keys;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
#[cfg(test)]
mod tests;
mod web;

pub use web::WebEndpoints;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use crate::jwt;
use crate::rbac::UserInfo;
use crate::view::token_hash;

pub use keys::KeyFetchError;

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const LEEWAY: u64 = 30;
/// How many verified tokens are remembered.
pub const CACHE_LIMIT: usize = 10_000;
/// How often the keys are fetched again while the issuer answers.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(3600);
/// At most one fetch caused by unknown `kid`s per this interval.
pub const KID_REFRESH_INTERVAL: Duration = Duration::from_secs(10);
/// How long a request with an unknown `kid` waits for the keys fetched because of it.
pub const KID_WAIT: Duration = Duration::from_secs(5);
/// The first wait before fetching again after a failure; it doubles up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between fetches while the issuer is down.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// The group every authenticated user is in.
const AUTHENTICATED: &str = "system:authenticated";
/// The scopes asked for when none are configured.
pub const DEFAULT_SCOPES: [&str; 4] = ["openid", "profile", "email", "groups"];
/// The username claim when none is configured (upstream Kargo's `OIDC_USERNAME_CLAIM`).
pub const DEFAULT_USERNAME_CLAIM: &str = "email";
/// The groups claim when none is configured.
pub const DEFAULT_GROUPS_CLAIM: &str = "groups";

/// The server's OIDC settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcConfig {
    /// The issuer (`--oidc-issuer-url`), an `https://` URL; discovery is
    /// `<issuer>/.well-known/openid-configuration`, and tokens must carry it as `iss` exactly.
    pub issuer_url: String,
    /// The server's (the web UI's) client id: an accepted audience.
    pub client_id: String,
    /// The CLI's client id, also an accepted audience (the CLI uses `client_id` when `None`).
    pub cli_client_id: Option<String>,
    /// The scopes clients ask for.
    pub scopes: Vec<String>,
    /// The claim that names the person.
    pub username_claim: String,
    /// The claim holding the person's groups (a string or an array of strings).
    pub groups_claim: String,
    /// A PEM CA bundle trusted for the issuer besides the system's roots (`--oidc-ca-file`).
    pub ca_pem: Option<Vec<u8>>,
    /// Claims that make a person a system-wide admin (`--oidc-admin-claim name=value`),
    /// upstream's `api.oidc.admins`.
    pub admin_claims: BTreeMap<String, Vec<String>>,
    /// Claims that make a person a system-wide viewer (`--oidc-viewer-claim name=value`),
    /// upstream's `api.oidc.viewers`.
    pub viewer_claims: BTreeMap<String, Vec<String>>,
}

impl OidcConfig {
    /// A configuration with the defaults: [`DEFAULT_SCOPES`], [`DEFAULT_USERNAME_CLAIM`],
    /// [`DEFAULT_GROUPS_CLAIM`], no extra CA, no CLI client id, no admin or viewer claims.
    pub fn new(issuer_url: impl Into<String>, client_id: impl Into<String>) -> OidcConfig {
        OidcConfig {
            issuer_url: issuer_url.into(),
            client_id: client_id.into(),
            cli_client_id: None,
            scopes: DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
            username_claim: DEFAULT_USERNAME_CLAIM.to_owned(),
            groups_claim: DEFAULT_GROUPS_CLAIM.to_owned(),
            ca_pem: None,
            admin_claims: BTreeMap::new(),
            viewer_claims: BTreeMap::new(),
        }
    }

    /// The audiences a token may carry: the client id and the CLI's.
    fn audiences(&self) -> Vec<String> {
        let mut audiences = vec![self.client_id.clone()];
        if let Some(cli) = &self.cli_client_id
            && *cli != self.client_id
        {
            audiences.push(cli.clone());
        }
        audiences
    }

    /// The body of `oidcConfig` in `GET /v1beta1/system/public-server-config`.
    pub fn public(&self) -> Value {
        serde_json::json!({
            "issuerUrl": self.issuer_url,
            "clientId": self.client_id,
            "cliClientId": self.cli_client_id.as_deref().unwrap_or(""),
            "scopes": self.scopes,
        })
    }
}

/// A `name=value` setting (`--oidc-admin-claim email=a@b.c`) added to a claim map.
pub fn parse_claim_setting(
    setting: &str,
    into: &mut BTreeMap<String, Vec<String>>,
) -> Result<(), String> {
    match setting.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() && !value.trim().is_empty() => {
            let values = into.entry(name.trim().to_owned()).or_default();
            let value = value.trim().to_owned();
            if !values.contains(&value) {
                values.push(value);
                values.sort();
            }
            Ok(())
        }
        _ => Err(format!(
            "invalid claim {setting:?}: expected name=value, e.g. email=someone@example.com"
        )),
    }
}

/// Why the OIDC settings cannot be used (a start-up error).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The issuer is not an `https://` URL.
    #[error("--oidc-issuer-url must be an https:// URL, got {0:?}")]
    Issuer(String),
    /// No client id.
    #[error("--oidc-client-id is required with --oidc-issuer-url")]
    ClientId,
    /// The CA bundle does not read.
    #[error("--oidc-ca-file: {0}")]
    Ca(String),
}

/// Why an ID token is refused. The texts are go-oidc's (what kube-apiserver's OIDC authenticator
/// reports); only the authentication observer sees them: clients get `401 invalid token` on
/// the Kargo API and `Unauthorized` on the Kubernetes API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OidcError {
    /// Not a compact JWS of base64url JSON.
    #[error("oidc: malformed jwt")]
    Malformed,
    /// An algorithm other than RS256 or ES256 (`none`, HS256 ...).
    #[error(
        "oidc: id token signed with unsupported algorithm, expected [\"RS256\" \"ES256\"] got {0:?}"
    )]
    Algorithm(String),
    /// The issuer's keys have not been fetched yet.
    #[error("oidc: the keys of the issuer are not known yet (the issuer has not answered)")]
    NoKeys,
    /// No key with the token's `kid` (a fetch of the keys is asked for).
    #[error("failed to verify signature: no key with kid {0:?} in the issuer's key set")]
    UnknownKid(String),
    /// The signature does not verify with the key the `kid` names.
    #[error("failed to verify signature: invalid signature")]
    Signature,
    /// Another issuer.
    #[error("oidc: id token issued by a different provider, expected {expected:?} got {got:?}")]
    Issuer {
        /// The configured issuer.
        expected: String,
        /// The token's.
        got: String,
    },
    /// An audience that is neither client id.
    #[error("oidc: expected audience {0:?} got {1}")]
    Audience(Vec<String>, Value),
    /// Past `exp` (plus the skew).
    #[error("oidc: token is expired")]
    Expired,
    /// Before `nbf` (minus the skew).
    #[error("oidc: current time before the nbf (not before) time")]
    NotYetValid,
    /// A required claim is missing (`exp`, `iss`, `aud`).
    #[error("oidc: required claim {0:?} is missing")]
    Missing(String),
    /// The username claim is missing or not a string.
    #[error("oidc: parse username claims {0:?}: claim not present or not a string")]
    Username(String),
    /// The groups claim is neither a string nor an array of strings.
    #[error("oidc: parse groups claim {0:?}: not a string or an array of strings")]
    Groups(String),
}

/// A verified token, remembered until it expires.
struct Cached {
    user: Arc<UserInfo>,
    /// `exp` plus the skew, in seconds since the epoch.
    valid_until: u64,
}

/// How the issuer's keys stand, for readiness.
#[derive(Debug, Default)]
struct Fetches {
    /// The last failure, while the latest fetch failed.
    last_error: Option<String>,
    /// When an unknown `kid` last caused a fetch.
    kid_refresh: Option<Instant>,
    /// Whether a fetch caused by an unknown `kid` has not completed yet.
    kid_fetch_pending: bool,
    /// Fetches done, successful or not (for tests).
    attempts: u64,
}

/// Verifies the ID tokens of one issuer.
pub struct OidcAuthenticator {
    config: OidcConfig,
    audiences: Vec<String>,
    validation: [Validation; 2],
    /// The same checks without the audience's, for [`OidcAuthenticator::verify_claims`].
    any_audience: [Validation; 2],
    keys: RwLock<Option<Arc<keys::Jwks>>>,
    cache: RwLock<HashMap<[u8; 32], Cached>>,
    fetches: Mutex<Fetches>,
    refresh: tokio::sync::Notify,
    /// The number of completed fetches, for requests waiting on one.
    completed: tokio::sync::watch::Sender<u64>,
    /// Whether "keys not known yet" has been logged (once per outage).
    warned: AtomicBool,
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl OidcAuthenticator {
    /// Checks `config`, then starts fetching the issuer's keys in the background (until
    /// `shutdown`). Returns at once: the issuer may be down.
    pub fn start(
        config: OidcConfig,
        shutdown: CancellationToken,
    ) -> Result<Arc<OidcAuthenticator>, ConfigError> {
        if !config.issuer_url.starts_with("https://") {
            return Err(ConfigError::Issuer(config.issuer_url));
        }
        if config.client_id.is_empty() {
            return Err(ConfigError::ClientId);
        }
        let audiences = config.audiences();
        OidcAuthenticator::start_with(config, Some(audiences), shutdown)
    }

    /// A verifier of one issuer's tokens for [`OidcAuthenticator::verify_claims`] only
    /// (workload identity federation, for an issuer that is not the single sign-on one): the
    /// same keys, cache and refresh as single sign-on.
    pub fn start_issuer(
        issuer_url: impl Into<String>,
        ca_pem: Option<Vec<u8>>,
        shutdown: CancellationToken,
    ) -> Result<Arc<OidcAuthenticator>, ConfigError> {
        let mut config = OidcConfig::new(issuer_url, "");
        config.ca_pem = ca_pem;
        OidcAuthenticator::start_with(config, None, shutdown)
    }

    /// Starts a verifier checking `aud` against `audiences`, or not at all when `None`.
    fn start_with(
        config: OidcConfig,
        audiences: Option<Vec<String>>,
        shutdown: CancellationToken,
    ) -> Result<Arc<OidcAuthenticator>, ConfigError> {
        if !config.issuer_url.starts_with("https://") {
            return Err(ConfigError::Issuer(config.issuer_url));
        }
        let client = keys::client(config.ca_pem.as_deref()).map_err(ConfigError::Ca)?;
        let validation_for = |audiences: Option<&Vec<String>>| {
            [Algorithm::RS256, Algorithm::ES256].map(|alg| {
                let mut v = Validation::new(alg);
                v.leeway = LEEWAY;
                v.validate_nbf = true;
                v.set_issuer(&[&config.issuer_url]);
                match audiences {
                    Some(audiences) => {
                        v.set_audience(audiences);
                        v.set_required_spec_claims(&["exp", "iss", "aud"]);
                    }
                    None => {
                        v.validate_aud = false;
                        v.set_required_spec_claims(&["exp", "iss"]);
                    }
                }
                v
            })
        };
        let validation = validation_for(audiences.as_ref());
        let any_audience = validation_for(None);
        let authenticator = Arc::new(OidcAuthenticator {
            config,
            audiences: audiences.unwrap_or_default(),
            validation,
            any_audience,
            keys: RwLock::new(None),
            cache: RwLock::new(HashMap::new()),
            fetches: Mutex::new(Fetches::default()),
            refresh: tokio::sync::Notify::new(),
            completed: tokio::sync::watch::Sender::new(0),
            warned: AtomicBool::new(false),
        });
        tokio::spawn(keys::refresher(
            Arc::downgrade(&authenticator),
            client,
            shutdown,
        ));
        Ok(authenticator)
    }

    /// The settings.
    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    /// Whether the issuer's keys are known: `Err` with what went wrong while they are not (the
    /// `[-]oidc` line of `/readyz?verbose`). Keys fetched once stay in use while a later
    /// refresh fails.
    pub fn readiness(&self) -> Result<(), String> {
        let known = self.keys.read().map(|k| k.is_some()).unwrap_or(false);
        if known {
            return Ok(());
        }
        let error = self.lock_fetches().last_error.clone();
        Err(format!(
            "issuer {} unreachable: {}",
            self.config.issuer_url,
            error.as_deref().unwrap_or("no answer yet")
        ))
    }

    /// Whether `token` names this issuer (its unverified `iss`): only such tokens are verified
    /// here.
    pub fn is_its_token(&self, token: &str) -> bool {
        jwt::parse(token).is_ok_and(|p| {
            p.claims.get("iss").and_then(Value::as_str) == Some(self.config.issuer_url.as_str())
        })
    }

    /// The user of a token verified before and not expired since.
    pub fn cached(&self, token: &str) -> Option<Arc<UserInfo>> {
        self.cached_by_hash(&token_hash(token.as_bytes()))
    }

    fn cached_by_hash(&self, hash: &[u8; 32]) -> Option<Arc<UserInfo>> {
        let cache = self.cache.read().ok()?;
        let entry = cache.get(hash)?;
        (now() <= entry.valid_until).then(|| entry.user.clone())
    }

    /// Verifies an ID token of this issuer and names its user.
    pub fn verify(&self, token: &str) -> Result<Arc<UserInfo>, OidcError> {
        let hash = token_hash(token.as_bytes());
        if let Some(user) = self.cached_by_hash(&hash) {
            return Ok(user);
        }
        let claims = self.claims_checked(token, &self.validation)?;
        let user = Arc::new(self.user_of(&claims)?);
        let exp = claims.get("exp").and_then(Value::as_u64).unwrap_or(0);
        self.remember(hash, user.clone(), exp.saturating_add(LEEWAY));
        Ok(user)
    }

    /// Verifies a token of this issuer — algorithm (RS256 or ES256), signature against the
    /// issuer's keys, `iss`, `exp` and `nbf`, but not `aud`, which the caller checks (workload
    /// identity federation: each trust names its audience) — and returns its claims. Not
    /// cached. The single sign-on verifier serves this too, so an issuer used for both has one
    /// key cache.
    pub fn verify_claims(&self, token: &str) -> Result<Map<String, Value>, OidcError> {
        self.claims_checked(token, &self.any_audience)
    }

    /// Verifies a token with one of `validations` (RS256's, ES256's) and returns its claims.
    fn claims_checked(
        &self,
        token: &str,
        validations: &[Validation; 2],
    ) -> Result<Map<String, Value>, OidcError> {
        let parsed = jwt::parse(token).map_err(|_| OidcError::Malformed)?;
        let validation = match parsed.alg.as_str() {
            "RS256" => &validations[0],
            "ES256" => &validations[1],
            other => return Err(OidcError::Algorithm(other.to_owned())),
        };
        let Some(keys) = self.keys.read().ok().and_then(|k| k.clone()) else {
            if !self.warned.swap(true, Ordering::Relaxed) {
                tracing::warn!(issuer = %self.config.issuer_url, "refusing OIDC tokens until the issuer's keys are fetched");
            }
            return Err(OidcError::NoKeys);
        };
        let candidates = keys.candidates(&parsed.kid, &parsed.alg);
        if candidates.is_empty() {
            self.request_refresh();
            return Err(OidcError::UnknownKid(parsed.kid));
        }
        let mut last = OidcError::Signature;
        for key in candidates {
            match jsonwebtoken::decode::<Map<String, Value>>(token, key, validation) {
                Ok(data) => return Ok(data.claims),
                Err(e) => last = self.error_of(e.kind(), &parsed.claims),
            }
        }
        Err(last)
    }

    fn error_of(&self, kind: &ErrorKind, claims: &Value) -> OidcError {
        match kind {
            ErrorKind::InvalidIssuer => OidcError::Issuer {
                expected: self.config.issuer_url.clone(),
                got: claims
                    .get("iss")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
            },
            ErrorKind::InvalidAudience => OidcError::Audience(
                self.audiences.clone(),
                claims.get("aud").cloned().unwrap_or(Value::Null),
            ),
            ErrorKind::ExpiredSignature => OidcError::Expired,
            ErrorKind::ImmatureSignature => OidcError::NotYetValid,
            ErrorKind::MissingRequiredClaim(claim) => OidcError::Missing(claim.clone()),
            ErrorKind::InvalidToken | ErrorKind::Base64(_) | ErrorKind::Json(_) => {
                OidcError::Malformed
            }
            _ => OidcError::Signature,
        }
    }

    /// The person a verified claim set names.
    fn user_of(&self, claims: &Map<String, Value>) -> Result<UserInfo, OidcError> {
        let username = claims
            .get(&self.config.username_claim)
            .and_then(Value::as_str)
            .filter(|u| !u.is_empty())
            .ok_or_else(|| OidcError::Username(self.config.username_claim.clone()))?;
        let mut groups = match claims.get(&self.config.groups_claim) {
            None | Some(Value::Null) => Vec::new(),
            Some(value) => {
                strings(value).ok_or_else(|| OidcError::Groups(self.config.groups_claim.clone()))?
            }
        };
        if !groups.iter().any(|g| g == AUTHENTICATED) {
            groups.push(AUTHENTICATED.to_owned());
        }
        let claims = claims
            .iter()
            .filter_map(|(name, value)| Some((name.clone(), strings(value)?)))
            .collect();
        Ok(UserInfo {
            username: username.to_owned(),
            uid: String::new(),
            groups,
            extra: BTreeMap::new(),
            claims,
            legacy_token_secret: None,
        })
    }

    /// Remembers a verified token; a full cache first forgets the expired ones, then, if still
    /// full, everything.
    fn remember(&self, hash: [u8; 32], user: Arc<UserInfo>, valid_until: u64) {
        let Ok(mut cache) = self.cache.write() else {
            return;
        };
        if cache.len() >= CACHE_LIMIT {
            let now = now();
            cache.retain(|_, c| c.valid_until >= now);
            if cache.len() >= CACHE_LIMIT {
                cache.clear();
            }
        }
        cache.insert(hash, Cached { user, valid_until });
    }

    /// Asks the background task to fetch the keys now, unless an unknown `kid` did so less
    /// than [`KID_REFRESH_INTERVAL`] ago.
    fn request_refresh(&self) {
        let mut fetches = self.lock_fetches();
        let now = Instant::now();
        if fetches
            .kid_refresh
            .is_some_and(|at| now.duration_since(at) < KID_REFRESH_INTERVAL)
        {
            return;
        }
        fetches.kid_refresh = Some(now);
        fetches.kid_fetch_pending = true;
        drop(fetches);
        tracing::info!(issuer = %self.config.issuer_url, "a token names a key the issuer's key set lacks: fetching the keys again");
        self.refresh.notify_one();
    }

    /// Waits (at most [`KID_WAIT`]) for the fetch an unknown `kid` caused, if one is under
    /// way; whether one completed. A token with an unknown `kid` is worth checking again then.
    pub async fn wait_for_keys(&self) -> bool {
        let mut completed = self.completed.subscribe();
        if !self.lock_fetches().kid_fetch_pending {
            return false;
        }
        tokio::time::timeout(KID_WAIT, completed.changed())
            .await
            .is_ok_and(|changed| changed.is_ok())
    }

    fn lock_fetches(&self) -> std::sync::MutexGuard<'_, Fetches> {
        self.fetches.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a fetch's outcome: new keys (the verified-token cache is kept: a token verified
    /// with a key that is gone stays valid until its `exp`, as with any cache of upstream's),
    /// or the failure while keys are missing.
    fn fetched(&self, outcome: Result<keys::Jwks, KeyFetchError>) {
        let mut fetches = self.lock_fetches();
        fetches.attempts += 1;
        fetches.kid_fetch_pending = false;
        match outcome {
            Ok(jwks) => {
                if fetches.last_error.take().is_some() || !self.warned.load(Ordering::Relaxed) {
                    tracing::info!(issuer = %self.config.issuer_url, keys = jwks.len(), "fetched the OIDC issuer's keys");
                }
                self.warned.store(false, Ordering::Relaxed);
                if let Ok(mut keys) = self.keys.write() {
                    *keys = Some(Arc::new(jwks));
                }
            }
            Err(e) => {
                tracing::warn!(issuer = %self.config.issuer_url, error = %e, "fetching the OIDC issuer's keys failed");
                fetches.last_error = Some(e.to_string());
            }
        }
        drop(fetches);
        // After the keys are in place: waiting requests check their tokens again.
        self.completed.send_modify(|n| *n += 1);
    }

    /// How many fetches have completed.
    #[cfg(test)]
    fn attempts(&self) -> u64 {
        self.lock_fetches().attempts
    }
}

/// A string claim as one value, an array of strings as its values; anything else `None`.
fn strings(value: &Value) -> Option<Vec<String>> {
    match value {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_owned))
            .collect(),
        _ => None,
    }
}

//! Service-account tokens: verification against the server's signing keys and the live
//! ServiceAccounts and token Secrets of the [`AuthView`].
//!
//! Verifying an RS256 signature costs far more than the rest of a request, so verified claims
//! are cached by token. The cache only remembers that a signature is good; every request still
//! checks the Secret (by the token's SHA-256), the account and its uid in the view, so a
//! revocation takes effect on the next request. A change of the key set empties the cache.
//!
//! Expiry is checked the same way, on every request against the clock, after the cache: a
//! legacy token whose Secret carries `kargo.akuity.io/expires-at` is refused from that second
//! on, and one whose annotation is not a time is refused always (fail closed).
//!
//! So are the rest of a token's lifecycle: a Secret annotated `kargo.akuity.io/disabled` refuses
//! its token, and a rotated Secret accepts the SHA-256 of its previous value (never the value
//! itself) until `kargo.akuity.io/previous-token-valid-until`.
//!\n//! A legacy token that passes is recorded as used, with the minute and the client's address, in
//! the view's [`UsageLog`](crate::usage::UsageLog) (an atomic load per request; see
//! [`crate::usage`]); the flusher writes it to the Secret later, never the request.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};

use super::jwt::{self, Claims, TokenError};
use super::observe::Credential;
use super::rbac::UserInfo;
use super::view::{AuthView, Expiry, token_hash};

/// The cache's map: keyed by the token itself with a fast hash (the token is compared whole, so
/// a collision costs a lookup, never a wrong answer).
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// How many verified tokens the cache remembers before it starts over.
const CACHE_LIMIT: usize = 100_000;
/// Clock skew tolerated for bound tokens, in seconds.
const LEEWAY: i64 = 60;

/// A token that passed every check.
#[derive(Debug, Clone)]
pub struct Authenticated<'a> {
    /// Who the token speaks for (shared: built once per token, not per request).
    pub user: Arc<UserInfo>,
    /// The audiences the token is valid for (those it was checked against; borrowed when they
    /// are all of them, as on every API request).
    pub audiences: Cow<'a, [String]>,
    /// A legacy or a bound token.
    pub credential: Credential,
}

/// A verified token: its claims, its SHA-256 (what legacy tokens are compared with) and the
/// user it speaks for when it passes the live checks.
struct Verified {
    claims: Claims,
    hash: [u8; 32],
    user: Arc<UserInfo>,
}

/// The user a token's claims name.
fn user_of(claims: &Claims) -> UserInfo {
    match claims {
        Claims::Legacy {
            namespace,
            account,
            uid,
            secret,
        } => UserInfo {
            legacy_token_secret: Some(secret.clone()),
            ..UserInfo::service_account(namespace, account, uid.as_str())
        },
        Claims::Bound {
            namespace,
            account,
            uid,
            jti,
            ..
        } => {
            let mut user = UserInfo::service_account(namespace, account, uid.as_str());
            if !jti.is_empty() {
                user.extra.insert(
                    "authentication.kubernetes.io/credential-id".into(),
                    vec![format!("JTI={jti}")],
                );
            }
            user
        }
    }
}

struct Cache {
    generation: u64,
    tokens: HashMap<Box<str>, Arc<Verified>>,
}

/// How often the verified-token cache answered (`hits`) and how often a token had to be
/// verified (`misses`), for the metrics.
#[derive(Debug, Default)]
pub struct CacheStats {
    /// Tokens answered from the cache.
    pub hits: std::sync::atomic::AtomicU64,
    /// Tokens verified (their signature checked), valid or not.
    pub misses: std::sync::atomic::AtomicU64,
}

/// Verifies service-account tokens.
pub struct TokenAuthenticator {
    view: Arc<AuthView>,
    issuer: String,
    api_audiences: Vec<String>,
    cache: RwLock<Cache>,
    stats: Arc<CacheStats>,
    clock: Clock,
}

/// The time in Unix seconds; injected by tests, the system clock otherwise.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl TokenAuthenticator {
    /// A token authenticator over a view, for bound tokens of `issuer`; the API's audiences are
    /// `[issuer]`.
    pub fn new(view: Arc<AuthView>, issuer: String) -> TokenAuthenticator {
        TokenAuthenticator {
            view,
            api_audiences: vec![issuer.clone()],
            issuer,
            cache: RwLock::new(Cache {
                generation: 0,
                tokens: HashMap::default(),
            }),
            stats: Arc::default(),
            clock: Arc::new(now),
        }
    }

    /// The same authenticator reading the time from `clock` (tests move time without sleeping).
    pub fn with_clock(self, clock: Clock) -> TokenAuthenticator {
        TokenAuthenticator { clock, ..self }
    }

    /// The issuer of bound tokens.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The API's audiences (what a token without `aud` is valid for).
    pub fn api_audiences(&self) -> &[String] {
        &self.api_audiences
    }

    /// The cache's hit and miss counts.
    pub fn cache_stats(&self) -> Arc<CacheStats> {
        self.stats.clone()
    }

    /// The view this authenticator reads.
    pub fn view(&self) -> &Arc<AuthView> {
        &self.view
    }

    fn verified(&self, token: &str) -> Result<Arc<Verified>, TokenError> {
        let generation = self.view.key_generation();
        if let Ok(cache) = self.cache.read()
            && cache.generation == generation
            && let Some(verified) = cache.tokens.get(token)
        {
            self.stats.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(verified.clone());
        }
        self.stats.misses.fetch_add(1, Ordering::Relaxed);
        let keys = self.view.keys();
        let claims = jwt::verify(token, &keys, std::slice::from_ref(&self.issuer))?;
        let verified = Arc::new(Verified {
            user: Arc::new(user_of(&claims)),
            claims,
            hash: token_hash(token.as_bytes()),
        });
        if let Ok(mut cache) = self.cache.write() {
            if cache.generation != generation || cache.tokens.len() >= CACHE_LIMIT {
                cache.tokens.clear();
                cache.generation = generation;
            }
            cache.tokens.insert(token.into(), verified.clone());
        }
        Ok(verified)
    }

    /// The kind of a token that did not authenticate, from its unverified issuer (what
    /// kube-apiserver routes tokens by): for the observer only, never for a decision.
    pub(crate) fn kind_of(&self, token: &str) -> Credential {
        let Ok(parsed) = jwt::parse(token) else {
            return Credential::Unrecognized;
        };
        match parsed.claims.get("iss").and_then(serde_json::Value::as_str) {
            Some(jwt::LEGACY_ISSUER) => Credential::ServiceAccountToken,
            Some(crate::admin::ISSUER) => Credential::AdminToken,
            Some(iss) if iss == self.issuer => Credential::BoundToken,
            _ => Credential::Unrecognized,
        }
    }

    /// Verifies a token for `audiences` (the API's when `None`); the error is the reason
    /// TokenReview reports. A legacy token that passes is recorded as used from no known
    /// address (a TokenReview: the token counts as used, as in Kubernetes).
    pub fn authenticate<'a>(
        &'a self,
        token: &str,
        audiences: Option<&'a [String]>,
    ) -> Result<Authenticated<'a>, String> {
        self.authenticate_from(token, audiences, None)
    }

    /// [`TokenAuthenticator::authenticate`] for a request from `source`: a legacy token that
    /// passes is recorded as used from there.
    pub fn authenticate_from<'a>(
        &'a self,
        token: &str,
        audiences: Option<&'a [String]>,
        source: Option<IpAddr>,
    ) -> Result<Authenticated<'a>, String> {
        let wanted = audiences
            .filter(|a| !a.is_empty())
            .unwrap_or(&self.api_audiences);
        let verified = self.verified(token).map_err(|e| e.to_string())?;
        let hash = verified.hash;
        let ids = self.view.identities();
        match &verified.claims {
            Claims::Legacy {
                namespace,
                secret,
                account,
                uid,
            } => {
                if !wanted.iter().any(|a| self.api_audiences.contains(a)) {
                    return Err(format!(
                        "token audiences {:?} is invalid for the target audiences {:?}",
                        self.api_audiences, wanted
                    ));
                }
                let stored = ids
                    .secret(namespace, secret)
                    .filter(|s| !s.deleting)
                    .ok_or("Token has been invalidated")?;
                let now = (self.clock)();
                let current = stored.token_hash == Some(hash);
                let previous = stored
                    .previous
                    .is_some_and(|(old, until)| old == hash && now < until);
                if !current && !previous {
                    return Err("Token does not match server's copy".into());
                }
                if stored.disabled {
                    return Err("Token has been disabled".into());
                }
                match stored.expiry {
                    Expiry::Never => {}
                    Expiry::At(at) if !kargo_api::expiry::is_expired(at, now) => {}
                    Expiry::At(_) => return Err("Token has expired".into()),
                    Expiry::Malformed => {
                        return Err("Token has an invalid expiry annotation".into());
                    }
                }
                let live = ids
                    .account(namespace, account)
                    .ok_or_else(|| format!("serviceaccounts \"{account}\" not found"))?;
                if live.deleting {
                    return Err(format!(
                        "ServiceAccount {namespace}/{account} has been deleted"
                    ));
                }
                if live.uid != *uid {
                    return Err(format!(
                        "ServiceAccount UID ({}) does not match claim ({uid})",
                        live.uid
                    ));
                }
                self.view
                    .usage()
                    .record(&stored.usage, (self.clock)(), source);
                Ok(Authenticated {
                    user: verified.user.clone(),
                    audiences: Cow::Borrowed(wanted),
                    credential: Credential::ServiceAccountToken,
                })
            }
            Claims::Bound {
                namespace,
                account,
                uid,
                audiences: token_audiences,
                expires,
                not_before,
                secret,
                federated,
                ..
            } => {
                let now = (self.clock)();
                // The claims are the signer's, but any i64 parses: saturate, never overflow.
                if now > expires.saturating_add(LEEWAY) {
                    return Err("service account token has expired".into());
                }
                if now.saturating_add(LEEWAY) < *not_before {
                    return Err("service account token is not valid yet".into());
                }
                let matched: Vec<String> = wanted
                    .iter()
                    .filter(|a| token_audiences.contains(a))
                    .cloned()
                    .collect();
                if matched.is_empty() {
                    return Err(format!(
                        "token audiences {token_audiences:?} is invalid for the target audiences {wanted:?}"
                    ));
                }
                let live = ids
                    .account(namespace, account)
                    .filter(|a| !a.deleting)
                    .ok_or_else(|| {
                        format!("service account {namespace}/{account} has been deleted")
                    })?;
                if live.uid != *uid {
                    return Err(format!(
                        "service account UID ({}) does not match claim ({uid})",
                        live.uid
                    ));
                }
                if let Some(fingerprint) = federated
                    && !live.trusts(fingerprint)
                {
                    return Err(format!(
                        "service account {namespace}/{account} no longer trusts the identity this token was exchanged for"
                    ));
                }
                if let Some((name, secret_uid)) = secret {
                    let bound = ids.secret(namespace, name);
                    if bound.is_none_or(|s| s.uid != *secret_uid || s.deleting) {
                        return Err("service account token has been invalidated".into());
                    }
                }
                Ok(Authenticated {
                    user: verified.user.clone(),
                    audiences: Cow::Owned(matched),
                    credential: Credential::BoundToken,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests;

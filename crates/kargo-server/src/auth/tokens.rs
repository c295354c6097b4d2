//! Service-account tokens: verification against the server's signing keys and the live
//! ServiceAccounts and token Secrets of the [`AuthView`].
//!
//! Verifying an RS256 signature costs far more than the rest of a request, so verified claims
//! are cached by the token's SHA-256. The cache only remembers that a signature is good; every
//! request still checks the Secret, the account and its uid in the view, so a revocation takes
//! effect on the next request. A change of the key set empties the cache.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::jwt::{self, Claims, TokenError};
use super::rbac::UserInfo;
use super::view::{AuthView, token_hash};

/// How many verified tokens the cache remembers before it starts over.
const CACHE_LIMIT: usize = 100_000;
/// Clock skew tolerated for bound tokens, in seconds.
const LEEWAY: i64 = 60;

/// A token that passed every check.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// Who the token speaks for.
    pub user: UserInfo,
    /// The audiences the token is valid for (those it was checked against).
    pub audiences: Vec<String>,
}

struct Cache {
    generation: u64,
    claims: HashMap<[u8; 32], Arc<Claims>>,
}

/// Verifies service-account tokens.
pub struct TokenAuthenticator {
    view: Arc<AuthView>,
    issuer: String,
    api_audiences: Vec<String>,
    cache: RwLock<Cache>,
}

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
                claims: HashMap::new(),
            }),
        }
    }

    /// The issuer of bound tokens.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The API's audiences (what a token without `aud` is valid for).
    pub fn api_audiences(&self) -> &[String] {
        &self.api_audiences
    }

    /// The view this authenticator reads.
    pub fn view(&self) -> &Arc<AuthView> {
        &self.view
    }

    fn verified_claims(&self, token: &str, hash: &[u8; 32]) -> Result<Arc<Claims>, TokenError> {
        let generation = self.view.key_generation();
        if let Ok(cache) = self.cache.read()
            && cache.generation == generation
            && let Some(claims) = cache.claims.get(hash)
        {
            return Ok(claims.clone());
        }
        let keys = self.view.keys();
        let claims = Arc::new(jwt::verify(
            token,
            &keys,
            std::slice::from_ref(&self.issuer),
        )?);
        if let Ok(mut cache) = self.cache.write() {
            if cache.generation != generation || cache.claims.len() >= CACHE_LIMIT {
                cache.claims.clear();
                cache.generation = generation;
            }
            cache.claims.insert(*hash, claims.clone());
        }
        Ok(claims)
    }

    /// Verifies a token for `audiences` (the API's when `None`); the error is the reason
    /// TokenReview reports.
    pub fn authenticate(
        &self,
        token: &str,
        audiences: Option<&[String]>,
    ) -> Result<Authenticated, String> {
        let wanted = audiences
            .filter(|a| !a.is_empty())
            .unwrap_or(&self.api_audiences);
        let hash = token_hash(token.as_bytes());
        let claims = self
            .verified_claims(token, &hash)
            .map_err(|e| e.to_string())?;
        let ids = self.view.identities();
        match &*claims {
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
                if stored.token_hash != Some(hash) {
                    return Err("Token does not match server's copy".into());
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
                Ok(Authenticated {
                    user: UserInfo::service_account(namespace, account, uid),
                    audiences: wanted.to_vec(),
                })
            }
            Claims::Bound {
                namespace,
                account,
                uid,
                audiences: token_audiences,
                expires,
                not_before,
                jti,
                secret,
                ..
            } => {
                let now = now();
                if now > *expires + LEEWAY {
                    return Err("service account token has expired".into());
                }
                if now + LEEWAY < *not_before {
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
                if let Some((name, secret_uid)) = secret {
                    let bound = ids.secret(namespace, name);
                    if bound.is_none_or(|s| s.uid != *secret_uid || s.deleting) {
                        return Err("service account token has been invalidated".into());
                    }
                }
                let mut user = UserInfo::service_account(namespace, account, uid);
                if !jti.is_empty() {
                    user.extra.insert(
                        "authentication.kubernetes.io/credential-id".into(),
                        vec![format!("JTI={jti}")],
                    );
                }
                Ok(Authenticated {
                    user,
                    audiences: matched,
                })
            }
        }
    }
}

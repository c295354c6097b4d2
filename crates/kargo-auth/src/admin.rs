//! The Kargo admin account: its password (given in `KARGO_ADMIN_PASSWORD` or generated on first
//! start), and the HS256 JWTs that `POST /v1beta1/login` issues for it.
//!
//! The password hash and the JWT signing key live in the store (under `/kargo/internal/`, outside
//! the API's key space), so that every replica accepts the same password and tokens. The informer
//! hands every change of the record to [`AdminWatcher`], so a password set on one replica is the
//! password of all of them.
//!
//! # Sessions
//! An admin token is valid until it expires (24 hours), unless its session ends first:
//! - `POST /v1beta1/logout` adds the token's `jti` to the record's revoked list (entries are
//!   dropped once their token has expired anyway);
//! - a new password (`KARGO_ADMIN_PASSWORD` at start-up) or `kargo server
//!   --revoke-admin-sessions` replaces the token key, so every earlier admin token stops
//!   verifying.
//!
//! Both are writes of the record, so every replica applies them as soon as its watch brings
//! the change.

use std::num::NonZeroU32;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Validation};
use kargo_store::Store;
use serde::{Deserialize, Serialize};

/// The store key of the admin record.
pub(crate) const ADMIN_KEY: &str = "/kargo/internal/admin";
/// How long an admin token is valid.
pub(crate) const TOKEN_LIFETIME_SECS: u64 = 24 * 60 * 60;
const PBKDF2_ITERATIONS: u32 = 100_000;
/// The issuer of admin tokens.
pub const ISSUER: &str = "kargo-admin";
/// The shortest admin password accepted, in characters (Unicode code points): NIST SP 800-63B-4
/// (2025, section 3.1.1.2) requires at least 15 for a password that is the only factor, as the
/// admin password is.
pub(crate) const MIN_PASSWORD_LENGTH: usize = 15;
/// How many logged-out admin tokens the record lists; a logout past it ends every admin session
/// instead (a new token key), which keeps the record small whatever happens.
pub(crate) const MAX_REVOKED: usize = 1_000;

#[derive(Serialize, Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct Record {
    salt: String,
    hash: String,
    iterations: u32,
    jwt_key: String,
    /// Logged-out tokens that have not expired yet (absent in records written before logout
    /// existed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    revoked: Vec<Revoked>,
}

/// A logged-out admin token: its id and its expiry (after which it need not be listed).
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq, Debug)]
struct Revoked {
    jti: String,
    exp: u64,
}

/// The admin account's secrets, loaded from the store and kept current by [`AdminWatcher`].
pub struct Admin {
    secrets: std::sync::RwLock<Arc<Secrets>>,
}

/// One version of the admin record, decoded.
struct Secrets {
    salt: Vec<u8>,
    hash: Vec<u8>,
    iterations: u32,
    encoding: EncodingKey,
    decoding: DecodingKey,
    revoked: std::collections::HashSet<String>,
}

/// What can go wrong setting the admin account up.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The store failed.
    #[error("store: {0}")]
    Store(kargo_store::Error),
    /// The stored record does not decode.
    #[error("the admin record in the store is corrupt: {0}")]
    Corrupt(String),
    /// The system's random number generator failed.
    #[error("no randomness available")]
    Random,
    /// The password given in `KARGO_ADMIN_PASSWORD` is too short.
    #[error(
        "KARGO_ADMIN_PASSWORD is too short: the admin password needs at least {min} characters"
    )]
    PasswordTooShort {
        /// The minimum ([`MIN_PASSWORD_LENGTH`]).
        min: usize,
    },
    /// There is no admin record to change.
    #[error("the store holds no admin record")]
    Missing,
}

// Not `#[from]`: the message already names the cause, and a `source` besides would make the
// CLI, which prints an error's whole chain, say it twice.
impl From<kargo_store::Error> for AdminError {
    fn from(error: kargo_store::Error) -> AdminError {
        AdminError::Store(error)
    }
}

/// Refuses a password shorter than [`MIN_PASSWORD_LENGTH`] characters.
pub fn check_password(password: &str) -> Result<(), AdminError> {
    if password.chars().count() < MIN_PASSWORD_LENGTH {
        return Err(AdminError::PasswordTooShort {
            min: MIN_PASSWORD_LENGTH,
        });
    }
    Ok(())
}

/// Claims of an admin token.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Always `admin`.
    pub sub: String,
    /// Issued at.
    pub iat: u64,
    /// Expiry.
    pub exp: u64,
    /// A random token id.
    pub jti: String,
}

fn random(len: usize) -> Result<Vec<u8>, AdminError> {
    let mut bytes = vec![0u8; len];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| AdminError::Random)?;
    Ok(bytes)
}

fn derive(password: &str, salt: &[u8], iterations: u32) -> Vec<u8> {
    let mut out = vec![0u8; 32];
    let iterations = NonZeroU32::new(iterations.max(1)).unwrap_or(NonZeroU32::MIN);
    aws_lc_rs::pbkdf2::derive(
        aws_lc_rs::pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        salt,
        password.as_bytes(),
        &mut out,
    );
    out
}

/// A new random password: 24 characters from an unambiguous alphabet.
pub(crate) fn generate_password() -> Result<String, AdminError> {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    Ok(random(24)?
        .into_iter()
        .map(|b| ALPHABET[usize::from(b) % ALPHABET.len()] as char)
        .collect())
}

pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Admin {
    /// Loads the admin account, creating it on first start. A `password` (from the environment)
    /// replaces the stored one; a new password, or `revoke_sessions`, ends every admin session
    /// (a new token key). Returns the account and, when a password was generated, that password
    /// (to be shown once).
    pub async fn init(
        store: &Arc<dyn Store>,
        password: Option<&str>,
        revoke_sessions: bool,
    ) -> Result<(Admin, Option<String>), AdminError> {
        if let Some(password) = password {
            check_password(password)?;
        }
        loop {
            match store.get(ADMIN_KEY).await? {
                Some(kv) => {
                    let mut record = decode_record(&kv.value)?;
                    let admin = Admin::from_record(&record)?;
                    let new_password = password.filter(|p| !admin.verify_password(p));
                    if new_password.is_none() && !revoke_sessions {
                        return Ok((admin, None));
                    }
                    if let Some(password) = new_password {
                        record.salt = STANDARD.encode(random(16)?);
                        record.iterations = PBKDF2_ITERATIONS;
                        record = with_password(record, password)?;
                    }
                    end_sessions(&mut record)?;
                    match store
                        .update(ADMIN_KEY, encode_record(&record)?, kv.mod_revision)
                        .await
                    {
                        Ok(_) => return Ok((Admin::from_record(&record)?, None)),
                        Err(e) if e.is_conflict() => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
                None => {
                    let generated = match password {
                        Some(_) => None,
                        None => Some(generate_password()?),
                    };
                    let chosen = password.or(generated.as_deref()).unwrap_or_default();
                    let record = with_password(
                        Record {
                            salt: STANDARD.encode(random(16)?),
                            hash: String::new(),
                            iterations: PBKDF2_ITERATIONS,
                            jwt_key: STANDARD.encode(random(32)?),
                            revoked: Vec::new(),
                        },
                        chosen,
                    )?;
                    match store.create(ADMIN_KEY, encode_record(&record)?).await {
                        Ok(_) => return Ok((Admin::from_record(&record)?, generated)),
                        Err(e) if e.is_already_exists() => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
    }

    /// Ends the session of one admin token on every replica: its `jti` joins the record's
    /// revoked list (past [`MAX_REVOKED`], every session ends instead). Returns the revision of
    /// the write, which this replica's informer must apply before the token is refused here.
    pub async fn log_out(
        &self,
        store: &Arc<dyn Store>,
        claims: &Claims,
    ) -> Result<kargo_store::Revision, AdminError> {
        loop {
            let kv = store.get(ADMIN_KEY).await?.ok_or(AdminError::Missing)?;
            let mut record = decode_record(&kv.value)?;
            let now = now();
            record.revoked.retain(|r| r.exp > now);
            if !record.revoked.iter().any(|r| r.jti == claims.jti) {
                record.revoked.push(Revoked {
                    jti: claims.jti.clone(),
                    exp: claims.exp,
                });
            }
            if record.revoked.len() > MAX_REVOKED {
                end_sessions(&mut record)?;
            }
            match store
                .update(ADMIN_KEY, encode_record(&record)?, kv.mod_revision)
                .await
            {
                Ok(written) => return Ok(written.mod_revision),
                Err(e) if e.is_conflict() => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn from_record(record: &Record) -> Result<Admin, AdminError> {
        Ok(Admin {
            secrets: std::sync::RwLock::new(Arc::new(Secrets::from_record(record)?)),
        })
    }

    fn current(&self) -> Arc<Secrets> {
        self.secrets
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replaces the secrets with a stored record's (ignoring one that does not decode).
    pub(crate) fn reload(&self, bytes: &[u8]) {
        let decoded = decode_record(bytes).and_then(|record| Secrets::from_record(&record));
        match decoded {
            Ok(secrets) => {
                *self.secrets.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(secrets);
            }
            Err(e) => tracing::error!(error = %e, "ignoring an unreadable admin record"),
        }
    }
}

impl Secrets {
    fn from_record(record: &Record) -> Result<Secrets, AdminError> {
        let decode = |s: &str| {
            STANDARD
                .decode(s)
                .map_err(|e| AdminError::Corrupt(e.to_string()))
        };
        let key = decode(&record.jwt_key)?;
        let bad_key = |e: jsonwebtoken::errors::Error| AdminError::Corrupt(e.to_string());
        Ok(Secrets {
            salt: decode(&record.salt)?,
            hash: decode(&record.hash)?,
            iterations: record.iterations,
            encoding: EncodingKey::from_secret(&key).map_err(bad_key)?,
            decoding: DecodingKey::from_secret(&key).map_err(bad_key)?,
            revoked: record.revoked.iter().map(|r| r.jti.clone()).collect(),
        })
    }
}

impl Admin {
    /// Whether `password` is the admin password (in constant time).
    pub(crate) fn verify_password(&self, password: &str) -> bool {
        let secrets = self.current();
        aws_lc_rs::pbkdf2::verify(
            aws_lc_rs::pbkdf2::PBKDF2_HMAC_SHA256,
            NonZeroU32::new(secrets.iterations.max(1)).unwrap_or(NonZeroU32::MIN),
            &secrets.salt,
            password.as_bytes(),
            &secrets.hash,
        )
        .is_ok()
    }

    /// Issues an admin token valid for 24 hours (minted by [`crate::mint::admin_token`]).
    pub fn issue_token(&self) -> Result<String, jsonwebtoken::errors::Error> {
        crate::mint::admin_token(&self.current().encoding)
    }

    /// Whether `token` is a valid, unexpired admin token whose session has not ended.
    pub fn verify_token(&self, token: &str) -> bool {
        self.session(token).is_some()
    }

    /// The claims of `token` if it is a valid, unexpired admin token whose session has not
    /// ended.
    pub fn session(&self, token: &str) -> Option<Claims> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.leeway = 0;
        let secrets = self.current();
        let claims = jsonwebtoken::decode::<Claims>(token, &secrets.decoding, &validation)
            .ok()?
            .claims;
        (claims.sub == "admin" && !secrets.revoked.contains(&claims.jti)).then_some(claims)
    }
}

/// The informer handler that keeps an [`Admin`] equal to the stored record.
pub struct AdminWatcher(pub Arc<Admin>);

impl kargo_registry::informer::Handler for AdminWatcher {
    fn resync_page(&mut self, items: &[kargo_registry::informer::Item<'_>]) {
        for item in items.iter().filter(|i| i.kv.key == ADMIN_KEY) {
            self.0.reload(&item.kv.value);
        }
    }

    fn event(
        &mut self,
        event: &kargo_store::Event,
        _head: Option<&kargo_registry::informer::Head>,
    ) {
        if event.kv.key == ADMIN_KEY && event.kind != kargo_store::EventKind::Deleted {
            self.0.reload(&event.kv.value);
        }
    }
}

fn decode_record(bytes: &[u8]) -> Result<Record, AdminError> {
    serde_json::from_slice(bytes).map_err(|e| AdminError::Corrupt(e.to_string()))
}

fn encode_record(record: &Record) -> Result<Vec<u8>, AdminError> {
    serde_json::to_vec(record).map_err(|e| AdminError::Corrupt(e.to_string()))
}

/// Ends every admin session: tokens signed with the old key no longer verify, so the revoked
/// list has nothing left to refuse.
fn end_sessions(record: &mut Record) -> Result<(), AdminError> {
    record.jwt_key = STANDARD.encode(random(32)?);
    record.revoked.clear();
    Ok(())
}

fn with_password(mut record: Record, password: &str) -> Result<Record, AdminError> {
    let salt = STANDARD
        .decode(&record.salt)
        .map_err(|e| AdminError::Corrupt(e.to_string()))?;
    record.hash = STANDARD.encode(derive(password, &salt, record.iterations));
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWORD: &str = "correct horse battery";

    fn store(dir: &tempfile::TempDir) -> Arc<dyn Store> {
        Arc::new(kargo_store::sqlite::SqliteStore::open(&dir.path().join("s.db")).unwrap())
    }

    /// What the informer does on every replica when the record changes.
    async fn follow(admin: &Admin, store: &Arc<dyn Store>) {
        admin.reload(&store.get(ADMIN_KEY).await.unwrap().unwrap().value);
    }

    #[test]
    fn a_password_needs_15_characters_counted_as_unicode_code_points() {
        assert!(check_password("fourteen-chars").is_err());
        assert!(check_password("fifteen-chars!!").is_ok());
        // 15 code points, 30 bytes.
        assert!(check_password("ééééééééééééééé").is_ok());
        let message = check_password("a").unwrap_err().to_string();
        assert_eq!(
            message,
            "KARGO_ADMIN_PASSWORD is too short: the admin password needs at least 15 characters"
        );
    }

    #[tokio::test]
    async fn a_short_password_is_refused_and_nothing_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        assert!(matches!(
            Admin::init(&store, Some("short"), false).await,
            Err(AdminError::PasswordTooShort { min: 15 })
        ));
        assert!(store.get(ADMIN_KEY).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_record_written_before_logout_existed_still_verifies_and_keeps_its_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        let salt = random(16).unwrap();
        let old = serde_json::json!({
            "salt": STANDARD.encode(&salt),
            "hash": STANDARD.encode(derive(PASSWORD, &salt, 1_000)),
            "iterations": 1_000,
            "jwtKey": STANDARD.encode(random(32).unwrap()),
        });
        store
            .create(ADMIN_KEY, serde_json::to_vec(&old).unwrap())
            .await
            .unwrap();
        let (before, _) = Admin::init(&store, None, false).await.unwrap();
        let token = before.issue_token().unwrap();

        let (admin, generated) = Admin::init(&store, Some(PASSWORD), false).await.unwrap();
        assert_eq!(generated, None);
        assert!(admin.verify_password(PASSWORD));
        assert!(!admin.verify_password("another password"));
        assert!(
            admin.verify_token(&token),
            "the same password keeps sessions"
        );
        let stored = store.get(ADMIN_KEY).await.unwrap().unwrap().value;
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&stored).unwrap(),
            old
        );
    }

    #[tokio::test]
    async fn a_new_password_or_revoke_sessions_ends_every_earlier_admin_token() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        let (admin, _) = Admin::init(&store, Some(PASSWORD), false).await.unwrap();
        let admin = Arc::new(admin);
        let first = admin.issue_token().unwrap();

        // Another replica starts with a new password; this one follows the record.
        let (other, _) = Admin::init(&store, Some("a brand new password"), false)
            .await
            .unwrap();
        follow(&admin, &store).await;
        assert!(!admin.verify_token(&first));
        assert!(!other.verify_token(&first));
        assert!(admin.verify_password("a brand new password"));
        let second = admin.issue_token().unwrap();
        assert!(other.verify_token(&second));

        // The same password again changes nothing; revoking sessions ends them.
        Admin::init(&store, Some("a brand new password"), false)
            .await
            .unwrap();
        follow(&admin, &store).await;
        assert!(admin.verify_token(&second));
        let (revoked, _) = Admin::init(&store, None, true).await.unwrap();
        follow(&admin, &store).await;
        assert!(!admin.verify_token(&second));
        assert!(revoked.verify_password("a brand new password"));
        assert!(admin.verify_token(&admin.issue_token().unwrap()));
    }

    #[tokio::test]
    async fn logging_out_ends_that_session_only_and_forgets_expired_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        let (admin, _) = Admin::init(&store, Some(PASSWORD), false).await.unwrap();
        let (one, two) = (admin.issue_token().unwrap(), admin.issue_token().unwrap());
        let claims = admin.session(&one).unwrap();
        let written = admin.log_out(&store, &claims).await.unwrap();
        assert!(written > kargo_store::Revision::ZERO);
        assert!(
            admin.verify_token(&one),
            "until the watch brings the change"
        );
        follow(&admin, &store).await;
        assert!(!admin.verify_token(&one));
        assert!(admin.session(&one).is_none());
        assert!(admin.verify_token(&two));
        // Logging out twice is harmless.
        admin.log_out(&store, &claims).await.unwrap();

        // An entry whose token has expired is dropped at the next logout.
        let mut record =
            decode_record(&store.get(ADMIN_KEY).await.unwrap().unwrap().value).unwrap();
        record.revoked.push(Revoked {
            jti: "expired".into(),
            exp: 1,
        });
        let kv = store.get(ADMIN_KEY).await.unwrap().unwrap();
        store
            .update(ADMIN_KEY, encode_record(&record).unwrap(), kv.mod_revision)
            .await
            .unwrap();
        admin
            .log_out(&store, &admin.session(&two).unwrap())
            .await
            .unwrap();
        let record = decode_record(&store.get(ADMIN_KEY).await.unwrap().unwrap().value).unwrap();
        let listed: Vec<&str> = record.revoked.iter().map(|r| r.jti.as_str()).collect();
        assert_eq!(
            listed,
            [
                claims.jti.as_str(),
                admin.session(&two).unwrap().jti.as_str()
            ]
        );
    }

    #[tokio::test]
    async fn a_logout_past_the_revoked_list_limit_ends_every_session_instead() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        let (admin, _) = Admin::init(&store, Some(PASSWORD), false).await.unwrap();
        let kv = store.get(ADMIN_KEY).await.unwrap().unwrap();
        let mut record = decode_record(&kv.value).unwrap();
        record.revoked = (0..MAX_REVOKED)
            .map(|n| Revoked {
                jti: format!("jti-{n}"),
                exp: now() + 3600,
            })
            .collect();
        store
            .update(ADMIN_KEY, encode_record(&record).unwrap(), kv.mod_revision)
            .await
            .unwrap();
        follow(&admin, &store).await;
        let (leaving, staying) = (admin.issue_token().unwrap(), admin.issue_token().unwrap());
        admin
            .log_out(&store, &admin.session(&leaving).unwrap())
            .await
            .unwrap();
        follow(&admin, &store).await;
        assert!(!admin.verify_token(&leaving));
        assert!(!admin.verify_token(&staying));
        let record = decode_record(&store.get(ADMIN_KEY).await.unwrap().unwrap().value).unwrap();
        assert!(record.revoked.is_empty());
        assert!(admin.verify_password(PASSWORD));
    }
}

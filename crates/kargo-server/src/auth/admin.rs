//! The Kargo admin account: its password (given in `KARGO_ADMIN_PASSWORD` or generated on first
//! start), and the HS256 JWTs that `POST /v1beta1/login` issues for it.
//!
//! The password hash and the JWT signing key live in the store (under `/kargo/internal/`, outside
//! the API's key space), so that every replica accepts the same password and tokens. The informer
//! hands every change of the record to [`AdminWatcher`], so a password set on one replica is the
//! password of all of them.

use std::num::NonZeroU32;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use kargo_store::Store;
use serde::{Deserialize, Serialize};

/// The store key of the admin record.
pub const ADMIN_KEY: &str = "/kargo/internal/admin";
/// How long an admin token is valid.
pub const TOKEN_LIFETIME_SECS: u64 = 24 * 60 * 60;
const PBKDF2_ITERATIONS: u32 = 100_000;
/// The issuer of admin tokens.
pub const ISSUER: &str = "kargo-admin";

#[derive(Serialize, Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct Record {
    salt: String,
    hash: String,
    iterations: u32,
    jwt_key: String,
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
}

/// What can go wrong setting the admin account up.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] kargo_store::Error),
    /// The stored record does not decode.
    #[error("the admin record in the store is corrupt: {0}")]
    Corrupt(String),
    /// The system's random number generator failed.
    #[error("no randomness available")]
    Random,
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
pub fn generate_password() -> Result<String, AdminError> {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    Ok(random(24)?
        .into_iter()
        .map(|b| ALPHABET[usize::from(b) % ALPHABET.len()] as char)
        .collect())
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Admin {
    /// Loads the admin account, creating it on first start. A `password` (from the environment)
    /// replaces the stored one. Returns the account and, when a password was generated, that
    /// password (to be shown once).
    pub async fn init(
        store: &Arc<dyn Store>,
        password: Option<&str>,
    ) -> Result<(Admin, Option<String>), AdminError> {
        loop {
            match store.get(ADMIN_KEY).await? {
                Some(kv) => {
                    let record: Record = serde_json::from_slice(&kv.value)
                        .map_err(|e| AdminError::Corrupt(e.to_string()))?;
                    let admin = Admin::from_record(&record)?;
                    match password {
                        Some(p) if !admin.verify_password(p) => {
                            let record = Record {
                                salt: STANDARD.encode(random(16)?),
                                hash: String::new(),
                                iterations: PBKDF2_ITERATIONS,
                                jwt_key: record.jwt_key,
                            };
                            let record = with_password(record, p)?;
                            let bytes = serde_json::to_vec(&record)
                                .map_err(|e| AdminError::Corrupt(e.to_string()))?;
                            match store.update(ADMIN_KEY, bytes, kv.mod_revision).await {
                                Ok(_) => return Ok((Admin::from_record(&record)?, None)),
                                Err(e) if e.is_conflict() => continue,
                                Err(e) => return Err(e.into()),
                            }
                        }
                        _ => return Ok((admin, None)),
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
                        },
                        chosen,
                    )?;
                    let bytes = serde_json::to_vec(&record)
                        .map_err(|e| AdminError::Corrupt(e.to_string()))?;
                    match store.create(ADMIN_KEY, bytes).await {
                        Ok(_) => return Ok((Admin::from_record(&record)?, generated)),
                        Err(e) if e.is_already_exists() => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
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
    pub fn reload(&self, bytes: &[u8]) {
        let decoded = serde_json::from_slice::<Record>(bytes)
            .map_err(|e| AdminError::Corrupt(e.to_string()))
            .and_then(|record| Secrets::from_record(&record));
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
        })
    }
}

impl Admin {
    /// Whether `password` is the admin password (in constant time).
    pub fn verify_password(&self, password: &str) -> bool {
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

    /// Issues an admin token valid for 24 hours.
    pub fn issue_token(&self) -> Result<String, jsonwebtoken::errors::Error> {
        let iat = now();
        let claims = Claims {
            iss: ISSUER.into(),
            sub: "admin".into(),
            iat,
            exp: iat + TOKEN_LIFETIME_SECS,
            jti: uuid::Uuid::new_v4().to_string(),
        };
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.current().encoding,
        )
    }

    /// Whether `token` is a valid, unexpired admin token.
    pub fn verify_token(&self, token: &str) -> bool {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.leeway = 0;
        jsonwebtoken::decode::<Claims>(token, &self.current().decoding, &validation)
            .is_ok_and(|data| data.claims.sub == "admin")
    }
}

/// The informer handler that keeps an [`Admin`] equal to the stored record.
pub struct AdminWatcher(pub Arc<Admin>);

impl crate::controllers::informer::Handler for AdminWatcher {
    fn resync_page(&mut self, items: &[crate::controllers::informer::Item<'_>]) {
        for item in items.iter().filter(|i| i.kv.key == ADMIN_KEY) {
            self.0.reload(&item.kv.value);
        }
    }

    fn event(
        &mut self,
        event: &kargo_store::Event,
        _head: Option<&crate::controllers::informer::Head>,
    ) {
        if event.kv.key == ADMIN_KEY && event.kind != kargo_store::EventKind::Deleted {
            self.0.reload(&event.kv.value);
        }
    }
}

fn with_password(mut record: Record, password: &str) -> Result<Record, AdminError> {
    let salt = STANDARD
        .decode(&record.salt)
        .map_err(|e| AdminError::Corrupt(e.to_string()))?;
    record.hash = STANDARD.encode(derive(password, &salt, record.iterations));
    Ok(record)
}

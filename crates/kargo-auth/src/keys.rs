//! Service-account signing keys: RSA-2048 keys kept in the store (so replicas share them), one of
//! which signs while every other one still verifies until it is retired.
//!
//! The key set lives under [`KEYS_KEY`], outside the API's key space: no API caller can read it.
//! A rotation adds a new signing key; tokens signed by older keys keep working until their key is
//! retired.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{KeyPair, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use kargo_store::Store;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The store key of the signing key set.
pub const KEYS_KEY: &str = "/kargo/internal/signing-keys";

/// What can go wrong with keys.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The store failed.
    #[error("store: {0}")]
    Store(kargo_store::Error),
    /// The stored key set does not decode.
    #[error("the signing key set in the store is corrupt: {0}")]
    Corrupt(String),
    /// Key generation or signing failed.
    #[error("cryptography failed: {0}")]
    Crypto(String),
    /// A retirement named an unknown or the signing key.
    #[error("{0}")]
    Refused(String),
}

// Not `#[from]`: the message already names the cause, and a `source` besides would make the
// CLI, which prints an error's whole chain, say it twice.
impl From<kargo_store::Error> for KeyError {
    fn from(error: kargo_store::Error) -> KeyError {
        KeyError::Store(error)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredKey {
    kid: String,
    pkcs8: String,
    created: String,
}

/// The stored form of the key set.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct StoredSet {
    /// The kid of the signing key.
    active: String,
    keys: Vec<StoredKey>,
}

/// One RSA key.
pub struct SigningKey {
    /// The key id: base64url(SHA-256(DER SubjectPublicKeyInfo)), as Kubernetes computes it.
    pub kid: String,
    pair: RsaKeyPair,
    /// The public key as `jsonwebtoken` verifies with it (built once, not per token).
    decoding: jsonwebtoken::DecodingKey,
    modulus: Vec<u8>,
    exponent: Vec<u8>,
}

impl SigningKey {
    /// A new random RSA-2048 key (not stored anywhere).
    pub fn generate() -> Result<SigningKey, KeyError> {
        let pair =
            RsaKeyPair::generate(KeySize::Rsa2048).map_err(|e| KeyError::Crypto(e.to_string()))?;
        let pkcs8 = pair.as_der().map_err(|e| KeyError::Crypto(e.to_string()))?;
        SigningKey::from_pkcs8(pkcs8.as_ref())
    }

    fn from_pkcs8(pkcs8: &[u8]) -> Result<SigningKey, KeyError> {
        let pair = RsaKeyPair::from_pkcs8(pkcs8).map_err(|e| KeyError::Crypto(e.to_string()))?;
        let public = pair.public_key();
        let spki = public
            .as_der()
            .map_err(|e| KeyError::Crypto(e.to_string()))?;
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, spki.as_ref());
        Ok(SigningKey {
            kid: URL_SAFE_NO_PAD.encode(digest.as_ref()),
            // `as_ref` is the PKCS#1 RSAPublicKey DER, what `from_rsa_der` takes.
            decoding: jsonwebtoken::DecodingKey::from_rsa_der(public.as_ref()),
            modulus: public.modulus().big_endian_without_leading_zero().to_vec(),
            exponent: public.exponent().big_endian_without_leading_zero().to_vec(),
            pair,
        })
    }

    /// Signs `message` with RSASSA-PKCS1-v1_5 SHA-256.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let mut signature = vec![0u8; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                message,
                &mut signature,
            )
            .map_err(|e| KeyError::Crypto(e.to_string()))?;
        Ok(signature)
    }

    /// The public key, for `jsonwebtoken`'s verification ([`crate::jwt::verify`]).
    pub(crate) fn decoding(&self) -> &jsonwebtoken::DecodingKey {
        &self.decoding
    }

    /// The key as a JWK.
    pub fn jwk(&self) -> Value {
        json!({
            "use": "sig",
            "kty": "RSA",
            "kid": self.kid,
            "alg": "RS256",
            "n": URL_SAFE_NO_PAD.encode(&self.modulus),
            "e": URL_SAFE_NO_PAD.encode(&self.exponent),
        })
    }
}

/// The keys in use: one signs, all verify.
pub struct KeySet {
    signing: Arc<SigningKey>,
    by_kid: BTreeMap<String, Arc<SigningKey>>,
}

impl KeySet {
    /// The key that signs new tokens.
    pub fn signing(&self) -> &Arc<SigningKey> {
        &self.signing
    }

    /// A verification key by kid.
    pub fn get(&self, kid: &str) -> Option<&Arc<SigningKey>> {
        self.by_kid.get(kid)
    }

    /// Every verification key.
    pub fn all(&self) -> impl Iterator<Item = &Arc<SigningKey>> {
        self.by_kid.values()
    }

    /// The JWKS document.
    pub fn jwks(&self) -> Value {
        json!({"keys": self.all().map(|k| k.jwk()).collect::<Vec<_>>()})
    }

    /// Parses the stored key set.
    pub fn decode(bytes: &[u8]) -> Result<KeySet, KeyError> {
        let stored: StoredSet =
            serde_json::from_slice(bytes).map_err(|e| KeyError::Corrupt(e.to_string()))?;
        let mut by_kid = BTreeMap::new();
        for key in &stored.keys {
            let der = STANDARD
                .decode(&key.pkcs8)
                .map_err(|e| KeyError::Corrupt(e.to_string()))?;
            let key = Arc::new(SigningKey::from_pkcs8(&der)?);
            by_kid.insert(key.kid.clone(), key);
        }
        let signing = by_kid
            .get(&stored.active)
            .cloned()
            .ok_or_else(|| KeyError::Corrupt("the active key is missing".into()))?;
        Ok(KeySet { signing, by_kid })
    }
}

#[cfg(test)]
impl KeySet {
    /// A key set of `keys` (not stored anywhere), the first one signing.
    pub(crate) fn of(keys: Vec<Arc<SigningKey>>) -> KeySet {
        let signing = keys[0].clone();
        let by_kid = keys.into_iter().map(|k| (k.kid.clone(), k)).collect();
        KeySet { signing, by_kid }
    }
}

#[cfg(test)]
impl SigningKey {
    /// The public key (PKCS#1 DER), for tests that forge tokens with it.
    pub(crate) fn public_der(&self) -> &[u8] {
        self.pair.public_key().as_ref()
    }
}

fn generate() -> Result<(StoredKey, String), KeyError> {
    let pair =
        RsaKeyPair::generate(KeySize::Rsa2048).map_err(|e| KeyError::Crypto(e.to_string()))?;
    let pkcs8 = pair.as_der().map_err(|e| KeyError::Crypto(e.to_string()))?;
    let key = SigningKey::from_pkcs8(pkcs8.as_ref())?;
    Ok((
        StoredKey {
            kid: key.kid.clone(),
            pkcs8: STANDARD.encode(pkcs8.as_ref()),
            created: kargo_registry::object::now_rfc3339(),
        },
        key.kid,
    ))
}

/// Changes the stored key set with compare-and-swap, creating it if absent.
async fn modify(
    store: &Arc<dyn Store>,
    mut change: impl FnMut(Option<StoredSet>) -> Result<Option<StoredSet>, KeyError>,
) -> Result<KeySet, KeyError> {
    loop {
        let current = store.get(KEYS_KEY).await?;
        let parsed = match &current {
            Some(kv) => Some(
                serde_json::from_slice::<StoredSet>(&kv.value)
                    .map_err(|e| KeyError::Corrupt(e.to_string()))?,
            ),
            None => None,
        };
        let Some(next) = change(parsed)? else {
            let kv = current.ok_or_else(|| KeyError::Corrupt("no key set".into()))?;
            return KeySet::decode(&kv.value);
        };
        let bytes = serde_json::to_vec(&next).map_err(|e| KeyError::Corrupt(e.to_string()))?;
        let result = match &current {
            Some(kv) => store.update(KEYS_KEY, bytes.clone(), kv.mod_revision).await,
            None => store.create(KEYS_KEY, bytes.clone()).await,
        };
        match result {
            Ok(_) => return KeySet::decode(&bytes),
            Err(e) if e.is_conflict() || e.is_already_exists() => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Loads the key set, generating the first key on first start.
pub async fn load_or_create(store: &Arc<dyn Store>) -> Result<KeySet, KeyError> {
    modify(store, |current| match current {
        Some(_) => Ok(None),
        None => {
            let (key, kid) = generate()?;
            Ok(Some(StoredSet {
                active: kid,
                keys: vec![key],
            }))
        }
    })
    .await
}

/// Adds a new signing key; the previous ones keep verifying.
pub async fn rotate(store: &Arc<dyn Store>) -> Result<KeySet, KeyError> {
    let (key, kid) = generate()?;
    modify(store, |current| {
        let mut set = current.unwrap_or_default();
        set.keys.push(key.clone());
        set.active = kid.clone();
        Ok(Some(set))
    })
    .await
}

/// Retires a verification key: tokens it signed stop working.
pub async fn retire(store: &Arc<dyn Store>, kid: &str) -> Result<KeySet, KeyError> {
    modify(store, |current| {
        let mut set = current.ok_or_else(|| KeyError::Refused("there are no keys".into()))?;
        if set.active == kid {
            return Err(KeyError::Refused(format!(
                "key {kid} signs new tokens; rotate before retiring it"
            )));
        }
        let before = set.keys.len();
        set.keys.retain(|k| k.kid != kid);
        if set.keys.len() == before {
            return Err(KeyError::Refused(format!("no key {kid}")));
        }
        Ok(Some(set))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kid_is_the_hash_of_the_public_key_info() {
        let (stored, kid) = generate().unwrap();
        let der = STANDARD.decode(&stored.pkcs8).unwrap();
        let key = SigningKey::from_pkcs8(&der).unwrap();
        assert_eq!(key.kid, kid);
        assert_eq!(kid.len(), 43);
        let sig = URL_SAFE_NO_PAD.encode(key.sign(b"message").unwrap());
        let verify = |message: &[u8]| {
            jsonwebtoken::crypto::verify(
                &sig,
                message,
                key.decoding(),
                jsonwebtoken::Algorithm::RS256,
            )
            .unwrap()
        };
        assert!(verify(b"message"));
        assert!(!verify(b"massage"));
        let jwk = key.jwk();
        assert_eq!(jwk["e"], "AQAB");
        assert_eq!(jwk["kty"], "RSA");
    }
}

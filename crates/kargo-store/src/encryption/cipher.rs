//! One provider key ([`Cipher`]) and the ordered keys that encrypt one group of store keys
//! ([`Transformer`]), in kube-apiserver's value formats, so that an operator who knows
//! Kubernetes' encryption at rest recognises every stored value:
//!
//! | provider | stored value |
//! |---|---|
//! | `aesgcm` | `k8s:enc:aesgcm:v1:<name>:` nonce (12) ‖ ciphertext ‖ tag (16); the store key is the additional authenticated data |
//! | `aescbc` | `k8s:enc:aescbc:v1:<name>:` IV (16) ‖ ciphertext, PKCS#7 padded |
//! | `secretbox` | `k8s:enc:secretbox:v1:<name>:` nonce (24) ‖ tag (16) ‖ ciphertext (NaCl's `secretbox.Seal`) |
//! | `identity` | the value itself |
//!
//! Nonces and IVs are random for every write (aws-lc-rs's generator). AES-GCM binds a value to
//! its key: a value copied under another key does not decrypt. AES-CBC authenticates nothing,
//! as in Kubernetes (a wrong key is caught by the padding check only most of the time).

use std::borrow::Cow;
use std::fmt;

use aws_lc_rs::aead::{AES_128_GCM, AES_192_GCM, AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::cipher::{
    AES_128, AES_192, AES_256, DecryptionContext, PaddedBlockDecryptingKey,
    PaddedBlockEncryptingKey, UnboundCipherKey,
};
use aws_lc_rs::iv::FixedLength;
use crypto_secretbox::XSalsa20Poly1305;
use crypto_secretbox::aead::{Aead, KeyInit};

/// Every encrypted value starts with this; a value without it was written unencrypted.
pub const ENCRYPTED_MARKER: &[u8] = b"k8s:enc:";

const GCM_NONCE_LEN: usize = 12;
const GCM_TAG_LEN: usize = 16;
const CBC_BLOCK_LEN: usize = 16;
const SECRETBOX_NONCE_LEN: usize = 24;
const SECRETBOX_TAG_LEN: usize = 16;

/// The keyed providers of an `EncryptionConfiguration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// AES-GCM (`aesgcm`).
    AesGcm,
    /// AES-CBC with PKCS#7 padding (`aescbc`).
    AesCbc,
    /// XSalsa20-Poly1305, NaCl's secretbox (`secretbox`).
    Secretbox,
}

impl Algorithm {
    /// The provider's name in the configuration and in the value prefix.
    pub fn provider(self) -> &'static str {
        match self {
            Algorithm::AesGcm => "aesgcm",
            Algorithm::AesCbc => "aescbc",
            Algorithm::Secretbox => "secretbox",
        }
    }

    /// The key sizes kube-apiserver accepts for the provider, in bytes.
    pub fn key_sizes(self) -> &'static [usize] {
        match self {
            Algorithm::AesGcm | Algorithm::AesCbc => &[16, 24, 32],
            Algorithm::Secretbox => &[32],
        }
    }
}

/// Why a key cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The decoded secret has a size the provider does not take (Kubernetes' message).
    #[error("secret is not of the expected length, got {got}, expected one of {expected:?}")]
    Size {
        /// The decoded size.
        got: usize,
        /// The sizes the provider takes.
        expected: &'static [usize],
    },
    /// The key has no name (the name goes into every value's prefix).
    #[error("name is required")]
    EmptyName,
}

/// Why a value could not be encrypted or decrypted. The messages name the store key and the
/// provider key, never any value or key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// The value names a provider key that is not configured for its store key.
    #[error(
        "the value of {key} is encrypted with {provider} key {name:?}, which is not in the encryption configuration"
    )]
    UnknownKey {
        /// The store key.
        key: String,
        /// The provider named in the value's prefix.
        provider: String,
        /// The key name in the value's prefix.
        name: String,
    },
    /// A configured key has the name in the value's prefix, but the value does not decrypt.
    #[error(
        "the value of {key} does not decrypt with {provider} key {name:?}: the key of that name is not the one the value was written with, or the value was altered"
    )]
    Undecryptable {
        /// The store key.
        key: String,
        /// The provider.
        provider: String,
        /// The key name.
        name: String,
    },
    /// The encryption itself failed (the random source).
    #[error("encrypting the value of {key} failed")]
    Encrypt {
        /// The store key.
        key: String,
    },
}

struct CbcKeys {
    encrypt: PaddedBlockEncryptingKey,
    decrypt: PaddedBlockDecryptingKey,
}

enum Engine {
    AesGcm(LessSafeKey),
    AesCbc(Box<CbcKeys>),
    Secretbox(Box<XSalsa20Poly1305>),
    Identity,
}

/// One provider key: what writes values (when it is first) and reads the values that carry its
/// prefix. Its `Debug` shows the provider and key name, never the key.
pub struct Cipher {
    provider: &'static str,
    name: String,
    prefix: Vec<u8>,
    engine: Engine,
}

impl fmt::Debug for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cipher")
            .field("provider", &self.provider)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Cipher {
    /// A key of a keyed provider: `secret` is the decoded key (16, 24 or 32 bytes for AES, 32 for
    /// secretbox), `name` goes into the prefix of every value it writes.
    pub fn new(algorithm: Algorithm, name: &str, secret: &[u8]) -> Result<Cipher, KeyError> {
        if name.is_empty() {
            return Err(KeyError::EmptyName);
        }
        let size = KeyError::Size {
            got: secret.len(),
            expected: algorithm.key_sizes(),
        };
        if !algorithm.key_sizes().contains(&secret.len()) {
            return Err(size);
        }
        let engine = match algorithm {
            Algorithm::AesGcm => {
                let aead = match secret.len() {
                    16 => &AES_128_GCM,
                    24 => &AES_192_GCM,
                    _ => &AES_256_GCM,
                };
                Engine::AesGcm(LessSafeKey::new(
                    UnboundKey::new(aead, secret).map_err(|_| size.clone())?,
                ))
            }
            Algorithm::AesCbc => {
                let block = match secret.len() {
                    16 => &AES_128,
                    24 => &AES_192,
                    _ => &AES_256,
                };
                let unbound = || UnboundCipherKey::new(block, secret).map_err(|_| size.clone());
                Engine::AesCbc(Box::new(CbcKeys {
                    encrypt: PaddedBlockEncryptingKey::cbc_pkcs7(unbound()?)
                        .map_err(|_| size.clone())?,
                    decrypt: PaddedBlockDecryptingKey::cbc_pkcs7(unbound()?)
                        .map_err(|_| size.clone())?,
                }))
            }
            Algorithm::Secretbox => Engine::Secretbox(Box::new(
                XSalsa20Poly1305::new_from_slice(secret).map_err(|_| size.clone())?,
            )),
        };
        let provider = algorithm.provider();
        Ok(Cipher {
            provider,
            name: name.to_owned(),
            prefix: format!("k8s:enc:{provider}:v1:{name}:").into_bytes(),
            engine,
        })
    }

    /// The `identity` provider: values are stored as they are.
    pub fn identity() -> Cipher {
        Cipher {
            provider: "identity",
            name: String::new(),
            prefix: Vec::new(),
            engine: Engine::Identity,
        }
    }

    /// The provider's name (`aesgcm`, `aescbc`, `secretbox`, `identity`).
    pub fn provider(&self) -> &'static str {
        self.provider
    }

    /// The key's name (empty for `identity`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The prefix of every value this key writes (empty for `identity`).
    pub fn prefix(&self) -> &[u8] {
        &self.prefix
    }

    /// Whether this is the `identity` provider.
    pub fn is_identity(&self) -> bool {
        matches!(self.engine, Engine::Identity)
    }

    /// The stored form of `plain` under `key`: prefix and ciphertext.
    fn seal(&self, key: &str, plain: &[u8]) -> Option<Vec<u8>> {
        match &self.engine {
            Engine::Identity => Some(plain.to_vec()),
            Engine::AesGcm(aead) => {
                let mut nonce = [0u8; GCM_NONCE_LEN];
                aws_lc_rs::rand::fill(&mut nonce).ok()?;
                let start = self.prefix.len() + GCM_NONCE_LEN;
                let mut out = Vec::with_capacity(start + plain.len() + GCM_TAG_LEN);
                out.extend_from_slice(&self.prefix);
                out.extend_from_slice(&nonce);
                out.extend_from_slice(plain);
                let tag = aead
                    .seal_in_place_separate_tag(
                        Nonce::assume_unique_for_key(nonce),
                        Aad::from(key.as_bytes()),
                        &mut out[start..],
                    )
                    .ok()?;
                out.extend_from_slice(tag.as_ref());
                Some(out)
            }
            Engine::AesCbc(keys) => {
                let encrypt = &keys.encrypt;
                let mut body = plain.to_vec();
                let context = encrypt.encrypt(&mut body).ok()?;
                let iv: &[u8] = (&context).try_into().ok()?;
                let mut out = Vec::with_capacity(self.prefix.len() + iv.len() + body.len());
                out.extend_from_slice(&self.prefix);
                out.extend_from_slice(iv);
                out.extend_from_slice(&body);
                Some(out)
            }
            Engine::Secretbox(secretbox) => {
                let mut nonce = [0u8; SECRETBOX_NONCE_LEN];
                aws_lc_rs::rand::fill(&mut nonce).ok()?;
                let sealed = secretbox.encrypt(&nonce.into(), plain).ok()?;
                let mut out =
                    Vec::with_capacity(self.prefix.len() + SECRETBOX_NONCE_LEN + sealed.len());
                out.extend_from_slice(&self.prefix);
                out.extend_from_slice(&nonce);
                out.extend_from_slice(&sealed);
                Some(out)
            }
        }
    }

    /// The plaintext of `body` (a stored value after this key's prefix), if it decrypts.
    fn open(&self, key: &str, body: &[u8]) -> Option<Vec<u8>> {
        match &self.engine {
            Engine::Identity => Some(body.to_vec()),
            Engine::AesGcm(aead) => {
                if body.len() < GCM_NONCE_LEN + GCM_TAG_LEN {
                    return None;
                }
                let (nonce, sealed) = body.split_at(GCM_NONCE_LEN);
                let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
                let mut buffer = sealed.to_vec();
                let plain_len = aead
                    .open_in_place(nonce, Aad::from(key.as_bytes()), &mut buffer)
                    .ok()?
                    .len();
                buffer.truncate(plain_len);
                Some(buffer)
            }
            Engine::AesCbc(keys) => {
                let decrypt = &keys.decrypt;
                let data_len = body.len().checked_sub(CBC_BLOCK_LEN)?;
                if data_len == 0 || data_len % CBC_BLOCK_LEN != 0 {
                    return None;
                }
                let (iv, data) = body.split_at(CBC_BLOCK_LEN);
                let iv: [u8; CBC_BLOCK_LEN] = iv.try_into().ok()?;
                let mut buffer = data.to_vec();
                let plain_len = decrypt
                    .decrypt(&mut buffer, DecryptionContext::Iv128(FixedLength::from(iv)))
                    .ok()?
                    .len();
                buffer.truncate(plain_len);
                Some(buffer)
            }
            Engine::Secretbox(secretbox) => {
                if body.len() < SECRETBOX_NONCE_LEN + SECRETBOX_TAG_LEN {
                    return None;
                }
                let (nonce, sealed) = body.split_at(SECRETBOX_NONCE_LEN);
                let nonce: [u8; SECRETBOX_NONCE_LEN] = nonce.try_into().ok()?;
                secretbox.decrypt(&nonce.into(), sealed).ok()
            }
        }
    }
}

/// The keys of one group of store keys, in configuration order: the first writes, all read.
/// A value without the `k8s:enc:` marker was written before encryption was configured and reads
/// as it is, whether or not `identity` is listed.
#[derive(Debug)]
pub struct Transformer {
    ciphers: Vec<Cipher>,
}

impl Transformer {
    /// `first` writes every value; `first` and `rest` read.
    pub fn new(first: Cipher, rest: impl IntoIterator<Item = Cipher>) -> Transformer {
        let mut ciphers = vec![first];
        ciphers.extend(rest);
        Transformer { ciphers }
    }

    /// The key that writes.
    pub fn writer(&self) -> &Cipher {
        &self.ciphers[0]
    }

    /// Every key, in order.
    pub fn ciphers(&self) -> &[Cipher] {
        &self.ciphers
    }

    /// The stored form of the value `plain` of store key `key`.
    pub fn encrypt(&self, key: &str, plain: &[u8]) -> Result<Vec<u8>, ValueError> {
        self.writer()
            .seal(key, plain)
            .ok_or_else(|| ValueError::Encrypt {
                key: key.to_owned(),
            })
    }

    /// The plaintext of the stored value `stored` of store key `key` (borrowed when the value is
    /// not encrypted).
    pub fn decrypt<'a>(&self, key: &str, stored: &'a [u8]) -> Result<Cow<'a, [u8]>, ValueError> {
        if !stored.starts_with(ENCRYPTED_MARKER) {
            return Ok(Cow::Borrowed(stored));
        }
        // Several keys may share a prefix (one name under two providers' lists, as Kubernetes
        // allows); a failure with one must not stop the next from being tried.
        let mut matched = None;
        for cipher in self.ciphers.iter().filter(|c| !c.is_identity()) {
            if let Some(body) = stored.strip_prefix(cipher.prefix.as_slice()) {
                if let Some(plain) = cipher.open(key, body) {
                    return Ok(Cow::Owned(plain));
                }
                matched = Some(cipher);
            }
        }
        Err(match matched {
            Some(cipher) => ValueError::Undecryptable {
                key: key.to_owned(),
                provider: cipher.provider.to_owned(),
                name: cipher.name.clone(),
            },
            None => {
                let (provider, name) = describe(stored);
                ValueError::UnknownKey {
                    key: key.to_owned(),
                    provider,
                    name,
                }
            }
        })
    }

    /// Whether `stored` is in the form the first key writes (so re-encrypting it changes
    /// nothing).
    pub fn is_current(&self, stored: &[u8]) -> bool {
        let writer = self.writer();
        if writer.is_identity() {
            !stored.starts_with(ENCRYPTED_MARKER)
        } else {
            stored.starts_with(&writer.prefix)
        }
    }
}

/// The provider and key name in an encrypted value's prefix
/// (`k8s:enc:<provider>:v1:<name>:`), for messages; bounded, since the value may be anything.
fn describe(stored: &[u8]) -> (String, String) {
    const LONGEST: usize = 64;
    let text =
        |bytes: &[u8]| String::from_utf8_lossy(&bytes[..bytes.len().min(LONGEST)]).into_owned();
    let rest = stored.get(ENCRYPTED_MARKER.len()..).unwrap_or_default();
    let mut fields = rest.splitn(4, |&b| b == b':');
    let provider = fields.next().unwrap_or_default();
    let name = match fields.next() {
        Some(b"v1") => fields.next().unwrap_or_default(),
        _ => &[],
    };
    (text(provider), text(name))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const KEY: &str = "/registry/secrets/ns/token";
    const PLAIN: &[u8] = br#"{"kind":"Secret","data":{"token":"c2VjcmV0"}}"#;

    fn all_algorithms() -> [Algorithm; 3] {
        [Algorithm::AesGcm, Algorithm::AesCbc, Algorithm::Secretbox]
    }

    fn cipher(algorithm: Algorithm, name: &str, byte: u8) -> Cipher {
        let size = *algorithm.key_sizes().last().unwrap();
        Cipher::new(algorithm, name, &vec![byte; size]).unwrap()
    }

    fn one(c: Cipher) -> Transformer {
        Transformer::new(c, [])
    }

    #[test]
    fn every_provider_and_key_size_round_trips_values_of_every_length() {
        for algorithm in all_algorithms() {
            for &size in algorithm.key_sizes() {
                let t = one(Cipher::new(algorithm, "k1", &vec![7; size]).unwrap());
                for len in [0, 1, 15, 16, 17, 31, 32, 33, 1024, 70_000] {
                    let plain: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
                    let stored = t.encrypt(KEY, &plain).unwrap();
                    assert_ne!(stored, plain);
                    let back = t.decrypt(KEY, &stored).unwrap();
                    assert_eq!(
                        back.as_ref(),
                        plain.as_slice(),
                        "{algorithm:?}/{size}/{len}"
                    );
                }
            }
        }
    }

    #[test]
    fn stored_values_carry_kubernetes_prefix_and_layout_exactly() {
        // (algorithm, bytes between prefix and ciphertext, bytes the cipher adds)
        let layouts = [
            (
                Algorithm::AesGcm,
                "k8s:enc:aesgcm:v1:key1:",
                GCM_NONCE_LEN + GCM_TAG_LEN,
            ),
            (Algorithm::Secretbox, "k8s:enc:secretbox:v1:key1:", 24 + 16),
        ];
        for (algorithm, prefix, overhead) in layouts {
            let t = one(cipher(algorithm, "key1", 1));
            let stored = t.encrypt(KEY, PLAIN).unwrap();
            assert!(stored.starts_with(prefix.as_bytes()), "{algorithm:?}");
            assert_eq!(stored.len(), prefix.len() + overhead + PLAIN.len());
        }
        // AES-CBC: a 16-byte IV, then PKCS#7 always adds 1..=16 bytes.
        let t = one(cipher(Algorithm::AesCbc, "key1", 1));
        for len in [0usize, 15, 16, 17] {
            let stored = t.encrypt(KEY, &vec![b'x'; len]).unwrap();
            let prefix = b"k8s:enc:aescbc:v1:key1:";
            assert!(stored.starts_with(prefix));
            assert_eq!(stored.len(), prefix.len() + 16 + (len / 16 + 1) * 16);
        }
        // Identity stores the value itself.
        assert_eq!(one(Cipher::identity()).encrypt(KEY, PLAIN).unwrap(), PLAIN);
    }

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Values in Kubernetes' documented layouts made by other implementations (Python's
    /// `cryptography` for AES, libsodium through PyNaCl for secretbox) with the key bytes
    /// 0..=31, fixed nonces and the store key as AES-GCM's additional data; each must read
    /// back here.
    #[test]
    fn values_made_by_independent_implementations_decrypt_to_the_known_plaintext() {
        let store_key = "/registry/secrets/default/kat";
        let plain = br#"{"kind":"Secret","data":{"token":"a2F0"}}"#;
        let secret: Vec<u8> = (0..32).collect();
        let vectors = [
            (
                Algorithm::AesGcm,
                "6b38733a656e633a61657367636d3a76313a6b61743aa0a1a2a3a4a5a6a7a8a9aaab9d3a17442baf20854036e2b0751fb4fc5c8e3d71e6d66056e72c52e914ce1b23e85426cde91271402293fb4e658877a3987e8f2d0c4b0feea2",
            ),
            (
                Algorithm::AesCbc,
                "6b38733a656e633a6165736362633a76313a6b61743ab0b1b2b3b4b5b6b7b8b9babbbcbdbebfd4d63de6a8c41c22ff3d0ab62f7c553496790780fa041024bce56a7446603d37f715131337c07e85eba8039dd635bc68",
            ),
            (
                Algorithm::Secretbox,
                "6b38733a656e633a736563726574626f783a76313a6b61743ac0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d79e7c54fef8b0410eb6055c2e3a3591b0e6d5e8e034d752d5197bb937e217b357b237872ef28d72730dc79d52766b264b7ce96a271f1e970ce9",
            ),
        ];
        for (algorithm, stored) in vectors {
            let t = one(Cipher::new(algorithm, "kat", &secret).unwrap());
            let stored = hex(stored);
            assert_eq!(
                t.decrypt(store_key, &stored).unwrap().as_ref(),
                plain,
                "{algorithm:?}"
            );
        }
    }

    #[test]
    fn every_write_uses_a_fresh_nonce() {
        for algorithm in all_algorithms() {
            let t = one(cipher(algorithm, "k", 3));
            assert_ne!(
                t.encrypt(KEY, PLAIN).unwrap(),
                t.encrypt(KEY, PLAIN).unwrap(),
                "{algorithm:?}"
            );
        }
    }

    #[test]
    fn a_key_of_the_same_name_but_other_bytes_does_not_decrypt_and_says_so() {
        for algorithm in all_algorithms() {
            let writer = one(cipher(algorithm, "k1", 1));
            let reader = one(cipher(algorithm, "k1", 2));
            // AES-CBC has no integrity check: about one wrong-key decryption in 256 ends in a
            // valid padding byte and yields garbage. It must never yield the plaintext, and most
            // trials must be refused.
            let mut refused = 0;
            for _ in 0..20 {
                let stored = writer.encrypt(KEY, PLAIN).unwrap();
                match reader.decrypt(KEY, &stored) {
                    Err(e) => {
                        assert_eq!(
                            e,
                            ValueError::Undecryptable {
                                key: KEY.into(),
                                provider: algorithm.provider().into(),
                                name: "k1".into()
                            }
                        );
                        refused += 1;
                    }
                    Ok(garbage) => {
                        assert_eq!(algorithm, Algorithm::AesCbc);
                        assert_ne!(garbage.as_ref(), PLAIN);
                    }
                }
            }
            assert!(refused >= 15, "{algorithm:?}: only {refused} of 20 refused");
        }
    }

    #[test]
    fn a_value_written_with_a_key_that_is_not_configured_names_that_key() {
        let old = one(cipher(Algorithm::AesGcm, "old-key", 1));
        let stored = old.encrypt(KEY, PLAIN).unwrap();
        let new = Transformer::new(
            cipher(Algorithm::AesGcm, "new-key", 2),
            [cipher(Algorithm::Secretbox, "old-key", 1)],
        );
        let err = new.decrypt(KEY, &stored).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the value of /registry/secrets/ns/token is encrypted with aesgcm key \"old-key\", which is not in the encryption configuration"
        );
    }

    #[test]
    fn tampered_authenticated_values_are_refused() {
        for algorithm in [Algorithm::AesGcm, Algorithm::Secretbox] {
            let t = one(cipher(algorithm, "k", 1));
            let stored = t.encrypt(KEY, PLAIN).unwrap();
            let prefix_len = t.writer().prefix().len();
            for at in [
                prefix_len,
                prefix_len + 5,
                stored.len() / 2 + 10,
                stored.len() - 1,
            ] {
                let mut tampered = stored.clone();
                tampered[at] ^= 0x01;
                assert!(
                    matches!(
                        t.decrypt(KEY, &tampered),
                        Err(ValueError::Undecryptable { .. })
                    ),
                    "{algorithm:?} flipped at {at}"
                );
            }
            // Truncated, and cut down to less than a nonce and tag.
            assert!(t.decrypt(KEY, &stored[..stored.len() - 1]).is_err());
            assert!(t.decrypt(KEY, &stored[..prefix_len + 4]).is_err());
        }
        // AES-CBC: a truncated value is not a whole number of blocks.
        let t = one(cipher(Algorithm::AesCbc, "k", 1));
        let stored = t.encrypt(KEY, PLAIN).unwrap();
        assert!(t.decrypt(KEY, &stored[..stored.len() - 1]).is_err());
        assert!(
            t.decrypt(KEY, &stored[..t.writer().prefix().len() + 16])
                .is_err()
        );
    }

    #[test]
    fn aes_gcm_binds_a_value_to_its_store_key_and_secretbox_and_cbc_do_not() {
        // Kubernetes authenticates the etcd key only with AES-GCM; a value moved to another key
        // (another namespace's Secret) must not read there.
        let gcm = one(cipher(Algorithm::AesGcm, "k", 1));
        let stored = gcm.encrypt(KEY, PLAIN).unwrap();
        assert!(matches!(
            gcm.decrypt("/registry/secrets/other/token", &stored),
            Err(ValueError::Undecryptable { .. })
        ));
        for algorithm in [Algorithm::AesCbc, Algorithm::Secretbox] {
            let t = one(cipher(algorithm, "k", 1));
            let stored = t.encrypt(KEY, PLAIN).unwrap();
            assert_eq!(t.decrypt("/elsewhere", &stored).unwrap().as_ref(), PLAIN);
        }
    }

    #[test]
    fn the_first_key_writes_and_every_key_reads() {
        let old = cipher(Algorithm::AesCbc, "old", 1);
        let stored_old = one(cipher(Algorithm::AesCbc, "old", 1))
            .encrypt(KEY, PLAIN)
            .unwrap();
        let t = Transformer::new(cipher(Algorithm::AesGcm, "new", 2), [old]);
        let stored_new = t.encrypt(KEY, PLAIN).unwrap();
        assert!(stored_new.starts_with(b"k8s:enc:aesgcm:v1:new:"));
        assert!(t.is_current(&stored_new));
        assert!(!t.is_current(&stored_old));
        assert!(!t.is_current(PLAIN));
        assert_eq!(t.decrypt(KEY, &stored_old).unwrap().as_ref(), PLAIN);
        assert_eq!(t.decrypt(KEY, &stored_new).unwrap().as_ref(), PLAIN);
    }

    #[test]
    fn unencrypted_values_read_as_they_are_whatever_the_keys() {
        for writer in [cipher(Algorithm::AesGcm, "k", 1), Cipher::identity()] {
            let t = one(writer);
            assert!(matches!(
                t.decrypt(KEY, PLAIN).unwrap(),
                Cow::Borrowed(PLAIN)
            ));
        }
        // With identity first, plain values are current and encrypted ones still read.
        let old = cipher(Algorithm::Secretbox, "old", 9);
        let stored = one(cipher(Algorithm::Secretbox, "old", 9))
            .encrypt(KEY, PLAIN)
            .unwrap();
        let t = Transformer::new(Cipher::identity(), [old]);
        assert!(t.is_current(PLAIN));
        assert!(!t.is_current(&stored));
        assert_eq!(t.decrypt(KEY, &stored).unwrap().as_ref(), PLAIN);
    }

    #[test]
    fn keys_of_the_wrong_size_or_without_a_name_are_refused() {
        let check = |algorithm: Algorithm, size: usize, expected: &[usize]| {
            assert_eq!(
                Cipher::new(algorithm, "k", &vec![0; size]).unwrap_err(),
                KeyError::Size {
                    got: size,
                    expected: algorithm.key_sizes()
                }
            );
            assert_eq!(algorithm.key_sizes(), expected);
        };
        check(Algorithm::AesGcm, 31, &[16, 24, 32]);
        check(Algorithm::AesCbc, 0, &[16, 24, 32]);
        check(Algorithm::Secretbox, 16, &[32]);
        assert_eq!(
            KeyError::Size {
                got: 10,
                expected: &[16, 24, 32]
            }
            .to_string(),
            "secret is not of the expected length, got 10, expected one of [16, 24, 32]"
        );
        assert_eq!(
            Cipher::new(Algorithm::AesGcm, "", &[0; 32]).unwrap_err(),
            KeyError::EmptyName
        );
    }

    #[test]
    fn debug_output_names_the_key_but_never_shows_it() {
        let c = Cipher::new(Algorithm::AesGcm, "k1", &[0xAB; 32]).unwrap();
        let text = format!("{:?}", Transformer::new(c, []));
        assert!(text.contains("aesgcm") && text.contains("k1"), "{text}");
        assert!(
            !text.to_lowercase().contains("ab, ") && !text.contains("171"),
            "{text}"
        );
    }

    #[test]
    fn prefixes_that_name_no_provider_are_described_without_panicking() {
        for stored in [
            &b"k8s:enc:"[..],
            b"k8s:enc:kms:v2:",
            b"k8s:enc:aesgcm",
            b"k8s:enc:aesgcm:v1:",
            b"k8s:enc:\xff\xfe:v1:\xff:",
        ] {
            let t = one(cipher(Algorithm::AesGcm, "k", 1));
            assert!(matches!(
                t.decrypt(KEY, stored),
                Err(ValueError::UnknownKey { .. })
            ));
        }
        assert_eq!(
            describe(b"k8s:enc:kms:v2:name:..."),
            ("kms".to_owned(), String::new())
        );
        assert_eq!(
            describe(b"k8s:enc:secretbox:v1:key2:..."),
            ("secretbox".to_owned(), "key2".to_owned())
        );
    }
}

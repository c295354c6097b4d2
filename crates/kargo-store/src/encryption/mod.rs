//! Encryption at rest: [`EncryptedStore`] wraps any [`Store`](crate::Store) and encrypts the
//! values under chosen key prefixes with the providers of Kubernetes' `EncryptionConfiguration`
//! (`aesgcm`, `aescbc`, `secretbox`, `identity`), in kube-apiserver's value formats
//! (`k8s:enc:<provider>:v1:<key name>:` and the ciphertext; see [`cipher`](self::Cipher)).
//!
//! - A [`Cipher`] is one provider key; a [`Transformer`] is the ordered keys of one group of
//!   store keys: the first writes, all read, and a value without the `k8s:enc:` marker (written
//!   before encryption was configured) reads as it is.
//! - [`EncryptedStore`] applies a transformer per prefix to every read, list, watch event and
//!   conflict value; [`EncryptedStore::verify`] reads every encrypted value once (a server checks
//!   its keys at start-up), [`EncryptedStore::reencrypt`] rewrites those not written with the first
//!   key (key rotation), each as a compare-and-swap.
//!
//! What is encrypted is the caller's choice: this module takes prefixes and keys and knows nothing
//! of resources or of the configuration file (the server maps both). AES uses aws-lc-rs;
//! XSalsa20-Poly1305 uses RustCrypto's `crypto_secretbox`.

mod cipher;
mod store;

pub use cipher::{Algorithm, Cipher, ENCRYPTED_MARKER, KeyError, Transformer, ValueError};
pub use store::{EncryptedPrefix, EncryptedStore, EncryptionError, Reencrypted, Verified};

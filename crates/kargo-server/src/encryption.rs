//! Encryption at rest from `--encryption-config FILE`: Kubernetes' `EncryptionConfiguration`
//! (`apiserver.config.k8s.io/v1`) read and validated as kube-apiserver does, its resource names
//! mapped to this server's store key prefixes, and the store wrapped in
//! `kargo_store::encryption::EncryptedStore`.
//!
//! Besides the resources the file lists, the server's own keys under [`INTERNAL_PREFIX`] (CA key,
//! service-account signing keys, admin record) are always encrypted, with the providers of the
//! entry that covers `secrets` (a configuration must cover `secrets`), and rewritten with its first
//! key at every start. At start-up every encrypted value is read once ([`open`]), so a value
//! written with a key the file lacks is a start-up error that names the store key and the
//! provider key, never a failure later in the informer; a start without a file on a store whose
//! own records are encrypted is refused the same way.
//!
//! Differences from kube-apiserver, each towards refusing a mistake: unknown fields are errors;
//! a resource this server does not store is an error (a misspelt `secret` would otherwise
//! encrypt nothing); two keys of one provider with the same name in one entry are an error; `kms`
//! providers are not supported. A value written before encryption was configured (no `k8s:enc:`
//! prefix) reads whether or not `identity` is listed, so enabling encryption needs no second
//! step before the server can start.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use kargo_api::resources::{self, ResourceType};
use kargo_store::encryption::{
    Algorithm, Cipher, ENCRYPTED_MARKER, EncryptedPrefix, EncryptedStore, EncryptionError,
    Reencrypted, Transformer, ValueError,
};
use kargo_store::{ListRequest, Store};
use serde::Deserialize;

/// The server's own keys (CA, signing keys, admin record): encrypted whenever a configuration is
/// given, with the providers of `secrets`.
pub(crate) const INTERNAL_PREFIX: &str = "/kargo/internal/";

/// The `apiVersion` of the file.
pub(crate) const API_VERSION: &str = "apiserver.config.k8s.io/v1";
/// The `kind` of the file.
pub(crate) const KIND: &str = "EncryptionConfiguration";

/// Why encryption at rest could not be set up or applied.
#[derive(Debug, thiserror::Error)]
pub enum EncryptionSetupError {
    /// The file could not be read.
    // The cause is part of the message and not a `source`, so that a report of the error chain
    // does not repeat it.
    #[error("reading the encryption configuration {}: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The failure.
        error: std::io::Error,
    },
    /// The file is not a valid configuration; `message` names the field.
    #[error("the encryption configuration {} is invalid: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, and where (`resources[0].providers[1].aesgcm.keys[0].secret: ...`).
        message: String,
    },
    /// A stored value cannot be read with the configured keys.
    #[error("the encryption configuration {} cannot decrypt a stored value: {error}", path.display())]
    Undecryptable {
        /// The file.
        path: PathBuf,
        /// Which value, and which provider key it needs.
        error: ValueError,
    },
    /// The store holds encrypted values but no configuration was given.
    #[error(
        "the store holds encrypted values ({key} is encrypted with {provider} key {name:?}): start the server with --encryption-config and the file holding that key"
    )]
    NotConfigured {
        /// An encrypted store key.
        key: String,
        /// Its provider.
        provider: String,
        /// Its key name.
        name: String,
    },
    /// The store failed.
    #[error("reading the store to check its encryption: {0}")]
    Store(kargo_store::Error),
}

// Not `#[from]`: the message already names the cause, and a `source` besides would make the
// CLI, which prints an error's whole chain, say it twice.
impl From<kargo_store::Error> for EncryptionSetupError {
    fn from(error: kargo_store::Error) -> EncryptionSetupError {
        EncryptionSetupError::Store(error)
    }
}

/// A parsed and validated configuration: the encrypted prefixes and their keys.
#[derive(Debug)]
pub struct EncryptionConfig {
    path: PathBuf,
    prefixes: Vec<EncryptedPrefix>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct File {
    api_version: Option<String>,
    kind: Option<String>,
    #[serde(default)]
    resources: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    #[serde(default)]
    resources: Vec<String>,
    #[serde(default)]
    providers: Vec<Provider>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Provider {
    aesgcm: Option<Keys>,
    aescbc: Option<Keys>,
    secretbox: Option<Keys>,
    identity: Option<Identity>,
    // Recognised so that the error can say it is not supported.
    kms: Option<yaml_serde::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Keys {
    #[serde(default)]
    keys: Vec<Key>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Key {
    #[serde(default)]
    name: String,
    #[serde(default, deserialize_with = "secret_text")]
    secret: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Identity {}

/// A key's `secret` as a string; anything else is refused without echoing it (serde's own
/// message would quote a number).
fn secret_text<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    match yaml_serde::Value::deserialize(deserializer)? {
        yaml_serde::Value::String(text) => Ok(text),
        yaml_serde::Value::Null => Ok(String::new()),
        _ => Err(serde::de::Error::custom(
            "a key's secret must be a base64 string",
        )),
    }
}

/// A group/resource as the file names it (`secrets`, `roles.rbac.authorization.k8s.io`, `*.`,
/// `*.*`), split as Kubernetes' `ParseGroupResource` does.
fn group_resource(name: &str) -> (&str, &str) {
    match name.split_once('.') {
        Some((resource, group)) => (group, resource),
        None => ("", name),
    }
}

fn covers(name: &str, rt: &ResourceType) -> bool {
    let (group, resource) = group_resource(name);
    (group == "*" || group == rt.group) && (resource == "*" || resource == rt.plural)
}

impl EncryptionConfig {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<EncryptionConfig, EncryptionSetupError> {
        let text = std::fs::read_to_string(path).map_err(|error| EncryptionSetupError::Read {
            path: path.to_owned(),
            error,
        })?;
        EncryptionConfig::parse(path, &text)
    }

    /// Validates the configuration `text`; `path` names it in messages.
    pub(crate) fn parse(path: &Path, text: &str) -> Result<EncryptionConfig, EncryptionSetupError> {
        let invalid = |message: String| EncryptionSetupError::Invalid {
            path: path.to_owned(),
            message,
        };
        let file: File = yaml_serde::from_str(text).map_err(|e| invalid(e.to_string()))?;
        match file.api_version.as_deref() {
            Some(API_VERSION) => {}
            other => {
                return Err(invalid(format!(
                    "apiVersion: Unsupported value: {:?}: supported values: {API_VERSION:?}",
                    other.unwrap_or_default()
                )));
            }
        }
        match file.kind.as_deref() {
            Some(KIND) => {}
            other => {
                return Err(invalid(format!(
                    "kind: Unsupported value: {:?}: supported values: {KIND:?}",
                    other.unwrap_or_default()
                )));
            }
        }
        if file.resources.is_empty() {
            return Err(invalid(
                "resources: Required value: at least one resources is required".into(),
            ));
        }
        let mut prefixes: Vec<EncryptedPrefix> = Vec::new();
        let mut covered: Vec<&'static ResourceType> = Vec::new();
        let mut internal = None;
        for (i, entry) in file.resources.iter().enumerate() {
            let at = format!("resources[{i}]");
            let transformer = Arc::new(transformer(&at, entry).map_err(invalid)?);
            for rt in entry_resources(&at, &entry.resources).map_err(invalid)? {
                // Earlier entries take precedence, as in kube-apiserver.
                if covered.contains(&rt) {
                    continue;
                }
                covered.push(rt);
                if std::ptr::eq(rt, &resources::SECRETS) {
                    internal = Some(transformer.clone());
                }
                prefixes.push(EncryptedPrefix {
                    prefix: rt.key_prefix(),
                    transformer: transformer.clone(),
                });
            }
        }
        let Some(internal) = internal else {
            return Err(invalid(
                "resources: no entry covers secrets: the server keeps its own keys (CA, signing keys, admin record) with the providers of secrets, so list secrets (or *. or *.*)".into(),
            ));
        };
        prefixes.push(EncryptedPrefix {
            prefix: INTERNAL_PREFIX.into(),
            transformer: internal,
        });
        Ok(EncryptionConfig {
            path: path.to_owned(),
            prefixes,
        })
    }

    /// The encrypted store key prefixes and their keys, in order.
    #[cfg(test)]
    fn prefixes(&self) -> &[EncryptedPrefix] {
        &self.prefixes
    }

    /// `inner` with these prefixes encrypted.
    pub fn wrap(&self, inner: Arc<dyn Store>) -> EncryptedStore {
        EncryptedStore::new(inner, self.prefixes.clone())
    }

    fn store_error(&self, error: EncryptionError) -> EncryptionSetupError {
        match error {
            EncryptionError::Store(e) => EncryptionSetupError::Store(e),
            EncryptionError::Value(error) => EncryptionSetupError::Undecryptable {
                path: self.path.clone(),
                error,
            },
        }
    }
}

/// The stored resource types an entry's `resources` names, after Kubernetes' checks.
fn entry_resources(at: &str, names: &[String]) -> Result<Vec<&'static ResourceType>, String> {
    if names.is_empty() {
        return Err(format!(
            "{at}.resources: Required value: at least one {at}.resources is required"
        ));
    }
    let mut out = Vec::new();
    for (j, name) in names.iter().enumerate() {
        let field = format!("{at}.resources[{j}]");
        let (group, resource) = group_resource(name);
        let problem = if name.to_lowercase() != *name {
            Some("resource name should not contain capital letters")
        } else if name == "*" {
            Some(
                "use '*.' to encrypt all the resources from core API group or *.* to encrypt all resources",
            )
        } else if group == "*" && resource != "*" {
            Some("encrypting the same resource across groups is not supported")
        } else if names[..j].contains(name) {
            Some("the same resource cannot be specified multiple times")
        } else if names.iter().enumerate().any(|(k, other)| {
            k != j && {
                let (other_group, other_resource) = group_resource(other);
                other == "*.*"
                    || (other_group == group && (other_resource == "*" || resource == "*"))
            }
        }) {
            Some(
                "using overlapping resources such as 'secrets' and '*.' in the same resource list is not allowed as they will be masked",
            )
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(format!("{field}: Invalid value: {name:?}: {problem}"));
        }
        let matched: Vec<_> = resources::stored().filter(|rt| covers(name, rt)).collect();
        if matched.is_empty() && resource != "*" {
            let stored: Vec<String> = resources::stored().map(|rt| rt.qualified()).collect();
            return Err(format!(
                "{field}: Unsupported value: {name:?}: this server stores {}",
                stored.join(", ")
            ));
        }
        out.extend(matched);
    }
    Ok(out)
}

/// The keys of one entry's providers, in order.
fn transformer(at: &str, entry: &Entry) -> Result<Transformer, String> {
    if entry.providers.is_empty() {
        return Err(format!(
            "{at}.providers: Required value: at least one {at}.providers is required"
        ));
    }
    let mut ciphers: Vec<Cipher> = Vec::new();
    for (j, provider) in entry.providers.iter().enumerate() {
        let field = format!("{at}.providers[{j}]");
        let keyed = [
            (Algorithm::AesGcm, &provider.aesgcm),
            (Algorithm::AesCbc, &provider.aescbc),
            (Algorithm::Secretbox, &provider.secretbox),
        ];
        let count = keyed.iter().filter(|(_, keys)| keys.is_some()).count()
            + usize::from(provider.identity.is_some())
            + usize::from(provider.kms.is_some());
        if count == 0 {
            return Err(format!(
                "{field}: Invalid value: provider does not contain any of the expected providers: aesgcm, aescbc, secretbox, identity"
            ));
        }
        if count > 1 {
            return Err(format!(
                "{field}: Invalid value: more than one provider specified in a single element, should split into different list elements"
            ));
        }
        if provider.kms.is_some() {
            return Err(format!(
                "{field}.kms: Unsupported value: kms providers are not supported by kargo server: use aesgcm, aescbc or secretbox"
            ));
        }
        if provider.identity.is_some() {
            ciphers.push(Cipher::identity());
            continue;
        }
        for (algorithm, keys) in keyed {
            let Some(keys) = keys else { continue };
            let field = format!("{field}.{}.keys", algorithm.provider());
            if keys.keys.is_empty() {
                return Err(format!(
                    "{field}: Required value: at least one keys is required"
                ));
            }
            for (k, key) in keys.keys.iter().enumerate() {
                let field = format!("{field}[{k}]");
                ciphers.push(cipher(&field, algorithm, key, &ciphers)?);
            }
        }
    }
    let mut ciphers = ciphers.into_iter();
    let first = ciphers
        .next()
        .ok_or_else(|| format!("{at}.providers: Required value: no keys"))?;
    Ok(Transformer::new(first, ciphers))
}

/// One key, checked as kube-apiserver checks it; the secret never appears in a message.
fn cipher(
    field: &str,
    algorithm: Algorithm,
    key: &Key,
    earlier: &[Cipher],
) -> Result<Cipher, String> {
    if key.name.is_empty() {
        return Err(format!(
            "{field}.name: Required value: name is a mandatory field for a key"
        ));
    }
    if earlier
        .iter()
        .any(|c| c.provider() == algorithm.provider() && c.name() == key.name)
    {
        return Err(format!(
            "{field}.name: Duplicate value: {:?}: key names must be unique within a provider",
            key.name
        ));
    }
    if key.secret.is_empty() {
        return Err(format!(
            "{field}.secret: Required value: secret is a mandatory field for a key"
        ));
    }
    let secret = STANDARD.decode(key.secret.trim()).map_err(|_| {
        format!("{field}.secret: Invalid value: \"REDACTED\": secrets must be base64 encoded")
    })?;
    Cipher::new(algorithm, &key.name, &secret)
        .map_err(|e| format!("{field}.secret: Invalid value: \"REDACTED\": {e}"))
}

/// Wraps `store` per `config` and reads every encrypted value once; without a configuration,
/// checks that the server's own keys are not encrypted (a server started without the file it was
/// encrypted with must say so, not fail on a garbled CA).
pub(crate) async fn open(
    store: Arc<dyn Store>,
    config: Option<&EncryptionConfig>,
) -> Result<Arc<dyn Store>, EncryptionSetupError> {
    let Some(config) = config else {
        refuse_encrypted(store.as_ref()).await?;
        return Ok(store);
    };
    let encrypted = config.wrap(store);
    let verified = encrypted
        .verify()
        .await
        .map_err(|e| config.store_error(e))?;
    // The server's own few records are rewritten at once, so that whenever a configuration
    // encrypts anything they are encrypted too, and a later start without the file is refused
    // (`refuse_encrypted`) instead of running on half of the data.
    encrypted
        .reencrypt_prefix(INTERNAL_PREFIX)
        .await
        .map_err(|e| config.store_error(e))?;
    if verified.stale > 0 {
        tracing::warn!(
            stale = verified.stale,
            values = verified.values,
            "some encrypted-resource values are not written with the first key of the encryption configuration: run `kargo server reencrypt`"
        );
    } else {
        tracing::info!(
            values = verified.values,
            "encryption at rest: every value reads"
        );
    }
    Ok(Arc::new(encrypted))
}

/// Rewrites every value under the configured prefixes that is not written with the first key
/// (after checking that every one decrypts, so nothing is written if one does not).
pub async fn reencrypt(
    store: Arc<dyn Store>,
    config: &EncryptionConfig,
) -> Result<Reencrypted, EncryptionSetupError> {
    let encrypted = config.wrap(store);
    encrypted
        .verify()
        .await
        .map_err(|e| config.store_error(e))?;
    encrypted
        .reencrypt()
        .await
        .map_err(|e| config.store_error(e))
}

async fn refuse_encrypted(store: &dyn Store) -> Result<(), EncryptionSetupError> {
    let page = store
        .list(ListRequest {
            prefix: INTERNAL_PREFIX.into(),
            ..ListRequest::default()
        })
        .await?;
    let Some(kv) = page
        .kvs
        .iter()
        .find(|kv| kv.value.starts_with(ENCRYPTED_MARKER))
    else {
        return Ok(());
    };
    // The unconfigured transformer describes the value's provider and key for the message.
    let (provider, name) =
        match Transformer::new(Cipher::identity(), []).decrypt(&kv.key, &kv.value) {
            Err(ValueError::UnknownKey { provider, name, .. }) => (provider, name),
            _ => (String::new(), String::new()),
        };
    Err(EncryptionSetupError::NotConfigured {
        key: kv.key.clone(),
        provider,
        name,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const K32: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="; // 32 bytes
    const K16: &str = "MDEyMzQ1Njc4OWFiY2RlZg=="; // 16 bytes

    fn parse(text: &str) -> Result<EncryptionConfig, String> {
        EncryptionConfig::parse(Path::new("/etc/kargo/enc.yaml"), text).map_err(|e| e.to_string())
    }

    fn file(resources: &str) -> String {
        format!(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n{resources}"
        )
    }

    /// `(prefix, provider/name of the writer)` of each encrypted prefix.
    fn summary(config: &EncryptionConfig) -> Vec<(String, String)> {
        config
            .prefixes()
            .iter()
            .map(|p| {
                let w = p.transformer.writer();
                (p.prefix.clone(), format!("{}/{}", w.provider(), w.name()))
            })
            .collect()
    }

    #[test]
    fn secrets_and_the_servers_own_keys_are_encrypted_with_the_first_key() {
        let config = parse(&file(&format!(
            "- resources: [secrets]\n  providers:\n  - aesgcm:\n      keys:\n      - name: key2\n        secret: {K32}\n      - name: key1\n        secret: {K16}\n  - identity: {{}}\n"
        )))
        .unwrap();
        assert_eq!(
            summary(&config),
            vec![
                ("/registry/secrets/".into(), "aesgcm/key2".into()),
                ("/kargo/internal/".into(), "aesgcm/key2".into()),
            ]
        );
        let names: Vec<_> = config.prefixes()[0]
            .transformer
            .ciphers()
            .iter()
            .map(|c| format!("{}/{}", c.provider(), c.name()))
            .collect();
        assert_eq!(names, ["aesgcm/key2", "aesgcm/key1", "identity/"]);
    }

    #[test]
    fn resource_names_map_to_this_servers_key_prefixes_and_earlier_entries_win() {
        let config = parse(&file(&format!(
            "- resources: [configmaps]\n  providers: [{{identity: {{}}}}]\n- resources: ['*.', stages.kargo.akuity.io]\n  providers:\n  - secretbox:\n      keys: [{{name: s, secret: {K32}}}]\n- resources: ['*.*']\n  providers:\n  - aescbc:\n      keys: [{{name: c, secret: {K16}}}]\n"
        )))
        .unwrap();
        let got = summary(&config);
        let find = |prefix: &str| {
            got.iter()
                .find(|(p, _)| p == prefix)
                .map(|(_, w)| w.as_str())
                .unwrap_or("none")
        };
        assert_eq!(find("/registry/configmaps/"), "identity/");
        assert_eq!(find("/registry/secrets/"), "secretbox/s");
        assert_eq!(find("/registry/namespaces/"), "secretbox/s");
        assert_eq!(find("/registry/kargo.akuity.io/stages/"), "secretbox/s");
        assert_eq!(find("/registry/roles/"), "aescbc/c");
        assert_eq!(find("/registry/kargo.akuity.io/projects/"), "aescbc/c");
        assert_eq!(find("/kargo/internal/"), "secretbox/s");
        // Every stored resource once, plus the internal prefix.
        assert_eq!(got.len(), resources::stored().count() + 1);
    }

    /// Each mistake and the message that names its field; no message shows a secret.
    #[test]
    fn mistakes_are_refused_with_the_file_and_the_field() {
        let check = |text: String, expected: &str| {
            let err = parse(&text).unwrap_err();
            assert!(
                err.starts_with("the encryption configuration /etc/kargo/enc.yaml is invalid: "),
                "{err}"
            );
            assert!(
                err.contains(expected),
                "{err}\n  should contain: {expected}"
            );
            assert!(!err.contains(K32) && !err.contains(K16), "{err}");
        };
        let key = |provider: &str, secret: &str| {
            file(&format!(
                "- resources: [secrets]\n  providers:\n  - {provider}:\n      keys:\n      - name: k\n        secret: {secret}\n"
            ))
        };
        check(
            key("aesgcm", "c2hvcnQ="),
            "resources[0].providers[0].aesgcm.keys[0].secret: Invalid value: \"REDACTED\": secret is not of the expected length, got 5, expected one of [16, 24, 32]",
        );
        check(
            key("secretbox", K16),
            "resources[0].providers[0].secretbox.keys[0].secret: Invalid value: \"REDACTED\": secret is not of the expected length, got 16, expected one of [32]",
        );
        check(
            key("aescbc", "not base64!"),
            "resources[0].providers[0].aescbc.keys[0].secret: Invalid value: \"REDACTED\": secrets must be base64 encoded",
        );
        check(
            key("aescbc", "12345"),
            "a key's secret must be a base64 string",
        );
        check(
            key("aesgcm", "\"\""),
            "resources[0].providers[0].aesgcm.keys[0].secret: Required value",
        );
        check(
            file("- resources: [secrets]\n  providers:\n  - aes-gcm: {keys: []}\n"),
            "unknown field `aes-gcm`",
        );
        check(
            file(
                "- resources: [secrets]\n  providers:\n  - kms: {name: plugin, endpoint: unix:///kms.sock}\n",
            ),
            "resources[0].providers[0].kms: Unsupported value: kms providers are not supported",
        );
        check(
            file(&format!(
                "- resources: [secrets]\n  providers:\n  - identity: {{}}\n    aesgcm: {{keys: [{{name: k, secret: {K32}}}]}}\n"
            )),
            "resources[0].providers[0]: Invalid value: more than one provider",
        );
        check(
            file("- resources: [secrets]\n  providers:\n  - {}\n"),
            "resources[0].providers[0]: Invalid value: provider does not contain any of the expected providers",
        );
        check(
            file("- resources: [secrets]\n  providers:\n  - aesgcm: {keys: []}\n"),
            "resources[0].providers[0].aesgcm.keys: Required value",
        );
        check(
            file(&format!(
                "- resources: [secrets]\n  providers:\n  - aesgcm: {{keys: [{{name: k, secret: {K32}}}, {{name: k, secret: {K16}}}]}}\n"
            )),
            "resources[0].providers[0].aesgcm.keys[1].name: Duplicate value: \"k\"",
        );
        check(
            file(&format!(
                "- resources: [secrets]\n  providers:\n  - aesgcm: {{keys: [{{secret: {K32}}}]}}\n"
            )),
            "resources[0].providers[0].aesgcm.keys[0].name: Required value",
        );
        check(
            file("- resources: [secret]\n  providers: [{identity: {}}]\n"),
            "resources[0].resources[0]: Unsupported value: \"secret\": this server stores namespaces, serviceaccounts, secrets",
        );
        check(
            file("- resources: [Secrets]\n  providers: [{identity: {}}]\n"),
            "resources[0].resources[0]: Invalid value: \"Secrets\": resource name should not contain capital letters",
        );
        check(
            file("- resources: ['*']\n  providers: [{identity: {}}]\n"),
            "use '*.' to encrypt all the resources",
        );
        check(
            file("- resources: [secrets, '*.']\n  providers: [{identity: {}}]\n"),
            "using overlapping resources",
        );
        check(
            file("- resources: [secrets, secrets]\n  providers: [{identity: {}}]\n"),
            "the same resource cannot be specified multiple times",
        );
        check(
            file("- resources: [secrets]\n  providers: []\n"),
            "resources[0].providers: Required value",
        );
        check(
            file("- resources: [configmaps]\n  providers: [{identity: {}}]\n"),
            "no entry covers secrets",
        );
        check(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources: []\n"
                .into(),
            "resources: Required value",
        );
        check(
            "apiVersion: v1\nkind: EncryptionConfiguration\nresources: []\n".into(),
            "apiVersion: Unsupported value: \"v1\"",
        );
        check(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfig\nresources: []\n"
                .into(),
            "kind: Unsupported value: \"EncryptionConfig\"",
        );
        check("resources: [\n".into(), "line");
    }

    #[test]
    fn the_example_in_the_operations_guide_is_a_valid_configuration() {
        let guide = include_str!("../../../docs/operations.md");
        let section = &guide[guide.find("## Encryption at rest").unwrap()..];
        let start = section.find("```yaml\n").unwrap() + "```yaml\n".len();
        let example = &section[start..start + section[start..].find("```").unwrap()];
        let config = parse(example).unwrap();
        assert_eq!(
            summary(&config),
            vec![
                ("/registry/secrets/".into(), "aesgcm/key1".into()),
                ("/kargo/internal/".into(), "aesgcm/key1".into()),
            ]
        );
    }

    #[test]
    fn a_missing_file_is_an_error_that_names_it() {
        let err = EncryptionConfig::load(Path::new("/nonexistent/enc.yaml")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("reading the encryption configuration /nonexistent/enc.yaml: "),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_store_encrypted_before_cannot_start_without_the_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let raw: Arc<dyn Store> =
            Arc::new(kargo_store::sqlite::SqliteStore::open(&dir.path().join("s.db")).unwrap());
        let path = dir.path().join("enc.yaml");
        std::fs::write(
            &path,
            file(&format!(
                "- resources: [secrets]\n  providers:\n  - aesgcm: {{keys: [{{name: k1, secret: {K32}}}]}}\n"
            )),
        )
        .unwrap();
        let config = EncryptionConfig::load(&path).unwrap();
        // A store without encrypted values starts either way.
        open(raw.clone(), None).await.unwrap();
        let store = open(raw.clone(), Some(&config)).await.unwrap();
        store
            .create("/kargo/internal/ca", b"{\"keyPem\":\"x\"}".to_vec())
            .await
            .unwrap();
        let Err(err) = open(raw.clone(), None).await else {
            panic!("started without the configuration");
        };
        assert_eq!(
            err.to_string(),
            "the store holds encrypted values (/kargo/internal/ca is encrypted with aesgcm key \"k1\"): start the server with --encryption-config and the file holding that key"
        );
        // The same file reads it.
        let again = open(raw, Some(&config)).await.unwrap();
        let ca = again.get("/kargo/internal/ca").await.unwrap().unwrap();
        assert_eq!(ca.value, b"{\"keyPem\":\"x\"}");
    }
}

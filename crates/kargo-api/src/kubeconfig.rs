//! Kubeconfigs of one cluster, one user and one context, as values: the server's
//! `admin.kubeconfig` (a client certificate) and `kargo create serviceaccounttoken -o
//! kubeconfig` (a ServiceAccount token) are both built here, and each side renders the value as
//! YAML its own way.

use base64::Engine as _;
use serde_json::{Value, json};

/// How the kubeconfig's user authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A bearer token (`token`).
    Token(String),
    /// A client certificate and its key, PEM (`client-certificate-data`, `client-key-data`).
    ClientCertificate {
        /// The certificate.
        certificate_pem: Vec<u8>,
        /// Its private key.
        key_pem: Vec<u8>,
    },
}

/// How the server's certificate is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerTrust {
    /// Against this CA (PEM; `certificate-authority-data`).
    CertificateAuthority(Vec<u8>),
    /// Against the system's roots (no field).
    System,
    /// Not at all (`insecure-skip-tls-verify: true`).
    Insecure,
}

/// A kubeconfig (`apiVersion: v1`, `kind: Config`) with one cluster, one user and one context,
/// the current one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kubeconfig {
    /// The cluster's name.
    pub cluster: String,
    /// The server's address, `https://host:port`.
    pub server: String,
    /// How the server's certificate is checked.
    pub trust: ServerTrust,
    /// The user's name.
    pub user: String,
    /// How the user authenticates.
    pub credential: Credential,
    /// The context's name (the `current-context`).
    pub context: String,
    /// The context's namespace, if any.
    pub namespace: Option<String>,
}

impl Kubeconfig {
    /// The kubeconfig as a JSON value, with kubectl's field names.
    pub fn to_value(&self) -> Value {
        let b64 =
            |bytes: &[u8]| Value::String(base64::engine::general_purpose::STANDARD.encode(bytes));
        let mut cluster = json!({ "server": self.server });
        match &self.trust {
            ServerTrust::CertificateAuthority(pem) => {
                cluster["certificate-authority-data"] = b64(pem);
            }
            ServerTrust::Insecure => cluster["insecure-skip-tls-verify"] = Value::Bool(true),
            ServerTrust::System => {}
        }
        let user = match &self.credential {
            Credential::Token(token) => json!({ "token": token }),
            Credential::ClientCertificate {
                certificate_pem,
                key_pem,
            } => json!({
                "client-certificate-data": b64(certificate_pem),
                "client-key-data": b64(key_pem),
            }),
        };
        let mut context = json!({ "cluster": self.cluster, "user": self.user });
        if let Some(namespace) = &self.namespace {
            context["namespace"] = Value::String(namespace.clone());
        }
        json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{ "name": self.cluster, "cluster": cluster }],
            "users": [{ "name": self.user, "user": user }],
            "contexts": [{ "name": self.context, "context": context }],
            "current-context": self.context,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_kubeconfig_has_its_namespace_and_trust() {
        let config = Kubeconfig {
            cluster: "p-ci".into(),
            server: "https://127.0.0.1:8443".into(),
            trust: ServerTrust::CertificateAuthority(b"PEM".to_vec()),
            user: "p-ci".into(),
            credential: Credential::Token("eyJ".into()),
            context: "p-ci".into(),
            namespace: Some("p".into()),
        };
        assert_eq!(
            config.to_value(),
            json!({
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{ "name": "p-ci", "cluster": {
                    "server": "https://127.0.0.1:8443",
                    "certificate-authority-data": "UEVN",
                }}],
                "users": [{ "name": "p-ci", "user": { "token": "eyJ" } }],
                "contexts": [{ "name": "p-ci", "context": {
                    "cluster": "p-ci", "user": "p-ci", "namespace": "p",
                }}],
                "current-context": "p-ci",
            })
        );
    }

    #[test]
    fn a_client_certificate_kubeconfig_has_no_namespace_unless_given() {
        let config = Kubeconfig {
            cluster: "kargo".into(),
            server: "https://h:1".into(),
            trust: ServerTrust::Insecure,
            user: "admin".into(),
            credential: Credential::ClientCertificate {
                certificate_pem: b"C".to_vec(),
                key_pem: b"K".to_vec(),
            },
            context: "kargo".into(),
            namespace: None,
        };
        let value = config.to_value();
        assert_eq!(
            value["users"][0]["user"],
            json!({ "client-certificate-data": "Qw==", "client-key-data": "Sw==" })
        );
        assert_eq!(
            value["clusters"][0]["cluster"]["insecure-skip-tls-verify"],
            true
        );
        assert_eq!(
            value["contexts"][0]["context"],
            json!({ "cluster": "kargo", "user": "admin" })
        );
    }
}

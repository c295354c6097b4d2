//! A ServiceAccount token made ready to use: `kargo create serviceaccounttoken -o kubeconfig`
//! prints a kubeconfig for kubectl and Kubernetes client libraries, `-o env` the `KARGO_*`
//! variables the CLI reads ([`crate::config::Environment`]) for a CI job. Both name the server
//! and trust the CA the CLI itself used to create the token, so what works for the CLI works
//! for the token.
//!
//! Pure: values in, text out. The token is in the text (as in the banner, the one place it is
//! shown); nothing here logs.

use std::borrow::Cow;

use base64::Engine as _;
use kargo_api::kargo::SYSTEM_NAMESPACE;
use kargo_api::kubeconfig::{Credential, Kubeconfig, ServerTrust};

use crate::api::Scope;
use crate::client::Tls;

/// A token and the way to the server it works with.
#[derive(Debug, Clone, Copy)]
pub struct TokenAccess<'a> {
    /// The server's address, `https://host:port`.
    pub address: &'a str,
    /// How the server's certificate is checked.
    pub tls: &'a Tls,
    /// The project (or the system level) of the ServiceAccount.
    pub scope: &'a Scope,
    /// The ServiceAccount.
    pub service_account: &'a str,
    /// The token (a JWT).
    pub token: &'a str,
}

impl TokenAccess<'_> {
    /// `<project>-<serviceaccount>` (`system-<serviceaccount>` at the system level): the name
    /// of the kubeconfig's context, and of its cluster and user, so that two such kubeconfigs
    /// merged (`KUBECONFIG=a:b`) never take one's token or server for the other's.
    pub fn name(&self) -> String {
        match self.scope {
            Scope::Project(project) => format!("{project}-{}", self.service_account),
            Scope::System => format!("system-{}", self.service_account),
        }
    }

    /// The namespace of the ServiceAccount: the project's, or the system namespace.
    fn namespace(&self) -> &str {
        match self.scope {
            Scope::Project(project) => project,
            Scope::System => SYSTEM_NAMESPACE,
        }
    }

    /// A kubeconfig (YAML, keys sorted as `kubectl config view` prints them) with one cluster
    /// (the server, its CA as `certificate-authority-data`, or `insecure-skip-tls-verify: true`
    /// when the CLI does not check the certificate), one user with the token, and one context,
    /// current, whose namespace is the ServiceAccount's; built by [`Kubeconfig`], as the
    /// server's `admin.kubeconfig` is.
    pub fn kubeconfig(&self) -> String {
        let name = self.name();
        let trust = match self.tls {
            Tls::CertificateAuthority(pem) => ServerTrust::CertificateAuthority(pem.clone()),
            Tls::Insecure => ServerTrust::Insecure,
            Tls::System => ServerTrust::System,
        };
        let config = Kubeconfig {
            cluster: name.clone(),
            server: self.address.to_owned(),
            trust,
            user: name.clone(),
            credential: Credential::Token(self.token.to_owned()),
            context: name,
            namespace: Some(self.namespace().to_owned()),
        };
        crate::yaml::to_string(&config.to_value())
    }

    /// `KARGO_API_ADDRESS=...`, `KARGO_API_TOKEN=...` and the certificate line, one
    /// `NAME=value` a line, each value a single shell word (quoted when it has to be), so the
    /// text can be sourced by a shell or kept as a CI job's variables. The certificate line
    /// is `KARGO_CERTIFICATE_AUTHORITY=<base64 of the CA's PEM>` (the variable takes a file,
    /// the PEM or its base64), `KARGO_INSECURE_SKIP_TLS_VERIFY=true` when the CLI does not
    /// check the certificate, and absent when it trusts the system's roots.
    pub fn env_lines(&self) -> String {
        let certificate = match self.tls {
            Tls::CertificateAuthority(pem) => Some(("KARGO_CERTIFICATE_AUTHORITY", base64(pem))),
            Tls::Insecure => Some(("KARGO_INSECURE_SKIP_TLS_VERIFY", "true".to_owned())),
            Tls::System => None,
        };
        [
            Some(("KARGO_API_ADDRESS", self.address.to_owned())),
            Some(("KARGO_API_TOKEN", self.token.to_owned())),
            certificate,
        ]
        .into_iter()
        .flatten()
        .map(|(name, value)| format!("{name}={}\n", shell_word(&value)))
        .collect()
    }
}

fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// `value` as one POSIX shell word: as it is when every character is one the shell takes
/// literally (letters, digits and `_ - . / : @ % + = ,`), else in single quotes, a `'` inside
/// written `'\''`.
fn shell_word(value: &str) -> Cow<'_, str> {
    let literal = |c: char| c.is_ascii_alphanumeric() || "_-./:@%+=,".contains(c);
    if !value.is_empty() && value.chars().all(literal) {
        Cow::Borrowed(value)
    } else {
        Cow::Owned(format!("'{}'", value.replace('\'', r"'\''")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEM: &[u8] = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    fn access<'a>(scope: &'a Scope, tls: &'a Tls) -> TokenAccess<'a> {
        TokenAccess {
            address: "https://127.0.0.1:8443",
            tls,
            scope,
            service_account: "ci",
            token: "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln-_",
        }
    }

    #[test]
    fn the_kubeconfig_has_one_cluster_user_and_current_context_in_the_project() {
        let project = Scope::Project("my-project".to_owned());
        let tls = Tls::CertificateAuthority(PEM.to_vec());
        assert_eq!(
            access(&project, &tls).kubeconfig(),
            format!(
                "apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: {}
    server: https://127.0.0.1:8443
  name: my-project-ci
contexts:
- context:
    cluster: my-project-ci
    namespace: my-project
    user: my-project-ci
  name: my-project-ci
current-context: my-project-ci
kind: Config
users:
- name: my-project-ci
  user:
    token: eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln-_
",
                base64(PEM)
            )
        );
    }

    #[test]
    fn the_kubeconfig_follows_the_clis_certificate_checking() {
        let system = Scope::System;
        let insecure = access(&system, &Tls::Insecure).kubeconfig();
        assert!(
            insecure.contains("    insecure-skip-tls-verify: true\n    server: https://"),
            "{insecure}"
        );
        assert!(
            insecure.contains("    namespace: kargo\n") && insecure.contains("  name: system-ci\n"),
            "{insecure}"
        );
        let roots = access(&system, &Tls::System).kubeconfig();
        assert!(
            !roots.contains("certificate-authority") && !roots.contains("insecure"),
            "{roots}"
        );
    }

    #[test]
    fn a_project_that_yaml_would_read_as_a_number_stays_a_string() {
        let project = Scope::Project("123".to_owned());
        let text = access(&project, &Tls::System).kubeconfig();
        assert!(text.contains("    namespace: \"123\"\n"), "{text}");
    }

    #[test]
    fn env_prints_the_variables_the_cli_reads() {
        let project = Scope::Project("p".to_owned());
        let tls = Tls::CertificateAuthority(PEM.to_vec());
        assert_eq!(
            access(&project, &tls).env_lines(),
            format!(
                "KARGO_API_ADDRESS=https://127.0.0.1:8443\nKARGO_API_TOKEN=eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln-_\nKARGO_CERTIFICATE_AUTHORITY={}\n",
                base64(PEM)
            )
        );
        assert!(
            access(&project, &Tls::Insecure)
                .env_lines()
                .ends_with("\nKARGO_INSECURE_SKIP_TLS_VERIFY=true\n")
        );
        assert_eq!(
            access(&project, &Tls::System).env_lines().lines().count(),
            2
        );
    }

    #[test]
    fn values_are_single_shell_words() {
        let cases = [
            ("https://h:1/x", "https://h:1/x"),
            ("LS0t+/==", "LS0t+/=="),
            ("", "''"),
            ("a b", "'a b'"),
            ("$HOME", "'$HOME'"),
            ("it's", r"'it'\''s'"),
            ("a\nb", "'a\nb'"),
        ];
        for (value, expected) in cases {
            assert_eq!(shell_word(value), expected, "{value:?}");
        }
    }
}

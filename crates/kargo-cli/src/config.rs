//! The CLI's configuration file and environment.
//!
//! The file is `$XDG_CONFIG_HOME/kargo/config` (by default `~/.config/kargo/config`), YAML, mode
//! 0600:
//!
//! ```yaml
//! apiAddress: https://127.0.0.1:8443
//! authMethod: admin                           # or sso
//! bearerToken: eyJhbGciOi...
//! callbackPort: 8085                            # sso: the --port of the sign-in callback
//! certificateAuthorityData: LS0tLS1CRUdJTi...   # base64 of the CA's PEM, when logged in with one
//! certificateAuthority: /path/ca.crt            # or a PEM file instead (relative: to this file)
//! insecureSkipTLSVerify: false
//! project: my-project
//! refreshToken: ...                              # sso: redeemed when the ID token expires
//! ```
//!
//! `kargo login` writes it (`kargo login URL --token T` for a ServiceAccount token), `kargo
//! logout` removes it, `kargo config set-project` edits it. A CI job may write `bearerToken`
//! itself (a ServiceAccount token), or set `KARGO_API_ADDRESS` and
//! `KARGO_API_TOKEN` (with `KARGO_CERTIFICATE_AUTHORITY` or `KARGO_INSECURE_SKIP_TLS_VERIFY`),
//! which then take the place of the file's connection settings.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::client::{Connection, Tls};
use kargo_api::kargo::REDACTED;

/// Reading, parsing or writing the configuration file failed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Neither `XDG_CONFIG_HOME` nor `HOME` is set.
    #[error("cannot locate the configuration file: neither XDG_CONFIG_HOME nor HOME is set")]
    NoHome,
    /// The file exists but cannot be read.
    #[error("cannot read the configuration file {path}: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The file is not valid YAML for the configuration.
    #[error("cannot parse the configuration file {path}: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        reason: String,
    },
    /// The file or its directory cannot be written or removed.
    #[error("cannot write the configuration file {path}: {reason}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A certificate authority file cannot be read.
    #[error("cannot read the certificate authority file {path}: {reason}")]
    CertificateAuthority {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A boolean environment variable has another value.
    #[error("invalid value {value:?} for {name}: use true or false (or 1 or 0)")]
    Boolean {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
    },
    /// `KARGO_CERTIFICATE_AUTHORITY` looks like base64 of a PEM but is not base64.
    #[error("invalid KARGO_CERTIFICATE_AUTHORITY: the base64 of a PEM does not decode: {reason}")]
    CertificateAuthorityVariable {
        /// The decoder's message.
        reason: String,
    },
    /// `certificateAuthorityData` is not base64.
    #[error("the configuration file {path} has an invalid certificateAuthorityData: {reason}")]
    CertificateAuthorityData {
        /// The file.
        path: PathBuf,
        /// The decoder's message.
        reason: String,
    },
}

/// The configuration file's contents.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CliConfig {
    /// The API server's address, `https://host:port`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_address: String,
    /// How the token was obtained (`admin` or `sso`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub auth_method: String,
    /// Sent as `Authorization: Bearer <token>`: the admin's token or the ID token from
    /// `kargo login`, or a ServiceAccount token put here by hand.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub bearer_token: String,
    /// The port of the local sign-in callback (`kargo login --sso --port N`), reused by a
    /// later `kargo login` without flags.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub callback_port: u16,
    /// A PEM file with the CA that signed the server's certificate (relative to the
    /// configuration file's directory), instead of `certificateAuthorityData`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub certificate_authority: String,
    /// Base64 of the PEM of the CA that signed the server's certificate.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub certificate_authority_data: String,
    /// Skip verification of the server's certificate.
    #[serde(
        default,
        rename = "insecureSkipTLSVerify",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub insecure_skip_tls_verify: bool,
    /// The default project of commands given no `--project`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub project: String,
    /// The OpenID provider's refresh token (`kargo login --sso`), redeemed for a new ID token
    /// when `bearerToken` has expired.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub refresh_token: String,
    /// The file holding the CI job's own OIDC token (`kargo login --federated-token-file`),
    /// exchanged again for a new `bearerToken` when the saved one is about to expire.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub federated_token_file: String,
    /// The `scope` of the exchange (`project/<p>/serviceaccount/<name>`), when several accounts
    /// trust the job (`kargo login --federated-scope`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub federated_scope: String,
}

fn is_zero(port: &u16) -> bool {
    *port == 0
}

impl CliConfig {
    /// The configuration with secrets masked, for `kargo config view`.
    pub fn masked(&self) -> CliConfig {
        let mask = |s: &str| {
            if s.is_empty() {
                String::new()
            } else {
                REDACTED.to_owned()
            }
        };
        CliConfig {
            bearer_token: mask(&self.bearer_token),
            refresh_token: mask(&self.refresh_token),
            ..self.clone()
        }
    }

    /// The file's text: YAML with keys sorted, as `kargo config view` shows it.
    pub fn to_yaml(&self) -> String {
        let value = serde_json::to_value(self).unwrap_or_default();
        crate::yaml::to_string(&value)
    }

    /// Parses the file's text.
    pub fn from_yaml(path: &Path, text: &str) -> Result<CliConfig, ConfigError> {
        if text.trim().is_empty() {
            return Ok(CliConfig::default());
        }
        yaml_serde::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            reason: e.to_string(),
        })
    }

    /// The CA's PEM: read from the `certificateAuthority` file (a relative path is taken from
    /// the directory of the configuration file at `path`, as kubectl does for a kubeconfig), or
    /// decoded from `certificateAuthorityData`; both at once is a mistake.
    pub fn certificate_authority(&self, path: &Path) -> Result<Option<Vec<u8>>, ConfigError> {
        let file = self.certificate_authority.trim();
        let data = self.certificate_authority_data.trim();
        match (file.is_empty(), data.is_empty()) {
            (true, true) => Ok(None),
            (false, false) => Err(ConfigError::CertificateAuthorityData {
                path: path.to_owned(),
                reason: "certificateAuthority is set too; keep only one of them".to_owned(),
            }),
            (false, true) => {
                let dir = path.parent().unwrap_or(Path::new("."));
                read_ca(&dir.join(file)).map(Some)
            }
            (true, false) => base64::engine::general_purpose::STANDARD
                .decode(data)
                .map(Some)
                .map_err(|e| ConfigError::CertificateAuthorityData {
                    path: path.to_owned(),
                    reason: e.to_string(),
                }),
        }
    }

    /// Stores a CA's PEM in `certificateAuthorityData` (in place of any `certificateAuthority`).
    pub fn set_certificate_authority(&mut self, pem: &[u8]) {
        self.certificate_authority.clear();
        self.certificate_authority_data = base64::engine::general_purpose::STANDARD.encode(pem);
    }

    /// Forgets the CA (`certificateAuthority` and `certificateAuthorityData`).
    pub fn clear_certificate_authority(&mut self) {
        self.certificate_authority.clear();
        self.certificate_authority_data.clear();
    }
}

/// The environment variables the CLI reads, read once at start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environment {
    /// `XDG_CONFIG_HOME`.
    pub xdg_config_home: Option<String>,
    /// `HOME`.
    pub home: Option<String>,
    /// `KARGO_API_ADDRESS`.
    pub api_address: Option<String>,
    /// `KARGO_API_TOKEN`.
    pub api_token: Option<String>,
    /// `KARGO_INSECURE_SKIP_TLS_VERIFY` (`true` or `1` to skip).
    pub insecure_skip_tls_verify: bool,
    /// `KARGO_CERTIFICATE_AUTHORITY`: a PEM file, the PEM itself, or its base64 (as a
    /// kubeconfig's `certificate-authority-data`); see [`ca_from_env`].
    pub certificate_authority: Option<String>,
    /// `KARGO_OIDC_CA_FILE`: a PEM file of CAs trusted, besides the system's roots and the
    /// server's CA, for the OpenID provider (`kargo login --sso` and token refresh).
    pub oidc_ca_file: Option<String>,
    /// `KARGO_SSO_NO_BROWSER` (`1` or `true`): `kargo login --sso` only prints the URL.
    pub sso_no_browser: bool,
    /// `KARGO_FEDERATED_TOKEN`: the CI job's own OIDC token, exchanged for a ServiceAccount
    /// token (`kargo login` with it, and again before a command when that token nears expiry).
    pub federated_token: Option<String>,
}

impl Environment {
    /// Reads the process environment; empty values count as unset.
    pub fn from_process() -> Result<Environment, ConfigError> {
        Environment::from_vars(|name| std::env::var(name).ok())
    }

    /// Reads the variables through `var`; empty values count as unset, and a boolean that is
    /// not `true`, `false`, `1` or `0` (any case) is an error naming the variable, rather than
    /// quietly false (`KARGO_INSECURE_SKIP_TLS_VERIFY=yes` must not check certificates after all
    /// without a word).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Environment, ConfigError> {
        let var = |name: &str| var(name).filter(|v| !v.is_empty());
        let flag = |name: &'static str| match var(name) {
            None => Ok(false),
            Some(value) => parse_bool(name, &value),
        };
        Ok(Environment {
            xdg_config_home: var("XDG_CONFIG_HOME"),
            home: var("HOME"),
            api_address: var("KARGO_API_ADDRESS"),
            api_token: var("KARGO_API_TOKEN"),
            insecure_skip_tls_verify: flag("KARGO_INSECURE_SKIP_TLS_VERIFY")?,
            certificate_authority: var("KARGO_CERTIFICATE_AUTHORITY"),
            oidc_ca_file: var("KARGO_OIDC_CA_FILE"),
            sso_no_browser: flag("KARGO_SSO_NO_BROWSER")?,
            federated_token: var("KARGO_FEDERATED_TOKEN"),
        })
    }

    /// `$XDG_CONFIG_HOME/kargo/config`, else `$HOME/.config/kargo/config`.
    pub fn config_path(&self) -> Result<PathBuf, ConfigError> {
        let base = match (&self.xdg_config_home, &self.home) {
            (Some(xdg), _) => PathBuf::from(xdg),
            (None, Some(home)) => Path::new(home).join(".config"),
            (None, None) => return Err(ConfigError::NoHome),
        };
        Ok(base.join("kargo").join("config"))
    }

    /// Whether `KARGO_API_ADDRESS` and `KARGO_API_TOKEN` replace the file's connection.
    pub fn replaces_the_file(&self) -> bool {
        self.api_credentials().is_some()
    }

    /// Both `KARGO_API_ADDRESS` and `KARGO_API_TOKEN`, when both are set.
    fn api_credentials(&self) -> Option<(&str, &str)> {
        Some((self.api_address.as_deref()?, self.api_token.as_deref()?))
    }
}

/// A boolean environment variable: `true`/`1` or `false`/`0`, in any case.
fn parse_bool(name: &'static str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(ConfigError::Boolean {
            name,
            value: value.to_owned(),
        }),
    }
}

/// The configuration file at a known path.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    /// Where it lives.
    pub path: PathBuf,
    /// Its contents (default when the file does not exist).
    pub config: CliConfig,
}

impl ConfigFile {
    /// Reads the file; a missing file is an empty configuration.
    pub fn load(path: PathBuf) -> Result<ConfigFile, ConfigError> {
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(ConfigFile {
                config: CliConfig::from_yaml(&path, &text)?,
                path,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ConfigFile {
                path,
                config: CliConfig::default(),
            }),
            Err(e) => Err(ConfigError::Read {
                path,
                reason: io_reason(&e),
            }),
        }
    }

    /// Writes the file with mode 0600 (its directory 0700 when created), replacing it atomically.
    pub fn save(&self) -> Result<(), ConfigError> {
        let fail = |e: std::io::Error| ConfigError::Write {
            path: self.path.clone(),
            reason: io_reason(&e),
        };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        create_private_dir(dir).map_err(fail)?;
        let tmp = dir.join(".config.tmp");
        let mut file = private_file(&tmp).map_err(fail)?;
        file.write_all(self.config.to_yaml().as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(fail)?;
        std::fs::rename(&tmp, &self.path).map_err(fail)
    }

    /// Removes the file; a missing file is fine.
    pub fn remove(&self) -> Result<(), ConfigError> {
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(ConfigError::Write {
                path: self.path.clone(),
                reason: io_reason(&e),
            }),
            _ => Ok(()),
        }
    }

    /// The project of a command: `--project` when given, else the configured default.
    pub fn project(&self, flag: Option<&str>) -> Option<String> {
        flag.map(str::to_owned)
            .or_else(|| Some(self.config.project.clone()))
            .filter(|p| !p.is_empty())
    }

    /// Whether there is a server and a token to use: `KARGO_API_ADDRESS` + `KARGO_API_TOKEN`,
    /// or the file's `apiAddress` + `bearerToken`.
    pub fn has_login(&self, env: &Environment) -> bool {
        env.replaces_the_file()
            || !(self.config.api_address.trim().is_empty()
                || self.config.bearer_token.trim().is_empty())
    }

    /// Where and how to reach the API server: `KARGO_API_ADDRESS` + `KARGO_API_TOKEN` when both
    /// are set, else the file's `apiAddress` + `bearerToken`; `None` when neither is complete.
    pub fn connection(
        &self,
        env: &Environment,
        insecure_flag: bool,
    ) -> Result<Option<Connection>, ConfigError> {
        if let Some((address, token)) = env.api_credentials() {
            let insecure = insecure_flag || env.insecure_skip_tls_verify;
            let tls = match (&env.certificate_authority, insecure) {
                (_, true) => Tls::Insecure,
                (Some(value), false) => Tls::CertificateAuthority(ca_from_env(value)?),
                (None, false) => Tls::System,
            };
            return Ok(Some(Connection {
                address: normalize_address(address),
                token: Some(token.to_owned()),
                tls,
            }));
        }
        let config = &self.config;
        if config.api_address.is_empty() || config.bearer_token.is_empty() {
            return Ok(None);
        }
        Ok(Some(Connection {
            address: normalize_address(&config.api_address),
            token: Some(config.bearer_token.trim().to_owned()),
            tls: self.tls(insecure_flag)?,
        }))
    }

    /// The file's TLS settings (or insecure, when the flag says so).
    pub fn tls(&self, insecure_flag: bool) -> Result<Tls, ConfigError> {
        if insecure_flag || self.config.insecure_skip_tls_verify {
            return Ok(Tls::Insecure);
        }
        Ok(match self.config.certificate_authority(&self.path)? {
            Some(pem) => Tls::CertificateAuthority(pem),
            None => Tls::System,
        })
    }
}

/// `https://` unless the address names a scheme; no trailing slash.
pub fn normalize_address(address: &str) -> String {
    let address = address.trim();
    let with_scheme = if address.contains("://") {
        address.to_owned()
    } else {
        format!("https://{address}")
    };
    with_scheme.trim_end_matches('/').to_owned()
}

/// The start of a PEM block.
const PEM_BEGIN: &str = "-----BEGIN";
/// The start of the base64 of a PEM block (`-----BEGIN` encoded).
const PEM_BEGIN_BASE64: &str = "LS0tLS1CRUdJTi";

/// The CA of `KARGO_CERTIFICATE_AUTHORITY`: the PEM itself when the value starts with
/// `-----BEGIN`, the base64 of a PEM when it starts with that prefix's base64 (`LS0tLS1CRUdJTi`,
/// what `kargo create serviceaccounttoken -o env` prints, one line a CI variable holds), else
/// the path of a PEM file. No file name starts with either prefix in practice, and a CA that is
/// not a certificate is refused later by the client.
pub fn ca_from_env(value: &str) -> Result<Vec<u8>, ConfigError> {
    let value = value.trim();
    if value.starts_with(PEM_BEGIN) {
        return Ok(value.as_bytes().to_vec());
    }
    if value.starts_with(PEM_BEGIN_BASE64) {
        return base64::engine::general_purpose::STANDARD
            .decode(value)
            .map_err(|e| ConfigError::CertificateAuthorityVariable {
                reason: e.to_string(),
            });
    }
    read_ca(Path::new(value))
}

/// Reads a CA file.
pub fn read_ca(path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|e| ConfigError::CertificateAuthority {
        path: path.to_owned(),
        reason: io_reason(&e),
    })
}

/// An IO error's message without Rust's `(os error N)` suffix.
pub(crate) fn io_reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(unix)]
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // A leftover temporary file keeps its old mode: set it again.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(file)
}

#[cfg(not(unix))]
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::create(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn try_env(pairs: &[(&str, &str)]) -> Result<Environment, String> {
        Environment::from_vars(|k: &str| {
            pairs
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| (*v).to_owned())
        })
        .map_err(|e| e.to_string())
    }

    fn env(pairs: &[(&str, &str)]) -> Environment {
        try_env(pairs).unwrap()
    }

    #[test]
    fn booleans_in_the_environment_are_true_false_1_or_0_and_nothing_else() {
        let insecure = |v: &str| {
            try_env(&[("KARGO_INSECURE_SKIP_TLS_VERIFY", v)]).map(|e| e.insecure_skip_tls_verify)
        };
        for (value, expected) in [
            ("true", true),
            ("TRUE", true),
            ("1", true),
            ("false", false),
            ("0", false),
            ("", false),
        ] {
            assert_eq!(insecure(value), Ok(expected), "{value:?}");
        }
        assert_eq!(
            insecure("yes"),
            Err("invalid value \"yes\" for KARGO_INSECURE_SKIP_TLS_VERIFY: use true or false (or 1 or 0)".to_owned())
        );
        assert_eq!(
            try_env(&[("KARGO_SSO_NO_BROWSER", "on")]).map(|e| e.sso_no_browser),
            Err(
                "invalid value \"on\" for KARGO_SSO_NO_BROWSER: use true or false (or 1 or 0)"
                    .to_owned()
            )
        );
    }

    fn file(config: CliConfig) -> ConfigFile {
        ConfigFile {
            path: PathBuf::from("/nonexistent/kargo/config"),
            config,
        }
    }

    #[test]
    fn addresses_default_to_https_and_lose_trailing_slashes() {
        let cases = [
            ("kargo.example.com", "https://kargo.example.com"),
            ("127.0.0.1:8443/", "https://127.0.0.1:8443"),
            (" https://a:1 ", "https://a:1"),
            ("http://a", "http://a"),
        ];
        for (input, expected) in cases {
            assert_eq!(normalize_address(input), expected, "{input}");
        }
    }

    #[test]
    fn the_file_lives_under_xdg_config_home_else_home() {
        let cases = [
            (
                env(&[("XDG_CONFIG_HOME", "/x"), ("HOME", "/h")]),
                Some("/x/kargo/config"),
            ),
            (env(&[("HOME", "/h")]), Some("/h/.config/kargo/config")),
            (env(&[]), None),
        ];
        for (env, expected) in cases {
            assert_eq!(
                env.config_path().ok(),
                expected.map(PathBuf::from),
                "{env:?}"
            );
        }
    }

    #[test]
    fn the_file_is_sorted_yaml_without_empty_fields() {
        let config = CliConfig {
            api_address: "https://127.0.0.1:8443".into(),
            auth_method: "sso".into(),
            bearer_token: "tok".into(),
            callback_port: 8085,
            certificate_authority: String::new(),
            certificate_authority_data: String::new(),
            insecure_skip_tls_verify: true,
            project: "my-project".into(),
            refresh_token: "ref".into(),
            ..CliConfig::default()
        };
        assert_eq!(
            config.to_yaml(),
            "apiAddress: https://127.0.0.1:8443\nauthMethod: sso\nbearerToken: tok\ncallbackPort: 8085\ninsecureSkipTLSVerify: true\nproject: my-project\nrefreshToken: ref\n"
        );
        assert_eq!(CliConfig::default().to_yaml(), "{}\n");
        let path = Path::new("c");
        assert_eq!(
            CliConfig::from_yaml(path, &config.to_yaml()).unwrap(),
            config
        );
    }

    #[test]
    fn view_masks_the_token_only_when_there_is_one() {
        let config = CliConfig {
            api_address: "https://a".into(),
            bearer_token: "secret".into(),
            refresh_token: "also secret".into(),
            ..CliConfig::default()
        };
        assert_eq!(
            config.masked().to_yaml(),
            "apiAddress: https://a\nbearerToken: '*** REDACTED ***'\nrefreshToken: '*** REDACTED ***'\n"
        );
        assert_eq!(
            CliConfig::default().masked(),
            CliConfig::default(),
            "nothing to mask"
        );
    }

    #[test]
    fn hand_written_files_parse_and_unknown_fields_are_ignored() {
        let path = Path::new("/c");
        let text = "apiAddress: https://a\nbearerToken: eyJ\nrefreshToken: x\nunknown: 1\n";
        assert_eq!(
            CliConfig::from_yaml(path, text).unwrap(),
            CliConfig {
                api_address: "https://a".into(),
                bearer_token: "eyJ".into(),
                refresh_token: "x".into(),
                ..CliConfig::default()
            }
        );
        assert_eq!(
            CliConfig::from_yaml(path, "").unwrap(),
            CliConfig::default()
        );
        let err = CliConfig::from_yaml(path, "apiAddress: [1").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot parse the configuration file /c: "),
            "{err}"
        );
    }

    #[test]
    fn the_environment_replaces_the_files_connection_only_when_complete() {
        let logged_in = file(CliConfig {
            api_address: "https://file/".into(),
            bearer_token: "file-token".into(),
            ..CliConfig::default()
        });
        let connection = |f: &ConfigFile, e: &Environment| {
            f.connection(e, false)
                .unwrap()
                .map(|c| (c.address, c.token.unwrap_or_default(), c.tls))
        };
        let full = env(&[
            ("KARGO_API_ADDRESS", "https://env"),
            ("KARGO_API_TOKEN", "env-token"),
            ("KARGO_INSECURE_SKIP_TLS_VERIFY", "true"),
        ]);
        assert_eq!(
            connection(&logged_in, &full),
            Some(("https://env".into(), "env-token".into(), Tls::Insecure))
        );
        let half = env(&[("KARGO_API_TOKEN", "env-token")]);
        assert_eq!(
            connection(&logged_in, &half),
            Some(("https://file".into(), "file-token".into(), Tls::System))
        );
        let empty = file(CliConfig::default());
        assert_eq!(connection(&empty, &half), None);
        assert_eq!(
            connection(&empty, &full).map(|c| c.0),
            Some("https://env".into())
        );
    }

    #[test]
    fn the_project_flag_wins_over_the_default() {
        let f = file(CliConfig {
            project: "default-project".into(),
            ..CliConfig::default()
        });
        assert_eq!(f.project(Some("p")), Some("p".into()));
        assert_eq!(f.project(None), Some("default-project".into()));
        assert_eq!(file(CliConfig::default()).project(None), None);
    }

    #[test]
    fn save_writes_mode_0600_and_remove_tolerates_a_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kargo").join("config");
        let f = ConfigFile {
            path: path.clone(),
            config: CliConfig {
                project: "p".into(),
                ..CliConfig::default()
            },
        };
        f.save().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "project: p\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let loaded = ConfigFile::load(path.clone()).unwrap();
        assert_eq!(loaded.config.project, "p");
        loaded.remove().unwrap();
        loaded.remove().unwrap();
        assert!(!path.exists());
        assert_eq!(ConfigFile::load(path).unwrap().config, CliConfig::default());
    }

    #[test]
    fn the_ca_variable_is_a_file_the_pem_or_its_base64() {
        let dir = tempfile::tempdir().unwrap();
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let file = dir.path().join("ca.crt");
        std::fs::write(&file, pem).unwrap();
        let base64 = base64::engine::general_purpose::STANDARD.encode(pem);
        assert!(base64.starts_with(PEM_BEGIN_BASE64), "{base64}");
        for value in [file.display().to_string(), pem.to_owned(), base64] {
            // A PEM pasted into a variable may lose its last newline; the parser does not mind.
            let ca = ca_from_env(&value).unwrap();
            assert_eq!(ca.trim_ascii_end(), pem.trim_end().as_bytes(), "{value}");
        }
        assert_eq!(
            ca_from_env("LS0tLS1CRUdJTi!").unwrap_err().to_string(),
            "invalid KARGO_CERTIFICATE_AUTHORITY: the base64 of a PEM does not decode: Invalid symbol 33, offset 14."
        );
        assert_eq!(
            ca_from_env("/nonexistent/ca.crt").unwrap_err().to_string(),
            "cannot read the certificate authority file /nonexistent/ca.crt: No such file or directory"
        );
    }

    #[test]
    fn certificate_authority_data_round_trips() {
        let mut config = CliConfig::default();
        config.set_certificate_authority(b"-----BEGIN CERTIFICATE-----\n");
        let path = Path::new("/c");
        assert_eq!(
            config.certificate_authority(path).unwrap(),
            Some(b"-----BEGIN CERTIFICATE-----\n".to_vec())
        );
        config.certificate_authority_data = "not base64!".into();
        assert!(config.certificate_authority(path).is_err());
    }

    #[test]
    fn certificate_authority_is_a_file_relative_to_the_configuration() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.crt"), "PEM").unwrap();
        let path = dir.path().join("config");
        let mut config = CliConfig::from_yaml(&path, "certificateAuthority: ca.crt\n").unwrap();
        assert_eq!(
            config.certificate_authority(&path).unwrap(),
            Some(b"PEM".to_vec())
        );
        let absolute = dir.path().join("ca.crt").display().to_string();
        config.certificate_authority = absolute.clone();
        assert_eq!(
            config.certificate_authority(&path).unwrap(),
            Some(b"PEM".to_vec())
        );
        config.certificate_authority = "missing.crt".into();
        assert_eq!(
            config.certificate_authority(&path).unwrap_err().to_string(),
            format!(
                "cannot read the certificate authority file {}: No such file or directory",
                dir.path().join("missing.crt").display()
            )
        );
        config.certificate_authority = absolute;
        config.certificate_authority_data = "UEVN".into();
        assert_eq!(
            config.certificate_authority(&path).unwrap_err().to_string(),
            format!(
                "the configuration file {} has an invalid certificateAuthorityData: certificateAuthority is set too; keep only one of them",
                path.display()
            )
        );
        config.set_certificate_authority(b"PEM");
        assert_eq!(config.certificate_authority, "");
    }
}

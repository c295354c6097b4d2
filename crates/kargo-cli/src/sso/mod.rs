//! Single sign-on: `kargo login --sso` (OpenID Connect authorization code flow with PKCE S256,
//! as a public client, through the person's browser) and the refresh of an expired ID token.
//!
//! Hand-written on reqwest (which the CLI already uses) rather than the `openidconnect` crate:
//! the CLI needs discovery, one URL, one local callback and two form POSTs; it does not verify
//! the ID token (the server does, and the CLI received it straight from the provider's token
//! endpoint over verified TLS), so the crate's JOSE stack, its own HTTP client abstraction and
//! a second TLS configuration would add weight and nothing the flow uses.
//!
//! [`pkce`] makes the verifier, challenge and state; [`provider`] talks to the provider;
//! [`callback`] is the local redirect target; [`refresh`] decides what to do with a saved token.

pub mod callback;
pub mod pkce;
pub mod provider;
pub mod refresh;

use std::net::TcpListener;
use std::time::Duration;

pub use callback::CallbackError;
pub use provider::{OidcConfig, Provider, ProviderTls, Tokens};

/// How long `kargo login --sso` waits for the browser to come back.
pub const TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// The line prefix of the authorization URL on stderr (a test's scripted user agent reads it).
pub const URL_PREFIX: &str = "Open this URL: ";

/// Signing in failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SsoError {
    /// The server has no OIDC configuration (upstream's words).
    #[error("server does not support OpenID Connect")]
    NotSupported,
    /// The provider could not be reached (connection, TLS, timeout).
    #[error("cannot reach the OpenID provider at {url}: {reason}")]
    Unreachable {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// Discovery answered, but not a usable document.
    #[error("invalid discovery document of the OpenID provider {issuer}: {reason}")]
    Discovery {
        /// The issuer.
        issuer: String,
        /// What is wrong.
        reason: String,
    },
    /// A trusted CA (the server's, or `KARGO_OIDC_CA_FILE`) is not PEM.
    #[error("invalid certificate authority for the OpenID provider: {reason}")]
    CertificateAuthority {
        /// Why.
        reason: String,
    },
    /// The token endpoint refused.
    #[error("the OpenID provider's token endpoint refused: {reason}")]
    Token {
        /// Its `error` (and `error_description`).
        reason: String,
    },
    /// The ID token is not for this issuer and client.
    #[error("the ID token from the OpenID provider {reason}")]
    IdToken {
        /// What is wrong.
        reason: String,
    },
    /// The local callback.
    #[error(transparent)]
    Callback(#[from] CallbackError),
    /// The callback port cannot be listened on.
    #[error("cannot listen on 127.0.0.1:{port} for the sign-in callback: {reason}")]
    Listen {
        /// The port.
        port: u16,
        /// Why.
        reason: String,
    },
}

/// A sign-in under way: the browser is to open [`SignIn::url`]; [`SignIn::finish`] waits for
/// it to come back and redeems the code.
pub struct SignIn {
    /// The authorization URL.
    pub url: String,
    provider: Provider,
    discovery: provider::Discovery,
    config: OidcConfig,
    listener: TcpListener,
    redirect_uri: String,
    state: String,
    verifier: String,
}

impl SignIn {
    /// Discovers the provider, listens on `127.0.0.1:<port>` (0: any free port) and builds the
    /// authorization URL.
    pub fn start(config: OidcConfig, tls: &ProviderTls, port: u16) -> Result<SignIn, SsoError> {
        let provider = Provider::new(&config.issuer_url, tls)?;
        let discovery = provider.discover()?;
        let listen_error = |e: std::io::Error| SsoError::Listen {
            port,
            reason: crate::config::io_reason(&e),
        };
        let listener = TcpListener::bind(("127.0.0.1", port)).map_err(listen_error)?;
        let port = listener.local_addr().map_err(listen_error)?.port();
        let redirect_uri = callback::redirect_uri(port);
        let state = pkce::state();
        let verifier = pkce::verifier();
        let url = provider::authorization_url(
            &discovery,
            &config.client_id,
            &redirect_uri,
            &discovery.scopes(&config),
            &state,
            &pkce::challenge(&verifier),
        )?;
        Ok(SignIn {
            url,
            provider,
            discovery,
            config,
            listener,
            redirect_uri,
            state,
            verifier,
        })
    }

    /// Waits up to `timeout` for the callback, then redeems its code for tokens.
    pub fn finish(self, timeout: Duration) -> Result<Tokens, SsoError> {
        let code = callback::wait(&self.listener, &self.state, timeout)?;
        drop(self.listener);
        let tokens = self.provider.exchange_code(
            &self.discovery,
            &self.config.client_id,
            &code,
            &self.redirect_uri,
            &self.verifier,
        )?;
        check_id_token(&tokens.id_token, &self.config)?;
        Ok(tokens)
    }
}

/// Redeems a refresh token for new tokens.
pub fn redeem(
    config: &OidcConfig,
    tls: &ProviderTls,
    refresh_token: &str,
) -> Result<Tokens, SsoError> {
    let provider = Provider::new(&config.issuer_url, tls)?;
    let discovery = provider.discover()?;
    let tokens = provider.refresh(&discovery, &config.client_id, refresh_token)?;
    check_id_token(&tokens.id_token, config)?;
    Ok(tokens)
}

/// A sanity check of a token the CLI received itself (not a verification: the server verifies):
/// a JWT from the configured issuer for the CLI's client, so a misconfigured provider is named
/// here rather than by a 401 on the next command.
fn check_id_token(token: &str, config: &OidcConfig) -> Result<(), SsoError> {
    let bad = |reason: String| Err(SsoError::IdToken { reason });
    let Some(claims) = refresh::claims(token) else {
        return bad("is not a JWT".to_owned());
    };
    let iss = claims
        .get("iss")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("");
    if iss.trim_end_matches('/') != config.issuer_url.trim_end_matches('/') {
        return bad(format!(
            "was issued by {iss:?}, not {:?}",
            config.issuer_url
        ));
    }
    let audience_ok = match claims.get("aud") {
        Some(serde_json::Value::String(aud)) => *aud == config.client_id,
        Some(serde_json::Value::Array(auds)) => auds.iter().any(|a| *a == *config.client_id),
        _ => false,
    };
    if !audience_ok {
        return bad(format!("is not for the client {:?}", config.client_id));
    }
    Ok(())
}

/// Opens the URL in the person's browser (`xdg-open`, or `open` on macOS) when there is one;
/// never fails (the URL is printed anyway).
pub fn open_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let child = std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if let Ok(mut child) = child {
        // Reaped in the background, so it never lingers as a zombie while we wait.
        std::thread::spawn(move || child.wait());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use refresh::tests::jwt;
    use serde_json::json;

    #[test]
    fn an_id_token_must_be_the_issuers_for_this_client() {
        let config = OidcConfig {
            issuer_url: "https://idp".into(),
            client_id: "kargo-cli".into(),
            scopes: vec!["openid".into()],
        };
        let check = |claims: serde_json::Value| {
            check_id_token(&jwt(&claims), &config).map_err(|e| e.to_string())
        };
        assert_eq!(
            check(json!({"iss": "https://idp", "aud": "kargo-cli"})),
            Ok(())
        );
        assert_eq!(
            check(json!({"iss": "https://idp/", "aud": ["x", "kargo-cli"]})),
            Ok(())
        );
        assert_eq!(
            check(json!({"iss": "https://evil", "aud": "kargo-cli"})),
            Err("the ID token from the OpenID provider was issued by \"https://evil\", not \"https://idp\"".into())
        );
        assert_eq!(
            check(json!({"iss": "https://idp", "aud": "kargo"})),
            Err("the ID token from the OpenID provider is not for the client \"kargo-cli\"".into())
        );
        assert_eq!(
            check_id_token("opaque", &config).map_err(|e| e.to_string()),
            Err("the ID token from the OpenID provider is not a JWT".into())
        );
    }
}

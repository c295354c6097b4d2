//! The OpenID provider, over HTTPS: the Kargo server's `oidcConfig`, discovery
//! (`/.well-known/openid-configuration`) and the token endpoint (authorization-code and
//! refresh-token grants of a public client).

use std::time::Duration;

use serde_json::Value;

use super::SsoError;

/// The server's `oidcConfig` (`GET /v1beta1/system/public-server-config`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcConfig {
    /// `issuerUrl`.
    pub issuer_url: String,
    /// The client the CLI signs in as: `cliClientId` when set, else `clientId`.
    pub client_id: String,
    /// `scopes` (`openid` added first when missing).
    pub scopes: Vec<String>,
}

impl OidcConfig {
    /// Reads the `oidcConfig` of a public server configuration.
    pub fn from_public_config(public: &Value) -> Result<OidcConfig, SsoError> {
        let oidc = public.get("oidcConfig").filter(|o| o.is_object());
        let text = |key: &str| {
            oidc.and_then(|o| o.get(key))
                .and_then(Value::as_str)
                .map(str::trim)
                .unwrap_or("")
                .to_owned()
        };
        let issuer_url = text("issuerUrl");
        let client_id = Some(text("cliClientId"))
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| text("clientId"));
        if issuer_url.is_empty() || client_id.is_empty() {
            return Err(SsoError::NotSupported);
        }
        let mut scopes: Vec<String> = oidc
            .and_then(|o| o.get("scopes"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        if !scopes.iter().any(|s| s == "openid") {
            scopes.insert(0, "openid".to_owned());
        }
        Ok(OidcConfig {
            issuer_url,
            client_id,
            scopes,
        })
    }
}

/// What discovery says about the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    /// `authorization_endpoint`.
    pub authorization_endpoint: String,
    /// `token_endpoint`.
    pub token_endpoint: String,
    /// `scopes_supported` (empty when not published).
    pub scopes_supported: Vec<String>,
}

impl Discovery {
    /// Reads a discovery document, checking that it is the configured issuer's.
    pub fn parse(issuer: &str, document: &Value) -> Result<Discovery, SsoError> {
        let invalid = |reason: String| SsoError::Discovery {
            issuer: issuer.to_owned(),
            reason,
        };
        let field = |key: &str| {
            document
                .get(key)
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| invalid(format!("no {key}")))
        };
        let published = field("issuer")?;
        if published.trim_end_matches('/') != issuer.trim_end_matches('/') {
            return Err(invalid(format!(
                "it names the issuer {published:?}, not {issuer:?}"
            )));
        }
        Ok(Discovery {
            authorization_endpoint: field("authorization_endpoint")?,
            token_endpoint: field("token_endpoint")?,
            scopes_supported: document
                .get("scopes_supported")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
        })
    }

    /// The scopes to ask for: the server's, plus `offline_access` (a refresh token) when the
    /// provider supports it.
    pub fn scopes(&self, config: &OidcConfig) -> Vec<String> {
        let mut scopes = config.scopes.clone();
        let offline = "offline_access";
        if self.scopes_supported.iter().any(|s| s == offline)
            && !scopes.iter().any(|s| s == offline)
        {
            scopes.push(offline.to_owned());
        }
        scopes
    }
}

/// The tokens of a successful token request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokens {
    /// `id_token`: the bearer token for the Kargo server.
    pub id_token: String,
    /// `refresh_token`, when the provider issued one.
    pub refresh_token: Option<String>,
}

impl Tokens {
    /// Reads a token endpoint's successful answer.
    pub fn parse(answer: &Value) -> Result<Tokens, SsoError> {
        let text = |key: &str| {
            answer
                .get(key)
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        Ok(Tokens {
            id_token: text("id_token").ok_or_else(|| SsoError::Token {
                reason: "the answer has no id_token (is `openid` among the scopes?)".to_owned(),
            })?,
            refresh_token: text("refresh_token"),
        })
    }
}

/// How to check the provider's certificate.
#[derive(Debug, Clone, Default)]
pub struct ProviderTls {
    /// Extra trusted roots (PEM), on top of the system's.
    pub extra_roots: Vec<Vec<u8>>,
    /// No verification at all (`--insecure-skip-tls-verify`).
    pub insecure: bool,
}

const TIMEOUT: Duration = Duration::from_secs(30);

/// An HTTPS client of the provider.
pub struct Provider {
    runtime: tokio::runtime::Runtime,
    http: reqwest::Client,
    issuer: String,
}

impl Provider {
    /// A client of the issuer.
    pub fn new(issuer: &str, tls: &ProviderTls) -> Result<Provider, SsoError> {
        let mut builder = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("kargo/", env!("CARGO_PKG_VERSION")));
        if tls.insecure {
            builder = builder.danger_accept_invalid_certs(true);
        } else {
            let mut certs = Vec::new();
            for pem in &tls.extra_roots {
                certs.extend(reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
                    SsoError::CertificateAuthority {
                        reason: e.to_string(),
                    }
                })?);
            }
            builder = builder.tls_certs_merge(certs);
        }
        let http = builder
            .build()
            .map_err(|e| SsoError::CertificateAuthority {
                reason: crate::client::root_cause(&e),
            })?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| SsoError::Unreachable {
                url: issuer.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(Provider {
            runtime,
            http,
            issuer: issuer.trim_end_matches('/').to_owned(),
        })
    }

    /// Fetches and checks the discovery document.
    pub fn discover(&self) -> Result<Discovery, SsoError> {
        let url = format!("{}/.well-known/openid-configuration", self.issuer);
        let (status, body) = self.call(self.http.get(&url), &url)?;
        if status != 200 {
            return Err(SsoError::Discovery {
                issuer: self.issuer.clone(),
                reason: format!("{url} answered HTTP {status}"),
            });
        }
        let document = body.ok_or_else(|| SsoError::Discovery {
            issuer: self.issuer.clone(),
            reason: format!("{url} did not answer JSON"),
        })?;
        Discovery::parse(&self.issuer, &document)
    }

    /// Redeems an authorization code (with its PKCE verifier).
    pub fn exchange_code(
        &self,
        discovery: &Discovery,
        client_id: &str,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
    ) -> Result<Tokens, SsoError> {
        self.token_request(
            discovery,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", redirect_uri),
                ("client_id", client_id),
                ("code_verifier", verifier),
            ],
        )
    }

    /// Redeems a refresh token.
    pub fn refresh(
        &self,
        discovery: &Discovery,
        client_id: &str,
        refresh_token: &str,
    ) -> Result<Tokens, SsoError> {
        self.token_request(
            discovery,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
                ("client_id", client_id),
            ],
        )
    }

    fn token_request(
        &self,
        discovery: &Discovery,
        form: &[(&str, &str)],
    ) -> Result<Tokens, SsoError> {
        let url = &discovery.token_endpoint;
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let request = self
            .http
            .post(url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Accept", "application/json")
            .body(body);
        let (status, answer) = self.call(request, url)?;
        let answer = answer.unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return Tokens::parse(&answer);
        }
        // RFC 6749 5.2: {"error": "invalid_grant", "error_description": "..."}.
        let text = |key: &str| answer.get(key).and_then(Value::as_str).unwrap_or("");
        let reason = match (text("error"), text("error_description")) {
            ("", _) => format!("HTTP {status}"),
            (error, "") => error.to_owned(),
            (error, description) => format!("{error} ({description})"),
        };
        Err(SsoError::Token { reason })
    }

    /// Sends a request; the status and the body as JSON (`None` when it is not JSON).
    fn call(
        &self,
        request: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<(u16, Option<Value>), SsoError> {
        self.runtime.block_on(async {
            let unreachable = |e: &reqwest::Error| SsoError::Unreachable {
                url: url.to_owned(),
                reason: crate::client::root_cause(e),
            };
            let response = request.send().await.map_err(|e| unreachable(&e))?;
            let status = response.status().as_u16();
            let bytes = response.bytes().await.map_err(|e| unreachable(&e))?;
            Ok((status, serde_json::from_slice(&bytes).ok()))
        })
    }
}

/// The URL the person opens: the authorization endpoint with the request (code flow, PKCE S256).
pub fn authorization_url(
    discovery: &Discovery,
    client_id: &str,
    redirect_uri: &str,
    scopes: &[String],
    state: &str,
    challenge: &str,
) -> Result<String, SsoError> {
    let mut url = reqwest::Url::parse(&discovery.authorization_endpoint).map_err(|e| {
        SsoError::Discovery {
            issuer: String::new(),
            reason: format!("invalid authorization_endpoint: {e}"),
        }
    })?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", &scopes.join(" "))
        .append_pair("state", state)
        .append_pair("code_challenge", challenge)
        .append_pair("code_challenge_method", "S256");
    Ok(url.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_cli_signs_in_as_the_cli_client_with_openid_among_the_scopes() {
        let config = |oidc: Value| {
            OidcConfig::from_public_config(
                &json!({"oidcConfig": oidc, "adminAccountEnabled": true}),
            )
        };
        assert_eq!(
            config(
                json!({"issuerUrl": "https://idp", "clientId": "kargo", "cliClientId": "kargo-cli", "scopes": ["openid", "email"]})
            ),
            Ok(OidcConfig {
                issuer_url: "https://idp".into(),
                client_id: "kargo-cli".into(),
                scopes: vec!["openid".into(), "email".into()],
            })
        );
        assert_eq!(
            config(
                json!({"issuerUrl": "https://idp", "clientId": "kargo", "cliClientId": "", "scopes": ["groups"]})
            ),
            Ok(OidcConfig {
                issuer_url: "https://idp".into(),
                client_id: "kargo".into(),
                scopes: vec!["openid".into(), "groups".into()],
            })
        );
        assert_eq!(config(Value::Null), Err(SsoError::NotSupported));
        assert_eq!(
            config(json!({"issuerUrl": "", "clientId": "kargo"})),
            Err(SsoError::NotSupported)
        );
        assert_eq!(
            SsoError::NotSupported.to_string(),
            "server does not support OpenID Connect"
        );
    }

    #[test]
    fn discovery_must_be_the_issuers_and_offline_access_is_asked_when_supported() {
        let document = json!({
            "issuer": "https://idp/",
            "authorization_endpoint": "https://idp/auth",
            "token_endpoint": "https://idp/token",
            "scopes_supported": ["openid", "offline_access", "email"],
        });
        let discovery = Discovery::parse("https://idp", &document).unwrap();
        assert_eq!(discovery.token_endpoint, "https://idp/token");
        let config = OidcConfig {
            issuer_url: "https://idp".into(),
            client_id: "kargo-cli".into(),
            scopes: vec!["openid".into(), "email".into()],
        };
        assert_eq!(
            discovery.scopes(&config),
            ["openid", "email", "offline_access"]
        );
        let without = Discovery {
            scopes_supported: vec![],
            ..discovery.clone()
        };
        assert_eq!(without.scopes(&config), ["openid", "email"]);
        assert_eq!(
            Discovery::parse("https://other", &document)
                .unwrap_err()
                .to_string(),
            "invalid discovery document of the OpenID provider https://other: it names the issuer \"https://idp/\", not \"https://other\""
        );
        let mut no_token = document.clone();
        no_token.as_object_mut().unwrap().remove("token_endpoint");
        assert_eq!(
            Discovery::parse("https://idp", &no_token)
                .unwrap_err()
                .to_string(),
            "invalid discovery document of the OpenID provider https://idp: no token_endpoint"
        );
    }

    #[test]
    fn the_authorization_url_carries_the_pkce_challenge_and_state() {
        let discovery = Discovery {
            authorization_endpoint: "https://idp/auth?tenant=t".into(),
            token_endpoint: "https://idp/token".into(),
            scopes_supported: vec![],
        };
        let url = authorization_url(
            &discovery,
            "kargo-cli",
            "http://localhost:8085/auth/callback",
            &["openid".into(), "email".into()],
            "abcdefghijklmnopqrstuvwx",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        )
        .unwrap();
        assert_eq!(
            url,
            "https://idp/auth?tenant=t&response_type=code&client_id=kargo-cli&redirect_uri=http%3A%2F%2Flocalhost%3A8085%2Fauth%2Fcallback&scope=openid+email&state=abcdefghijklmnopqrstuvwx&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"
        );
    }

    #[test]
    fn token_answers_need_an_id_token() {
        assert_eq!(
            Tokens::parse(&json!({"id_token": "i", "refresh_token": "r", "access_token": "a"})),
            Ok(Tokens {
                id_token: "i".into(),
                refresh_token: Some("r".into())
            })
        );
        assert_eq!(
            Tokens::parse(&json!({"id_token": "i"})).map(|t| t.refresh_token),
            Ok(None)
        );
        assert!(Tokens::parse(&json!({"access_token": "a"})).is_err());
    }
}

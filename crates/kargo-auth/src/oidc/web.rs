//! The web UI's sign-in at the provider: the authorization code flow with PKCE (RFC 7636) for
//! the public client `--oidc-client-id`. Only the HTTP half lives here (discovery's endpoints,
//! redeeming a code for the ID token); the UI keeps the state and verifier, and the ID token it
//! gets is verified like any other, by [`super::OidcAuthenticator`], on every request.

use serde_json::Value;

use super::{OidcAuthenticator, keys};

/// Where a browser signs in, and where its code is redeemed (from discovery).
#[derive(Debug, Clone)]
pub struct WebEndpoints {
    /// `authorization_endpoint`.
    pub authorization: String,
    /// `token_endpoint`.
    pub token: String,
}

impl OidcAuthenticator {
    /// The provider's endpoints for a browser sign-in, read from its discovery document (each
    /// sign-in reads it again: sign-ins are rare, and the provider's answer stays current).
    pub async fn web_endpoints(&self) -> Result<WebEndpoints, String> {
        let client = keys::client(self.config.ca_pem.as_deref())?;
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.config.issuer_url.trim_end_matches('/')
        );
        let discovery = get_json(client.get(&url)).await?;
        let field = |name: &str| {
            discovery[name]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("{url}: no {name}"))
        };
        Ok(WebEndpoints {
            authorization: field("authorization_endpoint")?,
            token: field("token_endpoint")?,
        })
    }

    /// Redeems an authorization `code` (with its PKCE `verifier`, for `redirect_uri`) at the
    /// token endpoint for the person's ID token. An error names what failed, never a token.
    pub async fn redeem_code(
        &self,
        endpoints: &WebEndpoints,
        code: &str,
        verifier: &str,
        redirect_uri: &str,
    ) -> Result<String, String> {
        let client = keys::client(self.config.ca_pem.as_deref())?;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", verifier),
            ("redirect_uri", redirect_uri),
            ("client_id", self.config.client_id.as_str()),
        ];
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let request = client
            .post(&endpoints.token)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        let answer = get_json(request).await?;
        answer["id_token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| "the token endpoint answered no id_token".to_owned())
    }
}

/// Sends `request`; its JSON answer, or what went wrong (the provider's `error` for a 4xx).
async fn get_json(request: reqwest::RequestBuilder) -> Result<Value, String> {
    let response = request.send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    let body: Value = response.json().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        let error = body["error"].as_str().unwrap_or("error");
        return Err(format!("the provider answered {status}: {error}"));
    }
    Ok(body)
}

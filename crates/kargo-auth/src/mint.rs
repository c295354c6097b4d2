//! Minting tokens: the one place that signs a token the server hands out.
//!
//! - [`TokenMinter::fill`]: the legacy JWT of a service-account token Secret (the token
//!   controller and the Kargo API);
//! - [`bound_token`]: the bound JWT of a `TokenRequest` (`serviceaccounts/<name>/token`);
//! - [`federated_token`]: the bound JWT of a token exchange (`kargo_auth::federation`);
//! - [`admin_token`]: the HS256 session token of the admin login.
//!
//! Service-account JWTs are signed by [`jwt::sign`] in Kubernetes' exact format; admin tokens
//! by `jsonwebtoken`. Nothing else in the server signs.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use kargo_api::well_known::SERVICE_ACCOUNT_UID_ANNOTATION;
use kargo_registry::status::{Result, Status};
use serde_json::Value;

use crate::admin;
use crate::jwt::{self, BoundRequest};
use crate::view::AuthView;

/// Notes, as an Event about the token Secret `secret`, that its token was issued for the
/// ServiceAccount `account` (whoever filled it: the token controller or the Kargo API). Written
/// in the background: whoever waits for the token does not wait for the note.
pub fn record_issued(registry: &kargo_registry::Registry, secret: &Value, account: &str) {
    let registry = registry.clone();
    let secret = secret.clone();
    let message = format!("Token issued for ServiceAccount {account:?}");
    tokio::spawn(async move {
        let occurrence = kargo_registry::events::Occurrence {
            kind: kargo_registry::events::EventType::Normal,
            reason: "TokenIssued",
            message: &message,
        };
        kargo_registry::events::record(
            &registry,
            &kargo_api::resources::SECRETS,
            &secret,
            occurrence,
        )
        .await;
    });
}

/// Fills token Secrets: the one place that knows what a filled service-account token Secret
/// holds. The controller uses it for Secrets created without a token; the Kargo API fills the
/// Secrets it creates before writing them, so that they need no second write.
#[derive(Clone)]
pub struct TokenMinter {
    view: Arc<AuthView>,
    ca_pem: String,
}

impl TokenMinter {
    /// A minter signing with the view's signing key and handing out `ca_pem`.
    pub fn new(view: Arc<AuthView>, ca_pem: String) -> TokenMinter {
        TokenMinter { view, ca_pem }
    }

    /// Fills what `secret` (the Secret `namespace/name` of account `account` with uid
    /// `account_uid`) lacks: `data.token` (a legacy JWT; never regenerated once set),
    /// `data.namespace`, `data["ca.crt"]`, and the account-uid annotation.
    pub fn fill(
        &self,
        secret: &mut Value,
        namespace: &str,
        name: &str,
        account: &str,
        account_uid: &str,
    ) -> Result<()> {
        let map = secret
            .as_object_mut()
            .ok_or_else(|| Status::internal("a Secret that is not an object"))?;
        let data = map
            .entry("data")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Some(data) = data.as_object_mut() {
            let empty = |v: Option<&Value>| v.and_then(Value::as_str).is_none_or(str::is_empty);
            if empty(data.get("token")) {
                let token = self.sign(jwt::legacy_claims(namespace, name, account, account_uid))?;
                data.insert("token".into(), STANDARD.encode(&token).into());
            }
            if empty(data.get("namespace")) {
                data.insert("namespace".into(), STANDARD.encode(namespace).into());
            }
            if empty(data.get("ca.crt")) && !self.ca_pem.is_empty() {
                data.insert("ca.crt".into(), STANDARD.encode(&self.ca_pem).into());
            }
        }
        let meta = kargo_registry::object::meta_mut(secret);
        let annotations = meta
            .entry("annotations")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Some(a) = annotations.as_object_mut() {
            a.insert(SERVICE_ACCOUNT_UID_ANNOTATION.into(), account_uid.into());
        }
        Ok(())
    }
}

impl TokenMinter {
    /// A new value for the token Secret `namespace/name` of account `account` (uid
    /// `account_uid`), for a rotation: the legacy claims and a random `jti`, since the legacy
    /// claims alone are the same for every value of one Secret. Verification ignores the `jti`
    /// (as kube-apiserver ignores claims it does not know); the caller stores the value in
    /// `data.token`.
    pub fn reissue(
        &self,
        namespace: &str,
        name: &str,
        account: &str,
        account_uid: &str,
    ) -> Result<String> {
        let mut claims = jwt::legacy_claims(namespace, name, account, account_uid);
        claims["jti"] = uuid::Uuid::new_v4().to_string().into();
        self.sign(claims)
    }

    /// Signs claims with the view's signing key.
    fn sign(&self, claims: Value) -> Result<String> {
        let keys = self.view.keys();
        jwt::sign(keys.signing(), claims).map_err(|e| {
            tracing::error!(error = %e, "signing a token failed");
            Status::internal("signing a token failed")
        })
    }
}

/// Signs the bound token of a `TokenRequest` with the view's signing key.
pub fn bound_token(view: &AuthView, request: &BoundRequest<'_>) -> Result<String> {
    let keys = view.keys();
    jwt::sign(keys.signing(), jwt::bound_claims(request)).map_err(|e| {
        tracing::error!(error = %e, "signing a token failed");
        Status::internal("signing the token failed")
    })
}

/// Signs the bound token of a token exchange: [`bound_token`]'s claims plus
/// [`crate::federation::FEDERATED_CLAIM`] naming the trust entry that accepted the exchange.
pub fn federated_token(
    view: &AuthView,
    request: &BoundRequest<'_>,
    federated: Value,
) -> Result<String> {
    let keys = view.keys();
    let mut claims = jwt::bound_claims(request);
    claims[crate::federation::FEDERATED_CLAIM] = federated;
    jwt::sign(keys.signing(), claims).map_err(|e| {
        tracing::error!(error = %e, "signing a token failed");
        Status::internal("signing the token failed")
    })
}

/// Issues an admin session token signed with `key` (the admin record's HS256 key), valid for
/// [`admin::TOKEN_LIFETIME_SECS`] from now, with a fresh `jti` (what a logout revokes).
pub(crate) fn admin_token(
    key: &EncodingKey,
) -> std::result::Result<String, jsonwebtoken::errors::Error> {
    let iat = admin::now();
    let claims = admin::Claims {
        iss: admin::ISSUER.into(),
        sub: "admin".into(),
        iat,
        exp: iat + admin::TOKEN_LIFETIME_SECS,
        jti: uuid::Uuid::new_v4().to_string(),
    };
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, key)
}

//! A token's lifecycle after its creation (besides expiry and deletion): disabling and enabling
//! it, and rotating its value with a grace period for the old one; and the description given at
//! creation. Each is an annotation of the token Secret
//! ([`kargo_api::token_lifecycle`]), which the auth view reads from the informer, so a change
//! applies to the next request on every replica, as a deletion does.
//!
//! Both kinds of token ([`TokenKind`]) have this lifecycle: the operations take the kind their
//! route names, and read the Secret as the `GET` of that kind does (so a token of the other
//! kind gets the same 400 as its `GET`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use kargo_api::expiry::format_expires_at;
use kargo_api::kargo::{CreateTokenRequest, DESCRIPTION_ANNOTATION, RotateTokenRequest};
use kargo_api::resources::SECRETS;
use kargo_api::token_lifecycle::{
    DISABLED_ANNOTATION, Grace, PREVIOUS_TOKEN_SHA256_ANNOTATION,
    PREVIOUS_TOKEN_VALID_UNTIL_ANNOTATION, check_description, sha256_hex,
};
use kargo_api::well_known::SERVICE_ACCOUNT_NAME_ANNOTATION;
use kargo_auth::rbac::UserInfo;
use kargo_auth::view::token_hash;
use kargo_registry::status::Status;
use kargo_registry::{Meta, Object, Target};
use serde_json::{Map, Value};

use super::tokens::{TokenKind, redact, unix_now};
use super::{Error, Kargo, Result, Scope, q};

/// The description a token creation asks for, checked (`None`: none, or empty).
pub(crate) fn description_of(request: &CreateTokenRequest) -> Result<Option<&str>> {
    match request.description.as_deref().filter(|d| !d.is_empty()) {
        Some(description) => {
            check_description(description).map_err(Error::BadRequest)?;
            Ok(Some(description))
        }
        None => Ok(None),
    }
}

/// Sets the description annotation of a token Secret body.
pub(crate) fn set_description(secret: &mut Value, description: &str) {
    secret["metadata"]["annotations"][DESCRIPTION_ANNOTATION] = description.into();
}

/// A Secret's annotations, created if absent.
fn annotations_mut(secret: &mut Value) -> Option<&mut Map<String, Value>> {
    let meta = kargo_registry::object::meta_mut(secret);
    meta.entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
}

/// The new version of the token Secret `current` after a rotation at `now` to `token`: the
/// value replaced, and the old value's SHA-256 and end of grace in annotations (removed when
/// `grace` is zero, so any earlier old value is refused too). 409 for a Secret with no value yet.
fn rotated(
    current: &Object,
    token: &str,
    grace: Grace,
    now: i64,
) -> kargo_registry::status::Result<Object> {
    let mut secret = current.clone();
    let old = secret
        .pointer("/data/token")
        .and_then(Value::as_str)
        .and_then(|t| STANDARD.decode(t).ok())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            Status::conflict(
                &SECRETS,
                current.name(),
                "the token Secret has no token yet to rotate",
            )
        })?;
    secret["data"]["token"] = STANDARD.encode(token).into();
    let annotations = annotations_mut(&mut secret)
        .ok_or_else(|| Status::internal("a token Secret whose annotations are not a map"))?;
    if grace == Grace::NONE {
        annotations.remove(PREVIOUS_TOKEN_SHA256_ANNOTATION);
        annotations.remove(PREVIOUS_TOKEN_VALID_UNTIL_ANNOTATION);
    } else {
        let until = now.saturating_add(i64::try_from(grace.as_secs()).unwrap_or(i64::MAX));
        annotations.insert(
            PREVIOUS_TOKEN_SHA256_ANNOTATION.into(),
            sha256_hex(&token_hash(&old)).into(),
        );
        annotations.insert(
            PREVIOUS_TOKEN_VALID_UNTIL_ANNOTATION.into(),
            format_expires_at(until).into(),
        );
    }
    Ok(secret)
}

impl Kargo {
    /// `POST .../service-account-tokens/{t}/disable` (`disabled`) or `.../enable`, and the
    /// same of `.../api-tokens/{apitoken}` (`kind`): sets or removes `kargo.akuity.io/disabled`
    /// on the token Secret; answers it redacted once this server's auth view has seen the change
    /// (so the next request is refused, or accepted).
    pub async fn set_token_disabled(
        &self,
        user: &UserInfo,
        kind: TokenKind,
        scope: &Scope,
        name: &str,
        disabled: bool,
    ) -> Result<Object> {
        let ns = self.namespace_of(scope).await?;
        self.token_of_kind(user, kind, ns, name).await?;
        self.authorize(user, "update", &SECRETS, ns, name)?;
        let mut written = self
            .registry
            .update_with(
                Target::new(&SECRETS, Some(ns), name),
                &crate::kargo_writes(),
                |current| {
                    let mut secret = current.clone();
                    let annotations = annotations_mut(&mut secret).ok_or_else(|| {
                        Status::internal("a token Secret whose annotations are not a map")
                    })?;
                    if disabled {
                        annotations.insert(DISABLED_ANNOTATION.into(), "true".into());
                    } else {
                        annotations.remove(DISABLED_ANNOTATION);
                    }
                    Ok(secret)
                },
            )
            .await?;
        self.await_seen(&written).await;
        redact(&mut written);
        Ok(written)
    }

    /// `POST .../service-account-tokens/{t}/rotate` or `.../api-tokens/{apitoken}/rotate`
    /// (`kind`): gives the token Secret a new value (the same name and account) and answers it
    /// unredacted (the only time it is shown). The old value stays valid for the request's
    /// grace (none by default); only its SHA-256 is kept. An earlier old value still in its
    /// grace is refused from then on (one old value at most).
    pub async fn rotate_token(
        &self,
        user: &UserInfo,
        kind: TokenKind,
        scope: &Scope,
        name: &str,
        request: &RotateTokenRequest,
    ) -> Result<Object> {
        let ns = self.namespace_of(scope).await?;
        let grace = match request.grace.as_deref() {
            Some(grace) => Grace::parse(grace).map_err(|e| Error::BadRequest(e.to_string()))?,
            None => Grace::NONE,
        };
        let secret = self.token_of_kind(user, kind, ns, name).await?;
        self.authorize(user, "update", &SECRETS, ns, name)?;
        let account = secret
            .annotation(SERVICE_ACCOUNT_NAME_ANNOTATION)
            .unwrap_or_default()
            .to_owned();
        let sa = self.token_account(user, kind, scope, &account).await?;
        let minter = self.minter.as_ref().ok_or_else(|| {
            Error::Api(Status::internal(format!(
                "this server cannot issue a new value for token Secret {} in namespace {}",
                q(name),
                q(ns)
            )))
        })?;
        let token = minter.reissue(ns, name, &account, sa.uid())?;
        let now = unix_now();
        let written = self
            .registry
            .update_with(
                Target::new(&SECRETS, Some(ns), name),
                &crate::kargo_writes(),
                |current| rotated(current, &token, grace, now),
            )
            .await?;
        self.await_seen(&written).await;
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn secret(token: &str, annotations: Value) -> Object {
        json!({
            "metadata": {"name": "t", "namespace": "p", "annotations": annotations},
            "data": {"token": STANDARD.encode(token)},
        })
    }

    #[test]
    fn a_rotation_keeps_the_old_values_hash_for_the_grace_and_never_the_value() {
        let now = 1_893_553_445; // 2030-01-02T03:04:05Z
        let grace = Grace::parse("24h").unwrap();
        let new = rotated(&secret("old", json!({"a": "b"})), "new", grace, now).unwrap();
        assert_eq!(new["data"]["token"], STANDARD.encode("new"));
        assert_eq!(
            new["metadata"]["annotations"],
            json!({
                "a": "b",
                PREVIOUS_TOKEN_SHA256_ANNOTATION: sha256_hex(&token_hash(b"old")),
                PREVIOUS_TOKEN_VALID_UNTIL_ANNOTATION: "2030-01-03T03:04:05Z",
            })
        );
        assert!(!new.to_string().contains(&STANDARD.encode("old")));

        let again = rotated(&new, "newer", Grace::NONE, now).unwrap();
        assert_eq!(again["metadata"]["annotations"], json!({"a": "b"}));
        assert_eq!(again["data"]["token"], STANDARD.encode("newer"));
    }

    #[test]
    fn a_secret_without_a_value_cannot_be_rotated() {
        let empty = json!({"metadata": {"name": "t"}, "data": {"token": ""}});
        let err = rotated(&empty, "new", Grace::NONE, 0).unwrap_err();
        assert_eq!(err.code, 409);
    }

    #[test]
    fn descriptions_are_checked_and_empty_ones_dropped() {
        let request = |d: Option<&str>| CreateTokenRequest {
            description: d.map(str::to_owned),
            ..CreateTokenRequest::default()
        };
        assert_eq!(description_of(&request(None)).unwrap(), None);
        assert_eq!(description_of(&request(Some(""))).unwrap(), None);
        assert_eq!(description_of(&request(Some("CI"))).unwrap(), Some("CI"));
        let err = description_of(&request(Some("a\nb"))).unwrap_err();
        assert_eq!(err.code(), 400);
    }
}

//! The token controller, driven by the informer: token Secrets get their token, and go with
//! their account.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use kargo_api::resources::{SECRETS, SERVICEACCOUNTS};
use kargo_registry::testing::{eventually, token_secret_body};
use kargo_registry::{Meta, Object};
use serde_json::Value;

use super::{CA_PEM, Controllers, start};

async fn token_secret(test: &Controllers, name: &str, account: &str) -> Object {
    test.create(&SECRETS, Some("p"), token_secret_body(name, account))
        .await
        .unwrap()
}

/// Waits until the token controller has filled `data.token` of the Secret `name`.
async fn filled(test: &Controllers, name: &str) -> Object {
    eventually(&format!("data.token of {name}"), || async {
        test.get(&SECRETS, Some("p"), name)
            .await
            .filter(|s| data(s, "token").is_some())
    })
    .await
}

fn data(secret: &Object, key: &str) -> Option<Vec<u8>> {
    let value = secret["data"][key].as_str()?;
    STANDARD.decode(value).ok()
}

/// The claims of a JWT, unverified.
fn claims(token: &[u8]) -> Value {
    let token = std::str::from_utf8(token).unwrap();
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn a_token_secret_created_without_data_gets_its_token() {
    let test = start().await;
    let account = test
        .create_named(&SERVICEACCOUNTS, Some("p"), "robot")
        .await;
    let created = token_secret(&test, "robot-token", "robot").await;
    assert!(created.get("data").is_none());

    let filled = filled(&test, "robot-token").await;
    assert_eq!(filled.uid(), created.uid());
    assert_eq!(data(&filled, "namespace").unwrap(), b"p");
    assert_eq!(data(&filled, "ca.crt").unwrap(), CA_PEM.as_bytes());
    assert_eq!(
        filled.annotation("kubernetes.io/service-account.uid"),
        Some(account.uid())
    );
    let claims = claims(&data(&filled, "token").unwrap());
    assert_eq!(claims["iss"], "kubernetes/serviceaccount");
    assert_eq!(claims["sub"], "system:serviceaccount:p:robot");
    assert_eq!(claims["kubernetes.io/serviceaccount/namespace"], "p");
    assert_eq!(
        claims["kubernetes.io/serviceaccount/secret.name"],
        "robot-token"
    );
    assert_eq!(
        claims["kubernetes.io/serviceaccount/service-account.uid"],
        account.uid()
    );
}

#[tokio::test]
async fn deleting_an_account_deletes_its_token_secrets_only() {
    let test = start().await;
    for account in ["robot", "other"] {
        test.create_named(&SERVICEACCOUNTS, Some("p"), account)
            .await;
    }
    token_secret(&test, "robot-a", "robot").await;
    token_secret(&test, "robot-b", "robot").await;
    token_secret(&test, "other-a", "other").await;
    for name in ["robot-a", "robot-b", "other-a"] {
        filled(&test, name).await;
    }
    test.delete(&SERVICEACCOUNTS, Some("p"), "robot")
        .await
        .unwrap();
    for name in ["robot-a", "robot-b"] {
        test.eventually_gone(&SECRETS, Some("p"), name).await;
    }
    assert!(test.exists(&SECRETS, Some("p"), "other-a").await);
}

#[tokio::test]
async fn a_token_secret_for_a_missing_account_is_deleted() {
    let test = start().await;
    token_secret(&test, "stray", "nobody").await;
    test.eventually_gone(&SECRETS, Some("p"), "stray").await;
}

/// Sets the annotations of the token Secret `name` as a rotation does.
async fn rotated(test: &Controllers, name: &str, valid_until: &str) {
    test.registry
        .update_with(
            kargo_registry::Target::new(&SECRETS, Some("p"), name),
            &kargo_registry::WriteOptions::default(),
            |current| {
                let mut next = current.clone();
                next["metadata"]["annotations"][PREVIOUS_SHA256] = "ab".repeat(32).into();
                next["metadata"]["annotations"][PREVIOUS_UNTIL] = valid_until.into();
                Ok(next)
            },
        )
        .await
        .unwrap();
}

const PREVIOUS_SHA256: &str = kargo_api::token_lifecycle::PREVIOUS_TOKEN_SHA256_ANNOTATION;
const PREVIOUS_UNTIL: &str = kargo_api::token_lifecycle::PREVIOUS_TOKEN_VALID_UNTIL_ANNOTATION;

#[tokio::test]
async fn the_annotations_of_a_rotation_go_once_its_grace_has_ended_and_not_before() {
    let test = start().await;
    test.create_named(&SERVICEACCOUNTS, Some("p"), "robot")
        .await;
    for name in ["ended", "later", "soon"] {
        token_secret(&test, name, "robot").await;
        filled(&test, name).await;
    }
    rotated(&test, "ended", "2020-01-01T00:00:00Z").await;
    rotated(&test, "later", "2999-01-01T00:00:00Z").await;
    let soon = kargo_api::expiry::format_expires_at(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
            + 2,
    );
    rotated(&test, "soon", &soon).await;
    let gone = |name: &'static str| {
        let test = &test;
        async move {
            test.get(&SECRETS, Some("p"), name)
                .await
                .filter(|s| s.annotation(PREVIOUS_SHA256).is_none())
                .filter(|s| s.annotation(PREVIOUS_UNTIL).is_none())
        }
    };
    eventually("the ended grace's annotations removed", || gone("ended")).await;
    let soon_at = std::time::Instant::now();
    eventually("the short grace's annotations removed", || gone("soon")).await;
    assert!(
        soon_at.elapsed() >= std::time::Duration::from_millis(500),
        "removed before the grace ended"
    );
    let later = test.get(&SECRETS, Some("p"), "later").await.unwrap();
    assert_eq!(
        later.annotation(PREVIOUS_UNTIL),
        Some("2999-01-01T00:00:00Z")
    );
    assert!(later.annotation(PREVIOUS_SHA256).is_some());
}

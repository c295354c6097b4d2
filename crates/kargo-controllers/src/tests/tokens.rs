//! The token controller, driven by the informer: token Secrets get their token, and go with
//! their account.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use kargo_api::resources::{SECRETS, SERVICEACCOUNTS};
use kargo_registry::testing::eventually;
use kargo_registry::{DeleteOptions, Meta, Object, Target};
use serde_json::{Value, json};

use super::{CA_PEM, Controllers, start};

async fn token_secret(test: &Controllers, name: &str, account: &str) -> Object {
    test.create(
        &SECRETS,
        Some("p"),
        json!({
            "metadata": {"name": name, "annotations": {"kubernetes.io/service-account.name": account}},
            "type": "kubernetes.io/service-account-token",
        }),
    )
    .await
    .unwrap()
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
        .create(
            &SERVICEACCOUNTS,
            Some("p"),
            json!({"metadata": {"name": "robot"}}),
        )
        .await
        .unwrap();
    let created = token_secret(&test, "robot-token", "robot").await;
    assert!(created.get("data").is_none());

    let filled = eventually("data.token", || async {
        test.get(&SECRETS, Some("p"), "robot-token")
            .await
            .filter(|s| data(s, "token").is_some())
    })
    .await;
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
        test.create(
            &SERVICEACCOUNTS,
            Some("p"),
            json!({"metadata": {"name": account}}),
        )
        .await
        .unwrap();
    }
    token_secret(&test, "robot-a", "robot").await;
    token_secret(&test, "robot-b", "robot").await;
    token_secret(&test, "other-a", "other").await;
    for name in ["robot-a", "robot-b", "other-a"] {
        eventually("the tokens", || async {
            test.get(&SECRETS, Some("p"), name)
                .await
                .filter(|s| data(s, "token").is_some())
        })
        .await;
    }
    test.registry
        .delete(
            Target::new(&SERVICEACCOUNTS, Some("p"), "robot"),
            &DeleteOptions::default(),
        )
        .await
        .unwrap();
    for name in ["robot-a", "robot-b"] {
        eventually(&format!("{name} to be deleted"), || async {
            test.get(&SECRETS, Some("p"), name)
                .await
                .is_none()
                .then_some(())
        })
        .await;
    }
    assert!(test.get(&SECRETS, Some("p"), "other-a").await.is_some());
}

#[tokio::test]
async fn a_token_secret_for_a_missing_account_is_deleted() {
    let test = start().await;
    token_secret(&test, "stray", "nobody").await;
    eventually("the stray token Secret to be deleted", || async {
        test.get(&SECRETS, Some("p"), "stray")
            .await
            .is_none()
            .then_some(())
    })
    .await;
}

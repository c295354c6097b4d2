//! The last-used flusher over the real informer and auth view, with a clock the test moves:
//! uses recorded by authentication reach the token Secret once a minute, with their address,
//! never backwards, and the flusher's own writes are no use.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use base64::Engine;
use kargo_api::last_used::{LAST_USED_AT_ANNOTATION, LAST_USED_FROM_ANNOTATION};
use kargo_api::resources::{SECRETS, SERVICEACCOUNTS};
use kargo_api::well_known::LEGACY_TOKEN_LAST_USED_LABEL;
use kargo_auth::tokens::TokenAuthenticator;
use kargo_registry::testing::{eventually, token_secret_body};
use kargo_registry::{Meta, Object, Target, WriteOptions};

use super::{Controllers, start};
use crate::last_used::LastUsedFlusher;

/// 2030-01-02T12:00:00Z.
const NOON: i64 = 1_893_585_600;

struct Fixture {
    test: Controllers,
    token: String,
    authn: TokenAuthenticator,
    time: Arc<AtomicI64>,
    flusher: LastUsedFlusher,
}

impl Fixture {
    async fn new() -> Fixture {
        let test = start().await;
        test.create_named(&SERVICEACCOUNTS, Some("p"), "ci").await;
        test.create(&SECRETS, Some("p"), token_secret_body("ci-token", "ci"))
            .await
            .unwrap();
        let filled = eventually("the token", || async {
            test.get(&SECRETS, Some("p"), "ci-token")
                .await
                .and_then(|s| s["data"]["token"].as_str().map(str::to_owned))
        })
        .await;
        let token = base64::engine::general_purpose::STANDARD
            .decode(filled)
            .unwrap();
        let time = Arc::new(AtomicI64::new(NOON));
        let read = time.clone();
        let authn = TokenAuthenticator::new(test.view.clone(), "https://kargo.test".into())
            .with_clock(Arc::new(move || read.load(Ordering::SeqCst)));
        let flusher = LastUsedFlusher::new(test.registry.clone(), test.view.clone());
        let fixture = Fixture {
            token: String::from_utf8(token).unwrap(),
            authn,
            time,
            flusher,
            test,
        };
        fixture.settle().await;
        fixture
    }

    async fn settle(&self) {
        let revision = self.test.store.current_revision().await.unwrap();
        self.test.informer.synced_to(revision).await;
    }

    /// A request with the token at `NOON + at` from `from`.
    fn use_token(&self, at: i64, from: &str) {
        self.time.store(NOON + at, Ordering::SeqCst);
        let from: IpAddr = from.parse().unwrap();
        assert!(
            self.authn
                .authenticate_from(&self.token, None, Some(from))
                .is_ok()
        );
    }

    async fn secret(&self) -> Object {
        self.test
            .get(&SECRETS, Some("p"), "ci-token")
            .await
            .unwrap()
    }

    /// `last-used-at`, `last-used-from` and the label of the Secret.
    async fn recorded(&self) -> (Option<String>, Option<String>, Option<String>) {
        let secret = self.secret().await;
        let get = |v: Option<&str>| v.map(str::to_owned);
        (
            get(secret.annotation(LAST_USED_AT_ANNOTATION)),
            get(secret.annotation(LAST_USED_FROM_ANNOTATION)),
            get(secret.label(LEGACY_TOKEN_LAST_USED_LABEL)),
        )
    }
}

fn some(values: (&str, &str, &str)) -> (Option<String>, Option<String>, Option<String>) {
    (
        Some(values.0.into()),
        Some(values.1.into()),
        Some(values.2.into()),
    )
}

#[tokio::test]
async fn a_used_token_is_written_once_a_minute_with_its_address_and_never_backwards() {
    let f = Fixture::new().await;
    assert_eq!(f.flusher.flush().await, 0, "never used: nothing to write");
    assert_eq!(f.recorded().await, (None, None, None));

    f.use_token(5, "192.0.2.7");
    f.use_token(30, "2001:db8::9");
    assert_eq!(f.flusher.flush().await, 1);
    assert_eq!(
        f.recorded().await,
        some(("2030-01-02T12:00:00Z", "192.0.2.7", "2030-01-02"))
    );
    f.settle().await;
    assert!(
        f.test.view.usage().take().is_empty(),
        "the flusher's write is no use"
    );

    // The same minute again writes nothing.
    let version = f.secret().await.resource_version().to_owned();
    f.use_token(59, "2001:db8::9");
    assert_eq!(f.flusher.flush().await, 0);
    assert_eq!(f.secret().await.resource_version(), version);

    // Three minutes later, from elsewhere: the time and address move, the label stays.
    f.use_token(3 * 60 + 1, "2001:db8::9");
    assert_eq!(f.flusher.flush().await, 1);
    assert_eq!(
        f.recorded().await,
        some(("2030-01-02T12:03:00Z", "2001:db8::9", "2030-01-02"))
    );

    // Another replica recorded a later use: an earlier one seen here does not move it back.
    f.test
        .registry
        .update_with(
            Target::new(&SECRETS, Some("p"), "ci-token"),
            &WriteOptions::default(),
            |secret| {
                let mut secret = secret.clone();
                secret["metadata"]["annotations"][LAST_USED_AT_ANNOTATION] =
                    "2030-01-02T12:10:00Z".into();
                secret["metadata"]["annotations"][LAST_USED_FROM_ANNOTATION] =
                    "198.51.100.1".into();
                Ok(secret)
            },
        )
        .await
        .unwrap();
    f.settle().await;
    f.use_token(5 * 60, "192.0.2.7");
    assert_eq!(f.flusher.flush().await, 0);
    assert_eq!(
        f.recorded().await,
        some(("2030-01-02T12:10:00Z", "198.51.100.1", "2030-01-02"))
    );

    // The next day: the label follows, as Kubernetes keeps it.
    f.use_token(86_400 + 60, "192.0.2.7");
    assert_eq!(f.flusher.flush().await, 1);
    assert_eq!(
        f.recorded().await,
        some(("2030-01-03T12:01:00Z", "192.0.2.7", "2030-01-03"))
    );
}

#[tokio::test]
async fn a_use_of_a_deleted_token_secret_is_dropped() {
    let f = Fixture::new().await;
    f.use_token(5, "192.0.2.7");
    f.test
        .delete(&SECRETS, Some("p"), "ci-token")
        .await
        .unwrap();
    assert_eq!(f.flusher.flush().await, 0);
    assert!(f.test.view.usage().take().is_empty(), "not retried forever");
}

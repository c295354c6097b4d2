//! Service-account tokens end to end through the [`Authenticator`](crate::authn::Authenticator),
//! in process: real keys from a temporary SQLite store, objects written by the registry and
//! seen by the view through the informer. The reasons asserted are TokenReview's
//! `status.error` texts (kube-apiserver's).

use std::sync::Arc;

use kargo_api::resources::{SECRETS, SERVICEACCOUNTS};

use crate::authn::{AuthFailure, Authenticator};
use crate::jwt::BoundRequest;
use crate::mint;
use crate::testing::{ISSUER, World};

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn now() -> i64 {
    super::now()
}

/// The answer a request with `token` gets, and the reason TokenReview gives.
fn answer(authn: &Authenticator, token: &str) -> (Result<String, AuthFailure>, Result<(), String>) {
    let answer = authn
        .authenticate(Some(&bearer(token)), None, None)
        .map(|user| user.username.clone());
    let review = authn.tokens().authenticate(token, None).map(|_| ());
    (answer, review)
}

/// Asserts that a request with `token` is refused, and that TokenReview gives `reason`.
#[track_caller]
fn assert_refused(authn: &Authenticator, token: &str, reason: &str) {
    let refused = (Err(AuthFailure::Invalid), Err(reason.to_owned()));
    assert_eq!(answer(authn, token), refused);
}

const CI: &str = "system:serviceaccount:p:ci";

async fn world_with_account() -> (World, String) {
    let world = World::new().await;
    world.namespace("p").await;
    let uid = world.account("p", "ci").await;
    (world, uid)
}

/// The account `p/ci` (its uid), the token of its Secret `ci-token`, and an authenticator that
/// has already accepted the token once (so it is cached).
async fn world_with_a_cached_token() -> (World, String, String, Authenticator) {
    let (world, uid) = world_with_account().await;
    let token = world.token_secret("p", "ci-token", "ci", &uid).await;
    let authn = world.authenticator(None);
    assert!(authn.authenticate_token(&token, None).is_ok());
    (world, uid, token, authn)
}

#[tokio::test]
async fn a_legacy_token_from_the_store_authenticates_as_its_account() {
    let (world, uid) = world_with_account().await;
    let token = world.token_secret("p", "ci-token", "ci", &uid).await;
    let authn = world.authenticator(None);
    let user = authn
        .authenticate(Some(&bearer(&token)), None, None)
        .unwrap();
    assert_eq!(user.username, CI);
    assert_eq!(user.uid, uid);
    assert_eq!(
        user.groups,
        [
            "system:serviceaccounts",
            "system:serviceaccounts:p",
            "system:authenticated"
        ]
    );
    // Twice: the second comes from the cache of verified signatures.
    assert_eq!(answer(&authn, &token), (Ok(CI.to_owned()), Ok(())));
}

#[tokio::test]
async fn a_token_whose_secret_was_deleted_stops_working_at_once_though_it_was_cached() {
    let (world, _, token, authn) = world_with_a_cached_token().await;
    world.delete(&SECRETS, Some("p"), "ci-token").await;
    assert_refused(&authn, &token, "Token has been invalidated");
}

#[tokio::test]
async fn a_token_of_an_account_deleted_or_recreated_with_another_uid_is_refused() {
    let (world, uid, token, authn) = world_with_a_cached_token().await;

    world.delete(&SERVICEACCOUNTS, Some("p"), "ci").await;
    assert_refused(&authn, &token, r#"serviceaccounts "ci" not found"#);

    let new_uid = world.account("p", "ci").await;
    assert_ne!(new_uid, uid);
    let mismatch = format!("ServiceAccount UID ({new_uid}) does not match claim ({uid})");
    assert_refused(&authn, &token, &mismatch);
}

/// A bound token of `p/ci` (uid `uid`) for the audience [`ISSUER`], issued at `issued` for
/// `lifetime` seconds, tied to the Secret `(name, uid)` if given.
fn bound_token(
    world: &World,
    uid: &str,
    (issued, lifetime): (i64, i64),
    jti: &str,
    secret: Option<(&str, &str)>,
) -> String {
    mint::bound_token(
        &world.view,
        &BoundRequest {
            issuer: ISSUER,
            namespace: "p",
            account: "ci",
            uid,
            audiences: &[ISSUER.to_owned()],
            now: issued,
            lifetime,
            jti,
            secret,
        },
    )
    .unwrap()
}

#[tokio::test]
async fn a_bound_token_works_until_it_expires_and_only_from_when_it_is_valid() {
    let (world, uid) = world_with_account().await;
    let bound =
        |issued: i64, lifetime: i64| bound_token(&world, &uid, (issued, lifetime), "jti-1", None);
    let authn = world.authenticator(None);

    let fresh = bound(now(), 3600);
    let user = authn.authenticate_token(&fresh, None).unwrap();
    assert_eq!(user.username, CI);
    assert_eq!(
        user.extra["authentication.kubernetes.io/credential-id"],
        ["JTI=jti-1"]
    );
    // Expired an hour ago (beyond the minute of clock skew tolerated).
    let expired = bound(now() - 7200, 3600);
    assert_refused(&authn, &expired, "service account token has expired");
    // Issued an hour from now.
    let early = bound(now() + 3600, 3600);
    assert_refused(&authn, &early, "service account token is not valid yet");
    // Within the skew tolerated.
    assert!(
        authn
            .authenticate_token(&bound(now() - 3630, 3600), None)
            .is_ok()
    );
}

#[tokio::test]
async fn a_bound_token_tied_to_a_secret_ends_with_the_secret() {
    let (world, uid) = world_with_account().await;
    world.token_secret("p", "ci-token", "ci", &uid).await;
    let secret_uid = {
        let secret = world
            .registry
            .get(kargo_registry::Target::new(&SECRETS, Some("p"), "ci-token"))
            .await
            .unwrap();
        kargo_registry::Meta::uid(&secret).to_owned()
    };
    let secret = Some(("ci-token", secret_uid.as_str()));
    let token = bound_token(&world, &uid, (now(), 3600), "jti-2", secret);
    let authn = Arc::new(world.authenticator(None));
    assert!(authn.authenticate_token(&token, None).is_ok());
    world.delete(&SECRETS, Some("p"), "ci-token").await;
    assert_refused(&authn, &token, "service account token has been invalidated");
}

/// A clock the test moves by hand, starting at `start`.
fn clock(start: i64) -> (Arc<std::sync::atomic::AtomicI64>, crate::tokens::Clock) {
    let time = Arc::new(std::sync::atomic::AtomicI64::new(start));
    let read = time.clone();
    let clock: crate::tokens::Clock =
        Arc::new(move || read.load(std::sync::atomic::Ordering::SeqCst));
    (time, clock)
}

/// 2030-01-02T03:04:05Z.
const EXPIRES_AT: &str = "2030-01-02T03:04:05Z";

/// The account `p/ci`, the token of its Secret `ci-token` annotated with `expires_at`, and an
/// authenticator whose clock the test sets.
async fn world_with_an_expiring_token(
    expires_at: &str,
) -> (
    World,
    String,
    Authenticator,
    Arc<std::sync::atomic::AtomicI64>,
) {
    let (world, uid) = world_with_account().await;
    let annotation = [(kargo_api::expiry::EXPIRES_AT_ANNOTATION, expires_at)];
    let token = world
        .token_secret_annotated("p", "ci-token", "ci", &uid, &annotation)
        .await;
    let (time, clock) = clock(0);
    let authn = world.authenticator_with_clock(clock);
    (world, token, authn, time)
}

#[tokio::test]
async fn an_expiring_token_works_until_its_last_second_and_is_refused_from_the_expiry_on() {
    let at = kargo_api::expiry::parse_expires_at(EXPIRES_AT).unwrap();
    let (_world, token, authn, time) = world_with_an_expiring_token(EXPIRES_AT).await;
    time.store(at - 3600, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(answer(&authn, &token), (Ok(CI.to_owned()), Ok(())));
    time.store(at - 1, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(answer(&authn, &token), (Ok(CI.to_owned()), Ok(())));
    time.store(at, std::sync::atomic::Ordering::SeqCst);
    assert_refused(&authn, &token, "Token has expired");
    time.store(at + 1, std::sync::atomic::Ordering::SeqCst);
    assert_refused(&authn, &token, "Token has expired");
}

#[tokio::test]
async fn a_cached_token_is_refused_once_it_has_expired() {
    let at = kargo_api::expiry::parse_expires_at(EXPIRES_AT).unwrap();
    let (_world, token, authn, time) = world_with_an_expiring_token(EXPIRES_AT).await;
    time.store(at - 10, std::sync::atomic::Ordering::SeqCst);
    assert!(authn.authenticate_token(&token, None).is_ok());
    let hits = authn.tokens().cache_stats();
    let before = hits.hits.load(std::sync::atomic::Ordering::Relaxed);
    time.store(at + 1, std::sync::atomic::Ordering::SeqCst);
    assert_refused(&authn, &token, "Token has expired");
    assert!(
        hits.hits.load(std::sync::atomic::Ordering::Relaxed) > before,
        "the refusal came from the cache of verified tokens"
    );
}

#[tokio::test]
async fn a_token_whose_expiry_annotation_is_not_a_time_is_refused() {
    for malformed in ["next week", "", "2030-13-45T00:00:00Z", "1893553445"] {
        let (_world, token, authn, _) = world_with_an_expiring_token(malformed).await;
        assert_refused(&authn, &token, "Token has an invalid expiry annotation");
    }
}

#[tokio::test]
async fn an_expiry_set_on_an_existing_secret_applies_to_its_token() {
    let (world, _, token, _) = world_with_a_cached_token().await;
    let (time, clock) = clock(kargo_api::expiry::parse_expires_at(EXPIRES_AT).unwrap());
    let authn = world.authenticator_with_clock(clock);
    assert!(authn.authenticate_token(&token, None).is_ok());
    world
        .registry
        .update_with(
            kargo_registry::Target::new(&SECRETS, Some("p"), "ci-token"),
            &kargo_registry::WriteOptions::default(),
            |secret| {
                let mut secret = secret.clone();
                secret["metadata"]["annotations"][kargo_api::expiry::EXPIRES_AT_ANNOTATION] =
                    EXPIRES_AT.into();
                Ok(secret)
            },
        )
        .await
        .unwrap();
    world.settle().await;
    assert_refused(&authn, &token, "Token has expired");
    time.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    assert!(authn.authenticate_token(&token, None).is_ok());
}

/// Changes the annotations of the Secret `p/ci-token` (`None` removes one) and, if `token` is
/// given, its value; waits until the view has seen it.
async fn change_token_secret(
    world: &World,
    annotations: &[(&str, Option<&str>)],
    token: Option<&str>,
) {
    use base64::Engine;
    world
        .registry
        .update_with(
            kargo_registry::Target::new(&SECRETS, Some("p"), "ci-token"),
            &kargo_registry::WriteOptions::default(),
            |secret| {
                let mut secret = secret.clone();
                let map = secret["metadata"]["annotations"].as_object_mut().unwrap();
                for (key, value) in annotations {
                    match value {
                        Some(value) => map.insert((*key).into(), (*value).into()),
                        None => map.remove(*key),
                    };
                }
                if let Some(token) = token {
                    secret["data"]["token"] = base64::engine::general_purpose::STANDARD
                        .encode(token)
                        .into();
                }
                Ok(secret)
            },
        )
        .await
        .unwrap();
    world.settle().await;
}

#[tokio::test]
async fn a_disabled_token_is_refused_even_from_the_cache_and_works_again_once_enabled() {
    use kargo_api::token_lifecycle::DISABLED_ANNOTATION;
    let (world, _, token, authn) = world_with_a_cached_token().await;
    change_token_secret(&world, &[(DISABLED_ANNOTATION, Some("true"))], None).await;
    assert_refused(&authn, &token, "Token has been disabled");
    change_token_secret(&world, &[(DISABLED_ANNOTATION, Some("false"))], None).await;
    assert_eq!(answer(&authn, &token), (Ok(CI.to_owned()), Ok(())));
    change_token_secret(&world, &[(DISABLED_ANNOTATION, Some("yes"))], None).await;
    assert_refused(&authn, &token, "Token has been disabled");
    change_token_secret(&world, &[(DISABLED_ANNOTATION, None)], None).await;
    assert_eq!(answer(&authn, &token), (Ok(CI.to_owned()), Ok(())));
}

#[tokio::test]
async fn a_rotated_tokens_old_value_works_until_its_grace_ends_and_the_new_one_from_the_start() {
    use kargo_api::token_lifecycle::{
        PREVIOUS_TOKEN_SHA256_ANNOTATION as SHA, PREVIOUS_TOKEN_VALID_UNTIL_ANNOTATION as UNTIL,
        sha256_hex,
    };
    let (world, uid, old, _) = world_with_a_cached_token().await;
    let until = kargo_api::expiry::parse_expires_at(EXPIRES_AT).unwrap();
    let (time, clock) = clock(until - 3600);
    let authn = world.authenticator_with_clock(clock);
    let new = world.minter.reissue("p", "ci-token", "ci", &uid).unwrap();
    assert_ne!(new, old, "a rotation issues a different value");
    let old_hash = sha256_hex(&crate::view::token_hash(old.as_bytes()));
    change_token_secret(
        &world,
        &[(SHA, Some(&old_hash)), (UNTIL, Some(EXPIRES_AT))],
        Some(&new),
    )
    .await;
    assert_eq!(answer(&authn, &old), (Ok(CI.to_owned()), Ok(())));
    assert_eq!(answer(&authn, &new), (Ok(CI.to_owned()), Ok(())));
    time.store(until - 1, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(answer(&authn, &old), (Ok(CI.to_owned()), Ok(())));
    time.store(until, std::sync::atomic::Ordering::SeqCst);
    assert_refused(&authn, &old, "Token does not match server's copy");
    assert_eq!(answer(&authn, &new), (Ok(CI.to_owned()), Ok(())));

    // A malformed end refuses the old value (fail closed); disabling refuses both.
    time.store(until - 3600, std::sync::atomic::Ordering::SeqCst);
    change_token_secret(&world, &[(UNTIL, Some("tomorrow"))], None).await;
    assert_refused(&authn, &old, "Token does not match server's copy");
    change_token_secret(
        &world,
        &[
            (UNTIL, Some(EXPIRES_AT)),
            (
                kargo_api::token_lifecycle::DISABLED_ANNOTATION,
                Some("true"),
            ),
        ],
        None,
    )
    .await;
    assert_refused(&authn, &old, "Token has been disabled");
    assert_refused(&authn, &new, "Token has been disabled");
}

/// The uses taken from the view's log: (secret, minute, address).
fn taken(world: &World) -> Vec<(String, i64, Option<std::net::IpAddr>)> {
    let mut taken: Vec<_> = world
        .view
        .usage()
        .take()
        .into_iter()
        .map(|u| (u.name, u.used.minute, u.used.from))
        .collect();
    taken.sort();
    taken
}

#[tokio::test]
async fn a_legacy_token_is_recorded_as_used_once_a_minute_with_its_address_and_kept_across_secret_updates()
 {
    let (world, uid) = world_with_account().await;
    let token = world.token_secret("p", "ci-token", "ci", &uid).await;
    let noon = kargo_api::expiry::parse_expires_at("2030-01-02T12:00:00Z").unwrap();
    let (time, clock) = clock(noon + 5);
    let authn = world.authenticator_with_clock(clock);
    let from: Option<std::net::IpAddr> = Some("192.0.2.7".parse().unwrap());
    let other: Option<std::net::IpAddr> = Some("2001:db8::9".parse().unwrap());
    assert!(taken(&world).is_empty(), "not used yet");

    assert!(authn.authenticate_token(&token, from).is_ok());
    assert!(authn.authenticate_token(&token, other).is_ok());
    assert!(authn.authenticate_token("not-a-token", from).is_err());
    assert_eq!(taken(&world), [("ci-token".to_owned(), noon, from)]);
    assert!(authn.authenticate_token(&token, other).is_ok());
    assert!(
        taken(&world).is_empty(),
        "the same minute again is no new use"
    );

    // A write of the Secret (as the flusher's) keeps what was recorded and not yet taken.
    time.store(noon + 61, std::sync::atomic::Ordering::SeqCst);
    assert!(authn.authenticate_token(&token, other).is_ok());
    world
        .registry
        .update_with(
            kargo_registry::Target::new(&SECRETS, Some("p"), "ci-token"),
            &kargo_registry::WriteOptions::default(),
            |secret| {
                let mut secret = secret.clone();
                secret["metadata"]["labels"]["x"] = "y".into();
                Ok(secret)
            },
        )
        .await
        .unwrap();
    world.settle().await;
    assert!(authn.authenticate_token(&token, from).is_ok());
    assert_eq!(taken(&world), [("ci-token".to_owned(), noon + 60, other)]);

    // TokenReview counts as a use, from no known address.
    time.store(noon + 125, std::sync::atomic::Ordering::SeqCst);
    assert!(authn.tokens().authenticate(&token, None).is_ok());
    assert_eq!(taken(&world), [("ci-token".to_owned(), noon + 120, None)]);
}

//! The OIDC authenticator against a real local HTTPS issuer (the fixture of [`super::testing`]).
//! The real provider is exercised end to end in `kargo-cli`'s e2e tests.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::keys::Jwks;
use super::testing::*;
use super::*;

/// Polls `check` until it is true, for at most 10 seconds.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// An authenticator for `issuer`, once it has fetched the keys.
async fn started(issuer: &Issuer) -> (Arc<OidcAuthenticator>, CancellationToken) {
    let shutdown = CancellationToken::new();
    let oidc = OidcAuthenticator::start(issuer.config(), shutdown.clone()).unwrap();
    eventually("the issuer's keys", || oidc.readiness().is_ok()).await;
    (oidc, shutdown)
}

#[tokio::test]
async fn a_good_token_names_the_person_by_the_username_claim_with_groups_and_claims() {
    let (rsa, ec) = (TestKey::rsa(), TestKey::ec("ec-1"));
    let issuer = Issuer::start(&[&rsa, &ec]).await;
    let (oidc, _shutdown) = started(&issuer).await;

    let token = rsa.token(&issuer.claims("alice@example.com"));
    assert!(oidc.is_its_token(&token));
    let user = oidc.verify(&token).unwrap();
    assert_eq!(user.username, "alice@example.com");
    assert_eq!(user.groups, ["devs", "ops", "system:authenticated"]);
    assert_eq!(user.uid, "");
    assert_eq!(user.claims["email"], ["alice@example.com"]);
    assert_eq!(user.claims["groups"], ["devs", "ops"]);
    assert_eq!(user.claims["sub"], ["sub-alice@example.com"]);
    assert_eq!(user.claims["name"], ["Alice Example"]);
    assert_eq!(user.claims["aud"], [CLIENT_ID]);
    // Numbers and booleans are not claims a role can be mapped by.
    assert!(!user.claims.contains_key("exp") && !user.claims.contains_key("email_verified"));
    // Cached: the same user, shared.
    assert!(Arc::ptr_eq(&oidc.cached(&token).unwrap(), &user));

    // ES256, the CLI's client id as the audience, a scalar groups claim.
    let mut claims = issuer.claims("bob@example.com");
    claims["aud"] = json!([CLI_CLIENT_ID]);
    claims["groups"] = json!("admins");
    let user = oidc.verify(&ec.token(&claims)).unwrap();
    assert_eq!(user.username, "bob@example.com");
    assert_eq!(user.groups, ["admins", "system:authenticated"]);

    // Another username claim.
    let mut config = issuer.config();
    config.username_claim = "sub".into();
    let by_sub = OidcAuthenticator::start(config, CancellationToken::new()).unwrap();
    eventually("the keys", || by_sub.readiness().is_ok()).await;
    assert_eq!(
        by_sub.verify(&token).unwrap().username,
        "sub-alice@example.com"
    );
    // A token without the username claim is refused.
    let mut claims = issuer.claims("x");
    claims.as_object_mut().unwrap().remove("email");
    assert_eq!(
        oidc.verify(&rsa.token(&claims)).unwrap_err(),
        OidcError::Username("email".into())
    );
}

#[tokio::test]
async fn forged_resigned_foreign_expired_and_unsupported_tokens_are_refused() {
    let rsa = TestKey::rsa();
    let issuer = Issuer::start(&[&rsa]).await;
    let (oidc, _shutdown) = started(&issuer).await;
    let good = rsa.token(&issuer.claims("alice@example.com"));

    // Forged: the claims changed after signing.
    let parts: Vec<&str> = good.split('.').collect();
    let mut claims = issuer.claims("alice@example.com");
    claims["email"] = json!("mallory@example.com");
    let forged = format!("{}.{}.{}", parts[0], b64(&claims), parts[2]);
    assert_eq!(oidc.verify(&forged).unwrap_err(), OidcError::Signature);

    // Re-signed with another key under the issuer's kid.
    let other = TestKey::rsa();
    let resigned = other.token_with(
        &json!({"alg": "RS256", "kid": rsa.kid()}),
        &issuer.claims("alice@example.com"),
    );
    assert_eq!(oidc.verify(&resigned).unwrap_err(), OidcError::Signature);

    // Wrong audience.
    let mut claims = issuer.claims("alice@example.com");
    claims["aud"] = json!("someone-else");
    assert!(matches!(
        oidc.verify(&rsa.token(&claims)).unwrap_err(),
        OidcError::Audience(..)
    ));

    // Wrong issuer (signed by the right key: as a verifier sees a token of another issuer).
    let mut claims = issuer.claims("alice@example.com");
    claims["iss"] = json!("https://evil.example.com");
    let foreign = rsa.token(&claims);
    assert!(!oidc.is_its_token(&foreign));
    assert_eq!(
        oidc.verify(&foreign).unwrap_err().to_string(),
        format!(
            "oidc: id token issued by a different provider, expected {:?} got \"https://evil.example.com\"",
            issuer.url
        )
    );

    // Expired beyond the skew; expired within it is still good.
    let mut claims = issuer.claims("alice@example.com");
    claims["exp"] = json!(now_secs() - 31 - LEEWAY as i64);
    assert_eq!(
        oidc.verify(&rsa.token(&claims)).unwrap_err(),
        OidcError::Expired
    );
    claims["exp"] = json!(now_secs() - 5);
    assert!(oidc.verify(&rsa.token(&claims)).is_ok());

    // Not yet valid beyond the skew.
    let mut claims = issuer.claims("alice@example.com");
    claims["nbf"] = json!(now_secs() + 120);
    assert_eq!(
        oidc.verify(&rsa.token(&claims)).unwrap_err(),
        OidcError::NotYetValid
    );

    // No expiry at all.
    let mut claims = issuer.claims("alice@example.com");
    claims.as_object_mut().unwrap().remove("exp");
    assert_eq!(
        oidc.verify(&rsa.token(&claims)).unwrap_err(),
        OidcError::Missing("exp".into())
    );

    // alg none, with and without a signature.
    let unsigned = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "kid": rsa.kid()})),
        b64(&issuer.claims("alice@example.com"))
    );
    assert_eq!(
        oidc.verify(&unsigned).unwrap_err(),
        OidcError::Algorithm("none".into())
    );
    assert_eq!(
        oidc.verify(&unsigned).unwrap_err().to_string(),
        "oidc: id token signed with unsupported algorithm, expected [\"RS256\" \"ES256\"] got \"none\""
    );

    // HS256 keyed with the issuer's public key (the JWK's modulus, or the whole JWK).
    let header = json!({"alg": "HS256", "kid": rsa.kid()});
    let signed = format!(
        "{}.{}",
        b64(&header),
        b64(&issuer.claims("alice@example.com"))
    );
    for secret in [
        rsa.jwk()["n"].as_str().unwrap().to_owned(),
        rsa.jwk().to_string(),
    ] {
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes());
        let tag = aws_lc_rs::hmac::sign(&key, signed.as_bytes());
        let token = format!("{signed}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()));
        assert_eq!(
            oidc.verify(&token).unwrap_err(),
            OidcError::Algorithm("HS256".into())
        );
    }

    // Not a JWT.
    assert_eq!(oidc.verify("not.a.jwt").unwrap_err(), OidcError::Malformed);

    // None of these was remembered; the good token still passes.
    assert!(oidc.cache.read().unwrap().len() == 1);
    assert_eq!(oidc.verify(&good).unwrap().username, "alice@example.com");
}

#[tokio::test]
async fn an_unknown_kid_fetches_the_keys_again_at_most_once_per_interval() {
    let (first, second, third) = (TestKey::rsa(), TestKey::rsa(), TestKey::ec("ec-new"));
    let issuer = Issuer::start(&[&first]).await;
    let (oidc, _shutdown) = started(&issuer).await;
    assert_eq!(issuer.hits(), 1);

    // The issuer rotates to a key the server has not fetched yet.
    issuer.publish(&[&first, &second, &third]);
    let rotated = second.token(&issuer.claims("alice@example.com"));
    assert_eq!(
        oidc.verify(&rotated).unwrap_err(),
        OidcError::UnknownKid(second.kid().to_owned())
    );
    eventually("a fetch for the unknown kid", || oidc.attempts() == 2).await;
    assert_eq!(issuer.hits(), 2);
    assert_eq!(oidc.verify(&rotated).unwrap().username, "alice@example.com");
    assert!(
        oidc.verify(&third.token(&issuer.claims("carol@example.com")))
            .is_ok()
    );

    // Another unknown kid within the interval does not fetch again.
    let unknown = TestKey::rsa().token(&issuer.claims("alice@example.com"));
    for _ in 0..5 {
        assert!(matches!(
            oidc.verify(&unknown).unwrap_err(),
            OidcError::UnknownKid(_)
        ));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(issuer.hits(), 2);
    assert_eq!(oidc.attempts(), 2);
}

#[tokio::test]
async fn an_issuer_down_at_start_is_retried_in_the_background_and_its_tokens_refused_until_then() {
    let key = TestKey::rsa();
    // A free port, with nobody listening yet.
    let address = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let issuer = Issuer::unstarted(address, &[&key]);
    let oidc = OidcAuthenticator::start(issuer.config(), CancellationToken::new()).unwrap();
    eventually("a failed fetch", || oidc.attempts() >= 1).await;
    let unready = oidc.readiness().unwrap_err();
    assert!(
        unready.starts_with(&format!(
            "issuer {} unreachable: GET {}/.well-known/openid-configuration: ",
            issuer.url, issuer.url
        )),
        "{unready}"
    );
    let token = key.token(&issuer.claims("alice@example.com"));
    assert_eq!(oidc.verify(&token).unwrap_err(), OidcError::NoKeys);

    // The issuer comes up: the next retry (after the back-off) fetches the keys.
    issuer.serve(TcpListener::bind(issuer.address).await.unwrap());
    eventually("the keys after the issuer came up", || {
        oidc.readiness().is_ok()
    })
    .await;
    assert_eq!(oidc.verify(&token).unwrap().username, "alice@example.com");
}

#[test]
fn a_discovery_document_of_another_issuer_and_odd_keys_are_handled() {
    let rsa = TestKey::rsa();
    let jwks = Jwks::parse(&json!({"keys": [
        rsa.jwk(),
        {"kty": "EC", "crv": "P-384", "kid": "p384", "x": "AA", "y": "AA"},
        {"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": "AA"},
        {"kty": "RSA", "use": "enc", "kid": "enc", "n": "AQAB", "e": "AQAB"},
        {"kty": "RSA", "kid": "no-n", "e": "AQAB"},
    ]}))
    .unwrap();
    assert_eq!(jwks.len(), 1);
    assert_eq!(jwks.candidates(rsa.kid(), "RS256").len(), 1);
    assert_eq!(jwks.candidates(rsa.kid(), "ES256").len(), 0);
    assert_eq!(jwks.candidates("", "RS256").len(), 1);
    assert!(Jwks::parse(&json!({"nokeys": []})).is_err());
}

#[test]
fn claim_settings_read_name_equals_value() {
    let mut claims = BTreeMap::new();
    parse_claim_setting("email=a@b.c", &mut claims).unwrap();
    parse_claim_setting("groups = admins", &mut claims).unwrap();
    parse_claim_setting("email=a@b.c", &mut claims).unwrap();
    parse_claim_setting("email=0@b.c", &mut claims).unwrap();
    assert_eq!(
        claims,
        BTreeMap::from([
            (
                "email".to_owned(),
                vec!["0@b.c".to_owned(), "a@b.c".to_owned()]
            ),
            ("groups".to_owned(), vec!["admins".to_owned()]),
        ])
    );
    assert!(parse_claim_setting("email", &mut claims).is_err());
    assert!(parse_claim_setting("=x", &mut claims).is_err());
}

#[test]
fn the_public_configuration_and_start_up_checks() {
    let mut config = OidcConfig::new("https://idp.example.com", "kargo");
    assert_eq!(
        config.public(),
        json!({"issuerUrl": "https://idp.example.com", "clientId": "kargo", "cliClientId": "",
            "scopes": ["openid", "profile", "email", "groups"]})
    );
    config.cli_client_id = Some("kargo-cli".into());
    assert_eq!(config.audiences(), ["kargo", "kargo-cli"]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = runtime.enter();
    let http = OidcAuthenticator::start(
        OidcConfig::new("http://idp.example.com", "kargo"),
        CancellationToken::new(),
    );
    assert!(matches!(http, Err(ConfigError::Issuer(_))));
    let mut bad_ca = OidcConfig::new("https://idp.example.com", "kargo");
    bad_ca.ca_pem = Some(b"not a certificate".to_vec());
    assert!(matches!(
        OidcAuthenticator::start(bad_ca, CancellationToken::new()),
        Err(ConfigError::Ca(_))
    ));
}

/// What an observer hears: `(credential, username or failure)`.
#[derive(Default)]
struct Heard(Mutex<Vec<(crate::observe::Credential, String)>>);

impl crate::observe::AuthObserver for Heard {
    fn authentication(&self, attempt: &crate::observe::AuthnAttempt<'_>) {
        let outcome = match &attempt.outcome {
            crate::observe::AuthnOutcome::Authenticated(user) => user.username.clone(),
            crate::observe::AuthnOutcome::Failed(reason) => format!("failed: {reason}"),
        };
        self.0.lock().unwrap().push((attempt.credential, outcome));
    }
}

#[tokio::test]
async fn the_authenticator_accepts_id_tokens_beside_service_account_tokens_and_waits_for_a_rotated_key()
 {
    use crate::authn::AuthFailure;
    use crate::observe::Credential;

    let (first, second) = (TestKey::rsa(), TestKey::rsa());
    let issuer = Issuer::start(&[&first]).await;
    let (oidc, _shutdown) = started(&issuer).await;
    let world = crate::testing::World::new().await;
    let heard = Arc::new(Heard::default());
    let authn = world
        .authenticator(Some(heard.clone()))
        .with_oidc(oidc.clone());

    let token = first.token(&issuer.claims("alice@example.com"));
    let bearer = format!("Bearer {token}");
    let user = authn.authenticate(Some(&bearer), None, None).unwrap();
    assert_eq!(user.username, "alice@example.com");
    // Again, from the cache.
    assert!(Arc::ptr_eq(
        &authn.authenticate_token(&token, None).unwrap(),
        &user
    ));

    let mut claims = issuer.claims("alice@example.com");
    claims["aud"] = json!("another-app");
    assert_eq!(
        authn
            .authenticate_token(&first.token(&claims), None)
            .unwrap_err(),
        AuthFailure::Invalid
    );

    // The provider rotates its key: the first request with the new kid waits for the keys.
    issuer.publish(&[&second]);
    let rotated = second.token(&issuer.claims("bob@example.com"));
    let started_at = tokio::time::Instant::now();
    let user = authn
        .authenticate_token_waiting(&rotated, None)
        .await
        .unwrap();
    assert_eq!(user.username, "bob@example.com");
    assert!(started_at.elapsed() < KID_WAIT);
    assert_eq!(issuer.hits(), 2);
    // A kid the provider does not have either: refused after the fetch, without waiting for
    // another one within the interval.
    let unknown = TestKey::rsa().token(&issuer.claims("eve@example.com"));
    assert_eq!(
        authn
            .authenticate_token_waiting(&unknown, None)
            .await
            .unwrap_err(),
        AuthFailure::Invalid
    );

    // Service-account tokens are unaffected.
    world.namespace("p").await;
    let uid = world.account("p", "ci").await;
    let sa_token = world.token_secret("p", "ci-token", "ci", &uid).await;
    world.settle().await;
    assert_eq!(
        authn.authenticate_token(&sa_token, None).unwrap().username,
        "system:serviceaccount:p:ci"
    );

    let heard = heard.0.lock().unwrap().clone();
    let expected_aud = format!(
        "failed: oidc: expected audience [\"{CLIENT_ID}\", \"{CLI_CLIENT_ID}\"] got \"another-app\""
    );
    assert_eq!(
        heard[..5],
        [
            (Credential::Oidc, "alice@example.com".to_owned()),
            (Credential::Oidc, "alice@example.com".to_owned()),
            (Credential::Oidc, expected_aud),
            (Credential::Oidc, "bob@example.com".to_owned()),
            (
                Credential::Oidc,
                format!(
                    "failed: failed to verify signature: no key with kid {:?} in the issuer's key set",
                    unknown_kid(&unknown)
                )
            ),
        ]
    );
    assert_eq!(heard[5].1, "system:serviceaccount:p:ci");
}

fn unknown_kid(token: &str) -> String {
    crate::jwt::parse(token).unwrap().kid
}

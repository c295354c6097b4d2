//! The tests' OpenID provider itself (`oidc`): a person signs in through the real authorization
//! endpoint and gets an ID token whose claims and signature are what Kargo will verify; refresh
//! tokens work; key rotation changes the `kid`. These need no Kargo server.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};

use crate::oidc::{
    ALICE, BOB, CLI_CLIENT_ID, CLIENT_ID, Options, Provider, claims_of, header_of, random_text,
    sign_with_foreign_key,
};

/// Verifies `jwt` against the provider's JWKS (by its `kid`), its issuer and `audience`.
fn verify(provider: &Provider, jwt: &str, audience: &str) -> Result<Value, String> {
    let jwks: JwkSet = serde_json::from_value(provider.jwks()).expect("a JWKS");
    let kid = header_of(jwt)["kid"].as_str().expect("a kid").to_owned();
    let jwk = jwks
        .find(&kid)
        .ok_or_else(|| format!("kid {kid} not in the JWKS"))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let alg = match header_of(jwt)["alg"].as_str() {
        Some("ES256") => Algorithm::ES256,
        _ => Algorithm::RS256,
    };
    let mut validation = Validation::new(alg);
    validation.set_issuer(&[provider.issuer()]);
    validation.set_audience(&[audience]);
    jsonwebtoken::decode::<Value>(jwt, &key, &validation)
        .map(|data| data.claims)
        .map_err(|e| e.to_string())
}

#[test]
fn discovery_names_the_issuer_its_endpoints_and_the_scopes_kargo_asks_for() {
    let provider = Provider::start();
    let doc = provider.discovery();
    assert_eq!(doc["issuer"], provider.issuer());
    assert!(provider.issuer().starts_with("https://127.0.0.1:"));
    assert_eq!(doc["jwks_uri"], format!("{}/jwks", provider.issuer()));
    assert_eq!(
        doc["authorization_endpoint"],
        format!("{}/auth", provider.issuer())
    );
    assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
    for scope in ["openid", "email", "profile", "groups", "offline_access"] {
        assert!(
            doc["scopes_supported"]
                .as_array()
                .unwrap()
                .contains(&json!(scope)),
            "{scope}: {doc}"
        );
    }
}

#[test]
fn alice_signs_in_and_gets_an_id_token_that_verifies_against_the_jwks() {
    let provider = Provider::start();
    let (id_token, refresh_token) = provider.id_token(ALICE);
    assert!(!refresh_token.is_empty());
    let claims = verify(&provider, &id_token, CLI_CLIENT_ID).expect("a valid ID token");
    assert_eq!(claims["iss"], provider.issuer());
    assert_eq!(claims["aud"], CLI_CLIENT_ID);
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["email"], ALICE);
    assert_eq!(claims["name"], "Alice Anders");
    assert_eq!(claims["groups"], json!(["devops"]));
    assert_eq!(header_of(&id_token)["kid"], provider.kid());
    // The same token is refused for another audience, and a token changed by one byte of its
    // payload does not verify.
    assert!(verify(&provider, &id_token, CLIENT_ID).is_err());
    let mut parts: Vec<String> = id_token.split('.').map(str::to_owned).collect();
    let forged = claims_of(&id_token);
    let mut forged = forged.as_object().unwrap().clone();
    forged.insert("groups".into(), json!(["admins"]));
    use base64::Engine;
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&forged).unwrap());
    assert!(verify(&provider, &parts.join("."), CLI_CLIENT_ID).is_err());
    // Re-signed with another key under the provider's kid: refused too.
    let kid = header_of(&id_token)["kid"].as_str().unwrap().to_owned();
    let resigned = sign_with_foreign_key(&kid, &json!(forged));
    assert_eq!(header_of(&resigned)["kid"], kid.as_str());
    assert!(verify(&provider, &resigned, CLI_CLIENT_ID).is_err());

    // Bob, through the server's client, gets his own claims and that audience.
    let bob = provider.tokens(CLIENT_ID, BOB);
    let claims = verify(&provider, &bob.id_token, CLIENT_ID).expect("a valid ID token");
    assert_eq!(claims["email"], BOB);
    assert_eq!(claims["groups"], json!(["qa"]));
}

#[test]
fn a_wrong_password_is_refused_on_the_login_form() {
    let provider = Provider::start();
    let url = provider.authorization_url(
        CLI_CLIENT_ID,
        "http://localhost:9999/auth/callback",
        &random_text(64),
        &random_text(24),
    );
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        provider.sign_in(&url, ALICE, "not-alices-password")
    }));
    let message = outcome.expect_err("signed in with a wrong password");
    let message = message
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(message.contains("Invalid email or password."), "{message}");
}

#[test]
fn a_refresh_token_gives_a_new_id_token_with_a_later_expiry() {
    let provider = Provider::start_with(Options {
        id_token_ttl: std::time::Duration::from_secs(2),
        ..Options::default()
    });
    let (id_token, refresh_token) = provider.id_token(ALICE);
    let first = claims_of(&id_token);
    assert_eq!(
        first["exp"].as_i64().unwrap() - first["iat"].as_i64().unwrap(),
        2
    );
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let refreshed = provider.refresh(&refresh_token);
    let claims = verify(&provider, &refreshed.id_token, CLI_CLIENT_ID).expect("valid");
    assert_eq!(claims["email"], ALICE);
    assert_eq!(claims["groups"], json!(["devops"]));
    assert!(claims["exp"].as_i64() > first["exp"].as_i64());
    assert_ne!(refreshed.refresh_token, refresh_token, "rotated");
}

#[test]
fn key_rotation_changes_the_kid_and_the_jwks_serves_the_new_key_first() {
    let provider = Provider::start();
    let (before, _) = provider.id_token(ALICE);
    let old_kid = header_of(&before)["kid"].as_str().unwrap().to_owned();
    let new_kid = provider.rotate_key(true);
    assert_ne!(new_kid, old_kid);
    let kids: Vec<Value> = provider.jwks()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].clone())
        .collect();
    assert_eq!(kids, vec![json!(new_kid), json!(old_kid)]);
    let (after, refresh_token) = provider.id_token(ALICE);
    assert_eq!(header_of(&after)["kid"], new_kid);
    verify(&provider, &after, CLI_CLIENT_ID).expect("the new token verifies");
    verify(&provider, &before, CLI_CLIENT_ID).expect("the old token still verifies");
    // Dropping the old key: tokens signed with it no longer find their key; refresh tokens
    // issued before the rotation still work.
    let newest = provider.rotate_key(false);
    assert_eq!(provider.jwks()["keys"].as_array().unwrap().len(), 1);
    assert!(verify(&provider, &before, CLI_CLIENT_ID).is_err());
    let refreshed = provider.refresh(&refresh_token);
    assert_eq!(header_of(&refreshed.id_token)["kid"], newest);
}

#[test]
fn an_es256_provider_signs_with_an_ec_key() {
    let provider = Provider::start_with(Options {
        alg: "ES256",
        ..Options::default()
    });
    let (id_token, _) = provider.id_token(BOB);
    assert_eq!(header_of(&id_token)["alg"], "ES256");
    let claims = verify(&provider, &id_token, CLI_CLIENT_ID).expect("valid");
    assert_eq!(claims["email"], BOB);
}

#[test]
fn complete_login_brings_the_code_to_a_local_callback_as_a_browser_would() {
    use std::io::{BufRead, BufReader, Write};
    let provider = Provider::start();
    // A stand-in for `kargo login --sso`'s callback server.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let callback = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut request_line = String::new();
        reader.read_line(&mut request_line).unwrap();
        let mut stream = stream;
        stream
            .write_all(
                b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\nconnection: close\r\n\r\nsigned in",
            )
            .unwrap();
        request_line
    });
    let state = random_text(24);
    let url = provider.authorization_url(
        CLI_CLIENT_ID,
        &format!("http://localhost:{port}/auth/callback"),
        &random_text(64),
        &state,
    );
    let printed = format!("Open this URL: {url}\n");
    let found = provider.find_authorization_url(&printed).expect("the URL");
    assert_eq!(found, url);
    assert_eq!(
        provider.complete_login(&found, ALICE),
        (200, "signed in".to_owned())
    );
    let request_line = callback.join().unwrap();
    assert!(
        request_line.starts_with("GET /auth/callback?code="),
        "{request_line}"
    );
    assert!(
        request_line.contains(&format!("state={state}")),
        "{request_line}"
    );
    assert!(
        request_line.contains(&format!(
            "iss={}",
            crate::oidc::form_encode_value(provider.issuer())
        )),
        "{request_line}"
    );
}

//! Fuzz targets for the server's parsers that see request bytes: the Kubernetes protobuf decoder,
//! bearer tokens (service-account JWTs, the admin's HS256 JWT, the `Authorization` header),
//! JSON and YAML bodies under any Content-Type, continue tokens and resourceVersions.
//!
//! Each target is a cargo-fuzz-style `fn(&[u8])` run by `kargo_fuzz::Fuzzer` on its corpus in
//! `fuzz/<target>/` and on mutants of it, for `KARGO_FUZZ_SECONDS` (2 s in the normal test
//! suite; `scripts/fuzz.sh` runs longer). Inputs are read raw and, where a grammar helps, also
//! as the choices of one (`kargo_fuzz::structured`). Properties checked:
//!
//! - protobuf: a body that decodes names a supported kind, and re-encoding its object with the
//!   `k8s-pb` message type decodes to the same JSON (decoding is a function of the message, not
//!   of its byte layout);
//! - tokens: a token the verifier accepts is one the test signed, with the key it holds; an
//!   `Authorization` header authenticates only with such a token, as the one account or admin;
//!   a token signed by the key with any claims never authenticates as anyone else;
//! - bodies: every failure is a 400, 413 or 415; a JSON body decodes the same under every JSON
//!   media type and, being YAML too, under the YAML ones;
//! - continue tokens: the key of an accepted token stays under the list's prefix, and encoding
//!   then decoding returns the revision and key;
//! - resourceVersions: only decimal digits parse, as in kube-apiserver (`strconv.ParseUint`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use k8s_pb::api::authentication::v1 as authn;
use k8s_pb::api::authorization::v1 as authz;
use k8s_pb::api::core::v1 as core;
use k8s_pb::api::rbac::v1 as rbac;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use kargo_api::resources::{SECRETS, SERVICEACCOUNTS};
use kargo_fuzz::Fuzzer;
use kargo_fuzz::arbitrary::{Result as ArbitraryResult, Unstructured};
use kargo_fuzz::structured::{self, word};
use kargo_server::auth::admin::Admin;
use kargo_server::auth::authn::{Authenticator, bearer};
use kargo_server::auth::jwt::{self, BoundRequest};
use kargo_server::auth::keys::{self, KeySet};
use kargo_server::auth::tokens::TokenAuthenticator;
use kargo_server::auth::view::AuthView;
use kargo_server::http::body;
use kargo_server::http::protobuf::{self, MAGIC};
use kargo_server::registry::informer::{Handler, Head};
use kargo_server::registry::list::{decode_continue, encode_continue};
use kargo_server::registry::object::parse_revision;
use kargo_store::{Event, EventKind, KeyValue, Revision};
use prost::Message;
use serde_json::{Value, json};

fn corpus(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(target)
}

fn fuzzer(target: &str) -> Fuzzer {
    Fuzzer::new(target).corpus(corpus(target))
}

fn structured<T>(
    data: &[u8],
    build: impl FnOnce(&mut Unstructured<'_>) -> ArbitraryResult<T>,
) -> Option<T> {
    build(&mut Unstructured::new(data)).ok()
}

// ---------------------------------------------------------------------------------------------
// Protobuf

/// The kubectl bodies captured for the decoder's own tests, as seeds.
fn captured_protobuf_bodies() -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../kargo-http/src/protobuf/testdata");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("the captured kubectl bodies")
        .map(|e| e.expect("a directory entry").path())
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| std::fs::read(p).expect("a captured body"))
        .collect()
}

fn reencode<M: Message + Default>(raw: &[u8]) -> Option<Vec<u8>> {
    M::decode(raw).ok().map(|m| m.encode_to_vec())
}

/// The object bytes decoded with the kind's `k8s-pb` message and encoded again.
fn reencode_object(api_version: &str, kind: &str, raw: &[u8]) -> Option<Vec<u8>> {
    match (api_version, kind) {
        (_, "DeleteOptions") => reencode::<meta::DeleteOptions>(raw),
        ("v1", "Namespace") => reencode::<core::Namespace>(raw),
        ("v1", "ServiceAccount") => reencode::<core::ServiceAccount>(raw),
        ("v1", "Secret") => reencode::<core::Secret>(raw),
        ("v1", "ConfigMap") => reencode::<core::ConfigMap>(raw),
        (_, "Role") => reencode::<rbac::Role>(raw),
        (_, "ClusterRole") => reencode::<rbac::ClusterRole>(raw),
        (_, "RoleBinding") => reencode::<rbac::RoleBinding>(raw),
        (_, "ClusterRoleBinding") => reencode::<rbac::ClusterRoleBinding>(raw),
        (_, "TokenRequest") => reencode::<authn::TokenRequest>(raw),
        (_, "TokenReview") => reencode::<authn::TokenReview>(raw),
        (_, "SelfSubjectReview") => reencode::<authn::SelfSubjectReview>(raw),
        (_, "SelfSubjectAccessReview") => reencode::<authz::SelfSubjectAccessReview>(raw),
        (_, "SubjectAccessReview") => reencode::<authz::SubjectAccessReview>(raw),
        (_, "LocalSubjectAccessReview") => reencode::<authz::LocalSubjectAccessReview>(raw),
        (_, "SelfSubjectRulesReview") => reencode::<authz::SelfSubjectRulesReview>(raw),
        _ => None,
    }
}

fn envelope(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(api_version.to_owned()),
            kind: Some(kind.to_owned()),
        }),
        raw: Some(raw),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    [MAGIC.as_slice(), &unknown.encode_to_vec()].concat()
}

fn check_protobuf(body: &[u8]) {
    let Ok(decoded) = protobuf::decode(body) else {
        return;
    };
    let api_version = decoded["apiVersion"]
        .as_str()
        .expect("apiVersion")
        .to_owned();
    let kind = decoded["kind"].as_str().expect("kind").to_owned();
    assert!(
        protobuf::supported_kinds().any(|(v, k)| v == api_version && k == kind),
        "decoded an unsupported kind {api_version}/{kind}"
    );
    let unknown = Unknown::decode(&body[MAGIC.len()..]).expect("the envelope decoded once");
    let raw = unknown.raw.unwrap_or_default();
    let again = reencode_object(&api_version, &kind, &raw)
        .unwrap_or_else(|| panic!("{api_version}/{kind} decoded but its k8s-pb message does not"));
    let redecoded = protobuf::decode(&envelope(&api_version, &kind, again))
        .expect("a re-encoded object decodes");
    assert_eq!(
        redecoded, decoded,
        "re-encoding {kind} changed what it decodes to"
    );
}

const PROTOBUF_WORDS: &[&str] = &[
    "ns1",
    "sa",
    "get",
    "list",
    "*",
    "",
    "pods",
    "secrets",
    "v1",
    "token",
    "kubernetes.io/x",
    "a=b",
    "1",
];

/// A protobuf message of random fields: varints, fixed numbers, strings and nested messages.
fn wire_message(u: &mut Unstructured<'_>, depth: usize) -> ArbitraryResult<Vec<u8>> {
    let mut out = Vec::new();
    for _ in 0..u.int_in_range(0..=6)? {
        let field = u64::from(u.int_in_range(1u8..=16)?);
        let wire_type = *u.choose(&[0u64, 0, 2, 2, 2, 1, 5, 3, 4, 7])?;
        put_varint(&mut out, (field << 3) | wire_type);
        match wire_type {
            0 => {
                let value = if u.ratio(3, 4)? {
                    u64::from(u.int_in_range(0u8..=3)?)
                } else {
                    u.arbitrary()?
                };
                put_varint(&mut out, value);
            }
            1 => out.extend_from_slice(&u.arbitrary::<[u8; 8]>()?),
            5 => out.extend_from_slice(&u.arbitrary::<[u8; 4]>()?),
            2 => {
                let payload = if depth > 0 && u.ratio(1, 2)? {
                    wire_message(u, depth - 1)?
                } else if u.ratio(3, 4)? {
                    word(u, PROTOBUF_WORDS)?.into_bytes()
                } else {
                    let len = u.int_in_range(0..=8)?;
                    u.bytes(len)?.to_vec()
                };
                let declared = if u.ratio(15, 16)? {
                    payload.len() as u64
                } else {
                    u.arbitrary()?
                };
                put_varint(&mut out, declared);
                out.extend_from_slice(&payload);
            }
            _ => {}
        }
    }
    Ok(out)
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn protobuf_case(u: &mut Unstructured<'_>) -> ArbitraryResult<Vec<u8>> {
    let kinds: Vec<(&str, &str)> = protobuf::supported_kinds().collect();
    let (api_version, kind) = *u.choose(&kinds)?;
    Ok(envelope(api_version, kind, wire_message(u, 4)?))
}

#[test]
fn protobuf_bodies_that_decode_decode_the_same_after_re_encoding() {
    let mut fuzzer = fuzzer("protobuf");
    for body in captured_protobuf_bodies() {
        fuzzer = fuzzer.seed(body);
    }
    fuzzer
        .dictionary([
            &MAGIC[..],
            b"\x0a",
            b"\x12",
            b"\x1a",
            b"\x22",
            b"\x08\x01",
            b"\x80\x01",
        ])
        .run(|data| {
            check_protobuf(data);
            if let Some(body) = structured(data, protobuf_case) {
                check_protobuf(&body);
            }
        });
}

// ---------------------------------------------------------------------------------------------
// Bearer tokens

const NAMESPACE: &str = "p";
const ACCOUNT: &str = "ci";
const ACCOUNT_UID: &str = "11111111-2222-3333-4444-555555555555";
const SECRET: &str = "ci-token";
const ISSUER: &str = "https://kargo.fuzz";

/// A real token setup: a SQLite store holding the signing keys and the admin record, an auth
/// view with one ServiceAccount and its token Secret, and tokens of each kind.
struct Tokens {
    authenticator: Authenticator,
    keys: Arc<KeySet>,
    /// Tokens that authenticate, with the user each one is.
    valid: Vec<(String, String)>,
    admin_token: String,
    _store_dir: tempfile::TempDir,
}

fn event(key: String, value: Value) -> Event {
    Event {
        kind: EventKind::Created,
        kv: KeyValue {
            key,
            value: serde_json::to_vec(&value).expect("JSON"),
            create_revision: Revision(2),
            mod_revision: Revision(2),
        },
        prev: None,
    }
}

fn tokens() -> &'static Tokens {
    static TOKENS: OnceLock<Tokens> = OnceLock::new();
    TOKENS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store: Arc<dyn kargo_store::Store> = Arc::new(
            kargo_store::sqlite::SqliteStore::open(&dir.path().join("kargo.db")).expect("store"),
        );
        let keys = runtime
            .block_on(keys::load_or_create(&store))
            .expect("signing keys");
        let (admin, _) = runtime
            .block_on(Admin::init(&store, Some("a fuzzing password"), false))
            .expect("the admin account");
        let admin = Arc::new(admin);
        let view = AuthView::new(keys);
        let keys = view.keys();
        let signing = keys.signing().clone();
        let legacy = jwt::sign(
            &signing,
            jwt::legacy_claims(NAMESPACE, SECRET, ACCOUNT, ACCOUNT_UID),
        )
        .expect("a legacy token");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("a clock after 1970")
            .as_secs() as i64;
        let bound = jwt::sign(
            &signing,
            jwt::bound_claims(&BoundRequest {
                issuer: ISSUER,
                namespace: NAMESPACE,
                account: ACCOUNT,
                uid: ACCOUNT_UID,
                audiences: &[ISSUER.to_owned()],
                now,
                lifetime: 3600,
                jti: "fuzz-jti",
                secret: None,
            }),
        )
        .expect("a bound token");
        let mut writer = view.writer();
        for event in [
            event(
                SERVICEACCOUNTS.key(Some(NAMESPACE), ACCOUNT),
                json!({"metadata": {"name": ACCOUNT, "namespace": NAMESPACE, "uid": ACCOUNT_UID}}),
            ),
            event(
                SECRETS.key(Some(NAMESPACE), SECRET),
                json!({
                    "metadata": {
                        "name": SECRET, "namespace": NAMESPACE, "uid": "secret-uid",
                        "annotations": {"kubernetes.io/service-account.name": ACCOUNT},
                    },
                    "type": "kubernetes.io/service-account-token",
                    "data": {"token": STANDARD.encode(&legacy)},
                }),
            ),
        ] {
            let head = Head::of(&event.kv);
            writer.event(&event, head.as_ref());
        }
        let token_authenticator = Arc::new(TokenAuthenticator::new(view, ISSUER.to_owned()));
        let admin_token = admin.issue_token().expect("an admin token");
        let account = format!("system:serviceaccount:{NAMESPACE}:{ACCOUNT}");
        Tokens {
            authenticator: Authenticator::new(admin, token_authenticator),
            keys,
            valid: vec![
                (legacy, account.clone()),
                (bound, account),
                (admin_token.clone(), "admin".to_owned()),
            ],
            admin_token,
            _store_dir: dir,
        }
    })
}

fn check_bearer(header: &str) {
    let tokens = tokens();
    let token = bearer(Some(header));
    if let Ok(user) = tokens.authenticator.authenticate(Some(header), None, None) {
        let token = token.expect("an accepted header carries a bearer token");
        let expected = tokens.valid.iter().find(|(valid, _)| valid == token);
        match expected {
            Some((_, username)) => assert_eq!(&user.username, username),
            None => panic!(
                "{header:?} authenticated as {:?} without a token the test issued",
                user.username
            ),
        }
    }
    for candidate in [Some(header), token].into_iter().flatten() {
        if let Ok(parsed) = jwt::parse(candidate) {
            assert!(
                candidate.starts_with(parsed.signed)
                    && candidate.as_bytes().get(parsed.signed.len()) == Some(&b'.'),
                "the signed part of {candidate:?} is not its first two segments"
            );
        }
        if jwt::verify(candidate, &tokens.keys, &[ISSUER.to_owned()]).is_ok() {
            assert!(
                tokens.valid.iter().any(|(valid, _)| valid == candidate),
                "{candidate:?} verified but the test did not sign it"
            );
        }
        if tokens.authenticator.admin().verify_token(candidate) {
            assert_eq!(
                candidate, tokens.admin_token,
                "an admin token the server did not issue verified"
            );
        }
    }
}

const CLAIM_WORDS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "nbf",
    "iat",
    "jti",
    "kubernetes.io",
    "namespace",
    "serviceaccount",
    "name",
    "uid",
    "secret",
    "kubernetes/serviceaccount",
    "kubernetes.io/serviceaccount/namespace",
    "kubernetes.io/serviceaccount/secret.name",
    "kubernetes.io/serviceaccount/service-account.name",
    "kubernetes.io/serviceaccount/service-account.uid",
    "system:serviceaccount:p:ci",
    "kargo-admin",
    "admin",
    ISSUER,
    NAMESPACE,
    ACCOUNT,
    ACCOUNT_UID,
    SECRET,
];

/// Claims shaped like ours with some members replaced by arbitrary values.
fn claims(u: &mut Unstructured<'_>) -> ArbitraryResult<Value> {
    let now = 1_750_000_000i64;
    let mut claims = match u.int_in_range(0..=2)? {
        0 => jwt::legacy_claims(NAMESPACE, SECRET, ACCOUNT, ACCOUNT_UID),
        1 => jwt::bound_claims(&BoundRequest {
            issuer: ISSUER,
            namespace: NAMESPACE,
            account: ACCOUNT,
            uid: ACCOUNT_UID,
            audiences: &[ISSUER.to_owned()],
            now,
            lifetime: 3600,
            jti: "j",
            secret: Some((SECRET, "secret-uid")),
        }),
        _ => Value::Object(structured::object(u, CLAIM_WORDS, 2)?),
    };
    for _ in 0..u.int_in_range(0..=3)? {
        let key = word(u, CLAIM_WORDS)?;
        let value = match u.int_in_range(0..=3)? {
            0 => Value::from(*u.choose(&[i64::MAX, i64::MIN, -1, 0, now + 60, now - 120])?),
            1 => Value::from(word(u, CLAIM_WORDS)?),
            _ => structured::json(u, CLAIM_WORDS, 2)?,
        };
        if let Some(map) = claims.as_object_mut() {
            map.insert(key, value);
        }
    }
    Ok(claims)
}

/// A token built from parts: a header, claims, a signature — signed with the real key or not —
/// under an `Authorization` scheme.
fn token_case(u: &mut Unstructured<'_>) -> ArbitraryResult<(String, bool)> {
    let tokens = tokens();
    let claims = claims(u)?;
    let signing = tokens.keys.signing();
    let sign_for_real = u.ratio(1, 2)?;
    let token = if sign_for_real {
        jwt::sign(signing, claims).expect("signing")
    } else {
        let alg = *u.choose(&["RS256", "HS256", "none", "", "rs256"])?;
        let kid = word(u, &[signing.kid.as_str(), "", "x"])?;
        let header = URL_SAFE_NO_PAD.encode(json!({"alg": alg, "kid": kid}).to_string());
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signature = match u.int_in_range(0..=2)? {
            0 => tokens.valid[0]
                .0
                .rsplit('.')
                .next()
                .unwrap_or("")
                .to_owned(),
            1 => {
                let len = u.int_in_range(0..=300)?;
                URL_SAFE_NO_PAD.encode(u.bytes(len)?)
            }
            _ => String::new(),
        };
        format!("{header}.{payload}.{signature}")
    };
    let scheme = *u.choose(&["Bearer ", "bearer  ", "BEARER ", "Basic ", "", "Bearer"])?;
    Ok((format!("{scheme}{token}"), sign_for_real))
}

fn check_signed_token(header: &str) {
    let tokens = tokens();
    if let Ok(user) = tokens.authenticator.authenticate(Some(header), None, None) {
        assert_eq!(
            user.username,
            format!("system:serviceaccount:{NAMESPACE}:{ACCOUNT}"),
            "a token signed with claims of the test authenticated as someone the view does not hold: {header:?}"
        );
    }
}

#[test]
fn only_tokens_the_server_signed_authenticate_and_as_whom_they_name() {
    let tokens = tokens();
    let mut fuzzer = fuzzer("bearer_token")
        .dictionary(["Bearer ", ".", "eyJ", "=", "-", "_", "+", "/", "\u{0}"]);
    for (token, _) in &tokens.valid {
        fuzzer = fuzzer.seed(format!("Bearer {token}"));
    }
    for (token, user) in &tokens.valid {
        let header = format!("Bearer {token}");
        let authenticated = tokens
            .authenticator
            .authenticate(Some(&header), None, None)
            .expect("the issued tokens authenticate");
        assert_eq!(&authenticated.username, user);
    }
    fuzzer.run(|data| {
        check_bearer(&String::from_utf8_lossy(data));
        if let Some((header, signed)) = structured(data, token_case) {
            if signed {
                check_signed_token(&header);
            } else {
                check_bearer(&header);
            }
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Bodies

const MEDIA_TYPES: &[&str] = &[
    "",
    "application/json",
    "application/json; charset=utf-8",
    "APPLICATION/JSON",
    "text/plain",
    "application/octet-stream",
    "application/yaml",
    "application/x-yaml",
    "text/yaml",
    "application/vnd.kubernetes.protobuf",
    "application/merge-patch+json",
    "application/xml",
    ";",
    "application/json;",
];

/// Decodes a body under a Content-Type and checks the answer's status.
fn decode_body(content_type: Option<&[u8]>, body: &[u8]) -> Result<Value, u16> {
    let mut headers = http::HeaderMap::new();
    if let Some(value) = content_type.and_then(|ct| http::HeaderValue::from_bytes(ct).ok()) {
        headers.insert(http::header::CONTENT_TYPE, value);
    }
    let decoded = body::decode(&headers, &bytes::Bytes::copy_from_slice(body));
    match decoded {
        Ok(value) => Ok(value),
        Err(status) => {
            assert!(
                matches!(status.code, 400 | 413 | 415),
                "a body answered {} ({})",
                status.code,
                status.message
            );
            Err(status.code)
        }
    }
}

/// The input's first line is the Content-Type, the rest the body.
fn check_body(data: &[u8]) {
    let (content_type, body) = match data.iter().position(|b| *b == b'\n') {
        Some(at) => (Some(&data[..at]), &data[at + 1..]),
        None => (None, data),
    };
    let _ = decode_body(content_type, body);
}

fn body_case(u: &mut Unstructured<'_>) -> ArbitraryResult<Value> {
    structured::json(u, PROTOBUF_WORDS, 5)
}

/// Whether every string of a value is YAML-printable and free of YAML's line breaks other than
/// `\n` and `\r` (JSON leaves U+0085, U+2028 and U+2029 raw, and YAML folds them into spaces):
/// only then is the value's JSON text also YAML for the same value.
fn yaml_safe(value: &Value) -> bool {
    let printable = |c: char| {
        !matches!(
            c,
            '\u{7f}'..='\u{9f}' | '\u{2028}' | '\u{2029}' | '\u{fffe}' | '\u{ffff}'
        )
    };
    match value {
        Value::String(s) => s.chars().all(printable),
        Value::Array(items) => items.iter().all(yaml_safe),
        Value::Object(map) => map
            .iter()
            .all(|(k, v)| k.chars().all(printable) && yaml_safe(v)),
        _ => true,
    }
}

/// A JSON document decodes to itself under every JSON media type and, when it is also YAML for
/// the same value, under the YAML ones.
fn check_json_document(value: &Value) {
    let text = serde_json::to_vec(value).expect("JSON");
    let yaml: &[Option<&str>] = if yaml_safe(value) {
        &[Some("application/yaml"), Some("text/yaml")]
    } else {
        &[]
    };
    for content_type in [None, Some("application/json"), Some("text/plain")]
        .iter()
        .chain(yaml)
        .copied()
    {
        let decoded = decode_body(content_type.map(str::as_bytes), &text);
        assert_eq!(
            decoded.as_ref(),
            Ok(value),
            "{} under {content_type:?}",
            String::from_utf8_lossy(&text)
        );
    }
}

#[test]
fn bodies_of_any_content_type_decode_or_are_client_errors() {
    let mut fuzzer = fuzzer("body");
    for body in captured_protobuf_bodies() {
        let mut seed = b"application/vnd.kubernetes.protobuf\n".to_vec();
        seed.extend_from_slice(&body);
        fuzzer = fuzzer.seed(seed);
    }
    fuzzer
        .dictionary(
            MEDIA_TYPES.iter().map(|m| format!("{m}\n")).chain(
                [
                    "&a ",
                    "*a",
                    "<<: *a",
                    "- ",
                    ": ",
                    "\n  ",
                    "!!binary ",
                    "---\n",
                    "{",
                    "[",
                    "\"",
                    "'",
                    "? ",
                    "|\n",
                    ">\n",
                    "%YAML 1.2\n",
                    "!!",
                    "~",
                    "1e999",
                ]
                .map(str::to_owned),
            ),
        )
        .run(|data| {
            check_body(data);
            if let Some(value) = structured(data, body_case) {
                check_json_document(&value);
            }
        });
}

// ---------------------------------------------------------------------------------------------
// Continue tokens and resourceVersions

const PREFIXES: &[&str] = &[
    "/registry/secrets/p/",
    "/registry/secrets/",
    "/registry/serviceaccounts/q/",
];

fn check_continue(token: &str) {
    for prefix in PREFIXES {
        match decode_continue(token, prefix) {
            Ok((revision, key)) => {
                let rest = key
                    .strip_prefix(prefix)
                    .unwrap_or_else(|| panic!("{token:?} continues at {key:?}, outside {prefix}"));
                assert!(
                    !rest.contains("..") && !rest.starts_with('/'),
                    "{token:?} continues at {key:?}"
                );
                assert!(revision.is_none_or(|r| r.0 > 0), "{token:?}: {revision:?}");
            }
            Err(status) => assert_eq!(status.code, 400, "{token:?}: {}", status.message),
        }
    }
}

fn continue_case(u: &mut Unstructured<'_>) -> ArbitraryResult<(i64, String)> {
    let revision = if u.ratio(1, 2)? {
        u.int_in_range(1..=1000)?
    } else {
        u.int_in_range(1..=i64::MAX)?
    };
    let name = word(
        u,
        &[
            "b", "a/b", "..", "a..b", "/a", "", "\u{0}", "é", "x\u{0}y", "-",
        ],
    )?;
    Ok((revision, name))
}

#[test]
fn continue_tokens_stay_under_their_list_and_round_trip() {
    let mut fuzzer = fuzzer("continue_token").dictionary([
        "eyJ",
        "{\"v\":\"meta.k8s.io/v1\",\"rv\":1,\"start\":\"a\\u0000\"}",
        "=",
        "..",
        "/",
    ]);
    for (revision, key) in [(42, "b"), (1, "ns/name"), (9_007_199_254_740_993, "x")] {
        fuzzer = fuzzer.seed(encode_continue(
            Revision(revision),
            &format!("{}{key}", PREFIXES[0]),
            PREFIXES[0],
        ));
    }
    fuzzer.run(|data| {
        check_continue(&String::from_utf8_lossy(data));
        let Some((revision, name)) = structured(data, continue_case) else {
            return;
        };
        for prefix in PREFIXES {
            let token = encode_continue(Revision(revision), &format!("{prefix}{name}"), prefix);
            check_continue(&token);
            let decoded = decode_continue(&token, prefix);
            if name.contains("..") || name.starts_with('/') {
                assert!(decoded.is_err(), "{name:?} under {prefix}");
            } else {
                let (decoded_revision, key) = decoded.expect("an encoded token decodes");
                assert_eq!(decoded_revision, Some(Revision(revision)));
                assert_eq!(key, format!("{prefix}{name}"));
            }
        }
    });
}

#[test]
fn resource_versions_parse_only_from_decimal_digits() {
    fuzzer("resource_version")
        .dictionary(["0", "9", "+", "-", " ", "9223372036854775807", "_", "e"])
        .max_len(64)
        .run(|data| {
            let text = String::from_utf8_lossy(data);
            if let Some(revision) = parse_revision(&text) {
                assert!(
                    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()),
                    "{text:?} parsed as {revision:?}; kube-apiserver accepts decimal digits only"
                );
                assert_eq!(
                    revision.0.to_string(),
                    match text.trim_start_matches('0') {
                        "" => "0",
                        digits => digits,
                    },
                    "{text:?}"
                );
            }
        });
}

/// Regression (found by `resource_version`): Rust's `i64` parsing takes a sign, so `+9` was
/// resourceVersion 9 where kube-apiserver answers 400.
#[test]
fn a_resource_version_with_a_sign_or_spaces_does_not_parse() {
    for text in [
        "+9",
        "+0",
        "-0",
        " 1",
        "1 ",
        "1_0",
        "",
        "9223372036854775808",
    ] {
        assert_eq!(parse_revision(text), None, "{text:?}");
    }
    assert_eq!(parse_revision("007"), Some(Revision(7)));
    assert_eq!(parse_revision("0"), Some(Revision(0)));
}

/// Regression (found by `bearer_token` in the `fuzz` profile): a bound token whose `exp` is
/// `i64::MAX` overflowed `exp + leeway` (a panic with overflow checks, a token wrongly expired
/// without). Only the key's holder can sign one; it is valid until the end of time.
#[test]
fn a_bound_token_expiring_at_the_end_of_time_authenticates_without_overflow() {
    let tokens = tokens();
    for (exp, valid) in [(i64::MAX, true), (i64::MIN, false)] {
        let mut claims = jwt::bound_claims(&BoundRequest {
            issuer: ISSUER,
            namespace: NAMESPACE,
            account: ACCOUNT,
            uid: ACCOUNT_UID,
            audiences: &[ISSUER.to_owned()],
            now: 0,
            lifetime: 0,
            jti: "end-of-time",
            secret: None,
        });
        claims["exp"] = json!(exp);
        let token = jwt::sign(tokens.keys.signing(), claims).expect("signing");
        let outcome =
            tokens
                .authenticator
                .authenticate(Some(&format!("Bearer {token}")), None, None);
        assert_eq!(outcome.is_ok(), valid, "exp {exp}");
    }
}

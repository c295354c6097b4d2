//! Service-account tokens with kubectl: what a token may do is exactly what RBAC grants its
//! account; revoked tokens and every kind of forged token are refused with 401.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use kargo_server::auth::jwt;
use kargo_server::auth::keys::{KEYS_KEY, KeySet, SigningKey};
use kargo_store::Store;

use crate::harness::{Server, eventually};

const TOKEN_SECRET: &str = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: bot-token\n  namespace: p\n  annotations:\n    kubernetes.io/service-account.name: bot\ntype: kubernetes.io/service-account-token\n";

/// A namespace `p` with account `bot` and its token Secret; returns the token.
pub(crate) fn account_with_token(server: &Server) -> String {
    server.kubectl(&["create", "namespace", "p"]).ok();
    server
        .kubectl(&["create", "serviceaccount", "bot", "-n", "p"])
        .ok();
    server
        .kubectl_stdin(&["apply", "-f", "-"], TOKEN_SECRET)
        .ok();
    read_token(server, "p", "bot-token")
}

/// The token of a Secret, as `kubectl get secret T -o jsonpath='{.data.token}'` shows it.
fn read_token(server: &Server, namespace: &str, secret: &str) -> String {
    let mut token = String::new();
    assert!(
        eventually(Duration::from_secs(10), || {
            let out = server.kubectl(&[
                "get",
                "secret",
                secret,
                "-n",
                namespace,
                "-o",
                "jsonpath={.data.token}",
            ]);
            token = out.stdout.clone();
            !token.is_empty()
        }),
        "the token controller never filled the Secret"
    );
    String::from_utf8(STANDARD.decode(token.trim()).expect("base64")).expect("utf-8")
}

const UNAUTHORIZED: &str = "error: You must be logged in to the server (Unauthorized)\n";

#[test]
fn a_token_does_what_its_roles_allow_and_nothing_else() {
    let server = Server::start();
    let token = account_with_token(&server);
    let kc = server.token_kubeconfig("bot", &token, "p");
    let forbidden = server.kubectl_with(&kc, &["get", "serviceaccounts"], None);
    assert_eq!(
        forbidden.err(),
        "Error from server (Forbidden): serviceaccounts is forbidden: User \"system:serviceaccount:p:bot\" cannot list resource \"serviceaccounts\" in API group \"\" in the namespace \"p\"\n"
    );
    assert_eq!(
        server
            .kubectl_with(&kc, &["auth", "can-i", "list", "serviceaccounts"], None)
            .stdout,
        "no\n"
    );
    server
        .kubectl(&[
            "create",
            "role",
            "lister",
            "-n",
            "p",
            "--verb=get,list",
            "--resource=serviceaccounts",
        ])
        .ok();
    server
        .kubectl(&[
            "create",
            "rolebinding",
            "lister",
            "-n",
            "p",
            "--role=lister",
            "--serviceaccount=p:bot",
        ])
        .ok();
    let names = server.kubectl_with(&kc, &["get", "serviceaccounts", "-o", "name"], None);
    assert_eq!(names.ok(), "serviceaccount/bot\nserviceaccount/default\n");
    assert_eq!(
        server
            .kubectl_with(&kc, &["auth", "can-i", "list", "serviceaccounts"], None)
            .ok(),
        "yes\n"
    );
    assert_eq!(
        server
            .kubectl_with(&kc, &["auth", "can-i", "delete", "serviceaccounts"], None)
            .stdout,
        "no\n"
    );
    let named = server.kubectl_with(&kc, &["delete", "serviceaccount", "default"], None);
    assert_eq!(
        named.err(),
        "Error from server (Forbidden): serviceaccounts \"default\" is forbidden: User \"system:serviceaccount:p:bot\" cannot delete resource \"serviceaccounts\" in API group \"\" in the namespace \"p\"\n"
    );
    let whoami = server.kubectl_with(&kc, &["auth", "whoami"], None);
    let uid = server
        .kubectl(&[
            "get",
            "sa",
            "bot",
            "-n",
            "p",
            "-o",
            "jsonpath={.metadata.uid}",
        ])
        .ok()
        .to_owned();
    let rows: Vec<Vec<String>> = whoami
        .ok()
        .lines()
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect();
    assert_eq!(rows[1], ["Username", "system:serviceaccount:p:bot"]);
    assert_eq!(rows[2], vec!["UID".to_owned(), uid]);
    assert_eq!(
        rows[3],
        [
            "Groups",
            "[system:serviceaccounts",
            "system:serviceaccounts:p",
            "system:authenticated]"
        ]
    );
    // Revoking the binding takes the permission away on the next request.
    server
        .kubectl(&["delete", "rolebinding", "lister", "-n", "p"])
        .ok();
    assert!(
        server
            .kubectl_with(&kc, &["get", "serviceaccounts"], None)
            .err()
            .contains("(Forbidden)")
    );
}

#[test]
fn deleting_the_token_secret_or_the_account_refuses_the_token_on_the_next_request() {
    let server = Server::start();
    let token = account_with_token(&server);
    let kc = server.token_kubeconfig("bot", &token, "p");
    server.kubectl(&["auth", "can-i", "get", "secrets"]).ok();
    assert_eq!(
        server
            .kubectl_with(&kc, &["auth", "whoami", "-o", "name"], None)
            .code,
        0
    );
    server
        .kubectl(&["delete", "secret", "bot-token", "-n", "p"])
        .ok();
    assert_eq!(
        server.kubectl_with(&kc, &["auth", "whoami"], None).err(),
        UNAUTHORIZED
    );

    // A new token; then the account goes (and its token Secret with it).
    server
        .kubectl_stdin(&["apply", "-f", "-"], TOKEN_SECRET)
        .ok();
    let token = read_token(&server, "p", "bot-token");
    let kc = server.token_kubeconfig("bot2", &token, "p");
    assert_eq!(
        server
            .kubectl_with(&kc, &["auth", "whoami", "-o", "name"], None)
            .code,
        0
    );
    server
        .kubectl(&["delete", "serviceaccount", "bot", "-n", "p"])
        .ok();
    assert_eq!(
        server.kubectl_with(&kc, &["auth", "whoami"], None).err(),
        UNAUTHORIZED
    );
    assert!(eventually(Duration::from_secs(10), || server
        .kubectl(&["get", "secret", "bot-token", "-n", "p"])
        .code
        != 0));
    // An account of the same name with a new uid does not revive the old token.
    server
        .kubectl(&["create", "serviceaccount", "bot", "-n", "p"])
        .ok();
    assert_eq!(
        server.kubectl_with(&kc, &["auth", "whoami"], None).err(),
        UNAUTHORIZED
    );
}

#[test]
fn token_requests_give_bound_tokens_checked_for_expiry_audience_and_account() {
    let server = Server::start();
    server.kubectl(&["create", "namespace", "p"]).ok();
    server
        .kubectl(&["create", "serviceaccount", "bot", "-n", "p"])
        .ok();
    let token = server
        .kubectl(&["create", "token", "bot", "-n", "p", "--duration=1h"])
        .ok()
        .trim()
        .to_owned();
    let kc = server.token_kubeconfig("bound", &token, "p");
    let whoami = server.kubectl_with(&kc, &["auth", "whoami"], None);
    assert!(
        whoami.ok().contains("system:serviceaccount:p:bot"),
        "{}",
        whoami.stdout
    );
    assert!(
        whoami
            .stdout
            .contains("authentication.kubernetes.io/credential-id"),
        "{}",
        whoami.stdout
    );
    // A token for another audience is not accepted by the API.
    let other = server
        .kubectl(&["create", "token", "bot", "-n", "p", "--audience=vault"])
        .ok()
        .trim()
        .to_owned();
    let kc_other = server.token_kubeconfig("other", &other, "p");
    assert_eq!(
        server
            .kubectl_with(&kc_other, &["auth", "whoami"], None)
            .err(),
        UNAUTHORIZED
    );
    // Too short a duration is refused as kube-apiserver refuses it.
    let short = server.kubectl(&["create", "token", "bot", "-n", "p", "--duration=1m"]);
    assert!(
        short.err().contains("spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes"),
        "{}",
        short.stderr
    );
    // Deleting the account invalidates its bound tokens.
    server
        .kubectl(&["delete", "serviceaccount", "bot", "-n", "p"])
        .ok();
    assert_eq!(
        server.kubectl_with(&kc, &["auth", "whoami"], None).err(),
        UNAUTHORIZED
    );
}

fn sign_raw(header: &str, claims: &serde_json::Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = sign(message.as_bytes());
    format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn forged_and_broken_tokens_are_refused_and_the_server_keeps_serving() {
    let mut server = Server::start();
    let good = account_with_token(&server);
    let uid = server
        .kubectl(&[
            "get",
            "sa",
            "bot",
            "-n",
            "p",
            "-o",
            "jsonpath={.metadata.uid}",
        ])
        .ok()
        .to_owned();
    // The server's own key, read from its store while it is stopped, mints the tokens a real
    // server never would: expired ones and ones for another audience.
    server.stop_for_maintenance();
    let keys = {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let store = kargo_store::sqlite::SqliteStore::open(&server.data_dir().join("kargo.db"))
                .unwrap();
            let kv = store.get(KEYS_KEY).await.unwrap().expect("signing keys");
            store.close().await.unwrap();
            KeySet::decode(&kv.value).unwrap()
        })
    };
    server.start_again();
    let issuer = server.url.clone();
    let bound = |aud: &str, exp: i64| {
        jwt::bound_claims(&jwt::BoundRequest {
            issuer: &issuer,
            namespace: "p",
            account: "bot",
            uid: &uid,
            audiences: &[aud.to_owned()],
            now: exp - 3600,
            lifetime: 3600,
            jti: "x",
            secret: None,
        })
    };
    let real = keys.signing();
    let foreign = SigningKey::generate().unwrap();
    let header = format!(r#"{{"alg":"RS256","kid":"{}"}}"#, real.kid);
    let jwk = real.jwk();
    let public_as_secret = jwk["n"].as_str().unwrap().as_bytes().to_vec();
    let mut tampered = good.clone();
    let middle = tampered.find('.').unwrap() + 5;
    tampered.replace_range(
        middle..middle + 1,
        if &tampered[middle..middle + 1] == "A" {
            "B"
        } else {
            "A"
        },
    );
    let legacy_claims: serde_json::Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(good.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    let forged: Vec<(&str, String)> = vec![
        ("tampered", tampered),
        ("truncated", good[..good.len() - 10].to_owned()),
        ("two parts", good.rsplit_once('.').unwrap().0.to_owned()),
        (
            "foreign key, same kid",
            sign_raw(&header, &legacy_claims, |m| foreign.sign(m).unwrap()),
        ),
        (
            "foreign key, own kid",
            jwt::sign(&foreign, legacy_claims.clone()).unwrap(),
        ),
        (
            "alg none",
            format!(
                "{}.{}.",
                URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
                URL_SAFE_NO_PAD.encode(legacy_claims.to_string())
            ),
        ),
        (
            "HS256 with the public key",
            sign_raw(
                &format!(r#"{{"alg":"HS256","kid":"{}"}}"#, real.kid),
                &legacy_claims,
                |m| {
                    let key =
                        aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &public_as_secret);
                    aws_lc_rs::hmac::sign(&key, m).as_ref().to_vec()
                },
            ),
        ),
        (
            "expired",
            jwt::sign(real, bound(&issuer, now() - 3600)).unwrap(),
        ),
        (
            "wrong audience",
            jwt::sign(real, bound("https://elsewhere", now() + 3600)).unwrap(),
        ),
        ("garbage", "not.a.jwt".to_owned()),
    ];
    for (what, token) in &forged {
        let (code, body) = server.curl(
            "GET",
            "/api/v1/namespaces/p/serviceaccounts",
            Some(token),
            &[],
            None,
        );
        assert_eq!(code, 401, "{what}: {body}");
    }
    // The real key still works for a valid bound token it signed, so the refusals above are
    // about what was forged, not about the key.
    let valid = jwt::sign(real, bound(&issuer, now() + 3600)).unwrap();
    let (code, body) = server.curl(
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        Some(&valid),
        &["Content-Type: application/json"],
        Some(br#"{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}"#),
    );
    assert_eq!(code, 201, "{body}");
    let (code, _) = server.curl("GET", "/healthz", None, &[], None);
    assert_eq!(code, 200);
}

#[test]
fn an_account_reaches_nothing_in_another_namespace_unless_bound_there() {
    let server = Server::start();
    let token = account_with_token(&server);
    server.kubectl(&["create", "namespace", "q"]).ok();
    // Everything in its own namespace.
    server
        .kubectl(&[
            "create",
            "role",
            "all",
            "-n",
            "p",
            "--verb=*",
            "--resource=*.*",
        ])
        .ok();
    server
        .kubectl(&[
            "create",
            "rolebinding",
            "all",
            "-n",
            "p",
            "--role=all",
            "--serviceaccount=p:bot",
        ])
        .ok();
    let kc = server.token_kubeconfig("bot", &token, "p");
    let matrix = [
        ("get", "serviceaccounts/default"),
        ("list", "serviceaccounts"),
        ("create", "configmaps"),
        ("delete", "secrets/x"),
        ("list", "secrets"),
        ("update", "roles/r"),
        ("create", "rolebindings"),
        ("watch", "configmaps"),
        ("patch", "stages.kargo.akuity.io/dev"),
        ("list", "projectconfigs.kargo.akuity.io"),
    ];
    let can = |ns: &str, verb: &str, what: &str| {
        server
            .kubectl_with(&kc, &["auth", "can-i", verb, what, "-n", ns], None)
            .stdout
            .trim()
            .to_owned()
    };
    for (verb, what) in matrix {
        assert_eq!(can("p", verb, what), "yes", "{verb} {what} in p");
        assert_eq!(can("q", verb, what), "no", "{verb} {what} in q");
    }
    // And the requests themselves, not only the reviews.
    let out = server.kubectl_with(&kc, &["get", "configmaps", "-n", "q"], None);
    assert!(
        out.err().contains(
            "cannot list resource \"configmaps\" in API group \"\" in the namespace \"q\""
        ),
        "{}",
        out.stderr
    );
    assert_eq!(
        server
            .kubectl_with(&kc, &["get", "configmaps", "-n", "p", "-o", "name"], None)
            .code,
        0
    );
    // Cluster-scoped objects are out of reach too.
    let out = server.kubectl_with(&kc, &["get", "namespaces"], None);
    assert!(
        out.err()
            .contains("cannot list resource \"namespaces\" in API group \"\" at the cluster scope"),
        "{}",
        out.stderr
    );
    // Bound in q with a ClusterRole, the same account reaches q.
    server
        .kubectl(&[
            "create",
            "clusterrole",
            "cm-reader",
            "--verb=get,list",
            "--resource=configmaps",
        ])
        .ok();
    server
        .kubectl(&[
            "create",
            "rolebinding",
            "read",
            "-n",
            "q",
            "--clusterrole=cm-reader",
            "--serviceaccount=p:bot",
        ])
        .ok();
    assert_eq!(can("q", "list", "configmaps"), "yes");
    assert_eq!(can("q", "delete", "configmaps"), "no");
    assert_eq!(can("r", "list", "configmaps"), "no");
}

#[test]
fn roles_and_bindings_grant_nothing_their_writer_does_not_hold() {
    let server = Server::start();
    let token = account_with_token(&server);
    server
        .kubectl(&[
            "create",
            "role",
            "rbac-writer",
            "-n",
            "p",
            "--verb=create,get",
            "--resource=roles,rolebindings",
        ])
        .ok();
    server
        .kubectl(&[
            "create",
            "role",
            "secret-reader",
            "-n",
            "p",
            "--verb=get",
            "--resource=secrets",
        ])
        .ok();
    server
        .kubectl(&[
            "create",
            "rolebinding",
            "rbac-writer",
            "-n",
            "p",
            "--role=rbac-writer",
            "--serviceaccount=p:bot",
        ])
        .ok();
    let kc = server.token_kubeconfig("bot", &token, "p");
    let out = server.kubectl_with(
        &kc,
        &[
            "create",
            "role",
            "too-much",
            "--verb=delete",
            "--resource=secrets",
        ],
        None,
    );
    assert_eq!(
        out.err(),
        "Error from server (Forbidden): roles.rbac.authorization.k8s.io \"too-much\" is forbidden: user \"system:serviceaccount:p:bot\" (groups=[\"system:serviceaccounts\" \"system:serviceaccounts:p\" \"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"delete\"]}\n"
    );
    // It holds `create roles`: a role within its own permissions is fine.
    server
        .kubectl_with(
            &kc,
            &["create", "role", "ok", "--verb=get", "--resource=roles"],
            None,
        )
        .ok();
    // Binding a role it does not hold is refused; binding one it holds is fine.
    let bind = server.kubectl_with(
        &kc,
        &[
            "create",
            "rolebinding",
            "b",
            "--role=secret-reader",
            "--serviceaccount=p:bot",
        ],
        None,
    );
    assert!(
        bind.err()
            .contains("is attempting to grant RBAC permissions not currently held"),
        "{}",
        bind.stderr
    );
    server
        .kubectl_with(
            &kc,
            &[
                "create",
                "rolebinding",
                "b2",
                "--role=ok",
                "--serviceaccount=p:default",
            ],
            None,
        )
        .ok();
}

#[test]
fn issuer_discovery_and_token_review_answer() {
    let server = Server::start();
    let token = account_with_token(&server);
    let (code, body) = server.curl("GET", "/.well-known/openid-configuration", None, &[], None);
    assert_eq!(code, 200, "{body}");
    let config: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(config["issuer"], server.url.as_str());
    assert_eq!(config["jwks_uri"], format!("{}/openid/v1/jwks", server.url));
    let (code, body) = server.curl("GET", "/openid/v1/jwks", None, &[], None);
    assert_eq!(code, 200, "{body}");
    let jwks: serde_json::Value = serde_json::from_str(&body).unwrap();
    let kid = jwt::parse(&token).unwrap().kid;
    assert!(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == kid.as_str() && k["alg"] == "RS256")
    );

    let admin = server.admin_token();
    let review = |t: &str| {
        let body = serde_json::json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": t}});
        let (code, text) = server.curl(
            "POST",
            "/apis/authentication.k8s.io/v1/tokenreviews",
            Some(&admin),
            &["Content-Type: application/json"],
            Some(body.to_string().as_bytes()),
        );
        assert_eq!(code, 201, "{text}");
        serde_json::from_str::<serde_json::Value>(&text).unwrap()["status"].clone()
    };
    let ok = review(&token);
    assert_eq!(ok["authenticated"], true);
    assert_eq!(ok["user"]["username"], "system:serviceaccount:p:bot");
    assert_eq!(
        ok["user"]["groups"],
        serde_json::json!([
            "system:serviceaccounts",
            "system:serviceaccounts:p",
            "system:authenticated"
        ])
    );
    server
        .kubectl(&["delete", "secret", "bot-token", "-n", "p"])
        .ok();
    let gone = review(&token);
    assert_eq!(gone["authenticated"], serde_json::Value::Null);
    assert_eq!(gone["error"], "Token has been invalidated");
    let (code, text) = server.curl(
        "POST",
        "/apis/authentication.k8s.io/v1/tokenreviews",
        Some(&admin),
        &["Content-Type: application/json"],
        Some(br#"{"spec":{}}"#),
    );
    assert_eq!(code, 400, "{text}");
    assert!(
        text.contains("token is required for TokenReview in authentication"),
        "{text}"
    );
}

#[test]
fn rotated_keys_keep_verifying_until_retired() {
    let server = Server::start();
    let old_token = account_with_token(&server);
    let admin = server.admin_token();
    let old_kid = jwt::parse(&old_token).unwrap().kid;
    let (code, body) = server.curl(
        "POST",
        "/v1beta1/system/signing-keys/rotate",
        Some(&admin),
        &[],
        None,
    );
    assert_eq!(code, 200, "{body}");
    let keys: serde_json::Value = serde_json::from_str(&body).unwrap();
    let new_kid = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["signing"] == true)
        .unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(new_kid, old_kid);
    // New tokens are signed by the new key; the old token still works.
    server
        .kubectl_stdin(
            &["apply", "-f", "-"],
            &TOKEN_SECRET.replace("bot-token", "bot-token-2"),
        )
        .ok();
    let new_token = read_token(&server, "p", "bot-token-2");
    assert_eq!(jwt::parse(&new_token).unwrap().kid, new_kid);
    let whoami = |t: &str| {
        server.curl(
            "POST",
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            Some(t),
            &["Content-Type: application/json"],
            Some(b"{}"),
        )
    };
    let whoami = |t: &str| {
        let (code, body) = whoami(t);
        assert_ne!(code, 0, "{body}");
        code
    };
    assert_eq!(whoami(&old_token), 201);
    assert_eq!(whoami(&new_token), 201);
    let (_, jwks) = server.curl("GET", "/openid/v1/jwks", None, &[], None);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&jwks).unwrap()["keys"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // The signing key cannot be retired; the old one can, and its tokens stop working.
    let (code, body) = server.curl(
        "DELETE",
        &format!("/v1beta1/system/signing-keys/{new_kid}"),
        Some(&admin),
        &[],
        None,
    );
    assert_eq!(code, 400, "{body}");
    let (code, body) = server.curl(
        "DELETE",
        &format!("/v1beta1/system/signing-keys/{old_kid}"),
        Some(&admin),
        &[],
        None,
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(whoami(&old_token), 401);
    assert_eq!(whoami(&new_token), 201);
    // Only the admin manages keys.
    let (code, body) = server.curl(
        "POST",
        "/v1beta1/system/signing-keys/rotate",
        Some(&new_token),
        &[],
        None,
    );
    assert_eq!(
        (code, body.as_str()),
        (403, r#"{"error":"only the admin may manage signing keys"}"#)
    );
}

#[test]
fn subject_access_reviews_answer_for_other_users() {
    let server = Server::start();
    account_with_token(&server);
    server
        .kubectl(&[
            "create",
            "role",
            "cm",
            "-n",
            "p",
            "--verb=get",
            "--resource=configmaps",
        ])
        .ok();
    server
        .kubectl(&[
            "create",
            "rolebinding",
            "cm",
            "-n",
            "p",
            "--role=cm",
            "--serviceaccount=p:bot",
        ])
        .ok();
    let admin = server.admin_token();
    let review = |path: &str, body: serde_json::Value| {
        let (code, text) = server.curl(
            "POST",
            path,
            Some(&admin),
            &["Content-Type: application/json"],
            Some(body.to_string().as_bytes()),
        );
        (
            code,
            serde_json::from_str::<serde_json::Value>(&text).unwrap(),
        )
    };
    let spec = |verb: &str, ns: &str| {
        serde_json::json!({
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": "system:serviceaccount:p:bot",
                "groups": ["system:serviceaccounts", "system:serviceaccounts:p", "system:authenticated"],
                "resourceAttributes": {"namespace": ns, "verb": verb, "resource": "configmaps"},
            },
        })
    };
    let (code, allowed) = review(
        "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        spec("get", "p"),
    );
    assert_eq!(code, 201);
    assert_eq!(allowed["status"]["allowed"], true);
    assert_eq!(
        allowed["status"]["reason"],
        "RBAC: allowed by RoleBinding \"cm/p\" of Role \"cm\" to ServiceAccount \"bot/p\""
    );
    let (_, denied) = review(
        "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        spec("delete", "p"),
    );
    assert_eq!(denied["status"]["allowed"], false);
    let mut local = spec("get", "p");
    local["kind"] = "LocalSubjectAccessReview".into();
    let (code, body) = review(
        "/apis/authorization.k8s.io/v1/namespaces/p/localsubjectaccessreviews",
        local.clone(),
    );
    assert_eq!(
        (code, body["status"]["allowed"].clone()),
        (201, serde_json::Value::Bool(true))
    );
    let (code, _) = review(
        "/apis/authorization.k8s.io/v1/namespaces/q/localsubjectaccessreviews",
        local,
    );
    assert_eq!(code, 422);
    let (code, body) = review(
        "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        serde_json::json!({"spec": {"resourceAttributes": {"verb": "get", "resource": "configmaps"}}}),
    );
    assert_eq!(code, 400, "{body}");
    assert_eq!(
        body["message"],
        "at least one of user or group must be specified"
    );
    // The account itself may not review others.
    let token = read_token(&server, "p", "bot-token");
    let (code, _) = server.curl(
        "POST",
        "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        Some(&token),
        &["Content-Type: application/json"],
        Some(spec("get", "p").to_string().as_bytes()),
    );
    assert_eq!(code, 403);
}

#[test]
fn a_token_bound_to_a_secret_lives_as_long_as_that_secret() {
    let server = Server::start();
    server.kubectl(&["create", "namespace", "p"]).ok();
    server
        .kubectl(&["create", "serviceaccount", "bot", "-n", "p"])
        .ok();
    server
        .kubectl(&[
            "create",
            "secret",
            "generic",
            "anchor",
            "-n",
            "p",
            "--from-literal=a=b",
        ])
        .ok();
    let token = server
        .kubectl(&[
            "create",
            "token",
            "bot",
            "-n",
            "p",
            "--bound-object-kind=Secret",
            "--bound-object-name=anchor",
        ])
        .ok()
        .trim()
        .to_owned();
    let kc = server.token_kubeconfig("bound", &token, "p");
    assert_eq!(
        server
            .kubectl_with(&kc, &["auth", "whoami", "-o", "name"], None)
            .code,
        0
    );
    server
        .kubectl(&["delete", "secret", "anchor", "-n", "p"])
        .ok();
    assert_eq!(
        server.kubectl_with(&kc, &["auth", "whoami"], None).err(),
        UNAUTHORIZED
    );
}

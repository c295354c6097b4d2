//! People signed in through the tests' real OpenID provider (`oidc`) against a real server and
//! CLI: ID tokens verified or refused (the negative table), a person mapped to a role by a claim
//! working in their project and refused elsewhere, kubectl with an ID token, `kargo login --sso`
//! through the real authorization endpoint, refresh after expiry, key rotation at the provider,
//! and an issuer that is down when the server starts.
//!
//! Tests marked `ignore` need the server flags `--oidc-*` (branch h/oidc-verify) or
//! `kargo login --sso` (h/oidc-cli); they are written against the interfaces of
//! notes/sso-plan.md and lose their mark when those branches are merged.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::cli_harness::Kargo as Cli;
use crate::harness::{Server, eventually};
use crate::kargo_client::{Expect, Kargo};
use crate::oidc::{
    ALICE, BOB, CAROL, CLI_CLIENT_ID, CLIENT_ID, OTHER_CLIENT_ID, Options, Provider, claims_of,
    header_of, sign_with_foreign_key,
};

/// What a person does for a CI job in project `p`: a service account `ci`, a role `reader`
/// (get and list stages) granted to it, and a token `ci-token` for it, whose value is returned.
fn ci_reader_token(person: &Kargo<'_>) -> String {
    person.service_account("p", "ci");
    person.role(
        "p",
        json!({"metadata": {"name": "reader"}, "rules": [{"verbs": ["get", "list"], "resources": ["stages"]}]}),
    );
    person.grant(
        "p",
        json!({"role": "reader", "serviceAccounts": {"serviceAccounts": [{"name": "ci", "namespace": "p"}]}}),
    );
    person.token("p", "ci", "ci-token")
}

/// `GET /v1beta1/system/public-server-config` (no credentials): the configuration.
fn public_config(server: &Server) -> Value {
    let (code, body) = server.curl(
        "GET",
        "/v1beta1/system/public-server-config",
        None,
        &[],
        None,
    );
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).expect("JSON")
}

/// A server that trusts `provider`.
fn server_for(provider: &Provider) -> Server {
    Server::start_with(&provider.server_args())
}

/// `GET /v1beta1/projects` with `token`: the status code and the `error`.
fn list_projects(server: &Server, token: &str) -> (u16, String) {
    let answer = Kargo::with_token(server, token).get("/v1beta1/projects");
    (answer.code, answer.error().to_owned())
}

/// A `SelfSubjectReview` with `token` (`kubectl auth whoami`, allowed to everyone
/// authenticated): the status code and the username it names.
fn whoami(server: &Server, token: &str) -> (u16, String) {
    let body = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"});
    let (code, text) = server.curl(
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        Some(token),
        &["Content-Type: application/json"],
        Some(body.to_string().as_bytes()),
    );
    let review: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let name = review["status"]["userInfo"]["username"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    (code, name)
}

/// `GET /api/v1/namespaces` with `token`: the status code.
fn kube_namespaces(server: &Server, token: &str) -> u16 {
    server
        .curl("GET", "/api/v1/namespaces", Some(token), &[], None)
        .0
}

/// A JWT with `header` and `claims`, signed by `sign` (over `header.payload`).
fn sign_raw(header: &Value, claims: &Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("time")
        .as_secs()
        .try_into()
        .expect("i64")
}

#[test]
fn the_public_server_config_names_the_provider_and_both_clients() {
    let provider = Provider::start();
    let server = server_for(&provider);
    let config = public_config(&server);
    assert_eq!(config["oidcConfig"]["issuerUrl"], provider.issuer());
    assert_eq!(config["oidcConfig"]["clientId"], CLIENT_ID);
    assert_eq!(config["oidcConfig"]["cliClientId"], CLI_CLIENT_ID);
    assert!(config["oidcConfig"]["scopes"].is_array(), "{config}");
    assert_eq!(config["adminAccountEnabled"], true);
    assert_eq!(config["skipAuth"], false);
}

#[test]
fn an_id_token_of_either_client_authenticates_and_kubectl_shows_the_email_and_groups() {
    let provider = Provider::start();
    let server = server_for(&provider);
    let (id_token, _) = provider.id_token(ALICE);
    let kubeconfig = server.token_kubeconfig("alice", &id_token, "default");
    let out = server.kubectl_with(&kubeconfig, &["auth", "whoami", "-o", "json"], None);
    let review: Value = serde_json::from_str(out.ok()).expect("JSON");
    assert_eq!(review["status"]["userInfo"]["username"], ALICE);
    assert_eq!(
        review["status"]["userInfo"]["groups"],
        json!(["devops", "system:authenticated"])
    );
    // A token issued to the server's client (the UI's) is accepted too.
    let bob = provider.tokens(CLIENT_ID, BOB);
    let kubeconfig = server.token_kubeconfig("bob", &bob.id_token, "default");
    let out = server.kubectl_with(&kubeconfig, &["auth", "whoami", "-o", "json"], None);
    let review: Value = serde_json::from_str(out.ok()).expect("JSON");
    assert_eq!(review["status"]["userInfo"]["username"], BOB);
    // Without any role, Alice may list no projects and no namespaces.
    assert_eq!(kube_namespaces(&server, &id_token), 403);
}

#[test]
fn forged_resigned_foreign_and_malformed_id_tokens_are_refused_with_401() {
    let provider = Provider::start();
    let other = Provider::start();
    let server = server_for(&provider);
    let (good, _) = provider.id_token(ALICE);
    let header = header_of(&good);
    let claims = claims_of(&good);
    let kid = header["kid"].as_str().expect("kid").to_owned();

    let mut more_groups = claims.clone();
    more_groups["groups"] = json!(["devops", "admins"]);
    let signature = good.rsplit('.').next().expect("signature");
    let forged = format!(
        "{}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(more_groups.to_string())
    );
    let resigned = sign_with_foreign_key(&kid, &more_groups);
    let unknown_kid = sign_with_foreign_key("no-such-key", &claims);
    let alg_none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "kid": kid}).to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    // HS256 keyed with the provider's public key material (the algorithm-confusion attack).
    let jwks = provider.jwks();
    let public = jwks["keys"][0]["n"].as_str().expect("n").to_owned();
    let hs256 = sign_raw(&json!({"alg": "HS256", "kid": kid}), &claims, |input| {
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, public.as_bytes());
        aws_lc_rs::hmac::sign(&key, input).as_ref().to_vec()
    });
    let wrong_audience = provider.tokens(OTHER_CLIENT_ID, ALICE).id_token;
    let (wrong_issuer, _) = other.id_token(ALICE);
    let mut not_yet = claims.clone();
    not_yet["nbf"] = json!(now() + 3600);
    let not_yet = sign_with_foreign_key(&kid, &not_yet);

    // The genuine token authenticates (Alice has no role yet: 403 on the Kargo API).
    assert_eq!(whoami(&server, &good), (201, ALICE.to_owned()));
    assert_eq!(list_projects(&server, &good).0, 403);
    for (what, token) in [
        ("payload changed", &forged),
        ("re-signed with another key", &resigned),
        ("unknown kid", &unknown_kid),
        ("alg none", &alg_none),
        ("HS256 with the public key", &hs256),
        ("another client's audience", &wrong_audience),
        ("another issuer", &wrong_issuer),
        ("not yet valid, re-signed", &not_yet),
    ] {
        assert_eq!(
            list_projects(&server, token),
            (401, "invalid token".to_owned()),
            "{what}"
        );
        assert_eq!(kube_namespaces(&server, token), 401, "{what}");
    }
    // Refusals cost nothing later: the genuine token still works.
    assert_eq!(whoami(&server, &good), (201, ALICE.to_owned()));
}

#[test]
fn an_expired_id_token_is_refused_after_the_skew() {
    let provider = Provider::start_with(Options {
        id_token_ttl: Duration::from_secs(1),
        ..Options::default()
    });
    let server = server_for(&provider);
    let (token, _) = provider.id_token(ALICE);
    assert_eq!(whoami(&server, &token), (201, ALICE.to_owned()));
    // 30 s of clock skew are allowed (and the verified-token cache ends at exp, not later).
    std::thread::sleep(Duration::from_secs(33));
    assert_eq!(
        list_projects(&server, &token),
        (401, "invalid token".to_owned())
    );
    assert_eq!(kube_namespaces(&server, &token), 401);
}

#[test]
fn a_person_mapped_by_a_claim_creates_an_account_role_and_token_in_their_project_only() {
    let provider = Provider::start();
    let server = server_for(&provider);
    let admin = Kargo::admin(&server);
    admin.project("p");
    admin.project("q");
    // The admin makes everyone in the group devops an admin of project p.
    admin.grant(
        "p",
        json!({"role": "kargo-admin", "userClaims": {"claims": [{"name": "groups", "values": ["devops"]}]}}),
    );
    let (alice_token, _) = provider.id_token(ALICE);
    let alice = Kargo::with_token(&server, &alice_token);
    let ci_token = ci_reader_token(&alice);
    let kubeconfig = server.token_kubeconfig("ci", &ci_token, "p");
    assert_eq!(
        server
            .kubectl_with(&kubeconfig, &["auth", "can-i", "list", "stages"], None)
            .stdout,
        "yes\n"
    );
    // Alice can do nothing in q; Bob (group qa) nothing in p.
    let answer = alice.post(
        "/v1beta1/projects/q/service-accounts",
        json!({"metadata": {"name": "ci"}}),
    );
    assert_eq!(answer.code, 403, "{}", answer.body);
    let (bob_token, _) = provider.id_token(BOB);
    let bob = Kargo::with_token(&server, &bob_token);
    let answer = bob.post(
        "/v1beta1/projects/p/service-accounts",
        json!({"metadata": {"name": "bobs"}}),
    );
    assert_eq!(answer.code, 403, "{}", answer.body);
    // kubectl with Alice's ID token answers by her mapped role.
    let kubeconfig = server.token_kubeconfig("alice", &alice_token, "p");
    for (args, expected) in [
        (&["auth", "can-i", "create", "serviceaccounts"][..], "yes\n"),
        (
            &["auth", "can-i", "create", "serviceaccounts", "-n", "q"],
            "no\n",
        ),
    ] {
        assert_eq!(
            server.kubectl_with(&kubeconfig, args, None).stdout,
            expected,
            "{args:?}"
        );
    }
    // A removed claim takes effect on the next request.
    admin.check(
        "POST",
        "/v1beta1/projects/p/roles/revocations",
        Some(json!({"role": "kargo-admin", "userClaims": {"claims": [{"name": "groups", "values": ["devops"]}]}})),
        Expect::Ok(200),
    );
    let answer = alice.post(
        "/v1beta1/projects/p/service-accounts",
        json!({"metadata": {"name": "ci2"}}),
    );
    assert_eq!(answer.code, 403, "{}", answer.body);
}

#[test]
fn a_new_signing_key_at_the_provider_is_fetched_on_its_unknown_kid() {
    let provider = Provider::start();
    let server = server_for(&provider);
    let (before, _) = provider.id_token(ALICE);
    assert_eq!(whoami(&server, &before), (201, ALICE.to_owned()));
    let kid = provider.rotate_key(false);
    let (after, _) = provider.id_token(BOB);
    assert_eq!(header_of(&after)["kid"], kid);
    // The server fetches the JWKS again for the unknown kid, at most once per 10 s (its first
    // fetch at start-up counts), so the new key is in use within about 10 s.
    assert!(
        eventually(Duration::from_secs(15), || whoami(&server, &after)
            == (201, BOB.to_owned())),
        "the new key was never fetched"
    );
    assert_eq!(kube_namespaces(&server, &after), 403);
    // Tokens verified before the rotation are still accepted until they expire (cached).
    assert_eq!(whoami(&server, &before), (201, ALICE.to_owned()));
}

#[test]
fn an_issuer_down_at_start_up_does_not_stop_the_server_and_is_used_once_up() {
    let port = Provider::free_port();
    let options = Options {
        port: Some(port),
        ..Options::default()
    };
    // The provider's flags, without the provider: start it, note them, stop it.
    let mut provider = Provider::start_with(options);
    let args = provider.server_args();
    provider.stop();
    let server = Server::start_with(&args);
    // Service-account tokens and the admin keep working.
    let admin = Kargo::admin(&server);
    admin.project("p");
    let (code, body) = server.curl("GET", "/readyz?verbose", None, &[], None);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("[-]oidc"), "{body}");
    provider.restart();
    let (token, _) = provider.id_token(ALICE);
    assert!(
        eventually(Duration::from_secs(30), || whoami(&server, &token).0 == 201),
        "the server never used the issuer that came up"
    );
    let (_, body) = server.curl("GET", "/readyz?verbose", None, &[], None);
    assert!(body.contains("[+]oidc"), "{body}");
}

/// Runs `kargo login SERVER --sso --port PORT` as `cli`, signs in as `email` at the provider
/// through the URL it prints, and waits for it to succeed.
fn login_with_sso(cli: &Cli, server: &Server, provider: &Provider, email: &str) {
    // The CLI trusts the server's CA (`--certificate-authority`) and, for the provider,
    // `KARGO_OIDC_CA_FILE`; it only prints the URL (`KARGO_SSO_NO_BROWSER`), on stderr.
    let port = Provider::free_port().to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kargo"))
        .args([
            "login",
            &server.url,
            "--sso",
            "--port",
            &port,
            "--certificate-authority",
        ])
        .arg(server.ca())
        .env("HOME", cli.home())
        .env("XDG_CONFIG_HOME", cli.home().join(".config"))
        .env("KARGO_OIDC_CA_FILE", provider.ca())
        .env("KARGO_SSO_NO_BROWSER", "1")
        .env_remove("DISPLAY")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kargo login runs");
    let (sender, receiver) = std::sync::mpsc::channel();
    for stream in [
        Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().expect("stderr")),
    ] {
        let sender = sender.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
    }
    let mut printed = String::new();
    let url = loop {
        let line = receiver
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("kargo login --sso printed no URL:\n{printed}"));
        printed.push_str(&line);
        printed.push('\n');
        if let Some(url) = provider.find_authorization_url(&line) {
            break url;
        }
    };
    let query = crate::oidc::query_of(&url);
    assert_eq!(query["client_id"], CLI_CLIENT_ID);
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(
        query["redirect_uri"],
        format!("http://localhost:{port}/auth/callback")
    );
    let (code, _) = provider.complete_login(&url, email);
    assert_eq!(code, 200);
    let status = child.wait().expect("kargo login exits");
    assert!(status.success(), "kargo login --sso failed:\n{printed}");
}

#[test]
fn kargo_login_sso_through_the_real_authorization_endpoint_then_whoami() {
    let provider = Provider::start();
    let server = server_for(&provider);
    let cli = Cli::new();
    login_with_sso(&cli, &server, &provider, ALICE);
    let config = cli.config_text();
    assert!(config.contains("authMethod: sso"), "{config}");
    assert!(config.contains("refreshToken: "), "{config}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(cli.config_path())
        .expect("config")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let whoami = cli.run(&["whoami"]);
    let table = whoami.ok();
    assert!(table.contains(ALICE), "{table}");
    assert!(table.contains("[devops system:authenticated]"), "{table}");
    assert!(
        table.contains(&format!("sso ({})", provider.issuer())),
        "{table}"
    );
}

#[test]
fn an_expired_id_token_is_refreshed_before_a_command() {
    let provider = Provider::start_with(Options {
        id_token_ttl: Duration::from_secs(2),
        ..Options::default()
    });
    let server = server_for(&provider);
    let mut cli = Cli::new();
    // The refresh, like the login, trusts the provider's CA through KARGO_OIDC_CA_FILE.
    cli.set_env(
        "KARGO_OIDC_CA_FILE",
        provider.ca().to_str().expect("a UTF-8 path"),
    );
    login_with_sso(&cli, &server, &provider, ALICE);
    let bearer = |text: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix("bearerToken: "))
            .expect("a bearer token")
            .to_owned()
    };
    let first = bearer(&cli.config_text());
    std::thread::sleep(Duration::from_secs(3));
    let table = cli.run(&["whoami"]);
    assert!(table.ok().contains(ALICE), "{}", table.stdout);
    let second = bearer(&cli.config_text());
    assert_ne!(first, second, "the ID token was not refreshed");
    assert!(claims_of(&second)["exp"].as_i64() > claims_of(&first)["exp"].as_i64());
}

#[test]
fn a_person_with_the_system_admin_claim_creates_a_project_and_becomes_its_admin() {
    let provider = Provider::start();
    let mut args = provider.server_args();
    args.extend(["--oidc-admin-claim".to_owned(), "groups=devops".to_owned()]);
    let server = Server::start_with(&args);
    let (alice_token, _) = provider.id_token(ALICE);
    let alice = Kargo::with_token(&server, &alice_token);
    let project = alice.project("alices");
    assert_eq!(
        project["metadata"]["annotations"]["kargo.akuity.io/create-actor"],
        format!("email:{ALICE}")
    );
    let role = alice.check(
        "GET",
        "/v1beta1/projects/alices/roles/kargo-admin",
        None,
        Expect::Ok(200),
    );
    assert_eq!(
        role["claims"],
        json!([{"name": "email", "values": [ALICE]}])
    );
    // Bob (group qa) holds no system claim: he may neither create a project nor use Alice's.
    let (bob_token, _) = provider.id_token(BOB);
    let bob = Kargo::with_token(&server, &bob_token);
    let answer = bob.post("/v1beta1/projects", json!({"metadata": {"name": "bobs"}}));
    assert_eq!(answer.code, 403, "{}", answer.body);
    let answer = bob.post(
        "/v1beta1/projects/alices/service-accounts",
        json!({"metadata": {"name": "ci"}}),
    );
    assert_eq!(answer.code, 403, "{}", answer.body);
    // Alice works in her project.
    alice.service_account("alices", "ci");
    // The same through kubectl: the server records the creator, whatever the client says.
    let kubeconfig = server.token_kubeconfig("alice", &alice_token, "default");
    let manifest = "apiVersion: kargo.akuity.io/v1alpha1\nkind: Project\nmetadata:\n  name: alices-too\n  annotations:\n    kargo.akuity.io/create-actor: email:mallory@example.com\n";
    server
        .kubectl_with(&kubeconfig, &["create", "-f", "-"], Some(manifest))
        .ok();
    let project = alice.check("GET", "/v1beta1/projects/alices-too", None, Expect::Ok(200));
    assert_eq!(
        project["metadata"]["annotations"]["kargo.akuity.io/create-actor"],
        format!("email:{ALICE}")
    );
    assert!(
        eventually(Duration::from_secs(5), || {
            alice
                .get("/v1beta1/projects/alices-too/roles/kargo-admin")
                .body["claims"]
                == json!([{"name": "email", "values": [ALICE]}])
        }),
        "the kubectl-created project's kargo-admin role holds Alice's claim"
    );
}

#[test]
fn on_two_replicas_over_etcd_people_work_with_no_shared_password_and_a_revoked_claim_ends_at_once()
{
    let provider = Provider::start();
    let cluster = kargo_store::testing::EtcdCluster::start(1);
    let mut args = Server::etcd_args(&cluster);
    args.extend(provider.server_args());
    args.extend(
        [
            "--oidc-admin-claim",
            "groups=devops",
            "--disable-admin-account",
        ]
        .map(String::from),
    );
    let (a, b) = (Server::start_with(&args), Server::start_with(&args));
    // No shared secret: the admin login is refused on both replicas.
    for server in [&a, &b] {
        assert_eq!(public_config(server)["adminAccountEnabled"], false);
        assert_eq!(server.login(crate::harness::ADMIN_PASSWORD).0, 403);
    }
    // Alice (a system admin by her group) makes a project and a CI token on replica A.
    let (alice_token, _) = provider.id_token(ALICE);
    let alice_a = Kargo::with_token(&a, &alice_token);
    alice_a.project("p");
    let ci_token = ci_reader_token(&alice_a);
    // The token works on replica B.
    let kubeconfig = b.token_kubeconfig("ci", &ci_token, "p");
    assert!(
        eventually(Duration::from_secs(2), || {
            b.kubectl_with(&kubeconfig, &["auth", "can-i", "list", "stages"], None)
                .stdout
                == "yes\n"
        }),
        "the CI token works on replica B"
    );
    // Carol (no groups) is given project p's kargo-admin by her email on B, works on A, and
    // is refused on A as soon as the claim is revoked on B.
    let alice_b = Kargo::with_token(&b, &alice_token);
    let carol_claim = json!({"role": "kargo-admin", "userClaims": {"claims": [{"name": "email", "values": [CAROL]}]}});
    alice_b.grant("p", carol_claim.clone());
    let (carol_token, _) = provider.id_token(CAROL);
    let carol_a = Kargo::with_token(&a, &carol_token);
    let can_list = || carol_a.get("/v1beta1/projects/p/service-accounts").code;
    assert!(
        eventually(Duration::from_secs(2), || can_list() == 200),
        "Carol works on replica A"
    );
    alice_b.check(
        "POST",
        "/v1beta1/projects/p/roles/revocations",
        Some(carol_claim),
        Expect::Ok(200),
    );
    assert!(
        eventually(Duration::from_secs(2), || can_list() == 403),
        "the revoked claim ends Carol's access on replica A"
    );
    // Bob holds no claim of project p or of the system, on either replica.
    let (bob_token, _) = provider.id_token(BOB);
    for server in [&a, &b] {
        let answer =
            Kargo::with_token(server, &bob_token).get("/v1beta1/projects/p/service-accounts");
        assert_eq!(answer.code, 403, "{}", answer.body);
    }
}

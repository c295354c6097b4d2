//! Workload identity federation end to end: the tests' real OpenID provider (`oidc`, npm
//! `oidc-provider`) plays a CI issuer whose jobs carry GitHub-shaped claims (`sub`
//! `repo:acme/app:ref:refs/heads/main`, `repository`, `ref`, `workflow`, `job_workflow_ref`);
//! a real server allows it with `--federated-issuer`; the trust is written with kubectl; the
//! job's token is exchanged at `POST /v1beta1/token-exchange` and the issued token used with
//! kubectl, the Python kubernetes client and the `kargo` CLI (`kargo login
//! --federated-token-file`, `KARGO_FEDERATED_TOKEN`). Every refused exchange of the issue's
//! table, and revocation by removing the trust or the account, on SQLite and on etcd. (The
//! cases the provider cannot produce — an expired token after the 30 s skew, a replayed `jti`,
//! the rate limit — are in-process tests: `kargo-server` `federation_tests.rs`.)

use serde_json::{Value, json};

use crate::cli_harness::Kargo as Cli;
use crate::harness::Server;
use crate::kargo_client::Kargo;
use crate::oidc::{CLIENT_ID, OTHER_CLIENT_ID, Options, Provider, User, claims_of, header_of};

/// A job of `acme/app` on `main` (trusted).
const MAIN: &str = "main@ci.example";
/// A job of `acme/app` on a tag (another ref: refused).
const TAG: &str = "tag@ci.example";
/// A job of another repository on `main` (refused).
const OTHER_REPO: &str = "other@ci.example";

const ANNOTATION: &str = "rbac.kargo.akuity.io/federated-identities";
const REFUSED: &str = "the subject token is not accepted for a token exchange";

/// The CI issuer with its three jobs.
fn ci_issuer() -> Provider {
    Provider::start_with(Options {
        users: vec![
            User::ci_job(MAIN, "acme/app", "refs/heads/main", "deploy"),
            User::ci_job(TAG, "acme/app", "refs/tags/v1", "deploy"),
            User::ci_job(OTHER_REPO, "acme/other", "refs/heads/main", "deploy"),
        ],
        ..Options::default()
    })
}

/// The server flags allowing `issuer`.
fn federation_args(issuer: &Provider) -> Vec<String> {
    vec![
        "--federated-issuer".into(),
        issuer.issuer().to_owned(),
        "--federated-issuer-ca-file".into(),
        issuer.ca().display().to_string(),
    ]
}

/// The trust of `ci`: jobs of `acme/app` on any branch, for the audience `kargo`.
fn trust(issuer: &Provider) -> String {
    json!([{"name": "acme-app-branches", "issuer": issuer.issuer(),
            "subject": "repo:acme/app:ref:refs/heads/*", "audience": CLIENT_ID,
            "claims": {"repository": "acme/app", "workflow": "deploy"}}])
    .to_string()
}

/// `POST /v1beta1/token-exchange` of `token` (an ID token): the code and the JSON answer.
fn exchange(server: &Server, token: &str) -> (u16, Value) {
    let form = format!(
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange\
         &subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aid_token\
         &subject_token={token}"
    );
    let (code, body) = server.curl(
        "POST",
        "/v1beta1/token-exchange",
        None,
        &["Content-Type: application/x-www-form-urlencoded"],
        Some(form.as_bytes()),
    );
    (code, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// Exchanges `token` and returns the issued token, asserting success.
fn exchanged(server: &Server, token: &str) -> String {
    let (code, body) = exchange(server, token);
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    body["access_token"].as_str().expect("a token").to_owned()
}

/// Project `p` with a Kargo ServiceAccount `ci` that may get and list ServiceAccounts.
fn project_with_ci_account(server: &Server) {
    let admin = Kargo::admin(server);
    admin.project("p");
    admin.service_account("p", "ci");
    admin.role(
        "p",
        json!({"metadata": {"name": "reader"},
               "rules": [{"verbs": ["get", "list"], "resources": ["serviceaccounts"]}]}),
    );
    admin.grant(
        "p",
        json!({"role": "reader", "serviceAccounts": {"serviceAccounts": [{"name": "ci", "namespace": "p"}]}}),
    );
}

/// `kubectl get serviceaccounts -n p -o name` with `token`: the run.
fn kubectl_list(server: &Server, token: &str) -> crate::harness::Run {
    let kubeconfig = server.token_kubeconfig("ci-job", token, "p");
    server.kubectl_with(&kubeconfig, &["get", "serviceaccounts", "-o", "name"], None)
}

/// The whole story on one server (SQLite or etcd).
fn a_ci_job_with_only_its_own_token_works_and_others_are_refused(
    server: &Server,
    issuer: &Provider,
) {
    project_with_ci_account(server);

    // A malformed trust is refused at write time, through kubectl too.
    let bad = server.kubectl(&[
        "annotate",
        "serviceaccount",
        "ci",
        "-n",
        "p",
        &format!("{ANNOTATION}=[{{\"issuer\": \"http://ci\", \"subject\": \"s\"}}]"),
    ]);
    assert!(
        bad.err().contains("issuer must be an https:// URL"),
        "{}",
        bad.stderr
    );
    // The trust, with kubectl.
    server
        .kubectl(&[
            "annotate",
            "serviceaccount",
            "ci",
            "-n",
            "p",
            &format!("{ANNOTATION}={}", trust(issuer)),
        ])
        .ok();

    // The job on main: its token is exchanged, and the issued token lists the project's
    // ServiceAccounts with kubectl.
    let main_token = issuer.tokens(CLIENT_ID, MAIN).id_token;
    assert_eq!(
        claims_of(&main_token)["job_workflow_ref"],
        "acme/app/.github/workflows/deploy.yml@refs/heads/main"
    );
    // The server fetches the issuer's keys in the background after it starts.
    assert!(
        crate::harness::eventually(std::time::Duration::from_secs(10), || {
            exchange(server, &issuer.tokens(CLIENT_ID, MAIN).id_token).0 == 200
        }),
        "the exchange never succeeded"
    );
    let issued = exchanged(server, &main_token);
    let listed = kubectl_list(server, &issued);
    assert!(
        listed.ok().contains("serviceaccount/ci\n"),
        "{}",
        listed.stdout
    );

    // And with a client library (Python's kubernetes).
    let python = server.python("federated_token.py", &issued, &["p", "trusted"]);
    assert!(python.ok().lines().any(|l| l == "ci"), "{}", python.stdout);

    // And with the kargo CLI, logged in with the job's token file.
    let job = Cli::new();
    let token_file = job.home().join("ci-token");
    std::fs::write(&token_file, &main_token).expect("write the CI token");
    job.run(&[
        "login",
        &server.url,
        "--federated-token-file",
        token_file.to_str().expect("a UTF-8 path"),
        "--certificate-authority",
        server.ca().to_str().expect("a UTF-8 path"),
    ])
    .prints("");
    let out = job.run(&["get", "serviceaccounts", "--project", "p"]);
    assert!(out.ok().contains("ci "), "{}", out.ok());

    // The refused exchanges: each answered alike.
    let mut forged = claims_of(&main_token);
    forged["sub"] = "repo:acme/app:ref:refs/heads/main".into();
    let kid = header_of(&main_token)["kid"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let mut unknown_issuer = claims_of(&main_token);
    unknown_issuer["iss"] = "https://ci.invalid".into();
    let alg_none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&claims_of(&main_token))
    );
    let other_issuer = Provider::start_with(Options {
        users: vec![User::ci_job(MAIN, "acme/app", "refs/heads/main", "deploy")],
        ..Options::default()
    });
    let refused = [
        ("wrong branch", issuer.tokens(CLIENT_ID, TAG).id_token),
        (
            "wrong repository",
            issuer.tokens(CLIENT_ID, OTHER_REPO).id_token,
        ),
        (
            "wrong audience",
            issuer.tokens(OTHER_CLIENT_ID, MAIN).id_token,
        ),
        ("forged", crate::oidc::sign_with_foreign_key(&kid, &forged)),
        (
            "unknown issuer",
            crate::oidc::sign_with_foreign_key(&kid, &unknown_issuer),
        ),
        (
            "issuer not allowed by the operator",
            other_issuer.tokens(CLIENT_ID, MAIN).id_token,
        ),
        ("alg none", alg_none),
    ];
    for (case, token) in refused {
        let (code, body) = exchange(server, &token);
        assert_eq!(
            (code, body),
            (
                400,
                json!({"error": "invalid_grant", "error_description": REFUSED})
            ),
            "{case}"
        );
    }

    // The trust removed: the next exchange is refused, and the issued token's next request.
    server
        .kubectl(&[
            "annotate",
            "serviceaccount",
            "ci",
            "-n",
            "p",
            &format!("{ANNOTATION}-"),
        ])
        .ok();
    let (code, _) = exchange(server, &issuer.tokens(CLIENT_ID, MAIN).id_token);
    assert_eq!(code, 400);
    let refused = kubectl_list(server, &issued);
    assert!(refused.err().contains("Unauthorized"), "{}", refused.stderr);
    assert_eq!(
        server
            .python("federated_token.py", &issued, &["p", "removed"])
            .ok(),
        "401\n"
    );
    let out = job.run(&["get", "serviceaccounts", "--project", "p"]);
    assert_eq!(out.code, 1, "{}", out.stdout);

    // Trusted again, then the account deleted: its token stops too.
    server
        .kubectl(&[
            "annotate",
            "serviceaccount",
            "ci",
            "-n",
            "p",
            &format!("{ANNOTATION}={}", trust(issuer)),
        ])
        .ok();
    let issued = exchanged(server, &issuer.tokens(CLIENT_ID, MAIN).id_token);
    kubectl_list(server, &issued).ok();
    server
        .kubectl(&["delete", "serviceaccount", "ci", "-n", "p"])
        .ok();
    let refused = kubectl_list(server, &issued);
    assert!(refused.err().contains("Unauthorized"), "{}", refused.stderr);
    let (code, _) = exchange(server, &issuer.tokens(CLIENT_ID, MAIN).id_token);
    assert_eq!(code, 400);
}

fn b64(value: &Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
}

#[test]
fn on_sqlite_a_ci_job_exchanges_its_token_and_only_a_trusted_job_gets_in() {
    let issuer = ci_issuer();
    let server = Server::start_with(&federation_args(&issuer));
    a_ci_job_with_only_its_own_token_works_and_others_are_refused(&server, &issuer);
}

#[test]
fn on_etcd_a_ci_job_exchanges_its_token_and_only_a_trusted_job_gets_in() {
    let issuer = ci_issuer();
    let cluster = kargo_store::testing::EtcdCluster::start(1);
    let mut args = Server::etcd_args(&cluster);
    args.extend(federation_args(&issuer));
    let server = Server::start_with(&args);
    a_ci_job_with_only_its_own_token_works_and_others_are_refused(&server, &issuer);
}

#[test]
fn the_cli_adds_lists_and_removes_a_trust_and_a_job_logs_in_with_kargo_federated_token() {
    let issuer = ci_issuer();
    let server = Server::start_with(&federation_args(&issuer));
    project_with_ci_account(&server);
    let admin = Cli::logged_in(&server);
    admin
        .run(&[
            "create",
            "federatedidentity",
            "--project",
            "p",
            "--service-account",
            "ci",
            "--issuer",
            issuer.issuer(),
            "--subject",
            "repo:acme/app:ref:refs/heads/*",
            "--audience",
            CLIENT_ID,
            "--claim",
            "repository=acme/app",
            "--name",
            "app-branches",
        ])
        .prints("federatedidentity/app-branches created\n");
    let listed = admin.run(&["get", "fid", "--project", "p", "--service-account", "ci"]);
    assert_eq!(
        crate::cli_harness::mask_ages(listed.ok()),
        crate::cli_harness::mask_ages(&format!(
            "NAME           ISSUER{}   SUBJECT                          AGE\napp-branches   {}   repo:acme/app:ref:refs/heads/*   0s\n",
            " ".repeat(issuer.issuer().len() - "ISSUER".len()),
            issuer.issuer()
        ))
    );
    // kubectl sees the same trust, in the annotation.
    let annotation = server
        .kubectl(&[
            "get",
            "serviceaccount",
            "ci",
            "-n",
            "p",
            "-o",
            "jsonpath={.metadata.annotations.rbac\\.kargo\\.akuity\\.io/federated-identities}",
        ])
        .ok()
        .to_owned();
    assert!(
        annotation.contains("\"name\":\"app-branches\""),
        "{annotation}"
    );

    // The job: its token in KARGO_FEDERATED_TOKEN, nothing else.
    let mut job = Cli::new();
    job.set_env(
        "KARGO_FEDERATED_TOKEN",
        &issuer.tokens(CLIENT_ID, MAIN).id_token,
    );
    assert!(
        crate::harness::eventually(std::time::Duration::from_secs(10), || {
            job.run(&[
                "login",
                &server.url,
                "--certificate-authority",
                server.ca().to_str().expect("a UTF-8 path"),
            ])
            .code
                == 0
        }),
        "the job never logged in"
    );
    assert!(job.config_text().contains("authMethod: federated"));
    let out = job.run(&["get", "serviceaccounts", "--project", "p"]);
    assert!(out.ok().contains("ci "), "{}", out.ok());

    // Another branch's job is refused at login, with the exchange's error.
    let mut tag_job = Cli::new();
    tag_job.set_env(
        "KARGO_FEDERATED_TOKEN",
        &issuer.tokens(CLIENT_ID, TAG).id_token,
    );
    tag_job
        .run(&[
            "login",
            &server.url,
            "--certificate-authority",
            server.ca().to_str().expect("a UTF-8 path"),
        ])
        .fails_with(&format!("invalid_grant: {REFUSED}"));

    admin
        .run(&["delete", "fid", "--project", "p", "app-branches"])
        .prints("federatedidentity/app-branches deleted\n");
    let out = job.run(&["get", "serviceaccounts", "--project", "p"]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    admin
        .run(&["delete", "fid", "--project", "p", "app-branches"])
        .fails_with("federated identity \"app-branches\" not found");
}

//! The audit log (`--audit-log-path`): traffic from kubectl, the `kargo` CLI, curl, bad tokens
//! and a wrong admin password, then assertions on the lines the server wrote: one line per
//! mutating request with its verb, object, user and code; the Kargo actions with their Kargo
//! verb and every object they touched; a token's account and Secret; the authentication
//! failures; reads only at `--audit-level request`; the `Audit-ID` header as the `auditID`;
//! and no token, password or Secret data anywhere in the file. On SQLite and on etcd.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::cli_harness::{Kargo, token_from_banner};
use crate::harness::{ADMIN_PASSWORD, Server, eventually};

const PROJECT: &str = "audited";
/// A Secret's value that must never reach the log (also checked in base64).
const SECRET_DATA: &str = "the-secret-data-value-7f3a";

/// A server writing its audit log to a file of its own, with `extra` flags.
fn audited_server(extra: &[String]) -> (Server, tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("logs/audit.log");
    let mut args = vec!["--audit-log-path".to_owned(), log.display().to_string()];
    args.extend_from_slice(extra);
    (Server::start_with(&args), dir, log)
}

/// Every event of the log once it holds one with `audit_id` (the writer flushes within a
/// second).
pub(crate) fn events_until(log: &Path, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let read = || -> Vec<Value> {
        std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("each line is one JSON event"))
            .collect()
    };
    assert!(
        eventually(Duration::from_secs(10), || done(&read())),
        "the audit log never got there:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
    read()
}

fn annotation<'a>(event: &'a Value, key: &str) -> &'a str {
    event["annotations"][key].as_str().unwrap_or("")
}

/// The events with `verb` whose `objectRef` matches `(resource, namespace, name)` (empty:
/// any).
fn with<'a>(events: &'a [Value], verb: &str, object: (&str, &str, &str)) -> Vec<&'a Value> {
    let matches = |e: &Value, field: &str, want: &str| {
        want.is_empty() || e["objectRef"][field].as_str().unwrap_or("") == want
    };
    events
        .iter()
        .filter(|e| {
            e["verb"] == verb
                && matches(e, "resource", object.0)
                && matches(e, "namespace", object.1)
                && matches(e, "name", object.2)
        })
        .collect()
}

/// The one event of `verb` on `object`.
#[track_caller]
fn one<'a>(events: &'a [Value], verb: &str, object: (&str, &str, &str)) -> &'a Value {
    let found = with(events, verb, object);
    assert_eq!(found.len(), 1, "{verb} {object:?}: {found:#?}");
    found[0]
}

fn code(event: &Value) -> u64 {
    event["responseStatus"]["code"].as_u64().expect("a code")
}

/// The Kargo traffic of the test: a project, a role, an account granted two roles, tokens,
/// a revocation and the account's deletion. Returns the token of `ci`.
struct Traffic {
    token: String,
    other_token: String,
    admin_jwt: String,
    delete_token_audit_id: String,
}

fn drive(server: &Server) -> Traffic {
    let admin = Kargo::logged_in(server);
    admin.run(&["create", "project", PROJECT]).ok();
    admin
        .run(&["create", "role", "--project", PROJECT, "developer"])
        .ok();
    admin
        .run(&[
            "grant",
            "--project",
            PROJECT,
            "--role",
            "developer",
            "--resource-type",
            "serviceaccounts",
            "--verb",
            "get,list",
        ])
        .ok();
    admin
        .run(&["create", "serviceaccount", "--project", PROJECT, "ci"])
        .ok();
    for role in ["developer", "kargo-viewer"] {
        admin
            .run(&[
                "grant",
                "--project",
                PROJECT,
                "--role",
                role,
                "--service-account",
                "ci",
            ])
            .ok();
    }
    let create_token = |name: &str| {
        token_from_banner(&admin.run(&[
            "create",
            "serviceaccounttoken",
            "--project",
            PROJECT,
            "--service-account",
            "ci",
            name,
        ]))
    };
    let token = create_token("ci-token");

    // The token, with kubectl and the CLI: a read, and a refused write.
    let kubeconfig = server.token_kubeconfig("ci", &token, PROJECT);
    server
        .kubectl_with(&kubeconfig, &["get", "serviceaccounts"], None)
        .ok();
    server
        .kubectl_with(&kubeconfig, &["create", "serviceaccount", "x"], None)
        .err();
    Kargo::with_token(&admin, &token)
        .run(&["get", "serviceaccounts", "--project", PROJECT])
        .ok();

    // The admin with kubectl: a Secret with data, an account created and deleted.
    server
        .kubectl(&[
            "create",
            "secret",
            "generic",
            "kept",
            "-n",
            PROJECT,
            &format!("--from-literal=value={SECRET_DATA}"),
        ])
        .ok();
    server
        .kubectl(&["create", "serviceaccount", "other", "-n", PROJECT])
        .ok();
    server
        .kubectl(&["delete", "serviceaccount", "other", "-n", PROJECT])
        .ok();

    // Authentication failures: a bad token (kubectl, the Kargo API), a wrong admin password.
    let forged = format!("{}x", &token[..token.len() - 1]);
    let bad = server.token_kubeconfig("bad", &forged, PROJECT);
    server
        .kubectl_with(&bad, &["get", "serviceaccounts"], None)
        .err();
    let (status, _) = server.curl("GET", "/v1beta1/projects", Some(&forged), &[], None);
    assert_eq!(status, 401);
    let (status, _) = server.login("not-the-admin-password");
    assert_eq!(status, 403);

    // A revocation, a token deleted with curl (its Audit-ID kept), the account deleted with
    // its other token.
    admin
        .run(&[
            "revoke",
            "--project",
            PROJECT,
            "--role",
            "developer",
            "--service-account",
            "ci",
        ])
        .ok();
    let admin_jwt = server.admin_token();
    let (status, headers, _) = server.curl_with_headers(
        "DELETE",
        &format!("/v1beta1/projects/{PROJECT}/service-account-tokens/ci-token"),
        Some(&admin_jwt),
        &[],
        None,
    );
    assert_eq!(status, 204);
    let delete_token_audit_id = headers
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("audit-id")
                .then(|| value.trim().to_owned())
        })
        .expect("an Audit-ID header");
    let other_token = create_token("ci-token-2");
    admin
        .run(&["delete", "serviceaccount", "--project", PROJECT, "ci"])
        .ok();
    Traffic {
        token,
        other_token,
        admin_jwt,
        delete_token_audit_id,
    }
}

/// What every backend must show, at the metadata level.
fn check_metadata_log(log: &Path, traffic: &Traffic) {
    let events = events_until(log, |events| {
        !with(events, "delete-serviceaccount", ("", "", "")).is_empty()
    });
    let ci = "system:serviceaccount:audited:ci";
    for event in &events {
        assert_eq!(event["kind"], "Event");
        assert_eq!(event["apiVersion"], "audit.k8s.io/v1");
        assert_eq!(event["level"], "Metadata");
        // The path and query, as kube-apiserver writes it (kubectl speaks HTTP/2).
        assert!(
            event["requestURI"]
                .as_str()
                .is_some_and(|u| u.starts_with('/')),
            "{event}"
        );
        // Reads are not audited at this level, unless their authentication failed.
        let verb = event["verb"].as_str().unwrap_or("");
        if ["get", "list", "watch"].contains(&verb)
            || verb.starts_with("get-")
            || verb.starts_with("list-")
        {
            assert!(
                [401, 429].contains(&code(event)),
                "a read at the metadata level: {event}"
            );
        }
    }

    // The admin's Kargo actions: the Kargo verb and every object touched.
    let project = one(&events, "create-project", ("projects", "", PROJECT));
    assert_eq!(code(project), 201);
    assert_eq!(project["user"]["username"], "admin");
    let account = one(
        &events,
        "create-serviceaccount",
        ("serviceaccounts", PROJECT, "ci"),
    );
    assert_eq!(
        annotation(account, "audit.kargo.akuity.io/objects"),
        "create serviceaccounts audited/ci"
    );
    let grants = with(&events, "grant", ("roles", PROJECT, "developer"));
    assert_eq!(grants.len(), 2, "{grants:#?}");
    for grant in &grants {
        assert_eq!(grant["objectRef"]["apiGroup"], "rbac.kargo.akuity.io");
        assert_eq!(code(grant), 200);
    }
    let bound = one(&events, "grant", ("roles", PROJECT, "kargo-viewer"));
    assert!(
        annotation(bound, "audit.kargo.akuity.io/objects")
            .contains("update rolebindings.rbac.authorization.k8s.io audited/kargo-viewer"),
        "{bound}"
    );
    let tokens = with(&events, "create-token", ("serviceaccounts", PROJECT, "ci"));
    assert_eq!(tokens.len(), 2, "{tokens:#?}");
    assert_eq!(tokens[0]["objectRef"]["subresource"], "tokens");
    assert!(
        annotation(tokens[0], "audit.kargo.akuity.io/objects")
            .contains("create secrets audited/ci-token"),
        "{}",
        tokens[0]
    );
    let revoke = one(&events, "revoke", ("roles", PROJECT, "developer"));
    assert!(
        annotation(revoke, "audit.kargo.akuity.io/objects")
            .contains("rolebindings.rbac.authorization.k8s.io audited/developer"),
        "{revoke}"
    );
    let deleted = one(&events, "delete-token", ("secrets", PROJECT, "ci-token"));
    assert_eq!(deleted["auditID"], traffic.delete_token_audit_id.as_str());
    assert_eq!(code(deleted), 204);
    let gone = one(
        &events,
        "delete-serviceaccount",
        ("serviceaccounts", PROJECT, "ci"),
    );
    let touched = annotation(gone, "audit.kargo.akuity.io/objects");
    for object in [
        "update rolebindings.rbac.authorization.k8s.io audited/kargo-viewer",
        "delete serviceaccounts audited/ci",
        "collect secrets audited/ci-token-2",
    ] {
        assert!(touched.contains(object), "{object} not in {gone}");
    }

    // kubectl: one line per write, with kube-apiserver's verb and object.
    let refused = with(&events, "create", ("serviceaccounts", PROJECT, ""))
        .into_iter()
        .find(|e| e["user"]["username"] == ci)
        .expect("the token's refused create");
    assert_eq!(code(refused), 403);
    assert_eq!(
        annotation(refused, "authorization.k8s.io/decision"),
        "forbid"
    );
    assert_eq!(
        annotation(refused, "authentication.k8s.io/legacy-token"),
        ci
    );
    assert_eq!(
        annotation(refused, "authentication.k8s.io/legacy-token-manual-secret"),
        "ci-token"
    );
    assert_eq!(refused["responseStatus"]["reason"], "Forbidden");
    assert!(
        refused["userAgent"]
            .as_str()
            .unwrap_or("")
            .starts_with("kubectl/")
    );
    let created: Vec<&Value> = with(&events, "create", ("serviceaccounts", PROJECT, ""))
        .into_iter()
        .filter(|e| e["user"]["username"] != ci)
        .collect();
    assert_eq!(created.len(), 1, "{created:#?}");
    assert_eq!(code(created[0]), 201);
    assert_eq!(
        annotation(created[0], "authorization.k8s.io/decision"),
        "allow"
    );
    let removed = one(&events, "delete", ("serviceaccounts", PROJECT, "other"));
    assert_eq!(code(removed), 200);
    assert_eq!(removed["objectRef"]["apiVersion"], "v1");
    assert_eq!(removed["sourceIPs"][0], "127.0.0.1");

    // Authentication failures: no user, 401, and why.
    let failures: Vec<&Value> = events.iter().filter(|e| code(e) == 401).collect();
    assert!(failures.len() >= 2, "{failures:#?}");
    for failure in &failures {
        assert_eq!(failure["user"], serde_json::json!({}));
        assert_eq!(failure["responseStatus"]["reason"], "Unauthorized");
        assert!(
            !annotation(failure, "audit.kargo.akuity.io/authentication-failure").is_empty(),
            "{failure}"
        );
    }
    assert!(failures.iter().any(|e| e["verb"] == "list-projects"));
    assert!(failures.iter().any(|e| {
        e["userAgent"]
            .as_str()
            .unwrap_or("")
            .starts_with("kubectl/")
    }));
    let logins = with(&events, "login", ("", "", ""));
    let wrong = logins
        .iter()
        .find(|e| code(e) == 403)
        .expect("the wrong password");
    assert_eq!(wrong["user"], serde_json::json!({}));
    assert_eq!(
        annotation(wrong, "audit.kargo.akuity.io/authentication-failure"),
        "invalid password"
    );
    assert!(
        logins
            .iter()
            .any(|e| code(e) == 200 && e["user"]["username"] == "admin")
    );

    // Nothing secret, anywhere.
    let text = std::fs::read_to_string(log).expect("the log");
    let base64 = base64_of(SECRET_DATA);
    for (what, secret) in [
        ("a token", traffic.token.as_str()),
        ("a token", &traffic.other_token),
        ("the admin's token", &traffic.admin_jwt),
        ("the admin password", ADMIN_PASSWORD),
        ("a wrong password", "not-the-admin-password"),
        ("Secret data", SECRET_DATA),
        ("Secret data", &base64),
    ] {
        assert!(!text.contains(secret), "the audit log holds {what}");
    }
    // Every token-shaped string: none.
    assert!(!text.contains("eyJhbGci"), "the audit log holds a JWT");
}

fn base64_of(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[test]
fn the_metadata_level_logs_every_change_and_authentication_failure_and_no_secret() {
    let (server, _dir, log) = audited_server(&[]);
    let traffic = drive(&server);
    check_metadata_log(&log, &traffic);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&log)
        .expect("the log")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn on_etcd_the_request_level_also_logs_reads() {
    let cluster = kargo_store::testing::EtcdCluster::start(1);
    let mut args = Server::etcd_args(&cluster);
    args.extend(["--audit-level".to_owned(), "request".to_owned()]);
    let (server, _dir, log) = audited_server(&args);
    let traffic = drive(&server);
    let events = events_until(&log, |events| {
        !with(events, "delete-serviceaccount", ("", "", "")).is_empty()
    });
    // Reads are there: kubectl's list with the token, the CLI's.
    let reads = with(&events, "list", ("serviceaccounts", PROJECT, ""));
    assert!(
        reads
            .iter()
            .any(|e| e["user"]["username"] == "system:serviceaccount:audited:ci" && code(e) == 200),
        "{reads:#?}"
    );
    // The CLI's read with the token names the account and the token's Secret.
    let cli_read = with(
        &events,
        "list-serviceaccounts",
        ("serviceaccounts", PROJECT, ""),
    )
    .into_iter()
    .find(|e| e["user"]["username"] == "system:serviceaccount:audited:ci")
    .expect("the CLI's read with the token");
    assert_eq!(code(cli_read), 200);
    assert_eq!(
        annotation(cli_read, "authentication.k8s.io/legacy-token-manual-secret"),
        "ci-token"
    );
    assert_eq!(
        annotation(cli_read, "authorization.k8s.io/decision"),
        "allow"
    );
    // And every write, as at the metadata level.
    let gone = one(
        &events,
        "delete-serviceaccount",
        ("serviceaccounts", PROJECT, "ci"),
    );
    assert!(
        annotation(gone, "audit.kargo.akuity.io/objects")
            .contains("collect secrets audited/ci-token-2")
    );
    let deleted = one(&events, "delete-token", ("secrets", PROJECT, "ci-token"));
    assert_eq!(deleted["auditID"], traffic.delete_token_audit_id.as_str());
    let text = std::fs::read_to_string(&log).expect("the log");
    for secret in [&traffic.token, &traffic.other_token, &traffic.admin_jwt] {
        assert!(
            !text.contains(secret.as_str()),
            "the audit log holds a token"
        );
    }
    assert!(!text.contains(SECRET_DATA) && !text.contains(&base64_of(SECRET_DATA)));
}

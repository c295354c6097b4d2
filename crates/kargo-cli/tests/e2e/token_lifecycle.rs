//! Issue 17, items 3-5: a token's lifecycle after its creation, with the real `kargo` binary,
//! kubectl and the Python client. `kargo disable serviceaccounttoken` refuses a token from the
//! next request on (401 from kubectl and the Kargo API) until `kargo enable`; kubectl sees and
//! sets the same `kargo.akuity.io/disabled` annotation. `kargo rotate serviceaccounttoken
//! --grace 5s` issues a new value (same Secret, same account) while the old one works until the
//! grace ends (then 401), `--grace 0` ends the old one at once. A description given at creation
//! shows in `-o wide`, with each token's STATE. All of it survives a restart, and holds across
//! two replicas on etcd.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cli_harness::{Kargo, account_with_role, token_from_banner};
use crate::harness::{Server, eventually};
use crate::token_expiry::wide_cell;

const P: &str = "my-project";
const UNAUTHORIZED: &str = "error: You must be logged in to the server (Unauthorized)\n";
const CI: &str = "system:serviceaccount:my-project:ci\n";
const DISABLED: &str = "kargo.akuity.io/disabled";
const PREVIOUS_SHA256: &str = "kargo.akuity.io/previous-token-sha256";
const PREVIOUS_VALID_UNTIL: &str = "kargo.akuity.io/previous-token-valid-until";

/// A logged-in admin, the project `P` and its ServiceAccount `ci` with `kargo-viewer`.
fn admin_and_viewer(server: &Server) -> Kargo {
    let admin = Kargo::logged_in(server);
    admin.run(&["create", "project", P]).ok();
    account_with_role(&admin, P, "ci", "kargo-viewer");
    admin
}

/// A new token `name` of `ci`: its value.
fn new_token(admin: &Kargo, name: &str, extra: &[&str]) -> String {
    let mut args = vec!["create", "sat", "-p", P, "--service-account", "ci", name];
    args.extend_from_slice(extra);
    token_from_banner(&admin.run(&args))
}

/// `kubectl auth whoami` with `token`: the username line, or the refusal.
fn whoami(server: &Server, token: &str) -> String {
    let kubeconfig = server.token_kubeconfig("t", token, P);
    let run = server.kubectl_with(
        &kubeconfig,
        &[
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ],
        None,
    );
    match run.code {
        0 => format!("{}\n", run.stdout),
        _ => run.stderr,
    }
}

/// The Kargo API with `token`: the status of a list of ServiceAccounts.
fn kargo_api(server: &Server, token: &str) -> u16 {
    let path = format!("/v1beta1/projects/{P}/service-accounts");
    server.curl("GET", &path, Some(token), &[], None).0
}

/// The annotations of the Secret `name` as kubectl (the admin) shows them.
fn annotations(server: &Server, name: &str) -> Value {
    let secret: Value = serde_json::from_str(
        server
            .kubectl(&["get", "secret", "-n", P, name, "-o", "json"])
            .ok(),
    )
    .unwrap();
    secret["metadata"]["annotations"].clone()
}

/// The new value in `kargo rotate`'s banner, checking the banner.
#[track_caller]
fn token_from_rotation(out: &crate::cli_harness::Out, old_valid_until: Option<&str>) -> String {
    let token = out
        .ok()
        .lines()
        .find_map(|l| l.strip_prefix("Token: "))
        .unwrap_or_else(|| panic!("no token in:\n{}", out.stdout))
        .to_owned();
    let old = match old_valid_until {
        Some(until) => format!("The previous value stays valid until {until}.\n"),
        None => "The previous value no longer works.\n".to_owned(),
    };
    out.prints(&format!(
        "Token rotated successfully!\n\n{old}IMPORTANT: Save this token securely. It will not be shown again.\n\nToken: {token}\n"
    ));
    assert!(token.starts_with("eyJ"), "not a JWT: {token}");
    token
}

fn sha256_hex(text: &str) -> String {
    let mut child = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sha256sum");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_owned()
}

#[test]
fn a_disabled_token_gets_401_until_it_is_enabled_and_kubectl_sees_and_sets_the_annotation() {
    let mut server = Server::start();
    let admin = admin_and_viewer(&server);
    let token = new_token(&admin, "deploy", &["--description", "deploys from CI"]);
    assert_eq!(whoami(&server, &token), CI);
    assert_eq!(wide_cell(&admin, "deploy", "STATE"), "active");
    assert_eq!(
        wide_cell(&admin, "deploy", "DESCRIPTION"),
        "deploys from CI"
    );
    assert_eq!(wide_cell(&admin, "ci-token", "DESCRIPTION"), "<none>");

    admin
        .run(&["disable", "sat", "-p", P, "deploy"])
        .prints("serviceaccounttoken.kargo.akuity.io/deploy disabled\n");
    // Refused by the very next request, as a deletion is.
    assert_eq!(whoami(&server, &token), UNAUTHORIZED);
    assert_eq!(kargo_api(&server, &token), 401);
    assert_eq!(server.python("whoami.py", &token, &[]).ok(), "401\n");
    assert_eq!(annotations(&server, "deploy")[DISABLED], "true");
    assert_eq!(wide_cell(&admin, "deploy", "STATE"), "disabled");
    assert_eq!(wide_cell(&admin, "ci-token", "STATE"), "active");
    // The default table is the guide's: no new column.
    let plain = admin.run(&["get", "sats", "-p", P]);
    assert!(
        plain
            .ok()
            .starts_with("NAME       SERVICE ACCOUNT   KARGO MANAGED   AGE\n"),
        "{}",
        plain.stdout
    );

    // The state survives a restart.
    server.restart(false);
    assert_eq!(whoami(&server, &token), UNAUTHORIZED);
    assert_eq!(wide_cell(&admin, "deploy", "STATE"), "disabled");

    admin
        .run(&["enable", "sat", "-p", P, "deploy"])
        .prints("serviceaccounttoken.kargo.akuity.io/deploy enabled\n");
    assert_eq!(whoami(&server, &token), CI);
    assert_eq!(kargo_api(&server, &token), 200);
    assert_eq!(annotations(&server, "deploy")[DISABLED], Value::Null);
    assert_eq!(wide_cell(&admin, "deploy", "STATE"), "active");

    // kubectl sets and removes the same annotation.
    server
        .kubectl(&[
            "annotate",
            "secret",
            "-n",
            P,
            "deploy",
            &format!("{DISABLED}=true"),
        ])
        .ok();
    assert!(
        eventually(Duration::from_secs(3), || whoami(&server, &token)
            == UNAUTHORIZED),
        "kubectl's annotation disables the token"
    );
    assert_eq!(wide_cell(&admin, "deploy", "STATE"), "disabled");
    server
        .kubectl(&[
            "annotate",
            "secret",
            "-n",
            P,
            "deploy",
            &format!("{DISABLED}-"),
        ])
        .ok();
    assert!(
        eventually(Duration::from_secs(3), || whoami(&server, &token) == CI),
        "removing it enables the token again"
    );

    // Errors: a missing token, and a caller who may not change Secrets.
    admin
        .run(&["disable", "sat", "-p", P, "nope"])
        .fails_with("serviceaccounttokens \"nope\" not found");
    let (code, body) = server.curl(
        "POST",
        &format!("/v1beta1/projects/{P}/service-account-tokens/deploy/disable"),
        Some(&token),
        &[],
        None,
    );
    assert_eq!(
        (code, body.as_str()),
        (
            403,
            r#"{"error":"secrets \"deploy\" is forbidden: get is not permitted"}"#
        )
    );
    let viewer = Kargo::with_token(&admin, &token);
    for verb in ["disable", "enable", "rotate"] {
        viewer
            .run(&[verb, "sat", "-p", P, "deploy"])
            .fails_with("secrets \"deploy\" is forbidden: get is not permitted");
    }
    assert_eq!(
        whoami(&server, &token),
        CI,
        "the refused request changed nothing"
    );
}

#[test]
fn a_rotated_tokens_old_value_works_during_the_grace_only_and_the_new_one_from_the_start() {
    let mut server = Server::start();
    let admin = admin_and_viewer(&server);
    let old = new_token(&admin, "rot", &[]);

    let started = Instant::now();
    let out = admin.run(&["rotate", "sat", "-p", P, "rot", "--grace", "5s"]);
    let until = annotations(&server, "rot")[PREVIOUS_VALID_UNTIL]
        .as_str()
        .expect("the end of the grace is kept")
        .to_owned();
    let new = token_from_rotation(&out, Some(&until));
    assert_ne!(new, old);
    let kept = annotations(&server, "rot");
    assert_eq!(
        kept[PREVIOUS_SHA256],
        sha256_hex(&old),
        "its hash, never the value"
    );
    assert!(!kept.to_string().contains(&old));
    let state = wide_cell(&admin, "rot", "STATE");
    assert!(
        state.starts_with("rotating (old value valid ") && state.ends_with("s)"),
        "{state}"
    );

    // Both work, with kubectl, the Kargo API and the Python client.
    assert_eq!(whoami(&server, &old), CI);
    assert_eq!(server.python("whoami.py", &old, &[]).ok(), CI);
    assert_eq!(whoami(&server, &new), CI);
    assert_eq!(kargo_api(&server, &new), 200);
    assert_eq!(server.python("whoami.py", &new, &[]).ok(), CI);

    assert!(
        eventually(Duration::from_secs(10), || whoami(&server, &old)
            == UNAUTHORIZED),
        "the old value still works 10 s later"
    );
    let refused_after = started.elapsed();
    assert!(
        (Duration::from_secs(4)..Duration::from_secs(9)).contains(&refused_after),
        "refused {refused_after:?} after the rotation"
    );
    assert_eq!(kargo_api(&server, &old), 401);
    assert_eq!(whoami(&server, &new), CI);
    assert_eq!(wide_cell(&admin, "rot", "STATE"), "active");
    assert!(
        eventually(Duration::from_secs(3), || annotations(&server, "rot")
            [PREVIOUS_SHA256]
            .is_null()),
        "the token controller removes the ended grace's annotations"
    );
    assert_eq!(
        annotations(&server, "rot")[PREVIOUS_VALID_UNTIL],
        Value::Null
    );

    // A rotation with a grace survives a restart; then one without grace ends the old value at
    // once and drops the annotations.
    let out = admin.run(&["rotate", "sat", "-p", P, "rot", "--grace", "1h"]);
    let until = annotations(&server, "rot")[PREVIOUS_VALID_UNTIL]
        .as_str()
        .unwrap()
        .to_owned();
    let newer = token_from_rotation(&out, Some(&until));
    server.restart(false);
    assert_eq!(whoami(&server, &new), CI, "in its grace after a restart");
    assert_eq!(whoami(&server, &newer), CI);
    let state = wide_cell(&admin, "rot", "STATE");
    assert!(
        [
            "rotating (old value valid 60m)",
            "rotating (old value valid 59m)"
        ]
        .contains(&&*state),
        "{state}"
    );

    let newest = token_from_rotation(
        &admin.run(&["rotate", "sat", "-p", P, "rot", "--grace", "0"]),
        None,
    );
    assert_eq!(whoami(&server, &newer), UNAUTHORIZED);
    assert_eq!(whoami(&server, &new), UNAUTHORIZED, "an older value too");
    assert_eq!(whoami(&server, &newest), CI);
    let kept = annotations(&server, "rot");
    assert_eq!(kept[PREVIOUS_SHA256], Value::Null);
    assert_eq!(kept[PREVIOUS_VALID_UNTIL], Value::Null);

    // -o kubeconfig hands out the new value ready for kubectl.
    let kubeconfig = admin.run(&["rotate", "sat", "-p", P, "rot", "-o", "kubeconfig"]);
    let path = server.scratch().join("rotated.kubeconfig");
    std::fs::write(&path, kubeconfig.ok()).unwrap();
    assert_eq!(
        server
            .kubectl_with(
                &path,
                &[
                    "auth",
                    "whoami",
                    "-o",
                    "jsonpath={.status.userInfo.username}"
                ],
                None
            )
            .ok(),
        CI.trim_end()
    );
    assert_eq!(whoami(&server, &newest), UNAUTHORIZED);

    // Bad input.
    let bad = admin.run(&["rotate", "sat", "-p", P, "rot", "--grace", "1w"]);
    assert!(
        bad.code != 0 && bad.stderr.contains("invalid grace period \"1w\""),
        "{}",
        bad.stderr
    );
    let (code, body) = server.curl(
        "POST",
        &format!("/v1beta1/projects/{P}/service-account-tokens/rot/rotate"),
        Some(&server.admin_token()),
        &["Content-Type: application/json"],
        Some(br#"{"grace":"soon"}"#),
    );
    assert_eq!(
        (code, body.as_str()),
        (
            400,
            r#"{"error":"invalid grace period \"soon\": want 0 or a number followed by s, m, h or d (e.g. 24h, 30m)"}"#
        )
    );
    admin
        .run(&["rotate", "sat", "-p", P, "nope"])
        .fails_with("serviceaccounttokens \"nope\" not found");
}

#[test]
fn a_description_is_set_at_creation_through_the_cli_and_the_rest_api_and_checked() {
    let server = Server::start();
    let admin = admin_and_viewer(&server);
    new_token(
        &admin,
        "described",
        &["--description", "nightly backup job"],
    );
    assert_eq!(
        annotations(&server, "described")["kargo.akuity.io/description"],
        "nightly backup job"
    );
    let (code, body) = server.curl(
        "POST",
        &format!("/v1beta1/projects/{P}/service-accounts/ci/tokens"),
        Some(&server.admin_token()),
        &["Content-Type: application/json"],
        Some(br#"{"name":"bad","description":"two\nlines"}"#),
    );
    assert_eq!(
        (code, body.as_str()),
        (
            400,
            r#"{"error":"description must not contain control characters (such as newlines)"}"#
        )
    );
    admin
        .run(&[
            "create",
            "sat",
            "-p",
            P,
            "--service-account",
            "ci",
            "long",
            "--description",
            &"x".repeat(257),
        ])
        .fails_with("description is longer than 256 characters");
}

#[test]
fn disabling_and_rotating_on_one_replica_apply_on_the_other() {
    let cluster = kargo_store::testing::EtcdCluster::start(1);
    let args = Server::etcd_args(&cluster);
    let a = Server::start_with(&args);
    let b = Server::start_with(&args);
    let admin = admin_and_viewer(&a);
    let token = new_token(&admin, "shared", &[]);
    assert_eq!(whoami(&b, &token), CI);

    admin.run(&["disable", "sat", "-p", P, "shared"]).ok();
    assert!(
        eventually(Duration::from_secs(2), || whoami(&b, &token)
            == UNAUTHORIZED),
        "B refuses the disabled token"
    );
    admin.run(&["enable", "sat", "-p", P, "shared"]).ok();
    assert!(
        eventually(Duration::from_secs(2), || whoami(&b, &token) == CI),
        "B accepts it again"
    );

    let out = admin.run(&["rotate", "sat", "-p", P, "shared", "--grace", "1h"]);
    let new = out
        .ok()
        .lines()
        .find_map(|l| l.strip_prefix("Token: "))
        .unwrap()
        .to_owned();
    assert!(
        eventually(Duration::from_secs(2), || whoami(&b, &new) == CI),
        "B accepts the new value"
    );
    assert_eq!(whoami(&b, &token), CI, "and the old one in its grace");
    admin
        .run(&["rotate", "sat", "-p", P, "shared", "--grace", "0"])
        .ok();
    assert!(
        eventually(Duration::from_secs(2), || whoami(&b, &new) == UNAUTHORIZED),
        "B refuses the replaced value"
    );
    assert_eq!(whoami(&b, &token), UNAUTHORIZED);
}

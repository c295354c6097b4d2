//! Issue 17, item 2: when a token was last used, and from where. A token used with kubectl or
//! the Kargo API shows it in `kargo get serviceaccounttokens -o wide` (`LAST USED`: `never`,
//! then its age to the minute) and, for kubectl, on its Secret
//! (`kargo.akuity.io/last-used-at`, `kargo.akuity.io/last-used-from`, the label
//! `kubernetes.io/legacy-token-last-used`); the time never moves backwards; a clean restart
//! writes what was pending and keeps it all; two replicas on etcd both record uses.
//!
//! The servers write every second (`--token-last-used-interval 1s`) so that the tests wait on
//! a bounded poll, never a sleep; ages in the past are set with kubectl, as another replica
//! would write them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kargo_store::testing::EtcdCluster;
use serde_json::Value;

use crate::cli_harness::{Kargo, account_with_role, token_from_banner};
use crate::harness::{Server, eventually};

const P: &str = "my-project";
const AT: &str = "kargo.akuity.io/last-used-at";
const FROM: &str = "kargo.akuity.io/last-used-from";
const LABEL: &str = "kubernetes.io/legacy-token-last-used";

fn every_second() -> Vec<String> {
    vec!["--token-last-used-interval".into(), "1s".into()]
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn minute_of(at: i64) -> i64 {
    at - at.rem_euclid(60)
}

fn rfc3339(at: i64) -> String {
    k8s_openapi::jiff::Timestamp::from_second(at)
        .unwrap()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn parse(value: &str) -> i64 {
    value
        .parse::<k8s_openapi::jiff::Timestamp>()
        .unwrap()
        .as_second()
}

/// The LAST USED cell of token `name` in `kargo get sats -o wide`.
fn last_used_cell(admin: &Kargo, name: &str) -> String {
    crate::token_expiry::wide_cell_in(admin, P, name, "LAST USED")
}

/// The token Secret `name` as kubectl (the admin's) sees it.
fn secret(server: &Server, name: &str) -> Value {
    let out = server.kubectl(&["get", "secret", "-n", P, name, "-o", "json"]);
    serde_json::from_str(out.ok()).unwrap()
}

/// `last-used-at`, `last-used-from` and the label of the Secret `name`, as kubectl sees them.
fn recorded(server: &Server, name: &str) -> (Option<String>, Option<String>, Option<String>) {
    let secret = secret(server, name);
    let get = |v: &Value| v.as_str().map(str::to_owned);
    (
        get(&secret["metadata"]["annotations"][AT]),
        get(&secret["metadata"]["annotations"][FROM]),
        get(&secret["metadata"]["labels"][LABEL]),
    )
}

/// Sends one Kargo API request with `token` (from 127.0.0.1).
fn use_token(server: &Server, token: &str) {
    let path = format!("/v1beta1/projects/{P}/service-accounts");
    assert_eq!(server.curl("GET", &path, Some(token), &[], None).0, 200);
}

/// Waits until the Secret `name` records a use at or after `since`.
fn wait_recorded(server: &Server, name: &str, since: i64) {
    let recorded = eventually(Duration::from_secs(15), || {
        recorded(server, name)
            .0
            .is_some_and(|at| parse(&at) >= minute_of(since))
    });
    assert!(recorded, "{name}: {:?}", recorded_text(server, name));
}

fn recorded_text(server: &Server, name: &str) -> String {
    format!("{:?}", recorded(server, name))
}

/// `kargo create sat -p P --service-account ci NAME`: its token.
fn create_token(admin: &Kargo, name: &str) -> String {
    token_from_banner(&admin.run(&["create", "sat", "-p", P, "--service-account", "ci", name]))
}

#[test]
fn a_used_token_shows_when_and_from_where_in_kargo_get_and_kubectl_and_a_restart_keeps_it() {
    let mut server = Server::start_with(&every_second());
    let admin = Kargo::logged_in(&server);
    admin.run(&["create", "project", P]).ok();
    let ci = account_with_role(&admin, P, "ci", "kargo-viewer");
    let other = create_token(&admin, "other");
    assert_eq!(last_used_cell(&admin, "ci-token"), "never");
    assert_eq!(recorded(&server, "ci-token"), (None, None, None));

    // Used with kubectl: kargo get and kubectl both show it, to the minute, from 127.0.0.1.
    let before = unix_now();
    let kubeconfig = server.token_kubeconfig("ci-token", &ci, P);
    server
        .kubectl_with(&kubeconfig, &["get", "serviceaccounts"], None)
        .ok();
    wait_recorded(&server, "ci-token", before);
    let after = unix_now();
    let (at, from, label) = recorded(&server, "ci-token");
    let at = at.unwrap();
    assert!(at.ends_with(":00Z"), "to the minute, UTC: {at}");
    assert!(
        (minute_of(before)..=minute_of(after)).contains(&parse(&at)),
        "{at} is not the minute of the request"
    );
    assert_eq!(from.as_deref(), Some("127.0.0.1"));
    assert_eq!(label, Some(at[..10].to_owned()), "the date of the use");
    let cell = last_used_cell(&admin, "ci-token");
    assert!(["0s", "60s"].contains(&cell.as_str()), "LAST USED {cell}");
    assert_eq!(last_used_cell(&admin, "other"), "never");
    assert_eq!(
        server
            .kubectl(&["get", "secrets", "-n", P, "-l", LABEL, "-o", "name"])
            .ok(),
        "secret/ci-token\n",
        "kubectl selects used tokens by Kubernetes' label"
    );

    // An age as kubectl prints it: a use two days ago (as another replica would have written).
    let two_days_ago = rfc3339(minute_of(unix_now()) - 2 * 86_400);
    server
        .kubectl(&[
            "annotate",
            "secret",
            "-n",
            P,
            "other",
            &format!("{AT}={two_days_ago}"),
        ])
        .ok();
    assert_eq!(last_used_cell(&admin, "other"), "2d");

    // A later time already recorded is never moved back: `ci-token` is used before `other`, and
    // once `other` is written, `ci-token`'s round has passed too.
    let later = rfc3339(minute_of(unix_now()) + 3_600);
    server
        .kubectl(&[
            "annotate",
            "--overwrite",
            "secret",
            "-n",
            P,
            "ci-token",
            &format!("{AT}={later}"),
        ])
        .ok();
    let now = unix_now();
    use_token(&server, &ci);
    use_token(&server, &other);
    wait_recorded(&server, "other", now);
    assert_eq!(recorded(&server, "ci-token").0, Some(later.clone()));

    // With the default interval (a minute), a clean stop writes what is pending; a restart keeps
    // everything.
    server.restart_with(&[]);
    let third = create_token(&admin, "third");
    let now = unix_now();
    use_token(&server, &third);
    assert_eq!(recorded(&server, "third"), (None, None, None), "not yet");
    server.restart(false);
    let (at, from, _) = recorded(&server, "third");
    assert!(
        at.is_some_and(|at| parse(&at) >= minute_of(now)),
        "written on the way down"
    );
    assert_eq!(from.as_deref(), Some("127.0.0.1"));
    assert_eq!(recorded(&server, "ci-token").0, Some(later));
    assert_ne!(last_used_cell(&admin, "other"), "never");
}

#[test]
fn two_replicas_on_etcd_each_record_the_uses_they_see() {
    let cluster = EtcdCluster::start(1);
    let mut args = Server::etcd_args(&cluster);
    args.extend(every_second());
    let a = Server::start_with(&args);
    let b = Server::start_with(&args);
    let admin = Kargo::logged_in(&a);
    admin.run(&["create", "project", P]).ok();
    let ci = account_with_role(&admin, P, "ci", "kargo-viewer");

    let now = unix_now();
    use_token(&b, &ci);
    wait_recorded(&a, "ci-token", now);
    assert_eq!(recorded(&a, "ci-token").1.as_deref(), Some("127.0.0.1"));
    assert_ne!(last_used_cell(&admin, "ci-token"), "never");

    // A use on A is recorded too (after an older time, written with kubectl), and B sees it.
    let older = rfc3339(minute_of(unix_now()) - 3_600);
    b.kubectl(&[
        "annotate",
        "--overwrite",
        "secret",
        "-n",
        P,
        "ci-token",
        &format!("{AT}={older}"),
    ])
    .ok();
    let now = unix_now();
    use_token(&a, &ci);
    wait_recorded(&b, "ci-token", now);
    assert_ne!(last_used_cell(&Kargo::logged_in(&b), "ci-token"), "never");
}

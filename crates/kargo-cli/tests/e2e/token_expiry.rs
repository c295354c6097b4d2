//! Issue 17, item 1: optional expiry of ServiceAccount tokens. A token created with
//! `kargo create serviceaccounttoken --expires-in 3s` works with kubectl and the Kargo API, then
//! gets 401 from both once its Secret's `kargo.akuity.io/expires-at` has passed (not before);
//! `kargo get serviceaccounttokens -o wide` says `expired`. The server's
//! `--max-token-lifetime` refuses longer tokens with a 400, and `--default-token-lifetime` (or
//! the maximum) is what a token asked for without expiry gets.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::cli_harness::{Kargo, account_with_role, token_from_banner};
use crate::harness::{Server, eventually};

const P: &str = "my-project";
const UNAUTHORIZED: &str = "error: You must be logged in to the server (Unauthorized)\n";
const EXPIRES_AT: &str = "kargo.akuity.io/expires-at";

/// A logged-in admin, the project `P` and its ServiceAccount `ci` with `kargo-viewer` (and
/// `ci`'s token `ci-token`, which never expires).
fn admin_and_viewer(server: &Server) -> Kargo {
    let admin = Kargo::logged_in(server);
    admin.run(&["create", "project", P]).ok();
    account_with_role(&admin, P, "ci", "kargo-viewer");
    admin
}

/// `kargo create sat -p P --service-account ci NAME EXTRA...`.
fn create_token(admin: &Kargo, name: &str, extra: &[&str]) -> crate::cli_harness::Out {
    let mut args = vec!["create", "sat", "-p", P, "--service-account", "ci", name];
    args.extend_from_slice(extra);
    admin.run(&args)
}

/// The `kargo.akuity.io/expires-at` of token `name`, as `kargo get -o json` shows it, in Unix
/// seconds.
fn expires_at(admin: &Kargo, name: &str) -> Option<i64> {
    let out = admin.run(&["get", "sat", "-p", P, name, "-o", "json"]);
    let secret: Value = serde_json::from_str(out.ok()).unwrap();
    assert_eq!(
        secret["data"]["token"], "KioqIFJFREFDVEVEICoqKg==",
        "still redacted"
    );
    let value = secret["metadata"]["annotations"][EXPIRES_AT].as_str()?;
    assert!(value.ends_with('Z'), "RFC 3339 UTC: {value}");
    Some(
        value
            .parse::<k8s_openapi::jiff::Timestamp>()
            .unwrap()
            .as_second(),
    )
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The EXPIRES cell of token `name` in `kargo get sats -o wide`.
fn expires_cell(admin: &Kargo, name: &str) -> String {
    wide_cell(admin, name, "EXPIRES")
}

/// The cell of column `column` of token `name` in `kargo get sats -o wide` (columns are
/// aligned, so the cell starts where its header does).
pub(crate) fn wide_cell(admin: &Kargo, name: &str, column: &str) -> String {
    wide_cell_of(admin, "sats", name, column)
}

/// [`wide_cell`] in project `project`.
pub(crate) fn wide_cell_in(admin: &Kargo, project: &str, name: &str, column: &str) -> String {
    wide_cell_at(admin, "sats", project, name, column)
}

/// The same in `kargo get KIND -p P -o wide` (`sats`, `tokens`).
pub(crate) fn wide_cell_of(admin: &Kargo, kind: &str, name: &str, column: &str) -> String {
    wide_cell_at(admin, kind, P, name, column)
}

/// The cell of `column` of `name` in `kargo get KIND -p PROJECT -o wide`.
fn wide_cell_at(admin: &Kargo, kind: &str, project: &str, name: &str, column: &str) -> String {
    let out = admin.run(&["get", kind, "-p", project, "-o", "wide"]);
    let table = out.ok();
    let header = table.lines().next().unwrap_or_default();
    assert!(
        header.starts_with("NAME ") && header.contains("   AGE "),
        "{table}"
    );
    let at = header
        .find(&format!(" {column}"))
        .unwrap_or_else(|| panic!("no {column} in:\n{table}"))
        + 1;
    let row = table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no {name} in:\n{table}"));
    row.get(at..)
        .unwrap_or_default()
        .split("  ")
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned()
}

#[test]
fn a_token_created_to_expire_in_3s_is_refused_by_kubectl_and_the_kargo_api_from_then_on() {
    let server = Server::start();
    let admin = admin_and_viewer(&server);

    let started = Instant::now();
    let token = token_from_banner(&create_token(&admin, "short", &["--expires-in", "3s"]));
    let kubeconfig = server.token_kubeconfig("short", &token, P);
    let whoami = || server.kubectl_with(&kubeconfig, &["auth", "whoami"], None);
    let kargo_api = || {
        let path = format!("/v1beta1/projects/{P}/service-accounts");
        server.curl("GET", &path, Some(&token), &[], None)
    };
    assert!(
        whoami()
            .ok()
            .contains("system:serviceaccount:my-project:ci"),
        "works at first"
    );
    assert_eq!(kargo_api().0, 200);
    let at = expires_at(&admin, "short").expect("the annotation is set");
    let now = unix_now();
    assert!(
        (now + 1..=now + 4).contains(&at),
        "expires at {at}, now {now}"
    );
    assert!(expires_cell(&admin, "short").starts_with("in "));

    assert!(
        eventually(Duration::from_secs(8), || whoami().code != 0),
        "kubectl still works 8 s later"
    );
    let refused_after = started.elapsed();
    assert!(
        (Duration::from_secs(2)..Duration::from_secs(6)).contains(&refused_after),
        "refused {refused_after:?} after its creation"
    );
    assert_eq!(whoami().err(), UNAUTHORIZED);
    assert_eq!(
        kargo_api(),
        (401, r#"{"error":"invalid token"}"#.to_owned()),
        "the Kargo API refuses it too"
    );

    // Lists show it: expired, and the token created without expiry never expires.
    assert_eq!(expires_cell(&admin, "short"), "expired");
    assert_eq!(expires_cell(&admin, "ci-token"), "never");
    let plain = admin.run(&["get", "sats", "-p", P]);
    assert!(
        plain
            .ok()
            .starts_with("NAME       SERVICE ACCOUNT   KARGO MANAGED   AGE\n"),
        "the default table has no EXPIRES column:\n{}",
        plain.stdout
    );
}

#[test]
fn the_maximum_lifetime_refuses_longer_tokens_and_the_default_is_given_to_the_others() {
    let args = [
        "--max-token-lifetime",
        "90d",
        "--default-token-lifetime",
        "12h",
    ];
    let server = Server::start_with(&args.map(String::from));
    let admin = admin_and_viewer(&server);

    create_token(&admin, "long", &["--expires-in", "100d"])
        .fails_with("token lifetime 100d exceeds the maximum of 90d");
    let (code, body) = server.curl(
        "POST",
        &format!("/v1beta1/projects/{P}/service-accounts/ci/tokens"),
        Some(&server.admin_token()),
        &["Content-Type: application/json"],
        Some(br#"{"name":"bad","expiresIn":"3 days"}"#),
    );
    assert_eq!(
        (code, body.as_str()),
        (
            400,
            r#"{"error":"invalid token lifetime \"3 days\": want a number of at least 1 followed by s, m, h or d (e.g. 90d, 12h, 30m, 30s)"}"#
        )
    );

    // `ci-token` was created without expiry: it got the default.
    let at = expires_at(&admin, "ci-token").expect("the default lifetime is applied");
    let twelve_hours = unix_now() + 12 * 3600;
    assert!(
        (twelve_hours - 60..=twelve_hours + 1).contains(&at),
        "{at} is not 12 h from now"
    );
    token_from_banner(&create_token(&admin, "month", &["--expires-in", "30d"]));
    let month = unix_now() + 30 * 86_400;
    let at = expires_at(&admin, "month").unwrap();
    assert!((month - 60..=month + 1).contains(&at), "{at}");

    // With a maximum and no default, a token asked for without expiry gets the maximum.
    let server = Server::start_with(&["--max-token-lifetime".into(), "1d".into()]);
    let admin = admin_and_viewer(&server);
    let day = unix_now() + 86_400;
    let at = expires_at(&admin, "ci-token").expect("the maximum is applied");
    assert!((day - 60..=day + 1).contains(&at), "{at}");
}

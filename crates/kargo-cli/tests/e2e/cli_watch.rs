//! Issue 19, item 5 (`-w`): `kargo get … -w` prints the objects, then a row for each object
//! added, changed or deleted (by the CLI, or by kubectl), as `kubectl get -w` does; with
//! `--watch-only` only the changes; each object on its own in the other formats. Real `kargo`
//! binaries against a real server.

use std::time::Duration;

use crate::cli_harness::Kargo;
use crate::harness::Server;

const P: &str = "watched";

/// The first cell of a table row.
fn name_of(row: &str) -> &str {
    row.split_whitespace().next().unwrap_or("")
}

#[test]
fn get_w_prints_the_table_then_a_row_for_each_account_added_or_deleted() {
    let mut server = Server::start();
    let admin = Kargo::logged_in(&server);
    admin.run(&["create", "project", P]).ok();
    admin.run(&["create", "sa", "-p", P, "first"]).ok();

    let mut watch = admin.start(&["get", "sa", "-p", P, "-w"]);
    let header = watch.next_line();
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        ["NAME", "AGE"]
    );
    assert_eq!(name_of(&watch.next_line()), "first");

    admin.run(&["create", "sa", "-p", P, "second"]).ok();
    let added = watch.next_line();
    assert_eq!(
        name_of(&added),
        "second",
        "a new account's row, no header: {added:?}"
    );

    // A change made with kubectl is seen too: the account is deleted by its Kubernetes name.
    server
        .kubectl(&["delete", "serviceaccount", "-n", P, "first"])
        .ok();
    assert_eq!(
        name_of(&watch.next_line()),
        "first",
        "the deleted account's last row"
    );
    // An object that is not a Kargo ServiceAccount changes nothing that is printed.
    server
        .kubectl(&["create", "configmap", "-n", P, "unrelated"])
        .ok();
    watch
        .stays_quiet(Duration::from_secs(2))
        .expect("nothing printed for a ConfigMap");

    // A server that goes away ends the watch with an error, not a hang.
    server.kill();
    let (code, stderr) = watch.finish();
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.starts_with("Error: cannot connect to the Kargo API server at"),
        "{stderr}"
    );
}

#[test]
fn watch_only_prints_changes_of_roles_and_tokens_in_every_format() {
    let server = Server::start();
    let admin = Kargo::logged_in(&server);
    admin.run(&["create", "project", P]).ok();
    admin.run(&["create", "role", "-p", P, "existing"]).ok();

    let mut roles = admin.start(&["get", "roles", "-p", P, "--watch-only", "-o", "name"]);
    let mut tokens = admin.start(&[
        "get",
        "serviceaccounttokens",
        "-p",
        P,
        "--watch-only",
        "-o",
        "jsonpath={.metadata.name} {.metadata.annotations.kubernetes\\.io/service-account\\.name}{\"\\n\"}",
    ]);
    roles
        .stays_quiet(Duration::from_millis(1500))
        .expect("--watch-only prints nothing before a change");

    admin.run(&["create", "role", "-p", P, "developer"]).ok();
    assert_eq!(roles.next_line(), "role.rbac.kargo.akuity.io/developer");
    // A role is three objects: granting it to an account changes its binding only.
    admin.run(&["create", "sa", "-p", P, "ci"]).ok();
    admin
        .run(&[
            "grant",
            "-p",
            P,
            "--role",
            "developer",
            "--service-account",
            "ci",
        ])
        .ok();
    assert_eq!(roles.next_line(), "role.rbac.kargo.akuity.io/developer");

    admin
        .run(&[
            "create",
            "serviceaccounttoken",
            "-p",
            P,
            "--service-account",
            "ci",
            "ci-token",
        ])
        .ok();
    // Created, then filled by the server: a line per version of the object.
    assert_eq!(tokens.next_line(), "ci-token ci");
    while let Err(line) = tokens.stays_quiet(Duration::from_secs(2)) {
        assert_eq!(line, "ci-token ci");
    }
    admin
        .run(&["delete", "serviceaccounttoken", "-p", P, "ci-token"])
        .ok();
    assert_eq!(
        tokens.next_line(),
        "ci-token ci",
        "the deleted token, as it last was"
    );
}

#[test]
fn a_named_watch_follows_that_object_and_a_missing_name_is_an_error() {
    let server = Server::start();
    let admin = Kargo::logged_in(&server);
    admin.run(&["create", "project", P]).ok();
    admin.run(&["create", "sa", "-p", P, "one"]).ok();

    let missing = admin.start(&["get", "sa", "-p", P, "nosuch", "-w"]);
    let (code, stderr) = missing.finish();
    assert_eq!(
        (code, stderr.as_str()),
        (1, "Error: serviceaccounts \"nosuch\" not found\n")
    );

    let mut watch = admin.start(&["get", "sa", "-p", P, "one", "-w", "-o", "yaml"]);
    let first = watch.next_line();
    assert_eq!(first, "apiVersion: v1", "the object itself, not a List");
    admin.run(&["create", "sa", "-p", P, "other"]).ok();
    let mut rest = Vec::new();
    while let Err(line) = watch.stays_quiet(Duration::from_secs(2)) {
        rest.push(line);
    }
    assert!(
        !rest.iter().any(|l| l.contains("name: other")),
        "another account is not printed: {rest:?}"
    );
    server.kubectl(&["delete", "sa", "-n", P, "one"]).ok();
    // The deleted object again, as a second YAML document.
    assert_eq!(watch.next_line(), "---");
    assert_eq!(watch.next_line(), "apiVersion: v1");
}

//! `kargo apply -f` against a real server, as a user sees it: a manifest's project, Kargo
//! ServiceAccount and role are `created`, the role granted to the account (its token has the
//! rule's permission, checked with kubectl); applying again leaves them `unchanged`; changed
//! rules are `configured` and in effect with the very next request; `--dry-run=client` changes
//! nothing; a token Secret, an unknown kind and bad YAML are `Error:` lines naming the file and
//! document, after the objects that could be applied (issue 19).

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::cli_harness::{Kargo, token_from_banner};
use crate::harness::Server;

/// A project `p`, its Kargo ServiceAccount `ci`, and a role `reader` granted to `ci` that may
/// get and list Stages plus `extra` verbs.
fn manifest(extra: &str) -> String {
    format!(
        "apiVersion: kargo.akuity.io/v1alpha1
kind: Project
metadata:
  name: p
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: ci
  namespace: p
  labels:
    rbac.kargo.akuity.io/service-account: \"true\"
---
apiVersion: rbac.kargo.akuity.io/v1alpha1
kind: Role
metadata:
  name: reader
  namespace: p
  annotations:
    kargo.akuity.io/description: Reads stages
serviceAccounts:
- name: ci
rules:
- apiGroups: [kargo.akuity.io]
  resources: [stages]
  verbs: [get, list{extra}]
"
    )
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write manifest");
    path
}

fn lines(outcomes: [&str; 3], suffix: &str) -> String {
    let kinds = [
        "project.kargo.akuity.io/p",
        "serviceaccount/ci",
        "role.rbac.kargo.akuity.io/reader",
    ];
    kinds
        .iter()
        .zip(outcomes)
        .map(|(kind, outcome)| format!("{kind} {outcome}{suffix}\n"))
        .collect()
}

/// kubectl's `auth can-i VERB stages` with the token in `kubeconfig`.
fn can_i(server: &Server, kubeconfig: &Path, verb: &str) -> String {
    let run = server.kubectl_with(kubeconfig, &["auth", "can-i", verb, "stages"], None);
    assert!(
        run.stderr.is_empty() || run.stdout == "no\n",
        "{}",
        run.stderr
    );
    run.stdout
}

#[test]
fn a_manifest_is_created_then_unchanged_then_configured_and_the_role_is_in_effect() {
    let server = Server::start();
    let admin = Kargo::logged_in(&server);
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "kargo.yaml", &manifest(""));
    let file = file.to_str().unwrap();

    admin
        .run(&["apply", "-f", file, "--dry-run=client"])
        .prints(&lines(["created"; 3], " (dry run)"));
    admin
        .run(&["get", "project", "p"])
        .fails_with("projects.kargo.akuity.io \"p\" not found");

    admin
        .run(&["apply", "-f", file])
        .prints(&lines(["created"; 3], ""));
    assert_eq!(
        admin.run(&["get", "sa", "-p", "p", "-o", "name"]).ok(),
        "serviceaccount/ci\n"
    );
    let role: Value = serde_json::from_str(
        admin
            .run(&["get", "role", "-p", "p", "reader", "-o", "json"])
            .ok(),
    )
    .unwrap();
    assert_eq!(role["serviceAccounts"][0]["name"], "ci", "{role}");
    assert_eq!(
        role["metadata"]["annotations"]["kargo.akuity.io/description"],
        "Reads stages"
    );
    let token = token_from_banner(&admin.run(&[
        "create",
        "sat",
        "-p",
        "p",
        "--service-account",
        "ci",
        "ci-token",
    ]));
    let kubeconfig = server.token_kubeconfig("ci", &token, "p");
    assert_eq!(can_i(&server, &kubeconfig, "list"), "yes\n");
    assert_eq!(can_i(&server, &kubeconfig, "create"), "no\n");

    admin
        .run(&["apply", "-f", file])
        .prints(&lines(["unchanged"; 3], ""));
    // The same manifest as JSON-compatible YAML from standard input, the project from -p.
    admin
        .run_with_input(&["apply", "-p", "p", "-f", "-"], &manifest(""))
        .prints(&lines(["unchanged"; 3], ""));

    let changed = write(dir.path(), "kargo.yaml", &manifest(", create"));
    let changed = changed.to_str().unwrap();
    admin
        .run(&["apply", "-f", changed, "--dry-run=client"])
        .prints(&lines(
            ["unchanged", "unchanged", "configured"],
            " (dry run)",
        ));
    assert_eq!(can_i(&server, &kubeconfig, "create"), "no\n");
    admin
        .run(&["apply", "-f", changed])
        .prints(&lines(["unchanged", "unchanged", "configured"], ""));
    assert_eq!(can_i(&server, &kubeconfig, "create"), "yes\n");
    assert_eq!(can_i(&server, &kubeconfig, "delete"), "no\n");
    admin
        .run(&["apply", "-f", changed, "-o", "name"])
        .prints("project.kargo.akuity.io/p\nserviceaccount/ci\nrole.rbac.kargo.akuity.io/reader\n");

    let list: Value =
        serde_json::from_str(admin.run(&["apply", "-f", changed, "-o", "json"]).ok()).unwrap();
    let kinds: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["Project", "ServiceAccount", "Role"], "{list}");

    // A manifest without the account revokes the role from it.
    let alone = manifest(", create").replace("serviceAccounts:\n- name: ci\n", "");
    admin
        .run_with_input(&["apply", "-f", "-"], &alone)
        .prints(&lines(["unchanged", "unchanged", "configured"], ""));
    assert_eq!(can_i(&server, &kubeconfig, "list"), "no\n");
}

#[test]
fn bad_documents_are_named_after_the_objects_that_were_applied_and_exit_1() {
    let server = Server::start();
    let admin = Kargo::logged_in(&server);
    admin.run(&["create", "project", "p"]).ok();
    let dir = tempfile::tempdir().unwrap();
    let mixed = write(
        dir.path(),
        "a.yaml",
        "apiVersion: v1
kind: ServiceAccount
metadata:
  name: first
  labels: {rbac.kargo.akuity.io/service-account: \"true\"}
---
apiVersion: v1
kind: Secret
metadata:
  name: ci-token
  labels: {rbac.kargo.akuity.io/service-account-token: \"true\"}
data:
  token: c2VjcmV0LXRva2VuLXZhbHVl
---
apiVersion: kargo.akuity.io/v1alpha1
kind: Stage
metadata:
  name: dev
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: last
  labels: {rbac.kargo.akuity.io/service-account: \"true\"}
",
    );
    let broken = write(
        dir.path(),
        "b.json",
        "{\"apiVersion\": \"v1\",\n \"kind\": \"ServiceAccount\",\n \"metadata\": {\"name\": \"x\"\n",
    );
    let (mixed, broken) = (mixed.to_str().unwrap(), broken.to_str().unwrap());

    let out = admin.run(&["apply", "-p", "p", "-f", dir.path().to_str().unwrap()]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "serviceaccount/first created\nserviceaccount/last created\n"
    );
    let errors: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(errors.len(), 3, "{}", out.stderr);
    assert_eq!(
        errors[0],
        format!(
            "Error: {mixed}: document 2: a Secret cannot be applied: ServiceAccount tokens are created by `kargo create serviceaccounttoken` (a token must never be in a manifest)"
        )
    );
    assert_eq!(
        errors[1],
        format!(
            "Error: {mixed}: document 3: unknown kind \"Stage\" of apiVersion \"kargo.akuity.io/v1alpha1\": kargo apply takes a Project (kargo.akuity.io/v1alpha1), a ServiceAccount (v1) or a Role (rbac.kargo.akuity.io/v1alpha1)"
        )
    );
    assert!(
        errors[2].starts_with(&format!("Error: {broken}: document 1: invalid YAML: "))
            && errors[2].contains("line "),
        "{}",
        errors[2]
    );
    assert!(!out.stderr.contains("c2VjcmV0"), "{}", out.stderr);
    assert_eq!(
        admin.run(&["get", "sa", "-p", "p", "-o", "name"]).ok(),
        "serviceaccount/first\nserviceaccount/last\n"
    );

    // A ServiceAccount without the Kargo label, and one whose labels the API cannot change.
    admin
        .run_with_input(
            &["apply", "-p", "p", "-f", "-"],
            "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: plain\n",
        )
        .fails_with("STDIN: document 1: ServiceAccount \"plain\" is not a Kargo ServiceAccount: it needs the label rbac.kargo.akuity.io/service-account: \"true\"");
    admin
        .run_with_input(
            &["apply", "-p", "p", "-f", "-"],
            "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: first\n  labels: {rbac.kargo.akuity.io/service-account: \"true\", team: a}\n",
        )
        .fails_with("STDIN: document 1: serviceaccount/first exists and its labels or annotations differ (team), which the Kargo API cannot change (delete it and apply again)");
    admin
        .run(&["apply", "-f", "/nonexistent/kargo.yaml"])
        .fails_with("the path \"/nonexistent/kargo.yaml\" does not exist");
}

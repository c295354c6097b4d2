//! Issue 18, item 5: Kubernetes' `admin`, `edit` and `view` ClusterRoles exist with their
//! `aggregationRule`, a binding to them grants what it grants on a cluster, and a ClusterRole
//! labelled `rbac.authorization.k8s.io/aggregate-to-view` reaches `view` (and `edit`, `admin`)
//! at once. Real kubectl against a real server; `--as` asks for the bound account.

use std::time::{Duration, Instant};

use crate::harness::{Server, on_both_stores};

const BOT: &str = "system:serviceaccount:team:bot";

/// `kubectl auth can-i VERB RESOURCE -n team --as BOT`: `yes` or `no`.
fn can_bot(server: &Server, verb: &str, resource: &str) -> String {
    let run = server.kubectl(&["auth", "can-i", verb, resource, "-n", "team", "--as", BOT]);
    run.stdout.trim().to_owned()
}

/// Waits up to 10 s for the bot's answer to become `expected`.
fn until_bot(server: &Server, verb: &str, resource: &str, expected: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = can_bot(server, verb, resource);
        if answer == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "can bot {verb} {resource}? still {answer:?}, want {expected:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

on_both_stores!(
    bindings_to_view_and_edit_grant_what_kubernetes_grants_and_follow_aggregation,
    view_edit_and_aggregation
);

fn view_edit_and_aggregation(store: &[String]) {
    let server = Server::start_with(store);
    server.kubectl(&["create", "namespace", "team"]).ok();
    server
        .kubectl(&["create", "serviceaccount", "bot", "-n", "team"])
        .ok();

    let view = server.kubectl(&[
        "get",
        "clusterrole",
        "view",
        "-o",
        "jsonpath={.aggregationRule.clusterRoleSelectors[0].matchLabels}",
    ]);
    assert_eq!(
        view.ok(),
        r#"{"rbac.authorization.k8s.io/aggregate-to-view":"true"}"#
    );

    server
        .kubectl(&[
            "create",
            "rolebinding",
            "bot-view",
            "-n",
            "team",
            "--clusterrole=view",
            "--serviceaccount=team:bot",
        ])
        .ok();
    until_bot(&server, "list", "serviceaccounts", "yes");
    assert_eq!(
        can_bot(&server, "get", "secrets"),
        "no",
        "view reads no Secret"
    );
    assert_eq!(can_bot(&server, "create", "serviceaccounts"), "no");

    // A ClusterRole labelled for view reaches the bot through its binding to view.
    server
        .kubectl_stdin(
            &["apply", "-f", "-"],
            "apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: secret-reader
  labels:
    rbac.authorization.k8s.io/aggregate-to-view: \"true\"
rules:
- apiGroups: [\"\"]
  resources: [secrets]
  verbs: [get]
",
        )
        .ok();
    until_bot(&server, "get", "secrets", "yes");
    let edit_rules = server.kubectl(&["get", "clusterrole", "edit", "-o", "yaml"]);
    assert!(
        edit_rules.ok().contains("- secrets"),
        "edit aggregates view: {}",
        edit_rules.stdout
    );

    // Unlabelled, it leaves view again.
    server
        .kubectl(&[
            "label",
            "clusterrole",
            "secret-reader",
            "rbac.authorization.k8s.io/aggregate-to-view-",
        ])
        .ok();
    until_bot(&server, "get", "secrets", "no");

    // edit writes ServiceAccounts and Secrets in the namespace it is bound in.
    server
        .kubectl(&[
            "create",
            "rolebinding",
            "bot-edit",
            "-n",
            "team",
            "--clusterrole=edit",
            "--serviceaccount=team:bot",
        ])
        .ok();
    until_bot(&server, "create", "secrets", "yes");
    assert_eq!(can_bot(&server, "create", "serviceaccounts"), "yes");
    assert_eq!(
        can_bot(&server, "create", "roles"),
        "no",
        "only admin writes roles"
    );
}

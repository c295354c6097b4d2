//! Server-side apply (issue 18) with kubectl and the Python client: managed fields per manager,
//! conflicts with kube-apiserver's 409, `--force-conflicts`, fields dropped from a manifest
//! removed, `kubectl diff --server-side`, `--show-managed-fields`; on SQLite and etcd.

use serde_json::Value;

use crate::harness::{Run, Server};

/// `kubectl apply --server-side` of a manifest as `manager`, with extra flags.
fn apply(server: &Server, manager: &str, manifest: &str, extra: &[&str]) -> Run {
    let flag = format!("--field-manager={manager}");
    let mut args = vec!["apply", "--server-side", flag.as_str(), "-f", "-"];
    args.extend_from_slice(extra);
    server.kubectl_stdin(&args, manifest)
}

/// `kubectl diff --server-side` of a manifest as `manager`: `(exit code, changed lines)`, the
/// `+`/`-` lines of the diff without its file headers.
fn diff(server: &Server, manager: &str, manifest: &str) -> (i32, Vec<String>) {
    let flag = format!("--field-manager={manager}");
    let run = server.kubectl_stdin(
        &["diff", "--server-side", flag.as_str(), "-f", "-"],
        manifest,
    );
    let lines = run
        .stdout
        .lines()
        .filter(|l| {
            (l.starts_with('+') || l.starts_with('-'))
                && !l.starts_with("+++")
                && !l.starts_with("---")
        })
        .map(str::to_owned)
        .collect();
    assert!(
        run.code == 0 || run.code == 1,
        "kubectl diff failed: {}",
        run.stderr
    );
    (run.code, lines)
}

/// `kubectl get -o json` of an object (with `--show-managed-fields` when `managed`).
fn get(server: &Server, what: &[&str], managed: bool) -> Value {
    let mut args = vec!["get"];
    args.extend_from_slice(what);
    args.extend_from_slice(&["-o", "json"]);
    if managed {
        args.push("--show-managed-fields");
    }
    serde_json::from_str(server.kubectl(&args).ok()).expect("JSON")
}

/// The `fieldsV1` of `manager`'s entry with `operation`, or null.
fn fields_of(obj: &Value, manager: &str, operation: &str) -> Value {
    obj["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["manager"] == manager && e["operation"] == operation)
        .map(|e| e["fieldsV1"].clone())
        .unwrap_or(Value::Null)
}

const CM_ALICE: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: cm
  namespace: ssa
  labels:
    a: \"1\"
data:
  k1: v1
  k2: v2
";

fn two_managers_conflict_force_and_removal(server: &Server) {
    server.kubectl(&["create", "namespace", "ssa"]).ok();
    let out = apply(server, "alice", CM_ALICE, &[]);
    assert_eq!(out.ok(), "configmap/cm serverside-applied\n");

    // kubectl hides managed fields unless asked.
    let plain = get(server, &["configmap", "cm", "-n", "ssa"], false);
    assert!(plain["metadata"].get("managedFields").is_none(), "{plain}");
    let cm = get(server, &["configmap", "cm", "-n", "ssa"], true);
    let entries = cm["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields");
    assert_eq!(entries.len(), 1, "{cm}");
    let entry = &entries[0];
    assert_eq!(
        (
            &entry["manager"],
            &entry["operation"],
            &entry["apiVersion"],
            &entry["fieldsType"]
        ),
        (
            &"alice".into(),
            &"Apply".into(),
            &"v1".into(),
            &"FieldsV1".into()
        )
    );
    assert!(
        entry["time"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{entry}"
    );
    assert_eq!(
        entry["fieldsV1"],
        serde_json::json!({"f:data": {"f:k1": {}, "f:k2": {}}, "f:metadata": {"f:labels": {"f:a": {}}}})
    );

    // A second manager changing alice's label conflicts, as kube-apiserver says it.
    let bob = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n  namespace: ssa\n  labels:\n    a: \"2\"\n    b: bob\n";
    let err = apply(server, "bob", bob, &[]);
    let stderr = err.err();
    assert!(
        stderr.starts_with(
            "error: Apply failed with 1 conflict: conflict with \"alice\": .metadata.labels.a\n\
             Please review the fields above--they currently have other managers."
        ),
        "{stderr}"
    );
    // The same value is shared without conflict.
    let shared = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n  namespace: ssa\ndata:\n  k1: v1\n";
    apply(server, "carol", shared, &[]).ok();

    // --force-conflicts takes the label from alice.
    let out = apply(server, "bob", bob, &["--force-conflicts"]);
    assert_eq!(out.ok(), "configmap/cm serverside-applied\n");
    let cm = get(server, &["configmap", "cm", "-n", "ssa"], true);
    assert_eq!(
        cm["metadata"]["labels"],
        serde_json::json!({"a": "2", "b": "bob"})
    );
    assert_eq!(
        fields_of(&cm, "alice", "Apply"),
        serde_json::json!({"f:data": {"f:k1": {}, "f:k2": {}}})
    );
    assert_eq!(
        fields_of(&cm, "bob", "Apply"),
        serde_json::json!({"f:metadata": {"f:labels": {"f:a": {}, "f:b": {}}}})
    );

    // alice drops k2 and k1: k2 goes, k1 stays (carol applied the same value).
    let alice = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n  namespace: ssa\ndata:\n  k3: v3\n";
    apply(server, "alice", alice, &[]).ok();
    let cm = get(server, &["configmap", "cm", "-n", "ssa"], false);
    assert_eq!(cm["data"], serde_json::json!({"k1": "v1", "k3": "v3"}));

    // An update by another client is recorded as an Update under its fieldManager.
    server
        .kubectl(&[
            "label",
            "configmap",
            "cm",
            "-n",
            "ssa",
            "c=x",
            "--field-manager=labeler",
        ])
        .ok();
    let cm = get(server, &["configmap", "cm", "-n", "ssa"], true);
    assert_eq!(
        fields_of(&cm, "labeler", "Update"),
        serde_json::json!({"f:metadata": {"f:labels": {"f:c": {}}}})
    );
    let err = apply(
        server,
        "bob",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n  namespace: ssa\n  labels:\n    a: \"2\"\n    b: bob\n    c: bob\n",
        &[],
    );
    assert!(
        err.err().starts_with(
            "error: Apply failed with 1 conflict: conflict with \"labeler\" using v1: .metadata.labels.c\n"
        ),
        "{}",
        err.stderr
    );
}

#[test]
fn two_managers_conflict_force_and_removal_on_sqlite() {
    two_managers_conflict_force_and_removal(&Server::start());
}

#[test]
fn two_managers_conflict_force_and_removal_on_etcd() {
    let cluster = kargo_store::testing::EtcdCluster::start(1);
    two_managers_conflict_force_and_removal(&Server::start_with(&Server::etcd_args(&cluster)));
}

/// One kind's round trip: apply `first`, diff empty, diff `second` shows exactly
/// `expected_diff`, apply `second`, then `gone` (a JSON pointer into the object) is absent.
fn round_trip(
    server: &Server,
    what: &[&str],
    first: &str,
    second: &str,
    expected_diff: &[&str],
    gone: &str,
) {
    apply(server, "ssa", first, &[]).ok();
    assert!(
        get(server, what, false).pointer(gone).is_some(),
        "{gone} was applied"
    );
    assert_eq!(
        diff(server, "ssa", first),
        (0, Vec::new()),
        "{what:?}: nothing to apply"
    );
    let (code, lines) = diff(server, "ssa", second);
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    assert_eq!((code, lines.as_slice()), (1, expected_diff), "{what:?}");
    apply(server, "ssa", second, &[]).ok();
    assert_eq!(
        diff(server, "ssa", second),
        (0, Vec::new()),
        "{what:?}: applied"
    );
    let obj = get(server, what, false);
    assert!(
        obj.pointer(gone).is_none(),
        "{what:?}: {gone} removed: {obj}"
    );
}

#[test]
fn every_kind_family_round_trips_apply_diff_edit_apply() {
    let server = Server::start();
    server.kubectl(&["create", "namespace", "rt"]).ok();
    round_trip(
        &server,
        &["configmap", "c", "-n", "rt"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: rt\ndata:\n  a: one\n  b: two\n",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: rt\ndata:\n  a: uno\n",
        &["-  a: one", "-  b: two", "+  a: uno"],
        "/data/b",
    );
    round_trip(
        &server,
        &["secret", "s", "-n", "rt"],
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n  namespace: rt\n  labels:\n    keep: \"yes\"\n    drop: \"yes\"\ndata:\n  a: b25l\n",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n  namespace: rt\n  labels:\n    keep: \"no\"\ndata:\n  a: b25l\n",
        &[
            "-    drop: \"yes\"",
            "-    keep: \"yes\"",
            "+    keep: \"no\"",
        ],
        "/metadata/labels/drop",
    );
    round_trip(
        &server,
        &["serviceaccount", "sa", "-n", "rt"],
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: sa\n  namespace: rt\nsecrets:\n- name: one\n- name: two\n",
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: sa\n  namespace: rt\nsecrets:\n- name: one\n",
        &["-- name: two"],
        "/secrets/1",
    );
    round_trip(
        &server,
        &["role", "r", "-n", "rt"],
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: r\n  namespace: rt\n  annotations:\n    note: x\nrules:\n- apiGroups: [\"\"]\n  resources: [configmaps]\n  verbs: [get, list]\n",
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: r\n  namespace: rt\nrules:\n- apiGroups: [\"\"]\n  resources: [configmaps]\n  verbs: [get]\n",
        &["-  annotations:", "-    note: x", "-  - list"],
        "/metadata/annotations",
    );
    round_trip(
        &server,
        &["rolebinding", "rb", "-n", "rt"],
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: rb\n  namespace: rt\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: r\nsubjects:\n- kind: ServiceAccount\n  name: sa\n  namespace: rt\n- kind: ServiceAccount\n  name: other\n  namespace: rt\n",
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: rb\n  namespace: rt\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: r\nsubjects:\n- kind: ServiceAccount\n  name: sa\n  namespace: rt\n",
        &[
            "-- kind: ServiceAccount",
            "-  name: other",
            "-  namespace: rt",
        ],
        "/subjects/1",
    );
    round_trip(
        &server,
        &["projects.kargo.akuity.io", "ssa-demo"],
        "apiVersion: kargo.akuity.io/v1alpha1\nkind: Project\nmetadata:\n  name: ssa-demo\n  labels:\n    team: a\n    tier: b\n",
        "apiVersion: kargo.akuity.io/v1alpha1\nkind: Project\nmetadata:\n  name: ssa-demo\n  labels:\n    team: c\n",
        &["-    team: a", "-    tier: b", "+    team: c"],
        "/metadata/labels/tier",
    );
}

#[test]
fn apply_needs_a_field_manager_and_force_only_goes_with_apply() {
    let server = Server::start();
    let token = server.admin_token();
    server.kubectl(&["create", "namespace", "fm"]).ok();
    let body = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n";
    let (code, text) = server.curl(
        "PATCH",
        "/api/v1/namespaces/fm/configmaps/c",
        Some(&token),
        &["Content-Type: application/apply-patch+yaml"],
        Some(body),
    );
    assert_eq!(code, 422, "{text}");
    let status: Value = serde_json::from_str(&text).expect("Status");
    assert_eq!(
        status["message"],
        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"
    );
    // Dry run creates nothing; the apply then creates the object (201 as kube-apiserver).
    let (code, text) = server.curl(
        "PATCH",
        "/api/v1/namespaces/fm/configmaps/c?fieldManager=m&dryRun=All",
        Some(&token),
        &["Content-Type: application/apply-patch+yaml"],
        Some(body),
    );
    assert_eq!(code, 201, "{text}");
    server.kubectl(&["get", "configmap", "c", "-n", "fm"]).err();
    let (code, text) = server.curl(
        "PATCH",
        "/api/v1/namespaces/fm/configmaps/c?fieldManager=m",
        Some(&token),
        &["Content-Type: application/apply-patch+yaml"],
        Some(body),
    );
    assert_eq!(code, 201, "{text}");
    let (code, text) = server.curl(
        "PATCH",
        "/api/v1/namespaces/fm/configmaps/c?force=true",
        Some(&token),
        &["Content-Type: application/merge-patch+json"],
        Some(b"{}"),
    );
    assert_eq!(code, 422, "{text}");
    assert!(
        text.contains("force: Forbidden: may not be specified for non-apply patch"),
        "{text}"
    );
    // A create without fieldManager is recorded under the User-Agent's first part.
    let (code, text) = server.curl(
        "POST",
        "/api/v1/namespaces/fm/configmaps",
        Some(&token),
        &[
            "Content-Type: application/json",
            "User-Agent: my-tool/1.2 (linux)",
        ],
        Some(br#"{"metadata":{"name":"ua"},"data":{"x":"y"}}"#),
    );
    assert_eq!(code, 201, "{text}");
    let created: Value = serde_json::from_str(&text).expect("object");
    assert_eq!(
        created["metadata"]["managedFields"][0]["manager"],
        "my-tool"
    );
    assert_eq!(
        created["metadata"]["managedFields"][0]["operation"],
        "Update"
    );
    assert_eq!(
        created["metadata"]["managedFields"][0]["fieldsV1"],
        serde_json::json!({"f:data": {".": {}, "f:x": {}}})
    );
    // A PUT with managedFields [] clears them and records only the PUT.
    let mut put = created.clone();
    put["metadata"]["managedFields"] = serde_json::json!([]);
    put["data"]["z"] = "w".into();
    let (code, text) = server.curl(
        "PUT",
        "/api/v1/namespaces/fm/configmaps/ua?fieldManager=putter",
        Some(&token),
        &["Content-Type: application/json"],
        Some(put.to_string().as_bytes()),
    );
    assert_eq!(code, 200, "{text}");
    let updated: Value = serde_json::from_str(&text).expect("object");
    let managers: Vec<&str> = updated["metadata"]["managedFields"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["manager"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(managers, ["putter"], "{updated}");
}

#[test]
fn the_python_dynamic_client_applies_with_conflicts_and_force() {
    let server = Server::start();
    let token = server.admin_token();
    let out = server.python("server_side_apply.py", &token, &[]);
    assert_eq!(out.ok(), "ok\n", "{}", out.stderr);
}

#[test]
fn kubectl_moves_a_client_side_applied_object_to_server_side_apply_without_conflicts() {
    let server = Server::start();
    server.kubectl(&["create", "namespace", "csa"]).ok();
    let manifest = |value: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: csa\ndata:\n  k: {value}\n"
        )
    };
    server
        .kubectl_stdin(&["apply", "-f", "-"], &manifest("one"))
        .ok();
    let cm = get(&server, &["configmap", "c", "-n", "csa"], true);
    assert!(
        !fields_of(&cm, "kubectl-client-side-apply", "Update").is_null(),
        "{cm}"
    );
    // kubectl upgrades the client-side apply's entry to its own Apply entry, then applies.
    let out = server.kubectl_stdin(&["apply", "--server-side", "-f", "-"], &manifest("two"));
    assert_eq!(out.ok(), "configmap/c serverside-applied\n");
    let cm = get(&server, &["configmap", "c", "-n", "csa"], true);
    assert_eq!(cm["data"]["k"], "two");
    assert!(!fields_of(&cm, "kubectl", "Apply").is_null(), "{cm}");
}

#[test]
fn kargo_api_writes_are_recorded_as_the_kargo_manager() {
    let server = Server::start();
    let token = server.admin_token();
    let (code, text) = server.curl(
        "POST",
        "/v1beta1/projects",
        Some(&token),
        &["Content-Type: application/json"],
        Some(br#"{"apiVersion":"kargo.akuity.io/v1alpha1","kind":"Project","metadata":{"name":"kp","labels":{"team":"a"}}}"#),
    );
    assert_eq!(code, 201, "{text}");
    // The kargo CLI, like kubectl, leaves managedFields out unless asked.
    let kargo = crate::cli_harness::Kargo::logged_in(&server);
    let plain = kargo.run(&["get", "projects", "kp", "-o", "yaml"]);
    assert!(!plain.ok().contains("managedFields"), "{}", plain.stdout);
    let shown = kargo.run(&[
        "get",
        "projects",
        "kp",
        "-o",
        "yaml",
        "--show-managed-fields",
    ]);
    assert!(shown.ok().contains("manager: kargo"), "{}", shown.stdout);
    let project = get(&server, &["projects.kargo.akuity.io", "kp"], true);
    assert_eq!(
        fields_of(&project, "kargo", "Update"),
        serde_json::json!({"f:metadata": {"f:labels": {".": {}, "f:team": {}}}}),
        "{project}"
    );
    // kubectl then conflicts with the Kargo API's field, naming it as kube-apiserver would.
    let err = apply(
        &server,
        "ops",
        "apiVersion: kargo.akuity.io/v1alpha1\nkind: Project\nmetadata:\n  name: kp\n  labels:\n    team: b\n",
        &[],
    );
    assert!(
        err.err().starts_with(
            "error: Apply failed with 1 conflict: conflict with \"kargo\" using kargo.akuity.io/v1alpha1: .metadata.labels.team\n"
        ),
        "{}",
        err.stderr
    );
}

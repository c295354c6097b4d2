//! kubectl against the server: every resource kind, every verb, and kube-apiserver's errors.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::{Server, eventually};

const MANIFEST: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: demo
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: builder
  namespace: demo
  labels:
    team: ci
---
apiVersion: v1
kind: Secret
metadata:
  name: creds
  namespace: demo
stringData:
  password: hunter2
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: demo
data:
  mode: fast
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: reader
  namespace: demo
rules:
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: reader
  namespace: demo
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: reader
subjects:
- kind: ServiceAccount
  name: builder
  namespace: demo
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: demo-viewer
rules:
- apiGroups: ["kargo.akuity.io"]
  resources: ["stages"]
  verbs: ["get"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: demo-viewer
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: demo-viewer
subjects:
- kind: Group
  apiGroup: rbac.authorization.k8s.io
  name: viewers
---
apiVersion: kargo.akuity.io/v1alpha1
kind: Project
metadata:
  name: demo-project
---
apiVersion: kargo.akuity.io/v1alpha1
kind: Stage
metadata:
  name: dev
  namespace: demo
spec:
  requestedFreight:
  - origin: {kind: Warehouse, name: images}
    sources: {direct: true}
---
apiVersion: kargo.akuity.io/v1alpha1
kind: Warehouse
metadata:
  name: images
  namespace: demo
spec:
  subscriptions:
  - image: {repoURL: nginx}
---
apiVersion: kargo.akuity.io/v1alpha1
kind: Freight
metadata:
  name: abc123
  namespace: demo
origin: {kind: Warehouse, name: images}
---
apiVersion: kargo.akuity.io/v1alpha1
kind: Promotion
metadata:
  name: dev-abc123
  namespace: demo
spec:
  stage: dev
  freight: abc123
---
apiVersion: kargo.akuity.io/v1alpha1
kind: ProjectConfig
metadata:
  name: demo
  namespace: demo
spec:
  promotionPolicies:
  - stage: dev
    autoPromotionEnabled: true
"#;

const CREATED: &[&str] = &[
    "namespace/demo created",
    "serviceaccount/builder created",
    "secret/creds created",
    "configmap/settings created",
    "role.rbac.authorization.k8s.io/reader created",
    "rolebinding.rbac.authorization.k8s.io/reader created",
    "clusterrole.rbac.authorization.k8s.io/demo-viewer created",
    "clusterrolebinding.rbac.authorization.k8s.io/demo-viewer created",
    "project.kargo.akuity.io/demo-project created",
    "stage.kargo.akuity.io/dev created",
    "warehouse.kargo.akuity.io/images created",
    "freight.kargo.akuity.io/abc123 created",
    "promotion.kargo.akuity.io/dev-abc123 created",
    "projectconfig.kargo.akuity.io/demo created",
];

#[test]
fn apply_of_a_multi_document_manifest_creates_then_leaves_everything_unchanged() {
    let server = Server::start();
    let out = server.kubectl_stdin(&["apply", "-f", "-"], MANIFEST);
    assert_eq!(out.ok().lines().collect::<Vec<_>>(), CREATED);
    let again = server.kubectl_stdin(&["apply", "-f", "-"], MANIFEST);
    // A Secret applied with `stringData` always reads as configured (as against kube-apiserver:
    // the write-only field is never in the live object, so kubectl patches it in again).
    let unchanged: Vec<String> = CREATED
        .iter()
        .map(|l| match *l {
            "secret/creds created" => "secret/creds configured".to_owned(),
            other => other.replace(" created", " unchanged"),
        })
        .collect();
    assert_eq!(again.ok().lines().collect::<Vec<_>>(), unchanged);

    // Change two objects: apply reports them configured and the change is stored.
    let changed = MANIFEST
        .replace("team: ci", "team: platform")
        .replace("mode: fast", "mode: slow");
    let out = server.kubectl_stdin(&["apply", "-f", "-"], &changed);
    let lines: Vec<&str> = out.ok().lines().collect();
    assert!(
        lines.contains(&"serviceaccount/builder configured"),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"configmap/settings configured"),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"stage.kargo.akuity.io/dev unchanged"),
        "{lines:?}"
    );
    let team = server.kubectl(&[
        "get",
        "sa",
        "builder",
        "-n",
        "demo",
        "-o",
        "jsonpath={.metadata.labels.team}",
    ]);
    assert_eq!(team.ok(), "platform");
    let mode = server.kubectl(&[
        "get",
        "cm",
        "settings",
        "-n",
        "demo",
        "-o",
        "jsonpath={.data.mode}",
    ]);
    assert_eq!(mode.ok(), "slow");

    // Schemaless Kargo kinds keep what they were given.
    let stage = server.kubectl(&["get", "stage", "dev", "-n", "demo", "-o", "json"]);
    let stage: serde_json::Value = serde_json::from_str(stage.ok()).unwrap();
    assert_eq!(
        stage["spec"]["requestedFreight"][0]["origin"]["name"],
        "images"
    );
    assert_eq!(stage["metadata"]["generation"], 1);
    let freight = server.kubectl(&[
        "get",
        "freight",
        "abc123",
        "-n",
        "demo",
        "-o",
        "jsonpath={.origin.kind}",
    ]);
    assert_eq!(freight.ok(), "Warehouse");
    // stringData became data.
    let password = server.kubectl(&[
        "get",
        "secret",
        "creds",
        "-n",
        "demo",
        "-o",
        "jsonpath={.data.password}",
    ]);
    assert_eq!(password.ok(), "aHVudGVyMg==");
}

#[test]
fn service_accounts_are_created_listed_described_and_deleted() {
    let server = Server::start();
    assert_eq!(
        server.kubectl(&["create", "namespace", "p"]).ok(),
        "namespace/p created\n"
    );
    // `kubectl create serviceaccount` sends protobuf.
    assert_eq!(
        server
            .kubectl(&["create", "serviceaccount", "sa", "-n", "p"])
            .ok(),
        "serviceaccount/sa created\n"
    );
    // Every namespace has its `default` account, as in Kubernetes.
    let list = server.kubectl(&["get", "sa", "-n", "p", "-o", "name"]);
    assert_eq!(list.ok(), "serviceaccount/default\nserviceaccount/sa\n");
    let table = server.kubectl(&["get", "serviceaccounts", "sa", "-n", "p"]);
    let header = table.ok().lines().next().unwrap_or_default().to_owned();
    assert!(header.starts_with("NAME"), "{header}");
    assert!(
        table
            .stdout
            .lines()
            .nth(1)
            .unwrap_or_default()
            .starts_with("sa "),
        "{}",
        table.stdout
    );
    let yaml = server.kubectl(&["get", "sa", "sa", "-n", "p", "-o", "yaml"]);
    assert!(
        yaml.ok().contains("kind: ServiceAccount"),
        "{}",
        yaml.stdout
    );
    assert!(yaml.stdout.contains("uid: "), "{}", yaml.stdout);
    assert_eq!(
        server.kubectl(&["delete", "sa", "sa", "-n", "p"]).ok(),
        "serviceaccount \"sa\" deleted\n"
    );
    let gone = server.kubectl(&["get", "sa", "sa", "-n", "p"]);
    assert_eq!(
        gone.err(),
        "Error from server (NotFound): serviceaccounts \"sa\" not found\n"
    );
}

#[test]
fn every_kind_is_created_by_kubectl_create_with_protobuf_bodies() {
    let server = Server::start();
    server.kubectl(&["create", "namespace", "p"]).ok();
    for (args, expected) in [
        (
            vec![
                "create",
                "secret",
                "generic",
                "s",
                "--from-literal=a=b",
                "-n",
                "p",
            ],
            "secret/s created",
        ),
        (
            vec!["create", "configmap", "c", "--from-literal=a=b", "-n", "p"],
            "configmap/c created",
        ),
        (
            vec![
                "create",
                "role",
                "r",
                "--verb=get",
                "--resource=secrets",
                "-n",
                "p",
            ],
            "role.rbac.authorization.k8s.io/r created",
        ),
        (
            vec![
                "create",
                "rolebinding",
                "rb",
                "--role=r",
                "--serviceaccount=p:x",
                "-n",
                "p",
            ],
            "rolebinding.rbac.authorization.k8s.io/rb created",
        ),
        (
            vec![
                "create",
                "clusterrole",
                "cr",
                "--verb=get",
                "--resource=namespaces",
            ],
            "clusterrole.rbac.authorization.k8s.io/cr created",
        ),
        (
            vec![
                "create",
                "clusterrolebinding",
                "crb",
                "--clusterrole=cr",
                "--group=g",
            ],
            "clusterrolebinding.rbac.authorization.k8s.io/crb created",
        ),
    ] {
        assert_eq!(server.kubectl(&args).ok().trim_end(), expected, "{args:?}");
    }
    let secret = server.kubectl(&[
        "get",
        "secret",
        "s",
        "-n",
        "p",
        "-o",
        "jsonpath={.data.a}{' '}{.type}",
    ]);
    assert_eq!(secret.ok(), "Yg== Opaque");
    let rb = server.kubectl(&[
        "get",
        "rolebinding",
        "rb",
        "-n",
        "p",
        "-o",
        "jsonpath={.subjects[0].kind}/{.subjects[0].name}",
    ]);
    assert_eq!(rb.ok(), "ServiceAccount/x");
}

#[test]
fn errors_are_kube_apiservers() {
    let server = Server::start();
    server.kubectl(&["create", "namespace", "p"]).ok();
    server.kubectl(&["create", "sa", "sa", "-n", "p"]).ok();
    // A missing object.
    assert_eq!(
        server.kubectl(&["get", "secret", "nope", "-n", "p"]).err(),
        "Error from server (NotFound): secrets \"nope\" not found\n"
    );
    // A duplicate.
    assert_eq!(
        server.kubectl(&["create", "sa", "sa", "-n", "p"]).err(),
        "error: failed to create serviceaccount: serviceaccounts \"sa\" already exists\n"
    );
    // An invalid name.
    let bad = server.kubectl(&["create", "sa", "Bad_Name", "-n", "p"]);
    assert_eq!(
        bad.err(),
        "error: failed to create serviceaccount: ServiceAccount \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')\n"
    );
    let invalid_manifest =
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: Bad_Name\n  namespace: p\n";
    let out = server.kubectl_stdin(&["create", "-f", "-"], invalid_manifest);
    assert!(
        out.err().starts_with("The ServiceAccount \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"),
        "{}",
        out.stderr
    );
    // A stale update.
    let stale = server.kubectl(&["get", "sa", "sa", "-n", "p", "-o", "json"]);
    let stale_json = stale.ok().to_owned();
    server
        .kubectl(&["label", "sa", "sa", "-n", "p", "x=y"])
        .ok();
    let out = server.kubectl_stdin(&["replace", "-f", "-"], &stale_json);
    assert_eq!(
        out.err(),
        "Error from server (Conflict): error when replacing \"STDIN\": Operation cannot be fulfilled on serviceaccounts \"sa\": the object has been modified; please apply your changes to the latest version and try again\n"
    );
    // An unknown field with validation on.
    let unknown = "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: extra\n  namespace: p\nbogus: true\n";
    let out = server.kubectl_stdin(&["create", "-f", "-"], unknown);
    assert!(
        out.err()
            .contains("strict decoding error: unknown field \"bogus\""),
        "{}",
        out.stderr
    );
    // A namespace that does not exist.
    assert_eq!(
        server
            .kubectl(&["create", "sa", "x", "-n", "nowhere"])
            .err(),
        "error: failed to create serviceaccount: namespaces \"nowhere\" not found\n"
    );
}

#[test]
fn patches_of_every_type_apply() {
    let server = Server::start();
    server.kubectl(&["create", "namespace", "p"]).ok();
    server
        .kubectl(&["create", "configmap", "c", "-n", "p", "--from-literal=a=1"])
        .ok();
    server
        .kubectl(&[
            "patch",
            "cm",
            "c",
            "-n",
            "p",
            "--type=merge",
            "-p",
            r#"{"data":{"b":"2"}}"#,
        ])
        .ok();
    server
        .kubectl(&[
            "patch",
            "cm",
            "c",
            "-n",
            "p",
            "--type=json",
            "-p",
            r#"[{"op":"replace","path":"/data/a","value":"10"}]"#,
        ])
        .ok();
    server
        .kubectl(&[
            "patch",
            "cm",
            "c",
            "-n",
            "p",
            "-p",
            r#"{"metadata":{"labels":{"l":"v"}}}"#,
        ])
        .ok();
    let got = server.kubectl(&[
        "get",
        "cm",
        "c",
        "-n",
        "p",
        "-o",
        "jsonpath={.data.a},{.data.b},{.metadata.labels.l}",
    ]);
    assert_eq!(got.ok(), "10,2,v");
    server.kubectl(&["create", "sa", "sa", "-n", "p"]).ok();
    // Strategic merge: ServiceAccount secrets merge by name.
    server
        .kubectl(&[
            "patch",
            "sa",
            "sa",
            "-n",
            "p",
            "-p",
            r#"{"secrets":[{"name":"one"}]}"#,
        ])
        .ok();
    server
        .kubectl(&[
            "patch",
            "sa",
            "sa",
            "-n",
            "p",
            "-p",
            r#"{"secrets":[{"name":"two"}]}"#,
        ])
        .ok();
    let secrets = server.kubectl(&[
        "get",
        "sa",
        "sa",
        "-n",
        "p",
        "-o",
        "jsonpath={.secrets[*].name}",
    ]);
    assert_eq!(secrets.ok(), "two one");
    // A failed JSON patch test is a 422.
    let failed = server.kubectl(&[
        "patch",
        "cm",
        "c",
        "-n",
        "p",
        "--type=json",
        "-p",
        r#"[{"op":"test","path":"/data/a","value":"nope"}]"#,
    ]);
    assert!(
        failed.err().contains("Error from server (Invalid)")
            || failed.stderr.contains("rejected our request"),
        "{}",
        failed.stderr
    );
    // Strategic merge on a Kargo kind is refused, as for custom resources.
    server.kubectl_stdin(&["apply", "-f", "-"], "apiVersion: kargo.akuity.io/v1alpha1\nkind: Stage\nmetadata:\n  name: s\n  namespace: p\nspec: {shard: one}\n").ok();
    server
        .kubectl(&[
            "patch",
            "stage",
            "s",
            "-n",
            "p",
            "--type=merge",
            "-p",
            r#"{"spec":{"vars":[{"name":"b","value":"2"}]}}"#,
        ])
        .ok();
    let spec = server.kubectl(&[
        "get",
        "stage",
        "s",
        "-n",
        "p",
        "-o",
        "jsonpath={.spec.shard},{.spec.vars[0].value},{.metadata.generation}",
    ]);
    assert_eq!(spec.ok(), "one,2,2");
    let smp = server.kubectl(&[
        "patch",
        "stage",
        "s",
        "-n",
        "p",
        "--type=strategic",
        "-p",
        r#"{"spec":{"shard":"three"}}"#,
    ]);
    assert!(
        smp.err().contains("UnsupportedMediaType") || smp.stderr.contains("unknown format"),
        "{}",
        smp.stderr
    );
}

#[test]
fn selectors_and_paging_select_and_page() {
    let server = Server::start();
    server.kubectl(&["create", "namespace", "p"]).ok();
    for i in 0..7 {
        let name = format!("cm-{i}");
        server
            .kubectl(&["create", "configmap", &name, "-n", "p"])
            .ok();
        if i % 2 == 0 {
            server
                .kubectl(&["label", "cm", &name, "-n", "p", "parity=even"])
                .ok();
        }
    }
    let even = server.kubectl(&["get", "cm", "-n", "p", "-l", "parity=even", "-o", "name"]);
    assert_eq!(
        even.ok(),
        "configmap/cm-0\nconfigmap/cm-2\nconfigmap/cm-4\nconfigmap/cm-6\n"
    );
    let odd = server.kubectl(&["get", "cm", "-n", "p", "-l", "parity!=even", "-o", "name"]);
    assert_eq!(odd.ok(), "configmap/cm-1\nconfigmap/cm-3\nconfigmap/cm-5\n");
    let named = server.kubectl(&[
        "get",
        "cm",
        "-n",
        "p",
        "--field-selector",
        "metadata.name=cm-3",
        "-o",
        "name",
    ]);
    assert_eq!(named.ok(), "configmap/cm-3\n");
    // kubectl pages with limit/continue; every object comes back once, in order.
    let paged = server.kubectl(&["get", "cm", "-n", "p", "--chunk-size=2", "-o", "name"]);
    assert_eq!(paged.ok().lines().count(), 7);
    let mut sorted: Vec<&str> = paged.stdout.lines().collect();
    sorted.sort();
    assert_eq!(sorted, paged.stdout.lines().collect::<Vec<_>>());
    let bad = server.kubectl(&["get", "cm", "-n", "p", "-l", "a b"]);
    assert!(
        bad.err().contains("unable to parse requirement"),
        "{}",
        bad.stderr
    );
}

#[test]
fn watch_streams_changes_and_delete_waits_for_them() {
    let server = Server::start();
    server.kubectl(&["create", "namespace", "p"]).ok();
    assert!(eventually(Duration::from_secs(10), || server
        .kubectl(&["get", "sa", "default", "-n", "p"])
        .code
        == 0));
    let mut watch = Command::new("kubectl")
        .args(["get", "sa", "-n", "p", "--watch", "--output-watch-events"])
        .env("KUBECONFIG", server.admin_kubeconfig())
        .env("HOME", server.scratch().join("home"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kubectl watch");
    let stdout = watch.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // `EVENT NAME AGE` columns; the age varies.
            let line = line
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ");
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Every namespace gets its `default` account; the watch's initial list shows it.
    let header = rx.recv_timeout(Duration::from_secs(20)).expect("header");
    assert_eq!(header, "EVENT NAME");
    let first = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("first event");
    assert_eq!(first, "ADDED default");
    server.kubectl(&["create", "sa", "w", "-n", "p"]).ok();
    server.kubectl(&["label", "sa", "w", "-n", "p", "a=b"]).ok();
    server.kubectl(&["delete", "sa", "w", "-n", "p"]).ok();
    let mut events = Vec::new();
    while events.len() < 3 {
        events.push(rx.recv_timeout(Duration::from_secs(20)).expect("event"));
    }
    let _ = watch.kill();
    let _ = watch.wait();
    assert_eq!(events, ["ADDED w", "MODIFIED w", "DELETED w"]);
    // `kubectl wait --for=delete` watches one object by name.
    server.kubectl(&["create", "sa", "doomed", "-n", "p"]).ok();
    let waiter = Command::new("kubectl")
        .args([
            "wait",
            "--for=delete",
            "sa/doomed",
            "-n",
            "p",
            "--timeout=30s",
        ])
        .env("KUBECONFIG", server.admin_kubeconfig())
        .env("HOME", server.scratch().join("home"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl wait");
    std::thread::sleep(Duration::from_millis(1500));
    server
        .kubectl(&["delete", "sa", "doomed", "-n", "p", "--wait=false"])
        .ok();
    let out = waiter.wait_with_output().expect("kubectl wait ends");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "serviceaccount/doomed condition met\n"
    );
}

#[test]
fn deleting_a_namespace_deletes_what_is_in_it() {
    let server = Server::start();
    server.kubectl_stdin(&["apply", "-f", "-"], MANIFEST).ok();
    let out = server.kubectl(&["delete", "namespace", "demo"]);
    assert_eq!(out.ok(), "namespace \"demo\" deleted\n");
    let gone = server.kubectl(&["get", "namespace", "demo"]);
    assert_eq!(
        gone.err(),
        "Error from server (NotFound): namespaces \"demo\" not found\n"
    );
    for kind in [
        "sa",
        "secrets",
        "cm",
        "roles",
        "rolebindings",
        "stages",
        "warehouses",
        "freights",
        "promotions",
        "projectconfigs",
    ] {
        let left = server.kubectl(&["get", kind, "-n", "demo", "-o", "name"]);
        assert_eq!(left.ok(), "", "{kind} left in a deleted namespace");
    }
    // Cluster-scoped objects stay.
    server.kubectl(&["get", "clusterrole", "demo-viewer"]).ok();
}

fn uid(server: &Server, args: &[&str]) -> String {
    let mut a = args.to_vec();
    a.extend(["-o", "jsonpath={.metadata.uid}"]);
    server.kubectl(&a).ok().to_owned()
}

fn dependent(owner_uid: &str, name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: p\n  ownerReferences:\n  - apiVersion: v1\n    kind: ConfigMap\n    name: owner\n    uid: {owner_uid}\n    blockOwnerDeletion: true\n"
    )
}

#[test]
fn owner_references_are_honoured_in_background_foreground_and_orphan_deletion() {
    let server = Server::start();
    server.kubectl(&["create", "namespace", "p"]).ok();
    for (cascade, dependent_survives) in [
        ("background", false),
        ("foreground", false),
        ("orphan", true),
    ] {
        server
            .kubectl(&["create", "configmap", "owner", "-n", "p"])
            .ok();
        let owner = uid(&server, &["get", "cm", "owner", "-n", "p"]);
        server
            .kubectl_stdin(&["create", "-f", "-"], &dependent(&owner, "dep"))
            .ok();
        server
            .kubectl(&[
                "delete",
                "cm",
                "owner",
                "-n",
                "p",
                &format!("--cascade={cascade}"),
            ])
            .ok();
        assert!(
            eventually(Duration::from_secs(20), || server
                .kubectl(&["get", "cm", "owner", "-n", "p"])
                .code
                != 0),
            "owner not deleted with --cascade={cascade}"
        );
        let survived = eventually(Duration::from_secs(20), || {
            (server.kubectl(&["get", "secret", "dep", "-n", "p"]).code == 0) == dependent_survives
        });
        assert!(survived, "dependent with --cascade={cascade}");
        if dependent_survives {
            let refs = server.kubectl(&[
                "get",
                "secret",
                "dep",
                "-n",
                "p",
                "-o",
                "jsonpath={.metadata.ownerReferences}",
            ]);
            assert_eq!(refs.ok(), "", "orphaned dependent keeps no owner reference");
            server.kubectl(&["delete", "secret", "dep", "-n", "p"]).ok();
        }
    }
    // A dependent created for an owner that does not exist is collected.
    server
        .kubectl_stdin(
            &["create", "-f", "-"],
            &dependent("00000000-0000-0000-0000-000000000000", "stray"),
        )
        .ok();
    assert!(eventually(Duration::from_secs(20), || server
        .kubectl(&["get", "secret", "stray", "-n", "p"])
        .code
        != 0));
}

#[test]
fn generate_name_and_dry_run_work() {
    let server = Server::start();
    server.kubectl(&["create", "namespace", "p"]).ok();
    let out = server.kubectl_stdin(
        &["create", "-f", "-", "-o", "name"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  generateName: gen-\n  namespace: p\n",
    );
    let name = out.ok().trim().to_owned();
    assert!(
        name.starts_with("configmap/gen-") && name.len() == "configmap/gen-".len() + 5,
        "{name}"
    );
    let dry = server.kubectl(&["create", "configmap", "dry", "-n", "p", "--dry-run=server"]);
    assert_eq!(dry.ok(), "configmap/dry created (server dry run)\n");
    assert!(server.kubectl(&["get", "cm", "dry", "-n", "p"]).code != 0);
}

#[test]
fn delete_collection_deletes_what_the_selector_selects() {
    let server = Server::start();
    server.kubectl(&["create", "namespace", "p"]).ok();
    for name in ["a", "b", "c"] {
        server
            .kubectl(&["create", "configmap", name, "-n", "p"])
            .ok();
    }
    server
        .kubectl(&["label", "cm", "a", "b", "-n", "p", "doomed=yes"])
        .ok();
    let admin = server.admin_token();
    let (code, body) = server.curl(
        "DELETE",
        "/api/v1/namespaces/p/configmaps?labelSelector=doomed%3Dyes",
        Some(&admin),
        &[],
        None,
    );
    assert_eq!(code, 200, "{body}");
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(list["kind"], "ConfigMapList");
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    let left = server.kubectl(&["get", "cm", "-n", "p", "-o", "name"]);
    assert_eq!(left.ok(), "configmap/c\n");
}

#[test]
fn kubectl_get_prints_kube_apiservers_columns() {
    let server = Server::start();
    server.kubectl_stdin(&["apply", "-f", "-"], MANIFEST).ok();
    let header = |args: &[&str]| {
        let out = server.kubectl(args);
        out.ok()
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(header(&["get", "sa", "-n", "demo"]), "NAME SECRETS AGE");
    assert_eq!(
        header(&["get", "secrets", "-n", "demo"]),
        "NAME TYPE DATA AGE"
    );
    assert_eq!(header(&["get", "cm", "-n", "demo"]), "NAME DATA AGE");
    assert_eq!(header(&["get", "ns"]), "NAME STATUS AGE");
    assert_eq!(header(&["get", "roles", "-n", "demo"]), "NAME CREATED AT");
    assert_eq!(
        header(&["get", "rolebindings", "-n", "demo", "-o", "wide"]),
        "NAME ROLE AGE USERS GROUPS SERVICEACCOUNTS"
    );
    assert_eq!(header(&["get", "stages", "-n", "demo"]), "NAME AGE");
    let row = server.kubectl(&[
        "get",
        "rolebinding",
        "reader",
        "-n",
        "demo",
        "-o",
        "wide",
        "--no-headers",
    ]);
    let cells: Vec<&str> = row.ok().split_whitespace().collect();
    assert_eq!(
        (cells[0], cells[1], cells[3]),
        ("reader", "Role/reader", "demo/builder")
    );
    let secret = server.kubectl(&["get", "secret", "creds", "-n", "demo", "--no-headers"]);
    let cells: Vec<&str> = secret.ok().split_whitespace().collect();
    assert_eq!(&cells[..3], ["creds", "Opaque", "1"]);
}

/// A Project and a Warehouse in it, in one manifest: the Warehouse is created right after the
/// Project, in the namespace the Project's create made before it answered (issue 18, item 7).
/// Five projects in a row, so that a namespace made moments later by the controller would fail
/// at least one of them.
#[test]
fn a_warehouse_created_right_after_its_project_is_accepted() {
    let server = Server::start();
    for i in 0..5 {
        let manifest = format!(
            "apiVersion: kargo.akuity.io/v1alpha1\nkind: Project\nmetadata:\n  name: fast-{i}\n---\n\
             apiVersion: kargo.akuity.io/v1alpha1\nkind: Warehouse\nmetadata:\n  name: images\n  namespace: fast-{i}\n\
             spec:\n  subscriptions:\n  - image: {{repoURL: nginx}}\n"
        );
        let out = server.kubectl_stdin(&["create", "-f", "-"], &manifest);
        assert_eq!(
            out.ok().lines().collect::<Vec<_>>(),
            [
                format!("project.kargo.akuity.io/fast-{i} created"),
                "warehouse.kargo.akuity.io/images created".to_owned(),
            ]
        );
        // The project is ready: its default roles are there too.
        let roles = server.kubectl(&["get", "roles", "-n", &format!("fast-{i}"), "-o", "name"]);
        assert!(
            roles
                .ok()
                .lines()
                .any(|l| l == "role.rbac.authorization.k8s.io/kargo-admin"),
            "{}",
            roles.stdout
        );
    }
}

/// Watch bookmarks and a watch from a revision the server has not reached, as kube-apiserver
/// answers them (issue 18, item 8): with `allowWatchBookmarks` a `BOOKMARK` 2 s before the
/// timeout at a revision the client may resume from; without it, none; a future revision is a
/// 504 `Too large resource version` after a short wait, not a silent hang.
#[test]
fn watches_get_bookmarks_before_their_timeout_and_a_future_revision_is_refused() {
    let server = Server::start();
    let token = server.admin_token();
    let (code, list) = server.curl("GET", "/api/v1/namespaces", Some(&token), &[], None);
    assert_eq!(code, 200, "{list}");
    let list: serde_json::Value = serde_json::from_str(&list).expect("a list");
    let listed: i64 = list["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|rv| rv.parse().ok())
        .expect("a resourceVersion");

    let watch = |query: &str| {
        let started = std::time::Instant::now();
        let (code, body) = server.curl(
            "GET",
            &format!("/api/v1/namespaces?watch=1&resourceVersion={listed}&timeoutSeconds=4{query}"),
            Some(&token),
            &[],
            None,
        );
        assert_eq!(code, 200, "{body}");
        let events: Vec<serde_json::Value> = body
            .lines()
            .map(|l| serde_json::from_str(l).expect("one event per line"))
            .collect();
        (events, started.elapsed())
    };
    let (events, took) = watch("&allowWatchBookmarks=true");
    let bookmarks: Vec<&serde_json::Value> =
        events.iter().filter(|e| e["type"] == "BOOKMARK").collect();
    assert_eq!(bookmarks.len(), 1, "{events:?}");
    let object = &bookmarks[0]["object"];
    assert_eq!(object["kind"], "Namespace");
    assert_eq!(object["apiVersion"], "v1");
    let at: i64 = object["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|rv| rv.parse().ok())
        .expect("the bookmark's resourceVersion");
    assert!(at >= listed, "{at} < {listed}");
    assert!(took >= std::time::Duration::from_secs(3), "{took:?}");
    let (events, _) = watch("");
    assert!(events.iter().all(|e| e["type"] != "BOOKMARK"), "{events:?}");

    let future = listed + 1000;
    let started = std::time::Instant::now();
    let (code, body) = server.curl(
        "GET",
        &format!("/api/v1/namespaces?watch=1&resourceVersion={future}"),
        Some(&token),
        &[],
        None,
    );
    assert_eq!(code, 504, "{body}");
    let status: serde_json::Value = serde_json::from_str(&body).expect("a Status");
    assert_eq!(status["reason"], "Timeout");
    assert!(
        status["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with(&format!(
                "Timeout: Too large resource version: {future}, current: "
            )),
        "{body}"
    );
    assert_eq!(
        status["details"]["causes"][0]["reason"],
        "ResourceVersionTooLarge"
    );
    let waited = started.elapsed();
    assert!(
        waited >= std::time::Duration::from_secs(2) && waited < std::time::Duration::from_secs(10),
        "{waited:?}"
    );
}

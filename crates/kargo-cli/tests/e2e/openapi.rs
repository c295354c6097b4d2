//! The OpenAPI documents (`/openapi/v3`, `/openapi/v2`) with the clients that read them:
//! `kubectl explain` of built-in and Kargo kinds (on SQLite and on etcd), kubectl's validation
//! left to the server (unknown fields refused under `--validate=strict`, warned of by default,
//! nothing said of valid manifests), a review created from a file, `kubectl apply` merging a
//! ServiceAccount's `secrets` by name (strategic merge from the published patch strategies),
//! and the Python client reading `/openapi/v2`.

use crate::harness::Server;

const PROJECT: &str = "\
apiVersion: kargo.akuity.io/v1alpha1
kind: Project
metadata:
  name: shop
";

fn explain_checks(server: &Server) {
    let sa = server.kubectl(&["explain", "sa.secrets"]);
    let text = sa.ok();
    assert!(text.contains("KIND:       ServiceAccount"), "{text}");
    assert!(
        text.contains("FIELD: secrets <[]ObjectReference>"),
        "{text}"
    );
    assert!(
        text.contains("Secrets is a list of the secrets in the same namespace"),
        "{text}"
    );
    assert!(text.contains("resourceVersion\t<string>"), "{text}");

    let rules = server.kubectl(&["explain", "role.rules", "--recursive"]);
    let text = rules.ok();
    assert!(
        text.contains("GROUP:      rbac.authorization.k8s.io"),
        "{text}"
    );
    assert!(text.contains("FIELD: rules <[]PolicyRule>"), "{text}");
    for field in [
        "apiGroups\t<[]string>",
        "resourceNames\t<[]string>",
        "verbs\t<[]string> -required-",
    ] {
        assert!(text.contains(field), "{field}: {text}");
    }

    let stage = server.kubectl(&["explain", "stages.spec.requestedFreight"]);
    let text = stage.ok();
    assert!(text.contains("GROUP:      kargo.akuity.io"), "{text}");
    assert!(text.contains("KIND:       Stage"), "{text}");
    assert!(text.contains("origin\t<Object> -required-"), "{text}");

    let config = server.kubectl(&["explain", "projectconfigs.spec"]);
    let text = config.ok();
    assert!(text.contains("promotionPolicies\t<[]Object>"), "{text}");

    let project = server.kubectl(&["explain", "projects"]);
    let text = project.ok();
    assert!(text.contains("KIND:       Project"), "{text}");
    assert!(text.contains("metadata\t<ObjectMeta>"), "{text}");
    assert!(text.contains("status\t<Object>"), "{text}");

    let sar = server.kubectl(&[
        "explain",
        "subjectaccessreviews.spec.resourceAttributes.verb",
    ]);
    assert!(
        sar.ok().contains("Verb is a kubernetes resource API verb"),
        "{}",
        sar.ok()
    );

    // Every served kind, by its resource name.
    for (resource, kind) in [
        ("namespaces", "Namespace"),
        ("serviceaccounts", "ServiceAccount"),
        ("secrets", "Secret"),
        ("configmaps", "ConfigMap"),
        ("events", "Event"),
        ("endpoints", "Endpoints"),
        ("roles", "Role"),
        ("rolebindings", "RoleBinding"),
        ("clusterroles", "ClusterRole"),
        ("clusterrolebindings", "ClusterRoleBinding"),
        ("tokenreviews", "TokenReview"),
        ("selfsubjectreviews", "SelfSubjectReview"),
        ("subjectaccessreviews", "SubjectAccessReview"),
        ("selfsubjectaccessreviews", "SelfSubjectAccessReview"),
        ("localsubjectaccessreviews", "LocalSubjectAccessReview"),
        ("selfsubjectrulesreviews", "SelfSubjectRulesReview"),
        ("projects", "Project"),
        ("projectconfigs", "ProjectConfig"),
        ("stages", "Stage"),
        ("warehouses", "Warehouse"),
        ("freights", "Freight"),
        ("promotions", "Promotion"),
    ] {
        let out = server.kubectl(&["explain", resource]);
        let text = out.ok();
        assert!(
            text.contains(&format!("KIND:       {kind}\n")),
            "{resource}: {text}"
        );
        assert!(text.contains("DESCRIPTION:"), "{resource}: {text}");
    }

    // The Swagger 2.0 document (protobuf), as older kubectl explained from it.
    let v2 = server.kubectl(&["explain", "sa.secrets", "--output", "plaintext-openapiv2"]);
    assert!(
        v2.ok()
            .contains("Secrets is a list of the secrets in the same namespace"),
        "{}",
        v2.ok()
    );

    let missing = server.kubectl(&["explain", "sa.nothing"]);
    assert!(
        missing.err().contains(r#"field "nothing" does not exist"#),
        "{}",
        missing.err()
    );
}

#[test]
fn kubectl_explains_built_in_and_kargo_kinds() {
    let server = Server::start();
    explain_checks(&server);
}

#[test]
fn kubectl_explains_on_etcd_too() {
    let cluster = kargo_store::testing::EtcdCluster::start(1);
    let server = Server::start_with(&Server::etcd_args(&cluster));
    explain_checks(&server);
}

#[test]
fn kubectl_leaves_validation_to_the_server_with_the_published_schemas() {
    let server = Server::start();
    server.kubectl_stdin(&["apply", "-f", "-"], PROJECT).ok();
    server.kubectl(&["create", "namespace", "demo"]).ok();

    // Valid manifests: not a word of warning, by default or strict.
    let stage = "\
apiVersion: kargo.akuity.io/v1alpha1
kind: Stage
metadata:
  name: dev
  namespace: shop
spec:
  requestedFreight:
  - origin: {kind: Warehouse, name: images}
    sources: {direct: true}
";
    let created = server.kubectl_stdin(&["apply", "-f", "-"], stage);
    assert_eq!(created.ok(), "stage.kargo.akuity.io/dev created\n");
    assert_eq!(created.stderr, "", "a valid manifest draws no warning");
    let unchanged = server.kubectl_stdin(&["apply", "--validate=strict", "-f", "-"], stage);
    assert_eq!(unchanged.ok(), "stage.kargo.akuity.io/dev unchanged\n");
    assert_eq!(unchanged.stderr, "");

    // An unknown field in a Kargo kind: refused under strict validation (kubectl's default), on
    // create and on apply of an existing object, and warned of (and dropped) under
    // `--validate=warn`.
    let bad = stage.replace("spec:\n", "spec:\n  foo: bar\n");
    let refused = server.kubectl_stdin(&["apply", "--validate=strict", "-f", "-"], &bad);
    assert!(
        refused
            .err()
            .contains(r#"strict decoding error: unknown field "spec.foo""#),
        "{}",
        refused.err()
    );
    let other = bad.replace("name: dev", "name: test");
    let refused = server.kubectl_stdin(&["create", "-f", "-"], &other);
    assert_eq!(
        refused.err(),
        "Error from server (BadRequest): error when creating \"STDIN\": Stage in version \"v1alpha1\" cannot be handled as a Stage: strict decoding error: unknown field \"spec.foo\"\n"
    );
    let warned = server.kubectl_stdin(&["create", "--validate=warn", "-f", "-"], &other);
    assert_eq!(warned.ok(), "stage.kargo.akuity.io/test created\n");
    assert_eq!(
        warned.stderr, "Warning: unknown field \"spec.foo\"\n",
        "warn validation warns"
    );
    let stored = server.kubectl(&[
        "get",
        "stage",
        "test",
        "-n",
        "shop",
        "-o",
        "jsonpath={.spec}",
    ]);
    assert!(
        stored.ok().contains(r#""foo":"bar""#),
        "kept: {}",
        stored.ok()
    );

    // Built-in kinds too.
    let sa = "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: ci\n  namespace: demo\nbogus: 1\n";
    let refused = server.kubectl_stdin(&["apply", "--validate=strict", "-f", "-"], sa);
    assert!(
        refused
            .err()
            .contains(r#"strict decoding error: unknown field "bogus""#),
        "{}",
        refused.err()
    );
}

#[test]
fn kubectl_creates_a_subject_access_review_from_a_file() {
    let server = Server::start();
    let review = "\
apiVersion: authorization.k8s.io/v1
kind: SubjectAccessReview
spec:
  user: alice
  resourceAttributes:
    namespace: demo
    verb: get
    resource: serviceaccounts
";
    let path = server.scratch().join("sar.yaml");
    std::fs::write(&path, review).unwrap();
    let out = server.kubectl(&[
        "create",
        "-f",
        path.to_str().unwrap(),
        "-o",
        "jsonpath={.status.allowed}",
    ]);
    assert_eq!(out.ok(), "false");
    assert_eq!(out.stderr, "", "no warning under the default validation");
}

#[test]
fn kubectl_apply_merges_service_account_secrets_by_name() {
    let server = Server::start();
    server.kubectl(&["create", "namespace", "demo"]).ok();
    let with = |secrets: &str| {
        format!(
            "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: ci\n  namespace: demo\nsecrets:\n{secrets}"
        )
    };
    server
        .kubectl_stdin(&["apply", "-f", "-"], &with("- name: a\n- name: b\n"))
        .ok();
    // Someone else adds a secret; the manifest drops `b`: apply removes `b` only.
    server
        .kubectl(&[
            "patch",
            "sa",
            "ci",
            "-n",
            "demo",
            "--type=strategic",
            "-p",
            r#"{"secrets":[{"name":"c"}]}"#,
        ])
        .ok();
    let out = server.kubectl_stdin(&["apply", "-f", "-"], &with("- name: a\n"));
    assert_eq!(out.ok(), "serviceaccount/ci configured\n", "{}", out.stderr);
    let names = server.kubectl(&[
        "get",
        "sa",
        "ci",
        "-n",
        "demo",
        "-o",
        "jsonpath={.secrets[*].name}",
    ]);
    let mut names: Vec<&str> = names.ok().split(' ').collect();
    names.sort_unstable();
    assert_eq!(names, ["a", "c"], "b removed, c (not in the manifest) kept");
}

#[test]
fn python_client_reads_the_v2_document() {
    let server = Server::start();
    let token = server.admin_token();
    let out = server.python("openapi.py", &token, &[]);
    let text = out.ok();
    let mut lines = text.lines();
    let first = lines.next().unwrap();
    assert!(first.starts_with("swagger 2.0, "), "{text}");
    let count: usize = first
        .trim_start_matches("swagger 2.0, ")
        .trim_end_matches(" definitions")
        .parse()
        .unwrap();
    assert!(count > 50, "{text}");
    let rest: Vec<&str> = lines.collect();
    assert!(
        rest[0].starts_with("io.k8s.api.core.v1.ServiceAccount: Secrets is a list of the secrets"),
        "{text}"
    );
    assert!(
        rest[1].starts_with("io.k8s.api.rbac.v1.Role: Rules holds all the PolicyRules"),
        "{text}"
    );
    assert!(rest[2].starts_with("io.k8s.api.authorization.v1.SubjectAccessReview: Spec holds information about the request being evaluated"), "{text}");
    assert!(
        rest[3].starts_with("io.akuity.kargo.v1alpha1.Stage: Spec describes sources of Freight"),
        "{text}"
    );
}

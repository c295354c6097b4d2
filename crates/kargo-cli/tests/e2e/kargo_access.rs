//! What a Kargo token can do: with kubectl and the Python `kubernetes` client it has exactly the
//! permissions of the roles granted to its account, and loses them with the very next request
//! when the role is revoked or the token deleted. The Kargo API itself authorizes every
//! operation as the caller and prevents privilege escalation. Objects applied declaratively
//! show up as not managed and cannot be deleted through the Kargo API.

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use crate::harness::{Server, eventually};
use crate::kargo_client::{Expect, Kargo, decode, names};

const STAGE: &str = r#"
apiVersion: kargo.akuity.io/v1alpha1
kind: Stage
metadata:
  name: dev
  namespace: p
spec:
  shard: a
"#;

fn kubectl(server: &Server, kubeconfig: &Path, args: &[&str]) -> crate::harness::Run {
    server.kubectl_with(kubeconfig, args, None)
}

#[test]
fn a_token_has_exactly_the_granted_permissions_with_kubectl_and_python_until_revoked_or_deleted() {
    let server = Server::start();
    let admin = Kargo::admin(&server);
    admin.project("p");
    server.kubectl_stdin(&["apply", "-f", "-"], STAGE).ok();
    admin.service_account("p", "ci");
    admin.role(
        "p",
        json!({"metadata": {"name": "reader"}, "rules": [{"verbs": ["get", "list", "watch"], "resources": ["stages", "promotions"]}]}),
    );
    admin.grant(
        "p",
        json!({"role": "reader", "serviceAccounts": {"serviceAccounts": [{"name": "ci"}]}}),
    );
    let token = admin.token("p", "ci", "ci-token");
    let kubeconfig = server.token_kubeconfig("ci", &token, "p");

    assert_eq!(
        kubectl(&server, &kubeconfig, &["get", "stages", "-o", "name"]).ok(),
        "stage.kargo.akuity.io/dev\n"
    );
    for (args, answer) in [
        (&["auth", "can-i", "list", "stages"][..], "yes\n"),
        (&["auth", "can-i", "get", "promotions"], "yes\n"),
        (&["auth", "can-i", "create", "stages"], "no\n"),
        (&["auth", "can-i", "promote", "stages"], "no\n"),
        (&["auth", "can-i", "list", "secrets"], "no\n"),
        (
            &["auth", "can-i", "list", "stages", "-n", "default"],
            "no\n",
        ),
    ] {
        let run = kubectl(&server, &kubeconfig, args);
        assert_eq!(run.stdout, answer, "{args:?}: {}", run.stderr);
    }
    assert_eq!(
        kubectl(&server, &kubeconfig, &["get", "secrets"]).err(),
        "Error from server (Forbidden): secrets is forbidden: User \"system:serviceaccount:p:ci\" cannot list resource \"secrets\" in API group \"\" in the namespace \"p\"\n"
    );
    assert_eq!(
        server
            .python("kargo_token.py", &token, &["p", "granted"])
            .ok(),
        "ok\n"
    );

    // Revoking the role from the account: forbidden from the next request on.
    admin.check(
        "POST",
        "/v1beta1/projects/p/roles/revocations",
        Some(json!({"role": "reader", "serviceAccounts": {"serviceAccounts": [{"name": "ci"}]}})),
        Expect::Ok(200),
    );
    let forbidden = "Error from server (Forbidden): stages.kargo.akuity.io is forbidden: User \"system:serviceaccount:p:ci\" cannot list resource \"stages\" in API group \"kargo.akuity.io\" in the namespace \"p\"\n";
    assert_eq!(
        kubectl(&server, &kubeconfig, &["get", "stages"]).err(),
        forbidden
    );
    assert_eq!(
        server
            .python("kargo_token.py", &token, &["p", "revoked"])
            .ok(),
        "ok\n"
    );

    // Granted again, then the permission revoked from the role: the same.
    admin.grant(
        "p",
        json!({"role": "reader", "serviceAccounts": {"serviceAccounts": [{"name": "ci"}]}}),
    );
    assert_eq!(
        server
            .python("kargo_token.py", &token, &["p", "granted"])
            .ok(),
        "ok\n"
    );
    admin.check(
        "POST",
        "/v1beta1/projects/p/roles/revocations",
        Some(json!({"role": "reader", "resourceDetails": {"resourceType": "stages", "verbs": ["list"]}})),
        Expect::Ok(200),
    );
    assert_eq!(
        kubectl(&server, &kubeconfig, &["get", "stages"]).err(),
        forbidden
    );
    assert_eq!(
        kubectl(&server, &kubeconfig, &["get", "stage", "dev", "-o", "name"]).ok(),
        "stage.kargo.akuity.io/dev\n"
    );

    // Deleting the token: unauthenticated from the next request on.
    admin.check(
        "DELETE",
        "/v1beta1/projects/p/service-account-tokens/ci-token",
        None,
        Expect::Ok(204),
    );
    assert_eq!(
        kubectl(&server, &kubeconfig, &["get", "stage", "dev"]).err(),
        "error: You must be logged in to the server (Unauthorized)\n"
    );
    assert_eq!(
        server
            .python("kargo_token.py", &token, &["p", "deleted"])
            .ok(),
        "ok\n"
    );
}

#[test]
fn the_kargo_api_authorizes_every_operation_as_the_caller_and_prevents_escalation() {
    let server = Server::start();
    let admin = Kargo::admin(&server);
    admin.project("p");
    admin.project("other");
    for sa in ["viewer", "boss", "binder", "target"] {
        admin.service_account("p", sa);
    }
    let grant = |role: &str, sa: &str| {
        admin.grant(
            "p",
            json!({"role": role, "serviceAccounts": {"serviceAccounts": [{"name": sa}]}}),
        );
    };
    grant("kargo-viewer", "viewer");
    grant("kargo-admin", "boss");
    admin.role(
        "p",
        json!({"metadata": {"name": "role-manager"}, "rules": [{"verbs": ["*"], "resources": ["serviceaccounts", "roles", "rolebindings"]}]}),
    );
    grant("role-manager", "binder");
    let viewer = Kargo::with_token(&server, &admin.token("p", "viewer", "viewer-token"));
    let boss = Kargo::with_token(&server, &admin.token("p", "boss", "boss-token"));
    let binder = Kargo::with_token(&server, &admin.token("p", "binder", "binder-token"));

    // A viewer reads, and is refused everything else with the verb it lacks.
    viewer.check("GET", "/v1beta1/projects/p/roles", None, Expect::Ok(200));
    viewer.check(
        "GET",
        "/v1beta1/projects/p/roles/kargo-admin",
        None,
        Expect::Ok(200),
    );
    viewer.check(
        "GET",
        "/v1beta1/projects/p/service-accounts",
        None,
        Expect::Ok(200),
    );
    let cases: Vec<(&str, &str, Option<serde_json::Value>, &str)> = vec![
        (
            "GET",
            "/v1beta1/projects",
            None,
            "projects.kargo.akuity.io is forbidden: list is not permitted",
        ),
        (
            "GET",
            "/v1beta1/projects/p",
            None,
            "projects.kargo.akuity.io \"p\" is forbidden: get is not permitted",
        ),
        (
            "DELETE",
            "/v1beta1/projects/p",
            None,
            "projects.kargo.akuity.io \"p\" is forbidden: delete is not permitted",
        ),
        (
            "POST",
            "/v1beta1/projects",
            Some(json!({"metadata": {"name": "mine"}})),
            "projects.kargo.akuity.io \"mine\" is forbidden: create is not permitted",
        ),
        (
            "GET",
            "/v1beta1/projects/other/roles",
            None,
            "serviceaccounts is forbidden: list is not permitted",
        ),
        (
            "GET",
            "/v1beta1/projects/p/service-account-tokens",
            None,
            "secrets is forbidden: list is not permitted",
        ),
        (
            "GET",
            "/v1beta1/projects/p/service-account-tokens/viewer-token",
            None,
            "secrets \"viewer-token\" is forbidden: get is not permitted",
        ),
        (
            "DELETE",
            "/v1beta1/projects/p/service-account-tokens/viewer-token",
            None,
            "secrets \"viewer-token\" is forbidden: get is not permitted",
        ),
        (
            "POST",
            "/v1beta1/projects/p/service-accounts",
            Some(json!({"metadata": {"name": "x"}})),
            "serviceaccounts \"x\" is forbidden: create is not permitted",
        ),
        (
            "DELETE",
            "/v1beta1/projects/p/service-accounts/target",
            None,
            "serviceaccounts \"target\" is forbidden: delete is not permitted",
        ),
        (
            "POST",
            "/v1beta1/projects/p/service-accounts/viewer/tokens",
            Some(json!({"name": "more"})),
            "secrets \"more\" is forbidden: create is not permitted",
        ),
        (
            "POST",
            "/v1beta1/projects/p/roles",
            Some(json!({"metadata": {"name": "x"}})),
            "serviceaccounts \"x\" is forbidden: create is not permitted",
        ),
        (
            "DELETE",
            "/v1beta1/projects/p/roles/kargo-promoter",
            None,
            "roles.rbac.authorization.k8s.io \"kargo-promoter\" is forbidden: delete is not permitted",
        ),
        (
            "PUT",
            "/v1beta1/projects/p/roles/kargo-promoter",
            Some(json!({})),
            "serviceaccounts \"kargo-promoter\" is forbidden: update is not permitted",
        ),
        (
            "POST",
            "/v1beta1/projects/p/roles/grants",
            Some(
                json!({"role": "kargo-admin", "serviceAccounts": {"serviceAccounts": [{"name": "viewer"}]}}),
            ),
            "rolebindings.rbac.authorization.k8s.io \"kargo-admin\" is forbidden: update is not permitted",
        ),
        (
            "POST",
            "/v1beta1/projects/p/roles/grants",
            Some(
                json!({"role": "kargo-viewer", "userClaims": {"claims": [{"name": "sub", "values": ["me"]}]}}),
            ),
            "serviceaccounts \"kargo-viewer\" is forbidden: update is not permitted",
        ),
        (
            "POST",
            "/v1beta1/projects/p/roles/grants",
            Some(
                json!({"role": "kargo-viewer", "resourceDetails": {"resourceType": "secrets", "verbs": ["get"]}}),
            ),
            "roles.rbac.authorization.k8s.io \"kargo-viewer\" is forbidden: update is not permitted",
        ),
        (
            "GET",
            "/v1beta1/system/service-accounts",
            None,
            "serviceaccounts is forbidden: list is not permitted",
        ),
        (
            "GET",
            "/v1beta1/system/roles",
            None,
            "serviceaccounts is forbidden: list is not permitted",
        ),
    ];
    for (method, path, body, message) in cases {
        viewer.check(method, path, body, Expect::Err(403, message));
    }
    // Nothing was granted by the refused requests.
    let admin_role = admin.get("/v1beta1/projects/p/roles/kargo-admin").body;
    assert_eq!(
        admin_role["serviceAccounts"],
        json!([{"name": "boss", "namespace": "p"}])
    );

    // A project admin manages accounts, tokens and roles within what it holds itself.
    boss.service_account("p", "made-by-boss");
    let minted = boss.token("p", "made-by-boss", "boss-made");
    assert_eq!(minted.split('.').count(), 3);
    boss.role(
        "p",
        json!({"metadata": {"name": "deployer"}, "rules": [{"verbs": ["get", "promote"], "resources": ["stages"]}]}),
    );
    boss.grant(
        "p",
        json!({"role": "deployer", "serviceAccounts": {"serviceAccounts": [{"name": "made-by-boss"}]}}),
    );
    let escalation = boss.post(
        "/v1beta1/projects/p/roles",
        json!({"metadata": {"name": "sneaky"}, "rules": [{"verbs": ["create"], "resources": ["events"]}]}),
    );
    assert_eq!(escalation.code, 403, "{}", escalation.body);
    assert!(
        escalation.error().starts_with(
            "roles.rbac.authorization.k8s.io \"sneaky\" is forbidden: user \"system:serviceaccount:p:boss\" (groups=[\"system:serviceaccounts\" \"system:serviceaccounts:p\" \"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:"
        ),
        "{}",
        escalation.error()
    );
    // Nothing of the refused role was written.
    assert!(
        admin
            .kube("/api/v1/namespaces/p/serviceaccounts/sneaky")
            .is_none()
    );
    let escalation = boss.post(
        "/v1beta1/projects/p/roles/grants",
        json!({"role": "deployer", "resourceDetails": {"resourceType": "analysisruns", "verbs": ["create"]}}),
    );
    assert_eq!(escalation.code, 403, "{}", escalation.body);
    assert_eq!(
        admin.get("/v1beta1/projects/p/roles/deployer").body["rules"],
        json!([{"apiGroups": ["kargo.akuity.io"], "resources": ["stages"], "verbs": ["get", "promote"]}])
    );
    boss.check(
        "GET",
        "/v1beta1/projects/other/service-accounts",
        None,
        Expect::Err(403, "serviceaccounts is forbidden: list is not permitted"),
    );

    // May write bindings, but not bind a role whose permissions it lacks.
    let bind = binder.post(
        "/v1beta1/projects/p/roles/grants",
        json!({"role": "kargo-viewer", "serviceAccounts": {"serviceAccounts": [{"name": "target"}]}}),
    );
    assert_eq!(bind.code, 403, "{}", bind.body);
    assert!(
        bind.error()
            .starts_with("rolebindings.rbac.authorization.k8s.io \"kargo-viewer\" is forbidden: "),
        "{}",
        bind.error()
    );
    binder.grant(
        "p",
        json!({"role": "role-manager", "serviceAccounts": {"serviceAccounts": [{"name": "target"}]}}),
    );
}

const DECLARED: &str = r#"
apiVersion: kargo.akuity.io/v1alpha1
kind: Project
metadata:
  name: gitops
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: deployer
  namespace: gitops
  labels:
    rbac.kargo.akuity.io/service-account: "true"
---
apiVersion: v1
kind: Secret
metadata:
  name: deployer-token
  namespace: gitops
  labels:
    rbac.kargo.akuity.io/service-account-token: "true"
  annotations:
    kubernetes.io/service-account.name: deployer
type: kubernetes.io/service-account-token
"#;

#[test]
fn declaratively_applied_objects_are_not_managed_and_cannot_be_deleted_through_kargo() {
    let server = Server::start();
    let admin = Kargo::admin(&server);
    // The Project first, so that its namespace exists for the rest.
    let (project, rest) = DECLARED.split_once("---").expect("documents");
    server.kubectl_stdin(&["apply", "-f", "-"], project).ok();
    assert!(eventually(Duration::from_secs(10), || {
        let roles = admin.get("/v1beta1/projects/gitops/roles");
        roles.code == 200 && names(&roles.body).len() == 4
    }));
    assert_eq!(
        names(&admin.get("/v1beta1/projects/gitops/roles").body),
        ["default", "kargo-admin", "kargo-promoter", "kargo-viewer"]
    );
    let ns = admin.kube("/api/v1/namespaces/gitops").expect("namespace");
    assert_eq!(ns["metadata"]["labels"]["kargo.akuity.io/project"], "true");
    assert_eq!(ns["metadata"]["ownerReferences"][0]["kind"], "Project");
    server.kubectl_stdin(&["apply", "-f", "-"], rest).ok();

    let sa = admin.check(
        "GET",
        "/v1beta1/projects/gitops/service-accounts/deployer",
        None,
        Expect::Ok(200),
    );
    assert_eq!(
        sa["metadata"]["annotations"].get("rbac.kargo.akuity.io/managed"),
        None,
        "{sa}"
    );
    assert_eq!(
        names(&admin.get("/v1beta1/projects/gitops/service-accounts").body),
        ["deployer"]
    );
    assert!(eventually(Duration::from_secs(10), || {
        let t = admin.get("/v1beta1/projects/gitops/service-account-tokens/deployer-token");
        t.body["data"]["token"] == "KioqIFJFREFDVEVEICoqKg=="
    }));
    let token =
        admin.get("/v1beta1/projects/gitops/service-account-tokens?serviceAccount=deployer");
    assert_eq!(names(&token.body), ["deployer-token"]);
    assert_eq!(
        token.body["items"][0]["metadata"]["annotations"].get("rbac.kargo.akuity.io/managed"),
        None
    );
    admin.check(
        "DELETE",
        "/v1beta1/projects/gitops/service-accounts/deployer",
        None,
        Expect::Err(
            400,
            "Kubernetes ServiceAccount \"deployer\" in namespace \"gitops\" is not annotated as Kargo-managed",
        ),
    );
    admin.check(
        "DELETE",
        "/v1beta1/projects/gitops/service-account-tokens/deployer-token",
        None,
        Expect::Err(
            400,
            "Kubernetes Secret \"deployer-token\" in namespace \"gitops\" is not annotated as Kargo-managed",
        ),
    );
    admin.check(
        "POST",
        "/v1beta1/projects/gitops/roles/grants",
        Some(json!({"role": "kargo-viewer", "serviceAccounts": {"serviceAccounts": [{"name": "deployer"}]}})),
        Expect::Err(
            400,
            "ServiceAccount \"deployer\" in namespace \"gitops\" is not annotated as Kargo-managed",
        ),
    );
    // The declared token works (the token controller filled it) and has no grants.
    let jwt = server
        .kubectl(&[
            "get",
            "secret",
            "deployer-token",
            "-n",
            "gitops",
            "-o",
            "jsonpath={.data.token}",
        ])
        .ok()
        .to_owned();
    let deployer = Kargo::with_token(&server, &decode(&json!(jwt)));
    deployer.check(
        "GET",
        "/v1beta1/projects/gitops/roles",
        None,
        Expect::Err(403, "serviceaccounts is forbidden: list is not permitted"),
    );
    // Deleting the Project with kubectl deletes its namespace and everything in it.
    server.kubectl(&["delete", "project", "gitops"]).ok();
    assert!(eventually(Duration::from_secs(15), || admin
        .kube("/api/v1/namespaces/gitops")
        .is_none()));
    assert_eq!(
        deployer.get("/v1beta1/projects/gitops/roles").body,
        json!({"error": "invalid token"})
    );
}

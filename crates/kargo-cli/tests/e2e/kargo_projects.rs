//! Projects through the Kargo REST API: a Project, its labeled namespace and the default roles
//! (§3.5); deleting one removes everything in it.

use std::time::Duration;

use serde_json::json;

use crate::harness::{Server, eventually};
use crate::kargo_client::{Expect, Kargo, names};

#[test]
fn projects_are_created_with_namespace_and_default_roles_listed_read_and_deleted() {
    let server = Server::start();
    let admin = Kargo::admin(&server);
    let created = admin.project("p");
    assert_eq!(created["apiVersion"], "kargo.akuity.io/v1alpha1");
    assert_eq!(created["kind"], "Project");
    assert_eq!(created["metadata"]["name"], "p");
    assert_eq!(created["status"], json!({"phase": "Ready"}));
    let ns = admin.kube("/api/v1/namespaces/p").expect("namespace");
    assert_eq!(ns["metadata"]["labels"]["kargo.akuity.io/project"], "true");
    assert_eq!(
        ns["metadata"]["ownerReferences"],
        json!([{
            "apiVersion": "kargo.akuity.io/v1alpha1",
            "kind": "Project",
            "name": "p",
            "uid": created["metadata"]["uid"],
            "controller": true,
            "blockOwnerDeletion": true,
        }])
    );
    // The default roles, managed, each bound to its own ServiceAccount only.
    let roles = admin.check("GET", "/v1beta1/projects/p/roles", None, Expect::Ok(200));
    assert_eq!(
        names(&roles),
        ["default", "kargo-admin", "kargo-promoter", "kargo-viewer"]
    );
    for role in roles.as_array().expect("roles").iter().skip(1) {
        assert_eq!(role["kargoManaged"], true, "{role}");
        assert_eq!(role["serviceAccounts"], json!([]), "{role}");
    }
    let promoter = &roles[2]["rules"];
    assert!(
        promoter
            .as_array()
            .expect("rules")
            .contains(&json!({"apiGroups": ["kargo.akuity.io"], "resources": ["stages"], "verbs": ["get", "list", "promote", "watch"]})),
        "{promoter}"
    );
    // The default ServiceAccount is a role that cannot be changed.
    assert_eq!(roles[0].get("kargoManaged"), None);
    admin.check(
        "POST",
        "/v1beta1/projects/p/roles/grants",
        Some(json!({"role": "default", "userClaims": {"claims": [{"name": "sub", "values": ["x"]}]}})),
        Expect::Err(
            400,
            "ServiceAccount \"default\" in namespace \"p\" is not annotated as Kargo-managed",
        ),
    );

    admin.project("b-project");
    admin.project("a-project");
    let list = admin.check("GET", "/v1beta1/projects", None, Expect::Ok(200));
    assert_eq!(list["kind"], "ProjectList");
    assert_eq!(names(&list), ["a-project", "b-project", "p"]);
    assert_eq!(
        admin.check("GET", "/v1beta1/projects/p", None, Expect::Ok(200))["metadata"]["uid"],
        created["metadata"]["uid"]
    );

    let cases: Vec<(&str, &str, Option<serde_json::Value>, Expect)> = vec![
        (
            "POST",
            "/v1beta1/projects",
            Some(json!({"metadata": {"name": "p"}})),
            Expect::Err(409, "projects.kargo.akuity.io \"p\" already exists"),
        ),
        (
            "POST",
            "/v1beta1/projects",
            Some(json!({"metadata": {}})),
            Expect::Err(400, "name should not be empty"),
        ),
        (
            "POST",
            "/v1beta1/projects",
            Some(json!([])),
            Expect::Err(400, "the body must be a JSON object"),
        ),
        (
            "POST",
            "/v1beta1/projects",
            Some(json!({"metadata": {"name": "Bad.Name"}})),
            Expect::Err(
                422,
                "Project.kargo.akuity.io \"Bad.Name\" is invalid: metadata.name: Invalid value: \"Bad.Name\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
            ),
        ),
        (
            "POST",
            "/v1beta1/projects",
            Some(json!({"metadata": {"name": "default"}})),
            Expect::Err(
                409,
                "namespace \"default\" already exists and is not labeled as a Kargo project namespace",
            ),
        ),
        (
            "POST",
            "/v1beta1/projects",
            Some(json!({"metadata": {"name": "kargo"}})),
            Expect::Err(
                409,
                "namespace \"kargo\" already exists and is not labeled as a Kargo project namespace",
            ),
        ),
        (
            "POST",
            "/v1beta1/projects",
            Some(json!({"kind": "Stage", "metadata": {"name": "s"}})),
            Expect::Err(
                400,
                "the kind in the data (Stage) does not match the expected kind (Project)",
            ),
        ),
        (
            "GET",
            "/v1beta1/projects/nope",
            None,
            Expect::Err(404, "projects.kargo.akuity.io \"nope\" not found"),
        ),
        (
            "DELETE",
            "/v1beta1/projects/nope",
            None,
            Expect::Err(404, "projects.kargo.akuity.io \"nope\" not found"),
        ),
    ];
    for (method, path, body, expect) in cases {
        admin.check(method, path, body, expect);
    }

    // Deleting a project deletes everything in it: accounts, tokens, roles.
    admin.service_account("p", "bot");
    let token = admin.token("p", "bot", "bot-token");
    admin.grant(
        "p",
        json!({"role": "kargo-viewer", "serviceAccounts": {"serviceAccounts": [{"name": "bot"}]}}),
    );
    let bot = Kargo::with_token(&server, &token);
    assert_eq!(bot.get("/v1beta1/projects/p/roles").code, 200);
    admin.check("DELETE", "/v1beta1/projects/p", None, Expect::Ok(204));
    admin.check(
        "GET",
        "/v1beta1/projects/p/roles",
        None,
        Expect::Err(404, "projects.kargo.akuity.io \"p\" not found"),
    );
    assert!(eventually(Duration::from_secs(15), || admin
        .kube("/api/v1/namespaces/p")
        .is_none()));
    assert!(
        admin
            .kube("/api/v1/namespaces/p/serviceaccounts/bot")
            .is_none()
    );
    assert_eq!(
        bot.get("/v1beta1/projects/a-project/roles").body,
        json!({"error": "invalid token"})
    );
    // The name is free again.
    admin.project("p");
    assert_eq!(
        names(&admin.get("/v1beta1/projects/p/service-accounts").body),
        Vec::<String>::new()
    );
}

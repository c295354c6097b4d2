//! Kargo Roles through the Kargo REST API (§1.3, §3.3–3.4, §5): create, get, list, update,
//! delete, grants and revocations to ServiceAccounts, claims and permissions, manageability, with
//! the underlying ServiceAccount, Role and RoleBinding checked through the Kubernetes API.

use serde_json::{Value, json};

use crate::harness::Server;
use crate::kargo_client::{Expect, Kargo, names};

const MANAGED: &str = "rbac.kargo.akuity.io/managed";
const CLAIMS: &str = "rbac.kargo.akuity.io/claims";
const DESCRIPTION: &str = "kargo.akuity.io/description";
const ROLES: &str = "/v1beta1/projects/p/roles";
const GRANTS: &str = "/v1beta1/projects/p/roles/grants";
const REVOCATIONS: &str = "/v1beta1/projects/p/roles/revocations";
const KUBE_SAS: &str = "/api/v1/namespaces/p/serviceaccounts";
const KUBE_ROLES: &str = "/apis/rbac.authorization.k8s.io/v1/namespaces/p/roles";
const KUBE_BINDINGS: &str = "/apis/rbac.authorization.k8s.io/v1/namespaces/p/rolebindings";

fn sa_ref(name: &str) -> Value {
    json!({"kind": "ServiceAccount", "name": name, "namespace": "p"})
}

fn kube_sa(name: &str, managed: bool) -> Value {
    let annotations = if managed {
        json!({MANAGED: "true"})
    } else {
        json!({})
    };
    json!({"metadata": {"name": name, "annotations": annotations}})
}

fn kube_role(name: &str, managed: bool, rules: Value) -> Value {
    let annotations = if managed {
        json!({MANAGED: "true"})
    } else {
        json!({})
    };
    json!({"metadata": {"name": name, "annotations": annotations}, "rules": rules})
}

fn kube_binding(name: &str, managed: bool, kind: &str, role: &str, subjects: Value) -> Value {
    let annotations = if managed {
        json!({MANAGED: "true"})
    } else {
        json!({})
    };
    json!({
        "metadata": {"name": name, "annotations": annotations},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
        "subjects": subjects,
    })
}

/// A server with project `p`, Kargo ServiceAccounts `sa-a`, `sa-b`, `sa-c` (managed),
/// `declared-sa` (labeled, not managed) and a plain ServiceAccount `plain`.
fn setup(server: &Server) -> Kargo<'_> {
    let admin = Kargo::admin(server);
    admin.project("p");
    for sa in ["sa-a", "sa-b", "sa-c"] {
        admin.service_account("p", sa);
    }
    admin.kube_create(
        KUBE_SAS,
        json!({"metadata": {"name": "declared-sa", "labels": {"rbac.kargo.akuity.io/service-account": "true"}}}),
    );
    admin.kube_create(KUBE_SAS, json!({"metadata": {"name": "plain"}}));
    admin
}

fn subjects(admin: &Kargo, binding: &str) -> Value {
    admin
        .kube(&format!("{KUBE_BINDINGS}/{binding}"))
        .map(|b| b["subjects"].clone())
        .unwrap_or(Value::Null)
}

fn claims_annotation(admin: &Kargo, sa: &str) -> Value {
    admin.kube(&format!("{KUBE_SAS}/{sa}")).expect("sa")["metadata"]["annotations"][CLAIMS].clone()
}

#[test]
fn roles_are_created_read_listed_updated_and_deleted() {
    let server = Server::start();
    let admin = setup(&server);
    let created = admin.role(
        "p",
        json!({
            "metadata": {"name": "developer", "annotations": {DESCRIPTION: "Developers"}},
            "claims": [{"name": "groups", "values": ["devops", "admins", "devops"]}],
            "rules": [{"verbs": ["list", "get", "get"], "apiGroups": ["x"], "resources": ["stages", "promotions"]}],
        }),
    );
    let normalized = json!([
        {"apiGroups": ["kargo.akuity.io"], "resources": ["promotions"], "verbs": ["get", "list"]},
        {"apiGroups": ["kargo.akuity.io"], "resources": ["stages"], "verbs": ["get", "list"]},
    ]);
    assert_eq!(
        created,
        json!({
            "metadata": {
                "name": "developer",
                "namespace": "p",
                "creationTimestamp": created["metadata"]["creationTimestamp"],
                "annotations": {DESCRIPTION: "Developers"},
            },
            "kargoManaged": true,
            "claims": [{"name": "groups", "values": ["admins", "devops"]}],
            "serviceAccounts": [],
            "rules": normalized,
        })
    );
    // The trio, exactly.
    let sa = admin.kube(&format!("{KUBE_SAS}/developer")).expect("sa");
    assert_eq!(
        sa["metadata"]["annotations"],
        json!({MANAGED: "true", CLAIMS: r#"{"groups":["admins","devops"]}"#, DESCRIPTION: "Developers"})
    );
    assert!(sa["metadata"].get("labels").is_none());
    let role = admin
        .kube(&format!("{KUBE_ROLES}/developer"))
        .expect("role");
    assert_eq!(role["metadata"]["annotations"], json!({MANAGED: "true"}));
    assert_eq!(role["rules"], normalized);
    let rb = admin
        .kube(&format!("{KUBE_BINDINGS}/developer"))
        .expect("binding");
    assert_eq!(rb["metadata"]["annotations"], json!({MANAGED: "true"}));
    assert_eq!(
        rb["roleRef"],
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "developer"})
    );
    assert_eq!(rb["subjects"], json!([sa_ref("developer")]));

    // A role without claims still has the claims annotation, `{}`; granted accounts are bound.
    admin.role(
        "p",
        json!({"metadata": {"name": "ops"}, "serviceAccounts": [{"name": "sa-b"}, {"name": "sa-a", "namespace": "p"}]}),
    );
    assert_eq!(claims_annotation(&admin, "ops"), "{}");
    assert_eq!(
        subjects(&admin, "ops"),
        json!([sa_ref("ops"), sa_ref("sa-a"), sa_ref("sa-b")])
    );

    admin.kube_create(KUBE_ROLES, kube_role("only-role", false, json!([])));
    admin.kube_create(
        KUBE_BINDINGS,
        kube_binding("only-binding", false, "Role", "x", json!([])),
    );
    admin.kube_create(KUBE_SAS, kube_sa("legacy", false));
    admin.kube_create(
        KUBE_ROLES,
        kube_role(
            "legacy",
            false,
            json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["get"]}]),
        ),
    );
    admin.kube_create(
        KUBE_BINDINGS,
        kube_binding("legacy", false, "Role", "legacy", json!([sa_ref("legacy")])),
    );
    admin.kube_create(KUBE_SAS, kube_sa("bare", true));

    let cases: Vec<(&str, String, Option<Value>, Expect)> = vec![
        (
            "POST",
            ROLES.into(),
            Some(json!({"metadata": {"name": "developer"}})),
            Expect::Err(409, "serviceaccounts \"developer\" already exists"),
        ),
        (
            "POST",
            ROLES.into(),
            Some(json!({"metadata": {"name": "only-role"}})),
            Expect::Err(
                409,
                "roles.rbac.authorization.k8s.io \"only-role\" already exists",
            ),
        ),
        (
            "POST",
            ROLES.into(),
            Some(json!({"metadata": {"name": "only-binding"}})),
            Expect::Err(
                409,
                "rolebindings.rbac.authorization.k8s.io \"only-binding\" already exists",
            ),
        ),
        (
            "POST",
            ROLES.into(),
            Some(json!({"metadata": {}})),
            Expect::Err(400, "name should not be empty"),
        ),
        (
            "POST",
            ROLES.into(),
            Some(json!({"metadata": {"name": "x", "namespace": "q"}})),
            Expect::Err(409, "namespace in body does not match project in URL"),
        ),
        (
            "POST",
            ROLES.into(),
            Some(
                json!({"metadata": {"name": "x"}, "rules": [{"verbs": ["get"], "resources": ["pods"]}]}),
            ),
            Expect::Err(400, "unrecognized resource type \"pods\""),
        ),
        (
            "POST",
            ROLES.into(),
            Some(
                json!({"metadata": {"name": "x"}, "rules": [{"verbs": ["get"], "resources": ["stage"]}]}),
            ),
            Expect::Err(
                400,
                "unrecognized resource type \"stage\"; did you mean \"stages\"?",
            ),
        ),
        (
            "POST",
            ROLES.into(),
            Some(json!({"metadata": {"name": "x"}, "serviceAccounts": [{"name": "plain"}]})),
            Expect::Err(
                400,
                "ServiceAccount \"plain\" in namespace \"p\" is not a Kargo ServiceAccount",
            ),
        ),
        (
            "GET",
            format!("{ROLES}/nope"),
            None,
            Expect::Err(404, "serviceaccounts \"nope\" not found"),
        ),
        (
            "GET",
            format!("{ROLES}/sa-a"),
            None,
            Expect::Err(
                400,
                "ServiceAccount \"sa-a\" in namespace \"p\" is a Kargo ServiceAccount, not a Kargo Role",
            ),
        ),
        (
            "PUT",
            format!("{ROLES}/developer"),
            Some(json!({"metadata": {"name": "other"}})),
            Expect::Err(400, "name in body does not match role name in URL"),
        ),
        (
            "PUT",
            format!("{ROLES}/nope"),
            Some(json!({"metadata": {"name": "nope"}})),
            Expect::Err(404, "serviceaccounts \"nope\" not found"),
        ),
        (
            "PUT",
            format!("{ROLES}/legacy"),
            Some(json!({"metadata": {"name": "legacy"}})),
            Expect::Err(
                400,
                "ServiceAccount \"legacy\" in namespace \"p\" is not annotated as Kargo-managed",
            ),
        ),
        (
            "DELETE",
            format!("{ROLES}/nope"),
            None,
            Expect::Err(404, "serviceaccounts \"nope\" not found"),
        ),
        (
            "DELETE",
            format!("{ROLES}/legacy"),
            None,
            Expect::Err(
                400,
                "ServiceAccount \"legacy\" in namespace \"p\" is not annotated as Kargo-managed",
            ),
        ),
        (
            "DELETE",
            format!("{ROLES}/default"),
            None,
            Expect::Err(
                400,
                "ServiceAccount \"default\" in namespace \"p\" is not annotated as Kargo-managed",
            ),
        ),
    ];
    for (method, path, body, expect) in cases {
        admin.check(method, &path, body, expect);
    }

    // Get: an unmanaged role shows its rules as stored; a managed one, normalized.
    let legacy = admin.check("GET", &format!("{ROLES}/legacy"), None, Expect::Ok(200));
    assert_eq!(legacy.get("kargoManaged"), None);
    assert_eq!(
        legacy["rules"],
        json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["get"]}])
    );
    assert_eq!(
        admin.check("GET", &format!("{ROLES}/developer"), None, Expect::Ok(200))["rules"],
        normalized
    );

    // List: sorted, unmanaged included, Kargo ServiceAccounts skipped.
    let list = admin.check("GET", ROLES, None, Expect::Ok(200));
    assert_eq!(
        names(&list),
        [
            "bare",
            "default",
            "developer",
            "kargo-admin",
            "kargo-promoter",
            "kargo-viewer",
            "legacy",
            "ops",
            "plain",
        ]
    );
    let managed: Vec<bool> = list
        .as_array()
        .expect("array")
        .iter()
        .map(|r| r["kargoManaged"] == true)
        .collect();
    assert_eq!(
        managed,
        [true, false, true, true, true, true, false, true, false]
    );

    // Update replaces claims, description and rules, and creates a missing Role and RoleBinding.
    let updated = admin.check(
        "PUT",
        &format!("{ROLES}/developer"),
        Some(json!({
            "metadata": {"name": "developer"},
            "claims": [{"name": "email", "values": ["a@b.c"]}],
            "rules": [{"verbs": ["*"], "resources": ["stages"]}],
        })),
        Expect::Ok(200),
    );
    assert_eq!(updated["metadata"].get("annotations"), None);
    assert_eq!(
        updated["claims"],
        json!([{"name": "email", "values": ["a@b.c"]}])
    );
    assert_eq!(
        updated["rules"],
        json!([{"apiGroups": ["kargo.akuity.io"], "resources": ["stages"], "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "promote", "update", "watch"]}])
    );
    assert_eq!(
        admin
            .kube(&format!("{KUBE_ROLES}/developer"))
            .expect("role")["rules"][0]["verbs"],
        json!([
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "promote",
            "update",
            "watch"
        ])
    );
    let sa = admin.kube(&format!("{KUBE_SAS}/developer")).expect("sa");
    assert_eq!(
        sa["metadata"]["annotations"],
        json!({MANAGED: "true", CLAIMS: r#"{"email":["a@b.c"]}"#})
    );
    assert!(admin.kube(&format!("{KUBE_ROLES}/bare")).is_none());
    let bare = admin.check(
        "PUT",
        &format!("{ROLES}/bare"),
        Some(json!({"rules": [{"verbs": ["get"], "resources": ["warehouses"]}], "serviceAccounts": [{"name": "sa-c"}]})),
        Expect::Ok(200),
    );
    assert_eq!(bare["kargoManaged"], true);
    assert_eq!(
        bare["serviceAccounts"],
        json!([{"name": "sa-c", "namespace": "p"}])
    );
    assert_eq!(
        admin.kube(&format!("{KUBE_ROLES}/bare")).expect("role")["rules"],
        json!([{"apiGroups": ["kargo.akuity.io"], "resources": ["warehouses"], "verbs": ["get"]}])
    );
    assert_eq!(
        subjects(&admin, "bare"),
        json!([sa_ref("bare"), sa_ref("sa-c")])
    );

    // Delete removes all three.
    admin.check(
        "DELETE",
        &format!("{ROLES}/developer"),
        None,
        Expect::Ok(204),
    );
    assert!(admin.kube(&format!("{KUBE_SAS}/developer")).is_none());
    assert!(admin.kube(&format!("{KUBE_ROLES}/developer")).is_none());
    assert!(admin.kube(&format!("{KUBE_BINDINGS}/developer")).is_none());
    admin.check(
        "GET",
        &format!("{ROLES}/developer"),
        None,
        Expect::Err(404, "serviceaccounts \"developer\" not found"),
    );
}

#[test]
fn roles_are_granted_to_and_revoked_from_service_accounts() {
    let server = Server::start();
    let admin = setup(&server);
    admin.role("p", json!({"metadata": {"name": "dev"}}));
    admin.kube_create(KUBE_SAS, kube_sa("bare", true));
    admin.kube_create(KUBE_SAS, kube_sa("legacy", false));
    let grant = |role: &str, sas: &[&str]| {
        let refs: Vec<Value> = sas.iter().map(|s| json!({"name": s})).collect();
        json!({"role": role, "serviceAccounts": {"serviceAccounts": refs}})
    };
    let cases: Vec<(&str, Value, Expect)> = vec![
        (
            GRANTS,
            grant("nope", &["sa-a"]),
            Expect::Err(404, "serviceaccounts \"nope\" not found"),
        ),
        (
            GRANTS,
            grant("legacy", &["sa-a"]),
            Expect::Err(
                400,
                "ServiceAccount \"legacy\" in namespace \"p\" is not annotated as Kargo-managed",
            ),
        ),
        (
            GRANTS,
            grant("dev", &["sa-a", "missing"]),
            Expect::Err(404, "serviceaccounts \"missing\" not found"),
        ),
        (
            GRANTS,
            grant("dev", &["plain"]),
            Expect::Err(
                400,
                "ServiceAccount \"plain\" in namespace \"p\" is not a Kargo ServiceAccount",
            ),
        ),
        (
            GRANTS,
            grant("dev", &["declared-sa"]),
            Expect::Err(
                400,
                "ServiceAccount \"declared-sa\" in namespace \"p\" is not annotated as Kargo-managed",
            ),
        ),
        (
            GRANTS,
            json!({"serviceAccounts": {"serviceAccounts": []}}),
            Expect::Err(400, "role is required"),
        ),
        (
            GRANTS,
            json!({"role": "dev"}),
            Expect::Err(
                400,
                "one of userClaims, serviceAccounts, or resourceDetails must be provided",
            ),
        ),
        (
            REVOCATIONS,
            grant("nope", &["sa-a"]),
            Expect::Err(404, "serviceaccounts \"nope\" not found"),
        ),
        (
            REVOCATIONS,
            grant("legacy", &["sa-a"]),
            Expect::Err(
                400,
                "ServiceAccount \"legacy\" in namespace \"p\" is not annotated as Kargo-managed",
            ),
        ),
        (
            REVOCATIONS,
            json!({"role": ""}),
            Expect::Err(400, "role is required"),
        ),
        (
            REVOCATIONS,
            json!({"role": "dev"}),
            Expect::Err(
                400,
                "one of userClaims, serviceAccounts, or resourceDetails must be provided",
            ),
        ),
    ];
    for (path, body, expect) in cases {
        admin.check("POST", path, Some(body), expect);
    }
    // Nothing was written by the failed grants (all checked before any write).
    assert_eq!(subjects(&admin, "dev"), json!([sa_ref("dev")]));

    // No RoleBinding yet: created, with two subjects.
    let role = admin.grant("p", grant("bare", &["sa-a"]));
    assert_eq!(
        role["serviceAccounts"],
        json!([{"name": "sa-a", "namespace": "p"}])
    );
    let rb = admin
        .kube(&format!("{KUBE_BINDINGS}/bare"))
        .expect("binding");
    assert_eq!(rb["metadata"]["annotations"], json!({MANAGED: "true"}));
    assert_eq!(rb["subjects"], json!([sa_ref("bare"), sa_ref("sa-a")]));
    // Existing RoleBinding: two subjects; then several: three; twice: no duplicate.
    admin.grant("p", grant("dev", &["sa-b"]));
    assert_eq!(
        subjects(&admin, "dev"),
        json!([sa_ref("dev"), sa_ref("sa-b")])
    );
    let role = admin.grant("p", grant("dev", &["sa-a", "sa-b"]));
    assert_eq!(
        subjects(&admin, "dev"),
        json!([sa_ref("dev"), sa_ref("sa-b"), sa_ref("sa-a")])
    );
    assert_eq!(
        role["serviceAccounts"],
        json!([{"name": "sa-a", "namespace": "p"}, {"name": "sa-b", "namespace": "p"}])
    );
    admin.grant("p", grant("dev", &["sa-a"]));
    assert_eq!(
        subjects(&admin, "dev"),
        json!([sa_ref("dev"), sa_ref("sa-b"), sa_ref("sa-a")])
    );
    // A User subject of the same name is not a duplicate, and revocation leaves it.
    let user = json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "sa-c"});
    let mut rb = admin
        .kube(&format!("{KUBE_BINDINGS}/dev"))
        .expect("binding");
    rb["subjects"]
        .as_array_mut()
        .expect("subjects")
        .push(user.clone());
    assert_eq!(admin.put(&format!("{KUBE_BINDINGS}/dev"), rb).code, 200);
    admin.grant("p", grant("dev", &["sa-c"]));
    assert_eq!(
        subjects(&admin, "dev"),
        json!([
            sa_ref("dev"),
            sa_ref("sa-b"),
            sa_ref("sa-a"),
            user,
            sa_ref("sa-c")
        ])
    );
    let revoke = |body: Value| admin.check("POST", REVOCATIONS, Some(body), Expect::Ok(200));
    revoke(grant("dev", &["sa-c"]));
    assert_eq!(
        subjects(&admin, "dev"),
        json!([sa_ref("dev"), sa_ref("sa-b"), sa_ref("sa-a"), user])
    );
    revoke(grant("dev", &["sa-b", "sa-a"]));
    assert_eq!(subjects(&admin, "dev"), json!([sa_ref("dev"), user]));
    // A non-member: nothing changes; no RoleBinding: nothing to do.
    let role = revoke(grant("dev", &["sa-b"]));
    assert_eq!(role["serviceAccounts"], json!([]));
    assert_eq!(subjects(&admin, "dev"), json!([sa_ref("dev"), user]));
    admin.kube_create(KUBE_SAS, kube_sa("lonely", true));
    let role = revoke(grant("lonely", &["sa-a"]));
    assert_eq!(role["kargoManaged"], true);
    assert!(admin.kube(&format!("{KUBE_BINDINGS}/lonely")).is_none());
}

#[test]
fn permissions_and_claims_are_granted_and_revoked() {
    let server = Server::start();
    let admin = setup(&server);
    admin.kube_create(KUBE_SAS, kube_sa("bare", true));
    let perm = |role: &str, t: &str, name: &str, verbs: &[&str]| json!({"role": role, "resourceDetails": {"resourceType": t, "resourceName": name, "verbs": verbs}});
    // No Role yet: revoking is a no-op; granting creates Role and RoleBinding.
    let role = admin.check(
        "POST",
        REVOCATIONS,
        Some(perm("bare", "stages", "", &["get"])),
        Expect::Ok(200),
    );
    assert!(role.get("rules").is_none());
    assert!(admin.kube(&format!("{KUBE_ROLES}/bare")).is_none());
    admin.grant("p", perm("bare", "promotions", "", &["get"]));
    admin.grant("p", perm("bare", "stages", "", &["list", "get"]));
    let role = admin.grant("p", perm("bare", "promotions", "", &["list"]));
    let two = json!([
        {"apiGroups": ["kargo.akuity.io"], "resources": ["promotions"], "verbs": ["get", "list"]},
        {"apiGroups": ["kargo.akuity.io"], "resources": ["stages"], "verbs": ["get", "list"]},
    ]);
    assert_eq!(role["rules"], two);
    assert_eq!(
        admin.kube(&format!("{KUBE_ROLES}/bare")).expect("role")["rules"],
        two
    );
    assert_eq!(
        admin.kube(&format!("{KUBE_ROLES}/bare")).expect("role")["metadata"]["annotations"],
        json!({MANAGED: "true"})
    );
    assert_eq!(subjects(&admin, "bare"), json!([sa_ref("bare")]));
    let role = admin.grant("p", perm("bare", "stages", "dev", &["*"]));
    assert_eq!(
        role["rules"][2],
        json!({"apiGroups": ["kargo.akuity.io"], "resources": ["stages"], "resourceNames": ["dev"], "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "promote", "update", "watch"]})
    );
    for (body, message) in [
        (
            perm("bare", "stage", "", &["get"]),
            "unrecognized resource type \"stage\"; did you mean \"stages\"?",
        ),
        (
            perm("bare", "pods", "", &["get"]),
            "unrecognized resource type \"pods\"",
        ),
    ] {
        admin.check(
            "POST",
            GRANTS,
            Some(body.clone()),
            Expect::Err(400, message),
        );
        admin.check("POST", REVOCATIONS, Some(body), Expect::Err(400, message));
    }
    // Revoke removes the verbs and drops rules left empty.
    let role = admin.check(
        "POST",
        REVOCATIONS,
        Some(perm("bare", "promotions", "", &["get", "list"])),
        Expect::Ok(200),
    );
    assert_eq!(
        role["rules"],
        json!([
            {"apiGroups": ["kargo.akuity.io"], "resources": ["stages"], "verbs": ["get", "list"]},
            {"apiGroups": ["kargo.akuity.io"], "resources": ["stages"], "resourceNames": ["dev"], "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "promote", "update", "watch"]},
        ])
    );
    let role = admin.check(
        "POST",
        REVOCATIONS,
        Some(perm("bare", "stages", "dev", &["*"])),
        Expect::Ok(200),
    );
    assert_eq!(
        role["rules"],
        json!([{"apiGroups": ["kargo.akuity.io"], "resources": ["stages"], "verbs": ["get", "list"]}])
    );

    // Claims: granted as a sorted union, revoked value by value.
    let claims = |role: &str, c: Value| json!({"role": role, "userClaims": {"claims": c}});
    admin.grant(
        "p",
        claims("bare", json!([{"name": "sub", "values": ["foo-sub"]}])),
    );
    let role = admin.grant(
        "p",
        claims(
            "bare",
            json!([
                {"name": "groups", "values": ["devops", "admins"]},
                {"name": "email", "values": ["b@c.d", "a@b.c"]},
                {"name": "groups", "values": ["devops"]},
            ]),
        ),
    );
    assert_eq!(
        claims_annotation(&admin, "bare"),
        r#"{"email":["a@b.c","b@c.d"],"groups":["admins","devops"],"sub":["foo-sub"]}"#
    );
    assert_eq!(
        role["claims"],
        json!([
            {"name": "email", "values": ["a@b.c", "b@c.d"]},
            {"name": "groups", "values": ["admins", "devops"]},
            {"name": "sub", "values": ["foo-sub"]},
        ])
    );
    admin.check(
        "POST",
        REVOCATIONS,
        Some(claims(
            "bare",
            json!([{"name": "email", "values": ["a@b.c", "b@c.d"]}, {"name": "groups", "values": ["admins", "devops"]}]),
        )),
        Expect::Ok(200),
    );
    assert_eq!(claims_annotation(&admin, "bare"), r#"{"sub":["foo-sub"]}"#);
    // Claims come first when a request has several parts.
    admin.grant(
        "p",
        json!({"role": "bare", "userClaims": {"claims": [{"name": "email", "values": ["x@y.z"]}]}, "resourceDetails": {"resourceType": "pods", "verbs": ["get"]}}),
    );
    assert_eq!(
        claims_annotation(&admin, "bare"),
        r#"{"email":["x@y.z"],"sub":["foo-sub"]}"#
    );
}

#[test]
fn unmanageable_roles_are_refused_with_the_first_reason_in_order() {
    let server = Server::start();
    let admin = setup(&server);
    let rules =
        json!([{"apiGroups": ["kargo.akuity.io"], "resources": ["stages"], "verbs": ["get"]}]);
    // cluster: bound to a ClusterRole (otherwise all managed).
    admin.kube_create(KUBE_SAS, kube_sa("cluster", true));
    admin.kube_create(
        KUBE_BINDINGS,
        kube_binding(
            "cluster",
            true,
            "ClusterRole",
            "view",
            json!([sa_ref("cluster")]),
        ),
    );
    // unmanaged: the ServiceAccount is not managed.
    admin.kube_create(KUBE_SAS, kube_sa("unmanaged", false));
    // two-roles: two RoleBindings to two Roles.
    admin.kube_create(KUBE_SAS, kube_sa("two-roles", true));
    for r in ["two-roles-1", "two-roles-2"] {
        admin.kube_create(KUBE_ROLES, kube_role(r, true, rules.clone()));
        admin.kube_create(
            KUBE_BINDINGS,
            kube_binding(r, true, "Role", r, json!([sa_ref("two-roles")])),
        );
    }
    // role-unmanaged: its Role is not managed.
    admin.kube_create(KUBE_SAS, kube_sa("role-unmanaged", true));
    admin.kube_create(
        KUBE_ROLES,
        kube_role("role-unmanaged", false, rules.clone()),
    );
    admin.kube_create(
        KUBE_BINDINGS,
        kube_binding(
            "role-unmanaged",
            true,
            "Role",
            "role-unmanaged",
            json!([sa_ref("role-unmanaged")]),
        ),
    );
    // two-bindings: two RoleBindings to one Role.
    admin.kube_create(KUBE_SAS, kube_sa("two-bindings", true));
    admin.kube_create(KUBE_ROLES, kube_role("two-bindings", true, rules.clone()));
    for b in ["two-bindings-1", "two-bindings-2"] {
        admin.kube_create(
            KUBE_BINDINGS,
            kube_binding(
                b,
                true,
                "Role",
                "two-bindings",
                json!([sa_ref("two-bindings")]),
            ),
        );
    }
    // binding-unmanaged: its RoleBinding is not managed.
    admin.kube_create(KUBE_SAS, kube_sa("binding-unmanaged", true));
    admin.kube_create(
        KUBE_ROLES,
        kube_role("binding-unmanaged", true, rules.clone()),
    );
    admin.kube_create(
        KUBE_BINDINGS,
        kube_binding(
            "binding-unmanaged",
            false,
            "Role",
            "binding-unmanaged",
            json!([sa_ref("binding-unmanaged")]),
        ),
    );
    let expected = [
        (
            "cluster",
            "ServiceAccount \"cluster\" in namespace \"p\" is bound to one or more ClusterRoles",
        ),
        (
            "unmanaged",
            "ServiceAccount \"unmanaged\" in namespace \"p\" is not annotated as Kargo-managed",
        ),
        (
            "two-roles",
            "multiple Roles associated with ServiceAccount \"two-roles\" in namespace \"p\"",
        ),
        (
            "role-unmanaged",
            "Role \"role-unmanaged\" in namespace \"p\" is not annotated as Kargo-managed",
        ),
        (
            "two-bindings",
            "multiple RoleBindings associated with ServiceAccount \"two-bindings\" in namespace \"p\"",
        ),
        (
            "binding-unmanaged",
            "RoleBinding \"binding-unmanaged\" in namespace \"p\" is not annotated as Kargo-managed",
        ),
    ];
    for (role, message) in expected {
        let requests: Vec<(&str, String, Option<Value>)> = vec![
            ("DELETE", format!("{ROLES}/{role}"), None),
            (
                "PUT",
                format!("{ROLES}/{role}"),
                Some(json!({"metadata": {"name": role}})),
            ),
            (
                "POST",
                GRANTS.into(),
                Some(
                    json!({"role": role, "serviceAccounts": {"serviceAccounts": [{"name": "sa-a"}]}}),
                ),
            ),
            (
                "POST",
                GRANTS.into(),
                Some(
                    json!({"role": role, "userClaims": {"claims": [{"name": "sub", "values": ["x"]}]}}),
                ),
            ),
            (
                "POST",
                GRANTS.into(),
                Some(
                    json!({"role": role, "resourceDetails": {"resourceType": "stages", "verbs": ["get"]}}),
                ),
            ),
            (
                "POST",
                REVOCATIONS.into(),
                Some(
                    json!({"role": role, "serviceAccounts": {"serviceAccounts": [{"name": "sa-a"}]}}),
                ),
            ),
            (
                "POST",
                REVOCATIONS.into(),
                Some(
                    json!({"role": role, "userClaims": {"claims": [{"name": "sub", "values": ["x"]}]}}),
                ),
            ),
            (
                "POST",
                REVOCATIONS.into(),
                Some(
                    json!({"role": role, "resourceDetails": {"resourceType": "stages", "verbs": ["get"]}}),
                ),
            ),
        ];
        for (method, path, body) in requests {
            admin.check(method, &path, body, Expect::Err(400, message));
        }
        // Listed and readable, as not managed.
        let got = admin.check("GET", &format!("{ROLES}/{role}"), None, Expect::Ok(200));
        assert_eq!(got.get("kargoManaged"), None, "{role}");
    }
    // Still all there.
    let listed = names(&admin.get(ROLES).body);
    for (role, _) in expected {
        assert!(listed.contains(&role.to_owned()), "{role} in {listed:?}");
    }
}

//! People mapped to Kargo Roles by their OIDC claims, through the [`Authorizer`] in process:
//! ServiceAccounts with claims annotations, their Roles and RoleBindings and project namespaces
//! written to a temporary SQLite store, seen by the view through the informer.

use kargo_api::kargo::{CLAIMS_ANNOTATION, PROJECT_LABEL};
use kargo_api::resources::{
    CLUSTERROLEBINDINGS, CLUSTERROLES, NAMESPACES, ROLEBINDINGS, ROLES, SERVICEACCOUNTS,
};
use kargo_registry::{Target, WriteOptions};
use serde_json::{Value, json};

use super::*;
use crate::testing::World;

/// A person signed in with single sign-on: username `a@b.c`, and `claims`.
fn person(claims: &[(&str, &[&str])]) -> UserInfo {
    let mut user = UserInfo::new("a@b.c", ["system:authenticated"]);
    user.claims = claims
        .iter()
        .map(|(name, values)| {
            (
                (*name).to_owned(),
                values.iter().map(|v| (*v).to_owned()).collect(),
            )
        })
        .collect();
    user
}

fn alice() -> UserInfo {
    person(&[
        ("email", &["a@b.c"]),
        ("groups", &["devops"]),
        ("sub", &["1234"]),
    ])
}

fn get_stage(namespace: &str) -> Attributes {
    Attributes::resource("get", namespace, "kargo.akuity.io", "stages")
        .with_name("s")
        .into()
}

/// Creates project namespace `ns` with a role `dev` (account, Role allowing `get` on stages and
/// `create` on roles, RoleBinding), the account annotated with `annotations`.
async fn project_role(world: &World, ns: &str, annotations: Value) {
    world
        .create(
            &NAMESPACES,
            None,
            json!({"metadata": {"name": ns, "labels": {PROJECT_LABEL: "true"}}}),
        )
        .await;
    world
        .create(
            &SERVICEACCOUNTS,
            Some(ns),
            json!({"metadata": {"name": "dev", "namespace": ns, "annotations": annotations}}),
        )
        .await;
    world
        .create(
            &ROLES,
            Some(ns),
            json!({"metadata": {"name": "dev", "namespace": ns}, "rules": [
                {"apiGroups": ["kargo.akuity.io"], "resources": ["stages"], "verbs": ["get"]},
                {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": ["create"]},
            ]}),
        )
        .await;
    world
        .create(
            &ROLEBINDINGS,
            Some(ns),
            json!({
                "metadata": {"name": "dev", "namespace": ns},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "dev"},
                "subjects": [{"kind": "ServiceAccount", "name": "dev", "namespace": ns}],
            }),
        )
        .await;
}

/// Sets the annotations of account `ns/dev`.
async fn annotate(world: &World, ns: &str, annotations: Value) {
    world
        .registry
        .update_with(
            Target::new(&SERVICEACCOUNTS, Some(ns), "dev"),
            &WriteOptions::default(),
            |current| {
                let mut next = current.clone();
                next["metadata"]["annotations"] = annotations.clone();
                Ok(next)
            },
        )
        .await
        .unwrap();
    world.settle().await;
}

fn forbidden_text(namespace: &str) -> String {
    format!(
        r#"stages.kargo.akuity.io "s" is forbidden: User "a@b.c" cannot get resource "stages" in API group "kargo.akuity.io" in the namespace "{namespace}""#
    )
}

/// A project `ns` whose role maps people with the email `email` (the claims annotation).
async fn email_role(world: &World, ns: &str, email: &str) {
    let claims = json!({"email": [email]}).to_string();
    project_role(world, ns, json!({CLAIMS_ANNOTATION: claims})).await;
}

/// Allowed, and allowed again from the remembered decision.
fn assert_allowed_twice(authz: &Authorizer, user: &UserInfo, attributes: &Attributes) {
    assert_eq!(authz.authorize(user, attributes), Ok(()));
    assert_eq!(authz.authorize(user, attributes), Ok(()), "remembered");
}

fn assert_forbidden(result: Result<()>, namespace: &str) {
    let status = result.unwrap_err();
    assert_eq!(status.code, 403);
    assert_eq!(status.message, forbidden_text(namespace));
}

#[tokio::test]
async fn a_person_gets_the_roles_their_claims_map_to_in_that_project_only() {
    let world = World::new().await;
    email_role(&world, "p", "a@b.c").await;
    email_role(&world, "q", "x@y.z").await;
    let authz = world.authorizer(None);

    assert_allowed_twice(&authz, &alice(), &get_stage("p"));
    assert_forbidden(authz.authorize(&alice(), &get_stage("q")), "q");
    // The same name without the claim is somebody else, even with the allow remembered.
    assert_forbidden(
        authz.authorize(&person(&[("email", &["x@b.c"])]), &get_stage("p")),
        "p",
    );
    assert_forbidden(
        authz.authorize(
            &UserInfo::new("a@b.c", ["system:authenticated"]),
            &get_stage("p"),
        ),
        "p",
    );
    // Claim names count, not only values.
    assert_forbidden(
        authz.authorize(&person(&[("sub", &["a@b.c"])]), &get_stage("p")),
        "p",
    );

    // `kubectl auth can-i` and the rules review answer by the mapped role too.
    let decision = authz.decide(&alice(), &get_stage("p"));
    assert!(decision.is_allowed());
    assert_eq!(
        decision.reason(),
        r#"RBAC: allowed by RoleBinding "dev/p" of Role "dev" to ServiceAccount "dev/p""#
    );
    assert!(!authz.decide(&alice(), &get_stage("q")).is_allowed());
    let (rules, _) = world.view.policy().rules_for(&alice(), "p");
    assert_eq!(rules.len(), 2, "{rules:?}");
    assert!(world.view.policy().rules_for(&alice(), "q").0.is_empty());
}

#[tokio::test]
async fn removing_the_claim_takes_effect_on_the_next_request() {
    let world = World::new().await;
    email_role(&world, "p", "a@b.c").await;
    let authz = world.authorizer(None);
    assert_allowed_twice(&authz, &alice(), &get_stage("p"));

    annotate(&world, "p", json!({CLAIMS_ANNOTATION: "{}"})).await;
    assert_forbidden(authz.authorize(&alice(), &get_stage("p")), "p");

    annotate(
        &world,
        "p",
        json!({CLAIMS_ANNOTATION: r#"{"groups":["devops"]}"#}),
    )
    .await;
    assert_eq!(
        authz.authorize(&alice(), &get_stage("p")),
        Ok(()),
        "granted again, by group"
    );

    world.delete(&SERVICEACCOUNTS, Some("p"), "dev").await;
    assert_forbidden(authz.authorize(&alice(), &get_stage("p")), "p");
}

#[tokio::test]
async fn the_legacy_annotation_maps_and_a_scalar_or_invalid_new_style_one_does_not() {
    let world = World::new().await;
    project_role(
        &world,
        "p",
        json!({"rbac.kargo.akuity.io/claim.email": "x@y.z, a@b.c"}),
    )
    .await;
    let authz = world.authorizer(None);
    assert_eq!(authz.authorize(&alice(), &get_stage("p")), Ok(()));

    // Upstream's quirk: a scalar value makes the whole new-style annotation ignored for
    // mapping (the legacy one, gone here, would still count).
    annotate(
        &world,
        "p",
        json!({CLAIMS_ANNOTATION: r#"{"email":"a@b.c"}"#}),
    )
    .await;
    assert_forbidden(authz.authorize(&alice(), &get_stage("p")), "p");
    annotate(
        &world,
        "p",
        json!({CLAIMS_ANNOTATION: r#"{"email":["a@b.c"],"sub":"1234"}"#}),
    )
    .await;
    assert_forbidden(authz.authorize(&alice(), &get_stage("p")), "p");
    annotate(&world, "p", json!({CLAIMS_ANNOTATION: "not json"})).await;
    assert_forbidden(authz.authorize(&alice(), &get_stage("p")), "p");
    annotate(
        &world,
        "p",
        json!({CLAIMS_ANNOTATION: "not json", "rbac.kargo.akuity.io/claim.sub": "1234"}),
    )
    .await;
    assert_eq!(authz.authorize(&alice(), &get_stage("p")), Ok(()));
}

#[tokio::test]
async fn accounts_outside_project_and_global_namespaces_map_nobody() {
    let world = World::new().await;
    email_role(&world, "p", "a@b.c").await;
    let authz = world.authorizer(None);
    assert_eq!(authz.authorize(&alice(), &get_stage("p")), Ok(()));

    // The namespace stops being a project's: its accounts map nobody, at once.
    world
        .registry
        .update_with(
            Target::new(&NAMESPACES, None, "p"),
            &WriteOptions::default(),
            |current| {
                let mut next = current.clone();
                next["metadata"]["labels"] = json!({});
                Ok(next)
            },
        )
        .await
        .unwrap();
    world.settle().await;
    assert_forbidden(authz.authorize(&alice(), &get_stage("p")), "p");
}

#[tokio::test]
async fn global_accounts_map_people_everywhere_through_cluster_role_bindings() {
    let world = World::new().await;
    project_role(&world, "p", json!({})).await;
    world.namespace("kargo").await;
    world
        .create(
            &SERVICEACCOUNTS,
            Some("kargo"),
            json!({"metadata": {"name": "kargo-viewer", "namespace": "kargo",
                "annotations": {CLAIMS_ANNOTATION: r#"{"groups":["devops"]}"#}}}),
        )
        .await;
    world
        .create(
            &CLUSTERROLES,
            None,
            json!({"metadata": {"name": "kargo-viewer"}, "rules": [
                {"apiGroups": ["kargo.akuity.io"], "resources": ["stages", "projects"], "verbs": ["get"]},
            ]}),
        )
        .await;
    world
        .create(
            &CLUSTERROLEBINDINGS,
            None,
            json!({
                "metadata": {"name": "kargo-viewer"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "kargo-viewer"},
                "subjects": [{"kind": "ServiceAccount", "name": "kargo-viewer", "namespace": "kargo"}],
            }),
        )
        .await;
    let authz = world.authorizer(None);
    assert_eq!(authz.authorize(&alice(), &get_stage("p")), Ok(()));
    assert_eq!(authz.authorize(&alice(), &get_stage("elsewhere")), Ok(()));
    let project: Attributes = Attributes::resource("get", "", "kargo.akuity.io", "projects")
        .with_name("p")
        .into();
    assert_eq!(authz.authorize(&alice(), &project), Ok(()));
    assert!(
        authz
            .authorize(&person(&[("groups", &["ops"])]), &project)
            .is_err()
    );
}

#[tokio::test]
async fn a_person_may_grant_what_their_mapped_roles_hold_and_nothing_more() {
    let world = World::new().await;
    email_role(&world, "p", "a@b.c").await;
    project_role(&world, "q", json!({})).await;
    let authz = world.authorizer(None);
    let reader = |ns: &str, verb: &str| {
        json!({"metadata": {"name": "reader", "namespace": ns}, "rules": [
            {"apiGroups": ["kargo.akuity.io"], "resources": ["stages"], "verbs": [verb]},
        ]})
    };
    let create = |ns: &'static str, body: Value| {
        let authz = authz.clone();
        let world = &world;
        async move {
            authz.authorize(
                &alice(),
                &Attributes::resource("create", ns, "rbac.authorization.k8s.io", "roles").into(),
            )?;
            let options = WriteOptions {
                admission: authz.admission(&alice(), &ROLES),
                ..WriteOptions::default()
            };
            world
                .registry
                .create(&ROLES, Some(ns), body, &options)
                .await?;
            Ok::<_, Status>(())
        }
    };
    assert_eq!(create("p", reader("p", "get")).await, Ok(()));
    let status = create("p", reader("p", "delete")).await.unwrap_err();
    assert_eq!(status.code, 403);
    assert!(
        status.message.starts_with(r#"roles.rbac.authorization.k8s.io "reader" is forbidden: user "a@b.c" (groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently held:"#),
        "{}",
        status.message
    );
    assert_eq!(create("q", reader("q", "get")).await.unwrap_err().code, 403);
}

//! RBAC and escalation prevention through the [`Authorizer`], in process: Roles and
//! RoleBindings written to a temporary SQLite store by the registry, seen by the view through
//! the informer, and writes checked by the admission hook the registry calls. Messages are
//! kube-apiserver's.

use kargo_api::resources::{ROLEBINDINGS, ROLES, SECRETS};
use kargo_registry::WriteOptions;
use kargo_registry::status::Status;
use serde_json::{Value, json};

use super::*;
use crate::testing::World;

const HELD_BY_NO_ONE: &str = concat!(
    r#"is forbidden: user "system:serviceaccount:p:ci" (groups=["system:serviceaccounts" "system:serviceaccounts:p" "system:authenticated"]) is attempting to grant RBAC permissions not currently held:"#,
    "\n",
    r#"{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}"#,
);

fn role(name: &str, rules: Value) -> Value {
    json!({"metadata": {"name": name, "namespace": "p"}, "rules": rules})
}

fn binding(name: &str, role: &str, account: &str) -> Value {
    json!({
        "metadata": {"name": name, "namespace": "p"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": "p"}],
    })
}

/// A project `p` whose account `ci` may write Roles and RoleBindings (with `extra` verbs on
/// roles) and nothing else.
async fn world(extra: &[&str]) -> (World, Arc<Authorizer>, UserInfo) {
    let world = World::new().await;
    world.namespace("p").await;
    let uid = world.account("p", "ci").await;
    let mut verbs = vec!["get", "create", "update"];
    verbs.extend_from_slice(extra);
    world
        .create(
            &ROLES,
            Some("p"),
            role(
                "rbac-writer",
                json!([{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"], "verbs": verbs}]),
            ),
        )
        .await;
    world
        .create(
            &ROLEBINDINGS,
            Some("p"),
            binding("rbac-writer", "rbac-writer", "ci"),
        )
        .await;
    let authz = world.authorizer(None);
    (world, authz, UserInfo::service_account("p", "ci", uid))
}

/// Creates `body` as `user`, through the registry with the authorizer's admission check, as
/// the API does.
async fn create_as(
    world: &World,
    authz: &Arc<Authorizer>,
    user: &UserInfo,
    rt: &'static ResourceType,
    body: Value,
) -> Result<()> {
    authz.authorize(
        user,
        &Attributes::resource("create", "p", rt.group, rt.plural).into(),
    )?;
    let options = WriteOptions {
        admission: authz.admission(user, rt),
        ..WriteOptions::default()
    };
    world.registry.create(rt, Some("p"), body, &options).await?;
    world.settle().await;
    Ok(())
}

fn forbidden(status: Status) -> (u16, &'static str, String) {
    (status.code, status.reason, status.message)
}

fn secret_reader() -> Value {
    role(
        "secret-reader",
        json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]),
    )
}

#[tokio::test]
async fn a_request_is_allowed_by_a_binding_and_refused_without_one() {
    let (_world, authz, ci) = world(&[]).await;
    let get = |resource: &str| -> Attributes {
        Attributes::resource(
            "get",
            "p",
            if resource == "roles" {
                res::RBAC_GROUP
            } else {
                ""
            },
            resource,
        )
        .with_name("x")
        .into()
    };
    assert!(authz.authorize(&ci, &get("roles")).is_ok());
    assert_eq!(
        forbidden(authz.authorize(&ci, &get("secrets")).unwrap_err()),
        (
            403,
            "Forbidden",
            r#"secrets "x" is forbidden: User "system:serviceaccount:p:ci" cannot get resource "secrets" in API group "" in the namespace "p""#.to_owned()
        )
    );
    let admin = crate::authn::Authenticator::admin_user();
    assert!(authz.authorize(&admin, &get("secrets")).is_ok());
}

#[tokio::test]
async fn a_role_granting_what_its_creator_lacks_is_refused() {
    let (world, authz, ci) = world(&[]).await;
    let refused = create_as(&world, &authz, &ci, &ROLES, secret_reader())
        .await
        .unwrap_err();
    assert_eq!(
        forbidden(refused),
        (
            403,
            "Forbidden",
            format!(r#"roles.rbac.authorization.k8s.io "secret-reader" {HELD_BY_NO_ONE}"#)
        )
    );
    // What it holds, it may grant.
    create_as(
        &world,
        &authz,
        &ci,
        &ROLES,
        role(
            "role-reader",
            json!([{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": ["get"]}]),
        ),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn with_the_escalate_verb_a_role_may_grant_more_but_binding_it_needs_bind() {
    let (world, authz, ci) = world(&["escalate"]).await;
    create_as(&world, &authz, &ci, &ROLES, secret_reader())
        .await
        .unwrap();
    let stored = world
        .registry
        .get(kargo_registry::Target::new(
            &ROLES,
            Some("p"),
            "secret-reader",
        ))
        .await
        .unwrap();
    assert_eq!(stored["rules"][0]["resources"], json!(["secrets"]));
    // Binding the new role to someone grants its permissions: that needs them, or `bind`.
    let refused = create_as(
        &world,
        &authz,
        &ci,
        &ROLEBINDINGS,
        binding("readers", "secret-reader", "ci"),
    )
    .await
    .unwrap_err();
    assert_eq!(
        forbidden(refused).2,
        format!(r#"rolebindings.rbac.authorization.k8s.io "readers" {HELD_BY_NO_ONE}"#)
    );
    // The refused binding was not written: ci still cannot read Secrets.
    assert!(
        authz
            .authorize(
                &ci,
                &Attributes::resource("get", "p", "", SECRETS.plural).into()
            )
            .is_err()
    );
}

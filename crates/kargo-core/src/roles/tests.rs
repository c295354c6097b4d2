//! The role operations in process, over a temporary SQLite store ([`crate::testing::Fixture`]):
//! what each writes to the ServiceAccount, Role and RoleBinding of a role, and the Kargo body it
//! answers with.

use kargo_api::kargo::Role;
use kargo_api::resources::{ROLEBINDINGS, ROLES, SERVICEACCOUNTS};
use serde_json::{Value, json};

use crate::Scope;
use crate::testing::Fixture;

fn project() -> Scope {
    Scope::Project("p".into())
}

fn role(body: Value) -> Role {
    serde_json::from_value(body).expect("a Role body")
}

fn request(body: Value) -> kargo_api::kargo::GrantRequest {
    serde_json::from_value(body).expect("a grant body")
}

fn body(role: &Role) -> Value {
    serde_json::to_value(role).expect("serializable")
}

/// A grant or revocation of user claims (`claims`) for role `dev`.
fn claims(claims: Value) -> Value {
    json!({"role": "dev", "userClaims": {"claims": claims}})
}

/// A grant or revocation of ServiceAccounts (`refs`) for role `dev`.
fn accounts(refs: Value) -> Value {
    json!({"role": "dev", "serviceAccounts": {"serviceAccounts": refs}})
}

/// A grant or revocation of a permission (`details`) for role `dev`.
fn permission(details: Value) -> Value {
    json!({"role": "dev", "resourceDetails": details})
}

/// A ServiceAccount subject of a RoleBinding, as Kargo writes it.
fn subject(name: &str) -> Value {
    json!({"kind": "ServiceAccount", "name": name, "namespace": "p"})
}

/// Asserts that an operation failed with `code` and `message`.
fn assert_error(err: crate::Error, code: u16, message: &str) {
    assert_eq!((err.code(), err.to_string()), (code, message.to_owned()));
}

/// The role operations as the admin in project `p`, with JSON bodies.
impl Fixture {
    async fn create_role(&self, body: Value) -> Role {
        self.kargo
            .create_role(&self.admin, &project(), role(body))
            .await
            .expect("the role is created")
    }

    async fn grant(&self, body: Value) -> crate::Result<Role> {
        self.kargo
            .grant(&self.admin, &project(), request(body))
            .await
    }

    async fn revoke(&self, body: Value) -> crate::Result<Role> {
        self.kargo
            .revoke(&self.admin, &project(), request(body))
            .await
    }

    async fn subjects(&self, binding: &str) -> Value {
        self.stored(&ROLEBINDINGS, "p", binding)
            .await
            .expect("the RoleBinding")["subjects"]
            .clone()
    }

    /// The claims annotation of a role's ServiceAccount.
    async fn claims_annotation(&self, account: &str) -> Value {
        self.stored(&SERVICEACCOUNTS, "p", account)
            .await
            .expect("the ServiceAccount")["metadata"]["annotations"]["rbac.kargo.akuity.io/claims"]
            .clone()
    }
}

#[tokio::test]
async fn creating_a_role_writes_its_service_account_role_and_binding() {
    let f = Fixture::with_project("p").await;
    f.service_account(&project(), "bot").await;
    let created = f
        .create_role(json!({
            "metadata": {"name": "dev", "annotations": {"kargo.akuity.io/description": "Developers"}},
            "claims": [{"name": "email", "values": ["b@x.io", "a@x.io"]}],
            "serviceAccounts": [{"name": "bot"}],
            "rules": [{"verbs": ["list", "get"], "resources": ["stages", "promotions"]}],
        }))
        .await;
    let rules = json!([
        {"apiGroups": ["kargo.akuity.io"], "resources": ["promotions"], "verbs": ["get", "list"]},
        {"apiGroups": ["kargo.akuity.io"], "resources": ["stages"], "verbs": ["get", "list"]},
    ]);
    let answer = body(&created);
    assert_eq!(answer["metadata"]["name"], "dev");
    assert_eq!(answer["metadata"]["namespace"], "p");
    assert_eq!(
        answer["metadata"]["annotations"],
        json!({"kargo.akuity.io/description": "Developers"})
    );
    assert_eq!(answer["kargoManaged"], true);
    assert_eq!(
        answer["claims"],
        json!([{"name": "email", "values": ["a@x.io", "b@x.io"]}])
    );
    assert_eq!(
        answer["serviceAccounts"],
        json!([{"name": "bot", "namespace": "p"}])
    );
    assert_eq!(answer["rules"], rules);

    // The ServiceAccount is the role: managed, with claims and description, not labeled as a
    // Kargo ServiceAccount.
    let sa = f.stored(&SERVICEACCOUNTS, "p", "dev").await.unwrap();
    assert_eq!(
        sa["metadata"]["annotations"],
        json!({
            "rbac.kargo.akuity.io/managed": "true",
            "rbac.kargo.akuity.io/claims": r#"{"email":["a@x.io","b@x.io"]}"#,
            "kargo.akuity.io/description": "Developers",
        })
    );
    assert_eq!(sa["metadata"].get("labels"), None);
    let stored_role = f.stored(&ROLES, "p", "dev").await.unwrap();
    assert_eq!(
        stored_role["metadata"]["annotations"],
        json!({"rbac.kargo.akuity.io/managed": "true"})
    );
    assert_eq!(stored_role["rules"], rules);
    let binding = f.stored(&ROLEBINDINGS, "p", "dev").await.unwrap();
    assert_eq!(
        binding["metadata"]["annotations"],
        json!({"rbac.kargo.akuity.io/managed": "true"})
    );
    assert_eq!(
        binding["roleRef"],
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "dev"})
    );
    assert_eq!(binding["subjects"], json!([subject("dev"), subject("bot")]));
}

/// What `kargo create role dev --description ... --claim ...` sends: a name, the project as
/// namespace, a description and claims, no rules and no ServiceAccounts.
#[tokio::test]
async fn a_role_as_kargo_create_role_sends_it_has_no_rules_and_binds_only_itself() {
    let f = Fixture::with_project("p").await;
    let created = f
        .create_role(json!({
            "metadata": {"name": "dev", "namespace": "p", "annotations": {"kargo.akuity.io/description": "d"}},
            "claims": [{"name": "groups", "values": ["devops"]}],
        }))
        .await;
    let answer = body(&created);
    assert_eq!(answer["serviceAccounts"], json!([]));
    assert_eq!(answer.get("rules"), None);
    assert_eq!(
        answer["claims"],
        json!([{"name": "groups", "values": ["devops"]}])
    );
    assert!(answer["metadata"]["creationTimestamp"].is_string());
    assert_eq!(
        f.stored(&ROLES, "p", "dev").await.unwrap()["rules"],
        json!([])
    );
    assert_eq!(f.subjects("dev").await, json!([subject("dev")]));
    assert_eq!(f.claims_annotation("dev").await, r#"{"groups":["devops"]}"#);
    // It is listed with the project's default roles, sorted by name (no namespace controller
    // runs here, so the namespace has no `default` ServiceAccount).
    let names: Vec<String> = f
        .kargo
        .list_roles(&f.admin, &project())
        .await
        .unwrap()
        .into_iter()
        .filter_map(|r| r.metadata.name)
        .collect();
    assert_eq!(
        names,
        ["dev", "kargo-admin", "kargo-promoter", "kargo-viewer"]
    );
}

#[tokio::test]
async fn granting_and_revoking_a_service_account_edits_the_binding_subjects() {
    let f = Fixture::with_project("p").await;
    f.service_account(&project(), "bot").await;
    f.service_account(&project(), "ci").await;
    f.create_role(json!({"metadata": {"name": "dev"}})).await;
    let granted = f
        .grant(accounts(json!([{"name": "ci"}, {"name": "bot"}])))
        .await
        .unwrap();
    assert_eq!(
        body(&granted)["serviceAccounts"],
        json!([{"name": "bot", "namespace": "p"}, {"name": "ci", "namespace": "p"}])
    );
    // Added after the existing subjects, in the order asked.
    assert_eq!(
        f.subjects("dev").await,
        json!([subject("dev"), subject("ci"), subject("bot")])
    );
    // Granting again changes nothing.
    f.grant(accounts(json!([{"name": "bot", "namespace": "p"}])))
        .await
        .unwrap();
    assert_eq!(
        f.subjects("dev").await,
        json!([subject("dev"), subject("ci"), subject("bot")])
    );
    let revoked = f.revoke(accounts(json!([{"name": "ci"}]))).await.unwrap();
    assert_eq!(
        body(&revoked)["serviceAccounts"],
        json!([{"name": "bot", "namespace": "p"}])
    );
    assert_eq!(
        f.subjects("dev").await,
        json!([subject("dev"), subject("bot")])
    );
    // A role's own ServiceAccount is not a Kargo ServiceAccount, so it cannot be granted one.
    let err = f
        .grant(accounts(json!([{"name": "kargo-admin"}])))
        .await
        .unwrap_err();
    assert_error(
        err,
        400,
        r#"ServiceAccount "kargo-admin" in namespace "p" is not a Kargo ServiceAccount"#,
    );
}

#[tokio::test]
async fn claims_are_granted_and_revoked_in_the_claims_annotation() {
    let f = Fixture::with_project("p").await;
    f.create_role(
        json!({"metadata": {"name": "dev"}, "claims": [{"name": "email", "values": ["a@x.io"]}]}),
    )
    .await;
    let granted = f
        .grant(claims(json!([
            {"name": "groups", "values": ["devops"]},
            {"name": "email", "values": ["b@x.io"]},
        ])))
        .await
        .unwrap();
    assert_eq!(
        f.claims_annotation("dev").await,
        r#"{"email":["a@x.io","b@x.io"],"groups":["devops"]}"#
    );
    assert_eq!(
        body(&granted)["claims"],
        json!([
            {"name": "email", "values": ["a@x.io", "b@x.io"]},
            {"name": "groups", "values": ["devops"]},
        ])
    );
    f.revoke(claims(json!([
        {"name": "email", "values": ["a@x.io"]},
        {"name": "groups", "values": ["devops"]},
    ])))
    .await
    .unwrap();
    assert_eq!(f.claims_annotation("dev").await, r#"{"email":["b@x.io"]}"#);
}

#[tokio::test]
async fn a_granted_permission_is_merged_into_the_role_rules() {
    let f = Fixture::with_project("p").await;
    f.create_role(json!({
        "metadata": {"name": "dev"},
        "rules": [{"verbs": ["get"], "resources": ["stages"]}],
    }))
    .await;
    let granted = f
        .grant(permission(
            json!({"resourceType": "stages", "verbs": ["promote", "list"]}),
        ))
        .await
        .unwrap();
    let rules = json!([
        {"apiGroups": ["kargo.akuity.io"], "resources": ["stages"], "verbs": ["get", "list", "promote"]},
    ]);
    assert_eq!(body(&granted)["rules"], rules);
    assert_eq!(f.stored(&ROLES, "p", "dev").await.unwrap()["rules"], rules);
    f.revoke(permission(
        json!({"resourceType": "stages", "verbs": ["get"]}),
    ))
    .await
    .unwrap();
    assert_eq!(
        f.stored(&ROLES, "p", "dev").await.unwrap()["rules"],
        json!([{"apiGroups": ["kargo.akuity.io"], "resources": ["stages"], "verbs": ["list", "promote"]}])
    );
}

#[tokio::test]
async fn deleting_a_role_deletes_its_three_objects() {
    let f = Fixture::with_project("p").await;
    f.create_role(json!({"metadata": {"name": "dev"}})).await;
    f.kargo
        .delete_role(&f.admin, &project(), "dev")
        .await
        .unwrap();
    assert!(f.stored(&SERVICEACCOUNTS, "p", "dev").await.is_none());
    assert!(f.stored(&ROLES, "p", "dev").await.is_none());
    assert!(f.stored(&ROLEBINDINGS, "p", "dev").await.is_none());
    let err = f
        .kargo
        .get_role(&f.admin, &project(), "dev")
        .await
        .unwrap_err();
    assert_error(err, 404, r#"serviceaccounts "dev" not found"#);
}

#[tokio::test]
async fn a_kargo_service_account_is_not_a_role() {
    let f = Fixture::with_project("p").await;
    f.service_account(&project(), "bot").await;
    let err = f
        .kargo
        .get_role(&f.admin, &project(), "bot")
        .await
        .unwrap_err();
    assert_error(
        err,
        400,
        r#"ServiceAccount "bot" in namespace "p" is a Kargo ServiceAccount, not a Kargo Role"#,
    );
}

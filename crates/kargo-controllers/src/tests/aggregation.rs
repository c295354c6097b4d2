//! The aggregation controller, driven by the informer: Kubernetes' `admin`, `edit` and `view`
//! ClusterRoles get the rules of the ClusterRoles labelled `aggregate-to-<name>`, through the
//! chain `view` → `edit` → `admin`, and lose them when a labelled role goes.

use kargo_api::resources::CLUSTERROLES;
use kargo_registry::testing::eventually;
use serde_json::{Value, json};

use super::{Controllers, start};

/// Creates Kubernetes' default ClusterRoles, as `kargo server` does on its first start.
async fn defaults(test: &Controllers) {
    for role in kargo_auth::rbac::bootstrap::cluster_roles() {
        test.create(&CLUSTERROLES, None, serde_json::to_value(role).unwrap())
            .await
            .unwrap();
    }
}

/// Whether the ClusterRole `name` has a rule for `resource` with the verb `verb`.
fn grants(role: &Value, verb: &str, resource: &str) -> bool {
    role["rules"].as_array().into_iter().flatten().any(|rule| {
        let has = |field: &str, value: &str| {
            rule[field]
                .as_array()
                .is_some_and(|values| values.iter().any(|v| v == value))
        };
        has("verbs", verb) && has("resources", resource)
    })
}

/// Waits until `holds` is true of the ClusterRole `name`.
async fn until(test: &Controllers, name: &str, what: &str, holds: impl Fn(&Value) -> bool) {
    eventually(&format!("{name}: {what}"), || async {
        test.get(&CLUSTERROLES, None, name)
            .await
            .filter(|role| holds(role))
            .map(|_| ())
    })
    .await;
}

#[tokio::test]
async fn a_labelled_role_reaches_view_edit_and_admin_and_leaves_them_when_deleted() {
    let test = start().await;
    defaults(&test).await;
    // The seeded rules: view reads ServiceAccounts, edit writes Secrets, admin writes Roles.
    until(&test, "view", "reads serviceaccounts", |r| {
        grants(r, "list", "serviceaccounts") && !grants(r, "get", "secrets")
    })
    .await;
    until(
        &test,
        "edit",
        "writes secrets and reads serviceaccounts",
        |r| grants(r, "create", "secrets") && grants(r, "list", "serviceaccounts"),
    )
    .await;
    until(
        &test,
        "admin",
        "writes roles, secrets; reads serviceaccounts",
        |r| {
            grants(r, "create", "roles")
                && grants(r, "create", "secrets")
                && grants(r, "list", "serviceaccounts")
        },
    )
    .await;

    let widgets = json!({
        "metadata": {
            "name": "widget-viewer",
            "labels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"},
        },
        "rules": [{"apiGroups": ["example.com"], "resources": ["widgets"], "verbs": ["get"]}],
    });
    test.create(&CLUSTERROLES, None, widgets).await.unwrap();
    for name in ["view", "edit", "admin"] {
        until(&test, name, "reads widgets", |r| {
            grants(r, "get", "widgets")
        })
        .await;
    }

    test.delete(&CLUSTERROLES, None, "widget-viewer")
        .await
        .unwrap();
    for name in ["view", "edit", "admin"] {
        until(&test, name, "no longer reads widgets", |r| {
            !grants(r, "get", "widgets") && grants(r, "list", "serviceaccounts")
        })
        .await;
    }
}

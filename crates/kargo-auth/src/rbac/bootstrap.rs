//! The default ClusterRoles and ClusterRoleBindings kube-apiserver creates on start
//! (`bootstrappolicy/policy.go`), limited to those this server needs: `cluster-admin`,
//! `system:discovery`, `system:basic-user`, `system:public-info-viewer`,
//! `system:service-account-issuer-discovery`, and the user-facing `admin`, `edit` and `view`,
//! which are aggregated (their rules are those of the ClusterRoles labelled
//! `rbac.authorization.k8s.io/aggregate-to-<name>`, filled in by the aggregation controller)
//! from `system:aggregate-to-admin|edit|view` and any ClusterRole a user labels so.

use std::collections::BTreeMap;

use k8s_openapi::api::rbac::v1::{
    AggregationRule, ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use super::RBAC_GROUP;
use super::policy::{CLUSTER_ROLE_KIND, GROUP_KIND};
use super::user::{
    SYSTEM_AUTHENTICATED, SYSTEM_MASTERS, SYSTEM_SERVICE_ACCOUNTS, SYSTEM_UNAUTHENTICATED,
};

/// Label key on every default object.
pub(crate) const BOOTSTRAPPING_LABEL: &str = "kubernetes.io/bootstrapping";
/// Value of [`BOOTSTRAPPING_LABEL`].
pub(crate) const BOOTSTRAPPING_LABEL_VALUE: &str = "rbac-defaults";
/// Annotation key on every default object; `"true"` lets the server reconcile the object.
pub(crate) const AUTOUPDATE_ANNOTATION: &str = "rbac.authorization.kubernetes.io/autoupdate";

fn metadata(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        labels: Some(BTreeMap::from([(
            BOOTSTRAPPING_LABEL.to_owned(),
            BOOTSTRAPPING_LABEL_VALUE.to_owned(),
        )])),
        annotations: Some(BTreeMap::from([(
            AUTOUPDATE_ANNOTATION.to_owned(),
            "true".to_owned(),
        )])),
        ..ObjectMeta::default()
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn resource_rule(verbs: &[&str], groups: &[&str], resources: &[&str]) -> PolicyRule {
    PolicyRule {
        verbs: strings(verbs),
        api_groups: Some(strings(groups)),
        resources: Some(strings(resources)),
        ..PolicyRule::default()
    }
}

fn url_rule(verbs: &[&str], urls: &[&str]) -> PolicyRule {
    PolicyRule {
        verbs: strings(verbs),
        non_resource_urls: Some(strings(urls)),
        ..PolicyRule::default()
    }
}

fn cluster_role(name: &str, rules: Vec<PolicyRule>) -> ClusterRole {
    ClusterRole {
        metadata: metadata(name),
        rules: Some(rules),
        aggregation_rule: None,
    }
}

/// The label that puts a ClusterRole's rules into the aggregated role `to` (`admin`, `edit`,
/// `view`): `rbac.authorization.k8s.io/aggregate-to-<to>`.
pub fn aggregate_to_label(to: &str) -> String {
    format!("rbac.authorization.k8s.io/aggregate-to-{to}")
}

/// A ClusterRole with `labels` (`"true"`) and `rules`.
fn labelled_role(name: &str, labels: &[String], rules: Vec<PolicyRule>) -> ClusterRole {
    let mut role = cluster_role(name, rules);
    if let Some(all) = role.metadata.labels.as_mut() {
        all.extend(labels.iter().map(|l| (l.clone(), "true".to_owned())));
    }
    role
}

/// The aggregated ClusterRole `name` (no rules of its own: the aggregation controller fills
/// them from the ClusterRoles labelled `aggregate-to-<name>`), itself labelled `labels`.
fn aggregated_role(name: &str, labels: &[String]) -> ClusterRole {
    let mut role = labelled_role(name, labels, Vec::new());
    role.aggregation_rule = Some(AggregationRule {
        cluster_role_selectors: Some(vec![LabelSelector {
            match_labels: Some(BTreeMap::from([(
                aggregate_to_label(name),
                "true".to_owned(),
            )])),
            ..LabelSelector::default()
        }]),
    });
    role
}

/// `get`, `list`, `watch`.
const READ: &[&str] = &["get", "list", "watch"];
/// `create`, `delete`, `deletecollection`, `patch`, `update`.
const WRITE: &[&str] = &["create", "delete", "deletecollection", "patch", "update"];
/// [`READ`] and [`WRITE`].
const READ_WRITE: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// `admin`, `edit`, `view` and the `system:aggregate-to-*` roles that feed them, as
/// `bootstrappolicy.ClusterRoles()` seeds them (the rules of the kinds this server does not
/// serve are kept, so a binding means here what it means on a cluster).
fn user_facing_roles() -> Vec<ClusterRole> {
    vec![
        aggregated_role("admin", &[]),
        aggregated_role("edit", &[aggregate_to_label("admin")]),
        aggregated_role("view", &[aggregate_to_label("edit")]),
        labelled_role(
            "system:aggregate-to-admin",
            &[aggregate_to_label("admin")],
            vec![
                resource_rule(
                    &["create"],
                    &["authorization.k8s.io"],
                    &["localsubjectaccessreviews"],
                ),
                resource_rule(
                    READ_WRITE,
                    &["rbac.authorization.k8s.io"],
                    &["rolebindings", "roles"],
                ),
            ],
        ),
        labelled_role(
            "system:aggregate-to-edit",
            &[aggregate_to_label("edit")],
            vec![
                resource_rule(
                    READ,
                    &[""],
                    &[
                        "pods/attach",
                        "pods/exec",
                        "pods/portforward",
                        "pods/proxy",
                        "secrets",
                        "services/proxy",
                    ],
                ),
                resource_rule(&["impersonate"], &[""], &["serviceaccounts"]),
                resource_rule(
                    WRITE,
                    &[""],
                    &[
                        "pods",
                        "pods/attach",
                        "pods/exec",
                        "pods/portforward",
                        "pods/proxy",
                    ],
                ),
                resource_rule(&["create"], &[""], &["pods/eviction"]),
                resource_rule(
                    WRITE,
                    &[""],
                    &[
                        "configmaps",
                        "events",
                        "persistentvolumeclaims",
                        "replicationcontrollers",
                        "replicationcontrollers/scale",
                        "secrets",
                        "serviceaccounts",
                        "services",
                        "services/proxy",
                    ],
                ),
                resource_rule(&["create"], &[""], &["serviceaccounts/token"]),
                resource_rule(
                    WRITE,
                    &["apps"],
                    &[
                        "daemonsets",
                        "deployments",
                        "deployments/rollback",
                        "deployments/scale",
                        "replicasets",
                        "replicasets/scale",
                        "statefulsets",
                        "statefulsets/scale",
                    ],
                ),
                resource_rule(WRITE, &["autoscaling"], &["horizontalpodautoscalers"]),
                resource_rule(WRITE, &["batch"], &["cronjobs", "jobs"]),
                resource_rule(WRITE, &["policy"], &["poddisruptionbudgets"]),
                resource_rule(
                    WRITE,
                    &["networking.k8s.io"],
                    &["ingresses", "networkpolicies"],
                ),
                resource_rule(READ_WRITE, &["coordination.k8s.io"], &["leases"]),
            ],
        ),
        labelled_role(
            "system:aggregate-to-view",
            &[aggregate_to_label("view")],
            vec![
                resource_rule(
                    READ,
                    &[""],
                    &[
                        "configmaps",
                        "endpoints",
                        "persistentvolumeclaims",
                        "persistentvolumeclaims/status",
                        "pods",
                        "replicationcontrollers",
                        "replicationcontrollers/scale",
                        "serviceaccounts",
                        "services",
                        "services/status",
                    ],
                ),
                resource_rule(
                    READ,
                    &[""],
                    &[
                        "bindings",
                        "events",
                        "limitranges",
                        "namespaces/status",
                        "pods/log",
                        "pods/status",
                        "replicationcontrollers/status",
                        "resourcequotas",
                        "resourcequotas/status",
                    ],
                ),
                resource_rule(READ, &[""], &["namespaces"]),
                resource_rule(READ, &["discovery.k8s.io"], &["endpointslices"]),
                resource_rule(
                    READ,
                    &["apps"],
                    &[
                        "controllerrevisions",
                        "daemonsets",
                        "daemonsets/status",
                        "deployments",
                        "deployments/scale",
                        "deployments/status",
                        "replicasets",
                        "replicasets/scale",
                        "replicasets/status",
                        "statefulsets",
                        "statefulsets/scale",
                        "statefulsets/status",
                    ],
                ),
                resource_rule(
                    READ,
                    &["autoscaling"],
                    &[
                        "horizontalpodautoscalers",
                        "horizontalpodautoscalers/status",
                    ],
                ),
                resource_rule(
                    READ,
                    &["batch"],
                    &["cronjobs", "cronjobs/status", "jobs", "jobs/status"],
                ),
                resource_rule(
                    READ,
                    &["policy"],
                    &["poddisruptionbudgets", "poddisruptionbudgets/status"],
                ),
                resource_rule(
                    READ,
                    &["networking.k8s.io"],
                    &["ingresses", "ingresses/status", "networkpolicies"],
                ),
            ],
        ),
    ]
}

fn binding_to_groups(name: &str, groups: &[&str]) -> ClusterRoleBinding {
    ClusterRoleBinding {
        metadata: metadata(name),
        role_ref: RoleRef {
            api_group: RBAC_GROUP.to_owned(),
            kind: CLUSTER_ROLE_KIND.to_owned(),
            name: name.to_owned(),
        },
        subjects: Some(
            groups
                .iter()
                .map(|g| Subject {
                    api_group: Some(RBAC_GROUP.to_owned()),
                    kind: GROUP_KIND.to_owned(),
                    name: (*g).to_owned(),
                    namespace: None,
                })
                .collect(),
        ),
    }
}

/// The default ClusterRoles, each with the bootstrapping label and autoupdate annotation.
pub fn cluster_roles() -> Vec<ClusterRole> {
    vec![
        cluster_role(
            "cluster-admin",
            vec![
                resource_rule(&["*"], &["*"], &["*"]),
                url_rule(&["*"], &["*"]),
            ],
        ),
        cluster_role(
            "system:discovery",
            vec![url_rule(
                &["get"],
                &[
                    "/api",
                    "/api/*",
                    "/apis",
                    "/apis/*",
                    "/healthz",
                    "/livez",
                    "/openapi",
                    "/openapi/*",
                    "/readyz",
                    "/version",
                    "/version/",
                ],
            )],
        ),
        cluster_role(
            "system:basic-user",
            vec![
                resource_rule(
                    &["create"],
                    &["authorization.k8s.io"],
                    &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                ),
                resource_rule(
                    &["create"],
                    &["authentication.k8s.io"],
                    &["selfsubjectreviews"],
                ),
            ],
        ),
        cluster_role(
            "system:public-info-viewer",
            vec![url_rule(
                &["get"],
                &["/healthz", "/livez", "/readyz", "/version", "/version/"],
            )],
        ),
        cluster_role(
            "system:service-account-issuer-discovery",
            vec![url_rule(
                &["get"],
                &["/.well-known/openid-configuration", "/openid/v1/jwks"],
            )],
        ),
    ]
    .into_iter()
    .chain(user_facing_roles())
    .collect()
}

/// The default ClusterRoleBindings, each named after its ClusterRole and binding groups.
pub fn cluster_role_bindings() -> Vec<ClusterRoleBinding> {
    vec![
        binding_to_groups("cluster-admin", &[SYSTEM_MASTERS]),
        binding_to_groups("system:discovery", &[SYSTEM_AUTHENTICATED]),
        binding_to_groups("system:basic-user", &[SYSTEM_AUTHENTICATED]),
        binding_to_groups(
            "system:public-info-viewer",
            &[SYSTEM_AUTHENTICATED, SYSTEM_UNAUTHENTICATED],
        ),
        binding_to_groups(
            "system:service-account-issuer-discovery",
            &[SYSTEM_SERVICE_ACCOUNTS],
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rbac::policy::Policy;
    use crate::rbac::user::UserInfo;
    use crate::rbac::{Attributes, Decision};

    fn policy() -> Policy {
        let mut policy = Policy::new();
        for role in cluster_roles() {
            policy.apply_cluster_role(&role);
        }
        for binding in cluster_role_bindings() {
            policy.apply_cluster_role_binding(&binding);
        }
        policy
    }

    fn check(user: &UserInfo, attrs: Attributes, expected: &str) {
        let got = match policy().authorize(user, &attrs) {
            Decision::Allow { reason } => format!("allow {reason}"),
            Decision::NoOpinion { reason, .. } => format!("no opinion {reason}"),
        };
        assert_eq!(got, expected, "{attrs:?}");
    }

    #[test]
    fn every_default_object_has_the_label_and_annotation() {
        let metas = cluster_roles()
            .into_iter()
            .map(|r| r.metadata)
            .chain(cluster_role_bindings().into_iter().map(|b| b.metadata));
        for meta in metas {
            let labels = meta.labels.unwrap_or_default();
            let annotations = meta.annotations.unwrap_or_default();
            assert_eq!(
                labels
                    .get("kubernetes.io/bootstrapping")
                    .map(String::as_str),
                Some("rbac-defaults")
            );
            assert_eq!(
                annotations
                    .get("rbac.authorization.kubernetes.io/autoupdate")
                    .map(String::as_str),
                Some("true")
            );
        }
    }

    #[test]
    fn every_binding_refers_to_the_cluster_role_of_its_name() {
        // The user-facing roles are for users to bind; Kubernetes binds none of them.
        let user_facing: Vec<Option<String>> = user_facing_roles()
            .into_iter()
            .map(|r| r.metadata.name)
            .collect();
        let roles: Vec<Option<String>> = cluster_roles()
            .into_iter()
            .map(|r| r.metadata.name)
            .filter(|name| !user_facing.contains(name))
            .collect();
        let bindings: Vec<Option<String>> = cluster_role_bindings()
            .into_iter()
            .map(|b| {
                assert_eq!(b.role_ref.kind, "ClusterRole");
                assert_eq!(b.role_ref.api_group, "rbac.authorization.k8s.io");
                assert_eq!(b.metadata.name.as_deref(), Some(b.role_ref.name.as_str()));
                b.metadata.name
            })
            .collect();
        assert_eq!(roles, bindings);
    }

    #[test]
    fn default_policy_grants_what_kubernetes_grants() {
        let sa = UserInfo::service_account("p", "sa", "uid");
        let anon = UserInfo::anonymous();
        let master = UserInfo::new("admin", ["system:masters"]);
        let by = |role: &str, group: &str| {
            format!(
                r#"allow RBAC: allowed by ClusterRoleBinding "{role}" of ClusterRole "{role}" to Group "{group}""#
            )
        };
        check(
            &sa,
            Attributes::non_resource("get", "/apis/rbac.authorization.k8s.io/v1"),
            &by("system:discovery", "system:authenticated"),
        );
        check(
            &sa,
            Attributes::non_resource("get", "/version"),
            &by("system:discovery", "system:authenticated"),
        );
        check(
            &sa,
            Attributes::non_resource("post", "/version"),
            "no opinion ",
        );
        check(
            &sa,
            Attributes::non_resource("get", "/metrics"),
            "no opinion ",
        );
        check(
            &sa,
            Attributes::resource(
                "create",
                "",
                "authorization.k8s.io",
                "selfsubjectaccessreviews",
            )
            .into(),
            &by("system:basic-user", "system:authenticated"),
        );
        check(
            &sa,
            Attributes::resource("create", "", "authentication.k8s.io", "selfsubjectreviews")
                .into(),
            &by("system:basic-user", "system:authenticated"),
        );
        check(
            &sa,
            Attributes::non_resource("get", "/openid/v1/jwks"),
            &by(
                "system:service-account-issuer-discovery",
                "system:serviceaccounts",
            ),
        );
        check(
            &sa,
            Attributes::resource("list", "p", "", "pods").into(),
            "no opinion ",
        );
        check(
            &anon,
            Attributes::non_resource("get", "/healthz"),
            &by("system:public-info-viewer", "system:unauthenticated"),
        );
        check(
            &anon,
            Attributes::non_resource("get", "/api"),
            "no opinion ",
        );
        check(
            &anon,
            Attributes::non_resource("get", "/openid/v1/jwks"),
            "no opinion ",
        );
        check(
            &master,
            Attributes::resource("delete", "p", "", "secrets").into(),
            "allow ",
        );
        let (rules, errors) = policy().rules_for(&master, "p");
        assert!(errors.is_empty());
        assert_eq!(rules, cluster_roles()[0].rules.clone().unwrap_or_default());
    }
}

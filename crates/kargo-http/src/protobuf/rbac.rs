//! `rbac.authorization.k8s.io/v1` kinds: `Role`, `ClusterRole`, `RoleBinding` and
//! `ClusterRoleBinding`.
//!
//! The cluster-scoped kinds have the same fields as the namespaced ones (plus `aggregationRule` on
//! `ClusterRole`), so each pair shares one converter that takes the fields.

use k8s_pb::api::rbac::v1::{
    AggregationRule, ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef,
    Subject,
};
use k8s_pb::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

use super::json::{JsonObject, embedded, list, string, strings};
use super::meta::{label_selector, object_meta};

/// The `Role` kind (after the type meta).
pub(super) fn role(role: &Role, object: JsonObject) -> JsonObject {
    rules_object(&role.metadata, &role.rules, object)
}

/// The `ClusterRole` kind (after the type meta).
pub(super) fn cluster_role(role: &ClusterRole, object: JsonObject) -> JsonObject {
    rules_object(&role.metadata, &role.rules, object).pointer(
        "aggregationRule",
        role.aggregation_rule.as_ref().map(aggregation_rule),
    )
}

fn rules_object(
    metadata: &Option<ObjectMeta>,
    rules: &[PolicyRule],
    object: JsonObject,
) -> JsonObject {
    object
        .field("metadata", embedded(metadata, object_meta))
        .field("rules", list(rules, policy_rule))
}

fn policy_rule(rule: &PolicyRule) -> Value {
    JsonObject::new()
        .field("verbs", strings(&rule.verbs))
        .omitempty("apiGroups", strings(&rule.api_groups))
        .omitempty("resources", strings(&rule.resources))
        .omitempty("resourceNames", strings(&rule.resource_names))
        .omitempty("nonResourceURLs", strings(&rule.non_resource_ur_ls))
        .build()
}

fn aggregation_rule(rule: &AggregationRule) -> Value {
    JsonObject::new()
        .omitempty(
            "clusterRoleSelectors",
            list(&rule.cluster_role_selectors, label_selector),
        )
        .build()
}

/// The `RoleBinding` kind (after the type meta).
pub(super) fn role_binding(binding: &RoleBinding, object: JsonObject) -> JsonObject {
    binding_object(
        &binding.metadata,
        &binding.subjects,
        &binding.role_ref,
        object,
    )
}

/// The `ClusterRoleBinding` kind (after the type meta).
pub(super) fn cluster_role_binding(binding: &ClusterRoleBinding, object: JsonObject) -> JsonObject {
    binding_object(
        &binding.metadata,
        &binding.subjects,
        &binding.role_ref,
        object,
    )
}

fn binding_object(
    metadata: &Option<ObjectMeta>,
    subjects: &[Subject],
    role_ref: &Option<RoleRef>,
    object: JsonObject,
) -> JsonObject {
    object
        .field("metadata", embedded(metadata, object_meta))
        .omitempty("subjects", list(subjects, subject))
        .field("roleRef", embedded(role_ref, self::role_ref))
}

fn subject(subject: &Subject) -> Value {
    JsonObject::new()
        .field("kind", string(&subject.kind))
        .omitempty("apiGroup", string(&subject.api_group))
        .field("name", string(&subject.name))
        .omitempty("namespace", string(&subject.namespace))
        .build()
}

fn role_ref(role_ref: &RoleRef) -> Value {
    JsonObject::new()
        .field("apiGroup", string(&role_ref.api_group))
        .field("kind", string(&role_ref.kind))
        .field("name", string(&role_ref.name))
        .build()
}

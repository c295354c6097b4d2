//! `meta.k8s.io/v1` (apimachinery) types: `ObjectMeta`, label and field selectors, and the
//! `DeleteOptions` kind.

use k8s_pb::apimachinery::pkg::apis::meta::v1::{
    DeleteOptions, FieldSelectorRequirement, LabelSelector, LabelSelectorRequirement, ObjectMeta,
    OwnerReference, Preconditions,
};
use serde_json::Value;

use super::json::{JsonObject, int64, list, string, string_map, strings, time};

/// `metav1.ObjectMeta`. `managedFields` is not converted: clients never send it on create.
pub(super) fn object_meta(meta: &ObjectMeta) -> Value {
    JsonObject::new()
        .omitempty("name", string(&meta.name))
        .omitempty("generateName", string(&meta.generate_name))
        .omitempty("namespace", string(&meta.namespace))
        .omitempty("selfLink", string(&meta.self_link))
        .omitempty("uid", string(&meta.uid))
        .omitempty("resourceVersion", string(&meta.resource_version))
        .omitempty("generation", int64(meta.generation))
        // A struct despite its `omitempty` tag: Go always prints it, as `null` when zero.
        .field("creationTimestamp", time(meta.creation_timestamp.as_ref()))
        .pointer(
            "deletionTimestamp",
            meta.deletion_timestamp.as_ref().map(|t| time(Some(t))),
        )
        .pointer(
            "deletionGracePeriodSeconds",
            meta.deletion_grace_period_seconds.map(Value::from),
        )
        .omitempty("labels", string_map(&meta.labels))
        .omitempty("annotations", string_map(&meta.annotations))
        .omitempty(
            "ownerReferences",
            list(&meta.owner_references, owner_reference),
        )
        .omitempty("finalizers", strings(&meta.finalizers))
        .build()
}

fn owner_reference(owner: &OwnerReference) -> Value {
    JsonObject::new()
        .field("apiVersion", string(&owner.api_version))
        .field("kind", string(&owner.kind))
        .field("name", string(&owner.name))
        .field("uid", string(&owner.uid))
        .pointer("controller", owner.controller.map(Value::Bool))
        .pointer(
            "blockOwnerDeletion",
            owner.block_owner_deletion.map(Value::Bool),
        )
        .build()
}

/// `metav1.LabelSelector`.
pub(super) fn label_selector(selector: &LabelSelector) -> Value {
    JsonObject::new()
        .omitempty("matchLabels", string_map(&selector.match_labels))
        .omitempty(
            "matchExpressions",
            list(&selector.match_expressions, label_selector_requirement),
        )
        .build()
}

/// `metav1.LabelSelectorRequirement`.
pub(super) fn label_selector_requirement(requirement: &LabelSelectorRequirement) -> Value {
    selector_requirement(&requirement.key, &requirement.operator, &requirement.values)
}

/// `metav1.FieldSelectorRequirement`.
pub(super) fn field_selector_requirement(requirement: &FieldSelectorRequirement) -> Value {
    selector_requirement(&requirement.key, &requirement.operator, &requirement.values)
}

/// Label and field selector requirements have the same fields and JSON tags.
fn selector_requirement(
    key: &Option<String>,
    operator: &Option<String>,
    values: &[String],
) -> Value {
    JsonObject::new()
        .field("key", string(key))
        .field("operator", string(operator))
        .omitempty("values", strings(values))
        .build()
}

/// The `DeleteOptions` kind (after the type meta).
pub(super) fn delete_options(options: &DeleteOptions, object: JsonObject) -> JsonObject {
    object
        .pointer(
            "gracePeriodSeconds",
            options.grace_period_seconds.map(Value::from),
        )
        .pointer(
            "preconditions",
            options.preconditions.as_ref().map(preconditions),
        )
        .pointer(
            "orphanDependents",
            options.orphan_dependents.map(Value::Bool),
        )
        .pointer(
            "propagationPolicy",
            options.propagation_policy.clone().map(Value::String),
        )
        .omitempty("dryRun", strings(&options.dry_run))
        .pointer(
            "ignoreStoreReadErrorWithClusterBreakingPotential",
            options
                .ignore_store_read_error_with_cluster_breaking_potential
                .map(Value::Bool),
        )
}

fn preconditions(preconditions: &Preconditions) -> Value {
    JsonObject::new()
        .pointer("uid", preconditions.uid.clone().map(Value::String))
        .pointer(
            "resourceVersion",
            preconditions.resource_version.clone().map(Value::String),
        )
        .build()
}

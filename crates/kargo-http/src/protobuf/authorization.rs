//! `authorization.k8s.io/v1` kinds: `SelfSubjectAccessReview`, `SubjectAccessReview`,
//! `LocalSubjectAccessReview` and `SelfSubjectRulesReview`.

use k8s_pb::api::authorization::v1::{
    FieldSelectorAttributes, LabelSelectorAttributes, LocalSubjectAccessReview,
    NonResourceAttributes, NonResourceRule, ResourceAttributes, ResourceRule,
    SelfSubjectAccessReview, SelfSubjectAccessReviewSpec, SelfSubjectRulesReview,
    SelfSubjectRulesReviewSpec, SubjectAccessReview, SubjectAccessReviewSpec,
    SubjectAccessReviewStatus, SubjectRulesReviewStatus,
};
use k8s_pb::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

use super::json::{JsonObject, boolean, embedded, list, map, string, strings};
use super::meta::{field_selector_requirement, label_selector_requirement, object_meta};

/// The `SelfSubjectAccessReview` kind (after the type meta).
pub(super) fn self_subject_access_review(
    review: &SelfSubjectAccessReview,
    object: JsonObject,
) -> JsonObject {
    object
        .field("metadata", embedded(&review.metadata, object_meta))
        .field(
            "spec",
            embedded(&review.spec, self_subject_access_review_spec),
        )
        .field(
            "status",
            embedded(&review.status, subject_access_review_status),
        )
}

fn self_subject_access_review_spec(spec: &SelfSubjectAccessReviewSpec) -> Value {
    attributes(
        JsonObject::new(),
        &spec.resource_attributes,
        &spec.non_resource_attributes,
    )
    .build()
}

/// The two attribute fields that open both access review specs.
fn attributes(
    object: JsonObject,
    resource: &Option<ResourceAttributes>,
    non_resource: &Option<NonResourceAttributes>,
) -> JsonObject {
    object
        .pointer(
            "resourceAttributes",
            resource.as_ref().map(resource_attributes),
        )
        .pointer(
            "nonResourceAttributes",
            non_resource.as_ref().map(non_resource_attributes),
        )
}

/// The `SubjectAccessReview` kind (after the type meta).
pub(super) fn subject_access_review(
    review: &SubjectAccessReview,
    object: JsonObject,
) -> JsonObject {
    access_review_object(&review.metadata, &review.spec, &review.status, object)
}

/// The `LocalSubjectAccessReview` kind (after the type meta): the same fields as
/// `SubjectAccessReview`.
pub(super) fn local_subject_access_review(
    review: &LocalSubjectAccessReview,
    object: JsonObject,
) -> JsonObject {
    access_review_object(&review.metadata, &review.spec, &review.status, object)
}

fn access_review_object(
    metadata: &Option<ObjectMeta>,
    spec: &Option<SubjectAccessReviewSpec>,
    status: &Option<SubjectAccessReviewStatus>,
    object: JsonObject,
) -> JsonObject {
    object
        .field("metadata", embedded(metadata, object_meta))
        .field("spec", embedded(spec, subject_access_review_spec))
        .field("status", embedded(status, subject_access_review_status))
}

fn subject_access_review_spec(spec: &SubjectAccessReviewSpec) -> Value {
    attributes(
        JsonObject::new(),
        &spec.resource_attributes,
        &spec.non_resource_attributes,
    )
    .omitempty("user", string(&spec.user))
    .omitempty("groups", strings(&spec.groups))
    .omitempty("extra", map(&spec.extra, |value| strings(&value.items)))
    .omitempty("uid", string(&spec.uid))
    .build()
}

fn resource_attributes(attributes: &ResourceAttributes) -> Value {
    JsonObject::new()
        .omitempty("namespace", string(&attributes.namespace))
        .omitempty("verb", string(&attributes.verb))
        .omitempty("group", string(&attributes.group))
        .omitempty("version", string(&attributes.version))
        .omitempty("resource", string(&attributes.resource))
        .omitempty("subresource", string(&attributes.subresource))
        .omitempty("name", string(&attributes.name))
        .pointer(
            "fieldSelector",
            attributes
                .field_selector
                .as_ref()
                .map(field_selector_attributes),
        )
        .pointer(
            "labelSelector",
            attributes
                .label_selector
                .as_ref()
                .map(label_selector_attributes),
        )
        .build()
}

fn field_selector_attributes(attributes: &FieldSelectorAttributes) -> Value {
    JsonObject::new()
        .omitempty("rawSelector", string(&attributes.raw_selector))
        .omitempty(
            "requirements",
            list(&attributes.requirements, field_selector_requirement),
        )
        .build()
}

fn label_selector_attributes(attributes: &LabelSelectorAttributes) -> Value {
    JsonObject::new()
        .omitempty("rawSelector", string(&attributes.raw_selector))
        .omitempty(
            "requirements",
            list(&attributes.requirements, label_selector_requirement),
        )
        .build()
}

fn non_resource_attributes(attributes: &NonResourceAttributes) -> Value {
    JsonObject::new()
        .omitempty("path", string(&attributes.path))
        .omitempty("verb", string(&attributes.verb))
        .build()
}

fn subject_access_review_status(status: &SubjectAccessReviewStatus) -> Value {
    JsonObject::new()
        .field("allowed", boolean(status.allowed))
        .omitempty("denied", boolean(status.denied))
        .omitempty("reason", string(&status.reason))
        .omitempty("evaluationError", string(&status.evaluation_error))
        .build()
}

/// The `SelfSubjectRulesReview` kind (after the type meta).
pub(super) fn self_subject_rules_review(
    review: &SelfSubjectRulesReview,
    object: JsonObject,
) -> JsonObject {
    object
        .field("metadata", embedded(&review.metadata, object_meta))
        .field(
            "spec",
            embedded(&review.spec, self_subject_rules_review_spec),
        )
        .field(
            "status",
            embedded(&review.status, subject_rules_review_status),
        )
}

fn self_subject_rules_review_spec(spec: &SelfSubjectRulesReviewSpec) -> Value {
    JsonObject::new()
        .omitempty("namespace", string(&spec.namespace))
        .build()
}

fn subject_rules_review_status(status: &SubjectRulesReviewStatus) -> Value {
    JsonObject::new()
        .field("resourceRules", list(&status.resource_rules, resource_rule))
        .field(
            "nonResourceRules",
            list(&status.non_resource_rules, non_resource_rule),
        )
        .field("incomplete", boolean(status.incomplete))
        .omitempty("evaluationError", string(&status.evaluation_error))
        .build()
}

fn resource_rule(rule: &ResourceRule) -> Value {
    JsonObject::new()
        .field("verbs", strings(&rule.verbs))
        .omitempty("apiGroups", strings(&rule.api_groups))
        .omitempty("resources", strings(&rule.resources))
        .omitempty("resourceNames", strings(&rule.resource_names))
        .build()
}

fn non_resource_rule(rule: &NonResourceRule) -> Value {
    JsonObject::new()
        .field("verbs", strings(&rule.verbs))
        .omitempty("nonResourceURLs", strings(&rule.non_resource_ur_ls))
        .build()
}

//! Core (`v1`) kinds: `Namespace`, `ServiceAccount`, `Secret` and `ConfigMap`.

use k8s_pb::api::core::v1::{
    ConfigMap, LocalObjectReference, Namespace, NamespaceCondition, NamespaceSpec, NamespaceStatus,
    ObjectReference, Secret, ServiceAccount,
};
use serde_json::Value;

use super::json::{JsonObject, bytes_map, embedded, list, string, string_map, strings, time};
use super::meta::object_meta;

/// The `Namespace` kind (after the type meta).
pub(super) fn namespace(namespace: &Namespace, object: JsonObject) -> JsonObject {
    object
        .field("metadata", embedded(&namespace.metadata, object_meta))
        .field("spec", embedded(&namespace.spec, namespace_spec))
        .field("status", embedded(&namespace.status, namespace_status))
}

fn namespace_spec(spec: &NamespaceSpec) -> Value {
    JsonObject::new()
        .omitempty("finalizers", strings(&spec.finalizers))
        .build()
}

fn namespace_status(status: &NamespaceStatus) -> Value {
    JsonObject::new()
        .omitempty("phase", string(&status.phase))
        .omitempty("conditions", list(&status.conditions, namespace_condition))
        .build()
}

fn namespace_condition(condition: &NamespaceCondition) -> Value {
    JsonObject::new()
        .field("type", string(&condition.r#type))
        .field("status", string(&condition.status))
        .field(
            "lastTransitionTime",
            time(condition.last_transition_time.as_ref()),
        )
        .omitempty("reason", string(&condition.reason))
        .omitempty("message", string(&condition.message))
        .build()
}

/// The `ServiceAccount` kind (after the type meta).
pub(super) fn service_account(account: &ServiceAccount, object: JsonObject) -> JsonObject {
    object
        .field("metadata", embedded(&account.metadata, object_meta))
        .omitempty("secrets", list(&account.secrets, object_reference))
        .omitempty(
            "imagePullSecrets",
            list(&account.image_pull_secrets, local_object_reference),
        )
        .pointer(
            "automountServiceAccountToken",
            account.automount_service_account_token.map(Value::Bool),
        )
}

fn object_reference(reference: &ObjectReference) -> Value {
    JsonObject::new()
        .omitempty("kind", string(&reference.kind))
        .omitempty("namespace", string(&reference.namespace))
        .omitempty("name", string(&reference.name))
        .omitempty("uid", string(&reference.uid))
        .omitempty("apiVersion", string(&reference.api_version))
        .omitempty("resourceVersion", string(&reference.resource_version))
        .omitempty("fieldPath", string(&reference.field_path))
        .build()
}

fn local_object_reference(reference: &LocalObjectReference) -> Value {
    JsonObject::new()
        .omitempty("name", string(&reference.name))
        .build()
}

/// The `Secret` kind (after the type meta).
pub(super) fn secret(secret: &Secret, object: JsonObject) -> JsonObject {
    object
        .field("metadata", embedded(&secret.metadata, object_meta))
        .pointer("immutable", secret.immutable.map(Value::Bool))
        .omitempty("data", bytes_map(&secret.data))
        .omitempty("stringData", string_map(&secret.string_data))
        .omitempty("type", string(&secret.r#type))
}

/// The `ConfigMap` kind (after the type meta).
pub(super) fn config_map(config_map: &ConfigMap, object: JsonObject) -> JsonObject {
    object
        .field("metadata", embedded(&config_map.metadata, object_meta))
        .pointer("immutable", config_map.immutable.map(Value::Bool))
        .omitempty("data", string_map(&config_map.data))
        .omitempty("binaryData", bytes_map(&config_map.binary_data))
}

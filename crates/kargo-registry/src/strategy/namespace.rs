//! Namespaces: `spec.finalizers` and `status` owned by the server, the
//! `kubernetes.io/metadata.name` label, and the `status.phase` field selector.

use kargo_api::resources::ResourceType;
use kargo_api::well_known::METADATA_NAME_LABEL;
use serde_json::{Map, Value};

use super::{Decoded, Strategy, decode_typed};
use crate::delete::NAMESPACE_FINALIZER;
use crate::object::{Meta, meta_mut};
use crate::status::Result;

/// Namespaces.
pub(super) struct NamespaceStrategy;

impl Strategy for NamespaceStrategy {
    fn decode(&self, rt: &ResourceType, body: Value) -> Result<Decoded> {
        decode_typed::<k8s_openapi::api::core::v1::Namespace>(rt, body)
    }

    fn prepare_create(&self, obj: &mut Value) {
        if let Some(map) = obj.as_object_mut() {
            map.insert(
                "spec".into(),
                serde_json::json!({"finalizers": [NAMESPACE_FINALIZER]}),
            );
            map.insert("status".into(), serde_json::json!({"phase": "Active"}));
        }
        set_name_label(obj);
    }

    fn prepare_update(&self, obj: &mut Value, old: &Value) {
        // spec.finalizers change only through /finalize, status only through /status.
        if let Some(map) = obj.as_object_mut() {
            for field in ["spec", "status"] {
                match old.get(field) {
                    Some(v) => map.insert(field.into(), v.clone()),
                    None => map.remove(field),
                };
            }
        }
        set_name_label(obj);
    }

    fn field(&self, obj: &Value, field: &str) -> Option<Option<String>> {
        (field == "status.phase").then(|| {
            obj.pointer("/status/phase")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
    }

    fn returns_deleted_object(&self) -> bool {
        true
    }
}

/// Sets the `kubernetes.io/metadata.name` label to the namespace's name, as kube-apiserver does
/// on every write.
fn set_name_label(obj: &mut Value) {
    let name = obj.name().to_owned();
    let labels = meta_mut(obj)
        .entry("labels")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(labels) = labels.as_object_mut() {
        labels.insert(METADATA_NAME_LABEL.into(), Value::String(name));
    }
}

//! Events (`core/v1`) and Endpoints: typed decoding, and the field selectors kubectl uses to find
//! an object's events (`involvedObject.kind=ConfigMap,involvedObject.name=x,...`). The server
//! runs no Services, so nothing fills Endpoints; they are served so that kubectl's defaults
//! (`apply --prune`'s allowlist) find the kind.

use kargo_api::field::FieldError;
use kargo_api::resources::ResourceType;
use serde_json::Value;

use super::{Decoded, Strategy, decode_typed};
use crate::status::Result;

/// The field-selector fields of an Event besides `metadata.*`, as kube-apiserver's
/// `EventToSelectableFields`: each the path of a string field of the object.
const EVENT_FIELDS: &[&str] = &[
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
];

/// Events.
pub(super) struct EventStrategy;

impl Strategy for EventStrategy {
    fn decode(&self, rt: &ResourceType, body: Value) -> Result<Decoded> {
        decode_typed::<k8s_openapi::api::core::v1::Event>(rt, body)
    }

    fn validate(&self, obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let involved = obj.get("involvedObject");
        let namespace = obj.pointer("/metadata/namespace").and_then(Value::as_str);
        let involved_namespace = involved
            .and_then(|o| o.get("namespace"))
            .and_then(Value::as_str)
            .unwrap_or("");
        // kube-apiserver: an event about a namespaced object lives in that object's namespace.
        if !involved_namespace.is_empty() && Some(involved_namespace) != namespace {
            errors.push(FieldError::invalid(
                "involvedObject.namespace",
                kargo_api::field::BadValue::string(involved_namespace),
                "does not match event.namespace",
            ));
        }
        errors
    }

    fn field(&self, obj: &Value, field: &str) -> Option<Option<String>> {
        if !EVENT_FIELDS.contains(&field) {
            return None;
        }
        let value = match field {
            // `source` is the source's component, as kube-apiserver selects it.
            "source" => obj.pointer("/source/component"),
            other => obj.pointer(&format!("/{}", other.replace('.', "/"))),
        };
        Some(Some(value.and_then(Value::as_str).unwrap_or("").to_owned()))
    }
}

/// Endpoints.
pub(super) struct EndpointsStrategy;

impl Strategy for EndpointsStrategy {
    fn decode(&self, rt: &ResourceType, body: Value) -> Result<Decoded> {
        decode_typed::<k8s_openapi::api::core::v1::Endpoints>(rt, body)
    }
}

//! ConfigMaps: key rules, no key in both `data` and `binaryData`, immutability.

use kargo_api::field::{BadValue, FieldError};
use kargo_api::resources::ResourceType;
use serde_json::Value;

use super::{
    Decoded, ObjectType, Strategy, data_keys, data_object_type, decode_typed, validate_config_keys,
};
use crate::status::Result;

/// ConfigMaps.
pub(super) struct ConfigMapStrategy;

impl Strategy for ConfigMapStrategy {
    fn decode(&self, rt: &ResourceType, body: Value) -> Result<Decoded> {
        decode_typed::<k8s_openapi::api::core::v1::ConfigMap>(rt, body)
    }

    fn object_type(&self, spath: &str) -> ObjectType {
        data_object_type(spath)
    }

    fn validate(&self, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
        let mut errors = Vec::new();
        validate_config_keys(obj, "data", &mut errors);
        validate_config_keys(obj, "binaryData", &mut errors);
        let binary = data_keys(obj, "binaryData");
        for key in data_keys(obj, "data") {
            if binary.contains(&key) {
                errors.push(FieldError::invalid(
                    format!("data[{key}]"),
                    BadValue::string(&key),
                    "duplicate of key present in binaryData",
                ));
            }
        }
        if let Some(old) = old
            && old.get("immutable").and_then(Value::as_bool) == Some(true)
        {
            for field in ["data", "binaryData"] {
                if old.get(field) != obj.get(field) {
                    errors.push(FieldError::forbidden(
                        field,
                        "field is immutable when `immutable` is set",
                    ));
                }
            }
        }
        errors
    }
}

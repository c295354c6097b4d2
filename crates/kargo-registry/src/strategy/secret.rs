//! Secrets: `stringData` folded into `data`, the default type, size and key rules, the
//! immutability of `type` (and of `data` when `immutable` is set), and what a
//! service-account-token Secret must carry.

use kargo_api::field::{BadValue, FieldError};
use kargo_api::resources::ResourceType;
use kargo_api::well_known::{
    OPAQUE_SECRET_TYPE, SERVICE_ACCOUNT_NAME_ANNOTATION, SERVICE_ACCOUNT_TOKEN_TYPE,
};
use serde_json::{Map, Value};

use super::{Decoded, ObjectType, Strategy, data_object_type, decode_typed, validate_config_keys};
use crate::object::Meta;
use crate::status::Result;

const MAX_SECRET_SIZE: usize = 1024 * 1024;

/// Secrets.
pub(super) struct SecretStrategy;

impl SecretStrategy {
    /// Folds write-only `stringData` into `data` (base64), as the API server's conversion does.
    fn fold_string_data(obj: &mut Value) {
        use base64::Engine;
        let Some(map) = obj.as_object_mut() else {
            return;
        };
        let Some(Value::Object(string_data)) = map.remove("stringData") else {
            return;
        };
        let data = map
            .entry("data")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(data) = data.as_object_mut() {
            for (k, v) in string_data {
                let text = v.as_str().unwrap_or_default();
                data.insert(
                    k,
                    Value::String(base64::engine::general_purpose::STANDARD.encode(text)),
                );
            }
        }
    }
}

fn decoded_len(obj: &Value, field: &str) -> usize {
    use base64::Engine;
    obj.get(field)
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    k.len()
                        + v.as_str()
                            .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
                            .map_or(0, |b| b.len())
                })
                .sum()
        })
        .unwrap_or(0)
}

fn string_field<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get(field).and_then(Value::as_str)
}

impl Strategy for SecretStrategy {
    fn decode(&self, rt: &ResourceType, body: Value) -> Result<Decoded> {
        let mut decoded = decode_typed::<k8s_openapi::api::core::v1::Secret>(rt, body)?;
        SecretStrategy::fold_string_data(&mut decoded.object);
        Ok(decoded)
    }

    fn object_type(&self, spath: &str) -> ObjectType {
        data_object_type(spath)
    }

    fn prepare_create(&self, obj: &mut Value) {
        if let Some(map) = obj.as_object_mut() {
            let missing = map
                .get("type")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty);
            if missing {
                map.insert("type".into(), Value::String(OPAQUE_SECRET_TYPE.into()));
            }
        }
    }

    fn prepare_update(&self, obj: &mut Value, old: &Value) {
        if let Some(map) = obj.as_object_mut() {
            let missing = map
                .get("type")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty);
            if missing && let Some(t) = old.get("type") {
                map.insert("type".into(), t.clone());
            }
        }
    }

    fn validate(&self, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
        let mut errors = Vec::new();
        validate_config_keys(obj, "data", &mut errors);
        if decoded_len(obj, "data") > MAX_SECRET_SIZE {
            errors.push(FieldError::too_long("data", Some(MAX_SECRET_SIZE)));
        }
        let kind = string_field(obj, "type").unwrap_or(OPAQUE_SECRET_TYPE);
        if kind == SERVICE_ACCOUNT_TOKEN_TYPE
            && obj
                .annotation(SERVICE_ACCOUNT_NAME_ANNOTATION)
                .is_none_or(str::is_empty)
        {
            errors.push(FieldError::required(
                format!("metadata.annotations[{SERVICE_ACCOUNT_NAME_ANNOTATION}]"),
                "",
            ));
        }
        if let Some(old) = old {
            let old_type = string_field(old, "type").unwrap_or(OPAQUE_SECRET_TYPE);
            if old_type != kind {
                errors.push(FieldError::invalid(
                    "type",
                    BadValue::string(kind),
                    "field is immutable",
                ));
            }
            if old.get("immutable").and_then(Value::as_bool) == Some(true) {
                if old.get("data") != obj.get("data") {
                    errors.push(FieldError::forbidden(
                        "data",
                        "field is immutable when `immutable` is set",
                    ));
                }
                if obj.get("immutable").and_then(Value::as_bool) != Some(true) {
                    errors.push(FieldError::forbidden(
                        "immutable",
                        "field is immutable when `immutable` is set",
                    ));
                }
            }
        }
        errors
    }

    fn field(&self, obj: &Value, field: &str) -> Option<Option<String>> {
        (field == "type").then(|| string_field(obj, "type").map(str::to_owned))
    }
}

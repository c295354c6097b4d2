//! Per-kind rules: decoding and normalizing a body, validation, what create and update may change,
//! field selectors and strategic-merge list strategies. One [`Strategy`] per kind; everything that
//! is the same for every kind lives in the registry itself.

use std::collections::BTreeMap;

use kargo_api::field::{BadValue, FieldError};
use kargo_api::names;
use kargo_api::patch::ListStrategy;
use kargo_api::resources::{self as res, NameRule, ResourceType};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::object::{Meta, meta_mut};
use crate::status::{Result, Status};

/// How a create or update treats fields the kind does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    /// Drop them silently.
    Ignore,
    /// Drop them and warn (the default, as kube-apiserver's).
    #[default]
    Warn,
    /// Reject the request.
    Strict,
}

impl FieldValidation {
    /// Parses the `fieldValidation` query parameter.
    pub fn parse(value: Option<&str>) -> Result<FieldValidation> {
        match value {
            None | Some("") | Some("Warn") => Ok(FieldValidation::Warn),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some("Strict") => Ok(FieldValidation::Strict),
            Some(other) => Err(Status::bad_request(format!(
                "fieldValidation parameter unsupported: {other}. Must be one of: Ignore, Warn, Strict"
            ))),
        }
    }
}

/// The result of decoding a body for a kind: the normalized object and the unknown fields found.
pub struct Decoded {
    /// The object with only the fields the kind knows (and any field of an open schema).
    pub object: Value,
    /// Paths of the fields that were dropped (`spec.foo`).
    pub unknown: Vec<String>,
}

/// Rules of one kind.
pub trait Strategy: Send + Sync {
    /// Decodes a body into the kind's canonical JSON, reporting unknown fields.
    fn decode(&self, rt: &ResourceType, body: Value) -> Result<Decoded>;

    /// Kind-specific validation of a new object (or of an update, with the old object).
    fn validate(&self, _obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
        Vec::new()
    }

    /// Sets defaults and fields the server owns on create.
    fn prepare_create(&self, _obj: &mut Value) {}

    /// Carries over what an update may not change.
    fn prepare_update(&self, _obj: &mut Value, _old: &Value) {}

    /// Extra field-selector fields and their values.
    fn field(&self, _obj: &Value, _field: &str) -> Option<Option<String>> {
        None
    }

    /// The list strategy of a field path, for strategic merge patches; `None` if the kind takes
    /// no strategic merge patch (custom resources).
    fn list_strategy(&self, path: &str) -> Option<ListStrategy> {
        Some(kargo_api::patch::object_meta_list_strategy(path))
    }

    /// Whether `metadata.generation` is tracked (custom resources).
    fn tracks_generation(&self) -> bool {
        false
    }

    /// Whether an update may omit `resourceVersion`.
    fn allows_unconditional_update(&self) -> bool {
        true
    }

    /// Whether a deletion answers with the deleted object (else a `Status`).
    fn returns_deleted_object(&self) -> bool {
        false
    }
}

/// The strategy of a resource type.
pub fn for_type(rt: &ResourceType) -> &'static dyn Strategy {
    match (rt.group, rt.kind) {
        ("", "Namespace") => &NamespaceStrategy,
        ("", "ServiceAccount") => &ServiceAccountStrategy,
        ("", "Secret") => &SecretStrategy,
        ("", "ConfigMap") => &ConfigMapStrategy,
        (res::RBAC_GROUP, "Role") => &RoleStrategy { namespaced: true },
        (res::RBAC_GROUP, "ClusterRole") => &RoleStrategy { namespaced: false },
        (res::RBAC_GROUP, "RoleBinding") => &BindingStrategy { namespaced: true },
        (res::RBAC_GROUP, "ClusterRoleBinding") => &BindingStrategy { namespaced: false },
        _ => &CustomStrategy,
    }
}

/// Decodes `body` through the typed Kubernetes object `T`: wrong types are rejected, unknown
/// fields are found by comparing the body with the typed object's JSON.
fn decode_typed<T: DeserializeOwned + Serialize>(
    rt: &ResourceType,
    body: Value,
) -> Result<Decoded> {
    let typed: T = serde_json::from_value(body.clone()).map_err(|e| cannot_handle(rt, &e))?;
    let object = serde_json::to_value(&typed).map_err(|e| cannot_handle(rt, &e))?;
    let mut unknown = Vec::new();
    unknown_fields(&body, &object, "", &mut unknown);
    Ok(Decoded { object, unknown })
}

/// 400 `ServiceAccount in version "v1" cannot be handled as a ServiceAccount: <why>`.
pub fn cannot_handle(rt: &ResourceType, why: &dyn std::fmt::Display) -> Status {
    Status::bad_request(format!(
        "{} in version \"{}\" cannot be handled as a {}: {}",
        rt.kind, rt.version, rt.kind, why
    ))
}

/// Collects the paths of fields present (and not null) in `input` but absent from `known`.
fn unknown_fields(input: &Value, known: &Value, path: &str, out: &mut Vec<String>) {
    match (input, known) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in a {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match b.get(key) {
                    Some(k) => unknown_fields(value, k, &child, out),
                    None if value.is_null() => {}
                    None => out.push(child),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                unknown_fields(x, y, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

type ObjectMeta = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// Custom resources (Kargo's kinds): an open schema; only `metadata` is typed.
struct CustomStrategy;

impl Strategy for CustomStrategy {
    fn decode(&self, rt: &ResourceType, mut body: Value) -> Result<Decoded> {
        let mut unknown = Vec::new();
        if let Some(meta) = body.get("metadata").cloned() {
            let typed: ObjectMeta =
                serde_json::from_value(meta.clone()).map_err(|e| cannot_handle(rt, &e))?;
            let known = serde_json::to_value(&typed).map_err(|e| cannot_handle(rt, &e))?;
            unknown_fields(&meta, &known, "metadata", &mut unknown);
            if let Some(map) = body.as_object_mut() {
                map.insert("metadata".into(), known);
            }
        }
        Ok(Decoded {
            object: body,
            unknown,
        })
    }

    fn list_strategy(&self, _path: &str) -> Option<ListStrategy> {
        None
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    fn allows_unconditional_update(&self) -> bool {
        false
    }

    fn returns_deleted_object(&self) -> bool {
        true
    }
}

struct NamespaceStrategy;

impl Strategy for NamespaceStrategy {
    fn decode(&self, rt: &ResourceType, body: Value) -> Result<Decoded> {
        decode_typed::<k8s_openapi::api::core::v1::Namespace>(rt, body)
    }

    fn prepare_create(&self, obj: &mut Value) {
        let name = obj.name().to_owned();
        if let Some(map) = obj.as_object_mut() {
            map.insert(
                "spec".into(),
                serde_json::json!({"finalizers": ["kubernetes"]}),
            );
            map.insert("status".into(), serde_json::json!({"phase": "Active"}));
        }
        let meta = meta_mut(obj);
        let labels = meta
            .entry("labels")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(labels) = labels.as_object_mut() {
            labels.insert("kubernetes.io/metadata.name".into(), Value::String(name));
        }
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
        let name = obj.name().to_owned();
        let meta = meta_mut(obj);
        let labels = meta
            .entry("labels")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(labels) = labels.as_object_mut() {
            labels.insert("kubernetes.io/metadata.name".into(), Value::String(name));
        }
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

struct ServiceAccountStrategy;

impl Strategy for ServiceAccountStrategy {
    fn decode(&self, rt: &ResourceType, body: Value) -> Result<Decoded> {
        decode_typed::<k8s_openapi::api::core::v1::ServiceAccount>(rt, body)
    }

    fn list_strategy(&self, path: &str) -> Option<ListStrategy> {
        Some(kargo_api::patch::service_account_list_strategy(path))
    }

    fn returns_deleted_object(&self) -> bool {
        true
    }
}

/// The Secret type of service-account tokens.
pub const SERVICE_ACCOUNT_TOKEN_TYPE: &str = "kubernetes.io/service-account-token";
/// The annotation naming a token Secret's service account.
pub const SERVICE_ACCOUNT_NAME_ANNOTATION: &str = "kubernetes.io/service-account.name";
const MAX_SECRET_SIZE: usize = 1024 * 1024;

struct SecretStrategy;

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

fn data_keys(obj: &Value, field: &str) -> Vec<String> {
    obj.get(field)
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

fn validate_config_keys(obj: &Value, field: &str, errors: &mut Vec<FieldError>) {
    for key in data_keys(obj, field) {
        for msg in names::is_config_map_key(&key) {
            errors.push(FieldError::invalid(
                format!("{field}[{key}]"),
                BadValue::string(&key),
                msg,
            ));
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

    fn prepare_create(&self, obj: &mut Value) {
        if let Some(map) = obj.as_object_mut() {
            let missing = map
                .get("type")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty);
            if missing {
                map.insert("type".into(), Value::String("Opaque".into()));
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
        let kind = string_field(obj, "type").unwrap_or("Opaque");
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
            let old_type = string_field(old, "type").unwrap_or("Opaque");
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

struct ConfigMapStrategy;

impl Strategy for ConfigMapStrategy {
    fn decode(&self, rt: &ResourceType, body: Value) -> Result<Decoded> {
        decode_typed::<k8s_openapi::api::core::v1::ConfigMap>(rt, body)
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

struct RoleStrategy {
    namespaced: bool,
}

impl Strategy for RoleStrategy {
    fn decode(&self, rt: &ResourceType, body: Value) -> Result<Decoded> {
        if self.namespaced {
            decode_typed::<k8s_openapi::api::rbac::v1::Role>(rt, body)
        } else {
            decode_typed::<k8s_openapi::api::rbac::v1::ClusterRole>(rt, body)
        }
    }

    fn validate(&self, obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let rules = obj
            .get("rules")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for (i, rule) in rules.iter().enumerate() {
            let list = |f: &str| {
                rule.get(f)
                    .and_then(Value::as_array)
                    .map(|a| a.len())
                    .unwrap_or(0)
            };
            if list("verbs") == 0 {
                errors.push(FieldError::required(
                    format!("rules[{i}].verbs"),
                    "verbs must contain at least one value",
                ));
            }
            if list("nonResourceURLs") > 0 {
                if self.namespaced {
                    errors.push(FieldError::invalid(
                        format!("rules[{i}].nonResourceURLs"),
                        string_slice(rule.get("nonResourceURLs")),
                        "namespaced rules cannot apply to non-resource URLs",
                    ));
                } else if list("apiGroups") > 0
                    || list("resources") > 0
                    || list("resourceNames") > 0
                {
                    errors.push(FieldError::invalid(
                        format!("rules[{i}].nonResourceURLs"),
                        string_slice(rule.get("nonResourceURLs")),
                        "rules cannot apply to both regular resources and non-resource URLs",
                    ));
                }
            } else {
                if list("apiGroups") == 0 {
                    errors.push(FieldError::required(
                        format!("rules[{i}].apiGroups"),
                        "resource rules must supply at least one api group",
                    ));
                }
                if list("resources") == 0 {
                    errors.push(FieldError::required(
                        format!("rules[{i}].resources"),
                        "resource rules must supply at least one resource",
                    ));
                }
            }
        }
        errors
    }
}

/// A JSON string array as the bad value of a field error (Go's `[]string`).
fn string_slice(value: Option<&Value>) -> BadValue {
    BadValue::Strings(value.and_then(Value::as_array).map(|a| {
        a.iter()
            .map(|v| v.as_str().unwrap_or_default().to_owned())
            .collect()
    }))
}

struct BindingStrategy {
    namespaced: bool,
}

const SUBJECT_KINDS: &[&str] = &["ServiceAccount", "User", "Group"];

impl Strategy for BindingStrategy {
    fn decode(&self, rt: &ResourceType, body: Value) -> Result<Decoded> {
        if self.namespaced {
            decode_typed::<k8s_openapi::api::rbac::v1::RoleBinding>(rt, body)
        } else {
            decode_typed::<k8s_openapi::api::rbac::v1::ClusterRoleBinding>(rt, body)
        }
    }

    fn validate(&self, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let role_ref = obj.get("roleRef").cloned().unwrap_or(Value::Null);
        let get = |f: &str| role_ref.get(f).and_then(Value::as_str).unwrap_or("");
        let kinds: &[&str] = if self.namespaced {
            &["Role", "ClusterRole"]
        } else {
            &["ClusterRole"]
        };
        if !kinds.contains(&get("kind")) {
            errors.push(FieldError::not_supported(
                "roleRef.kind",
                BadValue::string(get("kind")),
                kinds,
            ));
        }
        if get("apiGroup") != res::RBAC_GROUP {
            errors.push(FieldError::not_supported(
                "roleRef.apiGroup",
                BadValue::string(get("apiGroup")),
                &[res::RBAC_GROUP],
            ));
        }
        if get("name").is_empty() {
            errors.push(FieldError::required("roleRef.name", ""));
        } else {
            for msg in names::is_valid_path_segment_name(get("name")) {
                errors.push(FieldError::invalid(
                    "roleRef.name",
                    BadValue::string(get("name")),
                    msg,
                ));
            }
        }
        let subjects = obj
            .get("subjects")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for (i, subject) in subjects.iter().enumerate() {
            let field = |f: &str| subject.get(f).and_then(Value::as_str).unwrap_or("");
            let path = format!("subjects[{i}]");
            if field("name").is_empty() {
                errors.push(FieldError::required(format!("{path}.name"), ""));
            }
            match field("kind") {
                "ServiceAccount" => {
                    if !field("apiGroup").is_empty() {
                        errors.push(FieldError::not_supported(
                            format!("{path}.apiGroup"),
                            BadValue::string(field("apiGroup")),
                            &[""],
                        ));
                    }
                    if !self.namespaced && field("namespace").is_empty() {
                        errors.push(FieldError::required(format!("{path}.namespace"), ""));
                    }
                }
                "User" | "Group" => {
                    if field("apiGroup") != res::RBAC_GROUP {
                        errors.push(FieldError::not_supported(
                            format!("{path}.apiGroup"),
                            BadValue::string(field("apiGroup")),
                            &[res::RBAC_GROUP],
                        ));
                    }
                }
                other => errors.push(FieldError::not_supported(
                    format!("{path}.kind"),
                    BadValue::string(other),
                    SUBJECT_KINDS,
                )),
            }
        }
        if let Some(old) = old
            && old.get("roleRef") != obj.get("roleRef")
        {
            errors.push(FieldError::invalid(
                "roleRef",
                BadValue::Raw(format!(
                    "rbac.RoleRef{{APIGroup:{}, Kind:{}, Name:{}}}",
                    crate::status::quote(get("apiGroup")),
                    crate::status::quote(get("kind")),
                    crate::status::quote(get("name")),
                )),
                "cannot change roleRef",
            ));
        }
        errors
    }
}

/// Validates the parts of `metadata` every kind shares: the name (by the kind's rule), labels,
/// annotations, owner references and finalizers; on update also what may not change.
pub fn validate_meta(rt: &ResourceType, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let check = match rt.name_rule {
        NameRule::Subdomain => names::NameCheck::DnsSubdomain,
        NameRule::Label => names::NameCheck::DnsLabel,
        NameRule::PathSegment => names::NameCheck::PathSegment,
    };
    let typed = |v: &Value| -> ObjectMeta {
        v.get("metadata")
            .and_then(|m| serde_json::from_value(m.clone()).ok())
            .unwrap_or_default()
    };
    let meta = typed(obj);
    let mut errors = names::validate_object_meta(&meta, rt.namespaced, check);
    if let Some(old) = old {
        errors.extend(names::validate_object_meta_update(&meta, &typed(old)));
    }
    errors
}

/// Labels of an object for selector matching.
pub fn labels(obj: &Value) -> BTreeMap<String, String> {
    obj.labels()
}

/// The value of a field-selector field of an object: `Some(value)` if the kind supports the
/// field (the value may be absent), `None` if it does not.
pub fn field_value(rt: &ResourceType, obj: &Value, field: &str) -> Option<Option<String>> {
    match field {
        "metadata.name" => Some(Some(obj.name().to_owned())),
        "metadata.namespace" => Some(obj.namespace().map(str::to_owned)),
        other => for_type(rt).field(obj, other),
    }
}

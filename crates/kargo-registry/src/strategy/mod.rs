//! Per-kind rules: decoding and normalizing a body, validation, what create and update may change,
//! field selectors, strategic-merge list strategies and the shape server-side apply needs (the
//! same list strategies, plus which objects are maps or atomic). One `Strategy` per kind, one file per
//! kind (or family of kinds); what every kind shares (metadata validation, typed decoding, the
//! field-selector fields of `metadata`) lives here, and everything that is the same for every
//! write lives in the registry itself.
//!
//! Where to add a kind: a new file with its `Strategy`, and a line in `for_type`.

mod config_map;
mod custom;
mod event;
mod namespace;
mod rbac;
mod secret;
mod service_account;

use kargo_api::field::{BadValue, FieldError};
use kargo_api::names;
use kargo_api::patch::ListStrategy;
use kargo_api::patch::apply::{self, ObjectType};
use kargo_api::resources::{self as res, NameRule, ResourceType};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::object::Meta;
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
pub(crate) struct Decoded {
    /// The object with only the fields the kind knows (and any field of an open schema).
    pub object: Value,
    /// Paths of the fields that were dropped (`spec.foo`).
    pub unknown: Vec<String>,
}

/// Rules of one kind.
pub(crate) trait Strategy: Send + Sync {
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

    /// How the object at a schema path (`metadata.labels`, `secrets[]`) is owned in
    /// server-side apply: a struct, a map or atomic. Lists follow
    /// [`list_strategy`](Self::list_strategy).
    fn object_type(&self, spath: &str) -> ObjectType {
        apply::object_meta_object_type(spath)
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

/// The list strategy of a schema path for server-side apply: the kind's, or for kinds that take
/// no strategic merge patch (custom resources) `ObjectMeta`'s and atomic lists elsewhere.
pub(crate) fn apply_list_strategy(strategy: &dyn Strategy, path: &str) -> ListStrategy {
    strategy
        .list_strategy(path)
        .unwrap_or_else(|| kargo_api::patch::object_meta_list_strategy(path))
}

/// The strategy of a resource type.
pub(crate) fn for_type(rt: &ResourceType) -> &'static dyn Strategy {
    match (rt.group, rt.kind) {
        ("", "Namespace") => &namespace::NamespaceStrategy,
        ("", "ServiceAccount") => &service_account::ServiceAccountStrategy,
        ("", "Secret") => &secret::SecretStrategy,
        ("", "ConfigMap") => &config_map::ConfigMapStrategy,
        ("", "Event") => &event::EventStrategy,
        ("", "Endpoints") => &event::EndpointsStrategy,
        (res::RBAC_GROUP, "Role") => &rbac::RoleStrategy { namespaced: true },
        (res::RBAC_GROUP, "ClusterRole") => &rbac::RoleStrategy { namespaced: false },
        (res::RBAC_GROUP, "RoleBinding") => &rbac::BindingStrategy { namespaced: true },
        (res::RBAC_GROUP, "ClusterRoleBinding") => &rbac::BindingStrategy { namespaced: false },
        _ => &custom::CustomStrategy,
    }
}

/// Decodes `body` through the typed Kubernetes object `T`: wrong types are rejected, unknown
/// fields are found by comparing the body with the typed object's JSON.
pub(super) fn decode_typed<T: DeserializeOwned + Serialize>(
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
pub(crate) fn cannot_handle(rt: &ResourceType, why: &dyn std::fmt::Display) -> Status {
    Status::bad_request(format!(
        "{} in version \"{}\" cannot be handled as a {}: {}",
        rt.kind, rt.version, rt.kind, why
    ))
}

/// Collects the paths of fields present (and not null) in `input` but absent from `known`.
pub(super) fn unknown_fields(input: &Value, known: &Value, path: &str, out: &mut Vec<String>) {
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

pub(super) type ObjectMeta = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// The object types of ConfigMaps and Secrets: `data`, `binaryData` and `stringData` are maps
/// (each key owned on its own), then `ObjectMeta`'s.
pub(super) fn data_object_type(spath: &str) -> ObjectType {
    match spath {
        "data" | "binaryData" | "stringData" => ObjectType::Map,
        other => apply::object_meta_object_type(other),
    }
}

/// The keys of a string map field (`data`, `binaryData`).
pub(super) fn data_keys(obj: &Value, field: &str) -> Vec<String> {
    obj.get(field)
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// Validates the keys of a data map as kube-apiserver does for ConfigMaps and Secrets.
pub(super) fn validate_config_keys(obj: &Value, field: &str, errors: &mut Vec<FieldError>) {
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

/// Validates the parts of `metadata` every kind shares: the name (by the kind's rule), labels,
/// annotations, owner references and finalizers; on update also what may not change.
pub(crate) fn validate_meta(
    rt: &ResourceType,
    obj: &Value,
    old: Option<&Value>,
) -> Vec<FieldError> {
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

/// The value of a field-selector field of an object: `Some(value)` if the kind supports the
/// field (the value may be absent), `None` if it does not.
pub(crate) fn field_value(rt: &ResourceType, obj: &Value, field: &str) -> Option<Option<String>> {
    match field {
        "metadata.name" => Some(Some(obj.name().to_owned())),
        "metadata.namespace" => Some(obj.namespace().map(str::to_owned)),
        other => for_type(rt).field(obj, other),
    }
}

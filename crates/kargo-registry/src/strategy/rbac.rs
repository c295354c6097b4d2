//! RBAC: Roles and ClusterRoles (rule shapes), RoleBindings and ClusterRoleBindings (roleRef and
//! subjects, roleRef immutable), with kube-apiserver's messages.

use kargo_api::field::{BadValue, FieldError};
use kargo_api::names;
use kargo_api::resources::{self as res, ResourceType};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{Decoded, ObjectType, Strategy, decode_typed};
use crate::status::Result;

/// Decodes `body` as the namespaced kind `N` (Role, RoleBinding) or the cluster kind `C`
/// (ClusterRole, ClusterRoleBinding).
fn decode_scoped<N, C>(namespaced: bool, rt: &ResourceType, body: Value) -> Result<Decoded>
where
    N: DeserializeOwned + Serialize,
    C: DeserializeOwned + Serialize,
{
    if namespaced {
        decode_typed::<N>(rt, body)
    } else {
        decode_typed::<C>(rt, body)
    }
}

/// The items of the array `field` of `obj` (none when absent or not an array).
fn array(obj: &Value, field: &str) -> Vec<Value> {
    obj.get(field)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// Roles (`namespaced`) and ClusterRoles.
pub(super) struct RoleStrategy {
    pub(super) namespaced: bool,
}

impl Strategy for RoleStrategy {
    fn decode(&self, rt: &ResourceType, body: Value) -> Result<Decoded> {
        use k8s_openapi::api::rbac::v1::{ClusterRole, Role};
        decode_scoped::<Role, ClusterRole>(self.namespaced, rt, body)
    }

    fn validate(&self, obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let rules = array(obj, "rules");
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

/// RoleBindings (`namespaced`) and ClusterRoleBindings.
pub(super) struct BindingStrategy {
    pub(super) namespaced: bool,
}

const SUBJECT_KINDS: &[&str] = &["ServiceAccount", "User", "Group"];

impl Strategy for BindingStrategy {
    fn decode(&self, rt: &ResourceType, body: Value) -> Result<Decoded> {
        use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleBinding};
        decode_scoped::<RoleBinding, ClusterRoleBinding>(self.namespaced, rt, body)
    }

    /// `RoleRef` is `+structType=atomic` (`subjects` is an atomic list: the default).
    fn object_type(&self, spath: &str) -> ObjectType {
        match spath {
            "roleRef" => ObjectType::Atomic,
            other => kargo_api::patch::apply::object_meta_object_type(other),
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
        let subjects = array(obj, "subjects");
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

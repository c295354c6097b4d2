//! Server-side printing: `Table` responses (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`)
//! with kube-apiserver's columns for each kind, so that `kubectl get` shows what it shows against
//! a real cluster (`SECRETS` of an account, `TYPE` and `DATA` of a Secret, ...).

use http::HeaderMap;
use kargo_api::duration::human_duration;
use kargo_api::resources::ResourceType;
use kargo_api::well_known::OPAQUE_SECRET_TYPE;
use serde_json::{Value, json};

use kargo_registry::Meta;

/// The media type of a Table response.
pub(crate) const CONTENT_TYPE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";

/// Whether the client asked for a Table (kubectl lists it first in `Accept`).
pub(crate) fn wanted(headers: &HeaderMap) -> bool {
    headers
        .get_all(http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| {
            let params: Vec<&str> = t.split(';').map(str::trim).collect();
            params.contains(&"as=Table") && params.contains(&"g=meta.k8s.io")
        })
}

/// What each row carries besides its cells (`includeObject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Include {
    /// Nothing.
    None,
    /// `PartialObjectMetadata` (the default).
    Metadata,
    /// The whole object.
    Object,
}

impl Include {
    /// Parses `includeObject`.
    pub(crate) fn parse(value: Option<&str>) -> Include {
        match value {
            Some("None") => Include::None,
            Some("Object") => Include::Object,
            _ => Include::Metadata,
        }
    }
}

struct Column {
    name: &'static str,
    kind: &'static str,
    format: &'static str,
    description: &'static str,
    priority: u8,
}

const fn col(name: &'static str, kind: &'static str, description: &'static str) -> Column {
    Column {
        name,
        kind,
        format: "",
        description,
        priority: 0,
    }
}

const NAME: Column = Column {
    name: "Name",
    kind: "string",
    format: "name",
    description: "Name must be unique within a namespace.",
    priority: 0,
};
const AGE: Column = col(
    "Age",
    "string",
    "CreationTimestamp is a timestamp representing the server time when this object was created.",
);

fn columns(rt: &ResourceType) -> Vec<Column> {
    match (rt.group, rt.kind) {
        ("", "Namespace") => vec![
            NAME,
            col("Status", "string", "The status of the namespace"),
            AGE,
        ],
        ("", "ServiceAccount") => vec![
            NAME,
            col(
                "Secrets",
                "string",
                "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use.",
            ),
            AGE,
        ],
        ("", "Secret") => vec![
            NAME,
            col("Type", "string", "The type of the secret"),
            col("Data", "string", "The number of entries in the secret data"),
            AGE,
        ],
        ("", "ConfigMap") => vec![
            NAME,
            col("Data", "string", "Data contains the configuration data."),
            AGE,
        ],
        ("", "Event") => vec![
            col(
                "Last Seen",
                "string",
                "The time at which the most recent occurrence of this event was recorded.",
            ),
            col(
                "Type",
                "string",
                "Type of this event (Normal, Warning), new types could be added in the future",
            ),
            col(
                "Reason",
                "string",
                "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
            ),
            col("Object", "string", "The object that this event is about."),
            col(
                "Message",
                "string",
                "A human-readable description of the status of this operation.",
            ),
        ],
        ("", "Endpoints") => vec![
            NAME,
            col(
                "Endpoints",
                "string",
                "Endpoints is the list of endpoints of the service.",
            ),
            AGE,
        ],
        (_, "Role" | "ClusterRole") => vec![
            NAME,
            col(
                "Created At",
                "date",
                "CreationTimestamp is a timestamp representing the server time when this object was created.",
            ),
        ],
        (_, "RoleBinding" | "ClusterRoleBinding") => vec![
            NAME,
            col(
                "Role",
                "string",
                "RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace.",
            ),
            AGE,
            Column {
                priority: 1,
                ..col("Users", "string", "Users in the binding")
            },
            Column {
                priority: 1,
                ..col("Groups", "string", "Groups in the binding")
            },
            Column {
                priority: 1,
                ..col(
                    "ServiceAccounts",
                    "string",
                    "ServiceAccounts in the binding",
                )
            },
        ],
        _ => vec![NAME, AGE],
    }
}

fn age(obj: &Value, now: i64) -> String {
    let created = obj
        .meta_str("creationTimestamp")
        .and_then(|t| t.parse::<k8s_openapi::jiff::Timestamp>().ok())
        .map(|t| t.as_second());
    match created {
        Some(c) => human_duration(now - c),
        None => "<unknown>".to_owned(),
    }
}

fn count(obj: &Value, fields: &[&str]) -> usize {
    fields
        .iter()
        .map(|f| match obj.get(*f) {
            Some(Value::Object(m)) => m.len(),
            Some(Value::Array(a)) => a.len(),
            _ => 0,
        })
        .sum()
}

fn subjects(obj: &Value, kind: &str) -> String {
    obj.get("subjects")
        .and_then(Value::as_array)
        .map(|subjects| {
            subjects
                .iter()
                .filter(|s| s.get("kind").and_then(Value::as_str) == Some(kind))
                .map(|s| {
                    let name = s.get("name").and_then(Value::as_str).unwrap_or_default();
                    match (kind, s.get("namespace").and_then(Value::as_str)) {
                        ("ServiceAccount", Some(ns)) => format!("{ns}/{name}"),
                        _ => name.to_owned(),
                    }
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

fn cells(rt: &ResourceType, obj: &Value, now: i64) -> Vec<Value> {
    let name = Value::String(obj.name().to_owned());
    match (rt.group, rt.kind) {
        ("", "Namespace") => vec![
            name,
            obj.pointer("/status/phase")
                .cloned()
                .unwrap_or(Value::String("Active".into())),
            age(obj, now).into(),
        ],
        ("", "ServiceAccount") => vec![name, count(obj, &["secrets"]).into(), age(obj, now).into()],
        ("", "Secret") => vec![
            name,
            obj.get("type")
                .cloned()
                .unwrap_or(Value::String(OPAQUE_SECRET_TYPE.into())),
            count(obj, &["data"]).into(),
            age(obj, now).into(),
        ],
        ("", "ConfigMap") => vec![
            name,
            count(obj, &["data", "binaryData"]).into(),
            age(obj, now).into(),
        ],
        ("", "Event") => {
            let text = |path: &str| {
                obj.pointer(path)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            };
            let last_seen = ["/lastTimestamp", "/eventTime", "/firstTimestamp"]
                .iter()
                .find_map(|p| obj.pointer(p).and_then(Value::as_str))
                .or_else(|| obj.meta_str("creationTimestamp"))
                .and_then(|t| t.parse::<k8s_openapi::jiff::Timestamp>().ok())
                .map_or_else(
                    || "<unknown>".to_owned(),
                    |t| human_duration(now - t.as_second()),
                );
            vec![
                last_seen.into(),
                text("/type").into(),
                text("/reason").into(),
                format!(
                    "{}/{}",
                    text("/involvedObject/kind").to_lowercase(),
                    text("/involvedObject/name")
                )
                .into(),
                text("/message").into(),
            ]
        }
        ("", "Endpoints") => vec![name, "<none>".into(), age(obj, now).into()],
        (_, "Role" | "ClusterRole") => vec![
            name,
            obj.meta_str("creationTimestamp").unwrap_or_default().into(),
        ],
        (_, "RoleBinding" | "ClusterRoleBinding") => {
            let kind = obj
                .pointer("/roleRef/kind")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let role = obj
                .pointer("/roleRef/name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            vec![
                name,
                format!("{kind}/{role}").into(),
                age(obj, now).into(),
                subjects(obj, "User").into(),
                subjects(obj, "Group").into(),
                subjects(obj, "ServiceAccount").into(),
            ]
        }
        _ => vec![name, age(obj, now).into()],
    }
}

fn row(rt: &ResourceType, obj: &Value, include: Include, now: i64) -> Value {
    let mut row = json!({"cells": cells(rt, obj, now)});
    match include {
        Include::None => {}
        Include::Metadata => {
            row["object"] = json!({
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj.get("metadata").cloned().unwrap_or(json!({})),
            });
        }
        Include::Object => row["object"] = obj.clone(),
    }
    row
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A Table of objects. `metadata` is the list's metadata (`resourceVersion`, `continue`).
pub(crate) fn table(
    rt: &ResourceType,
    objects: &[Value],
    metadata: Value,
    include: Include,
) -> Value {
    let now = now();
    let definitions: Vec<Value> = columns(rt)
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "type": c.kind,
                "format": c.format,
                "description": c.description,
                "priority": c.priority,
            })
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": definitions,
        "rows": objects.iter().map(|o| row(rt, o, include, now)).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kargo_api::resources::{ROLEBINDINGS, SECRETS};

    #[test]
    fn kubectl_accept_headers_ask_for_tables() {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::ACCEPT,
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
                .parse()
                .unwrap(),
        );
        assert!(wanted(&h));
        h.insert(http::header::ACCEPT, "application/json".parse().unwrap());
        assert!(!wanted(&h));
    }

    #[test]
    fn rows_carry_kube_apiservers_cells() {
        let secret =
            json!({"metadata": {"name": "s"}, "type": "Opaque", "data": {"a": "", "b": ""}});
        assert_eq!(
            cells(&SECRETS, &secret, 0)[..3],
            [json!("s"), json!("Opaque"), json!(2)]
        );
        let rb = json!({
            "metadata": {"name": "rb"},
            "roleRef": {"kind": "Role", "name": "r"},
            "subjects": [
                {"kind": "ServiceAccount", "name": "a", "namespace": "p"},
                {"kind": "User", "name": "u"},
            ],
        });
        let c = cells(&ROLEBINDINGS, &rb, 0);
        assert_eq!(c[1], "Role/r");
        assert_eq!(c[3], "u");
        assert_eq!(c[5], "p/a");
    }
}

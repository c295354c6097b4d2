//! The `paths` of the OpenAPI documents: each served kind's operations, with their parameters,
//! bodies and responses, in OpenAPI v3 or v2 (Swagger 2.0) form.
//!
//! kubectl reads two things here. A `patch` operation's `fieldValidation` parameter tells it
//! the server validates fields (so `kubectl create`/`apply` leave validation to the server),
//! and the media types the operation consumes tell `kubectl apply` whether the kind takes a
//! strategic merge patch (built-in kinds) or a JSON merge patch (Kargo's kinds, as for CRDs).

use kargo_api::resources::{ResourceType, Storage};
use serde_json::{Map, Value, json};

use super::schemas::{self, DELETE_OPTIONS, PATCH, STATUS, V2_PREFIX, V3_PREFIX};

/// The two document formats.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Version {
    /// OpenAPI 3.0 (`/openapi/v3/...`).
    V3,
    /// Swagger 2.0 (`/openapi/v2`).
    V2,
}

const JSON_YAML: &[&str] = &["application/json", "application/yaml"];
const PATCH_TYPES: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];
const WRITE_PARAMS: &[&str] = &["dryRun", "fieldManager", "fieldValidation"];

/// The OpenAPI path of a group-version (`api/v1`, `apis/rbac.authorization.k8s.io/v1`).
pub(super) fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// One operation: its action, query parameters, body and response definitions.
struct Operation<'a> {
    rt: &'a ResourceType,
    action: &'static str,
    params: &'a [&'a str],
    /// The body's definition and media types.
    body: Option<(&'a str, &'a [&'a str])>,
    response: &'a str,
}

impl Operation<'_> {
    fn operation_id(&self) -> String {
        let group = match self.rt.group.split('.').next() {
            Some(g) if !g.is_empty() => {
                let mut c = g.chars();
                c.next()
                    .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                    .unwrap_or_default()
            }
            _ => "Core".to_owned(),
        };
        let version = {
            let mut c = self.rt.version.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        };
        let kind = if self.action == "list" || self.action == "deletecollection" {
            self.rt.list_kind()
        } else {
            self.rt.kind.to_owned()
        };
        format!("{}{group}{version}{kind}", self.action)
    }

    fn render(&self, version: Version) -> Value {
        let prefix = match version {
            Version::V3 => V3_PREFIX,
            Version::V2 => V2_PREFIX,
        };
        let reference = |name: &str| json!({"$ref": format!("{prefix}{name}")});
        let mut parameters: Vec<Value> = self
            .params
            .iter()
            .chain(&["pretty"])
            .map(|p| query_param(p, version))
            .collect();
        let mut op = Map::new();
        op.insert("operationId".into(), self.operation_id().into());
        match version {
            Version::V3 => {
                if let Some((def, types)) = self.body {
                    let content: Map<String, Value> = types
                        .iter()
                        .map(|t| ((*t).to_owned(), json!({"schema": reference(def)})))
                        .collect();
                    op.insert(
                        "requestBody".into(),
                        json!({"content": content, "required": true}),
                    );
                }
                let content: Map<String, Value> = JSON_YAML
                    .iter()
                    .map(|t| ((*t).to_owned(), json!({"schema": reference(self.response)})))
                    .collect();
                op.insert(
                    "responses".into(),
                    json!({"200": {"description": "OK", "content": content},
                        "401": {"description": "Unauthorized"}}),
                );
            }
            Version::V2 => {
                if let Some((def, types)) = self.body {
                    op.insert("consumes".into(), json!(types));
                    parameters.insert(
                        0,
                        json!({"in": "body", "name": "body", "required": true, "schema": reference(def)}),
                    );
                } else {
                    op.insert("consumes".into(), json!(["*/*"]));
                }
                op.insert("produces".into(), json!(JSON_YAML));
                op.insert("schemes".into(), json!(["https"]));
                op.insert(
                    "responses".into(),
                    json!({"200": {"description": "OK", "schema": reference(self.response)},
                        "401": {"description": "Unauthorized"}}),
                );
            }
        }
        op.insert("parameters".into(), parameters.into());
        op.insert("tags".into(), json!([tag(self.rt)]));
        op.insert("x-kubernetes-action".into(), self.action.into());
        op.insert(
            "x-kubernetes-group-version-kind".into(),
            json!({"group": self.rt.group, "kind": self.rt.kind, "version": self.rt.version}),
        );
        Value::Object(op)
    }
}

/// kube-apiserver's tag of a group-version's operations (`core_v1`, `rbacAuthorization_v1`).
fn tag(rt: &ResourceType) -> String {
    let group = match rt.group {
        "" => "core".to_owned(),
        g => {
            let mut words = g.trim_end_matches(".k8s.io").split('.');
            let first = words.next().unwrap_or_default().to_owned();
            words.fold(first, |acc, w| {
                let mut c = w.chars();
                acc + &c
                    .next()
                    .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                    .unwrap_or_default()
            })
        }
    };
    format!("{group}_{}", rt.version)
}

fn query_param(name: &str, version: Version) -> Value {
    match version {
        Version::V3 => {
            json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}})
        }
        Version::V2 => json!({"name": name, "in": "query", "type": "string", "uniqueItems": true}),
    }
}

fn path_param(name: &str, version: Version) -> Value {
    match version {
        Version::V3 => json!({"name": name, "in": "path", "required": true,
            "schema": {"type": "string", "uniqueItems": true}}),
        Version::V2 => json!({"name": name, "in": "path", "required": true,
            "type": "string", "uniqueItems": true}),
    }
}

/// Adds the paths of `rt`'s operations to `paths`.
pub(super) fn add(paths: &mut Map<String, Value>, rt: &ResourceType, version: Version) {
    let kind = schemas::definition_name(rt);
    let list = schemas::list_definition_name(rt);
    let base = format!("/{}", gv_path(rt.group, rt.version));
    let collection = if rt.namespaced {
        format!("{base}/namespaces/{{namespace}}/{}", rt.plural)
    } else {
        format!("{base}/{}", rt.plural)
    };
    let path_params = |named: bool| {
        let mut p = Vec::new();
        if named {
            p.push(path_param("name", version));
        }
        if rt.namespaced {
            p.push(path_param("namespace", version));
        }
        Value::Array(p)
    };
    let op = |action, params, body, response| {
        Operation {
            rt,
            action,
            params,
            body,
            response,
        }
        .render(version)
    };
    if rt.storage == Storage::Virtual {
        paths.insert(
            collection,
            json!({
                "parameters": path_params(false),
                "post": op("post", WRITE_PARAMS, Some((&kind, JSON_YAML)), &kind),
            }),
        );
        return;
    }
    let patch_types: Vec<&str> = PATCH_TYPES
        .iter()
        .copied()
        .filter(|t| !rt.schemaless || !t.starts_with("application/strategic"))
        .collect();
    paths.insert(
        collection.clone(),
        json!({
            "parameters": path_params(false),
            "get": op("list", &["labelSelector", "fieldSelector", "limit", "continue",
                "resourceVersion", "watch"], None, &list),
            "post": op("post", WRITE_PARAMS, Some((&kind, JSON_YAML)), &kind),
            "delete": op("deletecollection", &["labelSelector", "fieldSelector", "dryRun"],
                Some((DELETE_OPTIONS, JSON_YAML)), STATUS),
        }),
    );
    paths.insert(
        format!("{collection}/{{name}}"),
        json!({
            "parameters": path_params(true),
            "get": op("get", &[], None, &kind),
            "put": op("put", WRITE_PARAMS, Some((&kind, JSON_YAML)), &kind),
            "patch": op("patch", &["dryRun", "fieldManager", "fieldValidation", "force"],
                Some((PATCH, &patch_types)), &kind),
            "delete": op("delete", &["dryRun", "gracePeriodSeconds", "propagationPolicy"],
                Some((DELETE_OPTIONS, JSON_YAML)), STATUS),
        }),
    );
}

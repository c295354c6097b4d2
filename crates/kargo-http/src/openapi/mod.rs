//! `/openapi/v3`: enough of kube-apiserver's OpenAPI v3 documents for kubectl's `create -f` and
//! `apply -f` with validation on. kubectl reads the root's `paths` to find each group-version's
//! document, and looks there for a `patch` operation of the object's group-version-kind that takes
//! a `fieldValidation` parameter; then it leaves validation to the server (`fieldValidation=Strict`).
//!
//! The documents deliberately carry no component schemas: without them kubectl computes apply
//! patches from its compiled-in types (strategic merge for built-in kinds, JSON merge for Kargo's).

use std::sync::OnceLock;

use kargo_api::resources::{self, ResourceType, Storage};
use serde_json::{Map, Value, json};

/// The OpenAPI path of a group-version's document (`api/v1`, `apis/rbac.authorization.k8s.io/v1`).
fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn hash(doc: &Value) -> String {
    let bytes = serde_json::to_vec(doc).unwrap_or_default();
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA512, &bytes);
    digest.as_ref().iter().map(|b| format!("{b:02X}")).collect()
}

fn param(name: &str, location: &str) -> Value {
    json!({"name": name, "in": location, "schema": {"type": "string", "uniqueItems": true}})
}

fn operation(rt: &ResourceType, action: &str, params: &[&str]) -> Value {
    let mut parameters: Vec<Value> = params.iter().map(|p| param(p, "query")).collect();
    parameters.push(param("pretty", "query"));
    let group_pascal: String = rt
        .group
        .split('.')
        .next()
        .map(|g| {
            let mut c = g.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        })
        .unwrap_or_else(|| "Core".into());
    json!({
        "operationId": format!("{action}{}{}{}", if group_pascal.is_empty() { "Core" } else { &group_pascal }, rt.version.to_uppercase(), rt.kind),
        "parameters": parameters,
        "responses": {"200": {"description": "OK"}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
    })
}

fn group_version_doc(group: &str, version: &str) -> Value {
    let mut paths = Map::new();
    let write_params = ["dryRun", "fieldManager", "fieldValidation"];
    for rt in resources::in_group_version(group, version) {
        let base = format!("/{}", gv_path(group, version));
        let collection = if rt.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}", rt.plural)
        } else {
            format!("{base}/{}", rt.plural)
        };
        if rt.storage == Storage::Virtual {
            paths.insert(
                collection,
                json!({"post": operation(rt, "post", &write_params)}),
            );
            continue;
        }
        paths.insert(
            collection.clone(),
            json!({
                "get": operation(rt, "list", &["labelSelector", "fieldSelector", "limit", "continue", "resourceVersion", "watch"]),
                "post": operation(rt, "post", &write_params),
                "delete": operation(rt, "deletecollection", &["labelSelector", "fieldSelector", "dryRun"]),
            }),
        );
        paths.insert(
            format!("{collection}/{{name}}"),
            json!({
                "get": operation(rt, "get", &[]),
                "put": operation(rt, "put", &write_params),
                "patch": operation(rt, "patch", &["dryRun", "fieldManager", "fieldValidation", "force"]),
                "delete": operation(rt, "delete", &["dryRun", "gracePeriodSeconds", "propagationPolicy"]),
            }),
        );
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": format!("v1.{}.0", kargo_api::version::KUBE_MINOR)},
        "paths": paths,
        "components": {"schemas": {}},
    })
}

struct Documents {
    root: Value,
    by_path: Vec<(String, Value)>,
}

fn documents() -> &'static Documents {
    static DOCS: OnceLock<Documents> = OnceLock::new();
    DOCS.get_or_init(|| {
        let mut root_paths = Map::new();
        let mut by_path = Vec::new();
        for (group, version) in resources::group_versions() {
            let doc = group_version_doc(group, version);
            let path = gv_path(group, version);
            root_paths.insert(
                path.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={}", hash(&doc))}),
            );
            by_path.push((path, doc));
        }
        Documents {
            root: json!({"paths": root_paths}),
            by_path,
        }
    })
}

/// `/openapi/v3`.
pub(crate) fn root() -> &'static Value {
    &documents().root
}

/// `/openapi/v3/<path>`, if it names a served group-version.
pub(crate) fn group_version(path: &str) -> Option<&'static Value> {
    documents()
        .by_path
        .iter()
        .find(|(p, _)| p == path.trim_matches('/'))
        .map(|(_, doc)| doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_points_at_every_group_version_document() {
        let paths = root()["paths"].as_object().unwrap();
        for key in [
            "api/v1",
            "apis/rbac.authorization.k8s.io/v1",
            "apis/kargo.akuity.io/v1alpha1",
        ] {
            let url = paths[key]["serverRelativeURL"].as_str().unwrap();
            assert!(
                url.starts_with(&format!("/openapi/v3/{key}?hash=")),
                "{url}"
            );
            assert!(group_version(key).is_some());
        }
    }

    #[test]
    fn patch_operations_take_field_validation_and_name_their_kind() {
        let doc = group_version("api/v1").unwrap();
        let op = &doc["paths"]["/api/v1/namespaces/{namespace}/serviceaccounts/{name}"]["patch"];
        assert_eq!(
            op["x-kubernetes-group-version-kind"]["kind"],
            "ServiceAccount"
        );
        assert!(
            op["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "fieldValidation")
        );
        let ns = &doc["paths"]["/api/v1/namespaces/{name}"]["patch"];
        assert_eq!(ns["x-kubernetes-group-version-kind"]["kind"], "Namespace");
    }
}

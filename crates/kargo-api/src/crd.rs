//! The schemas of Kargo's kinds: the `v1alpha1` `openAPIV3Schema` of upstream Kargo's
//! CustomResourceDefinitions, vendored unchanged in `crates/kargo-api/crds/` (see its README
//! for the upstream commit).
//!
//! The server publishes them in its OpenAPI documents and finds the fields an object declares
//! that its schema does not ([`unknown_fields`]), for field validation (`unknown field
//! "spec.foo"`), where kube-apiserver finds them by pruning a structural CRD's objects. Unlike
//! kube-apiserver it keeps them (under `Warn` and `Ignore`): Kargo's kinds were stored
//! schemaless before, and clients still send fields of Kargo's older API.

use std::sync::OnceLock;

use serde_json::{Map, Value};

/// The vendored CRD of each Kargo kind served.
const CRDS: [(&str, &str); 6] = [
    (
        "Project",
        include_str!("../crds/kargo.akuity.io_projects.yaml"),
    ),
    (
        "ProjectConfig",
        include_str!("../crds/kargo.akuity.io_projectconfigs.yaml"),
    ),
    ("Stage", include_str!("../crds/kargo.akuity.io_stages.yaml")),
    (
        "Warehouse",
        include_str!("../crds/kargo.akuity.io_warehouses.yaml"),
    ),
    (
        "Freight",
        include_str!("../crds/kargo.akuity.io_freights.yaml"),
    ),
    (
        "Promotion",
        include_str!("../crds/kargo.akuity.io_promotions.yaml"),
    ),
];

/// The CustomResourceDefinitions themselves, as objects (`apiextensions.k8s.io/v1`), as a
/// cluster running Kargo has them.
pub fn definitions() -> &'static [Value] {
    static CRDS_PARSED: OnceLock<Vec<Value>> = OnceLock::new();
    CRDS_PARSED.get_or_init(|| {
        CRDS.iter()
            .filter_map(|(_, yaml)| yaml_serde::from_str(yaml).ok())
            .collect()
    })
}

/// The served version of Kargo's kinds.
const VERSION: &str = "v1alpha1";

/// The `openAPIV3Schema` of a CRD's served version, or `None` if the YAML has none.
fn open_api_v3_schema(crd_yaml: &str) -> Option<Value> {
    let crd: Value = yaml_serde::from_str(crd_yaml).ok()?;
    crd["spec"]["versions"]
        .as_array()?
        .iter()
        .find(|v| v["name"] == VERSION)
        .map(|v| v["schema"]["openAPIV3Schema"].clone())
        .filter(Value::is_object)
}

fn schemas() -> &'static [(&'static str, Value)] {
    static SCHEMAS: OnceLock<Vec<(&'static str, Value)>> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        CRDS.iter()
            .filter_map(|(kind, yaml)| Some((*kind, open_api_v3_schema(yaml)?)))
            .collect()
    })
}

/// The `openAPIV3Schema` of a Kargo kind (`Project`), as upstream Kargo's CRD declares it.
pub fn schema(kind: &str) -> Option<&'static Value> {
    schemas().iter().find(|(k, _)| *k == kind).map(|(_, s)| s)
}

/// The Kargo kinds that have a schema.
pub fn kinds() -> impl Iterator<Item = &'static str> {
    schemas().iter().map(|(k, _)| *k)
}

/// The paths (`spec.foo`, `spec.steps[0].bar`) of the fields of `object` (a whole Kargo object)
/// that its kind's schema does not declare, sorted: what kube-apiserver's pruning of a
/// structural CRD would drop. `metadata` is left alone (the server types it as `ObjectMeta`), and so
/// is `status`, which is the server's own (it keeps fields of Kargo's older API there, such as
/// a Project's `phase`); an unknown kind prunes nothing.
pub fn unknown_fields(kind: &str, object: &Value) -> Vec<String> {
    prune(kind, &mut object.clone())
}

/// Removes from `object` the fields [`unknown_fields`] names, and returns their paths.
fn prune(kind: &str, object: &mut Value) -> Vec<String> {
    let mut unknown = Vec::new();
    let Some(schema) = schema(kind) else {
        return unknown;
    };
    if let (Some(props), Value::Object(map)) = (schema["properties"].as_object(), object) {
        let mut root = props.clone();
        // The root's metadata is typed elsewhere, the status is the server's: keep them whole.
        for open in ["metadata", "status"] {
            root.insert(
                open.into(),
                serde_json::json!({"x-kubernetes-preserve-unknown-fields": true}),
            );
        }
        prune_properties(&root, false, false, map, "", &mut unknown);
    }
    unknown.sort();
    unknown
}

fn child_path(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn prune_value(schema: &Value, value: &mut Value, path: &str, unknown: &mut Vec<String>) {
    let preserve = schema["x-kubernetes-preserve-unknown-fields"] == true;
    match value {
        Value::Object(map) => {
            let embedded = schema["x-kubernetes-embedded-resource"] == true;
            if let Some(props) = schema["properties"].as_object() {
                prune_properties(props, preserve, embedded, map, path, unknown);
            } else if let Some(additional) = schema.get("additionalProperties") {
                if additional.is_object() {
                    for (key, v) in map.iter_mut() {
                        prune_value(additional, v, &child_path(path, key), unknown);
                    }
                }
            } else if !preserve && schema["type"] == "object" && !embedded {
                // An object with no fields declared holds none.
                let keys: Vec<String> = map.keys().cloned().collect();
                for key in keys {
                    map.remove(&key);
                    unknown.push(child_path(path, &key));
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items").filter(|s| s.is_object()) {
                for (i, item) in items.iter_mut().enumerate() {
                    prune_value(item_schema, item, &format!("{path}[{i}]"), unknown);
                }
            }
        }
        _ => {}
    }
}

fn prune_properties(
    props: &Map<String, Value>,
    preserve: bool,
    embedded: bool,
    map: &mut Map<String, Value>,
    path: &str,
    unknown: &mut Vec<String>,
) {
    let keys: Vec<String> = map.keys().cloned().collect();
    for key in keys {
        let child = child_path(path, &key);
        match props.get(&key) {
            Some(prop) => {
                if let Some(v) = map.get_mut(&key) {
                    prune_value(prop, v, &child, unknown);
                }
            }
            // An embedded object carries its own apiVersion, kind and metadata.
            None if embedded && matches!(key.as_str(), "apiVersion" | "kind" | "metadata") => {}
            None if preserve => {}
            None => {
                map.remove(&key);
                unknown.push(child);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_vendored_crd_has_a_schema_with_spec_or_status() {
        let kinds: Vec<_> = kinds().collect();
        assert_eq!(
            kinds,
            [
                "Project",
                "ProjectConfig",
                "Stage",
                "Warehouse",
                "Freight",
                "Promotion"
            ]
        );
        for kind in kinds {
            let props = schema(kind).unwrap()["properties"].as_object().unwrap();
            assert!(props.contains_key("apiVersion"), "{kind}");
            assert!(props.contains_key("metadata"), "{kind}");
        }
        assert!(
            schema("Stage").unwrap()["properties"]["spec"]["properties"]["requestedFreight"]
                .is_object()
        );
    }

    #[test]
    fn the_definitions_are_the_crds() {
        let names: Vec<_> = definitions()
            .iter()
            .map(|d| d["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names.len(), 6);
        assert!(names.contains(&"stages.kargo.akuity.io"), "{names:?}");
        assert!(
            definitions()
                .iter()
                .all(|d| d["kind"] == "CustomResourceDefinition")
        );
    }

    #[test]
    fn prune_drops_undeclared_fields_and_keeps_declared_and_open_ones() {
        let mut obj = json!({
            "apiVersion": "kargo.akuity.io/v1alpha1",
            "kind": "Stage",
            "metadata": {"name": "s", "anything": 1},
            "spec": {
                "foo": 1,
                "requestedFreight": [{
                    "origin": {"kind": "Warehouse", "name": "w", "bar": true},
                    "sources": {"direct": true},
                }],
            },
            "extra": {},
        });
        let unknown = prune("Stage", &mut obj);
        assert_eq!(
            unknown,
            ["extra", "spec.foo", "spec.requestedFreight[0].origin.bar"]
        );
        assert_eq!(obj["metadata"]["anything"], 1);
        assert_eq!(obj["spec"]["requestedFreight"][0]["origin"]["name"], "w");
        assert!(obj["spec"].get("foo").is_none());
        assert!(obj.get("extra").is_none());
    }

    #[test]
    fn unknown_fields_leaves_the_object_alone() {
        let obj = json!({"kind": "Stage", "spec": {"foo": 1, "shard": "a"}});
        assert_eq!(unknown_fields("Stage", &obj), ["spec.foo"]);
        assert_eq!(obj["spec"]["foo"], 1);
    }

    #[test]
    fn prune_of_a_valid_object_or_an_unknown_kind_changes_nothing() {
        let valid = json!({
            "apiVersion": "kargo.akuity.io/v1alpha1",
            "kind": "ProjectConfig",
            "metadata": {"name": "p", "namespace": "p"},
            "spec": {"promotionPolicies": [{"stage": "s", "autoPromotionEnabled": true}]},
            "status": {"conditions": [{"type": "Ready", "status": "True",
                "lastTransitionTime": "2024-01-01T00:00:00Z", "reason": "R", "message": ""}],
                "phase": "the server's own"},
        });
        let mut obj = valid.clone();
        let unknown = prune("ProjectConfig", &mut obj);
        assert_eq!(unknown, Vec::<String>::new());
        assert_eq!(obj, valid);
        let mut other = json!({"spec": {"x": 1}});
        assert!(prune("Nothing", &mut other).is_empty());
    }
}

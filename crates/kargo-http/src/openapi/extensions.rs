//! The `x-kubernetes-*` extensions kube-apiserver publishes on the fields of the built-in types
//! served here, which `k8s-openapi`'s schemas leave out: list types and map keys (the `+listType`
//! and `+listMapKey` tags of `k8s.io/api` 1.33), struct/map types (`+structType=atomic`), and the
//! strategic-merge `patchStrategy`/`patchMergeKey`.
//!
//! kubectl computes `kubectl apply` patches of the built-in kinds from the patch strategies
//! published here, and this server merges them with `kargo_api::patch`'s list strategies: the
//! two must agree (a unit test checks them against each other).

use serde_json::{Map, Value, json};

/// `x-kubernetes-list-type: atomic`.
fn atomic() -> Value {
    json!({"x-kubernetes-list-type": "atomic"})
}

/// A list merged by `key` (strategic merge patch) and keyed by it (server-side apply).
fn map_by(key: &str) -> Value {
    json!({
        "x-kubernetes-list-map-keys": [key],
        "x-kubernetes-list-type": "map",
        "x-kubernetes-patch-merge-key": key,
        "x-kubernetes-patch-strategy": "merge",
    })
}

/// The extensions of fields: `(definition, property, extensions)`.
fn field_extensions() -> Vec<(&'static str, &'static str, Value)> {
    const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
    let mut out = vec![
        (
            OBJECT_META,
            "finalizers",
            json!({"x-kubernetes-list-type": "set", "x-kubernetes-patch-strategy": "merge"}),
        ),
        (OBJECT_META, "managedFields", atomic()),
        (OBJECT_META, "ownerReferences", map_by("uid")),
        (
            "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
            "matchExpressions",
            atomic(),
        ),
        (
            "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelectorRequirement",
            "values",
            atomic(),
        ),
        (
            "io.k8s.apimachinery.pkg.apis.meta.v1.FieldSelectorRequirement",
            "values",
            atomic(),
        ),
        (
            "io.k8s.apimachinery.pkg.apis.meta.v1.StatusDetails",
            "causes",
            atomic(),
        ),
        (
            "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions",
            "dryRun",
            atomic(),
        ),
    ];
    out.extend([
        (
            "io.k8s.api.core.v1.ServiceAccount",
            "secrets",
            map_by("name"),
        ),
        (
            "io.k8s.api.core.v1.ServiceAccount",
            "imagePullSecrets",
            atomic(),
        ),
        ("io.k8s.api.core.v1.NamespaceSpec", "finalizers", atomic()),
        (
            "io.k8s.api.core.v1.NamespaceStatus",
            "conditions",
            map_by("type"),
        ),
        ("io.k8s.api.core.v1.Endpoints", "subsets", atomic()),
        ("io.k8s.api.core.v1.EndpointSubset", "addresses", atomic()),
        (
            "io.k8s.api.core.v1.EndpointSubset",
            "notReadyAddresses",
            atomic(),
        ),
        ("io.k8s.api.core.v1.EndpointSubset", "ports", atomic()),
        ("io.k8s.api.rbac.v1.Role", "rules", atomic()),
        ("io.k8s.api.rbac.v1.ClusterRole", "rules", atomic()),
        (
            "io.k8s.api.rbac.v1.AggregationRule",
            "clusterRoleSelectors",
            atomic(),
        ),
        ("io.k8s.api.rbac.v1.RoleBinding", "subjects", atomic()),
        (
            "io.k8s.api.rbac.v1.ClusterRoleBinding",
            "subjects",
            atomic(),
        ),
        ("io.k8s.api.rbac.v1.PolicyRule", "apiGroups", atomic()),
        ("io.k8s.api.rbac.v1.PolicyRule", "nonResourceURLs", atomic()),
        ("io.k8s.api.rbac.v1.PolicyRule", "resourceNames", atomic()),
        ("io.k8s.api.rbac.v1.PolicyRule", "resources", atomic()),
        ("io.k8s.api.rbac.v1.PolicyRule", "verbs", atomic()),
        (
            "io.k8s.api.authentication.v1.TokenReviewSpec",
            "audiences",
            atomic(),
        ),
        (
            "io.k8s.api.authentication.v1.TokenReviewStatus",
            "audiences",
            atomic(),
        ),
        ("io.k8s.api.authentication.v1.UserInfo", "groups", atomic()),
        (
            "io.k8s.api.authentication.v1.TokenRequestSpec",
            "audiences",
            atomic(),
        ),
        (
            "io.k8s.api.authorization.v1.SubjectAccessReviewSpec",
            "groups",
            atomic(),
        ),
        (
            "io.k8s.api.authorization.v1.FieldSelectorAttributes",
            "requirements",
            atomic(),
        ),
        (
            "io.k8s.api.authorization.v1.LabelSelectorAttributes",
            "requirements",
            atomic(),
        ),
        (
            "io.k8s.api.authorization.v1.SubjectRulesReviewStatus",
            "resourceRules",
            atomic(),
        ),
        (
            "io.k8s.api.authorization.v1.SubjectRulesReviewStatus",
            "nonResourceRules",
            atomic(),
        ),
        (
            "io.k8s.api.authorization.v1.ResourceRule",
            "verbs",
            atomic(),
        ),
        (
            "io.k8s.api.authorization.v1.ResourceRule",
            "apiGroups",
            atomic(),
        ),
        (
            "io.k8s.api.authorization.v1.ResourceRule",
            "resources",
            atomic(),
        ),
        (
            "io.k8s.api.authorization.v1.ResourceRule",
            "resourceNames",
            atomic(),
        ),
        (
            "io.k8s.api.authorization.v1.NonResourceRule",
            "verbs",
            atomic(),
        ),
        (
            "io.k8s.api.authorization.v1.NonResourceRule",
            "nonResourceURLs",
            atomic(),
        ),
    ]);
    out
}

/// Definitions kube-apiserver marks `x-kubernetes-map-type: atomic` (`+structType=atomic`).
const ATOMIC_STRUCTS: &[&str] = &[
    "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
    "io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference",
    "io.k8s.api.core.v1.ObjectReference",
    "io.k8s.api.core.v1.LocalObjectReference",
    "io.k8s.api.core.v1.EndpointAddress",
    "io.k8s.api.core.v1.EndpointPort",
    "io.k8s.api.core.v1.EndpointSubset",
    "io.k8s.api.rbac.v1.RoleRef",
    "io.k8s.api.rbac.v1.Subject",
];

/// Adds the extensions to the definitions present in `defs`.
pub(super) fn apply(defs: &mut Map<String, Value>) {
    for (def, prop, ext) in field_extensions() {
        let Some(Value::Object(field)) = defs
            .get_mut(def)
            .and_then(|d| d.get_mut("properties"))
            .and_then(|p| p.get_mut(prop))
        else {
            continue;
        };
        if let Value::Object(ext) = ext {
            field.extend(ext);
        }
    }
    for def in ATOMIC_STRUCTS {
        if let Some(Value::Object(d)) = defs.get_mut(*def) {
            d.insert("x-kubernetes-map-type".into(), "atomic".into());
        }
    }
}

/// The patch strategy published for a field, as `(strategy, merge key)`.
#[cfg(test)]
pub(super) fn patch_strategy(def: &str, prop: &str) -> Option<(String, String)> {
    field_extensions()
        .into_iter()
        .find(|(d, p, _)| *d == def && *p == prop)
        .and_then(|(_, _, ext)| {
            let strategy = ext["x-kubernetes-patch-strategy"].as_str()?.to_owned();
            let key = ext["x-kubernetes-patch-merge-key"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            Some((strategy, key))
        })
}

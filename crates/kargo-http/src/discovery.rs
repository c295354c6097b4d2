//! Discovery documents, built from the resource table: `/api`, `/apis`, `/apis/<g>`,
//! and the `APIResourceList` of every group-version; and aggregated discovery (`/api` and
//! `/apis` as one `APIGroupDiscoveryList` each, `apidiscovery.k8s.io/v2`), which kubectl asks
//! for first and which saves it a request per group-version.

use axum::http::HeaderMap;
use kargo_api::resources::{self, ResourceType};
use serde_json::{Value, json};

/// The media type of aggregated discovery; a response must carry exactly this `Content-Type`.
pub(crate) const AGGREGATED_CONTENT_TYPE: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// Whether the client's `Accept` asks for aggregated discovery in `v2` (an older client asking
/// only for `v2beta1` gets the legacy documents, which it accepts too).
pub(crate) fn aggregated_wanted(headers: &HeaderMap) -> bool {
    headers
        .get_all(http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| {
            let params: Vec<&str> = t.split(';').map(str::trim).collect();
            params.contains(&"g=apidiscovery.k8s.io")
                && params.contains(&"v=v2")
                && params.contains(&"as=APIGroupDiscoveryList")
        })
}

/// The `APIGroupDiscoveryList` of `/api` (`core`: the legacy group) or of `/apis` (every named
/// group, in discovery order).
pub(crate) fn aggregated(core: bool) -> Value {
    let mut groups: Vec<&str> = Vec::new();
    for (g, _) in resources::group_versions() {
        if g.is_empty() == core && !groups.contains(&g) {
            groups.push(g);
        }
    }
    let items: Vec<Value> = groups
        .into_iter()
        .map(|group| {
            let versions: Vec<Value> = resources::group_versions()
                .into_iter()
                .filter(|(g, _)| *g == group)
                .map(|(g, v)| {
                    let resources: Vec<Value> = resources::in_group_version(g, v)
                        .map(aggregated_resource)
                        .collect();
                    json!({"version": v, "resources": resources, "freshness": "Current"})
                })
                .collect();
            let mut metadata = json!({"creationTimestamp": null});
            if !group.is_empty() {
                metadata["name"] = group.into();
            }
            json!({"metadata": metadata, "versions": versions})
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    })
}

/// One resource of aggregated discovery (`APIResourceDiscovery`), its subresources inside.
fn aggregated_resource(rt: &ResourceType) -> Value {
    let mut entry = json!({
        "resource": rt.plural,
        "responseKind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
        "scope": if rt.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": rt.singular,
        "verbs": rt.verbs,
    });
    if !rt.short_names.is_empty() {
        entry["shortNames"] = json!(rt.short_names);
    }
    if !rt.categories.is_empty() {
        entry["categories"] = json!(rt.categories);
    }
    if !rt.subresources.is_empty() {
        let subresources: Vec<Value> = rt
            .subresources
            .iter()
            .map(|sub| {
                let (group, version) = if sub.group.is_empty() {
                    (rt.group, rt.version)
                } else {
                    (sub.group, sub.version)
                };
                json!({
                    "subresource": sub.name,
                    "responseKind": {"group": group, "version": version, "kind": sub.kind},
                    "verbs": sub.verbs,
                })
            })
            .collect();
        entry["subresources"] = subresources.into();
    }
    entry
}

/// `/api`.
pub(crate) fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

fn group(name: &str) -> Value {
    let versions: Vec<Value> = resources::group_versions()
        .into_iter()
        .filter(|(g, _)| *g == name)
        .map(|(g, v)| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
        .collect();
    let preferred = versions.first().cloned().unwrap_or(Value::Null);
    json!({"name": name, "versions": versions, "preferredVersion": preferred})
}

/// `/apis`.
pub(crate) fn api_group_list() -> Value {
    let mut names: Vec<&str> = Vec::new();
    for (g, _) in resources::group_versions() {
        if !g.is_empty() && !names.contains(&g) {
            names.push(g);
        }
    }
    json!({
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": names.into_iter().map(group).collect::<Vec<_>>(),
    })
}

/// `/apis/<group>`, if the group is served.
pub(crate) fn api_group(name: &str) -> Option<Value> {
    resources::group_versions()
        .iter()
        .any(|(g, _)| *g == name && !g.is_empty())
        .then(|| {
            let mut g = group(name);
            if let Some(map) = g.as_object_mut() {
                map.insert("kind".into(), "APIGroup".into());
                map.insert("apiVersion".into(), "v1".into());
            }
            g
        })
}

fn resource_entry(rt: &ResourceType) -> Value {
    let mut entry = json!({
        "name": rt.plural,
        "singularName": rt.singular,
        "namespaced": rt.namespaced,
        "kind": rt.kind,
        "verbs": rt.verbs,
    });
    if !rt.short_names.is_empty() {
        entry["shortNames"] = json!(rt.short_names);
    }
    if !rt.categories.is_empty() {
        entry["categories"] = json!(rt.categories);
    }
    entry
}

/// `/api/v1` or `/apis/<group>/<version>`, if served.
pub(crate) fn api_resource_list(group: &str, version: &str) -> Option<Value> {
    let mut entries = Vec::new();
    for rt in resources::in_group_version(group, version) {
        entries.push(resource_entry(rt));
        for sub in rt.subresources {
            let mut entry = json!({
                "name": format!("{}/{}", rt.plural, sub.name),
                "singularName": "",
                "namespaced": rt.namespaced,
                "kind": sub.kind,
                "verbs": sub.verbs,
            });
            if !sub.group.is_empty() {
                entry["group"] = sub.group.into();
                entry["version"] = sub.version.into();
            }
            entries.push(entry);
        }
    }
    if entries.is_empty() {
        return None;
    }
    let group_version = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": entries,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_v1_lists_service_accounts_with_short_name_and_token_subresource() {
        let list = api_resource_list("", "v1").unwrap();
        let resources = list["resources"].as_array().unwrap();
        let sa = resources
            .iter()
            .find(|r| r["name"] == "serviceaccounts")
            .unwrap();
        assert_eq!(sa["shortNames"], json!(["sa"]));
        assert_eq!(sa["kind"], "ServiceAccount");
        assert_eq!(sa["namespaced"], true);
        let token = resources
            .iter()
            .find(|r| r["name"] == "serviceaccounts/token")
            .unwrap();
        assert_eq!(token["group"], "authentication.k8s.io");
        assert_eq!(token["kind"], "TokenRequest");
        assert!(api_resource_list("", "v2").is_none());
    }

    #[test]
    fn group_list_names_every_served_group_once() {
        let list = api_group_list();
        let names: Vec<&str> = list["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "rbac.authorization.k8s.io",
                "kargo.akuity.io",
                "authentication.k8s.io",
                "authorization.k8s.io"
            ]
        );
        assert_eq!(
            api_group("kargo.akuity.io").unwrap()["preferredVersion"]["version"],
            "v1alpha1"
        );
    }
}

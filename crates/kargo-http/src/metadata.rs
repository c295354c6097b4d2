//! `PartialObjectMetadata` responses (`Accept:
//! application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1`): only each object's
//! `metadata`, as kube-rs' `metadata_watcher`, the Python client's `PartialObjectMetadata`
//! requests and kube-controller-manager's metadata informers ask for. Gets, lists and watches.

use axum::http::HeaderMap;
use serde_json::{Value, json};

/// `apiVersion` of the partial objects.
const API_VERSION: &str = "meta.k8s.io/v1";

/// Whether the client asked for metadata only: a media type of its `Accept` with
/// `as=PartialObjectMetadata` or `as=PartialObjectMetadataList` in `meta.k8s.io` (`v1`, or the
/// `v1beta1` older clients send).
pub(crate) fn wanted(headers: &HeaderMap) -> bool {
    headers
        .get_all(http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| {
            let params: Vec<&str> = t.split(';').map(str::trim).collect();
            params.contains(&"g=meta.k8s.io")
                && (params.contains(&"as=PartialObjectMetadata")
                    || params.contains(&"as=PartialObjectMetadataList"))
                && (params.contains(&"v=v1") || params.contains(&"v=v1beta1"))
        })
}

/// The `PartialObjectMetadata` of an object.
pub(crate) fn object(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": API_VERSION,
        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

/// The `PartialObjectMetadataList` of a list's JSON (its `metadata` kept: resourceVersion,
/// continue, remainingItemCount).
pub(crate) fn list(list: &Value) -> Value {
    let items: Vec<Value> = list
        .get("items")
        .and_then(Value::as_array)
        .map(|items| items.iter().map(object).collect())
        .unwrap_or_default();
    json!({
        "kind": "PartialObjectMetadataList",
        "apiVersion": API_VERSION,
        "metadata": list.get("metadata").cloned().unwrap_or_else(|| json!({})),
        "items": items,
    })
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::ACCEPT, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn metadata_is_what_kube_clients_ask_for_and_only_that() {
        assert!(wanted(&accept(
            "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
        )));
        assert!(wanted(&accept(
            "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1beta1,application/json"
        )));
        assert!(!wanted(&accept("application/json")));
        assert!(!wanted(&accept(
            "application/json;as=Table;v=v1;g=meta.k8s.io"
        )));
    }

    #[test]
    fn a_list_keeps_its_metadata_and_each_item_only_its_metadata() {
        let full = json!({
            "kind": "ServiceAccountList",
            "apiVersion": "v1",
            "metadata": {"resourceVersion": "7"},
            "items": [{"kind": "ServiceAccount", "metadata": {"name": "a"}, "secrets": []}],
        });
        assert_eq!(
            list(&full),
            json!({
                "kind": "PartialObjectMetadataList",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": {"resourceVersion": "7"},
                "items": [{"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": {"name": "a"}}],
            })
        );
    }
}

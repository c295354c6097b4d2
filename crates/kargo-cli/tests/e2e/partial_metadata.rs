//! Issue 18, item 4: `PartialObjectMetadata` and `PartialObjectMetadataList`, as kube-rs'
//! metadata watcher and the other metadata clients ask for them: gets, lists and watches answer
//! each object's `metadata` only (no Secret data on the wire), in `meta.k8s.io/v1`.

use serde_json::Value;

use crate::harness::{Server, on_both_stores};

const LIST: &str =
    "Accept: application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json";
const ONE: &str =
    "Accept: application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json";

on_both_stores!(gets_lists_and_watches_answer_metadata_only, metadata_only);

fn metadata_only(store: &[String]) {
    let server = Server::start_with(store);
    let token = server.admin_token();
    server.kubectl(&["create", "namespace", "meta"]).ok();
    server
        .kubectl(&[
            "create",
            "secret",
            "generic",
            "s",
            "-n",
            "meta",
            "--from-literal=password=hunter2",
        ])
        .ok();

    let (code, body) = server.curl(
        "GET",
        "/api/v1/namespaces/meta/secrets",
        Some(&token),
        &[LIST],
        None,
    );
    assert_eq!(code, 200, "{body}");
    let list: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(list["kind"], "PartialObjectMetadataList");
    assert_eq!(list["apiVersion"], "meta.k8s.io/v1");
    assert!(list["metadata"]["resourceVersion"].is_string(), "{list}");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list}");
    assert_eq!(items[0]["kind"], "PartialObjectMetadata");
    assert_eq!(items[0]["metadata"]["name"], "s");
    assert!(
        items[0].get("data").is_none() && !body.contains("aHVudGVyMg"),
        "{body}"
    );

    let (code, body) = server.curl(
        "GET",
        "/api/v1/namespaces/meta/secrets/s",
        Some(&token),
        &[ONE],
        None,
    );
    assert_eq!(code, 200, "{body}");
    let one: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (
            one["kind"].as_str(),
            one["metadata"]["name"].as_str(),
            one.get("data")
        ),
        (Some("PartialObjectMetadata"), Some("s"), None)
    );

    // Without the media type, the object itself.
    let (_, body) = server.curl(
        "GET",
        "/api/v1/namespaces/meta/secrets/s",
        Some(&token),
        &[],
        None,
    );
    assert!(body.contains("aHVudGVyMg"), "{body}");

    let (code, body) = server.curl(
        "GET",
        "/api/v1/namespaces/meta/secrets?watch=1&timeoutSeconds=1",
        Some(&token),
        &[LIST],
        None,
    );
    assert_eq!(code, 200, "{body}");
    let event: Value = serde_json::from_str(body.lines().next().unwrap()).unwrap();
    assert_eq!(event["type"], "ADDED");
    assert_eq!(event["object"]["kind"], "PartialObjectMetadata");
    assert_eq!(event["object"]["metadata"]["name"], "s");
    assert!(!body.contains("aHVudGVyMg"), "{body}");
}

/// Issue 18, item 4: aggregated discovery. kubectl asks `/api` and `/apis` for
/// `APIGroupDiscoveryList` first; served, it needs no request per group-version, and every kind
/// it finds there works.
#[test]
fn kubectl_discovers_everything_from_two_aggregated_documents() {
    let server = Server::start();
    let token = server.admin_token();
    let accept = "Accept: application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";
    let (code, headers, body) =
        server.curl_with_headers("GET", "/apis", Some(&token), &[accept], None);
    assert_eq!(code, 200, "{body}");
    assert!(
        headers.to_ascii_lowercase().contains(
            "content-type: application/json;g=apidiscovery.k8s.io;v=v2;as=apigroupdiscoverylist"
        ),
        "{headers}"
    );
    let list: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(list["kind"], "APIGroupDiscoveryList");
    let rbac = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["metadata"]["name"] == "rbac.authorization.k8s.io")
        .expect("the RBAC group");
    let roles = &rbac["versions"][0]["resources"][0];
    assert_eq!(
        (
            roles["resource"].as_str(),
            roles["scope"].as_str(),
            roles["responseKind"]["kind"].as_str()
        ),
        (Some("roles"), Some("Namespaced"), Some("Role"))
    );
    let (_, body) = server.curl("GET", "/api", Some(&token), &[accept], None);
    let core: Value = serde_json::from_str(&body).unwrap();
    let sa = core["items"][0]["versions"][0]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"] == "serviceaccounts")
        .expect("serviceaccounts")
        .clone();
    assert_eq!(sa["subresources"][0]["subresource"], "token");
    assert_eq!(
        sa["subresources"][0]["responseKind"]["kind"],
        "TokenRequest"
    );
    // Without the media type: the legacy documents.
    let (_, body) = server.curl("GET", "/api", Some(&token), &[], None);
    assert!(body.contains("\"APIVersions\""), "{body}");

    // kubectl, with an empty discovery cache, asks for nothing but the two documents.
    let run = server.kubectl(&["api-resources", "-v=6"]);
    let requests: Vec<&str> = run
        .stderr
        .lines()
        .filter_map(|l| l.split_once(" GET ").map(|(_, rest)| rest))
        .collect();
    assert!(run.ok().contains("serviceaccounts"), "{}", run.stdout);
    assert_eq!(requests.len(), 2, "{requests:#?}");
    assert!(
        requests[0].contains("/api?") && requests[1].contains("/apis?"),
        "{requests:#?}"
    );
    server.kubectl(&["get", "clusterroles", "view"]).ok();
}

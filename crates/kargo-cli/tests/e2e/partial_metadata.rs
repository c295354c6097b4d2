//! Issue 18, item 4: `PartialObjectMetadata` and `PartialObjectMetadataList`, as kube-rs'
//! metadata watcher and the other metadata clients ask for them: gets, lists and watches answer
//! each object's `metadata` only (no Secret data on the wire), in `meta.k8s.io/v1`.

use serde_json::Value;

use crate::harness::Server;

const LIST: &str =
    "Accept: application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json";
const ONE: &str =
    "Accept: application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json";

#[test]
fn gets_lists_and_watches_answer_metadata_only() {
    let server = Server::start();
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

//! Bounded work per request (issue 13): no single request can freeze the server, exhaust its
//! memory or store an object that cannot be read again. Each attack runs against a real server
//! while an honest client's p99 is measured.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{Server, eventually};
use crate::honest::{Latencies, honest_client};

/// The p99 an honest client must keep during an attack. Generous: these machines are shared
/// with builds; before the limits, honest requests were not answered at all.
const HONEST_P99: Duration = Duration::from_secs(2);

const STAGES: &str = "/apis/kargo.akuity.io/v1alpha1/namespaces/p/stages";

fn status(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

fn nested(depth: usize) -> Value {
    let mut v = json!("leaf");
    for _ in 0..depth {
        v = json!({ "a": v });
    }
    v
}

/// A server with namespace `p`, and the admin's token.
fn server_with_namespace(args: &[&str]) -> (Server, String) {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let server = Server::start_with(&args);
    server.kubectl(&["create", "namespace", "p"]).ok();
    let token = server.admin_token();
    (server, token)
}

fn create_stage(server: &Server, token: &str, name: &str, spec: Value) -> (u16, String) {
    let body = json!({"apiVersion": "kargo.akuity.io/v1alpha1", "kind": "Stage",
        "metadata": {"name": name}, "spec": spec});
    server.curl(
        "POST",
        STAGES,
        Some(token),
        &["Content-Type: application/json"],
        Some(body.to_string().as_bytes()),
    )
}

/// Runs `attack` in a loop on another thread while an honest client reads; returns the honest
/// client's latencies and what each attack answered.
fn during<T: Send>(
    server: &Server,
    token: &str,
    attack: impl Fn(usize) -> T + Send + Sync,
) -> (Latencies, Vec<T>) {
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let attacker = scope.spawn(|| {
            let mut answers = Vec::new();
            while !stop.load(Ordering::Relaxed) || answers.is_empty() {
                answers.push(attack(answers.len()));
            }
            answers
        });
        std::thread::sleep(Duration::from_millis(200));
        let honest = honest_client(server, token, "/api/v1/namespaces/p", 300);
        stop.store(true, Ordering::Relaxed);
        (honest, attacker.join().expect("the attacker thread"))
    })
}

#[test]
fn a_strategic_patch_ordering_forty_thousand_finalizers_is_answered_and_others_are_served() {
    let (server, token) = server_with_namespace(&[]);
    server
        .kubectl(&["create", "configmap", "c", "-n", "p"])
        .ok();
    let (honest, answers) = during(&server, &token, |round| {
        let mut items: Vec<String> = (0..40_000).map(|i| format!("k.io/f{i}")).collect();
        if round % 2 == 1 {
            items.reverse();
        }
        let patch =
            json!({"metadata": {"$setElementOrder/finalizers": items, "finalizers": items}});
        let started = Instant::now();
        let (code, body) = server.curl(
            "PATCH",
            "/api/v1/namespaces/p/configmaps/c",
            Some(&token),
            &["Content-Type: application/strategic-merge-patch+json"],
            Some(patch.to_string().as_bytes()),
        );
        (code, body, started.elapsed())
    });
    honest.assert_served_within("the patches", HONEST_P99);
    for (code, body, took) in &answers {
        assert_eq!(
            *code, 200,
            "the patch is applied, not timed out ({took:?}): {body}"
        );
    }
    eprintln!(
        "40,000-item $setElementOrder patches: {} answered, slowest {:?}; honest {honest}",
        answers.len(),
        answers.iter().map(|(_, _, t)| *t).max().unwrap_or_default()
    );
}

#[test]
fn a_json_patch_of_doubling_copies_is_refused_without_exhausting_memory() {
    let (server, token) = server_with_namespace(&[]);
    let (code, body) = create_stage(&server, &token, "s", json!({"a": "x".repeat(400)}));
    assert_eq!(code, 201, "{body}");
    let before = server.peak_memory();
    // Each `copy` of `/spec` into itself doubles it: 40 of them (about 1.5 KB) would make a
    // 400-terabyte object.
    let ops: Vec<Value> = (0..40)
        .map(|i| json!({"op": "copy", "from": "/spec", "path": format!("/spec/c{i}")}))
        .collect();
    let patch = Value::Array(ops).to_string();
    assert!(patch.len() < 2048, "{}", patch.len());
    let (honest, answers) = during(&server, &token, |_| {
        server.curl(
            "PATCH",
            &format!("{STAGES}/s"),
            Some(&token),
            &["Content-Type: application/json-patch+json"],
            Some(patch.as_bytes()),
        )
    });
    honest.assert_served_within("the patches", HONEST_P99);
    for (code, body) in &answers {
        assert!(
            (400..500).contains(code),
            "refused as the client's mistake: {code} {body}"
        );
        assert_eq!(status(body)["kind"], "Status");
    }
    let grown = server.peak_memory().saturating_sub(before);
    assert!(
        grown < 256 << 20,
        "the server's peak memory grew by {grown} bytes"
    );
    let (code, body) = server.curl("GET", &format!("{STAGES}/s"), Some(&token), &[], None);
    assert_eq!(code, 200);
    assert_eq!(
        status(&body)["spec"],
        json!({"a": "x".repeat(400)}),
        "unchanged"
    );
    eprintln!(
        "doubling-copy patches: {} refused ({}), peak memory grew {} KiB; honest {honest}",
        answers.len(),
        answers[0].0,
        grown / 1024
    );
}

#[test]
fn no_write_path_stores_an_object_nested_deeper_than_the_limit() {
    let (server, token) = server_with_namespace(&[]);
    // Created deep (within the JSON parser's limit, beyond the storage limit).
    let (code, body) = create_stage(&server, &token, "deep", nested(110));
    assert_eq!(code, 422, "{body}");
    assert!(
        status(&body)["message"]
            .as_str()
            .unwrap()
            .contains("nests deeper than 100 levels"),
        "{body}"
    );
    let (code, body) = create_stage(&server, &token, "s", nested(3));
    assert_eq!(code, 201, "{body}");
    let json_patch = |ops: Value| {
        server.curl(
            "PATCH",
            &format!("{STAGES}/s"),
            Some(&token),
            &["Content-Type: application/json-patch+json"],
            Some(ops.to_string().as_bytes()),
        )
    };
    // Added deep in one step, and grown deep by copying a subtree into its own descendants.
    let add = json!([{"op": "add", "path": "/spec/deep", "value": nested(110)}]);
    let copies: Vec<Value> = (0..60)
        .map(|i| {
            let path = "/a".repeat(i + 1);
            json!({"op": "copy", "from": "/spec", "path": format!("/spec{path}/x")})
        })
        .collect();
    for ops in [add, Value::Array(copies)] {
        let (code, body) = json_patch(ops);
        assert_eq!(code, 422, "{body}");
    }
    let merge = json!({"spec": {"deep": nested(110)}}).to_string();
    // An apply names its API version, as kube-apiserver requires.
    let apply = json!({"apiVersion": "kargo.akuity.io/v1alpha1", "spec": {"deep": nested(110)}})
        .to_string();
    for (content_type, body) in [
        ("application/merge-patch+json", &merge),
        ("application/apply-patch+yaml", &apply),
    ] {
        let (code, body) = server.curl(
            "PATCH",
            &format!("{STAGES}/s?fieldManager=t"),
            Some(&token),
            &[&format!("Content-Type: {content_type}")],
            Some(body.as_bytes()),
        );
        assert_eq!(code, 422, "{content_type}: {body}");
    }
    // The stage is as it was, and every list still reads.
    let (code, body) = server.curl("GET", &format!("{STAGES}/s"), Some(&token), &[], None);
    assert_eq!(code, 200, "{body}");
    assert_eq!(status(&body)["spec"], nested(3));
    let (code, body) = server.curl(
        "GET",
        "/apis/kargo.akuity.io/v1alpha1/stages",
        Some(&token),
        &[],
        None,
    );
    assert_eq!(code, 200, "{body}");
}

#[test]
fn an_object_stored_unreadable_is_left_out_of_lists_and_can_be_deleted() {
    let (mut server, token) = server_with_namespace(&[]);
    let (code, body) = create_stage(&server, &token, "fine", json!({}));
    assert_eq!(code, 201, "{body}");
    server.stop_for_maintenance();
    // What an older server (without the depth limit) or damage outside the server left.
    let too_deep = json!({"apiVersion": "kargo.akuity.io/v1alpha1", "kind": "Stage",
        "metadata": {"name": "deep", "namespace": "p", "uid": "u"}, "spec": nested(140)});
    let mut deep_bytes = serde_json::to_vec(&too_deep).unwrap();
    assert!(serde_json::from_slice::<Value>(&deep_bytes).is_err());
    {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            use kargo_store::Store;
            let store = kargo_store::sqlite::SqliteStore::open(&server.data_dir().join("kargo.db"))
                .expect("open the store");
            store
                .create(
                    "/registry/kargo.akuity.io/stages/p/deep",
                    std::mem::take(&mut deep_bytes),
                )
                .await
                .expect("write");
            store
                .create(
                    "/registry/kargo.akuity.io/stages/p/garbled",
                    b"{\"metadata\": {\"name\": \"garbled\"".to_vec(),
                )
                .await
                .expect("write");
            store.close().await.expect("close");
        });
    }
    server.start_again();
    let (code, headers, body) = server.curl_with_headers("GET", STAGES, Some(&token), &[], None);
    assert_eq!(code, 200, "{body}");
    let list = status(&body);
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["fine"]);
    for name in ["deep", "garbled"] {
        assert!(
            headers.contains(&format!(
                "stages.kargo.akuity.io \\\"{name}\\\" in namespace \\\"p\\\" could not be decoded"
            )),
            "a warning names {name}: {headers}"
        );
        let (code, body) = server.curl("GET", &format!("{STAGES}/{name}"), Some(&token), &[], None);
        assert_eq!(code, 500, "{body}");
        assert!(
            status(&body)["message"]
                .as_str()
                .unwrap()
                .contains("can only be deleted"),
            "{body}"
        );
    }
    let (code, body) = server.curl("DELETE", &format!("{STAGES}/deep"), Some(&token), &[], None);
    assert_eq!(code, 200, "{body}");
    let (code, _) = server.curl("GET", &format!("{STAGES}/deep"), Some(&token), &[], None);
    assert_eq!(code, 404);
    // Deleting the namespace deletes what remains, readable or not.
    server
        .kubectl(&["delete", "namespace", "p", "--wait=false"])
        .ok();
    assert!(
        eventually(Duration::from_secs(20), || {
            server
                .curl("GET", "/api/v1/namespaces/p", Some(&token), &[], None)
                .0
                == 404
        }),
        "the namespace is deleted"
    );
}

#[test]
fn objects_over_the_size_limit_are_refused_on_every_write_path() {
    let (server, token) = server_with_namespace(&["--max-object-size", "65536"]);
    let big = "x".repeat(70_000);
    let cm = |name: &str, value: &str| {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "p"},
            "data": {"k": value}})
    };
    let configmaps = "/api/v1/namespaces/p/configmaps";
    let json_ct = ["Content-Type: application/json"];
    let send = |method: &str, path: &str, headers: &[&str], body: &[u8]| {
        server.curl(method, path, Some(&token), headers, Some(body))
    };
    let expect_413 = |(code, body): (u16, String), what: &str| {
        assert_eq!(code, 413, "{what}: {body}");
        let s = status(&body);
        assert_eq!(s["reason"], "RequestEntityTooLarge", "{what}");
        let message = s["message"].as_str().unwrap();
        assert!(
            message.starts_with("Request entity too large: the ")
                && message.contains("object would be larger than 65536 bytes"),
            "{what}: {message}"
        );
    };
    expect_413(
        send(
            "POST",
            configmaps,
            &json_ct,
            cm("big", &big).to_string().as_bytes(),
        ),
        "create",
    );
    expect_413(
        send(
            "POST",
            &format!("{configmaps}?dryRun=All"),
            &json_ct,
            cm("big", &big).to_string().as_bytes(),
        ),
        "dry-run create",
    );
    let (code, body) = send(
        "POST",
        configmaps,
        &json_ct,
        cm("c", "small").to_string().as_bytes(),
    );
    assert_eq!(code, 201, "{body}");
    let path = format!("{configmaps}/c");
    expect_413(
        send("PUT", &path, &json_ct, cm("c", &big).to_string().as_bytes()),
        "update",
    );
    let merge = json!({"data": {"k": big}}).to_string();
    // The apply takes the field over from its creator (else it is a 409 conflict first).
    for (content_type, query, body) in [
        ("application/merge-patch+json", "", merge.clone()),
        ("application/strategic-merge-patch+json", "", merge.clone()),
        (
            "application/json-patch+json",
            "",
            json!([{"op": "replace", "path": "/data/k", "value": big}]).to_string(),
        ),
        (
            "application/apply-patch+yaml",
            "&force=true",
            json!({"apiVersion": "v1", "data": {"k": big}}).to_string(),
        ),
    ] {
        expect_413(
            send(
                "PATCH",
                &format!("{path}?fieldManager=t{query}"),
                &[&format!("Content-Type: {content_type}")],
                body.as_bytes(),
            ),
            content_type,
        );
    }
    // Server-side apply of a new object creates it: the same limit.
    expect_413(
        send(
            "PATCH",
            &format!("{configmaps}/new?fieldManager=t"),
            &["Content-Type: application/apply-patch+yaml"],
            cm("new", &big).to_string().as_bytes(),
        ),
        "apply create",
    );
    // The status subresource.
    let (code, body) = create_stage(&server, &token, "s", json!({}));
    assert_eq!(code, 201, "{body}");
    expect_413(
        send(
            "PATCH",
            &format!("{STAGES}/s/status"),
            &["Content-Type: application/merge-patch+json"],
            json!({"status": {"big": big}}).to_string().as_bytes(),
        ),
        "status patch",
    );
    let (code, body) = server.curl("GET", &path, Some(&token), &[], None);
    assert_eq!(code, 200);
    assert_eq!(status(&body)["data"]["k"], "small");
}

#[test]
fn a_patch_cannot_rename_or_move_an_object() {
    let (server, token) = server_with_namespace(&[]);
    server
        .kubectl(&["create", "configmap", "c", "-n", "p"])
        .ok();
    let patch = |body: Value| {
        server.curl(
            "PATCH",
            "/api/v1/namespaces/p/configmaps/c",
            Some(&token),
            &["Content-Type: application/merge-patch+json"],
            Some(body.to_string().as_bytes()),
        )
    };
    let (code, body) = patch(json!({"metadata": {"name": "other"}}));
    assert_eq!(code, 400, "{body}");
    assert_eq!(
        status(&body)["message"],
        "the name of the object (other) does not match the name on the URL (c)"
    );
    let (code, body) = patch(json!({"metadata": {"namespace": "q"}}));
    assert_eq!(code, 400, "{body}");
    assert_eq!(
        status(&body)["message"],
        "the namespace of the object (q) does not match the namespace on the URL (p)"
    );
    server.kubectl(&["get", "configmap", "c", "-n", "p"]).ok();
}

#[test]
fn duplicate_fields_are_warned_about_and_refused_under_strict_validation() {
    let (server, token) = server_with_namespace(&[]);
    let body = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","name":"b"},"data":{"k":"1","k":"2"}}"#;
    let post = |query: &str| {
        server.curl_with_headers(
            "POST",
            &format!("/api/v1/namespaces/p/configmaps{query}"),
            Some(&token),
            &["Content-Type: application/json"],
            Some(body),
        )
    };
    let (code, _, body_text) = post("?fieldValidation=Strict");
    assert_eq!(code, 400, "{body_text}");
    assert_eq!(
        status(&body_text)["message"],
        "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: strict decoding error: duplicate field \"metadata.name\", duplicate field \"data.k\""
    );
    let (code, headers, body_text) = post("");
    assert_eq!(code, 201, "{body_text}");
    assert!(
        headers.contains("299 - \"duplicate field \\\"metadata.name\\\"\""),
        "{headers}"
    );
    let created = status(&body_text);
    assert_eq!(
        created["metadata"]["name"], "b",
        "the last value wins, as in Go"
    );
    assert_eq!(created["data"]["k"], "2");
}

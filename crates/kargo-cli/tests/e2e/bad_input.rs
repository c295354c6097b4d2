//! Bad input gets a clear 4xx `Status`, and the server keeps serving.

use crate::harness::Server;

fn status(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

#[test]
fn malformed_wrong_oversized_and_unknown_requests_are_client_errors() {
    let server = Server::start();
    let token = server.admin_token();
    let t = Some(token.as_str());
    server.kubectl(&["create", "namespace", "p"]).ok();
    let sa_path = "/api/v1/namespaces/p/serviceaccounts";
    let json = ["Content-Type: application/json"];
    // (method, path, headers, body, status code, reason)
    type Case<'a> = (&'a str, String, &'a [&'a str], Vec<u8>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            "POST",
            sa_path.into(),
            &json,
            b"{not json".to_vec(),
            400,
            "BadRequest",
        ),
        (
            "POST",
            sa_path.into(),
            &json,
            b"[1,2,3]".to_vec(),
            400,
            "BadRequest",
        ),
        (
            "POST",
            sa_path.into(),
            &json,
            br#"{"metadata":{"name":5}}"#.to_vec(),
            400,
            "BadRequest",
        ),
        (
            "POST",
            sa_path.into(),
            &json,
            br#"{"kind":"Secret","metadata":{"name":"x"}}"#.to_vec(),
            400,
            "BadRequest",
        ),
        (
            "POST",
            sa_path.into(),
            &json,
            br#"{"metadata":{"name":"x"},"automountServiceAccountToken":"yes"}"#.to_vec(),
            400,
            "BadRequest",
        ),
        (
            "POST",
            sa_path.into(),
            &json,
            vec![b' '; 3 * 1024 * 1024 + 10],
            413,
            "RequestEntityTooLarge",
        ),
        (
            "POST",
            sa_path.into(),
            &["Content-Type: application/vnd.kubernetes.protobuf"],
            b"garbage".to_vec(),
            400,
            "BadRequest",
        ),
        (
            "POST",
            sa_path.into(),
            &["Content-Type: application/xml"],
            b"<x/>".to_vec(),
            415,
            "UnsupportedMediaType",
        ),
        (
            "POST",
            "/api/v1/namespaces/p/pods".into(),
            &json,
            b"{}".to_vec(),
            404,
            "NotFound",
        ),
        (
            "POST",
            "/apis/example.com/v1/namespaces/p/widgets".into(),
            &json,
            b"{}".to_vec(),
            404,
            "NotFound",
        ),
        (
            "GET",
            format!("{sa_path}?labelSelector=a%20b"),
            &[],
            vec![],
            400,
            "BadRequest",
        ),
        (
            "GET",
            format!("{sa_path}?fieldSelector=spec.x%3Dy"),
            &[],
            vec![],
            400,
            "BadRequest",
        ),
        (
            "GET",
            format!("{sa_path}?limit=x"),
            &[],
            vec![],
            400,
            "BadRequest",
        ),
        (
            "GET",
            format!("{sa_path}?continue=garbage"),
            &[],
            vec![],
            400,
            "BadRequest",
        ),
        // Found by fuzzing: a signed resourceVersion parsed (Rust's integers take `+`).
        (
            "GET",
            format!("{sa_path}?resourceVersion=%2B1"),
            &[],
            vec![],
            400,
            "BadRequest",
        ),
        (
            "GET",
            format!("{sa_path}?resourceVersionMatch=Exact"),
            &[],
            vec![],
            400,
            "BadRequest",
        ),
        (
            "PATCH",
            format!("{sa_path}/default"),
            &["Content-Type: application/json-patch+json"],
            b"{not a patch".to_vec(),
            400,
            "BadRequest",
        ),
        (
            "PATCH",
            format!("{sa_path}/default"),
            &["Content-Type: application/json-patch+json"],
            br#"[{"op":"test","path":"/metadata/name","value":"other"}]"#.to_vec(),
            422,
            "Invalid",
        ),
        (
            "PATCH",
            format!("{sa_path}/default"),
            &["Content-Type: application/merge-patch+json"],
            b"3".to_vec(),
            400,
            "BadRequest",
        ),
        (
            "PATCH",
            format!("{sa_path}/default"),
            &["Content-Type: text/csv"],
            b"a,b".to_vec(),
            415,
            "UnsupportedMediaType",
        ),
        (
            "PUT",
            format!("{sa_path}/default"),
            &json,
            br#"{"metadata":{"name":"other"}}"#.to_vec(),
            400,
            "BadRequest",
        ),
        (
            "DELETE",
            format!("{sa_path}/default"),
            &json,
            br#"{"propagationPolicy":"Sideways"}"#.to_vec(),
            400,
            "BadRequest",
        ),
    ];
    for (method, path, headers, body, code, reason) in cases {
        let (got, text) = server.curl(
            method,
            &path,
            t,
            headers,
            (!body.is_empty()).then_some(body.as_slice()),
        );
        assert_eq!(got, code, "{method} {path}: {text}");
        let s = status(&text);
        assert_eq!(s["kind"], "Status", "{method} {path}: {text}");
        assert_eq!(s["reason"], reason, "{method} {path}: {text}");
        assert_eq!(s["code"], code, "{method} {path}: {text}");
        assert!(
            !s["message"].as_str().unwrap_or_default().is_empty(),
            "{text}"
        );
    }
    // Still serving, and nothing was created by the failures.
    let (code, body) = server.curl("GET", sa_path, t, &[], None);
    assert_eq!(code, 200, "{body}");
    let names: Vec<String> = status(&body)["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| {
            i["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(names, ["default"]);
}

#[test]
fn unauthenticated_requests_are_refused_but_health_and_version_answer() {
    let server = Server::start();
    for path in ["/healthz", "/readyz", "/livez"] {
        assert_eq!(
            server.curl("GET", path, None, &[], None),
            (200, "ok".to_owned()),
            "{path}"
        );
    }
    let (code, body) = server.curl("GET", "/version", None, &[], None);
    assert_eq!(code, 200);
    assert_eq!(status(&body)["minor"], "32");
    for token in [None, Some("not-a-token"), Some("eyJhbGciOiJub25lIn0.e30.")] {
        let (code, body) = server.curl("GET", "/api/v1/namespaces", token, &[], None);
        assert_eq!(code, 401, "{token:?}: {body}");
        assert_eq!(
            body,
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#
        );
    }
}

#[test]
fn admin_login_answers_as_the_kargo_api_does() {
    let server = Server::start();
    let login = |auth: Option<&str>| {
        let headers: Vec<String> = auth
            .map(|a| vec![format!("Authorization: {a}")])
            .unwrap_or_default();
        let refs: Vec<&str> = headers.iter().map(String::as_str).collect();
        server.curl("POST", "/v1beta1/login", None, &refs, None)
    };
    assert_eq!(
        login(None),
        (
            400,
            r#"{"error":"Authorization header is required"}"#.to_owned()
        )
    );
    assert_eq!(
        login(Some("Basic abc")),
        (
            400,
            r#"{"error":"Authorization header must be in format 'Bearer <password>'"}"#.to_owned()
        )
    );
    assert_eq!(
        login(Some("Bearer wrong")),
        (403, r#"{"error":"invalid password"}"#.to_owned())
    );
    let (code, body) = login(Some(&format!("Bearer {}", crate::harness::ADMIN_PASSWORD)));
    assert_eq!(code, 200);
    let token = status(&body)["idToken"]
        .as_str()
        .expect("idToken")
        .to_owned();
    assert_eq!(token.split('.').count(), 3);
    let (code, _) = server.curl("GET", "/api/v1/namespaces", Some(&token), &[], None);
    assert_eq!(code, 200);
    let (code, body) = server.curl(
        "GET",
        "/v1beta1/system/public-server-config",
        None,
        &[],
        None,
    );
    assert_eq!(
        (code, body.as_str()),
        (
            200,
            r#"{"oidcConfig":null,"adminAccountEnabled":true,"skipAuth":false}"#
        )
    );
}

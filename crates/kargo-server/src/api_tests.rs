//! In-process tests of the whole API ([`crate::testing::TestApi`]): what a client sees through
//! the Kargo REST API and the Kubernetes API, with no socket and no spawned binary.

use std::sync::{Arc, Mutex};

use base64::Engine;
use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::testing::{CLIENT_ADDRESS, TestApi};
use kargo_http::observe::{Observers, RequestObserver, RequestRecord};

/// Creates a Project, a ServiceAccount in it, a role `reader` that may get ServiceAccounts
/// granted to it, and a token `ci-token` for it; returns the token.
async fn reader_token(api: &TestApi) -> String {
    let mut answer = Value::Null;
    for (path, body, expected) in [
        (
            "/v1beta1/projects",
            json!({"apiVersion": "kargo.akuity.io/v1alpha1", "kind": "Project",
                   "metadata": {"name": "demo"}}),
            StatusCode::CREATED,
        ),
        (
            "/v1beta1/projects/demo/service-accounts",
            json!({"apiVersion": "v1", "kind": "ServiceAccount",
                   "metadata": {"name": "ci", "namespace": "demo"}}),
            StatusCode::CREATED,
        ),
        (
            "/v1beta1/projects/demo/roles",
            json!({"metadata": {"name": "reader"},
                   "rules": [{"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["get"]}]}),
            StatusCode::CREATED,
        ),
        (
            "/v1beta1/projects/demo/roles/grants",
            json!({"role": "reader",
                   "serviceAccounts": {"serviceAccounts": [{"name": "ci", "namespace": "demo"}]}}),
            StatusCode::OK,
        ),
        (
            "/v1beta1/projects/demo/service-accounts/ci/tokens",
            json!({"name": "ci-token"}),
            StatusCode::CREATED,
        ),
    ] {
        let (code, body) = api
            .request(Method::POST, path, Some(body), Some(&api.admin_token))
            .await;
        assert_eq!(code, expected, "{path}: {body}");
        answer = body;
    }
    let encoded = answer["data"]["token"].as_str().unwrap_or_default();
    let token = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap();
    String::from_utf8(token).unwrap()
}

#[tokio::test]
async fn a_token_reads_what_its_role_allows_is_forbidden_the_rest_and_stops_when_deleted() {
    let api = TestApi::new().await;
    let token = reader_token(&api).await;
    let sa = "/api/v1/namespaces/demo/serviceaccounts/ci";

    let (code, body) = api.request(Method::GET, sa, None, Some(&token)).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["metadata"]["name"], "ci");

    let secrets = "/api/v1/namespaces/demo/secrets";
    let (code, body) = api.request(Method::GET, secrets, None, Some(&token)).await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        body["message"],
        "secrets is forbidden: User \"system:serviceaccount:demo:ci\" cannot list resource \
         \"secrets\" in API group \"\" in the namespace \"demo\""
    );
    assert_eq!(body["reason"], "Forbidden");

    let (code, body) = api
        .request(
            Method::DELETE,
            "/v1beta1/projects/demo/service-account-tokens/ci-token",
            None,
            Some(&api.admin_token),
        )
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{body}");
    let (code, body) = api.request(Method::GET, sa, None, Some(&token)).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["message"], "Unauthorized");
}

/// A [`RequestRecord`], owned.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    user: Option<String>,
    verb: String,
    resource: String,
    namespace: String,
    name: String,
    method: Method,
    path: String,
    status: u16,
}

#[derive(Default)]
struct Recorder(Mutex<Vec<Seen>>);

impl RequestObserver for Recorder {
    fn request(&self, record: &RequestRecord<'_>) {
        assert_eq!(record.source, Some(CLIENT_ADDRESS));
        let seen = Seen {
            user: record.user.map(|u| u.username.clone()),
            verb: record.info.verb.as_str().to_owned(),
            resource: record.info.resource.to_owned(),
            namespace: record.info.namespace.to_owned(),
            name: record.info.name.to_owned(),
            method: record.method.clone(),
            path: record.info.path.to_owned(),
            status: record.status.as_u16(),
        };
        self.0.lock().unwrap().push(seen);
    }
}

impl Recorder {
    fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

fn seen(
    user: Option<&str>,
    verb: &str,
    (resource, namespace, name): (&str, &str, &str),
    (method, path): (Method, &str),
    status: u16,
) -> Seen {
    Seen {
        user: user.map(str::to_owned),
        verb: verb.into(),
        resource: resource.into(),
        namespace: namespace.into(),
        name: name.into(),
        method,
        path: path.into(),
        status,
    }
}

#[tokio::test]
async fn every_answered_request_makes_one_record_with_its_user_attributes_and_status() {
    let recorder = Arc::new(Recorder::default());
    let api = TestApi::with_observers(Observers::new(vec![recorder.clone()])).await;
    let token = reader_token(&api).await;
    recorder.take();
    let sa = "/api/v1/namespaces/demo/serviceaccounts/ci";
    let robot = Some("system:serviceaccount:demo:ci");
    let admin = Some(kargo_auth::authn::ADMIN_USER);
    let account = ("serviceaccounts", "demo", "ci");
    let none = ("", "", "");
    let project = json!({"metadata": {"name": "demo"}});

    // (body, bearer token, the record expected: its method, path and status are the request's)
    for (body, bearer, expected) in [
        (
            None,
            Some(&token),
            seen(robot, "get", account, (Method::GET, sa), 200),
        ),
        (
            None,
            None,
            seen(None, "get", account, (Method::GET, sa), 401),
        ),
        (
            None,
            None,
            seen(None, "get", none, (Method::GET, "/nowhere"), 404),
        ),
        (
            None,
            Some(&api.admin_token),
            seen(admin, "get", none, (Method::GET, "/v1beta1/projects"), 200),
        ),
        (
            Some(project),
            Some(&token),
            seen(
                robot,
                "post",
                none,
                (Method::POST, "/v1beta1/projects"),
                403,
            ),
        ),
        (
            None,
            None,
            seen(None, "get", none, (Method::GET, "/healthz"), 200),
        ),
    ] {
        let (method, path) = (expected.method.clone(), expected.path.clone());
        let (code, _) = api
            .request(method, &path, body, bearer.map(String::as_str))
            .await;
        assert_eq!(code.as_u16(), expected.status, "{path}");
        assert_eq!(recorder.take(), [expected]);
    }
}

/// A token claiming `iss` (unsigned: only its issuer matters here).
fn token_of_issuer(iss: &str) -> String {
    let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.c2lnbmF0dXJl",
        b64(json!({"alg": "RS256", "kid": "k1"})),
        b64(
            json!({"iss": iss, "aud": "kargo", "email": "alice@example.com", "exp": 4_000_000_000u64})
        )
    )
}

#[tokio::test]
async fn with_oidc_configured_and_the_issuer_down_the_server_serves_and_says_so() {
    // Nothing listens on port 1: the issuer is down for the whole test.
    let issuer = "https://127.0.0.1:1";
    let api = TestApi::with_config(Observers::default(), |config| {
        let mut oidc = kargo_auth::oidc::OidcConfig::new(issuer, "kargo");
        oidc.cli_client_id = Some("kargo-cli".into());
        oidc.scopes = vec!["openid".into(), "email".into()];
        config.oidc = Some(oidc);
    })
    .await;

    let body = public_config(&api).await;
    assert_eq!(
        body,
        json!({"oidcConfig": {"issuerUrl": issuer, "clientId": "kargo", "cliClientId": "kargo-cli",
                              "scopes": ["openid", "email"]},
               "adminAccountEnabled": true, "skipAuth": false})
    );

    // Ready (service-account tokens and certificates work), with the OIDC check failing.
    let (code, body) = api.request(Method::GET, "/readyz", None, None).await;
    assert_eq!((code, body), (StatusCode::OK, Value::String("ok".into())));
    let (code, body) = api
        .request(Method::GET, "/readyz?verbose", None, None)
        .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(
        body.as_str().unwrap_or_default(),
        "[+]ping ok\n[+]store ok\n[+]informer-sync ok\n[+]keys ok\n\
         [-]oidc failed: reason withheld (not counted: readiness does not depend on it)\n\
         [+]shutdown ok\nreadyz check passed\n"
    );
    // Asked for by name, it fails, with a reason that names no address.
    let (code, body) = api.request(Method::GET, "/readyz/oidc", None, None).await;
    assert_eq!(
        (code, body),
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            Value::String(
                "internal server error: the OpenID provider's keys are not known\n".into()
            )
        )
    );

    // A token of the issuer is refused while its keys are unknown: the Kargo API's and
    // Kubernetes' 401s.
    let token = token_of_issuer(issuer);
    let (code, body) = api
        .request(Method::GET, "/v1beta1/projects", None, Some(&token))
        .await;
    assert_eq!(
        (code, body),
        (StatusCode::UNAUTHORIZED, json!({"error": "invalid token"}))
    );
    let (code, body) = api
        .request(Method::GET, "/api/v1/namespaces", None, Some(&token))
        .await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": "Unauthorized", "reason": "Unauthorized", "code": 401})
    );
    // Every other credential works.
    let (code, _) = api
        .request(
            Method::GET,
            "/api/v1/namespaces",
            None,
            Some(&api.admin_token),
        )
        .await;
    assert_eq!(code, StatusCode::OK);
    let reader = reader_token(&api).await;
    let (code, _) = api
        .request(
            Method::GET,
            "/api/v1/namespaces/demo/serviceaccounts/ci",
            None,
            Some(&reader),
        )
        .await;
    assert_eq!(code, StatusCode::OK);
}

#[tokio::test]
async fn without_oidc_the_public_configuration_has_none() {
    let api = TestApi::new().await;
    let body = public_config(&api).await;
    assert_eq!(
        body,
        json!({"oidcConfig": null, "adminAccountEnabled": true, "skipAuth": false})
    );
    let (_, body) = api
        .request(Method::GET, "/readyz?verbose", None, None)
        .await;
    assert_eq!(
        body,
        Value::String(
            "[+]ping ok\n[+]store ok\n[+]informer-sync ok\n[+]keys ok\n[+]shutdown ok\n\
             readyz check passed\n"
                .into()
        )
    );
}

#[tokio::test]
async fn a_person_signed_in_with_the_openid_provider_is_named_by_its_claims_and_held_to_rbac() {
    use kargo_auth::oidc::testing::{Issuer, TestKey, now_secs};

    let key = TestKey::rsa();
    let issuer = Issuer::start(&[&key]).await;
    let config = issuer.config();
    let api = TestApi::with_config(Observers::default(), |server| server.oidc = Some(config)).await;
    oidc_keys_fetched(&api).await;

    let body = public_config(&api).await;
    assert_eq!(body["oidcConfig"]["issuerUrl"], json!(issuer.url));
    assert_eq!(body["oidcConfig"]["cliClientId"], "kargo-cli");

    let token = key.token(&issuer.claims("alice@example.com"));
    let (code, body) = api
        .request(
            Method::POST,
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            Some(json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})),
            Some(&token),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"]["userInfo"]["username"], "alice@example.com");
    assert_eq!(
        body["status"]["userInfo"]["groups"],
        json!(["devs", "ops", "system:authenticated"])
    );
    // Signed in, but given no role: RBAC refuses, naming the person.
    let (code, body) = api
        .request(Method::GET, "/api/v1/namespaces", None, Some(&token))
        .await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    assert_eq!(
        body["message"],
        "namespaces is forbidden: User \"alice@example.com\" cannot list resource \"namespaces\" in API group \"\" at the cluster scope"
    );

    // An expired token: Kubernetes' 401 and the Kargo API's.
    let mut claims = issuer.claims("alice@example.com");
    claims["exp"] = json!(now_secs() - 3600);
    let expired = key.token(&claims);
    let (code, body) = api
        .request(Method::GET, "/api/v1/namespaces", None, Some(&expired))
        .await;
    assert_eq!(
        (code, &body["message"]),
        (StatusCode::UNAUTHORIZED, &json!("Unauthorized"))
    );
    let (code, body) = api
        .request(Method::GET, "/v1beta1/projects", None, Some(&expired))
        .await;
    assert_eq!(
        (code, body),
        (StatusCode::UNAUTHORIZED, json!({"error": "invalid token"}))
    );
}

/// Waits until `/readyz?verbose` reports the OpenID provider's keys known.
async fn oidc_keys_fetched(api: &TestApi) {
    for _ in 0..1000 {
        let (_, body) = api
            .request(Method::GET, "/readyz?verbose", None, None)
            .await;
        if body.as_str().is_some_and(|b| b.contains("[+]oidc ok\n")) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the OpenID provider's keys were never fetched");
}

/// `GET /v1beta1/system/public-server-config` with no credentials: 200 and the body.
async fn public_config(api: &TestApi) -> Value {
    let (code, body) = api
        .request(
            Method::GET,
            "/v1beta1/system/public-server-config",
            None,
            None,
        )
        .await;
    assert_eq!(code, StatusCode::OK);
    body
}

/// The value of the sample `series` (name and labels, as written) in a scrape, 0 when absent.
fn sample(scrape: &str, series: &str) -> f64 {
    scrape
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |value| value.parse().unwrap())
}

#[tokio::test]
async fn metrics_count_requests_authentications_and_decisions_and_need_the_nonresource_rule() {
    let api = TestApi::new().await;
    let token = reader_token(&api).await;
    let admin = api.admin_token.clone();
    let scrape = |bearer: String| {
        let api = &api;
        async move {
            let (code, body) = api
                .request(Method::GET, "/metrics", None, Some(&bearer))
                .await;
            assert_eq!(code, StatusCode::OK, "{body}");
            body.as_str().unwrap().to_owned()
        }
    };
    let before = scrape(admin.clone()).await;

    let read = r#"apiserver_request_total{verb="GET",group="",resource="serviceaccounts",subresource="",code="200"}"#;
    let path = "/api/v1/namespaces/demo/serviceaccounts/ci";
    for _ in 0..3 {
        let (code, body) = api.request(Method::GET, path, None, Some(&token)).await;
        assert_eq!(code, StatusCode::OK, "{body}");
    }
    let (code, _) = api
        .request(Method::GET, path, None, Some("not-a-token"))
        .await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    // A service account without a rule for the non-resource URL `/metrics` is refused.
    let (code, body) = api
        .request(Method::GET, "/metrics", None, Some(&token))
        .await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        body["message"],
        r#"forbidden: User "system:serviceaccount:demo:ci" cannot get path "/metrics""#
    );
    let (code, _) = api.request(Method::GET, "/metrics", None, None).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);

    let after = scrape(admin).await;
    let moved = |series: &str| sample(&after, series) - sample(&before, series);
    assert_eq!(moved(read), 3.0, "{after}");
    assert_eq!(
        moved(
            r#"apiserver_request_total{verb="GET",group="",resource="",subresource="",code="403"}"#
        ),
        1.0
    );
    assert_eq!(
        moved(
            r#"apiserver_request_total{verb="GET",group="",resource="",subresource="",code="401"}"#
        ),
        1.0
    );
    assert_eq!(
        moved(
            r#"apiserver_request_total{verb="GET",group="",resource="serviceaccounts",subresource="",code="401"}"#
        ),
        1.0
    );
    assert_eq!(
        moved(
            r#"apiserver_request_duration_seconds_count{verb="GET",group="",resource="serviceaccounts",subresource=""}"#
        ),
        4.0
    );
    assert!(after.contains(r#"apiserver_request_duration_seconds_bucket{le="0.005",verb="GET",group="",resource="serviceaccounts",subresource=""}"#), "{after}");
    assert_eq!(
        moved(r#"authentication_attempts{result="success",kind="service_account_token"}"#),
        4.0
    );
    assert_eq!(
        moved(r#"authentication_attempts{result="failure",kind="unrecognized"}"#),
        1.0,
        "{after}"
    );
    assert_eq!(
        moved(r#"authentication_attempts{result="failure",kind="none"}"#),
        1.0
    );
    assert_eq!(
        moved(r#"kargo_authorization_decisions_total{decision="denied"}"#),
        1.0
    );
    // Three reads and the admin's second scrape.
    assert_eq!(
        moved(r#"kargo_authorization_decisions_total{decision="allowed"}"#),
        4.0
    );
    // Only this scrape is being answered.
    assert_eq!(
        sample(
            &after,
            r#"apiserver_current_inflight_requests{request_kind="readOnly"}"#
        ),
        1.0
    );

    // Granted the non-resource URL by a ClusterRole, as in Kubernetes, the account may scrape.
    for (path, body) in [
        (
            "/apis/rbac.authorization.k8s.io/v1/clusterroles",
            json!({"metadata": {"name": "metrics-reader"},
                   "rules": [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]}),
        ),
        (
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
            json!({"metadata": {"name": "metrics-reader"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "metrics-reader"},
                   "subjects": [{"kind": "ServiceAccount", "name": "ci", "namespace": "demo"}]}),
        ),
    ] {
        let (code, body) = api
            .request(Method::POST, path, Some(body), Some(&api.admin_token))
            .await;
        assert_eq!(code, StatusCode::CREATED, "{path}: {body}");
    }
    let granted = scrape(token).await;
    assert!(granted.contains("# EOF"), "{granted}");
}

#[tokio::test]
async fn a_request_whose_handling_panics_gets_a_500_naming_it_and_the_server_goes_on() {
    let recorder = Arc::new(Recorder::default());
    let api = TestApi::with_observers(Observers::new(vec![recorder.clone()])).await;
    // A body that panics when the handler reads it: a bug below the handler.
    let body = axum::body::Body::from_stream(futures::stream::poll_fn(
        |_| -> std::task::Poll<Option<Result<bytes::Bytes, std::io::Error>>> {
            panic!("a bug met while reading the body")
        },
    ));
    let path = "/api/v1/namespaces/default/serviceaccounts";
    let request = http::Request::post(path)
        .header(
            http::header::AUTHORIZATION,
            format!("Bearer {}", api.admin_token),
        )
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(body)
        .unwrap();
    let response = api.call(request).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let id = response.headers()["audit-id"].to_str().unwrap().to_owned();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let status: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        status,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "an error on the server has prevented the request from succeeding",
            "reason": "InternalError",
            "details": {"causes": [{"reason": "RequestID", "message": id}]}, "code": 500})
    );
    let records = recorder.take();
    assert_eq!(
        records
            .iter()
            .map(|r| (&r.method, r.status))
            .collect::<Vec<_>>(),
        [(&Method::POST, 500)]
    );
    let (code, _) = api
        .request(Method::GET, path, None, Some(&api.admin_token))
        .await;
    assert_eq!(code, StatusCode::OK);
}

/// What observing a request costs (the metrics, the 5xx log and the request seam), in process:
/// the same authenticated read through `Api::call`, with observing on and off, in alternating
/// rounds; prints the time per request of each and their ratio. No socket and no TLS, so this
/// is the seam's own cost, which `bench/ab.sh` measures against the whole request.
///
/// `cargo test --release -p kargo-server --lib -- --ignored --nocapture observing_cost`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a test: run it by name"]
async fn observing_cost() {
    use std::time::Instant;
    const READS: u32 = 50_000;
    let on = TestApi::new().await;
    let off = TestApi::with_config(Observers::default(), |c| c.observe = false).await;
    let audit_dir = tempfile::tempdir().unwrap();
    let audit_path = audit_dir.path().join("audit.log");
    let audited = TestApi::with_config(Observers::default(), |c| {
        c.audit = Some(kargo_http::audit::AuditConfig {
            path: audit_path,
            level: kargo_http::audit::AuditLevel::Metadata,
            max_size_mb: 0,
            max_backups: 0,
        });
    })
    .await;
    let path = "/api/v1/namespaces/demo/serviceaccounts/ci";
    let mut tokens = Vec::new();
    for api in [&on, &off, &audited] {
        tokens.push(reader_token(api).await);
    }
    let read = |token: &str| {
        http::Request::builder()
            .uri(path)
            .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let mut best = [f64::MAX; 3];
    for _ in 0..6 {
        for (side, api) in [&on, &off, &audited].into_iter().enumerate() {
            let started = Instant::now();
            for _ in 0..READS {
                let response = api.call(read(&tokens[side])).await;
                assert_eq!(response.status(), StatusCode::OK);
                let _ = axum::body::to_bytes(response.into_body(), MAX_BODY).await;
            }
            let per_read = started.elapsed().as_secs_f64() * 1e6 / f64::from(READS);
            best[side] = best[side].min(per_read);
        }
    }
    eprintln!(
        "observing_cost: on {:.2} µs/read, off {:.2} µs/read, ratio {:.3}; with a metadata-level audit log {:.2} µs/read, ratio {:.3}",
        best[0],
        best[1],
        best[0] / best[1],
        best[2],
        best[2] / best[1]
    );
}

/// The largest body `observing_cost` reads.
const MAX_BODY: usize = 1 << 20;

/// The web UI (`kargo-ui`) is mounted beside the API: `/` leads to it, its pages carry the
/// Content-Security-Policy, a page needs a session, and the API's paths stay the API's.
#[tokio::test]
async fn the_web_ui_is_served_beside_the_api_under_its_policy() {
    let api = TestApi::new().await;
    let get = |path: &str| {
        http::Request::get(path)
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let location = |response: &axum::response::Response| {
        response.headers()[http::header::LOCATION]
            .to_str()
            .unwrap()
            .to_owned()
    };
    let response = api.call(get("/")).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/ui/");
    let response = api.call(get("/ui/")).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "no session");
    assert_eq!(location(&response), "/ui/login");
    let response = api.call(get("/ui/login")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-security-policy"],
        kargo_ui::CONTENT_SECURITY_POLICY
    );
    let response = api.call(get("/ui/static/ui.css")).await;
    assert_eq!(response.status(), StatusCode::OK);
    // Paths beside the UI's are the API's: its 404 `Status`, its version document.
    let (code, body) = api.request(Method::GET, "/uix", None, None).await;
    assert_eq!(
        (code, &body["kind"]),
        (StatusCode::NOT_FOUND, &json!("Status"))
    );
    let (code, body) = api.request(Method::GET, "/version", None, None).await;
    assert_eq!(code, StatusCode::OK, "{body}");
}

//! Rules every Kargo REST route follows, checked on every route of the OpenAPI document:
//! authentication (401 `no token provided` / `invalid token`), a missing project (404), malformed
//! (400) and oversized (413) bodies; and the document itself.

use serde_json::{Value, json};

use crate::harness::Server;
use crate::kargo_client::{Answer, Kargo};

/// Every authenticated route as `(method, path)` with its parameters filled in.
fn routes(project: &str) -> Vec<(String, String)> {
    kargo_server::http::kargo_openapi::routes()
        .into_iter()
        .filter(|(_, path)| {
            !matches!(
                *path,
                "/v1beta1/login"
                    | "/v1beta1/system/public-server-config"
                    // Authenticated by the CI token in its form body, not a bearer token.
                    | "/v1beta1/token-exchange"
            )
        })
        .map(|(method, path)| {
            let path = path
                .replace("{project}", project)
                .replace("{serviceaccount}", "some-sa")
                .replace("{token}", "some-token")
                .replace("{apitoken}", "some-token")
                .replace("{role}", "some-role")
                .replace("{federatedidentity}", "some-fid");
            (method.to_uppercase(), path)
        })
        .collect()
}

/// A body the route accepts, if it takes one.
fn valid_body(method: &str, path: &str) -> Option<Value> {
    if path == "/v1beta1/logout" || path.ends_with("/disable") || path.ends_with("/enable") {
        None
    } else if path.ends_with("/rotate") {
        Some(json!({"grace": "0"}))
    } else if path.ends_with("/tokens") || (method == "POST" && path.ends_with("/api-tokens")) {
        Some(json!({"name": "t"}))
    } else if method == "POST" && path.ends_with("/federated-identities") {
        Some(
            json!({"issuer": "https://ci.example.com", "subject": "repo:acme/app:ref:refs/heads/main"}),
        )
    } else if path.ends_with("/grants") || path.ends_with("/revocations") {
        Some(json!({"role": "r", "userClaims": {"claims": []}}))
    } else if method == "POST" || method == "PUT" {
        Some(json!({"metadata": {"name": "n"}}))
    } else {
        None
    }
}

#[test]
fn every_route_but_login_and_public_config_needs_a_valid_bearer_token() {
    let server = Server::start();
    let routes = routes("p");
    assert_eq!(routes.len(), 51);
    for (auth, message) in [
        (None, "no token provided"),
        (Some("Authorization: Bearer "), "no token provided"),
        (Some("Authorization: Bearer not-a-jwt"), "invalid token"),
        (
            Some("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.c2ln"),
            "invalid token",
        ),
        (Some("Authorization: Basic YWRtaW46cHc="), "invalid token"),
    ] {
        // A fresh server for each kind of bad credential: together they are more failed
        // tokens than one address may send before it is slowed down (429).
        let fresh = Server::start();
        let anonymous = Kargo {
            server: &fresh,
            token: None,
        };
        for (method, path) in &routes {
            let headers: Vec<&str> = auth.into_iter().collect();
            let answer = anonymous.raw(method, path, &headers, None);
            assert_eq!(
                answer,
                Answer {
                    code: 401,
                    body: json!({"error": message})
                },
                "{method} {path} with {auth:?}"
            );
        }
    }
    let anonymous = Kargo {
        server: &server,
        token: None,
    };
    assert_eq!(
        anonymous.get("/v1beta1/system/public-server-config"),
        Answer {
            code: 200,
            body: json!({"oidcConfig": null, "adminAccountEnabled": true, "skipAuth": false})
        }
    );
    assert_eq!(anonymous.get("/v1beta1/openapi.json").code, 200);
}

#[test]
fn every_project_route_answers_404_for_a_missing_project() {
    let server = Server::start();
    let admin = Kargo::admin(&server);
    let mut checked = 0;
    for (method, path) in routes("nope") {
        if !path.contains("/projects/nope") {
            continue;
        }
        let answer = admin.call(&method, &path, valid_body(&method, &path).as_ref());
        assert_eq!(
            answer,
            Answer {
                code: 404,
                body: json!({"error": "projects.kargo.akuity.io \"nope\" not found"})
            },
            "{method} {path}"
        );
        checked += 1;
    }
    assert_eq!(checked, 30);
}

#[test]
fn malformed_and_oversized_bodies_are_client_errors_on_every_route_that_takes_one() {
    let server = Server::start();
    let admin = Kargo::admin(&server);
    admin.project("p");
    let big = vec![b' '; 1024 * 1024 + 1];
    let mut checked = 0;
    for (method, path) in routes("p") {
        if valid_body(&method, &path).is_none() {
            continue;
        }
        for (body, code, message) in [
            (
                &b"{nope"[..],
                400,
                "key must be a string at line 1 column 2",
            ),
            (b"", 400, "EOF while parsing a value at line 1 column 0"),
            (
                b"{\"issuer\":",
                400,
                "EOF while parsing a value at line 1 column 10",
            ),
            (&big, 413, "request body too large"),
        ] {
            let answer = admin.raw(&method, &path, &[], Some(body));
            assert_eq!(
                answer,
                Answer {
                    code,
                    body: json!({"error": message})
                },
                "{method} {path} with {} bytes",
                body.len()
            );
        }
        checked += 1;
    }
    assert_eq!(checked, 15);
    // Wrong types are the parser's 400 too.
    for (path, body, message) in [
        (
            "/v1beta1/projects/p/service-accounts",
            json!({"metadata": {"name": 5}}),
            "invalid type: integer `5`, expected a string at line 1 column 21",
        ),
        (
            "/v1beta1/projects/p/roles/grants",
            json!({"role": ["r"]}),
            "invalid type: sequence, expected a string at line 1 column 8",
        ),
    ] {
        let answer = admin.post(path, body);
        assert_eq!(
            answer,
            Answer {
                code: 400,
                body: json!({"error": message})
            },
            "{path}"
        );
    }
}

#[test]
fn the_openapi_document_describes_every_route_the_server_serves() {
    let server = Server::start();
    let admin = Kargo::admin(&server);
    let doc = admin.get("/v1beta1/openapi.json").body;
    assert_eq!(doc["openapi"], "3.0.3");
    assert_eq!(
        doc["components"]["securitySchemes"]["BearerAuth"],
        json!({"type": "http", "scheme": "bearer"})
    );
    let paths = doc["paths"].as_object().expect("paths");
    let anonymous = Kargo {
        server: &server,
        token: None,
    };
    let mut described = 0;
    for (path, methods) in paths {
        for method in methods.as_object().expect("methods").keys() {
            described += 1;
            // A route the server does not serve would answer the router's 404/405, not ours.
            let concrete = path
                .replace("{project}", "nope")
                .replace("{serviceaccount}", "x")
                .replace("{token}", "x")
                .replace("{role}", "x");
            // Logging out would end the admin's session: without a token, it still shows
            // that the route is served (401 is the route's answer, not the router's).
            let caller = if path == "/v1beta1/logout" {
                &anonymous
            } else {
                &admin
            };
            let answer = caller.call(&method.to_uppercase(), &concrete, None);
            assert!(
                answer.body.get("error").is_some() || answer.code < 300,
                "{method} {path}: {} {}",
                answer.code,
                answer.body
            );
            assert_ne!(answer.code, 405, "{method} {path}");
        }
    }
    assert_eq!(described, 54);
}

#[test]
fn a_disabled_admin_account_cannot_log_in() {
    let server = Server::start_with(&["--disable-admin-account".to_owned()]);
    let anonymous = Kargo {
        server: &server,
        token: None,
    };
    let password = format!("Authorization: Bearer {}", crate::harness::ADMIN_PASSWORD);
    assert_eq!(
        anonymous.raw("POST", "/v1beta1/login", &[&password], None),
        Answer {
            code: 403,
            body: json!({"error": "admin user is not enabled"})
        }
    );
    assert_eq!(
        anonymous.get("/v1beta1/system/public-server-config").body,
        json!({"oidcConfig": null, "adminAccountEnabled": false, "skipAuth": false})
    );
}

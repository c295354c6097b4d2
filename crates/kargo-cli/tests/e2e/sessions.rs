//! Admin sessions end when they should: `kargo logout` (`POST /v1beta1/logout`) ends the
//! session of its token, a new admin password or `--revoke-admin-sessions` ends every earlier
//! one, and a password too short to be the only factor is refused at start-up.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::cli_harness::Kargo;
use crate::harness::{ADMIN_PASSWORD, Server};
use crate::kargo_client::Kargo as Rest;

/// `(status, body)` of `GET path` with `token`.
fn get(server: &Server, path: &str, token: &str) -> (u16, Value) {
    let (code, body) = server.curl("GET", path, Some(token), &[], None);
    (
        code,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

/// Asserts that `token` is refused (401) by the Kargo API and the Kubernetes API.
#[track_caller]
fn refused(server: &Server, token: &str) {
    assert_eq!(
        get(server, "/v1beta1/projects", token),
        (401, json!({"error": "invalid token"}))
    );
    assert_eq!(get(server, "/api/v1/namespaces", token).0, 401);
}

/// Asserts that `token` is the admin's on both APIs.
#[track_caller]
fn works(server: &Server, token: &str) {
    assert_eq!(get(server, "/v1beta1/projects", token).0, 200);
    assert_eq!(get(server, "/api/v1/namespaces", token).0, 200);
}

/// The `bearerToken` of a CLI configuration.
fn saved_token(kargo: &Kargo) -> String {
    let text = kargo.config_text();
    text.lines()
        .find_map(|l| l.strip_prefix("bearerToken: "))
        .unwrap_or_else(|| panic!("no bearerToken in:\n{text}"))
        .to_owned()
}

#[test]
fn kargo_logout_ends_the_admin_session_on_the_server_and_other_sessions_keep_working() {
    let server = Server::start();
    let kargo = Kargo::logged_in(&server);
    let token = saved_token(&kargo);
    let other = server.admin_token();
    works(&server, &token);

    kargo.run(&["logout"]).prints("");
    assert!(!kargo.config_path().exists());
    refused(&server, &token);
    works(&server, &other);

    // Only an admin token can be logged out; without one, the route wants a token.
    let rest = Rest::admin(&server);
    rest.project("p");
    rest.service_account("p", "bot");
    let bot = rest.token("p", "bot", "bot-token");
    assert_eq!(
        Rest::with_token(&server, &bot)
            .call("POST", "/v1beta1/logout", None)
            .body,
        json!({"error": "only an admin session can be logged out; a ServiceAccount token is revoked by deleting it"})
    );
    assert_eq!(
        server.curl("POST", "/v1beta1/logout", None, &[], None),
        (401, r#"{"error":"no token provided"}"#.to_owned())
    );
    // Logging out with a token whose session has ended is refused like any invalid token.
    assert_eq!(
        server.curl("POST", "/v1beta1/logout", Some(&token), &[], None),
        (401, r#"{"error":"invalid token"}"#.to_owned())
    );
    assert_eq!(
        server.curl("POST", "/v1beta1/logout", Some(&other), &[], None),
        (204, String::new())
    );
    refused(&server, &other);
}

#[test]
fn kargo_logout_with_the_server_down_still_logs_out_locally_and_says_the_token_stays_valid() {
    let mut server = Server::start();
    let kargo = Kargo::logged_in(&server);
    server.stop_for_maintenance();
    let out = kargo.run(&["logout"]);
    assert_eq!((out.code, out.stdout.as_str()), (0, ""), "{}", out.stderr);
    assert_eq!(
        out.stderr,
        format!(
            "Warning: the server did not end the session (cannot connect to the Kargo API server at {}: connection refused); the token stays valid until it expires\n",
            server.url
        )
    );
    assert!(!kargo.config_path().exists(), "logout left the config file");
}

#[test]
fn a_new_admin_password_or_revoke_admin_sessions_at_start_ends_every_earlier_admin_token() {
    let mut server = Server::start();
    let first = server.admin_token();
    works(&server, &first);

    // The same password again: sessions survive a restart.
    server.restart(false);
    works(&server, &first);

    let new_password = "a different admin password";
    server.restart_with_password(new_password, &[]);
    refused(&server, &first);
    assert_eq!(
        server.login(ADMIN_PASSWORD),
        (403, r#"{"error":"invalid password"}"#.to_owned())
    );
    let second = server.admin_token();
    works(&server, &second);

    server.restart_with_password(new_password, &["--revoke-admin-sessions".to_owned()]);
    refused(&server, &second);
    let third = server.admin_token();
    works(&server, &third);
    // The flag acts at that start only (a restart without it keeps the new sessions).
    server.restart_with_password(new_password, &[]);
    works(&server, &third);
}

#[test]
fn an_admin_password_shorter_than_15_characters_is_refused_at_start_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kargo"))
        .args(["server", "--address", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env("KARGO_ADMIN_PASSWORD", "14-characters!")
        .env("KARGO_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kargo server runs");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
        .expect("read stderr");
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(1),
        "the server started with a 14-character password; stderr:\n{stderr}"
    );
    assert_eq!(
        stderr,
        "Error: KARGO_ADMIN_PASSWORD is too short: the admin password needs at least 15 characters\n"
    );
    assert!(!data.exists(), "a refused start created {}", data.display());
}

//! The server's logs (`--log-format text|json`), the request id that ties a response, its log
//! lines and its audit event together, and start-up errors said once.
//!
//! A 5xx is provoked honestly with `--request-timeout 0s`: a write waits on the store, so it
//! nearly always outlives the timeout (whose timer fires at the next millisecond tick) and gets
//! kube-apiserver's 504 `Timeout`; a write that wins the race is retried under a new name.

use std::process::Command;

use serde_json::{Value, json};

use crate::cli_harness::Kargo;
use crate::harness::{ADMIN_PASSWORD, Server};

const TIMEOUT_MESSAGE: &str = "Timeout: request did not complete within the allotted timeout";

/// The first `Some` of `attempt(0)`, `attempt(1)`, ...: a write under `--request-timeout 0s`
/// that won its race with the timer is tried again (under a new name).
#[track_caller]
fn until_timed_out<T>(mut attempt: impl FnMut(usize) -> Option<T>) -> T {
    (0..20)
        .find_map(&mut attempt)
        .expect("a write timed out within 20 attempts")
}

fn args(flags: &[&str]) -> Vec<String> {
    flags.iter().map(|f| (*f).to_owned()).collect()
}

/// A response header's value.
#[track_caller]
fn header(headers: &str, name: &str) -> String {
    headers
        .lines()
        .find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no {name} header in:\n{headers}"))
}

/// Whether `id` is shaped as a UUID (as kube-apiserver's Audit-ID).
fn is_uuid(id: &str) -> bool {
    let lengths: Vec<usize> = id.split('-').map(str::len).collect();
    lengths == [8, 4, 4, 4, 12] && id.chars().all(|c| c == '-' || c.is_ascii_hexdigit())
}

/// The one line of `lines` that reports the server error of request `id`.
#[track_caller]
fn failure_line<'a>(lines: &'a [Value], id: &str) -> &'a Value {
    let found: Vec<&Value> = lines
        .iter()
        .filter(|l| l["request_id"] == id && l["message"] == "answered with a server error")
        .collect();
    assert_eq!(found.len(), 1, "one line for request {id} in {lines:#?}");
    found[0]
}

#[test]
fn a_server_error_names_its_request_in_the_status_the_cli_and_one_json_log_line() {
    let json_logs = ["--log-format", "json", "--log", "info"];
    let mut server = Server::start_logged(&args(&json_logs));
    let token = server.admin_token();
    let mut kargo = Kargo::new();
    kargo.set_env("KARGO_API_TOKEN", &token);
    kargo.set_env("KARGO_CERTIFICATE_AUTHORITY", server.ca().to_str().unwrap());
    kargo.set_env("KARGO_API_ADDRESS", &server.url);
    // A client error (4xx) is printed as the spec says: no id.
    let out = kargo.run(&["get", "project", "missing"]);
    assert_eq!(
        out.stderr,
        "Error: projects.kargo.akuity.io \"missing\" not found\n"
    );
    let mut flags = json_logs.to_vec();
    flags.extend(["--request-timeout", "0s"]);
    server.restart_with(&args(&flags));

    // The Kubernetes API: the Status names the request as a cause; the Audit-ID header agrees.
    let (headers, body) = until_timed_out(|i| {
        let (code, headers, body) = server.curl_with_headers(
            "POST",
            "/api/v1/namespaces/default/serviceaccounts?fieldManager=private-manager",
            Some(&token),
            &["Content-Type: application/json"],
            Some(format!(r#"{{"metadata":{{"name":"x{i}"}}}}"#).as_bytes()),
        );
        assert!(code == 504 || code == 201, "{code} {body}");
        (code == 504).then_some((headers, body))
    });
    let kube_id = header(&headers, "audit-id");
    assert!(is_uuid(&kube_id), "{kube_id}");
    let status: Value = serde_json::from_str(&body).expect("a Status");
    assert_eq!(
        status,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": TIMEOUT_MESSAGE, "reason": "Timeout",
            "details": {"causes": [{"reason": "RequestID", "message": kube_id}]}, "code": 504})
    );
    // kube-apiserver's key order, the cause last in `details`.
    assert!(
        body.ends_with(&format!(
            r#""details":{{"causes":[{{"reason":"RequestID","message":"{kube_id}"}}]}},"code":504}}"#
        )),
        "{body}"
    );

    // kubectl prints the message, as it does kube-apiserver's; the cause does not clutter it.
    let kubectl = until_timed_out(|i| {
        let run = server.kubectl(&["create", "serviceaccount", &format!("y{i}")]);
        (run.code != 0).then_some(run)
    });
    assert_eq!(
        kubectl.stderr,
        format!("error: failed to create serviceaccount: {TIMEOUT_MESSAGE}\n")
    );

    // The kargo CLI: the spec's `Error: <message>`, then the id on a line of its own.
    let out = until_timed_out(|i| {
        let out = kargo.run(&["create", "project", &format!("p{i}")]);
        (out.code != 0).then_some(out)
    });
    let cli_id = out
        .stderr
        .strip_prefix(&format!("Error: {TIMEOUT_MESSAGE}\nrequest id: "))
        .and_then(|rest| rest.strip_suffix('\n'))
        .unwrap_or_else(|| panic!("unexpected stderr:\n{}", out.stderr))
        .to_owned();
    assert!(is_uuid(&cli_id) && cli_id != kube_id, "{cli_id}");
    assert_eq!((out.code, out.stdout.as_str()), (1, ""));

    server.stop_for_maintenance();
    let log = server.log();
    let lines: Vec<Value> = log
        .lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}\nin:\n{log}"))
        })
        .collect();
    for line in &lines {
        for key in ["timestamp", "level", "target", "message"] {
            assert!(line[key].is_string(), "{key} in {line}");
        }
    }
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "kargo server listening" && l["url"] == server.url),
        "{log}"
    );
    let kube = failure_line(&lines, &kube_id);
    assert_eq!(
        (
            &kube["level"],
            &kube["method"],
            &kube["status"],
            &kube["user"]
        ),
        (&json!("WARN"), &json!("POST"), &json!(504), &json!("admin"))
    );
    assert_eq!(kube["path"], "/api/v1/namespaces/default/serviceaccounts");
    assert!(kube["duration_ms"].is_f64(), "{kube}");
    let cli = failure_line(&lines, &cli_id);
    assert_eq!(
        (&cli["method"], &cli["path"], &cli["status"]),
        (&json!("POST"), &json!("/v1beta1/projects"), &json!(504))
    );
    // No query value, token or password in any line.
    for secret in ["private-manager", token.as_str(), ADMIN_PASSWORD] {
        assert!(!log.contains(secret), "{secret:?} in the log:\n{log}");
    }
}

#[test]
fn text_logs_written_to_a_file_have_no_colour_and_name_the_request() {
    let mut server = Server::start_logged(&args(&["--request-timeout", "0s", "--log", "info"]));
    until_timed_out(|i| {
        let run = server.kubectl(&["create", "serviceaccount", &format!("y{i}")]);
        (run.code != 0).then_some(())
    });
    server.stop_for_maintenance();
    let log = server.log();
    assert!(!log.contains('\x1b'), "an escape sequence in:\n{log:?}");
    let failure = log
        .lines()
        .find(|l| l.contains(" WARN kargo_http::failure_log: answered with a server error "))
        .unwrap_or_else(|| panic!("no server error line in:\n{log}"));
    assert!(
        failure
            .contains(" method=POST path=/api/v1/namespaces/default/serviceaccounts status=504 ")
            && failure.contains(" request_id="),
        "{failure}"
    );
}

/// Runs `kargo server` on a pseudo-terminal until it listens; returns what the terminal showed.
fn on_terminal(data_dir: &std::path::Path, envs: &[(&str, &str)]) -> String {
    const SCRIPT: &str = r#"
import os, pty, signal, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
seen, deadline = b"", time.time() + 60
while b"admin kubeconfig" not in seen and time.time() < deadline:
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        break
    if not chunk:
        break
    seen += chunk
os.kill(pid, signal.SIGTERM)
os.waitpid(pid, 0)
sys.stdout.write(seen.decode("utf-8", "replace"))
"#;
    let out = Command::new("python3")
        .args(["-c", SCRIPT, env!("CARGO_BIN_EXE_kargo"), "server"])
        .args(["--address", "127.0.0.1:0", "--log", "info", "--data-dir"])
        .arg(data_dir)
        .env("KARGO_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env_remove("NO_COLOR")
        .envs(envs.iter().copied())
        .output()
        .expect("python3 runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("kargo server listening"), "{text}");
    text
}

#[test]
fn text_logs_are_coloured_only_on_a_terminal_and_not_with_no_color() {
    let dir = tempfile::tempdir().unwrap();
    // The control that makes the file test above meaningful: the same lines on a terminal
    // have colours.
    let terminal = on_terminal(&dir.path().join("a"), &[]);
    assert!(terminal.contains("\x1b[32m INFO\x1b[0m"), "{terminal:?}");
    let no_color = on_terminal(&dir.path().join("b"), &[("NO_COLOR", "1")]);
    assert!(!no_color.contains('\x1b'), "{no_color:?}");
    let json = on_terminal(&dir.path().join("c"), &[("KARGO_LOG_FORMAT", "json")]);
    assert!(!json.contains('\x1b'), "{json:?}");
    assert!(
        json.lines()
            .any(|l| l.starts_with('{') && l.contains(r#""message":"kargo server listening""#)),
        "{json}"
    );
}

/// `kargo server` that fails to start: its stderr, after asserting exit code 1.
fn refused(address: &str, data_dir: &std::path::Path, log_format: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_kargo"))
        .args(["server", "--address", address, "--data-dir"])
        .arg(data_dir)
        .env("KARGO_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("KARGO_LOG", "warn")
        .env("KARGO_LOG_FORMAT", log_format)
        .output()
        .expect("kargo runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    stderr
}

/// `kargo server` on an address that is taken: the address and stderr.
fn on_busy_port(log_format: &str) -> (String, String) {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = busy.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let stderr = refused(&address, &dir.path().join("data"), log_format);
    drop(busy);
    (address, stderr)
}

#[test]
fn an_unreadable_tls_file_is_reported_once() {
    // `tls` is a file, so `tls/ca.crt` cannot be read: the path and the OS's reason, once.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("tls"), "").unwrap();
    let stderr = refused("127.0.0.1:0", &data, "text");
    let path = data.join("tls").join("ca.crt");
    // (The lines before it are the data directory's warnings: `tls` was made private.)
    assert!(
        stderr.ends_with(&format!(
            "\nError: {}: Not a directory (os error 20)\n",
            path.display()
        )) && stderr.matches("Not a directory").count() == 1,
        "{stderr}"
    );
}

#[test]
fn a_busy_port_is_reported_once() {
    let (address, stderr) = on_busy_port("text");
    let message = format!("listening on {address}: Address already in use (os error 98)");
    assert_eq!(stderr, format!("Error: {message}\n"));
    // With JSON logs, a collector gets the same message once as a JSON line before it.
    let (address, stderr) = on_busy_port("json");
    let message = format!("listening on {address}: Address already in use (os error 98)");
    let (last, lines) = stderr
        .lines()
        .collect::<Vec<_>>()
        .split_last()
        .map(|(l, r)| (*l, r.to_vec()))
        .unwrap();
    assert_eq!(last, format!("Error: {message}"));
    let logged: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    let stopped: Vec<&Value> = logged
        .iter()
        .filter(|l| l["message"] == "kargo server stopped")
        .collect();
    assert_eq!(stopped.len(), 1, "{stderr}");
    assert_eq!(
        (&stopped[0]["level"], &stopped[0]["error"]),
        (&json!("ERROR"), &json!(message))
    );
}

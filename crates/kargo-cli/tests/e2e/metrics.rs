//! `/metrics` over HTTPS and on the plain-HTTP `--metrics-address`, parsed by the Prometheus
//! client library (Python `prometheus_client`): the counts move with kubectl's traffic, with
//! refused tokens, with tokens issued and revoked and with watches, on SQLite and on etcd; a
//! service account without the `nonResourceURLs` rule is refused.

use std::collections::{BTreeMap, HashMap};

use kargo_store::testing::EtcdCluster;

use crate::cli_harness::Kargo;
use crate::harness::Server;
use crate::tokens::account_with_token;

/// Every sample of one scrape, by its name and labels (sorted: `name{k=v,...}`).
type Samples = HashMap<String, f64>;

fn series(name: &str, labels: &[(&str, &str)]) -> String {
    let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
    let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{name}{{{}}}", labels.join(","))
}

fn parse(out: &str) -> Samples {
    out.lines()
        .map(|line| {
            let sample: serde_json::Value = serde_json::from_str(line).expect("a JSON sample");
            let labels: Vec<(&str, &str)> = sample["labels"]
                .as_object()
                .expect("labels")
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str().expect("a label value")))
                .collect();
            let name = sample["name"].as_str().expect("a name");
            (
                series(name, &labels),
                sample["value"].as_f64().expect("a value"),
            )
        })
        .collect()
}

fn scrape(server: &Server, token: &str) -> Samples {
    parse(server.python("metrics.py", token, &[]).ok())
}

/// A free local port's address, for `--metrics-address`.
fn free_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").to_string()
}

#[test]
fn a_scrape_parses_and_its_counts_move_with_traffic_on_sqlite() {
    let plain = free_address();
    let audit = tempfile::tempdir().expect("a directory for the audit log");
    let server = Server::start_with(&[
        "--metrics-address".into(),
        plain.clone(),
        "--audit-log-path".into(),
        audit.path().join("audit.log").display().to_string(),
    ]);
    let before = scrape(&server, &server.admin_token());
    counts_move_with_traffic(&server, "sqlite");
    let after = scrape(&server, &server.admin_token());
    let audited = series("apiserver_audit_event_total", &[]);
    assert!(
        after[&audited] - before[&audited] >= 5.0,
        "{}",
        after[&audited]
    );
    assert_eq!(after[&series("kargo_audit_events_dropped_total", &[])], 0.0);
    assert_eq!(after[&series("kargo_audit_write_errors_total", &[])], 0.0);

    // The plain-HTTP listener serves the same metrics without a token, and nothing else.
    let samples = parse(
        server
            .python("metrics.py", "", &[&format!("http://{plain}")])
            .ok(),
    );
    assert!(
        samples.contains_key(&series(
            "apiserver_request_total",
            &[
                ("verb", "LIST"),
                ("group", ""),
                ("resource", "namespaces"),
                ("subresource", ""),
                ("code", "200")
            ]
        )),
        "{samples:?}"
    );
}

/// The metric names an expression of the docs uses (`apiserver_request_total{...}`,
/// `rate(process_cpu_seconds_total[5m])`): words followed by `{` or `[`, or ending a line.
fn metric_names(expression: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut word = String::new();
    for c in expression.chars().chain(std::iter::once('\n')) {
        if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c);
            continue;
        }
        if matches!(c, '{' | '[' | '\n') && word.contains('_') && !word.starts_with('$') {
            names.push(word.clone());
        }
        word.clear();
    }
    names
}

/// Every metric the Grafana dashboard and the alert rules of docs/operations.md use is one the
/// server writes (a `# TYPE` line of its scrape, whose samples may not have happened yet).
#[test]
fn the_dashboard_and_the_alert_rules_use_metrics_the_server_writes() {
    let audit = tempfile::tempdir().expect("a directory for the audit log");
    let server = Server::start_with(&[
        "--audit-log-path".into(),
        audit.path().join("audit.log").display().to_string(),
    ]);
    let (code, text) = server.curl("GET", "/metrics", Some(&server.admin_token()), &[], None);
    assert_eq!(code, 200, "{text}");
    let families: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    let written = |name: &str| {
        families.iter().any(|family| {
            name == *family
                || ["_total", "_bucket", "_count", "_sum"]
                    .iter()
                    .any(|suffix| name.strip_suffix(suffix) == Some(family))
        })
    };
    let docs = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs");
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{docs}/grafana-dashboard.json")).expect("the dashboard"),
    )
    .expect("the dashboard is JSON");
    let mut expressions: Vec<String> = dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| p["targets"].as_array().expect("targets").iter())
        .map(|t| t["expr"].as_str().expect("an expression").to_owned())
        .collect();
    assert!(expressions.len() >= 10);
    let operations = std::fs::read_to_string(format!("{docs}/operations.md")).expect("the docs");
    let rules = operations
        .split("### Example alert rules")
        .nth(1)
        .and_then(|s| s.split("```").nth(1))
        .expect("the alert rules");
    expressions.extend(
        rules
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .map(str::to_owned),
    );
    let mut used = 0;
    for expression in &expressions {
        for name in metric_names(expression) {
            used += 1;
            assert!(
                written(&name),
                "{name} (in {expression:?}) is not in a scrape:\n{text}"
            );
        }
    }
    assert!(used >= 20, "{used}");
}

#[test]
fn counts_move_with_traffic_on_etcd() {
    let cluster = EtcdCluster::start(1);
    let server = Server::start_with(&Server::etcd_args(&cluster));
    counts_move_with_traffic(&server, "etcd");
}

fn counts_move_with_traffic(server: &Server, backend: &str) {
    let admin = server.admin_token();
    let before = scrape(server, &admin);
    let token = account_with_token(server);

    for _ in 0..2 {
        server.kubectl(&["get", "namespaces"]).ok();
    }
    let (code, _) = server.curl("GET", "/api/v1/namespaces", Some("not-a-token"), &[], None);
    assert_eq!(code, 401);
    // Twice: the second time, the token is known to the cache.
    for _ in 0..2 {
        let refused = server.python("metrics.py", &token, &[]);
        assert_eq!(refused.ok(), "status 403\n");
    }
    let (code, _) = server.curl(
        "GET",
        "/api/v1/namespaces?watch=true&timeoutSeconds=1",
        Some(&admin),
        &[],
        None,
    );
    assert_eq!(code, 200);
    server
        .kubectl(&["delete", "secret", "bot-token", "-n", "p"])
        .ok();
    // The CLI: a password login and a Kargo REST call.
    let kargo = Kargo::logged_in(server);
    kargo.run(&["create", "project", "metrics-demo"]).ok();

    let after = scrape(server, &admin);
    let moved = |name: &str, labels: &[(&str, &str)]| {
        let key = series(name, labels);
        after.get(&key).copied().unwrap_or(0.0) - before.get(&key).copied().unwrap_or(0.0)
    };
    let list = [
        ("verb", "LIST"),
        ("group", ""),
        ("resource", "namespaces"),
        ("subresource", ""),
    ];
    assert_eq!(
        moved(
            "apiserver_request_total",
            &[list[0], list[1], list[2], list[3], ("code", "200")]
        ),
        2.0,
        "{after:?}"
    );
    assert_eq!(
        moved(
            "apiserver_request_total",
            &[list[0], list[1], list[2], list[3], ("code", "401")]
        ),
        1.0
    );
    assert_eq!(
        moved(
            "apiserver_request_total",
            &[
                ("verb", "GET"),
                ("group", ""),
                ("resource", ""),
                ("subresource", ""),
                ("code", "403")
            ]
        ),
        2.0
    );
    assert_eq!(
        moved("apiserver_request_duration_seconds_count", &list),
        3.0
    );
    assert_eq!(
        moved(
            "apiserver_request_duration_seconds_bucket",
            &[list[0], list[1], list[2], list[3], ("le", "+Inf")]
        ),
        3.0
    );
    assert_eq!(
        moved(
            "authentication_attempts",
            &[("result", "failure"), ("kind", "unrecognized")]
        ),
        1.0
    );
    assert_eq!(
        moved(
            "authentication_attempts",
            &[("result", "success"), ("kind", "service_account_token")]
        ),
        2.0
    );
    assert_eq!(
        moved(
            "kargo_authorization_decisions_total",
            &[("decision", "denied")]
        ),
        2.0
    );
    assert!(
        moved(
            "kargo_authorization_decisions_total",
            &[("decision", "allowed")]
        ) >= 3.0
    );
    // The token was issued and revoked; the watch was open and sent the namespaces, then
    // closed.
    assert_eq!(
        moved("kargo_service_account_tokens_created_total", &[]),
        1.0
    );
    assert_eq!(
        moved("kargo_service_account_tokens_revoked_total", &[]),
        1.0
    );
    assert_eq!(moved("kargo_service_account_tokens", &[]), 0.0);
    let namespace_kind = [("group", ""), ("version", "v1"), ("kind", "Namespace")];
    assert!(
        moved("apiserver_watch_events_total", &namespace_kind) >= 1.0,
        "{after:?}"
    );
    let open_watches = series(
        "apiserver_longrunning_requests",
        &[("verb", "WATCH"), ("group", ""), ("resource", "namespaces")],
    );
    assert_eq!(after.get(&open_watches), Some(&0.0), "{after:?}");
    // The service-account token was verified once, then answered from the cache.
    assert!(
        moved(
            "authentication_token_cache_request_total",
            &[("status", "miss")]
        ) >= 1.0
    );
    assert!(
        moved(
            "authentication_token_cache_request_total",
            &[("status", "hit")]
        ) >= 1.0
    );
    // The store's calls, by backend and operation.
    for operation in ["create", "delete"] {
        let labels = [("backend", backend), ("operation", operation)];
        assert!(
            moved("kargo_storage_request_duration_seconds_count", &labels) >= 1.0,
            "{operation}: {after:?}"
        );
    }
    assert_eq!(
        moved(
            "kargo_storage_request_errors_total",
            &[("backend", backend), ("operation", "create")]
        ),
        0.0
    );
    assert!(
        moved(
            "authentication_attempts",
            &[("result", "success"), ("kind", "admin_password")]
        ) >= 1.0
    );
    let kargo_rest = |verb: &str| {
        after
            .iter()
            .filter(|(k, _)| {
                k.starts_with("apiserver_request_total{")
                    && k.ends_with(&format!(",verb={verb}}}"))
                    && k.contains(",resource=,")
            })
            .map(|(k, v)| v - before.get(k).copied().unwrap_or(0.0))
            .sum::<f64>()
    };
    assert!(
        kargo_rest("POST") >= 2.0,
        "login and create project: {after:?}"
    );
    // The process.
    assert!(after[&series("process_resident_memory_bytes", &[])] > 1e6);
    assert!(after[&series("process_open_fds", &[])] >= 3.0);
    assert!(after[&series("process_cpu_seconds_total", &[])] > 0.0);
}

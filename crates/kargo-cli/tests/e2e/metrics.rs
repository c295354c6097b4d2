//! `/metrics` over HTTPS, parsed by the Prometheus client library (Python `prometheus_client`):
//! the counts move with kubectl's traffic and with refused tokens, and a service account
//! without the `nonResourceURLs` rule is refused.

use std::collections::{BTreeMap, HashMap};

use crate::harness::Server;
use crate::tokens::account_with_token;

/// Every sample of one scrape, by its name and labels (sorted: `name{k=v,...}`).
type Samples = HashMap<String, f64>;

fn series(name: &str, labels: &[(&str, &str)]) -> String {
    let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
    let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{name}{{{}}}", labels.join(","))
}

fn scrape(server: &Server, token: &str) -> Samples {
    let out = server.python("metrics.py", token, &[]);
    out.ok()
        .lines()
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

#[test]
fn a_scrape_parses_and_its_counts_move_with_traffic() {
    let server = Server::start();
    let admin = server.admin_token();
    let token = account_with_token(&server);
    let before = scrape(&server, &admin);

    for _ in 0..2 {
        server.kubectl(&["get", "namespaces"]).ok();
    }
    let (code, _) = server.curl("GET", "/api/v1/namespaces", Some("not-a-token"), &[], None);
    assert_eq!(code, 401);
    let refused = server.python("metrics.py", &token, &[]);
    assert_eq!(refused.ok(), "status 403\n");

    let after = scrape(&server, &admin);
    let moved = |name: &str, labels: &[(&str, &str)]| {
        let key = series(name, labels);
        after.get(&key).copied().unwrap_or(0.0) - before.get(&key).copied().unwrap_or(0.0)
    };
    let list = [("verb", "LIST"), ("group", ""), ("resource", "namespaces")];
    assert_eq!(
        moved(
            "apiserver_request_total",
            &[list[0], list[1], list[2], ("code", "200")]
        ),
        2.0,
        "{after:?}"
    );
    assert_eq!(
        moved(
            "apiserver_request_total",
            &[list[0], list[1], list[2], ("code", "401")]
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
                ("code", "403")
            ]
        ),
        1.0
    );
    assert_eq!(
        moved("apiserver_request_duration_seconds_count", &list),
        3.0
    );
    assert_eq!(
        moved(
            "apiserver_request_duration_seconds_bucket",
            &[list[0], list[1], list[2], ("le", "+Inf")]
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
        1.0
    );
    assert_eq!(
        moved(
            "kargo_authorization_decisions_total",
            &[("decision", "denied")]
        ),
        1.0
    );
    assert!(
        moved(
            "kargo_authorization_decisions_total",
            &[("decision", "allowed")]
        ) >= 3.0
    );
}

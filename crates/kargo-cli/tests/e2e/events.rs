//! Issue 18, item 6: `events` and `endpoints` exist, so kubectl's defaults work
//! (`describe configmap` with the object's events, `kubectl events`); the server
//! records events for what it does (a token issued, a role granted); events expire after
//! `--event-ttl`. Real kubectl and the real `kargo` binary against a real server.

use std::time::{Duration, Instant};

use crate::cli_harness::{Kargo, account_with_role};
use crate::harness::{Server, on_both_stores};

const P: &str = "noted";

/// Waits up to 10 s for `check` to hold of kubectl's output for `args`.
fn until(server: &Server, args: &[&str], what: &str, check: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let run = server.kubectl(args);
        if run.code == 0 && check(&run.stdout) {
            return run.stdout;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: `kubectl {}` printed\n{}{}",
            args.join(" "),
            run.stdout,
            run.stderr
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

on_both_stores!(
    describe_and_events_show_what_happened_and_events_expire,
    events
);

fn events(store: &[String]) {
    let server = Server::start_with(&[store, &["--event-ttl".into(), "30s".into()]].concat());
    let admin = Kargo::logged_in(&server);
    admin.run(&["create", "project", P]).ok();

    // describe reads the object's events: none for a new ConfigMap.
    server
        .kubectl(&[
            "create",
            "configmap",
            "settings",
            "-n",
            P,
            "--from-literal=a=b",
        ])
        .ok();
    let described = server.kubectl(&["describe", "configmap", "settings", "-n", P]);
    assert!(
        described.ok().contains("Events:") && described.stdout.contains("<none>"),
        "{}",
        described.stdout
    );
    server.kubectl(&["get", "endpoints", "-n", P]).ok();

    // What the server does is in the events: a token issued, a role granted.
    admin.run(&["create", "role", "-p", P, "developer"]).ok();
    account_with_role(&admin, P, "ci", "developer");
    let listed = until(
        &server,
        &["events", "-n", P],
        "the server's events",
        |out| out.contains("TokenIssued") && out.contains("RoleGranted"),
    );
    assert!(
        listed.lines().any(|l| l.contains("RoleGranted")
            && l.contains("RoleBinding/developer")
            && l.contains(r#"Role "developer" granted to ServiceAccount "ci""#)),
        "{listed}"
    );
    assert!(!listed.contains("eyJ"), "no token in an event: {listed}");

    server
        .kubectl_stdin(
            &["apply", "-f", "-"],
            &format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: one\n  namespace: {P}\n"),
        )
        .ok();

    // An event whose last occurrence is older than the TTL goes; a fresh one stays.
    let uid = server.kubectl(&[
        "get",
        "configmap",
        "one",
        "-n",
        P,
        "-o",
        "jsonpath={.metadata.uid}",
    ]);
    let uid = uid.ok().to_owned();
    let event = |name: &str, when: &str| {
        format!(
            "apiVersion: v1\nkind: Event\nmetadata:\n  name: {name}\n  namespace: {P}\ninvolvedObject:\n  apiVersion: v1\n  kind: ConfigMap\n  name: one\n  namespace: {P}\n  uid: {uid}\nreason: Tested\nmessage: hello from {name}\ntype: Normal\nfirstTimestamp: \"{when}\"\nlastTimestamp: \"{when}\"\n"
        )
    };
    let now = server.kubectl(&[
        "get",
        "configmap",
        "one",
        "-n",
        P,
        "-o",
        "jsonpath={.metadata.creationTimestamp}",
    ]);
    server
        .kubectl_stdin(
            &["create", "-f", "-"],
            &event("old", "2020-01-01T00:00:00Z"),
        )
        .ok();
    server
        .kubectl_stdin(&["create", "-f", "-"], &event("fresh", now.ok()))
        .ok();
    until(
        &server,
        &["get", "events", "-n", P, "-o", "name"],
        "the old event expired",
        |out| !out.contains("event/old"),
    );
    // describe finds the object's events by kubectl's field selector (kind, name, uid).
    let described = server.kubectl(&["describe", "configmap", "one", "-n", P]);
    assert!(
        described.ok().contains("hello from fresh") && !described.stdout.contains("hello from old"),
        "a fresh event stays, and describe shows it:\n{}",
        described.stdout
    );
}

//! Health and version with real clients: a server on a three-member etcd cluster stops being
//! ready (and live, as kube-apiserver's `etcd` check is in both) when etcd loses its quorum,
//! keeps answering meanwhile, and is ready again when the members return; a flood of
//! `/readyz?verbose` reaches etcd at most about once a second while an authenticated client is
//! served; `kubectl version` and `kargo version` show the server's version without a skew
//! warning, and the Python client reads `/version/` and the health endpoints. (The texts, `?exclude`, `/readyz/NAME` and shutdown on SQLite: the in-process tests
//! in `kargo-server`'s `health_tests`.)

use std::time::{Duration, Instant};

use kargo_store::testing::EtcdCluster;
use serde_json::Value;

use crate::cli_harness::Kargo;
use crate::harness::Server;
use crate::honest::{client, runtime};

/// How long a health request may take, even with etcd gone (the store check's timeout is 2 s).
const ANSWER_WITHIN: Duration = Duration::from_secs(5);

/// `GET path` with no credential: `(status, body, how long it took)`; status 0 when no answer
/// came within [`ANSWER_WITHIN`].
fn get(server: &Server, path: &str) -> (u16, String, Duration) {
    let http = client(server, None);
    let url = format!("{}{path}", server.url);
    runtime().block_on(async move {
        let started = Instant::now();
        match tokio::time::timeout(ANSWER_WITHIN, http.get(url).send()).await {
            Ok(Ok(response)) => {
                let status = response.status().as_u16();
                let body = response.text().await.unwrap_or_default();
                (status, body, started.elapsed())
            }
            Ok(Err(e)) => (0, e.to_string(), started.elapsed()),
            Err(_) => (0, "no answer".to_owned(), started.elapsed()),
        }
    })
}

/// Polls `path` until `done` holds of its answer, or `within` passes; returns the last answer
/// and when it came. Every answer must come within [`ANSWER_WITHIN`].
fn poll(
    server: &Server,
    path: &str,
    within: Duration,
    done: impl Fn(u16, &str) -> bool,
) -> (u16, String, Duration) {
    let started = Instant::now();
    loop {
        let (code, body, took) = get(server, path);
        assert!(
            took < ANSWER_WITHIN && code != 0,
            "{path} did not answer within {ANSWER_WITHIN:?}: {body}"
        );
        if done(code, &body) || started.elapsed() > within {
            return (code, body, started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn readiness_follows_etcds_quorum_and_the_server_keeps_answering() {
    let mut cluster = EtcdCluster::start(3);
    let server = Server::start_with(&Server::etcd_args(&cluster));
    let (code, body, _) = get(&server, "/readyz?verbose");
    assert_eq!(
        (code, body.as_str()),
        (
            200,
            "[+]ping ok\n[+]etcd ok\n[+]informer-sync ok\n[+]keys ok\n[+]shutdown ok\n\
             readyz check passed\n"
        )
    );
    assert_eq!(get(&server, "/livez").0, 200);

    // Two of three members gone: no quorum, no linearizable read.
    cluster.kill(1);
    cluster.kill(2);
    let (code, body, after) = poll(&server, "/readyz", Duration::from_secs(15), |code, _| {
        code == 500
    });
    eprintln!("etcd without quorum: /readyz failed after {after:?}");
    assert_eq!(
        (code, body.as_str()),
        (
            500,
            "[+]ping ok\n[-]etcd failed: reason withheld\n[+]informer-sync ok\n[+]keys ok\n\
             [+]shutdown ok\nreadyz check failed\n"
        )
    );
    assert!(after < Duration::from_secs(10), "{after:?}");
    // As kube-apiserver's, the etcd check is part of /livez; a probe that should not restart
    // the server for an etcd outage excludes it.
    let (code, body, _) = get(&server, "/livez");
    assert_eq!(
        (code, body.as_str()),
        (
            500,
            "[+]ping ok\n[-]etcd failed: reason withheld\nlivez check failed\n"
        )
    );
    assert_eq!(get(&server, "/livez?exclude=etcd").0, 200);
    let (code, body, _) = get(&server, "/readyz/etcd");
    assert_eq!(code, 500, "{body}");
    assert!(
        body.starts_with("internal server error: the store "),
        "{body}"
    );
    // The server is still up, and answers what needs no store.
    assert_eq!(get(&server, "/version").0, 200);

    cluster.restart(1);
    cluster.restart(2);
    let (code, body, after) = poll(&server, "/readyz", Duration::from_secs(30), |code, _| {
        code == 200
    });
    eprintln!("etcd back: /readyz passed after {after:?}");
    assert_eq!((code, body.as_str()), (200, "ok"));
    assert_eq!(get(&server, "/livez").0, 200);
}

/// Range requests etcd's members have started, summed (gRPC `KV/Range`: reads, lists).
fn etcd_ranges(cluster: &EtcdCluster, members: usize) -> u64 {
    (0..members)
        .map(|i| {
            cluster
                .metrics(i)
                .lines()
                .filter(|l| {
                    l.starts_with("grpc_server_started_total{")
                        && l.contains("grpc_method=\"Range\"")
                })
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>() as u64
        })
        .sum()
}

#[test]
fn a_flood_of_verbose_readyz_reads_etcd_about_once_a_second_while_a_client_is_served() {
    let cluster = EtcdCluster::start(3);
    let server = Server::start_with(&Server::etcd_args(&cluster));
    let admin = server.admin_token();
    let http = client(&server, None);
    let url = server.url.clone();
    let before = etcd_ranges(&cluster, 3);
    let started = Instant::now();
    let run_for = Duration::from_secs(5);
    let (flood, served) = runtime().block_on(async move {
        let flooders: Vec<_> = (0..32)
            .map(|_| {
                let (http, url) = (http.clone(), url.clone());
                tokio::spawn(async move {
                    let mut answered = 0u64;
                    while started.elapsed() < run_for {
                        let response = http.get(format!("{url}/readyz?verbose")).send().await;
                        let code = response.map(|r| r.status().as_u16()).unwrap_or(0);
                        assert_eq!(code, 200);
                        answered += 1;
                    }
                    answered
                })
            })
            .collect();
        // The honest client asks who it is: authenticated, and answered from memory, so that
        // every Range etcd sees comes from the health checks.
        let mut served = 0u64;
        while started.elapsed() < run_for {
            let response = http
                .post(format!(
                    "{url}/apis/authentication.k8s.io/v1/selfsubjectreviews"
                ))
                .bearer_auth(&admin)
                .json(
                    &serde_json::json!({"apiVersion": "authentication.k8s.io/v1",
                                          "kind": "SelfSubjectReview"}),
                )
                .send()
                .await
                .expect("the honest client is answered");
            assert_eq!(response.status().as_u16(), 201);
            served += 1;
        }
        let mut flood = 0;
        for flooder in flooders {
            flood += flooder.await.expect("every flood request got 200");
        }
        (flood, served)
    });
    let elapsed = started.elapsed().as_secs_f64();
    let ranges = etcd_ranges(&cluster, 3) - before;
    eprintln!(
        "{flood} /readyz?verbose and {served} authenticated requests in {elapsed:.1} s: \
         {ranges} etcd reads"
    );
    assert!(flood > 500, "the flood was only {flood} requests");
    assert!(served > 20, "the client was served only {served} times");
    assert!(
        ranges as f64 <= elapsed.ceil() + 2.0,
        "{ranges} etcd reads in {elapsed:.1} s"
    );
}

#[test]
fn kubectl_version_shows_the_server_with_kargos_version_and_no_skew_warning() {
    let server = Server::start();
    let run = server.kubectl(&["version"]);
    let out = run.ok();
    assert!(
        out.contains(&format!(
            "Server Version: v1.32.0+kargo-{}\n",
            env!("CARGO_PKG_VERSION")
        )),
        "{out}"
    );
    assert!(!run.stderr.contains("WARNING"), "{}", run.stderr);
    let run = server.kubectl(&["version", "-o", "json"]);
    let version: Value = serde_json::from_str(run.ok()).expect("JSON");
    let server_version = &version["serverVersion"];
    assert_eq!(server_version["major"], "1");
    assert_eq!(server_version["minor"], "32");
    assert_eq!(server_version["compiler"], "rustc");
    // Built from this repository: the commit is known.
    let commit = server_version["gitCommit"].as_str().unwrap_or_default();
    assert!(
        commit.len() == 40 && commit.bytes().all(|b| b.is_ascii_hexdigit()),
        "{commit:?}"
    );
}

#[test]
fn kargo_version_prints_the_client_and_the_configured_servers_version() {
    let mut server = Server::start();
    let version = format!("v{}", env!("CARGO_PKG_VERSION"));
    let kargo = Kargo::new();
    // Not logged in: the client only, as upstream.
    kargo
        .run(&["version"])
        .prints(&format!("Client Version: {version}\n"));
    let kargo = Kargo::logged_in(&server);
    kargo.run(&["version"]).prints(&format!(
        "Client Version: {version}\nServer Version: {version}\n"
    ));
    kargo
        .run(&["version", "--client"])
        .prints(&format!("Client Version: {version}\n"));
    let json = kargo.run(&["version", "-o", "json"]);
    let document: Value = serde_json::from_str(json.ok()).expect("JSON");
    assert_eq!(document["kind"], "ComponentVersions");
    assert_eq!(document["apiVersion"], "kargo.akuity.io/v1alpha1");
    assert_eq!(document["client"]["version"], version.as_str());
    assert_eq!(document["server"]["version"], version.as_str());
    assert_eq!(
        document["server"]["gitCommit"],
        document["client"]["gitCommit"]
    );
    let yaml = kargo.run(&["version", "-o", "yaml", "--client"]);
    assert!(
        yaml.ok().contains("kind: ComponentVersions\n"),
        "{}",
        yaml.stdout
    );
    assert!(!yaml.stdout.contains("server:"), "{}", yaml.stdout);

    // The server gone: the client version, then the error (exit 1), as kubectl.
    server.kill();
    let out = kargo.run(&["version"]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert_eq!(out.stdout, format!("Client Version: {version}\n"));
    assert!(
        out.stderr.starts_with(&format!(
            "Error: cannot connect to the Kargo API server at {}",
            server.url
        )),
        "{}",
        out.stderr
    );
}

/// Whether process `pid` has exited (a zombie not yet waited for counts as exited).
fn exited(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map(|status| {
            status
                .lines()
                .any(|l| l.starts_with("State:") && l.contains('Z'))
        })
        .unwrap_or(true)
}

#[test]
fn on_sigterm_readyz_fails_while_the_server_still_serves_for_the_shutdown_delay() {
    let server = Server::start_with(&["--shutdown-delay-duration".into(), "3s".into()]);
    assert_eq!(get(&server, "/readyz").0, 200);
    let pid = server.pid();
    let signalled = Instant::now();
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill runs");
    let (code, body, _) = poll(&server, "/readyz", Duration::from_secs(2), |code, _| {
        code == 500
    });
    assert_eq!(
        (code, body.as_str()),
        (
            500,
            "[+]ping ok\n[+]store ok\n[+]informer-sync ok\n[+]keys ok\n\
             [-]shutdown failed: reason withheld\nreadyz check failed\n"
        )
    );
    // Still serving, and alive.
    assert_eq!(get(&server, "/livez").0, 200);
    assert_eq!(get(&server, "/version").0, 200);
    assert!(signalled.elapsed() < Duration::from_secs(3));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !exited(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let stopped_after = signalled.elapsed();
    assert!(exited(pid), "the server did not stop");
    assert!(
        stopped_after >= Duration::from_secs(3),
        "stopped after {stopped_after:?}, before the delay"
    );
}

#[test]
fn the_python_client_reads_version_and_the_health_endpoints() {
    let server = Server::start();
    let token = server.admin_token();
    let run = server.python("version.py", &token, &[env!("CARGO_PKG_VERSION")]);
    assert_eq!(run.ok().trim(), "ok", "{}", run.stderr);
}

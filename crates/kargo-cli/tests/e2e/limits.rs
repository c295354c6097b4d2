//! Attacks on the server's connection and request limits (`docs/operations.md`, "Limits"), each
//! run against a real server while an honest client (`harness::honest_client`: authenticated
//! GETs of a ServiceAccount, each on a new connection) measures its p99, which must stay within a
//! stated bound: slow headers, idle connections past the caps, an open-files limit of 256, an
//! in-flight flood, requests that never finish their body, a watch flood, oversized headers; and
//! HTTP/2's 404 for a POST to no route.
//!
//! The honest client's figures print with `--nocapture`. Attackers connect from 127.0.0.2 and
//! up (other clients, as the per-client caps see them); the honest client from 127.0.0.1.

use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{RawResponse, Server, Tls, raw_get, read_response, tls_config, tls_connect};
use crate::honest::{account_token, honest_client, honest_reader};

/// The honest client's p99 bound during every attack: generous, because this machine's two cores
/// are shared with other builds; without the limits the honest client is not served at all.
const HONEST_P99: Duration = Duration::from_secs(2);
/// Honest requests per measurement.
const HONEST_REQUESTS: usize = 100;

fn flags(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| (*a).to_owned()).collect()
}

fn attacker(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, n)
}

/// Whether the server has closed `tls`: a read sees the end (or a reset) within `wait`.
fn closed_within(tls: &mut Tls, wait: Duration) -> bool {
    let _ = tls.sock.set_read_timeout(Some(wait));
    let mut byte = [0u8; 1];
    match tls.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

#[test]
fn slow_headers_are_cut_off_at_the_header_timeout_while_an_honest_client_is_served() {
    let server = Server::start_with(&flags(&["--request-header-timeout", "2s"]));
    let (token, path) = honest_reader(&server);
    let config = tls_config(&server);
    // 64 connections that send a request header one byte every 250 ms and never finish it.
    let attackers: Vec<_> = (0..64)
        .map(|_| {
            let server_config = config.clone();
            let mut tls = tls_connect(&server, &server_config, attacker(2)).expect("connects");
            thread::spawn(move || {
                let started = Instant::now();
                let _ = tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: kargo\r\nX-Slow: ");
                let _ = tls.flush();
                while started.elapsed() < Duration::from_secs(15) {
                    if tls.write_all(b"a").and_then(|()| tls.flush()).is_err()
                        || closed_within(&mut tls, Duration::from_millis(250))
                    {
                        return Some(started.elapsed());
                    }
                }
                None
            })
        })
        .collect();
    let honest = honest_client(&server, &token, path, HONEST_REQUESTS);
    honest.assert_served_within("64 slow-header connections", HONEST_P99);
    let closed: Vec<Duration> = attackers
        .into_iter()
        .map(|a| a.join().expect("attacker thread"))
        .map(|c| c.expect("a slow header was still being read after 15 s"))
        .collect();
    let (first, last) = (closed.iter().min(), closed.iter().max());
    eprintln!("slow headers cut off after {first:?} to {last:?}");
    for closed in closed {
        assert!(
            closed >= Duration::from_millis(1900) && closed < Duration::from_secs(6),
            "a slow header was cut off after {closed:?}, not at the 2 s header timeout"
        );
    }
}

/// Opens `count` connections from `from`, each with one request answered; returns the ones the
/// server kept and how many it refused, asserting that refusals are immediate.
fn idle_connections(server: &Server, from: Ipv4Addr, count: usize) -> (Vec<Tls>, usize) {
    let config = tls_config(server);
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..count {
        let started = Instant::now();
        match tls_connect(server, &config, from)
            .and_then(|mut tls| raw_get(&mut tls, "/healthz", None).map(|r| (tls, r)))
        {
            Ok((tls, response)) => {
                assert_eq!(response.status, 200);
                held.push(tls);
            }
            Err(_) => {
                refused += 1;
                assert!(
                    started.elapsed() < Duration::from_secs(2),
                    "a refused connection took {:?} to fail",
                    started.elapsed()
                );
            }
        }
    }
    (held, refused)
}

#[test]
fn idle_connections_past_the_caps_are_closed_at_once_and_idle_ones_time_out() {
    let server = Server::start_with(&flags(&[
        "--max-connections",
        "48",
        "--max-connections-per-client",
        "16",
        "--idle-connection-timeout",
        "8s",
    ]));
    let (token, path) = honest_reader(&server);
    // One client opens 40 keep-alive connections and leaves them idle: 16 are kept.
    let (first, refused) = idle_connections(&server, attacker(2), 40);
    assert_eq!(
        (first.len(), refused),
        (16, 24),
        "(kept, refused) from one client"
    );
    let honest = honest_client(&server, &token, path, HONEST_REQUESTS);
    honest.assert_served_within("40 idle connections from one client", HONEST_P99);
    // Two more clients fill the server's cap: a connection past it is refused at once.
    let (second, _) = idle_connections(&server, attacker(3), 20);
    let (third, _) = idle_connections(&server, attacker(4), 20);
    assert_eq!(first.len() + second.len() + third.len(), 48);
    let (_, refused) = idle_connections(&server, attacker(5), 3);
    assert_eq!(refused, 3, "connections past the server's cap");
    // The idle timeout closes them all and gives their places back.
    let last_request = Instant::now();
    for mut tls in first.into_iter().chain(second).chain(third) {
        assert!(
            closed_within(&mut tls, Duration::from_secs(15)),
            "an idle connection was still open {:?} after its last request",
            last_request.elapsed()
        );
    }
    assert!(last_request.elapsed() < Duration::from_secs(15));
    honest_client(&server, &token, path, 10)
        .assert_served_within("the end of the idle connections", HONEST_P99);
}

#[test]
fn idle_connections_cannot_use_up_an_open_files_limit_of_256() {
    // As under a login shell's default soft limit: the server raises it to the hard limit and
    // caps connections below what is left.
    let server = Server::start_with_open_files(&[], 256);
    let (token, path) = honest_reader(&server);
    let (held, refused) = idle_connections(&server, attacker(2), 300);
    eprintln!(
        "300 idle connections: {} kept, {refused} refused",
        held.len()
    );
    let honest = honest_client(&server, &token, path, HONEST_REQUESTS);
    honest.assert_served_within(
        "300 idle connections at an open-files limit of 256",
        HONEST_P99,
    );
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.pid())).expect("limits");
    let open_files: Vec<&str> = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("Max open files")
        .split_whitespace()
        .skip(3)
        .take(2)
        .collect();
    assert_eq!(
        open_files[0], open_files[1],
        "soft limit raised to the hard limit: {limits}"
    );
}

/// What one slow-body request saw: the response, if one came before the body was done.
fn slow_body(
    server: &Server,
    from: Ipv4Addr,
    request_line: &str,
    token: Option<&str>,
    seconds: u64,
) -> Option<(RawResponse, Duration)> {
    let config = tls_config(server);
    let mut tls = tls_connect(server, &config, from).expect("connects");
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let started = Instant::now();
    write!(
        tls,
        "{request_line} HTTP/1.1\r\nHost: kargo\r\n{auth}Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{{"
    )
    .expect("writes the header");
    tls.flush().expect("flushes");
    while started.elapsed() < Duration::from_secs(seconds) {
        let _ = tls.sock.set_read_timeout(Some(Duration::from_millis(100)));
        match read_response(&mut tls) {
            Ok(response) => return Some((response, started.elapsed())),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return None,
        }
        if tls.write_all(b" ").and_then(|()| tls.flush()).is_err() {
            return None;
        }
    }
    None
}

#[test]
fn a_flood_of_slow_requests_past_the_in_flight_limits_gets_429_and_honest_reads_are_served() {
    let server = Server::start_with(&flags(&[
        "--max-mutating-requests-inflight",
        "4",
        "--max-requests-inflight",
        "8",
    ]));
    let (token, path) = honest_reader(&server);
    let writer = writer_token(&server);
    let server = Arc::new(server);
    // 20 authenticated creates whose bodies arrive one byte at a time: 4 are served, the other
    // 16 get the 429 at once; and 30 unauthenticated reads with slow bodies, which take no place.
    let writes = slow_creates(&server, &writer, 20, 8);
    let anonymous: Vec<_> = (0..30)
        .map(|_| {
            let server = server.clone();
            thread::spawn(move || slow_body(&server, attacker(3), &format!("GET {path}"), None, 8))
        })
        .collect();
    thread::sleep(Duration::from_millis(500));
    let honest = honest_client(&server, &token, path, HONEST_REQUESTS);
    honest.assert_served_within("20 slow writes and 30 slow anonymous reads", HONEST_P99);
    let mut refused = 0;
    for write in writes {
        if let Some((response, after)) = write.join().expect("attacker thread") {
            assert_eq!(response.status, 429, "{}", response.body);
            assert!(
                after < Duration::from_secs(2),
                "the 429 came after {after:?}"
            );
            assert_eq!(response.header("retry-after"), Some("1"));
            let status: Value = serde_json::from_str(&response.body).expect("a Status");
            assert_eq!(status["reason"], "TooManyRequests");
            assert_eq!(
                status["message"],
                "Too many requests, please try again later."
            );
            assert_eq!(status["details"]["retryAfterSeconds"], 1);
            refused += 1;
        }
    }
    assert_eq!(
        refused, 16,
        "slow writes refused past --max-mutating-requests-inflight 4"
    );
    for read in anonymous {
        if let Some((response, _)) = read.join().expect("attacker thread") {
            assert_eq!(response.status, 401, "{}", response.body);
        }
    }
}

/// A slow request running in its thread: what it saw (see [`slow_body`]).
type SlowRequest = thread::JoinHandle<Option<(RawResponse, Duration)>>;

/// `count` creates of ConfigMaps as `writer` from 127.0.0.2, each body sent one byte every
/// 100 ms for up to `seconds`.
fn slow_creates(
    server: &Arc<Server>,
    writer: &str,
    count: usize,
    seconds: u64,
) -> Vec<SlowRequest> {
    (0..count)
        .map(|_| {
            let (server, writer) = (server.clone(), writer.to_owned());
            thread::spawn(move || {
                slow_body(
                    &server,
                    attacker(2),
                    "POST /api/v1/namespaces/honest/configmaps",
                    Some(&writer),
                    seconds,
                )
            })
        })
        .collect()
}

/// The ServiceAccount `honest/writer`, which may create ConfigMaps there: its token.
fn writer_token(server: &Server) -> String {
    account_token(
        server,
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: writer, namespace: honest}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: writer, namespace: honest}\nrules: [{apiGroups: [\"\"], resources: [configmaps], verbs: [create]}]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: writer, namespace: honest}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: writer}\nsubjects: [{kind: ServiceAccount, name: writer, namespace: honest}]\n",
        "writer",
    )
}

#[test]
fn a_request_slower_than_the_request_timeout_gets_504_and_gives_its_place_back() {
    let server = Arc::new(Server::start_with(&flags(&[
        "--request-timeout",
        "2s",
        "--max-mutating-requests-inflight",
        "2",
    ])));
    let (token, path) = honest_reader(&server);
    let writer = writer_token(&server);
    // Two creates whose bodies never finish take both places, until the timeout.
    let writes = slow_creates(&server, &writer, 2, 10);
    let honest = honest_client(&server, &token, path, HONEST_REQUESTS);
    honest.assert_served_within("two requests that never finish their body", HONEST_P99);
    for write in writes {
        let (response, after) = write
            .join()
            .expect("attacker thread")
            .expect("an answer before the body was done");
        assert_eq!(response.status, 504, "{}", response.body);
        let status: Value = serde_json::from_str(&response.body).expect("a Status");
        assert_eq!(status["reason"], "Timeout");
        assert_eq!(
            status["message"],
            "Timeout: request did not complete within the allotted timeout"
        );
        assert!(
            after >= Duration::from_secs(2) && after < Duration::from_secs(5),
            "the 504 came after {after:?}"
        );
    }
    // Their places are back: a create goes through.
    let config = tls_config(&server);
    let mut tls = tls_connect(&server, &config, attacker(2)).expect("connects");
    let body = r#"{"metadata":{"name":"after-the-timeout"}}"#;
    write!(
        tls,
        "POST /api/v1/namespaces/honest/configmaps HTTP/1.1\r\nHost: kargo\r\nAuthorization: Bearer {writer}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("writes");
    tls.flush().expect("flushes");
    assert_eq!(read_response(&mut tls).expect("an answer").status, 201);
}

/// Starts a watch of ConfigMaps in `honest` as `token`: its response head (a 200 keeps the
/// stream open on `tls`).
fn start_watch(server: &Server, token: &str, query: &str) -> (Tls, RawResponse) {
    let config = tls_config(server);
    let mut tls = tls_connect(server, &config, attacker(2)).expect("connects");
    write!(
        tls,
        "GET /api/v1/namespaces/honest/configmaps?watch=true{query} HTTP/1.1\r\nHost: kargo\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    .expect("writes");
    tls.flush().expect("flushes");
    let response = read_response(&mut tls).expect("a response");
    (tls, response)
}

#[test]
fn a_watch_flood_past_the_caps_gets_429_and_watches_end_after_the_server_side_timeout() {
    let server = Server::start_with(&flags(&[
        "--max-watches",
        "6",
        "--max-watches-per-user",
        "3",
        "--min-request-timeout",
        "3s",
    ]));
    let (token, path) = honest_reader(&server);
    // Three accounts that may watch ConfigMaps in `honest` (a Role bound to the namespace's
    // ServiceAccounts group).
    let tokens: Vec<String> = ["w1", "w2", "w3"]
        .iter()
        .map(|name| {
            account_token(
                &server,
                &format!("apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: {name}, namespace: honest}}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {{name: watcher, namespace: honest}}\nrules: [{{apiGroups: [\"\"], resources: [configmaps], verbs: [list, watch]}}]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: watcher, namespace: honest}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: watcher}}\nsubjects: [{{kind: Group, name: \"system:serviceaccounts:honest\", apiGroup: rbac.authorization.k8s.io}}]\n"),
                name,
            )
        })
        .collect();
    // w1 asks for 5 watches: 3 are served, 2 refused; w2 takes the last 3; w3 is refused.
    let mut open = Vec::new();
    let mut refusals = Vec::new();
    for (user, count) in [(0, 5), (1, 3), (2, 1)] {
        for _ in 0..count {
            let (tls, response) = start_watch(&server, &tokens[user], "&timeoutSeconds=60");
            match response.status {
                200 => open.push((user, tls)),
                _ => refusals.push((user, response)),
            }
        }
    }
    let opened: Vec<usize> = open.iter().map(|(u, _)| *u).collect();
    assert_eq!(opened, vec![0, 0, 0, 1, 1, 1], "watches opened, by user");
    assert_eq!(refusals.len(), 3);
    for (_, response) in &refusals {
        assert_eq!(response.status, 429, "{}", response.body);
        assert_eq!(response.header("retry-after"), Some("1"));
        let status: Value = serde_json::from_str(&response.body).expect("a Status");
        assert_eq!(status["reason"], "TooManyRequests");
    }
    let honest = honest_client(&server, &token, path, HONEST_REQUESTS);
    honest.assert_served_within("a watch flood at its caps", HONEST_P99);
    // A watch that ends gives its place back.
    let (_, mut ended) = open.remove(0);
    ended.conn.send_close_notify();
    let _ = ended.flush();
    let _ = ended.sock.shutdown(std::net::Shutdown::Both);
    let mut again = None;
    let deadline = Instant::now() + Duration::from_secs(10);
    while again.is_none() && Instant::now() < deadline {
        let (tls, response) = start_watch(&server, &tokens[2], "&timeoutSeconds=60");
        if response.status == 200 {
            again = Some(tls);
        } else {
            thread::sleep(Duration::from_millis(200));
        }
    }
    assert!(again.is_some(), "w3 could not watch after one watch ended");
    // Without timeoutSeconds, a watch ends after --min-request-timeout to twice it (3–6 s).
    drop((open, again));
    let started = Instant::now();
    let (mut watch, response) = start_watch(&server, &tokens[0], "");
    assert_eq!(response.status, 200);
    // The stream's last chunk, or the end of the connection, ends the watch.
    let _ = watch.sock.set_read_timeout(Some(Duration::from_secs(10)));
    let mut rest = Vec::new();
    let mut byte = [0u8; 1];
    while !(rest == b"0\r\n\r\n" || rest.ends_with(b"\r\n0\r\n\r\n"))
        && matches!(watch.read(&mut byte), Ok(1))
    {
        rest.push(byte[0]);
    }
    let lasted = started.elapsed();
    assert!(
        lasted >= Duration::from_secs(3) && lasted < Duration::from_secs(8),
        "a watch without timeoutSeconds lasted {lasted:?}"
    );
}

#[test]
fn a_request_header_over_64_kib_is_answered_431_and_the_server_keeps_serving() {
    let server = Arc::new(Server::start());
    let (token, path) = honest_reader(&server);
    let big = |size: usize| -> std::io::Result<RawResponse> {
        let config = tls_config(&server);
        let mut tls = tls_connect(&server, &config, attacker(2))?;
        let header = format!(
            "GET /healthz HTTP/1.1\r\nHost: kargo\r\nX-Big: {}\r\n\r\n",
            "a".repeat(size)
        );
        // The server stops reading at the limit: what it answered is read even if the rest of
        // the header could not be written.
        let _ = tls.write_all(header.as_bytes()).and_then(|()| tls.flush());
        read_response(&mut tls)
    };
    assert_eq!(big(32 * 1024).expect("an answer").status, 200);
    for size in [100 * 1024, 1024 * 1024] {
        let response = big(size).expect("an answer, not a dropped connection");
        assert_eq!(response.status, 431, "a {size}-byte header");
    }
    // Eight clients sending 1 MiB headers over and over, while the honest client reads.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let floods: Vec<_> = (0..8)
        .map(|_| {
            let (server, stop) = (server.clone(), stop.clone());
            thread::spawn(move || {
                let config = tls_config(&server);
                let (mut sent, mut answered) = (0, 0);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if let Ok(mut tls) = tls_connect(&server, &config, attacker(3)) {
                        sent += 1;
                        let header = format!(
                            "GET /healthz HTTP/1.1\r\nHost: kargo\r\nX-Big: {}\r\n\r\n",
                            "a".repeat(1024 * 1024)
                        );
                        let _ = tls.write_all(header.as_bytes()).and_then(|()| tls.flush());
                        if read_response(&mut tls).is_ok_and(|r| r.status == 431) {
                            answered += 1;
                        }
                    }
                }
                (sent, answered)
            })
        })
        .collect();
    let honest = honest_client(&server, &token, path, HONEST_REQUESTS);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (sent, answered) = floods
        .into_iter()
        .map(|f| f.join().expect("flood"))
        .fold((0, 0), |(s, a), (fs, fa)| (s + fs, a + fa));
    eprintln!("1 MiB headers answered 431 during the measurement: {answered} of {sent}");
    honest.assert_served_within("8 clients sending 1 MiB headers", HONEST_P99);
    assert!(sent > 0);
    assert_eq!(answered, sent, "1 MiB headers answered 431, not dropped");
}

#[test]
fn an_http2_post_with_a_body_to_no_route_is_answered_404_as_over_http1() {
    let server = Server::start();
    // Whether the client sees the answer or a reset stream was a race: try each case a few times.
    for size in [20_000, 2_000_000] {
        let body = server.scratch().join(format!("body-{size}"));
        std::fs::write(&body, vec![b'a'; size]).expect("body");
        for path in ["/nope", "/v1beta1/nope"] {
            for (flag, version) in [("--http2", "2"), ("--http1.1", "1.1")] {
                for _ in 0..4 {
                    let out = std::process::Command::new("curl")
                        .args([
                            "-sS",
                            "-o",
                            "/dev/null",
                            "-w",
                            "%{http_code} %{http_version}",
                        ])
                        .arg("--cacert")
                        .arg(server.ca())
                        .args([flag, "-X", "POST", "--data-binary"])
                        .arg(format!("@{}", body.display()))
                        .arg(format!("{}{path}", server.url))
                        .output()
                        .expect("curl runs");
                    assert_eq!(
                        String::from_utf8_lossy(&out.stdout),
                        format!("404 {version}"),
                        "POST of {size} bytes to {path} {flag}: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            }
        }
    }
}

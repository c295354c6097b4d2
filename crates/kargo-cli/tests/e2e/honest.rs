//! The honest client of the attack tests, in one place: while an attack runs, a client with a
//! valid token keeps reading, and its [`Latencies`] must stay within a stated p99. Two ways to
//! read: [`honest_client`] (a new connection per request, as a client arriving during the
//! attack) and [`Honest`] (one keep-alive connection from a chosen loopback address, so a test
//! can attack from one address and read from another).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::harness::{Server, raw_get, tls_config, tls_connect};

/// An HTTPS client that trusts `server`'s CA, connecting from `source` when given (any
/// `127.0.0.0/8` address works on Linux loopback).
pub fn client(server: &Server, source: Option<IpAddr>) -> reqwest::Client {
    let ca = std::fs::read(server.ca()).expect("ca.crt");
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("a PEM CA"))
        .local_address(source)
        .timeout(Duration::from_secs(60))
        .build()
        .expect("an HTTPS client")
}

/// Latencies of an honest client measured while an attack runs.
#[derive(Debug)]
pub struct Latencies {
    /// One per request served with 200.
    pub samples: Vec<Duration>,
    /// What went wrong with the others.
    pub failures: Vec<String>,
}

impl Latencies {
    /// The 99th percentile of the served requests.
    pub fn p99(&self) -> Duration {
        self.percentile(99.0)
    }

    /// The `p`th percentile (0 < p ≤ 100) of the served requests.
    pub fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.samples.clone();
        sorted.sort();
        let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
        sorted
            .get(rank.saturating_sub(1))
            .copied()
            .unwrap_or(Duration::MAX)
    }

    /// Asserts that every request was served with 200 and the p99 is within `bound`; prints the
    /// figures (on stderr; `--nocapture` shows them).
    #[track_caller]
    pub fn assert_served_within(&self, attack: &str, bound: Duration) {
        let p50 = self.percentile(50.0);
        let p99 = self.percentile(99.0);
        eprintln!(
            "honest client during {attack}: {} served, {} failed, p50 {p50:?}, p99 {p99:?} (bound {bound:?})",
            self.samples.len(),
            self.failures.len()
        );
        assert!(
            self.failures.is_empty(),
            "during {attack}, {} of {} honest requests failed: {:?}",
            self.failures.len(),
            self.failures.len() + self.samples.len(),
            &self.failures[..self.failures.len().min(5)]
        );
        assert!(
            p99 <= bound,
            "during {attack}, honest p99 {p99:?} > {bound:?}"
        );
    }
}

/// The honest client of the attack tests: `count` authenticated GETs of `path`, one after the
/// other, each on a new connection from 127.0.0.1 (a client arriving during the attack).
pub fn honest_client(server: &Server, token: &str, path: &str, count: usize) -> Latencies {
    let config = tls_config(server);
    let mut samples = Vec::with_capacity(count);
    let mut failures = Vec::new();
    for _ in 0..count {
        let started = Instant::now();
        let outcome = tls_connect(server, &config, [127, 0, 0, 1].into())
            .and_then(|mut tls| raw_get(&mut tls, path, Some(token)));
        match outcome {
            Ok(r) if r.status == 200 => samples.push(started.elapsed()),
            Ok(r) => failures.push(format!("{} {}", r.status, r.body)),
            Err(e) => failures.push(e.to_string()),
        }
    }
    Latencies { samples, failures }
}

impl std::fmt::Display for Latencies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} requests: p50 {:?}, p90 {:?}, p99 {:?}, max {:?}, {} failed",
            self.samples.len(),
            self.percentile(50.0),
            self.percentile(90.0),
            self.p99(),
            self.percentile(100.0),
            self.failures.len()
        )
    }
}

/// Applies `manifest` (objects in the `honest` namespace) as the admin and returns a token of
/// the ServiceAccount `honest/<account>`.
pub fn account_token(server: &Server, manifest: &str, account: &str) -> String {
    server.kubectl_stdin(&["apply", "-f", "-"], manifest).ok();
    server
        .kubectl(&["create", "token", account, "-n", "honest"])
        .ok()
        .trim()
        .to_owned()
}

/// A ServiceAccount `honest/reader` that may read ServiceAccounts there: its token, and the path
/// of its own object (what the honest client reads).
pub fn honest_reader(server: &Server) -> (String, &'static str) {
    let token = account_token(
        server,
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: honest}\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: reader, namespace: honest}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: reader, namespace: honest}\nrules: [{apiGroups: [\"\"], resources: [serviceaccounts], verbs: [get]}]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: reader, namespace: honest}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: reader}\nsubjects: [{kind: ServiceAccount, name: reader, namespace: honest}]\n",
        "reader",
    );
    (token, "/api/v1/namespaces/honest/serviceaccounts/reader")
}

/// A client with a valid token that reads one path, one request after another.
pub struct Honest {
    client: reqwest::Client,
    url: String,
    token: String,
}

impl Honest {
    /// An honest client of `server` with `token`, from the default source address.
    pub fn new(server: &Server, token: &str) -> Honest {
        Honest {
            client: client(server, None),
            url: server.url.clone(),
            token: token.to_owned(),
        }
    }

    /// Sends `n` GETs of `path` one after another on one connection, `pause` apart (so that
    /// the series spans an attack rather than a moment of it).
    pub async fn measure(&self, path: &str, n: usize, pause: Duration) -> Latencies {
        let mut samples = Vec::with_capacity(n);
        let mut failures = Vec::new();
        for _ in 0..n {
            tokio::time::sleep(pause).await;
            let started = Instant::now();
            let response = self
                .client
                .get(format!("{}{path}", self.url))
                .bearer_auth(&self.token)
                .send()
                .await;
            match response {
                Ok(r) if r.status() == 200 => match r.bytes().await {
                    Ok(_) => samples.push(started.elapsed()),
                    Err(e) => failures.push(e.to_string()),
                },
                Ok(r) => failures.push(format!(
                    "{} {}",
                    r.status(),
                    r.text().await.unwrap_or_default()
                )),
                Err(e) => failures.push(e.to_string()),
            }
        }
        Latencies { samples, failures }
    }
}

/// A runtime for a test's clients.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

//! Measuring an honest client while an attack runs: HTTPS clients over the server's CA (from a
//! chosen loopback source address, so a test can attack from one address and log in from
//! another), and the latency distribution of a series of authenticated GETs.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::harness::Server;

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

/// Latencies of a series of requests, sorted.
#[derive(Debug, Clone)]
pub struct Latencies(Vec<Duration>);

impl Latencies {
    /// The p-th percentile (nearest rank).
    pub fn percentile(&self, p: f64) -> Duration {
        let rank = ((p / 100.0) * self.0.len() as f64).ceil() as usize;
        self.0[rank.clamp(1, self.0.len()) - 1]
    }

    /// The 99th percentile.
    pub fn p99(&self) -> Duration {
        self.percentile(99.0)
    }
}

impl std::fmt::Display for Latencies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} requests: p50 {:?}, p90 {:?}, p99 {:?}, max {:?}",
            self.0.len(),
            self.percentile(50.0),
            self.percentile(90.0),
            self.p99(),
            self.0[self.0.len() - 1]
        )
    }
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
    /// the series spans an attack rather than a moment of it); each must answer 200.
    pub async fn measure(&self, path: &str, n: usize, pause: Duration) -> Latencies {
        let mut latencies = Vec::with_capacity(n);
        for _ in 0..n {
            tokio::time::sleep(pause).await;
            let started = Instant::now();
            let response = self
                .client
                .get(format!("{}{path}", self.url))
                .bearer_auth(&self.token)
                .send()
                .await
                .expect("the honest request is answered");
            let status = response.status().as_u16();
            let body = response.bytes().await.expect("the honest answer's body");
            latencies.push(started.elapsed());
            assert_eq!(
                status,
                200,
                "the honest client was refused: {}",
                String::from_utf8_lossy(&body)
            );
        }
        latencies.sort();
        Latencies(latencies)
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

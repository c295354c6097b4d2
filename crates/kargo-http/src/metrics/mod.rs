//! Prometheus metrics, named as kube-apiserver names them where it has one, counted at the
//! seams and never in a handler:
//! - requests ([`RequestObserver`](crate::observe::RequestObserver), `requests.rs`);
//! - authentication attempts, the token cache and authorization decisions
//!   ([`AuthObserver`](kargo_auth::observe::AuthObserver), `auth.rs`);
//! - store calls by backend and operation ([`StoreObserver`](kargo_store::observe::StoreObserver),
//!   `store.rs`);
//! - watches open and events sent (`watch.rs`, from the watch handler's stream);
//! - tokens created and revoked (`tokens.rs`, an informer handler);
//! - the process: memory, CPU, file descriptors (`process.rs`, read at scrape time).
//!
//! Served at `GET /metrics` (authorized as the non-resource URL `/metrics`, as kube-apiserver
//! does) and, when configured, on a plain-HTTP `--metrics-address`.
//!
//! Where to add a metric: a field of the submodule's struct, registered in its `register`,
//! moved from the observer method that sees the event. Label values are `&'static str` taken
//! from fixed sets (never from a request's text), so no client can grow the number of series.

mod audit;
mod auth;
mod histogram;
pub mod listener;
mod process;
mod requests;
mod shards;
mod store;
mod tokens;
mod watch;

use std::sync::Mutex;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{EncodeMetric, MetricEncoder};
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

pub use tokens::TokenCounter;
pub use watch::WatchGuard;

/// The content type of [`Metrics::encode`]'s text (OpenMetrics, which Prometheus scrapes).
pub(crate) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// kube-apiserver's buckets of `apiserver_request_duration_seconds`.
const DURATION_BUCKETS: [f64; 23] = [
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0,
    10.0, 15.0, 20.0, 30.0, 45.0, 60.0,
];

/// A counter written without the `_total` suffix, as kube-apiserver writes its older counters
/// (`authentication_attempts`): typed `unknown`, since OpenMetrics requires the suffix of a
/// `counter`.
#[derive(Debug, Default, Clone)]
struct LegacyCounter(shards::ShardedCounter);

impl TypedMetric for LegacyCounter {
    const TYPE: MetricType = MetricType::Unknown;
}

impl EncodeMetric for LegacyCounter {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encoder.encode_gauge(&self.0.get())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Unknown
    }
}

/// The server's metrics: observers of requests, authentication, authorization and the store,
/// and the registry `/metrics` writes.
pub struct Metrics {
    registry: Mutex<Registry>,
    requests: requests::RequestMetrics,
    auth: auth::AuthMetrics,
    store: store::StoreMetrics,
    watches: watch::WatchMetrics,
    tokens: tokens::TokenMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Every metric at zero, and the process's.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let metrics = Metrics {
            requests: requests::RequestMetrics::register(&mut registry),
            auth: auth::AuthMetrics::register(&mut registry),
            store: store::StoreMetrics::register(&mut registry),
            watches: watch::WatchMetrics::register(&mut registry),
            tokens: tokens::TokenMetrics::register(&mut registry),
            registry: Mutex::new(registry),
        };
        metrics.register_collector(process::ProcessCollector::new());
        metrics
    }

    /// Adds metrics read at each scrape (e.g. counters another part keeps).
    pub fn register_collector(&self, collector: impl Collector) {
        if let Ok(mut registry) = self.registry.lock() {
            registry.register_collector(Box::new(collector));
        }
    }

    /// Every metric in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        if let Ok(registry) = self.registry.lock() {
            // Writing to a String cannot fail.
            let _ = prometheus_client::encoding::text::encode(&mut text, &registry);
        }
        text
    }
}

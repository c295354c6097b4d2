//! `kargo_storage_request_duration_seconds` and `kargo_storage_request_errors_total`, by
//! backend and operation (kube-apiserver's `etcd_request_duration_seconds` and
//! `etcd_request_errors_total`, for either backend), from the store wrapper.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use kargo_store::observe::{Operation, StoreObserver};
use kargo_store::{Error, Store};

use super::Metrics;
use super::histogram::DurationHistogram;

/// Store calls are fast: from 100 µs (a SQLite read) to seconds (an etcd without quorum).
const STORE_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreLabels {
    backend: &'static str,
    operation: &'static str,
}

fn store_histogram() -> DurationHistogram {
    DurationHistogram::new(&STORE_BUCKETS)
}

pub(super) struct StoreMetrics {
    durations: Family<StoreLabels, DurationHistogram, fn() -> DurationHistogram>,
    errors: Family<StoreLabels, Counter>,
}

impl StoreMetrics {
    pub(super) fn register(registry: &mut Registry) -> StoreMetrics {
        let durations: Family<StoreLabels, DurationHistogram, fn() -> DurationHistogram> =
            Family::new_with_constructor(store_histogram);
        registry.register(
            "kargo_storage_request_duration_seconds",
            "Store call latency in seconds, by backend (sqlite, etcd) and operation",
            durations.clone(),
        );
        let errors = Family::<StoreLabels, Counter>::default();
        registry.register(
            "kargo_storage_request_errors",
            "Store calls that failed (unavailable, internal, damaged; not conflicts or absent keys), by backend and operation",
            errors.clone(),
        );
        StoreMetrics { durations, errors }
    }
}

/// Whether a store error is a fault, rather than an answer the caller expects to handle.
fn is_fault(error: &Error) -> bool {
    matches!(
        error,
        Error::Unavailable(_) | Error::Internal(_) | Error::Corrupt(_)
    )
}

/// Every operation, for the series made at zero.
const OPERATIONS: [Operation; 8] = [
    Operation::Get,
    Operation::List,
    Operation::Create,
    Operation::Update,
    Operation::Delete,
    Operation::Watch,
    Operation::Compact,
    Operation::Revision,
];

impl Metrics {
    /// `store` (of `backend`, e.g. `sqlite` or `etcd`), with its calls measured here. Its
    /// error series exist from the start, at zero (so that an alert's `rate()` has them).
    pub fn observe_store(
        self: &Arc<Self>,
        store: Arc<dyn Store>,
        backend: &'static str,
    ) -> Arc<dyn Store> {
        for operation in OPERATIONS {
            drop(self.store.errors.get_or_create(&StoreLabels {
                backend,
                operation: operation.as_str(),
            }));
        }
        kargo_store::observe::observed(store, backend, self.clone())
    }
}

impl StoreObserver for Metrics {
    fn operation(
        &self,
        backend: &'static str,
        operation: Operation,
        elapsed: Duration,
        error: Option<&Error>,
    ) {
        let labels = StoreLabels {
            backend,
            operation: operation.as_str(),
        };
        self.store.durations.get_or_create(&labels).observe(elapsed);
        if error.is_some_and(is_fault) {
            self.store.errors.get_or_create(&labels).inc();
        }
    }
}

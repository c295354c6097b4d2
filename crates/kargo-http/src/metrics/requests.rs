//! `apiserver_request_total`, `apiserver_request_duration_seconds` and
//! `apiserver_current_inflight_requests`, from the request seam.
//!
//! Every request counts into one `(verb, group, resource, subresource, code)` series. Finding
//! it in the label families hashes and compares four strings under a lock; so the series a
//! request needs is found by a number instead — the indexes of its verb, its resource type, its
//! subresource and its code packed in a `u64` — in a cache of the series each thread has
//! used, made from the families only the first time. Nothing shared is written but the
//! counting thread's own slots ([`super::shards`]).

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::Method;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use kargo_api::request_info::Verb;
use kargo_api::resources::ALL;

use super::histogram::DurationHistogram;
use super::shards::{ShardedCounter, ShardedGauge};
use super::{DURATION_BUCKETS, Metrics};
use crate::observe::{RequestObserver, RequestRecord};

type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    verb: &'static str,
    group: &'static str,
    resource: &'static str,
    subresource: &'static str,
    code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DurationLabels {
    verb: &'static str,
    group: &'static str,
    resource: &'static str,
    subresource: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InflightLabels {
    request_kind: &'static str,
}

fn duration_histogram() -> DurationHistogram {
    DurationHistogram::new(&DURATION_BUCKETS)
}

/// The metrics one series key counts into.
#[derive(Clone)]
struct Series {
    requests: ShardedCounter,
    duration: DurationHistogram,
}

/// Numbers the [`RequestMetrics`] of the process (a test runs several servers), to key the
/// threads' caches.
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// The series this thread has counted into, by [`RequestMetrics`] id and [`series_key`].
    static SERIES: RefCell<HashMap<(u64, u64), Series>> = RefCell::default();
}

pub(super) struct RequestMetrics {
    id: u64,
    requests: Family<RequestLabels, ShardedCounter>,
    durations: Family<DurationLabels, DurationHistogram, fn() -> DurationHistogram>,
    read_only: ShardedGauge,
    mutating: ShardedGauge,
}

impl RequestMetrics {
    pub(super) fn register(registry: &mut Registry) -> RequestMetrics {
        let requests = Family::<RequestLabels, ShardedCounter>::default();
        registry.register(
            "apiserver_request",
            "Counter of apiserver requests broken out for each verb, API group, resource, subresource and HTTP response code",
            requests.clone(),
        );
        let durations: Family<DurationLabels, DurationHistogram, fn() -> DurationHistogram> =
            Family::new_with_constructor(duration_histogram);
        registry.register(
            "apiserver_request_duration_seconds",
            "Response latency distribution in seconds for each verb, API group, resource and subresource",
            durations.clone(),
        );
        let inflight = Family::<InflightLabels, ShardedGauge>::default();
        registry.register(
            "apiserver_current_inflight_requests",
            "Number of requests being answered, by kind (readOnly, mutating)",
            inflight.clone(),
        );
        let gauge = |request_kind| {
            inflight
                .get_or_create(&InflightLabels { request_kind })
                .clone()
        };
        RequestMetrics {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            read_only: gauge("readOnly"),
            mutating: gauge("mutating"),
            requests,
            durations,
        }
    }

    fn inflight(&self, method: &Method) -> &ShardedGauge {
        match *method {
            Method::GET | Method::HEAD | Method::OPTIONS => &self.read_only,
            _ => &self.mutating,
        }
    }

    /// Counts a request of series `key` that took `duration`; the series is made from the
    /// families (with `labels`) the first time this thread counts into it.
    fn count(&self, key: u64, labels: impl FnOnce() -> RequestLabels, duration: Duration) {
        SERIES.with_borrow_mut(|cache| {
            let series = cache
                .entry((self.id, key))
                .or_insert_with(|| self.series(labels()));
            series.requests.inc();
            series.duration.observe(duration);
        });
    }

    /// The series of `labels`, from the families.
    fn series(&self, labels: RequestLabels) -> Series {
        Series {
            requests: self.requests.get_or_create(&labels).clone(),
            duration: self
                .durations
                .get_or_create(&DurationLabels {
                    verb: labels.verb,
                    group: labels.group,
                    resource: labels.resource,
                    subresource: labels.subresource,
                })
                .clone(),
        }
    }
}

/// kube-apiserver's `verb` labels.
const VERBS: [&str; 10] = [
    "LIST", "WATCH", "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "other",
];

/// The index in [`VERBS`] of a request's `verb` label: `LIST` and `WATCH` from the request's
/// attributes, otherwise the HTTP method (as kube-apiserver reports it).
fn verb_index(method: &Method, verb: &Verb) -> usize {
    match verb {
        Verb::List => 0,
        Verb::Watch => 1,
        _ => match *method {
            Method::GET => 2,
            Method::POST => 3,
            Method::PUT => 4,
            Method::PATCH => 5,
            Method::DELETE => 6,
            Method::HEAD => 7,
            Method::OPTIONS => 8,
            _ => 9,
        },
    }
}

/// A request's resource as indexes: `(index in ALL, index in its subresources)`; a
/// non-resource request is `(NONE, NONE)`, a resource or subresource the server does not
/// serve is `UNKNOWN` (a client must not be able to make new series by naming resources).
const NONE: usize = 0xff;
const UNKNOWN: usize = 0xfe;

fn resource_index(group: &str, resource: &str, subresource: &str) -> (usize, usize) {
    if resource.is_empty() {
        return (NONE, NONE);
    }
    let Some(at) = ALL
        .iter()
        .position(|r| r.plural == resource && r.group == group)
    else {
        return (UNKNOWN, NONE);
    };
    let sub = if subresource.is_empty() {
        NONE
    } else {
        ALL[at]
            .subresources
            .iter()
            .position(|s| s.name == subresource)
            .unwrap_or(UNKNOWN)
    };
    (at, sub)
}

/// The `(group, resource, subresource)` labels of [`resource_index`]'s indexes.
fn resource_labels(at: usize, sub: usize) -> (&'static str, &'static str, &'static str) {
    let Some(rt) = ALL.get(at) else {
        return if at == UNKNOWN {
            ("unknown", "unknown", "")
        } else {
            ("", "", "")
        };
    };
    let subresource = match sub {
        NONE => "",
        UNKNOWN => "unknown",
        _ => rt.subresources.get(sub).map_or("unknown", |s| s.name),
    };
    (rt.group, rt.plural, subresource)
}

/// The series key: verb, resource, subresource and code packed in one number.
fn series_key(verb: usize, at: usize, sub: usize, code: u16) -> u64 {
    verb as u64 | (at as u64) << 8 | (sub as u64) << 16 | u64::from(code) << 24
}

impl RequestObserver for Metrics {
    fn started(&self, method: &Method) {
        self.requests.inflight(method).inc();
    }

    fn request(&self, record: &RequestRecord<'_>) {
        let metrics = &self.requests;
        metrics.inflight(record.method).dec();
        let info = record.info;
        let verb = verb_index(record.method, &info.verb);
        let (at, sub) = resource_index(info.api_group, info.resource, info.subresource);
        let code = record.status.as_u16();
        let labels = || {
            let (group, resource, subresource) = resource_labels(at, sub);
            RequestLabels {
                verb: VERBS[verb],
                group,
                resource,
                subresource,
                code,
            }
        };
        metrics.count(series_key(verb, at, sub, code), labels, record.duration);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(
        group: &str,
        resource: &str,
        subresource: &str,
    ) -> (&'static str, &'static str, &'static str) {
        let (at, sub) = resource_index(group, resource, subresource);
        resource_labels(at, sub)
    }

    #[test]
    fn labels_come_from_the_served_resources_only() {
        assert_eq!(
            labels("", "serviceaccounts", "token"),
            ("", "serviceaccounts", "token")
        );
        assert_eq!(
            labels("rbac.authorization.k8s.io", "roles", ""),
            ("rbac.authorization.k8s.io", "roles", "")
        );
        assert_eq!(labels("", "", ""), ("", "", ""));
        assert_eq!(
            labels("evil.example", "x-1", ""),
            ("unknown", "unknown", "")
        );
        assert_eq!(labels("", "secrets", "x-1"), ("", "secrets", "unknown"));
    }

    #[test]
    fn series_keys_differ_whenever_a_label_does() {
        let mut keys = std::collections::HashSet::new();
        for verb in 0..VERBS.len() {
            for at in (0..ALL.len()).chain([NONE, UNKNOWN]) {
                for sub in [0, 1, NONE, UNKNOWN] {
                    for code in [200, 201, 403, 404, 500, 599] {
                        assert!(keys.insert(series_key(verb, at, sub, code)));
                    }
                }
            }
        }
    }
}

//! `apiserver_request_total`, `apiserver_request_duration_seconds` and
//! `apiserver_current_inflight_requests`, from the request seam.

use http::Method;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use kargo_api::request_info::Verb;

use super::histogram::DurationHistogram;
use super::{DURATION_BUCKETS, Metrics};
use crate::observe::{RequestObserver, RequestRecord};

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

pub(super) struct RequestMetrics {
    requests: Family<RequestLabels, Counter>,
    durations: Family<DurationLabels, DurationHistogram, fn() -> DurationHistogram>,
    read_only: Gauge,
    mutating: Gauge,
}

impl RequestMetrics {
    pub(super) fn register(registry: &mut Registry) -> RequestMetrics {
        let requests = Family::<RequestLabels, Counter>::default();
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
        let inflight = Family::<InflightLabels, Gauge>::default();
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
            read_only: gauge("readOnly"),
            mutating: gauge("mutating"),
            requests,
            durations,
        }
    }

    fn inflight(&self, method: &Method) -> &Gauge {
        match *method {
            Method::GET | Method::HEAD | Method::OPTIONS => &self.read_only,
            _ => &self.mutating,
        }
    }
}

/// kube-apiserver's `verb` label: `LIST` and `WATCH` from the request's attributes, otherwise
/// the HTTP method.
fn reported_verb(method: &Method, verb: &Verb) -> &'static str {
    match verb {
        Verb::List => "LIST",
        Verb::Watch => "WATCH",
        _ => match *method {
            Method::GET => "GET",
            Method::POST => "POST",
            Method::PUT => "PUT",
            Method::PATCH => "PATCH",
            Method::DELETE => "DELETE",
            Method::HEAD => "HEAD",
            Method::OPTIONS => "OPTIONS",
            Method::CONNECT => "CONNECT",
            _ => "other",
        },
    }
}

/// The `(group, resource, subresource)` labels of a request: the served resource type's own
/// names, `("", "", "")` for a non-resource request, and `unknown` for a resource the server
/// does not serve (a client must not be able to make new series by naming resources).
fn resource_labels(
    group: &str,
    resource: &str,
    subresource: &str,
) -> (&'static str, &'static str, &'static str) {
    if resource.is_empty() {
        return ("", "", "");
    }
    let Some(rt) = kargo_api::resources::ALL
        .iter()
        .find(|r| r.plural == resource && r.group == group)
    else {
        return ("unknown", "unknown", "");
    };
    let subresource = if subresource.is_empty() {
        ""
    } else {
        rt.subresources
            .iter()
            .find(|s| s.name == subresource)
            .map_or("unknown", |s| s.name)
    };
    (rt.group, rt.plural, subresource)
}

impl RequestObserver for Metrics {
    fn started(&self, method: &Method) {
        self.requests.inflight(method).inc();
    }

    fn request(&self, record: &RequestRecord<'_>) {
        let metrics = &self.requests;
        metrics.inflight(record.method).dec();
        let verb = reported_verb(record.method, &record.info.verb);
        let info = record.info;
        let (group, resource, subresource) =
            resource_labels(info.api_group, info.resource, info.subresource);
        metrics
            .requests
            .get_or_create(&RequestLabels {
                verb,
                group,
                resource,
                subresource,
                code: record.status.as_u16(),
            })
            .inc();
        metrics
            .durations
            .get_or_create(&DurationLabels {
                verb,
                group,
                resource,
                subresource,
            })
            .observe(record.duration);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_come_from_the_served_resources_only() {
        assert_eq!(
            resource_labels("", "serviceaccounts", "token"),
            ("", "serviceaccounts", "token")
        );
        assert_eq!(
            resource_labels("rbac.authorization.k8s.io", "roles", ""),
            ("rbac.authorization.k8s.io", "roles", "")
        );
        assert_eq!(resource_labels("", "", ""), ("", "", ""));
        assert_eq!(
            resource_labels("evil.example", "x-1", ""),
            ("unknown", "unknown", "")
        );
        assert_eq!(
            resource_labels("", "secrets", "x-1"),
            ("", "secrets", "unknown")
        );
    }
}

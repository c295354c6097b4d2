//! Prometheus metrics, named as kube-apiserver names them where it has one: counted from the two
//! seams (requests: [`RequestObserver`]; authentication attempts and authorization decisions:
//! [`AuthObserver`]), never in a handler, and served at `GET /metrics` (authorized as the
//! non-resource URL `/metrics`, as kube-apiserver does).
//!
//! Where to add a metric: a field of [`Metrics`], registered in [`Metrics::new`], moved from
//! the observer method that sees the event.

use std::sync::atomic::AtomicU64;

use http::Method;
use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

use kargo_api::request_info::Verb;
use kargo_auth::observe::{AuthObserver, AuthnAttempt, AuthnOutcome, AuthzDecision, Credential};

use crate::observe::{RequestObserver, RequestRecord};

/// The content type of [`Metrics::encode`]'s text (OpenMetrics, which Prometheus scrapes).
pub(crate) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// kube-apiserver's buckets of `apiserver_request_duration_seconds`.
const DURATION_BUCKETS: [f64; 23] = [
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0,
    10.0, 15.0, 20.0, 30.0, 45.0, 60.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    verb: &'static str,
    group: String,
    resource: String,
    code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DurationLabels {
    verb: &'static str,
    group: String,
    resource: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InflightLabels {
    request_kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AuthnLabels {
    result: &'static str,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AuthzLabels {
    decision: &'static str,
}

/// A counter written without the `_total` suffix, as kube-apiserver writes its older counters
/// (`authentication_attempts`): typed `unknown`, since OpenMetrics requires the suffix of a
/// `counter`.
#[derive(Debug, Default, Clone)]
struct LegacyCounter(Counter<u64, AtomicU64>);

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

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

/// The server's metrics: a request observer and an auth observer that count, and the registry
/// `/metrics` writes.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<DurationLabels, Histogram, fn() -> Histogram>,
    inflight: Family<InflightLabels, Gauge>,
    authentications: Family<AuthnLabels, LegacyCounter>,
    decisions: Family<AuthzLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Every metric at zero.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "apiserver_request",
            "Counter of apiserver requests broken out for each verb, API group, resource and HTTP response code.",
            requests.clone(),
        );
        let durations: Family<DurationLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(duration_histogram);
        registry.register(
            "apiserver_request_duration_seconds",
            "Response latency distribution in seconds for each verb, API group and resource.",
            durations.clone(),
        );
        let inflight = Family::<InflightLabels, Gauge>::default();
        registry.register(
            "apiserver_current_inflight_requests",
            "Number of requests being answered, by kind (readOnly, mutating).",
            inflight.clone(),
        );
        let authentications = Family::<AuthnLabels, LegacyCounter>::default();
        registry.register(
            "authentication_attempts",
            "Counter of authenticated attempts, by result and credential kind.",
            authentications.clone(),
        );
        let decisions = Family::<AuthzLabels, Counter>::default();
        registry.register(
            "kargo_authorization_decisions",
            "Counter of authorization decisions, by decision (allowed, denied).",
            decisions.clone(),
        );
        Metrics {
            registry,
            requests,
            durations,
            inflight,
            authentications,
            decisions,
        }
    }

    /// Every metric in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
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

/// kube-apiserver's `request_kind` of its in-flight gauge.
fn request_kind(method: &Method) -> &'static str {
    match *method {
        Method::GET | Method::HEAD | Method::OPTIONS => "readOnly",
        _ => "mutating",
    }
}

impl RequestObserver for Metrics {
    fn started(&self, method: &Method) {
        self.inflight
            .get_or_create(&InflightLabels {
                request_kind: request_kind(method),
            })
            .inc();
    }

    fn request(&self, record: &RequestRecord<'_>) {
        self.inflight
            .get_or_create(&InflightLabels {
                request_kind: request_kind(record.method),
            })
            .dec();
        let verb = reported_verb(record.method, &record.info.verb);
        let group = record.info.api_group.to_owned();
        let resource = record.info.resource.to_owned();
        self.requests
            .get_or_create(&RequestLabels {
                verb,
                group: group.clone(),
                resource: resource.clone(),
                code: record.status.as_u16(),
            })
            .inc();
        self.durations
            .get_or_create(&DurationLabels {
                verb,
                group,
                resource,
            })
            .observe(record.duration.as_secs_f64());
    }
}

/// The `kind` label of an authentication attempt.
fn credential_kind(credential: Credential) -> &'static str {
    match credential {
        Credential::ServiceAccountToken => "service_account_token",
        Credential::BoundToken => "bound_token",
        Credential::AdminToken => "admin_token",
        Credential::AdminPassword => "admin_password",
        Credential::ClientCertificate => "client_certificate",
        Credential::Oidc => "oidc",
        Credential::Unrecognized => "unrecognized",
        Credential::None => "none",
    }
}

impl AuthObserver for Metrics {
    fn authentication(&self, attempt: &AuthnAttempt<'_>) {
        let result = match attempt.outcome {
            AuthnOutcome::Authenticated(_) => "success",
            AuthnOutcome::Failed(_) => "failure",
        };
        self.authentications
            .get_or_create(&AuthnLabels {
                result,
                kind: credential_kind(attempt.credential),
            })
            .0
            .inc();
    }

    fn authorization(&self, decision: &AuthzDecision<'_>) {
        let decision = if decision.allowed {
            "allowed"
        } else {
            "denied"
        };
        self.decisions
            .get_or_create(&AuthzLabels { decision })
            .inc();
    }
}

//! `authentication_attempts`, `authentication_token_cache_request_total` and
//! `kargo_authorization_decisions_total`, from the auth seam and the token cache.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use kargo_auth::observe::{AuthObserver, AuthnAttempt, AuthnOutcome, AuthzDecision, Credential};
use kargo_auth::tokens::CacheStats;

use super::shards::ShardedCounter;
use super::{LegacyCounter, Metrics};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AuthnLabels {
    result: &'static str,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AuthzLabels {
    decision: &'static str,
}

/// Every credential kind, in the order of [`credential_index`].
const CREDENTIALS: [Credential; 8] = [
    Credential::ServiceAccountToken,
    Credential::BoundToken,
    Credential::AdminToken,
    Credential::AdminPassword,
    Credential::ClientCertificate,
    Credential::Oidc,
    Credential::Unrecognized,
    Credential::None,
];

/// Every series made at start-up (at zero), so that counting is an index and an atomic
/// addition: no label hashing on the request path.
pub(super) struct AuthMetrics {
    /// `[success, failure]` × [`CREDENTIALS`].
    authentications: [[LegacyCounter; CREDENTIALS.len()]; 2],
    /// `[allowed, denied]`.
    decisions: [ShardedCounter; 2],
}

impl AuthMetrics {
    pub(super) fn register(registry: &mut Registry) -> AuthMetrics {
        let authentications = Family::<AuthnLabels, LegacyCounter>::default();
        registry.register(
            "authentication_attempts",
            "Counter of authenticated attempts, by result and credential kind",
            authentications.clone(),
        );
        let decisions = Family::<AuthzLabels, ShardedCounter>::default();
        registry.register(
            "kargo_authorization_decisions",
            "Counter of authorization decisions, by decision (allowed, denied)",
            decisions.clone(),
        );
        let attempts = |result| {
            CREDENTIALS.map(|credential| {
                authentications
                    .get_or_create(&AuthnLabels {
                        result,
                        kind: credential_kind(credential),
                    })
                    .clone()
            })
        };
        let decision = |decision| decisions.get_or_create(&AuthzLabels { decision }).clone();
        AuthMetrics {
            authentications: [attempts("success"), attempts("failure")],
            decisions: [decision("allowed"), decision("denied")],
        }
    }
}

/// The index of `credential` in [`CREDENTIALS`].
fn credential_index(credential: Credential) -> usize {
    CREDENTIALS
        .iter()
        .position(|c| *c == credential)
        .unwrap_or(CREDENTIALS.len() - 1)
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
            AuthnOutcome::Authenticated(_) => 0,
            AuthnOutcome::Failed(_) => 1,
        };
        self.auth.authentications[result][credential_index(attempt.credential)]
            .0
            .inc();
    }

    fn authorization(&self, decision: &AuthzDecision<'_>) {
        self.auth.decisions[usize::from(!decision.allowed)].inc();
    }
}

/// The service-account token cache's hits and misses, read at each scrape
/// (kube-apiserver's `authentication_token_cache_request_total{status}`).
#[derive(Debug)]
pub(crate) struct TokenCacheCollector(pub(crate) Arc<CacheStats>);

impl Collector for TokenCacheCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let counter = ConstCounter::new(0u64);
        let mut family = encoder.encode_descriptor(
            "authentication_token_cache_request",
            "Counter of service-account token cache lookups, by status (hit, miss).",
            None,
            counter.metric_type(),
        )?;
        for (status, count) in [("hit", &self.0.hits), ("miss", &self.0.misses)] {
            let labels = [("status", status)];
            ConstCounter::new(count.load(Ordering::Relaxed))
                .encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

impl Metrics {
    /// Reports `stats` (the token authenticator's cache) at each scrape.
    pub fn watch_token_cache(&self, stats: Arc<CacheStats>) {
        self.register_collector(TokenCacheCollector(stats));
    }
}

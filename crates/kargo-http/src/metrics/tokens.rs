//! `kargo_service_account_tokens_created_total`, `..._revoked_total` and the gauge
//! `kargo_service_account_tokens`: an informer handler that follows token Secrets.
//!
//! A token counts as created when its Secret first holds a token (the token controller filled
//! it in) and as revoked when that Secret is deleted (`kargo revoke`, `kubectl delete secret`,
//! or with its account). Every replica's informer sees every change, so each replica reports
//! the cluster's counts: aggregate replicas with `max`, not `sum`. The relist at start-up sets
//! the gauge without counting the tokens it finds as created.

use std::collections::HashSet;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use kargo_api::resources::{SECRETS, parse_key};
use kargo_api::well_known::SERVICE_ACCOUNT_TOKEN_TYPE;
use kargo_registry::informer::{Handler, Head, Item};
use kargo_store::{Event, EventKind, KeyValue};

use super::Metrics;

#[derive(Clone)]
pub(super) struct TokenMetrics {
    created: Counter,
    revoked: Counter,
    current: Gauge,
}

impl TokenMetrics {
    pub(super) fn register(registry: &mut Registry) -> TokenMetrics {
        let metrics = TokenMetrics {
            created: Counter::default(),
            revoked: Counter::default(),
            current: Gauge::default(),
        };
        registry.register(
            "kargo_service_account_tokens_created",
            "Service-account tokens issued (token Secrets filled in), cluster-wide",
            metrics.created.clone(),
        );
        registry.register(
            "kargo_service_account_tokens_revoked",
            "Service-account tokens revoked (token Secrets deleted), cluster-wide",
            metrics.revoked.clone(),
        );
        registry.register(
            "kargo_service_account_tokens",
            "Service-account tokens that exist now",
            metrics.current.clone(),
        );
        metrics
    }
}

/// The informer handler behind the token metrics.
pub struct TokenCounter {
    metrics: TokenMetrics,
    /// `/registry/secrets/<ns>/<name>` of every Secret that holds a token.
    tokens: HashSet<String>,
    relisting: bool,
}

impl Metrics {
    /// The informer handler that counts tokens into these metrics.
    pub fn token_counter(&self) -> TokenCounter {
        TokenCounter {
            metrics: self.tokens.clone(),
            tokens: HashSet::new(),
            relisting: false,
        }
    }
}

/// Whether a Secret's head is a token Secret that holds its token.
fn holds_token(head: Option<&Head>) -> bool {
    head.is_some_and(|h| h.kind() == Some(SERVICE_ACCOUNT_TOKEN_TYPE) && h.data("token").is_some())
}

impl TokenCounter {
    fn observe(&mut self, kv: &KeyValue, head: Option<&Head>, deleted: bool) {
        if !matches!(parse_key(&kv.key), Some((rt, Some(_), _)) if std::ptr::eq(rt, &SECRETS)) {
            return;
        }
        if !deleted && holds_token(head) {
            if self.tokens.insert(kv.key.clone()) && !self.relisting {
                self.metrics.created.inc();
            }
        } else if self.tokens.remove(&kv.key) && !self.relisting {
            self.metrics.revoked.inc();
        }
        self.metrics
            .current
            .set(i64::try_from(self.tokens.len()).unwrap_or(i64::MAX));
    }
}

impl Handler for TokenCounter {
    fn resync_begin(&mut self) {
        self.tokens.clear();
        self.relisting = true;
    }

    fn resync_page(&mut self, items: &[Item<'_>]) {
        for item in items {
            self.observe(item.kv, item.head, false);
        }
    }

    fn resync_end(&mut self) {
        self.relisting = false;
        self.metrics
            .current
            .set(i64::try_from(self.tokens.len()).unwrap_or(i64::MAX));
    }

    fn event(&mut self, event: &Event, head: Option<&Head>) {
        self.observe(&event.kv, head, event.kind == EventKind::Deleted);
    }
}

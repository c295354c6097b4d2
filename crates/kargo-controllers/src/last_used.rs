//! The last-used flusher: writes when legacy tokens were last used, and from where, to their
//! Secrets (`kargo.akuity.io/last-used-at`, `kargo.akuity.io/last-used-from` and Kubernetes'
//! `kubernetes.io/legacy-token-last-used` label, see `kargo_api::last_used`).
//!
//! Requests only record a use in memory (`kargo_auth::usage`); every [`INTERVAL`] this
//! replica's flusher takes the tokens used since its last round and writes each Secret whose
//! metadata the use changes, the writes of one round side by side (the SQLite backend commits
//! them together). A use is kept to the minute, so a token's Secret is written at most once a
//! minute whatever the interval; a use in a minute already recorded writes nothing.
//!
//! Replicas flush their own observations: each write is a read-modify-write with
//! compare-and-swap (`Registry::update_with`, retried with fresh state on a conflict) that
//! never moves `last-used-at` backwards, so the latest use wins in any order. A failed write
//! is retried next round; a Secret deleted (or created again under the same name) meanwhile is
//! left alone. The flusher writes as the server, not through a request, so its writes are no
//! use; they change no RBAC policy, so they forget no remembered decision. On shutdown it
//! flushes once more, so a clean stop loses nothing; a crash loses at most one interval.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kargo_api::last_used::{LAST_USED_AT_ANNOTATION, stamp};
use kargo_api::resources::SECRETS;
use kargo_api::well_known::LEGACY_TOKEN_LAST_USED_LABEL;
use kargo_auth::usage::TokenUse;
use kargo_auth::view::AuthView;
use kargo_registry::object::{meta_mut, set_meta};
use kargo_registry::{Meta, Registry, Target, WriteOptions};
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

/// How often a replica writes the uses it has seen (`kargo server --token-last-used-interval`).
pub const INTERVAL: Duration = Duration::from_secs(60);
/// How many Secrets one round writes at once.
const CONCURRENT_WRITES: usize = 32;

/// Writes the uses recorded in an auth view to the token Secrets.
#[derive(Clone)]
pub struct LastUsedFlusher {
    registry: Registry,
    view: Arc<AuthView>,
}

impl LastUsedFlusher {
    /// A flusher of the uses recorded in `view`, writing through `registry`.
    pub fn new(registry: Registry, view: Arc<AuthView>) -> LastUsedFlusher {
        LastUsedFlusher { registry, view }
    }

    /// Runs a round every `interval` until `shutdown`, then a last one.
    pub fn start(self, interval: Duration, shutdown: CancellationToken) {
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    _ = shutdown.cancelled() => break,
                }
                self.flush().await;
            }
            self.flush().await;
        });
    }

    /// Writes every use recorded since the last round; returns how many Secrets were written.
    pub async fn flush(&self) -> usize {
        let taken = self.view.usage().take();
        if taken.is_empty() {
            return 0;
        }
        futures::stream::iter(taken)
            .map(|used| self.write(used))
            .buffer_unordered(CONCURRENT_WRITES)
            .filter(|written| std::future::ready(*written))
            .count()
            .await
    }

    /// Writes one token's use to its Secret; whether the Secret was written.
    async fn write(&self, used: TokenUse) -> bool {
        let target = Target::new(&SECRETS, Some(&used.namespace), &used.name);
        let mut written = false;
        let result = self
            .registry
            .update_with(target, &WriteOptions::default(), |current| {
                written = false;
                if current.uid() != used.uid || current.is_deleting() {
                    return Ok(current.clone());
                }
                let stamp = stamp(
                    current.annotation(LAST_USED_AT_ANNOTATION),
                    current.label(LEGACY_TOKEN_LAST_USED_LABEL),
                    used.used,
                );
                if stamp.is_empty() {
                    return Ok(current.clone());
                }
                let mut next = current.clone();
                set_meta(&mut next, "resourceVersion", None);
                let meta = meta_mut(&mut next);
                let mut annotations = string_map(meta, "annotations");
                let mut labels = string_map(meta, "labels");
                stamp.apply(&mut annotations, &mut labels);
                meta.insert("annotations".into(), Value::Object(annotations));
                meta.insert("labels".into(), Value::Object(labels));
                written = true;
                Ok(next)
            })
            .await;
        match result {
            Ok(_) => written,
            Err(e) if e.is_not_found() => false,
            Err(e) => {
                tracing::warn!(namespace = used.namespace, secret = used.name, error = %e, "writing when a token was last used failed; retrying next round");
                self.view.usage().retry(used);
                false
            }
        }
    }
}

/// A string map of `metadata` (`annotations`, `labels`), taken out of it (empty if missing).
fn string_map(meta: &mut Map<String, Value>, field: &str) -> Map<String, Value> {
    match meta.remove(field) {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

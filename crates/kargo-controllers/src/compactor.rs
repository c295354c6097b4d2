//! The compactor: drops store history older than about one interval, as kube-apiserver does
//! (every 5 minutes, it compacts to the revision it saw one interval earlier).
//!
//! Watches and paged lists need recent history (a client resuming a watch from its last
//! `resourceVersion`); nothing needs old history, and without compaction both backends keep every
//! version of every object forever. On etcd every replica runs a compactor: compacting to a
//! revision another replica already compacted past fails with `Compacted`, which is expected
//! and ignored, so the work is done once per interval in effect.

use std::sync::Arc;
use std::time::Duration;

use kargo_store::{Error, Revision, Store};
use tokio_util::sync::CancellationToken;

/// The default interval (kube-apiserver's `--etcd-compaction-interval`).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// Compacts every `interval` to the revision seen at the previous tick, until `shutdown`.
pub async fn run(store: Arc<dyn Store>, interval: Duration, shutdown: CancellationToken) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut previous: Option<Revision> = None;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        if let Some(target) = previous {
            compact_once(store.as_ref(), target).await;
        }
        previous = match store.current_revision().await {
            Ok(revision) => Some(revision),
            Err(e) => {
                tracing::warn!(error = %e, "compactor: reading the current revision failed");
                None
            }
        };
    }
}

/// One compaction to `target`; the outcome is only logged.
async fn compact_once(store: &dyn Store, target: Revision) {
    match store.compact(target).await {
        Ok(()) => tracing::debug!(%target, "compacted the store's history"),
        Err(Error::Compacted { oldest, .. }) => {
            tracing::debug!(%target, %oldest, "history already compacted further")
        }
        Err(e) => tracing::warn!(error = %e, %target, "compacting the store's history failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn history_older_than_one_interval_is_compacted_and_newer_history_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(kargo_store::sqlite::SqliteStore::open(&dir.path().join("s.db")).unwrap());
        let old = store.create("/k", b"v1".to_vec()).await.unwrap();
        let shutdown = CancellationToken::new();
        let interval = Duration::from_millis(100);
        tokio::spawn(run(store.clone(), interval, shutdown.clone()));
        // The first tick sees `old`; the second compacts to it.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while store.compacted_revision().await.unwrap() < old.mod_revision {
            assert!(tokio::time::Instant::now() < deadline, "never compacted");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        shutdown.cancel();
        tokio::time::sleep(interval * 2).await;
        assert_eq!(store.compacted_revision().await.unwrap(), old.mod_revision);
        // The newest history is still there: a watch from the compacted revision works.
        let new = store
            .update("/k", b"v2".to_vec(), old.mod_revision)
            .await
            .unwrap();
        let mut watch = store.watch("/", old.mod_revision).await.unwrap();
        use futures::StreamExt;
        assert_eq!(watch.next().await.unwrap().unwrap().kv, new);
    }
}

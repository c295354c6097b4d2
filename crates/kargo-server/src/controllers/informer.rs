//! The informer: one list-then-watch of the whole key space (API objects under `/registry/`,
//! server state such as signing keys under `/kargo/internal/`), fanned out to in-memory views (the auth view, the garbage collector's owner index, the controllers' queues).
//!
//! # States
//! - **Listing**: pages through every key at one revision R, handing each page to the handlers
//!   between `resync_begin` and `resync_end`;
//! - **Watching**: delivers every event after R, in order.
//!
//! # Recovery
//! If the watch fails (the store lost its history because of compaction, or the backend is
//! unavailable), the informer waits briefly and relists; handlers rebuild their state from the
//! new list, so nothing is missed.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kargo_store::{Event, KeyValue, ListRequest, Revision, Store};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The key space the informer follows.
pub const PREFIX: &str = "/";
const PAGE: usize = 1000;

/// A consumer of the informer's stream. Methods run on the informer's task: keep them short and
/// hand slow work to a queue.
pub trait Handler: Send {
    /// A full relist starts: forget everything.
    fn resync_begin(&mut self) {}
    /// A page of the relist.
    fn resync_page(&mut self, kvs: &[KeyValue]);
    /// The relist is complete.
    fn resync_end(&mut self) {}
    /// One change after the relist.
    fn event(&mut self, event: &Event);
}

/// Runs the informer until `shutdown`. `synced` is set to the revision every handler has seen.
pub async fn run(
    store: Arc<dyn Store>,
    mut handlers: Vec<Box<dyn Handler>>,
    synced: watch::Sender<Revision>,
    shutdown: CancellationToken,
) {
    loop {
        let revision = tokio::select! {
            r = relist(&store, &mut handlers) => r,
            _ = shutdown.cancelled() => return,
        };
        let revision = match revision {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "informer list failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(500)) => continue,
                    _ = shutdown.cancelled() => return,
                }
            }
        };
        let _ = synced.send(revision);
        let mut stream = match store.watch(PREFIX, revision).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "informer watch failed; relisting");
                continue;
            }
        };
        loop {
            let next = tokio::select! {
                n = stream.next() => n,
                _ = shutdown.cancelled() => return,
            };
            match next {
                Some(Ok(event)) => {
                    for h in handlers.iter_mut() {
                        h.event(&event);
                    }
                    let _ = synced.send(event.revision());
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "informer watch ended; relisting");
                    break;
                }
                None => {
                    tracing::warn!("informer watch closed; relisting");
                    break;
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

async fn relist(
    store: &Arc<dyn Store>,
    handlers: &mut [Box<dyn Handler>],
) -> kargo_store::Result<Revision> {
    let mut start_after = None;
    let mut revision = None;
    let mut begun = false;
    loop {
        let page = store
            .list(ListRequest {
                prefix: PREFIX.into(),
                start_after: start_after.clone(),
                revision,
                limit: Some(PAGE),
            })
            .await?;
        if !begun {
            for h in handlers.iter_mut() {
                h.resync_begin();
            }
            begun = true;
        }
        revision = Some(page.revision);
        for h in handlers.iter_mut() {
            h.resync_page(&page.kvs);
        }
        start_after = page.kvs.last().map(|kv| kv.key.clone());
        if !page.more || start_after.is_none() {
            break;
        }
    }
    for h in handlers.iter_mut() {
        h.resync_end();
    }
    Ok(revision.unwrap_or_default())
}

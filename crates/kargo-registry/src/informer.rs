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
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use kargo_store::{Event, KeyValue, ListRequest, Revision, Store};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The key space the informer follows.
pub(crate) const PREFIX: &str = "/";
const PAGE: usize = 1000;

/// What the views and controllers read of an API object, decoded once per change for all of
/// them (decoding a whole object into a JSON value for each handler made start-up with hundreds
/// of thousands of objects slow).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct Head {
    /// `metadata`.
    #[serde(default)]
    pub metadata: HeadMeta,
    /// `type` (Secrets).
    #[serde(default, rename = "type")]
    pub kind: Option<serde_json::Value>,
    /// `data` (Secrets, ConfigMaps).
    #[serde(default)]
    pub data: Option<serde_json::Value>,
}

/// The metadata of a [`Head`].
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeadMeta {
    /// `uid`.
    #[serde(default)]
    pub uid: String,
    /// `deletionTimestamp`.
    #[serde(default)]
    pub deletion_timestamp: Option<String>,
    /// `ownerReferences`.
    #[serde(default)]
    pub owner_references: Vec<crate::object::OwnerReference>,
    /// `finalizers`.
    #[serde(default)]
    pub finalizers: Vec<String>,
    /// `annotations`.
    #[serde(default)]
    pub annotations: std::collections::BTreeMap<String, String>,
}

impl Head {
    /// Decodes the head of an API object (`None` for other keys, or an unreadable value).
    pub fn of(kv: &KeyValue) -> Option<Head> {
        if !kv.key.starts_with("/registry/") {
            return None;
        }
        serde_json::from_slice(&kv.value)
            .inspect_err(|e| {
                tracing::warn!(key = %kv.key, error = %e, "a stored object does not decode; views skip it");
            })
            .ok()
    }

    /// Whether the object is being deleted.
    pub fn deleting(&self) -> bool {
        self.metadata.deletion_timestamp.is_some()
    }

    /// `type` as a string.
    pub fn kind(&self) -> Option<&str> {
        self.kind.as_ref().and_then(serde_json::Value::as_str)
    }

    /// One string of `data`, if set and not empty.
    pub fn data(&self, key: &str) -> Option<&str> {
        self.data
            .as_ref()?
            .get(key)?
            .as_str()
            .filter(|s| !s.is_empty())
    }

    /// One annotation.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.metadata.annotations.get(key).map(String::as_str)
    }
}

/// One key of a relist page, with its decoded head.
pub struct Item<'a> {
    /// The key and value.
    pub kv: &'a KeyValue,
    /// The head, for API objects.
    pub head: Option<&'a Head>,
}

/// A consumer of the informer's stream. Methods run on the informer's task: keep them short and
/// hand slow work to a queue.
pub trait Handler: Send {
    /// A full relist starts: forget everything.
    fn resync_begin(&mut self) {}
    /// A page of the relist.
    fn resync_page(&mut self, items: &[Item<'_>]);
    /// The relist is complete.
    fn resync_end(&mut self) {}
    /// One change after the relist, with the head of the new value (of the last value, for a
    /// deletion).
    fn event(&mut self, event: &Event, head: Option<&Head>);
}

/// Whether the informer is in its **Watching** state: it has listed the store and follows it.
/// False before the first list completes and while it relists after a failed watch (the
/// `informer-sync` check of `/readyz`). Cheap to clone and to read.
#[derive(Debug, Clone, Default)]
pub struct Watching(Arc<AtomicBool>);

impl Watching {
    /// Whether the informer is watching now.
    pub fn get(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    fn set(&self, watching: bool) {
        self.0.store(watching, Ordering::Release);
    }
}

/// Runs the informer until `shutdown`. `synced` is set to the revision every handler has seen.
pub async fn run(
    store: Arc<dyn Store>,
    handlers: Vec<Box<dyn Handler>>,
    synced: watch::Sender<Revision>,
    shutdown: CancellationToken,
) {
    run_reporting(store, handlers, synced, Watching::default(), shutdown).await;
}

/// [`run`], telling `watching` whether it is in its Watching state.
pub async fn run_reporting(
    store: Arc<dyn Store>,
    mut handlers: Vec<Box<dyn Handler>>,
    synced: watch::Sender<Revision>,
    watching: Watching,
    shutdown: CancellationToken,
) {
    loop {
        watching.set(false);
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
        // Listed: from here every change reaches the handlers (a watch that fails to open
        // sends the informer back to listing, which clears this). Set before `synced`, which
        // the server waits for before it serves.
        watching.set(true);
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
                    let head = Head::of(&event.kv);
                    for h in handlers.iter_mut() {
                        h.event(&event, head.as_ref());
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
        let heads: Vec<Option<Head>> = page.kvs.iter().map(Head::of).collect();
        let items: Vec<Item<'_>> = page
            .kvs
            .iter()
            .zip(&heads)
            .map(|(kv, head)| Item {
                kv,
                head: head.as_ref(),
            })
            .collect();
        for h in handlers.iter_mut() {
            h.resync_page(&items);
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

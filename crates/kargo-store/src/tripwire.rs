//! Stopping on damage: a [`Store`] wrapper that notices the first [`Error::Corrupt`] that any
//! call or watch stream returns and reports it, once, to whoever owns the process.
//!
//! Every other error is something a caller retries or answers (a conflict, an unavailable
//! member); a damaged store is neither. Without this, the server's informer relisted a store
//! with a damaged page every half second forever, neither serving nor exiting. With it, the
//! server's start-up and run loop wait on [`Tripped::wait`] beside their other work and stop
//! with the message.

use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use tokio::sync::watch;

use crate::{Error, KeyValue, ListPage, ListRequest, Result, Revision, Store, WatchStream};

/// Wraps `store`; the returned [`Tripped`] resolves when the store first reports damage.
pub fn tripwire(store: Arc<dyn Store>) -> (Arc<dyn Store>, Tripped) {
    let (sender, receiver) = watch::channel(None);
    let wire = Tripwire {
        inner: store,
        tripped: Arc::new(sender),
    };
    (Arc::new(wire), Tripped(receiver))
}

/// The damage a [`tripwire`] store reported, if any. Clones see the same report.
#[derive(Clone)]
pub struct Tripped(watch::Receiver<Option<String>>);

impl Tripped {
    /// The first damage reported so far.
    pub fn get(&self) -> Option<String> {
        self.0.borrow().clone()
    }

    /// Waits until the store reports damage and returns its message. Never resolves while the
    /// store is healthy (nor once the store is gone without a report).
    pub async fn wait(&mut self) -> String {
        match self.0.wait_for(Option::is_some).await {
            Ok(report) => report.clone().unwrap_or_default(),
            Err(_) => std::future::pending().await,
        }
    }
}

struct Tripwire {
    inner: Arc<dyn Store>,
    tripped: Arc<watch::Sender<Option<String>>>,
}

/// Records the first damage report; later ones only add to the log.
fn trip(tripped: &watch::Sender<Option<String>>, message: &str) {
    let first = tripped.send_if_modified(|report| {
        if report.is_some() {
            return false;
        }
        *report = Some(message.to_owned());
        true
    });
    if first {
        tracing::error!(error = %message, "the store is damaged");
    }
}

impl Tripwire {
    fn check<T>(&self, result: Result<T>) -> Result<T> {
        if let Err(Error::Corrupt(message)) = &result {
            trip(&self.tripped, message);
        }
        result
    }
}

#[async_trait]
impl Store for Tripwire {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        self.check(self.inner.get(key).await)
    }

    async fn list(&self, request: ListRequest) -> Result<ListPage> {
        self.check(self.inner.list(request).await)
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue> {
        self.check(self.inner.create(key, value).await)
    }

    async fn update(&self, key: &str, value: Vec<u8>, expected: Revision) -> Result<KeyValue> {
        self.check(self.inner.update(key, value, expected).await)
    }

    async fn delete(&self, key: &str, expected: Revision) -> Result<KeyValue> {
        self.check(self.inner.delete(key, expected).await)
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        let stream = self.check(self.inner.watch(prefix, after).await)?;
        let tripped = Arc::clone(&self.tripped);
        Ok(Box::pin(stream.inspect(move |item| {
            if let Err(Error::Corrupt(message)) = item {
                trip(&tripped, message);
            }
        })))
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        self.check(self.inner.compact(revision).await)
    }

    async fn current_revision(&self) -> Result<Revision> {
        self.check(self.inner.current_revision().await)
    }

    async fn compacted_revision(&self) -> Result<Revision> {
        self.check(self.inner.compacted_revision().await)
    }

    fn committed_revision(&self) -> Option<Revision> {
        self.inner.committed_revision()
    }
}

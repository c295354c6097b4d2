//! Watching a store's work: a [`Store`] wrapper that tells a [`StoreObserver`] how long each
//! call took and whether it failed (the server's metrics attach here: store latency and errors
//! by backend and operation).
//!
//! A watch is observed when it is opened, not per event: its stream's events are the
//! informer's and the watch handlers' to count.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::{Error, KeyValue, ListPage, ListRequest, Result, Revision, Store, WatchStream};

/// A store call, as the observer is told of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// [`Store::get`].
    Get,
    /// [`Store::list`].
    List,
    /// [`Store::create`].
    Create,
    /// [`Store::update`].
    Update,
    /// [`Store::delete`].
    Delete,
    /// [`Store::watch`] (opening the stream).
    Watch,
    /// [`Store::compact`].
    Compact,
    /// [`Store::current_revision`] and [`Store::compacted_revision`].
    Revision,
}

impl Operation {
    /// The operation's name, as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Get => "get",
            Operation::List => "list",
            Operation::Create => "create",
            Operation::Update => "update",
            Operation::Delete => "delete",
            Operation::Watch => "watch",
            Operation::Compact => "compact",
            Operation::Revision => "revision",
        }
    }
}

/// Sees every call of an [`observed`] store, on the caller's task: keep it short.
pub trait StoreObserver: Send + Sync + 'static {
    /// One call of `operation` took `elapsed`; `error` is its failure, if any (a conflict or
    /// an absent key counts: telling those from faults is the observer's choice).
    fn operation(
        &self,
        backend: &'static str,
        operation: Operation,
        elapsed: Duration,
        error: Option<&Error>,
    );
}

/// Wraps `store` (of `backend`, e.g. `sqlite` or `etcd`) so that `observer` sees every call.
pub fn observed(
    store: Arc<dyn Store>,
    backend: &'static str,
    observer: Arc<dyn StoreObserver>,
) -> Arc<dyn Store> {
    Arc::new(Observed {
        inner: store,
        backend,
        observer,
    })
}

struct Observed {
    inner: Arc<dyn Store>,
    backend: &'static str,
    observer: Arc<dyn StoreObserver>,
}

impl Observed {
    fn seen<T>(&self, operation: Operation, started: Instant, result: Result<T>) -> Result<T> {
        self.observer.operation(
            self.backend,
            operation,
            started.elapsed(),
            result.as_ref().err(),
        );
        result
    }
}

#[async_trait]
impl Store for Observed {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let started = Instant::now();
        self.seen(Operation::Get, started, self.inner.get(key).await)
    }

    async fn list(&self, request: ListRequest) -> Result<ListPage> {
        let started = Instant::now();
        self.seen(Operation::List, started, self.inner.list(request).await)
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue> {
        let started = Instant::now();
        self.seen(
            Operation::Create,
            started,
            self.inner.create(key, value).await,
        )
    }

    async fn update(&self, key: &str, value: Vec<u8>, expected: Revision) -> Result<KeyValue> {
        let started = Instant::now();
        let result = self.inner.update(key, value, expected).await;
        self.seen(Operation::Update, started, result)
    }

    async fn delete(&self, key: &str, expected: Revision) -> Result<KeyValue> {
        let started = Instant::now();
        self.seen(
            Operation::Delete,
            started,
            self.inner.delete(key, expected).await,
        )
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        let started = Instant::now();
        self.seen(
            Operation::Watch,
            started,
            self.inner.watch(prefix, after).await,
        )
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        let started = Instant::now();
        self.seen(
            Operation::Compact,
            started,
            self.inner.compact(revision).await,
        )
    }

    async fn current_revision(&self) -> Result<Revision> {
        let started = Instant::now();
        self.seen(
            Operation::Revision,
            started,
            self.inner.current_revision().await,
        )
    }

    async fn compacted_revision(&self) -> Result<Revision> {
        let started = Instant::now();
        self.seen(
            Operation::Revision,
            started,
            self.inner.compacted_revision().await,
        )
    }

    fn committed_revision(&self) -> Option<Revision> {
        self.inner.committed_revision()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::sqlite::SqliteStore;

    #[derive(Default)]
    struct Seen(Mutex<Vec<(&'static str, Operation, bool)>>);

    impl StoreObserver for Seen {
        fn operation(
            &self,
            backend: &'static str,
            operation: Operation,
            _: Duration,
            error: Option<&Error>,
        ) {
            self.0
                .lock()
                .unwrap()
                .push((backend, operation, error.is_some()));
        }
    }

    #[tokio::test]
    async fn every_call_is_seen_once_with_its_outcome() {
        let dir = tempfile::tempdir().unwrap();
        let inner: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("s.db")).unwrap());
        let seen = Arc::new(Seen::default());
        let store = observed(inner, "sqlite", seen.clone());
        let kv = store.create("/k", b"v".to_vec()).await.unwrap();
        assert!(store.create("/k", b"v".to_vec()).await.is_err());
        store.get("/k").await.unwrap();
        store.delete("/k", kv.mod_revision).await.unwrap();
        assert_eq!(
            *seen.0.lock().unwrap(),
            [
                ("sqlite", Operation::Create, false),
                ("sqlite", Operation::Create, true),
                ("sqlite", Operation::Get, false),
                ("sqlite", Operation::Delete, false),
            ]
        );
    }
}

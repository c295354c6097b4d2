//! Test support (this crate's tests, and feature `testing` for the layers above): the fast
//! in-process tier's ground. A [`TestRegistry`] is a [`Registry`] over a real SQLite store in a
//! temporary directory (no mocks); [`TestInformer`] runs the real [`informer`](crate::informer)
//! with the handlers a test gives it, as the server does; [`eventually`] is the bounded poll
//! for what controllers do in the background.

// Test support: a store that cannot open should fail the test with the reason.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kargo_api::resources::{NAMESPACES, ResourceType};
use kargo_store::{Revision, Store};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

use crate::informer::{self, Handler};
use crate::status::Result;
use crate::{DeleteOptions, Deleted, Object, Registry, Target, WriteOptions};

/// How long [`eventually`] waits before it fails the test. Controllers act in milliseconds;
/// the bound only keeps a broken test from hanging.
pub const EVENTUALLY: Duration = Duration::from_secs(5);

/// A registry over a SQLite store in a temporary directory, removed when dropped.
pub struct TestRegistry {
    /// The registry.
    pub registry: Registry,
    /// Its store.
    pub store: Arc<dyn Store>,
    _dir: TempDir,
}

impl Default for TestRegistry {
    fn default() -> Self {
        TestRegistry::new()
    }
}

impl TestRegistry {
    /// A fresh, empty store and its registry. Call inside a Tokio runtime.
    pub fn new() -> TestRegistry {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store: Arc<dyn Store> = Arc::new(
            kargo_store::sqlite::SqliteStore::open(&dir.path().join("kargo.db"))
                .expect("a SQLite store"),
        );
        TestRegistry {
            registry: Registry::new(store.clone()),
            store,
            _dir: dir,
        }
    }

    /// A fresh store with the namespaces `names`.
    pub async fn with_namespaces(names: &[&str]) -> TestRegistry {
        let test = TestRegistry::new();
        for name in names {
            test.create(&NAMESPACES, None, json!({"metadata": {"name": name}}))
                .await
                .expect("creating a namespace");
        }
        test
    }

    /// Creates an object from `body` with default options.
    pub async fn create(
        &self,
        rt: &'static ResourceType,
        namespace: Option<&str>,
        body: Value,
    ) -> Result<Object> {
        self.registry
            .create(rt, namespace, body, &WriteOptions::default())
            .await
            .map(|written| written.object)
    }

    /// Creates the object `name` of `rt` with nothing but its name (a ServiceAccount, a
    /// ConfigMap, a Namespace), expecting it to be written.
    pub async fn create_named(
        &self,
        rt: &'static ResourceType,
        namespace: Option<&str>,
        name: &str,
    ) -> Object {
        self.create(rt, namespace, json!({"metadata": {"name": name}}))
            .await
            .expect("creating an object")
    }

    /// Deletes an object with default options.
    pub async fn delete(
        &self,
        rt: &'static ResourceType,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Deleted> {
        self.registry
            .delete(Target::new(rt, namespace, name), &DeleteOptions::default())
            .await
    }

    /// Waits until the object is gone (for what controllers delete in the background).
    pub async fn eventually_gone(
        &self,
        rt: &'static ResourceType,
        namespace: Option<&str>,
        name: &str,
    ) {
        eventually(&format!("{} {name} to be gone", rt.plural), || async {
            self.get(rt, namespace, name).await.is_none().then_some(())
        })
        .await;
    }

    /// Whether the object exists.
    pub async fn exists(
        &self,
        rt: &'static ResourceType,
        namespace: Option<&str>,
        name: &str,
    ) -> bool {
        self.get(rt, namespace, name).await.is_some()
    }

    /// Reads an object, or `None`.
    pub async fn get(
        &self,
        rt: &'static ResourceType,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Object> {
        self.registry
            .try_get(Target::new(rt, namespace, name))
            .await
            .expect("reading an object")
    }
}

/// The body of the token Secret `name` of the ServiceAccount `account`, with no data yet.
pub fn token_secret_body(name: &str, account: &str) -> Value {
    json!({
        "metadata": {"name": name, "annotations": {"kubernetes.io/service-account.name": account}},
        "type": "kubernetes.io/service-account-token",
    })
}

/// The informer, running in-process over a store with the given handlers until dropped.
pub struct TestInformer {
    synced: tokio::sync::watch::Receiver<Revision>,
    shutdown: CancellationToken,
}

impl TestInformer {
    /// Starts the informer as the server does; handlers get `shutdown()` to stop their
    /// workers. Returns once the first list is delivered.
    pub async fn start(
        store: &Arc<dyn Store>,
        shutdown: CancellationToken,
        handlers: Vec<Box<dyn Handler>>,
    ) -> TestInformer {
        let (tx, synced) = tokio::sync::watch::channel(Revision::ZERO);
        let initial = store
            .current_revision()
            .await
            .expect("the store's revision");
        tokio::spawn(informer::run(store.clone(), handlers, tx, shutdown.clone()));
        let informer = TestInformer { synced, shutdown };
        informer.synced_to(initial).await;
        informer
    }

    /// Waits until every handler has seen `revision`.
    pub async fn synced_to(&self, revision: Revision) {
        let mut synced = self.synced.clone();
        tokio::time::timeout(EVENTUALLY, synced.wait_for(|seen| *seen >= revision))
            .await
            .expect("the informer to catch up in time")
            .expect("the informer to run");
    }
}

impl Drop for TestInformer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Polls `check` every few milliseconds until it answers `Some`, failing the test with `what`
/// after [`EVENTUALLY`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + EVENTUALLY;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

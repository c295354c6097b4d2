//! The controllers' in-process tests (the fast tier): a registry over a temporary SQLite store,
//! the real informer feeding the garbage collector, the namespace controller and the token
//! controller as the server wires them, and a bounded poll for what they do in the background.
//!
//! - `aggregation`: aggregated ClusterRoles follow the roles they select;
//! - `gc`: owner references (background, orphan, foreground, dangling owners);
//! - `tokens`: token Secrets filled, and deleted with their account;
//! - `last_used`: uses of tokens written to their Secrets, with a clock the test moves.

// Tests: a failed step should fail the test with its reason.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod aggregation;
mod gc;
mod last_used;
mod tokens;

use std::ops::Deref;
use std::sync::Arc;

use kargo_auth::keys::{KEYS_KEY, KeySet};
use kargo_auth::mint::TokenMinter;
use kargo_auth::view::AuthView;
use kargo_registry::informer::Handler;
use kargo_registry::testing::{TestInformer, TestRegistry};
use kargo_store::Store;
use tokio_util::sync::CancellationToken;

use crate::aggregation::AggregationController;
use crate::gc::GarbageCollector;
use crate::namespace::NamespaceController;
use crate::tokens::TokenController;

/// What token Secrets get as `ca.crt`.
const CA_PEM: &str = "-----BEGIN CERTIFICATE-----\ntest\n-----END CERTIFICATE-----\n";

/// A registry with the namespace `p` and the controllers running, as `kargo server` starts
/// them; everything stops when dropped.
struct Controllers {
    test: TestRegistry,
    /// The auth view the informer feeds.
    view: Arc<AuthView>,
    informer: TestInformer,
}

impl Deref for Controllers {
    type Target = TestRegistry;

    fn deref(&self) -> &TestRegistry {
        &self.test
    }
}

async fn start() -> Controllers {
    let test = TestRegistry::with_namespaces(&["p"]).await;
    let shutdown = CancellationToken::new();
    let view = AuthView::new(shared_keys(&test.store).await);
    let minter = TokenMinter::new(view.clone(), CA_PEM.to_owned());
    let registry = test.registry.clone();
    let handlers: Vec<Box<dyn Handler>> = vec![
        Box::new(view.writer()),
        Box::new(GarbageCollector::start(registry.clone(), shutdown.clone())),
        Box::new(NamespaceController::start(
            registry.clone(),
            shutdown.clone(),
        )),
        Box::new(AggregationController::start(
            registry.clone(),
            shutdown.clone(),
        )),
        Box::new(TokenController::start(registry, minter, shutdown.clone())),
    ];
    let informer = TestInformer::start(&test.store, shutdown, handlers).await;
    Controllers {
        test,
        view,
        informer,
    }
}

/// The signing keys, stored in `store` as `kargo server` stores them: one key set for every
/// test of the process, as generating an RSA key can take most of a second.
async fn shared_keys(store: &Arc<dyn Store>) -> KeySet {
    static STORED: tokio::sync::OnceCell<Vec<u8>> = tokio::sync::OnceCell::const_new();
    let stored = STORED
        .get_or_init(|| async {
            let first = TestRegistry::new();
            kargo_auth::keys::load_or_create(&first.store)
                .await
                .unwrap();
            first.store.get(KEYS_KEY).await.unwrap().unwrap().value
        })
        .await;
    store.create(KEYS_KEY, stored.clone()).await.unwrap();
    kargo_auth::keys::load_or_create(store).await.unwrap()
}

//! The in-process fixture of this crate's tests: [`Kargo`] over a temporary SQLite store, with
//! the informer feeding the auth view as in the server, so that authorization, escalation
//! prevention and "the next request sees the write" work as they do when served. The caller
//! is the admin (`system:masters`) unless a test says otherwise.

use std::sync::Arc;

use kargo_api::resources::ResourceType;
use kargo_auth::Authorizer;
use kargo_auth::authn::Authenticator;
use kargo_auth::rbac::UserInfo;
use kargo_auth::view::AuthView;
use kargo_registry::{Object, Registry, Target, informer};
use kargo_store::{Revision, Store};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::{Kargo, Scope};

/// A running Kargo over a temporary store; dropping it stops the informer.
pub(crate) struct Fixture {
    pub(crate) kargo: Kargo,
    pub(crate) admin: UserInfo,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Fixture {
    /// A fresh store with the auth view in sync.
    pub(crate) async fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store: Arc<dyn Store> = Arc::new(
            kargo_store::sqlite::SqliteStore::open(&dir.path().join("db")).expect("open SQLite"),
        );
        let keys = kargo_auth::keys::load_or_create(&store)
            .await
            .expect("signing keys");
        let view = AuthView::new(keys);
        let shutdown = CancellationToken::new();
        let (synced_tx, mut synced_rx) = tokio::sync::watch::channel(Revision::ZERO);
        let initial = store.current_revision().await.expect("revision");
        tokio::spawn(informer::run(
            store.clone(),
            vec![Box::new(view.writer())],
            synced_tx,
            shutdown.clone(),
        ));
        synced_rx
            .wait_for(|seen| *seen >= initial)
            .await
            .expect("informer synced");
        // Token Secrets are filled as they are created, as the server does.
        let minter = kargo_auth::mint::TokenMinter::new(view.clone(), String::new());
        let kargo = Kargo::new(
            Registry::new(store),
            Arc::new(Authorizer::new(view)),
            synced_rx,
        )
        .with_minter(minter);
        Fixture {
            kargo,
            admin: Authenticator::admin_user(),
            shutdown,
            _dir: dir,
        }
    }

    /// The same with project `p` (its namespace and default roles) created through Kargo.
    pub(crate) async fn with_project(project: &str) -> Fixture {
        let fixture = Fixture::new().await;
        fixture
            .kargo
            .create_project(&fixture.admin, json!({"metadata": {"name": project}}))
            .await
            .expect("create project");
        fixture
    }

    /// A Kargo ServiceAccount created through Kargo.
    pub(crate) async fn service_account(&self, scope: &Scope, name: &str) {
        let body = serde_json::from_value(json!({"metadata": {"name": name}})).expect("body");
        self.kargo
            .create_service_account(&self.admin, scope, body)
            .await
            .expect("create service account");
    }

    /// The stored object, if any.
    pub(crate) async fn stored(
        &self,
        rt: &'static ResourceType,
        namespace: &str,
        name: &str,
    ) -> Option<Object> {
        let namespace = rt.namespaced.then_some(namespace);
        self.kargo
            .registry()
            .try_get(Target::new(rt, namespace, name))
            .await
            .expect("read the store")
    }
}

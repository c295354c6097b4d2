//! The in-process fixture of kargo-auth's tests (the fast tier): a temporary SQLite store with
//! the real signing keys and admin record in it, a registry that writes objects, and the
//! informer feeding the auth view and the admin account, wired as the server wires them, with
//! no HTTP and no spawned binary.

use std::sync::Arc;

use kargo_api::resources::{NAMESPACES, ResourceType, SECRETS, SERVICEACCOUNTS};
use kargo_registry::delete::DeleteOptions;
use kargo_registry::informer;
use kargo_registry::object::{Meta, Object};
use kargo_registry::{Registry, Target, WriteOptions};
use kargo_store::{Revision, Store};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::admin::{Admin, AdminWatcher};
use crate::authn::Authenticator;
use crate::authz::Authorizer;
use crate::mint::TokenMinter;
use crate::observe::AuthObserver;
use crate::tokens::TokenAuthenticator;
use crate::view::AuthView;

/// The issuer of bound tokens in these tests.
pub(crate) const ISSUER: &str = "https://kargo.test";
/// The admin password of these tests.
pub(crate) const PASSWORD: &str = "a password for the tests";

/// A store, its registry and the views the informer keeps current.
pub(crate) struct World {
    _dir: tempfile::TempDir,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) registry: Registry,
    pub(crate) view: Arc<AuthView>,
    pub(crate) admin: Arc<Admin>,
    pub(crate) minter: TokenMinter,
    synced: watch::Receiver<Revision>,
    shutdown: CancellationToken,
}

impl Drop for World {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl World {
    /// A new store with keys and an admin record, and the informer running over it.
    pub(crate) async fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(kargo_store::sqlite::SqliteStore::open(&dir.path().join("kargo.db")).unwrap());
        let (admin, _) = Admin::init(&store, Some(PASSWORD), false).await.unwrap();
        let admin = Arc::new(admin);
        let view = AuthView::new(crate::keys::load_or_create(&store).await.unwrap());
        let (synced_tx, synced) = watch::channel(Revision::ZERO);
        let shutdown = CancellationToken::new();
        tokio::spawn(informer::run(
            store.clone(),
            vec![
                Box::new(view.writer()),
                Box::new(AdminWatcher(admin.clone())),
            ],
            synced_tx,
            shutdown.clone(),
        ));
        let world = World {
            _dir: dir,
            registry: Registry::new(store.clone()),
            minter: TokenMinter::new(view.clone(), String::new()),
            store,
            view,
            admin,
            synced,
            shutdown,
        };
        world.settle().await;
        world
    }

    /// Waits until the views have seen every write made so far.
    pub(crate) async fn settle(&self) {
        let revision = self.store.current_revision().await.unwrap();
        self.synced
            .clone()
            .wait_for(|seen| *seen >= revision)
            .await
            .unwrap();
    }

    /// An authenticator over the views (bound tokens of [`ISSUER`]).
    pub(crate) fn authenticator(&self, observer: Option<Arc<dyn AuthObserver>>) -> Authenticator {
        let tokens = TokenAuthenticator::new(self.view.clone(), ISSUER.into());
        self.authenticator_of(tokens, observer)
    }

    /// An authenticator over the views that reads the time from `clock`.
    pub(crate) fn authenticator_with_clock(&self, clock: crate::tokens::Clock) -> Authenticator {
        let tokens = TokenAuthenticator::new(self.view.clone(), ISSUER.into()).with_clock(clock);
        self.authenticator_of(tokens, None)
    }

    fn authenticator_of(
        &self,
        tokens: TokenAuthenticator,
        observer: Option<Arc<dyn AuthObserver>>,
    ) -> Authenticator {
        let tokens = Arc::new(tokens);
        let authn = Authenticator::new(self.admin.clone(), tokens);
        match observer {
            Some(observer) => authn.with_observer(observer),
            None => authn,
        }
    }

    /// An authorizer over the view's policy.
    pub(crate) fn authorizer(&self, observer: Option<Arc<dyn AuthObserver>>) -> Arc<Authorizer> {
        let authz = Authorizer::new(self.view.clone());
        Arc::new(match observer {
            Some(observer) => authz.with_observer(observer),
            None => authz,
        })
    }

    /// Creates an object (as the server itself, with no admission check) and waits for the
    /// views to see it.
    pub(crate) async fn create(
        &self,
        rt: &'static ResourceType,
        namespace: Option<&str>,
        body: Value,
    ) -> Object {
        let written = self
            .registry
            .create(rt, namespace, body, &WriteOptions::default())
            .await
            .unwrap();
        self.settle().await;
        written.object
    }

    /// Deletes an object and waits for the views to see it gone.
    pub(crate) async fn delete(
        &self,
        rt: &'static ResourceType,
        namespace: Option<&str>,
        name: &str,
    ) {
        self.registry
            .delete(Target::new(rt, namespace, name), &DeleteOptions::default())
            .await
            .unwrap();
        self.settle().await;
    }

    /// Creates namespace `namespace`.
    pub(crate) async fn namespace(&self, namespace: &str) {
        self.create(&NAMESPACES, None, json!({"metadata": {"name": namespace}}))
            .await;
    }

    /// Creates ServiceAccount `namespace/name`; its uid.
    pub(crate) async fn account(&self, namespace: &str, name: &str) -> String {
        let sa = self
            .create(
                &SERVICEACCOUNTS,
                Some(namespace),
                json!({"metadata": {"name": name, "namespace": namespace}}),
            )
            .await;
        sa.uid().to_owned()
    }

    /// Creates the token Secret `namespace/name` of account `account` (uid `uid`), filled by
    /// the minter as the Kargo API fills it; the token.
    pub(crate) async fn token_secret(
        &self,
        namespace: &str,
        name: &str,
        account: &str,
        uid: &str,
    ) -> String {
        self.token_secret_annotated(namespace, name, account, uid, &[])
            .await
    }

    /// [`World::token_secret`] with more annotations on the Secret.
    pub(crate) async fn token_secret_annotated(
        &self,
        namespace: &str,
        name: &str,
        account: &str,
        uid: &str,
        annotations: &[(&str, &str)],
    ) -> String {
        let mut all = serde_json::Map::new();
        all.insert("kubernetes.io/service-account.name".into(), account.into());
        for (key, value) in annotations {
            all.insert((*key).into(), (*value).into());
        }
        let mut secret = json!({
            "metadata": {
                "name": name,
                "namespace": namespace,
                "annotations": all,
            },
            "type": "kubernetes.io/service-account-token",
        });
        self.minter
            .fill(&mut secret, namespace, name, account, uid)
            .unwrap();
        let secret = self.create(&SECRETS, Some(namespace), secret).await;
        let token = secret
            .pointer("/data/token")
            .and_then(Value::as_str)
            .unwrap();
        use base64::Engine;
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(token)
                .unwrap(),
        )
        .unwrap()
    }
}

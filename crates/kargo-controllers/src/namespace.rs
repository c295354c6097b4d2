//! The namespace controller: every active namespace has a `default` ServiceAccount (as
//! Kubernetes' service-account controller ensures), and a namespace being deleted has its content
//! deleted, then its `kubernetes` finalizer removed, which removes the namespace.

use std::time::Duration;

use kargo_api::resources::{self, NAMESPACES, SERVICEACCOUNTS};
use kargo_store::{Event, EventKind, KeyValue};
use tokio_util::sync::CancellationToken;

use kargo_registry::informer::{Handler, Head, Item};
use kargo_registry::object::Meta;
use kargo_registry::queue::{self, Action, Queue};
use kargo_registry::status::Result;
use kargo_registry::{DeleteOptions, ListOptions, Registry, Target, WriteOptions};

/// Work on one namespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Work {
    /// Make sure the namespace has its `default` ServiceAccount.
    DefaultAccount(String),
    /// Delete the content of a namespace being deleted, then finalize it.
    Empty(String),
}

/// The controller's informer handler.
pub struct NamespaceController {
    queue: Queue<Work>,
    prefix: String,
    accounts: String,
}

impl NamespaceController {
    /// Starts the controller's worker; returns its informer handler.
    pub fn start(registry: Registry, shutdown: CancellationToken) -> NamespaceController {
        let queue = queue::start(shutdown, move |work: Work| {
            let registry = registry.clone();
            async move {
                let result = match &work {
                    Work::Empty(name) => empty_namespace(&registry, name).await,
                    Work::DefaultAccount(name) => default_account(&registry, name).await,
                };
                match result {
                    Ok(action) => action,
                    Err(status) => {
                        tracing::debug!(?work, error = %status, "namespace work failed; retrying");
                        Action::Requeue(Duration::from_secs(1))
                    }
                }
            }
        });
        NamespaceController {
            queue,
            prefix: NAMESPACES.key_prefix(),
            accounts: SERVICEACCOUNTS.key_prefix(),
        }
    }

    fn observe(&self, kv: &KeyValue, head: Option<&Head>, kind: Option<EventKind>) {
        if let Some(rest) = kv.key.strip_prefix(&self.accounts) {
            // The `default` account was deleted: it comes back.
            if kind == Some(EventKind::Deleted)
                && let Some((ns, "default")) = rest.split_once('/')
            {
                self.queue.add(Work::DefaultAccount(ns.to_owned()));
            }
            return;
        }
        let Some(name) = kv.key.strip_prefix(&self.prefix) else {
            return;
        };
        if kind == Some(EventKind::Deleted) {
            return;
        }
        let deleting = head.is_some_and(Head::deleting);
        if deleting {
            self.queue.add(Work::Empty(name.to_owned()));
        } else if matches!(kind, None | Some(EventKind::Created)) {
            self.queue.add(Work::DefaultAccount(name.to_owned()));
        }
    }
}

impl Handler for NamespaceController {
    fn resync_page(&mut self, items: &[Item<'_>]) {
        for item in items {
            self.observe(item.kv, item.head, None);
        }
    }

    fn event(&mut self, event: &Event, head: Option<&Head>) {
        self.observe(&event.kv, head, Some(event.kind));
    }
}

async fn empty_namespace(registry: &Registry, name: &str) -> Result<Action> {
    let Some(ns) = registry
        .try_get(Target::new(&NAMESPACES, None, name))
        .await?
    else {
        return Ok(Action::Done);
    };
    if !ns.is_deleting() {
        return Ok(Action::Done);
    }
    let everything = ListOptions::default();
    let mut remaining = 0;
    for rt in resources::stored().filter(|rt| rt.namespaced) {
        let deleted = registry
            .delete_collection(rt, Some(name), &everything, &DeleteOptions::default())
            .await?;
        // What is still there after a delete is waiting for finalizers.
        remaining += deleted.items.iter().filter(|obj| obj.is_deleting()).count();
    }
    if remaining > 0 {
        return Ok(Action::Requeue(Duration::from_millis(500)));
    }
    registry.finalize_namespace(name, Vec::new()).await?;
    Ok(Action::Done)
}

async fn default_account(registry: &Registry, namespace: &str) -> Result<Action> {
    let Some(ns) = registry
        .try_get(Target::new(&NAMESPACES, None, namespace))
        .await?
    else {
        return Ok(Action::Done);
    };
    if ns.is_deleting() {
        return Ok(Action::Done);
    }
    let body = serde_json::json!({"metadata": {"name": "default"}});
    match registry
        .create(
            &SERVICEACCOUNTS,
            Some(namespace),
            body,
            &WriteOptions::default(),
        )
        .await
    {
        Ok(_) => Ok(Action::Done),
        Err(e) if e.is_already_exists() || e.is_not_found() || e.code == 403 => Ok(Action::Done),
        Err(e) => Err(e),
    }
}

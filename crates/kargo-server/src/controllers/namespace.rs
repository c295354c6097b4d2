//! The namespace controller: a namespace being deleted has its content deleted, then its
//! `kubernetes` finalizer removed, which removes the namespace.

use std::time::Duration;

use kargo_api::resources::{self, NAMESPACES};
use kargo_store::{Event, KeyValue};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::informer::Handler;
use super::queue::{self, Action, Queue};
use crate::registry::object::Meta;
use crate::registry::{DeleteOptions, ListOptions, Registry, Target};
use crate::status::Result;

/// The controller's informer handler.
pub struct NamespaceController {
    queue: Queue<String>,
    prefix: String,
}

impl NamespaceController {
    /// Starts the controller's worker; returns its informer handler.
    pub fn start(registry: Registry, shutdown: CancellationToken) -> NamespaceController {
        let queue = queue::start(shutdown, move |name: String| {
            let registry = registry.clone();
            async move {
                match empty_namespace(&registry, &name).await {
                    Ok(action) => action,
                    Err(status) => {
                        tracing::debug!(namespace = name, error = %status, "emptying a namespace failed; retrying");
                        Action::Requeue(Duration::from_secs(1))
                    }
                }
            }
        });
        NamespaceController {
            queue,
            prefix: NAMESPACES.key_prefix(),
        }
    }

    fn observe(&self, kv: &KeyValue) {
        let Some(name) = kv.key.strip_prefix(&self.prefix) else {
            return;
        };
        let deleting = serde_json::from_slice::<Value>(&kv.value)
            .map(|obj| obj.is_deleting())
            .unwrap_or(false);
        if deleting {
            self.queue.add(name.to_owned());
        }
    }
}

impl Handler for NamespaceController {
    fn resync_page(&mut self, kvs: &[KeyValue]) {
        for kv in kvs {
            self.observe(kv);
        }
    }

    fn event(&mut self, event: &Event) {
        if event.kind != kargo_store::EventKind::Deleted {
            self.observe(&event.kv);
        }
    }
}

async fn empty_namespace(registry: &Registry, name: &str) -> Result<Action> {
    let Some(ns) = registry.try_get(Target::new(&NAMESPACES, None, name)).await? else {
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
        remaining += deleted
            .items
            .iter()
            .filter(|obj| obj.is_deleting())
            .count();
    }
    if remaining > 0 {
        return Ok(Action::Requeue(Duration::from_millis(500)));
    }
    registry.finalize_namespace(name, Vec::new()).await?;
    Ok(Action::Done)
}

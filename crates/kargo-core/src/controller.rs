//! The project controller: a Project however created (the Kargo API, `kubectl apply`, GitOps)
//! gets its labeled namespace and default roles ([`crate::projects::initialize`]), once.
//! Deleting a Project deletes its namespace through the owner reference (garbage collector).

use std::time::Duration;

use kargo_api::resources::PROJECTS;
use kargo_store::{Event, EventKind, KeyValue};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::projects::{Initialized, READY, initialize};
use kargo_registry::Registry;
use kargo_registry::informer::{Handler, Head, Item};
use kargo_registry::object::Meta;
use kargo_registry::queue::{self, Action, Queue};

/// The controller's informer handler.
pub struct ProjectController {
    queue: Queue<String>,
    prefix: String,
}

impl ProjectController {
    /// Starts the controller's worker; returns its informer handler.
    pub fn start(registry: Registry, shutdown: CancellationToken) -> ProjectController {
        let queue = queue::start(shutdown, move |name: String| {
            let registry = registry.clone();
            async move {
                match initialize(&registry, &name).await {
                    Ok(Initialized::Ready(_) | Initialized::Gone) => Action::Done,
                    Ok(Initialized::Waiting) => Action::Requeue(Duration::from_secs(1)),
                    Err(e) => {
                        tracing::warn!(project = name, error = %e, "initializing a project failed; retrying");
                        Action::Requeue(Duration::from_secs(5))
                    }
                }
            }
        });
        ProjectController {
            queue,
            prefix: PROJECTS.key_prefix(),
        }
    }

    fn observe(&self, kv: &KeyValue, kind: Option<EventKind>) {
        let Some(name) = kv.key.strip_prefix(&self.prefix) else {
            return;
        };
        if kind == Some(EventKind::Deleted) {
            return;
        }
        let Ok(project) = serde_json::from_slice::<Value>(&kv.value) else {
            return;
        };
        let ready = project
            .get("status")
            .and_then(|s| s.get("phase"))
            .and_then(Value::as_str)
            == Some(READY);
        if !ready && !project.is_deleting() {
            self.queue.add(name.to_owned());
        }
    }
}

impl Handler for ProjectController {
    fn resync_page(&mut self, items: &[Item<'_>]) {
        for item in items {
            self.observe(item.kv, None);
        }
    }

    fn event(&mut self, event: &Event, _head: Option<&Head>) {
        self.observe(&event.kv, Some(event.kind));
    }
}

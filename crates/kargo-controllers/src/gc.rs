//! The garbage collector: owner references honoured as Kubernetes does.
//!
//! - a dependent all of whose owners are gone (absent, or present with another uid) is deleted;
//!   one with some owners gone loses the dangling references;
//! - an owner deleted with `propagationPolicy=Orphan` keeps its dependents: their references to
//!   it are removed, then its `orphan` finalizer;
//! - an owner deleted with `Foreground` waits (finalizer `foregroundDeletion`) until its
//!   dependents are gone.
//!
//! An owner index (owner uid → dependents) is kept from the informer's stream; before acting,
//! the collector checks the owner live, so a lagging index can delay work but never cause a
//! wrong deletion.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kargo_api::resources::{self, ResourceType};
use kargo_store::{Event, EventKind};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use kargo_registry::delete::{FOREGROUND_FINALIZER, ORPHAN_FINALIZER};
use kargo_registry::informer::{Handler, Head, Item};
use kargo_registry::object::{Meta, OwnerReference, set_meta};
use kargo_registry::queue::{self, Action, Queue};
use kargo_registry::status::Result;
use kargo_registry::{DeleteOptions, Propagation, Registry, Target, WriteOptions};

const RETRY: Duration = Duration::from_secs(1);

/// Maps keyed by uid and store key, with a fast non-cryptographic hash.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

#[derive(Debug, Clone)]
struct Node {
    uid: String,
    owners: Vec<OwnerReference>,
    finalizers: Vec<String>,
    deleting: bool,
}

#[derive(Default)]
struct Index {
    nodes: HashMap<String, Node>,
    by_uid: HashMap<String, String>,
    dependents: HashMap<String, HashSet<String>>,
}

impl Index {
    fn remove(&mut self, key: &str) -> Option<Node> {
        let node = self.nodes.remove(key)?;
        if self.by_uid.get(&node.uid).is_some_and(|k| k == key) {
            self.by_uid.remove(&node.uid);
        }
        for owner in &node.owners {
            if let Some(set) = self.dependents.get_mut(&owner.uid) {
                set.remove(key);
                if set.is_empty() {
                    self.dependents.remove(&owner.uid);
                }
            }
        }
        Some(node)
    }

    fn insert(&mut self, key: &str, node: Node) {
        self.remove(key);
        self.by_uid.insert(node.uid.clone(), key.to_owned());
        for owner in &node.owners {
            self.dependents
                .entry(owner.uid.clone())
                .or_default()
                .insert(key.to_owned());
        }
        self.nodes.insert(key.to_owned(), node);
    }
}

/// Work items.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Work {
    /// Check whether a dependent's owners still exist.
    Dependent(String),
    /// An owner being deleted with `orphan` / `foregroundDeletion`.
    Owner(String),
}

/// The collector's informer handler.
pub struct GarbageCollector {
    index: Arc<Mutex<Index>>,
    queue: Queue<Work>,
}

fn node(head: &Head) -> Node {
    Node {
        uid: head.metadata.uid.clone(),
        owners: head.metadata.owner_references.clone(),
        finalizers: head.metadata.finalizers.clone(),
        deleting: head.deleting(),
    }
}

/// Whether an object is being deleted with `orphan` or `foregroundDeletion`.
fn waits_for_dependents(node: &Node) -> bool {
    node.deleting
        && node
            .finalizers
            .iter()
            .any(|f| f == ORPHAN_FINALIZER || f == FOREGROUND_FINALIZER)
}

impl GarbageCollector {
    /// Starts the collector's worker; returns its informer handler.
    pub fn start(registry: Registry, shutdown: CancellationToken) -> GarbageCollector {
        let index = Arc::new(Mutex::new(Index::default()));
        let worker_index = index.clone();
        let queue = queue::start(shutdown, move |work: Work| {
            let registry = registry.clone();
            let index = worker_index.clone();
            async move {
                let result = match &work {
                    Work::Dependent(key) => check_dependent(&registry, &index, key).await,
                    Work::Owner(key) => process_owner(&registry, &index, key).await,
                };
                match result {
                    Ok(action) => action,
                    Err(status) => {
                        tracing::debug!(?work, error = %status, "garbage collection failed; retrying");
                        Action::Requeue(RETRY)
                    }
                }
            }
        });
        GarbageCollector { index, queue }
    }

    fn enqueue_for(&self, key: &str, node: &Node) {
        // Only dependents with an owner the index does not know are worth a live check.
        let suspect = self
            .index
            .lock()
            .map(|i| node.owners.iter().any(|o| !i.by_uid.contains_key(&o.uid)))
            .unwrap_or(true);
        if suspect {
            self.queue.add(Work::Dependent(key.to_owned()));
        }
        if waits_for_dependents(node) {
            self.queue.add(Work::Owner(key.to_owned()));
        }
    }
}

impl Handler for GarbageCollector {
    fn resync_begin(&mut self) {
        if let Ok(mut index) = self.index.lock() {
            *index = Index::default();
        }
    }

    fn resync_page(&mut self, items: &[Item<'_>]) {
        let Ok(mut index) = self.index.lock() else {
            return;
        };
        for item in items {
            if let Some(head) = item.head {
                index.insert(&item.kv.key, node(head));
            }
        }
    }

    fn resync_end(&mut self) {
        // Only what a relist can leave to do: dependents whose owners the index does not know,
        // and owners waiting in an orphaning or foreground deletion.
        let work: Vec<Work> = match self.index.lock() {
            Ok(index) => index
                .nodes
                .iter()
                .flat_map(|(key, n)| {
                    let suspect = n.owners.iter().any(|o| !index.by_uid.contains_key(&o.uid));
                    let waiting = waits_for_dependents(n);
                    [
                        suspect.then(|| Work::Dependent(key.clone())),
                        waiting.then(|| Work::Owner(key.clone())),
                    ]
                })
                .flatten()
                .collect(),
            Err(_) => return,
        };
        for w in work {
            self.queue.add(w);
        }
    }

    fn event(&mut self, event: &Event, head: Option<&Head>) {
        let key = event.kv.key.clone();
        let (removed, inserted) = {
            let Ok(mut index) = self.index.lock() else {
                return;
            };
            match event.kind {
                EventKind::Deleted => (index.remove(&key), None),
                _ => {
                    let n = head.map(node);
                    if let Some(n) = &n {
                        index.insert(&key, n.clone());
                    }
                    (None, n)
                }
            }
        };
        if let Some(gone) = removed {
            let (dependents, owners_waiting): (Vec<String>, Vec<String>) = match self.index.lock() {
                Ok(index) => (
                    index
                        .dependents
                        .get(&gone.uid)
                        .map(|s| s.iter().cloned().collect())
                        .unwrap_or_default(),
                    gone.owners
                        .iter()
                        .filter_map(|o| index.by_uid.get(&o.uid).cloned())
                        .collect(),
                ),
                Err(_) => return,
            };
            for d in dependents {
                self.queue.add(Work::Dependent(d));
            }
            // An owner in foreground deletion may be waiting for this dependent.
            for owner in owners_waiting {
                self.queue.add(Work::Owner(owner));
            }
        }
        if let Some(n) = inserted {
            self.enqueue_for(&key, &n);
        }
    }
}

fn owner_type(owner: &OwnerReference) -> Option<&'static ResourceType> {
    let group = owner
        .api_version
        .split_once('/')
        .map(|(g, _)| g)
        .unwrap_or("");
    resources::find_kind(group, &owner.kind).filter(|rt| rt.storage == resources::Storage::Stored)
}

/// Whether an owner exists with the referenced uid (read live, not from the index).
async fn owner_exists(
    registry: &Registry,
    owner: &OwnerReference,
    namespace: Option<&str>,
) -> Result<bool> {
    let Some(rt) = owner_type(owner) else {
        // An owner of a kind this server does not serve can never be found.
        return Ok(false);
    };
    let found = registry
        .try_get(Target::new(rt, namespace, &owner.name))
        .await?;
    Ok(found.is_some_and(|o| o.uid() == owner.uid))
}

async fn check_dependent(registry: &Registry, index: &Mutex<Index>, key: &str) -> Result<Action> {
    let Some((rt, namespace, name)) = resources::parse_key(key) else {
        return Ok(Action::Done);
    };
    let exists = index
        .lock()
        .map(|i| i.nodes.contains_key(key))
        .unwrap_or(false);
    if !exists {
        return Ok(Action::Done);
    }
    let Some(obj) = registry.try_get(Target::new(rt, namespace, name)).await? else {
        return Ok(Action::Done);
    };
    let owners = obj.owner_references();
    if owners.is_empty() {
        return Ok(Action::Done);
    }
    let mut dangling = Vec::new();
    for owner in &owners {
        if !owner_exists(registry, owner, namespace).await? {
            dangling.push(owner.uid.clone());
        }
    }
    if dangling.is_empty() {
        return Ok(Action::Done);
    }
    let target = Target::new(rt, namespace, name);
    if dangling.len() == owners.len() {
        if obj.is_deleting() {
            return Ok(Action::Done);
        }
        tracing::debug!(key, "deleting an object whose owners are gone");
        match registry
            .delete(
                target,
                &DeleteOptions::with_uid(obj.uid(), Propagation::Background),
            )
            .await
        {
            Ok(_) => {}
            Err(e) if e.is_not_found() || e.is_conflict() => {}
            Err(e) => return Err(e),
        }
        return Ok(Action::Done);
    }
    remove_owner_refs(registry, target, obj.uid(), &dangling).await?;
    Ok(Action::Done)
}

async fn remove_owner_refs(
    registry: &Registry,
    target: Target<'_>,
    uid: &str,
    owner_uids: &[String],
) -> Result<()> {
    let result = registry
        .update_with(target, &WriteOptions::default(), |current| {
            let mut next = current.clone();
            if current.uid() != uid {
                return Ok(next);
            }
            let kept: Vec<OwnerReference> = current
                .owner_references()
                .into_iter()
                .filter(|o| !owner_uids.contains(&o.uid))
                .collect();
            set_meta(&mut next, "resourceVersion", None);
            set_meta(
                &mut next,
                "ownerReferences",
                (!kept.is_empty()).then(|| serde_json::to_value(&kept).unwrap_or(Value::Null)),
            );
            Ok(next)
        })
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e),
    }
}

async fn remove_finalizer(registry: &Registry, target: Target<'_>, finalizer: &str) -> Result<()> {
    let result = registry
        .update_with(target, &WriteOptions::default(), |current| {
            let mut next = current.clone();
            set_meta(&mut next, "resourceVersion", None);
            let kept: Vec<String> = current
                .finalizers()
                .into_iter()
                .filter(|f| f != finalizer)
                .collect();
            kargo_registry::object::set_finalizers(&mut next, &kept);
            Ok(next)
        })
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e),
    }
}

async fn process_owner(registry: &Registry, index: &Mutex<Index>, key: &str) -> Result<Action> {
    let Some((rt, namespace, name)) = resources::parse_key(key) else {
        return Ok(Action::Done);
    };
    let target = Target::new(rt, namespace, name);
    let Some(owner) = registry.try_get(target).await? else {
        return Ok(Action::Done);
    };
    if !owner.is_deleting() {
        return Ok(Action::Done);
    }
    let dependents: Vec<String> = index
        .lock()
        .map(|i| {
            i.dependents
                .get(owner.uid())
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default()
        })
        .unwrap_or_default();
    let finalizers = owner.finalizers();
    if finalizers.iter().any(|f| f == ORPHAN_FINALIZER) {
        for dep in &dependents {
            if let Some((drt, dns, dname)) = resources::parse_key(dep) {
                let dtarget = Target::new(drt, dns, dname);
                if let Some(d) = registry.try_get(dtarget).await? {
                    remove_owner_refs(registry, dtarget, d.uid(), &[owner.uid().to_owned()])
                        .await?;
                }
            }
        }
        remove_finalizer(registry, target, ORPHAN_FINALIZER).await?;
        return Ok(Action::Done);
    }
    if finalizers.iter().any(|f| f == FOREGROUND_FINALIZER) {
        let mut remaining = 0;
        for dep in &dependents {
            let Some((drt, dns, dname)) = resources::parse_key(dep) else {
                continue;
            };
            let dtarget = Target::new(drt, dns, dname);
            let Some(d) = registry.try_get(dtarget).await? else {
                continue;
            };
            if !d.owner_references().iter().any(|o| o.uid == owner.uid()) {
                continue;
            }
            remaining += 1;
            if !d.is_deleting() {
                match registry
                    .delete(
                        dtarget,
                        &DeleteOptions::with_uid(d.uid(), Propagation::Foreground),
                    )
                    .await
                {
                    Ok(_) => {}
                    Err(e) if e.is_not_found() || e.is_conflict() => {}
                    Err(e) => return Err(e),
                }
            }
        }
        if remaining == 0 {
            remove_finalizer(registry, target, FOREGROUND_FINALIZER).await?;
            return Ok(Action::Done);
        }
        // Dependents' deletion events requeue this owner; a timer covers missed ones.
        return Ok(Action::Requeue(Duration::from_secs(2)));
    }
    Ok(Action::Done)
}

//! Deletion as kube-apiserver does it: preconditions, propagation policies as finalizers
//! (`orphan`, `foregroundDeletion`), graceful deletion while finalizers remain, namespaces that
//! terminate before they go, and delete-collection.

use kargo_api::kargo::SYSTEM_NAMESPACE;
use kargo_api::resources::ResourceType;
use serde::Deserialize;
use serde_json::{Value, json};

use super::commit::{Committed, Write};
use super::list::ListOptions;
use super::object::{Meta, decode, now_rfc3339, set_finalizers, set_meta};
use super::{Object, Registry, Target, strategy};
use crate::status::{Details, Result, Status};

/// The finalizer of an orphaning deletion.
pub const ORPHAN_FINALIZER: &str = "orphan";
/// The finalizer of a foreground deletion.
pub const FOREGROUND_FINALIZER: &str = "foregroundDeletion";
/// The finalizer the namespace controller removes once a namespace is empty.
pub(crate) const NAMESPACE_FINALIZER: &str = "kubernetes";

/// How dependents are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum Propagation {
    /// Delete the owner now, dependents in the background.
    #[default]
    Background,
    /// Delete dependents first, then the owner.
    Foreground,
    /// Keep dependents, removing the owner reference.
    Orphan,
}

/// A `DeleteOptions` body (and the matching query parameters).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteOptions {
    /// `propagationPolicy`.
    pub propagation_policy: Option<Propagation>,
    /// `orphanDependents` (deprecated form of `Orphan`).
    pub orphan_dependents: Option<bool>,
    /// `preconditions`.
    pub preconditions: Option<Preconditions>,
    /// `gracePeriodSeconds` (accepted; deletion is immediate for these kinds).
    pub grace_period_seconds: Option<i64>,
    /// `dryRun`.
    #[serde(default)]
    pub dry_run: Vec<String>,
}

/// Preconditions of a deletion.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Preconditions {
    /// The uid the object must have.
    pub uid: Option<String>,
    /// The resourceVersion the object must have.
    pub resource_version: Option<String>,
}

impl DeleteOptions {
    fn propagation(&self) -> Propagation {
        match (self.propagation_policy, self.orphan_dependents) {
            (Some(p), _) => p,
            (None, Some(true)) => Propagation::Orphan,
            _ => Propagation::Background,
        }
    }

    /// A deletion that requires the object to have `uid` (the garbage collector's safety).
    pub fn with_uid(uid: &str, propagation: Propagation) -> DeleteOptions {
        DeleteOptions {
            propagation_policy: Some(propagation),
            preconditions: Some(Preconditions {
                uid: Some(uid.to_owned()),
                resource_version: None,
            }),
            ..DeleteOptions::default()
        }
    }
}

/// What a deletion did.
#[derive(Debug, Clone)]
pub enum Deleted {
    /// The object is gone; here it is as it was, at the deletion's revision.
    Gone(Object),
    /// The object remains until its finalizers are removed; here it is, being deleted.
    Pending(Object),
}

impl Deleted {
    /// The object.
    pub fn object(&self) -> &Object {
        match self {
            Deleted::Gone(o) | Deleted::Pending(o) => o,
        }
    }

    /// The HTTP body kube-apiserver answers a DELETE with: the object for kinds that return it
    /// (and for pending deletions), else a success `Status`.
    pub fn response(&self, rt: &ResourceType) -> Value {
        match self {
            Deleted::Gone(obj) if !strategy::for_type(rt).returns_deleted_object() => {
                serde_json::to_value(Status::success(Details {
                    name: obj.name().to_owned(),
                    group: rt.group.to_owned(),
                    kind: rt.plural.to_owned(),
                    uid: obj.uid().to_owned(),
                    ..Details::default()
                }))
                .unwrap_or(Value::Null)
            }
            other => other.object().clone(),
        }
    }
}

fn check_preconditions(rt: &ResourceType, current: &Object, options: &DeleteOptions) -> Result<()> {
    let Some(pre) = &options.preconditions else {
        return Ok(());
    };
    if let Some(uid) = pre.uid.as_deref()
        && uid != current.uid()
    {
        return Err(Status::conflict(
            rt,
            current.name(),
            &format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                current.uid()
            ),
        ));
    }
    if let Some(rv) = pre.resource_version.as_deref()
        && rv != current.resource_version()
    {
        return Err(Status::conflict(
            rt,
            current.name(),
            &format!(
                "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                current.resource_version()
            ),
        ));
    }
    Ok(())
}

/// Marks an object as being deleted: `deletionTimestamp` (which the normal update path may not
/// set), a zero grace period, and a generation bump where generations are tracked.
fn mark(obj: &mut Object, rt: &ResourceType) {
    set_meta(obj, "deletionTimestamp", Some(now_rfc3339().into()));
    set_meta(obj, "deletionGracePeriodSeconds", Some(0.into()));
    if strategy::for_type(rt).tracks_generation() {
        let generation = obj
            .meta()
            .and_then(|m| m.get("generation"))
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if generation > 0 {
            set_meta(obj, "generation", Some((generation + 1).into()));
        }
    }
}

impl Registry {
    /// Deletes one object.
    pub async fn delete(&self, target: Target<'_>, options: &DeleteOptions) -> Result<Deleted> {
        let rt = target.rt;
        let dry_run = options.dry_run.iter().any(|d| d == "All");
        if rt.kind == "Namespace" && rt.group.is_empty() {
            return self.delete_namespace(target, options, dry_run).await;
        }
        for _ in 0..super::UPDATE_RETRIES {
            let kv = self
                .store()
                .get(&target.key())
                .await?
                .ok_or_else(|| Status::not_found(rt, target.name))?;
            let Ok(current) = decode(&kv) else {
                return self.delete_unreadable(target, &kv, dry_run).await;
            };
            check_preconditions(rt, &current, options)?;
            if current.is_deleting() {
                return Ok(Deleted::Pending(current));
            }
            let mut finalizers = current.finalizers();
            let extra = match options.propagation() {
                Propagation::Orphan => Some(ORPHAN_FINALIZER),
                Propagation::Foreground => Some(FOREGROUND_FINALIZER),
                Propagation::Background => None,
            };
            // Without dependents an orphaning or foreground deletion has nothing to wait for;
            // the garbage collector removes these finalizers once it has seen the deletion.
            if let Some(f) = extra
                && !finalizers.iter().any(|x| x == f)
            {
                finalizers.push(f.to_owned());
            }
            if finalizers.is_empty() {
                if dry_run {
                    return Ok(Deleted::Gone(current));
                }
                let write = Write::Delete {
                    expected: kv.mod_revision,
                };
                match self.commit(target, write).await? {
                    Committed::Done(deleted) => return Ok(Deleted::Gone(decode(&deleted)?)),
                    Committed::Lost => continue,
                }
            }
            let mut obj = current.clone();
            set_finalizers(&mut obj, &finalizers);
            mark(&mut obj, target.rt);
            if dry_run {
                return Ok(Deleted::Pending(obj));
            }
            if let Some(obj) = self.replace(target, kv.mod_revision, obj).await? {
                return Ok(Deleted::Pending(obj));
            }
        }
        Err(super::too_busy(target))
    }

    /// Deletes an object whose stored value does not decode, unread: no preconditions,
    /// finalizers or dependents can be read from it, so it goes at once. The answer names it
    /// with what the key tells.
    async fn delete_unreadable(
        &self,
        target: Target<'_>,
        kv: &kargo_store::KeyValue,
        dry_run: bool,
    ) -> Result<Deleted> {
        let mut stub = json!({
            "apiVersion": target.rt.api_version(),
            "kind": target.rt.kind,
            "metadata": {"name": target.name},
        });
        set_meta(&mut stub, "namespace", target.namespace.map(Value::from));
        let revision = if dry_run {
            kv.mod_revision
        } else {
            let write = Write::Delete {
                expected: kv.mod_revision,
            };
            match self.commit(target, write).await? {
                Committed::Done(deleted) => deleted.mod_revision,
                Committed::Lost => {
                    return Err(Status::conflict(
                        target.rt,
                        target.name,
                        "the object changed while it was being deleted; try again",
                    ));
                }
            }
        };
        tracing::warn!(key = %target.key(), "deleted an object whose stored value did not decode");
        set_meta(
            &mut stub,
            "resourceVersion",
            Some(revision.to_string().into()),
        );
        Ok(Deleted::Gone(stub))
    }

    async fn delete_namespace(
        &self,
        target: Target<'_>,
        options: &DeleteOptions,
        dry_run: bool,
    ) -> Result<Deleted> {
        let current = self.get(target).await?;
        check_preconditions(target.rt, &current, options)?;
        if matches!(
            target.name,
            "default" | "kube-system" | "kube-public" | SYSTEM_NAMESPACE
        ) {
            return Err(Status::forbidden(
                format!(
                    "namespaces \"{}\" is forbidden: this namespace may not be deleted",
                    target.name
                ),
                Some(Details {
                    name: target.name.to_owned(),
                    kind: "namespaces".into(),
                    ..Details::default()
                }),
            ));
        }
        if current.is_deleting() {
            return Err(Status::conflict(
                target.rt,
                target.name,
                "The system is ensuring all content is removed from this namespace.  Upon completion, this namespace will automatically be purged by the system.",
            ));
        }
        let mut obj = current;
        mark(&mut obj, target.rt);
        obj["status"] = serde_json::json!({"phase": "Terminating"});
        if dry_run {
            return Ok(Deleted::Pending(obj));
        }
        let expected = super::object::parse_revision(obj.resource_version())
            .ok_or_else(|| Status::internal("an object without a resourceVersion"))?;
        let obj = self
            .replace(target, expected, obj)
            .await?
            .ok_or_else(|| Status::stale(target.rt, target.name))?;
        Ok(Deleted::Pending(obj))
    }

    /// Changes `status` of an object through a closure (the status subresource's write path).
    pub async fn update_status(
        &self,
        target: Target<'_>,
        mut change: impl FnMut(&mut serde_json::Map<String, Value>),
    ) -> Result<Object> {
        self.rewrite(target, |mut obj| {
            let before = obj.clone();
            if let Some(map) = obj.as_object_mut() {
                let status = map
                    .entry("status")
                    .or_insert_with(|| Value::Object(Default::default()));
                if !status.is_object() {
                    *status = Value::Object(Default::default());
                }
                if let Some(s) = status.as_object_mut() {
                    change(s);
                }
            }
            Ok((obj != before).then_some(obj))
        })
        .await
    }

    /// Replaces a namespace's `spec.finalizers` (the `finalize` subresource). A namespace being
    /// deleted whose finalizers become empty is removed.
    pub async fn finalize_namespace(&self, name: &str, finalizers: Vec<String>) -> Result<Object> {
        let target = Target::new(&kargo_api::resources::NAMESPACES, None, name);
        self.rewrite(target, |mut obj| {
            if let Some(map) = obj.as_object_mut() {
                map.insert(
                    "spec".into(),
                    serde_json::json!({ "finalizers": finalizers }),
                );
            }
            Ok(Some(obj))
        })
        .await
    }

    /// Deletes every object of `rt` in `namespace` that matches the selectors; answers the list
    /// of what was deleted.
    pub async fn delete_collection(
        &self,
        rt: &'static ResourceType,
        namespace: Option<&str>,
        list: &ListOptions,
        options: &DeleteOptions,
    ) -> Result<super::ObjectList> {
        let mut listed = self.list(rt, namespace, list).await?;
        let mut deleted = Vec::new();
        for item in &listed.items {
            let target = Target::new(rt, item.namespace(), item.name());
            match self.delete(target, options).await {
                Ok(d) => deleted.push(d.object().clone()),
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        // Objects that do not decode match no selector, but deleting everything includes them
        // (a namespace being deleted must be emptied).
        if !list.has_selectors() {
            for key in std::mem::take(&mut listed.unreadable) {
                let Some((_, ns, name)) = kargo_api::resources::parse_key(&key) else {
                    continue;
                };
                match self.delete(Target::new(rt, ns, name), options).await {
                    Ok(d) => deleted.push(d.object().clone()),
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(e),
                }
            }
        }
        listed.items = deleted;
        Ok(listed)
    }
}

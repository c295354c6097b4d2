//! `metadata.managedFields` on every write, as kube-apiserver's field manager keeps them: a
//! create, update or non-apply patch records its manager's changes (an `Update` entry), a
//! server-side apply merges and records what it applied (an `Apply` entry), or fails with the
//! fields other managers own. The algorithms are `kargo_api::patch::apply`; this module gives
//! them each kind's shape (from its strategy) and keeps the result in the stored object, so
//! reads never recompute anything.
//!
//! A write without a manager (the server's own bookkeeping: controllers, status) keeps the
//! entries as they are.

use kargo_api::patch::apply::{self, ApplyError, ManagedFields, Path, PathElement, Schema, Writer};
use kargo_api::resources::ResourceType;
use serde_json::Value;

use crate::object::{now_rfc3339, set_meta};
use crate::status::{Result, Status};
use crate::{Object, WriteOptions, strategy};

/// What a write does with `metadata.managedFields`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tracking {
    /// Record the write as an update by the options' field manager.
    Update,
    /// The object's managed fields are final (a server-side apply computed them, or a status
    /// write carries them over).
    Keep,
}

/// Runs `f` with the schema of `rt`, from its strategy.
fn with_schema<R>(rt: &ResourceType, f: impl FnOnce(&Schema<'_>) -> R) -> R {
    let strategy = strategy::for_type(rt);
    let lists = |p: &str| strategy::apply_list_strategy(strategy, p);
    let objects = |p: &str| strategy.object_type(p);
    f(&Schema {
        lists: &lists,
        objects: &objects,
    })
}

/// Whether a path is `status` of a kind with a status subresource, which writes of the object
/// itself do not own (kube-apiserver's reset fields).
fn status_path(rt: &ResourceType) -> impl Fn(&Path) -> bool {
    let has_status = rt.subresource("status").is_some();
    move |p: &Path| has_status && matches!(p.first(), Some(PathElement::Field(f)) if f == "status")
}

/// Takes `metadata.managedFields` out of an object.
pub(crate) fn take(obj: &mut Value) -> Option<Value> {
    obj.get_mut("metadata")
        .and_then(Value::as_object_mut)
        .and_then(|m| m.remove("managedFields"))
}

/// Sets `metadata.managedFields` (removes it when there is no entry).
fn put(obj: &mut Value, managed: &ManagedFields) {
    let encoded = managed.encode();
    let value = encoded
        .as_array()
        .is_some_and(|a| !a.is_empty())
        .then_some(encoded);
    set_meta(obj, "managedFields", value);
}

/// The managers of the stored object (none if they cannot be read).
fn stored(current: Option<&Value>) -> ManagedFields {
    current
        .and_then(|c| c.pointer("/metadata/managedFields"))
        .and_then(|v| ManagedFields::decode(v).ok())
        .unwrap_or_default()
}

/// A copy of an object without `metadata.managedFields`.
fn without_managed(obj: &Value) -> Value {
    let mut copy = obj.clone();
    take(&mut copy);
    copy
}

/// Whether a client's `managedFields` ask to clear them (kube-apiserver's
/// `isResetManagedFields`: an empty list, or a list of one empty entry).
fn is_reset(incoming: Option<&Value>) -> bool {
    match incoming.and_then(Value::as_array).map(Vec::as_slice) {
        Some([]) => true,
        Some([only]) => only.as_object().is_some_and(serde_json::Map::is_empty),
        _ => false,
    }
}

/// Records a create (`current` `None`) or update of `obj` by the options' field manager. A
/// client's `managedFields` in `obj` replace the stored ones first, as kube-apiserver takes
/// them: `[]` or `[{}]` clears them, valid entries are used, none or unreadable ones keep the
/// stored entries. Without a manager the entries are kept as they are.
pub(crate) fn record_update(
    rt: &ResourceType,
    options: &WriteOptions,
    current: Option<&Object>,
    obj: &mut Object,
) {
    let incoming = take(obj);
    let baseline = if is_reset(incoming.as_ref()) {
        ManagedFields::default()
    } else {
        incoming
            .as_ref()
            .and_then(|v| ManagedFields::decode(v).ok())
            .filter(|m| !m.0.is_empty())
            .unwrap_or_else(|| stored(current))
    };
    let Some(manager) = options.field_manager.as_deref() else {
        put(obj, &baseline);
        return;
    };
    let now = now_rfc3339();
    let ignored = status_path(rt);
    let api_version = rt.api_version();
    let live = current.map(without_managed);
    let result = with_schema(rt, |schema| {
        let writer = Writer {
            manager,
            subresource: "",
            api_version: &api_version,
            now: &now,
            schema,
            ignored: &ignored,
        };
        apply::update(live.as_ref(), obj, baseline, &writer)
    });
    match result {
        Ok(managed) => put(obj, &managed),
        Err(e) => {
            // kube-apiserver's `UpdateNoErrors`: the write goes on without managed fields.
            tracing::warn!(kind = rt.kind, error = %e, "recording managed fields failed; clearing them");
            set_meta(obj, "managedFields", None);
        }
    }
}

/// The field manager of `kubectl apply --server-side`.
const KUBECTL: &str = "kubectl";

/// The annotation of `kubectl apply` (client-side).
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Whether every conflict is a field of the object's last client-side applied configuration:
/// kube-apiserver's `lastAppliedManager` lets `kubectl apply --server-side` take those over
/// without `--force-conflicts`, so an object moves from client-side to server-side apply (kubectl
/// then moves the client-side apply's managed fields to its own entry).
fn last_applied_allows(live: &Value, conflicts: &[apply::Conflict], schema: &Schema<'_>) -> bool {
    let Some(last) = live
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(LAST_APPLIED))
        .and_then(Value::as_str)
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
    else {
        return false;
    };
    let Ok(fields) = apply::walk::field_set(&last, schema) else {
        return false;
    };
    let allowed: std::collections::HashSet<String> = fields
        .iter()
        .map(|p| apply::fieldset::path_string(p))
        .collect();
    conflicts.iter().all(|c| allowed.contains(&c.field))
}

/// Server-side apply of `config` by `manager` to `current` (`None` if the object does not
/// exist): the object to write, with its managed fields.
pub(crate) fn apply(
    rt: &ResourceType,
    current: Option<&Object>,
    mut config: Value,
    manager: &str,
    force: bool,
) -> Result<Object> {
    take(&mut config);
    let now = now_rfc3339();
    let ignored = status_path(rt);
    let api_version = rt.api_version();
    let live = current.map(without_managed);
    let result = with_schema(rt, |schema| {
        let writer = Writer {
            manager,
            subresource: "",
            api_version: &api_version,
            now: &now,
            schema,
            ignored: &ignored,
        };
        let mut managed = stored(current);
        if let Some(live) = &live
            && managed.0.is_empty()
        {
            managed = apply::before_first_apply(live, &writer)?;
        }
        match apply::apply(live.as_ref(), &config, managed.clone(), force, &writer) {
            Err(ApplyError::Conflicts(conflicts))
                if manager == KUBECTL
                    && live
                        .as_ref()
                        .is_some_and(|l| last_applied_allows(l, &conflicts, schema)) =>
            {
                apply::apply(live.as_ref(), &config, managed, true, &writer)
            }
            other => other,
        }
    });
    match result {
        Ok((mut merged, managed)) => {
            put(&mut merged, &managed);
            Ok(merged)
        }
        Err(ApplyError::Conflicts(conflicts)) => Err(Status::apply_conflict(&conflicts)),
        Err(e @ ApplyError::BadFieldsV1(_)) => {
            tracing::error!(kind = rt.kind, error = %e, "stored managed fields cannot be read");
            Err(Status::internal("the stored managed fields cannot be read"))
        }
        Err(e) => Err(Status::failure(422, "Invalid", e.to_string())),
    }
}

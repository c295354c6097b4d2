//! The one commit path: every write the registry makes to an object's key (create, update,
//! patch, status, finalizer changes, deletion with and without finalizers, the garbage
//! collector's and controllers' writes, which use the same calls) goes through
//! [`Registry::commit`]. It is the only function of the registry that calls the store's
//! `create`, `update` or `delete`.

use kargo_api::resources::{NAMESPACES, ResourceType};
use kargo_store::{KeyValue, Revision};
use serde_json::Value;

use crate::object::{Meta, decode, set_meta};
use crate::status::{Result, Status};
use crate::touched::WriteAction;
use crate::{Object, Registry, Target};

/// One write of an object's key.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Write<'a> {
    /// Store a new object; the key must be absent.
    Create(&'a Object),
    /// Replace the object read at revision `expected`. An object being deleted with nothing
    /// left to wait for (see [`removable`]) is removed instead.
    Update {
        /// The `mod_revision` the caller read.
        expected: Revision,
        /// The new object.
        object: &'a Object,
    },
    /// Remove the object read at revision `expected`.
    Delete {
        /// The `mod_revision` the caller read.
        expected: Revision,
    },
}

/// How a write ended, when it did not fail.
#[derive(Debug)]
pub(crate) enum Committed {
    /// Written. The key as stored; for a removal, the last value, whose `mod_revision` is the
    /// revision of the deletion.
    Done(KeyValue),
    /// The compare-and-swap lost: another write changed the key since it was read at
    /// `expected`. The caller reads again, or answers 409 if the client named the version.
    Lost,
}

impl Registry {
    /// Writes one object's key: the registry's single commit path.
    ///
    /// Guarantees, whatever operation asks for the write:
    /// - **Bounds.** A stored value is encoded by [`object::encode`](crate::object::encode):
    ///   an object nested deeper than the limit (422) or larger than the registry's
    ///   `max_object_bytes` (413) is refused, whichever path produced it.
    /// - **Compare-and-swap.** An update or removal succeeds only if the key's `mod_revision`
    ///   is still `expected`, the revision the caller read and checked its rules against;
    ///   otherwise [`Committed::Lost`]. A create succeeds only if the key is absent.
    /// - **Finalization.** An update that leaves an object being deleted with no finalizers
    ///   (a namespace: no `spec.finalizers` either) removes it instead of writing it.
    /// - **Errors mapped once.** A create of a name that exists is 409 `AlreadyExists` ("object
    ///   is being deleted: ..." if it is); an update or removal of an absent key is 404
    ///   `NotFound` for `target`; other store failures are 503 (unavailable) or 500.
    pub(crate) async fn commit(&self, target: Target<'_>, write: Write<'_>) -> Result<Committed> {
        let key = target.key();
        let result = match write {
            Write::Create(object) => self.store.create(&key, self.encode(object)?).await,
            Write::Update { expected, object } if removable(target.rt, object) => {
                self.store.delete(&key, expected).await
            }
            Write::Update { expected, object } => {
                self.store
                    .update(&key, self.encode(object)?, expected)
                    .await
            }
            Write::Delete { expected } => self.store.delete(&key, expected).await,
        };
        match result {
            Ok(kv) => {
                let action = match write {
                    Write::Create(_) => WriteAction::Created,
                    Write::Update { object, .. } if !removable(target.rt, object) => {
                        WriteAction::Updated
                    }
                    Write::Update { .. } | Write::Delete { .. } => WriteAction::Deleted,
                };
                crate::touched::note(target, action);
                Ok(Committed::Done(kv))
            }
            Err(e) if e.is_conflict() => Ok(Committed::Lost),
            Err(e) if e.is_not_found() => Err(Status::not_found(target.rt, target.name)),
            Err(kargo_store::Error::AlreadyExists { current, .. }) => {
                Err(already_exists(target.rt, target.name, &current))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Writes `obj` over revision `expected` through [`commit`](Self::commit), stamping its new
    /// resourceVersion; `None` if another write won the race.
    pub(crate) async fn replace(
        &self,
        target: Target<'_>,
        expected: Revision,
        mut obj: Object,
    ) -> Result<Option<Object>> {
        let write = Write::Update {
            expected,
            object: &obj,
        };
        match self.commit(target, write).await? {
            Committed::Done(written) => {
                set_meta(
                    &mut obj,
                    "resourceVersion",
                    Some(Value::String(written.mod_revision.to_string())),
                );
                Ok(Some(obj))
            }
            Committed::Lost => Ok(None),
        }
    }
}

/// Whether an object being deleted has nothing left to wait for.
fn removable(rt: &ResourceType, obj: &Value) -> bool {
    let namespace_finalizers = std::ptr::eq(rt, &NAMESPACES)
        && obj
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
    obj.is_deleting() && obj.finalizers().is_empty() && !namespace_finalizers
}

/// 409 for a name that exists; an object being deleted says so.
pub(crate) fn already_exists(rt: &ResourceType, name: &str, existing: &KeyValue) -> Status {
    let mut status = Status::already_exists(rt, name);
    if decode(existing).is_ok_and(|o| o.is_deleting()) {
        status.message = format!("object is being deleted: {}", status.message);
    }
    status
}

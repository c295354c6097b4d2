//! Server-side apply (`application/apply-patch+yaml`) as structured-merge-diff and
//! kube-apiserver's field manager define it, with no IO:
//!
//! - [`fieldset`]: sets of field paths and their `FieldsV1` form (`f:`, `k:`, `v:`, `i:`, `.`).
//! - [`walk`]: an object's field set, the comparison of two objects, the merge of an applied
//!   configuration into the live object, the removal of fields; all guided by a [`Schema`].
//! - [`managers`]: `metadata.managedFields`, and how an update ([`update`]) or an apply
//!   ([`apply`]) changes ownership, with conflicts ([`conflict_message`]).
//!
//! The registry decides which kind has which [`Schema`] (its list strategies and map fields)
//! and stores the result; reads never recompute anything.

pub mod fieldset;
pub mod managers;
pub mod walk;

#[cfg(test)]
mod tests;

pub use fieldset::{FieldSet, Path, PathElement};
pub use managers::{
    Conflict, Entry, ManagedFields, Operation, Writer, apply, before_first_apply, conflict_message,
    update,
};

use super::ListStrategy;

/// How the fields of an object node are owned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectType {
    /// A struct: declared fields, each owned on its own (the field itself is owned only when
    /// it is empty or null).
    Struct,
    /// A map (`labels`, `data`): each key is owned, and what is under it.
    Map,
    /// Atomic (`+structType=atomic`): owned and replaced as a whole.
    Atomic,
}

/// The shape of a kind, by schema path: field names joined by `.`, list items as `[]`
/// (`metadata.labels`, `secrets[]`).
pub struct Schema<'a> {
    /// How the list at a path merges: by key (`x-kubernetes-list-type: map`), as a set, or
    /// atomic.
    pub lists: &'a dyn Fn(&str) -> ListStrategy,
    /// How the object at a path is owned.
    pub objects: &'a dyn Fn(&str) -> ObjectType,
}

/// The object types of `ObjectMeta`: labels and annotations are maps, owner references are
/// atomic; anything else is a struct.
pub fn object_meta_object_type(spath: &str) -> ObjectType {
    match spath {
        "metadata.labels" | "metadata.annotations" => ObjectType::Map,
        "metadata.ownerReferences[]" => ObjectType::Atomic,
        _ => ObjectType::Struct,
    }
}

/// An apply that cannot be done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// Fields other managers own with other values (409).
    #[error("{}", conflict_message(.0))]
    Conflicts(Vec<Conflict>),
    /// `metadata.managedFields` that cannot be read.
    #[error("invalid managedFields: {0}")]
    BadFieldsV1(String),
    /// An associative-list item without its key field.
    #[error("{path}: associative list with keys has an element that omits key field {key:?}")]
    MissingKey {
        /// The list.
        path: String,
        /// The key field.
        key: &'static str,
    },
    /// A set item that is not a scalar.
    #[error("{path}: set items must be scalars")]
    BadSetItem {
        /// The list.
        path: String,
    },
    /// Two items of an associative list or set with the same key.
    #[error("{path}: duplicate entries for key")]
    Duplicate {
        /// The item.
        path: String,
    },
}

//! Values that cross the store boundary: revisions, key-values, list pages and watch events.

use std::fmt;
use std::pin::Pin;

/// A store-wide revision: strictly increasing, one per write. 0 means "before the first write".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Revision(pub i64);

impl Revision {
    /// The revision before any write.
    pub const ZERO: Revision = Revision(0);
}

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// One key's value at one revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The key.
    pub key: String,
    /// The value (for a deletion event: the value before the deletion).
    pub value: Vec<u8>,
    /// The revision of the key's latest creation.
    pub create_revision: Revision,
    /// The revision of the key's last change (for a deletion: the deletion's revision).
    pub mod_revision: Revision,
}

/// What to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListRequest {
    /// Keys that start with this prefix.
    pub prefix: String,
    /// Only keys strictly greater than this one (for paging), if set.
    pub start_after: Option<String>,
    /// Read at this revision (a consistent snapshot); the latest if `None`.
    pub revision: Option<Revision>,
    /// At most this many keys; all if `None` (or `Some(0)`, as in etcd).
    pub limit: Option<usize>,
}

/// A page of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPage {
    /// The keys, in key order.
    pub kvs: Vec<KeyValue>,
    /// The revision the list was read at.
    pub revision: Revision,
    /// Whether more keys remain after the last one returned.
    pub more: bool,
}

/// The kind of a watch event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// The key was created (or re-created after a deletion).
    Created,
    /// The key's value was replaced.
    Updated,
    /// The key was deleted.
    Deleted,
}

/// One change, as delivered by a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// The new value; for [`EventKind::Deleted`], the last value, with `mod_revision` set to the
    /// deletion's revision.
    pub kv: KeyValue,
    /// The value before this event, if there was one (updates and deletions).
    pub prev: Option<KeyValue>,
}

impl Event {
    /// The revision of the change.
    pub fn revision(&self) -> Revision {
        self.kv.mod_revision
    }
}

/// A stream of watch events. It ends with an error item if the watch cannot continue (for example
/// when the backend is lost); it never skips an event.
pub type WatchStream = Pin<Box<dyn futures::Stream<Item = crate::Result<Event>> + Send + 'static>>;

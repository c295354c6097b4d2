//! An etcd-shaped key-value store with revisions, compare-and-swap and watch.
//!
//! The API server keeps every object under a key (`/registry/<resource>/[<ns>/]<name>`) in a
//! [`Store`]. The store knows bytes, keys and revisions, nothing of Kubernetes:
//!
//! - every write that changes something gets the next value of one store-wide, strictly increasing
//!   [`Revision`]; that revision is the written key's `mod_revision`, which the API server exposes as
//!   the object's `resourceVersion`;
//! - [`Store::update`] and [`Store::delete`] are compare-and-swap on the key's `mod_revision`;
//! - [`Store::watch`] delivers every event after a revision, in revision order, with no gaps;
//! - [`Store::compact`] drops history that no reader needs any more.
//!
//! Backends: [`sqlite::SqliteStore`] (one file, WAL, `synchronous=FULL`, one writer that commits
//! queued writes together) and [`etcd::EtcdStore`] (an etcd v3 cluster, for several server
//! replicas; requests fail over between its endpoints). Both pass the suite in `conformance`
//! (feature `conformance`), written once against the trait. Feature `testing` adds
//! `testing::EtcdCluster`, throwaway etcd clusters for tests. [`encryption::EncryptedStore`] wraps
//! either backend and encrypts the values under chosen prefixes (encryption at rest).
//!
//! A store whose data is damaged answers [`Error::Corrupt`], which retrying cannot fix;
//! [`tripwire`] wraps a store so that its owner learns of the first such answer and can stop.
//!
//! This crate does **not** know Kubernetes types, JSON or HTTP.

mod error;
mod types;

pub mod encryption;
pub mod etcd;
pub mod files;
pub mod observe;
pub mod sqlite;
mod tripwire;

#[cfg(feature = "testing")]
pub mod testing;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use error::{Error, Result};
pub use tripwire::{Tripped, tripwire};
pub use types::{Event, EventKind, KeyValue, ListPage, ListRequest, Revision, WatchStream};

use async_trait::async_trait;

/// An etcd-shaped key-value store.
///
/// # Contracts
/// - **Revisions.** The store has one revision counter. Every successful create, update or delete
///   increments it by exactly one and stamps the written key with it (`mod_revision`). Reads never
///   increment it. A revision, once acknowledged to a caller, is durable and never reused, even after
///   a crash: after reopening, [`Store::current_revision`] is at least every revision acknowledged.
/// - **Keys** are UTF-8 strings compared bytewise. A list of `prefix` returns keys that start with
///   `prefix` (the caller appends `/` when it means a directory).
/// - **Compare-and-swap.** `update` and `delete` succeed only if the key exists and its current
///   `mod_revision` equals `expected`; otherwise [`Error::Conflict`] carries the current value (or
///   `None` if the key is absent, in which case `NotFound` is returned instead).
/// - **Watch.** `watch(prefix, after)` yields every event on keys under `prefix` whose revision is
///   greater than `after`, in revision order, each exactly once, then live events as they commit.
///   If `after` is older than the compacted revision, it fails with [`Error::Compacted`]. `after`
///   may be ahead of the current revision (events arrive once they happen). A stream that cannot
///   continue yields one error and ends: [`Error::Compacted`] if it fell behind history that was
///   compacted meanwhile, [`Error::Unavailable`] if the store closed or was lost.
/// - **Compaction.** `compact(r)` keeps, for every key, its newest version at or below `r` (dropping
///   it if that version is a deletion) and every version above `r`. Reads and watches at a revision
///   below `r` then fail with [`Error::Compacted`]; reads at `r` or later keep working. `r` above
///   the current revision fails with [`Error::FutureRevision`], `r` below the compacted revision
///   with [`Error::Compacted`]; `r` equal to it succeeds once the compaction to `r` is done.
/// - **Lists** read one consistent snapshot: at `request.revision`, or at the current revision.
///   A revision below the compacted one fails with [`Error::Compacted`], one above the current
///   revision with [`Error::FutureRevision`].
///
/// The suite in `conformance` (feature `conformance`) checks every contract above on a backend.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The current value of `key`, or `None`.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>>;

    /// Keys under a prefix, in key order, at a revision (latest if `None`).
    async fn list(&self, request: ListRequest) -> Result<ListPage>;

    /// Creates `key` if it is absent (or deleted). Fails with [`Error::AlreadyExists`] if present.
    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue>;

    /// Replaces the value of `key` if its `mod_revision` is `expected`.
    async fn update(&self, key: &str, value: Vec<u8>, expected: Revision) -> Result<KeyValue>;

    /// Deletes `key` if its `mod_revision` is `expected`. Returns the deleted value, whose
    /// `mod_revision` is the revision of the deletion.
    async fn delete(&self, key: &str, expected: Revision) -> Result<KeyValue>;

    /// Every event under `prefix` with a revision greater than `after`, then live events.
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream>;

    /// Drops history at and below `revision` (see the contract above).
    async fn compact(&self, revision: Revision) -> Result<()>;

    /// The store's current revision (the revision of the last write, 0 for an empty store).
    async fn current_revision(&self) -> Result<Revision>;

    /// The oldest revision that reads and watches may still ask for.
    async fn compacted_revision(&self) -> Result<Revision>;

    /// The revision of the newest committed write, when the backend knows it without a round
    /// trip because every write goes through this process (SQLite); `None` otherwise (etcd,
    /// where other replicas write). Callers use it to tell whether a view fed by the watch is
    /// complete: a view that has applied this revision has seen every write.
    fn committed_revision(&self) -> Option<Revision> {
        None
    }
}

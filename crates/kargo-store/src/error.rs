//! The store's error type: each variant says what the caller can do about it.

use crate::{KeyValue, Revision};

/// What can go wrong in a store operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The key does not exist (update, delete).
    #[error("key {key:?} not found")]
    NotFound {
        /// The key asked for.
        key: String,
    },
    /// The key exists already (create).
    #[error("key {key:?} already exists")]
    AlreadyExists {
        /// The key asked for.
        key: String,
        /// The value that is there.
        current: Box<KeyValue>,
    },
    /// The key's `mod_revision` is not the expected one (update, delete).
    #[error("key {key:?} is at revision {actual}, not {expected}")]
    Conflict {
        /// The key asked for.
        key: String,
        /// The revision the caller expected.
        expected: Revision,
        /// The key's current revision.
        actual: Revision,
        /// The value that is there now.
        current: Box<KeyValue>,
    },
    /// The revision asked for has been compacted away.
    #[error("required revision {requested} has been compacted (oldest is {oldest})")]
    Compacted {
        /// The revision asked for.
        requested: Revision,
        /// The oldest revision still available.
        oldest: Revision,
    },
    /// The revision asked for is newer than the store's current revision.
    #[error("required revision {requested} is a future revision (current is {current})")]
    FutureRevision {
        /// The revision asked for.
        requested: Revision,
        /// The store's current revision.
        current: Revision,
    },
    /// The backend cannot be reached or has failed; the operation may be retried.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The backend failed in a way that retrying will not fix (a bug, a misconfiguration).
    #[error("store failure: {0}")]
    Internal(String),
    /// The stored data is damaged, or the file is not a store at all (SQLite's `SQLITE_CORRUPT`
    /// and `SQLITE_NOTADB`, a failed integrity check, an empty file, etcd's `CORRUPT` alarm).
    /// Retrying cannot help and serving on would answer from damaged data: the caller stops.
    #[error("unusable store: {0}")]
    Corrupt(String),
}

impl Error {
    /// Whether the error is [`Error::Conflict`].
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Conflict { .. })
    }
    /// Whether the error is [`Error::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }
    /// Whether the error is [`Error::AlreadyExists`].
    pub fn is_already_exists(&self) -> bool {
        matches!(self, Error::AlreadyExists { .. })
    }
    /// Whether the error is [`Error::Corrupt`].
    pub fn is_corrupt(&self) -> bool {
        matches!(self, Error::Corrupt(_))
    }
    /// Whether the error is [`Error::Compacted`].
    pub fn is_compacted(&self) -> bool {
        matches!(self, Error::Compacted { .. })
    }
}

/// The store's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

//! The SQLite backend (to be written).

/// A store in one SQLite file.
pub struct SqliteStore;

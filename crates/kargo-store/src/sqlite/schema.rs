//! The SQLite schema, connection setup and the SQL every other part of the backend runs.
//!
//! One table, `kv`, holds every version of every key, kine-style: each write inserts one row and the
//! row's `id` is the write's revision. See `docs/storage.md` for the layout and the reasons behind it.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, params};

use crate::{Error, Event, EventKind, KeyValue, Result, Revision};

/// The version of the layout below, recorded in `meta` as `schema_version`; a file with another
/// version is not opened.
pub(super) const SCHEMA_VERSION: i64 = 1;

/// Creates the tables if they are missing. Idempotent; run by the writer at open.
pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS kv (
    -- The revision of this write. AUTOINCREMENT: an id is never reused, even after the row with the
    -- largest id is compacted away, so the revision never goes backwards across restarts.
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    -- The key, as bytes: BLOB comparison is memcmp, so keys sort bytewise like in etcd.
    name            BLOB    NOT NULL,
    -- 1 if this row creates the key (first write, or first write after a deletion).
    created         INTEGER NOT NULL,
    -- 1 if this row deletes the key (a tombstone).
    deleted         INTEGER NOT NULL,
    -- The id of the row that created the current incarnation of the key (this row's id if created).
    create_revision INTEGER NOT NULL,
    -- The id of the key's previous row (its mod_revision before this write), 0 if none.
    prev_revision   INTEGER NOT NULL,
    -- The value; a tombstone repeats the deleted value so a replayed deletion needs no other row.
    value           BLOB    NOT NULL
);
-- The latest row of a key (`name = ? ORDER BY id DESC LIMIT 1`), a snapshot of a prefix (range on
-- name, then the newest id <= R per name), compaction's lookups: all walk this index.
CREATE INDEX IF NOT EXISTS kv_name_id ON kv (name, id);
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT    PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO meta (name, value) VALUES
    ('schema_version', 1),
    -- Reads and watches below this revision fail with Compacted.
    ('compact_revision', 0),
    -- Rows with ids up to here have been compacted; a compaction interrupted by a crash resumes here.
    ('compact_progress', 0);
";

/// How long a connection retries a locked database before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Opens a connection with the settings every connection needs: WAL, `synchronous=FULL` (an
/// acknowledged commit survives power loss), a busy timeout, and `query_only` for readers. The
/// file must exist: only `file::prepare` creates one (private, and whole).
pub(super) fn open_connection(path: &Path, read_only: bool) -> Result<Connection> {
    let conn = connect(path)?;
    configure(&conn, path, read_only)?;
    Ok(conn)
}

/// Opens a connection to an existing file and sets its busy timeout, nothing else: it neither
/// creates the file nor changes it, so a file that is not ours can be looked at first.
pub(super) fn connect(path: &Path) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags).map_err(sql_error)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(sql_error)?;
    Ok(conn)
}

/// The per-connection settings of [`open_connection`].
pub(super) fn configure(conn: &Connection, path: &Path, read_only: bool) -> Result<()> {
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(sql_error)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::Unavailable(format!(
            "cannot put {} in WAL mode (journal_mode is {mode})",
            path.display()
        )));
    }
    // Per connection, not persisted: every connection must set it.
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(sql_error)?;
    if read_only {
        conn.pragma_update(None, "query_only", 1)
            .map_err(sql_error)?;
    }
    conn.set_prepared_statement_cache_capacity(32);
    Ok(())
}

/// Maps a SQLite error: conditions that may pass (busy, I/O, full disk) are `Unavailable`, a
/// damaged file or one that is not a database is `Corrupt`, the rest (misuse, a bug in our SQL)
/// are `Internal`.
pub(super) fn sql_error(error: rusqlite::Error) -> Error {
    use rusqlite::ErrorCode;
    match &error {
        rusqlite::Error::SqliteFailure(failure, _) => match failure.code {
            ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => {
                Error::Corrupt(format!("sqlite: {error}"))
            }
            ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::SystemIoFailure
            | ErrorCode::DiskFull
            | ErrorCode::CannotOpen
            | ErrorCode::OutOfMemory
            | ErrorCode::PermissionDenied
            | ErrorCode::ReadOnly
            | ErrorCode::FileLockingProtocolFailed => {
                Error::Unavailable(format!("sqlite: {error}"))
            }
            _ => Error::Internal(format!("sqlite: {error}")),
        },
        _ => Error::Internal(format!("sqlite: {error}")),
    }
}

/// The store's current revision: the largest id ever handed out (not `MAX(id)`: compaction may have
/// removed the newest row if it was a tombstone).
pub(super) fn current_revision(conn: &Connection) -> Result<Revision> {
    conn.prepare_cached("SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'kv'), 0)")
        .and_then(|mut stmt| stmt.query_row([], |row| row.get(0)))
        .map(Revision)
        .map_err(sql_error)
}

/// Reads an integer from the `meta` table.
pub(super) fn meta(conn: &Connection, name: &str) -> Result<i64> {
    conn.prepare_cached("SELECT value FROM meta WHERE name = ?1")
        .and_then(|mut stmt| stmt.query_row([name], |row| row.get(0)))
        .map_err(sql_error)
}

/// Writes an integer to the `meta` table.
pub(super) fn set_meta(conn: &Connection, name: &str, value: i64) -> Result<()> {
    conn.prepare_cached("UPDATE meta SET value = ?2 WHERE name = ?1")
        .and_then(|mut stmt| stmt.execute(params![name, value]))
        .map(drop)
        .map_err(sql_error)
}

/// The newest row of one key, live or tombstone.
#[derive(Debug)]
pub(super) struct LatestRow {
    /// The row's id: the key's `mod_revision`.
    pub id: i64,
    /// Whether the row is a tombstone.
    pub deleted: bool,
    /// The key's create revision.
    pub create_revision: i64,
    /// The row's value.
    pub value: Vec<u8>,
}

impl LatestRow {
    /// The row as a key-value of `key`.
    pub fn into_key_value(self, key: &str) -> KeyValue {
        KeyValue {
            key: key.to_owned(),
            value: self.value,
            create_revision: Revision(self.create_revision),
            mod_revision: Revision(self.id),
        }
    }
}

/// The newest row of `key`: one seek on `kv_name_id`.
/// The latest row of a key. `+?1`: SQLite (built with STAT4) would otherwise recompile this
/// statement for every new key, as if the plan could depend on it; the unary plus keeps the same
/// index plan and the compiled statement.
const LATEST_ROW: &str = "SELECT id, deleted, create_revision, value FROM kv
     WHERE name = +?1 ORDER BY id DESC LIMIT 1";

pub(super) fn latest_row(conn: &Connection, key: &str) -> Result<Option<LatestRow>> {
    conn.prepare_cached(LATEST_ROW)
        .and_then(|mut stmt| {
            stmt.query_row([key.as_bytes()], |row| {
                Ok(LatestRow {
                    id: row.get(0)?,
                    deleted: row.get::<_, i64>(1)? != 0,
                    create_revision: row.get(2)?,
                    value: row.get(3)?,
                })
            })
            .optional()
        })
        .map_err(sql_error)
}

/// One row to insert.
pub(super) struct NewRow<'a> {
    pub id: i64,
    pub key: &'a str,
    pub created: bool,
    pub deleted: bool,
    pub create_revision: i64,
    pub prev_revision: i64,
    pub value: &'a [u8],
}

/// Inserts a row with an explicit id (the writer hands out ids itself, so it knows a row's revision
/// before inserting it and can fill `create_revision` of a creation in the same statement).
pub(super) fn insert_row(conn: &Connection, row: &NewRow<'_>) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO kv (id, name, created, deleted, create_revision, prev_revision, value)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            row.id,
            row.key.as_bytes(),
            i64::from(row.created),
            i64::from(row.deleted),
            row.create_revision,
            row.prev_revision,
            row.value,
        ])
    })
    .map(drop)
    .map_err(sql_error)
}

/// The smallest byte string greater than every key that starts with `prefix`.
///
/// Keys are UTF-8, whose bytes never exceed 0xF4, so incrementing the last byte cannot overflow and
/// `[0xFF]` bounds every key (the empty prefix).
pub(super) fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    match end.last_mut() {
        Some(last) => *last += 1,
        None => end.push(0xFF),
    }
    end
}

/// One page of the snapshot at `revision` of keys in `[start, end)`: per key the newest row with
/// `id <= revision`, tombstones dropped, in key order. Walks `kv_name_id` from `start` and stops
/// after `limit` keys, so a page costs the versions it passes over, not the whole table.
pub(super) fn list_rows(
    conn: &Connection,
    start: &[u8],
    end: &[u8],
    revision: Revision,
    limit: Option<usize>,
) -> Result<Vec<KeyValue>> {
    let limit = limit.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
    let mut stmt = conn
        .prepare_cached(
            "SELECT k.id, k.name, k.create_revision, k.value FROM kv AS k
             WHERE k.name >= ?1 AND k.name < ?2 AND k.id <= ?3 AND k.deleted = 0
               AND k.id = (SELECT MAX(m.id) FROM kv AS m WHERE m.name = k.name AND m.id <= ?3)
             ORDER BY k.name
             LIMIT ?4",
        )
        .map_err(sql_error)?;
    let rows = stmt
        .query_map(params![start, end, revision.0, limit], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, Vec<u8>>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, Vec<u8>>(3)?,
            ))
        })
        .map_err(sql_error)?;
    let mut kvs = Vec::new();
    for row in rows {
        let (id, name, create_revision, value) = row.map_err(sql_error)?;
        kvs.push(KeyValue {
            key: key_from_bytes(name)?,
            value,
            create_revision: Revision(create_revision),
            mod_revision: Revision(id),
        });
    }
    Ok(kvs)
}

/// Events with revisions in `(after, upto]` on keys in `[start, end)`, in revision order, at most
/// `limit`. An update or deletion carries the previous row (by `prev_revision`, which compaction
/// never removes while a row above the compacted revision points at it).
pub(super) fn event_rows(
    conn: &Connection,
    after: Revision,
    upto: Revision,
    start: &[u8],
    end: &[u8],
    limit: usize,
) -> Result<Vec<Event>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn
        .prepare_cached(
            "SELECT k.id, k.name, k.created, k.deleted, k.create_revision, k.value,
                    p.id, p.create_revision, p.value
             FROM kv AS k LEFT JOIN kv AS p ON p.id = k.prev_revision AND k.created = 0
             WHERE k.id > ?1 AND k.id <= ?2 AND k.name >= ?3 AND k.name < ?4
             ORDER BY k.id
             LIMIT ?5",
        )
        .map_err(sql_error)?;
    let rows = stmt
        .query_map(params![after.0, upto.0, start, end, limit], event_columns)
        .map_err(sql_error)?;
    let mut events = Vec::new();
    for row in rows {
        let columns = row.map_err(sql_error)?;
        events.push(columns.into_event()?);
    }
    Ok(events)
}

/// The columns of one event row, before the key is checked to be UTF-8.
struct EventColumns {
    id: i64,
    name: Vec<u8>,
    created: bool,
    deleted: bool,
    create_revision: i64,
    value: Vec<u8>,
    prev: Option<(i64, i64, Vec<u8>)>,
}

fn event_columns(row: &Row<'_>) -> rusqlite::Result<EventColumns> {
    let prev_id: Option<i64> = row.get(6)?;
    let prev = match prev_id {
        Some(id) => Some((id, row.get(7)?, row.get(8)?)),
        None => None,
    };
    Ok(EventColumns {
        id: row.get(0)?,
        name: row.get(1)?,
        created: row.get::<_, i64>(2)? != 0,
        deleted: row.get::<_, i64>(3)? != 0,
        create_revision: row.get(4)?,
        value: row.get(5)?,
        prev,
    })
}

impl EventColumns {
    fn into_event(self) -> Result<Event> {
        let key = key_from_bytes(self.name)?;
        let kind = if self.deleted {
            EventKind::Deleted
        } else if self.created {
            EventKind::Created
        } else {
            EventKind::Updated
        };
        let prev = self.prev.map(|(id, create_revision, value)| KeyValue {
            key: key.clone(),
            value,
            create_revision: Revision(create_revision),
            mod_revision: Revision(id),
        });
        Ok(Event {
            kind,
            kv: KeyValue {
                key,
                value: self.value,
                create_revision: Revision(self.create_revision),
                mod_revision: Revision(self.id),
            },
            prev,
        })
    }
}

/// A stored key back to a string. Only the store writes keys, always from `&str`, so a failure
/// means the file was altered or damaged.
fn key_from_bytes(name: Vec<u8>) -> Result<String> {
    String::from_utf8(name).map_err(|e| Error::Corrupt(format!("a stored key is not UTF-8: {e}")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_bounds_exactly_the_keys_under_the_prefix() {
        fn check(prefix: &str, expected: &[u8]) {
            assert_eq!(prefix_end(prefix), expected, "prefix {prefix:?}");
        }
        check("", &[0xFF]);
        check("/a/", b"/a0");
        check("/a", b"/b");
        check("é", &[0xC3, 0xAA]);
    }

    #[test]
    fn every_connection_runs_wal_with_synchronous_full_and_readers_are_query_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pragmas.db");
        std::fs::File::create(&path).unwrap();
        let check = |read_only: bool, expected: (&str, i64, i64)| {
            let conn = open_connection(&path, read_only).unwrap();
            let pragma = |name: &str| -> String {
                conn.query_row(
                    &format!("SELECT CAST({name} AS TEXT) FROM pragma_{name}"),
                    [],
                    |row| row.get(0),
                )
                .unwrap()
            };
            let got = (
                pragma("journal_mode"),
                pragma("synchronous").parse::<i64>().unwrap(),
                pragma("query_only").parse::<i64>().unwrap(),
            );
            assert_eq!(
                (got.0.as_str(), got.1, got.2),
                expected,
                "read_only {read_only}"
            );
        };
        // synchronous: 2 is FULL.
        check(false, ("wal", 2, 0));
        check(true, ("wal", 2, 1));
    }

    #[test]
    fn list_and_event_queries_walk_the_name_index_without_sorting() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.db");
        std::fs::File::create(&path).unwrap();
        let conn = open_connection(&path, false).unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        let plan = |sql: &str| -> String {
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let rows = stmt
                .query_map([], |row| row.get::<_, String>(3))
                .unwrap()
                .map(|r| r.unwrap())
                .collect::<Vec<_>>();
            rows.join("\n")
        };
        let list = plan(
            "SELECT k.id FROM kv AS k
             WHERE k.name >= x'2f' AND k.name < x'30' AND k.id <= 10 AND k.deleted = 0
               AND k.id = (SELECT MAX(m.id) FROM kv AS m WHERE m.name = k.name AND m.id <= 10)
             ORDER BY k.name LIMIT 5",
        );
        assert!(
            list.contains("USING INDEX kv_name_id (name>? AND name<?)"),
            "{list}"
        );
        assert!(!list.contains("TEMP B-TREE"), "{list}");
        let latest = plan(&LATEST_ROW.replace("?1", "x'2f'"));
        assert!(latest.contains("INDEX kv_name_id (name=?)"), "{latest}");
        assert!(!latest.contains("TEMP B-TREE"), "{latest}");
    }

    #[test]
    fn point_reads_reuse_their_compiled_statement() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prepare.db");
        std::fs::File::create(&path).unwrap();
        let conn = open_connection(&path, false).unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        for key in ["/a", "/b", "/c"] {
            latest_row(&conn, key).unwrap();
        }
        let stmt = conn.prepare_cached(LATEST_ROW).unwrap();
        assert_eq!(stmt.get_status(rusqlite::StatementStatus::RePrepare), 0);
    }
}

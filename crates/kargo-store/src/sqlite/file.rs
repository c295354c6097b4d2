//! The database file on disk. A new store is created **private** and **whole**: the file is made
//! with mode 0600 before SQLite touches it (SQLite gives the `-wal` and `-shm` files it creates
//! the mode of the database file, whatever the umask: `findCreateFileMode` and
//! `unixOpenSharedMemory` in `os_unix.c`), and it is built under a temporary name and renamed
//! into place, so a crash during a first start never leaves an empty `kargo.db` behind. An
//! existing file is checked before anything writes to it: not empty, a SQLite database, with this
//! store's tables, and whole by SQLite's `PRAGMA quick_check`. A file that fails is
//! [`Error::Corrupt`]: the caller decides (the server refuses to start unless told to set the
//! file aside), never this module.

use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use rusqlite::Connection;

use super::schema::{SCHEMA, SCHEMA_VERSION, configure, connect, sql_error};
use crate::{Error, Result};

/// How many problems of `quick_check` an error quotes.
const QUICK_CHECK_PROBLEMS: usize = 5;

/// `path` with `suffix` appended to its file name (`kargo.db` -> `kargo.db-wal`).
pub(super) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn io_error(what: &str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let what = format!("{what} {}", path.display());
    move |e| Error::Unavailable(format!("{what}: {e}"))
}

/// Makes sure a store file is there to open: creates a new one when `path` does not exist, and
/// refuses what SQLite would otherwise take silently for a new, empty database (an empty file,
/// or a `-wal` left without its database file).
pub(super) fn prepare(path: &Path) -> Result<()> {
    match fs::metadata(path) {
        Ok(meta) if meta.len() == 0 => Err(Error::Corrupt(
            "the file is empty (0 bytes), so it holds no store".to_owned(),
        )),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            let wal = with_suffix(path, "-wal");
            if wal.exists() {
                // SQLite would replay that log into the new file and damage it.
                return Err(Error::Corrupt(format!(
                    "the file does not exist but its write-ahead log {} does: the database \
                     file was removed or moved without it",
                    wal.display()
                )));
            }
            create(path)
        }
        Err(e) => Err(io_error("reading", path)(e)),
    }
}

/// Builds a new, empty store at `path`: the schema in a private file under a temporary name,
/// synced, then renamed into place.
fn create(path: &Path) -> Result<()> {
    let staging = with_suffix(path, ".new");
    for leftover in ["", "-wal", "-shm", "-journal"] {
        let leftover = with_suffix(&staging, leftover);
        match fs::remove_file(&leftover) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(io_error("removing", &leftover)(e)),
        }
    }
    let file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&staging)
        .map_err(io_error("creating", &staging))?;
    // The umask applies to the mode given at creation; set it again so that no umask matters.
    file.set_permissions(fs::Permissions::from_mode(0o600))
        .map_err(io_error("setting the mode of", &staging))?;
    drop(file);
    let conn = connect(&staging)?;
    configure(&conn, &staging, false)?;
    conn.execute_batch(SCHEMA).map_err(sql_error)?;
    // Closing the last connection checkpoints the log into the file and removes it.
    conn.close().map_err(|(_, e)| sql_error(e))?;
    fs::File::open(&staging)
        .and_then(|f| f.sync_all())
        .map_err(io_error("syncing", &staging))?;
    fs::rename(&staging, path).map_err(io_error("renaming the new store to", path))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_error("syncing", dir))?;
    }
    tracing::info!(path = %path.display(), "created a new sqlite store");
    Ok(())
}

/// Checks that the database behind `conn` is a store of this version and that SQLite finds no
/// damage in it. Reads only: a file that is not ours is left exactly as it was.
pub(super) fn check(conn: &Connection) -> Result<()> {
    let mut tables = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        .and_then(|mut stmt| {
            stmt.query_map([], |row| row.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<String>>>()
        })
        .map_err(sql_error)?;
    tables.retain(|t| !t.starts_with("sqlite_"));
    if !(tables.iter().any(|t| t == "kv") && tables.iter().any(|t| t == "meta")) {
        return Err(Error::Corrupt(if tables.is_empty() {
            "a SQLite database with no tables, not a Kargo store".to_owned()
        } else {
            format!(
                "a SQLite database without Kargo's tables, not a Kargo store (its tables: {})",
                tables.join(", ")
            )
        }));
    }
    let version: Option<i64> = conn
        .query_row(
            "SELECT value FROM meta WHERE name = 'schema_version'",
            [],
            |row| row.get(0),
        )
        .map_err(sql_error)
        .ok();
    if version != Some(SCHEMA_VERSION) {
        return Err(Error::Corrupt(format!(
            "the store's schema version is {}, this server reads version {SCHEMA_VERSION}",
            version.map_or_else(|| "missing".to_owned(), |v| v.to_string())
        )));
    }
    let started = Instant::now();
    let problems = conn
        .prepare(&format!("PRAGMA quick_check({QUICK_CHECK_PROBLEMS})"))
        .and_then(|mut stmt| {
            stmt.query_map([], |row| row.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<String>>>()
        })
        .map_err(|e| match sql_error(e) {
            // Damage bad enough to stop the check itself.
            Error::Corrupt(message) => {
                Error::Corrupt(format!("SQLite's quick_check found damage: {message}"))
            }
            other => other,
        })?;
    tracing::debug!(elapsed = ?started.elapsed(), "sqlite quick_check done");
    if problems.len() == 1 && problems[0] == "ok" {
        return Ok(());
    }
    Err(Error::Corrupt(format!(
        "SQLite's quick_check found damage: {}",
        problems
            .iter()
            .map(|p| p.replace('\n', " "))
            .collect::<Vec<_>>()
            .join("; ")
    )))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_new_store_file_is_private_and_complete_and_leaves_nothing_else_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kargo.db");
        // A staging file left by a crash during an earlier first start is replaced.
        fs::write(with_suffix(&path, ".new"), b"half-made").unwrap();
        prepare(&path).unwrap();
        assert_eq!(mode(&path), 0o600);
        let mut names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["kargo.db"]);
        let conn = connect(&path).unwrap();
        check(&conn).unwrap();
    }

    #[test]
    fn an_empty_file_and_an_orphaned_log_are_refused_not_taken_for_new_stores() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.db");
        fs::write(&empty, b"").unwrap();
        let err = prepare(&empty).unwrap_err();
        assert!(
            matches!(&err, Error::Corrupt(m) if m.contains("empty (0 bytes)")),
            "{err}"
        );
        let orphan = dir.path().join("orphan.db");
        fs::write(with_suffix(&orphan, "-wal"), b"log").unwrap();
        let err = prepare(&orphan).unwrap_err();
        assert!(
            matches!(&err, Error::Corrupt(m) if m.contains("orphan.db-wal")),
            "{err}"
        );
        assert!(!orphan.exists());
    }

    #[test]
    fn a_file_that_is_not_a_kargo_store_is_refused_and_left_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let check_file = |name: &str, expected: &str| {
            let path = dir.path().join(name);
            let before = fs::read(&path).unwrap();
            let err = connect(&path)
                .and_then(|conn| check(&conn))
                .expect_err(name);
            assert!(
                matches!(&err, Error::Corrupt(m) if m.contains(expected)),
                "{name}: {err}"
            );
            assert_eq!(fs::read(&path).unwrap(), before, "{name} was changed");
        };
        fs::write(
            dir.path().join("text.db"),
            b"not a database at all, just some text",
        )
        .unwrap();
        check_file("text.db", "file is not a database");
        let other = dir.path().join("other.db");
        Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('hi');")
            .unwrap();
        check_file("other.db", "its tables: notes");
    }
}

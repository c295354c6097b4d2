//! Export and import of a whole store, for backups that do not depend on the backend and for
//! moving from SQLite to etcd (`kargo server export`, `import`, `migrate`).
//!
//! An export is every key under `/` (the API's objects under `/registry/`, and the server's own
//! state under `/kargo/internal/`: CA, signing keys, admin record) read at one revision, as JSON
//! lines:
//!
//! ```text
//! {"format":"kargo-store-export","version":1,"revision":1234}
//! {"key":"/registry/namespaces/default","value":"<base64>"}
//! ...
//! {"end":true,"keys":57}
//! ```
//!
//! The last line lets an import refuse a truncated file. Values are copied byte for byte: objects
//! are stored without `resourceVersion`, so after an import every object simply gets the target
//! store's revision. An import writes only into a store that holds no key under `/`, and checks
//! the whole file before it writes anything.
//!
//! An export holds the CA key, the signing keys and the admin password hash: keep it as secret as
//! the store itself.

use std::io::{BufRead, Write};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use kargo_store::{ListRequest, Revision, Store};
use serde::{Deserialize, Serialize};

/// The format name in an export's first line.
pub(crate) const FORMAT: &str = "kargo-store-export";
const VERSION: u32 = 1;
const PAGE: usize = 500;

/// What can go wrong exporting or importing.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The store failed.
    #[error("store: {0}")]
    Store(kargo_store::Error),
    /// Reading or writing the file failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The file is not a complete export.
    #[error("not a complete kargo store export: {0}")]
    Format(String),
    /// The target store already holds keys.
    #[error("the target store is not empty (it holds {0}); import only into an empty store")]
    NotEmpty(String),
}

// Not `#[from]`: the message already names the cause, and a `source` besides would make the
// CLI, which prints an error's whole chain, say it twice.
impl From<kargo_store::Error> for BackupError {
    fn from(error: kargo_store::Error) -> BackupError {
        BackupError::Store(error)
    }
}

#[derive(Serialize, Deserialize)]
struct Header {
    format: String,
    version: u32,
    revision: i64,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    key: String,
    value: String,
}

#[derive(Serialize, Deserialize)]
struct Trailer {
    end: bool,
    keys: usize,
}

/// Every key under `/`, paged at one revision: `(revision, [(key, value)])`.
pub(crate) async fn snapshot(
    store: &dyn Store,
) -> Result<(Revision, Vec<(String, Vec<u8>)>), BackupError> {
    let mut all = Vec::new();
    let mut revision = None;
    let mut start_after = None;
    loop {
        let page = store
            .list(ListRequest {
                prefix: "/".into(),
                start_after: start_after.clone(),
                revision,
                limit: Some(PAGE),
            })
            .await?;
        revision = Some(page.revision);
        start_after = page.kvs.last().map(|kv| kv.key.clone());
        all.extend(page.kvs.into_iter().map(|kv| (kv.key, kv.value)));
        if !page.more || start_after.is_none() {
            break;
        }
    }
    Ok((revision.unwrap_or_default(), all))
}

fn write_line<T: Serialize>(out: &mut dyn Write, value: &T) -> Result<(), BackupError> {
    let line = serde_json::to_string(value).map_err(|e| BackupError::Format(e.to_string()))?;
    out.write_all(line.as_bytes())?;
    out.write_all(b"\n")?;
    Ok(())
}

/// Writes an export of `store`; returns the number of keys.
pub async fn export(store: &dyn Store, out: &mut dyn Write) -> Result<usize, BackupError> {
    let (revision, kvs) = snapshot(store).await?;
    write_line(
        out,
        &Header {
            format: FORMAT.into(),
            version: VERSION,
            revision: revision.0,
        },
    )?;
    for (key, value) in &kvs {
        write_line(
            out,
            &Entry {
                key: key.clone(),
                value: STANDARD.encode(value),
            },
        )?;
    }
    write_line(
        out,
        &Trailer {
            end: true,
            keys: kvs.len(),
        },
    )?;
    out.flush()?;
    Ok(kvs.len())
}

/// Reads and checks a whole export: its keys and values.
pub fn read_export(input: &mut dyn BufRead) -> Result<Vec<(String, Vec<u8>)>, BackupError> {
    let mut lines = input.lines();
    let first = lines
        .next()
        .ok_or_else(|| BackupError::Format("the file is empty".into()))??;
    let header: Header =
        serde_json::from_str(&first).map_err(|e| BackupError::Format(format!("line 1: {e}")))?;
    if header.format != FORMAT || header.version != VERSION {
        return Err(BackupError::Format(format!(
            "line 1: format {:?} version {}, expected {FORMAT:?} version {VERSION}",
            header.format, header.version
        )));
    }
    let mut kvs = Vec::new();
    for (n, line) in lines.enumerate() {
        let line = line?;
        let number = n + 2;
        if let Ok(trailer) = serde_json::from_str::<Trailer>(&line) {
            if !trailer.end || trailer.keys != kvs.len() {
                return Err(BackupError::Format(format!(
                    "line {number}: the export says {} keys, the file has {}",
                    trailer.keys,
                    kvs.len()
                )));
            }
            return Ok(kvs);
        }
        let entry: Entry = serde_json::from_str(&line)
            .map_err(|e| BackupError::Format(format!("line {number}: {e}")))?;
        let value = STANDARD
            .decode(&entry.value)
            .map_err(|e| BackupError::Format(format!("line {number}: {e}")))?;
        kvs.push((entry.key, value));
    }
    Err(BackupError::Format(
        "the file ends before its last line (truncated?)".into(),
    ))
}

/// Writes `kvs` into an empty `store`; returns the number of keys.
pub async fn import(store: &dyn Store, kvs: &[(String, Vec<u8>)]) -> Result<usize, BackupError> {
    let present = store
        .list(ListRequest {
            prefix: "/".into(),
            limit: Some(1),
            ..ListRequest::default()
        })
        .await?;
    if let Some(kv) = present.kvs.first() {
        return Err(BackupError::NotEmpty(format!("{:?}", kv.key)));
    }
    for (key, value) in kvs {
        store.create(key, value.clone()).await?;
    }
    Ok(kvs.len())
}

/// Copies every key of `from` into the empty `to`; returns the number of keys.
pub async fn copy(from: &dyn Store, to: &dyn Store) -> Result<usize, BackupError> {
    let (_, kvs) = snapshot(from).await?;
    import(to, &kvs).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use kargo_store::sqlite::SqliteStore;

    fn store(dir: &tempfile::TempDir, name: &str) -> SqliteStore {
        SqliteStore::open(&dir.path().join(name)).unwrap()
    }

    async fn contents(store: &dyn Store) -> Vec<(String, Vec<u8>)> {
        snapshot(store).await.unwrap().1
    }

    #[tokio::test]
    async fn an_export_imports_into_an_empty_store_with_every_key_and_value() {
        let dir = tempfile::tempdir().unwrap();
        let source = store(&dir, "a.db");
        for n in 0..1200 {
            source
                .create(&format!("/registry/things/{n:04}"), vec![n as u8, 0, 255])
                .await
                .unwrap();
        }
        source
            .create("/kargo/internal/ca", b"{\"certPem\":\"x\"}".to_vec())
            .await
            .unwrap();
        let mut file = Vec::new();
        assert_eq!(export(&source, &mut file).await.unwrap(), 1201);
        let text = String::from_utf8(file.clone()).unwrap();
        assert!(
            text.starts_with(
                "{\"format\":\"kargo-store-export\",\"version\":1,\"revision\":1201}\n"
            )
        );
        assert!(text.ends_with("{\"end\":true,\"keys\":1201}\n"));

        let target = store(&dir, "b.db");
        let kvs = read_export(&mut file.as_slice()).unwrap();
        assert_eq!(import(&target, &kvs).await.unwrap(), 1201);
        assert_eq!(contents(&target).await, contents(&source).await);

        // Importing again is refused: the target is no longer empty.
        match import(&target, &kvs).await {
            Err(BackupError::NotEmpty(key)) => assert_eq!(key, "\"/kargo/internal/ca\""),
            other => panic!("expected NotEmpty, got {other:?}"),
        }
    }

    #[test]
    fn a_truncated_or_foreign_file_is_refused_before_anything_is_written() {
        let check = |text: &str, expected: &str| match read_export(&mut text.as_bytes()) {
            Err(e) => assert_eq!(e.to_string(), expected, "{text:?}"),
            Ok(kvs) => panic!("{text:?} was accepted: {kvs:?}"),
        };
        let header = "{\"format\":\"kargo-store-export\",\"version\":1,\"revision\":3}\n";
        check("", "not a complete kargo store export: the file is empty");
        check(
            &format!("{header}{{\"key\":\"/a\",\"value\":\"AA==\"}}\n"),
            "not a complete kargo store export: the file ends before its last line (truncated?)",
        );
        check(
            &format!("{header}{{\"end\":true,\"keys\":2}}\n"),
            "not a complete kargo store export: line 2: the export says 2 keys, the file has 0",
        );
        check(
            "{\"format\":\"other\",\"version\":1,\"revision\":3}\n",
            "not a complete kargo store export: line 1: format \"other\" version 1, expected \"kargo-store-export\" version 1",
        );
    }

    #[tokio::test]
    async fn copy_moves_every_key_between_stores() {
        let dir = tempfile::tempdir().unwrap();
        let (from, to) = (store(&dir, "a.db"), store(&dir, "b.db"));
        from.create("/a", b"1".to_vec()).await.unwrap();
        from.create("/b", b"2".to_vec()).await.unwrap();
        assert_eq!(copy(&from, &to).await.unwrap(), 2);
        assert_eq!(
            contents(&to).await,
            vec![
                ("/a".to_owned(), b"1".to_vec()),
                ("/b".to_owned(), b"2".to_vec())
            ]
        );
    }
}

//! The SQLite backend: one database file in WAL mode, one writer thread, a pool of readers.
//!
//! - **Table.** Every write inserts a row into `kv`; the row's `AUTOINCREMENT` id is the write's
//!   revision. A deletion inserts a tombstone row. The latest row of a key is one index seek; a
//!   list at revision R takes, per key under the prefix, the newest row with `id <= R`.
//! - **Writes** go to a dedicated thread that owns the only write connection. It drains every queued
//!   write into one `BEGIN IMMEDIATE` transaction and commits once (group commit), then publishes
//!   the events and answers the callers. Every connection runs `synchronous=FULL`: an acknowledged
//!   write has been fsynced to the WAL.
//! - **Reads** run on a small pool of read connections on blocking threads; WAL gives each read its
//!   own snapshot, and readers never wait for the writer.
//! - **Watches** replay history from the database, then follow the writer's broadcast; see `watch`.
//! - **Compaction** runs on the writer thread in small transactions between write batches.
//!
//! The file must be used by one process at a time, on a local file system (WAL needs shared memory
//! and a disk that honours fsync). `docs/storage.md` has the details.

mod file;
mod pool;
mod schema;
mod watch;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use async_trait::async_trait;
use tokio::sync::{broadcast, oneshot};

use crate::{Error, KeyValue, ListPage, ListRequest, Result, Revision, Store, WatchStream};
use pool::{ReadPool, closed};
use schema::{current_revision, latest_row, list_rows, meta, prefix_end, sql_error};
use writer::{Batch, Op, Write, Writer};

/// Tuning knobs of a [`SqliteStore`]; [`SqliteOptions::default`] suits the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteOptions {
    /// How many read connections may be open at once.
    pub read_connections: usize,
    /// How many committed batches a watcher may fall behind before it has to catch up from the
    /// database instead of from memory.
    pub watch_buffer: usize,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            read_connections: 4,
            watch_buffer: 1024,
        }
    }
}

/// A store in one SQLite file.
///
/// Dropping the store (or calling [`SqliteStore::close`]) lets the writer finish the batch it is
/// committing and stops it; writes still queued then fail with [`Error::Unavailable`], and open
/// watch streams end with that error.
pub struct SqliteStore {
    shared: Arc<Shared>,
    ops: mpsc::Sender<Op>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

/// What the store handle, the writer thread and watch streams share.
struct Shared {
    pool: Arc<ReadPool>,
    /// The revision of the last committed write; set by the writer after each commit.
    current: AtomicI64,
    /// The compacted revision; set by the writer once it is durable.
    compacted: AtomicI64,
    /// New watchers subscribe here; `None` once the store is closed.
    events: Mutex<Option<broadcast::Sender<Batch>>>,
}

impl Shared {
    fn subscribe(&self) -> Result<broadcast::Receiver<Batch>> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(broadcast::Sender::subscribe)
            .ok_or_else(closed)
    }
}

impl SqliteStore {
    /// Opens (or creates) the store in the file at `path`, with default options (see
    /// [`SqliteStore::open_with`]).
    pub fn open(path: &Path) -> Result<SqliteStore> {
        Self::open_with(path, SqliteOptions::default())
    }

    /// Opens the store in the file at `path`, or creates a new one there if no file exists.
    ///
    /// A new file is private (mode 0600, and so are its `-wal` and `-shm`) and appears only
    /// once it holds the whole schema. An existing file must be a store: an empty file, a file
    /// that is not a SQLite database, a database without this store's tables, or one in which
    /// `PRAGMA quick_check` finds damage is [`Error::Corrupt`], and is left unchanged.
    pub fn open_with(path: &Path, options: SqliteOptions) -> Result<SqliteStore> {
        file::prepare(path)?;
        let (events, _) = broadcast::channel(options.watch_buffer.max(1));
        let shared = Arc::new(Shared {
            pool: Arc::new(ReadPool::new(PathBuf::from(path), options.read_connections)),
            current: AtomicI64::new(0),
            compacted: AtomicI64::new(0),
            events: Mutex::new(Some(events.clone())),
        });
        let writer = Writer::open(path, Arc::clone(&shared), events)?;
        let (ops, queue) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("kargo-store-writer".to_owned())
            .spawn(move || writer.run(queue))
            .map_err(|e| Error::Unavailable(format!("cannot start the writer thread: {e}")))?;
        tracing::debug!(path = %path.display(), "sqlite store opened");
        Ok(SqliteStore {
            shared,
            ops,
            writer: Mutex::new(Some(thread)),
        })
    }

    /// Stops the writer (after the batch it is committing) and closes the read connections.
    /// Later operations fail with [`Error::Unavailable`]. Dropping the store does the same.
    pub async fn close(&self) -> Result<()> {
        let Some(thread) = self.begin_shutdown() else {
            return Ok(());
        };
        tokio::task::spawn_blocking(move || thread.join())
            .await
            .map_err(|e| Error::Internal(format!("cannot wait for the writer: {e}")))?
            .map_err(|_| Error::Internal("the writer thread panicked".to_owned()))
    }

    /// Asks the writer to stop and stops new reads and watches; returns the writer thread to join
    /// (`None` if already closed).
    fn begin_shutdown(&self) -> Option<JoinHandle<()>> {
        let thread = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()?;
        self.shared
            .events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        // If the writer is already gone the send fails, which is what we want anyway.
        let _ = self.ops.send(Op::Shutdown);
        self.shared.pool.close();
        Some(thread)
    }

    async fn write(&self, write: Write) -> Result<KeyValue> {
        let (reply, answer) = oneshot::channel();
        self.ops
            .send(Op::Write(write, reply))
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        if let Some(thread) = self.begin_shutdown() {
            // Waits at most for the batch being committed; after this the file is closed.
            if thread.join().is_err() {
                tracing::error!("the sqlite store writer thread panicked");
            }
        }
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        // A point lookup through the (name, id) index takes microseconds: run it here.
        self.shared.pool.run_inline(|conn| {
            Ok(latest_row(conn, key)?
                .filter(|row| !row.deleted)
                .map(|row| row.into_key_value(key)))
        })
    }

    async fn list(&self, request: ListRequest) -> Result<ListPage> {
        self.shared
            .pool
            .run(move |conn| {
                let tx = conn.unchecked_transaction().map_err(sql_error)?;
                let compacted = Revision(meta(&tx, "compact_revision")?);
                let current = current_revision(&tx)?;
                let revision = request.revision.unwrap_or(current);
                if revision < compacted {
                    return Err(Error::Compacted {
                        requested: revision,
                        oldest: compacted,
                    });
                }
                if revision > current {
                    return Err(Error::FutureRevision {
                        requested: revision,
                        current,
                    });
                }
                let mut start = request.prefix.as_bytes().to_vec();
                if let Some(after) = &request.start_after {
                    // The smallest key greater than `after` is `after` followed by a NUL byte.
                    let mut above = after.as_bytes().to_vec();
                    above.push(0);
                    start = start.max(above);
                }
                let end = prefix_end(&request.prefix);
                let limit = request.limit.filter(|&n| n > 0);
                let mut kvs = list_rows(
                    &tx,
                    &start,
                    &end,
                    revision,
                    limit.map(|n| n.saturating_add(1)),
                )?;
                let more = limit.is_some_and(|n| kvs.len() > n);
                if let Some(n) = limit {
                    kvs.truncate(n);
                }
                Ok(ListPage {
                    kvs,
                    revision,
                    more,
                })
            })
            .await
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue> {
        self.write(Write::Create {
            key: key.to_owned(),
            value,
        })
        .await
    }

    async fn update(&self, key: &str, value: Vec<u8>, expected: Revision) -> Result<KeyValue> {
        self.write(Write::Update {
            key: key.to_owned(),
            value,
            expected,
        })
        .await
    }

    async fn delete(&self, key: &str, expected: Revision) -> Result<KeyValue> {
        self.write(Write::Delete {
            key: key.to_owned(),
            expected,
        })
        .await
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        // Subscribe first: a commit after this point reaches the stream live, one before it is in
        // the stream's first replay snapshot.
        let events = self.shared.subscribe()?;
        let compacted = Revision(self.shared.compacted.load(Ordering::SeqCst));
        if after < compacted {
            return Err(Error::Compacted {
                requested: after,
                oldest: compacted,
            });
        }
        Ok(watch::stream(
            Arc::clone(&self.shared),
            events,
            prefix,
            after,
        ))
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        let (reply, answer) = oneshot::channel();
        self.ops
            .send(Op::Compact(revision, reply))
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }

    async fn current_revision(&self) -> Result<Revision> {
        Ok(Revision(self.shared.current.load(Ordering::SeqCst)))
    }

    fn committed_revision(&self) -> Option<Revision> {
        Some(Revision(self.shared.current.load(Ordering::SeqCst)))
    }

    async fn compacted_revision(&self) -> Result<Revision> {
        Ok(Revision(self.shared.compacted.load(Ordering::SeqCst)))
    }
}

//! The single writer: a dedicated thread that owns the write connection.
//!
//! Callers queue [`Op`]s. The writer takes every queued write (up to [`MAX_BATCH`]), applies them in
//! one `BEGIN IMMEDIATE` transaction, commits once (one fsync for the whole batch), then publishes
//! the batch's events to watchers and answers each caller. A write whose compare fails only answers
//! its own caller with the error; it writes nothing, so the rest of the batch is unaffected.
//!
//! Compaction runs on the same thread in small transactions between write batches, so a large
//! compaction delays writes by one chunk at a time, never by the whole job.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, TryRecvError};

use rusqlite::{Connection, TransactionBehavior, params};
use tokio::sync::{broadcast, oneshot};

use super::Shared;
use super::file::check;
use super::schema::{
    NewRow, SCHEMA, configure, connect, current_revision, insert_row, latest_row, meta, set_meta,
    sql_error,
};
use crate::{Error, Event, EventKind, KeyValue, Result, Revision};

/// At most this many writes share one transaction, which bounds a batch's commit latency.
const MAX_BATCH: usize = 1024;

/// Compaction examines this many revisions per transaction.
const COMPACT_CHUNK: i64 = 2048;

/// The events of one committed batch, in revision order, as broadcast to watchers.
pub(super) type Batch = Arc<[Event]>;

/// A write a caller asks for.
#[derive(Debug)]
pub(super) enum Write {
    Create {
        key: String,
        value: Vec<u8>,
    },
    Update {
        key: String,
        value: Vec<u8>,
        expected: Revision,
    },
    Delete {
        key: String,
        expected: Revision,
    },
}

/// A request to the writer thread.
pub(super) enum Op {
    /// A write; the answer is the written key-value.
    Write(Write, oneshot::Sender<Result<KeyValue>>),
    /// A compaction; answered when every row it drops is gone.
    Compact(Revision, oneshot::Sender<Result<()>>),
    /// Finish the current batch and stop.
    Shutdown,
}

/// A compaction in progress.
struct Compaction {
    /// Drop history up to and including this revision.
    target: i64,
    /// Revisions up to here have been examined.
    progress: i64,
    /// Callers to answer when done.
    waiters: Vec<oneshot::Sender<Result<()>>>,
}

/// The state the writer thread owns.
pub(super) struct Writer {
    conn: Connection,
    shared: Arc<Shared>,
    events: broadcast::Sender<Batch>,
    compaction: Option<Compaction>,
}

impl Writer {
    /// Opens the write connection, creates the schema, and reads the revisions the store starts
    /// from (current, compacted) into `shared`. Runs on the caller's thread so open errors surface
    /// from `SqliteStore::open`.
    pub fn open(
        path: &Path,
        shared: Arc<Shared>,
        events: broadcast::Sender<Batch>,
    ) -> Result<Self> {
        // Checked before the connection is configured: putting a file in WAL mode writes to it,
        // and a file that is not a store must be left as it was.
        let conn = connect(path)?;
        check(&conn)?;
        configure(&conn, path, false)?;
        conn.execute_batch(SCHEMA).map_err(sql_error)?;
        let current = current_revision(&conn)?;
        let compacted = meta(&conn, "compact_revision")?;
        let progress = meta(&conn, "compact_progress")?;
        shared.current.store(current.0, Ordering::SeqCst);
        shared.compacted.store(compacted, Ordering::SeqCst);
        // A compaction cut short by a crash or a close resumes where it stopped.
        let compaction = (progress < compacted).then(|| Compaction {
            target: compacted,
            progress,
            waiters: Vec::new(),
        });
        Ok(Self {
            conn,
            shared,
            events,
            compaction,
        })
    }

    /// The writer thread's loop. Returns when the store shuts down.
    pub fn run(mut self, ops: Receiver<Op>) {
        loop {
            let first = if self.compaction.is_some() {
                match ops.try_recv() {
                    Ok(op) => Some(op),
                    Err(TryRecvError::Empty) => None,
                    Err(TryRecvError::Disconnected) => break,
                }
            } else {
                match ops.recv() {
                    Ok(op) => Some(op),
                    Err(_) => break,
                }
            };
            let mut writes = Vec::new();
            let mut shutdown = false;
            if let Some(op) = first {
                self.dispatch(op, &mut writes, &mut shutdown);
                while writes.len() < MAX_BATCH && !shutdown {
                    match ops.try_recv() {
                        Ok(op) => self.dispatch(op, &mut writes, &mut shutdown),
                        Err(_) => break,
                    }
                }
            }
            if !writes.is_empty() {
                self.commit_batch(writes);
            }
            if shutdown {
                break;
            }
            if self.compaction.is_some() {
                self.compact_chunk();
            }
        }
        // Requests still queued are dropped with their senders: their callers see the store closed.
        tracing::debug!("sqlite store writer stopped");
    }

    fn dispatch(
        &mut self,
        op: Op,
        writes: &mut Vec<(Write, oneshot::Sender<Result<KeyValue>>)>,
        shutdown: &mut bool,
    ) {
        match op {
            Op::Write(write, reply) => writes.push((write, reply)),
            Op::Compact(revision, reply) => self.start_compaction(revision, reply),
            Op::Shutdown => *shutdown = true,
        }
    }

    /// Applies a batch in one transaction, then publishes and answers.
    fn commit_batch(&mut self, batch: Vec<(Write, oneshot::Sender<Result<KeyValue>>)>) {
        match apply_batch(&mut self.conn, batch.iter().map(|(write, _)| write)) {
            Ok((outcomes, events, current)) => {
                self.shared.current.store(current.0, Ordering::SeqCst);
                if !events.is_empty() {
                    // No receivers is fine: nobody is watching.
                    let _ = self.events.send(events.into());
                }
                for ((_, reply), outcome) in batch.into_iter().zip(outcomes) {
                    // A caller that stopped waiting does not undo its write.
                    let _ = reply.send(outcome);
                }
            }
            Err(error) => {
                tracing::warn!(%error, writes = batch.len(), "sqlite store: write batch failed");
                for (_, reply) in batch {
                    let _ = reply.send(Err(copy_error(&error)));
                }
            }
        }
    }

    fn start_compaction(&mut self, revision: Revision, reply: oneshot::Sender<Result<()>>) {
        match self.accept_compaction(revision) {
            Ok(true) => match &mut self.compaction {
                Some(compaction) => compaction.waiters.push(reply),
                None => {
                    let _ = reply.send(Ok(()));
                }
            },
            Ok(false) => {
                let _ = reply.send(Ok(()));
            }
            Err(error) => {
                let _ = reply.send(Err(error));
            }
        }
    }

    /// Checks a compaction request and, if it raises the compacted revision, records the new one
    /// (durably, before any row goes, so that reads below it fail from now on). Returns whether the
    /// caller must wait for a compaction to finish.
    fn accept_compaction(&mut self, revision: Revision) -> Result<bool> {
        let current = self.shared.current.load(Ordering::SeqCst);
        let compacted = self.shared.compacted.load(Ordering::SeqCst);
        if revision.0 > current {
            return Err(Error::FutureRevision {
                requested: revision,
                current: Revision(current),
            });
        }
        if revision.0 < compacted {
            return Err(Error::Compacted {
                requested: revision,
                oldest: Revision(compacted),
            });
        }
        if revision.0 == compacted {
            return Ok(self.compaction.is_some());
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql_error)?;
        set_meta(&tx, "compact_revision", revision.0)?;
        tx.commit().map_err(sql_error)?;
        self.shared.compacted.store(revision.0, Ordering::SeqCst);
        match &mut self.compaction {
            Some(compaction) => compaction.target = revision.0,
            None => {
                self.compaction = Some(Compaction {
                    target: revision.0,
                    progress: meta(&self.conn, "compact_progress")?,
                    waiters: Vec::new(),
                });
            }
        }
        Ok(true)
    }

    /// Runs one chunk of the compaction in progress; answers its callers when it is done.
    fn compact_chunk(&mut self) {
        let Some(compaction) = &mut self.compaction else {
            return;
        };
        let lo = compaction.progress;
        let hi = compaction.target.min(lo.saturating_add(COMPACT_CHUNK));
        match compact_range(&mut self.conn, lo, hi) {
            Ok(removed) => {
                compaction.progress = hi;
                tracing::trace!(lo, hi, removed, "sqlite store: compacted a chunk");
                if hi >= compaction.target {
                    tracing::debug!(revision = hi, "sqlite store: compaction done");
                    for reply in compaction.waiters.drain(..) {
                        let _ = reply.send(Ok(()));
                    }
                    self.compaction = None;
                }
            }
            Err(error) => {
                // The compacted revision is already recorded; the rows left behind are only
                // garbage, and the next open or compaction resumes from `progress`.
                tracing::warn!(%error, "sqlite store: compaction chunk failed");
                for reply in compaction.waiters.drain(..) {
                    let _ = reply.send(Err(copy_error(&error)));
                }
                self.compaction = None;
            }
        }
    }
}

/// What one write did: its answer, and its event if it changed something.
type Applied = (Result<KeyValue>, Option<Event>);

/// Applies writes in one IMMEDIATE transaction and commits. Returns each write's answer, the
/// events in revision order, and the revision after the batch. An error here (SQL, I/O) means
/// nothing was committed.
fn apply_batch<'a>(
    conn: &mut Connection,
    writes: impl Iterator<Item = &'a Write>,
) -> Result<(Vec<Result<KeyValue>>, Vec<Event>, Revision)> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql_error)?;
    // Read, not cached: the truth is the file, whatever happened to an earlier failed commit.
    let mut current = current_revision(&tx)?.0;
    let mut outcomes = Vec::new();
    let mut events = Vec::new();
    for write in writes {
        let (outcome, event) = apply_write(&tx, write, current + 1)?;
        if let Some(event) = event {
            current += 1;
            events.push(event);
        }
        outcomes.push(outcome);
    }
    tx.commit().map_err(sql_error)?;
    Ok((outcomes, events, Revision(current)))
}

/// Applies one write at revision `id` inside the batch's transaction. A failed compare is an
/// `Ok((Err(..), None))`: the write's own error, nothing written.
fn apply_write(conn: &Connection, write: &Write, id: i64) -> Result<Applied> {
    match write {
        Write::Create { key, value } => {
            let latest = latest_row(conn, key)?;
            let prev_revision = match latest {
                Some(row) if !row.deleted => {
                    return Ok((
                        Err(Error::AlreadyExists {
                            key: key.clone(),
                            current: Box::new(row.into_key_value(key)),
                        }),
                        None,
                    ));
                }
                Some(row) => row.id,
                None => 0,
            };
            insert_row(
                conn,
                &NewRow {
                    id,
                    key,
                    created: true,
                    deleted: false,
                    create_revision: id,
                    prev_revision,
                    value,
                },
            )?;
            let kv = KeyValue {
                key: key.clone(),
                value: value.clone(),
                create_revision: Revision(id),
                mod_revision: Revision(id),
            };
            let event = Event {
                kind: EventKind::Created,
                kv: kv.clone(),
                prev: None,
            };
            Ok((Ok(kv), Some(event)))
        }
        Write::Update {
            key,
            value,
            expected,
        } => {
            let prev = match checked_latest(conn, key, *expected)? {
                Ok(prev) => prev,
                Err(error) => return Ok((Err(error), None)),
            };
            insert_row(
                conn,
                &NewRow {
                    id,
                    key,
                    created: false,
                    deleted: false,
                    create_revision: prev.create_revision.0,
                    prev_revision: prev.mod_revision.0,
                    value,
                },
            )?;
            let kv = KeyValue {
                key: key.clone(),
                value: value.clone(),
                create_revision: prev.create_revision,
                mod_revision: Revision(id),
            };
            let event = Event {
                kind: EventKind::Updated,
                kv: kv.clone(),
                prev: Some(prev),
            };
            Ok((Ok(kv), Some(event)))
        }
        Write::Delete { key, expected } => {
            let prev = match checked_latest(conn, key, *expected)? {
                Ok(prev) => prev,
                Err(error) => return Ok((Err(error), None)),
            };
            insert_row(
                conn,
                &NewRow {
                    id,
                    key,
                    created: false,
                    deleted: true,
                    create_revision: prev.create_revision.0,
                    prev_revision: prev.mod_revision.0,
                    value: &prev.value,
                },
            )?;
            let kv = KeyValue {
                mod_revision: Revision(id),
                ..prev.clone()
            };
            let event = Event {
                kind: EventKind::Deleted,
                kv: kv.clone(),
                prev: Some(prev),
            };
            Ok((Ok(kv), Some(event)))
        }
    }
}

/// The live value of `key` if its `mod_revision` is `expected`; otherwise the caller's error.
fn checked_latest(conn: &Connection, key: &str, expected: Revision) -> Result<Result<KeyValue>> {
    match latest_row(conn, key)? {
        Some(row) if !row.deleted => {
            let current = row.into_key_value(key);
            if current.mod_revision == expected {
                Ok(Ok(current))
            } else {
                Ok(Err(Error::Conflict {
                    key: key.to_owned(),
                    expected,
                    actual: current.mod_revision,
                    current: Box::new(current),
                }))
            }
        }
        _ => Ok(Err(Error::NotFound {
            key: key.to_owned(),
        })),
    }
}

/// Compacts revisions `(lo, hi]` in one transaction: drops every row superseded by a later row in
/// the range (the rows those later rows name as `prev_revision`) and every tombstone in the range.
/// Returns how many rows went.
fn compact_range(conn: &mut Connection, lo: i64, hi: i64) -> Result<usize> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql_error)?;
    let superseded = tx
        .prepare_cached(
            "DELETE FROM kv WHERE id IN
               (SELECT prev_revision FROM kv WHERE id > ?1 AND id <= ?2 AND prev_revision > 0)",
        )
        .and_then(|mut stmt| stmt.execute(params![lo, hi]))
        .map_err(sql_error)?;
    let tombstones = tx
        .prepare_cached("DELETE FROM kv WHERE id > ?1 AND id <= ?2 AND deleted = 1")
        .and_then(|mut stmt| stmt.execute(params![lo, hi]))
        .map_err(sql_error)?;
    set_meta(&tx, "compact_progress", hi)?;
    tx.commit().map_err(sql_error)?;
    Ok(superseded + tombstones)
}

/// Errors are not `Clone`; a batch failure is reported to each of its callers.
fn copy_error(error: &Error) -> Error {
    match error {
        Error::Internal(message) => Error::Internal(message.clone()),
        Error::Corrupt(message) => Error::Corrupt(message.clone()),
        other => Error::Unavailable(other.to_string()),
    }
}

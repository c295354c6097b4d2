//! Watch streams: replay from the database, then live events from the writer, with no gap and no
//! duplicate.
//!
//! # States
//! - **Replay**: read the next chunk of rows with ids above `seen` under the prefix from a read
//!   snapshot. A short chunk means the snapshot is exhausted: `seen` becomes the snapshot's current
//!   revision and the stream goes **Live**.
//! - **Live**: take committed batches from the writer's broadcast channel, skipping revisions up to
//!   `seen` (already replayed) and keys outside the prefix.
//! - **Done**: the stream has ended (after an error item).
//!
//! The broadcast receiver is created before the first replay read, so every commit either is in
//! that read's snapshot or arrives on the channel afterwards.
//!
//! # Recovery
//! The channel is bounded and the writer never waits for it. A watcher that falls more than the
//! channel's capacity behind gets `Lagged` from it and goes back to **Replay** from `seen`: it
//! catches up from the database, then continues live. If compaction has meanwhile removed history
//! above `seen`, the stream ends with [`Error::Compacted`](crate::Error::Compacted).

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

use super::Shared;
use super::schema::{current_revision, event_rows, meta, prefix_end};
use super::writer::Batch;
use crate::{Error, Event, Result, Revision, WatchStream};

/// Rows read from the database per replay step.
const REPLAY_CHUNK: usize = 512;

/// Where a watch stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Replay,
    Live,
    Done,
}

/// A watch stream's state between items.
struct Watch {
    shared: Arc<Shared>,
    prefix: String,
    end: Vec<u8>,
    /// Every revision up to here has been examined (delivered or filtered out).
    seen: Revision,
    events: broadcast::Receiver<Batch>,
    pending: VecDeque<Event>,
    phase: Phase,
}

/// A stream of events under `prefix` after `after`. `events` must have been subscribed before
/// this call, so that nothing committed from now on can be missed.
pub(super) fn stream(
    shared: Arc<Shared>,
    events: broadcast::Receiver<Batch>,
    prefix: &str,
    after: Revision,
) -> WatchStream {
    let watch = Watch {
        shared,
        prefix: prefix.to_owned(),
        end: prefix_end(prefix),
        seen: after,
        events,
        pending: VecDeque::new(),
        phase: Phase::Replay,
    };
    Box::pin(futures::stream::unfold(watch, Watch::next))
}

impl Watch {
    async fn next(mut self) -> Option<(Result<Event>, Self)> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some((Ok(event), self));
            }
            let step = match self.phase {
                Phase::Done => return None,
                Phase::Replay => self.replay().await,
                Phase::Live => self.live().await,
            };
            if let Err(error) = step {
                self.phase = Phase::Done;
                return Some((Err(error), self));
            }
        }
    }

    /// Reads the next chunk of history from the database.
    async fn replay(&mut self) -> Result<()> {
        let seen = self.seen;
        let start = self.prefix.as_bytes().to_vec();
        let end = self.end.clone();
        let (events, snapshot) = self
            .shared
            .pool
            .run(move |conn| {
                let tx = conn.unchecked_transaction().map_err(super::sql_error)?;
                let compacted = meta(&tx, "compact_revision")?;
                if seen.0 < compacted {
                    return Err(Error::Compacted {
                        requested: seen,
                        oldest: Revision(compacted),
                    });
                }
                let current = current_revision(&tx)?;
                let events = event_rows(&tx, seen, current, &start, &end, REPLAY_CHUNK)?;
                Ok((events, current))
            })
            .await?;
        if events.len() < REPLAY_CHUNK {
            self.seen = self.seen.max(snapshot);
            self.phase = Phase::Live;
        }
        if let Some(last) = events.last() {
            self.seen = self.seen.max(last.revision());
        }
        self.pending.extend(events);
        Ok(())
    }

    /// Waits for the next committed batch.
    async fn live(&mut self) -> Result<()> {
        match self.events.recv().await {
            Ok(batch) => {
                for event in batch.iter() {
                    if event.revision() <= self.seen {
                        continue;
                    }
                    self.seen = event.revision();
                    if event.kv.key.starts_with(&self.prefix) {
                        self.pending.push_back(event.clone());
                    }
                }
                Ok(())
            }
            Err(RecvError::Lagged(missed)) => {
                tracing::debug!(missed, seen = %self.seen, "sqlite store: watcher lagged, replaying");
                self.phase = Phase::Replay;
                Ok(())
            }
            Err(RecvError::Closed) => Err(super::pool::closed()),
        }
    }
}

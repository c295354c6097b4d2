//! Watches on etcd that survive a lost member: a task follows one gRPC watch stream and, when the
//! stream breaks, opens a new one on the next endpoint from the revision after the last event it
//! delivered.
//!
//! # States
//! - **Opening**: a watch is created on the preferred endpoint from revision `next`, with
//!   `prev_kv` and the require-leader metadata (a member that loses its leader cancels the watch
//!   instead of going silent).
//! - **Following**: events are converted and sent to the stream's reader, in order; `next` moves
//!   past each revision only once its events have been handed over, so a resumed watch neither
//!   repeats nor skips an event.
//!
//! # Recovery
//! A broken stream (connection lost, member without leader, watch cancelled) goes back to
//! Opening on the next endpoint, with a short backoff. A watch cancelled because `next` has been
//! compacted ends the stream with [`Error::Compacted`] (the reader relists). After
//! [`EtcdOptions::retry_timeout`](super::EtcdOptions::retry_timeout) without progress the stream
//! ends with [`Error::Unavailable`]. Dropping the stream ends the task and its gRPC stream.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;

use super::Inner;
use super::client::Client;
use super::proto::etcdserverpb::watch_client::WatchClient;
use super::proto::etcdserverpb::watch_request::RequestUnion;
use super::proto::etcdserverpb::{WatchCreateRequest, WatchRequest, WatchResponse};
use crate::{Error, Event, Result, Revision, WatchStream};

/// Events buffered between the task and the reader; when full, the task waits, the gRPC stream's
/// flow control holds etcd back, and etcd keeps the backlog in its history.
const BUFFER: usize = 256;

/// Every event under `[key, end)` (one key when `end` is empty) after revision `after`.
pub(crate) fn prefix(inner: Arc<Inner>, key: Vec<u8>, end: Vec<u8>, after: i64) -> WatchStream {
    let (tx, rx) = mpsc::channel(BUFFER);
    tokio::spawn(run(inner, key, end, after, tx));
    Box::pin(ReceiverStream::new(rx))
}

/// Every event on one key after revision `after`.
pub(crate) fn single_key(inner: Arc<Inner>, key: Vec<u8>, after: i64) -> WatchStream {
    prefix(inner, key, Vec::new(), after)
}

/// How a followed stream ended.
enum Ended {
    /// The reader dropped the stream (or was handed an error and so the stream is over).
    ReaderGone,
    /// The revision to resume from has been compacted; etcd's compacted revision.
    Compacted(i64),
    /// The stream broke; `progressed` if it delivered anything first.
    Broken { why: String, progressed: bool },
}

async fn run(
    inner: Arc<Inner>,
    key: Vec<u8>,
    end: Vec<u8>,
    after: i64,
    tx: mpsc::Sender<Result<Event>>,
) {
    let mut next = after + 1;
    let mut failures: u32 = 0;
    let mut failing_since: Option<Instant> = None;
    let retry_timeout = inner.client().options.retry_timeout;
    loop {
        let (index, channel) = inner.client().preferred();
        match follow(&inner, channel, &key, &end, &mut next, &tx).await {
            Ended::ReaderGone => return,
            Ended::Compacted(oldest) => {
                let _ = tx
                    .send(Err(Error::Compacted {
                        requested: Revision(next - 1),
                        oldest: Revision(oldest),
                    }))
                    .await;
                return;
            }
            Ended::Broken { why, progressed } => {
                if progressed {
                    failures = 0;
                    failing_since = None;
                }
                failures += 1;
                let since = *failing_since.get_or_insert_with(Instant::now);
                inner.client().failed(index, &why);
                if since.elapsed() >= retry_timeout {
                    let _ = tx
                        .send(Err(Error::Unavailable(format!(
                            "etcd watch: no endpoint answered within {retry_timeout:?}; last error: {why}"
                        ))))
                        .await;
                    return;
                }
                tokio::select! {
                    _ = tokio::time::sleep(Client::backoff(failures)) => {}
                    _ = tx.closed() => return,
                }
            }
        }
    }
}

fn create_request(key: &[u8], end: &[u8], start_revision: i64) -> WatchRequest {
    WatchRequest {
        request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
            key: key.to_vec(),
            range_end: end.to_vec(),
            start_revision,
            prev_kv: true,
            ..WatchCreateRequest::default()
        })),
    }
}

/// Opens a watch stream on `channel` from `start_revision`. The returned sender keeps the request
/// side open (etcd ends a watch whose client closed its side).
async fn open(
    inner: &Inner,
    channel: tonic::transport::Channel,
    key: &[u8],
    end: &[u8],
    start_revision: i64,
) -> std::result::Result<(tonic::Streaming<WatchResponse>, mpsc::Sender<WatchRequest>), String> {
    let (requests, request_rx) = mpsc::channel(1);
    requests
        .send(create_request(key, end, start_revision))
        .await
        .map_err(|_| "the watch request channel closed".to_owned())?;
    let client = inner.client();
    let attempt = client.options.attempt_timeout;
    let opened = async {
        client.login(channel.clone()).await?;
        let request = client.request(ReceiverStream::new(request_rx));
        WatchClient::new(channel).watch(request).await
    };
    match tokio::time::timeout(attempt, opened).await {
        Ok(Ok(response)) => Ok((response.into_inner(), requests)),
        Ok(Err(status)) => {
            // A refused token is forgotten, so the next attempt logs in again.
            client.token_refused(&status);
            Err(format!("{:?}: {}", status.code(), status.message()))
        }
        Err(_) => Err(format!("no answer within {attempt:?}")),
    }
}

async fn follow(
    inner: &Inner,
    channel: tonic::transport::Channel,
    key: &[u8],
    end: &[u8],
    next: &mut i64,
    tx: &mpsc::Sender<Result<Event>>,
) -> Ended {
    let opened = tokio::select! {
        opened = open(inner, channel, key, end, *next) => opened,
        _ = tx.closed() => return Ended::ReaderGone,
    };
    let (mut stream, _requests) = match opened {
        Ok(opened) => opened,
        Err(why) => {
            return Ended::Broken {
                why,
                progressed: false,
            };
        }
    };
    let mut progressed = false;
    loop {
        let message = tokio::select! {
            message = stream.message() => message,
            _ = tx.closed() => return Ended::ReaderGone,
        };
        let response = match message {
            Ok(Some(response)) => response,
            Ok(None) => {
                return Ended::Broken {
                    why: "the watch stream ended".into(),
                    progressed,
                };
            }
            Err(status) => {
                return Ended::Broken {
                    why: format!("{:?}: {}", status.code(), status.message()),
                    progressed,
                };
            }
        };
        if response.compact_revision > 0 {
            return Ended::Compacted(response.compact_revision);
        }
        if response.canceled {
            return Ended::Broken {
                why: format!("the watch was cancelled: {}", response.cancel_reason),
                progressed,
            };
        }
        if let Some(header) = &response.header {
            inner.client().saw(header.revision);
        }
        for event in &response.events {
            let Some(kv) = &event.kv else { continue };
            let revision = kv.mod_revision;
            if !inner.is_compact_key(&kv.key) {
                let converted = inner.event(event);
                let failed = converted.is_err();
                if tx.send(converted).await.is_err() || failed {
                    return Ended::ReaderGone;
                }
            }
            *next = revision + 1;
            progressed = true;
        }
    }
}

/// etcd's compacted revision, if `start_revision` is below it: a watch from there is cancelled
/// with `compact_revision` set. `None` if the watch starts (nothing compacted there) or breaks.
pub(crate) async fn probe_compaction(
    inner: Arc<Inner>,
    key: Vec<u8>,
    start_revision: i64,
) -> Option<i64> {
    let (_, channel) = inner.client().preferred();
    let (mut stream, _requests) = open(&inner, channel, &key, &[], start_revision)
        .await
        .ok()?;
    loop {
        let response = stream.message().await.ok()??;
        if response.compact_revision > 0 {
            return Some(response.compact_revision);
        }
        if response.canceled || !response.events.is_empty() {
            return None;
        }
    }
}

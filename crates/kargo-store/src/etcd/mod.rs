//! The etcd backend: the [`Store`] contract on an etcd v3 cluster, for several `kargo server`
//! replicas that share one store.
//!
//! - Keys are `prefix + key` ([`EtcdOptions::prefix`], empty by default); revisions are etcd's
//!   own (`mod_revision` is the `resourceVersion`, as under kube-apiserver).
//! - **Writes** are single transactions with a compare on the key's `mod_revision`: create =
//!   `mod == 0 ? put : get`, update = `mod == expected ? put : get`, delete =
//!   `mod == expected ? delete : get`. A failed compare answers with the current value in the
//!   same round trip.
//! - **Failover** (`client.rs`): a request that fails on one endpoint in a way another member may
//!   not share is sent again to the next one. A write sent again whose compare then fails may
//!   be its own earlier attempt, applied with its reply lost; [`EtcdStore`] settles that from the
//!   history before it answers `Conflict` or `AlreadyExists` (see the write methods).
//! - **Watch** (`watch.rs`): one gRPC watch stream per call, resumed on another endpoint from the
//!   revision after the last delivered one when the stream breaks; when that revision has been
//!   compacted the stream ends with [`Error::Compacted`].
//! - **Compaction** is etcd's `Compact`, and the compacted revision is also recorded in the key
//!   `prefix + "compact_rev_key"` (kube-apiserver's name for the same record) so that every
//!   replica can answer [`Store::compacted_revision`]; recording it is a write, so a compaction
//!   moves the revision counter by one. Lists and watches never show that key.

mod client;
pub(crate) mod proto;
mod watch;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use proto::etcdserverpb::kv_client::KvClient;
use proto::etcdserverpb::request_op::Request as Op;
use proto::etcdserverpb::response_op::Response as OpResponse;
use proto::etcdserverpb::{
    CompactionRequest, Compare, DeleteRangeRequest, PutRequest, RangeRequest, RangeResponse,
    RequestOp, TxnRequest, TxnResponse,
};
use proto::mvccpb;

use client::Client;
pub use client::{EtcdCredentials, EtcdOptions, EtcdTls};

use crate::{Error, Event, EventKind, KeyValue, ListPage, ListRequest, Result, Revision, Store};

/// The key, under the prefix, that records the compacted revision (as decimal text).
const COMPACT_KEY: &str = "compact_rev_key";

/// How long to look through history when settling whether a retried write was applied.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(5);

/// A [`Store`] on an etcd cluster.
#[derive(Clone)]
pub struct EtcdStore {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    client: Client,
    prefix: Vec<u8>,
    compact_key: Vec<u8>,
}

/// The end of the range of keys that start with `prefix` (etcd's `GetPrefixRangeEnd`): the
/// prefix with its last byte below 0xff incremented; `"\0"` (no upper bound) when there is none.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

impl EtcdStore {
    /// Connects to the cluster and checks that some endpoint answers (retrying for
    /// [`EtcdOptions::retry_timeout`]).
    pub async fn connect(options: EtcdOptions) -> Result<EtcdStore> {
        let prefix = options.prefix.as_bytes().to_vec();
        let mut compact_key = prefix.clone();
        compact_key.extend_from_slice(COMPACT_KEY.as_bytes());
        let store = EtcdStore {
            inner: Arc::new(Inner {
                client: Client::new(options)?,
                prefix,
                compact_key,
            }),
        };
        store.current_revision().await?;
        Ok(store)
    }

    fn key(&self, key: &str) -> Vec<u8> {
        let mut full = self.inner.prefix.clone();
        full.extend_from_slice(key.as_bytes());
        full
    }

    fn client(&self) -> &Client {
        &self.inner.client
    }

    async fn range(&self, what: &str, request: RangeRequest) -> Result<RangeResponse> {
        let reply = self
            .client()
            .run(what, |channel| {
                let request = self.client().request(request.clone());
                async move {
                    KvClient::new(channel)
                        .range(request)
                        .await
                        .map(tonic::Response::into_inner)
                }
            })
            .await?
            .value;
        self.saw(&reply.header);
        Ok(reply)
    }

    async fn txn(&self, what: &str, request: TxnRequest) -> Result<client::Attempt<TxnResponse>> {
        let reply = self
            .client()
            .run(what, |channel| {
                let request = self.client().request(request.clone());
                async move {
                    KvClient::new(channel)
                        .txn(request)
                        .await
                        .map(tonic::Response::into_inner)
                }
            })
            .await?;
        self.saw(&reply.value.header);
        Ok(reply)
    }

    fn saw(&self, header: &Option<proto::etcdserverpb::ResponseHeader>) {
        if let Some(h) = header {
            self.client().saw(h.revision);
        }
    }

    /// The compacted revision as recorded in [`COMPACT_KEY`], with that key's `mod_revision`.
    async fn recorded_compaction(&self) -> Result<(Revision, i64)> {
        let reply = self
            .range(
                "get compacted revision",
                RangeRequest {
                    key: self.inner.compact_key.clone(),
                    ..RangeRequest::default()
                },
            )
            .await?;
        Ok(match reply.kvs.first() {
            Some(kv) => (
                Revision(
                    std::str::from_utf8(&kv.value)
                        .ok()
                        .and_then(|s| s.trim().parse().ok())
                        .unwrap_or(0),
                ),
                kv.mod_revision,
            ),
            None => (Revision::ZERO, 0),
        })
    }

    /// The revision etcd itself is compacted to, when it said that `requested` is compacted: a
    /// watch from `requested` is cancelled with it. Falls back to the recorded revision.
    async fn compacted_below(&self, requested: Revision) -> Revision {
        let recorded = self
            .recorded_compaction()
            .await
            .map(|(r, _)| r)
            .unwrap_or(Revision::ZERO);
        let probe = watch::probe_compaction(
            self.inner.clone(),
            self.inner.compact_key.clone(),
            requested.0.max(1),
        );
        match tokio::time::timeout(SETTLE_TIMEOUT, probe).await {
            Ok(Some(oldest)) => Revision(oldest.max(recorded.0)),
            _ => recorded,
        }
    }

    /// Fills in the revisions of a `Compacted` or `FutureRevision` error for a read at
    /// `requested`.
    async fn revision_error(&self, error: Error, requested: Revision) -> Error {
        match error {
            Error::Compacted { .. } => Error::Compacted {
                requested,
                oldest: self.compacted_below(requested).await,
            },
            Error::FutureRevision { .. } => match self.current_revision().await {
                Ok(current) => Error::FutureRevision { requested, current },
                Err(e) => e,
            },
            other => other,
        }
    }

    /// The first change of `key` after revision `after`, if history still has it. Used to settle
    /// whether a write whose reply was lost was applied: a compare-and-swap on `after` can only
    /// have been applied as the very next change of the key.
    async fn next_change(&self, key: &[u8], after: i64) -> Option<Event> {
        let stream = watch::single_key(self.inner.clone(), key.to_vec(), after);
        let mut stream = std::pin::pin!(stream);
        match tokio::time::timeout(SETTLE_TIMEOUT, stream.next()).await {
            Ok(Some(Ok(event))) => Some(event),
            _ => None,
        }
    }

    fn compare_mod(&self, key: &[u8], revision: i64) -> Compare {
        Compare {
            result: CompareResult::Equal as i32,
            target: CompareTarget::Mod as i32,
            key: key.to_vec(),
            target_union: Some(TargetUnion::ModRevision(revision)),
            range_end: Vec::new(),
        }
    }

    fn get_op(&self, key: &[u8]) -> RequestOp {
        RequestOp {
            request: Some(Op::RequestRange(RangeRequest {
                key: key.to_vec(),
                ..RangeRequest::default()
            })),
        }
    }

    /// The key's value from the `get` of a transaction's failure branch.
    fn failure_value(&self, reply: &TxnResponse) -> Result<Option<KeyValue>> {
        match reply.responses.first().and_then(|r| r.response.as_ref()) {
            Some(OpResponse::ResponseRange(range)) => {
                range.kvs.first().map(|kv| self.kv(kv)).transpose()
            }
            _ => Err(Error::Internal(
                "etcd: a failed transaction without its read".into(),
            )),
        }
    }

    /// Converts an etcd key-value whose key is under the prefix.
    fn kv(&self, kv: &mvccpb::KeyValue) -> Result<KeyValue> {
        Ok(KeyValue {
            key: self.user_key(&kv.key)?,
            value: kv.value.clone(),
            create_revision: Revision(kv.create_revision),
            mod_revision: Revision(kv.mod_revision),
        })
    }

    fn user_key(&self, key: &[u8]) -> Result<String> {
        let rest = key
            .strip_prefix(self.inner.prefix.as_slice())
            .ok_or_else(|| {
                Error::Internal("etcd returned a key outside the store's prefix".into())
            })?;
        String::from_utf8(rest.to_vec())
            .map_err(|_| Error::Internal("etcd returned a key that is not UTF-8".into()))
    }

    fn header_revision(reply: &TxnResponse) -> Result<i64> {
        reply
            .header
            .as_ref()
            .map(|h| h.revision)
            .ok_or_else(|| Error::Internal("etcd: a reply without header".into()))
    }
}

impl Inner {
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    pub(crate) fn is_compact_key(&self, key: &[u8]) -> bool {
        key == self.compact_key.as_slice()
    }

    /// Converts a watch event on a key under the prefix.
    pub(crate) fn event(&self, event: &mvccpb::Event) -> Result<Event> {
        let convert = |kv: &mvccpb::KeyValue| -> Result<KeyValue> {
            let rest = kv
                .key
                .strip_prefix(self.prefix.as_slice())
                .ok_or_else(|| Error::Internal("etcd: an event outside the prefix".into()))?;
            Ok(KeyValue {
                key: String::from_utf8(rest.to_vec())
                    .map_err(|_| Error::Internal("etcd: an event key that is not UTF-8".into()))?,
                value: kv.value.clone(),
                create_revision: Revision(kv.create_revision),
                mod_revision: Revision(kv.mod_revision),
            })
        };
        let kv = event
            .kv
            .as_ref()
            .ok_or_else(|| Error::Internal("etcd: an event without key".into()))?;
        let prev = event.prev_kv.as_ref().map(convert).transpose()?;
        if event.r#type == mvccpb::event::EventType::Delete as i32 {
            // etcd's DELETE carries only the key and the deletion's revision: the last value
            // comes from `prev_kv`.
            let last = prev.clone().ok_or_else(|| {
                Error::Internal("etcd: a deletion event without its previous value".into())
            })?;
            return Ok(Event {
                kind: EventKind::Deleted,
                kv: KeyValue {
                    mod_revision: Revision(kv.mod_revision),
                    ..last
                },
                prev,
            });
        }
        let kv = convert(kv)?;
        let kind = if kv.create_revision == kv.mod_revision {
            EventKind::Created
        } else {
            EventKind::Updated
        };
        Ok(Event {
            kind,
            prev: if kind == EventKind::Created {
                None
            } else {
                prev
            },
            kv,
        })
    }
}

#[async_trait]
impl Store for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let reply = self
            .range(
                "get",
                RangeRequest {
                    key: self.key(key),
                    ..RangeRequest::default()
                },
            )
            .await?;
        reply.kvs.first().map(|kv| self.kv(kv)).transpose()
    }

    async fn list(&self, request: ListRequest) -> Result<ListPage> {
        let prefix = self.key(&request.prefix);
        let end = prefix_end(&prefix);
        let start = match &request.start_after {
            Some(after) if after.as_str() >= request.prefix.as_str() => {
                let mut start = self.key(after);
                start.push(0);
                start
            }
            _ => prefix.clone(),
        };
        // etcd takes no empty key; "\0" is the smallest one.
        let start = if start.is_empty() { vec![0] } else { start };
        let requested = request.revision;
        if let Some(r) = requested
            && r.0 <= 0
        {
            // etcd's revision 0 means "latest"; the store's means "before the first write".
            let oldest = self.compacted_revision().await?;
            if oldest > r {
                return Err(Error::Compacted {
                    requested: r,
                    oldest,
                });
            }
            return Ok(ListPage {
                kvs: Vec::new(),
                revision: r,
                more: false,
            });
        }
        let bounded = end != [0];
        if bounded && start >= end {
            let current = self.current_revision().await?;
            return Ok(ListPage {
                kvs: Vec::new(),
                revision: requested.unwrap_or(current),
                more: false,
            });
        }
        // The compaction record may sit in the range: ask for one more key and drop it.
        let holds_record = self.inner.compact_key.as_slice() >= start.as_slice()
            && (!bounded || self.inner.compact_key < end);
        let limit = match request.limit {
            Some(n) if n > 0 => n as i64 + i64::from(holds_record),
            _ => 0,
        };
        let reply = self
            .range(
                "list",
                RangeRequest {
                    key: start,
                    range_end: end,
                    limit,
                    revision: requested.map_or(0, |r| r.0),
                    ..RangeRequest::default()
                },
            )
            .await;
        let reply = match reply {
            Ok(reply) => reply,
            Err(e) => return Err(self.revision_error(e, requested.unwrap_or_default()).await),
        };
        let mut kvs = reply
            .kvs
            .iter()
            .filter(|kv| !self.inner.is_compact_key(&kv.key))
            .map(|kv| self.kv(kv))
            .collect::<Result<Vec<_>>>()?;
        let mut more = reply.more;
        if let Some(n) = request.limit.filter(|n| *n > 0)
            && kvs.len() > n
        {
            kvs.truncate(n);
            more = true;
        }
        let revision = match requested {
            Some(r) => r,
            None => Revision(reply.header.map_or(0, |h| h.revision)),
        };
        Ok(ListPage {
            kvs,
            revision,
            more,
        })
    }

    /// `mod == 0 ? put : get`. A retried create that finds the key holding exactly its value,
    /// created (never since changed) after the first attempt was sent, takes it as its own
    /// earlier attempt: another writer would have had to create the same key with the same bytes
    /// in that window, which for the API server's objects (each with a fresh uid) cannot happen.
    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue> {
        let full = self.key(key);
        let before = self.client().seen();
        let reply = self
            .txn(
                "create",
                TxnRequest {
                    compare: vec![self.compare_mod(&full, 0)],
                    success: vec![RequestOp {
                        request: Some(Op::RequestPut(PutRequest {
                            key: full.clone(),
                            value: value.clone(),
                            ..PutRequest::default()
                        })),
                    }],
                    failure: vec![self.get_op(&full)],
                },
            )
            .await?;
        let (retried, reply) = (reply.retried, reply.value);
        if reply.succeeded {
            let revision = Revision(Self::header_revision(&reply)?);
            return Ok(KeyValue {
                key: key.to_owned(),
                value,
                create_revision: revision,
                mod_revision: revision,
            });
        }
        let current = self.failure_value(&reply)?.ok_or_else(|| {
            Error::Internal("etcd: a create compare failed on an absent key".into())
        })?;
        if retried
            && current.value == value
            && current.create_revision == current.mod_revision
            && current.create_revision.0 > before
        {
            return Ok(current);
        }
        Err(Error::AlreadyExists {
            key: key.to_owned(),
            current: Box::new(current),
        })
    }

    /// `mod == expected ? put : get`. A retried update whose compare fails looks at the key's
    /// first change after `expected`: if that is a put of its value, it was this update.
    async fn update(&self, key: &str, value: Vec<u8>, expected: Revision) -> Result<KeyValue> {
        let full = self.key(key);
        if expected.0 <= 0 {
            // `mod == 0` would match an absent key: no present key has revision 0.
            return Err(mismatch(key, expected, self.get(key).await?));
        }
        let reply = self
            .txn(
                "update",
                TxnRequest {
                    compare: vec![self.compare_mod(&full, expected.0)],
                    success: vec![RequestOp {
                        request: Some(Op::RequestPut(PutRequest {
                            key: full.clone(),
                            value: value.clone(),
                            prev_kv: true,
                            ..PutRequest::default()
                        })),
                    }],
                    failure: vec![self.get_op(&full)],
                },
            )
            .await?;
        let (retried, reply) = (reply.retried, reply.value);
        if reply.succeeded {
            let revision = Revision(Self::header_revision(&reply)?);
            let create_revision = match reply.responses.first().and_then(|r| r.response.as_ref()) {
                Some(OpResponse::ResponsePut(put)) => put
                    .prev_kv
                    .as_ref()
                    .map(|kv| Revision(kv.create_revision))
                    .ok_or_else(|| Error::Internal("etcd: a put without prev_kv".into()))?,
                _ => return Err(Error::Internal("etcd: an update without its put".into())),
            };
            return Ok(KeyValue {
                key: key.to_owned(),
                value,
                create_revision,
                mod_revision: revision,
            });
        }
        let current = self.failure_value(&reply)?;
        if retried
            && let Some(change) = self.next_change(&full, expected.0).await
            && change.kind == EventKind::Updated
            && change.kv.value == value
        {
            return Ok(change.kv);
        }
        Err(mismatch(key, expected, current))
    }

    /// `mod == expected ? delete : get`. A retried delete whose compare fails looks at the key's
    /// first change after `expected`: if that is a deletion, it was this delete.
    async fn delete(&self, key: &str, expected: Revision) -> Result<KeyValue> {
        let full = self.key(key);
        if expected.0 <= 0 {
            return Err(mismatch(key, expected, self.get(key).await?));
        }
        let reply = self
            .txn(
                "delete",
                TxnRequest {
                    compare: vec![self.compare_mod(&full, expected.0)],
                    success: vec![RequestOp {
                        request: Some(Op::RequestDeleteRange(DeleteRangeRequest {
                            key: full.clone(),
                            prev_kv: true,
                            ..DeleteRangeRequest::default()
                        })),
                    }],
                    failure: vec![self.get_op(&full)],
                },
            )
            .await?;
        let (retried, reply) = (reply.retried, reply.value);
        if reply.succeeded {
            let revision = Revision(Self::header_revision(&reply)?);
            let last = match reply.responses.first().and_then(|r| r.response.as_ref()) {
                Some(OpResponse::ResponseDeleteRange(deleted)) => deleted
                    .prev_kvs
                    .first()
                    .map(|kv| self.kv(kv))
                    .transpose()?
                    .ok_or_else(|| Error::Internal("etcd: a delete without prev_kv".into()))?,
                _ => return Err(Error::Internal("etcd: a delete without its delete".into())),
            };
            return Ok(KeyValue {
                mod_revision: revision,
                ..last
            });
        }
        let current = self.failure_value(&reply)?;
        if retried
            && let Some(change) = self.next_change(&full, expected.0).await
            && change.kind == EventKind::Deleted
        {
            return Ok(change.kv);
        }
        Err(mismatch(key, expected, current))
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<crate::WatchStream> {
        let oldest = self.compacted_revision().await?;
        if after < oldest {
            return Err(Error::Compacted {
                requested: after,
                oldest,
            });
        }
        let key = self.key(prefix);
        let end = prefix_end(&key);
        let key = if key.is_empty() { vec![0] } else { key };
        Ok(watch::prefix(self.inner.clone(), key, end, after.0))
    }

    /// etcd's `Compact`, then the record in [`COMPACT_KEY`] (compare-and-swap, never lowered).
    /// Compacting to the compacted revision again succeeds, as the contract wants (etcd itself
    /// refuses it).
    async fn compact(&self, revision: Revision) -> Result<()> {
        let (recorded, _) = self.recorded_compaction().await?;
        if revision < recorded {
            return Err(Error::Compacted {
                requested: revision,
                oldest: recorded,
            });
        }
        if revision == recorded {
            return Ok(());
        }
        let request = CompactionRequest {
            revision: revision.0,
            physical: false,
        };
        let compacted = self
            .client()
            .run("compact", |channel| {
                let request = self.client().request(request);
                async move {
                    KvClient::new(channel)
                        .compact(request)
                        .await
                        .map(tonic::Response::into_inner)
                }
            })
            .await;
        let oldest = match compacted {
            Ok(_) => revision,
            Err(Error::Compacted { .. }) => {
                // Compacted already at or above `revision` (by another replica, an operator, or
                // this call's own first attempt whose reply was lost).
                let oldest = self.compacted_below(revision).await;
                if oldest > revision {
                    self.record_compaction(oldest).await?;
                    return Err(Error::Compacted {
                        requested: revision,
                        oldest,
                    });
                }
                oldest
            }
            Err(e) => return Err(self.revision_error(e, revision).await),
        };
        self.record_compaction(oldest).await
    }

    async fn current_revision(&self) -> Result<Revision> {
        let reply = self
            .range(
                "current revision",
                RangeRequest {
                    key: self.inner.compact_key.clone(),
                    count_only: true,
                    ..RangeRequest::default()
                },
            )
            .await?;
        Ok(Revision(reply.header.map_or(0, |h| h.revision)))
    }

    async fn compacted_revision(&self) -> Result<Revision> {
        Ok(self.recorded_compaction().await?.0)
    }
}

impl EtcdStore {
    /// Raises the recorded compacted revision to `revision` (never lowers it).
    async fn record_compaction(&self, revision: Revision) -> Result<()> {
        loop {
            let (recorded, mod_revision) = self.recorded_compaction().await?;
            if recorded >= revision {
                return Ok(());
            }
            let key = self.inner.compact_key.clone();
            let reply = self
                .txn(
                    "record compaction",
                    TxnRequest {
                        compare: vec![self.compare_mod(&key, mod_revision)],
                        success: vec![RequestOp {
                            request: Some(Op::RequestPut(PutRequest {
                                key: key.clone(),
                                value: revision.0.to_string().into_bytes(),
                                ..PutRequest::default()
                            })),
                        }],
                        failure: vec![],
                    },
                )
                .await?;
            if reply.value.succeeded {
                return Ok(());
            }
        }
    }
}

/// The error of a compare-and-swap on `key` at `expected` that found `current` instead.
fn mismatch(key: &str, expected: Revision, current: Option<KeyValue>) -> Error {
    match current {
        None => Error::NotFound {
            key: key.to_owned(),
        },
        Some(current) => Error::Conflict {
            key: key.to_owned(),
            expected,
            actual: current.mod_revision,
            current: Box::new(current),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_increments_the_last_byte_below_0xff() {
        let check = |prefix: &[u8], expected: &[u8]| assert_eq!(prefix_end(prefix), expected);
        check(b"/a/", b"/a0");
        check(b"a", b"b");
        check(b"a\xff", b"b");
        check(b"a\xff\xff", b"b");
        check(b"\xff", b"\0");
        check(b"", b"\0");
    }
}

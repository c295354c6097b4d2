//! Watch: store events turned into Kubernetes watch events (`ADDED`, `MODIFIED`, `DELETED`,
//! `BOOKMARK`, `ERROR`), with selectors applied as kube-apiserver applies them (an object that
//! stops matching is `DELETED` for the watcher, one that starts matching is `ADDED`).
//!
//! # Where a watch starts
//! - `resourceVersion` unset or `"0"`: a synthetic `ADDED` for every matching object at the
//!   latest revision, then every change after it;
//! - `resourceVersion=N`: every change after N; if N has been compacted away, one `ERROR` event
//!   (410 Expired) and the end of the stream: the client relists; if the store has not reached
//!   N within 3 s, kube-apiserver's 504 `Too large resource version`.
//!
//! # Bookmarks
//! With `allowWatchBookmarks`, a `BOOKMARK` carrying the last revision the watch has passed (a
//! point the client can resume from without missing anything) about every minute and 2 s
//! before the watch's timeout, as kube-apiserver's watch cache sends them.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::{self, BoxStream};
use kargo_api::field::{BadValue, FieldError};
use kargo_api::resources::ResourceType;
use kargo_store::{Event, EventKind, Revision};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::Registry;
use super::list::ListOptions;
use super::object::{decode, parse_revision};
use crate::status::{Result, Status};

/// The type of a watch event, serialized as Kubernetes spells it (`ADDED`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WatchEventType {
    /// The object appeared for this watcher (created, or it started matching the selectors).
    Added,
    /// The object changed (and still matches).
    Modified,
    /// The object is gone for this watcher (deleted, or it stopped matching the selectors).
    Deleted,
    /// A progress mark: only `metadata.resourceVersion` (and annotations) of the object count.
    Bookmark,
    /// The watch failed; the object is a `Status`, and the stream ends.
    Error,
}

impl WatchEventType {
    /// The Kubernetes name: `ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK` or `ERROR`.
    pub fn as_str(self) -> &'static str {
        match self {
            WatchEventType::Added => "ADDED",
            WatchEventType::Modified => "MODIFIED",
            WatchEventType::Deleted => "DELETED",
            WatchEventType::Bookmark => "BOOKMARK",
            WatchEventType::Error => "ERROR",
        }
    }

    /// Whether the event carries an object of the watched kind (`ADDED`, `MODIFIED`,
    /// `DELETED`), not a bookmark or a `Status`.
    pub fn is_change(self) -> bool {
        matches!(
            self,
            WatchEventType::Added | WatchEventType::Modified | WatchEventType::Deleted
        )
    }
}

impl std::fmt::Display for WatchEventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One watch event as sent to clients.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchEvent {
    /// What happened.
    pub kind: WatchEventType,
    /// The object (a `Status` for `ERROR`).
    pub object: Value,
}

impl WatchEvent {
    /// The event as the JSON line clients read.
    pub fn to_json(&self) -> Value {
        json!({"type": self.kind.as_str(), "object": self.object})
    }

    fn error(status: &Status) -> WatchEvent {
        WatchEvent {
            kind: WatchEventType::Error,
            object: serde_json::to_value(status).unwrap_or(Value::Null),
        }
    }
}

/// The options of a watch.
#[derive(Debug, Clone, Default)]
pub struct WatchOptions {
    /// Selectors and `resourceVersion`.
    pub list: ListOptions,
    /// `allowWatchBookmarks`.
    pub allow_bookmarks: bool,
    /// `sendInitialEvents`.
    pub send_initial_events: Option<bool>,
    /// When the watch will be ended (its `timeoutSeconds`): the last bookmark goes 2 s before.
    pub timeout: Option<Duration>,
}

/// How often a watch that allows bookmarks gets one (kube-apiserver's watch cache: a minute).
const BOOKMARK_EVERY: Duration = Duration::from_secs(60);
/// How long before a watch's timeout its last bookmark goes, so that the client resumes there.
const BOOKMARK_BEFORE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a watch from a revision the store has not reached waits for it.
const FUTURE_REVISION_WAIT: Duration = Duration::from_secs(3);

/// What kube-apiserver's `validateWatchOptions` finds wrong with a watch's options (422): a
/// streaming list (`sendInitialEvents`) needs `resourceVersionMatch=NotOlderThan` and, since its
/// end is a bookmark, `allowWatchBookmarks=true`; `resourceVersionMatch` is only for a streaming
/// list, only `NotOlderThan`, and never with `continue`.
fn invalid_options(options: &WatchOptions) -> Vec<FieldError> {
    const NOT_OLDER_THAN: &str = "NotOlderThan";
    let rv_match = options
        .list
        .resource_version_match
        .as_deref()
        .filter(|m| !m.is_empty());
    let mut errors = Vec::new();
    if options.send_initial_events.is_some() {
        if rv_match != Some(NOT_OLDER_THAN) {
            errors.push(FieldError::forbidden(
                "resourceVersionMatch",
                format!(
                    "sendInitialEvents requires setting resourceVersionMatch to {NOT_OLDER_THAN}"
                ),
            ));
        }
        if !options.allow_bookmarks {
            errors.push(FieldError::forbidden(
                "allowWatchBookmarks",
                "sendInitialEvents requires setting allowWatchBookmarks to true",
            ));
        }
    }
    if let Some(rv_match) = rv_match {
        if options.send_initial_events.is_none() {
            errors.push(FieldError::forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
            ));
        }
        if rv_match != NOT_OLDER_THAN {
            errors.push(FieldError::not_supported(
                "resourceVersionMatch",
                BadValue::string(rv_match),
                &[NOT_OLDER_THAN],
            ));
        }
        if options.list.continue_token.is_some() {
            errors.push(FieldError::forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch is forbidden when continue is provided",
            ));
        }
    }
    errors
}

/// When the next bookmark goes: a minute from `now`, or 2 s before `deadline` if that is
/// sooner; none once that moment has passed (kube-apiserver's `nextBookmarkTime`).
fn next_bookmark(now: Instant, deadline: Option<Instant>) -> Option<Instant> {
    let heartbeat = now + BOOKMARK_EVERY;
    let Some(deadline) = deadline else {
        return Some(heartbeat);
    };
    let next = heartbeat.min(deadline.checked_sub(BOOKMARK_BEFORE_TIMEOUT)?);
    (next > now).then_some(next)
}

/// Waits up to 3 s for the store to reach `revision`; then kube-apiserver's 504.
async fn wait_for_revision(registry: &Registry, revision: Revision) -> Result<()> {
    let deadline = Instant::now() + FUTURE_REVISION_WAIT;
    loop {
        let current = registry.store().current_revision().await?;
        if revision <= current {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(super::list::too_large(revision, current));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A `BOOKMARK` at `revision`: the watched kind with only `metadata.resourceVersion`.
fn bookmark(rt: &ResourceType, revision: i64, annotations: Option<Value>) -> WatchEvent {
    let mut metadata = json!({"resourceVersion": revision.to_string()});
    if let Some(annotations) = annotations {
        metadata["annotations"] = annotations;
    }
    WatchEvent {
        kind: WatchEventType::Bookmark,
        object: json!({
            "kind": rt.kind,
            "apiVersion": rt.api_version(),
            "metadata": metadata,
        }),
    }
}

/// `events` with a bookmark at the last revision passed (`passed`) whenever one is due.
fn with_bookmarks(
    rt: &'static ResourceType,
    events: BoxStream<'static, WatchEvent>,
    passed: Arc<AtomicI64>,
    timeout: Option<Duration>,
) -> BoxStream<'static, WatchEvent> {
    let now = Instant::now();
    let deadline = timeout.map(|t| now + t);
    let next = next_bookmark(now, deadline);
    stream::unfold((events, next), move |(mut events, next)| {
        let passed = passed.clone();
        async move {
            let due = async {
                match next {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                event = events.next() => event.map(|event| (event, (events, next))),
                () = due => {
                    let event = bookmark(rt, passed.load(Ordering::Relaxed), None);
                    Some((event, (events, next_bookmark(Instant::now(), deadline))))
                }
            }
        }
    })
    .boxed()
}

/// Starts a watch of `rt` in `namespace` (or everywhere).
pub async fn watch(
    registry: &Registry,
    rt: &'static ResourceType,
    namespace: Option<&str>,
    options: WatchOptions,
) -> Result<BoxStream<'static, WatchEvent>> {
    let rv = options
        .list
        .resource_version
        .as_deref()
        .filter(|s| !s.is_empty());
    let errors = invalid_options(&options);
    if !errors.is_empty() {
        return Err(Status::invalid_list_options(&errors));
    }
    let initial = match (options.send_initial_events, rv) {
        (Some(send), _) => send,
        (None, None) | (None, Some("0")) => true,
        (None, Some(_)) => false,
    };
    let prefix = rt.namespace_prefix(namespace);
    let (initial_events, after) = if initial {
        let mut list_options = options.list.clone();
        list_options.limit = 0;
        list_options.continue_token = None;
        list_options.resource_version = None;
        list_options.resource_version_match = None;
        let list = registry.list(rt, namespace, &list_options).await?;
        let events: Vec<WatchEvent> = list
            .items
            .into_iter()
            .map(|object| WatchEvent {
                kind: WatchEventType::Added,
                object,
            })
            .collect();
        (events, list.resource_version)
    } else {
        let after = match rv {
            None => registry.store().current_revision().await?,
            Some(s) => {
                let revision = parse_revision(s)
                    .ok_or_else(|| Status::bad_request(format!("invalid resource version: {s}")))?;
                wait_for_revision(registry, revision).await?;
                revision
            }
        };
        (Vec::new(), after)
    };
    let mut head = initial_events;
    if options.send_initial_events == Some(true) && options.allow_bookmarks {
        let end = json!({"k8s.io/initial-events-end": "true"});
        head.push(bookmark(rt, after.0, Some(end)));
    }
    let changes = match registry.store().watch(&prefix, after).await {
        Ok(s) => s,
        Err(kargo_store::Error::Compacted { requested, oldest }) => {
            let status = Status::expired(format!(
                "too old resource version: {} ({})",
                requested,
                Revision(oldest.0.saturating_sub(1).max(0))
            ));
            return Ok(stream::iter(vec![WatchEvent::error(&status)]).boxed());
        }
        Err(e) => return Err(e.into()),
    };
    let selectors = options.list;
    // The last revision the watch has passed, filtered-out events included: a bookmark's.
    let passed = Arc::new(AtomicI64::new(after.0));
    let passing = passed.clone();
    let changes = changes
        .map(move |item| match item {
            Ok(event) => {
                passing.fetch_max(event.revision().0, Ordering::Relaxed);
                translate(rt, &selectors, &event)
            }
            Err(err) => {
                let status = match err {
                    kargo_store::Error::Compacted { requested, oldest } => {
                        Status::expired(format!("too old resource version: {requested} ({oldest})"))
                    }
                    other => Status::from(other),
                };
                Some(WatchEvent::error(&status))
            }
        })
        .filter_map(futures::future::ready);
    // An ERROR event ends the stream.
    let changes = changes.scan(false, |ended, event| {
        if *ended {
            return futures::future::ready(None);
        }
        *ended = event.kind == WatchEventType::Error;
        futures::future::ready(Some(event))
    });
    let events = stream::iter(head).chain(changes).boxed();
    if options.allow_bookmarks {
        return Ok(with_bookmarks(rt, events, passed, options.timeout));
    }
    Ok(events)
}

/// Turns a store event into what a watcher with these selectors sees, if anything.
fn translate(rt: &ResourceType, selectors: &ListOptions, event: &Event) -> Option<WatchEvent> {
    let new = match decode(&event.kv) {
        Ok(v) => v,
        Err(status) => return Some(WatchEvent::error(&status)),
    };
    let matches_new = selectors.matches(rt, &new);
    let matches_old = event
        .prev
        .as_ref()
        .and_then(|p| decode(p).ok())
        .is_some_and(|old| selectors.matches(rt, &old));
    let kind = match event.kind {
        EventKind::Created if matches_new => WatchEventType::Added,
        EventKind::Created => return None,
        EventKind::Updated => match (matches_old, matches_new) {
            (true, true) => WatchEventType::Modified,
            (false, true) => WatchEventType::Added,
            (true, false) => WatchEventType::Deleted,
            (false, false) => return None,
        },
        EventKind::Deleted if matches_new || matches_old => WatchEventType::Deleted,
        EventKind::Deleted => return None,
    };
    Some(WatchEvent { kind, object: new })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_are_written_and_read_as_kubernetes_spells_them() {
        let all = [
            (WatchEventType::Added, "ADDED"),
            (WatchEventType::Modified, "MODIFIED"),
            (WatchEventType::Deleted, "DELETED"),
            (WatchEventType::Bookmark, "BOOKMARK"),
            (WatchEventType::Error, "ERROR"),
        ];
        for (kind, name) in all {
            assert_eq!(kind.as_str(), name);
            assert_eq!(serde_json::to_value(kind).unwrap(), json!(name));
            assert_eq!(
                serde_json::from_value::<WatchEventType>(json!(name)).unwrap(),
                kind
            );
        }
        let event = WatchEvent {
            kind: WatchEventType::Modified,
            object: json!({"kind": "Secret"}),
        };
        assert_eq!(
            event.to_json(),
            json!({"type": "MODIFIED", "object": {"kind": "Secret"}})
        );
    }
}

#[cfg(test)]
mod bookmark_tests {
    use super::*;

    #[test]
    fn bookmarks_come_every_minute_and_two_seconds_before_the_timeout() {
        let now = Instant::now();
        assert_eq!(next_bookmark(now, None), Some(now + BOOKMARK_EVERY));
        let soon = now + Duration::from_secs(30);
        assert_eq!(
            next_bookmark(now, Some(soon)),
            Some(now + Duration::from_secs(28))
        );
        let later = now + Duration::from_secs(600);
        assert_eq!(next_bookmark(now, Some(later)), Some(now + BOOKMARK_EVERY));
        // Past the last moment: no more.
        assert_eq!(next_bookmark(now, Some(now + Duration::from_secs(1))), None);
    }
}

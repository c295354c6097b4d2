//! Events the server records about what it does, as a Kubernetes controller's event recorder
//! does: a `core/v1` Event about one object (`kubectl describe` and `kubectl events` show them),
//! named `<object>.<nanoseconds in hex>`, from the component `kargo-server`. Recording is a
//! note beside the work, never part of it: a failure is logged, not returned. [`expire`] deletes
//! the events older than the server's `--event-ttl`, as kube-apiserver's event TTL does.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kargo_api::resources::{EVENTS, ResourceType};
use serde_json::json;

use crate::object::{Meta, Object, now_rfc3339};
use crate::status::Result;
use crate::{DeleteOptions, ListOptions, Registry, Target, WriteOptions};

/// The component events are reported by.
pub const COMPONENT: &str = "kargo-server";

/// An event's `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Something went as it should.
    Normal,
    /// Something a person may want to look at.
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// What happened to an object: its kind, the reason (`TokenFilled`) and a sentence.
#[derive(Debug, Clone, Copy)]
pub struct Occurrence<'a> {
    /// Normal or Warning.
    pub kind: EventType,
    /// A short CamelCase reason.
    pub reason: &'a str,
    /// What happened, for a person.
    pub message: &'a str,
}

/// Records an event about `object`, of the resource type `rt`, in the object's namespace (the
/// `default` namespace for a cluster-scoped object, as Kubernetes does).
pub async fn record(
    registry: &Registry,
    rt: &ResourceType,
    object: &Object,
    occurrence: Occurrence<'_>,
) {
    let namespace = object.namespace().unwrap_or("default").to_owned();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let now = now_rfc3339();
    let api_version = if rt.group.is_empty() {
        rt.version.to_owned()
    } else {
        format!("{}/{}", rt.group, rt.version)
    };
    let mut involved = json!({
        "apiVersion": api_version,
        "kind": rt.kind,
        "name": object.name(),
        "uid": object.uid(),
        "resourceVersion": object.resource_version(),
    });
    if let Some(ns) = object.namespace() {
        involved["namespace"] = ns.into();
    }
    let body = json!({
        "metadata": {"name": format!("{}.{nanos:x}", object.name()), "namespace": namespace},
        "involvedObject": involved,
        "type": occurrence.kind.as_str(),
        "reason": occurrence.reason,
        "message": occurrence.message,
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": COMPONENT,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    });
    if let Err(e) = registry
        .create(&EVENTS, Some(&namespace), body, &WriteOptions::default())
        .await
    {
        tracing::debug!(reason = occurrence.reason, error = %e, "recording an event failed");
    }
}

/// Deletes every event whose last occurrence (else its creation) is `ttl` or more before `now`
/// (Unix seconds); returns how many it deleted.
pub async fn expire(registry: &Registry, ttl: Duration, now: i64) -> Result<usize> {
    let list = registry
        .list(&EVENTS, None, &ListOptions::default())
        .await?;
    let oldest_kept = now.saturating_sub(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX));
    let mut deleted = 0;
    for event in &list.items {
        let last = ["lastTimestamp", "eventTime", "firstTimestamp"]
            .iter()
            .find_map(|f| event.get(*f).and_then(serde_json::Value::as_str))
            .or_else(|| event.meta_str("creationTimestamp"))
            .and_then(|t| t.parse::<k8s_openapi::jiff::Timestamp>().ok())
            .map(|t| t.as_second());
        if last.is_some_and(|t| t > oldest_kept) {
            continue;
        }
        let target = Target::new(&EVENTS, event.namespace(), event.name());
        match registry
            .delete(
                target,
                &DeleteOptions::with_uid(event.uid(), crate::Propagation::Background),
            )
            .await
        {
            Ok(_) => deleted += 1,
            Err(e) if e.is_not_found() || e.is_conflict() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(deleted)
}

//! `apiserver_longrunning_requests` (watches open) and `apiserver_watch_events_total`, from
//! the watch handler: a [`WatchGuard`] lives as long as the watch's stream.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use kargo_api::resources::ResourceType;

use super::Metrics;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WatchLabels {
    verb: &'static str,
    group: &'static str,
    resource: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
}

pub(super) struct WatchMetrics {
    open: Family<WatchLabels, Gauge>,
    events: Family<EventLabels, Counter>,
}

impl WatchMetrics {
    pub(super) fn register(registry: &mut Registry) -> WatchMetrics {
        let open = Family::<WatchLabels, Gauge>::default();
        registry.register(
            "apiserver_longrunning_requests",
            "Gauge of all active long-running apiserver requests (watches), by verb, group and resource",
            open.clone(),
        );
        let events = Family::<EventLabels, Counter>::default();
        registry.register(
            "apiserver_watch_events",
            "Number of events sent in watch clients, by group, version and kind",
            events.clone(),
        );
        // Every watchable resource's series from the start, at zero, so that a dashboard
        // and `rate()` see them before the first watch.
        for rt in kargo_api::resources::ALL
            .iter()
            .filter(|r| r.verbs.contains(&"watch"))
        {
            drop(open.get_or_create(&watch_labels(rt)));
            drop(events.get_or_create(&event_labels(rt)));
        }
        WatchMetrics { open, events }
    }
}

fn watch_labels(rt: &'static ResourceType) -> WatchLabels {
    WatchLabels {
        verb: "WATCH",
        group: rt.group,
        resource: rt.plural,
    }
}

fn event_labels(rt: &'static ResourceType) -> EventLabels {
    EventLabels {
        group: rt.group,
        version: rt.version,
        kind: rt.kind,
    }
}

/// One open watch: counted open until dropped; [`WatchGuard::sent`] counts its events.
pub struct WatchGuard {
    open: Gauge,
    events: Counter,
}

impl Metrics {
    /// A watch of `rt` opened.
    pub fn watch_opened(&self, rt: &'static ResourceType) -> WatchGuard {
        let open = self.watches.open.get_or_create(&watch_labels(rt)).clone();
        open.inc();
        let events = self.watches.events.get_or_create(&event_labels(rt)).clone();
        WatchGuard { open, events }
    }
}

impl WatchGuard {
    /// One event sent.
    pub fn sent(&self) {
        self.events.inc();
    }
}

impl Drop for WatchGuard {
    fn drop(&mut self) {
        self.open.dec();
    }
}

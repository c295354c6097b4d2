//! The audit log's counters, read at each scrape: `apiserver_audit_event_total` (kube-apiserver's
//! name: events handed to the log), `kargo_audit_events_dropped_total` (the writer was behind)
//! and `kargo_audit_write_errors_total` (a write failed: a full disk). Either of the last two
//! is an event lost, and worth an alert.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;

use super::Metrics;
use crate::audit::Audit;

struct AuditCollector(Arc<Audit>);

impl std::fmt::Debug for AuditCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("AuditCollector")
            .field(&self.0.stats())
            .finish()
    }
}

impl Collector for AuditCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stats = self.0.stats();
        for (name, help, value) in [
            (
                "apiserver_audit_event",
                "Counter of audit events generated and sent to the audit log.",
                stats.events,
            ),
            (
                "kargo_audit_events_dropped",
                "Audit events dropped because the writer was behind.",
                stats.dropped,
            ),
            (
                "kargo_audit_write_errors",
                "Writes to the audit log that failed (each loses its event).",
                stats.write_errors,
            ),
        ] {
            let counter = ConstCounter::new(value);
            counter.encode(encoder.encode_descriptor(
                name,
                help,
                None,
                counter.metric_type(),
            )?)?;
        }
        Ok(())
    }
}

impl Metrics {
    /// Reports the audit log's counters at each scrape.
    pub fn watch_audit(&self, audit: Arc<Audit>) {
        self.register_collector(AuditCollector(audit));
    }
}

//! One log line per request answered with a 5xx (`InternalError`, `ServiceUnavailable`,
//! `Timeout`): what an operator looks up when a user quotes a request id. An observer of the
//! request seam ([`crate::observe`]), so every path is covered and no handler logs.
//!
//! The line names the request id, method, path (never the query, which may carry values a
//! client considers private), status, duration and user. The cause, when one is known, was
//! logged by the layer that met it, on the request's task, so with the same `request_id`.

use crate::observe::{RequestObserver, RequestRecord};

/// Logs every 5xx answer: 500 as ERROR (a fault of this server), other 5xx (an unavailable
/// store, a timeout) as WARN. A failing health check (`/livez`, `/readyz`, `/healthz`, a 500
/// by design, asked every few seconds by probes) is not logged here: the health checks log a
/// check's failure once when it starts and once when it ends.
#[derive(Debug, Default, Clone, Copy)]
pub struct FailureLog;

impl RequestObserver for FailureLog {
    fn request(&self, record: &RequestRecord<'_>) {
        if !record.status.is_server_error() || crate::health::is_health_path(record.uri.path()) {
            return;
        }
        let user = record.user.map(|u| u.username.as_str());
        let (method, path) = (record.method.as_str(), record.uri.path());
        let status = record.status.as_u16();
        let duration_ms = record.duration.as_secs_f64() * 1000.0;
        let request_id = tracing::field::display(record.id);
        if status == 500 {
            tracing::error!(
                request_id,
                method,
                path,
                status,
                duration_ms,
                user,
                "answered with a server error"
            );
        } else {
            tracing::warn!(
                request_id,
                method,
                path,
                status,
                duration_ms,
                user,
                "answered with a server error"
            );
        }
    }
}

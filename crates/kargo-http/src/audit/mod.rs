//! The audit log: one JSON line per audited request in the shape of kube-apiserver's
//! `audit.k8s.io/v1` `Event` at level `Metadata` ([`event`]), written off the request path by a
//! dedicated thread with size-based rotation ([`writer`]).
//!
//! [`Audit`] is both a [`RequestObserver`] (it sees every answered request at the request
//! seam, with its [`Notes`]) and an [`AuthObserver`] (it notes, on the request's own task, why
//! authentication failed and the authorization decision on the request's user). A request
//! yields at most one line, built from its record when it is answered.
//!
//! What is logged ([`AuditLevel`]): at `metadata` (the default) every request that may change
//! something (any method but `GET`, `HEAD`, `OPTIONS`) and every authentication failure; at
//! `request` every request. Never a request or response body, a token, a password or Secret
//! data.

pub mod event;
pub mod writer;

use std::path::PathBuf;
use std::sync::atomic::Ordering;

use kargo_auth::observe::{AuthObserver, AuthnAttempt, AuthnOutcome, AuthzDecision};

use crate::observe::{
    Decision, Notes, RequestObserver, RequestRecord, note, note_authentication_failure,
};
use event::Event;
use writer::{Sink, Writer};

/// Which requests are audited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AuditLevel {
    /// Requests that may change something, and authentication failures.
    #[default]
    Metadata,
    /// Every request (still metadata only: no bodies).
    Request,
}

/// How to audit (`--audit-log-*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditConfig {
    /// The file (`-`: standard output).
    pub path: PathBuf,
    /// Which requests.
    pub level: AuditLevel,
    /// The size in megabytes (MiB) past which the file is rotated; `0`: never.
    pub max_size_mb: u64,
    /// How many rotated files are kept; `0`: all.
    pub max_backups: usize,
}

impl AuditConfig {
    /// Where lines go.
    fn sink(&self) -> Sink {
        if self.path.as_os_str() == "-" {
            Sink::Stdout
        } else {
            Sink::File {
                path: self.path.clone(),
                max_bytes: self.max_size_mb.saturating_mul(1024 * 1024),
                max_backups: self.max_backups,
            }
        }
    }
}

/// The audit log's counters (for `/metrics`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuditStats {
    /// Events handed to the writer.
    pub events: u64,
    /// Events dropped because the writer was behind (a slow or stuck disk).
    pub dropped: u64,
    /// Writes to the log that failed (a full disk); each loses the event it carried.
    pub write_errors: u64,
}

/// The audit log: an observer of requests and of authentication and authorization.
pub struct Audit {
    level: AuditLevel,
    writer: Writer,
}

impl Audit {
    /// Opens the log (a file that cannot be opened is an error now, not at the first event)
    /// and starts its writer.
    pub fn start(config: &AuditConfig) -> std::io::Result<Audit> {
        Audit::with_capacity(config, writer::CHANNEL_CAPACITY)
    }

    /// [`Audit::start`] with room for `capacity` lines waiting for the writer.
    pub(crate) fn with_capacity(config: &AuditConfig, capacity: usize) -> std::io::Result<Audit> {
        Ok(Audit {
            level: config.level,
            writer: Writer::start(config.sink(), capacity)?,
        })
    }

    /// The counters so far.
    pub fn stats(&self) -> AuditStats {
        let c = &self.writer.counters;
        AuditStats {
            events: c.events.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            write_errors: c.write_errors.load(Ordering::Relaxed),
        }
    }

    /// Whether `record` is audited at this level.
    fn wants(&self, record: &RequestRecord<'_>) -> bool {
        self.level == AuditLevel::Request
            || crate::observe::is_mutating(record.method)
            || event::failed_authentication(record)
    }
}

impl RequestObserver for Audit {
    fn request(&self, record: &RequestRecord<'_>) {
        if !self.wants(record) {
            return;
        }
        let event = Event::new(record, std::time::SystemTime::now());
        match serde_json::to_string(&event) {
            Ok(mut line) => {
                line.push('\n');
                self.writer.send(line);
            }
            Err(e) => tracing::error!(error = %e, "encoding an audit event failed"),
        }
    }

    fn wants_notes(&self, mutating: bool) -> bool {
        // A read is audited at the metadata level only when its authentication fails, which
        // is noted anyway.
        mutating || self.level == AuditLevel::Request
    }
}

impl AuthObserver for Audit {
    fn authentication(&self, attempt: &AuthnAttempt<'_>) {
        note(|notes: &mut Notes| match &attempt.outcome {
            AuthnOutcome::Authenticated(user) => {
                notes.authenticated = Some(user.username.clone());
            }
            // Noted below, for every request.
            AuthnOutcome::Failed(_) => {}
        });
        if let AuthnOutcome::Failed(reason) = &attempt.outcome {
            note_authentication_failure(reason.to_string());
        }
    }

    fn authorization(&self, decision: &AuthzDecision<'_>) {
        note(|notes: &mut Notes| {
            // Only decisions on the request's own user: a SubjectAccessReview asks about
            // another.
            if notes.authenticated.as_deref() != Some(decision.user.username.as_str()) {
                return;
            }
            let first_denial =
                !decision.allowed && notes.decision.as_ref().is_none_or(|d| d.allowed);
            if notes.decision.is_none() || first_denial {
                notes.decision = Some(Decision {
                    allowed: decision.allowed,
                    reason: decision.reason.to_owned(),
                });
            }
        });
    }
}

#[cfg(test)]
mod tests;

//! Controllers: they react to the informer's stream the same way on one replica or many, and
//! every action they take is idempotent, so two replicas doing the same work is harmless.
//!
//! - [`aggregation`]: ClusterRoles with an `aggregationRule` get the rules of those it selects;
//! - [`compactor`]: drops store history older than about one interval;
//! - [`event_ttl`]: deletes Events older than the server's event TTL;
//! - [`gc`]: owner references (background, foreground, orphan);
//! - [`last_used`]: when legacy tokens were last used, written to their Secrets once a minute;
//! - [`namespace`]: deleting a namespace deletes what is in it;
//! - [`tokens`]: service-account token Secrets get their token.
//!
//! Kargo's own controller (a Project gets its namespace and roles) is in `kargo-core`, a sibling:
//! controllers know Kubernetes, not Kargo. Depends on `kargo-auth` (token minting) and below.

pub mod aggregation;
pub mod compactor;
pub mod event_ttl;
pub mod gc;
pub mod last_used;
pub mod namespace;
#[cfg(test)]
mod tests;
pub mod tokens;

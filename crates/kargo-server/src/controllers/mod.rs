//! Controllers: they react to the informer's stream the same way on one replica or many, and
//! every action they take is idempotent, so two replicas doing the same work is harmless.
//!
//! - [`compactor`]: drops store history older than about one interval;
//! - [`gc`]: owner references (background, foreground, orphan);
//! - [`namespace`]: deleting a namespace deletes what is in it;
//! - [`tokens`]: service-account token Secrets get their token;
//! - [`projects`]: a new Project gets its namespace and default roles.

pub mod compactor;
pub mod gc;
pub mod informer;
pub mod namespace;
pub mod projects;
pub mod queue;
pub mod tokens;

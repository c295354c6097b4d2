//! Kubernetes RBAC evaluated in process: identities, request attributes, the indexed policy and
//! its decisions, the Forbidden message, escalation prevention and the default ClusterRoles.
//!
//! Pure: no IO, no async, no storage. The server keeps one [`Policy`] up to date from a watch of
//! the RBAC objects (`apply_*` / `remove_*`) and asks it on every request:
//!
//! - [`Policy::authorize`] answers [`Decision::Allow`] or [`Decision::NoOpinion`] for a
//!   [`UserInfo`] and [`Attributes`]; [`Forbidden::for_request`] words the 403.
//! - [`Policy::rules_for`] lists a user's rules in a namespace (SelfSubjectRulesReview).
//! - [`Policy::check_role_write`], [`Policy::check_cluster_role_write`],
//!   [`Policy::check_role_binding_write`] and [`Policy::check_cluster_role_binding_write`]
//!   prevent privilege escalation; [`covers`] is the underlying comparison.
//! - [`bootstrap`] has the default ClusterRoles and ClusterRoleBindings to seed on first start.
//!
//! Semantics and message texts follow kube-apiserver (`plugin/pkg/auth/authorizer/rbac`,
//! `pkg/registry/rbac`, `apiserver/pkg/endpoints/handlers/responsewriters`).

mod attributes;
pub mod bootstrap;
mod claims;
mod escalation;
mod forbidden;
mod gofmt;
mod policy;
mod rules;
mod user;

#[cfg(test)]
mod tests;

pub use attributes::{Attributes, NonResourceAttributes, ResourceAttributes};
pub(crate) use escalation::BindingWriteError;
#[cfg(test)]
use escalation::{EscalationDenied, compact_string};
pub use escalation::{covers, full_authority};
#[cfg(test)]
use forbidden::forbidden_message;
pub use forbidden::{Forbidden, ForbiddenDetails, group_resource};
pub use gofmt::{aggregate, quote};
pub use policy::{Decision, Policy, SERVICE_ACCOUNT_KIND};
pub use rules::ALL;
pub use user::{UserInfo, split_service_account_username};

/// The API group of the RBAC resources.
pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

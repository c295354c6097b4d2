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
mod escalation;
mod forbidden;
mod gofmt;
mod policy;
mod rules;
mod user;

#[cfg(test)]
mod tests;

pub use attributes::{Attributes, NonResourceAttributes, ResourceAttributes};
pub use escalation::{
    AGGREGATION_RULE_MESSAGE, BindingWriteError, EscalationDenied, breakdown_rule, compact_rules,
    compact_string, covers, full_authority, uncovered_atoms,
};
pub use forbidden::{Forbidden, ForbiddenDetails, forbidden_message, group_resource, html_escape};
pub use gofmt::{aggregate, quote, quote_list};
pub use policy::{
    CLUSTER_ROLE_KIND, Decision, GROUP_KIND, Policy, ROLE_KIND, ResolutionError, RoleKind,
    SERVICE_ACCOUNT_KIND, USER_KIND,
};
pub use rules::{
    ALL, api_group_matches, non_resource_url_matches, resource_matches, resource_name_matches,
    rule_allows, rules_allow, verb_matches,
};
pub use user::{
    ANONYMOUS_USER, SERVICE_ACCOUNT_USERNAME_PREFIX, SYSTEM_AUTHENTICATED, SYSTEM_MASTERS,
    SYSTEM_SERVICE_ACCOUNTS, SYSTEM_UNAUTHENTICATED, UserInfo, parse_service_account_username,
    service_account_namespace_group, service_account_username,
};

/// The API group of the RBAC resources.
pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

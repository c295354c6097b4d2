//! Escalation prevention: a user may only write a Role or ClusterRole, or bind one, if it already
//! holds every permission granted, unless it is in `system:masters` or is allowed the `escalate`
//! (roles) or `bind` (bindings) verb. Mirrors `policy_comparator.go`, `policy_compact.go`,
//! `ConfirmNoEscalation` in `rule.go`, `escalation_check.go` and the `policybased` storages.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef,
};

use super::RBAC_GROUP;
use super::attributes::{Attributes, ResourceAttributes};
use super::forbidden::Forbidden;
use super::gofmt::{aggregate, quote, quote_list};
use super::policy::{CLUSTER_ROLE_KIND, Policy, ROLE_KIND, ResolutionError};
use super::rules::{ALL, items, url_covers};
use super::user::UserInfo;

/// Message of the 403 when a ClusterRole with an aggregationRule is written by a user without
/// `*` on everything.
pub(crate) const AGGREGATION_RULE_MESSAGE: &str =
    "must have cluster-admin privileges to use the aggregationRule";

/// Splits a rule into atoms of one API group, one resource, one verb and at most one resource
/// name, and one non-resource URL with one verb (`BreakdownRule`).
pub(crate) fn breakdown_rule(rule: &PolicyRule) -> Vec<PolicyRule> {
    let one = |s: &String| Some(vec![s.clone()]);
    let mut atoms = Vec::new();
    for group in items(&rule.api_groups) {
        for resource in items(&rule.resources) {
            for verb in &rule.verbs {
                let atom = PolicyRule {
                    api_groups: one(group),
                    resources: one(resource),
                    verbs: vec![verb.clone()],
                    ..PolicyRule::default()
                };
                let names = items(&rule.resource_names);
                if names.is_empty() {
                    atoms.push(atom);
                } else {
                    atoms.extend(names.iter().map(|n| PolicyRule {
                        resource_names: one(n),
                        ..atom.clone()
                    }));
                }
            }
        }
    }
    for url in items(&rule.non_resource_urls) {
        for verb in &rule.verbs {
            atoms.push(PolicyRule {
                non_resource_urls: one(url),
                verbs: vec![verb.clone()],
                ..PolicyRule::default()
            });
        }
    }
    atoms
}

fn has(set: &[String], item: &str) -> bool {
    set.iter().any(|s| s == item)
}

fn has_all(set: &[String], wanted: &[String]) -> bool {
    wanted.iter().all(|w| has(set, w))
}

fn resources_cover_all(owner: &[String], wanted: &[String]) -> bool {
    if has(owner, ALL) || has_all(owner, wanted) {
        return true;
    }
    wanted.iter().all(|path| {
        has(owner, path)
            || path
                .split_once('/')
                .is_some_and(|(_, sub)| owner.iter().any(|o| o.strip_prefix("*/") == Some(sub)))
    })
}

fn urls_cover_all(owner: &[String], wanted: &[String]) -> bool {
    wanted
        .iter()
        .all(|path| owner.iter().any(|o| url_covers(o, path)))
}

/// Whether `owner` covers the atom `sub` (`ruleCovers`).
fn rule_covers(owner: &PolicyRule, sub: &PolicyRule) -> bool {
    let verbs = has(&owner.verbs, ALL) || has_all(&owner.verbs, &sub.verbs);
    let groups = has(items(&owner.api_groups), ALL)
        || has_all(items(&owner.api_groups), items(&sub.api_groups));
    let resources = resources_cover_all(items(&owner.resources), items(&sub.resources));
    let urls = urls_cover_all(
        items(&owner.non_resource_urls),
        items(&sub.non_resource_urls),
    );
    let owner_names = items(&owner.resource_names);
    let sub_names = items(&sub.resource_names);
    let names =
        owner_names.is_empty() || (!sub_names.is_empty() && has_all(owner_names, sub_names));
    verbs && groups && resources && names && urls
}

/// The atoms of `requested` that no rule of `owner` covers, in order (Kubernetes `Covers`).
pub(crate) fn uncovered_atoms(owner: &[PolicyRule], requested: &[PolicyRule]) -> Vec<PolicyRule> {
    requested
        .iter()
        .flat_map(breakdown_rule)
        .filter(|atom| !owner.iter().any(|o| rule_covers(o, atom)))
        .collect()
}

/// Whether `owner` holds every permission of `requested`. If not, the missing permissions as
/// kube-apiserver prints them: atoms of one API group and resource without names or URLs merged
/// on their verbs, then sorted by [`compact_string`] without repeats.
pub fn covers(owner: &[PolicyRule], requested: &[PolicyRule]) -> Result<(), Vec<PolicyRule>> {
    let atoms = uncovered_atoms(owner, requested);
    if atoms.is_empty() {
        return Ok(());
    }
    let mut by_text: BTreeMap<String, PolicyRule> = BTreeMap::new();
    for rule in compact_rules(&atoms) {
        by_text.entry(compact_string(&rule)).or_insert(rule);
    }
    Err(by_text.into_values().collect())
}

/// Merges rules of exactly one API group and one resource, with no names and no URLs, that
/// differ only by verbs; other rules are kept as they are (`CompactRules`).
pub(crate) fn compact_rules(rules: &[PolicyRule]) -> Vec<PolicyRule> {
    let mut out = Vec::with_capacity(rules.len());
    let mut simple: Vec<PolicyRule> = Vec::new();
    let mut position: HashMap<(String, String), usize> = HashMap::new();
    for rule in rules {
        match (&rule.api_groups, &rule.resources) {
            (Some(g), Some(r))
                if g.len() == 1
                    && r.len() == 1
                    && items(&rule.resource_names).is_empty()
                    && items(&rule.non_resource_urls).is_empty() =>
            {
                let key = (g[0].clone(), r[0].clone());
                match position.get(&key) {
                    Some(&i) => simple[i].verbs.extend(rule.verbs.iter().cloned()),
                    None => {
                        position.insert(key, simple.len());
                        simple.push(rule.clone());
                    }
                }
            }
            _ => out.push(rule.clone()),
        }
    }
    out.extend(simple);
    out
}

/// A rule as Kubernetes prints it in escalation errors (`CompactString`): the non-empty fields
/// among APIGroups, Resources, NonResourceURLs, ResourceNames, Verbs, e.g.
/// `{APIGroups:[""], Resources:["pods"], Verbs:["get" "list"]}`.
pub(crate) fn compact_string(rule: &PolicyRule) -> String {
    let fields: [(&str, &[String]); 5] = [
        ("APIGroups", items(&rule.api_groups)),
        ("Resources", items(&rule.resources)),
        ("NonResourceURLs", items(&rule.non_resource_urls)),
        ("ResourceNames", items(&rule.resource_names)),
        ("Verbs", &rule.verbs),
    ];
    let parts: Vec<String> = fields
        .iter()
        .filter(|(_, values)| !values.is_empty())
        .map(|(name, values)| format!("{name}:{}", quote_list(values)))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

/// The rules of the `cluster-admin` ClusterRole: `*` on everything. Writing an aggregating
/// ClusterRole requires holding them.
pub fn full_authority() -> Vec<PolicyRule> {
    let all = || Some(vec![ALL.to_owned()]);
    vec![
        PolicyRule {
            verbs: vec![ALL.to_owned()],
            api_groups: all(),
            resources: all(),
            ..PolicyRule::default()
        },
        PolicyRule {
            verbs: vec![ALL.to_owned()],
            non_resource_urls: all(),
            ..PolicyRule::default()
        },
    ]
}

/// A user tried to grant permissions it does not hold. `Display` is Kubernetes' text after
/// `is forbidden: `.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", self.text())]
pub(crate) struct EscalationDenied {
    /// The user's name.
    pub username: String,
    /// The user's groups.
    pub groups: Vec<String>,
    /// The missing permissions, as [`covers`] returns them.
    pub missing: Vec<PolicyRule>,
    /// Errors met resolving the user's own rules, in storage wording.
    pub resolution_errors: Vec<String>,
}

impl EscalationDenied {
    fn text(&self) -> String {
        let lines: Vec<String> = self.missing.iter().map(compact_string).collect();
        let mut text = format!(
            "user {} (groups={}) is attempting to grant RBAC permissions not currently held:\n{}",
            quote(&self.username),
            quote_list(&self.groups),
            lines.join("\n")
        );
        if !self.resolution_errors.is_empty() {
            text.push_str(&format!(
                "; resolution errors: [{}]",
                aggregate(&self.resolution_errors)
            ));
        }
        text
    }

    /// The 403 for writing the `resource` (`roles`, `rolebindings`, ...) named `name`.
    pub fn forbidden(&self, resource: &str, name: &str) -> Forbidden {
        Forbidden::new(RBAC_GROUP, resource, name, &self.to_string())
    }
}

/// Why a RoleBinding or ClusterRoleBinding may not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BindingWriteError {
    /// 403: the user does not hold the permissions of the role and may not `bind` it.
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    /// The role reference does not resolve: a missing role is a 404 NotFound with message
    /// `<roles|clusterroles>.rbac.authorization.k8s.io "<name>" not found`; an unknown kind an
    /// internal error.
    #[error("{}", .0.registry_message())]
    RoleRef(ResolutionError),
}

fn name_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> (&str, &str) {
    (
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default(),
    )
}

fn has_aggregation_rule(role: &ClusterRole) -> bool {
    role.aggregation_rule.as_ref().is_some_and(|a| {
        a.cluster_role_selectors
            .as_ref()
            .is_some_and(|s| !s.is_empty())
    })
}

impl Policy {
    /// Whether the user's rules in `namespace` (cluster-wide plus the namespace's) cover `rules`.
    pub(crate) fn confirm_no_escalation(
        &self,
        user: &UserInfo,
        namespace: &str,
        rules: &[PolicyRule],
    ) -> Result<(), EscalationDenied> {
        let (owner, errors) = self.resolve_rules(user, namespace);
        covers(&owner, rules).map_err(|missing| EscalationDenied {
            username: user.username.clone(),
            groups: user.groups.clone(),
            missing,
            resolution_errors: errors
                .iter()
                .map(ResolutionError::registry_message)
                .collect(),
        })
    }

    /// `escalate` on the role being written. kube-apiserver checks the name of the request, which
    /// is empty on create, so only rules without resourceNames allow escalation on create.
    fn may_escalate(
        &self,
        user: &UserInfo,
        resource: &str,
        namespace: &str,
        name: &str,
        creating: bool,
    ) -> bool {
        let attrs = ResourceAttributes::new("escalate", namespace, RBAC_GROUP, resource)
            .with_name(if creating { "" } else { name });
        self.authorize(user, &Attributes::Resource(attrs))
            .is_allowed()
    }

    /// Checks the create (`old` is `None`) or update of a Role: allowed to `system:masters`, to
    /// users allowed `escalate` on it, and to users holding all its rules in its namespace.
    pub(crate) fn check_role_write(
        &self,
        user: &UserInfo,
        role: &Role,
        old: Option<&Role>,
    ) -> Result<(), Forbidden> {
        let (namespace, name) = name_of(&role.metadata);
        if user.is_system_master()
            || self.may_escalate(user, "roles", namespace, name, old.is_none())
        {
            return Ok(());
        }
        self.confirm_no_escalation(user, namespace, items_of(&role.rules))
            .map_err(|denied| denied.forbidden("roles", name))
    }

    /// Checks the create (`old` is `None`) or update of a ClusterRole: as for a Role, with the
    /// cluster-wide rules; a ClusterRole that has (or had) an aggregationRule also needs
    /// [`full_authority`].
    pub(crate) fn check_cluster_role_write(
        &self,
        user: &UserInfo,
        role: &ClusterRole,
        old: Option<&ClusterRole>,
    ) -> Result<(), Forbidden> {
        let (_, name) = name_of(&role.metadata);
        if user.is_system_master()
            || self.may_escalate(user, "clusterroles", "", name, old.is_none())
        {
            return Ok(());
        }
        self.confirm_no_escalation(user, "", items_of(&role.rules))
            .map_err(|denied| denied.forbidden("clusterroles", name))?;
        if has_aggregation_rule(role) || old.is_some_and(has_aggregation_rule) {
            self.confirm_no_escalation(user, "", &full_authority())
                .map_err(|_| {
                    Forbidden::new(RBAC_GROUP, "clusterroles", name, AGGREGATION_RULE_MESSAGE)
                })?;
        }
        Ok(())
    }

    /// Checks the create or update of a RoleBinding: allowed to `system:masters`, to users
    /// allowed `bind` on the referenced role in the binding's namespace, and to users holding all
    /// the role's rules there. The role must exist.
    pub(crate) fn check_role_binding_write(
        &self,
        user: &UserInfo,
        binding: &RoleBinding,
    ) -> Result<(), BindingWriteError> {
        let (namespace, name) = name_of(&binding.metadata);
        self.check_binding(user, "rolebindings", namespace, name, &binding.role_ref)
    }

    /// Checks the create or update of a ClusterRoleBinding, as for a RoleBinding with the
    /// cluster-wide rules.
    pub(crate) fn check_cluster_role_binding_write(
        &self,
        user: &UserInfo,
        binding: &ClusterRoleBinding,
    ) -> Result<(), BindingWriteError> {
        let (_, name) = name_of(&binding.metadata);
        self.check_binding(user, "clusterrolebindings", "", name, &binding.role_ref)
    }

    fn check_binding(
        &self,
        user: &UserInfo,
        resource: &str,
        namespace: &str,
        name: &str,
        role_ref: &RoleRef,
    ) -> Result<(), BindingWriteError> {
        if user.is_system_master() || self.may_bind(user, namespace, role_ref) {
            return Ok(());
        }
        let rules = self
            .role_ref_rules(role_ref, namespace)
            .map_err(BindingWriteError::RoleRef)?;
        self.confirm_no_escalation(user, namespace, rules)
            .map_err(|denied| BindingWriteError::Forbidden(denied.forbidden(resource, name)))
    }

    /// `bind` on the referenced role, in the binding's namespace (`""` for ClusterRoleBindings).
    fn may_bind(&self, user: &UserInfo, namespace: &str, role_ref: &RoleRef) -> bool {
        let resource = match role_ref.kind.as_str() {
            ROLE_KIND => "roles",
            CLUSTER_ROLE_KIND => "clusterroles",
            _ => return false,
        };
        let attrs = ResourceAttributes::new("bind", namespace, &role_ref.api_group, resource)
            .with_name(&role_ref.name);
        self.authorize(user, &Attributes::Resource(attrs))
            .is_allowed()
    }
}

fn items_of(rules: &Option<Vec<PolicyRule>>) -> &[PolicyRule] {
    rules.as_deref().unwrap_or_default()
}

//! The RBAC policy: an in-memory index of Roles, ClusterRoles, RoleBindings and
//! ClusterRoleBindings, kept up to date one object at a time, and the questions asked of it
//! (`authorize`, `rules_for`).
//!
//! Bindings are indexed by the subjects they name, per scope (cluster, or one namespace), so a
//! question costs the bindings that name the user, its service account or one of its groups, never
//! a scan of all bindings. Roles are looked up by name when a binding that applies is visited, as
//! kube-apiserver does, so a binding to a missing role is an error only while the role is missing.

use std::collections::BTreeSet;

/// Maps keyed by names, hashed with a fast non-cryptographic hash: the policy is read on every
/// request.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
use std::fmt;
use std::ops::ControlFlow;
use std::sync::Arc;

use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};

use super::attributes::Attributes;
use super::claims::ClaimsIndex;
use super::gofmt::{aggregate, quote};
use super::rules::rule_allows;
use super::user::{UserInfo, service_account_username};

/// Subject kind of a user.
pub(crate) const USER_KIND: &str = "User";
/// Subject kind of a group.
pub(crate) const GROUP_KIND: &str = "Group";
/// Subject kind of a service account.
pub const SERVICE_ACCOUNT_KIND: &str = "ServiceAccount";
/// Role reference kind of a namespaced Role.
pub(crate) const ROLE_KIND: &str = "Role";
/// Role reference kind of a ClusterRole.
pub(crate) const CLUSTER_ROLE_KIND: &str = "ClusterRole";

/// The answer of the RBAC authorizer. RBAC never denies: it allows, or has no opinion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed. `reason` is Kubernetes' text, e.g.
    /// `RBAC: allowed by ClusterRoleBinding "b" of ClusterRole "r" to Group "g"`; empty when the
    /// user is in `system:masters`.
    Allow {
        /// Why the request is allowed.
        reason: String,
    },
    /// Not allowed by any rule.
    NoOpinion {
        /// `RBAC: <errors>` when roles could not be resolved, else empty.
        reason: String,
        /// The resolution errors, e.g. `clusterrole.rbac.authorization.k8s.io "x" not found`, in
        /// the order they were met.
        errors: Vec<String>,
    },
}

impl Decision {
    /// Whether the request is allowed.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow { .. })
    }

    /// The reason text (possibly empty).
    pub fn reason(&self) -> &str {
        match self {
            Decision::Allow { reason } | Decision::NoOpinion { reason, .. } => reason,
        }
    }

    /// The resolution errors; empty when allowed.
    pub fn errors(&self) -> &[String] {
        match self {
            Decision::Allow { .. } => &[],
            Decision::NoOpinion { errors, .. } => errors,
        }
    }
}

/// Why the rules of a binding could not be found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ResolutionError {
    /// The binding refers to a Role or ClusterRole that does not exist.
    RoleNotFound {
        /// Whether a Role or a ClusterRole was referenced.
        kind: RoleKind,
        /// The referenced name.
        name: String,
    },
    /// The binding's `roleRef.kind` is neither `Role` nor `ClusterRole`.
    UnsupportedRoleRefKind {
        /// The kind given.
        kind: String,
    },
}

/// The two kinds of role a binding can refer to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RoleKind {
    /// A namespaced Role (from a RoleBinding of the same namespace).
    Role,
    /// A ClusterRole.
    ClusterRole,
}

impl RoleKind {
    /// The plural resource: `roles` or `clusterroles`.
    pub fn resource(self) -> &'static str {
        match self {
            RoleKind::Role => "roles",
            RoleKind::ClusterRole => "clusterroles",
        }
    }

    /// The lowercase singular name used by informer listers: `role` or `clusterrole`.
    fn singular(self) -> &'static str {
        match self {
            RoleKind::Role => "role",
            RoleKind::ClusterRole => "clusterrole",
        }
    }
}

impl ResolutionError {
    /// The message as the storage layer words it (plural resource), e.g.
    /// `clusterroles.rbac.authorization.k8s.io "x" not found`; kube-apiserver uses this wording in
    /// escalation checks, which read roles through the registry.
    pub(crate) fn registry_message(&self) -> String {
        match self {
            ResolutionError::RoleNotFound { kind, name } => {
                format!(
                    "{}.{} {} not found",
                    kind.resource(),
                    super::RBAC_GROUP,
                    quote(name)
                )
            }
            ResolutionError::UnsupportedRoleRefKind { .. } => self.to_string(),
        }
    }
}

/// The message as the authorizer words it (informer lister, singular resource), e.g.
/// `clusterrole.rbac.authorization.k8s.io "x" not found`, or
/// `unsupported role reference kind: "Foo"`.
impl fmt::Display for ResolutionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResolutionError::RoleNotFound { kind, name } => {
                write!(
                    f,
                    "{}.{} {} not found",
                    kind.singular(),
                    super::RBAC_GROUP,
                    quote(name)
                )
            }
            ResolutionError::UnsupportedRoleRefKind { kind } => {
                write!(f, "unsupported role reference kind: {}", quote(kind))
            }
        }
    }
}

impl std::error::Error for ResolutionError {}

/// The rules of one role, shared between the index and its readers.
type Rules = Arc<[PolicyRule]>;

/// A binding as the index keeps it.
#[derive(Debug, Clone)]
struct Binding {
    /// `""` for a ClusterRoleBinding.
    namespace: String,
    name: String,
    role_ref: RoleRef,
    subjects: Vec<Subject>,
}

/// Binding names by the user names and group names their subjects match. A ServiceAccount
/// subject is filed under its username `system:serviceaccount:<ns>:<name>`.
#[derive(Debug, Clone, Default)]
struct SubjectIndex {
    users: HashMap<String, BTreeSet<String>>,
    groups: HashMap<String, BTreeSet<String>>,
}

/// A key under which a binding is filed.
enum SubjectKey {
    User(String),
    Group(String),
}

impl SubjectIndex {
    fn keys(binding: &Binding) -> Vec<SubjectKey> {
        binding
            .subjects
            .iter()
            .filter_map(|s| match s.kind.as_str() {
                USER_KIND => Some(SubjectKey::User(s.name.clone())),
                GROUP_KIND => Some(SubjectKey::Group(s.name.clone())),
                SERVICE_ACCOUNT_KIND => {
                    let ns = subject_namespace(s, &binding.namespace);
                    (!ns.is_empty())
                        .then(|| SubjectKey::User(service_account_username(ns, &s.name)))
                }
                _ => None,
            })
            .collect()
    }

    fn insert(&mut self, binding: &Binding) {
        for key in Self::keys(binding) {
            let (map, key) = self.map_mut(key);
            map.entry(key).or_default().insert(binding.name.clone());
        }
    }

    fn remove(&mut self, binding: &Binding) {
        for key in Self::keys(binding) {
            let (map, key) = self.map_mut(key);
            if let Some(names) = map.get_mut(&key) {
                names.remove(&binding.name);
                if names.is_empty() {
                    map.remove(&key);
                }
            }
        }
    }

    fn map_mut(&mut self, key: SubjectKey) -> (&mut HashMap<String, BTreeSet<String>>, String) {
        match key {
            SubjectKey::User(k) => (&mut self.users, k),
            SubjectKey::Group(k) => (&mut self.groups, k),
        }
    }

    /// Names of the bindings that may apply to the user, sorted and without repeats.
    fn candidates(&self, user: &UserInfo) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        if let Some(set) = self.users.get(&user.username) {
            names.extend(set.iter().map(String::as_str));
        }
        for group in &user.groups {
            if let Some(set) = self.groups.get(group) {
                names.extend(set.iter().map(String::as_str));
            }
        }
        names.sort_unstable();
        names.dedup();
        names
    }

    fn is_empty(&self) -> bool {
        self.users.is_empty() && self.groups.is_empty()
    }
}

/// The roles and bindings of one scope: the cluster, or one namespace.
#[derive(Debug, Clone, Default)]
struct Scope {
    roles: HashMap<String, Rules>,
    bindings: HashMap<String, Binding>,
    index: SubjectIndex,
}

impl Scope {
    fn put_binding(&mut self, binding: Binding) {
        if let Some(old) = self.bindings.remove(&binding.name) {
            self.index.remove(&old);
        }
        self.index.insert(&binding);
        self.bindings.insert(binding.name.clone(), binding);
    }

    fn delete_binding(&mut self, name: &str) {
        if let Some(old) = self.bindings.remove(name) {
            self.index.remove(&old);
        }
    }

    fn is_empty(&self) -> bool {
        self.roles.is_empty() && self.bindings.is_empty() && self.index.is_empty()
    }
}

/// The binding and subject a rule was found through; its `Display` is Kubernetes' text, e.g.
/// `RoleBinding "b/ns" of Role "r" to ServiceAccount "sa/ns"`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RuleSource<'a> {
    binding: &'a Binding,
    subject: &'a Subject,
}

impl fmt::Display for RuleSource<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.binding;
        if b.namespace.is_empty() {
            write!(f, "ClusterRoleBinding {}", quote(&b.name))?;
        } else {
            write!(
                f,
                "RoleBinding {}",
                quote(&format!("{}/{}", b.name, b.namespace))
            )?;
        }
        write!(
            f,
            " of {} {} to {}",
            b.role_ref.kind,
            quote(&b.role_ref.name),
            self.subject.kind
        )?;
        let s = self.subject;
        if s.kind == SERVICE_ACCOUNT_KIND {
            write!(
                f,
                " {}",
                quote(&format!(
                    "{}/{}",
                    s.name,
                    subject_namespace(s, &b.namespace)
                ))
            )
        } else {
            write!(f, " {}", quote(&s.name))
        }
    }
}

/// What a visit of the user's rules meets: a rule, or an error resolving a binding's role.
pub(crate) enum Visited<'a> {
    Rule(RuleSource<'a>, &'a PolicyRule),
    Error(ResolutionError),
}

/// The RBAC objects of the cluster, indexed for authorization.
///
/// Keep one instance up to date from a watch with the `apply_*` (create or update) and `remove_*`
/// (delete) methods; read it on every request. Reads cost the bindings naming the user or its
/// groups plus the rules of their roles, independent of how many other bindings exist. The type
/// has no interior mutability: share it behind a lock (one writer, many readers).
#[derive(Debug, Clone, Default)]
pub struct Policy {
    cluster: Scope,
    namespaces: HashMap<String, Scope>,
    /// The ServiceAccounts people are mapped to by their claims: part of the policy, so that a
    /// change to a role's claims forgets remembered decisions as a change of a binding does.
    claims: ClaimsIndex,
}

fn name_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> (String, String) {
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

fn rules_of(rules: &Option<Vec<PolicyRule>>) -> Rules {
    rules.as_deref().unwrap_or_default().into()
}

/// The namespace a ServiceAccount subject names: its own, else the binding's.
fn subject_namespace<'a>(subject: &'a Subject, binding_namespace: &'a str) -> &'a str {
    match subject.namespace.as_deref() {
        Some(ns) if !ns.is_empty() => ns,
        _ => binding_namespace,
    }
}

/// The Project a cluster-scoped question is about (`get` of `projects/<name>` in
/// `kargo.akuity.io`), whose namespace's mapped accounts count as upstream's do.
fn project_of(attrs: &Attributes) -> Option<&str> {
    match attrs {
        Attributes::Resource(r)
            if r.namespace.is_empty()
                && !r.name.is_empty()
                && r.api_group == kargo_api::resources::KARGO_GROUP
                && r.resource == kargo_api::resources::PROJECTS.plural =>
        {
            Some(&r.name)
        }
        _ => None,
    }
}

/// Whether a binding subject is the user (Kubernetes `appliesToUser`).
pub(crate) fn subject_applies(user: &UserInfo, subject: &Subject, binding_namespace: &str) -> bool {
    match subject.kind.as_str() {
        USER_KIND => user.username == subject.name,
        GROUP_KIND => user.in_group(&subject.name),
        SERVICE_ACCOUNT_KIND => {
            let ns = subject_namespace(subject, binding_namespace);
            !ns.is_empty() && is_service_account(&user.username, ns, &subject.name)
        }
        _ => false,
    }
}

/// `username == "system:serviceaccount:<namespace>:<name>"` without building the string.
fn is_service_account(username: &str, namespace: &str, name: &str) -> bool {
    username
        .strip_prefix(super::user::SERVICE_ACCOUNT_USERNAME_PREFIX)
        .and_then(|rest| rest.strip_prefix(namespace))
        .and_then(|rest| rest.strip_prefix(':'))
        .is_some_and(|rest| rest == name)
}

impl Policy {
    /// An empty policy: nothing is allowed except to `system:masters`.
    pub fn new() -> Self {
        Policy::default()
    }

    fn scope_mut(&mut self, namespace: &str) -> &mut Scope {
        if namespace.is_empty() {
            &mut self.cluster
        } else {
            self.namespaces.entry(namespace.to_owned()).or_default()
        }
    }

    fn prune(&mut self, namespace: &str) {
        if !namespace.is_empty() && self.namespaces.get(namespace).is_some_and(Scope::is_empty) {
            self.namespaces.remove(namespace);
        }
    }

    /// Adds or replaces a Role (by namespace and name).
    pub(crate) fn apply_role(&mut self, role: &Role) {
        let (ns, name) = name_of(&role.metadata);
        self.scope_mut(&ns)
            .roles
            .insert(name, rules_of(&role.rules));
    }

    /// Deletes a Role; nothing happens if it is not there.
    pub(crate) fn remove_role(&mut self, namespace: &str, name: &str) {
        if let Some(scope) = self.namespaces.get_mut(namespace) {
            scope.roles.remove(name);
        }
        self.prune(namespace);
    }

    /// Adds or replaces a ClusterRole (by name).
    pub(crate) fn apply_cluster_role(&mut self, role: &ClusterRole) {
        let (_, name) = name_of(&role.metadata);
        self.cluster.roles.insert(name, rules_of(&role.rules));
    }

    /// Deletes a ClusterRole; nothing happens if it is not there.
    pub(crate) fn remove_cluster_role(&mut self, name: &str) {
        self.cluster.roles.remove(name);
    }

    /// Adds or replaces a RoleBinding (by namespace and name).
    pub(crate) fn apply_role_binding(&mut self, binding: &RoleBinding) {
        let (namespace, name) = name_of(&binding.metadata);
        if namespace.is_empty() {
            // A RoleBinding always has a namespace; one without would act cluster-wide.
            return;
        }
        let stored = Binding {
            namespace: namespace.clone(),
            name,
            role_ref: binding.role_ref.clone(),
            subjects: binding.subjects.clone().unwrap_or_default(),
        };
        self.scope_mut(&namespace).put_binding(stored);
    }

    /// Deletes a RoleBinding; nothing happens if it is not there.
    pub(crate) fn remove_role_binding(&mut self, namespace: &str, name: &str) {
        if namespace.is_empty() {
            return;
        }
        if let Some(scope) = self.namespaces.get_mut(namespace) {
            scope.delete_binding(name);
        }
        self.prune(namespace);
    }

    /// Adds or replaces a ClusterRoleBinding (by name).
    pub(crate) fn apply_cluster_role_binding(&mut self, binding: &ClusterRoleBinding) {
        let (_, name) = name_of(&binding.metadata);
        self.cluster.put_binding(Binding {
            namespace: String::new(),
            name,
            role_ref: binding.role_ref.clone(),
            subjects: binding.subjects.clone().unwrap_or_default(),
        });
    }

    /// Deletes a ClusterRoleBinding; nothing happens if it is not there.
    pub(crate) fn remove_cluster_role_binding(&mut self, name: &str) {
        self.cluster.delete_binding(name);
    }

    /// The rules a role reference resolves to, from a binding in `binding_namespace` (`""` for a
    /// ClusterRoleBinding).
    pub(crate) fn role_ref_rules(
        &self,
        role_ref: &RoleRef,
        binding_namespace: &str,
    ) -> Result<&[PolicyRule], ResolutionError> {
        let (kind, scope) = match role_ref.kind.as_str() {
            ROLE_KIND => (
                RoleKind::Role,
                self.namespaces
                    .get(binding_namespace)
                    .filter(|_| !binding_namespace.is_empty()),
            ),
            CLUSTER_ROLE_KIND => (RoleKind::ClusterRole, Some(&self.cluster)),
            other => {
                return Err(ResolutionError::UnsupportedRoleRefKind {
                    kind: other.to_owned(),
                });
            }
        };
        scope
            .and_then(|s| s.roles.get(&role_ref.name))
            .map(|rules| &rules[..])
            .ok_or_else(|| ResolutionError::RoleNotFound {
                kind,
                name: role_ref.name.clone(),
            })
    }

    /// Records a ServiceAccount's annotations for the claims mapping (`None`: deleted); whether
    /// the mapping changed.
    pub(crate) fn apply_account_claims(
        &mut self,
        namespace: &str,
        name: &str,
        annotations: Option<&std::collections::BTreeMap<String, String>>,
    ) -> bool {
        self.claims.apply_account(namespace, name, annotations)
    }

    /// Records whether a namespace is a project's (people are mapped to accounts in project
    /// namespaces only); whether that changed.
    pub(crate) fn apply_project_namespace(&mut self, name: &str, is_project: bool) -> bool {
        self.claims.apply_namespace(name, is_project)
    }

    /// Visits every rule that applies to the user in `namespace` (ClusterRoleBindings first, then
    /// RoleBindings of the namespace, each in name order) and every error resolving a role, until
    /// the visitor breaks; for a person with claims, then the rules of every ServiceAccount
    /// mapped to them (`claims.rs`).
    pub(crate) fn visit<'a>(
        &'a self,
        user: &UserInfo,
        namespace: &str,
        visitor: &mut dyn FnMut(Visited<'a>) -> ControlFlow<()>,
    ) {
        self.visit_mapped(user, namespace, None, visitor);
    }

    /// [`Policy::visit`]; `project` names a Project the question is about, whose namespace's
    /// mapped accounts count too (upstream asks as them for a cluster-scoped Project).
    fn visit_mapped<'a>(
        &'a self,
        user: &UserInfo,
        namespace: &str,
        project: Option<&str>,
        visitor: &mut dyn FnMut(Visited<'a>) -> ControlFlow<()>,
    ) {
        if self.visit_as(user, namespace, visitor).is_break() || user.claims.is_empty() {
            return;
        }
        for account in self.claims.mapped(&user.claims, namespace, project) {
            if self.visit_as(account, namespace, visitor).is_break() {
                return;
            }
        }
    }

    /// The rules of one identity, as [`Policy::visit`] without the claims mapping.
    fn visit_as<'a>(
        &'a self,
        user: &UserInfo,
        namespace: &str,
        visitor: &mut dyn FnMut(Visited<'a>) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        let namespaced = if namespace.is_empty() {
            None
        } else {
            self.namespaces.get(namespace)
        };
        for scope in std::iter::once(&self.cluster).chain(namespaced) {
            for name in scope.index.candidates(user) {
                let Some(binding) = scope.bindings.get(name) else {
                    continue;
                };
                let Some(subject) = binding
                    .subjects
                    .iter()
                    .find(|s| subject_applies(user, s, &binding.namespace))
                else {
                    continue;
                };
                match self.role_ref_rules(&binding.role_ref, &binding.namespace) {
                    Err(e) => {
                        visitor(Visited::Error(e))?;
                    }
                    Ok(rules) => {
                        let source = RuleSource { binding, subject };
                        for rule in rules {
                            visitor(Visited::Rule(source, rule))?;
                        }
                    }
                }
            }
        }
        ControlFlow::Continue(())
    }

    /// The first rule source that allows the request, and the errors met resolving roles on the
    /// way.
    fn first_allowing<'a>(
        &'a self,
        user: &UserInfo,
        attrs: &Attributes,
    ) -> (Option<RuleSource<'a>>, Vec<String>) {
        let mut allowed = None;
        let mut errors = Vec::new();
        self.visit_mapped(
            user,
            attrs.namespace(),
            project_of(attrs),
            &mut |visited| match visited {
                Visited::Rule(source, rule) => {
                    if rule_allows(attrs, rule) {
                        allowed = Some(source);
                        ControlFlow::Break(())
                    } else {
                        ControlFlow::Continue(())
                    }
                }
                Visited::Error(e) => {
                    errors.push(e.to_string());
                    ControlFlow::Continue(())
                }
            },
        );
        (allowed, errors)
    }

    /// Whether the request is allowed, without wording a reason (the per-request check); the
    /// errors met resolving roles when it is not.
    pub fn allows(&self, user: &UserInfo, attrs: &Attributes) -> Result<(), Vec<String>> {
        if user.is_system_master() {
            return Ok(());
        }
        match self.first_allowing(user, attrs) {
            (Some(_), _) => Ok(()),
            (None, errors) => Err(errors),
        }
    }

    /// Decides a request as kube-apiserver with `system:masters` privileged and RBAC does:
    /// members of `system:masters` are allowed (empty reason); otherwise the first rule that
    /// allows the request wins; otherwise no opinion, with the errors met resolving roles.
    pub fn authorize(&self, user: &UserInfo, attrs: &Attributes) -> Decision {
        if user.is_system_master() {
            return Decision::Allow {
                reason: String::new(),
            };
        }
        match self.first_allowing(user, attrs) {
            (Some(source), _) => Decision::Allow {
                reason: format!("RBAC: allowed by {source}"),
            },
            (None, errors) => {
                let reason = if errors.is_empty() {
                    String::new()
                } else {
                    format!("RBAC: {}", aggregate(&errors))
                };
                Decision::NoOpinion { reason, errors }
            }
        }
    }

    /// The rules that apply to the user in `namespace` (cluster-wide rules, then the namespace's;
    /// `""` gives the cluster-wide rules only), and the errors met resolving roles, worded as
    /// the authorizer words them. Used for SelfSubjectRulesReview.
    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> (Vec<PolicyRule>, Vec<String>) {
        let (rules, errors) = self.resolve_rules(user, namespace);
        (rules, errors.iter().map(ToString::to_string).collect())
    }

    /// Like [`Policy::rules_for`], with the errors as values.
    pub(crate) fn resolve_rules(
        &self,
        user: &UserInfo,
        namespace: &str,
    ) -> (Vec<PolicyRule>, Vec<ResolutionError>) {
        let mut rules = Vec::new();
        let mut errors = Vec::new();
        self.visit(user, namespace, &mut |visited| {
            match visited {
                Visited::Rule(_, rule) => rules.push(rule.clone()),
                Visited::Error(e) => errors.push(e),
            }
            ControlFlow::Continue(())
        });
        (rules, errors)
    }

    /// Names of the bindings the index offers for the user in `namespace`, as
    /// `ClusterRoleBinding/<name>` and `RoleBinding/<ns>/<name>`: what a question about this user
    /// costs.
    #[cfg(test)]
    pub(crate) fn candidate_bindings(&self, user: &UserInfo, namespace: &str) -> Vec<String> {
        let mut out: Vec<String> = self
            .cluster
            .index
            .candidates(user)
            .into_iter()
            .map(|n| format!("ClusterRoleBinding/{n}"))
            .collect();
        if let Some(scope) = self
            .namespaces
            .get(namespace)
            .filter(|_| !namespace.is_empty())
        {
            out.extend(
                scope
                    .index
                    .candidates(user)
                    .into_iter()
                    .map(|n| format!("RoleBinding/{namespace}/{n}")),
            );
        }
        out
    }

    /// How many namespaces hold at least one Role or RoleBinding.
    #[cfg(test)]
    pub(crate) fn namespace_count(&self) -> usize {
        self.namespaces.len()
    }
}

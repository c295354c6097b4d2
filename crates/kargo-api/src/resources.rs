//! The resource types the API server serves: one table that discovery, routing, storage keys,
//! validation and authorization all read, so that a resource is described in one place.

use std::fmt;

/// How object names of a resource are validated (Kubernetes' `ValidateObjectMeta` name rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// A DNS-1123 subdomain (most kinds, and every custom resource).
    Subdomain,
    /// A DNS-1123 label (namespaces).
    Label,
    /// Anything that is a valid path segment (RBAC kinds).
    PathSegment,
}

/// How the server keeps objects of a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// Persisted in the store under the resource's key prefix.
    Stored,
    /// Not persisted: a POST is answered from the request (reviews, `create`-only APIs).
    Virtual,
}

/// One resource type served by the API server.
#[derive(Debug, PartialEq, Eq)]
pub struct ResourceType {
    /// API group (`""` for the core group).
    pub group: &'static str,
    /// API version within the group.
    pub version: &'static str,
    /// The object kind (`ServiceAccount`).
    pub kind: &'static str,
    /// The plural resource name used in URLs (`serviceaccounts`).
    pub plural: &'static str,
    /// The singular name (`serviceaccount`).
    pub singular: &'static str,
    /// Short names kubectl accepts (`sa`).
    pub short_names: &'static [&'static str],
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// The verbs the resource supports.
    pub verbs: &'static [&'static str],
    /// Subresources: `(name, kind, verbs)`.
    pub subresources: &'static [Subresource],
    /// How names are validated.
    pub name_rule: NameRule,
    /// Whether the schema is open (custom resources keep any `spec`/`status` as given).
    pub schemaless: bool,
    /// Whether the object is persisted.
    pub storage: Storage,
    /// Categories kubectl may use (`kubectl get kargo`).
    pub categories: &'static [&'static str],
}

/// A subresource of a resource type (`serviceaccounts/token`).
#[derive(Debug, PartialEq, Eq)]
pub struct Subresource {
    /// The subresource name (`token`).
    pub name: &'static str,
    /// The kind it accepts and returns.
    pub kind: &'static str,
    /// Its group, when it differs from the parent's (`authentication.k8s.io` for `token`).
    pub group: &'static str,
    /// Its version, when the group differs.
    pub version: &'static str,
    /// The verbs it supports.
    pub verbs: &'static [&'static str],
}

/// Verbs of an ordinary persisted resource.
pub const STANDARD_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
const NAMESPACE_VERBS: &[&str] = &[
    "create", "delete", "get", "list", "patch", "update", "watch",
];
const CREATE_ONLY: &[&str] = &["create"];
const STATUS_VERBS: &[&str] = &["get", "patch", "update"];

const fn status(kind: &'static str) -> Subresource {
    Subresource {
        name: "status",
        kind,
        group: "",
        version: "",
        verbs: STATUS_VERBS,
    }
}

/// The core API group's name.
pub const CORE_GROUP: &str = "";
/// The RBAC API group.
pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";
/// Kargo's API group and version as literals, so that the names built from them are constants.
macro_rules! kargo_group {
    () => {
        "kargo.akuity.io"
    };
}
macro_rules! kargo_version {
    () => {
        "v1alpha1"
    };
}
/// Kargo's API group.
pub const KARGO_GROUP: &str = kargo_group!();
/// Kargo's API version.
pub const KARGO_VERSION: &str = kargo_version!();
/// `apiVersion` of Kargo's kinds (`Project`, `Stage`, ...): `kargo.akuity.io/v1alpha1`.
pub const KARGO_API_VERSION: &str = concat!(kargo_group!(), "/", kargo_version!());
/// `apiVersion` of the Kargo Roles the Kargo API and CLI show (upstream's
/// `rbac.kargo.akuity.io/v1alpha1` `Role`, not a stored kind).
pub const KARGO_RBAC_API_VERSION: &str = concat!("rbac.", kargo_group!(), "/", kargo_version!());
/// The authentication API group (token and self-subject reviews).
pub const AUTHENTICATION_GROUP: &str = "authentication.k8s.io";
/// The authorization API group (access reviews).
pub const AUTHORIZATION_GROUP: &str = "authorization.k8s.io";

macro_rules! resource {
    ($name:ident, $doc:literal, $group:expr, $version:expr, $kind:literal, $plural:literal,
     $singular:literal, [$($short:literal),*], namespaced: $ns:expr, verbs: $verbs:expr,
     subresources: $subs:expr, names: $rule:expr, schemaless: $schemaless:expr,
     storage: $storage:expr, categories: [$($cat:literal),*]) => {
        #[doc = $doc]
        pub static $name: ResourceType = ResourceType {
            group: $group,
            version: $version,
            kind: $kind,
            plural: $plural,
            singular: $singular,
            short_names: &[$($short),*],
            namespaced: $ns,
            verbs: $verbs,
            subresources: $subs,
            name_rule: $rule,
            schemaless: $schemaless,
            storage: $storage,
            categories: &[$($cat),*],
        };
    };
}

resource!(NAMESPACES, "core/v1 namespaces (cluster-scoped).", CORE_GROUP, "v1", "Namespace",
    "namespaces", "namespace", ["ns"], namespaced: false, verbs: NAMESPACE_VERBS,
    subresources: &[
        Subresource { name: "finalize", kind: "Namespace", group: "", version: "", verbs: &["update"] },
        status("Namespace"),
    ],
    names: NameRule::Label, schemaless: false, storage: Storage::Stored, categories: []);
resource!(SERVICEACCOUNTS, "core/v1 serviceaccounts.", CORE_GROUP, "v1", "ServiceAccount",
    "serviceaccounts", "serviceaccount", ["sa"], namespaced: true, verbs: STANDARD_VERBS,
    subresources: &[Subresource {
        name: "token",
        kind: "TokenRequest",
        group: AUTHENTICATION_GROUP,
        version: "v1",
        verbs: CREATE_ONLY,
    }],
    names: NameRule::Subdomain, schemaless: false, storage: Storage::Stored, categories: []);
resource!(SECRETS, "core/v1 secrets.", CORE_GROUP, "v1", "Secret", "secrets", "secret", [],
    namespaced: true, verbs: STANDARD_VERBS, subresources: &[], names: NameRule::Subdomain,
    schemaless: false, storage: Storage::Stored, categories: []);
resource!(CONFIGMAPS, "core/v1 configmaps.", CORE_GROUP, "v1", "ConfigMap", "configmaps",
    "configmap", ["cm"], namespaced: true, verbs: STANDARD_VERBS, subresources: &[],
    names: NameRule::Subdomain, schemaless: false, storage: Storage::Stored, categories: []);

resource!(EVENTS, "core/v1 events (expired after `--event-ttl`).", CORE_GROUP, "v1", "Event",
    "events", "event", ["ev"], namespaced: true, verbs: STANDARD_VERBS, subresources: &[],
    names: NameRule::Subdomain, schemaless: false, storage: Storage::Stored, categories: []);
resource!(ENDPOINTS, "core/v1 endpoints (nothing fills them: the server runs no Services).",
    CORE_GROUP, "v1", "Endpoints", "endpoints", "endpoints", ["ep"], namespaced: true,
    verbs: STANDARD_VERBS, subresources: &[], names: NameRule::Subdomain, schemaless: false,
    storage: Storage::Stored, categories: []);
resource!(ROLES, "rbac.authorization.k8s.io/v1 roles.", RBAC_GROUP, "v1", "Role", "roles", "role",
    [], namespaced: true, verbs: STANDARD_VERBS, subresources: &[], names: NameRule::PathSegment,
    schemaless: false, storage: Storage::Stored, categories: []);
resource!(ROLEBINDINGS, "rbac.authorization.k8s.io/v1 rolebindings.", RBAC_GROUP, "v1",
    "RoleBinding", "rolebindings", "rolebinding", [], namespaced: true, verbs: STANDARD_VERBS,
    subresources: &[], names: NameRule::PathSegment, schemaless: false, storage: Storage::Stored,
    categories: []);
resource!(CLUSTERROLES, "rbac.authorization.k8s.io/v1 clusterroles.", RBAC_GROUP, "v1",
    "ClusterRole", "clusterroles", "clusterrole", [], namespaced: false, verbs: STANDARD_VERBS,
    subresources: &[], names: NameRule::PathSegment, schemaless: false, storage: Storage::Stored,
    categories: []);
resource!(CLUSTERROLEBINDINGS, "rbac.authorization.k8s.io/v1 clusterrolebindings.", RBAC_GROUP,
    "v1", "ClusterRoleBinding", "clusterrolebindings", "clusterrolebinding", [],
    namespaced: false, verbs: STANDARD_VERBS, subresources: &[], names: NameRule::PathSegment,
    schemaless: false, storage: Storage::Stored, categories: []);

resource!(PROJECTS, "kargo.akuity.io/v1alpha1 projects (cluster-scoped).", KARGO_GROUP,
    KARGO_VERSION, "Project", "projects", "project", [], namespaced: false,
    verbs: STANDARD_VERBS, subresources: &[status("Project")], names: NameRule::Subdomain,
    schemaless: true, storage: Storage::Stored, categories: ["kargo"]);
resource!(PROJECTCONFIGS, "kargo.akuity.io/v1alpha1 projectconfigs.", KARGO_GROUP, KARGO_VERSION,
    "ProjectConfig", "projectconfigs", "projectconfig", [], namespaced: true,
    verbs: STANDARD_VERBS, subresources: &[status("ProjectConfig")], names: NameRule::Subdomain,
    schemaless: true, storage: Storage::Stored, categories: ["kargo"]);
resource!(STAGES, "kargo.akuity.io/v1alpha1 stages.", KARGO_GROUP, KARGO_VERSION, "Stage",
    "stages", "stage", [], namespaced: true, verbs: STANDARD_VERBS,
    subresources: &[status("Stage")], names: NameRule::Subdomain, schemaless: true,
    storage: Storage::Stored, categories: ["kargo"]);
resource!(WAREHOUSES, "kargo.akuity.io/v1alpha1 warehouses.", KARGO_GROUP, KARGO_VERSION,
    "Warehouse", "warehouses", "warehouse", [], namespaced: true, verbs: STANDARD_VERBS,
    subresources: &[status("Warehouse")], names: NameRule::Subdomain, schemaless: true,
    storage: Storage::Stored, categories: ["kargo"]);
resource!(FREIGHTS, "kargo.akuity.io/v1alpha1 freights.", KARGO_GROUP, KARGO_VERSION, "Freight",
    "freights", "freight", [], namespaced: true, verbs: STANDARD_VERBS,
    subresources: &[status("Freight")], names: NameRule::Subdomain, schemaless: true,
    storage: Storage::Stored, categories: ["kargo"]);
resource!(PROMOTIONS, "kargo.akuity.io/v1alpha1 promotions.", KARGO_GROUP, KARGO_VERSION,
    "Promotion", "promotions", "promotion", ["promo", "promos"], namespaced: true,
    verbs: STANDARD_VERBS, subresources: &[status("Promotion")], names: NameRule::Subdomain,
    schemaless: true, storage: Storage::Stored, categories: ["kargo"]);

resource!(TOKENREVIEWS, "authentication.k8s.io/v1 tokenreviews.", AUTHENTICATION_GROUP, "v1",
    "TokenReview", "tokenreviews", "tokenreview", [], namespaced: false, verbs: CREATE_ONLY,
    subresources: &[], names: NameRule::Subdomain, schemaless: false, storage: Storage::Virtual,
    categories: []);
resource!(SELFSUBJECTREVIEWS, "authentication.k8s.io/v1 selfsubjectreviews.",
    AUTHENTICATION_GROUP, "v1", "SelfSubjectReview", "selfsubjectreviews", "selfsubjectreview", [],
    namespaced: false, verbs: CREATE_ONLY, subresources: &[], names: NameRule::Subdomain,
    schemaless: false, storage: Storage::Virtual, categories: []);
resource!(SELFSUBJECTACCESSREVIEWS, "authorization.k8s.io/v1 selfsubjectaccessreviews.",
    AUTHORIZATION_GROUP, "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews",
    "selfsubjectaccessreview", [], namespaced: false, verbs: CREATE_ONLY, subresources: &[],
    names: NameRule::Subdomain, schemaless: false, storage: Storage::Virtual, categories: []);
resource!(SELFSUBJECTRULESREVIEWS, "authorization.k8s.io/v1 selfsubjectrulesreviews.",
    AUTHORIZATION_GROUP, "v1", "SelfSubjectRulesReview", "selfsubjectrulesreviews",
    "selfsubjectrulesreview", [], namespaced: false, verbs: CREATE_ONLY, subresources: &[],
    names: NameRule::Subdomain, schemaless: false, storage: Storage::Virtual, categories: []);
resource!(SUBJECTACCESSREVIEWS, "authorization.k8s.io/v1 subjectaccessreviews.",
    AUTHORIZATION_GROUP, "v1", "SubjectAccessReview", "subjectaccessreviews",
    "subjectaccessreview", [], namespaced: false, verbs: CREATE_ONLY, subresources: &[],
    names: NameRule::Subdomain, schemaless: false, storage: Storage::Virtual, categories: []);
resource!(LOCALSUBJECTACCESSREVIEWS, "authorization.k8s.io/v1 localsubjectaccessreviews.",
    AUTHORIZATION_GROUP, "v1", "LocalSubjectAccessReview", "localsubjectaccessreviews",
    "localsubjectaccessreview", [], namespaced: true, verbs: CREATE_ONLY, subresources: &[],
    names: NameRule::Subdomain, schemaless: false, storage: Storage::Virtual, categories: []);

/// Every resource type the server serves, in discovery order.
pub static ALL: &[&ResourceType] = &[
    &NAMESPACES,
    &SERVICEACCOUNTS,
    &SECRETS,
    &CONFIGMAPS,
    &EVENTS,
    &ENDPOINTS,
    &ROLES,
    &ROLEBINDINGS,
    &CLUSTERROLES,
    &CLUSTERROLEBINDINGS,
    &PROJECTS,
    &PROJECTCONFIGS,
    &STAGES,
    &WAREHOUSES,
    &FREIGHTS,
    &PROMOTIONS,
    &TOKENREVIEWS,
    &SELFSUBJECTREVIEWS,
    &SELFSUBJECTACCESSREVIEWS,
    &SELFSUBJECTRULESREVIEWS,
    &SUBJECTACCESSREVIEWS,
    &LOCALSUBJECTACCESSREVIEWS,
];

/// The group-versions the server serves, in discovery order: `(group, version)`.
pub fn group_versions() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    for r in ALL {
        if !out.contains(&(r.group, r.version)) {
            out.push((r.group, r.version));
        }
    }
    out
}

/// The resource types of one group-version, in discovery order.
pub fn in_group_version(group: &str, version: &str) -> impl Iterator<Item = &'static ResourceType> {
    let (group, version) = (group.to_owned(), version.to_owned());
    ALL.iter()
        .copied()
        .filter(move |r| r.group == group && r.version == version)
}

/// Finds a resource type by group, version and plural name.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceType> {
    ALL.iter()
        .copied()
        .find(|r| r.plural == plural && r.group == group && r.version == version)
}

/// Finds a resource type by group and kind (any version).
pub fn find_kind(group: &str, kind: &str) -> Option<&'static ResourceType> {
    ALL.iter()
        .copied()
        .find(|r| r.group == group && r.kind == kind)
}

/// The persisted resource types.
pub fn stored() -> impl Iterator<Item = &'static ResourceType> {
    ALL.iter().copied().filter(|r| r.storage == Storage::Stored)
}

impl ResourceType {
    /// `apiVersion` of objects of this type (`v1`, `rbac.authorization.k8s.io/v1`).
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_owned()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The kind of a list of this type (`ServiceAccountList`).
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// The resource as Kubernetes names it in messages: `serviceaccounts`,
    /// `roles.rbac.authorization.k8s.io`.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_owned()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// The store key prefix of all objects of this type, ending in `/`:
    /// `/registry/serviceaccounts/`, `/registry/kargo.akuity.io/stages/`.
    ///
    /// Built-in kinds follow kube-apiserver's layout (no group), Kargo's kinds carry their group,
    /// as custom resources do under Kubernetes.
    pub fn key_prefix(&self) -> String {
        self.key_with(None, "")
    }

    /// The key prefix of the objects of this type in one namespace (or all of a cluster-scoped
    /// type when `namespace` is `None`), ending in `/`.
    pub fn namespace_prefix(&self, namespace: Option<&str>) -> String {
        self.key_with(namespace, "")
    }

    /// The store key of one object.
    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        self.key_with(namespace, name)
    }

    /// `/registry/[<group>/]<plural>/[<namespace>/]<tail>`, built in one allocation (keys are
    /// made on every request).
    fn key_with(&self, namespace: Option<&str>, tail: &str) -> String {
        let namespace = namespace.filter(|_| self.namespaced);
        let mut key = String::with_capacity(
            12 + self.group.len() + self.plural.len() + namespace.map_or(0, str::len) + tail.len(),
        );
        key.push_str("/registry/");
        if self.group == KARGO_GROUP {
            key.push_str(self.group);
            key.push('/');
        }
        key.push_str(self.plural);
        key.push('/');
        if let Some(ns) = namespace {
            key.push_str(ns);
            key.push('/');
        }
        key.push_str(tail);
        key
    }

    /// Whether the type accepts the verb.
    pub fn supports(&self, verb: &str) -> bool {
        self.verbs.contains(&verb)
    }

    /// Finds a subresource by name.
    pub fn subresource(&self, name: &str) -> Option<&'static Subresource>
    where
        Self: 'static,
    {
        self.subresources.iter().find(|s| s.name == name)
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.qualified())
    }
}

/// Splits a store key back into `(resource type, namespace, name)`.
pub fn parse_key(key: &str) -> Option<(&'static ResourceType, Option<&str>, &str)> {
    let rest = key.strip_prefix("/registry/")?;
    let (rt, rest) = stored()
        .filter_map(|rt| {
            let prefix = rt.key_prefix();
            let tail = prefix.strip_prefix("/registry/")?;
            rest.strip_prefix(tail).map(|r| (rt, r))
        })
        .next()?;
    if rt.namespaced {
        let (ns, name) = rest.split_once('/')?;
        Some((rt, Some(ns), name))
    } else {
        Some((rt, None, rest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_kube_apiserver_layout() {
        assert_eq!(
            SERVICEACCOUNTS.key(Some("p"), "sa"),
            "/registry/serviceaccounts/p/sa"
        );
        assert_eq!(NAMESPACES.key(None, "p"), "/registry/namespaces/p");
        assert_eq!(
            STAGES.key(Some("p"), "dev"),
            "/registry/kargo.akuity.io/stages/p/dev"
        );
        assert_eq!(
            CLUSTERROLES.key(None, "admin"),
            "/registry/clusterroles/admin"
        );
        assert_eq!(
            SERVICEACCOUNTS.namespace_prefix(None),
            "/registry/serviceaccounts/"
        );
    }

    #[test]
    fn keys_parse_back_to_their_resource() {
        for (key, plural, ns, name) in [
            (
                "/registry/serviceaccounts/p/sa",
                "serviceaccounts",
                Some("p"),
                "sa",
            ),
            ("/registry/namespaces/p", "namespaces", None, "p"),
            ("/registry/roles/p/r", "roles", Some("p"), "r"),
            ("/registry/rolebindings/p/r", "rolebindings", Some("p"), "r"),
            (
                "/registry/kargo.akuity.io/projects/x",
                "projects",
                None,
                "x",
            ),
        ] {
            let (rt, n, m) = parse_key(key).expect(key);
            assert_eq!((rt.plural, n, m), (plural, ns, name), "{key}");
        }
        assert!(parse_key("/registry/pods/p/x").is_none());
        assert!(parse_key("/kargo/internal").is_none());
    }

    #[test]
    fn qualified_names_carry_the_group_except_core() {
        assert_eq!(SERVICEACCOUNTS.qualified(), "serviceaccounts");
        assert_eq!(ROLES.qualified(), "roles.rbac.authorization.k8s.io");
        assert_eq!(PROJECTS.qualified(), "projects.kargo.akuity.io");
        assert_eq!(PROJECTS.api_version(), KARGO_API_VERSION);
        assert_eq!(KARGO_API_VERSION, "kargo.akuity.io/v1alpha1");
        assert_eq!(KARGO_RBAC_API_VERSION, "rbac.kargo.akuity.io/v1alpha1");
        assert_eq!(ROLES.api_version(), "rbac.authorization.k8s.io/v1");
    }
}

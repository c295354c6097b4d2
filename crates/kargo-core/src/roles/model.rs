//! The pure side of Kargo Roles: how a role's ServiceAccount, Role and RoleBinding ("the trio")
//! are composed from what is stored, whether Kargo may change them ([`manageable`]), the Kargo
//! body they make up ([`to_role`]), the objects Kargo writes for a role ([`service_account_object`],
//! [`role_object`], [`binding_object`]) and the subject edits of grants and revocations. No IO:
//! everything here is a function of objects already read.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::rbac::v1::{PolicyRule, RoleBinding, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kargo_api::kargo::{
    CLAIMS_ANNOTATION, DESCRIPTION_ANNOTATION, GrantRequest, MANAGED_ANNOTATION, ResourceDetails,
    Role, SERVICE_ACCOUNT_LABEL, ServiceAccountReference, TRUE, is_managed,
};
use kargo_api::resources::{CLUSTERROLES, RBAC_GROUP, ROLEBINDINGS, ROLES, SERVICEACCOUNTS};
use serde_json::{Value, json};

use crate::claims::{self, Claims};
use crate::rules;
use crate::{Error, Result, q};
use kargo_registry::status::Status;
use kargo_registry::{Meta, Object};

/// The objects underlying a role.
#[derive(Debug, Clone)]
pub(crate) struct Trio {
    /// The role's ServiceAccount.
    pub(crate) sa: Object,
    /// The Roles referenced by the RoleBindings below (that exist).
    pub(crate) roles: Vec<Object>,
    /// The RoleBindings that bind the ServiceAccount to a Role.
    pub(crate) bindings: Vec<Object>,
    /// Whether a RoleBinding binds the ServiceAccount to a ClusterRole.
    pub(crate) cluster_bound: bool,
}

pub(super) fn annotations(obj: &Object) -> BTreeMap<String, String> {
    obj.string_map("annotations")
}

pub(super) fn managed(obj: &Object) -> bool {
    is_managed(Some(&annotations(obj)))
}

/// Whether a ServiceAccount is labeled as a Kargo ServiceAccount.
pub(crate) fn is_kargo_service_account(sa: &Object) -> bool {
    sa.label(SERVICE_ACCOUNT_LABEL) == Some(TRUE)
}

pub(super) fn binding(obj: &Object) -> Option<RoleBinding> {
    serde_json::from_value(obj.clone()).ok()
}

pub(super) fn subject_is(subject: &Subject, binding_ns: &str, ns: &str, name: &str) -> bool {
    let subject_ns = subject
        .namespace
        .as_deref()
        .filter(|n| !n.is_empty())
        .unwrap_or(binding_ns);
    subject.kind == SERVICEACCOUNTS.kind && subject_ns == ns && subject.name == name
}

pub(super) fn binds(rb: &RoleBinding, ns: &str, name: &str) -> bool {
    let binding_ns = rb.metadata.namespace.as_deref().unwrap_or_default();
    rb.subjects
        .iter()
        .flatten()
        .any(|s| subject_is(s, binding_ns, ns, name))
}

pub(super) fn rules_of(role: &Object) -> Vec<PolicyRule> {
    role.get("rules")
        .and_then(|r| serde_json::from_value(r.clone()).ok())
        .unwrap_or_default()
}

/// `<kind> "<name>" in namespace "<ns>"`, as messages name an object.
pub(super) fn object_in(kind: &str, name: &str, ns: &str) -> String {
    format!("{kind} {} in namespace {}", q(name), q(ns))
}

/// The manageability errors, in the order they are checked.
fn manageability_error(trio: &Trio) -> Option<String> {
    let ns = trio.sa.namespace().unwrap_or_default();
    let sa = || object_in("ServiceAccount", trio.sa.name(), ns);
    let unmanaged = |kind: &str, o: &Object| object_in(kind, o.name(), ns) + UNMANAGED;
    let message = if trio.cluster_bound {
        sa() + " is bound to one or more ClusterRoles"
    } else if !managed(&trio.sa) {
        sa() + UNMANAGED
    } else if trio.roles.len() > 1 {
        format!("multiple Roles associated with {}", sa())
    } else if let Some(role) = trio.roles.first().filter(|r| !managed(r)) {
        unmanaged("Role", role)
    } else if trio.bindings.len() > 1 {
        format!("multiple RoleBindings associated with {}", sa())
    } else if let Some(rb) = trio.bindings.first().filter(|r| !managed(r)) {
        unmanaged("RoleBinding", rb)
    } else {
        return None;
    };
    Some(message)
}

/// The end of the message about an object that is not annotated as Kargo-managed.
pub(super) const UNMANAGED: &str = " is not annotated as Kargo-managed";

/// The Role and RoleBinding of a role that may be changed through Kargo, or the first reason
/// (400) it may not: bound to a ClusterRole, an unmanaged ServiceAccount, several Roles, an
/// unmanaged Role, several RoleBindings, an unmanaged RoleBinding.
pub(crate) fn manageable(trio: &Trio) -> Result<(Option<&Object>, Option<&Object>)> {
    match manageability_error(trio) {
        Some(message) => Err(Error::BadRequest(message)),
        None => Ok((trio.roles.first(), trio.bindings.first())),
    }
}

/// Whether the role is shown as Kargo-managed.
pub(crate) fn is_kargo_managed(trio: &Trio) -> bool {
    manageability_error(trio).is_none()
}

/// A Kargo ServiceAccount is not a role.
pub(super) fn not_a_service_account(trio: &Trio) -> Result<()> {
    not_a_kargo_service_account(&trio.sa)
}

/// 400 `ServiceAccount "x" in namespace "p" is a Kargo ServiceAccount, not a Kargo Role` if the
/// ServiceAccount `sa` is a Kargo ServiceAccount (which is no role's).
pub(crate) fn not_a_kargo_service_account(sa: &Object) -> Result<()> {
    if is_kargo_service_account(sa) {
        let named = object_in(
            "ServiceAccount",
            sa.name(),
            sa.namespace().unwrap_or_default(),
        );
        return Err(Error::BadRequest(format!(
            "{named} is a Kargo ServiceAccount, not a Kargo Role"
        )));
    }
    Ok(())
}

/// The role a trio makes up: rules are normalized when the role is Kargo-managed (and shown as
/// stored otherwise, or when they name types Kargo does not know).
pub(crate) fn to_role(trio: &Trio) -> Result<Role> {
    let sa = &trio.sa;
    let annotations = annotations(sa);
    let mut meta = json!({"name": sa.name(), "namespace": sa.namespace()});
    if let Some(ts) = sa.meta().and_then(|m| m.get("creationTimestamp")) {
        meta["creationTimestamp"] = ts.clone();
    }
    if let Some(d) = annotations.get(DESCRIPTION_ANNOTATION) {
        meta["annotations"] = json!({ DESCRIPTION_ANNOTATION: d });
    }
    let metadata: ObjectMeta =
        serde_json::from_value(meta).map_err(|e| Error::Stored(e.to_string()))?;
    let kargo_managed = is_kargo_managed(trio);
    let claims = claims::to_list(&claims::parse(&annotations)?);
    let (ns, name) = (sa.namespace().unwrap_or_default(), sa.name());
    let mut service_accounts = BTreeSet::new();
    for rb in trio.bindings.iter().filter_map(binding) {
        let binding_ns = rb.metadata.namespace.clone().unwrap_or_default();
        for s in rb.subjects.iter().flatten() {
            if s.kind == SERVICEACCOUNTS.kind && !subject_is(s, &binding_ns, ns, name) {
                let namespace = s
                    .namespace
                    .clone()
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| binding_ns.clone());
                service_accounts.insert((namespace, s.name.clone()));
            }
        }
    }
    let raw: Vec<PolicyRule> = trio.roles.iter().flat_map(rules_of).collect();
    let rules = if kargo_managed {
        rules::normalize(&raw, false).unwrap_or(raw)
    } else {
        raw
    };
    Ok(Role {
        metadata,
        kargo_managed,
        claims,
        service_accounts: service_accounts
            .into_iter()
            .map(|(namespace, name)| ServiceAccountReference { name, namespace })
            .collect(),
        rules,
    })
}

/// A role's ServiceAccount: managed, with its claims and description.
pub(crate) fn service_account_object(
    namespace: &str,
    name: &str,
    claims: &Claims,
    description: Option<&str>,
) -> Value {
    let mut annotations = serde_json::Map::new();
    annotations.insert(MANAGED_ANNOTATION.into(), TRUE.into());
    annotations.insert(CLAIMS_ANNOTATION.into(), claims::render(claims).into());
    if let Some(d) = description {
        annotations.insert(DESCRIPTION_ANNOTATION.into(), d.into());
    }
    json!({
        "apiVersion": SERVICEACCOUNTS.api_version(),
        "kind": SERVICEACCOUNTS.kind,
        "metadata": {"name": name, "namespace": namespace, "annotations": annotations},
    })
}

/// A role's Role: managed, with normalized rules.
pub(crate) fn role_object(namespace: &str, name: &str, rules: &[PolicyRule]) -> Value {
    json!({
        "apiVersion": ROLES.api_version(),
        "kind": ROLES.kind,
        "metadata": {"name": name, "namespace": namespace, "annotations": {MANAGED_ANNOTATION: TRUE}},
        "rules": rules,
    })
}

fn subject(namespace: &str, name: &str) -> Value {
    json!({"kind": SERVICEACCOUNTS.kind, "name": name, "namespace": namespace})
}

/// A role's RoleBinding: managed, binding the Role to the role's own ServiceAccount, then to
/// each granted ServiceAccount sorted by (namespace, name).
pub(crate) fn binding_object(
    namespace: &str,
    name: &str,
    granted: &[ServiceAccountReference],
) -> Value {
    let mut granted: Vec<(&str, &str)> = granted
        .iter()
        .map(|r| (r.namespace.as_str(), r.name.as_str()))
        .filter(|r| *r != (namespace, name))
        .collect();
    granted.sort();
    granted.dedup();
    let mut subjects = vec![subject(namespace, name)];
    subjects.extend(granted.iter().map(|(ns, n)| subject(ns, n)));
    json!({
        "apiVersion": ROLEBINDINGS.api_version(),
        "kind": ROLEBINDINGS.kind,
        "metadata": {"name": name, "namespace": namespace, "annotations": {MANAGED_ANNOTATION: TRUE}},
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": ROLES.kind, "name": name},
        "subjects": subjects,
    })
}

/// Composes the trio of `sa` from the namespace's RoleBindings and a lookup of its Roles.
pub(super) fn compose(
    sa: Object,
    bindings: &[Object],
    role: impl Fn(&str) -> Option<Object>,
) -> Trio {
    let (ns, name) = (
        sa.namespace().unwrap_or_default().to_owned(),
        sa.name().to_owned(),
    );
    let mut trio = Trio {
        sa,
        roles: Vec::new(),
        bindings: Vec::new(),
        cluster_bound: false,
    };
    for obj in bindings {
        let Some(rb) = binding(obj) else { continue };
        if !binds(&rb, &ns, &name) {
            continue;
        }
        match rb.role_ref.kind.as_str() {
            kind if kind == CLUSTERROLES.kind => trio.cluster_bound = true,
            _ => {
                trio.bindings.push(obj.clone());
                if let Some(role) = role(&rb.role_ref.name)
                    && !trio.roles.iter().any(|r| r.name() == role.name())
                {
                    trio.roles.push(role);
                }
            }
        }
    }
    trio
}

/// Which of the three parts of a grant or revocation a request uses: claims first, then
/// ServiceAccounts, then a permission.
pub(super) enum Change {
    /// Claims to add or remove.
    Claims(Claims),
    /// ServiceAccounts to add to or remove from the RoleBinding.
    ServiceAccounts(Vec<ServiceAccountReference>),
    /// A permission to add to or remove from the Role.
    Permission(ResourceDetails),
}

pub(super) fn change_of(request: GrantRequest) -> Result<(String, Change)> {
    if request.role.is_empty() {
        return Err(Error::BadRequest("role is required".into()));
    }
    let change = if let Some(c) = request.user_claims {
        Change::Claims(claims::from_list(&c.claims))
    } else if let Some(s) = request.service_accounts {
        Change::ServiceAccounts(s.service_accounts)
    } else if let Some(r) = request.resource_details {
        Change::Permission(r)
    } else {
        return Err(Error::BadRequest(
            "one of userClaims, serviceAccounts, or resourceDetails must be provided".into(),
        ));
    };
    Ok((request.role, change))
}

/// References with the namespace defaulted to `namespace`.
pub(super) fn in_namespace(
    refs: &[ServiceAccountReference],
    namespace: &str,
) -> Vec<ServiceAccountReference> {
    refs.iter()
        .map(|r| ServiceAccountReference {
            name: r.name.clone(),
            namespace: if r.namespace.is_empty() {
                namespace.to_owned()
            } else {
                r.namespace.clone()
            },
        })
        .collect()
}

/// The subjects of a stored RoleBinding (none if it has none or they cannot be read).
fn subjects_of(binding: &Object) -> Vec<Subject> {
    binding
        .get("subjects")
        .and_then(|s| serde_json::from_value(s.clone()).ok())
        .unwrap_or_default()
}

/// `binding` with its subjects replaced.
fn with_subject_list(binding: &Object, subjects: Vec<Subject>) -> Result<Object, Status> {
    let mut next = binding.clone();
    next["subjects"] =
        serde_json::to_value(subjects).map_err(|e| Status::internal(e.to_string()))?;
    Ok(next)
}

/// A RoleBinding with each of `refs` added as a ServiceAccount subject, after the existing
/// subjects, unless it is one already.
pub(super) fn with_subjects(
    binding: &Object,
    refs: &[ServiceAccountReference],
) -> Result<Object, Status> {
    let binding_ns = binding.namespace().unwrap_or_default().to_owned();
    let mut subjects = subjects_of(binding);
    for r in refs {
        if !subjects
            .iter()
            .any(|s| subject_is(s, &binding_ns, &r.namespace, &r.name))
        {
            subjects.push(Subject {
                kind: SERVICEACCOUNTS.kind.into(),
                name: r.name.clone(),
                namespace: Some(r.namespace.clone()),
                api_group: None,
            });
        }
    }
    with_subject_list(binding, subjects)
}

/// A RoleBinding without the ServiceAccount subjects `refs`.
pub(super) fn without_subjects(
    binding: &Object,
    refs: &[ServiceAccountReference],
) -> Result<Object, Status> {
    let binding_ns = binding.namespace().unwrap_or_default().to_owned();
    let mut subjects = subjects_of(binding);
    subjects.retain(|s| {
        !refs
            .iter()
            .any(|r| subject_is(s, &binding_ns, &r.namespace, &r.name))
    });
    with_subject_list(binding, subjects)
}

pub(super) fn string_map(map: &serde_json::Map<String, Value>) -> BTreeMap<String, String> {
    map.iter()
        .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(kind: &str, name: &str, managed: bool, extra: Value) -> Object {
        let mut o = json!({"kind": kind, "metadata": {"name": name, "namespace": "p"}});
        if managed {
            o["metadata"]["annotations"] = json!({MANAGED_ANNOTATION: TRUE});
        }
        if let (Some(o), Some(extra)) = (o.as_object_mut(), extra.as_object()) {
            o.extend(extra.clone());
        }
        o
    }

    fn rb(name: &str, managed: bool, ref_kind: &str, subjects: &[&str]) -> Object {
        obj(
            "RoleBinding",
            name,
            managed,
            json!({
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": ref_kind, "name": name},
                "subjects": subjects.iter().map(|s| subject("p", s)).collect::<Vec<_>>(),
            }),
        )
    }

    /// Composes the trio of ServiceAccount `r` and checks its manageability error (or none).
    fn check(sa_managed: bool, bindings: &[Object], roles: &[Object], expected: Option<&str>) {
        let sa = obj("ServiceAccount", "r", sa_managed, json!({}));
        let trio = compose(sa, bindings, |n| {
            roles.iter().find(|r| r.name() == n).cloned()
        });
        assert_eq!(manageability_error(&trio).as_deref(), expected);
        assert_eq!(is_kargo_managed(&trio), expected.is_none());
    }

    #[test]
    fn manageability_errors_come_in_order() {
        let role = |name: &str, managed: bool| obj("Role", name, managed, json!({}));
        check(
            true,
            &[
                rb("x", true, "ClusterRole", &["r"]),
                rb("r", false, "Role", &["r"]),
            ],
            &[],
            Some(r#"ServiceAccount "r" in namespace "p" is bound to one or more ClusterRoles"#),
        );
        check(
            false,
            &[rb("a", true, "Role", &["r"]), rb("b", true, "Role", &["r"])],
            &[role("a", true), role("b", true)],
            Some(r#"ServiceAccount "r" in namespace "p" is not annotated as Kargo-managed"#),
        );
        check(
            true,
            &[rb("a", true, "Role", &["r"]), rb("b", true, "Role", &["r"])],
            &[role("a", true), role("b", true)],
            Some(r#"multiple Roles associated with ServiceAccount "r" in namespace "p""#),
        );
        check(
            true,
            &[rb("x", false, "Role", &["r"])],
            &[role("x", false)],
            Some(r#"Role "x" in namespace "p" is not annotated as Kargo-managed"#),
        );
        let mut two = rb("b", true, "Role", &["r"]);
        two["roleRef"]["name"] = json!("a");
        check(
            true,
            &[rb("a", true, "Role", &["r"]), two],
            &[role("a", true)],
            Some(r#"multiple RoleBindings associated with ServiceAccount "r" in namespace "p""#),
        );
        check(
            true,
            &[rb("x", false, "Role", &["r"])],
            &[role("x", true)],
            Some(r#"RoleBinding "x" in namespace "p" is not annotated as Kargo-managed"#),
        );
        check(
            true,
            &[rb("r", true, "Role", &["r"])],
            &[role("r", true)],
            None,
        );
        check(true, &[], &[], None);
        check(
            true,
            &[rb("other", false, "Role", &["someone-else"])],
            &[],
            None,
        );
    }

    #[test]
    fn bindings_list_the_role_first_then_grantees_sorted() {
        let granted = [
            ServiceAccountReference {
                name: "b".into(),
                namespace: "p".into(),
            },
            ServiceAccountReference {
                name: "a".into(),
                namespace: "q".into(),
            },
            ServiceAccountReference {
                name: "a".into(),
                namespace: "p".into(),
            },
            ServiceAccountReference {
                name: "a".into(),
                namespace: "p".into(),
            },
        ];
        let names: Vec<String> = binding_object("p", "dev", &granted)["subjects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                format!(
                    "{}/{}",
                    s["namespace"].as_str().unwrap(),
                    s["name"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(names, ["p/dev", "p/a", "p/b", "q/a"]);
    }

    #[test]
    fn a_role_lists_other_service_account_subjects_and_normalized_rules() {
        let sa = obj("ServiceAccount", "r", true, json!({}));
        let mut binding = rb("r", true, "Role", &["r", "z", "a"]);
        binding["subjects"]
            .as_array_mut()
            .unwrap()
            .push(json!({"kind": "User", "name": "a"}));
        let role = obj(
            "Role",
            "r",
            true,
            json!({"rules": [{"apiGroups": ["kargo.akuity.io"], "resources": ["stages", "promotions"], "verbs": ["list", "get"]}]}),
        );
        let trio = compose(sa, &[binding], |_| Some(role.clone()));
        let role = to_role(&trio).unwrap();
        assert!(role.kargo_managed);
        assert_eq!(
            role.service_accounts
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>(),
            ["a", "z"]
        );
        assert_eq!(
            serde_json::to_value(&role.rules).unwrap(),
            json!([
                {"apiGroups": ["kargo.akuity.io"], "resources": ["promotions"], "verbs": ["get", "list"]},
                {"apiGroups": ["kargo.akuity.io"], "resources": ["stages"], "verbs": ["get", "list"]},
            ])
        );
    }

    #[test]
    fn subject_edits_match_subjects_by_namespace_defaulting_to_the_binding() {
        let mut binding = rb("r", true, "Role", &["r"]);
        // A subject written without a namespace is in the binding's namespace.
        binding["subjects"]
            .as_array_mut()
            .unwrap()
            .push(json!({"kind": "ServiceAccount", "name": "bot"}));
        let refs = |list: &[(&str, &str)]| {
            list.iter()
                .map(|(namespace, name)| ServiceAccountReference {
                    name: (*name).into(),
                    namespace: (*namespace).into(),
                })
                .collect::<Vec<_>>()
        };
        let added = with_subjects(&binding, &refs(&[("p", "bot"), ("q", "bot")])).unwrap();
        assert_eq!(
            added["subjects"],
            json!([
                {"kind": "ServiceAccount", "name": "r", "namespace": "p"},
                {"kind": "ServiceAccount", "name": "bot"},
                {"kind": "ServiceAccount", "name": "bot", "namespace": "q"},
            ])
        );
        let removed = without_subjects(&added, &refs(&[("p", "bot"), ("p", "nobody")])).unwrap();
        assert_eq!(
            removed["subjects"],
            json!([
                {"kind": "ServiceAccount", "name": "r", "namespace": "p"},
                {"kind": "ServiceAccount", "name": "bot", "namespace": "q"},
            ])
        );
    }
}

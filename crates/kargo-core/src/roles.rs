//! Kargo Roles: a ServiceAccount, a Role and a RoleBinding of one name. The ServiceAccount is the
//! role (its claims annotation maps OIDC users to it, its description annotation describes it),
//! the Role holds its rules, and the RoleBinding binds the Role to the role's own ServiceAccount
//! and to every Kargo ServiceAccount the role is granted to.
//!
//! The underlying objects of a role are found from its ServiceAccount: the RoleBindings that
//! have it as a subject, and the Roles they reference. A role may be changed through Kargo only
//! if those are Kargo-managed and there is at most one of each ([`manageable`]).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::rbac::v1::{PolicyRule, RoleBinding, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kargo_api::kargo::{
    CLAIMS_ANNOTATION, DESCRIPTION_ANNOTATION, GrantRequest, MANAGED_ANNOTATION, ResourceDetails,
    Role, SERVICE_ACCOUNT_LABEL, ServiceAccountReference, TRUE, is_managed,
};
use kargo_api::resources::{
    CLUSTERROLEBINDINGS, CLUSTERROLES, ROLEBINDINGS, ROLES, ResourceType, SERVICEACCOUNTS,
};
use serde_json::{Value, json};

use super::claims::{self, Claims};
use super::rules::{self, group_of};
use super::{Error, Kargo, Result, Scope, q};
use kargo_auth::rbac::UserInfo;
use kargo_registry::status::Status;
use kargo_registry::{DeleteOptions, ListOptions, Meta, Object, Target, WriteOptions};

/// The `kind` of a ServiceAccount subject.
const SERVICE_ACCOUNT_KIND: &str = "ServiceAccount";

/// The objects underlying a role.
#[derive(Debug, Clone)]
pub struct Trio {
    /// The role's ServiceAccount.
    pub sa: Object,
    /// The Roles referenced by the RoleBindings below (that exist).
    pub roles: Vec<Object>,
    /// The RoleBindings that bind the ServiceAccount to a Role.
    pub bindings: Vec<Object>,
    /// Whether a RoleBinding binds the ServiceAccount to a ClusterRole.
    pub cluster_bound: bool,
}

fn annotations(obj: &Object) -> BTreeMap<String, String> {
    obj.string_map("annotations")
}

fn managed(obj: &Object) -> bool {
    is_managed(Some(&annotations(obj)))
}

/// Whether a ServiceAccount is labeled as a Kargo ServiceAccount.
pub fn is_kargo_service_account(sa: &Object) -> bool {
    sa.label(SERVICE_ACCOUNT_LABEL) == Some(TRUE)
}

fn binding(obj: &Object) -> Option<RoleBinding> {
    serde_json::from_value(obj.clone()).ok()
}

fn subject_is(subject: &Subject, binding_ns: &str, ns: &str, name: &str) -> bool {
    let subject_ns = subject
        .namespace
        .as_deref()
        .filter(|n| !n.is_empty())
        .unwrap_or(binding_ns);
    subject.kind == SERVICE_ACCOUNT_KIND && subject_ns == ns && subject.name == name
}

fn binds(rb: &RoleBinding, ns: &str, name: &str) -> bool {
    let binding_ns = rb.metadata.namespace.as_deref().unwrap_or_default();
    rb.subjects
        .iter()
        .flatten()
        .any(|s| subject_is(s, binding_ns, ns, name))
}

fn rules_of(role: &Object) -> Vec<PolicyRule> {
    role.get("rules")
        .and_then(|r| serde_json::from_value(r.clone()).ok())
        .unwrap_or_default()
}

/// The manageability errors, in the order they are checked.
fn manageability_error(trio: &Trio) -> Option<String> {
    let (ns, name) = (trio.sa.namespace().unwrap_or_default(), trio.sa.name());
    if trio.cluster_bound {
        return Some(format!(
            "ServiceAccount {} in namespace {} is bound to one or more ClusterRoles",
            q(name),
            q(ns)
        ));
    }
    if !managed(&trio.sa) {
        return Some(format!(
            "ServiceAccount {} in namespace {} is not annotated as Kargo-managed",
            q(name),
            q(ns)
        ));
    }
    if trio.roles.len() > 1 {
        return Some(format!(
            "multiple Roles associated with ServiceAccount {} in namespace {}",
            q(name),
            q(ns)
        ));
    }
    if let Some(role) = trio.roles.first().filter(|r| !managed(r)) {
        return Some(format!(
            "Role {} in namespace {} is not annotated as Kargo-managed",
            q(role.name()),
            q(ns)
        ));
    }
    if trio.bindings.len() > 1 {
        return Some(format!(
            "multiple RoleBindings associated with ServiceAccount {} in namespace {}",
            q(name),
            q(ns)
        ));
    }
    if let Some(rb) = trio.bindings.first().filter(|r| !managed(r)) {
        return Some(format!(
            "RoleBinding {} in namespace {} is not annotated as Kargo-managed",
            q(rb.name()),
            q(ns)
        ));
    }
    None
}

/// The Role and RoleBinding of a role that may be changed through Kargo, or the first reason
/// (400) it may not: bound to a ClusterRole, an unmanaged ServiceAccount, several Roles, an
/// unmanaged Role, several RoleBindings, an unmanaged RoleBinding.
pub fn manageable(trio: &Trio) -> Result<(Option<&Object>, Option<&Object>)> {
    match manageability_error(trio) {
        Some(message) => Err(Error::BadRequest(message)),
        None => Ok((trio.roles.first(), trio.bindings.first())),
    }
}

/// Whether the role is shown as Kargo-managed.
pub fn is_kargo_managed(trio: &Trio) -> bool {
    manageability_error(trio).is_none()
}

/// A Kargo ServiceAccount is not a role.
fn not_a_service_account(trio: &Trio) -> Result<()> {
    if is_kargo_service_account(&trio.sa) {
        return Err(Error::BadRequest(format!(
            "ServiceAccount {} in namespace {} is a Kargo ServiceAccount, not a Kargo Role",
            q(trio.sa.name()),
            q(trio.sa.namespace().unwrap_or_default())
        )));
    }
    Ok(())
}

/// The role a trio makes up: rules are normalized when the role is Kargo-managed (and shown as
/// stored otherwise, or when they name types Kargo does not know).
pub fn to_role(trio: &Trio) -> Result<Role> {
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
            if s.kind == SERVICE_ACCOUNT_KIND && !subject_is(s, &binding_ns, ns, name) {
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
pub fn service_account_object(
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
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": namespace, "annotations": annotations},
    })
}

/// A role's Role: managed, with normalized rules.
pub fn role_object(namespace: &str, name: &str, rules: &[PolicyRule]) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": name, "namespace": namespace, "annotations": {MANAGED_ANNOTATION: TRUE}},
        "rules": rules,
    })
}

fn subject(namespace: &str, name: &str) -> Value {
    json!({"kind": SERVICE_ACCOUNT_KIND, "name": name, "namespace": namespace})
}

/// A role's RoleBinding: managed, binding the Role to the role's own ServiceAccount, then to
/// each granted ServiceAccount sorted by (namespace, name).
pub fn binding_object(namespace: &str, name: &str, granted: &[ServiceAccountReference]) -> Value {
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
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": namespace, "annotations": {MANAGED_ANNOTATION: TRUE}},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": subjects,
    })
}

/// Composes the trio of `sa` from the namespace's RoleBindings and a lookup of its Roles.
fn compose(sa: Object, bindings: &[Object], role: impl Fn(&str) -> Option<Object>) -> Trio {
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
            "ClusterRole" => trio.cluster_bound = true,
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
enum Change {
    Claims(Claims),
    ServiceAccounts(Vec<ServiceAccountReference>),
    Permission(ResourceDetails),
}

fn change_of(request: GrantRequest) -> Result<(String, Change)> {
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
fn in_namespace(refs: &[ServiceAccountReference], namespace: &str) -> Vec<ServiceAccountReference> {
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

impl Kargo {
    /// Lists the objects of `rt` in `namespace`, as the registry does.
    async fn list_all(
        &self,
        rt: &'static ResourceType,
        namespace: Option<&str>,
    ) -> Result<Vec<Object>> {
        Ok(self
            .registry
            .list(rt, namespace, &ListOptions::default())
            .await?
            .items)
    }

    /// The trio of role `name`, read as `user` (`get serviceaccounts`, `list rolebindings`,
    /// `get roles`) or, with no user, as the server.
    pub async fn trio(&self, user: Option<&UserInfo>, ns: &str, name: &str) -> Result<Trio> {
        let check = |verb: &str, rt: &ResourceType, n: &str| match user {
            Some(u) => self.authorize(u, verb, rt, ns, n),
            None => Ok(()),
        };
        check("get", &SERVICEACCOUNTS, name)?;
        if !super::is_lookup_name(name) {
            return Err(Status::not_found(&SERVICEACCOUNTS, name).into());
        }
        let sa = self
            .registry
            .get(Target::new(&SERVICEACCOUNTS, Some(ns), name))
            .await?;
        check("list", &ROLEBINDINGS, "")?;
        let bindings = self.list_all(&ROLEBINDINGS, Some(ns)).await?;
        let mut roles = BTreeMap::new();
        for rb in bindings.iter().filter_map(binding) {
            if rb.role_ref.kind == "Role"
                && binds(&rb, ns, name)
                && !roles.contains_key(&rb.role_ref.name)
            {
                check("get", &ROLES, &rb.role_ref.name)?;
                let role = self
                    .registry
                    .try_get(Target::new(&ROLES, Some(ns), &rb.role_ref.name))
                    .await?;
                roles.insert(rb.role_ref.name.clone(), role);
            }
        }
        Ok(compose(sa, &bindings, |n| roles.get(n).cloned().flatten()))
    }

    /// `GET .../roles`: every ServiceAccount of the namespace that is not a Kargo ServiceAccount,
    /// as a role, sorted by name.
    pub async fn list_roles(&self, user: &UserInfo, scope: &Scope) -> Result<Vec<Role>> {
        let ns = self.namespace_of(scope).await?;
        self.authorize(user, "list", &SERVICEACCOUNTS, ns, "")?;
        self.authorize(user, "list", &ROLEBINDINGS, ns, "")?;
        self.authorize(user, "list", &ROLES, ns, "")?;
        let accounts = self.list_all(&SERVICEACCOUNTS, Some(ns)).await?;
        let bindings = self.list_all(&ROLEBINDINGS, Some(ns)).await?;
        let roles: BTreeMap<String, Object> = self
            .list_all(&ROLES, Some(ns))
            .await?
            .into_iter()
            .map(|r| (r.name().to_owned(), r))
            .collect();
        let mut out = Vec::new();
        for sa in accounts {
            if is_kargo_service_account(&sa) {
                continue;
            }
            let trio = compose(sa, &bindings, |n| roles.get(n).cloned());
            out.push(to_role(&trio)?);
        }
        out.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        Ok(out)
    }

    /// `GET .../roles/{role}`.
    pub async fn get_role(&self, user: &UserInfo, scope: &Scope, name: &str) -> Result<Role> {
        let ns = self.namespace_of(scope).await?;
        let trio = self.trio(Some(user), ns, name).await?;
        not_a_service_account(&trio)?;
        to_role(&trio)
    }

    /// The current role, read as the server after a change (the caller could read it before).
    async fn reread(&self, ns: &str, name: &str, written: Option<&Object>) -> Result<Role> {
        if let Some(obj) = written {
            self.await_seen(obj).await;
        }
        to_role(&self.trio(None, ns, name).await?)
    }

    /// Checks that ServiceAccounts may be granted a role: each exists (404), is a Kargo
    /// ServiceAccount (400) and is Kargo-managed (400), all before anything is written.
    async fn check_grantees(
        &self,
        user: &UserInfo,
        refs: &[ServiceAccountReference],
    ) -> Result<()> {
        for r in refs {
            self.authorize(user, "get", &SERVICEACCOUNTS, &r.namespace, &r.name)?;
            if !super::is_lookup_name(&r.name) || !super::is_lookup_name(&r.namespace) {
                return Err(Status::not_found(&SERVICEACCOUNTS, &r.name).into());
            }
            let sa = self
                .registry
                .get(Target::new(&SERVICEACCOUNTS, Some(&r.namespace), &r.name))
                .await?;
            if !is_kargo_service_account(&sa) {
                return Err(Error::BadRequest(format!(
                    "ServiceAccount {} in namespace {} is not a Kargo ServiceAccount",
                    q(&r.name),
                    q(&r.namespace)
                )));
            }
            if !managed(&sa) {
                return Err(Error::BadRequest(format!(
                    "ServiceAccount {} in namespace {} is not annotated as Kargo-managed",
                    q(&r.name),
                    q(&r.namespace)
                )));
            }
        }
        Ok(())
    }

    /// `POST .../roles`: creates the trio. Any of the three existing is a 409.
    pub async fn create_role(&self, user: &UserInfo, scope: &Scope, role: Role) -> Result<Role> {
        let ns = self.namespace_of(scope).await?;
        let name = role.metadata.name.clone().unwrap_or_default();
        if name.is_empty() {
            return Err(Error::BadRequest("name should not be empty".into()));
        }
        if role
            .metadata
            .namespace
            .as_deref()
            .is_some_and(|n| !n.is_empty() && n != ns)
        {
            return Err(Error::Conflict(
                "namespace in body does not match project in URL".into(),
            ));
        }
        for rt in [&SERVICEACCOUNTS, &ROLES, &ROLEBINDINGS] {
            self.authorize(user, "get", rt, ns, &name)?;
            if super::is_lookup_name(&name)
                && self
                    .registry
                    .try_get(Target::new(rt, Some(ns), &name))
                    .await?
                    .is_some()
            {
                return Err(Status::already_exists(rt, &name).into());
            }
        }
        let rules = rules::normalize(&role.rules, true)?;
        let granted = in_namespace(&role.service_accounts, ns);
        self.check_grantees(user, &granted).await?;
        for rt in [&SERVICEACCOUNTS, &ROLES, &ROLEBINDINGS] {
            self.authorize(user, "create", rt, ns, &name)?;
        }
        let description = role
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(DESCRIPTION_ANNOTATION))
            .map(String::as_str);
        let claims = claims::from_list(&role.claims);
        let role_body = role_object(ns, &name, &rules);
        // Validation and escalation prevention before anything is written.
        let mut dry = self.write_options(user, &ROLES);
        dry.dry_run = true;
        self.registry
            .create(&ROLES, Some(ns), role_body.clone(), &dry)
            .await?;
        self.registry
            .create(
                &SERVICEACCOUNTS,
                Some(ns),
                service_account_object(ns, &name, &claims, description),
                &WriteOptions::default(),
            )
            .await?;
        let written = self
            .registry
            .create(
                &ROLES,
                Some(ns),
                role_body,
                &self.write_options(user, &ROLES),
            )
            .await?;
        self.await_seen(&written.object).await;
        let written = self
            .registry
            .create(
                &ROLEBINDINGS,
                Some(ns),
                binding_object(ns, &name, &granted),
                &self.write_options(user, &ROLEBINDINGS),
            )
            .await?;
        self.reread(ns, &name, Some(&written.object)).await
    }

    /// Writes a role's Role (creating it when `existing` is `None`) with new rules, as `user`;
    /// `dry_run` only validates and checks escalation.
    async fn write_rules(
        &self,
        user: &UserInfo,
        ns: &str,
        name: &str,
        existing: Option<&Object>,
        rules: &[PolicyRule],
        dry_run: bool,
    ) -> Result<Object> {
        let mut options = self.write_options(user, &ROLES);
        options.dry_run = dry_run;
        match existing {
            None => Ok(self
                .registry
                .create(&ROLES, Some(ns), role_object(ns, name, rules), &options)
                .await?
                .object),
            Some(_) => {
                let rules =
                    serde_json::to_value(rules).map_err(|e| Error::Stored(e.to_string()))?;
                Ok(self
                    .registry
                    .update_with(Target::new(&ROLES, Some(ns), name), &options, |current| {
                        let mut next = current.clone();
                        next["rules"] = rules.clone();
                        Ok(next)
                    })
                    .await?)
            }
        }
    }

    /// Authorizes the write of a role's Role: `update` if it exists, else `create`.
    fn authorize_role_write(
        &self,
        user: &UserInfo,
        ns: &str,
        name: &str,
        existing: Option<&Object>,
    ) -> Result<()> {
        let verb = if existing.is_some() {
            "update"
        } else {
            "create"
        };
        self.authorize(user, verb, &ROLES, ns, name)
    }

    /// Changes the annotations of a role's ServiceAccount, as `user`.
    async fn update_annotations(
        &self,
        user: &UserInfo,
        ns: &str,
        name: &str,
        change: impl Fn(&mut serde_json::Map<String, Value>) -> Result<()>,
    ) -> Result<Object> {
        self.authorize(user, "update", &SERVICEACCOUNTS, ns, name)?;
        let mut failure = None;
        let result = self
            .registry
            .update_with(
                Target::new(&SERVICEACCOUNTS, Some(ns), name),
                &WriteOptions::default(),
                |current| {
                    let mut next = current.clone();
                    let meta = kargo_registry::object::meta_mut(&mut next);
                    let annotations = meta
                        .entry("annotations")
                        .or_insert_with(|| Value::Object(Default::default()));
                    if !annotations.is_object() {
                        *annotations = Value::Object(Default::default());
                    }
                    if let Some(map) = annotations.as_object_mut()
                        && let Err(e) = change(map)
                    {
                        failure = Some(e);
                        return Err(Status::bad_request("annotations"));
                    }
                    Ok(next)
                },
            )
            .await;
        match (result, failure) {
            (_, Some(e)) => Err(e),
            (r, None) => Ok(r?),
        }
    }

    /// `PUT .../roles/{role}`: replaces claims, description and rules; creates a missing Role or
    /// RoleBinding.
    pub async fn update_role(
        &self,
        user: &UserInfo,
        scope: &Scope,
        name: &str,
        role: Role,
    ) -> Result<Role> {
        let ns = self.namespace_of(scope).await?;
        if role
            .metadata
            .name
            .as_deref()
            .is_some_and(|n| !n.is_empty() && n != name)
        {
            return Err(Error::BadRequest(
                "name in body does not match role name in URL".into(),
            ));
        }
        if role
            .metadata
            .namespace
            .as_deref()
            .is_some_and(|n| !n.is_empty() && n != ns)
        {
            return Err(Error::Conflict(
                "namespace in body does not match project in URL".into(),
            ));
        }
        let trio = self.trio(Some(user), ns, name).await?;
        not_a_service_account(&trio)?;
        let (existing_role, existing_binding) = manageable(&trio)?;
        let rules = rules::normalize(&role.rules, true)?;
        let granted = in_namespace(&role.service_accounts, ns);
        if existing_binding.is_none() {
            self.check_grantees(user, &granted).await?;
            self.authorize(user, "create", &ROLEBINDINGS, ns, name)?;
        }
        self.authorize(user, "update", &SERVICEACCOUNTS, ns, name)?;
        self.authorize_role_write(user, ns, name, existing_role)?;
        self.write_rules(user, ns, name, existing_role, &rules, true)
            .await?;
        let claims = claims::render(&claims::from_list(&role.claims));
        let description = role
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(DESCRIPTION_ANNOTATION))
            .cloned();
        self.update_annotations(user, ns, name, |a| {
            a.insert(CLAIMS_ANNOTATION.into(), claims.clone().into());
            match &description {
                Some(d) => a.insert(DESCRIPTION_ANNOTATION.into(), d.clone().into()),
                None => a.remove(DESCRIPTION_ANNOTATION),
            };
            Ok(())
        })
        .await?;
        let mut last = self
            .write_rules(user, ns, name, existing_role, &rules, false)
            .await?;
        if existing_binding.is_none() {
            // The binding's escalation check reads the Role from the auth view.
            self.await_seen(&last).await;
            last = self
                .registry
                .create(
                    &ROLEBINDINGS,
                    Some(ns),
                    binding_object(ns, name, &granted),
                    &self.write_options(user, &ROLEBINDINGS),
                )
                .await?
                .object;
        }
        self.reread(ns, name, Some(&last)).await
    }

    /// `DELETE .../roles/{role}`: deletes the Role, the RoleBinding and the ServiceAccount.
    pub async fn delete_role(&self, user: &UserInfo, scope: &Scope, name: &str) -> Result<()> {
        let ns = self.namespace_of(scope).await?;
        let trio = self.trio(Some(user), ns, name).await?;
        not_a_service_account(&trio)?;
        let (role, rb) = manageable(&trio)?;
        let parts: Vec<(&'static ResourceType, &Object)> = [
            role.map(|r| (&ROLES, r)),
            rb.map(|r| (&ROLEBINDINGS, r)),
            Some((&SERVICEACCOUNTS, &trio.sa)),
        ]
        .into_iter()
        .flatten()
        .collect();
        for (rt, obj) in &parts {
            self.authorize(user, "delete", rt, ns, obj.name())?;
        }
        for (rt, obj) in parts {
            match self
                .registry
                .delete(
                    Target::new(rt, Some(ns), obj.name()),
                    &DeleteOptions::default(),
                )
                .await
            {
                Ok(deleted) => self.await_seen(deleted.object()).await,
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// `POST .../roles/grants`.
    pub async fn grant(
        &self,
        user: &UserInfo,
        scope: &Scope,
        request: GrantRequest,
    ) -> Result<Role> {
        let ns = self.namespace_of(scope).await?;
        let (name, change) = change_of(request)?;
        let trio = self.trio(Some(user), ns, &name).await?;
        not_a_service_account(&trio)?;
        let (role, rb) = manageable(&trio)?;
        let written = match change {
            Change::Claims(more) => {
                self.update_annotations(user, ns, &name, |a| {
                    let mut have = claims::parse(&string_map(a))?;
                    claims::amend(&mut have, &more);
                    a.insert(CLAIMS_ANNOTATION.into(), claims::render(&have).into());
                    Ok(())
                })
                .await?
            }
            Change::ServiceAccounts(refs) => {
                let refs = in_namespace(&refs, ns);
                self.check_grantees(user, &refs).await?;
                self.add_subjects(user, ns, &name, rb, &refs).await?
            }
            Change::Permission(details) => {
                let group = group_of(&details.resource_type)?;
                let resource = details.resource_type.trim();
                let new = rules::rule(
                    group,
                    resource,
                    details.resource_name.trim(),
                    rules::normalize_verbs(resource, &details.verbs, true),
                );
                let mut all = role.map(rules_of).unwrap_or_default();
                all.push(new);
                let merged = rules::normalize(&all, true)?;
                self.authorize_role_write(user, ns, &name, role)?;
                if rb.is_none() {
                    self.authorize(user, "create", &ROLEBINDINGS, ns, &name)?;
                }
                let mut last = self
                    .write_rules(user, ns, &name, role, &merged, false)
                    .await?;
                if rb.is_none() {
                    self.await_seen(&last).await;
                    last = self
                        .registry
                        .create(
                            &ROLEBINDINGS,
                            Some(ns),
                            binding_object(ns, &name, &[]),
                            &self.write_options(user, &ROLEBINDINGS),
                        )
                        .await?
                        .object;
                }
                last
            }
        };
        self.reread(ns, &name, Some(&written)).await
    }

    /// Adds ServiceAccount subjects to a role's RoleBinding, creating it if missing.
    async fn add_subjects(
        &self,
        user: &UserInfo,
        ns: &str,
        name: &str,
        rb: Option<&Object>,
        refs: &[ServiceAccountReference],
    ) -> Result<Object> {
        let options = self.write_options(user, &ROLEBINDINGS);
        let Some(rb) = rb else {
            self.authorize(user, "create", &ROLEBINDINGS, ns, name)?;
            return Ok(self
                .registry
                .create(
                    &ROLEBINDINGS,
                    Some(ns),
                    binding_object(ns, name, refs),
                    &options,
                )
                .await?
                .object);
        };
        self.authorize(user, "update", &ROLEBINDINGS, ns, rb.name())?;
        Ok(self
            .registry
            .update_with(
                Target::new(&ROLEBINDINGS, Some(ns), rb.name()),
                &options,
                |current| {
                    let mut next = current.clone();
                    let binding_ns = current.namespace().unwrap_or_default().to_owned();
                    let mut subjects: Vec<Subject> = current
                        .get("subjects")
                        .and_then(|s| serde_json::from_value(s.clone()).ok())
                        .unwrap_or_default();
                    for r in refs {
                        if !subjects
                            .iter()
                            .any(|s| subject_is(s, &binding_ns, &r.namespace, &r.name))
                        {
                            subjects.push(Subject {
                                kind: SERVICE_ACCOUNT_KIND.into(),
                                name: r.name.clone(),
                                namespace: Some(r.namespace.clone()),
                                api_group: None,
                            });
                        }
                    }
                    next["subjects"] = serde_json::to_value(subjects)
                        .map_err(|e| Status::internal(e.to_string()))?;
                    Ok(next)
                },
            )
            .await?)
    }

    /// `POST .../roles/revocations`.
    pub async fn revoke(
        &self,
        user: &UserInfo,
        scope: &Scope,
        request: GrantRequest,
    ) -> Result<Role> {
        let ns = self.namespace_of(scope).await?;
        let (name, change) = change_of(request)?;
        let trio = self.trio(Some(user), ns, &name).await?;
        not_a_service_account(&trio)?;
        let (role, rb) = manageable(&trio)?;
        let written = match change {
            Change::Claims(less) => Some(
                self.update_annotations(user, ns, &name, |a| {
                    let mut have = claims::parse(&string_map(a))?;
                    claims::drop(&mut have, &less);
                    a.insert(CLAIMS_ANNOTATION.into(), claims::render(&have).into());
                    Ok(())
                })
                .await?,
            ),
            Change::ServiceAccounts(refs) => match rb {
                None => None,
                Some(rb) => {
                    let refs = in_namespace(&refs, ns);
                    self.authorize(user, "update", &ROLEBINDINGS, ns, rb.name())?;
                    Some(
                        self.registry
                            .update_with(
                                Target::new(&ROLEBINDINGS, Some(ns), rb.name()),
                                &self.write_options(user, &ROLEBINDINGS),
                                |current| {
                                    let mut next = current.clone();
                                    let binding_ns =
                                        current.namespace().unwrap_or_default().to_owned();
                                    let mut subjects: Vec<Subject> = current
                                        .get("subjects")
                                        .and_then(|s| serde_json::from_value(s.clone()).ok())
                                        .unwrap_or_default();
                                    subjects.retain(|s| {
                                        !refs.iter().any(|r| {
                                            subject_is(s, &binding_ns, &r.namespace, &r.name)
                                        })
                                    });
                                    next["subjects"] = serde_json::to_value(subjects)
                                        .map_err(|e| Status::internal(e.to_string()))?;
                                    Ok(next)
                                },
                            )
                            .await?,
                    )
                }
            },
            Change::Permission(details) => {
                group_of(&details.resource_type)?;
                match role {
                    None => None,
                    Some(role) => {
                        let current = rules::normalize(&rules_of(role), false)?;
                        let left = rules::revoke(
                            current,
                            &details.resource_type,
                            &details.resource_name,
                            &details.verbs,
                        )?;
                        self.authorize(user, "update", &ROLES, ns, &name)?;
                        Some(
                            self.write_rules(user, ns, &name, Some(role), &left, false)
                                .await?,
                        )
                    }
                }
            }
        };
        self.reread(ns, &name, written.as_ref()).await
    }

    /// `GET /v1beta1/system/roles`: the ServiceAccounts of the system namespace bound to
    /// ClusterRoles by ClusterRoleBindings, as read-only roles with the ClusterRoles' rules.
    pub async fn list_system_roles(&self, user: &UserInfo) -> Result<Vec<Role>> {
        let ns = Scope::System.namespace();
        self.authorize(user, "list", &SERVICEACCOUNTS, ns, "")?;
        self.authorize(user, "list", &CLUSTERROLEBINDINGS, "", "")?;
        self.authorize(user, "list", &CLUSTERROLES, "", "")?;
        let accounts = self.list_all(&SERVICEACCOUNTS, Some(ns)).await?;
        let mut out = Vec::new();
        for sa in accounts {
            if let Some(role) = self.system_role(sa).await? {
                out.push(role);
            }
        }
        Ok(out)
    }

    /// `GET /v1beta1/system/roles/{role}`.
    pub async fn get_system_role(&self, user: &UserInfo, name: &str) -> Result<Role> {
        let ns = Scope::System.namespace();
        self.authorize(user, "get", &SERVICEACCOUNTS, ns, name)?;
        self.authorize(user, "list", &CLUSTERROLEBINDINGS, "", "")?;
        self.authorize(user, "list", &CLUSTERROLES, "", "")?;
        if !super::is_lookup_name(name) {
            return Err(Status::not_found(&SERVICEACCOUNTS, name).into());
        }
        let sa = self
            .registry
            .get(Target::new(&SERVICEACCOUNTS, Some(ns), name))
            .await?;
        self.system_role(sa).await?.ok_or_else(|| {
            Error::NotFound(format!(
                "ServiceAccount {} in namespace {} is not a system role",
                q(name),
                q(ns)
            ))
        })
    }

    /// The system role of a system ServiceAccount, if ClusterRoleBindings bind it.
    async fn system_role(&self, sa: Object) -> Result<Option<Role>> {
        let (ns, name) = (
            sa.namespace().unwrap_or_default().to_owned(),
            sa.name().to_owned(),
        );
        let mut rules = Vec::new();
        let mut others = BTreeSet::new();
        let mut bound = false;
        for crb in self.list_all(&CLUSTERROLEBINDINGS, None).await? {
            let Some(subjects) = crb
                .get("subjects")
                .and_then(|s| serde_json::from_value::<Vec<Subject>>(s.clone()).ok())
            else {
                continue;
            };
            if !subjects.iter().any(|s| subject_is(s, "", &ns, &name)) {
                continue;
            }
            bound = true;
            for s in subjects
                .iter()
                .filter(|s| s.kind == SERVICE_ACCOUNT_KIND && !subject_is(s, "", &ns, &name))
            {
                others.insert((s.namespace.clone().unwrap_or_default(), s.name.clone()));
            }
            let role_name = crb
                .get("roleRef")
                .and_then(|r| r.get("name"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            if let Some(cr) = self
                .registry
                .try_get(Target::new(&CLUSTERROLES, None, role_name))
                .await?
            {
                rules.extend(rules_of(&cr));
            }
        }
        if !bound {
            return Ok(None);
        }
        let mut role = to_role(&Trio {
            sa,
            roles: Vec::new(),
            bindings: Vec::new(),
            cluster_bound: true,
        })?;
        role.rules = rules;
        role.service_accounts = others
            .into_iter()
            .map(|(namespace, name)| ServiceAccountReference { name, namespace })
            .collect();
        Ok(Some(role))
    }
}

fn string_map(map: &serde_json::Map<String, Value>) -> BTreeMap<String, String> {
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
}

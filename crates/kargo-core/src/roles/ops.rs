//! The operations on Kargo Roles: each reads the trio of a role from the registry, checks it with
//! [`super::model`], authorizes every underlying write as the caller and writes it.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::rbac::v1::{PolicyRule, Subject};
use kargo_api::kargo::{
    CLAIMS_ANNOTATION, DESCRIPTION_ANNOTATION, GrantRequest, ResourceDetails, Role,
    ServiceAccountReference,
};
use kargo_api::resources::{
    CLUSTERROLEBINDINGS, CLUSTERROLES, ROLEBINDINGS, ROLES, ResourceType, SERVICEACCOUNTS,
};
use serde_json::Value;

use super::model::*;
use crate::claims;
use crate::rules::{self, group_of};
use crate::{Error, Kargo, Result, Scope};
use kargo_auth::rbac::UserInfo;
use kargo_registry::events::{self, EventType, Occurrence};
use kargo_registry::status::Status;
use kargo_registry::{DeleteOptions, ListOptions, Meta, Object, Target};

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
    pub(crate) async fn trio(&self, user: Option<&UserInfo>, ns: &str, name: &str) -> Result<Trio> {
        let check = |verb: &str, rt: &ResourceType, n: &str| match user {
            Some(u) => self.authorize(u, verb, rt, ns, n),
            None => Ok(()),
        };
        check("get", &SERVICEACCOUNTS, name)?;
        let sa = self.lookup(&SERVICEACCOUNTS, Some(ns), name).await?;
        check("list", &ROLEBINDINGS, "")?;
        let bindings = self.list_all(&ROLEBINDINGS, Some(ns)).await?;
        let mut roles = BTreeMap::new();
        for rb in bindings.iter().filter_map(binding) {
            if rb.role_ref.kind == ROLES.kind
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
        let trio = self.role_trio(user, ns, name).await?;
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
            if !crate::is_lookup_name(&r.namespace) {
                return Err(Status::not_found(&SERVICEACCOUNTS, &r.name).into());
            }
            let sa = self
                .lookup(&SERVICEACCOUNTS, Some(&r.namespace), &r.name)
                .await?;
            let named = || object_in("ServiceAccount", &r.name, &r.namespace);
            if !is_kargo_service_account(&sa) {
                return Err(Error::BadRequest(
                    named() + " is not a Kargo ServiceAccount",
                ));
            }
            if !managed(&sa) {
                return Err(Error::BadRequest(named() + UNMANAGED));
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
        namespace_matches(&role, ns)?;
        for rt in [&SERVICEACCOUNTS, &ROLES, &ROLEBINDINGS] {
            self.authorize(user, "get", rt, ns, &name)?;
            if crate::is_lookup_name(&name)
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
        let description = description_of(&role);
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
                &crate::kargo_writes(),
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
        let written = self.create_binding(user, ns, &name, &granted).await?;
        self.reread(ns, &name, Some(&written)).await
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
                &crate::kargo_writes(),
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
        if names_other(role.metadata.name.as_deref(), name) {
            return Err(Error::BadRequest(
                "name in body does not match role name in URL".into(),
            ));
        }
        namespace_matches(&role, ns)?;
        let trio = self.role_trio(user, ns, name).await?;
        let (existing_role, existing_binding) = manageable(&trio)?;
        let rules = rules::normalize(&role.rules, true)?;
        let granted = in_namespace(&role.service_accounts, ns);
        if existing_binding.is_none() {
            self.check_grantees(user, &granted).await?;
            self.authorize(user, "create", &ROLEBINDINGS, ns, name)?;
        }
        self.authorize(user, "update", &SERVICEACCOUNTS, ns, name)?;
        self.authorize(user, role_write_verb(existing_role), &ROLES, ns, name)?;
        self.write_rules(user, ns, name, existing_role, &rules, true)
            .await?;
        let claims = claims::render(&claims::from_list(&role.claims));
        let description = description_of(&role).map(str::to_owned);
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
            last = self.bind_after(&last, user, ns, name, &granted).await?;
        }
        self.reread(ns, name, Some(&last)).await
    }

    /// `DELETE .../roles/{role}`: deletes the Role, the RoleBinding and the ServiceAccount, and so
    /// (garbage collection, the token controller) the role's API tokens.
    pub async fn delete_role(&self, user: &UserInfo, scope: &Scope, name: &str) -> Result<()> {
        let ns = self.namespace_of(scope).await?;
        let trio = self.role_trio(user, ns, name).await?;
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
        // Its tokens (API tokens) go with its ServiceAccount.
        if kargo_registry::touched::is_recording() {
            self.note_tokens_collected(ns, name).await;
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

    /// The trio of role `name`, read as `user`; 400 if it is a Kargo ServiceAccount.
    async fn role_trio(&self, user: &UserInfo, ns: &str, name: &str) -> Result<Trio> {
        let trio = self.trio(Some(user), ns, name).await?;
        not_a_service_account(&trio)?;
        Ok(trio)
    }

    /// Creates a role's RoleBinding with its own ServiceAccount and `refs` as subjects, as `user`.
    async fn create_binding(
        &self,
        user: &UserInfo,
        ns: &str,
        name: &str,
        refs: &[ServiceAccountReference],
    ) -> Result<Object> {
        Ok(self
            .registry
            .create(
                &ROLEBINDINGS,
                Some(ns),
                binding_object(ns, name, refs),
                &self.write_options(user, &ROLEBINDINGS),
            )
            .await?
            .object)
    }

    /// Creates a role's missing RoleBinding once the auth view has seen `role` (the binding's
    /// escalation check reads the Role from it).
    async fn bind_after(
        &self,
        role: &Object,
        user: &UserInfo,
        ns: &str,
        name: &str,
        refs: &[ServiceAccountReference],
    ) -> Result<Object> {
        self.await_seen(role).await;
        self.create_binding(user, ns, name, refs).await
    }

    /// Changes the subjects of a role's RoleBinding `rb`, as `user` (`update rolebindings`).
    async fn update_subjects(
        &self,
        user: &UserInfo,
        ns: &str,
        rb: &Object,
        change: impl Fn(&Object) -> std::result::Result<Object, Status>,
    ) -> Result<Object> {
        self.authorize(user, "update", &ROLEBINDINGS, ns, rb.name())?;
        Ok(self
            .registry
            .update_with(
                Target::new(&ROLEBINDINGS, Some(ns), rb.name()),
                &self.write_options(user, &ROLEBINDINGS),
                change,
            )
            .await?)
    }

    /// Changes the claims annotation of a role's ServiceAccount, as `user`.
    async fn update_claims(
        &self,
        user: &UserInfo,
        ns: &str,
        name: &str,
        change: impl Fn(&mut claims::Claims),
    ) -> Result<Object> {
        self.update_annotations(user, ns, name, |a| {
            let mut have = claims::parse(&string_map(a))?;
            change(&mut have);
            a.insert(CLAIMS_ANNOTATION.into(), claims::render(&have).into());
            Ok(())
        })
        .await
    }

    /// `POST .../roles/grants`.
    pub async fn grant(&self, user: &UserInfo, scope: &Scope, req: GrantRequest) -> Result<Role> {
        self.change_role(user, scope, req, Way::Grant).await
    }

    /// `POST .../roles/revocations`.
    pub async fn revoke(&self, user: &UserInfo, scope: &Scope, req: GrantRequest) -> Result<Role> {
        self.change_role(user, scope, req, Way::Revoke).await
    }

    /// Grants or revokes what `request` names, and answers with the role as it then is.
    async fn change_role(
        &self,
        user: &UserInfo,
        scope: &Scope,
        request: GrantRequest,
        way: Way,
    ) -> Result<Role> {
        let ns = self.namespace_of(scope).await?;
        let (name, change) = change_of(request)?;
        let trio = self.role_trio(user, ns, &name).await?;
        let (role, rb) = manageable(&trio)?;
        let name = name.as_str();
        let written = match (way, change) {
            (Way::Grant, Change::Claims(more)) => Some(
                self.update_claims(user, ns, name, |have| claims::amend(have, &more))
                    .await?,
            ),
            (Way::Revoke, Change::Claims(less)) => Some(
                self.update_claims(user, ns, name, |have| claims::drop(have, &less))
                    .await?,
            ),
            (Way::Grant, Change::ServiceAccounts(refs)) => {
                let refs = in_namespace(&refs, ns);
                self.check_grantees(user, &refs).await?;
                let binding = self.add_subjects(user, ns, name, rb, &refs).await?;
                let accounts: Vec<String> = refs.iter().map(|r| format!("{:?}", r.name)).collect();
                let message = format!(
                    "Role {name:?} granted to ServiceAccount {}",
                    accounts.join(", ")
                );
                let occurrence = Occurrence {
                    kind: EventType::Normal,
                    reason: "RoleGranted",
                    message: &message,
                };
                events::record(&self.registry, &ROLEBINDINGS, &binding, occurrence).await;
                Some(binding)
            }
            (Way::Revoke, Change::ServiceAccounts(refs)) => match rb {
                None => None,
                Some(rb) => {
                    let refs = in_namespace(&refs, ns);
                    Some(
                        self.update_subjects(user, ns, rb, |current| {
                            without_subjects(current, &refs)
                        })
                        .await?,
                    )
                }
            },
            (Way::Grant, Change::Permission(details)) => Some(
                self.grant_permission(user, ns, name, (role, rb), &details)
                    .await?,
            ),
            (Way::Revoke, Change::Permission(details)) => {
                group_of(&details.resource_type)?;
                match role {
                    None => None,
                    Some(role) => Some(
                        self.revoke_permission(user, ns, name, role, &details)
                            .await?,
                    ),
                }
            }
        };
        self.reread(ns, name, written.as_ref()).await
    }

    /// Merges a permission into a role's rules, creating its missing Role and RoleBinding.
    async fn grant_permission(
        &self,
        user: &UserInfo,
        ns: &str,
        name: &str,
        (role, rb): (Option<&Object>, Option<&Object>),
        details: &ResourceDetails,
    ) -> Result<Object> {
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
        self.authorize(user, role_write_verb(role), &ROLES, ns, name)?;
        if rb.is_none() {
            self.authorize(user, "create", &ROLEBINDINGS, ns, name)?;
        }
        let mut last = self
            .write_rules(user, ns, name, role, &merged, false)
            .await?;
        if rb.is_none() {
            last = self.bind_after(&last, user, ns, name, &[]).await?;
        }
        Ok(last)
    }

    /// Removes a permission from the rules of a role's existing Role.
    async fn revoke_permission(
        &self,
        user: &UserInfo,
        ns: &str,
        name: &str,
        role: &Object,
        details: &ResourceDetails,
    ) -> Result<Object> {
        let current = rules::normalize(&rules_of(role), false)?;
        let left = rules::revoke(
            current,
            &details.resource_type,
            &details.resource_name,
            &details.verbs,
        )?;
        self.authorize(user, "update", &ROLES, ns, name)?;
        self.write_rules(user, ns, name, Some(role), &left, false)
            .await
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
        let Some(rb) = rb else {
            self.authorize(user, "create", &ROLEBINDINGS, ns, name)?;
            return self.create_binding(user, ns, name, refs).await;
        };
        self.update_subjects(user, ns, rb, |current| with_subjects(current, refs))
            .await
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
        let sa = self.lookup(&SERVICEACCOUNTS, Some(ns), name).await?;
        self.system_role(sa).await?.ok_or_else(|| {
            Error::NotFound(object_in("ServiceAccount", name, ns) + " is not a system role")
        })
    }

    /// The system role of a system ServiceAccount, if ClusterRoleBindings bind it.
    pub(crate) async fn system_role(&self, sa: Object) -> Result<Option<Role>> {
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
                .filter(|s| s.kind == SERVICEACCOUNTS.kind && !subject_is(s, "", &ns, &name))
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

/// A role body's namespace, if it names one, is the project's (409 otherwise).
fn namespace_matches(role: &Role, ns: &str) -> Result<()> {
    if names_other(role.metadata.namespace.as_deref(), ns) {
        return Err(Error::Conflict(
            "namespace in body does not match project in URL".into(),
        ));
    }
    Ok(())
}

/// The description annotation of a role body.
fn description_of(role: &Role) -> Option<&str> {
    role.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(DESCRIPTION_ANNOTATION))
        .map(String::as_str)
}

/// Whether a body names something (not empty) other than `expected`.
fn names_other(given: Option<&str>, expected: &str) -> bool {
    given.is_some_and(|n| !n.is_empty() && n != expected)
}

/// The verb of a write of a role's Role: `update` if it exists, else `create`.
fn role_write_verb(existing: Option<&Object>) -> &'static str {
    if existing.is_some() {
        "update"
    } else {
        "create"
    }
}

/// Whether a request grants or revokes.
#[derive(Clone, Copy)]
enum Way {
    Grant,
    Revoke,
}

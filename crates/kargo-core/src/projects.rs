//! Projects: a cluster-scoped `Project` (`kargo.akuity.io/v1alpha1`) and its namespace of the
//! same name, labeled `kargo.akuity.io/project: "true"` and owned by the Project (so deleting the
//! Project deletes the namespace, and so everything in it). A new project gets the default roles
//! `kargo-admin`, `kargo-viewer` and `kargo-promoter`; [`initialize`] does that, once, for the
//! REST API and for the project controller (a Project applied with kubectl).
//!
//! Also the system objects every server has from its first start ([`bootstrap_system`]): the
//! `kargo` namespace, its system ServiceAccounts and their ClusterRoles.

use k8s_openapi::api::rbac::v1::PolicyRule;
use kargo_api::kargo::{
    CLAIMS_ANNOTATION, CREATE_ACTOR_ANNOTATION, PROJECT_LABEL, SERVICE_ACCOUNT_LABEL,
    SYSTEM_NAMESPACE, TRUE,
};
use kargo_api::resources::{
    self as res, CLUSTERROLEBINDINGS, CLUSTERROLES, NAMESPACES, PROJECTS, ROLEBINDINGS, ROLES,
    ResourceType, SERVICEACCOUNTS,
};
use serde_json::{Value, json};

use super::claims::{self, Claims};
use super::roles::{binding_object, role_object, service_account_object};
use super::rules;
use super::service_accounts::sorted_list;
use super::{Error, Kargo, Result, q};
use kargo_auth::rbac::UserInfo;
use kargo_registry::status::Status;
use kargo_registry::{DeleteOptions, ListOptions, Meta, Object, Registry, Target};

/// The phase a Project is in once its namespace and default roles exist.
pub(crate) const READY: &str = "Ready";

fn rule(group: &str, resources: &[&str], verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![group.to_owned()]),
        resources: Some(resources.iter().map(|r| (*r).to_owned()).collect()),
        verbs: verbs.iter().map(|v| (*v).to_owned()).collect(),
        resource_names: None,
        non_resource_urls: None,
    }
}

const READ: &[&str] = &["get", "list", "watch"];
const ALL: &[&str] = &["*"];
const CORE: &str = res::CORE_GROUP;
const RBAC: &str = res::RBAC_GROUP;
const KARGO: &str = res::KARGO_GROUP;
const ARGO: &str = rules::ARGO_GROUP;

fn viewer_rules() -> Vec<PolicyRule> {
    vec![
        rule(CORE, &["configmaps", "events", "serviceaccounts"], READ),
        rule(RBAC, &["rolebindings", "roles"], READ),
        rule(
            KARGO,
            &[
                "freights",
                "promotions",
                "stages",
                "warehouses",
                "projectconfigs",
            ],
            READ,
        ),
        rule(ARGO, &["analysisruns", "analysistemplates"], READ),
    ]
}

/// The default roles of a project, with their rules (not yet normalized).
pub(crate) fn default_roles() -> Vec<(&'static str, Vec<PolicyRule>)> {
    let admin = vec![
        rule(CORE, &["events"], READ),
        rule(CORE, &["configmaps", "secrets", "serviceaccounts"], ALL),
        rule(RBAC, &["rolebindings", "roles"], ALL),
        rule(
            KARGO,
            &["freights", "stages", "warehouses", "projectconfigs"],
            ALL,
        ),
        rule(KARGO, &["stages"], &["promote"]),
        rule(
            KARGO,
            &["promotions"],
            &["create", "delete", "get", "list", "watch", "patch"],
        ),
        rule(KARGO, &["freights/status"], &["patch"]),
        rule(ARGO, &["analysisruns"], &["delete", "get", "list", "watch"]),
        rule(ARGO, &["analysistemplates"], ALL),
    ];
    let mut promoter = viewer_rules();
    promoter.extend([
        rule(KARGO, &["stages"], &["promote"]),
        rule(KARGO, &["promotions"], &["create", "get", "list", "watch"]),
        rule(KARGO, &["freights/status"], &["patch"]),
    ]);
    vec![
        ("kargo-admin", admin),
        ("kargo-viewer", viewer_rules()),
        ("kargo-promoter", promoter),
    ]
}

/// The system ServiceAccounts (namespace `kargo`) and their same-named ClusterRoles.
pub(crate) fn system_roles() -> Vec<(&'static str, Vec<PolicyRule>)> {
    vec![
        (
            "kargo-admin",
            vec![
                rule(CORE, &["events", "namespaces"], READ),
                rule(CORE, &["configmaps", "secrets", "serviceaccounts"], ALL),
                rule(RBAC, &["rolebindings", "roles"], ALL),
                rule(
                    KARGO,
                    &[
                        "freights",
                        "freights/status",
                        "projectconfigs",
                        "projects",
                        "promotions",
                        "stages",
                        "warehouses",
                    ],
                    ALL,
                ),
                rule(ARGO, &["analysisruns", "analysistemplates"], ALL),
            ],
        ),
        (
            "kargo-project-creator",
            vec![rule(KARGO, &["projects"], &["create"])],
        ),
        ("kargo-user", vec![rule(KARGO, &["projects"], READ)]),
        (
            "kargo-viewer",
            vec![
                rule(
                    CORE,
                    &["configmaps", "events", "namespaces", "serviceaccounts"],
                    READ,
                ),
                rule(
                    RBAC,
                    &[
                        "clusterrolebindings",
                        "clusterroles",
                        "rolebindings",
                        "roles",
                    ],
                    READ,
                ),
                rule(
                    KARGO,
                    &[
                        "freights",
                        "projectconfigs",
                        "projects",
                        "promotions",
                        "stages",
                        "warehouses",
                    ],
                    READ,
                ),
                rule(ARGO, &["analysisruns", "analysistemplates"], READ),
            ],
        ),
    ]
}

/// Creates an object unless one of that name exists (first start, another replica first).
async fn ensure(
    registry: &Registry,
    rt: &'static ResourceType,
    namespace: Option<&str>,
    body: Value,
) -> Result<Option<Object>> {
    let name = body.name().to_owned();
    if registry
        .try_get(Target::new(rt, namespace, &name))
        .await?
        .is_some()
    {
        return Ok(None);
    }
    match registry
        .create(rt, namespace, body, &crate::kargo_writes())
        .await
    {
        Ok(w) => Ok(Some(w.object)),
        Err(e) if e.is_already_exists() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The claims that map people to the system roles, from the server's configuration
/// (`--oidc-admin-claim`, `--oidc-viewer-claim`): upstream's `api.oidc.admins` / `viewers`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SystemClaims {
    /// `name=value` pairs mapping people to the system `kargo-admin`.
    pub admins: Vec<(String, String)>,
    /// `name=value` pairs mapping people to the system `kargo-viewer`.
    pub viewers: Vec<(String, String)>,
}

impl SystemClaims {
    /// The claims of a system ServiceAccount (none for those not configured here).
    fn of(&self, account: &str) -> Claims {
        let pairs = match account {
            "kargo-admin" => &self.admins,
            "kargo-viewer" => &self.viewers,
            _ => return Claims::new(),
        };
        let mut out = Claims::new();
        for (name, value) in pairs {
            out.entry(name.clone()).or_default().insert(value.clone());
        }
        out
    }
}

/// Makes a system ServiceAccount's claims annotation say `claims` (no annotation when none), as
/// upstream's chart writes it from its values: the configuration is authoritative, so a claim
/// removed from it stops mapping at the next start.
async fn set_system_claims(registry: &Registry, account: &str, claims: &Claims) -> Result<()> {
    let wanted = (!claims.is_empty()).then(|| claims::render(claims));
    let target = Target::new(&SERVICEACCOUNTS, Some(SYSTEM_NAMESPACE), account);
    let current = registry.try_get(target).await?;
    let have = current
        .as_ref()
        .and_then(|sa| sa.annotation(CLAIMS_ANNOTATION))
        .map(str::to_owned);
    if current.is_none() || have == wanted {
        return Ok(());
    }
    registry
        .update_with(target, &crate::kargo_writes(), |current| {
            let mut next = current.clone();
            let mut annotations = current
                .meta()
                .and_then(|m| m.get("annotations"))
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            match &wanted {
                Some(value) => annotations.insert(CLAIMS_ANNOTATION.into(), value.clone().into()),
                None => annotations.remove(CLAIMS_ANNOTATION),
            };
            kargo_registry::object::set_meta(
                &mut next,
                "annotations",
                Some(Value::Object(annotations)),
            );
            Ok(next)
        })
        .await?;
    Ok(())
}

/// The system objects: namespace `kargo`, its system ServiceAccounts (labeled as Kargo
/// ServiceAccounts, not managed; `kargo-admin` and `kargo-viewer` annotated with the configured
/// claims), their ClusterRoles and ClusterRoleBindings. Idempotent.
pub async fn bootstrap_system(registry: &Registry, system_claims: &SystemClaims) -> Result<()> {
    ensure(
        registry,
        &NAMESPACES,
        None,
        json!({"metadata": {"name": SYSTEM_NAMESPACE}}),
    )
    .await?;
    for (name, rules) in system_roles() {
        ensure(
            registry,
            &SERVICEACCOUNTS,
            Some(SYSTEM_NAMESPACE),
            json!({"metadata": {"name": name, "namespace": SYSTEM_NAMESPACE, "labels": {SERVICE_ACCOUNT_LABEL: TRUE}}}),
        )
        .await?;
        set_system_claims(registry, name, &system_claims.of(name)).await?;
        ensure(
            registry,
            &CLUSTERROLES,
            None,
            json!({"metadata": {"name": name}, "rules": rules}),
        )
        .await?;
        ensure(
            registry,
            &CLUSTERROLEBINDINGS,
            None,
            json!({
                "metadata": {"name": name},
                "roleRef": {"apiGroup": RBAC, "kind": CLUSTERROLES.kind, "name": name},
                "subjects": [{"kind": SERVICEACCOUNTS.kind, "name": name, "namespace": SYSTEM_NAMESPACE}],
            }),
        )
        .await?;
    }
    Ok(())
}

/// What [`initialize`] did.
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub(crate) enum Initialized {
    /// The project is ready; the object is the last write (or the Project).
    Ready(Object),
    /// There is no such Project, or it is being deleted.
    Gone,
    /// The namespace is still being deleted: try again later.
    Waiting,
}

fn is_project_namespace(ns: &Object) -> bool {
    ns.label(PROJECT_LABEL) == Some(TRUE)
}

fn owner_reference(project: &Object) -> Value {
    json!({
        "apiVersion": PROJECTS.api_version(),
        "kind": PROJECTS.kind,
        "name": project.name(),
        "uid": project.uid(),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// 409: a namespace of the project's name that is not a project's.
fn foreign_namespace(name: &str) -> Error {
    Error::Conflict(format!(
        "namespace {} already exists and is not labeled as a Kargo project namespace",
        q(name)
    ))
}

/// Makes sure the project's namespace exists, is labeled and is owned by the Project; `false`
/// while an earlier namespace of that name is still being deleted.
async fn ensure_namespace(registry: &Registry, project: &Object) -> Result<bool> {
    let name = project.name();
    for _ in 0..3 {
        let Some(ns) = registry
            .try_get(Target::new(&NAMESPACES, None, name))
            .await?
        else {
            let body = json!({
                "metadata": {
                    "name": name,
                    "labels": {PROJECT_LABEL: TRUE},
                    "ownerReferences": [owner_reference(project)],
                },
            });
            match registry
                .create(&NAMESPACES, None, body, &crate::kargo_writes())
                .await
            {
                Ok(_) => return Ok(true),
                // Another replica, or the REST call and the controller, raced us: look again.
                Err(e) if e.is_already_exists() => continue,
                Err(e) => return Err(e.into()),
            }
        };
        if ns.is_deleting() {
            return Ok(false);
        }
        if !is_project_namespace(&ns) {
            return Err(foreign_namespace(name));
        }
        if !ns.owner_references().iter().any(|o| o.uid == project.uid()) {
            let owner = owner_reference(project);
            registry
                .update_with(
                    Target::new(&NAMESPACES, None, name),
                    &crate::kargo_writes(),
                    |current| {
                        let mut next = current.clone();
                        let mut refs: Vec<Value> = current
                            .meta()
                            .and_then(|m| m.get("ownerReferences"))
                            .and_then(Value::as_array)
                            .cloned()
                            .unwrap_or_default();
                        refs.retain(|r| {
                            r.get("kind").and_then(Value::as_str) != Some(PROJECTS.kind)
                        });
                        refs.push(owner.clone());
                        kargo_registry::object::set_meta(
                            &mut next,
                            "ownerReferences",
                            Some(Value::Array(refs)),
                        );
                        Ok(next)
                    },
                )
                .await?;
        }
        return Ok(true);
    }
    Ok(false)
}

/// The claims a project's creator is mapped by, from its create actor `<claim>:<value>`
/// (upstream's `ensureDefaultUserRoles`): none for `admin` (no claim) and for a
/// `kubernetes:<username>` actor.
fn creator_claims(actor: &str) -> Claims {
    match actor.split_once(':') {
        Some((name, value))
            if name != KUBERNETES_ACTOR && !name.is_empty() && !value.is_empty() =>
        {
            Claims::from([(name.to_owned(), [value.to_owned()].into())])
        }
        _ => Claims::new(),
    }
}

/// The prefix of a create actor who is a Kubernetes user.
const KUBERNETES_ACTOR: &str = "kubernetes";

/// The create actor of a person (`email:<email>`, else `sub:<sub>`); `None` for any other user
/// (a service account, the admin), whose project is not annotated.
fn create_actor(user: &UserInfo) -> Option<String> {
    ["email", "sub"].into_iter().find_map(|claim| {
        let value = user.claims.get(claim)?.first()?;
        Some(format!("{claim}:{value}"))
    })
}

/// Records who creates a Project, whichever API it comes through (the Kargo API, or kubectl on
/// the Kubernetes API): `kargo.akuity.io/create-actor` is the server's to say, as upstream's
/// webhook says it, so a client's value is dropped and a person's actor written.
pub fn stamp_create_actor(user: &UserInfo, body: &mut Value) {
    let mut annotations = body
        .meta()
        .and_then(|m| m.get("annotations"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let had_actor = annotations.remove(CREATE_ACTOR_ANNOTATION).is_some();
    let actor = create_actor(user);
    if let Some(actor) = &actor {
        annotations.insert(CREATE_ACTOR_ANNOTATION.into(), actor.clone().into());
    }
    if had_actor || actor.is_some() {
        kargo_registry::object::set_meta(body, "annotations", Some(Value::Object(annotations)));
    }
}

/// Brings a project to ready, as the server: its labeled namespace owned by the Project, and the
/// default roles, each object created only if missing (so grants to default roles persist),
/// their ServiceAccounts annotated with the claims of the project's create actor;
/// then `status.phase: Ready`, after which it does nothing more. Idempotent.
pub(crate) async fn initialize(registry: &Registry, name: &str) -> Result<Initialized> {
    let Some(project) = registry.try_get(Target::new(&PROJECTS, None, name)).await? else {
        return Ok(Initialized::Gone);
    };
    if project.is_deleting() {
        return Ok(Initialized::Gone);
    }
    if project
        .get("status")
        .and_then(|s| s.get("phase"))
        .and_then(Value::as_str)
        == Some(READY)
    {
        return Ok(Initialized::Ready(project));
    }
    if !ensure_namespace(registry, &project).await? {
        return Ok(Initialized::Waiting);
    }
    let claims = project
        .annotation(CREATE_ACTOR_ANNOTATION)
        .map(creator_claims)
        .unwrap_or_default();
    for (role, rules) in default_roles() {
        let rules = rules::normalize(&rules, true)?;
        ensure(
            registry,
            &SERVICEACCOUNTS,
            Some(name),
            service_account_object(name, role, &claims, None),
        )
        .await?;
        ensure(
            registry,
            &ROLES,
            Some(name),
            role_object(name, role, &rules),
        )
        .await?;
        ensure(
            registry,
            &ROLEBINDINGS,
            Some(name),
            binding_object(name, role, &[]),
        )
        .await?;
    }
    let ready = registry
        .update_status(Target::new(&PROJECTS, None, name), |status| {
            status.insert("phase".into(), READY.into());
        })
        .await?;
    Ok(Initialized::Ready(ready))
}

/// Brings a Project just created through the Kubernetes API to ready at once, as
/// [`Kargo::create_project`] does, so that its namespace exists when the create returns (the
/// project controller would make it moments later, and a Warehouse created right after the
/// Project would be refused meanwhile). The Project once ready; `None` while an earlier
/// namespace of its name is still being deleted, or when the Project is gone.
pub async fn make_ready(registry: &Registry, name: &str) -> Result<Option<Object>> {
    Ok(match initialize(registry, name).await? {
        Initialized::Ready(project) => Some(project),
        Initialized::Gone | Initialized::Waiting => None,
    })
}

/// The body of a project creation: a Project, of which only `metadata.name` is required.
pub(crate) fn project_name(body: &Value) -> Result<String> {
    let name = body.name().to_owned();
    if name.is_empty() {
        return Err(Error::BadRequest("name should not be empty".into()));
    }
    Ok(name)
}

impl Kargo {
    /// `POST /v1beta1/projects`: the Project, its namespace and its default roles; answers once
    /// they exist.
    pub async fn create_project(&self, user: &UserInfo, body: Value) -> Result<Object> {
        if !body.is_object() {
            return Err(Error::BadRequest("the body must be a JSON object".into()));
        }
        let name = project_name(&body)?;
        let invalid = kargo_api::names::is_dns1123_label(&name);
        if !invalid.is_empty() {
            let errors: Vec<_> = invalid
                .into_iter()
                .map(|m| {
                    kargo_api::field::FieldError::invalid(
                        "metadata.name",
                        kargo_api::field::BadValue::string(&name),
                        m,
                    )
                })
                .collect();
            return Err(Status::invalid(&PROJECTS, &name, &errors).into());
        }
        self.authorize(user, "create", &PROJECTS, "", &name)?;
        if let Some(ns) = self
            .registry
            .try_get(Target::new(&NAMESPACES, None, &name))
            .await?
        {
            if !is_project_namespace(&ns) {
                return Err(foreign_namespace(&name));
            }
            if ns.is_deleting() {
                return Err(Error::Conflict(format!(
                    "namespace {} is being deleted; try again later",
                    q(&name)
                )));
            }
        }
        let mut body = body;
        if let Some(status) = body.as_object_mut() {
            status.remove("status");
        }
        stamp_create_actor(user, &mut body);
        let created = self
            .registry
            .create(&PROJECTS, None, body, &crate::kargo_writes())
            .await?;
        let ready = match initialize(&self.registry, &name).await? {
            Initialized::Ready(obj) => obj,
            Initialized::Gone => return Err(Status::not_found(&PROJECTS, &name).into()),
            Initialized::Waiting => created.object,
        };
        self.await_seen(&ready).await;
        Ok(ready)
    }

    /// `GET /v1beta1/projects/{project}`.
    pub async fn get_project(&self, user: &UserInfo, name: &str) -> Result<Object> {
        self.get_as(user, &PROJECTS, None, name).await
    }

    /// `GET /v1beta1/projects`: a `ProjectList` sorted by name.
    pub async fn list_projects(&self, user: &UserInfo) -> Result<Value> {
        self.authorize(user, "list", &PROJECTS, "", "")?;
        let list = self
            .registry
            .list(&PROJECTS, None, &ListOptions::default())
            .await?;
        Ok(sorted_list(&PROJECTS, list))
    }

    /// `DELETE /v1beta1/projects/{project}`: the Project, and with it (owner reference) its
    /// namespace and everything in it.
    pub async fn delete_project(&self, user: &UserInfo, name: &str) -> Result<()> {
        self.authorize(user, "delete", &PROJECTS, "", name)?;
        let project = self.lookup(&PROJECTS, None, name).await?;
        // The namespace first: the garbage collector would delete it once the Project is gone;
        // doing it now makes it prompt, and does not race the collector.
        if let Some(ns) = self
            .registry
            .try_get(Target::new(&NAMESPACES, None, name))
            .await?
            && ns.owner_references().iter().any(|o| o.uid == project.uid())
        {
            match self
                .registry
                .delete(
                    Target::new(&NAMESPACES, None, name),
                    &DeleteOptions::default(),
                )
                .await
            {
                Ok(_) => {}
                Err(e) if e.is_not_found() || e.is_conflict() => {}
                Err(e) => return Err(e.into()),
            }
        }
        let deleted = self
            .registry
            .delete(
                Target::new(&PROJECTS, None, name),
                &DeleteOptions::with_uid(project.uid(), kargo_registry::Propagation::Background),
            )
            .await?;
        self.await_seen(deleted.object()).await;
        Ok(())
    }
}

#[cfg(test)]
mod sso_tests;

#[cfg(test)]
mod tests {
    use super::*;

    fn compact(rules: &[PolicyRule]) -> Vec<String> {
        rules
            .iter()
            .map(|r| {
                format!(
                    "{}/{}: {}",
                    r.api_groups.as_ref().unwrap()[0],
                    r.resources.as_ref().unwrap()[0],
                    r.verbs.join(",")
                )
            })
            .collect()
    }

    fn normalized(role: &str) -> Vec<String> {
        let (_, rules) = default_roles()
            .into_iter()
            .find(|(n, _)| *n == role)
            .unwrap();
        compact(&rules::normalize(&rules, true).unwrap())
    }

    const EVERY: &str = "create,delete,deletecollection,get,list,patch,update,watch";

    #[test]
    fn kargo_admin_has_the_spec_rules() {
        assert_eq!(
            normalized("kargo-admin"),
            [
                "argoproj.io/analysisruns: delete,get,list,watch".to_owned(),
                format!("argoproj.io/analysistemplates: {EVERY}"),
                format!("/configmaps: {EVERY}"),
                "/events: get,list,watch".to_owned(),
                format!("/secrets: {EVERY}"),
                format!("/serviceaccounts: {EVERY}"),
                format!("kargo.akuity.io/freights: {EVERY}"),
                "kargo.akuity.io/freights/status: patch".to_owned(),
                format!("kargo.akuity.io/projectconfigs: {EVERY}"),
                "kargo.akuity.io/promotions: create,delete,get,list,patch,watch".to_owned(),
                "kargo.akuity.io/stages: create,delete,deletecollection,get,list,patch,promote,update,watch".to_owned(),
                format!("kargo.akuity.io/warehouses: {EVERY}"),
                format!("rbac.authorization.k8s.io/rolebindings: {EVERY}"),
                format!("rbac.authorization.k8s.io/roles: {EVERY}"),
            ]
        );
    }

    #[test]
    fn kargo_promoter_is_the_viewer_plus_promotion() {
        let viewer = normalized("kargo-viewer");
        assert_eq!(viewer.len(), 12);
        assert!(
            viewer.iter().all(|r| r.ends_with(": get,list,watch")),
            "{viewer:?}"
        );
        let promoter = normalized("kargo-promoter");
        assert!(promoter.contains(&"kargo.akuity.io/stages: get,list,promote,watch".to_owned()));
        assert!(promoter.contains(&"kargo.akuity.io/promotions: create,get,list,watch".to_owned()));
        assert!(promoter.contains(&"kargo.akuity.io/freights/status: patch".to_owned()));
        assert_eq!(promoter.len(), 13);
    }
}

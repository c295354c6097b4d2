//! Authorization of requests: `system:masters` may do anything; everyone else is checked by RBAC
//! against the policy of the auth view.

use std::sync::Arc;

use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kargo_api::resources::{self as res, ResourceType};
use serde_json::Value;

use super::observe::{AuthObserver, AuthzDecision};
use super::rbac::{Attributes, BindingWriteError, Decision, Forbidden, UserInfo};
use super::view::AuthView;
use kargo_api::request_info::RequestInfo;
use kargo_registry::status::{Details, Result, Status};

/// Decides whether a user may make a request.
pub struct Authorizer {
    view: Arc<AuthView>,
    observer: Option<Arc<dyn AuthObserver>>,
}

/// The RBAC attributes of a request.
pub fn attributes(info: &RequestInfo<'_>) -> Attributes {
    if info.is_resource_request {
        Attributes::resource(
            info.verb.as_str(),
            info.namespace,
            info.api_group,
            info.resource,
        )
        .with_name(info.name)
        .with_subresource(info.subresource)
        .into()
    } else {
        Attributes::non_resource(info.verb.as_str(), info.path)
    }
}

/// A Forbidden as a Kubernetes `Status`.
pub fn forbidden_status(forbidden: Forbidden) -> Status {
    let details = if forbidden.details.kind.is_empty() && forbidden.details.name.is_empty() {
        None
    } else {
        Some(Details {
            name: forbidden.details.name,
            group: forbidden.details.group,
            kind: forbidden.details.kind,
            ..Details::default()
        })
    };
    Status::forbidden(forbidden.message, details)
}

impl Authorizer {
    /// An authorizer reading the view's policy.
    pub fn new(view: Arc<AuthView>) -> Authorizer {
        Authorizer {
            view,
            observer: None,
        }
    }

    /// The same, telling `observer` of every decision.
    pub fn with_observer(mut self, observer: Arc<dyn AuthObserver>) -> Authorizer {
        self.observer = Some(observer);
        self
    }

    /// The decision for a user and attributes.
    pub fn decide(&self, user: &UserInfo, attrs: &Attributes) -> Decision {
        let decision = if user.is_system_master() {
            Decision::Allow {
                reason: String::new(),
            }
        } else {
            self.view.policy().authorize(user, attrs)
        };
        let reason = match &decision {
            Decision::Allow { reason } | Decision::NoOpinion { reason, .. } => reason,
        };
        self.report(user, attrs, decision.is_allowed(), reason);
        decision
    }

    /// Allows the attributes or answers kube-apiserver's 403.
    pub fn authorize(&self, user: &UserInfo, attrs: &Attributes) -> Result<()> {
        if user.is_system_master() {
            self.report(user, attrs, true, "");
            return Ok(());
        }
        // Remembered allows (`decisions.rs`) come back from `allows` too: reported alike.
        match self.view.allows(user, attrs) {
            Ok(()) => {
                self.report(user, attrs, true, "");
                Ok(())
            }
            Err(errors) => {
                let forbidden = Forbidden::for_request(user, attrs, &errors);
                self.report(user, attrs, false, &forbidden.message);
                Err(forbidden_status(forbidden))
            }
        }
    }

    /// The one place the observer hears of a decision.
    fn report(&self, user: &UserInfo, attributes: &Attributes, allowed: bool, reason: &str) {
        if let Some(observer) = &self.observer {
            observer.authorization(&AuthzDecision {
                user,
                attributes,
                allowed,
                reason,
            });
        }
    }

    /// Allows the request or answers kube-apiserver's 403.
    pub fn authorize_request(&self, user: &UserInfo, info: &RequestInfo<'_>) -> Result<()> {
        self.authorize(user, &attributes(info))
    }

    /// The view.
    pub fn view(&self) -> &Arc<AuthView> {
        &self.view
    }

    /// Escalation prevention for a write of an RBAC object by `user` (a no-op for other kinds):
    /// a Role or ClusterRole may grant only what the writer holds (or may `escalate`), a binding
    /// may bind only a role whose permissions the writer holds (or may `bind`). Updates that
    /// change only owner references or finalizers are not checked, as in Kubernetes.
    pub(crate) fn check_rbac_write(
        &self,
        user: &UserInfo,
        rt: &ResourceType,
        new: &Value,
        old: Option<&Value>,
    ) -> Result<()> {
        if rt.group != res::RBAC_GROUP || user.is_system_master() {
            return Ok(());
        }
        if let Some(old) = old
            && only_bookkeeping_changed(new, old)
        {
            return Ok(());
        }
        let invalid = |e: serde_json::Error| Status::bad_request(e.to_string());
        let policy = self.view.policy();
        let forbidden = |f: Forbidden| forbidden_status(f);
        match rt.kind {
            "Role" => {
                let role: Role = serde_json::from_value(new.clone()).map_err(invalid)?;
                let old: Option<Role> = old.and_then(|o| serde_json::from_value(o.clone()).ok());
                policy
                    .check_role_write(user, &role, old.as_ref())
                    .map_err(forbidden)
            }
            "ClusterRole" => {
                let role: ClusterRole = serde_json::from_value(new.clone()).map_err(invalid)?;
                let old: Option<ClusterRole> =
                    old.and_then(|o| serde_json::from_value(o.clone()).ok());
                policy
                    .check_cluster_role_write(user, &role, old.as_ref())
                    .map_err(forbidden)
            }
            "RoleBinding" => {
                let binding: RoleBinding = serde_json::from_value(new.clone()).map_err(invalid)?;
                policy
                    .check_role_binding_write(user, &binding)
                    .map_err(binding_error)
            }
            "ClusterRoleBinding" => {
                let binding: ClusterRoleBinding =
                    serde_json::from_value(new.clone()).map_err(invalid)?;
                policy
                    .check_cluster_role_binding_write(user, &binding)
                    .map_err(binding_error)
            }
            _ => Ok(()),
        }
    }

    /// The admission check of writes by `user`, for the registry.
    pub fn admission(
        self: &Arc<Self>,
        user: &UserInfo,
        rt: &'static ResourceType,
    ) -> Option<kargo_registry::AdmissionCheck> {
        if rt.group != res::RBAC_GROUP || user.is_system_master() {
            return None;
        }
        let authz = self.clone();
        let user = user.clone();
        Some(Arc::new(move |new: &Value, old: Option<&Value>| {
            authz.check_rbac_write(&user, rt, new, old)
        }))
    }
}

fn binding_error(e: BindingWriteError) -> Status {
    match e {
        BindingWriteError::Forbidden(f) => forbidden_status(f),
        BindingWriteError::RoleRef(r) => {
            let message = r.registry_message();
            if message.ends_with("not found") {
                Status::failure(404, "NotFound", message)
            } else {
                Status::internal(message)
            }
        }
    }
}

/// Whether `new` differs from `old` only in owner references and finalizers.
fn only_bookkeeping_changed(new: &Value, old: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("ownerReferences");
            meta.remove("finalizers");
            meta.remove("resourceVersion");
        }
        v
    };
    strip(new) == strip(old)
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod claims_tests;

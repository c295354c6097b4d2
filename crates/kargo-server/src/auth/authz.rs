//! Authorization of requests: `system:masters` may do anything; everyone else is checked by RBAC
//! against the policy of the auth view.

use std::sync::Arc;

use super::rbac::{Attributes, Decision, Forbidden, UserInfo};
use super::view::AuthView;
use crate::http::request_info::RequestInfo;
use crate::status::{Details, Result, Status};

/// Decides whether a user may make a request.
pub struct Authorizer {
    view: Arc<AuthView>,
}

/// The RBAC attributes of a request.
pub fn attributes(info: &RequestInfo) -> Attributes {
    if info.is_resource_request {
        Attributes::resource(&info.verb, &info.namespace, &info.api_group, &info.resource)
            .with_name(&info.name)
            .with_subresource(&info.subresource)
            .into()
    } else {
        Attributes::non_resource(&info.verb, &info.path)
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
        Authorizer { view }
    }

    /// The decision for a user and attributes.
    pub fn decide(&self, user: &UserInfo, attrs: &Attributes) -> Decision {
        if user.is_system_master() {
            return Decision::Allow {
                reason: String::new(),
            };
        }
        self.view.policy().authorize(user, attrs)
    }

    /// Allows the attributes or answers kube-apiserver's 403.
    pub fn authorize(&self, user: &UserInfo, attrs: &Attributes) -> Result<()> {
        match self.decide(user, attrs) {
            Decision::Allow { .. } => Ok(()),
            Decision::NoOpinion { errors, .. } => Err(forbidden_status(Forbidden::for_request(
                user, attrs, &errors,
            ))),
        }
    }

    /// Allows the request or answers kube-apiserver's 403.
    pub fn authorize_request(&self, user: &UserInfo, info: &RequestInfo) -> Result<()> {
        self.authorize(user, &attributes(info))
    }

    /// The view.
    pub fn view(&self) -> &Arc<AuthView> {
        &self.view
    }
}

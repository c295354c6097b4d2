//! Authorization of requests: `system:masters` may do anything; everyone else is checked by RBAC.

use super::authn::MASTERS;
use super::rbac::UserInfo;
use crate::http::request_info::RequestInfo;
use crate::status::{Result, Status};

/// Decides whether a user may make a request.
#[derive(Default)]
pub struct Authorizer {}

impl Authorizer {
    /// An authorizer.
    pub fn new() -> Authorizer {
        Authorizer {}
    }

    /// Allows the request or answers kube-apiserver's 403.
    pub fn authorize_request(&self, user: &UserInfo, info: &RequestInfo) -> Result<()> {
        if user.groups.iter().any(|g| g == MASTERS) {
            return Ok(());
        }
        Err(Status::forbidden(
            format!(
                "forbidden: User \"{}\" cannot {} path \"{}\"",
                user.username, info.verb, info.path
            ),
            None,
        ))
    }
}

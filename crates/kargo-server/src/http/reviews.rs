//! Resources that are not stored: the review APIs (`SelfSubjectReview`,
//! `SelfSubjectAccessReview`, ...), `TokenRequest`, and issuer discovery.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use kargo_api::resources::ResourceType;
use serde_json::{Value, json};

use super::request_info::RequestInfo;
use super::{AppState, json_response};
use crate::auth::rbac::UserInfo;
use crate::registry::object::now_rfc3339;
use crate::status::{Result, Status};

/// Answers a POST to a virtual resource.
pub async fn create(
    _app: &AppState,
    user: &UserInfo,
    rt: &'static ResourceType,
    info: &RequestInfo,
    _body: Value,
) -> Result<Response> {
    if info.verb != "create" {
        return Err(Status::method_not_allowed());
    }
    match rt.kind {
        "SelfSubjectReview" => Ok(json_response(
            StatusCode::CREATED,
            &json!({
                "kind": "SelfSubjectReview",
                "apiVersion": rt.api_version(),
                "metadata": {"creationTimestamp": now_rfc3339()},
                "status": {"userInfo": user_info_json(user)},
            }),
            &[],
        )),
        _ => Err(Status::no_route()),
    }
}

/// A user as the review APIs write it.
pub fn user_info_json(user: &UserInfo) -> Value {
    let mut v = json!({"username": user.username, "groups": user.groups});
    if !user.uid.is_empty() {
        v["uid"] = user.uid.clone().into();
    }
    if !user.extra.is_empty() {
        v["extra"] = json!(user.extra);
    }
    v
}

/// `/.well-known/openid-configuration`.
pub async fn openid_configuration() -> Response {
    Status::no_route().into_response()
}

/// `/openid/v1/jwks`.
pub async fn jwks() -> Response {
    Status::no_route().into_response()
}

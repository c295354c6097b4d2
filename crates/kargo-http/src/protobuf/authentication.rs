//! `authentication.k8s.io/v1` kinds: `TokenRequest`, `TokenReview` and `SelfSubjectReview`.

use k8s_pb::api::authentication::v1::{
    BoundObjectReference, SelfSubjectReview, SelfSubjectReviewStatus, TokenRequest,
    TokenRequestSpec, TokenRequestStatus, TokenReview, TokenReviewSpec, TokenReviewStatus,
    UserInfo,
};
use serde_json::Value;

use super::json::{JsonObject, boolean, embedded, map, nullable, string, strings, time};
use super::meta::object_meta;

/// The `TokenRequest` kind (after the type meta).
pub(super) fn token_request(request: &TokenRequest, object: JsonObject) -> JsonObject {
    object
        .field("metadata", embedded(&request.metadata, object_meta))
        .field("spec", embedded(&request.spec, token_request_spec))
        .field("status", embedded(&request.status, token_request_status))
}

/// Unusually, none of these fields is `omitempty`: unset ones are `null`.
fn token_request_spec(spec: &TokenRequestSpec) -> Value {
    JsonObject::new()
        .field("audiences", strings(&spec.audiences))
        .field(
            "expirationSeconds",
            nullable(spec.expiration_seconds.map(Value::from)),
        )
        .field(
            "boundObjectRef",
            nullable(spec.bound_object_ref.as_ref().map(bound_object_reference)),
        )
        .build()
}

fn bound_object_reference(reference: &BoundObjectReference) -> Value {
    JsonObject::new()
        .omitempty("kind", string(&reference.kind))
        .omitempty("apiVersion", string(&reference.api_version))
        .omitempty("name", string(&reference.name))
        .omitempty("uid", string(&reference.u_id))
        .build()
}

fn token_request_status(status: &TokenRequestStatus) -> Value {
    JsonObject::new()
        .field("token", string(&status.token))
        .field(
            "expirationTimestamp",
            time(status.expiration_timestamp.as_ref()),
        )
        .build()
}

/// The `TokenReview` kind (after the type meta).
pub(super) fn token_review(review: &TokenReview, object: JsonObject) -> JsonObject {
    object
        .field("metadata", embedded(&review.metadata, object_meta))
        .field("spec", embedded(&review.spec, token_review_spec))
        .field("status", embedded(&review.status, token_review_status))
}

fn token_review_spec(spec: &TokenReviewSpec) -> Value {
    JsonObject::new()
        .omitempty("token", string(&spec.token))
        .omitempty("audiences", strings(&spec.audiences))
        .build()
}

fn token_review_status(status: &TokenReviewStatus) -> Value {
    JsonObject::new()
        .omitempty("authenticated", boolean(status.authenticated))
        .field("user", embedded(&status.user, user_info))
        .omitempty("audiences", strings(&status.audiences))
        .omitempty("error", string(&status.error))
        .build()
}

fn user_info(user: &UserInfo) -> Value {
    JsonObject::new()
        .omitempty("username", string(&user.username))
        .omitempty("uid", string(&user.uid))
        .omitempty("groups", strings(&user.groups))
        .omitempty("extra", map(&user.extra, |value| strings(&value.items)))
        .build()
}

/// The `SelfSubjectReview` kind (after the type meta).
pub(super) fn self_subject_review(review: &SelfSubjectReview, object: JsonObject) -> JsonObject {
    object
        .field("metadata", embedded(&review.metadata, object_meta))
        .field(
            "status",
            embedded(&review.status, self_subject_review_status),
        )
}

fn self_subject_review_status(status: &SelfSubjectReviewStatus) -> Value {
    JsonObject::new()
        .field("userInfo", embedded(&status.user_info, user_info))
        .build()
}

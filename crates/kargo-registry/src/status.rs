//! Kubernetes `Status` errors: the one error type of the registry, auth and the Kubernetes API.
//!
//! Constructors follow `k8s.io/apimachinery/pkg/api/errors` so that messages, reasons and codes
//! are kube-apiserver's. The HTTP edge renders a [`Status`] as JSON (Kubernetes routes) or as
//! `{"error": message}` (Kargo routes).

use kargo_api::field::{self, FieldError};
use kargo_api::resources::ResourceType;
use serde::Serialize;

/// One cause of an `Invalid` (or strict-decoding) failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cause {
    /// `FieldValueInvalid`, `FieldValueRequired`, ...
    pub reason: String,
    /// The message without the field prefix.
    pub message: String,
    /// The field path (`metadata.name`); left out when empty (a cause that is not a field's).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub field: String,
}

/// `details` of a Status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Details {
    /// The object's name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The API group.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub group: String,
    /// The resource (or, for `Invalid`, the kind).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// The object's uid (successful deletions).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub uid: String,
    /// Field-level causes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<Cause>,
    /// Seconds after which a retry may succeed.
    #[serde(rename = "retryAfterSeconds", skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u32>,
}

/// A Kubernetes `Status` (failure or success), serialized in kube-apiserver's key order:
/// `kind, apiVersion, metadata, status, message, reason, details, code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// `Failure` or `Success`.
    pub status: &'static str,
    /// The human-readable message.
    pub message: String,
    /// The machine-readable reason (`NotFound`).
    pub reason: &'static str,
    /// Details, if any.
    pub details: Option<Box<Details>>,
    /// The HTTP status code.
    pub code: u16,
}

impl Serialize for Status {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("kind", "Status")?;
        map.serialize_entry("apiVersion", "v1")?;
        map.serialize_entry("metadata", &serde_json::Map::new())?;
        map.serialize_entry("status", self.status)?;
        if !self.message.is_empty() {
            map.serialize_entry("message", &self.message)?;
        }
        if !self.reason.is_empty() {
            map.serialize_entry("reason", self.reason)?;
        }
        if let Some(details) = &self.details {
            map.serialize_entry("details", details)?;
        }
        map.serialize_entry("code", &self.code)?;
        map.end()
    }
}

/// The result type of operations that fail with a [`Status`].
pub type Result<T, E = Status> = std::result::Result<T, E>;

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Status {}

fn details(name: &str, rt: &ResourceType) -> Option<Details> {
    Some(Details {
        name: name.to_owned(),
        group: rt.group.to_owned(),
        kind: rt.plural.to_owned(),
        ..Details::default()
    })
}

impl Status {
    /// A failure with the given code, reason and message.
    pub fn failure(code: u16, reason: &'static str, message: impl Into<String>) -> Status {
        Status {
            status: "Failure",
            message: message.into(),
            reason,
            details: None,
            code,
        }
    }

    /// A success, as returned by deletions of kinds that do not return the object.
    pub(crate) fn success(details: Details) -> Status {
        Status {
            status: "Success",
            message: String::new(),
            reason: "",
            details: Some(Box::new(details)),
            code: 200,
        }
    }

    /// Adds details.
    pub fn with_details(mut self, details: Option<Details>) -> Status {
        self.details = details.map(Box::new);
        self
    }

    /// 404 `serviceaccounts "x" not found`.
    pub fn not_found(rt: &ResourceType, name: &str) -> Status {
        Status::failure(
            404,
            "NotFound",
            format!("{} \"{}\" not found", rt.qualified(), name),
        )
        .with_details(details(name, rt))
    }

    /// 404 for a path that names no resource: `the server could not find the requested resource`.
    pub fn no_route() -> Status {
        Status::failure(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
        .with_details(Some(Details::default()))
    }

    /// 409 `secrets "t" already exists`.
    pub fn already_exists(rt: &ResourceType, name: &str) -> Status {
        Status::failure(
            409,
            "AlreadyExists",
            format!("{} \"{}\" already exists", rt.qualified(), name),
        )
        .with_details(details(name, rt))
    }

    /// 409 `Operation cannot be fulfilled on secrets "t": <why>`.
    pub fn conflict(rt: &ResourceType, name: &str, why: &str) -> Status {
        Status::failure(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{}\": {}",
                rt.qualified(),
                name,
                why
            ),
        )
        .with_details(details(name, rt))
    }

    /// The conflict of a stale `resourceVersion`.
    pub(crate) fn stale(rt: &ResourceType, name: &str) -> Status {
        Status::conflict(
            rt,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 422 `ServiceAccount "A" is invalid: <errors>` (`Kind.group` outside the core group).
    pub fn invalid(rt: &ResourceType, name: &str, errors: &[FieldError]) -> Status {
        Status::invalid_kind(rt.group, rt.kind, name, errors)
    }

    /// 422 `ListOptions.meta.k8s.io "" is invalid: <errors>`: query options that do not go
    /// together (a watch's `sendInitialEvents` without `resourceVersionMatch`, ...).
    pub fn invalid_list_options(errors: &[FieldError]) -> Status {
        Status::invalid_kind("meta.k8s.io", "ListOptions", "", errors)
    }

    /// 422 `PatchOptions.meta.k8s.io "" is invalid: <errors>`: patch options that do not go
    /// together (an apply without `fieldManager`, `force` on another patch).
    pub fn invalid_patch_options(errors: &[FieldError]) -> Status {
        Status::invalid_kind("meta.k8s.io", "PatchOptions", "", errors)
    }

    /// 409 of a server-side apply whose fields other managers own (kube-apiserver's
    /// `NewApplyConflict`): the message lists them, each is a `FieldManagerConflict` cause.
    pub fn apply_conflict(conflicts: &[kargo_api::patch::apply::Conflict]) -> Status {
        Status::failure(
            409,
            "Conflict",
            kargo_api::patch::apply::conflict_message(conflicts),
        )
        .with_details(Some(Details {
            causes: conflicts
                .iter()
                .map(|c| Cause {
                    reason: "FieldManagerConflict".into(),
                    message: format!("conflict with {}", c.manager),
                    field: c.field.clone(),
                })
                .collect(),
            ..Details::default()
        }))
    }

    fn invalid_kind(group: &str, kind: &str, name: &str, errors: &[FieldError]) -> Status {
        let qualified = if group.is_empty() {
            kind.to_owned()
        } else {
            format!("{kind}.{group}")
        };
        Status::failure(
            422,
            "Invalid",
            field::invalid_message(&qualified, name, errors),
        )
        .with_details(Some(Details {
            name: name.to_owned(),
            group: group.to_owned(),
            kind: kind.to_owned(),
            causes: errors
                .iter()
                .map(|e| {
                    let c = e.cause();
                    Cause {
                        reason: c.reason,
                        message: c.message,
                        field: c.field,
                    }
                })
                .collect(),
            ..Details::default()
        }))
    }

    /// 400 with a message.
    pub fn bad_request(message: impl Into<String>) -> Status {
        Status::failure(400, "BadRequest", message)
    }

    /// 401 `Unauthorized`.
    pub fn unauthorized() -> Status {
        Status::failure(401, "Unauthorized", "Unauthorized")
    }

    /// 403 with a message (and the resource's details when known).
    pub fn forbidden(message: impl Into<String>, details: Option<Details>) -> Status {
        Status::failure(403, "Forbidden", message).with_details(details)
    }

    /// 405 `the server does not allow this method on the requested resource`.
    pub fn method_not_allowed() -> Status {
        Status::failure(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
        .with_details(Some(Details::default()))
    }

    /// 410 `Expired`.
    pub(crate) fn expired(message: impl Into<String>) -> Status {
        Status::failure(410, "Expired", message)
    }

    /// 413 for a body over the limit.
    pub fn too_large(limit: usize) -> Status {
        Status::failure(
            413,
            "RequestEntityTooLarge",
            format!("Request entity too large: limit is {limit}"),
        )
    }

    /// 415 for a body in a format the endpoint does not take.
    pub fn unsupported_media_type(content_type: &str, accepted: &str) -> Status {
        Status::failure(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: {accepted}"
            ),
        )
        .with_details(Some(Details {
            causes: vec![Cause {
                reason: "UnexpectedServerResponse".into(),
                message: content_type.to_owned(),
                field: String::new(),
            }],
            ..Details::default()
        }))
    }

    /// 500 with a generic message; the cause is logged by the caller, not sent.
    pub fn internal(message: impl Into<String>) -> Status {
        Status::failure(500, "InternalError", message)
    }

    /// 504 `Timeout`.
    pub fn timeout(message: impl Into<String>) -> Status {
        Status::failure(504, "Timeout", message)
    }

    /// 503 `ServiceUnavailable`.
    pub fn unavailable(message: impl Into<String>) -> Status {
        Status::failure(503, "ServiceUnavailable", message)
    }

    /// Whether the status is a 404.
    pub fn is_not_found(&self) -> bool {
        self.code == 404
    }

    /// Whether the status is a 409 Conflict.
    pub fn is_conflict(&self) -> bool {
        self.reason == "Conflict"
    }

    /// Whether the status is a 409 AlreadyExists.
    pub fn is_already_exists(&self) -> bool {
        self.reason == "AlreadyExists"
    }
}

/// Quotes a string as Go's `%q` does.
pub fn quote(value: &str) -> String {
    kargo_api::field::go_quote(value)
}

impl From<kargo_store::Error> for Status {
    fn from(err: kargo_store::Error) -> Status {
        match err {
            kargo_store::Error::Unavailable(why) => {
                tracing::warn!(error = %why, "store unavailable");
                Status::unavailable("the storage backend is unavailable; try again")
            }
            other => {
                tracing::error!(error = %other, "unexpected store error");
                Status::internal("an internal error occurred in the storage backend")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kargo_api::resources::{ROLES, SERVICEACCOUNTS};

    #[test]
    fn not_found_serializes_in_kube_apiserver_key_order() {
        let json = serde_json::to_string(&Status::not_found(&SERVICEACCOUNTS, "x")).unwrap();
        assert_eq!(
            json,
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"serviceaccounts \"x\" not found","reason":"NotFound","details":{"name":"x","kind":"serviceaccounts"},"code":404}"#
        );
    }

    #[test]
    fn already_exists_names_the_group() {
        let json = serde_json::to_string(&Status::already_exists(&ROLES, "r")).unwrap();
        assert_eq!(
            json,
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"roles.rbac.authorization.k8s.io \"r\" already exists","reason":"AlreadyExists","details":{"name":"r","group":"rbac.authorization.k8s.io","kind":"roles"},"code":409}"#
        );
    }

    #[test]
    fn invalid_lists_causes_and_aggregates_messages() {
        let one = FieldError::invalid("metadata.name", field::BadValue::string("A"), "why");
        let status = Status::invalid(&SERVICEACCOUNTS, "A", std::slice::from_ref(&one));
        assert_eq!(
            serde_json::to_string(&status).unwrap(),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"ServiceAccount \"A\" is invalid: metadata.name: Invalid value: \"A\": why","reason":"Invalid","details":{"name":"A","kind":"ServiceAccount","causes":[{"reason":"FieldValueInvalid","message":"Invalid value: \"A\": why","field":"metadata.name"}]},"code":422}"#
        );
        let two = Status::invalid(
            &SERVICEACCOUNTS,
            "A",
            &[one, FieldError::required("metadata.namespace", "")],
        );
        assert_eq!(
            two.message,
            r#"ServiceAccount "A" is invalid: [metadata.name: Invalid value: "A": why, metadata.namespace: Required value]"#
        );
    }
}

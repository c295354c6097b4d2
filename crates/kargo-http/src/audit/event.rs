//! One audit event: kube-apiserver's `audit.k8s.io/v1` `Event`, at level `Metadata` (never a
//! request or response body), built from a request's [`RequestRecord`] and its [`Notes`].
//!
//! Kubernetes requests are described as kube-apiserver describes them (verb and `objectRef`
//! from the parsed path). A Kargo REST request (`/v1beta1`) carries its operation's verb from
//! the route table (`create-token`, `grant`, `delete-serviceaccount`...), an `objectRef` for
//! the object its route names (a Kargo Role as `roles.rbac.kargo.akuity.io`, upstream's name),
//! and every object it wrote in the annotation [`OBJECTS`].

use std::borrow::Cow;
use std::collections::BTreeMap;

use kargo_api::request_info::Verb;
use kargo_api::resources::{PROJECTS, ROLEBINDINGS, ROLES, ResourceType, SECRETS, SERVICEACCOUNTS};
use kargo_registry::touched::Touched;
use serde::Serialize;

use kargo_auth::rbac::UserInfo;

use crate::observe::{Notes, RequestRecord};

/// Annotation: every object a Kargo request wrote, comma-separated, each as
/// `<action> <resource>[.<group>] [<namespace>/]<name>` with the action `create`, `update`,
/// `delete`, or `collect` (a dependent the garbage collector deletes with an object the
/// request deleted: an account's tokens).
pub const OBJECTS: &str = "audit.kargo.akuity.io/objects";
/// Annotation: why authentication failed, in kube-apiserver's words (never the credential).
pub const AUTHENTICATION_FAILURE: &str = "audit.kargo.akuity.io/authentication-failure";
/// Annotation (kube-apiserver's): the user of a legacy (Secret) service-account token.
pub const LEGACY_TOKEN: &str = "authentication.k8s.io/legacy-token";
/// Annotation (kube-apiserver's): the Secret of a legacy token that was created by hand (as
/// every Kargo token is).
pub const LEGACY_TOKEN_SECRET: &str = "authentication.k8s.io/legacy-token-manual-secret";
/// Annotation (kube-apiserver's): `allow` or `forbid`.
pub const DECISION: &str = "authorization.k8s.io/decision";
/// Annotation (kube-apiserver's): the authorizer's reason.
pub const REASON: &str = "authorization.k8s.io/reason";

/// The group and version of Kargo Roles as upstream Kargo names them (a Role there is a
/// ServiceAccount, a Role and a RoleBinding of one name).
const KARGO_ROLE_GROUP: &str = "rbac.kargo.akuity.io";
const KARGO_ROLE_VERSION: &str = "v1alpha1";

/// An `audit.k8s.io/v1` `Event`, fields in kube-apiserver's order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Event<'a> {
    kind: &'static str,
    api_version: &'static str,
    level: &'static str,
    #[serde(rename = "auditID")]
    audit_id: String,
    stage: &'static str,
    #[serde(rename = "requestURI")]
    request_uri: String,
    verb: &'a str,
    user: User<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    impersonated_user: Option<User<'a>>,
    #[serde(rename = "sourceIPs", skip_serializing_if = "Vec::is_empty")]
    source_ips: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_agent: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    object_ref: Option<ObjectRef<'a>>,
    response_status: ResponseStatus<'a>,
    request_received_timestamp: String,
    stage_timestamp: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<&'static str, String>,
}

/// The user of an event (`{}` when the request was not authenticated).
#[derive(Debug, Default, Serialize)]
struct User<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    username: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    uid: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    groups: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    extra: Option<&'a BTreeMap<String, Vec<String>>>,
}

impl<'a> User<'a> {
    fn of(user: &'a UserInfo) -> User<'a> {
        User {
            username: &user.username,
            uid: &user.uid,
            groups: &user.groups,
            extra: Some(&user.extra).filter(|e| !e.is_empty()),
        }
    }
}

/// What object a request acted on.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    resource: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    namespace: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    name: Cow<'a, str>,
    #[serde(skip_serializing_if = "str::is_empty")]
    api_group: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    api_version: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    subresource: &'a str,
}

/// The answer's status: its code, and for a refusal kube-apiserver's `Failure`, reason and
/// (when it cannot quote the request body) message.
#[derive(Debug, Serialize)]
struct ResponseStatus<'a> {
    metadata: Empty,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    code: u16,
}

#[derive(Debug, Serialize)]
struct Empty {}

/// Whether a request failed authentication: a 401, or a failure the authenticator reported (a
/// 429 for an address with too many invalid tokens, a wrong admin password).
pub(crate) fn failed_authentication(record: &RequestRecord<'_>) -> bool {
    record.status == http::StatusCode::UNAUTHORIZED
        || record
            .notes
            .is_some_and(|n| n.authentication_failure.is_some())
}

/// kube-apiserver's reason for a status code, for refusals that carried none.
fn reason_of(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        410 => "Gone",
        413 => "RequestEntityTooLarge",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        504 => "Timeout",
        503 => "ServiceUnavailable",
        _ => "InternalError",
    }
}

/// Whether a refusal's message is written: only for codes whose messages are built from names
/// and attributes; a 400 or 422 may quote the request body (a Secret's data), so its message
/// is left out.
fn message_is_safe(code: u16) -> bool {
    matches!(code, 401 | 403 | 404 | 405 | 409 | 410 | 429)
}

/// A time as kube-apiserver writes audit timestamps: RFC 3339 in UTC with microseconds.
pub(crate) fn timestamp(at: std::time::SystemTime) -> String {
    let micros = at
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0);
    k8s_openapi::jiff::Timestamp::from_microsecond(micros)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S.%6fZ").to_string())
        .unwrap_or_else(|_| "1970-01-01T00:00:00.000000Z".to_owned())
}

/// `<action> <resource>[.<group>] [<namespace>/]<name>`.
fn touched_text(t: &Touched) -> String {
    let namespace = t.namespace.as_deref().map(|n| format!("{n}/"));
    format!(
        "{} {} {}{}",
        t.action.as_str(),
        t.rt.qualified(),
        namespace.unwrap_or_default(),
        t.name
    )
}

impl<'a> Event<'a> {
    /// The event of one answered request, stamped `now`.
    pub fn new(record: &'a RequestRecord<'a>, now: std::time::SystemTime) -> Event<'a> {
        let notes = record.notes;
        let empty = Notes::default();
        let notes_or_empty = notes.unwrap_or(&empty);
        let mut annotations = BTreeMap::new();
        let code = record.status.as_u16();
        let (verb, object_ref) = match kargo_action(record, notes_or_empty) {
            Some((verb, object_ref)) => {
                let touched: Vec<String> =
                    notes_or_empty.touched.iter().map(touched_text).collect();
                if !touched.is_empty() {
                    annotations.insert(OBJECTS, touched.join(", "));
                }
                (verb, object_ref)
            }
            None => (record.info.verb.as_str(), kube_object(record)),
        };
        // An impersonating request: `user` is who authenticated, `impersonatedUser` whom the
        // request was served as (the record's user), as kube-apiserver writes them.
        let impersonator = notes.and_then(|n| n.impersonator.as_ref());
        let (authenticated, impersonated) = match impersonator {
            Some(impersonator) => (Some(impersonator), record.user),
            None => (record.user, None),
        };
        let user = match authenticated {
            Some(user) => {
                if let Some(secret) = &user.legacy_token_secret {
                    annotations.insert(LEGACY_TOKEN, user.username.clone());
                    annotations.insert(LEGACY_TOKEN_SECRET, secret.clone());
                }
                User::of(user)
            }
            None => User::default(),
        };
        let impersonated_user = impersonated.map(User::of);
        if let Some(notes) = notes {
            if let Some(reason) = &notes.authentication_failure {
                annotations.insert(AUTHENTICATION_FAILURE, reason.clone());
            }
            if let Some(decision) = &notes.decision {
                let allowed = if decision.allowed { "allow" } else { "forbid" };
                annotations.insert(DECISION, allowed.to_owned());
                if !decision.reason.is_empty() {
                    annotations.insert(REASON, decision.reason.clone());
                }
            }
        }
        let refused = code >= 400;
        let refusal = notes.and_then(|n| n.refusal.as_ref());
        let response_status = ResponseStatus {
            metadata: Empty {},
            status: refused.then_some("Failure"),
            message: if code == 401 {
                Some("Unauthorized")
            } else {
                refusal
                    .filter(|_| refused && message_is_safe(code))
                    .map(|r| r.message.as_str())
            },
            reason: refused.then(|| {
                refusal
                    .map(|r| r.reason)
                    .filter(|r| !r.is_empty())
                    .unwrap_or(reason_of(code))
            }),
            code,
        };
        let received = now.checked_sub(record.duration).unwrap_or(now);
        Event {
            kind: "Event",
            api_version: "audit.k8s.io/v1",
            level: "Metadata",
            audit_id: record.id.to_string(),
            stage: if record.info.verb == Verb::Watch {
                "ResponseStarted"
            } else {
                "ResponseComplete"
            },
            // The path and query only, as kube-apiserver: an HTTP/2 request's URI is absolute.
            request_uri: record
                .uri
                .path_and_query()
                .map_or_else(|| record.uri.path().to_owned(), ToString::to_string),
            verb,
            user,
            impersonated_user,
            source_ips: record
                .source
                .map(|s| s.ip().to_string())
                .into_iter()
                .collect(),
            user_agent: record.user_agent.and_then(|a| a.to_str().ok()),
            object_ref,
            response_status,
            request_received_timestamp: timestamp(received),
            stage_timestamp: timestamp(now),
            annotations,
        }
    }
}

/// The `objectRef` of a Kubernetes resource request, as kube-apiserver writes it.
fn kube_object<'a>(record: &'a RequestRecord<'a>) -> Option<ObjectRef<'a>> {
    let info = record.info;
    info.is_resource_request.then_some(ObjectRef {
        resource: info.resource,
        namespace: info.namespace,
        name: Cow::Borrowed(info.name),
        api_group: info.api_group,
        api_version: info.api_version,
        subresource: info.subresource,
    })
}

/// The verb and `objectRef` of a Kargo REST request (`None` for every other path, and for a
/// path no Kargo route serves).
fn kargo_action<'a>(
    record: &'a RequestRecord<'a>,
    notes: &Notes,
) -> Option<(&'a str, Option<ObjectRef<'a>>)> {
    let path = record.uri.path();
    if !path.starts_with("/v1beta1/") {
        return None;
    }
    let (route, params) = crate::kargo::route_of(record.method, path)?;
    let param = |name: &str| {
        params
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| Cow::Borrowed(*v))
    };
    let namespace = match param("project") {
        Some(Cow::Borrowed(project)) => project,
        _ if path.starts_with("/v1beta1/system/") => kargo_api::kargo::SYSTEM_NAMESPACE,
        _ => "",
    };
    // A collection's POST names its object in the body, which is never read here: the name is
    // that of the first object of one of `kinds` the request wrote.
    let first_written = |kinds: &[&ResourceType]| {
        notes
            .touched
            .iter()
            .find(|t| kinds.iter().any(|k| std::ptr::eq(*k, t.rt)))
            .map(|t| Cow::Owned(t.name.clone()))
    };
    let object = |rt: &'static ResourceType, name: Option<Cow<'a, str>>| ObjectRef {
        resource: rt.plural,
        namespace: if rt.namespaced { namespace } else { "" },
        name: name.unwrap_or_default(),
        api_group: rt.group,
        api_version: rt.version,
        subresource: "",
    };
    let role = |name| ObjectRef {
        resource: "roles",
        api_group: KARGO_ROLE_GROUP,
        api_version: KARGO_ROLE_VERSION,
        ..object(&ROLES, name)
    };
    let template = route.path;
    let object_ref = if template.contains("/api-tokens") {
        // An API token: the Secret it names, or the one a creation wrote.
        object(
            &SECRETS,
            param("apitoken").or_else(|| first_written(&[&SECRETS])),
        )
    } else if template.ends_with("{serviceaccount}/tokens") {
        ObjectRef {
            subresource: "tokens",
            ..object(&SERVICEACCOUNTS, param("serviceaccount"))
        }
    } else if template.ends_with("{serviceaccount}") {
        object(&SERVICEACCOUNTS, param("serviceaccount"))
    } else if template.ends_with("/service-accounts") {
        object(&SERVICEACCOUNTS, first_written(&[&SERVICEACCOUNTS]))
    } else if template.contains("/service-account-tokens") {
        object(&SECRETS, param("token"))
    } else if template.ends_with("{role}") {
        role(param("role"))
    } else if template.contains("/roles") {
        role(first_written(&[&ROLES, &ROLEBINDINGS, &SERVICEACCOUNTS]))
    } else if template.ends_with("{project}") {
        object(&PROJECTS, param("project"))
    } else if template == "/v1beta1/projects" {
        object(&PROJECTS, first_written(&[&PROJECTS]))
    } else {
        return Some((route.op.verb, None));
    };
    Some((route.op.verb, Some(object_ref)))
}

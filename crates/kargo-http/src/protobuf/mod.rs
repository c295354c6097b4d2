//! Decoding of the Kubernetes protobuf request bodies that kubectl 1.32+ sends, into the JSON
//! object the same kubectl would have sent as JSON.
//!
//! kubectl sends `Content-Type: application/vnd.kubernetes.protobuf` ([`MEDIA_TYPE`]) for
//! `create serviceaccount|role|rolebinding|clusterrole|clusterrolebinding|secret|configmap|namespace|token`,
//! `auth can-i` and `auth whoami`, and has no JSON fallback. (`delete` sends JSON
//! `{"propagationPolicy":"Background"}`.) The body is the magic number `k8s\0` ([`MAGIC`]) followed
//! by a `runtime.Unknown` message: `typeMeta {apiVersion, kind}` and `raw`, the object's own
//! protobuf encoding. [`decode`] checks the magic, reads the envelope, looks the kind up in the
//! table below, decodes `raw` with the `k8s-pb` message type and converts it to JSON.
//!
//! The JSON is what Go's `encoding/json` prints for the Go object the real API server would decode
//! from the same bytes, so the rest of the server handles both encodings alike: field names and
//! order from the Go structs' JSON tags, `omitempty` as Go applies it (struct fields such as
//! `metadata`, `spec` and `status` are always present; an unset `metadata.creationTimestamp` is
//! `null`), nil slices and maps without `omitempty` as `null`, `[]byte` as standard base64, and
//! `metav1.Time` as RFC 3339 to the second. The JSON-tag semantics live in `json`; each API group has
//! its own converter module, sharing `ObjectMeta`, selectors and the like from `meta`.
//!
//! Differences from Go, none of which kubectl triggers: strings must be valid UTF-8 (Go would
//! replace bad bytes with U+FFFD); a `[]byte` map entry without a value is `""` (Go: `null`);
//! `managedFields` is dropped; an envelope without apiVersion or kind is refused (Go fills them in
//! from the request path); unknown protobuf fields are skipped, as in Go.
//!
//! Decoding does no IO and never panics: any byte string yields a value or a [`ProtobufError`].

mod authentication;
mod authorization;
mod core;
mod json;
mod meta;
mod rbac;
#[cfg(test)]
mod tests;

use k8s_pb::apimachinery::pkg::runtime::Unknown;
use prost::{DecodeError, Message};
use serde_json::Value;

use self::json::JsonObject;

/// The media type of Kubernetes protobuf bodies, as sent in `Content-Type`.
pub(crate) const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The four bytes that open every Kubernetes protobuf body.
pub const MAGIC: [u8; 4] = *b"k8s\0";

/// Why a protobuf body could not be decoded. Every variant is the client's fault (HTTP 400), and
/// its message is meant for a `Status` returned to the client.
#[derive(Debug, thiserror::Error)]
pub enum ProtobufError {
    /// The body is empty, or holds only the magic number.
    #[error("empty protobuf body")]
    Empty,
    /// The body does not start with [`MAGIC`].
    #[error(
        "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]"
    )]
    MissingMagic,
    /// The bytes after the magic number are not a `runtime.Unknown` message.
    #[error("cannot decode the protobuf envelope (runtime.Unknown): {0}")]
    Envelope(DecodeError),
    /// The envelope leaves `apiVersion` or `kind` empty.
    #[error("the protobuf envelope does not name the object's apiVersion and kind")]
    MissingTypeMeta,
    /// The envelope names a kind this server does not decode from protobuf.
    #[error(
        "protobuf bodies are not supported for kind {kind:?} in version {api_version:?}; send JSON instead"
    )]
    UnsupportedKind {
        /// The envelope's `apiVersion`.
        api_version: String,
        /// The envelope's `kind`.
        kind: String,
    },
    /// The envelope's `raw` bytes are not a valid message of the kind it names.
    #[error("cannot decode {kind} ({api_version}) from protobuf: {source}")]
    InvalidObject {
        /// The envelope's `apiVersion`.
        api_version: String,
        /// The envelope's `kind`.
        kind: String,
        /// What the protobuf decoder found wrong.
        #[source]
        source: DecodeError,
    },
}

/// Decodes a Kubernetes protobuf request body into the JSON object that Go's `encoding/json` would
/// print for the same object, with `kind` and `apiVersion` taken from the envelope.
///
/// # Errors
///
/// A [`ProtobufError`] when the body is empty, lacks the magic number, is not a `runtime.Unknown`
/// envelope, names no kind or a kind not in [`supported_kinds`], or carries bytes that are not a
/// message of that kind.
pub fn decode(body: &[u8]) -> Result<Value, ProtobufError> {
    if body.is_empty() {
        return Err(ProtobufError::Empty);
    }
    let envelope = body
        .strip_prefix(&MAGIC)
        .ok_or(ProtobufError::MissingMagic)?;
    if envelope.is_empty() {
        return Err(ProtobufError::Empty);
    }
    let unknown = Unknown::decode(envelope).map_err(ProtobufError::Envelope)?;
    let type_meta = unknown.type_meta.unwrap_or_default();
    let api_version = type_meta.api_version.unwrap_or_default();
    let kind = type_meta.kind.unwrap_or_default();
    if api_version.is_empty() || kind.is_empty() {
        return Err(ProtobufError::MissingTypeMeta);
    }
    let Some(convert) = converter(&api_version, &kind) else {
        return Err(ProtobufError::UnsupportedKind { api_version, kind });
    };
    let object = JsonObject::new()
        .field("kind", Value::String(kind.clone()))
        .field("apiVersion", Value::String(api_version.clone()));
    match convert(unknown.raw.as_deref().unwrap_or_default(), object) {
        Ok(object) => Ok(object.build()),
        Err(source) => Err(ProtobufError::InvalidObject {
            api_version,
            kind,
            source,
        }),
    }
}

/// The `(apiVersion, kind)` pairs [`decode`] accepts.
pub fn supported_kinds() -> impl Iterator<Item = (&'static str, &'static str)> {
    let objects = KINDS.iter().map(|entry| (entry.api_version, entry.kind));
    let delete_options = DELETE_OPTIONS_VERSIONS
        .iter()
        .map(|&api_version| (api_version, "DeleteOptions"));
    objects.chain(delete_options)
}

/// Decodes `raw` into the object and appends its fields to `object`, which holds the type meta.
type Converter = fn(&[u8], JsonObject) -> Result<JsonObject, DecodeError>;

/// One kind [`decode`] accepts.
struct Kind {
    api_version: &'static str,
    kind: &'static str,
    convert: Converter,
}

/// The object kinds [`decode`] accepts.
const KINDS: &[Kind] = &[
    Kind {
        api_version: "v1",
        kind: "Namespace",
        convert: |raw, object| parse(raw, object, core::namespace),
    },
    Kind {
        api_version: "v1",
        kind: "ServiceAccount",
        convert: |raw, object| parse(raw, object, core::service_account),
    },
    Kind {
        api_version: "v1",
        kind: "Secret",
        convert: |raw, object| parse(raw, object, core::secret),
    },
    Kind {
        api_version: "v1",
        kind: "ConfigMap",
        convert: |raw, object| parse(raw, object, core::config_map),
    },
    Kind {
        api_version: "rbac.authorization.k8s.io/v1",
        kind: "Role",
        convert: |raw, object| parse(raw, object, rbac::role),
    },
    Kind {
        api_version: "rbac.authorization.k8s.io/v1",
        kind: "ClusterRole",
        convert: |raw, object| parse(raw, object, rbac::cluster_role),
    },
    Kind {
        api_version: "rbac.authorization.k8s.io/v1",
        kind: "RoleBinding",
        convert: |raw, object| parse(raw, object, rbac::role_binding),
    },
    Kind {
        api_version: "rbac.authorization.k8s.io/v1",
        kind: "ClusterRoleBinding",
        convert: |raw, object| parse(raw, object, rbac::cluster_role_binding),
    },
    Kind {
        api_version: "authentication.k8s.io/v1",
        kind: "TokenRequest",
        convert: |raw, object| parse(raw, object, authentication::token_request),
    },
    Kind {
        api_version: "authentication.k8s.io/v1",
        kind: "TokenReview",
        convert: |raw, object| parse(raw, object, authentication::token_review),
    },
    Kind {
        api_version: "authentication.k8s.io/v1",
        kind: "SelfSubjectReview",
        convert: |raw, object| parse(raw, object, authentication::self_subject_review),
    },
    Kind {
        api_version: "authorization.k8s.io/v1",
        kind: "SelfSubjectAccessReview",
        convert: |raw, object| parse(raw, object, authorization::self_subject_access_review),
    },
    Kind {
        api_version: "authorization.k8s.io/v1",
        kind: "SubjectAccessReview",
        convert: |raw, object| parse(raw, object, authorization::subject_access_review),
    },
    Kind {
        api_version: "authorization.k8s.io/v1",
        kind: "LocalSubjectAccessReview",
        convert: |raw, object| parse(raw, object, authorization::local_subject_access_review),
    },
    Kind {
        api_version: "authorization.k8s.io/v1",
        kind: "SelfSubjectRulesReview",
        convert: |raw, object| parse(raw, object, authorization::self_subject_rules_review),
    },
];

/// The versions that accept `DeleteOptions`: Kubernetes registers it in every group version
/// (`metav1.AddToGroupVersion`) as well as in `meta.k8s.io/v1`.
const DELETE_OPTIONS_VERSIONS: &[&str] = &[
    "meta.k8s.io/v1",
    "v1",
    "rbac.authorization.k8s.io/v1",
    "authentication.k8s.io/v1",
    "authorization.k8s.io/v1",
];

fn converter(api_version: &str, kind: &str) -> Option<Converter> {
    if kind == "DeleteOptions" {
        let convert: Converter = |raw, object| parse(raw, object, meta::delete_options);
        return DELETE_OPTIONS_VERSIONS
            .contains(&api_version)
            .then_some(convert);
    }
    KINDS
        .iter()
        .find(|entry| entry.api_version == api_version && entry.kind == kind)
        .map(|entry| entry.convert)
}

/// Decodes `raw` as an `M` and converts it with `convert`.
fn parse<M: Message + Default>(
    raw: &[u8],
    object: JsonObject,
    convert: fn(&M, JsonObject) -> JsonObject,
) -> Result<JsonObject, DecodeError> {
    Ok(convert(&M::decode(raw)?, object))
}

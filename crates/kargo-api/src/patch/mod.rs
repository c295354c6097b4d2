//! The PATCH bodies kube-apiserver applies: JSON merge patch, JSON patch, strategic merge patch,
//! and server-side apply ([`apply`]: merge, field ownership and conflicts).
//!
//! - [`merge_patch`]: `application/merge-patch+json` (RFC 7386, with the null pruning of the
//!   `evanphx/json-patch` library kube-apiserver uses).
//! - [`json_patch()`]: `application/json-patch+json` (RFC 6902, applied with the `json-patch`
//!   crate, all-or-nothing).
//! - [`strategic_merge_patch`]: `application/strategic-merge-patch+json`, what `kubectl apply`
//!   (client-side) and `kubectl patch` send. It follows `k8s.io/apimachinery/pkg/util/strategicpatch`
//!   as kube-apiserver runs it (`StrategicMergeMapPatch`: parallel lists merged, unmatched nulls
//!   ignored): maps merge recursively, `null` deletes a key, lists merge or are replaced according
//!   to a [`ListStrategy`], and the directives `$patch: replace|delete` (maps and list items),
//!   `$retainKeys`, `$setElementOrder/<list>` and `$deleteFromPrimitiveList/<list>` apply.
//!
//! Every failure is a [`PatchError`]; [`PatchError::code`], [`PatchError::reason`] and
//! [`PatchError::status_message`] say how kube-apiserver reports it.

pub mod apply;
mod json;
mod merge;
#[cfg(test)]
mod oracle;
#[cfg(test)]
mod properties;
mod strategic;

use serde_json::Value;

pub use json::{JsonPatchLimits, json_patch, json_patch_with_limits};
pub use merge::merge_patch;
pub use strategic::strategic_merge_patch;

/// Most operations kube-apiserver accepts in one JSON patch.
pub const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

/// Most bytes the `copy` operations of one JSON patch may copy together: kube-apiserver's
/// default `JSONPatchMaxCopyBytes` (3 MiB, twice etcd's request limit).
pub const MAX_JSON_PATCH_COPY_BYTES: usize = 3 * 1024 * 1024;

/// The message of kube-apiserver's generic 422 (`NewGenericServerResponse`), which hides the
/// underlying error.
const GENERIC_422_MESSAGE: &str = "the server rejected our request due to an error in our request";

/// A patch could not be applied.
///
/// kube-apiserver answers the variants differently; see [`PatchError::code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The JSON patch body is not a list of operation objects (Go's decoding error). 400.
    #[error("{0}")]
    InvalidJsonPatch(String),
    /// More than [`MAX_JSON_PATCH_OPERATIONS`] operations. 413.
    #[error("The allowed maximum operations in a JSON patch is {max}, got {got}")]
    TooManyOperations {
        /// The limit.
        max: usize,
        /// Operations in the patch.
        got: usize,
    },
    /// A JSON patch operation failed: a `test` did not match, a path is missing, an operation
    /// is malformed. 422 with a generic message.
    #[error("{0}")]
    JsonPatchFailed(String),
    /// The `copy` operations of a JSON patch copied more than the limit in total
    /// ([`MAX_JSON_PATCH_COPY_BYTES`]); the message is that of kube-apiserver's library. 422
    /// with a generic message, as kube-apiserver answers.
    #[error(
        "Unable to complete the copy, the accumulated size increase of copy is {accumulated}, exceeding the limit {limit}"
    )]
    CopySizeLimitExceeded {
        /// The limit, in bytes.
        limit: usize,
        /// Bytes copied so far, including the copy that crossed the limit.
        accumulated: usize,
    },
    /// A JSON patch operation would make the object larger than the limit
    /// ([`limits::MAX_OBJECT_BYTES`](crate::limits::MAX_OBJECT_BYTES) by default), in bytes of
    /// compact JSON. 413, as kube-apiserver answers an object too large for etcd.
    #[error("the patched object would be larger than {max} bytes")]
    ObjectTooLarge {
        /// The limit, in bytes.
        max: usize,
    },
    /// A JSON patch operation would nest the object deeper than the limit
    /// ([`limits::MAX_NESTING_DEPTH`](crate::limits::MAX_NESTING_DEPTH) by default). 422.
    #[error("the patched object would be nested deeper than {max} levels")]
    ObjectTooDeep {
        /// The deepest nesting allowed.
        max: usize,
    },
    /// A merge patch that is `null` or a scalar. 400.
    #[error("Invalid JSON Patch")]
    InvalidMergePatch,
    /// A strategic merge patch body that is not a JSON object (Go's decoding error). 400.
    #[error("{0}")]
    InvalidStrategicPatch(String),
    /// The object being patched is not a JSON object. 400.
    #[error("invalid JSON document")]
    InvalidDocument,
    /// A malformed `$deleteFromPrimitiveList` key. 400.
    #[error("invalid patch format of primitive list")]
    BadPrimitiveListFormat,
    /// A `$retainKeys` that is not a list, or a patched key missing from it. 400.
    #[error("invalid patch format of retainKeys")]
    BadRetainKeysFormat,
    /// A malformed `$setElementOrder` key. 400.
    #[error("invalid patch format of setElementOrder list")]
    BadSetElementOrderFormat,
    /// A list whose items are lists. 422 with a generic message.
    #[error("lists of lists are not supported")]
    ListOfLists,
    /// Any other strategic merge failure (an unknown `$patch`, a list item without its merge
    /// key, `$patch: merge` in a list, mismatched item types, a `$setElementOrder` that does
    /// not cover the patch list). kube-apiserver returns these as a 500 with this message.
    #[error("{0}")]
    StrategicMergeFailed(String),
}

impl PatchError {
    /// The HTTP status kube-apiserver answers with.
    ///
    /// A failed JSON patch operation (including a failed `test`) is 422, an undecodable patch
    /// body is 400, too many operations 413.
    pub fn code(&self) -> u16 {
        match self {
            PatchError::InvalidJsonPatch(_)
            | PatchError::InvalidMergePatch
            | PatchError::InvalidStrategicPatch(_)
            | PatchError::InvalidDocument
            | PatchError::BadPrimitiveListFormat
            | PatchError::BadRetainKeysFormat
            | PatchError::BadSetElementOrderFormat => 400,
            PatchError::TooManyOperations { .. } | PatchError::ObjectTooLarge { .. } => 413,
            PatchError::JsonPatchFailed(_)
            | PatchError::CopySizeLimitExceeded { .. }
            | PatchError::ObjectTooDeep { .. }
            | PatchError::ListOfLists => 422,
            PatchError::StrategicMergeFailed(_) => 500,
        }
    }

    /// The `reason` of kube-apiserver's `Status` (empty for the 500s, which have none).
    pub fn reason(&self) -> &'static str {
        match self.code() {
            400 => "BadRequest",
            413 => "RequestEntityTooLarge",
            422 => "Invalid",
            _ => "",
        }
    }

    /// The `message` of kube-apiserver's `Status`.
    ///
    /// The 422s carry the generic `the server rejected our request due to an error in our
    /// request` (with an empty `details: {}`); the real cause is only in [`Display`](std::fmt::Display).
    /// The 413 is prefixed `Request entity too large: `.
    pub fn status_message(&self) -> String {
        match self.code() {
            413 => format!("Request entity too large: {self}"),
            422 => GENERIC_422_MESSAGE.to_string(),
            _ => self.to_string(),
        }
    }
}

/// How a list field merges in a strategic merge patch (its `patchStrategy`/`patchMergeKey`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListStrategy {
    /// No merge strategy: the patch list replaces the list.
    Atomic,
    /// `patchStrategy: merge` with a `patchMergeKey`: items with the same key value merge.
    MergeByKey(&'static str),
    /// `patchStrategy: merge` on a list of scalars: merged as a set.
    MergeSet,
}

impl ListStrategy {
    fn merge_key(self) -> &'static str {
        match self {
            ListStrategy::MergeByKey(key) => key,
            _ => "",
        }
    }

    fn merges(self) -> bool {
        self != ListStrategy::Atomic
    }
}

/// The list strategies of `ObjectMeta`: `metadata.ownerReferences` merge by `uid`,
/// `metadata.finalizers` merge as a set, anything else is atomic.
pub fn object_meta_list_strategy(path: &str) -> ListStrategy {
    match path {
        "metadata.ownerReferences" => ListStrategy::MergeByKey("uid"),
        "metadata.finalizers" => ListStrategy::MergeSet,
        _ => ListStrategy::Atomic,
    }
}

/// The list strategies of a `ServiceAccount`: `secrets` merge by `name`
/// (`imagePullSecrets` is atomic), plus [`object_meta_list_strategy`].
pub fn service_account_list_strategy(path: &str) -> ListStrategy {
    match path {
        "secrets" => ListStrategy::MergeByKey("name"),
        other => object_meta_list_strategy(other),
    }
}

/// How Go's `encoding/json` names a JSON value in an `UnmarshalTypeError`.
fn go_json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_errors_map_to_kube_apiserver_statuses() {
        let cases = [
            (
                PatchError::JsonPatchFailed("testing value /a failed: test failed".into()),
                422,
                "Invalid",
                "the server rejected our request due to an error in our request",
            ),
            (
                PatchError::InvalidJsonPatch(
                    "json: cannot unmarshal object into Go value of type jsonpatch.Patch".into(),
                ),
                400,
                "BadRequest",
                "json: cannot unmarshal object into Go value of type jsonpatch.Patch",
            ),
            (
                PatchError::TooManyOperations {
                    max: 10000,
                    got: 10001,
                },
                413,
                "RequestEntityTooLarge",
                "Request entity too large: The allowed maximum operations in a JSON patch is 10000, got 10001",
            ),
            (
                PatchError::InvalidMergePatch,
                400,
                "BadRequest",
                "Invalid JSON Patch",
            ),
            (
                PatchError::BadRetainKeysFormat,
                400,
                "BadRequest",
                "invalid patch format of retainKeys",
            ),
            (
                PatchError::ListOfLists,
                422,
                "Invalid",
                "the server rejected our request due to an error in our request",
            ),
            (
                PatchError::StrategicMergeFailed(
                    "merging lists cannot yet be specified in the patch".into(),
                ),
                500,
                "",
                "merging lists cannot yet be specified in the patch",
            ),
        ];
        for (err, code, reason, message) in cases {
            assert_eq!(
                (err.code(), err.reason(), err.status_message().as_str()),
                (code, reason, message),
                "{err:?}"
            );
        }
    }

    #[test]
    fn limit_errors_map_to_kube_apiserver_statuses() {
        let cases = [
            (
                PatchError::CopySizeLimitExceeded {
                    limit: 3_145_728,
                    accumulated: 3_200_064,
                },
                422,
                "Invalid",
                "the server rejected our request due to an error in our request",
                "Unable to complete the copy, the accumulated size increase of copy is 3200064, exceeding the limit 3145728",
            ),
            (
                PatchError::ObjectTooLarge { max: 1_572_864 },
                413,
                "RequestEntityTooLarge",
                "Request entity too large: the patched object would be larger than 1572864 bytes",
                "the patched object would be larger than 1572864 bytes",
            ),
            (
                PatchError::ObjectTooDeep { max: 100 },
                422,
                "Invalid",
                "the server rejected our request due to an error in our request",
                "the patched object would be nested deeper than 100 levels",
            ),
        ];
        for (err, code, reason, message, cause) in cases {
            assert_eq!(
                (
                    err.code(),
                    err.reason(),
                    err.status_message().as_str(),
                    err.to_string().as_str()
                ),
                (code, reason, message, cause),
                "{err:?}"
            );
        }
    }
}

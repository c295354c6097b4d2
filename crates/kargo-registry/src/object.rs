//! Objects as the registry handles them: JSON values with Kubernetes metadata, and their encoding
//! in the store (the JSON without `resourceVersion`, which is the key's `mod_revision`).

use std::collections::BTreeMap;

use kargo_api::limits::{MAX_NESTING_DEPTH, deeper_than};
use kargo_store::{KeyValue, Revision};
use serde_json::{Map, Value};

use crate::status::{Result, Status};

/// A Kubernetes object as JSON (always a JSON object at the top).
pub type Object = Value;

/// Read access to an object's metadata.
pub trait Meta {
    /// `metadata` as a map (empty if missing).
    fn meta(&self) -> Option<&Map<String, Value>>;
    /// A string field of `metadata`.
    fn meta_str(&self, field: &str) -> Option<&str> {
        self.meta()?.get(field)?.as_str()
    }
    /// `metadata.name` (empty if missing).
    fn name(&self) -> &str {
        self.meta_str("name").unwrap_or("")
    }
    /// `metadata.namespace`.
    fn namespace(&self) -> Option<&str> {
        self.meta_str("namespace").filter(|s| !s.is_empty())
    }
    /// `metadata.uid` (empty if missing).
    fn uid(&self) -> &str {
        self.meta_str("uid").unwrap_or("")
    }
    /// `metadata.resourceVersion` (empty if missing).
    fn resource_version(&self) -> &str {
        self.meta_str("resourceVersion").unwrap_or("")
    }
    /// Whether `metadata.deletionTimestamp` is set.
    fn is_deleting(&self) -> bool {
        self.meta_str("deletionTimestamp").is_some()
    }
    /// A string map of `metadata` (`labels`, `annotations`).
    fn string_map(&self, field: &str) -> BTreeMap<String, String> {
        self.meta()
            .and_then(|m| m.get(field))
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                    .collect()
            })
            .unwrap_or_default()
    }
    /// `metadata.labels`.
    fn labels(&self) -> BTreeMap<String, String> {
        self.string_map("labels")
    }
    /// One annotation.
    fn annotation(&self, key: &str) -> Option<&str> {
        self.meta()?.get("annotations")?.get(key)?.as_str()
    }
    /// One label.
    fn label(&self, key: &str) -> Option<&str> {
        self.meta()?.get("labels")?.get(key)?.as_str()
    }
    /// `metadata.finalizers`.
    fn finalizers(&self) -> Vec<String> {
        self.meta()
            .and_then(|m| m.get("finalizers"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
    /// `metadata.ownerReferences`.
    fn owner_references(&self) -> Vec<OwnerReference> {
        self.meta()
            .and_then(|m| m.get("ownerReferences"))
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default()
    }
}

impl Meta for Value {
    fn meta(&self) -> Option<&Map<String, Value>> {
        self.get("metadata")?.as_object()
    }
}

/// An owner reference, as much of it as the registry and the garbage collector read.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnerReference {
    /// The owner's apiVersion.
    pub api_version: String,
    /// The owner's kind.
    pub kind: String,
    /// The owner's name.
    pub name: String,
    /// The owner's uid.
    pub uid: String,
    /// Whether the owner is the managing controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<bool>,
    /// Whether the owner's foreground deletion waits for this dependent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_owner_deletion: Option<bool>,
}

/// Mutable access to `metadata`, created if missing.
pub fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = Value::Object(Map::new());
    }
    let map = obj.as_object_mut().expect("object ensured above");
    let meta = map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    meta.as_object_mut().expect("object ensured above")
}

/// Sets or removes (`None`) a metadata field.
pub fn set_meta(obj: &mut Value, field: &str, value: Option<Value>) {
    let meta = meta_mut(obj);
    match value {
        Some(v) => {
            meta.insert(field.to_owned(), v);
        }
        None => {
            meta.remove(field);
        }
    }
}

/// Sets `metadata.finalizers` (removing the field when empty).
pub fn set_finalizers(obj: &mut Value, finalizers: &[String]) {
    let value = (!finalizers.is_empty()).then(|| {
        Value::Array(
            finalizers
                .iter()
                .map(|f| Value::String(f.clone()))
                .collect(),
        )
    });
    set_meta(obj, "finalizers", value);
}

/// The current time as Kubernetes writes timestamps (`2024-01-02T03:04:05Z`).
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    k8s_openapi::jiff::Timestamp::from_second(secs)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}

/// Encodes an object for the store: its JSON without `metadata.resourceVersion`. An object that
/// nests deeper than [`MAX_NESTING_DEPTH`] (it would not decode again) or whose encoding is
/// larger than `max_bytes` is refused, whichever write path produced it.
pub(crate) fn encode(obj: &Value, max_bytes: usize) -> Result<Vec<u8>> {
    if deeper_than(obj, MAX_NESTING_DEPTH) {
        return Err(Status::failure(
            422,
            "Invalid",
            format!(
                "{} \"{}\" is invalid: the object nests deeper than {MAX_NESTING_DEPTH} levels",
                obj.get("kind").and_then(Value::as_str).unwrap_or("object"),
                obj.name()
            ),
        ));
    }
    let mut obj = obj.clone();
    set_meta(&mut obj, "resourceVersion", None);
    let bytes = serde_json::to_vec(&obj).map_err(|e| {
        tracing::error!(error = %e, "encoding an object failed");
        Status::internal("encoding the object failed")
    })?;
    if bytes.len() > max_bytes {
        return Err(Status::failure(
            413,
            "RequestEntityTooLarge",
            format!(
                "Request entity too large: the object would be larger than {max_bytes} bytes ({} bytes as stored)",
                bytes.len()
            ),
        ));
    }
    Ok(bytes)
}

/// Decodes a stored value, setting `metadata.resourceVersion` to the key's `mod_revision`.
pub(crate) fn decode(kv: &KeyValue) -> Result<Value> {
    decode_at(&kv.value, kv.mod_revision).inspect_err(|_| {
        tracing::error!(key = %kv.key, "the stored object under this key does not decode; delete it");
    })
}

/// Decodes stored bytes and stamps them with a resourceVersion.
pub(crate) fn decode_at(bytes: &[u8], revision: Revision) -> Result<Value> {
    let mut obj: Value = serde_json::from_slice(bytes).map_err(|e| {
        tracing::error!(error = %e, "a stored object does not decode");
        undecodable()
    })?;
    set_meta(
        &mut obj,
        "resourceVersion",
        Some(Value::String(revision.to_string())),
    );
    Ok(obj)
}

/// The 500 of an object whose stored value does not decode (written by an older version, or
/// damaged outside the server). Such an object can still be deleted: the registry deletes it
/// unread, and lists leave it out with a warning.
pub(crate) fn undecodable() -> Status {
    Status::internal(
        "the stored object could not be decoded; it can only be deleted (the server log names its key)",
    )
}

/// Parses a `resourceVersion` string: decimal digits only, as kube-apiserver's
/// `strconv.ParseUint` reads it (Rust's integer parsing would also take a sign: `+5`).
pub fn parse_revision(rv: &str) -> Option<Revision> {
    if rv.is_empty() || !rv.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    rv.parse::<i64>().ok().map(Revision)
}

//! JSON patch (`application/json-patch+json`, RFC 6902), with the quirks of the Go library
//! kube-apiserver uses.

use json_patch::{AddOperation, PatchErrorKind, PatchOperation, RemoveOperation};
use serde_json::Value;

use super::{MAX_JSON_PATCH_COPY_BYTES, MAX_JSON_PATCH_OPERATIONS, PatchError, go_json_kind};
use crate::limits;

/// Apply a JSON patch (`application/json-patch+json`, RFC 6902) to `target`, all or nothing,
/// within the default [`JsonPatchLimits`].
///
/// kube-apiserver reports an undecodable body (not a list of objects) as a 400
/// ([`PatchError::InvalidJsonPatch`], Go's message such as `json: cannot unmarshal object into
/// Go value of type jsonpatch.Patch`), more than 10000 operations as a 413, and any operation
/// that fails — a `test` that does not match, a missing path, an unknown `op` — as a 422
/// `Invalid` whose message is the generic `the server rejected our request due to an error in
/// our request` ([`PatchError::JsonPatchFailed`]). A `null` body changes nothing. Like
/// kube-apiserver's library, a `test` of `null` passes on a missing member.
pub fn json_patch(target: &mut Value, patch: &Value) -> Result<(), PatchError> {
    json_patch_with_limits(target, patch, &JsonPatchLimits::default())
}

/// What one JSON patch may do beyond its operations' own rules, checked after every operation,
/// so a patch fails at the operation that crosses a limit instead of first building the object.
///
/// A few hundred bytes of `copy` operations can double an object again and again, and copying
/// an object into its own descendant nests it one level deeper each time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonPatchLimits {
    /// The most bytes all `copy` operations may copy together, counted as the compact JSON of
    /// each copied value ([`PatchError::CopySizeLimitExceeded`]).
    pub max_copy_bytes: usize,
    /// The largest the object may grow, in bytes of compact JSON ([`PatchError::ObjectTooLarge`]).
    /// An operation that shrinks an object already larger passes.
    pub max_object_bytes: usize,
    /// The deepest an operation may place a value, as [`limits::nesting_depth`] counts
    /// ([`PatchError::ObjectTooDeep`]).
    pub max_depth: usize,
}

impl Default for JsonPatchLimits {
    /// kube-apiserver's copy limit ([`MAX_JSON_PATCH_COPY_BYTES`]) and the stored-object limits
    /// ([`limits::MAX_OBJECT_BYTES`], [`limits::MAX_NESTING_DEPTH`]).
    fn default() -> Self {
        JsonPatchLimits {
            max_copy_bytes: MAX_JSON_PATCH_COPY_BYTES,
            max_object_bytes: limits::MAX_OBJECT_BYTES,
            max_depth: limits::MAX_NESTING_DEPTH,
        }
    }
}

/// [`json_patch()`] with explicit limits (the server passes its configured object size).
///
/// The checks cost each operation time proportional to the values it adds, removes or copies
/// and to its path: the object's size and depth are measured once, then updated by each
/// operation. Only moving a value to a deeper place measures the value, and only when the
/// depth so far leaves less room than the move could need.
pub fn json_patch_with_limits(
    target: &mut Value,
    patch: &Value,
    limits: &JsonPatchLimits,
) -> Result<(), PatchError> {
    let Some(ops) = operations(patch)? else {
        return Ok(());
    };
    let (doc, _) = apply_operations(target, ops, limits)?;
    *target = doc;
    Ok(())
}

/// The operations of a patch body; `None` for a `null` body.
pub(super) fn operations(patch: &Value) -> Result<Option<&[Value]>, PatchError> {
    let ops = match patch {
        Value::Null => return Ok(None),
        Value::Array(ops) => ops,
        other => {
            return Err(PatchError::InvalidJsonPatch(format!(
                "json: cannot unmarshal {} into Go value of type jsonpatch.Patch",
                go_json_kind(other)
            )));
        }
    };
    if let Some(bad) = ops.iter().find(|op| !op.is_object() && !op.is_null()) {
        return Err(PatchError::InvalidJsonPatch(format!(
            "json: cannot unmarshal {} into Go value of type jsonpatch.Operation",
            go_json_kind(bad)
        )));
    }
    if ops.len() > MAX_JSON_PATCH_OPERATIONS {
        return Err(PatchError::TooManyOperations {
            max: MAX_JSON_PATCH_OPERATIONS,
            got: ops.len(),
        });
    }
    Ok(Some(ops))
}

/// Apply `ops` to a copy of `target`; returns the patched copy and what it measures.
pub(super) fn apply_operations(
    target: &Value,
    ops: &[Value],
    limits: &JsonPatchLimits,
) -> Result<(Value, Budget), PatchError> {
    let mut doc = target.clone();
    let mut budget = Budget {
        size: limits::json_len(&doc),
        depth: limits::nesting_depth(&doc),
        copied: 0,
    };
    for op in ops {
        apply_json_patch_operation(&mut doc, op, &mut budget, limits)?;
    }
    Ok((doc, budget))
}

/// What the patched document measures so far.
#[derive(Debug)]
pub(super) struct Budget {
    /// Its exact length as compact JSON.
    pub(super) size: usize,
    /// At least its nesting depth (removals are not subtracted).
    pub(super) depth: usize,
    /// Bytes copied by `copy` operations.
    copied: usize,
}

impl Budget {
    /// The document changed size by `change` bytes.
    fn resize(&mut self, change: i64, limits: &JsonPatchLimits) -> Result<(), PatchError> {
        let size = i64::try_from(self.size).unwrap_or(i64::MAX);
        self.size = usize::try_from(size.saturating_add(change)).unwrap_or(0);
        if change > 0 && self.size > limits.max_object_bytes {
            return Err(PatchError::ObjectTooLarge {
                max: limits.max_object_bytes,
            });
        }
        Ok(())
    }

    /// A value `value_depth` deep was placed under `path`.
    fn place(
        &mut self,
        path: &str,
        value_depth: usize,
        limits: &JsonPatchLimits,
    ) -> Result<(), PatchError> {
        let depth = tokens(path) + value_depth;
        if depth > limits.max_depth {
            return Err(PatchError::ObjectTooDeep {
                max: limits.max_depth,
            });
        }
        self.depth = self.depth.max(depth);
        Ok(())
    }
}

/// One operation as the Go library reads it, ready for the `json-patch` crate.
pub(super) struct Prepared {
    /// `add`, `remove`, ... (`add` for a `replace` of a missing member).
    pub(super) kind: String,
    /// The path, negative indices resolved.
    pub(super) path: String,
    pub(super) op: PatchOperation,
}

/// The error the Go library reports when the crate fails an operation.
pub(super) fn operation_failed(kind: &str, path: &str, error: PatchErrorKind) -> PatchError {
    PatchError::JsonPatchFailed(match error {
        PatchErrorKind::TestFailed => format!("testing value {path} failed: test failed"),
        other => format!("{kind} operation does not apply at {path}: {other}"),
    })
}

/// Read `op` as the Go library does against `doc`; `None` for an operation that passes without
/// effect (a `test` of `null` on a missing member).
pub(super) fn prepare(doc: &Value, op: &Value) -> Result<Option<Prepared>, PatchError> {
    let mut op = op.as_object().cloned().unwrap_or_default();
    let mut kind = op
        .get("op")
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .to_string();
    match kind.as_str() {
        "add" | "replace" | "test" => {
            // The Go library reads a missing `value` as null.
            op.entry("value").or_insert(Value::Null);
        }
        "remove" | "move" | "copy" => {}
        other => {
            return Err(PatchError::JsonPatchFailed(format!(
                "Unexpected kind: {other}"
            )));
        }
    }
    let raw_path = op.get("path").and_then(Value::as_str).unwrap_or("");
    for pointer in [Some(raw_path), op.get("from").and_then(Value::as_str)]
        .into_iter()
        .flatten()
    {
        // The Go library cannot address the whole document (nor a relative path).
        if !pointer.starts_with('/') {
            return Err(PatchError::JsonPatchFailed(format!(
                "{kind} operation does not apply: doc is missing path: \"{pointer}\""
            )));
        }
    }
    let path = resolve_negative_indices(doc, raw_path, kind == "add");
    op.insert("path".into(), Value::String(path.clone()));
    if let Some(from) = op.get("from").and_then(Value::as_str) {
        let from = resolve_negative_indices(doc, from, false);
        op.insert("from".into(), Value::String(from));
    }
    if kind == "test" && op.get("value").is_some_and(Value::is_null) && missing_member(doc, &path) {
        // The Go library passes a test of null on a missing member.
        return Ok(None);
    }
    if kind == "replace" && missing_member(doc, &path) {
        // The Go library replaces a missing member of an object by adding it.
        kind = "add".to_string();
        op.insert("op".into(), Value::String(kind.clone()));
    }
    let op = serde_json::from_value(Value::Object(op))
        .map_err(|e| PatchError::JsonPatchFailed(format!("invalid {kind} operation: {e}")))?;
    Ok(Some(Prepared { kind, path, op }))
}

fn apply_json_patch_operation(
    doc: &mut Value,
    op: &Value,
    budget: &mut Budget,
    limits: &JsonPatchLimits,
) -> Result<(), PatchError> {
    let Some(Prepared { kind, path, op }) = prepare(doc, op)? else {
        return Ok(());
    };
    let failed = |e: PatchErrorKind| operation_failed(&kind, &path, e);
    let apply = |doc: &mut Value, op: PatchOperation| {
        json_patch::patch_unsafe(doc, std::slice::from_ref(&op)).map_err(|e| failed(e.kind))
    };
    match op {
        PatchOperation::Test(test) => apply(doc, PatchOperation::Test(test)),
        PatchOperation::Add(add) => {
            let size = limits::json_len(&add.value);
            let depth = limits::nesting_depth(&add.value);
            let change = size_i64(size) + placement_change(doc, &path);
            apply(doc, PatchOperation::Add(add))?;
            budget.resize(change, limits)?;
            budget.place(&path, depth, limits)
        }
        PatchOperation::Replace(replace) => {
            let size = limits::json_len(&replace.value);
            let depth = limits::nesting_depth(&replace.value);
            let change = size_i64(size) - doc.pointer(&path).map_or(0, encoded_size);
            apply(doc, PatchOperation::Replace(replace))?;
            budget.resize(change, limits)?;
            budget.place(&path, depth, limits)
        }
        PatchOperation::Remove(remove) => {
            let change =
                -(doc.pointer(&path).map_or(0, encoded_size) + removal_overhead(doc, &path));
            apply(doc, PatchOperation::Remove(remove))?;
            budget.resize(change, limits)
        }
        PatchOperation::Copy(copy) => {
            let from = copy.from.as_str();
            let Some(source) = doc.pointer(from) else {
                return Err(failed(PatchErrorKind::InvalidFromPointer));
            };
            if !has_container(doc, &path) {
                return Err(failed(PatchErrorKind::InvalidPointer));
            }
            // Counted before the copy is made, as kube-apiserver's library does.
            let size = limits::json_len(source);
            budget.copied = budget.copied.saturating_add(size);
            if budget.copied > limits.max_copy_bytes {
                return Err(PatchError::CopySizeLimitExceeded {
                    limit: limits.max_copy_bytes,
                    accumulated: budget.copied,
                });
            }
            let depth = limits::nesting_depth(source);
            let change = size_i64(size) + placement_change(doc, &path);
            apply(doc, PatchOperation::Copy(copy))?;
            budget.resize(change, limits)?;
            budget.place(&path, depth, limits)
        }
        PatchOperation::Move(mv) => {
            // The library's move is a remove and an add; done in two steps here so that the size
            // change is known without measuring the moved value (it cancels out).
            let from = mv.from.as_str().to_string();
            if path.len() > from.len()
                && path.starts_with(&from)
                && path.as_bytes()[from.len()] == b'/'
            {
                return Err(failed(PatchErrorKind::CannotMoveInsideItself));
            }
            let left = removal_overhead(doc, &from);
            let Some(slot) = doc.pointer_mut(&from) else {
                return Err(failed(PatchErrorKind::InvalidFromPointer));
            };
            let value = std::mem::take(slot);
            apply(
                doc,
                PatchOperation::Remove(RemoveOperation { path: mv.from }),
            )
            .map_err(|_| failed(PatchErrorKind::InvalidFromPointer))?;
            // Only a move to a deeper place can nest deeper than the document was, by at most how
            // much deeper the place is; measure only when that bound leaves no room.
            let rise = tokens(&path).saturating_sub(tokens(&from));
            let depth = if rise > 0 && budget.depth + rise > limits.max_depth {
                // Measure instead: the document without the value, and the value.
                budget.depth = limits::nesting_depth(doc);
                Some(limits::nesting_depth(&value))
            } else {
                None
            };
            let change = placement_change(doc, &path) - left;
            apply(
                doc,
                PatchOperation::Add(AddOperation {
                    path: mv.path,
                    value,
                }),
            )?;
            budget.resize(change, limits)?;
            match depth {
                Some(depth) => budget.place(&path, depth, limits),
                None => {
                    budget.depth += rise;
                    Ok(())
                }
            }
        }
    }
}

/// How many reference tokens a JSON pointer has: the depth of the value it names.
fn tokens(path: &str) -> usize {
    path.bytes().filter(|&b| b == b'/').count()
}

/// The parent pointer of `path` and its last token, unescaped.
fn split_last(path: &str) -> (&str, String) {
    let (parent, last) = path.rsplit_once('/').unwrap_or(("", path));
    (parent, last.replace("~1", "/").replace("~0", "~"))
}

/// Whether the parent of `path` exists and can hold members or items.
fn has_container(doc: &Value, path: &str) -> bool {
    let (parent, _) = split_last(path);
    doc.pointer(parent)
        .is_some_and(|p| p.is_object() || p.is_array())
}

fn size_i64(size: usize) -> i64 {
    i64::try_from(size).unwrap_or(i64::MAX)
}

fn encoded_size(value: &Value) -> i64 {
    size_i64(limits::json_len(value))
}

/// How the document's size changes, besides the value's own bytes, when a value is added at
/// `path`: a new member costs its key, a colon and a comma after a first one; a replaced member
/// gives back its old value; an array item costs a comma after a first one.
fn placement_change(doc: &Value, path: &str) -> i64 {
    let (parent, key) = split_last(path);
    match doc.pointer(parent) {
        Some(Value::Object(members)) => match members.get(&key) {
            Some(old) => -encoded_size(old),
            None => {
                let comma = i64::from(!members.is_empty());
                size_i64(limits::json_string_len(&key)) + 1 + comma
            }
        },
        Some(Value::Array(items)) => i64::from(!items.is_empty()),
        _ => 0,
    }
}

/// The bytes besides the value itself that removing the entry at `path` frees: its key and
/// colon in an object, and a comma when others remain.
fn removal_overhead(doc: &Value, path: &str) -> i64 {
    let (parent, key) = split_last(path);
    match doc.pointer(parent) {
        Some(Value::Object(members)) => {
            size_i64(limits::json_string_len(&key)) + 1 + i64::from(members.len() > 1)
        }
        Some(Value::Array(items)) => i64::from(items.len() > 1),
        _ => 0,
    }
}

/// Whether `path` names a missing member of an existing object.
fn missing_member(doc: &Value, path: &str) -> bool {
    if doc.pointer(path).is_some() {
        return false;
    }
    match path.rfind('/') {
        Some(i) => doc.pointer(&path[..i]).is_some_and(Value::is_object),
        None => false,
    }
}

/// Turn negative array indices into positions, as the Go library allows (`-1` is the last
/// item; for `add`, the position after it).
fn resolve_negative_indices(doc: &Value, path: &str, for_add: bool) -> String {
    let Some(rest) = path.strip_prefix('/') else {
        return path.to_string();
    };
    let tokens: Vec<&str> = rest.split('/').collect();
    let mut current = Some(doc);
    let mut out = Vec::with_capacity(tokens.len());
    for (i, token) in tokens.iter().enumerate() {
        let mut token = (*token).to_string();
        if let (Some(Value::Array(items)), Ok(n)) = (current, token.parse::<i64>()) {
            let extra = i64::from(for_add && i + 1 == tokens.len());
            let len = i64::try_from(items.len()).unwrap_or(i64::MAX) + extra;
            if n < 0 && n >= -len {
                token = (n + len).to_string();
            }
        }
        current = current.and_then(|c| match c {
            Value::Object(m) => m.get(&token.replace("~1", "/").replace("~0", "~")),
            Value::Array(items) => token.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        });
        out.push(token);
    }
    format!("/{}", out.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check_json_patch(target: Value, patch: Value, expected: Result<Value, PatchError>) {
        let mut doc = target.clone();
        let got = json_patch(&mut doc, &patch).map(|()| doc.clone());
        if got.is_err() {
            assert_eq!(doc, target, "a failed patch leaves the target alone");
        }
        assert_eq!(got, expected, "target {target} patch {patch}");
    }

    #[test]
    fn json_patches_apply_all_or_nothing() {
        let sa =
            json!({"metadata": {"name": "sa", "labels": {"a": "1"}}, "secrets": [{"name": "s1"}]});
        check_json_patch(
            sa.clone(),
            json!([
                {"op": "test", "path": "/metadata/name", "value": "sa"},
                {"op": "add", "path": "/metadata/labels/b", "value": "2"},
                {"op": "remove", "path": "/metadata/labels/a"},
                {"op": "add", "path": "/secrets/-", "value": {"name": "s2"}},
                {"op": "replace", "path": "/secrets/0/name", "value": "s0"},
                {"op": "copy", "from": "/metadata/name", "path": "/metadata/generateName"},
                {"op": "move", "from": "/metadata/labels", "path": "/metadata/annotations"}
            ]),
            Ok(
                json!({"metadata": {"name": "sa", "generateName": "sa", "annotations": {"b": "2"}},
                      "secrets": [{"name": "s0"}, {"name": "s2"}]}),
            ),
        );
        check_json_patch(sa.clone(), json!(null), Ok(sa.clone()));
        check_json_patch(sa.clone(), json!([]), Ok(sa.clone()));
        check_json_patch(
            sa.clone(),
            json!([
                {"op": "add", "path": "/metadata/labels/b", "value": "2"},
                {"op": "test", "path": "/metadata/name", "value": "other"}
            ]),
            Err(PatchError::JsonPatchFailed(
                "testing value /metadata/name failed: test failed".into(),
            )),
        );
        check_json_patch(
            sa.clone(),
            json!([{"op": "test", "path": "/metadata/uid", "value": null}]),
            Ok(sa.clone()),
        );
        // Quirks of the Go library kube-apiserver uses (checked with kubectl).
        check_json_patch(
            sa.clone(),
            json!([{"op": "replace", "path": "/metadata/uid", "value": "u"}]),
            Ok(
                json!({"metadata": {"name": "sa", "labels": {"a": "1"}, "uid": "u"}, "secrets": [{"name": "s1"}]}),
            ),
        );
        check_json_patch(
            json!({"secrets": [{"name": "s0"}, {"name": "s1"}, {"name": "s2"}]}),
            json!([
                {"op": "add", "path": "/secrets/-1", "value": {"name": "end"}},
                {"op": "remove", "path": "/secrets/-4"},
                {"op": "replace", "path": "/secrets/-2/name", "value": "q"}
            ]),
            Ok(json!({"secrets": [{"name": "s1"}, {"name": "q"}, {"name": "end"}]})),
        );
        check_json_patch(
            sa.clone(),
            json!([{"op": "add", "path": "/metadata/labels"}]),
            Ok(json!({"metadata": {"name": "sa", "labels": null}, "secrets": [{"name": "s1"}]})),
        );
        check_json_patch(
            sa.clone(),
            json!([{"op": "add", "path": "", "value": {}}]),
            Err(PatchError::JsonPatchFailed(
                "add operation does not apply: doc is missing path: \"\"".into(),
            )),
        );
        check_json_patch(
            sa.clone(),
            json!([{"op": "test", "path": "/missing/uid", "value": null}]),
            Err(PatchError::JsonPatchFailed(
                "test operation does not apply at /missing/uid: path is invalid".into(),
            )),
        );
        check_json_patch(
            sa.clone(),
            json!([{"op": "remove", "path": "/metadata/missing"}]),
            Err(PatchError::JsonPatchFailed(
                "remove operation does not apply at /metadata/missing: path is invalid".into(),
            )),
        );
        check_json_patch(
            sa.clone(),
            json!([{"op": "frobnicate", "path": "/a"}]),
            Err(PatchError::JsonPatchFailed(
                "Unexpected kind: frobnicate".into(),
            )),
        );
        check_json_patch(
            sa.clone(),
            json!({"op": "add"}),
            Err(PatchError::InvalidJsonPatch(
                "json: cannot unmarshal object into Go value of type jsonpatch.Patch".into(),
            )),
        );
        check_json_patch(
            sa.clone(),
            json!([1]),
            Err(PatchError::InvalidJsonPatch(
                "json: cannot unmarshal number into Go value of type jsonpatch.Operation".into(),
            )),
        );
        let many: Vec<Value> = (0..=MAX_JSON_PATCH_OPERATIONS)
            .map(|_| json!({"op": "test", "path": "/metadata/name", "value": "sa"}))
            .collect();
        check_json_patch(
            sa,
            Value::Array(many),
            Err(PatchError::TooManyOperations {
                max: 10000,
                got: 10001,
            }),
        );
    }

    /// Objects `{"n": {"n": ... {}}}` nested `depth` deep.
    fn nested(depth: usize) -> Value {
        (1..depth).fold(json!({}), |inner, _| json!({ "n": inner }))
    }

    fn patched(target: &Value, ops: Vec<Value>) -> Result<Value, PatchError> {
        let mut doc = target.clone();
        let result = json_patch(&mut doc, &Value::Array(ops)).map(|()| doc.clone());
        if result.is_err() {
            assert_eq!(&doc, target, "a failed patch leaves the target alone");
        }
        result
    }

    /// Issue 13: a 962-byte patch of `copy` operations, each copying an object into itself,
    /// doubled it until it was 262 MB.
    #[test]
    fn doubling_copies_stop_at_the_object_size_limit() {
        let target = json!({"spec": {"data": "x".repeat(1000)}});
        let ops = (0..30)
            .map(|i| json!({"op": "copy", "from": "/spec", "path": format!("/spec/c{i}")}))
            .collect();
        let result = patched(&target, ops);
        assert_eq!(
            result,
            Err(PatchError::ObjectTooLarge {
                max: limits::MAX_OBJECT_BYTES
            })
        );
    }

    /// Copies count even when they are removed again, as kube-apiserver's library counts them.
    #[test]
    fn copies_stop_at_kube_apiservers_accumulated_copy_limit() {
        let target = json!({"data": "x".repeat(100_000)});
        let ops = (0..40)
            .flat_map(|_| {
                [
                    json!({"op": "copy", "from": "/data", "path": "/copy"}),
                    json!({"op": "remove", "path": "/copy"}),
                ]
            })
            .collect();
        let result = patched(&target, ops);
        // Each copy is the string's 100,002 encoded bytes; the 32nd crosses 3 MiB.
        let err = PatchError::CopySizeLimitExceeded {
            limit: MAX_JSON_PATCH_COPY_BYTES,
            accumulated: 32 * 100_002,
        };
        assert_eq!(
            err.to_string(),
            "Unable to complete the copy, the accumulated size increase of copy is 3200064, exceeding the limit 3145728"
        );
        assert_eq!(result, Err(err));
    }

    /// Copying an object into its own member nests it one level deeper each time, with a
    /// patch that only grows linearly.
    #[test]
    fn copying_an_object_into_itself_stops_at_the_depth_limit() {
        let target = json!({"a": {}});
        let ops: Vec<Value> = (0..500)
            .map(|_| json!({"op": "copy", "from": "/a", "path": "/a/a"}))
            .collect();
        assert_eq!(
            patched(&target, ops[..98].to_vec()).map(|v| limits::nesting_depth(&v)),
            Ok(100),
            "up to the limit it applies"
        );
        assert_eq!(
            patched(&target, ops),
            Err(PatchError::ObjectTooDeep {
                max: limits::MAX_NESTING_DEPTH
            })
        );
    }

    #[test]
    fn moving_a_deep_value_below_another_stops_at_the_depth_limit() {
        let target = json!({"x": nested(60), "y": nested(60)});
        let deep_in_x = format!("/x{}/y", "/n".repeat(59));
        let shallow_in_x = format!("/x{}/y", "/n".repeat(30));
        let moved = patched(
            &target,
            vec![json!({"op": "move", "from": "/y", "path": shallow_in_x})],
        );
        assert_eq!(moved.map(|v| limits::nesting_depth(&v)), Ok(92));
        assert_eq!(
            patched(
                &target,
                vec![json!({"op": "move", "from": "/y", "path": deep_in_x})]
            ),
            Err(PatchError::ObjectTooDeep {
                max: limits::MAX_NESTING_DEPTH
            })
        );
    }

    #[test]
    fn adding_a_value_below_the_deepest_member_stops_at_the_depth_limit() {
        let target = json!({ "x": nested(95) });
        let innermost = format!("/x{}/v", "/n".repeat(94));
        let add = |value: Value| vec![json!({"op": "add", "path": innermost, "value": value})];
        assert!(patched(&target, add(json!([[[[1]]]]))).is_ok());
        assert_eq!(
            patched(&target, add(json!([[[[[1]]]]]))),
            Err(PatchError::ObjectTooDeep {
                max: limits::MAX_NESTING_DEPTH
            })
        );
    }

    #[test]
    fn adding_past_the_object_size_limit_fails_and_shrinking_a_large_object_passes() {
        let big = "x".repeat(400_000);
        let target = json!({});
        let adds = |n: usize| -> Vec<Value> {
            (0..n)
                .map(|i| json!({"op": "add", "path": format!("/k{i}"), "value": big}))
                .collect()
        };
        let three = patched(&target, adds(3));
        assert!(three.is_ok());
        assert_eq!(
            patched(&target, adds(4)),
            Err(PatchError::ObjectTooLarge {
                max: limits::MAX_OBJECT_BYTES
            })
        );
        // An object already over the limit (stored before it, or under a larger one) can
        // still be shrunk.
        let mut large = target.clone();
        let within = JsonPatchLimits {
            max_object_bytes: 2_000_000,
            ..JsonPatchLimits::default()
        };
        assert_eq!(
            json_patch_with_limits(&mut large, &Value::Array(adds(4)), &within),
            Ok(())
        );
        let shrunk = patched(&large, vec![json!({"op": "remove", "path": "/k0"})]);
        assert_eq!(
            shrunk.map(|v| limits::json_len(&v)),
            Ok(3 * 400_002 + 3 * 5 + 2 + 2)
        );
    }
}

//! JSON patch (`application/json-patch+json`, RFC 6902), with the quirks of the Go library
//! kube-apiserver uses.

use serde_json::Value;

use super::{MAX_JSON_PATCH_OPERATIONS, PatchError, go_json_kind};

/// Apply a JSON patch (`application/json-patch+json`, RFC 6902) to `target`, all or nothing.
///
/// kube-apiserver reports an undecodable body (not a list of objects) as a 400
/// ([`PatchError::InvalidJsonPatch`], Go's message such as `json: cannot unmarshal object into
/// Go value of type jsonpatch.Patch`), more than 10000 operations as a 413, and any operation
/// that fails — a `test` that does not match, a missing path, an unknown `op` — as a 422
/// `Invalid` whose message is the generic `the server rejected our request due to an error in
/// our request` ([`PatchError::JsonPatchFailed`]). A `null` body changes nothing. Like
/// kube-apiserver's library, a `test` of `null` passes on a missing member.
pub fn json_patch(target: &mut Value, patch: &Value) -> Result<(), PatchError> {
    let ops = match patch {
        Value::Null => return Ok(()),
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
    let mut doc = target.clone();
    for op in ops {
        apply_json_patch_operation(&mut doc, op)?;
    }
    *target = doc;
    Ok(())
}

fn apply_json_patch_operation(doc: &mut Value, op: &Value) -> Result<(), PatchError> {
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
        return Ok(());
    }
    if kind == "replace" && missing_member(doc, &path) {
        // The Go library replaces a missing member of an object by adding it.
        kind = "add".to_string();
        op.insert("op".into(), Value::String(kind.clone()));
    }
    let parsed: json_patch::PatchOperation = serde_json::from_value(Value::Object(op))
        .map_err(|e| PatchError::JsonPatchFailed(format!("invalid {kind} operation: {e}")))?;
    json_patch::patch(doc, std::slice::from_ref(&parsed)).map_err(|e| {
        PatchError::JsonPatchFailed(match e.kind {
            json_patch::PatchErrorKind::TestFailed => {
                format!("testing value {path} failed: test failed")
            }
            kind_error => format!("{kind} operation does not apply at {path}: {kind_error}"),
        })
    })
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
}

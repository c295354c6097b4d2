//! JSON merge patch (`application/merge-patch+json`, RFC 7386).

use serde_json::{Map, Value};

use super::PatchError;

/// Apply a JSON merge patch (`application/merge-patch+json`, RFC 7386) to `target`.
///
/// An object patch merges (`null` deletes a key, nested objects merge, anything else
/// replaces); nulls inside newly added values are dropped, as the Go library kube-apiserver
/// uses does. An array patch replaces the whole document. A `null` or scalar patch is
/// [`PatchError::InvalidMergePatch`], a 400 `Invalid JSON Patch` from kube-apiserver.
pub fn merge_patch(target: &mut Value, patch: &Value) -> Result<(), PatchError> {
    match patch {
        Value::Object(p) => {
            if let Value::Object(doc) = target {
                merge_docs(doc, p);
            } else {
                let mut replacement = patch.clone();
                prune_nulls(&mut replacement);
                *target = replacement;
            }
            Ok(())
        }
        Value::Array(_) => {
            let mut replacement = patch.clone();
            prune_nulls(&mut replacement);
            *target = replacement;
            Ok(())
        }
        _ => Err(PatchError::InvalidMergePatch),
    }
}

fn merge_docs(doc: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (k, v) in patch {
        if v.is_null() {
            doc.shift_remove(k);
            continue;
        }
        match doc.get_mut(k) {
            Some(cur) if !cur.is_null() => merge_value(cur, v),
            _ => {
                let mut added = v.clone();
                prune_nulls(&mut added);
                doc.insert(k.clone(), added);
            }
        }
    }
}

fn merge_value(cur: &mut Value, patch: &Value) {
    match (cur, patch) {
        (Value::Object(cur), Value::Object(p)) => merge_docs(cur, p),
        (cur @ Value::Object(_), p) => *cur = p.clone(),
        (cur, p) => {
            let mut replacement = p.clone();
            prune_nulls(&mut replacement);
            *cur = replacement;
        }
    }
}

/// Drop null members of objects, at any depth (null list items stay).
fn prune_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, v| !v.is_null());
            m.values_mut().for_each(prune_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(prune_nulls),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check_merge(target: Value, patch: Value, expected: Result<Value, PatchError>) {
        let mut doc = target.clone();
        let got = merge_patch(&mut doc, &patch).map(|()| doc);
        assert_eq!(got, expected, "target {target} patch {patch}");
    }

    #[test]
    fn merge_patches_follow_rfc_7386() {
        check_merge(
            json!({"a": "b", "c": {"d": "e", "f": "g"}}),
            json!({"a": "z", "c": {"f": null}}),
            Ok(json!({"a": "z", "c": {"d": "e"}})),
        );
        check_merge(
            json!({"metadata": {"labels": {"a": "1"}}}),
            json!({"metadata": {"labels": {"b": "2", "a": null}}}),
            Ok(json!({"metadata": {"labels": {"b": "2"}}})),
        );
        check_merge(
            json!({"a": ["b"]}),
            json!({"a": "c"}),
            Ok(json!({"a": "c"})),
        );
        check_merge(
            json!({"e": null}),
            json!({"a": 1}),
            Ok(json!({"e": null, "a": 1})),
        );
        check_merge(
            json!({"a": "b"}),
            json!({"a": {"x": 1, "y": null}}),
            Ok(json!({"a": {"x": 1}})),
        );
        check_merge(
            json!({"secrets": [{"name": "a"}]}),
            json!({"secrets": [{"name": "b", "namespace": null}]}),
            Ok(json!({"secrets": [{"name": "b"}]})),
        );
        check_merge(json!({"a": 1}), json!({}), Ok(json!({"a": 1})));
        check_merge(
            json!({"a": 1}),
            json!(null),
            Err(PatchError::InvalidMergePatch),
        );
        check_merge(
            json!({"a": 1}),
            json!("x"),
            Err(PatchError::InvalidMergePatch),
        );
        check_merge(json!({"a": 1}), json!([1, null]), Ok(json!([1, null])));
    }
}

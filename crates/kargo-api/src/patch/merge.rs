//! JSON merge patch (`application/merge-patch+json`, RFC 7386).

use std::collections::HashSet;

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
    // Removed in one pass at the end: an order-preserving map removes a key in linear time.
    // Patch keys are unique, so a removed key is not looked at again.
    let mut removed: HashSet<&str> = HashSet::new();
    for (k, v) in patch {
        if v.is_null() {
            removed.insert(k);
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
    if !removed.is_empty() {
        doc.retain(|k, _| !removed.contains(k.as_str()));
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
pub(super) fn prune_nulls(v: &mut Value) {
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

    /// Removing a key from an order-preserving map shifts the keys after it; 20,000 of them
    /// used to be removed one by one.
    #[test]
    fn twenty_thousand_deleted_keys_leave_the_others_in_order() {
        let keys: Vec<String> = (0..40_000).map(|i| format!("k{i}")).collect();
        let target: Map<String, Value> = keys.iter().map(|k| (k.clone(), json!(1))).collect();
        let patch: Map<String, Value> = keys
            .iter()
            .step_by(2)
            .map(|k| (k.clone(), Value::Null))
            .chain([("new".to_string(), json!(2))])
            .collect();
        let expected: Map<String, Value> = keys
            .iter()
            .skip(1)
            .step_by(2)
            .map(|k| (k.clone(), json!(1)))
            .chain([("new".to_string(), json!(2))])
            .collect();
        let mut doc = Value::Object(target);
        assert_eq!(merge_patch(&mut doc, &Value::Object(patch)), Ok(()));
        assert_eq!(doc.to_string(), Value::Object(expected).to_string());
    }

    /// The deepest objects the decoder accepts (127 levels) merge without exhausting the stack:
    /// the merge recurses once per level of the patch.
    #[test]
    fn merge_patches_of_the_deepest_decodable_objects_apply() {
        let deep = |leaf: &str| -> Value {
            let text = format!("{}\"{leaf}\"{}", "{\"a\":".repeat(127), "}".repeat(127));
            serde_json::from_str(&text).unwrap_or_default()
        };
        assert_eq!(crate::limits::nesting_depth(&deep("old")), 127);
        let mut doc = deep("old");
        assert_eq!(merge_patch(&mut doc, &deep("new")), Ok(()));
        assert_eq!(doc, deep("new"));
    }
}

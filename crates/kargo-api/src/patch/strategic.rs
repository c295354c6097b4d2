//! Strategic merge patch (`application/strategic-merge-patch+json`), as
//! `k8s.io/apimachinery/pkg/util/strategicpatch` applies it in kube-apiserver.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::{ListStrategy, PatchError, go_json_kind};
use crate::field::go_float;

mod order;

use order::{
    Canon, KeyIndex, MapEdit, canon, deduplicate_scalars, normalize_element_order, not_a_map,
    partition,
};

pub(super) const DIRECTIVE_MARKER: &str = "$patch";
pub(super) const RETAIN_KEYS_DIRECTIVE: &str = "$retainKeys";
pub(super) const DELETE_FROM_PRIMITIVE_LIST_PREFIX: &str = "$deleteFromPrimitiveList";
pub(super) const SET_ELEMENT_ORDER_PREFIX: &str = "$setElementOrder";

/// Apply a strategic merge patch (`application/strategic-merge-patch+json`) to `original` and
/// return the result.
///
/// `lists` maps the dotted path of a list field from the object root to its strategy; list
/// items add no segment, so `secrets`, `metadata.ownerReferences`, `metadata.finalizers`
/// ([`service_account_list_strategy`](super::service_account_list_strategy),
/// [`object_meta_list_strategy`](super::object_meta_list_strategy)). Maps always merge.
///
/// Semantics are kube-apiserver's: `null` deletes a key; a value new to the original is taken
/// from the patch without its nulls and without items carrying `$patch`; `$patch: replace`
/// takes the patch map or list as is, `$patch: delete` empties a map or removes list items with
/// that merge key; `$patch: merge` is rejected; `$retainKeys` drops unlisted keys;
/// `$deleteFromPrimitiveList/<f>` removes scalars from `<f>`; `$setElementOrder/<f>` orders the
/// merged list (patch order first, server-only items kept near their old neighbours). Directive
/// keys never reach the result: where Kubernetes would drop them by decoding into the typed
/// object, they are removed here. A `null` patch changes nothing.
///
/// The order of a merged list follows Kubernetes to the item, including an effect of Go slice
/// sharing: the merge deletes and appends in the array that `$setElementOrder` later reads as
/// the server's order. This is reproduced for objects whose lists have no spare capacity, as
/// those kube-apiserver reads from its watch cache (a deep copy). Checked against
/// `kubectl patch --local` (the same Go code) on 800 generated patches. Where Go's result
/// depends on random map order (a patch that both adds to and deletes from a list, without
/// `$setElementOrder`), the patch's own key order is used, which is Go's most frequent outcome.
pub fn strategic_merge_patch(
    original: &Value,
    patch: &Value,
    lists: &dyn Fn(&str) -> ListStrategy,
) -> Result<Value, PatchError> {
    let patch = match patch {
        Value::Null => return Ok(original.clone()),
        Value::Object(p) => p.clone(),
        other => {
            return Err(PatchError::InvalidStrategicPatch(format!(
                "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                go_json_kind(other)
            )));
        }
    };
    let Value::Object(original) = original else {
        return Err(PatchError::InvalidDocument);
    };
    let merger = Strategic { lists };
    let mut merged = merger.merge_map(original.clone(), patch, "")?;
    strip_directives(&mut merged);
    Ok(Value::Object(merged))
}

/// Go's dynamic type of a decoded JSON value (`reflect.TypeOf`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum GoType {
    Nil,
    Bool,
    Int,
    Float,
    String,
    Slice,
    Map,
}

impl GoType {
    pub(super) fn of(v: &Value) -> Self {
        match v {
            Value::Null => GoType::Nil,
            Value::Bool(_) => GoType::Bool,
            Value::Number(n) if n.is_i64() => GoType::Int,
            Value::Number(_) => GoType::Float,
            Value::String(_) => GoType::String,
            Value::Array(_) => GoType::Slice,
            Value::Object(_) => GoType::Map,
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            GoType::Nil => "%!s(<nil>)",
            GoType::Bool => "bool",
            GoType::Int => "int64",
            GoType::Float => "float64",
            GoType::String => "string",
            GoType::Slice => "[]interface {}",
            GoType::Map => "map[string]interface {}",
        }
    }
}

/// A JSON value as Go's `%v` prints the decoded value (`map[k:v]`, `[a b]`, `<nil>`).
pub(super) fn go_v(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match n.as_i64() {
            Some(i) => i.to_string(),
            None => go_float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(go_v).collect();
            format!("[{}]", items.join(" "))
        }
        Value::Object(m) => go_v_map(m),
    }
}

pub(super) fn go_v_map(m: &Map<String, Value>) -> String {
    let mut entries: Vec<(&String, &Value)> = m.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    let entries: Vec<String> = entries
        .into_iter()
        .map(|(k, v)| format!("{k}:{}", go_v(v)))
        .collect();
    format!("map[{}]", entries.join(" "))
}

/// A value printed with Go's `%s`.
pub(super) fn go_s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "%!s(<nil>)".to_string(),
        Value::Bool(b) => format!("%!s(bool={b})"),
        Value::Number(_) => format!("%!s({}={})", GoType::of(v).name(), go_v(v)),
        other => go_v(other),
    }
}

pub(super) fn failed(message: impl Into<String>) -> PatchError {
    PatchError::StrategicMergeFailed(message.into())
}

pub(super) fn err_no_merge_key(m: &Map<String, Value>, key: &str) -> PatchError {
    failed(format!(
        "map: {} does not contain declared merge key: {key}",
        go_v_map(m)
    ))
}

pub(super) fn err_bad_arg_type(expected: GoType, actual: &Value) -> PatchError {
    failed(format!(
        "expected a {}, but received a {}",
        expected.name(),
        GoType::of(actual).name()
    ))
}

pub(super) fn err_bad_patch_type(t: &Value, m: &Map<String, Value>) -> PatchError {
    failed(format!(
        "unknown patch type: {} in map: {}",
        go_s(t),
        go_v_map(m)
    ))
}

pub(super) fn child_path(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// The key a `$deleteFromPrimitiveList/<key>` or `$setElementOrder/<key>` directive names.
pub(super) fn extract_key(s: &str, prefix: &str) -> Result<String, PatchError> {
    match s.split_once('/') {
        Some((head, key)) if head == prefix => Ok(key.to_string()),
        _ if prefix == DELETE_FROM_PRIMITIVE_LIST_PREFIX => Err(PatchError::BadPrimitiveListFormat),
        _ => Err(PatchError::BadSetElementOrderFormat),
    }
}

/// Drop list items and map values that carry `$patch` (Go's `removeDirectives`).
pub(super) fn remove_directives(v: Value) -> Option<Value> {
    match v {
        Value::Object(m) => {
            if m.contains_key(DIRECTIVE_MARKER) {
                return None;
            }
            let kept = m
                .into_iter()
                .filter_map(|(k, v)| remove_directives(v).map(|v| (k, v)))
                .collect();
            Some(Value::Object(kept))
        }
        Value::Array(items) => Some(Value::Array(
            items.into_iter().filter_map(remove_directives).collect(),
        )),
        other => Some(other),
    }
}

/// Drop null members of maps at any depth (Go's `discardNullValuesFromPatch`).
pub(super) fn discard_null_values(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, v| !v.is_null());
            m.values_mut().for_each(discard_null_values);
        }
        Value::Array(items) => items.iter_mut().for_each(discard_null_values),
        _ => {}
    }
}

pub(super) fn is_directive_key(k: &str) -> bool {
    k == DIRECTIVE_MARKER
        || k == RETAIN_KEYS_DIRECTIVE
        || k.starts_with(SET_ELEMENT_ORDER_PREFIX)
        || k.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX)
}

/// Remove directive keys left in the result (typed decoding drops them in Kubernetes).
pub(super) fn strip_directives(m: &mut Map<String, Value>) {
    m.retain(|k, _| !is_directive_key(k));
    for v in m.values_mut() {
        strip_directives_value(v);
    }
}

pub(super) fn strip_directives_value(v: &mut Value) {
    match v {
        Value::Object(m) => strip_directives(m),
        Value::Array(items) => items.iter_mut().for_each(strip_directives_value),
        _ => {}
    }
}

pub(super) fn handle_directive_in_merge_map(
    directive: &Value,
    mut patch: Map<String, Value>,
) -> Result<Map<String, Value>, PatchError> {
    match directive.as_str() {
        Some("replace") => {
            patch.shift_remove(DIRECTIVE_MARKER);
            Ok(patch)
        }
        Some("delete") => Ok(Map::new()),
        _ => Err(err_bad_patch_type(directive, &patch)),
    }
}

fn apply_retain_keys(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
) -> Result<(), PatchError> {
    let Some(retain) = patch.shift_remove(RETAIN_KEYS_DIRECTIVE) else {
        return Ok(());
    };
    let Value::Array(retain) = retain else {
        return Err(PatchError::BadRetainKeysFormat);
    };
    let retained: HashSet<&str> = retain.iter().filter_map(Value::as_str).collect();
    for (k, v) in patch.iter() {
        if v.is_null()
            || k.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX)
            || k.starts_with(SET_ELEMENT_ORDER_PREFIX)
        {
            continue;
        }
        if !retained.contains(k.as_str()) {
            return Err(PatchError::BadRetainKeysFormat);
        }
    }
    original.retain(|k, _| retained.contains(k.as_str()));
    Ok(())
}

/// The Go type shared by the items of several lists (`sliceElementType`).
pub(super) fn slice_element_type(lists: &[&[&Value]]) -> Result<GoType, PatchError> {
    let mut prev: Option<GoType> = None;
    for list in lists {
        for v in *list {
            let t = GoType::of(v);
            match prev {
                None if t == GoType::Slice => return Err(PatchError::ListOfLists),
                None if t != GoType::Nil => prev = Some(t),
                Some(p) if p == t => {}
                _ => {
                    let all: Vec<Value> = lists
                        .iter()
                        .map(|l| Value::Array(l.iter().map(|v| (*v).clone()).collect()))
                        .collect();
                    return Err(failed(format!(
                        "list element types are not identical: {}",
                        go_v(&Value::Array(all))
                    )));
                }
            }
        }
    }
    prev.ok_or_else(|| failed("no elements in any of the given slices"))
}

/// A comparable view of a list item for ordering: its merge-key value for maps, itself for
/// scalars; `None` plays Go's `nil`.
pub(super) fn order_key<'a>(item: &'a Value, merge_key: &str, kind: GoType) -> Option<&'a Value> {
    let v = if kind == GoType::Map {
        item.as_object().and_then(|m| m.get(merge_key))
    } else {
        Some(item)
    };
    v.filter(|v| !v.is_null())
}

pub(super) fn validate_merge_key_in_lists(
    merge_key: &str,
    lists: &[&[&Value]],
) -> Result<(), PatchError> {
    for item in lists.iter().flat_map(|l| l.iter()) {
        let Value::Object(m) = item else {
            return Err(err_bad_arg_type(GoType::Map, item));
        };
        if !m.contains_key(merge_key) {
            return Err(err_no_merge_key(m, merge_key));
        }
    }
    Ok(())
}

pub(super) fn is_delete_item(v: &Value) -> Result<bool, PatchError> {
    match v {
        Value::Object(m) => Ok(m.get(DIRECTIVE_MARKER).and_then(Value::as_str) == Some("delete")),
        other => Err(err_bad_arg_type(GoType::Map, other)),
    }
}

/// Split items into those without and those with `$patch: delete`.
pub(super) fn extract_to_delete_items(
    list: Vec<Value>,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut keep = Vec::new();
    let mut delete = Vec::new();
    for v in list {
        if is_delete_item(&v)? {
            delete.push(v);
        } else {
            keep.push(v);
        }
    }
    Ok((keep, delete))
}

pub(super) fn merge_key_value_equal(
    left: &Value,
    right: &Value,
    merge_key: &str,
) -> Result<bool, PatchError> {
    if merge_key.is_empty() {
        return Ok(left == right);
    }
    let Value::Object(l) = left else {
        return Err(err_bad_arg_type(GoType::Map, left));
    };
    let Value::Object(r) = right else {
        return Err(err_bad_arg_type(GoType::Map, right));
    };
    let lv = l
        .get(merge_key)
        .ok_or_else(|| err_no_merge_key(l, merge_key))?;
    let rv = r
        .get(merge_key)
        .ok_or_else(|| err_no_merge_key(r, merge_key))?;
    Ok(lv == rv)
}

/// Check that the patch list's items appear in `$setElementOrder` in the same relative order.
pub(super) fn validate_patch_with_set_order_list(
    patch_list: &[Value],
    set_order: &[Value],
    merge_key: &str,
) -> Result<(), PatchError> {
    if set_order.is_empty() || patch_list.is_empty() {
        return Ok(());
    }
    let non_delete: Vec<Value> = if merge_key.is_empty() {
        patch_list.to_vec()
    } else {
        extract_to_delete_items(patch_list.to_vec())?.0
    };
    let (mut pi, mut si) = (0, 0);
    while pi < non_delete.len() && si < set_order.len() {
        if non_delete[pi]
            .as_object()
            .is_some_and(|m| m.contains_key(DIRECTIVE_MARKER))
        {
            pi += 1;
            continue;
        }
        if merge_key_value_equal(&non_delete[pi], &set_order[si], merge_key)? {
            pi += 1;
        }
        si += 1;
    }
    if pi < non_delete.len() && si >= set_order.len() {
        return Err(failed(format!(
            "The order in patch list:\n{}\n doesn't match {SET_ELEMENT_ORDER_PREFIX} list:\n{}\n",
            go_v(&Value::Array(patch_list.to_vec())),
            go_v(&Value::Array(set_order.to_vec()))
        )));
    }
    Ok(())
}

pub(super) fn as_list(v: Option<&Value>) -> Result<Option<Vec<Value>>, PatchError> {
    match v {
        None => Ok(None),
        Some(Value::Array(items)) => Ok(Some(items.clone())),
        Some(other) => Err(err_bad_arg_type(GoType::Slice, other)),
    }
}

/// The strategic merge of one patch, with the list strategies of its kind.
struct Strategic<'a> {
    lists: &'a dyn Fn(&str) -> ListStrategy,
}

impl Strategic<'_> {
    fn merge_map(
        &self,
        mut original: Map<String, Value>,
        mut patch: Map<String, Value>,
        path: &str,
    ) -> Result<Map<String, Value>, PatchError> {
        if let Some(directive) = patch.get(DIRECTIVE_MARKER).cloned() {
            return handle_directive_in_merge_map(&directive, patch);
        }
        apply_retain_keys(&mut original, &mut patch)?;
        let mut original = MapEdit::new(original);
        let consumed = self.merge_patch_into_original(&mut original, &mut patch, path)?;

        // Go visits a map's keys in a random rotation of insertion (document) order; the
        // document order used here is its most frequent outcome. It only matters when a patch
        // both adds to and deletes from a list without `$setElementOrder` (kubectl always sends
        // one, which consumes the additions above).
        for (k, patch_v) in patch {
            if consumed.contains(&k) {
                continue;
            }
            let (key, is_delete_list) = if k.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX) {
                (extract_key(&k, DELETE_FROM_PRIMITIVE_LIST_PREFIX)?, true)
            } else {
                (k, false)
            };
            if patch_v.is_null() {
                original.remove(&key);
                continue;
            }
            let same_type = original
                .get(&key)
                .map(|o| GoType::of(o) == GoType::of(&patch_v));
            if same_type != Some(true) {
                if !is_delete_list {
                    let mut taken = patch_v;
                    discard_null_values(&mut taken);
                    match remove_directives(taken) {
                        Some(v) => original.insert(key, v),
                        None => original.remove(&key),
                    }
                }
                continue;
            }
            let current = original.take(&key).unwrap_or(Value::Null);
            let child = child_path(path, &key);
            let merged = match (current, patch_v) {
                (Value::Object(o), Value::Object(p)) => {
                    Some(Value::Object(self.merge_map(o, p, &child)?))
                }
                (Value::Array(o), Value::Array(p)) => Some(Value::Array(
                    self.merge_slice_handler(o, p, &child, is_delete_list)?
                        .merged,
                )),
                (_, p) => remove_directives(p),
            };
            match merged {
                Some(v) => original.insert(key, v),
                None => original.remove(&key),
            }
        }
        Ok(original.finish())
    }

    /// Process every `$setElementOrder/<list>` with its list (`mergePatchIntoOriginal`); returns
    /// the patch keys it consumed, which the rest of the merge skips (Go deletes them from the
    /// patch map; an order-preserving map removes in linear time).
    fn merge_patch_into_original(
        &self,
        original: &mut MapEdit,
        patch: &mut Map<String, Value>,
        path: &str,
    ) -> Result<HashSet<String>, PatchError> {
        let keys: Vec<String> = patch
            .keys()
            .filter(|k| k.starts_with(SET_ELEMENT_ORDER_PREFIX))
            .cloned()
            .collect();
        let mut consumed = HashSet::new();
        for key in keys {
            if consumed.contains(&key) {
                continue;
            }
            let Some(set_order) = patch.get_mut(&key).map(std::mem::take) else {
                continue;
            };
            consumed.insert(key.clone());
            let Value::Array(set_order) = set_order else {
                return Err(err_bad_arg_type(GoType::Slice, &set_order));
            };
            let original_key = extract_key(&key, SET_ELEMENT_ORDER_PREFIX)?;
            let original_list = as_list(original.get(&original_key))?;
            let patch_value = if consumed.contains(&original_key) {
                None
            } else {
                patch.get(&original_key)
            };
            let patch_list = as_list(patch_value)?;
            let child = child_path(path, &original_key);
            let strategy = (self.lists)(&child);
            let merge_key = strategy.merge_key();
            validate_patch_with_set_order_list(
                patch_list.as_deref().unwrap_or(&[]),
                &set_order,
                merge_key,
            )?;
            let mut original_items = Arrangement::whole(original_list.clone().unwrap_or_default());
            let patch_items = patch_list.clone().unwrap_or_default();
            let merged = match (original_list, patch_list) {
                (Some(o), None) => o,
                (None, Some(p)) => match remove_directives(Value::Array(p)) {
                    Some(Value::Array(items)) => items,
                    _ => continue,
                },
                (Some(o), Some(p)) => {
                    let result = self.merge_slice_handler(o, p, &child, false)?;
                    original_items = result.original_after;
                    result.merged
                }
                (None, None) => continue,
            };
            let (present, server_only) = partition(merged, &set_order, merge_key)?;
            let server_order = original_items.items();
            let kind = slice_element_type(&[&server_order, &refs(&patch_items)])?;
            let ordered = normalize_element_order(
                present,
                server_only,
                &refs(&set_order),
                &server_order,
                merge_key,
                kind,
            )?;
            original.insert(original_key.clone(), Value::Array(ordered));
            consumed.insert(original_key);
        }
        Ok(consumed)
    }

    fn merge_slice_handler(
        &self,
        original: Vec<Value>,
        patch: Vec<Value>,
        path: &str,
        is_delete_list: bool,
    ) -> Result<SliceMerge, PatchError> {
        let strategy = (self.lists)(path);
        if strategy.merges() || is_delete_list {
            self.merge_slice(original, patch, path, strategy, is_delete_list)
        } else {
            Ok(SliceMerge {
                merged: patch,
                original_after: Arrangement::whole(original),
            })
        }
    }

    fn merge_slice(
        &self,
        original: Vec<Value>,
        patch: Vec<Value>,
        path: &str,
        strategy: ListStrategy,
        is_delete_list: bool,
    ) -> Result<SliceMerge, PatchError> {
        if original.is_empty() && patch.is_empty() {
            return Ok(SliceMerge {
                merged: Vec::new(),
                original_after: Arrangement::whole(original),
            });
        }
        let kind = slice_element_type(&[&refs(&original), &refs(&patch)])?;
        let merge_key = strategy.merge_key();
        // `after` plays the Go array behind `original` (capacity = length): the merge
        // mutates it, and Kubernetes later reads it again as the server's order.
        let (after, server_order, patch, merged) = if kind != GoType::Map {
            if is_delete_list {
                let deleted: HashSet<Canon<'_>> = patch.iter().map(canon).collect();
                let kept = original
                    .iter()
                    .filter(|v| !deleted.contains(&canon(v)))
                    .cloned()
                    .collect();
                return Ok(SliceMerge {
                    merged: kept,
                    original_after: Arrangement::whole(original),
                });
            }
            if patch.is_empty() {
                // `append(original)` reuses the array, which deduplication rewrites in place.
                let mut backing = original;
                let n = deduplicate_scalars_in_place(&mut backing);
                let merged = backing[..n].to_vec();
                let server_order = backing.clone();
                (Arrangement::whole(backing), server_order, patch, merged)
            } else {
                let both: Vec<&Value> = original.iter().chain(patch.iter()).collect();
                let (slots, len) = deduplicate_scalars(&both);
                let merged = slots[..len].iter().map(|&i| both[i].clone()).collect();
                let server_order = original.clone();
                (Arrangement::whole(original), server_order, patch, merged)
            }
        } else {
            if merge_key.is_empty() {
                let elem = if strategy == ListStrategy::MergeSet {
                    "string"
                } else {
                    "struct"
                };
                return Err(failed(format!(
                    "cannot merge lists without merge key for {elem}"
                )));
            }
            let special = merge_slice_with_special_elements(&original, patch, merge_key)?;
            if special.replace {
                let merged = special.plain.clone();
                let after = Arrangement::new(original, special.slots);
                (after, special.plain, Vec::new(), merged)
            } else {
                let current: Vec<Value> = special.slots[..special.len]
                    .iter()
                    .map(|&i| original[i].clone())
                    .collect();
                let (merged, appended) = self.merge_slice_without_special_elements(
                    current.clone(),
                    &special.plain,
                    merge_key,
                    path,
                )?;
                // Appends fill the room deletions left before Go reallocates.
                let mut slots = special.slots;
                let mut pool = original;
                for (slot, item) in slots[special.len..].iter_mut().zip(appended) {
                    *slot = pool.len();
                    pool.push(item);
                }
                (
                    Arrangement::new(pool, slots),
                    current,
                    special.plain,
                    merged,
                )
            }
        };
        let (present, server_only) = partition(merged, &patch, merge_key)?;
        let merged = normalize_element_order(
            present,
            server_only,
            &refs(&patch),
            &refs(&server_order),
            merge_key,
            kind,
        )?;
        Ok(SliceMerge {
            merged,
            original_after: after,
        })
    }

    /// Merge plain patch items into `original` by merge key; also returns the appended items.
    fn merge_slice_without_special_elements(
        &self,
        mut original: Vec<Value>,
        patch: &[Value],
        merge_key: &str,
        path: &str,
    ) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
        let mut index = KeyIndex::new(&original, merge_key);
        let mut appended = Vec::new();
        for v in patch {
            let Value::Object(item) = v else {
                return Err(err_bad_arg_type(GoType::Map, v));
            };
            let key_value = item
                .get(merge_key)
                .ok_or_else(|| err_no_merge_key(item, merge_key))?;
            let wanted = canon(key_value);
            match index.find(&wanted)? {
                Some(i) => {
                    let current = match std::mem::take(&mut original[i]) {
                        Value::Object(m) => m,
                        _ => Map::new(),
                    };
                    let merged = self.merge_map(current, item.clone(), path)?;
                    // The merge can change or drop the merge key (a `null` in the patch item).
                    let now = merged.get(merge_key).map(canon);
                    if now.as_ref() != Some(&wanted) {
                        index.remove(&wanted, i);
                        if let Some(now) = now {
                            index.insert(now.into_owned(), i);
                        }
                    }
                    original[i] = Value::Object(merged);
                }
                None => {
                    index.insert(wanted.into_owned(), original.len());
                    original.push(v.clone());
                    appended.push(v.clone());
                }
            }
        }
        Ok((original, appended))
    }
}

/// A merged list, and the list Kubernetes reads afterwards through the original slice (Go's
/// `original` shares its array with the merge, which deletes and appends in place).
struct SliceMerge {
    merged: Vec<Value>,
    original_after: Arrangement,
}

/// The outcome of the `$patch` items of a list of maps.
struct SpecialElements {
    /// Items without `$patch`.
    plain: Vec<Value>,
    /// Whether a `$patch: replace` item was present.
    replace: bool,
    /// The backing array afterwards, as indices into the original list: the remaining original
    /// items, then what Go's deletions left behind in the freed slots.
    slots: Vec<usize>,
    /// How many original items remain at the front of the backing array.
    len: usize,
}

/// Apply the `$patch` items of a list of maps: `delete` removes original items with the same
/// merge key (shifting the backing array left as Go's `append(s[:i], s[i+1:]...)` does),
/// `replace` makes the plain patch items the whole list.
///
/// Each deletion is found by key in a map and accounted for in constant time: the remaining
/// items keep their order, and the slot a deletion frees receives the array's last remaining
/// item (the item itself when it was the only one), as the element-by-element shift leaves it.
fn merge_slice_with_special_elements(
    original: &[Value],
    patch: Vec<Value>,
    merge_key: &str,
) -> Result<SpecialElements, PatchError> {
    let n = original.len();
    // Go's scan for a merge key fails at the first item that is not a map; deletions never
    // remove one, so its position only moves left as items before it go.
    let first_non_map = original.iter().position(|v| !v.is_object());
    let mut by_key: Option<HashMap<Canon<'static>, Vec<usize>>> = None;
    let mut removed = vec![false; n];
    let mut removed_before_non_map = 0;
    let mut len = n;
    let mut last = n.checked_sub(1);
    // What each deletion left in the slot it freed, in order (slots n-1, n-2, ...).
    let mut freed = Vec::new();
    let mut plain = Vec::new();
    let mut replace = false;
    for v in patch {
        let directive = v.as_object().and_then(|m| m.get(DIRECTIVE_MARKER)).cloned();
        let Some(directive) = directive else {
            plain.push(v);
            continue;
        };
        let item = v.as_object().cloned().unwrap_or_default();
        match directive.as_str() {
            Some("delete") => {
                let key_value = item
                    .get(merge_key)
                    .ok_or_else(|| err_no_merge_key(&item, merge_key))?;
                let by_key = by_key.get_or_insert_with(|| group_by_merge_key(original, merge_key));
                // Every match is removed; an earlier `delete` of the same value took them all.
                let matches = by_key
                    .remove(&canon(key_value).into_owned())
                    .unwrap_or_default();
                for i in matches {
                    if let Some(f) = first_non_map.filter(|&f| f < i) {
                        return Err(not_a_map(f - removed_before_non_map));
                    }
                    removed[i] = true;
                    len -= 1;
                    if first_non_map.is_some() {
                        removed_before_non_map += 1;
                    }
                    if last == Some(i) {
                        last = (0..i).rev().find(|&j| !removed[j]);
                    }
                    freed.push(last.unwrap_or(i));
                }
                // The scan that finds no more matches reads the whole list.
                if let Some(f) = first_non_map {
                    return Err(not_a_map(f - removed_before_non_map));
                }
            }
            Some("replace") => replace = true,
            Some("merge") => {
                return Err(failed("merging lists cannot yet be specified in the patch"));
            }
            _ => return Err(err_bad_patch_type(&directive, &item)),
        }
    }
    let slots = (0..n)
        .filter(|&i| !removed[i])
        .chain(freed.into_iter().rev())
        .collect();
    Ok(SpecialElements {
        plain,
        replace,
        slots,
        len,
    })
}

/// The original items of a list of maps by merge-key value, in order.
fn group_by_merge_key(list: &[Value], merge_key: &str) -> HashMap<Canon<'static>, Vec<usize>> {
    let mut groups: HashMap<Canon<'static>, Vec<usize>> = HashMap::new();
    for (i, item) in list.iter().enumerate() {
        if let Some(v) = item.as_object().and_then(|m| m.get(merge_key)) {
            groups.entry(canon(v).into_owned()).or_default().push(i);
        }
    }
    groups
}

/// Go's in-place scalar deduplication ([`deduplicate_scalars`]) applied to `s`; returns the new
/// length (items past it are left as Go leaves them in the array).
fn deduplicate_scalars_in_place(s: &mut [Value]) -> usize {
    let (slots, len) = deduplicate_scalars(&refs(s));
    let rearranged: Vec<Value> = slots.iter().map(|&i| s[i].clone()).collect();
    for (slot, v) in s.iter_mut().zip(rearranged) {
        *slot = v;
    }
    len
}

fn refs(list: &[Value]) -> Vec<&Value> {
    list.iter().collect()
}

/// A list as Go's backing array holds it after a merge: slots that index into a pool of items,
/// so an item Go's shifting leaves in several slots is not copied.
struct Arrangement {
    pool: Vec<Value>,
    slots: Vec<usize>,
}

impl Arrangement {
    fn new(pool: Vec<Value>, slots: Vec<usize>) -> Self {
        Arrangement { pool, slots }
    }

    /// The list as it is.
    fn whole(list: Vec<Value>) -> Self {
        let slots = (0..list.len()).collect();
        Arrangement { pool: list, slots }
    }

    fn items(&self) -> Vec<&Value> {
        self.slots.iter().map(|&i| &self.pool[i]).collect()
    }
}

#[cfg(test)]
mod tests;

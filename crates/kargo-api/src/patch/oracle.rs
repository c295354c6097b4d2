//! The patch algorithms as they were before they were made linear, kept verbatim as the oracle
//! the property tests compare the new code with (the quadratic and cubic list scans included).

use serde_json::{Map, Value};

use super::json::{operation_failed, operations, prepare};
use super::merge::prune_nulls;
use super::strategic::*;
use super::{ListStrategy, PatchError, go_json_kind};

// ---- JSON merge patch ----

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

// ---- JSON patch ----

/// All operations on a copy, each with the crate's all-or-nothing `patch` (reading the body
/// and the operations is shared: it did not change).
pub fn json_patch(target: &mut Value, patch: &Value) -> Result<(), PatchError> {
    let Some(ops) = operations(patch)? else {
        return Ok(());
    };
    let mut doc = target.clone();
    for op in ops {
        apply_json_patch_operation(&mut doc, op)?;
    }
    *target = doc;
    Ok(())
}

fn apply_json_patch_operation(doc: &mut Value, op: &Value) -> Result<(), PatchError> {
    let Some(prepared) = prepare(doc, op)? else {
        return Ok(());
    };
    json_patch::patch(doc, std::slice::from_ref(&prepared.op))
        .map_err(|e| operation_failed(&prepared.kind, &prepared.path, e.kind))
}

// ---- Strategic merge patch ----

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
    let retained = |k: &str| retain.iter().any(|r| r.as_str() == Some(k));
    for (k, v) in patch.iter() {
        if v.is_null()
            || k.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX)
            || k.starts_with(SET_ELEMENT_ORDER_PREFIX)
        {
            continue;
        }
        if !retained(k) {
            return Err(PatchError::BadRetainKeysFormat);
        }
    }
    original.retain(|k, _| retained(k));
    Ok(())
}

/// The Go type shared by the items of several lists (`sliceElementType`).
fn slice_element_type(lists: &[&[Value]]) -> Result<GoType, PatchError> {
    let mut prev: Option<GoType> = None;
    for list in lists {
        for v in *list {
            let t = GoType::of(v);
            match prev {
                None if t == GoType::Slice => return Err(PatchError::ListOfLists),
                None if t != GoType::Nil => prev = Some(t),
                Some(p) if p == t => {}
                _ => {
                    let all: Vec<Value> = lists.iter().map(|l| Value::Array(l.to_vec())).collect();
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

fn index_of(list: &[Value], item: &Value, merge_key: &str, kind: GoType) -> Option<usize> {
    let wanted = order_key(item, merge_key, kind);
    list.iter()
        .position(|v| order_key(v, merge_key, kind) == wanted)
}

fn find_map_by_key(list: &[Value], key: &str, value: &Value) -> Result<Option<usize>, PatchError> {
    for (i, v) in list.iter().enumerate() {
        let Value::Object(m) = v else {
            return Err(failed(format!("value for key {i} is not a map")));
        };
        if m.get(key) == Some(value) {
            return Ok(Some(i));
        }
    }
    Ok(None)
}

fn validate_merge_key_in_lists(merge_key: &str, lists: &[&[Value]]) -> Result<(), PatchError> {
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

/// Sort `to_sort` by the positions of its items in `order` (Go's stable insertion sort with
/// `normalizeSliceOrder`'s comparison); delete directives go last.
pub(super) fn normalize_slice_order(
    to_sort: Vec<Value>,
    order: &[Value],
    merge_key: &str,
    kind: GoType,
) -> Result<Vec<Value>, PatchError> {
    let (mut to_sort, to_delete) = if kind == GoType::Map {
        validate_merge_key_in_lists(merge_key, &[&to_sort, order])?;
        extract_to_delete_items(to_sort)?
    } else {
        (to_sort, Vec::new())
    };
    let less = |a: &Value, b: &Value| match index_of(order, a, merge_key, kind) {
        Some(ia) => match index_of(order, b, merge_key, kind) {
            Some(ib) => ia < ib,
            None => true,
        },
        None => true,
    };
    for i in 1..to_sort.len() {
        let mut j = i;
        while j > 0 && less(&to_sort[j], &to_sort[j - 1]) {
            to_sort.swap(j, j - 1);
            j -= 1;
        }
    }
    to_sort.extend(to_delete);
    Ok(to_sort)
}

/// Interleave server-only items (`left`) with patch items (`right`), keeping both relative
/// orders; a server-only item goes first when the server had it before the patch item.
fn merge_sorted_slice(
    left: Vec<Value>,
    right: Vec<Value>,
    server_order: &[Value],
    merge_key: &str,
    kind: GoType,
) -> Vec<Value> {
    let mut out = Vec::with_capacity(left.len() + right.len());
    let mut left = left.into_iter().peekable();
    let mut right = right.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => return out,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => {
                match (
                    index_of(server_order, l, merge_key, kind),
                    index_of(server_order, r, merge_key, kind),
                ) {
                    (Some(li), Some(ri)) => li < ri,
                    _ => false,
                }
            }
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
}

fn normalize_element_order(
    patch_items: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    merge_key: &str,
    kind: GoType,
) -> Result<Vec<Value>, PatchError> {
    let patch_items = normalize_slice_order(patch_items, patch_order, merge_key, kind)?;
    let server_only = normalize_slice_order(server_only, server_order, merge_key, kind)?;
    Ok(merge_sorted_slice(
        server_only,
        patch_items,
        server_order,
        merge_key,
        kind,
    ))
}

/// Split `merged` into items present in `by` and the rest (server-only).
fn partition(
    merged: Vec<Value>,
    by: &[Value],
    merge_key: &str,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut present = Vec::new();
    let mut server_only = Vec::new();
    for v in merged {
        let found = if merge_key.is_empty() {
            by.contains(&v)
        } else {
            let Value::Object(m) = &v else {
                return Err(err_bad_arg_type(GoType::Map, &v));
            };
            let Some(key_value) = m.get(merge_key) else {
                return Err(err_no_merge_key(m, merge_key));
            };
            find_map_by_key(by, merge_key, key_value)?.is_some()
        };
        if found {
            present.push(v);
        } else {
            server_only.push(v);
        }
    }
    Ok((present, server_only))
}

/// Go's in-place scalar deduplication: a duplicate is overwritten by the current last item and
/// the logical length shrinks; returns the new length (items past it are left as Go leaves
/// them in the array).
pub(super) fn deduplicate_scalars_in_place(s: &mut [Value]) -> usize {
    let mut length = s.len();
    let mut i = 0;
    while i + 1 < length {
        let mut j = i + 1;
        while j < length {
            if s[i] == s[j] {
                s[j] = s[length - 1].clone();
                length -= 1;
            } else {
                j += 1;
            }
        }
        i += 1;
    }
    length
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
        self.merge_patch_into_original(&mut original, &mut patch, path)?;

        // Go visits a map's keys in a random rotation of insertion (document) order; the
        // document order used here is its most frequent outcome. It only matters when a patch
        // both adds to and deletes from a list without `$setElementOrder` (kubectl always sends
        // one, which consumes the additions above).
        for (k, patch_v) in patch {
            let (key, is_delete_list) = if k.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX) {
                (extract_key(&k, DELETE_FROM_PRIMITIVE_LIST_PREFIX)?, true)
            } else {
                (k, false)
            };
            if patch_v.is_null() {
                original.shift_remove(&key);
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
                        Some(v) => {
                            original.insert(key, v);
                        }
                        None => {
                            original.shift_remove(&key);
                        }
                    }
                }
                continue;
            }
            let current = original
                .get_mut(&key)
                .map(std::mem::take)
                .unwrap_or(Value::Null);
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
                Some(v) => {
                    original.insert(key, v);
                }
                None => {
                    original.shift_remove(&key);
                }
            }
        }
        Ok(original)
    }

    /// Process every `$setElementOrder/<list>` with its list (`mergePatchIntoOriginal`).
    fn merge_patch_into_original(
        &self,
        original: &mut Map<String, Value>,
        patch: &mut Map<String, Value>,
        path: &str,
    ) -> Result<(), PatchError> {
        let keys: Vec<String> = patch
            .keys()
            .filter(|k| k.starts_with(SET_ELEMENT_ORDER_PREFIX))
            .cloned()
            .collect();
        for key in keys {
            let Some(set_order) = patch.shift_remove(&key) else {
                continue;
            };
            let Value::Array(set_order) = set_order else {
                return Err(err_bad_arg_type(GoType::Slice, &set_order));
            };
            let original_key = extract_key(&key, SET_ELEMENT_ORDER_PREFIX)?;
            let original_list = as_list(original.get(&original_key))?;
            let patch_list = as_list(patch.get(&original_key))?;
            let child = child_path(path, &original_key);
            let strategy = (self.lists)(&child);
            let merge_key = strategy.merge_key();
            validate_patch_with_set_order_list(
                patch_list.as_deref().unwrap_or(&[]),
                &set_order,
                merge_key,
            )?;
            let mut original_items = original_list.clone().unwrap_or_default();
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
            let kind = slice_element_type(&[&original_items, &patch_items])?;
            let ordered = normalize_element_order(
                present,
                server_only,
                &set_order,
                &original_items,
                merge_key,
                kind,
            )?;
            original.insert(original_key.clone(), Value::Array(ordered));
            patch.shift_remove(&original_key);
        }
        Ok(())
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
                original_after: original,
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
                original_after: original,
            });
        }
        let kind = slice_element_type(&[&original, &patch])?;
        let merge_key = strategy.merge_key();
        // `backing` plays the Go array behind `original` (capacity = length): the merge
        // mutates it, and Kubernetes later reads it again as the server's order.
        let mut backing = original;
        let (server_order, patch, merged) = if kind != GoType::Map {
            if is_delete_list {
                let kept = backing
                    .iter()
                    .filter(|v| !patch.contains(v))
                    .cloned()
                    .collect();
                return Ok(SliceMerge {
                    merged: kept,
                    original_after: backing,
                });
            }
            if patch.is_empty() {
                // `append(original)` reuses the array, which deduplication rewrites in place.
                let n = deduplicate_scalars_in_place(&mut backing);
                let merged = backing[..n].to_vec();
                (backing.clone(), patch, merged)
            } else {
                let mut both: Vec<Value> = backing.iter().chain(patch.iter()).cloned().collect();
                let n = deduplicate_scalars_in_place(&mut both);
                both.truncate(n);
                (backing.clone(), patch, both)
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
            let special = merge_slice_with_special_elements(&mut backing, patch, merge_key)?;
            if special.replace {
                let merged = special.plain.clone();
                (special.plain, Vec::new(), merged)
            } else {
                let current = backing[..special.len].to_vec();
                let (merged, appended) = self.merge_slice_without_special_elements(
                    current.clone(),
                    &special.plain,
                    merge_key,
                    path,
                )?;
                // Appends fill the room deletions left before Go reallocates.
                for (slot, item) in backing[special.len..].iter_mut().zip(appended) {
                    *slot = item;
                }
                (current, special.plain, merged)
            }
        };
        let (present, server_only) = partition(merged, &patch, merge_key)?;
        let merged =
            normalize_element_order(present, server_only, &patch, &server_order, merge_key, kind)?;
        Ok(SliceMerge {
            merged,
            original_after: backing,
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
        let mut appended = Vec::new();
        for v in patch {
            let Value::Object(item) = v else {
                return Err(err_bad_arg_type(GoType::Map, v));
            };
            let key_value = item
                .get(merge_key)
                .ok_or_else(|| err_no_merge_key(item, merge_key))?;
            match find_map_by_key(&original, merge_key, key_value)? {
                Some(i) => {
                    let current = match std::mem::take(&mut original[i]) {
                        Value::Object(m) => m,
                        _ => Map::new(),
                    };
                    original[i] = Value::Object(self.merge_map(current, item.clone(), path)?);
                }
                None => {
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
    original_after: Vec<Value>,
}

/// The outcome of the `$patch` items of a list of maps.
struct SpecialElements {
    /// Items without `$patch`.
    plain: Vec<Value>,
    /// Whether a `$patch: replace` item was present.
    replace: bool,
    /// How many original items remain at the front of the backing array.
    len: usize,
}

/// Apply the `$patch` items of a list of maps: `delete` removes original items with the same
/// merge key (shifting the backing array left as Go's `append(s[:i], s[i+1:]...)` does),
/// `replace` makes the plain patch items the whole list.
fn merge_slice_with_special_elements(
    backing: &mut [Value],
    patch: Vec<Value>,
    merge_key: &str,
) -> Result<SpecialElements, PatchError> {
    let mut len = backing.len();
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
                while let Some(i) = find_map_by_key(&backing[..len], merge_key, key_value)? {
                    // Shift left; the old last element stays behind at `len - 1`.
                    for k in i..len - 1 {
                        backing.swap(k, k + 1);
                    }
                    if len >= 2 {
                        backing[len - 1] = backing[len - 2].clone();
                    }
                    len -= 1;
                }
            }
            Some("replace") => replace = true,
            Some("merge") => {
                return Err(failed("merging lists cannot yet be specified in the patch"));
            }
            _ => return Err(err_bad_patch_type(&directive, &item)),
        }
    }
    Ok(SpecialElements {
        plain,
        replace,
        len,
    })
}

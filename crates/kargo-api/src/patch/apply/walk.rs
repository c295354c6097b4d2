//! Walks over objects guided by a [`Schema`]: the field set of an object (`ToFieldSet`), the
//! comparison of two objects (`Compare`), the merge of an applied configuration into the live
//! object (`Merge`) and the removal of paths (`RemoveItems`), after structured-merge-diff.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::fieldset::{FieldSet, Path, PathElement};
use super::{ApplyError, ObjectType, Schema};
use crate::patch::ListStrategy;

/// The schema path of a field of the node at `spath` (`metadata.labels`).
fn field_spath(spath: &str, name: &str) -> String {
    if spath.is_empty() {
        name.to_owned()
    } else {
        format!("{spath}.{name}")
    }
}

/// The schema path of the items of the list at `spath` (`secrets[]`).
fn item_spath(spath: &str) -> String {
    format!("{spath}[]")
}

/// The path element of each item of a granular list, or `None` for an atomic list.
fn item_elements(
    items: &[Value],
    path: &[PathElement],
    spath: &str,
    schema: &Schema<'_>,
) -> Result<Option<Vec<PathElement>>, ApplyError> {
    let elements = match (schema.lists)(spath) {
        ListStrategy::Atomic => return Ok(None),
        ListStrategy::MergeSet => items
            .iter()
            .map(|item| {
                if item.is_object() || item.is_array() {
                    Err(ApplyError::BadSetItem {
                        path: super::fieldset::path_string(path),
                    })
                } else {
                    Ok(PathElement::value(item))
                }
            })
            .collect::<Result<Vec<_>, _>>()?,
        ListStrategy::MergeByKey(key) => items
            .iter()
            .map(|item| match item.get(key) {
                Some(v) if !v.is_null() => Ok(PathElement::key(&[(key, v)])),
                _ => Err(ApplyError::MissingKey {
                    path: super::fieldset::path_string(path),
                    key,
                }),
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    let mut seen = HashSet::new();
    for pe in &elements {
        if !seen.insert(pe) {
            let mut at = path.to_vec();
            at.push(pe.clone());
            return Err(ApplyError::Duplicate {
                path: super::fieldset::path_string(&at),
            });
        }
    }
    Ok(Some(elements))
}

/// The field set of an object (structured-merge-diff's `ToFieldSet`): every scalar, atomic
/// value and list item; map entries (of maps, not of structs) and empty or null fields as
/// members themselves.
pub fn field_set(value: &Value, schema: &Schema<'_>) -> Result<FieldSet, ApplyError> {
    let mut out = FieldSet::new();
    collect(value, &mut Vec::new(), "", schema, &mut out)?;
    Ok(out)
}

fn collect(
    value: &Value,
    path: &mut Path,
    spath: &str,
    schema: &Schema<'_>,
    out: &mut FieldSet,
) -> Result<(), ApplyError> {
    match value {
        Value::Object(map) => {
            let kind = (schema.objects)(spath);
            if kind == ObjectType::Atomic && !path.is_empty() {
                out.insert(path.clone());
                return Ok(());
            }
            for (key, child) in map {
                path.push(PathElement::Field(key.clone()));
                collect(child, path, &field_spath(spath, key), schema, out)?;
                let empty = child.is_null() || child.as_object().is_some_and(Map::is_empty);
                if empty || kind == ObjectType::Map {
                    out.insert(path.clone());
                }
                path.pop();
            }
        }
        Value::Array(items) => match item_elements(items, path, spath, schema)? {
            None => out.insert(path.clone()),
            Some(elements) => {
                let child = item_spath(spath);
                for (item, pe) in items.iter().zip(elements) {
                    path.push(pe);
                    collect(item, path, &child, schema, out)?;
                    out.insert(path.clone());
                    path.pop();
                }
            }
        },
        _ => out.insert(path.clone()),
    }
    Ok(())
}

/// What changed from one object to another (structured-merge-diff's `Comparison`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Comparison {
    /// Paths only in the new object (every node of an added subtree).
    pub added: FieldSet,
    /// Paths only in the old object (every node of a removed subtree).
    pub removed: FieldSet,
    /// Leaves (scalars, atomic values) in both whose values differ.
    pub modified: FieldSet,
}

/// Compares two objects.
pub fn compare(old: &Value, new: &Value, schema: &Schema<'_>) -> Result<Comparison, ApplyError> {
    let mut c = Comparison::default();
    compare_at(Some(old), Some(new), &mut Vec::new(), "", schema, &mut c)?;
    Ok(c)
}

/// The children of a granular node, by path element, and the schema path of list items (empty
/// for the fields of an object, whose schema paths follow their names).
type Children<'v> = (Vec<(PathElement, &'v Value)>, String);

/// The children of a granular node; `None` for a leaf.
fn children<'v>(
    value: &'v Value,
    path: &[PathElement],
    spath: &str,
    schema: &Schema<'_>,
) -> Result<Option<Children<'v>>, ApplyError> {
    match value {
        Value::Object(map) => {
            if (schema.objects)(spath) == ObjectType::Atomic && !path.is_empty() {
                return Ok(None);
            }
            Ok(Some((
                map.iter()
                    .map(|(k, v)| (PathElement::Field(k.clone()), v))
                    .collect(),
                String::new(),
            )))
        }
        Value::Array(items) => Ok(item_elements(items, path, spath, schema)?
            .map(|elements| (elements.into_iter().zip(items).collect(), item_spath(spath)))),
        _ => Ok(None),
    }
}

fn child_spath(spath: &str, pe: &PathElement, items: &str) -> String {
    match pe {
        PathElement::Field(name) if items.is_empty() => field_spath(spath, name),
        _ => items.to_owned(),
    }
}

fn compare_at(
    old: Option<&Value>,
    new: Option<&Value>,
    path: &mut Path,
    spath: &str,
    schema: &Schema<'_>,
    c: &mut Comparison,
) -> Result<(), ApplyError> {
    let record = |set: &mut FieldSet, path: &Path| {
        if !path.is_empty() {
            set.insert(path.clone());
        }
    };
    match (old, new) {
        (Some(o), Some(n)) => {
            let same_shape = o.is_object() == n.is_object() && o.is_array() == n.is_array();
            let (oc, nc) = if same_shape {
                (
                    children(o, path, spath, schema)?,
                    children(n, path, spath, schema)?,
                )
            } else {
                (None, None)
            };
            match (oc, nc) {
                (Some((oc, items)), Some((nc, _))) => {
                    let old_map: HashMap<_, _> = oc.iter().cloned().collect();
                    let new_map: HashMap<_, _> = nc.iter().cloned().collect();
                    let mut keys: Vec<&PathElement> = oc.iter().map(|(k, _)| k).collect();
                    keys.extend(
                        nc.iter()
                            .map(|(k, _)| k)
                            .filter(|k| !old_map.contains_key(k)),
                    );
                    for pe in keys {
                        let cs = child_spath(spath, pe, &items);
                        path.push(pe.clone());
                        compare_at(
                            old_map.get(pe).copied(),
                            new_map.get(pe).copied(),
                            path,
                            &cs,
                            schema,
                            c,
                        )?;
                        path.pop();
                    }
                }
                _ => {
                    if o != n {
                        record(&mut c.modified, path);
                    }
                }
            }
        }
        (None, Some(n)) => {
            record(&mut c.added, path);
            every_node(n, path, spath, schema, &mut c.added)?;
        }
        (Some(o), None) => {
            record(&mut c.removed, path);
            every_node(o, path, spath, schema, &mut c.removed)?;
        }
        (None, None) => {}
    }
    Ok(())
}

/// Every node under `value` (not `value` itself).
fn every_node(
    value: &Value,
    path: &mut Path,
    spath: &str,
    schema: &Schema<'_>,
    out: &mut FieldSet,
) -> Result<(), ApplyError> {
    if let Some((kids, items)) = children(value, path, spath, schema)? {
        for (pe, child) in kids {
            let cs = child_spath(spath, &pe, &items);
            path.push(pe);
            out.insert(path.clone());
            every_node(child, path, &cs, schema, out)?;
            path.pop();
        }
    }
    Ok(())
}

/// Merges an applied configuration into the live object (structured-merge-diff's `Merge`):
/// objects merge field by field, granular lists item by item (the configuration's order wins
/// for the items it names), anything else is replaced. A `null` in the configuration removes
/// the field.
pub fn merge(live: &Value, config: &Value, schema: &Schema<'_>) -> Result<Value, ApplyError> {
    merge_at(live, config, &mut Vec::new(), "", schema)
}

fn merge_at(
    live: &Value,
    config: &Value,
    path: &mut Path,
    spath: &str,
    schema: &Schema<'_>,
) -> Result<Value, ApplyError> {
    match (live, config) {
        (Value::Object(l), Value::Object(c))
            if path.is_empty() || (schema.objects)(spath) != ObjectType::Atomic =>
        {
            let mut out = l.clone();
            for (key, cv) in c {
                if cv.is_null() {
                    out.remove(key);
                    continue;
                }
                let merged = match l.get(key) {
                    Some(lv) => {
                        path.push(PathElement::Field(key.clone()));
                        let m = merge_at(lv, cv, path, &field_spath(spath, key), schema)?;
                        path.pop();
                        m
                    }
                    None => cv.clone(),
                };
                out.insert(key.clone(), merged);
            }
            Ok(Value::Object(out))
        }
        (Value::Array(l), Value::Array(c)) => {
            let (Some(lk), Some(ck)) = (
                item_elements(l, path, spath, schema)?,
                item_elements(c, path, spath, schema)?,
            ) else {
                return Ok(config.clone());
            };
            merge_lists(l, &lk, c, &ck, path, &item_spath(spath), schema).map(Value::Array)
        }
        _ => Ok(config.clone()),
    }
}

/// structured-merge-diff's list merge: live items the configuration does not name keep their
/// place until the first one it names; from there the configuration's items come in its order,
/// then the remaining live items.
fn merge_lists(
    live: &[Value],
    live_keys: &[PathElement],
    config: &[Value],
    config_keys: &[PathElement],
    path: &mut Path,
    spath: &str,
    schema: &Schema<'_>,
) -> Result<Vec<Value>, ApplyError> {
    let live_by: HashMap<&PathElement, &Value> = live_keys.iter().zip(live).collect();
    let config_by: HashMap<&PathElement, &Value> = config_keys.iter().zip(config).collect();
    let mut out = Vec::with_capacity(live.len() + config.len());
    let mut seen = HashSet::new();
    let (mut li, mut ci) = (0, 0);
    while li < live_keys.len() || ci < config_keys.len() {
        let pe = if li < live_keys.len() && ci < config_keys.len() {
            if live_keys[li] == config_keys[ci] {
                li += 1;
                ci += 1;
                &config_keys[ci - 1]
            } else if config_by.contains_key(&live_keys[li]) {
                ci += 1;
                &config_keys[ci - 1]
            } else {
                li += 1;
                &live_keys[li - 1]
            }
        } else if li < live_keys.len() {
            li += 1;
            &live_keys[li - 1]
        } else {
            ci += 1;
            &config_keys[ci - 1]
        };
        if !seen.insert(pe) {
            continue;
        }
        let item = match (live_by.get(pe), config_by.get(pe)) {
            (Some(l), Some(c)) => {
                path.push(pe.clone());
                let m = merge_at(l, c, path, spath, schema)?;
                path.pop();
                m
            }
            (Some(v), None) | (None, Some(v)) => (*v).clone(),
            (None, None) => continue,
        };
        out.push(item);
    }
    Ok(out)
}

/// Removes the nodes at `paths` from `value` (a path that is not there is skipped).
pub fn remove_paths(value: &mut Value, paths: &FieldSet, schema: &Schema<'_>) {
    for path in paths.iter() {
        remove_path(value, path, "", schema, false);
    }
}

/// Removes the nodes at `paths` that are empty objects or lists, deepest first.
pub fn remove_empty(value: &mut Value, paths: &FieldSet, schema: &Schema<'_>) {
    let mut paths: Vec<&Path> = paths.iter().collect();
    paths.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for path in paths {
        remove_path(value, path, "", schema, true);
    }
}

fn is_empty_node(v: &Value) -> bool {
    v.as_object().is_some_and(Map::is_empty) || v.as_array().is_some_and(Vec::is_empty)
}

fn remove_path(
    value: &mut Value,
    path: &[PathElement],
    spath: &str,
    schema: &Schema<'_>,
    only_empty: bool,
) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    match (value, first) {
        (Value::Object(map), PathElement::Field(name)) => {
            if rest.is_empty() {
                if !only_empty || map.get(name).is_some_and(is_empty_node) {
                    map.remove(name);
                }
            } else if let Some(child) = map.get_mut(name) {
                remove_path(child, rest, &field_spath(spath, name), schema, only_empty);
            }
        }
        (Value::Array(items), pe) => {
            let Ok(Some(elements)) = item_elements(items, &[], spath, schema) else {
                return;
            };
            let Some(at) = elements.iter().position(|e| e == pe) else {
                return;
            };
            if rest.is_empty() {
                if !only_empty || is_empty_node(&items[at]) {
                    items.remove(at);
                }
            } else {
                remove_path(&mut items[at], rest, &item_spath(spath), schema, only_empty);
            }
        }
        _ => {}
    }
}

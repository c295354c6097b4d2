//! The order of merged lists and maps, in time linear or n·log n in their length.
//!
//! Go's `strategicpatch` finds list items by scanning (`index`, `findMapWithMergeKey`,
//! `deduplicateScalars`), sorts with an insertion sort whose comparison scans again, and
//! removes map keys one by one; on lists of tens of thousands of items that is cubic. The
//! functions here give exactly the same results (the test oracle is the previous code, which
//! followed Go line by line) from precomputed position maps:
//!
//! - [`Canon`]: a hashable key for a JSON value, equal exactly when the values are.
//! - [`Positions`]: the first position of each order key in a list (Go's `index`).
//! - [`KeyIndex`]: where a scan for a merge-key value would stop, in a list being merged.
//! - [`normalize_element_order`], [`partition`], [`deduplicate_scalars`]: the list steps.
//! - [`MapEdit`]: a map whose removals are applied in one pass at the end.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;

use serde_json::{Map, Number, Value};

use super::{
    GoType, err_bad_arg_type, err_no_merge_key, extract_to_delete_items, failed, order_key,
    validate_merge_key_in_lists,
};
use crate::patch::PatchError;

/// A JSON value as a hashable key, equal exactly when the values are equal (`Value` is not
/// `Hash`): serde_json's `==`, which is Go's on decoded JSON. Strings, the usual merge keys,
/// are borrowed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum Canon<'a> {
    Null,
    Bool(bool),
    /// Any integer (serde_json keeps non-negative ones unsigned, negative ones signed).
    Int(i128),
    /// The bits of a float, with `-0.0` folded into `0.0` as `==` folds them. Never equal to
    /// an integer: serde_json's `1.0 != 1`.
    Float(u64),
    Str(Cow<'a, str>),
    /// An array or object, in an injective text form with object keys sorted (object equality
    /// ignores key order).
    Composite(String),
}

impl Canon<'_> {
    pub(super) fn into_owned(self) -> Canon<'static> {
        match self {
            Canon::Null => Canon::Null,
            Canon::Bool(b) => Canon::Bool(b),
            Canon::Int(i) => Canon::Int(i),
            Canon::Float(f) => Canon::Float(f),
            Canon::Str(s) => Canon::Str(Cow::Owned(s.into_owned())),
            Canon::Composite(s) => Canon::Composite(s),
        }
    }
}

/// The [`Canon`] key of `v`.
pub(super) fn canon(v: &Value) -> Canon<'_> {
    match v {
        Value::Null => Canon::Null,
        Value::Bool(b) => Canon::Bool(*b),
        Value::Number(n) => number_canon(n),
        Value::String(s) => Canon::Str(Cow::Borrowed(s)),
        composite => {
            let mut text = String::new();
            write_canon(&mut text, composite);
            Canon::Composite(text)
        }
    }
}

fn number_canon(n: &Number) -> Canon<'static> {
    if let Some(i) = n.as_i64() {
        Canon::Int(i.into())
    } else if let Some(u) = n.as_u64() {
        Canon::Int(u.into())
    } else {
        Canon::Float((n.as_f64().unwrap_or(0.0) + 0.0).to_bits())
    }
}

/// Every part is self-delimiting (a tag, then a length or a terminator), so different values
/// never write the same text. Recursive: values come from the decoder (at most 127 deep) or
/// from merging decoded values.
fn write_canon(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push('n'),
        Value::Bool(b) => out.push(if *b { 't' } else { 'f' }),
        Value::Number(n) => match number_canon(n) {
            Canon::Int(i) => {
                let _ = write!(out, "i{i};");
            }
            Canon::Float(bits) => {
                let _ = write!(out, "d{bits};");
            }
            _ => {}
        },
        Value::String(s) => {
            let _ = write!(out, "s{};{s}", s.len());
        }
        Value::Array(items) => {
            out.push('[');
            for item in items {
                write_canon(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (k, v) in entries {
                let _ = write!(out, "{};{k}", k.len());
                write_canon(out, v);
            }
            out.push('}');
        }
    }
}

/// The first position of each order key ([`order_key`]) in a list: Go's `index`, which scans
/// the list for each lookup. Items without an order key share one (Go's `nil`).
pub(super) struct Positions<'a> {
    first: HashMap<Option<Canon<'a>>, usize>,
    merge_key: &'a str,
    kind: GoType,
}

impl<'a> Positions<'a> {
    pub(super) fn new(list: &[&'a Value], merge_key: &'a str, kind: GoType) -> Self {
        let mut first = HashMap::with_capacity(list.len());
        for (i, item) in list.iter().enumerate() {
            first
                .entry(order_key(item, merge_key, kind).map(canon))
                .or_insert(i);
        }
        Positions {
            first,
            merge_key,
            kind,
        }
    }

    /// The position of the first item with the same order key as `item`.
    pub(super) fn of(&self, item: &Value) -> Option<usize> {
        let first: &HashMap<Option<Canon<'_>>, usize> = &self.first;
        first
            .get(&order_key(item, self.merge_key, self.kind).map(canon))
            .copied()
    }
}

/// Where Go's scan for the first map whose merge key has a given value stops, in a list whose
/// items are merged (changing their key) and appended to. The scan fails at an item that is not
/// a map before the match.
pub(super) struct KeyIndex {
    by_value: HashMap<Canon<'static>, BTreeSet<usize>>,
    first_non_map: Option<usize>,
}

impl KeyIndex {
    pub(super) fn new(list: &[Value], merge_key: &str) -> Self {
        let mut by_value: HashMap<Canon<'static>, BTreeSet<usize>> = HashMap::new();
        for (i, item) in list.iter().enumerate() {
            if let Some(v) = item.as_object().and_then(|m| m.get(merge_key)) {
                by_value.entry(canon(v).into_owned()).or_default().insert(i);
            }
        }
        KeyIndex {
            by_value,
            first_non_map: list.iter().position(|v| !v.is_object()),
        }
    }

    /// The first map whose merge key is `value`, or the scan's error.
    pub(super) fn find(&self, value: &Canon<'_>) -> Result<Option<usize>, PatchError> {
        let by_value: &HashMap<Canon<'_>, BTreeSet<usize>> = &self.by_value;
        let found = by_value.get(value).and_then(|at| at.first().copied());
        match self.first_non_map {
            Some(f) if found.is_none_or(|i| f < i) => Err(not_a_map(f)),
            _ => Ok(found),
        }
    }

    /// Item `i` (a map) now has merge-key value `value`.
    pub(super) fn insert(&mut self, value: Canon<'static>, i: usize) {
        self.by_value.entry(value).or_default().insert(i);
    }

    /// Item `i` no longer has merge-key value `value`.
    pub(super) fn remove(&mut self, value: &Canon<'_>, i: usize) {
        let value = value.clone().into_owned();
        if let Some(at) = self.by_value.get_mut(&value) {
            at.remove(&i);
            if at.is_empty() {
                self.by_value.remove(&value);
            }
        }
    }
}

/// Go's error when a scan for a merge key meets an item that is not a map, at `position`.
pub(super) fn not_a_map(position: usize) -> PatchError {
    failed(format!("value for key {position} is not a map"))
}

/// Sort `to_sort` by the positions of its items in `order`, as Go's insertion sort with
/// `normalizeSliceOrder`'s comparison does; delete directives go last.
///
/// The comparison says an item absent from `order` goes before anything, and a present item
/// before absent ones and before present ones with a larger position. So the insertion sort
/// moves each absent item to the front and each present item left past absent items and larger
/// positions, to just after the last present item with a position not larger than its own.
/// Hence present items end stably sorted by position; absent items end in reverse order of
/// appearance, each after exactly the present items whose position is smaller than the least
/// position among the present items that preceded it in `to_sort` (all of them when none did).
/// That is computed here with one stable sort and one merge.
pub(super) fn normalize_slice_order(
    to_sort: Vec<Value>,
    order: &[&Value],
    merge_key: &str,
    kind: GoType,
) -> Result<Vec<Value>, PatchError> {
    let (to_sort, to_delete) = if kind == GoType::Map {
        let items: Vec<&Value> = to_sort.iter().collect();
        validate_merge_key_in_lists(merge_key, &[&items, order])?;
        extract_to_delete_items(to_sort)?
    } else {
        (to_sort, Vec::new())
    };
    let positions = Positions::new(order, merge_key, kind);
    let mut present = Vec::with_capacity(to_sort.len());
    let mut absent = Vec::new();
    let mut least_before = usize::MAX;
    for item in to_sort {
        match positions.of(&item) {
            Some(p) => {
                least_before = least_before.min(p);
                present.push((p, item));
            }
            None => absent.push((least_before, item)),
        }
    }
    present.sort_by_key(|(p, _)| *p);
    let mut sorted = Vec::with_capacity(present.len() + absent.len() + to_delete.len());
    // Reversed, the absent items' bounds grow, as the present items' positions do.
    let mut absent = absent.into_iter().rev().peekable();
    for (p, item) in present {
        while let Some((_, a)) = absent.next_if(|(bound, _)| *bound <= p) {
            sorted.push(a);
        }
        sorted.push(item);
    }
    sorted.extend(absent.map(|(_, a)| a));
    sorted.extend(to_delete);
    Ok(sorted)
}

/// Interleave server-only items (`left`) with patch items (`right`), keeping both relative
/// orders; a server-only item goes first when the server had it before the patch item.
fn merge_sorted_slice(left: Vec<Value>, right: Vec<Value>, server: &Positions<'_>) -> Vec<Value> {
    let mut out = Vec::with_capacity(left.len() + right.len());
    let mut left = left.into_iter().peekable();
    let mut right = right.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => return out,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => match (server.of(l), server.of(r)) {
                (Some(li), Some(ri)) => li < ri,
                _ => false,
            },
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
}

/// Order a merged list: patch items by the patch order, server-only items by the server order,
/// then interleaved (`normalizeElementOrder`).
pub(super) fn normalize_element_order(
    patch_items: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[&Value],
    server_order: &[&Value],
    merge_key: &str,
    kind: GoType,
) -> Result<Vec<Value>, PatchError> {
    let patch_items = normalize_slice_order(patch_items, patch_order, merge_key, kind)?;
    let server_only = normalize_slice_order(server_only, server_order, merge_key, kind)?;
    let server = Positions::new(server_order, merge_key, kind);
    Ok(merge_sorted_slice(server_only, patch_items, &server))
}

/// Split `merged` into items present in `by` and the rest (server-only).
pub(super) fn partition(
    merged: Vec<Value>,
    by: &[Value],
    merge_key: &str,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut present = Vec::new();
    let mut server_only = Vec::new();
    if merge_key.is_empty() {
        let members: HashSet<Canon<'_>> = by.iter().map(canon).collect();
        for v in merged {
            if members.contains(&canon(&v)) {
                present.push(v);
            } else {
                server_only.push(v);
            }
        }
        return Ok((present, server_only));
    }
    let index = KeyIndex::new(by, merge_key);
    for v in merged {
        let Value::Object(m) = &v else {
            return Err(err_bad_arg_type(GoType::Map, &v));
        };
        let Some(key_value) = m.get(merge_key) else {
            return Err(err_no_merge_key(m, merge_key));
        };
        if index.find(&canon(key_value))?.is_some() {
            present.push(v);
        } else {
            server_only.push(v);
        }
    }
    Ok((present, server_only))
}

/// Go's in-place scalar deduplication (`deduplicateScalars`): for each item in turn, every later
/// duplicate is overwritten by the current last item and the logical length shrinks. Returns
/// the whole array afterwards, as indices into `values` (items past the length are left as Go
/// leaves them), and the new length.
///
/// Each value keeps the set of its positions, so every overwrite costs O(log n) instead of a
/// scan.
pub(super) fn deduplicate_scalars(values: &[&Value]) -> (Vec<usize>, usize) {
    let mut ids: HashMap<Canon<'_>, usize> = HashMap::new();
    let id: Vec<usize> = values
        .iter()
        .map(|v| {
            let next = ids.len();
            *ids.entry(canon(v)).or_insert(next)
        })
        .collect();
    let mut at: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); ids.len()];
    for (position, &value) in id.iter().enumerate() {
        at[value].insert(position);
    }
    let mut s: Vec<usize> = (0..values.len()).collect();
    let mut length = s.len();
    let mut i = 0;
    while i + 1 < length {
        let value = id[s[i]];
        while let Some(&j) = at[value].range(i + 1..).next() {
            let last = length - 1;
            let moved = id[s[last]];
            at[value].remove(&j);
            at[moved].remove(&last);
            s[j] = s[last];
            if j != last {
                at[moved].insert(j);
            }
            length -= 1;
        }
        i += 1;
    }
    (s, length)
}

/// A map under merge. Removing a key from an order-preserving map shifts every later key, so n
/// removals would take quadratic time; here a removal is recorded and all are applied in one
/// pass at the end, with the order the one-by-one removals give: a key removed and inserted
/// again goes after every key the map held at that moment, and before keys added later.
pub(super) struct MapEdit {
    map: Map<String, Value>,
    removed: HashSet<String>,
    /// Keys removed and inserted again: where they go (the map's length then) and in which
    /// order among keys moved at the same length.
    moved: HashMap<String, (usize, usize)>,
    moves: usize,
}

impl MapEdit {
    pub(super) fn new(map: Map<String, Value>) -> Self {
        MapEdit {
            map,
            removed: HashSet::new(),
            moved: HashMap::new(),
            moves: 0,
        }
    }

    pub(super) fn get(&self, key: &str) -> Option<&Value> {
        if self.removed.contains(key) {
            return None;
        }
        self.map.get(key)
    }

    /// The value of `key`, leaving `null` in its place.
    pub(super) fn take(&mut self, key: &str) -> Option<Value> {
        if self.removed.contains(key) {
            return None;
        }
        self.map.get_mut(key).map(std::mem::take)
    }

    pub(super) fn remove(&mut self, key: &str) {
        if self.map.contains_key(key) && !self.removed.contains(key) {
            self.moved.remove(key);
            self.removed.insert(key.to_string());
        }
    }

    pub(super) fn insert(&mut self, key: String, value: Value) {
        if self.removed.remove(&key) {
            let place = (self.map.len(), self.moves);
            self.moves += 1;
            self.map.insert(key.clone(), value);
            self.moved.insert(key, place);
        } else {
            self.map.insert(key, value);
        }
    }

    /// The map with the removals applied.
    pub(super) fn finish(self) -> Map<String, Value> {
        if self.removed.is_empty() && self.moved.is_empty() {
            return self.map;
        }
        let moved_keys: HashSet<String> = self.moved.keys().cloned().collect();
        let mut moved: Vec<((usize, usize), String)> = self
            .moved
            .into_iter()
            .map(|(k, place)| (place, k))
            .collect();
        moved.sort();
        let mut moved = moved.into_iter().peekable();
        let mut held: HashMap<String, Value> = HashMap::new();
        let mut out = Map::with_capacity(self.map.len());
        for (position, (key, value)) in self.map.into_iter().enumerate() {
            while let Some((_, k)) = moved.next_if(|((at, _), _)| *at <= position) {
                if let Some(v) = held.remove(&k) {
                    out.insert(k, v);
                }
            }
            if self.removed.contains(&key) {
                continue;
            }
            if moved_keys.contains(&key) {
                held.insert(key, value);
                continue;
            }
            out.insert(key, value);
        }
        for (_, k) in moved {
            if let Some(v) = held.remove(&k) {
                out.insert(k, v);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::patch::oracle;

    /// Values that are equal, or not, in every way `==` distinguishes.
    fn pool() -> impl Strategy<Value = Value> {
        prop::sample::select(vec![
            json!(null),
            json!("x"),
            json!("y"),
            json!(1),
            json!(1.0),
            json!(0.0),
            json!(-0.0),
            json!(-1),
            json!(true),
            json!({"k": null}),
            json!({"k": 1, "j": [1]}),
            json!({"j": [1], "k": 1}),
            json!([1, "x"]),
            json!(["x", 1]),
        ])
    }

    fn named(name: Option<Value>, delete: bool) -> Value {
        let mut item = Map::new();
        if let Some(name) = name {
            item.insert("name".into(), name);
        }
        if delete {
            item.insert("$patch".into(), json!("delete"));
        }
        Value::Object(item)
    }

    /// Maps with a `name` (from [`pool`], or missing), some of them delete directives.
    fn named_items() -> impl Strategy<Value = Vec<Value>> {
        prop::collection::vec(
            (
                prop::option::weighted(0.9, pool()),
                prop::bool::weighted(0.2),
            ),
            0..10,
        )
        .prop_map(|items| items.into_iter().map(|(n, d)| named(n, d)).collect())
    }

    proptest! {
        #![proptest_config(crate::patch::properties::config(1000))]

        #[test]
        fn canonical_keys_are_equal_exactly_when_the_values_are(a in pool(), b in pool()) {
            prop_assert_eq!(canon(&a) == canon(&b), a == b, "{} {}", a, b);
        }

        #[test]
        fn deduplicating_scalars_leaves_the_array_as_go_leaves_it(
            values in prop::collection::vec(pool(), 0..12),
        ) {
            let mut old = values.clone();
            let old_len = oracle::deduplicate_scalars_in_place(&mut old);
            let (slots, len) = deduplicate_scalars(&values.iter().collect::<Vec<_>>());
            let new: Vec<Value> = slots.iter().map(|&i| values[i].clone()).collect();
            prop_assert_eq!(len, old_len);
            prop_assert_eq!(Value::Array(new).to_string(), Value::Array(old).to_string());
        }

        #[test]
        fn ordering_scalars_gives_what_the_insertion_sort_gives(
            to_sort in prop::collection::vec(pool(), 0..12),
            order in prop::collection::vec(pool(), 0..12),
        ) {
            let order_refs: Vec<&Value> = order.iter().collect();
            let new = normalize_slice_order(to_sort.clone(), &order_refs, "", GoType::String);
            let old = oracle::normalize_slice_order(to_sort, &order, "", GoType::String);
            prop_assert_eq!(new, old);
        }

        #[test]
        fn ordering_maps_by_merge_key_gives_what_the_insertion_sort_gives(
            to_sort in named_items(),
            order in named_items(),
        ) {
            let order_refs: Vec<&Value> = order.iter().collect();
            let new = normalize_slice_order(to_sort.clone(), &order_refs, "name", GoType::Map);
            let old = oracle::normalize_slice_order(to_sort, &order, "name", GoType::Map);
            prop_assert_eq!(new, old);
        }

        #[test]
        fn a_map_edit_orders_keys_as_removing_them_one_by_one_does(
            start in prop::collection::vec(prop::sample::select(vec!["a", "b", "c", "d", "e"]), 0..5),
            edits in prop::collection::vec(
                (prop::sample::select(vec!["a", "b", "c", "d", "e", "f"]), 0..3u8),
                0..12,
            ),
        ) {
            let start: Map<String, Value> =
                start.into_iter().map(|k| (k.to_string(), json!(0))).collect();
            let mut plain = start.clone();
            let mut edit = MapEdit::new(start);
            for (i, (key, action)) in edits.into_iter().enumerate() {
                match action {
                    0 => {
                        plain.shift_remove(key);
                        edit.remove(key);
                    }
                    1 => {
                        plain.insert(key.to_string(), json!(i));
                        edit.insert(key.to_string(), json!(i));
                    }
                    _ => {
                        let taken = plain.get_mut(key).map(std::mem::take);
                        prop_assert_eq!(edit.take(key), taken);
                    }
                }
                prop_assert_eq!(edit.get(key), plain.get(key));
            }
            prop_assert_eq!(Value::Object(edit.finish()).to_string(), Value::Object(plain).to_string());
        }
    }
}

//! Property tests of the three patch types: invariants every patch keeps, and the linear-time
//! algorithms checked against the previous ones ([`super::oracle`]) on random inputs.
//!
//! The inputs are small (a handful of keys, names and values) so that they collide often:
//! duplicate list items, items missing their merge key or with a `null` one, delete and
//! replace directives, `1` next to `1.0`, `0.0` next to `-0.0`, lists of the wrong type.

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::json::apply_operations;
use super::{
    JsonPatchLimits, PatchError, json_patch, json_patch_with_limits, merge_patch, oracle,
    service_account_list_strategy, strategic_merge_patch,
};
use crate::limits;

/// Scalars that Go's `==` tells apart in ways that matter: `1` and `1.0`, but not `0.0` and
/// `-0.0`.
pub(super) fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        6 => prop::sample::select(vec!["x", "y", "z", "w"]).prop_map(|s| json!(s)),
        1 => prop::sample::select(vec![
            json!(1),
            json!(1.0),
            json!(0.0),
            json!(-0.0),
            json!(-3),
            json!(true),
            json!(null),
        ]),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["a", "b", "c", "d"]).prop_map(String::from)
}

/// Any small JSON value.
pub(super) fn value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..4)
                .prop_map(|members| Value::Object(members.into_iter().collect())),
        ]
    })
}

/// Whether values are drawn from a pool so small that they collide all the time, or mostly
/// from a few names.
#[derive(Debug, Clone, Copy)]
enum Pool {
    Names,
    Colliding,
}

/// Merge-key values and finalizers that are equal, or not, in the ways that matter: `null`,
/// `1` and `1.0`, `0.0` and `-0.0`, objects with a `null` member (which a merge drops,
/// changing the key).
fn colliding() -> impl Strategy<Value = Value> {
    prop::sample::select(vec![
        json!("s1"),
        json!(null),
        json!(1),
        json!(1.0),
        json!(0.0),
        json!(-0.0),
        json!({"k": null}),
        json!({"k": 1}),
    ])
}

/// A value for a merge key: mostly one of a few names, sometimes `null`, a number or an object.
fn merge_key_value(pool: Pool) -> BoxedStrategy<Value> {
    match pool {
        Pool::Names => prop_oneof![
            12 => prop::sample::select(vec!["s1", "s2", "s3", "s4", "s5"]).prop_map(|s| json!(s)),
            1 => colliding(),
        ]
        .boxed(),
        Pool::Colliding => colliding().boxed(),
    }
}

/// An item of a list merged by `merge_key`: mostly a map with its key, sometimes a `$patch`
/// directive; rarely without its key or not a map at all.
fn keyed_item(merge_key: &'static str, pool: Pool) -> impl Strategy<Value = Value> {
    let map = (
        prop::option::weighted(0.97, merge_key_value(pool)),
        prop::option::of(scalar()),
        prop::option::weighted(
            0.2,
            prop_oneof![
                12 => Just("delete"),
                3 => Just("replace"),
                1 => Just("merge"),
                1 => Just("other"),
            ],
        ),
    )
        .prop_map(move |(key_value, extra, directive)| {
            let mut item = Map::new();
            if let Some(v) = key_value {
                item.insert(merge_key.to_string(), v);
            }
            if let Some(v) = extra {
                item.insert("namespace".into(), v);
            }
            if let Some(d) = directive {
                item.insert("$patch".into(), json!(d));
            }
            Value::Object(item)
        });
    // A `null` item sits in a list of maps without a type error; Go's scans stop at it.
    prop_oneof![60 => map, 2 => Just(Value::Null), 1 => scalar()]
}

/// A finalizer: mostly a string, rarely a scalar of another type.
fn finalizer(pool: Pool) -> BoxedStrategy<Value> {
    match pool {
        Pool::Names => prop_oneof![
            30 => prop::sample::select(vec!["x", "y", "z", "w", "v"]).prop_map(|s| json!(s)),
            1 => scalar(),
        ]
        .boxed(),
        Pool::Colliding => colliding().boxed(),
    }
}

fn list_of(item: impl Strategy<Value = Value>) -> impl Strategy<Value = Value> {
    prop::collection::vec(item, 0..8).prop_map(Value::Array)
}

/// A patch list and its `$setElementOrder`, usually consistent (the order lists the patch's
/// items in their order, among others), sometimes reversed.
fn list_with_order(
    item: impl Strategy<Value = Value>,
    order_entry: impl Fn(&Value) -> Option<Value> + Clone + 'static,
    extra: impl Strategy<Value = Value>,
) -> impl Strategy<Value = (Value, Value)> {
    (
        prop::collection::vec((item, prop::option::weighted(0.3, extra)), 0..8),
        prop::bool::weighted(0.1),
    )
        .prop_map(move |(entries, reverse)| {
            let mut list = Vec::new();
            let mut order = Vec::new();
            for (item, extra) in entries {
                order.extend(extra);
                order.extend(order_entry(&item));
                list.push(item);
            }
            if reverse {
                order.reverse();
            }
            (Value::Array(list), Value::Array(order))
        })
}

fn keyed_list_with_order(
    merge_key: &'static str,
    pool: Pool,
) -> impl Strategy<Value = (Value, Value)> {
    list_with_order(
        keyed_item(merge_key, pool),
        move |item| {
            let m = item.as_object()?;
            if m.contains_key("$patch") {
                return None;
            }
            Some(json!({ merge_key: m.get(merge_key)? }))
        },
        prop_oneof![
            20 => merge_key_value(pool).prop_map(move |v| json!({ merge_key: v })),
            1 => Just(Value::Null),
        ],
    )
}

/// An object with the given optional members.
fn object(members: Vec<(&'static str, Option<Value>)>) -> Value {
    Value::Object(
        members
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
            .collect(),
    )
}

fn maybe<T: std::fmt::Debug>(s: impl Strategy<Value = T>) -> impl Strategy<Value = Option<T>> {
    prop::option::weighted(0.6, s)
}

fn labels() -> impl Strategy<Value = Value> {
    prop::collection::vec((key(), prop::option::of(scalar())), 0..5).prop_map(|members| {
        Value::Object(
            members
                .into_iter()
                .map(|(k, v)| (k, v.unwrap_or(Value::Null)))
                .collect(),
        )
    })
}

/// A map item of a stored list: directives and missing keys are rare there.
fn stored_item(merge_key: &'static str, pool: Pool) -> impl Strategy<Value = Value> {
    prop_oneof![
        20 => (merge_key_value(pool), prop::option::of(scalar())).prop_map(move |(k, extra)| {
            let mut item = json!({ merge_key: k });
            if let Some(extra) = extra {
                item["namespace"] = extra;
            }
            item
        }),
        1 => keyed_item(merge_key, pool),
        1 => Just(Value::Null),
    ]
}

/// A ServiceAccount-shaped object: `secrets` merge by `name`, `metadata.ownerReferences` by
/// `uid`, `metadata.finalizers` as a set, `imagePullSecrets` atomically.
fn service_account(pool: Pool) -> impl Strategy<Value = Value> {
    (
        maybe(list_of(stored_item("name", pool))),
        maybe(list_of(stored_item("name", pool))),
        maybe(list_of(finalizer(pool))),
        maybe(list_of(stored_item("uid", pool))),
        maybe(labels()),
        prop::option::weighted(0.2, value()),
    )
        .prop_map(|(secrets, pulls, finalizers, owners, labels, other)| {
            object(vec![
                ("secrets", secrets),
                ("imagePullSecrets", pulls),
                (
                    "metadata",
                    Some(object(vec![
                        ("finalizers", finalizers),
                        ("ownerReferences", owners),
                        ("labels", labels),
                    ])),
                ),
                ("other", other),
            ])
        })
}

/// Splits an optional list-with-order into its two optional members, each kept or dropped.
fn split(pair: Option<(Value, Value)>, keep: (bool, bool)) -> (Option<Value>, Option<Value>) {
    match pair {
        Some((list, order)) => (keep.0.then_some(list), keep.1.then_some(order)),
        None => (None, None),
    }
}

/// A strategic merge patch of a [`service_account`], with every directive.
fn service_account_patch(pool: Pool) -> impl Strategy<Value = Value> {
    let keep = || (prop::bool::weighted(0.85), prop::bool::weighted(0.7));
    let lists = (
        maybe(keyed_list_with_order("name", pool)),
        keep(),
        maybe(list_of(keyed_item("name", pool))),
        prop::option::weighted(0.15, prop_oneof![Just(Value::Null), value()]),
    );
    let metadata = (
        maybe(list_with_order(
            finalizer(pool),
            |f| Some(f.clone()),
            finalizer(pool),
        )),
        keep(),
        prop::option::weighted(
            0.3,
            prop_oneof![9 => list_of(finalizer(pool)), 1 => Just(Value::Null)],
        ),
        maybe(keyed_list_with_order("uid", pool)),
        keep(),
        maybe(labels()),
        prop::option::weighted(
            0.05,
            prop_oneof![
                Just(json!(["labels", "finalizers", "ownerReferences"])),
                Just(json!(["labels"])),
                Just(json!("labels"))
            ],
        ),
        prop::option::weighted(
            0.03,
            prop::sample::select(vec!["replace", "delete", "merge"]),
        ),
    );
    (lists, metadata, any::<u64>()).prop_map(
        |(
            (secrets, keep_secrets, pulls, other),
            (
                finalizers,
                keep_finalizers,
                delete_finalizers,
                owners,
                keep_owners,
                labels,
                retain,
                directive,
            ),
            rotation,
        )| {
            let (secrets, secrets_order) = split(secrets, keep_secrets);
            let (finalizers, finalizers_order) = split(finalizers, keep_finalizers);
            let (owners, owners_order) = split(owners, keep_owners);
            // Member order matters (a list deleted from and then set, or the reverse).
            let metadata = vec![
                ("finalizers", finalizers),
                ("$setElementOrder/finalizers", finalizers_order),
                ("$deleteFromPrimitiveList/finalizers", delete_finalizers),
                ("ownerReferences", owners),
                ("$setElementOrder/ownerReferences", owners_order),
                ("labels", labels),
                ("$retainKeys", retain),
                ("$patch", directive.map(|d| json!(d))),
            ];
            object(vec![
                ("secrets", secrets),
                ("$setElementOrder/secrets", secrets_order),
                ("imagePullSecrets", pulls),
                ("other", other),
                ("metadata", Some(object(rotated(metadata, rotation)))),
            ])
        },
    )
}

/// `members` in one of their orders.
fn rotated<T>(mut members: Vec<T>, seed: u64) -> Vec<T> {
    // A cheap permutation from the seed: enough to put any member before any other.
    let n = members.len();
    let mut seed = seed;
    for i in (1..n).rev() {
        let j = usize::try_from(seed % (i as u64 + 1)).unwrap_or(0);
        members.swap(i, j);
        seed /= i as u64 + 1;
    }
    members
}

/// A result with its key order: `Value`'s equality ignores the order of object members.
fn exact(result: Result<Value, PatchError>) -> Result<String, PatchError> {
    result.map(|v| v.to_string())
}

/// Pointers into `doc`: every value in it with the value, and pointers to a new member or item
/// of every container (some of which do not resolve).
fn pointers(doc: &Value) -> (Vec<(String, Value)>, Vec<String>) {
    let mut existing = Vec::new();
    let mut new = vec![
        "/missing/a".to_string(),
        "/a/~1".to_string(),
        "/-1".to_string(),
    ];
    let mut stack = vec![(String::new(), doc)];
    while let Some((path, v)) = stack.pop() {
        let children: Vec<(String, &Value)> = match v {
            Value::Object(m) => m
                .iter()
                .map(|(k, v)| (k.replace('~', "~0").replace('/', "~1"), v))
                .collect(),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (i.to_string(), v))
                .collect(),
            _ => continue,
        };
        new.push(format!("{path}/new"));
        if v.is_array() {
            new.extend(["-", "-1", "7"].map(|t| format!("{path}/{t}")));
        }
        for (token, child) in children {
            let child_path = format!("{path}/{token}");
            existing.push((child_path.clone(), child.clone()));
            stack.push((child_path, child));
        }
    }
    if existing.is_empty() {
        existing.push(("/absent".to_string(), Value::Null));
    }
    (existing, new)
}

fn operation(existing: Vec<(String, Value)>, new: Vec<String>) -> impl Strategy<Value = Value> {
    let op = prop::sample::select(vec!["add", "remove", "replace", "move", "copy", "test"]);
    let at = prop::sample::select(existing);
    let pointer = prop_oneof![
        3 => at.clone().prop_map(|(p, _)| p),
        1 => prop::sample::select(new),
    ];
    let value = prop::option::weighted(0.95, value());
    (op, pointer, at, value, any::<bool>()).prop_map(|(op, path, (from, current), value, same)| {
        let mut operation = json!({"op": op, "path": path});
        if matches!(op, "move" | "copy") {
            operation["from"] = json!(from);
        }
        if op == "test" && same {
            // A test that can pass: the value at `from` as the document was.
            operation["path"] = json!(from);
            operation["value"] = current;
        } else if let Some(value) = value {
            operation["value"] = value;
        }
        operation
    })
}

/// An object to apply JSON patches to, and operations on it.
fn document_and_operations(
    ops: std::ops::Range<usize>,
) -> impl Strategy<Value = (Value, Vec<Value>)> {
    prop::collection::vec((key(), value()), 0..4)
        .prop_map(|members| Value::Object(members.into_iter().collect()))
        .prop_flat_map(move |doc| {
            let (existing, new) = pointers(&doc);
            let ops = prop::collection::vec(operation(existing, new), ops.clone());
            (Just(doc), ops)
        })
}

fn document() -> impl Strategy<Value = Value> {
    document_and_operations(0..1).prop_map(|(doc, _)| doc)
}

/// `cases` random cases per property, or `PROPTEST_CASES` of them (for a longer run:
/// `PROPTEST_CASES=100000 cargo test --release -p kargo-api --lib patch::`).
pub(super) fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

fn unlimited() -> JsonPatchLimits {
    JsonPatchLimits {
        max_copy_bytes: usize::MAX,
        max_object_bytes: usize::MAX,
        max_depth: usize::MAX,
    }
}

proptest! {
    #![proptest_config(config(1000))]

    #[test]
    fn strategic_merge_patches_give_what_the_previous_implementation_gave(
        original in service_account(Pool::Names),
        patch in service_account_patch(Pool::Names),
    ) {
        let new = strategic_merge_patch(&original, &patch, &service_account_list_strategy);
        let old = oracle::strategic_merge_patch(&original, &patch, &service_account_list_strategy);
        prop_assert_eq!(exact(new), exact(old), "original {} patch {}", original, patch);
    }

    #[test]
    fn strategic_merge_patches_of_colliding_items_give_what_the_previous_implementation_gave(
        original in service_account(Pool::Colliding),
        patch in service_account_patch(Pool::Colliding),
    ) {
        let new = strategic_merge_patch(&original, &patch, &service_account_list_strategy);
        let old = oracle::strategic_merge_patch(&original, &patch, &service_account_list_strategy);
        prop_assert_eq!(exact(new), exact(old), "original {} patch {}", original, patch);
    }

    #[test]
    fn json_merge_patches_give_what_the_previous_implementation_gave(
        target in value(),
        patch in value(),
    ) {
        let (mut new, mut old) = (target.clone(), target.clone());
        let new_result = merge_patch(&mut new, &patch).map(|()| new);
        let old_result = oracle::merge_patch(&mut old, &patch).map(|()| old);
        prop_assert_eq!(exact(new_result), exact(old_result));
    }

    #[test]
    fn json_patches_within_their_limits_give_what_the_previous_implementation_gave(
        (target, ops) in document_and_operations(0..6),
    ) {
        let patch = Value::Array(ops);
        let (mut new, mut old) = (target.clone(), target.clone());
        let new_result = json_patch_with_limits(&mut new, &patch, &unlimited()).map(|()| new);
        let old_result = oracle::json_patch(&mut old, &patch).map(|()| old);
        prop_assert_eq!(exact(new_result), exact(old_result), "target {} patch {}", target, patch);
    }

    #[test]
    fn the_size_a_json_patch_keeps_track_of_is_the_size_of_its_result(
        (target, ops) in document_and_operations(0..8),
    ) {
        if let Ok((doc, measured)) = apply_operations(&target, &ops, &unlimited()) {
            prop_assert_eq!(measured.size, limits::json_len(&doc), "result {}", doc);
            prop_assert!(measured.depth >= limits::nesting_depth(&doc), "result {}", doc);
        }
    }

    #[test]
    fn a_json_patch_that_passes_its_limits_yields_an_object_within_them(
        (target, ops) in document_and_operations(0..8),
    ) {
        let limits = JsonPatchLimits { max_copy_bytes: 60, max_object_bytes: 90, max_depth: 4 };
        let mut doc = target.clone();
        if json_patch_with_limits(&mut doc, &Value::Array(ops), &limits).is_ok() {
            let size = limits::json_len(&doc);
            let depth = limits::nesting_depth(&doc);
            prop_assert!(size <= limits.max_object_bytes.max(limits::json_len(&target)));
            prop_assert!(depth <= limits.max_depth.max(limits::nesting_depth(&target)));
        }
    }

    #[test]
    fn a_failed_json_patch_leaves_the_target_unchanged(
        (target, ops) in document_and_operations(1..6),
    ) {
        let mut doc = target.clone();
        if json_patch(&mut doc, &Value::Array(ops)).is_err() {
            prop_assert_eq!(doc.to_string(), target.to_string());
        }
    }

    #[test]
    fn a_json_merge_patch_applied_twice_gives_what_it_gives_once(
        target in value(),
        patch in value(),
    ) {
        let mut once = target.clone();
        if merge_patch(&mut once, &patch).is_ok() {
            let mut twice = once.clone();
            prop_assert_eq!(merge_patch(&mut twice, &patch), Ok(()));
            prop_assert_eq!(twice.to_string(), once.to_string());
        }
    }

    #[test]
    fn a_null_patch_changes_nothing(target in document()) {
        let mut doc = target.clone();
        prop_assert_eq!(json_patch(&mut doc, &Value::Null), Ok(()));
        prop_assert_eq!(doc.to_string(), target.to_string());
        let merged = strategic_merge_patch(&target, &Value::Null, &service_account_list_strategy);
        prop_assert_eq!(exact(merged), Ok(target.to_string()));
    }

    #[test]
    fn a_strategic_merge_result_never_contains_directive_keys(
        original in service_account(Pool::Names),
        patch in service_account_patch(Pool::Names),
    ) {
        if let Ok(merged) = strategic_merge_patch(&original, &patch, &service_account_list_strategy) {
            prop_assert!(!has_directive_key(&merged), "result {}", merged);
        }
    }

    #[test]
    fn a_strategic_merge_of_maps_without_lists_is_a_json_merge_patch(
        original in maps_without_lists(),
        patch in maps_without_lists(),
    ) {
        let merged = strategic_merge_patch(&original, &patch, &service_account_list_strategy);
        let mut doc = original.clone();
        let json_merged = merge_patch(&mut doc, &patch).map(|()| doc);
        prop_assert_eq!(exact(merged), exact(json_merged));
    }
}

fn has_directive_key(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.iter().any(|(k, v)| {
            k == "$patch"
                || k == "$retainKeys"
                || k.starts_with("$setElementOrder")
                || k.starts_with("$deleteFromPrimitiveList")
                || has_directive_key(v)
        }),
        Value::Array(items) => items.iter().any(has_directive_key),
        _ => false,
    }
}

/// Objects of objects and scalars, `null` members included.
fn maps_without_lists() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![scalar(), Just(Value::Null)];
    let nested = leaf.prop_recursive(3, 16, 4, |inner| {
        prop::collection::vec((key(), inner), 0..4)
            .prop_map(|members| Value::Object(members.into_iter().collect()))
    });
    prop::collection::vec((key(), nested), 0..4)
        .prop_map(|members| Value::Object(members.into_iter().collect()))
}

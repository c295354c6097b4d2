//! Strategic merge patches checked against Kubernetes' results.

use super::*;
use crate::patch::{object_meta_list_strategy, service_account_list_strategy};
use serde_json::json;

fn check_smp(original: Value, patch: Value, expected: Result<Value, PatchError>) {
    let got = strategic_merge_patch(&original, &patch, &service_account_list_strategy);
    assert_eq!(got, expected, "original {original} patch {patch}");
}

/// What `kubectl apply` sends when a ServiceAccount manifest changes the `team` label and
/// replaces secret `s2` by `s3`, against a live object that also has a server-added secret.
#[test]
fn kubectl_apply_patch_of_a_service_account_merges_labels_and_secrets() {
    let old_applied = "{\"apiVersion\":\"v1\",\"kind\":\"ServiceAccount\",\"metadata\":{\"annotations\":{},\"labels\":{\"team\":\"a\"},\"name\":\"builder\",\"namespace\":\"ci\"},\"secrets\":[{\"name\":\"s1\"},{\"name\":\"s2\"}]}\n";
    let new_applied = "{\"apiVersion\":\"v1\",\"kind\":\"ServiceAccount\",\"metadata\":{\"annotations\":{},\"labels\":{\"team\":\"b\"},\"name\":\"builder\",\"namespace\":\"ci\"},\"secrets\":[{\"name\":\"s1\"},{\"name\":\"s3\"}]}\n";
    let live = json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": old_applied},
            "creationTimestamp": "2024-05-01T10:00:00Z",
            "labels": {"team": "a"},
            "name": "builder",
            "namespace": "ci",
            "resourceVersion": "42",
            "uid": "0b4cfa5e-8f0d-4c56-9f59-2d8d6f3c9a10"
        },
        "secrets": [{"name": "s1"}, {"name": "s2"}, {"name": "builder-token-x"}]
    });
    let patch = json!({
        "$setElementOrder/secrets": [{"name": "s1"}, {"name": "s3"}],
        "metadata": {
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": new_applied},
            "labels": {"team": "b"}
        },
        "secrets": [{"name": "s3"}, {"$patch": "delete", "name": "s2"}]
    });
    let mut expected = live.clone();
    expected["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] =
        json!(new_applied);
    expected["metadata"]["labels"]["team"] = json!("b");
    // Kubernetes' order (checked with `kubectl patch --local`, the same Go code): the
    // server-only secret stays next to `s1`, because the delete shifted it into `s2`'s slot
    // of the array Kubernetes then reads as the server's order.
    expected["secrets"] = json!([{"name": "s1"}, {"name": "builder-token-x"}, {"name": "s3"}]);
    check_smp(live, patch, Ok(expected));
}

#[test]
fn kubectl_apply_patch_adds_a_list_the_live_object_lacks() {
    check_smp(
        json!({"metadata": {"name": "sa"}}),
        json!({"$setElementOrder/secrets": [{"name": "b"}, {"name": "a"}],
               "secrets": [{"name": "b"}, {"name": "a", "namespace": null}]}),
        // Kubernetes keeps the null here (typed decoding drops it later).
        Ok(
            json!({"metadata": {"name": "sa"}, "secrets": [{"name": "b"}, {"name": "a", "namespace": null}]}),
        ),
    );
}

fn names(list: &[&str]) -> Value {
    Value::Array(list.iter().map(|n| json!({ "name": n })).collect())
}

/// Merged list orders, each checked against `kubectl patch --local` (Kubernetes 1.32).
#[test]
fn merged_list_order_matches_kubectl() {
    let secret_cases: &[(&[&str], Value, &[&str])] = &[
        (
            &["a", "b", "c", "d"],
            json!({"$setElementOrder/secrets": names(&["d", "x", "a"]),
                   "secrets": [{"name": "x"}, {"$patch": "delete", "name": "b"}, {"$patch": "delete", "name": "c"}]}),
            &["d", "x", "a"],
        ),
        (
            &["a", "b", "c", "d"],
            json!({"$setElementOrder/secrets": names(&["x", "y", "d"]),
                   "secrets": [{"name": "x"}, {"name": "y"}, {"$patch": "delete", "name": "a"}]}),
            &["b", "c", "x", "y", "d"],
        ),
        (
            &["a", "b", "c"],
            json!({"secrets": names(&["c", "z", "a"])}),
            &["b", "c", "z", "a"],
        ),
        (
            &["a", "b", "c"],
            json!({"$setElementOrder/secrets": names(&["b", "a"]),
                   "secrets": [{"$patch": "delete", "name": "c"}]}),
            &["b", "a"],
        ),
        (
            &["a", "b", "c", "d", "e"],
            json!({"$setElementOrder/secrets": names(&["e", "new", "a"]),
                   "secrets": [{"name": "new"}, {"$patch": "delete", "name": "b"}]}),
            &["c", "d", "e", "new", "a"],
        ),
        (
            &["a", "b", "c"],
            json!({"$setElementOrder/secrets": names(&["c", "b", "a"])}),
            &["c", "b", "a"],
        ),
    ];
    for (original, patch, expected) in secret_cases {
        check_smp(
            json!({"secrets": names(original)}),
            patch.clone(),
            Ok(json!({"secrets": names(expected)})),
        );
    }
    let finalizer_cases: &[(&[&str], Value, &[&str])] = &[
        (
            &["x/a", "x/b", "x/c"],
            json!({"$setElementOrder/finalizers": ["x/c", "x/b", "x/a"]}),
            &["x/c", "x/b", "x/a"],
        ),
        (
            &["x/a", "x/b", "x/c"],
            json!({"$setElementOrder/finalizers": ["x/b", "x/d"], "finalizers": ["x/d"]}),
            &["x/a", "x/b", "x/d", "x/c"],
        ),
    ];
    for (original, patch, expected) in finalizer_cases {
        check_smp(
            json!({"metadata": {"finalizers": original}}),
            json!({ "metadata": patch }),
            Ok(json!({"metadata": {"finalizers": expected}})),
        );
    }
}

#[test]
fn primitive_lists_merge_as_sets_with_deletions_and_order() {
    // kubectl apply changing finalizers from [a, b, c] to [c, a, d].
    check_smp(
        json!({"metadata": {"finalizers": ["x.io/a", "x.io/b", "x.io/c"]}}),
        json!({"metadata": {
            "$deleteFromPrimitiveList/finalizers": ["x.io/b"],
            "$setElementOrder/finalizers": ["x.io/c", "x.io/a", "x.io/d"],
            "finalizers": ["x.io/d"]
        }}),
        Ok(json!({"metadata": {"finalizers": ["x.io/c", "x.io/a", "x.io/d"]}})),
    );
    check_smp(
        json!({"metadata": {"finalizers": ["x.io/a", "x.io/b"]}}),
        json!({"metadata": {"finalizers": ["x.io/c", "x.io/a"]}}),
        Ok(json!({"metadata": {"finalizers": ["x.io/c", "x.io/a", "x.io/b"]}})),
    );
    // Deleting from a list the object does not have adds nothing.
    check_smp(
        json!({"metadata": {"name": "n"}}),
        json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["x.io/a"]}}),
        Ok(json!({"metadata": {"name": "n"}})),
    );
    check_smp(
        json!({"metadata": {"finalizers": ["a"]}}),
        json!({"metadata": {"$deleteFromPrimitiveListfinalizers": ["a"]}}),
        Err(PatchError::BadPrimitiveListFormat),
    );
}

#[test]
fn owner_references_merge_by_uid() {
    check_smp(
        json!({"metadata": {"ownerReferences": [
            {"apiVersion": "v1", "kind": "A", "name": "a", "uid": "1"},
            {"apiVersion": "v1", "kind": "B", "name": "b", "uid": "2"}]}}),
        json!({"metadata": {"ownerReferences": [
            {"uid": "2", "controller": true},
            {"uid": "3", "apiVersion": "v1", "kind": "C", "name": "c"},
            {"$patch": "delete", "uid": "1"}]}}),
        Ok(json!({"metadata": {"ownerReferences": [
            {"apiVersion": "v1", "kind": "B", "name": "b", "uid": "2", "controller": true},
            {"uid": "3", "apiVersion": "v1", "kind": "C", "name": "c"}]}})),
    );
}

#[test]
fn directives_replace_delete_and_retain() {
    // `$patch: replace` in a map takes the patch map.
    check_smp(
        json!({"metadata": {"labels": {"a": "1", "b": "2"}}}),
        json!({"metadata": {"labels": {"$patch": "replace", "c": "3"}}}),
        Ok(json!({"metadata": {"labels": {"c": "3"}}})),
    );
    // `$patch: delete` in a map empties it.
    check_smp(
        json!({"metadata": {"labels": {"a": "1"}}}),
        json!({"metadata": {"labels": {"$patch": "delete"}}}),
        Ok(json!({"metadata": {"labels": {}}})),
    );
    // `$patch: replace` as a list item replaces the list.
    check_smp(
        json!({"secrets": [{"name": "a"}, {"name": "b"}]}),
        json!({"secrets": [{"name": "c"}, {"$patch": "replace"}]}),
        Ok(json!({"secrets": [{"name": "c"}]})),
    );
    // `null` deletes; atomic lists are replaced; scalars are replaced.
    check_smp(
        json!({"metadata": {"labels": {"a": "1", "b": "2"}, "name": "x"},
               "imagePullSecrets": [{"name": "p1"}, {"name": "p2"}], "automountServiceAccountToken": true}),
        json!({"metadata": {"labels": {"a": null}}, "imagePullSecrets": [{"name": "p3"}],
               "automountServiceAccountToken": false, "missing": null}),
        Ok(json!({"metadata": {"labels": {"b": "2"}, "name": "x"},
                  "imagePullSecrets": [{"name": "p3"}], "automountServiceAccountToken": false})),
    );
    // `$retainKeys` drops keys that are not listed.
    check_smp(
        json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}}),
        json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": null}}}),
        Ok(json!({"spec": {"strategy": {"type": "Recreate"}}})),
    );
    check_smp(
        json!({"spec": {"strategy": {"type": "RollingUpdate"}}}),
        json!({"spec": {"strategy": {"$retainKeys": ["type"], "other": 1}}}),
        Err(PatchError::BadRetainKeysFormat),
    );
    check_smp(
        json!({"spec": {"strategy": {"type": "RollingUpdate"}}}),
        json!({"spec": {"strategy": {"$retainKeys": "type"}}}),
        Err(PatchError::BadRetainKeysFormat),
    );
    // Values new to the object lose their nulls and directive items.
    check_smp(
        json!({}),
        json!({"metadata": {"labels": {"a": "1", "b": null}},
               "secrets": [{"name": "a"}, {"name": "b", "$patch": "delete"}]}),
        Ok(json!({"metadata": {"labels": {"a": "1"}}, "secrets": [{"name": "a"}]})),
    );
}

#[test]
fn strategic_merge_errors_match_kubernetes() {
    check_smp(
        json!({"metadata": {"labels": {"a": "1"}}}),
        json!({"metadata": {"labels": {"$patch": "merge"}}}),
        Err(PatchError::StrategicMergeFailed(
            "unknown patch type: merge in map: map[$patch:merge]".into(),
        )),
    );
    check_smp(
        json!({"secrets": [{"name": "a"}]}),
        json!({"secrets": [{"$patch": "merge"}]}),
        Err(PatchError::StrategicMergeFailed(
            "merging lists cannot yet be specified in the patch".into(),
        )),
    );
    check_smp(
        json!({"secrets": [{"name": "a"}]}),
        json!({"secrets": [{"namespace": "x"}]}),
        Err(PatchError::StrategicMergeFailed(
            "map: map[namespace:x] does not contain declared merge key: name".into(),
        )),
    );
    check_smp(
        json!({"secrets": [{"name": "a"}]}),
        json!({"secrets": [{"name": "b", "$patch": 1}]}),
        Err(PatchError::StrategicMergeFailed(
            "unknown patch type: %!s(int64=1) in map: map[$patch:1 name:b]".into(),
        )),
    );
    check_smp(
        json!({"secrets": [{"name": "a"}]}),
        json!({"secrets": ["b"]}),
        Err(PatchError::StrategicMergeFailed(
            "list element types are not identical: [[map[name:a]] [b]]".into(),
        )),
    );
    check_smp(
        json!({"metadata": {"finalizers": [["a"]]}}),
        json!({"metadata": {"finalizers": [["b"]]}}),
        Err(PatchError::ListOfLists),
    );
    check_smp(
        json!({"secrets": [{"name": "a"}]}),
        json!({"$setElementOrder/secrets": [{"name": "a"}], "secrets": [{"name": "b"}]}),
        Err(PatchError::StrategicMergeFailed(
            "The order in patch list:\n[map[name:b]]\n doesn't match $setElementOrder list:\n[map[name:a]]\n".into(),
        )),
    );
    check_smp(
        json!({"secrets": [{"name": "a"}]}),
        json!({"$setElementOrdersecrets": []}),
        Err(PatchError::BadSetElementOrderFormat),
    );
    check_smp(
        json!({"a": 1}),
        json!([{"op": "add"}]),
        Err(PatchError::InvalidStrategicPatch(
            "json: cannot unmarshal array into Go value of type map[string]interface {}".into(),
        )),
    );
    check_smp(json!({"a": 1}), json!(null), Ok(json!({"a": 1})));
    check_smp(json!([1]), json!({}), Err(PatchError::InvalidDocument));
}

#[test]
fn scalar_deduplication_reorders_like_go() {
    let cases = [
        (json!(["a", "b", "a", "c"]), json!(["a", "b", "c"])),
        (json!(["a", "a", "b", "c"]), json!(["a", "c", "b"])),
        (json!(["a", "b", "c"]), json!(["a", "b", "c"])),
        (json!([]), json!([])),
    ];
    for (input, expected) in cases {
        let mut items = input.as_array().cloned().unwrap_or_default();
        let n = deduplicate_scalars_in_place(&mut items);
        items.truncate(n);
        assert_eq!(Value::Array(items), expected, "{input}");
    }
}

/// `count` names, `prefix` then a number.
fn numbered(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|i| format!("{prefix}{i}")).collect()
}

/// Issue 13: a `$setElementOrder` reversing 40,000 finalizers froze the server. The previous
/// insertion sort's comparison scanned the order list, so this took hours.
#[test]
fn forty_thousand_finalizers_are_reordered_by_set_element_order() {
    let names = numbered("example.com/f", 40_000);
    let reversed: Vec<String> = names.iter().rev().cloned().collect();
    let original = json!({"metadata": {"name": "cm", "finalizers": names}});
    let patch = json!({"metadata": {"$setElementOrder/finalizers": reversed}});
    let merged = strategic_merge_patch(&original, &patch, &object_meta_list_strategy);
    assert_eq!(
        merged,
        Ok(json!({"metadata": {"name": "cm", "finalizers": reversed}}))
    );
}

#[test]
fn forty_thousand_finalizers_are_added_and_deleted_in_one_patch() {
    let old = numbered("example.com/old", 40_000);
    let new = numbered("example.com/new", 40_000);
    let original = json!({"metadata": {"finalizers": old}});
    let patch = json!({"metadata": {
        "$deleteFromPrimitiveList/finalizers": old,
        "$setElementOrder/finalizers": new,
        "finalizers": new,
    }});
    let merged = strategic_merge_patch(&original, &patch, &object_meta_list_strategy);
    assert_eq!(merged, Ok(json!({"metadata": {"finalizers": new}})));
}

/// Deleting half of 40,000 secrets by merge key, merging the other half and adding 40,000,
/// in the order `$setElementOrder` gives (the previous code shifted the list once per deletion
/// and scanned it once per item).
#[test]
fn forty_thousand_secrets_are_deleted_merged_and_added_by_name() {
    let names = numbered("s", 40_000);
    let kept: Vec<&String> = names.iter().skip(1).step_by(2).rev().collect();
    let added = numbered("new", 40_000);
    let order: Vec<Value> = kept
        .iter()
        .map(|n| json!({ "name": n }))
        .chain(added.iter().map(|n| json!({ "name": n })))
        .collect();
    let items: Vec<Value> = kept
        .iter()
        .map(|n| json!({"name": n, "namespace": "ns"}))
        .chain(added.iter().map(|n| json!({ "name": n })))
        .chain(
            names
                .iter()
                .step_by(2)
                .map(|n| json!({"name": n, "$patch": "delete"})),
        )
        .collect();
    let original =
        json!({"secrets": names.iter().map(|n| json!({ "name": n })).collect::<Vec<_>>()});
    let patch = json!({"$setElementOrder/secrets": order, "secrets": items});
    let expected: Vec<Value> = kept
        .iter()
        .map(|n| json!({"name": n, "namespace": "ns"}))
        .chain(added.iter().map(|n| json!({ "name": n })))
        .collect();
    check_smp(original, patch, Ok(json!({ "secrets": expected })));
}

/// Removing a key from an order-preserving map shifts the keys after it; 20,000 of them used
/// to be removed one by one.
#[test]
fn twenty_thousand_labels_are_deleted_and_the_rest_keep_their_order() {
    let keys = numbered("team.example.com/l", 40_000);
    let labels: Map<String, Value> = keys.iter().map(|k| (k.clone(), json!("v"))).collect();
    let deletions: Map<String, Value> = keys
        .iter()
        .step_by(2)
        .map(|k| (k.clone(), Value::Null))
        .chain([("added".to_string(), json!("v"))])
        .collect();
    let kept: Map<String, Value> = keys
        .iter()
        .skip(1)
        .step_by(2)
        .map(|k| (k.clone(), json!("v")))
        .chain([("added".to_string(), json!("v"))])
        .collect();
    let merged = strategic_merge_patch(
        &json!({"metadata": {"labels": labels}}),
        &json!({"metadata": {"labels": deletions, "$retainKeys": ["labels"]}}),
        &object_meta_list_strategy,
    );
    let expected = json!({"metadata": {"labels": kept}});
    assert_eq!(
        merged.map(|v| v.to_string()),
        Ok(expected.to_string()),
        "same members in the same order"
    );
}

/// A key a patch removes (`$deleteFromPrimitiveList/<key>: null`) and sets again goes after the
/// other keys, as removing it from Go's map and inserting it again does.
#[test]
fn a_key_removed_and_set_again_moves_after_the_others() {
    let merged = strategic_merge_patch(
        &json!({"metadata": {"finalizers": ["a"], "name": "n", "uid": "u"}}),
        &json!({"metadata": {"$deleteFromPrimitiveList/finalizers": null, "finalizers": ["b"], "labels": {"x": "y"}}}),
        &object_meta_list_strategy,
    );
    assert_eq!(
        merged.map(|v| v.to_string()),
        Ok(
            r#"{"metadata":{"name":"n","uid":"u","finalizers":["b"],"labels":{"x":"y"}}}"#
                .to_string()
        )
    );
}

/// The deepest objects the decoder accepts (127 levels) merge without exhausting the stack:
/// the merge recurses once per level of the patch.
#[test]
fn strategic_merge_of_the_deepest_decodable_objects_applies() {
    let deep = |leaf: &str| -> Value {
        let text = format!("{}\"{leaf}\"{}", "{\"a\":".repeat(127), "}".repeat(127));
        serde_json::from_str(&text).unwrap_or_default()
    };
    assert_eq!(crate::limits::nesting_depth(&deep("old")), 127);
    let merged = strategic_merge_patch(&deep("old"), &deep("new"), &object_meta_list_strategy);
    assert_eq!(merged, Ok(deep("new")));
}

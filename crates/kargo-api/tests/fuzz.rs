//! Fuzz targets for the parsers of `kargo-api` that see request bytes: label and field selectors
//! (`?labelSelector=`, `?fieldSelector=`) and the three PATCH bodies (JSON patch, JSON merge
//! patch, strategic merge patch with a ServiceAccount's and with ObjectMeta's list strategies).
//!
//! Each target is a cargo-fuzz-style `fn(&[u8])` run by `kargo_fuzz::Fuzzer` on its corpus in
//! `fuzz/<target>/` and on mutants of it, for `KARGO_FUZZ_SECONDS` (2 s in the normal test
//! suite; `scripts/fuzz.sh` runs longer). Every input is read twice: raw (the text of a selector,
//! the JSON of a patch, as a client sends it) and as the choices of a small grammar
//! (`kargo_fuzz::structured`), so that random bytes also become well-formed patches and
//! selectors. The targets check properties, not only the absence of panics:
//!
//! - a selector that parses prints to a selector that parses to the same one and selects the
//!   same objects; field-selector escaping round-trips;
//! - a JSON patch that fails leaves its target unchanged, one that succeeds is deterministic;
//! - a merge patch fails only for a scalar or null body (leaving the target unchanged) and
//!   applying it twice is applying it once (RFC 7386);
//! - a strategic merge patch leaves no `$` directive in the object, and on a patch with no lists
//!   and no directives it is exactly a merge patch;
//! - every patch error maps to one of the HTTP statuses kube-apiserver answers with.
//!
//! Only the public API is used: these targets do not change when the implementation is
//! rewritten.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use kargo_api::patch::{
    self, ListStrategy, PatchError, json_patch, merge_patch, strategic_merge_patch,
};
use kargo_api::selector::{FieldSelector, LabelSelector, escape_field_value, unescape_field_value};
use kargo_fuzz::Fuzzer;
use kargo_fuzz::arbitrary::{Result as ArbitraryResult, Unstructured};
use kargo_fuzz::structured::{self, json, word};
use serde_json::{Value, json as object};

fn corpus(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(target)
}

fn fuzzer(target: &str) -> Fuzzer {
    Fuzzer::new(target).corpus(corpus(target))
}

/// Runs `build` on the input as grammar choices; `None` when the bytes run out first.
fn structured<T>(
    data: &[u8],
    build: impl FnOnce(&mut Unstructured<'_>) -> ArbitraryResult<T>,
) -> Option<T> {
    build(&mut Unstructured::new(data)).ok()
}

// ---------------------------------------------------------------------------------------------
// Label selectors

const LABEL_KEYS: &[&str] = &[
    "a",
    "app",
    "b",
    "tier",
    "app.kubernetes.io/name",
    "rbac.kargo.akuity.io/service-account",
    "x/y",
    "a.b-c_d",
    "-a",
    "A_",
    "",
    "a/",
    "/a",
    "kubernetes.io/",
];
const LABEL_VALUES: &[&str] = &[
    "",
    "1",
    "2",
    "10",
    "-3",
    "x",
    "true",
    "a.b",
    "a-b_c",
    "-x",
    "x-",
    "01",
    "9999999999999999999",
];
const LABEL_SEPARATORS: &[&str] = &[
    "=", "==", "!=", " in ", " notin ", ">", "<", "", "!", " ", "(", ")", ",", "=(", " in(",
];

/// A selector string built from selector words: mostly well formed, sometimes not.
fn label_selector_text(u: &mut Unstructured<'_>) -> ArbitraryResult<String> {
    let mut text = String::new();
    for i in 0..u.int_in_range(1..=4)? {
        if i > 0 {
            text.push_str(if u.ratio(7, 8)? { "," } else { " " });
        }
        let key = word(u, LABEL_KEYS)?;
        match u.int_in_range(0..=5)? {
            0 => text.push_str(&key),
            1 => text.push_str(&format!("!{key}")),
            2 => {
                let op = *u.choose(&["=", "==", "!="])?;
                text.push_str(&format!("{key}{op}{}", word(u, LABEL_VALUES)?));
            }
            3 => {
                let op = *u.choose(&[" in ", " notin ", " in", "notin"])?;
                let mut values = Vec::new();
                for _ in 0..u.int_in_range(0..=3)? {
                    values.push(word(u, LABEL_VALUES)?);
                }
                text.push_str(&format!("{key}{op}({})", values.join(",")));
            }
            4 => {
                let op = *u.choose(&[">", "<", " gt ", " lt "])?;
                text.push_str(&format!("{key}{op}{}", word(u, LABEL_VALUES)?));
            }
            _ => {
                for _ in 0..u.int_in_range(1..=4)? {
                    text.push_str(&word(u, LABEL_SEPARATORS)?);
                    text.push_str(&word(u, LABEL_KEYS)?);
                }
            }
        }
    }
    Ok(text)
}

/// Label sets to compare two selectors on: the selector's own keys with each of its values,
/// a value it does not name, and without the key.
fn label_sets(selector: &LabelSelector) -> Vec<BTreeMap<String, String>> {
    let mut sets = vec![BTreeMap::new()];
    for requirement in selector.requirements() {
        let mut values: Vec<&str> = requirement.values().iter().map(String::as_str).collect();
        values.extend(["", "0", "5", "11", "zz"]);
        let mut grown = Vec::new();
        for set in &sets {
            for value in &values {
                let mut with = set.clone();
                with.insert(requirement.key().to_owned(), (*value).to_owned());
                grown.push(with);
            }
            grown.push(set.clone());
        }
        grown.truncate(256);
        sets = grown;
    }
    sets
}

fn check_label_selector(text: &str) {
    let Ok(parsed) = LabelSelector::parse(text) else {
        return;
    };
    let printed = parsed.to_string();
    let reparsed = LabelSelector::parse(&printed).unwrap_or_else(|e| {
        panic!("{text:?} parses and prints as {printed:?}, which does not parse: {e}")
    });
    assert_eq!(
        reparsed.to_string(),
        printed,
        "printing {text:?} is not stable"
    );
    for labels in label_sets(&parsed) {
        assert_eq!(
            parsed.matches(&labels),
            reparsed.matches(&labels),
            "{text:?} and its printed form {printed:?} disagree on {labels:?}"
        );
    }
}

#[test]
fn label_selectors_that_parse_print_back_to_the_same_selector() {
    fuzzer("label_selector")
        .dictionary(LABEL_SEPARATORS.iter().chain(LABEL_KEYS))
        .max_len(512)
        .run(|data| {
            check_label_selector(&String::from_utf8_lossy(data));
            if let Some(text) = structured(data, label_selector_text) {
                check_label_selector(&text);
            }
        });
}

// ---------------------------------------------------------------------------------------------
// Field selectors

const FIELDS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "type",
    "status.phase",
    "spec.x",
    "",
];
const FIELD_VALUES: &[&str] = &[
    "a", "", "x\\,y", "x\\=y", "x\\\\", "\\", ",", "=", "a b", "é",
];

fn field_selector_text(u: &mut Unstructured<'_>) -> ArbitraryResult<String> {
    let mut terms = Vec::new();
    for _ in 0..u.int_in_range(0..=3)? {
        let op = *u.choose(&["=", "==", "!=", "", "!", "==="])?;
        terms.push(format!(
            "{}{op}{}",
            word(u, FIELDS)?,
            word(u, FIELD_VALUES)?
        ));
    }
    Ok(terms.join(","))
}

/// The terms of a field selector as a sorted list of `(field, is "=", value)`.
fn field_terms(selector: &FieldSelector) -> Vec<(String, bool, String)> {
    let mut terms: Vec<_> = selector
        .requirements()
        .iter()
        .map(|r| {
            (
                r.field.clone(),
                r.operator == kargo_api::selector::FieldOperator::Equals,
                r.value.clone(),
            )
        })
        .collect();
    terms.sort();
    terms
}

fn check_field_selector(text: &str) {
    let Ok(parsed) = FieldSelector::parse(text) else {
        return;
    };
    let printed = parsed.to_string();
    let reparsed = FieldSelector::parse(&printed).unwrap_or_else(|e| {
        panic!("{text:?} parses and prints as {printed:?}, which does not parse: {e}")
    });
    assert_eq!(
        field_terms(&reparsed),
        field_terms(&parsed),
        "{text:?} printed as {printed:?} parses to other terms"
    );
    for requirement in parsed.requirements() {
        assert_eq!(
            unescape_field_value(&escape_field_value(&requirement.value)).as_deref(),
            Ok(requirement.value.as_str())
        );
    }
}

#[test]
fn field_selectors_that_parse_print_back_to_the_same_terms() {
    fuzzer("field_selector")
        .dictionary(["\\", ",", "=", "==", "!=", "metadata.name", "\\,", "\\="])
        .max_len(512)
        .run(|data| {
            let text = String::from_utf8_lossy(data);
            check_field_selector(&text);
            assert_eq!(
                unescape_field_value(&escape_field_value(&text)).as_deref(),
                Ok(&*text),
                "escaping does not round-trip"
            );
            if let Some(text) = structured(data, field_selector_text) {
                check_field_selector(&text);
            }
        });
}

// ---------------------------------------------------------------------------------------------
// Patches

/// Words of patches and of the objects they apply to.
const PATCH_WORDS: &[&str] = &[
    "metadata",
    "name",
    "namespace",
    "labels",
    "annotations",
    "finalizers",
    "ownerReferences",
    "uid",
    "secrets",
    "imagePullSecrets",
    "a",
    "b",
    "x.io/a",
    "x.io/b",
    "kind",
    "data",
    "spec",
    "$patch",
    "replace",
    "delete",
    "merge",
    "$retainKeys",
    "$setElementOrder/secrets",
    "$setElementOrder/finalizers",
    "$setElementOrder/ownerReferences",
    "$setElementOrder/imagePullSecrets",
    "$deleteFromPrimitiveList/finalizers",
    "$deleteFromPrimitiveList/secrets",
];

/// Real objects patches are applied to when a patch comes raw.
fn originals() -> Vec<Value> {
    vec![
        object!({
            "apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {
                "name": "ci", "namespace": "p", "uid": "u-1", "resourceVersion": "7",
                "labels": {"rbac.kargo.akuity.io/service-account": "true"},
                "annotations": {"a": "1"},
                "finalizers": ["x.io/a", "x.io/b"],
                "ownerReferences": [
                    {"apiVersion": "v1", "kind": "Namespace", "name": "p", "uid": "o-1"},
                    {"apiVersion": "v1", "kind": "Secret", "name": "s", "uid": "o-2", "controller": true},
                ],
            },
            "secrets": [{"name": "ci-token"}, {"name": "other"}],
            "imagePullSecrets": [{"name": "pull"}],
        }),
        object!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cm", "namespace": "p"},
            "data": {"a": "1", "b": "2"},
            "binaryData": {"c": "AAEC"},
        }),
        object!({"a": [1, 2, [3, {"b": null}]], "c": {"d": {"e": "f"}}, "": 0, "~/": 1}),
    ]
}

/// Whether a key is a strategic-merge directive, which must never reach a stored object.
fn is_directive(key: &str) -> bool {
    key == "$patch"
        || key == "$retainKeys"
        || key.starts_with("$setElementOrder/")
        || key.starts_with("$deleteFromPrimitiveList/")
}

fn has_directive(value: &Value) -> bool {
    match value {
        Value::Object(map) => map.iter().any(|(k, v)| is_directive(k) || has_directive(v)),
        Value::Array(items) => items.iter().any(has_directive),
        _ => false,
    }
}

/// Whether a value holds a list or a `$` key anywhere.
fn has_list_or_dollar(value: &Value) -> bool {
    match value {
        Value::Object(map) => map
            .iter()
            .any(|(k, v)| k.starts_with('$') || has_list_or_dollar(v)),
        Value::Array(_) => true,
        _ => false,
    }
}

fn check_error_status(error: &PatchError) {
    assert!(
        matches!(error.code(), 400 | 413 | 422 | 500),
        "unexpected status {} for {error:?}",
        error.code()
    );
    assert!(!error.status_message().is_empty());
}

fn check_json_patch(original: &Value, patch: &Value) {
    let mut target = original.clone();
    match json_patch(&mut target, patch) {
        Err(error) => {
            check_error_status(&error);
            assert_eq!(
                &target, original,
                "a failed JSON patch ({error}) changed its target; patch: {patch}"
            );
        }
        Ok(()) => {
            let mut again = original.clone();
            assert_eq!(
                json_patch(&mut again, patch),
                Ok(()),
                "not deterministic: {patch}"
            );
            assert_eq!(again, target, "not deterministic: {patch}");
        }
    }
}

const JSON_POINTER_SEGMENTS: &[&str] = &[
    "metadata",
    "labels",
    "finalizers",
    "secrets",
    "a",
    "b",
    "c",
    "d",
    "0",
    "1",
    "2",
    "-",
    "-1",
    "-3",
    "01",
    "",
    "~0",
    "~1",
    "a~1b",
    "~",
    "99999999999999999999",
];

fn json_pointer(u: &mut Unstructured<'_>) -> ArbitraryResult<String> {
    let mut pointer = String::new();
    for _ in 0..u.int_in_range(0..=4)? {
        pointer.push('/');
        pointer.push_str(&word(u, JSON_POINTER_SEGMENTS)?);
    }
    if u.ratio(1, 16)? {
        pointer.insert_str(0, &word(u, &["a", "", "#"])?);
    }
    Ok(pointer)
}

/// A pointer to a member of `doc` (escaped as RFC 6901 says), sometimes one step past it.
fn existing_pointer(u: &mut Unstructured<'_>, mut doc: &Value) -> ArbitraryResult<String> {
    let mut pointer = String::new();
    loop {
        let next = match doc {
            Value::Object(map) if !map.is_empty() && u.ratio(3, 4)? => {
                let keys: Vec<&String> = map.keys().collect();
                let key = *u.choose(&keys)?;
                pointer.push('/');
                pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
                &map[key]
            }
            Value::Array(items) if !items.is_empty() && u.ratio(3, 4)? => {
                let index = u.choose_index(items.len())?;
                pointer.push_str(&format!("/{index}"));
                &items[index]
            }
            _ => break,
        };
        doc = next;
    }
    if u.ratio(1, 4)? {
        pointer.push('/');
        pointer.push_str(&word(u, JSON_POINTER_SEGMENTS)?);
    }
    Ok(pointer)
}

/// An object and a JSON patch of up to six operations.
fn json_patch_case(u: &mut Unstructured<'_>) -> ArbitraryResult<(Value, Value)> {
    let original = Value::Object(structured::object(u, PATCH_WORDS, 3)?);
    let pointer = |u: &mut Unstructured<'_>| {
        if u.ratio(2, 3)? {
            existing_pointer(u, &original)
        } else {
            json_pointer(u)
        }
    };
    let mut ops = Vec::new();
    for _ in 0..u.int_in_range(0..=6)? {
        let mut op = serde_json::Map::new();
        if u.ratio(15, 16)? {
            let kind = *u.choose(&["add", "remove", "replace", "move", "copy", "test", "x"])?;
            op.insert("op".into(), Value::from(kind));
        }
        if u.ratio(15, 16)? {
            op.insert("path".into(), Value::from(pointer(u)?));
        }
        if u.ratio(1, 2)? {
            op.insert("from".into(), Value::from(pointer(u)?));
        }
        if u.ratio(3, 4)? {
            op.insert("value".into(), json(u, PATCH_WORDS, 2)?);
        }
        ops.push(if u.ratio(1, 32)? {
            json(u, PATCH_WORDS, 1)?
        } else {
            Value::Object(op)
        });
    }
    Ok((original, Value::Array(ops)))
}

#[test]
fn a_json_patch_that_fails_leaves_its_target_unchanged() {
    let originals = originals();
    fuzzer("json_patch")
        .dictionary([
            "{\"op\":\"add\",\"path\":\"/a\",\"value\":1}",
            "{\"op\":\"copy\",\"from\":\"/a\",\"path\":\"/b\"}",
            "\"op\"",
            "\"path\"",
            "\"from\"",
            "\"value\"",
            "\"remove\"",
            "\"move\"",
            "\"test\"",
            "/-",
            "/0",
            "/-1",
            "~1",
            "null",
        ])
        .run(|data| {
            if let Ok(patch) = serde_json::from_slice::<Value>(data) {
                for original in &originals {
                    check_json_patch(original, &patch);
                }
            }
            if let Some((original, patch)) = structured(data, json_patch_case) {
                check_json_patch(&original, &patch);
            }
        });
}

fn check_merge_patch(original: &Value, patch: &Value) {
    let mut once = original.clone();
    match merge_patch(&mut once, patch) {
        Err(error) => {
            check_error_status(&error);
            assert!(
                !patch.is_object() && !patch.is_array(),
                "the merge patch {patch} failed: {error}"
            );
            assert_eq!(&once, original, "a failed merge patch changed its target");
        }
        Ok(()) => {
            let mut twice = once.clone();
            merge_patch(&mut twice, patch).expect("a merge patch that applied applies again");
            if has_null_in_a_list(patch, false) {
                // Go's merge patch (and so ours) keeps the nulls inside a list that replaces an
                // object but drops them from one that replaces anything else: applying such a
                // patch twice drops them the second time, in kube-apiserver too.
                return;
            }
            assert_eq!(
                twice, once,
                "applying the merge patch {patch} twice differs from once (original {original})"
            );
        }
    }
}

/// Whether a null sits in an object somewhere inside a list of `value`.
fn has_null_in_a_list(value: &Value, in_list: bool) -> bool {
    match value {
        Value::Null => in_list,
        Value::Array(items) => items.iter().any(|v| has_null_in_a_list(v, true)),
        Value::Object(map) => map.values().any(|v| has_null_in_a_list(v, in_list)),
        _ => false,
    }
}

fn merge_case(u: &mut Unstructured<'_>) -> ArbitraryResult<(Value, Value)> {
    let original = json(u, PATCH_WORDS, 4)?;
    let patch = if u.ratio(7, 8)? {
        Value::Object(structured::object(u, PATCH_WORDS, 3)?)
    } else {
        json(u, PATCH_WORDS, 3)?
    };
    Ok((original, patch))
}

#[test]
fn a_merge_patch_applied_twice_is_applied_once() {
    let originals = originals();
    fuzzer("merge_patch")
        .dictionary([
            "null",
            "{}",
            "[]",
            "\"a\":",
            "\"metadata\":{",
            "\"labels\":{",
        ])
        .run(|data| {
            if let Ok(patch) = serde_json::from_slice::<Value>(data) {
                for original in &originals {
                    check_merge_patch(original, &patch);
                }
            }
            if let Some((original, patch)) = structured(data, merge_case) {
                check_merge_patch(&original, &patch);
            }
        });
}

fn check_strategic(original: &Value, patch: &Value, lists: &dyn Fn(&str) -> ListStrategy) {
    match strategic_merge_patch(original, patch, lists) {
        Err(error) => check_error_status(&error),
        Ok(merged) => {
            // A directive key already in the stored object is data (a `null` patch returns
            // the object as is): only the patch's directives must not leak.
            assert!(
                has_directive(original) || !has_directive(&merged),
                "a directive reached the object: {merged} (patch {patch})"
            );
            if original.is_object()
                && patch.is_object()
                && !has_list_or_dollar(original)
                && !has_list_or_dollar(patch)
            {
                let mut merge = original.clone();
                merge_patch(&mut merge, patch).expect("an object merge patch applies");
                assert_eq!(
                    merged, merge,
                    "without lists and directives a strategic merge patch is a merge patch; \
                     original {original}, patch {patch}"
                );
            }
        }
    }
}

fn strategic_case(u: &mut Unstructured<'_>) -> ArbitraryResult<(Value, Value)> {
    let original = Value::Object(structured::object(u, PATCH_WORDS, 4)?);
    let patch = if u.ratio(15, 16)? {
        Value::Object(structured::object(u, PATCH_WORDS, 4)?)
    } else {
        json(u, PATCH_WORDS, 2)?
    };
    Ok((original, patch))
}

fn run_strategic(target: &str, lists: fn(&str) -> ListStrategy) {
    let originals = originals();
    fuzzer(target)
        .dictionary(PATCH_WORDS.iter().map(|w| format!("\"{w}\"")))
        .run(|data| {
            if let Ok(patch) = serde_json::from_slice::<Value>(data) {
                for original in &originals {
                    check_strategic(original, &patch, &lists);
                }
            }
            if let Some((original, patch)) = structured(data, strategic_case) {
                check_strategic(&original, &patch, &lists);
            }
        });
}

#[test]
fn strategic_merge_patches_of_service_accounts_leave_no_directives() {
    run_strategic(
        "strategic_merge_patch_service_account",
        patch::service_account_list_strategy,
    );
}

#[test]
fn strategic_merge_patches_of_object_meta_leave_no_directives() {
    run_strategic(
        "strategic_merge_patch_object_meta",
        patch::object_meta_list_strategy,
    );
}

/// Found by `merge_patch` (not a bug: kube-apiserver's `evanphx/json-patch` does the same): a
/// list in a merge patch keeps the nulls of its objects when it replaces an object, and loses
/// them when it replaces anything else, so applying such a patch twice differs from once.
#[test]
fn a_list_in_a_merge_patch_keeps_its_nulls_only_where_go_keeps_them() {
    let patch = object!({"a": [{"b": null, "c": 1}]});
    let mut over_object = object!({"a": {"x": 1}});
    merge_patch(&mut over_object, &patch).unwrap();
    assert_eq!(over_object, object!({"a": [{"b": null, "c": 1}]}));
    let mut over_scalar = object!({"a": 1});
    merge_patch(&mut over_scalar, &patch).unwrap();
    assert_eq!(over_scalar, object!({"a": [{"c": 1}]}));
    merge_patch(&mut over_object, &patch).unwrap();
    assert_eq!(over_object, over_scalar, "the second application prunes");
}

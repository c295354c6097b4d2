//! Server-side apply scenarios: two managers, conflicts, force, removal of dropped fields,
//! shared values, list types, and the `FieldsV1` kube-apiserver writes.

use serde_json::{Value, json};

use super::*;
use crate::patch::{ListStrategy, service_account_list_strategy};

fn objects(spath: &str) -> ObjectType {
    match spath {
        "data" => ObjectType::Map,
        "secrets[]" => ObjectType::Atomic,
        other => object_meta_object_type(other),
    }
}

fn lists(path: &str) -> ListStrategy {
    service_account_list_strategy(path)
}

const SCHEMA: Schema<'static> = Schema {
    lists: &lists,
    objects: &objects,
};

fn writer(manager: &str) -> Writer<'_> {
    Writer {
        manager,
        subresource: "",
        api_version: "v1",
        now: "2026-12-07T21:00:00Z",
        schema: &SCHEMA,
        ignored: &|_| false,
    }
}

/// Applies `config` as `manager` to `live` (with its managers) and answers the result.
fn check_apply(
    live: Option<&(Value, ManagedFields)>,
    config: Value,
    manager: &str,
    force: bool,
) -> Result<(Value, ManagedFields), ApplyError> {
    let (obj, managed) = match live {
        Some((o, m)) => (Some(o), m.clone()),
        None => (None, ManagedFields::default()),
    };
    apply(obj, &config, managed, force, &writer(manager))
}

fn fields_of(managed: &ManagedFields, manager: &str) -> Value {
    managed
        .0
        .iter()
        .find(|e| e.manager == manager)
        .map(|e| e.fields.to_fields_v1())
        .unwrap_or(Value::Null)
}

/// A ConfigMap manifest; an empty `data` is left out (applying `data: {}` would own `.data`).
fn cm(labels: Value, data: Value) -> Value {
    let mut v = json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": "c", "namespace": "n", "labels": labels}, "data": data});
    if data_is_empty(&v) {
        v.as_object_mut().map(|m| m.remove("data"));
    }
    v
}

fn data_is_empty(v: &Value) -> bool {
    v["data"].as_object().is_some_and(|m| m.is_empty())
}

#[test]
fn apply_entries_own_exactly_the_applied_fields_in_fields_v1() {
    let (_, managed) =
        check_apply(None, cm(json!({"a": "1"}), json!({"k": "v"})), "m1", false).expect("apply");
    assert_eq!(
        managed.encode(),
        json!([{
            "manager": "m1", "operation": "Apply", "apiVersion": "v1",
            "time": "2026-12-07T21:00:00Z", "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {"f:k": {}}, "f:metadata": {"f:labels": {"f:a": {}}}}
        }])
    );
}

#[test]
fn update_entries_own_added_parents_with_a_dot() {
    let new = cm(json!({"a": "1"}), json!({"k": "v"}));
    let managed = update(
        None,
        &new,
        ManagedFields::default(),
        &writer("kubectl-create"),
    )
    .unwrap();
    assert_eq!(
        fields_of(&managed, "kubectl-create"),
        json!({"f:data": {".": {}, "f:k": {}},
               "f:metadata": {"f:labels": {".": {}, "f:a": {}}}})
    );
    assert_eq!(managed.0[0].operation, Operation::Update);
}

#[test]
fn a_second_manager_changing_a_field_conflicts_with_kube_apiserver_message() {
    let first = check_apply(None, cm(json!({"a": "1"}), json!({"k": "v"})), "m1", false).unwrap();
    let err = check_apply(Some(&first), cm(json!({"a": "2"}), json!({})), "m2", false)
        .expect_err("conflict");
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"m1\": .metadata.labels.a"
    );
    let err = check_apply(
        Some(&first),
        cm(json!({"a": "2"}), json!({"k": "w"})),
        "m2",
        false,
    )
    .expect_err("conflicts");
    assert_eq!(
        err.to_string(),
        "Apply failed with 2 conflicts: conflicts with \"m1\":\n- .data.k\n- .metadata.labels.a"
    );
}

#[test]
fn conflicts_with_an_updater_name_its_api_version() {
    let new = cm(json!({"a": "1"}), json!({}));
    let managed = update(
        None,
        &new,
        ManagedFields::default(),
        &writer("kubectl-edit"),
    )
    .unwrap();
    let err = check_apply(
        Some(&(new, managed)),
        cm(json!({"a": "2"}), json!({})),
        "m",
        false,
    )
    .expect_err("conflict");
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"kubectl-edit\" using v1: .metadata.labels.a"
    );
}

#[test]
fn force_takes_ownership() {
    let first = check_apply(
        None,
        cm(json!({"a": "1", "b": "1"}), json!({})),
        "m1",
        false,
    )
    .unwrap();
    let (obj, managed) =
        check_apply(Some(&first), cm(json!({"a": "2"}), json!({})), "m2", true).unwrap();
    assert_eq!(obj["metadata"]["labels"], json!({"a": "2", "b": "1"}));
    assert_eq!(
        fields_of(&managed, "m1"),
        json!({"f:metadata": {"f:labels": {"f:b": {}}}})
    );
    assert_eq!(
        fields_of(&managed, "m2"),
        json!({"f:metadata": {"f:labels": {"f:a": {}}}})
    );
}

#[test]
fn the_same_value_is_shared_without_conflict_and_survives_one_owner_dropping_it() {
    let first = check_apply(None, cm(json!({"a": "1"}), json!({})), "m1", false).unwrap();
    let second = check_apply(Some(&first), cm(json!({"a": "1"}), json!({})), "m2", false)
        .expect("same value, no conflict");
    assert_eq!(fields_of(&second.1, "m1"), fields_of(&second.1, "m2"));
    let (obj, _) = check_apply(Some(&second), cm(json!({}), json!({})), "m1", false).unwrap();
    assert_eq!(
        obj["metadata"]["labels"],
        json!({"a": "1"}),
        "m2 still owns it"
    );
}

#[test]
fn fields_an_applier_stops_applying_are_removed() {
    let first = check_apply(
        None,
        cm(json!({"a": "1", "b": "2"}), json!({"k": "v", "j": "w"})),
        "m1",
        false,
    )
    .unwrap();
    let (obj, managed) = check_apply(
        Some(&first),
        cm(json!({"a": "1"}), json!({"k": "v"})),
        "m1",
        false,
    )
    .unwrap();
    assert_eq!(obj["metadata"]["labels"], json!({"a": "1"}));
    assert_eq!(obj["data"], json!({"k": "v"}));
    assert_eq!(
        fields_of(&managed, "m1"),
        json!({"f:data": {"f:k": {}}, "f:metadata": {"f:labels": {"f:a": {}}}})
    );
    // Dropping every label removes the emptied map, never the metadata.
    let config = json!({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": "c", "namespace": "n"}, "data": {"k": "v"}});
    let (obj, _) = check_apply(Some(&(obj, managed)), config, "m1", false).unwrap();
    assert_eq!(obj["metadata"], json!({"name": "c", "namespace": "n"}));
}

#[test]
fn fields_nobody_applied_stay() {
    let live = cm(json!({"x": "server"}), json!({}));
    let first = check_apply(
        Some(&(live, ManagedFields::default())),
        cm(json!({"a": "1"}), json!({})),
        "m1",
        false,
    )
    .unwrap();
    let (obj, _) = check_apply(Some(&first), cm(json!({}), json!({})), "m1", false).unwrap();
    assert_eq!(obj["metadata"]["labels"], json!({"x": "server"}));
}

fn sa(secrets: &[&str]) -> Value {
    let secrets: Vec<Value> = secrets.iter().map(|s| json!({"name": s})).collect();
    json!({"apiVersion": "v1", "kind": "ServiceAccount",
           "metadata": {"name": "s", "namespace": "n", "finalizers": ["f1"]}, "secrets": secrets})
}

#[test]
fn associative_lists_are_owned_per_key_and_merged_by_key() {
    let first = check_apply(None, sa(&["a", "b"]), "m1", false).unwrap();
    assert_eq!(
        fields_of(&first.1, "m1"),
        json!({"f:metadata": {"f:finalizers": {"v:\"f1\"": {}}},
               "f:secrets": {"k:{\"name\":\"a\"}": {}, "k:{\"name\":\"b\"}": {}}})
    );
    let second = check_apply(Some(&first), sa(&["c"]), "m2", false).expect("other keys");
    let names: Vec<&str> = second.0["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b", "c"]);
    let (obj, _) = check_apply(Some(&second), sa(&["a"]), "m1", false).unwrap();
    let names: Vec<&str> = obj["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "c"], "m1's dropped entry goes, m2's stays");
}

#[test]
fn a_list_item_without_its_key_is_an_error() {
    let config = json!({"metadata": {"name": "s"}, "secrets": [{"namespace": "x"}]});
    let err = check_apply(None, config, "m", false).expect_err("no key");
    assert!(
        matches!(err, ApplyError::MissingKey { key: "name", .. }),
        "{err:?}"
    );
}

#[test]
fn atomic_lists_are_owned_and_replaced_whole() {
    let role = |verbs: Value| json!({"metadata": {"name": "r"}, "rules": [{"verbs": verbs}]});
    let first = check_apply(None, role(json!(["get"])), "m1", false).unwrap();
    assert_eq!(fields_of(&first.1, "m1"), json!({"f:rules": {}}));
    let err = check_apply(Some(&first), role(json!(["list"])), "m2", false).expect_err("atomic");
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"m1\": .rules"
    );
}

#[test]
fn managed_fields_encode_in_kube_apiserver_order_and_decode_back() {
    let first = check_apply(None, cm(json!({"a": "1"}), json!({})), "m1", false).unwrap();
    let new = cm(json!({"a": "1"}), json!({"k": "v"}));
    let managed = update(Some(&first.0), &new, first.1, &writer("kubectl-edit")).unwrap();
    let encoded = managed.encode();
    let ops: Vec<&str> = encoded
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["operation"].as_str().unwrap())
        .collect();
    assert_eq!(ops, ["Apply", "Update"]);
    assert_eq!(ManagedFields::decode(&encoded).unwrap().encode(), encoded);
}

#[test]
fn an_unchanged_update_changes_no_entry() {
    let first = check_apply(None, cm(json!({"a": "1"}), json!({})), "m1", false).unwrap();
    let managed = update(Some(&first.0), &first.0, first.1.clone(), &writer("other")).unwrap();
    assert_eq!(managed, first.1);
}

#[test]
fn an_update_that_removes_a_field_takes_it_from_its_owner() {
    let first = check_apply(
        None,
        cm(json!({"a": "1", "b": "2"}), json!({})),
        "m1",
        false,
    )
    .unwrap();
    let new = cm(json!({"a": "1"}), json!({}));
    let managed = update(Some(&first.0), &new, first.1, &writer("kubectl-edit")).unwrap();
    assert_eq!(
        fields_of(&managed, "m1"),
        json!({"f:metadata": {"f:labels": {"f:a": {}}}})
    );
    assert_eq!(
        fields_of(&managed, "kubectl-edit"),
        Value::Null,
        "it gained nothing"
    );
}

#[test]
fn before_first_apply_owns_what_existed() {
    let live = cm(json!({"a": "1"}), json!({}));
    let managed = before_first_apply(&live, &writer("m")).unwrap();
    assert_eq!(managed.0[0].manager, "before-first-apply");
    let err = check_apply(
        Some(&(live, managed)),
        cm(json!({"a": "2"}), json!({})),
        "m",
        false,
    )
    .expect_err("conflict");
    assert!(
        err.to_string().contains("\"before-first-apply\" using v1"),
        "{err}"
    );
}

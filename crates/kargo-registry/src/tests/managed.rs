//! `metadata.managedFields` through the registry: writes record their manager, server-side
//! apply conflicts as kube-apiserver, the server's own writes keep the entries, dry runs store
//! nothing, clients' `managedFields` follow kube-apiserver's rules.

use kargo_api::resources::{CONFIGMAPS, SERVICEACCOUNTS};
use serde_json::{Value, json};

use super::{assert_status, setup};
use crate::patch::PatchType;
use crate::{Target, WriteOptions};

fn by(manager: &str) -> WriteOptions {
    WriteOptions {
        field_manager: Some(manager.to_owned()),
        ..WriteOptions::default()
    }
}

fn managers(obj: &Value) -> Vec<(String, String)> {
    obj["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e["manager"].as_str().unwrap().to_owned(),
                e["operation"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pair(m: &str, op: &str) -> (String, String) {
    (m.to_owned(), op.to_owned())
}

#[tokio::test]
async fn a_create_records_its_manager_and_a_write_without_one_keeps_the_entries() {
    let test = setup().await;
    let created = test
        .registry
        .create(
            &CONFIGMAPS,
            Some("p"),
            json!({"metadata": {"name": "c", "labels": {"a": "1"}}, "data": {"k": "v"}}),
            &by("creator"),
        )
        .await
        .unwrap();
    assert_eq!(managers(&created.object), [pair("creator", "Update")]);
    assert_eq!(
        created.object["metadata"]["managedFields"][0]["fieldsV1"],
        json!({"f:data": {".": {}, "f:k": {}}, "f:metadata": {"f:labels": {".": {}, "f:a": {}}}})
    );
    let target = Target::new(&CONFIGMAPS, Some("p"), "c");
    let updated = test
        .registry
        .update_with(target, &WriteOptions::default(), |current| {
            let mut next = current.clone();
            next["data"]["k2"] = "v2".into();
            Ok(next)
        })
        .await
        .unwrap();
    assert_eq!(
        updated["metadata"]["managedFields"],
        created.object["metadata"]["managedFields"]
    );
}

#[tokio::test]
async fn apply_conflicts_are_409s_with_field_manager_causes_and_force_wins() {
    let test = setup().await;
    let target = Target::new(&SERVICEACCOUNTS, Some("p"), "robot");
    let first = b"apiVersion: v1\nmetadata:\n  name: robot\nsecrets:\n- name: one\n";
    let written = test
        .registry
        .patch(target, PatchType::Apply, first, &by("alice"))
        .await
        .unwrap();
    assert!(written.created);
    assert_eq!(
        written.object["metadata"]["managedFields"][0]["fieldsV1"],
        json!({"f:secrets": {"k:{\"name\":\"one\"}": {}}})
    );
    let mine = b"apiVersion: v1\nmetadata:\n  name: robot\n  labels:\n    a: x\n";
    test.registry
        .patch(target, PatchType::Apply, mine, &by("bob"))
        .await
        .unwrap();
    let theirs = b"apiVersion: v1\nmetadata:\n  name: robot\n  labels:\n    a: y\n";
    let err = test
        .registry
        .patch(target, PatchType::Apply, theirs, &by("carol"))
        .await
        .unwrap_err();
    assert_status(
        &err,
        (409, "Conflict"),
        "Apply failed with 1 conflict: conflict with \"bob\": .metadata.labels.a",
    );
    let cause = &err.details.as_ref().unwrap().causes[0];
    assert_eq!(
        (
            cause.reason.as_str(),
            cause.message.as_str(),
            cause.field.as_str()
        ),
        (
            "FieldManagerConflict",
            "conflict with \"bob\"",
            ".metadata.labels.a"
        )
    );
    let forced = WriteOptions {
        force: true,
        ..by("carol")
    };
    let written = test
        .registry
        .patch(target, PatchType::Apply, theirs, &forced)
        .await
        .unwrap();
    assert_eq!(written.object["metadata"]["labels"]["a"], "y");
    assert_eq!(
        managers(&written.object),
        [pair("alice", "Apply"), pair("carol", "Apply")],
        "bob owned nothing else"
    );
}

#[tokio::test]
async fn an_apply_without_a_manager_is_kube_apiservers_422() {
    let test = setup().await;
    let target = Target::new(&SERVICEACCOUNTS, Some("p"), "robot");
    let err = test
        .registry
        .patch(
            target,
            PatchType::Apply,
            b"apiVersion: v1\nmetadata:\n  name: robot\n",
            &WriteOptions::default(),
        )
        .await
        .unwrap_err();
    assert_status(
        &err,
        (422, "Invalid"),
        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
    );
}

#[tokio::test]
async fn an_apply_of_another_version_is_kube_apiservers_400() {
    let test = setup().await;
    let target = Target::new(&SERVICEACCOUNTS, Some("p"), "robot");
    let err = test
        .registry
        .patch(
            target,
            PatchType::Apply,
            b"metadata:\n  name: robot\n",
            &by("m"),
        )
        .await
        .unwrap_err();
    assert_status(
        &err,
        (400, "BadRequest"),
        "Incorrect version specified in apply patch. Specified patch version: , expected: v1",
    );
}

#[tokio::test]
async fn a_dry_run_apply_answers_the_managed_fields_and_stores_nothing() {
    let test = setup().await;
    let target = Target::new(&SERVICEACCOUNTS, Some("p"), "robot");
    let options = WriteOptions {
        dry_run: true,
        ..by("alice")
    };
    let written = test
        .registry
        .patch(
            target,
            PatchType::Apply,
            b"apiVersion: v1\nmetadata:\n  name: robot\n  labels:\n    a: x\n",
            &options,
        )
        .await
        .unwrap();
    assert_eq!(managers(&written.object), [pair("alice", "Apply")]);
    assert!(!test.exists(&SERVICEACCOUNTS, Some("p"), "robot").await);
}

#[tokio::test]
async fn a_put_with_an_empty_managed_fields_list_clears_them_and_none_keeps_them() {
    let test = setup().await;
    let created = test
        .registry
        .create(
            &CONFIGMAPS,
            Some("p"),
            json!({"metadata": {"name": "c"}, "data": {"k": "v"}}),
            &by("creator"),
        )
        .await
        .unwrap();
    let target = Target::new(&CONFIGMAPS, Some("p"), "c");
    let mut body = created.object.clone();
    body["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("managedFields");
    body["data"]["j"] = "w".into();
    let kept = test
        .registry
        .update(target, body, &by("putter"))
        .await
        .unwrap();
    assert_eq!(
        managers(&kept.object),
        [pair("creator", "Update"), pair("putter", "Update")]
    );
    let mut body = kept.object.clone();
    body["metadata"]["managedFields"] = json!([]);
    body["data"]["i"] = "u".into();
    let cleared = test
        .registry
        .update(target, body, &by("putter"))
        .await
        .unwrap();
    assert_eq!(managers(&cleared.object), [pair("putter", "Update")]);
    assert_eq!(
        cleared.object["metadata"]["managedFields"][0]["fieldsV1"],
        json!({"f:data": {"f:i": {}}})
    );
}

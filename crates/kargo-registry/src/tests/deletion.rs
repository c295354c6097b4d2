//! Deletion with finalizers (the object stays, marked, until they are cleared) and namespaces
//! that terminate before they go.

use kargo_api::resources::{NAMESPACES, SERVICEACCOUNTS};
use serde_json::json;

use super::{account, assert_status, labelled_accounts, refused, setup, update};
use crate::delete::{FOREGROUND_FINALIZER, ORPHAN_FINALIZER};
use crate::{DeleteOptions, Deleted, Meta, Propagation, Target};

const HOLD: &str = "example.com/hold";

#[tokio::test]
async fn an_object_with_finalizers_stays_marked_until_they_are_cleared() {
    let test = setup().await;
    test.create(
        &SERVICEACCOUNTS,
        Some("p"),
        json!({"metadata": {"name": "robot", "finalizers": [HOLD]}}),
    )
    .await
    .unwrap();
    let deleted = test
        .delete(&SERVICEACCOUNTS, Some("p"), "robot")
        .await
        .unwrap();
    let Deleted::Pending(pending) = &deleted else {
        panic!("the deletion waits for its finalizer: {deleted:?}");
    };
    assert!(pending.meta_str("deletionTimestamp").is_some());
    assert_eq!(pending["metadata"]["deletionGracePeriodSeconds"], 0);
    // The response to the DELETE is the object, being deleted.
    assert_eq!(deleted.response(&SERVICEACCOUNTS), *pending);

    let stored = test
        .get(&SERVICEACCOUNTS, Some("p"), "robot")
        .await
        .unwrap();
    assert!(stored.is_deleting());
    assert_eq!(stored.finalizers(), [HOLD]);

    // A second delete changes nothing; a create of the name says why it fails.
    let again = test
        .delete(&SERVICEACCOUNTS, Some("p"), "robot")
        .await
        .unwrap();
    assert!(matches!(again, Deleted::Pending(_)));
    assert_eq!(again.object().resource_version(), stored.resource_version());
    refused(
        test.create(
            &SERVICEACCOUNTS,
            Some("p"),
            json!({"metadata": {"name": "robot"}}),
        ),
        (409, "AlreadyExists"),
        "object is being deleted: serviceaccounts \"robot\" already exists",
    )
    .await;

    // The update that clears the finalizers removes the object.
    let mut cleared = stored.clone();
    cleared["metadata"]["finalizers"] = json!([]);
    update(&test, &SERVICEACCOUNTS, Some("p"), cleared)
        .await
        .unwrap();
    assert!(!test.exists(&SERVICEACCOUNTS, Some("p"), "robot").await);
}

#[tokio::test]
async fn deletion_timestamp_cannot_be_set_or_cleared_by_an_update() {
    let test = setup().await;
    let created = test
        .create(
            &SERVICEACCOUNTS,
            Some("p"),
            json!({"metadata": {"name": "robot", "finalizers": [HOLD]}}),
        )
        .await
        .unwrap();
    let mut marked = created.clone();
    marked["metadata"]["deletionTimestamp"] = json!("2020-01-01T00:00:00Z");
    let written = update(&test, &SERVICEACCOUNTS, Some("p"), marked)
        .await
        .unwrap();
    assert!(!written.is_deleting());
}

#[tokio::test]
async fn orphan_and_foreground_deletions_wait_with_their_finalizer() {
    let test = setup().await;
    for (name, propagation, finalizer) in [
        ("orphaning", Propagation::Orphan, ORPHAN_FINALIZER),
        ("foreground", Propagation::Foreground, FOREGROUND_FINALIZER),
    ] {
        account(&test, name).await;
        let options = DeleteOptions {
            propagation_policy: Some(propagation),
            ..DeleteOptions::default()
        };
        let deleted = test
            .registry
            .delete(Target::new(&SERVICEACCOUNTS, Some("p"), name), &options)
            .await
            .unwrap();
        assert!(matches!(deleted, Deleted::Pending(_)), "{name}");
        let stored = test.get(&SERVICEACCOUNTS, Some("p"), name).await.unwrap();
        assert_eq!(stored.finalizers(), [finalizer]);
        assert!(stored.is_deleting());
    }
}

#[tokio::test]
async fn a_namespace_terminates_and_goes_once_finalized() {
    let test = setup().await;
    account(&test, "robot").await;
    let deleted = test.delete(&NAMESPACES, None, "p").await.unwrap();
    let Deleted::Pending(ns) = &deleted else {
        panic!("a namespace terminates first: {deleted:?}");
    };
    assert_eq!(ns["status"]["phase"], "Terminating");
    assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));

    let err = refused(
        test.create(&SERVICEACCOUNTS, Some("p"), json!({"metadata": {"name": "late"}})),
        (403, "Forbidden"),
        "serviceaccounts \"late\" is forbidden: unable to create new content in namespace p because it is being terminated",
    )
    .await;
    assert_eq!(
        super::causes(&err),
        [(
            "NamespaceTerminating".to_owned(),
            "metadata.namespace".to_owned()
        )]
    );

    let err = test.delete(&NAMESPACES, None, "p").await.unwrap_err();
    assert_status(
        &err,
        (409, "Conflict"),
        "Operation cannot be fulfilled on namespaces \"p\": The system is ensuring all content is removed from this namespace.  Upon completion, this namespace will automatically be purged by the system.",
    );

    test.registry
        .finalize_namespace("p", Vec::new())
        .await
        .unwrap();
    assert!(!test.exists(&NAMESPACES, None, "p").await);
}

#[tokio::test]
async fn system_namespaces_cannot_be_deleted() {
    let test = crate::testing::TestRegistry::with_namespaces(&["default"]).await;
    let err = test.delete(&NAMESPACES, None, "default").await.unwrap_err();
    assert_status(
        &err,
        (403, "Forbidden"),
        "namespaces \"default\" is forbidden: this namespace may not be deleted",
    );
}

#[tokio::test]
async fn delete_collection_deletes_what_matches() {
    let test = setup().await;
    labelled_accounts(&test, &[("a", "x"), ("b", "y"), ("c", "x")]).await;
    let selectors =
        crate::ListOptions::with_selectors(&SERVICEACCOUNTS, Some("team=x"), None).unwrap();
    let deleted = test
        .registry
        .delete_collection(
            &SERVICEACCOUNTS,
            Some("p"),
            &selectors,
            &DeleteOptions::default(),
        )
        .await
        .unwrap();
    let names: Vec<&str> = deleted.items.iter().map(|o| o.name()).collect();
    assert_eq!(names, ["a", "c"]);
    assert!(!test.exists(&SERVICEACCOUNTS, Some("p"), "a").await);
    assert!(test.exists(&SERVICEACCOUNTS, Some("p"), "b").await);
}

//! Create, get, update and delete of one object: resourceVersion conflicts, generateName, name
//! validation, what the server owns.

use kargo_api::resources::{NAMESPACES, PROJECTS, ROLES, SERVICEACCOUNTS};
use serde_json::json;

use super::{account, assert_status, causes, create_err, refused, rv, setup, update};
use crate::delete::{DeleteOptions, Preconditions};
use crate::{Deleted, Meta, Target};

const STALE: &str = "Operation cannot be fulfilled on serviceaccounts \"robot\": the object has been modified; please apply your changes to the latest version and try again";

#[tokio::test]
async fn an_update_with_a_stale_resource_version_is_a_409_conflict() {
    let test = setup().await;
    let created = account(&test, "robot").await;
    let first_rv = created.resource_version().to_owned();
    assert!(!created.uid().is_empty());
    assert!(created.meta_str("creationTimestamp").is_some());

    let mut next = created.clone();
    next["metadata"]["labels"] = json!({"team": "a"});
    let updated = update(&test, &SERVICEACCOUNTS, Some("p"), next)
        .await
        .unwrap();
    assert!(rv(&updated) > rv(&created));
    assert_eq!(updated.uid(), created.uid());

    let mut stale = created.clone();
    stale["metadata"]["labels"] = json!({"team": "b"});
    refused(
        update(&test, &SERVICEACCOUNTS, Some("p"), stale),
        (409, "Conflict"),
        STALE,
    )
    .await;

    let read = test
        .get(&SERVICEACCOUNTS, Some("p"), "robot")
        .await
        .unwrap();
    assert_eq!(read.label("team"), Some("a"));
    assert_eq!(read.resource_version(), updated.resource_version());
    assert_ne!(read.resource_version(), first_rv);
}

#[tokio::test]
async fn an_unchanged_update_writes_nothing_and_keeps_the_resource_version() {
    let test = setup().await;
    let created = account(&test, "robot").await;
    let same = update(&test, &SERVICEACCOUNTS, Some("p"), created.clone())
        .await
        .unwrap();
    assert_eq!(same.resource_version(), created.resource_version());
}

#[tokio::test]
async fn server_owned_metadata_is_dropped_on_create_and_kept_on_update() {
    let test = setup().await;
    let created = test
        .create(
            &SERVICEACCOUNTS,
            Some("p"),
            json!({"metadata": {"name": "robot", "uid": "mine", "creationTimestamp": "2000-01-01T00:00:00Z"}}),
        )
        .await
        .unwrap();
    assert_ne!(created.uid(), "mine");
    assert_ne!(
        created.meta_str("creationTimestamp"),
        Some("2000-01-01T00:00:00Z")
    );
    let mut next = created.clone();
    next["metadata"]["uid"] = json!("other");
    let updated = update(&test, &SERVICEACCOUNTS, Some("p"), next)
        .await
        .unwrap();
    assert_eq!(updated.uid(), created.uid());
}

#[tokio::test]
async fn creating_a_name_that_exists_is_a_409_already_exists() {
    let test = setup().await;
    let body = json!({"metadata": {"name": "robot"}});
    test.create(&SERVICEACCOUNTS, Some("p"), body.clone())
        .await
        .unwrap();
    refused(
        test.create(&SERVICEACCOUNTS, Some("p"), body),
        (409, "AlreadyExists"),
        "serviceaccounts \"robot\" already exists",
    )
    .await;
}

#[tokio::test]
async fn a_create_may_not_carry_a_resource_version_or_another_namespace() {
    let test = setup().await;
    for (metadata, message) in [
        (
            json!({"name": "robot", "resourceVersion": "5"}),
            "resourceVersion should not be set on objects to be created",
        ),
        (
            json!({"name": "robot", "namespace": "q"}),
            "the namespace of the provided object does not match the namespace sent on the request",
        ),
    ] {
        let body = json!({ "metadata": metadata });
        refused(
            test.create(&SERVICEACCOUNTS, Some("p"), body),
            (400, "BadRequest"),
            message,
        )
        .await;
    }
}

#[tokio::test]
async fn content_needs_an_existing_namespace() {
    let test = setup().await;
    refused(
        test.create(
            &SERVICEACCOUNTS,
            Some("nope"),
            json!({"metadata": {"name": "robot"}}),
        ),
        (404, "NotFound"),
        "namespaces \"nope\" not found",
    )
    .await;
}

#[tokio::test]
async fn generate_name_draws_a_fresh_valid_name_each_time() {
    let test = setup().await;
    let body = json!({"metadata": {"generateName": "robot-"}});
    let a = test
        .create(&SERVICEACCOUNTS, Some("p"), body.clone())
        .await
        .unwrap();
    let b = test
        .create(&SERVICEACCOUNTS, Some("p"), body)
        .await
        .unwrap();
    for obj in [&a, &b] {
        assert!(obj.name().starts_with("robot-"), "{}", obj.name());
        assert_eq!(obj.name().len(), "robot-".len() + 5);
        assert_eq!(obj.meta_str("generateName"), Some("robot-"));
    }
    assert_ne!(a.name(), b.name());
    assert!(test.exists(&SERVICEACCOUNTS, Some("p"), a.name()).await);

    // The base is validated as part of the generated name.
    let err = create_err(
        &test,
        &SERVICEACCOUNTS,
        Some("p"),
        json!({"metadata": {"generateName": "Robot-"}}),
    )
    .await;
    assert_eq!((err.code, err.reason), (422, "Invalid"));
    assert_eq!(
        causes(&err),
        [
            (
                "FieldValueInvalid".to_owned(),
                "metadata.generateName".to_owned()
            ),
            ("FieldValueInvalid".to_owned(), "metadata.name".to_owned())
        ]
    );
}

#[tokio::test]
async fn a_name_is_required_unless_generate_name_is_given() {
    let test = setup().await;
    refused(
        test.create(&SERVICEACCOUNTS, Some("p"), json!({"metadata": {}})),
        (422, "Invalid"),
        "ServiceAccount \"\" is invalid: metadata.name: Required value: name or generateName is required",
    )
    .await;
}

#[tokio::test]
async fn names_are_checked_by_the_rule_of_their_kind() {
    let test = setup().await;
    let invalid = (422, "Invalid");
    let err = refused(
        test.create(&SERVICEACCOUNTS, Some("p"), json!({"metadata": {"name": "Bad_Name"}})),
        invalid,
        "ServiceAccount \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
    )
    .await;
    let details = err.details.as_ref().unwrap();
    assert_eq!(
        (details.name.as_str(), details.kind.as_str()),
        ("Bad_Name", "ServiceAccount")
    );

    // Namespaces are DNS labels: no dots.
    refused(
        test.create(&NAMESPACES, None, json!({"metadata": {"name": "bad.name"}})),
        invalid,
        "Namespace \"bad.name\" is invalid: metadata.name: Invalid value: \"bad.name\": must not contain dots",
    )
    .await;

    // RBAC names are path segments: anything but `/`, `%`, `.` and `..`.
    test.create_named(&ROLES, Some("p"), "Odd:Name").await;
    refused(
        test.create(&ROLES, Some("p"), json!({"metadata": {"name": "a/b"}})),
        invalid,
        "Role.rbac.authorization.k8s.io \"a/b\" is invalid: metadata.name: Invalid value: \"a/b\": may not contain '/'",
    )
    .await;
}

#[tokio::test]
async fn an_update_may_not_rename_the_object() {
    let test = setup().await;
    let created = account(&test, "robot").await;
    let err = test
        .registry
        .update(
            Target::new(&SERVICEACCOUNTS, Some("p"), "other"),
            created,
            &crate::WriteOptions::default(),
        )
        .await
        .unwrap_err();
    assert_status(
        &err,
        (400, "BadRequest"),
        "the name of the object (robot) does not match the name on the URL (other)",
    );
}

#[tokio::test]
async fn a_kargo_kind_needs_a_resource_version_to_be_updated() {
    let test = setup().await;
    test.create(
        &PROJECTS,
        None,
        json!({"metadata": {"name": "shop"}, "spec": {}}),
    )
    .await
    .unwrap();
    let unversioned = json!({"apiVersion": "kargo.akuity.io/v1alpha1", "kind": "Project", "metadata": {"name": "shop"}});
    refused(
        update(&test, &PROJECTS, None, unversioned),
        (422, "Invalid"),
        "Project.kargo.akuity.io \"shop\" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update",
    )
    .await;
}

#[tokio::test]
async fn delete_checks_preconditions_then_the_object_is_gone() {
    let test = setup().await;
    let created = account(&test, "robot").await;
    let target = Target::new(&SERVICEACCOUNTS, Some("p"), "robot");
    for (uid, resource_version, message) in [
        (
            None,
            Some("1"),
            format!(
                "Operation cannot be fulfilled on serviceaccounts \"robot\": Precondition failed: ResourceVersion in precondition: 1, ResourceVersion in object meta: {}",
                created.resource_version()
            ),
        ),
        (
            Some("x"),
            None,
            format!(
                "Operation cannot be fulfilled on serviceaccounts \"robot\": Precondition failed: UID in precondition: x, UID in object meta: {}",
                created.uid()
            ),
        ),
    ] {
        let options = DeleteOptions {
            preconditions: Some(Preconditions {
                uid: uid.map(str::to_owned),
                resource_version: resource_version.map(str::to_owned),
            }),
            ..DeleteOptions::default()
        };
        let err = test.registry.delete(target, &options).await.unwrap_err();
        assert_status(&err, (409, "Conflict"), &message);
    }

    let deleted = test
        .delete(&SERVICEACCOUNTS, Some("p"), "robot")
        .await
        .unwrap();
    let Deleted::Gone(gone) = &deleted else {
        panic!("deleted at once: {deleted:?}");
    };
    assert_eq!(gone.uid(), created.uid());
    assert!(rv(gone) > rv(&created), "the deletion's revision");
    assert!(!test.exists(&SERVICEACCOUNTS, Some("p"), "robot").await);
    let err = test
        .delete(&SERVICEACCOUNTS, Some("p"), "robot")
        .await
        .unwrap_err();
    assert_status(
        &err,
        (404, "NotFound"),
        "serviceaccounts \"robot\" not found",
    );
}

#[tokio::test]
async fn a_dry_run_answers_like_a_write_and_stores_nothing() {
    let test = setup().await;
    let options = crate::WriteOptions {
        dry_run: true,
        ..crate::WriteOptions::default()
    };
    let written = test
        .registry
        .create(
            &SERVICEACCOUNTS,
            Some("p"),
            json!({"metadata": {"name": "robot"}}),
            &options,
        )
        .await
        .unwrap();
    assert_eq!(written.object.name(), "robot");
    assert!(!written.object.uid().is_empty());
    assert!(!test.exists(&SERVICEACCOUNTS, Some("p"), "robot").await);
}

#[tokio::test]
async fn an_object_over_the_size_limit_is_refused_on_every_write_path() {
    let dir = crate::testing::TestRegistry::with_namespaces(&["p"]).await;
    let registry = dir.registry.clone().with_max_object_bytes(400);
    let big = "x".repeat(500);
    let err = registry
        .create(
            &SERVICEACCOUNTS,
            Some("p"),
            json!({"metadata": {"name": "robot", "annotations": {"a": big}}}),
            &crate::WriteOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!((err.code, err.reason), (413, "RequestEntityTooLarge"));
    assert!(
        err.message
            .starts_with("Request entity too large: the object would be larger than 400 bytes"),
        "{}",
        err.message
    );
    // The same bound holds for an update.
    let created = account(&dir, "robot").await;
    let mut next = created.clone();
    next["metadata"]["annotations"] = json!({"a": big});
    let err = registry
        .update(
            Target::new(&SERVICEACCOUNTS, Some("p"), "robot"),
            next,
            &crate::WriteOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, 413);
}

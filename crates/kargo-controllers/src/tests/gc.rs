//! Garbage collection of owner references, driven by the informer.

use kargo_api::resources::{CONFIGMAPS, SERVICEACCOUNTS};
use kargo_registry::testing::eventually;
use kargo_registry::{DeleteOptions, Deleted, Meta, Object, Propagation, Target, WriteOptions};
use serde_json::{Value, json};

use super::{Controllers, start};

/// An owner reference to a ServiceAccount.
fn owned_by(owner: &Object) -> Value {
    json!({"apiVersion": "v1", "kind": "ServiceAccount", "name": owner.name(), "uid": owner.uid()})
}

async fn owner(test: &Controllers, name: &str) -> Object {
    test.create_named(&SERVICEACCOUNTS, Some("p"), name).await
}

async fn dependent(test: &Controllers, name: &str, owners: Value, finalizers: Value) -> Object {
    test.create(
        &CONFIGMAPS,
        Some("p"),
        json!({"metadata": {"name": name, "ownerReferences": owners, "finalizers": finalizers}}),
    )
    .await
    .unwrap()
}

async fn delete_owner(test: &Controllers, name: &str, propagation: Propagation) -> Deleted {
    let options = DeleteOptions {
        propagation_policy: Some(propagation),
        ..DeleteOptions::default()
    };
    test.registry
        .delete(Target::new(&SERVICEACCOUNTS, Some("p"), name), &options)
        .await
        .unwrap()
}

async fn gone(test: &Controllers, rt: &'static kargo_api::resources::ResourceType, name: &str) {
    test.eventually_gone(rt, Some("p"), name).await;
}

#[tokio::test]
async fn a_background_deletion_deletes_the_dependents() {
    let test = start().await;
    let o = owner(&test, "owner").await;
    dependent(&test, "dep", json!([owned_by(&o)]), json!([])).await;
    let deleted = delete_owner(&test, "owner", Propagation::Background).await;
    assert!(matches!(deleted, Deleted::Gone(_)), "{deleted:?}");
    gone(&test, &CONFIGMAPS, "dep").await;
}

#[tokio::test]
async fn an_orphaning_deletion_keeps_the_dependents_without_the_reference() {
    let test = start().await;
    let o = owner(&test, "owner").await;
    let other = owner(&test, "other").await;
    dependent(
        &test,
        "dep",
        json!([owned_by(&o), owned_by(&other)]),
        json!([]),
    )
    .await;
    let deleted = delete_owner(&test, "owner", Propagation::Orphan).await;
    assert!(matches!(deleted, Deleted::Pending(_)), "{deleted:?}");
    // The owner goes once its dependents are orphaned.
    gone(&test, &SERVICEACCOUNTS, "owner").await;
    let dep = test.get(&CONFIGMAPS, Some("p"), "dep").await.unwrap();
    let owners: Vec<String> = dep.owner_references().into_iter().map(|o| o.name).collect();
    assert_eq!(owners, ["other"]);
    assert!(!dep.is_deleting());
}

#[tokio::test]
async fn a_foreground_deletion_waits_for_the_dependents() {
    let test = start().await;
    let o = owner(&test, "owner").await;
    dependent(
        &test,
        "dep",
        json!([owned_by(&o)]),
        json!(["example.com/hold"]),
    )
    .await;
    let deleted = delete_owner(&test, "owner", Propagation::Foreground).await;
    assert!(matches!(deleted, Deleted::Pending(_)), "{deleted:?}");
    // The dependent is deleted in the foreground too (its `foregroundDeletion` goes at once:
    // it has no dependents); its own finalizer holds it, and it holds the owner.
    let dep = eventually("the dependent to be marked", || async {
        test.get(&CONFIGMAPS, Some("p"), "dep")
            .await
            .filter(|d| d.is_deleting() && d.finalizers() == ["example.com/hold"])
    })
    .await;
    let held = test
        .get(&SERVICEACCOUNTS, Some("p"), "owner")
        .await
        .unwrap();
    assert!(held.is_deleting());
    assert_eq!(held.finalizers(), ["foregroundDeletion"]);

    let mut released = dep.clone();
    released["metadata"]["finalizers"] = json!([]);
    test.registry
        .update(
            Target::new(&CONFIGMAPS, Some("p"), "dep"),
            released,
            &WriteOptions::default(),
        )
        .await
        .unwrap();
    gone(&test, &CONFIGMAPS, "dep").await;
    gone(&test, &SERVICEACCOUNTS, "owner").await;
}

#[tokio::test]
async fn a_dependent_whose_owners_are_all_gone_is_deleted_and_a_dangling_reference_dropped() {
    let test = start().await;
    let live = owner(&test, "live").await;
    let ghost = json!({"apiVersion": "v1", "kind": "ServiceAccount", "name": "ghost", "uid": "no-such-uid"});
    dependent(&test, "orphan", json!([ghost.clone()]), json!([])).await;
    dependent(&test, "half", json!([ghost, owned_by(&live)]), json!([])).await;
    gone(&test, &CONFIGMAPS, "orphan").await;
    let half = eventually("the dangling reference to go", || async {
        test.get(&CONFIGMAPS, Some("p"), "half")
            .await
            .filter(|d| d.owner_references().len() == 1)
    })
    .await;
    assert_eq!(half.owner_references()[0].uid, live.uid());
}

//! The registry's in-process tests (the fast tier): each drives a real [`Registry`] over a
//! temporary SQLite store ([`crate::testing::TestRegistry`]) and asserts what a client of the
//! Kubernetes API would see: status codes, reasons, kube-apiserver's exact messages, fields.
//!
//! - `objects`: create, get, update, delete; resourceVersion conflicts; generateName; names;
//! - `lists`: label and field selectors, `limit` and `continue`;
//! - `watches`: events from a revision, selectors, expired revisions;
//! - `deletion`: finalizers, namespaces that terminate;
//! - `managed`: `metadata.managedFields` and server-side apply;
//! - `strategies`: the rules of each kind.

// Tests: a failed step should fail the test with its reason.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod deletion;
mod lists;
mod managed;
mod objects;
mod strategies;
mod watches;

use kargo_api::resources::ResourceType;
use serde_json::Value;

use kargo_api::resources::SERVICEACCOUNTS;

use crate::status::Status;
use crate::testing::TestRegistry;
use crate::{Object, Target, WriteOptions};

/// A store with the namespace `p`, where most tests work.
async fn setup() -> TestRegistry {
    TestRegistry::with_namespaces(&["p"]).await
}

/// Creates an object, expecting a failure; returns it.
async fn create_err(
    test: &TestRegistry,
    rt: &'static ResourceType,
    namespace: Option<&str>,
    body: Value,
) -> Status {
    test.create(rt, namespace, body)
        .await
        .expect_err("the create to fail")
}

/// Awaits `write`, expecting the refusal `(code, reason)` with `message`; returns it.
async fn refused<T: std::fmt::Debug>(
    write: impl Future<Output = crate::status::Result<T>>,
    expected: (u16, &str),
    message: &str,
) -> Status {
    let err = write.await.expect_err("the write to fail");
    assert_status(&err, expected, message);
    err
}

/// Asserts a Status's `(code, reason)` and its exact message.
#[track_caller]
fn assert_status(err: &Status, (code, reason): (u16, &str), message: &str) {
    assert_eq!((err.code, err.reason), (code, reason), "{}", err.message);
    assert_eq!(err.message, message);
}

/// Creates the ServiceAccount `p/name`.
async fn account(test: &TestRegistry, name: &str) -> Object {
    test.create_named(&SERVICEACCOUNTS, Some("p"), name).await
}

/// Creates the ServiceAccounts `p/name` labelled `team`, for each `(name, team)`.
async fn labelled_accounts(test: &TestRegistry, teams: &[(&str, &str)]) {
    for (name, team) in teams {
        test.create(
            &SERVICEACCOUNTS,
            Some("p"),
            serde_json::json!({"metadata": {"name": name, "labels": {"team": team}}}),
        )
        .await
        .unwrap();
    }
}

/// Replaces an object (PUT) with default options.
async fn update(
    test: &TestRegistry,
    rt: &'static ResourceType,
    namespace: Option<&str>,
    body: Value,
) -> crate::status::Result<Value> {
    let name = crate::Meta::name(&body).to_owned();
    test.registry
        .update(
            Target::new(rt, namespace, &name),
            body,
            &WriteOptions::default(),
        )
        .await
        .map(|w| w.object)
}

/// The `(reason, field)` of each cause of a Status.
fn causes(status: &Status) -> Vec<(String, String)> {
    status
        .details
        .as_ref()
        .map(|d| {
            d.causes
                .iter()
                .map(|c| (c.reason.clone(), c.field.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// The resourceVersion of an object as a number.
fn rv(obj: &Value) -> i64 {
    crate::Meta::resource_version(obj).parse().unwrap()
}

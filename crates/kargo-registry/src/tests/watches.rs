//! Watch: every change after a revision, in order, as a watcher with selectors sees it.

use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use kargo_api::resources::SERVICEACCOUNTS;
use serde_json::{Value, json};

use super::{account, rv, setup, update};
use crate::testing::TestRegistry;
use crate::watch::watch;
use crate::{ListOptions, Meta, WatchEvent, WatchEventType, WatchOptions};

/// The next `n` events, each within a second.
async fn next(events: &mut BoxStream<'static, WatchEvent>, n: usize) -> Vec<WatchEvent> {
    let mut out = Vec::new();
    for _ in 0..n {
        let event = tokio::time::timeout(Duration::from_secs(1), events.next())
            .await
            .expect("an event in time")
            .expect("the stream to go on");
        out.push(event);
    }
    out
}

fn kinds(events: &[WatchEvent]) -> Vec<(WatchEventType, &str)> {
    events.iter().map(|e| (e.kind, e.object.name())).collect()
}

/// Updates the ServiceAccount `account` to carry only the label `team`; the written object.
async fn relabel(test: &TestRegistry, account: &Value, team: &str) -> Value {
    let mut next = account.clone();
    next["metadata"]["labels"] = json!({ "team": team });
    update(test, &SERVICEACCOUNTS, Some("p"), next)
        .await
        .unwrap()
}

async fn watch_from(
    test: &TestRegistry,
    revision: i64,
    label: Option<&str>,
) -> BoxStream<'static, WatchEvent> {
    let mut list = ListOptions::with_selectors(&SERVICEACCOUNTS, label, None).unwrap();
    list.resource_version = Some(revision.to_string());
    watch(
        &test.registry,
        &SERVICEACCOUNTS,
        Some("p"),
        WatchOptions {
            list,
            ..WatchOptions::default()
        },
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn a_watch_from_a_revision_delivers_added_modified_deleted_in_order() {
    let test = setup().await;
    let start = test.store.current_revision().await.unwrap().0;
    let mut events = watch_from(&test, start, None).await;

    let created = account(&test, "robot").await;
    relabel(&test, &created, "a").await;
    test.delete(&SERVICEACCOUNTS, Some("p"), "robot")
        .await
        .unwrap();

    let got = next(&mut events, 3).await;
    assert_eq!(
        kinds(&got),
        [
            (WatchEventType::Added, "robot"),
            (WatchEventType::Modified, "robot"),
            (WatchEventType::Deleted, "robot"),
        ]
    );
    assert_eq!(got[0].object.resource_version(), created.resource_version());
    assert_eq!(got[1].object.label("team"), Some("a"));
    assert!(rv(&got[0].object) < rv(&got[1].object));
    assert!(rv(&got[1].object) < rv(&got[2].object));
    assert_eq!(got[2].to_json()["type"], "DELETED");
}

#[tokio::test]
async fn a_watch_from_an_earlier_revision_replays_what_happened_since() {
    let test = setup().await;
    let start = test.store.current_revision().await.unwrap().0;
    account(&test, "a").await;
    account(&test, "b").await;
    let mut events = watch_from(&test, start, None).await;
    assert_eq!(
        kinds(&next(&mut events, 2).await),
        [(WatchEventType::Added, "a"), (WatchEventType::Added, "b")]
    );
}

#[tokio::test]
async fn objects_entering_and_leaving_a_selector_are_added_and_deleted() {
    let test = setup().await;
    let start = test.store.current_revision().await.unwrap().0;
    let mut events = watch_from(&test, start, Some("team=x")).await;
    let created = account(&test, "robot").await;
    let labelled = relabel(&test, &created, "x").await;
    relabel(&test, &labelled, "y").await;
    let got = next(&mut events, 2).await;
    assert_eq!(
        kinds(&got),
        [
            (WatchEventType::Added, "robot"),
            (WatchEventType::Deleted, "robot"),
        ]
    );
    // A DELETED for an object leaving the selector carries its new state.
    assert_eq!(got[1].object.label("team"), Some("y"));
}

#[tokio::test]
async fn a_watch_without_a_revision_starts_with_the_current_objects() {
    let test = setup().await;
    account(&test, "a").await;
    let mut events = watch(
        &test.registry,
        &SERVICEACCOUNTS,
        Some("p"),
        WatchOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        kinds(&next(&mut events, 1).await),
        [(WatchEventType::Added, "a")]
    );
    account(&test, "b").await;
    assert_eq!(
        kinds(&next(&mut events, 1).await),
        [(WatchEventType::Added, "b")]
    );
}

#[tokio::test]
async fn a_watch_from_a_compacted_revision_is_one_410_error_then_the_end() {
    let test = setup().await;
    let old = test.store.current_revision().await.unwrap().0;
    let created = account(&test, "a").await;
    let compacted = kargo_store::Revision(rv(&created));
    test.store.compact(compacted).await.unwrap();
    // SQLite compacts in the background, in chunks.
    crate::testing::eventually("the compaction", || async {
        (test.store.compacted_revision().await.unwrap() >= compacted).then_some(())
    })
    .await;
    let mut events = watch_from(&test, old, None).await;
    let got = next(&mut events, 1).await;
    assert_eq!(got[0].kind, WatchEventType::Error);
    assert_eq!(got[0].object["code"], 410);
    assert_eq!(got[0].object["reason"], "Expired");
    assert!(
        got[0].object["message"]
            .as_str()
            .unwrap()
            .starts_with("too old resource version: "),
        "{}",
        got[0].object
    );
    assert!(events.next().await.is_none(), "an ERROR ends the stream");
}

/// The options of a watch with these query parameters set.
fn options(
    send_initial_events: Option<bool>,
    allow_bookmarks: bool,
    resource_version_match: Option<&str>,
) -> WatchOptions {
    WatchOptions {
        list: ListOptions {
            resource_version_match: resource_version_match.map(str::to_owned),
            ..ListOptions::default()
        },
        allow_bookmarks,
        send_initial_events,
        ..WatchOptions::default()
    }
}

#[tokio::test]
async fn options_that_do_not_go_together_are_kube_apiservers_422() {
    let test = setup().await;
    let cases = [
        (
            options(Some(true), false, Some("NotOlderThan")),
            "ListOptions.meta.k8s.io \"\" is invalid: allowWatchBookmarks: Forbidden: sendInitialEvents requires setting allowWatchBookmarks to true",
        ),
        (
            options(Some(true), true, None),
            "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
        ),
        (
            options(None, true, Some("NotOlderThan")),
            "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
        ),
        (
            options(Some(false), true, Some("Exact")),
            "ListOptions.meta.k8s.io \"\" is invalid: [resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan, resourceVersionMatch: Unsupported value: \"Exact\": supported values: \"NotOlderThan\"]",
        ),
    ];
    for (options, message) in cases {
        let status = watch(&test.registry, &SERVICEACCOUNTS, Some("p"), options)
            .await
            .err()
            .expect("refused");
        assert_eq!(
            (status.code, status.reason, status.message.as_str()),
            (422, "Invalid", message)
        );
        let details = status.details.expect("details");
        assert_eq!(
            (details.group.as_str(), details.kind.as_str()),
            ("meta.k8s.io", "ListOptions")
        );
    }
    // The streaming list asked for properly starts with the objects, then its bookmark.
    account(&test, "a").await;
    let mut events = watch(
        &test.registry,
        &SERVICEACCOUNTS,
        Some("p"),
        options(Some(true), true, Some("NotOlderThan")),
    )
    .await
    .unwrap();
    let got = next(&mut events, 2).await;
    assert_eq!(
        kinds(&got),
        [(WatchEventType::Added, "a"), (WatchEventType::Bookmark, "")]
    );
}

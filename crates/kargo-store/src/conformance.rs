//! The backend conformance suite: every [`Store`] contract as a test, written once against
//! `&dyn Store`, run by each backend's test file through [`conformance_tests!`](crate::conformance_tests).
//!
//! ```text
//! kargo_store::conformance_tests!(async {
//!     let dir = tempfile::tempdir().unwrap();
//!     let store = SqliteStore::open(&dir.path().join("store.db")).unwrap();
//!     (store, dir) // the second element lives as long as the test; `()` if nothing needs to
//! });
//! ```
//!
//! The macro expands to one `#[tokio::test]` per case (the calling crate needs `tokio` with the
//! `macros` and `rt-multi-thread` features), so each case shows up by name.
//!
//! The suite assumes nothing a shared etcd would break: revisions need not start at 1 (each case
//! records the current revision first and reasons relative to it), and the store may hold other
//! keys (each case writes under its own fresh prefix). Cases that need the revision counter to
//! themselves, or that compact, hold an exclusive lock that keeps the other cases of the same test
//! binary out while they run.

// Test support: a failed step should fail the test with its error, which is what unwrap does.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::{
    Error, Event, EventKind, KeyValue, ListPage, ListRequest, Revision, Store, WatchStream,
};

/// Expands to one `#[tokio::test]` per conformance case. The argument is an expression (usually an
/// `async` block) that evaluates to a future of `(store, guard)`: a fresh store, and a value kept
/// alive until the test ends (a temp dir, or `()`).
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::__conformance_cases!(
            $make;
            create_then_get_returns_the_value_with_equal_create_and_mod_revisions,
            create_of_a_present_key_fails_with_already_exists_and_the_current_value,
            get_of_an_absent_key_returns_none,
            update_with_the_current_revision_replaces_the_value_and_keeps_the_create_revision,
            update_with_a_stale_revision_fails_with_conflict_and_the_current_value,
            update_and_delete_of_an_absent_or_deleted_key_fail_with_not_found,
            delete_returns_the_last_value_stamped_with_the_deletion_revision,
            delete_with_a_stale_revision_fails_with_conflict_and_keeps_the_key,
            recreating_a_deleted_key_gives_it_a_new_create_revision,
            every_successful_write_increments_the_revision_by_exactly_one,
            list_returns_the_keys_under_the_prefix_in_bytewise_order,
            list_leaves_out_deleted_keys,
            list_pages_with_limit_more_and_start_after,
            list_at_an_older_revision_returns_that_snapshot,
            list_at_a_future_revision_fails_with_future_revision,
            watch_replays_every_event_after_the_revision_in_order_then_live_events,
            watch_delivers_only_keys_under_its_prefix,
            watch_events_carry_their_kind_and_previous_value,
            watch_from_the_current_revision_delivers_only_later_events,
            concurrent_writes_get_distinct_revisions_and_a_watcher_sees_each_once_in_order,
            concurrent_updates_with_the_same_expected_revision_let_exactly_one_win,
            a_watcher_that_stops_reading_for_a_while_still_gets_every_event,
            compaction_makes_reads_and_watches_below_it_fail_with_compacted,
            compaction_keeps_live_keys_and_drops_deleted_ones,
            compacting_again_at_the_compacted_revision_succeeds_and_below_it_fails,
        );
    };
}

/// The expansion of [`conformance_tests!`](crate::conformance_tests); not for direct use.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_cases {
    ($make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (store, _guard) = $make.await;
                $crate::conformance::$case(&store).await;
            }
        )*
    };
}

/// Orders cases within one test binary: most share it, the ones that need the revision counter
/// to themselves (or compact) take it exclusively. A tokio lock works across the per-test runtimes.
static SERIAL: RwLock<()> = RwLock::const_new(());

async fn shared() -> RwLockReadGuard<'static, ()> {
    SERIAL.read().await
}

async fn exclusive() -> RwLockWriteGuard<'static, ()> {
    SERIAL.write().await
}

/// A key prefix no other case or earlier run has used.
fn prefix(case: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("/conformance/{case}/{nanos}-{n}/")
}

/// How long a watch may take to deliver an event before the case fails.
const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long to wait to be reasonably sure no further event is coming.
const QUIET: Duration = Duration::from_millis(200);

async fn next_event(stream: &mut WatchStream) -> Event {
    match tokio::time::timeout(EVENT_TIMEOUT, stream.next()).await {
        Ok(Some(Ok(event))) => event,
        Ok(Some(Err(error))) => panic!("the watch failed: {error}"),
        Ok(None) => panic!("the watch ended"),
        Err(_) => panic!("no event within {EVENT_TIMEOUT:?}"),
    }
}

async fn next_events(stream: &mut WatchStream, n: usize) -> Vec<Event> {
    let mut events = Vec::with_capacity(n);
    for _ in 0..n {
        events.push(next_event(stream).await);
    }
    events
}

async fn assert_no_event(stream: &mut WatchStream) {
    if let Ok(item) = tokio::time::timeout(QUIET, stream.next()).await {
        panic!("expected no event, got {item:?}");
    }
}

fn kv(key: &str, value: &str, create_revision: Revision, mod_revision: Revision) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: value.as_bytes().to_vec(),
        create_revision,
        mod_revision,
    }
}

fn event(kind: EventKind, kv: &KeyValue, prev: Option<&KeyValue>) -> Event {
    Event {
        kind,
        kv: kv.clone(),
        prev: prev.cloned(),
    }
}

fn list_of(prefix: &str) -> ListRequest {
    ListRequest {
        prefix: prefix.to_owned(),
        ..ListRequest::default()
    }
}

fn keys(page: &ListPage) -> Vec<&str> {
    page.kvs.iter().map(|kv| kv.key.as_str()).collect()
}

fn values(page: &ListPage) -> Vec<(&str, &[u8])> {
    page.kvs
        .iter()
        .map(|kv| (kv.key.as_str(), kv.value.as_slice()))
        .collect()
}

/// Creating a key stores it; both of its revisions are the creation's.
pub async fn create_then_get_returns_the_value_with_equal_create_and_mod_revisions(
    store: &dyn Store,
) {
    let _lock = shared().await;
    let p = prefix("create");
    let before = store.current_revision().await.unwrap();
    let created = store
        .create(&format!("{p}k"), b"v1".to_vec())
        .await
        .unwrap();
    assert!(created.mod_revision > before, "{created:?} after {before}");
    assert_eq!(
        created,
        kv(
            &format!("{p}k"),
            "v1",
            created.mod_revision,
            created.mod_revision
        )
    );
    assert_eq!(store.get(&format!("{p}k")).await.unwrap(), Some(created));

    let empty = store
        .create(&format!("{p}empty"), Vec::new())
        .await
        .unwrap();
    assert_eq!(
        store.get(&format!("{p}empty")).await.unwrap(),
        Some(kv(
            &format!("{p}empty"),
            "",
            empty.mod_revision,
            empty.mod_revision
        ))
    );
}

/// Creating a present key fails and says what is there.
pub async fn create_of_a_present_key_fails_with_already_exists_and_the_current_value(
    store: &dyn Store,
) {
    let _lock = shared().await;
    let key = format!("{}k", prefix("create-twice"));
    let first = store.create(&key, b"v1".to_vec()).await.unwrap();
    match store.create(&key, b"v2".to_vec()).await {
        Err(Error::AlreadyExists { key: k, current }) => {
            assert_eq!(k, key);
            assert_eq!(*current, first);
        }
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    assert_eq!(store.get(&key).await.unwrap(), Some(first));
}

/// A key never written is absent.
pub async fn get_of_an_absent_key_returns_none(store: &dyn Store) {
    let _lock = shared().await;
    let p = prefix("get-absent");
    store.create(&format!("{p}a"), b"v".to_vec()).await.unwrap();
    assert_eq!(store.get(&format!("{p}b")).await.unwrap(), None);
    // A prefix of a present key is not a present key.
    assert_eq!(store.get(&p).await.unwrap(), None);
}

/// An update at the current revision replaces the value and gets a new `mod_revision`.
pub async fn update_with_the_current_revision_replaces_the_value_and_keeps_the_create_revision(
    store: &dyn Store,
) {
    let _lock = shared().await;
    let key = format!("{}k", prefix("update"));
    let created = store.create(&key, b"v1".to_vec()).await.unwrap();
    let updated = store
        .update(&key, b"v2".to_vec(), created.mod_revision)
        .await
        .unwrap();
    assert!(updated.mod_revision > created.mod_revision);
    assert_eq!(
        updated,
        kv(&key, "v2", created.create_revision, updated.mod_revision)
    );
    assert_eq!(store.get(&key).await.unwrap(), Some(updated.clone()));

    // Writing the same value again is still a write.
    let again = store
        .update(&key, b"v2".to_vec(), updated.mod_revision)
        .await
        .unwrap();
    assert!(again.mod_revision > updated.mod_revision);
    assert_eq!(
        again,
        kv(&key, "v2", created.create_revision, again.mod_revision)
    );
}

/// An update at an old revision fails and says what is there now.
pub async fn update_with_a_stale_revision_fails_with_conflict_and_the_current_value(
    store: &dyn Store,
) {
    let _lock = shared().await;
    let key = format!("{}k", prefix("update-stale"));
    let created = store.create(&key, b"v1".to_vec()).await.unwrap();
    let updated = store
        .update(&key, b"v2".to_vec(), created.mod_revision)
        .await
        .unwrap();
    match store
        .update(&key, b"v3".to_vec(), created.mod_revision)
        .await
    {
        Err(Error::Conflict {
            key: k,
            expected,
            actual,
            current,
        }) => {
            assert_eq!(k, key);
            assert_eq!(expected, created.mod_revision);
            assert_eq!(actual, updated.mod_revision);
            assert_eq!(*current, updated);
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(store.get(&key).await.unwrap(), Some(updated));
}

/// Compare-and-swap on a key that is not there is `NotFound`, whatever the expected revision.
pub async fn update_and_delete_of_an_absent_or_deleted_key_fail_with_not_found(store: &dyn Store) {
    let _lock = shared().await;
    let p = prefix("not-found");
    let absent = format!("{p}absent");
    let deleted = format!("{p}deleted");
    let created = store.create(&deleted, b"v".to_vec()).await.unwrap();
    let gone = store.delete(&deleted, created.mod_revision).await.unwrap();
    for (key, expected) in [
        (&absent, Revision::ZERO),
        (&absent, created.mod_revision),
        (&deleted, created.mod_revision),
        (&deleted, gone.mod_revision),
    ] {
        match store.update(key, b"x".to_vec(), expected).await {
            Err(Error::NotFound { key: k }) => assert_eq!(&k, key),
            other => panic!("update {key} at {expected}: expected NotFound, got {other:?}"),
        }
        match store.delete(key, expected).await {
            Err(Error::NotFound { key: k }) => assert_eq!(&k, key),
            other => panic!("delete {key} at {expected}: expected NotFound, got {other:?}"),
        }
    }
}

/// A delete answers with the value it removed, whose `mod_revision` is the deletion's.
pub async fn delete_returns_the_last_value_stamped_with_the_deletion_revision(store: &dyn Store) {
    let _lock = shared().await;
    let key = format!("{}k", prefix("delete"));
    let created = store.create(&key, b"v1".to_vec()).await.unwrap();
    let updated = store
        .update(&key, b"v2".to_vec(), created.mod_revision)
        .await
        .unwrap();
    let deleted = store.delete(&key, updated.mod_revision).await.unwrap();
    assert!(deleted.mod_revision > updated.mod_revision);
    assert_eq!(
        deleted,
        kv(&key, "v2", created.create_revision, deleted.mod_revision)
    );
    assert_eq!(store.get(&key).await.unwrap(), None);
}

/// A delete at an old revision fails and leaves the key alone.
pub async fn delete_with_a_stale_revision_fails_with_conflict_and_keeps_the_key(store: &dyn Store) {
    let _lock = shared().await;
    let key = format!("{}k", prefix("delete-stale"));
    let created = store.create(&key, b"v1".to_vec()).await.unwrap();
    let updated = store
        .update(&key, b"v2".to_vec(), created.mod_revision)
        .await
        .unwrap();
    match store.delete(&key, created.mod_revision).await {
        Err(Error::Conflict {
            key: k,
            expected,
            actual,
            current,
        }) => {
            assert_eq!(k, key);
            assert_eq!(expected, created.mod_revision);
            assert_eq!(actual, updated.mod_revision);
            assert_eq!(*current, updated);
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(store.get(&key).await.unwrap(), Some(updated));
}

/// Delete, then create again: a new incarnation with its own create revision.
pub async fn recreating_a_deleted_key_gives_it_a_new_create_revision(store: &dyn Store) {
    let _lock = shared().await;
    let key = format!("{}k", prefix("recreate"));
    let first = store.create(&key, b"v1".to_vec()).await.unwrap();
    let deleted = store.delete(&key, first.mod_revision).await.unwrap();
    let second = store.create(&key, b"v2".to_vec()).await.unwrap();
    assert!(second.mod_revision > deleted.mod_revision);
    assert_eq!(
        second,
        kv(&key, "v2", second.mod_revision, second.mod_revision)
    );
    assert_eq!(store.get(&key).await.unwrap(), Some(second));
}

/// The revision counter moves by one per successful write, and never on reads or failed writes.
pub async fn every_successful_write_increments_the_revision_by_exactly_one(store: &dyn Store) {
    let _lock = exclusive().await;
    let p = prefix("revisions");
    let key = format!("{p}k");
    let start = store.current_revision().await.unwrap();
    let at = |n: i64| Revision(start.0 + n);

    let created = store.create(&key, b"v1".to_vec()).await.unwrap();
    assert_eq!(created.mod_revision, at(1));
    assert_eq!(store.current_revision().await.unwrap(), at(1));

    // Reads and failed writes leave the counter alone.
    store.get(&key).await.unwrap();
    store.list(list_of(&p)).await.unwrap();
    drop(store.watch(&p, start).await.unwrap());
    assert!(store.create(&key, b"x".to_vec()).await.is_err());
    assert!(store.update(&key, b"x".to_vec(), start).await.is_err());
    assert!(store.delete(&key, start).await.is_err());
    let absent = format!("{p}absent");
    assert!(store.update(&absent, b"x".to_vec(), at(1)).await.is_err());
    assert!(store.delete(&absent, at(1)).await.is_err());
    assert_eq!(store.current_revision().await.unwrap(), at(1));

    let updated = store.update(&key, b"v2".to_vec(), at(1)).await.unwrap();
    assert_eq!(updated.mod_revision, at(2));
    let same = store.update(&key, b"v2".to_vec(), at(2)).await.unwrap();
    assert_eq!(same.mod_revision, at(3));
    let other = store
        .create(&format!("{p}other"), b"o".to_vec())
        .await
        .unwrap();
    assert_eq!(other.mod_revision, at(4));
    let deleted = store.delete(&key, at(3)).await.unwrap();
    assert_eq!(deleted.mod_revision, at(5));
    assert_eq!(store.current_revision().await.unwrap(), at(5));
    let page = store.list(list_of(&p)).await.unwrap();
    assert_eq!(page.revision, at(5));
}

/// A prefix matches bytes, not path segments; keys come back sorted bytewise.
pub async fn list_returns_the_keys_under_the_prefix_in_bytewise_order(store: &dyn Store) {
    let _lock = shared().await;
    let p = prefix("list-prefix");
    for name in [
        "a/y",
        "a/é",
        "ab/x",
        "a/B",
        "a/x",
        "a",
        "a/z",
        "b/x",
        "a/x/deeper",
    ] {
        store
            .create(&format!("{p}{name}"), name.as_bytes().to_vec())
            .await
            .unwrap();
    }
    let check = |prefix: String, expected: &[&str]| {
        let expected: Vec<String> = expected.iter().map(|name| format!("{p}{name}")).collect();
        async move {
            let page = store.list(list_of(&prefix)).await.unwrap();
            assert_eq!(keys(&page), expected, "list of {prefix:?}");
            assert!(!page.more);
        }
    };
    check(
        format!("{p}a/"),
        &["a/B", "a/x", "a/x/deeper", "a/y", "a/z", "a/é"],
    )
    .await;
    check(
        format!("{p}a"),
        &["a", "a/B", "a/x", "a/x/deeper", "a/y", "a/z", "a/é", "ab/x"],
    )
    .await;
    check(format!("{p}b/"), &["b/x"]).await;
    check(format!("{p}c/"), &[]).await;
    check(format!("{p}a/x"), &["a/x", "a/x/deeper"]).await;
    let page = store.list(list_of(&format!("{p}a/"))).await.unwrap();
    assert_eq!(page.kvs[0].value, b"a/B");
}

/// Deleted keys are not listed; re-created ones are, with their new value.
pub async fn list_leaves_out_deleted_keys(store: &dyn Store) {
    let _lock = shared().await;
    let p = prefix("list-deleted");
    let a = store
        .create(&format!("{p}a"), b"a1".to_vec())
        .await
        .unwrap();
    let b = store
        .create(&format!("{p}b"), b"b1".to_vec())
        .await
        .unwrap();
    let c = store
        .create(&format!("{p}c"), b"c1".to_vec())
        .await
        .unwrap();
    store.delete(&a.key, a.mod_revision).await.unwrap();
    store.delete(&b.key, b.mod_revision).await.unwrap();
    let b2 = store.create(&b.key, b"b2".to_vec()).await.unwrap();
    let page = store.list(list_of(&p)).await.unwrap();
    assert_eq!(page.kvs, vec![b2, c]);
}

/// `limit` cuts a page and `more` says whether keys remain; `start_after` continues.
pub async fn list_pages_with_limit_more_and_start_after(store: &dyn Store) {
    let _lock = shared().await;
    let p = prefix("list-pages");
    for name in ["k0", "k1", "k2", "k3", "k4"] {
        store
            .create(&format!("{p}{name}"), b"v".to_vec())
            .await
            .unwrap();
    }
    // Every page at the first page's revision, as a paging client does.
    let first = store.list(list_of(&p)).await.unwrap();
    let check = |start_after: Option<&str>, limit: Option<usize>, expected: &[&str], more: bool| {
        let request = ListRequest {
            prefix: p.clone(),
            start_after: start_after.map(|name| format!("{p}{name}")),
            revision: Some(first.revision),
            limit,
        };
        let expected: Vec<String> = expected.iter().map(|name| format!("{p}{name}")).collect();
        async move {
            let page = store.list(request.clone()).await.unwrap();
            assert_eq!(keys(&page), expected, "{request:?}");
            assert_eq!(page.more, more, "{request:?}");
            assert_eq!(page.revision, first.revision, "{request:?}");
        }
    };
    check(None, Some(2), &["k0", "k1"], true).await;
    check(Some("k1"), Some(2), &["k2", "k3"], true).await;
    check(Some("k3"), Some(2), &["k4"], false).await;
    check(None, Some(5), &["k0", "k1", "k2", "k3", "k4"], false).await;
    check(None, Some(4), &["k0", "k1", "k2", "k3"], true).await;
    check(None, None, &["k0", "k1", "k2", "k3", "k4"], false).await;
    // A limit of 0 means no limit, as in etcd.
    check(None, Some(0), &["k0", "k1", "k2", "k3", "k4"], false).await;
    check(Some("k4"), None, &[], false).await;
    // `start_after` need not be a key, and may sort before the prefix.
    check(Some("k2x"), Some(1), &["k3"], true).await;
    check(Some("k"), None, &["k0", "k1", "k2", "k3", "k4"], false).await;
    let before_prefix = ListRequest {
        prefix: p.clone(),
        start_after: Some("/".to_owned()),
        revision: Some(first.revision),
        limit: Some(3),
    };
    let page = store.list(before_prefix).await.unwrap();
    assert_eq!(keys(&page).len(), 3);
    assert!(page.more);
}

/// A list at revision R shows the keys as they were at R.
pub async fn list_at_an_older_revision_returns_that_snapshot(store: &dyn Store) {
    let _lock = shared().await;
    let p = prefix("list-snapshot");
    let a1 = store
        .create(&format!("{p}a"), b"a1".to_vec())
        .await
        .unwrap();
    let b1 = store
        .create(&format!("{p}b"), b"b1".to_vec())
        .await
        .unwrap();
    let then = b1.mod_revision;
    let a2 = store
        .update(&a1.key, b"a2".to_vec(), a1.mod_revision)
        .await
        .unwrap();
    store.delete(&b1.key, b1.mod_revision).await.unwrap();
    let c1 = store
        .create(&format!("{p}c"), b"c1".to_vec())
        .await
        .unwrap();

    let old = store
        .list(ListRequest {
            revision: Some(then),
            ..list_of(&p)
        })
        .await
        .unwrap();
    assert_eq!(old.kvs, vec![a1.clone(), b1.clone()]);
    assert_eq!(old.revision, then);

    let before_b = store
        .list(ListRequest {
            revision: Some(a1.mod_revision),
            ..list_of(&p)
        })
        .await
        .unwrap();
    assert_eq!(before_b.kvs, vec![a1]);

    let now = store.list(list_of(&p)).await.unwrap();
    assert_eq!(
        values(&now),
        vec![(a2.key.as_str(), &b"a2"[..]), (c1.key.as_str(), &b"c1"[..])]
    );
    assert_eq!(now.kvs, vec![a2, c1.clone()]);
    assert!(now.revision >= c1.mod_revision);
}

/// Reads (and compactions) beyond the current revision fail.
pub async fn list_at_a_future_revision_fails_with_future_revision(store: &dyn Store) {
    let _lock = shared().await;
    let p = prefix("future");
    store.create(&format!("{p}k"), b"v".to_vec()).await.unwrap();
    let current = store.current_revision().await.unwrap();
    let future = Revision(current.0 + 1_000_000);
    match store
        .list(ListRequest {
            revision: Some(future),
            ..list_of(&p)
        })
        .await
    {
        Err(Error::FutureRevision {
            requested,
            current: reported,
        }) => {
            assert_eq!(requested, future);
            assert!(reported >= current && reported < future, "{reported}");
        }
        other => panic!("expected FutureRevision, got {other:?}"),
    }
    match store.compact(future).await {
        Err(Error::FutureRevision { requested, .. }) => assert_eq!(requested, future),
        other => panic!("expected FutureRevision, got {other:?}"),
    }
}

/// A watch from R replays every event after R, in order, then continues live.
pub async fn watch_replays_every_event_after_the_revision_in_order_then_live_events(
    store: &dyn Store,
) {
    let _lock = shared().await;
    let p = prefix("watch-replay");
    let a1 = store
        .create(&format!("{p}a"), b"a1".to_vec())
        .await
        .unwrap();
    let b1 = store
        .create(&format!("{p}b"), b"b1".to_vec())
        .await
        .unwrap();
    let a2 = store
        .update(&a1.key, b"a2".to_vec(), a1.mod_revision)
        .await
        .unwrap();
    let b_gone = store.delete(&b1.key, b1.mod_revision).await.unwrap();
    let c1 = store
        .create(&format!("{p}c"), b"c1".to_vec())
        .await
        .unwrap();

    let mut watch = store.watch(&p, a1.mod_revision).await.unwrap();
    let expected = vec![
        event(EventKind::Created, &b1, None),
        event(EventKind::Updated, &a2, Some(&a1)),
        event(EventKind::Deleted, &b_gone, Some(&b1)),
        event(EventKind::Created, &c1, None),
    ];
    assert_eq!(next_events(&mut watch, 4).await, expected);

    let c2 = store
        .update(&c1.key, b"c2".to_vec(), c1.mod_revision)
        .await
        .unwrap();
    assert_eq!(
        next_event(&mut watch).await,
        event(EventKind::Updated, &c2, Some(&c1))
    );
    assert_no_event(&mut watch).await;

    // From the revision before the first write: everything.
    let mut all = store
        .watch(&p, Revision(a1.mod_revision.0 - 1))
        .await
        .unwrap();
    let events = next_events(&mut all, 6).await;
    assert_eq!(events[0], event(EventKind::Created, &a1, None));
    assert_eq!(events[1..5], expected[..]);
    assert_eq!(events[5], event(EventKind::Updated, &c2, Some(&c1)));
    assert_no_event(&mut all).await;
}

/// A watch on `/p/a/` sees neither `/p/ab/..` nor `/p/b/..`, replayed or live.
pub async fn watch_delivers_only_keys_under_its_prefix(store: &dyn Store) {
    let _lock = shared().await;
    let p = prefix("watch-prefix");
    let start = store.current_revision().await.unwrap();
    let mut live = store.watch(&format!("{p}a/"), start).await.unwrap();
    let mut written = Vec::new();
    for name in ["a/1", "ab/1", "b/1", "a/2", "a", "a/1/x"] {
        written.push(
            store
                .create(&format!("{p}{name}"), name.as_bytes().to_vec())
                .await
                .unwrap(),
        );
    }
    let expected = vec![
        event(EventKind::Created, &written[0], None),
        event(EventKind::Created, &written[3], None),
        event(EventKind::Created, &written[5], None),
    ];
    assert_eq!(next_events(&mut live, 3).await, expected);
    assert_no_event(&mut live).await;

    let mut replayed = store.watch(&format!("{p}a/"), start).await.unwrap();
    assert_eq!(next_events(&mut replayed, 3).await, expected);
    assert_no_event(&mut replayed).await;
}

/// Created, updated and deleted events, with previous values, the same live and replayed.
pub async fn watch_events_carry_their_kind_and_previous_value(store: &dyn Store) {
    let _lock = shared().await;
    let p = prefix("watch-kinds");
    let key = format!("{p}k");
    let start = store.current_revision().await.unwrap();
    let mut live = store.watch(&p, start).await.unwrap();

    let v1 = store.create(&key, b"v1".to_vec()).await.unwrap();
    let v2 = store
        .update(&key, b"v2".to_vec(), v1.mod_revision)
        .await
        .unwrap();
    let gone = store.delete(&key, v2.mod_revision).await.unwrap();
    let again = store.create(&key, b"v3".to_vec()).await.unwrap();

    let expected = vec![
        event(EventKind::Created, &v1, None),
        event(EventKind::Updated, &v2, Some(&v1)),
        // The deletion carries the last value, stamped with the deletion's revision.
        event(
            EventKind::Deleted,
            &kv(&key, "v2", v1.mod_revision, gone.mod_revision),
            Some(&v2),
        ),
        event(
            EventKind::Created,
            &kv(&key, "v3", again.mod_revision, again.mod_revision),
            None,
        ),
    ];
    assert_eq!(next_events(&mut live, 4).await, expected);
    let mut replayed = store.watch(&p, start).await.unwrap();
    assert_eq!(next_events(&mut replayed, 4).await, expected);
    for event in &expected {
        assert_eq!(event.revision(), event.kv.mod_revision);
    }
}

/// Watching from the current revision skips history.
pub async fn watch_from_the_current_revision_delivers_only_later_events(store: &dyn Store) {
    let _lock = shared().await;
    let p = prefix("watch-now");
    let old = store
        .create(&format!("{p}old"), b"o".to_vec())
        .await
        .unwrap();
    let mut watch = store.watch(&p, old.mod_revision).await.unwrap();
    assert_no_event(&mut watch).await;
    let new = store
        .create(&format!("{p}new"), b"n".to_vec())
        .await
        .unwrap();
    assert_eq!(
        next_event(&mut watch).await,
        event(EventKind::Created, &new, None)
    );
    assert_no_event(&mut watch).await;
}

/// Many writers at once: every write is acknowledged once with its own revision, and a watcher
/// sees exactly those writes, each once, in revision order.
pub async fn concurrent_writes_get_distinct_revisions_and_a_watcher_sees_each_once_in_order(
    store: &dyn Store,
) {
    let _lock = shared().await;
    const WRITERS: usize = 32;
    const UPDATES: usize = 4;
    let p = prefix("concurrent");
    let start = store.current_revision().await.unwrap();
    let mut watch = store.watch(&p, start).await.unwrap();

    let writer = |w: usize| {
        let key = format!("{p}w{w:02}");
        async move {
            let mut acks = vec![store.create(&key, b"0".to_vec()).await.unwrap()];
            for n in 1..=UPDATES {
                let expected = acks[acks.len() - 1].mod_revision;
                let value = n.to_string().into_bytes();
                acks.push(store.update(&key, value, expected).await.unwrap());
            }
            acks
        }
    };
    let acks: Vec<KeyValue> = futures::future::join_all((0..WRITERS).map(writer))
        .await
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(acks.len(), WRITERS * (UPDATES + 1));
    let revisions: BTreeSet<Revision> = acks.iter().map(|kv| kv.mod_revision).collect();
    assert_eq!(revisions.len(), acks.len(), "revisions are not distinct");

    let events = next_events(&mut watch, acks.len()).await;
    assert_no_event(&mut watch).await;
    let seen: Vec<Revision> = events.iter().map(Event::revision).collect();
    assert_eq!(seen, revisions.iter().copied().collect::<Vec<_>>());
    for event in &events {
        let ack = acks
            .iter()
            .find(|kv| kv.mod_revision == event.revision())
            .unwrap();
        assert_eq!(&event.kv, ack);
    }
}

/// Compare-and-swap under contention: one winner, everyone else sees a conflict.
pub async fn concurrent_updates_with_the_same_expected_revision_let_exactly_one_win(
    store: &dyn Store,
) {
    let _lock = shared().await;
    let key = format!("{}k", prefix("cas-race"));
    let created = store.create(&key, b"v0".to_vec()).await.unwrap();
    let results = futures::future::join_all((0..16).map(|n| {
        let key = key.clone();
        async move {
            store
                .update(&key, format!("v{n}").into_bytes(), created.mod_revision)
                .await
        }
    }))
    .await;
    let winners: Vec<&KeyValue> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    let winner = winners[0].clone();
    for result in &results {
        match result {
            Ok(_) => {}
            Err(Error::Conflict {
                actual, current, ..
            }) => {
                assert_eq!(*actual, winner.mod_revision);
                assert_eq!(**current, winner);
            }
            Err(other) => panic!("expected Conflict, got {other}"),
        }
    }
    assert_eq!(store.get(&key).await.unwrap(), Some(winner));
}

/// A watcher that is not read while many writes commit loses nothing once it reads again.
pub async fn a_watcher_that_stops_reading_for_a_while_still_gets_every_event(store: &dyn Store) {
    let _lock = shared().await;
    const WRITES: usize = 400;
    let p = prefix("slow-watcher");
    let start = store.current_revision().await.unwrap();
    let mut watch = store.watch(&p, start).await.unwrap();
    // One event first, so the stream is live (not replaying) when it stops being read.
    let first = store
        .create(&format!("{p}first"), b"f".to_vec())
        .await
        .unwrap();
    assert_eq!(
        next_event(&mut watch).await,
        event(EventKind::Created, &first, None)
    );
    let mut acks = Vec::new();
    for chunk in (0..WRITES).collect::<Vec<_>>().chunks(8) {
        let writes = chunk.iter().map(|n| {
            let key = format!("{p}k{n:04}");
            async move { store.create(&key, n.to_string().into_bytes()).await }
        });
        for ack in futures::future::join_all(writes).await {
            acks.push(ack.unwrap());
        }
    }
    acks.sort_by_key(|kv| kv.mod_revision);
    let events = next_events(&mut watch, WRITES).await;
    let got: Vec<&KeyValue> = events.iter().map(|e| &e.kv).collect();
    assert_eq!(got, acks.iter().collect::<Vec<_>>());
    assert_no_event(&mut watch).await;
}

/// After `compact(r)`, reads and watches below r fail; at r and above they work.
pub async fn compaction_makes_reads_and_watches_below_it_fail_with_compacted(store: &dyn Store) {
    let _lock = exclusive().await;
    let p = prefix("compact-reads");
    let a1 = store
        .create(&format!("{p}a"), b"a1".to_vec())
        .await
        .unwrap();
    let a2 = store
        .update(&a1.key, b"a2".to_vec(), a1.mod_revision)
        .await
        .unwrap();
    let b1 = store
        .create(&format!("{p}b"), b"b1".to_vec())
        .await
        .unwrap();
    let target = b1.mod_revision;
    let a3 = store
        .update(&a1.key, b"a3".to_vec(), a2.mod_revision)
        .await
        .unwrap();

    store.compact(target).await.unwrap();
    assert_eq!(store.compacted_revision().await.unwrap(), target);

    for below in [a1.mod_revision, a2.mod_revision] {
        match store
            .list(ListRequest {
                revision: Some(below),
                ..list_of(&p)
            })
            .await
        {
            Err(Error::Compacted { requested, oldest }) => {
                assert_eq!((requested, oldest), (below, target));
            }
            other => panic!("list at {below}: expected Compacted, got {other:?}"),
        }
        match store.watch(&p, below).await {
            Err(Error::Compacted { requested, oldest }) => {
                assert_eq!((requested, oldest), (below, target));
            }
            Err(other) => panic!("watch after {below}: expected Compacted, got {other}"),
            Ok(mut stream) => match tokio::time::timeout(EVENT_TIMEOUT, stream.next()).await {
                Ok(Some(Err(Error::Compacted { requested, oldest }))) => {
                    assert_eq!((requested, oldest), (below, target));
                }
                other => panic!("watch after {below}: expected Compacted, got {other:?}"),
            },
        }
    }

    let at = store
        .list(ListRequest {
            revision: Some(target),
            ..list_of(&p)
        })
        .await
        .unwrap();
    assert_eq!(at.kvs, vec![a2.clone(), b1.clone()]);
    let now = store.list(list_of(&p)).await.unwrap();
    assert_eq!(now.kvs, vec![a3.clone(), b1]);

    let mut watch = store.watch(&p, target).await.unwrap();
    assert_eq!(
        next_event(&mut watch).await,
        event(EventKind::Updated, &a3, Some(&a2))
    );
    assert_no_event(&mut watch).await;
}

/// Compaction keeps each live key's newest version at or below r and drops deleted keys' history.
pub async fn compaction_keeps_live_keys_and_drops_deleted_ones(store: &dyn Store) {
    let _lock = exclusive().await;
    let p = prefix("compact-keys");
    let a1 = store
        .create(&format!("{p}a"), b"a1".to_vec())
        .await
        .unwrap();
    let a2 = store
        .update(&a1.key, b"a2".to_vec(), a1.mod_revision)
        .await
        .unwrap();
    let b1 = store
        .create(&format!("{p}b"), b"b1".to_vec())
        .await
        .unwrap();
    let b_gone = store.delete(&b1.key, b1.mod_revision).await.unwrap();
    let c1 = store
        .create(&format!("{p}c"), b"c1".to_vec())
        .await
        .unwrap();
    let target = c1.mod_revision;
    let c2 = store
        .update(&c1.key, b"c2".to_vec(), c1.mod_revision)
        .await
        .unwrap();

    store.compact(target).await.unwrap();

    assert_eq!(store.get(&a1.key).await.unwrap(), Some(a2.clone()));
    assert_eq!(store.get(&b1.key).await.unwrap(), None);
    assert_eq!(store.get(&c1.key).await.unwrap(), Some(c2.clone()));
    let at = store
        .list(ListRequest {
            revision: Some(target),
            ..list_of(&p)
        })
        .await
        .unwrap();
    assert_eq!(at.kvs, vec![a2.clone(), c1.clone()]);

    // The live keys still compare-and-swap at their revisions; the deleted one can come back.
    let a3 = store
        .update(&a1.key, b"a3".to_vec(), a2.mod_revision)
        .await
        .unwrap();
    let b2 = store.create(&b1.key, b"b2".to_vec()).await.unwrap();
    assert!(b2.create_revision > b_gone.mod_revision);
    let now = store.list(list_of(&p)).await.unwrap();
    assert_eq!(now.kvs, vec![a3.clone(), b2.clone(), c2.clone()]);

    let mut watch = store.watch(&p, target).await.unwrap();
    assert_eq!(
        next_events(&mut watch, 3).await,
        vec![
            event(EventKind::Updated, &c2, Some(&c1)),
            event(EventKind::Updated, &a3, Some(&a2)),
            event(EventKind::Created, &b2, None),
        ]
    );
}

/// Compacting to the compacted revision again is a no-op; below it is `Compacted`.
pub async fn compacting_again_at_the_compacted_revision_succeeds_and_below_it_fails(
    store: &dyn Store,
) {
    let _lock = exclusive().await;
    let p = prefix("compact-again");
    let first = store.create(&format!("{p}a"), b"a".to_vec()).await.unwrap();
    let second = store.create(&format!("{p}b"), b"b".to_vec()).await.unwrap();
    store.compact(second.mod_revision).await.unwrap();
    store.compact(second.mod_revision).await.unwrap();
    assert_eq!(
        store.compacted_revision().await.unwrap(),
        second.mod_revision
    );
    match store.compact(first.mod_revision).await {
        Err(Error::Compacted { requested, oldest }) => {
            assert_eq!(
                (requested, oldest),
                (first.mod_revision, second.mod_revision)
            );
        }
        other => panic!("expected Compacted, got {other:?}"),
    }
    let page = store.list(list_of(&p)).await.unwrap();
    assert_eq!(page.kvs, vec![first, second]);
}

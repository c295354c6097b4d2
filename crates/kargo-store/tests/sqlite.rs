//! The SQLite backend: the conformance suite, plus what only a file-backed store can show
//! (reopening, the on-disk settings, rows physically gone after compaction, watcher lag recovery).

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use futures::StreamExt;
use kargo_store::sqlite::{SqliteOptions, SqliteStore};
use kargo_store::{Error, Event, EventKind, ListRequest, Revision, Store, WatchStream};
use tempfile::TempDir;

kargo_store::conformance_tests!(async { fresh() });

/// A new store in a new temp dir (the dir is returned so it outlives the store).
fn fresh() -> (SqliteStore, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&db(&dir)).unwrap();
    (store, dir)
}

fn db(dir: &TempDir) -> std::path::PathBuf {
    dir.path().join("store.db")
}

/// Opens the file directly, as an operator with the `sqlite3` shell would.
fn raw(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

/// The next item of a watch, failing the test if none comes within 10 s.
async fn next(watch: &mut WatchStream) -> Option<Result<Event, Error>> {
    tokio::time::timeout(Duration::from_secs(10), watch.next())
        .await
        .unwrap_or_else(|_| panic!("no watch event within 10 s"))
}

fn count_rows(path: &Path, key: &str) -> i64 {
    raw(path)
        .query_row(
            "SELECT COUNT(*) FROM kv WHERE name = ?1",
            [key.as_bytes()],
            |row| row.get(0),
        )
        .unwrap()
}

#[tokio::test]
async fn a_new_store_starts_at_revision_zero_with_nothing_compacted() {
    let (store, _dir) = fresh();
    assert_eq!(store.current_revision().await.unwrap(), Revision::ZERO);
    assert_eq!(store.compacted_revision().await.unwrap(), Revision::ZERO);
    let page = store.list(ListRequest::default()).await.unwrap();
    assert_eq!(
        (page.kvs.len(), page.revision, page.more),
        (0, Revision::ZERO, false)
    );
}

#[tokio::test]
async fn values_and_revisions_survive_reopening_and_revisions_keep_increasing() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b_deleted, last) = {
        let store = SqliteStore::open(&db(&dir)).unwrap();
        let a = store.create("/r/a", b"a1".to_vec()).await.unwrap();
        let a = store
            .update("/r/a", b"a2".to_vec(), a.mod_revision)
            .await
            .unwrap();
        let b = store.create("/r/b", b"b1".to_vec()).await.unwrap();
        let b_deleted = store.delete("/r/b", b.mod_revision).await.unwrap();
        store.close().await.unwrap();
        (a, b_deleted, Revision(4))
    };
    assert_eq!(b_deleted.mod_revision, last);

    let store = SqliteStore::open(&db(&dir)).unwrap();
    assert_eq!(store.current_revision().await.unwrap(), last);
    assert_eq!(store.get("/r/a").await.unwrap(), Some(a.clone()));
    assert_eq!(store.get("/r/b").await.unwrap(), None);
    let c = store.create("/r/c", b"c1".to_vec()).await.unwrap();
    assert_eq!(c.mod_revision, Revision(5));

    // History from before the restart replays like any other.
    let mut watch = store.watch("/r/", Revision(2)).await.unwrap();
    let mut kinds = Vec::new();
    for _ in 0..3 {
        let e = next(&mut watch).await.unwrap().unwrap();
        kinds.push((e.kind, e.kv.key.clone(), e.revision()));
    }
    assert_eq!(
        kinds,
        vec![
            (EventKind::Created, "/r/b".to_owned(), Revision(3)),
            (EventKind::Deleted, "/r/b".to_owned(), Revision(4)),
            (EventKind::Created, "/r/c".to_owned(), Revision(5)),
        ]
    );
}

#[tokio::test]
async fn the_revision_never_goes_back_even_when_compaction_removes_the_newest_row() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SqliteStore::open(&db(&dir)).unwrap();
        let a = store.create("/t/a", b"a".to_vec()).await.unwrap();
        let gone = store.delete("/t/a", a.mod_revision).await.unwrap();
        // The newest row is a tombstone at or below the compacted revision: compaction drops it.
        store.compact(gone.mod_revision).await.unwrap();
        assert_eq!(count_rows(&db(&dir), "/t/a"), 0);
        drop(store);
    }
    let store = SqliteStore::open(&db(&dir)).unwrap();
    assert_eq!(store.current_revision().await.unwrap(), Revision(2));
    let again = store.create("/t/a", b"a".to_vec()).await.unwrap();
    assert_eq!(again.mod_revision, Revision(3));
    assert_eq!(again.create_revision, Revision(3));
}

#[tokio::test]
async fn the_compacted_revision_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SqliteStore::open(&db(&dir)).unwrap();
        for n in 0..3 {
            store
                .create(&format!("/c/{n}"), b"v".to_vec())
                .await
                .unwrap();
        }
        store.compact(Revision(2)).await.unwrap();
    }
    let store = SqliteStore::open(&db(&dir)).unwrap();
    assert_eq!(store.compacted_revision().await.unwrap(), Revision(2));
    let below = store
        .list(ListRequest {
            prefix: "/c/".to_owned(),
            revision: Some(Revision(1)),
            ..ListRequest::default()
        })
        .await;
    assert!(
        matches!(
            below,
            Err(Error::Compacted {
                requested: Revision(1),
                oldest: Revision(2)
            })
        ),
        "{below:?}"
    );
    assert!(matches!(
        store.watch("/c/", Revision(1)).await,
        Err(Error::Compacted {
            requested: Revision(1),
            oldest: Revision(2)
        })
    ));
}

#[tokio::test]
async fn compaction_physically_removes_superseded_rows_and_tombstones_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&db(&dir)).unwrap();
    // /k/live: 3 versions at or below the target, 1 above; /k/gone: created and deleted below;
    // /k/late: deleted above the target.
    let live = store.create("/k/live", b"1".to_vec()).await.unwrap();
    let live = store
        .update("/k/live", b"2".to_vec(), live.mod_revision)
        .await
        .unwrap();
    let live = store
        .update("/k/live", b"3".to_vec(), live.mod_revision)
        .await
        .unwrap();
    let gone = store.create("/k/gone", b"g".to_vec()).await.unwrap();
    store.delete("/k/gone", gone.mod_revision).await.unwrap();
    let late = store.create("/k/late", b"l".to_vec()).await.unwrap();
    let target = late.mod_revision;
    store
        .update("/k/live", b"4".to_vec(), live.mod_revision)
        .await
        .unwrap();
    store.delete("/k/late", late.mod_revision).await.unwrap();

    fn check(path: &Path, expected: &[(&str, i64)]) {
        let counts: Vec<(&str, i64)> = expected
            .iter()
            .map(|&(key, _)| (key, count_rows(path, key)))
            .collect();
        assert_eq!(counts, expected);
    }
    check(&db(&dir), &[("/k/live", 4), ("/k/gone", 2), ("/k/late", 2)]);
    store.compact(target).await.unwrap();
    check(&db(&dir), &[("/k/live", 2), ("/k/gone", 0), ("/k/late", 2)]);
}

#[tokio::test]
async fn the_file_is_in_wal_mode() {
    let (store, dir) = fresh();
    store.create("/s/k", b"v".to_vec()).await.unwrap();
    let mode: String = raw(&db(&dir))
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    assert!(dir.path().join("store.db-wal").exists());
}

#[tokio::test]
async fn a_watcher_that_falls_behind_the_buffer_catches_up_from_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let options = SqliteOptions {
        watch_buffer: 2,
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open_with(&db(&dir), options).unwrap();
    let mut watch = store.watch("/lag/", Revision::ZERO).await.unwrap();
    let first = store.create("/lag/first", b"f".to_vec()).await.unwrap();
    assert_eq!(next(&mut watch).await.unwrap().unwrap().kv, first);

    // Sequential writes: one batch, one broadcast message each, far more than the buffer holds.
    let mut acks = Vec::new();
    for n in 0..50 {
        acks.push(
            store
                .create(&format!("/lag/k{n:02}"), vec![n])
                .await
                .unwrap(),
        );
        if n % 10 == 0 {
            store.create(&format!("/other/{n}"), vec![n]).await.unwrap();
        }
    }
    let mut got = Vec::new();
    for _ in 0..acks.len() {
        got.push(next(&mut watch).await.unwrap().unwrap().kv);
    }
    assert_eq!(got, acks);
    let late = store.create("/lag/late", b"l".to_vec()).await.unwrap();
    assert_eq!(next(&mut watch).await.unwrap().unwrap().kv, late);
}

#[tokio::test]
async fn a_watch_whose_missed_history_is_compacted_ends_with_compacted() {
    let dir = tempfile::tempdir().unwrap();
    let options = SqliteOptions {
        watch_buffer: 1,
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open_with(&db(&dir), options).unwrap();
    let mut watch = store.watch("/w/", Revision::ZERO).await.unwrap();
    let first = store.create("/w/a", b"a".to_vec()).await.unwrap();
    assert_eq!(next(&mut watch).await.unwrap().unwrap().kv, first);
    let mut last = first.clone();
    for n in 0..5u8 {
        last = store
            .update("/w/a", vec![n], last.mod_revision)
            .await
            .unwrap();
    }
    store.compact(last.mod_revision).await.unwrap();
    match next(&mut watch).await {
        Some(Err(Error::Compacted { requested, oldest })) => {
            assert_eq!((requested, oldest), (first.mod_revision, last.mod_revision));
        }
        other => panic!("expected Compacted, got {other:?}"),
    }
    assert!(next(&mut watch).await.is_none());
}

#[tokio::test]
async fn closing_the_store_fails_later_calls_and_ends_watches() {
    let (store, _dir) = fresh();
    let mut watch = store.watch("/", Revision::ZERO).await.unwrap();
    store.close().await.unwrap();
    assert!(matches!(
        next(&mut watch).await,
        Some(Err(Error::Unavailable(_)))
    ));
    assert!(next(&mut watch).await.is_none());
    for result in [
        store.create("/x", Vec::new()).await.map(drop),
        store.get("/x").await.map(drop),
        store.watch("/", Revision::ZERO).await.map(drop),
        store.compact(Revision::ZERO).await,
    ] {
        assert!(matches!(result, Err(Error::Unavailable(_))), "{result:?}");
    }
    // Closing twice is fine.
    store.close().await.unwrap();
}

#[tokio::test]
async fn a_compaction_cut_short_resumes_when_the_store_is_opened() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SqliteStore::open(&db(&dir)).unwrap();
        let mut kv = store.create("/i/k", b"0".to_vec()).await.unwrap();
        for n in 1..5u8 {
            kv = store
                .update("/i/k", vec![n], kv.mod_revision)
                .await
                .unwrap();
        }
        store.close().await.unwrap();
    }
    // What a crash right after recording the compacted revision leaves: the revision is set, no
    // row is gone yet.
    raw(&db(&dir))
        .execute(
            "UPDATE meta SET value = 4 WHERE name = 'compact_revision'",
            [],
        )
        .unwrap();
    assert_eq!(count_rows(&db(&dir), "/i/k"), 5);

    let store = SqliteStore::open(&db(&dir)).unwrap();
    assert_eq!(store.compacted_revision().await.unwrap(), Revision(4));
    // The writer resumes on its own; compacting to the same revision waits for it to finish.
    store.compact(Revision(4)).await.unwrap();
    assert_eq!(count_rows(&db(&dir), "/i/k"), 2);
    assert_eq!(store.get("/i/k").await.unwrap().unwrap().value, vec![4]);
}

/// Damage that appears while the store is open (a disk error, another program writing into the
/// file) is `Corrupt`, not a retryable failure, and the tripwire reports it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damage_met_while_open_is_corrupt_and_trips_the_wire() {
    use std::io::{Seek, SeekFrom, Write};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    {
        let store = SqliteStore::open(&path).unwrap();
        for n in 0..1000 {
            store
                .create(&format!("/k/{n:04}"), vec![b'x'; 512])
                .await
                .unwrap();
        }
        // Closed: every page is checkpointed into the main file.
    }
    let (store, tripped) = kargo_store::tripwire(Arc::new(SqliteStore::open(&path).unwrap()));
    assert_eq!(tripped.get(), None);
    let mut file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    let len = file.seek(SeekFrom::End(0)).unwrap();
    file.seek(SeekFrom::Start(len / 2 / 4096 * 4096)).unwrap();
    file.write_all(&[0x5a; 8 * 4096]).unwrap();
    file.sync_all().unwrap();
    // A write makes the readers drop their cached pages; the list then reads the damaged ones.
    let write = store.create("/after", b"v".to_vec()).await;
    let list = store.list(ListRequest::default()).await;
    let corrupt = [write.err(), list.err()]
        .into_iter()
        .flatten()
        .find(Error::is_corrupt)
        .expect("a Corrupt error");
    assert!(
        corrupt
            .to_string()
            .contains("database disk image is malformed"),
        "{corrupt}"
    );
    let mut waiting = tripped.clone();
    let reported = tokio::time::timeout(Duration::from_secs(5), waiting.wait())
        .await
        .expect("the wire tripped");
    assert!(reported.contains("malformed"), "{reported}");
}

//! The encryption wrapper over a real SQLite store: the whole conformance suite through it (every
//! value encrypted), what the file holds underneath, start-up verification, and re-encryption
//! racing a writer.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kargo_store::encryption::{
    Algorithm, Cipher, EncryptedPrefix, EncryptedStore, EncryptionError, Transformer, ValueError,
};
use kargo_store::sqlite::SqliteStore;
use kargo_store::{Error, EventKind, ListRequest, Revision, Store};
use tempfile::TempDir;

fn key(algorithm: Algorithm, name: &str, byte: u8) -> Cipher {
    let size = *algorithm.key_sizes().last().unwrap();
    Cipher::new(algorithm, name, &vec![byte; size]).unwrap()
}

fn rule(prefix: &str, transformer: Transformer) -> EncryptedPrefix {
    EncryptedPrefix {
        prefix: prefix.into(),
        transformer: Arc::new(transformer),
    }
}

fn sqlite() -> (Arc<dyn Store>, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("store.db")).unwrap();
    (Arc::new(store), dir)
}

// Every value of every case goes through AES-GCM, so the suite checks that the wrapper keeps each
// contract (and that conflict values and watch events come back decrypted).
kargo_store::conformance_tests!(async {
    let (inner, dir) = sqlite();
    let store = EncryptedStore::new(
        inner,
        vec![rule(
            "/",
            Transformer::new(key(Algorithm::AesGcm, "k", 1), []),
        )],
    );
    (store, dir)
});

const SECRET: &[u8] = b"{\"data\":{\"token\":\"the-token-value\"}}";

#[tokio::test]
async fn values_under_encrypted_prefixes_are_ciphertext_underneath_and_others_are_not() {
    let (inner, _dir) = sqlite();
    let store = EncryptedStore::new(
        inner.clone(),
        vec![rule(
            "/registry/secrets/",
            Transformer::new(key(Algorithm::Secretbox, "k1", 1), []),
        )],
    );
    store
        .create("/registry/secrets/ns/a", SECRET.to_vec())
        .await
        .unwrap();
    store
        .create("/registry/configmaps/ns/a", SECRET.to_vec())
        .await
        .unwrap();

    let raw = inner.get("/registry/secrets/ns/a").await.unwrap().unwrap();
    assert!(raw.value.starts_with(b"k8s:enc:secretbox:v1:k1:"));
    assert!(!contains(&raw.value, b"the-token-value"));
    let raw = inner
        .get("/registry/configmaps/ns/a")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(raw.value, SECRET);

    let read = store.get("/registry/secrets/ns/a").await.unwrap().unwrap();
    assert_eq!(read.value, SECRET);
    let page = store
        .list(ListRequest {
            prefix: "/registry/".into(),
            ..ListRequest::default()
        })
        .await
        .unwrap();
    assert!(page.kvs.iter().all(|kv| kv.value == SECRET));
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn values_written_before_encryption_still_read_and_verify_counts_them_as_stale() {
    let (inner, _dir) = sqlite();
    inner
        .create("/registry/secrets/ns/old", SECRET.to_vec())
        .await
        .unwrap();
    let store = EncryptedStore::new(
        inner.clone(),
        vec![rule(
            "/registry/secrets/",
            Transformer::new(key(Algorithm::AesGcm, "k1", 1), []),
        )],
    );
    store
        .create("/registry/secrets/ns/new", SECRET.to_vec())
        .await
        .unwrap();
    let old = store
        .get("/registry/secrets/ns/old")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(old.value, SECRET);
    let verified = store.verify().await.unwrap();
    assert_eq!((verified.values, verified.stale), (2, 1));
}

#[tokio::test]
async fn a_value_of_a_key_that_is_not_configured_fails_verify_get_list_and_watch_with_its_name() {
    let (inner, _dir) = sqlite();
    let before = inner.current_revision().await.unwrap();
    let old = EncryptedStore::new(
        inner.clone(),
        vec![rule(
            "/registry/secrets/",
            Transformer::new(key(Algorithm::AesCbc, "retired", 1), []),
        )],
    );
    old.create("/registry/secrets/ns/a", SECRET.to_vec())
        .await
        .unwrap();
    let new = EncryptedStore::new(
        inner,
        vec![rule(
            "/registry/secrets/",
            Transformer::new(key(Algorithm::AesCbc, "current", 2), []),
        )],
    );
    let message = "the value of /registry/secrets/ns/a is encrypted with aescbc key \"retired\", which is not in the encryption configuration";
    match new.verify().await {
        Err(EncryptionError::Value(e @ ValueError::UnknownKey { .. })) => {
            assert_eq!(e.to_string(), message)
        }
        other => panic!("expected an unknown key, got {other:?}"),
    }
    let internal = |r: Result<(), Error>| match r {
        Err(Error::Internal(m)) => assert_eq!(m, message),
        other => panic!("expected an internal error, got {other:?}"),
    };
    internal(new.get("/registry/secrets/ns/a").await.map(drop));
    internal(
        new.list(ListRequest {
            prefix: "/".into(),
            ..ListRequest::default()
        })
        .await
        .map(drop),
    );
    let mut watch = new.watch("/", before).await.unwrap();
    let item = tokio::time::timeout(Duration::from_secs(10), watch.next())
        .await
        .unwrap()
        .unwrap();
    internal(item.map(drop));
    // The stream ends after its error, as the Store contract says.
    let end = tokio::time::timeout(Duration::from_secs(10), watch.next())
        .await
        .unwrap();
    assert!(end.is_none(), "{end:?}");
}

#[tokio::test]
async fn watch_events_and_conflict_values_come_back_decrypted() {
    let (inner, _dir) = sqlite();
    let store = EncryptedStore::new(
        inner,
        vec![rule(
            "/kargo/internal/",
            Transformer::new(key(Algorithm::AesGcm, "k", 7), []),
        )],
    );
    let start = store.current_revision().await.unwrap();
    let mut watch = store.watch("/kargo/", start).await.unwrap();
    let created = store
        .create("/kargo/internal/ca", b"v1".to_vec())
        .await
        .unwrap();
    assert_eq!(created.value, b"v1");
    store
        .update("/kargo/internal/ca", b"v2".to_vec(), created.mod_revision)
        .await
        .unwrap();
    match store
        .update("/kargo/internal/ca", b"v3".to_vec(), created.mod_revision)
        .await
    {
        Err(Error::Conflict { current, .. }) => assert_eq!(current.value, b"v2"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    match store.create("/kargo/internal/ca", b"v4".to_vec()).await {
        Err(Error::AlreadyExists { current, .. }) => assert_eq!(current.value, b"v2"),
        other => panic!("expected already exists, got {other:?}"),
    }
    let first = watch.next().await.unwrap().unwrap();
    let second = watch.next().await.unwrap().unwrap();
    assert_eq!(
        (first.kind, first.kv.value.as_slice()),
        (EventKind::Created, &b"v1"[..])
    );
    assert_eq!(second.kind, EventKind::Updated);
    assert_eq!(second.kv.value, b"v2");
    assert_eq!(second.prev.unwrap().value, b"v1");
}

#[tokio::test]
async fn reencrypt_rewrites_every_stale_value_with_the_first_key_and_leaves_current_ones() {
    let (inner, _dir) = sqlite();
    let prefix = "/registry/secrets/";
    inner
        .create("/registry/secrets/ns/plain", SECRET.to_vec())
        .await
        .unwrap();
    let old = EncryptedStore::new(
        inner.clone(),
        vec![rule(
            prefix,
            Transformer::new(key(Algorithm::AesCbc, "old", 1), []),
        )],
    );
    for i in 0..1200 {
        old.create(&format!("/registry/secrets/ns/s{i:04}"), SECRET.to_vec())
            .await
            .unwrap();
    }
    let rotated = EncryptedStore::new(
        inner.clone(),
        vec![rule(
            prefix,
            Transformer::new(
                key(Algorithm::AesGcm, "new", 2),
                [key(Algorithm::AesCbc, "old", 1)],
            ),
        )],
    );
    rotated
        .create("/registry/secrets/ns/fresh", SECRET.to_vec())
        .await
        .unwrap();
    let done = rotated.reencrypt().await.unwrap();
    assert_eq!((done.values, done.rewritten), (1202, 1201));
    assert_eq!(rotated.reencrypt().await.unwrap().rewritten, 0);

    // Underneath, every value is now written with the new key; the old key is not needed.
    let page = inner
        .list(ListRequest {
            prefix: prefix.into(),
            ..ListRequest::default()
        })
        .await
        .unwrap();
    assert_eq!(page.kvs.len(), 1202);
    assert!(
        page.kvs
            .iter()
            .all(|kv| kv.value.starts_with(b"k8s:enc:aesgcm:v1:new:"))
    );
    let new_only = EncryptedStore::new(
        inner,
        vec![rule(
            prefix,
            Transformer::new(key(Algorithm::AesGcm, "new", 2), []),
        )],
    );
    assert_eq!(new_only.verify().await.unwrap().stale, 0);
    let read = new_only
        .get("/registry/secrets/ns/s0007")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.value, SECRET);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reencrypt_loses_no_concurrent_write() {
    // A writer keeps updating the same keys while the re-encryption runs: every one of its writes
    // must survive (compare-and-swap), and the last value of each key is the writer's.
    let (inner, _dir) = sqlite();
    let prefix = "/registry/secrets/";
    let old = Transformer::new(key(Algorithm::Secretbox, "old", 1), []);
    let store_old = EncryptedStore::new(inner.clone(), vec![rule(prefix, old)]);
    const KEYS: usize = 300;
    for i in 0..KEYS {
        store_old
            .create(&format!("{prefix}ns/{i:03}"), b"0".to_vec())
            .await
            .unwrap();
    }
    let rotated = Arc::new(EncryptedStore::new(
        inner.clone(),
        vec![rule(
            prefix,
            Transformer::new(
                key(Algorithm::AesGcm, "new", 2),
                [key(Algorithm::Secretbox, "old", 1)],
            ),
        )],
    ));
    let writer = {
        let store = rotated.clone();
        tokio::spawn(async move {
            for round in 1..=3u32 {
                for i in 0..KEYS {
                    let key = format!("{prefix}ns/{i:03}");
                    loop {
                        let current = store.get(&key).await.unwrap().unwrap();
                        let next = round.to_string().into_bytes();
                        match store.update(&key, next, current.mod_revision).await {
                            Ok(_) => break,
                            Err(e) if e.is_conflict() => continue,
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
            }
        })
    };
    rotated.reencrypt().await.unwrap();
    writer.await.unwrap();
    rotated.reencrypt().await.unwrap();
    for i in 0..KEYS {
        let kv = rotated
            .get(&format!("{prefix}ns/{i:03}"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(kv.value, b"3", "key {i}");
    }
    let new_only = EncryptedStore::new(
        inner,
        vec![rule(
            prefix,
            Transformer::new(key(Algorithm::AesGcm, "new", 2), []),
        )],
    );
    assert_eq!(new_only.verify().await.unwrap().values, KEYS);
    assert_eq!(new_only.verify().await.unwrap().stale, 0);
    assert!(new_only.current_revision().await.unwrap() > Revision(KEYS as i64));
}

#[tokio::test]
async fn nested_prefixes_count_and_rewrite_each_key_once_with_the_first_prefix_it_is_under() {
    let (inner, _dir) = sqlite();
    for key in ["/registry/secrets/ns/a", "/registry/configmaps/ns/b"] {
        inner.create(key, SECRET.to_vec()).await.unwrap();
    }
    let store = EncryptedStore::new(
        inner.clone(),
        vec![
            rule(
                "/registry/secrets/",
                Transformer::new(key(Algorithm::Secretbox, "inner", 1), []),
            ),
            rule(
                "/registry/",
                Transformer::new(key(Algorithm::AesGcm, "outer", 2), []),
            ),
        ],
    );
    assert_eq!(store.verify().await.unwrap().values, 2);
    let done = store.reencrypt().await.unwrap();
    assert_eq!((done.values, done.rewritten), (2, 2));
    let raw = |key: &'static str| {
        let inner = inner.clone();
        async move { inner.get(key).await.unwrap().unwrap().value }
    };
    assert!(
        raw("/registry/secrets/ns/a")
            .await
            .starts_with(b"k8s:enc:secretbox:v1:inner:")
    );
    assert!(
        raw("/registry/configmaps/ns/b")
            .await
            .starts_with(b"k8s:enc:aesgcm:v1:outer:")
    );
    assert_eq!(
        store.verify().await.unwrap(),
        kargo_store::encryption::Verified {
            values: 2,
            stale: 0
        }
    );
}

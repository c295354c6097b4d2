//! In-process tests of `/livez`, `/readyz` and `/healthz` on SQLite: kube-apiserver's texts,
//! `?exclude`, one check by name, a store that fails and comes back, shutdown, and a flood of
//! `/readyz?verbose` that reads the store at most once a second while an authenticated client
//! is served. (The same on a real etcd cluster losing its quorum: the `health` e2e tests.)

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use http::{Method, StatusCode};
use kargo_http::observe::Observers;
use kargo_store::{KeyValue, ListPage, ListRequest, Result, Revision, Store, WatchStream};
use serde_json::Value;

use crate::testing::TestApi;

/// The key kube-apiserver's store check reads.
const HEALTH_KEY: &str = "/registry/health";

/// A real store that counts the health checks' reads and fails them on demand.
struct Watched {
    inner: Arc<dyn Store>,
    health_reads: AtomicU64,
    failing: AtomicBool,
}

/// Where a test finds the wrapper `TestApi` built.
#[derive(Default)]
struct Handle(std::sync::Mutex<Option<Arc<Watched>>>);

impl Handle {
    fn get(&self) -> Arc<Watched> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .expect("the API is assembled on the watched store")
    }
}

#[async_trait]
impl Store for Watched {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        if key == HEALTH_KEY {
            self.health_reads.fetch_add(1, Ordering::SeqCst);
            if self.failing.load(Ordering::SeqCst) {
                return Err(kargo_store::Error::Unavailable(
                    "disk on fire at 10.0.0.7".into(),
                ));
            }
        }
        self.inner.get(key).await
    }
    async fn list(&self, request: ListRequest) -> Result<ListPage> {
        self.inner.list(request).await
    }
    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue> {
        self.inner.create(key, value).await
    }
    async fn update(&self, key: &str, value: Vec<u8>, expected: Revision) -> Result<KeyValue> {
        self.inner.update(key, value, expected).await
    }
    async fn delete(&self, key: &str, expected: Revision) -> Result<KeyValue> {
        self.inner.delete(key, expected).await
    }
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        self.inner.watch(prefix, after).await
    }
    async fn compact(&self, revision: Revision) -> Result<()> {
        self.inner.compact(revision).await
    }
    async fn current_revision(&self) -> Result<Revision> {
        self.inner.current_revision().await
    }
    async fn compacted_revision(&self) -> Result<Revision> {
        self.inner.compacted_revision().await
    }
    fn committed_revision(&self) -> Option<Revision> {
        self.inner.committed_revision()
    }
}

/// An API over a [`Watched`] SQLite store, and the store.
async fn watched_api() -> (TestApi, Arc<Watched>) {
    let handle = Arc::new(Handle::default());
    let slot = handle.clone();
    let api = TestApi::with_store(
        Observers::default(),
        |_| {},
        move |inner| {
            let store = Arc::new(Watched {
                inner,
                health_reads: AtomicU64::new(0),
                failing: AtomicBool::new(false),
            });
            *slot.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(store.clone());
            store
        },
    )
    .await;
    let store = handle.get();
    (api, store)
}

async fn get(api: &TestApi, path: &str) -> (StatusCode, String) {
    let (code, body) = api.request(Method::GET, path, None, None).await;
    let text = match body {
        Value::String(text) => text,
        other => other.to_string(),
    };
    (code, text)
}

/// Polls `path` until it answers `code` (the store is read at most once a second).
async fn eventually_answers(api: &TestApi, path: &str, code: StatusCode) -> (StatusCode, String) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let answer = get(api, path).await;
        if answer.0 == code || Instant::now() > deadline {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn ok(text: &str) -> (StatusCode, String) {
    (StatusCode::OK, text.to_owned())
}

#[tokio::test]
async fn health_endpoints_answer_ok_and_list_their_checks_as_kube_apiserver() {
    let (api, _) = watched_api().await;
    for path in ["/livez", "/readyz", "/healthz"] {
        assert_eq!(get(&api, path).await, ok("ok"), "{path}");
    }
    assert_eq!(
        get(&api, "/readyz?verbose").await,
        ok(
            "[+]ping ok\n[+]store ok\n[+]informer-sync ok\n[+]keys ok\n[+]shutdown ok\n\
            readyz check passed\n"
        )
    );
    assert_eq!(
        get(&api, "/livez?verbose").await,
        ok("[+]ping ok\n[+]store ok\nlivez check passed\n")
    );
    assert_eq!(
        get(&api, "/healthz?verbose=1").await,
        ok("[+]ping ok\n[+]store ok\nhealthz check passed\n")
    );
    // Excluded checks are listed as such; unknown names are warned about.
    assert_eq!(
        get(
            &api,
            "/readyz?verbose&exclude=store&exclude=nope&exclude=etcd"
        )
        .await,
        ok(
            "[+]ping ok\n[+]store excluded: ok\n[+]informer-sync ok\n[+]keys ok\n\
            [+]shutdown ok\nwarn: some health checks cannot be excluded: no matches for \
            \"etcd\",\"nope\"\nreadyz check passed\n"
        )
    );
    // One check by name; a check an endpoint does not have is not found.
    assert_eq!(get(&api, "/readyz/store").await, ok("ok"));
    assert_eq!(get(&api, "/readyz/informer-sync").await, ok("ok"));
    assert_eq!(get(&api, "/livez/ping").await, ok("ok"));
    assert_eq!(get(&api, "/livez/keys").await.0, StatusCode::NOT_FOUND);
    assert_eq!(get(&api, "/readyz/etcd").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_failing_store_fails_readyz_and_livez_with_a_withheld_reason_until_it_answers_again() {
    let (api, store) = watched_api().await;
    store.failing.store(true, Ordering::SeqCst);
    let (code, text) = eventually_answers(&api, "/readyz", StatusCode::INTERNAL_SERVER_ERROR).await;
    // Always verbose on failure; the store's own error (an address) is not shown.
    assert_eq!(
        (code, text.as_str()),
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "[+]ping ok\n[-]store failed: reason withheld\n[+]informer-sync ok\n[+]keys ok\n\
             [+]shutdown ok\nreadyz check failed\n"
        )
    );
    assert_eq!(
        get(&api, "/livez").await,
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "[+]ping ok\n[-]store failed: reason withheld\nlivez check failed\n".to_owned()
        )
    );
    assert_eq!(
        get(&api, "/readyz/store").await,
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal server error: the store failed a read\n".to_owned()
        )
    );
    // Excluding the failing check passes.
    assert_eq!(get(&api, "/livez?exclude=store").await, ok("ok"));
    store.failing.store(false, Ordering::SeqCst);
    assert_eq!(
        eventually_answers(&api, "/readyz", StatusCode::OK).await,
        ok("ok")
    );
}

#[tokio::test]
async fn readyz_fails_once_shutdown_begins_and_livez_does_not() {
    let (api, _) = watched_api().await;
    api.begin_shutdown();
    assert_eq!(
        get(&api, "/readyz").await,
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "[+]ping ok\n[+]store ok\n[+]informer-sync ok\n[+]keys ok\n\
             [-]shutdown failed: reason withheld\nreadyz check failed\n"
                .to_owned()
        )
    );
    assert_eq!(get(&api, "/livez").await, ok("ok"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_verbose_readyz_reads_the_store_at_most_once_a_second_and_a_client_is_served() {
    let (api, store) = watched_api().await;
    let api = Arc::new(api);
    let admin = api.admin_token.clone();
    let before = store.health_reads.load(Ordering::SeqCst);
    let started = Instant::now();
    let run_for = Duration::from_secs(3);
    let flooders: Vec<_> = (0..64)
        .map(|_| {
            let api = api.clone();
            tokio::spawn(async move {
                let mut answered = 0u64;
                while started.elapsed() < run_for {
                    let (code, text) = get(&api, "/readyz?verbose").await;
                    assert_eq!(code, StatusCode::OK, "{text}");
                    answered += 1;
                }
                answered
            })
        })
        .collect();
    // The honest client: authenticated reads all along.
    let mut served = 0;
    while started.elapsed() < run_for {
        let (code, body) = api
            .request(Method::GET, "/api/v1/namespaces", None, Some(&admin))
            .await;
        assert_eq!(code, StatusCode::OK, "{body}");
        served += 1;
    }
    let mut flood = 0;
    for flooder in flooders {
        flood += flooder.await.expect("a flooder saw only 200s");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let reads = store.health_reads.load(Ordering::SeqCst) - before;
    eprintln!(
        "{flood} /readyz?verbose and {served} authenticated reads in {elapsed:.1} s: {reads} store reads"
    );
    assert!(flood > 1000, "the flood was only {flood} requests");
    assert!(served > 10, "the client was served only {served} times");
    // At most one read a second (plus the one in flight when the clock ran out).
    assert!(
        reads as f64 <= elapsed.ceil() + 1.0,
        "{reads} store reads in {elapsed:.1} s"
    );
}

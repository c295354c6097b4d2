//! The etcd backend against real etcd processes (Debian's `etcd-server`; a missing binary fails
//! these tests with instructions): the conformance suite on a shared one-member cluster, then
//! what only a networked, replicated store can show — writes whose replies are lost, watches
//! whose connection breaks, history compacted while a watch was away, and a member SIGKILLed
//! under a steady stream of writes.
//!
//! Faults between client and etcd come from [`Proxy`], a TCP proxy in this file that can drop
//! replies or cut every connection; member deaths are real SIGKILLs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures::StreamExt;
use kargo_store::etcd::{EtcdOptions, EtcdStore, EtcdTls};
use kargo_store::testing::{ClusterOptions, EtcdCluster};
use kargo_store::{Error, Event, EventKind, KeyValue, ListRequest, Revision, Store, WatchStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One member shared by the conformance cases (which order themselves around compaction); the
/// other tests each start their own cluster.
fn shared() -> &'static EtcdCluster {
    static SHARED: OnceLock<EtcdCluster> = OnceLock::new();
    SHARED.get_or_init(|| EtcdCluster::start(1))
}

/// A key prefix that no other test (or earlier run on the same cluster) uses.
fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("/{name}-{nanos}")
}

async fn connect(options: EtcdOptions) -> EtcdStore {
    EtcdStore::connect(options).await.unwrap()
}

// The suite runs with a key prefix, so every key also goes through the prefix mapping.
kargo_store::conformance_tests!(async {
    let options = tokio::task::block_in_place(|| shared().options());
    (connect(options.with_prefix("/kargo-conformance")).await, ())
});

/// The next item of a watch, failing the test if none comes within 20 s.
async fn next(watch: &mut WatchStream) -> Result<Event, Error> {
    tokio::time::timeout(Duration::from_secs(20), watch.next())
        .await
        .expect("a watch item within 20 s")
        .expect("the watch went on")
}

/// A TCP proxy in front of one etcd member that can drop etcd's replies or cut connections.
struct Proxy {
    /// `https` or `http`, as the member behind it (the proxy forwards TLS bytes untouched).
    scheme: String,
    port: u16,
    mode: Arc<AtomicU8>,
    connections: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

const FORWARD: u8 = 0;
const DROP_REPLIES: u8 = 1;
const DOWN: u8 = 2;

impl Proxy {
    async fn start(target: &str) -> Proxy {
        let (scheme, target) = target.split_once("://").expect("a URL");
        let (scheme, target) = (scheme.to_owned(), target.to_owned());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(AtomicU8::new(FORWARD));
        let connections = Arc::new(Mutex::new(Vec::new()));
        let (m, c) = (mode.clone(), connections.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if m.load(Ordering::SeqCst) == DOWN {
                    continue;
                }
                let (mode, target) = (m.clone(), target.clone());
                let task = tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(&target).await else {
                        return;
                    };
                    let (mut client_read, mut client_write) = client.into_split();
                    let (mut server_read, mut server_write) = server.into_split();
                    let requests = tokio::io::copy(&mut client_read, &mut server_write);
                    let replies = async {
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            let n = server_read.read(&mut buf).await.unwrap_or(0);
                            if n == 0 {
                                return;
                            }
                            if mode.load(Ordering::SeqCst) == DROP_REPLIES {
                                continue;
                            }
                            if client_write.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    };
                    tokio::select! { _ = requests => {}, _ = replies => {} }
                });
                c.lock().unwrap().push(task.abort_handle());
            }
        });
        Proxy {
            scheme,
            port,
            mode,
            connections,
        }
    }

    fn endpoint(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.port)
    }

    /// Forwards requests but throws etcd's replies away.
    fn drop_replies(&self) {
        self.mode.store(DROP_REPLIES, Ordering::SeqCst);
    }

    /// Closes every connection and refuses new ones.
    fn cut(&self) {
        self.mode.store(DOWN, Ordering::SeqCst);
        for task in self.connections.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    /// Forwards again.
    fn restore(&self) {
        self.mode.store(FORWARD, Ordering::SeqCst);
    }
}

/// Options that try the proxy first, then the member directly, with short attempts.
fn through(cluster: &EtcdCluster, proxy: &Proxy, direct: &str, prefix: &str) -> EtcdOptions {
    let mut options = cluster
        .options_for([proxy.endpoint(), direct.to_owned()])
        .with_prefix(prefix);
    options.attempt_timeout = Duration::from_millis(500);
    options
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_whose_replies_were_lost_are_reported_as_applied_not_as_conflicts() {
    // Its own member: the conformance cases compact the shared one, and this test reads history.
    let cluster = tokio::task::block_in_place(|| EtcdCluster::start(1));
    let direct = cluster.endpoint(0);
    let proxy = Proxy::start(&direct).await;
    let prefix = unique("lost-replies");
    // A new store prefers the proxy; once connected, the proxy starts throwing replies away. Each
    // write then reaches etcd through the proxy, its reply is lost, the attempt times out and the
    // write is sent again to the member directly, where its compare now fails.
    let via_proxy = || async {
        proxy.restore();
        let store = connect(through(&cluster, &proxy, &direct, &prefix)).await;
        proxy.drop_replies();
        store
    };
    let plain = connect(cluster.options_for([direct.clone()]).with_prefix(&prefix)).await;
    let before = plain.current_revision().await.unwrap();

    let created = via_proxy()
        .await
        .create("/k", b"v1".to_vec())
        .await
        .unwrap();
    assert!(created.mod_revision > before);
    assert_eq!(
        created,
        KeyValue {
            key: "/k".into(),
            value: b"v1".to_vec(),
            create_revision: created.mod_revision,
            mod_revision: created.mod_revision,
        }
    );
    let updated = via_proxy()
        .await
        .update("/k", b"v2".to_vec(), created.mod_revision)
        .await
        .unwrap();
    assert!(updated.mod_revision > created.mod_revision);
    assert_eq!(
        updated,
        KeyValue {
            value: b"v2".to_vec(),
            mod_revision: updated.mod_revision,
            ..created.clone()
        }
    );
    let deleted = via_proxy()
        .await
        .delete("/k", updated.mod_revision)
        .await
        .unwrap();
    assert!(deleted.mod_revision > updated.mod_revision);
    assert_eq!(
        deleted,
        KeyValue {
            mod_revision: deleted.mod_revision,
            ..updated.clone()
        }
    );

    // Each write happened exactly once.
    let mut watch = plain.watch("/", before).await.unwrap();
    let kinds: Vec<(EventKind, Revision)> = [
        next(&mut watch).await.unwrap(),
        next(&mut watch).await.unwrap(),
        next(&mut watch).await.unwrap(),
    ]
    .iter()
    .map(|e| (e.kind, e.revision()))
    .collect();
    assert_eq!(
        kinds,
        vec![
            (EventKind::Created, created.mod_revision),
            (EventKind::Updated, updated.mod_revision),
            (EventKind::Deleted, deleted.mod_revision),
        ]
    );
    assert_eq!(plain.get("/k").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_whose_connection_breaks_resumes_without_losing_or_repeating_events() {
    // Its own member: a compaction of the shared one while the watch is away would end it.
    let cluster = tokio::task::block_in_place(|| EtcdCluster::start(1));
    let direct = cluster.endpoint(0);
    let proxy = Proxy::start(&direct).await;
    let prefix = unique("watch-resume");
    let mut options = cluster.options_for([proxy.endpoint()]).with_prefix(&prefix);
    options.attempt_timeout = Duration::from_millis(500);
    let watching = connect(options).await;
    let writer = connect(cluster.options_for([direct]).with_prefix(&prefix)).await;
    let start = writer.current_revision().await.unwrap();
    let mut watch = watching.watch("/", start).await.unwrap();

    let mut acks = Vec::new();
    for n in 0..5 {
        acks.push(writer.create(&format!("/a{n}"), vec![n]).await.unwrap());
    }
    let mut seen = Vec::new();
    for _ in 0..5 {
        seen.push(next(&mut watch).await.unwrap().kv);
    }
    // The connection breaks and stays down while more writes commit.
    proxy.cut();
    for n in 0..5 {
        acks.push(writer.create(&format!("/b{n}"), vec![n]).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.restore();
    for n in 0..5 {
        acks.push(writer.create(&format!("/c{n}"), vec![n]).await.unwrap());
    }
    for _ in 0..10 {
        seen.push(next(&mut watch).await.unwrap().kv);
    }
    assert_eq!(seen, acks);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), watch.next())
            .await
            .is_err(),
        "no event beyond the writes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_that_resumes_into_compacted_history_ends_with_compacted() {
    // Its own member: this test compacts.
    let cluster = tokio::task::block_in_place(|| EtcdCluster::start(1));
    let proxy = Proxy::start(&cluster.endpoint(0)).await;
    let mut options = cluster.options_for([proxy.endpoint()]);
    options.attempt_timeout = Duration::from_millis(500);
    let watching = connect(options).await;
    let writer = connect(cluster.options()).await;
    let first = writer.create("/k", b"v1".to_vec()).await.unwrap();
    let mut watch = watching.watch("/", first.mod_revision).await.unwrap();
    let second = writer
        .update("/k", b"v2".to_vec(), first.mod_revision)
        .await
        .unwrap();
    assert_eq!(next(&mut watch).await.unwrap().kv, second);

    // While the watch is away, history moves on and is compacted past where it would resume.
    proxy.cut();
    let third = writer
        .update("/k", b"v3".to_vec(), second.mod_revision)
        .await
        .unwrap();
    let fourth = writer
        .update("/k", b"v4".to_vec(), third.mod_revision)
        .await
        .unwrap();
    writer.compact(fourth.mod_revision).await.unwrap();
    proxy.restore();
    match next(&mut watch).await {
        Err(Error::Compacted { requested, oldest }) => {
            assert_eq!(
                (requested, oldest),
                (second.mod_revision, fourth.mod_revision)
            );
        }
        other => panic!("expected Compacted, got {other:?}"),
    }
    assert!(
        tokio::time::timeout(Duration::from_secs(2), watch.next())
            .await
            .expect("the stream ends")
            .is_none()
    );
    // The record of the compaction is no key of the store.
    let all = writer.list(ListRequest::default()).await.unwrap();
    assert_eq!(all.kvs, vec![fourth]);
}

/// Writers that each keep one key going (create, then compare-and-swap updates), acknowledging
/// every write they got; one member is SIGKILLed, later restarted, then another one is killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_member_under_steady_writes_fails_no_request_and_loses_no_acknowledged_write() {
    const WRITERS: usize = 8;
    let mut cluster = tokio::task::block_in_place(|| EtcdCluster::start(3));
    let store = Arc::new(connect(cluster.options()).await);
    let start = store.current_revision().await.unwrap();
    let mut watch = store.watch("/", start).await.unwrap();

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (store, stop) = (store.clone(), stop.clone());
            tokio::spawn(async move {
                let key = format!("/steady/w{w}");
                let mut acks = vec![store.create(&key, b"0".to_vec()).await.unwrap()];
                let mut n = 0u64;
                let mut slowest = Duration::ZERO;
                while !stop.load(Ordering::SeqCst) {
                    n += 1;
                    let expected = acks.last().unwrap().mod_revision;
                    let sent = std::time::Instant::now();
                    match store
                        .update(&key, n.to_string().into_bytes(), expected)
                        .await
                    {
                        Ok(kv) => acks.push(kv),
                        Err(e) => panic!("writer {w}, write {n}: {e}"),
                    }
                    slowest = slowest.max(sent.elapsed());
                }
                (acks, slowest)
            })
        })
        .collect();

    let steady = Duration::from_millis(1500);
    tokio::time::sleep(steady).await;
    // The first endpoint is the one the store prefers: its requests and the watch break.
    tokio::task::block_in_place(|| cluster.kill(0));
    tokio::time::sleep(steady * 2).await;
    tokio::task::block_in_place(|| cluster.restart(0));
    tokio::time::sleep(steady).await;
    tokio::task::block_in_place(|| cluster.kill(1));
    tokio::time::sleep(steady * 2).await;
    stop.store(true, Ordering::SeqCst);

    let mut acks: Vec<KeyValue> = Vec::new();
    let mut slowest = Duration::ZERO;
    for writer in writers {
        let (written, slow) = writer.await.unwrap();
        acks.extend(written);
        slowest = slowest.max(slow);
    }
    eprintln!(
        "{} acknowledged writes from {WRITERS} writers; slowest write {slowest:?}",
        acks.len()
    );
    assert!(acks.len() > WRITERS * 20, "only {} writes", acks.len());
    acks.sort_by_key(|kv| kv.mod_revision);

    // Every acknowledged write is in the history, once, in order, and the last one of each key
    // is its current value.
    let mut events = Vec::with_capacity(acks.len());
    for _ in 0..acks.len() {
        events.push(next(&mut watch).await.unwrap().kv);
    }
    assert_eq!(events, acks);
    let mut last: BTreeMap<String, KeyValue> = BTreeMap::new();
    for kv in acks {
        last.insert(kv.key.clone(), kv);
    }
    let page = store
        .list(ListRequest {
            prefix: "/steady/".into(),
            ..ListRequest::default()
        })
        .await
        .unwrap();
    assert_eq!(page.kvs, last.into_values().collect::<Vec<_>>());
}

/// Connecting fails within its retry time with `Unavailable`; the message.
async fn refused(mut options: EtcdOptions) -> String {
    options.retry_timeout = Duration::from_secs(2);
    options.attempt_timeout = Duration::from_millis(500);
    match EtcdStore::connect(options).await {
        Err(Error::Unavailable(message)) => message,
        Err(other) => panic!("expected Unavailable, got {other:?}"),
        Ok(_) => panic!("connected"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_refuses_a_client_without_a_certificate_and_the_client_refuses_an_unknown_ca() {
    let cluster = tokio::task::block_in_place(shared);
    let files = cluster.client_tls_files().expect("a TLS cluster");
    let ca = std::fs::read(&files.ca).unwrap();
    // With the cluster's CA but no client certificate: the members close the connection.
    let message = refused(EtcdOptions::new(cluster.endpoints()).with_tls(EtcdTls {
        ca_pem: Some(ca),
        identity: None,
    }))
    .await;
    assert!(message.contains("no endpoint answered"), "{message}");
    // Trusting another CA (this one is the client certificate's, which signed nothing else): the
    // client refuses the members' certificate and says why.
    let other_ca = std::fs::read(&files.cert).unwrap();
    let message = refused(EtcdOptions::new(cluster.endpoints()).with_tls(EtcdTls {
        ca_pem: Some(other_ca),
        identity: Some((
            std::fs::read(&files.cert).unwrap(),
            std::fs::read(&files.key).unwrap(),
        )),
    }))
    .await;
    assert!(message.contains("certificate"), "{message}");
}

/// etcd's users: a store that logs in with a user and password works on keys under its prefix,
/// logs in again when its token expires (one second here) or its member restarts and forgets
/// every token, and says clearly when there is no user, a wrong password, or no access. The
/// cluster is plain HTTP, so this also covers `http://` endpoints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_and_password_log_in_and_log_in_again_when_the_token_expires_or_the_member_restarts()
{
    const PREFIX: &str = "/kargo-auth/";
    let mut cluster = tokio::task::block_in_place(|| {
        EtcdCluster::start_with(
            1,
            ClusterOptions {
                tls: false,
                extra_args: vec!["--auth-token-ttl".into(), "1".into()],
            },
        )
    });
    cluster.enable_auth("kargo", "kargo-password", PREFIX).await;
    let options = |prefix: &str| {
        let mut options = cluster.options().with_prefix(prefix);
        options.retry_timeout = Duration::from_secs(5);
        options
    };
    let fails = |result: Result<EtcdStore, Error>| match result {
        Err(Error::Internal(message)) => message,
        Err(other) => panic!("expected a final error, got {other:?}"),
        Ok(_) => panic!("connected"),
    };

    let message = fails(EtcdStore::connect(options(PREFIX)).await);
    assert!(message.contains("no etcd user was given"), "{message}");
    let message =
        fails(EtcdStore::connect(options(PREFIX).with_credentials("kargo", "wrong-pass")).await);
    assert!(
        message.contains(r#"etcd refused the login of user "kargo""#),
        "{message}"
    );
    assert!(!message.contains("wrong-pass"), "{message}");
    let message = fails(
        EtcdStore::connect(options("/elsewhere/").with_credentials("kargo", "kargo-password"))
            .await,
    );
    assert!(message.contains("permission denied"), "{message}");

    let store = connect(options(PREFIX).with_credentials("kargo", "kargo-password")).await;
    let first = store.create("/a", b"1".to_vec()).await.unwrap();
    // Idle past the token's time to live: the token expires, the next request logs in again.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let second = store
        .update("/a", b"2".to_vec(), first.mod_revision)
        .await
        .unwrap();
    assert_eq!(store.get("/a").await.unwrap(), Some(second.clone()));
    // A restarted member has forgotten every token; a watch and a write log in again.
    tokio::task::block_in_place(|| cluster.restart(0));
    let mut watch = store.watch("/", second.mod_revision).await.unwrap();
    let third = store
        .update("/a", b"3".to_vec(), second.mod_revision)
        .await
        .unwrap();
    assert_eq!(next(&mut watch).await.unwrap().kv, third);
    // The user needs no more than read-write access to its prefix: compaction works too.
    store.compact(third.mod_revision).await.unwrap();
    assert_eq!(
        store.compacted_revision().await.unwrap(),
        third.mod_revision
    );
}

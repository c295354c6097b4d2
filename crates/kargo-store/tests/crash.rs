//! Crash consistency: a process writing to the SQLite store is SIGKILLed at a random moment, again
//! and again on the same file; every write it had acknowledged must be there after reopening, and
//! revisions must never go back.
//!
//! The test re-runs its own binary as the child (`KARGO_CRASH_CHILD_DIR` set). The child writes
//! from several tasks (creates of fresh keys, compare-and-swap chains, create/delete cycles) and
//! prints `ACK ...` to stdout only after the store has answered. The parent reads those lines,
//! kills the child after a random delay, reopens the store and checks every acknowledged write.
//!
//! `KARGO_CRASH_ITERATIONS` sets the number of kills (default 40), `KARGO_CRASH_SEED` replays a
//! failing run (the seed is in every failure message).
//!
//! A kill only loses what the OS has not yet got; this test cannot pull the power. What it shows
//! is that an acknowledgement is only sent after the commit, and that reopening after any cut
//! point gives a consistent store with the revision counter intact.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kargo_store::sqlite::SqliteStore;
use kargo_store::{KeyValue, ListRequest, Revision, Store};

const CHILD_DIR: &str = "KARGO_CRASH_CHILD_DIR";
const CHILD_ITERATION: &str = "KARGO_CRASH_CHILD_ITERATION";
const TEST_NAME: &str = "acknowledged_writes_survive_sigkill_at_any_moment";

#[test]
fn acknowledged_writes_survive_sigkill_at_any_moment() {
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        let iteration = std::env::var(CHILD_ITERATION).unwrap();
        child(Path::new(&dir), &iteration);
    }
    parent();
}

// ---------------------------------------------------------------------------------------------
// The child: write until killed.

/// Writer tasks of each kind.
const CREATORS: usize = 4;
const CHAINS: usize = 4;
const CYCLES: usize = 3;

fn child(dir: &Path, iteration: &str) -> ! {
    // A failed write panics its task; end the whole process so the parent sees it exited early.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        std::process::abort();
    }));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = std::sync::Arc::new(SqliteStore::open(&dir.join("store.db")).unwrap());
        let mut tasks = Vec::new();
        for t in 0..CREATORS {
            let store = store.clone();
            let prefix = format!("/crash/create/{iteration}/{t}/");
            tasks.push(tokio::spawn(async move {
                for n in 0u64.. {
                    let key = format!("{prefix}{n}");
                    let kv = store
                        .create(&key, format!("c{n}").into_bytes())
                        .await
                        .unwrap();
                    ack(&format!("put {key} {} c{n}", kv.mod_revision));
                }
            }));
        }
        for t in 0..CHAINS {
            let store = store.clone();
            let key = format!("/crash/chain/{t}");
            tasks.push(tokio::spawn(async move {
                let mut current = match store.get(&key).await.unwrap() {
                    Some(kv) => kv,
                    None => {
                        let kv = store.create(&key, b"0".to_vec()).await.unwrap();
                        ack(&format!("put {key} {} 0", kv.mod_revision));
                        kv
                    }
                };
                loop {
                    let n: u64 = std::str::from_utf8(&current.value)
                        .unwrap()
                        .parse()
                        .unwrap();
                    let value = (n + 1).to_string();
                    current = store
                        .update(&key, value.clone().into_bytes(), current.mod_revision)
                        .await
                        .unwrap();
                    ack(&format!("put {key} {} {value}", current.mod_revision));
                }
            }));
        }
        for t in 0..CYCLES {
            let store = store.clone();
            let key = format!("/crash/cycle/{t}");
            tasks.push(tokio::spawn(async move {
                loop {
                    match store.get(&key).await.unwrap() {
                        Some(kv) => {
                            let gone = store.delete(&key, kv.mod_revision).await.unwrap();
                            ack(&format!("del {key} {}", gone.mod_revision));
                        }
                        None => {
                            let kv = store.create(&key, b"x".to_vec()).await.unwrap();
                            ack(&format!("put {key} {} x", kv.mod_revision));
                        }
                    }
                }
            }));
        }
        // The parent kills us long before this; if it does not, do not run forever.
        tokio::time::sleep(Duration::from_secs(60)).await;
    });
    std::process::exit(3)
}

/// Reports an acknowledged write: one line, flushed before the next write starts.
fn ack(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "ACK {line}").unwrap();
    out.flush().unwrap();
}

// ---------------------------------------------------------------------------------------------
// The parent: kill, reopen, check.

/// What the last acknowledged write to a key promises.
#[derive(Debug, Clone)]
enum Promise {
    /// The key holds this value at this revision, or a newer one.
    Put { revision: Revision, value: String },
    /// The key was deleted at this revision; it may have been created again since.
    Deleted { revision: Revision },
}

/// A small xorshift generator: enough to vary the kill moment, reproducible from its seed.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn parent() {
    let iterations: usize = std::env::var("KARGO_CRASH_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    let seed: u64 = std::env::var("KARGO_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        });
    let mut rng = XorShift(seed);
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut promises: HashMap<String, Promise> = HashMap::new();
    let mut last_current = Revision::ZERO;
    let mut total_acks = 0;
    let started = Instant::now();

    for iteration in 0..iterations {
        let delay = Duration::from_millis(rng.next() % 300);
        let context =
            format!("seed {seed}, iteration {iteration}, kill {delay:?} after the first ack");
        let acks = run_child(dir.path(), iteration, delay, &context);
        assert!(
            !acks.is_empty(),
            "{context}: the child acknowledged nothing"
        );
        total_acks += acks.len();

        let min_acked = acks.iter().map(|(_, p)| p.revision()).min().unwrap();
        let max_acked = acks.iter().map(|(_, p)| p.revision()).max().unwrap();
        assert!(
            min_acked > last_current,
            "{context}: revision {min_acked} handed out again (the store was at {last_current})"
        );
        // Check what this child wrote, plus the keys every child writes; keys of earlier
        // children are checked once more at the end.
        let mut to_check: Vec<String> = acks.iter().map(|(key, _)| key.clone()).collect();
        for (key, promise) in acks {
            promises.insert(key, promise);
        }
        to_check.extend(
            promises
                .keys()
                .filter(|key| !key.starts_with("/crash/create/"))
                .cloned(),
        );
        to_check.sort();
        to_check.dedup();

        let path = dir.path().join("store.db");
        integrity_check(&path, &context);
        let current = runtime.block_on(async {
            let store = SqliteStore::open(&path).unwrap();
            let current = store.current_revision().await.unwrap();
            for key in &to_check {
                let found = store.get(key).await.unwrap();
                check(key, &promises[key], found.as_ref(), &context);
            }
            store.close().await.unwrap();
            current
        });
        assert!(
            current >= max_acked,
            "{context}: current revision {current} is below the acknowledged {max_acked}"
        );
        assert!(
            current >= last_current,
            "{context}: current revision went back from {last_current} to {current}"
        );
        last_current = current;
    }
    let everything = runtime.block_on(async {
        let store = SqliteStore::open(&dir.path().join("store.db")).unwrap();
        let page = store
            .list(ListRequest {
                prefix: "/crash/".to_owned(),
                ..ListRequest::default()
            })
            .await
            .unwrap();
        page.kvs
            .into_iter()
            .map(|kv| (kv.key.clone(), kv))
            .collect::<HashMap<_, _>>()
    });
    let context = format!("seed {seed}, after the last iteration");
    for (key, promise) in &promises {
        check(key, promise, everything.get(key), &context);
    }
    let mut err = std::io::stderr().lock();
    writeln!(
        err,
        "crash test: {iterations} kills, {total_acks} acknowledged writes, {} keys checked, \
         final revision {last_current}, {:?} (seed {seed})",
        promises.len(),
        started.elapsed()
    )
    .unwrap();
}

impl Promise {
    fn revision(&self) -> Revision {
        match self {
            Promise::Put { revision, .. } | Promise::Deleted { revision } => *revision,
        }
    }
}

/// Runs one child until killed; returns its acknowledged writes in order.
fn run_child(
    dir: &Path,
    iteration: usize,
    delay: Duration,
    context: &str,
) -> Vec<(String, Promise)> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR, dir)
        .env(CHILD_ITERATION, iteration.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (first_ack, first_ack_seen) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut lines = Vec::new();
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            // A line cut by the kill has no newline: it was never fully reported.
            if line.ends_with(b"\n") && line.starts_with(b"ACK ") {
                if lines.is_empty() {
                    let _ = first_ack.send(());
                }
                lines.push(String::from_utf8_lossy(&line[4..line.len() - 1]).into_owned());
            }
        }
        lines
    });
    let waited = first_ack_seen.recv_timeout(Duration::from_secs(30));
    std::thread::sleep(delay);
    let early_exit = child.try_wait().unwrap();
    // SIGKILL on Unix.
    child.kill().unwrap();
    child.wait().unwrap();
    let lines = reader.join().unwrap();
    assert!(waited.is_ok(), "{context}: no acknowledgement within 30 s");
    assert!(
        early_exit.is_none(),
        "{context}: the child failed on its own: {early_exit:?}"
    );
    lines.iter().map(|line| parse_ack(line, context)).collect()
}

fn parse_ack(line: &str, context: &str) -> (String, Promise) {
    let fields: Vec<&str> = line.split(' ').collect();
    let revision = |s: &str| Revision(s.parse().unwrap());
    match fields[..] {
        ["put", key, rev, value] => (
            key.to_owned(),
            Promise::Put {
                revision: revision(rev),
                value: value.to_owned(),
            },
        ),
        ["del", key, rev] => (
            key.to_owned(),
            Promise::Deleted {
                revision: revision(rev),
            },
        ),
        _ => panic!("{context}: cannot parse {line:?}"),
    }
}

/// Whether what the reopened store holds keeps the promise of the last acknowledged write.
fn check(key: &str, promise: &Promise, found: Option<&KeyValue>, context: &str) {
    // Only cycle keys have deletes after puts: their last put may have been deleted since.
    let may_vanish = key.starts_with("/crash/cycle/");
    match (promise, found) {
        (Promise::Put { revision, value }, Some(kv)) => {
            assert!(
                kv.mod_revision >= *revision,
                "{context}: {key} is at {} but {revision} was acknowledged",
                kv.mod_revision
            );
            if kv.mod_revision == *revision {
                assert_eq!(kv.value, value.as_bytes(), "{context}: {key} at {revision}");
            }
        }
        (Promise::Put { revision, .. }, None) => assert!(
            may_vanish,
            "{context}: {key} is missing but was acknowledged at {revision}"
        ),
        (Promise::Deleted { .. }, None) => {}
        (Promise::Deleted { revision }, Some(kv)) => assert!(
            kv.create_revision > *revision,
            "{context}: {key} was deleted at {revision} but is there from {}",
            kv.create_revision
        ),
    }
}

/// SQLite's own check of the file after the kill.
fn integrity_check(path: &Path, context: &str) {
    let conn = rusqlite::Connection::open(path).unwrap();
    let result: String = conn
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(result, "ok", "{context}");
}

//! Durable write throughput of the SQLite store: one writer against many concurrent writers;
//! then the cost of listing one prefix of 1,000 keys in a store of 300,000.
//!
//! Every write is a `create` of a fresh key with a 1 KiB value, awaited before the writer's next
//! one, so each writer has one write in flight. With one writer every write pays its own commit
//! (and fsync); with many, the store's writer thread commits all queued writes together.
//!
//! Run (from the repository root; results in `docs/storage.md`):
//!
//! ```text
//! cargo run --release -p kargo-store --example store_writes [-- SECONDS_PER_RUN]
//! ```
//!
//! The database goes to a temp dir under `$KARGO_BENCH_DIR` (default: the system temp dir); it
//! must be on a real disk, not tmpfs, for the numbers to mean anything.

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kargo_store::Store;
use kargo_store::sqlite::SqliteStore;

const VALUE_SIZE: usize = 1024;

#[tokio::main]
async fn main() {
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let base = std::env::var_os("KARGO_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    println!(
        "durable creates of {VALUE_SIZE} B values, {seconds} s per run, in {}",
        base.display()
    );
    println!();
    println!("| writers | writes/s | mean latency |");
    println!("|--------:|---------:|-------------:|");
    for writers in [1usize, 4, 16, 64] {
        let dir = tempfile::tempdir_in(&base).unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("bench.db")).unwrap());
        let (writes, elapsed) = run(&store, writers, Duration::from_secs(seconds)).await;
        let rate = writes as f64 / elapsed.as_secs_f64();
        let latency = elapsed.as_secs_f64() * writers as f64 / writes as f64;
        println!(
            "| {writers:>7} | {rate:>8.0} | {:>9.2} ms |",
            latency * 1000.0
        );
        store.close().await.unwrap();
    }
    list_one_prefix(&base).await;
}

/// Fills a store with 300 prefixes of 1,000 keys and times a list of one prefix and a get.
async fn list_one_prefix(base: &std::path::Path) {
    const PREFIXES: usize = 300;
    const PER_PREFIX: usize = 1000;
    let dir = tempfile::tempdir_in(base).unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("list.db")).unwrap());
    let started = Instant::now();
    let tasks: Vec<_> = (0..64)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in (w..PREFIXES * PER_PREFIX).step_by(64) {
                    let key = format!(
                        "/registry/secrets/ns{:03}/s{:04}",
                        i / PER_PREFIX,
                        i % PER_PREFIX
                    );
                    store.create(&key, vec![b'x'; 512]).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    println!();
    println!(
        "filled {} keys in {:.1} s",
        PREFIXES * PER_PREFIX,
        started.elapsed().as_secs_f64()
    );
    let request = kargo_store::ListRequest {
        prefix: "/registry/secrets/ns150/".to_owned(),
        ..kargo_store::ListRequest::default()
    };
    let mut best = Duration::MAX;
    for _ in 0..20 {
        let started = Instant::now();
        let page = store.list(request.clone()).await.unwrap();
        best = best.min(started.elapsed());
        assert_eq!(page.kvs.len(), PER_PREFIX);
    }
    println!(
        "list of one prefix (1,000 of 300,000 keys): {:.2} ms (best of 20)",
        best.as_secs_f64() * 1000.0
    );
    let mut best = Duration::MAX;
    for i in 0..100 {
        let started = Instant::now();
        let key = format!("/registry/secrets/ns{:03}/s{:04}", i, i * 7);
        assert!(store.get(&key).await.unwrap().is_some());
        best = best.min(started.elapsed());
    }
    println!(
        "get of one key: {:.3} ms (best of 100)",
        best.as_secs_f64() * 1000.0
    );
    store.close().await.unwrap();
}

/// Runs `writers` tasks for `duration`; returns the acknowledged writes and the time taken.
async fn run(store: &Arc<SqliteStore>, writers: usize, duration: Duration) -> (u64, Duration) {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let value = vec![b'x'; VALUE_SIZE];
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let (store, done, stop, value) =
                (store.clone(), done.clone(), stop.clone(), value.clone());
            tokio::spawn(async move {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("/registry/secrets/ns{w}/s{n:08}");
                    store.create(&key, value.clone()).await.unwrap();
                    done.fetch_add(1, Ordering::Relaxed);
                    n += 1;
                }
            })
        })
        .collect();
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    (done.load(Ordering::Relaxed), started.elapsed())
}

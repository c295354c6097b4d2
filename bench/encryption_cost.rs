//! What encryption at rest costs: each provider's encrypt and decrypt of one value the size of a
//! token Secret, then a SQLite store of token-sized values read whole (as the informer's relist
//! does at start-up) without and with AES-GCM, and the start-up check (`verify`) that reads every
//! encrypted value once more.
//!
//! Run (from the repository root; results in `docs/operations.md`, "Encryption at rest"):
//!
//! ```text
//! cargo run --release -p kargo-store --example encryption_cost [-- VALUES]
//! ```

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Instant;

use kargo_store::encryption::{Algorithm, Cipher, EncryptedPrefix, EncryptedStore, Transformer};
use kargo_store::sqlite::SqliteStore;
use kargo_store::{ListRequest, Store};

/// About the size of a filled service-account token Secret (JWT, CA certificate, metadata).
const VALUE_SIZE: usize = 2048;
const PREFIX: &str = "/registry/secrets/";

fn transformer(algorithm: Algorithm) -> Transformer {
    let size = *algorithm.key_sizes().last().unwrap();
    Transformer::new(Cipher::new(algorithm, "k", &vec![7; size]).unwrap(), [])
}

#[tokio::main]
async fn main() {
    let values: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(50_000);
    let plain = vec![b'x'; VALUE_SIZE];
    println!("one {VALUE_SIZE} B value, 20,000 times each:");
    println!();
    println!("| provider | encrypt | decrypt |");
    println!("|---|---:|---:|");
    for algorithm in [Algorithm::AesGcm, Algorithm::AesCbc, Algorithm::Secretbox] {
        let t = transformer(algorithm);
        let key = "/registry/secrets/ns/name";
        let n = 20_000;
        let started = Instant::now();
        let mut stored = Vec::new();
        for _ in 0..n {
            stored = t.encrypt(key, &plain).unwrap();
        }
        let encrypt = started.elapsed().as_secs_f64() / n as f64;
        let started = Instant::now();
        for _ in 0..n {
            assert_eq!(t.decrypt(key, &stored).unwrap().len(), VALUE_SIZE);
        }
        let decrypt = started.elapsed().as_secs_f64() / n as f64;
        println!(
            "| {} | {:.1} µs | {:.1} µs |",
            algorithm.provider(),
            encrypt * 1e6,
            decrypt * 1e6
        );
    }

    println!();
    println!("{values} values of {VALUE_SIZE} B in SQLite, read whole in pages of 1,000:");
    println!();
    println!("| store | list everything | verify |");
    println!("|---|---:|---:|");
    for encrypted in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let raw: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("s.db")).unwrap());
        let wrapped = Arc::new(EncryptedStore::new(
            raw.clone(),
            vec![EncryptedPrefix {
                prefix: PREFIX.into(),
                transformer: Arc::new(transformer(Algorithm::AesGcm)),
            }],
        ));
        let store: Arc<dyn Store> = if encrypted { wrapped.clone() } else { raw };
        fill(&store, values, &plain).await;
        let started = Instant::now();
        let read = list_all(&store).await;
        let list = started.elapsed();
        assert_eq!(read, values);
        let verify = if encrypted {
            let started = Instant::now();
            assert_eq!(wrapped.verify().await.unwrap().values, values);
            format!("{:.0} ms", started.elapsed().as_secs_f64() * 1e3)
        } else {
            "—".to_owned()
        };
        println!(
            "| {} | {:.0} ms | {verify} |",
            if encrypted { "aesgcm" } else { "plain" },
            list.as_secs_f64() * 1e3
        );
    }
}

/// Creates `n` values with 64 writers (the store commits queued writes together).
async fn fill(store: &Arc<dyn Store>, n: usize, value: &[u8]) {
    let writers = 64;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        let value = value.to_vec();
        tasks.push(tokio::spawn(async move {
            for i in (w..n).step_by(writers) {
                store
                    .create(&format!("{PREFIX}ns/{i:07}"), value.clone())
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

async fn list_all(store: &Arc<dyn Store>) -> usize {
    let mut count = 0;
    let mut start_after = None;
    loop {
        let page = store
            .list(ListRequest {
                prefix: "/".into(),
                start_after: start_after.take(),
                revision: None,
                limit: Some(1000),
            })
            .await
            .unwrap();
        count += page.kvs.len();
        match (page.more, page.kvs.last()) {
            (true, Some(last)) => start_after = Some(last.key.clone()),
            _ => break,
        }
    }
    count
}

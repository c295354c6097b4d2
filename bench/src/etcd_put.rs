//! `etcd-put`: etcd's own write rate, through the project's etcd client (`kargo_store`'s
//! [`EtcdStore`]), as the yardstick for token creation on replicas over the same cluster.
//!
//! Each request is one `create`: the transaction a Kargo replica sends for a new object (the key
//! must not exist, then a put), with a value of a token Secret's size, over one gRPC channel as
//! one replica has. There is no `etcdctl` on the bench machine; this is `etcdctl benchmark put`'s
//! workload with the server's own client and transaction shape.

use std::sync::Arc;
use std::time::Duration;

use kargo_store::Store;
use kargo_store::etcd::{EtcdOptions, EtcdStore};

use crate::driver::{Until, closed_loop};

/// The arguments of `etcd-put`.
#[derive(clap::Args)]
pub struct Args {
    /// The etcd endpoints, comma-separated (`http://127.0.0.1:2379,...`).
    #[arg(long, value_delimiter = ',', required = true)]
    endpoints: Vec<String>,
    /// Writes in flight.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// How long to run, in seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Bytes of each value.
    #[arg(long, default_value_t = 1024)]
    value_bytes: usize,
    /// A label for the result line.
    #[arg(long, default_value = "etcd put")]
    label: String,
}

/// Runs the puts and prints the rate.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let prefix = format!("/kargo-bench-put/{}/", std::process::id());
    let store = EtcdStore::connect(EtcdOptions::new(args.endpoints).with_prefix(prefix)).await?;
    let store = Arc::new(store);
    let value = Arc::new(vec![b'x'; args.value_bytes]);
    let until = Until::Elapsed(Duration::from_secs(args.seconds));
    let run = closed_loop(args.concurrency, until, move |n| {
        let (store, value) = (store.clone(), value.clone());
        async move {
            store.create(&format!("k{n}"), value.to_vec()).await?;
            Ok(())
        }
    })
    .await?;
    println!("{}: {}", args.label, run.summary());
    Ok(())
}

//! `watch`: fan-out of ServiceAccount watches. Opens N watches on one namespace's
//! ServiceAccounts (one HTTP/1.1 connection each, or HTTP/2 streams sharing connections), then
//! creates accounts there through the Kargo REST API at a fixed rate, and checks that every
//! watcher gets every creation, once, in resourceVersion order; it reports the time from the
//! write being sent to each delivery, and the server's CPU time per delivered event.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Deserialize;
use serde_json::json;

use crate::driver::{ms, percentile};
use crate::procfs::CpuMeter;
use crate::{Ctx, client_builder};

/// How long a watcher waits for its next bytes before it stops waiting for missing events.
const IDLE: Duration = Duration::from_secs(30);

/// The arguments of `watch`.
#[derive(clap::Args)]
pub struct Args {
    /// The namespace (a Kargo project) to watch and create accounts in; it should hold no
    /// account named `w-<i>` yet.
    #[arg(long)]
    project: String,
    /// Concurrent watches.
    #[arg(long, default_value_t = 100)]
    watchers: usize,
    /// Open the watches as HTTP/2 streams, `--streams-per-connection` to a connection.
    #[arg(long)]
    http2: bool,
    /// HTTP/2 streams on one connection (the server allows 100 by default).
    #[arg(long, default_value_t = 100)]
    streams_per_connection: usize,
    /// Writes (account creations) per second.
    #[arg(long, default_value_t = 100)]
    rate: u64,
    /// How long to write, in seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// The server's process id, to report its CPU time per delivered event.
    #[arg(long)]
    pid: Option<u32>,
    /// A label for the result line.
    #[arg(long, default_value = "watch")]
    label: String,
}

/// The part of a watch event this reads.
#[derive(Deserialize)]
struct Event {
    #[serde(rename = "type")]
    kind: String,
    object: Object,
}

#[derive(Deserialize)]
struct Object {
    metadata: Metadata,
}

#[derive(Deserialize)]
struct Metadata {
    #[serde(default)]
    name: String,
    #[serde(default, rename = "resourceVersion")]
    resource_version: String,
}

/// What one watcher saw of the writes.
#[derive(Default)]
struct Seen {
    /// Write-to-delivery time of each write seen.
    latencies: Vec<Duration>,
    /// Distinct writes seen.
    distinct: usize,
    /// Events that came after one with a higher resourceVersion, or twice.
    out_of_order: usize,
}

/// The writes' send times, by index.
type Sent = Arc<Vec<OnceLock<Instant>>>;

/// Reads one watch until it has seen every write (or is idle for [`IDLE`]).
async fn watcher(
    http: reqwest::Client,
    url: String,
    token: String,
    ready: Arc<AtomicUsize>,
    sent: Sent,
) -> anyhow::Result<Seen> {
    let mut response = http.get(&url).bearer_auth(token).send().await?;
    if !response.status().is_success() {
        bail!("watch {url}: {}", response.status());
    }
    ready.fetch_add(1, Ordering::Relaxed);
    let mut seen = Seen::default();
    let mut got = vec![false; sent.len()];
    let mut last_revision = 0u64;
    let mut buffer = Vec::new();
    while seen.distinct < sent.len() {
        let Ok(chunk) = tokio::time::timeout(IDLE, response.chunk()).await else {
            break;
        };
        let Some(chunk) = chunk? else { break };
        let now = Instant::now();
        buffer.extend_from_slice(&chunk);
        while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            let event: Event = serde_json::from_slice(&line).context("a watch event")?;
            let Some(i) = event.object.metadata.name.strip_prefix("w-") else {
                continue;
            };
            let (Ok(i), "ADDED") = (i.parse::<usize>(), event.kind.as_str()) else {
                continue;
            };
            let revision: u64 = event.object.metadata.resource_version.parse()?;
            let Some(sent_at) = sent.get(i).and_then(OnceLock::get) else {
                continue;
            };
            if revision <= last_revision || got[i] {
                seen.out_of_order += 1;
            }
            last_revision = last_revision.max(revision);
            if !got[i] {
                got[i] = true;
                seen.distinct += 1;
                seen.latencies.push(now.saturating_duration_since(*sent_at));
            }
        }
    }
    Ok(seen)
}

/// Opens the watches, writes, and prints what the watchers saw.
pub async fn run(ctx: Arc<Ctx>, ca: Option<&std::path::Path>, args: Args) -> anyhow::Result<()> {
    let list = ctx
        .expect(
            "GET",
            &format!("/api/v1/namespaces/{}/serviceaccounts", args.project),
            None,
            &[200],
        )
        .await?;
    let from = list["metadata"]["resourceVersion"]
        .as_str()
        .context("no resourceVersion in the list")?;
    let url = format!(
        "{}/api/v1/namespaces/{}/serviceaccounts?watch=true&resourceVersion={from}",
        ctx.url, args.project
    );
    let writes = usize::try_from(args.rate * args.seconds)?;
    let sent: Sent = Arc::new((0..writes).map(|_| OnceLock::new()).collect());
    let ready = Arc::new(AtomicUsize::new(0));

    // HTTP/1.1: one client, whose pool opens a connection per watch in flight. HTTP/2: a
    // client (one connection) per `streams_per_connection` watches.
    let per_client = if args.http2 {
        args.streams_per_connection.max(1)
    } else {
        args.watchers.max(1)
    };
    let mut clients = Vec::new();
    let mut watchers = Vec::new();
    for w in 0..args.watchers {
        if w % per_client == 0 {
            let builder = client_builder(ca)?.timeout(Duration::from_secs(3600));
            let builder = if args.http2 {
                builder.http2_prior_knowledge()
            } else {
                builder.http1_only().pool_max_idle_per_host(args.watchers)
            };
            clients.push(builder.build()?);
        }
        let http = clients.last().context("a client")?.clone();
        let task = watcher(
            http,
            url.clone(),
            ctx.token.clone(),
            ready.clone(),
            sent.clone(),
        );
        watchers.push(tokio::spawn(task));
    }
    let opening = Instant::now();
    while ready.load(Ordering::Relaxed) < args.watchers {
        if watchers.iter().any(tokio::task::JoinHandle::is_finished) {
            break;
        }
        if opening.elapsed() > Duration::from_secs(120) {
            bail!(
                "only {} watches opened in 120 s",
                ready.load(Ordering::Relaxed)
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let opened_in = opening.elapsed();

    let server = CpuMeter::start(args.pid)?;
    let bench = CpuMeter::start(None)?;
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate.max(1) as f64));
    let mut posts = Vec::new();
    for i in 0..writes {
        ticks.tick().await;
        let (ctx, sent) = (ctx.clone(), sent.clone());
        let path = format!("/v1beta1/projects/{}/service-accounts", args.project);
        posts.push(tokio::spawn(async move {
            let _ = sent[i].set(Instant::now());
            let body = json!({"metadata": {"name": format!("w-{i}")}});
            ctx.expect("POST", &path, Some(body), &[201]).await
        }));
    }
    for post in posts {
        post.await??;
    }
    let mut latencies = Vec::new();
    let (mut complete, mut out_of_order, mut delivered) = (0, 0, 0);
    for w in watchers {
        let seen = w.await??;
        complete += usize::from(seen.distinct == writes && seen.out_of_order == 0);
        out_of_order += seen.out_of_order;
        delivered += seen.distinct;
        latencies.extend(seen.latencies);
    }
    latencies.sort();
    let transport = if args.http2 {
        format!("http2 ({} streams/connection)", per_client)
    } else {
        "http1.1 chunked".to_owned()
    };
    let server_cpu = match args.pid {
        Some(_) => format!("{:.2}us", server.micros_per(delivered)?),
        None => "n/a".to_owned(),
    };
    println!(
        "{}: watchers={} transport={transport} opened-in={:.2}s writes={writes} at {}/s \
         delivered={delivered} of {} complete-and-in-order={complete}/{} out-of-order={out_of_order} \
         delivery p50={}ms p99={}ms max={}ms server-cpu={server_cpu}/event bench-cpu={:.2}us/event",
        args.label,
        args.watchers,
        opened_in.as_secs_f64(),
        args.rate,
        writes * args.watchers,
        args.watchers,
        ms(percentile(&latencies, 50.0)),
        ms(percentile(&latencies, 99.0)),
        ms(latencies.last().copied().unwrap_or_default()),
        bench.micros_per(delivered)?,
    );
    Ok(())
}

//! `upstream`: the read path as upstream Kargo's design would serve it, side by side with ours.
//!
//! Upstream Kargo's API server authenticates and authorizes each request by asking the
//! Kubernetes API server: a `TokenReview` of the caller's bearer token, then a
//! `SubjectAccessReview` of the user it names, and only then answers from its cache. This
//! emulates that from the client: for each logical request it sends, one after the other on the
//! same keep-alive TLS connection, (1) a `TokenReview` of the reader's token and (2) a
//! `SubjectAccessReview` for the user and groups the review returned, both to this server's own
//! review endpoints with the reviewer's (admin's) token, as a Kargo API server would with its
//! own credentials, and (3) the read itself. What it models: the two extra loopback TLS round
//! trips and the API server's work for them (parsing, authenticating the reviewer, the review,
//! JSON in and out). What it leaves out: the upstream API server's own work between the calls
//! and its client-side JSON; so the ratio flatters the upstream design slightly. Step (3)
//! still authenticates the reader here (a cache hit, about 1.4 µs of server CPU).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::Ctx;
use crate::driver::{Run, Until, closed_loop};
use crate::procfs::CpuMeter;

/// The arguments of `upstream`.
#[derive(clap::Args)]
pub struct Args {
    /// The namespace of the object read.
    #[arg(long)]
    namespace: String,
    /// The ServiceAccount read.
    #[arg(long)]
    name: String,
    /// The reader's token (a ServiceAccount token allowed to get the account).
    #[arg(long, env = "KARGO_BENCH_READER_TOKEN", hide_env_values = true)]
    reader_token: String,
    /// Clients.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Seconds per half of each pair.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Pairs (ours, then upstream's) to run; the median pair's ratio is the result.
    #[arg(long, default_value_t = 3)]
    pairs: usize,
    /// The server's process id, for its CPU time per logical request.
    #[arg(long)]
    pid: Option<u32>,
}

impl Args {
    /// How many connections the run keeps open.
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }
}

/// POSTs a review with the reviewer's token and returns its status.
async fn review(ctx: &Ctx, path: &str, body: Value) -> anyhow::Result<Value> {
    let mut answer = ctx.expect("POST", path, Some(body), &[200, 201]).await?;
    Ok(answer["status"].take())
}

/// One logical request the upstream way.
async fn upstream_read(ctx: &Ctx, args: &Args, read: &Ctx) -> anyhow::Result<()> {
    let status = review(
        ctx,
        "/apis/authentication.k8s.io/v1/tokenreviews",
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
               "spec": {"token": args.reader_token}}),
    )
    .await?;
    if status["authenticated"] != Value::Bool(true) {
        bail!("TokenReview did not authenticate the reader: {status}");
    }
    let user = &status["user"];
    let status = review(
        ctx,
        "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
               "spec": {"user": user["username"], "groups": user["groups"], "uid": user["uid"],
                        "extra": user.get("extra").cloned().unwrap_or(json!({})),
                        "resourceAttributes": {"namespace": args.namespace, "verb": "get",
                                               "resource": "serviceaccounts", "name": args.name}}}),
    )
    .await?;
    if status["allowed"] != Value::Bool(true) {
        bail!("SubjectAccessReview did not allow the read: {status}");
    }
    read.expect("GET", &path(args), None, &[200])
        .await
        .map(|_| ())
}

fn path(args: &Args) -> String {
    format!(
        "/api/v1/namespaces/{}/serviceaccounts/{}",
        args.namespace, args.name
    )
}

/// Runs one half of a pair; returns the run and the server's CPU time per logical request.
async fn half(
    ctx: &Arc<Ctx>,
    read: &Arc<Ctx>,
    args: &Arc<Args>,
    upstream: bool,
) -> anyhow::Result<(Run, f64)> {
    let cpu = CpuMeter::start(args.pid)?;
    let (ctx, read, a) = (ctx.clone(), read.clone(), args.clone());
    let run = closed_loop(
        args.concurrency,
        Until::Elapsed(Duration::from_secs(args.seconds)),
        move |_| {
            let (ctx, read, a) = (ctx.clone(), read.clone(), a.clone());
            async move {
                if upstream {
                    upstream_read(&ctx, &a, &read).await
                } else {
                    read.expect("GET", &path(&a), None, &[200])
                        .await
                        .map(|_| ())
                }
            }
        },
    )
    .await?;
    let per = cpu.micros_per(run.latencies.len())?;
    Ok((run, per))
}

/// Runs the pairs and prints both sides and their ratios.
pub async fn run(ctx: Arc<Ctx>, args: Args) -> anyhow::Result<()> {
    let read = Arc::new(Ctx {
        url: ctx.url.clone(),
        token: args.reader_token.clone(),
        http: ctx.http.clone(),
    });
    let args = Arc::new(args);
    let mut ratios = Vec::new();
    for pair in 1..=args.pairs {
        let (ours, ours_cpu) = half(&ctx, &read, &args, false).await?;
        let (theirs, theirs_cpu) = half(&ctx, &read, &args, true).await?;
        println!(
            "upstream pair {pair}: our read path: {} server-cpu={ours_cpu:.2}us/request",
            ours.summary()
        );
        println!(
            "upstream pair {pair}: TokenReview + SubjectAccessReview + read: {} server-cpu={theirs_cpu:.2}us/request",
            theirs.summary()
        );
        let ratio = theirs.rate() / ours.rate();
        println!(
            "upstream pair {pair}: rate ratio (upstream design / ours) {ratio:.3}, server CPU ratio {:.2}x",
            theirs_cpu / ours_cpu
        );
        ratios.push(ratio);
    }
    ratios.sort_by(f64::total_cmp);
    let median = ratios.get(ratios.len() / 2).context("no pairs")?;
    println!("upstream: rate ratio (median of the pairs) {median:.3} of our read path");
    Ok(())
}

//! `cold`: the token cache's cold path. Creates N tokens, then uses each once: the first ones
//! one at a time (the latency of a request with a token the server has never verified), the
//! rest from many clients (the rate); then the same tokens again, warm, for the ratio within
//! the run.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use crate::driver::{Run, Until, closed_loop};
use crate::procfs::CpuMeter;
use crate::{Ctx, client};

/// GETs `url` with `token`, expecting `expect` (any status when 0); returns the status.
pub async fn get(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    expect: u16,
) -> anyhow::Result<u16> {
    let response = http.get(url).bearer_auth(token).send().await?;
    let code = response.status().as_u16();
    response.bytes().await?;
    if code != expect && expect != 0 {
        bail!("GET {url}: {code}");
    }
    Ok(code)
}

/// The arguments of `cold`.
#[derive(clap::Args)]
pub struct ColdArgs {
    /// The project holding the account.
    #[arg(long)]
    project: String,
    /// The account the tokens are made for (it must be allowed to read `--path`).
    #[arg(long)]
    account: String,
    /// The path each token reads.
    #[arg(long)]
    path: String,
    /// How many tokens.
    #[arg(long, default_value_t = 10_000)]
    tokens: usize,
    /// How many of them are first used one at a time (the cold latency).
    #[arg(long, default_value_t = 1_000)]
    sequential: usize,
    /// Clients for the rest.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// The server's process id, for its CPU time per request.
    #[arg(long)]
    pid: Option<u32>,
}

/// Uses each of `tokens` once from `concurrency` clients; returns the run and the server's CPU
/// time per request.
async fn use_each(
    http: &reqwest::Client,
    url: &str,
    tokens: &Arc<Vec<String>>,
    concurrency: usize,
    pid: Option<u32>,
) -> anyhow::Result<(Run, f64)> {
    let cpu = CpuMeter::start(pid)?;
    let (http, url, all) = (http.clone(), url.to_owned(), tokens.clone());
    let run = closed_loop(
        concurrency,
        Until::Requests(tokens.len() as u64),
        move |n| {
            let (http, url, all) = (http.clone(), url.clone(), all.clone());
            async move {
                get(&http, &url, &all[usize::try_from(n)?], 200).await?;
                Ok(())
            }
        },
    )
    .await?;
    let per = cpu.micros_per(run.latencies.len())?;
    Ok((run, per))
}

/// Runs `cold`.
pub async fn cold(
    ctx: Arc<Ctx>,
    ca: Option<&std::path::Path>,
    args: ColdArgs,
) -> anyhow::Result<()> {
    let made = Arc::new(std::sync::Mutex::new(vec![String::new(); args.tokens]));
    let tag = std::process::id();
    let (ctx2, made2, project, account) = (
        ctx.clone(),
        made.clone(),
        args.project.clone(),
        args.account.clone(),
    );
    let creation = closed_loop(32, Until::Requests(args.tokens as u64), move |n| {
        let (ctx, made) = (ctx2.clone(), made2.clone());
        let path = format!("/v1beta1/projects/{project}/service-accounts/{account}/tokens");
        let account = account.clone();
        async move {
            let body = json!({"name": format!("{account}-cold-{tag}-{n}")});
            let secret = ctx.expect("POST", &path, Some(body), &[201]).await?;
            let encoded = secret["data"]["token"]
                .as_str()
                .context("no token in the answer")?;
            let token = String::from_utf8(STANDARD.decode(encoded)?)?;
            made.lock().map_err(|_| anyhow::anyhow!("poisoned"))?[usize::try_from(n)?] = token;
            Ok(())
        }
    })
    .await?;
    println!(
        "cold: created {} tokens: {}",
        args.tokens,
        creation.summary()
    );
    let all = std::mem::take(&mut *made.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
    tokio::time::sleep(Duration::from_millis(500)).await;

    let url = format!("{}{}", ctx.url, args.path);
    let http = client(ca, args.concurrency)?;
    let sequential = args.sequential.min(all.len());
    let first = Arc::new(all[..sequential].to_vec());
    let rest = Arc::new(all[sequential..].to_vec());
    // Warm the connections (with a token that is not among the measured ones).
    closed_loop(
        args.concurrency,
        Until::Requests(args.concurrency as u64 * 4),
        {
            let (http, url, token) = (http.clone(), url.clone(), ctx.token.clone());
            move |_| {
                let (http, url, token) = (http.clone(), url.clone(), token.clone());
                async move { get(&http, &url, &token, 0).await.map(|_| ()) }
            }
        },
    )
    .await?;
    let (cold1, cpu_cold1) = use_each(&http, &url, &first, 1, args.pid).await?;
    let (warm1, cpu_warm1) = use_each(&http, &url, &first, 1, args.pid).await?;
    println!(
        "cold: first use, one at a time ({sequential} tokens): {} server-cpu={cpu_cold1:.1}us/request",
        cold1.summary()
    );
    println!(
        "cold: second use of the same tokens, one at a time: {} server-cpu={cpu_warm1:.1}us/request",
        warm1.summary()
    );
    if !rest.is_empty() {
        let (cold_n, cpu_cold_n) = use_each(&http, &url, &rest, args.concurrency, args.pid).await?;
        let (warm_n, cpu_warm_n) = use_each(&http, &url, &rest, args.concurrency, args.pid).await?;
        println!(
            "cold: first use, {} clients ({} tokens): {} server-cpu={cpu_cold_n:.1}us/request",
            args.concurrency,
            rest.len(),
            cold_n.summary()
        );
        println!(
            "cold: second use, {} clients: {} server-cpu={cpu_warm_n:.1}us/request",
            args.concurrency,
            warm_n.summary()
        );
        println!(
            "cold: first-use rate / second-use rate = {:.3}",
            cold_n.rate() / warm_n.rate()
        );
    }
    Ok(())
}

//! `kargo-bench`: the load generator and seeding tool of `bench/run.sh`.
//!
//! - `seed`: projects, Kargo ServiceAccounts and tokens through the Kargo REST API;
//! - `load`: a closed-loop load of one request shape at a fixed concurrency, reporting
//!   requests per second and latency percentiles;
//! - `revocation`: how soon a deleted token is refused, on the same server or another replica;
//! - `etcd-put`: etcd's own write rate through the project's etcd client ([`etcd_put`]);
//! - `watch`: fan-out of ServiceAccount watches ([`watch`]);
//! - `cold` and `flood`: first use of unseen tokens ([`tokens`]), and random JWTs ([`flood`]);
//! - `idle`: many idle keep-alive TLS connections and the server's memory for them ([`idle`]);
//! - `upstream`: the read path with upstream Kargo's per-request reviews ([`upstream`]).
//!
//! Run `bench/run.sh` rather than this directly; see `bench/README.md`.

#![allow(clippy::print_stdout)]

mod driver;
mod etcd_put;
mod flood;
mod idle;
mod procfs;
mod tokens;
mod upstream;
mod watch;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use serde_json::{Value, json};

use driver::{Until, closed_loop, ms, percentile};

#[derive(Parser)]
#[command(
    name = "kargo-bench",
    about = "Benchmark load generator for kargo server"
)]
struct Cli {
    /// The server URL (`https://127.0.0.1:8443`).
    #[arg(long, global = true, default_value = "https://127.0.0.1:8443")]
    url: String,
    /// The CA certificate to trust.
    #[arg(long, global = true)]
    ca: Option<std::path::PathBuf>,
    /// The bearer token (the admin's, from `POST /v1beta1/login`, unless said otherwise).
    #[arg(long, global = true, env = "KARGO_BENCH_TOKEN", hide_env_values = true)]
    token: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Logs in as the admin and prints the token.
    Login {
        /// The admin password.
        #[arg(long, env = "KARGO_ADMIN_PASSWORD", hide_env_values = true)]
        password: String,
    },
    /// Creates projects, accounts and tokens.
    Seed {
        /// Project names are `<prefix>-<i>`.
        #[arg(long, default_value = "bench")]
        prefix: String,
        /// How many projects.
        #[arg(long, default_value_t = 1)]
        projects: usize,
        /// Accounts per project (`sa-<j>`).
        #[arg(long, default_value_t = 10)]
        accounts: usize,
        /// Tokens per account (`sa-<j>-t<k>`).
        #[arg(long, default_value_t = 0)]
        tokens: usize,
        /// Requests in flight.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
    },
    /// Runs one request shape at a fixed concurrency and reports rate and latency.
    Load {
        /// `GET` or `POST`.
        #[arg(long, default_value = "GET")]
        method: String,
        /// The path; `{n}` is replaced by a counter unique to each request.
        #[arg(long)]
        path: String,
        /// A JSON body; `{n}` is replaced as in the path.
        #[arg(long)]
        body: Option<String>,
        /// Requests in flight.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// How long to run, in seconds.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// How many requests to run instead of a duration.
        #[arg(long)]
        requests: Option<u64>,
        /// The status code every answer must have.
        #[arg(long, default_value_t = 200)]
        expect: u16,
        /// A label for the result line.
        #[arg(long, default_value = "load")]
        label: String,
    },
    /// Measures revocation: create a token, use it, delete it, then time until it is refused.
    Revocation {
        /// The project holding the account.
        #[arg(long)]
        project: String,
        /// The account the tokens belong to.
        #[arg(long)]
        account: String,
        /// How many trials.
        #[arg(long, default_value_t = 100)]
        trials: usize,
        /// Another replica's URL to observe the refusal on (the same server if absent).
        #[arg(long)]
        observe: Option<String>,
    },
    /// Measures etcd's own write rate with the project's etcd client.
    EtcdPut(etcd_put::Args),
    /// Measures watch fan-out: N watches, a fixed write rate, delivery time and order.
    Watch(watch::Args),
    /// Measures the first use of tokens the server has not seen yet.
    Cold(tokens::ColdArgs),
    /// Sends random well-formed JWTs while an honest client reads.
    Flood(flood::FloodArgs),
    /// Opens many idle keep-alive TLS connections and reports the server's memory per connection.
    Idle(idle::Args),
    /// Compares our read path with upstream Kargo's TokenReview + SubjectAccessReview per request.
    Upstream(upstream::Args),
}

/// A client builder that trusts `ca` and gives up on a request after 60 s.
fn client_builder(ca: Option<&std::path::Path>) -> anyhow::Result<reqwest::ClientBuilder> {
    let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(60));
    if let Some(ca) = ca {
        let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
        builder = builder.add_root_certificate(reqwest::Certificate::from_pem(&pem)?);
    }
    Ok(builder)
}

/// An HTTP/1.1 client keeping up to `connections` connections alive.
fn client(ca: Option<&std::path::Path>, connections: usize) -> anyhow::Result<reqwest::Client> {
    Ok(client_builder(ca)?
        .http1_only()
        .pool_max_idle_per_host(connections.max(1))
        .build()?)
}

struct Ctx {
    url: String,
    token: String,
    http: reqwest::Client,
}

impl Ctx {
    async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let method = reqwest::Method::from_bytes(method.as_bytes())?;
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let code = response.status().as_u16();
        let bytes = response.bytes().await?;
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok((code, value))
    }

    async fn expect(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        codes: &[u16],
    ) -> anyhow::Result<Value> {
        let (code, value) = self.send(method, path, body).await?;
        if !codes.contains(&code) {
            bail!("{method} {path}: {code} {value}");
        }
        Ok(value)
    }
}

/// POSTs `count` objects with `concurrency` in flight: object `i` is `make(i)`, a path and a body.
/// One that already exists (409) counts as created, so a seed can run again over its own store.
async fn create_all<F>(
    ctx: &Arc<Ctx>,
    count: usize,
    concurrency: usize,
    make: F,
) -> anyhow::Result<()>
where
    F: Fn(usize) -> (String, Value) + Send + Sync + 'static,
{
    let make = Arc::new(make);
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (ctx, make, next) = (ctx.clone(), make.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= count {
                    return Ok::<(), anyhow::Error>(());
                }
                let (path, body) = make(i);
                ctx.expect("POST", &path, Some(body), &[201, 409]).await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

async fn seed(
    ctx: Arc<Ctx>,
    prefix: String,
    projects: usize,
    accounts: usize,
    tokens: usize,
    concurrency: usize,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let p = prefix.clone();
    create_all(&ctx, projects, concurrency.min(8), move |i| {
        let body = json!({"metadata": {"name": format!("{p}-{i}")}});
        ("/v1beta1/projects".to_owned(), body)
    })
    .await?;
    let projects_done = started.elapsed();
    let p = prefix.clone();
    create_all(&ctx, projects * accounts, concurrency, move |i| {
        let (project, a) = (i / accounts, i % accounts);
        let path = format!("/v1beta1/projects/{p}-{project}/service-accounts");
        (path, json!({"metadata": {"name": format!("sa-{a}")}}))
    })
    .await?;
    let accounts_done = started.elapsed();
    create_all(&ctx, projects * accounts * tokens, concurrency, move |i| {
        let (project, rest) = (i / (accounts * tokens), i % (accounts * tokens));
        let (a, t) = (rest / tokens, rest % tokens);
        let path = format!("/v1beta1/projects/{prefix}-{project}/service-accounts/sa-{a}/tokens");
        (path, json!({"name": format!("sa-{a}-t{t}")}))
    })
    .await?;
    let total = started.elapsed();
    println!(
        "seeded projects={projects} accounts={} tokens={} in {:.1}s (projects {:.1}s, accounts {:.1}s, tokens {:.1}s)",
        projects * accounts,
        projects * accounts * tokens,
        total.as_secs_f64(),
        projects_done.as_secs_f64(),
        (accounts_done - projects_done).as_secs_f64(),
        (total - accounts_done).as_secs_f64(),
    );
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn load(
    ctx: Arc<Ctx>,
    method: String,
    path: String,
    body: Option<String>,
    concurrency: usize,
    seconds: u64,
    requests: Option<u64>,
    expect: u16,
    label: String,
) -> anyhow::Result<()> {
    let until = match requests {
        Some(r) => Until::Requests(r),
        None => Until::Elapsed(Duration::from_secs(seconds)),
    };
    let run = closed_loop(concurrency, until, move |n| {
        let (ctx, method) = (ctx.clone(), method.clone());
        let path = path.replace("{n}", &n.to_string());
        let body = body
            .as_ref()
            .map(|b| serde_json::from_str::<Value>(&b.replace("{n}", &n.to_string())));
        async move {
            let (code, value) = ctx.send(&method, &path, body.transpose()?).await?;
            if code != expect {
                bail!("{method} {path}: {code} {value}");
            }
            Ok(())
        }
    })
    .await?;
    println!("{label}: {}", run.summary());
    Ok(())
}

async fn revocation(
    ctx: Arc<Ctx>,
    ca: Option<&std::path::Path>,
    project: String,
    account: String,
    trials: usize,
    observe: Option<String>,
) -> anyhow::Result<()> {
    let observer_url = observe.unwrap_or_else(|| ctx.url.clone());
    let mut delays = Vec::new();
    let mut accepted_after_delete = 0;
    for trial in 0..trials {
        let name = format!("{account}-revoke-{trial}-{}", std::process::id());
        let secret = ctx
            .expect(
                "POST",
                &format!("/v1beta1/projects/{project}/service-accounts/{account}/tokens"),
                Some(json!({"name": name})),
                &[201],
            )
            .await?;
        let encoded = secret["data"]["token"]
            .as_str()
            .context("no token in the answer")?;
        use base64::Engine;
        let token = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(encoded)?)?;
        let observer = Ctx {
            url: observer_url.clone(),
            token,
            http: client(ca, 1)?,
        };
        let probe = "/apis/authentication.k8s.io/v1/selfsubjectreviews";
        let body = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"});
        // The token works (on the observer) before it is deleted.
        let deadline = Instant::now() + Duration::from_secs(5);
        while observer.send("POST", probe, Some(body.clone())).await?.0 != 201 {
            if Instant::now() > deadline {
                bail!("a new token never worked on {observer_url}");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        ctx.expect(
            "DELETE",
            &format!("/v1beta1/projects/{project}/service-account-tokens/{name}"),
            None,
            &[204],
        )
        .await?;
        let deleted = Instant::now();
        loop {
            let (code, answer) = observer.send("POST", probe, Some(body.clone())).await?;
            // 429: the address has failed too often and its invalid tokens are refused before
            // they are checked (`kargo_auth::limits`; a valid token is never refused): after
            // 100 trials from one address every refusal is a 429.
            if code == 401 || code == 429 {
                delays.push(deleted.elapsed());
                break;
            }
            if code != 201 {
                bail!("the probe answered {code} {answer}");
            }
            accepted_after_delete += 1;
            if deleted.elapsed() > Duration::from_secs(10) {
                bail!("a deleted token still worked after 10 s");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    delays.sort();
    println!(
        "revocation: trials={trials} accepted-after-delete={accepted_after_delete} p50={}ms p90={}ms p99={}ms max={}ms",
        ms(percentile(&delays, 50.0)),
        ms(percentile(&delays, 90.0)),
        ms(percentile(&delays, 99.0)),
        ms(delays.last().copied().unwrap_or_default()),
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let ca = cli.ca.as_deref();
    if let Command::Login { password } = &cli.command {
        let http = client(ca, 1)?;
        let response = http
            .post(format!("{}/v1beta1/login", cli.url))
            .bearer_auth(password)
            .send()
            .await?;
        let value: Value = response.json().await?;
        let token = value["idToken"].as_str().context("login failed")?;
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{token}")?;
        return Ok(());
    }
    let token = cli
        .token
        .clone()
        .context("--token (or KARGO_BENCH_TOKEN) is required")?;
    let connections = match &cli.command {
        Command::Seed { concurrency, .. } | Command::Load { concurrency, .. } => *concurrency,
        Command::Upstream(args) => args.concurrency(),
        _ => 1,
    };
    let ctx = Arc::new(Ctx {
        url: cli.url.clone(),
        token,
        http: client(ca, connections)?,
    });
    match cli.command {
        Command::Login { .. } => Ok(()),
        Command::Seed {
            prefix,
            projects,
            accounts,
            tokens,
            concurrency,
        } => seed(ctx, prefix, projects, accounts, tokens, concurrency).await,
        Command::Load {
            method,
            path,
            body,
            concurrency,
            seconds,
            requests,
            expect,
            label,
        } => {
            load(
                ctx,
                method,
                path,
                body,
                concurrency,
                seconds,
                requests,
                expect,
                label,
            )
            .await
        }
        Command::Revocation {
            project,
            account,
            trials,
            observe,
        } => revocation(ctx, ca, project, account, trials, observe).await,
        Command::EtcdPut(args) => etcd_put::run(args).await,
        Command::Watch(args) => watch::run(ctx, ca, args).await,
        Command::Cold(args) => tokens::cold(ctx, ca, args).await,
        Command::Flood(args) => flood::flood(ctx, ca, args).await,
        Command::Upstream(args) => upstream::run(ctx, args).await,
        Command::Idle(args) => idle::run(ca, args).await,
    }
}

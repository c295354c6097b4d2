//! `flood`: an attacker's random tokens. Sends well-formed JWTs with random claims and
//! signatures under the server's own key id (so that each costs a signature check), from many
//! loopback source addresses (each below the per-address failure allowance, so that the limiter
//! does not simply refuse them), while an honest client reads; reports the server's resident
//! memory through the flood and the honest client's latency before and during it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use crate::driver::{Run, Until, closed_loop, ms};
use crate::procfs::{CpuMeter, rss_kib};
use crate::tokens::get;
use crate::{Ctx, client, client_builder};

/// The arguments of `flood`.
#[derive(clap::Args)]
pub struct FloodArgs {
    /// The honest client's path (read with `--honest-token`).
    #[arg(long)]
    path: String,
    /// The honest client's token; its header (key id) and claims are the flood's template.
    #[arg(long, env = "KARGO_BENCH_HONEST_TOKEN", hide_env_values = true)]
    honest_token: String,
    /// Random tokens to send.
    #[arg(long, default_value_t = 1_000_000)]
    requests: u64,
    /// Flood connections in flight.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Random tokens sent from one source address (the server blocks an address after 100
    /// failures; below that every token is verified).
    #[arg(long, default_value_t = 90)]
    per_address: u64,
    /// Honest clients.
    #[arg(long, default_value_t = 2)]
    honest_concurrency: usize,
    /// Seconds the honest clients are measured alone before the flood.
    #[arg(long, default_value_t = 5)]
    baseline_seconds: u64,
    /// The server's process id, for its resident memory and CPU time.
    #[arg(long)]
    pid: u32,
}

/// A small xorshift generator: the flood needs unpredictable-looking bytes, not secure ones.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }

    fn hex(&mut self, n: usize) -> String {
        self.bytes(n).iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Makes random tokens shaped like `template`: its header, its claims with random values
/// for the subject and a random `jti`, and a random signature of the same length.
struct Forger {
    header: String,
    claims: Value,
    signature_len: usize,
}

impl Forger {
    fn new(template: &str) -> anyhow::Result<Forger> {
        let mut parts = template.split('.');
        let (Some(header), Some(claims), Some(signature)) =
            (parts.next(), parts.next(), parts.next())
        else {
            bail!("the honest token is not a JWT");
        };
        Ok(Forger {
            header: header.to_owned(),
            claims: serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims)?)?,
            signature_len: URL_SAFE_NO_PAD.decode(signature)?.len(),
        })
    }

    fn forge(&self, noise: &mut Noise) -> anyhow::Result<String> {
        let mut claims = self.claims.clone();
        let object = claims.as_object_mut().context("claims are not an object")?;
        for key in ["sub", "kubernetes.io/serviceaccount/secret.name"] {
            if object.contains_key(key) {
                object.insert(key.to_owned(), Value::String(noise.hex(12)));
            }
        }
        object.insert("jti".to_owned(), Value::String(noise.hex(16)));
        Ok(format!(
            "{}.{}.{}",
            self.header,
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims)?),
            URL_SAFE_NO_PAD.encode(noise.bytes(self.signature_len)),
        ))
    }
}

/// The `k`-th flood source address: 127.16.0.1 onwards (all of 127/8 is loopback on Linux).
pub fn source(k: u32) -> std::net::IpAddr {
    std::net::IpAddr::V4(std::net::Ipv4Addr::from(0x7f10_0001u32.wrapping_add(k)))
}

/// Runs the honest clients for `until`.
async fn honest(
    ctx: &Arc<Ctx>,
    args: &FloodArgs,
    http: &reqwest::Client,
    until: Until,
) -> anyhow::Result<Run> {
    let (http, url, token) = (
        http.clone(),
        format!("{}{}", ctx.url, args.path),
        args.honest_token.clone(),
    );
    closed_loop(args.honest_concurrency, until, move |_| {
        let (http, url, token) = (http.clone(), url.clone(), token.clone());
        async move { get(&http, &url, &token, 200).await.map(|_| ()) }
    })
    .await
}

/// Runs `flood`.
pub async fn flood(
    ctx: Arc<Ctx>,
    ca: Option<&std::path::Path>,
    args: FloodArgs,
) -> anyhow::Result<()> {
    let args = Arc::new(args);
    let forger = Arc::new(Forger::new(&args.honest_token)?);
    let http = client(ca, args.honest_concurrency)?;
    let rss_before = rss_kib(args.pid)?;
    let baseline = honest(
        &ctx,
        &args,
        &http,
        Until::Elapsed(Duration::from_secs(args.baseline_seconds)),
    )
    .await?;

    let sent = Arc::new(AtomicU64::new(0));
    let next_source = Arc::new(AtomicU32::new(0));
    let codes = Arc::new([AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)]);
    let flood_done = Arc::new(AtomicBool::new(false));
    let rss_max = Arc::new(AtomicU64::new(rss_before));
    let sampler = {
        let (done, max, pid) = (flood_done.clone(), rss_max.clone(), args.pid);
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                if let Ok(kib) = rss_kib(pid) {
                    max.fetch_max(kib, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let cpu = CpuMeter::start(Some(args.pid))?;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..args.concurrency.max(1) {
        let (forger, sent, next_source, codes) = (
            forger.clone(),
            sent.clone(),
            next_source.clone(),
            codes.clone(),
        );
        let (url, ca, total, per_address) = (
            format!("{}{}", ctx.url, args.path),
            ca.map(std::path::Path::to_path_buf),
            args.requests,
            args.per_address,
        );
        tasks.push(tokio::spawn(async move {
            let mut noise = Noise(
                0x9e37_79b9_7f4a_7c15 ^ (u64::try_from(t)? + 1).wrapping_mul(0x2545_f491_4f6c_dd1d),
            );
            while sent.load(Ordering::Relaxed) < total {
                let address = source(next_source.fetch_add(1, Ordering::Relaxed));
                let http = client_builder(ca.as_deref())?
                    .http1_only()
                    .local_address(address)
                    .build()?;
                for _ in 0..per_address {
                    if sent.fetch_add(1, Ordering::Relaxed) >= total {
                        break;
                    }
                    let code = get(&http, &url, &forger.forge(&mut noise)?, 0).await?;
                    let slot = match code {
                        401 => 0,
                        429 => 1,
                        _ => 2,
                    };
                    codes[slot].fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok::<(), anyhow::Error>(())
        }));
    }
    let during = {
        let (ctx, http) = (ctx.clone(), http.clone());
        let done = flood_done.clone();
        let args_honest = args.clone();
        tokio::spawn(async move {
            let mut runs = Vec::new();
            while !done.load(Ordering::Relaxed) {
                runs.push(
                    honest(
                        &ctx,
                        &args_honest,
                        &http,
                        Until::Elapsed(Duration::from_secs(1)),
                    )
                    .await?,
                );
            }
            Ok::<_, anyhow::Error>(runs)
        })
    };
    for t in tasks {
        t.await??;
    }
    let elapsed = started.elapsed();
    flood_done.store(true, Ordering::Relaxed);
    let flood_cpu = cpu.micros_per(usize::try_from(args.requests)?)?;
    sampler.await?;
    let runs = during.await??;
    let mut latencies: Vec<Duration> = runs
        .iter()
        .flat_map(|r| r.latencies.iter().copied())
        .collect();
    latencies.sort();
    let during = Run {
        latencies,
        elapsed: runs.iter().map(|r| r.elapsed).sum(),
    };
    let rss_after = rss_kib(args.pid)?;
    let [refused, limited, other] = codes.as_ref().each_ref().map(|c| c.load(Ordering::Relaxed));
    println!(
        "flood: {} random JWTs in {:.1}s ({:.0}/s) from {} source addresses: 401={refused} 429={limited} other={other}; server-cpu={flood_cpu:.1}us/token",
        args.requests,
        elapsed.as_secs_f64(),
        args.requests as f64 / elapsed.as_secs_f64(),
        next_source.load(Ordering::Relaxed),
    );
    println!(
        "flood: server RSS before={:.1}MiB max-during={:.1}MiB after={:.1}MiB",
        rss_before as f64 / 1024.0,
        rss_max.load(Ordering::Relaxed) as f64 / 1024.0,
        rss_after as f64 / 1024.0,
    );
    println!(
        "flood: honest client before the flood: {}",
        baseline.summary()
    );
    println!(
        "flood: honest client during the flood: {}",
        during.summary()
    );
    println!(
        "flood: honest p99 during / before = {} / {} ms",
        ms(during.p(99.0)),
        ms(baseline.p(99.0))
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forged_tokens_keep_the_header_and_signature_length_and_differ_from_each_other() {
        let claims = URL_SAFE_NO_PAD.encode(br#"{"iss":"x","sub":"system:serviceaccount:p:a"}"#);
        let template = format!("aGVhZGVy.{claims}.{}", URL_SAFE_NO_PAD.encode([7u8; 256]));
        let forger = Forger::new(&template).unwrap();
        let mut noise = Noise(42);
        let (a, b) = (
            forger.forge(&mut noise).unwrap(),
            forger.forge(&mut noise).unwrap(),
        );
        assert_ne!(a, b);
        let parts: Vec<&str> = a.split('.').collect();
        assert_eq!(parts[0], "aGVhZGVy");
        assert_eq!(URL_SAFE_NO_PAD.decode(parts[2]).unwrap().len(), 256);
        let forged: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_ne!(forged["sub"], "system:serviceaccount:p:a");
        assert!(forged["jti"].is_string());
    }

    #[test]
    fn flood_sources_are_loopback_addresses_outside_127_0_0_1() {
        assert_eq!(source(0).to_string(), "127.16.0.1");
        assert_eq!(source(256).to_string(), "127.16.1.1");
        assert!(source(70_000).is_loopback());
    }
}

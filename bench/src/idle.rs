//! `idle`: many idle keep-alive TLS connections. Opens N connections to the server, each
//! making one HTTP/1.1 request (`GET /healthz`) and then staying open and silent, and reports
//! the server's resident memory per connection; then holds them while another load runs.
//!
//! The connections come from several loopback source addresses (`--per-address` each), since
//! the server caps the connections of one client address.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::flood::source;
use crate::procfs::rss_kib;

/// The arguments of `idle`.
#[derive(clap::Args)]
pub struct Args {
    /// The server's address (`127.0.0.1:8443`).
    #[arg(long)]
    address: SocketAddr,
    /// Connections to open.
    #[arg(long, default_value_t = 10_000)]
    connections: usize,
    /// Connections from one source address.
    #[arg(long, default_value_t = 1_000)]
    per_address: usize,
    /// Handshakes in flight while opening.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// How long to hold the connections once open, in seconds.
    #[arg(long, default_value_t = 60)]
    hold_seconds: u64,
    /// A file created once every connection is open (for the script to start its load).
    #[arg(long)]
    ready_file: Option<std::path::PathBuf>,
    /// The server's process id, for its resident memory.
    #[arg(long)]
    pid: u32,
}

/// Opens one connection from `from` and makes one request on it.
async fn open(
    tls: &TlsConnector,
    from: std::net::IpAddr,
    to: SocketAddr,
) -> anyhow::Result<TlsStream<tokio::net::TcpStream>> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    let tcp = socket.connect(to).await?;
    let mut stream = tls
        .connect(ServerName::IpAddress(to.ip().into()), tcp)
        .await?;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: kargo\r\nConnection: keep-alive\r\n\r\n")
        .await?;
    let mut buffer = vec![0u8; 4096];
    let mut read = 0;
    while !buffer[..read].windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buffer[read..]).await?;
        if n == 0 {
            bail!("the server closed a new connection");
        }
        read += n;
    }
    if !buffer.starts_with(b"HTTP/1.1 200") {
        bail!(
            "GET /healthz: {}",
            String::from_utf8_lossy(&buffer[..read.min(40)])
        );
    }
    Ok(stream)
}

/// Opens the connections, reports memory, holds them.
pub async fn run(ca: Option<&std::path::Path>, args: Args) -> anyhow::Result<()> {
    let mut roots = rustls::RootCertStore::empty();
    let ca = ca.context("--ca is required")?;
    roots.add(
        CertificateDer::from_pem_file(ca).with_context(|| format!("reading {}", ca.display()))?,
    )?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tls = TlsConnector::from(Arc::new(config));
    let before = rss_kib(args.pid)?;
    let started = Instant::now();
    let next = Arc::new(AtomicU32::new(0));
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency.max(1) {
        let (tls, next, args_total, per, to) = (
            tls.clone(),
            next.clone(),
            args.connections,
            args.per_address.max(1),
            args.address,
        );
        tasks.push(tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                let k = usize::try_from(next.fetch_add(1, Ordering::Relaxed))?;
                if k >= args_total {
                    return Ok::<_, anyhow::Error>(held);
                }
                held.push(open(&tls, source(u32::try_from(k / per)?), to).await?);
            }
        }));
    }
    let mut held = Vec::new();
    for t in tasks {
        held.extend(t.await??);
    }
    let opened_in = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib(args.pid)?;
    println!(
        "idle: {} keep-alive TLS connections opened in {:.1}s; server RSS {:.1} -> {:.1} MiB = {:.1} KiB per connection",
        held.len(),
        opened_in.as_secs_f64(),
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        after.saturating_sub(before) as f64 / held.len().max(1) as f64,
    );
    if let Some(file) = &args.ready_file {
        std::fs::write(file, b"ready\n")?;
    }
    tokio::time::sleep(Duration::from_secs(args.hold_seconds)).await;
    println!(
        "idle: after holding {}s: server RSS {:.1} MiB",
        args.hold_seconds,
        rss_kib(args.pid)? as f64 / 1024.0
    );
    drop(held);
    Ok(())
}

//! `kargo server`: runs the API server in this process.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use kargo_server::{ServerConfig, StoreConfig};

/// Flags of `kargo server`.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  kargo server --address 127.0.0.1:8443 --data-dir ./kargo-data")]
pub struct ServerArgs {
    /// Address to serve HTTPS on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub address: SocketAddr,
    /// Directory for the store, the TLS material and the admin kubeconfig.
    #[arg(long, default_value = "kargo-data")]
    pub data_dir: PathBuf,
    /// Extra DNS names or IP addresses for the serving certificate (repeatable).
    #[arg(long = "tls-san", value_name = "NAME")]
    pub tls_sans: Vec<String>,
    /// Issuer of bound service-account tokens (default: the server's URL).
    #[arg(long = "service-account-issuer", value_name = "URL")]
    pub issuer: Option<String>,
    /// Disable the admin account: `kargo login --admin` is refused (the admin kubeconfig still
    /// works).
    #[arg(long)]
    pub disable_admin_account: bool,
    /// Log filter (`info`, `debug`, `kargo_server=debug`).
    #[arg(long, env = "KARGO_LOG", default_value = "info")]
    pub log: String,
}

/// Runs the server until interrupted.
pub fn run(args: ServerArgs) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&args.log).context("--log")?)
        .with_writer(std::io::stderr)
        .init();
    let config = ServerConfig {
        address: args.address,
        data_dir: args.data_dir,
        store: StoreConfig::Sqlite,
        admin_password: std::env::var("KARGO_ADMIN_PASSWORD")
            .ok()
            .filter(|p| !p.is_empty()),
        admin_enabled: !args.disable_admin_account,
        tls_names: args.tls_sans,
        issuer: args.issuer,
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    runtime.block_on(kargo_server::server::run(config, |started| {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(started.banner().as_bytes());
        let _ = out.flush();
    }))
}

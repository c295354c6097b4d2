//! `kargo server`: runs the API server in this process; `kargo server export`, `import` and
//! `migrate` copy a whole store (backups, and moving from SQLite to etcd).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use kargo_server::limits::Limits;
use kargo_server::{ServerConfig, StoreConfig};

/// Flags of `kargo server`.
#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "Examples:\n  kargo server --address 127.0.0.1:8443 --data-dir ./kargo-data\n  kargo server --store etcd --etcd-endpoints http://10.0.0.1:2379,http://10.0.0.2:2379,http://10.0.0.3:2379"
)]
pub struct ServerArgs {
    /// Copy a whole store instead of serving.
    #[command(subcommand)]
    pub command: Option<StoreCommand>,
    /// Address to serve HTTPS on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub address: SocketAddr,
    /// Where the objects live, and the data directory.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Extra DNS names or IP addresses for the serving certificate (repeatable).
    #[arg(long = "tls-san", value_name = "NAME")]
    pub tls_sans: Vec<String>,
    /// Issuer of bound service-account tokens (default: the server's URL).
    #[arg(long = "service-account-issuer", value_name = "URL")]
    pub issuer: Option<String>,
    /// How often to drop store history older than one interval (`30s`, `5m`, `1h`; `0` never).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub compaction_interval: Duration,
    /// Disable the admin account: `kargo login --admin` is refused (the admin kubeconfig still
    /// works).
    #[arg(long)]
    pub disable_admin_account: bool,
    /// Log filter (`info`, `debug`, `kargo_server=debug`).
    #[arg(long, env = "KARGO_LOG", default_value = "info")]
    pub log: String,
    /// Bounds on connections, requests and watches.
    #[command(flatten)]
    pub limits: Box<LimitArgs>,
}

/// The limits of `docs/operations.md` ("Limits"); defaults are kube-apiserver's where it has one.
#[derive(Debug, Args, Clone)]
pub struct LimitArgs {
    /// Time a client has to send a request header, from its first byte (slow clients are
    /// disconnected).
    #[arg(long, value_name = "DURATION", default_value = "32s", value_parser = parse_duration, help_heading = "Limits")]
    pub request_header_timeout: Duration,
    /// Time a connection with no request in flight stays open.
    #[arg(long, value_name = "DURATION", default_value = "90s", value_parser = parse_duration, help_heading = "Limits")]
    pub idle_connection_timeout: Duration,
    /// Open connections (default: the open-files limit less 256, at most 16384); past it new
    /// connections are closed at once.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..), help_heading = "Limits")]
    pub max_connections: Option<u64>,
    /// Open connections from one IPv4 address or IPv6 /64 (default: a quarter of
    /// --max-connections).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..), help_heading = "Limits")]
    pub max_connections_per_client: Option<u64>,
    /// HTTP/2 streams one connection may have open at once.
    #[arg(long, value_name = "N", default_value_t = kargo_server::limits::DEFAULT_HTTP2_MAX_STREAMS, value_parser = clap::value_parser!(u32).range(1..), help_heading = "Limits")]
    pub http2_max_streams_per_connection: u32,
    /// Reads (GET) served at once; past it a 429 (0: no limit).
    #[arg(long, value_name = "N", default_value_t = kargo_server::limits::DEFAULT_MAX_REQUESTS_INFLIGHT, help_heading = "Limits")]
    pub max_requests_inflight: usize,
    /// Other requests (writes, logins, reviews) served at once; past it a 429 (0: no limit).
    #[arg(long, value_name = "N", default_value_t = kargo_server::limits::DEFAULT_MAX_MUTATING_REQUESTS_INFLIGHT, help_heading = "Limits")]
    pub max_mutating_requests_inflight: usize,
    /// The longest a request other than a watch may take; past it a 504.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration, help_heading = "Limits")]
    pub request_timeout: Duration,
    /// A watch without timeoutSeconds ends after a random time between this and twice this.
    #[arg(long, value_name = "DURATION", default_value = "1800s", value_parser = parse_duration, help_heading = "Limits")]
    pub min_request_timeout: Duration,
    /// Watches open at once; past it a 429 (0: no limit).
    #[arg(long, value_name = "N", default_value_t = kargo_server::limits::DEFAULT_MAX_WATCHES, help_heading = "Limits")]
    pub max_watches: usize,
    /// Watches one user may have open at once; past it a 429 (0: no limit).
    #[arg(long, value_name = "N", default_value_t = kargo_server::limits::DEFAULT_MAX_WATCHES_PER_USER, help_heading = "Limits")]
    pub max_watches_per_user: usize,
}

impl LimitArgs {
    fn limits(&self) -> Limits {
        let count = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        Limits {
            header_timeout: self.request_header_timeout,
            idle_timeout: self.idle_connection_timeout,
            max_connections: self.max_connections.map(count),
            max_connections_per_client: self.max_connections_per_client.map(count),
            http2_max_streams: self.http2_max_streams_per_connection,
            max_requests_inflight: self.max_requests_inflight,
            max_mutating_requests_inflight: self.max_mutating_requests_inflight,
            request_timeout: self.request_timeout,
            min_request_timeout: self.min_request_timeout,
            max_watches: self.max_watches,
            max_watches_per_user: self.max_watches_per_user,
        }
    }
}

/// Which store, and the data directory.
#[derive(Debug, Args, Clone)]
pub struct StoreArgs {
    /// Directory for the SQLite store, the TLS material and the admin kubeconfig.
    #[arg(long, default_value = "kargo-data")]
    pub data_dir: PathBuf,
    /// The store: one SQLite file in the data directory, or an etcd cluster shared by replicas.
    #[arg(long = "store", value_enum, default_value = "sqlite")]
    pub kind: StoreKind,
    /// Client URLs of the etcd members, comma-separated (with `--store etcd`).
    #[arg(
        long,
        value_name = "URL,URL,...",
        value_delimiter = ',',
        required_if_eq("kind", "etcd")
    )]
    pub etcd_endpoints: Vec<String>,
    /// Prefix of every etcd key, for several installations on one cluster (e.g. `/kargo-prod`).
    #[arg(long, value_name = "PREFIX", default_value = "")]
    pub etcd_prefix: String,
}

/// The store backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StoreKind {
    /// One SQLite file (`DATA_DIR/kargo.db`): one server.
    Sqlite,
    /// An etcd v3 cluster: several servers.
    Etcd,
}

impl StoreArgs {
    fn config(&self) -> StoreConfig {
        match self.kind {
            StoreKind::Sqlite => StoreConfig::Sqlite,
            StoreKind::Etcd => StoreConfig::Etcd {
                endpoints: self.etcd_endpoints.clone(),
                prefix: self.etcd_prefix.clone(),
            },
        }
    }
}

/// `kargo server export | import | migrate`.
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Write every key of the store to a file (a backup that either store can import). Stop the
    /// server first, or accept that the export is one consistent snapshot of a live store.
    #[command(
        after_help = "Examples:\n  kargo server export --data-dir ./kargo-data -o kargo-backup.json"
    )]
    Export {
        /// The store to read.
        #[command(flatten)]
        store: StoreArgs,
        /// The file to write (it holds the CA key, signing keys and admin password hash).
        #[arg(long, short)]
        output: PathBuf,
    },
    /// Load an export into an empty store.
    #[command(
        after_help = "Examples:\n  kargo server import --data-dir ./restored -i kargo-backup.json\n  kargo server import --store etcd --etcd-endpoints http://10.0.0.1:2379 -i kargo-backup.json"
    )]
    Import {
        /// The store to write; it must hold no keys.
        #[command(flatten)]
        store: StoreArgs,
        /// The export to read.
        #[arg(long, short)]
        input: PathBuf,
    },
    /// Copy the SQLite store of `--data-dir` into an empty etcd (then start the replicas with
    /// `--store etcd`).
    #[command(
        after_help = "Examples:\n  kargo server migrate --data-dir ./kargo-data --etcd-endpoints http://10.0.0.1:2379,http://10.0.0.2:2379,http://10.0.0.3:2379"
    )]
    Migrate {
        /// The data directory whose `kargo.db` is copied.
        #[arg(long, default_value = "kargo-data")]
        data_dir: PathBuf,
        /// Client URLs of the etcd members, comma-separated.
        #[arg(
            long,
            value_name = "URL,URL,...",
            value_delimiter = ',',
            required = true
        )]
        etcd_endpoints: Vec<String>,
        /// Prefix of every etcd key.
        #[arg(long, value_name = "PREFIX", default_value = "")]
        etcd_prefix: String,
    },
}

/// Parses `500ms`, `30s`, `5m`, `1h`, or a number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 30s, 5m or 1h"))?;
    match unit {
        "" | "s" => Ok(Duration::from_secs(n)),
        "ms" => Ok(Duration::from_millis(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!("{text:?} is not a duration like 30s, 5m or 1h")),
    }
}

/// Runs the server until interrupted, or one of the store commands.
pub fn run(args: ServerArgs) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&args.log).context("--log")?)
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    if let Some(command) = args.command {
        return runtime.block_on(store_command(command));
    }
    let config = ServerConfig {
        address: args.address,
        data_dir: args.store.data_dir.clone(),
        store: args.store.config(),
        admin_password: std::env::var("KARGO_ADMIN_PASSWORD")
            .ok()
            .filter(|p| !p.is_empty()),
        admin_enabled: !args.disable_admin_account,
        tls_names: args.tls_sans,
        issuer: args.issuer,
        compaction_interval: Some(args.compaction_interval).filter(|i| !i.is_zero()),
        limits: args.limits.limits(),
    };
    runtime.block_on(kargo_server::server::run(config, |started| {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(started.banner().as_bytes());
        let _ = out.flush();
    }))?;
    Ok(())
}

/// Prints one line of outcome on stdout.
fn report(line: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    Ok(())
}

async fn store_command(command: StoreCommand) -> anyhow::Result<()> {
    use kargo_server::backup;
    match command {
        StoreCommand::Export { store, output } => {
            let source = store.config().open(&store.data_dir).await?;
            let file = private_file(&output)?;
            let mut writer = std::io::BufWriter::new(file);
            let keys = backup::export(source.as_ref(), &mut writer).await?;
            report(&format!("exported {keys} keys to {}", output.display()))
        }
        StoreCommand::Import { store, input } => {
            let file = std::fs::File::open(&input)
                .with_context(|| format!("opening {}", input.display()))?;
            let kvs = backup::read_export(&mut std::io::BufReader::new(file))
                .with_context(|| format!("reading {}", input.display()))?;
            let target = store.config().open(&store.data_dir).await?;
            let keys = backup::import(target.as_ref(), &kvs).await?;
            report(&format!("imported {keys} keys from {}", input.display()))
        }
        StoreCommand::Migrate {
            data_dir,
            etcd_endpoints,
            etcd_prefix,
        } => {
            let db = data_dir.join("kargo.db");
            anyhow::ensure!(db.is_file(), "no SQLite store at {}", db.display());
            let source = StoreConfig::Sqlite.open(&data_dir).await?;
            let target = StoreConfig::Etcd {
                endpoints: etcd_endpoints.clone(),
                prefix: etcd_prefix,
            }
            .open(&data_dir)
            .await?;
            let keys = backup::copy(source.as_ref(), target.as_ref()).await?;
            report(&format!(
                "copied {keys} keys from {} to etcd at {}",
                db.display(),
                etcd_endpoints.join(",")
            ))
        }
    }
}

/// Creates (or truncates) a file readable only by its owner.
fn private_file(path: &std::path::Path) -> anyhow::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        server: ServerArgs,
    }

    fn parse(args: &[&str]) -> Result<ServerArgs, clap::error::ErrorKind> {
        Cli::try_parse_from(std::iter::once("server").chain(args.iter().copied()))
            .map(|c| c.server)
            .map_err(|e| e.kind())
    }

    #[test]
    fn durations_take_a_unit_or_mean_seconds() {
        let check = |text: &str, expected: Result<Duration, ()>| {
            assert_eq!(parse_duration(text).map_err(|_| ()), expected, "{text}");
        };
        check("5m", Ok(Duration::from_secs(300)));
        check("30s", Ok(Duration::from_secs(30)));
        check("90", Ok(Duration::from_secs(90)));
        check("250ms", Ok(Duration::from_millis(250)));
        check("1h", Ok(Duration::from_secs(3600)));
        check("0", Ok(Duration::ZERO));
        check("5 minutes", Err(()));
        check("m", Err(()));
    }

    #[test]
    fn etcd_flags_select_the_etcd_store_and_split_endpoints_on_commas() {
        let args = parse(&[
            "--store",
            "etcd",
            "--etcd-endpoints",
            "http://a:2379,http://b:2379",
            "--etcd-prefix",
            "/kargo-a",
        ])
        .unwrap();
        match args.store.config() {
            StoreConfig::Etcd { endpoints, prefix } => {
                assert_eq!(endpoints, vec!["http://a:2379", "http://b:2379"]);
                assert_eq!(prefix, "/kargo-a");
            }
            other => panic!("expected etcd, got {other:?}"),
        }
        assert_eq!(args.compaction_interval, Duration::from_secs(300));
        assert!(matches!(
            parse(&[]).unwrap().store.config(),
            StoreConfig::Sqlite
        ));
    }

    #[test]
    fn limit_flags_default_to_kube_apiservers_values_and_can_be_set() {
        assert_eq!(parse(&[]).unwrap().limits.limits(), Limits::default());
        let args = parse(&[
            "--max-connections",
            "64",
            "--max-connections-per-client",
            "8",
            "--max-requests-inflight",
            "0",
            "--request-header-timeout",
            "2s",
            "--max-watches-per-user",
            "3",
        ])
        .unwrap();
        let limits = args.limits.limits();
        assert_eq!(limits.max_connections, Some(64));
        assert_eq!(limits.max_connections_per_client, Some(8));
        assert_eq!(limits.max_requests_inflight, 0);
        assert_eq!(limits.header_timeout, Duration::from_secs(2));
        assert_eq!(limits.max_watches_per_user, 3);
        assert_eq!(
            parse(&["--max-connections", "0"]).err(),
            Some(clap::error::ErrorKind::ValueValidation)
        );
    }

    #[test]
    fn the_etcd_store_needs_endpoints() {
        assert_eq!(
            parse(&["--store", "etcd"]).err(),
            Some(clap::error::ErrorKind::MissingRequiredArgument)
        );
    }
}

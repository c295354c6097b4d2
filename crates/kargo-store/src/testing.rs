//! Test support (feature `testing`): throwaway etcd clusters on loopback, for the etcd backend's
//! tests and the server's replica tests.
//!
//! [`EtcdCluster::start`] runs `n` members of the `etcd` binary (Debian's `etcd-server`; or the
//! binary named by `KARGO_TEST_ETCD`) on free loopback ports, with data in a temp dir, and waits
//! until every member reports healthy. Members serve clients over TLS and require a client
//! certificate (`--client-cert-auth`), as a production cluster should: the CA, the members'
//! serving certificate and a client certificate are generated at start (rcgen) into the
//! cluster's directory, and [`EtcdCluster::options`] and [`EtcdCluster::client_tls_files`] hand
//! them to a store or a server. [`EtcdCluster::start_with`] starts a plain-`http://` cluster or
//! passes extra flags; [`EtcdCluster::enable_auth`] turns on etcd's users and passwords.
//! Members can be killed (SIGKILL) and started again. The cluster is stopped when dropped; a
//! watchdog process also kills the members and removes their data if the test process dies
//! first (or keeps the cluster in a `static`, which is never dropped).
//!
//! A missing `etcd` binary is a test failure with instructions, never a skipped test.

// Test support: a cluster that cannot start should fail the test with the reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use tempfile::TempDir;

use crate::etcd::{EtcdOptions, EtcdTls};

/// How long a new or restarted cluster may take to become healthy.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A member's ports and process.
struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    /// Plain-HTTP `/health` (`--listen-metrics-urls`), so that health checks need no client
    /// certificate.
    metrics_port: u16,
    child: Option<Child>,
}

/// How to start a cluster.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Serve clients over TLS and require client certificates (the default); `false`: plain
    /// `http://` with no client authentication.
    pub tls: bool,
    /// More flags for every member (`--auth-token-ttl 1`).
    pub extra_args: Vec<String>,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            tls: true,
            extra_args: Vec::new(),
        }
    }
}

/// The files of a cluster's client TLS: what `kargo server --etcd-cafile --etcd-certfile
/// --etcd-keyfile` take.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The CA that signs the members' serving certificate (PEM).
    pub ca: PathBuf,
    /// A client certificate the members accept (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
}

/// An etcd cluster of local processes.
pub struct EtcdCluster {
    dir: TempDir,
    members: Vec<Member>,
    token: String,
    options: ClusterOptions,
    watchdog: Option<Child>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// The etcd binary: `KARGO_TEST_ETCD`, else `etcd` on the PATH (or Debian's `/usr/bin/etcd`).
pub fn etcd_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("KARGO_TEST_ETCD") {
        return PathBuf::from(path);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join("etcd"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "the etcd tests need the `etcd` binary, which is not installed: run \
                 `apt-get install -y etcd-server` (scripts/test.sh and .ci/run do), or set \
                 KARGO_TEST_ETCD to an etcd 3.4+ binary"
            )
        })
}

/// Whether the member whose metrics listener is on `port` answers `/health` with `"health":"true"`.
fn healthy(port: u16) -> bool {
    metrics_get(port, "/health").contains("\"health\":\"true\"")
}

/// What the metrics listener on `port` answers to `GET path` (head and body; empty if nothing).
fn metrics_get(port: u16, path: &str) -> String {
    let Ok(mut stream) = TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(200),
    ) else {
        return String::new();
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return String::new();
    }
    let mut reply = String::new();
    let _ = stream.read_to_string(&mut reply);
    reply
}

impl EtcdCluster {
    /// Starts a cluster of `members` members with client-certificate TLS and waits until all
    /// are healthy.
    pub fn start(members: usize) -> EtcdCluster {
        EtcdCluster::start_with(members, ClusterOptions::default())
    }

    /// Starts a cluster of `members` members as `options` say and waits until all are healthy.
    /// The free ports are picked before etcd binds them, so a test running beside this one may
    /// take one in between; a member that fails on a port in use starts the cluster afresh on
    /// other ports (at most 3 times).
    pub fn start_with(members: usize, options: ClusterOptions) -> EtcdCluster {
        let mut attempt = 1;
        loop {
            let mut cluster = EtcdCluster::spawn_all(members, options.clone());
            let all: Vec<usize> = (0..cluster.members.len()).collect();
            match cluster.try_wait_healthy(&all) {
                Ok(()) => return cluster,
                Err(why) if attempt < 3 && why.contains("address already in use") => {
                    attempt += 1;
                }
                Err(why) => panic!("{why}"),
            }
        }
    }

    /// A cluster whose members are started, not yet healthy.
    fn spawn_all(members: usize, options: ClusterOptions) -> EtcdCluster {
        let binary = etcd_binary();
        let dir = tempfile::Builder::new()
            .prefix("kargo-etcd-")
            .tempdir()
            .expect("a temp dir for etcd");
        let members: Vec<Member> = (0..members)
            .map(|i| Member {
                name: format!("m{i}"),
                client_port: free_port(),
                peer_port: free_port(),
                metrics_port: free_port(),
                child: None,
            })
            .collect();
        let token = format!(
            "kargo-test-{}-{}",
            std::process::id(),
            dir.path()
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        );
        let mut cluster = EtcdCluster {
            dir,
            members,
            token,
            options,
            watchdog: None,
        };
        if cluster.options.tls {
            cluster.write_certificates();
        }
        cluster.watchdog = Some(cluster.spawn_watchdog());
        for i in 0..cluster.members.len() {
            cluster.spawn(&binary, i);
        }
        cluster
    }

    /// Generates the CA, the members' serving certificate (for `127.0.0.1` and `localhost`) and
    /// a client certificate into the cluster's directory.
    fn write_certificates(&self) {
        let dir = self.dir.path();
        let ca = TestCa::new("kargo-test-etcd-ca");
        std::fs::write(dir.join("ca.crt"), ca.pem()).expect("write ca.crt");
        let (cert, key) = ca.serving("kargo-test-etcd");
        std::fs::write(dir.join("server.crt"), cert).expect("write server.crt");
        std::fs::write(dir.join("server.key"), key).expect("write server.key");
        let (cert, key) = ca.leaf(
            Vec::new(),
            "kargo-test-client",
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        std::fs::write(dir.join("client.crt"), cert).expect("write client.crt");
        std::fs::write(dir.join("client.key"), key).expect("write client.key");
    }

    /// The client TLS files (CA, client certificate and key); `None` for a plain cluster.
    pub fn client_tls_files(&self) -> Option<TlsFiles> {
        self.options.tls.then(|| TlsFiles {
            ca: self.dir.path().join("ca.crt"),
            cert: self.dir.path().join("client.crt"),
            key: self.dir.path().join("client.key"),
        })
    }

    /// Store options for every member, with the cluster's client TLS.
    pub fn options(&self) -> EtcdOptions {
        self.options_for(self.endpoints())
    }

    /// Store options for these endpoints (members, or proxies in front of them), with the
    /// cluster's client TLS.
    pub fn options_for(&self, endpoints: impl IntoIterator<Item = String>) -> EtcdOptions {
        let options = EtcdOptions::new(endpoints);
        match self.client_tls_files() {
            Some(files) => {
                let read = |path: &Path| std::fs::read(path).expect("a client TLS file");
                options.with_tls(EtcdTls {
                    ca_pem: Some(read(&files.ca)),
                    identity: Some((read(&files.cert), read(&files.key))),
                })
            }
            None => options,
        }
    }

    /// `https` or `http`.
    pub fn scheme(&self) -> &'static str {
        if self.options.tls { "https" } else { "http" }
    }

    /// Turns on etcd's authentication: a `root` user (required by etcd) with a password of its
    /// own, and `user` with `password` and read-write access to the keys under `prefix` only.
    pub async fn enable_auth(&self, user: &str, password: &str, prefix: &str) {
        use crate::etcd::proto::authpb::{Permission, permission::Type};
        use crate::etcd::proto::etcdserverpb::auth_client::AuthClient;
        use crate::etcd::proto::etcdserverpb::{
            AuthEnableRequest, AuthRoleAddRequest, AuthRoleGrantPermissionRequest,
            AuthUserAddRequest, AuthUserGrantRoleRequest,
        };
        let endpoint = tonic::transport::Endpoint::from_shared(self.endpoint(0)).expect("a URL");
        let endpoint = match self.client_tls_files() {
            Some(files) => {
                let read = |path: &Path| std::fs::read(path).expect("a client TLS file");
                endpoint
                    .tls_config(
                        tonic::transport::ClientTlsConfig::new()
                            .ca_certificate(tonic::transport::Certificate::from_pem(read(
                                &files.ca,
                            )))
                            .identity(tonic::transport::Identity::from_pem(
                                read(&files.cert),
                                read(&files.key),
                            )),
                    )
                    .expect("TLS to the member")
            }
            None => endpoint,
        };
        let mut auth = AuthClient::new(endpoint.connect().await.expect("connect to etcd"));
        let root_password = format!("root-{}", self.token);
        auth.user_add(AuthUserAddRequest {
            name: "root".into(),
            password: root_password,
        })
        .await
        .expect("add root");
        auth.user_grant_role(AuthUserGrantRoleRequest {
            user: "root".into(),
            role: "root".into(),
        })
        .await
        .expect("grant root");
        auth.role_add(AuthRoleAddRequest { name: user.into() })
            .await
            .expect("add the role");
        let mut range_end = prefix.as_bytes().to_vec();
        if let Some(last) = range_end.last_mut() {
            *last += 1;
        }
        auth.role_grant_permission(AuthRoleGrantPermissionRequest {
            name: user.into(),
            perm: Some(Permission {
                perm_type: Type::Readwrite as i32,
                key: prefix.as_bytes().to_vec(),
                range_end,
            }),
        })
        .await
        .expect("grant the prefix");
        auth.user_add(AuthUserAddRequest {
            name: user.into(),
            password: password.into(),
        })
        .await
        .expect("add the user");
        auth.user_grant_role(AuthUserGrantRoleRequest {
            user: user.into(),
            role: user.into(),
        })
        .await
        .expect("grant the role");
        auth.auth_enable(AuthEnableRequest {})
            .await
            .expect("enable authentication");
    }

    /// Kills every member when this process is gone, then removes the data.
    fn spawn_watchdog(&self) -> Child {
        let script = format!(
            "while kill -0 {parent} 2>/dev/null; do sleep 0.5; done; \
             for f in '{dir}'/*.pid; do kill -9 \"$(cat \"$f\")\" 2>/dev/null; done; \
             sleep 0.2; rm -rf '{dir}'",
            parent = std::process::id(),
            dir = self.dir.path().display()
        );
        Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the etcd watchdog")
    }

    fn initial_cluster(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn data_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(&self.members[i].name)
    }

    fn spawn(&mut self, binary: &Path, i: usize) {
        let initial_cluster = self.initial_cluster();
        let data_dir = self.data_dir(i);
        let log = std::fs::File::create(self.dir.path().join(format!("m{i}.log")))
            .expect("an etcd log file");
        let member = &self.members[i];
        let client = format!("{}://127.0.0.1:{}", self.scheme(), member.client_port);
        let peer = format!("http://127.0.0.1:{}", member.peer_port);
        let metrics = format!("http://127.0.0.1:{}", member.metrics_port);
        let mut command = Command::new(binary);
        if self.options.tls {
            let dir = self.dir.path();
            command
                .arg("--client-cert-auth")
                .arg("--trusted-ca-file")
                .arg(dir.join("ca.crt"))
                .arg("--cert-file")
                .arg(dir.join("server.crt"))
                .arg("--key-file")
                .arg(dir.join("server.key"));
        }
        let child = command
            .arg("--name")
            .arg(&member.name)
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-metrics-urls", &metrics])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &initial_cluster])
            .args(["--initial-cluster-state", "new"])
            .args(["--initial-cluster-token", &self.token])
            // Elections in about half a second instead of one to two (loopback is fast).
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
            .args(["--logger", "zap", "--log-level", "warn"])
            .args(&self.options.extra_args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        std::fs::write(
            self.dir.path().join(format!("m{i}.pid")),
            child.id().to_string(),
        )
        .expect("write the member's pid");
        self.members[i].child = Some(child);
    }

    fn wait_healthy(&mut self, members: &[usize]) {
        if let Err(why) = self.try_wait_healthy(members) {
            panic!("{why}");
        }
    }

    /// Waits until `members` are healthy; why not, if one exits or the time runs out.
    fn try_wait_healthy(&mut self, members: &[usize]) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        for &i in members {
            while !healthy(self.members[i].metrics_port) {
                if let Some(child) = self.members[i].child.as_mut()
                    && let Ok(Some(status)) = child.try_wait()
                {
                    return Err(format!(
                        "etcd member {i} exited with {status}:\n{}",
                        self.log(i)
                    ));
                }
                if Instant::now() >= deadline {
                    return Err(format!(
                        "etcd member {i} not healthy after {START_TIMEOUT:?}:\n{}",
                        self.log(i)
                    ));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(())
    }

    /// The member's Prometheus metrics (`/metrics` of its plain-HTTP metrics listener); empty
    /// when it does not answer.
    pub fn metrics(&self, i: usize) -> String {
        metrics_get(self.members[i].metrics_port, "/metrics")
    }

    /// The member's log so far.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("m{i}.log"))).unwrap_or_default()
    }

    /// The client URLs of all members, `https://127.0.0.1:PORT` (`http://` for a plain
    /// cluster).
    pub fn endpoints(&self) -> Vec<String> {
        (0..self.members.len()).map(|i| self.endpoint(i)).collect()
    }

    /// The client URL of one member.
    pub fn endpoint(&self, i: usize) -> String {
        format!(
            "{}://127.0.0.1:{}",
            self.scheme(),
            self.members[i].client_port
        )
    }

    /// Kills a member with SIGKILL (its data stays).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a killed member again on its data and waits until it is healthy.
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        self.spawn(&etcd_binary(), i);
        self.wait_healthy(&[i]);
    }

    /// Kills every member, then starts them all again and waits until the cluster is healthy.
    pub fn restart_all(&mut self) {
        let binary = etcd_binary();
        for i in 0..self.members.len() {
            self.kill(i);
        }
        for i in 0..self.members.len() {
            self.spawn(&binary, i);
        }
        self.wait_healthy(&(0..self.members.len()).collect::<Vec<_>>());
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
    }
}

/// A throwaway certificate authority for loopback TLS in tests (etcd members, an OpenID
/// provider): its certificate, and leaf certificates it signs.
pub struct TestCa {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl TestCa {
    /// A new CA named `common_name`.
    pub fn new(common_name: &str) -> TestCa {
        let ca_key = KeyPair::generate().expect("a CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, common_name);
        ca.distinguished_name = name;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let pem = ca.self_signed(&ca_key).expect("the CA certificate").pem();
        TestCa {
            pem,
            issuer: Issuer::new(ca, ca_key),
        }
    }

    /// The CA certificate (PEM).
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// A certificate for `names` with `usage`, signed by this CA: `(certificate, key)` in PEM.
    pub fn leaf(
        &self,
        names: Vec<String>,
        common_name: &str,
        usage: ExtendedKeyUsagePurpose,
    ) -> (String, String) {
        let key = KeyPair::generate().expect("a key");
        let mut params = CertificateParams::new(names).expect("parameters");
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, common_name);
        params.distinguished_name = name;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &self.issuer).expect("a certificate");
        (cert.pem(), key.serialize_pem())
    }

    /// A serving certificate for `127.0.0.1` and `localhost`: `(certificate, key)` in PEM.
    pub fn serving(&self, common_name: &str) -> (String, String) {
        self.leaf(
            vec!["127.0.0.1".into(), "localhost".into()],
            common_name,
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }
}

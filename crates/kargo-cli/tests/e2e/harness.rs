//! Starts real servers and runs real clients against them, each test in its own directories.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The admin password every test server is started with.
pub const ADMIN_PASSWORD: &str = "test-admin-password";

/// A running `kargo server`.
pub struct Server {
    child: Option<Child>,
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    dir: TempDir,
    port: u16,
    /// Extra `kargo server` flags (the store), kept across restarts.
    args: Vec<String>,
    /// `KARGO_ADMIN_PASSWORD` (kept across restarts).
    password: String,
    /// A soft open-files limit to start the server with.
    open_files: Option<u64>,
    /// Whether the server's stderr goes to [`Server::log`] (else to the test's stderr).
    logged: bool,
}

/// Output of a client command, with helpers that print everything when an assertion fails.
pub struct Run {
    /// What the command printed on stdout.
    pub stdout: String,
    /// What the command printed on stderr.
    pub stderr: String,
    /// Its exit code.
    pub code: i32,
    command: String,
}

impl Run {
    /// The outcome of a finished command.
    pub fn from(command: String, out: Output) -> Run {
        Run {
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            code: out.status.code().unwrap_or(-1),
            command,
        }
    }

    /// Asserts success and returns stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(
            self.code, 0,
            "`{}` failed:\nstdout:\n{}\nstderr:\n{}",
            self.command, self.stdout, self.stderr
        );
        &self.stdout
    }

    /// Asserts failure and returns stderr.
    #[track_caller]
    pub fn err(&self) -> &str {
        assert_ne!(
            self.code, 0,
            "`{}` succeeded unexpectedly:\nstdout:\n{}",
            self.command, self.stdout
        );
        &self.stderr
    }
}

fn kargo_bin() -> &'static str {
    env!("CARGO_BIN_EXE_kargo")
}

impl Server {
    /// Starts a server on a free port with a fresh data directory.
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// Starts a server with extra flags (for example `--store etcd --etcd-endpoints ...`).
    pub fn start_with(args: &[String]) -> Server {
        Server::start_limited(args, None)
    }

    /// Starts a server whose soft open-files limit is `open_files` when it starts (the hard
    /// limit stays as it is), as under a login shell's default of 1,024.
    pub fn start_with_open_files(args: &[String], open_files: u64) -> Server {
        Server::start_limited(args, Some(open_files))
    }

    /// Starts a server whose stderr (its log) is kept, across restarts, for [`Server::log`].
    pub fn start_logged(args: &[String]) -> Server {
        Server::start_all(args, None, true, "127.0.0.1:0")
    }

    /// What the server wrote on stderr, when started with [`Server::start_logged`].
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    fn start_limited(args: &[String], open_files: Option<u64>) -> Server {
        Server::start_all(args, open_files, false, "127.0.0.1:0")
    }

    /// Starts a server on `port` of 127.0.0.1 (its URL known before it runs).
    pub fn start_on_port(port: u16, args: &[String]) -> Server {
        Server::start_all(args, None, false, &format!("127.0.0.1:{port}"))
    }

    fn start_all(args: &[String], open_files: Option<u64>, logged: bool, address: &str) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("home")).expect("home");
        let mut server = Server {
            child: None,
            url: String::new(),
            dir,
            port: 0,
            args: args.to_vec(),
            password: ADMIN_PASSWORD.to_owned(),
            open_files,
            logged,
        };
        server.spawn(address);
        server
    }

    /// Flags for a replica on an etcd cluster (with its client certificate, for a TLS cluster).
    pub fn etcd_args(cluster: &kargo_store::testing::EtcdCluster) -> Vec<String> {
        let mut args = vec![
            "--store".into(),
            "etcd".into(),
            "--etcd-endpoints".into(),
            cluster.endpoints().join(","),
        ];
        args.extend(etcd_tls_args(cluster));
        args
    }

    /// Kills the server with SIGKILL and leaves it stopped.
    pub fn kill(&mut self) {
        self.stop(true);
    }

    /// Starts a stopped (or running) server again with other flags, on the same port and data
    /// directory.
    pub fn restart_with(&mut self, args: &[String]) {
        self.stop(false);
        self.args = args.to_vec();
        let address = format!("127.0.0.1:{}", self.port);
        self.spawn(&address);
    }

    /// Starts the server again with another `KARGO_ADMIN_PASSWORD` and other flags, on the same
    /// port and data directory.
    pub fn restart_with_password(&mut self, password: &str, args: &[String]) {
        self.password = password.to_owned();
        self.restart_with(args);
    }

    fn spawn(&mut self, address: &str) {
        let mut command = match self.open_files {
            None => Command::new(kargo_bin()),
            Some(n) => {
                let mut sh = Command::new("sh");
                sh.args(["-c", &format!("ulimit -Sn {n} && exec \"$0\" \"$@\"")])
                    .arg(kargo_bin());
                sh
            }
        };
        let stderr = match self.logged {
            false => Stdio::inherit(),
            true => std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.log_path())
                .expect("server log file")
                .into(),
        };
        let mut child = command
            .args(["server", "--address", address, "--data-dir"])
            .arg(self.data_dir())
            .args(&self.args)
            .env("KARGO_ADMIN_PASSWORD", &self.password)
            .env("KARGO_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start kargo server");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let deadline = Instant::now() + Duration::from_secs(60);
        let url = loop {
            assert!(Instant::now() < deadline, "server did not start in time");
            let line = lines
                .next()
                .unwrap_or_else(|| panic!("server exited before listening: {:?}", child.try_wait()))
                .expect("read");
            if let Some(url) = line.strip_prefix("kargo server listening on ") {
                break url.trim().to_owned();
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        self.port = url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port");
        self.url = url;
        self.child = Some(child);
    }

    /// Stops the server (SIGKILL when `kill`, else SIGTERM) and starts it again on the same port
    /// and data directory.
    pub fn restart(&mut self, kill: bool) {
        self.stop(kill);
        let address = format!("127.0.0.1:{}", self.port);
        self.spawn(&address);
    }

    /// Stops the server (to look at its data directory), keeping the port.
    pub fn stop_for_maintenance(&mut self) {
        self.stop(false);
    }

    /// Starts the server again after [`Server::stop_for_maintenance`].
    pub fn start_again(&mut self) {
        let address = format!("127.0.0.1:{}", self.port);
        self.spawn(&address);
    }

    fn stop(&mut self, kill: bool) {
        if let Some(mut child) = self.child.take() {
            if kill {
                let _ = child.kill();
            } else {
                let _ = Command::new("kill")
                    .arg("-TERM")
                    .arg(child.id().to_string())
                    .status();
            }
            let _ = child.wait();
        }
    }

    /// The server's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The CA certificate clients trust.
    pub fn ca(&self) -> PathBuf {
        self.data_dir().join("tls").join("ca.crt")
    }

    /// The admin kubeconfig (client certificate).
    pub fn admin_kubeconfig(&self) -> PathBuf {
        self.data_dir().join("admin.kubeconfig")
    }

    /// A scratch directory of the test.
    pub fn scratch(&self) -> &Path {
        self.dir.path()
    }

    /// Runs kubectl as the admin, with a fresh HOME (kubectl caches discovery there).
    pub fn kubectl(&self, args: &[&str]) -> Run {
        self.kubectl_with(&self.admin_kubeconfig(), args, None)
    }

    /// Runs kubectl with a kubeconfig and optional stdin.
    pub fn kubectl_with(&self, kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> Run {
        let mut cmd = Command::new("kubectl");
        cmd.args(args)
            .env("KUBECONFIG", kubeconfig)
            .env("HOME", self.dir.path().join("home"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            });
        let mut child = cmd.spawn().expect("kubectl runs");
        if let Some(input) = stdin {
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes())
                .expect("write stdin");
        }
        let out = child.wait_with_output().expect("kubectl output");
        Run::from(format!("kubectl {}", args.join(" ")), out)
    }

    /// kubectl as the admin, with stdin.
    pub fn kubectl_stdin(&self, args: &[&str], stdin: &str) -> Run {
        self.kubectl_with(&self.admin_kubeconfig(), args, Some(stdin))
    }

    /// Writes a kubeconfig that authenticates with a bearer token; returns its path.
    pub fn token_kubeconfig(&self, name: &str, token: &str, namespace: &str) -> PathBuf {
        let path = self.dir.path().join(format!("{name}.kubeconfig"));
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: kargo\n  cluster:\n    server: {}\n    certificate-authority: {}\nusers:\n- name: {name}\n  user:\n    token: {token}\ncontexts:\n- name: {name}\n  context:\n    cluster: kargo\n    user: {name}\n    namespace: {namespace}\ncurrent-context: {name}\n",
            self.url,
            self.ca().display()
        );
        std::fs::write(&path, text).expect("write kubeconfig");
        path
    }

    /// Runs a Python script of `tests/python` with the venv's interpreter; arguments after the
    /// script are the server URL, the CA path and a bearer token.
    pub fn python(&self, script: &str, token: &str, args: &[&str]) -> Run {
        let python = std::env::var("KARGO_TEST_PYTHON")
            .unwrap_or_else(|_| format!("{}/../../.venv/bin/python", env!("CARGO_MANIFEST_DIR")));
        assert!(
            Path::new(&python).exists(),
            "no Python venv at {python}: run scripts/test.sh, which creates it"
        );
        let script_path = format!("{}/../../tests/python/{script}", env!("CARGO_MANIFEST_DIR"));
        let out = Command::new(&python)
            .arg(&script_path)
            .arg(&self.url)
            .arg(self.ca())
            .arg(token)
            .args(args)
            .output()
            .expect("python runs");
        Run::from(format!("python {script}"), out)
    }

    /// Logs in as the admin through the Kargo API and returns the admin JWT.
    pub fn admin_token(&self) -> String {
        let out = Command::new("curl")
            .args(["-sS", "--fail-with-body", "--cacert"])
            .arg(self.ca())
            .args([
                "-X",
                "POST",
                "-H",
                &format!("Authorization: Bearer {}", self.password),
            ])
            .arg(format!("{}/v1beta1/login", self.url))
            .output()
            .expect("curl runs");
        let body: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("login answers JSON");
        body["idToken"].as_str().expect("idToken").to_owned()
    }

    /// `POST /v1beta1/login` with `password`: `(status, body)`.
    pub fn login(&self, password: &str) -> (u16, String) {
        self.curl(
            "POST",
            "/v1beta1/login",
            None,
            &[&format!("Authorization: Bearer {password}")],
            None,
        )
    }

    /// An HTTP request with curl: `(status, body)`.
    pub fn curl(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &[&str],
        body: Option<&[u8]>,
    ) -> (u16, String) {
        let (code, _, body) = self.curl_with_headers(method, path, token, headers, body);
        (code, body)
    }

    /// An HTTP request with curl: `(status, response headers, body)`.
    pub fn curl_with_headers(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &[&str],
        body: Option<&[u8]>,
    ) -> (u16, String, String) {
        let header_file = tempfile::NamedTempFile::new().expect("temp file");
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "-o", "-", "-w", "\n%{http_code}", "-D"])
            .arg(header_file.path())
            .arg("--cacert")
            .arg(self.ca())
            .args(["-X", method]);
        if let Some(t) = token {
            cmd.args(["-H", &format!("Authorization: Bearer {t}")]);
        }
        for h in headers {
            cmd.args(["-H", h]);
        }
        if body.is_some() {
            cmd.args(["--data-binary", "@-"]);
        }
        cmd.arg(format!("{}{path}", self.url))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("curl runs");
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().expect("stdin");
            if let Some(b) = body {
                stdin.write_all(b).expect("write body");
            }
        }
        let out = child.wait_with_output().expect("curl output");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or((&text, "0"));
        let response_headers = std::fs::read_to_string(header_file.path()).unwrap_or_default();
        match code.trim().parse() {
            Ok(code) if code != 0 => (code, response_headers, body.to_owned()),
            // No HTTP answer at all: say what curl saw.
            _ => (
                0,
                response_headers,
                format!("{body}{}", String::from_utf8_lossy(&out.stderr)),
            ),
        }
    }

    /// The admin password the server was started with.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The server process's id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the server runs").id()
    }

    /// The server process's peak resident memory (`VmHWM`), in bytes.
    pub fn peak_memory(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("the server's /proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .expect("VmHWM")
            * 1024
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop(true);
    }
}

/// `--etcd-cafile`, `--etcd-certfile` and `--etcd-keyfile` for a TLS cluster (none for a plain
/// one).
pub fn etcd_tls_args(cluster: &kargo_store::testing::EtcdCluster) -> Vec<String> {
    cluster
        .client_tls_files()
        .map(|files| {
            vec![
                "--etcd-cafile".into(),
                files.ca.display().to_string(),
                "--etcd-certfile".into(),
                files.cert.display().to_string(),
                "--etcd-keyfile".into(),
                files.key.display().to_string(),
            ]
        })
        .unwrap_or_default()
}

/// Waits until `check` returns true or the timeout passes.
pub fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    check()
}

/// A TLS connection made by hand, for tests that need sockets no client library gives: from a
/// chosen address, sending a header one byte at a time, never finishing a body.
pub type Tls = rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>;

/// The server's CA as a rustls client configuration (HTTP/1.1 by ALPN).
pub fn tls_config(server: &Server) -> std::sync::Arc<rustls::ClientConfig> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(server.ca()).expect("ca.crt") {
        roots.add(cert.expect("a PEM certificate")).expect("a CA");
    }
    let mut config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    std::sync::Arc::new(config)
}

/// Connects to `server` from `from` (every 127.x.y.z address is this machine; tests use other
/// ones to stand for other clients) and completes the TLS handshake; reads and writes time out
/// after 10 s.
pub fn tls_connect(
    server: &Server,
    config: &std::sync::Arc<rustls::ClientConfig>,
    from: std::net::Ipv4Addr,
) -> std::io::Result<Tls> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.bind(&std::net::SocketAddr::from((from, 0)).into())?;
    let target = std::net::SocketAddr::from(([127, 0, 0, 1], server.port));
    socket.connect_timeout(&target.into(), Duration::from_secs(10))?;
    let tcp: std::net::TcpStream = socket.into();
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    tcp.set_write_timeout(Some(Duration::from_secs(10)))?;
    tcp.set_nodelay(true)?;
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("a name");
    let connection = rustls::ClientConnection::new(config.clone(), name)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut tls = rustls::StreamOwned::new(connection, tcp);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    Ok(tls)
}

/// A response read by hand: status, headers (names lower-cased) and body.
#[derive(Debug)]
pub struct RawResponse {
    /// The status code.
    pub status: u16,
    /// The header fields.
    pub headers: Vec<(String, String)>,
    /// The body (a `Content-Length` body; empty for a stream).
    pub body: String,
}

impl RawResponse {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one HTTP/1.1 response head, and its body when it has a `Content-Length`.
pub fn read_response(tls: &mut Tls) -> std::io::Result<RawResponse> {
    use std::io::Read;
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if tls.read(&mut byte)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {head:?}")))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    tls.read_exact(&mut body)?;
    Ok(RawResponse {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// Sends a GET with a bearer token and reads the answer.
pub fn raw_get(tls: &mut Tls, path: &str, token: Option<&str>) -> std::io::Result<RawResponse> {
    use std::io::Write;
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(tls, "GET {path} HTTP/1.1\r\nHost: kargo\r\n{auth}\r\n")?;
    tls.flush()?;
    read_response(tls)
}

/// Runs a test on both stores: `on_both_stores!(name, body)` makes the tests `name::sqlite` and
/// `name::etcd`, each calling `body(store_args)` with the server arguments of its store (none
/// for the data directory's SQLite file; a one-member etcd cluster's, kept running for the
/// test's length).
macro_rules! on_both_stores {
    ($name:ident, $body:ident) => {
        mod $name {
            #[test]
            fn sqlite() {
                super::$body(&[]);
            }

            #[test]
            fn etcd() {
                let cluster = kargo_store::testing::EtcdCluster::start(1);
                super::$body(&crate::harness::Server::etcd_args(&cluster));
            }
        }
    };
}
pub(crate) use on_both_stores;

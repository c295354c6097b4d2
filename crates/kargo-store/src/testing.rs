//! Test support (feature `testing`): throwaway etcd clusters on loopback, for the etcd backend's
//! tests and the server's replica tests.
//!
//! [`EtcdCluster::start`] runs `n` members of the `etcd` binary (Debian's `etcd-server`; or the
//! binary named by `KARGO_TEST_ETCD`) on free loopback ports, with data in a temp dir, and waits
//! until every member reports healthy. Members can be killed (SIGKILL) and started again. The
//! cluster is stopped when dropped; a watchdog process also kills the members and removes their
//! data if the test process dies first (or keeps the cluster in a `static`, which is never
//! dropped).
//!
//! A missing `etcd` binary is a test failure with instructions, never a skipped test.

// Test support: a cluster that cannot start should fail the test with the reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long a new or restarted cluster may take to become healthy.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A member's ports and process.
struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    child: Option<Child>,
}

/// An etcd cluster of local processes.
pub struct EtcdCluster {
    dir: TempDir,
    members: Vec<Member>,
    token: String,
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

/// Whether the member on `port` answers `/health` with `"health":"true"`.
fn healthy(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(200),
    ) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut reply = String::new();
    let _ = stream.read_to_string(&mut reply);
    reply.contains("\"health\":\"true\"")
}

impl EtcdCluster {
    /// Starts a cluster of `members` members and waits until all are healthy.
    pub fn start(members: usize) -> EtcdCluster {
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
            watchdog: None,
        };
        cluster.watchdog = Some(cluster.spawn_watchdog());
        for i in 0..cluster.members.len() {
            cluster.spawn(&binary, i);
        }
        cluster.wait_healthy(&(0..cluster.members.len()).collect::<Vec<_>>());
        cluster
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
        let client = format!("http://127.0.0.1:{}", member.client_port);
        let peer = format!("http://127.0.0.1:{}", member.peer_port);
        let child = Command::new(binary)
            .arg("--name")
            .arg(&member.name)
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &initial_cluster])
            .args(["--initial-cluster-state", "new"])
            .args(["--initial-cluster-token", &self.token])
            // Elections in about half a second instead of one to two (loopback is fast).
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
            .args(["--logger", "zap", "--log-level", "warn"])
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
        let deadline = Instant::now() + START_TIMEOUT;
        for &i in members {
            while !healthy(self.members[i].client_port) {
                if let Some(child) = self.members[i].child.as_mut()
                    && let Ok(Some(status)) = child.try_wait()
                {
                    panic!("etcd member {i} exited with {status}:\n{}", self.log(i));
                }
                assert!(
                    Instant::now() < deadline,
                    "etcd member {i} not healthy after {START_TIMEOUT:?}:\n{}",
                    self.log(i)
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// The member's log so far.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("m{i}.log"))).unwrap_or_default()
    }

    /// The client URLs of all members, `http://127.0.0.1:PORT`.
    pub fn endpoints(&self) -> Vec<String> {
        (0..self.members.len()).map(|i| self.endpoint(i)).collect()
    }

    /// The client URL of one member.
    pub fn endpoint(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.members[i].client_port)
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

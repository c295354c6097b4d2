//! `@kubernetes/client-node` (the official JavaScript client, pinned in tests/node) runs an
//! informer on ServiceAccounts against the server and writes through its `CoreV1Api`; its cache
//! must converge through creates, deletes and a server restart, on SQLite and on etcd.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use crate::harness::Server;

const NS: &str = "client-node";

/// The informer script (tests/node/informer.mjs) as a child process, driven line by line.
struct Informer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Informer {
    fn start(server: &Server) -> Informer {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/node");
        assert!(
            dir.join("node_modules/@kubernetes/client-node").exists(),
            "no tests/node/node_modules: run scripts/test.sh, or `npm ci --prefix tests/node`"
        );
        let mut child = Command::new("node")
            .arg(dir.join("informer.mjs"))
            .arg(server.admin_kubeconfig())
            .arg(NS)
            .env("NODE_EXTRA_CA_CERTS", server.ca())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start node (is node installed?)");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut informer = Informer {
            child,
            stdin,
            stdout,
        };
        assert_eq!(informer.line(), "started");
        informer
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("read from node");
        assert!(!line.is_empty(), "the informer script ended early");
        line.trim_end().to_owned()
    }

    /// Sends one command and returns the script's answer.
    fn send(&mut self, command: &str) -> String {
        writeln!(self.stdin, "{command}").expect("write to node");
        self.line()
    }

    fn ok(&mut self, command: &str) {
        assert_eq!(self.send(command), "ok", "{command}");
    }
}

impl Drop for Informer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn converges_through_writes_and_a_restart(mut server: Server) {
    server.kubectl(&["create", "namespace", NS]).ok();
    let mut informer = Informer::start(&server);
    informer.ok("expect ");
    let mut expected: Vec<String> = (0..8).map(|i| format!("sa-{i}")).collect();
    for name in &expected {
        informer.ok(&format!("create {name}"));
    }
    informer.ok(&format!("expect {}", expected.join(",")));
    // Objects written by another client reach the cache too.
    server
        .kubectl(&["create", "serviceaccount", "from-kubectl", "-n", NS])
        .ok();
    server
        .kubectl(&["delete", "serviceaccount", "sa-0", "-n", NS])
        .ok();
    expected.retain(|n| n != "sa-0");
    expected.push("from-kubectl".into());
    informer.ok(&format!("expect {}", expected.join(",")));
    for name in expected.drain(..2) {
        informer.ok(&format!("delete {name}"));
    }
    informer.ok(&format!("expect {}", expected.join(",")));

    // The watch breaks when the server goes away; the informer lists and watches again.
    server.restart(true);
    server
        .kubectl(&["create", "serviceaccount", "after-restart", "-n", NS])
        .ok();
    expected.push("after-restart".into());
    informer.ok(&format!("expect {}", expected.join(",")));
    informer.ok("create sa-late");
    informer.ok("delete sa-5");
    expected.push("sa-late".into());
    expected.retain(|n| n != "sa-5");
    informer.ok(&format!("expect {}", expected.join(",")));
    let labels = server.kubectl(&[
        "get",
        "serviceaccount",
        "sa-late",
        "-n",
        NS,
        "-o",
        "jsonpath={.metadata.labels.app}",
    ]);
    assert_eq!(labels.ok(), "client-node");
}

#[test]
fn a_client_node_informer_converges_on_sqlite() {
    converges_through_writes_and_a_restart(Server::start());
}

#[test]
fn a_client_node_informer_converges_on_etcd() {
    let cluster = kargo_store::testing::EtcdCluster::start(1);
    converges_through_writes_and_a_restart(Server::start_with(&Server::etcd_args(&cluster)));
}

//! The data directory and the store on disk (issue 13): everything in the data directory is
//! private whatever the umask, across restarts and exports; a wider directory is tightened with
//! a warning and one owned by another user refused; an empty, foreign or damaged `kargo.db` is a
//! start-up error unless `--init`; damage met while serving stops the server; a second server on
//! one directory fails at once. Every refusal is asserted by its message and by the process
//! exiting within [`EXIT_LIMIT`], never by a hang.

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::{ADMIN_PASSWORD, Server};

/// How long a server that must refuse to start (or stop) may take to exit.
const EXIT_LIMIT: Duration = Duration::from_secs(20);

/// A `kargo server` started by this module (umask and stderr under the test's control).
struct Running {
    child: Child,
    stderr: Arc<Mutex<String>>,
}

/// A `kargo server` process that exited: its exit code, what it printed on stderr, and how long
/// it ran.
struct Exited {
    code: Option<i32>,
    stderr: String,
    took: Duration,
}

/// Starts `kargo server` on a free port with `data_dir` and `args` under `umask`, and waits until
/// it listens (`Ok`) or exits (`Err`). Fails the test if neither happens within a minute.
fn spawn(data_dir: &Path, args: &[&str], umask: &str) -> Result<Running, Exited> {
    spawn_with(data_dir, args, umask, &[])
}

/// [`spawn`] with more environment variables.
fn spawn_with(
    data_dir: &Path,
    args: &[&str],
    umask: &str,
    envs: &[(&str, &str)],
) -> Result<Running, Exited> {
    let started = Instant::now();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("umask {umask}; exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_kargo"))
        .args(["server", "--address", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(args)
        .env("KARGO_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("KARGO_LOG", "warn")
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start kargo server");
    let stderr = Arc::new(Mutex::new(String::new()));
    let mut pipe = child.stderr.take().expect("stderr");
    let sink = stderr.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let (lines_tx, lines_rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                // Keep draining so the server never blocks on a full pipe.
                continue;
            }
        }
    });
    let deadline = started + Duration::from_secs(60);
    loop {
        if let Ok(line) = lines_rx.recv_timeout(Duration::from_millis(50))
            && line.starts_with("kargo server listening on ")
        {
            return Ok(Running { child, stderr });
        }
        if let Some(status) = child.try_wait().expect("wait") {
            // Let the reader thread take the last of stderr.
            std::thread::sleep(Duration::from_millis(100));
            let text = stderr.lock().unwrap().clone();
            return Err(Exited {
                code: status.code(),
                stderr: text,
                took: started.elapsed(),
            });
        }
        assert!(
            Instant::now() < deadline,
            "kargo server neither listened nor exited within a minute:\n{}",
            stderr.lock().unwrap()
        );
    }
}

/// Starts a server that must start.
#[track_caller]
fn start(data_dir: &Path, args: &[&str], umask: &str) -> Running {
    match spawn(data_dir, args, umask) {
        Ok(running) => running,
        Err(exited) => panic!(
            "kargo server exited with {:?}:\n{}",
            exited.code, exited.stderr
        ),
    }
}

/// Starts a server that must refuse to start, within [`EXIT_LIMIT`], with exit code 1; its
/// stderr.
#[track_caller]
fn refused(data_dir: &Path, args: &[&str]) -> String {
    refused_with(data_dir, args, &[])
}

/// [`refused`] with more environment variables.
#[track_caller]
fn refused_with(data_dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> String {
    match spawn_with(data_dir, args, "022", envs) {
        Ok(mut running) => {
            running.stop();
            panic!("kargo server started:\n{}", running.stderr.lock().unwrap());
        }
        Err(exited) => {
            assert_eq!(exited.code, Some(1), "{}", exited.stderr);
            assert!(
                exited.took < EXIT_LIMIT,
                "took {:?}: {}",
                exited.took,
                exited.stderr
            );
            exited.stderr
        }
    }
}

impl Running {
    /// SIGTERM, then waits for the exit.
    fn stop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }

    /// Waits until the process exits by itself, failing after [`EXIT_LIMIT`].
    fn exits(&mut self) -> Exited {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                std::thread::sleep(Duration::from_millis(100));
                return Exited {
                    code: status.code(),
                    stderr: self.stderr.lock().unwrap().clone(),
                    took: started.elapsed(),
                };
            }
            assert!(
                started.elapsed() < EXIT_LIMIT,
                "the server kept running for {EXIT_LIMIT:?}:\n{}",
                self.stderr.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// kubectl as the admin of the server whose data directory is `data_dir`.
fn kubectl(data_dir: &Path, args: &[&str], stdin: Option<&str>) -> std::process::Output {
    let home = data_dir.with_file_name("kubectl-home");
    let mut child = Command::new("kubectl")
        .args(args)
        .env("KUBECONFIG", data_dir.join("admin.kubeconfig"))
        .env("HOME", &home)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl runs");
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        let text = text.to_owned();
        // From a thread: kubectl may answer (and fail) before it has read everything.
        std::thread::spawn(move || {
            let _ = pipe.write_all(text.as_bytes());
        });
    }
    child.wait_with_output().expect("kubectl output")
}

/// Every directory under and including `dir` with its mode, and every file: `(path, mode)`.
fn modes(dir: &Path) -> Vec<(PathBuf, u32)> {
    let mut all = vec![(dir.to_owned(), mode(dir))];
    for entry in std::fs::read_dir(dir).expect("read the data directory") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            all.extend(modes(&path));
        } else {
            all.push((path.clone(), mode(&path)));
        }
    }
    all
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o7777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Asserts that `dir` and everything in it is private (directories 0700, files 0600) and that
/// it holds at least the files named; `when` names the moment in a failure.
#[track_caller]
fn assert_private(dir: &Path, must_hold: &[&str], when: &str) {
    let found = modes(dir);
    let open: Vec<String> = found
        .iter()
        .filter(|(path, mode)| *mode != if path.is_dir() { 0o700 } else { 0o600 })
        .map(|(path, mode)| format!("{} {mode:04o}", path.display()))
        .collect();
    assert!(open.is_empty(), "{when}: not private: {open:?}");
    for name in must_hold {
        assert!(
            found.iter().any(|(path, _)| path == &dir.join(name)),
            "{when}: no {name} in {found:?}"
        );
    }
}

/// What a running SQLite server's data directory holds.
const RUNNING_FILES: &[&str] = &[
    "kargo.db",
    "kargo.db-wal",
    "kargo.db-shm",
    "kargo.lock",
    "admin.kubeconfig",
    "tls",
    "tls/ca.crt",
    "tls/server.crt",
    "tls/server.key",
    "tls/server.names",
];

#[test]
fn every_file_in_the_data_directory_is_private_whatever_the_umask_across_a_restart_and_an_export() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let data = scratch.path().join("data");
    // The usual umask: before issue 13 this left the directory 0755 and the store 0644.
    let mut server = start(&data, &[], "022");
    let created = kubectl(
        &data,
        &[
            "create",
            "secret",
            "generic",
            "s",
            "--from-literal=token=very-secret",
        ],
        None,
    );
    assert!(created.status.success(), "{created:?}");
    assert_private(&data, RUNNING_FILES, "first start under umask 022");
    server.stop();

    // An export, over a file that existed with a wider mode, under the widest umask.
    let export = scratch.path().join("backup.jsonl");
    std::fs::write(&export, b"old").expect("an old export");
    chmod(&export, 0o644);
    let out = Command::new("sh")
        .arg("-c")
        .arg("umask 000; exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_kargo"))
        .args(["server", "export", "--data-dir"])
        .arg(&data)
        .arg("--output")
        .arg(&export)
        .output()
        .expect("kargo server export runs");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(mode(&export), 0o600);
    assert!(
        std::fs::read_to_string(&export)
            .expect("the export")
            .contains("kargo-store-export")
    );
    assert_private(
        &data,
        &["kargo.db", "kargo.lock", "tls/server.key"],
        "after an export",
    );

    // Restarted under umask 000: nothing it writes is open to others either.
    let mut server = start(&data, &[], "000");
    assert_private(&data, RUNNING_FILES, "restart under umask 000");
    server.stop();
}

#[test]
fn a_data_directory_opened_to_others_is_tightened_with_a_warning_naming_each_path() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let data = scratch.path().join("data");
    let mut server = start(&data, &[], "022");
    server.stop();
    // As an operator's `chmod -R a+rX`, or an older version, would have left it.
    chmod(&data, 0o755);
    chmod(&data.join("tls"), 0o755);
    for file in ["kargo.db", "admin.kubeconfig", "tls/server.key"] {
        chmod(&data.join(file), 0o644);
    }
    let mut server = start(&data, &[], "022");
    assert_private(&data, RUNNING_FILES, "after tightening");
    let stderr = server.stderr.lock().unwrap().clone();
    for path in [
        "",
        "/tls",
        "/kargo.db",
        "/admin.kubeconfig",
        "/tls/server.key",
    ] {
        let expected = format!("path={}{path}", data.display());
        assert!(
            stderr.lines().any(|line| line.contains("must be private")
                && line.contains(&expected)
                && line.contains(" now=")),
            "no warning for {expected}:\n{stderr}"
        );
    }
    server.stop();
}

#[test]
fn a_data_directory_owned_by_another_user_is_refused_with_a_clear_message() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let data = scratch.path().join("data");
    std::fs::create_dir(&data).expect("mkdir");
    chmod(&data, 0o700);
    // uid 65534 is `nobody`. Giving a directory away needs root, as the tests run (and CI).
    std::os::unix::fs::chown(&data, Some(65534), Some(65534))
        .expect("chown to nobody (the e2e tests run as root)");
    let me = std::fs::metadata(scratch.path()).expect("metadata").uid();
    let stderr = refused(&data, &[]);
    assert!(
        stderr.contains(&format!(
            "Error: {} belongs to uid 65534, not to uid {me} that this server runs as",
            data.display()
        )),
        "{stderr}"
    );
    // Nothing was written into it, nor its mode changed.
    assert_eq!(std::fs::read_dir(&data).expect("read").count(), 0);
    assert_eq!(mode(&data), 0o700);
}

#[test]
fn an_empty_kargo_db_is_refused_and_init_sets_it_aside_and_starts_a_new_store() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let data = scratch.path().join("data");
    std::fs::create_dir(&data).expect("mkdir");
    let db = data.join("kargo.db");
    std::fs::write(&db, b"").expect("an empty kargo.db");
    let stderr = refused(&data, &[]);
    assert!(
        stderr.contains(&format!(
            "Error: {} is not a usable Kargo store: the file is empty (0 bytes), so it holds no \
             store. Restore it from a backup (see docs/operations.md), or start with --init to \
             set it aside and begin a new, empty store",
            db.display()
        )),
        "{stderr}"
    );
    assert_eq!(std::fs::metadata(&db).expect("kept").len(), 0);
    assert!(!data.join("tls").exists(), "no new CA was made");

    let mut server = start(&data, &["--init"], "022");
    let listed = kubectl(&data, &["get", "namespace", "default"], None);
    assert!(listed.status.success(), "{listed:?}");
    server.stop();
    let aside: Vec<String> = std::fs::read_dir(&data)
        .expect("read")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("kargo.db.unusable-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");

    // `--init` on a Kargo store is refused; without it the store starts.
    let stderr = refused(&data, &["--init"]);
    assert!(
        stderr.contains(&format!(
            "Error: --init was given, but {} holds a Kargo store: start without --init",
            db.display()
        )),
        "{stderr}"
    );
    start(&data, &[], "022").stop();
}

#[test]
fn a_kargo_db_that_is_not_a_kargo_store_is_refused_and_left_untouched() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let check = |name: &str, contents: &[u8], expected: &str| {
        let data = scratch.path().join(name);
        std::fs::create_dir(&data).expect("mkdir");
        let db = data.join("kargo.db");
        std::fs::write(&db, contents).expect("write kargo.db");
        let stderr = refused(&data, &[]);
        assert!(
            stderr.contains(&format!(
                "Error: {} is not a usable Kargo store: {expected}",
                db.display()
            )),
            "{name}: {stderr}"
        );
        assert_eq!(std::fs::read(&db).expect("kept"), contents, "{name}");
    };
    check(
        "text",
        b"this is not a database, only some text that took its name\n",
        "sqlite: file is not a database",
    );
    // Another program's SQLite database: made by a Kargo server first, then its tables renamed.
    let other = scratch.path().join("other");
    start(&other, &[], "022").stop();
    let renamed = Command::new("python3")
        .arg("-c")
        .arg(
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); \
             c.execute('ALTER TABLE kv RENAME TO notes'); c.commit(); c.close()",
        )
        .arg(other.join("kargo.db"))
        .output()
        .expect("python3 runs");
    assert!(renamed.status.success(), "{renamed:?}");
    let contents = std::fs::read(other.join("kargo.db")).expect("read");
    std::fs::remove_dir_all(&other).expect("clean");
    check(
        "foreign",
        &contents,
        "a SQLite database without Kargo's tables, not a Kargo store (its tables: meta, notes)",
    );
}

/// Overwrites `pages` SQLite pages (4 KiB) with garbage, starting at the middle of the file.
fn damage(db: &Path, pages: u64) {
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(db)
        .expect("open kargo.db");
    let len = file.seek(SeekFrom::End(0)).expect("seek");
    let middle = (len / 2 / 4096) * 4096;
    assert!(
        middle >= 4096 && middle + pages * 4096 < len,
        "kargo.db is too small ({len} bytes) to damage {pages} pages in its middle"
    );
    file.seek(SeekFrom::Start(middle)).expect("seek");
    let garbage: Vec<u8> = (0..pages * 4096).map(|i| (i * 131 % 251) as u8).collect();
    file.write_all(&garbage).expect("write");
    file.sync_all().expect("sync");
}

/// ConfigMaps of 1 KiB each, so that the store spans many pages, each holding whole rows (a
/// damaged page is then a b-tree page, which SQLite checks as it reads it).
fn fill(data: &Path, count: usize) {
    let documents: Vec<String> = (0..count)
        .map(|i| {
            serde_json::json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": format!("fill-{i}"), "namespace": "default"},
                "data": {"blob": "x".repeat(1024)},
            })
            .to_string()
        })
        .collect();
    let out = kubectl(data, &["apply", "-f", "-"], Some(&documents.join("\n")));
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn a_kargo_db_with_a_damaged_page_stops_the_start_with_a_clear_message() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let data = scratch.path().join("data");
    let mut server = start(&data, &[], "022");
    fill(&data, 400);
    server.stop();
    let db = data.join("kargo.db");
    damage(&db, 1);
    let stderr = refused(&data, &[]);
    assert!(
        stderr.contains(&format!(
            "Error: {} is not a usable Kargo store: SQLite's quick_check found damage: ",
            db.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("Restore it from a backup"), "{stderr}");
}

#[test]
fn damage_met_while_serving_stops_the_server_with_a_clear_message() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let data = scratch.path().join("data");
    let mut server = start(&data, &[], "022");
    fill(&data, 400);
    // A clean stop checkpoints every page into kargo.db; the next start reads them from there.
    server.stop();
    let mut server = start(&data, &[], "022");
    damage(&data.join("kargo.db"), 16);
    // A write (which makes every reader drop its cached pages), then a list that reads them.
    let _ = kubectl(&data, &["create", "configmap", "after-damage"], None);
    let _ = kubectl(&data, &["get", "configmaps", "-A"], None);
    let exited = server.exits();
    assert_eq!(exited.code, Some(1), "{}", exited.stderr);
    let expected = format!(
        "Error: {} is damaged, so the server stopped: sqlite: database disk image is malformed. \
         Restore the store from a backup (see docs/operations.md)",
        data.join("kargo.db").display()
    );
    assert!(exited.stderr.contains(&expected), "{}", exited.stderr);
}

#[test]
fn a_second_server_on_the_same_data_directory_fails_at_once_naming_it() {
    let first = Server::start();
    let pid = first_pid(&first.data_dir());
    let stderr = refused(&first.data_dir(), &[]);
    assert!(
        stderr.contains(&format!(
            "Error: another kargo server (process {pid}) is using the data directory {}: it \
             holds {}/kargo.lock. Stop it first, or give this server its own --data-dir",
            first.data_dir().display(),
            first.data_dir().display()
        )),
        "{stderr}"
    );
    // The first one is untouched and still serving.
    first.kubectl(&["get", "namespace", "default"]).ok();
}

/// The process id the running server wrote into its lock file.
fn first_pid(data_dir: &Path) -> u32 {
    std::fs::read_to_string(data_dir.join("kargo.lock"))
        .expect("the lock file")
        .trim()
        .parse()
        .expect("a process id")
}

/// An etcd prefix is checked like a SQLite file (an empty one is a first start, one holding
/// keys but no Kargo CA is refused), and the etcd flags and `KARGO_ETCD_*` variables reach the
/// store: through client certificates, and a login whose password comes from the environment
/// and never shows in a message.
#[test]
fn an_etcd_prefix_with_foreign_keys_is_refused_and_the_etcd_flags_and_variables_reach_the_store() {
    const PASSWORD: &str = "etcd-pass-4f9a";
    let cluster = kargo_store::testing::EtcdCluster::start(1);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        use kargo_store::Store;
        let store =
            kargo_store::etcd::EtcdStore::connect(cluster.options().with_prefix("/foreign"))
                .await
                .expect("connect");
        store
            .create("/registry/configmaps/default/theirs", b"{}".to_vec())
            .await
            .expect("a key of someone else's");
        cluster.enable_auth("kargo", PASSWORD, "/").await;
    });
    let scratch = tempfile::tempdir().expect("tempdir");
    let data = scratch.path().join("data");
    let endpoints = cluster.endpoints().join(",");
    let tls = crate::harness::etcd_tls_args(&cluster);
    let args = |prefix: &'static str, extra: &[&'static str]| -> Vec<String> {
        let mut args: Vec<String> = ["--store", "etcd", "--etcd-endpoints", &endpoints]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend(tls.iter().cloned());
        args.extend(["--etcd-prefix".into(), prefix.into()]);
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let refuse = |args: Vec<String>, password: &str| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        refused_with(
            &data,
            &args,
            &[
                ("KARGO_ETCD_USERNAME", "kargo"),
                ("KARGO_ETCD_PASSWORD", password),
            ],
        )
    };

    let stderr = refuse(args("/kargo", &[]), "not-the-password");
    assert!(
        stderr.contains(r#"etcd refused the login of user "kargo""#),
        "{stderr}"
    );
    assert!(!stderr.contains("not-the-password"), "{stderr}");
    let stderr = refuse(args("/foreign", &[]), PASSWORD);
    assert!(
        stderr.contains(&format!(
            "Error: the etcd store at {endpoints} (prefix \"/foreign\") is not a Kargo store: it \
             holds keys (such as /registry/configmaps/default/theirs) but none of Kargo's own \
             (its CA, signing keys and admin record under /kargo/internal/), which every Kargo \
             store has from its first start. Use another --etcd-prefix, or delete the keys under \
             this one to begin a new installation"
        )),
        "{stderr}"
    );
    let stderr = refuse(args("/kargo", &["--init"]), PASSWORD);
    assert!(
        stderr.contains("Error: --init applies to the SQLite store only"),
        "{stderr}"
    );
    // An empty prefix: a first start.
    let args = args("/kargo", &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut server = spawn_with(
        &data,
        &args,
        "022",
        &[
            ("KARGO_ETCD_USERNAME", "kargo"),
            ("KARGO_ETCD_PASSWORD", PASSWORD),
        ],
    )
    .unwrap_or_else(|exited| panic!("did not start: {}", exited.stderr));
    let listed = kubectl(&data, &["get", "namespace", "default"], None);
    assert!(listed.status.success(), "{listed:?}");
    server.stop();
    assert!(
        !server.stderr.lock().unwrap().contains(PASSWORD),
        "the password was logged"
    );
}

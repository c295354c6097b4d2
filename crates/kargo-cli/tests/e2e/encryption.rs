//! Encryption at rest (`kargo server --encryption-config`, `kargo server reencrypt`), with real
//! servers on SQLite and etcd: the raw database file and the raw etcd values hold no token and no
//! byte of the CA key, the signing keys or the admin-token key; values written before encryption
//! still read; keys rotate (add, promote, re-encrypt while serving, drop) with every token still
//! working; a wrong or missing key, or a bad file, stops the start with a message that names it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use kargo_server::encryption::EncryptionConfig;
use kargo_store::testing::EtcdCluster;
use kargo_store::{KeyValue, ListRequest, Store};
use serde_json::Value;

use crate::harness::{Run, Server, eventually};

/// Key bytes, base64 (32 bytes each; `K1_OTHER` has `K1`'s name in one test but other bytes).
const K1: &str = "a2V5LW9uZS1rZXktb25lLWtleS1vbmUta2V5LW9uZSE=";
const K2: &str = "a2V5LXR3by1rZXktdHdvLWtleS10d28ta2V5LXR3byE=";
const K1_OTHER: &str = "b3RoZXItYnl0ZXMtb3RoZXItYnl0ZXMtb3RoZXItYnk=";

/// The server's own records, encrypted whenever a configuration is given.
const INTERNAL: [&str; 3] = [
    "/kargo/internal/ca",
    "/kargo/internal/signing-keys",
    "/kargo/internal/admin",
];

/// Writes an `EncryptionConfiguration` for `secrets` with `providers` (YAML list items) into the
/// test's scratch directory; returns its path.
fn config(server: &Server, file: &str, providers: &str) -> PathBuf {
    let path = server.scratch().join(file);
    let text = format!(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources:\n  - secrets\n  providers:\n{providers}"
    );
    std::fs::write(&path, text).expect("write the encryption configuration");
    path
}

/// One `aesgcm` provider item with `(name, secret)` keys, in order.
fn aesgcm(keys: &[(&str, &str)]) -> String {
    let mut text = "  - aesgcm:\n      keys:\n".to_owned();
    for (name, secret) in keys {
        text.push_str(&format!("      - name: {name}\n        secret: {secret}\n"));
    }
    text
}

fn flag(path: &Path) -> Vec<String> {
    vec![
        "--encryption-config".into(),
        path.to_string_lossy().into_owned(),
    ]
}

/// A token Secret for account `account` in namespace `p` (created with the namespace on first
/// use); returns the token once the controller has filled it.
fn new_token(server: &Server, account: &str) -> String {
    let _ = server.kubectl(&["create", "namespace", "p"]);
    server
        .kubectl(&["create", "serviceaccount", account, "-n", "p"])
        .ok();
    let secret = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {account}-token\n  namespace: p\n  annotations:\n    kubernetes.io/service-account.name: {account}\ntype: kubernetes.io/service-account-token\n"
    );
    server.kubectl_stdin(&["apply", "-f", "-"], &secret).ok();
    let mut token = String::new();
    assert!(
        eventually(Duration::from_secs(10), || {
            token = server
                .kubectl(&[
                    "get",
                    "secret",
                    &format!("{account}-token"),
                    "-n",
                    "p",
                    "-o",
                    "jsonpath={.data.token}",
                ])
                .stdout;
            !token.is_empty()
        }),
        "the token controller never filled {account}-token"
    );
    String::from_utf8(STANDARD.decode(token.trim()).expect("base64")).expect("utf-8")
}

/// Asserts that `token` authenticates as the service account `account` of `p`.
#[track_caller]
fn assert_works(server: &Server, token: &str, account: &str) {
    let (status, body) = server.curl(
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        Some(token),
        &["Content-Type: application/json"],
        Some(br#"{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}"#),
    );
    assert_eq!(status, 201, "{body}");
    let body: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(
        body.pointer("/status/userInfo/username"),
        Some(&Value::String(format!("system:serviceaccount:p:{account}")))
    );
}

/// Runs `kargo server` (or a subcommand) to completion, for starts that must fail and for
/// `reencrypt`; one still running after a minute (a start that should have failed and serves
/// instead) is killed and fails the test.
fn kargo(args: &[String], env: &[(&str, &Path)]) -> Run {
    let outputs = tempfile::tempdir().expect("tempdir");
    let (out_path, err_path) = (outputs.path().join("out"), outputs.path().join("err"));
    let mut command = Command::new(env!("CARGO_BIN_EXE_kargo"));
    command.args(args).env_remove("KARGO_ENCRYPTION_CONFIG");
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command
        .env("KARGO_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"))
        .spawn()
        .expect("kargo runs");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`kargo {}` was still running after 60 s; stdout:\n{}",
                args.join(" "),
                std::fs::read_to_string(&out_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = std::process::Output {
        status,
        stdout: std::fs::read(&out_path).expect("stdout"),
        stderr: std::fs::read(&err_path).expect("stderr"),
    };
    Run::from(format!("kargo {}", args.join(" ")), out)
}

/// `kargo server` on the server's data directory with `extra` flags, expected to fail at start.
#[track_caller]
fn start_fails(server: &Server, extra: &[String], env: &[(&str, &Path)]) -> String {
    let mut args: Vec<String> = vec![
        "server".into(),
        "--address".into(),
        "127.0.0.1:0".into(),
        "--data-dir".into(),
    ];
    args.push(server.data_dir().to_string_lossy().into_owned());
    args.extend(extra.iter().cloned());
    let run = kargo(&args, env);
    let stderr = run.err().to_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(run.code, 1, "{stderr}");
    stderr
}

/// One runtime for every store this module opens, kept for the whole test binary: an etcd
/// client must outlive the call that connected it.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime")
    })
}

/// Every key-value under `/` of a store, as stored.
fn raw_values(store: &Arc<dyn Store>) -> Vec<KeyValue> {
    runtime().block_on(async {
        store
            .list(ListRequest {
                prefix: "/".into(),
                ..ListRequest::default()
            })
            .await
            .expect("list the raw store")
            .kvs
    })
}

fn sqlite(server: &Server) -> Arc<dyn Store> {
    Arc::new(
        kargo_store::sqlite::SqliteStore::open(&server.data_dir().join("kargo.db"))
            .expect("open kargo.db"),
    )
}

/// The secret parts of the server's own records, read through the configuration at `path`:
/// the CA key's PEM lines, the signing keys (PKCS#8, base64 and raw), the admin-token key
/// (base64 and raw) and the admin password hash. Each is a needle that must not be found raw.
fn key_needles(store: Arc<dyn Store>, path: &Path) -> Vec<(String, Vec<u8>)> {
    let config = EncryptionConfig::load(path).expect("the configuration loads");
    let decrypted = config.wrap(store);
    let (ca, keys, admin) = runtime().block_on(async {
        let record = |kv: Option<KeyValue>| -> Value {
            serde_json::from_slice(&kv.expect("the record exists").value).expect("JSON")
        };
        (
            record(decrypted.get(INTERNAL[0]).await.expect("get")),
            record(decrypted.get(INTERNAL[1]).await.expect("get")),
            record(decrypted.get(INTERNAL[2]).await.expect("get")),
        )
    });
    let mut needles = Vec::new();
    let mut base64_field = |what: &str, text: &str| {
        needles.push((format!("{what} (base64)"), text.as_bytes()[..40].to_vec()));
        let raw = STANDARD.decode(text).expect("base64");
        needles.push((format!("{what} (raw)"), raw[..24].to_vec()));
    };
    for key in keys["keys"].as_array().expect("keys") {
        base64_field("signing key", key["pkcs8"].as_str().expect("pkcs8"));
    }
    base64_field("admin-token key", admin["jwtKey"].as_str().expect("jwtKey"));
    base64_field("admin password hash", admin["hash"].as_str().expect("hash"));
    for line in ca["keyPem"].as_str().expect("keyPem").lines() {
        if !line.starts_with("-----") {
            needles.push(("CA key PEM line".into(), line.as_bytes().to_vec()));
        }
    }
    needles
}

/// How a token may appear in stored bytes: itself, and base64 as a Secret's `data` holds it.
fn token_needles(token: &str) -> Vec<(String, Vec<u8>)> {
    vec![
        ("token".into(), token.as_bytes().to_vec()),
        (
            "token (base64, as in Secret data)".into(),
            STANDARD.encode(token).into_bytes(),
        ),
    ]
}

/// `data.k` of the Secret `s` in `p`, as kubectl shows it.
fn secret_data(server: &Server) -> String {
    server
        .kubectl(&["get", "secret", "s", "-n", "p", "-o", "jsonpath={.data.k}"])
        .ok()
        .to_owned()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// The store files of a data directory: the database, its WAL and shared-memory files.
fn database_files(server: &Server) -> Vec<(String, Vec<u8>)> {
    ["kargo.db", "kargo.db-wal", "kargo.db-shm"]
        .iter()
        .filter_map(|name| {
            std::fs::read(server.data_dir().join(name))
                .ok()
                .map(|bytes| (name.to_string(), bytes))
        })
        .collect()
}

/// The needles found in any of `files`: `(needle, file)`.
fn found(files: &[(String, Vec<u8>)], needles: &[(String, Vec<u8>)]) -> Vec<(String, String)> {
    let mut hits = Vec::new();
    for (what, needle) in needles {
        for (file, bytes) in files {
            if contains(bytes, needle) {
                hits.push((what.clone(), file.clone()));
            }
        }
    }
    hits
}

/// Asserts that every current value of the Secrets and of the server's own records is encrypted
/// with `prefix`.
#[track_caller]
fn assert_encrypted_with(kvs: &[KeyValue], prefix: &str) {
    let mut checked = 0;
    for kv in kvs {
        if kv.key.starts_with("/registry/secrets/") || kv.key.starts_with("/kargo/internal/") {
            assert!(
                kv.value.starts_with(prefix.as_bytes()),
                "{} is stored as {:?}",
                kv.key,
                String::from_utf8_lossy(&kv.value[..kv.value.len().min(40)])
            );
            checked += 1;
        }
    }
    // The three records and at least one token Secret.
    assert!(checked > INTERNAL.len(), "only {checked} values checked");
}

#[test]
fn on_sqlite_the_database_file_holds_no_token_and_no_key_bytes_and_tokens_work() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("encryption.yaml");
    std::fs::write(
        &path,
        format!(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n{}",
            aesgcm(&[("k1", K1)])
        ),
    )
    .expect("write the configuration");
    let mut server = Server::start_with(&flag(&path));
    let token = new_token(&server, "bot");
    assert_works(&server, &token, "bot");
    let admin = server.admin_token();
    assert!(!admin.is_empty());

    // While the server runs: the newest writes are in the WAL.
    let tokens = token_needles(&token);
    assert_eq!(found(&database_files(&server), &tokens), vec![]);

    server.stop_for_maintenance();
    let files = database_files(&server);
    assert_eq!(found(&files, &tokens), vec![]);
    let needles = key_needles(sqlite(&server), &path);
    assert!(needles.len() >= 9, "{} needles", needles.len());
    assert_eq!(found(&files, &needles), vec![]);
    assert_encrypted_with(&raw_values(&sqlite(&server)), "k8s:enc:aesgcm:v1:k1:");

    server.start_again();
    assert_works(&server, &token, "bot");
    assert_eq!(
        server
            .kubectl(&["get", "sa", "bot", "-n", "p", "-o", "name"])
            .ok(),
        "serviceaccount/bot\n"
    );
}

#[test]
fn values_written_before_encryption_still_read_and_reencrypt_encrypts_them_while_serving() {
    let mut server = Server::start();
    let token = new_token(&server, "early");
    server
        .kubectl(&[
            "create",
            "secret",
            "generic",
            "s",
            "-n",
            "p",
            "--from-literal=k=v",
        ])
        .ok();
    // Without encryption the same search finds the token and the keys: it can fail.
    server.stop_for_maintenance();
    let plain = database_files(&server);
    assert_ne!(found(&plain, &token_needles(&token)), vec![]);
    // (Any configuration reads plain records, so it serves to collect the needles.)
    let path = config(&server, "enc.yaml", &aesgcm(&[("k1", K1)]));
    let needles = key_needles(sqlite(&server), &path);
    assert_ne!(found(&plain, &needles), vec![]);

    server.restart_with(&flag(&path));
    assert_works(&server, &token, "early");
    assert_eq!(secret_data(&server), "dg==");
    let before = raw_values(&sqlite(&server));
    assert!(
        before
            .iter()
            .any(|kv| kv.key == "/registry/secrets/p/early-token" && kv.value.starts_with(b"{")),
        "the token Secret was rewritten before reencrypt"
    );

    // The server keeps serving while every stale value is rewritten, through the environment
    // variable this time.
    let out = kargo(
        &[
            "server".into(),
            "reencrypt".into(),
            "--data-dir".into(),
            server.data_dir().to_string_lossy().into_owned(),
        ],
        &[("KARGO_ENCRYPTION_CONFIG", &path)],
    );
    // The two Secrets; the server's own three records were rewritten when it started.
    assert_eq!(
        out.ok(),
        format!(
            "rewrote 2 of 5 encrypted values with the first key of {}\n",
            path.display()
        )
    );
    assert_encrypted_with(&raw_values(&sqlite(&server)), "k8s:enc:aesgcm:v1:k1:");
    assert_works(&server, &token, "early");
    server.restart(false);
    assert_works(&server, &token, "early");
    assert_eq!(secret_data(&server), "dg==");
}

#[test]
fn keys_rotate_by_adding_promoting_reencrypting_and_dropping_and_every_token_keeps_working() {
    let mut server = Server::start();
    let only_k1 = config(&server, "1.yaml", &aesgcm(&[("k1", K1)]));
    let k1_then_k2 = config(&server, "2.yaml", &aesgcm(&[("k1", K1), ("k2", K2)]));
    let k2_then_k1 = config(&server, "3.yaml", &aesgcm(&[("k2", K2), ("k1", K1)]));
    let only_k2 = config(&server, "4.yaml", &aesgcm(&[("k2", K2)]));

    server.restart_with(&flag(&only_k1));
    let first = new_token(&server, "first");
    // 1. Add the new key as the second key, restart (every replica, in a cluster).
    server.restart_with(&flag(&k1_then_k2));
    assert_works(&server, &first, "first");
    let second = new_token(&server, "second");
    // 2. Make it the first key, restart: new writes use it.
    server.restart_with(&flag(&k2_then_k1));
    let third = new_token(&server, "third");
    for (token, account) in [(&first, "first"), (&second, "second"), (&third, "third")] {
        assert_works(&server, token, account);
    }
    // Dropping the old key now would leave values nobody can read: the start refuses.
    server.stop_for_maintenance();
    let refused = start_fails(&server, &flag(&only_k2), &[]);
    assert_eq!(
        refused,
        format!(
            "Error: the encryption configuration {} cannot decrypt a stored value: the value of /registry/secrets/p/first-token is encrypted with aesgcm key \"k1\", which is not in the encryption configuration\n",
            only_k2.display()
        )
    );
    // 3. Re-encrypt while the server runs.
    server.start_again();
    let out = kargo(
        &[
            "server".into(),
            "reencrypt".into(),
            "--data-dir".into(),
            server.data_dir().to_string_lossy().into_owned(),
            "--encryption-config".into(),
            k2_then_k1.to_string_lossy().into_owned(),
        ],
        &[],
    );
    assert!(out.ok().starts_with("rewrote "), "{}", out.stdout);
    assert_encrypted_with(&raw_values(&sqlite(&server)), "k8s:enc:aesgcm:v1:k2:");
    // 4. Drop the old key, restart.
    server.restart_with(&flag(&only_k2));
    for (token, account) in [(&first, "first"), (&second, "second"), (&third, "third")] {
        assert_works(&server, token, account);
    }
    assert!(!server.admin_token().is_empty());
    assert_eq!(
        server.kubectl(&["get", "ns", "p", "-o", "name"]).ok(),
        "namespace/p\n"
    );
}

#[test]
fn a_wrong_or_missing_key_or_a_bad_file_stops_the_start_with_a_message_that_names_it() {
    let mut server = Server::start();
    let right = config(&server, "right.yaml", &aesgcm(&[("k1", K1)]));
    server.restart_with(&flag(&right));
    let token = new_token(&server, "bot");
    server.stop_for_maintenance();

    let other_bytes = config(&server, "other.yaml", &aesgcm(&[("k1", K1_OTHER)]));
    let stderr = start_fails(&server, &flag(&other_bytes), &[]);
    assert_eq!(
        stderr,
        format!(
            "Error: the encryption configuration {} cannot decrypt a stored value: the value of /registry/secrets/p/bot-token does not decrypt with aesgcm key \"k1\": the key of that name is not the one the value was written with, or the value was altered\n",
            other_bytes.display()
        )
    );

    let stderr = start_fails(&server, &[], &[]);
    assert_eq!(
        stderr,
        "Error: the store holds encrypted values (/kargo/internal/admin is encrypted with aesgcm key \"k1\"): start the server with --encryption-config and the file holding that key\n"
    );

    let missing = server.scratch().join("missing.yaml");
    let stderr = start_fails(&server, &[], &[("KARGO_ENCRYPTION_CONFIG", &missing)]);
    assert_eq!(
        stderr,
        format!(
            "Error: reading the encryption configuration {}: No such file or directory (os error 2)\n",
            missing.display()
        )
    );

    let bad = config(&server, "bad.yaml", &aesgcm(&[("k1", "not-base64!")]));
    let stderr = start_fails(&server, &flag(&bad), &[]);
    assert_eq!(
        stderr,
        format!(
            "Error: the encryption configuration {} is invalid: resources[0].providers[0].aesgcm.keys[0].secret: Invalid value: \"REDACTED\": secrets must be base64 encoded\n",
            bad.display()
        )
    );
    let short = config(&server, "short.yaml", &aesgcm(&[("k1", "c2hvcnQ=")]));
    let stderr = start_fails(&server, &flag(&short), &[]);
    assert!(
        stderr.ends_with(": resources[0].providers[0].aesgcm.keys[0].secret: Invalid value: \"REDACTED\": secret is not of the expected length, got 5, expected one of [16, 24, 32]\n"),
        "{stderr}"
    );
    let unknown = config(&server, "unknown.yaml", "  - aesgcmx: {}\n");
    let stderr = start_fails(&server, &flag(&unknown), &[]);
    assert!(stderr.contains("unknown field `aesgcmx`"), "{stderr}");

    // reencrypt checks the same way, before it opens the store or writes anything.
    let before = raw_values(&sqlite(&server));
    let reencrypt = |file: &Path| {
        kargo(
            &[
                "server".into(),
                "reencrypt".into(),
                "--data-dir".into(),
                server.data_dir().to_string_lossy().into_owned(),
            ],
            &[("KARGO_ENCRYPTION_CONFIG", file)],
        )
    };
    assert_eq!(
        reencrypt(&missing).err(),
        format!(
            "Error: reading the encryption configuration {}: No such file or directory (os error 2)\n",
            missing.display()
        )
    );
    assert!(
        reencrypt(&other_bytes)
            .err()
            .contains(" does not decrypt with aesgcm key \"k1\""),
    );
    assert_eq!(raw_values(&sqlite(&server)), before);

    // None of those starts changed anything: the right file still serves every token.
    server.restart_with(&flag(&right));
    assert_works(&server, &token, "bot");
}

#[test]
fn on_etcd_the_raw_values_hold_no_token_and_no_key_bytes_and_keys_rotate() {
    let cluster = EtcdCluster::start(1);
    let prefix = "/kargo-encryption-test";
    let mut store_args = Server::etcd_args(&cluster);
    store_args.extend(["--etcd-prefix".to_owned(), prefix.to_owned()]);
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, providers: &str| {
        let path = dir.path().join(name);
        std::fs::write(
            &path,
            format!(
                "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets, configmaps]\n  providers:\n{providers}"
            ),
        )
        .expect("write");
        path
    };
    let secretbox = write(
        "secretbox.yaml",
        &format!("  - secretbox:\n      keys:\n      - name: sb1\n        secret: {K1}\n"),
    );
    let rotated = write(
        "rotated.yaml",
        &format!(
            "  - aescbc:\n      keys:\n      - name: cbc2\n        secret: {K2}\n  - secretbox:\n      keys:\n      - name: sb1\n        secret: {K1}\n"
        ),
    );
    let only_cbc = write(
        "cbc.yaml",
        &format!("  - aescbc:\n      keys:\n      - name: cbc2\n        secret: {K2}\n"),
    );

    let mut args = store_args.clone();
    args.extend(flag(&secretbox));
    let mut server = Server::start_with(&args);
    let token = new_token(&server, "bot");
    server
        .kubectl(&[
            "create",
            "configmap",
            "c",
            "-n",
            "p",
            "--from-literal=colour=ultramarine",
        ])
        .ok();
    assert_works(&server, &token, "bot");

    let raw = || -> Arc<dyn Store> {
        runtime().block_on(async {
            Arc::new(
                kargo_store::etcd::EtcdStore::connect(cluster.options().with_prefix(prefix))
                    .await
                    .expect("connect to etcd"),
            ) as Arc<dyn Store>
        })
    };
    let kvs = raw_values(&raw());
    assert_encrypted_with(&kvs, "k8s:enc:secretbox:v1:sb1:");
    let values: Vec<(String, Vec<u8>)> = kvs
        .iter()
        .map(|kv| (kv.key.clone(), kv.value.clone()))
        .collect();
    let mut needles = token_needles(&token);
    needles.extend(key_needles(raw(), &secretbox));
    needles.push(("ConfigMap data".into(), b"ultramarine".to_vec()));
    assert_eq!(found(&values, &needles), vec![]);

    // Rotation on etcd: promote a new aescbc key, re-encrypt while serving, drop secretbox.
    let mut args = store_args.clone();
    args.extend(flag(&rotated));
    server.restart_with(&args);
    let mut reencrypt: Vec<String> = vec!["server".into(), "reencrypt".into()];
    reencrypt.extend(store_args.iter().cloned());
    reencrypt.extend(flag(&rotated));
    let out = kargo(&reencrypt, &[]);
    assert!(out.ok().starts_with("rewrote "), "{}", out.stdout);
    assert_encrypted_with(&raw_values(&raw()), "k8s:enc:aescbc:v1:cbc2:");
    let mut args = store_args.clone();
    args.extend(flag(&only_cbc));
    server.restart_with(&args);
    assert_works(&server, &token, "bot");
    assert_eq!(
        server
            .kubectl(&[
                "get",
                "configmap",
                "c",
                "-n",
                "p",
                "-o",
                "jsonpath={.data.colour}"
            ])
            .ok(),
        "ultramarine"
    );
}

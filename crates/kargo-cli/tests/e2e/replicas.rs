//! Several `kargo server` replicas on one etcd cluster (three members on loopback) behave as one
//! server: one CA, one admin, tokens that work on every replica and stop working on every replica
//! as soon as they are deleted; a dying etcd member or replica fails no request and loses no
//! write; restarting everything keeps everything. Also: `kargo server migrate` from SQLite.
//!
//! The revocation test prints the distribution of "deleted on A → refused by B" over its trials:
//! `cargo test -p kargo-cli --test e2e replicas::a_token -- --nocapture`.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use kargo_store::testing::EtcdCluster;
use serde_json::{Value, json};

use crate::harness::{ADMIN_PASSWORD, Server};

/// How many create-use-delete rounds the revocation test measures.
const TRIALS: usize = 100;

/// A bearer-token HTTPS client for one server.
#[derive(Clone)]
struct Api {
    client: reqwest::Client,
    url: String,
}

impl Api {
    fn new(server: &Server) -> Api {
        let ca = std::fs::read(server.ca()).expect("ca.crt");
        let client = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("a PEM CA"))
            .timeout(Duration::from_secs(60))
            .build()
            .expect("an HTTPS client");
        Api {
            client,
            url: server.url.clone(),
        }
    }

    /// `(status, body)`; a transport failure is status 0.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(body);
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let body = response.json().await.unwrap_or(Value::Null);
                (status, body)
            }
            Err(e) => (0, Value::String(e.to_string())),
        }
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, token, Some(&body))
            .await
    }

    async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, token, None).await
    }

    async fn delete(&self, path: &str, token: &str) -> (u16, Value) {
        self.send(reqwest::Method::DELETE, path, token, None).await
    }

    /// Who the server takes the token for: `(status, username)`.
    async fn whoami(&self, token: &str) -> (u16, String) {
        let (status, body) = self
            .post(
                "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                token,
                json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}),
            )
            .await;
        let user = body
            .pointer("/status/userInfo/username")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        (status, user)
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

/// Polls `check` every 2 ms until it returns `Some`, failing after `limit`.
async fn poll<T, F: std::future::Future<Output = Option<T>>>(
    limit: Duration,
    what: &str,
    mut check: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Creates a service-account token Secret through `api` and waits for its token.
async fn new_token(api: &Api, admin: &str, namespace: &str, account: &str, name: &str) -> String {
    let (status, body) = api
        .post(
            &format!("/api/v1/namespaces/{namespace}/secrets"),
            admin,
            json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "name": name,
                    "annotations": {"kubernetes.io/service-account.name": account},
                },
                "type": "kubernetes.io/service-account-token",
            }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let path = format!("/api/v1/namespaces/{namespace}/secrets/{name}");
    poll(Duration::from_secs(10), "the token controller", || async {
        let (_, secret) = api.get(&path, admin).await;
        let token = secret.pointer("/data/token")?.as_str()?;
        let token = STANDARD.decode(token).ok()?;
        String::from_utf8(token).ok()
    })
    .await
}

/// p-th percentile (nearest rank) of sorted durations.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[test]
fn a_token_created_on_one_replica_works_on_the_other_and_is_refused_there_within_100ms_of_its_deletion()
 {
    let cluster = EtcdCluster::start(3);
    let args = Server::etcd_args(&cluster);
    let a = Server::start_with(&args);
    let b = Server::start_with(&args);
    // One CA: a client that trusts one replica trusts both.
    assert_eq!(
        std::fs::read(a.ca()).expect("a's CA"),
        std::fs::read(b.ca()).expect("b's CA")
    );
    let admin = a.admin_token();
    let (api_a, api_b) = (Api::new(&a), Api::new(&b));
    let latencies = runtime().block_on(async {
        // The admin token from A's login works on B: one admin secret.
        assert_eq!(api_b.whoami(&admin).await, (201, "admin".to_owned()));
        let (status, body) = api_a
            .post(
                "/api/v1/namespaces",
                &admin,
                json!({"metadata": {"name": "p"}}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let (status, body) = api_a
            .post(
                "/api/v1/namespaces/p/serviceaccounts",
                &admin,
                json!({"metadata": {"name": "bot"}}),
            )
            .await;
        assert_eq!(status, 201, "{body}");

        let mut latencies = Vec::with_capacity(TRIALS);
        for trial in 0..TRIALS {
            let name = format!("token-{trial}");
            let token = new_token(&api_a, &admin, "p", "bot", &name).await;
            // Created through A, it works on B (once B's watch has brought it, a few ms).
            let user = poll(Duration::from_secs(5), "the token working on B", || async {
                match api_b.whoami(&token).await {
                    (201, user) => Some(user),
                    _ => None,
                }
            })
            .await;
            assert_eq!(user, "system:serviceaccount:p:bot");

            let (status, body) = api_a
                .delete(&format!("/api/v1/namespaces/p/secrets/{name}"), &admin)
                .await;
            assert_eq!(status, 200, "{body}");
            let deleted = Instant::now();
            // Refused: 401, or 429 once this loop's own probes of deleted tokens (more than
            // 100 failures from one address) have the address told to back off.
            poll(Duration::from_secs(5), "B refusing the token", || async {
                matches!(api_b.whoami(&token).await.0, 401 | 429).then_some(())
            })
            .await;
            latencies.push(deleted.elapsed());
        }
        latencies
    });
    let mut sorted = latencies.clone();
    sorted.sort();
    eprintln!(
        "revocation on the other replica over {TRIALS} trials: min {:?}, p50 {:?}, p90 {:?}, p99 {:?}, max {:?}",
        sorted[0],
        percentile(&sorted, 50.0),
        percentile(&sorted, 90.0),
        percentile(&sorted, 99.0),
        sorted[sorted.len() - 1]
    );
    assert!(
        sorted[sorted.len() - 1] < Duration::from_millis(100),
        "a deleted token worked on the other replica for {:?}",
        sorted[sorted.len() - 1]
    );
}

/// Writers that create ConfigMaps through both replicas until told to stop: the names of every
/// acknowledged create, and every failed request.
async fn steady_writes(
    apis: Vec<Api>,
    admin: String,
    stop: Arc<AtomicBool>,
) -> (BTreeSet<String>, Vec<String>) {
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (apis, admin, stop) = (apis.clone(), admin.clone(), stop.clone());
            tokio::spawn(async move {
                let (mut acked, mut failed) = (Vec::new(), Vec::new());
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    let name = format!("cm-{w}-{n}");
                    let api = &apis[n % apis.len()];
                    let started = Instant::now();
                    let (status, body) = api
                        .post(
                            "/api/v1/namespaces/w/configmaps",
                            &admin,
                            json!({"metadata": {"name": name}, "data": {"n": n.to_string()}}),
                        )
                        .await;
                    if status == 201 {
                        acked.push(name);
                    } else {
                        failed.push(format!(
                            "{name} via {}: {status} after {:?}: {body}",
                            api.url,
                            started.elapsed()
                        ));
                    }
                    n += 1;
                }
                (acked, failed)
            })
        })
        .collect();
    let (mut acked, mut failed) = (BTreeSet::new(), Vec::new());
    for writer in writers {
        let (a, f) = writer.await.expect("a writer");
        acked.extend(a);
        failed.extend(f);
    }
    (acked, failed)
}

/// The names of the ConfigMaps in namespace `w`, read through `api`.
async fn config_maps(api: &Api, admin: &str) -> BTreeSet<String> {
    let (status, body) = api.get("/api/v1/namespaces/w/configmaps", admin).await;
    assert_eq!(status, 200, "{body}");
    body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|item| item.pointer("/metadata/name")?.as_str().map(str::to_owned))
        .collect()
}

#[test]
fn replicas_lose_nothing_when_an_etcd_member_or_a_replica_dies_and_keep_everything_across_a_full_restart()
 {
    let mut cluster = EtcdCluster::start(3);
    let args = Server::etcd_args(&cluster);
    let mut a = Server::start_with(&args);
    let mut b = Server::start_with(&args);
    let ca = std::fs::read(a.ca()).expect("ca.crt");
    let admin = a.admin_token();
    let rt = runtime();
    let (api_a, api_b) = (Api::new(&a), Api::new(&b));

    // SIGKILL the member both replicas prefer in the middle of a steady stream of writes.
    let token = rt.block_on(async {
        for (path, body) in [
            ("/api/v1/namespaces", json!({"metadata": {"name": "w"}})),
            (
                "/api/v1/namespaces/w/serviceaccounts",
                json!({"metadata": {"name": "bot"}}),
            ),
        ] {
            let (status, body) = api_a.post(path, &admin, body).await;
            assert_eq!(status, 201, "{body}");
        }
        new_token(&api_a, &admin, "w", "bot", "bot-token").await
    });
    let stop = Arc::new(AtomicBool::new(false));
    let writes = rt.spawn(steady_writes(
        vec![api_a.clone(), api_b.clone()],
        admin.clone(),
        stop.clone(),
    ));
    std::thread::sleep(Duration::from_secs(1));
    cluster.kill(0);
    std::thread::sleep(Duration::from_secs(4));
    stop.store(true, Ordering::SeqCst);
    let (acked, failed) = rt.block_on(writes).expect("the writers");
    assert_eq!(failed, Vec::<String>::new(), "requests failed");
    assert!(acked.len() > 40, "only {} writes", acked.len());
    eprintln!(
        "{} ConfigMaps created through two replicas while an etcd member was killed; none failed",
        acked.len()
    );
    rt.block_on(async {
        assert_eq!(config_maps(&api_a, &admin).await, acked);
        assert_eq!(config_maps(&api_b, &admin).await, acked);
    });

    // A replica dies: the other one keeps serving, tokens included.
    a.kill();
    rt.block_on(async {
        let (status, body) = api_b
            .post(
                "/api/v1/namespaces/w/configmaps",
                &admin,
                json!({"metadata": {"name": "after-a-died"}}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(
            api_b.whoami(&token).await,
            (201, "system:serviceaccount:w:bot".to_owned())
        );
    });

    // Everything stops (the killed member comes back too), everything starts again.
    b.kill();
    cluster.restart_all();
    a.restart_with(&args);
    b.restart_with(&args);
    assert_eq!(std::fs::read(a.ca()).expect("ca.crt"), ca);
    assert_eq!(std::fs::read(b.ca()).expect("ca.crt"), ca);
    let (api_a, api_b) = (Api::new(&a), Api::new(&b));
    rt.block_on(async {
        let mut expected = acked.clone();
        expected.insert("after-a-died".to_owned());
        assert_eq!(config_maps(&api_a, &admin).await, expected);
        assert_eq!(config_maps(&api_b, &admin).await, expected);
        // Signing keys and the admin secret survived: old tokens still work on both.
        for api in [&api_a, &api_b] {
            assert_eq!(
                api.whoami(&token).await,
                (201, "system:serviceaccount:w:bot".to_owned())
            );
            assert_eq!(api.whoami(&admin).await, (201, "admin".to_owned()));
        }
    });
}

#[test]
fn a_sqlite_server_migrated_to_etcd_keeps_its_objects_ca_admin_and_tokens() {
    let cluster = EtcdCluster::start(1);
    let mut server = Server::start();
    let admin = server.admin_token();
    let rt = runtime();
    let api = Api::new(&server);
    let token = rt.block_on(async {
        for (path, body) in [
            ("/api/v1/namespaces", json!({"metadata": {"name": "m"}})),
            (
                "/api/v1/namespaces/m/serviceaccounts",
                json!({"metadata": {"name": "bot"}}),
            ),
        ] {
            let (status, body) = api.post(path, &admin, body).await;
            assert_eq!(status, 201, "{body}");
        }
        new_token(&api, &admin, "m", "bot", "bot-token").await
    });
    let ca = std::fs::read(server.ca()).expect("ca.crt");
    server.stop_for_maintenance();

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kargo"))
        .args(["server", "migrate", "--data-dir"])
        .arg(server.data_dir())
        .args(["--etcd-endpoints", &cluster.endpoints().join(",")])
        .args(crate::harness::etcd_tls_args(&cluster))
        .env("KARGO_LOG", "warn")
        .output()
        .expect("kargo server migrate runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "migrate failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("copied ") && stdout.contains(" keys from "),
        "{stdout}"
    );
    // Migrating again is refused: the target is no longer empty.
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_kargo"))
        .args(["server", "migrate", "--data-dir"])
        .arg(server.data_dir())
        .args(["--etcd-endpoints", &cluster.endpoints().join(",")])
        .args(crate::harness::etcd_tls_args(&cluster))
        .env("KARGO_LOG", "warn")
        .output()
        .expect("kargo server migrate runs");
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).starts_with("Error: the target store is not empty"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    // A fresh data directory: everything the server needs comes from etcd.
    let etcd = Server::start_with(&Server::etcd_args(&cluster));
    assert_eq!(std::fs::read(etcd.ca()).expect("ca.crt"), ca);
    let api = Api::new(&etcd);
    rt.block_on(async {
        assert_eq!(api.whoami(&admin).await, (201, "admin".to_owned()));
        assert_eq!(
            api.whoami(&token).await,
            (201, "system:serviceaccount:m:bot".to_owned())
        );
        let (status, body) = api
            .get("/api/v1/namespaces/m/serviceaccounts/bot", &admin)
            .await;
        assert_eq!((status, &body["metadata"]["name"]), (200, &json!("bot")));
    });
    // The password still logs in.
    let login = etcd.curl(
        "POST",
        "/v1beta1/login",
        None,
        &[&format!("Authorization: Bearer {ADMIN_PASSWORD}")],
        None,
    );
    assert_eq!(login.0, 200, "{}", login.1);
}

#[test]
fn an_admin_logout_or_a_new_admin_password_on_one_replica_ends_the_sessions_on_the_other() {
    let cluster = EtcdCluster::start(1);
    let args = Server::etcd_args(&cluster);
    let mut a = Server::start_with(&args);
    let b = Server::start_with(&args);
    let (one, two) = (a.admin_token(), b.admin_token());
    let rt = runtime();
    let (api_a, api_b) = (Api::new(&a), Api::new(&b));
    let admin = (201, "admin".to_owned());
    rt.block_on(async {
        assert_eq!(api_b.whoami(&one).await, admin);
        let (status, body) = api_a
            .send(reqwest::Method::POST, "/v1beta1/logout", &one, None)
            .await;
        assert_eq!(status, 204, "{body}");
        // A answers once it refuses the token itself; B follows through the watch.
        assert_eq!(api_a.whoami(&one).await.0, 401);
        poll(
            Duration::from_secs(2),
            "B refusing the logged-out token",
            || async { (api_b.whoami(&one).await.0 == 401).then_some(()) },
        )
        .await;
        assert_eq!(api_b.whoami(&two).await, admin);
        assert_eq!(api_a.whoami(&two).await, admin);
    });

    // A restarts with a new password: B, still running, refuses every earlier admin token.
    let new_password = "a new password for both replicas";
    a.restart_with_password(new_password, &args);
    rt.block_on(async {
        poll(
            Duration::from_secs(2),
            "B refusing the admin tokens from before the new password",
            || async { (api_b.whoami(&two).await.0 == 401).then_some(()) },
        )
        .await;
    });
    for server in [&a, &b] {
        assert_eq!(
            server.login(ADMIN_PASSWORD),
            (403, r#"{"error":"invalid password"}"#.to_owned())
        );
        let new = server.login(new_password);
        assert_eq!(new.0, 200, "{}", new.1);
    }
}

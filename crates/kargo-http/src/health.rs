//! `/livez`, `/readyz` and `/healthz`, as kube-apiserver serves them
//! (`k8s.io/apiserver/pkg/server/healthz`): `ok`, or with `?verbose` one line per check
//! (`[+]etcd ok`, `[-]etcd failed: reason withheld`) and `readyz check passed`; any failed check
//! makes the answer a 500 that always lists the checks and ends `readyz check failed`.
//! `?exclude=NAME` skips a check (`[+]NAME excluded: ok`), and `/readyz/NAME` runs one (`ok`, or
//! a 500 `internal server error: REASON`).
//!
//! The checks:
//! - `ping`: the server answers (livez, readyz);
//! - `etcd` on etcd, `store` on SQLite: a read of `/registry/health` (kube-apiserver's key)
//!   within [`STORE_TIMEOUT`] (livez, readyz, as kube-apiserver's `etcd` check);
//! - `informer-sync`: the informer has listed the store and is watching it, so the auth view,
//!   the read cache and the controllers are current (readyz);
//! - `keys`: the token-signing key set is loaded (readyz);
//! - `oidc`, when single sign-on is configured: the OpenID provider's keys are known. Listed but
//!   never failing readiness (its line says so): every other credential works meanwhile, and
//!   taking every replica out of a load balancer because the provider is down would lock
//!   everybody out, the admin included (readyz);
//! - `federated-issuers`, when CI issuers are allowed (`--federated-issuer`): every allowed
//!   issuer's keys are known. Listed but never failing readiness, as `oidc` (readyz);
//! - `shutdown`: fails once the server is stopping (SIGTERM; with `--shutdown-delay-duration` the
//!   server keeps serving that long meanwhile), so that load balancers stop sending it new
//!   requests (readyz).
//!
//! These paths are unauthenticated and outside every request limit (as kube-apiserver lets
//! `system:public-info-viewer` read them), so they must stay cheap however often they are asked:
//! the store is read at most once per [`STORE_INTERVAL`] whatever the number of callers, who
//! share the last answer ([`Probe`]); the other checks read memory. Reasons are withheld from the
//! listing, as kube-apiserver does; `/readyz/NAME` gives a short fixed reason that names no
//! address, and the store's own error goes to the log when the check starts failing.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, Uri};
use kargo_registry::informer::Watching;
use kargo_store::Store;
use tokio_util::sync::CancellationToken;

use crate::AppState;

/// How long the store check waits for the store (kube-apiserver's `--etcd-healthcheck-timeout`
/// default).
pub const STORE_TIMEOUT: Duration = Duration::from_secs(2);

/// The store is read at most once per this interval (kube-apiserver: half the timeout).
pub const STORE_INTERVAL: Duration = Duration::from_secs(1);

/// The key the store check reads (kube-apiserver's).
const HEALTH_KEY: &str = "/registry/health";

/// What the health checks read that the rest of the [`crate::App`] does not hold.
pub struct Health {
    store: Probe,
    store_check: &'static str,
    informer: Watching,
    draining: CancellationToken,
}

impl Health {
    /// Checks of `store`, whose check is named `store_check` (`etcd` or `store`), of the
    /// informer reporting to `informer`, and of shutdown: `draining` is cancelled when it
    /// begins (before the server stops serving, with `--shutdown-delay-duration`).
    pub fn new(
        store: Arc<dyn Store>,
        store_check: &'static str,
        informer: Watching,
        draining: CancellationToken,
    ) -> Health {
        Health {
            store: Probe::new(
                store_check,
                STORE_INTERVAL,
                STORE_TIMEOUT,
                Arc::new(move || {
                    let store = store.clone();
                    Box::pin(async move {
                        store
                            .get(HEALTH_KEY)
                            .await
                            .map(|_| ())
                            .map_err(|e| e.to_string())
                    })
                }),
            ),
            store_check,
            informer,
            draining,
        }
    }

    /// How many times the store has been read for the checks (tests observe the bound).
    pub fn store_reads(&self) -> u64 {
        self.store.runs()
    }
}

/// One endpoint: `/livez`, `/readyz` or `/healthz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Livez,
    Readyz,
    Healthz,
}

impl Endpoint {
    fn name(self) -> &'static str {
        match self {
            Endpoint::Livez => "livez",
            Endpoint::Readyz => "readyz",
            Endpoint::Healthz => "healthz",
        }
    }

    /// Its checks, in the order they are listed. `/healthz` (deprecated in Kubernetes) checks
    /// what `/livez` does.
    fn checks(self) -> &'static [Check] {
        match self {
            Endpoint::Livez | Endpoint::Healthz => &[Check::Ping, Check::Store],
            Endpoint::Readyz => &[
                Check::Ping,
                Check::Store,
                Check::InformerSync,
                Check::Keys,
                Check::Oidc,
                Check::FederatedIssuers,
                Check::Shutdown,
            ],
        }
    }
}

/// One check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    Ping,
    Store,
    InformerSync,
    Keys,
    Oidc,
    FederatedIssuers,
    Shutdown,
}

/// A failed check's reason: short, fixed, and safe to show anyone.
type Reason = &'static str;

impl Check {
    fn name(self, app: &crate::App) -> &'static str {
        match self {
            Check::Ping => "ping",
            Check::Store => app.health.store_check,
            Check::InformerSync => "informer-sync",
            Check::Keys => "keys",
            Check::Oidc => "oidc",
            Check::FederatedIssuers => "federated-issuers",
            Check::Shutdown => "shutdown",
        }
    }

    /// Whether the server has this check (`oidc` only with single sign-on,
    /// `federated-issuers` only with allowed CI issuers).
    fn present(self, app: &crate::App) -> bool {
        match self {
            Check::Oidc => app.authn.oidc().is_some(),
            Check::FederatedIssuers => app.authn.federation().is_some(),
            _ => true,
        }
    }

    /// Listed, but its failure does not fail the endpoint.
    fn informational(self) -> bool {
        matches!(self, Check::Oidc | Check::FederatedIssuers)
    }

    async fn run(self, app: &crate::App) -> Result<(), Reason> {
        match self {
            Check::Ping => Ok(()),
            Check::Store => app.health.store.check().await,
            Check::InformerSync if app.health.informer.get() => Ok(()),
            Check::InformerSync => Err("the informer is not watching the store"),
            Check::Keys => {
                let keys = app.authz.view().keys();
                match keys.get(&keys.signing().kid) {
                    Some(_) => Ok(()),
                    None => Err("the signing key is not among the verification keys"),
                }
            }
            Check::Oidc => match app.authn.oidc().map(|o| o.readiness()) {
                Some(Err(_)) => Err("the OpenID provider's keys are not known"),
                _ => Ok(()),
            },
            Check::FederatedIssuers => match app.authn.federation().map(|f| f.readiness()) {
                Some(Err(_)) => Err("the keys of an allowed CI issuer are not known"),
                _ => Ok(()),
            },
            Check::Shutdown
                if app.health.draining.is_cancelled() || app.shutdown.is_cancelled() =>
            {
                Err("the server is shutting down")
            }
            Check::Shutdown => Ok(()),
        }
    }
}

/// `GET /livez`.
pub(crate) async fn livez(State(app): State<AppState>, uri: Uri) -> Response {
    all(&app, Endpoint::Livez, &uri).await
}

/// `GET /readyz`.
pub(crate) async fn readyz(State(app): State<AppState>, uri: Uri) -> Response {
    all(&app, Endpoint::Readyz, &uri).await
}

/// `GET /healthz`.
pub(crate) async fn healthz(State(app): State<AppState>, uri: Uri) -> Response {
    all(&app, Endpoint::Healthz, &uri).await
}

/// `GET /livez/NAME`.
pub(crate) async fn livez_one(State(app): State<AppState>, Path(name): Path<String>) -> Response {
    one(&app, Endpoint::Livez, &name).await
}

/// `GET /readyz/NAME`.
pub(crate) async fn readyz_one(State(app): State<AppState>, Path(name): Path<String>) -> Response {
    one(&app, Endpoint::Readyz, &name).await
}

/// `GET /healthz/NAME`.
pub(crate) async fn healthz_one(State(app): State<AppState>, Path(name): Path<String>) -> Response {
    one(&app, Endpoint::Healthz, &name).await
}

/// Whether a path is a health endpoint or one of its checks.
pub(crate) fn is_health_path(path: &str) -> bool {
    ["/healthz", "/livez", "/readyz"].iter().any(|root| {
        path.strip_prefix(root)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

/// Every check of `endpoint`, as kube-apiserver's `handleRootHealth`.
async fn all(app: &crate::App, endpoint: Endpoint, uri: &Uri) -> Response {
    let mut verbose = false;
    let mut excluded: Vec<String> = Vec::new();
    for (key, value) in form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
        match &*key {
            "verbose" => verbose = true,
            "exclude" => excluded.push(value.into_owned()),
            _ => {}
        }
    }
    let mut listing = String::new();
    let mut failed = false;
    for &check in endpoint.checks() {
        if !check.present(app) {
            continue;
        }
        let name = check.name(app);
        if let Some(at) = excluded.iter().position(|e| e == name) {
            excluded.swap_remove(at);
            listing.push_str(&format!("[+]{name} excluded: ok\n"));
            continue;
        }
        match check.run(app).await {
            Ok(()) => listing.push_str(&format!("[+]{name} ok\n")),
            Err(_) if check.informational() => listing.push_str(&format!(
                "[-]{name} failed: reason withheld (not counted: readiness does not depend on it)\n"
            )),
            Err(_) => {
                failed = true;
                listing.push_str(&format!("[-]{name} failed: reason withheld\n"));
            }
        }
    }
    if !excluded.is_empty() {
        excluded.sort_unstable();
        excluded.dedup();
        let names: Vec<String> = excluded.iter().map(|e| format!("{e:?}")).collect();
        listing.push_str(&format!(
            "warn: some health checks cannot be excluded: no matches for {}\n",
            names.join(",")
        ));
    }
    let name = endpoint.name();
    if failed {
        // kube-apiserver: `http.Error`, which ends the text with a newline.
        let text = format!("{listing}{name} check failed\n");
        return text_response(StatusCode::INTERNAL_SERVER_ERROR, text);
    }
    if !verbose {
        return text_response(StatusCode::OK, "ok".to_owned());
    }
    text_response(StatusCode::OK, format!("{listing}{name} check passed\n"))
}

/// One check of `endpoint` by name: `ok`, or a 500 with its reason; a 404 for no such check.
async fn one(app: &crate::App, endpoint: Endpoint, name: &str) -> Response {
    let check = endpoint
        .checks()
        .iter()
        .find(|c| c.present(app) && c.name(app) == name);
    let Some(check) = check else {
        return crate::StatusResponse::into_response(kargo_registry::status::Status::no_route());
    };
    match check.run(app).await {
        Ok(()) => text_response(StatusCode::OK, "ok".to_owned()),
        Err(reason) => text_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("internal server error: {reason}\n"),
        ),
    }
}

/// Plain text as kube-apiserver sends it (`nosniff`: it is not HTML, whatever it looks like).
fn text_response(code: StatusCode, text: String) -> Response {
    let mut response = (code, text).into_response();
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// A check that asks something outside the process (the store), shared by every caller: it
/// runs at most once per interval, each run bounded by a timeout; callers in between get the
/// last outcome at once, from two atomic loads (`/healthz` is the cheapest request there is).
/// A run is its own task, so a caller that goes away does not cancel it. Only the caller that
/// starts a run, and callers before any run has finished, wait (at most twice the timeout).
pub(crate) struct Probe(Arc<ProbeInner>);

type ProbeFn =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

/// [`ProbeInner::outcome`]: no run has finished yet.
const NOT_YET: u8 = 0;
/// The last run succeeded.
const PASSED: u8 = 1;
/// The last run's read failed.
const FAILED: u8 = 2;
/// The last run got no answer in time.
const TIMED_OUT: u8 = 3;

struct ProbeInner {
    name: &'static str,
    interval: Duration,
    timeout: Duration,
    run: ProbeFn,
    /// The clock's origin.
    base: Instant,
    /// When the last run started, in milliseconds after `base`, plus one; 0: never.
    started: AtomicU64,
    running: AtomicBool,
    runs: AtomicU64,
    /// The last outcome: [`NOT_YET`], [`PASSED`], [`FAILED`] or [`TIMED_OUT`].
    outcome: AtomicU8,
    /// Bumped when a run finishes, to wake the callers waiting for it.
    finished: tokio::sync::watch::Sender<u64>,
}

impl Probe {
    fn new(name: &'static str, interval: Duration, timeout: Duration, run: ProbeFn) -> Probe {
        Probe(Arc::new(ProbeInner {
            name,
            interval,
            timeout,
            run,
            base: Instant::now(),
            started: AtomicU64::new(0),
            running: AtomicBool::new(false),
            runs: AtomicU64::new(0),
            outcome: AtomicU8::new(NOT_YET),
            finished: tokio::sync::watch::channel(0).0,
        }))
    }

    /// How many runs have started.
    fn runs(&self) -> u64 {
        self.0.runs.load(Ordering::Relaxed)
    }

    /// The outcome: the last one if a run started less than an interval ago or is running,
    /// else that of a new run.
    async fn check(&self) -> Result<(), Reason> {
        let inner = &self.0;
        let now = u64::try_from(inner.base.elapsed().as_millis()).unwrap_or(u64::MAX - 1) + 1;
        let started = inner.started.load(Ordering::Acquire);
        let interval = u64::try_from(inner.interval.as_millis()).unwrap_or(u64::MAX);
        let fresh = started != 0 && now.saturating_sub(started) < interval;
        if !fresh
            && inner
                .running
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            inner.started.store(now, Ordering::Release);
            inner.runs.fetch_add(1, Ordering::Relaxed);
            // Subscribed before the run starts, so its end cannot be missed.
            let mut finished = inner.finished.subscribe();
            tokio::spawn(ProbeInner::run_once(self.0.clone()));
            let _ = tokio::time::timeout(inner.timeout * 2, finished.changed()).await;
        } else if inner.outcome.load(Ordering::Acquire) == NOT_YET {
            let mut finished = inner.finished.subscribe();
            let _ = tokio::time::timeout(
                inner.timeout * 2,
                finished.wait_for(|_| inner.outcome.load(Ordering::Acquire) != NOT_YET),
            )
            .await;
        }
        match inner.outcome.load(Ordering::Acquire) {
            PASSED => Ok(()),
            FAILED => Err("the store failed a read"),
            TIMED_OUT => Err("the store did not answer in time"),
            _ => Err("not checked yet"),
        }
    }
}

impl ProbeInner {
    async fn run_once(self: Arc<ProbeInner>) {
        let (outcome, error) = match tokio::time::timeout(self.timeout, (self.run)()).await {
            Ok(Ok(())) => (PASSED, None),
            Ok(Err(error)) => (FAILED, Some(error)),
            Err(_) => (
                TIMED_OUT,
                Some(format!("no answer within {:?}", self.timeout)),
            ),
        };
        let before = self.outcome.swap(outcome, Ordering::AcqRel);
        match (error, before) {
            (Some(error), PASSED | NOT_YET) => {
                tracing::warn!(check = self.name, %error, "health check failing");
            }
            (None, FAILED | TIMED_OUT) => {
                tracing::info!(check = self.name, "health check passing again");
            }
            _ => {}
        }
        self.running.store(false, Ordering::Release);
        self.finished.send_modify(|n| *n += 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn counting(calls: Arc<AtomicUsize>, answer: Arc<AtomicBool>, delay: Duration) -> ProbeFn {
        Arc::new(move || {
            let (calls, answer) = (calls.clone(), answer.clone());
            Box::pin(async move {
                calls.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(delay).await;
                match answer.load(Ordering::SeqCst) {
                    true => Ok(()),
                    false => Err("down".to_owned()),
                }
            })
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_flood_of_checks_reads_the_store_once_per_interval_and_all_get_the_answer() {
        let calls = Arc::new(AtomicUsize::new(0));
        let up = Arc::new(AtomicBool::new(true));
        let probe = Arc::new(Probe::new(
            "store",
            STORE_INTERVAL,
            STORE_TIMEOUT,
            counting(calls.clone(), up.clone(), Duration::from_millis(50)),
        ));
        // 1,000 callers every 10 ms for 5 s: 500,000 checks.
        let mut outcomes = Vec::new();
        for _ in 0..500 {
            let tasks: Vec<_> = (0..1000)
                .map(|_| {
                    let probe = probe.clone();
                    tokio::spawn(async move { probe.check().await })
                })
                .collect();
            for task in tasks {
                outcomes.push(task.await.unwrap_or(Err("panicked")));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(outcomes.iter().all(Result::is_ok));
        let reads = calls.load(Ordering::SeqCst);
        assert!((5..=7).contains(&reads), "{reads} reads in about 5 s");
        assert_eq!(probe.runs(), reads as u64);
    }

    #[tokio::test(start_paused = true)]
    async fn a_store_that_fails_or_hangs_fails_the_check_within_the_timeout_and_recovers() {
        let calls = Arc::new(AtomicUsize::new(0));
        let up = Arc::new(AtomicBool::new(false));
        let probe = Probe::new(
            "etcd",
            STORE_INTERVAL,
            STORE_TIMEOUT,
            counting(calls.clone(), up.clone(), Duration::from_millis(5)),
        );
        assert_eq!(probe.check().await, Err("the store failed a read"));
        // Within the interval: the last outcome, without a read.
        up.store(true, Ordering::SeqCst);
        assert_eq!(probe.check().await, Err("the store failed a read"));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        tokio::time::sleep(STORE_INTERVAL).await;
        assert_eq!(probe.check().await, Ok(()));

        let hanging = Probe::new(
            "etcd",
            STORE_INTERVAL,
            STORE_TIMEOUT,
            counting(calls, up, Duration::from_secs(3600)),
        );
        let started = tokio::time::Instant::now();
        assert_eq!(
            hanging.check().await,
            Err("the store did not answer in time")
        );
        assert_eq!(started.elapsed(), STORE_TIMEOUT);
    }

    #[test]
    fn health_paths_are_the_three_endpoints_and_their_checks() {
        for path in [
            "/livez",
            "/readyz",
            "/healthz",
            "/readyz/etcd",
            "/livez/ping",
        ] {
            assert!(is_health_path(path), "{path}");
        }
        for path in ["/readyzz", "/livez-x", "/version", "/"] {
            assert!(!is_health_path(path), "{path}");
        }
    }
}

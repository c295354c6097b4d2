//! Bounds on what clients can hold, as kube-apiserver (and Go's `http.Server` under it) bounds
//! them: connections, request headers, requests in flight, watches and request time.
//!
//! [`Limits`] is the configuration (every field a `kargo server` flag; `docs/operations.md`,
//! "Limits", says what a client sees past each). The listener (`serve`) enforces the connection
//! bounds; [`RequestLimits`] is the request side, shared by every request: [`InFlight`] is checked
//! once per request in `http::Api::call`, [`WatchSlots`] when a watch starts.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kargo_registry::status::{Details, Status};

/// kube-apiserver's `ReadHeaderTimeout`: a connection's next request header must be complete this
/// long after its first byte (or after the TLS handshake, for the first request).
pub(crate) const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(32);
/// kube-apiserver's `IdleTimeout` (HTTP/1.1 and HTTP/2): a connection with no request in flight
/// and nothing sent is closed after this long.
pub(crate) const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// kube-apiserver's default for HTTP/2 streams per connection (`--http2-max-streams-per-connection`).
pub const DEFAULT_HTTP2_MAX_STREAMS: u32 = 100;
/// The largest request header (request line and every field; HTTP/2: the decoded header list).
/// kube-apiserver takes 1 MiB; real clients send a few KiB (a bearer token is about 1 KiB, an
/// OIDC token with many groups tens of KiB), and every open connection may hold this much, so we
/// bound it lower.
pub(crate) const MAX_HEADER_BYTES: usize = 64 * 1024;
/// kube-apiserver's `--max-requests-inflight`.
pub const DEFAULT_MAX_REQUESTS_INFLIGHT: usize = 400;
/// kube-apiserver's `--max-mutating-requests-inflight`.
pub const DEFAULT_MAX_MUTATING_REQUESTS_INFLIGHT: usize = 200;
/// kube-apiserver's `--request-timeout`.
pub(crate) const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// kube-apiserver's `--min-request-timeout`: a watch without `timeoutSeconds` ends after a random
/// time between this and twice this, so that reconnecting watchers spread out.
pub(crate) const DEFAULT_MIN_REQUEST_TIMEOUT: Duration = Duration::from_secs(1800);
/// Watches open at once. Every watch decodes every committed change of its kind, so this bounds
/// the work one write can cause; kube-apiserver has no such count (its priority-and-fairness
/// queues bound watches indirectly).
pub const DEFAULT_MAX_WATCHES: usize = 4000;
/// Watches one user may have open at once: a controller watches a few kinds, `kubectl get -w`
/// one.
pub const DEFAULT_MAX_WATCHES_PER_USER: usize = 100;
/// Open files kept out of the default connection cap: the store (SQLite's database, WAL and
/// shared-memory files, or etcd's connections), the TLS files read at start, logs.
pub const RESERVED_FILES: u64 = 256;
/// The default connection cap never exceeds this, whatever the open-files limit: an idle TLS
/// connection holds tens of KiB, so this keeps idle connections under about 1 GiB.
pub(crate) const MAX_DEFAULT_CONNECTIONS: usize = 16_384;
/// The message of kube-apiserver's 429 (`filters/maxinflight.go`).
pub(crate) const TOO_MANY_REQUESTS: &str = "Too many requests, please try again later.";
/// Seconds a refused client is told to wait (`Retry-After`), as kube-apiserver says.
pub(crate) const RETRY_AFTER_SECONDS: u32 = 1;

/// Every bound, as `kargo server` flags set them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// `--request-header-timeout`: time to send a complete request header.
    pub header_timeout: Duration,
    /// `--idle-connection-timeout`: time a connection may stay open with nothing in flight.
    pub idle_timeout: Duration,
    /// `--max-connections` (`None`: derived from the open-files limit, see
    /// [`default_max_connections`]).
    pub max_connections: Option<usize>,
    /// `--max-connections-per-client` (`None`: a quarter of the connection cap): connections
    /// from one IPv4 address or IPv6 /64.
    pub max_connections_per_client: Option<usize>,
    /// `--http2-max-streams-per-connection`.
    pub http2_max_streams: u32,
    /// `--max-requests-inflight`: reads (GET) being served at once; 0: no limit.
    pub max_requests_inflight: usize,
    /// `--max-mutating-requests-inflight`: other requests being served at once; 0: no limit.
    pub max_mutating_requests_inflight: usize,
    /// `--request-timeout`: the longest a request other than a watch may take.
    pub request_timeout: Duration,
    /// `--min-request-timeout`: a watch without `timeoutSeconds` ends after between this and
    /// twice this.
    pub min_request_timeout: Duration,
    /// `--max-watches`: watches open at once; 0: no limit.
    pub max_watches: usize,
    /// `--max-watches-per-user`: watches one user may have open at once; 0: no limit.
    pub max_watches_per_user: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: None,
            max_connections_per_client: None,
            http2_max_streams: DEFAULT_HTTP2_MAX_STREAMS,
            max_requests_inflight: DEFAULT_MAX_REQUESTS_INFLIGHT,
            max_mutating_requests_inflight: DEFAULT_MAX_MUTATING_REQUESTS_INFLIGHT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            min_request_timeout: DEFAULT_MIN_REQUEST_TIMEOUT,
            max_watches: DEFAULT_MAX_WATCHES,
            max_watches_per_user: DEFAULT_MAX_WATCHES_PER_USER,
        }
    }
}

/// Raises this process's soft open-files limit to its hard limit (as Go programs, and so
/// kube-apiserver, do at start) and returns the soft limit in force afterwards (`None`:
/// unlimited).
pub fn raise_open_files_limit() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => return limit.maximum,
            Err(e) => {
                tracing::warn!(error = %e, "raising the open-files limit to its hard limit failed");
            }
        }
    }
    limit.current
}

/// The connection cap for an open-files limit: what is left after [`RESERVED_FILES`], at least
/// 16, at most [`MAX_DEFAULT_CONNECTIONS`].
pub fn default_max_connections(open_files: Option<u64>) -> usize {
    let available = open_files.map_or(u64::MAX, |n| n.saturating_sub(RESERVED_FILES));
    usize::try_from(available)
        .unwrap_or(usize::MAX)
        .clamp(16, MAX_DEFAULT_CONNECTIONS)
}

/// The 429 kube-apiserver answers past its in-flight limits, as a `Status` (the shape client-go
/// builds for a 429, so clients read the same message and retry after `retryAfterSeconds`).
pub(crate) fn too_many_requests() -> Status {
    Status::failure(429, "TooManyRequests", TOO_MANY_REQUESTS).with_details(Some(Details {
        retry_after_seconds: Some(RETRY_AFTER_SECONDS),
        ..Details::default()
    }))
}

/// kube-apiserver's 504 for a request that outlived `--request-timeout`.
pub(crate) fn request_timed_out() -> Status {
    Status::timeout("Timeout: request did not complete within the allotted timeout")
        .with_details(Some(Details::default()))
}

/// The request-side bounds every request shares.
#[derive(Debug)]
pub struct RequestLimits {
    /// Requests being served.
    pub(crate) inflight: InFlight,
    /// Watches open.
    pub(crate) watches: Arc<WatchSlots>,
    /// `--request-timeout`.
    pub(crate) request_timeout: Duration,
    /// `--min-request-timeout`.
    pub(crate) min_request_timeout: Duration,
}

impl RequestLimits {
    /// The request-side part of `limits`.
    pub fn new(limits: &Limits) -> RequestLimits {
        RequestLimits {
            inflight: InFlight {
                reads: Counter::new(limits.max_requests_inflight),
                mutating: Counter::new(limits.max_mutating_requests_inflight),
            },
            watches: Arc::new(WatchSlots::new(
                limits.max_watches,
                limits.max_watches_per_user,
            )),
            request_timeout: limits.request_timeout,
            min_request_timeout: limits.min_request_timeout,
        }
    }

    /// How long a watch lasts: `timeoutSeconds` when the client gave one (kube-apiserver honours
    /// any value), else a random time in `[min, 2·min)` of `--min-request-timeout`.
    pub(crate) fn watch_timeout(&self, timeout_seconds: Option<u64>) -> Duration {
        match timeout_seconds {
            Some(t) if t > 0 => Duration::from_secs(t),
            _ => self.min_request_timeout.mul_f64(1.0 + random_fraction()),
        }
    }
}

/// Runs `work` for at most `limit` (`Err(())` past it). Unlike `tokio::time::timeout`, no timer
/// exists until `work` first waits: most requests (a cached GET) finish in their first poll, and
/// the timer would be a measurable part of their cost. A future of its own rather than an
/// `async fn`, which would hold `work` twice (its argument and its pinned local): the answer's
/// future, and every move of it, would be twice as large.
pub(crate) fn within<F: std::future::Future>(limit: Duration, work: F) -> Within<F> {
    Within {
        work,
        limit,
        timer: None,
    }
}

pin_project_lite::pin_project! {
    /// The future of [`within`].
    pub(crate) struct Within<F> {
        #[pin]
        work: F,
        limit: Duration,
        timer: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
    }
}

impl<F: std::future::Future> std::future::Future for Within<F> {
    type Output = Result<F::Output, ()>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let this = self.project();
        if let std::task::Poll::Ready(output) = this.work.poll(cx) {
            return std::task::Poll::Ready(Ok(output));
        }
        let limit = *this.limit;
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        timer.as_mut().poll(cx).map(Err)
    }
}

/// A uniformly random number in `[0, 1)`.
fn random_fraction() -> f64 {
    let mut bytes = [0u8; 4];
    let _ = aws_lc_rs::rand::fill(&mut bytes);
    f64::from(u32::from_le_bytes(bytes)) / (f64::from(u32::MAX) + 1.0)
}

/// kube-apiserver's two in-flight pools: reads (GET: get, list) and everything else. Watches
/// count in neither (they are bounded by [`WatchSlots`]).
#[derive(Debug)]
pub(crate) struct InFlight {
    reads: Counter,
    mutating: Counter,
}

impl InFlight {
    /// Takes a place in the pool of a request with this method; `None` when the pool is full.
    pub(crate) fn try_acquire(&self, method: &http::Method) -> Option<InFlightPermit<'_>> {
        let counter = if method == http::Method::GET {
            &self.reads
        } else {
            &self.mutating
        };
        counter.try_acquire()
    }
}

#[derive(Debug)]
struct Counter {
    limit: usize,
    current: AtomicUsize,
}

impl Counter {
    fn new(limit: usize) -> Counter {
        Counter {
            limit,
            current: AtomicUsize::new(0),
        }
    }

    fn try_acquire(&self) -> Option<InFlightPermit<'_>> {
        if self.limit == 0 {
            return Some(InFlightPermit(None));
        }
        // One atomic add on the way in and one on the way out: no lock on the request path.
        if self.current.fetch_add(1, Ordering::AcqRel) >= self.limit {
            self.current.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(InFlightPermit(Some(&self.current)))
    }
}

/// A place in an in-flight pool, given back when dropped.
#[derive(Debug)]
pub(crate) struct InFlightPermit<'a>(Option<&'a AtomicUsize>);

impl Drop for InFlightPermit<'_> {
    fn drop(&mut self) {
        if let Some(current) = self.0 {
            current.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Places counted in total and per key (a user's watches, a client address's connections), each
/// count with a cap; a [`Place`] is given back when dropped.
#[derive(Debug)]
pub(crate) struct Places<K> {
    max_total: usize,
    max_per_key: usize,
    open: Mutex<PlaceCounts<K>>,
}

#[derive(Debug)]
struct PlaceCounts<K> {
    total: usize,
    per_key: HashMap<K, usize>,
}

/// Which cap refused a place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Full {
    /// The cap on all places.
    Total,
    /// The cap on the places of one key.
    PerKey,
}

impl<K: Hash + Eq + Clone> Places<K> {
    /// Places for `max_total` holders, `max_per_key` per key (0: no limit).
    pub(crate) fn new(max_total: usize, max_per_key: usize) -> Places<K> {
        Places {
            max_total,
            max_per_key,
            open: Mutex::new(PlaceCounts {
                total: 0,
                per_key: HashMap::new(),
            }),
        }
    }

    /// Takes a place for `key`, unless a cap is reached. An `exempt` holder (the
    /// `system:masters` group, as kube-apiserver exempts it from its in-flight limits) is
    /// counted but never refused.
    pub(crate) fn try_take(self: &Arc<Self>, key: &K, exempt: bool) -> Result<Place<K>, Full> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let mine = open.per_key.get(key).copied().unwrap_or(0);
        if !exempt {
            if self.max_total != 0 && open.total >= self.max_total {
                return Err(Full::Total);
            }
            if self.max_per_key != 0 && mine >= self.max_per_key {
                return Err(Full::PerKey);
            }
        }
        open.total += 1;
        *open.per_key.entry(key.clone()).or_insert(0) += 1;
        Ok(Place {
            places: Arc::clone(self),
            key: key.clone(),
        })
    }

    /// Places taken now.
    pub(crate) fn open(&self) -> usize {
        self.open.lock().map_or(0, |open| open.total)
    }
}

/// A place taken from [`Places`], given back when dropped (a watch's stream ends, a connection
/// closes).
#[derive(Debug)]
pub(crate) struct Place<K: Hash + Eq> {
    places: Arc<Places<K>>,
    key: K,
}

impl<K: Hash + Eq> Drop for Place<K> {
    fn drop(&mut self) {
        let mut open = self.places.open.lock().unwrap_or_else(|e| e.into_inner());
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.per_key.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                open.per_key.remove(&self.key);
            }
        }
    }
}

/// Watches open, in total and per user.
pub(crate) type WatchSlots = Places<String>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_cap_leaves_room_for_the_store_and_stays_within_bounds() {
        assert_eq!(default_max_connections(Some(1024)), 768);
        assert_eq!(default_max_connections(Some(100)), 16);
        assert_eq!(
            default_max_connections(Some(1 << 20)),
            MAX_DEFAULT_CONNECTIONS
        );
        assert_eq!(default_max_connections(None), MAX_DEFAULT_CONNECTIONS);
    }

    #[test]
    fn a_full_pool_refuses_until_a_permit_is_given_back() {
        let limits = RequestLimits::new(&Limits {
            max_requests_inflight: 2,
            max_mutating_requests_inflight: 1,
            ..Limits::default()
        });
        let a = limits.inflight.try_acquire(&http::Method::GET);
        let b = limits.inflight.try_acquire(&http::Method::GET);
        assert!(a.is_some() && b.is_some());
        assert!(limits.inflight.try_acquire(&http::Method::GET).is_none());
        // The mutating pool is separate.
        let w = limits.inflight.try_acquire(&http::Method::POST);
        assert!(w.is_some());
        assert!(limits.inflight.try_acquire(&http::Method::DELETE).is_none());
        drop(a);
        assert!(limits.inflight.try_acquire(&http::Method::GET).is_some());
    }

    #[test]
    fn a_zero_limit_means_no_limit() {
        let limits = RequestLimits::new(&Limits {
            max_requests_inflight: 0,
            ..Limits::default()
        });
        let permits: Vec<_> = (0..1000)
            .map(|_| limits.inflight.try_acquire(&http::Method::GET))
            .collect();
        assert!(permits.iter().all(Option::is_some));
    }

    #[test]
    fn places_are_capped_per_key_and_in_total_and_the_exempt_are_never_refused() {
        let slots = Arc::new(WatchSlots::new(3, 2));
        let take = |user: &str, exempt| slots.try_take(&user.to_owned(), exempt);
        let a1 = take("alice", false);
        let a2 = take("alice", false);
        assert!(a1.is_ok() && a2.is_ok());
        assert_eq!(take("alice", false).err(), Some(Full::PerKey));
        let b1 = take("bob", false);
        assert!(b1.is_ok());
        assert_eq!(take("carol", false).err(), Some(Full::Total));
        let admin = take("admin", true);
        assert!(admin.is_ok());
        assert_eq!(slots.open(), 4);
        drop((a1, admin));
        assert!(take("alice", false).is_ok());
        drop(b1);
        assert_eq!(slots.open(), 1);
    }

    #[test]
    fn a_watch_without_timeout_seconds_lasts_between_the_minimum_and_twice_it() {
        let limits = RequestLimits::new(&Limits::default());
        assert_eq!(limits.watch_timeout(Some(5)), Duration::from_secs(5));
        for _ in 0..100 {
            let t = limits.watch_timeout(None);
            assert!(t >= DEFAULT_MIN_REQUEST_TIMEOUT && t < 2 * DEFAULT_MIN_REQUEST_TIMEOUT);
        }
        assert!(limits.watch_timeout(Some(0)) >= DEFAULT_MIN_REQUEST_TIMEOUT);
    }

    #[tokio::test(start_paused = true)]
    async fn work_that_outlives_its_limit_is_cut_off_and_quick_work_is_not() {
        assert_eq!(within(Duration::from_secs(1), async { 7 }).await, Ok(7));
        let slow = tokio::time::sleep(Duration::from_secs(2));
        assert_eq!(within(Duration::from_secs(1), slow).await, Err(()));
        let waits = async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            8
        };
        assert_eq!(within(Duration::from_secs(1), waits).await, Ok(8));
    }

    #[test]
    fn the_429_is_kube_apiservers() {
        let body = serde_json::to_value(too_many_requests()).unwrap_or_default();
        assert_eq!(
            body,
            serde_json::json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "Too many requests, please try again later.",
                "reason": "TooManyRequests", "details": {"retryAfterSeconds": 1}, "code": 429
            })
        );
    }
}

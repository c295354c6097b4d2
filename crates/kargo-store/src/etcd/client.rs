//! The connection to an etcd cluster: one lazily connected gRPC channel per endpoint, and the
//! retry loop that moves a request to another endpoint when one fails.
//!
//! # Failover
//! Requests go to the *preferred* endpoint. A failure that another member may not have (the
//! connection is refused or reset, the member has no leader, the request timed out, the
//! attempt ran past [`EtcdOptions::attempt_timeout`]) makes the next endpoint preferred and the
//! request is sent again there, round after round with a short backoff, until
//! [`EtcdOptions::retry_timeout`] has passed; only then does the caller see
//! [`Error::Unavailable`]. A failure every member would give (a compacted revision, an invalid
//! request) is returned at once.
//!
//! Sending a write again is safe because every write is a transaction guarded by a compare on
//! the key's `mod_revision`: it applies at most once. What the caller must still settle is a
//! retried write whose compare failed — was the earlier attempt applied, its reply lost? The
//! backend does that with [`Attempt::retried`] (see `mod.rs`).

use std::future::Future;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

use crate::{Error, Result};

/// How to reach an etcd cluster.
#[derive(Debug, Clone)]
pub struct EtcdOptions {
    /// Client URLs of the members, `http://host:port` (a bare `host:port` means `http://`).
    pub endpoints: Vec<String>,
    /// Prepended to every key, so that several installations can share one cluster. Empty by
    /// default: keys are then exactly kube-apiserver's (`/registry/...`).
    pub prefix: String,
    /// How long one attempt on one endpoint may take before it counts as failed.
    pub attempt_timeout: Duration,
    /// How long a request keeps being retried on other endpoints before it fails with
    /// [`Error::Unavailable`].
    pub retry_timeout: Duration,
    /// How long connecting to one endpoint may take.
    pub connect_timeout: Duration,
}

impl EtcdOptions {
    /// Options for these endpoints, with no prefix and the default timeouts (3 s per attempt,
    /// 30 s in all, 1 s to connect).
    pub fn new<S: Into<String>>(endpoints: impl IntoIterator<Item = S>) -> EtcdOptions {
        EtcdOptions {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            prefix: String::new(),
            attempt_timeout: Duration::from_secs(3),
            retry_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(1),
        }
    }

    /// The same options with a key prefix.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> EtcdOptions {
        self.prefix = prefix.into();
        self
    }
}

/// One member's endpoint.
struct Member {
    url: String,
    channel: Channel,
}

/// The result of a request and whether it needed more than one attempt.
pub(crate) struct Attempt<T> {
    /// The reply.
    pub value: T,
    /// Whether an earlier attempt failed in a way that leaves open whether it was applied.
    pub retried: bool,
}

/// The members and the retry policy.
pub(crate) struct Client {
    members: Vec<Member>,
    preferred: AtomicUsize,
    /// The highest store revision any reply has shown: every write sent after it was seen gets a
    /// higher revision.
    seen: AtomicI64,
    pub(crate) options: EtcdOptions,
}

/// What a failed attempt means for the request.
enum Verdict {
    /// Another endpoint (or the same one later) may succeed.
    Retry(String),
    /// Every endpoint would say the same.
    Fail(Error),
}

/// The gRPC metadata that makes a member refuse (instead of queue) a request while it has no
/// leader, and cancel a watch when it loses its leader, so that the request moves on to a member
/// of the majority (etcd's `clientv3.WithRequireLeader`).
const REQUIRE_LEADER: (&str, &str) = ("hasleader", "true");

/// Adds [`REQUIRE_LEADER`] to a request.
pub(crate) fn require_leader<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        REQUIRE_LEADER.0,
        tonic::metadata::MetadataValue::from_static(REQUIRE_LEADER.1),
    );
    request
}

fn endpoint(url: &str, options: &EtcdOptions) -> Result<Endpoint> {
    let url = if url.contains("://") {
        url.to_owned()
    } else {
        format!("http://{url}")
    };
    if !url.starts_with("http://") {
        return Err(Error::Internal(format!(
            "etcd endpoint {url}: only http:// endpoints are supported"
        )));
    }
    let endpoint = Endpoint::from_shared(url.clone())
        .map_err(|e| Error::Internal(format!("etcd endpoint {url}: {e}")))?;
    Ok(endpoint
        .connect_timeout(options.connect_timeout)
        .tcp_nodelay(true)
        // etcd's default keepalive policy refuses pings more often than every 5 s.
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(5))
        .keep_alive_while_idle(true))
}

impl Client {
    /// Channels to every endpoint; none is connected yet (that happens on first use). Must run
    /// inside a tokio runtime.
    pub(crate) fn new(options: EtcdOptions) -> Result<Client> {
        if options.endpoints.is_empty() {
            return Err(Error::Internal("no etcd endpoints given".into()));
        }
        let members = options
            .endpoints
            .iter()
            .map(|url| {
                Ok(Member {
                    url: url.clone(),
                    channel: endpoint(url, &options)?.connect_lazy(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Client {
            members,
            preferred: AtomicUsize::new(0),
            seen: AtomicI64::new(0),
            options,
        })
    }

    /// The preferred endpoint's index and channel.
    pub(crate) fn preferred(&self) -> (usize, Channel) {
        let index = self.preferred.load(Ordering::Acquire) % self.members.len();
        (index, self.members[index].channel.clone())
    }

    /// Moves the preference past `index` after it failed (unless another request did already).
    pub(crate) fn failed(&self, index: usize, why: &str) {
        let next = (index + 1) % self.members.len();
        if self
            .preferred
            .compare_exchange(index, next, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            tracing::warn!(
                failed = %self.members[index].url,
                next = %self.members[next].url,
                error = %why,
                "etcd endpoint failed; moving to the next one"
            );
        }
    }

    /// How many endpoints there are.
    pub(crate) fn len(&self) -> usize {
        self.members.len()
    }

    /// Records a revision a reply showed.
    pub(crate) fn saw(&self, revision: i64) {
        self.seen.fetch_max(revision, Ordering::AcqRel);
    }

    /// The highest revision any reply has shown.
    pub(crate) fn seen(&self) -> i64 {
        self.seen.load(Ordering::Acquire)
    }

    /// The pause after a failed round over all endpoints.
    pub(crate) fn backoff(round: u32) -> Duration {
        Duration::from_millis((25u64 << round.min(5)).min(500))
    }

    /// Runs `call` on the preferred endpoint, moving to the next one on failures another member
    /// may not have, until it succeeds, fails for good, or the retry time is up.
    pub(crate) async fn run<T, F, Fut>(&self, what: &str, mut call: F) -> Result<Attempt<T>>
    where
        F: FnMut(Channel) -> Fut,
        Fut: Future<Output = std::result::Result<T, Status>>,
    {
        let deadline = Instant::now() + self.options.retry_timeout;
        let mut retried = false;
        let mut failures: u32 = 0;
        loop {
            let (index, channel) = self.preferred();
            let outcome = tokio::time::timeout(self.options.attempt_timeout, call(channel)).await;
            let why = match outcome {
                Ok(Ok(value)) => return Ok(Attempt { value, retried }),
                Ok(Err(status)) => match verdict(&status) {
                    Verdict::Fail(error) => return Err(error),
                    Verdict::Retry(why) => why,
                },
                Err(_) => format!("no answer within {:?}", self.options.attempt_timeout),
            };
            retried = true;
            failures += 1;
            self.failed(index, &why);
            if Instant::now() >= deadline {
                return Err(Error::Unavailable(format!(
                    "etcd {what}: no endpoint answered within {:?}; last error: {why}",
                    self.options.retry_timeout
                )));
            }
            // A short pause once every endpoint has failed in a row.
            if failures.is_multiple_of(self.len() as u32) {
                let round = failures / self.len() as u32;
                tokio::time::sleep(Self::backoff(round).min(deadline - Instant::now())).await;
            }
        }
    }
}

/// Sorts a failed attempt: worth another try, or final.
fn verdict(status: &Status) -> Verdict {
    let message = status.message();
    match status.code() {
        // A refused or broken connection, a member without leader, a proposal that timed out or
        // was dropped during an election, an overloaded member: another member (or the same one
        // after the election) may answer. `Unknown`, `Internal` and `Cancelled` are what a
        // connection reset in the middle of a call looks like.
        Code::Unavailable
        | Code::DeadlineExceeded
        | Code::Unknown
        | Code::Internal
        | Code::Cancelled
        | Code::Aborted
        | Code::ResourceExhausted => Verdict::Retry(format!("{:?}: {message}", status.code())),
        Code::OutOfRange if message.contains("compacted") => Verdict::Fail(Error::Compacted {
            requested: crate::Revision(0),
            oldest: crate::Revision(0),
        }),
        Code::OutOfRange if message.contains("future revision") => {
            Verdict::Fail(Error::FutureRevision {
                requested: crate::Revision(0),
                current: crate::Revision(0),
            })
        }
        code => Verdict::Fail(Error::Internal(format!("etcd: {code:?}: {message}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(status: Status, retry: bool) {
        let got = matches!(verdict(&status), Verdict::Retry(_));
        assert_eq!(got, retry, "{status:?}");
    }

    #[test]
    fn failures_another_member_may_not_have_are_retried_and_the_rest_are_final() {
        check(Status::unavailable("etcdserver: no leader"), true);
        check(Status::unavailable("etcdserver: request timed out"), true);
        check(Status::unknown("transport error"), true);
        check(Status::deadline_exceeded("context deadline exceeded"), true);
        check(
            Status::out_of_range("etcdserver: mvcc: required revision has been compacted"),
            false,
        );
        check(
            Status::out_of_range("etcdserver: mvcc: required revision is a future revision"),
            false,
        );
        check(
            Status::invalid_argument("etcdserver: duplicate key given in txn request"),
            false,
        );
    }

    #[test]
    fn compacted_and_future_revision_errors_keep_their_kind() {
        assert!(matches!(
            verdict(&Status::out_of_range(
                "etcdserver: mvcc: required revision has been compacted"
            )),
            Verdict::Fail(Error::Compacted { .. })
        ));
        assert!(matches!(
            verdict(&Status::out_of_range(
                "etcdserver: mvcc: required revision is a future revision"
            )),
            Verdict::Fail(Error::FutureRevision { .. })
        ));
    }

    #[test]
    fn backoff_grows_to_half_a_second() {
        let pauses: Vec<u64> = (1..=7)
            .map(|round| Client::backoff(round).as_millis() as u64)
            .collect();
        assert_eq!(pauses, vec![50, 100, 200, 400, 500, 500, 500]);
    }

    #[tokio::test]
    async fn endpoints_without_a_scheme_are_http_and_https_is_refused() {
        let options = EtcdOptions::new(["127.0.0.1:2379"]);
        assert!(Client::new(options).is_ok());
        let options = EtcdOptions::new(["https://127.0.0.1:2379"]);
        assert!(matches!(Client::new(options), Err(Error::Internal(_))));
        let none = EtcdOptions::new(Vec::<String>::new());
        assert!(matches!(Client::new(none), Err(Error::Internal(_))));
    }
}

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
//!
//! # Security
//! `https://` endpoints are reached over TLS (rustls with aws-lc-rs), trusting
//! [`EtcdTls::ca_pem`] or else the system's roots, and presenting [`EtcdTls::identity`] to
//! members that require client certificates. With [`EtcdOptions::credentials`] the client logs
//! in with etcd's `Authenticate` before its first request and sends the token it gets in the
//! `token` header of every request, as etcd's own client does; a request refused because the
//! token expired or the member forgot it (etcd keeps simple tokens in memory, for five minutes
//! by default) logs in again and is sent again. The password is never logged or put in an error.

use std::future::Future;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{PoisonError, RwLock};
use std::time::Duration;

use tokio::time::Instant;
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Code, Status};

use super::proto::etcdserverpb::AuthenticateRequest;
use super::proto::etcdserverpb::auth_client::AuthClient;
use crate::{Error, Result};

/// How to reach an etcd cluster.
#[derive(Debug, Clone)]
pub struct EtcdOptions {
    /// Client URLs of the members, `http://host:port` or `https://host:port` (a bare
    /// `host:port` means `https://` when [`EtcdOptions::tls`] is set, else `http://`).
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
    /// TLS settings for `https://` endpoints (`None`: the system's roots, no client
    /// certificate).
    pub tls: Option<EtcdTls>,
    /// The etcd user to log in as (`None`: no login, for clusters without authentication or
    /// that authenticate clients by certificate).
    pub credentials: Option<EtcdCredentials>,
}

/// TLS to the members.
#[derive(Clone, Default)]
pub struct EtcdTls {
    /// PEM certificates of the CAs that sign the members' serving certificates (`None`: the
    /// system's roots).
    pub ca_pem: Option<Vec<u8>>,
    /// A PEM client certificate and its PEM private key, for members started with
    /// `--client-cert-auth`.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for EtcdTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdTls")
            .field("ca_pem", &self.ca_pem.as_ref().map(|_| "<pem>"))
            .field("identity", &self.identity.as_ref().map(|_| "<pem>"))
            .finish()
    }
}

/// An etcd user and password (etcd's `Authenticate`).
#[derive(Clone)]
pub struct EtcdCredentials {
    /// The user name.
    pub user: String,
    /// The password; never logged, never in an error.
    pub password: String,
}

impl std::fmt::Debug for EtcdCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdCredentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl EtcdOptions {
    /// Options for these endpoints, with no prefix, no TLS settings, no login and the default
    /// timeouts (3 s per attempt, 30 s in all, 1 s to connect).
    pub fn new<S: Into<String>>(endpoints: impl IntoIterator<Item = S>) -> EtcdOptions {
        EtcdOptions {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            prefix: String::new(),
            attempt_timeout: Duration::from_secs(3),
            retry_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(1),
            tls: None,
            credentials: None,
        }
    }

    /// The same options with a key prefix.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> EtcdOptions {
        self.prefix = prefix.into();
        self
    }

    /// The same options with TLS settings.
    pub fn with_tls(mut self, tls: EtcdTls) -> EtcdOptions {
        self.tls = Some(tls);
        self
    }

    /// The same options logging in as `user`.
    pub fn with_credentials(
        mut self,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> EtcdOptions {
        self.credentials = Some(EtcdCredentials {
            user: user.into(),
            password: password.into(),
        });
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
    /// The token of the last login with [`EtcdOptions::credentials`]; `None` before the first
    /// login and after etcd refused the token.
    token: RwLock<Option<AsciiMetadataValue>>,
    /// One login at a time: requests that all find no token wait for one login instead of each
    /// making their own (every login is a write to etcd's raft log).
    login: tokio::sync::Mutex<()>,
}

/// What a failed attempt means for the request.
enum Verdict {
    /// Another endpoint (or the same one later) may succeed.
    Retry(String),
    /// The member refused the login token (expired, or forgotten by a restarted member): log in
    /// again and send the request again. Nothing was applied.
    Relogin(String),
    /// Every endpoint would say the same.
    Fail(Error),
}

/// What starts a PEM certificate.
const CERTIFICATE_PEM: &[u8] = b"-----BEGIN CERTIFICATE-----";

/// The gRPC metadata that carries etcd's login token.
const TOKEN_HEADER: &str = "token";

/// The gRPC metadata that makes a member refuse (instead of queue) a request while it has no
/// leader, and cancel a watch when it loses its leader, so that the request moves on to a member
/// of the majority (etcd's `clientv3.WithRequireLeader`).
const REQUIRE_LEADER: (&str, &str) = ("hasleader", "true");

/// Adds [`REQUIRE_LEADER`] to a request.
fn require_leader<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        REQUIRE_LEADER.0,
        tonic::metadata::MetadataValue::from_static(REQUIRE_LEADER.1),
    );
    request
}

/// A failure and its causes, on one line (tonic's own message is often only "transport error").
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    with_causes(error.to_string(), error.source())
}

/// A failed call's code and message, with the causes behind it (a TLS failure is there, not in
/// the message).
fn describe(status: &Status) -> String {
    with_causes(
        format!("{:?}: {}", status.code(), status.message()),
        std::error::Error::source(status),
    )
}

/// `text`, then each cause in turn that it does not already say.
fn with_causes(mut text: String, mut source: Option<&(dyn std::error::Error + 'static)>) -> String {
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn endpoint(url: &str, options: &EtcdOptions) -> Result<Endpoint> {
    let url = if url.contains("://") {
        url.to_owned()
    } else if options.tls.is_some() {
        format!("https://{url}")
    } else {
        format!("http://{url}")
    };
    let https = url.starts_with("https://");
    if !https && !url.starts_with("http://") {
        return Err(Error::Internal(format!(
            "etcd endpoint {url}: only http:// and https:// endpoints are supported"
        )));
    }
    if !https && options.tls.is_some() {
        return Err(Error::Internal(format!(
            "etcd endpoint {url}: TLS settings (a CA, a client certificate) are given, so the \
             endpoint must be https://"
        )));
    }
    let mut endpoint = Endpoint::from_shared(url.clone())
        .map_err(|e| Error::Internal(format!("etcd endpoint {url}: {e}")))?;
    if https {
        let tls = options.tls.clone().unwrap_or_default();
        let mut config = ClientTlsConfig::new();
        config = match tls.ca_pem {
            // rustls would take a file without certificates for an empty trust store and fail
            // every handshake later with a vaguer message.
            Some(ca)
                if !ca
                    .windows(CERTIFICATE_PEM.len())
                    .any(|w| w == CERTIFICATE_PEM) =>
            {
                return Err(Error::Internal(format!(
                    "etcd endpoint {url}: TLS: the CA certificates hold no PEM certificate"
                )));
            }
            Some(ca) => config.ca_certificate(Certificate::from_pem(ca)),
            None => config.with_native_roots(),
        };
        if let Some((cert, key)) = tls.identity {
            config = config.identity(Identity::from_pem(cert, key));
        }
        endpoint = endpoint
            .tls_config(config)
            .map_err(|e| Error::Internal(format!("etcd endpoint {url}: TLS: {}", chain(&e))))?;
    }
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
        if options.credentials.is_some() && options.tls.is_none() {
            let plain = options
                .endpoints
                .iter()
                .any(|url| url.starts_with("http://"));
            if plain {
                tracing::warn!(
                    "logging in to etcd over plain http://: the etcd password crosses the network \
                     unencrypted"
                );
            }
        }
        Ok(Client {
            members,
            preferred: AtomicUsize::new(0),
            seen: AtomicI64::new(0),
            options,
            token: RwLock::new(None),
            login: tokio::sync::Mutex::new(()),
        })
    }

    /// A request with the require-leader metadata and the login token, if any.
    pub(crate) fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = require_leader(message);
        let token = self
            .token
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(token) = token {
            request.metadata_mut().insert(TOKEN_HEADER, token);
        }
        request
    }

    /// Logs in on `channel` when credentials are set and no token is held.
    pub(crate) async fn login(&self, channel: Channel) -> std::result::Result<(), Status> {
        let Some(credentials) = &self.options.credentials else {
            return Ok(());
        };
        let _one_at_a_time = self.login.lock().await;
        if self.has_token() {
            return Ok(());
        }
        let reply = AuthClient::new(channel)
            .authenticate(AuthenticateRequest {
                name: credentials.user.clone(),
                password: credentials.password.clone(),
            })
            .await?
            .into_inner();
        let token: AsciiMetadataValue =
            MetadataValue::try_from(reply.token.as_str()).map_err(|_| {
                Status::internal("etcd answered a login with a token that is not ASCII")
            })?;
        *self.token.write().unwrap_or_else(PoisonError::into_inner) = Some(token);
        tracing::debug!(user = %credentials.user, "logged in to etcd");
        Ok(())
    }

    fn has_token(&self) -> bool {
        self.token
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// Forgets the token if `status` says a member refused it, so the next attempt logs in
    /// again; whether it did.
    pub(crate) fn token_refused(&self, status: &Status) -> bool {
        if self.options.credentials.is_none() || !refuses_token(status) {
            return false;
        }
        self.token
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        true
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
        let mut relogged = false;
        let mut failures: u32 = 0;
        loop {
            let (index, channel) = self.preferred();
            let attempt = async {
                self.login(channel.clone())
                    .await
                    .map_err(|status| self.login_failed(status))?;
                call(channel).await.map_err(|status| self.verdict(&status))
            };
            let outcome = tokio::time::timeout(self.options.attempt_timeout, attempt).await;
            let why = match outcome {
                Ok(Ok(value)) => return Ok(Attempt { value, retried }),
                Ok(Err(Verdict::Fail(error))) => return Err(error),
                // Not applied: a member checks the token before anything else. Once at once;
                // a token refused again goes the way of other failures, with a backoff.
                Ok(Err(Verdict::Relogin(_))) if !relogged => {
                    relogged = true;
                    continue;
                }
                Ok(Err(Verdict::Retry(why) | Verdict::Relogin(why))) => why,
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

impl Client {
    /// Sorts a failed request, forgetting a refused token.
    fn verdict(&self, status: &Status) -> Verdict {
        if self.token_refused(status) {
            return Verdict::Relogin(format!("{:?}: {}", status.code(), status.message()));
        }
        verdict(status)
    }

    /// Sorts a failed login: a wrong user or password, or a cluster without authentication, is
    /// final and says which user; a member that cannot answer is another member's turn.
    fn login_failed(&self, status: Status) -> Verdict {
        let user = self
            .options
            .credentials
            .as_ref()
            .map_or("", |c| c.user.as_str());
        match status.code() {
            Code::InvalidArgument | Code::FailedPrecondition | Code::PermissionDenied => {
                Verdict::Fail(Error::Internal(format!(
                    "etcd refused the login of user {user:?}: {}",
                    status.message()
                )))
            }
            _ => match verdict(&status) {
                Verdict::Fail(error) => Verdict::Fail(error),
                Verdict::Retry(why) | Verdict::Relogin(why) => {
                    Verdict::Retry(format!("logging in as {user:?}: {why}"))
                }
            },
        }
    }
}

/// Whether a member refused the request's login token: it expired, the member restarted and
/// forgot it, or the users and roles changed since it was issued (etcd's
/// `ErrInvalidAuthToken` and `ErrAuthOldRevision`).
fn refuses_token(status: &Status) -> bool {
    match status.code() {
        Code::Unauthenticated => true,
        Code::InvalidArgument => status.message().contains("revision of auth store is old"),
        _ => false,
    }
}

/// Sorts a failed attempt: worth another try, or final.
fn verdict(status: &Status) -> Verdict {
    let message = status.message();
    match status.code() {
        // A member whose data failed etcd's corruption check (the `CORRUPT` alarm).
        Code::DataLoss => Verdict::Fail(Error::Corrupt(format!("etcd: {message}"))),
        // Authentication is on and this client did not log in.
        Code::InvalidArgument if message.contains("user name is empty") => {
            Verdict::Fail(Error::Internal(format!(
                "etcd requires a login (authentication is enabled) and no etcd user was given: \
                 {message}"
            )))
        }
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
        | Code::ResourceExhausted => Verdict::Retry(describe(status)),
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
    async fn endpoints_take_http_or_https_and_a_bare_address_follows_the_tls_settings() {
        // A CA of its own: the system's roots (the default) differ from machine to machine.
        let ca = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
            .unwrap()
            .cert
            .pem()
            .into_bytes();
        let tls = EtcdTls {
            ca_pem: Some(ca),
            identity: None,
        };
        let plain = EtcdOptions::new(["127.0.0.1:2379"]);
        assert!(Client::new(plain).is_ok());
        let https = EtcdOptions::new(["https://127.0.0.1:2379"]).with_tls(tls.clone());
        assert!(Client::new(https).is_ok());
        let bare_tls = EtcdOptions::new(["127.0.0.1:2379"]).with_tls(tls.clone());
        assert!(Client::new(bare_tls).is_ok());
        let bad_ca = EtcdOptions::new(["https://127.0.0.1:2379"]).with_tls(EtcdTls {
            ca_pem: Some(b"not a certificate".to_vec()),
            identity: None,
        });
        assert!(
            matches!(Client::new(bad_ca), Err(Error::Internal(m)) if m.contains("TLS")),
            "a CA that is no certificate is refused"
        );
        let http_with_tls =
            EtcdOptions::new(["http://127.0.0.1:2379"]).with_tls(EtcdTls::default());
        assert!(
            matches!(Client::new(http_with_tls), Err(Error::Internal(m)) if m.contains("must be https://"))
        );
        let other = EtcdOptions::new(["unix:///run/etcd.sock"]);
        assert!(matches!(Client::new(other), Err(Error::Internal(_))));
        let none = EtcdOptions::new(Vec::<String>::new());
        assert!(matches!(Client::new(none), Err(Error::Internal(_))));
    }

    #[test]
    fn the_password_and_keys_never_show_in_debug_output() {
        let options = EtcdOptions::new(["https://127.0.0.1:2379"])
            .with_credentials("kargo", "s3cret-pa55")
            .with_tls(EtcdTls {
                ca_pem: Some(b"-----BEGIN CERTIFICATE-----".to_vec()),
                identity: Some((b"cert".to_vec(), b"PRIVATE-KEY-BYTES".to_vec())),
            });
        let text = format!("{options:?}");
        assert!(text.contains("kargo"), "{text}");
        assert!(!text.contains("s3cret-pa55"), "{text}");
        assert!(!text.contains("PRIVATE-KEY-BYTES"), "{text}");
    }

    #[test]
    fn a_refused_token_means_log_in_again_and_a_corrupt_cluster_is_final() {
        assert!(refuses_token(&Status::unauthenticated(
            "etcdserver: invalid auth token"
        )));
        assert!(refuses_token(&Status::invalid_argument(
            "etcdserver: revision of auth store is old"
        )));
        assert!(!refuses_token(&Status::invalid_argument(
            "etcdserver: authentication failed, invalid user ID or password"
        )));
        assert!(matches!(
            verdict(&Status::data_loss("etcdserver: corrupt cluster")),
            Verdict::Fail(Error::Corrupt(_))
        ));
        assert!(matches!(
            verdict(&Status::invalid_argument("etcdserver: user name is empty")),
            Verdict::Fail(Error::Internal(m)) if m.contains("no etcd user was given")
        ));
    }
}

//! The HTTPS listener: TLS (HTTP/2 and HTTP/1.1 by ALPN), the client certificate's identity on
//! every request of its connection, graceful shutdown, and the connection bounds.
//!
//! # Connection bounds (`limits::Limits`)
//! - A cap on open connections, and on connections from one client address (an IPv4 address or
//!   an IPv6 /64). A connection past either is closed as soon as it is accepted: it is not
//!   queued, and it costs no TLS handshake.
//! - The TLS handshake must finish within [`HANDSHAKE_TIMEOUT`].
//! - Header timeout: a request header must be complete within `header_timeout` of its first
//!   byte (for a connection's first request: of the handshake), or the connection is closed —
//!   a client sending its header one byte a minute is dropped (slow-loris). HTTP/2: the first
//!   stream must be opened within it.
//! - Idle timeout: a connection with no request in flight and, for HTTP/1.1, nothing received
//!   is closed after `idle_timeout` (HTTP/2: with a GOAWAY, so the client opens a new one).
//! - Request headers are bounded by [`MAX_HEADER_BYTES`]: HTTP/1.1 answers 431; HTTP/2 answers
//!   431 up to four times the limit and closes the connection beyond (the `h2` crate's abuse
//!   bound).
//! - HTTP/2: at most `http2_max_streams` streams per connection, and PINGs to find dead peers;
//!   TCP keep-alive on every connection for the same reason.
//!
//! The timeouts are enforced by one watchdog per connection, sleeping until the next deadline:
//! the request path only counts requests in and out and notes the first byte read after an idle
//! period (two relaxed atomic operations).

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::Api;
use crate::limits::{Full, MAX_HEADER_BYTES, Place, Places};
use kargo_auth::authn::PeerIdentity;
use kargo_auth::tls::client_identity;

/// Time for the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection told to go away (shutdown, HTTP/2 idle timeout) may take to finish.
const GOAWAY_GRACE: Duration = Duration::from_secs(5);
/// HTTP/2 PING interval, and how long the answer may take before the connection is closed.
const HTTP2_PING_INTERVAL: Duration = Duration::from_secs(30);
const HTTP2_PING_TIMEOUT: Duration = Duration::from_secs(20);
/// TCP keep-alive: kube-apiserver's period.
const TCP_KEEPALIVE: Duration = Duration::from_secs(180);
/// Refused connections are logged at most this often (a flood must not flood the log).
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The connection bounds of one listener (resolved from `limits::Limits`).
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Time to send a complete request header.
    pub header_timeout: Duration,
    /// Time a connection may stay open with nothing in flight.
    pub idle_timeout: Duration,
    /// Open connections.
    pub max_connections: usize,
    /// Open connections from one client address.
    pub max_connections_per_client: usize,
    /// HTTP/2 streams per connection.
    pub http2_max_streams: u32,
}

/// Serves `api` over TLS on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    api: Api,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
) {
    let acceptor = TlsAcceptor::from(tls);
    let connections = tokio_util::task::TaskTracker::new();
    let slots = Slots::new(limits.max_connections, limits.max_connections_per_client);
    let limits = Arc::new(limits);
    loop {
        let (tcp, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors (EMFILE) among others: wait rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        // Dropping the socket at once closes it: no handshake, no task, no queue.
        let Some(slot) = slots.take(remote.ip()) else {
            continue;
        };
        connections.spawn(connection(
            tcp,
            remote,
            slot,
            acceptor.clone(),
            api.clone(),
            limits.clone(),
            shutdown.clone(),
        ));
    }
    connections.close();
    let _ = tokio::time::timeout(GOAWAY_GRACE + Duration::from_secs(1), connections.wait()).await;
}

/// Serves one accepted connection until it ends, times out, or the server shuts down.
async fn connection(
    tcp: TcpStream,
    remote: SocketAddr,
    slot: Place<IpAddr>,
    acceptor: TlsAcceptor,
    api: Api,
    limits: Arc<ConnectionLimits>,
    shutdown: CancellationToken,
) {
    let _ = tcp.set_nodelay(true);
    let keepalive = socket2::TcpKeepalive::new().with_time(TCP_KEEPALIVE);
    let _ = socket2::SockRef::from(&tcp).set_tcp_keepalive(&keepalive);
    let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(%remote, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%remote, "TLS handshake timed out");
            return;
        }
    };
    let session = stream.get_ref().1;
    let http2 = session.alpn_protocol() == Some(b"h2");
    let peer = session
        .peer_certificates()
        .and_then(|certs| certs.first())
        .and_then(client_identity)
        .map(|(user, groups)| PeerIdentity { user, groups });
    let activity = Arc::new(Activity::new());
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            if let Some(peer) = &peer {
                request.extensions_mut().insert(peer.clone());
            }
            // Taken before the call, so that a request whose future is dropped still gives it
            // back; the response body carries it until hyper has sent the last byte.
            let busy = activity.begin();
            let api = api.clone();
            async move {
                let response = api.call(request, Some(remote)).await;
                Ok::<_, std::convert::Infallible>(
                    response.map(|inner| TrackedBody { inner, _busy: busy }),
                )
            }
        })
    };
    let io = TokioIo::new(Tracked {
        inner: Some(stream),
        activity: activity.clone(),
        slot: Some(slot),
    });
    if http2 {
        let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        builder
            .timer(TokioTimer::new())
            .max_concurrent_streams(limits.http2_max_streams)
            .max_header_list_size(u32::try_from(MAX_HEADER_BYTES).unwrap_or(u32::MAX))
            .keep_alive_interval(HTTP2_PING_INTERVAL)
            .keep_alive_timeout(HTTP2_PING_TIMEOUT);
        let connection = builder.serve_connection(io, service);
        drive(connection, &activity, &limits, true, remote, &shutdown).await;
    } else {
        let mut builder = hyper::server::conn::http1::Builder::new();
        // hyper's own header timer also runs while a connection is idle, which would make the
        // idle timeout the header timeout; the watchdog keeps the two apart, as Go does.
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(None)
            .max_header_size(MAX_HEADER_BYTES);
        let connection = builder.serve_connection(io, service);
        drive(connection, &activity, &limits, false, remote, &shutdown).await;
    }
}

/// A hyper connection of either protocol.
trait Connection: Future<Output = Result<(), hyper::Error>> {
    fn go_away(self: Pin<&mut Self>);
}

impl<I, S, E, B> Connection for hyper::server::conn::http2::Connection<I, S, E>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
    S: hyper::service::HttpService<Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    E: hyper::rt::bounds::Http2ServerConnExec<S::Future, B>,
{
    fn go_away(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

impl<I, S, B> Connection for hyper::server::conn::http1::Connection<I, S>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    S: hyper::service::HttpService<Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn go_away(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

/// Runs `connection` against its watchdog and the server's shutdown.
async fn drive(
    connection: impl Connection,
    activity: &Activity,
    limits: &ConnectionLimits,
    http2: bool,
    remote: SocketAddr,
    shutdown: &CancellationToken,
) {
    tokio::pin!(connection);
    let watchdog = activity.watchdog(limits, http2);
    tokio::pin!(watchdog);
    tokio::select! {
        biased;
        result = connection.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(%remote, error = %e, "connection ended with an error");
                // hyper answered a malformed or oversized header (400, 431) and closes; the
                // client may still be sending it.
                if e.is_parse() || e.is_parse_too_large() {
                    activity.linger.store(true, Ordering::Relaxed);
                }
            }
            return;
        }
        reason = watchdog.as_mut() => {
            tracing::debug!(%remote, reason, "closing the connection");
            if !http2 {
                // Idle or mid-header: there is nothing to answer; closing is the answer.
                return;
            }
        }
        _ = shutdown.cancelled() => {}
    }
    connection.as_mut().go_away();
    let _ = tokio::time::timeout(GOAWAY_GRACE, connection).await;
}

/// What the watchdog of a connection reads: requests in flight, and when the connection last
/// had none.
struct Activity {
    started: Instant,
    /// Requests being served (HTTP/1.1: 0 or 1).
    active: AtomicUsize,
    /// Whether a request was ever served on this connection.
    served: AtomicBool,
    /// Milliseconds after `started` when the last request ended.
    idle_since: AtomicU64,
    /// Set when a request ends; the next read that brings bytes clears it and stamps
    /// `first_byte` (the start of the next request's header, on HTTP/1.1).
    awaiting_bytes: AtomicBool,
    first_byte: AtomicU64,
    /// Whether the stream is to be closed with [`linger`].
    linger: AtomicBool,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            started: Instant::now(),
            active: AtomicUsize::new(0),
            served: AtomicBool::new(false),
            idle_since: AtomicU64::new(0),
            awaiting_bytes: AtomicBool::new(false),
            first_byte: AtomicU64::new(0),
            linger: AtomicBool::new(false),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn begin(self: &Arc<Self>) -> Busy {
        self.active.fetch_add(1, Ordering::AcqRel);
        Busy(self.clone())
    }

    fn read_bytes(&self) {
        if self.awaiting_bytes.load(Ordering::Relaxed) {
            self.first_byte.store(self.now_ms(), Ordering::Relaxed);
            self.awaiting_bytes.store(false, Ordering::Release);
        }
    }

    /// When the connection times out if nothing changes (milliseconds after `started`), and
    /// which bound that is; `None` while a request is in flight.
    fn deadline(&self, limits: &ConnectionLimits, http2: bool) -> Option<(u64, &'static str)> {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        if self.active.load(Ordering::Acquire) > 0 {
            return None;
        }
        if !self.served.load(Ordering::Acquire) {
            return Some((ms(limits.header_timeout), "header timeout"));
        }
        if !http2 && !self.awaiting_bytes.load(Ordering::Acquire) {
            let first = self.first_byte.load(Ordering::Relaxed);
            return Some((
                first.saturating_add(ms(limits.header_timeout)),
                "header timeout",
            ));
        }
        let idle = self.idle_since.load(Ordering::Relaxed);
        Some((idle.saturating_add(ms(limits.idle_timeout)), "idle timeout"))
    }

    /// Resolves (with the bound that was passed) when the connection has outlived its header or
    /// idle timeout.
    async fn watchdog(&self, limits: &ConnectionLimits, http2: bool) -> &'static str {
        // Look again at least this often: every deadline lies at least this far after the event
        // that set it, so a deadline that a request's start or end moves earlier is never
        // overslept.
        let recheck = limits.header_timeout.min(limits.idle_timeout);
        loop {
            let next = Instant::now() + recheck;
            match self.deadline(limits, http2) {
                None => tokio::time::sleep_until(next.into()).await,
                Some((at, reason)) => {
                    if self.now_ms() >= at {
                        return reason;
                    }
                    let at = self.started + Duration::from_millis(at);
                    tokio::time::sleep_until(at.min(next).into()).await;
                }
            }
        }
    }
}

/// A request in flight on a connection; dropped when its response is sent (or abandoned).
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        let activity = &self.0;
        activity
            .idle_since
            .store(activity.now_ms(), Ordering::Relaxed);
        activity.served.store(true, Ordering::Release);
        activity.awaiting_bytes.store(true, Ordering::Release);
        activity.active.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its request counted as in flight until hyper drops it.
struct TrackedBody {
    inner: axum::body::Body,
    _busy: Busy,
}

impl hyper::body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

type TlsStream = tokio_rustls::server::TlsStream<TcpStream>;

/// The TLS stream, noting the first bytes read after each response, and closed with [`linger`]
/// when the connection asks for it. (`Option` only so that `Drop` can hand the stream on.)
struct Tracked {
    inner: Option<TlsStream>,
    activity: Arc<Activity>,
    /// The connection's place under the caps, kept until the stream is closed.
    slot: Option<Place<IpAddr>>,
}

impl Tracked {
    fn stream(&mut self) -> std::io::Result<Pin<&mut TlsStream>> {
        self.inner
            .as_mut()
            .map(Pin::new)
            .ok_or_else(|| std::io::ErrorKind::NotConnected.into())
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if self.activity.linger.load(Ordering::Relaxed)
            && let Some(stream) = self.inner.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(linger(stream, self.slot.take()));
        }
    }
}

/// How long, and how much of what a client still sends, [`linger`] reads.
const LINGER_TIME: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 2 * 1024 * 1024;

/// Closes a stream whose client may still be sending (its oversized header, say): our side
/// first, then what arrives is read and dropped for a bounded time. Closing a socket with unread
/// data makes the kernel send a reset, and a reset makes the client drop the answer (the 431)
/// before reading it — Go's server waits the same way.
async fn linger(mut stream: TlsStream, _slot: Option<Place<IpAddr>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = tokio::time::timeout(LINGER_TIME, async {
        let _ = stream.shutdown().await;
        let mut buf = vec![0u8; 16 * 1024];
        let mut read = 0;
        while read < LINGER_BYTES {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => read += n,
            }
        }
    })
    .await;
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = self.stream()?.poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.read_bytes();
        }
        result
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.stream()?.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        self.stream()?.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.as_ref().is_some_and(|s| s.is_write_vectored())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.stream()?.poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.stream()?.poll_shutdown(cx)
    }
}

/// Open connections, in total and per client address, and the log of refusals.
struct Slots {
    places: Arc<Places<IpAddr>>,
    limits: (usize, usize),
    refusals: Mutex<RefusalLog>,
}

#[derive(Default)]
struct RefusalLog {
    since_last: u64,
    last: Option<Instant>,
}

impl Slots {
    fn new(max_total: usize, max_per_client: usize) -> Slots {
        Slots {
            places: Arc::new(Places::new(max_total, max_per_client)),
            limits: (max_total, max_per_client),
            refusals: Mutex::new(RefusalLog::default()),
        }
    }

    /// A slot for a connection from `ip`, or `None` past a cap.
    fn take(&self, ip: IpAddr) -> Option<Place<IpAddr>> {
        let client = client_key(ip);
        let full = match self.places.try_take(&client, false) {
            Ok(place) => return Some(place),
            Err(full) => full,
        };
        let mut log = self.refusals.lock().unwrap_or_else(|e| e.into_inner());
        log.since_last += 1;
        if log
            .last
            .is_none_or(|at| at.elapsed() >= REFUSAL_LOG_INTERVAL)
        {
            let cap = match full {
                Full::Total => "the connection cap",
                Full::PerKey => "the per-client connection cap",
            };
            tracing::warn!(
                refused = log.since_last,
                %client,
                open = self.places.open(),
                max_connections = self.limits.0,
                max_connections_per_client = self.limits.1,
                "refusing connections at {cap}"
            );
            log.since_last = 0;
            log.last = Some(Instant::now());
        }
        None
    }
}

/// Which addresses count as one client: an IPv4 address, or an IPv6 /64 (one host usually has a
/// whole /64 to pick addresses from).
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(prefix.into())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_client_is_an_ipv4_address_or_an_ipv6_slash_64() {
        let key = |s: &str| client_key(s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0])));
        assert_eq!(key("10.1.2.3"), key("10.1.2.3"));
        assert_ne!(key("10.1.2.3"), key("10.1.2.4"));
        assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:10.1.2.3"), key("10.1.2.3"));
    }

    #[test]
    fn slots_are_capped_in_total_and_per_client_and_given_back() {
        let slots = Slots::new(3, 2);
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let c: IpAddr = [10, 0, 0, 3].into();
        let a1 = slots.take(a);
        let a2 = slots.take(a);
        assert!(a1.is_some() && a2.is_some());
        assert!(slots.take(a).is_none(), "per client");
        let b1 = slots.take(b);
        assert!(b1.is_some());
        assert!(slots.take(c).is_none(), "in total");
        drop(a1);
        assert!(slots.take(c).is_some());
        drop((a2, b1));
        assert!(slots.take(a).is_some());
    }

    fn limits() -> ConnectionLimits {
        ConnectionLimits {
            header_timeout: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(10),
            max_connections: 10,
            max_connections_per_client: 10,
            http2_max_streams: 10,
        }
    }

    #[test]
    fn a_new_connection_has_the_header_timeout_and_a_busy_one_none() {
        let activity = Arc::new(Activity::new());
        assert_eq!(
            activity.deadline(&limits(), false),
            Some((2000, "header timeout"))
        );
        let busy = activity.begin();
        assert_eq!(activity.deadline(&limits(), false), None);
        assert_eq!(activity.deadline(&limits(), true), None);
        drop(busy);
        let (at, reason) = activity.deadline(&limits(), false).unwrap_or_default();
        assert_eq!(reason, "idle timeout");
        assert!((10_000..11_000).contains(&at), "{at}");
    }

    #[test]
    fn on_http1_the_first_byte_after_a_response_starts_the_header_timeout() {
        let activity = Arc::new(Activity::new());
        drop(activity.begin());
        activity.read_bytes();
        let (at, reason) = activity.deadline(&limits(), false).unwrap_or_default();
        assert_eq!(reason, "header timeout");
        assert!((2000..3000).contains(&at), "{at}");
        // HTTP/2 frames (PINGs, window updates) do not stop the idle clock.
        assert_eq!(
            activity.deadline(&limits(), true).map(|d| d.1),
            Some("idle timeout")
        );
    }
}

//! The request seam: every request the API answers, on every path (`/api`, `/apis`, `/v1beta1`,
//! discovery, `/openapi`, health, and the 401s, 404s, 429s and timeouts), passes
//! [`crate::Api::call`], which hands one [`RequestRecord`] to each [`RequestObserver`] when the
//! response head is ready (for a watch: when its stream starts). Metrics and the audit log attach
//! here, never per handler.
//!
//! Each observed request has a [`RequestId`]: its `Audit-ID` header, [`RequestId::current`]
//! while it is answered (log lines, a 5xx `Status`), and its record's `id`. A panic while
//! answering is caught here and answered 500.
//!
//! The server wires [`crate::metrics::Metrics`] and [`crate::failure_log::FailureLog`]. With
//! no observer (an [`crate::App`] of its own, as a test may build) the seam costs one branch:
//! no clock is read and nothing is allocated.

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use http::{HeaderValue, Method, StatusCode, Uri};

use kargo_api::request_info::RequestInfo;
use kargo_auth::rbac::UserInfo;

/// Sees every answered request.
pub trait RequestObserver: Send + Sync {
    /// Called when a request arrives at [`crate::Api::call`], before it is answered (the
    /// in-flight gauge); [`RequestObserver::request`] follows for the same request.
    fn started(&self, method: &Method) {
        let _ = method;
    }

    /// Called once per request, on the request's task before its response is sent: keep it
    /// cheap and never block.
    fn request(&self, record: &RequestRecord<'_>);

    /// Whether this observer reads [`RequestRecord::notes`]: then every request collects
    /// [`Notes`] (a task-local scope and the registry's [`touched`] recording); otherwise
    /// nothing of it is paid.
    ///
    /// [`touched`]: kargo_registry::touched
    fn wants_notes(&self) -> bool {
        false
    }
}

/// What only the parts a request passes through know, collected while it is answered (a
/// tokio task-local, filled on the request's own task) and handed to the observers in its
/// [`RequestRecord`]: the authentication failure and the authorization decision (from an
/// [`kargo_auth::observe::AuthObserver`] that calls [`note`]), the refusal a `Status` or a
/// Kargo error rendered, and every object the request wrote ([`kargo_registry::touched`]).
/// Never a credential or a body.
#[derive(Debug, Default, Clone)]
pub struct Notes {
    /// The user authentication found, by name (to tell the request's own authorization
    /// decisions from those it asks about another user, as a SubjectAccessReview does).
    pub authenticated: Option<String>,
    /// Why authentication failed, in kube-apiserver's words (never the credential).
    pub authentication_failure: Option<String>,
    /// The decision on the request's own user: the first one, or the first denial.
    pub decision: Option<Decision>,
    /// The reason and message of the refusal the request was answered with, if any.
    pub refusal: Option<Refusal>,
    /// Every object the request wrote, in order.
    pub touched: Vec<kargo_registry::touched::Touched>,
}

/// An authorization decision as the audit log records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Allowed or not.
    pub allowed: bool,
    /// RBAC's reason, or the refusal's message; may be empty (remembered allows).
    pub reason: String,
}

/// A refused request's `Status` reason (`NotFound`; empty for a Kargo error) and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// kube-apiserver's reason.
    pub reason: &'static str,
    /// The message the client got.
    pub message: String,
}

tokio::task_local! {
    static NOTES: std::cell::RefCell<Notes>;
}

/// Adds to the notes of the request this task is answering; does nothing when no observer
/// wants notes (one failed task-local lookup).
pub fn note(add: impl FnOnce(&mut Notes)) {
    let _ = NOTES.try_with(|notes| add(&mut notes.borrow_mut()));
}

/// Runs `answer` collecting its [`Notes`]; the objects it writes too when it `may_write` (a
/// GET, HEAD or OPTIONS writes nothing, and is spared the recording).
pub(crate) async fn with_notes<F: std::future::Future>(
    answer: F,
    may_write: bool,
) -> (F::Output, Notes) {
    NOTES
        .scope(std::cell::RefCell::new(Notes::default()), async move {
            let (output, touched) = if may_write {
                kargo_registry::touched::recording(answer).await
            } else {
                (answer.await, Vec::new())
            };
            let mut notes = NOTES.with(|n| n.take());
            notes.touched = touched;
            (output, notes)
        })
        .await
}

/// What one request was and how it was answered.
///
/// For `/api` and `/apis` the attributes are kube-apiserver's (`RequestInfo`); every other path
/// (Kargo's `/v1beta1`, discovery, health, `/openapi`, `/version`) is a non-resource request: the
/// verb is the lowercase method and the resource attributes are empty.
#[derive(Debug, Clone)]
pub struct RequestRecord<'a> {
    /// The request's id: the `Audit-ID` response header, the audit event's `auditID` and the
    /// `request_id` of its log lines.
    pub id: RequestId,
    /// Who made it; `None` when it was not authenticated (or never reached authentication).
    pub user: Option<&'a UserInfo>,
    /// What it asked for, as kube-apiserver reads the path: verb, API group, resource,
    /// subresource, namespace, name (empty for a non-resource request, whose verb is the
    /// lowercase method) and the path itself (without the query).
    pub info: &'a RequestInfo<'a>,
    /// The HTTP method.
    pub method: &'a Method,
    /// The request's URI as it arrived: path and query.
    pub uri: &'a Uri,
    /// The `User-Agent` header, when there was one.
    pub user_agent: Option<&'a HeaderValue>,
    /// The status code answered.
    pub status: StatusCode,
    /// From the start of [`crate::Api::call`] until the response head was ready.
    pub duration: Duration,
    /// The client's address, when the listener knows it.
    pub source: Option<SocketAddr>,
    /// What the parts the request passed through noted; `None` unless an observer
    /// [wants them](RequestObserver::wants_notes).
    pub notes: Option<&'a Notes>,
}

/// A request's id, unique within and across the server's runs: a random 64-bit prefix drawn
/// once per process and a counter, written in the shape of a UUID (as kube-apiserver's
/// `Audit-ID`). Drawing one costs an atomic increment, not a random number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestId {
    prefix: u64,
    count: u64,
}

thread_local! {
    /// The id of the request whose answer this thread is polling (see [`RequestId::current`]):
    /// set by [`Answering`] around each poll, so it follows the request's task as a task-local
    /// would, at the cost of two thread-local writes per poll and no wrapper future.
    static CURRENT: std::cell::Cell<Option<RequestId>> = const { std::cell::Cell::new(None) };
    /// The user [`Observers::note_user`] named during the poll in progress, which [`Answering`]
    /// takes after each poll.
    static NOTED_USER: std::cell::RefCell<Option<Arc<UserInfo>>> = const { std::cell::RefCell::new(None) };
}

/// A request's answer as [`crate::Api::call`] polls it: with its [`RequestId`] current for each
/// poll, and a panic caught and returned (as `Err`) rather than unwinding into the connection.
/// One wrapper around a boxed future, so that nothing kilobytes long is moved to set it up.
pub(crate) struct Answering<F> {
    id: RequestId,
    inner: F,
    user: Option<Arc<UserInfo>>,
}

impl<F: std::future::Future + Unpin> Answering<F> {
    /// `inner` answered as request `id`.
    pub(crate) fn new(id: RequestId, inner: F) -> Answering<F> {
        Answering {
            id,
            inner,
            user: None,
        }
    }
}

impl<F: std::future::Future + Unpin> std::future::Future for Answering<F> {
    /// The answer (or the panic), and the user the request was authenticated as, if any.
    type Output = (std::thread::Result<F::Output>, Option<Arc<UserInfo>>);

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let previous = CURRENT.replace(Some(self.id));
        let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            std::pin::Pin::new(&mut self.inner).poll(cx)
        }));
        CURRENT.set(previous);
        if let Some(user) = NOTED_USER.take() {
            self.user = Some(user);
        }
        match polled {
            Ok(std::task::Poll::Ready(output)) => {
                std::task::Poll::Ready((Ok(output), self.user.take()))
            }
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Err(panic) => std::task::Poll::Ready((Err(panic), self.user.take())),
        }
    }
}

/// The process's prefix of request ids.
static PREFIX: LazyLock<u64> = LazyLock::new(|| {
    let bytes = *uuid::Uuid::new_v4().as_bytes();
    u64::from_le_bytes(bytes[..8].try_into().unwrap_or_default())
});
static COUNT: AtomicU64 = AtomicU64::new(0);

impl RequestId {
    /// The next id.
    pub fn next() -> RequestId {
        RequestId {
            prefix: *PREFIX,
            count: COUNT.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// The id's text, `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` in lowercase hexadecimal, written
    /// without an allocation (it is drawn for every request).
    pub fn text(&self) -> [u8; 36] {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [b'-'; 36];
        let digits = (u128::from(self.prefix) << 64) | u128::from(self.count);
        let mut nibble = 32;
        for (at, slot) in out.iter_mut().enumerate() {
            if matches!(at, 8 | 13 | 18 | 23) {
                continue;
            }
            nibble -= 1;
            *slot = HEX[((digits >> (nibble * 4)) & 0xf) as usize];
        }
        out
    }

    /// The id of the request being answered where this is called: set for the whole of
    /// [`crate::Api::call`]'s answer (handlers, authentication, the layers below, on the
    /// request's own task), so that every log line written meanwhile names it, as does a 5xx
    /// `Status`. `None` elsewhere (background tasks, a watch's stream once started, an app
    /// without observers).
    pub fn current() -> Option<RequestId> {
        CURRENT.get()
    }

    /// Runs `work` with this id as [`RequestId::current`] (for what is done for a request
    /// outside its [`Answering`] future, such as answering its panic).
    pub(crate) fn as_current<T>(self, work: impl FnOnce() -> T) -> T {
        let previous = CURRENT.replace(Some(self));
        let output = work();
        CURRENT.set(previous);
        output
    }

    /// The id as a header value (`Audit-ID`).
    pub fn header_value(&self) -> HeaderValue {
        // Hexadecimal digits and dashes are always a valid header value.
        HeaderValue::from_bytes(&self.text()).unwrap_or(HeaderValue::from_static("unknown"))
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only ASCII is written.
        f.write_str(std::str::from_utf8(&self.text()).unwrap_or("unknown"))
    }
}

/// The name of the response header that carries the request's id, as kube-apiserver names it.
pub const AUDIT_ID_HEADER: &str = "audit-id";

/// The observers of an [`crate::App`]; empty by default.
#[derive(Clone, Default)]
pub struct Observers(Vec<Arc<dyn RequestObserver>>, bool);

impl Observers {
    /// These observers, each called in order for every request.
    pub fn new(observers: Vec<Arc<dyn RequestObserver>>) -> Observers {
        let notes = observers.iter().any(|o| o.wants_notes());
        Observers(observers, notes)
    }

    /// Whether there is none (then requests are not observed at all).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether an observer wants [`Notes`].
    pub fn wants_notes(&self) -> bool {
        self.1
    }

    /// These observers and `observer` after them.
    pub fn with(mut self, observer: Arc<dyn RequestObserver>) -> Observers {
        self.1 |= observer.wants_notes();
        self.0.push(observer);
        self
    }

    /// Tells every observer that a request of `method` arrived.
    pub(crate) fn started(&self, method: &Method) {
        for observer in &self.0 {
            observer.started(method);
        }
    }

    /// Hands `record` to every observer.
    pub(crate) fn request(&self, record: &RequestRecord<'_>) {
        for observer in &self.0 {
            observer.request(record);
        }
    }

    /// Notes who makes the request, for [`crate::Api::call`] to put in its record (whoever
    /// authenticates knows the user; `call` does not): kept for the [`Answering`] future being
    /// polled, not on the response (whose extensions would cost an allocation). Nothing is done
    /// when there is no observer.
    pub(crate) fn note_user(&self, user: &Arc<UserInfo>) {
        if !self.is_empty() {
            NOTED_USER.set(Some(user.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_distinct_and_shaped_as_uuids() {
        let (a, b) = (RequestId::next(), RequestId::next());
        assert_ne!(a, b);
        for id in [a, b] {
            let text = id.to_string();
            let lengths: Vec<usize> = text.split('-').map(str::len).collect();
            assert_eq!(lengths, [8, 4, 4, 4, 12], "{text}");
            assert!(
                text.chars().all(|c| c == '-' || c.is_ascii_hexdigit()),
                "{text}"
            );
            assert_eq!(id.header_value().to_str().unwrap(), text);
        }
        let id = RequestId {
            prefix: 0x0123_4567_89ab_cdef,
            count: 0xfedc_ba98_7654_3210,
        };
        assert_eq!(id.to_string(), "01234567-89ab-cdef-fedc-ba9876543210");
    }
}

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

    /// Whether this observer reads [`RequestRecord::notes`] of a request that may write
    /// (`mutating`: any method but GET, HEAD and OPTIONS) or of one that may not: then such
    /// requests collect [`Notes`] (and a request that may write, the registry's [`touched`]
    /// recording); otherwise nothing of it is paid. An authentication failure is noted
    /// whatever this says ([`note_authentication_failure`]).
    ///
    /// [`touched`]: kargo_registry::touched
    fn wants_notes(&self, mutating: bool) -> bool {
        let _ = mutating;
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
    /// The authenticated user, when the request impersonated another (the record's user).
    pub impersonator: Option<UserInfo>,
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

/// Adds to the notes of the request being answered on this thread; does nothing when no
/// observer wants notes (one thread-local lookup).
pub fn note(add: impl FnOnce(&mut Notes)) {
    NOTES.with_borrow_mut(|notes| {
        if let Some(notes) = notes {
            add(notes);
        }
    });
}

/// Notes why authentication failed, also for a request that collects no other notes (a read
/// is audited at the metadata level only when it fails authentication). Does nothing outside
/// a request's answer.
pub fn note_authentication_failure(reason: String) {
    if CURRENT.get().is_none() {
        return;
    }
    NOTES.with_borrow_mut(|notes| {
        notes
            .get_or_insert_with(Notes::default)
            .authentication_failure = Some(reason);
    });
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
    /// The [`Notes`] of the request whose answer this thread is polling, when an observer
    /// wants them: moved here by [`Answering`] for each poll and back after it, as a task-local
    /// would be, without a wrapper future of its own.
    static NOTES: std::cell::RefCell<Option<Notes>> = const { std::cell::RefCell::new(None) };
}

pin_project_lite::pin_project! {
    /// A request's answer as [`crate::Api::call`] polls it: with its [`RequestId`] current for
    /// each poll (and its [`Notes`], when wanted), and a panic caught and returned (as `Err`)
    /// rather than unwinding into the connection. A future of its own, holding the answer in
    /// place: boxing it, or an `async fn` wrapper, would copy the answer's future (kilobytes)
    /// on every request.
    pub(crate) struct Answering<F> {
        id: RequestId,
        #[pin]
        inner: F,
        user: Option<Arc<UserInfo>>,
        notes: Option<Notes>,
    }
}

/// What [`Answering`] yields: the answer (or the panic), the user the request was
/// authenticated as, if any, and its [`Notes`] if they were collected.
pub(crate) type Answered<T> = (std::thread::Result<T>, Option<Arc<UserInfo>>, Option<Notes>);

impl<F: std::future::Future> Answering<F> {
    /// `inner` answered as request `id`, collecting its [`Notes`] when `notes` (and its
    /// authentication failure in any case).
    pub(crate) fn new(id: RequestId, inner: F, notes: bool) -> Answering<F> {
        Answering {
            id,
            inner,
            user: None,
            notes: notes.then(Notes::default),
        }
    }
}

impl<F: std::future::Future> std::future::Future for Answering<F> {
    type Output = Answered<F::Output>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let this = self.project();
        let previous = CURRENT.replace(Some(*this.id));
        if this.notes.is_some() {
            NOTES.set(this.notes.take());
        }
        let inner = this.inner;
        let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.poll(cx)));
        CURRENT.set(previous);
        // Taken whether or not the request collects notes: an authentication failure is noted
        // anyway.
        *this.notes = NOTES.take();
        if let Some(user) = NOTED_USER.take() {
            *this.user = Some(user);
        }
        let output = match polled {
            Ok(std::task::Poll::Ready(output)) => Ok(output),
            Ok(std::task::Poll::Pending) => return std::task::Poll::Pending,
            Err(panic) => Err(panic),
        };
        std::task::Poll::Ready((output, this.user.take(), this.notes.take()))
    }
}

/// Whether a request of `method` may change something: any method but GET, HEAD and OPTIONS.
pub fn is_mutating(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The process's prefix of request ids.
static PREFIX: LazyLock<u64> = LazyLock::new(|| {
    let bytes = *uuid::Uuid::new_v4().as_bytes();
    u64::from_le_bytes(bytes[..8].try_into().unwrap_or_default())
});
/// The first count not yet handed to a thread.
static COUNT: AtomicU64 = AtomicU64::new(0);
/// How many counts a thread takes at once: a shared counter written by every request from
/// every thread would pass its cache line between the cores on each.
const COUNT_BLOCK: u64 = 1024;

thread_local! {
    /// This thread's next count and the end of its block.
    static COUNTS: std::cell::Cell<(u64, u64)> = const { std::cell::Cell::new((0, 0)) };
}

impl RequestId {
    /// The next id: unique, and increasing on each thread (not across threads).
    pub fn next() -> RequestId {
        let (mut next, mut end) = COUNTS.get();
        if next == end {
            next = COUNT.fetch_add(COUNT_BLOCK, Ordering::Relaxed);
            end = next + COUNT_BLOCK;
        }
        COUNTS.set((next + 1, end));
        RequestId {
            prefix: *PREFIX,
            count: next,
        }
    }

    /// The id's text, `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` in lowercase hexadecimal, written
    /// without an allocation (it is drawn for every request).
    pub fn text(&self) -> [u8; 36] {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.prefix.to_be_bytes());
        bytes[8..].copy_from_slice(&self.count.to_be_bytes());
        let mut out = [b'-'; 36];
        let mut at = 0;
        for (i, byte) in bytes.into_iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                at += 1;
            }
            out[at] = HEX[usize::from(byte >> 4)];
            out[at + 1] = HEX[usize::from(byte & 0xf)];
            at += 2;
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

/// The response header that carries the request's id, as kube-apiserver names it.
pub const AUDIT_ID_HEADER: http::HeaderName = http::HeaderName::from_static("audit-id");

/// The observers of an [`crate::App`]; empty by default.
#[derive(Clone, Default)]
pub struct Observers {
    observers: Vec<Arc<dyn RequestObserver>>,
    /// Whether an observer wants the [`Notes`] of a request that may not write, and of one
    /// that may.
    notes: [bool; 2],
}

impl Observers {
    /// These observers, each called in order for every request.
    pub fn new(observers: Vec<Arc<dyn RequestObserver>>) -> Observers {
        observers
            .into_iter()
            .fold(Observers::default(), |all, observer| all.with(observer))
    }

    /// Whether there is none (then requests are not observed at all).
    pub fn is_empty(&self) -> bool {
        self.observers.is_empty()
    }

    /// Whether an observer wants the [`Notes`] of a request of `method`.
    pub fn wants_notes(&self, method: &Method) -> bool {
        self.notes[usize::from(is_mutating(method))]
    }

    /// These observers and `observer` after them.
    pub fn with(mut self, observer: Arc<dyn RequestObserver>) -> Observers {
        for (mutating, wanted) in self.notes.iter_mut().enumerate() {
            *wanted |= observer.wants_notes(mutating == 1);
        }
        self.observers.push(observer);
        self
    }

    /// Tells every observer that a request of `method` arrived.
    pub(crate) fn started(&self, method: &Method) {
        for observer in &self.observers {
            observer.started(method);
        }
    }

    /// Hands `record` to every observer.
    pub(crate) fn request(&self, record: &RequestRecord<'_>) {
        for observer in &self.observers {
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

    /// `user`, noted for the request's record when the returned guard is dropped: moved there
    /// rather than cloned, for the hot path (a token's user is shared by all its requests, and
    /// each clone and drop would write its count from every thread).
    pub(crate) fn note_user_at_end(&self, user: Arc<UserInfo>) -> NotedUser {
        NotedUser {
            user: Some(user),
            note: !self.is_empty(),
        }
    }
}

/// A request's authenticated user ([`Observers::note_user_at_end`]): dereferences to it, and
/// notes it for the request's record when dropped — at the end of the answer, or while a
/// panic unwinds it. Dropped outside a request's answer (a connection closed mid-answer), it
/// notes nothing.
pub(crate) struct NotedUser {
    /// `Some` until dropped.
    user: Option<Arc<UserInfo>>,
    note: bool,
}

impl NotedUser {
    /// The user, shared (for a request's extensions).
    pub(crate) fn shared(&self) -> Arc<UserInfo> {
        match &self.user {
            Some(user) => Arc::clone(user),
            None => unreachable!("a NotedUser holds its user until dropped"),
        }
    }
}

impl std::ops::Deref for NotedUser {
    type Target = UserInfo;

    fn deref(&self) -> &UserInfo {
        match &self.user {
            Some(user) => user,
            None => unreachable!("a NotedUser holds its user until dropped"),
        }
    }
}

impl Drop for NotedUser {
    fn drop(&mut self) {
        if self.note && CURRENT.get().is_some() {
            NOTED_USER.set(self.user.take());
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

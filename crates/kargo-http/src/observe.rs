//! The request seam: every request the API answers, on every path (`/api`, `/apis`, `/v1beta1`,
//! discovery, `/openapi`, health, and the 401s, 404s, 429s and timeouts), passes
//! [`crate::Api::call`], which hands one [`RequestRecord`] to each [`RequestObserver`] when the
//! response head is ready (for a watch: when its stream starts). Metrics and the audit log attach
//! here, never per handler.
//!
//! With no observer (the server wires none today) the seam costs one branch: no clock is read
//! and nothing is allocated.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::response::Response;
use http::{Method, StatusCode};

use kargo_api::request_info::RequestInfo;
use kargo_auth::rbac::UserInfo;

/// Sees every answered request.
pub trait RequestObserver: Send + Sync {
    /// Called once per request, on the request's task before its response is sent: keep it
    /// cheap and never block.
    fn request(&self, record: &RequestRecord<'_>);
}

/// What one request was and how it was answered.
///
/// For `/api` and `/apis` the attributes are kube-apiserver's (`RequestInfo`); every other path
/// (Kargo's `/v1beta1`, discovery, health, `/openapi`, `/version`) is a non-resource request: the
/// verb is the lowercase method and the resource attributes are empty.
#[derive(Debug, Clone)]
pub struct RequestRecord<'a> {
    /// Who made it; `None` when it was not authenticated (or never reached authentication).
    pub user: Option<&'a UserInfo>,
    /// What it asked for, as kube-apiserver reads the path: verb, API group, resource,
    /// subresource, namespace, name (empty for a non-resource request, whose verb is the
    /// lowercase method) and the path itself (without the query).
    pub info: &'a RequestInfo<'a>,
    /// The HTTP method.
    pub method: &'a Method,
    /// The status code answered.
    pub status: StatusCode,
    /// From the start of [`crate::Api::call`] until the response head was ready.
    pub duration: Duration,
    /// The client's address, when the listener knows it.
    pub source: Option<SocketAddr>,
}

/// The observers of an [`crate::App`]; empty by default.
#[derive(Clone, Default)]
pub struct Observers(Vec<Arc<dyn RequestObserver>>);

impl Observers {
    /// These observers, each called in order for every request.
    pub fn new(observers: Vec<Arc<dyn RequestObserver>>) -> Observers {
        Observers(observers)
    }

    /// Whether there is none (then requests are not observed at all).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Hands `record` to every observer.
    pub(crate) fn request(&self, record: &RequestRecord<'_>) {
        for observer in &self.0 {
            observer.request(record);
        }
    }

    /// Notes on `response` who made the request, for [`crate::Api::call`] to put in its record
    /// (the authenticating handler or middleware knows the user; `call` does not). Nothing is
    /// done when there is no observer.
    pub(crate) fn note_user(&self, mut response: Response, user: &Arc<UserInfo>) -> Response {
        if !self.is_empty() {
            response
                .extensions_mut()
                .insert(AuthenticatedUser(user.clone()));
        }
        response
    }
}

/// The user that [`Observers::note_user`] put on a response.
#[derive(Clone)]
pub(crate) struct AuthenticatedUser(pub(crate) Arc<UserInfo>);

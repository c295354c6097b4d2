//! The source address of a request (set by the listener, see `serve.rs`) and the 429 answers of
//! the authentication limits (`auth::limits`): a Kubernetes `Status` with reason
//! `TooManyRequests` and `details.retryAfterSeconds`, or Kargo's `{"error": ...}`, both with a
//! `Retry-After` header in seconds.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode};

use super::kargo::KargoError;
use crate::StatusResponse;
use kargo_registry::status::{Details, Status};

/// The client's address, if the listener recorded it.
pub(crate) fn client_address(extensions: &http::Extensions) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| address.ip())
}

/// [`client_address`] as an extractor (never rejects).
pub(crate) struct ClientAddress(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _state: &S,
    ) -> Result<ClientAddress, Self::Rejection> {
        Ok(ClientAddress(client_address(&parts.extensions)))
    }
}

fn with_retry_after(mut response: Response, retry_after: u32) -> Response {
    response
        .headers_mut()
        .insert(http::header::RETRY_AFTER, HeaderValue::from(retry_after));
    response
}

/// 429 as a Kubernetes `Status`, as kube-apiserver answers when it asks a client to back off.
pub(crate) fn kube_too_many(message: String, retry_after: u32) -> Response {
    let status = Status::failure(429, "TooManyRequests", message).with_details(Some(Details {
        retry_after_seconds: Some(retry_after),
        ..Details::default()
    }));
    with_retry_after(status.into_response(), retry_after)
}

/// 429 as a Kargo error.
pub(crate) fn kargo_too_many(message: String, retry_after: u32) -> Response {
    with_retry_after(
        KargoError::new(StatusCode::TOO_MANY_REQUESTS, message).into_response(),
        retry_after,
    )
}

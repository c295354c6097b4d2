//! `--metrics-address`: `/metrics` on plain HTTP, for a Prometheus that scrapes inside a
//! private network without a token (bind it to a loopback or private address: the metrics
//! name resources and users' kinds, never a user or a secret, but they are not public).
//!
//! Bounded as a hostile client requires, and simpler than the main listener since it answers
//! one cheap request per connection: at most [`MAX_CONNECTIONS`] at once (more are closed as
//! soon as they are accepted), HTTP/1.1 only, the request header within [`HEADER_TIMEOUT`],
//! no keep-alive, and the whole connection within [`CONNECTION_TIMEOUT`].

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use http::{Method, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::{CONTENT_TYPE, Metrics};

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 16;
/// Time to send the request header.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Time a connection may take in all.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `GET /metrics` on `listener` until `shutdown`; every other request gets 404.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, shutdown: CancellationToken) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics listener: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => return,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let service = hyper::service::service_fn(move |request: hyper::Request<_>| {
                let response = answer(&metrics, request.method(), request.uri().path());
                async move { Ok::<_, std::convert::Infallible>(response) }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .keep_alive(false);
            let connection = builder.serve_connection(TokioIo::new(tcp), service);
            let _ = tokio::time::timeout(CONNECTION_TIMEOUT, connection).await;
        });
    }
}

fn answer(metrics: &Metrics, method: &Method, path: &str) -> Response<Body> {
    let (status, content_type, body) = match (method, path) {
        (&Method::GET, "/metrics") => (StatusCode::OK, CONTENT_TYPE, metrics.encode()),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "404 page not found\n".to_owned(),
        ),
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    if let Ok(value) = http::HeaderValue::from_str(content_type) {
        response
            .headers_mut()
            .insert(http::header::CONTENT_TYPE, value);
    }
    response
}

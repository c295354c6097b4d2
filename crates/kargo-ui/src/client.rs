//! The pages' way to the API: in-process requests through [`kargo_http::Api::call`] (the request
//! seam every client's request passes), with the signed-in user's bearer token and the
//! browser's address. So the UI has exactly the CLI's handlers, authorization, limits, audit
//! and metrics.

use std::net::SocketAddr;

use http::{Method, StatusCode};
use serde_json::{Value, json};

/// The most of an API answer the pages read.
const MAX_ANSWER: usize = 32 * 1024 * 1024;

/// A refused or failed API call, as the pages show it.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    /// The API's status code.
    pub(crate) code: StatusCode,
    /// The API's own message (`{"error": ...}` or a `Status`'s `message`).
    pub(crate) message: String,
}

impl ApiError {
    /// A sentence for the page: what the API said, with what its code means to a person.
    pub(crate) fn sentence(&self) -> String {
        match self.code {
            StatusCode::FORBIDDEN => format!("You are not allowed to do this: {}", self.message),
            StatusCode::UNAUTHORIZED => {
                format!("Your sign-in is no longer valid: {}", self.message)
            }
            StatusCode::NOT_FOUND => format!("Not found: {}", self.message),
            StatusCode::TOO_MANY_REQUESTS => format!("Too many requests: {}", self.message),
            _ => self.message.clone(),
        }
    }
}

/// The API, as one signed-in user calls it.
#[derive(Clone)]
pub(crate) struct Client {
    api: kargo_http::Api,
    token: String,
    source: Option<SocketAddr>,
}

impl Client {
    /// Calls `api` with `token`, as from `source`.
    pub(crate) fn new(api: kargo_http::Api, token: String, source: Option<SocketAddr>) -> Client {
        Client { api, token, source }
    }

    /// `GET path`.
    pub(crate) async fn get(&self, path: &str) -> Result<Value, ApiError> {
        self.send(Method::GET, path, None).await
    }

    /// `POST path` with a JSON body.
    pub(crate) async fn post(&self, path: &str, body: Value) -> Result<Value, ApiError> {
        self.send(Method::POST, path, Some(body)).await
    }

    /// A request; the answer's JSON (`null` when empty) or the error it carries.
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, ApiError> {
        send(
            &self.api,
            method,
            path,
            Some(&self.token),
            body,
            self.source,
        )
        .await
    }

    /// Whether the user may `verb` `resource` (of API group `group`) in `namespace` (`""`: at
    /// the cluster scope): a `SelfSubjectAccessReview`, the question `kubectl auth can-i` asks.
    /// Used only to leave out what would be refused; the API still decides every action.
    pub(crate) async fn can(
        &self,
        verb: &str,
        group: &str,
        resource: &str,
        namespace: &str,
    ) -> bool {
        let review = json!({
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {
                "namespace": namespace, "verb": verb, "group": group, "resource": resource,
            }},
        });
        self.post(
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            review,
        )
        .await
        .is_ok_and(|answer| answer["status"]["allowed"] == json!(true))
    }
}

/// One request to `api`, with a bearer `credential` (a token, or the admin password for
/// `POST /v1beta1/login`).
pub(crate) async fn send(
    api: &kargo_http::Api,
    method: Method,
    path: &str,
    credential: Option<&str>,
    body: Option<Value>,
    source: Option<SocketAddr>,
) -> Result<Value, ApiError> {
    let mut request = http::Request::builder().method(method).uri(path);
    if let Some(credential) = credential {
        request = request.header(http::header::AUTHORIZATION, format!("Bearer {credential}"));
    }
    let bytes = match &body {
        Some(body) => {
            request = request.header(http::header::CONTENT_TYPE, "application/json");
            body.to_string().into_bytes()
        }
        None => Vec::new(),
    };
    let request = request
        .body(axum::body::Body::from(bytes))
        .map_err(|e| internal(format!("building a request: {e}")))?;
    let response = api.clone().call(request, source).await;
    let code = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), MAX_ANSWER)
        .await
        .map_err(|e| internal(format!("reading the answer: {e}")))?;
    let value: Value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    };
    if code.is_success() {
        return Ok(value);
    }
    let message = value["error"]
        .as_str()
        .or(value["message"].as_str())
        .map(str::to_owned)
        .unwrap_or_else(|| code.canonical_reason().unwrap_or("error").to_owned());
    Err(ApiError { code, message })
}

fn internal(message: String) -> ApiError {
    ApiError {
        code: StatusCode::INTERNAL_SERVER_ERROR,
        message,
    }
}

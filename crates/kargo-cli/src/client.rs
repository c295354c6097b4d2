//! Sends [`Request`]s to the Kargo API server over HTTPS and turns every failure into one line a
//! user can act on: the server's own `{"error": ...}` message, or what went wrong on the way
//! (connection refused, TLS, timeout).

use std::time::Duration;

use serde_json::Value;

use crate::api::{Method, Request};

/// How to check the server's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tls {
    /// Against the system's trusted roots.
    System,
    /// Against this CA only (PEM).
    CertificateAuthority(Vec<u8>),
    /// Not at all (`--insecure-skip-tls-verify`).
    Insecure,
}

/// Where and how to reach the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// `https://host:port`, no trailing slash.
    pub address: String,
    /// The bearer token, if any.
    pub token: Option<String>,
    /// Certificate checking.
    pub tls: Tls,
}

/// A call to the API server failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No address or token configured.
    #[error("seems like you are not logged in; please use `kargo login` to authenticate")]
    NotLoggedIn,
    /// The address is not an `https://` URL.
    #[error("invalid server address {address:?}: {reason}")]
    InvalidAddress {
        /// The address.
        address: String,
        /// Why.
        reason: String,
    },
    /// The configured CA is not a PEM certificate.
    #[error("invalid certificate authority: {reason}")]
    InvalidCertificateAuthority {
        /// Why.
        reason: String,
    },
    /// The TCP connection failed.
    #[error("cannot connect to the Kargo API server at {address}: {reason}")]
    Connect {
        /// The address.
        address: String,
        /// Why (`connection refused`).
        reason: String,
    },
    /// The TLS handshake failed (most often: the server's certificate is not trusted).
    #[error(
        "TLS handshake with {address} failed: {reason} (log in with --certificate-authority FILE, or --insecure-skip-tls-verify)"
    )]
    Tls {
        /// The address.
        address: String,
        /// The TLS library's message.
        reason: String,
    },
    /// No answer in time.
    #[error("the Kargo API server at {address} did not answer within {seconds}s")]
    Timeout {
        /// The address.
        address: String,
        /// The limit.
        seconds: u64,
    },
    /// The server answered with an error: its message, and for a server error (5xx) a second
    /// line `request id: <id>` (the answer's `Audit-ID`), which finds the server's log line
    /// and audit event of the request.
    #[error("{message}{}", request_id.as_ref().map(|id| format!("\nrequest id: {id}")).unwrap_or_default())]
    Api {
        /// The HTTP status.
        status: u16,
        /// The server's message.
        message: String,
        /// The request's id, for a server error.
        request_id: Option<String>,
    },
    /// The server answered something that is not the expected JSON.
    #[error("unexpected answer from {address} (HTTP {status}): {reason}")]
    Unexpected {
        /// The address.
        address: String,
        /// The HTTP status.
        status: u16,
        /// What was wrong.
        reason: String,
    },
}

const TIMEOUT: Duration = Duration::from_secs(60);

/// The response header with the request's id (the server's `observe::AUDIT_ID_HEADER`, as
/// kube-apiserver names it).
const AUDIT_ID: &str = "audit-id";

impl ClientError {
    /// This error with the id of the request that got it, when it is a server error (5xx): the
    /// id an operator looks up. A client error (4xx) says what to change; its id adds nothing.
    fn naming_request(self, id: Option<String>) -> ClientError {
        match self {
            ClientError::Api {
                status, message, ..
            } if status >= 500 => ClientError::Api {
                status,
                message,
                request_id: id,
            },
            other => other,
        }
    }
}

/// A client of one server.
pub struct Client {
    runtime: tokio::runtime::Runtime,
    http: reqwest::Client,
    connection: Connection,
}

impl Client {
    /// A client for this connection.
    pub fn new(connection: Connection) -> Result<Client, ClientError> {
        let address = &connection.address;
        let invalid = |reason: &str| ClientError::InvalidAddress {
            address: address.clone(),
            reason: reason.to_owned(),
        };
        let url = reqwest::Url::parse(address).map_err(|e| invalid(&e.to_string()))?;
        if url.scheme() != "https" {
            return Err(invalid("the Kargo API is served over https only"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(invalid("no host"));
        }
        let mut builder = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("kargo/", env!("CARGO_PKG_VERSION")));
        builder = match &connection.tls {
            Tls::System => builder,
            Tls::Insecure => builder.danger_accept_invalid_certs(true),
            Tls::CertificateAuthority(pem) => {
                let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
                    ClientError::InvalidCertificateAuthority {
                        reason: root_cause(&e),
                    }
                })?;
                if certs.is_empty() {
                    return Err(ClientError::InvalidCertificateAuthority {
                        reason: "no PEM certificate found".to_owned(),
                    });
                }
                builder.tls_certs_only(certs)
            }
        };
        let http = builder
            .build()
            .map_err(|e| ClientError::InvalidCertificateAuthority {
                reason: root_cause(&e),
            })?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ClientError::Connect {
                address: address.clone(),
                reason: e.to_string(),
            })?;
        Ok(Client {
            runtime,
            http,
            connection,
        })
    }

    /// Sends a request with the connection's token; returns the JSON body (`Null` when empty).
    pub fn send(&self, request: &Request) -> Result<Value, ClientError> {
        let token = self.connection.token.clone();
        self.send_with(request, token.as_deref())
    }

    /// Sends a request with this bearer value (the password, for login).
    pub fn send_with(&self, request: &Request, bearer: Option<&str>) -> Result<Value, ClientError> {
        let address = self.connection.address.clone();
        let url = format!("{address}{}", request.path);
        let method = match request.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Delete => reqwest::Method::DELETE,
        };
        let mut builder = self.http.request(method, url);
        if let Some(bearer) = bearer {
            builder = builder.bearer_auth(bearer);
        }
        if let Some(body) = &request.body {
            builder = builder.json(body);
        }
        self.runtime.block_on(async {
            let response = builder
                .send()
                .await
                .map_err(|e| transport_error(&address, &e))?;
            let status = response.status().as_u16();
            let request_id = response
                .headers()
                .get(AUDIT_ID)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let bytes = response
                .bytes()
                .await
                .map_err(|e| transport_error(&address, &e))?;
            decode(&address, status, &bytes).map_err(|e| e.naming_request(request_id))
        })
    }
}

impl Client {
    /// POSTs `fields` form-encoded to `path` with no credentials (the token exchange), and
    /// returns the JSON answer; an RFC 6749 error answer becomes `<error>: <error_description>`.
    pub fn send_form(&self, path: &str, fields: &[(&str, &str)]) -> Result<Value, ClientError> {
        let address = self.connection.address.clone();
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let builder = self
            .http
            .post(format!("{address}{path}"))
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body);
        self.runtime.block_on(async {
            let response = builder
                .send()
                .await
                .map_err(|e| transport_error(&address, &e))?;
            let status = response.status().as_u16();
            let bytes = response
                .bytes()
                .await
                .map_err(|e| transport_error(&address, &e))?;
            let json: Option<Value> = serde_json::from_slice(&bytes).ok();
            if !(200..300).contains(&status)
                && let Some(error) = json.as_ref().and_then(|j| j.get("error")?.as_str())
            {
                let description = json
                    .as_ref()
                    .and_then(|j| j.get("error_description")?.as_str())
                    .unwrap_or("");
                return Err(ClientError::Api {
                    status,
                    message: format!("{error}: {description}"),
                    request_id: None,
                });
            }
            decode(&address, status, &bytes)
        })
    }
}

impl Client {
    /// Runs `future` on the client's runtime, which meanwhile also drives the tasks
    /// [`Client::spawn`] started (the watches of `kargo get -w`).
    pub(crate) fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// Starts a task on the client's runtime; it runs whenever [`Client::block_on`] does.
    pub(crate) fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        self.runtime.spawn(task);
    }

    /// What opens long-lived streams (watches) on this client's connection.
    pub(crate) fn streams(&self) -> Streams {
        Streams {
            http: self.http.clone(),
            connection: self.connection.clone(),
        }
    }
}

/// Opens streaming GETs (watches) with a client's connection and token; cheap to clone into a
/// task.
#[derive(Clone)]
pub(crate) struct Streams {
    http: reqwest::Client,
    connection: Connection,
}

impl Streams {
    /// A GET of `path` whose body is read as it comes, for up to `limit` (instead of the
    /// client's usual minute): the answer once its status says success, or the server's error.
    pub(crate) async fn open(
        &self,
        path: &str,
        limit: Duration,
    ) -> Result<reqwest::Response, ClientError> {
        let address = &self.connection.address;
        let mut builder = self.http.get(format!("{address}{path}")).timeout(limit);
        if let Some(token) = &self.connection.token {
            builder = builder.bearer_auth(token);
        }
        let response = builder
            .send()
            .await
            .map_err(|e| transport_error(address, &e))?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(response);
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| transport_error(address, &e))?;
        Err(decode(address, status, &bytes)
            .err()
            .unwrap_or_else(|| ClientError::Unexpected {
                address: address.clone(),
                status,
                reason: "the watch was refused".to_owned(),
            }))
    }

    /// The error of a stream that broke while being read.
    pub(crate) fn broken(&self, error: &reqwest::Error) -> ClientError {
        transport_error(&self.connection.address, error)
    }
}

/// The body of an answer, or the error it carries.
fn decode(address: &str, status: u16, body: &[u8]) -> Result<Value, ClientError> {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    if (200..300).contains(&status) {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        return json.ok_or_else(|| ClientError::Unexpected {
            address: address.to_owned(),
            status,
            reason: "the body is not JSON".to_owned(),
        });
    }
    // Kargo answers `{"error": "..."}`; Kubernetes routes answer a `Status` with a `message`.
    let message = json.as_ref().and_then(|j| {
        j.get("error")
            .or_else(|| j.get("message"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    Err(match message {
        Some(message) if !message.trim().is_empty() => ClientError::Api {
            status,
            message: one_line(&message),
            request_id: None,
        },
        _ => {
            let text = String::from_utf8_lossy(body);
            let first_line = text.lines().next().unwrap_or("").trim();
            ClientError::Unexpected {
                address: address.to_owned(),
                status,
                reason: if first_line.is_empty() {
                    "no error message".to_owned()
                } else {
                    first_line.chars().take(200).collect()
                },
            }
        }
    })
}

/// A server message on one line: Kubernetes puts each rule of an escalation refusal on a line
/// of its own, and the CLI promises one `Error:` line per failure.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Names what went wrong below HTTP: TLS, the connection, or time.
fn transport_error(address: &str, error: &reqwest::Error) -> ClientError {
    if error.is_timeout() {
        return ClientError::Timeout {
            address: address.to_owned(),
            seconds: TIMEOUT.as_secs(),
        };
    }
    for cause in causes(error) {
        if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
            return ClientError::Tls {
                address: address.to_owned(),
                reason: tls.to_string(),
            };
        }
    }
    ClientError::Connect {
        address: address.to_owned(),
        reason: root_cause(error),
    }
}

/// An error and its causes, outermost first. An IO error's `source()` skips the error it wraps,
/// so the walk steps into that one instead.
fn causes<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Vec<&'a (dyn std::error::Error + 'static)> {
    let mut out = Vec::new();
    let mut next = Some(error);
    while let Some(cause) = next {
        out.push(cause);
        next = match cause
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => cause.source(),
        };
    }
    out
}

/// The innermost cause's message; for IO errors, their kind (`connection refused`).
pub(crate) fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let chain = causes(error);
    let last = chain.last().copied().unwrap_or(error);
    if let Some(io) = last.downcast_ref::<std::io::Error>() {
        let kind = io.kind().to_string();
        if !matches!(kind.as_str(), "other error" | "uncategorized error") {
            return kind;
        }
    }
    last.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(status: u16, body: &str, expected: Result<Value, &str>) {
        let actual = decode("https://a", status, body.as_bytes()).map_err(|e| e.to_string());
        assert_eq!(actual, expected.map_err(str::to_owned), "{status} {body}");
    }

    #[test]
    fn answers_become_bodies_or_the_servers_message() {
        check(
            200,
            r#"{"idToken":"t"}"#,
            Ok(serde_json::json!({"idToken": "t"})),
        );
        check(204, "", Ok(Value::Null));
        check(
            404,
            r#"{"error":"projects.kargo.akuity.io \"p\" not found"}"#,
            Err("projects.kargo.akuity.io \"p\" not found"),
        );
        check(401, r#"{"error":"invalid token"}"#, Err("invalid token"));
        check(
            403,
            r#"{"error":"roles.rbac.authorization.k8s.io \"x\" is forbidden: user \"u\" is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\"]}\n{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"list\"]}"}"#,
            Err(
                "roles.rbac.authorization.k8s.io \"x\" is forbidden: user \"u\" is attempting to grant RBAC permissions not currently held: {APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\"]} {APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"list\"]}",
            ),
        );
        check(
            404,
            r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"the server could not find the requested resource","reason":"NotFound","code":404}"#,
            Err("the server could not find the requested resource"),
        );
        check(
            502,
            "<html>bad gateway</html>\nmore",
            Err("unexpected answer from https://a (HTTP 502): <html>bad gateway</html>"),
        );
        check(
            500,
            "",
            Err("unexpected answer from https://a (HTTP 500): no error message"),
        );
        check(
            200,
            "not json",
            Err("unexpected answer from https://a (HTTP 200): the body is not JSON"),
        );
    }

    #[test]
    fn a_server_error_names_its_request_on_a_line_of_its_own_and_a_client_error_does_not() {
        let failed = |status: u16| {
            let body = r#"{"error":"the storage backend is unavailable; try again"}"#;
            decode("https://a", status, body.as_bytes())
                .map(|_| ())
                .map_err(|e| e.naming_request(Some("0a-1".to_owned())).to_string())
        };
        assert_eq!(
            failed(503),
            Err("the storage backend is unavailable; try again\nrequest id: 0a-1".to_owned())
        );
        assert_eq!(
            failed(409),
            Err("the storage backend is unavailable; try again".to_owned())
        );
    }

    #[test]
    fn only_https_addresses_are_accepted() {
        let connection = |address: &str| Connection {
            address: address.to_owned(),
            token: None,
            tls: Tls::System,
        };
        let err = |address: &str| match Client::new(connection(address)) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        };
        assert_eq!(
            err("http://127.0.0.1:8443"),
            "invalid server address \"http://127.0.0.1:8443\": the Kargo API is served over https only"
        );
        assert_eq!(
            err("https://"),
            "invalid server address \"https://\": empty host"
        );
        assert_eq!(err("https://127.0.0.1:8443"), "");
    }

    #[test]
    fn a_certificate_authority_must_hold_a_pem_certificate() {
        let result = Client::new(Connection {
            address: "https://127.0.0.1:1".into(),
            token: None,
            tls: Tls::CertificateAuthority(b"not a certificate".to_vec()),
        });
        assert_eq!(
            result.err().map(|e| e.to_string()),
            Some("invalid certificate authority: no PEM certificate found".to_owned())
        );
    }
}

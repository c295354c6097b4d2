//! The local end of the redirect: a one-shot HTTP listener on `127.0.0.1:<port>` that waits for
//! the browser to come back to `/auth/callback?code=...&state=...`, checks the `state` and hands
//! the authorization code over.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// The callback's path (the redirect URI is `http://localhost:<port>/auth/callback`).
pub const PATH: &str = "/auth/callback";

/// The redirect URI for a port.
pub fn redirect_uri(port: u16) -> String {
    format!("http://localhost:{port}{PATH}")
}

/// Why the callback did not deliver a code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackError {
    /// The provider redirected back with `error=...` (the person declined, or the request was
    /// wrong).
    #[error("the OpenID provider refused the sign-in: {error}{}", description_suffix(.description))]
    Refused {
        /// `error` (e.g. `access_denied`).
        error: String,
        /// `error_description`, if any.
        description: Option<String>,
    },
    /// The `state` is not this login's: a stale or forged callback.
    #[error(
        "the sign-in callback's state does not match this login (a stale or forged redirect); run `kargo login --sso` again"
    )]
    StateMismatch,
    /// No `code`.
    #[error("the sign-in callback has no authorization code")]
    NoCode,
    /// Nobody came back in time.
    #[error(
        "no sign-in completed within {} (nothing came back to {redirect}); run `kargo login --sso` again",
        human(*.limit)
    )]
    Timeout {
        /// The limit.
        limit: Duration,
        /// The redirect URI that was waited on.
        redirect: String,
    },
    /// The listener failed.
    #[error("the sign-in callback listener failed: {0}")]
    Io(String),
}

/// `5 minutes`, `1 second`.
fn human(limit: Duration) -> String {
    let secs = limit.as_secs().max(1);
    let (n, unit) = if secs.is_multiple_of(60) {
        (secs / 60, "minute")
    } else {
        (secs, "second")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

fn description_suffix(description: &Option<String>) -> String {
    description
        .as_deref()
        .filter(|d| !d.is_empty())
        .map(|d| format!(" ({d})"))
        .unwrap_or_default()
}

/// The authorization code of a callback's request target (`/auth/callback?code=..&state=..`),
/// checked against the expected state. The state is checked first, so that nobody but the
/// provider this login went to can end it.
pub fn parse(target: &str, expected_state: &str) -> Result<String, CallbackError> {
    let query = target.split_once('?').map_or("", |(_, q)| q);
    let mut code = None;
    let mut state = None;
    let mut error = None;
    let mut description = None;
    for (key, value) in form_urlencoded_pairs(query) {
        let slot = match key.as_str() {
            "code" => &mut code,
            "state" => &mut state,
            "error" => &mut error,
            "error_description" => &mut description,
            _ => continue,
        };
        slot.get_or_insert(value);
    }
    if state.as_deref() != Some(expected_state) {
        return Err(CallbackError::StateMismatch);
    }
    if let Some(error) = error {
        return Err(CallbackError::Refused { error, description });
    }
    code.filter(|c| !c.is_empty()).ok_or(CallbackError::NoCode)
}

fn form_urlencoded_pairs(query: &str) -> Vec<(String, String)> {
    let url = reqwest::Url::parse(&format!("http://localhost/?{query}"));
    url.map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default()
}

/// Waits (until `timeout`) for the browser's request to the callback path on `listener`,
/// answers it with a short page, and returns the code or why there is none. Requests for other
/// paths (a browser's `/favicon.ico`) get a 404 and the wait goes on.
pub fn wait(
    listener: &TcpListener,
    expected_state: &str,
    timeout: Duration,
) -> Result<String, CallbackError> {
    let io = |e: std::io::Error| CallbackError::Io(crate::config::io_reason(&e));
    let port = listener.local_addr().map_err(io)?.port();
    listener.set_nonblocking(true).map_err(io)?;
    let deadline = Instant::now() + timeout;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                if let Some(outcome) = serve(stream, expected_state) {
                    return outcome;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    return Err(CallbackError::Timeout {
                        limit: timeout,
                        redirect: redirect_uri(port),
                    });
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(io(e)),
        }
    }
}

/// Answers one connection; `None` when it was not the callback.
fn serve(mut stream: TcpStream, expected_state: &str) -> Option<Result<String, CallbackError>> {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let head = read_head(&mut stream)?;
    let first = head.lines().next().unwrap_or("");
    let mut parts = first.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    if method != "GET" || path != PATH {
        respond(&mut stream, "404 Not Found", "Not found.\n");
        return None;
    }
    let outcome = parse(target, expected_state);
    match &outcome {
        Ok(_) => respond(
            &mut stream,
            "200 OK",
            "Signed in to Kargo. You can close this window and return to the terminal.\n",
        ),
        Err(e) => respond(
            &mut stream,
            "400 Bad Request",
            &format!("Sign-in failed: {e}\n"),
        ),
    }
    Some(outcome)
}

/// The request line and headers (up to 16 KiB); `None` when the client sent nothing usable.
fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 2048];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    (!buf.is_empty()).then(|| String::from_utf8_lossy(&buf).into_owned())
}

/// A plain-text answer (plain text: the error description came from the URL, so it is never
/// interpreted as HTML).
fn respond(stream: &mut TcpStream, status: &str, body: &str) {
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes());
    let _ = stream.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_callback_gives_its_code_only_with_this_logins_state() {
        let cases: [(&str, Result<&str, CallbackError>); 7] = [
            ("/auth/callback?code=abc%2F1&state=S", Ok("abc/1")),
            ("/auth/callback?state=S&code=abc&iss=x", Ok("abc")),
            (
                "/auth/callback?code=abc&state=T",
                Err(CallbackError::StateMismatch),
            ),
            ("/auth/callback?code=abc", Err(CallbackError::StateMismatch)),
            (
                "/auth/callback?error=access_denied&error_description=End-User+aborted+interaction&state=S",
                Err(CallbackError::Refused {
                    error: "access_denied".into(),
                    description: Some("End-User aborted interaction".into()),
                }),
            ),
            // An error that does not carry this login's state is not the provider's.
            (
                "/auth/callback?error=access_denied",
                Err(CallbackError::StateMismatch),
            ),
            ("/auth/callback?state=S", Err(CallbackError::NoCode)),
        ];
        for (target, expected) in cases {
            assert_eq!(parse(target, "S"), expected.map(str::to_owned), "{target}");
        }
        assert_eq!(
            parse("/auth/callback?error=access_denied&state=S", "S")
                .unwrap_err()
                .to_string(),
            "the OpenID provider refused the sign-in: access_denied"
        );
        assert_eq!(
            parse(
                "/auth/callback?error=access_denied&error_description=no&state=S",
                "S"
            )
            .unwrap_err()
            .to_string(),
            "the OpenID provider refused the sign-in: access_denied (no)"
        );
    }

    fn get(port: u16, target: &str) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(
            stream,
            "GET {target} HTTP/1.1\r\nHost: localhost:{port}\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    }

    #[test]
    fn the_listener_skips_other_paths_and_answers_the_callback() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let browser = std::thread::spawn(move || {
            let favicon = get(port, "/favicon.ico");
            let callback = get(port, "/auth/callback?code=c0de&state=S");
            (favicon, callback)
        });
        let code = wait(&listener, "S", Duration::from_secs(10));
        let (favicon, callback) = browser.join().unwrap();
        assert_eq!(code, Ok("c0de".to_owned()));
        assert!(
            favicon.starts_with("HTTP/1.1 404 Not Found\r\n"),
            "{favicon}"
        );
        assert!(callback.starts_with("HTTP/1.1 200 OK\r\n"), "{callback}");
        assert!(callback.ends_with(
            "Signed in to Kargo. You can close this window and return to the terminal.\n"
        ));
    }

    #[test]
    fn a_refused_sign_in_is_shown_in_the_browser_and_ends_the_wait() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let browser =
            std::thread::spawn(move || get(port, "/auth/callback?error=access_denied&state=S"));
        let outcome = wait(&listener, "S", Duration::from_secs(10));
        let page = browser.join().unwrap();
        assert!(matches!(outcome, Err(CallbackError::Refused { .. })));
        assert!(page.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{page}");
        assert!(
            page.ends_with(
                "Sign-in failed: the OpenID provider refused the sign-in: access_denied\n"
            ),
            "{page}"
        );
    }

    #[test]
    fn nobody_coming_back_times_out_with_the_redirect_uri() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let outcome = wait(&listener, "S", Duration::from_secs(1));
        assert_eq!(
            outcome.unwrap_err().to_string(),
            format!(
                "no sign-in completed within 1 second (nothing came back to http://localhost:{port}/auth/callback); run `kargo login --sso` again"
            )
        );
    }

    #[test]
    fn limits_read_as_minutes_or_seconds() {
        assert_eq!(human(Duration::from_secs(300)), "5 minutes");
        assert_eq!(human(Duration::from_secs(60)), "1 minute");
        assert_eq!(human(Duration::from_secs(90)), "90 seconds");
        assert_eq!(human(Duration::from_millis(10)), "1 second");
    }
}

//! Cookie sessions: the browser holds a random session id in a `Secure; HttpOnly;
//! SameSite=Strict` cookie; the server maps it (in this replica's memory) to the user's bearer
//! token, a CSRF token every form sends back, and a message for the next page. The token never
//! leaves the server: not in a cookie, a URL, a page or a log.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_lc_rs::rand::SecureRandom;
use base64::Engine;

/// The session cookie. `__Host-` makes browsers refuse it unless it is `Secure`, has `Path=/`
/// and no `Domain`.
pub(crate) const SESSION_COOKIE: &str = "__Host-kargo-session";
/// The sign-in form's CSRF cookie (double submit: the form carries the same value).
pub(crate) const LOGIN_COOKIE: &str = "__Host-kargo-login";

/// A session ends after this long without a request.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// A session ends this long after sign-in whatever its use (the admin token lives 24 h).
pub(crate) const MAX_AGE: Duration = Duration::from_secs(8 * 60 * 60);
/// At most this many sessions at once; a new one beyond it first drops the expired ones, then
/// the least recently used.
const MAX_SESSIONS: usize = 10_000;

/// A message shown once, on the next page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Flash {
    /// Something done.
    Done(String),
    /// Something refused or failed.
    Failed(String),
}

/// What the pages know of the signed-in user.
#[derive(Clone)]
pub(crate) struct Session {
    /// The session id's SHA-256 (the key), for sign-out.
    key: [u8; 32],
    /// The bearer token the API is called with.
    pub(crate) token: String,
    /// Who the API says the token is (`admin`, `system:serviceaccount:p:ci`, a person).
    pub(crate) user: String,
    /// Whether the token is an admin session (ended at sign-out with `POST /v1beta1/logout`).
    pub(crate) admin: bool,
    /// The value every form must send back as `csrf`.
    pub(crate) csrf: String,
}

struct Entry {
    session: Session,
    started: Instant,
    seen: Instant,
    flash: Option<Flash>,
}

/// Every live session of this replica.
pub(crate) struct Sessions {
    entries: Mutex<HashMap<[u8; 32], Entry>>,
}

impl Sessions {
    /// No sessions.
    pub(crate) fn new() -> Sessions {
        Sessions {
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Starts a session for `token`; returns the id for the cookie.
    pub(crate) fn start(&self, token: String, user: String, admin: bool) -> String {
        let id = random_token();
        let key = digest(&id);
        let now = Instant::now();
        let entry = Entry {
            session: Session {
                key,
                token,
                user,
                admin,
                csrf: random_token(),
            },
            started: now,
            seen: now,
            flash: None,
        };
        let mut entries = self.lock();
        if entries.len() >= MAX_SESSIONS {
            entries.retain(|_, e| !e.expired(now));
            if entries.len() >= MAX_SESSIONS
                && let Some(oldest) = entries.iter().min_by_key(|(_, e)| e.seen).map(|(k, _)| *k)
            {
                entries.remove(&oldest);
            }
        }
        entries.insert(key, entry);
        id
    }

    /// The live session of cookie value `id`, with the message left for this page; an expired
    /// one is ended.
    pub(crate) fn find(&self, id: &str) -> Option<(Session, Option<Flash>)> {
        let key = digest(id);
        let now = Instant::now();
        let mut entries = self.lock();
        let entry = entries.get_mut(&key)?;
        if entry.expired(now) {
            entries.remove(&key);
            return None;
        }
        entry.seen = now;
        Some((entry.session.clone(), entry.flash.take()))
    }

    /// Leaves `flash` for the session's next page.
    pub(crate) fn flash(&self, session: &Session, flash: Flash) {
        if let Some(entry) = self.lock().get_mut(&session.key) {
            entry.flash = Some(flash);
        }
    }

    /// Ends a session.
    pub(crate) fn end(&self, session: &Session) {
        self.lock().remove(&session.key);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Entry {
    fn expired(&self, now: Instant) -> bool {
        now.duration_since(self.seen) >= IDLE_TIMEOUT || now.duration_since(self.started) >= MAX_AGE
    }
}

/// 32 random bytes, URL-safe base64: a session id or a CSRF token.
pub(crate) fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // The system's random source failing is not something to serve on.
    #[allow(clippy::expect_used)]
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system random source works");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether a CSRF value sent back equals the expected one (in constant time).
pub(crate) fn same_secret(sent: &str, expected: &str) -> bool {
    !expected.is_empty()
        && aws_lc_rs::constant_time::verify_slices_are_equal(sent.as_bytes(), expected.as_bytes())
            .is_ok()
}

fn digest(id: &str) -> [u8; 32] {
    let mut key = [0u8; 32];
    key.copy_from_slice(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, id.as_bytes()).as_ref(),
    );
    key
}

/// The value of cookie `name` in a request's `Cookie` headers.
pub(crate) fn cookie<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value for cookie `name`: `Secure; HttpOnly; SameSite=Strict; Path=/`, for
/// `max_age` (zero: delete it).
pub(crate) fn set_cookie(name: &str, value: &str, max_age: Duration) -> String {
    format!(
        "{name}={value}; Max-Age={}; Path=/; Secure; HttpOnly; SameSite=Strict",
        max_age.as_secs()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_found_by_its_id_only_and_ends() {
        let sessions = Sessions::new();
        let id = sessions.start("t0k3n".into(), "admin".into(), true);
        assert!(sessions.find("not-it").is_none());
        let (session, flash) = sessions.find(&id).expect("found");
        assert_eq!((session.token.as_str(), flash), ("t0k3n", None));
        sessions.flash(&session, Flash::Done("made".into()));
        assert_eq!(
            sessions.find(&id).expect("found").1,
            Some(Flash::Done("made".into()))
        );
        assert_eq!(sessions.find(&id).expect("found").1, None, "shown once");
        sessions.end(&session);
        assert!(sessions.find(&id).is_none());
    }

    #[test]
    fn cookies_are_read_by_name_and_set_strictly() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::COOKIE,
            http::HeaderValue::from_static("a=1; __Host-kargo-session=xyz"),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("xyz"));
        assert_eq!(cookie(&headers, "b"), None);
        let set = set_cookie(SESSION_COOKIE, "v", Duration::from_secs(60));
        for part in [
            "Secure",
            "HttpOnly",
            "SameSite=Strict",
            "Path=/",
            "Max-Age=60",
        ] {
            assert!(set.contains(part), "{set}");
        }
    }

    #[test]
    fn csrf_values_must_match_and_not_be_empty() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abd", "abc"));
        assert!(!same_secret("", ""));
    }
}

//! What a page handler starts from: the signed-in user ([`Signed`], else a redirect to sign-in),
//! a checked form ([`Posted`]: session, CSRF token, fields) and the names in its path
//! ([`Names`]: the scope and the object, each a valid name).

use std::collections::HashMap;

use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;

use crate::client::Client;
use crate::form::Form;
use crate::scope::Scope;
use crate::session::{Flash, SESSION_COOKIE, Session, cookie, same_secret};
use crate::{Shared, Source, html};

/// The most a form may send.
const MAX_FORM: usize = 64 * 1024;

/// A request of a signed-in user.
pub(crate) struct Signed {
    /// Their session.
    pub(crate) session: Session,
    /// The message left for this page, if any.
    pub(crate) flash: Option<Flash>,
    /// The API, as them.
    pub(crate) client: Client,
    /// The UI's state.
    pub(crate) state: Shared,
    /// The `host[:port]` the browser reached (for a kubeconfig's server).
    pub(crate) host: String,
}

impl Signed {
    /// Leaves `flash` for the next page.
    pub(crate) fn flash(&self, flash: Flash) {
        self.state.sessions.flash(&self.session, flash);
    }
}

impl FromRequestParts<Shared> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Signed, Response> {
        let found = cookie(&parts.headers, SESSION_COOKIE).and_then(|id| state.sessions.find(id));
        let Some((session, flash)) = found else {
            return Err(html::see_other("/ui/login"));
        };
        let source = parts.extensions.get::<Source>().and_then(|s| s.0);
        let host = parts
            .uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .or_else(|| {
                parts
                    .headers
                    .get(http::header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .map(str::to_owned)
            })
            .unwrap_or_default();
        Ok(Signed {
            client: Client::new(state.api.clone(), session.token.clone(), source),
            session,
            flash,
            state: state.clone(),
            host,
        })
    }
}

/// A form posted by a signed-in user, its CSRF token checked.
pub(crate) struct Posted {
    /// Who posted it.
    pub(crate) signed: Signed,
    /// Its fields.
    pub(crate) form: Form,
}

impl FromRequest<Shared> for Posted {
    type Rejection = Response;

    async fn from_request(request: Request, state: &Shared) -> Result<Posted, Response> {
        let (mut parts, body) = request.into_parts();
        let signed = Signed::from_request_parts(&mut parts, state).await?;
        let form = read_form(body).await?;
        if !same_secret(form.get("csrf"), &signed.session.csrf) {
            return Err(stale_form());
        }
        Ok(Posted { signed, form })
    }
}

/// A form's fields from a request body (at most [`MAX_FORM`] bytes).
pub(crate) async fn read_form(body: axum::body::Body) -> Result<Form, Response> {
    match axum::body::to_bytes(body, MAX_FORM).await {
        Ok(bytes) => Ok(Form::parse(&bytes)),
        Err(_) => Err(html::message_page(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Form too large",
            "The form sent more than 64 KiB.",
        )),
    }
}

/// The answer to a form without the right CSRF token.
pub(crate) fn stale_form() -> Response {
    html::message_page(
        StatusCode::FORBIDDEN,
        "Form expired",
        "This form is out of date or came from another site. Go back, reload the page and try again.",
    )
}

/// The names in a page's path: the scope (a project or the system level) and the object's
/// name, each checked to be a Kubernetes name.
pub(crate) struct Names {
    /// Where the page is.
    pub(crate) scope: Scope,
    params: HashMap<String, String>,
}

impl Names {
    /// Path parameter `key` (checked like every other).
    pub(crate) fn get(&self, key: &str) -> &str {
        self.params.get(key).map(String::as_str).unwrap_or("")
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Names {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Names, Response> {
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        if let Some(bad) = params.values().find(|v| !is_name(v)) {
            return Err(html::message_page(
                StatusCode::BAD_REQUEST,
                "Not a valid name",
                &format!("{bad:?} is not a valid name."),
            ));
        }
        let scope = match params.get("project") {
            Some(project) => Scope::Project(project.clone()),
            None => Scope::System,
        };
        Ok(Names { scope, params })
    }
}

/// Whether `value` may be put in an API path: a Kubernetes object name (lowercase letters,
/// digits, `-` and `.`, starting and ending with a letter or digit, at most 253 characters).
pub(crate) fn is_name(value: &str) -> bool {
    let edge = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    edge(value.as_bytes().first())
        && edge(value.as_bytes().last())
        && value.len() <= 253
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::is_name;

    #[test]
    fn only_kubernetes_names_reach_an_api_path() {
        assert!(is_name("my-project.v2"));
        for bad in [
            "",
            "A",
            "a/b",
            "a?b",
            "..%2f",
            "a b",
            "..",
            "-a",
            &"x".repeat(254),
        ] {
            assert!(!is_name(bad), "{bad}");
        }
    }
}

//! The pages, one module per concept; what they share is here.

pub(crate) mod accounts;
pub(crate) mod login;
pub(crate) mod projects;
pub(crate) mod roles;
pub(crate) mod sso;
pub(crate) mod tokens;

use axum::response::Response;
use http::StatusCode;
use serde_json::Value;

use crate::client::ApiError;
use crate::extract::Signed;
use crate::html;
use crate::session::Flash;

/// `GET /`: the projects page.
pub(crate) async fn home() -> Response {
    html::see_other("/ui/")
}

/// A path under `/ui/` that is no page.
pub(crate) async fn not_found() -> Response {
    html::message_page(
        StatusCode::NOT_FOUND,
        "Page not found",
        "There is no such page.",
    )
}

/// After a form's API call: `done` as the next page's message, or the API's refusal; then back
/// to `back`. A 401 (the token is no longer valid) ends the session and goes to sign-in.
pub(crate) fn after(
    signed: &Signed,
    result: Result<Value, ApiError>,
    done: String,
    back: &str,
) -> Response {
    match result {
        Ok(_) => {
            signed.flash(Flash::Done(done));
            html::see_other(back)
        }
        Err(error) => failed(signed, &error, back),
    }
}

/// The API refused: say so on `back`, or sign out on a 401.
pub(crate) fn failed(signed: &Signed, error: &ApiError, back: &str) -> Response {
    if error.code == StatusCode::UNAUTHORIZED {
        signed.state.sessions.end(&signed.session);
        return html::see_other("/ui/login?expired=1");
    }
    signed.flash(Flash::Failed(error.sentence()));
    html::see_other(back)
}

/// A page whose main read failed: the page's frame with the API's sentence (or sign-in on 401).
pub(crate) fn unreadable(
    signed: &Signed,
    title: &str,
    nav: maud::Markup,
    error: &ApiError,
) -> Response {
    if error.code == StatusCode::UNAUTHORIZED {
        signed.state.sessions.end(&signed.session);
        return html::see_other("/ui/login?expired=1");
    }
    html::ok(
        title,
        signed,
        maud::html! {
            h1 { (title) }
            (nav)
            (html::error_box(error))
        },
    )
}

/// The `items` of a list answer (empty when absent).
pub(crate) fn items(list: &Value) -> &[Value] {
    list["items"].as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// An object's `metadata.name`.
pub(crate) fn name_of(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or("")
}

/// An object's annotation `key`.
pub(crate) fn annotation<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object["metadata"]["annotations"][key].as_str()
}

//! The page shell and the pieces every page uses: the header with who is signed in and sign-out,
//! the scope's navigation, messages, CSRF fields, and turning markup into an answer.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use maud::{DOCTYPE, Markup, html};

use crate::client::ApiError;
use crate::extract::Signed;
use crate::scope::Scope;
use crate::session::Flash;

/// A whole page: `title`, the signed-in header (when `signed`), the message left for it, `body`.
pub(crate) fn page(title: &str, signed: Option<&Signed>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Kargo" }
                link rel="icon" href="/ui/static/icon.svg" type="image/svg+xml";
                link rel="stylesheet" href="/ui/static/ui.css";
                script src="/ui/static/ui.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/ui/" { "Kargo" }
                    @if let Some(signed) = signed {
                        nav aria-label="Main" {
                            a href="/ui/" { "Projects" }
                            a href="/ui/system/accounts" { "System" }
                        }
                        form.signout method="post" action="/ui/logout" {
                            (csrf(signed))
                            span.user { "Signed in as " strong { (signed.session.user) } }
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main id="main" tabindex="-1" {
                    @if let Some(flash) = signed.and_then(|s| s.flash.as_ref()) {
                        (flash_box(flash))
                    }
                    (body)
                }
            }
        }
    }
}

/// The tabs of a scope's pages, the current one marked.
pub(crate) fn scope_nav(scope: &Scope, current: &str) -> Markup {
    let base = scope.ui();
    html! {
        nav.tabs aria-label=(format!("{} sections", scope.title())) {
            @for (path, label) in [("accounts", "ServiceAccounts"), ("roles", "Roles"), ("tokens", "Tokens")] {
                @if path == current {
                    a href=(format!("{base}/{path}")) aria-current="page" { (label) }
                } @else {
                    a href=(format!("{base}/{path}")) { (label) }
                }
            }
        }
    }
}

/// A message box: done (a status) or failed (an alert).
pub(crate) fn flash_box(flash: &Flash) -> Markup {
    match flash {
        Flash::Done(text) => html! { p.notice.ok role="status" { (text) } },
        Flash::Failed(text) => html! { p.notice.error role="alert" { (text) } },
    }
}

/// An API error in a page, as a sentence.
pub(crate) fn error_box(error: &ApiError) -> Markup {
    flash_box(&Flash::Failed(error.sentence()))
}

/// The hidden CSRF field every form of a signed-in page carries.
pub(crate) fn csrf(signed: &Signed) -> Markup {
    html! { input type="hidden" name="csrf" value=(signed.session.csrf); }
}

/// A form of one button posting to `action` (with its CSRF token); `confirm` asks first (the
/// script does; without it the button acts at once).
pub(crate) fn button_form(
    signed: &Signed,
    action: &str,
    label: &str,
    confirm: Option<&str>,
) -> Markup {
    html! {
        form.inline method="post" action=(action) data-confirm=[confirm] {
            (csrf(signed))
            button type="submit" { (label) }
        }
    }
}

/// An HTML answer.
pub(crate) fn respond(code: StatusCode, markup: Markup) -> Response {
    let mut response = (code, markup.into_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

/// A page for a signed-in user.
pub(crate) fn ok(title: &str, signed: &Signed, body: Markup) -> Response {
    respond(StatusCode::OK, page(title, Some(signed), body))
}

/// A page with one message (errors before any session, or instead of a page).
pub(crate) fn message_page(code: StatusCode, title: &str, text: &str) -> Response {
    respond(
        code,
        page(
            title,
            None,
            html! {
                h1 { (title) }
                p role="alert" { (text) }
                p { a href="/ui/" { "Back to the start" } }
            },
        ),
    )
}

/// A redirect to `location` after a form (303, so the browser GETs it).
pub(crate) fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// A date-time from the API (`2030-01-02T03:04:05Z`) as shown: `2030-01-02 03:04 UTC`.
pub(crate) fn when(value: Option<&str>) -> String {
    match value {
        Some(v) if v.len() >= 16 => format!("{} {} UTC", &v[..10], &v[11..16]),
        Some(v) => v.to_owned(),
        None => "—".to_owned(),
    }
}

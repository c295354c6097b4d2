//! Signing in and out. The admin signs in with the admin password (`POST /v1beta1/login`, with
//! its per-address limits); anyone with a ServiceAccount token may sign in with it. The API says
//! who the token is (`SelfSubjectReview`); the session keeps the token on the server. Signing
//! out ends the session, and an admin session's token too (`POST /v1beta1/logout`).

use axum::extract::{Query, Request, State};
use axum::response::Response;
use http::{HeaderValue, Method, StatusCode, header};
use maud::html;
use serde_json::{Value, json};

use crate::client::{self, ApiError};
use crate::extract::{Posted, read_form, stale_form};
use crate::form::Form;
use crate::session::{
    LOGIN_COOKIE, MAX_AGE, SESSION_COOKIE, cookie, random_token, same_secret, set_cookie,
};
use crate::{Shared, Source, html};

/// How long the sign-in form stays valid.
const LOGIN_FORM_AGE: std::time::Duration = std::time::Duration::from_secs(60 * 60);

/// `GET /ui/login`: the sign-in forms (the admin password when the admin account is enabled; a
/// token always).
pub(crate) async fn form(
    State(state): State<Shared>,
    Query(query): Query<std::collections::HashMap<String, String>>,
    request: Request,
) -> Response {
    let source = request.extensions().get::<Source>().and_then(|s| s.0);
    if cookie(request.headers(), SESSION_COOKIE).is_some_and(|id| state.sessions.find(id).is_some())
    {
        return html::see_other("/ui/");
    }
    let config = client::send(
        &state.api,
        Method::GET,
        "/v1beta1/system/public-server-config",
        None,
        None,
        source,
    )
    .await
    .unwrap_or(Value::Null);
    let admin = config["adminAccountEnabled"] != json!(false);
    let sso = state.sso.is_some();
    let csrf = random_token();
    let body = html! {
        h1 { "Sign in" }
        @if query.contains_key("expired") {
            p.notice.error role="alert" { "Your session has ended. Sign in again." }
        }
        div.cards {
            @if admin {
                form.card method="post" action="/ui/login/password" {
                    h2 { "Admin" }
                    input type="hidden" name="csrf" value=(csrf);
                    label for="password" { "Admin password" }
                    input #password type="password" name="password" autocomplete="current-password" required;
                    button type="submit" { "Sign in as admin" }
                }
            }
            form.card method="post" action="/ui/login/token" {
                h2 { "Token" }
                input type="hidden" name="csrf" value=(csrf);
                label for="token" { "ServiceAccount or API token" }
                input #token type="password" name="token" autocomplete="off" required;
                button type="submit" { "Sign in with token" }
            }
            @if sso {
                section.card {
                    h2 { "Single sign-on" }
                    p { "Sign in as yourself at your organization's identity provider." }
                    a.button href="/ui/login/sso" { "Sign in with single sign-on" }
                }
            }
        }
    };
    let mut response = html::respond(StatusCode::OK, html::page("Sign in", None, body));
    if let Ok(value) = HeaderValue::from_str(&set_cookie(LOGIN_COOKIE, &csrf, LOGIN_FORM_AGE)) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// `POST /ui/login/password`: the admin password for an admin session.
pub(crate) async fn password(State(state): State<Shared>, request: Request) -> Response {
    let (source, form) = match login_form(request).await {
        Ok(checked) => checked,
        Err(response) => return response,
    };
    let password = form.get("password");
    let answer = client::send(
        &state.api,
        Method::POST,
        "/v1beta1/login",
        Some(password),
        None,
        source,
    )
    .await;
    match answer.map(|a| a["idToken"].as_str().map(str::to_owned)) {
        Ok(Some(token)) => start(&state, token, true, source).await,
        Ok(None) => refused("The server gave no session token."),
        Err(error) if error.code == StatusCode::FORBIDDEN => refused("Wrong password."),
        Err(error) => refused(&error.sentence()),
    }
}

/// `POST /ui/login/token`: a ServiceAccount or API token (or a person's ID token).
pub(crate) async fn token(State(state): State<Shared>, request: Request) -> Response {
    let (source, form) = match login_form(request).await {
        Ok(checked) => checked,
        Err(response) => return response,
    };
    start(&state, form.get("token").to_owned(), false, source).await
}

/// `POST /ui/logout`: ends the session (and an admin token), clears the cookie.
pub(crate) async fn logout(posted: Posted) -> Response {
    let signed = posted.signed;
    if signed.session.admin {
        // The session ends here whatever the API says (a token already refused is fine).
        let _ = signed.client.post("/v1beta1/logout", Value::Null).await;
    }
    signed.state.sessions.end(&signed.session);
    let mut response = html::see_other("/ui/login");
    if let Ok(value) =
        HeaderValue::from_str(&set_cookie(SESSION_COOKIE, "", std::time::Duration::ZERO))
    {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// A sign-in form's source and fields, its CSRF value matching the sign-in cookie.
async fn login_form(request: Request) -> Result<(Option<std::net::SocketAddr>, Form), Response> {
    let source = request.extensions().get::<Source>().and_then(|s| s.0);
    let expected = cookie(request.headers(), LOGIN_COOKIE)
        .unwrap_or("")
        .to_owned();
    let form = read_form(request.into_body()).await?;
    if !same_secret(form.get("csrf"), &expected) {
        return Err(stale_form());
    }
    Ok((source, form))
}

/// Starts a session for `token` once the API accepts it: who it is, from a `SelfSubjectReview`.
pub(super) async fn start(
    state: &Shared,
    token: String,
    admin: bool,
    source: Option<std::net::SocketAddr>,
) -> Response {
    if token.is_empty() {
        return refused("Enter a token.");
    }
    let review = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"});
    let answer = client::send(
        &state.api,
        Method::POST,
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        Some(&token),
        Some(review),
        source,
    )
    .await;
    let user = match answer {
        Ok(review) => review["status"]["userInfo"]["username"]
            .as_str()
            .unwrap_or("unknown")
            .to_owned(),
        Err(ApiError {
            code: StatusCode::UNAUTHORIZED,
            ..
        }) => {
            return refused("The server does not accept this token.");
        }
        Err(error) => return refused(&error.sentence()),
    };
    let id = state.sessions.start(token, user, admin);
    let mut response = html::see_other("/ui/");
    let headers = response.headers_mut();
    for cookie in [
        set_cookie(SESSION_COOKIE, &id, MAX_AGE),
        set_cookie(LOGIN_COOKIE, "", std::time::Duration::ZERO),
    ] {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            headers.append(header::SET_COOKIE, value);
        }
    }
    response
}

/// Sign-in refused: the reason, and the way back.
pub(super) fn refused(reason: &str) -> Response {
    html::respond(
        StatusCode::UNAUTHORIZED,
        html::page(
            "Sign-in failed",
            None,
            html! {
                h1 { "Sign-in failed" }
                p.notice.error role="alert" { (reason) }
                p { a href="/ui/login" { "Try again" } }
            },
        ),
    )
}

//! `POST /ui/kubeconfig`: a new token's kubeconfig as a download (posted from the page that
//! shows the token once, so the token travels in a request body, never in a URL).

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

use crate::extract::{Posted, is_name};
use crate::html;

/// The kubeconfig for the posted token, CA (base64 PEM), namespace and name; the server is
/// the address the browser reached.
pub(crate) async fn download(posted: Posted) -> Response {
    let Posted { signed, form } = posted;
    let (token, ca, namespace, name) = (
        form.get("token"),
        form.get("ca"),
        form.get("namespace"),
        form.get("name"),
    );
    let token_ok = !token.is_empty()
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    let ca_ok = ca
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
    let host_ok = !signed.host.is_empty()
        && signed
            .host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    if !(token_ok && ca_ok && host_ok && is_name(namespace) && is_name(name)) {
        return html::message_page(
            StatusCode::BAD_REQUEST,
            "No kubeconfig",
            "The form did not hold a token to put in a kubeconfig.",
        );
    }
    let text = render(
        &format!("https://{}", signed.host),
        ca,
        token,
        namespace,
        name,
    );
    let mut response = (StatusCode::OK, text).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/yaml"),
    );
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}.kubeconfig\""))
    {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// A kubeconfig of one cluster, user and context, all named `name`.
fn render(server: &str, ca: &str, token: &str, namespace: &str, name: &str) -> String {
    let ca_line = if ca.is_empty() {
        String::new()
    } else {
        format!("    certificate-authority-data: {ca}\n")
    };
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: {name}\n  cluster:\n    server: {server}\n{ca_line}\
users:\n- name: {name}\n  user:\n    token: {token}\ncontexts:\n- name: {name}\n  context:\n    cluster: {name}\n    \
user: {name}\n    namespace: {namespace}\ncurrent-context: {name}\n"
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_kubeconfig_names_server_ca_token_and_namespace() {
        let text = super::render("https://h:1", "Q0E=", "a.b.c", "p", "t");
        for line in [
            "server: https://h:1",
            "certificate-authority-data: Q0E=",
            "token: a.b.c",
            "namespace: p",
            "current-context: t",
        ] {
            assert!(text.contains(line), "{text}");
        }
    }
}

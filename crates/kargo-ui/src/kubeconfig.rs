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

/// A kubeconfig of one cluster, user and context, all named `name` (`kargo_api::kubeconfig`,
/// as the server's `admin.kubeconfig` and the CLI's `-o kubeconfig`); `ca` is base64 PEM.
fn render(server: &str, ca: &str, token: &str, namespace: &str, name: &str) -> String {
    use base64::Engine as _;
    use kargo_api::kubeconfig::{Credential, Kubeconfig, ServerTrust};
    let trust = match base64::engine::general_purpose::STANDARD.decode(ca) {
        Ok(pem) if !pem.is_empty() => ServerTrust::CertificateAuthority(pem),
        _ => ServerTrust::System,
    };
    let kubeconfig = Kubeconfig {
        cluster: name.to_owned(),
        server: server.to_owned(),
        trust,
        user: name.to_owned(),
        credential: Credential::Token(token.to_owned()),
        context: name.to_owned(),
        namespace: Some(namespace.to_owned()),
    };
    // Serializing a JSON value of strings cannot fail; JSON is YAML too.
    yaml_serde::to_string(&kubeconfig.to_value())
        .unwrap_or_else(|_| kubeconfig.to_value().to_string())
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

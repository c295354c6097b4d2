//! Issue 20: the web UI. A real browser (Debian's chromium, headless, driven by selenium in
//! `tests/python/ui.py`) signs in with the keyboard, creates a project, ServiceAccounts and a
//! role, grants roles, creates a token, reads it from the page and uses it with kubectl (and the
//! downloaded kubeconfig), deletes it and sees kubectl refused; a viewer sees no create buttons
//! and a readable 403; axe-core finds no serious or critical violation on any page, in light or
//! dark; nothing is requested from another origin. With `KARGO_UI_SCREENSHOTS=1` it also writes
//! the README's screenshots to `docs/images/`. curl checks what a browser does not show: the
//! security headers, the session cookie's flags, and forms refused without their CSRF token.

use crate::harness::Server;
use crate::oidc::{ALICE, CLIENT_ID, Options, Provider};

/// The repository's root.
fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// axe-core's script, installed by `scripts/test.sh`.
fn axe() -> std::path::PathBuf {
    let axe = root().join("tests/ui/node_modules/axe-core/axe.min.js");
    assert!(
        axe.exists(),
        "no axe-core at {}: run scripts/test.sh (npm ci --prefix tests/ui)",
        axe.display()
    );
    axe
}

#[test]
fn a_project_admin_works_in_the_browser_and_a_viewer_only_reads() {
    let server = Server::start();
    let axe = axe();
    let scratch = server.scratch().to_str().expect("utf-8 path").to_owned();
    let mut args = vec![scratch, axe.to_str().expect("utf-8 path").to_owned()];
    if std::env::var_os("KARGO_UI_SCREENSHOTS").is_some() {
        args.push(
            root()
                .join("docs/images")
                .to_str()
                .expect("utf-8 path")
                .to_owned(),
        );
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = server.python("ui.py", server.password(), &args);
    assert_eq!(out.ok(), "ok\n");
}

/// A person signs in through the test identity provider (npm `oidc-provider`) from the sign-in
/// page's button: the authorization code flow with PKCE, redirected back to the server, which
/// redeems the code; she is then signed in as her email and, a system admin by her group,
/// creates a project.
#[test]
fn a_person_signs_in_through_the_identity_provider() {
    let port = Provider::free_port();
    let provider = Provider::start_with(Options {
        web_redirect_uris: vec![format!("https://127.0.0.1:{port}/ui/login/sso/callback")],
        ..Options::default()
    });
    // The web UI signs in as the provider's web client `kargo-web`, which the server then
    // accepts as an audience.
    let mut args: Vec<String> = provider
        .server_args()
        .into_iter()
        .map(|a| {
            if a == CLIENT_ID {
                "kargo-web".to_owned()
            } else {
                a
            }
        })
        .collect();
    args.extend(["--oidc-admin-claim".to_owned(), "groups=devops".to_owned()]);
    let server = Server::start_on_port(port, &args);
    let alice = provider.user(ALICE);
    let person = format!("sso:{}:{}", alice.email, alice.password);
    let scratch = server.scratch().to_str().expect("utf-8 path").to_owned();
    let axe = axe().to_str().expect("utf-8 path").to_owned();
    let out = server.python("ui.py", &person, &[&scratch, &axe]);
    assert_eq!(out.ok(), "ok\n");
    // The project records who made it, as through the CLI.
    let (code, project) = server.curl(
        "GET",
        "/v1beta1/projects/alices",
        Some(&server.admin_token()),
        &[],
        None,
    );
    assert_eq!(code, 200, "{project}");
    assert!(project.contains(&format!("email:{ALICE}")), "{project}");
}

/// The value of cookie `name` set in raw response `headers`.
fn set_cookie<'a>(headers: &'a str, name: &str) -> &'a str {
    headers
        .lines()
        .filter_map(|l| l.strip_prefix("set-cookie: "))
        .find(|c| c.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie in {headers}"))
}

#[test]
fn pages_carry_a_strict_policy_and_forms_need_their_csrf_token() {
    let server = Server::start();
    let (code, headers, page) = server.curl_with_headers("GET", "/", None, &[], None);
    assert_eq!((code, page.as_str()), (303, ""), "{headers}");
    assert!(headers.contains("location: /ui/\r\n"), "{headers}");
    let (code, headers, page) = server.curl_with_headers("GET", "/ui/login", None, &[], None);
    assert_eq!(code, 200, "{page}");
    for header in [
        "content-security-policy: default-src 'none'; script-src 'self'; style-src 'self'; \
         img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
         base-uri 'none'\r\n",
        "x-frame-options: DENY\r\n",
        "cache-control: no-store\r\n",
    ] {
        assert!(headers.contains(header), "{header} in {headers}");
    }
    assert!(
        !page.contains("<script>") && !page.contains(" style="),
        "nothing inline: {page}"
    );
    // The API's paths are unchanged.
    let (code, version) = server.curl("GET", "/version", None, &[], None);
    assert!(code == 200 && version.contains("gitVersion"), "{version}");

    // Sign in as a browser does: the sign-in form's cookie and field, then the password.
    let login = set_cookie(&headers, "__Host-kargo-login");
    let value = login
        .split(';')
        .next()
        .expect("pair")
        .split_once('=')
        .expect("=")
        .1;
    let cookie = format!("Cookie: __Host-kargo-login={value}");
    let form = format!("csrf=wrong&password={}", server.password());
    let (code, _, page) = server.curl_with_headers(
        "POST",
        "/ui/login/password",
        None,
        &[&cookie],
        Some(form.as_bytes()),
    );
    assert_eq!(code, 403, "a sign-in without the form's value: {page}");
    let form = format!("csrf={value}&password={}", server.password());
    let (code, headers, _) = server.curl_with_headers(
        "POST",
        "/ui/login/password",
        None,
        &[&cookie],
        Some(form.as_bytes()),
    );
    assert_eq!(code, 303, "{headers}");
    let session = set_cookie(&headers, "__Host-kargo-session");
    for flag in ["; Path=/", "; Secure", "; HttpOnly", "; SameSite=Strict"] {
        assert!(session.contains(flag), "{flag} in {session}");
    }
    let id = session.split(';').next().expect("pair");
    let cookie = format!("Cookie: {id}");
    let (code, page) = server.curl("GET", "/ui/", None, &[&cookie], None);
    assert!(
        code == 200 && page.contains("Signed in as <strong>admin</strong>"),
        "{page}"
    );

    // A form without the session's CSRF token is refused, and nothing is created.
    for form in ["name=forged", "name=forged&csrf=", "name=forged&csrf=guess"] {
        let (code, page) = server.curl(
            "POST",
            "/ui/projects",
            None,
            &[&cookie],
            Some(form.as_bytes()),
        );
        assert!(
            code == 403 && page.contains("This form is out of date"),
            "{code} {page}"
        );
    }
    let token = server.admin_token();
    let (code, _) = server.curl("GET", "/v1beta1/projects/forged", Some(&token), &[], None);
    assert_eq!(code, 404);
    // With it, the project is made.
    let csrf = page_csrf(&server.curl("GET", "/ui/", None, &[&cookie], None).1);
    let form = format!("name=made&csrf={csrf}");
    let (code, _) = server.curl(
        "POST",
        "/ui/projects",
        None,
        &[&cookie],
        Some(form.as_bytes()),
    );
    assert_eq!(code, 303);
    let (code, _) = server.curl("GET", "/v1beta1/projects/made", Some(&token), &[], None);
    assert_eq!(code, 200);

    // Signed out, the cookie leads to sign-in again.
    let form = format!("csrf={csrf}");
    let (code, _) = server.curl(
        "POST",
        "/ui/logout",
        None,
        &[&cookie],
        Some(form.as_bytes()),
    );
    assert_eq!(code, 303);
    let (code, headers, _) = server.curl_with_headers("GET", "/ui/", None, &[&cookie], None);
    assert!(
        code == 303 && headers.contains("location: /ui/login\r\n"),
        "{headers}"
    );
}

/// The CSRF field's value in a page.
fn page_csrf(page: &str) -> String {
    let start = page.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    page[start..].split('"').next().expect("value").to_owned()
}

//! `kargo login`, `kargo logout` and `kargo config` with the real binary against a real server:
//! what the configuration file holds, how login fails (password, TLS, server down, no terminal),
//! and the password prompt on a terminal.

use base64::Engine as _;

use crate::cli_harness::Kargo;
use crate::harness::{ADMIN_PASSWORD, Server};

const NOT_LOGGED_IN: &str =
    "seems like you are not logged in; please use `kargo login` to authenticate";

fn ca_text(server: &Server) -> String {
    std::fs::read_to_string(server.ca()).expect("CA file")
}

#[test]
fn login_with_the_servers_ca_saves_a_private_config_and_prints_nothing() {
    let server = Server::start();
    let kargo = Kargo::new();
    kargo.login_as_admin(&server).prints("");

    let ca_data = base64::engine::general_purpose::STANDARD.encode(ca_text(&server));
    let text = kargo.config_text();
    let token_line = text
        .lines()
        .find(|l| l.starts_with("bearerToken: "))
        .unwrap_or_else(|| panic!("no bearerToken in:\n{text}"));
    let token = token_line.trim_start_matches("bearerToken: ");
    assert!(token.starts_with("eyJ"), "not a JWT: {token}");
    assert_eq!(
        text,
        format!(
            "apiAddress: {}\nauthMethod: admin\nbearerToken: {token}\ncertificateAuthorityData: {ca_data}\n",
            server.url
        )
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(kargo.config_path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "config file mode");
    }

    kargo.run(&["config", "view"]).prints(&format!(
        "apiAddress: {}\nauthMethod: admin\nbearerToken: '*** REDACTED ***'\ncertificateAuthorityData: {ca_data}\n",
        server.url
    ));
    let json = kargo.run(&["config", "view", "-o", "json"]);
    let view: serde_json::Value = serde_json::from_str(json.ok()).expect("JSON");
    assert_eq!(view["bearerToken"], "*** REDACTED ***");
    assert!(!json.stdout.contains(token), "config view leaked the token");
    // `--raw` (upstream's) shows the stored token, and only it.
    let raw = kargo.run(&["config", "view", "--raw", "-o", "json"]);
    let raw: serde_json::Value = serde_json::from_str(raw.ok()).expect("JSON");
    assert_eq!(raw["bearerToken"], token);

    kargo.run(&["logout"]).prints("");
    assert!(!kargo.config_path().exists(), "logout left the config file");
    kargo
        .run(&["get", "serviceaccounts", "--project", "p"])
        .fails_with(NOT_LOGGED_IN);
    kargo.run(&["logout"]).prints("");
}

#[test]
fn logging_in_again_keeps_the_servers_tls_settings_and_default_project() {
    let server = Server::start();
    let kargo = Kargo::new();
    kargo
        .run(&[
            "login",
            &server.url,
            "--admin",
            "--password",
            ADMIN_PASSWORD,
            "--insecure-skip-tls-verify",
        ])
        .prints("");
    kargo
        .run(&["config", "set-project", "my-project"])
        .prints("");
    // No URL, no --admin: the last server and method; TLS settings and project stay.
    kargo
        .run(&["login", "--password", ADMIN_PASSWORD])
        .prints("");
    kargo.run(&["config", "view"]).prints(&format!(
        "apiAddress: {}\nauthMethod: admin\nbearerToken: '*** REDACTED ***'\ninsecureSkipTLSVerify: true\nproject: my-project\n",
        server.url
    ));
}

#[test]
fn login_failures_print_one_line_and_write_nothing() {
    let server = Server::start();
    let kargo = Kargo::new();
    let ca = server.ca();
    let ca = ca.to_str().unwrap();
    let url = server.url.as_str();
    let plain_http = url.replace("https://", "http://");
    let not_pem = kargo.home().join("not-a-ca.pem");
    std::fs::write(&not_pem, "hello\n").unwrap();
    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["login", url, "--admin", "--password", "wrong", "--certificate-authority", ca],
            "invalid password".into(),
        ),
        (
            vec!["login", url, "--admin", "--password", ADMIN_PASSWORD],
            format!(
                "TLS handshake with {url} failed: invalid peer certificate: UnknownIssuer (log in with --certificate-authority FILE, or --insecure-skip-tls-verify)"
            ),
        ),
        (
            vec!["login", url, "--admin", "--password", ADMIN_PASSWORD, "--certificate-authority", "/nonexistent/ca.crt"],
            "cannot read the certificate authority file /nonexistent/ca.crt: No such file or directory".into(),
        ),
        (
            vec!["login", url, "--admin", "--password", ADMIN_PASSWORD, "--certificate-authority", not_pem.to_str().unwrap()],
            "invalid certificate authority: no PEM certificate found".into(),
        ),
        (
            vec!["login", url, "--password", ADMIN_PASSWORD],
            "--admin is required (this server supports logging in as the admin user)".into(),
        ),
        (
            vec!["login", "--admin", "--password", ADMIN_PASSWORD],
            "a server address is required: kargo login URL --admin".into(),
        ),
        (
            vec!["login", &plain_http, "--admin", "--password", "x"],
            format!("invalid server address {plain_http:?}: the Kargo API is served over https only"),
        ),
        (
            vec!["login", url, "--admin", "--password", "", "--insecure-skip-tls-verify"],
            "the password must not be empty".into(),
        ),
        (
            vec!["login", url, "--admin", "--insecure-skip-tls-verify", "--certificate-authority", ca],
            "the argument '--insecure-skip-tls-verify' cannot be used with '--certificate-authority <FILE>'".into(),
        ),
    ];
    for (args, message) in cases {
        kargo.run(&args).fails_with(&message);
        assert!(!kargo.config_path().exists(), "{args:?} wrote a config");
    }
}

#[test]
fn login_to_a_server_without_the_admin_account_says_so() {
    let server = Server::start_with(&["--disable-admin-account".to_owned()]);
    let kargo = Kargo::new();
    kargo
        .login_as_admin(&server)
        .fails_with("server does not support admin user login");
    assert!(!kargo.config_path().exists());
}

#[test]
fn login_to_a_server_that_is_down_says_so() {
    let url = {
        let server = Server::start();
        server.url.clone()
    };
    let kargo = Kargo::new();
    kargo
        .run(&[
            "login",
            &url,
            "--admin",
            "--password",
            "x",
            "--insecure-skip-tls-verify",
        ])
        .fails_with(&format!(
            "cannot connect to the Kargo API server at {url}: connection refused"
        ));
}

#[test]
fn the_password_is_prompted_for_on_the_terminal_without_echo() {
    let server = Server::start();
    let kargo = Kargo::new();
    let ca = server.ca();
    let shown = kargo.run_on_terminal(
        &[
            "login",
            &server.url,
            "--admin",
            "--certificate-authority",
            ca.to_str().unwrap(),
        ],
        "Admin user password: ",
        ADMIN_PASSWORD,
    );
    assert_eq!(
        (shown.code, shown.stdout.as_str()),
        (0, "Admin user password: \r\n"),
        "the terminal showed:\n{}\nstderr:\n{}",
        shown.stdout,
        shown.stderr
    );
    assert!(kargo.config_text().contains("bearerToken: eyJ"));

    let without_terminal = Kargo::new();
    without_terminal
        .run_without_terminal(&[
            "login",
            &server.url,
            "--admin",
            "--insecure-skip-tls-verify",
        ])
        .fails_with("--password is required when there is no terminal to prompt for it on");
}

#[test]
fn the_default_project_is_set_read_and_unset() {
    let kargo = Kargo::new();
    kargo.run(&["config", "view"]).prints("{}\n");
    kargo
        .run(&["config", "get-project"])
        .fails_with("default project is not set");
    kargo
        .run(&["config", "set-project", " My-Project "])
        .prints("");
    kargo.run(&["config", "get-project"]).prints("my-project\n");
    assert_eq!(kargo.config_text(), "project: my-project\n");
    kargo.run(&["config", "set-project", ""]).prints("");
    kargo
        .run(&["config", "get-project"])
        .fails_with("default project is not set");
}

#[test]
fn a_broken_config_file_is_named_in_the_error() {
    let kargo = Kargo::new();
    kargo.write_config("apiAddress: [unclosed\n");
    let path = kargo.config_path();
    let line = kargo
        .run(&["get", "projects"])
        .fails_starting_with(&format!(
            "cannot parse the configuration file {}: ",
            path.display()
        ))
        .to_owned();
    assert!(!line.contains("bearerToken"), "{line}");
}

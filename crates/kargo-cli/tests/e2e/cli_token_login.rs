//! Issue 19, item 4: using a ServiceAccount token with the CLI without base64-encoding a CA by
//! hand: `kargo login URL --token T` checks and saves the token, and the configuration file
//! takes a CA file path (`certificateAuthority`) beside the inline `certificateAuthorityData`.

use crate::cli_harness::{Kargo, mask_ages, viewer_with_token};
use crate::harness::Server;

const P: &str = "my-project";

#[test]
fn login_with_a_token_saves_a_working_configuration() {
    let server = Server::start();
    let (admin, token) = viewer_with_token(&server, P);
    let ca = server.ca();
    let ca = ca.to_str().unwrap();

    let ci = Kargo::new();
    ci.run(&[
        "login",
        &server.url,
        "--token",
        &token,
        "--certificate-authority",
        ca,
    ])
    .prints("");
    let config = ci.config_text();
    for expected in [
        format!("apiAddress: {}\n", server.url),
        "authMethod: token\n".to_owned(),
        format!("bearerToken: {token}\n"),
        "certificateAuthorityData: LS0t".to_owned(),
    ] {
        assert!(config.contains(&expected), "no {expected:?} in:\n{config}");
    }
    ci.run(&["config", "set-project", P]).prints("");
    let sas = ci.run(&["get", "sas"]);
    assert_eq!(mask_ages(sas.ok()), "NAME   AGE\nci     AGE\n");
    ci.run(&["create", "sa", "x"])
        .fails_with("serviceaccounts \"x\" is forbidden: create is not permitted");
    let whoami = ci.run(&["whoami"]);
    let table = whoami.ok();
    assert!(
        table.contains("system:serviceaccount:my-project:ci")
            && table.contains("Logged in with   token"),
        "{table}"
    );
    assert!(
        ci.run(&["config", "view"])
            .ok()
            .contains("bearerToken: '*** REDACTED ***'"),
        "the token is masked"
    );

    // From standard input, so the token is not in the shell's history.
    let piped = Kargo::new();
    piped
        .run_with_input(
            &[
                "login",
                &server.url,
                "--token",
                "-",
                "--certificate-authority",
                ca,
            ],
            &format!("{token}\n"),
        )
        .prints("");
    piped
        .run(&["get", "sas", "-p", P, "-o", "name"])
        .prints("serviceaccount/ci\n");

    // A token the server refuses is not saved.
    let wrong = Kargo::new();
    wrong
        .run(&[
            "login",
            &server.url,
            "--token",
            "not-a-token",
            "--certificate-authority",
            ca,
        ])
        .fails_with("invalid token");
    assert!(!wrong.config_path().exists(), "a refused token was saved");
    wrong
        .run(&[
            "login",
            &server.url,
            "--token",
            "",
            "--certificate-authority",
            ca,
        ])
        .fails_with("the token must not be empty");
    wrong
        .run(&["login", &server.url, "--token", "t", "--admin"])
        .fails_with("the argument '--token <TOKEN>' cannot be used with '--admin'");

    // Deleting the token ends it for the saved configuration as for everyone.
    admin.run(&["delete", "sat", "-p", P, "ci-token"]).ok();
    ci.run(&["get", "sas"]).fails_with("invalid token");
}

#[test]
fn the_configuration_takes_a_ca_file_path() {
    let server = Server::start();
    let (_admin, token) = viewer_with_token(&server, P);
    let ca = server.ca();

    // An absolute path.
    let absolute = Kargo::new();
    absolute.write_config(&format!(
        "apiAddress: {}\nbearerToken: {token}\ncertificateAuthority: {}\nproject: {P}\n",
        server.url,
        ca.display()
    ));
    absolute
        .run(&["get", "sas", "-o", "name"])
        .prints("serviceaccount/ci\n");

    // A relative path: from the configuration file's directory.
    let relative = Kargo::new();
    relative.write_config(&format!(
        "apiAddress: {}\nbearerToken: {token}\ncertificateAuthority: ca.crt\nproject: {P}\n",
        server.url
    ));
    let dir = relative.config_path().parent().unwrap().to_owned();
    std::fs::copy(&ca, dir.join("ca.crt")).unwrap();
    relative
        .run(&["get", "sas", "-o", "name"])
        .prints("serviceaccount/ci\n");
    // Logging in again without --certificate-authority keeps the path as written.
    relative
        .run(&["login", &server.url, "--token", &token])
        .prints("");
    assert!(
        relative
            .config_text()
            .contains("certificateAuthority: ca.crt\n"),
        "{}",
        relative.config_text()
    );

    // A missing file, or both forms at once, is an error naming the file.
    let missing = Kargo::new();
    missing.write_config(&format!(
        "apiAddress: {}\nbearerToken: {token}\ncertificateAuthority: /nonexistent/ca.crt\n",
        server.url
    ));
    missing.run(&["get", "sas", "-p", P]).fails_with(
        "cannot read the certificate authority file /nonexistent/ca.crt: No such file or directory",
    );
    let both = Kargo::new();
    both.write_config(&format!(
        "apiAddress: {}\nbearerToken: {token}\ncertificateAuthority: {}\ncertificateAuthorityData: LS0t\n",
        server.url,
        ca.display()
    ));
    both.run(&["get", "sas", "-p", P]).fails_with(&format!(
        "the configuration file {} has an invalid certificateAuthorityData: certificateAuthority is set too; keep only one of them",
        both.config_path().display()
    ));
}

//! Issue 19, item 3: errors name what the user typed, keep clap's "did you mean" tips, say "not
//! logged in" when that is the problem, reject unknown boolean spellings in the environment and
//! stay one line; revoking a role an account does not have is an error; `create -o name` prints
//! kubectl's `TYPE/NAME`.

use crate::cli_harness::{Kargo, account_with_role, viewer_with_token};
use crate::harness::Server;

const P: &str = "my-project";
const NOT_LOGGED_IN: &str =
    "seems like you are not logged in; please use `kargo login` to authenticate";

fn with_project(server: &Server) -> Kargo {
    let admin = Kargo::logged_in(server);
    admin.run(&["create", "project", P]).ok();
    admin
}

#[test]
fn missing_objects_are_named_by_the_kind_typed() {
    let server = Server::start();
    let admin = with_project(&server);
    admin.run(&["create", "sa", "-p", P, "my-sa"]).ok();
    admin.run(&["create", "role", "-p", P, "developer"]).ok();
    let cases: &[(&[&str], &str)] = &[
        (
            &["get", "sat", "-p", P, "x"],
            "serviceaccounttokens \"x\" not found",
        ),
        (
            &["delete", "sat", "-p", P, "x"],
            "serviceaccounttokens \"x\" not found",
        ),
        (
            &["get", "sat", "--system", "x"],
            "serviceaccounttokens \"x\" not found",
        ),
        (&["get", "role", "-p", P, "x"], "roles \"x\" not found"),
        (&["delete", "role", "-p", P, "x"], "roles \"x\" not found"),
        (
            &[
                "grant",
                "-p",
                P,
                "--role",
                "x",
                "--service-account",
                "my-sa",
            ],
            "roles \"x\" not found",
        ),
        (
            &[
                "revoke",
                "-p",
                P,
                "--role",
                "x",
                "--service-account",
                "my-sa",
            ],
            "roles \"x\" not found",
        ),
        (
            &[
                "grant",
                "-p",
                P,
                "--role",
                "x",
                "--resource-type",
                "stages",
                "--verb",
                "get",
            ],
            "roles \"x\" not found",
        ),
        (
            &["revoke", "-p", P, "--role", "x", "--claim", "email=a@b.c"],
            "roles \"x\" not found",
        ),
        // What is missing is the account, and the error says so.
        (
            &[
                "grant",
                "-p",
                P,
                "--role",
                "developer",
                "--service-account",
                "x",
            ],
            "serviceaccounts \"x\" not found",
        ),
        (
            &["create", "sat", "-p", P, "--service-account", "x", "t"],
            "serviceaccounts \"x\" not found",
        ),
        (
            &["get", "sa", "-p", P, "x"],
            "serviceaccounts \"x\" not found",
        ),
        // A project that does not exist is named as before.
        (
            &[
                "grant",
                "-p",
                "nope",
                "--role",
                "x",
                "--service-account",
                "my-sa",
            ],
            "projects.kargo.akuity.io \"nope\" not found",
        ),
    ];
    for (args, message) in cases {
        admin.run(args).fails_with(message);
    }
}

#[test]
fn revoking_a_role_the_account_does_not_have_is_an_error() {
    let server = Server::start();
    let admin = with_project(&server);
    for sa in ["a", "b"] {
        admin.run(&["create", "sa", "-p", P, sa]).ok();
    }
    admin.run(&["create", "role", "-p", P, "developer"]).ok();
    admin
        .run(&["revoke", "-p", P, "--role", "developer", "--service-account", "a"])
        .fails_with(
            "ServiceAccount \"a\" in project \"my-project\" does not have role \"developer\": nothing to revoke (nothing was changed)",
        );
    admin
        .run(&[
            "grant",
            "-p",
            P,
            "--role",
            "developer",
            "--service-account",
            "a",
        ])
        .prints("role.rbac.kargo.akuity.io/developer updated\n");
    // One of two lacks it: nothing is revoked from the other either.
    admin
        .run(&["revoke", "-p", P, "--role", "developer", "--service-account", "a,b"])
        .fails_with(
            "ServiceAccount \"b\" in project \"my-project\" does not have role \"developer\": nothing to revoke (nothing was changed)",
        );
    admin
        .run(&[
            "get",
            "role",
            "-p",
            P,
            "developer",
            "-o",
            "jsonpath={.serviceAccounts[*].name}",
        ])
        .prints("a");
    admin
        .run(&[
            "revoke",
            "-p",
            P,
            "--role",
            "developer",
            "--service-account",
            "a",
        ])
        .prints("role.rbac.kargo.akuity.io/developer updated\n");
    admin
        .run(&[
            "revoke",
            "-p",
            P,
            "--role",
            "developer",
            "--service-account",
            "a",
        ])
        .fails_starting_with("ServiceAccount \"a\" in project \"my-project\" does not have role");

    // The same for users with claims: each NAME=VALUE must be granted.
    admin
        .run(&[
            "grant",
            "-p",
            P,
            "--role",
            "developer",
            "--claim",
            "email=a@b.c",
        ])
        .prints("role.rbac.kargo.akuity.io/developer updated\n");
    admin
        .run(&["revoke", "-p", P, "--role", "developer", "--claim", "email=a@b.c", "--claim", "email=x@y.z"])
        .fails_with(
            "role \"developer\" in project \"my-project\" is not granted to the claim email=x@y.z: nothing to revoke (nothing was changed)",
        );
    admin
        .run(&[
            "revoke",
            "-p",
            P,
            "--role",
            "developer",
            "--claim",
            "email=a@b.c",
        ])
        .prints("role.rbac.kargo.akuity.io/developer updated\n");
    let role: serde_json::Value = serde_json::from_str(
        admin
            .run(&["get", "role", "-p", P, "developer", "-o", "json"])
            .ok(),
    )
    .unwrap();
    assert_eq!(role.get("claims"), None, "{role}");
}

#[test]
fn create_with_output_name_prints_kubectls_type_slash_name() {
    let server = Server::start();
    let admin = Kargo::logged_in(&server);
    admin
        .run(&["create", "project", P, "-o", "name"])
        .prints("project.kargo.akuity.io/my-project\n");
    admin
        .run(&["create", "sa", "-p", P, "my-sa", "-o", "name"])
        .prints("serviceaccount/my-sa\n");
    admin
        .run(&["create", "role", "-p", P, "developer", "-o", "name"])
        .prints("role.rbac.kargo.akuity.io/developer\n");
    admin
        .run(&[
            "create",
            "sat",
            "-p",
            P,
            "--service-account",
            "my-sa",
            "t",
            "-o",
            "name",
        ])
        .prints("serviceaccounttoken.kargo.akuity.io/t\n");
    admin
        .run(&[
            "grant",
            "-p",
            P,
            "--role",
            "developer",
            "--service-account",
            "my-sa",
            "-o",
            "name",
        ])
        .prints("role.rbac.kargo.akuity.io/developer\n");
}

#[test]
fn not_logged_in_comes_before_a_missing_project() {
    let server = Server::start();
    let admin = with_project(&server);
    admin.run(&["logout"]).prints("");
    let commands: &[&[&str]] = &[
        &["get", "sas"],
        &["get", "projects"],
        &["create", "sa", "my-sa"],
        &["delete", "sat", "t"],
        &["grant", "--role", "r", "--service-account", "my-sa"],
        &["revoke", "--role", "r", "--claim", "a=b"],
        &["whoami"],
    ];
    for args in commands {
        admin.run(args).fails_with(NOT_LOGGED_IN);
        Kargo::new().run(args).fails_with(NOT_LOGGED_IN);
    }
    // Flag mistakes are still caught first.
    admin
        .run(&["grant", "--service-account", "my-sa"])
        .fails_with("--role is required");
}

#[test]
fn clap_keeps_its_did_you_mean_tips_on_the_one_line() {
    let kargo = Kargo::new();
    kargo.run(&["get", "serviceacount"]).fails_with(
        "unrecognized subcommand 'serviceacount'; tip: some similar subcommands exist: 'serviceaccounttokens', 'serviceaccounttoken', 'serviceaccounts', 'serviceaccount'",
    );
    kargo.run(&["get", "sas", "--projct", "p"]).fails_with(
        "unexpected argument '--projct' found; tip: a similar argument exists: '--project'",
    );
    kargo.run(&["grnat"]).fails_with(
        "unrecognized subcommand 'grnat'; tip: some similar subcommands exist: 'create', 'grant'",
    );
}

#[test]
fn unknown_boolean_spellings_in_the_environment_are_errors() {
    let server = Server::start();
    let (_admin, token) = viewer_with_token(&server, P);
    for (variable, value) in [
        ("KARGO_INSECURE_SKIP_TLS_VERIFY", "yes"),
        ("KARGO_INSECURE_SKIP_TLS_VERIFY", "on"),
        ("KARGO_SSO_NO_BROWSER", "y"),
    ] {
        let mut job = Kargo::new();
        job.set_env("KARGO_API_ADDRESS", &server.url);
        job.set_env("KARGO_API_TOKEN", "t");
        job.set_env(variable, value);
        job.run(&["get", "projects"]).fails_with(&format!(
            "invalid value \"{value}\" for {variable}: use true or false (or 1 or 0)"
        ));
    }
    // The accepted spellings work (1 and TRUE as true; false checks the certificate).
    for (value, works) in [("1", true), ("TRUE", true), ("false", false), ("0", false)] {
        let mut job = Kargo::new();
        job.set_env("KARGO_API_ADDRESS", &server.url);
        job.set_env("KARGO_API_TOKEN", &token);
        job.set_env("KARGO_INSECURE_SKIP_TLS_VERIFY", value);
        let out = job.run(&["get", "sas", "-p", P, "-o", "name"]);
        if works {
            out.prints("serviceaccount/ci\n");
        } else {
            out.fails_starting_with(&format!("TLS handshake with {} failed", server.url));
        }
    }
}

#[test]
fn an_escalation_refusal_is_one_line() {
    let server = Server::start();
    let admin = with_project(&server);
    let token = account_with_role(&admin, P, "boss", "kargo-admin");
    admin.run(&["create", "role", "-p", P, "deployer"]).ok();
    let boss = Kargo::with_token(&admin, &token);
    // kargo-admin may read analysis runs, not create them: granting that is an escalation.
    let line = boss
        .run(&[
            "grant", "-p", P, "--role", "deployer", "--resource-type", "analysisruns", "--verb",
            "create",
        ])
        .fails_starting_with(
            "roles.rbac.authorization.k8s.io \"deployer\" is forbidden: user \"system:serviceaccount:my-project:boss\"",
        )
        .to_owned();
    assert!(
        line.contains("is attempting to grant RBAC permissions not currently held: {"),
        "{line}"
    );
}

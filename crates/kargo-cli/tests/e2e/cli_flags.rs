//! Command-line mistakes, caught before any request: the CLI is configured with a server that is
//! down, so a command that got as far as sending would say "cannot connect" instead. Every
//! mistake is one `Error:` line and exit code 1; `--help` works everywhere.

use crate::cli_harness::Kargo;

const DOWN: &str = "https://127.0.0.1:1";

fn down() -> Kargo {
    let kargo = Kargo::new();
    kargo.write_config(&format!("apiAddress: {DOWN}\nbearerToken: some-token\n"));
    kargo
}

#[test]
fn flag_rules_fail_before_any_request() {
    let kargo = down();
    let cases: &[(&[&str], &str)] = &[
        // grant / revoke rules
        (
            &["grant", "-p", "p", "--service-account", "sa"],
            "--role is required",
        ),
        (
            &["revoke", "-p", "p", "--role", "r"],
            "one of --claim, --service-account or --resource-type is required",
        ),
        (
            &[
                "grant",
                "-p",
                "p",
                "--role",
                "r",
                "--claim",
                "a=b",
                "--service-account",
                "sa",
            ],
            "--claim and --service-account cannot be used together: give only one of --claim, --service-account or --resource-type",
        ),
        (
            &[
                "grant",
                "-p",
                "p",
                "--role",
                "r",
                "--claim",
                "a=b",
                "--resource-type",
                "stages",
                "--verb",
                "get",
            ],
            "--claim and --resource-type cannot be used together: give only one of --claim, --service-account or --resource-type",
        ),
        (
            &[
                "grant",
                "-p",
                "p",
                "--role",
                "r",
                "--resource-type",
                "stages",
            ],
            "--resource-type requires --verb",
        ),
        (
            &["revoke", "-p", "p", "--role", "r", "--verb", "get"],
            "--verb requires --resource-type",
        ),
        (
            &["grant", "-p", "p", "--role", "r", "--claim", "email"],
            "--claim must be NAME=VALUE, got \"email\"",
        ),
        (
            &["create", "role", "-p", "p", "r", "--claim", "email"],
            "--claim must be NAME=VALUE, got \"email\"",
        ),
        // a project is needed
        (
            &["create", "serviceaccount", "my-sa"],
            "--project is required (or set a default project with `kargo config set-project NAME`)",
        ),
        (
            &["get", "serviceaccounttokens"],
            "either --project or --system is required (or set a default project with `kargo config set-project NAME`)",
        ),
        (
            &["grant", "--role", "r", "--service-account", "sa"],
            "--project is required (or set a default project with `kargo config set-project NAME`)",
        ),
        // clap's own rules, flattened to one line
        (
            &["create", "serviceaccounttoken", "-p", "p", "t"],
            "the following required arguments were not provided: --service-account <NAME>",
        ),
        (
            &["delete", "serviceaccount", "-p", "p"],
            "the following required arguments were not provided: <NAME>...",
        ),
        (
            &["get", "sas", "--project", "p", "--system"],
            "the argument '--project <PROJECT>' cannot be used with '--system'",
        ),
        (
            &["create", "sa", "-p", "p", "x", "--system"],
            "unexpected argument '--system' found",
        ),
        (
            &["get", "stages"],
            "unrecognized subcommand 'stages'; tip: some similar subcommands exist: 'sat', 'satokens', 'sa', 'sats'",
        ),
        (
            &["get", "sas", "-p", "p", "-o", "table"],
            "invalid value 'table' for '--output <FORMAT>': unknown output format \"table\" (use json, yaml, name, wide, custom-columns=SPEC or jsonpath=TEMPLATE)",
        ),
        (
            &["create", "sa", "-p", "p", "x", "-o", "wide"],
            "-o wide is for tables (kargo get); use json, yaml, name or jsonpath=TEMPLATE",
        ),
        // names that would change the URL
        (
            &["get", "sas", "-p", "p", ".."],
            "invalid name \"..\": may not be '.' or '..'",
        ),
        (
            &["delete", "sat", "-p", "..", "t"],
            "invalid name \"..\": may not be '.' or '..'",
        ),
        (
            &["completion", "tcsh"],
            "invalid value 'tcsh' for '<SHELL>' [possible values: bash, elvish, fish, powershell, zsh]; tip: a similar value exists: 'zsh'",
        ),
    ];
    for (args, message) in cases {
        kargo.run(args).fails_with(message);
    }
}

#[test]
fn a_server_that_is_down_is_one_line_for_every_command() {
    let kargo = down();
    let refused = format!("cannot connect to the Kargo API server at {DOWN}: connection refused");
    let commands: &[&[&str]] = &[
        &["create", "project", "my-project"],
        &["get", "projects"],
        &["delete", "project", "my-project"],
        &["create", "serviceaccount", "-p", "my-project", "my-sa"],
        &["get", "serviceaccounts", "-p", "my-project"],
        &["get", "serviceaccounts", "--system"],
        &["delete", "serviceaccount", "-p", "my-project", "my-sa"],
        &[
            "create",
            "serviceaccounttoken",
            "-p",
            "my-project",
            "--service-account",
            "my-sa",
            "t",
        ],
        &[
            "get",
            "serviceaccounttokens",
            "-p",
            "my-project",
            "--service-account",
            "my-sa",
        ],
        &["delete", "serviceaccounttoken", "-p", "my-project", "t"],
        &["disable", "serviceaccounttoken", "-p", "my-project", "t"],
        &["enable", "serviceaccounttoken", "-p", "my-project", "t"],
        &["rotate", "serviceaccounttoken", "-p", "my-project", "t"],
        &["create", "role", "-p", "my-project", "developer"],
        &["get", "roles", "-p", "my-project"],
        &["delete", "role", "-p", "my-project", "developer"],
        &[
            "grant",
            "-p",
            "my-project",
            "--role",
            "developer",
            "--service-account",
            "my-sa",
        ],
        &[
            "revoke",
            "-p",
            "my-project",
            "--role",
            "developer",
            "--claim",
            "email=a@b.c",
        ],
    ];
    for args in commands {
        kargo.run(args).fails_with(&refused);
    }
}

#[test]
fn the_default_project_stands_in_for_project() {
    let kargo = down();
    kargo
        .run(&["config", "set-project", "my-project"])
        .prints("");
    kargo.run(&["get", "serviceaccounts"]).fails_with(&format!(
        "cannot connect to the Kargo API server at {DOWN}: connection refused"
    ));
}

#[test]
fn every_command_has_help_with_an_example_from_the_guide() {
    let kargo = Kargo::new();
    let cases: &[(&[&str], &str)] = &[
        (
            &["create", "serviceaccount", "--help"],
            "kargo create serviceaccount --project my-project my-sa",
        ),
        (
            &["get", "sas", "--help"],
            "kargo get serviceaccounts --project my-project",
        ),
        (
            &["grant", "--help"],
            "kargo grant --project my-project --role developer --service-account my-sa",
        ),
        (
            &["revoke", "--help"],
            "kargo revoke --project my-project --role developer --service-account my-sa",
        ),
        (
            &["create", "sat", "--help"],
            "kargo create serviceaccounttoken --project my-project --service-account my-sa my-sa-token",
        ),
        (
            &["get", "sats", "--help"],
            "kargo get serviceaccounttoken --project my-project my-sa-token -o yaml",
        ),
        (
            &["delete", "sat", "--help"],
            "kargo delete serviceaccounttoken --project my-project my-sa-token",
        ),
        (
            &["disable", "sat", "--help"],
            "kargo disable serviceaccounttoken --project my-project my-sa-token",
        ),
        (
            &["enable", "sat", "--help"],
            "kargo enable sat --project my-project my-sa-token",
        ),
        (
            &["rotate", "sat", "--help"],
            "kargo rotate sat --project my-project my-sa-token --grace 24h",
        ),
        (
            &["delete", "sa", "--help"],
            "kargo delete serviceaccount --project my-project my-sa",
        ),
        (
            &["login", "--help"],
            "kargo login https://127.0.0.1:8443 --admin",
        ),
        (
            &["--help"],
            "kargo create serviceaccount --project my-project my-sa",
        ),
    ];
    for (args, example) in cases {
        let help = kargo.run(args);
        assert!(
            help.ok().contains(example),
            "`kargo {}` lacks the example {example:?}:\n{}",
            args.join(" "),
            help.stdout
        );
    }
}

#[test]
fn completion_scripts_run_this_kargo_for_every_shell() {
    // The scripts register dynamic completion: on TAB they run this binary with KARGO_COMPLETE
    // set (what they then offer is tested in `cli_completion`, in the real shells).
    let kargo = Kargo::new();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = kargo.run(&["completion", shell]);
        let text = script.ok();
        for word in ["KARGO_COMPLETE", env!("CARGO_BIN_EXE_kargo")] {
            assert!(
                text.contains(word),
                "{shell} completion lacks {word}:\n{text}"
            );
        }
    }
}

//! Issue 5: the ServiceAccounts user guide (`spec/kargo-serviceaccounts-guide.txt`), replayed
//! command by command with the real `kargo` CLI against a real `kargo server`. Output is compared
//! byte for byte where the guide is exact (ages and token values aside; the spec's decisions
//! table wins where it differs: `serviceaccount/my-sa created`, `No resources found` on stderr).
//!
//! The guide assumes a project and a role named `developer`; the test creates both, and lets
//! `developer` read ServiceAccounts so the token has something to do. Then it uses the token as
//! the guide says, with kubectl and with the CLI (its configuration file's `bearerToken`), deletes
//! it, and shows both are refused.

use crate::cli_harness::{Kargo, mask_ages, token_from_banner};
use crate::harness::{Server, eventually};

const PROJECT: &str = "my-project";

#[test]
fn the_serviceaccounts_guide_works_as_written() {
    let server = Server::start();
    let admin = Kargo::logged_in(&server);

    // What the guide takes for granted.
    admin
        .run(&["create", "project", PROJECT])
        .prints("project.kargo.akuity.io/my-project created\n");
    admin
        .run(&["create", "role", "--project", PROJECT, "developer"])
        .prints("role.rbac.kargo.akuity.io/developer created\n");
    admin
        .run(&[
            "grant",
            "--project",
            PROJECT,
            "--role",
            "developer",
            "--resource-type",
            "serviceaccounts",
            "--verb",
            "get,list",
        ])
        .prints("role.rbac.kargo.akuity.io/developer updated\n");

    // Creating ServiceAccounts
    admin
        .run(&["create", "serviceaccount", "--project", PROJECT, "my-sa"])
        .prints("serviceaccount/my-sa created\n");
    let list = admin.run(&["get", "serviceaccounts", "--project", PROJECT]);
    assert_eq!(
        mask_ages(list.ok()),
        "NAME    AGE\nmy-sa   AGE\n",
        "{}",
        list.stdout
    );

    // Assigning Roles
    admin
        .run(&[
            "grant",
            "--project",
            PROJECT,
            "--role",
            "developer",
            "--service-account",
            "my-sa",
        ])
        .prints("role.rbac.kargo.akuity.io/developer updated\n");

    // Creating Authentication Tokens
    let token = token_from_banner(&admin.run(&[
        "create",
        "serviceaccounttoken",
        "--project",
        PROJECT,
        "--service-account",
        "my-sa",
        "my-sa-token",
    ]));
    let tokens_table = "NAME          SERVICE ACCOUNT   KARGO MANAGED   AGE\n\
                        my-sa-token   my-sa             true            AGE\n";
    let all = admin.run(&["get", "serviceaccounttokens", "--project", PROJECT]);
    assert_eq!(mask_ages(all.ok()), tokens_table, "{}", all.stdout);
    let of_sa = admin.run(&[
        "get",
        "serviceaccounttokens",
        "--project",
        PROJECT,
        "--service-account",
        "my-sa",
    ]);
    assert_eq!(mask_ages(of_sa.ok()), tokens_table, "{}", of_sa.stdout);
    let details = admin.run(&[
        "get",
        "serviceaccounttoken",
        "--project",
        PROJECT,
        "my-sa-token",
        "-o",
        "yaml",
    ]);
    let yaml = details.ok();
    for expected in [
        "apiVersion: v1\n",
        "  token: KioqIFJFREFDVEVEICoqKg==\n",
        "kind: Secret\n",
        "    kubernetes.io/service-account.name: my-sa\n",
        "    rbac.kargo.akuity.io/managed: \"true\"\n",
        "    rbac.kargo.akuity.io/service-account-token: \"true\"\n",
        "  name: my-sa-token\n",
        "  namespace: my-project\n",
        "type: kubernetes.io/service-account-token\n",
    ] {
        assert!(yaml.contains(expected), "no {expected:?} in:\n{yaml}");
    }
    assert!(!yaml.contains(&token), "the token value was not redacted");

    // Using Authentication Tokens: kubectl ...
    let kubeconfig = server.token_kubeconfig("ci", &token, PROJECT);
    let names = server.kubectl_with(&kubeconfig, &["get", "serviceaccounts", "-o", "name"], None);
    assert!(
        names.ok().contains("serviceaccount/my-sa\n"),
        "{}",
        names.stdout
    );
    let denied = server.kubectl_with(&kubeconfig, &["create", "serviceaccount", "x"], None);
    assert!(
        denied.err().contains(
            "User \"system:serviceaccount:my-project:my-sa\" cannot create resource \"serviceaccounts\""
        ),
        "{}",
        denied.stderr
    );
    // ... and the kargo CLI, configured by editing ~/.config/kargo/config.
    let ci = Kargo::with_token(&admin, &token);
    let seen = ci.run(&["get", "serviceaccounts", "--project", PROJECT, "my-sa"]);
    assert_eq!(mask_ages(seen.ok()), "NAME    AGE\nmy-sa   AGE\n");
    // With exactly the account's permissions: reading ServiceAccounts, nothing else.
    ci.run(&["create", "serviceaccount", "--project", PROJECT, "other"])
        .fails_with("serviceaccounts \"other\" is forbidden: create is not permitted");
    ci.run(&["get", "serviceaccounttokens", "--project", PROJECT])
        .fails_with("secrets is forbidden: list is not permitted");

    // Deleting Authentication Tokens
    admin
        .run(&[
            "delete",
            "serviceaccounttoken",
            "--project",
            PROJECT,
            "my-sa-token",
        ])
        .prints("serviceaccounttoken.kargo.akuity.io/my-sa-token deleted\n");
    let none = admin.run(&["get", "serviceaccounttokens", "--project", PROJECT]);
    assert_eq!(
        (none.code, none.stdout.as_str(), none.stderr.as_str()),
        (0, "", "No resources found in project \"my-project\".\n")
    );
    // The deleted token is refused at once, by kubectl and by the CLI.
    let refused = server.kubectl_with(&kubeconfig, &["get", "serviceaccounts"], None);
    assert_eq!(
        refused.err(),
        "error: You must be logged in to the server (Unauthorized)\n"
    );
    ci.run(&["get", "serviceaccounts", "--project", PROJECT])
        .fails_with("invalid token");

    // Revoking Roles
    admin
        .run(&[
            "revoke",
            "--project",
            PROJECT,
            "--role",
            "developer",
            "--service-account",
            "my-sa",
        ])
        .prints("role.rbac.kargo.akuity.io/developer updated\n");

    // Deleting ServiceAccounts
    admin
        .run(&["delete", "serviceaccount", "--project", PROJECT, "my-sa"])
        .prints("serviceaccount/my-sa deleted\n");
    let gone = admin.run(&["get", "serviceaccounts", "--project", PROJECT]);
    assert_eq!(
        (gone.code, gone.stdout.as_str(), gone.stderr.as_str()),
        (0, "", "No resources found in project \"my-project\".\n")
    );

    // CLI Aliases and Shortcuts
    admin
        .run(&["create", "sa", "--project", PROJECT, "my-sa"])
        .prints("serviceaccount/my-sa created\n");
    let sas = admin.run(&["get", "sas", "--project", PROJECT]);
    assert_eq!(mask_ages(sas.ok()), "NAME    AGE\nmy-sa   AGE\n");
    let token_1 = token_from_banner(&admin.run(&[
        "create",
        "sat",
        "--project",
        PROJECT,
        "--service-account",
        "my-sa",
        "my-sa-token-1",
    ]));
    let sats = admin.run(&["get", "sats", "--project", PROJECT]);
    assert_eq!(
        mask_ages(sats.ok()),
        "NAME            SERVICE ACCOUNT   KARGO MANAGED   AGE\n\
         my-sa-token-1   my-sa             true            AGE\n"
    );

    // Deleting a ServiceAccount deletes its tokens as well, and they stop working.
    admin
        .run(&["delete", "sas", "--project", PROJECT, "my-sa"])
        .prints("serviceaccount/my-sa deleted\n");
    assert!(
        eventually(std::time::Duration::from_secs(10), || {
            admin
                .run(&["get", "sats", "--project", PROJECT])
                .stdout
                .is_empty()
        }),
        "the ServiceAccount's tokens outlived it"
    );
    Kargo::with_token(&admin, &token_1)
        .run(&["get", "sas", "--project", PROJECT])
        .fails_with("invalid token");
}

#[test]
fn a_ci_job_can_use_the_token_from_the_environment_instead_of_a_file() {
    let server = Server::start();
    let admin = Kargo::logged_in(&server);
    admin.run(&["create", "project", PROJECT]).ok();
    admin.run(&["create", "sa", "-p", PROJECT, "ci"]).ok();
    admin
        .run(&[
            "grant",
            "-p",
            PROJECT,
            "--role",
            "kargo-viewer",
            "--service-account",
            "ci",
        ])
        .ok();
    let token = token_from_banner(&admin.run(&[
        "create",
        "sat",
        "-p",
        PROJECT,
        "--service-account",
        "ci",
        "ci-token",
    ]));

    let mut job = Kargo::new();
    job.set_env("KARGO_API_ADDRESS", &server.url);
    job.set_env("KARGO_API_TOKEN", &token);
    job.set_env("KARGO_CERTIFICATE_AUTHORITY", server.ca().to_str().unwrap());
    let sas = job.run(&["get", "sas", "-p", PROJECT]);
    assert_eq!(mask_ages(sas.ok()), "NAME   AGE\nci     AGE\n");
    job.run(&["delete", "sa", "-p", PROJECT, "ci"])
        .fails_with("serviceaccounts \"ci\" is forbidden: delete is not permitted");
    assert!(!job.config_path().exists(), "the job wrote a config file");

    let mut insecure = Kargo::new();
    insecure.set_env("KARGO_API_ADDRESS", &server.url);
    insecure.set_env("KARGO_API_TOKEN", &token);
    insecure.set_env("KARGO_INSECURE_SKIP_TLS_VERIFY", "true");
    insecure
        .run(&["get", "sas", "-p", PROJECT, "-o", "name"])
        .prints("serviceaccount/ci\n");

    admin
        .run(&["delete", "sat", "-p", PROJECT, "ci-token"])
        .ok();
    job.run(&["get", "sas", "-p", PROJECT])
        .fails_with("invalid token");
}

//! Every `kargo` command against the Kargo REST API of a real server: outputs in each format,
//! several names at once, the system level, and the server's errors passed through as one
//! `Error:` line each (unknown project, duplicate names, bad input, missing objects).

use crate::cli_harness::{Kargo, mask_ages, token_from_banner};
use crate::harness::Server;

const P: &str = "my-project";

fn with_project(server: &Server) -> Kargo {
    let admin = Kargo::logged_in(server);
    admin
        .run(&["create", "project", P])
        .prints("project.kargo.akuity.io/my-project created\n");
    admin
}

#[test]
fn projects_are_created_listed_shown_and_deleted() {
    let server = Server::start();
    let admin = with_project(&server);
    admin
        .run(&["create", "project", "second"])
        .prints("project.kargo.akuity.io/second created\n");
    let table = admin.run(&["get", "projects"]);
    assert_eq!(
        mask_ages(table.ok()),
        "NAME         PHASE   AGE\nmy-project   Ready   AGE\nsecond       Ready   AGE\n"
    );
    admin
        .run(&["get", "projects", "-o", "name"])
        .prints("project.kargo.akuity.io/my-project\nproject.kargo.akuity.io/second\n");
    let yaml = admin.run(&["get", "project", P, "-o", "yaml"]);
    assert!(
        yaml.ok()
            .starts_with("apiVersion: kargo.akuity.io/v1alpha1\nkind: Project\nmetadata:\n"),
        "{}",
        yaml.stdout
    );
    admin
        .run(&["get", "project", P, "-o", "jsonpath={.status.phase}"])
        .prints("Ready");
    admin
        .run(&["create", "project", P])
        .fails_with("projects.kargo.akuity.io \"my-project\" already exists");
    admin
        .run(&["delete", "project", "second"])
        .prints("project.kargo.akuity.io/second deleted\n");
    admin
        .run(&["get", "project", "second"])
        .fails_with("projects.kargo.akuity.io \"second\" not found");
    admin
        .run(&["create", "project", "Bad_Name"])
        .fails_starting_with(
            "Project.kargo.akuity.io \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\"",
        );
}

#[test]
fn an_unknown_project_is_one_line_for_every_command() {
    let server = Server::start();
    let admin = Kargo::logged_in(&server);
    let message = "projects.kargo.akuity.io \"nope\" not found";
    let commands: &[&[&str]] = &[
        &["get", "sas", "-p", "nope"],
        &["create", "sa", "-p", "nope", "my-sa"],
        &["delete", "sa", "-p", "nope", "my-sa"],
        &["get", "sats", "-p", "nope"],
        &[
            "create",
            "sat",
            "-p",
            "nope",
            "--service-account",
            "my-sa",
            "t",
        ],
        &["delete", "sat", "-p", "nope", "t"],
        &["get", "roles", "-p", "nope"],
        &["create", "role", "-p", "nope", "r"],
        &["delete", "role", "-p", "nope", "r"],
        &[
            "grant",
            "-p",
            "nope",
            "--role",
            "r",
            "--service-account",
            "my-sa",
        ],
        &[
            "revoke",
            "-p",
            "nope",
            "--role",
            "r",
            "--claim",
            "email=a@b.c",
        ],
    ];
    for args in commands {
        admin.run(args).fails_with(message);
    }
}

#[test]
fn service_accounts_print_in_every_format() {
    let server = Server::start();
    let admin = with_project(&server);
    for name in ["a", "b"] {
        admin
            .run(&["create", "sa", "-p", P, name])
            .prints(&format!("serviceaccount/{name} created\n"));
    }
    admin
        .run(&["create", "sa", "-p", P, "a"])
        .fails_with(
            "error creating ServiceAccount \"a\" in namespace \"my-project\": serviceaccounts \"a\" already exists",
        );
    let cases: &[(&[&str], &str)] = &[
        (&[], "NAME   AGE\na      AGE\nb      AGE\n"),
        (&["--no-headers"], "a   AGE\nb   AGE\n"),
        (
            &["-o", "wide"],
            "NAME   KARGO MANAGED   AGE\na      true            AGE\nb      true            AGE\n",
        ),
        (&["-o", "name"], "serviceaccount/a\nserviceaccount/b\n"),
        (&["-o", "jsonpath={.items[*].metadata.name}"], "a b"),
        (&["b", "-o", "jsonpath={.metadata.name}"], "b"),
    ];
    for (flags, expected) in cases {
        let args = [&["get", "sas", "-p", P][..], flags].concat();
        let out = admin.run(&args);
        assert_eq!(mask_ages(out.ok()), *expected, "kargo {}", args.join(" "));
    }
    let one: serde_json::Value =
        serde_json::from_str(admin.run(&["get", "sa", "-p", P, "a", "-o", "json"]).ok()).unwrap();
    assert_eq!(
        (&one["apiVersion"], &one["kind"], &one["metadata"]["name"]),
        (&"v1".into(), &"ServiceAccount".into(), &"a".into())
    );
    assert_eq!(
        one["metadata"]["labels"]["rbac.kargo.akuity.io/service-account"],
        "true"
    );
    let list: serde_json::Value =
        serde_json::from_str(admin.run(&["get", "sas", "-p", P, "-o", "json"]).ok()).unwrap();
    assert_eq!(list["kind"], "List");
    assert_eq!(list["items"][1]["kind"], "ServiceAccount");
    let yaml = admin.run(&["get", "sas", "-p", P, "-o", "yaml"]);
    assert!(
        yaml.ok()
            .starts_with("apiVersion: v1\nitems:\n- apiVersion: v1\n  kind: ServiceAccount\n"),
        "{}",
        yaml.stdout
    );
}

#[test]
fn several_names_print_what_exists_and_one_error_line_per_failure() {
    let server = Server::start();
    let admin = with_project(&server);
    admin.run(&["create", "sa", "-p", P, "a"]).ok();
    let got = admin.run(&["get", "sas", "-p", P, "a", "zz", "yy"]);
    assert_eq!(
        (got.code, mask_ages(&got.stdout), got.stderr.as_str()),
        (
            1,
            "NAME   AGE\na      AGE\n".to_owned(),
            "Error: serviceaccounts \"zz\" not found\nError: serviceaccounts \"yy\" not found\n"
        )
    );
    let deleted = admin.run(&["delete", "sa", "-p", P, "zz", "a", "a"]);
    assert_eq!(
        (
            deleted.code,
            deleted.stdout.as_str(),
            deleted.stderr.as_str()
        ),
        (
            1,
            "serviceaccount/a deleted\n",
            "Error: serviceaccounts \"zz\" not found\n"
        )
    );
}

#[test]
fn tokens_are_created_listed_filtered_and_deleted() {
    let server = Server::start();
    let admin = with_project(&server);
    for sa in ["a", "b"] {
        admin.run(&["create", "sa", "-p", P, sa]).ok();
        token_from_banner(&admin.run(&[
            "create",
            "sat",
            "-p",
            P,
            "--service-account",
            sa,
            &format!("{sa}-token"),
        ]));
    }
    let all = admin.run(&["get", "sats", "-p", P]);
    assert_eq!(
        mask_ages(all.ok()),
        "NAME      SERVICE ACCOUNT   KARGO MANAGED   AGE\n\
         a-token   a                 true            AGE\n\
         b-token   b                 true            AGE\n"
    );
    admin
        .run(&[
            "get",
            "sats",
            "-p",
            P,
            "--service-account",
            "b",
            "-o",
            "name",
        ])
        .prints("serviceaccounttoken.kargo.akuity.io/b-token\n");
    admin
        .run(&["get", "sats", "-p", P, "--service-account", "zz"])
        .fails_with("serviceaccounts \"zz\" not found");
    admin
        .run(&[
            "get",
            "sat",
            "-p",
            P,
            "a-token",
            "-o",
            "jsonpath={.data.token}",
        ])
        .prints("KioqIFJFREFDVEVEICoqKg==");
    admin
        .run(&["create", "sat", "-p", P, "--service-account", "a", "a-token"])
        .fails_with(
            "error creating token Secret \"a-token\" for ServiceAccount \"a\" in namespace \"my-project\": secrets \"a-token\" already exists",
        );
    admin
        .run(&["create", "sat", "-p", P, "--service-account", "zz", "t"])
        .fails_with("serviceaccounts \"zz\" not found");
    // With -o, the created Secret itself, value included (the caller asked for it).
    let created = admin.run(&[
        "create",
        "sat",
        "-p",
        P,
        "--service-account",
        "a",
        "a-token-2",
        "-o",
        "jsonpath={.kind} {.metadata.name}",
    ]);
    created.prints("Secret a-token-2");
    admin
        .run(&["delete", "sat", "-p", P, "a-token", "b-token", "a-token-2"])
        .prints(
            "serviceaccounttoken.kargo.akuity.io/a-token deleted\n\
             serviceaccounttoken.kargo.akuity.io/b-token deleted\n\
             serviceaccounttoken.kargo.akuity.io/a-token-2 deleted\n",
        );
    admin
        .run(&["delete", "sat", "-p", P, "a-token"])
        .fails_with("serviceaccounttokens \"a-token\" not found");
}

#[test]
fn roles_carry_claims_descriptions_and_permissions() {
    let server = Server::start();
    let admin = with_project(&server);
    admin
        .run(&[
            "create",
            "role",
            "-p",
            P,
            "dev",
            "--claim",
            "groups=devops,ops",
            "--claim",
            "email=a@b.c",
            "--description",
            "Developers, of course",
        ])
        .prints("role.rbac.kargo.akuity.io/dev created\n");
    let claims = admin.run(&["get", "role", "-p", P, "dev", "-o", "jsonpath={.claims}"]);
    claims.prints(
        r#"[{"name":"email","values":["a@b.c"]},{"name":"groups","values":["devops,ops"]}]"#,
    );
    admin
        .run(&[
            "grant",
            "-p",
            P,
            "--role",
            "dev",
            "--resource-type",
            "stage",
            "--verb",
            "promote",
        ])
        .fails_with("unrecognized resource type \"stage\"; did you mean \"stages\"?");
    admin
        .run(&[
            "grant", "-p", P, "--role", "dev", "--resource-type", "stages", "--resource-name",
            "dev", "--verb", "promote", "-o", "jsonpath={.rules}",
        ])
        .prints(
            r#"[{"apiGroups":["kargo.akuity.io"],"resourceNames":["dev"],"resources":["stages"],"verbs":["promote"]}]"#,
        );
    admin
        .run(&[
            "revoke",
            "-p",
            P,
            "--role",
            "dev",
            "--claim",
            "groups=devops,ops",
        ])
        .prints("role.rbac.kargo.akuity.io/dev updated\n");
    admin
        .run(&["get", "role", "-p", P, "dev", "-o", "jsonpath={.claims}"])
        .prints(r#"[{"name":"email","values":["a@b.c"]}]"#);
    let yaml = admin.run(&["get", "role", "-p", P, "dev", "-o", "yaml"]);
    assert!(
        yaml.ok()
            .contains("    kargo.akuity.io/description: Developers, of course\n"),
        "{}",
        yaml.stdout
    );
    let roles = admin.run(&["get", "roles", "-p", P]);
    assert_eq!(
        mask_ages(roles.ok()),
        "NAME             KARGO MANAGED   AGE\n\
         default          false           AGE\n\
         dev              true            AGE\n\
         kargo-admin      true            AGE\n\
         kargo-promoter   true            AGE\n\
         kargo-viewer     true            AGE\n"
    );
    admin
        .run(&["delete", "role", "-p", P, "dev"])
        .prints("role.rbac.kargo.akuity.io/dev deleted\n");
    admin
        .run(&["delete", "role", "-p", P, "default"])
        .fails_starting_with("ServiceAccount \"default\" in namespace \"my-project\" is not annotated as Kargo-managed");
}

#[test]
fn the_system_level_lists_its_accounts_and_roles_and_issues_tokens() {
    let server = Server::start();
    let admin = Kargo::logged_in(&server);
    let names = "kargo-admin\nkargo-project-creator\nkargo-user\nkargo-viewer\n";
    let sas = admin.run(&["get", "sas", "--system", "--no-headers", "-o", "name"]);
    sas.prints(
        &names
            .lines()
            .map(|n| format!("serviceaccount/{n}\n"))
            .collect::<String>(),
    );
    let roles = admin.run(&["get", "roles", "--system"]);
    assert_eq!(
        mask_ages(roles.ok()),
        "NAME                    KARGO MANAGED   AGE\n\
         kargo-admin             false           AGE\n\
         kargo-project-creator   false           AGE\n\
         kargo-user              false           AGE\n\
         kargo-viewer            false           AGE\n"
    );
    let none = admin.run(&["get", "sats", "--system"]);
    assert_eq!(
        (none.code, none.stdout.as_str(), none.stderr.as_str()),
        (0, "", "No resources found.\n")
    );
    let token = token_from_banner(&admin.run(&[
        "create",
        "sat",
        "--system",
        "--service-account",
        "kargo-project-creator",
        "creator",
    ]));
    let creator = Kargo::with_token(&admin, &token);
    creator
        .run(&["create", "project", "made-by-ci"])
        .prints("project.kargo.akuity.io/made-by-ci created\n");
    admin
        .run(&["delete", "sat", "--system", "creator"])
        .prints("serviceaccounttoken.kargo.akuity.io/creator deleted\n");
    creator
        .run(&["get", "projects"])
        .fails_with("invalid token");
}

#[test]
fn a_token_the_server_does_not_know_is_refused() {
    let server = Server::start();
    let admin = Kargo::logged_in(&server);
    Kargo::with_token(&admin, "not-a-token")
        .run(&["get", "projects"])
        .fails_with("invalid token");
}

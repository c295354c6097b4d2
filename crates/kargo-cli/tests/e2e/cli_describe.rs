//! `kargo describe` against a real server, as a user reads it: a role shows the ServiceAccounts
//! and claims it is granted to and its rules, a ServiceAccount its roles and tokens, a token
//! never its value, a project its counts; several names are described in turn, and a missing one
//! is an `Error:` line after the others, with exit 1 (issue 19).

use crate::cli_harness::{Kargo, Out, account_with_role};
use crate::harness::Server;

const P: &str = "my-project";

/// A logged-in admin with project `P`, a role `developer` granted to `email=alice@example.com`,
/// may promote to stage `dev`, granted to the ServiceAccount `my-sa`; and `my-sa-token`'s value.
fn developer(server: &Server) -> (Kargo, String) {
    let admin = Kargo::logged_in(server);
    admin.run(&["create", "project", P]).ok();
    admin
        .run(&[
            "create",
            "role",
            "-p",
            P,
            "developer",
            "--claim",
            "email=alice@example.com",
        ])
        .ok();
    admin
        .run(&[
            "grant",
            "-p",
            P,
            "--role",
            "developer",
            "--resource-type",
            "stages",
            "--resource-name",
            "dev",
            "--verb",
            "promote",
        ])
        .ok();
    let token = account_with_role(&admin, P, "my-sa", "developer");
    (admin, token)
}

/// Each RFC 3339 time (`2026-12-07T16:40:36Z`) replaced by `TIME`, so descriptions compare
/// byte for byte.
fn mask_times(text: &str) -> String {
    let is_time = |w: &str| {
        w.len() == 20
            && w.char_indices().all(|(i, c)| match i {
                4 | 7 => c == '-',
                10 => c == 'T',
                13 | 16 => c == ':',
                19 => c == 'Z',
                _ => c.is_ascii_digit(),
            })
    };
    let mut out = String::new();
    for line in text.split_inclusive('\n') {
        let mut rest = line;
        while let Some(start) = rest.find(|c: char| c.is_ascii_digit()) {
            out.push_str(&rest[..start]);
            rest = &rest[start..];
            if rest.get(..20).is_some_and(is_time) {
                out.push_str("TIME");
                rest = &rest[20..];
            } else {
                let len = rest.chars().next().map_or(1, char::len_utf8);
                out.push_str(&rest[..len]);
                rest = &rest[len..];
            }
        }
        out.push_str(rest);
    }
    out
}

#[track_caller]
fn describes(out: &Out, expected: &str) {
    let actual = mask_times(out.ok());
    assert!(
        actual == expected && out.stderr.is_empty(),
        "expected:\n{expected}--- but got ---\n{actual}--- stderr ---\n{}",
        out.stderr
    );
}

#[test]
fn a_granted_role_shows_its_account_claims_and_rules() {
    let server = Server::start();
    let (admin, _) = developer(&server);
    describes(
        &admin.run(&["describe", "role", "-p", P, "developer"]),
        "\
Name:              developer
Namespace:         my-project
Kargo Managed:     true
Created:           TIME
Labels:            <none>
Annotations:       <none>
Service Accounts:  my-sa
Claims:            email=alice@example.com
Rules:
  Resources                Resource Names   Verbs
  ---------                --------------   -----
  stages.kargo.akuity.io   [dev]            [promote]
",
    );
}

#[test]
fn a_service_account_shows_its_roles_and_token_names_and_a_token_never_its_value() {
    let server = Server::start();
    let (admin, token) = developer(&server);
    describes(
        &admin.run(&["describe", "sa", "-p", P, "my-sa"]),
        "\
Name:         my-sa
Namespace:    my-project
Labels:       rbac.kargo.akuity.io/service-account=true
Annotations:  rbac.kargo.akuity.io/managed=true
Created:      TIME
Roles:        developer
Tokens:
  Name          Created
  ----          -------
  my-sa-token   TIME
",
    );
    let described = admin.run(&["describe", "serviceaccounttoken", "-p", P, "my-sa-token"]);
    assert!(
        !described.stdout.contains(&token) && !described.stderr.contains(&token),
        "the token's value is shown:\n{}",
        described.stdout
    );
    let uid = admin.run(&[
        "get",
        "sa",
        "-p",
        P,
        "my-sa",
        "-o",
        "jsonpath={.metadata.uid}",
    ]);
    let expected = format!(
        "\
Name:             my-sa-token
Namespace:        my-project
Service Account:  my-sa
Kargo Managed:    true
Created:          TIME
Labels:           rbac.kargo.akuity.io/service-account-token=true
Annotations:      kubernetes.io/service-account.name=my-sa
                  kubernetes.io/service-account.uid={}
                  rbac.kargo.akuity.io/managed=true
",
        uid.ok()
    );
    describes(&described, &expected);
}

#[test]
fn a_project_counts_its_service_accounts_and_roles() {
    let server = Server::start();
    let (admin, _) = developer(&server);
    // As many as `kargo get` lists: `my-sa`, and `developer` beside the project's default roles.
    let count = |kind: &str| {
        let out = admin.run(&["get", kind, "-p", P, "--no-headers"]);
        out.ok().lines().count()
    };
    let (accounts, roles) = (count("sas"), count("roles"));
    assert_eq!(accounts, 1);
    assert!(roles > 1, "no default roles?");
    describes(
        &admin.run(&["describe", "project", P]),
        &format!(
            "\
Name:              my-project
Created:           TIME
Labels:            <none>
Annotations:       <none>
Phase:             Ready
Service Accounts:  {accounts}
Roles:             {roles}
"
        ),
    );
}

#[test]
fn system_roles_are_described_with_their_rules() {
    let server = Server::start();
    let admin = Kargo::logged_in(&server);
    let out = admin.run(&["describe", "role", "--system", "kargo-admin"]);
    let text = out.ok();
    assert!(
        text.starts_with("Name:              kargo-admin\nNamespace:         kargo\n")
            && text.contains("\nRules:\n  Resources ")
            && out.stderr.is_empty(),
        "{text}"
    );
}

#[test]
fn several_names_are_described_in_turn_and_a_missing_one_fails_after_them() {
    let server = Server::start();
    let (admin, _) = developer(&server);
    admin.run(&["create", "sa", "-p", P, "other"]).ok();
    let out = admin.run(&["describe", "sas", "-p", P, "my-sa", "nope", "other"]);
    let stdout = mask_times(&out.stdout);
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (1, "Error: serviceaccounts \"nope\" not found\n"),
        "{stdout}"
    );
    // Each as `describe` of it alone prints it, two blank lines apart, as kubectl describe
    // prints several objects.
    let alone = |name: &str| {
        let out = admin.run(&["describe", "sa", "-p", P, name]);
        out.ok().to_owned()
    };
    let (my_sa, other) = (alone("my-sa"), alone("other"));
    assert!(
        other.ends_with("\nRoles:        <none>\nTokens:       <none>\n"),
        "{other}"
    );
    assert_eq!(stdout, mask_times(&format!("{my_sa}\n\n{other}")));
    admin
        .run(&["describe", "role", "-p", P, "nope"])
        .fails_with("roles \"nope\" not found");
    admin
        .run(&["describe", "sat", "-p", P, "nope"])
        .fails_with("serviceaccounttokens \"nope\" not found");
    admin
        .run(&["describe", "project", "nope"])
        .fails_with("projects.kargo.akuity.io \"nope\" not found");
}

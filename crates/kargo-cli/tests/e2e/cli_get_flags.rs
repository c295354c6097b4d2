//! Issue 19, item 5 (`get`): kubectl's habits on `kargo get`: `-l/--selector`, `--show-labels`,
//! `--sort-by`, `-o custom-columns=...`, `-o wide` and `-A/--all-projects`, with the real `kargo`
//! binary against a real server, objects labeled with kubectl.

use std::time::Duration;

use crate::cli_harness::{Kargo, Out, viewer_with_token};
use crate::harness::Server;

const P1: &str = "flags-one";
const P2: &str = "flags-two";

/// Lets `ci` of project one list projects (and read nothing more).
const LIST_PROJECTS: &str = "\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: project-lister
rules:
- apiGroups: [kargo.akuity.io]
  resources: [projects]
  verbs: [list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: ci-lists-projects
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: project-lister
subjects:
- kind: ServiceAccount
  name: ci
  namespace: flags-one
";

/// The cells of each table row (cells are separated by 2 spaces or more), with ages as `AGE`.
fn cells(out: &Out) -> Vec<Vec<String>> {
    out.ok()
        .lines()
        .map(|line| {
            line.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(|c| match is_age(c) {
                    true => "AGE".to_owned(),
                    false => c.to_owned(),
                })
                .collect()
        })
        .collect()
}

/// `30s`, `5m30s`, `2d`: a kubectl age.
fn is_age(cell: &str) -> bool {
    cell.starts_with(|c: char| c.is_ascii_digit())
        && cell.ends_with(|c: char| "smhdy".contains(c))
        && cell
            .chars()
            .all(|c| c.is_ascii_digit() || "smhdy".contains(c))
}

fn rows(expected: &[&[&str]]) -> Vec<Vec<String>> {
    expected
        .iter()
        .map(|r| r.iter().map(|c| (*c).to_owned()).collect())
        .collect()
}

/// Creates ServiceAccounts a second apart (creation times have whole seconds).
fn accounts_in_order(admin: &Kargo, project: &str, names: &[&str]) {
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            std::thread::sleep(Duration::from_millis(1100));
        }
        admin.run(&["create", "sa", "-p", project, name]).ok();
    }
}

#[test]
fn selectors_labels_sorting_and_custom_columns_work_like_kubectl() {
    let server = Server::start();
    let admin = Kargo::logged_in(&server);
    admin.run(&["create", "project", P1]).ok();
    accounts_in_order(&admin, P1, &["zeta", "alpha", "mid"]);
    server
        .kubectl(&["label", "sa", "-n", P1, "zeta", "team=red", "tier=web"])
        .ok();
    server
        .kubectl(&["label", "sa", "-n", P1, "alpha", "team=blue"])
        .ok();
    let get = |extra: &[&str]| admin.run(&[&["get", "sas", "-p", P1][..], extra].concat());

    // -l: each operator, filtered by the CLI.
    let selections: &[(&str, &str)] = &[
        ("team=red", "zeta"),
        ("team==blue", "alpha"),
        ("team!=red", "alpha mid"),
        ("team", "alpha zeta"),
        ("!team", "mid"),
        ("team in (red,blue)", "alpha zeta"),
        ("team notin (red)", "alpha mid"),
        ("team=red,tier=web", "zeta"),
        ("team=green", ""),
    ];
    for (selector, names) in selections {
        get(&[
            "-l",
            selector,
            "--sort-by",
            ".metadata.name",
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ])
        .prints(names);
    }
    let none = get(&["--selector", "team=green"]);
    assert_eq!(
        (none.code, none.stdout.as_str(), none.stderr.as_str()),
        (0, "", "No resources found in project \"flags-one\".\n")
    );
    get(&["-l", "team=(red"]).fails_with(
        "invalid value 'team=(red' for '--selector <SELECTOR>': invalid label selector \"team=(red\": unclosed '('",
    );

    // --show-labels: a last LABELS column, sorted keys, as kubectl prints it.
    let labeled = get(&["--show-labels", "--sort-by", ".metadata.name"]);
    assert_eq!(
        labeled.ok().lines().next(),
        Some("NAME    AGE   LABELS"),
        "{}",
        labeled.stdout
    );
    assert_eq!(
        cells(&labeled)[1..],
        rows(&[
            &[
                "alpha",
                "AGE",
                "rbac.kargo.akuity.io/service-account=true,team=blue"
            ],
            &["mid", "AGE", "rbac.kargo.akuity.io/service-account=true"],
            &[
                "zeta",
                "AGE",
                "rbac.kargo.akuity.io/service-account=true,team=red,tier=web"
            ],
        ])[..]
    );

    // --sort-by: by name, by creation time, missing values first; braces or not.
    let order: &[(&str, &str)] = &[
        (
            ".metadata.name",
            "serviceaccount/alpha\nserviceaccount/mid\nserviceaccount/zeta\n",
        ),
        (
            "{.metadata.creationTimestamp}",
            "serviceaccount/zeta\nserviceaccount/alpha\nserviceaccount/mid\n",
        ),
        (
            ".metadata.labels.team",
            "serviceaccount/mid\nserviceaccount/alpha\nserviceaccount/zeta\n",
        ),
    ];
    for (path, expected) in order {
        get(&["--sort-by", path, "-o", "name"]).prints(expected);
    }
    get(&["--sort-by", "metadata.name"]).fails_with(
        "invalid value 'metadata.name' for '--sort-by <JSONPATH>': error executing jsonpath \"metadata.name\": a path must start with '.', as in .metadata.name",
    );

    // -o custom-columns: headers as given, <none> for what is missing, --no-headers kept.
    let custom = "custom-columns=NAME:.metadata.name,TEAM:.metadata.labels.team,Tier:{.metadata.labels.tier}";
    get(&["-o", custom, "--sort-by", ".metadata.creationTimestamp"]).prints(
        "NAME    TEAM     Tier\n\
         zeta    red      web\n\
         alpha   blue     <none>\n\
         mid     <none>   <none>\n",
    );
    get(&["-o", custom, "--no-headers", "-l", "team=blue"]).prints("alpha   blue   <none>\n");
    get(&["-o", "custom-columns=NAME"]).fails_with(
        "invalid value 'custom-columns=NAME' for '--output <FORMAT>': invalid custom-columns \"NAME\": \"NAME\" is not HEADER:PATH, as in NAME:.metadata.name",
    );
    admin
        .run(&["create", "sa", "-p", P1, "x", "-o", "custom-columns=N:.a"])
        .fails_with("-o custom-columns is for tables (kargo get); use json, yaml, name or jsonpath=TEMPLATE");
}

#[test]
fn all_projects_and_wide_tables_show_every_visible_project() {
    let server = Server::start();
    let (admin, viewer_token) = viewer_with_token(&server, P1);
    admin.run(&["create", "project", P2]).ok();
    admin.run(&["create", "sa", "-p", P2, "deployer"]).ok();
    admin
        .run(&[
            "create",
            "sat",
            "-p",
            P2,
            "--service-account",
            "deployer",
            "deployer-token",
        ])
        .ok();
    admin
        .run(&[
            "create",
            "role",
            "-p",
            P2,
            "developer",
            "--claim",
            "groups=devops",
        ])
        .ok();
    admin
        .run(&[
            "grant",
            "-p",
            P2,
            "--role",
            "developer",
            "--service-account",
            "deployer",
        ])
        .ok();

    // -A: a PROJECT column first, every project's objects.
    let accounts = admin.run(&["get", "sas", "-A"]);
    assert_eq!(
        accounts.ok().lines().next(),
        Some("PROJECT     NAME       AGE"),
        "{}",
        accounts.stdout
    );
    assert_eq!(
        cells(&accounts)[1..],
        rows(&[&[P1, "ci", "AGE"], &[P2, "deployer", "AGE"]])[..]
    );
    admin
        .run(&[
            "get",
            "sats",
            "--all-projects",
            "-o",
            "custom-columns=PROJECT:.metadata.namespace,NAME:.metadata.name",
        ])
        .prints("PROJECT     NAME\nflags-one   ci-token\nflags-two   deployer-token\n");
    admin
        .run(&["get", "sas", "-A", "-p", P1])
        .fails_starting_with("the argument '--all-projects' cannot be used with");
    admin
        .run(&["get", "sas", "-A", "ci"])
        .fails_starting_with("the argument '--all-projects' cannot be used with");

    // A user who may not list projects cannot use -A: the server's refusal is the error.
    let viewer = Kargo::with_token(&admin, &viewer_token);
    viewer
        .run(&["get", "sas", "-A"])
        .fails_with("projects.kargo.akuity.io is forbidden: list is not permitted");
    // Allowed to list projects but to read one only: the others (403) are skipped.
    server
        .kubectl_stdin(&["apply", "-f", "-"], LIST_PROJECTS)
        .ok();
    let seen = viewer.run(&["get", "sas", "-A", "--no-headers"]);
    assert_eq!(cells(&seen), rows(&[&[P1, "ci", "AGE"]]));

    // -o wide: tokens add the account's UID and the creation time, roles their accounts and
    // claims.
    let uid = server
        .kubectl(&[
            "get",
            "sa",
            "-n",
            P2,
            "deployer",
            "-o",
            "jsonpath={.metadata.uid}",
        ])
        .ok()
        .to_owned();
    let created = server
        .kubectl(&[
            "get",
            "secret",
            "-n",
            P2,
            "deployer-token",
            "-o",
            "jsonpath={.metadata.creationTimestamp}",
        ])
        .ok()
        .to_owned();
    let tokens = admin.run(&["get", "sats", "-p", P2, "-o", "wide"]);
    assert_eq!(
        cells(&tokens),
        rows(&[
            &[
                "NAME",
                "SERVICE ACCOUNT",
                "KARGO MANAGED",
                "AGE",
                "SERVICE ACCOUNT UID",
                "CREATED",
                "EXPIRES",
                "LAST USED",
                "STATE",
                "DESCRIPTION"
            ],
            &[
                "deployer-token",
                "deployer",
                "true",
                "AGE",
                &uid,
                &created,
                "never",
                "never",
                "active",
                "<none>"
            ],
        ])
    );
    let roles = admin.run(&[
        "get",
        "roles",
        "-p",
        P2,
        "-o",
        "wide",
        "--sort-by",
        ".metadata.name",
    ]);
    let role_rows = cells(&roles);
    assert_eq!(
        role_rows[0],
        ["NAME", "KARGO MANAGED", "AGE", "SERVICE ACCOUNTS", "CLAIMS"]
    );
    assert!(
        role_rows.contains(&vec![
            "developer".to_owned(),
            "true".to_owned(),
            "AGE".to_owned(),
            "deployer".to_owned(),
            "groups=devops".to_owned(),
        ]),
        "{}",
        roles.stdout
    );
    // The example of docs/cli.md.
    admin
        .run(&[
            "get",
            "roles",
            "-p",
            P2,
            "-o",
            "custom-columns=NAME:.metadata.name,ACCOUNTS:.serviceAccounts[*].name",
        ])
        .prints(
            "NAME             ACCOUNTS\n\
         default          <none>\n\
         developer        deployer\n\
         kargo-admin      <none>\n\
         kargo-promoter   <none>\n\
         kargo-viewer     <none>\n",
        );
    // With -A and --show-labels too: PROJECT first, LABELS last.
    let both = admin.run(&[
        "get",
        "roles",
        "-A",
        "-o",
        "wide",
        "--show-labels",
        "-l",
        "x",
    ]);
    assert_eq!(
        (both.code, both.stdout.as_str(), both.stderr.as_str()),
        (0, "", "No resources found.\n")
    );
    let header = admin.run(&["get", "roles", "-A", "-o", "wide", "--show-labels"]);
    assert_eq!(
        cells(&header)[0],
        [
            "PROJECT",
            "NAME",
            "KARGO MANAGED",
            "AGE",
            "SERVICE ACCOUNTS",
            "CLAIMS",
            "LABELS"
        ]
    );
}

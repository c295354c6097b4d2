//! Issue 19, item 2: `kargo get KIND` prints a `List` in json, yaml and jsonpath whatever the
//! count (one item included), as kubectl does; `kargo get KIND NAME` prints the object; several
//! names print a `List`. So `docs/cli.md`'s own `-o jsonpath='{.items[*].metadata.name}'` works
//! with one item.

use serde_json::Value;

use crate::cli_harness::{Kargo, Out};
use crate::harness::Server;

const P: &str = "my-project";

fn json(out: &Out) -> Value {
    serde_json::from_str(out.ok()).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
}

#[test]
fn a_list_is_a_list_with_one_item_and_a_name_is_the_object() {
    let server = Server::start();
    let admin = Kargo::logged_in(&server);
    admin.run(&["create", "project", P]).ok();
    admin.run(&["create", "sa", "-p", P, "my-sa"]).ok();
    admin
        .run(&[
            "create",
            "sat",
            "-p",
            P,
            "--service-account",
            "my-sa",
            "my-sa-token",
        ])
        .ok();

    // The example of docs/cli.md, as written there.
    let docs = std::fs::read_to_string(format!("{}/../../docs/cli.md", env!("CARGO_MANIFEST_DIR")))
        .unwrap();
    assert!(
        docs.contains(
            "kargo get serviceaccounts --project my-project -o jsonpath='{.items[*].metadata.name}'"
        ),
        "docs/cli.md's example changed: update this test"
    );
    admin
        .run(&[
            "get",
            "serviceaccounts",
            "--project",
            P,
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ])
        .prints("my-sa");
    // Upstream's (kubectl's) other JSONPath outputs: the results as a JSON array, and the
    // template read from a file.
    admin
        .run(&[
            "get",
            "serviceaccounts",
            "--project",
            P,
            "-o",
            "jsonpath-as-json={.items[*].metadata.name}",
        ])
        .prints("[\n    \"my-sa\"\n]\n");
    let template = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(template.path(), "{.items[0].metadata.name}\n").unwrap();
    admin
        .run(&[
            "get",
            "serviceaccounts",
            "--project",
            P,
            "-o",
            &format!("jsonpath-file={}", template.path().display()),
        ])
        .prints("my-sa");

    // One item of every kind, listed: a List each time.
    let lists: &[(&[&str], &str)] = &[
        (&["get", "projects"], "Project"),
        (&["get", "sas", "-p", P], "ServiceAccount"),
        (&["get", "sats", "-p", P], "Secret"),
        (
            &["get", "sats", "-p", P, "--service-account", "my-sa"],
            "Secret",
        ),
    ];
    for (args, kind) in lists {
        let list = json(&admin.run(&[args, &["-o", "json"][..]].concat()));
        assert_eq!(list["kind"], "List", "kargo {args:?} -o json");
        assert_eq!(list["apiVersion"], "v1");
        assert_eq!(list["items"].as_array().map(Vec::len), Some(1), "{list}");
        assert_eq!(list["items"][0]["kind"], *kind, "{list}");
        let yaml = admin.run(&[args, &["-o", "yaml"][..]].concat());
        assert!(
            yaml.ok()
                .starts_with("apiVersion: v1\nitems:\n- apiVersion: "),
            "kargo {args:?} -o yaml:\n{}",
            yaml.stdout
        );
        assert!(yaml.stdout.contains("\nkind: List\n"), "{}", yaml.stdout);
    }
    // Roles (the server answers an array): a List of all of them.
    admin
        .run(&["get", "roles", "-p", P, "-o", "jsonpath={.kind}"])
        .prints("List");

    // One name: the object itself; several names: a List, even if only one exists.
    let one = json(&admin.run(&["get", "sa", "-p", P, "my-sa", "-o", "json"]));
    assert_eq!(
        (&one["kind"], &one["metadata"]["name"]),
        (&"ServiceAccount".into(), &"my-sa".into())
    );
    admin
        .run(&[
            "get",
            "sat",
            "-p",
            P,
            "my-sa-token",
            "-o",
            "jsonpath={.kind}",
        ])
        .prints("Secret");
    admin
        .run(&["get", "project", P, "-o", "jsonpath={.metadata.name}"])
        .prints(P);
    let two = admin.run(&[
        "get",
        "sa",
        "-p",
        P,
        "my-sa",
        "my-sa",
        "-o",
        "jsonpath={.kind}",
    ]);
    two.prints("ServiceAccount");
    admin.run(&["create", "sa", "-p", P, "other"]).ok();
    admin
        .run(&[
            "get",
            "sa",
            "-p",
            P,
            "my-sa",
            "other",
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ])
        .prints("my-sa other");

    // A missing single name prints nothing on stdout, only the error.
    admin
        .run(&["get", "sa", "-p", P, "nope", "-o", "json"])
        .fails_with("serviceaccounts \"nope\" not found");

    // No items: an empty List (and no "No resources found" note, as kubectl).
    admin.run(&["delete", "sat", "-p", P, "my-sa-token"]).ok();
    admin
        .run(&["get", "sats", "-p", P, "-o", "jsonpath={.kind} {.items}"])
        .prints("List []");
}

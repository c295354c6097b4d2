//! The crate graph is the architecture (`docs/ARCHITECTURE.md`): each layer is a crate, and no
//! crate depends on one above it or on a sibling. This test reads every manifest of the
//! workspace, as rust-analyzer's tidy tests do, and fails on an edge the layering forbids.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;

/// The layers, bottom first. A crate may depend only on crates of lower layers.
const LAYERS: &[&[&str]] = &[
    &["kargo-api", "kargo-store"],
    &["kargo-registry"],
    &["kargo-auth"],
    &["kargo-controllers", "kargo-core"],
    &["kargo-http"],
    &["kargo-ui"],
    &["kargo-server"],
    &["kargo-cli", "kargo-bench"],
];

/// Test support any crate may use in its tests (and nothing else), and that uses none of ours.
const TEST_SUPPORT: &[&str] = &["kargo-fuzz"];

/// Edges the layering allows although they are not downward: none, except what the lines below
/// say. (`kargo-store` is below `kargo-api` in spirit too: it never knows Kubernetes types.)
const FORBIDDEN_SAME_LAYER: &[(&str, &str)] = &[("kargo-store", "kargo-api")];

/// One crate's dependencies on the workspace's crates: `(normal, dev)`.
type Edges = (Vec<String>, Vec<String>);

fn layer(name: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&name))
}

/// Every edge the layering forbids, as a sentence.
fn violations(manifests: &BTreeMap<String, Edges>) -> Vec<String> {
    let mut found = Vec::new();
    for (name, (normal, dev)) in manifests {
        if TEST_SUPPORT.contains(&name.as_str()) {
            for dep in normal.iter().chain(dev) {
                found.push(format!("{name} is test support but depends on {dep}"));
            }
            continue;
        }
        let Some(own) = layer(name) else {
            found.push(format!("{name} is in no layer: add it to LAYERS"));
            continue;
        };
        for (dep, kind) in normal
            .iter()
            .map(|d| (d, "depends"))
            .chain(dev.iter().map(|d| (d, "dev-depends")))
        {
            if TEST_SUPPORT.contains(&dep.as_str()) {
                if kind == "depends" {
                    found.push(format!(
                        "{name} depends on the test support {dep} outside its tests"
                    ));
                }
                continue;
            }
            let Some(theirs) = layer(dep) else {
                found.push(format!("{name} {kind} on {dep}, which is in no layer"));
                continue;
            };
            // Tests may use what the crate uses; a dev-dependency on a crate of its own or a
            // higher layer is an upward edge all the same.
            if theirs >= own && dep != name {
                let how = if theirs == own {
                    "a sibling"
                } else {
                    "a crate above it"
                };
                found.push(format!(
                    "{name} {kind} on {dep}, {how} (layer {theirs} ≥ {own})"
                ));
            }
            if FORBIDDEN_SAME_LAYER.contains(&(name.as_str(), dep.as_str())) {
                found.push(format!("{name} {kind} on {dep}, which it must not know"));
            }
        }
    }
    found
}

/// The workspace's crates and their dependencies on each other, read from the manifests.
fn workspace() -> BTreeMap<String, Edges> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let workspace: toml::Table = std::fs::read_to_string(root.join("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let members = workspace["workspace"]["members"].as_array().unwrap();
    let ours = |table: Option<&toml::Value>| -> Vec<String> {
        table
            .and_then(toml::Value::as_table)
            .map(|t| {
                t.keys()
                    .filter(|k| k.starts_with("kargo-"))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    };
    members
        .iter()
        .map(|member| {
            let dir = root.join(member.as_str().unwrap());
            let manifest: toml::Table = std::fs::read_to_string(dir.join("Cargo.toml"))
                .unwrap()
                .parse()
                .unwrap();
            let name = manifest["package"]["name"].as_str().unwrap().to_owned();
            let edges = (
                ours(manifest.get("dependencies")),
                ours(manifest.get("dev-dependencies")),
            );
            (name, edges)
        })
        .collect()
}

#[test]
fn no_crate_depends_on_a_crate_above_it_or_beside_it() {
    let manifests = workspace();
    assert!(manifests.len() >= 10, "read {} manifests", manifests.len());
    let found = violations(&manifests);
    assert!(
        found.is_empty(),
        "the layering is broken:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_finds_upward_sibling_unknown_and_test_support_edges() {
    let graph = |edges: &[(&str, &[&str], &[&str])]| -> BTreeMap<String, Edges> {
        edges
            .iter()
            .map(|(name, normal, dev)| {
                let owned = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
                (name.to_string(), (owned(normal), owned(dev)))
            })
            .collect()
    };
    let clean = graph(&[
        (
            "kargo-registry",
            &["kargo-api", "kargo-store"],
            &["kargo-fuzz"],
        ),
        ("kargo-http", &["kargo-core", "kargo-auth"], &[]),
        ("kargo-fuzz", &[], &[]),
    ]);
    assert_eq!(violations(&clean), Vec::<String>::new());
    let broken = graph(&[
        ("kargo-registry", &["kargo-auth"], &[]),
        ("kargo-core", &["kargo-controllers"], &[]),
        ("kargo-auth", &[], &["kargo-http"]),
        ("kargo-store", &["kargo-api"], &[]),
        ("kargo-http", &["kargo-fuzz"], &[]),
        ("kargo-fuzz", &["kargo-api"], &[]),
        ("kargo-new", &[], &[]),
    ]);
    let found = violations(&broken);
    for expected in [
        "kargo-registry depends on kargo-auth, a crate above it",
        "kargo-core depends on kargo-controllers, a sibling",
        "kargo-auth dev-depends on kargo-http, a crate above it",
        "kargo-store depends on kargo-api, a sibling",
        "kargo-store depends on kargo-api, which it must not know",
        "kargo-http depends on the test support kargo-fuzz outside its tests",
        "kargo-fuzz is test support but depends on kargo-api",
        "kargo-new is in no layer",
    ] {
        assert!(
            found.iter().any(|f| f.starts_with(expected)),
            "missing {expected:?} in {found:#?}"
        );
    }
}

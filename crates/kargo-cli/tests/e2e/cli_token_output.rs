//! Issue 17, item 6: a new ServiceAccount token ready to use. `kargo create serviceaccounttoken
//! -o kubeconfig` prints a kubeconfig that real kubectl uses with no other flag, and `-o env` the
//! `KARGO_*` lines on which the real `kargo` runs with nothing else in its environment. A
//! system-level token and a CLI that skips certificate checks get kubeconfigs that work too.

use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use serde_json::Value;

use crate::cli_harness::{Kargo, account_with_role};
use crate::harness::{ADMIN_PASSWORD, Run, Server};

const P: &str = "my-project";

/// A logged-in admin, the project `P`, and its ServiceAccount `ci` with `kargo-viewer`.
fn admin_and_viewer(server: &Server) -> Kargo {
    let admin = Kargo::logged_in(server);
    admin.run(&["create", "project", P]).ok();
    account_with_role(&admin, P, "ci", "kargo-viewer");
    admin
}

/// `kargo create serviceaccounttoken -p P --service-account ci NAME -o FORMAT`.
fn create_token(kargo: &Kargo, name: &str, format: &str) -> String {
    let out = kargo.run(&[
        "create",
        "serviceaccounttoken",
        "-p",
        P,
        "--service-account",
        "ci",
        name,
        "-o",
        format,
    ]);
    assert!(out.stderr.is_empty(), "stderr: {}", out.stderr);
    out.ok().to_owned()
}

/// `kubectl --kubeconfig FILE ARGS...`, with no `KUBECONFIG` and an empty HOME.
fn kubectl(kubeconfig: &Path, args: &[&str]) -> Run {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .env_remove("KUBECONFIG")
        .env("HOME", home.path())
        .output()
        .expect("kubectl runs");
    Run::from(format!("kubectl {}", args.join(" ")), out)
}

fn ca_data(server: &Server) -> String {
    base64::engine::general_purpose::STANDARD.encode(std::fs::read(server.ca()).unwrap())
}

#[test]
fn a_kubeconfig_from_the_cli_works_with_kubectl_as_it_is() {
    let server = Server::start();
    let admin = admin_and_viewer(&server);

    let text = create_token(&admin, "ci-kubeconfig", "kubeconfig");
    let config: Value = yaml_serde::from_str(&text).expect("the kubeconfig is YAML");
    assert_eq!(config["apiVersion"], "v1", "{text}");
    assert_eq!(config["kind"], "Config", "{text}");
    assert_eq!(config["current-context"], "my-project-ci", "{text}");
    let [cluster] = config["clusters"].as_array().unwrap().as_slice() else {
        panic!("not one cluster:\n{text}");
    };
    assert_eq!(cluster["cluster"]["server"], server.url.as_str());
    assert_eq!(
        cluster["cluster"]["certificate-authority-data"],
        ca_data(&server).as_str(),
        "the CA the CLI trusts"
    );
    assert_eq!(cluster["cluster"].get("insecure-skip-tls-verify"), None);
    let [context] = config["contexts"].as_array().unwrap().as_slice() else {
        panic!("not one context:\n{text}");
    };
    assert_eq!(context["name"], "my-project-ci");
    assert_eq!(context["context"]["namespace"], P);
    let [user] = config["users"].as_array().unwrap().as_slice() else {
        panic!("not one user:\n{text}");
    };
    assert_eq!(user["name"], context["context"]["user"]);
    assert_eq!(
        user["user"]["token"].as_str().unwrap().split('.').count(),
        3
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sa.kubeconfig");
    std::fs::write(&file, &text).unwrap();
    let sas = kubectl(&file, &["get", "serviceaccounts", "-o", "name"]);
    assert!(
        sas.ok().lines().any(|line| line == "serviceaccount/ci"),
        "{}",
        sas.stdout
    );
    assert_eq!(
        kubectl(&file, &["get", "secrets"]).err(),
        "Error from server (Forbidden): secrets is forbidden: User \"system:serviceaccount:my-project:ci\" cannot list resource \"secrets\" in API group \"\" in the namespace \"my-project\"\n"
    );

    // A configuration naming a CA file gives the same kubeconfig CA.
    let by_path = Kargo::new();
    let with_path: String = admin
        .config_text()
        .lines()
        .map(|line| match line.starts_with("certificateAuthorityData:") {
            true => format!("certificateAuthority: {}\n", server.ca().display()),
            false => format!("{line}\n"),
        })
        .collect();
    by_path.write_config(&with_path);
    let text = create_token(&by_path, "ci-kubeconfig-2", "kubeconfig");
    assert!(
        text.contains(&format!(
            "    certificate-authority-data: {}\n",
            ca_data(&server)
        )),
        "{text}"
    );

    // Deleting the token ends the kubeconfig.
    admin.run(&["delete", "sat", "-p", P, "ci-kubeconfig"]).ok();
    let gone = kubectl(&file, &["get", "serviceaccounts"]);
    assert!(
        gone.err()
            .ends_with("error: You must be logged in to the server (the server has asked for the client to provide credentials)\n"),
        "{}",
        gone.stderr
    );

    // Unknown formats keep clap's error.
    admin
        .run(&[
            "create",
            "sat",
            "-p",
            P,
            "--service-account",
            "ci",
            "x",
            "-o",
            "kubeconf",
        ])
        .fails_starting_with("invalid value 'kubeconf' for '--output <FORMAT>': unknown output format \"kubeconf\" (use kubeconfig, env, json, yaml, name or jsonpath=TEMPLATE)");
}

#[test]
fn env_lines_are_all_a_ci_job_needs() {
    let server = Server::start();
    let admin = admin_and_viewer(&server);

    let text = create_token(&admin, "ci-env", "env");
    let lines: Vec<(&str, &str)> = text
        .lines()
        .map(|line| line.split_once('=').expect("NAME=value"))
        .collect();
    let names: Vec<&str> = lines.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        names,
        [
            "KARGO_API_ADDRESS",
            "KARGO_API_TOKEN",
            "KARGO_CERTIFICATE_AUTHORITY"
        ]
    );
    assert_eq!(lines[0].1, server.url);
    assert_eq!(lines[2].1, ca_data(&server));

    // Sourced by a shell, with nothing else in the environment and no configuration file.
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join("ci.env");
    std::fs::write(&env_file, &text).unwrap();
    let home = tempfile::tempdir().unwrap();
    let ci = |args: &str| {
        let script = format!("set -a; . \"$1\"; exec \"$2\" {args}");
        let out = Command::new("/bin/sh")
            .args(["-c", &script, "sh"])
            .arg(&env_file)
            .arg(env!("CARGO_BIN_EXE_kargo"))
            .env_clear()
            .env("HOME", home.path())
            .output()
            .expect("sh runs");
        Run::from(format!("kargo {args}"), out)
    };
    assert_eq!(
        ci("get serviceaccounts --project my-project -o name").ok(),
        "serviceaccount/ci\n"
    );
    assert_eq!(
        ci("whoami -o jsonpath={.status.userInfo.username}").ok(),
        "system:serviceaccount:my-project:ci"
    );
    assert_eq!(
        ci("create serviceaccount --project my-project x").err(),
        "Error: serviceaccounts \"x\" is forbidden: create is not permitted\n"
    );
    assert!(
        !home.path().join(".config").exists(),
        "no configuration file was written"
    );
}

#[test]
fn system_level_and_unverified_logins_give_kubeconfigs_that_work_too() {
    let server = Server::start();
    let admin = Kargo::new();
    admin
        .run(&[
            "login",
            &server.url,
            "--admin",
            "--password",
            ADMIN_PASSWORD,
            "--insecure-skip-tls-verify",
        ])
        .prints("");
    let out = admin.run(&[
        "create",
        "sat",
        "--system",
        "--service-account",
        "kargo-project-creator",
        "creator",
        "-o",
        "kubeconfig",
    ]);
    let text = out.ok();
    for expected in [
        "current-context: system-kargo-project-creator\n",
        "    namespace: kargo\n",
        "    insecure-skip-tls-verify: true\n",
    ] {
        assert!(text.contains(expected), "no {expected:?} in the kubeconfig");
    }
    assert!(
        !text.contains("certificate-authority"),
        "a CA the CLI does not use"
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("creator.kubeconfig");
    std::fs::write(&file, text).unwrap();
    assert_eq!(
        kubectl(
            &file,
            &[
                "auth",
                "whoami",
                "-o",
                "jsonpath={.status.userInfo.username}"
            ]
        )
        .ok(),
        "system:serviceaccount:kargo:kargo-project-creator"
    );
}

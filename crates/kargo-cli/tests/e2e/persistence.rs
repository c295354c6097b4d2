//! Restarting the server keeps every object, and resourceVersions keep increasing.

use crate::harness::Server;

fn resource_version(server: &Server, args: &[&str]) -> u64 {
    let mut a = args.to_vec();
    a.extend(["-o", "jsonpath={.metadata.resourceVersion}"]);
    server
        .kubectl(&a)
        .ok()
        .parse()
        .expect("numeric resourceVersion")
}

#[test]
fn objects_survive_restarts_and_resource_versions_keep_increasing() {
    let mut server = Server::start();
    server.kubectl(&["create", "namespace", "p"]).ok();
    server.kubectl(&["create", "sa", "keep", "-n", "p"]).ok();
    server
        .kubectl(&[
            "create",
            "secret",
            "generic",
            "s",
            "-n",
            "p",
            "--from-literal=k=v",
        ])
        .ok();
    let before = resource_version(&server, &["get", "sa", "keep", "-n", "p"]);
    let uid = server
        .kubectl(&[
            "get",
            "sa",
            "keep",
            "-n",
            "p",
            "-o",
            "jsonpath={.metadata.uid}",
        ])
        .ok()
        .to_owned();
    let ca = std::fs::read(server.ca()).expect("ca");

    // A clean stop, then a crash.
    for kill in [false, true] {
        server.restart(kill);
        assert_eq!(
            server
                .kubectl(&[
                    "get",
                    "sa",
                    "keep",
                    "-n",
                    "p",
                    "-o",
                    "jsonpath={.metadata.uid}"
                ])
                .ok(),
            uid
        );
        assert_eq!(
            server
                .kubectl(&["get", "secret", "s", "-n", "p", "-o", "jsonpath={.data.k}"])
                .ok(),
            "dg=="
        );
        server
            .kubectl(&[
                "label",
                "sa",
                "keep",
                "-n",
                "p",
                "--overwrite",
                &format!("restart={kill}"),
            ])
            .ok();
        let after = resource_version(&server, &["get", "sa", "keep", "-n", "p"]);
        assert!(
            after > before,
            "resourceVersion went from {before} to {after}"
        );
    }
    // The CA is reused: kubectl's kubeconfig from the first start still works.
    assert_eq!(std::fs::read(server.ca()).expect("ca"), ca);
}

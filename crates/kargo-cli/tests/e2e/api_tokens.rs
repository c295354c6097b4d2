//! Issue 17, item 7: upstream Kargo's API tokens of Kargo Roles beside the guide's
//! ServiceAccount tokens. Upstream HEAD's end-to-end checklist with the real `kargo` binary,
//! kubectl and curl: `kargo create token --role R NAME` prints a JWT (`ey...`); the token Secret
//! exists with the label `rbac.kargo.akuity.io/api-token: "true"`; `kargo get tokens` with and
//! without `--role` lists it (`NAME  ROLE  KARGO MANAGED  AGE`); `kargo delete token` prints
//! `secret/NAME deleted`; the token authorizes exactly what the role allows; the REST routes
//! answer upstream's codes and messages; deleting the role revokes its tokens; `--expires-in`
//! works as for ServiceAccount tokens; system roles' tokens (`--system`); a restart keeps it
//! all; on two replicas over etcd a token made on one works on the other and dies on both.
//! And the token lifecycle of ServiceAccount tokens (`token_lifecycle`) for API tokens:
//! `kargo disable|enable token` (401 at once, STATE in `-o wide`), `kargo rotate token --grace`
//! (both values during the grace, the old one refused after), `--description`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::cli_harness::{Kargo, mask_ages, token_from_banner};
use crate::harness::{Server, eventually};
use crate::token_expiry::wide_cell_of;

const P: &str = "my-project";
const UNAUTHORIZED: &str = "error: You must be logged in to the server (Unauthorized)\n";
const API_TOKEN_LABEL: &str = "rbac.kargo.akuity.io/api-token";

/// A logged-in admin, project `P` and its role `developer`, which may read ConfigMaps.
fn admin_with_developer(server: &Server) -> Kargo {
    let admin = Kargo::logged_in(server);
    admin.run(&["create", "project", P]).ok();
    admin.run(&["create", "role", "-p", P, "developer"]).ok();
    admin
        .run(&[
            "grant",
            "-p",
            P,
            "--role",
            "developer",
            "--resource-type",
            "configmaps",
            "--verb",
            "get,list",
        ])
        .ok();
    admin
}

/// `(status, body as JSON)` of a Kargo REST call as the admin.
fn rest(
    server: &Server,
    admin: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let body = body.map(|b| b.to_string());
    let (code, text) = server.curl(
        method,
        path,
        Some(admin),
        &[],
        body.as_deref().map(str::as_bytes),
    );
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    };
    (code, value)
}

/// Asserts a Kargo REST error: the code and `{"error": message}`.
#[track_caller]
fn assert_refused(answer: (u16, Value), code: u16, message: &str) {
    assert_eq!(answer, (code, json!({"error": message})));
}

/// Whether kubectl with `kubeconfig` is refused as unauthenticated.
fn refused(server: &Server, kubeconfig: &std::path::Path) -> bool {
    server
        .kubectl_with(kubeconfig, &["get", "configmaps"], None)
        .stderr
        == UNAUTHORIZED
}

#[test]
fn upstreams_api_token_checklist_with_the_cli_kubectl_and_rest() {
    let server = Server::start();
    let admin = admin_with_developer(&server);

    // `create token` output contains `ey` (the banner of ServiceAccount tokens).
    let token = token_from_banner(&admin.run(&[
        "create",
        "token",
        "-p",
        P,
        "--role",
        "developer",
        "my-token",
    ]));

    // The token Secret, as kubectl sees it: labeled, bound to the role's ServiceAccount.
    let secret: Value = serde_json::from_str(
        server
            .kubectl(&["get", "secret", "my-token", "-n", P, "-o", "json"])
            .ok(),
    )
    .unwrap();
    assert_eq!(secret["type"], "kubernetes.io/service-account-token");
    assert_eq!(
        secret["metadata"]["labels"],
        json!({API_TOKEN_LABEL: "true"})
    );
    let annotations = &secret["metadata"]["annotations"];
    assert_eq!(
        annotations["kubernetes.io/service-account.name"],
        "developer"
    );
    assert_eq!(annotations["rbac.kargo.akuity.io/managed"], "true");
    assert_eq!(
        secret["metadata"]["ownerReferences"][0]["name"],
        "developer"
    );

    // `get tokens`, with and without `--role`; ServiceAccount tokens are another kind.
    let table =
        "NAME       ROLE        KARGO MANAGED   AGE\nmy-token   developer   true            AGE\n";
    for args in [
        &["get", "tokens", "-p", P][..],
        &["get", "tokens", "-p", P, "--role", "developer"],
        &["get", "token", "-p", P, "my-token"],
    ] {
        assert_eq!(mask_ages(admin.run(args).ok()), table, "{args:?}");
    }
    let none = admin.run(&["get", "tokens", "-p", P, "--role", "kargo-viewer"]);
    assert_eq!((none.code, none.stdout.as_str()), (0, ""));
    assert_eq!(
        none.stderr,
        format!("No resources found in project {P:?}.\n")
    );
    admin
        .run(&["get", "tokens", "-p", P, "--role", "nope"])
        .fails_with(&format!(
            r#"error getting ServiceAccount "nope" in namespace "{P}": serviceaccounts "nope" not found"#
        ));
    let sats = admin.run(&["get", "sat", "-p", P]);
    assert_eq!(sats.stdout, "");
    let yaml = admin.run(&["get", "token", "-p", P, "my-token", "-o", "yaml"]);
    assert!(
        yaml.ok().contains("token: KioqIFJFREFDVEVEICoqKg=="),
        "{}",
        yaml.stdout
    );
    assert!(!yaml.stdout.contains(&token));

    // The token authorizes exactly what the role allows.
    let kc = server.token_kubeconfig("developer", &token, P);
    let user = format!("system:serviceaccount:{P}:developer");
    server.kubectl_with(&kc, &["get", "configmaps"], None).ok();
    assert_eq!(
        server.kubectl_with(&kc, &["get", "secrets"], None).err(),
        format!(
            "Error from server (Forbidden): secrets is forbidden: User \"{user}\" cannot list resource \"secrets\" in API group \"\" in the namespace \"{P}\"\n"
        )
    );
    assert_eq!(
        server
            .kubectl_with(&kc, &["auth", "can-i", "create", "configmaps"], None)
            .stdout,
        "no\n"
    );
    // ... and so does the Kargo API: the role's ServiceAccount may not read roles.
    let forbidden = server.curl(
        "GET",
        &format!("/v1beta1/projects/{P}/roles"),
        Some(&token),
        &[],
        None,
    );
    assert_eq!(forbidden.0, 403, "{}", forbidden.1);

    // Upstream's codes and messages on the REST routes.
    let root = server.admin_token();
    let create = |role: &str, body: Value| {
        rest(
            &server,
            &root,
            "POST",
            &format!("/v1beta1/projects/{P}/roles/{role}/api-tokens"),
            Some(body),
        )
    };
    assert_refused(
        create("developer", json!({})),
        400,
        "name should not be empty",
    );
    assert_refused(
        create("nope", json!({"name": "x"})),
        404,
        &format!(
            r#"error getting ServiceAccount "nope" in namespace "{P}": serviceaccounts "nope" not found"#
        ),
    );
    assert_refused(
        create("developer", json!({"name": "my-token"})),
        409,
        &format!(
            r#"error creating token Secret "my-token" for ServiceAccount "developer" in namespace "{P}": secrets "my-token" already exists"#
        ),
    );
    assert_refused(
        rest(
            &server,
            &root,
            "POST",
            "/v1beta1/projects/nope/roles/developer/api-tokens",
            Some(json!({"name": "x"})),
        ),
        404,
        r#"projects.kargo.akuity.io "nope" not found"#,
    );
    assert_refused(
        rest(
            &server,
            &root,
            "GET",
            &format!("/v1beta1/projects/{P}/api-tokens/nope"),
            None,
        ),
        404,
        &format!(
            r#"error getting token Secret "nope" in namespace "{P}": secrets "nope" not found"#
        ),
    );
    let (code, list) = rest(
        &server,
        &root,
        "GET",
        &format!("/v1beta1/projects/{P}/api-tokens?role=developer"),
        None,
    );
    assert_eq!(code, 200);
    assert_eq!(list["items"][0]["metadata"]["name"], "my-token");
    assert_eq!(
        list["items"][0]["data"]["token"],
        "KioqIFJFREFDVEVEICoqKg=="
    );
    // A ServiceAccount token is no API token: neither shown nor deleted as one.
    admin.run(&["create", "sa", "-p", P, "ci"]).ok();
    token_from_banner(&admin.run(&[
        "create",
        "sat",
        "-p",
        P,
        "--service-account",
        "ci",
        "ci-token",
    ]));
    assert_refused(
        rest(
            &server,
            &root,
            "GET",
            &format!("/v1beta1/projects/{P}/api-tokens/ci-token"),
            None,
        ),
        400,
        &format!(
            r#"Kubernetes Secret "ci-token" in namespace "{P}" is not labeled as a Kargo API token"#
        ),
    );
    assert_refused(
        rest(
            &server,
            &root,
            "DELETE",
            &format!("/v1beta1/projects/{P}/api-tokens/ci-token"),
            None,
        ),
        409,
        &format!(
            r#"Operation cannot be fulfilled on secrets "ci-token": Kubernetes Secret "ci-token" in namespace "{P}" is not labeled as a Kargo API token"#
        ),
    );
    // A Kargo ServiceAccount is not a role.
    admin
        .run(&["create", "token", "-p", P, "--role", "ci", "x"])
        .fails_with(&format!(
            r#"ServiceAccount "ci" in namespace "{P}" is a Kargo ServiceAccount, not a Kargo Role"#
        ));
    let (code, openapi) = rest(&server, &root, "GET", "/v1beta1/openapi.json", None);
    assert_eq!(code, 200);
    for path in [
        "/v1beta1/projects/{project}/roles/{role}/api-tokens",
        "/v1beta1/projects/{project}/api-tokens",
        "/v1beta1/projects/{project}/api-tokens/{apitoken}",
        "/v1beta1/system/roles/{role}/api-tokens",
        "/v1beta1/system/api-tokens",
        "/v1beta1/system/api-tokens/{apitoken}",
    ] {
        assert!(
            openapi["paths"][path].is_object(),
            "{path} not in the OpenAPI document"
        );
    }

    // Expiry, as for ServiceAccount tokens.
    let later = token_from_banner(&admin.run(&[
        "create",
        "token",
        "-p",
        P,
        "--role",
        "developer",
        "later",
        "--expires-in",
        "2h",
    ]));
    assert!(!later.is_empty());
    let wide = admin.run(&["get", "tokens", "-p", P, "later", "-o", "wide"]);
    assert!(
        wide.ok()
            .starts_with("NAME    ROLE        KARGO MANAGED   AGE   SERVICE ACCOUNT UID"),
        "{}",
        wide.stdout
    );
    let header = wide.stdout.lines().next().unwrap_or_default();
    let at = header.find(" EXPIRES").expect("an EXPIRES column") + 1;
    let row = wide.stdout.lines().nth(1).unwrap_or_default();
    let expires = row.get(at..).unwrap_or_default();
    assert!(expires.starts_with("in 1"), "{}", wide.stdout);

    // `delete token` prints `secret/NAME deleted`; the token is refused at once.
    admin
        .run(&["delete", "token", "-p", P, "my-token"])
        .prints("secret/my-token deleted\n");
    assert!(refused(&server, &kc));
    admin
        .run(&["delete", "token", "-p", P, "my-token"])
        .fails_with(&format!(
            r#"error getting token Secret "my-token" in namespace "{P}": secrets "my-token" not found"#
        ));

    // A token Secret written with kubectl (GitOps): filled, listed as not Kargo-managed, in
    // effect, and not deleted through Kargo.
    let manifest = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: gitops-token\n  namespace: {P}\n  labels:\n    {API_TOKEN_LABEL}: \"true\"\n  annotations:\n    kubernetes.io/service-account.name: developer\ntype: kubernetes.io/service-account-token\n"
    );
    server.kubectl_stdin(&["apply", "-f", "-"], &manifest).ok();
    assert_eq!(
        mask_ages(admin.run(&["get", "tokens", "-A"]).ok()),
        format!(
            "PROJECT      NAME           ROLE        KARGO MANAGED   AGE\n{P}   gitops-token   developer   false           AGE\n{P}   later          developer   true            AGE\n"
        )
    );
    admin
        .run(&["delete", "token", "-p", P, "gitops-token"])
        .fails_with(&format!(
            r#"Operation cannot be fulfilled on secrets "gitops-token": Kubernetes Secret "gitops-token" in namespace "{P}" is not annotated as Kargo-managed"#
        ));

    // Deleting the role revokes its tokens, and they go with its ServiceAccount.
    let last =
        token_from_banner(&admin.run(&["create", "token", "-p", P, "--role", "developer", "last"]));
    let kc_last = server.token_kubeconfig("last", &last, P);
    server
        .kubectl_with(&kc_last, &["get", "configmaps"], None)
        .ok();
    admin
        .run(&["delete", "role", "-p", P, "developer"])
        .prints("role.rbac.kargo.akuity.io/developer deleted\n");
    assert!(refused(&server, &kc_last));
    assert!(
        eventually(Duration::from_secs(10), || {
            server
                .kubectl(&[
                    "get",
                    "secrets",
                    "-n",
                    P,
                    "-l",
                    API_TOKEN_LABEL,
                    "-o",
                    "name",
                ])
                .stdout
                .is_empty()
        }),
        "the role's tokens were not collected"
    );
}

#[test]
fn system_roles_have_api_tokens_and_a_restart_keeps_them() {
    let mut server = Server::start();
    let admin = Kargo::logged_in(&server);
    let token = token_from_banner(&admin.run(&[
        "create",
        "token",
        "--system",
        "--role",
        "kargo-viewer",
        "viewer-token",
    ]));
    let table = "NAME           ROLE           KARGO MANAGED   AGE\nviewer-token   kargo-viewer   true            AGE\n";
    assert_eq!(
        mask_ages(admin.run(&["get", "tokens", "--system"]).ok()),
        table
    );
    assert_eq!(
        mask_ages(
            admin
                .run(&["get", "tokens", "--system", "--role", "kargo-viewer"])
                .ok()
        ),
        table
    );
    let kc = server.token_kubeconfig("viewer", &token, "kargo");
    let can = |server: &Server, verb: &str| {
        server
            .kubectl_with(&kc, &["auth", "can-i", verb, "namespaces"], None)
            .stdout
    };
    assert_eq!(
        (
            can(&server, "list").as_str(),
            can(&server, "create").as_str()
        ),
        ("yes\n", "no\n")
    );

    // Upstream's answers for a ServiceAccount of the system namespace that is no system role.
    server
        .kubectl(&["create", "serviceaccount", "plain", "-n", "kargo"])
        .ok();
    let root = server.admin_token();
    assert_refused(
        rest(
            &server,
            &root,
            "POST",
            "/v1beta1/system/roles/plain/api-tokens",
            Some(json!({"name": "x"})),
        ),
        404,
        r#"Role.rbac.kargo.akuity.io "plain" not found"#,
    );
    assert_refused(
        rest(
            &server,
            &root,
            "POST",
            "/v1beta1/system/roles/nope/api-tokens",
            Some(json!({"name": "x"})),
        ),
        404,
        r#"error getting ServiceAccount "nope" in namespace "kargo": serviceaccounts "nope" not found"#,
    );

    // A restart keeps the token, its Secret and its listing.
    server.restart(false);
    assert_eq!(
        mask_ages(admin.run(&["get", "tokens", "--system"]).ok()),
        table
    );
    assert_eq!(can(&server, "list"), "yes\n");
    admin
        .run(&["delete", "token", "--system", "viewer-token"])
        .prints("secret/viewer-token deleted\n");
    assert_eq!(
        server
            .kubectl_with(&kc, &["get", "namespaces"], None)
            .stderr,
        UNAUTHORIZED
    );
    server.restart(true);
    let after = admin.run(&["get", "tokens", "--system"]);
    assert_eq!((after.code, after.stdout.as_str()), (0, ""));
}

#[test]
fn an_api_token_made_on_one_replica_works_on_the_other_and_dies_on_both() {
    let cluster = kargo_store::testing::EtcdCluster::start(1);
    let args = Server::etcd_args(&cluster);
    let a = Server::start_with(&args);
    let b = Server::start_with(&args);
    let on_a = admin_with_developer(&a);
    let on_b = Kargo::logged_in(&b);
    let token = token_from_banner(&on_a.run(&[
        "create",
        "token",
        "-p",
        P,
        "--role",
        "developer",
        "my-token",
    ]));
    let (kc_a, kc_b) = (
        a.token_kubeconfig("a", &token, P),
        b.token_kubeconfig("b", &token, P),
    );
    assert!(
        eventually(Duration::from_secs(5), || {
            b.kubectl_with(&kc_b, &["get", "configmaps"], None).code == 0
        }),
        "the token never worked on B"
    );
    assert_eq!(
        mask_ages(on_b.run(&["get", "tokens", "-p", P]).ok()),
        "NAME       ROLE        KARGO MANAGED   AGE\nmy-token   developer   true            AGE\n"
    );
    a.kubectl_with(&kc_a, &["get", "configmaps"], None).ok();
    on_b.run(&["delete", "token", "-p", P, "my-token"])
        .prints("secret/my-token deleted\n");
    assert!(refused(&b, &kc_b));
    let on_a = || a.kubectl_with(&kc_a, &["get", "configmaps"], None);
    assert!(
        eventually(Duration::from_secs(2), || {
            on_a()
                .stderr
                .contains("error: You must be logged in to the server")
        }),
        "A still takes the token deleted on B: {:?}",
        on_a().stderr
    );
}

#[test]
fn api_tokens_are_disabled_enabled_and_rotated_with_a_grace_like_service_account_tokens() {
    let server = Server::start();
    let admin = admin_with_developer(&server);
    let cell = |name: &str, column: &str| wide_cell_of(&admin, "tokens", name, column);
    let token = token_from_banner(&admin.run(&[
        "create",
        "token",
        "-p",
        P,
        "--role",
        "developer",
        "deploy",
        "--description",
        "deploys from CI",
    ]));
    let kc = server.token_kubeconfig("developer", &token, P);
    server.kubectl_with(&kc, &["get", "configmaps"], None).ok();
    assert_eq!(cell("deploy", "STATE"), "active");
    assert_eq!(cell("deploy", "DESCRIPTION"), "deploys from CI");

    // Disabled: refused by the very next request; enabled: works again.
    admin
        .run(&["disable", "token", "-p", P, "deploy"])
        .prints("secret/deploy disabled\n");
    assert!(refused(&server, &kc), "a disabled API token still works");
    assert_eq!(cell("deploy", "STATE"), "disabled");
    admin
        .run(&["enable", "token", "-p", P, "deploy"])
        .prints("secret/deploy enabled\n");
    server.kubectl_with(&kc, &["get", "configmaps"], None).ok();
    assert_eq!(cell("deploy", "STATE"), "active");

    // Each kind's commands refuse the other kind's tokens.
    admin.run(&["create", "sa", "-p", P, "ci"]).ok();
    let sat = token_from_banner(&admin.run(&[
        "create",
        "sat",
        "-p",
        P,
        "--service-account",
        "ci",
        "ci-token",
    ]));
    assert!(!sat.is_empty());
    admin
        .run(&["disable", "token", "-p", P, "ci-token"])
        .fails_with(&format!(
            r#"Kubernetes Secret "ci-token" in namespace "{P}" is not labeled as a Kargo API token"#
        ));
    admin
        .run(&["rotate", "sat", "-p", P, "deploy"])
        .fails_with(&format!(
            r#"Kubernetes Secret "deploy" in namespace "{P}" is not labeled as a Kargo ServiceAccount token"#
        ));

    // Rotated with a grace: both values work, then the old one is refused.
    let started = Instant::now();
    let out = admin.run(&["rotate", "token", "-p", P, "deploy", "--grace", "5s"]);
    let new = out
        .ok()
        .lines()
        .find_map(|l| l.strip_prefix("Token: "))
        .unwrap_or_else(|| panic!("no token in:\n{}", out.stdout))
        .to_owned();
    assert!(
        out.stdout
            .starts_with("Token rotated successfully!\n\nThe previous value stays valid until "),
        "{}",
        out.stdout
    );
    assert_ne!(new, token);
    let kc_new = server.token_kubeconfig("developer-new", &new, P);
    server.kubectl_with(&kc, &["get", "configmaps"], None).ok();
    server
        .kubectl_with(&kc_new, &["get", "configmaps"], None)
        .ok();
    let state = cell("deploy", "STATE");
    assert!(state.starts_with("rotating (old value valid "), "{state}");
    assert!(
        eventually(Duration::from_secs(10), || refused(&server, &kc)),
        "the old value still works 10 s after the rotation"
    );
    let refused_after = started.elapsed();
    assert!(
        (Duration::from_secs(4)..Duration::from_secs(9)).contains(&refused_after),
        "refused {refused_after:?} after the rotation"
    );
    server
        .kubectl_with(&kc_new, &["get", "configmaps"], None)
        .ok();
    assert_eq!(cell("deploy", "STATE"), "active");

    // The lifecycle routes are documented.
    let root = server.admin_token();
    let (code, openapi) = rest(&server, &root, "GET", "/v1beta1/openapi.json", None);
    assert_eq!(code, 200);
    for scope in ["/v1beta1/projects/{project}", "/v1beta1/system"] {
        for action in ["disable", "enable", "rotate"] {
            let path = format!("{scope}/api-tokens/{{apitoken}}/{action}");
            assert!(
                openapi["paths"][&path]["post"].is_object(),
                "{path} not in the OpenAPI document"
            );
        }
    }
}

//! Impersonation with kubectl (`--as`, `--as-group`) and raw headers, as kube-apiserver answers
//! it: an admin acts as a bot and gets the bot's answers; a bot cannot act as anyone it was not
//! granted `impersonate` on; one granted it acts as that account only; the audit log names both
//! users (issue 18, item 2).

use serde_json::Value;

use crate::cli_harness::{Kargo, account_with_role};
use crate::harness::{Server, on_both_stores};

const PROJECT: &str = "imp";
const BOT: &str = "system:serviceaccount:imp:bot";

/// A command's output, for an assertion's message.
fn show(run: &crate::harness::Run) -> String {
    format!("stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr)
}

on_both_stores!(
    kubectl_as_acts_as_the_named_account_only_when_impersonation_is_allowed,
    impersonation
);

fn impersonation(store: &[String]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let audit = dir.path().join("audit.log");
    let server = Server::start_with(
        &[
            store,
            &[
                "--audit-log-path".to_owned(),
                audit.display().to_string(),
                "--audit-level".to_owned(),
                "request".to_owned(),
            ],
        ]
        .concat(),
    );
    let admin = Kargo::logged_in(&server);
    admin.run(&["create", "project", PROJECT]).ok();
    let token = account_with_role(&admin, PROJECT, "bot", "kargo-viewer");

    // The admin, acting as the bot, gets the bot's answers: it may list service accounts, not
    // secrets, and kubectl reports the bot as the user.
    let can = |args: &[&str]| server.kubectl(args);
    let secrets = can(&[
        "auth", "can-i", "list", "secrets", "-n", PROJECT, "--as", BOT,
    ]);
    assert_eq!(secrets.stdout.trim(), "no", "{}", show(&secrets));
    let accounts = can(&[
        "get",
        "serviceaccounts",
        "-n",
        PROJECT,
        "--as",
        BOT,
        "-o",
        "name",
    ]);
    assert!(
        accounts.ok().lines().any(|l| l == "serviceaccount/bot"),
        "{}",
        show(&accounts)
    );
    let denied = can(&["get", "secrets", "-n", PROJECT, "--as", BOT]);
    assert!(
        denied.stderr.contains(&format!(
            "User \"{BOT}\" cannot list resource \"secrets\" in API group \"\" in the namespace \"{PROJECT}\""
        )),
        "{}",
        show(&denied)
    );
    let whoami = can(&["auth", "whoami", "--as", BOT, "-o", "json"]);
    let review: Value = serde_json::from_str(whoami.ok()).expect("a SelfSubjectReview");
    assert_eq!(review["status"]["userInfo"]["username"], BOT);
    assert_eq!(
        review["status"]["userInfo"]["groups"],
        serde_json::json!([
            "system:serviceaccounts",
            "system:serviceaccounts:imp",
            "system:authenticated"
        ])
    );

    // The bot cannot act as the admin, a group, or another account.
    let bot = server.token_kubeconfig("bot", &token, PROJECT);
    let as_admin = server.kubectl_with(&bot, &["get", "namespaces", "--as", "admin"], None);
    assert!(
        as_admin.stderr.contains(&format!(
            "users \"admin\" is forbidden: User \"{BOT}\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope"
        )),
        "{}",
        show(&as_admin)
    );
    let other = "system:serviceaccount:imp:other";
    let as_other = server.kubectl_with(&bot, &["get", "serviceaccounts", "--as", other], None);
    assert!(
        as_other.stderr.contains(&format!(
            "serviceaccounts \"other\" is forbidden: User \"{BOT}\" cannot impersonate resource \"serviceaccounts\" in API group \"\" in the namespace \"imp\""
        )),
        "{}",
        show(&as_other)
    );
    // A group without a user is refused, not served as the bot.
    let (code, body) = server.curl(
        "GET",
        "/api/v1/namespaces/imp/serviceaccounts",
        Some(&token),
        &["Impersonate-Group: system:masters"],
        None,
    );
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("requested [group system:masters] without impersonating a user"),
        "{body}"
    );

    // The Kargo API refuses it alike.
    let (code, body) = server.curl(
        "GET",
        "/v1beta1/projects",
        Some(&token),
        &["Impersonate-User: admin"],
        None,
    );
    assert_eq!(code, 403, "{body}");
    assert!(
        body.contains(&format!(
            "User \\\"{BOT}\\\" cannot impersonate resource \\\"users\\\""
        )),
        "{body}"
    );

    // Granted `impersonate` on the account `other` only, the bot acts as `other` and no one else.
    admin.run(&["create", "sa", "-p", PROJECT, "other"]).ok();
    let role = r#"{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"Role","metadata":{"name":"impersonate-other","namespace":"imp"},"rules":[{"apiGroups":[""],"resources":["serviceaccounts"],"resourceNames":["other"],"verbs":["impersonate"]}]}"#;
    server.kubectl_stdin(&["create", "-f", "-"], role).ok();
    server
        .kubectl(&[
            "create",
            "rolebinding",
            "bot-impersonates-other",
            "-n",
            PROJECT,
            "--role",
            "impersonate-other",
            "--serviceaccount",
            "imp:bot",
        ])
        .ok();
    let as_other = server.kubectl_with(&bot, &["auth", "whoami", "--as", other], None);
    assert!(as_other.ok().contains(other), "{}", show(&as_other));
    let as_third = server.kubectl_with(
        &bot,
        &[
            "get",
            "serviceaccounts",
            "--as",
            "system:serviceaccount:imp:third",
        ],
        None,
    );
    assert!(
        as_third
            .stderr
            .contains("serviceaccounts \"third\" is forbidden: User \"system:serviceaccount:imp:bot\" cannot impersonate"),
        "{}",
        show(&as_third)
    );
    // Nor as `other` in a group it was not granted.
    let as_group = server.kubectl_with(
        &bot,
        &[
            "get",
            "serviceaccounts",
            "--as",
            other,
            "--as-group",
            "system:masters",
        ],
        None,
    );
    assert!(
        as_group.stderr.contains(&format!(
            "groups \"system:masters\" is forbidden: User \"{BOT}\" cannot impersonate resource \"groups\""
        )),
        "{}",
        show(&as_group)
    );

    // The audit log names who authenticated and whom the request was served as.
    let events = crate::audit::events_until(&audit, |events: &[Value]| {
        events
            .iter()
            .any(|e| e["impersonatedUser"]["username"] == other && e["user"]["username"] == BOT)
    });
    let served = events
        .iter()
        .find(|e| e["impersonatedUser"]["username"] == other)
        .expect("an impersonated event");
    assert_eq!(served["user"]["username"], BOT);
    assert!(
        !std::fs::read_to_string(&audit).unwrap().contains(&token),
        "no token in the audit log"
    );
}

//! Kargo ServiceAccounts and their tokens through the Kargo REST API, project and system level:
//! every success and error case of the spec (§1.2, §3.1, §3.2, §5), with exact messages.

use serde_json::{Value, json};

use crate::harness::{Server, eventually};
use crate::kargo_client::{Expect, Kargo, decode, names};

const SA_LABEL: &str = "rbac.kargo.akuity.io/service-account";
const TOKEN_LABEL: &str = "rbac.kargo.akuity.io/service-account-token";
const MANAGED: &str = "rbac.kargo.akuity.io/managed";
const REDACTED_B64: &str = "KioqIFJFREFDVEVEICoqKg==";

/// A ServiceAccount as kubectl would create it (labels and annotations as given).
fn plain_sa(name: &str, labels: Value, annotations: Value) -> Value {
    json!({"metadata": {"name": name, "labels": labels, "annotations": annotations}})
}

/// A Secret as kubectl would create it.
fn plain_secret(name: &str, type_: &str, labels: Value, annotations: Value) -> Value {
    json!({
        "metadata": {"name": name, "labels": labels, "annotations": annotations},
        "type": type_,
    })
}

const SAS: &str = "/v1beta1/projects/p/service-accounts";
const KUBE_SAS: &str = "/api/v1/namespaces/p/serviceaccounts";
const KUBE_SECRETS: &str = "/api/v1/namespaces/p/secrets";

#[test]
fn service_accounts_are_created_read_listed_and_deleted_with_the_spec_errors() {
    let server = Server::start();
    let admin = Kargo::admin(&server);
    admin.project("p");

    // List: empty, then only labeled ones, sorted.
    let empty = admin.check("GET", SAS, None, Expect::Ok(200));
    assert_eq!(empty["kind"], "ServiceAccountList");
    assert_eq!(empty["items"], json!([]));
    admin.kube_create(KUBE_SAS, plain_sa("plain", json!({}), json!({})));
    admin.kube_create(
        KUBE_SAS,
        plain_sa("declared", json!({SA_LABEL: "true"}), json!({})),
    );
    let created = admin.service_account("p", "ci-bot");
    assert_eq!(created["kind"], "ServiceAccount");
    assert_eq!(created["metadata"]["labels"], json!({SA_LABEL: "true"}));
    assert_eq!(created["metadata"]["annotations"], json!({MANAGED: "true"}));
    assert_eq!(created["metadata"]["namespace"], "p");
    assert_eq!(
        names(&admin.check("GET", SAS, None, Expect::Ok(200))),
        ["ci-bot", "declared"]
    );

    // (method, path, body, expected)
    let cases: Vec<(&str, String, Option<Value>, Expect)> = vec![
        (
            "POST",
            SAS.into(),
            Some(json!({"metadata": {"name": "ci-bot"}})),
            Expect::Err(
                409,
                "error creating ServiceAccount \"ci-bot\" in namespace \"p\": serviceaccounts \"ci-bot\" already exists",
            ),
        ),
        (
            "POST",
            SAS.into(),
            Some(json!({"metadata": {"name": "plain"}})),
            Expect::Err(
                409,
                "error creating ServiceAccount \"plain\" in namespace \"p\": serviceaccounts \"plain\" already exists",
            ),
        ),
        (
            "POST",
            SAS.into(),
            Some(json!({"metadata": {}})),
            Expect::Err(400, "name should not be empty"),
        ),
        (
            "POST",
            SAS.into(),
            Some(json!({})),
            Expect::Err(400, "name should not be empty"),
        ),
        (
            "POST",
            SAS.into(),
            Some(json!({"metadata": {"name": "x", "namespace": "other"}})),
            Expect::Err(409, "namespace in body does not match project in URL"),
        ),
        (
            "GET",
            format!("{SAS}/missing"),
            None,
            Expect::Err(404, "serviceaccounts \"missing\" not found"),
        ),
        (
            "GET",
            format!("{SAS}/plain"),
            None,
            Expect::Err(
                400,
                "Kubernetes ServiceAccount \"plain\" in namespace \"p\" is not labeled as a Kargo ServiceAccount",
            ),
        ),
        ("GET", format!("{SAS}/declared"), None, Expect::Ok(200)),
        (
            "DELETE",
            format!("{SAS}/missing"),
            None,
            Expect::Err(404, "serviceaccounts \"missing\" not found"),
        ),
        (
            "DELETE",
            format!("{SAS}/plain"),
            None,
            Expect::Err(
                400,
                "Kubernetes ServiceAccount \"plain\" in namespace \"p\" is not labeled as a Kargo ServiceAccount",
            ),
        ),
        (
            "DELETE",
            format!("{SAS}/declared"),
            None,
            Expect::Err(
                400,
                "Kubernetes ServiceAccount \"declared\" in namespace \"p\" is not annotated as Kargo-managed",
            ),
        ),
        ("DELETE", format!("{SAS}/ci-bot"), None, Expect::Ok(204)),
        (
            "GET",
            format!("{SAS}/ci-bot"),
            None,
            Expect::Err(404, "serviceaccounts \"ci-bot\" not found"),
        ),
    ];
    for (method, path, body, expect) in cases {
        admin.check(method, &path, body, expect);
    }
    let invalid = admin.post(SAS, json!({"metadata": {"name": "Bad_Name"}}));
    assert_eq!(invalid.code, 422);
    assert!(
        invalid
            .error()
            .starts_with("error creating ServiceAccount \"Bad_Name\" in namespace \"p\": ServiceAccount \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\""),
        "{}",
        invalid.error()
    );
    assert_eq!(names(&admin.get(SAS).body), ["declared"]);
}

#[test]
fn deleting_a_service_account_deletes_its_tokens_and_its_grants() {
    let server = Server::start();
    let admin = Kargo::admin(&server);
    admin.project("p");
    admin.service_account("p", "bot");
    admin.grant(
        "p",
        json!({"role": "kargo-viewer", "serviceAccounts": {"serviceAccounts": [{"name": "bot"}]}}),
    );
    admin.grant(
        "p",
        json!({"role": "kargo-promoter", "serviceAccounts": {"serviceAccounts": [{"name": "bot", "namespace": "p"}]}}),
    );
    let token = admin.token("p", "bot", "bot-token");
    let bot = Kargo::with_token(&server, &token);
    assert_eq!(bot.get("/v1beta1/projects/p/roles").code, 200);

    admin.check("DELETE", &format!("{SAS}/bot"), None, Expect::Ok(204));
    // The token is refused at once; its Secret goes.
    assert_eq!(bot.get("/v1beta1/projects/p/roles").code, 401);
    assert!(eventually(std::time::Duration::from_secs(10), || admin
        .kube(&format!("{KUBE_SECRETS}/bot-token"))
        .is_none()));
    // No RoleBinding names it any more: a new account of the same name inherits nothing.
    for role in ["kargo-viewer", "kargo-promoter"] {
        let rb = admin
            .kube(&format!(
                "/apis/rbac.authorization.k8s.io/v1/namespaces/p/rolebindings/{role}"
            ))
            .expect("binding");
        assert_eq!(
            rb["subjects"],
            json!([{"kind": "ServiceAccount", "name": role, "namespace": "p"}]),
            "{role}"
        );
        let role = admin.get(&format!("/v1beta1/projects/p/roles/{role}")).body;
        assert_eq!(role["serviceAccounts"], json!([]));
    }
    admin.service_account("p", "bot");
    let token = admin.token("p", "bot", "bot-token-2");
    let reborn = Kargo::with_token(&server, &token);
    assert_eq!(
        reborn.get("/v1beta1/projects/p/roles").body,
        json!({"error": "serviceaccounts is forbidden: list is not permitted"})
    );
}

const TOKENS: &str = "/v1beta1/projects/p/service-account-tokens";

#[test]
fn tokens_are_created_once_unredacted_then_read_redacted_and_deleted_with_the_spec_errors() {
    let server = Server::start();
    let admin = Kargo::admin(&server);
    admin.project("p");
    admin.service_account("p", "a");
    admin.service_account("p", "b");
    admin.kube_create(KUBE_SAS, plain_sa("plain", json!({}), json!({})));
    admin.kube_create(
        KUBE_SECRETS,
        plain_secret("opaque", "Opaque", json!({TOKEN_LABEL: "true"}), json!({})),
    );
    admin.kube_create(
        KUBE_SECRETS,
        plain_secret(
            "unlabeled",
            "kubernetes.io/service-account-token",
            json!({}),
            json!({"kubernetes.io/service-account.name": "a"}),
        ),
    );
    admin.kube_create(
        KUBE_SECRETS,
        plain_secret(
            "declared",
            "kubernetes.io/service-account-token",
            json!({TOKEN_LABEL: "true"}),
            json!({"kubernetes.io/service-account.name": "b"}),
        ),
    );

    // None yet: an empty list (the declared one names b).
    assert_eq!(
        names(&admin.check(
            "GET",
            &format!("{TOKENS}?serviceAccount=a"),
            None,
            Expect::Ok(200)
        )),
        Vec::<String>::new()
    );

    let created = admin.check(
        "POST",
        &format!("{SAS}/a/tokens"),
        Some(json!({"name": "a-token"})),
        Expect::Ok(201),
    );
    assert_eq!(created["type"], "kubernetes.io/service-account-token");
    assert_eq!(created["metadata"]["labels"], json!({TOKEN_LABEL: "true"}));
    assert_eq!(
        created["metadata"]["annotations"]["kubernetes.io/service-account.name"],
        "a"
    );
    assert_eq!(created["metadata"]["annotations"][MANAGED], "true");
    let sa_uid = admin.kube(&format!("{KUBE_SAS}/a")).expect("sa")["metadata"]["uid"].clone();
    assert_eq!(
        created["metadata"]["ownerReferences"],
        json!([{"apiVersion": "v1", "kind": "ServiceAccount", "name": "a", "uid": sa_uid}])
    );
    let jwt = decode(&created["data"]["token"]);
    assert_eq!(jwt.split('.').count(), 3, "{jwt}");
    assert_eq!(decode(&created["data"]["namespace"]), "p");
    assert!(decode(&created["data"]["ca.crt"]).starts_with("-----BEGIN CERTIFICATE-----"));

    let cases: Vec<(&str, String, Option<Value>, Expect)> = vec![
        (
            "POST",
            format!("{SAS}/missing/tokens"),
            Some(json!({"name": "t"})),
            Expect::Err(404, "serviceaccounts \"missing\" not found"),
        ),
        (
            "POST",
            format!("{SAS}/plain/tokens"),
            Some(json!({"name": "t"})),
            Expect::Err(
                400,
                "Kubernetes ServiceAccount \"plain\" in namespace \"p\" is not labeled as a Kargo ServiceAccount",
            ),
        ),
        (
            "POST",
            format!("{SAS}/a/tokens"),
            Some(json!({"name": "opaque"})),
            Expect::Err(
                409,
                "error creating token Secret \"opaque\" for ServiceAccount \"a\" in namespace \"p\": secrets \"opaque\" already exists",
            ),
        ),
        (
            "POST",
            format!("{SAS}/a/tokens"),
            Some(json!({})),
            Expect::Err(400, "name should not be empty"),
        ),
        (
            "GET",
            format!("{TOKENS}/missing"),
            None,
            Expect::Err(404, "secrets \"missing\" not found"),
        ),
        (
            "GET",
            format!("{TOKENS}/opaque"),
            None,
            Expect::Err(
                400,
                "Kubernetes Secret \"opaque\" in namespace \"p\" is not labeled as a Kargo ServiceAccount token",
            ),
        ),
        (
            "GET",
            format!("{TOKENS}/unlabeled"),
            None,
            Expect::Err(
                400,
                "Kubernetes Secret \"unlabeled\" in namespace \"p\" is not labeled as a Kargo ServiceAccount token",
            ),
        ),
        (
            "GET",
            format!("{TOKENS}?serviceAccount=missing"),
            None,
            Expect::Err(404, "serviceaccounts \"missing\" not found"),
        ),
        (
            "GET",
            format!("{TOKENS}?serviceAccount=plain"),
            None,
            Expect::Err(
                400,
                "Kubernetes ServiceAccount \"plain\" in namespace \"p\" is not labeled as a Kargo ServiceAccount",
            ),
        ),
        (
            "DELETE",
            format!("{TOKENS}/missing"),
            None,
            Expect::Err(404, "secrets \"missing\" not found"),
        ),
        (
            "DELETE",
            format!("{TOKENS}/unlabeled"),
            None,
            Expect::Err(
                400,
                "Kubernetes Secret \"unlabeled\" in namespace \"p\" is not labeled as a Kargo ServiceAccount token",
            ),
        ),
        (
            "DELETE",
            format!("{TOKENS}/declared"),
            None,
            Expect::Err(
                400,
                "Kubernetes Secret \"declared\" in namespace \"p\" is not annotated as Kargo-managed",
            ),
        ),
    ];
    for (method, path, body, expect) in cases {
        admin.check(method, &path, body, expect);
    }

    // Reads redact data.token only.
    let got = admin.check("GET", &format!("{TOKENS}/a-token"), None, Expect::Ok(200));
    assert_eq!(got["data"]["token"], REDACTED_B64);
    assert_eq!(got["data"]["namespace"], created["data"]["namespace"]);
    assert_eq!(got["data"]["ca.crt"], created["data"]["ca.crt"]);
    admin.token("p", "b", "b-token");
    let all = admin.check("GET", TOKENS, None, Expect::Ok(200));
    assert_eq!(all["kind"], "SecretList");
    assert_eq!(names(&all), ["a-token", "b-token", "declared"]);
    for item in all["items"].as_array().expect("items") {
        assert_eq!(
            item["data"]["token"], REDACTED_B64,
            "{}",
            item["metadata"]["name"]
        );
    }
    assert_eq!(
        names(&admin.get(&format!("{TOKENS}?serviceAccount=b")).body),
        ["b-token", "declared"]
    );

    // Delete: the token stops working with the very next request.
    let a = Kargo::with_token(&server, &jwt);
    assert_eq!(
        a.get("/v1beta1/projects/p/roles").body,
        json!({"error": "serviceaccounts is forbidden: list is not permitted"})
    );
    admin.check(
        "DELETE",
        &format!("{TOKENS}/a-token"),
        None,
        Expect::Ok(204),
    );
    assert_eq!(
        a.get("/v1beta1/projects/p/roles").body,
        json!({"error": "invalid token"})
    );
    admin.check(
        "GET",
        &format!("{TOKENS}/a-token"),
        None,
        Expect::Err(404, "secrets \"a-token\" not found"),
    );
}

#[test]
fn the_system_level_has_its_service_accounts_tokens_and_read_only_roles() {
    let server = Server::start();
    let admin = Kargo::admin(&server);
    let system = [
        "kargo-admin",
        "kargo-project-creator",
        "kargo-user",
        "kargo-viewer",
    ];
    let list = admin.check(
        "GET",
        "/v1beta1/system/service-accounts",
        None,
        Expect::Ok(200),
    );
    assert_eq!(names(&list), system);
    for item in list["items"].as_array().expect("items") {
        assert_eq!(item["metadata"]["namespace"], "kargo");
        assert_eq!(item["metadata"]["labels"], json!({SA_LABEL: "true"}));
        assert!(item["metadata"]["annotations"].get(MANAGED).is_none());
    }
    admin.check(
        "GET",
        "/v1beta1/system/service-accounts/default",
        None,
        Expect::Err(
            400,
            "Kubernetes ServiceAccount \"default\" in namespace \"kargo\" is not labeled as a Kargo ServiceAccount",
        ),
    );
    let roles = admin.check("GET", "/v1beta1/system/roles", None, Expect::Ok(200));
    assert_eq!(names(&roles), system);
    let creator = admin.check(
        "GET",
        "/v1beta1/system/roles/kargo-project-creator",
        None,
        Expect::Ok(200),
    );
    assert_eq!(
        creator,
        json!({
            "metadata": {
                "name": "kargo-project-creator",
                "namespace": "kargo",
                "creationTimestamp": creator["metadata"]["creationTimestamp"],
            },
            "serviceAccounts": [],
            "rules": [{"apiGroups": ["kargo.akuity.io"], "resources": ["projects"], "verbs": ["create"]}],
        })
    );
    admin.check(
        "GET",
        "/v1beta1/system/roles/default",
        None,
        Expect::Err(
            404,
            "ServiceAccount \"default\" in namespace \"kargo\" is not a system role",
        ),
    );
    admin.check(
        "GET",
        "/v1beta1/system/roles/missing",
        None,
        Expect::Err(404, "serviceaccounts \"missing\" not found"),
    );

    // A project creator's token creates projects, and may do nothing else.
    let secret = admin.check(
        "POST",
        "/v1beta1/system/service-accounts/kargo-project-creator/tokens",
        Some(json!({"name": "ci"})),
        Expect::Ok(201),
    );
    assert_eq!(secret["metadata"]["namespace"], "kargo");
    let creator = Kargo::with_token(&server, &decode(&secret["data"]["token"]));
    creator.project("made-by-ci");
    creator.check(
        "GET",
        "/v1beta1/projects",
        None,
        Expect::Err(
            403,
            "projects.kargo.akuity.io is forbidden: list is not permitted",
        ),
    );
    creator.check(
        "DELETE",
        "/v1beta1/projects/made-by-ci",
        None,
        Expect::Err(
            403,
            "projects.kargo.akuity.io \"made-by-ci\" is forbidden: delete is not permitted",
        ),
    );
    let tokens = admin.check(
        "GET",
        "/v1beta1/system/service-account-tokens",
        None,
        Expect::Ok(200),
    );
    assert_eq!(names(&tokens), ["ci"]);
    assert_eq!(tokens["items"][0]["data"]["token"], REDACTED_B64);
    assert_eq!(
        admin.check(
            "GET",
            "/v1beta1/system/service-account-tokens/ci",
            None,
            Expect::Ok(200)
        )["data"]["token"],
        REDACTED_B64
    );
    admin.check(
        "GET",
        "/v1beta1/system/service-account-tokens?serviceAccount=kargo-viewer",
        None,
        Expect::Ok(200),
    );
    admin.check(
        "DELETE",
        "/v1beta1/system/service-account-tokens/ci",
        None,
        Expect::Ok(204),
    );
    creator.check(
        "POST",
        "/v1beta1/projects",
        Some(json!({"metadata": {"name": "another"}})),
        Expect::Err(401, "invalid token"),
    );
    // System ServiceAccounts are not managed: they cannot be created or deleted through Kargo.
    for (method, path) in [
        ("POST", "/v1beta1/system/service-accounts"),
        ("DELETE", "/v1beta1/system/service-accounts/kargo-admin"),
    ] {
        assert_eq!(
            admin.raw(method, path, &[], None).code,
            405,
            "{method} {path}"
        );
    }
}

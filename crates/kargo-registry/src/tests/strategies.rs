//! The rules of each kind, as a client sees them.

use kargo_api::resources::{
    CLUSTERROLEBINDINGS, NAMESPACES, PROJECTS, ROLEBINDINGS, ROLES, SECRETS, SERVICEACCOUNTS,
};
use serde_json::{Value, json};

use super::{assert_status, create_err, refused, setup, update};
use crate::patch::PatchType;
use crate::strategy::FieldValidation;
use crate::testing::token_secret_body;
use crate::{Meta, Target, WriteOptions};

// ServiceAccount

#[tokio::test]
async fn a_malformed_federated_identities_annotation_is_refused_at_write_time() {
    let test = setup().await;
    let body = |value: &str| {
        json!({"metadata": {"name": "ci", "annotations": {
            "rbac.kargo.akuity.io/federated-identities": value}}})
    };
    refused(
        test.create(&SERVICEACCOUNTS, Some("p"), body("[{\"issuer\": \"http://ci\", \"subject\": \"s\"}]")),
        (422, "Invalid"),
        "ServiceAccount \"ci\" is invalid: metadata.annotations[rbac.kargo.akuity.io/federated-identities]: Invalid value: entry 0: issuer must be an https:// URL, got \"http://ci\"",
    )
    .await;
    let good = "[{\"issuer\": \"https://ci\", \"subject\": \"repo:a/b:ref:refs/heads/*\"}]";
    test.create(&SERVICEACCOUNTS, Some("p"), body(good))
        .await
        .unwrap();
}

#[tokio::test]
async fn service_account_unknown_fields_warn_or_fail_by_field_validation() {
    let test = setup().await;
    let body = json!({"metadata": {"name": "robot", "colour": "red"}, "automountServiceAccountToken": false, "spec": {}});
    let warn = test
        .registry
        .create(
            &SERVICEACCOUNTS,
            Some("p"),
            body.clone(),
            &WriteOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        warn.warnings,
        [
            "unknown field \"metadata.colour\"",
            "unknown field \"spec\""
        ]
    );
    assert!(warn.object.get("spec").is_none());
    assert_eq!(warn.object["automountServiceAccountToken"], false);
    assert_eq!(warn.object["kind"], "ServiceAccount");
    assert_eq!(warn.object["apiVersion"], "v1");

    let strict = WriteOptions {
        field_validation: FieldValidation::Strict,
        ..WriteOptions::default()
    };
    let mut body = body;
    body["metadata"]["name"] = json!("strict");
    let err = test
        .registry
        .create(&SERVICEACCOUNTS, Some("p"), body, &strict)
        .await
        .unwrap_err();
    assert_status(
        &err,
        (400, "BadRequest"),
        "ServiceAccount in version \"v1\" cannot be handled as a ServiceAccount: strict decoding error: unknown field \"metadata.colour\", unknown field \"spec\"",
    );
}

#[tokio::test]
async fn a_body_of_another_kind_is_a_400() {
    let test = setup().await;
    refused(
        test.create(
            &SERVICEACCOUNTS,
            Some("p"),
            json!({"kind": "Secret", "metadata": {"name": "robot"}}),
        ),
        (400, "BadRequest"),
        "the kind in the data (Secret) does not match the expected kind (ServiceAccount)",
    )
    .await;
    let err = create_err(
        &test,
        &SERVICEACCOUNTS,
        Some("p"),
        json!({"metadata": {"name": 5}}),
    )
    .await;
    assert_eq!(err.code, 400);
    assert!(
        err.message.starts_with(
            "ServiceAccount in version \"v1\" cannot be handled as a ServiceAccount: "
        ),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn service_accounts_take_strategic_merge_patches_and_answer_deletes_with_the_object() {
    let test = setup().await;
    test.create(
        &SERVICEACCOUNTS,
        Some("p"),
        json!({"metadata": {"name": "robot"}, "secrets": [{"name": "a"}]}),
    )
    .await
    .unwrap();
    let target = Target::new(&SERVICEACCOUNTS, Some("p"), "robot");
    // `secrets` merges by name.
    let patched = test
        .registry
        .patch(
            target,
            PatchType::Strategic,
            br#"{"secrets": [{"name": "b"}]}"#,
            &WriteOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        patched.object["secrets"],
        json!([{"name": "b"}, {"name": "a"}])
    );
    let deleted = test
        .delete(&SERVICEACCOUNTS, Some("p"), "robot")
        .await
        .unwrap();
    let response = deleted.response(&SERVICEACCOUNTS);
    assert_eq!(response["kind"], "ServiceAccount");
    assert_eq!(response.name(), "robot");
}

// Secret

#[tokio::test]
async fn secrets_default_to_opaque_fold_string_data_and_answer_deletes_with_a_status() {
    let test = setup().await;
    let created = test
        .create(
            &SECRETS,
            Some("p"),
            json!({"metadata": {"name": "s"}, "stringData": {"password": "hunter2"}}),
        )
        .await
        .unwrap();
    assert_eq!(created["type"], "Opaque");
    assert_eq!(created["data"], json!({"password": "aHVudGVyMg=="}));
    assert!(created.get("stringData").is_none());

    let deleted = test.delete(&SECRETS, Some("p"), "s").await.unwrap();
    let response = deleted.response(&SECRETS);
    assert_eq!(response["kind"], "Status");
    assert_eq!(response["status"], "Success");
    assert_eq!(
        response["details"],
        json!({"name": "s", "kind": "secrets", "uid": created.uid()})
    );
}

#[tokio::test]
async fn a_service_account_token_secret_must_name_its_account() {
    let test = setup().await;
    let body = json!({"metadata": {"name": "t"}, "type": "kubernetes.io/service-account-token"});
    refused(
        test.create(&SECRETS, Some("p"), body),
        (422, "Invalid"),
        "Secret \"t\" is invalid: metadata.annotations[kubernetes.io/service-account.name]: Required value",
    )
    .await;
    test.create(&SECRETS, Some("p"), token_secret_body("t", "robot"))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_secret_keeps_its_type_and_an_immutable_one_its_data() {
    let test = setup().await;
    let created = test
        .create(&SECRETS, Some("p"), token_secret_body("t", "robot"))
        .await
        .unwrap();
    let mut retyped = created.clone();
    retyped["type"] = json!("Opaque");
    refused(
        update(&test, &SECRETS, Some("p"), retyped),
        (422, "Invalid"),
        "Secret \"t\" is invalid: type: Invalid value: \"Opaque\": field is immutable",
    )
    .await;
    // An update without `type` keeps it.
    let mut untyped = created.clone();
    untyped.as_object_mut().unwrap().remove("type");
    untyped["data"] = json!({"token": "eA=="});
    let written = update(&test, &SECRETS, Some("p"), untyped).await.unwrap();
    assert_eq!(written["type"], "kubernetes.io/service-account-token");

    let frozen = test
        .create(
            &SECRETS,
            Some("p"),
            json!({"metadata": {"name": "frozen"}, "data": {"a": "eA=="}, "immutable": true}),
        )
        .await
        .unwrap();
    let mut changed = frozen.clone();
    changed["data"] = json!({"a": "eQ=="});
    refused(
        update(&test, &SECRETS, Some("p"), changed),
        (422, "Invalid"),
        "Secret \"frozen\" is invalid: data: Forbidden: field is immutable when `immutable` is set",
    )
    .await;
}

#[tokio::test]
async fn secret_keys_are_checked() {
    let test = setup().await;
    let body = json!({"metadata": {"name": "s"}, "data": {"a b": "eA=="}});
    let err = create_err(&test, &SECRETS, Some("p"), body).await;
    assert_eq!(err.code, 422);
    assert!(
        err.message
            .starts_with("Secret \"s\" is invalid: data[a b]: Invalid value: \"a b\": a valid config key must consist of alphanumeric characters"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn secrets_can_be_selected_by_type() {
    let test = setup().await;
    test.create(&SECRETS, Some("p"), json!({"metadata": {"name": "plain"}}))
        .await
        .unwrap();
    test.create(&SECRETS, Some("p"), token_secret_body("t", "robot"))
        .await
        .unwrap();
    let options = crate::ListOptions::with_selectors(
        &SECRETS,
        None,
        Some("type=kubernetes.io/service-account-token"),
    )
    .unwrap();
    let list = test
        .registry
        .list(&SECRETS, Some("p"), &options)
        .await
        .unwrap();
    let names: Vec<&str> = list.items.iter().map(|o| o.name()).collect();
    assert_eq!(names, ["t"]);
}

// RBAC

fn role(rules: Value) -> Value {
    json!({"metadata": {"name": "r"}, "rules": rules})
}

#[tokio::test]
async fn role_rules_need_verbs_groups_and_resources() {
    let test = setup().await;
    for (rules, message) in [
        (
            json!([{"apiGroups": [""], "resources": ["secrets"]}]),
            "Role.rbac.authorization.k8s.io \"r\" is invalid: rules[0].verbs: Required value: verbs must contain at least one value",
        ),
        (
            json!([{"verbs": ["get"]}]),
            "Role.rbac.authorization.k8s.io \"r\" is invalid: [rules[0].apiGroups: Required value: resource rules must supply at least one api group, rules[0].resources: Required value: resource rules must supply at least one resource]",
        ),
        (
            json!([{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]),
            "Role.rbac.authorization.k8s.io \"r\" is invalid: rules[0].nonResourceURLs: Invalid value: []string{\"/healthz\"}: namespaced rules cannot apply to non-resource URLs",
        ),
    ] {
        refused(
            test.create(&ROLES, Some("p"), role(rules)),
            (422, "Invalid"),
            message,
        )
        .await;
    }
    test.create(
        &ROLES,
        Some("p"),
        role(json!([{"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"]}])),
    )
    .await
    .unwrap();
}

fn binding(role_ref: Value, subjects: Value) -> Value {
    json!({"metadata": {"name": "b"}, "roleRef": role_ref, "subjects": subjects})
}

#[tokio::test]
async fn role_bindings_check_role_ref_and_subjects() {
    let test = setup().await;
    let good_ref = json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"});
    for (rt, namespace, body, message) in [
        (
            &ROLEBINDINGS,
            Some("p"),
            binding(
                json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Robot", "name": "r"}),
                json!([]),
            ),
            "RoleBinding.rbac.authorization.k8s.io \"b\" is invalid: roleRef.kind: Unsupported value: \"Robot\": supported values: \"Role\", \"ClusterRole\"",
        ),
        (
            &ROLEBINDINGS,
            Some("p"),
            binding(good_ref.clone(), json!([{"kind": "Robot", "name": "x"}])),
            "RoleBinding.rbac.authorization.k8s.io \"b\" is invalid: subjects[0].kind: Unsupported value: \"Robot\": supported values: \"ServiceAccount\", \"User\", \"Group\"",
        ),
        // A cluster binding's ServiceAccount subject needs a namespace.
        (
            &CLUSTERROLEBINDINGS,
            None,
            binding(
                json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "r"}),
                json!([{"kind": "ServiceAccount", "name": "robot"}]),
            ),
            "ClusterRoleBinding.rbac.authorization.k8s.io \"b\" is invalid: subjects[0].namespace: Required value",
        ),
    ] {
        refused(test.create(rt, namespace, body), (422, "Invalid"), message).await;
    }

    let created = test
        .create(
            &ROLEBINDINGS,
            Some("p"),
            binding(
                good_ref,
                json!([{"kind": "ServiceAccount", "name": "robot"}]),
            ),
        )
        .await
        .unwrap();
    let mut changed = created.clone();
    changed["roleRef"]["name"] = json!("other");
    refused(
        update(&test, &ROLEBINDINGS, Some("p"), changed),
        (422, "Invalid"),
        "RoleBinding.rbac.authorization.k8s.io \"b\" is invalid: roleRef: Invalid value: rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"Role\", Name:\"other\"}: cannot change roleRef",
    )
    .await;
}

// Namespace

#[tokio::test]
async fn a_namespace_is_created_active_with_its_name_label_and_keeps_its_status() {
    let test = crate::testing::TestRegistry::new();
    let created = test
        .create(&NAMESPACES, None, json!({"metadata": {"name": "shop"}}))
        .await
        .unwrap();
    assert_eq!(created["status"], json!({"phase": "Active"}));
    assert_eq!(created["spec"], json!({"finalizers": ["kubernetes"]}));
    assert_eq!(created.label("kubernetes.io/metadata.name"), Some("shop"));

    let mut next = created.clone();
    next["status"] = json!({"phase": "Terminating"});
    next["metadata"]["labels"] = json!({"team": "a"});
    let written = update(&test, &NAMESPACES, None, next).await.unwrap();
    assert_eq!(written["status"], json!({"phase": "Active"}));
    assert_eq!(written.label("kubernetes.io/metadata.name"), Some("shop"));
    assert_eq!(written.label("team"), Some("a"));

    let options =
        crate::ListOptions::with_selectors(&NAMESPACES, None, Some("status.phase=Active")).unwrap();
    let list = test
        .registry
        .list(&NAMESPACES, None, &options)
        .await
        .unwrap();
    assert_eq!(list.items.len(), 1);
}

// Kargo kinds (custom resources)

#[tokio::test]
async fn a_project_keeps_unknown_fields_and_counts_generations_of_its_spec() {
    let test = crate::testing::TestRegistry::new();
    let created = test
        .create(
            &PROJECTS,
            None,
            json!({"metadata": {"name": "shop"}, "spec": {"anything": {"goes": 1}}}),
        )
        .await
        .unwrap();
    assert_eq!(created["apiVersion"], "kargo.akuity.io/v1alpha1");
    assert_eq!(created["spec"], json!({"anything": {"goes": 1}}));
    assert_eq!(created["metadata"]["generation"], 1);

    let mut labelled = created.clone();
    labelled["metadata"]["labels"] = json!({"team": "a"});
    let labelled = update(&test, &PROJECTS, None, labelled).await.unwrap();
    assert_eq!(labelled["metadata"]["generation"], 1, "metadata only");

    let mut respecced = labelled.clone();
    respecced["spec"] = json!({"anything": {"goes": 2}});
    let respecced = update(&test, &PROJECTS, None, respecced).await.unwrap();
    assert_eq!(respecced["metadata"]["generation"], 2);

    let status = test
        .registry
        .update_status(Target::new(&PROJECTS, None, "shop"), |s| {
            s.insert("phase".into(), json!("Ready"));
        })
        .await
        .unwrap();
    assert_eq!(status["status"], json!({"phase": "Ready"}));
    assert_eq!(status["metadata"]["generation"], 2, "status only");

    // Strategic merge patches are for built-in kinds only.
    let err = test
        .registry
        .patch(
            Target::new(&PROJECTS, None, "shop"),
            PatchType::Strategic,
            b"{}",
            &WriteOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!((err.code, err.reason), (415, "UnsupportedMediaType"));

    let deleted = test.delete(&PROJECTS, None, "shop").await.unwrap();
    assert_eq!(deleted.response(&PROJECTS)["kind"], "Project");
}

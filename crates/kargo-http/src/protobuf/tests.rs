//! Tests for [`decode`]: bodies captured from kubectl 1.32.4, hand-built messages of every kind
//! (every field set, and every field unset), and malformed input.
//!
//! The files in `testdata/` are the exact request bodies kubectl 1.32.4 sent to a throwaway TLS
//! listener for the command each file is named after (in namespace `ns1`). The expected JSON is
//! written out as Go's `encoding/json` prints the same object; comparisons are on the printed text,
//! so field order counts.

use std::collections::BTreeMap;

use k8s_pb::api::authentication::v1 as authn;
use k8s_pb::api::authorization::v1 as authz;
use k8s_pb::api::core::v1 as core;
use k8s_pb::api::rbac::v1 as rbac;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use prost::Message;
use serde_json::Value;

use super::{MAGIC, ProtobufError, decode, supported_kinds};

/// A request body: the magic number, then an envelope as kubectl writes it.
fn envelope(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(api_version.to_owned()),
            kind: Some(kind.to_owned()),
        }),
        raw: Some(raw),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    [MAGIC.as_slice(), &unknown.encode_to_vec()].concat()
}

fn body(api_version: &str, kind: &str, message: &impl Message) -> Vec<u8> {
    envelope(api_version, kind, message.encode_to_vec())
}

/// Decodes `body` and compares the printed JSON with `expected`, in order.
fn check(body: &[u8], expected: &str) {
    let actual = match decode(body) {
        Ok(actual) => actual,
        Err(error) => panic!("decode failed: {error}"),
    };
    let expected: Value = serde_json::from_str(expected).expect("expected JSON parses");
    assert_eq!(
        serde_json::to_string_pretty(&actual).expect("prints"),
        serde_json::to_string_pretty(&expected).expect("prints"),
    );
}

fn check_error(body: &[u8], expected: &str) {
    match decode(body) {
        Ok(value) => panic!("expected error {expected:?}, decoded {value}"),
        Err(error) => assert_eq!(error.to_string(), expected),
    }
}

fn some(value: &str) -> Option<String> {
    Some(value.to_owned())
}

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|&value| value.to_owned()).collect()
}

fn string_map(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
    entries
        .iter()
        .map(|&(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
}

fn time(seconds: i64) -> Option<meta::Time> {
    Some(meta::Time {
        seconds: Some(seconds),
        nanos: Some(0),
    })
}

/// 2024-01-02T03:04:05Z.
const JAN_2_2024: i64 = 1_704_164_645;

fn named(name: &str) -> Option<meta::ObjectMeta> {
    Some(meta::ObjectMeta {
        name: some(name),
        ..Default::default()
    })
}

// ---------------------------------------------------------------------------------------------
// Bodies captured from kubectl 1.32.4.

#[test]
fn kubectl_create_serviceaccount_decodes() {
    check(
        include_bytes!("testdata/create-serviceaccount.bin"),
        r#"{"kind":"ServiceAccount","apiVersion":"v1","metadata":{"name":"sa1","creationTimestamp":null}}"#,
    );
}

#[test]
fn kubectl_create_namespace_decodes() {
    check(
        include_bytes!("testdata/create-namespace.bin"),
        r#"{"kind":"Namespace","apiVersion":"v1","metadata":{"name":"ns1","creationTimestamp":null},"spec":{},"status":{}}"#,
    );
}

#[test]
fn kubectl_create_secret_generic_decodes() {
    // kubectl create secret generic s1 --from-literal=k=v --from-literal=empty=
    check(
        include_bytes!("testdata/create-secret-generic.bin"),
        r#"{"kind":"Secret","apiVersion":"v1","metadata":{"name":"s1","creationTimestamp":null},"data":{"empty":"","k":"dg=="}}"#,
    );
}

#[test]
fn kubectl_create_secret_with_type_decodes() {
    // kubectl create secret generic s2 --type=kubernetes.io/basic-auth --from-literal=username=u
    check(
        include_bytes!("testdata/create-secret-basic-auth.bin"),
        r#"{"kind":"Secret","apiVersion":"v1","metadata":{"name":"s2","creationTimestamp":null},"data":{"username":"dQ=="},"type":"kubernetes.io/basic-auth"}"#,
    );
}

#[test]
fn kubectl_create_configmap_decodes() {
    // kubectl create configmap cm1 --from-literal=a=b --from-file=bin=<the bytes 00 01 ff fe>
    check(
        include_bytes!("testdata/create-configmap.bin"),
        r#"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"cm1","creationTimestamp":null},"data":{"a":"b"},"binaryData":{"bin":"AAH//g=="}}"#,
    );
}

#[test]
fn kubectl_create_role_decodes() {
    // kubectl create role r1 --verb=get,list --resource=pods,secrets --resource-name=x
    check(
        include_bytes!("testdata/create-role.bin"),
        r#"{"kind":"Role","apiVersion":"rbac.authorization.k8s.io/v1","metadata":{"name":"r1","creationTimestamp":null},
            "rules":[{"verbs":["get","list"],"apiGroups":[""],"resources":["pods","secrets"],"resourceNames":["x"]}]}"#,
    );
}

#[test]
fn kubectl_create_clusterrole_decodes() {
    // kubectl create clusterrole cr1 --verb=get --non-resource-url=/healthz
    check(
        include_bytes!("testdata/create-clusterrole.bin"),
        r#"{"kind":"ClusterRole","apiVersion":"rbac.authorization.k8s.io/v1","metadata":{"name":"cr1","creationTimestamp":null},
            "rules":[{"verbs":["get"],"nonResourceURLs":["/healthz"]}]}"#,
    );
}

#[test]
fn kubectl_create_clusterrole_with_aggregation_rule_decodes() {
    // kubectl create clusterrole agg1 --aggregation-rule=a=b
    check(
        include_bytes!("testdata/create-clusterrole-aggregation.bin"),
        r#"{"kind":"ClusterRole","apiVersion":"rbac.authorization.k8s.io/v1","metadata":{"name":"agg1","creationTimestamp":null},
            "rules":null,"aggregationRule":{"clusterRoleSelectors":[{"matchLabels":{"a":"b"}}]}}"#,
    );
}

#[test]
fn kubectl_create_rolebinding_decodes() {
    // kubectl create rolebinding rb1 --role=r1 --serviceaccount=ns1:sa1 --user=u --group=g
    check(
        include_bytes!("testdata/create-rolebinding.bin"),
        r#"{"kind":"RoleBinding","apiVersion":"rbac.authorization.k8s.io/v1","metadata":{"name":"rb1","creationTimestamp":null},
            "subjects":[{"kind":"User","apiGroup":"rbac.authorization.k8s.io","name":"u"},
                        {"kind":"Group","apiGroup":"rbac.authorization.k8s.io","name":"g"},
                        {"kind":"ServiceAccount","name":"sa1","namespace":"ns1"}],
            "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"r1"}}"#,
    );
}

#[test]
fn kubectl_create_clusterrolebinding_decodes() {
    // kubectl create clusterrolebinding crb1 --clusterrole=cr1 --user=alice
    check(
        include_bytes!("testdata/create-clusterrolebinding.bin"),
        r#"{"kind":"ClusterRoleBinding","apiVersion":"rbac.authorization.k8s.io/v1","metadata":{"name":"crb1","creationTimestamp":null},
            "subjects":[{"kind":"User","apiGroup":"rbac.authorization.k8s.io","name":"alice"}],
            "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"cr1"}}"#,
    );
}

#[test]
fn kubectl_create_token_with_duration_and_audience_decodes() {
    // kubectl create token sa1 --duration=1h --audience=x
    check(
        include_bytes!("testdata/create-token-duration-audience.bin"),
        r#"{"kind":"TokenRequest","apiVersion":"authentication.k8s.io/v1","metadata":{"creationTimestamp":null},
            "spec":{"audiences":["x"],"expirationSeconds":3600,"boundObjectRef":null},
            "status":{"token":"","expirationTimestamp":null}}"#,
    );
}

#[test]
fn kubectl_create_token_without_options_decodes() {
    check(
        include_bytes!("testdata/create-token.bin"),
        r#"{"kind":"TokenRequest","apiVersion":"authentication.k8s.io/v1","metadata":{"creationTimestamp":null},
            "spec":{"audiences":null,"expirationSeconds":null,"boundObjectRef":null},
            "status":{"token":"","expirationTimestamp":null}}"#,
    );
}

#[test]
fn kubectl_create_token_bound_to_an_object_decodes() {
    // kubectl create token sa1 --bound-object-kind=Secret --bound-object-name=s1 --bound-object-uid=123
    check(
        include_bytes!("testdata/create-token-bound-object.bin"),
        r#"{"kind":"TokenRequest","apiVersion":"authentication.k8s.io/v1","metadata":{"creationTimestamp":null},
            "spec":{"audiences":null,"expirationSeconds":null,
                    "boundObjectRef":{"kind":"Secret","apiVersion":"v1","name":"s1","uid":"123"}},
            "status":{"token":"","expirationTimestamp":null}}"#,
    );
}

#[test]
fn kubectl_auth_can_i_on_a_resource_decodes() {
    // kubectl auth can-i get pods
    check(
        include_bytes!("testdata/auth-can-i-get-pods.bin"),
        r#"{"kind":"SelfSubjectAccessReview","apiVersion":"authorization.k8s.io/v1","metadata":{"creationTimestamp":null},
            "spec":{"resourceAttributes":{"namespace":"ns1","verb":"get","resource":"pods"}},
            "status":{"allowed":false}}"#,
    );
}

#[test]
fn kubectl_auth_can_i_on_a_url_decodes() {
    // kubectl auth can-i get /healthz
    check(
        include_bytes!("testdata/auth-can-i-get-healthz.bin"),
        r#"{"kind":"SelfSubjectAccessReview","apiVersion":"authorization.k8s.io/v1","metadata":{"creationTimestamp":null},
            "spec":{"nonResourceAttributes":{"path":"/healthz","verb":"get"}},
            "status":{"allowed":false}}"#,
    );
}

#[test]
fn kubectl_auth_can_i_on_a_subresource_in_all_namespaces_decodes() {
    // kubectl auth can-i list secrets --subresource=status -A
    check(
        include_bytes!("testdata/auth-can-i-list-secrets-status-all-namespaces.bin"),
        r#"{"kind":"SelfSubjectAccessReview","apiVersion":"authorization.k8s.io/v1","metadata":{"creationTimestamp":null},
            "spec":{"resourceAttributes":{"verb":"list","resource":"secrets","subresource":"status"}},
            "status":{"allowed":false}}"#,
    );
}

#[test]
fn kubectl_auth_can_i_list_decodes() {
    // kubectl auth can-i --list
    check(
        include_bytes!("testdata/auth-can-i-list.bin"),
        r#"{"kind":"SelfSubjectRulesReview","apiVersion":"authorization.k8s.io/v1","metadata":{"creationTimestamp":null},
            "spec":{"namespace":"ns1"},
            "status":{"resourceRules":null,"nonResourceRules":null,"incomplete":false}}"#,
    );
}

#[test]
fn kubectl_auth_whoami_decodes() {
    check(
        include_bytes!("testdata/auth-whoami.bin"),
        r#"{"kind":"SelfSubjectReview","apiVersion":"authentication.k8s.io/v1","metadata":{"creationTimestamp":null},
            "status":{"userInfo":{}}}"#,
    );
}

// ---------------------------------------------------------------------------------------------
// Hand-built messages.

#[test]
fn every_supported_kind_decodes_from_an_empty_message_to_go_zero_values() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "v1",
            "Namespace",
            r#""metadata":{"creationTimestamp":null},"spec":{},"status":{}"#,
        ),
        (
            "v1",
            "ServiceAccount",
            r#""metadata":{"creationTimestamp":null}"#,
        ),
        ("v1", "Secret", r#""metadata":{"creationTimestamp":null}"#),
        (
            "v1",
            "ConfigMap",
            r#""metadata":{"creationTimestamp":null}"#,
        ),
        (
            "rbac.authorization.k8s.io/v1",
            "Role",
            r#""metadata":{"creationTimestamp":null},"rules":null"#,
        ),
        (
            "rbac.authorization.k8s.io/v1",
            "ClusterRole",
            r#""metadata":{"creationTimestamp":null},"rules":null"#,
        ),
        (
            "rbac.authorization.k8s.io/v1",
            "RoleBinding",
            r#""metadata":{"creationTimestamp":null},"roleRef":{"apiGroup":"","kind":"","name":""}"#,
        ),
        (
            "rbac.authorization.k8s.io/v1",
            "ClusterRoleBinding",
            r#""metadata":{"creationTimestamp":null},"roleRef":{"apiGroup":"","kind":"","name":""}"#,
        ),
        (
            "authentication.k8s.io/v1",
            "TokenRequest",
            r#""metadata":{"creationTimestamp":null},
               "spec":{"audiences":null,"expirationSeconds":null,"boundObjectRef":null},
               "status":{"token":"","expirationTimestamp":null}"#,
        ),
        (
            "authentication.k8s.io/v1",
            "TokenReview",
            r#""metadata":{"creationTimestamp":null},"spec":{},"status":{"user":{}}"#,
        ),
        (
            "authentication.k8s.io/v1",
            "SelfSubjectReview",
            r#""metadata":{"creationTimestamp":null},"status":{"userInfo":{}}"#,
        ),
        (
            "authorization.k8s.io/v1",
            "SelfSubjectAccessReview",
            r#""metadata":{"creationTimestamp":null},"spec":{},"status":{"allowed":false}"#,
        ),
        (
            "authorization.k8s.io/v1",
            "SubjectAccessReview",
            r#""metadata":{"creationTimestamp":null},"spec":{},"status":{"allowed":false}"#,
        ),
        (
            "authorization.k8s.io/v1",
            "LocalSubjectAccessReview",
            r#""metadata":{"creationTimestamp":null},"spec":{},"status":{"allowed":false}"#,
        ),
        (
            "authorization.k8s.io/v1",
            "SelfSubjectRulesReview",
            r#""metadata":{"creationTimestamp":null},"spec":{},
               "status":{"resourceRules":null,"nonResourceRules":null,"incomplete":false}"#,
        ),
        ("meta.k8s.io/v1", "DeleteOptions", ""),
        ("v1", "DeleteOptions", ""),
        ("rbac.authorization.k8s.io/v1", "DeleteOptions", ""),
        ("authentication.k8s.io/v1", "DeleteOptions", ""),
        ("authorization.k8s.io/v1", "DeleteOptions", ""),
    ];
    let mut covered: Vec<_> = cases.iter().map(|&(v, k, _)| (v, k)).collect();
    let mut supported: Vec<_> = supported_kinds().collect();
    covered.sort_unstable();
    supported.sort_unstable();
    assert_eq!(covered, supported, "every supported kind has a case");

    for &(api_version, kind, fields) in cases {
        let separator = if fields.is_empty() { "" } else { "," };
        let expected =
            format!(r#"{{"kind":"{kind}","apiVersion":"{api_version}"{separator}{fields}}}"#);
        check(&envelope(api_version, kind, Vec::new()), &expected);
    }
}

#[test]
fn object_meta_prints_every_field_in_go_order() {
    let account = core::ServiceAccount {
        metadata: Some(meta::ObjectMeta {
            name: some("sa1"),
            generate_name: some("sa-"),
            namespace: some("ns1"),
            self_link: some("/api/v1/namespaces/ns1/serviceaccounts/sa1"),
            uid: some("0c5b6a3e-2f0e-4d47-9a43-5f8f5b0f6f10"),
            resource_version: some("42"),
            generation: Some(3),
            creation_timestamp: time(JAN_2_2024),
            deletion_timestamp: time(JAN_2_2024 + 60),
            deletion_grace_period_seconds: Some(0),
            labels: string_map(&[("b", "2"), ("a", "1")]),
            annotations: string_map(&[("note", "x")]),
            owner_references: vec![
                meta::OwnerReference {
                    api_version: some("v1"),
                    kind: some("Namespace"),
                    name: some("ns1"),
                    uid: some("u1"),
                    controller: Some(true),
                    block_owner_deletion: Some(false),
                },
                meta::OwnerReference::default(),
            ],
            finalizers: strings(&["f1", "f2"]),
            managed_fields: vec![meta::ManagedFieldsEntry {
                manager: some("kubectl"),
                ..Default::default()
            }],
        }),
        secrets: vec![
            core::ObjectReference {
                kind: some("Secret"),
                namespace: some("ns1"),
                name: some("t"),
                uid: some("u2"),
                api_version: some("v1"),
                resource_version: some("7"),
                field_path: some("data"),
            },
            core::ObjectReference::default(),
        ],
        image_pull_secrets: vec![
            core::LocalObjectReference { name: some("pull") },
            core::LocalObjectReference::default(),
        ],
        automount_service_account_token: Some(false),
    };
    check(
        &body("v1", "ServiceAccount", &account),
        r#"{"kind":"ServiceAccount","apiVersion":"v1",
            "metadata":{"name":"sa1","generateName":"sa-","namespace":"ns1",
                "selfLink":"/api/v1/namespaces/ns1/serviceaccounts/sa1",
                "uid":"0c5b6a3e-2f0e-4d47-9a43-5f8f5b0f6f10","resourceVersion":"42","generation":3,
                "creationTimestamp":"2024-01-02T03:04:05Z","deletionTimestamp":"2024-01-02T03:05:05Z",
                "deletionGracePeriodSeconds":0,"labels":{"a":"1","b":"2"},"annotations":{"note":"x"},
                "ownerReferences":[
                    {"apiVersion":"v1","kind":"Namespace","name":"ns1","uid":"u1","controller":true,"blockOwnerDeletion":false},
                    {"apiVersion":"","kind":"","name":"","uid":""}],
                "finalizers":["f1","f2"]},
            "secrets":[{"kind":"Secret","namespace":"ns1","name":"t","uid":"u2","apiVersion":"v1","resourceVersion":"7","fieldPath":"data"},{}],
            "imagePullSecrets":[{"name":"pull"},{}],
            "automountServiceAccountToken":false}"#,
    );
}

#[test]
fn a_present_but_empty_deletion_timestamp_prints_as_null() {
    // Go decodes it into a non-nil pointer to the zero time, which omitempty keeps.
    let account = core::ServiceAccount {
        metadata: Some(meta::ObjectMeta {
            deletion_timestamp: Some(meta::Time::default()),
            creation_timestamp: Some(meta::Time::default()),
            ..Default::default()
        }),
        ..Default::default()
    };
    check(
        &body("v1", "ServiceAccount", &account),
        r#"{"kind":"ServiceAccount","apiVersion":"v1","metadata":{"creationTimestamp":null,"deletionTimestamp":null}}"#,
    );
}

#[test]
fn secret_prints_data_as_base64_and_string_data_as_is() {
    let secret = core::Secret {
        metadata: named("s1"),
        immutable: Some(true),
        data: [
            ("bin".to_owned(), vec![0, 1, 0xff, 0xfe]),
            ("text".to_owned(), b"hello".to_vec()),
        ]
        .into(),
        string_data: string_map(&[("plain", "p<&>")]),
        r#type: some("Opaque"),
    };
    check(
        &body("v1", "Secret", &secret),
        r#"{"kind":"Secret","apiVersion":"v1","metadata":{"name":"s1","creationTimestamp":null},
            "immutable":true,"data":{"bin":"AAH//g==","text":"aGVsbG8="},"stringData":{"plain":"p<&>"},"type":"Opaque"}"#,
    );
}

#[test]
fn immutable_false_is_kept_because_it_is_a_pointer() {
    let config_map = core::ConfigMap {
        metadata: named("cm"),
        immutable: Some(false),
        data: string_map(&[("k", "")]),
        binary_data: [("b".to_owned(), Vec::new())].into(),
    };
    check(
        &body("v1", "ConfigMap", &config_map),
        r#"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"cm","creationTimestamp":null},
            "immutable":false,"data":{"k":""},"binaryData":{"b":""}}"#,
    );
}

#[test]
fn namespace_prints_spec_and_status() {
    let namespace = core::Namespace {
        metadata: named("ns1"),
        spec: Some(core::NamespaceSpec {
            finalizers: strings(&["kubernetes"]),
        }),
        status: Some(core::NamespaceStatus {
            phase: some("Terminating"),
            conditions: vec![
                core::NamespaceCondition {
                    r#type: some("NamespaceContentRemaining"),
                    status: some("True"),
                    last_transition_time: time(JAN_2_2024),
                    reason: some("SomeResourcesRemain"),
                    message: some("1 left"),
                },
                core::NamespaceCondition::default(),
            ],
        }),
    };
    check(
        &body("v1", "Namespace", &namespace),
        r#"{"kind":"Namespace","apiVersion":"v1","metadata":{"name":"ns1","creationTimestamp":null},
            "spec":{"finalizers":["kubernetes"]},
            "status":{"phase":"Terminating","conditions":[
                {"type":"NamespaceContentRemaining","status":"True","lastTransitionTime":"2024-01-02T03:04:05Z","reason":"SomeResourcesRemain","message":"1 left"},
                {"type":"","status":"","lastTransitionTime":null}]}}"#,
    );
}

#[test]
fn role_rules_keep_verbs_even_when_empty() {
    let role = rbac::Role {
        metadata: named("r"),
        rules: vec![
            rbac::PolicyRule::default(),
            rbac::PolicyRule {
                verbs: strings(&["*"]),
                api_groups: strings(&["", "apps"]),
                resources: strings(&["deployments"]),
                resource_names: strings(&["web"]),
                non_resource_ur_ls: strings(&["/metrics"]),
            },
        ],
    };
    check(
        &body("rbac.authorization.k8s.io/v1", "Role", &role),
        r#"{"kind":"Role","apiVersion":"rbac.authorization.k8s.io/v1","metadata":{"name":"r","creationTimestamp":null},
            "rules":[{"verbs":null},
                     {"verbs":["*"],"apiGroups":["","apps"],"resources":["deployments"],"resourceNames":["web"],"nonResourceURLs":["/metrics"]}]}"#,
    );
}

#[test]
fn cluster_role_prints_its_aggregation_rule_selectors() {
    let role = rbac::ClusterRole {
        metadata: named("agg"),
        rules: vec![rbac::PolicyRule {
            verbs: strings(&["get"]),
            ..Default::default()
        }],
        aggregation_rule: Some(rbac::AggregationRule {
            cluster_role_selectors: vec![
                meta::LabelSelector {
                    match_labels: string_map(&[("a", "b")]),
                    match_expressions: vec![
                        meta::LabelSelectorRequirement {
                            key: some("tier"),
                            operator: some("In"),
                            values: strings(&["x", "y"]),
                        },
                        meta::LabelSelectorRequirement {
                            key: some("gone"),
                            operator: some("DoesNotExist"),
                            values: Vec::new(),
                        },
                    ],
                },
                meta::LabelSelector::default(),
            ],
        }),
    };
    check(
        &body("rbac.authorization.k8s.io/v1", "ClusterRole", &role),
        r#"{"kind":"ClusterRole","apiVersion":"rbac.authorization.k8s.io/v1","metadata":{"name":"agg","creationTimestamp":null},
            "rules":[{"verbs":["get"]}],
            "aggregationRule":{"clusterRoleSelectors":[
                {"matchLabels":{"a":"b"},"matchExpressions":[
                    {"key":"tier","operator":"In","values":["x","y"]},
                    {"key":"gone","operator":"DoesNotExist"}]},
                {}]}}"#,
    );
}

#[test]
fn an_empty_aggregation_rule_is_kept_because_it_is_a_pointer() {
    let role = rbac::ClusterRole {
        aggregation_rule: Some(rbac::AggregationRule::default()),
        ..Default::default()
    };
    check(
        &body("rbac.authorization.k8s.io/v1", "ClusterRole", &role),
        r#"{"kind":"ClusterRole","apiVersion":"rbac.authorization.k8s.io/v1","metadata":{"creationTimestamp":null},
            "rules":null,"aggregationRule":{}}"#,
    );
}

#[test]
fn binding_subjects_always_print_kind_and_name() {
    let binding = rbac::ClusterRoleBinding {
        metadata: named("b"),
        subjects: vec![rbac::Subject::default()],
        role_ref: Some(rbac::RoleRef {
            api_group: some("rbac.authorization.k8s.io"),
            kind: some("ClusterRole"),
            name: some("view"),
        }),
    };
    check(
        &body(
            "rbac.authorization.k8s.io/v1",
            "ClusterRoleBinding",
            &binding,
        ),
        r#"{"kind":"ClusterRoleBinding","apiVersion":"rbac.authorization.k8s.io/v1","metadata":{"name":"b","creationTimestamp":null},
            "subjects":[{"kind":"","name":""}],
            "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"view"}}"#,
    );
}

#[test]
fn token_request_status_prints_token_and_expiry() {
    let request = authn::TokenRequest {
        metadata: Some(meta::ObjectMeta {
            name: some("sa1"),
            namespace: some("ns1"),
            ..Default::default()
        }),
        spec: Some(authn::TokenRequestSpec {
            audiences: strings(&["a", "b"]),
            expiration_seconds: Some(0),
            bound_object_ref: Some(authn::BoundObjectReference::default()),
        }),
        status: Some(authn::TokenRequestStatus {
            token: some("not-a-real-token"),
            expiration_timestamp: time(JAN_2_2024),
        }),
    };
    check(
        &body("authentication.k8s.io/v1", "TokenRequest", &request),
        r#"{"kind":"TokenRequest","apiVersion":"authentication.k8s.io/v1",
            "metadata":{"name":"sa1","namespace":"ns1","creationTimestamp":null},
            "spec":{"audiences":["a","b"],"expirationSeconds":0,"boundObjectRef":{}},
            "status":{"token":"not-a-real-token","expirationTimestamp":"2024-01-02T03:04:05Z"}}"#,
    );
}

fn user_info() -> authn::UserInfo {
    authn::UserInfo {
        username: some("system:serviceaccount:ns1:sa1"),
        uid: some("u1"),
        groups: strings(&["system:serviceaccounts", "system:authenticated"]),
        extra: [
            (
                "authentication.kubernetes.io/pod-name".to_owned(),
                authn::ExtraValue {
                    items: strings(&["p1", "p2"]),
                },
            ),
            ("empty".to_owned(), authn::ExtraValue::default()),
        ]
        .into(),
    }
}

const USER_INFO_JSON: &str = r#"{"username":"system:serviceaccount:ns1:sa1","uid":"u1",
    "groups":["system:serviceaccounts","system:authenticated"],
    "extra":{"authentication.kubernetes.io/pod-name":["p1","p2"],"empty":null}}"#;

#[test]
fn token_review_prints_spec_and_user() {
    let review = authn::TokenReview {
        metadata: None,
        spec: Some(authn::TokenReviewSpec {
            token: some("not-a-real-token"),
            audiences: strings(&["api"]),
        }),
        status: Some(authn::TokenReviewStatus {
            authenticated: Some(true),
            user: Some(user_info()),
            audiences: strings(&["api"]),
            error: some("none"),
        }),
    };
    check(
        &body("authentication.k8s.io/v1", "TokenReview", &review),
        &format!(
            r#"{{"kind":"TokenReview","apiVersion":"authentication.k8s.io/v1","metadata":{{"creationTimestamp":null}},
                "spec":{{"token":"not-a-real-token","audiences":["api"]}},
                "status":{{"authenticated":true,"user":{USER_INFO_JSON},"audiences":["api"],"error":"none"}}}}"#
        ),
    );
}

#[test]
fn self_subject_review_prints_user_info() {
    let review = authn::SelfSubjectReview {
        metadata: None,
        status: Some(authn::SelfSubjectReviewStatus {
            user_info: Some(user_info()),
        }),
    };
    check(
        &body("authentication.k8s.io/v1", "SelfSubjectReview", &review),
        &format!(
            r#"{{"kind":"SelfSubjectReview","apiVersion":"authentication.k8s.io/v1","metadata":{{"creationTimestamp":null}},
                "status":{{"userInfo":{USER_INFO_JSON}}}}}"#
        ),
    );
}

#[test]
fn subject_access_review_prints_every_field() {
    let review = authz::SubjectAccessReview {
        metadata: None,
        spec: Some(authz::SubjectAccessReviewSpec {
            resource_attributes: Some(authz::ResourceAttributes {
                namespace: some("ns1"),
                verb: some("list"),
                group: some("apps"),
                version: some("v1"),
                resource: some("deployments"),
                subresource: some("scale"),
                name: some("web"),
                field_selector: Some(authz::FieldSelectorAttributes {
                    raw_selector: some("metadata.name=web"),
                    requirements: vec![meta::FieldSelectorRequirement {
                        key: some("metadata.name"),
                        operator: some("In"),
                        values: strings(&["web"]),
                    }],
                }),
                label_selector: Some(authz::LabelSelectorAttributes {
                    raw_selector: None,
                    requirements: vec![meta::LabelSelectorRequirement {
                        key: some("app"),
                        operator: some("Exists"),
                        values: Vec::new(),
                    }],
                }),
            }),
            non_resource_attributes: None,
            user: some("alice"),
            groups: strings(&["dev"]),
            extra: [(
                "scopes".to_owned(),
                authz::ExtraValue {
                    items: strings(&["s"]),
                },
            )]
            .into(),
            uid: some("u1"),
        }),
        status: Some(authz::SubjectAccessReviewStatus {
            allowed: Some(false),
            denied: Some(true),
            reason: some("no"),
            evaluation_error: some("partial"),
        }),
    };
    check(
        &body("authorization.k8s.io/v1", "SubjectAccessReview", &review),
        r#"{"kind":"SubjectAccessReview","apiVersion":"authorization.k8s.io/v1","metadata":{"creationTimestamp":null},
            "spec":{"resourceAttributes":{"namespace":"ns1","verb":"list","group":"apps","version":"v1",
                        "resource":"deployments","subresource":"scale","name":"web",
                        "fieldSelector":{"rawSelector":"metadata.name=web","requirements":[{"key":"metadata.name","operator":"In","values":["web"]}]},
                        "labelSelector":{"requirements":[{"key":"app","operator":"Exists"}]}},
                    "user":"alice","groups":["dev"],"extra":{"scopes":["s"]},"uid":"u1"},
            "status":{"allowed":false,"denied":true,"reason":"no","evaluationError":"partial"}}"#,
    );
}

#[test]
fn local_subject_access_review_prints_non_resource_attributes() {
    let review = authz::LocalSubjectAccessReview {
        metadata: Some(meta::ObjectMeta {
            namespace: some("ns1"),
            ..Default::default()
        }),
        spec: Some(authz::SubjectAccessReviewSpec {
            non_resource_attributes: Some(authz::NonResourceAttributes::default()),
            ..Default::default()
        }),
        status: Some(authz::SubjectAccessReviewStatus {
            allowed: Some(true),
            ..Default::default()
        }),
    };
    check(
        &body(
            "authorization.k8s.io/v1",
            "LocalSubjectAccessReview",
            &review,
        ),
        r#"{"kind":"LocalSubjectAccessReview","apiVersion":"authorization.k8s.io/v1",
            "metadata":{"namespace":"ns1","creationTimestamp":null},
            "spec":{"nonResourceAttributes":{}},"status":{"allowed":true}}"#,
    );
}

#[test]
fn self_subject_access_review_keeps_empty_attribute_pointers() {
    let review = authz::SelfSubjectAccessReview {
        metadata: None,
        spec: Some(authz::SelfSubjectAccessReviewSpec {
            resource_attributes: Some(authz::ResourceAttributes {
                field_selector: Some(authz::FieldSelectorAttributes::default()),
                ..Default::default()
            }),
            non_resource_attributes: Some(authz::NonResourceAttributes {
                path: some("/api"),
                verb: some("get"),
            }),
        }),
        status: None,
    };
    check(
        &body(
            "authorization.k8s.io/v1",
            "SelfSubjectAccessReview",
            &review,
        ),
        r#"{"kind":"SelfSubjectAccessReview","apiVersion":"authorization.k8s.io/v1","metadata":{"creationTimestamp":null},
            "spec":{"resourceAttributes":{"fieldSelector":{}},"nonResourceAttributes":{"path":"/api","verb":"get"}},
            "status":{"allowed":false}}"#,
    );
}

#[test]
fn self_subject_rules_review_prints_rules() {
    let review = authz::SelfSubjectRulesReview {
        metadata: None,
        spec: Some(authz::SelfSubjectRulesReviewSpec {
            namespace: some("ns1"),
        }),
        status: Some(authz::SubjectRulesReviewStatus {
            resource_rules: vec![
                authz::ResourceRule {
                    verbs: strings(&["get"]),
                    api_groups: strings(&[""]),
                    resources: strings(&["pods"]),
                    resource_names: strings(&["p"]),
                },
                authz::ResourceRule::default(),
            ],
            non_resource_rules: vec![
                authz::NonResourceRule {
                    verbs: strings(&["get"]),
                    non_resource_ur_ls: strings(&["/api"]),
                },
                authz::NonResourceRule::default(),
            ],
            incomplete: Some(true),
            evaluation_error: some("webhook"),
        }),
    };
    check(
        &body("authorization.k8s.io/v1", "SelfSubjectRulesReview", &review),
        r#"{"kind":"SelfSubjectRulesReview","apiVersion":"authorization.k8s.io/v1","metadata":{"creationTimestamp":null},
            "spec":{"namespace":"ns1"},
            "status":{"resourceRules":[{"verbs":["get"],"apiGroups":[""],"resources":["pods"],"resourceNames":["p"]},{"verbs":null}],
                      "nonResourceRules":[{"verbs":["get"],"nonResourceURLs":["/api"]},{"verbs":null}],
                      "incomplete":true,"evaluationError":"webhook"}}"#,
    );
}

#[test]
fn delete_options_print_every_set_pointer() {
    let options = meta::DeleteOptions {
        grace_period_seconds: Some(0),
        preconditions: Some(meta::Preconditions {
            uid: some("u1"),
            resource_version: some(""),
        }),
        orphan_dependents: Some(false),
        propagation_policy: some("Background"),
        dry_run: strings(&["All"]),
        ignore_store_read_error_with_cluster_breaking_potential: Some(false),
    };
    check(
        &body("meta.k8s.io/v1", "DeleteOptions", &options),
        r#"{"kind":"DeleteOptions","apiVersion":"meta.k8s.io/v1","gracePeriodSeconds":0,
            "preconditions":{"uid":"u1","resourceVersion":""},"orphanDependents":false,
            "propagationPolicy":"Background","dryRun":["All"],
            "ignoreStoreReadErrorWithClusterBreakingPotential":false}"#,
    );
    let background = meta::DeleteOptions {
        propagation_policy: some("Background"),
        ..Default::default()
    };
    check(
        &body("v1", "DeleteOptions", &background),
        r#"{"kind":"DeleteOptions","apiVersion":"v1","propagationPolicy":"Background"}"#,
    );
}

#[test]
fn a_missing_raw_field_decodes_as_an_empty_object() {
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: some("v1"),
            kind: some("ServiceAccount"),
        }),
        ..Default::default()
    };
    check(
        &[MAGIC.as_slice(), &unknown.encode_to_vec()].concat(),
        r#"{"kind":"ServiceAccount","apiVersion":"v1","metadata":{"creationTimestamp":null}}"#,
    );
}

#[test]
fn unknown_fields_in_the_object_are_skipped() {
    let mut raw = core::ServiceAccount {
        metadata: named("sa1"),
        ..Default::default()
    }
    .encode_to_vec();
    // Field 99, varint 1.
    raw.extend_from_slice(&[0x98, 0x06, 0x01]);
    check(
        &envelope("v1", "ServiceAccount", raw),
        r#"{"kind":"ServiceAccount","apiVersion":"v1","metadata":{"name":"sa1","creationTimestamp":null}}"#,
    );
}

// ---------------------------------------------------------------------------------------------
// Malformed input.

#[test]
fn malformed_bodies_are_refused_with_a_reason() {
    let service_account = |raw: Vec<u8>| envelope("v1", "ServiceAccount", raw);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (Vec::new(), "empty protobuf body"),
        (MAGIC.to_vec(), "empty protobuf body"),
        (
            br#"{"kind":"ServiceAccount"}"#.to_vec(),
            "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]",
        ),
        (
            b"k8s".to_vec(),
            "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]",
        ),
        (
            [MAGIC.as_slice(), &[0x0a, 0x05, 0x0a]].concat(),
            "cannot decode the protobuf envelope (runtime.Unknown): failed to decode Protobuf message: Unknown.type_meta: buffer underflow",
        ),
        (
            [MAGIC.as_slice(), &[0xff]].concat(),
            "cannot decode the protobuf envelope (runtime.Unknown): failed to decode Protobuf message: invalid varint",
        ),
        (
            [
                MAGIC.as_slice(),
                &Unknown::default().encode_to_vec(),
                &[0x1a, 0x00],
            ]
            .concat(),
            "the protobuf envelope does not name the object's apiVersion and kind",
        ),
        (
            envelope("", "ServiceAccount", Vec::new()),
            "the protobuf envelope does not name the object's apiVersion and kind",
        ),
        (
            envelope("v1", "", Vec::new()),
            "the protobuf envelope does not name the object's apiVersion and kind",
        ),
        (
            envelope("v1", "Pod", Vec::new()),
            r#"protobuf bodies are not supported for kind "Pod" in version "v1"; send JSON instead"#,
        ),
        (
            envelope("rbac.authorization.k8s.io/v1", "ServiceAccount", Vec::new()),
            r#"protobuf bodies are not supported for kind "ServiceAccount" in version "rbac.authorization.k8s.io/v1"; send JSON instead"#,
        ),
        (
            envelope("apps/v1", "DeleteOptions", Vec::new()),
            r#"protobuf bodies are not supported for kind "DeleteOptions" in version "apps/v1"; send JSON instead"#,
        ),
        (
            service_account(vec![0x0a, 0x05, 0x0a, 0x03]),
            "cannot decode ServiceAccount (v1) from protobuf: failed to decode Protobuf message: ServiceAccount.metadata: buffer underflow",
        ),
        (
            service_account(vec![0x0a, 0x03, 0x0a, 0x01, 0xff]),
            "cannot decode ServiceAccount (v1) from protobuf: failed to decode Protobuf message: ObjectMeta.name: ServiceAccount.metadata: invalid string value: data is not UTF-8 encoded",
        ),
        (
            service_account(vec![0x07]),
            "cannot decode ServiceAccount (v1) from protobuf: failed to decode Protobuf message: invalid wire type value: 7",
        ),
    ];
    for (body, expected) in cases {
        check_error(&body, expected);
    }
}

#[test]
fn errors_name_their_variant() {
    assert!(matches!(decode(b""), Err(ProtobufError::Empty)));
    assert!(matches!(decode(b"{}"), Err(ProtobufError::MissingMagic)));
    assert!(matches!(
        decode(&envelope("v1", "Pod", Vec::new())),
        Err(ProtobufError::UnsupportedKind { api_version, kind }) if api_version == "v1" && kind == "Pod"
    ));
}

/// The captured kubectl bodies, for the robustness tests.
const CAPTURED: &[&[u8]] = &[
    include_bytes!("testdata/create-serviceaccount.bin"),
    include_bytes!("testdata/create-namespace.bin"),
    include_bytes!("testdata/create-secret-generic.bin"),
    include_bytes!("testdata/create-secret-basic-auth.bin"),
    include_bytes!("testdata/create-configmap.bin"),
    include_bytes!("testdata/create-role.bin"),
    include_bytes!("testdata/create-clusterrole.bin"),
    include_bytes!("testdata/create-clusterrole-aggregation.bin"),
    include_bytes!("testdata/create-rolebinding.bin"),
    include_bytes!("testdata/create-clusterrolebinding.bin"),
    include_bytes!("testdata/create-token-duration-audience.bin"),
    include_bytes!("testdata/create-token.bin"),
    include_bytes!("testdata/create-token-bound-object.bin"),
    include_bytes!("testdata/auth-can-i-get-pods.bin"),
    include_bytes!("testdata/auth-can-i-get-healthz.bin"),
    include_bytes!("testdata/auth-can-i-list-secrets-status-all-namespaces.bin"),
    include_bytes!("testdata/auth-can-i-list.bin"),
    include_bytes!("testdata/auth-whoami.bin"),
];

/// A fixed-seed xorshift generator, so the random inputs are the same on every run.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// The kind a decoded value names, for comparing with the body it came from.
fn type_meta(value: &Value) -> (&str, &str) {
    (
        value["apiVersion"].as_str().unwrap_or_default(),
        value["kind"].as_str().unwrap_or_default(),
    )
}

#[test]
fn every_truncation_of_a_kubectl_body_is_an_error_or_the_same_kind() {
    for full in CAPTURED {
        let full_value = decode(full).expect("captured body decodes");
        let expected = type_meta(&full_value);
        for len in 0..full.len() {
            match decode(&full[..len]) {
                Ok(value) => assert_eq!(type_meta(&value), expected, "prefix of {len} bytes"),
                Err(error) if len <= MAGIC.len() => assert!(
                    matches!(error, ProtobufError::Empty | ProtobufError::MissingMagic),
                    "prefix of {len} bytes: {error}"
                ),
                Err(_) => {}
            }
        }
    }
}

#[test]
fn random_and_mutated_bodies_never_panic() {
    let supported: Vec<_> = supported_kinds().collect();
    let mut random = Random(0x9e37_79b9_7f4a_7c15);
    let mut decoded = 0;
    for round in 0..20_000 {
        let body = match round % 4 {
            // Random bytes that cannot start with the magic number.
            0 => {
                let len = random.below(64) + 1;
                let mut body = random.bytes(len);
                body[0] = b'{';
                assert!(matches!(decode(&body), Err(ProtobufError::MissingMagic)));
                continue;
            }
            // The magic number and random bytes.
            1 => {
                let len = random.below(200);
                [MAGIC.as_slice(), &random.bytes(len)].concat()
            }
            // A kubectl body with a few random bytes overwritten after the magic number.
            2 => {
                let mut body = CAPTURED[random.below(CAPTURED.len())].to_vec();
                for _ in 0..=random.below(4) {
                    let at = random.below(body.len() - MAGIC.len()) + MAGIC.len();
                    body[at] = random.next() as u8;
                }
                body
            }
            // A well-formed envelope of a supported kind whose object bytes are random.
            _ => {
                let (api_version, kind) = supported[random.below(supported.len())];
                let len = random.below(100);
                envelope(api_version, kind, random.bytes(len))
            }
        };
        if let Ok(value) = decode(&body) {
            decoded += 1;
            assert!(
                supported.contains(&type_meta(&value)),
                "decoded an unsupported kind: {value}"
            );
        }
    }
    // Mutations that only touch string contents or skipped fields leave a decodable body.
    assert!(decoded > 0, "no random body decoded");
}

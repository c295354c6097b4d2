//! The event's shape, the level filter, and the whole log through its writer thread.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use http::{HeaderValue, Method, StatusCode, Uri};
use kargo_api::request_info::RequestInfo;
use kargo_api::resources::{ROLEBINDINGS, SECRETS, SERVICEACCOUNTS};
use kargo_auth::rbac::UserInfo;
use kargo_registry::touched::{Touched, WriteAction};
use serde_json::{Value, json};

use super::event::{Event, timestamp};
use super::*;
use crate::observe::{Refusal, RequestId};

/// 2026-12-07T11:21:35.123456Z.
fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_micros(1_796_642_495_123_456)
}

/// The event of one request, as JSON.
fn audit_event(
    method: Method,
    uri: &str,
    user: Option<&UserInfo>,
    status: u16,
    notes: Option<&Notes>,
) -> (Value, RequestId) {
    // As an HTTP/2 request arrives: an absolute URI.
    let uri: Uri = format!("https://127.0.0.1:8443{uri}").parse().unwrap();
    let watch = uri.query().is_some_and(|q| q.contains("watch=true"));
    let info = RequestInfo::parse(method.as_str(), uri.path(), watch);
    let agent = HeaderValue::from_static("kubectl/v1.33.0 (linux/amd64)");
    let id = RequestId::next();
    let record = RequestRecord {
        id,
        user,
        info: &info,
        method: &method,
        uri: &uri,
        user_agent: Some(&agent),
        status: StatusCode::from_u16(status).unwrap(),
        duration: Duration::from_micros(2_500),
        source: Some(SocketAddr::from(([192, 0, 2, 7], 50_000))),
        notes,
    };
    let line = serde_json::to_string(&Event::new(&record, now())).unwrap();
    (serde_json::from_str(&line).unwrap(), id)
}

fn legacy_token_user() -> UserInfo {
    UserInfo {
        legacy_token_secret: Some("ci-token".into()),
        ..UserInfo::service_account("p", "ci", "uid-1")
    }
}

#[test]
fn a_kubernetes_write_is_kube_apiservers_event_with_the_legacy_token_and_the_decision() {
    let notes = Notes {
        authenticated: Some("system:serviceaccount:p:ci".into()),
        decision: Some(Decision {
            allowed: true,
            reason: r#"RBAC: allowed by RoleBinding "w/p" of Role "w" to ServiceAccount "ci/p""#
                .into(),
        }),
        ..Notes::default()
    };
    let user = legacy_token_user();
    let (event, id) = audit_event(
        Method::POST,
        "/api/v1/namespaces/p/serviceaccounts?fieldManager=kubectl-create",
        Some(&user),
        201,
        Some(&notes),
    );
    assert_eq!(
        event,
        json!({
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": "Metadata",
            "auditID": id.to_string(),
            "stage": "ResponseComplete",
            "requestURI": "/api/v1/namespaces/p/serviceaccounts?fieldManager=kubectl-create",
            "verb": "create",
            "user": {
                "username": "system:serviceaccount:p:ci",
                "uid": "uid-1",
                "groups": ["system:serviceaccounts", "system:serviceaccounts:p", "system:authenticated"]
            },
            "sourceIPs": ["192.0.2.7"],
            "userAgent": "kubectl/v1.33.0 (linux/amd64)",
            "objectRef": {"resource": "serviceaccounts", "namespace": "p", "apiVersion": "v1"},
            "responseStatus": {"metadata": {}, "code": 201},
            "requestReceivedTimestamp": "2026-12-07T11:21:35.120956Z",
            "stageTimestamp": "2026-12-07T11:21:35.123456Z",
            "annotations": {
                "authentication.k8s.io/legacy-token": "system:serviceaccount:p:ci",
                "authentication.k8s.io/legacy-token-manual-secret": "ci-token",
                "authorization.k8s.io/decision": "allow",
                "authorization.k8s.io/reason": r#"RBAC: allowed by RoleBinding "w/p" of Role "w" to ServiceAccount "ci/p""#
            }
        })
    );
    // The fields in kube-apiserver's order.
    let keys: Vec<&str> = event
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "kind",
            "apiVersion",
            "level",
            "auditID",
            "stage",
            "requestURI",
            "verb",
            "user",
            "sourceIPs",
            "userAgent",
            "objectRef",
            "responseStatus",
            "requestReceivedTimestamp",
            "stageTimestamp",
            "annotations"
        ]
    );
}

#[test]
fn a_bound_token_user_keeps_its_credential_id_in_extra_and_a_watch_is_response_started() {
    let mut user = UserInfo::service_account("p", "ci", "uid-1");
    user.extra.insert(
        "authentication.kubernetes.io/credential-id".into(),
        vec!["JTI=abc".into()],
    );
    let (event, _) = audit_event(
        Method::GET,
        "/api/v1/namespaces/p/secrets?watch=true",
        Some(&user),
        200,
        None,
    );
    assert_eq!(event["verb"], "watch");
    assert_eq!(event["stage"], "ResponseStarted");
    assert_eq!(
        event["user"]["extra"],
        json!({"authentication.kubernetes.io/credential-id": ["JTI=abc"]})
    );
    assert!(event.get("annotations").is_none(), "{event}");
}

#[test]
fn an_authentication_failure_has_no_user_and_says_why() {
    let notes = Notes {
        authentication_failure: Some("Token has been invalidated".into()),
        refusal: Some(Refusal {
            reason: "Unauthorized",
            message: "Unauthorized".into(),
        }),
        ..Notes::default()
    };
    let (event, _) = audit_event(Method::GET, "/api/v1/namespaces", None, 401, Some(&notes));
    assert_eq!(event["user"], json!({}));
    assert_eq!(
        event["responseStatus"],
        json!({"metadata": {}, "status": "Failure", "message": "Unauthorized", "reason": "Unauthorized", "code": 401})
    );
    assert_eq!(
        event["annotations"],
        json!({"audit.kargo.akuity.io/authentication-failure": "Token has been invalidated"})
    );
}

#[test]
fn a_refusal_that_may_quote_the_body_keeps_its_reason_but_not_its_message() {
    let user = UserInfo::new("admin", ["system:masters"]);
    let refusal = |reason, message: &str| Notes {
        refusal: Some(Refusal {
            reason,
            message: message.into(),
        }),
        ..Notes::default()
    };
    let invalid = refusal("Invalid", "Secret \"s\" is invalid: data[x]: c2VjcmV0");
    let (event, _) = audit_event(
        Method::POST,
        "/api/v1/namespaces/p/secrets",
        Some(&user),
        422,
        Some(&invalid),
    );
    assert_eq!(
        event["responseStatus"],
        json!({"metadata": {}, "status": "Failure", "reason": "Invalid", "code": 422})
    );
    let forbidden = refusal(
        "Forbidden",
        "secrets is forbidden: User \"u\" cannot create",
    );
    let (event, _) = audit_event(
        Method::POST,
        "/api/v1/namespaces/p/secrets",
        Some(&user),
        403,
        Some(&forbidden),
    );
    assert_eq!(
        event["responseStatus"]["message"],
        "secrets is forbidden: User \"u\" cannot create"
    );
    // A Kargo error has no reason of its own: the code's.
    let kargo = refusal("", "request body too large");
    let (event, _) = audit_event(
        Method::POST,
        "/v1beta1/projects/p/roles",
        Some(&user),
        413,
        Some(&kargo),
    );
    assert_eq!(
        event["responseStatus"],
        json!({"metadata": {}, "status": "Failure", "reason": "RequestEntityTooLarge", "code": 413})
    );
}

fn touched(
    rt: &'static kargo_api::resources::ResourceType,
    name: &str,
    action: WriteAction,
) -> Touched {
    Touched {
        rt,
        namespace: Some("p".into()),
        name: name.into(),
        action,
    }
}

#[test]
fn kargo_actions_carry_their_verb_their_object_and_every_object_written() {
    let user = UserInfo::new("admin", ["system:masters"]);
    let grant = Notes {
        touched: vec![touched(&ROLEBINDINGS, "deployer", WriteAction::Updated)],
        ..Notes::default()
    };
    let (event, _) = audit_event(
        Method::POST,
        "/v1beta1/projects/p/roles/grants",
        Some(&user),
        200,
        Some(&grant),
    );
    assert_eq!(event["verb"], "grant");
    assert_eq!(
        event["objectRef"],
        json!({"resource": "roles", "namespace": "p", "name": "deployer",
               "apiGroup": "rbac.kargo.akuity.io", "apiVersion": "v1alpha1"})
    );
    assert_eq!(
        event["annotations"]["audit.kargo.akuity.io/objects"],
        "update rolebindings.rbac.authorization.k8s.io p/deployer"
    );

    let delete = Notes {
        touched: vec![
            touched(&ROLEBINDINGS, "deployer", WriteAction::Updated),
            touched(&SERVICEACCOUNTS, "ci", WriteAction::Deleted),
            touched(&SECRETS, "ci-token", WriteAction::Collected),
        ],
        ..Notes::default()
    };
    let (event, _) = audit_event(
        Method::DELETE,
        "/v1beta1/projects/p/service-accounts/ci",
        Some(&user),
        204,
        Some(&delete),
    );
    assert_eq!(event["verb"], "delete-serviceaccount");
    assert_eq!(
        event["objectRef"],
        json!({"resource": "serviceaccounts", "namespace": "p", "name": "ci", "apiVersion": "v1"})
    );
    assert_eq!(
        event["annotations"]["audit.kargo.akuity.io/objects"],
        "update rolebindings.rbac.authorization.k8s.io p/deployer, delete serviceaccounts p/ci, \
         collect secrets p/ci-token"
    );

    let token = Notes {
        touched: vec![touched(&SECRETS, "ci-token", WriteAction::Created)],
        ..Notes::default()
    };
    let (event, _) = audit_event(
        Method::POST,
        "/v1beta1/system/service-accounts/kargo-admin/tokens",
        Some(&user),
        201,
        Some(&token),
    );
    assert_eq!(event["verb"], "create-token");
    assert_eq!(
        event["objectRef"],
        json!({"resource": "serviceaccounts", "namespace": "kargo", "name": "kargo-admin",
               "apiVersion": "v1", "subresource": "tokens"})
    );

    // Not a Kargo route: the lowercase method, no object.
    let (event, _) = audit_event(Method::POST, "/v1beta1/nowhere", Some(&user), 404, None);
    assert_eq!(event["verb"], "post");
    assert!(event.get("objectRef").is_none());
}

#[test]
fn timestamps_are_utc_with_microseconds() {
    assert_eq!(timestamp(now()), "2026-12-07T11:21:35.123456Z");
    assert_eq!(
        timestamp(SystemTime::UNIX_EPOCH),
        "1970-01-01T00:00:00.000000Z"
    );
}

/// Reads the log until it has `n` lines (the writer flushes within a second).
fn lines(path: &std::path::Path, n: usize) -> Vec<Value> {
    for _ in 0..300 {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if lines.len() >= n {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("the log never had {n} lines");
}

#[test]
fn the_metadata_level_writes_changes_and_authentication_failures_and_the_request_level_everything()
{
    let dir = tempfile::tempdir().unwrap();
    let user = UserInfo::new("admin", ["system:masters"]);
    for (level, expected) in [
        (AuditLevel::Metadata, vec!["create", "list"]),
        (AuditLevel::Request, vec!["get", "create", "list"]),
    ] {
        let path = dir.path().join(format!("{level:?}/audit.log"));
        let audit = Audit::start(&AuditConfig {
            path: path.clone(),
            level,
            max_size_mb: 0,
            max_backups: 0,
        })
        .unwrap();
        let send = |method: Method, uri: &str, user: Option<&UserInfo>, status: u16| {
            let uri: Uri = uri.parse().unwrap();
            let info = RequestInfo::parse(method.as_str(), uri.path(), false);
            audit.request(&RequestRecord {
                id: RequestId::next(),
                user,
                info: &info,
                method: &method,
                uri: &uri,
                user_agent: None,
                status: StatusCode::from_u16(status).unwrap(),
                duration: Duration::ZERO,
                source: None,
                notes: None,
            });
        };
        send(Method::GET, "/api/v1/namespaces/p", Some(&user), 200);
        send(Method::POST, "/api/v1/namespaces", Some(&user), 201);
        send(Method::GET, "/api/v1/namespaces", None, 401);
        let written = lines(&path, expected.len());
        let verbs: Vec<&str> = written
            .iter()
            .map(|e| e["verb"].as_str().unwrap())
            .collect();
        assert_eq!(verbs, expected);
        assert_eq!(
            audit.stats(),
            AuditStats {
                events: expected.len() as u64,
                dropped: 0,
                write_errors: 0
            }
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o700);
    }
}

#[test]
fn a_log_that_cannot_be_opened_is_an_error_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let err = Audit::start(&AuditConfig {
        path: dir.path().to_owned(),
        level: AuditLevel::Metadata,
        max_size_mb: 0,
        max_backups: 0,
    });
    assert!(err.is_err());
}

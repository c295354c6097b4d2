//! Resources that are not stored: the review APIs (`SelfSubjectReview`, `TokenReview`,
//! `SelfSubjectAccessReview`, `SubjectAccessReview`, `LocalSubjectAccessReview`,
//! `SelfSubjectRulesReview`), `TokenRequest` (`serviceaccounts/token`), and issuer discovery.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::Response;
use http::{HeaderValue, StatusCode};
use kargo_api::field::{BadValue, FieldError};
use kargo_api::resources::{ResourceType, SECRETS, SERVICEACCOUNTS, TOKENREVIEWS};
use serde_json::{Value, json};

use super::{AppState, json_response};
use crate::StatusResponse;
use kargo_api::request_info::{RequestInfo, Verb};
use kargo_auth::rbac::{Attributes, Decision, UserInfo};
use kargo_auth::{jwt, mint};
use kargo_registry::Target;
use kargo_registry::object::{Meta, now_rfc3339};
use kargo_registry::status::{Result, Status};

/// Answers a POST to a virtual resource (or to `serviceaccounts/<name>/token`).
pub(crate) async fn create(
    app: &AppState,
    user: &UserInfo,
    rt: &'static ResourceType,
    info: &RequestInfo<'_>,
    body: Value,
) -> Result<Response> {
    if info.verb != Verb::Create {
        return Err(Status::method_not_allowed());
    }
    let created = |v: Value| Ok(json_response(StatusCode::CREATED, &v, &[]));
    if info.subresource == "token" {
        return created(token_request(app, info.namespace, info.name, body).await?);
    }
    match rt.kind {
        "SelfSubjectReview" => created(json!({
            "kind": "SelfSubjectReview",
            "apiVersion": rt.api_version(),
            "metadata": {"creationTimestamp": now_rfc3339()},
            "status": {"userInfo": user_info_json(user)},
        })),
        "TokenReview" => created(token_review(app, body)?),
        "SelfSubjectAccessReview" => {
            let decision = access(app, user, &body, None)?;
            created(with_decision(rt, body, &decision))
        }
        "SubjectAccessReview" | "LocalSubjectAccessReview" => {
            let subject = subject_from_spec(&body)?;
            let namespace = (rt.kind == "LocalSubjectAccessReview").then_some(info.namespace);
            let decision = access(app, &subject, &body, namespace)?;
            created(with_decision(rt, body, &decision))
        }
        "SelfSubjectRulesReview" => created(rules_review(app, user, rt, body)?),
        _ => Err(Status::no_route()),
    }
}

/// A user as the review APIs write it.
pub(crate) fn user_info_json(user: &UserInfo) -> Value {
    let mut v = json!({"username": user.username});
    if !user.uid.is_empty() {
        v["uid"] = user.uid.clone().into();
    }
    v["groups"] = json!(user.groups);
    if !user.extra.is_empty() {
        v["extra"] = json!(user.extra);
    }
    v
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// The attributes of an access review's spec.
fn review_attributes(body: &Value, namespace: Option<&str>) -> Result<Attributes> {
    let spec = body.get("spec").cloned().unwrap_or(Value::Null);
    let resource = spec.get("resourceAttributes").filter(|v| !v.is_null());
    let non_resource = spec.get("nonResourceAttributes").filter(|v| !v.is_null());
    match (resource, non_resource) {
        (Some(r), None) => {
            let ns = str_at(r, "/namespace");
            if let Some(url_ns) = namespace
                && ns != url_ns
            {
                return Err(Status::invalid(
                    &kargo_api::resources::LOCALSUBJECTACCESSREVIEWS,
                    "",
                    &[FieldError::invalid(
                        "spec.resourceAttributes.namespace",
                        BadValue::string(ns),
                        "must match metadata.namespace",
                    )],
                ));
            }
            Ok(Attributes::resource(
                str_at(r, "/verb"),
                ns,
                str_at(r, "/group"),
                str_at(r, "/resource"),
            )
            .with_name(str_at(r, "/name"))
            .with_subresource(str_at(r, "/subresource"))
            .into())
        }
        (None, Some(n)) => Ok(Attributes::non_resource(
            str_at(n, "/verb"),
            str_at(n, "/path"),
        )),
        _ => Err(Status::bad_request(
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        )),
    }
}

fn subject_from_spec(body: &Value) -> Result<UserInfo> {
    let spec = body.get("spec").cloned().unwrap_or(Value::Null);
    let username = str_at(&spec, "/user").to_owned();
    let groups = strings(spec.get("groups"));
    if username.is_empty() && groups.is_empty() {
        return Err(Status::bad_request(
            "at least one of user or group must be specified",
        ));
    }
    let extra: BTreeMap<String, Vec<String>> = spec
        .get("extra")
        .and_then(|e| serde_json::from_value(e.clone()).ok())
        .unwrap_or_default();
    Ok(UserInfo {
        username,
        uid: str_at(&spec, "/uid").to_owned(),
        groups,
        extra,
        claims: BTreeMap::new(),
        legacy_token_secret: None,
    })
}

fn access(
    app: &AppState,
    subject: &UserInfo,
    body: &Value,
    namespace: Option<&str>,
) -> Result<Decision> {
    let attrs = review_attributes(body, namespace)?;
    Ok(app.authz.decide(subject, &attrs))
}

fn with_decision(rt: &ResourceType, mut body: Value, decision: &Decision) -> Value {
    let mut status = json!({"allowed": decision.is_allowed()});
    if !decision.reason().is_empty() {
        status["reason"] = decision.reason().into();
    }
    if !decision.errors().is_empty() {
        status["evaluationError"] = decision.errors().join(", ").into();
    }
    if let Some(map) = body.as_object_mut() {
        map.insert("kind".into(), rt.kind.into());
        map.insert("apiVersion".into(), rt.api_version().into());
        let meta = map.entry("metadata").or_insert_with(|| json!({}));
        if let Some(m) = meta.as_object_mut() {
            m.insert("creationTimestamp".into(), Value::Null);
        }
        map.insert("status".into(), status);
    }
    body
}

fn rules_review(
    app: &AppState,
    user: &UserInfo,
    rt: &ResourceType,
    mut body: Value,
) -> Result<Value> {
    let namespace = str_at(&body, "/spec/namespace").to_owned();
    let (rules, errors) = if user.is_system_master() {
        (kargo_auth::rbac::full_authority(), Vec::new())
    } else {
        app.authz.view().policy().rules_for(user, &namespace)
    };
    let mut resource_rules = Vec::new();
    let mut non_resource_rules = Vec::new();
    for rule in rules {
        if rule
            .non_resource_urls
            .as_ref()
            .is_some_and(|u| !u.is_empty())
        {
            non_resource_rules
                .push(json!({"verbs": rule.verbs, "nonResourceURLs": rule.non_resource_urls}));
        } else {
            let mut r = json!({"verbs": rule.verbs});
            if let Some(g) = rule.api_groups {
                r["apiGroups"] = json!(g);
            }
            if let Some(res) = rule.resources {
                r["resources"] = json!(res);
            }
            if let Some(n) = rule.resource_names.filter(|n| !n.is_empty()) {
                r["resourceNames"] = json!(n);
            }
            resource_rules.push(r);
        }
    }
    let mut status = json!({
        "resourceRules": resource_rules,
        "nonResourceRules": non_resource_rules,
        "incomplete": !errors.is_empty(),
    });
    if !errors.is_empty() {
        status["evaluationError"] = errors.join(", ").into();
    }
    if let Some(map) = body.as_object_mut() {
        map.insert("kind".into(), rt.kind.into());
        map.insert("apiVersion".into(), rt.api_version().into());
        map.insert("status".into(), status);
    }
    Ok(body)
}

fn token_review(app: &AppState, mut body: Value) -> Result<Value> {
    let token = str_at(&body, "/spec/token").to_owned();
    if token.is_empty() {
        return Err(Status::bad_request(
            "token is required for TokenReview in authentication",
        ));
    }
    let audiences = strings(body.pointer("/spec/audiences"));
    let wanted = (!audiences.is_empty()).then_some(audiences.as_slice());
    let status = if app.authn.admin().verify_token(&token) {
        json!({
            "authenticated": true,
            "user": user_info_json(&kargo_auth::authn::Authenticator::admin_user()),
            "audiences": wanted.map(<[String]>::to_vec).unwrap_or_else(|| app.authn.tokens().api_audiences().to_vec()),
        })
    } else {
        match app.authn.tokens().authenticate(&token, wanted) {
            Ok(ok) => json!({
                "authenticated": true,
                "user": user_info_json(&ok.user),
                "audiences": ok.audiences,
            }),
            Err(why) => json!({"user": {}, "error": why}),
        }
    };
    if let Some(map) = body.as_object_mut() {
        map.insert("kind".into(), "TokenReview".into());
        map.insert("apiVersion".into(), TOKENREVIEWS.api_version().into());
        let meta = map.entry("metadata").or_insert_with(|| json!({}));
        if let Some(m) = meta.as_object_mut() {
            m.insert("creationTimestamp".into(), Value::Null);
        }
        map.insert("status".into(), status);
    }
    Ok(body)
}

const MIN_EXPIRATION: i64 = 600;
const MAX_EXPIRATION: i64 = 1 << 32;
const DEFAULT_EXPIRATION: i64 = 3600;

fn token_request_invalid(name: &str, error: FieldError) -> Status {
    Status::invalid(&TOKEN_REQUEST, name, &[error])
}

/// The resource type a TokenRequest is reported as in errors.
static TOKEN_REQUEST: ResourceType = ResourceType {
    group: "authentication.k8s.io",
    version: "v1",
    kind: "TokenRequest",
    plural: "tokenrequests",
    singular: "tokenrequest",
    short_names: &[],
    namespaced: true,
    verbs: &["create"],
    subresources: &[],
    name_rule: kargo_api::resources::NameRule::Subdomain,
    schemaless: false,
    storage: kargo_api::resources::Storage::Virtual,
    categories: &[],
};

async fn token_request(
    app: &AppState,
    namespace: &str,
    account: &str,
    mut body: Value,
) -> Result<Value> {
    let body_name = body.name().to_owned();
    if !body_name.is_empty() && body_name != account {
        return Err(token_request_invalid(
            &body_name,
            FieldError::invalid(
                "metadata.name",
                BadValue::string(&body_name),
                "must match the service account name if specified",
            ),
        ));
    }
    let expiration = body
        .pointer("/spec/expirationSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(DEFAULT_EXPIRATION);
    if expiration < MIN_EXPIRATION {
        return Err(token_request_invalid(
            &body_name,
            FieldError::invalid(
                "spec.expirationSeconds",
                BadValue::Int(expiration),
                "may not specify a duration less than 10 minutes",
            ),
        ));
    }
    if expiration > MAX_EXPIRATION {
        return Err(token_request_invalid(
            &body_name,
            FieldError::invalid(
                "spec.expirationSeconds",
                BadValue::Int(expiration),
                "may not specify a duration larger than 2^32 seconds",
            ),
        ));
    }
    let sa = app
        .registry
        .get(Target::new(&SERVICEACCOUNTS, Some(namespace), account))
        .await?;
    let mut audiences = strings(body.pointer("/spec/audiences"));
    if audiences.is_empty() {
        audiences = app.authn.tokens().api_audiences().to_vec();
    }
    let bound = body
        .pointer("/spec/boundObjectRef")
        .filter(|v| !v.is_null())
        .cloned();
    let mut secret = None;
    if let Some(bound) = &bound {
        let kind = str_at(bound, "/kind");
        let api_version = str_at(bound, "/apiVersion");
        let name = str_at(bound, "/name");
        match (kind, api_version) {
            ("Secret", "v1") => {
                let obj = app
                    .registry
                    .get(Target::new(&SECRETS, Some(namespace), name))
                    .await?;
                let uid = str_at(bound, "/uid");
                if !uid.is_empty() && uid != obj.uid() {
                    return Err(Status::conflict(
                        &SECRETS,
                        name,
                        &format!(
                            "the UID in the bound object reference ({uid}) does not match the UID in record. The object might have been deleted and then recreated"
                        ),
                    ));
                }
                secret = Some((name.to_owned(), obj.uid().to_owned()));
            }
            ("Pod", "v1") | ("Node", "v1") => {
                return Err(Status::not_found(
                    if kind == "Pod" { &PODS } else { &NODES },
                    name,
                ));
            }
            _ => {
                return Err(Status::bad_request(format!(
                    "cannot bind token to object of type {}, Kind={kind}",
                    if api_version.is_empty() {
                        "/"
                    } else {
                        api_version
                    }
                )));
            }
        }
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let jti = uuid::Uuid::new_v4().to_string();
    let token = mint::bound_token(
        app.authz.view(),
        &jwt::BoundRequest {
            issuer: app.authn.tokens().issuer(),
            namespace,
            account,
            uid: sa.uid(),
            audiences: &audiences,
            now,
            lifetime: expiration,
            jti: &jti,
            secret: secret.as_ref().map(|(n, u)| (n.as_str(), u.as_str())),
        },
    )?;
    let expires = k8s_openapi::jiff::Timestamp::from_second(now + expiration)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default();
    let mut spec = json!({"audiences": audiences, "expirationSeconds": expiration});
    spec["boundObjectRef"] = bound.unwrap_or(Value::Null);
    if let Some(map) = body.as_object_mut() {
        map.insert("kind".into(), "TokenRequest".into());
        map.insert("apiVersion".into(), "authentication.k8s.io/v1".into());
        map.insert(
            "metadata".into(),
            json!({"name": account, "namespace": namespace, "creationTimestamp": now_rfc3339()}),
        );
        map.insert("spec".into(), spec);
        map.insert(
            "status".into(),
            json!({"token": token, "expirationTimestamp": expires}),
        );
    }
    Ok(body)
}

macro_rules! unserved {
    ($name:ident, $kind:literal, $plural:literal) => {
        static $name: ResourceType = ResourceType {
            group: "",
            version: "v1",
            kind: $kind,
            plural: $plural,
            singular: "",
            short_names: &[],
            namespaced: true,
            verbs: &[],
            subresources: &[],
            name_rule: kargo_api::resources::NameRule::Subdomain,
            schemaless: false,
            storage: kargo_api::resources::Storage::Virtual,
            categories: &[],
        };
    };
}
unserved!(PODS, "Pod", "pods");
unserved!(NODES, "Node", "nodes");

fn discovery_response(body: Value, content_type: &'static str) -> Response {
    let mut response = json_response(StatusCode::OK, &body, &[]);
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    headers.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    response
}

/// `/.well-known/openid-configuration` (served when the issuer is an https URL).
pub(crate) async fn openid_configuration(State(app): State<AppState>) -> Response {
    let issuer = app.authn.tokens().issuer().to_owned();
    if !issuer.starts_with("https://") {
        return Status::no_route().into_response();
    }
    discovery_response(
        json!({
            "issuer": issuer,
            "jwks_uri": format!("{}/openid/v1/jwks", issuer.trim_end_matches('/')),
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }),
        "application/json",
    )
}

/// `/openid/v1/jwks`.
pub(crate) async fn jwks(State(app): State<AppState>) -> Response {
    discovery_response(app.authz.view().keys().jwks(), "application/jwk-set+json")
}

//! The Kargo REST API calls the CLI makes, as values: a method, a path under `/v1beta1` and a
//! JSON body. Nothing here sends anything; [`crate::client::Client::send`] does. The paths come
//! from `kargo_api::kargo::paths`, shared with the server; every name is percent-encoded here
//! before it goes into one.

use kargo_api::expiry::Lifetime;
use kargo_api::kargo::{CreateTokenRequest, GrantRequest, Role, RotateTokenRequest, paths};
use kargo_api::resources::{KARGO_API_VERSION, PROJECTS};
use kargo_api::token_lifecycle::Grace;
use serde_json::{Value, json};

/// An HTTP method the CLI uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET
    Get,
    /// POST
    Post,
    /// PUT
    Put,
    /// DELETE
    Delete,
}

/// One API call.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The path and query, e.g. `/v1beta1/projects/p/service-accounts`.
    pub path: String,
    /// The JSON body, if any.
    pub body: Option<Value>,
}

/// Where ServiceAccounts, tokens and roles live: a project, or the system level (`kargo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// A project's namespace.
    Project(String),
    /// The system-level namespace.
    System,
}

impl Scope {
    /// The encoded project, or `None` for the system level (as `paths` takes it).
    fn encoded(&self) -> Option<String> {
        match self {
            Scope::Project(p) => Some(segment(p)),
            Scope::System => None,
        }
    }
}

/// Percent-encodes a path segment (or query value): everything but RFC 3986's unreserved
/// characters, so a name can never change the route.
pub fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn get(path: String) -> Request {
    Request {
        method: Method::Get,
        path,
        body: None,
    }
}

fn post(path: String, body: Value) -> Request {
    Request {
        method: Method::Post,
        path,
        body: Some(body),
    }
}

fn delete(path: String) -> Request {
    Request {
        method: Method::Delete,
        path,
        body: None,
    }
}

fn to_json(body: &impl serde::Serialize) -> Value {
    serde_json::to_value(body).unwrap_or_default()
}

/// `GET /version`: the server's build, as kube-apiserver's `version.Info` (readable without
/// logging in).
pub fn server_version() -> Request {
    get("/version".to_owned())
}

/// `GET /v1beta1/system/public-server-config`
pub fn public_server_config() -> Request {
    get("/v1beta1/system/public-server-config".to_owned())
}

/// `POST /v1beta1/login` (the password goes in the `Authorization` header).
pub fn login() -> Request {
    Request {
        method: Method::Post,
        path: "/v1beta1/login".to_owned(),
        body: None,
    }
}

/// `POST /v1beta1/logout` (ends the session of the admin token that sends it).
pub fn logout() -> Request {
    Request {
        method: Method::Post,
        path: "/v1beta1/logout".to_owned(),
        body: None,
    }
}

/// `POST /apis/authentication.k8s.io/v1/selfsubjectreviews`: who the server says the token's
/// holder is (the Kubernetes API's `kubectl auth whoami`).
pub fn self_subject_review() -> Request {
    post(
        "/apis/authentication.k8s.io/v1/selfsubjectreviews".to_owned(),
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}),
    )
}

/// `GET /v1beta1/projects`
pub fn list_projects() -> Request {
    get(paths::projects())
}

/// `GET /v1beta1/projects/{p}`
pub fn get_project(name: &str) -> Request {
    get(paths::project(&segment(name)))
}

/// `POST /v1beta1/projects` with a `Project`.
pub fn create_project(name: &str) -> Request {
    post(
        paths::projects(),
        json!({
            "apiVersion": KARGO_API_VERSION,
            "kind": PROJECTS.kind,
            "metadata": {"name": name},
        }),
    )
}

/// `DELETE /v1beta1/projects/{p}`
pub fn delete_project(name: &str) -> Request {
    delete(paths::project(&segment(name)))
}

/// `GET .../service-accounts`
pub fn list_service_accounts(scope: &Scope) -> Request {
    get(paths::service_accounts(scope.encoded().as_deref()))
}

/// `GET .../service-accounts/{sa}`
pub fn get_service_account(scope: &Scope, name: &str) -> Request {
    get(paths::service_account(
        scope.encoded().as_deref(),
        &segment(name),
    ))
}

/// `POST /v1beta1/projects/{p}/service-accounts` with a ServiceAccount.
pub fn create_service_account(project: &str, name: &str) -> Request {
    create_service_account_with(project, json!({"name": name, "namespace": project}))
}

/// `POST /v1beta1/projects/{p}/service-accounts` with a ServiceAccount of this `metadata`
/// (name, namespace, labels and annotations: what `kargo apply` sends).
pub fn create_service_account_with(project: &str, metadata: Value) -> Request {
    post(
        paths::service_accounts(Some(&segment(project))),
        json!({
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": metadata,
        }),
    )
}

/// `POST /v1beta1/projects` with a whole `Project` manifest (`kargo apply`).
pub fn create_project_from(manifest: &Value) -> Request {
    post(paths::projects(), manifest.clone())
}

/// `DELETE /v1beta1/projects/{p}/service-accounts/{sa}`
pub fn delete_service_account(project: &str, name: &str) -> Request {
    delete(paths::service_account(
        Some(&segment(project)),
        &segment(name),
    ))
}

/// `POST .../service-accounts/{sa}/tokens` with `{"name": token}` (and `"expiresIn"`,
/// `"description"` if given).
pub fn create_token(
    scope: &Scope,
    service_account: &str,
    name: &str,
    expires_in: Option<Lifetime>,
    description: Option<&str>,
) -> Request {
    post(
        paths::new_token(scope.encoded().as_deref(), &segment(service_account)),
        new_token(name, expires_in, description),
    )
}

/// `POST .../service-account-tokens/{t}/disable` (`disabled`) or `.../enable`.
pub fn set_token_disabled(scope: &Scope, name: &str, disabled: bool) -> Request {
    set_disabled(
        &paths::token(scope.encoded().as_deref(), &segment(name)),
        disabled,
    )
}

/// `POST .../api-tokens/{t}/disable` (`disabled`) or `.../enable`.
pub fn set_api_token_disabled(scope: &Scope, name: &str, disabled: bool) -> Request {
    set_disabled(
        &paths::api_token(scope.encoded().as_deref(), &segment(name)),
        disabled,
    )
}

/// `POST .../service-account-tokens/{t}/rotate` with `{"grace": "24h"}` (none: `{}`).
pub fn rotate_token(scope: &Scope, name: &str, grace: Option<Grace>) -> Request {
    rotate(
        &paths::token(scope.encoded().as_deref(), &segment(name)),
        grace,
    )
}

/// `POST .../api-tokens/{t}/rotate` with `{"grace": "24h"}` (none: `{}`).
pub fn rotate_api_token(scope: &Scope, name: &str, grace: Option<Grace>) -> Request {
    rotate(
        &paths::api_token(scope.encoded().as_deref(), &segment(name)),
        grace,
    )
}

/// `POST {token}/disable` or `{token}/enable`, `token` the path of a token of either kind.
fn set_disabled(token: &str, disabled: bool) -> Request {
    let action = if disabled { "disable" } else { "enable" };
    post(paths::token_action(token, action), json!({}))
}

/// `POST {token}/rotate`, `token` the path of a token of either kind.
fn rotate(token: &str, grace: Option<Grace>) -> Request {
    post(
        paths::token_action(token, "rotate"),
        to_json(&RotateTokenRequest {
            grace: grace.map(|g| g.to_string()),
        }),
    )
}

/// The body of a token creation, whatever the token belongs to.
fn new_token(name: &str, expires_in: Option<Lifetime>, description: Option<&str>) -> Value {
    to_json(&CreateTokenRequest {
        name: name.to_owned(),
        expires_in: expires_in.map(|l| l.to_string()),
        expires_at: None,
        description: description.map(str::to_owned),
    })
}

/// `POST .../roles/{r}/api-tokens` with `{"name": token}` (and `"expiresIn"`, `"description"`
/// if given).
pub fn create_api_token(
    scope: &Scope,
    role: &str,
    name: &str,
    expires_in: Option<Lifetime>,
    description: Option<&str>,
) -> Request {
    post(
        paths::new_api_token(scope.encoded().as_deref(), &segment(role)),
        new_token(name, expires_in, description),
    )
}

/// `GET .../api-tokens[?role=r]`
pub fn list_api_tokens(scope: &Scope, role: Option<&str>) -> Request {
    let role = role.map(segment);
    get(paths::api_tokens(
        scope.encoded().as_deref(),
        role.as_deref(),
    ))
}

/// `GET .../api-tokens/{t}`
pub fn get_api_token(scope: &Scope, name: &str) -> Request {
    get(paths::api_token(scope.encoded().as_deref(), &segment(name)))
}

/// `DELETE .../api-tokens/{t}`
pub fn delete_api_token(scope: &Scope, name: &str) -> Request {
    delete(paths::api_token(scope.encoded().as_deref(), &segment(name)))
}

/// `GET .../service-account-tokens[?serviceAccount=sa]`
pub fn list_tokens(scope: &Scope, service_account: Option<&str>) -> Request {
    let service_account = service_account.map(segment);
    get(paths::tokens(
        scope.encoded().as_deref(),
        service_account.as_deref(),
    ))
}

/// `GET .../service-account-tokens/{t}`
pub fn get_token(scope: &Scope, name: &str) -> Request {
    get(paths::token(scope.encoded().as_deref(), &segment(name)))
}

/// `DELETE .../service-account-tokens/{t}`
pub fn delete_token(scope: &Scope, name: &str) -> Request {
    delete(paths::token(scope.encoded().as_deref(), &segment(name)))
}

/// `GET .../roles`
pub fn list_roles(scope: &Scope) -> Request {
    get(paths::roles(scope.encoded().as_deref()))
}

/// `GET .../roles/{r}`
pub fn get_role(scope: &Scope, name: &str) -> Request {
    get(paths::role(scope.encoded().as_deref(), &segment(name)))
}

/// `POST /v1beta1/projects/{p}/roles` with a Role.
pub fn create_role(project: &str, role: &Role) -> Request {
    post(paths::roles(Some(&segment(project))), to_json(role))
}

/// `PUT /v1beta1/projects/{p}/roles/{r}` with a Role: replaces its claims, description and
/// rules.
pub fn update_role(project: &str, role: &Role) -> Request {
    let name = role.metadata.name.as_deref().unwrap_or_default();
    Request {
        method: Method::Put,
        path: paths::role(Some(&segment(project)), &segment(name)),
        body: Some(to_json(role)),
    }
}

/// `DELETE /v1beta1/projects/{p}/roles/{r}`
pub fn delete_role(project: &str, name: &str) -> Request {
    delete(paths::role(Some(&segment(project)), &segment(name)))
}

/// `POST /v1beta1/projects/{p}/roles/grants`
pub fn grant(project: &str, request: &GrantRequest) -> Request {
    post(paths::grants(&segment(project)), to_json(request))
}

/// `POST /v1beta1/projects/{p}/roles/revocations`
pub fn revoke(project: &str, request: &GrantRequest) -> Request {
    post(paths::revocations(&segment(project)), to_json(request))
}

/// `GET /v1beta1/projects/{p}/federated-identities[?serviceAccount=]`.
pub fn list_federated_identities(project: &str, service_account: Option<&str>) -> Request {
    let mut path = format!(
        "/v1beta1/projects/{}/federated-identities",
        segment(project)
    );
    if let Some(sa) = service_account {
        path.push_str(&format!("?serviceAccount={}", segment(sa)));
    }
    Request {
        method: Method::Get,
        path,
        body: None,
    }
}

/// `POST /v1beta1/projects/{p}/service-accounts/{sa}/federated-identities`.
pub fn create_federated_identity(project: &str, service_account: &str, entry: Value) -> Request {
    Request {
        method: Method::Post,
        path: format!(
            "/v1beta1/projects/{}/service-accounts/{}/federated-identities",
            segment(project),
            segment(service_account)
        ),
        body: Some(entry),
    }
}

/// `DELETE /v1beta1/projects/{p}/federated-identities/{name}[?serviceAccount=]`.
pub fn delete_federated_identity(
    project: &str,
    name: &str,
    service_account: Option<&str>,
) -> Request {
    let mut path = format!(
        "/v1beta1/projects/{}/federated-identities/{}",
        segment(project),
        segment(name)
    );
    if let Some(sa) = service_account {
        path.push_str(&format!("?serviceAccount={}", segment(sa)));
    }
    Request {
        method: Method::Delete,
        path,
        body: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kargo_api::kargo::{ServiceAccountReference, ServiceAccountReferences};

    fn check(request: Request, method: Method, path: &str, body: Option<Value>) {
        assert_eq!(
            request,
            Request {
                method,
                path: path.to_owned(),
                body
            }
        );
    }

    #[test]
    fn every_call_has_the_route_of_the_spec() {
        let p = Scope::Project("my-project".into());
        let s = Scope::System;
        use Method::*;
        check(
            public_server_config(),
            Get,
            "/v1beta1/system/public-server-config",
            None,
        );
        check(login(), Post, "/v1beta1/login", None);
        check(list_projects(), Get, "/v1beta1/projects", None);
        check(get_project("p"), Get, "/v1beta1/projects/p", None);
        check(delete_project("p"), Delete, "/v1beta1/projects/p", None);
        check(
            create_project("p"),
            Post,
            "/v1beta1/projects",
            Some(
                json!({"apiVersion": "kargo.akuity.io/v1alpha1", "kind": "Project", "metadata": {"name": "p"}}),
            ),
        );
        check(
            list_service_accounts(&p),
            Get,
            "/v1beta1/projects/my-project/service-accounts",
            None,
        );
        check(
            list_service_accounts(&s),
            Get,
            "/v1beta1/system/service-accounts",
            None,
        );
        check(
            get_service_account(&s, "kargo-admin"),
            Get,
            "/v1beta1/system/service-accounts/kargo-admin",
            None,
        );
        check(
            create_service_account("my-project", "my-sa"),
            Post,
            "/v1beta1/projects/my-project/service-accounts",
            Some(
                json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "my-sa", "namespace": "my-project"}}),
            ),
        );
        check(
            delete_service_account("my-project", "my-sa"),
            Delete,
            "/v1beta1/projects/my-project/service-accounts/my-sa",
            None,
        );
        check(
            create_token(&p, "my-sa", "my-sa-token", None, None),
            Post,
            "/v1beta1/projects/my-project/service-accounts/my-sa/tokens",
            Some(json!({"name": "my-sa-token"})),
        );
        check(
            create_token(&s, "kargo-admin", "t", None, None),
            Post,
            "/v1beta1/system/service-accounts/kargo-admin/tokens",
            Some(json!({"name": "t"})),
        );
        check(
            create_token(&p, "my-sa", "ci", Lifetime::parse("48h").ok(), None),
            Post,
            "/v1beta1/projects/my-project/service-accounts/my-sa/tokens",
            Some(json!({"name": "ci", "expiresIn": "2d"})),
        );
        check(
            create_token(&p, "my-sa", "ci", None, Some("deploys")),
            Post,
            "/v1beta1/projects/my-project/service-accounts/my-sa/tokens",
            Some(json!({"name": "ci", "description": "deploys"})),
        );
        check(
            set_token_disabled(&p, "ci", true),
            Post,
            "/v1beta1/projects/my-project/service-account-tokens/ci/disable",
            Some(json!({})),
        );
        check(
            set_token_disabled(&s, "ci", false),
            Post,
            "/v1beta1/system/service-account-tokens/ci/enable",
            Some(json!({})),
        );
        check(
            rotate_token(&p, "ci", Grace::parse("24h").ok()),
            Post,
            "/v1beta1/projects/my-project/service-account-tokens/ci/rotate",
            Some(json!({"grace": "1d"})),
        );
        check(
            rotate_token(&p, "ci", None),
            Post,
            "/v1beta1/projects/my-project/service-account-tokens/ci/rotate",
            Some(json!({})),
        );
        check(
            set_api_token_disabled(&s, "ci", true),
            Post,
            "/v1beta1/system/api-tokens/ci/disable",
            Some(json!({})),
        );
        check(
            set_api_token_disabled(&p, "ci", false),
            Post,
            "/v1beta1/projects/my-project/api-tokens/ci/enable",
            Some(json!({})),
        );
        check(
            rotate_api_token(&p, "ci", Grace::parse("5s").ok()),
            Post,
            "/v1beta1/projects/my-project/api-tokens/ci/rotate",
            Some(json!({"grace": "5s"})),
        );
        check(
            list_tokens(&p, None),
            Get,
            "/v1beta1/projects/my-project/service-account-tokens",
            None,
        );
        check(
            list_tokens(&p, Some("my-sa")),
            Get,
            "/v1beta1/projects/my-project/service-account-tokens?serviceAccount=my-sa",
            None,
        );
        check(
            get_token(&s, "t"),
            Get,
            "/v1beta1/system/service-account-tokens/t",
            None,
        );
        check(
            delete_token(&p, "my-sa-token"),
            Delete,
            "/v1beta1/projects/my-project/service-account-tokens/my-sa-token",
            None,
        );
        check(
            list_roles(&p),
            Get,
            "/v1beta1/projects/my-project/roles",
            None,
        );
        check(
            get_role(&s, "kargo-admin"),
            Get,
            "/v1beta1/system/roles/kargo-admin",
            None,
        );
        check(
            delete_role("my-project", "developer"),
            Delete,
            "/v1beta1/projects/my-project/roles/developer",
            None,
        );
        let request = GrantRequest {
            role: "developer".into(),
            service_accounts: Some(ServiceAccountReferences {
                service_accounts: vec![ServiceAccountReference {
                    name: "my-sa".into(),
                    namespace: "my-project".into(),
                }],
            }),
            ..GrantRequest::default()
        };
        let body = json!({"role": "developer", "serviceAccounts": {"serviceAccounts": [{"name": "my-sa", "namespace": "my-project"}]}});
        check(
            grant("my-project", &request),
            Post,
            "/v1beta1/projects/my-project/roles/grants",
            Some(body.clone()),
        );
        check(
            revoke("my-project", &request),
            Post,
            "/v1beta1/projects/my-project/roles/revocations",
            Some(body),
        );
    }

    #[test]
    fn names_cannot_change_the_route() {
        check(
            get_service_account(&Scope::Project("a/b".into()), "../x?y=1"),
            Method::Get,
            "/v1beta1/projects/a%2Fb/service-accounts/..%2Fx%3Fy%3D1",
            None,
        );
        check(
            list_api_tokens(&Scope::Project("p".into()), Some("a b")),
            Method::Get,
            "/v1beta1/projects/p/api-tokens?role=a%20b",
            None,
        );
        check(
            create_api_token(&Scope::System, "kargo-viewer", "t", None, None),
            Method::Post,
            "/v1beta1/system/roles/kargo-viewer/api-tokens",
            Some(json!({"name": "t"})),
        );
        check(
            delete_api_token(&Scope::System, "t/x"),
            Method::Delete,
            "/v1beta1/system/api-tokens/t%2Fx",
            None,
        );
        check(
            list_tokens(&Scope::System, Some("a&b")),
            Method::Get,
            "/v1beta1/system/service-account-tokens?serviceAccount=a%26b",
            None,
        );
    }
}

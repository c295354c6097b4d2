//! The Kargo REST API under `/v1beta1`: login, public configuration, the OpenAPI document, and
//! (on top of the `kargo` layer) projects, roles, service accounts and tokens. Errors are
//! `{"error": "<message>"}`.
//!
//! Every route but login, the token exchange (`token_exchange.rs`), the public configuration and the OpenAPI document needs
//! `Authorization: Bearer <token>` (401 `no token provided` / `invalid token`; 429 with
//! `Retry-After` from an address that has sent too many invalid tokens, see `auth::limits`).
//! Bodies over 1 MiB are refused (413 `request body too large`); malformed JSON is a 400 with the
//! parser's message.

use std::collections::HashMap;

use axum::Extension;
use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequestParts, Path, Query, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, get};
use http::request::Parts;
use http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::json;

use super::throttle::{ClientAddress, client_address, kargo_too_many};
use super::{AppState, body, json_response};
use kargo_auth::authn::{AuthFailure, LoginError, bearer};
use kargo_auth::rbac::UserInfo;
use kargo_core::{self, Scope, TokenKind};
use kargo_registry::status::Status;

/// The largest request body the Kargo API takes.
pub(crate) const MAX_BODY: usize = 1024 * 1024;

/// A Kargo API error: a status code and a message, rendered as `{"error": message}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KargoError {
    /// The HTTP status code.
    pub code: StatusCode,
    /// The message.
    pub message: String,
}

impl KargoError {
    /// An error with a code and message.
    pub fn new(code: StatusCode, message: impl Into<String>) -> KargoError {
        KargoError {
            code,
            message: message.into(),
        }
    }
}

impl From<Status> for KargoError {
    fn from(status: Status) -> KargoError {
        KargoError::new(
            StatusCode::from_u16(status.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            status.message,
        )
    }
}

impl From<kargo_core::Error> for KargoError {
    fn from(err: kargo_core::Error) -> KargoError {
        let code = StatusCode::from_u16(err.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if code.is_server_error() {
            tracing::warn!(error = %err, "a Kargo API request failed");
        }
        KargoError::new(code, err.to_string())
    }
}

impl IntoResponse for KargoError {
    fn into_response(self) -> Response {
        crate::observe::note(|notes| {
            notes.refusal = Some(crate::observe::Refusal {
                reason: "",
                message: self.message.clone(),
            });
        });
        json_response(self.code, &json!({"error": self.message}), &[])
    }
}

type Reply = Result<Response, KargoError>;

/// An HTTP method of a Kargo route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Post,
    Put,
    Delete,
}

impl Method {
    /// The method as an OpenAPI path item names it (`get`).
    pub(crate) fn openapi_name(self) -> &'static str {
        match self {
            Method::Get => "get",
            Method::Post => "post",
            Method::Put => "put",
            Method::Delete => "delete",
        }
    }

    fn filter(self) -> MethodFilter {
        match self {
            Method::Get => MethodFilter::GET,
            Method::Post => MethodFilter::POST,
            Method::Put => MethodFilter::PUT,
            Method::Delete => MethodFilter::DELETE,
        }
    }
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Anyone: login and the public configuration.
    Public,
    /// A caller with a valid bearer token ([`authenticate`]).
    Bearer,
}

/// A query parameter of a route.
#[derive(Debug)]
pub(crate) struct QueryParam {
    pub(crate) name: &'static str,
    pub(crate) description: &'static str,
}

/// Registers a handler for one method.
type Handler = fn(MethodFilter) -> MethodRouter<AppState>;

/// What a route does, whichever scope it serves: who may call it, what it takes and answers, and
/// its handler. The project and the system route of one operation share it.
pub(crate) struct Op {
    /// The verb of the operation in the audit log (`create-token`, `grant`), the same for its
    /// project and system routes.
    pub(crate) verb: &'static str,
    pub(crate) access: Access,
    pub(crate) query: &'static [QueryParam],
    /// The component schema of the request body, if the route takes one.
    pub(crate) body: Option<&'static str>,
    /// The body's media type (`application/json` but for the token exchange's form).
    pub(crate) body_type: &'static str,
    /// The success code the handler answers with.
    pub(crate) success: u16,
    /// The component schema of the success body (none for 204).
    pub(crate) response: Option<&'static str>,
    pub(crate) handler: Handler,
}

impl Op {
    /// An operation that needs a bearer token, answers `success` with `response` and takes no
    /// body and no query.
    const fn bearer(
        verb: &'static str,
        handler: Handler,
        success: u16,
        response: Option<&'static str>,
    ) -> Op {
        Op {
            verb,
            access: Access::Bearer,
            query: &[],
            body: None,
            body_type: "application/json",
            success,
            response,
            handler,
        }
    }

    /// [`Op::bearer`], open to anyone.
    const fn public(
        verb: &'static str,
        handler: Handler,
        success: u16,
        response: Option<&'static str>,
    ) -> Op {
        Op {
            access: Access::Public,
            ..Op::bearer(verb, handler, success, response)
        }
    }

    /// The operation, taking a body of the component schema `body`.
    const fn takes(self, body: &'static str) -> Op {
        Op {
            body: Some(body),
            ..self
        }
    }

    /// The operation, taking a form (`application/x-www-form-urlencoded`) of the component
    /// schema `body`.
    const fn takes_form(self, body: &'static str) -> Op {
        Op {
            body: Some(body),
            body_type: "application/x-www-form-urlencoded",
            ..self
        }
    }

    /// The operation, taking the query parameters `query`.
    const fn query(self, query: &'static [QueryParam]) -> Op {
        Op { query, ..self }
    }
}

/// One route of the Kargo API: what the router serves and what the OpenAPI document
/// (`kargo_openapi`) says of it, in one place.
pub(crate) struct Route {
    pub(crate) method: Method,
    /// The path template; its `{parameters}` are documented in `kargo_openapi::PATH_PARAMS`.
    pub(crate) path: &'static str,
    pub(crate) operation_id: &'static str,
    pub(crate) summary: &'static str,
    pub(crate) tag: &'static str,
    pub(crate) op: Op,
}

/// `|method| on(method, handler)`, as a [`Handler`].
macro_rules! handler {
    ($f:expr) => {
        |method| axum::routing::on(method, $f)
    };
}

const SERVICE_ACCOUNT_FILTER: &[QueryParam] = &[QueryParam {
    name: "serviceAccount",
    description: "Only the tokens of this ServiceAccount",
}];

const SERVICE_ACCOUNT_ONLY: &[QueryParam] = &[QueryParam {
    name: "serviceAccount",
    description: "Only the identities trusted by this ServiceAccount",
}];

// The operations that a project's route and a system route (`/v1beta1/system/...`) share.
const LIST_SERVICE_ACCOUNTS: Op = Op::bearer(
    "list-serviceaccounts",
    handler!(list_service_accounts),
    200,
    Some("KubernetesList"),
);
const GET_SERVICE_ACCOUNT: Op = Op::bearer(
    "get-serviceaccount",
    handler!(get_service_account),
    200,
    Some("KubernetesObject"),
);
const CREATE_TOKEN: Op = Op::bearer(
    "create-token",
    handler!(create_token),
    201,
    Some("TokenSecret"),
)
.takes("CreateTokenRequest");
const LIST_TOKENS: Op = Op::bearer(
    "list-tokens",
    handler!(list_tokens),
    200,
    Some("TokenSecretList"),
)
.query(SERVICE_ACCOUNT_FILTER);
const GET_TOKEN: Op = Op::bearer("get-token", handler!(get_token), 200, Some("TokenSecret"));
const DELETE_TOKEN: Op = Op::bearer("delete-token", handler!(delete_token), 204, None);
const DISABLE_TOKEN: Op = Op::bearer(
    "disable-token",
    handler!(disable_token),
    200,
    Some("KubernetesObject"),
);
const ENABLE_TOKEN: Op = Op::bearer(
    "enable-token",
    handler!(enable_token),
    200,
    Some("KubernetesObject"),
);
const ROTATE_TOKEN: Op = Op::bearer(
    "rotate-token",
    handler!(rotate_token),
    200,
    Some("KubernetesObject"),
)
.takes("RotateTokenRequest");

const ROLE_FILTER: &[QueryParam] = &[QueryParam {
    name: "role",
    description: "Only the API tokens of this role",
}];

// Kargo Roles' API tokens (upstream Kargo's), in a project or at the system level.
const CREATE_API_TOKEN: Op = Op::bearer(
    "create-api-token",
    handler!(create_api_token),
    201,
    Some("KubernetesObject"),
)
.takes("CreateTokenRequest");
const LIST_API_TOKENS: Op = Op::bearer(
    "list-api-tokens",
    handler!(list_api_tokens),
    200,
    Some("KubernetesList"),
)
.query(ROLE_FILTER);
const GET_API_TOKEN: Op = Op::bearer(
    "get-api-token",
    handler!(get_api_token),
    200,
    Some("KubernetesObject"),
);
const DELETE_API_TOKEN: Op = Op::bearer("delete-api-token", handler!(delete_api_token), 204, None);
// The lifecycle both kinds share: the handlers of ServiceAccount tokens', told the kind by
// the path (`{apitoken}`, see [`At`]).
const DISABLE_API_TOKEN: Op = Op::bearer(
    "disable-api-token",
    handler!(disable_token),
    200,
    Some("KubernetesObject"),
);
const ENABLE_API_TOKEN: Op = Op::bearer(
    "enable-api-token",
    handler!(enable_token),
    200,
    Some("KubernetesObject"),
);
const ROTATE_API_TOKEN: Op = Op::bearer(
    "rotate-api-token",
    handler!(rotate_token),
    200,
    Some("KubernetesObject"),
)
.takes("RotateTokenRequest");

/// Where the OpenAPI document of the routes below is served (it does not describe itself).
pub(crate) const OPENAPI_PATH: &str = "/v1beta1/openapi.json";

/// Every route of the Kargo API but [`OPENAPI_PATH`], in the order the document lists them.
pub(crate) static ROUTES: &[Route] = &[
    Route {
        method: Method::Post,
        path: "/v1beta1/login",
        operation_id: "AdminLogin",
        summary: "Log in as the admin (password as `Authorization: Bearer <password>`)",
        tag: "System",
        op: Op::public("login", handler!(login), 200, Some("LoginResponse")),
    },
    Route {
        method: Method::Post,
        path: "/v1beta1/logout",
        operation_id: "AdminLogout",
        summary: "End the session of the admin token that sends this (on every replica)",
        tag: "System",
        op: Op::bearer("logout", handler!(logout), 204, None),
    },
    Route {
        method: Method::Post,
        path: "/v1beta1/token-exchange",
        operation_id: "TokenExchange",
        summary: "Exchange a CI job's OIDC token for a short-lived token of a ServiceAccount that trusts it (RFC 8693)",
        tag: "System",
        op: Op::public(
            "token-exchange",
            handler!(super::token_exchange::token_exchange),
            200,
            Some("TokenExchangeResponse"),
        )
        .takes_form("TokenExchangeRequest"),
    },
    Route {
        method: Method::Get,
        path: "/v1beta1/system/public-server-config",
        operation_id: "GetPublicServerConfig",
        summary: "The server's public configuration",
        tag: "System",
        op: Op::public(
            "get-public-server-config",
            handler!(public_server_config),
            200,
            Some("PublicServerConfig"),
        ),
    },
    Route {
        method: Method::Get,
        path: "/v1beta1/projects",
        operation_id: "ListProjects",
        summary: "List projects",
        tag: "Projects",
        op: Op::bearer(
            "list-projects",
            handler!(list_projects),
            200,
            Some("KubernetesList"),
        ),
    },
    Route {
        method: Method::Post,
        path: "/v1beta1/projects",
        operation_id: "CreateProject",
        summary: "Create a project: its namespace and default roles",
        tag: "Projects",
        op: Op::bearer(
            "create-project",
            handler!(create_project),
            201,
            Some("KubernetesObject"),
        )
        .takes("NewProject"),
    },
    Route {
        method: Method::Get,
        path: "/v1beta1/projects/{project}",
        operation_id: "GetProject",
        summary: "Get a project",
        tag: "Projects",
        op: Op::bearer(
            "get-project",
            handler!(get_project),
            200,
            Some("KubernetesObject"),
        ),
    },
    Route {
        method: Method::Delete,
        path: "/v1beta1/projects/{project}",
        operation_id: "DeleteProject",
        summary: "Delete a project and everything in it",
        tag: "Projects",
        op: Op::bearer("delete-project", handler!(delete_project), 204, None),
    },
    Route {
        method: Method::Get,
        path: "/v1beta1/projects/{project}/service-accounts",
        operation_id: "ListProjectServiceAccounts",
        summary: "List Kargo ServiceAccounts",
        tag: "ServiceAccounts",
        op: LIST_SERVICE_ACCOUNTS,
    },
    Route {
        method: Method::Post,
        path: "/v1beta1/projects/{project}/service-accounts",
        operation_id: "CreateProjectServiceAccount",
        summary: "Create a Kargo ServiceAccount",
        tag: "ServiceAccounts",
        op: Op::bearer(
            "create-serviceaccount",
            handler!(create_service_account),
            201,
            Some("KubernetesObject"),
        )
        .takes("NewServiceAccount"),
    },
    Route {
        method: Method::Get,
        path: "/v1beta1/projects/{project}/service-accounts/{serviceaccount}",
        operation_id: "GetProjectServiceAccount",
        summary: "Get a Kargo ServiceAccount",
        tag: "ServiceAccounts",
        op: GET_SERVICE_ACCOUNT,
    },
    Route {
        method: Method::Delete,
        path: "/v1beta1/projects/{project}/service-accounts/{serviceaccount}",
        operation_id: "DeleteProjectServiceAccount",
        summary: "Delete a Kargo ServiceAccount, its tokens and its grants",
        tag: "ServiceAccounts",
        op: Op::bearer(
            "delete-serviceaccount",
            handler!(delete_service_account),
            204,
            None,
        ),
    },
    Route {
        method: Method::Post,
        path: "/v1beta1/projects/{project}/service-accounts/{serviceaccount}/tokens",
        operation_id: "CreateProjectServiceAccountToken",
        summary: "Create a token; the answer is the only time it is shown",
        tag: "Tokens",
        op: CREATE_TOKEN,
    },
    Route {
        method: Method::Get,
        path: "/v1beta1/projects/{project}/service-account-tokens",
        operation_id: "ListProjectServiceAccountTokens",
        summary: "List tokens (redacted)",
        tag: "Tokens",
        op: LIST_TOKENS,
    },
    Route {
        method: Method::Get,
        path: "/v1beta1/projects/{project}/service-account-tokens/{token}",
        operation_id: "GetProjectServiceAccountToken",
        summary: "Get a token (redacted)",
        tag: "Tokens",
        op: GET_TOKEN,
    },
    Route {
        method: Method::Delete,
        path: "/v1beta1/projects/{project}/service-account-tokens/{token}",
        operation_id: "DeleteProjectServiceAccountToken",
        summary: "Delete a token",
        tag: "Tokens",
        op: DELETE_TOKEN,
    },
    Route {
        method: Method::Post,
        path: "/v1beta1/projects/{project}/service-account-tokens/{token}/disable",
        operation_id: "DisableProjectServiceAccountToken",
        summary: "Disable a token: refused from the next request on, until enabled",
        tag: "Tokens",
        op: DISABLE_TOKEN,
    },
    Route {
        method: Method::Post,
        path: "/v1beta1/projects/{project}/service-account-tokens/{token}/enable",
        operation_id: "EnableProjectServiceAccountToken",
        summary: "Enable a token again",
        tag: "Tokens",
        op: ENABLE_TOKEN,
    },
    Route {
        method: Method::Post,
        path: "/v1beta1/projects/{project}/service-account-tokens/{token}/rotate",
        operation_id: "RotateProjectServiceAccountToken",
        summary: "Give a token a new value (shown once); the old one stays valid for the grace",
        tag: "Tokens",
        op: ROTATE_TOKEN,
    },
    Route {
        method: Method::Post,
        path: "/v1beta1/projects/{project}/service-accounts/{serviceaccount}/federated-identities",
        operation_id: "CreateProjectFederatedIdentity",
        summary: "Trust an outside identity (a CI job's OIDC token) to act as the ServiceAccount",
        tag: "Federated identities",
        op: Op::bearer(
            "create-federatedidentity",
            handler!(create_federated_identity),
            201,
            Some("FederatedIdentity"),
        )
        .takes("FederatedIdentity"),
    },
    Route {
        method: Method::Get,
        path: "/v1beta1/projects/{project}/federated-identities",
        operation_id: "ListProjectFederatedIdentities",
        summary: "List the outside identities the project's ServiceAccounts trust",
        tag: "Federated identities",
        op: Op::bearer(
            "list-federatedidentities",
            handler!(list_federated_identities),
            200,
            Some("FederatedIdentityList"),
        )
        .query(SERVICE_ACCOUNT_ONLY),
    },
    Route {
        method: Method::Delete,
        path: "/v1beta1/projects/{project}/federated-identities/{federatedidentity}",
        operation_id: "DeleteProjectFederatedIdentity",
        summary: "Stop trusting an outside identity (tokens issued for it stop working)",
        tag: "Federated identities",
        op: Op::bearer(
            "delete-federatedidentity",
            handler!(delete_federated_identity),
            204,
            None,
        )
        .query(SERVICE_ACCOUNT_ONLY),
    },
    Route {
        method: Method::Get,
        path: "/v1beta1/projects/{project}/roles",
        operation_id: "ListProjectRoles",
        summary: "List roles",
        tag: "Roles",
        op: Op::bearer("list-roles", handler!(list_roles), 200, Some("RoleList")),
    },
    Route {
        method: Method::Post,
        path: "/v1beta1/projects/{project}/roles",
        operation_id: "CreateProjectRole",
        summary: "Create a role",
        tag: "Roles",
        op: Op::bearer("create-role", handler!(create_role), 201, Some("Role")).takes("NewRole"),
    },
    Route {
        method: Method::Get,
        path: "/v1beta1/projects/{project}/roles/{role}",
        operation_id: "GetProjectRole",
        summary: "Get a role",
        tag: "Roles",
        op: Op::bearer("get-role", handler!(get_role), 200, Some("Role")),
    },
    Route {
        method: Method::Put,
        path: "/v1beta1/projects/{project}/roles/{role}",
        operation_id: "UpdateProjectRole",
        summary: "Replace a role's claims, description and rules",
        tag: "Roles",
        op: Op::bearer("update-role", handler!(update_role), 200, Some("Role")).takes("Role"),
    },
    Route {
        method: Method::Delete,
        path: "/v1beta1/projects/{project}/roles/{role}",
        operation_id: "DeleteProjectRole",
        summary: "Delete a role",
        tag: "Roles",
        op: Op::bearer("delete-role", handler!(delete_role), 204, None),
    },
    Route {
        method: Method::Post,
        path: "/v1beta1/projects/{project}/roles/grants",
        operation_id: "GrantProjectRole",
        summary: "Grant a role to ServiceAccounts or users, or a permission to a role",
        tag: "Roles",
        op: Op::bearer("grant", handler!(grant), 200, Some("Role")).takes("GrantRequest"),
    },
    Route {
        method: Method::Post,
        path: "/v1beta1/projects/{project}/roles/revocations",
        operation_id: "RevokeProjectRole",
        summary: "Revoke a role from ServiceAccounts or users, or a permission from a role",
        tag: "Roles",
        op: Op::bearer("revoke", handler!(revoke), 200, Some("Role")).takes("GrantRequest"),
    },
    Route {
        method: Method::Post,
        path: "/v1beta1/projects/{project}/roles/{role}/api-tokens",
        operation_id: "CreateProjectAPIToken",
        summary: "Create an API token of a role; the answer is the only time it is shown",
        tag: "APITokens",
        op: CREATE_API_TOKEN,
    },
    Route {
        method: Method::Get,
        path: "/v1beta1/projects/{project}/api-tokens",
        operation_id: "ListProjectAPITokens",
        summary: "List API tokens (redacted)",
        tag: "APITokens",
        op: LIST_API_TOKENS,
    },
    Route {
        method: Method::Get,
        path: "/v1beta1/projects/{project}/api-tokens/{apitoken}",
        operation_id: "GetProjectAPIToken",
        summary: "Get an API token (redacted)",
        tag: "APITokens",
        op: GET_API_TOKEN,
    },
    Route {
        method: Method::Delete,
        path: "/v1beta1/projects/{project}/api-tokens/{apitoken}",
        operation_id: "DeleteProjectAPIToken",
        summary: "Delete an API token",
        tag: "APITokens",
        op: DELETE_API_TOKEN,
    },
    Route {
        method: Method::Post,
        path: "/v1beta1/projects/{project}/api-tokens/{apitoken}/disable",
        operation_id: "DisableProjectAPIToken",
        summary: "Disable an API token: refused from the next request on, until enabled",
        tag: "APITokens",
        op: DISABLE_API_TOKEN,
    },
    Route {
        method: Method::Post,
        path: "/v1beta1/projects/{project}/api-tokens/{apitoken}/enable",
        operation_id: "EnableProjectAPIToken",
        summary: "Enable an API token again",
        tag: "APITokens",
        op: ENABLE_API_TOKEN,
    },
    Route {
        method: Method::Post,
        path: "/v1beta1/projects/{project}/api-tokens/{apitoken}/rotate",
        operation_id: "RotateProjectAPIToken",
        summary: "Give an API token a new value (shown once); the old one stays valid for the grace",
        tag: "APITokens",
        op: ROTATE_API_TOKEN,
    },
    Route {
        method: Method::Get,
        path: "/v1beta1/system/service-accounts",
        operation_id: "ListSystemServiceAccounts",
        summary: "List system Kargo ServiceAccounts",
        tag: "System",
        op: LIST_SERVICE_ACCOUNTS,
    },
    Route {
        method: Method::Get,
        path: "/v1beta1/system/service-accounts/{serviceaccount}",
        operation_id: "GetSystemServiceAccount",
        summary: "Get a system Kargo ServiceAccount",
        tag: "System",
        op: GET_SERVICE_ACCOUNT,
    },
    Route {
        method: Method::Post,
        path: "/v1beta1/system/service-accounts/{serviceaccount}/tokens",
        operation_id: "CreateSystemServiceAccountToken",
        summary: "Create a token of a system ServiceAccount",
        tag: "System",
        op: CREATE_TOKEN,
    },
    Route {
        method: Method::Get,
        path: "/v1beta1/system/service-account-tokens",
        operation_id: "ListSystemServiceAccountTokens",
        summary: "List system tokens (redacted)",
        tag: "System",
        op: LIST_TOKENS,
    },
    Route {
        method: Method::Get,
        path: "/v1beta1/system/service-account-tokens/{token}",
        operation_id: "GetSystemServiceAccountToken",
        summary: "Get a system token (redacted)",
        tag: "System",
        op: GET_TOKEN,
    },
    Route {
        method: Method::Delete,
        path: "/v1beta1/system/service-account-tokens/{token}",
        operation_id: "DeleteSystemServiceAccountToken",
        summary: "Delete a system token",
        tag: "System",
        op: DELETE_TOKEN,
    },
    Route {
        method: Method::Post,
        path: "/v1beta1/system/service-account-tokens/{token}/disable",
        operation_id: "DisableSystemServiceAccountToken",
        summary: "Disable a system token: refused from the next request on, until enabled",
        tag: "System",
        op: DISABLE_TOKEN,
    },
    Route {
        method: Method::Post,
        path: "/v1beta1/system/service-account-tokens/{token}/enable",
        operation_id: "EnableSystemServiceAccountToken",
        summary: "Enable a system token again",
        tag: "System",
        op: ENABLE_TOKEN,
    },
    Route {
        method: Method::Post,
        path: "/v1beta1/system/service-account-tokens/{token}/rotate",
        operation_id: "RotateSystemServiceAccountToken",
        summary: "Give a system token a new value (shown once); the old one stays valid for the grace",
        tag: "System",
        op: ROTATE_TOKEN,
    },
    Route {
        method: Method::Get,
        path: "/v1beta1/system/roles",
        operation_id: "ListSystemRoles",
        summary: "List system roles (read only)",
        tag: "System",
        op: Op::bearer(
            "list-roles",
            handler!(list_system_roles),
            200,
            Some("RoleList"),
        ),
    },
    Route {
        method: Method::Get,
        path: "/v1beta1/system/roles/{role}",
        operation_id: "GetSystemRole",
        summary: "Get a system role (read only)",
        tag: "System",
        op: Op::bearer("get-role", handler!(get_system_role), 200, Some("Role")),
    },
    Route {
        method: Method::Post,
        path: "/v1beta1/system/roles/{role}/api-tokens",
        operation_id: "CreateSystemAPIToken",
        summary: "Create an API token of a system role",
        tag: "System",
        op: CREATE_API_TOKEN,
    },
    Route {
        method: Method::Get,
        path: "/v1beta1/system/api-tokens",
        operation_id: "ListSystemAPITokens",
        summary: "List system API tokens (redacted)",
        tag: "System",
        op: LIST_API_TOKENS,
    },
    Route {
        method: Method::Get,
        path: "/v1beta1/system/api-tokens/{apitoken}",
        operation_id: "GetSystemAPIToken",
        summary: "Get a system API token (redacted)",
        tag: "System",
        op: GET_API_TOKEN,
    },
    Route {
        method: Method::Delete,
        path: "/v1beta1/system/api-tokens/{apitoken}",
        operation_id: "DeleteSystemAPIToken",
        summary: "Delete a system API token",
        tag: "System",
        op: DELETE_API_TOKEN,
    },
    Route {
        method: Method::Post,
        path: "/v1beta1/system/api-tokens/{apitoken}/disable",
        operation_id: "DisableSystemAPIToken",
        summary: "Disable a system API token: refused from the next request on, until enabled",
        tag: "System",
        op: DISABLE_API_TOKEN,
    },
    Route {
        method: Method::Post,
        path: "/v1beta1/system/api-tokens/{apitoken}/enable",
        operation_id: "EnableSystemAPIToken",
        summary: "Enable a system API token again",
        tag: "System",
        op: ENABLE_API_TOKEN,
    },
    Route {
        method: Method::Post,
        path: "/v1beta1/system/api-tokens/{apitoken}/rotate",
        operation_id: "RotateSystemAPIToken",
        summary: "Give a system API token a new value (shown once); the old one stays valid for the grace",
        tag: "System",
        op: ROTATE_API_TOKEN,
    },
];

/// The route of [`ROUTES`] that serves `method` `path`, and the values of its path parameters
/// by name (`[("project", "p"), ("role", "r")]`); `None` when no route does.
pub(crate) fn route_of<'p>(
    method: &http::Method,
    path: &'p str,
) -> Option<(&'static Route, Vec<(&'static str, &'p str)>)> {
    let segments: Vec<&str> = path.split('/').collect();
    ROUTES
        .iter()
        .filter(|route| {
            route
                .method
                .openapi_name()
                .eq_ignore_ascii_case(method.as_str())
        })
        .find_map(|route| {
            let template: Vec<&'static str> = route.path.split('/').collect();
            if template.len() != segments.len() {
                return None;
            }
            let mut params = Vec::new();
            for (t, s) in template.iter().zip(&segments) {
                match t.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
                    Some(name) if !s.is_empty() => params.push((name, *s)),
                    Some(_) => return None,
                    None if t == s => {}
                    None => return None,
                }
            }
            Some((route, params))
        })
}

/// The routes of [`ROUTES`] by access: `(public, needing a bearer token)`.
fn table_routers() -> (Router<AppState>, Router<AppState>) {
    let (mut public, mut protected) = (Router::new(), Router::new());
    for route in ROUTES {
        let method_router = (route.op.handler)(route.method.filter());
        match route.op.access {
            Access::Public => public = public.route(route.path, method_router),
            Access::Bearer => protected = protected.route(route.path, method_router),
        }
    }
    (public, protected)
}

/// The Kargo routes: [`ROUTES`], the protected ones behind [`authenticate`], and the OpenAPI
/// document that describes them at [`OPENAPI_PATH`].
pub(crate) fn router(state: AppState) -> Router<AppState> {
    let (public, protected) = table_routers();
    public
        .route(OPENAPI_PATH, get(openapi))
        .merge(protected.route_layer(middleware::from_fn_with_state(state, authenticate)))
}

/// Authenticates a Kargo API request by its bearer token.
async fn authenticate(State(app): State<AppState>, mut request: Request, next: Next) -> Response {
    let source = client_address(request.extensions());
    let header = request.headers().get(http::header::AUTHORIZATION);
    let text = header.map(|h| h.to_str().map(str::trim));
    let user = match text {
        None | Some(Ok("")) => Err(AuthFailure::Missing),
        Some(Ok(h)) if h.eq_ignore_ascii_case("bearer") => Err(AuthFailure::Missing),
        Some(Ok(h)) => match bearer(Some(h)) {
            Some(token) => app.authn.authenticate_token_waiting(token, source).await,
            None => Err(AuthFailure::Invalid),
        },
        Some(Err(_)) => Err(AuthFailure::Invalid),
    };
    let user = user.map(|user| super::impersonation::act_as(&app.authz, user, request.headers()));
    match user {
        Ok(Ok(user)) => {
            app.observers.note_user(&user);
            request.extensions_mut().insert(user);
            next.run(request).await
        }
        Ok(Err(status)) => {
            super::drain_later(request);
            KargoError::from(status).into_response()
        }
        Err(failure) => {
            // Read what the client sends while the answer goes out, so that it gets the answer
            // instead of a reset connection, and the request gives its place back at once.
            super::drain_later(request);
            token_error(failure)
        }
    }
}

/// The answer to a request whose token did not authenticate: 401, or 429 with `Retry-After`
/// for an address that has failed too often.
pub(crate) fn token_error(failure: AuthFailure) -> Response {
    match failure {
        AuthFailure::Missing => {
            KargoError::new(StatusCode::UNAUTHORIZED, "no token provided").into_response()
        }
        AuthFailure::Invalid => {
            KargoError::new(StatusCode::UNAUTHORIZED, "invalid token").into_response()
        }
        AuthFailure::TooMany { retry_after } => {
            kargo_too_many(AuthFailure::too_many_message(retry_after), retry_after)
        }
    }
}

/// Reads and decodes a JSON body: 413 over [`MAX_BODY`], 400 with the parser's message.
async fn json_body<T: DeserializeOwned>(body: Body) -> Result<T, KargoError> {
    let bytes = match body::read(body, MAX_BODY).await {
        Ok(Some(bytes)) => bytes,
        Ok(None) => {
            return Err(KargoError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body too large",
            ));
        }
        Err(status) => return Err(status.into()),
    };
    serde_json::from_slice(&bytes)
        .map_err(|e| KargoError::new(StatusCode::BAD_REQUEST, e.to_string()))
}

fn reply<T: serde::Serialize>(code: StatusCode, body: &T) -> Reply {
    Ok(json_response(code, body, &[]))
}

fn no_content() -> Reply {
    Ok(StatusCode::NO_CONTENT.into_response())
}

type User = Extension<std::sync::Arc<UserInfo>>;

/// Where a Kargo route acts, from its path: the project it names (`{project}`), or the system
/// scope for the `/v1beta1/system/...` routes (which name none); and the one object it names
/// (`{serviceaccount}`, `{token}`, `{apitoken}` or `{role}`), empty for a collection. One handler serves both scopes.
/// On a token's route, the kind of token the route names: an API token for `{apitoken}`, else
/// a ServiceAccount token; so one handler also serves both kinds' lifecycle routes.
struct At {
    scope: Scope,
    name: String,
    kind: TokenKind,
}

impl<S: Send + Sync> FromRequestParts<S> for At {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<At, Response> {
        let Path(mut params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let scope = params
            .remove("project")
            .map_or(Scope::System, Scope::Project);
        let kind = if params.contains_key("apitoken") {
            TokenKind::Api
        } else {
            TokenKind::ServiceAccount
        };
        let name = params.into_values().next().unwrap_or_default();
        Ok(At { scope, name, kind })
    }
}

async fn list_projects(State(app): State<AppState>, Extension(user): User) -> Reply {
    reply(StatusCode::OK, &app.kargo.list_projects(&user).await?)
}

async fn create_project(State(app): State<AppState>, Extension(user): User, body: Body) -> Reply {
    let body: serde_json::Value = json_body(body).await?;
    reply(
        StatusCode::CREATED,
        &app.kargo.create_project(&user, body).await?,
    )
}

async fn get_project(
    State(app): State<AppState>,
    Extension(user): User,
    Path(project): Path<String>,
) -> Reply {
    reply(
        StatusCode::OK,
        &app.kargo.get_project(&user, &project).await?,
    )
}

async fn delete_project(
    State(app): State<AppState>,
    Extension(user): User,
    Path(project): Path<String>,
) -> Reply {
    app.kargo.delete_project(&user, &project).await?;
    no_content()
}

async fn list_service_accounts(
    State(app): State<AppState>,
    Extension(user): User,
    at: At,
) -> Reply {
    reply(
        StatusCode::OK,
        &app.kargo.list_service_accounts(&user, &at.scope).await?,
    )
}

async fn create_service_account(
    State(app): State<AppState>,
    Extension(user): User,
    at: At,
    body: Body,
) -> Reply {
    let body = json_body(body).await?;
    let sa = app
        .kargo
        .create_service_account(&user, &at.scope, body)
        .await?;
    reply(StatusCode::CREATED, &sa)
}

async fn get_service_account(State(app): State<AppState>, Extension(user): User, at: At) -> Reply {
    reply(
        StatusCode::OK,
        &app.kargo
            .get_service_account(&user, &at.scope, &at.name)
            .await?,
    )
}

async fn delete_service_account(
    State(app): State<AppState>,
    Extension(user): User,
    at: At,
) -> Reply {
    app.kargo
        .delete_service_account(&user, &at.scope, &at.name)
        .await?;
    no_content()
}

async fn create_token(
    State(app): State<AppState>,
    Extension(user): User,
    at: At,
    body: Body,
) -> Reply {
    let request: kargo_api::kargo::CreateTokenRequest = json_body(body).await?;
    let secret = app
        .kargo
        .create_token(&user, &at.scope, &at.name, &request)
        .await?;
    reply(StatusCode::CREATED, &secret)
}

async fn list_tokens(
    State(app): State<AppState>,
    Extension(user): User,
    at: At,
    Query(query): Query<HashMap<String, String>>,
) -> Reply {
    let account = query
        .get("serviceAccount")
        .map(String::as_str)
        .filter(|s| !s.is_empty());
    let list = app.kargo.list_tokens(&user, &at.scope, account).await?;
    reply(StatusCode::OK, &list)
}

async fn get_token(State(app): State<AppState>, Extension(user): User, at: At) -> Reply {
    reply(
        StatusCode::OK,
        &app.kargo.get_token(&user, &at.scope, &at.name).await?,
    )
}

async fn delete_token(State(app): State<AppState>, Extension(user): User, at: At) -> Reply {
    app.kargo.delete_token(&user, &at.scope, &at.name).await?;
    no_content()
}

async fn disable_token(State(app): State<AppState>, Extension(user): User, at: At) -> Reply {
    let secret = app
        .kargo
        .set_token_disabled(&user, at.kind, &at.scope, &at.name, true)
        .await?;
    reply(StatusCode::OK, &secret)
}

async fn enable_token(State(app): State<AppState>, Extension(user): User, at: At) -> Reply {
    let secret = app
        .kargo
        .set_token_disabled(&user, at.kind, &at.scope, &at.name, false)
        .await?;
    reply(StatusCode::OK, &secret)
}

async fn rotate_token(
    State(app): State<AppState>,
    Extension(user): User,
    at: At,
    body: Body,
) -> Reply {
    let request: kargo_api::kargo::RotateTokenRequest = json_body(body).await?;
    let secret = app
        .kargo
        .rotate_token(&user, at.kind, &at.scope, &at.name, &request)
        .await?;
    reply(StatusCode::OK, &secret)
}

async fn create_api_token(
    State(app): State<AppState>,
    Extension(user): User,
    at: At,
    body: Body,
) -> Reply {
    let request: kargo_api::kargo::CreateTokenRequest = json_body(body).await?;
    let secret = app
        .kargo
        .create_api_token(&user, &at.scope, &at.name, &request)
        .await?;
    reply(StatusCode::CREATED, &secret)
}

async fn list_api_tokens(
    State(app): State<AppState>,
    Extension(user): User,
    at: At,
    Query(query): Query<HashMap<String, String>>,
) -> Reply {
    let role = query
        .get("role")
        .map(String::as_str)
        .filter(|s| !s.is_empty());
    let list = app.kargo.list_api_tokens(&user, &at.scope, role).await?;
    reply(StatusCode::OK, &list)
}

async fn get_api_token(State(app): State<AppState>, Extension(user): User, at: At) -> Reply {
    reply(
        StatusCode::OK,
        &app.kargo.get_api_token(&user, &at.scope, &at.name).await?,
    )
}

async fn delete_api_token(State(app): State<AppState>, Extension(user): User, at: At) -> Reply {
    app.kargo
        .delete_api_token(&user, &at.scope, &at.name)
        .await?;
    no_content()
}

/// The `serviceAccount` query parameter, when not empty.
fn service_account_of(query: &HashMap<String, String>) -> Option<&str> {
    query
        .get("serviceAccount")
        .map(String::as_str)
        .filter(|s| !s.is_empty())
}

async fn create_federated_identity(
    State(app): State<AppState>,
    Extension(user): User,
    at: At,
    body: Body,
) -> Reply {
    let entry: kargo_api::federation::FederatedIdentity = json_body(body).await?;
    let created = app
        .kargo
        .create_federated_identity(&user, &at.scope, &at.name, entry)
        .await?;
    reply(StatusCode::CREATED, &created)
}

async fn list_federated_identities(
    State(app): State<AppState>,
    Extension(user): User,
    at: At,
    Query(query): Query<HashMap<String, String>>,
) -> Reply {
    let list = app
        .kargo
        .list_federated_identities(&user, &at.scope, service_account_of(&query))
        .await?;
    reply(StatusCode::OK, &list)
}

async fn delete_federated_identity(
    State(app): State<AppState>,
    Extension(user): User,
    at: At,
    Query(query): Query<HashMap<String, String>>,
) -> Reply {
    app.kargo
        .delete_federated_identity(&user, &at.scope, &at.name, service_account_of(&query))
        .await?;
    no_content()
}

async fn list_roles(State(app): State<AppState>, Extension(user): User, at: At) -> Reply {
    reply(
        StatusCode::OK,
        &app.kargo.list_roles(&user, &at.scope).await?,
    )
}

async fn create_role(
    State(app): State<AppState>,
    Extension(user): User,
    at: At,
    body: Body,
) -> Reply {
    let role = json_body(body).await?;
    reply(
        StatusCode::CREATED,
        &app.kargo.create_role(&user, &at.scope, role).await?,
    )
}

async fn get_role(State(app): State<AppState>, Extension(user): User, at: At) -> Reply {
    reply(
        StatusCode::OK,
        &app.kargo.get_role(&user, &at.scope, &at.name).await?,
    )
}

async fn update_role(
    State(app): State<AppState>,
    Extension(user): User,
    at: At,
    body: Body,
) -> Reply {
    let role = json_body(body).await?;
    let role = app
        .kargo
        .update_role(&user, &at.scope, &at.name, role)
        .await?;
    reply(StatusCode::OK, &role)
}

async fn delete_role(State(app): State<AppState>, Extension(user): User, at: At) -> Reply {
    app.kargo.delete_role(&user, &at.scope, &at.name).await?;
    no_content()
}

async fn grant(State(app): State<AppState>, Extension(user): User, at: At, body: Body) -> Reply {
    let request = json_body(body).await?;
    reply(
        StatusCode::OK,
        &app.kargo.grant(&user, &at.scope, request).await?,
    )
}

async fn revoke(State(app): State<AppState>, Extension(user): User, at: At, body: Body) -> Reply {
    let request = json_body(body).await?;
    reply(
        StatusCode::OK,
        &app.kargo.revoke(&user, &at.scope, request).await?,
    )
}

async fn list_system_roles(State(app): State<AppState>, Extension(user): User) -> Reply {
    reply(StatusCode::OK, &app.kargo.list_system_roles(&user).await?)
}

async fn get_system_role(
    State(app): State<AppState>,
    Extension(user): User,
    Path(role): Path<String>,
) -> Reply {
    reply(
        StatusCode::OK,
        &app.kargo.get_system_role(&user, &role).await?,
    )
}

async fn openapi() -> Response {
    json_response(StatusCode::OK, super::kargo_openapi::document(), &[])
}

async fn public_server_config(State(app): State<AppState>) -> Response {
    json_response(
        StatusCode::OK,
        &json!({
            "oidcConfig": app.authn.oidc().map(|oidc| oidc.config().public()),
            "adminAccountEnabled": app.authn.admin_enabled(),
            "skipAuth": false,
        }),
        &[],
    )
}

/// `POST /v1beta1/login` with `Authorization: Bearer <password>`.
async fn login(
    State(app): State<AppState>,
    ClientAddress(source): ClientAddress,
    headers: HeaderMap,
) -> Response {
    if !app.authn.admin_enabled() {
        return KargoError::new(StatusCode::FORBIDDEN, "admin user is not enabled").into_response();
    }
    let Some(header) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return KargoError::new(StatusCode::BAD_REQUEST, "Authorization header is required")
            .into_response();
    };
    let Some(password) = header.strip_prefix("Bearer ").filter(|p| !p.is_empty()) else {
        return KargoError::new(
            StatusCode::BAD_REQUEST,
            "Authorization header must be in format 'Bearer <password>'",
        )
        .into_response();
    };
    match app.authn.login(password.to_owned(), source).await {
        Ok(token) => {
            let admin = std::sync::Arc::new(kargo_auth::authn::Authenticator::admin_user());
            app.observers.note_user(&admin);
            json_response(StatusCode::OK, &json!({"idToken": token}), &[])
        }
        Err(e @ (LoginError::Disabled | LoginError::WrongPassword)) => {
            KargoError::new(StatusCode::FORBIDDEN, e.to_string()).into_response()
        }
        Err(
            e @ (LoginError::TooManyFailures { retry_after } | LoginError::Busy { retry_after }),
        ) => kargo_too_many(e.to_string(), retry_after),
        Err(LoginError::Internal) => {
            KargoError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

/// `POST /v1beta1/logout`: ends the session of the admin token that authenticates it, on every
/// replica, and answers once this replica refuses the token.
async fn logout(State(app): State<AppState>, headers: HeaderMap) -> Reply {
    let admin = app.authn.admin();
    let claims = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| bearer(Some(h)))
        .and_then(|token| admin.session(token))
        .ok_or_else(|| {
            KargoError::new(
                StatusCode::BAD_REQUEST,
                "only an admin session can be logged out; a ServiceAccount token is revoked by deleting it",
            )
        })?;
    let revision = admin
        .log_out(app.registry.store(), &claims)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "ending an admin session failed");
            KargoError::new(StatusCode::INTERNAL_SERVER_ERROR, "logging out failed")
        })?;
    let mut synced = app.synced.clone();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        synced.wait_for(|seen| *seen >= revision),
    )
    .await;
    no_content()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_route_table_builds_a_router_with_no_overlapping_route() {
        // axum panics on a (method, path) registered twice or a malformed path template.
        let (public, protected) = table_routers();
        let _ = public.merge(protected);
    }

    #[test]
    fn a_path_finds_its_route_and_parameters_whatever_the_scope() {
        fn found(method: http::Method, path: &str) -> Option<(&str, Vec<(&str, &str)>)> {
            route_of(&method, path).map(|(route, params)| (route.op.verb, params))
        }
        assert_eq!(
            found(
                http::Method::POST,
                "/v1beta1/projects/p/service-accounts/ci/tokens"
            ),
            Some((
                "create-token",
                vec![("project", "p"), ("serviceaccount", "ci")]
            ))
        );
        assert_eq!(
            found(
                http::Method::POST,
                "/v1beta1/system/service-accounts/ci/tokens"
            ),
            Some(("create-token", vec![("serviceaccount", "ci")]))
        );
        assert_eq!(
            found(http::Method::POST, "/v1beta1/projects/p/roles/r/api-tokens"),
            Some(("create-api-token", vec![("project", "p"), ("role", "r")]))
        );
        assert_eq!(
            found(http::Method::DELETE, "/v1beta1/system/api-tokens/t"),
            Some(("delete-api-token", vec![("apitoken", "t")]))
        );
        assert_eq!(
            found(
                http::Method::POST,
                "/v1beta1/projects/p/api-tokens/t/rotate"
            ),
            Some((
                "rotate-api-token",
                vec![("project", "p"), ("apitoken", "t")]
            ))
        );
        assert_eq!(
            found(
                http::Method::POST,
                "/v1beta1/system/service-account-tokens/t/disable"
            ),
            Some(("disable-token", vec![("token", "t")]))
        );
        assert_eq!(
            found(http::Method::POST, "/v1beta1/projects/p/roles/grants"),
            Some(("grant", vec![("project", "p")]))
        );
        assert_eq!(
            found(http::Method::DELETE, "/v1beta1/projects/p/roles/r"),
            Some(("delete-role", vec![("project", "p"), ("role", "r")]))
        );
        assert_eq!(found(http::Method::PATCH, "/v1beta1/projects/p"), None);
        assert_eq!(
            found(http::Method::GET, "/v1beta1/projects/p/nothing"),
            None
        );
        assert_eq!(found(http::Method::GET, "/v1beta1/projects//roles"), None);
    }

    #[test]
    fn only_login_the_token_exchange_and_the_public_configuration_are_public() {
        let public: Vec<&str> = ROUTES
            .iter()
            .filter(|r| r.op.access == Access::Public)
            .map(|r| r.path)
            .collect();
        assert_eq!(
            public,
            [
                "/v1beta1/login",
                "/v1beta1/token-exchange",
                "/v1beta1/system/public-server-config"
            ]
        );
    }
}

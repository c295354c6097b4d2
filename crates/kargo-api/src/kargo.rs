//! Kargo's own vocabulary: the labels and annotations that mark Kargo objects, and the bodies of
//! the Kargo REST API (`/v1beta1`) shared by the server and the CLI.

use k8s_openapi::api::rbac::v1::PolicyRule;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

/// Label of a Kargo ServiceAccount.
pub const SERVICE_ACCOUNT_LABEL: &str = "rbac.kargo.akuity.io/service-account";
/// Label of a Kargo token Secret.
pub const TOKEN_LABEL: &str = "rbac.kargo.akuity.io/service-account-token";
/// Label of a Kargo API token Secret: upstream Kargo's token of a Kargo Role (bound to the
/// role's own ServiceAccount).
pub const API_TOKEN_LABEL: &str = "rbac.kargo.akuity.io/api-token";
/// Annotation: the object may be changed or deleted through the Kargo API.
pub const MANAGED_ANNOTATION: &str = "rbac.kargo.akuity.io/managed";
/// Annotation: the OIDC claims a role is granted to (on the role's ServiceAccount).
pub const CLAIMS_ANNOTATION: &str = "rbac.kargo.akuity.io/claims";
/// Prefix of the legacy claim annotations: `rbac.kargo.akuity.io/claim.<name>: v1,v2`.
pub const LEGACY_CLAIM_ANNOTATION_PREFIX: &str = "rbac.kargo.akuity.io/claim.";
/// Annotation: who created a Project, as `<claim>:<value>` (`email:a@b.c`), `admin` or
/// `kubernetes:<username>`.
pub const CREATE_ACTOR_ANNOTATION: &str = "kargo.akuity.io/create-actor";
/// Annotation: a role's description (on the role's ServiceAccount).
pub const DESCRIPTION_ANNOTATION: &str = "kargo.akuity.io/description";
/// Label of a project's namespace.
pub const PROJECT_LABEL: &str = "kargo.akuity.io/project";
/// The value of every Kargo label and of the managed annotation.
pub const TRUE: &str = "true";
/// What a redacted token reads as.
pub const REDACTED: &str = "*** REDACTED ***";
/// The namespace of system-level ServiceAccounts and roles.
pub const SYSTEM_NAMESPACE: &str = "kargo";

/// An OIDC claim a role is granted to: a name and the values that match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Claim {
    /// The claim's name (`email`, `groups`, `sub`).
    pub name: String,
    /// The values that match.
    #[serde(default)]
    pub values: Vec<String>,
}

/// A reference to a ServiceAccount.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Default)]
pub struct ServiceAccountReference {
    /// Its name.
    pub name: String,
    /// Its namespace.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
}

/// A Kargo Role: the trio of ServiceAccount, Role and RoleBinding of one name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Role {
    /// Name, namespace, creation time, description annotation.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Whether the trio may be changed through the Kargo API.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub kargo_managed: bool,
    /// OIDC claims the role is granted to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claims: Vec<Claim>,
    /// ServiceAccounts the role is granted to.
    #[serde(default)]
    pub service_accounts: Vec<ServiceAccountReference>,
    /// The permissions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<PolicyRule>,
}

/// `{"name": "t"}`: the body of a token creation, with an optional expiry: `expiresIn` (a
/// lifetime, `90d`, `12h`, `30m`, `30s`) or `expiresAt` (an RFC 3339 time), and an optional
/// `description`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct CreateTokenRequest {
    /// The token Secret's name.
    #[serde(default)]
    pub name: String,
    /// How long the token lives from its creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<String>,
    /// When the token stops working.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// What the token is for (`kargo.akuity.io/description`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `{"grace": "24h"}`: the body of a token rotation; how long the old value stays valid
/// (`0` or absent: it is refused at once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct RotateTokenRequest {
    /// The grace period of the old value (`0`, `30m`, `24h`, `7d`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace: Option<String>,
}

/// The ServiceAccounts of a grant or revocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAccountReferences {
    /// The accounts.
    #[serde(default)]
    pub service_accounts: Vec<ServiceAccountReference>,
}

/// The claims of a grant or revocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct UserClaims {
    /// The claims.
    #[serde(default)]
    pub claims: Vec<Claim>,
}

/// A permission to grant or revoke.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ResourceDetails {
    /// The resource type (`stages`).
    #[serde(default)]
    pub resource_type: String,
    /// One resource's name, or all when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource_name: String,
    /// The verbs.
    #[serde(default)]
    pub verbs: Vec<String>,
}

/// The body of `POST .../roles/grants` and `.../roles/revocations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct GrantRequest {
    /// The role's name.
    #[serde(default)]
    pub role: String,
    /// Claims to grant or revoke.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_claims: Option<UserClaims>,
    /// ServiceAccounts to grant or revoke.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_accounts: Option<ServiceAccountReferences>,
    /// A permission to grant or revoke.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_details: Option<ResourceDetails>,
}

/// The paths of the Kargo REST API (`/v1beta1/...`), for the server's routes and the CLI's
/// requests. `project: None` is the system level (namespace `kargo`) where the API has one.
pub mod paths {
    /// `/v1beta1/projects`.
    pub fn projects() -> String {
        "/v1beta1/projects".to_owned()
    }

    /// `/v1beta1/projects/{p}`.
    pub fn project(name: &str) -> String {
        format!("/v1beta1/projects/{name}")
    }

    fn scope(project: Option<&str>) -> String {
        match project {
            Some(p) => project_path(p),
            None => "/v1beta1/system".to_owned(),
        }
    }

    fn project_path(p: &str) -> String {
        format!("/v1beta1/projects/{p}")
    }

    /// `.../service-accounts`.
    pub fn service_accounts(project: Option<&str>) -> String {
        format!("{}/service-accounts", scope(project))
    }

    /// `.../service-accounts/{sa}`.
    pub fn service_account(project: Option<&str>, name: &str) -> String {
        format!("{}/service-accounts/{name}", scope(project))
    }

    /// `.../service-accounts/{sa}/tokens` (token creation).
    pub fn new_token(project: Option<&str>, service_account: &str) -> String {
        format!(
            "{}/service-accounts/{service_account}/tokens",
            scope(project)
        )
    }

    /// `.../service-account-tokens[?serviceAccount=sa]`.
    pub fn tokens(project: Option<&str>, service_account: Option<&str>) -> String {
        let base = format!("{}/service-account-tokens", scope(project));
        match service_account {
            Some(sa) => format!("{base}?serviceAccount={sa}"),
            None => base,
        }
    }

    /// `.../service-account-tokens/{t}`.
    pub fn token(project: Option<&str>, name: &str) -> String {
        format!("{}/service-account-tokens/{name}", scope(project))
    }

    /// `.../roles/{r}/api-tokens` (API token creation).
    pub fn new_api_token(project: Option<&str>, role: &str) -> String {
        format!("{}/roles/{role}/api-tokens", scope(project))
    }

    /// `.../api-tokens[?role=r]`.
    pub fn api_tokens(project: Option<&str>, role: Option<&str>) -> String {
        let base = format!("{}/api-tokens", scope(project));
        match role {
            Some(r) => format!("{base}?role={r}"),
            None => base,
        }
    }

    /// `.../api-tokens/{t}`.
    pub fn api_token(project: Option<&str>, name: &str) -> String {
        format!("{}/api-tokens/{name}", scope(project))
    }

    /// `{token}/{action}`, `token` the path of a token of either kind ([`token`] or
    /// [`api_token`]) and `action` `disable`, `enable` or `rotate`.
    pub fn token_action(token: &str, action: &str) -> String {
        format!("{token}/{action}")
    }

    /// `.../roles`.
    pub fn roles(project: Option<&str>) -> String {
        format!("{}/roles", scope(project))
    }

    /// `.../roles/{r}`.
    pub fn role(project: Option<&str>, name: &str) -> String {
        format!("{}/roles/{name}", scope(project))
    }

    /// `/v1beta1/projects/{p}/roles/grants`.
    pub fn grants(project: &str) -> String {
        format!("{}/roles/grants", project_path(project))
    }

    /// `/v1beta1/projects/{p}/roles/revocations`.
    pub fn revocations(project: &str) -> String {
        format!("{}/roles/revocations", project_path(project))
    }
}

/// Whether an object's annotations mark it as Kargo-managed.
pub fn is_managed(annotations: Option<&std::collections::BTreeMap<String, String>>) -> bool {
    annotations
        .and_then(|a| a.get(MANAGED_ANNOTATION))
        .is_some_and(|v| v == TRUE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_bodies_omit_empty_fields_but_always_list_service_accounts() {
        let role = Role {
            metadata: ObjectMeta {
                name: Some("r".into()),
                ..ObjectMeta::default()
            },
            ..Role::default()
        };
        assert_eq!(
            serde_json::to_string(&role).unwrap(),
            r#"{"metadata":{"name":"r"},"serviceAccounts":[]}"#
        );
    }

    #[test]
    fn paths_follow_the_rest_routes() {
        let p = Some("p");
        for (got, want) in [
            (paths::projects(), "/v1beta1/projects"),
            (paths::project("p"), "/v1beta1/projects/p"),
            (
                paths::service_accounts(p),
                "/v1beta1/projects/p/service-accounts",
            ),
            (
                paths::service_account(None, "kargo-admin"),
                "/v1beta1/system/service-accounts/kargo-admin",
            ),
            (
                paths::new_token(p, "sa"),
                "/v1beta1/projects/p/service-accounts/sa/tokens",
            ),
            (
                paths::tokens(p, Some("sa")),
                "/v1beta1/projects/p/service-account-tokens?serviceAccount=sa",
            ),
            (
                paths::tokens(None, None),
                "/v1beta1/system/service-account-tokens",
            ),
            (
                paths::token(p, "t"),
                "/v1beta1/projects/p/service-account-tokens/t",
            ),
            (
                paths::new_api_token(p, "r"),
                "/v1beta1/projects/p/roles/r/api-tokens",
            ),
            (
                paths::new_api_token(None, "kargo-admin"),
                "/v1beta1/system/roles/kargo-admin/api-tokens",
            ),
            (
                paths::api_tokens(p, Some("r")),
                "/v1beta1/projects/p/api-tokens?role=r",
            ),
            (paths::api_tokens(None, None), "/v1beta1/system/api-tokens"),
            (paths::api_token(p, "t"), "/v1beta1/projects/p/api-tokens/t"),
            (paths::roles(None), "/v1beta1/system/roles"),
            (paths::role(p, "r"), "/v1beta1/projects/p/roles/r"),
            (paths::grants("p"), "/v1beta1/projects/p/roles/grants"),
            (
                paths::revocations("p"),
                "/v1beta1/projects/p/roles/revocations",
            ),
        ] {
            assert_eq!(got, want);
        }
    }

    #[test]
    fn grant_requests_decode_each_form() {
        let g: GrantRequest = serde_json::from_str(
            r#"{"role":"developer","serviceAccounts":{"serviceAccounts":[{"name":"my-sa","namespace":"p"}]}}"#,
        )
        .unwrap();
        assert_eq!(g.role, "developer");
        assert_eq!(
            g.service_accounts.unwrap().service_accounts[0].name,
            "my-sa"
        );
        let g: GrantRequest = serde_json::from_str(
            r#"{"role":"r","resourceDetails":{"resourceType":"stages","resourceName":"dev","verbs":["promote"]}}"#,
        )
        .unwrap();
        assert_eq!(g.resource_details.unwrap().verbs, ["promote"]);
    }
}

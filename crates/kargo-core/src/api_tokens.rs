//! API tokens: upstream Kargo's tokens of a Kargo Role (its HEAD version's `kargo create token
//! --role R NAME`), beside the guide's tokens of Kargo ServiceAccounts. An API token is a Secret
//! of type `kubernetes.io/service-account-token` labeled `rbac.kargo.akuity.io/api-token: "true"`,
//! bound to (and owned by) the role's own ServiceAccount, so it authorizes exactly what the role
//! allows and dies with the role. Creating, filling, expiring, listing and deleting are the steps
//! of `tokens` ([`TokenKind::Api`]); this module has what is the role's: which ServiceAccount a
//! token is for, and upstream's checks and messages.
//!
//! Routes (upstream HEAD's): `POST .../roles/{role}/api-tokens`, `GET .../api-tokens[?role=R]`,
//! `GET`/`DELETE .../api-tokens/{apitoken}`, under `/v1beta1/projects/{project}` or
//! `/v1beta1/system` (the system roles, read only, in namespace `kargo`); and this server's
//! `POST .../api-tokens/{apitoken}/disable|enable|rotate`, the lifecycle both kinds share
//! (`token_lifecycle`).

use kargo_api::kargo::{CreateTokenRequest, is_managed};
use kargo_api::resources::{SECRETS, SERVICEACCOUNTS};
use kargo_api::well_known::SERVICE_ACCOUNT_TOKEN_TYPE;
use serde_json::Value;

use crate::roles::not_a_kargo_service_account;
use crate::tokens::{TokenKind, not_managed, redact};
use crate::{Error, Kargo, Result, Scope, q};
use kargo_auth::rbac::UserInfo;
use kargo_registry::status::Status;
use kargo_registry::{Meta, Object};

/// An error of reading what a token operation names, with upstream's prefix
/// (`error getting ServiceAccount "r" in namespace "p": serviceaccounts "r" not found`); upstream
/// answers a Kubernetes error with its whole wrapped message.
fn getting(prefix: String, error: Error) -> Error {
    match error {
        Error::Api(mut status) => {
            status.message = format!("{prefix}: {}", status.message);
            Error::Api(status)
        }
        other => other,
    }
}

/// 404 `Role.rbac.kargo.akuity.io "r" not found`: a system ServiceAccount that is no system
/// role, as upstream's Kubernetes `NotFound` of resource `Role` in group `rbac.kargo.akuity.io`.
fn no_system_role(name: &str) -> Error {
    Error::Api(Status::failure(
        404,
        "NotFound",
        format!("Role.rbac.kargo.akuity.io {} not found", q(name)),
    ))
}

/// 409 `Operation cannot be fulfilled on secrets "t": <why>`, as upstream refuses to delete a
/// Secret that is not a Kargo-managed API token.
fn cannot_delete(name: &str, why: String) -> Error {
    Error::Api(Status::conflict(&SECRETS, name, &why))
}

impl Kargo {
    /// The ServiceAccount of role `role` in `ns`, read as `user` (`get serviceaccounts`): in a
    /// project any role, Kargo-managed or not (as upstream: even `default`), but not a Kargo
    /// ServiceAccount (400); at the system level a system role (404 otherwise).
    pub(crate) async fn token_role(
        &self,
        user: &UserInfo,
        scope: &Scope,
        role: &str,
    ) -> Result<Object> {
        let ns = scope.namespace();
        let sa = self
            .get_as(user, &SERVICEACCOUNTS, Some(ns), role)
            .await
            .map_err(|e| {
                getting(
                    format!(
                        "error getting ServiceAccount {} in namespace {}",
                        q(role),
                        q(ns)
                    ),
                    e,
                )
            })?;
        match scope {
            Scope::Project(_) => not_a_kargo_service_account(&sa)?,
            Scope::System => {
                let name = sa.name().to_owned();
                if self.system_role(sa.clone()).await?.is_none() {
                    return Err(no_system_role(&name));
                }
            }
        }
        Ok(sa)
    }

    /// The Secret `name` in `ns`, read as `user` (`get secrets`); upstream's 404
    /// `error getting token Secret "t" in namespace "p": secrets "t" not found`.
    async fn token_secret_named(&self, user: &UserInfo, ns: &str, name: &str) -> Result<Object> {
        self.get_as(user, &SECRETS, Some(ns), name)
            .await
            .map_err(|e| {
                getting(
                    format!(
                        "error getting token Secret {} in namespace {}",
                        q(name),
                        q(ns)
                    ),
                    e,
                )
            })
    }

    /// `POST .../roles/{role}/api-tokens`: a token of the role's ServiceAccount, with the
    /// lifetime the request or the server's bounds give; answered unredacted, the only time it
    /// is shown.
    pub async fn create_api_token(
        &self,
        user: &UserInfo,
        scope: &Scope,
        role: &str,
        request: &CreateTokenRequest,
    ) -> Result<Object> {
        self.namespace_of(scope).await?;
        let name = request.name.as_str();
        if name.is_empty() {
            return Err(Error::BadRequest("name should not be empty".into()));
        }
        let checked = self.checked_request(request)?;
        let sa = self.token_role(user, scope, role).await?;
        self.issue_token(user, TokenKind::Api, &sa, name, checked)
            .await
    }

    /// `GET .../api-tokens[?role=R]`: the API tokens (of one role, which must exist), redacted,
    /// sorted by name (a `SecretList`).
    pub async fn list_api_tokens(
        &self,
        user: &UserInfo,
        scope: &Scope,
        role: Option<&str>,
    ) -> Result<Value> {
        let ns = self.namespace_of(scope).await?;
        if let Some(role) = role {
            self.token_role(user, scope, role).await?;
        }
        self.token_list(user, TokenKind::Api, ns, role).await
    }

    /// Reads the API token Secret `name` in `ns` as `user`: upstream's 404
    /// ([`Kargo::token_secret_named`]), 400 if the Secret is no API token.
    pub(crate) async fn api_token(&self, user: &UserInfo, ns: &str, name: &str) -> Result<Object> {
        let secret = self.token_secret_named(user, ns, name).await?;
        if !TokenKind::Api.is(&secret) {
            return Err(Error::BadRequest(TokenKind::Api.not_labeled(ns, name)));
        }
        Ok(secret)
    }

    /// `GET .../api-tokens/{apitoken}`: redacted; 400 if the Secret is no API token.
    pub async fn get_api_token(
        &self,
        user: &UserInfo,
        scope: &Scope,
        name: &str,
    ) -> Result<Object> {
        let ns = self.namespace_of(scope).await?;
        let mut secret = self.api_token(user, ns, name).await?;
        redact(&mut secret);
        Ok(secret)
    }

    /// `DELETE .../api-tokens/{apitoken}`: only a Kargo-managed API token, else upstream's 409
    /// (checked in its order: the type, the account annotation, the label, the managed
    /// annotation). The token is refused from the next request on.
    pub async fn delete_api_token(&self, user: &UserInfo, scope: &Scope, name: &str) -> Result<()> {
        let ns = self.namespace_of(scope).await?;
        let secret = self.token_secret_named(user, ns, name).await?;
        let named = format!("Kubernetes Secret {} in namespace {}", q(name), q(ns));
        if secret.get("type").and_then(Value::as_str) != Some(SERVICE_ACCOUNT_TOKEN_TYPE) {
            return Err(cannot_delete(
                name,
                format!("{named} is not a service account token"),
            ));
        }
        if secret
            .annotation(kargo_api::well_known::SERVICE_ACCOUNT_NAME_ANNOTATION)
            .is_none()
        {
            return Err(cannot_delete(
                name,
                format!("{named} is missing the service account annotation"),
            ));
        }
        if !TokenKind::Api.is(&secret) {
            return Err(cannot_delete(name, TokenKind::Api.not_labeled(ns, name)));
        }
        if !is_managed(Some(&secret.string_map("annotations"))) {
            return Err(cannot_delete(name, not_managed(ns, name)));
        }
        self.delete_token_secret(user, &secret).await
    }
}

#[cfg(test)]
mod tests {
    use kargo_api::kargo::{API_TOKEN_LABEL, MANAGED_ANNOTATION};
    use kargo_api::well_known::SERVICE_ACCOUNT_NAME_ANNOTATION;
    use serde_json::json;

    use super::*;
    use crate::testing::Fixture;

    fn project() -> Scope {
        Scope::Project("p".into())
    }

    fn named(name: &str) -> CreateTokenRequest {
        CreateTokenRequest {
            name: name.into(),
            ..CreateTokenRequest::default()
        }
    }

    /// Asserts that an operation failed with `code` and `message`.
    fn assert_error<T: std::fmt::Debug>(result: Result<T>, code: u16, message: &str) {
        let err = result.expect_err("the operation fails");
        assert_eq!((err.code(), err.to_string()), (code, message.to_owned()));
    }

    /// Project `p` with role `dev` and Kargo ServiceAccount `ci`.
    async fn fixture() -> Fixture {
        let f = Fixture::with_project("p").await;
        let role = serde_json::from_value(json!({"metadata": {"name": "dev"}})).unwrap();
        f.kargo
            .create_role(&f.admin, &project(), role)
            .await
            .unwrap();
        f.service_account(&project(), "ci").await;
        f
    }

    #[tokio::test]
    async fn an_api_token_is_a_labeled_token_secret_of_the_roles_service_account() {
        let f = fixture().await;
        let k = &f.kargo;
        let secret = k
            .create_api_token(&f.admin, &project(), "dev", &named("t"))
            .await
            .unwrap();
        assert_eq!(secret["type"], "kubernetes.io/service-account-token");
        assert_eq!(
            secret["metadata"]["labels"],
            json!({API_TOKEN_LABEL: "true"})
        );
        let annotations = &secret["metadata"]["annotations"];
        assert_eq!(annotations["kubernetes.io/service-account.name"], "dev");
        assert_eq!(annotations[MANAGED_ANNOTATION], "true");
        assert_eq!(secret["metadata"]["ownerReferences"][0]["name"], "dev");
        assert!(
            secret["data"]["token"]
                .as_str()
                .is_some_and(|t| !t.is_empty())
        );

        let list = k
            .list_api_tokens(&f.admin, &project(), Some("dev"))
            .await
            .unwrap();
        assert_eq!(list["items"][0]["metadata"]["name"], "t");
        assert_eq!(
            list["items"][0]["data"]["token"],
            crate::tokens::redacted_value()
        );
        let none = k
            .list_api_tokens(&f.admin, &project(), Some("kargo-viewer"))
            .await
            .unwrap();
        assert_eq!(none["items"], json!([]));
        let got = k.get_api_token(&f.admin, &project(), "t").await.unwrap();
        assert_eq!(got["data"]["token"], crate::tokens::redacted_value());
        // A ServiceAccount token is not an API token, nor the other way round.
        let sat = k
            .create_token(&f.admin, &project(), "ci", &named("sat"))
            .await
            .unwrap();
        assert_eq!(sat["metadata"]["name"], "sat");
        let all = k.list_api_tokens(&f.admin, &project(), None).await.unwrap();
        assert_eq!(all["items"].as_array().map(Vec::len), Some(1));
        assert_error(
            k.get_token(&f.admin, &project(), "t").await,
            400,
            r#"Kubernetes Secret "t" in namespace "p" is not labeled as a Kargo ServiceAccount token"#,
        );

        k.delete_api_token(&f.admin, &project(), "t").await.unwrap();
        assert!(f.stored(&SECRETS, "p", "t").await.is_none());
    }

    #[tokio::test]
    async fn api_tokens_are_disabled_enabled_and_rotated_as_service_account_tokens_are() {
        use kargo_api::kargo::RotateTokenRequest;
        use kargo_api::token_lifecycle::{DISABLED_ANNOTATION, PREVIOUS_TOKEN_SHA256_ANNOTATION};

        let f = fixture().await;
        let k = &f.kargo;
        let admin = &f.admin;
        let created = k
            .create_api_token(admin, &project(), "dev", &named("t"))
            .await
            .unwrap();
        let disabled = k
            .set_token_disabled(admin, TokenKind::Api, &project(), "t", true)
            .await
            .unwrap();
        assert_eq!(disabled["data"]["token"], crate::tokens::redacted_value());
        let stored = f.stored(&SECRETS, "p", "t").await.unwrap();
        assert_eq!(stored.annotation(DISABLED_ANNOTATION), Some("true"));
        k.set_token_disabled(admin, TokenKind::Api, &project(), "t", false)
            .await
            .unwrap();
        let stored = f.stored(&SECRETS, "p", "t").await.unwrap();
        assert_eq!(stored.annotation(DISABLED_ANNOTATION), None);

        let grace = RotateTokenRequest {
            grace: Some("1h".into()),
        };
        let rotated = k
            .rotate_token(admin, TokenKind::Api, &project(), "t", &grace)
            .await
            .unwrap();
        assert_ne!(rotated["data"]["token"], created["data"]["token"]);
        assert_eq!(
            rotated.annotation(SERVICE_ACCOUNT_NAME_ANNOTATION),
            Some("dev")
        );
        assert!(
            rotated
                .annotation(PREVIOUS_TOKEN_SHA256_ANNOTATION)
                .is_some()
        );
        assert!(TokenKind::Api.is(&rotated));

        // Each kind's operations refuse the other kind's tokens as its `GET` does.
        k.create_token(admin, &project(), "ci", &named("sat"))
            .await
            .unwrap();
        let not_api =
            r#"Kubernetes Secret "sat" in namespace "p" is not labeled as a Kargo API token"#;
        assert_error(
            k.set_token_disabled(admin, TokenKind::Api, &project(), "sat", true)
                .await,
            400,
            not_api,
        );
        assert_error(
            k.rotate_token(admin, TokenKind::Api, &project(), "sat", &grace)
                .await,
            400,
            not_api,
        );
        let not_sat = r#"Kubernetes Secret "t" in namespace "p" is not labeled as a Kargo ServiceAccount token"#;
        assert_error(
            k.set_token_disabled(admin, TokenKind::ServiceAccount, &project(), "t", true)
                .await,
            400,
            not_sat,
        );
        assert_error(
            k.rotate_token(admin, TokenKind::ServiceAccount, &project(), "t", &grace)
                .await,
            400,
            not_sat,
        );
        assert_error(
            k.set_token_disabled(admin, TokenKind::Api, &project(), "nope", true)
                .await,
            404,
            r#"error getting token Secret "nope" in namespace "p": secrets "nope" not found"#,
        );
        let stored = f.stored(&SECRETS, "p", "sat").await.unwrap();
        assert_eq!(stored.annotation(DISABLED_ANNOTATION), None);
    }

    #[tokio::test]
    async fn api_token_errors_are_upstreams() {
        let f = fixture().await;
        let k = &f.kargo;
        let admin = &f.admin;
        k.create_api_token(admin, &project(), "dev", &named("t"))
            .await
            .unwrap();
        k.create_token(admin, &project(), "ci", &named("sat"))
            .await
            .unwrap();
        assert_error(
            k.create_api_token(admin, &project(), "dev", &named(""))
                .await,
            400,
            "name should not be empty",
        );
        assert_error(
            k.create_api_token(admin, &project(), "nope", &named("x"))
                .await,
            404,
            r#"error getting ServiceAccount "nope" in namespace "p": serviceaccounts "nope" not found"#,
        );
        assert_error(
            k.create_api_token(admin, &project(), "ci", &named("x"))
                .await,
            400,
            r#"ServiceAccount "ci" in namespace "p" is a Kargo ServiceAccount, not a Kargo Role"#,
        );
        assert_error(
            k.create_api_token(admin, &project(), "dev", &named("t"))
                .await,
            409,
            r#"error creating token Secret "t" for ServiceAccount "dev" in namespace "p": secrets "t" already exists"#,
        );
        assert_error(
            k.create_api_token(&f.admin, &Scope::Project("q".into()), "dev", &named("x"))
                .await,
            404,
            r#"projects.kargo.akuity.io "q" not found"#,
        );
        assert_error(
            k.list_api_tokens(admin, &project(), Some("nope")).await,
            404,
            r#"error getting ServiceAccount "nope" in namespace "p": serviceaccounts "nope" not found"#,
        );
        assert_error(
            k.get_api_token(admin, &project(), "nope").await,
            404,
            r#"error getting token Secret "nope" in namespace "p": secrets "nope" not found"#,
        );
        assert_error(
            k.get_api_token(admin, &project(), "sat").await,
            400,
            r#"Kubernetes Secret "sat" in namespace "p" is not labeled as a Kargo API token"#,
        );
        assert_error(
            k.delete_api_token(admin, &project(), "sat").await,
            409,
            r#"Operation cannot be fulfilled on secrets "sat": Kubernetes Secret "sat" in namespace "p" is not labeled as a Kargo API token"#,
        );
        assert_error(
            k.delete_api_token(admin, &project(), "nope").await,
            404,
            r#"error getting token Secret "nope" in namespace "p": secrets "nope" not found"#,
        );
    }
}

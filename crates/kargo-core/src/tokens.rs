//! Token Secrets, of both kinds ([`TokenKind`]): Secrets of type
//! `kubernetes.io/service-account-token`, labeled as Kargo tokens, naming their account in
//! `kubernetes.io/service-account.name` and owned by it. The token controller fills
//! `data.token`; creation answers once it has, with the token; reads redact it.
//!
//! This module has the steps both kinds share (the Secret's body, issuing and waiting, listing,
//! deleting) and the routes of Kargo ServiceAccounts' tokens (`.../service-account-tokens`); the
//! routes of Kargo Roles' API tokens are in `api_tokens`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures::StreamExt;
use kargo_api::expiry::EXPIRES_AT_ANNOTATION;
use kargo_api::kargo::{
    API_TOKEN_LABEL, CreateTokenRequest, MANAGED_ANNOTATION, REDACTED, TOKEN_LABEL, TRUE,
    is_managed,
};
use kargo_api::resources::{SECRETS, SERVICEACCOUNTS};
use kargo_api::selector::{FieldSelector, LabelSelector, escape_field_value};
use kargo_api::well_known::{SERVICE_ACCOUNT_NAME_ANNOTATION, SERVICE_ACCOUNT_TOKEN_TYPE};
use serde_json::{Value, json};

use super::service_accounts::sorted_list;
use super::{Error, Kargo, Result, Scope, q};
use kargo_auth::rbac::UserInfo;
use kargo_registry::status::Status;
use kargo_registry::{
    DeleteOptions, ListOptions, Meta, Object, Target, WatchEventType, WatchOptions, watch,
};

/// The two kinds of Kargo token. Both are Secrets of type `kubernetes.io/service-account-token`
/// bound to a ServiceAccount, minted, checked, expired and revoked the same way; they differ in
/// their label and in what they belong to.
/// The REST API names the kind by its routes (`.../service-account-tokens/{t}` or
/// `.../api-tokens/{apitoken}`); the operations both kinds have take it as a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// A Kargo ServiceAccount's token (`rbac.kargo.akuity.io/service-account-token`; the
    /// guide's `kargo create serviceaccounttoken`).
    ServiceAccount,
    /// A Kargo Role's API token, bound to the role's own ServiceAccount
    /// (`rbac.kargo.akuity.io/api-token`; upstream Kargo's `kargo create token --role`).
    Api,
}

impl TokenKind {
    /// The label that marks a Secret as a token of this kind (value `"true"`).
    pub(crate) fn label(self) -> &'static str {
        match self {
            TokenKind::ServiceAccount => TOKEN_LABEL,
            TokenKind::Api => API_TOKEN_LABEL,
        }
    }

    /// The kind of a Secret, if it is a Kargo token: the token type and one of the labels.
    pub(crate) fn of(secret: &Value) -> Option<TokenKind> {
        [TokenKind::ServiceAccount, TokenKind::Api]
            .into_iter()
            .find(|kind| kind.is(secret))
    }

    /// Whether a Secret is a token of this kind: the token type and the label.
    pub(crate) fn is(self, secret: &Value) -> bool {
        secret.get("type").and_then(Value::as_str) == Some(SERVICE_ACCOUNT_TOKEN_TYPE)
            && secret.label(self.label()) == Some(TRUE)
    }

    /// 400's message for a Secret that is not a token of this kind:
    /// `Kubernetes Secret "t" in namespace "p" is not labeled as a Kargo API token`.
    pub(crate) fn not_labeled(self, namespace: &str, name: &str) -> String {
        let what = match self {
            TokenKind::ServiceAccount => "Kargo ServiceAccount token",
            TokenKind::Api => "Kargo API token",
        };
        format!(
            "Kubernetes Secret {} in namespace {} is not labeled as a {what}",
            q(name),
            q(namespace)
        )
    }

    /// The label selector of the tokens of this kind.
    fn selector(self) -> Option<LabelSelector> {
        LabelSelector::parse(&format!("{}={TRUE}", self.label())).ok()
    }
}

/// The current Unix second, rounded up: a token asked to live 3 s lives at least 3 s (and less
/// than 4), since it is refused from the second its expiry names.
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() + u64::from(d.subsec_nanos() > 0))
        .map(|s| i64::try_from(s).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `data.token` as reads show it: base64 of `*** REDACTED ***`.
pub(crate) fn redacted_value() -> String {
    STANDARD.encode(REDACTED)
}

/// Replaces `data.token` (if the key is there, whatever its value) by the redacted value;
/// everything else stays.
pub(crate) fn redact(secret: &mut Value) {
    if let Some(token) = secret
        .get_mut("data")
        .and_then(Value::as_object_mut)
        .and_then(|d| d.get_mut("token"))
    {
        *token = Value::String(redacted_value());
    }
}

/// Whether a Secret is a Kargo ServiceAccount token: the token type and the label.
pub(crate) fn is_kargo_token(secret: &Value) -> bool {
    TokenKind::ServiceAccount.is(secret)
}

fn has_token(secret: &Value) -> bool {
    secret
        .get("data")
        .and_then(|d| d.get("token"))
        .and_then(Value::as_str)
        .is_some_and(|t| !t.is_empty())
}

fn not_a_token(namespace: &str, name: &str) -> Error {
    Error::BadRequest(TokenKind::ServiceAccount.not_labeled(namespace, name))
}

/// `Kubernetes Secret "t" in namespace "p" is not annotated as Kargo-managed`.
pub(crate) fn not_managed(namespace: &str, name: &str) -> String {
    format!(
        "Kubernetes Secret {} in namespace {} is not annotated as Kargo-managed",
        q(name),
        q(namespace)
    )
}

/// The body of a token Secret of kind `kind` for account `account` (uid `uid`).
pub(crate) fn token_secret(
    kind: TokenKind,
    namespace: &str,
    name: &str,
    account: &str,
    uid: &str,
) -> Value {
    json!({
        "apiVersion": SECRETS.api_version(),
        "kind": SECRETS.kind,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {kind.label(): TRUE},
            "annotations": {SERVICE_ACCOUNT_NAME_ANNOTATION: account, MANAGED_ANNOTATION: TRUE},
            "ownerReferences": [{
                "apiVersion": SERVICEACCOUNTS.api_version(),
                "kind": SERVICEACCOUNTS.kind,
                "name": account,
                "uid": uid,
            }],
        },
        "type": SERVICE_ACCOUNT_TOKEN_TYPE,
    })
}

/// A token creation's request, checked ([`Kargo::checked_request`]).
pub(crate) struct CheckedRequest<'r> {
    /// `kargo.akuity.io/expires-at`, if the token expires.
    pub expires_at: Option<String>,
    /// `kargo.akuity.io/description`, if given.
    pub description: Option<&'r str>,
}

impl Kargo {
    /// Reads a token Secret of kind `kind` as `user`, with the errors the `GET` of that kind
    /// answers: a ServiceAccount token's ([`Kargo::token`]) or an API token's (upstream's,
    /// `Kargo::api_token`). A token of the other kind is 400 `... is not labeled as a ...`.
    pub(crate) async fn token_of_kind(
        &self,
        user: &UserInfo,
        kind: TokenKind,
        ns: &str,
        name: &str,
    ) -> Result<Object> {
        match kind {
            TokenKind::ServiceAccount => self.token(user, ns, name).await,
            TokenKind::Api => self.api_token(user, ns, name).await,
        }
    }

    /// The ServiceAccount `account` that a token of kind `kind` is bound to, read as `user` and
    /// checked as the token's creation checks it: a Kargo ServiceAccount, or a Kargo Role's.
    pub(crate) async fn token_account(
        &self,
        user: &UserInfo,
        kind: TokenKind,
        scope: &Scope,
        account: &str,
    ) -> Result<Object> {
        match kind {
            TokenKind::ServiceAccount => {
                let ns = self.namespace_of(scope).await?;
                self.kargo_service_account(user, ns, account).await
            }
            TokenKind::Api => self.token_role(user, scope, account).await,
        }
    }

    /// Reads a Kargo token Secret as `user`: 404 if missing, 400 if not a Kargo token.
    pub(crate) async fn token(&self, user: &UserInfo, ns: &str, name: &str) -> Result<Object> {
        let secret = self.get_as(user, &SECRETS, Some(ns), name).await?;
        if !is_kargo_token(&secret) {
            return Err(not_a_token(ns, name));
        }
        Ok(secret)
    }

    /// `POST .../service-accounts/{sa}/tokens`: creates the token Secret (with its
    /// `kargo.akuity.io/expires-at` when the request or the server's bounds give one), waits for
    /// its token and answers it unredacted (the only time it is shown).
    pub async fn create_token(
        &self,
        user: &UserInfo,
        scope: &Scope,
        account: &str,
        request: &CreateTokenRequest,
    ) -> Result<Object> {
        let ns = self.namespace_of(scope).await?;
        let name = request.name.as_str();
        if name.is_empty() {
            return Err(Error::BadRequest("name should not be empty".into()));
        }
        let checked = self.checked_request(request)?;
        let sa = self.kargo_service_account(user, ns, account).await?;
        self.issue_token(user, TokenKind::ServiceAccount, &sa, name, checked)
            .await
    }

    /// What a token creation asks for, checked: when the token expires
    /// (`kargo.akuity.io/expires-at`, within the server's bounds) and its description; 400 for
    /// a malformed or too long lifetime or a bad description.
    pub(crate) fn checked_request<'r>(
        &self,
        request: &'r CreateTokenRequest,
    ) -> Result<CheckedRequest<'r>> {
        Ok(CheckedRequest {
            expires_at: self.lifetimes.expires_at(request, unix_now())?,
            description: super::token_lifecycle::description_of(request)?,
        })
    }

    /// Creates the token Secret `name` of kind `kind` for ServiceAccount `sa` (already read and
    /// checked) as `user` (`create secrets`), as `checked` says; waits for its token and
    /// answers it unredacted. A name taken is 409 `error creating token Secret "t" for
    /// ServiceAccount "sa" in namespace "p": secrets "t" already exists`.
    pub(crate) async fn issue_token(
        &self,
        user: &UserInfo,
        kind: TokenKind,
        sa: &Object,
        name: &str,
        checked: CheckedRequest<'_>,
    ) -> Result<Object> {
        let ns = sa.namespace().unwrap_or_default();
        let account = sa.name();
        self.authorize(user, "create", &SECRETS, ns, name)?;
        let mut secret = token_secret(kind, ns, name, account, sa.uid());
        if let Some(at) = checked.expires_at {
            secret["metadata"]["annotations"][EXPIRES_AT_ANNOTATION] = Value::String(at);
        }
        if let Some(description) = checked.description {
            super::token_lifecycle::set_description(&mut secret, description);
        }
        if let Some(minter) = &self.minter {
            minter.fill(&mut secret, ns, name, account, sa.uid())?;
        }
        let written = self
            .registry
            .create(&SECRETS, Some(ns), secret, &crate::kargo_writes())
            .await
            .map_err(|mut status| {
                status.message = format!(
                    "error creating token Secret {} for ServiceAccount {} in namespace {}: {}",
                    q(name),
                    q(account),
                    q(ns),
                    status.message
                );
                Error::Api(status)
            })?;
        let filled = self.wait_for_token(ns, name, written.object).await?;
        if self.minter.is_some() {
            kargo_auth::mint::record_issued(&self.registry, &filled, account);
        }
        self.await_seen(&filled).await;
        Ok(filled)
    }

    /// Waits for the token controller to fill `data.token` of a Secret just created, watching
    /// that one Secret, at most `token_wait`.
    async fn wait_for_token(&self, ns: &str, name: &str, created: Object) -> Result<Object> {
        if has_token(&created) {
            return Ok(created);
        }
        let field = format!("metadata.name={}", escape_field_value(name));
        let options = WatchOptions {
            list: ListOptions {
                field_selector: FieldSelector::parse(&field).ok(),
                resource_version: Some(created.resource_version().to_owned()),
                ..ListOptions::default()
            },
            ..WatchOptions::default()
        };
        let timeout = self.token_wait;
        let waited = tokio::time::timeout(timeout, async {
            let mut events = watch::watch(&self.registry, &SECRETS, Some(ns), options).await?;
            while let Some(event) = events.next().await {
                match event.kind {
                    WatchEventType::Deleted => return Err(Status::not_found(&SECRETS, name).into()),
                    WatchEventType::Added | WatchEventType::Modified
                        if has_token(&event.object) =>
                    {
                        return Ok(event.object);
                    }
                    _ => {}
                }
            }
            // The watch ended (its history was compacted): read it once more.
            let secret = self
                .registry
                .get(Target::new(&SECRETS, Some(ns), name))
                .await?;
            if has_token(&secret) {
                Ok(secret)
            } else {
                Err(Error::TokenTimeout {
                    namespace: ns.to_owned(),
                    name: name.to_owned(),
                })
            }
        })
        .await;
        waited.unwrap_or_else(|_| {
            Err(Error::TokenTimeout {
                namespace: ns.to_owned(),
                name: name.to_owned(),
            })
        })
    }

    /// `GET .../service-account-tokens[?serviceAccount=sa]`: the Kargo tokens (of one account),
    /// redacted, sorted by name (a `SecretList`).
    pub async fn list_tokens(
        &self,
        user: &UserInfo,
        scope: &Scope,
        account: Option<&str>,
    ) -> Result<Value> {
        let ns = self.namespace_of(scope).await?;
        if let Some(account) = account {
            self.kargo_service_account(user, ns, account).await?;
        }
        self.token_list(user, TokenKind::ServiceAccount, ns, account)
            .await
    }

    /// The tokens of kind `kind` in `ns` (of one account), read as `user` (`list secrets`),
    /// redacted, sorted by name (a `SecretList`).
    pub(crate) async fn token_list(
        &self,
        user: &UserInfo,
        kind: TokenKind,
        ns: &str,
        account: Option<&str>,
    ) -> Result<Value> {
        self.authorize(user, "list", &SECRETS, ns, "")?;
        let options = ListOptions {
            label_selector: kind.selector(),
            ..ListOptions::default()
        };
        let mut list = self.registry.list(&SECRETS, Some(ns), &options).await?;
        list.items.retain(|s| {
            kind.is(s)
                && account.is_none_or(|a| s.annotation(SERVICE_ACCOUNT_NAME_ANNOTATION) == Some(a))
        });
        for item in &mut list.items {
            redact(item);
        }
        Ok(sorted_list(&SECRETS, list))
    }

    /// `GET .../service-account-tokens/{t}`: redacted.
    pub async fn get_token(&self, user: &UserInfo, scope: &Scope, name: &str) -> Result<Object> {
        let ns = self.namespace_of(scope).await?;
        let mut secret = self.token(user, ns, name).await?;
        redact(&mut secret);
        Ok(secret)
    }

    /// `DELETE .../service-account-tokens/{t}`: only managed Kargo tokens. The token is refused
    /// from the next request on.
    pub async fn delete_token(&self, user: &UserInfo, scope: &Scope, name: &str) -> Result<()> {
        let ns = self.namespace_of(scope).await?;
        let secret = self.token(user, ns, name).await?;
        if !is_managed(Some(&secret.string_map("annotations"))) {
            return Err(Error::BadRequest(not_managed(ns, name)));
        }
        self.delete_token_secret(user, &secret).await
    }

    /// Deletes a token Secret (already read and checked) as `user` (`delete secrets`). The token
    /// is refused from the next request on.
    pub(crate) async fn delete_token_secret(&self, user: &UserInfo, secret: &Object) -> Result<()> {
        let ns = secret.namespace().unwrap_or_default();
        let name = secret.name();
        self.authorize(user, "delete", &SECRETS, ns, name)?;
        let deleted = self
            .registry
            .delete(
                Target::new(&SECRETS, Some(ns), name),
                &DeleteOptions::default(),
            )
            .await?;
        self.await_seen(deleted.object()).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Redacts `input` and compares with `expected`.
    fn check(input: Value, expected: Value) {
        let mut secret = input;
        redact(&mut secret);
        assert_eq!(secret, expected);
    }

    #[test]
    fn redaction_replaces_only_the_token() {
        let r = redacted_value();
        assert_eq!(r, "KioqIFJFREFDVEVEICoqKg==");
        check(
            json!({"data": {"token": "c2VjcmV0", "ca.crt": "Y2E="}}),
            json!({"data": {"token": r, "ca.crt": "Y2E="}}),
        );
        check(
            json!({"data": {"token": ""}}),
            json!({"data": {"token": r}}),
        );
        check(
            json!({"data": {"ca.crt": "Y2E="}}),
            json!({"data": {"ca.crt": "Y2E="}}),
        );
        check(json!({"type": "x"}), json!({"type": "x"}));
    }

    /// No token controller runs here: a token creation gives up after the wait with a 504.
    #[tokio::test]
    async fn a_token_never_filled_times_out_with_a_504() {
        use std::sync::Arc;
        use std::time::Duration;

        use kargo_api::resources::{NAMESPACES, PROJECTS, SERVICEACCOUNTS};

        use kargo_auth::Authorizer;
        use kargo_auth::authn::Authenticator;
        use kargo_auth::view::AuthView;
        use kargo_registry::Registry;

        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn kargo_store::Store> =
            Arc::new(kargo_store::sqlite::SqliteStore::open(&dir.path().join("db")).unwrap());
        let keys = kargo_auth::keys::load_or_create(&store).await.unwrap();
        let registry = Registry::new(store);
        let options = crate::kargo_writes();
        for (rt, ns, body) in [
            (&PROJECTS, None, json!({"metadata": {"name": "p"}})),
            (&NAMESPACES, None, json!({"metadata": {"name": "p"}})),
            (
                &SERVICEACCOUNTS,
                Some("p"),
                json!({"metadata": {"name": "sa", "labels": {"rbac.kargo.akuity.io/service-account": "true"}}}),
            ),
        ] {
            registry.create(rt, ns, body, &options).await.unwrap();
        }
        let (_, synced) = tokio::sync::watch::channel(kargo_store::Revision::ZERO);
        let kargo = Kargo::new(
            registry,
            Arc::new(Authorizer::new(AuthView::new(keys))),
            synced,
        )
        .with_token_wait(Duration::from_millis(200));
        let err = kargo
            .create_token(
                &Authenticator::admin_user(),
                &Scope::Project("p".into()),
                "sa",
                &CreateTokenRequest {
                    name: "t".into(),
                    ..CreateTokenRequest::default()
                },
            )
            .await
            .unwrap_err();
        assert_eq!(
            (err.code(), err.to_string()),
            (
                504,
                r#"timed out waiting for the token of Secret "t" in namespace "p""#.to_owned()
            )
        );
    }

    #[test]
    fn kargo_tokens_have_the_type_and_the_label() {
        let token = token_secret(TokenKind::ServiceAccount, "p", "t", "sa", "uid-1");
        assert!(is_kargo_token(&token));
        assert_eq!(TokenKind::of(&token), Some(TokenKind::ServiceAccount));
        let api = token_secret(TokenKind::Api, "p", "t", "role", "uid-1");
        assert_eq!(TokenKind::of(&api), Some(TokenKind::Api));
        assert!(!is_kargo_token(&api));
        assert_eq!(api["metadata"]["labels"], json!({API_TOKEN_LABEL: "true"}));
        assert_eq!(token["metadata"]["ownerReferences"][0]["uid"], "uid-1");
        assert_eq!(
            token["metadata"]["annotations"][SERVICE_ACCOUNT_NAME_ANNOTATION],
            "sa"
        );
        let mut opaque = token.clone();
        opaque["type"] = json!("Opaque");
        assert!(!is_kargo_token(&opaque));
        assert_eq!(TokenKind::of(&opaque), None);
        let mut unlabeled = token;
        unlabeled["metadata"]["labels"] = json!({});
        assert!(!is_kargo_token(&unlabeled));
    }
}

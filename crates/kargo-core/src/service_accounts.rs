//! Kargo ServiceAccounts: Kubernetes ServiceAccounts labeled
//! `rbac.kargo.akuity.io/service-account: "true"`. Created through Kargo they are also annotated
//! as Kargo-managed; only managed ones may be deleted through Kargo. Deleting one deletes its
//! tokens (owner references, and the token controller) and removes it from every RoleBinding, so
//! that a new account of the same name inherits no grants.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kargo_api::kargo::{MANAGED_ANNOTATION, SERVICE_ACCOUNT_LABEL, TRUE, is_managed};
use kargo_api::resources::{ROLEBINDINGS, SECRETS, SERVICEACCOUNTS};
use kargo_api::selector::LabelSelector;
use kargo_api::well_known::SERVICE_ACCOUNT_NAME_ANNOTATION;
use serde::Deserialize;
use serde_json::{Value, json};

use super::roles::is_kargo_service_account;
use super::tokens::TokenKind;
use super::{Error, Kargo, Result, Scope, q};
use kargo_auth::rbac::UserInfo;
use kargo_registry::{DeleteOptions, ListOptions, Meta, Object, Target};

/// The body of a ServiceAccount creation: a ServiceAccount of which only `metadata.name` is
/// required (labels and annotations are kept, the rest is ignored).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NewServiceAccount {
    /// Name, and optionally namespace, labels and annotations.
    #[serde(default)]
    pub metadata: ObjectMeta,
}

/// 400 `Kubernetes ServiceAccount "n" in namespace "p" is not labeled as a Kargo ServiceAccount`.
pub(crate) fn not_labeled(namespace: &str, name: &str) -> Error {
    Error::BadRequest(format!(
        "Kubernetes ServiceAccount {} in namespace {} is not labeled as a Kargo ServiceAccount",
        q(name),
        q(namespace)
    ))
}

/// The label selector of Kargo ServiceAccounts.
pub(crate) fn selector() -> LabelSelector {
    LabelSelector::parse(&format!("{SERVICE_ACCOUNT_LABEL}={TRUE}"))
        .unwrap_or_else(|_| LabelSelector::nothing())
}

/// A list's JSON with items sorted by name.
pub(crate) fn sorted_list(
    rt: &kargo_api::resources::ResourceType,
    mut list: kargo_registry::ObjectList,
) -> Value {
    list.items.sort_by(|a, b| a.name().cmp(b.name()));
    list.to_json(rt)
}

impl Kargo {
    /// Reads a Kargo ServiceAccount as `user`: 404 if missing, 400 if not labeled.
    pub(crate) async fn kargo_service_account(
        &self,
        user: &UserInfo,
        ns: &str,
        name: &str,
    ) -> Result<Object> {
        let sa = self.get_as(user, &SERVICEACCOUNTS, Some(ns), name).await?;
        if !is_kargo_service_account(&sa) {
            return Err(not_labeled(ns, name));
        }
        Ok(sa)
    }

    /// `GET .../service-accounts`: the labeled ServiceAccounts, sorted by name (a
    /// `ServiceAccountList`).
    pub async fn list_service_accounts(&self, user: &UserInfo, scope: &Scope) -> Result<Value> {
        let ns = self.namespace_of(scope).await?;
        self.authorize(user, "list", &SERVICEACCOUNTS, ns, "")?;
        let options = ListOptions {
            label_selector: Some(selector()),
            ..ListOptions::default()
        };
        let list = self
            .registry
            .list(&SERVICEACCOUNTS, Some(ns), &options)
            .await?;
        Ok(sorted_list(&SERVICEACCOUNTS, list))
    }

    /// `GET .../service-accounts/{sa}`.
    pub async fn get_service_account(
        &self,
        user: &UserInfo,
        scope: &Scope,
        name: &str,
    ) -> Result<Object> {
        let ns = self.namespace_of(scope).await?;
        self.kargo_service_account(user, ns, name).await
    }

    /// `POST .../service-accounts`: a labeled, managed ServiceAccount.
    pub async fn create_service_account(
        &self,
        user: &UserInfo,
        scope: &Scope,
        body: NewServiceAccount,
    ) -> Result<Object> {
        let ns = self.namespace_of(scope).await?;
        let meta = body.metadata;
        let name = meta.name.clone().unwrap_or_default();
        if name.is_empty() {
            return Err(Error::BadRequest("name should not be empty".into()));
        }
        if meta
            .namespace
            .as_deref()
            .is_some_and(|n| !n.is_empty() && n != ns)
        {
            return Err(Error::Conflict(
                "namespace in body does not match project in URL".into(),
            ));
        }
        self.authorize(user, "create", &SERVICEACCOUNTS, ns, &name)?;
        let mut labels = meta.labels.unwrap_or_default();
        labels.insert(SERVICE_ACCOUNT_LABEL.into(), TRUE.into());
        let mut annotations = meta.annotations.unwrap_or_default();
        annotations.insert(MANAGED_ANNOTATION.into(), TRUE.into());
        let body = json!({
            "apiVersion": SERVICEACCOUNTS.api_version(),
            "kind": SERVICEACCOUNTS.kind,
            "metadata": {"name": name, "namespace": ns, "labels": labels, "annotations": annotations},
        });
        let written = self
            .registry
            .create(&SERVICEACCOUNTS, Some(ns), body, &crate::kargo_writes())
            .await
            .map_err(|e| {
                let mut status = e;
                status.message = format!(
                    "error creating ServiceAccount {} in namespace {}: {}",
                    q(&name),
                    q(ns),
                    status.message
                );
                Error::Api(status)
            })?;
        self.await_seen(&written.object).await;
        Ok(written.object)
    }

    /// `DELETE .../service-accounts/{sa}`: only labeled, managed accounts. The account leaves
    /// every RoleBinding first; its tokens go with it.
    pub async fn delete_service_account(
        &self,
        user: &UserInfo,
        scope: &Scope,
        name: &str,
    ) -> Result<()> {
        let ns = self.namespace_of(scope).await?;
        let sa = self.kargo_service_account(user, ns, name).await?;
        let annotations: BTreeMap<String, String> = sa.string_map("annotations");
        if !is_managed(Some(&annotations)) {
            return Err(Error::BadRequest(format!(
                "Kubernetes ServiceAccount {} in namespace {} is not annotated as Kargo-managed",
                q(name),
                q(ns)
            )));
        }
        self.authorize(user, "delete", &SERVICEACCOUNTS, ns, name)?;
        // Only removes permissions, so it is done by the server, like garbage collection.
        self.unbind_everywhere(ns, name).await?;
        if kargo_registry::touched::is_recording() {
            self.note_tokens_collected(ns, name).await;
        }
        let deleted = self
            .registry
            .delete(
                Target::new(&SERVICEACCOUNTS, Some(ns), name),
                &DeleteOptions::with_uid(sa.uid(), kargo_registry::Propagation::Background),
            )
            .await?;
        self.await_seen(deleted.object()).await;
        Ok(())
    }

    /// Notes (for the audit log, see `kargo_registry::touched`) the Kargo tokens of either kind
    /// of account `ns/name`, which the garbage collector deletes with it.
    pub(crate) async fn note_tokens_collected(&self, ns: &str, name: &str) {
        let Ok(secrets) = self
            .registry
            .list(&SECRETS, Some(ns), &ListOptions::default())
            .await
        else {
            return;
        };
        for secret in &secrets.items {
            if TokenKind::of(secret).is_some()
                && secret.annotation(SERVICE_ACCOUNT_NAME_ANNOTATION) == Some(name)
            {
                kargo_registry::touched::note_collected(&SECRETS, Some(ns), secret.name());
            }
        }
    }

    /// Removes ServiceAccount `ns/name` from the subjects of every RoleBinding.
    async fn unbind_everywhere(&self, ns: &str, name: &str) -> Result<()> {
        let bindings = self
            .registry
            .list(&ROLEBINDINGS, None, &ListOptions::default())
            .await?;
        for rb in bindings.items {
            let binding_ns = rb.namespace().unwrap_or_default().to_owned();
            let is_it = |s: &Value| {
                let subject_ns = s
                    .get("namespace")
                    .and_then(Value::as_str)
                    .filter(|n| !n.is_empty())
                    .unwrap_or(&binding_ns);
                s.get("kind").and_then(Value::as_str) == Some(SERVICEACCOUNTS.kind)
                    && subject_ns == ns
                    && s.get("name").and_then(Value::as_str) == Some(name)
            };
            let bound = rb
                .get("subjects")
                .and_then(Value::as_array)
                .is_some_and(|subjects| subjects.iter().any(is_it));
            if !bound {
                continue;
            }
            let result = self
                .registry
                .update_with(
                    Target::new(&ROLEBINDINGS, Some(&binding_ns), rb.name()),
                    &crate::kargo_writes(),
                    |current| {
                        let mut next = current.clone();
                        if let Some(subjects) =
                            next.get_mut("subjects").and_then(Value::as_array_mut)
                        {
                            subjects.retain(|s| !is_it(s));
                        }
                        Ok(next)
                    },
                )
                .await;
            match result {
                Ok(obj) => self.await_seen(&obj).await,
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

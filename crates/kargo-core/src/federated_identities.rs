//! Federated identities through the Kargo API: the entries of a Kargo ServiceAccount's
//! `rbac.kargo.akuity.io/federated-identities` annotation (`kargo_api::federation`), listed for
//! a project, added to and removed from one account. Each operation is authorized as the
//! caller: listing needs `list` (or `get` of the one account) on ServiceAccounts; adding and
//! removing need `get` and `update` of the account, like editing the annotation with kubectl.

use kargo_api::federation::{self, FEDERATED_IDENTITIES_ANNOTATION, FederatedIdentity};
use kargo_api::resources::SERVICEACCOUNTS;
use kargo_registry::{ListOptions, Meta, Target};
use serde_json::{Value, json};

use super::{Error, Kargo, Result, Scope, q};
use kargo_auth::rbac::UserInfo;

/// An account's entries (none when the annotation is absent; 500 if a stored value does not
/// parse, which writes refuse).
fn entries_of(account: &Value) -> Result<Vec<FederatedIdentity>> {
    match account
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(FEDERATED_IDENTITIES_ANNOTATION))
        .and_then(Value::as_str)
    {
        None => Ok(Vec::new()),
        Some(value) => federation::parse(value).map_err(Error::Stored),
    }
}

/// One entry as the Kargo API shows it: its effective name and its account.
fn item(account: &str, entry: &FederatedIdentity) -> Value {
    let mut value = serde_json::to_value(entry).unwrap_or_default();
    value["name"] = entry.effective_name().into();
    value["serviceAccount"] = account.into();
    value
}

/// Writes `entries` as the annotation of `account` (removing it when empty).
fn with_entries(account: &Value, entries: &[FederatedIdentity]) -> Value {
    let mut next = account.clone();
    let meta = kargo_registry::object::meta_mut(&mut next);
    let annotations = meta
        .entry("annotations")
        .or_insert_with(|| Value::Object(Default::default()));
    if let Some(map) = annotations.as_object_mut() {
        if entries.is_empty() {
            map.remove(FEDERATED_IDENTITIES_ANNOTATION);
        } else {
            map.insert(
                FEDERATED_IDENTITIES_ANNOTATION.into(),
                federation::render(entries).into(),
            );
        }
    }
    next
}

impl Kargo {
    /// `GET .../federated-identities[?serviceAccount=]`: every entry of the project's Kargo
    /// ServiceAccounts (or of one), sorted by account then name, as `{"items": [...]}`.
    pub async fn list_federated_identities(
        &self,
        user: &UserInfo,
        scope: &Scope,
        account: Option<&str>,
    ) -> Result<Value> {
        let ns = self.namespace_of(scope).await?;
        let accounts: Vec<Value> = match account {
            Some(name) => vec![self.kargo_service_account(user, ns, name).await?],
            None => {
                self.authorize(user, "list", &SERVICEACCOUNTS, ns, "")?;
                let options = ListOptions {
                    label_selector: Some(super::service_accounts::selector()),
                    ..ListOptions::default()
                };
                self.registry
                    .list(&SERVICEACCOUNTS, Some(ns), &options)
                    .await?
                    .items
            }
        };
        let mut items = Vec::new();
        for account in &accounts {
            for entry in entries_of(account)? {
                items.push(item(account.name(), &entry));
            }
        }
        items.sort_by(|a, b| {
            (a["serviceAccount"].as_str(), a["name"].as_str())
                .cmp(&(b["serviceAccount"].as_str(), b["name"].as_str()))
        });
        Ok(json!({ "items": items }))
    }

    /// `POST .../service-accounts/{sa}/federated-identities`: adds an entry (named by
    /// [`FederatedIdentity::effective_name`] when it has no name, and stamped `createdAt`);
    /// 409 when the account already has an entry of that name, 400 when it is malformed.
    pub async fn create_federated_identity(
        &self,
        user: &UserInfo,
        scope: &Scope,
        account: &str,
        mut entry: FederatedIdentity,
    ) -> Result<Value> {
        let ns = self.namespace_of(scope).await?;
        self.kargo_service_account(user, ns, account).await?;
        self.authorize(user, "update", &SERVICEACCOUNTS, ns, account)?;
        entry.name = Some(entry.effective_name());
        entry.created_at = Some(kargo_registry::object::now_rfc3339());
        let name = entry.effective_name();
        let written = self
            .registry
            .update_with(
                Target::new(&SERVICEACCOUNTS, Some(ns), account),
                &crate::kargo_writes(),
                |current| {
                    let mut entries = entries_of(current).map_err(to_status)?;
                    if entries.iter().any(|e| e.effective_name() == name) {
                        return Err(to_status(Error::Conflict(format!(
                            "federated identity {} already exists on ServiceAccount {}",
                            q(&name),
                            q(account)
                        ))));
                    }
                    entries.push(entry.clone());
                    federation::parse(&federation::render(&entries))
                        .map_err(|e| to_status(Error::BadRequest(e)))?;
                    Ok(with_entries(current, &entries))
                },
            )
            .await?;
        self.await_seen(&written).await;
        Ok(item(account, &entry))
    }

    /// `DELETE .../federated-identities/{name}[?serviceAccount=]`: removes the entry of that
    /// name (404 if none; 400 naming the accounts when several have one and none is given).
    pub async fn delete_federated_identity(
        &self,
        user: &UserInfo,
        scope: &Scope,
        name: &str,
        account: Option<&str>,
    ) -> Result<()> {
        let listed = self.list_federated_identities(user, scope, account).await?;
        let owners: Vec<String> = listed["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|i| i["name"] == name)
            .filter_map(|i| i["serviceAccount"].as_str().map(str::to_owned))
            .collect();
        let owner = match owners.as_slice() {
            [] => {
                return Err(Error::NotFound(format!(
                    "federated identity {} not found",
                    q(name)
                )));
            }
            [one] => one.clone(),
            several => {
                return Err(Error::BadRequest(format!(
                    "federated identity {} is on several ServiceAccounts ({}); choose one with serviceAccount",
                    q(name),
                    several.join(", ")
                )));
            }
        };
        let ns = self.namespace_of(scope).await?;
        self.authorize(user, "update", &SERVICEACCOUNTS, ns, &owner)?;
        let written = self
            .registry
            .update_with(
                Target::new(&SERVICEACCOUNTS, Some(ns), &owner),
                &crate::kargo_writes(),
                |current| {
                    let mut entries = entries_of(current).map_err(to_status)?;
                    entries.retain(|e| e.effective_name() != name);
                    Ok(with_entries(current, &entries))
                },
            )
            .await?;
        self.await_seen(&written).await;
        Ok(())
    }
}

/// A Kargo error as the registry's `Status` (inside an update's change function).
fn to_status(error: Error) -> kargo_registry::status::Status {
    let code = error.code();
    match error {
        Error::Api(status) => status,
        other => kargo_registry::status::Status::failure(code, "", other.to_string()),
    }
}

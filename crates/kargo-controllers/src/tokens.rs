//! The token controller, as Kubernetes' own: a Secret of type
//! `kubernetes.io/service-account-token` naming a ServiceAccount gets `data.token` (a legacy JWT),
//! `data.namespace` and `data["ca.crt"]`, whoever created it. A token Secret whose account does
//! not exist (or has another uid) is deleted, and deleting an account deletes its token Secrets.
//! Once the grace of a rotated token's previous value has ended, the controller removes the
//! annotations that kept it (`kargo.akuity.io/previous-token-*`); authentication refuses that
//! value from the end of the grace on whether or not they are still there.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use kargo_api::resources::{SECRETS, SERVICEACCOUNTS};
use kargo_store::{Event, EventKind, KeyValue};
use tokio_util::sync::CancellationToken;

use kargo_api::token_lifecycle::{
    PREVIOUS_TOKEN_SHA256_ANNOTATION, PREVIOUS_TOKEN_VALID_UNTIL_ANNOTATION, previous_token,
};
use kargo_api::well_known::{
    SERVICE_ACCOUNT_NAME_ANNOTATION, SERVICE_ACCOUNT_TOKEN_TYPE, SERVICE_ACCOUNT_UID_ANNOTATION,
};
use kargo_auth::mint::TokenMinter;
use kargo_registry::events::{self, EventType, Occurrence};
use kargo_registry::informer::{Handler, Head, Item};
use kargo_registry::object::{Meta, set_meta};
use kargo_registry::queue::{self, Action, Queue};
use kargo_registry::status::Result;
use kargo_registry::{DeleteOptions, Propagation, Registry, Target, WriteOptions};

type Name = (String, String);

/// The controller's informer handler.
pub struct TokenController {
    queue: Queue<Name>,
    /// (namespace, account) → token Secrets naming it.
    by_account: HashMap<Name, HashSet<String>>,
    /// (namespace, secret) → account.
    account_of: HashMap<Name, String>,
    /// The accounts seen during a relist.
    relisted_accounts: Option<HashSet<Name>>,
}

struct Worker {
    registry: Registry,
    minter: TokenMinter,
}

fn is_token_secret(head: &Head) -> bool {
    head.kind() == Some(SERVICE_ACCOUNT_TOKEN_TYPE)
}

/// Whether a token Secret lacks something the controller fills.
fn needs_work(head: &Head) -> bool {
    head.data("token").is_none()
        || head.data("namespace").is_none()
        || head.data("ca.crt").is_none()
        || head.annotation(SERVICE_ACCOUNT_UID_ANNOTATION).is_none()
}

/// Whether a token Secret keeps the previous value of a rotation (whose grace may have ended).
fn has_previous(head: &Head) -> bool {
    head.annotation(PREVIOUS_TOKEN_SHA256_ANNOTATION).is_some()
        || head
            .annotation(PREVIOUS_TOKEN_VALID_UNTIL_ANNOTATION)
            .is_some()
}

/// The longest a Secret in its grace waits before it is looked at again (a clock that jumps, or
/// a grace changed with kubectl, is caught up with by then).
const GRACE_RECHECK: Duration = Duration::from_secs(3600);

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl TokenController {
    /// Starts the controller's worker; returns its informer handler.
    pub fn start(
        registry: Registry,
        minter: TokenMinter,
        shutdown: CancellationToken,
    ) -> TokenController {
        let worker = Arc::new(Worker { registry, minter });
        let queue = queue::start(shutdown, move |(ns, name): Name| {
            let worker = worker.clone();
            async move {
                match worker.reconcile(&ns, &name).await {
                    Ok(action) => action,
                    Err(status) => {
                        tracing::debug!(namespace = ns, secret = name, error = %status, "token controller failed; retrying");
                        Action::Requeue(Duration::from_millis(500))
                    }
                }
            }
        });
        TokenController {
            queue,
            by_account: HashMap::new(),
            account_of: HashMap::new(),
            relisted_accounts: None,
        }
    }

    fn forget(&mut self, id: &Name) {
        if let Some(account) = self.account_of.remove(id)
            && let Some(set) = self.by_account.get_mut(&(id.0.clone(), account.clone()))
        {
            set.remove(&id.1);
            if set.is_empty() {
                self.by_account.remove(&(id.0.clone(), account));
            }
        }
    }

    fn observe(&mut self, kv: &KeyValue, head: Option<&Head>, deleted: bool) {
        let Some((rt, Some(ns), name)) = kargo_api::resources::parse_key(&kv.key) else {
            return;
        };
        let id = (ns.to_owned(), name.to_owned());
        if std::ptr::eq(rt, &SECRETS) {
            self.forget(&id);
            if deleted {
                return;
            }
            let Some(head) = head.filter(|h| is_token_secret(h)) else {
                return;
            };
            let account = head
                .annotation(SERVICE_ACCOUNT_NAME_ANNOTATION)
                .unwrap_or_default()
                .to_owned();
            self.by_account
                .entry((ns.to_owned(), account.clone()))
                .or_default()
                .insert(name.to_owned());
            self.account_of.insert(id.clone(), account);
            if (needs_work(head) || has_previous(head)) && !head.deleting() {
                self.queue.add(id);
            }
        } else if std::ptr::eq(rt, &SERVICEACCOUNTS) && !deleted {
            if let Some(seen) = &mut self.relisted_accounts {
                seen.insert(id);
            }
        } else if std::ptr::eq(rt, &SERVICEACCOUNTS)
            && deleted
            && let Some(secrets) = self.by_account.get(&id)
        {
            for secret in secrets {
                self.queue.add((ns.to_owned(), secret.clone()));
            }
        }
    }
}

impl Handler for TokenController {
    fn resync_begin(&mut self) {
        self.by_account.clear();
        self.account_of.clear();
        self.relisted_accounts = Some(HashSet::new());
    }

    fn resync_page(&mut self, items: &[Item<'_>]) {
        for item in items {
            self.observe(item.kv, item.head, false);
        }
    }

    fn resync_end(&mut self) {
        // Token Secrets whose account vanished while no controller was watching.
        let Some(accounts) = self.relisted_accounts.take() else {
            return;
        };
        for ((ns, secret), account) in &self.account_of {
            if !accounts.contains(&(ns.clone(), account.clone())) {
                self.queue.add((ns.clone(), secret.clone()));
            }
        }
    }

    fn event(&mut self, event: &Event, head: Option<&Head>) {
        self.observe(&event.kv, head, event.kind == EventKind::Deleted);
    }
}

impl Worker {
    async fn reconcile(&self, namespace: &str, name: &str) -> Result<Action> {
        let target = Target::new(&SECRETS, Some(namespace), name);
        let Some(secret) = self.registry.try_get(target).await? else {
            return Ok(Action::Done);
        };
        let head: Head = serde_json::from_value(secret.clone()).unwrap_or_default();
        if !is_token_secret(&head) || head.deleting() {
            return Ok(Action::Done);
        }
        let account_name = secret
            .annotation(SERVICE_ACCOUNT_NAME_ANNOTATION)
            .unwrap_or_default()
            .to_owned();
        let account = if account_name.is_empty() {
            None
        } else {
            self.registry
                .try_get(Target::new(
                    &SERVICEACCOUNTS,
                    Some(namespace),
                    &account_name,
                ))
                .await?
        };
        let wanted_uid = secret
            .annotation(SERVICE_ACCOUNT_UID_ANNOTATION)
            .filter(|u| !u.is_empty())
            .map(str::to_owned);
        let account = account.filter(|a| wanted_uid.as_deref().is_none_or(|u| u == a.uid()));
        let Some(account) = account else {
            tracing::debug!(
                namespace,
                secret = name,
                "deleting a token Secret whose ServiceAccount is gone"
            );
            match self
                .registry
                .delete(
                    target,
                    &DeleteOptions::with_uid(secret.uid(), Propagation::Background),
                )
                .await
            {
                Ok(_) => {
                    let message =
                        format!("Token deleted: its ServiceAccount {account_name:?} is gone");
                    let occurrence = Occurrence {
                        kind: EventType::Normal,
                        reason: "TokenRevoked",
                        message: &message,
                    };
                    events::record(&self.registry, &SECRETS, &secret, occurrence).await;
                }
                Err(e) if e.is_not_found() || e.is_conflict() => {}
                Err(e) => return Err(e),
            }
            return Ok(Action::Done);
        };
        let grace = self.end_grace(target, &head).await?;
        if !needs_work(&head) {
            return Ok(grace);
        }
        let account_uid = account.uid().to_owned();
        let secret_uid = secret.uid().to_owned();
        let result = self
            .registry
            .update_with(target, &WriteOptions::default(), |current| {
                let mut next = current.clone();
                set_meta(&mut next, "resourceVersion", None);
                if current.uid() == secret_uid {
                    self.minter
                        .fill(&mut next, namespace, name, &account_name, &account_uid)?;
                }
                Ok(next)
            })
            .await;
        match result {
            Ok(filled) => {
                kargo_auth::mint::record_issued(&self.registry, &filled, &account_name);
                Ok(grace)
            }
            Err(e) if e.is_not_found() => Ok(Action::Done),
            Err(e) => Err(e),
        }
    }

    /// Removes the previous-value annotations of a rotated token Secret whose grace has ended
    /// (or which are malformed: that value is refused anyway); a Secret still in its grace is
    /// looked at again when it ends.
    async fn end_grace(&self, target: Target<'_>, head: &Head) -> Result<Action> {
        if !has_previous(head) {
            return Ok(Action::Done);
        }
        let previous = previous_token(
            head.annotation(PREVIOUS_TOKEN_SHA256_ANNOTATION),
            head.annotation(PREVIOUS_TOKEN_VALID_UNTIL_ANNOTATION),
        );
        let now = unix_now();
        if let Some((_, until)) = previous
            && now < until
        {
            let left = Duration::from_secs(u64::try_from(until - now).unwrap_or(0));
            return Ok(Action::Requeue(left.min(GRACE_RECHECK)));
        }
        let result = self
            .registry
            .update_with(target, &WriteOptions::default(), |current| {
                let mut next = current.clone();
                // Read again: a rotation since may have started a new grace.
                let in_grace = previous_token(
                    current.annotation(PREVIOUS_TOKEN_SHA256_ANNOTATION),
                    current.annotation(PREVIOUS_TOKEN_VALID_UNTIL_ANNOTATION),
                )
                .is_some_and(|(_, until)| now < until);
                if let Some(annotations) = next
                    .pointer_mut("/metadata/annotations")
                    .and_then(serde_json::Value::as_object_mut)
                    .filter(|_| !in_grace)
                {
                    annotations.remove(PREVIOUS_TOKEN_SHA256_ANNOTATION);
                    annotations.remove(PREVIOUS_TOKEN_VALID_UNTIL_ANNOTATION);
                }
                Ok(next)
            })
            .await;
        match result {
            Ok(_) => Ok(Action::Done),
            Err(e) if e.is_not_found() => Ok(Action::Done),
            Err(e) => Err(e),
        }
    }
}

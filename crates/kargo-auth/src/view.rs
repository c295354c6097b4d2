//! The auth view: what authentication and authorization need, in memory, fed by the informer —
//! ServiceAccounts (uid), service-account token Secrets (a hash of their token), the RBAC policy
//! (with the claims mapping: ServiceAccounts' claims annotations and which namespaces are
//! projects') and the signing keys. One writer (the informer's handler), many cheap readers.

use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use base64::Engine;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kargo_api::resources::{self, ResourceType};
use kargo_store::{Event, EventKind};

use super::decisions::Decisions;
use super::federation::{Trust, trusts_of};
use super::keys::{KEYS_KEY, KeySet};
use super::rbac::{Attributes, Policy, UserInfo};
use super::usage::{Usage, UsageLog};
use kargo_api::expiry::{EXPIRES_AT_ANNOTATION, parse_expires_at};
use kargo_api::federation::FEDERATED_IDENTITIES_ANNOTATION;
use kargo_api::kargo::{PROJECT_LABEL, TRUE};
use kargo_api::token_lifecycle::{
    DISABLED_ANNOTATION, PREVIOUS_TOKEN_SHA256_ANNOTATION, PREVIOUS_TOKEN_VALID_UNTIL_ANNOTATION,
    is_disabled, previous_token,
};
use kargo_api::well_known::SERVICE_ACCOUNT_NAME_ANNOTATION;
use kargo_registry::informer::{Handler, Head, Item};

/// A ServiceAccount as the view keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Account {
    /// Its uid.
    pub uid: String,
    /// Whether it is being deleted.
    pub deleting: bool,
    /// The outside identities it trusts (`rbac.kargo.akuity.io/federated-identities`), if any.
    pub federated: Option<Arc<[Trust]>>,
}

impl Account {
    /// Whether it still lists the trust entry of this fingerprint (an exchanged token's).
    pub(crate) fn trusts(&self, fingerprint: &str) -> bool {
        self.federated
            .as_ref()
            .is_some_and(|t| t.iter().any(|t| t.fingerprint == fingerprint))
    }
}

/// A Secret as the view keeps it (what token checks read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TokenSecret {
    /// The Secret's uid.
    pub uid: String,
    /// The account it names.
    pub account: String,
    /// SHA-256 of its token, if it has one.
    pub token_hash: Option<[u8; 32]>,
    /// Whether it is being deleted.
    pub deleting: bool,
    /// When its token stops working (`kargo.akuity.io/expires-at`).
    pub expiry: Expiry,
    /// Whether its token is refused for now (`kargo.akuity.io/disabled`).
    pub disabled: bool,
    /// The value it held before its last rotation, accepted until a Unix second: its SHA-256
    /// and that second (`kargo.akuity.io/previous-token-sha256`, `...-valid-until`).
    pub previous: Option<([u8; 32], i64)>,
    /// Its token's uses not yet written (kept across updates of the same Secret).
    pub usage: Arc<Usage>,
}

/// A token Secret's `kargo.akuity.io/expires-at`, read once when the Secret is seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expiry {
    /// No annotation: the token does not expire.
    Never,
    /// Refused from this Unix second on.
    At(i64),
    /// The annotation is not a time: the token is refused (fail closed).
    Malformed,
}

impl Expiry {
    /// The expiry a Secret's annotation value means.
    pub(crate) fn of(annotation: Option<&str>) -> Expiry {
        match annotation.map(parse_expires_at) {
            None => Expiry::Never,
            Some(Ok(at)) => Expiry::At(at),
            Some(Err(_)) => Expiry::Malformed,
        }
    }
}

/// Maps read on every request, hashed with a fast non-cryptographic hash.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// Objects by namespace, then name: looked up with borrowed strings, no allocation per request.
type ByNamespace<T> = HashMap<String, HashMap<String, T>>;

fn lookup<'a, T>(map: &'a ByNamespace<T>, namespace: &str, name: &str) -> Option<&'a T> {
    map.get(namespace)?.get(name)
}

fn insert<T>(map: &mut ByNamespace<T>, namespace: &str, name: &str, value: T) {
    map.entry(namespace.to_owned())
        .or_default()
        .insert(name.to_owned(), value);
}

fn remove<T>(map: &mut ByNamespace<T>, namespace: &str, name: &str) {
    if let Some(names) = map.get_mut(namespace) {
        names.remove(name);
        if names.is_empty() {
            map.remove(namespace);
        }
    }
}

/// Accounts and token Secrets by namespace and name.
#[derive(Default)]
pub(crate) struct Identities {
    accounts: ByNamespace<Account>,
    secrets: ByNamespace<TokenSecret>,
}

impl Identities {
    /// A ServiceAccount.
    pub fn account(&self, namespace: &str, name: &str) -> Option<&Account> {
        lookup(&self.accounts, namespace, name)
    }

    /// The accounts that trust an outside identity: `(namespace, name, account)`.
    pub(crate) fn federated_accounts(&self) -> impl Iterator<Item = (&str, &str, &Account)> {
        self.accounts.iter().flat_map(|(ns, names)| {
            names
                .iter()
                .filter(|(_, a)| a.federated.is_some())
                .map(move |(name, a)| (ns.as_str(), name.as_str(), a))
        })
    }

    /// A token Secret.
    pub fn secret(&self, namespace: &str, name: &str) -> Option<&TokenSecret> {
        lookup(&self.secrets, namespace, name)
    }

    /// Gives each Secret of `self` the usage its namesake of the same uid has in `old` (a relist
    /// must not lose the uses not yet written).
    fn carry_usage(&mut self, old: &Identities) {
        for (ns, names) in &mut self.secrets {
            for (name, secret) in names {
                if let Some(before) = lookup(&old.secrets, ns, name)
                    && before.usage.is_of(&secret.uid)
                {
                    secret.usage = before.usage.clone();
                }
            }
        }
    }
}

/// The view.
pub struct AuthView {
    identities: RwLock<Identities>,
    policy: RwLock<Policy>,
    /// Allows decided by `policy`; forgotten whenever it changes.
    decisions: Decisions,
    keys: RwLock<Arc<KeySet>>,
    key_generation: std::sync::atomic::AtomicU64,
    /// Legacy tokens used since the flusher last took them.
    usage: UsageLog,
}

/// SHA-256 of a token: what the view keeps of a token Secret's value (and of the previous
/// value of a rotated one).
pub fn token_hash(token: &[u8]) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

impl AuthView {
    /// A view that starts with the given keys and nothing else.
    pub fn new(keys: KeySet) -> Arc<AuthView> {
        Arc::new(AuthView {
            identities: RwLock::new(Identities::default()),
            policy: RwLock::new(Policy::new()),
            decisions: Decisions::default(),
            keys: RwLock::new(Arc::new(keys)),
            key_generation: std::sync::atomic::AtomicU64::new(0),
            usage: UsageLog::default(),
        })
    }

    /// The legacy tokens used since the flusher last took them.
    pub fn usage(&self) -> &UsageLog {
        &self.usage
    }

    /// Accounts and token Secrets.
    pub(crate) fn identities(&self) -> RwLockReadGuard<'_, Identities> {
        self.identities.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The RBAC policy.
    pub fn policy(&self) -> RwLockReadGuard<'_, Policy> {
        self.policy.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The only way to change the policy: remembered decisions are forgotten first, and none
    /// can be remembered while the guard is held.
    fn policy_mut(&self) -> RwLockWriteGuard<'_, Policy> {
        let policy = self.policy.write().unwrap_or_else(|p| p.into_inner());
        self.decisions.forget_all();
        policy
    }

    /// Whether the policy allows the request ([`Policy::allows`]), remembering allows: decided
    /// and remembered under one read lock of the policy, so never from a policy that has since
    /// changed.
    pub fn allows(&self, user: &UserInfo, attrs: &Attributes) -> Result<(), Vec<String>> {
        let policy = self.policy();
        if self.decisions.allowed(user, attrs) {
            return Ok(());
        }
        policy.allows(user, attrs)?;
        self.decisions.remember(user, attrs);
        Ok(())
    }

    /// The signing keys.
    pub fn keys(&self) -> Arc<KeySet> {
        self.keys.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Changes whenever the key set changes (caches of verified signatures compare it).
    pub(crate) fn key_generation(&self) -> u64 {
        self.key_generation
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// The informer handler that keeps this view.
    pub fn writer(self: &Arc<Self>) -> ViewWriter {
        ViewWriter {
            view: self.clone(),
            staging: None,
        }
    }

    fn apply_keys(&self, bytes: &[u8]) {
        match KeySet::decode(bytes) {
            Ok(set) => {
                *self.keys.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(set);
                self.key_generation
                    .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
            }
            Err(e) => tracing::error!(error = %e, "ignoring an unreadable signing key set"),
        }
    }
}

/// Applies one key's new value (`None`: deleted) to accounts, token Secrets and the policy.
fn apply(
    ids: &mut Identities,
    policy: &mut Policy,
    key: &str,
    value: Option<(&[u8], Option<&Head>)>,
) {
    let Some((rt, namespace, name)) = resources::parse_key(key) else {
        return;
    };
    let ns = namespace.unwrap_or_default();
    let head = value.and_then(|(_, head)| head);
    match (rt.group, rt.kind) {
        ("", "ServiceAccount") => {
            policy.apply_account_claims(ns, name, head.map(|h| &h.metadata.annotations));
            match head {
                Some(head) => insert(
                    &mut ids.accounts,
                    ns,
                    name,
                    Account {
                        uid: head.metadata.uid.clone(),
                        deleting: head.deleting(),
                        federated: trusts_of(head.annotation(FEDERATED_IDENTITIES_ANNOTATION)),
                    },
                ),
                None => remove(&mut ids.accounts, ns, name),
            }
        }
        ("", "Namespace") => {
            let is_project = value.is_some_and(|(bytes, _)| is_project_namespace(bytes));
            policy.apply_project_namespace(name, is_project);
        }
        // Every Secret, not only token Secrets: bound tokens may be bound to any Secret, and a
        // legacy token is checked against the Secret it names whatever its type (as in
        // Kubernetes, only `data.token` is compared).
        ("", "Secret") => match head {
            Some(head) => {
                let token_hash = head
                    .data("token")
                    .and_then(|t| base64::engine::general_purpose::STANDARD.decode(t).ok())
                    .map(|t| token_hash(&t));
                let expiry = Expiry::of(head.annotation(EXPIRES_AT_ANNOTATION));
                let before = lookup(&ids.secrets, ns, name);
                let was_malformed = before.is_some_and(|s| s.expiry == Expiry::Malformed);
                let usage = match before {
                    Some(before) if before.usage.is_of(&head.metadata.uid) => before.usage.clone(),
                    _ => Usage::new(ns, name, &head.metadata.uid),
                };
                if expiry == Expiry::Malformed && !was_malformed {
                    // Once per Secret that turns malformed; the value only, never the token.
                    tracing::warn!(
                        namespace = ns,
                        secret = name,
                        value = head.annotation(EXPIRES_AT_ANNOTATION).unwrap_or_default(),
                        "refusing the token of a Secret whose {EXPIRES_AT_ANNOTATION} annotation is not an RFC 3339 time"
                    );
                }
                insert(
                    &mut ids.secrets,
                    ns,
                    name,
                    TokenSecret {
                        uid: head.metadata.uid.clone(),
                        account: head
                            .annotation(SERVICE_ACCOUNT_NAME_ANNOTATION)
                            .unwrap_or_default()
                            .to_owned(),
                        token_hash,
                        deleting: head.deleting(),
                        expiry,
                        disabled: is_disabled(head.annotation(DISABLED_ANNOTATION)),
                        previous: previous_token(
                            head.annotation(PREVIOUS_TOKEN_SHA256_ANNOTATION),
                            head.annotation(PREVIOUS_TOKEN_VALID_UNTIL_ANNOTATION),
                        ),
                        usage,
                    },
                );
            }
            None => remove(&mut ids.secrets, ns, name),
        },
        (resources::RBAC_GROUP, _) => apply_rbac(policy, rt, ns, name, value.map(|(v, _)| v)),
        _ => {}
    }
}

/// Whether `key` is a Secret's.
fn is_secret_key(key: &str) -> bool {
    resources::parse_key(key).is_some_and(|(rt, _, _)| (rt.group, rt.kind) == ("", "Secret"))
}

/// Whether a stored Namespace is labeled as a project's (`kargo.akuity.io/project: "true"`).
/// Namespaces are few and rarely written: decoded here rather than in every view's head.
fn is_project_namespace(bytes: &[u8]) -> bool {
    #[derive(serde::Deserialize, Default)]
    struct Meta {
        #[serde(default)]
        labels: std::collections::BTreeMap<String, String>,
    }
    #[derive(serde::Deserialize)]
    struct Namespace {
        #[serde(default)]
        metadata: Meta,
    }
    serde_json::from_slice::<Namespace>(bytes)
        .is_ok_and(|ns| ns.metadata.labels.get(PROJECT_LABEL).map(String::as_str) == Some(TRUE))
}

fn apply_rbac(policy: &mut Policy, rt: &ResourceType, ns: &str, name: &str, value: Option<&[u8]>) {
    match (rt.kind, value) {
        ("Role", Some(v)) => match serde_json::from_slice::<Role>(v) {
            Ok(r) => policy.apply_role(&r),
            Err(_) => policy.remove_role(ns, name),
        },
        ("Role", None) => policy.remove_role(ns, name),
        ("ClusterRole", Some(v)) => match serde_json::from_slice::<ClusterRole>(v) {
            Ok(r) => policy.apply_cluster_role(&r),
            Err(_) => policy.remove_cluster_role(name),
        },
        ("ClusterRole", None) => policy.remove_cluster_role(name),
        ("RoleBinding", Some(v)) => match serde_json::from_slice::<RoleBinding>(v) {
            Ok(b) => policy.apply_role_binding(&b),
            Err(_) => policy.remove_role_binding(ns, name),
        },
        ("RoleBinding", None) => policy.remove_role_binding(ns, name),
        ("ClusterRoleBinding", Some(v)) => match serde_json::from_slice::<ClusterRoleBinding>(v) {
            Ok(b) => policy.apply_cluster_role_binding(&b),
            Err(_) => policy.remove_cluster_role_binding(name),
        },
        ("ClusterRoleBinding", None) => policy.remove_cluster_role_binding(name),
        _ => {}
    }
}

/// The informer handler of an [`AuthView`]. A relist is built aside and swapped in whole, so
/// that requests never see a half-built view.
pub struct ViewWriter {
    view: Arc<AuthView>,
    staging: Option<(Identities, Policy)>,
}

impl ViewWriter {
    fn write(&mut self, key: &str, value: Option<(&[u8], Option<&Head>)>) {
        if key == KEYS_KEY {
            if let Some((bytes, _)) = value {
                self.view.apply_keys(bytes);
            }
            return;
        }
        match &mut self.staging {
            Some((ids, policy)) => apply(ids, policy, key, value),
            None => {
                let mut ids = self
                    .view
                    .identities
                    .write()
                    .unwrap_or_else(|p| p.into_inner());
                if is_secret_key(key) {
                    // A Secret is no part of the policy (applied against an empty one): its
                    // writes, such as a token's last use once a minute, must not forget the
                    // remembered decisions.
                    apply(&mut ids, &mut Policy::new(), key, value);
                } else {
                    let mut policy = self.view.policy_mut();
                    apply(&mut ids, &mut policy, key, value);
                }
            }
        }
    }
}

impl Handler for ViewWriter {
    fn resync_begin(&mut self) {
        self.staging = Some((Identities::default(), Policy::new()));
    }

    fn resync_page(&mut self, items: &[Item<'_>]) {
        for item in items {
            self.write(&item.kv.key, Some((&item.kv.value, item.head)));
        }
    }

    fn resync_end(&mut self) {
        if let Some((mut ids, policy)) = self.staging.take() {
            let mut live = self
                .view
                .identities
                .write()
                .unwrap_or_else(|p| p.into_inner());
            ids.carry_usage(&live);
            *live = ids;
            drop(live);
            *self.view.policy_mut() = policy;
        }
    }

    fn event(&mut self, event: &Event, head: Option<&Head>) {
        match event.kind {
            EventKind::Deleted => self.write(&event.kv.key, None),
            _ => self.write(&event.kv.key, Some((&event.kv.value, head))),
        }
    }
}

#[cfg(test)]
mod tests {
    use kargo_api::resources::{CLUSTERROLEBINDINGS, CLUSTERROLES};
    use serde_json::json;

    use super::*;

    fn bytes(value: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&value).unwrap()
    }

    #[tokio::test]
    async fn a_remembered_allow_ends_with_the_binding_that_granted_it() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn kargo_store::Store> =
            Arc::new(kargo_store::sqlite::SqliteStore::open(&dir.path().join("s.db")).unwrap());
        let view = AuthView::new(crate::keys::load_or_create(&store).await.unwrap());
        let mut writer = view.writer();
        let role = bytes(json!({
            "metadata": {"name": "reader"},
            "rules": [{"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["get"]}],
        }));
        let binding = bytes(json!({
            "metadata": {"name": "reader"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "reader"},
            "subjects": [{"kind": "User", "name": "alice"}],
        }));
        let role_key = CLUSTERROLES.key(None, "reader");
        let binding_key = CLUSTERROLEBINDINGS.key(None, "reader");
        writer.write(&role_key, Some((&role, None)));
        writer.write(&binding_key, Some((&binding, None)));

        let alice = UserInfo::new("alice", ["system:authenticated"]);
        let get: Attributes = Attributes::resource("get", "p", "", "serviceaccounts")
            .with_name("sa")
            .into();
        assert_eq!(view.allows(&alice, &get), Ok(()));
        assert_eq!(view.allows(&alice, &get), Ok(()), "answered from memory");

        writer.write(&binding_key, None);
        assert!(view.allows(&alice, &get).is_err());

        writer.write(&binding_key, Some((&binding, None)));
        assert_eq!(view.allows(&alice, &get), Ok(()));
        let narrower = bytes(json!({
            "metadata": {"name": "reader"},
            "rules": [{"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["list"]}],
        }));
        writer.write(&role_key, Some((&narrower, None)));
        assert!(view.allows(&alice, &get).is_err());
    }

    #[tokio::test]
    async fn a_secret_write_keeps_the_remembered_decisions_and_a_role_write_forgets_them() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn kargo_store::Store> =
            Arc::new(kargo_store::sqlite::SqliteStore::open(&dir.path().join("s.db")).unwrap());
        let view = AuthView::new(crate::keys::load_or_create(&store).await.unwrap());
        let mut writer = view.writer();
        let role = bytes(json!({
            "metadata": {"name": "reader"},
            "rules": [{"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["get"]}],
        }));
        let binding = bytes(json!({
            "metadata": {"name": "reader"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "reader"},
            "subjects": [{"kind": "User", "name": "alice"}],
        }));
        let role_key = CLUSTERROLES.key(None, "reader");
        writer.write(&role_key, Some((&role, None)));
        writer.write(
            &CLUSTERROLEBINDINGS.key(None, "reader"),
            Some((&binding, None)),
        );
        let alice = UserInfo::new("alice", ["system:authenticated"]);
        let get: Attributes = Attributes::resource("get", "p", "", "serviceaccounts")
            .with_name("sa")
            .into();
        assert_eq!(view.allows(&alice, &get), Ok(()));
        assert!(view.decisions.allowed(&alice, &get), "remembered");

        let secret = bytes(json!({"metadata": {"name": "t", "namespace": "p"}}));
        let secret_key = kargo_api::resources::SECRETS.key(Some("p"), "t");
        writer.write(&secret_key, Some((&secret, None)));
        assert!(
            view.decisions.allowed(&alice, &get),
            "a Secret is no part of the policy"
        );
        writer.write(&role_key, Some((&role, None)));
        assert!(!view.decisions.allowed(&alice, &get), "a role is");
    }
}

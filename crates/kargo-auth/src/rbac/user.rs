//! The identity a request is authorized as (Kubernetes `user.Info`), and the well-known user and
//! group names.

use std::collections::BTreeMap;

/// Group whose members are allowed everything before RBAC is consulted, and may always escalate.
pub(crate) const SYSTEM_MASTERS: &str = "system:masters";
/// Group of every authenticated user.
pub(crate) const SYSTEM_AUTHENTICATED: &str = "system:authenticated";
/// Group of the anonymous user.
pub(crate) const SYSTEM_UNAUTHENTICATED: &str = "system:unauthenticated";
/// Group of every service account.
pub(crate) const SYSTEM_SERVICE_ACCOUNTS: &str = "system:serviceaccounts";
/// Username of unauthenticated requests.
pub(crate) const ANONYMOUS_USER: &str = "system:anonymous";
/// Prefix of every service account username: `system:serviceaccount:<namespace>:<name>`.
pub(crate) const SERVICE_ACCOUNT_USERNAME_PREFIX: &str = "system:serviceaccount:";

/// Who is making a request: a username, its uid, its groups and extra attributes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserInfo {
    /// The username, e.g. `system:serviceaccount:p:sa`.
    pub username: String,
    /// The uid of the user; for a service account the uid of the ServiceAccount object.
    pub uid: String,
    /// The groups, in the order they are reported (SelfSubjectReview, messages).
    pub groups: Vec<String>,
    /// Extra attributes, e.g. `authentication.kubernetes.io/credential-id`.
    pub extra: BTreeMap<String, Vec<String>>,
    /// The OIDC claims of a person signed in with single sign-on (every string or
    /// string-array claim of the ID token, by name); empty for every other user. Kargo Roles
    /// are mapped to people by these (`rbac.kargo.akuity.io/claims`).
    pub claims: std::collections::BTreeMap<String, Vec<String>>,
    /// The token Secret of a legacy service-account token the user authenticated with: the
    /// audit log names it (`authentication.k8s.io/legacy-token-manual-secret`, as
    /// kube-apiserver). Not part of the identity as reported: no review or response shows it.
    pub legacy_token_secret: Option<String>,
}

impl UserInfo {
    /// A user with a name and groups, no uid and no extra attributes.
    pub fn new(
        username: impl Into<String>,
        groups: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        UserInfo {
            username: username.into(),
            uid: String::new(),
            groups: groups.into_iter().map(Into::into).collect(),
            extra: BTreeMap::new(),
            claims: BTreeMap::new(),
            legacy_token_secret: None,
        }
    }

    /// The identity of an authenticated service account: username
    /// `system:serviceaccount:<namespace>:<name>`, groups `system:serviceaccounts`,
    /// `system:serviceaccounts:<namespace>`, `system:authenticated` in that order.
    pub fn service_account(namespace: &str, name: &str, uid: impl Into<String>) -> Self {
        UserInfo {
            username: service_account_username(namespace, name),
            uid: uid.into(),
            groups: vec![
                SYSTEM_SERVICE_ACCOUNTS.to_owned(),
                service_account_namespace_group(namespace),
                SYSTEM_AUTHENTICATED.to_owned(),
            ],
            extra: BTreeMap::new(),
            claims: BTreeMap::new(),
            legacy_token_secret: None,
        }
    }

    /// The identity of an unauthenticated request: `system:anonymous` in `system:unauthenticated`.
    pub fn anonymous() -> Self {
        UserInfo::new(ANONYMOUS_USER, [SYSTEM_UNAUTHENTICATED])
    }

    /// Whether the user is in `group`.
    pub(crate) fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }

    /// Whether the user is in `system:masters`, which bypasses RBAC and escalation checks.
    pub fn is_system_master(&self) -> bool {
        self.in_group(SYSTEM_MASTERS)
    }
}

impl UserInfo {
    /// The user a request impersonating `username` is served as (kube-apiserver's
    /// impersonation filter): with `groups` when given, else a service account's fixed groups;
    /// every user but `system:anonymous` in `system:authenticated`.
    pub fn impersonated(
        username: String,
        groups: Option<Vec<String>>,
        uid: Option<String>,
        extra: BTreeMap<String, Vec<String>>,
    ) -> UserInfo {
        let groups = match (groups, split_service_account_username(&username)) {
            (Some(groups), _) => groups,
            (None, Some((namespace, _))) => vec![
                SYSTEM_SERVICE_ACCOUNTS.to_owned(),
                service_account_namespace_group(namespace),
            ],
            (None, None) => Vec::new(),
        };
        let mut user = UserInfo::new(username, groups);
        let marked = user
            .groups
            .iter()
            .any(|g| g == SYSTEM_AUTHENTICATED || g == SYSTEM_UNAUTHENTICATED);
        if user.username != ANONYMOUS_USER && !marked {
            user.groups.push(SYSTEM_AUTHENTICATED.to_owned());
        }
        user.uid = uid.unwrap_or_default();
        user.extra = extra;
        user
    }
}

/// `(namespace, name)` of a `system:serviceaccount:<namespace>:<name>` username, or `None` for
/// any other user.
pub fn split_service_account_username(username: &str) -> Option<(&str, &str)> {
    let (namespace, name) = username
        .strip_prefix(SERVICE_ACCOUNT_USERNAME_PREFIX)?
        .split_once(':')?;
    (!namespace.is_empty() && !name.is_empty() && !name.contains(':')).then_some((namespace, name))
}

/// `system:serviceaccount:<namespace>:<name>`.
pub(crate) fn service_account_username(namespace: &str, name: &str) -> String {
    format!("{SERVICE_ACCOUNT_USERNAME_PREFIX}{namespace}:{name}")
}

/// `system:serviceaccounts:<namespace>`, the group of every service account of a namespace.
pub(crate) fn service_account_namespace_group(namespace: &str) -> String {
    format!("{SYSTEM_SERVICE_ACCOUNTS}:{namespace}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_account_identity_has_kubernetes_username_and_groups_in_order() {
        let user = UserInfo::service_account("p", "sa", "uid-1");
        assert_eq!(user.username, "system:serviceaccount:p:sa");
        assert_eq!(user.uid, "uid-1");
        assert_eq!(
            user.groups,
            [
                "system:serviceaccounts",
                "system:serviceaccounts:p",
                "system:authenticated"
            ]
        );
        assert!(user.extra.is_empty());
    }

    #[test]
    fn anonymous_user_is_in_unauthenticated_group() {
        let user = UserInfo::anonymous();
        assert_eq!(user.username, "system:anonymous");
        assert_eq!(user.groups, ["system:unauthenticated"]);
    }
}

//! Impersonation, as kube-apiserver's filter does it: a request carrying `Impersonate-User`
//! (and optionally `Impersonate-Group`, `Impersonate-Uid`, `Impersonate-Extra-<key>`) is
//! served as that user once the authenticated user is allowed to `impersonate` each part:
//! `users` (or the `serviceaccounts` object a `system:serviceaccount:<ns>:<name>` user names),
//! `groups`, `uids` and `userextras/<key>` (the last two in the API group
//! `authentication.k8s.io`). A part not allowed answers kube-apiserver's 403; a group, uid or
//! extra without a user answers its 500 ("requested ... without impersonating a user").
//!
//! `kubectl --as`, `--as-group`, `--as-uid` and the client libraries send these headers; Argo CD
//! and Flux use them to limit a sync to a tenant's service account.

use std::collections::BTreeMap;
use std::sync::Arc;

use http::HeaderMap;
use kargo_auth::authz::Authorizer;
use kargo_auth::rbac::{Attributes, ResourceAttributes, UserInfo, split_service_account_username};
use kargo_registry::status::Status;

const USER: &str = "impersonate-user";
const GROUP: &str = "impersonate-group";
const UID: &str = "impersonate-uid";
const EXTRA_PREFIX: &str = "impersonate-extra-";

/// The API group of the `uids` and `userextras` resources.
const AUTHENTICATION_GROUP: &str = "authentication.k8s.io";

/// Who a request asks to act as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Wanted {
    user: String,
    /// `None` when no `Impersonate-Group` was given.
    groups: Option<Vec<String>>,
    uid: Option<String>,
    extra: BTreeMap<String, Vec<String>>,
}

/// The impersonation `headers` ask for: `Ok(None)` when they ask for none, an error (in
/// kube-apiserver's words) when they ask for groups, a uid or extras without a user.
pub(crate) fn wanted(headers: &HeaderMap) -> Result<Option<Wanted>, String> {
    // Every authenticated request asks: one pass over the names, no lookup, when none is asked.
    if !headers
        .keys()
        .any(|name| name.as_str().starts_with("impersonate-"))
    {
        return Ok(None);
    }
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect()
    };
    let groups = values(GROUP);
    let uid = headers
        .get(UID)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in headers {
        if let Some(key) = name.as_str().strip_prefix(EXTRA_PREFIX) {
            let key = percent_decode(key);
            extra
                .entry(key)
                .or_default()
                .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
        }
    }
    let user = headers
        .get(USER)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .filter(|u| !u.is_empty());
    let Some(user) = user else {
        if groups.is_empty() && uid.is_none() && extra.is_empty() {
            return Ok(None);
        }
        let mut asked: Vec<String> = groups.iter().map(|g| format!("group {g}")).collect();
        asked.extend(uid.iter().map(|u| format!("uid {u}")));
        asked.extend(extra.keys().map(|k| format!("extra {k}")));
        return Err(format!(
            "requested [{}] without impersonating a user",
            asked.join(" ")
        ));
    };
    Ok(Some(Wanted {
        user,
        groups: (!groups.is_empty()).then_some(groups),
        uid,
        extra,
    }))
}

/// The user a request is served as: `user`, or whom its impersonation headers name once
/// `user` may impersonate each part. Otherwise kube-apiserver's 403 for the first part refused,
/// or a 400 for parts without a user (kube-apiserver answers that with a 500; a client's
/// mistake is not a server error here, nor counted as one).
pub(crate) fn act_as(
    authz: &Authorizer,
    user: Arc<UserInfo>,
    headers: &HeaderMap,
) -> Result<Arc<UserInfo>, Status> {
    let wanted = match wanted(headers) {
        Ok(None) => return Ok(user),
        Ok(Some(wanted)) => wanted,
        Err(message) => return Err(Status::bad_request(message)),
    };
    for check in wanted.checks() {
        authz.authorize(&user, &check)?;
    }
    let acting = Arc::new(wanted.user());
    // The audit log names both (kube's `user` and `impersonatedUser`); the decision it reports
    // is the one on the request, made for the impersonated user.
    crate::observe::note(|notes| {
        notes.impersonator = Some(UserInfo::clone(&user));
        notes.authenticated = Some(acting.username.clone());
        notes.decision = None;
    });
    Ok(acting)
}

impl Wanted {
    /// What the impersonating user must be allowed, in kube-apiserver's order: the user (or
    /// service account), each group, each extra value, the uid.
    pub(crate) fn checks(&self) -> Vec<Attributes> {
        let impersonate = |namespace: &str, group: &str, resource: &str, name: &str| {
            Attributes::resource("impersonate", namespace, group, resource).with_name(name)
        };
        let mut checks: Vec<ResourceAttributes> = Vec::new();
        checks.push(match split_service_account_username(&self.user) {
            Some((namespace, name)) => impersonate(namespace, "", "serviceaccounts", name),
            None => impersonate("", "", "users", &self.user),
        });
        for group in self.groups.iter().flatten() {
            checks.push(impersonate("", "", "groups", group));
        }
        for (key, values) in &self.extra {
            for value in values {
                checks.push(
                    impersonate("", AUTHENTICATION_GROUP, "userextras", value)
                        .with_subresource(key),
                );
            }
        }
        if let Some(uid) = &self.uid {
            checks.push(impersonate("", AUTHENTICATION_GROUP, "uids", uid));
        }
        checks.into_iter().map(Attributes::from).collect()
    }

    /// The user the request is then served as ([`UserInfo::impersonated`]).
    pub(crate) fn user(self) -> UserInfo {
        UserInfo::impersonated(self.user, self.groups, self.uid, self.extra)
    }
}

/// An `Impersonate-Extra-` key, percent-decoded (header names cannot carry every character a
/// key may have).
fn percent_decode(key: &str) -> String {
    form_urlencoded::parse(format!("k={}", key.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| key.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                http::HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }

    #[test]
    fn no_header_asks_for_nothing_and_parts_without_a_user_are_refused() {
        assert_eq!(wanted(&headers(&[])), Ok(None));
        assert_eq!(
            wanted(&headers(&[("Impersonate-Group", "devs")])),
            Err("requested [group devs] without impersonating a user".to_owned())
        );
    }

    #[test]
    fn a_service_account_is_checked_as_one_and_keeps_its_groups() {
        let wanted = wanted(&headers(&[(
            "Impersonate-User",
            "system:serviceaccount:p:bot",
        )]))
        .unwrap()
        .unwrap();
        assert_eq!(
            wanted.checks(),
            [Attributes::from(
                Attributes::resource("impersonate", "p", "", "serviceaccounts").with_name("bot")
            )]
        );
        let user = wanted.user();
        assert_eq!(user.username, "system:serviceaccount:p:bot");
        assert_eq!(
            user.groups,
            [
                "system:serviceaccounts",
                "system:serviceaccounts:p",
                "system:authenticated"
            ]
        );
    }

    #[test]
    fn users_groups_extras_and_uids_are_each_checked() {
        let wanted = wanted(&headers(&[
            ("Impersonate-User", "alice"),
            ("Impersonate-Group", "devs"),
            ("Impersonate-Group", "ops"),
            ("Impersonate-Uid", "u-1"),
            ("Impersonate-Extra-Scopes%2Fone", "view"),
        ]))
        .unwrap()
        .unwrap();
        let checks: Vec<String> = wanted
            .checks()
            .iter()
            .map(|a| match a {
                Attributes::Resource(r) => format!(
                    "{}/{}/{}/{}",
                    r.api_group, r.resource, r.subresource, r.name
                ),
                Attributes::NonResource(_) => unreachable!(),
            })
            .collect();
        assert_eq!(
            checks,
            [
                "/users//alice",
                "/groups//devs",
                "/groups//ops",
                "authentication.k8s.io/userextras/scopes/one/view",
                "authentication.k8s.io/uids//u-1",
            ]
        );
        let user = wanted.user();
        assert_eq!(user.groups, ["devs", "ops", "system:authenticated"]);
        assert_eq!(user.uid, "u-1");
        assert_eq!(user.extra["scopes/one"], ["view"]);
    }
}

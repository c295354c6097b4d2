//! The 403 Forbidden error as kube-apiserver words it (`apierrors.NewForbidden` and
//! `responsewriters.Forbidden`), and its `details`.

use super::attributes::Attributes;
use super::gofmt::{aggregate, quote};
use super::user::UserInfo;

/// `details` of a Forbidden `Status`; empty fields are omitted when serialized.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForbiddenDetails {
    /// The object name, if the request named one.
    pub name: String,
    /// The API group (`""` for core).
    pub group: String,
    /// The resource (Kubernetes puts the resource, not the kind, here).
    pub kind: String,
}

/// A Forbidden error: the `message` and `details` of a 403 `Status` with reason `Forbidden`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Forbidden {
    /// The full message.
    pub message: String,
    /// The details.
    pub details: ForbiddenDetails,
}

/// `<resource>` or `<resource>.<group>`, as `schema.GroupResource.String()`.
pub fn group_resource(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_owned()
    } else {
        format!("{resource}.{group}")
    }
}

/// Replaces `&`, `<` and `>` by HTML entities, as kube-apiserver does to the part of a Forbidden
/// message it builds from request attributes.
pub(crate) fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

impl Forbidden {
    /// `apierrors.NewForbidden(group/resource, name, err)`: the message is
    /// `<resource>[.<group>] "<name>" is forbidden: <text>`, without `"<name>" ` when the name is
    /// empty, and `forbidden: <text>` when group and resource are both empty.
    pub fn new(group: &str, resource: &str, name: &str, text: &str) -> Self {
        let message = if group.is_empty() && resource.is_empty() {
            format!("forbidden: {text}")
        } else if name.is_empty() {
            format!("{} is forbidden: {text}", group_resource(group, resource))
        } else {
            format!(
                "{} {} is forbidden: {text}",
                group_resource(group, resource),
                quote(name)
            )
        };
        Forbidden {
            message,
            details: ForbiddenDetails {
                name: name.to_owned(),
                group: group.to_owned(),
                kind: resource.to_owned(),
            },
        }
    }

    /// The error kube-apiserver returns when no authorizer allowed a request. `errors` are the
    /// RBAC resolution errors of the decision, appended as `: RBAC: <aggregate>` if any.
    pub(crate) fn for_request(user: &UserInfo, attrs: &Attributes, errors: &[String]) -> Self {
        let mut text = html_escape(&request_text(user, attrs));
        if !errors.is_empty() {
            text.push_str(": RBAC: ");
            text.push_str(&aggregate(errors));
        }
        match attrs {
            Attributes::Resource(r) => Forbidden::new(&r.api_group, &r.resource, &r.name, &text),
            Attributes::NonResource(_) => Forbidden::new("", "", "", &text),
        }
    }
}

/// `User "<u>" cannot <verb> ...` (before HTML escaping).
fn request_text(user: &UserInfo, attrs: &Attributes) -> String {
    let username = quote(&user.username);
    match attrs {
        Attributes::NonResource(n) => {
            format!("User {username} cannot {} path {}", n.verb, quote(&n.path))
        }
        Attributes::Resource(r) => {
            let resource = if r.subresource.is_empty() {
                r.resource.clone()
            } else {
                format!("{}/{}", r.resource, r.subresource)
            };
            let scope = if r.namespace.is_empty() {
                "at the cluster scope".to_owned()
            } else {
                format!("in the namespace {}", quote(&r.namespace))
            };
            format!(
                "User {username} cannot {} resource {} in API group {} {scope}",
                r.verb,
                quote(&resource),
                quote(&r.api_group)
            )
        }
    }
}

/// The message of [`Forbidden::for_request`].
#[cfg(test)]
pub(crate) fn forbidden_message(user: &UserInfo, attrs: &Attributes, errors: &[String]) -> String {
    Forbidden::for_request(user, attrs, errors).message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa() -> UserInfo {
        UserInfo::service_account("p", "sa", "uid")
    }

    fn check(
        user: &UserInfo,
        attrs: Attributes,
        errors: &[&str],
        message: &str,
        details: [&str; 3],
    ) {
        let errors: Vec<String> = errors.iter().map(|e| (*e).to_owned()).collect();
        let got = Forbidden::for_request(user, &attrs, &errors);
        assert_eq!(got.message, message);
        let [name, group, kind] = details;
        assert_eq!(
            got.details,
            ForbiddenDetails {
                name: name.into(),
                group: group.into(),
                kind: kind.into()
            }
        );
    }

    #[test]
    fn namespaced_collection_request_has_no_name_in_prefix() {
        check(
            &sa(),
            Attributes::resource("list", "p", "", "pods").into(),
            &[],
            r#"pods is forbidden: User "system:serviceaccount:p:sa" cannot list resource "pods" in API group "" in the namespace "p""#,
            ["", "", "pods"],
        );
    }

    #[test]
    fn named_subresource_request_keeps_subresource_out_of_prefix() {
        check(
            &sa(),
            Attributes::resource("create", "p", "", "serviceaccounts")
                .with_name("sa")
                .with_subresource("token")
                .into(),
            &[],
            r#"serviceaccounts "sa" is forbidden: User "system:serviceaccount:p:sa" cannot create resource "serviceaccounts/token" in API group "" in the namespace "p""#,
            ["sa", "", "serviceaccounts"],
        );
    }

    #[test]
    fn cluster_scoped_request_with_group_has_group_suffix_in_prefix() {
        check(
            &sa(),
            Attributes::resource("get", "", "rbac.authorization.k8s.io", "clusterroles")
                .with_name("admin")
                .into(),
            &[],
            r#"clusterroles.rbac.authorization.k8s.io "admin" is forbidden: User "system:serviceaccount:p:sa" cannot get resource "clusterroles" in API group "rbac.authorization.k8s.io" at the cluster scope"#,
            ["admin", "rbac.authorization.k8s.io", "clusterroles"],
        );
    }

    #[test]
    fn non_resource_request_says_path() {
        check(
            &UserInfo::anonymous(),
            Attributes::non_resource("get", "/metrics"),
            &[],
            r#"forbidden: User "system:anonymous" cannot get path "/metrics""#,
            ["", "", ""],
        );
    }

    #[test]
    fn resolution_errors_are_appended_after_rbac() {
        check(
            &sa(),
            Attributes::resource("list", "p", "", "secrets").into(),
            &[r#"clusterrole.rbac.authorization.k8s.io "x" not found"#],
            r#"secrets is forbidden: User "system:serviceaccount:p:sa" cannot list resource "secrets" in API group "" in the namespace "p": RBAC: clusterrole.rbac.authorization.k8s.io "x" not found"#,
            ["", "", "secrets"],
        );
        check(
            &sa(),
            Attributes::resource("list", "p", "", "secrets").into(),
            &[
                r#"clusterrole.rbac.authorization.k8s.io "x" not found"#,
                r#"role.rbac.authorization.k8s.io "y" not found"#,
            ],
            r#"secrets is forbidden: User "system:serviceaccount:p:sa" cannot list resource "secrets" in API group "" in the namespace "p": RBAC: [clusterrole.rbac.authorization.k8s.io "x" not found, role.rbac.authorization.k8s.io "y" not found]"#,
            ["", "", "secrets"],
        );
    }

    #[test]
    fn html_special_characters_from_the_request_are_escaped() {
        check(
            &UserInfo::new("<b>&", Vec::<String>::new()),
            Attributes::non_resource("get", "/a<b>"),
            &[],
            r#"forbidden: User "&lt;b&gt;&amp;" cannot get path "/a&lt;b&gt;""#,
            ["", "", ""],
        );
        check(
            &UserInfo::new("u", Vec::<String>::new()),
            Attributes::resource("get", "n&s", "", "pods")
                .with_name("a<b")
                .into(),
            &[],
            r#"pods "a<b" is forbidden: User "u" cannot get resource "pods" in API group "" in the namespace "n&amp;s""#,
            ["a<b", "", "pods"],
        );
    }

    #[test]
    fn new_builds_kargo_style_messages() {
        let got = Forbidden::new("", "secrets", "tok", "create is not permitted");
        assert_eq!(
            got.message,
            r#"secrets "tok" is forbidden: create is not permitted"#
        );
        let got = Forbidden::new("kargo.akuity.io", "projects", "", "list is not permitted");
        assert_eq!(
            got.message,
            "projects.kargo.akuity.io is forbidden: list is not permitted"
        );
    }

    #[test]
    fn forbidden_message_is_the_message_of_for_request() {
        let attrs: Attributes = Attributes::resource("delete", "p", "", "pods")
            .with_name("x")
            .into();
        assert_eq!(
            forbidden_message(&sa(), &attrs, &[]),
            Forbidden::for_request(&sa(), &attrs, &[]).message
        );
    }
}

//! Whether one `PolicyRule` allows a request: the matching of verbs, API groups, resources and
//! subresources, resource names and non-resource URLs, exactly as Kubernetes'
//! `rbac.RuleAllows` and `pkg/apis/rbac/v1/evaluation_helpers.go`.

use k8s_openapi::api::rbac::v1::PolicyRule;

use super::attributes::Attributes;

/// Wildcard that matches every verb, API group, resource and non-resource URL.
pub const ALL: &str = "*";

/// The items of an optional list field, empty when the field is absent.
pub(crate) fn items(list: &Option<Vec<String>>) -> &[String] {
    list.as_deref().unwrap_or_default()
}

/// Whether the rule allows the request.
pub(crate) fn rule_allows(attrs: &Attributes, rule: &PolicyRule) -> bool {
    match attrs {
        Attributes::Resource(r) => {
            verb_matches(rule, &r.verb)
                && api_group_matches(rule, &r.api_group)
                && resource_matches(rule, &r.resource, &r.subresource)
                && resource_name_matches(rule, &r.name)
        }
        Attributes::NonResource(n) => {
            verb_matches(rule, &n.verb) && non_resource_url_matches(rule, &n.path)
        }
    }
}

/// `verbs` contains `*` or the verb.
pub(crate) fn verb_matches(rule: &PolicyRule, verb: &str) -> bool {
    rule.verbs.iter().any(|v| v == ALL || v == verb)
}

/// `apiGroups` contains `*` or the group (`""` is the core group).
pub(crate) fn api_group_matches(rule: &PolicyRule, group: &str) -> bool {
    items(&rule.api_groups)
        .iter()
        .any(|g| g == ALL || g == group)
}

/// `resources` contains `*` (which covers subresources too), exactly `resource` or
/// `resource/subresource`, or `*/subresource` when the request has that subresource.
/// `pods` does not match `pods/log`, and `pods/*` has no wildcard meaning.
pub(crate) fn resource_matches(rule: &PolicyRule, resource: &str, subresource: &str) -> bool {
    items(&rule.resources).iter().any(|r| {
        r == ALL
            || is_combined(r, resource, subresource)
            || (!subresource.is_empty() && r.strip_prefix("*/") == Some(subresource))
    })
}

/// `r == resource` without a subresource, `r == resource + "/" + subresource` with one.
fn is_combined(r: &str, resource: &str, subresource: &str) -> bool {
    if subresource.is_empty() {
        return r == resource;
    }
    r.strip_prefix(resource)
        .and_then(|rest| rest.strip_prefix('/'))
        .is_some_and(|sub| sub == subresource)
}

/// `resourceNames` is empty, or lists the name. Requests without a name (list, watch, create)
/// never match a rule that lists names.
pub(crate) fn resource_name_matches(rule: &PolicyRule, name: &str) -> bool {
    let names = items(&rule.resource_names);
    names.is_empty() || names.iter().any(|n| n == name)
}

/// `nonResourceURLs` contains `*`, the path, or an entry ending in `*` whose part before the
/// trailing stars is a prefix of the path (`/apis/*` matches `/apis/x` but not `/apis`).
pub(crate) fn non_resource_url_matches(rule: &PolicyRule, path: &str) -> bool {
    items(&rule.non_resource_urls)
        .iter()
        .any(|u| url_covers(u, path))
}

/// Whether a rule's non-resource URL entry covers `path`.
pub(crate) fn url_covers(rule_url: &str, path: &str) -> bool {
    rule_url == ALL
        || rule_url == path
        || (rule_url.ends_with('*') && path.starts_with(rule_url.trim_end_matches('*')))
}

//! Request attributes from a Kubernetes API path and method, as kube-apiserver derives them
//! (`apiserver/pkg/endpoints/request/requestinfo.go`): the verb, group, version, namespace,
//! resource, subresource and name that both routing and authorization read.

use std::borrow::Cow;

/// What a request addresses, borrowed from its path (it is derived on every request).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestInfo<'a> {
    /// Whether the path names a resource (else a non-resource path such as `/api` or `/version`).
    pub is_resource_request: bool,
    /// The request path.
    pub path: &'a str,
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`, or the
    /// lowercase HTTP method for non-resource requests.
    pub verb: Cow<'static, str>,
    /// API group (`""` for core).
    pub api_group: &'a str,
    /// API version.
    pub api_version: &'a str,
    /// Namespace (`""` if none).
    pub namespace: &'a str,
    /// Resource (plural).
    pub resource: &'a str,
    /// Subresource (`""` if none).
    pub subresource: &'a str,
    /// Object name (`""` for collections).
    pub name: &'a str,
    /// Whether the path has segments after the subresource (which no route serves).
    pub extra_segments: bool,
}

/// Subresources of a namespace, which must not be read as a resource inside it.
const NAMESPACE_SUBRESOURCES: &[&str] = &["status", "finalize"];

/// The most segments a resource path has (`apis/g/v/namespaces/n/resource/name/subresource`)
/// plus one: any further segment is extra whatever it is.
const MAX_SEGMENTS: usize = 9;

/// The lowercase verb of a non-resource request.
fn method_verb(method: &str) -> Cow<'static, str> {
    match method {
        "GET" => Cow::Borrowed("get"),
        "HEAD" => Cow::Borrowed("head"),
        "POST" => Cow::Borrowed("post"),
        "PUT" => Cow::Borrowed("put"),
        "PATCH" => Cow::Borrowed("patch"),
        "DELETE" => Cow::Borrowed("delete"),
        other => Cow::Owned(other.to_ascii_lowercase()),
    }
}

impl<'a> RequestInfo<'a> {
    /// Derives the request info from a method, path and whether `?watch=true` was given.
    pub fn parse(method: &str, path: &'a str, watch: bool) -> RequestInfo<'a> {
        let non_resource = || RequestInfo {
            is_resource_request: false,
            path,
            verb: method_verb(method),
            ..RequestInfo::default()
        };
        let mut segments = [""; MAX_SEGMENTS];
        let mut count = 0;
        for (slot, segment) in segments.iter_mut().zip(path.trim_matches('/').split('/')) {
            *slot = segment;
            count += 1;
        }
        let (group, version, mut rest) = match &segments[..count] {
            ["api", version, rest @ ..] if !rest.is_empty() => ("", *version, rest),
            ["apis", group, version, rest @ ..] if !rest.is_empty() => (*group, *version, rest),
            _ => return non_resource(),
        };
        let verb = match method {
            "POST" => "create",
            "GET" | "HEAD" => "get",
            "PUT" => "update",
            "PATCH" => "patch",
            "DELETE" => "delete",
            _ => return non_resource(),
        };
        let mut info = RequestInfo {
            is_resource_request: true,
            path,
            verb: Cow::Borrowed(verb),
            api_group: group,
            api_version: version,
            ..RequestInfo::default()
        };
        if rest.first() == Some(&"namespaces") && rest.len() > 1 {
            info.namespace = rest[1];
            if rest.len() > 2 && !NAMESPACE_SUBRESOURCES.contains(&rest[2]) {
                rest = &rest[2..];
            }
        }
        if rest.len() >= 3 {
            info.subresource = rest[2];
        }
        info.extra_segments = rest.len() > 3;
        if rest.len() >= 2 {
            info.name = rest[1];
        }
        info.resource = rest[0];
        let verb = match (verb, info.name.is_empty(), watch) {
            ("get", _, true) => "watch",
            ("get", true, false) => "list",
            ("delete", true, _) => "deletecollection",
            (verb, _, _) => verb,
        };
        info.verb = Cow::Borrowed(verb);
        info
    }

    /// Whether the request carries more path segments than a resource request can have.
    pub fn has_extra_segments(&self) -> bool {
        self.extra_segments
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(
        method: &str,
        path: &str,
        watch: bool,
        expected: (&str, &str, &str, &str, &str, &str),
    ) {
        let info = RequestInfo::parse(method, path, watch);
        let got = (
            &*info.verb,
            info.api_group,
            info.namespace,
            info.resource,
            info.subresource,
            info.name,
        );
        assert_eq!(got, expected, "{method} {path}");
        assert!(info.is_resource_request, "{method} {path}");
    }

    #[test]
    fn resource_paths_yield_kube_apiserver_attributes() {
        check(
            "GET",
            "/api/v1/namespaces/p/serviceaccounts",
            false,
            ("list", "", "p", "serviceaccounts", "", ""),
        );
        check(
            "GET",
            "/api/v1/namespaces/p/serviceaccounts",
            true,
            ("watch", "", "p", "serviceaccounts", "", ""),
        );
        check(
            "GET",
            "/api/v1/namespaces/p/serviceaccounts/sa",
            false,
            ("get", "", "p", "serviceaccounts", "", "sa"),
        );
        check(
            "POST",
            "/api/v1/namespaces/p/serviceaccounts/sa/token",
            false,
            ("create", "", "p", "serviceaccounts", "token", "sa"),
        );
        check(
            "DELETE",
            "/api/v1/namespaces/p/secrets",
            false,
            ("deletecollection", "", "p", "secrets", "", ""),
        );
        check(
            "GET",
            "/api/v1/namespaces/p",
            false,
            ("get", "", "p", "namespaces", "", "p"),
        );
        check(
            "PUT",
            "/api/v1/namespaces/p/finalize",
            false,
            ("update", "", "p", "namespaces", "finalize", "p"),
        );
        check(
            "GET",
            "/api/v1/namespaces",
            false,
            ("list", "", "", "namespaces", "", ""),
        );
        check(
            "GET",
            "/api/v1/serviceaccounts",
            false,
            ("list", "", "", "serviceaccounts", "", ""),
        );
        check(
            "PATCH",
            "/apis/rbac.authorization.k8s.io/v1/clusterroles/x",
            false,
            (
                "patch",
                "rbac.authorization.k8s.io",
                "",
                "clusterroles",
                "",
                "x",
            ),
        );
        check(
            "PUT",
            "/apis/kargo.akuity.io/v1alpha1/namespaces/p/stages/dev/status",
            false,
            ("update", "kargo.akuity.io", "p", "stages", "status", "dev"),
        );
    }

    #[test]
    fn discovery_and_other_paths_are_non_resource_requests() {
        for path in [
            "/api",
            "/api/v1",
            "/apis",
            "/apis/rbac.authorization.k8s.io",
            "/apis/rbac.authorization.k8s.io/v1",
            "/version",
            "/healthz",
        ] {
            let info = RequestInfo::parse("GET", path, false);
            assert!(!info.is_resource_request, "{path}");
            assert_eq!(info.verb, "get");
        }
    }

    #[test]
    fn extra_segments_are_detected() {
        assert!(
            RequestInfo::parse("GET", "/api/v1/namespaces/p/secrets/s/x/y", false)
                .has_extra_segments()
        );
        assert!(
            !RequestInfo::parse("GET", "/api/v1/namespaces/p/secrets/s", false)
                .has_extra_segments()
        );
        assert!(!RequestInfo::parse("GET", "/api/v1/namespaces/p", false).has_extra_segments());
        assert!(
            !RequestInfo::parse("PUT", "/api/v1/namespaces/p/finalize", false).has_extra_segments()
        );
    }
}

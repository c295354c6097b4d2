//! Request attributes from a Kubernetes API path and method, as kube-apiserver derives them
//! (`apiserver/pkg/endpoints/request/requestinfo.go`): the verb, group, version, namespace,
//! resource, subresource and name that both routing and authorization read.

/// What a request addresses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestInfo {
    /// Whether the path names a resource (else a non-resource path such as `/api` or `/version`).
    pub is_resource_request: bool,
    /// The request path.
    pub path: String,
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`, or the
    /// lowercase HTTP method for non-resource requests.
    pub verb: String,
    /// API group (`""` for core).
    pub api_group: String,
    /// API version.
    pub api_version: String,
    /// Namespace (`""` if none).
    pub namespace: String,
    /// Resource (plural).
    pub resource: String,
    /// Subresource (`""` if none).
    pub subresource: String,
    /// Object name (`""` for collections).
    pub name: String,
    /// Whether the path has segments after the subresource (which no route serves).
    pub extra_segments: bool,
}

/// Subresources of a namespace, which must not be read as a resource inside it.
const NAMESPACE_SUBRESOURCES: &[&str] = &["status", "finalize"];

impl RequestInfo {
    /// Derives the request info from a method, path and whether `?watch=true` was given.
    pub fn parse(method: &str, path: &str, watch: bool) -> RequestInfo {
        let non_resource = || RequestInfo {
            is_resource_request: false,
            path: path.to_owned(),
            verb: method.to_ascii_lowercase(),
            ..RequestInfo::default()
        };
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        let (group, version, mut rest) = match parts.as_slice() {
            ["api", version, rest @ ..] if !rest.is_empty() => ("", *version, rest),
            ["apis", group, version, rest @ ..] if !rest.is_empty() => (*group, *version, rest),
            _ => return non_resource(),
        };
        let mut info = RequestInfo {
            is_resource_request: true,
            path: path.to_owned(),
            verb: match method {
                "POST" => "create",
                "GET" | "HEAD" => "get",
                "PUT" => "update",
                "PATCH" => "patch",
                "DELETE" => "delete",
                other => {
                    return RequestInfo {
                        verb: other.to_ascii_lowercase(),
                        ..non_resource()
                    };
                }
            }
            .to_owned(),
            api_group: group.to_owned(),
            api_version: version.to_owned(),
            ..RequestInfo::default()
        };
        if rest.first() == Some(&"namespaces") && rest.len() > 1 {
            info.namespace = rest[1].to_owned();
            if rest.len() > 2 && !NAMESPACE_SUBRESOURCES.contains(&rest[2]) {
                rest = &rest[2..];
            }
        }
        if rest.len() >= 3 {
            info.subresource = rest[2].to_owned();
        }
        info.extra_segments = rest.len() > 3;
        if rest.len() >= 2 {
            info.name = rest[1].to_owned();
        }
        info.resource = rest[0].to_owned();
        if info.name.is_empty() {
            match info.verb.as_str() {
                "get" if watch => info.verb = "watch".into(),
                "get" => info.verb = "list".into(),
                "delete" => info.verb = "deletecollection".into(),
                _ => {}
            }
        } else if info.verb == "get" && watch {
            info.verb = "watch".into();
        }
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
            info.verb.as_str(),
            info.api_group.as_str(),
            info.namespace.as_str(),
            info.resource.as_str(),
            info.subresource.as_str(),
            info.name.as_str(),
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

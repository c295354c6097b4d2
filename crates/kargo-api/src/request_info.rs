//! Request attributes from a Kubernetes API path and method, as kube-apiserver derives them
//! (`apiserver/pkg/endpoints/request/requestinfo.go`): the verb, group, version, namespace,
//! resource, subresource and name that both routing and authorization read.

use std::fmt;

/// What a request does, as kube-apiserver names it: one of eight verbs on a resource, or the
/// lowercase HTTP method on a non-resource path (`/api`, `/version`, `/healthz`, ...).
/// [`Verb::as_str`] gives the exact Kubernetes string, which RBAC rules match and Forbidden
/// messages print.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum Verb {
    /// Read one object (`GET` of a named resource), or `GET` of a non-resource path.
    #[default]
    Get,
    /// Read a collection (`GET` of a collection).
    List,
    /// Follow changes (`GET` with `?watch=true`).
    Watch,
    /// `POST` to a collection or a subresource.
    Create,
    /// `PUT` of an object.
    Update,
    /// `PATCH` of an object, or of a non-resource path.
    Patch,
    /// `DELETE` of an object, or of a non-resource path.
    Delete,
    /// `DELETE` of a collection.
    DeleteCollection,
    /// `HEAD` of a non-resource path.
    Head,
    /// `POST` to a non-resource path.
    Post,
    /// `PUT` of a non-resource path.
    Put,
    /// `OPTIONS` of a non-resource path.
    Options,
    /// `CONNECT` of a non-resource path.
    Connect,
    /// `TRACE` of a non-resource path.
    Trace,
    /// Any other (extension) method on a non-resource path, lowercased.
    Other(Box<str>),
}

impl Verb {
    /// The verb of a non-resource request: its method, lowercased (as kube-apiserver does).
    pub fn of_method(method: &str) -> Verb {
        match method {
            "GET" => Verb::Get,
            "HEAD" => Verb::Head,
            "POST" => Verb::Post,
            "PUT" => Verb::Put,
            "PATCH" => Verb::Patch,
            "DELETE" => Verb::Delete,
            "OPTIONS" => Verb::Options,
            "CONNECT" => Verb::Connect,
            "TRACE" => Verb::Trace,
            other => Verb::Other(other.to_ascii_lowercase().into()),
        }
    }

    /// The Kubernetes string: what RBAC rules list and Forbidden messages print.
    pub fn as_str(&self) -> &str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
            Verb::DeleteCollection => "deletecollection",
            Verb::Head => "head",
            Verb::Post => "post",
            Verb::Put => "put",
            Verb::Options => "options",
            Verb::Connect => "connect",
            Verb::Trace => "trace",
            Verb::Other(verb) => verb,
        }
    }
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a request addresses, borrowed from its path (it is derived on every request).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestInfo<'a> {
    /// Whether the path names a resource (else a non-resource path such as `/api` or `/version`).
    pub is_resource_request: bool,
    /// The request path.
    pub path: &'a str,
    /// What the request does.
    pub verb: Verb,
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

impl<'a> RequestInfo<'a> {
    /// Derives the request info from a method, path and whether `?watch=true` was given.
    pub fn parse(method: &str, path: &'a str, watch: bool) -> RequestInfo<'a> {
        let non_resource = || RequestInfo {
            is_resource_request: false,
            path,
            verb: Verb::of_method(method),
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
            "POST" => Verb::Create,
            "GET" | "HEAD" => Verb::Get,
            "PUT" => Verb::Update,
            "PATCH" => Verb::Patch,
            "DELETE" => Verb::Delete,
            _ => return non_resource(),
        };
        let mut info = RequestInfo {
            is_resource_request: true,
            path,
            verb: Verb::Get,
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
        info.verb = match (verb, info.name.is_empty(), watch) {
            (Verb::Get, _, true) => Verb::Watch,
            (Verb::Get, true, false) => Verb::List,
            (Verb::Delete, true, _) => Verb::DeleteCollection,
            (verb, _, _) => verb,
        };
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
            assert_eq!(info.verb, Verb::Get);
        }
    }

    #[test]
    fn non_resource_verbs_are_the_lowercase_method() {
        for (method, verb) in [
            ("GET", "get"),
            ("HEAD", "head"),
            ("POST", "post"),
            ("PUT", "put"),
            ("PATCH", "patch"),
            ("DELETE", "delete"),
            ("OPTIONS", "options"),
            ("TRACE", "trace"),
            ("PURGE", "purge"),
        ] {
            let info = RequestInfo::parse(method, "/version", false);
            assert_eq!(info.verb.as_str(), verb, "{method}");
            assert_eq!(info.verb.to_string(), verb, "{method}");
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

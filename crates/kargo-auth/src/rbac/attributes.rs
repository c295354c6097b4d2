//! What a request asks to do (Kubernetes `authorizer.Attributes`): a verb on a resource, or a verb
//! on a non-resource path.

/// The attributes of a request that RBAC decides on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attributes {
    /// A request on an API resource, e.g. `list pods` in a namespace.
    Resource(ResourceAttributes),
    /// A request on a path outside the resource API, e.g. `get /healthz`.
    NonResource(NonResourceAttributes),
}

/// A request on an API resource.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceAttributes {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`, or a
    /// special verb such as `bind`, `escalate`, `impersonate`.
    pub verb: String,
    /// The namespace; `""` for cluster-scoped resources and requests across all namespaces.
    pub namespace: String,
    /// The API group; `""` is the core group.
    pub api_group: String,
    /// The resource, plural and lowercase, e.g. `pods`.
    pub resource: String,
    /// The subresource, e.g. `token` or `status`; `""` if none.
    pub subresource: String,
    /// The object name; `""` for list, watch, create and collection requests.
    pub name: String,
}

/// A request on a path outside the resource API.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NonResourceAttributes {
    /// The lowercased HTTP method, e.g. `get`.
    pub verb: String,
    /// The request path, e.g. `/healthz`.
    pub path: String,
}

impl ResourceAttributes {
    /// A request with no name and no subresource.
    pub fn new(verb: &str, namespace: &str, api_group: &str, resource: &str) -> Self {
        ResourceAttributes {
            verb: verb.to_owned(),
            namespace: namespace.to_owned(),
            api_group: api_group.to_owned(),
            resource: resource.to_owned(),
            subresource: String::new(),
            name: String::new(),
        }
    }

    /// The same request on the named object.
    pub fn with_name(mut self, name: &str) -> Self {
        name.clone_into(&mut self.name);
        self
    }

    /// The same request on a subresource.
    pub fn with_subresource(mut self, subresource: &str) -> Self {
        subresource.clone_into(&mut self.subresource);
        self
    }
}

impl From<ResourceAttributes> for Attributes {
    fn from(attrs: ResourceAttributes) -> Self {
        Attributes::Resource(attrs)
    }
}

impl From<NonResourceAttributes> for Attributes {
    fn from(attrs: NonResourceAttributes) -> Self {
        Attributes::NonResource(attrs)
    }
}

impl Attributes {
    /// A resource request with no name and no subresource; see [`ResourceAttributes::new`].
    pub fn resource(
        verb: &str,
        namespace: &str,
        api_group: &str,
        resource: &str,
    ) -> ResourceAttributes {
        ResourceAttributes::new(verb, namespace, api_group, resource)
    }

    /// A non-resource request.
    pub fn non_resource(verb: &str, path: &str) -> Self {
        Attributes::NonResource(NonResourceAttributes {
            verb: verb.to_owned(),
            path: path.to_owned(),
        })
    }

    /// The verb.
    pub fn verb(&self) -> &str {
        match self {
            Attributes::Resource(r) => &r.verb,
            Attributes::NonResource(n) => &n.verb,
        }
    }

    /// The namespace whose RoleBindings apply; `""` (only ClusterRoleBindings) for cluster-scoped
    /// and non-resource requests.
    pub fn namespace(&self) -> &str {
        match self {
            Attributes::Resource(r) => &r.namespace,
            Attributes::NonResource(_) => "",
        }
    }
}

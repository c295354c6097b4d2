//! Where a page is: a project, or the system level (namespace `kargo`, upstream's "system"
//! routes). The same pages serve both, with the paths of each.

use kargo_api::kargo::SYSTEM_NAMESPACE;

/// A project, or the system level.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Project `name` (its namespace of the same name).
    Project(String),
    /// The system level: ServiceAccounts, roles and tokens of namespace `kargo`.
    System,
}

impl Scope {
    /// The Kargo REST API's path of the scope (`/v1beta1/projects/p`, `/v1beta1/system`).
    pub(crate) fn api(&self) -> String {
        match self {
            Scope::Project(p) => format!("/v1beta1/projects/{p}"),
            Scope::System => "/v1beta1/system".to_owned(),
        }
    }

    /// The UI's path of the scope (`/ui/projects/p`, `/ui/system`).
    pub(crate) fn ui(&self) -> String {
        match self {
            Scope::Project(p) => format!("/ui/projects/{p}"),
            Scope::System => "/ui/system".to_owned(),
        }
    }

    /// The Kubernetes namespace of the scope.
    pub(crate) fn namespace(&self) -> &str {
        match self {
            Scope::Project(p) => p,
            Scope::System => SYSTEM_NAMESPACE,
        }
    }

    /// The scope as a heading says it.
    pub(crate) fn title(&self) -> String {
        match self {
            Scope::Project(p) => format!("Project {p}"),
            Scope::System => "System".to_owned(),
        }
    }

    /// Whether ServiceAccounts and roles can be created and changed here (the system level's
    /// are the server's own, read only; their tokens can be made).
    pub(crate) fn editable(&self) -> bool {
        matches!(self, Scope::Project(_))
    }
}

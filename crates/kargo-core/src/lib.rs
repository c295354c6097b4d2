//! Kargo semantics on top of the registry: projects, roles, service accounts and tokens. The only
//! layer that knows Kargo's labels and annotations.
//!
//! Every Kubernetes operation done for a caller is first authorized as that caller
//! (`Kargo::authorize`), the way upstream Kargo asks SubjectAccessReviews of its cluster;
//! writes of RBAC objects also pass escalation prevention (a caller grants only what it holds).
//! Bookkeeping that only takes permissions away (removing a deleted account from RoleBindings)
//! and the bootstrap of a project's default roles are done by the server itself.
//!
//! The public surface is what `kargo-http` and `kargo-server` use: [`Kargo`] (one method per
//! Kargo REST operation), [`Scope`], [`TokenKind`] (which kind of token an operation both
//! kinds have acts on), [`Error`], [`controller::ProjectController`] and
//! [`projects::bootstrap_system`]. Everything else is crate-private:
//!
//! - [`projects`]: projects, their namespaces and default roles; the system objects;
//! - `service_accounts`: Kargo ServiceAccounts;
//! - `tokens`: token Secrets, of both kinds (`TokenKind`): the steps they share, and Kargo
//!   ServiceAccounts' tokens;
//! - `api_tokens`: Kargo Roles' API tokens (upstream Kargo's `kargo create token --role`);
//! - `roles`: Kargo Roles (ServiceAccount + Role + RoleBinding): `roles::model` is the pure
//!   logic (the trio, manageability, the Kargo body, the objects written), `roles::ops` the
//!   async operations (create, update, delete, grant, revoke);
//! - `rules` and `claims`: rule normalization and the claims annotation (pure);
//! - [`controller`]: a Project however created gets its namespace and default roles.
//!
//! Tests: the pure modules have unit tests; the operations are tested in process over a
//! temporary SQLite store with the informer feeding the auth view (`testing::Fixture`,
//! `roles::tests`), so `cargo test -p kargo-core --lib` covers them in a few seconds.
//!
//! Depends on `kargo-auth` (authorizing as the caller, minting tokens) and below; a sibling of
//! `kargo-controllers`, which it does not use.

mod api_tokens;
mod claims;
pub mod controller;
mod federated_identities;
pub mod projects;
mod roles;
mod rules;
mod service_accounts;
#[cfg(test)]
mod testing;
mod token_lifecycle;
mod token_lifetimes;
mod tokens;

pub use token_lifetimes::{DefaultExceedsMax, TokenLifetimes};
pub use tokens::TokenKind;

use std::sync::Arc;
use std::time::Duration;

use kargo_api::kargo::SYSTEM_NAMESPACE;
use kargo_api::resources::{PROJECTS, ResourceType};
use kargo_store::Revision;

use kargo_auth::Authorizer;
use kargo_auth::authz::forbidden_status;
use kargo_auth::rbac::{Attributes, Forbidden, UserInfo};
use kargo_registry::status::{Status, quote};
use kargo_registry::{Meta, Object, Registry, Target, WriteOptions};

/// How long a token creation waits for the token controller by default.
pub(crate) const TOKEN_WAIT: Duration = Duration::from_secs(10);
/// How long a write waits for this server's auth view to apply it.
const SEEN_WAIT: Duration = Duration::from_secs(2);

/// Why a Kargo operation failed. Each variant maps to one HTTP status code ([`Error::code`]).
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// An underlying Kubernetes operation failed (not found, already exists, invalid, forbidden,
    /// storage): its `Status` carries code and message.
    #[error("{0}")]
    Api(Status),
    /// The request cannot be done as asked (400).
    #[error("{0}")]
    BadRequest(String),
    /// The request conflicts with what exists (409).
    #[error("{0}")]
    Conflict(String),
    /// What the request names does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The token controller did not fill a token Secret in time (504).
    #[error("timed out waiting for the token of Secret {} in namespace {}", quote(.name), quote(.namespace))]
    TokenTimeout {
        /// The Secret's namespace.
        namespace: String,
        /// The Secret's name.
        name: String,
    },
    /// A stored object cannot be read as Kargo expects (500).
    #[error("{0}")]
    Stored(String),
}

// Not `#[from]`: the message already names the cause, and a `source` besides would make the
// CLI, which prints an error's whole chain, say it twice.
impl From<Status> for Error {
    fn from(error: Status) -> Error {
        Error::Api(error)
    }
}

impl Error {
    /// The HTTP status code.
    pub fn code(&self) -> u16 {
        match self {
            Error::Api(status) => status.code,
            Error::BadRequest(_) => 400,
            Error::Conflict(_) => 409,
            Error::NotFound(_) => 404,
            Error::TokenTimeout { .. } => 504,
            Error::Stored(_) => 500,
        }
    }
}

impl From<rules::RuleError> for Error {
    fn from(e: rules::RuleError) -> Error {
        Error::BadRequest(e.to_string())
    }
}

impl From<claims::ClaimsError> for Error {
    fn from(e: claims::ClaimsError) -> Error {
        Error::Stored(e.to_string())
    }
}

/// The result of Kargo operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where an operation applies: a project's namespace, or the system namespace (`kargo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// A project.
    Project(String),
    /// The system level.
    System,
}

impl Scope {
    /// The namespace of the scope.
    pub(crate) fn namespace(&self) -> &str {
        match self {
            Scope::Project(p) => p,
            Scope::System => SYSTEM_NAMESPACE,
        }
    }
}

/// Kargo's operations.
pub struct Kargo {
    registry: Registry,
    authz: Arc<Authorizer>,
    synced: tokio::sync::watch::Receiver<Revision>,
    token_wait: Duration,
    /// Fills the token Secrets this layer creates, so that they need no second write; without
    /// one, the token controller fills them and the create waits for it.
    minter: Option<kargo_auth::mint::TokenMinter>,
    /// Bounds on the lifetime of the tokens this layer creates.
    lifetimes: TokenLifetimes,
}

impl Kargo {
    /// The operations over a registry, authorizing with `authz`; `synced` is the revision this
    /// server's auth view has applied.
    pub fn new(
        registry: Registry,
        authz: Arc<Authorizer>,
        synced: tokio::sync::watch::Receiver<Revision>,
    ) -> Kargo {
        Kargo {
            registry,
            authz,
            synced,
            token_wait: TOKEN_WAIT,
            minter: None,
            lifetimes: TokenLifetimes::default(),
        }
    }

    /// The same, bounding the lifetime of the tokens it creates by `lifetimes`.
    pub fn with_token_lifetimes(mut self, lifetimes: TokenLifetimes) -> Kargo {
        self.lifetimes = lifetimes;
        self
    }

    /// The same, filling the token Secrets it creates with `minter`.
    pub fn with_minter(mut self, minter: kargo_auth::mint::TokenMinter) -> Kargo {
        self.minter = Some(minter);
        self
    }

    /// The same, waiting `wait` for token Secrets to be filled.
    #[cfg(test)]
    pub(crate) fn with_token_wait(mut self, wait: Duration) -> Kargo {
        self.token_wait = wait;
        self
    }

    /// The registry.
    #[cfg(test)]
    pub(crate) fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Allows `user` to `verb` the `rt` named `name` in `namespace`, or answers 403
    /// `<resource>[.<group>] "<name>" is forbidden: <verb> is not permitted`.
    pub(crate) fn authorize(
        &self,
        user: &UserInfo,
        verb: &str,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
    ) -> Result<()> {
        let namespace = if rt.namespaced { namespace } else { "" };
        let attrs: Attributes = Attributes::resource(verb, namespace, rt.group, rt.plural)
            .with_name(name)
            .into();
        if self.authz.decide(user, &attrs).is_allowed() {
            return Ok(());
        }
        Err(forbidden_status(Forbidden::new(
            rt.group,
            rt.plural,
            name,
            &format!("{verb} is not permitted"),
        ))
        .into())
    }

    /// Reads the `rt` named `name` in `namespace` as `user`: 403 unless `user` may `get` it, 404
    /// if it is missing (see [`Kargo::lookup`]).
    pub(crate) async fn get_as(
        &self,
        user: &UserInfo,
        rt: &'static ResourceType,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Object> {
        self.authorize(user, "get", rt, namespace.unwrap_or_default(), name)?;
        self.lookup(rt, namespace, name).await
    }

    /// Reads the `rt` named `name` in `namespace`, as the server: 404 if it is missing, and at
    /// once for a name that cannot exist ([`is_lookup_name`]).
    pub(crate) async fn lookup(
        &self,
        rt: &'static ResourceType,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Object> {
        if !is_lookup_name(name) {
            return Err(Status::not_found(rt, name).into());
        }
        Ok(self.registry.get(Target::new(rt, namespace, name)).await?)
    }

    /// Write options that apply escalation prevention to `user`'s writes of `rt`; the writes
    /// are recorded in `metadata.managedFields` as manager [`FIELD_MANAGER`].
    fn write_options(&self, user: &UserInfo, rt: &'static ResourceType) -> WriteOptions {
        WriteOptions {
            admission: self.authz.admission(user, rt),
            ..kargo_writes()
        }
    }

    /// The namespace of a scope; a project scope's project must exist (404
    /// `projects.kargo.akuity.io "P" not found`).
    pub(crate) async fn namespace_of<'s>(&self, scope: &'s Scope) -> Result<&'s str> {
        if let Scope::Project(project) = scope {
            let found = self
                .registry
                .try_get(Target::new(&PROJECTS, None, project))
                .await?;
            if found.is_none_or(|p| p.is_deleting()) {
                return Err(Status::not_found(&PROJECTS, project).into());
            }
        }
        Ok(scope.namespace())
    }

    /// Waits (briefly) until this server's auth view has applied the write that produced
    /// `object`, so that the caller's next request sees it: a deleted token is refused by the
    /// very next request, a new grant works at once.
    pub(crate) async fn await_seen(&self, object: &Object) {
        let Some(revision) = kargo_registry::object::parse_revision(object.resource_version())
        else {
            return;
        };
        let mut synced = self.synced.clone();
        let _ = tokio::time::timeout(SEEN_WAIT, synced.wait_for(|seen| *seen >= revision)).await;
    }
}

/// The field manager of writes through the Kargo API and of the objects Kargo makes for them
/// (`metadata.managedFields`).
pub const FIELD_MANAGER: &str = "kargo";

/// Write options of Kargo's own writes: recorded as [`FIELD_MANAGER`].
pub(crate) fn kargo_writes() -> WriteOptions {
    WriteOptions {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..WriteOptions::default()
    }
}

/// `"name"` as Go's `%q` writes it.
fn q(s: &str) -> String {
    quote(s)
}

/// Whether a name can name an object at all (a path segment: not empty, `.` or `..`, no `/` or
/// `%`); anything else cannot exist, so lookups of it answer 404 without touching the store.
pub(crate) fn is_lookup_name(name: &str) -> bool {
    !name.is_empty() && kargo_api::names::is_valid_path_segment_name(name).is_empty()
}

//! Authentication and authorization: who is calling, and whether they may do what they ask.
//!
//! - [`authn`]: bearer tokens and client certificates to a user;
//! - [`admin`]: the admin account's password and tokens;
//! - [`limits`]: failed logins and tokens counted per source address, with back-off;
//! - [`tokens`]: service-account tokens;
//! - [`usage`]: which legacy tokens were used, when and from where, until the flusher writes it;
//! - [`oidc`]: people's ID tokens from the OpenID provider (single sign-on);
//! - [`federation`]: CI jobs' OIDC tokens exchanged for bound service-account tokens;
//! - [`rbac`]: Kubernetes RBAC evaluated in process;
//! - [`observe`]: the seam that sees every authentication attempt and authorization decision;
//! - [`decisions`]: remembered allows, forgotten whenever the policy changes;
//! - [`keys`] and [`tls`]: the signing keys and the CA, kept in the store;
//! - [`mint`]: every token the server hands out (token Secrets, TokenRequest, the admin login);
//!
//! Depends on `kargo-registry` (objects, the informer that feeds the views) and below.
//!
//! **Invariant:** authenticating and authorizing a request reads no storage; the views here are
//! fed by the store's watch.

pub mod admin;
pub mod authn;
pub(crate) mod decisions;
pub mod federation;
pub mod jwt;
pub mod keys;
pub(crate) mod limits;
pub mod mint;
pub mod observe;
pub mod oidc;
pub mod rbac;
pub mod tls;
pub mod tokens;
pub mod usage;
pub mod view;

#[cfg(test)]
mod testing;

pub mod authz;
pub use authz::Authorizer;

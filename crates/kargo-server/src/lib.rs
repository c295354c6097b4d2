//! The Kargo API server: a small Kubernetes-compatible API server for Kargo's access-control
//! resources (namespaces, service accounts, secrets, config maps, RBAC, and Kargo's own kinds),
//! plus the Kargo REST API under `/v1beta1`.
//!
//! This crate only wires the layers together; each is its own crate, top to bottom (nothing
//! depends upward, and `tests/layers.rs` checks the manifests):
//! - [`http`] (`kargo-http`): routes, parsing and rendering, the listener and its limits;
//! - [`kargo`] (`kargo-core`): Kargo's projects, roles, service accounts and tokens;
//! - [`controllers`] (`kargo-controllers`): garbage collection, namespaces, tokens, compaction;
//! - [`auth`] (`kargo-auth`): keys, token minting, who is calling and what they may do;
//! - [`registry`] (`kargo-registry`): Kubernetes object rules on top of the store, the informer;
//! - the store itself is the `kargo-store` crate, the shared types `kargo-api`.
//!
//! [`run`] starts everything: [`server`] (start-up, the data directory, encryption at rest) and
//! [`backup`] (export, import, migrate). `testing` (in this crate's tests, and with the `testing` feature) builds the
//! whole API in-process over a temporary store, for the fast test tier.

pub use kargo_auth as auth;
pub use kargo_controllers as controllers;
pub use kargo_core as kargo;
pub use kargo_http as http;
pub use kargo_registry as registry;

pub mod backup;
pub mod data_dir;
pub mod encryption;
pub mod server;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

#[cfg(test)]
mod api_tests;
#[cfg(test)]
mod federation_tests;
#[cfg(test)]
mod health_tests;

pub use server::{ServerConfig, StoreConfig, run};

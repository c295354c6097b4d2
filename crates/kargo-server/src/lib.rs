//! The Kargo API server: a small Kubernetes-compatible API server for Kargo's access-control
//! resources (namespaces, service accounts, secrets, config maps, RBAC, and Kargo's own kinds),
//! plus the Kargo REST API under `/v1beta1`.
//!
//! Layers, top to bottom (nothing calls upward):
//! - [`http`]: routes, parsing and rendering; Kubernetes `Status` errors and Kargo's
//!   `{"error": ...}`;
//! - [`auth`]: who is calling and what they may do, from in-memory views;
//! - [`kargo`]: Kargo's projects, roles, service accounts and tokens;
//! - [`registry`]: Kubernetes object rules on top of the store;
//! - [`controllers`]: reactions to the store's watch (garbage collection, namespaces, tokens,
//!   projects);
//! - the store itself is the `kargo-store` crate.
//!
//! [`run`] starts everything; [`http::Api`] is the whole API as one service.

pub mod auth;
pub mod backup;
pub mod controllers;
pub mod data_dir;
pub mod encryption;
pub mod http;
pub mod kargo;
pub mod limits;
pub mod protobuf;
pub mod registry;
pub mod serve;
pub mod server;
pub mod status;
pub mod tls;

pub use server::{ServerConfig, StoreConfig, run};

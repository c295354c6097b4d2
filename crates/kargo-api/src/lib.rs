//! Shared types of Kargo ServiceAccounts, used by the API server and the `kargo` CLI.
//!
//! - [`resources`]: the table of resource types the server serves (discovery, keys, routing).
//!
//! This crate does no IO: no tokio, no HTTP, no storage.

pub mod resources;

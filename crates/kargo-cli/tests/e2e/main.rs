//! End-to-end tests: the real `kargo` binary runs `kargo server`, and real clients (kubectl, the
//! Python `kubernetes` client, the `kargo` CLI) drive it over HTTPS.
//!
//! One test binary; each module covers one client or concern:
//! - `kubectl`: every resource with kubectl, and kube-apiserver's error messages;
//! - `python`: the Python client's CRUD;
//! - `bad_input`: malformed bodies, selectors and patches get 4xx and the server keeps serving;
//! - `persistence`: restarting keeps objects and resourceVersions keep increasing;
//! - `tokens`: service-account tokens, RBAC and revocation with kubectl.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

mod bad_input;
mod kubectl;
mod persistence;
mod python;
mod tokens;

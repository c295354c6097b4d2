//! Authentication and authorization of API requests.
//!
//! `rbac` is the pure Kubernetes RBAC engine: it holds an index of Roles, ClusterRoles and their
//! bindings and answers "may this user do this?" without IO.
pub mod rbac;

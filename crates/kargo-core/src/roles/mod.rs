//! Kargo Roles: a ServiceAccount, a Role and a RoleBinding of one name. The ServiceAccount is the
//! role (its claims annotation maps OIDC users to it, its description annotation describes it),
//! the Role holds its rules, and the RoleBinding binds the Role to the role's own ServiceAccount
//! and to every Kargo ServiceAccount the role is granted to.
//!
//! The underlying objects of a role are found from its ServiceAccount: the RoleBindings that
//! have it as a subject, and the Roles they reference. A role may be changed through Kargo only
//! if those are Kargo-managed and there is at most one of each ([`manageable`]).
//!
//! - [`model`]: the pure logic (composing the trio, manageability, the Kargo body, the objects
//!   written), unit-tested without a store;
//! - `ops`: the async operations of [`crate::Kargo`] (list, get, create, update, delete, grant,
//!   revoke, the system roles).

mod model;
mod ops;
#[cfg(test)]
mod tests;

pub(crate) use model::{
    binding_object, is_kargo_service_account, not_a_kargo_service_account, role_object,
    service_account_object,
};

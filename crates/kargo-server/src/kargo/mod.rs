//! Kargo semantics on top of the registry: projects, roles, service accounts and tokens. The only
//! layer that knows Kargo's labels and annotations.

/// Kargo's operations.
#[derive(Default)]
pub struct Kargo {}

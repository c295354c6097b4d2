//! ServiceAccounts: typed decoding and their strategic-merge list strategies.

use kargo_api::patch::ListStrategy;
use kargo_api::resources::ResourceType;
use serde_json::Value;

use super::{Decoded, Strategy, decode_typed};
use crate::status::Result;

/// ServiceAccounts.
pub(super) struct ServiceAccountStrategy;

impl Strategy for ServiceAccountStrategy {
    fn decode(&self, rt: &ResourceType, body: Value) -> Result<Decoded> {
        decode_typed::<k8s_openapi::api::core::v1::ServiceAccount>(rt, body)
    }

    fn list_strategy(&self, path: &str) -> Option<ListStrategy> {
        Some(kargo_api::patch::service_account_list_strategy(path))
    }

    fn returns_deleted_object(&self) -> bool {
        true
    }
}

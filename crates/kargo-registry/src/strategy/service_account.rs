//! ServiceAccounts: typed decoding, their strategic-merge list strategies, and the write-time
//! check of the federated-identities annotation (`kargo_api::federation`), so a malformed trust
//! is refused with a 422 whether it comes from kubectl or the Kargo API.

use kargo_api::field::FieldError;
use kargo_api::patch::ListStrategy;
use kargo_api::patch::apply::ObjectType;
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

    fn validate(&self, obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
        let value = obj
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(kargo_api::federation::FEDERATED_IDENTITIES_ANNOTATION))
            .and_then(Value::as_str);
        kargo_api::federation::validate(value).into_iter().collect()
    }

    fn list_strategy(&self, path: &str) -> Option<ListStrategy> {
        Some(kargo_api::patch::service_account_list_strategy(path))
    }

    /// `ObjectReference` and `LocalObjectReference` are `+structType=atomic`.
    fn object_type(&self, spath: &str) -> ObjectType {
        match spath {
            "secrets[]" | "imagePullSecrets[]" => ObjectType::Atomic,
            other => kargo_api::patch::apply::object_meta_object_type(other),
        }
    }

    fn returns_deleted_object(&self) -> bool {
        true
    }
}

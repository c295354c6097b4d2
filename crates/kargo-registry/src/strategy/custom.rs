//! Custom resources (Kargo's kinds): `metadata` typed as `ObjectMeta`, the fields the kind's
//! CRD schema does not declare reported as unknown ([`kargo_api::crd`]) but kept, generations
//! tracked, updates conditional on `resourceVersion`.

use kargo_api::patch::ListStrategy;
use kargo_api::resources::ResourceType;
use serde_json::Value;

use super::{Decoded, ObjectMeta, Strategy, cannot_handle, unknown_fields};
use crate::status::Result;

/// Custom resources (Kargo's kinds): typed `metadata`, the rest checked against the CRD schema.
pub(super) struct CustomStrategy;

impl Strategy for CustomStrategy {
    fn decode(&self, rt: &ResourceType, mut body: Value) -> Result<Decoded> {
        let mut unknown = kargo_api::crd::unknown_fields(rt.kind, &body);
        if let Some(meta) = body.get("metadata").cloned() {
            let typed: ObjectMeta =
                serde_json::from_value(meta.clone()).map_err(|e| cannot_handle(rt, &e))?;
            let known = serde_json::to_value(&typed).map_err(|e| cannot_handle(rt, &e))?;
            unknown_fields(&meta, &known, "metadata", &mut unknown);
            if let Some(map) = body.as_object_mut() {
                map.insert("metadata".into(), known);
            }
        }
        Ok(Decoded {
            object: body,
            unknown,
        })
    }

    fn list_strategy(&self, _path: &str) -> Option<ListStrategy> {
        None
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    fn allows_unconditional_update(&self) -> bool {
        false
    }

    fn returns_deleted_object(&self) -> bool {
        true
    }
}

//! Label and field selectors, parsed and matched as `k8s.io/apimachinery/pkg/labels` and
//! `.../pkg/fields` do.
//!
//! [`LabelSelector::parse`] is `labels.Parse` (what `?labelSelector=` goes through): `=`, `==`,
//! `!=`, `in (a,b)`, `notin (a)`, `key`, `!key`, `>`/`<` with integers; an empty string selects
//! everything. Its errors print Kubernetes' messages, which kube-apiserver returns as a 400
//! `BadRequest` (`unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt`).
//! [`LabelSelector::from_metav1`] converts a `metav1.LabelSelector` (`LabelSelectorAsSelector`).
//!
//! [`FieldSelector::parse`] is `fields.ParseSelector` (`?fieldSelector=`): comma-separated
//! `field=value`, `field==value`, `field!=value` with `\` escaping. [`FieldSelector::check_fields`]
//! and [`FieldSelector::check_metadata_fields`] reject fields a kind does not support, with
//! kube-apiserver's two messages.

mod field;
mod label;

pub use field::{
    FieldOperator, FieldRequirement, FieldSelector, FieldSelectorError, escape_field_value,
    unescape_field_value,
};
pub use label::{LabelSelector, Operator, Requirement, SelectorError};

//! Kubernetes' own well-known names that the server and the CLI read or write: the annotations
//! that tie a token Secret to its ServiceAccount, the Secret type of service-account tokens, the
//! label every namespace carries. As in Kubernetes' `well_known_labels.go` and
//! `well_known_annotations.go`; Kargo's own labels and annotations are in [`crate::kargo`].

/// Annotation naming a token Secret's ServiceAccount.
pub const SERVICE_ACCOUNT_NAME_ANNOTATION: &str = "kubernetes.io/service-account.name";
/// Annotation holding the uid of a token Secret's ServiceAccount (set when the token is filled).
pub const SERVICE_ACCOUNT_UID_ANNOTATION: &str = "kubernetes.io/service-account.uid";
/// The Secret type of service-account tokens.
pub const SERVICE_ACCOUNT_TOKEN_TYPE: &str = "kubernetes.io/service-account-token";
/// The label every namespace carries with its own name.
pub const METADATA_NAME_LABEL: &str = "kubernetes.io/metadata.name";
/// The default Secret type (a Secret with no `type`).
pub const OPAQUE_SECRET_TYPE: &str = "Opaque";
/// Label of a legacy token Secret: the UTC date (`2026-01-02`) its token was last used, updated
/// at most daily (kube-apiserver's `LastUsedLabelKey`).
pub const LEGACY_TOKEN_LAST_USED_LABEL: &str = "kubernetes.io/legacy-token-last-used";

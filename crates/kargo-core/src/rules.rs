//! The rules of a Kargo Role, normalized: one rule per (API group, resource, resource name), the
//! group taken from the resource type, verbs trimmed, deduplicated and sorted, `*` expanded.
//!
//! A normalized rule's key is `<group or "core">/<resource>[/<name>]`; rules are sorted by key.
//! Only the resource types Kargo knows ([`RESOURCE_TYPES`]) may appear in a Kargo Role.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::rbac::v1::PolicyRule;
use kargo_api::resources::{CORE_GROUP, KARGO_GROUP, RBAC_GROUP};

/// What `*` stands for, sorted: the verbs of an ordinary resource.
pub(crate) const ALL_VERBS: &[&str] = kargo_api::resources::STANDARD_VERBS;

/// The verb only Stages have.
pub(crate) const PROMOTE: &str = "promote";

/// Argo Rollouts' API group (analysis runs and templates, which Kargo Roles may name; not served).
pub(crate) const ARGO_GROUP: &str = "argoproj.io";

/// The resource types a Kargo Role may name, with their API group.
pub(crate) const RESOURCE_TYPES: &[(&str, &str)] = &[
    ("analysisruns", ARGO_GROUP),
    ("analysistemplates", ARGO_GROUP),
    ("configmaps", CORE_GROUP),
    ("events", CORE_GROUP),
    ("freights", KARGO_GROUP),
    ("freights/status", KARGO_GROUP),
    ("projectconfigs", KARGO_GROUP),
    ("promotions", KARGO_GROUP),
    ("rolebindings", RBAC_GROUP),
    ("roles", RBAC_GROUP),
    ("secrets", CORE_GROUP),
    ("serviceaccounts", CORE_GROUP),
    ("stages", KARGO_GROUP),
    ("warehouses", KARGO_GROUP),
];

/// A resource type a Kargo Role cannot name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// Not a type Kargo knows.
    #[error("unrecognized resource type {}", kargo_registry::status::quote(.0))]
    Unrecognized(String),
    /// The singular of a type Kargo knows.
    #[error(
        "unrecognized resource type {}; did you mean {}?",
        kargo_registry::status::quote(.given),
        kargo_registry::status::quote(.plural)
    )]
    Singular {
        /// What was given (`stage`).
        given: String,
        /// The known type (`stages`).
        plural: &'static str,
    },
}

/// The singular form of a known type: the `s` of its first segment dropped
/// (`freights/status` → `freight/status`).
fn singular(plural: &str) -> String {
    match plural.split_once('/') {
        Some((base, sub)) => format!("{}/{sub}", base.strip_suffix('s').unwrap_or(base)),
        None => plural.strip_suffix('s').unwrap_or(plural).to_owned(),
    }
}

/// The API group of a resource type, or why it cannot be used.
pub(crate) fn group_of(resource: &str) -> Result<&'static str, RuleError> {
    let resource = resource.trim();
    if let Some((_, group)) = RESOURCE_TYPES.iter().find(|(r, _)| *r == resource) {
        return Ok(group);
    }
    match RESOURCE_TYPES
        .iter()
        .find(|(r, _)| !resource.is_empty() && singular(r) == resource)
    {
        Some((plural, _)) => Err(RuleError::Singular {
            given: resource.to_owned(),
            plural,
        }),
        None => Err(RuleError::Unrecognized(resource.to_owned())),
    }
}

/// Every verb of a resource type: [`ALL_VERBS`], plus `promote` for Stages when `custom` is set.
pub(crate) fn all_verbs(resource: &str, custom: bool) -> Vec<String> {
    let mut verbs: Vec<String> = ALL_VERBS.iter().map(|v| (*v).to_owned()).collect();
    if custom && resource == "stages" {
        verbs.push(PROMOTE.to_owned());
        verbs.sort();
    }
    verbs
}

/// Verbs trimmed, `*` expanded, deduplicated and sorted. Empty verbs are dropped.
pub(crate) fn normalize_verbs(resource: &str, verbs: &[String], custom: bool) -> Vec<String> {
    let mut out = BTreeSet::new();
    for verb in verbs {
        match verb.trim() {
            "" => {}
            "*" => out.extend(all_verbs(resource, custom)),
            v => {
                out.insert(v.to_owned());
            }
        }
    }
    out.into_iter().collect()
}

/// The key of a normalized rule.
pub(crate) fn rule_key(group: &str, resource: &str, name: &str) -> String {
    let group = if group.is_empty() { "core" } else { group };
    if name.is_empty() {
        format!("{group}/{resource}")
    } else {
        format!("{group}/{resource}/{name}")
    }
}

fn one(s: &str) -> Option<Vec<String>> {
    Some(vec![s.to_owned()])
}

/// A normalized rule.
pub(crate) fn rule(group: &str, resource: &str, name: &str, verbs: Vec<String>) -> PolicyRule {
    PolicyRule {
        api_groups: one(group),
        resources: one(resource),
        resource_names: (!name.is_empty()).then(|| vec![name.to_owned()]),
        verbs,
        non_resource_urls: None,
    }
}

/// Normalizes rules. `custom` makes `*` include custom verbs (`promote` for Stages), as wanted
/// when writing a Role; Kubernetes' own `*` is shown without them.
pub(crate) fn normalize(rules: &[PolicyRule], custom: bool) -> Result<Vec<PolicyRule>, RuleError> {
    let mut merged: BTreeMap<String, (&'static str, String, String, Vec<String>)> = BTreeMap::new();
    for r in rules {
        let names: Vec<&str> = match r.resource_names.as_deref() {
            Some(names) if !names.is_empty() => names.iter().map(|n| n.trim()).collect(),
            _ => vec![""],
        };
        for resource in r.resources.as_deref().unwrap_or_default() {
            let resource = resource.trim();
            let group = group_of(resource)?;
            for name in &names {
                let entry = merged
                    .entry(rule_key(group, resource, name))
                    .or_insert_with(|| (group, resource.to_owned(), (*name).to_owned(), vec![]));
                entry.3.extend(r.verbs.iter().cloned());
            }
        }
    }
    Ok(merged
        .into_values()
        .map(|(group, resource, name, verbs)| {
            let verbs = normalize_verbs(&resource, &verbs, custom);
            rule(group, &resource, &name, verbs)
        })
        .collect())
}

/// Removes `verbs` (with `*` expanded, custom verbs included) from the normalized rules of
/// `resource` (only the rule of `name`, when given) and drops rules left without verbs.
pub(crate) fn revoke(
    rules: Vec<PolicyRule>,
    resource: &str,
    name: &str,
    verbs: &[String],
) -> Result<Vec<PolicyRule>, RuleError> {
    let group = group_of(resource)?;
    let resource = resource.trim();
    let name = name.trim();
    let drop = normalize_verbs(resource, verbs, true);
    Ok(rules
        .into_iter()
        .filter_map(|mut r| {
            let first = |v: &Option<Vec<String>>| {
                v.as_ref()
                    .and_then(|v| v.first().cloned())
                    .unwrap_or_default()
            };
            let matches = first(&r.api_groups) == group
                && first(&r.resources) == resource
                && (name.is_empty() || first(&r.resource_names) == name);
            if !matches {
                return Some(r);
            }
            r.verbs.retain(|v| !drop.contains(v));
            (!r.verbs.is_empty()).then_some(r)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(groups: &[&str], resources: &[&str], names: &[&str], verbs: &[&str]) -> PolicyRule {
        let list = |v: &[&str]| (!v.is_empty()).then(|| v.iter().map(|s| s.to_string()).collect());
        PolicyRule {
            api_groups: list(groups),
            resources: list(resources),
            resource_names: list(names),
            verbs: verbs.iter().map(|s| s.to_string()).collect(),
            non_resource_urls: None,
        }
    }

    /// Normalizes `input` and compares with `expected` as compact `group/resource[/name]: verbs`
    /// lines, or with the error message.
    fn check(input: &[PolicyRule], custom: bool, expected: Result<&[&str], &str>) {
        let got = normalize(input, custom)
            .map(|rules| {
                rules
                    .iter()
                    .map(|r| {
                        let first = |v: &Option<Vec<String>>| {
                            v.as_ref()
                                .and_then(|v| v.first().cloned())
                                .unwrap_or_default()
                        };
                        format!(
                            "{}: {}",
                            rule_key(
                                &first(&r.api_groups),
                                &first(&r.resources),
                                &first(&r.resource_names)
                            ),
                            r.verbs.join(",")
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .map_err(|e| e.to_string());
        let expected = expected
            .map(|lines| lines.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .map_err(str::to_owned);
        assert_eq!(got, expected);
    }

    #[test]
    fn unknown_resource_types_are_refused() {
        check(
            &[r(&[], &["pods"], &[], &["get"])],
            false,
            Err(r#"unrecognized resource type "pods""#),
        );
        check(
            &[r(&[], &[""], &[], &["get"])],
            false,
            Err(r#"unrecognized resource type """#),
        );
    }

    #[test]
    fn a_singular_resource_type_gets_a_suggestion() {
        for (given, plural) in [
            ("stage", "stages"),
            ("freight", "freights"),
            ("freight/status", "freights/status"),
            ("analysisrun", "analysisruns"),
        ] {
            check(
                &[r(&[], &[given], &[], &["get"])],
                false,
                Err(&format!(
                    "unrecognized resource type \"{given}\"; did you mean \"{plural}\"?"
                )),
            );
        }
    }

    #[test]
    fn several_resources_split_into_one_rule_each_with_their_own_group() {
        check(
            &[r(
                &["ignored"],
                &["stages", "secrets", "roles"],
                &[],
                &["get"],
            )],
            false,
            Ok(&[
                "core/secrets: get",
                "kargo.akuity.io/stages: get",
                "rbac.authorization.k8s.io/roles: get",
            ]),
        );
    }

    #[test]
    fn several_resource_names_split_and_sort() {
        check(
            &[r(&[], &["stages"], &["foo", " bar "], &["get"])],
            false,
            Ok(&[
                "kargo.akuity.io/stages/bar: get",
                "kargo.akuity.io/stages/foo: get",
            ]),
        );
    }

    #[test]
    fn verbs_are_trimmed_deduplicated_sorted_and_merged_across_rules() {
        check(
            &[
                r(&[], &["promotions"], &[], &[" list", "get", "get "]),
                r(&[], &["stages"], &[], &["list"]),
                r(&[], &["stages"], &[], &["get", "", "list"]),
            ],
            false,
            Ok(&[
                "kargo.akuity.io/promotions: get,list",
                "kargo.akuity.io/stages: get,list",
            ]),
        );
    }

    #[test]
    fn a_wildcard_verb_expands_to_every_verb() {
        check(
            &[r(&[], &["warehouses"], &[], &["*"])],
            false,
            Ok(&[
                "kargo.akuity.io/warehouses: create,delete,deletecollection,get,list,patch,update,watch",
            ]),
        );
        check(
            &[r(&[], &["stages"], &[], &["*"])],
            false,
            Ok(&[
                "kargo.akuity.io/stages: create,delete,deletecollection,get,list,patch,update,watch",
            ]),
        );
        check(
            &[r(&[], &["stages"], &[], &["*"])],
            true,
            Ok(&[
                "kargo.akuity.io/stages: create,delete,deletecollection,get,list,patch,promote,update,watch",
            ]),
        );
    }

    #[test]
    fn rules_without_resources_disappear() {
        check(&[r(&[], &[], &[], &["get"])], false, Ok(&[]));
    }

    #[test]
    fn revoking_removes_verbs_and_drops_empty_rules() {
        let rules = normalize(
            &[
                r(&[], &["stages"], &[], &["get", "list", "promote"]),
                r(&[], &["stages"], &["dev"], &["get"]),
                r(&[], &["promotions"], &[], &["get"]),
            ],
            false,
        )
        .unwrap();
        let left = revoke(rules.clone(), "stages", "", &["get".into(), "list".into()]).unwrap();
        assert_eq!(
            left.iter()
                .map(|r| (r.resources.clone().unwrap()[0].clone(), r.verbs.join(",")))
                .collect::<Vec<_>>(),
            [
                ("promotions".to_owned(), "get".to_owned()),
                ("stages".to_owned(), "promote".to_owned())
            ]
        );
        let left = revoke(rules.clone(), "stages", "dev", &["*".into()]).unwrap();
        assert_eq!(left.len(), 2);
        assert_eq!(
            revoke(rules, "stage", "", &["get".into()]).unwrap_err(),
            RuleError::Singular {
                given: "stage".into(),
                plural: "stages"
            }
        );
    }
}

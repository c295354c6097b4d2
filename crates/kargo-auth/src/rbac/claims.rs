//! People mapped to Kargo Roles by their OIDC claims, as upstream Kargo's
//! `ServiceAccountsByOIDCClaims` index does: a ServiceAccount whose claims annotation
//! (`rbac.kargo.akuity.io/claims`, or the legacy `rbac.kargo.akuity.io/claim.<name>`) lists one
//! of a person's claim values maps that person to the ServiceAccount, and so to its roles.
//!
//! A person is mapped only to accounts in the request's namespace when it is a project's
//! (labeled `kargo.akuity.io/project: "true"`), in the global namespace `kargo`, and, for a
//! request about a Project, in that project's namespace. RBAC then decides as the user itself
//! or as any mapped account (`Policy::visit`).
//!
//! Upstream's quirk is kept: the new-style annotation is used for mapping only when it decodes
//! as an object of string arrays; a scalar value or invalid JSON makes it ignored here (the
//! Kargo API still shows such claims). Legacy values are split on commas and trimmed; empty
//! values are skipped.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use kargo_api::kargo::{CLAIMS_ANNOTATION, LEGACY_CLAIM_ANNOTATION_PREFIX, SYSTEM_NAMESPACE};

use super::user::{UserInfo, service_account_username};

/// Claim name → values.
type Claims = BTreeMap<String, BTreeSet<String>>;

/// The claims an account's annotations map people by (empty when none).
pub(crate) fn mapping_claims(annotations: &BTreeMap<String, String>) -> Claims {
    let mut claims = Claims::new();
    if let Some(value) = annotations.get(CLAIMS_ANNOTATION)
        && let Ok(parsed) = serde_json::from_str::<BTreeMap<String, Vec<String>>>(value)
    {
        for (name, values) in parsed {
            let values = values.into_iter().filter(|v| !v.is_empty());
            claims.entry(name).or_default().extend(values);
        }
    }
    for (key, value) in annotations {
        let Some(name) = key.strip_prefix(LEGACY_CLAIM_ANNOTATION_PREFIX) else {
            continue;
        };
        let values = value
            .split(',')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned);
        claims.entry(name.to_owned()).or_default().extend(values);
    }
    claims.retain(|_, values| !values.is_empty());
    claims
}

/// An account that maps people: the identity RBAC is asked about, and its claims.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mapped {
    /// `system:serviceaccount:<namespace>:<name>` with no groups, as upstream's
    /// SubjectAccessReview names it.
    identity: UserInfo,
    claims: Claims,
}

impl Mapped {
    fn matches(&self, claims: &BTreeMap<String, Vec<String>>) -> bool {
        claims.iter().any(|(name, values)| {
            self.claims
                .get(name)
                .is_some_and(|have| values.iter().any(|v| have.contains(v)))
        })
    }
}

/// The accounts that map people, by namespace, and the project namespaces.
#[derive(Debug, Clone, Default)]
pub(crate) struct ClaimsIndex {
    /// Namespace → account name → the account; only accounts with claims.
    accounts: HashMap<String, BTreeMap<String, Mapped>>,
    /// Namespaces labeled as a project's.
    projects: HashSet<String>,
}

impl ClaimsIndex {
    /// Records a ServiceAccount's annotations (`None`: deleted); whether the mapping changed.
    pub(crate) fn apply_account(
        &mut self,
        namespace: &str,
        name: &str,
        annotations: Option<&BTreeMap<String, String>>,
    ) -> bool {
        let claims = annotations.map(mapping_claims).unwrap_or_default();
        if claims.is_empty() {
            let Some(names) = self.accounts.get_mut(namespace) else {
                return false;
            };
            let removed = names.remove(name).is_some();
            if names.is_empty() {
                self.accounts.remove(namespace);
            }
            return removed;
        }
        let names = self.accounts.entry(namespace.to_owned()).or_default();
        if names.get(name).is_some_and(|m| m.claims == claims) {
            return false;
        }
        let identity = UserInfo::new(
            service_account_username(namespace, name),
            Vec::<String>::new(),
        );
        names.insert(name.to_owned(), Mapped { identity, claims });
        true
    }

    /// Records whether a namespace is a project's (a deleted one is not); whether that changed.
    pub(crate) fn apply_namespace(&mut self, name: &str, is_project: bool) -> bool {
        if is_project {
            self.projects.insert(name.to_owned())
        } else {
            self.projects.remove(name)
        }
    }

    /// The identities of the accounts mapped to a person with `claims`, for a question in
    /// `namespace` (`""`: cluster-scoped) and, when `project` is given (a question about that
    /// Project), its namespace: the namespace's accounts when it is a project's, then the global
    /// ones, then the project's; each in name order.
    pub(crate) fn mapped<'a>(
        &'a self,
        claims: &'a BTreeMap<String, Vec<String>>,
        namespace: &'a str,
        project: Option<&'a str>,
    ) -> impl Iterator<Item = &'a UserInfo> + 'a {
        let is_project = |ns: &&str| self.projects.contains(*ns);
        let request = Some(namespace).filter(is_project);
        let project = project.filter(|p| *p != namespace).filter(is_project);
        let global = Some(SYSTEM_NAMESPACE).filter(|g| request != Some(*g));
        [request, global, project]
            .into_iter()
            .flatten()
            .filter_map(|ns| self.accounts.get(ns))
            .flat_map(|names| names.values())
            .filter(|account| account.matches(claims))
            .map(|account| &account.identity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// The index entries of annotations, as upstream's indexer writes them: `<claim>/<value>`.
    fn entries(pairs: &[(&str, &str)]) -> Vec<String> {
        mapping_claims(&annotations(pairs))
            .into_iter()
            .flat_map(|(name, values)| values.into_iter().map(move |v| format!("{name}/{v}")))
            .collect()
    }

    #[test]
    fn annotations_give_upstreams_index_entries() {
        assert_eq!(
            entries(&[(
                "rbac.kargo.akuity.io/claim.email",
                "fake-email, fake-email-2"
            )]),
            ["email/fake-email", "email/fake-email-2"]
        );
        assert_eq!(
            entries(&[(
                CLAIMS_ANNOTATION,
                r#"{"email":["a@b.c"],"cognito:groups":["devops","admins"]}"#
            )]),
            [
                "cognito:groups/admins",
                "cognito:groups/devops",
                "email/a@b.c"
            ]
        );
        assert!(entries(&[(CLAIMS_ANNOTATION, "{}")]).is_empty());
        assert!(entries(&[(CLAIMS_ANNOTATION, "not json")]).is_empty());
        assert!(entries(&[("rbac.kargo.akuity.io/claim.email", " , ")]).is_empty());
        assert_eq!(
            entries(&[
                (CLAIMS_ANNOTATION, r#"{"email":["a@b.c"],"sub":["s1"]}"#),
                ("rbac.kargo.akuity.io/claim.email", "d@e.f,a@b.c"),
                ("rbac.kargo.akuity.io/claim.groups", "devops"),
                ("kargo.akuity.io/description", "not a claim"),
            ]),
            ["email/a@b.c", "email/d@e.f", "groups/devops", "sub/s1"]
        );
    }

    #[test]
    fn a_scalar_value_makes_the_new_style_annotation_ignored_but_not_the_legacy_one() {
        assert!(entries(&[(CLAIMS_ANNOTATION, r#"{"email":"a@b.c"}"#)]).is_empty());
        assert!(entries(&[(CLAIMS_ANNOTATION, r#"{"email":["a@b.c"],"sub":"s1"}"#)]).is_empty());
        assert_eq!(
            entries(&[
                (CLAIMS_ANNOTATION, r#"{"email":"a@b.c"}"#),
                ("rbac.kargo.akuity.io/claim.sub", "s1"),
            ]),
            ["sub/s1"]
        );
    }

    fn person(claims: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        claims
            .iter()
            .map(|(n, vs)| {
                (
                    (*n).to_owned(),
                    vs.iter().map(|v| (*v).to_owned()).collect(),
                )
            })
            .collect()
    }

    fn names<'a>(users: impl Iterator<Item = &'a UserInfo>) -> Vec<&'a str> {
        users.map(|u| u.username.as_str()).collect()
    }

    #[test]
    fn a_person_maps_to_matching_accounts_in_project_and_global_namespaces_only() {
        let mut index = ClaimsIndex::default();
        let claims = |json: &str| annotations(&[(CLAIMS_ANNOTATION, json)]);
        assert!(index.apply_account("p", "dev", Some(&claims(r#"{"email":["a@b.c"]}"#))));
        assert!(index.apply_account("p", "ops", Some(&claims(r#"{"groups":["ops"]}"#))));
        assert!(index.apply_account("q", "dev", Some(&claims(r#"{"email":["a@b.c"]}"#))));
        assert!(index.apply_account("plain", "dev", Some(&claims(r#"{"email":["a@b.c"]}"#))));
        assert!(index.apply_account(
            "kargo",
            "kargo-viewer",
            Some(&claims(r#"{"groups":["devops","all"]}"#))
        ));
        assert!(index.apply_namespace("p", true));
        assert!(index.apply_namespace("q", true));

        let alice = person(&[("email", &["a@b.c"]), ("groups", &["all"])]);
        assert_eq!(
            names(index.mapped(&alice, "p", None)),
            [
                "system:serviceaccount:p:dev",
                "system:serviceaccount:kargo:kargo-viewer"
            ]
        );
        assert!(index.mapped(&alice, "p", None).all(|u| u.groups.is_empty()));
        assert_eq!(
            names(index.mapped(&alice, "plain", None)),
            ["system:serviceaccount:kargo:kargo-viewer"],
            "a namespace that is not a project's maps nobody"
        );
        assert_eq!(
            names(index.mapped(&alice, "", None)),
            ["system:serviceaccount:kargo:kargo-viewer"]
        );
        assert_eq!(
            names(index.mapped(&alice, "", Some("q"))),
            [
                "system:serviceaccount:kargo:kargo-viewer",
                "system:serviceaccount:q:dev"
            ]
        );
        assert_eq!(
            names(index.mapped(&alice, "kargo", None)),
            ["system:serviceaccount:kargo:kargo-viewer"]
        );
        let stranger = person(&[("email", &["x@y.z"]), ("sub", &["a@b.c"])]);
        assert_eq!(
            index.mapped(&stranger, "p", None).count(),
            0,
            "claim names count"
        );

        assert!(
            !index.apply_account("p", "dev", Some(&claims(r#"{"email":["a@b.c"]}"#))),
            "unchanged"
        );
        assert!(index.apply_account("p", "dev", Some(&claims("{}"))));
        assert!(!index.apply_account("p", "dev", None));
        assert!(index.apply_namespace("q", false));
        assert_eq!(
            names(index.mapped(&alice, "", Some("q"))),
            ["system:serviceaccount:kargo:kargo-viewer"]
        );
        assert_eq!(
            names(index.mapped(&alice, "p", None)),
            ["system:serviceaccount:kargo:kargo-viewer"]
        );
    }
}

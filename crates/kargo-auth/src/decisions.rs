//! Remembered RBAC allow decisions: the per-request authorization of a user who repeats the same
//! request costs one hash lookup instead of a walk over the bindings and rules that apply.
//!
//! # Consistency
//! Only allows are remembered, and only by [`AuthView::allows`](super::view::AuthView::allows),
//! which decides and remembers under the policy's read lock. Every change to the policy takes its
//! write lock and forgets everything first, so an entry can never outlive the policy that
//! decided it: a revoked role is refused by the very next request.
//!
//! An entry is everything RBAC reads (the username, the groups, a person's claims — which map
//! them to Kargo Roles — and the request's attributes), compared whole on every lookup: nothing
//! but the same question gets the remembered answer. The claims mapping is part of the policy,
//! so a change to a role's claims forgets too.

use std::collections::HashSet;
use std::sync::RwLock;

use super::rbac::{Attributes, UserInfo};

/// Entries kept before the cache starts over (one entry is a few hundred bytes).
const CAPACITY: usize = 10_000;

/// Everything RBAC reads of a user and a request as one byte string, each part prefixed with its
/// length, so that two different questions never have the same fingerprint.
fn fingerprint(user: &UserInfo, attrs: &Attributes) -> Vec<u8> {
    fn put(out: &mut Vec<u8>, part: &str) {
        out.extend_from_slice(&(part.len() as u32).to_le_bytes());
        out.extend_from_slice(part.as_bytes());
    }
    let mut out = Vec::with_capacity(256);
    put(&mut out, &user.username);
    out.extend_from_slice(&(user.groups.len() as u32).to_le_bytes());
    for group in &user.groups {
        put(&mut out, group);
    }
    match attrs {
        Attributes::Resource(r) => {
            out.push(b'r');
            for part in [
                &r.verb,
                &r.namespace,
                &r.api_group,
                &r.resource,
                &r.subresource,
                &r.name,
            ] {
                put(&mut out, part);
            }
        }
        Attributes::NonResource(n) => {
            out.push(b'n');
            put(&mut out, &n.verb);
            put(&mut out, &n.path);
        }
    }
    // Last, and only for people signed in with claims: a user without claims pays nothing, and
    // the same name with other claims is another question.
    if !user.claims.is_empty() {
        out.push(b'c');
        out.extend_from_slice(&(user.claims.len() as u32).to_le_bytes());
        for (name, values) in &user.claims {
            put(&mut out, name);
            out.extend_from_slice(&(values.len() as u32).to_le_bytes());
            for value in values {
                put(&mut out, value);
            }
        }
    }
    out
}

/// The cache: the fingerprints of the allowed questions.
#[derive(Default)]
pub(crate) struct Decisions {
    allowed: RwLock<HashSet<Box<[u8]>, foldhash::fast::RandomState>>,
}

impl Decisions {
    /// Whether an allow for exactly this user and request is remembered.
    pub fn allowed(&self, user: &UserInfo, attrs: &Attributes) -> bool {
        let question = fingerprint(user, attrs);
        let allowed = self.allowed.read().unwrap_or_else(|p| p.into_inner());
        allowed.contains(question.as_slice())
    }

    /// Remembers that the current policy allows this user's request.
    pub(crate) fn remember(&self, user: &UserInfo, attrs: &Attributes) {
        let question = fingerprint(user, attrs).into_boxed_slice();
        let mut allowed = self.allowed.write().unwrap_or_else(|p| p.into_inner());
        if allowed.len() >= CAPACITY {
            allowed.clear();
        }
        allowed.insert(question);
    }

    /// Forgets every decision (the policy is about to change).
    pub(crate) fn forget_all(&self) {
        self.allowed
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.allowed.read().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(verb: &str, name: &str) -> Attributes {
        Attributes::resource(verb, "p", "", "serviceaccounts")
            .with_name(name)
            .into()
    }

    #[test]
    fn an_allow_is_remembered_for_exactly_its_user_and_request() {
        let decisions = Decisions::default();
        let user = UserInfo::new("system:serviceaccount:p:a", ["system:serviceaccounts"]);
        decisions.remember(&user, &get("get", "a"));
        assert!(decisions.allowed(&user, &get("get", "a")));

        assert!(!decisions.allowed(&user, &get("get", "b")));
        assert!(!decisions.allowed(&user, &get("delete", "a")));
        let other = UserInfo::new("system:serviceaccount:p:b", ["system:serviceaccounts"]);
        assert!(!decisions.allowed(&other, &get("get", "a")));
        let more_groups = UserInfo::new(
            "system:serviceaccount:p:a",
            ["system:serviceaccounts", "system:masters"],
        );
        assert!(!decisions.allowed(&more_groups, &get("get", "a")));
    }

    #[test]
    fn a_person_is_remembered_with_their_claims() {
        let decisions = Decisions::default();
        let with = |claims: &[(&str, &[&str])]| {
            let mut user = UserInfo::new("a@b.c", ["system:authenticated"]);
            user.claims = claims
                .iter()
                .map(|(n, vs)| {
                    (
                        (*n).to_owned(),
                        vs.iter().map(|v| (*v).to_owned()).collect(),
                    )
                })
                .collect();
            user
        };
        let person = with(&[("email", &["a@b.c"]), ("groups", &["devops"])]);
        decisions.remember(&person, &get("get", "a"));
        assert!(decisions.allowed(&person, &get("get", "a")));
        assert!(!decisions.allowed(&with(&[]), &get("get", "a")));
        assert!(!decisions.allowed(&with(&[("email", &["a@b.c"])]), &get("get", "a")));
        assert!(!decisions.allowed(
            &with(&[("email", &["a@b.c"]), ("groups", &["ops"])]),
            &get("get", "a")
        ));
        assert!(!decisions.allowed(&with(&[("email", &["a@b.c", "devops"])]), &get("get", "a")));

        let plain = with(&[]);
        decisions.remember(&plain, &get("get", "b"));
        assert!(!decisions.allowed(&person, &get("get", "b")));
    }

    #[test]
    fn questions_that_share_their_characters_are_still_different() {
        let decisions = Decisions::default();
        decisions.remember(&UserInfo::new("ab", ["c"]), &get("get", "a"));
        assert!(!decisions.allowed(&UserInfo::new("a", ["bc"]), &get("get", "a")));
        assert!(!decisions.allowed(
            &UserInfo::new("abc", Vec::<String>::new()),
            &get("get", "a")
        ));

        let user = UserInfo::new("u", ["g"]);
        let in_namespace: Attributes = Attributes::resource("get", "a", "", "x").into();
        let named: Attributes = Attributes::resource("get", "", "", "x")
            .with_name("a")
            .into();
        decisions.remember(&user, &in_namespace);
        assert!(!decisions.allowed(&user, &named));
        assert!(!decisions.allowed(&user, &Attributes::non_resource("get", "x")));
    }

    #[test]
    fn forgetting_drops_every_decision_and_the_size_is_bounded() {
        let decisions = Decisions::default();
        let user = UserInfo::new("u", ["g"]);
        for i in 0..CAPACITY + 5 {
            decisions.remember(&user, &get("get", &i.to_string()));
        }
        assert!(decisions.len() <= CAPACITY);
        assert!(decisions.allowed(&user, &get("get", &(CAPACITY + 4).to_string())));
        decisions.forget_all();
        assert!(!decisions.allowed(&user, &get("get", &(CAPACITY + 4).to_string())));
        assert_eq!(decisions.len(), 0);
    }
}

//! Remembered RBAC allow decisions: the per-request authorization of a user who repeats the same
//! request costs one hash lookup instead of a walk over the bindings and rules that apply.
//!
//! # Consistency
//! Only allows are remembered, and only by [`AuthView::allows`](super::view::AuthView::allows),
//! which decides and remembers under the policy's read lock. Every change to the policy takes its
//! write lock and forgets everything first, so an entry can never outlive the policy that
//! decided it: a revoked role is refused by the very next request.
//!
//! An entry is keyed by a hash of what RBAC reads (the username, the groups and the request's
//! attributes) and holds all of them, compared on every hit: a hash collision is a miss, never a
//! wrong answer.

use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::RwLock;

use super::rbac::{Attributes, UserInfo};

/// Entries kept before the cache starts over (one entry is a few hundred bytes).
const CAPACITY: usize = 10_000;

/// What a remembered allow was decided for.
struct Entry {
    username: String,
    groups: Vec<String>,
    attrs: Attributes,
}

impl Entry {
    fn is_for(&self, user: &UserInfo, attrs: &Attributes) -> bool {
        self.username == user.username && self.groups == user.groups && self.attrs == *attrs
    }
}

/// The cache.
pub struct Decisions {
    entries: RwLock<std::collections::HashMap<u64, Entry, foldhash::fast::FixedState>>,
    hasher: foldhash::fast::RandomState,
}

impl Default for Decisions {
    fn default() -> Self {
        Decisions {
            entries: RwLock::new(std::collections::HashMap::default()),
            hasher: foldhash::fast::RandomState::default(),
        }
    }
}

impl Decisions {
    fn key(&self, user: &UserInfo, attrs: &Attributes) -> u64 {
        let mut h = self.hasher.build_hasher();
        user.username.hash(&mut h);
        user.groups.hash(&mut h);
        attrs.hash(&mut h);
        h.finish()
    }

    /// Whether an allow for exactly this user and request is remembered.
    pub fn allowed(&self, user: &UserInfo, attrs: &Attributes) -> bool {
        let key = self.key(user, attrs);
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        entries.get(&key).is_some_and(|e| e.is_for(user, attrs))
    }

    /// Remembers that the current policy allows this user's request.
    pub fn remember(&self, user: &UserInfo, attrs: &Attributes) {
        let key = self.key(user, attrs);
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(
            key,
            Entry {
                username: user.username.clone(),
                groups: user.groups.clone(),
                attrs: attrs.clone(),
            },
        );
    }

    /// Forgets every decision (the policy is about to change).
    pub fn forget_all(&self) {
        self.entries
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.read().unwrap().len()
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

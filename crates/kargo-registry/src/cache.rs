//! A read cache of objects, as their JSON (with `resourceVersion`), for `GET`s of one object.
//!
//! # Consistency
//! An entry is served only when the informer has applied every committed write
//! ([`kargo_store::Store::committed_revision`], known without a round trip on SQLite; on etcd,
//! where other replicas write, the cache is never used). The cache is an informer handler: it
//! drops a key's entry when it sees a change to the key, before the informer reports that
//! revision as applied. So when the applied revision equals the committed one, every entry
//! present is current. An entry is added after a read from the store only if no write committed
//! and nothing was applied while that read ran.
//!
//! # Size
//! Two generations of at most `capacity / 2` entries each: a lookup that hits the older
//! generation moves the entry to the newer one; when the newer one is full it becomes the older
//! one. Recently read objects stay; memory is bounded.

use std::sync::Mutex;

use bytes::Bytes;
use kargo_store::{Event, Revision};

use crate::informer::{Handler, Head, Item};

/// Keyed by store key with a fast non-cryptographic hash (looked up on every GET).
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

struct Generations {
    young: HashMap<String, Bytes>,
    old: HashMap<String, Bytes>,
}

/// The cache.
pub struct ObjectCache {
    generations: Mutex<Generations>,
    half: usize,
}

impl ObjectCache {
    /// A cache of at most `capacity` objects.
    pub fn new(capacity: usize) -> ObjectCache {
        ObjectCache {
            generations: Mutex::new(Generations {
                young: HashMap::default(),
                old: HashMap::default(),
            }),
            half: (capacity / 2).max(1),
        }
    }

    /// The cached JSON of a key.
    pub(crate) fn get(&self, key: &str) -> Option<Bytes> {
        let mut g = self.generations.lock().ok()?;
        if let Some(bytes) = g.young.get(key) {
            return Some(bytes.clone());
        }
        let bytes = g.old.remove(key)?;
        Self::put(&mut g, self.half, key.to_owned(), bytes.clone());
        Some(bytes)
    }

    /// Remembers the JSON of a key.
    #[cfg(test)]
    fn insert(&self, key: &str, bytes: Bytes) {
        self.insert_if(key, bytes, || true);
    }

    /// Remembers the JSON of a key if `still_current` holds, checked under the lock that
    /// invalidation takes too: a change seen after the check drops the entry again.
    pub(crate) fn insert_if(&self, key: &str, bytes: Bytes, still_current: impl FnOnce() -> bool) {
        if let Ok(mut g) = self.generations.lock()
            && still_current()
        {
            Self::put(&mut g, self.half, key.to_owned(), bytes);
        }
    }

    fn put(g: &mut Generations, half: usize, key: String, bytes: Bytes) {
        if g.young.len() >= half {
            g.old = std::mem::take(&mut g.young);
        }
        g.young.insert(key, bytes);
    }

    fn forget(&self, key: &str) {
        if let Ok(mut g) = self.generations.lock() {
            g.young.remove(key);
            g.old.remove(key);
        }
    }

    fn clear(&self) {
        if let Ok(mut g) = self.generations.lock() {
            g.young.clear();
            g.old.clear();
        }
    }
}

/// The informer handler that keeps a cache current.
pub struct CacheInvalidator(pub std::sync::Arc<ObjectCache>);

impl Handler for CacheInvalidator {
    fn resync_begin(&mut self) {
        self.0.clear();
    }

    fn resync_page(&mut self, _items: &[Item<'_>]) {}

    fn event(&mut self, event: &Event, _head: Option<&Head>) {
        self.0.forget(&event.kv.key);
    }
}

/// Whether a view that has applied `applied` has seen every write committed at `committed`.
pub(crate) fn complete(applied: Revision, committed: Option<Revision>) -> bool {
    committed.is_some_and(|c| applied >= c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recently_read_entries_survive_and_old_ones_go() {
        let cache = ObjectCache::new(4);
        for key in ["a", "b", "c"] {
            cache.insert(key, Bytes::from(key.to_owned()));
        }
        // `a` and `b` moved to the old generation when `c` arrived; reading `a` keeps it.
        assert_eq!(cache.get("a").as_deref(), Some(&b"a"[..]));
        cache.insert("d", Bytes::from_static(b"d"));
        cache.insert("e", Bytes::from_static(b"e"));
        assert!(cache.get("b").is_none());
        assert!(cache.get("e").is_some());
        cache.forget("e");
        assert!(cache.get("e").is_none());
    }

    #[test]
    fn a_view_is_complete_only_when_the_backend_can_say_so() {
        assert!(complete(Revision(5), Some(Revision(5))));
        assert!(!complete(Revision(4), Some(Revision(5))));
        assert!(!complete(Revision(5), None));
    }
}

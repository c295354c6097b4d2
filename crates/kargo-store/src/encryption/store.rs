//! [`EncryptedStore`]: a [`Store`] over another store that encrypts the values of chosen key
//! prefixes on the way in and decrypts them on the way out — reads, lists, watch events and the
//! current values carried by `AlreadyExists` and `Conflict` errors alike — and keeps every
//! contract of the store it wraps (revisions, compare-and-swap, watch order).

use std::borrow::Cow;
use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;

use super::cipher::{Transformer, ValueError};
use crate::{Error, Event, KeyValue, ListPage, ListRequest, Result, Revision, Store, WatchStream};

/// How many keys [`EncryptedStore::verify`] and [`EncryptedStore::reencrypt`] read at a time.
const PAGE: usize = 500;

/// The keys under one prefix and the keys that encrypt their values.
#[derive(Debug, Clone)]
pub struct EncryptedPrefix {
    /// Store keys that start with this (a directory ends in `/`).
    pub prefix: String,
    /// Their keys: the first writes, all read.
    pub transformer: Arc<Transformer>,
}

/// A failure of [`EncryptedStore::verify`] or [`EncryptedStore::reencrypt`].
#[derive(Debug, thiserror::Error)]
pub enum EncryptionError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] Error),
    /// A stored value cannot be decrypted (or encrypted) with the configured keys.
    #[error(transparent)]
    Value(#[from] ValueError),
}

/// What [`EncryptedStore::verify`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Verified {
    /// Values read and decrypted under the encrypted prefixes.
    pub values: usize,
    /// Of those, values not in the form the first key writes (plain, or an older key):
    /// `kargo server reencrypt` rewrites them.
    pub stale: usize,
}

/// What [`EncryptedStore::reencrypt`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reencrypted {
    /// Values read under the encrypted prefixes.
    pub values: usize,
    /// Values rewritten with the first key.
    pub rewritten: usize,
}

/// A store whose values under some prefixes are encrypted at rest. The first prefix that a key
/// starts with decides; keys under none pass through untouched.
pub struct EncryptedStore {
    inner: Arc<dyn Store>,
    prefixes: Arc<[EncryptedPrefix]>,
}

impl EncryptedStore {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Store>, prefixes: Vec<EncryptedPrefix>) -> EncryptedStore {
        EncryptedStore {
            inner,
            prefixes: prefixes.into(),
        }
    }

    /// The encrypted prefixes, in order.
    pub fn prefixes(&self) -> &[EncryptedPrefix] {
        &self.prefixes
    }

    /// Reads every value under the encrypted prefixes and decrypts it: a value written with a key
    /// that is not configured (or that no longer matches its name) fails here, with a message that
    /// names the store key and the provider key, rather than later in a list or watch.
    pub async fn verify(&self) -> Result<Verified, EncryptionError> {
        let mut verified = Verified::default();
        for entry in self.prefixes.iter() {
            let mut start_after = None;
            loop {
                let (items, next) = self
                    .owned_page(&entry.prefix, Some(&entry.prefix), start_after)
                    .await?;
                for (kv, transformer) in items {
                    transformer.decrypt(&kv.key, &kv.value)?;
                    verified.values += 1;
                    if !transformer.is_current(&kv.value) {
                        verified.stale += 1;
                    }
                }
                match next {
                    Some(_) => start_after = next,
                    None => break,
                }
            }
        }
        Ok(verified)
    }

    /// Rewrites every value under the encrypted prefixes that is not in the form the first key
    /// writes, each as a compare-and-swap on the revision it was read at; a value that changed
    /// meanwhile is read again (a running server may write it: its own write already uses the
    /// first key if it runs with the same configuration), one that was deleted is skipped.
    pub async fn reencrypt(&self) -> Result<Reencrypted, EncryptionError> {
        let mut done = Reencrypted::default();
        for entry in self.prefixes.iter() {
            self.reencrypt_listing(&entry.prefix, Some(&entry.prefix), &mut done)
                .await?;
        }
        Ok(done)
    }

    /// [`EncryptedStore::reencrypt`] for the keys under `prefix` only (each with the transformer
    /// of the first encrypted prefix it is under; keys under none are left alone).
    pub async fn reencrypt_prefix(&self, prefix: &str) -> Result<Reencrypted, EncryptionError> {
        let mut done = Reencrypted::default();
        self.reencrypt_listing(prefix, None, &mut done).await?;
        Ok(done)
    }

    async fn reencrypt_listing(
        &self,
        prefix: &str,
        owner: Option<&str>,
        done: &mut Reencrypted,
    ) -> Result<(), EncryptionError> {
        let mut start_after = None;
        loop {
            let (items, next) = self.owned_page(prefix, owner, start_after).await?;
            for (kv, transformer) in items {
                done.values += 1;
                if self.rewrite(transformer, kv).await? {
                    done.rewritten += 1;
                }
            }
            match next {
                Some(_) => start_after = next,
                None => return Ok(()),
            }
        }
    }

    /// One page of the stored values under `prefix` that are encrypted, with their transformers,
    /// and the key the next page starts after (`None`: this was the last). With `owner`, only the
    /// keys whose first encrypted prefix is `owner`, so that a walk over every encrypted prefix
    /// meets each key once even where prefixes nest.
    async fn owned_page(
        &self,
        prefix: &str,
        owner: Option<&str>,
        start_after: Option<String>,
    ) -> Result<(Vec<(KeyValue, &Transformer)>, Option<String>)> {
        let page = self
            .inner
            .list(ListRequest {
                prefix: prefix.to_owned(),
                start_after,
                revision: None,
                limit: Some(PAGE),
            })
            .await?;
        let next = match (page.more, page.kvs.last()) {
            (true, Some(last)) => Some(last.key.clone()),
            _ => None,
        };
        let items = page
            .kvs
            .into_iter()
            .filter_map(|kv| {
                let entry = self
                    .prefixes
                    .iter()
                    .find(|p| kv.key.starts_with(&p.prefix))?;
                if owner.is_some_and(|owner| owner != entry.prefix) {
                    return None;
                }
                Some((kv, entry.transformer.as_ref()))
            })
            .collect();
        Ok((items, next))
    }

    /// Rewrites one stored value with the first key unless it is current; whether it wrote.
    async fn rewrite(
        &self,
        transformer: &Transformer,
        mut stored: KeyValue,
    ) -> Result<bool, EncryptionError> {
        loop {
            if transformer.is_current(&stored.value) {
                return Ok(false);
            }
            let plain = transformer.decrypt(&stored.key, &stored.value)?;
            let sealed = transformer.encrypt(&stored.key, &plain)?;
            match self
                .inner
                .update(&stored.key, sealed, stored.mod_revision)
                .await
            {
                Ok(_) => return Ok(true),
                Err(Error::Conflict { current, .. }) => stored = *current,
                Err(Error::NotFound { .. }) => return Ok(false),
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn seal(&self, key: &str, value: &[u8]) -> Result<Option<Vec<u8>>> {
        match transformer(&self.prefixes, key) {
            Some(t) => t.encrypt(key, value).map(Some).map_err(store_error),
            None => Ok(None),
        }
    }

    /// Maps an error of the inner store, decrypting the current value it carries.
    fn open_error(&self, error: Error) -> Error {
        open_error(&self.prefixes, error)
    }
}

/// The transformer of the first prefix `key` starts with.
fn transformer<'a>(prefixes: &'a [EncryptedPrefix], key: &str) -> Option<&'a Transformer> {
    prefixes
        .iter()
        .find(|p| key.starts_with(&p.prefix))
        .map(|p| p.transformer.as_ref())
}

fn store_error(error: ValueError) -> Error {
    Error::Internal(error.to_string())
}

/// Decrypts `kv.value` in place if its key is under an encrypted prefix.
fn open(prefixes: &[EncryptedPrefix], kv: &mut KeyValue) -> Result<()> {
    let Some(t) = transformer(prefixes, &kv.key) else {
        return Ok(());
    };
    let plain = match t.decrypt(&kv.key, &kv.value).map_err(store_error)? {
        Cow::Owned(plain) => plain,
        Cow::Borrowed(_) => return Ok(()),
    };
    kv.value = plain;
    Ok(())
}

fn open_error(prefixes: &[EncryptedPrefix], error: Error) -> Error {
    match error {
        Error::AlreadyExists { key, mut current } => match open(prefixes, &mut current) {
            Ok(()) => Error::AlreadyExists { key, current },
            Err(e) => e,
        },
        Error::Conflict {
            key,
            expected,
            actual,
            mut current,
        } => match open(prefixes, &mut current) {
            Ok(()) => Error::Conflict {
                key,
                expected,
                actual,
                current,
            },
            Err(e) => e,
        },
        other => other,
    }
}

fn open_event(prefixes: &[EncryptedPrefix], mut event: Event) -> Result<Event> {
    open(prefixes, &mut event.kv)?;
    if let Some(prev) = event.prev.as_mut() {
        open(prefixes, prev)?;
    }
    Ok(event)
}

/// Whether some key could be under both `a` and `b`.
fn overlaps(a: &str, b: &str) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

#[async_trait]
impl Store for EncryptedStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let mut found = self.inner.get(key).await?;
        if let Some(kv) = found.as_mut() {
            open(&self.prefixes, kv)?;
        }
        Ok(found)
    }

    async fn list(&self, request: ListRequest) -> Result<ListPage> {
        let mut page = self.inner.list(request).await?;
        for kv in &mut page.kvs {
            open(&self.prefixes, kv)?;
        }
        Ok(page)
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue> {
        let Some(sealed) = self.seal(key, &value)? else {
            return self.inner.create(key, value).await;
        };
        let mut kv = self
            .inner
            .create(key, sealed)
            .await
            .map_err(|e| self.open_error(e))?;
        kv.value = value;
        Ok(kv)
    }

    async fn update(&self, key: &str, value: Vec<u8>, expected: Revision) -> Result<KeyValue> {
        let Some(sealed) = self.seal(key, &value)? else {
            return self.inner.update(key, value, expected).await;
        };
        let mut kv = self
            .inner
            .update(key, sealed, expected)
            .await
            .map_err(|e| self.open_error(e))?;
        kv.value = value;
        Ok(kv)
    }

    async fn delete(&self, key: &str, expected: Revision) -> Result<KeyValue> {
        let mut kv = self
            .inner
            .delete(key, expected)
            .await
            .map_err(|e| self.open_error(e))?;
        open(&self.prefixes, &mut kv)?;
        Ok(kv)
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        let stream = self.inner.watch(prefix, after).await?;
        if !self.prefixes.iter().any(|p| overlaps(&p.prefix, prefix)) {
            return Ok(stream);
        }
        // A value that does not decrypt ends the stream with that error, as the trait's contract
        // says of a stream that cannot continue (the state is `None` once it has failed).
        let state = Some((stream, self.prefixes.clone()));
        let decrypted = futures::stream::unfold(state, |state| async move {
            let (mut stream, prefixes) = state?;
            let item = stream
                .next()
                .await?
                .and_then(|event| open_event(&prefixes, event));
            let next = item.is_ok().then_some((stream, prefixes));
            Some((item, next))
        });
        Ok(Box::pin(decrypted))
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        self.inner.compact(revision).await
    }

    async fn current_revision(&self) -> Result<Revision> {
        self.inner.current_revision().await
    }

    async fn compacted_revision(&self) -> Result<Revision> {
        self.inner.compacted_revision().await
    }

    fn committed_revision(&self) -> Option<Revision> {
        self.inner.committed_revision()
    }
}

//! Which legacy tokens were used, in which minute and from where, as the request path observes
//! it, until the flusher (`kargo-controllers`' `last_used`) writes it to the token Secrets.
//!
//! Each token Secret of the [`AuthView`](crate::view::AuthView) carries one [`Usage`], kept
//! across updates of the same Secret (same uid) and relists. Recording a use costs one atomic
//! load of the latest minute recorded, a cache line that is only read in the common case: the
//! first use of a token in a new minute takes its lock, notes the address and queues the token
//! once in [`UsageLog`]. So a token is written at most once per minute, and the request path
//! never writes to the store. The address kept is that of the first use seen in the minute.

use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

pub use kargo_api::last_used::Use;

/// What one token Secret's uses were, since the flusher last took them.
#[derive(Debug)]
pub struct Usage {
    namespace: String,
    name: String,
    uid: String,
    /// The latest minute recorded (Unix seconds), [`i64::MIN`] before any: read per request.
    minute: AtomicI64,
    slot: Mutex<Slot>,
}

#[derive(Debug, Default)]
struct Slot {
    latest: Option<Use>,
    /// Whether the Secret is in the log's queue (so it is queued once).
    queued: bool,
}

impl Usage {
    /// The usage of the Secret `namespace/name` with uid `uid`, with no use yet.
    pub(crate) fn new(namespace: &str, name: &str, uid: &str) -> Arc<Usage> {
        Arc::new(Usage {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            uid: uid.to_owned(),
            minute: AtomicI64::new(i64::MIN),
            slot: Mutex::default(),
        })
    }

    /// Whether this usage is that of a Secret with uid `uid` (kept across its updates).
    pub(crate) fn is_of(&self, uid: &str) -> bool {
        self.uid == uid
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl PartialEq for Usage {
    /// Usages compare by the Secret they belong to, so that a view's entries compare by content.
    fn eq(&self, other: &Usage) -> bool {
        (&self.namespace, &self.name, &self.uid) == (&other.namespace, &other.name, &other.uid)
    }
}

impl Eq for Usage {}

/// A token Secret's latest use, taken from the log by the flusher.
#[derive(Debug, Clone)]
pub struct TokenUse {
    /// The Secret's namespace.
    pub namespace: String,
    /// The Secret's name.
    pub name: String,
    /// The Secret's uid (a Secret deleted and created again under the same name is another).
    pub uid: String,
    /// The latest use.
    pub used: Use,
    usage: Arc<Usage>,
}

/// The queue of token Secrets used since the flusher last took them: one entry per Secret.
#[derive(Debug, Default)]
pub struct UsageLog {
    pending: Mutex<Vec<Arc<Usage>>>,
}

impl UsageLog {
    /// Records a use of the token whose Secret's usage is `usage`, at Unix second `now`, from
    /// `from`. Later minutes win; a use in the minute already recorded (or an earlier one, if
    /// the clock went back) costs one atomic load.
    #[inline]
    pub(crate) fn record(&self, usage: &Arc<Usage>, now: i64, from: Option<IpAddr>) {
        let used = Use::new(now, from);
        if used.minute <= usage.minute.load(Ordering::Relaxed) {
            return;
        }
        self.record_slow(usage, used);
    }

    #[cold]
    fn record_slow(&self, usage: &Arc<Usage>, used: Use) {
        let mut slot = usage.slot();
        if slot.latest.is_some_and(|l| l.minute >= used.minute) {
            return;
        }
        slot.latest = Some(used);
        usage.minute.store(used.minute, Ordering::Relaxed);
        if !slot.queued {
            slot.queued = true;
            self.lock().push(usage.clone());
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Usage>>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the latest use of every token Secret used since the last call.
    pub fn take(&self) -> Vec<TokenUse> {
        let pending = std::mem::take(&mut *self.lock());
        pending
            .into_iter()
            .filter_map(|usage| {
                let used = {
                    let mut slot = usage.slot();
                    slot.queued = false;
                    slot.latest?
                };
                Some(TokenUse {
                    namespace: usage.namespace.clone(),
                    name: usage.name.clone(),
                    uid: usage.uid.clone(),
                    used,
                    usage,
                })
            })
            .collect()
    }

    /// Queues a taken use again (its write failed), unless a later use already queued it.
    pub fn retry(&self, taken: TokenUse) {
        let mut slot = taken.usage.slot();
        if !slot.queued {
            slot.queued = true;
            self.lock().push(taken.usage.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(value: &str) -> Option<IpAddr> {
        Some(value.parse().unwrap())
    }

    #[test]
    fn a_token_is_queued_once_with_the_first_address_of_its_latest_minute() {
        let log = UsageLog::default();
        let usage = Usage::new("p", "t", "u1");
        log.record(&usage, 600, ip("192.0.2.1"));
        log.record(&usage, 659, ip("192.0.2.2"));
        log.record(&usage, 540, ip("192.0.2.3"));
        let taken = log.take();
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].used, Use::new(600, ip("192.0.2.1")));
        assert_eq!(
            (&*taken[0].namespace, &*taken[0].name, &*taken[0].uid),
            ("p", "t", "u1")
        );
        assert!(log.take().is_empty(), "nothing new");

        log.record(&usage, 660, ip("192.0.2.2"));
        log.record(&usage, 725, None);
        let taken = log.take();
        assert_eq!(taken.len(), 1, "queued once for two new minutes");
        assert_eq!(taken[0].used, Use::new(720, None));
    }

    #[test]
    fn a_failed_write_is_queued_again_once() {
        let log = UsageLog::default();
        let usage = Usage::new("p", "t", "u1");
        log.record(&usage, 600, None);
        let taken = log.take().pop().unwrap();
        log.record(&usage, 660, None);
        log.retry(taken);
        let again = log.take();
        assert_eq!(again.len(), 1);
        assert_eq!(
            again[0].used.minute, 660,
            "the latest use, not the failed one"
        );
    }
}

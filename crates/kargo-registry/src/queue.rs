//! A work queue for controllers: items are deduplicated while pending, processed one at a time by
//! a worker, and requeued with a delay when the worker asks for it.

use std::collections::HashSet;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What a worker wants after processing an item.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Done with the item until something changes.
    Done,
    /// Process it again after this delay.
    Requeue(Duration),
}

/// The sending side of a queue: cheap to clone, usable from informer handlers.
pub struct Queue<T> {
    tx: mpsc::UnboundedSender<T>,
    pending: Arc<Mutex<HashSet<T>>>,
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Queue {
            tx: self.tx.clone(),
            pending: self.pending.clone(),
        }
    }
}

impl<T: Clone + Eq + Hash + Send + 'static> Queue<T> {
    /// Adds an item unless it is already pending.
    pub fn add(&self, item: T) {
        let fresh = self
            .pending
            .lock()
            .map(|mut p| p.insert(item.clone()))
            .unwrap_or(true);
        if fresh {
            let _ = self.tx.send(item);
        }
    }

    fn add_after(&self, item: T, delay: Duration) {
        let queue = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            queue.add(item);
        });
    }
}

/// Starts a queue whose items `work` processes one at a time until `shutdown`.
pub fn start<T, F, Fut>(shutdown: CancellationToken, mut work: F) -> Queue<T>
where
    T: Clone + Eq + Hash + Send + 'static,
    F: FnMut(T) -> Fut + Send + 'static,
    Fut: Future<Output = Action> + Send,
{
    let (tx, mut rx) = mpsc::unbounded_channel::<T>();
    let queue = Queue {
        tx,
        pending: Arc::new(Mutex::new(HashSet::new())),
    };
    let worker_queue = queue.clone();
    tokio::spawn(async move {
        loop {
            let item = tokio::select! {
                item = rx.recv() => match item {
                    Some(i) => i,
                    None => return,
                },
                _ = shutdown.cancelled() => return,
            };
            if let Ok(mut p) = worker_queue.pending.lock() {
                p.remove(&item);
            }
            match work(item.clone()).await {
                Action::Done => {}
                Action::Requeue(delay) => worker_queue.add_after(item, delay),
            }
        }
    });
    queue
}

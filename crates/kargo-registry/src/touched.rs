//! What one piece of work wrote: every object that [`Registry::commit`](crate::Registry) wrote
//! while a future ran inside [`recording`], in order. The HTTP layer records each request this
//! way, so that the audit log can name every object a Kargo action touched (a grant updates a
//! RoleBinding, deleting an account updates bindings and deletes the account) without any
//! handler or Kargo operation listing them by hand.
//!
//! Recording is per task (a tokio task-local): writes made by other tasks (the controllers,
//! the garbage collector) are not the request's. Outside [`recording`] noting costs one failed
//! task-local lookup.

use std::cell::RefCell;
use std::future::Future;

use kargo_api::resources::ResourceType;

use crate::Target;

tokio::task_local! {
    static TOUCHED: RefCell<Vec<Touched>>;
}

/// What a write did to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteAction {
    /// Created it.
    Created,
    /// Replaced it (an update, a patch, a status change, or a deletion that waits for
    /// finalizers).
    Updated,
    /// Removed it.
    Deleted,
    /// Left it to the garbage collector: a dependent of an object this work deleted in the
    /// background, deleted shortly after by the collector (noted by the caller that knows it,
    /// with [`note_collected`]).
    Collected,
}

impl WriteAction {
    /// The action as the audit log writes it (`create`, `update`, `delete`, `collect`).
    pub fn as_str(self) -> &'static str {
        match self {
            WriteAction::Created => "create",
            WriteAction::Updated => "update",
            WriteAction::Deleted => "delete",
            WriteAction::Collected => "collect",
        }
    }
}

/// One object written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Touched {
    /// Its resource type.
    pub rt: &'static ResourceType,
    /// Its namespace (`None` for a cluster-scoped object).
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
    /// What was done to it.
    pub action: WriteAction,
}

/// Runs `work`, returning its output and every object written while it ran on this task.
pub async fn recording<F: Future>(work: F) -> (F::Output, Vec<Touched>) {
    TOUCHED
        .scope(RefCell::new(Vec::new()), async move {
            let output = work.await;
            let touched = TOUCHED.with(|w| w.take());
            (output, touched)
        })
        .await
}

/// Whether this task is inside [`recording`] (so that a caller computes what to note only
/// when someone records it).
pub fn is_recording() -> bool {
    TOUCHED.try_with(|_| ()).is_ok()
}

/// Notes a write of `target` (the registry's commit path calls this).
pub(crate) fn note(target: Target<'_>, action: WriteAction) {
    push(target.rt, target.namespace, target.name, action);
}

/// Notes that the object `rt` `namespace/name` is left to the garbage collector (see
/// [`WriteAction::Collected`]). Does nothing outside [`recording`].
pub fn note_collected(rt: &'static ResourceType, namespace: Option<&str>, name: &str) {
    push(rt, namespace, name, WriteAction::Collected);
}

fn push(rt: &'static ResourceType, namespace: Option<&str>, name: &str, action: WriteAction) {
    let _ = TOUCHED.try_with(|w| {
        w.borrow_mut().push(Touched {
            rt,
            namespace: namespace.filter(|_| rt.namespaced).map(str::to_owned),
            name: name.to_owned(),
            action,
        });
    });
}

#[cfg(test)]
mod tests {
    use kargo_api::resources::{NAMESPACES, SECRETS};

    use super::*;

    #[tokio::test]
    async fn writes_inside_a_recording_are_returned_in_order_and_nothing_outside() {
        note_collected(&SECRETS, Some("p"), "outside");
        let ((), touched) = recording(async {
            note(
                Target::new(&NAMESPACES, Some("ignored"), "p"),
                WriteAction::Created,
            );
            tokio::task::yield_now().await;
            note_collected(&SECRETS, Some("p"), "t");
        })
        .await;
        assert_eq!(
            touched,
            [
                Touched {
                    rt: &NAMESPACES,
                    namespace: None,
                    name: "p".into(),
                    action: WriteAction::Created
                },
                Touched {
                    rt: &SECRETS,
                    namespace: Some("p".into()),
                    name: "t".into(),
                    action: WriteAction::Collected
                },
            ]
        );
    }
}

//! Change signals for `kargo get -w`. The Kargo REST API has no watch, so the CLI watches the
//! Kubernetes objects a Kargo kind is made of, through the same server's Kubernetes API and with
//! the same token (a project's ServiceAccounts, its token Secrets, a role's ServiceAccount, Role
//! and RoleBinding), and only learns from them *that* something changed: the caller then lists
//! again through the Kargo REST API and prints what differs, so every row is the one `kargo get`
//! prints.
//!
//! Each watch runs as a task on the client's runtime. It asks the server to end the watch after
//! a few minutes and resumes from the last resourceVersion it saw (bookmarks included); a
//! `410 Gone` (compacted history) starts it afresh and signals a change, so nothing is missed.

use std::time::Duration;

use kargo_api::kargo::{
    API_TOKEN_LABEL, SERVICE_ACCOUNT_LABEL, SYSTEM_NAMESPACE, TOKEN_LABEL, TRUE,
};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::api::{Scope, segment};
use crate::client::{Client, ClientError, Streams};
use crate::output::Kind;

/// How long the server keeps one watch open before the task resumes it.
const WATCH_SECONDS: u64 = 240;
/// How long changes are gathered after the first before the caller lists again: a burst of
/// writes (a role's three objects) costs one list.
const SETTLE: Duration = Duration::from_millis(100);
/// Pause before resuming a watch whose connection broke.
const RETRY: Duration = Duration::from_secs(1);

/// The Kubernetes API collections (paths with their label selector) whose changes change the
/// Kargo objects of `kind` in `scope` (every project's with `None`).
pub fn sources(kind: Kind, scope: Option<&Scope>) -> Vec<String> {
    let namespace = match scope {
        Some(Scope::Project(p)) => format!("/namespaces/{}", segment(p)),
        Some(Scope::System) => format!("/namespaces/{SYSTEM_NAMESPACE}"),
        None => String::new(),
    };
    let labelled = |label: &str| format!("?labelSelector={}", segment(&format!("{label}={TRUE}")));
    match kind {
        Kind::Project => vec!["/apis/kargo.akuity.io/v1alpha1/projects?".to_owned()],
        Kind::ServiceAccount => vec![format!(
            "/api/v1{namespace}/serviceaccounts{}",
            labelled(SERVICE_ACCOUNT_LABEL)
        )],
        Kind::ServiceAccountToken => vec![format!(
            "/api/v1{namespace}/secrets{}",
            labelled(TOKEN_LABEL)
        )],
        Kind::ApiToken => vec![format!(
            "/api/v1{namespace}/secrets{}",
            labelled(API_TOKEN_LABEL)
        )],
        Kind::Role => vec![
            format!("/api/v1{namespace}/serviceaccounts?"),
            format!("/apis/rbac.authorization.k8s.io/v1{namespace}/roles?"),
            format!("/apis/rbac.authorization.k8s.io/v1{namespace}/rolebindings?"),
        ],
    }
}

/// What a watch task tells the caller.
enum Signal {
    /// Something in a watched collection changed.
    Changed,
    /// The watch cannot go on (refused, or the server is gone).
    Failed(ClientError),
}

/// The changes of some collections, as they happen.
pub struct Changes {
    receiver: mpsc::UnboundedReceiver<Signal>,
}

impl Changes {
    /// Starts watching `sources` (paths from [`sources`]). Start before the first list: a change
    /// made between that list and the watch would otherwise go unseen.
    pub fn start(client: &Client, sources: Vec<String>) -> Changes {
        let (sender, receiver) = mpsc::unbounded_channel();
        for source in sources {
            client.spawn(follow(client.streams(), source, sender.clone()));
        }
        Changes { receiver }
    }

    /// Waits for the next change (then for the ones right behind it), or for the failure that
    /// ends the watch.
    pub fn next(&mut self, client: &Client) -> Result<(), ClientError> {
        client.block_on(async {
            let first = self.receiver.recv().await;
            tokio::time::sleep(SETTLE).await;
            let mut signals = vec![first];
            while let Ok(signal) = self.receiver.try_recv() {
                signals.push(Some(signal));
            }
            for signal in signals {
                match signal {
                    Some(Signal::Changed) => {}
                    Some(Signal::Failed(e)) => return Err(e),
                    None => {
                        return Err(ClientError::Unexpected {
                            address: "the server".to_owned(),
                            status: 200,
                            reason: "every watch ended".to_owned(),
                        });
                    }
                }
            }
            Ok(())
        })
    }
}

/// Watches one collection for as long as the receiver listens, resuming where it stopped.
async fn follow(streams: Streams, source: String, sender: mpsc::UnboundedSender<Signal>) {
    let mut resource_version: Option<String> = None;
    let mut resumed = false;
    loop {
        let mut path =
            format!("{source}&watch=1&allowWatchBookmarks=true&timeoutSeconds={WATCH_SECONDS}");
        if let Some(rv) = &resource_version {
            path.push_str(&format!("&resourceVersion={}", segment(rv)));
        }
        let limit = Duration::from_secs(WATCH_SECONDS + 60);
        let mut response = match streams.open(&path, limit).await {
            Ok(response) => response,
            // A resumed watch may meet a server restarting: try once more, then give up.
            Err(ClientError::Connect { .. }) if resumed => {
                resumed = false;
                tokio::time::sleep(RETRY).await;
                continue;
            }
            Err(e) => {
                let _ = sender.send(Signal::Failed(e));
                return;
            }
        };
        let mut pending = Vec::new();
        loop {
            let chunk = match response.chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(e) if e.is_timeout() || e.is_body() || e.is_decode() => break,
                Err(e) => {
                    let _ = sender.send(Signal::Failed(streams.broken(&e)));
                    return;
                }
            };
            pending.extend_from_slice(&chunk);
            while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                let Ok(event) = serde_json::from_slice::<Value>(&line) else {
                    continue;
                };
                if let Some(signal) = read_event(&event, &mut resource_version)
                    && sender.send(signal).is_err()
                {
                    return;
                }
            }
        }
        if sender.is_closed() {
            return;
        }
        resumed = true;
    }
}

/// What one watch event means: a change (after which the watch resumes from its
/// resourceVersion), nothing (a bookmark), or the end of the watch. `410 Gone` forgets the
/// resourceVersion: the watch starts afresh, and the caller lists again.
fn read_event(event: &Value, resource_version: &mut Option<String>) -> Option<Signal> {
    let object = event.get("object");
    let kind = event.get("type").and_then(Value::as_str).unwrap_or("");
    if kind == "ERROR" {
        let code = object.and_then(|o| o.get("code")).and_then(Value::as_u64);
        if code == Some(410) {
            *resource_version = None;
            return Some(Signal::Changed);
        }
        let message = object
            .and_then(|o| o.get("message"))
            .and_then(Value::as_str)
            .unwrap_or("the watch failed")
            .to_owned();
        return Some(Signal::Failed(ClientError::Api {
            status: code.and_then(|c| u16::try_from(c).ok()).unwrap_or(500),
            message,
            request_id: None,
        }));
    }
    if let Some(rv) = object
        .and_then(|o| o.pointer("/metadata/resourceVersion"))
        .and_then(Value::as_str)
    {
        *resource_version = Some(rv.to_owned());
    }
    match kind {
        "ADDED" | "MODIFIED" | "DELETED" => Some(Signal::Changed),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn each_kind_watches_what_it_is_made_of() {
        let p = Scope::Project("my project".into());
        assert_eq!(
            sources(Kind::ServiceAccount, Some(&p)),
            [
                "/api/v1/namespaces/my%20project/serviceaccounts?labelSelector=rbac.kargo.akuity.io%2Fservice-account%3Dtrue"
            ]
        );
        assert_eq!(
            sources(Kind::ServiceAccountToken, None),
            ["/api/v1/secrets?labelSelector=rbac.kargo.akuity.io%2Fservice-account-token%3Dtrue"]
        );
        assert_eq!(
            sources(Kind::ApiToken, Some(&Scope::System)),
            [
                "/api/v1/namespaces/kargo/secrets?labelSelector=rbac.kargo.akuity.io%2Fapi-token%3Dtrue"
            ]
        );
        assert_eq!(
            sources(Kind::Role, Some(&Scope::System)),
            [
                "/api/v1/namespaces/kargo/serviceaccounts?",
                "/apis/rbac.authorization.k8s.io/v1/namespaces/kargo/roles?",
                "/apis/rbac.authorization.k8s.io/v1/namespaces/kargo/rolebindings?",
            ]
        );
        assert_eq!(
            sources(Kind::Project, None),
            ["/apis/kargo.akuity.io/v1alpha1/projects?"]
        );
    }

    #[test]
    fn events_signal_changes_bookmarks_move_the_resource_version_and_gone_starts_afresh() {
        let mut rv = None;
        let added = json!({"type": "ADDED", "object": {"metadata": {"resourceVersion": "7"}}});
        assert!(matches!(read_event(&added, &mut rv), Some(Signal::Changed)));
        assert_eq!(rv.as_deref(), Some("7"));

        let bookmark =
            json!({"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "9"}}});
        assert!(read_event(&bookmark, &mut rv).is_none());
        assert_eq!(rv.as_deref(), Some("9"));

        let gone = json!({"type": "ERROR", "object": {"kind": "Status", "code": 410, "message": "too old"}});
        assert!(matches!(read_event(&gone, &mut rv), Some(Signal::Changed)));
        assert_eq!(rv, None);

        let refused = json!({"type": "ERROR", "object": {"code": 403, "message": "no"}});
        match read_event(&refused, &mut rv) {
            Some(Signal::Failed(ClientError::Api {
                status, message, ..
            })) => assert_eq!((status, message.as_str()), (403, "no")),
            _ => panic!("a refusal ends the watch"),
        }
    }
}

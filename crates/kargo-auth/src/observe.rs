//! The seam where every authentication attempt and every authorization decision is seen: what
//! metrics and the audit log attach to.
//!
//! An [`AuthObserver`] is given to the [`Authenticator`](crate::authn::Authenticator) and the
//! [`Authorizer`](crate::authz::Authorizer) (the server wires its metrics,
//! `kargo_http::metrics`). Each calls it from one place, for every attempt or decision,
//! remembered ones included. Without an observer the cost is one `Option` check.
//!
//! **Invariant:** a record never holds a credential: no token, no password, no certificate;
//! failure reasons are kube-apiserver's texts, which name accounts and Secrets, never a token.

use std::borrow::Cow;
use std::net::IpAddr;

use crate::rbac::{Attributes, UserInfo};

/// Sees authentication attempts and authorization decisions. Both methods are called on the
/// request's thread while it waits: keep them short (count, or hand the record to a channel).
pub trait AuthObserver: Send + Sync {
    /// One authentication attempt, successful or not.
    fn authentication(&self, attempt: &AuthnAttempt<'_>) {
        let _ = attempt;
    }

    /// One authorization decision, allowed or not.
    fn authorization(&self, decision: &AuthzDecision<'_>) {
        let _ = decision;
    }
}

/// Several observers as one: each is told of every attempt and decision, in order.
#[derive(Clone, Default)]
pub struct AuthObservers(pub Vec<std::sync::Arc<dyn AuthObserver>>);

impl AuthObserver for AuthObservers {
    fn authentication(&self, attempt: &AuthnAttempt<'_>) {
        for observer in &self.0 {
            observer.authentication(attempt);
        }
    }

    fn authorization(&self, decision: &AuthzDecision<'_>) {
        for observer in &self.0 {
            observer.authorization(decision);
        }
    }
}

/// The kind of credential an attempt presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// A legacy service-account token (a token Secret's).
    ServiceAccountToken,
    /// A bound service-account token (from a TokenRequest).
    BoundToken,
    /// The admin's session token.
    AdminToken,
    /// The admin's password (`POST /v1beta1/login`).
    AdminPassword,
    /// A client certificate signed by the server's CA.
    ClientCertificate,
    /// An ID token of the configured OpenID provider (single sign-on), valid or not.
    Oidc,
    /// An `Authorization` header with none of the above: not a bearer token, or a token of no
    /// issuer of ours.
    Unrecognized,
    /// No credentials at all.
    None,
}

/// One authentication attempt.
#[derive(Debug, Clone)]
pub struct AuthnAttempt<'a> {
    /// What was presented.
    pub credential: Credential,
    /// Who it authenticated as, or why it failed.
    pub outcome: AuthnOutcome<'a>,
    /// The client's address, when the listener knows it.
    pub source: Option<IpAddr>,
}

/// How an authentication attempt ended.
#[derive(Debug, Clone)]
pub enum AuthnOutcome<'a> {
    /// The user the credential speaks for.
    Authenticated(&'a UserInfo),
    /// Why it was refused (kube-apiserver's text for service-account tokens).
    Failed(Cow<'a, str>),
}

/// One authorization decision.
#[derive(Debug, Clone)]
pub struct AuthzDecision<'a> {
    /// Who asked.
    pub user: &'a UserInfo,
    /// What was asked: the verb, and the API group, resource, subresource, namespace and name
    /// (or the non-resource path).
    pub attributes: &'a Attributes,
    /// Whether it is allowed.
    pub allowed: bool,
    /// RBAC's reason when it gave one (`RBAC: allowed by ...`), or the message a refused caller
    /// is answered with; empty for `system:masters` and for remembered allows.
    pub reason: &'a str,
}

impl AuthzDecision<'_> {
    /// The verb.
    pub fn verb(&self) -> &str {
        self.attributes.verb()
    }

    /// The resource attributes `(api group, resource, subresource, namespace, name)`, or `None`
    /// for a non-resource request.
    pub fn resource(&self) -> Option<(&str, &str, &str, &str, &str)> {
        match self.attributes {
            Attributes::Resource(r) => Some((
                &r.api_group,
                &r.resource,
                &r.subresource,
                &r.namespace,
                &r.name,
            )),
            Attributes::NonResource(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use kargo_api::resources::{ROLEBINDINGS, ROLES};
    use serde_json::json;

    use super::*;
    use crate::authn::AuthFailure;
    use crate::testing::World;

    /// What the observer was told, as plain text and values.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Record {
        Authn {
            credential: Credential,
            user: Option<String>,
            failure: Option<String>,
            source: Option<IpAddr>,
        },
        Authz {
            user: String,
            verb: String,
            resource: Option<(String, String, String, String, String)>,
            allowed: bool,
            reason: String,
        },
    }

    #[derive(Default)]
    struct Recorder(Mutex<Vec<Record>>);

    impl Recorder {
        fn take(&self) -> Vec<Record> {
            std::mem::take(&mut self.0.lock().unwrap())
        }
    }

    impl AuthObserver for Recorder {
        fn authentication(&self, attempt: &AuthnAttempt<'_>) {
            let (user, failure) = match &attempt.outcome {
                AuthnOutcome::Authenticated(user) => (Some(user.username.clone()), None),
                AuthnOutcome::Failed(reason) => (None, Some(reason.to_string())),
            };
            self.0.lock().unwrap().push(Record::Authn {
                credential: attempt.credential,
                user,
                failure,
                source: attempt.source,
            });
        }

        fn authorization(&self, decision: &AuthzDecision<'_>) {
            let own = |s: &str| s.to_owned();
            self.0.lock().unwrap().push(Record::Authz {
                user: decision.user.username.clone(),
                verb: decision.verb().to_owned(),
                resource: decision
                    .resource()
                    .map(|(g, r, s, n, name)| (own(g), own(r), own(s), own(n), own(name))),
                allowed: decision.allowed,
                reason: decision.reason.to_owned(),
            });
        }
    }

    fn get_secret(name: &str) -> Attributes {
        Attributes::resource("get", "p", "", "secrets")
            .with_name(name)
            .into()
    }

    #[tokio::test]
    async fn every_attempt_and_decision_is_one_record_and_no_record_holds_the_token() {
        let world = World::new().await;
        world.namespace("p").await;
        let uid = world.account("p", "ci").await;
        let token = world.token_secret("p", "ci-token", "ci", &uid).await;
        world
            .create(
                &ROLES,
                Some("p"),
                json!({"metadata": {"name": "reader", "namespace": "p"},
                       "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": ["visible"]}]}),
            )
            .await;
        world
            .create(
                &ROLEBINDINGS,
                Some("p"),
                json!({"metadata": {"name": "reader", "namespace": "p"},
                       "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
                       "subjects": [{"kind": "ServiceAccount", "name": "ci", "namespace": "p"}]}),
            )
            .await;
        let recorder = Arc::new(Recorder::default());
        let authn = world.authenticator(Some(recorder.clone()));
        let authz = world.authorizer(Some(recorder.clone()));
        let source: Option<IpAddr> = Some("192.0.2.7".parse().unwrap());
        let account = "system:serviceaccount:p:ci";

        let user = authn
            .authenticate(Some(&format!("Bearer {token}")), None, source)
            .unwrap();
        // One signature character changed.
        let at = token.len() - 20;
        let other = if &token[at..=at] == "A" { "B" } else { "A" };
        let forged = format!("{}{other}{}", &token[..at], &token[at + 1..]);
        assert_eq!(
            authn.authenticate(Some(&format!("Bearer {forged}")), None, source),
            Err(AuthFailure::Invalid)
        );
        assert_eq!(
            authn.authenticate(None, None, source),
            Err(AuthFailure::Missing)
        );
        assert_eq!(
            recorder.take(),
            [
                Record::Authn {
                    credential: Credential::ServiceAccountToken,
                    user: Some(account.into()),
                    failure: None,
                    source,
                },
                Record::Authn {
                    credential: Credential::ServiceAccountToken,
                    user: None,
                    failure: Some("crypto/rsa: verification error".into()),
                    source,
                },
                Record::Authn {
                    credential: Credential::None,
                    user: None,
                    failure: Some("no credentials".into()),
                    source,
                },
            ]
        );

        // Allowed twice (the second is a remembered allow), then denied.
        for _ in 0..2 {
            authz.authorize(&user, &get_secret("visible")).unwrap();
        }
        let denied = authz.authorize(&user, &get_secret("hidden")).unwrap_err();
        let read_secret = |name: &str, allowed: bool, reason: &str| Record::Authz {
            user: account.into(),
            verb: "get".into(),
            resource: Some((
                "".into(),
                "secrets".into(),
                "".into(),
                "p".into(),
                name.into(),
            )),
            allowed,
            reason: reason.into(),
        };
        let allowed = read_secret("visible", true, "");
        assert_eq!(
            recorder.take(),
            [
                allowed.clone(),
                allowed,
                read_secret("hidden", false, &denied.message),
            ]
        );
        assert_eq!(
            denied.message,
            r#"secrets "hidden" is forbidden: User "system:serviceaccount:p:ci" cannot get resource "secrets" in API group "" in the namespace "p""#
        );

        // A decision asked for directly (as the Kargo API and SubjectAccessReview do) is seen
        // with RBAC's reason.
        assert!(authz.decide(&user, &get_secret("visible")).is_allowed());
        let [Record::Authz { reason, .. }] = &recorder.take()[..] else {
            panic!("one record");
        };
        assert_eq!(
            reason,
            r#"RBAC: allowed by RoleBinding "reader/p" of Role "reader" to ServiceAccount "ci/p""#
        );

        // Logins, admin tokens and headers of no bearer token are attempts too; no record
        // holds a credential.
        let admin_token = authn
            .login(crate::testing::PASSWORD.into(), source)
            .await
            .unwrap();
        authn.authenticate_token(&admin_token, source).unwrap();
        let _ = authn
            .login("a wrong password of some length".into(), source)
            .await;
        let _ = authn.authenticate(Some("Basic dXNlcjpwYXNz"), None, source);
        let records = recorder.take();
        assert_eq!(
            records
                .iter()
                .map(|r| match r {
                    Record::Authn {
                        credential,
                        user,
                        failure,
                        ..
                    } => (*credential, user.clone(), failure.clone()),
                    other => panic!("{other:?}"),
                })
                .collect::<Vec<_>>(),
            [
                (Credential::AdminPassword, Some("admin".into()), None),
                (Credential::AdminToken, Some("admin".into()), None),
                (
                    Credential::AdminPassword,
                    None,
                    Some("invalid password".into())
                ),
                (
                    Credential::Unrecognized,
                    None,
                    Some("the Authorization header is not a bearer token".into())
                ),
            ]
        );
        let everything = format!("{records:?}");
        for secret in [
            token.as_str(),
            &forged,
            &admin_token,
            crate::testing::PASSWORD,
            "dXNlcjpwYXNz",
        ] {
            assert!(!everything.contains(secret), "a record holds {secret:?}");
        }
    }
}

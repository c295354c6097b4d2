//! Authentication: who is calling. A bearer token (the admin's HS256 JWT, or a service-account
//! token) or a client certificate signed by the server's CA becomes a [`UserInfo`]; anything else
//! is refused. Nothing here reads storage per request.
//!
//! Failures are counted per source address ([`super::limits`]): bearer tokens that fail
//! verification, and wrong admin passwords. The admin login also hashes one password at a time
//! ([`HASHING_PERMITS`]), so a flood of guesses from many addresses takes at most one core and
//! cannot starve other requests.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::admin::Admin;
use super::limits::{self, FailureLimiter, retry_after_secs};
use super::observe::{AuthObserver, AuthnAttempt, AuthnOutcome, Credential};
use super::oidc::{OidcAuthenticator, OidcError};
use super::rbac::UserInfo;
use super::tokens::TokenAuthenticator;

/// How many admin passwords are hashed at once (PBKDF2 takes tens of milliseconds of one core).
pub(crate) const HASHING_PERMITS: usize = 1;
/// How long a login waits for its turn to hash before it is answered 429.
pub(crate) const LOGIN_QUEUE_WAIT: Duration = Duration::from_secs(2);
/// What a request without a known source address is counted under (every listener sets one).
const UNKNOWN_SOURCE: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

/// The identity a verified client certificate asserts (set on each connection by the server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    /// The certificate's common name.
    pub user: String,
    /// The certificate's organizations.
    pub groups: Vec<String>,
}

/// Why a request is not authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No credentials at all.
    Missing,
    /// Credentials that are not valid.
    Invalid,
    /// A bearer token that is not valid, from an address that has failed too often (429).
    TooMany {
        /// Seconds until the address may try again.
        retry_after: u32,
    },
}

impl AuthFailure {
    /// The message of a [`AuthFailure::TooMany`] answer.
    pub fn too_many_message(retry_after: u32) -> String {
        format!(
            "too many failed authentication attempts from this address; try again in {}",
            seconds(retry_after)
        )
    }
}

/// Why an admin login failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    /// The admin account is disabled (403).
    #[error("admin user is not enabled")]
    Disabled,
    /// The password is wrong (403).
    #[error("invalid password")]
    WrongPassword,
    /// This address has given too many wrong passwords (429); the password was not checked.
    #[error(
        "too many failed login attempts from this address; try again in {}",
        seconds(*retry_after)
    )]
    TooManyFailures {
        /// Seconds until the address may try again.
        retry_after: u32,
    },
    /// Other logins are being checked and this one did not get its turn in time (429).
    #[error("too many login attempts in progress; try again in {}", seconds(*retry_after))]
    Busy {
        /// Seconds after which to try again.
        retry_after: u32,
    },
    /// The token could not be issued (500).
    #[error("internal error")]
    Internal,
}

/// `1 second`, `5 seconds`.
fn seconds(n: u32) -> String {
    if n == 1 {
        "1 second".to_owned()
    } else {
        format!("{n} seconds")
    }
}

/// The group every authenticated caller is in.
pub(crate) const AUTHENTICATED: &str = "system:authenticated";
/// The group that RBAC does not restrict.
pub const MASTERS: &str = "system:masters";
/// The admin's user name.
pub const ADMIN_USER: &str = "admin";

/// Turns credentials into a user.
pub struct Authenticator {
    admin: Arc<Admin>,
    admin_enabled: bool,
    /// The admin user, built once.
    admin_user: Arc<UserInfo>,
    observer: Option<Arc<dyn AuthObserver>>,
    tokens: Arc<TokenAuthenticator>,
    oidc: Option<Arc<OidcAuthenticator>>,
    federation: Option<Arc<crate::federation::Federation>>,
    token_failures: FailureLimiter,
    login_failures: Arc<FailureLimiter>,
    hashing: Arc<tokio::sync::Semaphore>,
}

/// The bearer token of an `Authorization` header value (scheme case-insensitive), if any.
pub fn bearer(header: Option<&str>) -> Option<&str> {
    let value = header?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

impl Authenticator {
    /// An authenticator over the admin account and the service-account token view.
    pub fn new(admin: Arc<Admin>, tokens: Arc<TokenAuthenticator>) -> Authenticator {
        Authenticator {
            admin,
            admin_enabled: true,
            admin_user: Arc::new(Authenticator::admin_user()),
            observer: None,
            tokens,
            oidc: None,
            federation: None,
            token_failures: FailureLimiter::new(limits::TOKEN_BACKOFF, limits::CAPACITY),
            login_failures: Arc::new(FailureLimiter::new(limits::LOGIN_BACKOFF, limits::CAPACITY)),
            hashing: Arc::new(tokio::sync::Semaphore::new(HASHING_PERMITS)),
        }
    }

    /// The same, with the admin account enabled or not: a disabled admin cannot log in and its
    /// tokens are refused.
    pub fn with_admin_enabled(mut self, enabled: bool) -> Authenticator {
        self.admin_enabled = enabled;
        self
    }

    /// The same, telling `observer` of every authentication attempt.
    pub fn with_observer(mut self, observer: Arc<dyn AuthObserver>) -> Authenticator {
        self.observer = Some(observer);
        self
    }

    /// The same, also accepting the ID tokens of an OpenID provider.
    pub fn with_oidc(mut self, oidc: Arc<OidcAuthenticator>) -> Authenticator {
        self.oidc = Some(oidc);
        self
    }

    /// The OpenID provider whose ID tokens are accepted, if one is configured.
    pub fn oidc(&self) -> Option<&Arc<OidcAuthenticator>> {
        self.oidc.as_ref()
    }

    /// The same authenticator, exchanging CI jobs' OIDC tokens (`POST /v1beta1/token-exchange`).
    pub fn with_federation(
        mut self,
        federation: Arc<crate::federation::Federation>,
    ) -> Authenticator {
        self.federation = Some(federation);
        self
    }

    /// Workload identity federation, when the operator allows issuers.
    pub fn federation(&self) -> Option<&Arc<crate::federation::Federation>> {
        self.federation.as_ref()
    }

    /// Whether the admin account is enabled.
    pub fn admin_enabled(&self) -> bool {
        self.admin_enabled
    }

    /// The admin account.
    pub fn admin(&self) -> &Arc<Admin> {
        &self.admin
    }

    /// The service-account token view.
    pub fn tokens(&self) -> &Arc<TokenAuthenticator> {
        &self.tokens
    }

    /// The admin user.
    pub fn admin_user() -> UserInfo {
        UserInfo {
            username: ADMIN_USER.into(),
            uid: String::new(),
            groups: vec![MASTERS.into(), AUTHENTICATED.into()],
            extra: Default::default(),
            claims: Default::default(),
            legacy_token_secret: None,
        }
    }

    /// Authenticates a bearer token sent from `source`. A token that fails is counted against
    /// its source address; past the limit the failure is [`AuthFailure::TooMany`]. A valid
    /// token is never counted nor refused, whatever its address has done.
    pub fn authenticate_token(
        &self,
        token: &str,
        source: Option<IpAddr>,
    ) -> Result<Arc<UserInfo>, AuthFailure> {
        let (credential, result) = self.token(token, source);
        self.finish(credential, source, result)
    }

    /// Authenticates a bearer token as [`Authenticator::authenticate_token`] does, except that
    /// an ID token signed with a key the OpenID provider's key set did not have waits (at most
    /// [`crate::oidc::KID_WAIT`]) for the keys fetched because of it, then is checked again, as
    /// kube-apiserver's OIDC authenticator does: a key rotation at the provider costs nobody a
    /// 401.
    pub async fn authenticate_token_waiting(
        &self,
        token: &str,
        source: Option<IpAddr>,
    ) -> Result<Arc<UserInfo>, AuthFailure> {
        let (mut credential, mut identified) = self.identify(token, source);
        if let Err(Reason::Oidc(OidcError::UnknownKid(_))) = &identified
            && let Some(oidc) = &self.oidc
            && Box::pin(oidc.wait_for_keys()).await
        {
            (credential, identified) = self.identify(token, source);
        }
        let attempt = self.counted(identified, source);
        self.finish(credential, source, attempt)
    }

    /// [`Authenticator::authenticate`], with a bearer token authenticated by
    /// [`Authenticator::authenticate_token_waiting`].
    pub async fn authenticate_waiting(
        &self,
        authorization: Option<&str>,
        peer: Option<&PeerIdentity>,
        source: Option<IpAddr>,
    ) -> Result<Arc<UserInfo>, AuthFailure> {
        match authorization.map(|header| bearer(Some(header))) {
            Some(Some(token)) => self.authenticate_token_waiting(token, source).await,
            _ => self.authenticate(authorization, peer, source),
        }
    }

    fn token(&self, token: &str, source: Option<IpAddr>) -> (Credential, Attempt) {
        let (credential, identified) = self.identify(token, source);
        (credential, self.counted(identified, source))
    }

    /// Who a bearer token sent from `source` speaks for, or why it is refused (not counted yet).
    fn identify(
        &self,
        token: &str,
        source: Option<IpAddr>,
    ) -> (Credential, Result<Arc<UserInfo>, Reason>) {
        // A person's ID token verified before: a hash and a lookup.
        if let Some(oidc) = &self.oidc
            && let Some(user) = oidc.cached(token)
        {
            return (Credential::Oidc, Ok(user));
        }
        // Service-account tokens: their verified signatures are cached, so the common case
        // costs a hash and two lookups.
        let refused = match self.tokens.authenticate_from(token, None, source) {
            Ok(authenticated) => return (authenticated.credential, Ok(authenticated.user)),
            Err(reason) => reason,
        };
        if self.admin_enabled && self.admin.verify_token(token) {
            return (Credential::AdminToken, Ok(self.admin_user.clone()));
        }
        // A token whose unverified issuer is the OpenID provider is verified as an ID token.
        if let Some(oidc) = &self.oidc
            && oidc.is_its_token(token)
        {
            return match oidc.verify(token) {
                Ok(user) => (Credential::Oidc, Ok(user)),
                Err(e) => (Credential::Oidc, Err(Reason::Oidc(e))),
            };
        }
        // A refused token is classified (by its unverified issuer) only for an observer.
        let credential = match self.observer {
            Some(_) => self.tokens.kind_of(token),
            None => Credential::Unrecognized,
        };
        let reason = match credential {
            Credential::AdminToken if !self.admin_enabled => {
                Reason::Text("admin user is not enabled")
            }
            Credential::AdminToken => {
                Reason::Text("admin token is invalid or its session has ended")
            }
            _ => Reason::Token(refused),
        };
        (credential, Err(reason))
    }

    /// Counts a refused token against its source address: 429 past the limit.
    fn counted(
        &self,
        identified: Result<Arc<UserInfo>, Reason>,
        source: Option<IpAddr>,
    ) -> Attempt {
        let reason = match identified {
            Ok(user) => return Ok(user),
            Err(reason) => reason,
        };
        let source = source.unwrap_or(UNKNOWN_SOURCE);
        let now = Instant::now();
        if let Some(wait) = self.token_failures.blocked(source, now) {
            let retry_after = retry_after_secs(wait);
            return Err(Refusal {
                failure: AuthFailure::TooMany { retry_after },
                reason: Reason::TooMany(retry_after),
            });
        }
        if let Some(block) = self.token_failures.fail(source, now) {
            tracing::warn!(%source, seconds = block.as_secs(), "too many invalid bearer tokens from this address: refusing its invalid tokens with 429");
        }
        Err(Refusal {
            failure: AuthFailure::Invalid,
            reason,
        })
    }

    /// Reports an attempt to the observer and answers it.
    fn finish(
        &self,
        credential: Credential,
        source: Option<IpAddr>,
        attempt: Attempt,
    ) -> Result<Arc<UserInfo>, AuthFailure> {
        self.report(credential, source, || match &attempt {
            Ok(user) => AuthnOutcome::Authenticated(user),
            Err(refusal) => AuthnOutcome::Failed(refusal.reason.text()),
        });
        attempt.map_err(|refusal| refusal.failure)
    }

    /// The one place the observer hears of an authentication attempt; `outcome` is only built
    /// when there is an observer.
    fn report<'a>(
        &self,
        credential: Credential,
        source: Option<IpAddr>,
        outcome: impl FnOnce() -> AuthnOutcome<'a>,
    ) {
        if let Some(observer) = &self.observer {
            observer.authentication(&AuthnAttempt {
                credential,
                outcome: outcome(),
                source,
            });
        }
    }

    /// Logs the admin in with `password` sent from `source`, returning a new admin token.
    ///
    /// An address that has given too many wrong passwords is refused before any hashing; the
    /// others wait (at most [`LOGIN_QUEUE_WAIT`]) for one of [`HASHING_PERMITS`] turns to hash.
    /// A wrong password is counted before the turn passes on, so that concurrent guesses from
    /// one address get no more tries than sequential ones.
    pub async fn login(
        &self,
        password: String,
        source: Option<IpAddr>,
    ) -> Result<String, LoginError> {
        let answer = self.check_login(password, source).await;
        self.report(Credential::AdminPassword, source, || match &answer {
            Ok(_) => AuthnOutcome::Authenticated(&self.admin_user),
            Err(e) => AuthnOutcome::Failed(Cow::Owned(e.to_string())),
        });
        answer
    }

    async fn check_login(
        &self,
        password: String,
        source: Option<IpAddr>,
    ) -> Result<String, LoginError> {
        if !self.admin_enabled {
            return Err(LoginError::Disabled);
        }
        let source = source.unwrap_or(UNKNOWN_SOURCE);
        let too_many = |wait| LoginError::TooManyFailures {
            retry_after: retry_after_secs(wait),
        };
        if let Some(wait) = self.login_failures.blocked(source, Instant::now()) {
            return Err(too_many(wait));
        }
        let permit = match tokio::time::timeout(
            LOGIN_QUEUE_WAIT,
            self.hashing.clone().acquire_owned(),
        )
        .await
        {
            Ok(Ok(permit)) => permit,
            _ => return Err(LoginError::Busy { retry_after: 1 }),
        };
        // Others from this address may have failed while this attempt waited for its turn.
        if let Some(wait) = self.login_failures.blocked(source, Instant::now()) {
            return Err(too_many(wait));
        }
        let (admin, failures) = (self.admin.clone(), self.login_failures.clone());
        // PBKDF2 is deliberately slow: off the async workers, and holding the turn until the
        // hash is done even if the client goes away.
        let verified = tokio::task::spawn_blocking(move || {
            let _turn = permit;
            let verified = admin.verify_password(&password);
            if !verified && let Some(block) = failures.fail(source, Instant::now()) {
                tracing::warn!(%source, seconds = block.as_secs(), "too many wrong admin passwords from this address: refusing its logins with 429");
            }
            verified
        })
        .await
        .map_err(|_| LoginError::Internal)?;
        if !verified {
            return Err(LoginError::WrongPassword);
        }
        self.admin.issue_token().map_err(|e| {
            tracing::error!(error = %e, "signing an admin token failed");
            LoginError::Internal
        })
    }

    /// Authenticates a request from its `Authorization` header, its connection's client
    /// certificate and its source address. A bearer token, when present, wins over the
    /// certificate (as in Kubernetes, where an invalid token fails the request even with a
    /// valid certificate).
    pub fn authenticate(
        &self,
        authorization: Option<&str>,
        peer: Option<&PeerIdentity>,
        source: Option<IpAddr>,
    ) -> Result<Arc<UserInfo>, AuthFailure> {
        let (credential, attempt) = self.credentials(authorization, peer, source);
        self.finish(credential, source, attempt)
    }

    fn credentials(
        &self,
        authorization: Option<&str>,
        peer: Option<&PeerIdentity>,
        source: Option<IpAddr>,
    ) -> (Credential, Attempt) {
        if let Some(header) = authorization {
            return match bearer(Some(header)) {
                Some(token) => self.token(token, source),
                None => (
                    Credential::Unrecognized,
                    Err(Refusal {
                        failure: AuthFailure::Invalid,
                        reason: Reason::Text("the Authorization header is not a bearer token"),
                    }),
                ),
            };
        }
        match peer {
            Some(peer) => {
                let mut groups = peer.groups.clone();
                if !groups.iter().any(|g| g == AUTHENTICATED) {
                    groups.push(AUTHENTICATED.into());
                }
                (
                    Credential::ClientCertificate,
                    Ok(Arc::new(UserInfo {
                        username: peer.user.clone(),
                        uid: String::new(),
                        groups,
                        extra: Default::default(),
                        claims: Default::default(),
                        legacy_token_secret: None,
                    })),
                )
            }
            None => (
                Credential::None,
                Err(Refusal {
                    failure: AuthFailure::Missing,
                    reason: Reason::Text("no credentials"),
                }),
            ),
        }
    }
}

/// What an attempt found, before it is reported and answered.
type Attempt = Result<Arc<UserInfo>, Refusal>;

/// A refused attempt: the answer, and the reason the observer is told.
struct Refusal {
    failure: AuthFailure,
    reason: Reason,
}

/// Why an attempt was refused, formatted only for an observer.
enum Reason {
    Text(&'static str),
    /// kube-apiserver's text for a service-account token.
    Token(String),
    TooMany(u32),
    /// Why an ID token was refused.
    Oidc(OidcError),
}

impl Reason {
    fn text(&self) -> Cow<'_, str> {
        match self {
            Reason::Text(text) => Cow::Borrowed(text),
            Reason::Token(text) => Cow::Borrowed(text),
            Reason::TooMany(retry_after) => Cow::Owned(AuthFailure::too_many_message(*retry_after)),
            Reason::Oidc(e) => Cow::Owned(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWORD: &str = "correct horse battery";

    async fn authenticator(dir: &tempfile::TempDir) -> Arc<Authenticator> {
        let store: Arc<dyn kargo_store::Store> =
            Arc::new(kargo_store::sqlite::SqliteStore::open(&dir.path().join("s.db")).unwrap());
        let (admin, _) = Admin::init(&store, Some(PASSWORD), false).await.unwrap();
        let view = super::super::view::AuthView::new(
            super::super::keys::load_or_create(&store).await.unwrap(),
        );
        let tokens = Arc::new(TokenAuthenticator::new(view, "https://kargo".into()));
        Arc::new(Authenticator::new(Arc::new(admin), tokens))
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_wrong_passwords_from_one_address_get_ten_checks_then_429_before_hashing() {
        let dir = tempfile::tempdir().unwrap();
        let authn = authenticator(&dir).await;
        let guesses: Vec<_> = (0..25)
            .map(|n| {
                let authn = authn.clone();
                tokio::spawn(async move {
                    authn
                        .login(format!("guess number {n}"), ip("192.0.2.1"))
                        .await
                })
            })
            .collect();
        let mut answers = Vec::new();
        for guess in guesses {
            answers.push(guess.await.unwrap());
        }
        let wrong = answers
            .iter()
            .filter(|a| **a == Err(LoginError::WrongPassword))
            .count();
        assert_eq!(wrong, limits::LOGIN_BACKOFF.free as usize, "{answers:?}");
        assert!(
            answers.iter().all(|a| matches!(
                a,
                Err(LoginError::WrongPassword | LoginError::TooManyFailures { .. })
            )),
            "{answers:?}"
        );
        // The right password from that address is refused too: it is not even checked.
        assert_eq!(
            authn.login(PASSWORD.into(), ip("192.0.2.1")).await,
            Err(LoginError::TooManyFailures { retry_after: 1 })
        );
        assert_eq!(
            LoginError::TooManyFailures { retry_after: 1 }.to_string(),
            "too many failed login attempts from this address; try again in 1 second"
        );
        // Another address is not affected.
        let token = authn.login(PASSWORD.into(), ip("192.0.2.2")).await.unwrap();
        assert!(authn.admin().verify_token(&token));
        // Once the block is over, the right password works from the first address.
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        assert!(authn.login(PASSWORD.into(), ip("192.0.2.1")).await.is_ok());
    }

    #[tokio::test]
    async fn a_login_that_cannot_get_its_turn_to_hash_in_time_is_told_to_come_back() {
        let dir = tempfile::tempdir().unwrap();
        let authn = authenticator(&dir).await;
        let held = authn
            .hashing
            .clone()
            .acquire_many_owned(HASHING_PERMITS as u32)
            .await
            .unwrap();
        let started = Instant::now();
        let answer = authn.login(PASSWORD.into(), ip("192.0.2.1")).await;
        assert_eq!(answer, Err(LoginError::Busy { retry_after: 1 }));
        assert!(started.elapsed() >= LOGIN_QUEUE_WAIT);
        assert_eq!(
            answer.unwrap_err().to_string(),
            "too many login attempts in progress; try again in 1 second"
        );
        drop(held);
        assert!(authn.login(PASSWORD.into(), ip("192.0.2.1")).await.is_ok());
    }

    #[tokio::test]
    async fn invalid_tokens_from_one_address_are_refused_with_429_past_the_limit_but_valid_ones_pass()
     {
        let dir = tempfile::tempdir().unwrap();
        let authn = authenticator(&dir).await;
        let attacker = ip("2001:db8::1");
        for n in 0..limits::TOKEN_BACKOFF.free {
            assert_eq!(
                authn
                    .authenticate_token(&format!("not-a-token-{n}"), attacker)
                    .err(),
                Some(AuthFailure::Invalid)
            );
        }
        assert_eq!(
            authn
                .authenticate(Some("Bearer not-a-token"), None, attacker)
                .err(),
            Some(AuthFailure::TooMany { retry_after: 1 })
        );
        // Same /64.
        assert_eq!(
            authn
                .authenticate_token("not-a-token", ip("2001:db8::2"))
                .err(),
            Some(AuthFailure::TooMany { retry_after: 1 })
        );
        let admin = authn.admin().issue_token().unwrap();
        let user = authn.authenticate_token(&admin, attacker).unwrap();
        assert_eq!(user.username, ADMIN_USER);
        assert_eq!(
            authn
                .authenticate_token("not-a-token", ip("192.0.2.9"))
                .err(),
            Some(AuthFailure::Invalid)
        );
        assert_eq!(
            AuthFailure::too_many_message(3),
            "too many failed authentication attempts from this address; try again in 3 seconds"
        );
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_needs_a_token() {
        assert_eq!(bearer(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(Some("BEARER abc")), Some("abc"));
        assert_eq!(bearer(Some("Bearer ")), None);
        assert_eq!(bearer(Some("Basic abc")), None);
        assert_eq!(bearer(None), None);
    }
}

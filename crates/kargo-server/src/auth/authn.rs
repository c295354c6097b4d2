//! Authentication: who is calling. A bearer token (the admin's HS256 JWT, or a service-account
//! token) or a client certificate signed by the server's CA becomes a [`UserInfo`]; anything else
//! is refused. Nothing here reads storage per request.

use std::sync::Arc;

use super::admin::Admin;
use super::rbac::UserInfo;
use super::tokens::TokenAuthenticator;

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
}

/// The group every authenticated caller is in.
pub const AUTHENTICATED: &str = "system:authenticated";
/// The group that RBAC does not restrict.
pub const MASTERS: &str = "system:masters";
/// The admin's user name.
pub const ADMIN_USER: &str = "admin";

/// Turns credentials into a user.
pub struct Authenticator {
    admin: Arc<Admin>,
    admin_enabled: bool,
    tokens: Arc<TokenAuthenticator>,
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
            tokens,
        }
    }

    /// The same, with the admin account enabled or not: a disabled admin cannot log in and its
    /// tokens are refused.
    pub fn with_admin_enabled(mut self, enabled: bool) -> Authenticator {
        self.admin_enabled = enabled;
        self
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
        }
    }

    /// Authenticates a bearer token.
    pub fn authenticate_token(&self, token: &str) -> Result<Arc<UserInfo>, AuthFailure> {
        // Service-account tokens first: their verified signatures are cached, so the common
        // case costs a hash and two lookups.
        if let Ok(authenticated) = self.tokens.authenticate(token, None) {
            return Ok(authenticated.user);
        }
        if self.admin_enabled && self.admin.verify_token(token) {
            return Ok(Arc::new(Authenticator::admin_user()));
        }
        Err(AuthFailure::Invalid)
    }

    /// Authenticates a request from its `Authorization` header and its connection's client
    /// certificate. A bearer token, when present, wins over the certificate (as in Kubernetes,
    /// where an invalid token fails the request even with a valid certificate).
    pub fn authenticate(
        &self,
        authorization: Option<&str>,
        peer: Option<&PeerIdentity>,
    ) -> Result<Arc<UserInfo>, AuthFailure> {
        if let Some(header) = authorization {
            return match bearer(Some(header)) {
                Some(token) => self.authenticate_token(token),
                None => Err(AuthFailure::Invalid),
            };
        }
        match peer {
            Some(peer) => {
                let mut groups = peer.groups.clone();
                if !groups.iter().any(|g| g == AUTHENTICATED) {
                    groups.push(AUTHENTICATED.into());
                }
                Ok(Arc::new(UserInfo {
                    username: peer.user.clone(),
                    uid: String::new(),
                    groups,
                    extra: Default::default(),
                }))
            }
            None => Err(AuthFailure::Missing),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

//! Credentials and the registry auth flows (basic, bearer token from a realm, identity tokens).

/// What the Engine API's `X-Registry-Auth` / `POST /auth` carry (Docker's AuthConfig).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    /// An OAuth2 refresh token a registry gave at login (`docker login` stores it instead of the
    /// password); exchanged at the token realm with `grant_type=refresh_token`.
    pub identity_token: String,
    /// A bearer token to send as is (`registrytoken`).
    pub registry_token: String,
}

impl Credentials {
    pub fn basic(username: &str, password: &str) -> Credentials {
        Credentials {
            username: username.to_string(),
            password: password.to_string(),
            ..Default::default()
        }
    }

    pub fn is_anonymous(&self) -> bool {
        self.username.is_empty() && self.identity_token.is_empty() && self.registry_token.is_empty()
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish_non_exhaustive()
    }
}

//! Who may do what: no auth, htpasswd basic auth, or bearer tokens from the server's own token
//! service (`/token`, see token.rs). Every authenticated user may do everything; anonymous
//! users of a token server get tokens with no access.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::http::{header, HeaderMap, StatusCode};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use crate::error::{ApiError, Code, RegistryError};
use crate::token::{Claims, ResourceActions, TokenSigner, SERVICE};

pub const BASIC_REALM: &str = "berth-registry";

/// Users from an Apache htpasswd file (bcrypt entries only, as distribution).
pub struct Htpasswd {
    users: HashMap<String, String>,
    /// sha256(user, password, hash) of credentials that passed bcrypt once: docker sends them
    /// on every request and a bcrypt check costs milliseconds of CPU.
    verified: Mutex<HashSet<[u8; 32]>>,
}

impl Htpasswd {
    pub fn load(path: &Path) -> Result<Htpasswd, RegistryError> {
        let text = std::fs::read_to_string(path).map_err(|e| RegistryError::file(path, e))?;
        let mut users = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((user, hash)) = line.split_once(':') else {
                tracing::warn!(
                    "{}:{}: not a user:hash line, ignored",
                    path.display(),
                    i + 1
                );
                continue;
            };
            if !["$2y$", "$2a$", "$2b$"].iter().any(|p| hash.starts_with(p)) {
                tracing::warn!(
                    "{}:{}: {user}'s password is not bcrypt-hashed (htpasswd -B), ignored",
                    path.display(),
                    i + 1
                );
                continue;
            }
            users.insert(user.to_string(), hash.to_string());
        }
        if users.is_empty() {
            return Err(RegistryError::Config(format!(
                "{}: no bcrypt users (make them with `htpasswd -B`)",
                path.display()
            )));
        }
        Ok(Htpasswd {
            users,
            verified: Mutex::new(HashSet::new()),
        })
    }

    pub fn has_user(&self, user: &str) -> bool {
        self.users.contains_key(user)
    }

    pub async fn verify(self: &Arc<Self>, user: &str, password: &str) -> bool {
        let Some(hash) = self.users.get(user).cloned() else {
            return false;
        };
        let key: [u8; 32] = Sha256::new()
            .chain_update(user.as_bytes())
            .chain_update([0])
            .chain_update(password.as_bytes())
            .chain_update([0])
            .chain_update(hash.as_bytes())
            .finalize()
            .into();
        if self.cache().contains(&key) {
            return true;
        }
        let password = password.to_string();
        let ok = tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(false);
        if ok {
            self.cache().insert(key);
        }
        ok
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashSet<[u8; 32]>> {
        self.verified.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub enum Auth {
    Open,
    Basic(Arc<Htpasswd>),
    Token(Arc<TokenSigner>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Pull,
    Push,
    Delete,
}

/// What a request needs.
#[derive(Debug, Clone)]
pub enum Need {
    /// `GET /v2/`: any authenticated client.
    Base,
    Catalog,
    Repo(String, Action),
}

impl Need {
    /// The scope a bearer challenge asks for.
    fn scope(&self) -> Option<String> {
        match self {
            Need::Base => None,
            Need::Catalog => Some("registry:catalog:*".to_string()),
            Need::Repo(name, Action::Pull) => Some(format!("repository:{name}:pull")),
            Need::Repo(name, Action::Push) => Some(format!("repository:{name}:pull,push")),
            Need::Repo(name, Action::Delete) => Some(format!("repository:{name}:delete")),
        }
    }
}

/// What an authorized request was granted (a mount also asks about its source repository).
pub enum Grant {
    All,
    Token(Vec<ResourceActions>),
}

impl Grant {
    pub fn allows(&self, need: &Need) -> bool {
        match self {
            Grant::All => true,
            Grant::Token(access) => token_allows(access, need),
        }
    }
}

fn token_allows(access: &[ResourceActions], need: &Need) -> bool {
    let has = |kind: &str, name: &str, actions: &[&str]| {
        access.iter().any(|a| {
            a.kind == kind
                && a.name == name
                && a.actions
                    .iter()
                    .any(|x| x == "*" || actions.contains(&x.as_str()))
        })
    };
    match need {
        Need::Base => true,
        Need::Catalog => has("registry", "catalog", &["*"]),
        Need::Repo(name, Action::Pull) => has("repository", name, &["pull"]),
        Need::Repo(name, Action::Push) => has("repository", name, &["push"]),
        Need::Repo(name, Action::Delete) => has("repository", name, &["delete", "push"]),
    }
}

/// `Authorization: Basic …` credentials.
pub fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(rest.trim()).ok()?).ok()?;
    let (user, pass) = decoded.split_once(':')?;
    Some((user.to_string(), pass.to_string()))
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl Auth {
    /// Checks a request's credentials against what it needs. `realm` is the token service's
    /// URL for bearer challenges.
    pub async fn authorize(
        &self,
        headers: &HeaderMap,
        need: &Need,
        realm: &str,
    ) -> Result<Grant, ApiError> {
        match self {
            Auth::Open => Ok(Grant::All),
            Auth::Basic(users) => {
                let ok = match basic_credentials(headers) {
                    Some((u, p)) => users.verify(&u, &p).await,
                    None => false,
                };
                if ok {
                    Ok(Grant::All)
                } else {
                    Err(ApiError::new(Code::Unauthorized).with_header(
                        header::WWW_AUTHENTICATE,
                        &format!("Basic realm=\"{BASIC_REALM}\""),
                    ))
                }
            }
            Auth::Token(signer) => {
                let claims = bearer_token(headers).and_then(|t| signer.verify(t, now()));
                match claims {
                    Some(c) if !c.is_refresh() => {
                        if token_allows(&c.access, need) {
                            Ok(Grant::Token(c.access))
                        } else {
                            Err(ApiError::new(Code::Denied)
                                .with_status(StatusCode::UNAUTHORIZED)
                                .with_header(
                                    header::WWW_AUTHENTICATE,
                                    &bearer_challenge(realm, need, true),
                                ))
                        }
                    }
                    _ => Err(ApiError::new(Code::Unauthorized).with_header(
                        header::WWW_AUTHENTICATE,
                        &bearer_challenge(realm, need, false),
                    )),
                }
            }
        }
    }
}

fn bearer_challenge(realm: &str, need: &Need, insufficient: bool) -> String {
    let mut c = format!("Bearer realm=\"{realm}\",service=\"{SERVICE}\"");
    if let Some(scope) = need.scope() {
        c.push_str(&format!(",scope=\"{scope}\""));
    }
    if insufficient {
        c.push_str(",error=\"insufficient_scope\"");
    }
    c
}

/// The token service's answer (`GET`/`POST /token`).
#[derive(Debug, serde::Serialize)]
pub struct TokenResponse {
    pub token: String,
    pub access_token: String,
    pub expires_in: i64,
    pub issued_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

/// A failed token request: 401 with the `details` docker prints ("unauthorized: …") and the
/// OAuth2 `error` fields.
#[derive(Debug)]
pub struct TokenError(pub StatusCode, pub &'static str, pub String);

impl axum::response::IntoResponse for TokenError {
    fn into_response(self) -> axum::response::Response {
        let body = serde_json::json!({
            "error": self.1,
            "error_description": self.2,
            "details": self.2,
        });
        (self.0, axum::Json(body)).into_response()
    }
}

/// Issues tokens: the password (or refresh token) decides who asks; the requested scopes are
/// granted in full to users of the htpasswd file and not at all to anonymous clients.
pub struct TokenService {
    pub users: Arc<Htpasswd>,
    pub signer: Arc<TokenSigner>,
}

pub enum Who {
    Anonymous,
    User(String),
}

impl TokenService {
    pub async fn password(&self, user: &str, password: &str) -> Result<Who, TokenError> {
        if self.users.verify(user, password).await {
            Ok(Who::User(user.to_string()))
        } else {
            Err(TokenError(
                StatusCode::UNAUTHORIZED,
                "invalid_grant",
                "incorrect username or password".to_string(),
            ))
        }
    }

    pub fn refresh(&self, token: &str) -> Result<Who, TokenError> {
        match self.signer.verify(token, now()) {
            Some(c) if c.is_refresh() && self.users.has_user(&c.sub) => Ok(Who::User(c.sub)),
            _ => Err(TokenError(
                StatusCode::UNAUTHORIZED,
                "invalid_grant",
                "invalid or expired refresh token".to_string(),
            )),
        }
    }

    pub fn issue(&self, who: &Who, scopes: &[String], with_refresh: bool) -> TokenResponse {
        let now = now();
        let (sub, access) = match who {
            Who::Anonymous => (String::new(), Vec::new()),
            Who::User(u) => (u.clone(), grant(scopes)),
        };
        let token = self.signer.sign(&Claims::new(
            &sub,
            access,
            crate::token::ACCESS_TOKEN_SECONDS,
            now,
        ));
        let refresh_token = match who {
            Who::User(u) if with_refresh => {
                let mut c = Claims::new(u, Vec::new(), crate::token::REFRESH_TOKEN_SECONDS, now);
                c.typ = Some("refresh".to_string());
                Some(self.signer.sign(&c))
            }
            _ => None,
        };
        let issued_at = chrono::DateTime::from_timestamp(now, 0)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        TokenResponse {
            access_token: token.clone(),
            token,
            expires_in: crate::token::ACCESS_TOKEN_SECONDS,
            issued_at,
            refresh_token,
        }
    }
}

/// Every well-formed scope asked for, merged per resource.
fn grant(scopes: &[String]) -> Vec<ResourceActions> {
    let mut out: Vec<ResourceActions> = Vec::new();
    for s in scopes.iter().flat_map(|s| s.split(' ')) {
        let Some(ra) = ResourceActions::parse_scope(s) else {
            continue;
        };
        match out
            .iter_mut()
            .find(|x| x.kind == ra.kind && x.name == ra.name)
        {
            Some(x) => {
                x.actions.extend(ra.actions);
                x.actions.sort();
                x.actions.dedup();
            }
            None => out.push(ra),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_and_needs() {
        let access = grant(&[
            "repository:a:pull".to_string(),
            "repository:a:push repository:b:delete registry:catalog:*".to_string(),
        ]);
        assert_eq!(access.len(), 3);
        let g = Grant::Token(access);
        assert!(g.allows(&Need::Repo("a".into(), Action::Pull)));
        assert!(g.allows(&Need::Repo("a".into(), Action::Push)));
        assert!(g.allows(&Need::Repo("a".into(), Action::Delete)));
        assert!(g.allows(&Need::Repo("b".into(), Action::Delete)));
        assert!(!g.allows(&Need::Repo("b".into(), Action::Pull)));
        assert!(g.allows(&Need::Catalog));
        assert!(!Grant::Token(vec![]).allows(&Need::Catalog));
        assert!(Grant::Token(vec![]).allows(&Need::Base));
    }

    #[test]
    fn basic_header() {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, "Basic dTpzZWNyZXQ=".parse().unwrap());
        assert_eq!(basic_credentials(&h), Some(("u".into(), "secret".into())));
        h.insert(header::AUTHORIZATION, "Basic !!!".parse().unwrap());
        assert_eq!(basic_credentials(&h), None);
    }
}

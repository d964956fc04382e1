//! The registry's own tokens: JWTs signed with HMAC-SHA256 (`alg: HS256`) under a key kept in
//! `<root>/token.key`, so that tokens and the refresh ("identity") tokens `docker login` stores
//! outlive a restart. Claims follow distribution's token spec: `iss`, `sub`, `aud`, `exp`,
//! `nbf`, `iat`, `jti`, `access: [{type, name, actions}]`; a refresh token has `typ: refresh`
//! and no access.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::hmac;
use serde::{Deserialize, Serialize};

use crate::error::RegistryError;
use crate::names::valid_name;

pub const SERVICE: &str = "berth-registry";
pub const ACCESS_TOKEN_SECONDS: i64 = 300;
pub const REFRESH_TOKEN_SECONDS: i64 = 30 * 24 * 3600;
const KEY_BYTES: usize = 32;
const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// One granted (or requested) resource: `repository:<name>:<actions>`,
/// `registry:catalog:*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceActions {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

const ACTIONS: &[&str] = &["pull", "push", "delete", "*"];

impl ResourceActions {
    /// Parses one scope (`repository:library/busybox:pull,push`); unknown types, invalid names
    /// and unknown actions are dropped (never granted).
    pub fn parse_scope(scope: &str) -> Option<ResourceActions> {
        let (kind, rest) = scope.split_once(':')?;
        let (name, actions) = rest.rsplit_once(':')?;
        let valid = match kind {
            "repository" => valid_name(name),
            "registry" => name == "catalog",
            _ => false,
        };
        if !valid {
            return None;
        }
        let mut acts: Vec<String> = actions
            .split(',')
            .filter(|a| ACTIONS.contains(a))
            .map(str::to_string)
            .collect();
        acts.sort();
        acts.dedup();
        Some(ResourceActions {
            kind: kind.to_string(),
            name: name.to_string(),
            actions: acts,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub nbf: i64,
    pub iat: i64,
    pub jti: String,
    #[serde(default)]
    pub access: Vec<ResourceActions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
}

impl Claims {
    pub fn new(sub: &str, access: Vec<ResourceActions>, lifetime: i64, now: i64) -> Claims {
        Claims {
            iss: SERVICE.to_string(),
            sub: sub.to_string(),
            aud: SERVICE.to_string(),
            exp: now + lifetime,
            nbf: now - 1,
            iat: now,
            jti: hex::encode(rand::random::<[u8; 12]>()),
            access,
            typ: None,
        }
    }

    pub fn is_refresh(&self) -> bool {
        self.typ.as_deref() == Some("refresh")
    }
}

pub struct TokenSigner {
    key: hmac::Key,
}

impl TokenSigner {
    /// The key in `<root>/token.key`, made (0600, random) on first start.
    pub fn load_or_create(root: &Path) -> Result<TokenSigner, RegistryError> {
        let path = root.join("token.key");
        let key = match fs::read(&path) {
            Ok(k) if k.len() == KEY_BYTES => k,
            Ok(_) => {
                return Err(RegistryError::Config(format!(
                    "{}: not a token key ({KEY_BYTES} bytes); remove it to make a new one",
                    path.display()
                )))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let k: [u8; KEY_BYTES] = rand::random();
                write_key(root, &path, &k)?;
                k.to_vec()
            }
            Err(e) => return Err(RegistryError::file(&path, e)),
        };
        Ok(TokenSigner::from_key(&key))
    }

    pub fn from_key(key: &[u8]) -> TokenSigner {
        TokenSigner {
            key: hmac::Key::new(hmac::HMAC_SHA256, key),
        }
    }

    pub fn sign(&self, claims: &Claims) -> String {
        // Serializing plain strings and integers cannot fail.
        let payload = serde_json::to_vec(claims).unwrap_or_default();
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(HEADER),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let sig = hmac::sign(&self.key, signing_input.as_bytes());
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }

    /// The claims of a token this server signed that is valid at `now`.
    pub fn verify(&self, token: &str, now: i64) -> Option<Claims> {
        let (signing_input, sig) = token.rsplit_once('.')?;
        let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
        hmac::verify(&self.key, signing_input.as_bytes(), &sig).ok()?;
        let (header, payload) = signing_input.split_once('.')?;
        if URL_SAFE_NO_PAD.decode(header).ok()? != HEADER.as_bytes() {
            return None;
        }
        let claims: Claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        (claims.aud == SERVICE && claims.iss == SERVICE && claims.nbf <= now && now < claims.exp)
            .then_some(claims)
    }
}

/// Written to a temp file and renamed, so a crash never leaves a short key behind.
fn write_key(root: &Path, path: &Path, key: &[u8]) -> Result<(), RegistryError> {
    let tmp = root.join(".token.key.tmp");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| RegistryError::file(&tmp, e))?;
    f.write_all(key)
        .and_then(|_| f.sync_all())
        .map_err(|e| RegistryError::file(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| RegistryError::file(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_expire_tamper() {
        let s = TokenSigner::from_key(&[7u8; 32]);
        let access = vec![ResourceActions::parse_scope("repository:a/b:pull,push,bogus").unwrap()];
        assert_eq!(access[0].actions, vec!["pull", "push"]);
        let c = Claims::new("u", access, 300, 1000);
        let t = s.sign(&c);
        assert_eq!(s.verify(&t, 1000), Some(c.clone()));
        assert_eq!(s.verify(&t, 1300), None, "expired");
        let other = TokenSigner::from_key(&[8u8; 32]);
        assert_eq!(other.verify(&t, 1000), None, "other key");
        let mut parts: Vec<&str> = t.split('.').collect();
        let forged = URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&Claims::new("admin", vec![], 300, 1000)).unwrap());
        parts[1] = &forged;
        assert_eq!(s.verify(&parts.join("."), 1000), None, "forged payload");
        assert_eq!(s.verify("garbage", 1000), None);
    }

    #[test]
    fn scopes() {
        assert!(ResourceActions::parse_scope("repository:../x:pull").is_none());
        assert!(ResourceActions::parse_scope("registry:other:*").is_none());
        assert!(ResourceActions::parse_scope("nope").is_none());
        let c = ResourceActions::parse_scope("registry:catalog:*").unwrap();
        assert_eq!(c.actions, vec!["*"]);
    }

    #[test]
    fn key_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let a = TokenSigner::load_or_create(dir.path()).unwrap();
        let t = a.sign(&Claims::new("u", vec![], 300, 1000));
        let b = TokenSigner::load_or_create(dir.path()).unwrap();
        assert!(b.verify(&t, 1000).is_some());
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(dir.path().join("token.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

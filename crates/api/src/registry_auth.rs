//! Registry credentials as clients send them: `X-Registry-Auth` (pull, push, distribution
//! inspect), `X-Registry-Config` (build) and the body of `POST /auth` — Docker's AuthConfig.

use crate::error::{ApiError, ApiResult};
use axum::http::HeaderMap;
use base64::Engine as _;
use berth_engine::registry::RegistryAuths;
use berth_engine::registry::{auth, Credentials};
use std::collections::HashMap;

pub const AUTH_HEADER: &str = "X-Registry-Auth";
pub const CONFIG_HEADER: &str = "X-Registry-Config";

/// Base64 as clients write it: standard or URL-safe alphabet, padded or not.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
    use base64::engine::DecodePaddingMode;
    let cfg = GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let url_safe = s.contains(['-', '_']);
    let alphabet = if url_safe {
        &base64::alphabet::URL_SAFE
    } else {
        &base64::alphabet::STANDARD
    };
    GeneralPurpose::new(alphabet, cfg).decode(s.trim()).ok()
}

/// Docker's AuthConfig. Go's JSON decoder matches keys case-insensitively, so clients send
/// both `username` and `Username`.
#[derive(Default, serde::Deserialize)]
pub struct AuthConfig {
    #[serde(default, alias = "Username")]
    pub username: String,
    #[serde(default, alias = "Password")]
    pub password: String,
    /// base64 of `user:password` (what config.json stores).
    #[serde(default, alias = "Auth")]
    pub auth: String,
    #[serde(default, alias = "ServerAddress", alias = "serverAddress")]
    pub serveraddress: String,
    #[serde(default, alias = "IdentityToken", alias = "identityToken")]
    pub identitytoken: String,
    #[serde(default, alias = "RegistryToken", alias = "registryToken")]
    pub registrytoken: String,
}

impl AuthConfig {
    pub fn credentials(&self) -> Credentials {
        let (mut username, mut password) = (self.username.clone(), self.password.clone());
        if username.is_empty() && !self.auth.is_empty() {
            if let Some(pair) = base64_decode(&self.auth).and_then(|b| String::from_utf8(b).ok()) {
                if let Some((u, p)) = pair.split_once(':') {
                    (username, password) = (u.to_string(), p.to_string());
                }
            }
        }
        Credentials {
            username,
            password,
            identity_token: self.identitytoken.clone(),
            registry_token: self.registrytoken.clone(),
        }
    }
}

/// `X-Registry-Auth`: absent, empty or `{}` is anonymous; anything undecodable is a 400.
pub fn registry_auth(headers: &HeaderMap) -> ApiResult<Credentials> {
    let invalid = || {
        ApiError::bad_request(format!(
            "invalid {AUTH_HEADER} header: must be a valid base64url-encoded string"
        ))
    };
    let Some(raw) = headers.get(AUTH_HEADER) else {
        return Ok(Credentials::default());
    };
    let raw = raw.to_str().map_err(|_| invalid())?.trim();
    if raw.is_empty() || raw == "{}" {
        return Ok(Credentials::default());
    }
    let json = base64_decode(raw).ok_or_else(invalid)?;
    if json.iter().all(u8::is_ascii_whitespace) {
        return Ok(Credentials::default());
    }
    let cfg: AuthConfig = serde_json::from_slice(&json).map_err(|_| invalid())?;
    Ok(cfg.credentials())
}

/// `X-Registry-Config`: credentials per registry for a build's pulls. Like dockerd, an
/// undecodable value means no credentials rather than a failed build.
pub fn registry_config(headers: &HeaderMap) -> RegistryAuths {
    let mut out = RegistryAuths::default();
    let Some(json) = headers
        .get(CONFIG_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(base64_decode)
    else {
        return out;
    };
    let Ok(map) = serde_json::from_slice::<HashMap<String, AuthConfig>>(&json) else {
        return out;
    };
    for (server, cfg) in map {
        // The key names the registry; serveraddress may repeat it.
        let key = if server.is_empty() {
            cfg.serveraddress.clone()
        } else {
            server
        };
        out.insert(&key, cfg.credentials());
    }
    out
}

/// The server a `POST /auth` body names (Docker Hub when none).
pub fn login_target(cfg: &AuthConfig) -> String {
    auth::login_server(&cfg.serveraddress)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};

    fn headers(name: &str, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
        h
    }

    #[test]
    fn auth_header_in_every_encoding() {
        // '?' and '>' make the encodings differ between the two alphabets.
        let json = r#"{"username":"u","password":"p?>>","serveraddress":"127.0.0.1:5000"}"#;
        for enc in [
            URL_SAFE.encode(json),
            URL_SAFE_NO_PAD.encode(json),
            STANDARD.encode(json),
        ] {
            let c = registry_auth(&headers(AUTH_HEADER, &enc)).unwrap();
            assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "p?>>"));
        }
        for anon in ["", "{}", &URL_SAFE.encode("{}"), &URL_SAFE.encode(" ")] {
            assert!(registry_auth(&headers(AUTH_HEADER, anon))
                .unwrap()
                .is_anonymous());
        }
        assert!(registry_auth(&HeaderMap::new()).unwrap().is_anonymous());
        let c = registry_auth(&headers(
            AUTH_HEADER,
            &URL_SAFE.encode(format!(r#"{{"auth":"{}"}}"#, STANDARD.encode("v:w:x"))),
        ))
        .unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("v", "w:x"));
        let c = registry_auth(&headers(
            AUTH_HEADER,
            &URL_SAFE.encode(r#"{"Username":"U","IdentityToken":"tok","registrytoken":"rt"}"#),
        ))
        .unwrap();
        assert_eq!(
            (
                c.username.as_str(),
                c.identity_token.as_str(),
                c.registry_token.as_str()
            ),
            ("U", "tok", "rt")
        );
    }

    #[test]
    fn corrupt_auth_header_is_a_400() {
        for bad in ["%%%", &URL_SAFE.encode("not json")] {
            let e = registry_auth(&headers(AUTH_HEADER, bad)).unwrap_err();
            assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST);
            assert_eq!(
                e.message,
                "invalid X-Registry-Auth header: must be a valid base64url-encoded string"
            );
        }
    }

    #[test]
    fn registry_config_keys() {
        let json = r#"{"https://index.docker.io/v1/":{"username":"hub","password":"a"},
                       "127.0.0.1:5000":{"username":"loc","password":"b"}}"#;
        let a = registry_config(&headers(CONFIG_HEADER, &URL_SAFE.encode(json)));
        assert_eq!(a.for_domain("docker.io").username, "hub");
        assert_eq!(a.for_domain("127.0.0.1:5000").username, "loc");
        assert!(registry_config(&headers(CONFIG_HEADER, "%%")).is_empty());
    }
}

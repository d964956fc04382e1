//! Credentials by registry (`X-Registry-Config` of `POST /build`) and `POST /auth`.

use super::registry_error;
use crate::error::Result;
use crate::Engine;
use berth_distribution::{Credentials, DOCKER_HUB_DOMAIN, DOCKER_HUB_INDEX};
use std::collections::HashMap;

/// Credentials per registry domain, whatever form the client keyed them by
/// (`https://index.docker.io/v1/`, `host:port`, `https://host:port/`).
#[derive(Clone, Default, Debug)]
pub struct RegistryAuths {
    by_domain: HashMap<String, Credentials>,
}

/// The registry domain a server address names, as references name it.
pub fn server_domain(server: &str) -> String {
    let s = server.trim();
    let s = s
        .split_once("://")
        .map(|(_, rest)| rest)
        .unwrap_or(s)
        .split('/')
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    match s.as_str() {
        "" | "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            DOCKER_HUB_DOMAIN.to_string()
        }
        _ => s,
    }
}

/// The address `POST /auth` checks: Docker Hub's index when none is given.
pub fn login_server(server: &str) -> String {
    if server.trim().is_empty() {
        DOCKER_HUB_INDEX.to_string()
    } else {
        server.trim().to_string()
    }
}

impl RegistryAuths {
    pub fn insert(&mut self, server: &str, creds: Credentials) {
        self.by_domain.insert(server_domain(server), creds);
    }

    /// The credentials for `domain`, anonymous when none were given.
    pub fn for_domain(&self, domain: &str) -> Credentials {
        self.by_domain
            .get(&domain.to_ascii_lowercase())
            .cloned()
            .unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.by_domain.is_empty()
    }
}

impl Engine {
    /// `POST /auth`: checks the credentials against the registry; the identity token it
    /// issued, if any. A refusal is a 401 with the registry client's message.
    pub async fn login(&self, server: &str, creds: &Credentials) -> Result<Option<String>> {
        let server = login_server(server);
        self.registry
            .login(&server, creds)
            .await
            .map_err(registry_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_to_domains() {
        assert_eq!(server_domain("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(server_domain("docker.io"), "docker.io");
        assert_eq!(server_domain("127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(
            server_domain("https://Reg.example:5000/"),
            "reg.example:5000"
        );
        let mut a = RegistryAuths::default();
        a.insert("https://index.docker.io/v1/", Credentials::basic("u", "p"));
        a.insert("http://127.0.0.1:5000", Credentials::basic("v", "q"));
        assert_eq!(a.for_domain("docker.io").username, "u");
        assert_eq!(a.for_domain("127.0.0.1:5000").username, "v");
        assert!(a.for_domain("other:1").is_anonymous());
        assert_eq!(login_server(""), DOCKER_HUB_INDEX);
    }
}

//! Registries: pull and push (Docker's progress stream, parallel transfers, digests verified
//! while streaming), `POST /auth`, `GET /distribution/{name}/json`, and how the daemon reaches
//! registries (dockerd's `--insecure-registry`, `--registry-mirror`, transfer limits). The
//! protocol itself is `berth-distribution`'s.

pub mod auth;
mod compress;
mod download;
mod inspect;
mod leases;
pub mod platform;
pub mod progress;
mod pull;
mod push;

pub use auth::RegistryAuths;
pub use berth_distribution::Credentials;
pub use inspect::DistributionInspect;
pub use progress::{JsonMessage, ProgressSink};
pub use pull::PullRequest;
pub use push::PushRequest;

use crate::error::{EngineError, Result};
use berth_distribution::{Client, DistributionError, RegistryConfig};
use bollard_stubs::models::{IndexInfo, RegistryServiceConfig};
use std::collections::HashMap;

pub(crate) use leases::Leases;

/// dockerd's registry flags.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// `--insecure-registry`: CIDRs or `host[:port]`.
    pub insecure: Vec<String>,
    /// `--registry-mirror`: URLs tried before Docker Hub for its pulls.
    pub mirrors: Vec<String>,
    /// `--max-concurrent-downloads` (dockerd's default 3).
    pub max_concurrent_downloads: usize,
    /// `--max-concurrent-uploads` (dockerd's default 5).
    pub max_concurrent_uploads: usize,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            insecure: Vec::new(),
            mirrors: Vec::new(),
            max_concurrent_downloads: 3,
            max_concurrent_uploads: 5,
        }
    }
}

/// Always insecure, as in dockerd (appended after the user's entries).
const LOOPBACK_CIDRS: [&str; 2] = ["::1/128", "127.0.0.0/8"];

/// One `--insecure-registry` value: a CIDR or `host[:port]` (an `http://` or `https://`
/// prefix is dropped, as dockerd does with a warning).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Insecure {
    Cidr(ipnet::IpNet),
    Host(String),
}

fn parse_insecure(raw: &str) -> Result<Insecure> {
    let lower = raw.to_ascii_lowercase();
    let r = if lower.starts_with("http://") || lower.starts_with("https://") {
        tracing::warn!("insecure registry {raw} should not contain 'http://' or 'https://'");
        &raw[raw.find("://").map(|i| i + 3).unwrap_or(0)..]
    } else {
        raw
    };
    let r = r.trim_end_matches('/');
    if let Ok(net) = r.parse::<ipnet::IpNet>() {
        return Ok(Insecure::Cidr(net.trunc()));
    }
    let bad = || EngineError::InvalidArgument(format!("insecure registry {raw} is not valid"));
    if r.is_empty() || r.contains(['/', ' ', '@']) {
        return Err(bad());
    }
    if let Some((_, port)) = r.rsplit_once(':').filter(|_| !r.ends_with(']')) {
        if port.parse::<u16>().is_err() {
            return Err(bad());
        }
    }
    Ok(Insecure::Host(r.to_string()))
}

/// dockerd's ValidateMirror: an http(s) URL with nothing after the host, kept as
/// `scheme://host[:port]/`.
fn normalize_mirror(raw: &str) -> Result<String> {
    let bad = |why: &str| EngineError::InvalidArgument(format!("invalid mirror: {why}: {raw}"));
    let u = url::Url::parse(raw).map_err(|_| bad("unsupported scheme"))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(bad(&format!("unsupported scheme {:?}", u.scheme())));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(bad("username/password not allowed in URI"));
    }
    if u.query().is_some() || u.fragment().is_some() {
        return Err(bad("query or fragment not allowed"));
    }
    if !matches!(u.path(), "" | "/") {
        return Err(bad("path not allowed"));
    }
    let host = u.host_str().ok_or_else(|| bad("no host"))?;
    Ok(match u.port() {
        Some(p) => format!("{}://{host}:{p}/", u.scheme()),
        None => format!("{}://{host}/", u.scheme()),
    })
}

impl RegistryOptions {
    /// Checks the flags and builds the registry client's settings.
    pub fn client_config(&self) -> Result<RegistryConfig> {
        for i in &self.insecure {
            parse_insecure(i)?;
        }
        let mirrors = self
            .mirrors
            .iter()
            .map(|m| normalize_mirror(m))
            .collect::<Result<Vec<_>>>()?;
        if self.max_concurrent_downloads == 0 || self.max_concurrent_uploads == 0 {
            return Err(EngineError::InvalidArgument(
                "max-concurrent-downloads and max-concurrent-uploads must be at least 1".into(),
            ));
        }
        Ok(RegistryConfig {
            insecure: self.insecure.clone(),
            mirrors,
            ..RegistryConfig::default()
        })
    }

    pub fn client(&self) -> Result<Client> {
        Client::new(self.client_config()?).map_err(|e| EngineError::InvalidArgument(e.to_string()))
    }

    /// `GET /info`'s `RegistryConfig`, as dockerd fills it.
    pub fn service_config(&self) -> RegistryServiceConfig {
        let mirrors: Vec<String> = self
            .mirrors
            .iter()
            .filter_map(|m| normalize_mirror(m).ok())
            .collect();
        let mut cidrs: Vec<String> = Vec::new();
        let mut index: HashMap<String, IndexInfo> = HashMap::new();
        let all = self
            .insecure
            .iter()
            .map(String::as_str)
            .chain(LOOPBACK_CIDRS);
        for raw in all {
            match parse_insecure(raw) {
                Ok(Insecure::Cidr(net)) => {
                    let s = net.to_string();
                    if !cidrs.contains(&s) {
                        cidrs.push(s);
                    }
                }
                Ok(Insecure::Host(h)) => {
                    index.insert(
                        h.clone(),
                        IndexInfo {
                            name: Some(h),
                            mirrors: Some(Vec::new()),
                            secure: Some(false),
                            official: Some(false),
                        },
                    );
                }
                Err(_) => {}
            }
        }
        index.insert(
            berth_distribution::DOCKER_HUB_DOMAIN.into(),
            IndexInfo {
                name: Some(berth_distribution::DOCKER_HUB_DOMAIN.into()),
                mirrors: Some(mirrors.clone()),
                secure: Some(true),
                official: Some(true),
            },
        );
        RegistryServiceConfig {
            insecure_registry_cidrs: Some(cidrs),
            index_configs: Some(index),
            mirrors: Some(mirrors),
        }
    }
}

/// An error from the registry outside the pull's own wording (push, login, inspect): 401 for
/// credentials, 404 for what does not exist, 500 for the rest (dockerd's Unknown).
pub(crate) fn registry_error(e: DistributionError) -> EngineError {
    if e.is_auth() {
        EngineError::Unauthorized(e.to_string())
    } else if e.is_not_found() {
        EngineError::NotFound(e.to_string())
    } else {
        EngineError::Internal(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_validate_and_normalise() {
        assert_eq!(
            normalize_mirror("https://mirror.example:5000").unwrap(),
            "https://mirror.example:5000/"
        );
        assert_eq!(
            normalize_mirror("http://m.example/").unwrap(),
            "http://m.example/"
        );
        for bad in [
            "ftp://m",
            "https://m/path",
            "https://u:p@m",
            "m.example",
            "https://m/?q",
        ] {
            assert!(normalize_mirror(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_insecure("10.1.2.3/8").unwrap(),
            Insecure::Cidr("10.0.0.0/8".parse().unwrap())
        );
        assert_eq!(
            parse_insecure("http://myreg:5000").unwrap(),
            Insecure::Host("myreg:5000".into())
        );
        assert!(parse_insecure("myreg:port").is_err());
        assert!(parse_insecure("a b").is_err());
    }

    #[test]
    fn info_shows_what_dockerd_shows() {
        let o = RegistryOptions {
            insecure: vec!["myreg:5000".into(), "10.0.0.0/8".into()],
            mirrors: vec!["https://mirror.example".into()],
            ..Default::default()
        };
        let c = o.service_config();
        assert_eq!(
            c.insecure_registry_cidrs.unwrap(),
            vec!["10.0.0.0/8", "::1/128", "127.0.0.0/8"]
        );
        let idx = c.index_configs.unwrap();
        assert_eq!(idx["myreg:5000"].secure, Some(false));
        assert_eq!(
            idx["docker.io"].mirrors.as_deref(),
            Some(&["https://mirror.example/".to_string()][..])
        );
        assert_eq!(c.mirrors.unwrap(), vec!["https://mirror.example/"]);
        let d = RegistryOptions::default().service_config();
        assert_eq!(
            d.insecure_registry_cidrs.unwrap(),
            vec!["::1/128", "127.0.0.0/8"]
        );
        assert_eq!(d.index_configs.unwrap().len(), 1);
    }
}

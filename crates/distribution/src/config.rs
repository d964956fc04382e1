//! How to reach registries: dockerd's `--insecure-registry`, `--registry-mirror` and
//! `/etc/docker/certs.d/<host[:port]>/{*.crt, *.cert, *.key}`.

use std::path::PathBuf;
use std::time::Duration;

pub const DEFAULT_CERTS_DIR: &str = "/etc/docker/certs.d";

#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// `--insecure-registry` values: CIDRs (`10.0.0.0/8`) or `host[:port]`. 127.0.0.0/8 and ::1
    /// are always insecure, as in Docker. An insecure registry is tried over HTTPS without
    /// verifying its certificate, then over plain HTTP.
    pub insecure: Vec<String>,
    /// `--registry-mirror` URLs (`https://mirror.example:5000`): tried in order for pulls from
    /// Docker Hub before Docker Hub itself.
    pub mirrors: Vec<String>,
    /// Per-registry CA certificates (`*.crt`) and client certificate pairs (`x.cert` + `x.key`).
    pub certs_dir: PathBuf,
    /// Giving up on connecting to a registry.
    pub connect_timeout: Duration,
    /// Giving up on a registry that stops sending (or answering) mid-request.
    pub read_timeout: Duration,
    pub user_agent: String,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            insecure: Vec::new(),
            mirrors: Vec::new(),
            certs_dir: PathBuf::from(DEFAULT_CERTS_DIR),
            connect_timeout: Duration::from_secs(15),
            read_timeout: Duration::from_secs(60),
            user_agent: format!("berth/{}", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// Which registries are insecure: dockerd's rule (`isSecureIndex`). An entry that parses as a
/// CIDR matches the addresses a host name resolves to (or the IP literal); any other entry is an
/// exact `host[:port]` (`http://` or `https://` and a trailing `/` ignored).
#[derive(Debug, Clone)]
pub(crate) struct InsecurePolicy {
    nets: Vec<ipnet::IpNet>,
    names: Vec<String>,
}

impl InsecurePolicy {
    pub(crate) fn new(entries: &[String]) -> InsecurePolicy {
        let mut nets: Vec<ipnet::IpNet> = ["127.0.0.0/8", "::1/128"]
            .iter()
            .filter_map(|n| n.parse().ok())
            .collect();
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.trim();
            match entry.parse::<ipnet::IpNet>() {
                Ok(net) => nets.push(net),
                Err(_) => names.push(normalize_host_key(entry)),
            }
        }
        InsecurePolicy { nets, names }
    }

    /// `host_key` (`host[:port]`) was listed by name.
    pub(crate) fn names(&self, host_key: &str) -> bool {
        let key = normalize_host_key(host_key);
        self.names.contains(&key)
    }

    pub(crate) fn covers(&self, ip: std::net::IpAddr) -> bool {
        let ip = match ip {
            std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map(std::net::IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        self.nets.iter().any(|n| n.contains(&ip))
    }
}

/// `https://Host:5000/` → `host:5000`.
pub(crate) fn normalize_host_key(s: &str) -> String {
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let s = s.split('/').next().unwrap_or(s);
    s.to_ascii_lowercase()
}

/// The host of `host[:port]` (`[::1]:5000` → `::1`).
pub(crate) fn host_of(host_key: &str) -> &str {
    if let Some(rest) = host_key.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host_key.rsplit_once(':') {
        // A bare IPv6 literal has several colons and no brackets: no port.
        Some((h, port)) if !h.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host_key,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insecure_policy_matches_cidrs_and_names() {
        let p = InsecurePolicy::new(&[
            "10.0.0.0/8".to_string(),
            "http://Reg.Example:5000/".to_string(),
            "10.1.2.3".to_string(),
        ]);
        assert!(p.covers("127.0.0.1".parse().unwrap()));
        assert!(p.covers("127.9.9.9".parse().unwrap()));
        assert!(p.covers("::1".parse().unwrap()));
        assert!(p.covers("::ffff:127.0.0.1".parse().unwrap()));
        assert!(p.covers("10.200.0.1".parse().unwrap()));
        assert!(!p.covers("192.0.2.1".parse().unwrap()));
        assert!(p.names("reg.example:5000"));
        assert!(!p.names("reg.example"));
        assert!(p.names("10.1.2.3"));
        assert!(!p.names("10.1.2.3:5000"));
    }

    #[test]
    fn host_of_strips_port_and_brackets() {
        assert_eq!(host_of("reg:5000"), "reg");
        assert_eq!(host_of("reg"), "reg");
        assert_eq!(host_of("[::1]:5000"), "::1");
        assert_eq!(host_of("::1"), "::1");
        assert_eq!(host_of("127.0.0.1:80"), "127.0.0.1");
    }
}

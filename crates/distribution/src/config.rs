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

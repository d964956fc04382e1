//! Where a registry is reached: the endpoints to try in order (mirrors, HTTPS, the plain-HTTP
//! fallback of insecure registries) and one pooled HTTP client per TLS setting (system roots,
//! a certs.d directory's CAs and client identity, or no verification).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::SystemTime;

use url::Url;

use crate::config::{host_of, normalize_host_key, InsecurePolicy, RegistryConfig};
use crate::error::DistributionError;
use crate::http::cause_chain;
use crate::{DOCKER_HUB_DOMAIN, DOCKER_HUB_REGISTRY};

/// One place a repository can be reached at.
pub(crate) struct Endpoint {
    /// `https://host:port` (a mirror may add a path prefix), without a trailing slash.
    pub base: Url,
    /// `host[:port]`: the certs.d directory name and the scheme memory's key.
    pub host_key: String,
    pub http: reqwest::Client,
    /// Any error here moves on to the next endpoint.
    pub mirror: bool,
    /// An insecure registry reached over one of two schemes; the one that answers is remembered.
    pub dual_scheme: bool,
    /// It sent an HTTP answer (any status) in this session: its scheme and address are right,
    /// so a later connection failure is not a reason to try another endpoint.
    answered: AtomicBool,
}

impl Endpoint {
    /// `base` + `/v2/` + `rest` (`rest` is built from validated names only).
    pub(crate) fn url(&self, rest: &str) -> Result<Url, DistributionError> {
        let s = format!("{}/v2/{rest}", self.base.as_str().trim_end_matches('/'));
        Url::parse(&s).map_err(|e| DistributionError::Config(format!("invalid URL {s}: {e}")))
    }

    pub(crate) fn has_answered(&self) -> bool {
        self.answered.load(Ordering::Relaxed)
    }

    pub(crate) fn answered(&self) {
        self.answered.store(true, Ordering::Relaxed);
    }

    /// The key under which the registry's auth challenge is remembered.
    pub(crate) fn auth_key(&self) -> String {
        self.base.as_str().trim_end_matches('/').to_string()
    }
}

/// The TLS settings one reqwest client (and its connection pool) serves.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum TlsKey {
    /// Insecure registries: HTTPS without verifying the certificate (and plain HTTP).
    NoVerify,
    /// System roots only.
    System,
    /// System roots plus the certs.d directory of this `host[:port]`.
    CertsDir(String),
}

/// What a certs.d directory held when its client was built: a changed file rebuilds it, as
/// dockerd reads the directory on every pull.
type CertsStamp = Vec<(String, u64, Option<SystemTime>)>;

#[derive(Default)]
pub(crate) struct Transports {
    clients: Mutex<HashMap<TlsKey, (CertsStamp, reqwest::Client)>>,
    overrides: Mutex<HashMap<String, IpAddr>>,
}

impl Transports {
    pub(crate) fn set_override(&self, host: &str, ip: IpAddr) {
        lock(&self.overrides).insert(host.to_ascii_lowercase(), ip);
        // Clients resolve with the overrides they were built with.
        lock(&self.clients).clear();
    }

    pub(crate) fn is_overridden(&self, host: &str) -> bool {
        lock(&self.overrides).contains_key(&host.to_ascii_lowercase())
    }

    fn get(
        &self,
        cfg: &RegistryConfig,
        verify: bool,
        host_key: &str,
    ) -> Result<reqwest::Client, DistributionError> {
        let dir = certs_dir_of(&cfg.certs_dir, host_key);
        let stamp = match (&dir, verify) {
            (Some(d), true) => certs_stamp(d)?,
            _ => Vec::new(),
        };
        let key = match (verify, stamp.is_empty()) {
            (false, _) => TlsKey::NoVerify,
            (true, true) => TlsKey::System,
            (true, false) => TlsKey::CertsDir(host_key.to_string()),
        };
        if let Some((s, c)) = lock(&self.clients).get(&key) {
            if *s == stamp {
                return Ok(c.clone());
            }
        }
        let files = match (&key, &dir) {
            (TlsKey::CertsDir(_), Some(d)) => Some(read_certs_dir(d)?),
            _ => None,
        };
        let overrides: Vec<(String, IpAddr)> = lock(&self.overrides)
            .iter()
            .map(|(h, ip)| (h.clone(), *ip))
            .collect();
        let client = build_client(cfg, verify, files, &overrides)?;
        lock(&self.clients).insert(key, (stamp, client.clone()));
        Ok(client)
    }
}

/// A poisoned lock only means another thread panicked while holding plain data.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// rustls needs a process-wide crypto provider; ours is ring (no C crypto in the static
/// binary). Another part of the process may have installed one first: that one is kept.
fn ensure_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

struct CertsFiles {
    cas: Vec<reqwest::Certificate>,
    identity: Option<reqwest::Identity>,
}

fn build_client(
    cfg: &RegistryConfig,
    verify: bool,
    files: Option<CertsFiles>,
    overrides: &[(String, IpAddr)],
) -> Result<reqwest::Client, DistributionError> {
    ensure_crypto_provider();
    let mut b = reqwest::Client::builder()
        .user_agent(cfg.user_agent.clone())
        .connect_timeout(cfg.connect_timeout)
        .redirect(reqwest::redirect::Policy::limited(10))
        .tls_backend_rustls();
    if !verify {
        b = b.tls_danger_accept_invalid_certs(true);
    }
    for (host, ip) in overrides {
        b = b.resolve(host, SocketAddr::new(*ip, 0));
    }
    if let Some(f) = files {
        for ca in f.cas {
            b = b.add_root_certificate(ca);
        }
        if let Some(id) = f.identity {
            b = b.identity(id);
        }
    }
    b.build()
        .map_err(|e| DistributionError::Config(format!("TLS settings: {}", cause_chain(&e))))
}

/// `certs_dir/<host[:port]>`, unless the name could leave `certs_dir`.
fn certs_dir_of(certs_dir: &Path, host_key: &str) -> Option<PathBuf> {
    let safe = !host_key.is_empty()
        && !host_key.starts_with('.')
        && host_key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b));
    safe.then(|| certs_dir.join(host_key))
}

fn config_error(path: &Path, what: &str, e: impl std::fmt::Display) -> DistributionError {
    DistributionError::Config(format!("{what} {}: {e}", path.display()))
}

/// The certificate files of a certs.d directory, with their sizes and times; empty when the
/// directory does not exist.
fn certs_stamp(dir: &Path) -> Result<CertsStamp, DistributionError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(config_error(dir, "cannot read certificates directory", e)),
    };
    let mut out = Vec::new();
    for e in entries {
        let e = e.map_err(|e| config_error(dir, "cannot read certificates directory", e))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if ![".crt", ".cert", ".key"].iter().any(|x| name.ends_with(x)) {
            continue;
        }
        let meta = std::fs::metadata(e.path()).ok();
        out.push((
            name,
            meta.as_ref().map_or(0, |m| m.len()),
            meta.and_then(|m| m.modified().ok()),
        ));
    }
    out.sort();
    Ok(out)
}

/// dockerd's `ReadCertsDirectory`: every `*.crt` is a CA; `x.cert` + `x.key` is the client
/// identity (one without the other is an error).
fn read_certs_dir(dir: &Path) -> Result<CertsFiles, DistributionError> {
    let read = |p: &Path| std::fs::read(p).map_err(|e| config_error(p, "cannot read", e));
    let mut names: Vec<String> = certs_stamp(dir)?.into_iter().map(|(n, ..)| n).collect();
    names.sort();
    let mut files = CertsFiles {
        cas: Vec::new(),
        identity: None,
    };
    for name in &names {
        let path = dir.join(name);
        if name.ends_with(".crt") {
            let pem = read(&path)?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| config_error(&path, "invalid CA certificate", cause_chain(&e)))?;
            if certs.is_empty() {
                return Err(config_error(
                    &path,
                    "invalid CA certificate",
                    "no PEM certificate",
                ));
            }
            files.cas.extend(certs);
        } else if let Some(stem) = name.strip_suffix(".cert") {
            let key_name = format!("{stem}.key");
            if !names.contains(&key_name) {
                return Err(DistributionError::Config(format!(
                    "missing key {key_name} for client certificate {name}"
                )));
            }
            if files.identity.is_some() {
                continue;
            }
            let mut pem = read(&path)?;
            pem.push(b'\n');
            pem.extend(read(&dir.join(&key_name))?);
            let id = reqwest::Identity::from_pem(&pem)
                .map_err(|e| config_error(&path, "invalid client certificate", cause_chain(&e)))?;
            files.identity = Some(id);
        } else if let Some(stem) = name.strip_suffix(".key") {
            if !names.contains(&format!("{stem}.cert")) {
                return Err(DistributionError::Config(format!(
                    "missing client certificate {stem}.cert for key {name}"
                )));
            }
        }
    }
    Ok(files)
}

/// Whether `host_key` is a secure registry (dockerd's `isSecureIndex`): not listed by name as
/// insecure, and none of its addresses in an insecure CIDR. A name that does not resolve (or
/// whose address is fixed by an override) is matched by name only.
async fn is_secure(
    cfg: &RegistryConfig,
    insecure: &InsecurePolicy,
    transports: &Transports,
    host_key: &str,
) -> bool {
    if insecure.names(host_key) {
        return false;
    }
    let host = host_of(host_key);
    if let Ok(ip) = host.parse::<IpAddr>() {
        return !insecure.covers(ip);
    }
    if transports.is_overridden(host) {
        return true;
    }
    let lookup = tokio::net::lookup_host((host.to_string(), 0));
    match tokio::time::timeout(cfg.connect_timeout, lookup).await {
        Ok(Ok(addrs)) => !addrs.into_iter().any(|a| insecure.covers(a.ip())),
        _ => true,
    }
}

/// What the endpoint list is for: pulls from Docker Hub go through the mirrors first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    Pull,
    /// Pushes and logins: never a mirror.
    Push,
}

pub(crate) fn is_docker_hub(domain: &str) -> bool {
    matches!(
        domain.to_ascii_lowercase().as_str(),
        DOCKER_HUB_DOMAIN | "index.docker.io"
    )
}

pub(crate) struct EndpointSource<'a> {
    pub cfg: &'a RegistryConfig,
    pub insecure: &'a InsecurePolicy,
    pub transports: &'a Transports,
    /// `host[:port]` → the scheme that answered last time.
    pub schemes: &'a Mutex<HashMap<String, String>>,
}

impl EndpointSource<'_> {
    /// dockerd's `lookupV2Endpoints`: the endpoints of `domain` in the order to try them.
    pub(crate) async fn endpoints(
        &self,
        domain: &str,
        purpose: Purpose,
    ) -> Result<Vec<Arc<Endpoint>>, DistributionError> {
        let mut out = Vec::new();
        if is_docker_hub(domain) {
            if purpose == Purpose::Pull {
                for m in &self.cfg.mirrors {
                    out.push(Arc::new(self.mirror(m).await?));
                }
            }
            out.push(Arc::new(self.plain(
                DOCKER_HUB_REGISTRY,
                "https",
                true,
                false,
            )?));
            return Ok(out);
        }
        let host_key = normalize_host_key(domain);
        if is_secure(self.cfg, self.insecure, self.transports, &host_key).await {
            out.push(Arc::new(self.plain(&host_key, "https", true, false)?));
            return Ok(out);
        }
        let mut schemes = ["https", "http"];
        if lock(self.schemes).get(&host_key).map(String::as_str) == Some("http") {
            schemes.reverse();
        }
        for scheme in schemes {
            out.push(Arc::new(self.plain(&host_key, scheme, false, true)?));
        }
        Ok(out)
    }

    fn plain(
        &self,
        host_key: &str,
        scheme: &str,
        verify: bool,
        dual_scheme: bool,
    ) -> Result<Endpoint, DistributionError> {
        let base = Url::parse(&format!("{scheme}://{host_key}")).map_err(|e| {
            DistributionError::Config(format!("invalid registry address {host_key}: {e}"))
        })?;
        Ok(Endpoint {
            base,
            host_key: host_key.to_string(),
            http: self.transports.get(self.cfg, verify, host_key)?,
            mirror: false,
            dual_scheme,
            answered: AtomicBool::new(false),
        })
    }

    async fn mirror(&self, mirror: &str) -> Result<Endpoint, DistributionError> {
        let bad = |why: &str| DistributionError::Config(format!("invalid mirror {mirror}: {why}"));
        let base = Url::parse(mirror.trim_end_matches('/')).map_err(|e| bad(&e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
            return Err(bad("not an http(s) URL"));
        }
        if base.query().is_some() || base.fragment().is_some() || !base.username().is_empty() {
            return Err(bad("unexpected query, fragment or user"));
        }
        let host_key = match (base.host_str(), base.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            (None, _) => return Err(bad("no host")),
        };
        let verify = base.scheme() == "https"
            && is_secure(self.cfg, self.insecure, self.transports, &host_key).await;
        Ok(Endpoint {
            http: self.transports.get(self.cfg, verify, &host_key)?,
            base,
            host_key,
            mirror: true,
            dual_scheme: false,
            answered: AtomicBool::new(false),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn endpoints(
        cfg: &RegistryConfig,
        schemes: &Mutex<HashMap<String, String>>,
        domain: &str,
        purpose: Purpose,
    ) -> Vec<(String, bool)> {
        let insecure = InsecurePolicy::new(&cfg.insecure);
        let transports = Transports::default();
        let source = EndpointSource {
            cfg,
            insecure: &insecure,
            transports: &transports,
            schemes,
        };
        source
            .endpoints(domain, purpose)
            .await
            .unwrap()
            .iter()
            .map(|e| (e.base.as_str().to_string(), e.mirror))
            .collect()
    }

    #[tokio::test]
    async fn mirrors_serve_hub_pulls_only() {
        let certs = tempfile::tempdir().unwrap();
        let cfg = RegistryConfig {
            mirrors: vec!["https://192.0.2.1:5000/prefix/".into()],
            certs_dir: certs.path().to_path_buf(),
            ..Default::default()
        };
        let schemes = Mutex::new(HashMap::new());
        let hub = ("https://registry-1.docker.io/".to_string(), false);
        let mirror = ("https://192.0.2.1:5000/prefix".to_string(), true);
        assert_eq!(
            endpoints(&cfg, &schemes, "docker.io", Purpose::Pull).await,
            vec![mirror, hub.clone()]
        );
        assert_eq!(
            endpoints(&cfg, &schemes, "docker.io", Purpose::Push).await,
            vec![hub]
        );
        // Other registries: never the mirrors; a secure one over HTTPS only.
        assert_eq!(
            endpoints(&cfg, &schemes, "192.0.2.7:5000", Purpose::Pull).await,
            vec![("https://192.0.2.7:5000/".to_string(), false)]
        );
    }

    #[tokio::test]
    async fn insecure_registries_try_https_then_http_unless_http_answered_before() {
        let certs = tempfile::tempdir().unwrap();
        let cfg = RegistryConfig {
            insecure: vec!["192.0.2.0/24".into()],
            certs_dir: certs.path().to_path_buf(),
            ..Default::default()
        };
        let schemes = Mutex::new(HashMap::new());
        let bases = |v: Vec<(String, bool)>| v.into_iter().map(|(b, _)| b).collect::<Vec<_>>();
        assert_eq!(
            bases(endpoints(&cfg, &schemes, "192.0.2.7:5000", Purpose::Push).await),
            ["https://192.0.2.7:5000/", "http://192.0.2.7:5000/"]
        );
        assert_eq!(
            bases(endpoints(&cfg, &schemes, "[::1]:5000", Purpose::Pull).await),
            ["https://[::1]:5000/", "http://[::1]:5000/"]
        );
        lock(&schemes).insert("192.0.2.7:5000".into(), "http".into());
        assert_eq!(
            bases(endpoints(&cfg, &schemes, "192.0.2.7:5000", Purpose::Push).await),
            ["http://192.0.2.7:5000/", "https://192.0.2.7:5000/"]
        );
    }

    #[test]
    fn certs_dir_names_cannot_escape() {
        let root = Path::new("/etc/docker/certs.d");
        assert_eq!(
            certs_dir_of(root, "reg.example:5000"),
            Some(root.join("reg.example:5000"))
        );
        assert_eq!(certs_dir_of(root, ".."), None);
        assert_eq!(certs_dir_of(root, "a/../../etc"), None);
        assert_eq!(certs_dir_of(root, ""), None);
    }

    #[test]
    fn certs_dir_pairs_are_checked() {
        let d = tempfile::tempdir().unwrap();
        assert!(read_certs_dir(d.path()).unwrap().identity.is_none());
        std::fs::write(d.path().join("client.key"), "x").unwrap();
        let e = read_certs_dir(d.path()).err().unwrap();
        assert!(matches!(e, DistributionError::Config(_)), "{e}");
        assert!(
            e.to_string()
                .contains("missing client certificate client.cert"),
            "{e}"
        );
        std::fs::remove_file(d.path().join("client.key")).unwrap();
        std::fs::write(d.path().join("client.cert"), "x").unwrap();
        let e = read_certs_dir(d.path()).err().unwrap();
        assert!(e.to_string().contains("missing key client.key"), "{e}");
        std::fs::remove_file(d.path().join("client.cert")).unwrap();
        std::fs::write(d.path().join("ca.crt"), "not a certificate").unwrap();
        let e = read_certs_dir(d.path()).err().unwrap();
        assert!(matches!(e, DistributionError::Config(_)), "{e}");
    }
}

//! Shared by the integration tests: Debian's docker-registry on a free loopback port, small
//! axum servers for what a real registry cannot show, test data.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_distribution::{Access, Client, Credentials, RegistryConfig, Repository};
use berth_store::Digest;
use bytes::Bytes;

pub const DISTRIBUTION_BIN: &str = "/usr/bin/docker-registry";
/// `htpasswd -nbB -C 5 u secret`.
pub const SECRET_BCRYPT: &str = "$2y$05$bvD60WIljGcv9eHCDEqYaezAB7p0PLzZz.lY7iIhdbUq2PXcvqbtO";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// A free loopback port (bound then released: the registry binds it right after).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

#[derive(Default)]
pub struct RegistryOpts<'a> {
    /// htpasswd basic auth with this user (password `secret`).
    pub user: Option<&'a str>,
    /// (certificate, key) to serve HTTPS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// CA whose client certificates are required.
    pub client_ca: Option<PathBuf>,
}

/// Debian's docker-registry (distribution 2.8); killed on drop.
pub struct DockerRegistry {
    /// `127.0.0.1:<port>`.
    pub addr: String,
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Child,
}

impl DockerRegistry {
    pub fn start(opts: RegistryOpts<'_>) -> DockerRegistry {
        let mut dir = tempfile::tempdir().expect("tempdir");
        let mut auth = String::new();
        if let Some(user) = opts.user {
            let p = dir.path().join("htpasswd");
            std::fs::write(&p, format!("{user}:{SECRET_BCRYPT}\n")).expect("htpasswd");
            auth = format!(
                "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                p.display()
            );
        }
        let mut tls = String::new();
        if let Some((cert, key)) = &opts.tls {
            tls = format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert.display(),
                key.display()
            );
            if let Some(ca) = &opts.client_ca {
                tls.push_str(&format!("    clientcas:\n      - {}\n", ca.display()));
            }
        }
        for attempt in 0..5 {
            let port = free_port();
            let cfg = format!(
                "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}/data\n  delete:\n    enabled: true\n{auth}http:\n  addr: 127.0.0.1:{port}\n{tls}",
                dir.path().display()
            );
            let cfg_path = dir.path().join("config.yml");
            std::fs::write(&cfg_path, cfg).expect("config");
            let log = std::fs::File::create(dir.path().join("registry.log")).expect("log");
            let child = Command::new(DISTRIBUTION_BIN)
                .arg("serve")
                .arg(&cfg_path)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log"))
                .stderr(log)
                .spawn()
                .expect("start docker-registry");
            let mut r = DockerRegistry {
                addr: format!("127.0.0.1:{port}"),
                port,
                dir,
                child,
            };
            if r.wait_listening() {
                return r;
            }
            // Another test took the port between our probe and the registry's bind.
            eprintln!("registry attempt {attempt}: {}", r.log());
            let _ = r.child.kill();
            let _ = r.child.wait();
            dir = std::mem::replace(&mut r.dir, tempfile::tempdir().expect("tempdir"));
        }
        panic!("docker-registry did not start");
    }

    fn wait_listening(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if std::net::TcpStream::connect(&self.addr).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for DockerRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Short timeouts and an empty certs dir, so that tests never read /etc/docker/certs.d.
pub fn config(certs_dir: &Path) -> RegistryConfig {
    RegistryConfig {
        certs_dir: certs_dir.to_path_buf(),
        connect_timeout: Duration::from_secs(3),
        read_timeout: Duration::from_secs(3),
        ..Default::default()
    }
}

/// A client with `config` and its certs dir (kept alive by the caller).
pub fn client() -> (Client, tempfile::TempDir) {
    let certs = tempfile::tempdir().expect("tempdir");
    let c = Client::new(config(certs.path())).expect("client");
    (c, certs)
}

pub fn anon() -> Credentials {
    Credentials::default()
}

pub fn repo(c: &Client, domain: &str, path: &str, access: Access) -> Repository {
    c.repository(domain, path, anon(), access)
}

/// Deterministic incompressible-looking bytes.
pub fn data(len: usize, seed: u64) -> Bytes {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    Bytes::from(v)
}

pub fn digest(b: &[u8]) -> Digest {
    Digest::from_sha256_bytes(b)
}

/// An OCI image manifest naming `config` and `layers` (digest, size).
pub fn manifest(config: (&Digest, usize), layers: &[(&Digest, usize)]) -> Bytes {
    let layers: Vec<serde_json::Value> = layers
        .iter()
        .map(|(d, s)| {
            serde_json::json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": d.as_str(),
                "size": s,
            })
        })
        .collect();
    let m = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config.0.as_str(),
            "size": config.1,
        },
        "layers": layers,
    });
    Bytes::from(serde_json::to_vec(&m).expect("json"))
}

/// Reads a whole download.
pub async fn collect(
    dl: &mut berth_distribution::BlobDownload,
) -> Result<Vec<u8>, berth_distribution::DistributionError> {
    let mut out = Vec::new();
    while let Some(c) = dl.next_chunk().await? {
        out.extend_from_slice(&c);
    }
    Ok(out)
}

/// Serves `router` on a free loopback port.
pub async fn serve(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    addr
}

/// Pushes a small image (one layer, a config) as `tag` to `repo`; returns the manifest's
/// bytes and digest.
pub async fn push_image(repo: &Repository, tag: &str, seed: u64) -> (Bytes, Digest) {
    let layer = data(64 * 1024 + seed as usize, seed);
    let config = Bytes::from(format!("{{\"seed\":{seed}}}"));
    let (ld, cd) = (digest(&layer), digest(&config));
    repo.push_blob(&ld, layer.clone())
        .await
        .expect("push layer");
    repo.push_blob(&cd, config.clone())
        .await
        .expect("push config");
    let m = manifest((&cd, config.len()), &[(&ld, layer.len())]);
    let d = repo
        .put_manifest(tag, OCI_MANIFEST, m.clone())
        .await
        .expect("put manifest");
    (m, d)
}

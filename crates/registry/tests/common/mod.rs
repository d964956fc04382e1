//! A registry started in-process on 127.0.0.1:0 over a temp root, and a plain HTTP client.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use berth_registry::{start, RunningRegistry, ServeOptions};
use reqwest::{header::HeaderMap, Client, Method, Response, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

pub fn sha(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

pub fn init_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub struct Reg {
    pub server: Option<RunningRegistry>,
    pub root: tempfile::TempDir,
    pub base: String,
    pub http: Client,
    /// Sent with every request of the helpers (`Authorization`), when set.
    pub auth: Option<String>,
}

pub async fn start_with(configure: impl FnOnce(&mut ServeOptions)) -> Reg {
    init_crypto();
    let root = tempfile::tempdir().unwrap();
    let mut opts = ServeOptions::new(root.path().join("store"));
    configure(&mut opts);
    let server = start(opts, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let base = format!("http://{}", server.local_addr());
    Reg {
        server: Some(server),
        root,
        base,
        http: Client::builder().no_proxy().build().unwrap(),
        auth: None,
    }
}

pub async fn start_plain() -> Reg {
    start_with(|_| {}).await
}

/// Writes an htpasswd with user `u`, password `secret` (bcrypt, cost 5).
pub fn htpasswd(dir: &Path) -> PathBuf {
    let p = dir.join("htpasswd");
    std::fs::write(
        &p,
        "u:$2y$05$bvD60WIljGcv9eHCDEqYaezAB7p0PLzZz.lY7iIhdbUq2PXcvqbtO\n",
    )
    .unwrap();
    p
}

pub async fn text(r: Response) -> String {
    r.text().await.unwrap()
}

pub async fn json_of(r: Response) -> Value {
    let t = r.text().await.unwrap();
    serde_json::from_str(&t).unwrap_or_else(|e| panic!("not JSON ({e}): {t}"))
}

/// The error code of a distribution error answer.
pub async fn code(r: Response) -> String {
    let v = json_of(r).await;
    v["errors"][0]["code"].as_str().unwrap_or("").to_string()
}

pub fn header(h: &HeaderMap, k: &str) -> String {
    h.get(k)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

impl Reg {
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{}", self.base, path)
        }
    }

    pub fn store(&self) -> PathBuf {
        self.root.path().join("store")
    }

    pub fn req(&self, m: Method, path: &str) -> reqwest::RequestBuilder {
        let b = self.http.request(m, self.url(path));
        match &self.auth {
            Some(a) => b.header("authorization", a),
            None => b,
        }
    }

    pub async fn get(&self, path: &str) -> Response {
        self.req(Method::GET, path).send().await.unwrap()
    }

    /// The body of `GET /v2/<repo>/blobs/<digest>`.
    pub async fn blob(&self, repo: &str, digest: &str) -> bytes::Bytes {
        self.get(&format!("/v2/{repo}/blobs/{digest}"))
            .await
            .bytes()
            .await
            .unwrap()
    }

    pub async fn head(&self, path: &str) -> Response {
        self.req(Method::HEAD, path).send().await.unwrap()
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.req(Method::DELETE, path).send().await.unwrap()
    }

    /// Monolithic upload (`POST ?digest=`); returns the digest.
    pub async fn push_blob(&self, repo: &str, data: &[u8]) -> String {
        let d = sha(data);
        let r = self
            .req(
                Method::POST,
                &format!("/v2/{repo}/blobs/uploads/?digest={d}"),
            )
            .header("content-type", "application/octet-stream")
            .body(data.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED, "{}", text(r).await);
        d
    }

    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> Response {
        self.req(Method::PUT, &format!("/v2/{repo}/manifests/{reference}"))
            .header("content-type", media_type)
            .body(body.to_vec())
            .send()
            .await
            .unwrap()
    }

    /// Pushes config + layers and a Docker schema 2 manifest tagged `tag`; returns the
    /// manifest's bytes and digest.
    pub async fn push_image(&self, repo: &str, tag: &str, layers: &[&[u8]]) -> (Vec<u8>, String) {
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":[]}},"tag":"{repo}:{tag}"}}"#
        );
        let body = self.image_manifest(repo, config.as_bytes(), layers).await;
        let r = self.put_manifest(repo, tag, DOCKER_MANIFEST, &body).await;
        assert_eq!(r.status(), StatusCode::CREATED, "{}", text(r).await);
        let d = sha(&body);
        (body, d)
    }

    /// Uploads the blobs and returns the manifest's bytes (not pushed).
    pub async fn image_manifest(&self, repo: &str, config: &[u8], layers: &[&[u8]]) -> Vec<u8> {
        let cd = self.push_blob(repo, config).await;
        let mut ls = Vec::new();
        for l in layers {
            let d = self.push_blob(repo, l).await;
            ls.push(json!({"mediaType": DOCKER_LAYER, "digest": d, "size": l.len()}));
        }
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {"mediaType": DOCKER_CONFIG, "digest": cd, "size": config.len()},
            "layers": ls,
        }))
        .unwrap()
    }

    /// A raw HTTP/1.1 request, for paths a URL library would normalise.
    pub async fn raw(&self, method: &str, path: &str) -> (u16, String) {
        let addr = self.base.trim_start_matches("http://");
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let auth = self
            .auth
            .as_ref()
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.unwrap();
        let out = String::from_utf8_lossy(&out).into_owned();
        let status = out
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
        (status, body)
    }

    /// Every file under the root's blob store.
    pub fn stored_blobs(&self) -> Vec<String> {
        let dir = self.store().join("content/blobs/sha256");
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .map(|it| {
                it.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    pub fn upload_dirs(&self) -> usize {
        std::fs::read_dir(self.store().join("uploads"))
            .map(|it| it.count())
            .unwrap_or(0)
    }

    pub async fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
    }
}

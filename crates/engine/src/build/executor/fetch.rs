//! Downloads for builds: `ADD <url>` and the `remote=` context of `POST /build`. Plain HTTP
//! over hyper's client connection; `https://` through a TLS client (rustls with the ring
//! provider, the system's roots). Redirects followed, every wait bounded.

use crate::error::{EngineError, Result};
use crate::Engine;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use sha2::{Digest as _, Sha256};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Duration;

/// Connecting and getting the response head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// Between two pieces of the body.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
const MAX_REDIRECTS: usize = 10;

fn bad(e: impl std::fmt::Display) -> EngineError {
    EngineError::InvalidArgument(e.to_string())
}

/// A downloaded file, unlinked, at offset 0.
pub(crate) struct Download {
    pub file: std::fs::File,
    pub len: u64,
    /// `sha256:<hex>` of the body.
    pub digest: String,
    /// From `Last-Modified`, in seconds since the epoch.
    pub last_modified: Option<i64>,
    /// The URL after redirects.
    pub url: url::Url,
}

/// GETs `url` into a temporary file under `tmp`.
pub(crate) async fn fetch(url: &str, tmp: &Path) -> Result<Download> {
    let mut url = url::Url::parse(url).map_err(|e| bad(format!("invalid URL {url}: {e}")))?;
    for _ in 0..=MAX_REDIRECTS {
        if url.scheme() == "https" {
            return fetch_tls(url, tmp).await;
        }
        let resp = tokio::time::timeout(HEAD_TIMEOUT, request(&url))
            .await
            .map_err(|_| bad(format!("GET {url}: timed out")))??;
        let status = resp.status();
        if status.is_redirection() {
            let loc = resp
                .headers()
                .get(hyper::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .ok_or_else(|| bad(format!("GET {url}: {status} without a Location")))?;
            url = url
                .join(loc)
                .map_err(|e| bad(format!("GET {url}: bad redirect {loc}: {e}")))?;
            continue;
        }
        let last_modified = check_reply(&url, status, resp.headers())?;
        std::fs::create_dir_all(tmp)?;
        let mut file = tempfile::tempfile_in(tmp)?;
        let mut hash = Sha256::new();
        let mut len = 0u64;
        let mut body = resp.into_body();
        loop {
            let frame = tokio::time::timeout(IDLE_TIMEOUT, body.frame())
                .await
                .map_err(|_| bad(format!("GET {url}: timed out reading the body")))?;
            let Some(frame) = frame else { break };
            let frame = frame.map_err(|e| bad(format!("GET {url}: {e}")))?;
            if let Ok(data) = frame.into_data() {
                hash.update(&data);
                len += data.len() as u64;
                // Small synchronous writes to a local temp file; the body's pace is the network's.
                file.write_all(&data)?;
            }
        }
        file.flush()?;
        file.seek(SeekFrom::Start(0))?;
        return Ok(Download {
            file,
            len,
            digest: format!("sha256:{}", hex::encode(hash.finalize())),
            last_modified,
            url,
        });
    }
    Err(bad(format!(
        "GET {url}: stopped after {MAX_REDIRECTS} redirects"
    )))
}

/// The TLS client, built once: its connections are pooled across downloads.
fn tls_client() -> Result<reqwest::Client> {
    static CLIENT: std::sync::OnceLock<std::result::Result<reqwest::Client, String>> =
        std::sync::OnceLock::new();
    CLIENT
        .get_or_init(|| {
            // rustls needs a process-wide provider: ring, unless one is installed already.
            let _ = rustls::crypto::ring::default_provider().install_default();
            reqwest::Client::builder()
                .user_agent("berth-builder")
                .connect_timeout(HEAD_TIMEOUT)
                .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
                .tls_backend_rustls()
                .build()
                .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(|e| EngineError::Internal(format!("TLS client: {e}")))
}

/// The error and its causes in one line (reqwest's Display alone hides the TLS reason).
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// dockerd's error for a reply that is not a success; else the `Last-Modified` time ADD gives
/// the file.
fn check_reply(
    url: &url::Url,
    status: hyper::StatusCode,
    headers: &hyper::HeaderMap,
) -> Result<Option<i64>> {
    if !status.is_success() {
        return Err(bad(format!(
            "failed to GET {url} with status {status}: {}",
            status.canonical_reason().unwrap_or("")
        )));
    }
    Ok(headers
        .get(hyper::header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| chrono::DateTime::parse_from_rfc2822(v).ok())
        .map(|t| t.timestamp()))
}

/// `fetch` for an https URL (redirects, to http too, are the TLS client's to follow).
async fn fetch_tls(url: url::Url, tmp: &Path) -> Result<Download> {
    let client = tls_client()?;
    let mut resp = tokio::time::timeout(HEAD_TIMEOUT, client.get(url.clone()).send())
        .await
        .map_err(|_| bad(format!("GET {url}: timed out")))?
        .map_err(|e| bad(format!("GET {url}: {}", chain(&e))))?;
    let status = resp.status();
    let last_modified = check_reply(&url, status, resp.headers())?;
    let final_url = resp.url().clone();
    std::fs::create_dir_all(tmp)?;
    let mut file = tempfile::tempfile_in(tmp)?;
    let mut hash = Sha256::new();
    let mut len = 0u64;
    loop {
        let chunk = tokio::time::timeout(IDLE_TIMEOUT, resp.chunk())
            .await
            .map_err(|_| bad(format!("GET {url}: timed out reading the body")))?
            .map_err(|e| bad(format!("GET {url}: {}", chain(&e))))?;
        let Some(data) = chunk else { break };
        hash.update(&data);
        len += data.len() as u64;
        file.write_all(&data)?;
    }
    file.flush()?;
    file.seek(SeekFrom::Start(0))?;
    Ok(Download {
        file,
        len,
        digest: format!("sha256:{}", hex::encode(hash.finalize())),
        last_modified,
        url: final_url,
    })
}

async fn request(url: &url::Url) -> Result<hyper::Response<hyper::body::Incoming>> {
    match url.scheme() {
        "http" => {}
        s => return Err(bad(format!("{url}: unsupported URL scheme {s}"))),
    }
    let host = url
        .host_str()
        .ok_or_else(|| bad(format!("{url}: no host")))?;
    let port = url.port_or_known_default().unwrap_or(80);
    let stream = tokio::net::TcpStream::connect((host.trim_matches(['[', ']']), port))
        .await
        .map_err(|e| bad(format!("GET {url}: {e}")))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| bad(format!("GET {url}: {e}")))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!("build download connection: {e}");
        }
    });
    let mut path = url.path().to_string();
    if let Some(q) = url.query() {
        path.push('?');
        path.push_str(q);
    }
    let host_header = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    let req = hyper::Request::get(path)
        .header(hyper::header::HOST, host_header)
        .header(hyper::header::USER_AGENT, "berth-builder")
        .body(Empty::<bytes::Bytes>::new())
        .map_err(EngineError::internal)?;
    sender
        .send_request(req)
        .await
        .map_err(|e| bad(format!("GET {url}: {e}")))
}

/// The file name ADD gives a download: the URL path's last segment (dockerd's
/// `getFilenameForDownload`, without its Content-Disposition fallback).
pub(crate) fn download_name(url: &url::Url) -> Result<String> {
    url.path_segments()
        .and_then(|mut s| s.next_back())
        .filter(|n| !n.is_empty())
        .map(|n| {
            percent_encoding::percent_decode_str(n)
                .decode_utf8_lossy()
                .into_owned()
        })
        .ok_or_else(|| bad(format!("cannot determine filename from url: {url}")))
}

impl Engine {
    /// `POST /build?remote=<url>`: the context as a tarball (maybe compressed) at a URL.
    /// Git repositories are refused.
    pub async fn download_build_context(&self, remote: &str) -> Result<std::fs::File> {
        if remote.starts_with("git://")
            || remote.starts_with("git@")
            || remote.starts_with("github.com/")
            || remote.ends_with(".git")
            || remote.contains(".git#")
        {
            return Err(bad(format!(
                "building from a git repository ({remote}) is not supported by this engine yet"
            )));
        }
        let tmp = self.cfg.data_root.join("tmp");
        let d = fetch(remote, &tmp).await?;
        tokio::task::spawn_blocking(move || dockerfile_or_tar(d, &tmp))
            .await
            .map_err(EngineError::internal)?
    }
}

/// A download that is not an archive is the Dockerfile itself (dockerd's text/plain remote):
/// it becomes a context holding only `Dockerfile`.
fn dockerfile_or_tar(mut d: Download, tmp: &Path) -> Result<std::fs::File> {
    use std::io::Read;
    let mut head = vec![0u8; 512];
    let n = d.file.read(&mut head)?;
    head.truncate(n);
    d.file.seek(SeekFrom::Start(0))?;
    let compressed = berth_store::Compression::detect(&head) != berth_store::Compression::None;
    if compressed || (n == 512 && &head[257..262] == b"ustar") {
        return Ok(d.file);
    }
    let mut b = tar::Builder::new(tempfile::tempfile_in(tmp)?);
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mode(0o644);
    h.set_size(d.len);
    h.set_mtime(d.last_modified.unwrap_or(0).max(0) as u64);
    b.append_data(&mut h, "Dockerfile", &mut d.file)?;
    let mut f = b.into_inner()?;
    f.seek(SeekFrom::Start(0))?;
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_urls() {
        let u = |s: &str| url::Url::parse(s).unwrap();
        assert_eq!(
            download_name(&u("http://h/a/b%20c.txt?x=1")).unwrap(),
            "b c.txt"
        );
        assert!(download_name(&u("http://h/")).is_err());
    }
}

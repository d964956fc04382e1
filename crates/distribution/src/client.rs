//! `Client` (one per daemon: connection pools per endpoint, the token cache) and `Repository`
//! (one repository of one registry, with the credentials and access of one pull or push).

use std::sync::Arc;

use berth_store::Digest;
use bytes::Bytes;
use futures_util::stream::BoxStream;

use crate::auth::Credentials;
use crate::config::RegistryConfig;
use crate::error::DistributionError;

/// What a session needs the registry to grant (the token scope's actions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Pull,
    /// `pull,push`.
    Push,
}

#[derive(Clone)]
pub struct Client {
    inner: Arc<ClientInner>,
}

struct ClientInner {
    #[allow(dead_code)]
    cfg: RegistryConfig,
}

impl Client {
    pub fn new(cfg: RegistryConfig) -> Result<Client, DistributionError> {
        Ok(Client {
            inner: Arc::new(ClientInner { cfg }),
        })
    }

    pub fn config(&self) -> &RegistryConfig {
        &self.inner.cfg
    }

    /// `POST /auth`: checks `creds` against the registry `server` (a host[:port], or a URL such
    /// as `https://index.docker.io/v1/`) by fetching `/v2/` and, when it asks for a bearer
    /// token, a token from its realm. Returns the identity (refresh) token the realm issued, if
    /// any. A wrong password is `DistributionError::Registry { status: 401, .. }`.
    pub async fn login(
        &self,
        server: &str,
        creds: &Credentials,
    ) -> Result<Option<String>, DistributionError> {
        let _ = (server, creds);
        todo!("login")
    }

    /// A session on `path` (`library/busybox`) at registry `domain` (`docker.io`, `host:5000`).
    /// `docker.io` goes to `registry-1.docker.io` (after the mirrors, for pulls). Nothing is sent
    /// until the first request; auth challenges are answered then and tokens cached per scope.
    pub fn repository(
        &self,
        domain: &str,
        path: &str,
        creds: Credentials,
        access: Access,
    ) -> Repository {
        Repository {
            client: self.clone(),
            domain: domain.to_string(),
            path: path.to_string(),
            creds,
            access,
        }
    }
}

/// A manifest (or index) as the registry sent it.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    /// The `Content-Type` (or the body's `mediaType` when the header is generic).
    pub media_type: String,
    /// sha256 of `bytes`; checked against the reference when it was a digest.
    pub digest: Digest,
    pub bytes: Bytes,
}

/// What `HEAD` on a manifest says.
#[derive(Debug, Clone)]
pub struct ManifestInfo {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
}

pub struct Repository {
    client: Client,
    domain: String,
    path: String,
    creds: Credentials,
    access: Access,
}

impl Repository {
    /// `domain/path`, as the push line "The push refers to repository [...]" shows it.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// GET a manifest by tag or digest (accepting `ACCEPTED_MANIFESTS`). At most
    /// `MAX_MANIFEST_BYTES` are read; fetched by digest, the bytes must hash to it.
    pub async fn get_manifest(
        &self,
        reference: &str,
    ) -> Result<FetchedManifest, DistributionError> {
        let _ = (reference, &self.client, &self.creds, self.access);
        todo!("get_manifest")
    }

    /// HEAD a manifest: None when the registry does not have it (404).
    pub async fn head_manifest(
        &self,
        reference: &str,
    ) -> Result<Option<ManifestInfo>, DistributionError> {
        let _ = reference;
        todo!("head_manifest")
    }

    /// PUT a manifest under a tag or its digest; returns the digest the registry reports
    /// (`Docker-Content-Digest`), else sha256 of `bytes`.
    pub async fn put_manifest(
        &self,
        reference: &str,
        media_type: &str,
        bytes: Bytes,
    ) -> Result<Digest, DistributionError> {
        let _ = (reference, media_type, bytes);
        todo!("put_manifest")
    }

    /// HEAD a blob: its size, or None when the registry does not have it.
    pub async fn blob_size(&self, digest: &Digest) -> Result<Option<u64>, DistributionError> {
        let _ = digest;
        todo!("blob_size")
    }

    /// GET a whole small blob (an image config) into memory, at most `max` bytes, verified.
    pub async fn get_blob_bytes(
        &self,
        digest: &Digest,
        max: usize,
    ) -> Result<Bytes, DistributionError> {
        let _ = (digest, max);
        todo!("get_blob_bytes")
    }

    /// Starts downloading a blob. `size` (from the manifest) bounds what is read: a registry
    /// sending more is an error.
    pub async fn get_blob(
        &self,
        digest: &Digest,
        size: Option<u64>,
    ) -> Result<BlobDownload, DistributionError> {
        let _ = (digest, size);
        todo!("get_blob")
    }

    /// Cross-repository mount (`POST /v2/<name>/blobs/uploads/?mount=<digest>&from=<repo>`):
    /// true when the registry mounted it, false when it started an ordinary upload instead
    /// (which is cancelled).
    pub async fn mount_blob(
        &self,
        digest: &Digest,
        from_path: &str,
    ) -> Result<bool, DistributionError> {
        let _ = (digest, from_path);
        todo!("mount_blob")
    }

    /// Uploads a blob whose digest is known (a config, a stored layer blob): POST, then the body
    /// in one PUT `?digest=` (monolithic), or PATCHes when the registry asks for chunks.
    pub async fn push_blob(&self, digest: &Digest, body: Bytes) -> Result<(), DistributionError> {
        let _ = (digest, body);
        todo!("push_blob")
    }

    /// Uploads a blob produced on the fly (a layer compressed while it is sent): POST, one
    /// streamed PATCH, then PUT `?digest=` with the sha256 of what was sent. Returns that
    /// digest and size.
    pub async fn push_blob_stream(
        &self,
        body: BoxStream<'static, std::io::Result<Bytes>>,
    ) -> Result<(Digest, u64), DistributionError> {
        let _ = body;
        todo!("push_blob_stream")
    }
}

/// A blob download. `next_chunk` hides broken connections: it re-requests the rest with
/// `Range: bytes=<received>-` (a few times, with backoff) and goes on, so the caller sees one
/// uninterrupted byte stream. The caller verifies the digest (its store hashes as it writes).
pub struct BlobDownload {
    /// `Content-Length` of the first answer, or the manifest's size.
    pub total: Option<u64>,
    _private: (),
}

impl BlobDownload {
    /// The next bytes; `Ok(None)` at the end.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, DistributionError> {
        todo!("next_chunk")
    }

    /// How many retries (resumed requests) the download needed so far.
    pub fn resumed(&self) -> u32 {
        0
    }
}

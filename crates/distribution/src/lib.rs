//! berth-distribution: the client side of the Docker Registry HTTP API v2 and the OCI
//! distribution-spec v1.1 — endpoints (TLS, certs.d, insecure registries, mirrors), the auth
//! flows (anonymous, basic, bearer tokens with realm/service/scope, identity tokens), manifests
//! and blobs (resumed downloads, streamed and mounted uploads).
//!
//! It knows nothing of images or the engine: it moves bytes and names them by digest. Digests
//! of downloads are verified by the caller's store while it writes them (see `BlobDownload`).

mod auth;
mod client;
mod config;
mod download;
mod endpoint;
mod error;
mod http;

pub use auth::Credentials;
pub use client::{Access, Client, FetchedManifest, ManifestInfo, Repository};
pub use config::{RegistryConfig, DEFAULT_CERTS_DIR};
pub use download::BlobDownload;
pub use error::DistributionError;

/// The registry host Docker Hub's references name (`docker.io/library/busybox`).
pub const DOCKER_HUB_DOMAIN: &str = "docker.io";
/// Where Docker Hub's registry API really is.
pub const DOCKER_HUB_REGISTRY: &str = "registry-1.docker.io";
/// The server address `docker login` stores Docker Hub's credentials under.
pub const DOCKER_HUB_INDEX: &str = "https://index.docker.io/v1/";

/// Manifest media types a pull accepts, most specific first.
pub const ACCEPTED_MANIFESTS: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// The distribution-spec's limit for a manifest a registry must accept; we never read more.
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

/// The engine runs transfers in spawned tasks: everything here must be `Send` (and the shared
/// handles `Sync`).
#[cfg(test)]
#[allow(dead_code)]
fn futures_are_send(c: &Client, r: &Repository, d: &berth_store::Digest, dl: &mut BlobDownload) {
    fn send<T: Send>(_: T) {}
    fn shared<T: Send + Sync>() {}
    shared::<Client>();
    shared::<Repository>();
    send(c.login("x", &Credentials::default()));
    send(r.get_manifest("x"));
    send(r.head_manifest("x"));
    send(r.put_manifest("x", "y", bytes::Bytes::new()));
    send(r.blob_size(d));
    send(r.get_blob_bytes(d, 1));
    send(r.get_blob(d, None));
    send(r.mount_blob(d, "x"));
    send(r.push_blob(d, bytes::Bytes::new()));
    send(r.push_blob_stream(Box::pin(futures_util::stream::empty())));
    send(dl.next_chunk());
}

//! `POST /images/create?fromImage=`: the manifest (through an index to this platform's) and
//! the config are fetched before the first progress byte, so that their failures are HTTP
//! statuses. Then the layers download in parallel, each streamed into the content store with
//! its digest checked as it is written, and are extracted in order as soon as each is there
//! (extracting layer N while N+1 downloads). Nothing is visible until every layer is verified
//! and the image is committed in one transaction; a failure or a client that goes away
//! leaves no blob and no layer behind.

use super::download::{Download, Failure, StreamedLayer};
use super::platform::Wanted;
use super::progress::{JsonMessage, LayerProgress, ProgressSink};
use crate::error::{EngineError, Result};
use crate::Engine;
use berth_distribution::{Access, Credentials, DistributionError, FetchedManifest, Repository};
use berth_image::oci::{self, Descriptor, Index, Manifest};
use berth_image::{Image, ImageConfig, PulledImage, Reference, Rollback};
use berth_store::{Digest, LayerRecord, LayerSource, LayerStore};
use bytes::Bytes;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use tokio::sync::{watch, Semaphore};

/// The largest image config a pull reads (they are a few KiB; long histories make them grow).
const MAX_CONFIG_BYTES: usize = 16 * 1024 * 1024;
/// More layers than overlayfs can stack is no image this engine can run.
const MAX_LAYERS: usize = 1000;
/// How deep indexes may nest before the pull gives up.
const MAX_INDEX_DEPTH: usize = 4;

/// What `POST /images/create?fromImage=` asks for.
#[derive(Debug, Clone)]
pub struct PullRequest {
    /// Normalised: a tag, a digest, or neither (every tag of the repository).
    pub reference: Reference,
    /// `platform=os/arch[/variant]`; the host's when None or empty.
    pub platform: Option<String>,
    pub creds: Credentials,
}

/// A pull resolved as far as it can be before streaming starts.
pub struct PreparedPull {
    repo: Arc<Repository>,
    /// What was asked (the final `Status:` line names it).
    requested: Reference,
    images: Vec<Resolved>,
}

/// One image to bring in: its manifest and config, fetched and checked.
struct Resolved {
    /// The tag or digest reference it was pulled by.
    reference: Reference,
    /// What `Digest:` shows and `repo@…` records: the index's digest when there was one.
    digest: Digest,
    manifest: FetchedManifest,
    parsed: Manifest,
    config_bytes: Bytes,
    config: ImageConfig,
}

impl PreparedPull {
    /// The references this pull will tag (for the builder's messages).
    pub fn reference(&self) -> &Reference {
        &self.requested
    }
}

enum Kind {
    Index,
    Image,
    Schema1,
    Other(String),
}

/// The manifest's kind, from its media type or, when the registry sent a generic one, from
/// the body.
fn kind_of(media_type: &str, bytes: &[u8]) -> Kind {
    let mt = media_type.split(';').next().unwrap_or("").trim();
    match mt {
        oci::OCI_INDEX | oci::DOCKER_MANIFEST_LIST => return Kind::Index,
        oci::OCI_MANIFEST | oci::DOCKER_MANIFEST => return Kind::Image,
        oci::DOCKER_MANIFEST_V1 | oci::DOCKER_MANIFEST_V1_SIGNED => return Kind::Schema1,
        _ => {}
    }
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "schemaVersion", default)]
        schema_version: i64,
        #[serde(rename = "mediaType", default)]
        media_type: String,
        manifests: Option<serde_json::Value>,
        config: Option<serde_json::Value>,
    }
    match serde_json::from_slice::<Probe>(bytes) {
        Ok(p) if p.schema_version == 1 => Kind::Schema1,
        Ok(p) if p.media_type != mt && !p.media_type.is_empty() => kind_of(&p.media_type, b""),
        Ok(p) if p.manifests.is_some() => Kind::Index,
        Ok(p) if p.config.is_some() => Kind::Image,
        _ => Kind::Other(mt.to_string()),
    }
}

fn invalid(what: impl std::fmt::Display) -> EngineError {
    EngineError::Internal(format!("invalid manifest from the registry: {what}"))
}

pub(super) fn is_foreign(media_type: &str) -> bool {
    media_type == oci::DOCKER_LAYER_FOREIGN_GZIP
        || media_type.starts_with(oci::OCI_LAYER_NONDISTRIBUTABLE)
}

fn supported_layer(media_type: &str) -> bool {
    const PLAIN_OR_COMPRESSED: &[&str] = &[
        oci::DOCKER_LAYER_GZIP,
        "application/vnd.docker.image.rootfs.diff.tar",
        oci::OCI_LAYER_TAR,
        oci::OCI_LAYER_GZIP,
        oci::OCI_LAYER_ZSTD,
    ];
    PLAIN_OR_COMPRESSED.contains(&media_type) || is_foreign(media_type)
}

/// dockerd's wording for a pull that the registry refused (distribution/errors.go), with
/// the status its client gets.
pub(crate) fn pull_error(e: DistributionError, r: &Reference, creds: &Credentials) -> EngineError {
    let repo = r.familiar_repository();
    let denied = || {
        format!("pull access denied for {repo}, repository does not exist or may require 'docker login': {e}")
    };
    match e.code() {
        Some("DENIED") => return EngineError::NotFound(denied()),
        Some("NAME_UNKNOWN") => {
            return EngineError::NotFound(format!("repository {repo} not found: {e}"))
        }
        Some("MANIFEST_UNKNOWN") => {
            return EngineError::NotFound(format!("manifest for {} not found: {e}", r.familiar()))
        }
        _ => {}
    }
    if e.is_auth() {
        // Without credentials a registry cannot tell "private" from "missing".
        return if creds.is_anonymous() {
            EngineError::NotFound(denied())
        } else {
            EngineError::Unauthorized(e.to_string())
        };
    }
    if e.is_not_found() {
        return EngineError::NotFound(format!("manifest for {} not found: {e}", r.familiar()));
    }
    EngineError::Internal(e.to_string())
}

impl Engine {
    /// Resolves the reference to its manifest and config; every failure here is a status.
    pub async fn prepare_pull(&self, req: PullRequest) -> Result<PreparedPull> {
        let wanted = match req.platform.as_deref() {
            Some(p) if !p.trim().is_empty() => Wanted::parse(p)?,
            _ => Wanted::host(),
        };
        let r = &req.reference;
        let repo = Arc::new(self.registry.repository(
            r.domain(),
            r.path(),
            req.creds.clone(),
            Access::Pull,
        ));
        if r.tag().is_none() && r.digest().is_none() {
            return Err(EngineError::InvalidArgument(format!(
                "pulling every tag of {} is not supported: name a tag or a digest",
                r.familiar_repository()
            )));
        }
        let resolved = self.resolve(&repo, r, &wanted, &req.creds).await?;
        Ok(PreparedPull {
            repo,
            requested: r.clone(),
            images: vec![resolved],
        })
    }

    async fn resolve(
        &self,
        repo: &Repository,
        r: &Reference,
        wanted: &Wanted,
        creds: &Credentials,
    ) -> Result<Resolved> {
        let by = match (r.digest(), r.tag()) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.to_string(),
            (None, None) => "latest".to_string(),
        };
        let top = repo
            .get_manifest(&by)
            .await
            .map_err(|e| pull_error(e, r, creds))?;
        let digest = top.digest.clone();
        let mut manifest = top;
        let mut from_index = false;
        for depth in 0..=MAX_INDEX_DEPTH {
            match kind_of(&manifest.media_type, &manifest.bytes) {
                Kind::Image => break,
                Kind::Index if depth < MAX_INDEX_DEPTH => {
                    let index: Index = serde_json::from_slice(&manifest.bytes).map_err(invalid)?;
                    let entry = wanted.choose(&index.manifests)?;
                    manifest = repo
                        .get_manifest(entry.digest.as_str())
                        .await
                        .map_err(|e| pull_error(e, r, creds))?;
                    from_index = true;
                }
                Kind::Index => return Err(invalid("indexes nested too deeply")),
                Kind::Schema1 => {
                    return Err(EngineError::InvalidArgument(format!(
                        "Docker Image Format v1 and Docker Image manifest version 2, schema 1 support has been removed. Suggest the author of {} to upgrade the image to the OCI Format or Docker Image manifest v2, schema 2. More information at https://docs.docker.com/go/deprecated-image-specs/",
                        r.familiar()
                    )))
                }
                Kind::Other(mt) => {
                    return Err(EngineError::InvalidArgument(format!(
                        "unsupported manifest media type {mt:?} for {}: not a container image",
                        r.familiar()
                    )))
                }
            }
        }
        let parsed: Manifest = serde_json::from_slice(&manifest.bytes).map_err(invalid)?;
        check_manifest(&parsed)?;
        if parsed.config.size as usize > MAX_CONFIG_BYTES {
            return Err(invalid(format!(
                "image config of {} bytes",
                parsed.config.size
            )));
        }
        let config_bytes = repo
            .get_blob_bytes(&parsed.config.digest, MAX_CONFIG_BYTES)
            .await
            .map_err(|e| pull_error(e, r, creds))?;
        let config = ImageConfig::from_bytes(&config_bytes)
            .map_err(|e| invalid(format!("image config: {e}")))?;
        if config.rootfs.diff_ids.len() != parsed.layers.len() {
            return Err(invalid(format!(
                "{} layers in the manifest but {} in the image config",
                parsed.layers.len(),
                config.rootfs.diff_ids.len()
            )));
        }
        let actual = oci::Platform {
            architecture: config.architecture.clone(),
            os: config.os.clone(),
            variant: config.variant.clone(),
            os_version: None,
        };
        if wanted.explicit && !from_index && !wanted.matches(&actual) {
            let mut have = format!("{}/{}", actual.os, actual.architecture);
            if let Some(v) = &actual.variant {
                have = format!("{have}/{v}");
            }
            return Err(EngineError::NotFound(format!(
                "image with reference {} was found but does not match the specified platform: wanted {wanted}, actual: {have}",
                r.familiar()
            )));
        }
        Ok(Resolved {
            reference: r.clone(),
            digest,
            manifest,
            parsed,
            config_bytes,
            config,
        })
    }

    /// Streams the prepared pull; returns the image (the last one for several tags). Errors
    /// are the caller's to report (in-band: the stream has started).
    pub async fn run_pull(self: &Arc<Self>, p: PreparedPull, sink: &ProgressSink) -> Result<Image> {
        let mut newer = false;
        let mut last = None;
        for r in p.images {
            let (img, updated) = self.pull_one(&p.repo, r, sink).await?;
            newer |= updated;
            last = Some(img);
        }
        let status = if newer {
            "Downloaded newer image for"
        } else {
            "Image is up to date for"
        };
        sink.send(JsonMessage::status(format!(
            "Status: {status} {}",
            p.requested.familiar()
        )))
        .await;
        last.ok_or_else(|| EngineError::Internal("nothing was pulled".into()))
    }

    /// `prepare_pull` then `run_pull` (the builder's pulls: one error path).
    pub async fn pull_image(
        self: &Arc<Self>,
        req: PullRequest,
        sink: &ProgressSink,
    ) -> Result<Image> {
        let p = self.prepare_pull(req).await?;
        self.run_pull(p, sink).await
    }

    /// One image: true when a reference now names it that did not before (dockerd's "newer").
    async fn pull_one(
        self: &Arc<Self>,
        repo: &Arc<Repository>,
        r: Resolved,
        sink: &ProgressSink,
    ) -> Result<(Image, bool)> {
        let reference = &r.reference;
        let id_text = match reference.digest() {
            Some(_) => reference.full(),
            None => reference.tag().unwrap_or("latest").to_string(),
        };
        sink.send(JsonMessage::with_id(
            format!("Pulling from {}", reference.path()),
            id_text,
        ))
        .await;
        let id = r.parsed.config.digest.clone();
        let chains = chain_ids(&r.config.rootfs.diff_ids);
        let _leases = self.pull_leases.acquire(
            r.parsed
                .layers
                .iter()
                .map(|l| l.digest.clone())
                .chain(chains.iter().cloned())
                .chain([id.clone(), r.manifest.digest.clone()]),
        );
        let references: Vec<String> = match reference.digest() {
            Some(d) => vec![reference.with_digest(d.clone()).full()],
            None => vec![
                reference.full(),
                reference.with_digest(r.digest.clone()).full(),
            ],
        };
        let before = self.db.get_tag(&reference.full())?;
        let images = self.images.clone();
        let lookup = id.clone();
        let complete = tokio::task::spawn_blocking(move || images.complete_image(&lookup))
            .await
            .map_err(EngineError::internal)??;
        let layers = match complete {
            Some(_) => {
                let images = self.images.clone();
                let (lookup, refs) = (id.clone(), references.clone());
                tokio::task::spawn_blocking(move || images.set_references(&lookup, &refs))
                    .await
                    .map_err(EngineError::internal)??;
                None
            }
            None => Some(self.fetch_and_commit(repo, &r, references, sink).await?),
        };
        let records = match layers {
            Some(l) => l,
            None => self
                .images
                .image_layers(&self.images.resolve(id.as_str())?)?,
        };
        self.remember_sources(repo, &r.parsed.layers, &records);
        sink.send(JsonMessage::status(format!("Digest: {}", r.digest)))
            .await;
        let img = self.image_by_name(id.as_str()).await?;
        let attrs = crate::images::label_attrs(&img);
        self.emit_image(
            &reference.familiar(),
            "pull",
            &reference.familiar_repository(),
            attrs,
        );
        Ok((img, before.as_ref() != Some(&id)))
    }

    /// Records where each layer's blob is (for pushes: "Layer already exists", mounts).
    fn remember_sources(&self, repo: &Repository, descs: &[Descriptor], layers: &[LayerRecord]) {
        let (domain, path) = repo_names(repo);
        for (d, l) in descs.iter().zip(layers) {
            let src = LayerSource {
                diff_id: l.diff_id.clone(),
                blob: d.digest.clone(),
                media_type: d.media_type.clone(),
                size: d.size.max(0) as u64,
                registry: domain.clone(),
                repository: path.clone(),
            };
            if let Err(e) = self.db.add_layer_source(&src) {
                tracing::warn!("cannot record where layer {} is: {e}", l.diff_id);
            }
        }
    }

    /// Downloads and extracts what is missing, then commits; on any failure removes what this
    /// pull stored (keeping what a concurrent pull relies on).
    async fn fetch_and_commit(
        self: &Arc<Self>,
        repo: &Arc<Repository>,
        r: &Resolved,
        references: Vec<String>,
        sink: &ProgressSink,
    ) -> Result<Vec<LayerRecord>> {
        let rb = Arc::new(Mutex::new(Rollback::new()));
        let res = async {
            let layers = self.fetch_layers(repo, r, sink, &rb).await?;
            let pulled = PulledImage {
                config: r.config_bytes.to_vec(),
                config_digest: r.parsed.config.digest.clone(),
                manifest: r.manifest.bytes.to_vec(),
                manifest_digest: r.manifest.digest.clone(),
                layers: layers.clone(),
                references,
            };
            if sink.is_closed() {
                return Err(cancelled());
            }
            let images = self.images.clone();
            let rb2 = rb.clone();
            tokio::task::spawn_blocking(move || {
                // Blobs and layers were written unsynced: one syncfs makes them durable
                // before the records that name them exist.
                images.content().sync_fs()?;
                let mut local = Rollback::new();
                let res = images.commit_pulled(&pulled, &mut local);
                lock(&rb2).absorb(&mut local);
                if res.is_ok() {
                    lock(&rb2).disarm();
                }
                res
            })
            .await
            .map_err(EngineError::internal)??;
            Ok(layers)
        }
        .await;
        if res.is_err() {
            let images = self.images.clone();
            let leases = self.pull_leases.clone();
            let rb = rb.clone();
            let _ = tokio::task::spawn_blocking(move || {
                lock(&rb).run_except(&images, &|d| leases.shared(d));
            })
            .await;
        }
        res
    }

    async fn fetch_layers(
        self: &Arc<Self>,
        repo: &Arc<Repository>,
        r: &Resolved,
        sink: &ProgressSink,
        rb: &Arc<Mutex<Rollback>>,
    ) -> Result<Vec<LayerRecord>> {
        let diff_ids = &r.config.rootfs.diff_ids;
        let chains = chain_ids(diff_ids);
        let mut present: Vec<Option<LayerRecord>> = Vec::with_capacity(chains.len());
        let mut announced = HashSet::new();
        for (desc, chain) in r.parsed.layers.iter().zip(&chains) {
            let known = self.images.known_layer(chain)?;
            let id = desc.digest.short().to_string();
            if announced.insert(id.clone()) {
                let text = if known.is_some() {
                    "Already exists"
                } else {
                    "Pulling fs layer"
                };
                sink.send(JsonMessage::layer(text, id)).await;
            }
            present.push(known);
        }

        // One download per distinct blob still needed, at most N at once.
        let failure = Arc::new(Failure::default());
        let slots = Arc::new(Semaphore::new(self.cfg.registry.max_concurrent_downloads));
        let mut done: HashMap<Digest, watch::Receiver<Option<std::result::Result<(), String>>>> =
            HashMap::new();
        let mut tasks = Vec::new();
        let streamed = Arc::new(Mutex::new(HashMap::new()));
        for (i, (desc, known)) in r.parsed.layers.iter().zip(&present).enumerate() {
            if known.is_some() || done.contains_key(&desc.digest) {
                continue;
            }
            let (tx, rx) = watch::channel(None);
            done.insert(desc.digest.clone(), rx);
            let job = Download {
                engine: self.clone(),
                repo: repo.clone(),
                desc: desc.clone(),
                sink: sink.clone(),
                slots: slots.clone(),
                failure: failure.clone(),
                rb: rb.clone(),
                extract: Some(StreamedLayer {
                    parent: i.checked_sub(1).map(|p| chains[p].clone()),
                    diff_id: diff_ids[i].clone(),
                    done: streamed.clone(),
                }),
            };
            tasks.push(tokio::spawn(async move {
                let failure = job.failure.clone();
                let res = job.run().await.map_err(|e| {
                    failure.fail(&e);
                    e.to_string()
                });
                let _ = tx.send(Some(res));
            }));
        }

        let res = self
            .extract_in_order(
                r, &chains, present, &mut done, &streamed, sink, rb, &failure,
            )
            .await;
        if let Err(e) = &res {
            failure.fail(e);
        }
        // Every download has ended (and recorded what it stored) before any rollback runs.
        for t in tasks {
            let _ = t.await;
        }
        res.map_err(|e| failure.error(e))
    }

    #[allow(clippy::too_many_arguments)]
    async fn extract_in_order(
        &self,
        r: &Resolved,
        chains: &[Digest],
        present: Vec<Option<LayerRecord>>,
        done: &mut HashMap<Digest, watch::Receiver<Option<std::result::Result<(), String>>>>,
        streamed: &Mutex<HashMap<Digest, LayerRecord>>,
        sink: &ProgressSink,
        rb: &Arc<Mutex<Rollback>>,
        failure: &Failure,
    ) -> Result<Vec<LayerRecord>> {
        let mut records = Vec::with_capacity(chains.len());
        for (i, (desc, known)) in r.parsed.layers.iter().zip(present).enumerate() {
            if let Some(rec) = known {
                records.push(rec);
                continue;
            }
            if let Some(rx) = done.get_mut(&desc.digest) {
                let outcome = rx
                    .wait_for(|v| v.is_some())
                    .await
                    .map_err(|_| EngineError::Internal("download task ended".into()))?
                    .clone();
                if let Some(Err(e)) = outcome {
                    return Err(EngineError::Internal(e));
                }
            }
            if sink.is_closed() || failure.cancelled() {
                return Err(cancelled());
            }
            let id = desc.digest.short().to_string();
            let extracted = lock(streamed).remove(&chains[i]);
            if let Some(rec) = extracted {
                // Extracted while it downloaded; the stream still tells the steps in order.
                let size = desc.size.max(0) as u64;
                sink.send(JsonMessage::bytes("Extracting", &id, size, size))
                    .await;
                sink.send(JsonMessage::layer("Pull complete", id)).await;
                records.push(rec);
                continue;
            }
            let mut progress =
                LayerProgress::new(sink.clone(), &id, "Extracting", desc.size.max(0) as u64);
            let images = self.images.clone();
            let parent = i.checked_sub(1).map(|p| chains[p].clone());
            let blob = desc.digest.clone();
            let diff = r.config.rootfs.diff_ids[i].clone();
            let (res, mut local) = tokio::task::spawn_blocking(move || {
                let mut local = Rollback::new();
                let res = images.extract_layer_blob(
                    parent.as_ref(),
                    &blob,
                    Some(&diff),
                    true,
                    &mut |n| progress.update(n),
                    &mut local,
                );
                (res, local)
            })
            .await
            .map_err(EngineError::internal)?;
            lock(rb).absorb(&mut local);
            // Start writing the layer (and the blobs so far) out while the pull goes on: the
            // syncfs before the commit then has little left to wait for.
            let content = self.images.content().clone();
            tokio::task::spawn_blocking(move || content.sync_fs());
            let rec = res.map_err(|e| {
                EngineError::Internal(format!("failed to register layer {}: {e}", desc.digest))
            })?;
            sink.send(JsonMessage::layer("Pull complete", id)).await;
            records.push(rec);
        }
        Ok(records)
    }
}

/// Chain ids of a config's diff ids, base first.
fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let c = LayerStore::chain_id(out.last(), d);
        out.push(c);
    }
    out
}

fn check_manifest(m: &Manifest) -> Result<()> {
    match m.config.media_type.as_str() {
        oci::DOCKER_CONFIG | oci::OCI_CONFIG | "" => {}
        other => {
            return Err(EngineError::InvalidArgument(format!(
                "unsupported image config media type {other:?}: not a container image"
            )))
        }
    }
    if m.layers.len() > MAX_LAYERS {
        return Err(invalid(format!("{} layers", m.layers.len())));
    }
    for l in &m.layers {
        if l.size < 0 {
            return Err(invalid(format!("layer {} has a negative size", l.digest)));
        }
        if !supported_layer(&l.media_type) {
            return Err(EngineError::InvalidArgument(format!(
                "unsupported layer media type {:?} (layer {})",
                l.media_type, l.digest
            )));
        }
    }
    Ok(())
}

pub(super) fn cancelled() -> EngineError {
    EngineError::Internal("pull cancelled: the client went away".into())
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// (domain, path) of a repository session.
pub(super) fn repo_names(repo: &Repository) -> (String, String) {
    let name = repo.name();
    let path = repo.path().to_string();
    let domain = name
        .strip_suffix(&format!("/{path}"))
        .unwrap_or(&name)
        .to_string();
    (domain, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(status: u16, code: &str, message: &str) -> DistributionError {
        DistributionError::Registry {
            status,
            code: code.into(),
            message: message.into(),
        }
    }

    #[test]
    fn errors_read_as_dockerds() {
        let r = Reference::parse_normalized("127.0.0.1:5000/x/img:nope").unwrap();
        let anon = Credentials::default();
        let e = pull_error(reg(404, "MANIFEST_UNKNOWN", "manifest unknown"), &r, &anon);
        assert!(matches!(e, EngineError::NotFound(_)));
        assert_eq!(
            e.to_string(),
            "manifest for 127.0.0.1:5000/x/img:nope not found: manifest unknown: manifest unknown"
        );
        let e = pull_error(
            reg(401, "UNAUTHORIZED", "authentication required"),
            &r,
            &anon,
        );
        assert_eq!(
            e.to_string(),
            "pull access denied for 127.0.0.1:5000/x/img, repository does not exist or may require 'docker login': unauthorized: authentication required"
        );
        let user = Credentials::basic("u", "bad");
        let e = pull_error(
            reg(401, "UNAUTHORIZED", "authentication required"),
            &r,
            &user,
        );
        assert!(matches!(e, EngineError::Unauthorized(_)));
        assert_eq!(e.to_string(), "unauthorized: authentication required");
        let e = pull_error(
            reg(404, "NAME_UNKNOWN", "repository name not known to registry"),
            &r,
            &anon,
        );
        assert_eq!(
            e.to_string(),
            "repository 127.0.0.1:5000/x/img not found: name unknown: repository name not known to registry"
        );
        let busybox = Reference::parse_normalized("busybox:1").unwrap();
        let e = pull_error(
            reg(403, "DENIED", "requested access to the resource is denied"),
            &busybox,
            &user,
        );
        assert_eq!(
            e.to_string(),
            "pull access denied for busybox, repository does not exist or may require 'docker login': denied: requested access to the resource is denied"
        );
        let e = pull_error(
            DistributionError::Transport("Get \"http://127.0.0.1:1/v2/\": refused".into()),
            &r,
            &anon,
        );
        assert!(matches!(e, EngineError::Internal(_)));
    }

    #[test]
    fn manifest_kinds() {
        assert!(matches!(kind_of(oci::OCI_INDEX, b""), Kind::Index));
        assert!(matches!(
            kind_of(&format!("{}; charset=utf-8", oci::DOCKER_MANIFEST), b""),
            Kind::Image
        ));
        assert!(matches!(
            kind_of("application/json", br#"{"schemaVersion":1,"fsLayers":[]}"#),
            Kind::Schema1
        ));
        assert!(matches!(
            kind_of("application/json", br#"{"schemaVersion":2,"manifests":[]}"#),
            Kind::Index
        ));
        assert!(matches!(
            kind_of("", br#"{"schemaVersion":2,"config":{}}"#),
            Kind::Image
        ));
        assert!(matches!(
            kind_of("application/vnd.cncf.helm.chart", b"{}"),
            Kind::Other(_)
        ));
    }

    #[test]
    fn chains_and_layer_types() {
        let a = Digest::from_sha256_bytes(b"a");
        let b = Digest::from_sha256_bytes(b"b");
        let c = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(c[0], a);
        assert_eq!(c[1], LayerStore::chain_id(Some(&a), &b));
        assert!(supported_layer(oci::OCI_LAYER_ZSTD));
        assert!(supported_layer(oci::DOCKER_LAYER_FOREIGN_GZIP));
        assert!(!supported_layer(
            "application/vnd.oci.image.layer.v1.tar+gzip+encrypted"
        ));
    }
}

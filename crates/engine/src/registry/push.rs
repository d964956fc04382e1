//! `POST /images/{name}/push`: each layer, in parallel, is found in the repository ("Layer
//! already exists"), mounted from another repository of the registry that holds it
//! ("Mounted from …"), or uploaded — a stored compressed blob as it is, a plain tar gzipped
//! while it streams. Then the config, then the manifest under the tag.

use super::compress::{file_stream, gzip_stream};
use super::progress::{JsonMessage, LayerProgress, ProgressSink};
use super::pull::repo_names;
use super::registry_error;
use crate::error::{EngineError, Result};
use crate::Engine;
use berth_distribution::{Access, Credentials, DistributionError, Repository};
use berth_image::oci::{self, Descriptor, Manifest};
use berth_image::{Image, Reference};
use berth_store::{Compression, Digest, LayerRecord, LayerSource};
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// What `POST /images/{name}/push?tag=` asks for.
#[derive(Debug, Clone)]
pub struct PushRequest {
    /// The repository, with the tag to push, or none for every tag of the repository.
    pub reference: Reference,
    pub creds: Credentials,
}

/// A push whose images exist and whose registry accepted the credentials.
pub struct PreparedPush {
    repo: Arc<Repository>,
    tags: Vec<(Reference, Image)>,
}

/// A layer as the manifest will name it.
#[derive(Debug, Clone)]
struct PushedLayer {
    digest: Digest,
    size: u64,
    zstd: bool,
}

fn push_error(e: DistributionError) -> EngineError {
    EngineError::Internal(e.to_string())
}

/// The compression a stored layer blob has, from its recorded media type.
fn compression_of(media_type: &str) -> Compression {
    if media_type.ends_with("zstd") {
        Compression::Zstd
    } else if media_type.ends_with("gzip") {
        Compression::Gzip
    } else {
        Compression::None
    }
}

impl Engine {
    /// Finds the images and checks the credentials; every failure here is a status.
    pub async fn prepare_push(&self, req: PushRequest) -> Result<PreparedPush> {
        let r = &req.reference;
        if r.digest().is_some() {
            return Err(EngineError::InvalidArgument(
                "cannot push a digest reference".into(),
            ));
        }
        let missing = || {
            EngineError::NotFound(format!(
                "An image does not exist locally with the tag: {}",
                r.familiar_repository()
            ))
        };
        let mut wanted: Vec<Reference> = match r.tag() {
            Some(_) => vec![r.clone()],
            None => self
                .images
                .repository_tags(&r.repository())?
                .into_iter()
                .filter_map(|(t, _)| Reference::parse_normalized(&t).ok())
                .collect(),
        };
        if wanted.is_empty() {
            return Err(missing());
        }
        wanted.sort_by(|a, b| a.tag().cmp(&b.tag()));
        let mut tags = Vec::new();
        for t in wanted {
            let Some(id) = self.db.get_tag(&t.full())? else {
                if self.images.repository_tags(&r.repository())?.is_empty() {
                    return Err(missing());
                }
                return Err(EngineError::NotFound(format!(
                    "tag does not exist: {}",
                    t.familiar()
                )));
            };
            tags.push((t, self.image_by_name(id.as_str()).await?));
        }
        let repo = Arc::new(self.registry.repository(
            r.domain(),
            r.path(),
            req.creds.clone(),
            Access::Push,
        ));
        // Any request answers the auth challenge: a wrong password is a status, not a line.
        repo.blob_size(&tags[0].1.id)
            .await
            .map_err(registry_error)?;
        Ok(PreparedPush { repo, tags })
    }

    pub async fn run_push(self: &Arc<Self>, p: PreparedPush, sink: &ProgressSink) -> Result<()> {
        sink.send(JsonMessage::status(format!(
            "The push refers to repository [{}]",
            p.repo.name()
        )))
        .await;
        for (tag, img) in &p.tags {
            self.push_tag(&p.repo, tag, img, sink).await?;
        }
        Ok(())
    }

    async fn push_tag(
        self: &Arc<Self>,
        repo: &Arc<Repository>,
        tag: &Reference,
        img: &Image,
        sink: &ProgressSink,
    ) -> Result<()> {
        let layers = self.images.image_layers(img)?;
        let mut announced = HashSet::new();
        for l in layers.iter().rev() {
            let id = l.diff_id.short().to_string();
            if announced.insert(id.clone()) {
                sink.send(JsonMessage::layer("Preparing", id)).await;
            }
        }
        let slots = Arc::new(Semaphore::new(self.cfg.registry.max_concurrent_uploads));
        let mut tasks = tokio::task::JoinSet::new();
        // Top layer first, as dockerd starts them.
        for (i, l) in layers.iter().enumerate().rev() {
            let job = LayerPush {
                engine: self.clone(),
                repo: repo.clone(),
                layer: l.clone(),
                sink: sink.clone(),
                slots: slots.clone(),
            };
            tasks.spawn(async move { job.run().await.map(|p| (i, p)) });
        }
        let mut pushed: Vec<Option<PushedLayer>> = vec![None; layers.len()];
        while let Some(res) = tasks.join_next().await {
            match res.map_err(EngineError::internal).and_then(|r| r) {
                Ok((i, p)) => pushed[i] = Some(p),
                Err(e) => {
                    tasks.abort_all();
                    while tasks.join_next().await.is_some() {}
                    return Err(e);
                }
            }
        }
        let pushed: Vec<PushedLayer> = pushed.into_iter().flatten().collect();

        let config = self.images.content().read(&img.id)?;
        if repo.blob_size(&img.id).await.map_err(push_error)?.is_none() {
            repo.push_blob(&img.id, config.clone().into())
                .await
                .map_err(push_error)?;
        }
        let (media_type, bytes) = manifest_for(&img.id, config.len() as u64, &pushed)?;
        let tag_name = tag.tag().unwrap_or("latest");
        let digest = repo
            .put_manifest(tag_name, media_type, bytes.clone().into())
            .await
            .map_err(push_error)?;
        sink.send(JsonMessage::status(format!(
            "{tag_name}: digest: {digest} size: {}",
            bytes.len()
        )))
        .await;
        sink.send(JsonMessage::aux(serde_json::json!({
            "Tag": tag_name,
            "Digest": digest.to_string(),
            "Size": bytes.len(),
        })))
        .await;
        let images = self.images.clone();
        let (id, refs) = (img.id.clone(), vec![tag.with_digest(digest).full()]);
        tokio::task::spawn_blocking(move || images.set_references(&id, &refs))
            .await
            .map_err(EngineError::internal)??;
        self.emit_image(
            &tag.familiar(),
            "push",
            &tag.familiar_repository(),
            crate::images::label_attrs(img),
        );
        Ok(())
    }
}

/// Docker schema 2 unless a layer is zstd (which only OCI manifests can name).
fn manifest_for(
    config: &Digest,
    config_size: u64,
    layers: &[PushedLayer],
) -> Result<(&'static str, Vec<u8>)> {
    let oci = layers.iter().any(|l| l.zstd);
    let (media_type, config_type) = if oci {
        (oci::OCI_MANIFEST, oci::OCI_CONFIG)
    } else {
        (oci::DOCKER_MANIFEST, oci::DOCKER_CONFIG)
    };
    let layer_type = |l: &PushedLayer| match (oci, l.zstd) {
        (_, true) => oci::OCI_LAYER_ZSTD,
        (true, false) => oci::OCI_LAYER_GZIP,
        (false, false) => oci::DOCKER_LAYER_GZIP,
    };
    let m = Manifest {
        schema_version: 2,
        media_type: media_type.to_string(),
        config: Descriptor::new(config_type, config.clone(), config_size),
        layers: layers
            .iter()
            .map(|l| Descriptor::new(layer_type(l), l.digest.clone(), l.size))
            .collect(),
    };
    let bytes = serde_json::to_vec(&m).map_err(EngineError::internal)?;
    Ok((media_type, bytes))
}

/// One layer's way into the repository.
struct LayerPush {
    engine: Arc<Engine>,
    repo: Arc<Repository>,
    layer: LayerRecord,
    sink: ProgressSink,
    slots: Arc<Semaphore>,
}

impl LayerPush {
    fn id(&self) -> String {
        self.layer.diff_id.short().to_string()
    }

    async fn run(self) -> Result<PushedLayer> {
        let id = self.id();
        let _slot = self
            .sink
            .take_slot(&self.slots, &id)
            .await
            .map_err(EngineError::internal)?;
        let (domain, path) = repo_names(&self.repo);
        let stored = self
            .layer
            .blob
            .clone()
            .filter(|b| self.engine.images.content().contains(b));
        let stored_kind = compression_of(&self.layer.blob_media_type);
        // Blobs known to hold this layer on this registry, compressed as a layer must be.
        let sources: Vec<LayerSource> = self
            .engine
            .db
            .layer_sources(&self.layer.diff_id)?
            .into_iter()
            .filter(|s| s.registry == domain)
            .filter(|s| compression_of(&s.media_type) != Compression::None)
            .collect();

        // Already in this repository?
        let mut candidates: Vec<(Digest, bool)> = Vec::new();
        if let (Some(b), Compression::Gzip | Compression::Zstd) = (&stored, stored_kind) {
            candidates.push((b.clone(), stored_kind == Compression::Zstd));
        }
        for s in sources.iter().filter(|s| s.repository == path) {
            let zstd = compression_of(&s.media_type) == Compression::Zstd;
            if !candidates.iter().any(|(d, _)| d == &s.blob) {
                candidates.push((s.blob.clone(), zstd));
            }
        }
        for (digest, zstd) in &candidates {
            if let Some(size) = self.repo.blob_size(digest).await.map_err(push_error)? {
                self.sink
                    .send(JsonMessage::layer("Layer already exists", id.clone()))
                    .await;
                return self.done(digest.clone(), size, *zstd);
            }
        }
        // In another repository of the registry: mount it.
        for s in sources.iter().filter(|s| s.repository != path) {
            match self.repo.mount_blob(&s.blob, &s.repository).await {
                Ok(true) => {
                    self.sink
                        .send(JsonMessage::layer(
                            format!("Mounted from {}", s.repository),
                            id.clone(),
                        ))
                        .await;
                    let zstd = compression_of(&s.media_type) == Compression::Zstd;
                    return self.done(s.blob.clone(), s.size, zstd);
                }
                Ok(false) => {}
                Err(e) => tracing::debug!("mounting {} from {}: {e}", s.blob, s.repository),
            }
        }
        self.upload(stored, stored_kind).await
    }

    async fn upload(&self, stored: Option<Digest>, kind: Compression) -> Result<PushedLayer> {
        let id = self.id();
        let blob = stored.ok_or_else(|| {
            EngineError::Internal(format!(
                "layer {} has no stored archive to push",
                self.layer.diff_id
            ))
        })?;
        let file = self.engine.images.content().open_blob(&blob)?;
        let (stream, zstd) = match kind {
            Compression::Gzip | Compression::Zstd => {
                let size = file.metadata()?.len();
                let progress = LayerProgress::new(self.sink.clone(), &id, "Pushing", size);
                (file_stream(file, progress), kind == Compression::Zstd)
            }
            Compression::None => {
                let progress =
                    LayerProgress::new(self.sink.clone(), &id, "Pushing", self.layer.size);
                (gzip_stream(file, progress), false)
            }
        };
        let (digest, size) = self
            .repo
            .push_blob_stream(stream)
            .await
            .map_err(push_error)?;
        if kind != Compression::None && digest != blob {
            return Err(EngineError::Internal(format!(
                "layer {blob} changed while it was pushed (sent {digest})"
            )));
        }
        self.sink.send(JsonMessage::layer("Pushed", id)).await;
        self.done(digest, size, zstd)
    }

    /// Remembers where the layer now is (the next push finds or mounts it).
    fn done(&self, digest: Digest, size: u64, zstd: bool) -> Result<PushedLayer> {
        let (domain, path) = repo_names(&self.repo);
        let media_type = if zstd {
            oci::OCI_LAYER_ZSTD
        } else {
            oci::DOCKER_LAYER_GZIP
        };
        self.engine.db.add_layer_source(&LayerSource {
            diff_id: self.layer.diff_id.clone(),
            blob: digest.clone(),
            media_type: media_type.into(),
            size,
            registry: domain,
            repository: path,
        })?;
        Ok(PushedLayer { digest, size, zstd })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema2_unless_zstd() {
        let cfg = Digest::from_sha256_bytes(b"cfg");
        let gz = PushedLayer {
            digest: Digest::from_sha256_bytes(b"l1"),
            size: 10,
            zstd: false,
        };
        let (mt, bytes) = manifest_for(&cfg, 5, std::slice::from_ref(&gz)).unwrap();
        assert_eq!(mt, oci::DOCKER_MANIFEST);
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["schemaVersion"], 2);
        assert_eq!(v["mediaType"], oci::DOCKER_MANIFEST);
        assert_eq!(v["config"]["mediaType"], oci::DOCKER_CONFIG);
        assert_eq!(v["config"]["size"], 5);
        assert_eq!(v["layers"][0]["mediaType"], oci::DOCKER_LAYER_GZIP);
        let zs = PushedLayer {
            zstd: true,
            ..gz.clone()
        };
        let (mt, bytes) = manifest_for(&cfg, 5, &[gz, zs]).unwrap();
        assert_eq!(mt, oci::OCI_MANIFEST);
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["config"]["mediaType"], oci::OCI_CONFIG);
        assert_eq!(v["layers"][0]["mediaType"], oci::OCI_LAYER_GZIP);
        assert_eq!(v["layers"][1]["mediaType"], oci::OCI_LAYER_ZSTD);
    }

    #[test]
    fn compression_from_media_types() {
        assert_eq!(compression_of(oci::OCI_LAYER_ZSTD), Compression::Zstd);
        assert_eq!(compression_of(oci::DOCKER_LAYER_GZIP), Compression::Gzip);
        assert_eq!(compression_of(oci::OCI_LAYER_TAR), Compression::None);
    }
}

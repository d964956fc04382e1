//! `docker commit`: a container's changes become one new layer on top of its image.

use std::io::{Read, Seek};

use berth_store::{Digest, ImageRecord};

use crate::config::{ContainerConfig, History, ImageConfig};
use crate::error::ImageError;
use crate::ingest::Rollback;
use crate::service::{Image, ImageService};

/// Everything of the new image besides its layer.
#[derive(Debug, Clone, Default)]
pub struct CommitRequest {
    /// The new image's config (the container's, with the request's overrides and changes).
    pub config: ContainerConfig,
    pub author: String,
    pub comment: String,
    /// The history line, dockerd's: the container's command.
    pub created_by: String,
    pub container_id: String,
    /// The container's own config, kept as `container_config` as dockerd does.
    pub container_config: serde_json::Value,
    /// "repo[:tag]" to tag the image with.
    pub reference: Option<String>,
    /// Store the layer without syncing the file system: a build syncs once for all its
    /// steps instead of once per step.
    pub defer_sync: bool,
    /// The layer already extracted: an overlay upper holding exactly what the tar holds,
    /// which becomes the layer's directory (moved, not copied) instead of the tar being
    /// extracted again. Implies `defer_sync`.
    pub upper: Option<std::path::PathBuf>,
}

impl ImageService {
    /// Stores `layer` (an uncompressed layer tar) on top of `parent` and records the image.
    pub fn commit_layer(
        &self,
        parent: &Image,
        layer: impl Read + Seek,
        req: CommitRequest,
    ) -> Result<Image, ImageError> {
        // Refused before a byte is stored.
        let tag = req
            .reference
            .as_deref()
            .filter(|r| !r.is_empty())
            .map(Self::tag_target)
            .transpose()?;
        let mut rb = Rollback::new();
        let res = self.commit_inner(parent, layer, req, tag, &mut rb);
        rb.run(self);
        res
    }

    fn commit_inner(
        &self,
        parent: &Image,
        layer: impl Read + Seek,
        req: CommitRequest,
        tag: Option<crate::Reference>,
        rb: &mut Rollback,
    ) -> Result<Image, ImageError> {
        let rec = match &req.upper {
            Some(upper) => self.ingest_upper(parent.layers.last(), layer, upper, rb)?,
            None => {
                self.ingest_layer(parent.layers.last(), layer, None, None, req.defer_sync, rb)?
            }
        };
        let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let mut config = parent.config.clone();
        config.created = Some(created.clone());
        config.author = Some(req.author.clone()).filter(|a| !a.is_empty());
        config.config = Some(req.config);
        config.rootfs.diff_ids.push(rec.diff_id.clone());
        config.history.push(History {
            created: Some(created),
            created_by: Some(req.created_by),
            author: Some(req.author).filter(|a| !a.is_empty()),
            comment: Some(req.comment).filter(|c| !c.is_empty()),
            empty_layer: false,
        });
        config.extra.insert(
            "container".into(),
            serde_json::Value::String(req.container_id),
        );
        config
            .extra
            .insert("container_config".into(), req.container_config);
        let bytes =
            serde_json::to_vec(&config).map_err(ImageError::json("committed image config"))?;
        let id = self.content().put_bytes(&bytes)?;
        rb.blob(id.clone());
        let mut layers = parent.layers.clone();
        layers.push(rec.chain_id.clone());
        let record = ImageRecord {
            id: id.clone(),
            layers,
            manifest_digest: None,
            size: parent.size + rec.size,
            added_at: chrono::Utc::now().timestamp(),
        };
        let tags: Vec<String> = tag.iter().map(|t| t.full()).collect();
        self.commit(&[rec], &record, &tags)?;
        rb.disarm();
        tracing::info!(%id, "committed image");
        self.image_by_id(&id)
    }

    /// Records an image made of layers already stored (a step restored from another image's
    /// history, say): stores `config` and the image's record, its size the sum of its layers.
    /// The layers are checked in the same transaction that records the image, so an image
    /// removed meanwhile either fails this or keeps the layers this image now holds.
    pub fn create_image(
        &self,
        config: &ImageConfig,
        layers: Vec<Digest>,
    ) -> Result<Image, ImageError> {
        let bytes = serde_json::to_vec(config).map_err(ImageError::json("image config"))?;
        let id = self.content().put_bytes(&bytes)?;
        let stored = self.db().transaction(|tx| {
            let mut size = 0;
            for chain in &layers {
                match tx.get_layer(chain)? {
                    Some(l) => size += l.size,
                    None => return Ok(Err(chain.clone())),
                }
            }
            if tx.get_image(&id)?.is_none() {
                tx.put_image(&ImageRecord {
                    id: id.clone(),
                    layers: layers.clone(),
                    manifest_digest: None,
                    size,
                    added_at: chrono::Utc::now().timestamp(),
                })?;
            }
            Ok(Ok(()))
        })?;
        if let Err(chain) = stored {
            // The config blob names nothing yet unless another record already had it.
            if self.db().get_image(&id)?.is_none() {
                let _ = self.content().remove(&id);
            }
            return Err(ImageError::NotFound(format!("layer {chain}")));
        }
        self.image_by_id(&id)
    }
}

//! Making a pulled image visible: its layers are already extracted and verified (the engine
//! downloads and extracts them); the config, the manifest and the records go in here, in one
//! transaction, or not at all.

use berth_store::{Digest, ImageRecord, LayerRecord};

use crate::config::ImageConfig;
use crate::error::ImageError;
use crate::ingest::Rollback;
use crate::service::{Image, ImageService};

/// An image a pull fetched, every layer extracted and recorded in `layers`.
#[derive(Debug, Clone)]
pub struct PulledImage {
    /// The config blob as the registry sent it; its digest is the image id.
    pub config: Vec<u8>,
    pub config_digest: Digest,
    /// The platform manifest (not the index), stored beside the config.
    pub manifest: Vec<u8>,
    pub manifest_digest: Digest,
    /// Base first, one per manifest layer.
    pub layers: Vec<LayerRecord>,
    /// Full references to point at the image: tags (`repo:tag`) and digest references
    /// (`repo@sha256:…`).
    pub references: Vec<String>,
}

impl ImageService {
    /// Stores the config and manifest (each verified against its digest), then records the
    /// layers, the image and its references in one transaction. Returns each reference's
    /// previous target. On error what this call stored goes to `rb`.
    pub fn commit_pulled(
        &self,
        p: &PulledImage,
        rb: &mut Rollback,
    ) -> Result<Vec<Option<Digest>>, ImageError> {
        let config = ImageConfig::from_bytes(&p.config).map_err(ImageError::json(format!(
            "image config {}",
            p.config_digest
        )))?;
        let diff_ids: Vec<&Digest> = p.layers.iter().map(|l| &l.diff_id).collect();
        if config.rootfs.diff_ids.iter().collect::<Vec<_>>() != diff_ids {
            return Err(ImageError::InvalidArgument(format!(
                "image config {} does not describe the layers pulled",
                p.config_digest
            )));
        }
        for (bytes, digest) in [
            (&p.config, &p.config_digest),
            (&p.manifest, &p.manifest_digest),
        ] {
            if !self.content().contains(digest) {
                self.content().put_verified(&bytes[..], digest)?;
                rb.blob(digest.clone());
            }
        }
        let record = ImageRecord {
            id: p.config_digest.clone(),
            layers: p.layers.iter().map(|l| l.chain_id.clone()).collect(),
            manifest_digest: Some(p.manifest_digest.clone()),
            size: p.layers.iter().map(|l| l.size).sum(),
            added_at: chrono::Utc::now().timestamp(),
        };
        let previous = self.commit(&p.layers, &record, &p.references)?;
        rb.disarm();
        tracing::info!(id = %record.id, refs = p.references.len(), "pulled image committed");
        Ok(previous)
    }

    /// Points `references` (tags and digest references, full form) at the existing image `id`
    /// in one transaction; returns each one's previous target.
    pub fn set_references(
        &self,
        id: &Digest,
        references: &[String],
    ) -> Result<Vec<Option<Digest>>, ImageError> {
        Ok(self
            .db()
            .transaction(|tx| references.iter().map(|r| tx.set_tag(r, id)).collect())?)
    }

    /// The image `id` when it is fully present: its record, and every layer extracted.
    pub fn complete_image(&self, id: &Digest) -> Result<Option<Image>, ImageError> {
        let Some(rec) = self.db().get_image(id)? else {
            return Ok(None);
        };
        if !rec.layers.iter().all(|c| self.layers().exists(c)) {
            return Ok(None);
        }
        self.image_by_id(id).map(Some)
    }

    /// The layer records of an image, base first.
    pub fn image_layers(&self, image: &Image) -> Result<Vec<LayerRecord>, ImageError> {
        image
            .layers
            .iter()
            .map(|c| {
                self.db()
                    .get_layer(c)?
                    .ok_or_else(|| ImageError::NotFound(format!("layer {c}")))
            })
            .collect()
    }

    /// Tags (full references, no digest) of the repository `repository` (`domain/path`),
    /// with the image each names.
    pub fn repository_tags(&self, repository: &str) -> Result<Vec<(String, Digest)>, ImageError> {
        let prefix = format!("{repository}:");
        Ok(self
            .db()
            .list_tags()?
            .into_iter()
            .filter(|(r, _)| r.starts_with(&prefix) && !r.contains('@'))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RootFs;
    use berth_store::fixtures::TarBuilder;
    use berth_store::MetadataDb;
    use std::sync::Arc;

    fn svc(root: &std::path::Path) -> ImageService {
        let db = Arc::new(MetadataDb::open(&root.join("berth.db")).unwrap());
        ImageService::open(root, db).unwrap()
    }

    /// A one-layer image as a registry would serve it: gzip layer blob, config, manifest.
    fn pulled(svc: &ImageService, rb: &mut Rollback) -> PulledImage {
        let tar = TarBuilder::new().file("hello", b"world", 0o644).build();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar).unwrap();
        let gz = gz.finish().unwrap();
        let blob = Digest::from_sha256_bytes(&gz);
        svc.content().put_verified(&gz[..], &blob).unwrap();
        rb.blob(blob.clone());
        let layer = svc
            .extract_layer_blob(
                None,
                &blob,
                Some(&Digest::from_sha256_bytes(&tar)),
                false,
                &mut |_| {},
                rb,
            )
            .unwrap();
        let config = serde_json::to_vec(&ImageConfig {
            architecture: "amd64".into(),
            os: "linux".into(),
            rootfs: RootFs {
                type_: "layers".into(),
                diff_ids: vec![layer.diff_id.clone()],
            },
            ..Default::default()
        })
        .unwrap();
        let manifest = b"{\"schemaVersion\":2}".to_vec();
        PulledImage {
            config_digest: Digest::from_sha256_bytes(&config),
            config,
            manifest_digest: Digest::from_sha256_bytes(&manifest),
            manifest,
            layers: vec![layer],
            references: vec![],
        }
    }

    #[test]
    fn commit_records_tags_and_digest_references() {
        let root = tempfile::tempdir().unwrap();
        let svc = svc(root.path());
        let mut rb = Rollback::new();
        let mut p = pulled(&svc, &mut rb);
        p.references = vec![
            "127.0.0.1:5000/x/a:1".into(),
            format!("127.0.0.1:5000/x/a@{}", p.manifest_digest),
        ];
        assert_eq!(svc.commit_pulled(&p, &mut rb).unwrap(), vec![None, None]);
        rb.run(&svc);
        let img = svc.resolve("127.0.0.1:5000/x/a:1").unwrap();
        assert_eq!(img.id, p.config_digest);
        assert_eq!(img.repo_tags, vec!["127.0.0.1:5000/x/a:1"]);
        assert_eq!(
            img.repo_digests,
            vec![format!("127.0.0.1:5000/x/a@{}", p.manifest_digest)]
        );
        assert!(svc.complete_image(&img.id).unwrap().is_some());
        assert_eq!(svc.repository_tags("127.0.0.1:5000/x/a").unwrap().len(), 1);
        // Another repository's tag does not add a digest for it.
        svc.tag("127.0.0.1:5000/x/a:1", "other:2").unwrap();
        let img = svc.resolve("other:2").unwrap();
        assert_eq!(img.repo_digests.len(), 1);

        // Untagging the last tag of x/a drops its digest reference too; other:2 keeps the
        // image.
        let items = svc
            .remove("127.0.0.1:5000/x/a:1", false, false, &|_| None)
            .unwrap();
        assert_eq!(
            items,
            vec![
                crate::DeleteItem::Untagged("127.0.0.1:5000/x/a:1".into()),
                crate::DeleteItem::Untagged(format!("127.0.0.1:5000/x/a@{}", p.manifest_digest)),
            ]
        );
        assert!(svc.resolve("other:2").unwrap().repo_digests.is_empty());
    }

    #[test]
    fn failed_commit_leaves_nothing() {
        let root = tempfile::tempdir().unwrap();
        let svc = svc(root.path());
        let mut rb = Rollback::new();
        let mut p = pulled(&svc, &mut rb);
        // A config that does not hash to its digest is refused, and everything goes.
        p.config.push(b' ');
        assert!(svc.commit_pulled(&p, &mut rb).is_err());
        rb.run(&svc);
        assert!(svc.list().unwrap().is_empty());
        assert!(svc.db().list_layers().unwrap().is_empty());
        assert!(svc.content().list().unwrap().is_empty());
        assert!(svc.layers().list().unwrap().is_empty());
    }
}

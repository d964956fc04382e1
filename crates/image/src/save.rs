//! `docker save`: Docker ≥25's tarball, which is both an OCI image layout
//! (oci-layout, index.json, blobs/) and a docker-archive (manifest.json,
//! repositories) over the same blobs.

use std::collections::{BTreeMap, HashSet};
use std::io::{self, Read, Write};

use berth_store::Digest;

use crate::error::ImageError;
use crate::oci::{self, ArchiveManifestEntry, Descriptor, Index, Manifest};
use crate::reference::{is_full_id, Reference};
use crate::service::ImageService;

struct Selected {
    id: Digest,
    tags: Vec<Reference>,
}

impl ImageService {
    pub fn save(&self, names: &[String], out: impl Write) -> Result<(), ImageError> {
        let selected = self.select_for_save(names)?;
        let mut tw = TarWriter {
            b: tar::Builder::new(out),
            written: HashSet::new(),
        };
        tw.dir("blobs/")?;
        tw.dir("blobs/sha256/")?;

        let mut index = Index {
            schema_version: 2,
            media_type: oci::OCI_INDEX.to_string(),
            manifests: Vec::new(),
        };
        let mut docker_manifest = Vec::new();
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();

        for sel in &selected {
            let rec = self
                .db()
                .get_image(&sel.id)?
                .ok_or_else(|| ImageError::NotFound(sel.id.to_string()))?;
            let config_size = self.content().size(&sel.id)?;
            tw.blob(&sel.id, config_size, self.content().open_blob(&sel.id)?)?;

            let mut layer_descs = Vec::new();
            for chain in &rec.layers {
                let layer = self.db().get_layer(chain)?.ok_or_else(|| {
                    ImageError::InvalidArgument(format!("layer {chain} is not in the database"))
                })?;
                let blob = layer
                    .blob
                    .filter(|b| self.content().contains(b))
                    .ok_or_else(|| {
                        ImageError::InvalidArgument(format!(
                            "layer {chain} has no stored archive to save"
                        ))
                    })?;
                let size = self.content().size(&blob)?;
                tw.blob(&blob, size, self.content().open_blob(&blob)?)?;
                layer_descs.push(Descriptor::new(&layer.blob_media_type, blob, size));
            }

            let manifest = Manifest {
                schema_version: 2,
                media_type: oci::OCI_MANIFEST.to_string(),
                config: Descriptor::new(oci::OCI_CONFIG, sel.id.clone(), config_size),
                layers: layer_descs.clone(),
            };
            let mbytes = serde_json::to_vec(&manifest).map_err(ImageError::json("manifest"))?;
            let mdigest = Digest::from_sha256_bytes(&mbytes);
            tw.blob(&mdigest, mbytes.len() as u64, &mbytes[..])?;

            let desc = |annotations| Descriptor {
                annotations,
                ..Descriptor::new(oci::OCI_MANIFEST, mdigest.clone(), mbytes.len() as u64)
            };
            if sel.tags.is_empty() {
                index.manifests.push(desc(BTreeMap::new()));
            }
            for t in &sel.tags {
                let mut a = BTreeMap::new();
                a.insert(oci::ANNOTATION_CONTAINERD_NAME.to_string(), t.full());
                a.insert(
                    oci::ANNOTATION_REF_NAME.to_string(),
                    t.tag().unwrap_or("latest").to_string(),
                );
                index.manifests.push(desc(a));
                if let Some(top) = layer_descs.last() {
                    repositories
                        .entry(t.familiar_repository())
                        .or_default()
                        .insert(
                            t.tag().unwrap_or("latest").to_string(),
                            top.digest.hex().to_string(),
                        );
                }
            }
            docker_manifest.push(ArchiveManifestEntry {
                config: format!("blobs/sha256/{}", sel.id.hex()),
                repo_tags: if sel.tags.is_empty() {
                    None
                } else {
                    Some(sel.tags.iter().map(Reference::familiar).collect())
                },
                layers: layer_descs
                    .iter()
                    .map(|d| format!("blobs/sha256/{}", d.digest.hex()))
                    .collect(),
            });
        }

        let json = |v: &dyn erased::Json| v.to_vec();
        tw.file("index.json", &json(&index)?)?;
        tw.file("manifest.json", &json(&docker_manifest)?)?;
        tw.file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        if !repositories.is_empty() {
            tw.file("repositories", &json(&repositories)?)?;
        }
        tw.b.finish()?;
        Ok(())
    }

    /// Names to images with the tags to record. A tag saves that tag; a
    /// bare repository saves all its tags; an id saves no tag.
    fn select_for_save(&self, names: &[String]) -> Result<Vec<Selected>, ImageError> {
        let mut out: Vec<Selected> = Vec::new();
        let mut add = |id: Digest, tag: Option<Reference>| match out.iter_mut().find(|s| s.id == id)
        {
            Some(s) => {
                if let Some(t) = tag {
                    if !s.tags.contains(&t) {
                        s.tags.push(t);
                    }
                }
            }
            None => out.push(Selected {
                id,
                tags: tag.into_iter().collect(),
            }),
        };
        for name in names {
            let bare_repo = (!is_full_id(name) && !name.starts_with("sha256:"))
                .then(|| Reference::parse_normalized(name).ok())
                .flatten()
                .filter(|r| r.tag().is_none() && r.digest().is_none());
            if let Some(repo) = bare_repo {
                let mut found = false;
                for (t, id) in self.db().list_tags()? {
                    if let Ok(r) = Reference::parse_normalized(&t) {
                        if r.repository() == repo.repository() && r.digest().is_none() {
                            add(id, Some(r));
                            found = true;
                        }
                    }
                }
                if found {
                    continue;
                }
            }
            let res = self.resolve_inner(name)?;
            add(res.record.id, res.tag);
        }
        Ok(out)
    }
}

mod erased {
    use crate::error::ImageError;

    /// Serialises heterogeneous values through one helper.
    pub trait Json {
        fn to_vec(&self) -> Result<Vec<u8>, ImageError>;
    }

    impl<T: serde::Serialize> Json for T {
        fn to_vec(&self) -> Result<Vec<u8>, ImageError> {
            serde_json::to_vec(self).map_err(ImageError::json("save output"))
        }
    }
}

struct TarWriter<W: Write> {
    b: tar::Builder<W>,
    written: HashSet<Digest>,
}

impl<W: Write> TarWriter<W> {
    fn header(kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h
    }

    fn dir(&mut self, path: &str) -> io::Result<()> {
        let mut h = Self::header(tar::EntryType::Directory, 0, 0o755);
        self.b.append_data(&mut h, path, io::empty())
    }

    fn file(&mut self, path: &str, data: &[u8]) -> io::Result<()> {
        let mut h = Self::header(tar::EntryType::Regular, data.len() as u64, 0o644);
        self.b.append_data(&mut h, path, data)
    }

    /// Writes a blob once, however many images share it.
    fn blob(&mut self, d: &Digest, size: u64, r: impl Read) -> io::Result<()> {
        if !self.written.insert(d.clone()) {
            return Ok(());
        }
        let mut h = Self::header(tar::EntryType::Regular, size, 0o644);
        // take(): a blob growing under us must not corrupt the stream.
        self.b
            .append_data(&mut h, format!("blobs/sha256/{}", d.hex()), r.take(size))
    }
}

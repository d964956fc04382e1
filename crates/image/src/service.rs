//! ImageService: images, tags, import, resolve, history and removal.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_store::{
    ContentStore, Digest, ExtractOptions, ImageRecord, LayerRecord, LayerStore, MetadataDb,
};

use crate::changes::apply_change;
use crate::config::{host_architecture, parse_time, ContainerConfig, History, ImageConfig, RootFs};
use crate::error::ImageError;
use crate::ingest::Rollback;
use crate::reference::{is_full_id, Reference};

/// An image as the engine sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub id: Digest,
    pub config: ImageConfig,
    /// Familiar form, e.g. "busybox:latest".
    pub repo_tags: Vec<String>,
    /// Familiar form, e.g. "busybox@sha256:…".
    pub repo_digests: Vec<String>,
    /// Chain ids, base first.
    pub layers: Vec<Digest>,
    pub size: u64,
    pub added_at: i64,
    pub manifest_digest: Option<Digest>,
}

#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    pub reference: Option<Reference>,
    pub message: Option<String>,
    /// Dockerfile instructions applied to the config (`--change`).
    pub changes: Vec<String>,
    /// "linux/arm64/v8"; defaults to the host.
    pub platform: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedImage {
    pub id: Digest,
    /// Familiar form.
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteItem {
    Untagged(String),
    Deleted(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// Image id, or "<missing>".
    pub id: String,
    pub created: i64,
    pub created_by: String,
    pub tags: Vec<String>,
    pub size: i64,
    pub comment: String,
}

pub struct ImageService {
    data_root: PathBuf,
    content: ContentStore,
    layers: LayerStore,
    db: Arc<MetadataDb>,
    pub(crate) extract_options: ExtractOptions,
}

/// How a name matched an image.
pub(crate) struct Resolved {
    pub record: ImageRecord,
    /// The tag reference the name matched, when it matched by tag.
    pub tag: Option<Reference>,
}

fn now_unix() -> i64 {
    chrono::Utc::now().timestamp()
}

impl ImageService {
    pub fn open(data_root: &Path, db: Arc<MetadataDb>) -> Result<Self, ImageError> {
        Ok(ImageService {
            data_root: data_root.to_path_buf(),
            content: ContentStore::open(data_root)?,
            layers: LayerStore::open(data_root)?,
            db,
            extract_options: ExtractOptions::default(),
        })
    }

    /// Overrides the layer extraction options (device nodes, size limit).
    pub fn set_extract_options(&mut self, opts: ExtractOptions) {
        self.extract_options = opts;
    }

    pub fn content(&self) -> &ContentStore {
        &self.content
    }

    pub fn layers(&self) -> &LayerStore {
        &self.layers
    }

    pub fn db(&self) -> &Arc<MetadataDb> {
        &self.db
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.data_root.join("tmp")
    }

    // ---- reading -------------------------------------------------------

    /// Builds the full view of one record, given all tags (one DB read for lists).
    fn build_image(
        &self,
        record: ImageRecord,
        tags: &[(String, Digest)],
    ) -> Result<Image, ImageError> {
        let bytes = self.content.read(&record.id)?;
        let config = ImageConfig::from_bytes(&bytes)
            .map_err(ImageError::json(format!("image config {}", record.id)))?;
        let mut repo_tags = Vec::new();
        let mut repo_digests = Vec::new();
        for (r, _) in tags.iter().filter(|(_, id)| id == &record.id) {
            let Ok(r) = Reference::parse_normalized(r) else {
                continue;
            };
            // RepoDigests are the digest references a pull, push or OCI load recorded, as
            // dockerd's reference store keeps them; a tag alone names no registry digest.
            match r.digest() {
                Some(d) => repo_digests.push(format!("{}@{d}", r.familiar_repository())),
                None => repo_tags.push(r.familiar()),
            }
        }
        repo_tags.sort();
        repo_digests.sort();
        repo_digests.dedup();
        Ok(Image {
            id: record.id,
            config,
            repo_tags,
            repo_digests,
            layers: record.layers,
            size: record.size,
            added_at: record.added_at,
            manifest_digest: record.manifest_digest,
        })
    }

    pub(crate) fn image_by_id(&self, id: &Digest) -> Result<Image, ImageError> {
        let rec = self
            .db
            .get_image(id)?
            .ok_or_else(|| ImageError::NotFound(id.to_string()))?;
        self.build_image(rec, &self.db.list_tags()?)
    }

    pub fn list(&self) -> Result<Vec<Image>, ImageError> {
        let tags = self.db.list_tags()?;
        self.db
            .list_images()?
            .into_iter()
            .map(|r| self.build_image(r, &tags))
            .collect()
    }

    /// Finds an image by tag, id, id prefix or digest reference.
    pub fn resolve(&self, name: &str) -> Result<Image, ImageError> {
        let r = self.resolve_inner(name)?;
        self.build_image(r.record, &self.db.list_tags()?)
    }

    pub(crate) fn resolve_inner(&self, name: &str) -> Result<Resolved, ImageError> {
        let not_found = || ImageError::NotFound(name.to_string());
        let by_id = |rec: Option<ImageRecord>| {
            rec.map(|record| Resolved { record, tag: None })
                .ok_or_else(not_found)
        };
        if let Some(hex) = name.strip_prefix("sha256:") {
            if is_full_id(hex) {
                return by_id(self.db.get_image(&Digest::from_hex(hex)?)?);
            }
            return by_id(self.find_by_prefix(hex)?);
        }
        if is_full_id(name) {
            return by_id(self.db.get_image(&Digest::from_hex(name)?)?);
        }
        if let Ok(r) = Reference::parse_normalized(name) {
            if let Some(d) = r.digest() {
                if let Some(id) = self.db.get_tag(&r.full())? {
                    return by_id(self.db.get_image(&id)?);
                }
                let found = self
                    .db
                    .list_images()?
                    .into_iter()
                    .find(|i| i.manifest_digest.as_ref() == Some(d));
                return by_id(found);
            }
            let r = r.with_default_tag();
            if let Some(id) = self.db.get_tag(&r.full())? {
                if let Some(record) = self.db.get_image(&id)? {
                    return Ok(Resolved {
                        record,
                        tag: Some(r),
                    });
                }
            }
        }
        // Docker accepts any unique prefix of the hex id.
        by_id(self.find_by_prefix(name)?)
    }

    fn find_by_prefix(&self, prefix: &str) -> Result<Option<ImageRecord>, ImageError> {
        if prefix.is_empty()
            || !prefix
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Ok(None);
        }
        let mut matches = self
            .db
            .list_images()?
            .into_iter()
            .filter(|i| i.id.hex().starts_with(prefix));
        match (matches.next(), matches.next()) {
            (Some(one), None) => Ok(Some(one)),
            // Ambiguous prefixes find nothing, as in Docker.
            _ => Ok(None),
        }
    }

    /// Full tag references (e.g. "docker.io/library/busybox:latest") of an image.
    pub(crate) fn tags_of(&self, id: &Digest) -> Result<Vec<String>, ImageError> {
        Ok(self
            .db
            .list_tags()?
            .into_iter()
            .filter(|(_, i)| i == id)
            .map(|(r, _)| r)
            .collect())
    }

    pub fn history(&self, name: &str) -> Result<Vec<HistoryEntry>, ImageError> {
        let img = self.resolve(name)?;
        let mut layer_sizes = Vec::new();
        for chain in &img.layers {
            let size = self
                .db
                .get_layer(chain)?
                .map(|l| l.size as i64)
                .unwrap_or(0);
            layer_sizes.push(size);
        }
        let mut sizes = layer_sizes.into_iter();
        let mut out: Vec<HistoryEntry> = img
            .config
            .history
            .iter()
            .map(|h| HistoryEntry {
                id: "<missing>".to_string(),
                created: parse_time(h.created.as_deref()),
                created_by: h.created_by.clone().unwrap_or_default(),
                tags: Vec::new(),
                size: if h.empty_layer {
                    0
                } else {
                    sizes.next().unwrap_or(0)
                },
                comment: h.comment.clone().unwrap_or_default(),
            })
            .collect();
        out.reverse();
        if let Some(top) = out.first_mut() {
            top.id = img.id.to_string();
            top.tags = img.repo_tags.clone();
        }
        Ok(out)
    }

    pub fn layer_dirs(&self, image: &Image) -> Result<Vec<PathBuf>, ImageError> {
        image
            .layers
            .iter()
            .map(|c| {
                let d = self.layers.diff_dir(c);
                if d.is_dir() {
                    Ok(d)
                } else {
                    Err(ImageError::Io(std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        format!("layer {c} of image {} is missing", image.id),
                    )))
                }
            })
            .collect()
    }

    // ---- tags ------------------------------------------------------------

    /// Parses a tag target: normalized, default tag "latest", no digest.
    pub(crate) fn tag_target(target: &str) -> Result<Reference, ImageError> {
        let r = Reference::parse_normalized(target)?;
        if r.digest().is_some() {
            return Err(ImageError::InvalidArgument(
                "refusing to create a tag with a digest reference".to_string(),
            ));
        }
        Ok(r.with_default_tag())
    }

    pub fn tag(&self, source: &str, target: &str) -> Result<(), ImageError> {
        let target = Self::tag_target(target)?;
        let src = self.resolve_inner(source)?;
        self.db.set_tag(&target.full(), &src.record.id)?;
        tracing::info!(image = %src.record.id, tag = %target.full(), "tagged");
        Ok(())
    }

    // ---- import ----------------------------------------------------------

    /// `docker import`: a rootfs tar (plain, gzip or zstd) becomes a one-layer image.
    pub fn import(&self, body: impl Read, opts: ImportOptions) -> Result<Image, ImageError> {
        // Everything that can be refused is checked before a byte is stored.
        let (os, architecture, variant) = parse_platform(opts.platform.as_deref())?;
        let mut cc = ContainerConfig::default();
        for ch in &opts.changes {
            apply_change(&mut cc, ch)?;
        }
        let tag = opts
            .reference
            .as_ref()
            .map(|r| {
                if r.digest().is_some() {
                    Err(ImageError::InvalidArgument(
                        "cannot import digest reference".to_string(),
                    ))
                } else {
                    Ok(r.clone().with_default_tag())
                }
            })
            .transpose()?;

        let mut rb = Rollback::new();
        let res = self.import_inner(body, &opts, cc, os, architecture, variant, tag, &mut rb);
        rb.run(self);
        res
    }

    #[allow(clippy::too_many_arguments)]
    fn import_inner(
        &self,
        body: impl Read,
        opts: &ImportOptions,
        cc: ContainerConfig,
        os: String,
        architecture: String,
        variant: Option<String>,
        tag: Option<Reference>,
        rb: &mut Rollback,
    ) -> Result<Image, ImageError> {
        let layer = self
            .ingest_layer(None, body, None, None, false, rb)
            .map_err(|e| match e {
                ImageError::Store(berth_store::StoreError::InvalidArchive(m)) => {
                    ImageError::InvalidArchive(m)
                }
                e => e,
            })?;
        let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let config = ImageConfig {
            architecture,
            os,
            variant,
            created: Some(created.clone()),
            config: Some(cc),
            rootfs: RootFs {
                type_: "layers".to_string(),
                diff_ids: vec![layer.diff_id.clone()],
            },
            history: vec![History {
                created: Some(created),
                comment: Some(
                    opts.message
                        .clone()
                        .filter(|m| !m.is_empty())
                        .unwrap_or_else(|| "Imported from -".to_string()),
                ),
                ..Default::default()
            }],
            ..Default::default()
        };
        let bytes = serde_json::to_vec(&config).map_err(ImageError::json("new image config"))?;
        let id = self.content.put_bytes(&bytes)?;
        rb.blob(id.clone());
        let record = ImageRecord {
            id: id.clone(),
            layers: vec![layer.chain_id.clone()],
            manifest_digest: None,
            size: layer.size,
            added_at: now_unix(),
        };
        let tags: Vec<String> = tag.iter().map(Reference::full).collect();
        self.commit(&[layer], &record, &tags)?;
        rb.disarm();
        tracing::info!(%id, "imported image");
        self.image_by_id(&id)
    }

    /// One transaction: layers, image, tags. Returns each tag's previous target.
    pub(crate) fn commit(
        &self,
        layers: &[LayerRecord],
        record: &ImageRecord,
        tags: &[String],
    ) -> Result<Vec<Option<Digest>>, ImageError> {
        Ok(self.db.transaction(|tx| {
            for l in layers {
                tx.put_layer(l)?;
            }
            let mut record = record.clone();
            // Loading an image we already have keeps its original date.
            if let Some(old) = tx.get_image(&record.id)? {
                record.added_at = old.added_at;
                record.manifest_digest = record.manifest_digest.or(old.manifest_digest);
            }
            tx.put_image(&record)?;
            tags.iter().map(|t| tx.set_tag(t, &record.id)).collect()
        })?)
    }

    // ---- removal ---------------------------------------------------------

    /// `docker rmi` semantics. `in_use` answers which container (if any) uses an image.
    pub fn remove(
        &self,
        name: &str,
        force: bool,
        noprune: bool,
        in_use: &dyn Fn(&Digest) -> Option<String>,
    ) -> Result<Vec<DeleteItem>, ImageError> {
        let resolved = self.resolve_inner(name)?;
        let id = resolved.record.id.clone();
        let mut refs = self.tags_of(&id)?;
        let using = in_use(&id);
        let short_ctr = |c: &str| c.chars().take(12).collect::<String>();
        let mut items = Vec::new();

        if !is_image_id_prefix(&id, name) {
            // A repository reference was given: untag it first.
            if !force && refs.len() == 1 {
                if let Some(ctr) = &using {
                    return Err(ImageError::Conflict(format!(
                        "unable to remove repository reference \"{name}\" (must force) - container {} is using its referenced image {}",
                        short_ctr(ctr),
                        id.short()
                    )));
                }
            }
            let parsed = Reference::parse_normalized(name)?.with_default_tag();
            if self.db.remove_tag(&parsed.full())? {
                items.push(DeleteItem::Untagged(parsed.familiar()));
            }
            refs = self.tags_of(&id)?;
            if parsed.digest().is_none() {
                refs = self.untag_orphan_digests(&parsed, refs, &mut items)?;
            }
            if !refs.is_empty() {
                return Ok(items);
            }
        }

        if !force {
            if let Some(ctr) = &using {
                return Err(ImageError::Conflict(format!(
                    "unable to delete {} (must be forced) - image is being used by stopped container {}",
                    id.short(),
                    short_ctr(ctr)
                )));
            }
            if refs.len() > 1 {
                return Err(ImageError::Conflict(format!(
                    "unable to delete {} (must be forced) - image is referenced in multiple repositories",
                    id.short()
                )));
            }
        }
        for r in &refs {
            if let Ok(parsed) = Reference::parse_normalized(r) {
                items.push(DeleteItem::Untagged(parsed.familiar()));
            }
        }

        // A container still using the image keeps its layers (its rootfs
        // stacks them), so only an unused image releases layers.
        let release_layers = !noprune && using.is_none();
        let record = resolved.record;
        let removed: Vec<LayerRecord> = self.db.transaction(|tx| {
            tx.delete_image(&id)?;
            let mut removed = Vec::new();
            if release_layers {
                for chain in record.layers.iter().rev() {
                    if tx.layer_in_use(chain)? {
                        continue;
                    }
                    if let Some(l) = tx.get_layer(chain)? {
                        tx.delete_layer(chain)?;
                        removed.push(l);
                    }
                }
            }
            Ok(removed)
        })?;
        // Files go after the commit: the DB never names a missing file.
        let _ = self.content.remove(&id);
        if let Some(m) = &record.manifest_digest {
            let _ = self.content.remove(m);
        }
        items.push(DeleteItem::Deleted(id.to_string()));
        for l in &removed {
            if let Err(e) = self.layers.remove(&l.chain_id) {
                tracing::warn!(chain_id = %l.chain_id, error = %e, "could not remove layer dir");
            }
            if let Some(b) = &l.blob {
                if !self.db.transaction(|tx| tx.blob_in_use(b))? {
                    let _ = self.content.remove(b);
                }
            }
            items.push(DeleteItem::Deleted(l.chain_id.to_string()));
        }
        tracing::info!(%id, layers = removed.len(), "image deleted");
        Ok(items)
    }
}

impl ImageService {
    /// dockerd's rule after untagging `untagged`: when no tag of that repository is left on the
    /// image, its digest references in that repository go too (they only pinned what the tag
    /// named). Returns the references left.
    fn untag_orphan_digests(
        &self,
        untagged: &Reference,
        refs: Vec<String>,
        items: &mut Vec<DeleteItem>,
    ) -> Result<Vec<String>, ImageError> {
        let same_repo = |r: &Reference| r.repository() == untagged.repository();
        let parsed: Vec<(String, Option<Reference>)> = refs
            .into_iter()
            .map(|r| {
                let p = Reference::parse_normalized(&r).ok();
                (r, p)
            })
            .collect();
        let tag_left = parsed.iter().any(|(_, p)| {
            p.as_ref()
                .is_some_and(|p| same_repo(p) && p.digest().is_none())
        });
        if tag_left {
            return Ok(parsed.into_iter().map(|(r, _)| r).collect());
        }
        let mut left = Vec::new();
        for (raw, p) in parsed {
            match p {
                Some(p) if same_repo(&p) && p.digest().is_some() => {
                    if self.db.remove_tag(&raw)? {
                        items.push(DeleteItem::Untagged(p.familiar()));
                    }
                }
                _ => left.push(raw),
            }
        }
        Ok(left)
    }
}

/// Docker's isImageIDPrefix: the name is (a prefix of) the id, with or without "sha256:".
fn is_image_id_prefix(id: &Digest, name: &str) -> bool {
    id.as_str().starts_with(name) || id.hex().starts_with(name)
}

/// "os/arch[/variant]" or the host platform.
fn parse_platform(p: Option<&str>) -> Result<(String, String, Option<String>), ImageError> {
    let Some(p) = p.filter(|p| !p.is_empty()) else {
        return Ok(("linux".into(), host_architecture().into(), None));
    };
    let parts: Vec<&str> = p.split('/').collect();
    let (os, arch, variant) = match parts.as_slice() {
        [os] => (*os, host_architecture(), None),
        [os, arch] => (*os, *arch, None),
        [os, arch, v] => (*os, *arch, Some(v.to_string())),
        _ => {
            return Err(ImageError::InvalidArgument(format!(
                "invalid platform: {p}"
            )))
        }
    };
    if os != "linux" {
        return Err(ImageError::InvalidArgument(format!(
            "operating system is not supported: {os}"
        )));
    }
    Ok((os.to_string(), arch.to_string(), variant))
}

/// Keeps tag order while dropping duplicates.
pub(crate) fn dedup_keep_order(v: &mut Vec<String>) {
    let mut seen = BTreeMap::new();
    v.retain(|s| seen.insert(s.clone(), ()).is_none());
}

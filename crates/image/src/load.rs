//! `docker load`: docker-archive (manifest.json) and OCI image layouts.
//!
//! The outer tarball is unpacked into a temp dir under the data root; its
//! symlinks and hardlinks are never created on disk but kept in a table and
//! resolved lexically inside the archive, so nothing can point outside it.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use berth_store::{Digest, ImageRecord, LayerRecord, LayerStore};

use crate::config::{host_architecture, ImageConfig};
use crate::error::ImageError;
use crate::ingest::Rollback;
use crate::oci::{self, ArchiveManifestEntry, Descriptor, Index, Manifest};
use crate::reference::Reference;
use crate::service::{dedup_keep_order, ImageService, LoadedImage};

fn bad(msg: impl Into<String>) -> ImageError {
    ImageError::InvalidArchive(msg.into())
}

/// Splits an archive path into components; no absolute paths, no "..".
fn clean(raw: &str) -> Result<Vec<String>, ImageError> {
    let p = raw.strip_prefix("./").unwrap_or(raw);
    if p.starts_with('/') {
        return Err(bad(format!("unsafe path in archive: {raw}")));
    }
    let mut out = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err(bad(format!("unsafe path in archive: {raw}"))),
            c => out.push(c.to_string()),
        }
    }
    Ok(out)
}

enum Link {
    /// Relative to the link's directory (or the archive root if absolute).
    Sym(String),
    /// Relative to the archive root.
    Hard(String),
}

/// The unpacked outer archive.
struct Unpacked {
    dir: tempfile::TempDir,
    links: HashMap<Vec<String>, Link>,
}

impl Unpacked {
    fn unpack(body: impl Read, tmp: &Path) -> Result<Unpacked, ImageError> {
        let dir = tempfile::Builder::new().prefix("load-").tempdir_in(tmp)?;
        let (_, stream) = berth_store::compression::decompress(body)?;
        let mut ar = tar::Archive::new(stream);
        let mut links = HashMap::new();
        let mut any = false;
        for entry in ar.entries().map_err(|e| bad(e.to_string()))? {
            let mut entry = entry.map_err(|e| bad(e.to_string()))?;
            any = true;
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let comps = clean(&raw)?;
            if comps.is_empty() {
                continue;
            }
            let kind = entry.header().entry_type();
            let dest = comps
                .iter()
                .fold(dir.path().to_path_buf(), |p, c| p.join(c));
            use tar::EntryType as T;
            match kind {
                T::Directory => fs::create_dir_all(&dest)?,
                T::Regular | T::Continuous => {
                    if let Some(parent) = dest.parent() {
                        fs::create_dir_all(parent)?;
                    }
                    let mut f = File::create(&dest)?;
                    io::copy(&mut entry, &mut f).map_err(|e| bad(e.to_string()))?;
                }
                T::Symlink | T::Link => {
                    let target = entry
                        .link_name_bytes()
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .ok_or_else(|| bad(format!("link without target: {raw}")))?;
                    let link = if kind == T::Symlink {
                        Link::Sym(target)
                    } else {
                        Link::Hard(target)
                    };
                    links.insert(comps, link);
                }
                _ => {}
            }
        }
        if !any {
            return Err(bad("empty archive"));
        }
        Ok(Unpacked { dir, links })
    }

    /// Resolves `rel` through the archive's own links, never leaving it.
    fn resolve(&self, rel: &str) -> Result<PathBuf, ImageError> {
        let mut comps = clean(rel)?;
        let mut hops = 0;
        'restart: loop {
            for i in 1..=comps.len() {
                let Some(link) = self.links.get(&comps[..i]) else {
                    continue;
                };
                hops += 1;
                if hops > 40 {
                    return Err(bad(format!("too many links resolving {rel}")));
                }
                let base: Vec<String> = match link {
                    Link::Sym(t) if !t.starts_with('/') => comps[..i - 1].to_vec(),
                    _ => Vec::new(),
                };
                let target = match link {
                    Link::Sym(t) | Link::Hard(t) => t.trim_start_matches('/'),
                };
                let mut next = base;
                for c in target.split('/') {
                    match c {
                        "" | "." => {}
                        ".." => {
                            if next.pop().is_none() {
                                return Err(bad(format!("link escapes the archive: {rel}")));
                            }
                        }
                        c => next.push(c.to_string()),
                    }
                }
                next.extend_from_slice(&comps[i..]);
                comps = next;
                continue 'restart;
            }
            break;
        }
        Ok(comps
            .iter()
            .fold(self.dir.path().to_path_buf(), |p, c| p.join(c)))
    }

    fn open(&self, rel: &str) -> Result<File, ImageError> {
        let p = self.resolve(rel)?;
        match fs::symlink_metadata(&p) {
            Ok(m) if m.is_file() => Ok(File::open(p)?),
            _ => Err(bad(format!("{rel}: no such file in archive"))),
        }
    }

    fn read(&self, rel: &str) -> Result<Vec<u8>, ImageError> {
        let mut v = Vec::new();
        self.open(rel)?.read_to_end(&mut v)?;
        Ok(v)
    }

    fn exists(&self, rel: &str) -> bool {
        self.resolve(rel).map(|p| p.is_file()).unwrap_or(false)
    }

    fn blob_path(d: &Digest) -> String {
        format!("blobs/sha256/{}", d.hex())
    }
}

/// One image to bring in, whatever the archive format.
struct Pending<'a> {
    config_bytes: Vec<u8>,
    /// Where each layer archive is, and its digest when the format gives it.
    layers: Vec<(String, Option<Digest>)>,
    tags: Vec<Reference>,
    manifest: Option<(Digest, Vec<u8>)>,
    archive: &'a Unpacked,
}

impl ImageService {
    pub fn load(
        &self,
        body: impl Read,
        progress: &mut dyn FnMut(&str),
    ) -> Result<Vec<LoadedImage>, ImageError> {
        let un = Unpacked::unpack(body, &self.tmp_dir())?;
        let pending = if un.exists("manifest.json") {
            self.docker_archive(&un)?
        } else if un.exists("index.json") {
            self.oci_layout(&un)?
        } else {
            return Err(bad(
                "neither manifest.json nor index.json found (not a docker-archive or OCI layout)",
            ));
        };
        let mut out = Vec::new();
        for p in pending {
            out.push(self.load_one(p, progress)?);
        }
        Ok(out)
    }

    fn docker_archive<'a>(&self, un: &'a Unpacked) -> Result<Vec<Pending<'a>>, ImageError> {
        let entries: Vec<ArchiveManifestEntry> = serde_json::from_slice(&un.read("manifest.json")?)
            .map_err(ImageError::json("manifest.json"))?;
        let mut out = Vec::new();
        for e in entries {
            let mut tags = Vec::new();
            for t in e.repo_tags.unwrap_or_default() {
                tags.push(Self::tag_target(&t)?);
            }
            out.push(Pending {
                config_bytes: un.read(&e.config)?,
                layers: e.layers.into_iter().map(|l| (l, None)).collect(),
                tags,
                manifest: None,
                archive: un,
            });
        }
        Ok(out)
    }

    fn oci_layout<'a>(&self, un: &'a Unpacked) -> Result<Vec<Pending<'a>>, ImageError> {
        let index: Index = serde_json::from_slice(&un.read("index.json")?)
            .map_err(ImageError::json("index.json"))?;
        // Several descriptors may name the same manifest under different tags.
        let mut by_manifest: Vec<(Descriptor, Vec<Reference>)> = Vec::new();
        for d in index.manifests {
            let names = names_from_annotations(&d);
            let Some(m) = self.pick_manifest(un, d, 0)? else {
                continue;
            };
            match by_manifest.iter_mut().find(|(x, _)| x.digest == m.digest) {
                Some((_, tags)) => tags.extend(names),
                None => by_manifest.push((m, names)),
            }
        }
        let mut out = Vec::new();
        for (desc, mut tags) in by_manifest {
            tags.dedup();
            let bytes = un.read(&Unpacked::blob_path(&desc.digest))?;
            verify(&desc.digest, &bytes)?;
            let m: Manifest = serde_json::from_slice(&bytes)
                .map_err(ImageError::json(format!("manifest {}", desc.digest)))?;
            let config_bytes = un.read(&Unpacked::blob_path(&m.config.digest))?;
            verify(&m.config.digest, &config_bytes)?;
            out.push(Pending {
                config_bytes,
                layers: m
                    .layers
                    .iter()
                    .map(|l| (Unpacked::blob_path(&l.digest), Some(l.digest.clone())))
                    .collect(),
                tags,
                manifest: Some((desc.digest, bytes)),
                archive: un,
            });
        }
        if out.is_empty() {
            return Err(bad("index.json names no image for this platform"));
        }
        Ok(out)
    }

    /// Follows nested indexes down to one image manifest for this host.
    fn pick_manifest(
        &self,
        un: &Unpacked,
        d: Descriptor,
        depth: usize,
    ) -> Result<Option<Descriptor>, ImageError> {
        if depth > 8 {
            return Err(bad("indexes nested too deeply"));
        }
        match d.media_type.as_str() {
            oci::OCI_MANIFEST | oci::DOCKER_MANIFEST => Ok(Some(d)),
            oci::OCI_INDEX | oci::DOCKER_MANIFEST_LIST => {
                let bytes = un.read(&Unpacked::blob_path(&d.digest))?;
                verify(&d.digest, &bytes)?;
                let idx: Index = serde_json::from_slice(&bytes)
                    .map_err(ImageError::json(format!("index {}", d.digest)))?;
                let arch = host_architecture();
                let wanted = idx.manifests.iter().position(|m| {
                    m.platform
                        .as_ref()
                        .is_some_and(|p| p.os == "linux" && p.architecture == arch)
                });
                let pick = match wanted {
                    Some(i) => Some(i),
                    // A single platform-less entry is taken as is.
                    None if idx.manifests.len() == 1 && idx.manifests[0].platform.is_none() => {
                        Some(0)
                    }
                    None => None,
                };
                match pick {
                    Some(i) => self.pick_manifest(un, idx.manifests[i].clone(), depth + 1),
                    None => Err(bad(format!(
                        "no matching manifest for linux/{arch} in the manifest list entries"
                    ))),
                }
            }
            other => {
                tracing::debug!(media_type = other, "skipping unknown descriptor in index");
                Ok(None)
            }
        }
    }

    fn load_one(
        &self,
        p: Pending<'_>,
        progress: &mut dyn FnMut(&str),
    ) -> Result<LoadedImage, ImageError> {
        let config = ImageConfig::from_bytes(&p.config_bytes)
            .map_err(|e| bad(format!("invalid image config: {e}")))?;
        let diff_ids = &config.rootfs.diff_ids;
        if diff_ids.len() != p.layers.len() {
            return Err(bad(format!(
                "invalid manifest, layers length mismatch: expected {}, got {}",
                diff_ids.len(),
                p.layers.len()
            )));
        }
        let mut rb = Rollback::new();
        let res = self.load_layers_and_commit(&p, diff_ids, &mut rb);
        rb.run(self);
        let (id, previous) = res?;

        let mut tags: Vec<String> = p.tags.iter().map(Reference::familiar).collect();
        dedup_keep_order(&mut tags);
        for (t, prev) in p.tags.iter().zip(previous) {
            if let Some(old) = prev.filter(|old| old != &id) {
                progress(&format!(
                    "The image {} already exists, renaming the old one with ID {old} to empty string",
                    t.familiar()
                ));
            }
        }
        if tags.is_empty() {
            progress(&format!("Loaded image ID: {id}"));
        }
        for t in &tags {
            progress(&format!("Loaded image: {t}"));
        }
        Ok(LoadedImage { id, tags })
    }

    fn load_layers_and_commit(
        &self,
        p: &Pending<'_>,
        diff_ids: &[Digest],
        rb: &mut Rollback,
    ) -> Result<(Digest, Vec<Option<Digest>>), ImageError> {
        let mut records: Vec<LayerRecord> = Vec::new();
        let mut parent: Option<Digest> = None;
        for ((path, blob_digest), diff_id) in p.layers.iter().zip(diff_ids) {
            let chain = LayerStore::chain_id(parent.as_ref(), diff_id);
            let rec = match self.known_layer(&chain)? {
                Some(rec) => rec,
                None => {
                    let f = p.archive.open(path)?;
                    self.ingest_layer(
                        parent.as_ref(),
                        f,
                        blob_digest.as_ref(),
                        Some(diff_id),
                        false,
                        rb,
                    )
                    .map_err(|e| match e {
                        ImageError::Store(berth_store::StoreError::InvalidArchive(m))
                        | ImageError::Store(berth_store::StoreError::UnsafePath(m)) => {
                            bad(format!("layer {path}: {m}"))
                        }
                        ImageError::Store(berth_store::StoreError::DigestMismatch {
                            expected,
                            actual,
                        }) => bad(format!(
                            "layer {path}: digest mismatch: expected {expected}, got {actual}"
                        )),
                        e => e,
                    })?
                }
            };
            parent = Some(chain);
            records.push(rec);
        }
        let id = self.content().put_bytes(&p.config_bytes)?;
        rb.blob(id.clone());
        let manifest_digest = match &p.manifest {
            Some((d, bytes)) => {
                self.content().put_verified(&bytes[..], d)?;
                rb.blob(d.clone());
                Some(d.clone())
            }
            None => None,
        };
        let record = ImageRecord {
            id: id.clone(),
            layers: records.iter().map(|r| r.chain_id.clone()).collect(),
            manifest_digest,
            size: records.iter().map(|r| r.size).sum(),
            added_at: chrono::Utc::now().timestamp(),
        };
        let mut tags: Vec<String> = p.tags.iter().map(Reference::full).collect();
        // An OCI layout names its manifests by digest: each name is pinned to it as a pull
        // would pin it (after the tags, so that `previous` lines up with `p.tags`).
        if let Some((md, _)) = &p.manifest {
            tags.extend(p.tags.iter().map(|t| t.with_digest(md.clone()).full()));
        }
        let previous = self.commit(&records, &record, &tags)?;
        rb.disarm();
        tracing::info!(%id, tags = tags.len(), "loaded image");
        Ok((id, previous))
    }
}

fn verify(expected: &Digest, bytes: &[u8]) -> Result<(), ImageError> {
    let actual = Digest::from_sha256_bytes(bytes);
    if &actual != expected {
        return Err(bad(format!(
            "digest mismatch: expected {expected}, got {actual}"
        )));
    }
    Ok(())
}

/// Image names an index descriptor carries: containerd's full name, or an
/// OCI ref.name that is a full reference (a bare tag names no repository).
fn names_from_annotations(d: &Descriptor) -> Vec<Reference> {
    let parse = |s: &str| {
        Reference::parse_normalized(s)
            .ok()
            .filter(|r| r.digest().is_none())
            .map(Reference::with_default_tag)
    };
    if let Some(r) = d
        .annotations
        .get(oci::ANNOTATION_CONTAINERD_NAME)
        .and_then(|s| parse(s))
    {
        return vec![r];
    }
    match d.annotations.get(oci::ANNOTATION_REF_NAME) {
        Some(s) if s.contains('/') || s.contains(':') => parse(s).into_iter().collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_rejects_traversal() {
        assert!(clean("../x").is_err());
        assert!(clean("/x").is_err());
        assert_eq!(clean("./a//b/").unwrap(), vec!["a", "b"]);
    }
}

//! Build contexts kept between builds, so a client that sends its file list first only
//! uploads what changed (BuildKit's local-source sync, over two plain HTTP requests).
//!
//! Berth's CLI posts the context's manifest (path, type, mode, size, mtime, link target) to
//! `POST /build/context` with a key naming its context directory; the daemon compares it with
//! the tree it kept for that key and answers a session and the paths it needs. The build then
//! names the session (`berthsession`) and its body is a tar of those paths alone. The kept tree
//! is brought to the manifest, checked against it by a walk that never follows a symlink, and
//! the build runs on it under a per-key lock. Anything unexpected (a concurrent build changed
//! the tree, a walk that disagrees) wipes the tree and answers 409, and the CLI starts over.

use super::context::Context;
use crate::error::{EngineError, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a compared manifest waits for its build.
const SESSION_TTL: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
}

/// One path of a client's context, as its CLI saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    pub path: String,
    #[serde(rename = "type")]
    pub kind: EntryKind,
    /// Permission and special bits.
    pub mode: u32,
    #[serde(default)]
    pub size: u64,
    /// Nanoseconds since the epoch.
    pub mtime: i64,
    #[serde(default)]
    pub link: String,
    /// Written too recently for its mtime to prove it unchanged: always sent.
    #[serde(default)]
    pub racy: bool,
}

impl ManifestEntry {
    fn same_as(&self, other: &ManifestEntry) -> bool {
        !self.racy
            && self.kind == other.kind
            && self.mode == other.mode
            && self.size == other.size
            && self.mtime == other.mtime
            && self.link == other.link
    }
}

/// The answer to a manifest: the session the build names, and the paths its tar must hold.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncAnswer {
    pub session: String,
    pub need: Vec<String>,
}

/// What the daemon knows of a kept tree: each path's manifest entry, and for files the
/// inode it has in the tree and its content digest.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Index {
    entries: BTreeMap<String, Indexed>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Indexed {
    entry: ManifestEntry,
    #[serde(default)]
    ino: u64,
    #[serde(default)]
    digest: Option<String>,
}

struct Pending {
    key: String,
    manifest: Vec<ManifestEntry>,
    need: HashSet<String>,
    at: Instant,
}

fn sessions() -> &'static Mutex<HashMap<String, Pending>> {
    static S: OnceLock<Mutex<HashMap<String, Pending>>> = OnceLock::new();
    S.get_or_init(Default::default)
}

/// One lock per kept tree (by its directory): a build holds it from applying the upload to
/// its end.
fn tree_lock(dir: &Path) -> Arc<tokio::sync::Mutex<()>> {
    static L: OnceLock<Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>> = OnceLock::new();
    let mut m = L
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    m.entry(dir.to_path_buf()).or_default().clone()
}

fn bad(e: impl std::fmt::Display) -> EngineError {
    EngineError::InvalidArgument(e.to_string())
}

fn changed() -> EngineError {
    EngineError::Conflict(
        "the kept build context changed since it was compared; send the context again".into(),
    )
}

/// Where the kept trees live.
pub(crate) fn contexts_dir(data_root: &Path) -> PathBuf {
    data_root.join("build").join("contexts")
}

/// The kept tree of a client key (hashed: the key is the client's business).
fn key_dir(data_root: &Path, key: &str) -> PathBuf {
    use sha2::Digest as _;
    contexts_dir(data_root).join(hex::encode(sha2::Sha256::digest(key.as_bytes())))
}

fn load_index(dir: &Path) -> Index {
    std::fs::read(dir.join("index.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn check_manifest(manifest: &[ManifestEntry]) -> Result<()> {
    let mut seen = HashSet::new();
    for e in manifest {
        let clean = super::context::clean(&e.path);
        if clean.as_deref() != Some(e.path.as_str()) || e.path.is_empty() {
            return Err(bad(format!(
                "invalid context path in manifest: {:?}",
                e.path
            )));
        }
        if !seen.insert(e.path.as_str()) {
            return Err(bad(format!(
                "duplicate context path in manifest: {}",
                e.path
            )));
        }
    }
    Ok(())
}

/// Compares a client's manifest with the tree kept for `key`.
pub(crate) fn compare(
    data_root: &Path,
    key: &str,
    manifest: Vec<ManifestEntry>,
) -> Result<SyncAnswer> {
    if key.is_empty() {
        return Err(bad("a build context key is required"));
    }
    check_manifest(&manifest)?;
    let index = load_index(&key_dir(data_root, key));
    let need: Vec<String> = manifest
        .iter()
        .filter(|e| {
            !index
                .entries
                .get(&e.path)
                .is_some_and(|i| e.same_as(&i.entry))
        })
        .map(|e| e.path.clone())
        .collect();
    let session = hex::encode(rand::random::<[u8; 16]>());
    let mut s = sessions().lock().unwrap_or_else(|e| e.into_inner());
    s.retain(|_, p| p.at.elapsed() < SESSION_TTL);
    s.insert(
        session.clone(),
        Pending {
            key: key.to_string(),
            manifest,
            need: need.iter().cloned().collect(),
            at: Instant::now(),
        },
    );
    Ok(SyncAnswer { session, need })
}

/// The build's context from a session's upload (`upload`: the tar of the needed paths),
/// applied to the kept tree, which stays locked while the context lives.
pub(crate) async fn open(
    data_root: &Path,
    session: &str,
    mut upload: impl Read + Send + 'static,
) -> Result<Context> {
    let pending = sessions()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(session);
    let Some(pending) = pending else {
        tokio::task::spawn_blocking(move || super::context::drain(&mut upload))
            .await
            .map_err(EngineError::internal)?;
        return Err(bad(format!(
            "unknown or expired build context session {session}"
        )));
    };
    let dir = key_dir(data_root, &pending.key);
    let guard = tree_lock(&dir).lock_owned().await;
    tokio::task::spawn_blocking(move || {
        let res = apply(&dir, &pending, &mut upload);
        if res.is_err() {
            super::context::drain(&mut upload);
            // Whatever state it is in, it is not one the index describes.
            let _ = std::fs::remove_dir_all(&dir);
        }
        let digests = res?;
        Ok(Context::kept(dir.join("tree"), digests, guard))
    })
    .await
    .map_err(EngineError::internal)?
}

/// Brings `dir/tree` to the pending manifest; returns its files' digests by inode.
fn apply(
    dir: &Path,
    pending: &Pending,
    upload: &mut impl Read,
) -> Result<berth_store::ContentDigests> {
    let tree = dir.join("tree");
    std::fs::create_dir_all(&tree)?;
    let index = load_index(dir);
    // What was not sent must still be what the client described (another build of the same
    // key may have changed the tree since the comparison).
    let wanted: HashMap<&str, &ManifestEntry> = pending
        .manifest
        .iter()
        .map(|e| (e.path.as_str(), e))
        .collect();
    for e in &pending.manifest {
        if !pending.need.contains(&e.path)
            && !index
                .entries
                .get(&e.path)
                .is_some_and(|i| e.same_as(&i.entry))
        {
            return Err(changed());
        }
    }
    // Paths the client no longer has, or whose type changed, go first: the walk visits real
    // directories only, so nothing outside the tree is reached.
    let mut gone = Vec::new();
    super::context::walk(&tree, "", &mut |p: &str, md: &std::fs::Metadata| {
        let keep = wanted.get(p).is_some_and(|e| e.kind == kind_of(md));
        if !keep {
            gone.push((p.to_string(), md.is_dir()));
        }
        keep
    })?;
    for (p, is_dir) in gone {
        let path = tree.join(&p);
        if is_dir {
            std::fs::remove_dir_all(path)?;
        } else {
            std::fs::remove_file(path)?;
        }
    }
    let root = berth_store::inroot::open_root(&tree)?;
    let root = berth_store::inroot::open_in_root(
        &root,
        ".",
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY,
    )
    .map_err(std::io::Error::from)?;
    let fresh = berth_store::unpack_into_hashed(
        &mut tar::Archive::new(&mut *upload),
        root,
        &berth_store::UnpackOptions::default(),
    )
    .map_err(bad)?;
    std::io::copy(upload, &mut std::io::sink())?;
    // The tree must now be the manifest, path for path.
    let mut found: BTreeMap<String, Indexed> = BTreeMap::new();
    let mut digests = berth_store::ContentDigests::new();
    let mut mismatch = false;
    super::context::walk(&tree, "", &mut |p: &str, md: &std::fs::Metadata| {
        let Some(e) = wanted.get(p) else {
            mismatch = true;
            return false;
        };
        let link = if md.file_type().is_symlink() {
            std::fs::read_link(tree.join(p))
                .map(|l| l.to_string_lossy().into_owned())
                .unwrap_or_default()
        } else {
            String::new()
        };
        let size = if md.is_file() { md.len() } else { e.size };
        if kind_of(md) != e.kind
            || (md.is_file() && size != e.size)
            || link != e.link
            || (e.kind != EntryKind::Symlink && md.permissions().mode() & 0o7777 != e.mode)
        {
            mismatch = true;
            return false;
        }
        // Fresh from this upload, else the one kept for this very file (same inode, not
        // re-sent); a file with neither is hashed when a step reads it.
        let digest: Option<[u8; 32]> = if md.is_file() {
            fresh.get(&md.ino()).copied().or_else(|| {
                index
                    .entries
                    .get(p)
                    .filter(|i| i.ino == md.ino() && !pending.need.contains(p))
                    .and_then(|i| i.digest.as_deref())
                    .and_then(|d| hex::decode(d).ok())
                    .and_then(|d| d.try_into().ok())
            })
        } else {
            None
        };
        if let Some(d) = digest {
            digests.insert(md.ino(), d);
        }
        found.insert(
            p.to_string(),
            Indexed {
                entry: (*e).clone(),
                ino: md.ino(),
                digest: digest.map(hex::encode),
            },
        );
        true
    })?;
    if mismatch || found.len() != wanted.len() {
        return Err(changed());
    }
    write_index(dir, &Index { entries: found })?;
    Ok(digests)
}

/// Takes paths the build removed from a kept tree (an excluded Dockerfile) out of its
/// index, so the next comparison asks for them again.
pub(crate) fn forget(tree: &Path, paths: &[String]) -> Result<()> {
    let Some(dir) = tree.parent() else {
        return Ok(());
    };
    let mut index = load_index(dir);
    for p in paths {
        index.entries.remove(p);
    }
    write_index(dir, &index)
}

fn write_index(dir: &Path, index: &Index) -> Result<()> {
    let json = serde_json::to_vec(index).map_err(EngineError::internal)?;
    let tmp = dir.join("index.json.tmp");
    std::fs::write(&tmp, json)?;
    std::fs::rename(&tmp, dir.join("index.json"))?;
    Ok(())
}

fn kind_of(md: &std::fs::Metadata) -> EntryKind {
    if md.is_dir() {
        EntryKind::Dir
    } else if md.file_type().is_symlink() {
        EntryKind::Symlink
    } else {
        EntryKind::File
    }
}

fn kept_trees(data_root: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(contexts_dir(data_root))
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect()
}

/// A kept tree as `system df` lists it (BuildKit's `source.local` records).
pub struct KeptContext {
    pub id: String,
    pub size: u64,
    /// When a build last used it (its index was written), in seconds.
    pub last_used: i64,
    pub in_use: bool,
}

pub(crate) fn kept_contexts(data_root: &Path) -> Vec<KeptContext> {
    kept_trees(data_root)
        .into_iter()
        .map(|dir| KeptContext {
            id: dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            size: crate::disk_usage::dir_size(&dir),
            last_used: std::fs::metadata(dir.join("index.json"))
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs() as i64),
            in_use: tree_lock(&dir).try_lock().is_err(),
        })
        .collect()
}

/// Removes the kept trees no build is using: their names and the bytes freed.
pub(crate) fn prune(data_root: &Path) -> (Vec<String>, u64) {
    let (mut ids, mut freed) = (Vec::new(), 0);
    for dir in kept_trees(data_root) {
        let lock = tree_lock(&dir);
        let Ok(_g) = lock.try_lock() else { continue };
        let size = crate::disk_usage::dir_size(&dir);
        if std::fs::remove_dir_all(&dir).is_ok() {
            freed += size;
            ids.extend(dir.file_name().map(|n| n.to_string_lossy().into_owned()));
        }
    }
    (ids, freed)
}

//! `berth registry gc`: removes the blobs no manifest of any repository reaches (following
//! indexes to their manifests, manifests to their configs and layers) and the upload sessions
//! left behind. It takes the root's lock, which a running server holds: gc never sweeps
//! under a server that has just accepted a blob a manifest will name next.

use std::collections::HashSet;
use std::path::Path;

use berth_store::{ContentStore, Digest};

use crate::db::Db;
use crate::error::RegistryError;
use crate::manifest;
use crate::storage::RootLock;
use crate::uploads;

#[derive(Debug, Default)]
pub struct GcReport {
    /// Removed (or, in a dry run, removable) blobs and their sizes.
    pub blobs: Vec<(Digest, u64)>,
    /// Removed upload sessions.
    pub uploads: Vec<String>,
    /// Blobs kept.
    pub kept: usize,
    pub dry_run: bool,
}

impl GcReport {
    pub fn bytes(&self) -> u64 {
        self.blobs.iter().map(|(_, n)| n).sum()
    }
}

pub fn gc(root: &Path, dry_run: bool) -> Result<GcReport, RegistryError> {
    let db_path = root.join("registry.db");
    if !db_path.is_file() {
        return Err(RegistryError::Config(format!(
            "{} is not a registry root (no registry.db)",
            root.display()
        )));
    }
    let _lock = RootLock::acquire(root)?;
    let db = Db::open(&db_path)?;
    let content = ContentStore::open(root)?;
    let reachable = mark(&db, &content)?;
    let mut report = GcReport {
        dry_run,
        ..GcReport::default()
    };
    for d in content.list()? {
        if reachable.contains(&d) {
            report.kept += 1;
            continue;
        }
        let size = content.size(&d).unwrap_or(0);
        if !dry_run {
            // Links first: a crash in between leaves a file nobody names (swept next time),
            // never a name without its file.
            db.forget_blob(&d)?;
            content.remove(&d)?;
        }
        report.blobs.push((d, size));
    }
    report.uploads = uploads::sweep_all(&root.join("uploads"), dry_run)
        .map_err(|e| RegistryError::file(root.join("uploads"), e))?;
    if !dry_run {
        if let Ok(entries) = std::fs::read_dir(root.join("tmp")) {
            for e in entries.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    Ok(report)
}

/// Every blob some manifest reaches, the manifests included.
fn mark(db: &Db, content: &ContentStore) -> Result<HashSet<Digest>, RegistryError> {
    let mut reachable = HashSet::new();
    let mut visited = HashSet::new();
    let mut stack = db.reader().all_manifest_digests()?;
    while let Some(m) = stack.pop() {
        if !visited.insert(m.clone()) {
            continue;
        }
        reachable.insert(m.clone());
        // A manifest whose bytes are gone references nothing more.
        let Ok(bytes) = content.read(&m) else {
            continue;
        };
        let (blobs, children) = manifest::references(&bytes);
        reachable.extend(blobs);
        stack.extend(children);
    }
    Ok(reachable)
}

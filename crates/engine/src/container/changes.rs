//! `docker diff`: what a container changed in its filesystem, read from its overlay upper dir.

use crate::error::{EngineError, Result};
use crate::Engine;
use berth_store::upper::{Change, ChangeKind};
use bollard_stubs::models::{ChangeType, FilesystemChange};

/// Paths the runtime creates in the upper dir as mount points (dockerd keeps them in its
/// init layer, so they never show in a diff or a commit), with everything below them.
pub fn runtime_artefact(path: &str) -> bool {
    const EXACT: &[&str] = &[
        "/etc/hosts",
        "/etc/hostname",
        "/etc/resolv.conf",
        "/etc/mtab",
        "/.dockerenv",
    ];
    const TREES: &[&str] = &["/dev", "/proc", "/sys"];
    EXACT.contains(&path)
        || TREES
            .iter()
            .any(|t| path == *t || path.strip_prefix(t).is_some_and(|r| r.starts_with('/')))
}

impl Engine {
    /// The container's changes, sorted by path as dockerd sends them.
    pub(crate) async fn upper_changes(&self, id: &str, image_id: &str) -> Result<Vec<Change>> {
        let image = self.image_by_name(image_id).await?;
        let images = self.images.clone();
        let upper = self.container_dir(id).join("upper");
        tokio::task::spawn_blocking(move || -> Result<Vec<Change>> {
            let lowers = images.layer_dirs(&image)?;
            Ok(berth_store::upper::changes(
                &upper,
                &lowers,
                &runtime_artefact,
            )?)
        })
        .await
        .map_err(EngineError::internal)?
    }

    /// GET /containers/{id}/changes.
    pub async fn container_changes(&self, key: &str) -> Result<Vec<FilesystemChange>> {
        let rec = self.find_container(key)?.snapshot();
        let changes = self.upper_changes(&rec.id, &rec.image_id).await?;
        Ok(changes
            .into_iter()
            .map(|c| FilesystemChange {
                path: c.path,
                kind: match c.kind {
                    ChangeKind::Modified => ChangeType::_0,
                    ChangeKind::Added => ChangeType::_1,
                    ChangeKind::Deleted => ChangeType::_2,
                },
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::runtime_artefact;

    #[test]
    fn artefacts() {
        assert!(runtime_artefact("/etc/hosts"));
        assert!(runtime_artefact("/dev"));
        assert!(runtime_artefact("/dev/shm"));
        assert!(!runtime_artefact("/devices"));
        assert!(!runtime_artefact("/etc/passwd"));
    }
}

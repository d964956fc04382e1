//! Volumes as dockerd has them: named and anonymous `local` volumes under
//! `<data-root>/volumes/<name>/_data`, and every container's mount points (volumes, binds,
//! tmpfs). The filesystem work is `berth-volume`'s; this module decides what exists, who uses
//! it, and keeps the records.

mod attach;
pub(crate) use attach::{bind_fd, open_beneath, uses_volume};
pub mod manage;
mod plan;
pub mod record;

pub use record::{MountPoint, VolumeRecord};

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Mutex, RwLock};

use crate::error::{EngineError, Result};
use crate::Engine;
use berth_volume::VolumeError;

/// The label dockerd (≥ 23) puts on anonymous volumes; `volume prune` without `--all` removes
/// only volumes that carry it.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// The volumes the daemon knows, by name.
#[derive(Default)]
pub struct Volumes {
    records: RwLock<BTreeMap<String, VolumeRecord>>,
    /// Serialises volume creation and removal with container creation and removal, so a volume
    /// cannot be removed between the check that nobody uses it and its deletion.
    pub(crate) lock: tokio::sync::Mutex<()>,
    /// Volumes with `local` driver options whose device is mounted, with their user count.
    mounted: Mutex<HashMap<String, usize>>,
    /// Containers whose mounts are up (between a start and the record of its exit).
    holders: Mutex<HashSet<String>>,
}

impl From<VolumeError> for EngineError {
    fn from(e: VolumeError) -> Self {
        match e {
            VolumeError::Invalid(m) => EngineError::InvalidArgument(m),
            other => EngineError::Internal(other.to_string()),
        }
    }
}

impl Volumes {
    pub fn get(&self, name: &str) -> Option<VolumeRecord> {
        self.read().get(name).cloned()
    }

    pub fn all(&self) -> Vec<VolumeRecord> {
        self.read().values().cloned().collect()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, VolumeRecord>> {
        self.records.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, VolumeRecord>> {
        self.records.write().unwrap_or_else(|p| p.into_inner())
    }

    fn mounted(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.mounted.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn holders(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.holders.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Engine {
    pub(crate) fn volumes_root(&self) -> PathBuf {
        self.cfg.data_root.join("volumes")
    }

    /// The directory a volume's content lives in (`Mountpoint`).
    pub fn volume_data(&self, name: &str) -> PathBuf {
        self.volumes_root().join(name).join("_data")
    }

    /// Loads the volume records and removes volume directories no record names (a crash
    /// between creating one and recording it, or between forgetting one and deleting it).
    pub(crate) async fn open_volumes(&self) -> Result<()> {
        let root = self.volumes_root();
        tokio::fs::create_dir_all(&root).await?;
        let mut records = BTreeMap::new();
        for (name, json) in self.db.list_volumes()? {
            match serde_json::from_str::<VolumeRecord>(&json) {
                Ok(r) => {
                    records.insert(name, r);
                }
                Err(e) => tracing::error!(volume = %name, "unreadable record, skipped: {e}"),
            }
        }
        if let Ok(rd) = std::fs::read_dir(&root) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if !records.contains_key(&name) {
                    tracing::info!(volume = %name, "removing unrecorded volume directory");
                    let _ = berth_volume::local::unmount(&e.path().join("_data"));
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        *self.volumes.write() = records;
        Ok(())
    }

    /// For each volume in use, the IDs of the containers (running or not) whose mount points
    /// use it: one pass over the containers for callers that look at every volume.
    pub(crate) fn volume_users_all(&self) -> HashMap<String, Vec<String>> {
        let mut users: HashMap<String, Vec<String>> = HashMap::new();
        for h in self.containers.all() {
            let mut names: Vec<String> = h
                .snapshot()
                .mounts
                .into_iter()
                .filter_map(|m| m.volume)
                .collect();
            names.sort();
            names.dedup();
            for n in names {
                users.entry(n).or_default().push(h.id.clone());
            }
        }
        users
    }

    /// IDs of the containers (running or not) whose mount points use volume `name`.
    pub(crate) fn volume_users(&self, name: &str) -> Vec<String> {
        self.volume_users_all().remove(name).unwrap_or_default()
    }

    fn persist_volume(&self, rec: &VolumeRecord) -> Result<()> {
        let json = serde_json::to_string(rec).map_err(EngineError::internal)?;
        self.db.put_volume(&rec.name, &json)?;
        Ok(())
    }

    fn emit_volume(&self, name: &str, action: &str, attrs: &[(&str, String)]) {
        let attributes = attrs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        self.emit("volume", action, name, attributes);
    }
}

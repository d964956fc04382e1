//! Volumes as dockerd has them: named and anonymous `local` volumes under
//! `<data-root>/volumes/<name>/_data`, and every container's mount points (volumes, binds,
//! tmpfs). The filesystem work is `berth-volume`'s; this module decides what exists, who uses
//! it, and keeps the records.

pub mod manage;
pub mod record;

pub use record::{MountPoint, VolumeRecord};

use std::collections::BTreeMap;
use std::sync::RwLock;

use crate::error::EngineError;
use berth_volume::VolumeError;

/// The volumes the daemon knows, by name.
#[derive(Default)]
pub struct Volumes {
    records: RwLock<BTreeMap<String, VolumeRecord>>,
    /// Serialises create/remove against container creation's use of a volume.
    lock: tokio::sync::Mutex<()>,
}

impl From<VolumeError> for EngineError {
    fn from(e: VolumeError) -> Self {
        match e {
            VolumeError::Invalid(m) => EngineError::InvalidArgument(m),
            other => EngineError::Internal(other.to_string()),
        }
    }
}

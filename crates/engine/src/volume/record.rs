//! The persisted records: a volume (the `volumes` table) and a container's mount point (in
//! its `ContainerRecord`).

use berth_volume::MountSpec;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VolumeRecord {
    pub name: String,
    /// Always "local" for now.
    pub driver: String,
    pub created_at: DateTime<Utc>,
    pub labels: HashMap<String, String>,
    /// The driver options as given (`type`, `device`, `o`).
    pub options: HashMap<String, String>,
    /// Created for one container without a name (removed with `rm -v`, pruned by default).
    pub anonymous: bool,
}

/// One mount of a container, as planned at create.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MountPoint {
    pub spec: MountSpec,
    /// The volume's name for volume mounts (anonymous ones are named at create).
    #[serde(default)]
    pub volume: Option<String>,
    /// The image's content at the destination is still to be copied into the volume (done at
    /// the first start, once).
    #[serde(default)]
    pub copy_pending: bool,
    /// From `HostConfig.Tmpfs`: mounted, but not listed in inspect's `Mounts` (as dockerd).
    #[serde(default)]
    pub hidden: bool,
}

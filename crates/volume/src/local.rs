//! The `local` driver's options (`docker volume create -o type=tmpfs -o device=tmpfs -o
//! o=size=10m`): without options a volume is a plain directory; with them, the device is
//! mounted on the volume's `_data` directory while at least one container uses it (the engine
//! counts the users), as Docker's local driver does.

use std::collections::HashMap;
use std::path::Path;

/// Validated `local` driver options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalOptions {
    /// Filesystem type (`tmpfs`, `nfs`, `none` for a bind, `ext4`…).
    pub fs_type: String,
    pub device: String,
    /// The `o` option: comma-separated mount options and data (`size=10m,uid=1000`,
    /// `addr=10.0.0.1,rw`, `bind`).
    pub options: String,
}

impl LocalOptions {
    /// `None` for no options (a plain directory). Unknown keys are refused with Docker's
    /// `invalid option: "key"`; `type`/`device` are required together as Docker requires;
    /// an `o=addr=` without a resolvable address is an error at create, as Docker.
    pub fn parse(opts: &HashMap<String, String>) -> crate::Result<Option<LocalOptions>> {
        todo!("{opts:?}")
    }

    /// Mounts the device on `target` (the volume's `_data`).
    pub fn mount(&self, target: &Path) -> crate::Result<()> {
        todo!("{}", target.display())
    }
}

/// Detaches what `LocalOptions::mount` mounted on `target` (lazily, as a busy mount must not
/// keep a container from stopping). Not mounted is not an error.
pub fn unmount(target: &Path) -> crate::Result<()> {
    todo!("{}", target.display())
}

//! A volume's size on disk for `system df -v` (UsageData.Size).

use std::path::Path;

/// Bytes allocated under `dir`, each hard-linked inode counted once, not following symlinks
/// and not crossing into other filesystems mounted below it.
pub fn dir_size(dir: &Path) -> std::io::Result<u64> {
    todo!("{}", dir.display())
}

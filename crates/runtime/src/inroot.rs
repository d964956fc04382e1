//! Opening paths inside a container rootfs as if it were `/`.
//!
//! Image content is untrusted: `/etc/passwd` may be a symlink to the host's
//! `/etc/shadow`. `RESOLVE_IN_ROOT` makes the kernel resolve absolute
//! symlinks and `..` relative to the rootfs, so nothing escapes it.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::OFlags;

/// Opens `path` (interpreted relative to `rootfs`, even if absolute) with
/// `flags`, resolving symlinks inside the rootfs.
pub(crate) fn open_in_root(rootfs: &Path, path: &Path, flags: OFlags) -> io::Result<OwnedFd> {
    let root = berth_store::inroot::open_root(rootfs)?;
    Ok(berth_store::inroot::open_in_root(&root, path, flags)?)
}

/// Reads a whole (small) file from inside the rootfs. `Ok(None)` when it
/// does not exist, which callers treat as "no entries".
pub(crate) fn read_in_root(rootfs: &Path, path: &str) -> io::Result<Option<String>> {
    match open_in_root(rootfs, Path::new(path), OFlags::RDONLY) {
        Ok(fd) => {
            let mut s = String::new();
            // Cap the read: a hostile image could make /etc/passwd huge.
            File::from(fd).take(16 << 20).read_to_string(&mut s)?;
            Ok(Some(s))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

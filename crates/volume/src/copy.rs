//! Copy-up: a new, empty volume mounted over a path that has content in the image starts with
//! a copy of that content (owners, modes, timestamps, symlinks, hard links, devices, fifos,
//! xattrs), as dockerd's `copyExistingContents`.
//!
//! The source is the container's root filesystem, which is untrusted: it is walked by fd with
//! `O_NOFOLLOW`, its path resolved with `RESOLVE_IN_ROOT`, and symlinks are copied as links,
//! never followed. The destination is the engine's own volume directory.

use std::os::fd::BorrowedFd;
use std::path::Path;

/// Copies the tree at `path` (resolved inside `root`) into `dest` when `dest` is empty and
/// `path` is a directory in the container. Returns whether anything was copied. A missing
/// `path`, or one that is not a directory, copies nothing and is not an error. The mode and
/// owner of `path` itself are given to `dest`, as dockerd does.
pub fn copy_up(root: BorrowedFd<'_>, path: &str, dest: &Path) -> crate::Result<bool> {
    todo!("{root:?} {path} {}", dest.display())
}

//! A container's root as `docker cp` sees it: the rootfs with the container's volumes and
//! binds mounted where the container has them (dockerd mounts them for the copy too), built
//! in a throwaway mount namespace owned by one thread, so nothing of it is ever visible on
//! the host and nothing is left behind if the daemon dies mid-copy.

use crate::error::{EngineError, Result};
use crate::volume::{bind_fd, open_beneath};
use berth_store::inroot::{mkdir_all_in_root, open_in_root, open_root};
use rustix::fs::OFlags;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// One mount to make in the view, parents first.
#[derive(Debug, Clone)]
pub struct ViewMount {
    pub source: PathBuf,
    /// A `volume-subpath` below `source`, resolved without symlinks.
    pub subpath: Option<String>,
    pub destination: String,
    pub read_only: bool,
}

fn internal(what: &str, e: impl std::fmt::Display) -> EngineError {
    EngineError::Internal(format!("{what}: {e}"))
}

/// An O_PATH fd of a trusted host path (the engine's own or the user's bind source), file or
/// directory.
fn open_root_any(path: &Path) -> Result<OwnedFd> {
    rustix::fs::open(
        path,
        OFlags::PATH | OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| internal(&path.to_string_lossy(), e))
}

fn mount_one(root: &OwnedFd, m: &ViewMount) -> Result<()> {
    let dest = mkdir_all_in_root(root, &m.destination, !m.source.is_dir())
        .map_err(|e| internal(&m.destination, e))?;
    let target = open_in_root(root, &dest, OFlags::PATH).map_err(|e| internal(&dest, e))?;
    let source = match &m.subpath {
        Some(sub) => open_beneath(&m.source, sub)?,
        None => open_root_any(&m.source)?,
    };
    bind_fd(&source, target.as_fd(), Path::new(""))?;
    if m.read_only {
        // Re-opened so the fd names the new mount, not the directory under it.
        let top = open_in_root(root, &m.destination, OFlags::PATH)
            .map_err(|e| internal(&m.destination, e))?;
        let proc_path = format!("/proc/self/fd/{}", top.as_raw_fd());
        nix::mount::mount(
            None::<&str>,
            proc_path.as_str(),
            None::<&str>,
            nix::mount::MsFlags::MS_BIND
                | nix::mount::MsFlags::MS_REMOUNT
                | nix::mount::MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .map_err(|e| internal(&m.destination, e))?;
    }
    Ok(())
}

/// Runs `f` with the root at `rootfs` (already mounted) opened in a private mount namespace
/// where `mounts` are in place. With no mounts it runs on the calling thread.
pub fn with_view<T, F>(rootfs: &Path, mounts: &[ViewMount], f: F) -> Result<T>
where
    T: Send,
    F: FnOnce(&OwnedFd) -> Result<T> + Send,
{
    if mounts.is_empty() {
        let root = open_root(rootfs)?;
        return f(&root);
    }
    std::thread::scope(|s| {
        s.spawn(|| -> Result<T> {
            // Only this thread's namespace changes; it ends with the thread.
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
                .map_err(|e| internal("unshare", e))?;
            nix::mount::mount(
                None::<&str>,
                "/",
                None::<&str>,
                nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
                None::<&str>,
            )
            .map_err(|e| internal("private /", e))?;
            let root = open_root(rootfs)?;
            for m in mounts {
                mount_one(&root, m)?;
            }
            // Lookups from a root opened before the mounts would not see them.
            let root = open_root(rootfs)?;
            f(&root)
        })
        .join()
        .map_err(|_| EngineError::Internal("copy thread panicked".into()))?
    })
}

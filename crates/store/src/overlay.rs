//! overlayfs root filesystems from layer diff dirs.
//!
//! The new mount API (`fsopen` + one `lowerdir+` per layer) has no limit on
//! the option string, so it takes up to overlayfs' own 500 layers; classic
//! `mount(2)` fits only ~37 absolute 64-hex paths into its one page of data
//! and is the fallback for kernels before 6.8.

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::io::Errno;
use rustix::mount::{
    FsMountFlags, FsOpenFlags, MountAttrFlags, MountFlags, MoveMountFlags, UnmountFlags,
};

use crate::error::StoreError;

/// Mounts an overlay of `lowers` (bottom/base layer FIRST) with `upper` and
/// `work` at `target`. With no layers, an empty dir next to `work` stands in,
/// because overlayfs needs at least one lowerdir.
pub fn mount_rootfs(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
) -> Result<(), StoreError> {
    let err = |source: std::io::Error| StoreError::Mount {
        target: target.to_path_buf(),
        source,
    };
    let mut lowers = lowers.to_vec();
    if lowers.is_empty() {
        let empty = work.with_file_name(format!(
            "{}-empty-lower",
            work.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        ));
        fs::create_dir_all(&empty)?;
        lowers.push(empty);
    }
    // overlayfs lists the TOPMOST lower first, in lowerdir= and lowerdir+ alike.
    let top_first: Vec<&PathBuf> = lowers.iter().rev().collect();
    match mount_new_api(&top_first, upper, work, target) {
        Ok(()) => Ok(()),
        Err(NewApiError::Unsupported(e)) => {
            tracing::debug!(error = %e, "new mount API unavailable, using mount(2)");
            mount_classic(&top_first, upper, work, target).map_err(|e| err(e.into()))
        }
        Err(NewApiError::Failed(e)) => Err(err(e.into())),
    }
}

enum NewApiError {
    /// fsopen or lowerdir+ is missing on this kernel.
    Unsupported(Errno),
    Failed(Errno),
}

fn mount_new_api(
    top_first: &[&PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
) -> Result<(), NewApiError> {
    use NewApiError::*;
    let fs =
        rustix::mount::fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC).map_err(|e| match e {
            Errno::NOSYS | Errno::PERM => Unsupported(e),
            e => Failed(e),
        })?;
    for (i, l) in top_first.iter().enumerate() {
        rustix::mount::fsconfig_set_string(&fs, "lowerdir+", l.as_path()).map_err(|e| {
            // Kernels before 6.8 reject the unknown key on the first try.
            if i == 0 && e == Errno::INVAL {
                Unsupported(e)
            } else {
                Failed(e)
            }
        })?;
    }
    rustix::mount::fsconfig_set_string(&fs, "upperdir", upper).map_err(Failed)?;
    rustix::mount::fsconfig_set_string(&fs, "workdir", work).map_err(Failed)?;
    rustix::mount::fsconfig_create(&fs).map_err(Failed)?;
    let mnt = rustix::mount::fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty())
        .map_err(Failed)?;
    rustix::mount::move_mount(
        &mnt,
        "",
        rustix::fs::CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .map_err(Failed)
}

fn mount_classic(
    top_first: &[&PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
) -> Result<(), Errno> {
    let mut data = b"lowerdir=".to_vec();
    for (i, l) in top_first.iter().enumerate() {
        if i > 0 {
            data.push(b':');
        }
        data.extend_from_slice(l.as_os_str().as_bytes());
    }
    data.extend_from_slice(b",upperdir=");
    data.extend_from_slice(upper.as_os_str().as_bytes());
    data.extend_from_slice(b",workdir=");
    data.extend_from_slice(work.as_os_str().as_bytes());
    let data = CString::new(data).map_err(|_| Errno::INVAL)?;
    rustix::mount::mount(
        "overlay",
        target,
        "overlay",
        MountFlags::empty(),
        data.as_c_str(),
    )
}

/// Lazily detaches the mount at `target`; not being mounted is fine.
pub fn unmount(target: &Path) -> Result<(), StoreError> {
    match rustix::mount::unmount(target, UnmountFlags::DETACH) {
        Ok(()) | Err(Errno::INVAL) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(StoreError::Mount {
            target: target.to_path_buf(),
            source: e.into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::TarBuilder;
    use crate::layers::{ExtractOptions, LayerStore};

    fn is_root() -> bool {
        rustix::process::geteuid().is_root()
    }

    #[test]
    fn three_layers_with_whiteout_and_opaque_dir() {
        if !is_root() {
            eprintln!("skipping: needs root");
            return;
        }
        let root = tempfile::tempdir().unwrap();
        let ls = LayerStore::open(root.path()).unwrap();
        let opts = ExtractOptions::default();
        let l1 = TarBuilder::new()
            .dir("etc", 0o755)
            .file("etc/a", b"a1", 0o644)
            .file("etc/gone", b"x", 0o644)
            .dir("data", 0o755)
            .file("data/old", b"old", 0o644)
            .build();
        let l2 = TarBuilder::new()
            .file("etc/a", b"a2", 0o644)
            .file("etc/.wh.gone", b"", 0o644)
            .build();
        let l3 = TarBuilder::new()
            .dir("data", 0o755)
            .file("data/.wh..wh..opq", b"", 0o644)
            .file("data/new", b"new", 0o644)
            .build();
        let a1 = ls.apply(None, &l1[..], &opts).unwrap();
        let a2 = ls.apply(Some(&a1.chain_id), &l2[..], &opts).unwrap();
        let a3 = ls.apply(Some(&a2.chain_id), &l3[..], &opts).unwrap();
        let lowers: Vec<PathBuf> = [&a1, &a2, &a3]
            .iter()
            .map(|a| ls.diff_dir(&a.chain_id))
            .collect();
        let c = root.path().join("ctr");
        let (upper, work, target) = (c.join("upper"), c.join("work"), c.join("rootfs"));
        for d in [&upper, &work, &target] {
            fs::create_dir_all(d).unwrap();
        }
        mount_rootfs(&lowers, &upper, &work, &target).unwrap();
        let read = |p: &str| fs::read_to_string(target.join(p));
        let r = (
            read("etc/a").unwrap(),
            target.join("etc/gone").exists(),
            target.join("data/old").exists(),
            read("data/new").unwrap(),
        );
        unmount(&target).unwrap();
        assert_eq!(r, ("a2".to_string(), false, false, "new".to_string()));
        // Unmounting again is fine.
        unmount(&target).unwrap();
    }

    #[test]
    fn hundred_layers_and_zero_layers() {
        if !is_root() {
            eprintln!("skipping: needs root");
            return;
        }
        let root = tempfile::tempdir().unwrap();
        let ls = LayerStore::open(root.path()).unwrap();
        let opts = ExtractOptions::default();
        let mut parent = None;
        let mut lowers = Vec::new();
        for i in 0..100 {
            let t = TarBuilder::new()
                .file(&format!("f{i}"), format!("{i}").as_bytes(), 0o644)
                .file("top", format!("{i}").as_bytes(), 0o644)
                .build();
            let a = ls.apply(parent.as_ref(), &t[..], &opts).unwrap();
            lowers.push(ls.diff_dir(&a.chain_id));
            parent = Some(a.chain_id);
        }
        let c = root.path().join("ctr");
        let (upper, work, target) = (c.join("upper"), c.join("work"), c.join("rootfs"));
        for d in [&upper, &work, &target] {
            fs::create_dir_all(d).unwrap();
        }
        mount_rootfs(&lowers, &upper, &work, &target).unwrap();
        let top = fs::read_to_string(target.join("top"));
        let f0 = target.join("f0").exists();
        unmount(&target).unwrap();
        assert_eq!(top.unwrap(), "99");
        assert!(f0);

        let c = root.path().join("empty");
        let (upper, work, target) = (c.join("upper"), c.join("work"), c.join("rootfs"));
        for d in [&upper, &work, &target] {
            fs::create_dir_all(d).unwrap();
        }
        mount_rootfs(&[], &upper, &work, &target).unwrap();
        fs::write(target.join("x"), b"y").unwrap();
        unmount(&target).unwrap();
        assert!(upper.join("x").exists());
    }
}

//! A container's overlay upper dir read as a change set: `docker diff` and the layer
//! `docker commit` makes of it.
//!
//! overlayfs marks a deleted file with a 0/0 character device and a directory that hides
//! everything below it with the xattr `trusted.overlay.opaque=y`; a layer tar says the same
//! with `.wh.<name>` and `.wh..wh..opq` entries.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags, Stat};
use rustix::io::Errno;

use crate::error::StoreError;
use crate::inroot::open_root;
use crate::pack::Packer;

/// dockerd's change kinds, with its numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Modified = 0,
    Added = 1,
    Deleted = 2,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Absolute inside the container: "/etc/passwd".
    pub path: String,
    pub kind: ChangeKind,
}

fn is_whiteout(st: &Stat) -> bool {
    FileType::from_raw_mode(st.st_mode) == FileType::CharacterDevice && st.st_rdev == 0
}

fn is_opaque(dir: BorrowedFd<'_>, name: &OsStr) -> bool {
    let Ok(fd) = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return false;
    };
    let mut buf = [0u8; 4];
    matches!(
        rustix::fs::fgetxattr(&fd, "trusted.overlay.opaque", &mut buf),
        Ok(1) if buf[0] == b'y'
    )
}

/// The per-entry callback of [`walk`]: (parent dir, name, container path, lstat) -> descend?
type Visit<'a> = dyn FnMut(BorrowedFd<'_>, &OsStr, &str, &Stat) -> Result<bool, StoreError> + 'a;

/// Calls `f(parent, name, path, stat)` for every entry below `dir`, names sorted, descending
/// into directories when `f` says so. Only single names are opened, with `O_NOFOLLOW`.
fn walk(dir: &OwnedFd, prefix: &str, f: &mut Visit<'_>) -> Result<(), StoreError> {
    for n in crate::pack::sorted_names(dir)? {
        let name = OsStr::from_bytes(&n);
        let path = format!("{prefix}/{}", String::from_utf8_lossy(&n));
        let st = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => continue,
            Err(e) => return Err(e.into()),
        };
        let descend = f(dir.as_fd(), name, &path, &st)?;
        if descend && FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            match rustix::fs::openat(
                dir,
                name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                Ok(child) => walk(&child, &path, f)?,
                Err(Errno::NOENT) | Err(Errno::LOOP) | Err(Errno::NOTDIR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

/// `lstat` of `path` in a lower layer dir, never following a symlink of that layer.
fn lower_stat(lower: &Path, path: &str) -> Option<Stat> {
    let root = open_root(lower).ok()?;
    let rel = path.trim_start_matches('/');
    let (parent, name) = match rel.rsplit_once('/') {
        Some((p, n)) => (p, n),
        None => (".", rel),
    };
    let dir = rustix::fs::openat2(
        &root,
        parent,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS,
    )
    .ok()?;
    rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW).ok()
}

/// The changes recorded in `upper` relative to `lowers` (any order), sorted by path.
/// `skip(path)` names runtime artefacts (mount points) left out with everything below them.
pub fn changes(
    upper: &Path,
    lowers: &[PathBuf],
    skip: &dyn Fn(&str) -> bool,
) -> Result<Vec<Change>, StoreError> {
    let root = rustix::fs::open(
        upper,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut out: Vec<Change> = Vec::new();
    let mut recorded: BTreeSet<String> = BTreeSet::new();
    // Directories holding a skipped mount point: their mtime moved because of us.
    let mut touched_by_runtime: BTreeSet<String> = BTreeSet::new();
    walk(&root, "", &mut |dir, name, path, st| {
        if skip(path) {
            touched_by_runtime.insert(parent_of(path).to_string());
            return Ok(false);
        }
        let is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
        let kind = if is_whiteout(st) || (is_dir && is_opaque(dir, name)) {
            Some(ChangeKind::Deleted)
        } else {
            match lowers.iter().find_map(|l| lower_stat(l, path)) {
                None => Some(ChangeKind::Added),
                Some(old)
                    if is_dir && FileType::from_raw_mode(old.st_mode) == FileType::Directory =>
                {
                    let same_mode = old.st_mode == st.st_mode;
                    let same_time = old.st_mtime == st.st_mtime && old.st_size == st.st_size;
                    if same_mode && (same_time || touched_by_runtime.contains(path)) {
                        None
                    } else {
                        Some(ChangeKind::Modified)
                    }
                }
                Some(_) => Some(ChangeKind::Modified),
            }
        };
        if let Some(kind) = kind {
            // dockerd records the parent of an added or deleted entry as modified.
            if kind != ChangeKind::Modified {
                let parent = parent_of(path);
                if parent != "/" && recorded.insert(parent.to_string()) {
                    out.push(Change {
                        path: parent.to_string(),
                        kind: ChangeKind::Modified,
                    });
                }
            }
            if recorded.insert(path.to_string()) {
                out.push(Change {
                    path: path.to_string(),
                    kind,
                });
            } else if let Some(c) = out.iter_mut().find(|c| c.path == path) {
                c.kind = kind;
            }
        }
        Ok(true)
    })?;
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// Writes the layer tar of `changes` (from [`changes`]) taken from `upper`: changed entries
/// and the directories leading to them, whiteouts as `.wh.` entries.
pub fn write_layer<W: Write>(upper: &Path, changes: &[Change], out: W) -> Result<W, StoreError> {
    let mut keep: BTreeSet<&str> = BTreeSet::new();
    for c in changes {
        let mut p = c.path.as_str();
        keep.insert(p);
        while p != "/" {
            p = parent_of(p);
            keep.insert(p);
        }
    }
    let root = rustix::fs::open(
        upper,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut packer = Packer::new(out);
    walk(&root, "", &mut |dir, name, path, st| {
        if !keep.contains(path) {
            return Ok(false);
        }
        let rel = path.trim_start_matches('/');
        if is_whiteout(st) {
            let parent = parent_of(rel);
            let wh = match parent {
                "/" => format!(".wh.{}", name.to_string_lossy()),
                p => format!("{p}/.wh.{}", name.to_string_lossy()),
            };
            packer.append_empty(&wh, 0o600, st.st_mtime.max(0) as u64)?;
            return Ok(false);
        }
        packer.append_one(dir, name, rel, st)?;
        let is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
        if is_dir && is_opaque(dir, name) {
            packer.append_empty(
                &format!("{rel}/.wh..wh..opq"),
                0o600,
                st.st_mtime.max(0) as u64,
            )?;
        }
        Ok(is_dir)
    })?;
    packer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> bool {
        rustix::process::geteuid().is_root()
    }

    #[test]
    fn added_modified_deleted_and_layer() {
        if !root() {
            eprintln!("skipping: needs root for whiteout devices");
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let lower = t.path().join("lower");
        let upper = t.path().join("upper");
        std::fs::create_dir_all(lower.join("etc")).unwrap();
        std::fs::create_dir_all(lower.join("bin")).unwrap();
        std::fs::write(lower.join("etc/passwd"), b"root").unwrap();
        std::fs::write(lower.join("bin/gone"), b"x").unwrap();
        // Copy-up keeps the lower dir's attributes.
        std::fs::create_dir_all(upper.join("etc")).unwrap();
        std::fs::create_dir_all(upper.join("bin")).unwrap();
        std::fs::create_dir_all(upper.join("tmp/new")).unwrap();
        std::fs::write(upper.join("etc/passwd"), b"root2").unwrap();
        std::fs::write(upper.join("etc/hosts"), b"").unwrap();
        std::fs::write(upper.join("tmp/new/f"), b"f").unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            upper.join("bin/gone"),
            FileType::CharacterDevice,
            Mode::empty(),
            0,
        )
        .unwrap();
        let skip = |p: &str| p == "/etc/hosts";
        let c = changes(&upper, &[lower], &skip).unwrap();
        let shown: Vec<(String, ChangeKind)> = c.iter().map(|c| (c.path.clone(), c.kind)).collect();
        use ChangeKind::*;
        assert!(shown.contains(&("/bin".into(), Modified)), "{shown:?}");
        assert!(shown.contains(&("/bin/gone".into(), Deleted)), "{shown:?}");
        assert!(
            shown.contains(&("/etc/passwd".into(), Modified)),
            "{shown:?}"
        );
        assert!(shown.contains(&("/tmp".into(), Added)), "{shown:?}");
        assert!(shown.contains(&("/tmp/new/f".into(), Added)), "{shown:?}");
        assert!(!shown.iter().any(|(p, _)| p == "/etc/hosts"), "{shown:?}");

        let tar_bytes = write_layer(&upper, &c, Vec::new()).unwrap();
        let mut a = tar::Archive::new(&tar_bytes[..]);
        let names: Vec<String> = a
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        assert!(names.contains(&"bin/.wh.gone".to_string()), "{names:?}");
        assert!(names.contains(&"etc/passwd".to_string()), "{names:?}");
        assert!(names.contains(&"tmp/new/f".to_string()), "{names:?}");
        assert!(!names.iter().any(|n| n.contains("hosts")), "{names:?}");
    }
}

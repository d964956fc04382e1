//! Paths inside a container's root filesystem, resolved as if that root were `/`.
//!
//! Container content is untrusted: any component of a path the user names may be a symlink
//! to `/etc` or `../../..`. `RESOLVE_IN_ROOT` makes the kernel resolve absolute symlinks and
//! `..` against the root fd, so no lookup can reach the host; `NO_MAGICLINKS` keeps
//! `/proc/self/root`-style links from jumping out.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{openat2, AtFlags, FileType, Mode, OFlags, ResolveFlags, Stat, CWD};
use rustix::io::Errno;

/// Opens a directory on the host (a trusted path: the daemon's own) as a root for lookups.
pub fn open_root(path: &Path) -> io::Result<OwnedFd> {
    Ok(openat2(
        CWD,
        path,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::empty(),
    )?)
}

/// Opens `path` (absolute or not, always taken relative to `root`) with `flags`; every
/// symlink and `..` on the way resolves inside `root`.
pub fn open_in_root(
    root: impl AsFd,
    path: impl AsRef<Path>,
    flags: OFlags,
) -> Result<OwnedFd, Errno> {
    let mut rel = path.as_ref();
    while let Ok(r) = rel.strip_prefix("/") {
        rel = r;
    }
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    openat2(
        root,
        rel,
        flags | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
}

/// Go's `os.FileMode` bits, which the Docker API uses in path stats.
pub mod go_mode {
    pub const DIR: u32 = 1 << 31;
    pub const SYMLINK: u32 = 1 << 27;
    pub const DEVICE: u32 = 1 << 26;
    pub const NAMED_PIPE: u32 = 1 << 25;
    pub const SOCKET: u32 = 1 << 24;
    pub const SETUID: u32 = 1 << 23;
    pub const SETGID: u32 = 1 << 22;
    pub const CHAR_DEVICE: u32 = 1 << 21;
    pub const STICKY: u32 = 1 << 20;
}

/// Converts a `st_mode` into Go's `os.FileMode` as `os.Lstat` reports it.
pub fn go_file_mode(st_mode: u32) -> u32 {
    let mut m = st_mode & 0o777;
    m |= match FileType::from_raw_mode(st_mode) {
        FileType::Directory => go_mode::DIR,
        FileType::Symlink => go_mode::SYMLINK,
        FileType::BlockDevice => go_mode::DEVICE,
        FileType::CharacterDevice => go_mode::DEVICE | go_mode::CHAR_DEVICE,
        FileType::Fifo => go_mode::NAMED_PIPE,
        FileType::Socket => go_mode::SOCKET,
        _ => 0,
    };
    if st_mode & 0o4000 != 0 {
        m |= go_mode::SETUID;
    }
    if st_mode & 0o2000 != 0 {
        m |= go_mode::SETGID;
    }
    if st_mode & 0o1000 != 0 {
        m |= go_mode::STICKY;
    }
    m
}

/// `lstat` of `name` in the directory `dir`; an empty name or "." is the directory itself.
pub fn lstat_at(dir: impl AsFd, name: &[u8]) -> Result<Stat, Errno> {
    if name.is_empty() || name == b"." {
        return rustix::fs::fstat(dir);
    }
    rustix::fs::statat(dir, OsStr::from_bytes(name), AtFlags::SYMLINK_NOFOLLOW)
}

/// The host path an fd refers to, as the kernel names it.
pub fn fd_path(fd: impl AsFd) -> io::Result<std::path::PathBuf> {
    use std::os::fd::AsRawFd;
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd()))
}

/// Resolves `path` inside `root` the way a mount target is resolved (runc's `MkdirAllInRoot`):
/// symlinks, absolute or relative, dangling or not, are followed as if `root` were `/`, and
/// what is missing on the way is created (directories, and with `file` an empty file as the
/// last component). Returns the resolved path, absolute within the root and free of symlinks
/// at the time of the call.
pub fn mkdir_all_in_root(root: impl AsFd, path: &str, file: bool) -> Result<String, Errno> {
    const MAX_LINKS: usize = 40;
    let root = root.as_fd();
    let split = |p: &str| -> Vec<String> {
        p.split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .map(str::to_string)
            .collect()
    };
    let mut pending: std::collections::VecDeque<String> = split(path).into();
    let mut resolved: Vec<String> = Vec::new();
    let mut links = 0;
    while let Some(c) = pending.pop_front() {
        if c == ".." {
            resolved.pop();
            continue;
        }
        let parent = open_in_root(
            root,
            format!("/{}", resolved.join("/")),
            OFlags::PATH | OFlags::DIRECTORY,
        )?;
        match lstat_at(&parent, c.as_bytes()) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Symlink => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(Errno::LOOP);
                }
                let target = rustix::fs::readlinkat(&parent, c.as_str(), Vec::new())?;
                let target = target.to_string_lossy().into_owned();
                if target.starts_with('/') {
                    resolved.clear();
                }
                for t in split(&target).into_iter().rev() {
                    pending.push_front(t);
                }
            }
            Ok(_) => resolved.push(c),
            Err(Errno::NOENT) => {
                let made = if file && pending.is_empty() {
                    rustix::fs::openat(
                        &parent,
                        c.as_str(),
                        OFlags::CREATE
                            | OFlags::EXCL
                            | OFlags::WRONLY
                            | OFlags::NOFOLLOW
                            | OFlags::CLOEXEC,
                        Mode::from_raw_mode(0o644),
                    )
                    .map(drop)
                } else {
                    rustix::fs::mkdirat(&parent, c.as_str(), Mode::from_raw_mode(0o755))
                };
                match made {
                    // Made by someone else meanwhile: look at it again.
                    Err(Errno::EXIST) => pending.push_front(c),
                    Err(e) => return Err(e),
                    Ok(()) => resolved.push(c),
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(format!("/{}", resolved.join("/")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_modes() {
        assert_eq!(go_file_mode(0o040755), go_mode::DIR | 0o755);
        assert_eq!(go_file_mode(0o120777), go_mode::SYMLINK | 0o777);
        assert_eq!(go_file_mode(0o100644), 0o644);
        assert_eq!(go_file_mode(0o104755), go_mode::SETUID | 0o755);
        assert_eq!(
            go_file_mode(0o020666),
            go_mode::DEVICE | go_mode::CHAR_DEVICE | 0o666
        );
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let host = tempfile::tempdir().unwrap();
        std::fs::write(host.path().join("marker"), b"host").unwrap();
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("etc")).unwrap();
        std::fs::write(root.path().join("etc/marker"), b"inside").unwrap();
        std::os::unix::fs::symlink("/etc", root.path().join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../../../etc", root.path().join("rel")).unwrap();
        let r = open_root(root.path()).unwrap();
        for p in ["/abs/marker", "rel/marker", "/../../etc/marker"] {
            let fd = open_in_root(&r, p, OFlags::RDONLY).unwrap();
            let got = std::fs::read_to_string(fd_path(&fd).unwrap()).unwrap();
            assert_eq!(got, "inside", "{p}");
        }
    }

    #[test]
    fn mount_targets_are_made_inside_the_root() {
        let host = tempfile::tempdir().unwrap();
        let victim = host.path().join("victim");
        std::fs::create_dir(&victim).unwrap();
        let root = tempfile::tempdir().unwrap();
        let vs = victim.to_string_lossy().into_owned();
        std::os::unix::fs::symlink(&vs, root.path().join("abs")).unwrap();
        std::os::unix::fs::symlink(format!("../../../..{vs}"), root.path().join("rel")).unwrap();
        std::os::unix::fs::symlink("loop", root.path().join("loop")).unwrap();
        let r = open_root(root.path()).unwrap();
        assert_eq!(
            mkdir_all_in_root(&r, "/abs/x", false).unwrap(),
            format!("{vs}/x")
        );
        assert!(root
            .path()
            .join(vs.trim_start_matches('/'))
            .join("x")
            .is_dir());
        assert_eq!(
            mkdir_all_in_root(&r, "rel/f", true).unwrap(),
            format!("{vs}/f")
        );
        assert!(root
            .path()
            .join(vs.trim_start_matches('/'))
            .join("f")
            .is_file());
        assert_eq!(mkdir_all_in_root(&r, "/a/../b/./c", false).unwrap(), "/b/c");
        assert_eq!(mkdir_all_in_root(&r, "/loop", false), Err(Errno::LOOP));
        // Nothing was made on the host.
        assert_eq!(std::fs::read_dir(&victim).unwrap().count(), 0);
    }
}

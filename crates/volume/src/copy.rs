//! Copy-up: a new, empty volume mounted over a path that has content in the image starts with
//! a copy of that content (owners, modes, timestamps, symlinks, hard links, devices, fifos,
//! xattrs), as dockerd's `copyExistingContents`.
//!
//! The source is the container's root filesystem, which is untrusted: it is walked by fd with
//! `O_NOFOLLOW`, its path resolved with `RESOLVE_IN_ROOT`, and symlinks are copied as links,
//! never followed. The destination is the engine's own volume directory.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{
    chmodat, chownat, fchmod, fchown, futimens, mkdirat, mknodat, openat, readlinkat, statat,
    symlinkat, utimensat, AtFlags, Dir, FileType, Gid, Mode, OFlags, Stat, Timespec, Timestamps,
    Uid, XattrFlags, CWD,
};
use rustix::io::Errno;

use crate::VolumeError;

/// Copies the tree at `path` (resolved inside `root`) into `dest` when `dest` is empty and
/// `path` is a directory in the container. Returns whether anything was copied. A missing
/// `path`, or one that is not a directory, copies nothing and is not an error. The mode and
/// owner of `path` itself are given to `dest`, as dockerd does.
pub fn copy_up(root: BorrowedFd<'_>, path: &str, dest: &Path) -> crate::Result<bool> {
    let src =
        match berth_store::inroot::open_in_root(root, path, OFlags::RDONLY | OFlags::DIRECTORY) {
            Ok(fd) => fd,
            Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => return Ok(false),
            Err(e) => return Err(copy_err(Path::new(path), e)),
        };
    let dest_fd = openat(
        CWD,
        dest,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| copy_err(dest, e))?;
    if !dir_is_empty(&dest_fd).map_err(|e| copy_err(dest, e))? {
        return Ok(false);
    }
    let mut copier = Copier {
        dest_root: &dest_fd,
        links: HashMap::new(),
    };
    copier.copy_dir(&src, &dest_fd, Path::new(""))?;
    let st = rustix::fs::fstat(&src).map_err(|e| copy_err(Path::new(path), e))?;
    fchown(&dest_fd, Some(uid(&st)), Some(gid(&st))).map_err(|e| copy_err(dest, e))?;
    fchmod(&dest_fd, permissions(&st)).map_err(|e| copy_err(dest, e))?;
    tracing::debug!(path, dest = %dest.display(), "copied image content into a new volume");
    Ok(true)
}

struct Copier<'a> {
    /// The volume's top directory, which hard links are made relative to.
    dest_root: &'a OwnedFd,
    /// Inodes with several links already copied: (dev, ino) → path under `dest_root`.
    links: HashMap<(u64, u64), PathBuf>,
}

impl Copier<'_> {
    /// Copies the entries of `src` into `dest` (both open directories); `rel` is `dest`'s
    /// path under the volume, for hard links and error messages.
    fn copy_dir(&mut self, src: &OwnedFd, dest: &OwnedFd, rel: &Path) -> crate::Result<()> {
        let mut dir = Dir::read_from(src).map_err(|e| copy_err(rel, e))?;
        while let Some(entry) = dir.read() {
            let entry = entry.map_err(|e| copy_err(rel, e))?;
            let name = OsStr::from_bytes(entry.file_name().to_bytes()).to_os_string();
            if name == "." || name == ".." {
                continue;
            }
            let path = rel.join(&name);
            self.copy_entry(src, dest, &name, &path)
                .map_err(|e| copy_err(&path, e))?;
        }
        Ok(())
    }

    fn copy_entry(
        &mut self,
        src: &OwnedFd,
        dest: &OwnedFd,
        name: &OsString,
        path: &Path,
    ) -> Result<(), CopyFailure> {
        let st = statat(src, name, AtFlags::SYMLINK_NOFOLLOW)?;
        let ty = FileType::from_raw_mode(st.st_mode);
        let key = (st.st_dev as u64, st.st_ino as u64);
        if ty != FileType::Directory && st.st_nlink > 1 {
            if let Some(first) = self.links.get(&key) {
                rustix::fs::linkat(self.dest_root, first, dest, name, AtFlags::empty())?;
                return Ok(());
            }
            self.links.insert(key, path.to_path_buf());
        }
        match ty {
            FileType::Directory => {
                mkdirat(dest, name, Mode::from_raw_mode(0o700))?;
                let s = open_nofollow(src, name, OFlags::RDONLY | OFlags::DIRECTORY)?;
                let d = open_nofollow(dest, name, OFlags::RDONLY | OFlags::DIRECTORY)?;
                self.copy_dir(&s, &d, path)?;
                // Owner, mode and times last: the copy of the contents changed the mtime.
                finish_by_fd(&s, &d, &st)?;
            }
            FileType::RegularFile => {
                let s = open_nofollow(src, name, OFlags::RDONLY)?;
                let d = openat(
                    dest,
                    name,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )?;
                let (mut from, mut to) = (File::from(s), File::from(d));
                std::io::copy(&mut from, &mut to)?;
                finish_by_fd(&from, &to, &st)?;
            }
            FileType::Symlink => {
                let target = readlinkat(src, name, Vec::new())?;
                symlinkat(target.as_c_str(), dest, name)?;
                chown_entry(dest, name, &st)?;
                utimensat(dest, name, &timestamps(&st), AtFlags::SYMLINK_NOFOLLOW)?;
            }
            // Fifos, devices and sockets: recreated, never opened (opening a device or a fifo
            // could block or act). Their xattrs are not copied for the same reason.
            _ => {
                mknodat(
                    dest,
                    name,
                    ty,
                    Mode::from_raw_mode(0o600),
                    st.st_rdev as u64,
                )?;
                chown_entry(dest, name, &st)?;
                // A node we just made in our own directory: not a symlink, chmodat is safe.
                chmodat(dest, name, permissions(&st), AtFlags::empty())?;
                utimensat(dest, name, &timestamps(&st), AtFlags::SYMLINK_NOFOLLOW)?;
            }
        }
        Ok(())
    }
}

/// Why one entry failed: its own syscall, or (already described) something below it.
enum CopyFailure {
    Sys(std::io::Error),
    Nested(VolumeError),
}

impl From<Errno> for CopyFailure {
    fn from(e: Errno) -> Self {
        CopyFailure::Sys(e.into())
    }
}

impl From<std::io::Error> for CopyFailure {
    fn from(e: std::io::Error) -> Self {
        CopyFailure::Sys(e)
    }
}

fn copy_err(path: &Path, e: impl Into<CopyFailure>) -> VolumeError {
    match e.into() {
        CopyFailure::Sys(e) => VolumeError::Copy(format!("{}: {e}", path.display())),
        CopyFailure::Nested(e) => e,
    }
}

impl From<VolumeError> for CopyFailure {
    fn from(e: VolumeError) -> Self {
        CopyFailure::Nested(e)
    }
}

fn open_nofollow(dir: &OwnedFd, name: &OsString, flags: OFlags) -> Result<OwnedFd, Errno> {
    openat(
        dir,
        name,
        flags | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// Owner, then mode (a chown clears setuid/setgid), then xattrs (a chown clears
/// `security.capability`), then times (everything before touched them).
fn finish_by_fd(src: impl AsFd, dest: impl AsFd, st: &Stat) -> Result<(), Errno> {
    fchown(&dest, Some(uid(st)), Some(gid(st)))?;
    fchmod(&dest, permissions(st))?;
    copy_xattrs(&src, &dest)?;
    futimens(&dest, &timestamps(st))
}

/// The xattrs worth carrying into a volume: the user's, the trusted ones (overlay's and
/// others') and file capabilities. SELinux labels and ACLs belong to the host's policy.
fn wanted_xattr(name: &[u8]) -> bool {
    name.starts_with(b"user.") || name.starts_with(b"trusted.") || name == b"security.capability"
}

fn copy_xattrs(src: impl AsFd, dest: impl AsFd) -> Result<(), Errno> {
    let size = match rustix::fs::flistxattr_query(&src) {
        Ok(0) | Err(Errno::NOTSUP) => return Ok(()),
        Ok(n) => n,
        Err(e) => return Err(e),
    };
    let mut list = vec![0u8; size];
    let len = rustix::fs::flistxattr(&src, &mut list[..])?;
    for name in list[..len.min(size)]
        .split(|b| *b == 0)
        .filter(|n| wanted_xattr(n))
    {
        let name = OsStr::from_bytes(name);
        let value = match read_xattr(&src, name) {
            Ok(v) => v,
            // Removed meanwhile.
            Err(Errno::NODATA) => continue,
            Err(e) => return Err(e),
        };
        match rustix::fs::fsetxattr(&dest, name, &value, XattrFlags::empty()) {
            Ok(()) | Err(Errno::NOTSUP) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn read_xattr(fd: impl AsFd, name: &OsStr) -> Result<Vec<u8>, Errno> {
    let size = rustix::fs::fgetxattr_query(&fd, name)?;
    let mut value = vec![0u8; size];
    let len = rustix::fs::fgetxattr(&fd, name, &mut value[..])?;
    value.truncate(len);
    Ok(value)
}

fn dir_is_empty(dir: &OwnedFd) -> Result<bool, Errno> {
    let mut d = Dir::read_from(dir)?;
    while let Some(entry) = d.read() {
        let name = entry?.file_name().to_bytes().to_vec();
        if name != b"." && name != b".." {
            return Ok(false);
        }
    }
    Ok(true)
}

fn uid(st: &Stat) -> Uid {
    Uid::from_raw(st.st_uid)
}

fn gid(st: &Stat) -> Gid {
    Gid::from_raw(st.st_gid)
}

/// The permission bits with setuid, setgid and sticky.
fn permissions(st: &Stat) -> Mode {
    Mode::from_raw_mode(st.st_mode & 0o7777)
}

fn timestamps(st: &Stat) -> Timestamps {
    Timestamps {
        last_access: Timespec {
            tv_sec: st.st_atime,
            tv_nsec: st.st_atime_nsec as _,
        },
        last_modification: Timespec {
            tv_sec: st.st_mtime,
            tv_nsec: st.st_mtime_nsec as _,
        },
    }
}

/// Gives the entry `name` in `dir` the owner in `st`, without following a symlink.
fn chown_entry(dir: &OwnedFd, name: &OsString, st: &Stat) -> Result<(), Errno> {
    chownat(
        dir,
        name,
        Some(uid(st)),
        Some(gid(st)),
        AtFlags::SYMLINK_NOFOLLOW,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, FileTypeExt, MetadataExt, PermissionsExt};

    struct Fixture {
        _dirs: Vec<tempfile::TempDir>,
        rootfs: PathBuf,
        dest: PathBuf,
        host_secret: PathBuf,
    }

    fn fixture() -> Fixture {
        let (host, rootfs, vol) = (tempdir(), tempdir(), tempdir());
        let host_secret = host.path().join("secret");
        std::fs::write(&host_secret, b"HOST SECRET").unwrap();
        let dest = vol.path().join("_data");
        std::fs::create_dir(&dest).unwrap();
        let rootfs_path = rootfs.path().to_path_buf();
        Fixture {
            _dirs: vec![host, rootfs, vol],
            rootfs: rootfs_path,
            dest,
            host_secret,
        }
    }

    fn tempdir() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    fn chown(p: &Path, uid: u32, gid: u32) {
        std::os::unix::fs::lchown(p, Some(uid), Some(gid)).unwrap();
    }

    fn chmod(p: &Path, mode: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    fn set_mtime(p: &Path, secs: i64) {
        let t = Timespec {
            tv_sec: secs,
            tv_nsec: 5,
        };
        let ts = Timestamps {
            last_access: t,
            last_modification: t,
        };
        utimensat(CWD, p, &ts, AtFlags::SYMLINK_NOFOLLOW).unwrap();
    }

    fn copy(f: &Fixture, path: &str) -> crate::Result<bool> {
        let root = berth_store::inroot::open_root(&f.rootfs).unwrap();
        copy_up(root.as_fd(), path, &f.dest)
    }

    /// Builds /data in the rootfs with one of every kind of entry.
    fn populate(f: &Fixture) -> PathBuf {
        let data = f.rootfs.join("data");
        std::fs::create_dir_all(data.join("sub/deep")).unwrap();
        let a = data.join("a");
        std::fs::write(&a, b"content a").unwrap();
        chown(&a, 1000, 1000);
        chmod(&a, 0o640);
        rustix::fs::setxattr(&a, "user.berth", b"u", XattrFlags::empty()).unwrap();
        rustix::fs::setxattr(&a, "trusted.berth", b"t", XattrFlags::empty()).unwrap();
        std::fs::hard_link(&a, data.join("sub/a2")).unwrap();
        let suid = data.join("sub/suid");
        std::fs::write(&suid, b"#!/bin/sh\n").unwrap();
        chown(&suid, 0, 0);
        chmod(&suid, 0o4755);
        rustix::fs::setxattr(
            &suid,
            "security.capability",
            &file_caps(),
            XattrFlags::empty(),
        )
        .unwrap();
        chmod(&data.join("sub/deep"), 0o1777);
        chown(&data.join("sub"), 1001, 1002);
        chmod(&data.join("sub"), 0o750);
        symlink(&f.host_secret, data.join("abs")).unwrap();
        chown(&data.join("abs"), 1003, 1003);
        symlink("../../etc/nothing", data.join("sub/rel")).unwrap();
        nix::unistd::mkfifo(
            &data.join("fifo"),
            nix::sys::stat::Mode::from_bits_truncate(0o620),
        )
        .unwrap();
        chmod(&data.join("fifo"), 0o620);
        mknodat(
            CWD,
            data.join("null"),
            FileType::CharacterDevice,
            Mode::from_raw_mode(0o666),
            rustix::fs::makedev(1, 3),
        )
        .unwrap();
        chmod(&data.join("null"), 0o666);
        for p in [
            &a,
            &suid,
            &data.join("sub/deep"),
            &data.join("abs"),
            &data.join("fifo"),
        ] {
            set_mtime(p, 1_000_000_000);
        }
        set_mtime(&data.join("sub"), 1_100_000_000);
        chown(&data, 1234, 4321);
        chmod(&data, 0o711);
        data
    }

    /// A VFS_CAP_REVISION_2 `security.capability` value: CAP_NET_BIND_SERVICE, effective.
    fn file_caps() -> Vec<u8> {
        let words: [u32; 5] = [0x0200_0001, 1 << 10, 0, 0, 0];
        words.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    fn meta(p: &Path) -> std::fs::Metadata {
        std::fs::symlink_metadata(p).unwrap()
    }

    #[test]
    fn copies_owners_modes_times_links_and_nodes() {
        let f = fixture();
        populate(&f);
        assert!(copy(&f, "/data").unwrap());
        let d = &f.dest;

        let top = meta(d);
        assert_eq!(
            (top.uid(), top.gid(), top.mode() & 0o7777),
            (1234, 4321, 0o711)
        );

        let a = meta(&d.join("a"));
        assert_eq!((a.uid(), a.gid(), a.mode() & 0o7777), (1000, 1000, 0o640));
        assert_eq!(std::fs::read(d.join("a")).unwrap(), b"content a");
        assert_eq!((a.mtime(), a.mtime_nsec()), (1_000_000_000, 5));
        let mut buf = [0u8; 8];
        let n = rustix::fs::getxattr(d.join("a"), "user.berth", &mut buf[..]).unwrap();
        assert_eq!(&buf[..n], b"u");
        let n = rustix::fs::getxattr(d.join("a"), "trusted.berth", &mut buf[..]).unwrap();
        assert_eq!(&buf[..n], b"t");

        // One inode for the hard-linked pair.
        assert_eq!(meta(&d.join("sub/a2")).ino(), a.ino());
        assert_eq!(a.nlink(), 2);

        let suid = meta(&d.join("sub/suid"));
        assert_eq!((suid.uid(), suid.mode() & 0o7777), (0, 0o4755));
        let mut caps = [0u8; 64];
        let n =
            rustix::fs::getxattr(d.join("sub/suid"), "security.capability", &mut caps[..]).unwrap();
        assert_eq!(caps[..n], file_caps()[..]);
        assert_eq!(meta(&d.join("sub/deep")).mode() & 0o7777, 0o1777);
        let sub = meta(&d.join("sub"));
        assert_eq!(
            (sub.uid(), sub.gid(), sub.mode() & 0o7777),
            (1001, 1002, 0o750)
        );
        // A directory's time is set after its contents were copied in.
        assert_eq!(sub.mtime(), 1_100_000_000);

        let fifo = meta(&d.join("fifo"));
        assert!(fifo.file_type().is_fifo());
        assert_eq!(fifo.mode() & 0o7777, 0o620);
        let null = meta(&d.join("null"));
        assert!(null.file_type().is_char_device());
        assert_eq!(null.rdev(), rustix::fs::makedev(1, 3));

        assert_eq!(
            std::fs::read_link(d.join("sub/rel")).unwrap(),
            Path::new("../../etc/nothing")
        );
    }

    #[test]
    fn symlinks_are_copied_as_links_never_followed() {
        let f = fixture();
        populate(&f);
        assert!(copy(&f, "/data").unwrap());
        let link = f.dest.join("abs");
        let m = meta(&link);
        assert!(m.file_type().is_symlink());
        assert_eq!(std::fs::read_link(&link).unwrap(), f.host_secret);
        assert_eq!((m.uid(), m.mtime()), (1003, 1_000_000_000));
        // Nothing in the volume holds the host file's content.
        for entry in walk(&f.dest) {
            let m = meta(&entry);
            if m.is_file() {
                assert_ne!(
                    std::fs::read(&entry).unwrap(),
                    b"HOST SECRET",
                    "{}",
                    entry.display()
                );
            }
        }
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if meta(&p).is_dir() {
                out.extend(walk(&p));
            }
            out.push(p);
        }
        out
    }

    #[test]
    fn the_path_resolves_inside_the_root() {
        let f = fixture();
        populate(&f);
        // An absolute symlink in the path means the container's /data, not the host's.
        symlink("/data", f.rootfs.join("link")).unwrap();
        assert!(copy(&f, "/link/sub").unwrap());
        assert!(f.dest.join("suid").exists());

        // A link to a host directory that does not exist in the root copies nothing.
        let f = fixture();
        let host = tempdir();
        std::fs::write(host.path().join("x"), b"host").unwrap();
        symlink(host.path(), f.rootfs.join("escape")).unwrap();
        assert!(!copy(&f, "/escape").unwrap());
        symlink("../../../../../..", f.rootfs.join("up")).unwrap();
        std::fs::create_dir(f.rootfs.join("only-in-root")).unwrap();
        std::fs::write(f.rootfs.join("only-in-root/y"), b"root").unwrap();
        assert!(copy(&f, &format!("/up/{}", "only-in-root")).unwrap());
        assert_eq!(std::fs::read(f.dest.join("y")).unwrap(), b"root");
    }

    #[test]
    fn a_non_empty_destination_is_left_alone() {
        let f = fixture();
        populate(&f);
        std::fs::write(f.dest.join("mine"), b"keep").unwrap();
        chmod(&f.dest, 0o755);
        assert!(!copy(&f, "/data").unwrap());
        let names: Vec<_> = std::fs::read_dir(&f.dest)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![OsString::from("mine")]);
        assert_eq!(meta(&f.dest).mode() & 0o7777, 0o755);
    }

    #[test]
    fn missing_or_non_directory_paths_copy_nothing() {
        let f = fixture();
        populate(&f);
        assert!(!copy(&f, "/nonexistent").unwrap());
        assert!(!copy(&f, "/data/a").unwrap());
        assert!(!copy(&f, "/data/abs").unwrap());
        assert_eq!(std::fs::read_dir(&f.dest).unwrap().count(), 0);
    }

    #[test]
    fn an_empty_directory_gives_its_owner_and_mode() {
        let f = fixture();
        std::fs::create_dir(f.rootfs.join("e")).unwrap();
        chown(&f.rootfs.join("e"), 70, 70);
        chmod(&f.rootfs.join("e"), 0o1770);
        assert!(copy(&f, "e").unwrap());
        let m = meta(&f.dest);
        assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (70, 70, 0o1770));
    }
}

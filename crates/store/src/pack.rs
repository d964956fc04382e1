//! Writing a file tree into a tar stream, for `docker cp` out of a container and `docker export`.
//!
//! The walk goes through directory fds only: each child is opened by its single name with
//! `O_NOFOLLOW`, so a running container that swaps a directory for a symlink to `/` while we
//! read can make us skip an entry, never read the host.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;

use crate::error::StoreError;
use crate::inroot::lstat_at;

/// Tars trees into `out`, writing hard links once (busybox's applets would otherwise be
/// copied hundreds of times).
pub struct Packer<W: Write> {
    builder: tar::Builder<W>,
    links: HashMap<(u64, u64), String>,
}

impl<W: Write> Packer<W> {
    pub fn new(out: W) -> Self {
        let mut builder = tar::Builder::new(out);
        builder.follow_symlinks(false);
        Packer {
            builder,
            links: HashMap::new(),
        }
    }

    /// Adds `name` of directory `dir` (the directory itself for "" or ".") and everything
    /// below it, the top entry named `as_name` in the archive ("." puts the children at the
    /// archive's top level, as dockerd does for `path/.`).
    pub fn add_tree(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &[u8],
        as_name: &str,
    ) -> Result<(), StoreError> {
        let st = lstat_at(dir, name)?;
        if name.is_empty() || name == b"." {
            // The directory fd may be O_PATH: reopen it readable for the listing.
            let fd = rustix::fs::openat(
                dir,
                ".",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            self.header_only(&st, as_name, FileType::Directory)?;
            return self.children(&fd, as_name);
        }
        self.entry(dir, OsStr::from_bytes(name), as_name, &st)
    }

    /// Adds everything below `dir` at the archive's top level, without an entry for `dir`
    /// itself (`docker export`).
    pub fn add_children(&mut self, dir: BorrowedFd<'_>) -> Result<(), StoreError> {
        let fd = rustix::fs::openat(
            dir,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        self.children(&fd, "")
    }

    pub fn finish(self) -> Result<W, StoreError> {
        Ok(self.builder.into_inner()?)
    }

    fn children(&mut self, dir: &OwnedFd, prefix: &str) -> Result<(), StoreError> {
        for n in sorted_names(dir)? {
            let child = child_name(prefix, &n);
            let name = OsStr::from_bytes(&n);
            let st = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => st,
                // Removed while we walked: a running container may do that.
                Err(Errno::NOENT) => continue,
                Err(e) => return Err(e.into()),
            };
            self.entry(dir.as_fd(), name, &child, &st)?;
        }
        Ok(())
    }

    fn entry(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        path: &str,
        st: &Stat,
    ) -> Result<(), StoreError> {
        let ft = FileType::from_raw_mode(st.st_mode);
        match ft {
            FileType::Directory => {
                let fd = match rustix::fs::openat(
                    dir,
                    name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                ) {
                    Ok(fd) => fd,
                    Err(Errno::NOENT) | Err(Errno::LOOP) | Err(Errno::NOTDIR) => return Ok(()),
                    Err(e) => return Err(e.into()),
                };
                self.header_only(st, path, ft)?;
                self.children(&fd, path)
            }
            FileType::RegularFile => {
                let key = (st.st_dev, st.st_ino);
                if st.st_nlink > 1 {
                    if let Some(first) = self.links.get(&key) {
                        let mut h = header(st, tar::EntryType::Link);
                        let first = first.clone();
                        self.append_raw(&mut h, path, Some(first.as_bytes()), io::empty())?;
                        return Ok(());
                    }
                    self.links.insert(key, path.to_string());
                }
                let fd = match rustix::fs::openat(
                    dir,
                    name,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
                    Mode::empty(),
                ) {
                    Ok(fd) => fd,
                    Err(Errno::NOENT) | Err(Errno::LOOP) => return Ok(()),
                    Err(e) => return Err(e.into()),
                };
                let st = rustix::fs::fstat(&fd)?;
                if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
                    return Ok(());
                }
                let size = st.st_size.max(0) as u64;
                let mut h = header(&st, tar::EntryType::Regular);
                h.set_size(size);
                // A file that shrinks while we read is padded, one that grows is cut: the
                // header's size must stay true or the archive is corrupt.
                let data = File::from(fd).take(size).chain(io::repeat(0)).take(size);
                self.append_raw(&mut h, path, None, data)?;
                Ok(())
            }
            FileType::Symlink => {
                let target = match rustix::fs::readlinkat(dir, name, Vec::new()) {
                    Ok(t) => t,
                    Err(Errno::NOENT) => return Ok(()),
                    Err(e) => return Err(e.into()),
                };
                let mut h = header(st, tar::EntryType::Symlink);
                self.append_raw(&mut h, path, Some(target.as_bytes()), io::empty())?;
                Ok(())
            }
            FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo => {
                let kind = match ft {
                    FileType::CharacterDevice => tar::EntryType::Char,
                    FileType::BlockDevice => tar::EntryType::Block,
                    _ => tar::EntryType::Fifo,
                };
                let mut h = header(st, kind);
                if kind != tar::EntryType::Fifo {
                    h.set_device_major(rustix::fs::major(st.st_rdev))?;
                    h.set_device_minor(rustix::fs::minor(st.st_rdev))?;
                }
                self.append_raw(&mut h, path, None, io::empty())?;
                Ok(())
            }
            // Sockets cannot be archived (Go's tar writer skips them too).
            _ => Ok(()),
        }
    }

    fn header_only(&mut self, st: &Stat, path: &str, ft: FileType) -> Result<(), StoreError> {
        let kind = if ft == FileType::Directory {
            tar::EntryType::Directory
        } else {
            tar::EntryType::Regular
        };
        let mut h = header(st, kind);
        let p = if kind == tar::EntryType::Directory && !path.ends_with('/') {
            format!("{path}/")
        } else {
            path.to_string()
        };
        self.append_raw(&mut h, &p, None, io::empty())?;
        Ok(())
    }

    /// Appends an entry with its name (and link target) stored byte for byte: the tar crate's
    /// own path setters drop "./" components, which docker's "." archives need. Names that do
    /// not fit the header go first as GNU long-name records, as Go's reader expects.
    fn append_raw(
        &mut self,
        h: &mut tar::Header,
        name: &str,
        link: Option<&[u8]>,
        data: impl Read,
    ) -> Result<(), StoreError> {
        let name = name.as_bytes();
        if let Some(link) = link {
            if link.len() > 100 {
                self.long_record(tar::EntryType::GNULongLink, link)?;
            }
            let slot = &mut h.as_old_mut().linkname;
            let n = link.len().min(slot.len());
            slot.fill(0);
            slot[..n].copy_from_slice(&link[..n]);
        }
        if name.len() > 100 {
            self.long_record(tar::EntryType::GNULongName, name)?;
        }
        let slot = &mut h.as_old_mut().name;
        let n = name.len().min(slot.len());
        slot.fill(0);
        slot[..n].copy_from_slice(&name[..n]);
        h.set_cksum();
        self.builder.append(h, data)?;
        Ok(())
    }

    fn long_record(&mut self, kind: tar::EntryType, value: &[u8]) -> Result<(), StoreError> {
        let mut h = tar::Header::new_gnu();
        let slot = &mut h.as_old_mut().name;
        let tag = b"././@LongLink";
        slot[..tag.len()].copy_from_slice(tag);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_entry_type(kind);
        let mut data = value.to_vec();
        data.push(0);
        h.set_size(data.len() as u64);
        h.set_cksum();
        self.builder.append(&h, &data[..])?;
        Ok(())
    }

    /// Appends a ready-made entry (commit's whiteout markers).
    pub fn append_empty(&mut self, path: &str, mode: u32, mtime: u64) -> Result<(), StoreError> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(mtime);
        h.set_size(0);
        self.append_raw(&mut h, path, None, io::empty())?;
        Ok(())
    }

    /// Appends one entry of `dir` without descending into it (commit walks by itself).
    pub fn append_one(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        path: &str,
        st: &Stat,
    ) -> Result<(), StoreError> {
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            return self.header_only(st, path, FileType::Directory);
        }
        self.entry(dir, name, path, st)
    }
}

/// The archive name of `child` below `prefix`. A "." top (dockerd's `path/.`) gives
/// "./child", which the docker CLI's rebasing of "." relies on; "" puts it at the top.
pub fn child_name(prefix: &str, child: &[u8]) -> String {
    let c = String::from_utf8_lossy(child);
    match prefix.trim_end_matches('/') {
        "" => c.into_owned(),
        p => format!("{p}/{c}"),
    }
}

fn header(st: &Stat, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(st.st_uid as u64);
    h.set_gid(st.st_gid as u64);
    h.set_mtime(st.st_mtime.max(0) as u64);
    h.set_size(0);
    h
}

/// The names in `dir` (without `.` and `..`), sorted so that archives and change lists come
/// out the same every time.
pub(crate) fn sorted_names(dir: &OwnedFd) -> Result<Vec<Vec<u8>>, StoreError> {
    let mut names: Vec<Vec<u8>> = Vec::new();
    let listing = rustix::fs::openat(
        dir,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    for e in Dir::read_from(&listing)? {
        let e = e?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(n.to_vec());
        }
    }
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inroot::open_root;

    fn names(tar_bytes: &[u8]) -> Vec<(String, tar::EntryType)> {
        let mut a = tar::Archive::new(tar_bytes);
        a.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    e.header().entry_type(),
                )
            })
            .collect()
    }

    #[test]
    fn tree_with_rename_links_and_contents_form() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("src");
        std::fs::create_dir_all(d.join("sub")).unwrap();
        std::fs::write(d.join("a"), b"hello").unwrap();
        std::fs::hard_link(d.join("a"), d.join("sub/b")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", d.join("l")).unwrap();
        let root = open_root(t.path()).unwrap();

        let mut p = Packer::new(Vec::new());
        p.add_tree(root.as_fd(), b"src", "renamed").unwrap();
        let n = names(&p.finish().unwrap());
        assert_eq!(
            n,
            vec![
                ("renamed/".into(), tar::EntryType::Directory),
                ("renamed/a".into(), tar::EntryType::Regular),
                ("renamed/l".into(), tar::EntryType::Symlink),
                ("renamed/sub/".into(), tar::EntryType::Directory),
                ("renamed/sub/b".into(), tar::EntryType::Link),
            ]
        );

        let src = open_root(&d).unwrap();
        let mut p = Packer::new(Vec::new());
        p.add_tree(src.as_fd(), b".", ".").unwrap();
        let n: Vec<String> = names(&p.finish().unwrap())
            .into_iter()
            .map(|x| x.0)
            .collect();
        assert_eq!(n, vec!["./", "./a", "./l", "./sub/", "./sub/b"]);
    }

    #[test]
    fn long_names_and_link_targets() {
        let t = tempfile::tempdir().unwrap();
        let long = "n".repeat(150);
        std::fs::write(t.path().join(&long), b"x").unwrap();
        let target = format!("/{}", "t".repeat(140));
        std::os::unix::fs::symlink(&target, t.path().join("l")).unwrap();
        let root = open_root(t.path()).unwrap();
        let mut p = Packer::new(Vec::new());
        p.add_children(root.as_fd()).unwrap();
        let bytes = p.finish().unwrap();
        let mut a = tar::Archive::new(&bytes[..]);
        let mut seen = Vec::new();
        for e in a.entries().unwrap() {
            let e = e.unwrap();
            let link = e
                .link_name()
                .unwrap()
                .map(|l| l.to_string_lossy().into_owned());
            seen.push((e.path().unwrap().to_string_lossy().into_owned(), link));
        }
        assert_eq!(seen, vec![("l".to_string(), Some(target)), (long, None)]);
    }
}

//! Safe extraction of one layer tar into an empty directory.
//!
//! Every path is resolved with `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`
//! relative to the target directory, so neither `..`, absolute paths nor a
//! symlink planted by an earlier entry can make us write outside of it: the
//! kernel refuses the lookup with EXDEV and we reject the archive.
//! OCI whiteouts are translated to overlayfs' own form on the way.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::layers::HashingReader;
use rustix::fs::{
    AtFlags, FileType, Gid, Mode, OFlags, ResolveFlags, Timespec, Timestamps, Uid, XattrFlags,
};
use rustix::io::Errno;
use sha2::Digest as _;

use crate::error::StoreError;
use crate::layers::ExtractOptions;

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";
const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// Metadata read from a tar header plus its PAX records.
#[derive(Debug, Clone)]
struct Meta {
    uid: u32,
    gid: u32,
    mode: u32,
    mtime: (i64, i64),
    xattrs: Vec<(String, Vec<u8>)>,
}

/// Extracts the tar stream `archive` into `dest`, which must exist and be empty.
///
/// Errors reading the archive are `InvalidArchive`; errors writing are `Io`.
pub(crate) fn extract(
    archive: &mut tar::Archive<impl Read>,
    dest: &Path,
    opts: &ExtractOptions,
) -> Result<(), StoreError> {
    let root = rustix::fs::open(
        dest,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut x = Extractor {
        root,
        opts,
        dirs: Vec::new(),
        dir_index: HashMap::new(),
        copy: None,
        digests: None,
    };
    let entries = archive.entries().map_err(bad_archive)?;
    for entry in entries {
        let mut entry = entry.map_err(bad_archive)?;
        x.entry(&mut entry)?;
    }
    x.finish_dirs()
}

/// How a `docker cp` archive lands in a container directory (PUT /containers/{id}/archive).
#[derive(Debug, Clone, Default)]
pub struct UnpackOptions {
    /// Refuse to replace a directory with a non-directory or the reverse.
    pub no_overwrite_dir_non_dir: bool,
    /// Owner for every entry instead of the archive's (`copyUIDGID` with a container user).
    pub chown: Option<(u32, u32)>,
    pub allow_devices: bool,
}

/// Extracts `archive` into the existing directory `dir`, next to what is already there.
/// Unlike a layer, `.wh.` names are plain files here (dockerd's cp does the same); entries
/// and symlinks can still never resolve outside `dir`.
pub fn unpack_into(
    archive: &mut tar::Archive<impl Read>,
    dir: OwnedFd,
    opts: &UnpackOptions,
) -> Result<(), StoreError> {
    unpack(archive, dir, opts, None)
}

/// The SHA-256 of each regular file's content, by inode (hard links share theirs).
pub type ContentDigests = HashMap<u64, [u8; 32]>;

/// `unpack_into`, hashing each regular file while it is written, so a caller that needs the
/// contents' digests (the build context's cache keys) does not read them again.
pub fn unpack_into_hashed(
    archive: &mut tar::Archive<impl Read>,
    dir: OwnedFd,
    opts: &UnpackOptions,
) -> Result<ContentDigests, StoreError> {
    let mut digests = ContentDigests::new();
    unpack(archive, dir, opts, Some(&mut digests))?;
    Ok(digests)
}

fn unpack(
    archive: &mut tar::Archive<impl Read>,
    dir: OwnedFd,
    opts: &UnpackOptions,
    digests: Option<&mut ContentDigests>,
) -> Result<(), StoreError> {
    let layer_opts = ExtractOptions {
        allow_devices: opts.allow_devices,
        ..ExtractOptions::default()
    };
    let mut x = Extractor {
        root: dir,
        opts: &layer_opts,
        dirs: Vec::new(),
        dir_index: HashMap::new(),
        copy: Some(opts),
        digests,
    };
    let entries = archive.entries().map_err(bad_archive)?;
    for entry in entries {
        let mut entry = entry.map_err(bad_archive)?;
        x.entry(&mut entry)?;
    }
    x.finish_dirs()
}

/// Checks every entry name of an archive before anything is written, so a `../` entry
/// rejects the whole upload instead of leaving half of it behind.
pub fn check_archive_paths(archive: &mut tar::Archive<impl Read>) -> Result<(), StoreError> {
    for entry in archive.entries().map_err(bad_archive)? {
        let entry = entry.map_err(bad_archive)?;
        let raw = entry.path_bytes();
        clean_path(strip_root(&raw))?;
        if entry.header().entry_type() == tar::EntryType::Link {
            if let Some(t) = entry.link_name_bytes() {
                clean_path(strip_root(&t))?;
            }
        }
    }
    Ok(())
}

/// `docker cp` archives may name entries from `/`; they are confined to the target instead.
fn strip_root(raw: &[u8]) -> &[u8] {
    let mut r = raw;
    while let Some(rest) = r.strip_prefix(b"/") {
        r = rest;
    }
    r
}

struct Extractor<'a> {
    root: OwnedFd,
    opts: &'a ExtractOptions,
    /// Directories whose mode/owner/mtime are applied after their content,
    /// so a read-only dir or its mtime is not disturbed by later entries.
    dirs: Vec<(Vec<Vec<u8>>, Meta)>,
    dir_index: HashMap<Vec<Vec<u8>>, usize>,
    /// Set when unpacking a `docker cp` upload rather than a layer.
    copy: Option<&'a UnpackOptions>,
    /// Filled with each regular file's content digest when asked for.
    digests: Option<&'a mut ContentDigests>,
}

fn bad_archive(e: io::Error) -> StoreError {
    StoreError::InvalidArchive(e.to_string())
}

/// Splits an archive path into components, refusing absolute paths and `..`.
pub(crate) fn clean_path(raw: &[u8]) -> Result<Vec<Vec<u8>>, StoreError> {
    let shown = || String::from_utf8_lossy(raw).into_owned();
    let p = raw.strip_prefix(b"./").unwrap_or(raw);
    if p.starts_with(b"/") {
        return Err(StoreError::UnsafePath(shown()));
    }
    let mut out = Vec::new();
    for c in p.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err(StoreError::UnsafePath(shown())),
            c if c.contains(&0) => return Err(StoreError::UnsafePath(shown())),
            c => out.push(c.to_vec()),
        }
    }
    Ok(out)
}

fn join(comps: &[Vec<u8>]) -> Vec<u8> {
    comps.join(&b'/')
}

fn os(b: &[u8]) -> &OsStr {
    OsStr::from_bytes(b)
}

impl Extractor<'_> {
    /// Opens the directory at `comps` below the root, creating missing
    /// components as 0755 dirs. Resolution never leaves the root.
    fn open_dir(&self, comps: &[Vec<u8>]) -> Result<OwnedFd, StoreError> {
        if comps.is_empty() {
            return Ok(self.root.try_clone()?);
        }
        match self.resolve_dir(comps) {
            Err(Errno::NOENT) => {}
            r => return self.map_resolve(r, comps),
        }
        // Slow path: create what is missing, one component at a time,
        // resolving each prefix from the root again.
        let mut parent = self.root.try_clone()?;
        for i in 1..=comps.len() {
            match self.resolve_dir(&comps[..i]) {
                Ok(fd) => parent = fd,
                Err(Errno::NOENT) => {
                    match rustix::fs::mkdirat(
                        &parent,
                        os(&comps[i - 1]),
                        Mode::from_raw_mode(0o755),
                    ) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(e.into()),
                    }
                    parent = self.map_resolve(self.resolve_dir(&comps[..i]), &comps[..i])?;
                }
                Err(e) => return self.map_resolve(Err(e), &comps[..i]),
            }
        }
        Ok(parent)
    }

    fn resolve_dir(&self, comps: &[Vec<u8>]) -> Result<OwnedFd, Errno> {
        rustix::fs::openat2(
            &self.root,
            os(&join(comps)),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
        )
    }

    fn map_resolve(
        &self,
        r: Result<OwnedFd, Errno>,
        comps: &[Vec<u8>],
    ) -> Result<OwnedFd, StoreError> {
        let shown = || String::from_utf8_lossy(&join(comps)).into_owned();
        match r {
            Ok(fd) => Ok(fd),
            // EXDEV: the lookup would leave the root (absolute or escaping symlink).
            // ELOOP: symlink loops or magic links.
            Err(Errno::XDEV) | Err(Errno::LOOP) => Err(StoreError::UnsafePath(format!(
                "{} resolves outside the layer",
                shown()
            ))),
            Err(Errno::NOTDIR) => Err(StoreError::InvalidArchive(format!(
                "{} is not a directory",
                shown()
            ))),
            Err(e) => Err(e.into()),
        }
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), StoreError> {
        let raw_path = entry.path_bytes().into_owned();
        let comps = match self.copy {
            Some(_) => clean_path(strip_root(&raw_path))?,
            None => clean_path(&raw_path)?,
        };
        let kind = entry.header().entry_type();
        let mut meta = read_meta(entry)?;
        if let Some((uid, gid)) = self.copy.and_then(|c| c.chown) {
            meta.uid = uid;
            meta.gid = gid;
        }

        let Some((name, parent_comps)) = comps.split_last() else {
            // "./" itself: the layer root's own metadata. A cp target directory keeps its
            // own, as with dockerd.
            if kind.is_dir() {
                if self.copy.is_none() {
                    self.defer_dir(Vec::new(), meta);
                }
                return Ok(());
            }
            return Err(StoreError::UnsafePath(
                String::from_utf8_lossy(&raw_path).into_owned(),
            ));
        };
        let parent = self.open_dir(parent_comps)?;

        if let Some(real) = name.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
            if self.copy.is_none() {
                return self.whiteout(&parent, parent_comps, name, real);
            }
        }
        if self.copy.is_some_and(|c| c.no_overwrite_dir_non_dir) {
            self.check_dir_non_dir(&parent, name, kind.is_dir(), &raw_path)?;
        }

        use tar::EntryType as T;
        match kind {
            T::Directory => {
                match self.existing(&parent, name)? {
                    Some(FileType::Directory) => {}
                    Some(_) => {
                        remove_entry(&parent, name)?;
                        mkdir(&parent, name)?;
                    }
                    None => mkdir(&parent, name)?,
                }
                self.defer_dir(comps.clone(), meta);
            }
            T::Regular | T::Continuous | T::GNUSparse => {
                self.replace(&parent, name)?;
                let fd = rustix::fs::openat2(
                    &parent,
                    os(name),
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                    ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
                )?;
                let mut file = File::from(fd);
                match self.digests.as_deref_mut() {
                    None => copy_entry(entry, &mut file)?,
                    Some(digests) => {
                        let mut hashing = HashingReader::new(entry, u64::MAX);
                        copy_entry(&mut hashing, &mut file)?;
                        let ino = rustix::fs::fstat(&file)?.st_ino;
                        digests.insert(ino, hashing.hasher.finalize().into());
                    }
                }
                apply_fd_meta(&file, &meta)?;
            }
            T::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| StoreError::InvalidArchive("symlink without target".into()))?
                    .into_owned();
                self.replace(&parent, name)?;
                // The target is stored verbatim: it is resolved inside the
                // container later, never by us.
                rustix::fs::symlinkat(os(&target), &parent, os(name))?;
                apply_at_meta(&parent, name, &meta, false)?;
            }
            T::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| StoreError::InvalidArchive("hardlink without target".into()))?
                    .into_owned();
                self.hardlink(&parent, name, &target)?;
            }
            T::Char | T::Block | T::Fifo => {
                let (ft, dev) = match kind {
                    T::Fifo => (FileType::Fifo, 0),
                    _ if !self.opts.allow_devices => {
                        tracing::debug!(path = %String::from_utf8_lossy(&raw_path), "skipping device node");
                        return Ok(());
                    }
                    _ => {
                        let h = entry.header();
                        let major = h.device_major().ok().flatten().unwrap_or(0);
                        let minor = h.device_minor().ok().flatten().unwrap_or(0);
                        let ft = if kind == T::Char {
                            FileType::CharacterDevice
                        } else {
                            FileType::BlockDevice
                        };
                        (ft, rustix::fs::makedev(major, minor))
                    }
                };
                self.replace(&parent, name)?;
                rustix::fs::mknodat(&parent, os(name), ft, Mode::from_raw_mode(0o600), dev)?;
                apply_at_meta(&parent, name, &meta, true)?;
            }
            // PAX/GNU extension headers are consumed by the tar crate; global
            // headers and anything exotic carry no file to create.
            other => {
                tracing::debug!(?other, path = %String::from_utf8_lossy(&raw_path), "skipping tar entry type");
            }
        }
        Ok(())
    }

    fn whiteout(
        &mut self,
        parent: &OwnedFd,
        parent_comps: &[Vec<u8>],
        name: &[u8],
        real: &[u8],
    ) -> Result<(), StoreError> {
        if name == OPAQUE_MARKER.as_bytes() {
            // The parent directory hides everything below it in lower layers.
            rustix::fs::fsetxattr(parent, OVERLAY_OPAQUE_XATTR, b"y", XattrFlags::empty())?;
            return Ok(());
        }
        if real.is_empty() || real == b"." || real == b".." {
            let mut p = parent_comps.to_vec();
            p.push(name.to_vec());
            return Err(StoreError::UnsafePath(
                String::from_utf8_lossy(&join(&p)).into_owned(),
            ));
        }
        // overlayfs' whiteout: a 0/0 character device carrying the hidden name.
        self.replace(parent, real)?;
        rustix::fs::mknodat(
            parent,
            os(real),
            FileType::CharacterDevice,
            Mode::empty(),
            rustix::fs::makedev(0, 0),
        )?;
        Ok(())
    }

    fn check_dir_non_dir(
        &self,
        parent: &OwnedFd,
        name: &[u8],
        new_is_dir: bool,
        raw_path: &[u8],
    ) -> Result<(), StoreError> {
        let shown = String::from_utf8_lossy(raw_path);
        match self.existing(parent, name)? {
            Some(FileType::Directory) if !new_is_dir => Err(StoreError::InvalidArchive(format!(
                "cannot overwrite directory \"{shown}\" with non-directory"
            ))),
            Some(ft) if ft != FileType::Directory && new_is_dir => Err(StoreError::InvalidArchive(
                format!("cannot overwrite non-directory \"{shown}\" with directory"),
            )),
            _ => Ok(()),
        }
    }

    fn hardlink(&self, parent: &OwnedFd, name: &[u8], target: &[u8]) -> Result<(), StoreError> {
        let tcomps = match self.copy {
            Some(_) => clean_path(strip_root(target))?,
            None => clean_path(target)?,
        };
        let Some((tname, tparent_comps)) = tcomps.split_last() else {
            return Err(StoreError::UnsafePath(
                String::from_utf8_lossy(target).into_owned(),
            ));
        };
        let tparent = match self.resolve_dir(tparent_comps) {
            Err(Errno::NOENT) => {
                return Err(StoreError::InvalidArchive(format!(
                    "hardlink target {} does not exist",
                    String::from_utf8_lossy(target)
                )))
            }
            r => self.map_resolve(r, tparent_comps)?,
        };
        if self.existing(&tparent, tname)?.is_none() {
            return Err(StoreError::InvalidArchive(format!(
                "hardlink target {} does not exist",
                String::from_utf8_lossy(target)
            )));
        }
        self.replace(parent, name)?;
        // No AT_SYMLINK_FOLLOW: a link to a symlink links the symlink itself,
        // never what it points at.
        rustix::fs::linkat(&tparent, os(tname), parent, os(name), AtFlags::empty())?;
        Ok(())
    }

    fn existing(&self, parent: &OwnedFd, name: &[u8]) -> Result<Option<FileType>, StoreError> {
        match rustix::fs::statat(parent, os(name), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(FileType::from_raw_mode(st.st_mode))),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes whatever is at `name` so a new non-directory entry can take its place.
    fn replace(&self, parent: &OwnedFd, name: &[u8]) -> Result<(), StoreError> {
        if self.existing(parent, name)?.is_some() {
            remove_entry(parent, name)?;
        }
        Ok(())
    }

    fn defer_dir(&mut self, comps: Vec<Vec<u8>>, meta: Meta) {
        match self.dir_index.get(&comps) {
            Some(&i) => self.dirs[i].1 = meta,
            None => {
                self.dir_index.insert(comps.clone(), self.dirs.len());
                self.dirs.push((comps, meta));
            }
        }
    }

    fn finish_dirs(&mut self) -> Result<(), StoreError> {
        // Deepest first, although no later step touches a parent's mtime.
        let mut dirs = std::mem::take(&mut self.dirs);
        dirs.sort_by_key(|(c, _)| std::cmp::Reverse(c.len()));
        for (comps, meta) in dirs {
            let fd = if comps.is_empty() {
                self.root.try_clone()?
            } else {
                match rustix::fs::openat2(
                    &self.root,
                    os(&join(&comps)),
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                    ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
                ) {
                    Ok(fd) => fd,
                    // Replaced by a later non-directory entry: nothing to apply.
                    Err(Errno::NOENT) | Err(Errno::NOTDIR) | Err(Errno::LOOP) => continue,
                    Err(e) => return self.map_resolve(Err(e), &comps).map(|_| ()),
                }
            };
            apply_fd_meta(&fd, &meta)?;
        }
        Ok(())
    }
}

fn mkdir(parent: &OwnedFd, name: &[u8]) -> Result<(), StoreError> {
    rustix::fs::mkdirat(parent, os(name), Mode::from_raw_mode(0o700))?;
    Ok(())
}

fn remove_entry(parent: &OwnedFd, name: &[u8]) -> Result<(), StoreError> {
    match rustix::fs::unlinkat(parent, os(name), AtFlags::empty()) {
        Ok(()) => Ok(()),
        Err(Errno::ISDIR) => {
            rustix::fs::unlinkat(parent, os(name), AtFlags::REMOVEDIR).map_err(|e| match e {
                Errno::NOTEMPTY => StoreError::InvalidArchive(format!(
                    "entry {} replaces a non-empty directory",
                    String::from_utf8_lossy(name)
                )),
                e => e.into(),
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// Copies the entry's data, telling archive read errors from disk write errors.
fn copy_entry(r: &mut impl Read, w: &mut File) -> Result<(), StoreError> {
    let mut buf = vec![0u8; 128 * 1024];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(bad_archive(e)),
        };
        w.write_all(&buf[..n])?;
    }
}

fn read_meta<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<Meta, StoreError> {
    let h = entry.header();
    let mut meta = Meta {
        uid: h.uid().map_err(bad_archive)? as u32,
        gid: h.gid().map_err(bad_archive)? as u32,
        mode: h.mode().map_err(bad_archive)? & 0o7777,
        mtime: (h.mtime().map_err(bad_archive)? as i64, 0),
        xattrs: Vec::new(),
    };
    if let Some(pax) = entry.pax_extensions().map_err(bad_archive)? {
        for ext in pax {
            let ext = ext.map_err(bad_archive)?;
            let Ok(key) = ext.key() else { continue };
            let val = ext.value_bytes();
            let num = || std::str::from_utf8(val).ok().map(str::trim);
            match key {
                "uid" => {
                    if let Some(v) = num().and_then(|s| s.parse().ok()) {
                        meta.uid = v;
                    }
                }
                "gid" => {
                    if let Some(v) = num().and_then(|s| s.parse().ok()) {
                        meta.gid = v;
                    }
                }
                "mtime" => {
                    if let Some(t) = num().and_then(parse_pax_time) {
                        meta.mtime = t;
                    }
                }
                k => {
                    if let Some(name) = k.strip_prefix("SCHILY.xattr.") {
                        // trusted.overlay.* would let a layer steer overlayfs
                        // (redirects, metacopy); only our own whiteout
                        // translation may set those.
                        if name.starts_with("trusted.overlay.") {
                            tracing::warn!(xattr = name, "ignoring overlay xattr from archive");
                        } else {
                            meta.xattrs.push((name.to_string(), val.to_vec()));
                        }
                    }
                }
            }
        }
    }
    Ok(meta)
}

fn parse_pax_time(s: &str) -> Option<(i64, i64)> {
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs.parse().ok()?;
    let mut nanos = 0i64;
    if !frac.is_empty() {
        let digits: String = frac.chars().take(9).collect();
        nanos = format!("{digits:0<9}").parse().ok()?;
    }
    Some((secs, nanos))
}

fn timestamps(meta: &Meta) -> Timestamps {
    let t = Timespec {
        tv_sec: meta.mtime.0,
        tv_nsec: meta.mtime.1 as _,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

/// Owner, then mode (chown clears setuid bits), then xattrs (chown also
/// clears security.capability), then times.
fn apply_fd_meta(fd: impl AsFd, meta: &Meta) -> Result<(), StoreError> {
    let fd = fd.as_fd();
    rustix::fs::fchown(
        fd,
        Some(Uid::from_raw(meta.uid)),
        Some(Gid::from_raw(meta.gid)),
    )?;
    rustix::fs::fchmod(fd, Mode::from_raw_mode(meta.mode))?;
    for (k, v) in &meta.xattrs {
        rustix::fs::fsetxattr(fd, k.as_str(), v, XattrFlags::empty())?;
    }
    rustix::fs::futimens(fd, &timestamps(meta))?;
    Ok(())
}

/// Same as [`apply_fd_meta`] for entries we cannot open (symlinks, device nodes).
fn apply_at_meta(
    parent: &OwnedFd,
    name: &[u8],
    meta: &Meta,
    chmod: bool,
) -> Result<(), StoreError> {
    rustix::fs::chownat(
        parent,
        os(name),
        Some(Uid::from_raw(meta.uid)),
        Some(Gid::from_raw(meta.gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )?;
    if chmod {
        rustix::fs::chmodat(
            parent,
            os(name),
            Mode::from_raw_mode(meta.mode),
            AtFlags::empty(),
        )?;
    }
    if !meta.xattrs.is_empty() {
        // l*xattr through the parent's fd path: the final component is not followed.
        let mut p = format!("/proc/self/fd/{}/", parent.as_raw_fd()).into_bytes();
        p.extend_from_slice(name);
        for (k, v) in &meta.xattrs {
            // Many filesystems refuse xattrs on symlinks (user.* always);
            // losing one there is not worth failing the layer.
            if let Err(e) = rustix::fs::lsetxattr(os(&p), k.as_str(), v, XattrFlags::empty()) {
                tracing::warn!(xattr = %k, error = %e, "could not set xattr on special file");
            }
        }
    }
    rustix::fs::utimensat(
        parent,
        os(name),
        &timestamps(meta),
        AtFlags::SYMLINK_NOFOLLOW,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_path_rules() {
        let c = |s: &str| clean_path(s.as_bytes());
        assert_eq!(c("./a/b/").unwrap(), vec![b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(c("a//./b").unwrap(), vec![b"a".to_vec(), b"b".to_vec()]);
        assert!(c("./").unwrap().is_empty());
        assert!(c("/etc/passwd").is_err());
        assert!(c(".//etc").is_err());
        assert!(c("../x").is_err());
        assert!(c("a/../../x").is_err());
        assert!(c("a/..").is_err());
    }

    #[test]
    fn pax_time() {
        assert_eq!(parse_pax_time("12.5"), Some((12, 500_000_000)));
        assert_eq!(parse_pax_time("12"), Some((12, 0)));
        assert_eq!(parse_pax_time("x"), None);
    }
}

//! The build context: the uploaded tar extracted (safely) into a private directory, and the
//! source side of COPY/ADD: which files a source pattern names, what they hold (the cache key
//! digest), and a tar of them laid out for the destination.

use crate::error::{EngineError, Result};
use berth_build::ignore::DockerIgnore;
use berth_store::inroot::open_in_root;
use rustix::fs::OFlags;
use sha2::{Digest as _, Sha256};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn bad(e: impl std::fmt::Display) -> EngineError {
    EngineError::InvalidArgument(e.to_string())
}

enum ContextDir {
    /// Extracted for this build alone; removed when dropped.
    Temp(tempfile::TempDir),
    /// A tree kept between builds (see `synced`), locked while the build uses it.
    Kept {
        tree: PathBuf,
        _lock: tokio::sync::OwnedMutexGuard<()>,
    },
}

/// The extracted context.
pub(super) struct Context {
    dir: ContextDir,
    /// Each file's content digest, taken while it was written: COPY's cache key needs no
    /// second read of the context.
    digests: Arc<berth_store::ContentDigests>,
}

impl Context {
    /// Extracts the context tar (plain, gzip, zstd, bzip2 or xz) under `tmp` while it streams in, hashing
    /// each file on the way. An entry that would leave the directory refuses the whole
    /// context: the directory is removed and nothing outside it was touched.
    pub(super) fn extract(mut stream: impl Read, tmp: &Path) -> Result<Context> {
        let res = Self::extract_from(&mut stream, tmp);
        if res.is_err() {
            drain(&mut stream);
        }
        res
    }

    fn extract_from(stream: &mut impl Read, tmp: &Path) -> Result<Context> {
        std::fs::create_dir_all(tmp)?;
        let dir = tempfile::Builder::new().prefix("build-").tempdir_in(tmp)?;
        // dockerd's DecompressStream: plain, gzip, zstd, bzip2 or xz.
        let plain = berth_store::compression::decompress_archive(stream).map_err(bad)?;
        let mut plain = PadTail::new(plain);
        let root = berth_store::inroot::open_root(dir.path())?;
        let root = open_in_root(&root, ".", OFlags::RDONLY | OFlags::DIRECTORY)
            .map_err(std::io::Error::from)?;
        let digests = berth_store::unpack_into_hashed(
            &mut tar::Archive::new(&mut plain),
            root,
            &berth_store::UnpackOptions::default(),
        )
        .map_err(bad)?;
        // Whatever follows the end-of-archive blocks is read too: the client is still
        // writing it and must not see its upload cut off.
        std::io::copy(&mut plain, &mut std::io::sink())?;
        Ok(Context {
            dir: ContextDir::Temp(dir),
            digests: Arc::new(digests),
        })
    }

    /// A kept tree, already brought to the client's manifest.
    pub(super) fn kept(
        tree: PathBuf,
        digests: berth_store::ContentDigests,
        lock: tokio::sync::OwnedMutexGuard<()>,
    ) -> Context {
        Context {
            dir: ContextDir::Kept { tree, _lock: lock },
            digests: Arc::new(digests),
        }
    }

    /// The digests taken on extraction, for the blocking code that reads the context.
    pub(super) fn known(&self) -> KnownDigests {
        KnownDigests {
            dev: std::fs::metadata(self.root()).map_or(u64::MAX, |m| m.dev()),
            map: self.digests.clone(),
        }
    }

    pub(super) fn root(&self) -> &Path {
        match &self.dir {
            ContextDir::Temp(d) => d.path(),
            ContextDir::Kept { tree, .. } => tree,
        }
    }

    /// The Dockerfile's text; dockerd's error when the context has none by that name.
    pub(super) fn dockerfile(&self, name: &str) -> Result<String> {
        let missing =
            || EngineError::InvalidArgument(format!("Cannot locate specified Dockerfile: {name}"));
        let rel = clean(name).ok_or_else(missing)?;
        let mut text = String::new();
        let root = berth_store::inroot::open_root(self.root())?;
        let fd = open_in_root(&root, &rel, OFlags::RDONLY).map_err(|_| missing())?;
        File::from(fd)
            .read_to_string(&mut text)
            .map_err(|_| missing())?;
        Ok(text)
    }

    /// dockerd's `removeDockerfile`: once the Dockerfile is read, it and `.dockerignore` leave
    /// the context if `.dockerignore` excludes them (the CLI sends them regardless).
    pub(super) fn drop_ignored_build_files(&self, dockerfile: &str) -> Result<()> {
        let root = berth_store::inroot::open_root(self.root())?;
        let Ok(fd) = open_in_root(&root, ".dockerignore", OFlags::RDONLY) else {
            return Ok(());
        };
        let mut text = String::new();
        File::from(fd).read_to_string(&mut text)?;
        let ignore = berth_build::ignore::DockerIgnore::parse(&text).map_err(bad)?;
        for name in [".dockerignore".to_string()]
            .into_iter()
            .chain(clean(dockerfile))
        {
            if !ignore.excludes(&name) {
                continue;
            }
            // The parent is resolved inside the context (its symlinks are the client's).
            let (parent, base) = name.rsplit_once('/').unwrap_or((".", name.as_str()));
            if let Ok(dir) = open_in_root(&root, parent, OFlags::RDONLY | OFlags::DIRECTORY) {
                let _ = rustix::fs::unlinkat(&dir, base, rustix::fs::AtFlags::empty());
            }
            if let ContextDir::Kept { tree, .. } = &self.dir {
                super::synced::forget(tree, &[name])?;
            }
        }
        Ok(())
    }
}

/// Reads what is left of a refused upload: the client is still writing it, and would see its
/// connection cut (a broken pipe) instead of the error.
pub(super) fn drain(r: &mut impl Read) {
    let _ = std::io::copy(r, &mut std::io::sink());
}

/// The docker CLI's `-f` outside the context rewrites the tar and sends it without the last
/// entry's padding and the end-of-archive blocks; dockerd's reader copes, so ours is given
/// them: after the stream ends, zeros up to the next block and two zero blocks. Zeros after a
/// complete archive change nothing.
struct PadTail<R> {
    inner: R,
    read: u64,
    /// Zeros still to give once `inner` is exhausted; None until then.
    pad: Option<u64>,
}

impl<R: Read> PadTail<R> {
    fn new(inner: R) -> Self {
        PadTail {
            inner,
            read: 0,
            pad: None,
        }
    }
}

impl<R: Read> Read for PadTail<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pad.is_none() {
            let n = self.inner.read(buf)?;
            if n > 0 || buf.is_empty() {
                self.read += n as u64;
                return Ok(n);
            }
            self.pad = Some((512 - self.read % 512) % 512 + 1024);
        }
        let Some(left) = self.pad.as_mut() else {
            return Ok(0);
        };
        let n = (*left).min(buf.len() as u64) as usize;
        buf[..n].fill(0);
        *left -= n as u64;
        Ok(n)
    }
}

/// Content digests of the context's files, by inode (see `Context::known`).
#[derive(Clone, Default)]
pub(super) struct KnownDigests {
    dev: u64,
    map: Arc<berth_store::ContentDigests>,
}

impl KnownDigests {
    fn get(&self, md: &std::fs::Metadata) -> Option<[u8; 32]> {
        if md.is_file() && md.dev() == self.dev {
            self.map.get(&md.ino()).copied()
        } else {
            None
        }
    }

    /// The SHA-256 of a file's content: the one taken on extraction, else read now.
    fn content_digest(&self, host: &Path, md: &std::fs::Metadata) -> Result<[u8; 32]> {
        if let Some(d) = self.get(md) {
            return Ok(d);
        }
        let mut hash = Sha256::new();
        let mut r = Hashing {
            inner: File::open(host)?,
            hash: &mut hash,
        };
        std::io::copy(&mut r, &mut std::io::sink())?;
        Ok(hash.finalize().into())
    }
}

/// Lexically cleans a context-relative path; None when it leaves the context.
pub(super) fn clean(p: &str) -> Option<String> {
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop()?;
            }
            c => out.push(c),
        }
    }
    Some(out.join("/"))
}

fn has_glob(p: &str) -> bool {
    p.contains(['*', '?', '['])
}

/// The paths (relative to `root`, symlinks inside it resolved as the root's own) that a
/// COPY/ADD source names. `confined`: the root is the build context, where `..` may not leave
/// it (dockerd's "forbidden path outside the build context").
pub(super) fn expand_source(root: &Path, src: &str, confined: bool) -> Result<Vec<String>> {
    let rel = match clean(src) {
        Some(r) => r,
        None if confined => {
            return Err(bad(format!(
                "forbidden path outside the build context: {src} ()"
            )))
        }
        None => String::new(),
    };
    if !has_glob(&rel) {
        if std::fs::symlink_metadata(root.join(&rel)).is_err() && !exists_in_root(root, &rel) {
            return Err(bad(format!(
                "file not found in build context or excluded by .dockerignore: stat {src}: file does not exist"
            )));
        }
        return Ok(vec![rel]);
    }
    let matcher =
        DockerIgnore::parse(&rel).map_err(|e| bad(format!("{}: {}", e.pattern, e.message)))?;
    let depth = rel.split('/').count();
    let mut found = Vec::new();
    walk(root, "", &mut |p, _| {
        if p.split('/').count() == depth && matcher.excludes(p) {
            found.push(p.to_string());
        }
        p.split('/').count() < depth
    })?;
    // A glob matching nothing is no error by itself: dockerd fails only when no source at
    // all is left ("no source files were specified").
    found.sort();
    Ok(found)
}

fn exists_in_root(root: &Path, rel: &str) -> bool {
    berth_store::inroot::open_root(root)
        .ok()
        .and_then(|r| open_in_root(&r, rel, OFlags::PATH).ok())
        .is_some()
}

/// Walks `root/rel` depth first without following symlinks; `f(path, metadata)` returns
/// whether to descend into a directory.
pub(super) fn walk(
    root: &Path,
    rel: &str,
    f: &mut dyn FnMut(&str, &std::fs::Metadata) -> bool,
) -> Result<()> {
    let mut names: Vec<_> = std::fs::read_dir(root.join(rel))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for n in names {
        let p = if rel.is_empty() {
            n
        } else {
            format!("{rel}/{n}")
        };
        let md = std::fs::symlink_metadata(root.join(&p))?;
        if f(&p, &md) && md.is_dir() {
            walk(root, &p, f)?;
        }
    }
    Ok(())
}

/// The host path of a source, its symlinks resolved inside `root` (a source that is a symlink
/// is followed, as dockerd does for the named path itself).
fn resolve(root: &Path, rel: &str) -> Result<PathBuf> {
    let r = berth_store::inroot::open_root(root)?;
    let fd = open_in_root(&r, rel, OFlags::PATH).map_err(|e| {
        bad(format!(
            "file not found in build context or excluded by .dockerignore: stat {rel}: {e}"
        ))
    })?;
    let real = berth_store::inroot::fd_path(&fd)?;
    if !real.starts_with(root.canonicalize()?) {
        return Err(bad(format!(
            "forbidden path outside the build context: {rel} ()"
        )));
    }
    Ok(real)
}

/// How the copied entries are written.
#[derive(Debug, Clone, Default)]
pub(super) struct CopyMode {
    pub chmod: Option<u32>,
    /// `--exclude` patterns, matched against paths inside a copied directory.
    pub exclude: Option<DockerIgnore>,
}

/// Reads through to a hasher too, so contents are read once for the tar and the digest.
struct Hashing<'a, R> {
    inner: R,
    hash: &'a mut Sha256,
}

impl<R: Read> Read for Hashing<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

/// The tar of a COPY/ADD and its digest. Without a tar (`write` false) only the digest is
/// taken, from the contents' digests: a cache hit then reads nothing of the context again.
pub(super) struct TarWriter {
    b: Option<tar::Builder<File>>,
    hash: Sha256,
    mode: CopyMode,
    known: KnownDigests,
}

impl TarWriter {
    pub(super) fn new(
        tmp: &Path,
        mode: CopyMode,
        write: bool,
        known: KnownDigests,
    ) -> Result<TarWriter> {
        let b = if write {
            std::fs::create_dir_all(tmp)?;
            Some(tar::Builder::new(tempfile::tempfile_in(tmp)?))
        } else {
            None
        };
        Ok(TarWriter {
            b,
            hash: Sha256::new(),
            mode,
            known,
        })
    }

    fn header(&mut self, name: &str, md: &std::fs::Metadata, kind: tar::EntryType) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        let mode = match (self.mode.chmod, kind) {
            (Some(m), tar::EntryType::Regular | tar::EntryType::Directory) => m,
            _ => md.permissions().mode() & 0o7777,
        };
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(md.mtime().max(0) as u64);
        h.set_size(0);
        self.hash
            .update(format!("{name}\0{kind:?}\0{mode:o}\0{}\0", md.len()).as_bytes());
        h
    }

    /// Adds the source `host` (a file, a directory's contents, or a symlink) under `name`
    /// ("" for a directory's contents go at the top).
    pub(super) fn add(&mut self, host: &Path, name: &str) -> Result<()> {
        let md = std::fs::symlink_metadata(host)?;
        if md.is_dir() {
            if !name.is_empty() {
                self.add_dir(name, &md)?;
            }
            let mut entries = Vec::new();
            let exclude = self.mode.exclude.clone();
            walk(host, "", &mut |p, _| {
                if exclude.as_ref().is_some_and(|x| x.excludes(p)) {
                    return false;
                }
                entries.push(p.to_string());
                true
            })?;
            for p in entries {
                let full = if name.is_empty() {
                    p.clone()
                } else {
                    format!("{name}/{p}")
                };
                self.add_one(&host.join(&p), &full)?;
            }
            return Ok(());
        }
        self.add_one(host, name)
    }

    fn add_dir(&mut self, name: &str, md: &std::fs::Metadata) -> Result<()> {
        let mut h = self.header(name, md, tar::EntryType::Directory);
        if let Some(b) = &mut self.b {
            b.append_data(&mut h, format!("{name}/"), std::io::empty())?;
        }
        Ok(())
    }

    fn add_one(&mut self, host: &Path, name: &str) -> Result<()> {
        let md = std::fs::symlink_metadata(host)?;
        let ft = md.file_type();
        if ft.is_dir() {
            self.add_dir(name, &md)?;
        } else if ft.is_symlink() {
            let target = std::fs::read_link(host)?;
            let mut h = self.header(name, &md, tar::EntryType::Symlink);
            self.hash.update(target.to_string_lossy().as_bytes());
            if let Some(b) = &mut self.b {
                b.append_link(&mut h, name, &target)?;
            }
        } else if ft.is_file() {
            let mut h = self.header(name, &md, tar::EntryType::Regular);
            h.set_size(md.len());
            match &mut self.b {
                // Known: written as it is. Unknown (an image's file): hashed on the way.
                Some(b) => match self.known.get(&md) {
                    Some(d) => {
                        b.append_data(&mut h, name, File::open(host)?)?;
                        self.hash.update(d);
                    }
                    None => {
                        let mut content = Sha256::new();
                        let r = Hashing {
                            inner: File::open(host)?,
                            hash: &mut content,
                        };
                        b.append_data(&mut h, name, r)?;
                        self.hash.update(content.finalize());
                    }
                },
                None => {
                    let d = self.known.content_digest(host, &md)?;
                    self.hash.update(d);
                }
            }
        }
        // Sockets, fifos and devices of a context are not copied (nor by dockerd's COPY).
        Ok(())
    }

    /// A file given inline (a heredoc).
    pub(super) fn add_bytes(&mut self, name: &str, data: &[u8]) -> Result<()> {
        self.add_stream(name, data, data.len() as u64, 0o644, 0)
    }

    /// A file from elsewhere (a heredoc, a download): `mode` unless `--chmod` overrides it.
    pub(super) fn add_stream(
        &mut self,
        name: &str,
        data: impl Read,
        len: u64,
        mode: u32,
        mtime: u64,
    ) -> Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        let mode = self.mode.chmod.unwrap_or(mode);
        h.set_mode(mode);
        h.set_size(len);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(mtime);
        self.hash
            .update(format!("{name}\0inline\0{mode:o}\0").as_bytes());
        let mut content = Sha256::new();
        let mut r = Hashing {
            inner: data,
            hash: &mut content,
        };
        match &mut self.b {
            Some(b) => b.append_data(&mut h, name, r)?,
            None => {
                std::io::copy(&mut r, &mut std::io::sink())?;
            }
        }
        self.hash.update(content.finalize());
        Ok(())
    }

    /// Mixes a file's content digest (an archive ADD unpacks) into the digest.
    pub(super) fn note_content(&mut self, host: &Path) -> Result<()> {
        let md = std::fs::metadata(host)?;
        let d = self.known.content_digest(host, &md)?;
        self.hash.update(d);
        Ok(())
    }

    /// Mixes an outside fact (an image ID a `--from` source comes from) into the digest.
    pub(super) fn note(&mut self, s: &str) {
        self.hash.update(s.as_bytes());
    }

    /// The tar (when written) and the digest.
    pub(super) fn finish(self) -> Result<(Option<File>, String)> {
        let file = match self.b {
            Some(b) => {
                let mut file = b.into_inner()?;
                file.flush()?;
                file.seek(SeekFrom::Start(0))?;
                Some(file)
            }
            None => None,
        };
        Ok((file, hex::encode(self.hash.finalize())))
    }
}

/// Resolves a source (already expanded to one path) for the tar.
pub(super) fn source_path(root: &Path, rel: &str) -> Result<PathBuf> {
    resolve(root, rel)
}

/// The digest of what `root/rel` holds (a file, or a directory's tree): names, types, modes,
/// link targets and contents, not times. A RUN bind mount of the context is keyed by it.
pub(super) fn tree_digest(root: &Path, rel: &str, known: &KnownDigests) -> Result<String> {
    let rel = clean(rel).ok_or_else(|| {
        bad(format!(
            "forbidden path outside the build context: {rel} ()"
        ))
    })?;
    let top = if rel.is_empty() {
        root.canonicalize()?
    } else {
        resolve(root, &rel)?
    };
    let mut hash = Sha256::new();
    let mut one = |p: &str, md: &std::fs::Metadata| -> Result<()> {
        let host = if p.is_empty() {
            top.clone()
        } else {
            top.join(p)
        };
        hash.update(format!("{p}\0{:o}\0{}\0", md.mode(), md.len()).as_bytes());
        if md.file_type().is_symlink() {
            hash.update(std::fs::read_link(&host)?.to_string_lossy().as_bytes());
        } else if md.is_file() {
            hash.update(known.content_digest(&host, md)?);
        }
        Ok(())
    };
    let md = std::fs::symlink_metadata(&top)?;
    one("", &md)?;
    if md.is_dir() {
        let mut err = None;
        walk(&top, "", &mut |p, md| {
            if let Err(e) = one(p, md) {
                err.get_or_insert(e);
            }
            true
        })?;
        if let Some(e) = err {
            return Err(e);
        }
    }
    Ok(hex::encode(hash.finalize()))
}

/// Whether a local ADD source is an archive dockerd would unpack: a tar, plain or compressed
/// (gzip, bzip2, xz; zstd too).
pub(super) fn is_archive(path: &Path) -> bool {
    let Ok(f) = File::open(path) else {
        return false;
    };
    let Ok(mut r) = berth_store::compression::decompress_archive(f) else {
        return false;
    };
    let mut head = [0u8; 512];
    let mut n = 0;
    while n < head.len() {
        match r.read(&mut head[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    n == 512 && &head[257..262] == b"ustar"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_refuses_leaving_the_context() {
        assert_eq!(clean("./a/../b").as_deref(), Some("b"));
        assert_eq!(clean("/x/y").as_deref(), Some("x/y"));
        assert_eq!(clean("../x"), None);
        assert_eq!(clean("a/../../x"), None);
    }
}

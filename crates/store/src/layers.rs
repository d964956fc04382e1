//! Extracted layer snapshots: `<root>/layers/<chain-id-hex>/diff`.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::blobs::sync_dir;
use crate::compression::decompress;
use crate::digest::Digest;
use crate::error::StoreError;
use crate::extract::extract;

/// Result of [`LayerStore::apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedLayer {
    pub diff_id: Digest,
    pub chain_id: Digest,
    /// Bytes of the uncompressed tar.
    pub size: u64,
    /// The layer was already extracted; this extraction was discarded.
    pub already_existed: bool,
}

/// Knobs for layer extraction.
#[derive(Debug, Clone)]
pub struct ExtractOptions {
    /// Create block and character devices; otherwise they are skipped.
    pub allow_devices: bool,
    /// Abort when the decompressed stream grows beyond this many bytes.
    pub max_uncompressed: u64,
    /// Leave the layer unsynced: the caller syncs the file system once for many layers (a
    /// build's steps), instead of one syncfs per layer.
    pub defer_sync: bool,
}

impl Default for ExtractOptions {
    fn default() -> Self {
        ExtractOptions {
            allow_devices: has_cap_mknod(),
            max_uncompressed: 64 << 30,
            defer_sync: false,
        }
    }
}

/// True when CAP_MKNOD (bit 27) is in this process' effective set.
fn has_cap_mknod() -> bool {
    const CAP_MKNOD: u32 = 27;
    let Ok(status) = fs::read_to_string("/proc/self/status") else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << CAP_MKNOD) != 0)
}

/// Layer snapshots keyed by chain id, each one overlay lowerdir.
#[derive(Debug, Clone)]
pub struct LayerStore {
    layers: PathBuf,
    tmp: PathBuf,
}

impl LayerStore {
    pub fn open(data_root: &Path) -> Result<Self, StoreError> {
        let layers = data_root.join("layers");
        let tmp = data_root.join("tmp");
        fs::create_dir_all(&layers)?;
        fs::create_dir_all(&tmp)?;
        Ok(LayerStore { layers, tmp })
    }

    /// OCI chain id: the base layer's is its diff id, each next one is
    /// `sha256("<parent chain id> <diff id>")`.
    pub fn chain_id(parent: Option<&Digest>, diff_id: &Digest) -> Digest {
        match parent {
            None => diff_id.clone(),
            Some(p) => Digest::from_sha256_bytes(format!("{p} {diff_id}").as_bytes()),
        }
    }

    /// Extracts a layer archive (plain, gzip or zstd tar) on top of `parent`'s chain.
    pub fn apply(
        &self,
        parent: Option<&Digest>,
        archive: impl Read,
        opts: &ExtractOptions,
    ) -> Result<AppliedLayer, StoreError> {
        // Dropping the TempDir removes the partial extraction on every error path.
        let tmp = tempfile::Builder::new()
            .prefix("layer-")
            .tempdir_in(&self.tmp)?;
        let diff = tmp.path().join("diff");
        fs::create_dir(&diff)?;

        let (_, stream) =
            decompress(archive).map_err(|e| StoreError::InvalidArchive(e.to_string()))?;
        let counted = HashingReader::new(stream, opts.max_uncompressed);
        let mut ar = tar::Archive::new(counted);
        let res = extract(&mut ar, &diff, opts);
        let mut counted = ar.into_inner();
        if counted.exceeded {
            return Err(StoreError::TooLarge(opts.max_uncompressed));
        }
        res?;
        // The diff id covers the whole stream, including padding after the
        // end-of-archive blocks; reading to the end also makes the gzip and
        // zstd decoders check their trailers.
        io::copy(&mut counted, &mut io::sink()).map_err(|e| {
            if counted.exceeded {
                StoreError::TooLarge(opts.max_uncompressed)
            } else {
                StoreError::InvalidArchive(e.to_string())
            }
        })?;
        if counted.count == 0 {
            return Err(StoreError::InvalidArchive("empty archive".into()));
        }
        let size = counted.count;
        let diff_id = Digest::from_hasher(counted.hasher);
        let chain_id = Self::chain_id(parent, &diff_id);

        let dest = self.layers.join(chain_id.hex());
        if dest.join("diff").is_dir() {
            tracing::debug!(%chain_id, "layer already extracted");
            return Ok(AppliedLayer {
                diff_id,
                chain_id,
                size,
                already_existed: true,
            });
        }
        // One syncfs instead of an fsync per file: the whole layer is durable
        // before it becomes visible under its final name.
        if !opts.defer_sync {
            let dfd = fs::File::open(&diff)?;
            rustix::fs::syncfs(&dfd)?;
        }
        match fs::rename(tmp.path(), &dest) {
            Ok(()) => {
                // Renamed away: nothing left for the TempDir to delete.
                let _ = tmp.keep();
            }
            // A concurrent apply of the same layer won the race.
            Err(e) if dest.join("diff").is_dir() => {
                tracing::debug!(%chain_id, error = %e, "layer appeared concurrently");
                return Ok(AppliedLayer {
                    diff_id,
                    chain_id,
                    size,
                    already_existed: true,
                });
            }
            Err(e) => return Err(e.into()),
        }
        if !opts.defer_sync {
            sync_dir(&self.layers)?;
        }
        tracing::info!(%chain_id, %diff_id, size, "layer extracted");
        Ok(AppliedLayer {
            diff_id,
            chain_id,
            size,
            already_existed: false,
        })
    }

    /// Makes `dir` — an overlay upper holding exactly what the layer tar `diff_id` holds, in
    /// the layer store's own form (whiteouts as 0/0 devices, opaque directories marked) —
    /// the layer on top of `parent`, by renaming it into place instead of extracting the tar
    /// again. The overlay's bookkeeping xattrs (origin, impure…) are dropped first. `Ok(None)`
    /// when `dir` holds what a lower layer cannot carry (a redirect or a metacopy-only file):
    /// the caller extracts the tar then. Not synced (see `ExtractOptions::defer_sync`).
    pub fn adopt(
        &self,
        parent: Option<&Digest>,
        dir: &Path,
        diff_id: &Digest,
        size: u64,
    ) -> Result<Option<AppliedLayer>, StoreError> {
        let chain_id = Self::chain_id(parent, diff_id);
        let applied = |already_existed| AppliedLayer {
            diff_id: diff_id.clone(),
            chain_id: chain_id.clone(),
            size,
            already_existed,
        };
        let dest = self.layers.join(chain_id.hex());
        if dest.join("diff").is_dir() {
            return Ok(Some(applied(true)));
        }
        if !strip_overlay_xattrs(dir)? {
            return Ok(None);
        }
        let tmp = tempfile::Builder::new()
            .prefix("layer-")
            .tempdir_in(&self.tmp)?;
        fs::rename(dir, tmp.path().join("diff"))?;
        match fs::rename(tmp.path(), &dest) {
            Ok(()) => {
                let _ = tmp.keep();
            }
            Err(_) if dest.join("diff").is_dir() => return Ok(Some(applied(true))),
            Err(e) => return Err(e.into()),
        }
        tracing::info!(%chain_id, %diff_id, size, "layer adopted");
        Ok(Some(applied(false)))
    }

    pub fn diff_dir(&self, chain_id: &Digest) -> PathBuf {
        self.layers.join(chain_id.hex()).join("diff")
    }

    pub fn exists(&self, chain_id: &Digest) -> bool {
        self.diff_dir(chain_id).is_dir()
    }

    /// Removes a layer; first renamed into tmp so a crash mid-delete never
    /// leaves a half-deleted layer under its real name.
    pub fn remove(&self, chain_id: &Digest) -> Result<(), StoreError> {
        let dir = self.layers.join(chain_id.hex());
        let doomed = self.tmp.join(format!("remove-{}", chain_id.hex()));
        match fs::rename(&dir, &doomed) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        fs::remove_dir_all(&doomed)?;
        Ok(())
    }

    /// All extracted layers' chain ids (for garbage collection).
    pub fn list(&self) -> Result<Vec<Digest>, StoreError> {
        crate::digest::list_hex_dir(&self.layers)
    }

    /// Removes leftovers of interrupted extractions and deletions. Call it
    /// only when no apply is running (at daemon start).
    pub fn sweep_temp(&self) -> Result<(), StoreError> {
        for e in fs::read_dir(&self.tmp)? {
            let e = e?;
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name.starts_with("layer-") || name.starts_with("remove-") {
                tracing::info!(path = %e.path().display(), "removing leftover layer temp dir");
                fs::remove_dir_all(e.path())?;
            }
        }
        Ok(())
    }
}

/// Removes overlayfs' bookkeeping xattrs (`trusted.overlay.*` but `opaque`) below `dir`,
/// symlinks not followed; false when an entry carries one that changes what a lower layer
/// means (`redirect`, `metacopy`).
fn strip_overlay_xattrs(dir: &Path) -> Result<bool, StoreError> {
    const PREFIX: &str = "trusted.overlay.";
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        let mut names = vec![0u8; 4096];
        let n = match rustix::fs::llistxattr(&p, &mut names) {
            Ok(n) => n,
            Err(rustix::io::Errno::RANGE) => {
                names = vec![0u8; 65536];
                rustix::fs::llistxattr(&p, &mut names)?
            }
            Err(e) => return Err(io::Error::from(e).into()),
        };
        for name in names[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
            let name = String::from_utf8_lossy(name);
            let Some(kind) = name.strip_prefix(PREFIX) else {
                continue;
            };
            match kind {
                "opaque" => {}
                "redirect" | "metacopy" => return Ok(false),
                _ => rustix::fs::lremovexattr(&p, name.as_ref())?,
            }
        }
        if fs::symlink_metadata(&p)?.is_dir() {
            for e in fs::read_dir(&p)? {
                stack.push(e?.path());
            }
        }
    }
    Ok(true)
}

/// Hashes and counts a stream, refusing to grow past `limit`.
pub(crate) struct HashingReader<R> {
    inner: R,
    pub hasher: Sha256,
    pub count: u64,
    limit: u64,
    pub exceeded: bool,
}

impl<R> HashingReader<R> {
    pub(crate) fn new(inner: R, limit: u64) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
            limit,
            exceeded: false,
        }
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        if self.count > self.limit {
            self.exceeded = true;
            return Err(io::Error::other("decompressed size limit exceeded"));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::TarBuilder;
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

    fn store() -> (tempfile::TempDir, LayerStore) {
        let root = tempfile::tempdir().unwrap();
        let ls = LayerStore::open(root.path()).unwrap();
        (root, ls)
    }

    #[test]
    fn adopt_moves_an_upper_in_and_keeps_only_the_opaque_mark() {
        if !is_root() {
            return;
        }
        let (root, ls) = store();
        let upper = root.path().join("tmp/upper");
        fs::create_dir_all(upper.join("opaque")).unwrap();
        fs::write(upper.join("f"), b"x").unwrap();
        let set = |p: &Path, k: &str| {
            rustix::fs::lsetxattr(p, k, b"y", rustix::fs::XattrFlags::empty()).unwrap()
        };
        set(&upper.join("opaque"), "trusted.overlay.opaque");
        set(&upper.join("opaque"), "trusted.overlay.impure");
        set(&upper.join("f"), "trusted.overlay.origin");
        set(&upper.join("f"), "user.keep");
        let diff = Digest::from_sha256_bytes(b"layer tar");
        let a = ls.adopt(None, &upper, &diff, 7).unwrap().unwrap();
        assert!(!a.already_existed && a.chain_id == diff && a.size == 7);
        assert!(!upper.exists());
        let dir = ls.diff_dir(&a.chain_id);
        let get = |p: &Path, k: &str| rustix::fs::lgetxattr(p, k, &mut [0u8; 8]).is_ok();
        assert!(get(&dir.join("opaque"), "trusted.overlay.opaque"));
        assert!(!get(&dir.join("opaque"), "trusted.overlay.impure"));
        assert!(!get(&dir.join("f"), "trusted.overlay.origin"));
        assert!(get(&dir.join("f"), "user.keep"));
        // The same layer again: already there, the new upper left to its owner.
        fs::create_dir_all(&upper).unwrap();
        assert!(
            ls.adopt(None, &upper, &diff, 7)
                .unwrap()
                .unwrap()
                .already_existed
        );
        assert!(upper.exists());
        // A redirect cannot be carried by a lower layer: not adopted, nothing moved.
        let other = Digest::from_sha256_bytes(b"other tar");
        fs::create_dir_all(upper.join("moved")).unwrap();
        set(&upper.join("moved"), "trusted.overlay.redirect");
        assert!(ls.adopt(None, &upper, &other, 1).unwrap().is_none());
        assert!(upper.join("moved").exists() && !ls.exists(&other));
    }

    fn is_root() -> bool {
        rustix::process::geteuid().is_root()
    }

    fn xattr(p: &Path, name: &str) -> Vec<u8> {
        let mut buf = [0u8; 256];
        let n = rustix::fs::getxattr(p, name, &mut buf[..]).unwrap();
        buf[..n].to_vec()
    }

    /// Nothing may remain in tmp or layers after a failed apply.
    fn assert_clean(root: &Path) {
        assert_eq!(
            fs::read_dir(root.join("tmp")).unwrap().count(),
            0,
            "tmp not empty"
        );
        assert_eq!(
            fs::read_dir(root.join("layers")).unwrap().count(),
            0,
            "layers not empty"
        );
    }

    #[test]
    fn extracts_all_entry_kinds() {
        let (root, ls) = store();
        let tar = TarBuilder::new()
            .dir("./", 0o755)
            .dir("bin", 0o755)
            .file("bin/su", b"#!su", 0o4755)
            .file_owned("home/user/f", b"data", 0o640, 1000, 1001)
            .symlink("bin/sh", "/bin/busybox")
            .symlink("abs", "/etc/../../outside")
            .hardlink("bin/su2", "bin/su")
            .device("dev/null", tar::EntryType::Char, 1, 3)
            .device("fifo", tar::EntryType::Fifo, 0, 0)
            .pax(&[("SCHILY.xattr.user.test", b"v"), ("mtime", b"1600000000.5")])
            .file("x", b"x", 0o600)
            .dir("ro", 0o555)
            .file("ro/inside", b"i", 0o644)
            .build();
        let opts = ExtractOptions {
            allow_devices: true,
            ..Default::default()
        };
        let a = ls.apply(None, &tar[..], &opts).unwrap();
        assert_eq!(a.diff_id, Digest::from_sha256_bytes(&tar));
        assert_eq!(a.chain_id, a.diff_id);
        assert_eq!(a.size, tar.len() as u64);
        assert!(!a.already_existed);
        let d = ls.diff_dir(&a.chain_id);
        let m = |p: &str| fs::symlink_metadata(d.join(p)).unwrap();
        assert_eq!(fs::read(d.join("bin/su")).unwrap(), b"#!su");
        assert_eq!(m("bin/su").permissions().mode() & 0o7777, 0o4755);
        assert_eq!(m("bin/su").mtime(), 1_700_000_000);
        assert_eq!(m("bin/su").ino(), m("bin/su2").ino());
        assert_eq!(
            fs::read_link(d.join("bin/sh")).unwrap(),
            Path::new("/bin/busybox")
        );
        assert!(m("fifo").file_type().is_fifo());
        assert_eq!(m("ro").permissions().mode() & 0o7777, 0o555);
        assert_eq!(m("x").mtime(), 1_600_000_000);
        assert_eq!(m("x").mtime_nsec(), 500_000_000);
        assert_eq!(xattr(&d.join("x"), "user.test"), b"v");
        if is_root() {
            assert_eq!(
                (m("home/user/f").uid(), m("home/user/f").gid()),
                (1000, 1001)
            );
            assert!(m("dev/null").file_type().is_char_device());
            assert_eq!(m("dev/null").rdev(), rustix::fs::makedev(1, 3));
        }
        // Same content again: the extraction is discarded.
        let b = ls.apply(None, &tar[..], &opts).unwrap();
        assert!(b.already_existed);
        assert_eq!(b.chain_id, a.chain_id);
        assert_eq!(fs::read_dir(root.path().join("tmp")).unwrap().count(), 0);
        assert_eq!(ls.list().unwrap(), vec![a.chain_id.clone()]);
        ls.remove(&a.chain_id).unwrap();
        assert!(!ls.exists(&a.chain_id));
        ls.remove(&a.chain_id).unwrap();
    }

    #[test]
    fn devices_skipped_when_not_allowed() {
        let (_root, ls) = store();
        let tar = TarBuilder::new()
            .device("dev/sda", tar::EntryType::Block, 8, 0)
            .file("f", b"", 0o644)
            .build();
        let opts = ExtractOptions {
            allow_devices: false,
            ..Default::default()
        };
        let a = ls.apply(None, &tar[..], &opts).unwrap();
        let d = ls.diff_dir(&a.chain_id);
        assert!(d.join("f").exists());
        assert!(fs::symlink_metadata(d.join("dev/sda")).is_err());
    }

    #[test]
    fn whiteouts_become_overlay_form() {
        if !is_root() {
            return;
        }
        let (_root, ls) = store();
        let tar = TarBuilder::new()
            .dir("etc", 0o755)
            .file("etc/.wh.passwd", b"", 0o644)
            .dir("var/cache", 0o755)
            .file("var/cache/.wh..wh..opq", b"", 0o644)
            .build();
        let a = ls
            .apply(None, &tar[..], &ExtractOptions::default())
            .unwrap();
        let d = ls.diff_dir(&a.chain_id);
        let wh = fs::symlink_metadata(d.join("etc/passwd")).unwrap();
        assert!(wh.file_type().is_char_device());
        assert_eq!(wh.rdev(), 0);
        assert!(!d.join("etc/.wh.passwd").exists());
        assert!(!d.join("var/cache/.wh..wh..opq").exists());
        assert_eq!(xattr(&d.join("var/cache"), "trusted.overlay.opaque"), b"y");
    }

    #[test]
    fn compressed_layers_have_the_plain_diff_id() {
        let (_root, ls) = store();
        let b = || TarBuilder::new().file("a", b"hello", 0o644);
        let plain = ls
            .apply(None, &b().build()[..], &ExtractOptions::default())
            .unwrap();
        let gz = ls
            .apply(None, &b().build_gzip()[..], &ExtractOptions::default())
            .unwrap();
        let zs = ls
            .apply(None, &b().build_zstd()[..], &ExtractOptions::default())
            .unwrap();
        assert_eq!(plain.diff_id, gz.diff_id);
        assert_eq!(plain.diff_id, zs.diff_id);
        assert!(gz.already_existed && zs.already_existed);
        let child = LayerStore::chain_id(Some(&plain.chain_id), &plain.diff_id);
        assert_eq!(
            child,
            Digest::from_sha256_bytes(format!("{} {}", plain.chain_id, plain.diff_id).as_bytes())
        );
    }

    #[test]
    fn empty_tar_is_valid_but_not_tar_is_not() {
        let (root, ls) = store();
        let empty = TarBuilder::new().build();
        let a = ls
            .apply(None, &empty[..], &ExtractOptions::default())
            .unwrap();
        assert!(ls.exists(&a.chain_id));
        ls.remove(&a.chain_id).unwrap();
        for bad in [
            &b""[..],
            &b"hello, this is not a tar archive\n"[..],
            &b"x".repeat(2048)[..],
        ] {
            let e = ls.apply(None, bad, &ExtractOptions::default()).unwrap_err();
            assert!(matches!(e, StoreError::InvalidArchive(_)), "{e:?}");
            assert_clean(root.path());
        }
    }

    #[test]
    fn truncated_archives_leave_nothing() {
        let (root, ls) = store();
        let big: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let b = || {
            TarBuilder::new()
                .file("a", &big, 0o644)
                .file("b", b"b", 0o644)
        };
        let gz = b().build_gzip();
        let zs = b().build_zstd();
        let plain = b().build();
        for cut in [
            &gz[..gz.len() / 2],
            &gz[..gz.len() - 4],
            &zs[..zs.len() / 2],
            &plain[..700],
        ] {
            let e = ls.apply(None, cut, &ExtractOptions::default()).unwrap_err();
            assert!(matches!(e, StoreError::InvalidArchive(_)), "{e:?}");
            assert_clean(root.path());
        }
    }

    #[test]
    fn size_limit_stops_bombs() {
        let (root, ls) = store();
        let tar = TarBuilder::new()
            .file("a", &vec![0u8; 1 << 20], 0o644)
            .build_gzip();
        let opts = ExtractOptions {
            max_uncompressed: 64 * 1024,
            ..Default::default()
        };
        let e = ls.apply(None, &tar[..], &opts).unwrap_err();
        assert!(matches!(e, StoreError::TooLarge(_)), "{e:?}");
        assert_clean(root.path());
    }

    #[test]
    fn malicious_archives_are_rejected() {
        let (root, ls) = store();
        // A directory next to the data root that an escape would write into.
        let outside = root.path().join("outside");
        fs::create_dir(&outside).unwrap();
        let out = outside.display().to_string();
        let cases: Vec<(&str, Vec<u8>)> = vec![
            (
                "dotdot",
                TarBuilder::new().file("../evil", b"x", 0o644).build(),
            ),
            (
                "nested dotdot",
                TarBuilder::new().file("a/../../evil", b"x", 0o644).build(),
            ),
            (
                "absolute",
                TarBuilder::new().file("/evil", b"x", 0o644).build(),
            ),
            (
                "symlink escape absolute",
                TarBuilder::new()
                    .symlink("link", &out)
                    .file("link/evil", b"x", 0o644)
                    .build(),
            ),
            (
                "symlink escape relative",
                TarBuilder::new()
                    .symlink("link", "../../../outside")
                    .file("link/evil", b"x", 0o644)
                    .build(),
            ),
            (
                "symlink chain escape",
                TarBuilder::new()
                    .dir("d", 0o755)
                    .symlink("d/up", "..")
                    .symlink("up2", "d/up/..")
                    .file("up2/evil", b"x", 0o644)
                    .build(),
            ),
            (
                "hardlink out relative",
                TarBuilder::new()
                    .hardlink("evil", "../outside/target")
                    .build(),
            ),
            (
                "hardlink out absolute",
                TarBuilder::new()
                    .hardlink("evil", &format!("{out}/target"))
                    .build(),
            ),
            (
                "hardlink via symlink dir",
                TarBuilder::new()
                    .symlink("link", &out)
                    .hardlink("evil", "link/target")
                    .build(),
            ),
            (
                "hardlink absent",
                TarBuilder::new().hardlink("evil", "nothing").build(),
            ),
            (
                "whiteout dotdot",
                TarBuilder::new().file(".wh...", b"", 0o644).build(),
            ),
        ];
        fs::write(outside.join("target"), b"secret").unwrap();
        for (name, tar) in cases {
            let r = ls.apply(None, &tar[..], &ExtractOptions::default());
            assert!(
                matches!(
                    r,
                    Err(StoreError::UnsafePath(_)) | Err(StoreError::InvalidArchive(_))
                ),
                "{name}: {r:?}"
            );
            assert_clean(root.path());
            let names: Vec<_> = fs::read_dir(&outside)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert_eq!(names, vec![std::ffi::OsString::from("target")], "{name}");
            assert!(!root.path().join("evil").exists(), "{name}");
        }
    }

    #[test]
    fn symlink_inside_the_layer_may_be_followed() {
        let (_root, ls) = store();
        let tar = TarBuilder::new()
            .dir("usr/lib", 0o755)
            .symlink("lib", "usr/lib")
            .file("lib/libc.so", b"c", 0o644)
            .build();
        let a = ls
            .apply(None, &tar[..], &ExtractOptions::default())
            .unwrap();
        assert!(ls.diff_dir(&a.chain_id).join("usr/lib/libc.so").is_file());
    }

    #[test]
    fn sweep_removes_leftovers() {
        let (root, ls) = store();
        fs::create_dir_all(root.path().join("tmp/layer-abc/diff")).unwrap();
        fs::create_dir_all(root.path().join("tmp/remove-abc")).unwrap();
        ls.sweep_temp().unwrap();
        assert_eq!(fs::read_dir(root.path().join("tmp")).unwrap().count(), 0);
    }
}

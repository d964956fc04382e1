//! Content-addressed blob store: `<root>/content/blobs/sha256/<hex>`.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::digest::Digest;
use crate::error::StoreError;

/// Blobs by digest. Writes are atomic: temp file, hash while copying, fsync, rename.
#[derive(Debug, Clone)]
pub struct ContentStore {
    blobs: PathBuf,
    tmp: PathBuf,
}

impl ContentStore {
    pub fn open(data_root: &Path) -> Result<Self, StoreError> {
        let blobs = data_root.join("content").join("blobs").join("sha256");
        // Temp files live on the same filesystem as the blobs so rename is atomic.
        let tmp = data_root.join("tmp");
        fs::create_dir_all(&blobs)?;
        fs::create_dir_all(&tmp)?;
        Ok(ContentStore { blobs, tmp })
    }

    /// Stores the stream and returns its digest and size.
    pub fn put(&self, r: impl Read) -> Result<(Digest, u64), StoreError> {
        self.put_inner(r, None, true)
    }

    /// `put` without the fsyncs: the caller syncs the file system once for many blobs.
    pub fn put_unsynced(&self, r: impl Read) -> Result<(Digest, u64), StoreError> {
        self.put_inner(r, None, false)
    }

    /// Stores the stream only if it hashes to `expected`; on mismatch nothing is left behind.
    pub fn put_verified(&self, r: impl Read, expected: &Digest) -> Result<u64, StoreError> {
        self.put_inner(r, Some(expected), true).map(|(_, n)| n)
    }

    /// `put_verified` without the fsyncs: the caller syncs the file system (`sync_fs`) once
    /// for many blobs before anything names them.
    pub fn put_verified_unsynced(
        &self,
        r: impl Read,
        expected: &Digest,
    ) -> Result<u64, StoreError> {
        self.put_inner(r, Some(expected), false).map(|(_, n)| n)
    }

    /// One syncfs of the file system the store is on: every unsynced write becomes durable.
    pub fn sync_fs(&self) -> Result<(), StoreError> {
        let dir = File::open(&self.blobs)?;
        rustix::fs::syncfs(&dir).map_err(io::Error::from)?;
        Ok(())
    }

    pub fn put_bytes(&self, b: &[u8]) -> Result<Digest, StoreError> {
        self.put(b).map(|(d, _)| d)
    }

    fn put_inner(
        &self,
        mut r: impl Read,
        expected: Option<&Digest>,
        sync: bool,
    ) -> Result<(Digest, u64), StoreError> {
        // NamedTempFile deletes itself on drop, so every error path cleans up.
        let mut tmp = tempfile::Builder::new()
            .prefix("blob-")
            .tempfile_in(&self.tmp)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        let mut size = 0u64;
        loop {
            let n = match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            hasher.update(&buf[..n]);
            tmp.write_all(&buf[..n])?;
            size += n as u64;
        }
        let digest = Digest::from_hasher(hasher);
        if let Some(exp) = expected {
            if exp != &digest {
                return Err(StoreError::DigestMismatch {
                    expected: exp.to_string(),
                    actual: digest.to_string(),
                });
            }
        }
        let dest = self.path(&digest);
        if dest.exists() {
            // Same content already stored; the temp file is dropped.
            return Ok((digest, size));
        }
        if sync {
            tmp.as_file().sync_all()?;
        }
        tmp.persist(&dest).map_err(|e| StoreError::Io(e.error))?;
        if sync {
            sync_dir(&self.blobs)?;
        }
        tracing::debug!(%digest, size, "stored blob");
        Ok((digest, size))
    }

    pub fn contains(&self, d: &Digest) -> bool {
        self.path(d).is_file()
    }

    pub fn path(&self, d: &Digest) -> PathBuf {
        self.blobs.join(d.hex())
    }

    pub fn read(&self, d: &Digest) -> Result<Vec<u8>, StoreError> {
        fs::read(self.path(d)).map_err(|e| not_found(e, d))
    }

    pub fn open_blob(&self, d: &Digest) -> Result<File, StoreError> {
        File::open(self.path(d)).map_err(|e| not_found(e, d))
    }

    pub fn size(&self, d: &Digest) -> Result<u64, StoreError> {
        Ok(fs::metadata(self.path(d))
            .map_err(|e| not_found(e, d))?
            .len())
    }

    /// Removes a blob; removing an absent blob is not an error.
    pub fn remove(&self, d: &Digest) -> Result<(), StoreError> {
        match fs::remove_file(self.path(d)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// All stored blob digests (for garbage collection).
    pub fn list(&self) -> Result<Vec<Digest>, StoreError> {
        crate::digest::list_hex_dir(&self.blobs)
    }
}

fn not_found(e: io::Error, d: &Digest) -> StoreError {
    if e.kind() == io::ErrorKind::NotFound {
        StoreError::BlobNotFound(d.to_string())
    } else {
        StoreError::Io(e)
    }
}

/// fsyncs a directory so a rename into it survives a crash.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_read_remove() {
        let root = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(root.path()).unwrap();
        let (d, n) = cs.put(&b"hello"[..]).unwrap();
        assert_eq!(n, 5);
        assert_eq!(d, Digest::from_sha256_bytes(b"hello"));
        assert!(cs.contains(&d));
        assert_eq!(cs.read(&d).unwrap(), b"hello");
        assert_eq!(cs.size(&d).unwrap(), 5);
        assert_eq!(cs.put_bytes(b"hello").unwrap(), d);
        assert_eq!(cs.list().unwrap(), vec![d.clone()]);
        cs.remove(&d).unwrap();
        assert!(!cs.contains(&d));
        cs.remove(&d).unwrap();
        assert!(matches!(cs.read(&d), Err(StoreError::BlobNotFound(_))));
    }

    #[test]
    fn verified_mismatch_leaves_nothing() {
        let root = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(root.path()).unwrap();
        let wrong = Digest::from_sha256_bytes(b"other");
        let err = cs.put_verified(&b"hello"[..], &wrong).unwrap_err();
        assert!(matches!(err, StoreError::DigestMismatch { .. }));
        assert!(cs.list().unwrap().is_empty());
        assert_eq!(fs::read_dir(root.path().join("tmp")).unwrap().count(), 0);
        let good = Digest::from_sha256_bytes(b"hello");
        assert_eq!(cs.put_verified(&b"hello"[..], &good).unwrap(), 5);
    }
}

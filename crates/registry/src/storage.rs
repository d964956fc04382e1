//! The registry's root directory:
//!
//! ```text
//! <root>/registry.lock                 held by `serve` for its lifetime; `gc` needs it too
//! <root>/registry.db                   SQLite: blob links, manifests, tags (see db.rs)
//! <root>/content/blobs/sha256/<hex>    blobs and manifests, once for all repositories
//! <root>/tmp/                          the content store's temp files
//! <root>/uploads/<uuid>/{repo,data}    upload sessions
//! <root>/token.key                     the HMAC key of `--token`'s tokens (0600)
//! ```

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use berth_store::{ContentStore, Digest};

use crate::db::Db;
use crate::error::{ApiError, RegistryError};

pub struct Storage {
    pub root: PathBuf,
    pub content: ContentStore,
    pub uploads_dir: PathBuf,
    db: Mutex<Db>,
}

impl Storage {
    pub fn open(root: &Path) -> Result<Storage, RegistryError> {
        fs::create_dir_all(root).map_err(|e| RegistryError::file(root, e))?;
        let content = ContentStore::open(root)?;
        let uploads_dir = root.join("uploads");
        fs::create_dir_all(&uploads_dir).map_err(|e| RegistryError::file(&uploads_dir, e))?;
        let db = Db::open(&root.join("registry.db"))?;
        Ok(Storage {
            root: root.to_path_buf(),
            content,
            uploads_dir,
            db: Mutex::new(db),
        })
    }

    /// Runs `f` on the database on a blocking thread (SQLite's fsyncs must not stall the
    /// async workers).
    pub async fn db<T, F>(self: &Arc<Self>, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Db) -> Result<T, ApiError> + Send + 'static,
    {
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || this.db_sync(f)).await?
    }

    pub fn db_sync<T>(
        &self,
        f: impl FnOnce(&mut Db) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        // A panic while holding the lock leaves no half-done SQLite state (transactions roll
        // back on drop), so a poisoned lock is still usable.
        let mut db = self.db.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut db)
    }

    /// Moves a finished, verified upload into the content store: fsync the file, rename it to
    /// its digest's name, fsync the directory. Content already stored is kept and `file`
    /// removed.
    pub fn commit_blob(&self, file: &Path, d: &Digest) -> io::Result<()> {
        let dest = self.content.path(d);
        if dest.is_file() {
            return fs::remove_file(file);
        }
        File::open(file)?.sync_all()?;
        fs::rename(file, &dest)?;
        match dest.parent() {
            Some(dir) => File::open(dir)?.sync_all(),
            None => Ok(()),
        }
    }
}

/// `<root>/registry.lock`, exclusively locked: by `serve` while it runs, by `gc` while it
/// sweeps, so that gc never removes a blob a running server has just been told about.
pub struct RootLock {
    _file: File,
}

impl RootLock {
    pub fn acquire(root: &Path) -> Result<RootLock, RegistryError> {
        fs::create_dir_all(root).map_err(|e| RegistryError::file(root, e))?;
        let path = root.join("registry.lock");
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| RegistryError::file(&path, e))?;
        match file.try_lock() {
            Ok(()) => Ok(RootLock { _file: file }),
            Err(fs::TryLockError::WouldBlock) => {
                Err(RegistryError::Locked(root.to_path_buf(), path))
            }
            Err(fs::TryLockError::Error(e)) => Err(RegistryError::file(&path, e)),
        }
    }
}

use std::path::PathBuf;

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid digest: {0:?}")]
    InvalidDigest(String),
    #[error("invalid archive: {0}")]
    InvalidArchive(String),
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { expected: String, actual: String },
    #[error("unsafe path in archive: {0}")]
    UnsafePath(String),
    #[error("name already in use: {0}")]
    NameConflict(String),
    #[error("blob not found: {0}")]
    BlobNotFound(String),
    #[error("archive exceeds the decompressed size limit of {0} bytes")]
    TooLarge(u64),
    #[error("mount of {target} failed: {source}")]
    Mount {
        target: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("database error: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("stored record is corrupt: {0}")]
    CorruptRecord(String),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl From<rustix::io::Errno> for StoreError {
    fn from(e: rustix::io::Errno) -> Self {
        StoreError::Io(e.into())
    }
}

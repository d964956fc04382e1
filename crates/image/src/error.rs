use berth_store::StoreError;

/// Errors of the image layer; Display strings follow Docker's wording.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("No such image: {0}")]
    NotFound(String),
    #[error("{0}")]
    InvalidReference(String),
    #[error("invalid archive: {0}")]
    InvalidArchive(String),
    /// Docker prefixes these with "conflict: ".
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("invalid JSON in {what}: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
}

impl ImageError {
    pub(crate) fn json(what: impl Into<String>) -> impl FnOnce(serde_json::Error) -> ImageError {
        let what = what.into();
        move |source| ImageError::Json { what, source }
    }
}

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// A malformed mount or volume request; the text is Docker's wording (the API answers 400).
    #[error("{0}")]
    Invalid(String),
    #[error("mount {what} on {}: {source}", target.display())]
    Mount {
        what: String,
        target: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("copying image content into the volume: {0}")]
    Copy(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

pub type Result<T> = std::result::Result<T, VolumeError>;

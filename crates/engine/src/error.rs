use berth_image::ImageError;
use berth_store::StoreError;

/// Errors the engine reports to its callers. Each maps to one HTTP status in the API layer,
/// chosen to match what dockerd answers for the same situation.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// 404: the message is the whole text, e.g. "No such container: web".
    #[error("{0}")]
    NotFound(String),
    /// 409: name in use, removing a running container, image in use.
    #[error("{0}")]
    Conflict(String),
    /// 400: bad parameter or body.
    #[error("{0}")]
    InvalidArgument(String),
    /// 401: a registry refused the credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: the operation is not allowed on this object (a read-only rootfs).
    #[error("{0}")]
    Forbidden(String),
    /// 304: start of a running container, stop of a stopped one.
    #[error("container already in the requested state")]
    NotModified,
    /// 500: everything the user cannot fix by changing the request.
    #[error("{0}")]
    Internal(String),
    /// 500: a command the daemon ran on the user's behalf (a build's RUN) exited non-zero;
    /// the code travels to the client (`errorDetail.code`, the docker CLI's exit status).
    #[error("{message}")]
    CommandFailed { message: String, code: i64 },
}

impl EngineError {
    pub fn no_such_container(name: &str) -> Self {
        EngineError::NotFound(format!("No such container: {name}"))
    }
    /// dockerd's 409 for an operation that needs a running container.
    pub fn not_running(id: &str) -> Self {
        EngineError::Conflict(format!("Container {id} is not running"))
    }
    /// dockerd's 409 while a restart policy's back-off is pending.
    pub fn restarting(id: &str) -> Self {
        EngineError::Conflict(format!(
            "Container {id} is restarting, wait until the container is running"
        ))
    }
    pub fn internal(e: impl std::fmt::Display) -> Self {
        EngineError::Internal(e.to_string())
    }
}

impl From<ImageError> for EngineError {
    fn from(e: ImageError) -> Self {
        match e {
            ImageError::NotFound(_) => EngineError::NotFound(e.to_string()),
            ImageError::InvalidReference(_)
            | ImageError::InvalidArchive(_)
            | ImageError::InvalidArgument(_) => EngineError::InvalidArgument(e.to_string()),
            ImageError::Conflict(_) => EngineError::Conflict(e.to_string()),
            other => EngineError::Internal(other.to_string()),
        }
    }
}

impl From<StoreError> for EngineError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NameConflict(_) => EngineError::Conflict(e.to_string()),
            other => EngineError::Internal(other.to_string()),
        }
    }
}

impl From<std::io::Error> for EngineError {
    fn from(e: std::io::Error) -> Self {
        EngineError::Internal(e.to_string())
    }
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

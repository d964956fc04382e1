//! Errors: `RegistryError` at the crate's boundary (start-up, gc), `ApiError` on the wire (the
//! distribution-spec's `{"errors":[{code,message,detail}]}` with the status distribution uses).

use std::path::PathBuf;

use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// Failures of `serve`'s start-up and of `gc`.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{0}")]
    Config(String),
    #[error("{path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the registry root {0} is in use by a running `berth registry serve` (it holds {1}); stop it first"
    )]
    Locked(PathBuf, PathBuf),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error(transparent)]
    Store(#[from] berth_store::StoreError),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

impl RegistryError {
    pub(crate) fn file(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        RegistryError::File {
            path: path.into(),
            source,
        }
    }
}

/// The distribution-spec's error codes (and distribution's few extra ones clients know).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    SizeInvalid,
    TagInvalid,
    Unauthorized,
    Denied,
    Unsupported,
    PaginationNumberInvalid,
    Unknown,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::BlobUnknown => "BLOB_UNKNOWN",
            Code::BlobUploadInvalid => "BLOB_UPLOAD_INVALID",
            Code::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            Code::DigestInvalid => "DIGEST_INVALID",
            Code::ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            Code::ManifestInvalid => "MANIFEST_INVALID",
            Code::ManifestUnknown => "MANIFEST_UNKNOWN",
            Code::NameInvalid => "NAME_INVALID",
            Code::NameUnknown => "NAME_UNKNOWN",
            Code::SizeInvalid => "SIZE_INVALID",
            Code::TagInvalid => "TAG_INVALID",
            Code::Unauthorized => "UNAUTHORIZED",
            Code::Denied => "DENIED",
            Code::Unsupported => "UNSUPPORTED",
            Code::PaginationNumberInvalid => "PAGINATION_NUMBER_INVALID",
            Code::Unknown => "UNKNOWN",
        }
    }

    /// The status distribution 2.8 answers each code with.
    pub fn status(self) -> StatusCode {
        match self {
            Code::BlobUnknown
            | Code::BlobUploadUnknown
            | Code::ManifestUnknown
            | Code::NameUnknown => StatusCode::NOT_FOUND,
            Code::BlobUploadInvalid
            | Code::DigestInvalid
            | Code::ManifestBlobUnknown
            | Code::ManifestInvalid
            | Code::NameInvalid
            | Code::SizeInvalid
            | Code::TagInvalid
            | Code::PaginationNumberInvalid => StatusCode::BAD_REQUEST,
            Code::Unauthorized => StatusCode::UNAUTHORIZED,
            Code::Denied => StatusCode::FORBIDDEN,
            Code::Unsupported => StatusCode::METHOD_NOT_ALLOWED,
            Code::Unknown => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn message(self) -> &'static str {
        match self {
            Code::BlobUnknown => "blob unknown to registry",
            Code::BlobUploadInvalid => "blob upload invalid",
            Code::BlobUploadUnknown => "blob upload unknown to registry",
            Code::DigestInvalid => "provided digest did not match uploaded content",
            Code::ManifestBlobUnknown => "blob unknown to registry",
            Code::ManifestInvalid => "manifest invalid",
            Code::ManifestUnknown => "manifest unknown",
            Code::NameInvalid => "invalid repository name",
            Code::NameUnknown => "repository name not known to registry",
            Code::SizeInvalid => "provided length did not match content length",
            Code::TagInvalid => "manifest tag did not match URI",
            Code::Unauthorized => "authentication required",
            Code::Denied => "requested access to the resource is denied",
            Code::Unsupported => "The operation is unsupported.",
            Code::PaginationNumberInvalid => "invalid number of results requested",
            Code::Unknown => "unknown error",
        }
    }
}

/// One error answer: a code, its status (overridable: an out-of-order chunk is
/// `BLOB_UPLOAD_INVALID` with 416), a detail and extra headers (challenges, `Range`).
/// Boxed: handlers pass it up through many `Result`s.
#[derive(Debug)]
pub struct ApiError(Box<ErrorAnswer>);

#[derive(Debug)]
struct ErrorAnswer {
    code: Code,
    status: StatusCode,
    message: String,
    detail: Value,
    headers: HeaderMap,
}

impl ApiError {
    pub fn new(code: Code) -> Self {
        ApiError(Box::new(ErrorAnswer {
            code,
            status: code.status(),
            message: code.message().to_string(),
            detail: Value::Null,
            headers: HeaderMap::new(),
        }))
    }

    #[cfg(test)]
    pub fn code(&self) -> Code {
        self.0.code
    }

    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.0.message = message.into();
        self
    }

    pub fn with_detail(mut self, detail: Value) -> Self {
        self.0.detail = detail;
        self
    }

    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.0.status = status;
        self
    }

    /// Adds a header; values that are not valid header text are dropped (they are built from
    /// validated names and numbers, so this never happens in practice).
    pub fn with_header(mut self, name: HeaderName, value: &str) -> Self {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.0.headers.insert(name, v);
        }
        self
    }

    /// A failure of the server itself (disk, database): logged, answered as `UNKNOWN` 500
    /// without internals.
    pub fn internal(what: impl std::fmt::Display) -> Self {
        tracing::warn!("registry internal error: {what}");
        ApiError::new(Code::Unknown)
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(e: rusqlite::Error) -> Self {
        ApiError::internal(format!("database: {e}"))
    }
}

impl From<std::io::Error> for ApiError {
    fn from(e: std::io::Error) -> Self {
        ApiError::internal(format!("I/O: {e}"))
    }
}

impl From<berth_store::StoreError> for ApiError {
    fn from(e: berth_store::StoreError) -> Self {
        ApiError::internal(format!("store: {e}"))
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        ApiError::internal(format!("task: {e}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = *self.0;
        let body = json!({"errors": [{
            "code": e.code.as_str(),
            "message": e.message,
            "detail": e.detail,
        }]})
        .to_string();
        let mut resp = (e.status, body).into_response();
        let headers = resp.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        headers.extend(e.headers);
        resp.extensions_mut().insert(ErrorCodeTag(e.code));
        resp
    }
}

/// Lets the request log name the error code of a failed request.
#[derive(Debug, Clone, Copy)]
pub struct ErrorCodeTag(pub Code);

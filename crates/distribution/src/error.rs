use berth_store::Digest;

/// What went wrong talking to a registry. Display strings follow Docker's wording where a user
/// sees them.
#[derive(Debug, thiserror::Error)]
pub enum DistributionError {
    /// The registry answered with an error status. `code` is the distribution-spec error code of
    /// the body's first error (`MANIFEST_UNKNOWN`, `NAME_UNKNOWN`, `UNAUTHORIZED`, `DENIED`, …),
    /// or empty when the body had none; `message` is that error's message or the status text.
    #[error("{}", registry_message(code, message))]
    Registry {
        status: u16,
        code: String,
        message: String,
    },
    /// Connecting, TLS, or the connection broke (after the retries a download gets).
    #[error("{0}")]
    Transport(String),
    /// The registry did not answer or stopped sending for the configured timeout.
    #[error("{0}")]
    Timeout(String),
    /// Content whose digest is not the one asked for (a manifest fetched by digest).
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
    /// A reply that breaks the protocol: oversized manifest, bad JSON, bad header, bad Location.
    #[error("{0}")]
    InvalidResponse(String),
    /// Bad local settings: an unreadable certificate, a malformed mirror URL.
    #[error("{0}")]
    Config(String),
}

/// Docker prints registry errors as "<code lowercased and spaced>: <message>", e.g.
/// "manifest unknown: manifest unknown", "unauthorized: authentication required".
fn registry_message(code: &str, message: &str) -> String {
    if code.is_empty() {
        return message.to_string();
    }
    format!("{}: {message}", code.to_ascii_lowercase().replace('_', " "))
}

impl DistributionError {
    /// The HTTP status the registry answered, if it did.
    pub fn status(&self) -> Option<u16> {
        match self {
            DistributionError::Registry { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The distribution-spec error code, if the registry gave one.
    pub fn code(&self) -> Option<&str> {
        match self {
            DistributionError::Registry { code, .. } if !code.is_empty() => Some(code),
            _ => None,
        }
    }

    /// 401, or 403 / `DENIED`: the credentials (or their absence) are the problem.
    pub fn is_auth(&self) -> bool {
        matches!(self.status(), Some(401) | Some(403))
            || matches!(self.code(), Some("UNAUTHORIZED") | Some("DENIED"))
    }

    /// 404 or a `*_UNKNOWN` code: the repository, tag, manifest or blob does not exist.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404) || self.code().is_some_and(|c| c.ends_with("_UNKNOWN"))
    }
}

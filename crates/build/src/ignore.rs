//! `.dockerignore` with Docker's semantics (moby/patternmatcher): one pattern per line, `#`
//! comments, patterns cleaned (`filepath.Clean`) and relative to the context root (a leading
//! `/` is dropped), Go `filepath.Match` syntax (`*`, `?`, `[a-z]`, `\` escapes) plus `**`
//! matching any number of directories, `!` exceptions re-including what an earlier pattern
//! excluded (the last matching pattern wins), and a path also excluded when one of its parent
//! directories is.

/// A parsed `.dockerignore`.
#[derive(Debug, Clone, Default)]
pub struct DockerIgnore {}

/// A malformed pattern (e.g. a bad `[` class).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid .dockerignore pattern {pattern:?}: {message}")]
pub struct PatternError {
    pub pattern: String,
    pub message: String,
}

impl DockerIgnore {
    pub fn parse(text: &str) -> Result<DockerIgnore, PatternError> {
        todo!("{text}")
    }

    /// Whether `path` (relative to the context root, `/`-separated, no leading `./`) is
    /// excluded from the context.
    pub fn excludes(&self, path: &str) -> bool {
        todo!("{path}")
    }

    /// Whether a directory that is itself excluded may still hold re-included entries (an
    /// exception pattern could match below it), so a walker must descend into it.
    pub fn may_include_below(&self, dir: &str) -> bool {
        todo!("{dir}")
    }
}

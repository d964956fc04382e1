//! `.dockerignore` with Docker's semantics: moby/patternmatcher's `ignorefile.ReadAll` for the
//! file, `patternmatcher.New` for the patterns and BuildKit's context walk (fsutil's
//! `filterFS.Walk`, `MatchesUsingParentResults`) for what is excluded.
//!
//! - One pattern a line (a UTF-8 BOM dropped); a line starting with `#` is a comment; lines
//!   are trimmed and empty ones skipped.
//! - `!` makes an exception that re-includes; `!` alone is an error.
//! - Patterns are cleaned like Go's `filepath.Clean` (`./a` → `a`, `a/` → `a`, `a/../b` →
//!   `b`) and a leading `/` is dropped: they are relative to the context root.
//! - Go `filepath.Match` syntax: `*` and `?` never match `/`, `[a-c]`, `[^a]`, `\` escapes;
//!   plus `**`, matching any number of directories (`**/x`, `x/**`, `a/**/b`).
//! - A pattern matching a directory matches everything below it, and the last pattern that
//!   matches a path or one of its parents decides.
//!
//! Docker still sends the Dockerfile and `.dockerignore` when they are excluded (the CLI adds
//! `!.dockerignore` and `!<dockerfile>` exceptions; BuildKit transfers the Dockerfile apart
//! from the context). That is the caller's rule, not applied here.

mod pattern;
#[cfg(test)]
mod tests;

use pattern::Pattern;

/// A parsed `.dockerignore`.
#[derive(Debug, Clone, Default)]
pub struct DockerIgnore {
    patterns: Vec<Pattern>,
}

/// A malformed pattern (e.g. a bad `[` class).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid .dockerignore pattern {pattern:?}: {message}")]
pub struct PatternError {
    pub pattern: String,
    pub message: String,
}

/// What a directory's check found, pattern by pattern, for the checks of its entries
/// (patternmatcher's `MatchInfo`, kept per directory by BuildKit's walk). The default is the
/// context root's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatchInfo {
    matched: Vec<bool>,
}

impl DockerIgnore {
    pub fn parse(text: &str) -> Result<DockerIgnore, PatternError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut patterns = Vec::new();
        for line in text.lines() {
            if line.starts_with('#') {
                continue;
            }
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let error = |message: &str| PatternError {
                pattern: line.to_owned(),
                message: message.to_owned(),
            };
            // `/ /` is ` ` after `ReadAll`, nothing after `New` trims it again.
            let normalized = normalize_line(line);
            if normalized.trim().is_empty() {
                continue;
            }
            let cleaned = clean(normalized.trim());
            let (exception, body) = match cleaned.strip_prefix('!') {
                Some("") => return Err(error("illegal exclusion pattern: \"!\"")),
                Some(body) => (true, body),
                None => (false, cleaned.as_str()),
            };
            patterns.push(Pattern::new(body, exception).map_err(|e| error(e.message()))?);
        }
        Ok(DockerIgnore { patterns })
    }

    /// Whether `path` (relative to the context root, `/`-separated, no leading `./`) is
    /// excluded from the context. Checks each parent directory on the way down, as BuildKit's
    /// walk does; a walker can instead carry [`MatchInfo`] with [`Self::excludes_with_parent`].
    pub fn excludes(&self, path: &str) -> bool {
        let mut excluded = false;
        let mut info = MatchInfo::default();
        let mut prefix = String::with_capacity(path.len());
        for component in path.split('/').filter(|c| !c.is_empty() && *c != ".") {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(component);
            (excluded, info) = self.excludes_with_parent(&prefix, &info);
        }
        excluded
    }

    /// [`Self::excludes`] for one entry of a walk, given its directory's [`MatchInfo`]
    /// (the default one for entries of the root); returns the entry's own for its entries.
    ///
    /// patternmatcher's `MatchesUsingParentResults`: a pattern matched by the directory counts
    /// as matched. Like it, a pattern that could not change the verdict is not evaluated and
    /// so not handed down: with `a/b` then `!a`, `a/b` is excluded (`!a` was skipped at `a`,
    /// while `a/b` was not yet excluded), as BuildKit does.
    pub fn excludes_with_parent(&self, path: &str, parent: &MatchInfo) -> (bool, MatchInfo) {
        let inherited = &parent.matched;
        let mut excluded = false;
        let mut matched = vec![false; self.patterns.len()];
        for (i, pattern) in self.patterns.iter().enumerate() {
            let hit = if inherited.get(i).copied().unwrap_or(false) {
                true
            } else if pattern.exception != excluded {
                continue;
            } else {
                pattern.matches(path)
                    || (inherited.is_empty() && matches_an_ancestor(pattern, path))
            };
            matched[i] = hit;
            if hit {
                excluded = !pattern.exception;
            }
        }
        (excluded, MatchInfo { matched })
    }

    /// Whether a directory that is itself excluded may still hold re-included entries (an
    /// exception pattern could match below it), so a walker must descend into it. When false,
    /// everything below `dir` is excluded and the walk can skip it. A directory holding
    /// re-included entries is itself sent (BuildKit adds the parents of what it sends).
    ///
    /// BuildKit answers "walk" for any exception with a wildcard; this looks at what the
    /// exception can match, which skips more but sends the same files.
    pub fn may_include_below(&self, dir: &str) -> bool {
        let dir = clean(dir);
        let dir_slash = match dir.as_str() {
            "." | "/" => String::new(),
            dir => format!("{}/", dir.trim_start_matches('/')),
        };
        self.patterns
            .iter()
            .any(|p| p.exception && p.may_match_below(&dir_slash))
    }
}

/// `ignorefile.ReadAll` on a trimmed, non-comment line: the text after `!` trimmed, cleaned
/// and without a leading `/`. `patternmatcher.New` then trims and cleans the result again,
/// `!` included, which the caller does.
fn normalize_line(line: &str) -> String {
    let (bang, body) = match line.strip_prefix('!') {
        Some(rest) => ("!", rest.trim()),
        None => ("", line),
    };
    if body.is_empty() {
        return bang.to_owned();
    }
    let body = clean(body);
    let body = match body.strip_prefix('/') {
        Some(rest) if !rest.is_empty() => rest,
        _ => &body,
    };
    format!("{bang}{body}")
}

/// The parent-directory check patternmatcher applies when it has no [`MatchInfo`]: whether
/// the pattern matches `filepath.Dir(path)` or one of its parents.
fn matches_an_ancestor(pattern: &Pattern, path: &str) -> bool {
    let parent = go_dir(path);
    if parent == "." {
        return false;
    }
    let mut end = 0;
    parent.split('/').any(|component| {
        end += component.len();
        let hit = pattern.matches(&parent[..end]);
        end += 1;
        hit
    })
}

/// Go's `filepath.Dir` on `/`-separated paths.
fn go_dir(path: &str) -> String {
    match path.rfind('/') {
        Some(slash) => clean(&path[..=slash]),
        None => ".".to_owned(),
    }
}

/// Go's `filepath.Clean` on `/`-separated paths: no empty or `.` components, `..` applied
/// where it can be (and dropped at the root), `.` for nothing.
fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for component in path.split('/') {
        match component {
            "" | "." => {}
            ".." if parts.last().is_some_and(|last| *last != "..") => {
                parts.pop();
            }
            ".." if rooted => {}
            component => parts.push(component),
        }
    }
    match (rooted, parts.is_empty()) {
        (true, _) => format!("/{}", parts.join("/")),
        (false, true) => ".".to_owned(),
        (false, false) => parts.join("/"),
    }
}

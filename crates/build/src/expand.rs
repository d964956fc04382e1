//! Variable expansion as BuildKit's shell lexer does it (`ShellLex.ProcessWord(s)`): `$v`,
//! `${v}`, `${v:-w}`, `${v-w}`, `${v:+w}`, `${v+w}`, `${v:?msg}`, `${v#p}`, `${v##p}`,
//! `${v%p}`, `${v%%p}` (glob patterns), `${v/p/r}` and `${v//p/r}`, the escape character
//! (`\` or `` ` ``) protecting `$` and quotes, single quotes preventing expansion, double quotes
//! allowing it; quotes are removed from the result as BuildKit does for the instructions that
//! expand words.

/// An expansion failure (`${v:?msg}` on an unset variable, a bad substitution).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ExpandError(pub String);

/// Expands one word (quotes processed and removed). `vars` returns a variable's value.
pub fn expand_word(
    word: &str,
    escape: char,
    vars: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ExpandError> {
    todo!("{word} {escape} {:?}", vars("x"))
}

/// Splits `text` into words on unquoted whitespace and expands each (what ENV/LABEL values,
/// EXPOSE, VOLUME, USER, WORKDIR… need: `ProcessWords`).
pub fn expand_words(
    text: &str,
    escape: char,
    vars: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, ExpandError> {
    todo!("{text} {escape} {:?}", vars("x"))
}

//! BuildKit's line reader (`parser.Parse`): parser directives at the top, comments, line
//! continuations with the escape character, and heredoc bodies. It yields one logical line per
//! instruction with its line range and heredocs; the instructions themselves are read later.

use super::words::{json_array, split_command};
use super::{Directives, Heredoc, ParseError};
use crate::expand::{heredoc_delimiter, raw_words};

/// One instruction's text as BuildKit's `Node.Original`: continuation lines appended as
/// written (the escape character and the whitespace after it removed), comment and blank
/// lines inside the continuation dropped, heredoc bodies left out.
pub(super) struct LogicalLine {
    pub line: usize,
    pub end_line: usize,
    pub text: String,
    pub heredocs: Vec<Heredoc>,
    /// A blank line was skipped inside the continuation (dockerd warns about it).
    pub empty_continuation: bool,
}

pub(super) fn read(text: &str) -> Result<(Directives, Vec<LogicalLine>), ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = Reader {
        lines: text.split_inclusive('\n').collect(),
        next: 0,
        directives: DirectiveParser::default(),
    };
    let mut out = Vec::new();
    while let Some(logical) = reader.logical_line()? {
        out.push(logical);
    }
    if out.is_empty() {
        return Err(ParseError {
            line: reader.next.max(1),
            message: "file with no instructions".into(),
        });
    }
    Ok((reader.directives.result, out))
}

struct Reader<'a> {
    /// Physical lines with their line endings.
    lines: Vec<&'a str>,
    /// Index of the next physical line; also the 1-based number of the last one read.
    next: usize,
    directives: DirectiveParser,
}

impl<'a> Reader<'a> {
    fn next_line(&mut self) -> Option<&'a str> {
        let line = self.lines.get(self.next).copied();
        if line.is_some() {
            self.next += 1;
        }
        line
    }

    fn error(&self, line: usize, message: impl Into<String>) -> ParseError {
        ParseError {
            line,
            message: message.into(),
        }
    }

    /// The line with its ending removed, checked for a directive, and emptied if a comment.
    fn process(&mut self, raw: &str, strip_leading: bool) -> Result<String, ParseError> {
        let mut line = trim_newline(raw);
        if strip_leading {
            line = line.trim_start();
        }
        let line_no = self.next;
        self.directives
            .parse_line(line)
            .map_err(|message| self.error(line_no, message))?;
        Ok(if is_comment(line) {
            String::new()
        } else {
            line.to_string()
        })
    }

    fn logical_line(&mut self) -> Result<Option<LogicalLine>, ParseError> {
        loop {
            let Some(raw) = self.next_line() else {
                return Ok(None);
            };
            let first = self.process(raw, true)?;
            let start = self.next;
            let escape = self.directives.result.escape;
            let (mut text, mut complete) = trim_continuation(&first, escape);
            if complete && text.is_empty() {
                continue;
            }
            let mut empty_continuation = false;
            while !complete {
                let Some(raw) = self.next_line() else { break };
                let processed = self.process(raw, false)?;
                if is_comment(trim_newline(raw)) {
                    continue;
                }
                if processed.trim_start().is_empty() {
                    empty_continuation = true;
                    continue;
                }
                let (part, done) = trim_continuation(&processed, escape);
                text.push_str(&part);
                complete = done;
            }
            let heredocs = if may_hold_heredocs(&text) {
                self.read_heredocs(&text, start)?
            } else {
                Vec::new()
            };
            return Ok(Some(LogicalLine {
                line: start,
                end_line: self.next,
                text,
                heredocs,
                empty_continuation,
            }));
        }
    }

    /// Reads the body of each heredoc named on the line, one after the other.
    fn read_heredocs(&mut self, text: &str, start: usize) -> Result<Vec<Heredoc>, ParseError> {
        let mut heredocs = Vec::new();
        for word in raw_words(text) {
            let Some(mut heredoc) = heredoc_word(&word) else {
                continue;
            };
            let mut terminated = false;
            while let Some(raw) = self.next_line() {
                let mut candidate = trim_newline(raw);
                if heredoc.strip_tabs {
                    candidate = candidate.trim_start_matches('\t');
                }
                if candidate == heredoc.name {
                    terminated = true;
                    break;
                }
                heredoc.content.push_str(raw);
            }
            if !terminated {
                return Err(self.error(start, "unterminated heredoc"));
            }
            if heredoc.strip_tabs {
                heredoc.content = strip_leading_tabs(&heredoc.content);
            }
            heredocs.push(heredoc);
        }
        Ok(heredocs)
    }
}

/// A heredoc word as BuildKit recognises it (`^(\d*)<<(-?)([^<]*)$`, the delimiter one shell
/// word), with no content yet.
pub(super) fn heredoc_word(word: &str) -> Option<Heredoc> {
    let after_fd = word.trim_start_matches(|c: char| c.is_ascii_digit());
    let rest = after_fd.strip_prefix("<<")?;
    let (strip_tabs, rest) = match rest.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, rest),
    };
    if rest.is_empty() || rest.contains('<') {
        return None;
    }
    let (name, expand) = heredoc_delimiter(rest)?;
    Some(Heredoc {
        name,
        content: String::new(),
        expand,
        strip_tabs,
    })
}

/// Only RUN, COPY and ADD in shell form (also behind ONBUILD) take heredocs.
fn may_hold_heredocs(line: &str) -> bool {
    if !line.contains("<<") {
        return false;
    }
    let (keyword, _, args) = split_command(line);
    let (keyword, args) = if keyword.eq_ignore_ascii_case("onbuild") {
        let (inner, _, inner_args) = split_command(&args);
        (inner, inner_args)
    } else {
        (keyword, args)
    };
    let heredoc_instruction = ["run", "copy", "add"]
        .iter()
        .any(|k| keyword.eq_ignore_ascii_case(k));
    heredoc_instruction && !matches!(json_array(&args), Ok(Some(_)))
}

fn trim_newline(line: &str) -> &str {
    line.trim_end_matches(['\r', '\n'])
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

fn strip_leading_tabs(content: &str) -> String {
    content
        .split_inclusive('\n')
        .map(|line| line.trim_start_matches('\t'))
        .collect()
}

/// Removes a line-continuation escape (the escape character last on the line, whitespace
/// after it allowed, not itself escaped). Returns the text and whether the line is complete.
fn trim_continuation(line: &str, escape: char) -> (String, bool) {
    let trimmed = line.trim_end_matches([' ', '\t']);
    if let Some(before) = trimmed.strip_suffix(escape) {
        if before.is_empty() || !before.ends_with(escape) {
            return (before.to_string(), false);
        }
    }
    (line.to_string(), true)
}

/// The parser directives at the top of the file: `# key=value` lines, keys `syntax`,
/// `escape` and `check` (case-insensitive), each at most once, until the first other line.
struct DirectiveParser {
    done: bool,
    seen: Vec<String>,
    result: Directives,
}

impl Default for DirectiveParser {
    fn default() -> Self {
        DirectiveParser {
            done: false,
            seen: Vec::new(),
            result: Directives {
                syntax: None,
                escape: '\\',
                check: None,
            },
        }
    }
}

impl DirectiveParser {
    fn parse_line(&mut self, line: &str) -> Result<(), String> {
        if self.done {
            return Ok(());
        }
        let Some((key, value)) = directive(line) else {
            self.done = true;
            return Ok(());
        };
        let key = key.to_ascii_lowercase();
        if !matches!(key.as_str(), "syntax" | "escape" | "check") {
            self.done = true;
            return Ok(());
        }
        if self.seen.contains(&key) {
            return Err(format!("only one {key} parser directive can be used"));
        }
        self.seen.push(key.clone());
        match key.as_str() {
            "escape" => {
                self.result.escape = match value {
                    "\\" => '\\',
                    "`" => '`',
                    other => {
                        return Err(format!(
                            "invalid escape token '{other}' does not match ` or \\"
                        ))
                    }
                }
            }
            "syntax" => self.result.syntax = Some(value.to_string()),
            _ => self.result.check = Some(value.to_string()),
        }
        Ok(())
    }
}

/// `^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`
fn directive(line: &str) -> Option<(&str, &str)> {
    let body = line.strip_prefix('#')?.trim_start();
    let key_len = body
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())))
        .map_or(body.len(), |(i, _)| i);
    if key_len == 0 {
        return None;
    }
    let (key, rest) = body.split_at(key_len);
    let value = rest.trim_start().strip_prefix('=')?.trim();
    (!value.is_empty()).then_some((key, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directive_syntax() {
        assert_eq!(directive("# escape=`"), Some(("escape", "`")));
        assert_eq!(
            directive("#syntax = docker/dockerfile:1 "),
            Some(("syntax", "docker/dockerfile:1"))
        );
        assert_eq!(directive("# check=skip=all"), Some(("check", "skip=all")));
        assert_eq!(directive("# escape="), None);
        assert_eq!(directive("# just a comment"), None);
        assert_eq!(directive("# 1x=y"), None);
    }

    #[test]
    fn continuation_escape() {
        assert_eq!(trim_continuation("a \\", '\\'), ("a ".into(), false));
        assert_eq!(trim_continuation("a\\ \t", '\\'), ("a".into(), false));
        assert_eq!(trim_continuation("\\", '\\'), ("".into(), false));
        assert_eq!(trim_continuation("a \\\\", '\\'), ("a \\\\".into(), true));
        assert_eq!(trim_continuation("c:\\", '`'), ("c:\\".into(), true));
        assert_eq!(trim_continuation("a `", '`'), ("a ".into(), false));
    }

    #[test]
    fn heredoc_words() {
        let h = heredoc_word("<<-\"EOF\"").unwrap();
        assert_eq!(
            (h.name.as_str(), h.expand, h.strip_tabs),
            ("EOF", false, true)
        );
        let h = heredoc_word("3<<EOT").unwrap();
        assert_eq!(
            (h.name.as_str(), h.expand, h.strip_tabs),
            ("EOT", true, false)
        );
        assert!(heredoc_word("<<").is_none());
        assert!(heredoc_word("<<<x").is_none());
        assert!(heredoc_word("a<<EOF").is_none());
        assert!(heredoc_word("\"<<EOF\"").is_none());
    }
}

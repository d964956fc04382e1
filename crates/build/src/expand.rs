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
    Lexer::new(word, escape, vars)
        .process()
        .map(|(word, _)| word)
}

/// Splits `text` into words on unquoted whitespace and expands each (what ENV/LABEL values,
/// EXPOSE, VOLUME, USER, WORKDIR… need: `ProcessWords`).
pub fn expand_words(
    text: &str,
    escape: char,
    vars: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, ExpandError> {
    Lexer::new(text, escape, vars)
        .process()
        .map(|(_, words)| words)
}

/// Splits a Dockerfile line into shell words the way BuildKit looks for heredocs in it: quotes
/// and escapes kept, variables left unexpanded, the escape always `\`.
pub(crate) fn raw_words(line: &str) -> Vec<String> {
    let no_vars = |_: &str| None;
    let mut lexer = Lexer::new(line, '\\', &no_vars);
    lexer.raw_quotes = true;
    lexer.raw_escapes = true;
    lexer.skip_unset = true;
    // BuildKit ignores a lexing error here: such a line simply has no heredoc.
    lexer.process().map(|(_, words)| words).unwrap_or_default()
}

/// The delimiter after `<<`/`<<-` (`EOF`, `"EOF"`, `'E'OF`…): its name with quotes removed and
/// whether the body is expanded (no part of the delimiter quoted). None unless it is one word.
pub(crate) fn heredoc_delimiter(rest: &str) -> Option<(String, bool)> {
    let no_vars = |_: &str| None;
    let words_of = |raw_quotes: bool| {
        let mut lexer = Lexer::new(rest, '\\', &no_vars);
        lexer.skip_unset = true;
        lexer.raw_quotes = raw_quotes;
        lexer.process().ok().map(|(_, words)| words)
    };
    let plain = words_of(false)?;
    let raw = words_of(true)?;
    let (name, raw_name) = match (plain.as_slice(), raw.as_slice()) {
        ([name], [raw_name]) => (name.clone(), raw_name),
        _ => return None,
    };
    let quotes = |s: &str| s.chars().filter(|c| *c == '\'' || *c == '"').count();
    let expand = quotes(&name) == quotes(raw_name);
    Some((name, expand))
}

fn err(message: impl Into<String>) -> ExpandError {
    ExpandError(message.into())
}

/// Words being accumulated by `ProcessWords`: text from expansions splits on whitespace,
/// quoted text never does, and an empty word (`""`) is dropped as BuildKit drops it.
#[derive(Default)]
struct Words {
    word: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, c: char) {
        if !c.is_whitespace() {
            self.add_raw_char(c);
        } else if self.in_word && !self.word.is_empty() {
            self.words.push(std::mem::take(&mut self.word));
            self.in_word = false;
        }
    }

    fn add_raw_char(&mut self, c: char) {
        self.word.push(c);
        self.in_word = true;
    }

    fn add_string(&mut self, s: &str) {
        s.chars().for_each(|c| self.add_char(c));
    }

    fn add_raw_string(&mut self, s: &str) {
        self.word.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(self.word);
        }
        self.words
    }
}

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    /// Keep quote characters in the result (heredoc delimiter detection).
    raw_quotes: bool,
    /// Keep escape characters in the result (patterns, heredoc detection).
    raw_escapes: bool,
    /// Leave references to unset variables as written instead of expanding them to "".
    skip_unset: bool,
    vars: &'a dyn Fn(&str) -> Option<String>,
}

impl<'a> Lexer<'a> {
    fn new(text: &str, escape: char, vars: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Lexer {
            chars: text.chars().collect(),
            pos: 0,
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_unset: false,
            vars,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn process(&mut self) -> Result<(String, Vec<String>), ExpandError> {
        let source: String = self.chars.iter().collect();
        self.process_until(&[], self.raw_escapes)
            .map_err(|e| err(format!("failed to process {source:?}: {}", e.0)))
    }

    /// Reads up to one of `stops` (consumed) or the end when `stops` is empty; returns the
    /// expanded text and its words.
    fn process_until(
        &mut self,
        stops: &[char],
        raw_escapes: bool,
    ) -> Result<(String, Vec<String>), ExpandError> {
        let saved = std::mem::replace(&mut self.raw_escapes, raw_escapes);
        let result = self.process_until_inner(stops);
        self.raw_escapes = saved;
        result
    }

    fn process_until_inner(
        &mut self,
        stops: &[char],
    ) -> Result<(String, Vec<String>), ExpandError> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(c) = self.peek() {
            if stops.contains(&c) {
                self.pos += 1;
                return Ok((result, words.finish()));
            }
            match c {
                '$' => {
                    let value = self.process_dollar()?;
                    result.push_str(&value);
                    words.add_string(&value);
                }
                '\'' | '"' => {
                    let value = if c == '\'' {
                        self.process_single_quote()?
                    } else {
                        self.process_double_quote()?
                    };
                    result.push_str(&value);
                    words.add_raw_string(&value);
                }
                _ => {
                    self.pos += 1;
                    if c == self.escape {
                        if self.raw_escapes {
                            words.add_raw_char(c);
                            result.push(c);
                        }
                        // An escape at the very end is dropped.
                        let Some(escaped) = self.next() else { break };
                        words.add_raw_char(escaped);
                        result.push(escaped);
                    } else {
                        words.add_char(c);
                        result.push(c);
                    }
                }
            }
        }
        match stops.first() {
            Some(stop) => Err(err(format!(
                "unexpected end of statement while looking for matching {stop}"
            ))),
            None => Ok((result, words.finish())),
        }
    }

    /// Everything up to the next `'` is literal; a single quote cannot be escaped.
    fn process_single_quote(&mut self) -> Result<String, ExpandError> {
        self.pos += 1;
        let mut result = String::new();
        if self.raw_quotes {
            result.push('\'');
        }
        loop {
            match self.next() {
                None => {
                    return Err(err(
                        "unexpected end of statement while looking for matching single-quote",
                    ))
                }
                Some('\'') => {
                    if self.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(c) => result.push(c),
            }
        }
    }

    /// Literal except `$`; the escape character protects `"`, `$` and itself only.
    fn process_double_quote(&mut self) -> Result<String, ExpandError> {
        self.pos += 1;
        let mut result = String::new();
        if self.raw_quotes {
            result.push('"');
        }
        loop {
            match self.peek() {
                None => {
                    return Err(err(
                        "unexpected end of statement while looking for matching double-quote",
                    ))
                }
                Some('"') => {
                    self.pos += 1;
                    if self.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => {
                    let value = self.process_dollar()?;
                    result.push_str(&value);
                }
                Some(c) => {
                    self.pos += 1;
                    if c != self.escape {
                        result.push(c);
                        continue;
                    }
                    match self.peek() {
                        // An escape just before the end is ignored.
                        None => {}
                        Some(n) if n == '"' || n == '$' || n == self.escape => {
                            self.pos += 1;
                            if self.raw_escapes {
                                result.push(c);
                            }
                            result.push(n);
                        }
                        Some(_) => result.push(c),
                    }
                }
            }
        }
    }

    fn lookup(&self, name: &str) -> Option<String> {
        (self.vars)(name)
    }

    fn process_dollar(&mut self) -> Result<String, ExpandError> {
        self.pos += 1;
        if self.peek() != Some('{') {
            let name = self.process_name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok(match self.lookup(&name) {
                Some(value) => value,
                None if self.skip_unset => format!("${name}"),
                None => String::new(),
            });
        }
        self.pos += 1;
        match self.peek() {
            None => return Err(err("syntax error: missing '}'")),
            Some('{' | '}' | ':') => return Err(err("syntax error: bad substitution")),
            Some(_) => {}
        }
        let name = self.process_name();
        let Some(c) = self.next() else {
            return Err(err("syntax error: missing '}'"));
        };
        match c {
            '}' => Ok(match self.lookup(&name) {
                Some(value) => value,
                None if self.skip_unset => format!("${{{name}}}"),
                None => String::new(),
            }),
            '/' => self.process_replace(&name),
            ':' => {
                let Some(op) = self.next() else {
                    return Err(err("syntax error: missing '}'"));
                };
                self.process_modifier(&name, op, true)
            }
            '+' | '-' | '?' | '#' | '%' => self.process_modifier(&name, c, false),
            _ => Err(err(format!("unsupported modifier ({c}) in substitution"))),
        }
    }

    /// `${name[:]op word}` for the operators `- + ? # ## % %%`.
    fn process_modifier(
        &mut self,
        name: &str,
        op: char,
        null_is_unset: bool,
    ) -> Result<String, ExpandError> {
        let shown = if null_is_unset {
            format!(":{op}")
        } else {
            op.to_string()
        };
        let pattern_op = op == '#' || op == '%';
        if null_is_unset && pattern_op {
            return Err(err(format!(
                "unsupported modifier ({shown}) in substitution"
            )));
        }
        let word = self.word_until('}', pattern_op, "syntax error: missing '}'")?;
        let value = self.lookup(name);
        if value.is_none() && self.skip_unset {
            return Ok(format!("${{{name}{shown}{word}}}"));
        }
        let empty = value
            .as_deref()
            .is_none_or(|v| null_is_unset && v.is_empty());
        match op {
            '-' => Ok(if empty {
                word
            } else {
                value.unwrap_or_default()
            }),
            '+' => Ok(if empty { String::new() } else { word }),
            '?' => match value {
                Some(v) if !empty => Ok(v),
                _ => {
                    let message = match (&word, value.is_none()) {
                        (w, _) if !w.is_empty() => w.clone(),
                        (_, true) => "is not allowed to be unset".to_string(),
                        (_, false) => "is not allowed to be empty".to_string(),
                    };
                    Err(err(format!("{name}: {message}")))
                }
            },
            '#' | '%' => {
                let (longest, pattern) = match word.strip_prefix(op) {
                    Some(rest) => (true, rest),
                    None => (false, word.as_str()),
                };
                let pattern = Pattern::compile(pattern)?;
                let value: Vec<char> = value.unwrap_or_default().chars().collect();
                let kept = if op == '#' {
                    pattern.trim_prefix(&value, longest)
                } else {
                    pattern.trim_suffix(&value, longest)
                };
                Ok(kept.iter().collect())
            }
            _ => Err(err(format!(
                "unsupported modifier ({shown}) in substitution"
            ))),
        }
    }

    /// `${name/pattern/replacement}` and `${name//pattern/replacement}`.
    fn process_replace(&mut self, name: &str) -> Result<String, ExpandError> {
        let all = self.peek() == Some('/');
        if all {
            self.pos += 1;
        }
        let pattern = self.word_until('/', true, "syntax error: missing '/' in ${}")?;
        let replacement = self.word_until('}', true, "syntax error: missing '}'")?;
        let Some(value) = self.lookup(name) else {
            if self.skip_unset {
                return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
            }
            return Ok(String::new());
        };
        let compiled = Pattern::compile(&pattern)?;
        let value: Vec<char> = value.chars().collect();
        Ok(compiled.replace(&value, &replacement, all))
    }

    /// The operand of a `${…}` form, up to `stop`; running out of input reports `missing`.
    fn word_until(
        &mut self,
        stop: char,
        raw_escapes: bool,
        missing: &str,
    ) -> Result<String, ExpandError> {
        match self.process_until(&[stop], raw_escapes) {
            Ok((word, _)) => Ok(word),
            Err(_) if self.peek().is_none() => Err(err(missing)),
            Err(e) => Err(e),
        }
    }

    /// A variable name: letters, digits and `_`; or a run of digits (positional); or one
    /// special parameter character.
    fn process_name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if name.is_empty() && c.is_ascii_digit() {
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    name.push(d);
                    self.pos += 1;
                }
                return name;
            }
            if name.is_empty() && matches!(c, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.pos += 1;
                return c.to_string();
            }
            if !c.is_alphanumeric() && c != '_' {
                break;
            }
            name.push(c);
            self.pos += 1;
        }
        name
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Lit(char),
    Any,
    Star,
}

/// A shell pattern as BuildKit's `${…}` operators read it: `*`, `?`, and `\` escaping `*`,
/// `?` or `\` (`\}` and `\/` stand for the bare character); brackets are literal.
struct Pattern(Vec<Tok>);

impl Pattern {
    fn compile(pattern: &str) -> Result<Self, ExpandError> {
        let invalid = |what: String| {
            err(format!(
                "invalid pattern ({pattern}) in substitution: invalid escape '\\{what}'"
            ))
        };
        let mut toks = Vec::new();
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '*' => toks.push(Tok::Star),
                '?' => toks.push(Tok::Any),
                '\\' if matches!(chars.peek(), Some('}' | '/')) => {}
                '\\' => match chars.next() {
                    Some(e @ ('*' | '?' | '\\')) => toks.push(Tok::Lit(e)),
                    Some(other) => return Err(invalid(other.to_string())),
                    None => return Err(invalid(String::new())),
                },
                _ => toks.push(Tok::Lit(c)),
            }
        }
        Ok(Pattern(toks))
    }

    /// Whether the whole of `s` matches.
    fn matches(&self, s: &[char]) -> bool {
        // reachable[j]: the tokens so far can match s[..j].
        let mut reachable = vec![false; s.len() + 1];
        reachable[0] = true;
        for tok in &self.0 {
            let mut next = vec![false; s.len() + 1];
            match tok {
                Tok::Star => {
                    let mut any = false;
                    for j in 0..=s.len() {
                        any |= reachable[j];
                        next[j] = any;
                    }
                }
                Tok::Any | Tok::Lit(_) => {
                    for j in 0..s.len() {
                        let fits = match tok {
                            Tok::Lit(c) => s[j] == *c,
                            _ => true,
                        };
                        next[j + 1] = reachable[j] && fits;
                    }
                }
            }
            reachable = next;
        }
        reachable[s.len()]
    }

    fn trim_prefix<'s>(&self, value: &'s [char], longest: bool) -> &'s [char] {
        let mut ends: Box<dyn Iterator<Item = usize>> = if longest {
            Box::new((0..=value.len()).rev())
        } else {
            Box::new(0..=value.len())
        };
        match ends.find(|&end| self.matches(&value[..end])) {
            Some(end) => &value[end..],
            None => value,
        }
    }

    fn trim_suffix<'s>(&self, value: &'s [char], longest: bool) -> &'s [char] {
        let mut starts: Box<dyn Iterator<Item = usize>> = if longest {
            Box::new(0..=value.len())
        } else {
            Box::new((0..=value.len()).rev())
        };
        match starts.find(|&start| self.matches(&value[start..])) {
            Some(start) => &value[..start],
            None => value,
        }
    }

    /// The longest match starting at the leftmost position from `from`.
    fn find(&self, value: &[char], from: usize) -> Option<(usize, usize)> {
        (from..=value.len()).find_map(|start| {
            (start..=value.len())
                .rev()
                .find(|&end| self.matches(&value[start..end]))
                .map(|end| (start, end))
        })
    }

    /// Replaces the first (or every) match, with Go's `ReplaceAllString` rules for empty
    /// matches (none directly after a previous match).
    fn replace(&self, value: &[char], replacement: &str, all: bool) -> String {
        let mut out = String::new();
        let mut pos = 0;
        let mut last_end = None;
        while pos <= value.len() {
            let Some((start, end)) = self.find(value, pos) else {
                break;
            };
            if start == end && last_end == Some(start) {
                // An empty match right after a match: copy one character and go on.
                if start < value.len() {
                    out.push(value[start]);
                }
                pos = start + 1;
                continue;
            }
            out.extend(&value[pos..start]);
            out.push_str(replacement);
            last_end = Some(end);
            if start == end {
                if start < value.len() {
                    out.push(value[start]);
                }
                pos = start + 1;
            } else {
                pos = end;
            }
            if !all {
                break;
            }
        }
        if pos < value.len() {
            out.extend(&value[pos..]);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        let value = match name {
            "PWD" => "/home",
            "SHELL" => "bash",
            "KOREAN" => "한국어",
            "NULL" => "",
            "FILE" => "/usr/local/lib/libfoo.so.1",
            "SPACED" => "a  b c",
            _ => return None,
        };
        Some(value.to_string())
    }

    fn word(input: &str) -> Result<String, ExpandError> {
        expand_word(input, '\\', &env)
    }

    /// BuildKit's envVarTest table (shell/envVarTest), Unix rows: input → output or error.
    #[test]
    fn buildkit_env_var_table() {
        let table: &[(&str, Option<&str>)] = &[
            ("hello", Some("hello")),
            ("he'll'o", Some("hello")),
            ("he'llo", None),
            ("he\\'llo", Some("he'llo")),
            ("he\\\\'llo", None),
            ("abc\\tdef", Some("abctdef")),
            ("\"abc\\tdef\"", Some("abc\\tdef")),
            ("\"abc\\\\tdef\"", Some("abc\\tdef")),
            ("'abc\\tdef'", Some("abc\\tdef")),
            ("hello\\", Some("hello")),
            ("hello\\\\", Some("hello\\")),
            ("\"hello", None),
            ("\"hello\\\"", None),
            ("\"hel'lo\"", Some("hel'lo")),
            ("'hello", None),
            ("'hello\\'", Some("hello\\")),
            ("'hello\\there'", Some("hello\\there")),
            ("'hello\\\\there'", Some("hello\\\\there")),
            ("\"''\"", Some("''")),
            ("$.", Some("$.")),
            ("he$1x", Some("hex")),
            ("he$.x", Some("he$.x")),
            ("he$pwd.", Some("he.")),
            ("he$PWD", Some("he/home")),
            ("he\\$PWD", Some("he$PWD")),
            ("he\\\\$PWD", Some("he\\/home")),
            ("\"he\\$PWD\"", Some("he$PWD")),
            ("\"he\\\\$PWD\"", Some("he\\/home")),
            ("\\${}", Some("${}")),
            ("\\${}aaa", Some("${}aaa")),
            ("he\\${}", Some("he${}")),
            ("he\\${}xx", Some("he${}xx")),
            ("${}", None),
            ("${}aaa", None),
            ("he${}", None),
            ("he${}xx", None),
            ("he${hi}", Some("he")),
            ("he${hi}xx", Some("hexx")),
            ("he${PWD}", Some("he/home")),
            ("he${.}", None),
            ("he${XXX:-000}xx", Some("he000xx")),
            ("he${PWD:-000}xx", Some("he/homexx")),
            ("he${XXX:-$PWD}xx", Some("he/homexx")),
            ("he${XXX:-${PWD:-yyy}}xx", Some("he/homexx")),
            ("he${XXX:-${YYY:-yyy}}xx", Some("heyyyxx")),
            ("he${XXX:YYY}", None),
            ("he${XXX?}", None),
            ("he${XXX:?}", None),
            ("he${PWD?}", Some("he/home")),
            ("he${PWD:?}", Some("he/home")),
            ("he${NULL?}", Some("he")),
            ("he${NULL:?}", None),
            ("he${XXX:+${PWD}}xx", Some("hexx")),
            ("he${PWD:+${XXX}}xx", Some("hexx")),
            ("he${PWD:+${SHELL}}xx", Some("hebashxx")),
            ("he${XXX:+000}xx", Some("hexx")),
            ("he${PWD:+000}xx", Some("he000xx")),
            ("'he${XX}'", Some("he${XX}")),
            ("\"he${PWD}\"", Some("he/home")),
            ("\"he'$PWD'\"", Some("he'/home'")),
            ("\"$PWD\"", Some("/home")),
            ("'$PWD'", Some("$PWD")),
            ("'\\$PWD'", Some("\\$PWD")),
            ("'\"hello\"'", Some("\"hello\"")),
            ("'he\\$PWD'", Some("he\\$PWD")),
            ("he${PWD", None),
            ("he${PWD:=000}xx", None),
            ("he${PWD:+${PWD}:}xx", Some("he/home:xx")),
            ("he${XXX:-\\$PWD:}xx", Some("he$PWD:xx")),
            ("he${XXX:-\\${PWD}z}xx", Some("he${PWDz}xx")),
            ("안녕하세요", Some("안녕하세요")),
            ("안'녕'하세요", Some("안녕하세요")),
            ("안'녕하세요", None),
            ("안녕\\'하세요", Some("안녕'하세요")),
            ("안녕$KOREAN", Some("안녕한국어")),
            ("${{aaa}", None),
            ("${aaa}}", Some("}")),
            ("${aaa", None),
            ("${{aaa:-bbb}", None),
            ("${aaa:-bbb}}", Some("bbb}")),
            ("${aaa:-bbb", None),
            ("${aaa:-bbb}", Some("bbb")),
            ("${aaa:-${bbb:-ccc}}", Some("ccc")),
            ("${aaa:-bbb ${foo}", None),
            ("${aaa:-bbb {foo}", Some("bbb {foo")),
            ("${:}", None),
            ("${:-bbb}", None),
            ("${:+bbb}", None),
            ("$1", Some("")),
            ("${1:-bbb}", Some("bbb")),
            ("${1:+bbb}", Some("")),
            ("$999aaa", Some("aaa")),
            ("${999:-bbb}aaa", Some("bbbaaa")),
            ("$001aaa", Some("aaa")),
            ("$@", Some("")),
            ("$@@@", Some("@@")),
            ("${@:-bbb}aaa", Some("bbbaaa")),
            ("${*:-bbb}", Some("bbb")),
            ("${#}", Some("")),
            ("${#:-bbb}", Some("bbb")),
            ("$?", Some("")),
            ("${?:-bbb}", Some("bbb")),
            ("${-}", Some("")),
            ("${-:-bbb}", Some("bbb")),
            ("$$", Some("")),
            ("${$:-bbb}", Some("bbb")),
            ("$!", Some("")),
            ("${0}", Some("")),
            ("${0:-bbb}", Some("bbb")),
        ];
        for (input, expected) in table {
            let got = word(input);
            match expected {
                Some(e) => assert_eq!(got.as_deref(), Ok(*e), "input {input:?}"),
                None => assert!(got.is_err(), "input {input:?} gave {got:?}"),
            }
        }
    }

    #[test]
    fn unset_and_empty_without_colon() {
        assert_eq!(word("${XXX-def}").unwrap(), "def");
        assert_eq!(word("${NULL-def}").unwrap(), "");
        assert_eq!(word("${NULL:-def}").unwrap(), "def");
        assert_eq!(word("${XXX+alt}").unwrap(), "");
        assert_eq!(word("${NULL+alt}").unwrap(), "alt");
        assert_eq!(word("${NULL:+alt}").unwrap(), "");
        assert_eq!(word("${PWD+alt}").unwrap(), "alt");
    }

    #[test]
    fn required_variable_messages() {
        let e = word("${XXX:?must be set}").unwrap_err();
        assert_eq!(
            e.0,
            "failed to process \"${XXX:?must be set}\": XXX: must be set"
        );
        let e = word("${XXX?}").unwrap_err();
        assert!(e.0.ends_with("XXX: is not allowed to be unset"), "{e}");
        let e = word("${NULL:?}").unwrap_err();
        assert!(e.0.ends_with("NULL: is not allowed to be empty"), "{e}");
        let e = word("${}").unwrap_err();
        assert!(e.0.ends_with("syntax error: bad substitution"), "{e}");
        let e = word("${PWD").unwrap_err();
        assert!(e.0.ends_with("syntax error: missing '}'"), "{e}");
        let e = word("${PWD:=x}").unwrap_err();
        assert!(
            e.0.ends_with("unsupported modifier (:=) in substitution"),
            "{e}"
        );
    }

    #[test]
    fn pattern_operators() {
        let table = [
            ("${FILE#*/}", "usr/local/lib/libfoo.so.1"),
            ("${FILE##*/}", "libfoo.so.1"),
            ("${FILE%.*}", "/usr/local/lib/libfoo.so"),
            ("${FILE%%.*}", "/usr/local/lib/libfoo"),
            ("${FILE#/usr}", "/local/lib/libfoo.so.1"),
            ("${FILE#nomatch}", "/usr/local/lib/libfoo.so.1"),
            ("${FILE%.?}", "/usr/local/lib/libfoo.so"),
            ("${FILE%?}", "/usr/local/lib/libfoo.so."),
            ("${FILE##*}", ""),
            ("${FILE#*}", "/usr/local/lib/libfoo.so.1"),
            ("${XXX#*}", ""),
            ("${PWD#\\/}", "home"),
            ("${FILE/lib/LIB}", "/usr/local/LIB/libfoo.so.1"),
            ("${FILE//lib/LIB}", "/usr/local/LIB/LIBfoo.so.1"),
            ("${FILE//\\//:}", ":usr:local:lib:libfoo.so.1"),
            ("${FILE/l*b/X}", "/usr/Xfoo.so.1"),
            ("${FILE//o/0}", "/usr/l0cal/lib/libf00.s0.1"),
            ("${FILE/nomatch/X}", "/usr/local/lib/libfoo.so.1"),
            ("${XXX/a/b}", ""),
            ("${FILE%\"so.1\"}", "/usr/local/lib/libfoo."),
            ("${FILE#[}", "/usr/local/lib/libfoo.so.1"),
            ("${SHELL/#/x}", "bash"),
        ];
        for (input, expected) in table {
            assert_eq!(word(input).as_deref(), Ok(expected), "input {input:?}");
        }
        assert!(word("${FILE#\\x}").is_err());
        assert!(word("${FILE:#x}").is_err());
        assert!(word("${FILE/x}").is_err());
    }

    #[test]
    fn replace_all_with_empty_matches_follows_go() {
        let vars = |n: &str| (n == "V").then(|| "baaac".to_string());
        // Globs, not regexes: `a*` is an `a` followed by anything.
        assert_eq!(expand_word("${V//a*/x}", '\\', &vars).unwrap(), "bx");
        assert_eq!(expand_word("${V//*/x}", '\\', &vars).unwrap(), "x");
        assert_eq!(expand_word("${V///x}", '\\', &vars).unwrap(), "xbxaxaxaxcx");
        assert_eq!(expand_word("${V/a?/x}", '\\', &vars).unwrap(), "bxac");
    }

    #[test]
    fn backtick_escape_makes_backslash_literal() {
        let e = |s: &str| expand_word(s, '`', &env);
        assert_eq!(e("c:\\windows\\$SHELL").unwrap(), "c:\\windows\\bash");
        assert_eq!(e("`$PWD").unwrap(), "$PWD");
        assert_eq!(e("\"a`\"b\"").unwrap(), "a\"b");
        assert_eq!(e("\"a\\b\"").unwrap(), "a\\b");
        assert_eq!(e("x``").unwrap(), "x`");
    }

    #[test]
    fn words_split_on_unquoted_whitespace() {
        let w = |s: &str| expand_words(s, '\\', &env).unwrap();
        assert_eq!(w("a b  c"), ["a", "b", "c"]);
        assert_eq!(w("\"a b\" c"), ["a b", "c"]);
        assert_eq!(w("'a b'c d"), ["a bc", "d"]);
        assert_eq!(w("a\\ b"), ["a b"]);
        assert_eq!(w("$SPACED"), ["a", "b", "c"]);
        assert_eq!(w("\"$SPACED\""), ["a  b c"]);
        assert_eq!(w("x$SPACED"), ["xa", "b", "c"]);
        assert_eq!(w("  lead trail  "), ["lead", "trail"]);
        // BuildKit drops empty words, quoted or not.
        assert_eq!(w("\"\" a ''"), ["a"]);
        assert_eq!(w("$XXX"), Vec::<String>::new());
        assert_eq!(w("${PWD}/x 80/tcp"), ["/home/x", "80/tcp"]);
    }

    #[test]
    fn word_keeps_inner_whitespace() {
        assert_eq!(word("a  b").unwrap(), "a  b");
        assert_eq!(word("\"a\"  'b'").unwrap(), "a  b");
    }

    #[test]
    fn heredoc_words_and_delimiters() {
        assert_eq!(
            raw_words("RUN cat <<\"EOF\" <<-'B' $X \\$Y"),
            ["RUN", "cat", "<<\"EOF\"", "<<-'B'", "$X", "\\$Y"]
        );
        assert_eq!(heredoc_delimiter("EOF"), Some(("EOF".into(), true)));
        assert_eq!(heredoc_delimiter("\"EOF\""), Some(("EOF".into(), false)));
        assert_eq!(heredoc_delimiter("'EOF'"), Some(("EOF".into(), false)));
        assert_eq!(heredoc_delimiter("E\"O\"F"), Some(("EOF".into(), false)));
        assert_eq!(heredoc_delimiter("a b"), None);
        assert_eq!(heredoc_delimiter("\"open"), None);
    }
}

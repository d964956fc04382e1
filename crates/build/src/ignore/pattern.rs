//! One cleaned `.dockerignore` pattern, classified and matched the way moby/patternmatcher's
//! `Pattern.compile` does: a pattern without wildcards compares literally, `prefix/**` and
//! `**suffix` compare as string prefix/suffix, anything else becomes a small NFA equivalent to
//! the regexp patternmatcher builds (`*` → `[^/]*`, `?` → `[^/]`, `**` → `(.*/)?`, trailing
//! `**` → `.*`). Classes follow Go's `filepath.Match` syntax, which patternmatcher checks
//! before translating.

use std::iter::Peekable;
use std::str::Chars;

/// Why a pattern is rejected (the texts are Go's, so users see what docker says).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SyntaxError {
    /// `filepath.ErrBadPattern`: a trailing `\` or a malformed `[` class.
    BadPattern,
    /// A range like `[z-a]`: `filepath.Match` accepts it, but patternmatcher's regexp does not
    /// compile, so BuildKit fails the build on the first path it checks.
    InvertedRange,
}

impl SyntaxError {
    pub(super) fn message(self) -> &'static str {
        match self {
            SyntaxError::BadPattern => "syntax error in pattern",
            SyntaxError::InvertedRange => "invalid character class range",
        }
    }
}

/// How a pattern compares, patternmatcher's `matchType`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Kind {
    /// No wildcard: the path equals the pattern.
    Exact,
    /// `lit**`: the path starts with `lit`.
    Prefix,
    /// `**lit` (incl. `**/lit`): the path ends with `lit` (or is `lit` without its `/`).
    Suffix,
    /// Anything else.
    Glob(Vec<Token>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Token {
    Char(char),
    /// `?`: one character but `/`.
    AnyChar,
    /// `*`: any run of characters without `/`.
    Star,
    /// Entry of `(.*/)?`, what a `**` followed by more pattern becomes; always followed by
    /// `DirsInside`, the state once the group has consumed something.
    DirsEnter,
    DirsInside,
    /// `.*`, a trailing `**` after other wildcards.
    AnyRest,
    Class(Class),
    /// A bare `^` is copied into patternmatcher's regexp, where it anchors at the start.
    Start,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Class {
    negated: bool,
    ranges: Vec<(char, char)>,
}

impl Class {
    fn matches(&self, c: char) -> bool {
        self.ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != self.negated
    }
}

#[derive(Debug, Clone)]
pub(super) struct Pattern {
    pub(super) exception: bool,
    /// The cleaned pattern without its `!`.
    pub(super) text: String,
    pub(super) kind: Kind,
}

impl Pattern {
    pub(super) fn new(text: &str, exception: bool) -> Result<Pattern, SyntaxError> {
        Ok(Pattern {
            exception,
            text: text.to_owned(),
            kind: compile(text)?,
        })
    }

    /// Whether the pattern matches `path` itself (patternmatcher's `Pattern.match`).
    pub(super) fn matches(&self, path: &str) -> bool {
        match &self.kind {
            Kind::Exact => path == self.text,
            Kind::Prefix => path.starts_with(self.prefix()),
            Kind::Suffix => {
                let suffix = self.suffix();
                path.ends_with(suffix) || suffix.strip_prefix('/') == Some(path)
            }
            Kind::Glob(tokens) => run(tokens, path).is_some_and(|states| states[tokens.len()]),
        }
    }

    /// Whether the pattern could match some path strictly below `dir_slash` (a directory
    /// with its trailing `/`). May answer true when nothing can match (it only costs a walk),
    /// never false when something can.
    pub(super) fn may_match_below(&self, dir_slash: &str) -> bool {
        match &self.kind {
            Kind::Exact => self.text.len() > dir_slash.len() && self.text.starts_with(dir_slash),
            Kind::Prefix => {
                let prefix = self.prefix();
                prefix.starts_with(dir_slash) || dir_slash.starts_with(prefix)
            }
            // `**lit` matches `dir/…/lit` below any directory.
            Kind::Suffix => true,
            // Still alive after `dir/` with pattern left to match the rest.
            Kind::Glob(tokens) => run(tokens, dir_slash)
                .is_some_and(|states| states[..tokens.len()].iter().any(|&s| s)),
        }
    }

    fn prefix(&self) -> &str {
        self.text.strip_suffix("**").unwrap_or(&self.text)
    }

    fn suffix(&self) -> &str {
        self.text.strip_prefix("**").unwrap_or(&self.text)
    }
}

/// patternmatcher's `compile`: the kind it detects, and for globs the tokens of its regexp.
/// Also validates what `filepath.Match` would reject.
fn compile(text: &str) -> Result<Kind, SyntaxError> {
    #[derive(PartialEq)]
    enum Detected {
        Exact,
        Prefix,
        Suffix,
        Glob,
    }
    let mut detected = Detected::Exact;
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    let mut first = true;
    while let Some(c) = chars.next() {
        match c {
            '*' if chars.next_if_eq(&'*').is_some() => {
                // `**/` is `**`.
                chars.next_if_eq(&'/');
                if chars.peek().is_some() {
                    tokens.extend([Token::DirsEnter, Token::DirsInside]);
                    detected = Detected::Glob;
                } else if detected == Detected::Exact {
                    detected = Detected::Prefix;
                } else {
                    tokens.push(Token::AnyRest);
                    detected = Detected::Glob;
                }
                // patternmatcher's quirk: a leading `**` makes a suffix match whatever follows,
                // until a later wildcard turns it back into a regexp.
                if first {
                    detected = Detected::Suffix;
                }
            }
            '*' => {
                tokens.push(Token::Star);
                detected = Detected::Glob;
            }
            '?' => {
                tokens.push(Token::AnyChar);
                detected = Detected::Glob;
            }
            '\\' => {
                let escaped = chars.next().ok_or(SyntaxError::BadPattern)?;
                tokens.push(Token::Char(escaped));
                detected = Detected::Glob;
            }
            '[' => {
                tokens.push(Token::Class(parse_class(&mut chars)?));
                detected = Detected::Glob;
            }
            ']' => {
                tokens.push(Token::Char(']'));
                detected = Detected::Glob;
            }
            '^' => tokens.push(Token::Start),
            c => tokens.push(Token::Char(c)),
        }
        first = false;
    }
    Ok(match detected {
        Detected::Exact => Kind::Exact,
        Detected::Prefix => Kind::Prefix,
        Detected::Suffix => Kind::Suffix,
        Detected::Glob => Kind::Glob(tokens),
    })
}

/// A `[…]` class after its `[`, with `filepath.Match`'s rules: optional `^`, at least one
/// character or range, `\` escaping, a bare `-` or `]` (other than the closing one) invalid.
fn parse_class(chars: &mut Peekable<Chars<'_>>) -> Result<Class, SyntaxError> {
    let negated = chars.next_if_eq(&'^').is_some();
    let mut ranges = Vec::new();
    loop {
        if !ranges.is_empty() && chars.next_if_eq(&']').is_some() {
            return Ok(Class { negated, ranges });
        }
        let lo = class_char(chars)?;
        let hi = match chars.next_if_eq(&'-') {
            Some(_) => class_char(chars)?,
            None => lo,
        };
        if lo > hi {
            return Err(SyntaxError::InvertedRange);
        }
        ranges.push((lo, hi));
    }
}

/// Go's `getEsc`: one class character, possibly escaped, which must not end the pattern.
fn class_char(chars: &mut Peekable<Chars<'_>>) -> Result<char, SyntaxError> {
    let c = match chars.next() {
        None | Some('-') | Some(']') => return Err(SyntaxError::BadPattern),
        Some('\\') => chars.next().ok_or(SyntaxError::BadPattern)?,
        Some(c) => c,
    };
    match chars.peek() {
        Some(_) => Ok(c),
        None => Err(SyntaxError::BadPattern),
    }
}

/// Runs the NFA over `text`: the live states after it (state `tokens.len()` accepts), or
/// `None` once every state died. Linear in `text`, unlike backtracking on `*a*a*a…`.
fn run(tokens: &[Token], text: &str) -> Option<Vec<bool>> {
    let mut states = vec![false; tokens.len() + 1];
    states[0] = true;
    close(tokens, &mut states, true);
    for c in text.chars() {
        let mut next = vec![false; tokens.len() + 1];
        for (i, token) in tokens.iter().enumerate().filter(|&(i, _)| states[i]) {
            step(token, i, c, &mut next);
        }
        if !next.contains(&true) {
            return None;
        }
        close(tokens, &mut next, false);
        states = next;
    }
    Some(states)
}

/// The transitions of state `i` (at `token`) on `c`. Go's `.` stops at `\n`, `[^/]` does not.
fn step(token: &Token, i: usize, c: char, next: &mut [bool]) {
    match token {
        Token::Char(x) => next[i + 1] |= c == *x,
        Token::AnyChar => next[i + 1] |= c != '/',
        Token::Class(class) => next[i + 1] |= class.matches(c),
        Token::Star => next[i] |= c != '/',
        Token::AnyRest => next[i] |= c != '\n',
        // Entering the group: `.` to go inside, or the closing `/` right away.
        Token::DirsEnter => {
            next[i + 1] |= c != '\n';
            next[i + 2] |= c == '/';
        }
        Token::DirsInside => {
            next[i] |= c != '\n';
            next[i + 1] |= c == '/';
        }
        Token::Start => {}
    }
}

/// Adds the states reachable without consuming a character; they only lead forward, so one
/// pass in order suffices.
fn close(tokens: &[Token], states: &mut [bool], at_start: bool) {
    for (i, token) in tokens.iter().enumerate() {
        if !states[i] {
            continue;
        }
        match token {
            Token::Star | Token::AnyRest => states[i + 1] = true,
            Token::DirsEnter => states[i + 2] = true,
            Token::Start if at_start => states[i + 1] = true,
            _ => {}
        }
    }
}

//! How BuildKit's line parsers cut an instruction line: the keyword, the `--flags`, JSON
//! arrays, quote-aware words and plain whitespace-separated words.

/// BuildKit's `reWhitespace` (`[\t\v\f\r ]+`): the separators between the keyword and its
/// arguments and between whitespace-delimited words.
fn is_separator(c: char) -> bool {
    matches!(c, '\t' | '\u{b}' | '\u{c}' | '\r' | ' ')
}

/// The first whitespace-delimited word and the text after the whitespace that follows it.
pub(super) fn first_word(text: &str) -> Option<(&str, &str)> {
    let at = text.find(is_separator)?;
    Some((&text[..at], text[at..].trim_start_matches(is_separator)))
}

/// Splits a logical line into its keyword (as written), its `--flag` words and the rest.
pub(super) fn split_command(line: &str) -> (String, Vec<String>, String) {
    let line = line.trim();
    let Some((keyword, rest)) = first_word(line) else {
        return (line.to_string(), Vec::new(), String::new());
    };
    let (flags, args) = extract_flags(rest);
    (keyword.to_string(), flags, args.trim().to_string())
}

/// Leading words starting with `--` are flags (quotes in them removed, `\` escaping the next
/// character); a bare `--` ends them. Returns the flags and the rest of the line.
fn extract_flags(line: &str) -> (Vec<String>, &str) {
    let mut flags = Vec::new();
    let mut rest = line;
    loop {
        rest = rest.trim_start_matches(char::is_whitespace);
        if !rest.starts_with("--") {
            return (flags, rest);
        }
        let (word, after) = flag_word(rest);
        if word == "--" {
            return (flags, after);
        }
        flags.push(word);
        rest = after;
    }
}

/// One flag word and what follows it.
fn flag_word(text: &str) -> (String, &str) {
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match quote {
            None if c.is_whitespace() => return (word, &text[at..]),
            None if c == '\'' || c == '"' => quote = Some(c),
            Some(q) if c == q => quote = None,
            _ if c == '\\' => {
                // `\` escapes the next character; a trailing one is dropped.
                if let Some((_, escaped)) = chars.next() {
                    word.push(escaped);
                }
            }
            _ => word.push(c),
        }
    }
    (word, "")
}

/// The JSON (exec) form: `Ok(Some)` for an array of strings, `Ok(None)` when the text is not a
/// JSON array (shell form), an error for an array holding anything but strings. Only the first
/// JSON value is read, as Go's decoder does: text after the closing `]` is ignored.
pub(super) fn json_array(rest: &str) -> Result<Option<Vec<String>>, String> {
    let rest = rest.trim_start();
    if !rest.starts_with('[') {
        return Ok(None);
    }
    let mut values = serde_json::Deserializer::from_str(rest).into_iter::<serde_json::Value>();
    let Some(Ok(serde_json::Value::Array(items))) = values.next() else {
        return Ok(None);
    };
    items
        .into_iter()
        .map(|item| match item {
            serde_json::Value::String(s) => Ok(s),
            _ => {
                Err("when using JSON array syntax, arrays must be comprised of strings only".into())
            }
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// Words separated by whitespace, no quoting (ADD/COPY/VOLUME shell form, FROM, EXPOSE).
pub(super) fn whitespace_words(rest: &str) -> Vec<String> {
    rest.split(is_separator)
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// BuildKit's `parseWords` (ENV, LABEL, ARG): words split on unquoted whitespace, with quotes
/// and escape characters kept for the expander.
pub(super) fn quoted_words(rest: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    // A quoted empty string ("") still makes a word.
    let mut blank_ok = false;
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        if quote.is_none() && c.is_whitespace() {
            if blank_ok || !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            blank_ok = false;
            continue;
        }
        match quote {
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                blank_ok = true;
            }
            Some(q) if c == q => quote = None,
            _ => {}
        }
        // The escape character is kept with the character it protects, except inside single
        // quotes where it protects nothing; a trailing one is dropped.
        if c == escape && quote != Some('\'') {
            match chars.next() {
                Some(next) => {
                    word.push(c);
                    word.push(next);
                }
                None => quote = None,
            }
            continue;
        }
        word.push(c);
    }
    if blank_ok || !word.is_empty() {
        words.push(word);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_keyword_flags_and_rest() {
        let (k, f, r) = split_command("  copy --from=a  --chown=\"1 2\" --link  x y ");
        assert_eq!(k, "copy");
        assert_eq!(f, ["--from=a", "--chown=1 2", "--link"]);
        assert_eq!(r, "x y");
        let (k, f, r) = split_command("RUN -- --not-a-flag");
        assert_eq!(
            (k.as_str(), f.len(), r.as_str()),
            ("RUN", 0, "--not-a-flag")
        );
        let (k, f, r) = split_command("RUN");
        assert_eq!((k.as_str(), f.len(), r.as_str()), ("RUN", 0, ""));
        let (_, f, r) = split_command("RUN --mount=type=cache,target=/x\\ y echo");
        assert_eq!(
            (f, r.as_str()),
            (vec!["--mount=type=cache,target=/x y".to_string()], "echo")
        );
        let (_, f, r) = split_command("RUN echo --x");
        assert_eq!((f.len(), r.as_str()), (0, "echo --x"));
    }

    #[test]
    fn json_forms() {
        assert_eq!(
            json_array(r#"["a", "b c"]"#),
            Ok(Some(vec!["a".into(), "b c".into()]))
        );
        assert_eq!(json_array("[]"), Ok(Some(vec![])));
        assert_eq!(json_array(r#"["a"] trailing"#), Ok(Some(vec!["a".into()])));
        assert_eq!(json_array("echo [a]"), Ok(None));
        assert_eq!(json_array("[\"a\", "), Ok(None));
        assert_eq!(json_array("['a']"), Ok(None));
        assert!(json_array(r#"["a", 1]"#).is_err());
    }

    #[test]
    fn quote_aware_words_keep_quotes() {
        assert_eq!(
            quoted_words(r#"a="x y" b=c\ d 'e f'=g"#, '\\'),
            [r#"a="x y""#, r"b=c\ d", "'e f'=g"]
        );
        assert_eq!(quoted_words(r#"a="" b"#, '\\'), [r#"a="""#, "b"]);
        assert_eq!(quoted_words(r#"a='x\' b"#, '\\'), [r"a='x\'", "b"]);
        assert_eq!(quoted_words("a=`\" b", '`'), ["a=`\"", "b"]);
        assert_eq!(quoted_words("  ", '\\'), Vec::<String>::new());
    }

    #[test]
    fn whitespace_words_ignore_quotes() {
        assert_eq!(whitespace_words("\"a b\"\t /x"), ["\"a", "b\"", "/x"]);
    }
}

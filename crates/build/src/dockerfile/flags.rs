//! The flags each instruction takes and BuildKit's rules for them (`BFlags.Parse`): string
//! flags need `=value`, boolean flags take none or `=true|false`, only the repeatable ones
//! (`--mount`, `--exclude`) may appear twice.

#[derive(Clone, Copy, PartialEq, Eq)]
enum Type {
    Bool,
    String,
    /// A string flag that may be repeated.
    Strings,
}

const FROM: &[(&str, Type)] = &[("platform", Type::String)];
const RUN: &[(&str, Type)] = &[
    ("mount", Type::Strings),
    ("network", Type::String),
    ("security", Type::String),
];
const COPY: &[(&str, Type)] = &[
    ("from", Type::String),
    ("chown", Type::String),
    ("chmod", Type::String),
    ("link", Type::Bool),
    ("parents", Type::Bool),
    ("exclude", Type::Strings),
];
const ADD: &[(&str, Type)] = &[
    ("chown", Type::String),
    ("chmod", Type::String),
    ("checksum", Type::String),
    ("keep-git-dir", Type::Bool),
    ("link", Type::Bool),
    ("exclude", Type::Strings),
];
const HEALTHCHECK: &[(&str, Type)] = &[
    ("interval", Type::String),
    ("timeout", Type::String),
    ("start-period", Type::String),
    ("start-interval", Type::String),
    ("retries", Type::String),
];

/// The flags `keyword` (lower case) accepts; none for the others.
fn accepted(keyword: &str) -> &'static [(&'static str, Type)] {
    match keyword {
        "from" => FROM,
        "run" => RUN,
        "copy" => COPY,
        "add" => ADD,
        "healthcheck" => HEALTHCHECK,
        _ => &[],
    }
}

/// Checks the `--flag` words of an instruction and returns them as (name, value) in order.
pub(super) fn parse(
    keyword: &str,
    words: &[String],
) -> Result<Vec<(String, Option<String>)>, String> {
    let spec = accepted(keyword);
    let mut flags: Vec<(String, Option<String>)> = Vec::new();
    for word in words {
        let Some(body) = word.strip_prefix("--") else {
            return Err(format!("arg should start with -- : {word}"));
        };
        let (name, value) = match body.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (body, None),
        };
        let Some(&(_, kind)) = spec.iter().find(|(n, _)| *n == name) else {
            return Err(format!("unknown flag: {name}"));
        };
        if kind != Type::Strings && flags.iter().any(|(n, _)| n == name) {
            return Err(format!("duplicate flag specified: {name}"));
        }
        check_value(name, kind, value)?;
        flags.push((name.to_string(), value.map(str::to_string)));
    }
    Ok(flags)
}

fn check_value(name: &str, kind: Type, value: Option<&str>) -> Result<(), String> {
    match (kind, value) {
        (Type::Bool, None) => Ok(()),
        (Type::Bool, Some("")) | (Type::String | Type::Strings, None) => {
            Err(format!("missing a value on flag: {name}"))
        }
        (Type::Bool, Some(v))
            if !v.eq_ignore_ascii_case("true") && !v.eq_ignore_ascii_case("false") =>
        {
            Err(format!("expecting boolean value for flag {name}, not: {v}"))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn accepted_flags_in_order() {
        let got = parse(
            "copy",
            &words(&["--from=b", "--link", "--exclude=a", "--exclude=b"]),
        );
        assert_eq!(
            got.unwrap(),
            [
                ("from".to_string(), Some("b".to_string())),
                ("link".to_string(), None),
                ("exclude".to_string(), Some("a".to_string())),
                ("exclude".to_string(), Some("b".to_string())),
            ]
        );
        assert!(parse("add", &words(&["--link=FALSE", "--keep-git-dir=true"])).is_ok());
        assert!(parse("run", &words(&["--mount=a", "--mount=b", "--network=none"])).is_ok());
    }

    #[test]
    fn bflags_errors() {
        let e = |k: &str, w: &[&str]| parse(k, &words(w)).unwrap_err();
        assert_eq!(e("copy", &["--nope=1"]), "unknown flag: nope");
        assert_eq!(e("env", &["--from=x"]), "unknown flag: from");
        assert_eq!(
            e("copy", &["--from=a", "--from=b"]),
            "duplicate flag specified: from"
        );
        assert_eq!(e("copy", &["--from"]), "missing a value on flag: from");
        assert_eq!(e("copy", &["--link="]), "missing a value on flag: link");
        assert_eq!(
            e("copy", &["--link=yes"]),
            "expecting boolean value for flag link, not: yes"
        );
    }
}

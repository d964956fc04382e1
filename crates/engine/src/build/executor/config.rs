//! Metadata instructions' helpers: commands, healthchecks, Go's formatting of history texts.

use super::*;

/// Go's `%q` of a string slice, which the legacy builder's history texts use:
/// `["sh" "-c" "x"]`.
pub(super) fn go_q(v: &[String]) -> String {
    let parts: Vec<String> = v
        .iter()
        .map(|s| serde_json::Value::String(s.clone()).to_string())
        .collect();
    format!("[{}]", parts.join(" "))
}

/// Go's `%v` of a string slice: `[a b]`.
pub(super) fn go_v(v: &[String]) -> String {
    format!("[{}]", v.join(" "))
}

pub(super) fn command_argv(c: &Command, st: &Stage) -> Vec<String> {
    match c {
        Command::Exec(v) => v.clone(),
        Command::Shell(s) => {
            let mut a = st.shell();
            a.push(s.clone());
            a
        }
    }
}

/// A Go duration ("30s", "1m30s", "500ms") in nanoseconds.
pub(super) fn go_duration(s: &str) -> Option<i64> {
    let mut total = 0f64;
    let mut rest = s;
    if rest == "0" {
        return Some(0);
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let v: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let mult = match &rest[..u] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += v * mult;
        rest = &rest[u..];
    }
    Some(total as i64)
}

pub(super) fn healthcheck(
    h: &Healthcheck,
    flags: &[(String, Option<String>)],
) -> Result<serde_json::Value> {
    let test = match h {
        Healthcheck::None => return Ok(serde_json::json!({"Test": ["NONE"]})),
        Healthcheck::Cmd(Command::Exec(v)) => {
            let mut t = vec!["CMD".to_string()];
            t.extend(v.iter().cloned());
            t
        }
        Healthcheck::Cmd(Command::Shell(s)) => vec!["CMD-SHELL".to_string(), s.clone()],
    };
    let mut v = serde_json::json!({ "Test": test });
    for (k, val) in flags {
        let val = val.clone().unwrap_or_default();
        let field = match k.as_str() {
            "interval" => "Interval",
            "timeout" => "Timeout",
            "start-period" => "StartPeriod",
            "start-interval" => "StartInterval",
            "retries" => {
                let n: i64 = val
                    .parse()
                    .map_err(|_| bad(format!("invalid retries value {val}")))?;
                v["Retries"] = n.into();
                continue;
            }
            other => return Err(bad(format!("unknown flag: {other}"))),
        };
        let d =
            go_duration(&val).ok_or_else(|| bad(format!("time: invalid duration \"{val}\"")))?;
        v[field] = d.into();
    }
    Ok(v)
}

/// dockerd merges the parent's healthcheck into the config of the container each step
/// commits: a field left unset (zero) keeps the parent's value, `NONE` included.
pub(super) fn inherit_healthcheck(v: &mut serde_json::Value, prev: &serde_json::Value) {
    for field in [
        "Interval",
        "Timeout",
        "StartPeriod",
        "StartInterval",
        "Retries",
    ] {
        let unset = v.get(field).and_then(|x| x.as_i64()).unwrap_or(0) == 0;
        match prev.get(field).filter(|p| p.as_i64().unwrap_or(0) != 0) {
            Some(p) if unset => v[field] = p.clone(),
            _ => {}
        }
    }
}

/// dockerd's note when a HEALTHCHECK replaces one that tests something: Go's `%v` of the
/// previous test, e.g. `[CMD true]`.
pub(super) fn healthcheck_override_note(prev: Option<&serde_json::Value>) -> Option<String> {
    let test: Vec<String> = prev?
        .get("Test")?
        .as_array()?
        .iter()
        .map(|t| t.as_str().unwrap_or_default().to_string())
        .collect();
    match test.first() {
        Some(first) if first != "NONE" => Some(format!(
            "Note: overriding previous HEALTHCHECK: {}\n",
            go_v(&test)
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_formats() {
        assert_eq!(go_q(&["sh".into(), "-c".into()]), r#"["sh" "-c"]"#);
        assert_eq!(go_duration("1m30s"), Some(90_000_000_000));
        assert_eq!(go_duration("500ms"), Some(500_000_000));
    }

    #[test]
    fn healthcheck_keeps_parents_unset_fields() {
        let prev = serde_json::json!({"Test": ["CMD", "true"], "Interval": 10, "Retries": 4});
        let mut v = serde_json::json!({"Test": ["NONE"], "Retries": 2});
        inherit_healthcheck(&mut v, &prev);
        assert_eq!(
            v,
            serde_json::json!({"Test": ["NONE"], "Retries": 2, "Interval": 10})
        );
        assert_eq!(
            healthcheck_override_note(Some(&prev)).as_deref(),
            Some("Note: overriding previous HEALTHCHECK: [CMD true]\n")
        );
        assert_eq!(healthcheck_override_note(Some(&v)), None);
        assert_eq!(healthcheck_override_note(None), None);
    }
}

//! `docker import --change`: the Dockerfile instructions that only edit the config.

use crate::config::ContainerConfig;
use crate::error::ImageError;

/// Applies one instruction such as `CMD ["sh"]` or `ENV A=1`.
pub fn apply_change(cfg: &mut ContainerConfig, change: &str) -> Result<(), ImageError> {
    let change = change.trim();
    let (instr, rest) = match change.split_once(char::is_whitespace) {
        Some((i, r)) => (i, r.trim()),
        None => (change, ""),
    };
    let bad = || ImageError::InvalidArgument(format!("{} is not a valid change command", instr));
    match instr.to_ascii_uppercase().as_str() {
        "CMD" => cfg.cmd = Some(exec_or_shell(rest)),
        "ENTRYPOINT" => cfg.entrypoint = Some(exec_or_shell(rest)),
        "ENV" => {
            for (k, v) in key_values(rest, "ENV")? {
                let prefix = format!("{k}=");
                cfg.env.retain(|e| !e.starts_with(&prefix) && e != &k);
                cfg.env.push(format!("{k}={v}"));
            }
        }
        "LABEL" => {
            for (k, v) in key_values(rest, "LABEL")? {
                cfg.labels.insert(k, v);
            }
        }
        "EXPOSE" => {
            for p in words(rest)? {
                let p = if p.contains('/') {
                    p
                } else {
                    format!("{p}/tcp")
                };
                cfg.exposed_ports.insert(p, serde_json::json!({}));
            }
        }
        "USER" => cfg.user = one_arg(rest, "USER")?,
        "WORKDIR" => {
            let w = one_arg(rest, "WORKDIR")?;
            // Relative WORKDIR is relative to the previous one, as in a Dockerfile.
            cfg.working_dir = if w.starts_with('/') {
                w
            } else {
                let base = if cfg.working_dir.is_empty() {
                    "/"
                } else {
                    &cfg.working_dir
                };
                format!("{}/{}", base.trim_end_matches('/'), w)
            };
        }
        "VOLUME" => {
            let vols = match serde_json::from_str::<Vec<String>>(rest) {
                Ok(v) => v,
                Err(_) => words(rest)?,
            };
            for v in vols {
                cfg.volumes.insert(v, serde_json::json!({}));
            }
        }
        "STOPSIGNAL" => cfg.stop_signal = one_arg(rest, "STOPSIGNAL")?,
        "HEALTHCHECK" => cfg.healthcheck = Some(healthcheck(rest)?),
        _ => return Err(bad()),
    }
    Ok(())
}

/// `HEALTHCHECK [--interval=D --timeout=D --start-period=D --start-interval=D --retries=N]
/// CMD command` or `HEALTHCHECK NONE`, as the Dockerfile frontend writes it into the image
/// config (zero fields omitted).
fn healthcheck(rest: &str) -> Result<serde_json::Value, ImageError> {
    let invalid = |m: String| ImageError::InvalidArgument(m);
    let mut hc = serde_json::Map::new();
    let mut rest = rest.trim_start();
    while let Some(opt) = rest.strip_prefix("--") {
        let end = opt.find(char::is_whitespace).unwrap_or(opt.len());
        let (name, value) = opt[..end].split_once('=').ok_or_else(|| {
            invalid(format!(
                "HEALTHCHECK option --{} needs a value",
                &opt[..end]
            ))
        })?;
        let key = match name {
            "interval" => "Interval",
            "timeout" => "Timeout",
            "start-period" => "StartPeriod",
            "start-interval" => "StartInterval",
            "retries" => "Retries",
            _ => return Err(invalid(format!("Unknown flag: {name}"))),
        };
        let n = if key == "Retries" {
            let r: i64 = value
                .parse()
                .map_err(|_| invalid(format!("invalid retries value {value:?}")))?;
            if r < 0 {
                return Err(invalid(format!("--retries cannot be negative ({r})")));
            }
            r
        } else {
            let d = go_duration_ns(value)
                .ok_or_else(|| invalid(format!("time: invalid duration {value:?}")))?;
            if d != 0 && d < 1_000_000 {
                return Err(invalid(format!("{key} {value:?} cannot be less than 1ms")));
            }
            d
        };
        if n != 0 {
            hc.insert(key.into(), n.into());
        }
        rest = opt[end..].trim_start();
    }
    let (kind, cmd) = match rest.split_once(char::is_whitespace) {
        Some((k, c)) => (k, c.trim()),
        None => (rest, ""),
    };
    let test: Vec<String> = match kind.to_ascii_uppercase().as_str() {
        "NONE" if cmd.is_empty() => vec!["NONE".into()],
        "NONE" => return Err(invalid("HEALTHCHECK NONE takes no arguments".into())),
        "CMD" if cmd.is_empty() => {
            return Err(invalid("Missing command after HEALTHCHECK CMD".into()))
        }
        "CMD" => match serde_json::from_str::<Vec<String>>(cmd) {
            Ok(v) => std::iter::once("CMD".to_string()).chain(v).collect(),
            Err(_) => vec!["CMD-SHELL".into(), cmd.to_string()],
        },
        _ => {
            return Err(invalid(format!(
                "Unknown type {kind:?} in HEALTHCHECK (try CMD)"
            )))
        }
    };
    hc.insert("Test".into(), serde_json::json!(test));
    Ok(serde_json::Value::Object(hc))
}

/// Go's `time.ParseDuration` for non-negative values, in nanoseconds.
fn go_duration_ns(s: &str) -> Option<i64> {
    berth_units::parse_go_duration_ns(s).filter(|n| *n >= 0)
}

/// JSON array form, or the shell form wrapped in `/bin/sh -c`.
fn exec_or_shell(rest: &str) -> Vec<String> {
    match serde_json::from_str::<Vec<String>>(rest) {
        Ok(v) => v,
        Err(_) => vec!["/bin/sh".into(), "-c".into(), rest.to_string()],
    }
}

fn one_arg(rest: &str, instr: &str) -> Result<String, ImageError> {
    let w = words(rest)?;
    match w.as_slice() {
        [one] => Ok(one.clone()),
        _ => Err(ImageError::InvalidArgument(format!(
            "{instr} requires exactly one argument"
        ))),
    }
}

/// `k=v k2="v 2"` or the legacy `k v with spaces`.
fn key_values(rest: &str, instr: &str) -> Result<Vec<(String, String)>, ImageError> {
    let missing = || ImageError::InvalidArgument(format!("{instr} requires at least one argument"));
    let first = rest.split_whitespace().next().ok_or_else(missing)?;
    if !first.contains('=') {
        let (k, v) = rest.split_once(char::is_whitespace).ok_or_else(|| {
            ImageError::InvalidArgument(format!("{instr} must have two arguments"))
        })?;
        return Ok(vec![(k.to_string(), v.trim().to_string())]);
    }
    words(rest)?
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(ImageError::InvalidArgument(format!(
                "{instr} names can not be blank"
            ))),
        })
        .collect()
}

/// Splits on whitespace honouring double/single quotes and backslash escapes.
fn words(s: &str) -> Result<Vec<String>, ImageError> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') | (None, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            (Some(_), c) => cur.push(c),
            (None, '"') | (None, '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err(ImageError::InvalidArgument(format!(
            "unmatched quote in {s:?}"
        )));
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_changes() {
        let mut c = ContainerConfig::default();
        for ch in [
            r#"CMD ["/bin/sh", "-c", "echo"]"#,
            "ENTRYPOINT top -b",
            "ENV A=1 B=\"two words\"",
            "ENV A 3",
            "env C=x",
            "EXPOSE 80 53/udp",
            "LABEL x=y",
            "USER nobody",
            "WORKDIR /app",
            "WORKDIR sub",
            "VOLUME [\"/data\"]",
            "STOPSIGNAL SIGKILL",
        ] {
            apply_change(&mut c, ch).unwrap();
        }
        assert_eq!(c.cmd.unwrap(), vec!["/bin/sh", "-c", "echo"]);
        assert_eq!(c.entrypoint.unwrap(), vec!["/bin/sh", "-c", "top -b"]);
        assert_eq!(c.env, vec!["B=two words", "A=3", "C=x"]);
        assert!(c.exposed_ports.contains_key("80/tcp") && c.exposed_ports.contains_key("53/udp"));
        assert_eq!(c.labels["x"], "y");
        assert_eq!(c.user, "nobody");
        assert_eq!(c.working_dir, "/app/sub");
        assert!(c.volumes.contains_key("/data"));
        assert_eq!(c.stop_signal, "SIGKILL");
        let mut h = ContainerConfig::default();
        apply_change(
            &mut h,
            "HEALTHCHECK --interval=200ms --retries=2 CMD wget -q localhost",
        )
        .unwrap();
        assert_eq!(
            h.healthcheck.clone().unwrap(),
            serde_json::json!({"Test": ["CMD-SHELL", "wget -q localhost"],
                               "Interval": 200_000_000, "Retries": 2})
        );
        apply_change(&mut h, r#"HEALTHCHECK CMD ["true"]"#).unwrap();
        assert_eq!(
            h.healthcheck.clone().unwrap()["Test"],
            serde_json::json!(["CMD", "true"])
        );
        apply_change(&mut h, "HEALTHCHECK NONE").unwrap();
        assert_eq!(
            h.healthcheck.clone().unwrap()["Test"],
            serde_json::json!(["NONE"])
        );
        assert!(apply_change(&mut h, "HEALTHCHECK --interval=1us CMD true").is_err());
        assert!(apply_change(&mut h, "HEALTHCHECK RUN true").is_err());
        let e = apply_change(&mut ContainerConfig::default(), "RUN ls").unwrap_err();
        assert_eq!(e.to_string(), "RUN is not a valid change command");
    }
}

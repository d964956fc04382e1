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
        _ => return Err(bad()),
    }
    Ok(())
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
        let e = apply_change(&mut ContainerConfig::default(), "RUN ls").unwrap_err();
        assert_eq!(e.to_string(), "RUN is not a valid change command");
    }
}

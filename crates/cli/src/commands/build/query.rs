//! `POST /build` query parameters exactly as the docker 28 client encodes them
//! (client/image_build.go `imageBuildOptionsToQuery`, then Go's `url.Values.Encode`: keys
//! sorted, a key repeated for each value, JSON maps with sorted keys).

use super::BuildArgs;
use crate::commands::run_opts::ram_in_bytes;
use anyhow::Result;
use std::collections::BTreeMap;

/// The query's pairs, before encoding; `BTreeMap` gives Go's sorted key order.
pub(crate) type Query = BTreeMap<&'static str, Vec<String>>;

/// `--build-arg` values: `NAME=value`, or `NAME` taken from the environment when set there
/// and sent as `null` otherwise (opts.ValidateEnv, ConvertKVStringsToMapWithNil).
pub(crate) fn build_args(
    args: &[String],
    env: impl Fn(&str) -> Option<String>,
) -> Result<BTreeMap<String, Option<String>>> {
    let mut m = BTreeMap::new();
    for a in args {
        let (k, v) = match a.split_once('=') {
            Some((k, v)) => (k, Some(v.to_string())),
            None => (a.as_str(), env(a)),
        };
        if k.is_empty() {
            return Err(super::usage_error(&format!(
                "invalid argument \"{a}\" for \"--build-arg\" flag: invalid environment variable: {a}"
            )));
        }
        m.insert(k.to_string(), v);
    }
    Ok(m)
}

/// `--label` values: `key=value` or `key` (an empty value).
pub(crate) fn labels(args: &[String]) -> BTreeMap<String, String> {
    args.iter()
        .map(|a| match a.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (a.clone(), String::new()),
        })
        .collect()
}

fn json<T: serde::Serialize>(v: &T) -> Result<String> {
    Ok(serde_json::to_string(v)?)
}

fn mem(flag: &str, v: &Option<String>) -> Result<i64> {
    match v.as_deref() {
        None => Ok(0),
        // MemSwapBytes: -1 is unlimited swap.
        Some("-1") if flag == "memory-swap" => Ok(-1),
        Some(s) => ram_in_bytes(s).map_err(|e| {
            super::usage_error(&format!(
                "invalid argument \"{s}\" for \"--{flag}\" flag: {e}"
            ))
        }),
    }
}

/// The query for a build of `a` whose Dockerfile is `dockerfile` in the context, and with
/// `remote` when the daemon fetches the context.
pub(crate) fn build_query(
    a: &BuildArgs,
    dockerfile: &str,
    remote: Option<&str>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Query> {
    let mut q = Query::new();
    let mut set = |k: &'static str, v: String| {
        q.insert(k, vec![v]);
    };
    if a.quiet {
        set("q", "1".into());
    }
    if let Some(r) = remote {
        set("remote", r.into());
    }
    if a.no_cache {
        set("nocache", "1".into());
    }
    if !a.rm {
        set("rm", "0".into());
    }
    if a.force_rm {
        set("forcerm", "1".into());
    }
    if a.pull {
        set("pull", "1".into());
    }
    if a.squash {
        set("squash", "1".into());
    }
    if let Some(i) = a
        .isolation
        .as_deref()
        .filter(|i| !i.is_empty() && *i != "default")
    {
        set("isolation", i.into());
    }
    if let Some(s) = a.cpuset_cpus.as_deref().filter(|s| !s.is_empty()) {
        set("cpusetcpus", s.into());
    }
    if !a.network.is_empty() && a.network != "default" {
        set("networkmode", a.network.clone());
    }
    if let Some(s) = a.cpuset_mems.as_deref().filter(|s| !s.is_empty()) {
        set("cpusetmems", s.into());
    }
    for (k, v) in [
        ("cpushares", a.cpu_shares),
        ("cpuquota", a.cpu_quota),
        ("cpuperiod", a.cpu_period),
        ("memory", mem("memory", &a.memory)?),
        ("memswap", mem("memory-swap", &a.memory_swap)?),
    ] {
        if v != 0 {
            set(k, v.to_string());
        }
    }
    if let Some(s) = a.cgroup_parent.as_deref().filter(|s| !s.is_empty()) {
        set("cgroupparent", s.into());
    }
    let shm = mem("shm-size", &a.shm_size)?;
    if shm != 0 {
        set("shmsize", shm.to_string());
    }
    if !dockerfile.is_empty() {
        set("dockerfile", dockerfile.into());
    }
    if let Some(t) = a.target.as_deref().filter(|t| !t.is_empty()) {
        set("target", t.into());
    }
    let args = build_args(&a.build_arg, env)?;
    if !args.is_empty() {
        set("buildargs", json(&args)?);
    }
    let labels = labels(&a.label);
    if !labels.is_empty() {
        set("labels", json(&labels)?);
    }
    // A StringSlice flag: each value may hold several, comma-separated.
    let cache_from: Vec<&str> = a
        .cache_from
        .iter()
        .flat_map(|c| c.split(','))
        .filter(|c| !c.is_empty())
        .collect();
    if !cache_from.is_empty() {
        set("cachefrom", json(&cache_from)?);
    }
    if let Some(p) = a.platform.as_deref().filter(|p| !p.is_empty()) {
        set("platform", p.to_ascii_lowercase());
    }
    set("version", "1".into());
    for (k, vals) in [
        ("t", &a.tag),
        ("extrahosts", &a.add_host),
        ("securityopt", &a.security_opt),
    ] {
        if !vals.is_empty() {
            q.insert(k, vals.clone());
        }
    }
    for t in &a.tag {
        validate_tag(t)?;
    }
    Ok(q)
}

/// The checks of reference.ParseNormalizedNamed that a tag given on the command line most
/// often fails; the daemon validates fully.
fn validate_tag(t: &str) -> Result<()> {
    let name = t.split_once('@').map_or(t, |(n, _)| n);
    let (name, tag) = match name.rfind(':') {
        Some(i) if !name[i..].contains('/') => (&name[..i], Some(&name[i + 1..])),
        _ => (name, None),
    };
    let component_ok = |c: &str| {
        !c.is_empty()
            && c.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            && c.starts_with(|ch: char| ch.is_ascii_alphanumeric())
            && c.ends_with(|ch: char| ch.is_ascii_alphanumeric())
    };
    let (domain, path) = match name.split_once('/') {
        Some((d, rest)) if d.contains(['.', ':']) || d == "localhost" => (Some(d), rest),
        _ => (None, name),
    };
    let tag_ok = tag.is_none_or(|t| {
        !t.is_empty()
            && t.len() <= 128
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            && !t.starts_with(['.', '-'])
    });
    let valid = tag_ok
        && domain.is_none_or(|d| !d.is_empty() && !d.contains(char::is_whitespace))
        && path.split('/').all(component_ok);
    let why = if !valid {
        "invalid reference format".to_string()
    } else if path.contains(|c: char| c.is_ascii_uppercase()) {
        let full = match domain {
            None if !path.contains('/') => format!("library/{path}"),
            _ => name.to_string(),
        };
        format!("invalid reference format: repository name ({full}) must be lowercase")
    } else {
        return Ok(());
    };
    Err(super::usage_error(&format!(
        "invalid argument \"{t}\" for \"-t, --tag\" flag: {why}"
    )))
}

/// Go's url.QueryEscape.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// url.Values.Encode.
pub(crate) fn encode(q: &Query) -> String {
    let mut parts = Vec::new();
    for (k, vals) in q {
        for v in vals {
            parts.push(format!("{}={}", escape(k), escape(v)));
        }
    }
    parts.join("&")
}

/// Replaces the query of a request URI (bollard builds its own from a struct that cannot
/// repeat `t` nor send a null build-arg).
pub(crate) fn with_query(uri: &str, query: &str) -> String {
    let base = uri.split_once('?').map_or(uri, |(b, _)| b);
    format!("{base}?{query}")
}

//! `--secret id=ID[,src=PATH|,source=PATH|,env=VAR][,type=file|env]`, buildx's syntax and
//! sources (buildx's Secret.UnmarshalText and BuildKit's secretsprovider.NewStore): with
//! `id` alone the value is the variable of that name when it is set, else the file of that
//! name. The classic `POST /build` has no field for secrets, so they travel in Berth's own
//! request header (see the daemon's `build::options::SECRETS_HEADER`).

use super::usage_error;
use crate::commands::mount_opts::csv_fields;
use anyhow::{anyhow, Result};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The header's name; the daemon's `build::options::SECRETS_HEADER`.
pub(crate) const HEADER: &str = "X-Berth-Build-Secrets";

/// The most secret bytes a build may carry in all; the daemon's
/// `build::options::MAX_SECRETS_BYTES` (the header must fit hyper's request-head limit).
pub(crate) const MAX_BYTES: usize = 128 * 1024;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Source {
    File(PathBuf),
    Env(String),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Spec {
    pub id: String,
    pub source: Source,
}

/// One `--secret` value. `is_set` says whether a variable is in the environment (an `id`
/// alone names the variable when it is).
pub(crate) fn parse(value: &str, is_set: impl Fn(&str) -> bool) -> Result<Spec> {
    let flag_err = |why: String| {
        usage_error(&format!(
            "invalid argument \"{value}\" for \"--secret\" flag: {why}"
        ))
    };
    let fields =
        csv_fields(value).map_err(|e| flag_err(format!("failed to parse csv secret: {e}")))?;
    let (mut id, mut file, mut env, mut typ) = (String::new(), String::new(), String::new(), "");
    for field in &fields {
        let Some((key, v)) = field.split_once('=') else {
            return Err(flag_err(format!(
                "invalid field '{field}' must be a key=value pair"
            )));
        };
        match key.to_ascii_lowercase().as_str() {
            "type" => {
                typ = match v {
                    "file" => "file",
                    "env" => "env",
                    _ => return Err(flag_err(format!("unsupported secret type \"{v}\""))),
                }
            }
            "id" => id = v.to_string(),
            "source" | "src" => file = v.to_string(),
            "env" => env = v.to_string(),
            k => return Err(flag_err(format!("unexpected key '{k}' in '{field}'"))),
        }
    }
    if typ == "env" && env.is_empty() {
        env = std::mem::take(&mut file);
    }
    if id.is_empty() {
        return Err(flag_err("secret missing ID".into()));
    }
    let source = if !env.is_empty() {
        Source::Env(env)
    } else if !file.is_empty() {
        Source::File(file.into())
    } else if is_set(&id) {
        Source::Env(id.clone())
    } else {
        Source::File(id.clone().into())
    };
    Ok(Spec { id, source })
}

/// Every `--secret`'s value, by id (a later one with the same id wins, as with buildx). An
/// unset variable gives an empty value, as with buildx; a file must be readable.
pub(crate) fn load(
    values: &[String],
    env: impl Fn(&str) -> Option<Vec<u8>>,
) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut out = BTreeMap::new();
    for v in values {
        let spec = parse(v, |k| env(k).is_some())?;
        let value = match &spec.source {
            Source::Env(var) => env(var).unwrap_or_default(),
            Source::File(path) => std::fs::read(path).map_err(|e| {
                anyhow!("failed to read secret {}: {}: {e}", spec.id, path.display())
            })?,
        };
        out.insert(spec.id, value);
    }
    Ok(out)
}

/// The header's value for `secrets` (None when there are none): base64 of a JSON object
/// of id -> base64 value.
pub(crate) fn header_value(secrets: &BTreeMap<String, Vec<u8>>) -> Result<Option<String>> {
    if secrets.is_empty() {
        return Ok(None);
    }
    let total: usize = secrets.values().map(Vec::len).sum();
    if total > MAX_BYTES {
        return Err(anyhow!(
            "the build secrets total {total} bytes, more than the {MAX_BYTES} bytes (128 KiB) a build may carry: Berth sends them in a request header (BuildKit allows 500 KB per secret)"
        ));
    }
    let map: BTreeMap<&str, String> = secrets
        .iter()
        .map(|(k, v)| (k.as_str(), STANDARD.encode(v)))
        .collect();
    Ok(Some(STANDARD.encode(serde_json::to_vec(&map)?)))
}

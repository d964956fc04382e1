//! `POST /build` (the classic builder's progress stream) and `POST /build/prune`.

use super::images::blocking_reader;
use crate::error::{ApiError, ApiResult};
use crate::json::Json;
use crate::query::Params;
use crate::registry_auth::{base64_decode, registry_config};
use crate::stream::json_line;
use crate::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use berth_engine::build::options::{MAX_SECRETS_BYTES, SECRETS_HEADER};
use berth_engine::build::{BuildEvent, BuildOptions};
use std::collections::HashMap;

/// A JSON-object query value (`buildargs`, `labels`); empty means none.
fn json_map<V: serde::de::DeserializeOwned>(
    p: &Params,
    key: &str,
) -> ApiResult<HashMap<String, V>> {
    match p.get(key).filter(|v| !v.is_empty() && *v != "null") {
        None => Ok(HashMap::new()),
        Some(v) => serde_json::from_str(v)
            .map_err(|e| ApiError::bad_request(format!("invalid {key} parameter: {e}"))),
    }
}

/// The build's secrets from `X-Berth-Build-Secrets` (Berth's CLI sends it; the classic API
/// has no field for secrets): base64 of a JSON object, id -> base64 of the value. Errors
/// never quote the header or a value.
fn secrets(headers: &HeaderMap) -> ApiResult<HashMap<String, Vec<u8>>> {
    let Some(raw) = headers.get(SECRETS_HEADER) else {
        return Ok(HashMap::new());
    };
    let bad = |why: &str| ApiError::bad_request(format!("invalid {SECRETS_HEADER} header: {why}"));
    let json = raw
        .to_str()
        .ok()
        .and_then(base64_decode)
        .ok_or_else(|| bad("not base64"))?;
    let map: HashMap<String, String> = serde_json::from_slice(&json)
        .map_err(|_| bad("not a JSON object of secret ids to base64 values"))?;
    let mut out = HashMap::with_capacity(map.len());
    let mut total = 0usize;
    for (id, value) in map {
        if id.is_empty() {
            return Err(bad("a secret has an empty id"));
        }
        let value = base64_decode(&value)
            .ok_or_else(|| bad(&format!("the value of secret {id:?} is not base64")))?;
        total += value.len();
        out.insert(id, value);
    }
    if total > MAX_SECRETS_BYTES {
        return Err(bad(&format!(
            "the secrets total {total} bytes; a build may carry at most {MAX_SECRETS_BYTES} bytes of secrets (they travel in a request header)"
        )));
    }
    Ok(out)
}

fn options(p: &Params) -> ApiResult<BuildOptions> {
    let list = |key: &str| -> Vec<String> {
        p.all(key)
            .into_iter()
            .flat_map(|v| {
                // `extrahosts`/`cachefrom` come as repeated values or as one JSON array.
                serde_json::from_str::<Vec<String>>(&v).unwrap_or_else(|_| vec![v])
            })
            .filter(|v| !v.is_empty())
            .collect()
    };
    Ok(BuildOptions {
        tags: p.all("t").into_iter().filter(|t| !t.is_empty()).collect(),
        dockerfile: p.get("dockerfile").unwrap_or("").to_string(),
        build_args: json_map(p, "buildargs")?,
        labels: json_map(p, "labels")?,
        target: p
            .get("target")
            .filter(|t| !t.is_empty())
            .map(str::to_string),
        no_cache: p.bool("nocache"),
        remove: p.bool_or("rm", true),
        force_remove: p.bool("forcerm"),
        pull: p.bool("pull"),
        network_mode: p
            .get("networkmode")
            .filter(|n| !n.is_empty())
            .map(str::to_string),
        extra_hosts: list("extrahosts"),
        shm_size: p.int("shmsize")?,
        memory: p.int("memory")?,
        quiet: p.bool("q"),
        platform: p
            .get("platform")
            .filter(|n| !n.is_empty())
            .map(str::to_string),
        cache_from: list("cachefrom"),
        secrets: HashMap::new(),
        registry_auths: Default::default(),
        context_session: p
            .get("berthsession")
            .filter(|s| !s.is_empty())
            .map(str::to_string),
    })
}

fn event_json(e: BuildEvent) -> serde_json::Value {
    match e {
        BuildEvent::Stream(s) => serde_json::json!({ "stream": s }),
        BuildEvent::Aux(v) => serde_json::json!({ "aux": v }),
        BuildEvent::Progress(m) => m.to_json(),
        BuildEvent::Error { message, code } => {
            let mut detail = serde_json::json!({ "message": message });
            if let Some(c) = code {
                detail["code"] = c.into();
            }
            serde_json::json!({ "errorDetail": detail, "error": message })
        }
    }
}

pub async fn build(
    State(engine): State<AppState>,
    p: Params,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let opts = BuildOptions {
        secrets: secrets(&headers)?,
        registry_auths: registry_config(&headers),
        ..options(&p)?
    };
    let rx = match p.get("remote").filter(|r| !r.is_empty()) {
        // The body is empty then: the context is the tarball (or Dockerfile) at the URL.
        Some(remote) => {
            let file = engine.download_build_context(remote).await?;
            engine.build_image(opts, file).await?
        }
        // Extracted while it streams in: no spool file, one pass over the bytes.
        None => engine.build_image(opts, blocking_reader(body)).await?,
    };
    let out = futures_util::stream::unfold(rx, |mut rx| async move {
        let e = rx.recv().await?;
        Some((Ok::<_, std::io::Error>(json_line(&event_json(e))), rx))
    });
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(out),
    )
        .into_response())
}

#[derive(serde::Deserialize)]
struct ContextManifest {
    entries: Vec<berth_engine::build::ManifestEntry>,
}

/// `POST /build/context?key=…` (Berth's own; its CLI only): compares the client's context
/// manifest with the context kept for that key; the answer names the session a `POST /build`
/// then gives as `berthsession`, with a body holding only the paths in `need`.
pub async fn compare_context(
    State(engine): State<AppState>,
    p: Params,
    bytes: axum::body::Bytes,
) -> ApiResult<impl IntoResponse> {
    let manifest: ContextManifest = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid context manifest: {e}")))?;
    let key = p.get("key").unwrap_or("");
    Ok(Json(
        engine.compare_build_context(key, manifest.entries).await?,
    ))
}

/// `POST /build/prune` (`docker builder prune`, `docker system prune`).
pub async fn prune(State(engine): State<AppState>, p: Params) -> ApiResult<impl IntoResponse> {
    // `keep-storage` (API < 1.48) and `reserved-space` (1.48+) both say how much cache may
    // stay; `max-used-space` bounds it the same way here.
    let mut keep = None;
    for k in ["keep-storage", "reserved-space", "max-used-space"] {
        if let Some(v) = p.int(k)?.filter(|v| *v > 0) {
            keep = Some(keep.map_or(v as u64, |k: u64| k.min(v as u64)));
        }
    }
    let opts = berth_engine::build::PruneOptions {
        all: p.bool("all"),
        keep_storage: keep,
    };
    let (deleted, freed) = engine.prune_build_cache_with(&p.filters()?, &opts).await?;
    Ok(Json(serde_json::json!({
        "CachesDeleted": deleted,
        "SpaceReclaimed": freed,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use base64::Engine as _;

    fn header(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(SECRETS_HEADER, value.parse().unwrap());
        h
    }

    fn encode(json: &str) -> String {
        STANDARD.encode(json)
    }

    #[test]
    fn secrets_header_decodes() {
        assert!(secrets(&HeaderMap::new()).unwrap().is_empty());
        let v = STANDARD.encode(b"s3cr3t\n\0bin");
        let s = secrets(&header(&encode(&format!(r#"{{"tok":"{v}","e":""}}"#)))).unwrap();
        assert_eq!(s["tok"], b"s3cr3t\n\0bin");
        assert_eq!(s["e"], b"");
        // URL-safe, unpadded base64 is read too.
        let v = URL_SAFE_NO_PAD.encode([0xfbu8, 0xff]);
        let s = secrets(&header(
            &URL_SAFE_NO_PAD.encode(format!(r#"{{"k":"{v}"}}"#)),
        ))
        .unwrap();
        assert_eq!(s["k"], [0xfb, 0xff]);
    }

    #[test]
    fn bad_secrets_header_is_a_400_that_quotes_nothing() {
        let too_big = STANDARD.encode(vec![b'x'; MAX_SECRETS_BYTES + 1]);
        for (value, why) in [
            ("%%%".to_string(), "not base64"),
            (encode("[1]"), "not a JSON object"),
            (encode(r#"{"a":1}"#), "not a JSON object"),
            (
                encode(r#"{"a":"@@@ s3cr3t"}"#),
                "the value of secret \"a\" is not base64",
            ),
            (encode(r#"{"":"eA=="}"#), "empty id"),
            (
                encode(&format!(r#"{{"a":"{too_big}"}}"#)),
                "a build may carry at most 131072 bytes",
            ),
        ] {
            let e = secrets(&header(&value)).unwrap_err();
            assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST);
            assert!(e.message.contains(why), "{}: {}", why, e.message);
            assert!(!e.message.contains("s3cr3t"), "{}", e.message);
        }
    }
}

//! `POST /build` (the classic builder's progress stream) and `POST /build/prune`.

use crate::error::{ApiError, ApiResult};
use crate::json::Json;
use crate::query::Params;
use crate::stream::json_line;
use crate::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
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
        secrets: Default::default(),
    })
}

fn event_json(e: BuildEvent) -> serde_json::Value {
    match e {
        BuildEvent::Stream(s) => serde_json::json!({ "stream": s }),
        BuildEvent::Aux(v) => serde_json::json!({ "aux": v }),
        BuildEvent::Error { message, code } => {
            let mut detail = serde_json::json!({ "message": message });
            if let Some(c) = code {
                detail["code"] = c.into();
            }
            serde_json::json!({ "errorDetail": detail, "error": message })
        }
    }
}

pub async fn build(State(engine): State<AppState>, p: Params, body: Body) -> ApiResult<Response> {
    let opts = options(&p)?;
    let file = match p.get("remote").filter(|r| !r.is_empty()) {
        // The body is empty then: the context is the tarball (or Dockerfile) at the URL.
        Some(remote) => engine.download_build_context(remote).await?,
        None => {
            engine
                .spool_upload(body.into_data_stream(), "build context")
                .await?
        }
    };
    let rx = engine.build_image(opts, file).await?;
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

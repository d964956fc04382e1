//! Container file-system endpoints: archive (docker cp), export, changes (docker diff), and
//! POST /commit.

use crate::error::{ApiError, ApiResult};
use crate::json::Json;
use crate::query::Params;
use crate::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use berth_engine::container::archive::{ExtractRequest, PathStat};
use berth_engine::container::commit::CommitOptions;
use futures_util::stream;
use futures_util::StreamExt;

const PATH_STAT_HEADER: &str = "X-Docker-Container-Path-Stat";

fn stat_header(stat: &PathStat) -> ApiResult<HeaderValue> {
    let json = serde_json::to_vec(stat)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    HeaderValue::from_str(&base64::engine::general_purpose::STANDARD.encode(json))
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

fn required_path(p: &Params) -> ApiResult<String> {
    match p.get("path") {
        Some(path) if !path.is_empty() => Ok(path.to_string()),
        _ => Err(ApiError::bad_request("path is required")),
    }
}

fn tar_body(rx: berth_engine::container::archive::TarStream) -> Body {
    Body::from_stream(stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    }))
}

pub async fn archive_head(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<Response> {
    let stat = engine.archive_stat(&id, &required_path(&p)?).await?;
    Ok((
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (
                header::HeaderName::from_static("x-docker-container-path-stat"),
                stat_header(&stat)?,
            ),
        ],
    )
        .into_response())
}

pub async fn archive_get(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<Response> {
    let (stat, rx) = engine.archive_get(&id, &required_path(&p)?).await?;
    let mut resp = ([(header::CONTENT_TYPE, "application/x-tar")], tar_body(rx)).into_response();
    resp.headers_mut()
        .insert(PATH_STAT_HEADER, stat_header(&stat)?);
    Ok(resp)
}

pub async fn archive_put(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    p: Params,
    body: Body,
) -> ApiResult<StatusCode> {
    let req = ExtractRequest {
        path: required_path(&p)?,
        no_overwrite_dir_non_dir: p.bool("noOverwriteDirNonDir"),
        copy_uid_gid: p.bool("copyUIDGID"),
    };
    let mut stream = body.into_data_stream();
    if let Err(e) = engine.archive_put(&id, req, &mut stream).await {
        // A refusal comes before the upload has been read. Read the rest (within bounds)
        // before answering, as Go's server does, or the client, still writing, gets a broken
        // pipe instead of the error.
        let drain = async {
            let mut left: usize = 64 << 20;
            while let Some(Ok(chunk)) = stream.next().await {
                left = left.saturating_sub(chunk.len());
                if left == 0 {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), drain).await;
        return Err(e.into());
    }
    Ok(StatusCode::OK)
}

pub async fn export(State(engine): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let rx = engine.export_container(&id).await?;
    Ok(([(header::CONTENT_TYPE, "application/x-tar")], tar_body(rx)).into_response())
}

pub async fn changes(
    State(engine): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    Ok(Json(engine.container_changes(&id).await?))
}

pub async fn commit(State(engine): State<AppState>, p: Params, body: Bytes) -> ApiResult<Response> {
    let config = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        Some(
            serde_json::from_slice::<serde_json::Value>(&body)
                .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?,
        )
    };
    let opts = CommitOptions {
        container: p.get("container").unwrap_or("").to_string(),
        repo: p.get("repo").unwrap_or("").to_string(),
        tag: p.get("tag").unwrap_or("").to_string(),
        comment: p.get("comment").unwrap_or("").to_string(),
        author: p.get("author").unwrap_or("").to_string(),
        // The API's default is to pause.
        pause: p.bool_or("pause", true),
        // One instruction per value; bollard joins several into one value with newlines.
        changes: p
            .all("changes")
            .iter()
            .flat_map(|c| c.lines().map(str::to_string).collect::<Vec<_>>())
            .filter(|c| !c.trim().is_empty())
            .collect(),
        config,
    };
    let id = engine.commit_container(opts).await?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "Id": id }))).into_response())
}

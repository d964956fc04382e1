use crate::error::{ApiError, ApiResult};
use crate::json::Json;
use crate::query::Params;
use crate::stream::json_line;
use crate::AppState;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_image::reference::Reference;
use berth_image::ImportOptions;
use futures_util::TryStreamExt;
use serde_json::json;
use std::io::BufWriter;
use tokio_util::io::{ReaderStream, StreamReader, SyncIoBridge};

pub async fn list(State(engine): State<AppState>, p: Params) -> ApiResult<impl IntoResponse> {
    Ok(Json(engine.list_images(p.bool("all"), &p.filters()?)?))
}

/// A request body as a blocking reader, for the synchronous image store and the builder.
pub(super) fn blocking_reader(body: Body) -> SyncIoBridge<impl tokio::io::AsyncRead + Unpin> {
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    SyncIoBridge::new(StreamReader::new(stream))
}

fn json_stream(lines: Vec<serde_json::Value>) -> Response {
    let body: Vec<u8> = lines.iter().flat_map(|l| json_line(l).to_vec()).collect();
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn target_reference(repo: &str, tag: &str) -> ApiResult<Option<Reference>> {
    if repo.is_empty() {
        return Ok(None);
    }
    let full = if tag.is_empty() {
        repo.to_string()
    } else {
        format!("{repo}:{tag}")
    };
    Ok(Some(Reference::parse_normalized(&full)?.with_default_tag()))
}

/// `POST /images/create`: `fromSrc` imports a rootfs tarball; `fromImage` pulls.
pub async fn create(
    State(engine): State<AppState>,
    p: Params,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    // dockerd: a non-empty fromImage pulls, anything else imports.
    if let Some(image) = p.get("fromImage").filter(|i| !i.is_empty()) {
        let image = image.to_string();
        return super::registry::pull(engine, &p, &headers, &image).await;
    }
    let src = p.get("fromSrc").unwrap_or("");
    if src != "-" {
        return Err(ApiError::bad_request(if src.is_empty() {
            "either fromSrc or fromImage must be given".to_string()
        } else {
            format!("importing from a URL is not supported: {src}")
        }));
    }
    let opts = ImportOptions {
        reference: target_reference(p.get("repo").unwrap_or(""), p.get("tag").unwrap_or(""))?,
        message: p
            .get("message")
            .filter(|m| !m.is_empty())
            .map(str::to_string),
        changes: p
            .all("changes")
            .into_iter()
            .filter(|c| !c.trim().is_empty())
            .collect(),
        platform: p
            .get("platform")
            .filter(|m| !m.is_empty())
            .map(str::to_string),
    };
    let image = engine.import_image(blocking_reader(body), opts).await?;
    Ok(json_stream(vec![json!({"status": image.id.to_string()})]))
}

pub async fn load(State(engine): State<AppState>, body: Body) -> ApiResult<Response> {
    let (_, lines) = engine.load_images(blocking_reader(body)).await?;
    Ok(json_stream(
        lines
            .iter()
            .map(|m| json!({"stream": format!("{m}\n")}))
            .collect(),
    ))
}

async fn save(engine: AppState, names: Vec<String>) -> ApiResult<Response> {
    if names.is_empty() {
        return Err(ApiError::bad_request("no images given"));
    }
    engine.images_saved(&names).await?;
    let (w, r) = tokio::io::duplex(256 * 1024);
    let images = engine.images.clone();
    let writer = SyncIoBridge::new(w);
    tokio::task::spawn_blocking(move || {
        if let Err(e) = images.save(&names, BufWriter::with_capacity(256 * 1024, writer)) {
            tracing::warn!("save failed after the stream started: {e}");
        }
    });
    Ok((
        [(header::CONTENT_TYPE, "application/x-tar")],
        Body::from_stream(ReaderStream::new(r)),
    )
        .into_response())
}

pub async fn save_many(State(engine): State<AppState>, p: Params) -> ApiResult<Response> {
    save(engine, p.all("names")).await
}

/// Image names contain slashes, so `/images/{name}/json|history|get` share one wildcard route.
pub async fn get_by_name(
    State(engine): State<AppState>,
    Path(path): Path<String>,
) -> ApiResult<Response> {
    if let Some(name) = path.strip_suffix("/json") {
        return Ok(Json(engine.inspect_image(name).await?).into_response());
    }
    if let Some(name) = path.strip_suffix("/history") {
        return Ok(Json(engine.image_history(name).await?).into_response());
    }
    if let Some(name) = path.strip_suffix("/get") {
        return save(engine, vec![name.to_string()]).await;
    }
    Err(ApiError::new(StatusCode::NOT_FOUND, "page not found"))
}

pub async fn post_by_name(
    State(engine): State<AppState>,
    Path(path): Path<String>,
    p: Params,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if let Some(name) = path.strip_suffix("/tag") {
        let repo = p.get("repo").unwrap_or("");
        if repo.is_empty() {
            return Err(ApiError::bad_request(
                "repository name must have at least one component",
            ));
        }
        let target = target_reference(repo, p.get("tag").unwrap_or(""))?
            .map(|r| r.full())
            .unwrap_or_default();
        engine.tag_image(name, &target).await?;
        return Ok(StatusCode::CREATED.into_response());
    }
    if let Some(name) = path.strip_suffix("/push") {
        return super::registry::push(engine, name, &p, &headers).await;
    }
    Err(ApiError::new(StatusCode::NOT_FOUND, "page not found"))
}

pub async fn remove(
    State(engine): State<AppState>,
    Path(name): Path<String>,
    p: Params,
) -> ApiResult<impl IntoResponse> {
    Ok(Json(
        engine
            .remove_image(&name, p.bool("force"), p.bool("noprune"))
            .await?,
    ))
}

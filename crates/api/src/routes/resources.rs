//! Resource endpoints of a container: stats, top, pause/unpause and update.

use crate::error::{ApiError, ApiResult};
use crate::json::Json;
use crate::query::Params;
use crate::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_engine::resources::StatsOptions;
use bollard_stubs::models::{ContainerUpdateBody, ContainerUpdateResponse};
use futures_util::stream;

/// One JSON object per line; the headers go out at once so clients see the stream open.
pub async fn stats(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<Response> {
    let stream_frames = p.bool_or("stream", true);
    let one_shot = p.bool("one-shot");
    if one_shot && stream_frames {
        return Err(ApiError::bad_request(
            "cannot have stream=true and one-shot=true",
        ));
    }
    let rx = engine.container_stats(
        &id,
        StatsOptions {
            stream: stream_frames,
            one_shot,
        },
    )?;
    let body = stream::unfold(rx, |mut rx| async move {
        let v = rx.recv().await?;
        Some((Ok::<_, std::io::Error>(Bytes::from(format!("{v}\n"))), rx))
    });
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(body),
    )
        .into_response())
}

pub async fn top(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<impl IntoResponse> {
    Ok(Json(engine.top_container(&id, p.get("ps_args")).await?))
}

pub async fn pause(
    State(engine): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    engine.pause(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn unpause(
    State(engine): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    engine.unpause(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn update(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<impl IntoResponse> {
    let req: ContainerUpdateBody = if body.is_empty() {
        ContainerUpdateBody::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?
    };
    let warnings = engine.update_container(&id, req).await?;
    Ok(Json(ContainerUpdateResponse {
        warnings: Some(warnings),
    }))
}

//! Disk space: `POST /containers/prune`, `POST /images/prune`, `GET /system/df`.

use crate::error::ApiResult;
use crate::json::Json;
use crate::query::Params;
use crate::AppState;
use axum::extract::State;
use axum::response::IntoResponse;
use berth_engine::disk_usage::DfTypes;

pub async fn containers(State(engine): State<AppState>, p: Params) -> ApiResult<impl IntoResponse> {
    Ok(Json(engine.prune_containers(&p.filters()?).await?))
}

pub async fn images(State(engine): State<AppState>, p: Params) -> ApiResult<impl IntoResponse> {
    Ok(Json(engine.prune_images(&p.filters()?).await?))
}

pub async fn system_df(State(engine): State<AppState>, p: Params) -> ApiResult<impl IntoResponse> {
    let types: Vec<String> = p
        .all("type")
        .into_iter()
        .filter(|t| !t.is_empty())
        .collect();
    Ok(Json(engine.disk_usage(DfTypes::parse(&types)?).await?))
}

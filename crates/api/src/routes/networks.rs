//! `/networks`: create, list, inspect, remove, prune, connect and disconnect.

use crate::error::{ApiError, ApiResult};
use crate::json::Json;
use crate::query::Params;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bollard_stubs::models::{
    NetworkConnectRequest, NetworkCreateRequest, NetworkCreateResponse, NetworkDisconnectRequest,
    NetworkPruneResponse,
};
use serde::de::DeserializeOwned;

fn body<T: DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

pub async fn list(State(engine): State<AppState>, p: Params) -> ApiResult<impl IntoResponse> {
    Ok(Json(engine.list_networks(&p.filters()?)?))
}

pub async fn inspect(
    State(engine): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    Ok(Json(engine.inspect_network(&id)?))
}

pub async fn create(State(engine): State<AppState>, bytes: Bytes) -> ApiResult<Response> {
    let req: NetworkCreateRequest = body(&bytes)?;
    let (id, warning) = engine.create_network(req).await?;
    Ok((
        StatusCode::CREATED,
        Json(NetworkCreateResponse { id, warning }),
    )
        .into_response())
}

pub async fn remove(
    State(engine): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    engine.remove_network(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn prune(State(engine): State<AppState>, p: Params) -> ApiResult<impl IntoResponse> {
    let deleted = engine.prune_networks(&p.filters()?).await?;
    Ok(Json(NetworkPruneResponse {
        networks_deleted: Some(deleted),
    }))
}

pub async fn connect(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> ApiResult<StatusCode> {
    let req: NetworkConnectRequest = body(&bytes)?;
    engine
        .connect_container(&id, &req.container, req.endpoint_config)
        .await?;
    Ok(StatusCode::OK)
}

pub async fn disconnect(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> ApiResult<StatusCode> {
    let req: NetworkDisconnectRequest = body(&bytes)?;
    engine
        .disconnect_container(&id, &req.container, req.force.unwrap_or(false))
        .await?;
    Ok(StatusCode::OK)
}

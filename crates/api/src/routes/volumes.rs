//! `/volumes`: create, list, inspect, remove and prune.

use crate::error::{ApiError, ApiResult};
use crate::json::Json;
use crate::query::Params;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bollard_stubs::models::{Volume, VolumeCreateRequest, VolumeListResponse};
use serde::Serialize;

/// dockerd's list reply: `Volumes` is always an array and `Warnings` is `null` when there are
/// none (bollard's model would drop both keys when they are `None`).
#[derive(Serialize)]
struct ListBody {
    #[serde(rename = "Volumes")]
    volumes: Vec<Volume>,
    #[serde(rename = "Warnings")]
    warnings: Option<Vec<String>>,
}

impl From<VolumeListResponse> for ListBody {
    fn from(r: VolumeListResponse) -> Self {
        ListBody {
            volumes: r.volumes.unwrap_or_default(),
            warnings: r.warnings.filter(|w| !w.is_empty()),
        }
    }
}

/// An empty body is a request with every field defaulted (dockerd ≥ 25 reads it so: the name
/// is then generated); anything else must be a VolumeCreateRequest.
fn create_request(bytes: &[u8]) -> ApiResult<VolumeCreateRequest> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(VolumeCreateRequest::default());
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

pub async fn list(State(engine): State<AppState>, p: Params) -> ApiResult<impl IntoResponse> {
    let resp = engine.list_volumes(&p.filters()?).await?;
    Ok(Json(ListBody::from(resp)))
}

pub async fn create(State(engine): State<AppState>, bytes: Bytes) -> ApiResult<Response> {
    let req = create_request(&bytes)?;
    let volume = engine.create_volume(req).await?;
    Ok((StatusCode::CREATED, Json(volume)).into_response())
}

pub async fn inspect(
    State(engine): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<impl IntoResponse> {
    Ok(Json(engine.inspect_volume(&name).await?))
}

pub async fn remove(
    State(engine): State<AppState>,
    Path(name): Path<String>,
    p: Params,
) -> ApiResult<StatusCode> {
    engine.remove_volume(&name, p.bool("force")).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn prune(State(engine): State<AppState>, p: Params) -> ApiResult<impl IntoResponse> {
    Ok(Json(engine.prune_volumes(&p.filters()?).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_body_is_a_default_request() {
        assert_eq!(create_request(b"").unwrap(), VolumeCreateRequest::default());
        assert_eq!(
            create_request(b" \n").unwrap(),
            VolumeCreateRequest::default()
        );
    }

    #[test]
    fn create_body_fields() {
        let r = create_request(
            br#"{"Name":"v","Driver":"local","DriverOpts":{"type":"tmpfs"},"Labels":{"a":"b"}}"#,
        )
        .unwrap();
        assert_eq!(r.name.as_deref(), Some("v"));
        assert_eq!(r.driver.as_deref(), Some("local"));
        assert_eq!(r.driver_opts.unwrap()["type"], "tmpfs");
        assert_eq!(r.labels.unwrap()["a"], "b");
    }

    #[test]
    fn malformed_body_is_400() {
        for bad in [&b"{bad"[..], b"[]", br#"{"Name":3}"#] {
            let e = create_request(bad).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
        }
    }

    #[test]
    fn list_shape_as_dockerd() {
        let body = ListBody::from(VolumeListResponse::default());
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"Volumes":[],"Warnings":null}"#
        );
        let body = ListBody::from(VolumeListResponse {
            volumes: None,
            warnings: Some(vec!["w".into()]),
        });
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"Volumes":[],"Warnings":["w"]}"#
        );
    }
}

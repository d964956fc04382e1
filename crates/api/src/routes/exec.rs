//! `docker exec`: create, start (hijacked like attach), resize, inspect.

use super::containers::copy_frames;
use crate::error::{ApiError, ApiResult};
use crate::json::Json;
use crate::query::Params;
use crate::stream::{frame, MULTIPLEXED, RAW};
use crate::{ApiVersion, AppState};
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use berth_engine::exec::ExecStream;
use bollard_stubs::models::{ExecConfig, ExecStartConfig};
use hyper_util::rt::TokioIo;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

/// Longest wait for the exit code after the output ended, before the stream closes anyway.
const EXIT_RECORD_TIMEOUT: Duration = Duration::from_secs(5);

pub async fn create(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let cfg: ExecConfig = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
    let id = engine.create_exec(&id, cfg)?;
    // dockerd's exec create reply says "Id" (IdResponse's own rename is "ID").
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "Id": id }))).into_response())
}

pub async fn inspect(
    State(engine): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    Ok(Json(engine.inspect_exec(&id)?))
}

pub async fn resize(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<StatusCode> {
    let (h, w) = p.terminal_size()?;
    engine.resize_exec(&id, h, w).await?;
    Ok(StatusCode::OK)
}

fn console_size(v: Option<&[usize]>) -> Option<(u16, u16)> {
    match v {
        Some([h, w]) if *h > 0 && *w > 0 => Some((
            u16::try_from(*h).unwrap_or(u16::MAX),
            u16::try_from(*w).unwrap_or(u16::MAX),
        )),
        _ => None,
    }
}

/// Relays the exec's stream, then waits until its exit code is recorded before closing, so
/// the client's inspect right after EOF sees it.
async fn relay<W: AsyncWrite + Unpin>(
    es: ExecStream,
    client_w: &mut W,
    client_r: Option<Box<dyn AsyncRead + Send + Unpin>>,
) {
    if let Some(msg) = &es.start_error {
        let line = format!("{msg}\r\n");
        let bytes = if es.tty {
            Bytes::from(line)
        } else {
            frame(1, line.as_bytes())
        };
        let _ = client_w.write_all(&bytes).await;
    }
    if let Some(shim) = es.stream {
        let (shim_r, mut shim_w) = shim.into_split();
        let stdin = client_r.map(|mut r| {
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut r, &mut shim_w).await;
                // The client half-closed: the process' stdin closes.
                let _ = shim_w.shutdown().await;
            })
        });
        copy_frames(shim_r, client_w, es.tty).await;
        if let Some(t) = stdin {
            t.abort();
        }
    }
    let _ = tokio::time::timeout(EXIT_RECORD_TIMEOUT, es.exec.wait_done()).await;
    let _ = client_w.shutdown().await;
}

pub async fn start(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    Extension(version): Extension<ApiVersion>,
    mut req: Request,
) -> ApiResult<Response> {
    let upgrade = req.headers().get(header::UPGRADE).is_some();
    let on_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let body = axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let cfg: ExecStartConfig = if body.iter().all(u8::is_ascii_whitespace) {
        ExecStartConfig::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?
    };
    let ex = engine.check_exec_startable(&id)?;
    let size = console_size(cfg.console_size.as_deref());
    if cfg.detach.unwrap_or(false) {
        let es = engine.start_exec(&id, true, size).await?;
        if let Some(msg) = es.start_error {
            return Err(ApiError::bad_request(msg));
        }
        return Ok(StatusCode::OK.into_response());
    }
    let tty = ex.snapshot().tty;
    let ctype = if tty || !version.at_least(1, 42) {
        RAW
    } else {
        MULTIPLEXED
    };
    let Some(on_upgrade) = on_upgrade else {
        // Without an upgrade the output is the streamed response body (no stdin).
        let (mut tx, rx) = tokio::io::duplex(64 * 1024);
        let es = engine.start_exec(&id, false, size).await?;
        tokio::spawn(async move { relay(es, &mut tx, None).await });
        let body = Body::from_stream(tokio_util::io::ReaderStream::new(rx));
        return Ok(([(header::CONTENT_TYPE, ctype)], body).into_response());
    };
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let (client_r, mut client_w) = tokio::io::split(TokioIo::new(upgraded));
        match engine.start_exec(&id, false, size).await {
            Ok(es) => relay(es, &mut client_w, Some(Box::new(client_r))).await,
            Err(e) => {
                let line = format!("{e}\r\n");
                let bytes = if tty {
                    Bytes::from(line)
                } else {
                    frame(1, line.as_bytes())
                };
                let _ = client_w.write_all(&bytes).await;
                let _ = client_w.shutdown().await;
            }
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONTENT_TYPE, ctype)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "tcp")
        .body(Body::empty())
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

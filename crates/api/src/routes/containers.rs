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
use berth_engine::detach_keys::{self, Matcher};
use berth_engine::{AttachTarget, LogOptions, WaitCondition};
use bollard_stubs::models::{ContainerCreateBody, ContainerCreateResponse};
use futures_util::stream;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UnixStream;

pub async fn list(State(engine): State<AppState>, p: Params) -> ApiResult<impl IntoResponse> {
    let limit = p.int("limit")?.filter(|l| *l > 0).map(|l| l as usize);
    let all = p.bool("all") || limit.is_some();
    let mut list = engine.list_containers(all, limit, &p.filters()?)?;
    if p.bool("size") {
        engine.fill_container_sizes(&mut list).await?;
    }
    Ok(Json(list))
}

pub async fn create(State(engine): State<AppState>, p: Params, body: Bytes) -> ApiResult<Response> {
    let req: ContainerCreateBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
    let (id, warnings) = engine.create_container(p.get("name"), req).await?;
    Ok((
        StatusCode::CREATED,
        Json(ContainerCreateResponse { id, warnings }),
    )
        .into_response())
}

pub async fn inspect(
    State(engine): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let resp = engine.inspect_container_live(&id).await?;
    let mut v = serde_json::to_value(&resp)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    add_legacy_network_fields(&mut v);
    Ok(Json(v))
}

/// dockerd before API 1.52 repeats the default bridge endpoint's addresses at the top of
/// `NetworkSettings` (`docker inspect -f '{{.NetworkSettings.IPAddress}}'` reads them).
fn add_legacy_network_fields(v: &mut serde_json::Value) {
    let Some(ns) = v.get_mut("NetworkSettings").and_then(|n| n.as_object_mut()) else {
        return;
    };
    let bridge = ns
        .get("Networks")
        .and_then(|n| n.get("bridge"))
        .cloned()
        .unwrap_or_default();
    let text = |k: &str| bridge.get(k).cloned().unwrap_or_else(|| "".into());
    let num = |k: &str| bridge.get(k).cloned().unwrap_or_else(|| 0.into());
    let legacy = [
        ("Bridge", "".into()),
        ("HairpinMode", false.into()),
        ("LinkLocalIPv6Address", "".into()),
        ("LinkLocalIPv6PrefixLen", 0.into()),
        ("SecondaryIPAddresses", serde_json::Value::Null),
        ("SecondaryIPv6Addresses", serde_json::Value::Null),
        ("EndpointID", text("EndpointID")),
        ("Gateway", text("Gateway")),
        ("GlobalIPv6Address", text("GlobalIPv6Address")),
        ("GlobalIPv6PrefixLen", num("GlobalIPv6PrefixLen")),
        ("IPAddress", text("IPAddress")),
        ("IPPrefixLen", num("IPPrefixLen")),
        ("IPv6Gateway", text("IPv6Gateway")),
        ("MacAddress", text("MacAddress")),
    ];
    for (k, val) in legacy {
        ns.entry(k).or_insert(val);
    }
}

pub async fn start(
    State(engine): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    engine.start_container(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn stop(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<StatusCode> {
    engine
        .stop_container(&id, p.int("t")?, p.get("signal").filter(|s| !s.is_empty()))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn restart(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<StatusCode> {
    engine
        .restart_container(&id, p.int("t")?, p.get("signal").filter(|s| !s.is_empty()))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn kill(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<StatusCode> {
    engine.kill_container(&id, p.get("signal")).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn remove(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<StatusCode> {
    engine
        .remove_container(&id, p.bool("force"), p.bool("v"))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn rename(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<StatusCode> {
    let name = p.get("name").unwrap_or("");
    engine.rename_container(&id, name)?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn resize(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<StatusCode> {
    let (h, w) = p.terminal_size()?;
    engine.resize_container(&id, h, w).await?;
    Ok(StatusCode::OK)
}

/// The status line and headers go out at once (clients start the container only after the
/// wait is registered); the body follows when the condition is met.
pub async fn wait(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<Response> {
    let condition = WaitCondition::parse(p.get("condition").unwrap_or(""))?;
    let handle = engine.find_container(&id)?;
    let body = stream::once(async move {
        let v = match engine.wait_handle(&handle, condition).await {
            Ok(code) => serde_json::json!({"StatusCode": code, "Error": null}),
            Err(e) => serde_json::json!({"StatusCode": -1, "Error": {"Message": e.to_string()}}),
        };
        Ok::<_, std::io::Error>(Bytes::from(format!("{v}\n")))
    });
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(body),
    )
        .into_response())
}

pub async fn logs(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    Extension(version): Extension<ApiVersion>,
    p: Params,
) -> ApiResult<Response> {
    let opts = LogOptions {
        stdout: p.bool("stdout"),
        stderr: p.bool("stderr"),
        follow: p.bool("follow"),
        since: crate::query::parse_timestamp(p.get("since"))?,
        until: crate::query::parse_timestamp(p.get("until"))?,
        tail: match p.get("tail") {
            None | Some("") | Some("all") => None,
            Some(n) => Some(
                n.parse::<i64>()
                    .map(|n| n.max(0) as usize)
                    .map_err(|_| ApiError::bad_request(format!("invalid tail: {n}")))?,
            ),
        },
    };
    if !opts.stdout && !opts.stderr {
        return Err(ApiError::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let timestamps = p.bool("timestamps");
    let (tty, rx) = engine.container_logs(&id, opts)?;
    let body = stream::unfold(rx, move |mut rx| async move {
        let e = rx.recv().await?;
        let mut line = Vec::with_capacity(e.line.len() + 32);
        if timestamps {
            line.extend_from_slice(berth_engine::container::inspect::rfc3339(&e.time).as_bytes());
            line.push(b' ');
        }
        line.extend_from_slice(&e.line);
        let chunk = if tty {
            Bytes::from(line)
        } else {
            frame(e.stream, &line)
        };
        Some((Ok::<_, std::io::Error>(chunk), rx))
    });
    let ctype = if tty || !version.at_least(1, 42) {
        RAW
    } else {
        MULTIPLEXED
    };
    Ok(([(header::CONTENT_TYPE, ctype)], Body::from_stream(body)).into_response())
}

/// Copies the shim's framed output to the client: frames as they are without a TTY, bare
/// payloads with one. Returns when the container's output ends.
async fn copy_output<W: AsyncWrite + Unpin>(
    shim: impl AsyncRead + Unpin,
    mut client: W,
    tty: bool,
) {
    copy_frames(shim, &mut client, tty).await;
    let _ = client.shutdown().await;
}

/// [`copy_output`] without the final shutdown (exec finishes its bookkeeping first).
pub(crate) async fn copy_frames<W: AsyncWrite + Unpin>(
    mut shim: impl AsyncRead + Unpin,
    client: &mut W,
    tty: bool,
) {
    let mut header = [0u8; 8];
    let mut buf = Vec::new();
    loop {
        if shim.read_exact(&mut header).await.is_err() {
            break;
        }
        let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        buf.resize(len, 0);
        if shim.read_exact(&mut buf).await.is_err() {
            break;
        }
        let ok = if tty {
            client.write_all(&buf).await
        } else {
            match client.write_all(&header).await {
                Ok(()) => client.write_all(&buf).await,
                Err(e) => Err(e),
            }
        };
        if ok.is_err() || client.flush().await.is_err() {
            break;
        }
    }
}

/// Copies the client's stdin to the shim until EOF, or until the detach keys are typed
/// (returns true then, without passing an EOF on: the container keeps its stdin).
async fn copy_input(
    mut client: impl AsyncRead + Unpin,
    mut shim: tokio::net::unix::OwnedWriteHalf,
    mut detach: Option<Matcher>,
) -> bool {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = match client.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let (data, detached) = match detach.as_mut() {
            Some(m) => {
                let fed = m.feed(&buf[..n]);
                (std::borrow::Cow::Owned(fed.forward), fed.detached)
            }
            None => (std::borrow::Cow::Borrowed(&buf[..n]), false),
        };
        if !data.is_empty() && shim.write_all(&data).await.is_err() {
            return false;
        }
        if detached {
            return true;
        }
    }
    // The client half-closed: pass the EOF on so the container's stdin closes.
    let _ = shim.shutdown().await;
    false
}

async fn pump<C: AsyncRead + AsyncWrite + Send + 'static>(
    client: C,
    shim: UnixStream,
    tty: bool,
    detach: Option<Matcher>,
) {
    let (client_r, client_w) = tokio::io::split(client);
    let (shim_r, shim_w) = shim.into_split();
    let (detached_tx, detached_rx) = tokio::sync::oneshot::channel::<()>();
    let stdin = tokio::spawn(async move {
        if copy_input(client_r, shim_w, detach).await {
            let _ = detached_tx.send(());
        }
    });
    let mut output = Box::pin(copy_output(shim_r, client_w, tty));
    tokio::select! {
        _ = &mut output => {}
        // Dropping the output copy closes the client's stream: that is the detach, as
        // dockerd ends the hijacked connection and leaves the container running.
        Ok(()) = detached_rx => tracing::debug!("client detached"),
    }
    stdin.abort();
}

pub async fn attach(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    Extension(version): Extension<ApiVersion>,
    p: Params,
    mut req: Request,
) -> ApiResult<Response> {
    let h = engine.find_container(&id)?;
    let tty = h.snapshot().tty();
    let (stdin, stdout, stderr) = (p.bool("stdin"), p.bool("stdout"), p.bool("stderr"));
    // dockerd watches for the detach keys only on TTY streams; elsewhere they are data.
    let detach = if tty {
        Some(Matcher::new(detach_keys::parse(
            p.get("detachKeys").unwrap_or(""),
        )?))
    } else {
        None
    };
    let upgrade = req.headers().get(header::UPGRADE).is_some();
    let target = engine
        .attach_container(&id, stdin && upgrade, stdout, stderr)
        .await?;
    let ctype = if tty || !version.at_least(1, 42) {
        RAW
    } else {
        MULTIPLEXED
    };
    let connect = async move {
        match target {
            AttachTarget::Ready(s) => Some(s),
            AttachTarget::Pending(rx) => rx.await.ok(),
        }
    };
    if !upgrade {
        // Old clients read the output as a plain streamed response body.
        let (tx, rx) = tokio::io::duplex(64 * 1024);
        tokio::spawn(async move {
            if let Some(s) = connect.await {
                copy_output(s, tx, tty).await;
            }
        });
        let body = Body::from_stream(tokio_util::io::ReaderStream::new(rx));
        return Ok(([(header::CONTENT_TYPE, ctype)], body).into_response());
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        if let Some(s) = connect.await {
            pump(TokioIo::new(upgraded), s, tty, detach).await;
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

//! Pull (`POST /images/create?fromImage=`), push (`POST /images/{name}/push`), `POST /auth`
//! and `GET /distribution/{name}/json`. Pull and push resolve everything that can fail as a
//! status (reference, auth, manifest) before the first byte of their progress stream; later
//! failures go in-band as `errorDetail`.

use crate::error::{ApiError, ApiResult};
use crate::json::Json;
use crate::query::Params;
use crate::registry_auth::{login_target, registry_auth, AuthConfig};
use crate::stream::json_line;
use crate::AppState;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_engine::registry::{JsonMessage, ProgressSink, PullRequest, PushRequest};
use berth_image::Reference;
use std::future::Future;

/// Room for progress between a fast transfer and a slow client (progress lines beyond it
/// are dropped, status lines wait).
const STREAM_CAPACITY: usize = 512;

/// Runs `work` on its own task and streams what it reports; its error ends the stream
/// in-band. A client that goes away closes the stream, which cancels the work.
fn progress_response<F>(work: impl FnOnce(ProgressSink) -> F) -> Response
where
    F: Future<Output = berth_engine::Result<()>> + Send + 'static,
{
    let (sink, rx) = ProgressSink::channel(STREAM_CAPACITY);
    let task = work(sink.clone());
    tokio::spawn(async move {
        if let Err(e) = task.await {
            sink.send(JsonMessage::error(e.to_string())).await;
        }
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        let m = rx.recv().await?;
        Some((Ok::<_, std::io::Error>(json_line(&m.to_json())), rx))
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(body),
    )
        .into_response()
}

/// `fromImage` (`busybox`, `busybox:1.36`, `docker.io/library/busybox`, `x@sha256:…`) with
/// `tag` (a tag or a digest) as dockerd combines them; neither means every tag.
pub(super) fn pull_reference(from_image: &str, tag: &str) -> ApiResult<Reference> {
    let r = Reference::parse_normalized(from_image)?;
    let tag = tag.trim();
    if tag.is_empty() {
        return Ok(r);
    }
    if let Ok(d) = tag.parse::<berth_image::Digest>() {
        return Ok(r.with_digest(d));
    }
    Ok(Reference::parse_normalized(&format!(
        "{}:{tag}",
        r.repository()
    ))?)
}

pub(super) async fn pull(
    engine: AppState,
    p: &Params,
    headers: &HeaderMap,
    from_image: &str,
) -> ApiResult<Response> {
    let creds = registry_auth(headers)?;
    let reference = pull_reference(from_image, p.get("tag").unwrap_or(""))?;
    let req = PullRequest {
        reference,
        platform: p
            .get("platform")
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        creds,
    };
    let prepared = engine.prepare_pull(req).await?;
    Ok(progress_response(move |sink| async move {
        engine.run_pull(prepared, &sink).await.map(|_| ())
    }))
}

/// `POST /images/{name}/push?tag=`.
pub(super) async fn push(
    engine: AppState,
    name: &str,
    p: &Params,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let creds = registry_auth(headers)?;
    let mut reference = Reference::parse_normalized(name)?;
    if let Some(tag) = p.get("tag").filter(|t| !t.is_empty()) {
        reference = Reference::parse_normalized(&format!("{}:{tag}", reference.repository()))?;
    }
    let prepared = engine
        .prepare_push(PushRequest { reference, creds })
        .await?;
    Ok(progress_response(move |sink| async move {
        engine.run_push(prepared, &sink).await
    }))
}

/// `POST /auth`.
pub async fn login(State(engine): State<AppState>, body: axum::body::Bytes) -> ApiResult<Response> {
    let cfg: AuthConfig = if body.iter().all(u8::is_ascii_whitespace) {
        AuthConfig::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("invalid authconfig: {e}")))?
    };
    let token = engine
        .login(&login_target(&cfg), &cfg.credentials())
        .await?;
    Ok((
        StatusCode::OK,
        Json(serde_json::json!({
            "IdentityToken": token.unwrap_or_default(),
            "Status": "Login Succeeded",
        })),
    )
        .into_response())
}

/// `GET /distribution/{name}/json` (names have slashes: one wildcard route).
pub async fn distribution(
    State(engine): State<AppState>,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let Some(name) = path.strip_suffix("/json") else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "page not found"));
    };
    let creds = registry_auth(&headers)?;
    Ok(Json(engine.distribution_inspect(name, creds).await?).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "796b7eec664ba9a9335c9517e6200c31a50c22e98282ab030dedab78a7c60c59";

    #[test]
    fn pull_references_in_every_form() {
        let full = |i: &str, t: &str| pull_reference(i, t).unwrap().full();
        assert_eq!(
            full("docker.io/library/busybox", "latest"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(full("busybox", "1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(full("busybox:1.36", ""), "docker.io/library/busybox:1.36");
        // The tag parameter wins over a tag in fromImage.
        assert_eq!(full("busybox:1.36", "2"), "docker.io/library/busybox:2");
        assert_eq!(
            full("127.0.0.1:5000/x/busybox", &format!("sha256:{HEX}")),
            format!("127.0.0.1:5000/x/busybox@sha256:{HEX}")
        );
        assert_eq!(
            full(&format!("busybox@sha256:{HEX}"), ""),
            format!("docker.io/library/busybox@sha256:{HEX}")
        );
        // No tag anywhere: every tag.
        assert_eq!(full("busybox", ""), "docker.io/library/busybox");
        for (i, t) in [("UPPER", ""), ("busybox", "bad tag"), ("a::b", "")] {
            let e = pull_reference(i, t).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{i} {t}");
        }
    }
}

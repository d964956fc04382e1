//! Blob uploads: `POST /v2/<name>/blobs/uploads/` (a session, a monolithic `?digest=` upload
//! or a `?mount=&from=` cross-repository mount), then `PATCH` (chunks, or one streamed body),
//! `PUT ?digest=` (finish), `GET` (progress, for resuming), `DELETE` (cancel).

use std::sync::Arc;

use axum::body::Body;
use axum::body::HttpBody as _;
use axum::extract::Request;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use berth_store::Digest;

use super::{empty, query, query_get, AppState};
use crate::auth::{Action, Grant, Need};
use crate::error::{ApiError, Code};
use crate::names::{parse_digest, valid_name};
use crate::uploads::{self, AppendError, SessionGuard};

fn session_headers(name: &str, s: &SessionGuard) -> Vec<(&'static str, String)> {
    vec![
        ("location", format!("/v2/{name}/blobs/uploads/{}", s.id)),
        // distribution's convention: `0-0` also for an empty session.
        ("range", format!("0-{}", s.size.saturating_sub(1))),
        ("docker-upload-uuid", s.id.clone()),
    ]
}

fn blob_created(name: &str, d: &Digest) -> Response {
    empty(
        StatusCode::CREATED,
        &[
            ("location", format!("/v2/{name}/blobs/{d}")),
            ("docker-content-digest", d.to_string()),
        ],
    )
}

pub(super) async fn start(
    st: &Arc<AppState>,
    name: &str,
    grant: &Grant,
    req: Request,
) -> Result<Response, ApiError> {
    let q = query(req.uri());
    if let Some(mount) = query_get(&q, "mount") {
        let d = parse_digest(mount)?;
        if let Some(from) = query_get(&q, "from") {
            if try_mount(st, name, from, &d, grant).await? {
                return Ok(blob_created(name, &d));
            }
        }
        // Not mountable: the client uploads instead, in the session we start below.
    } else if let Some(digest) = query_get(&q, "digest") {
        let d = parse_digest(digest)?;
        let guard = st.uploads.create(name).await?;
        let (headers, body) = (req.headers().clone(), req.into_body());
        let guard = receive(st, name, guard, &headers, body).await?;
        return complete(st, name, guard, &d).await;
    }
    let guard = st.uploads.create(name).await?;
    Ok(empty(StatusCode::ACCEPTED, &session_headers(name, &guard)))
}

/// Links `d` into `name` when `from` holds it and the client may pull from `from`.
async fn try_mount(
    st: &Arc<AppState>,
    name: &str,
    from: &str,
    d: &Digest,
    grant: &Grant,
) -> Result<bool, ApiError> {
    if !valid_name(from) || !grant.allows(&Need::Repo(from.to_string(), Action::Pull)) {
        return Ok(false);
    }
    let storage = Arc::clone(&st.storage);
    let (name, from, d) = (name.to_string(), from.to_string(), d.clone());
    st.storage
        .db(move |db| {
            let present = db.reader().has_blob(&from, &d)? && storage.content.contains(&d);
            if present {
                db.link_blob(&name, &d)?;
            }
            Ok(present)
        })
        .await
}

pub(super) async fn status(st: &Arc<AppState>, name: &str, id: &str) -> Result<Response, ApiError> {
    let guard = st.uploads.lock(id, name).await?;
    Ok(empty(
        StatusCode::NO_CONTENT,
        &session_headers(name, &guard),
    ))
}

pub(super) async fn patch(
    st: &Arc<AppState>,
    name: &str,
    id: &str,
    req: Request,
) -> Result<Response, ApiError> {
    let guard = st.uploads.lock(id, name).await?;
    let (headers, body) = (req.headers().clone(), req.into_body());
    let guard = receive(st, name, guard, &headers, body).await?;
    Ok(empty(StatusCode::ACCEPTED, &session_headers(name, &guard)))
}

pub(super) async fn put(
    st: &Arc<AppState>,
    name: &str,
    id: &str,
    req: Request,
) -> Result<Response, ApiError> {
    let q = query(req.uri());
    let digest = query_get(&q, "digest").ok_or_else(|| {
        ApiError::new(Code::DigestInvalid).with_message("the digest parameter is missing")
    })?;
    let d = parse_digest(digest)?;
    let guard = st.uploads.lock(id, name).await?;
    let (headers, body) = (req.headers().clone(), req.into_body());
    // The last chunk may come with the PUT.
    let guard = if body.is_end_stream() {
        guard
    } else {
        receive(st, name, guard, &headers, body).await?
    };
    complete(st, name, guard, &d).await
}

pub(super) async fn cancel(st: &Arc<AppState>, name: &str, id: &str) -> Result<Response, ApiError> {
    let guard = st.uploads.lock(id, name).await?;
    st.uploads.remove(guard).await;
    Ok(empty(StatusCode::NO_CONTENT, &[]))
}

/// Verifies and stores the session's bytes as `d`, then links the blob into `name`.
async fn complete(
    st: &Arc<AppState>,
    name: &str,
    guard: SessionGuard,
    d: &Digest,
) -> Result<Response, ApiError> {
    uploads::finish(&st.uploads, &st.storage, guard, d).await?;
    let (name2, d2) = (name.to_string(), d.clone());
    st.storage
        .db(move |db| Ok(db.link_blob(&name2, &d2)?))
        .await?;
    Ok(blob_created(name, d))
}

/// `Content-Range: <start>-<end>` (the spec's form; `bytes ` prefixes and `/total` suffixes
/// tolerated).
fn content_range(headers: &HeaderMap) -> Result<Option<(u64, u64)>, ()> {
    let Some(v) = headers.get(header::CONTENT_RANGE) else {
        return Ok(None);
    };
    let s = v.to_str().map_err(|_| ())?.trim();
    let s = s
        .strip_prefix("bytes=")
        .or_else(|| s.strip_prefix("bytes "))
        .unwrap_or(s);
    let s = s.split('/').next().unwrap_or(s);
    let (a, b) = s.split_once('-').ok_or(())?;
    let start = a.trim().parse::<u64>().map_err(|_| ())?;
    let end = b.trim().parse::<u64>().map_err(|_| ())?;
    Ok(Some((start, end)))
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// Appends a request body to the session, enforcing the chunk's `Content-Range`: a chunk
/// must start where the session ends (else 416 and the session's `Range`).
async fn receive(
    st: &Arc<AppState>,
    name: &str,
    guard: SessionGuard,
    headers: &HeaderMap,
    body: Body,
) -> Result<SessionGuard, ApiError> {
    let range = content_range(headers).map_err(|_| {
        ApiError::new(Code::BlobUploadInvalid)
            .with_status(StatusCode::RANGE_NOT_SATISFIABLE)
            .with_message("malformed Content-Range")
    })?;
    if let Some((start, end)) = range {
        if start != guard.size || end < start {
            let mut e = ApiError::new(Code::BlobUploadInvalid)
                .with_status(StatusCode::RANGE_NOT_SATISFIABLE)
                .with_message(format!(
                    "chunk {start}-{end} does not continue the upload, which has {} bytes",
                    guard.size
                ));
            for (k, v) in session_headers(name, &guard) {
                e = e.with_header(header::HeaderName::from_static(k), &v);
            }
            return Err(e);
        }
        if content_length(headers).is_some_and(|n| n != end - start + 1) {
            return Err(ApiError::new(Code::SizeInvalid).with_message(format!(
                "Content-Length does not match Content-Range {start}-{end}"
            )));
        }
    }
    let (guard, appended) = uploads::append(guard, body, st.body_idle_timeout).await?;
    match appended {
        Ok(n) => {
            if let Some((start, end)) = range {
                if n != end - start + 1 {
                    return Err(ApiError::new(Code::SizeInvalid).with_message(format!(
                        "received {n} bytes for Content-Range {start}-{end}"
                    )));
                }
            }
            Ok(guard)
        }
        // What arrived is kept: the client may ask for the session's progress and resume.
        Err(AppendError::Interrupted(why)) => Err(ApiError::new(Code::BlobUploadInvalid)
            .with_message(format!("upload interrupted: {why}"))),
        Err(AppendError::Io(e)) => Err(ApiError::internal(format!("writing upload: {e}"))),
    }
}

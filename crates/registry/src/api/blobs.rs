//! `GET|HEAD|DELETE /v2/<name>/blobs/<digest>`: streamed from the file in large reads on a
//! blocking thread, with single `Range`s (clients resume downloads with `bytes=N-`).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_store::Digest;
use bytes::Bytes;
use serde_json::json;

use super::{empty, AppState};
use crate::error::{ApiError, Code};
use crate::names::parse_digest;

/// One read from the file, one frame to the socket.
const READ_CHUNK: usize = 1024 * 1024;

fn unknown(d: &Digest) -> ApiError {
    ApiError::new(Code::BlobUnknown).with_detail(json!({ "digest": d.as_str() }))
}

pub(super) async fn get(
    st: &Arc<AppState>,
    name: &str,
    digest: &str,
    headers: &HeaderMap,
    head: bool,
) -> Result<Response, ApiError> {
    let d = parse_digest(digest)?;
    let (name2, d2) = (name.to_string(), d.clone());
    let linked = st
        .storage
        .db(move |db| Ok(db.reader().has_blob(&name2, &d2)?))
        .await?;
    if !linked {
        return Err(unknown(&d));
    }
    let storage = Arc::clone(&st.storage);
    let d3 = d.clone();
    let opened = tokio::task::spawn_blocking(move || -> io::Result<(File, u64)> {
        let f = storage.content.open_blob(&d3).map_err(io::Error::other)?;
        let len = f.metadata()?.len();
        Ok((f, len))
    })
    .await?;
    let Ok((file, size)) = opened else {
        return Err(unknown(&d));
    };
    let range = parse_range(headers.get(header::RANGE), size);
    let (status, start, len) = match range {
        Range::Full => (StatusCode::OK, 0, size),
        Range::Part(start, end) => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
        Range::Unsatisfiable => {
            return Ok(empty(
                StatusCode::RANGE_NOT_SATISFIABLE,
                &[("content-range", format!("bytes */{size}"))],
            ))
        }
    };
    let body = if head || len == 0 {
        Body::empty()
    } else {
        file_body(file, start, len)
    };
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    let mut set = |k: &str, v: String| {
        if let Ok(v) = HeaderValue::from_str(&v) {
            if let Ok(k) = header::HeaderName::try_from(k) {
                h.insert(k, v);
            }
        }
    };
    set("content-length", len.to_string());
    set("content-type", "application/octet-stream".to_string());
    set("docker-content-digest", d.to_string());
    set("etag", format!("\"{d}\""));
    set("accept-ranges", "bytes".to_string());
    set("cache-control", "max-age=31536000".to_string());
    if status == StatusCode::PARTIAL_CONTENT {
        set(
            "content-range",
            format!("bytes {start}-{}/{size}", start + len - 1),
        );
    }
    Ok(resp)
}

/// `len` bytes of `file` from `start`. Each chunk is read by a short blocking job, the next
/// one started as soon as the previous is handed to the socket: reads overlap sends, and no
/// thread waits on a slow client.
fn file_body(file: File, start: u64, len: u64) -> Body {
    struct State {
        next: Option<tokio::task::JoinHandle<(File, io::Result<Bytes>)>>,
        left: u64,
    }
    fn read_next(
        mut file: File,
        want: usize,
        seek: Option<u64>,
    ) -> tokio::task::JoinHandle<(File, io::Result<Bytes>)> {
        tokio::task::spawn_blocking(move || {
            let r = (|| {
                if let Some(pos) = seek {
                    file.seek(SeekFrom::Start(pos))?;
                }
                let mut buf = vec![0u8; want];
                let n = loop {
                    match file.read(&mut buf) {
                        Ok(0) => return Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
                        Ok(n) => break n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                };
                buf.truncate(n);
                Ok(Bytes::from(buf))
            })();
            (file, r)
        })
    }
    let first = read_next(
        file,
        len.min(READ_CHUNK as u64) as usize,
        Some(start).filter(|s| *s > 0),
    );
    let state = State {
        next: Some(first),
        left: len,
    };
    let stream = futures_util::stream::unfold(state, |mut st| async move {
        let job = st.next.take()?;
        let (file, chunk) = match job.await {
            Ok(r) => r,
            Err(e) => return Some((Err(io::Error::other(e)), st)),
        };
        if let Ok(b) = &chunk {
            st.left -= b.len() as u64;
            if st.left > 0 {
                st.next = Some(read_next(
                    file,
                    st.left.min(READ_CHUNK as u64) as usize,
                    None,
                ));
            }
        }
        Some((chunk, st))
    });
    Body::from_stream(stream)
}

#[derive(Debug, PartialEq, Eq)]
enum Range {
    Full,
    /// First and last byte, inclusive.
    Part(u64, u64),
    Unsatisfiable,
}

/// One `bytes=` range; anything else (several ranges, other units, garbage) is ignored and the
/// whole blob served, as RFC 9110 allows.
fn parse_range(h: Option<&HeaderValue>, size: u64) -> Range {
    let Some(spec) = h
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("bytes="))
    else {
        return Range::Full;
    };
    if spec.contains(',') {
        return Range::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Range::Full;
    };
    let num = |s: &str| s.trim().parse::<u64>().ok();
    match (a.trim().is_empty(), num(a), num(b)) {
        // bytes=-N: the last N bytes.
        (true, _, Some(n)) if n > 0 && size > 0 => Range::Part(size.saturating_sub(n), size - 1),
        (true, _, Some(_)) => Range::Unsatisfiable,
        (false, Some(start), _) if start >= size => Range::Unsatisfiable,
        (false, Some(start), None) if b.trim().is_empty() => Range::Part(start, size - 1),
        (false, Some(start), Some(end)) if end >= start => Range::Part(start, end.min(size - 1)),
        _ => Range::Full,
    }
}

pub(super) async fn delete(
    st: &Arc<AppState>,
    name: &str,
    digest: &str,
) -> Result<Response, ApiError> {
    let d = parse_digest(digest)?;
    let (name2, d2) = (name.to_string(), d.clone());
    let existed = st
        .storage
        .db(move |db| Ok(db.unlink_blob(&name2, &d2)?))
        .await?;
    if !existed {
        return Err(unknown(&d));
    }
    Ok(empty(StatusCode::ACCEPTED, &[]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str, size: u64) -> Range {
        parse_range(Some(&HeaderValue::from_str(s).unwrap()), size)
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 10), Range::Full);
        assert_eq!(r("bytes=0-", 10), Range::Part(0, 9));
        assert_eq!(r("bytes=4-", 10), Range::Part(4, 9));
        assert_eq!(r("bytes=4-5", 10), Range::Part(4, 5));
        assert_eq!(r("bytes=4-50", 10), Range::Part(4, 9));
        assert_eq!(r("bytes=-3", 10), Range::Part(7, 9));
        assert_eq!(r("bytes=-30", 10), Range::Part(0, 9));
        assert_eq!(r("bytes=10-", 10), Range::Unsatisfiable);
        assert_eq!(r("bytes=0-", 0), Range::Unsatisfiable);
        assert_eq!(r("bytes=5-4", 10), Range::Full);
        assert_eq!(r("bytes=0-1,3-4", 10), Range::Full);
        assert_eq!(r("items=0-1", 10), Range::Full);
        assert_eq!(r("bytes=x-", 10), Range::Full);
    }
}

//! Turning HTTP answers and failures into `DistributionError`s, and reading bodies with caps.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use reqwest::{Method, Response, StatusCode};
use url::Url;

use crate::auth::parse_challenges;
use crate::error::DistributionError;

/// Error bodies are small JSON documents; a registry sending more is not read further.
pub(crate) const MAX_ERROR_BODY: usize = 64 * 1024;

/// Go's `url.Error` names the operation `Get`, `Head`, … (Docker's messages read
/// `Get "https://host/v2/": …`).
fn op_name(method: &Method) -> String {
    let m = method.as_str();
    let mut out = String::with_capacity(m.len());
    for (i, c) in m.chars().enumerate() {
        out.push(if i == 0 {
            c.to_ascii_uppercase()
        } else {
            c.to_ascii_lowercase()
        });
    }
    out
}

/// A URL as messages show it: without a password or the upload state a query may carry.
pub(crate) fn display_url(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_password(None);
    u.set_query(None);
    u.to_string()
}

/// A failure below HTTP (connect, TLS, a broken or stalled connection).
pub(crate) fn transport_error(method: &Method, url: &Url, e: &reqwest::Error) -> DistributionError {
    let prefix = format!("{} \"{}\"", op_name(method), display_url(url));
    if e.is_timeout() {
        let cause = if e.is_connect() {
            "dial tcp: i/o timeout"
        } else {
            "read: i/o timeout (the registry stopped answering)"
        };
        return DistributionError::Timeout(format!("{prefix}: {cause}"));
    }
    DistributionError::Transport(format!(
        "{prefix}: {}",
        go_style_cause(url, &cause_chain(e))
    ))
}

/// hyper's `client error (Connect): tcp connect error: Connection refused (os error 111)` read
/// as Go's `dial tcp 127.0.0.1:5000: connect: connection refused`.
fn go_style_cause(url: &Url, cause: &str) -> String {
    let cause = cause
        .strip_prefix("client error (Connect): ")
        .unwrap_or(cause);
    let Some(rest) = cause.strip_prefix("tcp connect error: ") else {
        return cause.to_string();
    };
    let rest = match rest.rfind(" (os error ") {
        Some(i) => &rest[..i],
        None => rest,
    };
    let host = url.host_str().unwrap_or_default();
    let port = url.port_or_known_default().unwrap_or_default();
    format!(
        "dial tcp {host}:{port}: connect: {}",
        rest.to_ascii_lowercase()
    )
}

/// The causes under reqwest's own wrapper ("error sending request for url …"), innermost last,
/// each once: `client error (Connect): tcp connect error: Connection refused (os error 111)`.
pub(crate) fn cause_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur = e.source();
    while let Some(err) = cur {
        let s = err.to_string();
        if !s.is_empty() && !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = err.source();
    }
    if parts.is_empty() {
        return e.to_string();
    }
    parts.join(": ")
}

/// Time since the last sign of life of a request: its body handed to the connection, or its
/// start. reqwest's own read timeout runs from the request's start to the answer's headers, so
/// it would cut any upload that takes longer; this one measures stalls only.
pub(crate) struct Progress {
    start: Instant,
    /// Milliseconds after `start` of the last body chunk taken by the connection.
    last_ms: AtomicU64,
    /// The body's producer (a layer being compressed) is working: not the registry's stall.
    producer_busy: AtomicBool,
}

impl Progress {
    pub(crate) fn new() -> Arc<Progress> {
        Arc::new(Progress {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
            producer_busy: AtomicBool::new(false),
        })
    }

    fn touch(&self) {
        let ms = self.start.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn stalled_since(&self) -> Instant {
        if self.producer_busy.load(Ordering::Relaxed) {
            return Instant::now();
        }
        self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }
}

/// A request body stream that reports to `Progress` when the connection takes a chunk.
pub(crate) struct TrackedStream<S> {
    inner: S,
    progress: Arc<Progress>,
}

impl<S> TrackedStream<S> {
    pub(crate) fn new(inner: S, progress: Arc<Progress>) -> Self {
        TrackedStream { inner, progress }
    }
}

impl<S> Stream for TrackedStream<S>
where
    S: Stream<Item = std::io::Result<Bytes>> + Unpin,
{
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Pending => {
                this.progress.producer_busy.store(true, Ordering::Relaxed);
                Poll::Pending
            }
            ready => {
                this.progress.producer_busy.store(false, Ordering::Relaxed);
                this.progress.touch();
                ready
            }
        }
    }
}

/// A replayable body sent in slices, so that `Progress` sees the upload advance.
pub(crate) fn sliced_body(bytes: &Bytes, progress: &Arc<Progress>) -> reqwest::Body {
    const SLICE: usize = 256 * 1024;
    let slices: Vec<std::io::Result<Bytes>> = (0..bytes.len())
        .step_by(SLICE)
        .map(|at| Ok(bytes.slice(at..(at + SLICE).min(bytes.len()))))
        .collect();
    let stream = futures_util::stream::iter(slices);
    reqwest::Body::wrap_stream(TrackedStream::new(stream, progress.clone()))
}

/// Sends a request; a registry that neither takes the body nor answers for `read_timeout` is a
/// `Timeout`.
pub(crate) async fn send(
    rb: reqwest::RequestBuilder,
    method: &Method,
    url: &Url,
    read_timeout: Duration,
    progress: &Arc<Progress>,
) -> Result<Response, DistributionError> {
    let fut = rb.send();
    tokio::pin!(fut);
    loop {
        let deadline = progress.stalled_since() + read_timeout;
        tokio::select! {
            r = &mut fut => return r.map_err(|e| transport_error(method, url, &e)),
            _ = tokio::time::sleep_until(deadline.into()) => {
                if progress.stalled_since() + read_timeout <= Instant::now() {
                    return Err(read_timeout_error(method, url));
                }
            }
        }
    }
}

pub(crate) fn read_timeout_error(method: &Method, url: &Url) -> DistributionError {
    DistributionError::Timeout(format!(
        "{} \"{}\": read: i/o timeout (the registry stopped answering)",
        op_name(method),
        display_url(url)
    ))
}

/// The next chunk of a body, `read_timeout` at most.
pub(crate) async fn read_chunk(
    resp: &mut Response,
    method: &Method,
    url: &Url,
    read_timeout: Duration,
) -> Result<Option<Bytes>, DistributionError> {
    match tokio::time::timeout(read_timeout, resp.chunk()).await {
        Ok(r) => r.map_err(|e| transport_error(method, url, &e)),
        Err(_) => Err(read_timeout_error(method, url)),
    }
}

/// Reads the body of `resp` into memory, refusing more than `max` bytes (checked against
/// `Content-Length` first, then while reading).
pub(crate) async fn read_capped(
    method: &Method,
    url: &Url,
    mut resp: Response,
    max: usize,
    what: &str,
    read_timeout: Duration,
) -> Result<Bytes, DistributionError> {
    if let Some(len) = resp.content_length() {
        if len > max as u64 {
            return Err(too_big(what, max));
        }
    }
    let mut buf = BytesMut::new();
    while let Some(chunk) = read_chunk(&mut resp, method, url, read_timeout).await? {
        if buf.len() + chunk.len() > max {
            return Err(too_big(what, max));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

fn too_big(what: &str, max: usize) -> DistributionError {
    DistributionError::InvalidResponse(format!("{what} exceeds the {max} bytes limit"))
}

/// The first `max` bytes of a body, ignoring what does not fit and read failures (an error
/// body is best effort).
async fn read_prefix(mut resp: Response, max: usize, read_timeout: Duration) -> Bytes {
    let mut buf = BytesMut::new();
    while let Ok(Ok(Some(chunk))) = tokio::time::timeout(read_timeout, resp.chunk()).await {
        let room = max - buf.len();
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if buf.len() >= max {
            break;
        }
    }
    buf.freeze()
}

#[derive(serde::Deserialize)]
struct ErrorsBody {
    #[serde(default)]
    errors: Vec<ErrorEntry>,
    /// Docker Hub's token realm answers `{"details": "incorrect username or password"}`.
    #[serde(default)]
    details: Option<String>,
}

#[derive(serde::Deserialize)]
struct ErrorEntry {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// A registry error from an answer whose status was not the expected one: the first error of
/// the distribution error body, else the bearer challenge's `error` (RFC 6750), else a generic
/// message naming the status.
pub(crate) async fn error_from_response(
    method: &Method,
    url: &Url,
    resp: Response,
    read_timeout: Duration,
) -> DistributionError {
    let status = resp.status();
    let oauth = oauth_error(&resp);
    let body = if *method == Method::HEAD {
        Bytes::new()
    } else {
        read_prefix(resp, MAX_ERROR_BODY, read_timeout).await
    };
    let (mut code, message) = parse_error_body(&body)
        .or(oauth)
        .unwrap_or_else(|| status_only_error(method, url, status));
    // A token realm's `{"details": …}` has no code: Docker shows it as "unauthorized: …".
    if code.is_empty() {
        code = match status {
            StatusCode::UNAUTHORIZED => "UNAUTHORIZED".to_string(),
            StatusCode::FORBIDDEN => "DENIED".to_string(),
            _ => code,
        };
    }
    DistributionError::Registry {
        status: status.as_u16(),
        code,
        message,
    }
}

pub(crate) fn parse_error_body(body: &[u8]) -> Option<(String, String)> {
    let parsed: ErrorsBody = serde_json::from_slice(body).ok()?;
    if let Some(first) = parsed.errors.into_iter().next() {
        let message = if first.message.is_empty() {
            first.code.to_ascii_lowercase().replace('_', " ")
        } else {
            first.message
        };
        return Some((first.code, message));
    }
    parsed
        .details
        .filter(|d| !d.is_empty())
        .map(|d| (String::new(), d))
}

fn oauth_error(resp: &Response) -> Option<(String, String)> {
    let values = resp
        .headers()
        .get_all(reqwest::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok());
    let challenges = parse_challenges(values);
    let bearer = challenges.iter().find(|c| c.scheme == "bearer")?;
    let (code, default) = match bearer.param("error")? {
        "invalid_token" => ("UNAUTHORIZED", "authentication required"),
        "insufficient_scope" => ("DENIED", "requested access to the resource is denied"),
        _ => return None,
    };
    let message = bearer
        .param("error_description")
        .filter(|d| !d.is_empty())
        .unwrap_or(default);
    Some((code.to_string(), message.to_string()))
}

fn status_only_error(method: &Method, url: &Url, status: StatusCode) -> (String, String) {
    match status {
        StatusCode::UNAUTHORIZED => ("UNAUTHORIZED".into(), "authentication required".into()),
        StatusCode::FORBIDDEN => (
            "DENIED".into(),
            "requested access to the resource is denied".into(),
        ),
        _ => (
            String::new(),
            format!(
                "unexpected status from {} request to {}: {}",
                method,
                display_url(url),
                status_text(status)
            ),
        ),
    }
}

/// `401 Unauthorized`, as Go's `resp.Status` reads.
pub(crate) fn status_text(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(r) => format!("{} {r}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

/// Fails unless `resp` has one of `expected` statuses.
pub(crate) async fn expect_status(
    method: &Method,
    url: &Url,
    resp: Response,
    expected: &[StatusCode],
    read_timeout: Duration,
) -> Result<Response, DistributionError> {
    if expected.contains(&resp.status()) {
        return Ok(resp);
    }
    if resp.status().is_success() {
        return Err(DistributionError::InvalidResponse(format!(
            "unexpected status from {method} request to {}: {}",
            display_url(url),
            status_text(resp.status())
        )));
    }
    Err(error_from_response(method, url, resp, read_timeout).await)
}

/// A header's value as text, if present and valid.
pub(crate) fn header_str<'a>(resp: &'a Response, name: &str) -> Option<&'a str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_first_error() {
        let b = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}},{"code":"X","message":"y"}]}"#;
        assert_eq!(
            parse_error_body(b),
            Some(("MANIFEST_UNKNOWN".into(), "manifest unknown".into()))
        );
        assert_eq!(
            parse_error_body(br#"{"errors":[{"code":"NAME_UNKNOWN"}]}"#),
            Some(("NAME_UNKNOWN".into(), "name unknown".into()))
        );
        assert_eq!(
            parse_error_body(br#"{"details":"incorrect username or password"}"#),
            Some((String::new(), "incorrect username or password".into()))
        );
        assert_eq!(parse_error_body(b"<html>"), None);
        assert_eq!(parse_error_body(br#"{"errors":[]}"#), None);
    }

    #[test]
    fn op_names_read_like_go() {
        assert_eq!(op_name(&Method::GET), "Get");
        assert_eq!(op_name(&Method::PATCH), "Patch");
    }

    #[test]
    fn display_url_hides_query_and_password() {
        let u = Url::parse("https://u:p@h:5000/v2/x/blobs/uploads/abc?_state=secret").unwrap();
        assert_eq!(display_url(&u), "https://u@h:5000/v2/x/blobs/uploads/abc");
    }
}

//! A blob download that resumes itself with `Range` requests when the connection breaks.

use std::sync::Arc;
use std::time::Duration;

use berth_store::Digest;
use bytes::Bytes;
use reqwest::header::RANGE;
use reqwest::{Method, Response, StatusCode};
use url::Url;

use crate::client::{Req, Session};
use crate::endpoint::Endpoint;
use crate::error::DistributionError;
use crate::http::{self, error_from_response, read_chunk};

/// How many times a download is resumed before its error is the caller's (Docker's
/// `maxDownloadAttempts` is 5).
const MAX_RESUMES: u32 = 5;

/// A blob download. `next_chunk` hides broken connections: it re-requests the rest with
/// `Range: bytes=<received>-` (a few times, with backoff) and goes on, so the caller sees one
/// uninterrupted byte stream. The caller verifies the digest (its store hashes as it writes).
pub struct BlobDownload {
    /// `Content-Length` of the first answer, or the manifest's size.
    pub total: Option<u64>,
    _private: (),
    session: Arc<Session>,
    endpoint: Arc<Endpoint>,
    url: Url,
    digest: Digest,
    /// The answer being read; None after a break, until the next request.
    resp: Option<Response>,
    /// Bytes handed to the caller.
    received: u64,
    /// Bytes of the current answer already handed out (a registry that ignored `Range`).
    skip: u64,
    resumed: u32,
    done: bool,
}

impl BlobDownload {
    pub(crate) fn new(
        session: Arc<Session>,
        endpoint: Arc<Endpoint>,
        url: Url,
        digest: Digest,
        total: Option<u64>,
        resp: Response,
    ) -> BlobDownload {
        BlobDownload {
            total,
            _private: (),
            session,
            endpoint,
            url,
            digest,
            resp: Some(resp),
            received: 0,
            skip: 0,
            resumed: 0,
            done: false,
        }
    }

    /// The next bytes; `Ok(None)` at the end.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, DistributionError> {
        loop {
            if self.done {
                return Ok(None);
            }
            let rt = self.session.read_timeout();
            let Some(resp) = self.resp.as_mut() else {
                if let Err(e) = self.reopen().await {
                    self.broken(e).await?;
                }
                continue;
            };
            match read_chunk(resp, &Method::GET, &self.url, rt).await {
                Ok(Some(chunk)) => {
                    if let Some(chunk) = self.deliver(chunk)? {
                        return Ok(Some(chunk));
                    }
                }
                Ok(None) => match self.total {
                    Some(total) if self.received < total => {
                        let e = DistributionError::Transport(format!(
                            "Get \"{}\": connection closed after {} of {total} bytes",
                            http::display_url(&self.url),
                            self.received
                        ));
                        self.broken(e).await?;
                    }
                    _ => {
                        self.done = true;
                        self.resp = None;
                        return Ok(None);
                    }
                },
                Err(e) => self.broken(e).await?,
            }
        }
    }

    /// How many retries (resumed requests) the download needed so far.
    pub fn resumed(&self) -> u32 {
        self.resumed
    }

    /// What of `chunk` the caller gets: nothing of what a restarted answer repeats, and never
    /// past the known size.
    fn deliver(&mut self, mut chunk: Bytes) -> Result<Option<Bytes>, DistributionError> {
        if self.skip > 0 {
            let n = (self.skip).min(chunk.len() as u64) as usize;
            self.skip -= n as u64;
            chunk = chunk.slice(n..);
        }
        if chunk.is_empty() {
            return Ok(None);
        }
        if let Some(total) = self.total {
            if self.received + chunk.len() as u64 > total {
                return Err(DistributionError::InvalidResponse(format!(
                    "blob {}: the registry sent more than {total} bytes",
                    self.digest
                )));
            }
        }
        self.received += chunk.len() as u64;
        Ok(Some(chunk))
    }

    /// After a break: errors that a new request may cure are retried (after a pause) until the
    /// resumes run out; others are final.
    async fn broken(&mut self, e: DistributionError) -> Result<(), DistributionError> {
        self.resp = None;
        let retryable = match &e {
            DistributionError::Transport(_) | DistributionError::Timeout(_) => true,
            DistributionError::Registry { status, .. } => *status >= 500,
            _ => false,
        };
        if !retryable || self.resumed >= MAX_RESUMES {
            return Err(e);
        }
        self.resumed += 1;
        tracing::info!(blob = %self.digest, received = self.received, attempt = self.resumed, error = %e, "blob download broke; resuming");
        tokio::time::sleep(backoff(self.resumed)).await;
        Ok(())
    }

    /// Asks for the rest: 206 from where we are, or 200 from the start (then skipped).
    async fn reopen(&mut self) -> Result<(), DistributionError> {
        let mut req = Req::new(Method::GET, self.url.clone());
        if self.received > 0 {
            let range = format!("bytes={}-", self.received);
            if let Ok(v) = reqwest::header::HeaderValue::from_str(&range) {
                req.headers.insert(RANGE, v);
            }
        }
        let resp = self.session.send(&self.endpoint, &req).await?;
        match resp.status() {
            StatusCode::PARTIAL_CONTENT => {
                let start = http::header_str(&resp, "content-range").and_then(range_start);
                if start != Some(self.received) {
                    return Err(DistributionError::InvalidResponse(format!(
                        "blob {}: asked for bytes from {}, got Content-Range {:?}",
                        self.digest,
                        self.received,
                        http::header_str(&resp, "content-range")
                    )));
                }
                self.skip = 0;
            }
            StatusCode::OK => self.skip = self.received,
            _ => {
                let rt = self.session.read_timeout();
                return Err(error_from_response(&Method::GET, &self.url, resp, rt).await);
            }
        }
        self.resp = Some(resp);
        Ok(())
    }
}

/// `bytes 100-199/200` → 100.
fn range_start(v: &str) -> Option<u64> {
    let rest = v.trim().strip_prefix("bytes")?.trim_start();
    rest.split('-').next()?.trim().parse().ok()
}

/// 0.2 s, 0.4 s, 0.8 s, 1.6 s, then 2 s.
fn backoff(attempt: u32) -> Duration {
    let ms = 200u64.saturating_mul(1 << attempt.saturating_sub(1).min(10));
    Duration::from_millis(ms.min(2000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_start() {
        assert_eq!(range_start("bytes 100-199/200"), Some(100));
        assert_eq!(range_start("bytes 0-0/*"), Some(0));
        assert_eq!(range_start("items 1-2/3"), None);
        assert_eq!(range_start("bytes x-1/2"), None);
    }

    #[test]
    fn backoff_grows_to_two_seconds() {
        let s: Vec<u64> = (1..=6).map(|a| backoff(a).as_millis() as u64).collect();
        assert_eq!(s, vec![200, 400, 800, 1600, 2000, 2000]);
    }
}

//! The HTTP API: one router; `/v2/<name>/…` paths are parsed here (names contain slashes),
//! the name checked against the grammar, the request authorized, then handed to its handler.

mod blobs;
mod lists;
mod manifests;
mod token;
mod uploads;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;

use crate::auth::{Action, Auth, Grant, Need, TokenService};
use crate::error::{ApiError, Code, ErrorCodeTag};
use crate::names::check_name;
use crate::storage::Storage;
use crate::uploads::Uploads;

pub(crate) struct AppState {
    pub storage: Arc<Storage>,
    pub uploads: Uploads,
    pub auth: Auth,
    pub tokens: Option<TokenService>,
    /// `http` or `https`, for the token realm.
    pub scheme: &'static str,
    pub addr: SocketAddr,
    /// How long an upload body may stall before the request fails.
    pub body_idle_timeout: Duration,
}

type St = State<Arc<AppState>>;

pub(crate) fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v2", get(base))
        .route("/v2/", get(base))
        .route("/v2/_catalog", get(lists::catalog))
        .route("/token", get(token::get_token).post(token::post_token))
        .route("/v2/{*rest}", any(dispatch))
        .fallback(not_found)
        .layer(middleware::from_fn(common_headers_and_log))
        .with_state(state)
}

/// `Docker-Distribution-API-Version` on every answer (clients detect the API by it), and the
/// one log line per request.
async fn common_headers_and_log(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let started = Instant::now();
    let mut resp = next.run(req).await;
    resp.headers_mut().insert(
        HeaderName::from_static("docker-distribution-api-version"),
        HeaderValue::from_static("registry/2.0"),
    );
    let status = resp.status().as_u16();
    let ms = started.elapsed().as_millis();
    let code = resp
        .extensions()
        .get::<ErrorCodeTag>()
        .map(|c| c.0.as_str());
    if resp.status().is_server_error() {
        tracing::warn!(%method, path, status, ms, code, "request failed");
    } else {
        tracing::debug!(%method, path, status, ms, code, "request");
    }
    resp
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "404 page not found\n").into_response()
}

async fn base(State(st): St, uri: Uri, headers: HeaderMap) -> Result<Response, ApiError> {
    st.authorize(&uri, &headers, &Need::Base).await?;
    Ok((
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        "{}",
    )
        .into_response())
}

/// What a `/v2/<name>/…` path addresses.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    Manifest(String),
    Blob(String),
    UploadStart,
    Upload(String),
    Tags,
    Referrers(String),
}

/// Splits `<name>/<target>` (the part after `/v2/`) by the shape of its tail; the name is
/// everything before and is validated by the caller. Only the last segment (a reference, a
/// digest or an upload id) is percent-decoded: a name never needs escapes.
fn parse_target(rest: &str) -> Option<(&str, Target)> {
    let seg: Vec<&str> = rest.split('/').collect();
    let n = seg.len();
    let last = || {
        percent_encoding::percent_decode_str(seg[n - 1])
            .decode_utf8()
            .ok()
            .map(|s| s.into_owned())
    };
    let name_before = |k: usize| -> Option<&str> {
        // The name is the first n-k segments joined back, i.e. a prefix of `rest`.
        let len: usize = seg[..n - k].iter().map(|s| s.len() + 1).sum::<usize>();
        (n > k).then(|| &rest[..len.saturating_sub(1)])
    };
    if n >= 3 && seg[n - 3] == "blobs" && seg[n - 2] == "uploads" {
        let name = name_before(3)?;
        return Some(if seg[n - 1].is_empty() {
            (name, Target::UploadStart)
        } else {
            (name, Target::Upload(last()?))
        });
    }
    if n >= 3 && seg[n - 2] == "blobs" && seg[n - 1] == "uploads" {
        return Some((name_before(2)?, Target::UploadStart));
    }
    if n >= 3 && seg[n - 2] == "tags" && seg[n - 1] == "list" {
        return Some((name_before(2)?, Target::Tags));
    }
    if n >= 2 && !seg[n - 1].is_empty() {
        let name = name_before(2)?;
        return match seg[n - 2] {
            "manifests" => Some((name, Target::Manifest(last()?))),
            "blobs" => Some((name, Target::Blob(last()?))),
            "referrers" => Some((name, Target::Referrers(last()?))),
            _ => None,
        };
    }
    None
}

async fn dispatch(State(st): St, req: Request) -> Response {
    match route(st, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn route(st: Arc<AppState>, req: Request) -> Result<Response, ApiError> {
    let uri = req.uri().clone();
    let Some(rest) = uri.path().strip_prefix("/v2/") else {
        return Ok(not_found().await);
    };
    let Some((name, target)) = parse_target(rest) else {
        return Ok(not_found().await);
    };
    // Checked before anything else: a name goes into challenges, the DB and Location headers.
    check_name(name)?;
    let name = name.to_string();
    let method = req.method().clone();
    let action = match (&target, &method) {
        (_, &Method::GET | &Method::HEAD) if !matches!(target, Target::Upload(_)) => Action::Pull,
        (Target::Manifest(_) | Target::Blob(_), &Method::DELETE) => Action::Delete,
        _ => Action::Push,
    };
    let grant = st
        .authorize(&uri, req.headers(), &Need::Repo(name.clone(), action))
        .await?;
    let head = method == Method::HEAD;
    match (target, method) {
        (Target::Manifest(r), Method::GET | Method::HEAD) => {
            manifests::get(&st, &name, &r, head).await
        }
        (Target::Manifest(r), Method::PUT) => manifests::put(&st, &name, &r, req).await,
        (Target::Manifest(r), Method::DELETE) => manifests::delete(&st, &name, &r).await,
        (Target::Blob(d), Method::GET | Method::HEAD) => {
            blobs::get(&st, &name, &d, req.headers(), head).await
        }
        (Target::Blob(d), Method::DELETE) => blobs::delete(&st, &name, &d).await,
        (Target::UploadStart, Method::POST) => uploads::start(&st, &name, &grant, req).await,
        (Target::Upload(id), Method::GET) => uploads::status(&st, &name, &id).await,
        (Target::Upload(id), Method::PATCH) => uploads::patch(&st, &name, &id, req).await,
        (Target::Upload(id), Method::PUT) => uploads::put(&st, &name, &id, req).await,
        (Target::Upload(id), Method::DELETE) => uploads::cancel(&st, &name, &id).await,
        (Target::Tags, Method::GET) => lists::tags(&st, &name, &uri).await,
        (Target::Referrers(d), Method::GET) => lists::referrers(&st, &name, &d, &uri).await,
        _ => Err(ApiError::new(Code::Unsupported)),
    }
}

impl AppState {
    async fn authorize(
        &self,
        uri: &Uri,
        headers: &HeaderMap,
        need: &Need,
    ) -> Result<Grant, ApiError> {
        let realm = format!("{}://{}/token", self.scheme, self.host(uri, headers));
        self.auth.authorize(headers, need, &realm).await
    }

    /// The host clients reached us by (for the token realm), when it is a plain host[:port];
    /// otherwise the listening address.
    fn host(&self, uri: &Uri, headers: &HeaderMap) -> String {
        let sane = |h: &str| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        };
        uri.authority()
            .map(|a| a.as_str().to_string())
            .or_else(|| {
                headers
                    .get(header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .map(str::to_string)
            })
            .filter(|h| sane(h))
            .unwrap_or_else(|| self.addr.to_string())
    }
}

/// The query's pairs, decoded.
fn query(uri: &Uri) -> Vec<(String, String)> {
    url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

fn query_get<'a>(q: &'a [(String, String)], key: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// An answer without a body (`Content-Length: 0`) and the given headers. Header values are
/// built from validated names, digests and numbers.
fn empty(status: StatusCode, headers: &[(&str, String)]) -> Response {
    let mut resp = (status, Body::empty()).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (HeaderName::try_from(*k), HeaderValue::from_str(v)) {
            h.insert(k, v);
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let d = "sha256:aa";
        assert_eq!(
            parse_target("a/b/manifests/latest"),
            Some(("a/b", Target::Manifest("latest".into())))
        );
        assert_eq!(
            parse_target(&format!("a/blobs/{d}")),
            Some(("a", Target::Blob(d.into())))
        );
        assert_eq!(
            parse_target("a/blobs/sha256%3Aaa"),
            Some(("a", Target::Blob(d.into())))
        );
        assert_eq!(
            parse_target("x/y/blobs/uploads/"),
            Some(("x/y", Target::UploadStart))
        );
        assert_eq!(
            parse_target("x/blobs/uploads"),
            Some(("x", Target::UploadStart))
        );
        assert_eq!(
            parse_target("x/blobs/uploads/u-1"),
            Some(("x", Target::Upload("u-1".into())))
        );
        assert_eq!(parse_target("x/tags/list"), Some(("x", Target::Tags)));
        assert_eq!(
            parse_target("x/manifests/tags/list"),
            Some(("x/manifests", Target::Tags))
        );
        assert_eq!(
            parse_target("x/referrers/d"),
            Some(("x", Target::Referrers("d".into())))
        );
        assert_eq!(
            parse_target("blobs/uploads/manifests/v"),
            Some(("blobs/uploads", Target::Manifest("v".into())))
        );
        assert_eq!(parse_target("manifests/v"), None);
        assert_eq!(parse_target("x/other/v"), None);
        assert_eq!(parse_target("x/manifests/"), None);
        assert_eq!(
            parse_target("../../etc/manifests/v"),
            Some(("../../etc", Target::Manifest("v".into())))
        );
    }
}

//! The Docker Engine API over HTTP: routes onto `berth-engine` calls. Versioned (`/v1.NN/…`)
//! and unversioned paths reach the same handlers; every response carries dockerd's headers.

pub mod error;
mod json;
pub mod query;
pub mod registry_auth;
mod routes;
mod stream;

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use berth_engine::system::{API_VERSION, ENGINE_VERSION, MIN_API_VERSION};
use berth_engine::Engine;
use error::ApiError;
use std::future::Future;
use std::sync::Arc;
use tokio::net::UnixListener;

pub type AppState = Arc<Engine>;

/// The API version a request asked for (or the server's own when it named none).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct ApiVersion(pub u32, pub u32);

impl ApiVersion {
    fn parse(s: &str) -> Option<Self> {
        let (a, b) = s.split_once('.')?;
        Some(ApiVersion(a.parse().ok()?, b.parse().ok()?))
    }
    pub fn at_least(&self, major: u32, minor: u32) -> bool {
        *self >= ApiVersion(major, minor)
    }
}

fn add_headers(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert("Api-Version", HeaderValue::from_static(API_VERSION));
    h.insert("Ostype", HeaderValue::from_static("linux"));
    if let Ok(v) = HeaderValue::from_str(&format!("Berth/{ENGINE_VERSION} (linux)")) {
        h.insert("Server", v);
    }
}

/// Strips a `/v1.NN` prefix, rejects versions outside what we serve, and records the version.
async fn versioning(mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let mut version = ApiVersion::parse(API_VERSION).unwrap_or(ApiVersion(1, 47));
    if let Some(rest) = path.strip_prefix("/v") {
        let (ver, tail) = rest
            .split_once('/')
            .map(|(v, t)| (v, format!("/{t}")))
            .unwrap_or((rest, "/".into()));
        if let Some(v) = ApiVersion::parse(ver) {
            let max = ApiVersion::parse(API_VERSION).unwrap_or(version);
            let min = ApiVersion::parse(MIN_API_VERSION).unwrap_or(ApiVersion(1, 24));
            let msg = if v > max {
                Some(format!("client version {ver} is too new. Maximum supported API version is {API_VERSION}"))
            } else if v < min {
                Some(format!("client version {ver} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"))
            } else {
                None
            };
            if let Some(msg) = msg {
                let mut resp = ApiError::bad_request(msg).into_response();
                add_headers(&mut resp);
                return resp;
            }
            version = v;
            let pq = match req.uri().query() {
                Some(q) => format!("{tail}?{q}"),
                None => tail,
            };
            let mut parts = req.uri().clone().into_parts();
            parts.path_and_query = pq.parse().ok();
            if let Ok(uri) = axum::http::Uri::from_parts(parts) {
                *req.uri_mut() = uri;
            }
        }
    }
    req.extensions_mut().insert(version);
    let method = req.method().clone();
    let uri = req.uri().clone();
    let mut resp = if method == axum::http::Method::OPTIONS {
        StatusCode::OK.into_response()
    } else {
        next.run(req).await
    };
    tracing::debug!(%method, %uri, status = %resp.status(), "request");
    add_headers(&mut resp);
    resp
}

pub fn router(engine: Arc<Engine>) -> Router {
    let inner = routes::routes()
        .with_state(engine)
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "page not found") });
    Router::new()
        .fallback_service(inner)
        .layer(axum::middleware::from_fn(versioning))
}

/// Serves until `shutdown` resolves. Hijacked streams (attach) keep running on their own tasks.
pub async fn serve(
    engine: Arc<Engine>,
    listener: UnixListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(engine))
        .with_graceful_shutdown(shutdown)
        .await
}

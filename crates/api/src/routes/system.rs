use crate::json::Json;
use crate::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::IntoResponse;

fn ping_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in [
        ("Builder-Version", "1"),
        ("Docker-Experimental", "false"),
        ("Swarm", "inactive"),
        ("Cache-Control", "no-cache, no-store, must-revalidate"),
        ("Pragma", "no-cache"),
        ("Content-Type", "text/plain; charset=utf-8"),
    ] {
        if let Ok(v) = v.parse() {
            h.insert(k, v);
        }
    }
    h
}

pub async fn ping() -> impl IntoResponse {
    (ping_headers(), "OK")
}

pub async fn ping_head() -> impl IntoResponse {
    let mut h = ping_headers();
    h.insert("Content-Length", axum::http::HeaderValue::from_static("0"));
    h
}

pub async fn version(State(engine): State<AppState>) -> impl IntoResponse {
    Json(engine.version())
}

pub async fn info(State(engine): State<AppState>) -> impl IntoResponse {
    Json(engine.info())
}

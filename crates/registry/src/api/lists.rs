//! Listings: tags (`GET /v2/<name>/tags/list?n=&last=`), the catalog (`GET /v2/_catalog`) with
//! `Link: <…>; rel="next"` pagination, and the referrers API.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{query, query_get, AppState, St};
use crate::auth::Need;
use crate::error::{ApiError, Code};
use crate::manifest::{ReferrerDescriptor, OCI_INDEX};
use crate::names::{check_name, parse_digest};

/// The most entries one page holds, whatever `n` asks (more come through `Link`).
const PAGE_MAX: usize = 1000;

struct Page {
    n: Option<usize>,
    last: Option<String>,
}

fn page(uri: &Uri) -> Result<Page, ApiError> {
    let q = query(uri);
    let n = match query_get(&q, "n") {
        None | Some("") => None,
        Some(s) => Some(s.parse::<usize>().map_err(|_| {
            ApiError::new(Code::PaginationNumberInvalid).with_detail(json!({ "n": s }))
        })?),
    };
    Ok(Page {
        n,
        last: query_get(&q, "last").map(str::to_string),
    })
}

/// Fetches one page through `fetch(last, limit)`: returns the entries and the `Link` header
/// for the next page when there is one.
fn paginate(
    p: &Page,
    default_limit: usize,
    path: &str,
    fetch: impl FnOnce(Option<&str>, usize) -> Result<Vec<String>, ApiError>,
) -> Result<(Vec<String>, Option<String>), ApiError> {
    let limit = p.n.unwrap_or(default_limit).min(default_limit);
    if limit == 0 {
        return Ok((Vec::new(), None));
    }
    let mut items = fetch(p.last.as_deref(), limit.saturating_add(1))?;
    if items.len() <= limit {
        return Ok((items, None));
    }
    items.truncate(limit);
    let link = items.last().map(|last| {
        let last: String = url::form_urlencoded::byte_serialize(last.as_bytes()).collect();
        format!("<{path}?last={last}&n={limit}>; rel=\"next\"")
    });
    Ok((items, link))
}

fn json_page(body: serde_json::Value, link: Option<String>) -> Response {
    let mut resp = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body.to_string(),
    )
        .into_response();
    if let Some(v) = link.and_then(|l| HeaderValue::from_str(&l).ok()) {
        resp.headers_mut().insert(header::LINK, v);
    }
    resp
}

pub(super) async fn tags(st: &Arc<AppState>, name: &str, uri: &Uri) -> Result<Response, ApiError> {
    let p = page(uri)?;
    let name2 = name.to_string();
    let path = format!("/v2/{name}/tags/list");
    let (tags, link) = st
        .storage
        .db(move |db| {
            let r = db.reader();
            if !r.repo_exists(&name2)? {
                return Err(ApiError::new(Code::NameUnknown).with_detail(json!({ "name": name2 })));
            }
            // Without `n` the whole list (the spec's default), in pages of at most usize::MAX.
            let default = if p.n.is_some() { PAGE_MAX } else { usize::MAX };
            paginate(&p, default, &path, |last, limit| {
                Ok(r.tags(&name2, last, limit)?)
            })
        })
        .await?;
    Ok(json_page(json!({ "name": name, "tags": tags }), link))
}

pub(super) async fn catalog(
    State(st): St,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    st.authorize(&uri, &headers, &Need::Catalog).await?;
    let p = page(&uri)?;
    if let Some(last) = &p.last {
        if !last.is_empty() {
            check_name(last)?;
        }
    }
    let (repos, link) = st
        .storage
        .db(move |db| {
            let r = db.reader();
            paginate(&p, PAGE_MAX, "/v2/_catalog", |last, limit| {
                Ok(r.repositories(last, limit)?)
            })
        })
        .await?;
    Ok(json_page(json!({ "repositories": repos }), link))
}

pub(super) async fn referrers(
    st: &Arc<AppState>,
    name: &str,
    digest: &str,
    uri: &Uri,
) -> Result<Response, ApiError> {
    let d = parse_digest(digest)?;
    let q = query(uri);
    let filter = query_get(&q, "artifactType").map(str::to_string);
    let name2 = name.to_string();
    let rows = st
        .storage
        .db(move |db| Ok(db.reader().referrers(&name2, &d)?))
        .await?;
    let manifests: Vec<ReferrerDescriptor> = rows
        .into_iter()
        .filter(|r| filter.is_none() || r.artifact_type == filter)
        .map(|r| ReferrerDescriptor {
            media_type: r.media_type,
            digest: r.digest.to_string(),
            size: r.size,
            artifact_type: r.artifact_type,
            annotations: r.annotations.and_then(|a| serde_json::from_str(&a).ok()),
        })
        .collect();
    let body = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": manifests,
    });
    let mut resp = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, OCI_INDEX)],
        body.to_string(),
    )
        .into_response();
    if filter.is_some() {
        resp.headers_mut().insert(
            "oci-filters-applied",
            HeaderValue::from_static("artifactType"),
        );
    }
    Ok(resp)
}

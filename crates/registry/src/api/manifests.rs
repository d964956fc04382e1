//! `GET|HEAD|PUT|DELETE /v2/<name>/manifests/<reference>`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_store::Digest;
use futures_util::StreamExt;
use serde_json::json;

use super::{empty, AppState};
use crate::db::{ManifestRow, Reader};
use crate::error::{ApiError, Code};
use crate::manifest::{self, Manifest, MAX_MANIFEST_BYTES};
use crate::names::Reference;

fn unknown(reference: &Reference) -> ApiError {
    let detail = match reference {
        Reference::Tag(t) => json!({ "Tag": t }),
        Reference::Digest(d) => json!({ "Digest": d.as_str() }),
    };
    ApiError::new(Code::ManifestUnknown).with_detail(detail)
}

pub(super) async fn get(
    st: &Arc<AppState>,
    name: &str,
    reference: &str,
    head: bool,
) -> Result<Response, ApiError> {
    let reference = Reference::parse(reference)?;
    let (name2, ref2) = (name.to_string(), reference.clone());
    let row = st
        .storage
        .db(move |db| {
            let r = db.reader();
            let digest = match &ref2 {
                Reference::Tag(t) => r.tag(&name2, t)?,
                Reference::Digest(d) => Some(d.clone()),
            };
            match digest {
                Some(d) => Ok(r.manifest(&name2, &d)?),
                None => Ok(None),
            }
        })
        .await?
        .ok_or_else(|| unknown(&reference))?;
    let body = if head {
        Body::empty()
    } else {
        let storage = Arc::clone(&st.storage);
        let d = row.digest.clone();
        let bytes = tokio::task::spawn_blocking(move || storage.content.read(&d))
            .await?
            .map_err(|_| unknown(&reference))?;
        Body::from(bytes)
    };
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    for (k, v) in [
        (header::CONTENT_TYPE, row.media_type.as_str()),
        (header::CONTENT_LENGTH, &row.size.to_string()),
        (header::ETAG, &format!("\"{}\"", row.digest)),
    ] {
        if let Ok(v) = v.parse() {
            h.insert(k, v);
        }
    }
    if let Ok(v) = row.digest.as_str().parse() {
        h.insert("docker-content-digest", v);
    }
    Ok(resp)
}

pub(super) async fn put(
    st: &Arc<AppState>,
    name: &str,
    reference: &str,
    req: Request,
) -> Result<Response, ApiError> {
    let reference = Reference::parse(reference)?;
    let too_large = || {
        ApiError::new(Code::SizeInvalid)
            .with_status(StatusCode::PAYLOAD_TOO_LARGE)
            .with_message(format!("manifest exceeds {MAX_MANIFEST_BYTES} bytes"))
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(n) = declared.filter(|&n| n > MAX_MANIFEST_BYTES as u64) {
        // Answering while the client still sends makes it see a broken pipe rather than the
        // 413: read (and drop) a body that is only somewhat too large; cut a huge one off.
        if n <= 4 * MAX_MANIFEST_BYTES as u64 {
            let mut body = req.into_body().into_data_stream();
            while let Some(Ok(_)) = body.next().await {}
        }
        return Err(too_large());
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = axum::body::to_bytes(req.into_body(), MAX_MANIFEST_BYTES)
        .await
        .map_err(|e| {
            if std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
            {
                too_large()
            } else {
                ApiError::new(Code::ManifestInvalid).with_message(format!("reading manifest: {e}"))
            }
        })?;
    let digest = Digest::from_sha256_bytes(&bytes);
    if let Reference::Digest(d) = &reference {
        if *d != digest {
            return Err(ApiError::new(Code::DigestInvalid)
                .with_message(format!("manifest digest is {digest}, not {d}")));
        }
    }
    let m = manifest::parse(&bytes, content_type.as_deref())?;
    let row = ManifestRow {
        digest: digest.clone(),
        media_type: m.media_type.clone(),
        size: bytes.len() as u64,
        subject: m.subject.clone(),
        artifact_type: m.artifact_type.clone(),
        annotations: m
            .annotations
            .as_ref()
            .and_then(|a| serde_json::to_string(a).ok()),
    };
    let tag = match &reference {
        Reference::Tag(t) => Some(t.clone()),
        Reference::Digest(_) => None,
    };
    let subject = m.subject.clone();
    let storage = Arc::clone(&st.storage);
    let name2 = name.to_string();
    let m = Arc::new(m);
    // Refused content never reaches the store: check, store the bytes, then insert the row
    // with the same check inside the transaction (a delete may have run in between).
    let m1 = Arc::clone(&m);
    let s1 = Arc::clone(&storage);
    storage
        .db(move |db| check_references(&s1, db.reader(), &name2, &m1))
        .await?;
    let s2 = Arc::clone(&storage);
    tokio::task::spawn_blocking(move || s2.content.put_bytes(&bytes)).await??;
    let name3 = name.to_string();
    let s3 = Arc::clone(&storage);
    storage
        .db(move |db| {
            db.put_manifest(&name3, &row, tag.as_deref(), |r| {
                check_references(&s3, r, &name3, &m)
            })
        })
        .await?;
    let mut headers = vec![
        ("location", format!("/v2/{name}/manifests/{digest}")),
        ("docker-content-digest", digest.to_string()),
    ];
    // The referrers API now lists it: tell the client it need not maintain a referrers tag.
    if let Some(s) = subject {
        headers.push(("oci-subject", s.to_string()));
    }
    Ok(empty(StatusCode::CREATED, &headers))
}

/// A manifest may only name content its repository holds: blobs (`MANIFEST_BLOB_UNKNOWN`)
/// and, for an index, manifests (`MANIFEST_UNKNOWN`).
fn check_references(
    storage: &crate::storage::Storage,
    r: Reader<'_>,
    name: &str,
    m: &Manifest,
) -> Result<(), ApiError> {
    for b in &m.blobs {
        if !(r.has_blob(name, b)? && storage.content.contains(b)) {
            return Err(ApiError::new(Code::ManifestBlobUnknown)
                .with_message(format!("blob unknown to registry: {b}"))
                .with_detail(json!({ "digest": b.as_str() })));
        }
    }
    for c in &m.children {
        if r.manifest(name, c)?.is_none() {
            return Err(ApiError::new(Code::ManifestUnknown)
                .with_message(format!("manifest unknown to registry: {c}"))
                .with_detail(json!({ "digest": c.as_str() })));
        }
    }
    Ok(())
}

pub(super) async fn delete(
    st: &Arc<AppState>,
    name: &str,
    reference: &str,
) -> Result<Response, ApiError> {
    let reference = Reference::parse(reference)?;
    let (name2, ref2) = (name.to_string(), reference.clone());
    let existed = st
        .storage
        .db(move |db| match &ref2 {
            Reference::Tag(t) => Ok(db.delete_tag(&name2, t)?),
            Reference::Digest(d) => Ok(db.delete_manifest(&name2, d)?),
        })
        .await?;
    if !existed {
        return Err(unknown(&reference));
    }
    Ok(empty(StatusCode::ACCEPTED, &[]))
}

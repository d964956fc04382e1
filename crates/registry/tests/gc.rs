//! `berth registry gc`: a dry run and a real one, indexes followed to the manifests (and their
//! blobs) they name even when those manifests were deleted, the lock that keeps gc away from a
//! running server, and abandoned uploads (gc's and the server's own sweep).

mod common;

use std::time::Duration;

use berth_registry::{gc, RegistryError};
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn gc_dry_run_then_real_following_indexes() {
    let mut reg = start_plain().await;
    // Kept: a tagged image.
    let (_, kept) = reg.push_image("app", "v1", &[b"kept-layer"]).await;
    // Kept: an image only an index names (its own manifest row deleted).
    let (child_body, child) = reg.push_image("app", "child", &[b"child-layer"]).await;
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": DOCKER_MANIFEST, "digest": child, "size": child_body.len()}]
    }))
    .unwrap();
    assert_eq!(
        reg.put_manifest("app", "multi", OCI_INDEX, &index)
            .await
            .status(),
        201
    );
    assert_eq!(
        reg.delete(&format!("/v2/app/manifests/{child}"))
            .await
            .status(),
        202
    );
    // Removed: a deleted image (manifest, config, layer) and a blob no manifest names.
    let (_, gone) = reg.push_image("other", "v1", &[b"gone-layer"]).await;
    assert_eq!(
        reg.delete(&format!("/v2/other/manifests/{gone}"))
            .await
            .status(),
        202
    );
    let orphan = reg.push_blob("other", b"orphan").await;
    // An upload left behind.
    let r = reg
        .req(Method::POST, "/v2/app/blobs/uploads/")
        .send()
        .await
        .unwrap();
    let upload = header(r.headers(), "docker-upload-uuid");
    reg.req(Method::PATCH, &header(r.headers(), "location"))
        .body(b"half".to_vec())
        .send()
        .await
        .unwrap();

    // Not while the server runs.
    let err = gc(&reg.store(), true).unwrap_err();
    assert!(matches!(err, RegistryError::Locked(..)), "{err}");
    assert!(err.to_string().contains("in use by a running"), "{err}");
    reg.stop().await;

    let before = reg.stored_blobs();
    let dry = gc(&reg.store(), true).unwrap();
    assert!(dry.dry_run);
    let mut removable: Vec<String> = dry.blobs.iter().map(|(d, _)| d.to_string()).collect();
    removable.sort();
    let gone_config = r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"tag":"other:v1"}"#;
    let mut expect = vec![
        gone.clone(),
        sha(gone_config.as_bytes()),
        sha(b"gone-layer"),
        orphan.clone(),
    ];
    expect.sort();
    assert_eq!(removable, expect);
    assert_eq!(dry.uploads, vec![upload.clone()]);
    assert_eq!(dry.kept, before.len() - 4);
    assert_eq!(reg.stored_blobs(), before, "a dry run removes nothing");
    assert_eq!(reg.upload_dirs(), 1);

    let real = gc(&reg.store(), false).unwrap();
    assert_eq!(real.blobs.len(), 4);
    assert!(real.bytes() > 0);
    assert_eq!(reg.stored_blobs().len(), before.len() - 4);
    assert_eq!(reg.upload_dirs(), 0);
    // Idempotent.
    assert!(gc(&reg.store(), false).unwrap().blobs.is_empty());

    // What is left still serves; what went is gone everywhere.
    let root = reg.store();
    let reg2 = start_with(|o| o.root = root).await;
    assert_eq!(reg2.get("/v2/app/manifests/v1").await.status(), 200);
    assert_eq!(
        reg2.get(&format!("/v2/app/manifests/{kept}"))
            .await
            .status(),
        200
    );
    assert_eq!(reg2.get("/v2/app/manifests/multi").await.status(), 200);
    assert_eq!(
        reg2.get(&format!("/v2/app/blobs/{}", sha(b"child-layer")))
            .await
            .status(),
        200
    );
    assert_eq!(
        reg2.head(&format!("/v2/other/blobs/{orphan}"))
            .await
            .status(),
        404
    );
    // The index's child can be pushed again by digest: its blobs are still there.
    let r = reg2
        .put_manifest("app", &child, DOCKER_MANIFEST, &child_body)
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[test]
fn gc_refuses_what_is_not_a_registry() {
    let dir = tempfile::tempdir().unwrap();
    let err = gc(dir.path(), true).unwrap_err();
    assert!(err.to_string().contains("not a registry root"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn server_sweeps_abandoned_uploads() {
    let reg = start_with(|o| o.upload_ttl = Duration::from_secs(1)).await;
    let r = reg
        .req(Method::POST, "/v2/a/blobs/uploads/")
        .send()
        .await
        .unwrap();
    let loc = header(r.headers(), "location");
    assert_eq!(reg.upload_dirs(), 1);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while reg.upload_dirs() > 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(reg.upload_dirs(), 0, "abandoned upload not swept");
    let r = reg.get(&loc).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(code(r).await, "BLOB_UPLOAD_UNKNOWN");
}

#[tokio::test(flavor = "multi_thread")]
async fn uploads_resume_across_a_restart() {
    let mut reg = start_plain().await;
    let r = reg
        .req(Method::POST, "/v2/r/blobs/uploads/")
        .send()
        .await
        .unwrap();
    let loc = header(r.headers(), "location");
    reg.req(Method::PATCH, &loc)
        .header("content-range", "0-4")
        .body(b"hello".to_vec())
        .send()
        .await
        .unwrap();
    let root = reg.store();
    reg.stop().await;
    let reg2 = start_with(|o| o.root = root).await;
    let r = reg2.get(&loc).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(r.headers(), "range"), "0-4");
    let d = sha(b"hello world");
    let r = reg2
        .req(Method::PUT, &format!("{loc}?digest={d}"))
        .header("content-range", "5-10")
        .body(b" world".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        reg2.get(&format!("/v2/r/blobs/{d}"))
            .await
            .bytes()
            .await
            .unwrap(),
        &b"hello world"[..]
    );
}

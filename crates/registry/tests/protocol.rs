//! The distribution-spec protocol against an in-process `berth registry serve`: every endpoint,
//! the error codes and statuses, pagination, chunked/streamed/resumable uploads, mount,
//! referrers, deletes, digest verification and hostile names.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn base_endpoint() {
    let reg = start_plain().await;
    for path in ["/v2/", "/v2"] {
        let r = reg.get(path).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            header(r.headers(), "docker-distribution-api-version"),
            "registry/2.0"
        );
        assert_eq!(text(r).await, "{}");
    }
    let r = reg.get("/v2/nothing/here/at/all").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = reg.get("/elsewhere").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn monolithic_uploads_and_blob_reads() {
    let reg = start_plain().await;
    // POST ?digest= with the body.
    let data = b"0123456789abcdef".repeat(1000);
    let d = sha(&data);
    let r = reg
        .req(Method::POST, &format!("/v2/a/b/blobs/uploads/?digest={d}"))
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        header(r.headers(), "location"),
        format!("/v2/a/b/blobs/{d}")
    );
    assert_eq!(header(r.headers(), "docker-content-digest"), d);

    // POST, then PUT ?digest= with the body.
    let other = b"put-body".to_vec();
    let od = sha(&other);
    let r = reg
        .req(Method::POST, "/v2/a/b/blobs/uploads/")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let loc = header(r.headers(), "location");
    assert!(loc.starts_with("/v2/a/b/blobs/uploads/"), "{loc}");
    assert_eq!(header(r.headers(), "range"), "0-0");
    assert!(!header(r.headers(), "docker-upload-uuid").is_empty());
    let r = reg
        .req(Method::PUT, &format!("{loc}?digest={od}"))
        .body(other.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(reg.blob("a/b", &od).await, other);

    // HEAD and GET.
    let r = reg.head(&format!("/v2/a/b/blobs/{d}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        header(r.headers(), "content-length"),
        data.len().to_string()
    );
    assert_eq!(header(r.headers(), "docker-content-digest"), d);
    let r = reg.get(&format!("/v2/a/b/blobs/{d}")).await;
    assert_eq!(
        header(r.headers(), "content-type"),
        "application/octet-stream"
    );
    assert_eq!(r.bytes().await.unwrap(), data);

    // Range: a resumed download.
    let r = reg
        .req(Method::GET, &format!("/v2/a/b/blobs/{d}"))
        .header("range", "bytes=15990-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        header(r.headers(), "content-range"),
        "bytes 15990-15999/16000"
    );
    assert_eq!(r.bytes().await.unwrap(), &data[15990..]);
    let r = reg
        .req(Method::GET, &format!("/v2/a/b/blobs/{d}"))
        .header("range", "bytes=16000-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header(r.headers(), "content-range"), "bytes */16000");

    // Blobs belong to repositories: another repository does not see it.
    let r = reg.get(&format!("/v2/other/blobs/{d}")).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(code(r).await, "BLOB_UNKNOWN");
    let r = reg.head(&format!("/v2/a/b/blobs/{}", sha(b"absent"))).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // A malformed digest.
    let r = reg.get("/v2/a/b/blobs/sha256:1234").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(code(r).await, "DIGEST_INVALID");
    // Stored once: content addressed under the root.
    assert_eq!(reg.stored_blobs(), {
        let mut v = vec![d[7..].to_string(), od[7..].to_string()];
        v.sort();
        v
    });
    assert_eq!(reg.upload_dirs(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn chunked_upload_out_of_order_and_resume() {
    let reg = start_plain().await;
    let data = b"abcdefghij".to_vec();
    let d = sha(&data);
    let r = reg
        .req(Method::POST, "/v2/c/blobs/uploads/")
        .send()
        .await
        .unwrap();
    let loc = header(r.headers(), "location");
    let uuid = header(r.headers(), "docker-upload-uuid");
    assert!(loc.ends_with(&uuid));

    let patch = |range: &'static str, body: &'static [u8]| {
        reg.req(Method::PATCH, &loc)
            .header("content-type", "application/octet-stream")
            .header("content-range", range)
            .body(body)
            .send()
    };
    let r = patch("0-3", b"abcd").await.unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(header(r.headers(), "range"), "0-3");
    assert_eq!(header(r.headers(), "docker-upload-uuid"), uuid);
    let loc2 = header(r.headers(), "location");
    assert_eq!(loc2, loc);

    // Out of order: 416, and the session tells where it is.
    let r = patch("6-9", b"ghij").await.unwrap();
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header(r.headers(), "range"), "0-3");
    assert_eq!(code(r).await, "BLOB_UPLOAD_INVALID");
    // Resume: ask where the upload is, continue from there.
    let r = reg.get(&loc).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(r.headers(), "range"), "0-3");
    assert_eq!(header(r.headers(), "docker-upload-uuid"), uuid);
    assert_eq!(header(r.headers(), "location"), loc);
    let r = patch("4-7", b"efgh").await.unwrap();
    assert_eq!(header(r.headers(), "range"), "0-7");
    // The last chunk with the closing PUT.
    let r = reg
        .req(Method::PUT, &format!("{loc}?digest={d}"))
        .header("content-range", "8-9")
        .body(b"ij".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED, "{}", text(r).await);
    assert_eq!(reg.blob("c", &d).await, data);
    // The session is over.
    let r = reg.get(&loc).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(code(r).await, "BLOB_UPLOAD_UNKNOWN");
}

#[tokio::test(flavor = "multi_thread")]
async fn streamed_patch_as_docker_sends_it() {
    let reg = start_plain().await;
    let chunks: Vec<Vec<u8>> = (0..50u8).map(|i| vec![i; 64 * 1024]).collect();
    let all: Vec<u8> = chunks.concat();
    let d = sha(&all);
    let r = reg
        .req(Method::POST, "/v2/s/blobs/uploads/")
        .send()
        .await
        .unwrap();
    let loc = header(r.headers(), "location");
    let stream = futures_util::stream::iter(chunks.into_iter().map(Ok::<_, std::io::Error>));
    let r = reg
        .req(Method::PATCH, &loc)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(header(r.headers(), "range"), format!("0-{}", all.len() - 1));
    let r = reg
        .req(Method::PUT, &format!("{loc}?digest={d}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(reg.blob("s", &d).await, all);
}

#[tokio::test(flavor = "multi_thread")]
async fn digest_mismatch_leaves_nothing() {
    let reg = start_plain().await;
    let wrong = sha(b"something else");
    let r = reg
        .req(
            Method::POST,
            &format!("/v2/m/blobs/uploads/?digest={wrong}"),
        )
        .body(b"payload".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(code(r).await, "DIGEST_INVALID");
    // Chunked, then a wrong digest at the end.
    let r = reg
        .req(Method::POST, "/v2/m/blobs/uploads/")
        .send()
        .await
        .unwrap();
    let loc = header(r.headers(), "location");
    reg.req(Method::PATCH, &loc)
        .body(b"payload".to_vec())
        .send()
        .await
        .unwrap();
    let r = reg
        .req(Method::PUT, &format!("{loc}?digest={wrong}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(code(r).await, "DIGEST_INVALID");
    assert_eq!(code(reg.get(&loc).await).await, "BLOB_UPLOAD_UNKNOWN");
    // A PUT without a digest.
    let r = reg
        .req(Method::POST, "/v2/m/blobs/uploads/")
        .send()
        .await
        .unwrap();
    let loc = header(r.headers(), "location");
    let r = reg.req(Method::PUT, &loc).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(code(r).await, "DIGEST_INVALID");
    reg.delete(&loc).await;
    // Nothing kept: no blob, no session, no link.
    assert!(reg.stored_blobs().is_empty(), "{:?}", reg.stored_blobs());
    assert_eq!(reg.upload_dirs(), 0);
    assert_eq!(
        reg.head(&format!("/v2/m/blobs/{}", sha(b"payload")))
            .await
            .status(),
        404
    );
    let tmp = std::fs::read_dir(reg.store().join("tmp")).unwrap().count();
    assert_eq!(tmp, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_and_foreign_sessions() {
    let reg = start_plain().await;
    let r = reg
        .req(Method::POST, "/v2/x/blobs/uploads/")
        .send()
        .await
        .unwrap();
    let loc = header(r.headers(), "location");
    let uuid = header(r.headers(), "docker-upload-uuid");
    // Another repository cannot use the session.
    let r = reg.get(&format!("/v2/y/blobs/uploads/{uuid}")).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(code(r).await, "BLOB_UPLOAD_UNKNOWN");
    let r = reg.delete(&loc).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = reg
        .req(Method::PATCH, &loc)
        .body(b"x".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(code(r).await, "BLOB_UPLOAD_UNKNOWN");
    assert_eq!(reg.upload_dirs(), 0);
    // Made-up and hostile session ids.
    for id in [
        "00000000-0000-0000-0000-000000000000",
        "..%2F..%2Fregistry.db",
        "zz",
    ] {
        let r = reg.get(&format!("/v2/x/blobs/uploads/{id}")).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{id}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cross_repository_mount() {
    let reg = start_plain().await;
    let d = reg.push_blob("src/repo", b"layer bytes").await;
    let r = reg
        .req(
            Method::POST,
            &format!("/v2/dst/blobs/uploads/?mount={d}&from=src/repo"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        header(r.headers(), "location"),
        format!("/v2/dst/blobs/{d}")
    );
    assert_eq!(header(r.headers(), "docker-content-digest"), d);
    assert_eq!(reg.head(&format!("/v2/dst/blobs/{d}")).await.status(), 200);
    // Not in `from`: an upload session instead.
    let r = reg
        .req(
            Method::POST,
            &format!("/v2/dst2/blobs/uploads/?mount={d}&from=empty"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert!(header(r.headers(), "location").starts_with("/v2/dst2/blobs/uploads/"));
    assert_eq!(reg.head(&format!("/v2/dst2/blobs/{d}")).await.status(), 404);
    let r = reg
        .req(
            Method::POST,
            "/v2/dst2/blobs/uploads/?mount=sha256:bad&from=src/repo",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(code(r).await, "DIGEST_INVALID");
}

#[tokio::test(flavor = "multi_thread")]
async fn manifests_put_get_head_delete() {
    let reg = start_plain().await;
    let (body, d) = reg
        .push_image("lib/app", "v1", &[b"layer-1", b"layer-2"])
        .await;

    for reference in ["v1", d.as_str()] {
        let r = reg
            .req(Method::GET, &format!("/v2/lib/app/manifests/{reference}"))
            .header("accept", DOCKER_MANIFEST)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header(r.headers(), "content-type"), DOCKER_MANIFEST);
        assert_eq!(header(r.headers(), "docker-content-digest"), d);
        assert_eq!(r.bytes().await.unwrap(), body);
        let r = reg
            .head(&format!("/v2/lib/app/manifests/{reference}"))
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            header(r.headers(), "content-length"),
            body.len().to_string()
        );
        assert_eq!(header(r.headers(), "docker-content-digest"), d);
    }
    let r = reg.get("/v2/lib/app/manifests/v2").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(code(r).await, "MANIFEST_UNKNOWN");

    // PUT by digest: the body must hash to it.
    let r = reg
        .put_manifest("lib/app", &d, DOCKER_MANIFEST, &body)
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        header(r.headers(), "location"),
        format!("/v2/lib/app/manifests/{d}")
    );
    let r = reg
        .put_manifest("lib/app", &sha(b"other"), DOCKER_MANIFEST, &body)
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(code(r).await, "DIGEST_INVALID");

    // A manifest naming blobs the repository does not have.
    let missing = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(b"nope"), "size": 4},
        "layers": []
    }))
    .unwrap();
    let r = reg
        .put_manifest("lib/app", "bad", OCI_MANIFEST, &missing)
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(code(r).await, "MANIFEST_BLOB_UNKNOWN");
    // The blobs exist, but in another repository.
    let r = reg
        .put_manifest("elsewhere", "v1", DOCKER_MANIFEST, &body)
        .await;
    assert_eq!(code(r).await, "MANIFEST_BLOB_UNKNOWN");

    // An index: its entries must be manifests of the repository.
    let index = |child: &str| {
        serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": DOCKER_LIST,
            "manifests": [{"mediaType": DOCKER_MANIFEST, "digest": child, "size": 10,
                           "platform": {"architecture": "amd64", "os": "linux"}}]
        }))
        .unwrap()
    };
    let r = reg
        .put_manifest("lib/app", "multi", DOCKER_LIST, &index(&sha(b"x")))
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(code(r).await, "MANIFEST_UNKNOWN");
    let list = index(&d);
    let r = reg
        .put_manifest("lib/app", "multi", DOCKER_LIST, &list)
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = reg.get("/v2/lib/app/manifests/multi").await;
    assert_eq!(header(r.headers(), "content-type"), DOCKER_LIST);
    // An OCI index of the same.
    let oci = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": DOCKER_MANIFEST, "digest": d, "size": body.len()}]
    }))
    .unwrap();
    let r = reg.put_manifest("lib/app", "oci", OCI_INDEX, &oci).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        header(
            reg.get("/v2/lib/app/manifests/oci").await.headers(),
            "content-type"
        ),
        OCI_INDEX
    );

    // Malformed, mistyped, oversized, badly tagged.
    let r = reg
        .put_manifest("lib/app", "v9", OCI_MANIFEST, b"{not json")
        .await;
    assert_eq!(code(r).await, "MANIFEST_INVALID");
    let r = reg.put_manifest("lib/app", "v9", DOCKER_LIST, &body).await;
    assert_eq!(code(r).await, "MANIFEST_INVALID");
    let r = reg
        .put_manifest(
            "lib/app",
            "v9",
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
            b"{\"schemaVersion\":1}",
        )
        .await;
    assert_eq!(code(r).await, "MANIFEST_INVALID");
    let huge = vec![b' '; 4 * 1024 * 1024 + 1];
    let r = reg.put_manifest("lib/app", "v9", OCI_MANIFEST, &huge).await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(code(r).await, "SIZE_INVALID");
    let r = reg
        .put_manifest("lib/app", ".bad", DOCKER_MANIFEST, &body)
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(code(r).await, "TAG_INVALID");
    let long_tag = "t".repeat(129);
    let r = reg
        .put_manifest("lib/app", &long_tag, DOCKER_MANIFEST, &body)
        .await;
    assert_eq!(code(r).await, "TAG_INVALID");
    // None of the refused manifests was stored.
    let blobs = reg.stored_blobs();
    assert!(!blobs.contains(&sha(&missing)[7..].to_string()));
    assert!(!blobs.contains(&sha(&huge)[7..].to_string()));

    // Tag deletion keeps the manifest.
    let r = reg.delete("/v2/lib/app/manifests/v1").await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(reg.get("/v2/lib/app/manifests/v1").await.status(), 404);
    assert_eq!(
        reg.get(&format!("/v2/lib/app/manifests/{d}"))
            .await
            .status(),
        200
    );
    assert_eq!(
        code(reg.delete("/v2/lib/app/manifests/v1").await).await,
        "MANIFEST_UNKNOWN"
    );
    // Manifest deletion by digest.
    let r = reg
        .put_manifest("lib/app", "again", DOCKER_MANIFEST, &body)
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = reg.delete(&format!("/v2/lib/app/manifests/{d}")).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(
        reg.get(&format!("/v2/lib/app/manifests/{d}"))
            .await
            .status(),
        404
    );
    // Its tags went with it.
    assert_eq!(reg.get("/v2/lib/app/manifests/again").await.status(), 404);
    assert_eq!(
        reg.delete(&format!("/v2/lib/app/manifests/{d}"))
            .await
            .status(),
        404
    );

    // Methods a path does not have.
    let r = reg
        .req(Method::POST, "/v2/lib/app/manifests/v1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(code(r).await, "UNSUPPORTED");
}

#[tokio::test(flavor = "multi_thread")]
async fn blob_delete() {
    let reg = start_plain().await;
    let d = reg.push_blob("del", b"to be deleted").await;
    let r = reg.delete(&format!("/v2/del/blobs/{d}")).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(reg.head(&format!("/v2/del/blobs/{d}")).await.status(), 404);
    let r = reg.delete(&format!("/v2/del/blobs/{d}")).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(code(r).await, "BLOB_UNKNOWN");
}

async fn follow_pages(reg: &Reg, first: &str, key: &str) -> (Vec<Vec<String>>, Vec<String>) {
    let mut pages = Vec::new();
    let mut links = Vec::new();
    let mut next = Some(first.to_string());
    while let Some(url) = next.take() {
        let r = reg.get(&url).await;
        assert_eq!(r.status(), StatusCode::OK);
        let link = header(r.headers(), "link");
        let v = json_of(r).await;
        pages.push(
            v[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap().to_string())
                .collect(),
        );
        if !link.is_empty() {
            assert!(link.ends_with(">; rel=\"next\""), "{link}");
            let u = link
                .trim_start_matches('<')
                .split('>')
                .next()
                .unwrap()
                .to_string();
            links.push(u.clone());
            next = Some(u);
        }
    }
    (pages, links)
}

#[tokio::test(flavor = "multi_thread")]
async fn tags_and_catalog_pagination() {
    let reg = start_plain().await;
    let (body, _) = reg.push_image("pages", "t0", &[b"l"]).await;
    for t in ["t3", "T1", "t1", "t2", "t4"] {
        let r = reg.put_manifest("pages", t, DOCKER_MANIFEST, &body).await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let v = json_of(reg.get("/v2/pages/tags/list").await).await;
    assert_eq!(v["name"], "pages");
    assert_eq!(v["tags"], json!(["T1", "t0", "t1", "t2", "t3", "t4"]));

    let (pages, links) = follow_pages(&reg, "/v2/pages/tags/list?n=4", "tags").await;
    assert_eq!(pages, vec![vec!["T1", "t0", "t1", "t2"], vec!["t3", "t4"]]);
    assert_eq!(links, vec!["/v2/pages/tags/list?last=t2&n=4"]);
    let (pages, _) = follow_pages(&reg, "/v2/pages/tags/list?n=2", "tags").await;
    assert_eq!(pages.len(), 3);
    assert_eq!(pages.concat().len(), 6);
    let r = reg.get("/v2/pages/tags/list?n=0").await;
    assert!(header(r.headers(), "link").is_empty());
    assert_eq!(json_of(r).await["tags"], json!([]));
    let v = json_of(reg.get("/v2/pages/tags/list?last=t2").await).await;
    assert_eq!(v["tags"], json!(["t3", "t4"]));
    let r = reg.get("/v2/pages/tags/list?n=x").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(code(r).await, "PAGINATION_NUMBER_INVALID");
    let r = reg.get("/v2/unknown/tags/list").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(code(r).await, "NAME_UNKNOWN");

    for repo in ["c/one", "a", "b/x/y"] {
        reg.push_blob(repo, repo.as_bytes()).await;
    }
    let v = json_of(reg.get("/v2/_catalog").await).await;
    assert_eq!(v["repositories"], json!(["a", "b/x/y", "c/one", "pages"]));
    let (pages, links) = follow_pages(&reg, "/v2/_catalog?n=3", "repositories").await;
    assert_eq!(pages, vec![vec!["a", "b/x/y", "c/one"], vec!["pages"]]);
    assert_eq!(links, vec!["/v2/_catalog?last=c%2Fone&n=3"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn referrers_api() {
    let reg = start_plain().await;
    let (_, subject) = reg.push_image("art", "v1", &[b"base"]).await;
    let subject_size = reg
        .get(&format!("/v2/art/manifests/{subject}"))
        .await
        .bytes()
        .await
        .unwrap()
        .len();
    let empty = reg.push_blob("art", b"{}").await;
    let sig_layer = reg.push_blob("art", b"signature").await;
    let referrer = |artifact_type: Option<&str>, config_type: &str, note: &str| {
        let mut m = json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": config_type, "digest": empty, "size": 2},
            "layers": [{"mediaType": "application/octet-stream", "digest": sig_layer, "size": 9}],
            "subject": {"mediaType": DOCKER_MANIFEST, "digest": subject, "size": subject_size},
            "annotations": {"note": note}
        });
        if let Some(t) = artifact_type {
            m["artifactType"] = json!(t);
        }
        serde_json::to_vec(&m).unwrap()
    };
    let sig = referrer(
        Some("application/vnd.example.sig"),
        "application/vnd.oci.empty.v1+json",
        "sig",
    );
    let sbom = referrer(None, "application/vnd.example.sbom", "sbom");
    for m in [&sig, &sbom] {
        let d = sha(m);
        let r = reg.put_manifest("art", &d, OCI_MANIFEST, m).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(header(r.headers(), "oci-subject"), subject);
    }
    let r = reg.get(&format!("/v2/art/referrers/{subject}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(r.headers(), "content-type"), OCI_INDEX);
    let v = json_of(r).await;
    assert_eq!(v["schemaVersion"], 2);
    assert_eq!(v["mediaType"], OCI_INDEX);
    let mut found: Vec<(String, String, String)> = v["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            assert_eq!(m["mediaType"], OCI_MANIFEST);
            assert!(m["size"].as_u64().unwrap() > 0);
            (
                m["digest"].as_str().unwrap().to_string(),
                m["artifactType"].as_str().unwrap().to_string(),
                m["annotations"]["note"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    found.sort_by(|a, b| a.2.cmp(&b.2));
    assert_eq!(
        found,
        vec![
            (
                sha(&sbom),
                "application/vnd.example.sbom".to_string(),
                "sbom".to_string()
            ),
            (
                sha(&sig),
                "application/vnd.example.sig".to_string(),
                "sig".to_string()
            ),
        ]
    );
    let r = reg
        .get(&format!(
            "/v2/art/referrers/{subject}?artifactType=application/vnd.example.sig"
        ))
        .await;
    assert_eq!(header(r.headers(), "oci-filters-applied"), "artifactType");
    let v = json_of(r).await;
    assert_eq!(v["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(v["manifests"][0]["digest"], sha(&sig));
    // No referrers: an empty index, never 404.
    let v = json_of(
        reg.get(&format!("/v2/art/referrers/{}", sha(b"none")))
            .await,
    )
    .await;
    assert_eq!(v["manifests"], json!([]));
    let v = json_of(reg.get(&format!("/v2/norepo/referrers/{subject}")).await).await;
    assert_eq!(v["manifests"], json!([]));
    let r = reg.get("/v2/art/referrers/sha256:zz").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_names_never_reach_the_disk() {
    let reg = start_plain().await;
    let before = std::fs::read_dir(reg.root.path()).unwrap().count();
    let cases = [
        ("GET", "/v2/Upper/manifests/latest"),
        ("GET", "/v2/../../etc/manifests/passwd"),
        ("GET", "/v2/a/../../b/tags/list"),
        ("GET", "/v2/a/./b/blobs/sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("POST", "/v2/..%2F..%2Fevil/blobs/uploads/"),
        ("POST", "/v2/a%2Fb/blobs/uploads/"),
        ("PUT", "/v2/a//b/manifests/x"),
        ("GET", "/v2/-a/tags/list"),
        ("GET", "/v2/a__-b/tags/list"),
    ];
    for (m, p) in cases {
        let (status, body) = reg.raw(m, p).await;
        assert_eq!(status, 400, "{m} {p}: {body}");
        assert!(body.contains("NAME_INVALID"), "{m} {p}: {body}");
    }
    let long = format!("/v2/{}/tags/list", "a".repeat(256));
    assert_eq!(reg.raw("GET", &long).await.0, 400);
    // Digests and references are checked too.
    let (status, body) = reg
        .raw("GET", "/v2/a/blobs/sha256:..%2F..%2Fregistry.db")
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("DIGEST_INVALID"));
    let (status, body) = reg.raw("GET", "/v2/a/manifests/..%2F..").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("TAG_INVALID"));
    assert_eq!(std::fs::read_dir(reg.root.path()).unwrap().count(), before);
    assert_eq!(reg.upload_dirs(), 0);
    // And nothing was made where a traversal would have led.
    assert!(!reg.root.path().join("evil").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn interrupted_upload_keeps_what_arrived_and_resumes() {
    use tokio::io::AsyncWriteExt;
    let reg = start_plain().await;
    let data: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let d = sha(&data);
    let r = reg
        .req(Method::POST, "/v2/resume/blobs/uploads/")
        .send()
        .await
        .unwrap();
    let loc = header(r.headers(), "location");
    // The client announces 3 MiB, sends 2 MiB + 5 bytes, and drops the connection.
    let sent = 2 * 1024 * 1024 + 5;
    let addr = reg.base.trim_start_matches("http://").to_string();
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "PATCH {loc} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        data.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&data[..sent]).await.unwrap();
    s.shutdown().await.unwrap();
    drop(s);
    // The server keeps what arrived; the client asks where to continue.
    let mut range = String::new();
    for _ in 0..50 {
        let r = reg.get(&loc).await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        range = header(r.headers(), "range");
        if range == format!("0-{}", sent - 1) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(range, format!("0-{}", sent - 1));
    let r = reg
        .req(Method::PATCH, &loc)
        .header("content-range", format!("{sent}-{}", data.len() - 1))
        .body(data[sent..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = reg
        .req(Method::PUT, &format!("{loc}?digest={d}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(reg.blob("resume", &d).await, data);
}

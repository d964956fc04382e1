//! Against Debian's docker-registry (distribution 2.8) on plain HTTP at 127.0.0.1: an insecure
//! registry, reached after the HTTPS attempt fails (moby's order).

mod common;

use std::net::{IpAddr, Ipv4Addr};

use berth_distribution::{Access, Client, Credentials, DistributionError};
use common::*;
use futures_util::StreamExt as _;

#[tokio::test]
async fn push_mount_put_and_get_against_docker_registry() {
    let reg = DockerRegistry::start(RegistryOpts::default());
    let (c, _certs) = client();
    let src = repo(&c, &reg.addr, "berth/src", Access::Push);
    assert_eq!(src.name(), format!("{}/berth/src", reg.addr));

    // Monolithic: POST, then PUT ?digest= with the body.
    let layer1 = data(300 * 1024, 1);
    let d1 = digest(&layer1);
    assert_eq!(src.blob_size(&d1).await.unwrap(), None);
    src.push_blob(&d1, layer1.clone()).await.unwrap();
    assert_eq!(src.blob_size(&d1).await.unwrap(), Some(layer1.len() as u64));

    // Streamed: POST, one chunked PATCH, PUT ?digest= with what was hashed on the way.
    let layer2 = data(1024 * 1024 + 17, 2);
    let chunks: Vec<std::io::Result<bytes::Bytes>> = layer2
        .chunks(100 * 1024)
        .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
        .collect();
    let (d2, size2) = src
        .push_blob_stream(futures_util::stream::iter(chunks).boxed())
        .await
        .unwrap();
    assert_eq!(d2, digest(&layer2));
    assert_eq!(size2, layer2.len() as u64);
    assert_eq!(src.blob_size(&d2).await.unwrap(), Some(size2));

    let config = bytes::Bytes::from_static(br#"{"architecture":"amd64","os":"linux"}"#);
    let dc = digest(&config);
    src.push_blob(&dc, config.clone()).await.unwrap();

    let m = manifest(
        (&dc, config.len()),
        &[(&d1, layer1.len()), (&d2, layer2.len())],
    );
    let md = src
        .put_manifest("v1", OCI_MANIFEST, m.clone())
        .await
        .unwrap();
    assert_eq!(md, digest(&m));

    let info = src
        .head_manifest("v1")
        .await
        .unwrap()
        .expect("manifest exists");
    assert_eq!(info.digest, md);
    assert_eq!(info.size, m.len() as u64);
    assert_eq!(info.media_type, OCI_MANIFEST);
    assert!(src.head_manifest("nope").await.unwrap().is_none());

    // A pull session reads it all back.
    let pull = repo(&c, &reg.addr, "berth/src", Access::Pull);
    for reference in ["v1", md.as_str()] {
        let got = pull.get_manifest(reference).await.unwrap();
        assert_eq!(got.bytes, m);
        assert_eq!(got.digest, md);
        assert_eq!(got.media_type, OCI_MANIFEST);
    }
    let mut dl = pull.get_blob(&d2, Some(size2)).await.unwrap();
    assert_eq!(dl.total, Some(size2));
    assert_eq!(collect(&mut dl).await.unwrap(), layer2.to_vec());
    assert_eq!(dl.resumed(), 0);
    assert_eq!(pull.get_blob_bytes(&dc, 4096).await.unwrap(), config);
    let too_small = pull.get_blob_bytes(&d1, 1024).await.unwrap_err();
    assert!(
        matches!(too_small, DistributionError::InvalidResponse(_)),
        "{too_small}"
    );

    // Cross-repository mount: 201 for a blob the source has, 202 (upload cancelled) otherwise.
    let dst = repo(&c, &reg.addr, "berth/dst", Access::Push);
    assert_eq!(dst.blob_size(&d1).await.unwrap(), None);
    assert!(dst.mount_blob(&d1, "berth/src").await.unwrap());
    assert_eq!(dst.blob_size(&d1).await.unwrap(), Some(layer1.len() as u64));
    let absent = digest(b"never pushed");
    assert!(!dst.mount_blob(&absent, "berth/src").await.unwrap());
    assert_eq!(dst.blob_size(&absent).await.unwrap(), None);
}

#[tokio::test]
async fn registry_errors_keep_status_and_code() {
    let reg = DockerRegistry::start(RegistryOpts::default());
    let (c, _certs) = client();
    let r = repo(&c, &reg.addr, "berth/errors", Access::Push);
    push_image(&r, "v1", 3).await;

    let e = r.get_manifest("missing").await.unwrap_err();
    assert_eq!(e.status(), Some(404));
    assert_eq!(e.code(), Some("MANIFEST_UNKNOWN"));
    assert!(e.is_not_found());
    assert_eq!(e.to_string(), "manifest unknown: manifest unknown");

    let e = r.get_blob(&digest(b"absent"), None).await.err().unwrap();
    assert_eq!(e.code(), Some("BLOB_UNKNOWN"), "{e}");

    let e = repo(&c, &reg.addr, "berth/none", Access::Pull)
        .get_manifest("latest")
        .await
        .unwrap_err();
    assert!(e.is_not_found(), "{e}");

    // The registry checks what it is given: a body that is not its digest.
    let e = r
        .push_blob(
            &digest(b"something else"),
            bytes::Bytes::from_static(b"body"),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("DIGEST_INVALID"), "{e}");
    assert_eq!(e.status(), Some(400));

    // Invalid names never reach the registry.
    let bad = repo(&c, &reg.addr, "../../etc", Access::Pull);
    assert!(matches!(
        bad.get_manifest("latest").await,
        Err(DistributionError::Config(_))
    ));
    assert!(matches!(
        r.get_manifest("../../x").await,
        Err(DistributionError::Config(_))
    ));
}

#[tokio::test]
async fn basic_auth_with_htpasswd_and_login() {
    let reg = DockerRegistry::start(RegistryOpts {
        user: Some("u"),
        ..Default::default()
    });
    let (c, _certs) = client();

    let e = repo(&c, &reg.addr, "berth/a", Access::Pull)
        .get_manifest("v1")
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(401));
    assert!(e.is_auth(), "{e}");

    let good = Credentials::basic("u", "secret");
    let r = c.repository(&reg.addr, "berth/a", good.clone(), Access::Push);
    let (m, d) = push_image(&r, "v1", 4).await;
    let pull = c.repository(&reg.addr, "berth/a", good.clone(), Access::Pull);
    assert_eq!(pull.get_manifest("v1").await.unwrap().bytes, m);
    let info = pull.head_manifest("v1").await.unwrap().unwrap();
    assert_eq!(info.digest, d);

    let wrong = c.repository(
        &reg.addr,
        "berth/a",
        Credentials::basic("u", "wrong"),
        Access::Pull,
    );
    let e = wrong.get_manifest("v1").await.unwrap_err();
    assert_eq!(e.status(), Some(401), "{e}");

    assert_eq!(c.login(&reg.addr, &good).await.unwrap(), None);
    assert_eq!(
        c.login(&format!("http://{}/v2/", reg.addr), &good)
            .await
            .unwrap(),
        None
    );
    let e = c
        .login(&reg.addr, &Credentials::basic("u", "wrong"))
        .await
        .unwrap_err();
    match &e {
        DistributionError::Registry {
            status,
            code,
            message,
        } => {
            assert_eq!(*status, 401);
            assert_eq!(code, "");
            assert_eq!(
                message,
                &format!(
                    "login attempt to http://{}/v2/ failed with status: 401 Unauthorized",
                    reg.addr
                )
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(e.to_string(), e.to_string().trim());
    let e = c
        .login(&reg.addr, &Credentials::default())
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(401));
}

#[tokio::test]
async fn unreachable_registry_is_a_transport_error_naming_the_url() {
    let port = free_port();
    let (c, _certs) = client();
    let e = repo(&c, &format!("127.0.0.1:{port}"), "x/y", Access::Pull)
        .get_manifest("latest")
        .await
        .unwrap_err();
    let DistributionError::Transport(msg) = &e else {
        panic!("{e:?}")
    };
    // Both schemes were tried; the last (plain HTTP) error is reported.
    assert!(
        msg.starts_with(&format!(
            "Get \"http://127.0.0.1:{port}/v2/x/y/manifests/latest\": "
        )),
        "{msg}"
    );
    assert!(
        msg.ends_with(&format!(
            ": dial tcp 127.0.0.1:{port}: connect: connection refused"
        )),
        "{msg}"
    );
    let e = c
        .login(&format!("127.0.0.1:{port}"), &Credentials::basic("u", "p"))
        .await
        .unwrap_err();
    assert!(matches!(e, DistributionError::Transport(_)), "{e:?}");
}

/// A registry name that is not a loopback address is secure: HTTPS only, never plain HTTP,
/// unless `--insecure-registry` names it.
#[tokio::test]
async fn secure_registries_never_fall_back_to_http() {
    let reg = DockerRegistry::start(RegistryOpts::default());
    let domain = format!("registry.test:{}", reg.port);
    let (c, _certs) = client();
    c.resolve_host("registry.test", IpAddr::V4(Ipv4Addr::LOCALHOST));
    let e = repo(&c, &domain, "x/y", Access::Pull)
        .get_manifest("latest")
        .await
        .unwrap_err();
    let DistributionError::Transport(msg) = &e else {
        panic!("{e:?}")
    };
    assert!(
        msg.starts_with(&format!("Get \"https://{domain}/v2/")),
        "{msg}"
    );

    let certs = tempfile::tempdir().unwrap();
    let mut cfg = config(certs.path());
    cfg.insecure = vec![domain.clone()];
    let c = Client::new(cfg).unwrap();
    c.resolve_host("registry.test", IpAddr::V4(Ipv4Addr::LOCALHOST));
    let r = repo(&c, &domain, "x/y", Access::Push);
    let (m, _) = push_image(&r, "v1", 5).await;
    assert_eq!(r.get_manifest("v1").await.unwrap().bytes, m);
}

/// Throughput against docker-registry on loopback (run with `--ignored --nocapture`).
#[tokio::test]
#[ignore]
async fn throughput() {
    const MB: usize = 1024 * 1024;
    let reg = DockerRegistry::start(RegistryOpts::default());
    let (c, _certs) = client();
    let r = repo(&c, &reg.addr, "bench/x", Access::Push);
    let blob = data(200 * MB, 40);
    let d = digest(&blob);
    let mbps = |t: std::time::Instant| 200.0 / t.elapsed().as_secs_f64();

    let t = std::time::Instant::now();
    r.push_blob(&d, blob.clone()).await.unwrap();
    eprintln!("push_blob (monolithic): {:.0} MB/s", mbps(t));

    let other = data(200 * MB, 41);
    let chunks: Vec<std::io::Result<bytes::Bytes>> = (0..200)
        .map(|i| Ok(other.slice(i * MB..(i + 1) * MB)))
        .collect();
    let t = std::time::Instant::now();
    r.push_blob_stream(futures_util::stream::iter(chunks).boxed())
        .await
        .unwrap();
    eprintln!("push_blob_stream: {:.0} MB/s", mbps(t));

    let t = std::time::Instant::now();
    let mut dl = r.get_blob(&d, Some(blob.len() as u64)).await.unwrap();
    let mut n = 0;
    while let Some(c) = dl.next_chunk().await.unwrap() {
        n += c.len();
    }
    assert_eq!(n, blob.len());
    eprintln!("get_blob: {:.0} MB/s", mbps(t));
}

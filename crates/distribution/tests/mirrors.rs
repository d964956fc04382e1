//! `--registry-mirror`: pulls from Docker Hub try each mirror in order, moving on after any
//! error. (Pushes never use mirrors: see the endpoint unit tests; Hub itself is not reachable
//! from tests.)

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use axum::http::StatusCode;
use berth_distribution::{Access, Client};
use common::*;

#[tokio::test]
async fn pulls_from_docker_hub_go_through_the_first_working_mirror() {
    let reg = DockerRegistry::start(RegistryOpts::default());
    let (direct, _certs) = client();
    let (m, d) = push_image(
        &repo(&direct, &reg.addr, "library/busybox", Access::Push),
        "v1",
        30,
    )
    .await;

    let broken_hits = Arc::new(AtomicU32::new(0));
    let broken = {
        let hits = broken_hits.clone();
        axum::Router::new().fallback(move || async move {
            hits.fetch_add(1, Ordering::SeqCst);
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                r#"{"errors":[{"code":"UNKNOWN","message":"mirror broken"}]}"#,
            )
        })
    };
    let broken_addr = serve(broken).await;
    let dead = free_port();

    let certs = tempfile::tempdir().unwrap();
    let mut cfg = config(certs.path());
    cfg.mirrors = vec![
        format!("http://127.0.0.1:{dead}"),
        format!("http://{broken_addr}/"),
        format!("http://{}", reg.addr),
    ];
    let c = Client::new(cfg).unwrap();
    let r = repo(&c, "docker.io", "library/busybox", Access::Pull);
    assert_eq!(r.name(), "docker.io/library/busybox");
    let got = r.get_manifest("v1").await.unwrap();
    assert_eq!((got.bytes, got.digest), (m.clone(), d.clone()));
    // The session stays on the mirror that worked.
    let config_digest = {
        let v: serde_json::Value = serde_json::from_slice(&m).unwrap();
        berth_store::Digest::parse(v["config"]["digest"].as_str().unwrap()).unwrap()
    };
    r.get_blob_bytes(&config_digest, 1024).await.unwrap();
    assert!(r.head_manifest("v1").await.unwrap().is_some());
    assert_eq!(broken_hits.load(Ordering::SeqCst), 1);

    assert!(Client::new(RegistryConfigExt::with_mirror("not a url")).is_err());
}

/// Builds configs with a given mirror list.
struct RegistryConfigExt;

impl RegistryConfigExt {
    fn with_mirror(m: &str) -> berth_distribution::RegistryConfig {
        berth_distribution::RegistryConfig {
            mirrors: vec![m.to_string()],
            ..Default::default()
        }
    }
}

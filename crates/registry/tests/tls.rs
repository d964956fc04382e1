//! HTTPS with a self-signed certificate made by the openssl CLI: HTTP/1.1 and HTTP/2 (ALPN)
//! clients, the token realm's scheme, and bad certificate files.

mod common;

use std::path::Path;
use std::process::Command;

use berth_registry::{start, ServeOptions, TlsFiles};
use common::*;
use reqwest::{Method, StatusCode};

fn self_signed(dir: &Path) -> TlsFiles {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"])
        // A leaf, not a CA (webpki refuses a CA certificate as a server's).
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    TlsFiles { cert, key }
}

fn client(cert: &Path, http1: bool) -> reqwest::Client {
    let pem = std::fs::read(cert).unwrap();
    let b = reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()]);
    let b = if http1 { b.http1_only() } else { b };
    b.build().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn https_with_a_self_signed_certificate() {
    init_crypto();
    let dir = tempfile::tempdir().unwrap();
    let tls = self_signed(dir.path());
    let pw = htpasswd(dir.path());
    let mut reg = start_with(|o| {
        o.tls = Some(tls.clone());
        o.htpasswd = Some(pw);
        o.token = true;
    })
    .await;
    reg.base = reg.base.replace("http://", "https://");
    for http1 in [true, false] {
        reg.http = client(&tls.cert, http1);
        let r = reg.get("/v2/").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let want = if http1 {
            reqwest::Version::HTTP_11
        } else {
            reqwest::Version::HTTP_2
        };
        assert_eq!(r.version(), want);
        let realm = header(r.headers(), "www-authenticate");
        assert!(
            realm.starts_with(&format!("Bearer realm=\"{}/token\"", reg.base)),
            "{realm}"
        );
        let v = json_of(
            reg.http
                .get(format!(
                    "{}/token?service=berth-registry&scope=repository:tls/app:pull,push",
                    reg.base
                ))
                .basic_auth("u", Some("secret"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        reg.auth = Some(format!("Bearer {}", v["token"].as_str().unwrap()));
        let big = vec![7u8; 3 * 1024 * 1024];
        let (_, d) = reg.push_image("tls/app", "v1", &[&big]).await;
        assert_eq!(
            reg.get(&format!("/v2/tls/app/manifests/{d}"))
                .await
                .status(),
            200
        );
        let r = reg
            .req(Method::GET, &format!("/v2/tls/app/blobs/{}", sha(&big)))
            .send()
            .await
            .unwrap();
        assert_eq!(r.bytes().await.unwrap().len(), big.len());
        reg.auth = None;
    }
    // Plain HTTP to the TLS port gets nowhere.
    let plain = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = reg.base.replace("https://", "http://");
    assert!(plain.get(format!("{url}/v2/")).send().await.is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_certificate_files_fail_at_start() {
    init_crypto();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("junk.pem"), "not pem").unwrap();
    let mut opts = ServeOptions::new(dir.path().join("store"));
    opts.tls = Some(TlsFiles {
        cert: dir.path().join("junk.pem"),
        key: dir.path().join("missing.pem"),
    });
    let err = match start(opts, "127.0.0.1:0".parse().unwrap()).await {
        Ok(_) => panic!("started with junk certificates"),
        Err(e) => e.to_string(),
    };
    assert!(err.starts_with("TLS:"), "{err}");
}

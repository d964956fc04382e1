//! TLS against Debian's docker-registry serving HTTPS with a private CA: the CA from the certs.d
//! directory, a client certificate it requires, insecure loopback registries reached without
//! verification, a broken certs.d.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use berth_distribution::{Access, Client, DistributionError};
use common::*;
use futures_util::StreamExt as _;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// A CA, a server certificate for `registry.test` (and 127.0.0.1) and a client certificate, as
/// PEM files in a temp dir.
struct Pki {
    dir: tempfile::TempDir,
    ca: String,
    client_cert: String,
    client_key: String,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "berth test CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);

        let mut server = CertificateParams::new(vec![
            "registry.test".to_string(),
            "localhost".to_string(),
            "127.0.0.1".to_string(),
        ])
        .unwrap();
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_key = KeyPair::generate().unwrap();
        let server_cert = server.signed_by(&server_key, &issuer).unwrap();

        let mut client = CertificateParams::new(Vec::<String>::new()).unwrap();
        client
            .distinguished_name
            .push(DnType::CommonName, "berth test client");
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_key = KeyPair::generate().unwrap();
        let client_cert = client.signed_by(&client_key, &issuer).unwrap();

        let pki = Pki {
            dir,
            ca: ca_cert.pem(),
            client_cert: client_cert.pem(),
            client_key: client_key.serialize_pem(),
        };
        std::fs::write(pki.path("ca.pem"), &pki.ca).unwrap();
        std::fs::write(pki.path("server.pem"), server_cert.pem()).unwrap();
        std::fs::write(pki.path("server.key"), server_key.serialize_pem()).unwrap();
        pki
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn registry(&self, require_client_cert: bool) -> DockerRegistry {
        DockerRegistry::start(RegistryOpts {
            tls: Some((self.path("server.pem"), self.path("server.key"))),
            client_ca: require_client_cert.then(|| self.path("ca.pem")),
            ..Default::default()
        })
    }
}

/// A client whose `registry.test` is 127.0.0.1 (a secure registry: not loopback by name).
fn secure_client(certs: &Path) -> Client {
    let c = Client::new(config(certs)).unwrap();
    c.resolve_host("registry.test", IpAddr::V4(Ipv4Addr::LOCALHOST));
    c
}

#[tokio::test]
async fn certs_d_ca_makes_a_private_registry_trusted() {
    let pki = Pki::new();
    let reg = pki.registry(false);
    let domain = format!("registry.test:{}", reg.port);
    let certs = tempfile::tempdir().unwrap();
    let c = secure_client(certs.path());

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
    assert!(msg.contains("certificate"), "{msg}");

    // The same client picks the CA up once it is in certs.d (dockerd reads it on every pull).
    let host_dir = certs.path().join(&domain);
    std::fs::create_dir_all(&host_dir).unwrap();
    std::fs::write(host_dir.join("ca.crt"), &pki.ca).unwrap();
    let r = repo(&c, &domain, "x/y", Access::Push);
    let (m, d) = push_image(&r, "v1", 20).await;
    let got = repo(&c, &domain, "x/y", Access::Pull)
        .get_manifest(d.as_str())
        .await
        .unwrap();
    assert_eq!(got.bytes, m);
}

#[tokio::test]
async fn client_certificate_from_certs_d() {
    let pki = Pki::new();
    let reg = pki.registry(true);
    let domain = format!("registry.test:{}", reg.port);
    let certs = tempfile::tempdir().unwrap();
    let host_dir = certs.path().join(&domain);
    std::fs::create_dir_all(&host_dir).unwrap();
    std::fs::write(host_dir.join("ca.crt"), &pki.ca).unwrap();
    let c = secure_client(certs.path());

    let e = repo(&c, &domain, "x/y", Access::Pull)
        .get_manifest("latest")
        .await
        .unwrap_err();
    assert!(matches!(e, DistributionError::Transport(_)), "{e:?}");

    std::fs::write(host_dir.join("client.cert"), &pki.client_cert).unwrap();
    std::fs::write(host_dir.join("client.key"), &pki.client_key).unwrap();
    let r = repo(&c, &domain, "x/y", Access::Push);
    let (m, _) = push_image(&r, "v1", 21).await;
    assert_eq!(r.get_manifest("v1").await.unwrap().bytes, m);
    // A streamed upload and a download over the same (HTTP/2) connection pool.
    let blob = data(3 * 1024 * 1024 + 5, 23);
    let chunks: Vec<std::io::Result<bytes::Bytes>> = blob
        .chunks(256 * 1024)
        .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
        .collect();
    let (d, size) = r
        .push_blob_stream(futures_util::stream::iter(chunks).boxed())
        .await
        .unwrap();
    assert_eq!((d.clone(), size), (digest(&blob), blob.len() as u64));
    let mut dl = r.get_blob(&d, Some(size)).await.unwrap();
    assert!(collect(&mut dl).await.unwrap() == blob);
}

#[tokio::test]
async fn a_broken_certs_d_is_a_config_error() {
    let pki = Pki::new();
    let reg = pki.registry(false);
    let domain = format!("registry.test:{}", reg.port);
    let certs = tempfile::tempdir().unwrap();
    let host_dir = certs.path().join(&domain);
    std::fs::create_dir_all(&host_dir).unwrap();
    std::fs::write(host_dir.join("ca.crt"), &pki.ca).unwrap();
    std::fs::write(host_dir.join("client.cert"), &pki.client_cert).unwrap();
    let c = secure_client(certs.path());
    let e = repo(&c, &domain, "x/y", Access::Pull)
        .get_manifest("latest")
        .await
        .unwrap_err();
    assert!(matches!(e, DistributionError::Config(_)), "{e:?}");
    assert!(e.to_string().contains("missing key client.key"), "{e}");

    std::fs::write(host_dir.join("client.key"), "not a key").unwrap();
    let e = repo(&c, &domain, "x/y", Access::Pull)
        .get_manifest("latest")
        .await
        .unwrap_err();
    assert!(matches!(e, DistributionError::Config(_)), "{e:?}");
}

/// 127.0.0.0/8 is insecure: HTTPS without verifying the certificate (no CA anywhere), and the
/// certs.d directory is not read.
#[tokio::test]
async fn loopback_registries_skip_verification() {
    let pki = Pki::new();
    let reg = pki.registry(false);
    let (c, _certs) = client();
    for domain in [reg.addr.clone(), format!("localhost:{}", reg.port)] {
        let r = repo(&c, &domain, "x/y", Access::Push);
        let (m, _) = push_image(&r, "v1", 22).await;
        assert_eq!(r.get_manifest("v1").await.unwrap().bytes, m);
    }
}

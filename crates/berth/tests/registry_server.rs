//! `berth registry serve` (the real binary, in a test daemon's network namespace) with
//! skopeo, the reference client: images copied INTO it from a docker-archive that
//! `berth save` made, and OUT of it again (`oci:` and `docker-archive:`, loaded back into the
//! daemon with the same image id); `skopeo inspect`, `list-tags`, `delete`; the same with
//! htpasswd basic auth, with token auth, and over TLS with a self-signed certificate.

use berth_harness::registry::{write_htpasswd, TestRegistry};
use berth_harness::{fails, in_netns, ok, TestDaemon};
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_berth");

struct Setup {
    d: TestDaemon,
    work: tempfile::TempDir,
    archive: PathBuf,
    image_id: String,
}

/// A daemon with busybox, and busybox saved as a docker-archive.
fn setup() -> Setup {
    let d = TestDaemon::with_busybox(BIN).unwrap();
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("busybox.tar");
    ok(&mut d.berth(&["save", "-o", &archive.to_string_lossy(), "busybox:latest"]));
    let image_id = d.inspect("busybox:latest", "{{.Id}}");
    Setup {
        d,
        work,
        archive,
        image_id,
    }
}

/// skopeo in the daemon's namespace (where the registry listens), with no stored
/// credentials of the machine's.
fn skopeo(s: &Setup, args: &[&str]) -> Command {
    let mut all = vec!["skopeo"];
    all.extend_from_slice(args);
    let mut c = in_netns(&s.d.netns, &all);
    c.env("REGISTRY_AUTH_FILE", s.work.path().join("no-auth.json"));
    c
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Copies busybox in, inspects it, lists tags, copies it out both ways and loads the
/// docker-archive back; `creds`/`tls` are skopeo's flags for the registry.
fn round_trip(
    st: &Setup,
    reg: &TestRegistry,
    dest_flags: &[&str],
    src_flags: &[&str],
    flags: &[&str],
) {
    let image = format!("docker://{}/library/busybox:latest", reg.addr);
    let src = format!("docker-archive:{}", s(&st.archive));
    let mut copy_in = vec!["copy"];
    copy_in.extend_from_slice(dest_flags);
    copy_in.extend([src.as_str(), image.as_str()]);
    ok(&mut skopeo(st, &copy_in));

    let mut inspect = vec!["inspect"];
    inspect.extend_from_slice(flags);
    inspect.push(&image);
    let v: serde_json::Value = serde_json::from_str(&ok(&mut skopeo(st, &inspect))).unwrap();
    assert_eq!(v["RepoTags"], serde_json::json!(["latest"]), "{v}");
    assert_eq!(v["Os"], "linux");
    let digest = v["Digest"].as_str().unwrap().to_string();

    let repo = format!("docker://{}/library/busybox", reg.addr);
    let mut tags = vec!["list-tags"];
    tags.extend_from_slice(flags);
    tags.push(&repo);
    let v: serde_json::Value = serde_json::from_str(&ok(&mut skopeo(st, &tags))).unwrap();
    assert_eq!(v["Tags"], serde_json::json!(["latest"]));

    // Out again: an OCI layout and a docker-archive.
    let layout = st
        .work
        .path()
        .join(format!("oci-{}", reg.addr.replace(':', "-")));
    let oci = format!("oci:{}:busybox", s(&layout));
    let by_digest = format!("docker://{}/library/busybox@{digest}", reg.addr);
    let mut copy_out = vec!["copy"];
    copy_out.extend_from_slice(src_flags);
    copy_out.extend([by_digest.as_str(), oci.as_str()]);
    ok(&mut skopeo(st, &copy_out));
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1);

    let out_tar = st
        .work
        .path()
        .join(format!("out-{}.tar", reg.addr.replace(':', "-")));
    let dest = format!("docker-archive:{}:copied:latest", s(&out_tar));
    let mut copy_out = vec!["copy"];
    copy_out.extend_from_slice(src_flags);
    copy_out.extend([image.as_str(), dest.as_str()]);
    ok(&mut skopeo(st, &copy_out));
    ok(&mut st.d.berth(&["load", "-i", &s(&out_tar)]));
    assert_eq!(st.d.inspect("copied:latest", "{{.Id}}"), st.image_id);
}

#[test]
fn skopeo_copies_into_and_out_of_berths_registry() {
    let st = setup();
    let reg = TestRegistry::berth(Path::new(BIN), &st.d.netns, 5000, &[]).unwrap();
    let insecure = ["--dest-tls-verify=false"];
    round_trip(
        &st,
        &reg,
        &insecure,
        &["--src-tls-verify=false"],
        &["--tls-verify=false"],
    );

    // A second tag, then delete by tag's digest (skopeo delete resolves the tag).
    let image = format!("docker://{}/library/busybox:latest", reg.addr);
    let other = format!("docker://{}/other/busybox:v2", reg.addr);
    ok(&mut skopeo(
        &st,
        &[
            "copy",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            &image,
            &other,
        ],
    ));
    ok(&mut skopeo(&st, &["delete", "--tls-verify=false", &image]));
    let err = fails(&mut skopeo(&st, &["inspect", "--tls-verify=false", &image]));
    assert!(err.contains("manifest unknown"), "{err}");
    // The copy in the other repository is untouched.
    ok(&mut skopeo(&st, &["inspect", "--tls-verify=false", &other]));
    assert!(reg.root.path().join("store/content/blobs/sha256").is_dir());
}

#[test]
fn skopeo_with_htpasswd_basic_auth() {
    let st = setup();
    let pw = write_htpasswd(st.work.path(), "u").unwrap();
    let reg =
        TestRegistry::berth(Path::new(BIN), &st.d.netns, 5000, &["--htpasswd", &s(&pw)]).unwrap();
    let image = format!("docker://{}/library/busybox:latest", reg.addr);
    let src = format!("docker-archive:{}", s(&st.archive));
    let err = fails(&mut skopeo(
        &st,
        &["copy", "--dest-tls-verify=false", &src, &image],
    ));
    assert!(
        err.contains("unauthorized") || err.contains("authentication required"),
        "{err}"
    );
    let err = fails(&mut skopeo(
        &st,
        &[
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            "u:wrong",
            &src,
            &image,
        ],
    ));
    assert!(
        err.contains("unauthorized") || err.contains("authentication required"),
        "{err}"
    );
    round_trip(
        &st,
        &reg,
        &["--dest-tls-verify=false", "--dest-creds", "u:secret"],
        &["--src-tls-verify=false", "--src-creds", "u:secret"],
        &["--tls-verify=false", "--creds", "u:secret"],
    );
    ok(&mut skopeo(
        &st,
        &[
            "delete",
            "--tls-verify=false",
            "--creds",
            "u:secret",
            &image,
        ],
    ));
}

#[test]
fn skopeo_with_token_auth() {
    let st = setup();
    let pw = write_htpasswd(st.work.path(), "u").unwrap();
    let reg = TestRegistry::berth(
        Path::new(BIN),
        &st.d.netns,
        5000,
        &["--htpasswd", &s(&pw), "--token"],
    )
    .unwrap();
    let image = format!("docker://{}/library/busybox:latest", reg.addr);
    let src = format!("docker-archive:{}", s(&st.archive));
    // Anonymous: the token service answers, the registry denies.
    let err = fails(&mut skopeo(
        &st,
        &["copy", "--dest-tls-verify=false", &src, &image],
    ));
    assert!(
        err.contains("denied")
            || err.contains("unauthorized")
            || err.contains("authentication required"),
        "{err}"
    );
    round_trip(
        &st,
        &reg,
        &["--dest-tls-verify=false", "--dest-creds", "u:secret"],
        &["--src-tls-verify=false", "--src-creds", "u:secret"],
        &["--tls-verify=false", "--creds", "u:secret"],
    );
    ok(&mut skopeo(
        &st,
        &[
            "delete",
            "--tls-verify=false",
            "--creds",
            "u:secret",
            &image,
        ],
    ));
    let err = fails(&mut skopeo(
        &st,
        &[
            "inspect",
            "--tls-verify=false",
            "--creds",
            "u:secret",
            &image,
        ],
    ));
    assert!(err.contains("manifest unknown"), "{err}");
}

#[test]
fn skopeo_over_tls_with_a_self_signed_certificate() {
    let st = setup();
    let (cert, key) = (
        st.work.path().join("cert.pem"),
        st.work.path().join("key.pem"),
    );
    ok(Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert));
    // containers/image's cert dir: *.crt files are trusted roots.
    let certs = st.work.path().join("certs.d");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::copy(&cert, certs.join("ca.crt")).unwrap();
    let reg = TestRegistry::berth(
        Path::new(BIN),
        &st.d.netns,
        5443,
        &["--tls-cert", &s(&cert), "--tls-key", &s(&key)],
    )
    .unwrap();
    let image = format!("docker://{}/library/busybox:latest", reg.addr);
    let src = format!("docker-archive:{}", s(&st.archive));
    // Not trusted without the certificate.
    let err = fails(&mut skopeo(&st, &["copy", &src, &image]));
    assert!(err.contains("certificate"), "{err}");
    let dir = s(&certs);
    round_trip(
        &st,
        &reg,
        &["--dest-cert-dir", &dir],
        &["--src-cert-dir", &dir],
        &["--cert-dir", &dir],
    );
}

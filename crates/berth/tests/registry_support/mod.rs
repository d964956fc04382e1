//! What the registry tests share: raw API calls with curl over the daemon's socket, direct
//! registry access (curl in the daemon's netns), image pieces built by hand, and a
//! docker-registry that can be stopped and started again over the same storage.

#![allow(dead_code)]

use base64::Engine as _;
use berth_harness::{in_netns, TestDaemon};
use sha2::Digest as _;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A raw API request: (status, body). `headers` are `Name: value` strings.
pub fn api(
    d: &TestDaemon,
    method: &str,
    path: &str,
    headers: &[String],
    body: Option<&[u8]>,
) -> (u16, String) {
    let mut c = Command::new("curl");
    c.args([
        "-s",
        "-N",
        "--max-time",
        "120",
        "-X",
        method,
        "-w",
        "\n%{http_code}",
    ])
    .arg("--unix-socket")
    .arg(&d.socket);
    for h in headers {
        c.args(["-H", h]);
    }
    let tmp = tempfile::NamedTempFile::new().unwrap();
    if let Some(b) = body {
        std::fs::write(tmp.path(), b).unwrap();
        c.args(["-H", "Content-Type: application/json", "--data-binary"])
            .arg(format!("@{}", tmp.path().display()));
    }
    c.arg(format!("http://berth{path}"));
    let out = c.output().expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// The objects of a JSON progress stream.
pub fn messages(body: &str) -> Vec<serde_json::Value> {
    body.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

/// The `status` strings of a stream, in order.
pub fn statuses(msgs: &[serde_json::Value]) -> Vec<String> {
    msgs.iter()
        .filter_map(|m| m["status"].as_str().map(str::to_string))
        .collect()
}

/// `X-Registry-Auth: …` for basic credentials (base64url, as the docker CLI sends it).
pub fn auth_header(user: &str, password: &str, server: &str) -> String {
    let json = serde_json::json!({"username": user, "password": password, "serveraddress": server});
    format!(
        "X-Registry-Auth: {}",
        base64::engine::general_purpose::URL_SAFE.encode(json.to_string())
    )
}

/// `n` incompressible bytes.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    std::io::Read::read_exact(
        &mut std::fs::File::open("/dev/urandom").expect("open /dev/urandom"),
        &mut b,
    )
    .expect("read /dev/urandom");
    b
}

pub fn sha256(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(b)))
}

pub fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

/// zstd through the zstd CLI, as a user would make such a layer.
pub fn zstd(b: &[u8]) -> Vec<u8> {
    let mut child = Command::new("zstd")
        .args(["-q", "-c", "-3"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("zstd CLI");
    let mut stdin = child.stdin.take().unwrap();
    let input = b.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success());
    out.stdout
}

/// A layer tar of regular files.
pub fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap()
}

/// The host's architecture as image configs name it.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// An image config over `diff_ids`.
pub fn config_json(arch: &str, diff_ids: &[String], cmd: &[&str]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "architecture": arch,
        "os": "linux",
        "config": {"Cmd": cmd, "Env": ["PATH=/bin:/usr/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": diff_ids.iter().map(|_| serde_json::json!({"created_by": "test"})).collect::<Vec<_>>(),
    }))
    .unwrap()
}

/// A manifest naming a config and layers (`(media type, blob)` each).
pub fn manifest_json(
    media_type: &str,
    config_type: &str,
    config: &[u8],
    layers: &[(&str, &[u8])],
) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {"mediaType": config_type, "digest": sha256(config), "size": config.len()},
        "layers": layers.iter().map(|(mt, b)| serde_json::json!({
            "mediaType": mt, "digest": sha256(b), "size": b.len()
        })).collect::<Vec<_>>(),
    }))
    .unwrap()
}

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const OCI_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// curl inside the daemon's network namespace (where the registry listens).
pub fn reg_curl(d: &TestDaemon, args: &[&str]) -> Output {
    let mut all = vec!["curl", "-s", "--max-time", "60"];
    all.extend_from_slice(args);
    in_netns(&d.netns, &all).output().expect("curl")
}

/// Uploads a blob monolithically (POST, then PUT ?digest=); returns its digest.
pub fn upload_blob(d: &TestDaemon, port: u16, repo: &str, bytes: &[u8]) -> String {
    let digest = sha256(bytes);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), bytes).unwrap();
    let head = reg_curl(
        d,
        &[
            "-i",
            "-X",
            "POST",
            &format!("http://127.0.0.1:{port}/v2/{repo}/blobs/uploads/"),
        ],
    );
    let head = String::from_utf8_lossy(&head.stdout).into_owned();
    let loc = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("location")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no upload location: {head}"));
    let loc = if loc.starts_with("http") {
        loc
    } else {
        format!("http://127.0.0.1:{port}{loc}")
    };
    let sep = if loc.contains('?') { '&' } else { '?' };
    let put = reg_curl(
        d,
        &[
            "-f",
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            &format!("@{}", file.path().display()),
            &format!("{loc}{sep}digest={digest}"),
        ],
    );
    assert!(put.status.success(), "upload of {digest} failed");
    digest
}

/// PUTs a manifest (or index) under `reference`.
pub fn put_manifest(
    d: &TestDaemon,
    port: u16,
    repo: &str,
    reference: &str,
    media_type: &str,
    bytes: &[u8],
) {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), bytes).unwrap();
    let out = reg_curl(
        d,
        &[
            "-f",
            "-X",
            "PUT",
            "-H",
            &format!("Content-Type: {media_type}"),
            "--data-binary",
            &format!("@{}", file.path().display()),
            &format!("http://127.0.0.1:{port}/v2/{repo}/manifests/{reference}"),
        ],
    );
    assert!(
        out.status.success(),
        "manifest PUT failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// GET of a registry path (a manifest, with every accepted type): (content type, body).
pub fn get_manifest(d: &TestDaemon, port: u16, repo: &str, reference: &str) -> (String, Vec<u8>) {
    let out = reg_curl(
        d,
        &[
            "-f",
            "-D",
            "/dev/stderr",
            "-H",
            "Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.index.v1+json",
            &format!("http://127.0.0.1:{port}/v2/{repo}/manifests/{reference}"),
        ],
    );
    assert!(out.status.success(), "manifest GET failed");
    let head = String::from_utf8_lossy(&out.stderr);
    let ct = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    (ct, out.stdout)
}

/// Blobs in the daemon's content store and extracted layers: what a failed pull must not add.
pub fn stored(d: &TestDaemon) -> (Vec<String>, Vec<String>) {
    let list = |p: PathBuf| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(p)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    (
        list(d.data_root.join("content/blobs/sha256")),
        list(d.data_root.join("layers")),
    )
}

/// Debian's docker-registry in the daemon's netns over storage that outlives it (stop it,
/// start it again: the content is still there).
pub struct OwnRegistry {
    netns: PathBuf,
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Option<Child>,
    /// How often it has said it listens (the log is appended to across restarts).
    starts: usize,
}

impl OwnRegistry {
    pub fn new(netns: &Path, port: u16) -> OwnRegistry {
        let dir = tempfile::Builder::new()
            .prefix("berth-own-registry-")
            .tempdir()
            .unwrap();
        let cfg = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}/data\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().display()
        );
        std::fs::write(dir.path().join("config.yml"), cfg).unwrap();
        let mut r = OwnRegistry {
            netns: netns.to_path_buf(),
            port,
            dir,
            child: None,
            starts: 0,
        };
        r.start();
        r
    }

    pub fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("registry.log"))
            .unwrap();
        let cfg = self.dir.path().join("config.yml");
        let child = in_netns(&self.netns, &["/usr/bin/docker-registry", "serve"])
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        // Its own word, not a socket table: before nsenter has switched namespaces, /proc
        // shows the host's sockets, where another registry may hold the port.
        let needle = format!("listening on 127.0.0.1:{}", self.port);
        let log = self.dir.path().join("registry.log");
        let seen = || {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .matches(&needle)
                .count()
        };
        let before = self.starts;
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if seen() > before {
                self.starts += 1;
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("own registry did not listen on {}", self.port);
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Where the registry keeps a blob's bytes (distribution's filesystem layout).
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for OwnRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Slows the daemon's loopback (where it meets the registry) so that a transfer lasts long
/// enough to be interrupted.
pub fn throttle_loopback(d: &TestDaemon, rate: &str) {
    let out = d
        // The bucket holds several of loopback's 64 KiB packets: a smaller one drops them all.
        .in_host_netns(&[
            "tc", "qdisc", "add", "dev", "lo", "root", "tbf", "rate", rate, "burst", "512kb",
            "latency", "200ms",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tc: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn unthrottle_loopback(d: &TestDaemon) {
    let _ = d
        .in_host_netns(&["tc", "qdisc", "del", "dev", "lo", "root"])
        .output();
}

//! Images: import (tar, gz, zst, stdin), images/filters, inspect, history, tag, rmi,
//! save/load round trips, and hostile archives.

use berth_harness::{busybox_tar, ok, output, TestDaemon};
use std::io::Write;
use std::process::Stdio;

const BIN: &str = env!("CARGO_BIN_EXE_berth");

fn compress(cmd: &str, src: &std::path::Path, dst: &std::path::Path) {
    let st = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{cmd} < '{}' > '{}'", src.display(), dst.display()))
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn import_list_inspect_tag_rmi() {
    let d = TestDaemon::start(BIN).unwrap();
    let id = d.import_busybox().unwrap();
    assert!(id.starts_with("sha256:"), "{id}");

    // gzip from a file with --change and --message, zstd from stdin through our CLI.
    let gz = d.dir.path().join("bb.tar.gz");
    compress("gzip -1", busybox_tar(), &gz);
    ok(&mut d.docker(&[
        "import",
        "-c",
        "CMD [\"sh\"]",
        "-c",
        "ENV A=1",
        "-m",
        "from gz",
        &gz.to_string_lossy(),
        "bb:gz",
    ]));
    let zst = d.dir.path().join("bb.tar.zst");
    compress(
        "zstd -q -1 2>/dev/null || python3 -c 'import sys;sys.exit(1)'",
        busybox_tar(),
        &zst,
    );
    if std::fs::metadata(&zst)
        .map(|m| m.len() > 0)
        .unwrap_or(false)
    {
        let mut child = d
            .berth(&["import", "-", "bb:zst"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(&std::fs::read(&zst).unwrap())
            .unwrap();
        assert!(child.wait_with_output().unwrap().status.success());
    }

    let out = ok(&mut d.docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"]));
    assert!(
        out.contains("busybox:latest") && out.contains("bb:gz"),
        "{out}"
    );
    let out = ok(&mut d.docker(&[
        "images",
        "--filter",
        "reference=bb*",
        "--format",
        "{{.Repository}}:{{.Tag}}",
    ]));
    assert!(!out.contains("busybox"), "{out}");
    let out = ok(&mut d.docker(&[
        "image",
        "inspect",
        "bb:gz",
        "--format",
        "{{json .Config.Cmd}} {{.Config.Env}} {{.Os}} {{.Comment}}",
    ]));
    assert!(
        out.contains("[\"sh\"]") && out.contains("A=1") && out.contains("linux"),
        "{out}"
    );
    assert!(out.contains("from gz"), "{out}");
    let hist = ok(&mut d.docker(&["history", "busybox"]));
    assert!(hist.contains("IMAGE"), "{hist}");

    ok(&mut d.docker(&["tag", "busybox", "me/bb:1"]));
    let out = ok(&mut d.docker(&["image", "inspect", "me/bb:1", "--format", "{{.Id}}"]));
    assert_eq!(out.trim(), id);
    let out = ok(&mut d.docker(&["rmi", "me/bb:1"]));
    assert!(out.contains("Untagged: me/bb:1"), "{out}");

    // In use by a container: rmi refuses without -f.
    ok(&mut d.docker(&["create", "--name", "user", "bb:gz"]));
    let o = output(&mut d.docker(&["rmi", "bb:gz"]));
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("conflict"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    ok(&mut d.docker(&["rm", "user"]));
    let out = ok(&mut d.docker(&["rmi", "bb:gz"]));
    assert!(out.contains("Deleted: sha256:"), "{out}");

    // Invalid references are refused with Docker's wording.
    let o = output(&mut d.docker(&["tag", "busybox", "UPPER/case"]));
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("invalid reference format"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let (status, _, _) =
        berth_harness::http(&d.socket, "GET", "/images/a@sha256:zz/json", None).unwrap();
    assert!(status == 400 || status == 404, "{status}");
}

#[test]
fn save_load_round_trip() {
    let a = TestDaemon::start(BIN).unwrap();
    let id = a.import_busybox().unwrap();
    ok(&mut a.docker(&["tag", "busybox", "keep:me"]));
    let archive = a.dir.path().join("saved.tar");
    ok(&mut a.docker(&[
        "save",
        "-o",
        &archive.to_string_lossy(),
        "busybox",
        "keep:me",
    ]));
    let listing = ok(std::process::Command::new("tar").arg("tf").arg(&archive));
    for f in ["manifest.json", "index.json", "oci-layout"] {
        assert!(listing.contains(f), "{f} missing from {listing}");
    }

    let b = TestDaemon::start(BIN).unwrap();
    let out = ok(&mut b.docker(&["load", "-i", &archive.to_string_lossy()]));
    assert!(out.contains("Loaded image: busybox:latest"), "{out}");
    let out = ok(&mut b.docker(&["image", "inspect", "keep:me", "--format", "{{.Id}}"]));
    assert_eq!(out.trim(), id, "ids survive save/load");
    let out = ok(&mut b.docker(&["run", "--rm", "keep:me", "echo", "loaded"]));
    assert_eq!(out.trim(), "loaded");
    // Our CLI saves to stdout when redirected.
    let o = output(b.berth(&["save", "busybox"]).stdout(Stdio::piped()));
    assert!(o.status.success() && o.stdout.len() > 1_000_000);
}

fn tar_with(entries: &[(&str, &[u8], u8, Option<&str>)]) -> Vec<u8> {
    // Hand-made ustar: the tar crate refuses to write hostile paths.
    let mut out = Vec::new();
    for (name, data, kind, link) in entries {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..107].copy_from_slice(b"0000644");
        h[108..115].copy_from_slice(b"0000000");
        h[116..123].copy_from_slice(b"0000000");
        let size = format!("{:011o}", data.len());
        h[124..135].copy_from_slice(size.as_bytes());
        h[136..147].copy_from_slice(b"00000000000");
        h[156] = *kind;
        if let Some(l) = link {
            h[157..157 + l.len()].copy_from_slice(l.as_bytes());
        }
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|b| *b as u32).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

#[test]
fn hostile_archives_change_nothing() {
    let d = TestDaemon::start(BIN).unwrap();
    let victim = d.dir.path().join("victim");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "dotdot",
            tar_with(&[("../../../../victim", b"x", b'0', None)]),
        ),
        (
            "absolute",
            tar_with(&[("/etc/berth-evil", b"x", b'0', None)]),
        ),
        (
            "symlink escape",
            tar_with(&[
                ("esc", b"", b'2', Some("/tmp")),
                ("esc/berth-evil", b"x", b'0', None),
            ]),
        ),
        (
            "hardlink out",
            tar_with(&[("h", b"", b'1', Some("../../../../etc/passwd"))]),
        ),
        (
            "not a tar",
            b"hello, this is not an archive at all".repeat(20),
        ),
    ];
    for (what, body) in cases {
        let path = d.dir.path().join("evil.tar");
        std::fs::write(&path, &body).unwrap();
        let o = output(&mut d.docker(&[
            "import",
            &path.to_string_lossy(),
            &format!("evil:{}", what.replace(' ', "-")),
        ]));
        assert!(!o.status.success(), "{what} was accepted");
        assert!(d.ping(), "daemon died on {what}");
    }
    // A truncated gzip stream.
    let gz = d.dir.path().join("bb.tar.gz");
    compress("gzip -1", busybox_tar(), &gz);
    let bytes = std::fs::read(&gz).unwrap();
    std::fs::write(&gz, &bytes[..bytes.len() / 2]).unwrap();
    let o = output(&mut d.docker(&["import", &gz.to_string_lossy(), "evil:truncated"]));
    assert!(!o.status.success(), "truncated archive accepted");
    assert!(!victim.exists());
    assert!(!std::path::Path::new("/etc/berth-evil").exists());
    assert!(!std::path::Path::new("/tmp/berth-evil").exists());
    let out = ok(&mut d.docker(&["images", "-q"]));
    assert!(out.trim().is_empty(), "nothing was stored: {out}");
    let layers = std::fs::read_dir(d.data_root.join("layers"))
        .map(|r| r.count())
        .unwrap_or(0);
    assert_eq!(layers, 0, "no layer left behind");
}

/// Archives written by other engines (Docker 20.10's legacy `docker save`, Podman 4's
/// docker-archive and oci-archive) load with their ids, tags and config intact.
#[test]
fn loads_archives_saved_by_docker_and_podman() {
    let d = TestDaemon::start(BIN).unwrap();
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for (file, tag, id) in [
        (
            "docker-20.10-save.tar",
            "fixture/tiny:docker",
            "b4078a8c6c2f",
        ),
        (
            "podman-4-docker-archive.tar",
            "localhost/fixture/tiny:podman",
            "6c8025eb5110",
        ),
        (
            "podman-4-oci-archive.tar",
            "localhost/fixture/tiny:podman",
            "6c8025eb5110",
        ),
    ] {
        let out = ok(&mut d.docker(&["load", "-i", &fixtures.join(file).to_string_lossy()]));
        assert!(
            out.contains(&format!("Loaded image: {tag}")),
            "{file}: {out}"
        );
        let fields = ok(&mut d.docker(&[
            "image",
            "inspect",
            tag,
            "--format",
            "{{.Id}} {{json .Config.Cmd}}",
        ]));
        assert!(
            fields.starts_with(&format!("sha256:{id}")),
            "{file}: {fields}"
        );
        assert!(fields.contains("[\"/hello.txt\"]"), "{file}: {fields}");
    }
}

//! Container file systems through the real docker CLI and ours: cp both ways (files, dirs,
//! `/.` contents, `-` tar streams) on running and stopped containers, symlinks that must not
//! reach the host, hostile uploads, export, diff and commit.

use berth_harness::{fails, http, ok, output, with_stdin, TestDaemon};
use std::path::Path;

const BIN: &str = env!("CARGO_BIN_EXE_berth");

fn tar_names(bytes: &[u8]) -> Vec<String> {
    let mut a = tar::Archive::new(bytes);
    a.entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect()
}

fn one_file_tar(name: &str, data: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, name, data).unwrap();
    b.into_inner().unwrap()
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn cp_files_dirs_contents_and_streams_on_running_and_stopped() {
    let d = TestDaemon::with_busybox(BIN).unwrap();
    let host = tempfile::tempdir().unwrap();
    let src = host.path().join("src");
    std::fs::create_dir_all(src.join("d/sub")).unwrap();
    std::fs::write(src.join("f.txt"), b"hello file").unwrap();
    std::fs::write(src.join("d/a"), b"A").unwrap();
    std::fs::write(src.join("d/.hidden"), b"H").unwrap();
    std::fs::write(src.join("d/sub/b"), b"B").unwrap();
    for which in ["docker", "berth"] {
        let c = d.cli(which);
        let running = format!("run-{which}");
        let stopped = format!("stopped-{which}");
        ok(&mut c(&[
            "run", "-d", "--name", &running, "busybox", "sleep", "1000",
        ]));
        ok(&mut c(&["create", "--name", &stopped, "busybox", "true"]));
        for ctr in [&running, &stopped] {
            let out = host.path().join(format!("out-{ctr}"));
            std::fs::create_dir_all(&out).unwrap();
            let s = |p: &str| src.join(p).to_string_lossy().into_owned();
            let o = |p: &str| out.join(p).to_string_lossy().into_owned();
            let at = |p: &str| format!("{ctr}:{p}");

            // A file into an existing directory, and back under a new name.
            ok(&mut c(&["cp", &s("f.txt"), &at("/tmp/")]));
            ok(&mut c(&["cp", &at("/tmp/f.txt"), &o("f2")]));
            assert_eq!(read(&out.join("f2")), "hello file", "{which} {ctr}");
            // A directory to a new name, and back into an existing directory.
            ok(&mut c(&["cp", &s("d"), &at("/tmp/d")]));
            ok(&mut c(&["cp", &at("/tmp/d"), &o("")]));
            assert_eq!(read(&out.join("d/sub/b")), "B", "{which} {ctr}");
            assert_eq!(read(&out.join("d/.hidden")), "H", "{which} {ctr}");
            // `/.` copies the contents.
            ok(&mut c(&["cp", &at("/tmp/d/."), &o("contents")]));
            assert_eq!(read(&out.join("contents/a")), "A", "{which} {ctr}");
            assert_eq!(read(&out.join("contents/.hidden")), "H", "{which} {ctr}");
            ok(&mut c(&["cp", &s("d/."), &at("/tmp/merged")]));
            ok(&mut c(&["cp", &at("/tmp/merged/sub/b"), &o("b")]));
            assert_eq!(read(&out.join("b")), "B", "{which} {ctr}");
            // Tar streams on stdout and stdin.
            let t = c(&["cp", &at("/etc/passwd"), "-"]).output().unwrap();
            assert!(t.status.success(), "{}", String::from_utf8_lossy(&t.stderr));
            assert_eq!(tar_names(&t.stdout), vec!["passwd"], "{which} {ctr}");
            let r = with_stdin(
                &mut c(&["cp", "-", &at("/tmp")]),
                &one_file_tar("stdin.txt", b"via stdin"),
            );
            assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
            ok(&mut c(&["cp", &at("/tmp/stdin.txt"), &o("stdin.txt")]));
            assert_eq!(read(&out.join("stdin.txt")), "via stdin");
            // Errors as docker words them.
            let e = fails(&mut c(&["cp", &at("/nope"), &o("x")]));
            assert!(e.contains("/nope"), "{which}: {e}");
            assert!(!out.join("x").exists());
        }
    }
    // A stopped container's rootfs is released after each copy.
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    let stopped_id = ok(&mut d.docker(&["inspect", "-f", "{{.Id}}", "stopped-docker"]));
    assert!(!mounts.contains(stopped_id.trim()), "rootfs left mounted");
}

#[test]
fn symlinks_in_the_container_never_reach_the_host() {
    let d = TestDaemon::with_busybox(BIN).unwrap();
    let host = tempfile::tempdir().unwrap();
    let secret_dir = host.path().join("secret");
    std::fs::create_dir_all(&secret_dir).unwrap();
    std::fs::write(secret_dir.join("marker"), b"HOST SECRET").unwrap();
    let hs = secret_dir.to_string_lossy().into_owned();
    let script = format!(
        "ln -s /etc /tmp/etc-link; ln -s {hs} /tmp/abs; ln -s ../../../../../../../..{hs} /tmp/rel; mkdir -p {hs}; echo inside > {hs}/marker; sleep 1000"
    );
    ok(&mut d.docker(&[
        "run", "-d", "--name", "links", "busybox", "sh", "-c", &script,
    ]));
    std::thread::sleep(std::time::Duration::from_millis(500));
    // The stat header: Go's mode bits and the link resolved inside the container.
    let (status, head, _) = http(
        &d.socket,
        "HEAD",
        "/v1.43/containers/links/archive?path=/tmp/rel",
        None,
    )
    .unwrap();
    assert_eq!(status, 200);
    let b64 = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.eq_ignore_ascii_case("x-docker-container-path-stat")).then(|| v.trim().to_string())
        })
        .expect("stat header");
    use base64::Engine as _;
    let stat: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(stat["name"], "rel");
    assert_eq!(stat["linkTarget"], hs.as_str());
    assert_ne!(stat["mode"].as_u64().unwrap() & (1 << 27), 0, "{stat}");
    let (status, _, body) = http(
        &d.socket,
        "GET",
        "/v1.43/containers/links/archive?path=/nope",
        None,
    )
    .unwrap();
    assert_eq!(status, 404);
    assert!(
        String::from_utf8_lossy(&body).contains("Could not find the file /nope in container links")
    );
    for which in ["docker", "berth"] {
        let c = d.cli(which);
        let out = host.path().join(format!("out-{which}"));
        std::fs::create_dir_all(&out).unwrap();
        let o = |p: &str| out.join(p).to_string_lossy().into_owned();
        for link in ["/tmp/abs/marker", "/tmp/rel/marker"] {
            ok(&mut c(&["cp", &format!("links:{link}"), &o("m")]));
            assert_eq!(read(&out.join("m")), "inside\n", "{which} {link}");
        }
        ok(&mut c(&["cp", "links:/tmp/etc-link/passwd", &o("passwd")]));
        assert!(read(&out.join("passwd")).starts_with("root:x:0:0:root:/root:/bin/sh"));
        // -L copies what the link points to, inside the container.
        ok(&mut c(&["cp", "-L", "links:/tmp/abs", &o("followed")]));
        assert_eq!(read(&out.join("followed/marker")), "inside\n", "{which}");
        // Writes through the links land in the container's directory.
        let f = host.path().join("payload");
        std::fs::write(&f, b"payload").unwrap();
        ok(&mut c(&["cp", &f.to_string_lossy(), "links:/tmp/abs/"]));
        ok(&mut c(&[
            "cp",
            &f.to_string_lossy(),
            "links:/tmp/rel/written",
        ]));
        assert!(
            !secret_dir.join("payload").exists(),
            "{which} wrote to the host"
        );
        assert!(
            !secret_dir.join("written").exists(),
            "{which} wrote to the host"
        );
        assert_eq!(read(&secret_dir.join("marker")), "HOST SECRET");
        ok(&mut c(&[
            "cp",
            &format!("links:{hs}/written"),
            &o("written"),
        ]));
        assert_eq!(read(&out.join("written")), "payload");
    }
}

/// A tar header with a raw name, which `tar::Builder` would refuse to write.
fn raw_entry(name: &str, kind: tar::EntryType, link: &str, data: &[u8]) -> Vec<u8> {
    let mut h = tar::Header::new_old();
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(data.len() as u64);
    h.set_entry_type(kind);
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

#[test]
fn hostile_uploads_are_refused_or_confined() {
    let d = TestDaemon::with_busybox(BIN).unwrap();
    ok(&mut d.docker(&["run", "-d", "--name", "tt", "busybox", "sleep", "1000"]));
    let host = tempfile::tempdir().unwrap();
    let escape = host.path().join("escaped");
    let put = |tar: Vec<u8>, path: &str| {
        http(
            &d.socket,
            "PUT",
            &format!("/v1.43/containers/tt/archive?path={path}"),
            Some(&tar),
        )
        .unwrap()
    };
    let end = vec![0u8; 1024];
    // `../` entries: the whole upload is refused, nothing is written.
    let mut t = raw_entry("first", tar::EntryType::Regular, "", b"1");
    let depth = "../".repeat(20);
    let name = format!(
        "{depth}{}",
        escape.to_string_lossy().trim_start_matches('/')
    );
    t.extend(raw_entry(&name, tar::EntryType::Regular, "", b"x"));
    t.extend(&end);
    let (status, _, body) = put(t, "/tmp");
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    assert!(!escape.exists());
    let s = output(&mut d.docker(&["cp", "tt:/tmp/first", "-"]));
    assert!(!s.status.success(), "a refused upload left files behind");
    // A symlink to the host followed by an entry through it.
    let mut t = raw_entry(
        "evil",
        tar::EntryType::Symlink,
        &host.path().to_string_lossy(),
        b"",
    );
    t.extend(raw_entry("evil/escaped", tar::EntryType::Regular, "", b"x"));
    t.extend(&end);
    let (status, _, _) = put(t, "/tmp");
    assert!(status >= 400, "{status}");
    assert!(!escape.exists());
    // Absolute names are confined to the target directory.
    let mut t = raw_entry("/abs.txt", tar::EntryType::Regular, "", b"abs");
    t.extend(&end);
    let (status, _, body) = put(t, "/tmp");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let s = output(&mut d.docker(&["cp", "tt:/tmp/abs.txt", "-"]));
    assert_eq!(tar_names(&s.stdout), vec!["abs.txt"]);
    // Missing target, file target, read-only rootfs.
    let (status, _, body) = put(one_file_tar("a", b"a"), "/nope");
    assert_eq!(status, 404, "{}", String::from_utf8_lossy(&body));
    let (status, _, _) = put(one_file_tar("a", b"a"), "/etc/passwd");
    assert_eq!(status, 400);
    let (status, head, _) = http(
        &d.socket,
        "HEAD",
        "/v1.43/containers/tt/archive?path=/etc/passwd",
        None,
    )
    .unwrap();
    assert_eq!(status, 200);
    assert!(
        head.to_ascii_lowercase()
            .contains("x-docker-container-path-stat"),
        "{head}"
    );
    ok(&mut d.docker(&["create", "--name", "ro", "--read-only", "busybox", "true"]));
    let f = host.path().join("f");
    std::fs::write(&f, b"f").unwrap();
    for which in ["docker", "berth"] {
        let e = fails(&mut d.cli(which)(&["cp", &f.to_string_lossy(), "ro:/tmp/"]));
        assert!(e.contains("marked read-only"), "{which}: {e}");
    }
}

#[test]
fn export_diff_and_commit() {
    let d = TestDaemon::with_busybox(BIN).unwrap();
    ok(&mut d.docker(&[
        "run",
        "-d",
        "--name",
        "ww",
        "busybox",
        "sh",
        "-c",
        "echo new > /newfile; rm /bin/vi; echo changed >> /etc/group; sleep 1000",
    ]));
    std::thread::sleep(std::time::Duration::from_millis(500));
    for which in ["docker", "berth"] {
        let c = d.cli(which);
        let diff = ok(&mut c(&["diff", "ww"]));
        for line in ["A /newfile", "D /bin/vi", "C /bin", "C /etc/group"] {
            assert!(
                diff.lines().any(|l| l == line),
                "{which}: {line} missing in\n{diff}"
            );
        }
        assert!(
            !diff.contains("/etc/hosts") && !diff.contains("/dev"),
            "{which}: {diff}"
        );

        let out = tempfile::tempdir().unwrap();
        let file = out.path().join("w.tar");
        ok(&mut c(&["export", "-o", &file.to_string_lossy(), "ww"]));
        let names = tar_names(&std::fs::read(&file).unwrap());
        assert!(names.iter().any(|n| n == "bin/busybox"), "{which}");
        assert!(names.iter().any(|n| n == "newfile"), "{which}");
        assert!(!names.iter().any(|n| n == "bin/vi"), "{which}");

        let tag = format!("committed-{which}:v1");
        let id = ok(&mut c(&[
            "commit",
            "-c",
            "CMD [\"echo\",\"hi\"]",
            "-m",
            "my message",
            "-a",
            "me <me@x>",
            "ww",
            &tag,
        ]));
        assert!(id.trim().starts_with("sha256:"), "{which}: {id}");
        let run = ok(&mut c(&["run", "--rm", &tag]));
        assert_eq!(run, "hi\n", "{which}");
        let cat = ok(&mut c(&["run", "--rm", &tag, "cat", "/newfile"]));
        assert_eq!(cat, "new\n");
        let gone = output(&mut c(&["run", "--rm", &tag, "ls", "/bin/vi"]));
        assert!(
            !gone.status.success(),
            "{which}: /bin/vi survived the commit"
        );
        let hist = ok(&mut c(&["history", "--no-trunc", &tag]));
        assert!(hist.contains("my message"), "{which}: {hist}");
        let author = ok(&mut c(&["inspect", "-f", "{{.Author}}", &tag]));
        assert_eq!(author.trim(), "me <me@x>");
    }
}

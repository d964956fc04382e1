//! BuildKit's instruction flags in the classic builder, through `DOCKER_BUILDKIT=0 docker
//! build`: `RUN --mount` / `--network`, `COPY --exclude/--parents/--link`, `ADD --checksum`,
//! ADD of a URL and a remote (URL) build context. Fixtures live in tests/fixtures/build/.

use berth_harness::{ok, output, TestDaemon};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_berth");

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/build")
        .join(name)
}

fn context(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let st = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", fixture(name).display()))
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(st.success());
    dir
}

fn docker_build(d: &TestDaemon, ctx: &str, args: &[&str]) -> (bool, String) {
    let mut all = vec!["build"];
    all.extend_from_slice(args);
    all.push(ctx);
    let mut cmd = d.docker(&all);
    cmd.env("DOCKER_BUILDKIT", "0");
    let o = output(&mut cmd);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.success(), text)
}

fn build_ok(d: &TestDaemon, name: &str, args: &[&str]) -> String {
    let ctx = context(name);
    let (okay, text) = docker_build(d, &ctx.path().to_string_lossy(), args);
    assert!(okay, "build of {name} failed:\n{text}");
    text
}

fn build_err(d: &TestDaemon, name: &str, args: &[&str]) -> String {
    let ctx = context(name);
    let (okay, text) = docker_build(d, &ctx.path().to_string_lossy(), args);
    assert!(!okay, "build of {name} should fail:\n{text}");
    text
}

fn cat(d: &TestDaemon, image: &str, path: &str) -> String {
    ok(&mut d.docker(&["run", "--rm", image, "cat", path]))
}

fn sh(d: &TestDaemon, image: &str, script: &str) -> String {
    ok(&mut d.docker(&["run", "--rm", image, "sh", "-c", script]))
}

fn daemon() -> TestDaemon {
    TestDaemon::with_busybox(BIN).expect("daemon")
}

/// A one-shot-per-request HTTP server in the daemon's network namespace (where the daemon
/// fetches URLs from), answering every request with `status`, `headers` and `body`; returns
/// its base URL.
fn serve(d: &TestDaemon, status: &'static str, headers: &'static str, body: Vec<u8>) -> String {
    let listener = berth_harness::run_in_netns(&d.netns, || TcpListener::bind("127.0.0.1:0"))
        .expect("netns")
        .expect("bind");
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut r = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            while r.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let _ = write!(
                conn,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n",
                body.len()
            );
            let _ = conn.write_all(&body);
        }
    });
    format!("http://127.0.0.1:{port}")
}

#[test]
fn run_mounts_and_network() {
    let d = daemon();
    build_ok(&d, "run_mounts", &["-t", "mounts"]);
    // The cache mount is a directory of its own, made with mode/uid, kept across builds.
    assert_eq!(cat(&d, "mounts", "/count").trim(), "1");
    assert_eq!(cat(&d, "mounts", "/cache-perm").trim(), "700 1000");
    assert_eq!(cat(&d, "mounts", "/from-ctx"), "context data\n");
    assert_eq!(cat(&d, "mounts", "/rw-seen"), "changed\n");
    // An rw bind's writes are discarded.
    assert_eq!(cat(&d, "mounts", "/after-rw"), "context data\n");
    assert_eq!(cat(&d, "mounts", "/from-stage"), "from-stage\n");
    assert_eq!(cat(&d, "mounts", "/tmpfs-seen").trim(), "1");
    assert_eq!(cat(&d, "mounts", "/ro"), "read-only\n");
    assert_eq!(cat(&d, "mounts", "/nonet").trim(), "0");
    // Nothing mounted is in a layer; the mount points may be, empty.
    assert_eq!(
        sh(
            &d,
            "mounts",
            "ls -A /cache; ls -A /scratch; ls -A /ctx; test -s /d.txt && echo d; true"
        ),
        ""
    );
    // A rebuild with the same context is cached; --no-cache runs again on the same cache.
    let again = build_ok(&d, "run_mounts", &["-t", "mounts"]);
    assert!(!again.contains("Running in"), "{again}");
    build_ok(&d, "run_mounts", &["-t", "mounts", "--no-cache"]);
    assert_eq!(cat(&d, "mounts", "/count").trim(), "2");
    // Another id is another cache.
    build_ok(
        &d,
        "run_mounts",
        &["-t", "mounts2", "--build-arg", "CACHE_ID=c2"],
    );
    assert_eq!(cat(&d, "mounts2", "/count").trim(), "1");
    // A changed context file misses the cache of the step that binds it.
    let ctx = context("run_mounts");
    std::fs::write(ctx.path().join("data.txt"), "new data\n").unwrap();
    let (okay, out) = docker_build(&d, &ctx.path().to_string_lossy(), &["-t", "mounts3"]);
    assert!(okay, "{out}");
    assert_eq!(cat(&d, "mounts3", "/from-ctx"), "new data\n");
    assert_eq!(ok(&mut d.docker(&["ps", "-aq"])).trim(), "");
}

#[test]
fn run_secret_mount_is_refused() {
    let d = daemon();
    let out = build_err(&d, "run_secret", &[]);
    assert!(
        out.contains(
            "RUN --mount=type=secret needs BuildKit secrets, not supported by the classic builder yet"
        ),
        "{out}"
    );
}

//! BuildKit's instruction flags in the classic builder, through `DOCKER_BUILDKIT=0 docker
//! build`: `RUN --mount` / `--network`, `COPY --exclude/--parents/--link`, `ADD --checksum`,
//! ADD of a URL and a remote (URL) build context. Fixtures live in tests/fixtures/build/.

use berth_harness::build::{context, fixture, masked};
use berth_harness::{ok, output, TestDaemon};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_berth");

fn docker_build(d: &TestDaemon, ctx: &str, args: &[&str]) -> (bool, String) {
    let (code, text) = d.legacy_build(Path::new(ctx), args);
    (code == Some(0), text)
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
fn run_secret_mount_without_the_secret_is_skipped() {
    // The docker CLI has no way to send secrets to the classic builder: a secret mount that
    // is not `required` is left out (BuildKit's rule), so the RUN finds no file.
    // crates/berth/tests/build_secrets.rs builds with secrets through our CLI.
    let d = daemon();
    let out = build_err(&d, "run_secret", &[]);
    assert!(
        out.contains("cat: can't open '/run/secrets/token': No such file or directory")
            && out.contains("returned a non-zero code: 1"),
        "{out}"
    );
}

#[test]
fn copy_exclude_parents_link() {
    let d = daemon();
    build_ok(&d, "copy_flags", &["-t", "cf"]);
    assert_eq!(
        sh(&d, "cf", "cd /ex && find . | sort"),
        ".\n./one.txt\n./sub\n./sub/three.txt\n"
    );
    assert_eq!(sh(&d, "cf", "ls /ex2"), "one.txt\n");
    assert_eq!(
        sh(&d, "cf", "cd /par && find . -type f | sort"),
        "./a/b/file.txt\n./a/c/y.txt\n"
    );
    assert_eq!(cat(&d, "cf", "/piv/keep/deep.txt"), "deep\n");
    assert_eq!(cat(&d, "cf", "/link.txt"), "one\n");
}

const HELLO: &[u8] = b"hello from http\n";
const HELLO_SUM: &str = "sha256:";

fn sha256_hex(data: &[u8]) -> String {
    let o = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(data)?;
            c.wait_with_output()
        })
        .unwrap();
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn add_url_and_checksum() {
    let d = daemon();
    let base = serve(
        &d,
        "200 OK",
        "Last-Modified: Wed, 21 Oct 2015 07:28:00 GMT\r\n",
        HELLO.to_vec(),
    );
    let sum = format!("{HELLO_SUM}{}", sha256_hex(HELLO));
    let base_arg = format!("BASE={base}");
    let sum_arg = format!("SUM={sum}");
    build_ok(
        &d,
        "add_url",
        &[
            "-t",
            "dl",
            "--build-arg",
            &base_arg,
            "--build-arg",
            &sum_arg,
        ],
    );
    assert_eq!(cat(&d, "dl", "/downloads/hello.txt"), "hello from http\n");
    // Mode 0600 and the Last-Modified time, as dockerd gives a download.
    assert_eq!(
        sh(
            &d,
            "dl",
            "stat -c '%a %Y' /downloads/hello.txt /checked.txt /named"
        ),
        "600 1445412480\n600 1445412480\n644 1445412480\n"
    );
    // A wrong checksum fails the step.
    let bad_sum = format!("SUM={HELLO_SUM}{}", "0".repeat(64));
    let out = build_err(
        &d,
        "add_url",
        &["--build-arg", &base_arg, "--build-arg", &bad_sum],
    );
    assert!(out.contains("digest mismatch"), "{out}");
    // A server error fails the step with its status.
    let missing = serve(&d, "404 Not Found", "", Vec::new());
    let out = build_err(
        &d,
        "add_url",
        &[
            "--build-arg",
            &format!("BASE={missing}"),
            "--build-arg",
            &sum_arg,
        ],
    );
    assert!(out.contains("404"), "{out}");
}

fn api_build(d: &TestDaemon, query: &str) -> (u16, String) {
    let (status, _, body) =
        berth_harness::http(&d.socket, "POST", &format!("/v1.47/build?{query}"), None).unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn remote_context_url() {
    let d = daemon();
    // A tarball of a fixture's context.
    let o = output(
        Command::new("tar")
            .arg("-C")
            .arg(fixture("copy_flags"))
            .args(["-czf", "-", "."]),
    );
    assert!(o.status.success());
    let tarball = serve(&d, "200 OK", "", o.stdout);
    let (status, out) = api_build(
        &d,
        &format!("t=remote1&remote={}", enc(&format!("{tarball}/ctx.tar.gz"))),
    );
    assert_eq!(status, 200, "{out}");
    assert!(out.contains("Successfully built"), "{out}");
    assert_eq!(cat(&d, "remote1", "/link.txt"), "one\n");
    // A plain Dockerfile at the URL is the whole context.
    let df = serve(
        &d,
        "200 OK",
        "Content-Type: text/plain\r\n",
        b"FROM busybox\nRUN echo remote-df > /r\n".to_vec(),
    );
    let (status, out) = api_build(&d, &format!("t=remote2&remote={}", enc(&df)));
    assert_eq!(status, 200, "{out}");
    assert_eq!(cat(&d, "remote2", "/r"), "remote-df\n");
    // Git repositories are refused clearly.
    let (status, out) = api_build(&d, "remote=git%3A%2F%2Fexample.com%2Fr.git");
    assert_eq!(status, 400, "{out}");
    assert!(out.contains("git repository"), "{out}");
}

/// A build's standard output (the progress stream; the CLI's notices go to stderr).
fn build_stdout(d: &TestDaemon, name: &str, args: &[&str]) -> String {
    let ctx = context(name);
    let mut all = vec!["build"];
    all.extend_from_slice(args);
    let ctx_s = ctx.path().to_string_lossy().into_owned();
    all.push(&ctx_s);
    let mut cmd = d.docker(&all);
    cmd.env("DOCKER_BUILDKIT", "0");
    let o = output(&mut cmd);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "build of {name} failed:\n{out}");
    out
}

/// What Docker 20.10's legacy builder printed for the same builds (IDs masked): metadata
/// steps and ARG get an intermediate container, --label adds one LABEL step per label.
#[test]
fn legacy_output_matches_dockerd_20_10() {
    let d = daemon();
    let out = build_stdout(&d, "metadata", &["-t", "meta", "--label", "from-cli=yes"]);
    assert_eq!(
        masked(&out),
        include_str!("fixtures/build/legacy_output/metadata.out")
    );
    let out = build_stdout(&d, "args", &["-t", "ref-args"]);
    assert_eq!(
        masked(&out),
        include_str!("fixtures/build/legacy_output/args.out")
    );
    let out = build_stdout(&d, "args", &["-t", "ref-args"]);
    assert_eq!(
        masked(&out),
        include_str!("fixtures/build/legacy_output/args-cached.out")
    );
    let hist = ok(&mut d.docker(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        "ref-args",
    ]));
    assert!(
        hist.contains("/bin/sh -c #(nop)  ARG SECRET\n/bin/sh -c #(nop)  ARG GREETING=hi\n"),
        "{hist}"
    );
}

#[test]
fn platform() {
    let d = TestDaemon::with_busybox(BIN).expect("daemon");
    let arch = d.inspect("busybox", "{{.Architecture}}");
    // `--pull` pulls the base for real: pull_push.rs tests it against a registry.
    build_ok(&d, "basic", &["--platform", &format!("linux/{arch}")]);
    let out = build_err(&d, "basic", &["--platform", "linux/s390x"]);
    assert!(
        out.contains(
            "platform linux/s390x is not supported: this builder runs each step on this machine"
        ),
        "{out}"
    );
}

#[test]
fn compressed_contexts_on_stdin() {
    let d = TestDaemon::with_busybox(BIN).expect("daemon");
    let dir = tempfile::tempdir().unwrap();
    for (flag, name) in [
        ("-j", "ctx.tar.bz2"),
        ("-J", "ctx.tar.xz"),
        ("-z", "ctx.tar.gz"),
    ] {
        let archive = dir.path().join(name);
        let st = Command::new("tar")
            .args(["-C", &fixture("basic").to_string_lossy(), flag, "-cf"])
            .arg(&archive)
            .arg(".")
            .status()
            .unwrap();
        assert!(st.success());
        let tag = format!("ctx-{}", name.rsplit('.').next().unwrap());
        let mut cmd = d.docker(&["build", "-q", "-t", &tag, "-"]);
        cmd.env("DOCKER_BUILDKIT", "0")
            .stdin(std::fs::File::open(&archive).unwrap());
        ok(&mut cmd);
        assert_eq!(cat(&d, &tag, "/hello"), "hello\n", "{name}");
    }
}

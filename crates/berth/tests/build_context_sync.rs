//! Our CLI sends a build context as a difference: it posts the context's manifest, the daemon
//! answers which paths its kept copy lacks, and only those travel. What is built is what a
//! whole upload builds (the docker CLI's build of the same context hits the same cache), and
//! a kept copy that no longer matches its index makes the CLI start over with everything.

use berth_harness::{ok, output, TestDaemon};
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_berth");

fn daemon() -> TestDaemon {
    TestDaemon::with_busybox(BIN).expect("daemon")
}

/// Sets every path's mtime well in the past: a file modified in the last seconds is always
/// sent (its mtime cannot prove it unchanged).
fn age(dir: &Path) {
    let st = Command::new("find")
        .arg(dir)
        .args([
            "-exec",
            "touch",
            "-h",
            "-d",
            "2020-01-01 00:00:00",
            "{}",
            "+",
        ])
        .status()
        .unwrap();
    assert!(st.success());
}

fn write_aged(dir: &Path, rel: &str, content: &[u8], when: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, content).unwrap();
    let st = Command::new("touch")
        .args(["-d", when])
        .arg(&p)
        .status()
        .unwrap();
    assert!(st.success());
}

/// `berth build -t T CTX` (with `env`): the output, which must be a success.
fn berth_build(d: &TestDaemon, ctx: &Path, tag: &str, env: &[(&str, &str)]) -> String {
    let ctx = ctx.to_string_lossy();
    let mut cmd = d.berth(&["build", "-t", tag, &ctx]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let o = output(&mut cmd);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "build failed:\n{text}");
    text
}

/// The size the "Sending build context" line reports, in bytes.
fn sent_bytes(out: &str) -> f64 {
    // The line is redrawn with `\r` while the upload runs: the last drawing counts.
    let line = out
        .split(['\n', '\r'])
        .rev()
        .find(|l| l.starts_with("Sending build context to Docker daemon"))
        .unwrap_or_else(|| panic!("no sending line in:\n{out}"));
    let v = line.split_whitespace().last().unwrap();
    let n = v.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &v[n.len()..];
    let mult = match unit {
        "B" => 1.0,
        "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        u => panic!("unit {u} in {line}"),
    };
    n.parse::<f64>().unwrap() * mult
}

fn image_id(d: &TestDaemon, tag: &str) -> String {
    d.inspect(tag, "{{.Id}}")
}

const DOCKERFILE: &str = "FROM busybox\nCOPY . /ctx/\nRUN cat /ctx/small/a.txt && ls /ctx/small\n";

fn new_context() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::write(p.join("Dockerfile"), DOCKERFILE).unwrap();
    let big: Vec<u8> = (0..4 << 20)
        .map(|i: u32| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(p.join("big.bin"), big).unwrap();
    std::fs::create_dir_all(p.join("small")).unwrap();
    std::fs::write(p.join("small/a.txt"), "first\n").unwrap();
    std::fs::write(p.join("small/gone.txt"), "to be deleted\n").unwrap();
    std::fs::write(p.join(".dockerignore"), "*.tmp\n").unwrap();
    std::fs::write(p.join("scratch.tmp"), "ignored\n").unwrap();
    std::os::unix::fs::symlink("small/a.txt", p.join("link")).unwrap();
    age(p);
    dir
}

#[test]
fn only_changed_paths_travel_and_the_image_is_the_same() {
    let d = daemon();
    let ctx = new_context();
    let p = ctx.path();

    let first = berth_build(&d, p, "sync:1", &[]);
    assert!(sent_bytes(&first) > 4e6, "{first}");
    let id1 = image_id(&d, "sync:1");
    let sum = |img: &str, path: &str| d.run_rm_quiet(img, &["sha256sum", path]);
    assert_eq!(
        sum("sync:1", "/ctx/big.bin").split_whitespace().next(),
        sha256_of(&p.join("big.bin")).as_deref()
    );

    // Nothing changed: only the tar's end blocks travel, every step is cached.
    let second = berth_build(&d, p, "sync:2", &[]);
    assert!(sent_bytes(&second) < 20e3, "{second}");
    assert_eq!(second.matches(" ---> Using cache").count(), 2, "{second}");
    assert_eq!(image_id(&d, "sync:2"), id1);

    // One file changed (same size, later mtime), one deleted, one added, the symlink
    // retargeted, a directory added: the small ones travel, the big one does not.
    write_aged(p, "small/a.txt", b"again\n", "2021-01-01 00:00:00");
    std::fs::remove_file(p.join("small/gone.txt")).unwrap();
    write_aged(p, "small/new.txt", b"new\n", "2021-01-01 00:00:00");
    write_aged(p, "sub/deep/c.txt", b"deep\n", "2021-01-01 00:00:00");
    std::fs::remove_file(p.join("link")).unwrap();
    std::os::unix::fs::symlink("small/new.txt", p.join("link")).unwrap();
    age(&p.join("sub"));
    let third = berth_build(&d, p, "sync:3", &[]);
    assert!(sent_bytes(&third) < 40e3, "{third}");
    assert!(third.contains("again"), "{third}");
    let listing = d.run_rm_quiet(
        "sync:3",
        &[
            "sh",
            "-c",
            "ls /ctx/small; cat /ctx/sub/deep/c.txt; readlink /ctx/link; ls /ctx",
        ],
    );
    assert_eq!(
        listing, "a.txt\nnew.txt\ndeep\nsmall/new.txt\nDockerfile\nbig.bin\nlink\nsmall\nsub\n",
        "the kept copy must be the directory as it is now (no gone.txt, no scratch.tmp)"
    );
    let id3 = image_id(&d, "sync:3");

    // The same context uploaded whole (by the docker CLI, and by ours without the
    // comparison) gives the same cache keys: every step hits.
    let mut docker = d.docker(&["build", "-t", "sync:docker", &p.to_string_lossy()]);
    docker.env("DOCKER_BUILDKIT", "0");
    let whole = ok(&mut docker);
    assert_eq!(whole.matches(" ---> Using cache").count(), 2, "{whole}");
    assert_eq!(image_id(&d, "sync:docker"), id3);
    let plain = berth_build(&d, p, "sync:plain", &[("BERTH_BUILD_SYNC", "0")]);
    assert!(sent_bytes(&plain) > 4e6, "{plain}");
    assert_eq!(image_id(&d, "sync:plain"), id3);

    // A file modified just now is always sent, whatever its mtime says.
    std::fs::write(p.join("small/a.txt"), "twice\n").unwrap();
    let racy = berth_build(&d, p, "sync:4", &[]);
    assert!(racy.contains("twice"), "{racy}");

    // The kept copy is build cache: `system df` lists it as BuildKit lists local sources.
    let df = ok(&mut d.docker(&["system", "df", "-v"]));
    assert!(df.contains("source.local"), "{df}");
    // `builder prune` removes the kept copy: everything travels again.
    ok(&mut d.berth(&["builder", "prune", "-af"]));
    assert!(kept_trees(&d).is_empty());
    let after = berth_build(&d, p, "sync:5", &[]);
    assert!(sent_bytes(&after) > 4e6, "{after}");
}

#[test]
fn a_kept_copy_changed_behind_the_index_makes_the_build_start_over() {
    let d = daemon();
    let ctx = new_context();
    let p = ctx.path();
    berth_build(&d, p, "kept:1", &[]);
    let trees = kept_trees(&d);
    assert_eq!(trees.len(), 1);
    // Damage the kept copy: a file the index lists disappears, another appears.
    std::fs::remove_file(trees[0].join("tree/small/a.txt")).unwrap();
    std::fs::write(trees[0].join("tree/intruder"), "x").unwrap();
    write_aged(p, "small/gone.txt", b"changed\n", "2022-01-01 00:00:00");
    let out = berth_build(&d, p, "kept:2", &[]);
    assert!(out.contains("first"), "{out}");
    assert!(sent_bytes(&out) > 4e6, "the retry sends everything:\n{out}");
    let listing = d.run_rm_quiet("kept:2", &["sh", "-c", "cat /ctx/small/gone.txt; ls /ctx"]);
    assert_eq!(listing, "changed\nDockerfile\nbig.bin\nlink\nsmall\n");
    // The next build compares against a sound copy again.
    let again = berth_build(&d, p, "kept:3", &[]);
    assert!(sent_bytes(&again) < 20e3, "{again}");
}

#[test]
fn bad_manifests_are_refused() {
    let d = daemon();
    let sock = d.host();
    let sock = sock.trim_start_matches("unix://");
    // `curl -X POST ARGS URL` on the daemon's socket: the body, a newline, the status.
    let curl = |args: &[&str], url: &str| -> String {
        let o = output(
            Command::new("curl")
                .args([
                    "-s",
                    "-w",
                    "\n%{http_code}",
                    "--unix-socket",
                    sock,
                    "-X",
                    "POST",
                ])
                .args(args)
                .arg(url),
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let post = |query: &str, body: &str| {
        curl(
            &["-H", "Content-Type: application/json", "-d", body],
            &format!("http://x/build/context{query}"),
        )
    };
    let entry =
        |path: &str| format!(r#"{{"path":"{path}","type":"file","mode":420,"size":1,"mtime":1}}"#);
    for (query, body, want) in [
        (
            "?key=k",
            format!(r#"{{"entries":[{}]}}"#, entry("../etc/passwd")),
            "invalid context path",
        ),
        (
            "?key=k",
            format!(r#"{{"entries":[{}]}}"#, entry("/abs")),
            "invalid context path",
        ),
        (
            "?key=k",
            format!(r#"{{"entries":[{}]}}"#, entry("a//b")),
            "invalid context path",
        ),
        (
            "?key=k",
            format!(r#"{{"entries":[{},{}]}}"#, entry("a"), entry("a")),
            "duplicate",
        ),
        (
            "?key=k",
            "{\"entries\":7}".to_string(),
            "invalid context manifest",
        ),
        (
            "",
            format!(r#"{{"entries":[{}]}}"#, entry("a")),
            "key is required",
        ),
    ] {
        let out = post(query, &body);
        assert!(
            out.ends_with("400") && out.contains(want),
            "{query} {body}: {out}"
        );
    }
    // A build naming no known session is refused before anything is built.
    let out = curl(&["--data-binary", ""], "http://x/build?berthsession=nope");
    assert!(
        out.ends_with("400") && out.contains("unknown or expired"),
        "{out}"
    );
    assert!(kept_trees(&d).is_empty());
}

fn kept_trees(d: &TestDaemon) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(d.data_root.join("build/contexts"))
        .map(|r| r.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default()
}

fn sha256_of(p: &Path) -> Option<String> {
    let o = output(Command::new("sha256sum").arg(p));
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .map(str::to_string)
}

trait RunQuiet {
    fn run_rm_quiet(&self, image: &str, cmd: &[&str]) -> String;
}

impl RunQuiet for TestDaemon {
    fn run_rm_quiet(&self, image: &str, cmd: &[&str]) -> String {
        let mut all = vec!["--network", "none", image];
        all.extend_from_slice(cmd);
        self.run_rm(&all)
    }
}

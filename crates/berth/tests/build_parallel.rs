//! Independent stages build at once (`DOCKER_BUILDKIT=0 docker build` against Berth), and the
//! progress stream stays the sequential build's: every expected `.out` in
//! tests/fixtures/build/parallel_stages/ is what the sequential builder printed for the same
//! Dockerfile (IDs masked). Stages prove they overlap by meeting in a shared cache mount: a
//! RUN waits (bounded) for a file another stage's RUN writes, which fails if run one after the
//! other.

use berth_harness::build::{fixture, masked};
use berth_harness::{ok, output, TestDaemon};
use std::path::Path;

const BIN: &str = env!("CARGO_BIN_EXE_berth");

fn daemon() -> TestDaemon {
    TestDaemon::with_busybox(BIN).expect("daemon")
}

struct Built {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Builds `<name>.Dockerfile` of the parallel_stages fixture (read-only, built in place).
fn build(d: &TestDaemon, name: &str, args: &[&str]) -> Built {
    let ctx = fixture("parallel_stages");
    let file = ctx.join(format!("{name}.Dockerfile"));
    let (file, ctx) = (file.to_string_lossy(), ctx.to_string_lossy());
    let mut all = vec!["build", "-f", &file];
    all.extend_from_slice(args);
    all.push(&ctx);
    let mut cmd = d.docker(&all);
    cmd.env("DOCKER_BUILDKIT", "0");
    let o = output(&mut cmd);
    Built {
        code: o.status.code(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn expected(name: &str) -> String {
    let path = fixture("parallel_stages").join(format!("{name}.out"));
    std::fs::read_to_string(&path).expect("expected output")
}

/// Nothing of a build is left: no container, no mount under the data root, no temp files.
fn assert_clean(d: &TestDaemon) {
    assert_eq!(ok(&mut d.docker(&["ps", "-aq"])).trim(), "");
    let root = d.data_root.to_string_lossy().into_owned();
    let mounts = std::fs::read_to_string("/proc/self/mounts").expect("mounts");
    let left: Vec<&str> = mounts.lines().filter(|l| l.contains(&root)).collect();
    assert!(left.is_empty(), "mounts left: {left:#?}");
    let tmp: Vec<_> = std::fs::read_dir(d.data_root.join("tmp"))
        .map(|r| r.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(tmp.is_empty(), "temp files left: {tmp:?}");
}

/// Whether a build's cache mounts hold a file of that name.
fn in_cache_mounts(d: &TestDaemon, name: &str) -> bool {
    fn walk(dir: &Path, name: &str) -> bool {
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| e.file_name() == name || (e.path().is_dir() && walk(&e.path(), name)))
    }
    walk(&d.data_root.join("build-mounts"), name)
}

#[test]
fn independent_stages_build_at_once_and_print_in_order() {
    let d = daemon();
    let b = build(&d, "meet", &["-t", "par-meet"]);
    assert_eq!(b.code, Some(0), "{}{}", b.stdout, b.stderr);
    assert_eq!(masked(&b.stdout), expected("meet"));
    assert_eq!(d.run_rm(&["par-meet", "cat", "/a", "/b"]), "a\nb\n");
    assert_clean(&d);
    // Rebuilt, every step is cached, printed in the same order.
    let b = build(&d, "meet", &["-t", "par-meet"]);
    assert_eq!(b.code, Some(0), "{}{}", b.stdout, b.stderr);
    assert_eq!(masked(&b.stdout), expected("meet-cached"));
}

/// The first step of both stages is the same: it runs once, in whichever stage reaches it
/// first, and prints as the sequential build does (run in stage a, cached in stage b).
#[test]
fn a_step_two_stages_share_runs_once_and_prints_as_sequential() {
    let d = daemon();
    let b = build(&d, "shared", &["-t", "par-shared"]);
    assert_eq!(b.code, Some(0), "{}{}", b.stdout, b.stderr);
    assert_eq!(masked(&b.stdout), expected("shared"));
    assert_eq!(b.stdout.matches("shared step\n").count(), 1, "{}", b.stdout);
}

#[test]
fn the_earliest_failing_stage_gives_the_error_and_nothing_is_left() {
    let d = daemon();
    // Stage a fails while stage b's RUN runs (it sleeps 30 s, then writes b-finished): b is
    // stopped and its container removed.
    let b = build(&d, "fail_first", &["-t", "must-not-exist"]);
    assert_eq!(b.code, Some(3), "{}{}", b.stdout, b.stderr);
    assert_eq!(masked(&b.stdout), expected("fail_first"));
    assert!(
        b.stderr.contains("returned a non-zero code: 3"),
        "{}",
        b.stderr
    );
    assert!(in_cache_mounts(&d, "b-running"), "stage b's RUN ran");
    assert!(
        !in_cache_mounts(&d, "b-finished"),
        "stage b was not stopped"
    );
    assert_clean(&d);

    // Stage b fails first; stage a, earlier in the file, still builds to its end and prints
    // before b's failure.
    let b = build(&d, "fail_later", &["-t", "must-not-exist"]);
    assert_eq!(b.code, Some(5), "{}{}", b.stdout, b.stderr);
    assert_eq!(masked(&b.stdout), expected("fail_later"));
    assert!(
        b.stderr.contains(
            "The command '/bin/sh -c echo b fails; touch /m/b-failed; exit 5' returned a non-zero code: 5"
        ),
        "{}",
        b.stderr
    );
    assert_clean(&d);

    // Both fail, b first: the error is a's, and b's lines are never printed.
    let b = build(
        &d,
        "fail_later",
        &["-t", "must-not-exist", "--build-arg", "A_EXIT=4"],
    );
    assert_eq!(b.code, Some(4), "{}{}", b.stdout, b.stderr);
    assert!(b.stdout.contains("a ends\n"), "{}", b.stdout);
    assert!(
        !b.stdout.contains("b fails") && !b.stdout.contains("Step 5/9"),
        "{}",
        b.stdout
    );
    assert!(
        b.stderr.contains("returned a non-zero code: 4"),
        "{}",
        b.stderr
    );
    assert!(!output(&mut d.docker(&["inspect", "must-not-exist"]))
        .status
        .success());
    assert_clean(&d);
}

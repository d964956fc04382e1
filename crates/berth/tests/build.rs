//! `DOCKER_BUILDKIT=0 docker build` against Berth: the legacy builder's progress stream, every
//! instruction's effect on the image, multi-stage builds, build args, failures, the step cache
//! and hostile contexts. Dockerfiles live in tests/fixtures/build/.

use berth_harness::build::{context, fixture};
use berth_harness::{http, ok, output, TestDaemon};
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_berth");

fn docker_build(d: &TestDaemon, ctx: &Path, args: &[&str]) -> (bool, String) {
    let (code, text) = d.legacy_build(ctx, args);
    (code == Some(0), text)
}

fn build_ok(d: &TestDaemon, name: &str, args: &[&str]) -> String {
    let ctx = context(name);
    let (okay, text) = docker_build(d, ctx.path(), args);
    assert!(okay, "build of {name} failed:\n{text}");
    text
}

fn run(d: &TestDaemon, args: &[&str]) -> String {
    d.run_rm(args)
}

fn daemon() -> TestDaemon {
    TestDaemon::with_busybox(BIN).expect("daemon")
}

#[test]
fn legacy_output_run_cmd_and_history() {
    let d = daemon();
    let out = build_ok(&d, "basic", &["-t", "basic:1", "-t", "basic-two"]);
    for want in [
        "Step 1/3 : FROM busybox\n",
        "Step 2/3 : RUN echo hello > /hello\n",
        " ---> Running in ",
        "Removing intermediate container ",
        "Step 3/3 : CMD [\"cat\", \"/hello\"]\n",
        "Successfully built ",
        "Successfully tagged basic:1\n",
        "Successfully tagged basic-two:latest\n",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    assert_eq!(run(&d, &["basic:1"]), "hello\n");
    let hist = ok(&mut d.docker(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        "basic:1",
    ]));
    let lines: Vec<&str> = hist.lines().collect();
    assert_eq!(
        lines[0], "/bin/sh -c #(nop)  CMD [\"cat\" \"/hello\"]",
        "{hist}"
    );
    assert_eq!(lines[1], "/bin/sh -c echo hello > /hello", "{hist}");
    // No intermediate container is left, no dangling image shows.
    assert_eq!(ok(&mut d.docker(&["ps", "-aq"])).trim(), "");
    assert_eq!(
        ok(&mut d.docker(&["images", "-q", "--filter", "dangling=true"])).trim(),
        ""
    );
    // Quiet: only the ID.
    let q = build_ok(&d, "basic", &["-q"]);
    assert!(
        q.trim().starts_with("sha256:") && !q.contains("Step"),
        "{q}"
    );
}

#[test]
fn config_instructions() {
    let d = daemon();
    build_ok(&d, "env_label", &["-t", "envl"]);
    let env = d.inspect("envl", "{{json .Config.Env}}");
    assert!(
        env.contains("\"A=1\"") && env.contains("\"B=two words\"") && env.contains("\"C=1-c\""),
        "{env}"
    );
    assert_eq!(
        d.inspect("envl", "{{index .Config.Labels \"org.example.name\"}}"),
        "berth test"
    );
    assert_eq!(
        d.inspect("envl", "{{index .Config.Labels \"version\"}}"),
        "1"
    );

    build_ok(&d, "workdir_user", &["-t", "wdu"]);
    assert_eq!(d.inspect("wdu", "{{.Config.WorkingDir}}"), "/app/sub");
    assert_eq!(d.inspect("wdu", "{{.Config.User}}"), "nobody");
    assert_eq!(run(&d, &["wdu"]).trim(), "65534");
    assert_eq!(
        run(&d, &["--user", "0", "wdu", "cat", "/app/sub/where"]),
        "/app/sub\n"
    );

    build_ok(&d, "metadata", &["-t", "meta", "--label", "from-cli=yes"]);
    assert_eq!(
        d.inspect("meta", "{{json .Config.ExposedPorts}}"),
        r#"{"53/udp":{},"80/tcp":{}}"#
    );
    assert_eq!(
        d.inspect("meta", "{{json .Config.Volumes}}"),
        r#"{"/data":{}}"#
    );
    assert_eq!(d.inspect("meta", "{{.Config.StopSignal}}"), "SIGINT");
    assert_eq!(
        d.inspect("meta", "{{json .Config.Entrypoint}}"),
        r#"["echo"]"#
    );
    assert_eq!(d.inspect("meta", "{{json .Config.Cmd}}"), r#"["hi"]"#);
    assert_eq!(d.inspect("meta", "{{.Author}}"), "someone@example.com");
    assert_eq!(
        d.inspect("meta", "{{json .Config.Healthcheck.Test}}"),
        r#"["CMD-SHELL","true"]"#
    );
    assert_eq!(d.inspect("meta", "{{.Config.Healthcheck.Retries}}"), "2");
    assert_eq!(
        d.inspect("meta", "{{json .Config.OnBuild}}"),
        r#"["RUN echo triggered > /trigger"]"#
    );
    assert_eq!(
        d.inspect("meta", "{{index .Config.Labels \"from-cli\"}}"),
        "yes"
    );
    assert_eq!(run(&d, &["meta"]), "hi\n");

    // ONBUILD triggers run in the child build and are not inherited further.
    ok(&mut d.docker(&["tag", "meta", "parent-with-trigger"]));
    let out = build_ok(&d, "onbuild_child", &["-t", "child"]);
    assert!(out.contains("# Executing 1 build trigger"), "{out}");
    assert_eq!(d.inspect("child", "{{json .Config.OnBuild}}"), "null");

    build_ok(&d, "shell", &["-t", "shell"]);
    assert_eq!(run(&d, &["shell", "cat", "/shell"]), "shell=/bin/sh\n");
    assert_eq!(run(&d, &["shell", "cat", "/exec"]), "exec\n");
    assert_eq!(
        d.inspect("shell", "{{json .Config.Cmd}}"),
        r#"["/bin/sh","-ec","echo from-cmd"]"#
    );
}

#[test]
fn copy_and_add() {
    let d = daemon();
    build_ok(&d, "copy_files", &["-t", "cp"]);
    let show = run(&d, &[
        "cp",
        "sh",
        "-c",
        "cat /dst/a.txt /d2/x /d2/sub/y /renamed.txt /glob/a.txt /glob/b.txt /w/b.txt /w/rel/a.txt /w/rel/b.txt",
    ]);
    assert_eq!(show, "a\nin-dir\ndeep\na\na\nb\nb\na\nb\n");

    build_ok(&d, "chown_chmod", &["-t", "own"]);
    let modes = run(&d, &["own", "stat", "-c", "%u:%g %a", "/a", "/b", "/c"]);
    assert_eq!(modes, "1:2 600\n65534:65534 644\n0:0 755\n");

    let ctx = context("add_tar");
    let st = Command::new("tar")
        .current_dir(ctx.path())
        .args(["cf", "files.tar", "plain.txt"])
        .status()
        .unwrap();
    assert!(st.success());
    let (okay, text) = docker_build(&d, ctx.path(), &["-t", "addtar"]);
    assert!(okay, "{text}");
    assert_eq!(
        run(&d, &["addtar", "cat", "/unpacked/plain.txt", "/plain.txt"]),
        "plain\nplain\n"
    );

    build_ok(&d, "heredoc", &["-t", "here"]);
    assert_eq!(
        run(&d, &["here", "cat", "/heredoc", "/catted", "/greeting"]),
        "line1\nline2\nhello world\nhi world\n"
    );

    build_ok(&d, "scratch", &["-t", "fromscratch"]);
    assert_eq!(d.inspect("fromscratch", "{{len .RootFS.Layers}}"), "1");
    let saved = ok(&mut d.docker(&["history", "-q", "fromscratch"]));
    assert!(!saved.is_empty());

    build_ok(&d, "dockerignore", &["-t", "ign"]);
    assert_eq!(run(&d, &["ign", "ls", "/ctx"]), "Dockerfile\nkeep.txt\n");

    build_ok(
        &d,
        "custom_name",
        &[
            "-t",
            "custom",
            "-f",
            &format!("{}/Build.dockerfile", fixture("custom_name").display()),
        ],
    );
    assert_eq!(run(&d, &["custom", "cat", "/custom"]), "custom\n");

    let (okay, text) = docker_build(&d, &fixture("escape_outside"), &[]);
    assert!(!okay);
    assert!(
        text.contains("forbidden path outside the build context") || text.contains("not found"),
        "{text}"
    );
}

#[test]
fn stages_targets_and_args() {
    let d = daemon();
    let out = build_ok(&d, "multistage", &["-t", "multi"]);
    assert!(
        !out.contains("RUN false"),
        "an unused stage was built:\n{out}"
    );
    assert_eq!(
        run(&d, &["multi", "cat", "/from-stage", "/from-index"]),
        "built\nbuilt\n"
    );
    run(&d, &["multi", "test", "-x", "/copied-busybox"]);

    let out = build_ok(&d, "target", &["-t", "tgt", "--target", "b"]);
    assert!(!out.contains("RUN false"), "{out}");
    assert_eq!(run(&d, &["tgt", "cat", "/a", "/b"]), "a\nb\n");
    let (okay, text) = docker_build(&d, &fixture("target"), &["--target", "nope"]);
    assert!(
        !okay && text.contains("failed to reach build target nope"),
        "{text}"
    );

    let out = build_ok(
        &d,
        "args",
        &[
            "-t",
            "args1",
            "--build-arg",
            "SECRET=s3",
            "--build-arg",
            "UNUSED=1",
        ],
    );
    assert!(
        out.contains("[Warning] One or more build-args [UNUSED] were not consumed"),
        "{out}"
    );
    assert_eq!(run(&d, &["args1", "cat", "/g", "/s"]), "hi\ns3\n");
    let env = d.inspect("args1", "{{json .Config.Env}}");
    assert!(
        env.contains("USED=hi") && !env.contains("SECRET"),
        "build arg leaked: {env}"
    );
    build_ok(&d, "args", &["-t", "args2", "--build-arg", "GREETING=yo"]);
    assert_eq!(run(&d, &["args2", "cat", "/g", "/s"]), "yo\nnone\n");
    let hist = ok(&mut d.docker(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        "args2",
    ]));
    assert!(hist.contains("|1 GREETING=yo /bin/sh -c echo"), "{hist}");
}

#[test]
fn failures() {
    let d = daemon();
    let images_before = ok(&mut d.docker(&["images", "-aq"]));
    let (okay, text) = docker_build(&d, &fixture("fail"), &["-t", "failed"]);
    assert!(!okay);
    assert!(text.contains("boom-output"), "{text}");
    assert!(
        text.contains(
            "The command '/bin/sh -c echo boom-output && exit 3' returned a non-zero code: 3"
        ),
        "{text}"
    );
    assert_eq!(
        ok(&mut d.docker(&["ps", "-aq"])).trim(),
        "",
        "container left behind"
    );
    assert_eq!(ok(&mut d.docker(&["images", "-aq"])), images_before);
    assert!(!output(&mut d.docker(&["inspect", "failed"]))
        .status
        .success());

    let (okay, text) = docker_build(&d, &fixture("syntax_error"), &[]);
    assert!(!okay);
    assert!(
        text.contains("line 4") && text.contains("NOTANINSTRUCTION"),
        "{text}"
    );

    let (okay, text) = docker_build(&d, &fixture("basic"), &["-f", "Missing.dockerfile"]);
    assert!(!okay && text.contains("Missing.dockerfile"), "{text}");

    let (okay, text) = docker_build(&d, &fixture("basic"), &["-t", "Bad:Tag:x"]);
    assert!(!okay && text.contains("invalid"), "{text}");

    // A context with a traversal entry is refused before anything is extracted.
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in [
        ("Dockerfile", &b"FROM busybox\n"[..]),
        ("../escape", &b"x"[..]),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    let body = b.into_inner().unwrap();
    let (status, _, resp) = http(&d.socket, "POST", "/v1.47/build?t=hostile", Some(&body)).unwrap();
    assert!(
        status == 400 || status == 500,
        "{status} {}",
        String::from_utf8_lossy(&resp)
    );
    assert!(!output(&mut d.docker(&["inspect", "hostile"]))
        .status
        .success());
}

#[test]
fn cache_hits_misses_and_prune() {
    let mut d = daemon();
    let ctx = context("cache");
    let (okay, first) = docker_build(&d, ctx.path(), &["-t", "cached"]);
    assert!(okay, "{first}");
    assert!(!first.contains("Using cache"), "{first}");
    let id1 = d.inspect("cached", "{{.Id}}");

    let (okay, again) = docker_build(&d, ctx.path(), &["-t", "cached"]);
    assert!(okay, "{again}");
    assert_eq!(again.matches(" ---> Using cache").count(), 3, "{again}");
    assert!(!again.contains("Running in"), "{again}");
    assert_eq!(d.inspect("cached", "{{.Id}}"), id1);

    // Intermediate images are neither listed nor pruned while the cache holds them.
    assert_eq!(
        ok(&mut d.docker(&["images", "-q", "--filter", "dangling=true"])).trim(),
        ""
    );
    ok(&mut d.docker(&["image", "prune", "-f"]));

    // The cache survives a daemon restart.
    d.restart().unwrap();
    let (okay, after) = docker_build(&d, ctx.path(), &["-t", "cached"]);
    assert!(okay, "{after}");
    assert_eq!(after.matches(" ---> Using cache").count(), 3, "{after}");

    std::fs::write(ctx.path().join("data.txt"), "v2\n").unwrap();
    let (okay, changed) = docker_build(&d, ctx.path(), &["-t", "cached"]);
    assert!(okay, "{changed}");
    assert_eq!(changed.matches(" ---> Using cache").count(), 1, "{changed}");
    assert!(changed.contains("v2"), "{changed}");

    let (okay, nocache) = docker_build(&d, ctx.path(), &["--no-cache"]);
    assert!(okay && !nocache.contains("Using cache"), "{nocache}");

    let pruned = ok(&mut d.docker(&["builder", "prune", "-f"]));
    assert!(pruned.contains("Total"), "{pruned}");
    let (okay, cold) = docker_build(&d, ctx.path(), &["-t", "cached"]);
    assert!(okay && !cold.contains("Using cache"), "{cold}");
    ok(&mut d.docker(&["system", "prune", "-f"]));
}

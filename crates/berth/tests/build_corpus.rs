//! The Dockerfile corpus: edge cases of every instruction, built with `DOCKER_BUILDKIT=0 docker
//! build` against Berth. Each expectation is what Docker's legacy builder gives for the same
//! fixture (checked against dockerd 20.10; where 20.10 lacks a feature that current Docker's
//! legacy builder has — heredocs, `${v#…}` — BuildKit's semantics are asserted). Where Berth
//! still differs from Docker, the test asserts Docker's behaviour and is `#[ignore]`d with the
//! reason. Dockerfiles live in tests/fixtures/build/.

use berth_harness::build::fixture;
use berth_harness::{ok, output, TestDaemon};

const BIN: &str = env!("CARGO_BIN_EXE_berth");

fn daemon() -> TestDaemon {
    TestDaemon::with_busybox(BIN).expect("daemon")
}

/// Builds a fixture in place (read-only, so no copy is needed).
fn build(d: &TestDaemon, name: &str, args: &[&str]) -> (Option<i32>, String) {
    d.legacy_build(&fixture(name), args)
}

fn build_ok(d: &TestDaemon, name: &str, args: &[&str]) -> String {
    let (code, text) = build(d, name, args);
    assert_eq!(code, Some(0), "build of {name} failed:\n{text}");
    text
}

/// A build that must fail; returns its output.
fn build_err(d: &TestDaemon, name: &str) -> String {
    let (code, text) = build(d, name, &["-t", "must-not-exist"]);
    assert_ne!(code, Some(0), "build of {name} succeeded:\n{text}");
    assert!(!output(&mut d.docker(&["inspect", "must-not-exist"]))
        .status
        .success());
    text
}

fn run(d: &TestDaemon, args: &[&str]) -> String {
    d.run_rm(args)
}

fn sh(d: &TestDaemon, image: &str, script: &str) -> String {
    run(d, &[image, "sh", "-c", script])
}

fn history(d: &TestDaemon, image: &str) -> String {
    ok(&mut d.docker(&["history", "--no-trunc", "--format", "{{.CreatedBy}}", image]))
}

#[test]
fn args_env_and_directives() {
    let d = daemon();
    // An ARG before FROM is seen by FROM, and inside the stage only once redeclared; a later
    // ARG default wins over an earlier one; --build-arg wins over both.
    build_ok(&d, "arg_from", &["-t", "argfrom"]);
    assert_eq!(
        run(&d, &["argfrom", "cat", "/before", "/after", "/local"]),
        "before=[]\nafter=[outside-default]\nsecond\n"
    );
    build_ok(
        &d,
        "arg_from",
        &[
            "-t",
            "argfrom2",
            "--build-arg",
            "OUTSIDE=cli",
            "--build-arg",
            "LOCAL=cli",
        ],
    );
    assert_eq!(
        run(&d, &["argfrom2", "cat", "/before", "/after", "/local"]),
        "before=[]\nafter=[cli]\ncli\n"
    );

    build_ok(&d, "env_expand", &["-t", "envx"]);
    assert_eq!(
        run(&d, &["envx", "cat", "/env"]),
        "value|dflt|alt||dflt|$SET|$SET|value|prevaluepost|"
    );
    let env = d.inspect("envx", "{{json .Config.Env}}");
    assert!(
        env.contains(r#""D=""#) && env.contains(r#""J=$SET""#) && env.contains(r#""K=$SET""#),
        "{env}"
    );

    // dockerd 20.10 rejects these ("missing ':' in substitution"); current Docker, like
    // BuildKit, supports them.
    build_ok(&d, "env_trim", &["-t", "envtrim"]);
    assert_eq!(
        run(&d, &["envtrim", "cat", "/trim"]),
        "usr/local/lib/file.tar.gz|file.tar.gz|/usr/local/lib/file.tar|/usr/local/lib/file||dflt|"
    );

    build_ok(&d, "escape_backtick", &["-t", "esc"]);
    assert_eq!(
        run(&d, &["esc", "cat", "/joined", "/backslash", "/lit"]),
        "one two\nc:\\dir\\file\n$HOME\n"
    );

    build_ok(&d, "continuation", &["-t", "cont"]);
    assert_eq!(run(&d, &["cont", "cat", "/out"]), "a b c\n");
    assert_eq!(
        d.inspect("cont", "{{json .Config.Labels}}"),
        r#"{"one":"1","two":"2"}"#
    );

    build_ok(&d, "env_legacy", &["-t", "envlegacy"]);
    assert_eq!(
        sh(&d, "envlegacy", r#"echo "[$OLD] [$QUOTED] [$ESC]""#),
        "[a b  c] [a \"q\" b] [one two]\n"
    );
    assert_eq!(
        d.inspect("envlegacy", "{{json .Config.Labels}}"),
        r#"{"base":"2","child":"yes","multi":"line1line2","quoted key":"v"}"#
    );
}

#[test]
fn config_instruction_forms() {
    let d = daemon();
    for (stage, want) in [
        ("json_json", "ep cmd\n"),
        ("shell_json", "ep\n"),
        ("json_shell", "ep /bin/sh -c echo cmd\n"),
        ("reset", "reset\n"),
        ("keep", "ep kept\n"),
    ] {
        build_ok(&d, "cmd_entrypoint", &["-t", stage, "--target", stage]);
        assert_eq!(run(&d, &[stage]), want, "stage {stage}");
    }
    // ENTRYPOINT resets a CMD inherited from the base; a CMD of this stage is kept.
    assert_eq!(d.inspect("reset", "{{json .Config.Cmd}}"), "null");
    assert_eq!(
        d.inspect("shell_json", "{{json .Config.Entrypoint}}"),
        r#"["/bin/sh","-c","echo ep"]"#
    );

    build_ok(&d, "user_uidgid", &["-t", "uidgid"]);
    assert_eq!(
        run(&d, &["uidgid", "cat", "/tmp/u1", "/tmp/u2"]),
        "1000\n1000\n1\n100\n"
    );
    assert_eq!(d.inspect("uidgid", "{{.Config.User}}"), "123");
    assert_eq!(run(&d, &["uidgid"]), "123\n");

    build_ok(&d, "workdir_chain", &["-t", "wdchain"]);
    assert_eq!(d.inspect("wdchain", "{{.Config.WorkingDir}}"), "/srv/app/y");
    assert_eq!(
        sh(
            &d,
            "wdchain",
            "cat /pwd && test -d /rel/b && test -d /rel/c && pwd"
        ),
        "/srv/app/y\n/srv/app/y\n"
    );

    // RUN's writes into a declared volume are discarded; what was there before VOLUME stays.
    build_ok(&d, "volume_run", &["-t", "volrun"]);
    assert_eq!(
        sh(&d, "volrun", "cat /listing; ls /data"),
        "before\nduring\nbefore\n"
    );
    assert_eq!(
        d.inspect("volrun", "{{json .Config.Volumes}}"),
        r#"{"/a":{},"/b":{},"/c":{},"/d":{},"/data":{}}"#
    );

    build_ok(&d, "stopsignal", &["-t", "signum", "--target", "num"]);
    assert_eq!(d.inspect("signum", "{{.Config.StopSignal}}"), "9");
    build_ok(&d, "stopsignal", &["-t", "sigarg"]);
    assert_eq!(d.inspect("sigarg", "{{.Config.StopSignal}}"), "SIGUSR1");

    build_ok(&d, "healthcheck_opts", &["-t", "hc", "--target", "with"]);
    assert_eq!(
        d.inspect("hc", "{{json .Config.Healthcheck}}"),
        r#"{"Test":["CMD","true"],"Interval":10000000000,"Timeout":3000000000,"StartPeriod":2000000000,"Retries":4}"#
    );
    build_ok(
        &d,
        "healthcheck_opts",
        &["-t", "hcnone", "--target", "without"],
    );
    assert_eq!(
        d.inspect("hcnone", "{{json .Config.Healthcheck.Test}}"),
        r#"["NONE"]"#
    );
    build_ok(
        &d,
        "healthcheck_opts",
        &["-t", "hcshell", "--target", "shellform"],
    );
    assert_eq!(
        d.inspect("hcshell", "{{json .Config.Healthcheck.Test}}"),
        r#"["CMD-SHELL","test -f /tmp || exit 1"]"#
    );

    let out = build_ok(&d, "shell_change", &["-t", "shellchg"]);
    assert!(out.contains("+ echo traced"), "{out}");
    assert_eq!(
        run(&d, &["--entrypoint", "", "shellchg", "cat", "/s1", "/s2"]),
        "shell0=sh\ntraced\n"
    );
    assert_eq!(
        d.inspect("shellchg", "{{json .Config.Shell}}"),
        r#"["/bin/sh","-xc"]"#
    );
    assert_eq!(
        d.inspect("shellchg", "{{json .Config.Cmd}}"),
        r#"["/bin/sh","-xc","echo from-cmd"]"#
    );
    assert_eq!(
        d.inspect("shellchg", "{{json .Config.Entrypoint}}"),
        r#"["/bin/sh","-xc","echo from-ep"]"#
    );

    // ONBUILD triggers of an image built earlier run at the child's FROM, against the child's
    // context, and do not reach the grandchild stage.
    build_ok(&d, "onbuild_parent", &["-t", "onbuild-parent"]);
    let out = build_ok(&d, "onbuild_use", &["-t", "onbuilt"]);
    assert!(out.contains("# Executing 3 build triggers"), "{out}");
    assert_eq!(out.matches("# Executing").count(), 1, "{out}");
    assert_eq!(
        sh(
            &d,
            "onbuilt",
            "cat /from-child-context /trigger /grandchild; echo $TRIGGERED"
        ),
        "child-marker\ntrigger ran\ngrandchild\nyes\n"
    );
    assert_eq!(d.inspect("onbuilt", "{{json .Config.OnBuild}}"), "null");
}

#[test]
fn copy_and_add_forms() {
    let d = daemon();
    build_ok(&d, "copy_dest", &["-t", "cpdest"]);
    assert_eq!(
        sh(
            &d,
            "cpdest",
            "cat /newdir/f1 /renamed /etc/f1 /existing/x /existing/sub/y /created/x \
             /created/sub/y /multi/f1 /multi/f2 /deep/a/b/c && test -f /renamed \
             && test ! -e /existing/d && test ! -e /created/d"
        ),
        "f1\nf1\nf1\ndx\ndy\ndx\ndy\nf1\nf2\nf1\n"
    );

    build_ok(&d, "copy_globs", &["-t", "globs"]);
    assert_eq!(
        sh(&d, "globs", "find /star /question /bracket /dirs | sort"),
        "/bracket\n/bracket/x.log\n/dirs\n/dirs/one\n/dirs/two\n/question\n/question/file1.md\n\
         /star\n/star/a.txt\n/star/b.txt\n"
    );

    build_ok(&d, "copy_chown_names", &["-t", "chnames"]);
    assert_eq!(
        sh(
            &d,
            "chnames",
            "stat -c '%n %u:%g %a' /n /du /uid /argowner /dir/b /added"
        ),
        "/n 65534:65534 644\n/du 1:100 644\n/uid 1000:1000 644\n/argowner 1:1 644\n\
         /dir/b 1:100 644\n/added 65534:65534 644\n"
    );

    build_ok(&d, "add_targz", &["-t", "targz"]);
    assert_eq!(
        sh(&d, "targz", "find /gz /gzfile /plaingz /copied | sort"),
        "/copied\n/copied/payload.tar.gz\n/gz\n/gz/sub\n/gz/sub/nested.txt\n/gz/top.txt\n\
         /gzfile\n/gzfile/sub\n/gzfile/sub/nested.txt\n/gzfile/top.txt\n/plaingz\n\
         /plaingz/plain.gz\n"
    );

    // The one Dockerfile excluded by .dockerignore aside (see dockerignore_drops_dockerfile).
    build_ok(&d, "dockerignore_rules", &["-t", "ignrules"]);
    let listing = run(&d, &["ignrules", "cat", "/listing"]);
    let listing: Vec<&str> = listing.lines().filter(|l| *l != "./Dockerfile").collect();
    assert_eq!(
        listing,
        [
            ".",
            "./.dockerignore",
            "./dir",
            "./dir/sub",
            "./dir/sub/ok",
            "./keep.log",
            "./logs",
            "./logs/deep",
            "./other",
            "./other/y.txt",
            "./top.txt"
        ]
    );

    // Heredocs (dockerd 20.10's legacy builder has none; BuildKit's semantics): <<- strips
    // leading tabs, a quoted delimiter turns expansion off, several per instruction.
    build_ok(&d, "heredoc_variants", &["-t", "heredocs"]);
    assert_eq!(
        run(
            &d,
            &[
                "heredocs",
                "cat",
                "/dash",
                "/quoted",
                "/a",
                "/b",
                "/multi/one",
                "/multi/two"
            ]
        ),
        "tabbed\ntwo\nraw $V\nfirst expanded\nsecond\n1\n2\n"
    );
}

#[test]
fn stages_and_failures() {
    let d = daemon();
    build_ok(&d, "multistage_chain", &["-t", "chain"]);
    assert_eq!(
        sh(&d, "chain", "ls /out && cat /out/mid /out/top /out/base"),
        "base\nmid\ntop\nbase\nmid\ntop\nbase\n"
    );

    let out = build_ok(&d, "target_mid", &["-t", "tmid", "--target", "mid"]);
    assert!(!out.contains("last-runs"), "{out}");
    assert_eq!(
        sh(&d, "tmid", "cat /first /mid; test ! -e /last"),
        "first\nmid\n"
    );

    let before = ok(&mut d.docker(&["images", "-q"]));
    let out = build_err(&d, "fail_stage2");
    assert!(
        out.contains("stage-two-output\n")
            && out.contains(
                "The command '/bin/sh -c echo stage-two-output && exit 7' returned a non-zero code: 7"
            )
            && !out.contains("Step 5/6"),
        "{out}"
    );
    assert_eq!(ok(&mut d.docker(&["ps", "-aq"])).trim(), "");
    // As with Docker, the completed first stage stays as one untagged image; nothing else.
    let after = ok(&mut d.docker(&["images", "-q"]));
    assert_eq!(after.lines().count(), before.lines().count() + 1, "{after}");

    let out = build_err(&d, "copy_missing");
    assert!(
        out.contains(
            "COPY failed: file not found in build context or excluded by .dockerignore: stat nothere.txt: file does not exist"
        ),
        "{out}"
    );
    let out = build_err(&d, "copy_outside");
    assert!(
        out.contains("COPY failed: forbidden path outside the build context: ../outside ()"),
        "{out}"
    );
    let out = build_err(&d, "copy_glob_none");
    assert!(out.contains("no source files were specified"), "{out}");
    let out = build_err(&d, "copy_multi_nodir");
    assert!(
        out.contains(
            "When using COPY with more than one source file, the destination must be a directory and end with a /"
        ),
        "{out}"
    );
    let out = build_err(&d, "unknown_instruction").to_lowercase();
    assert!(
        out.contains("dockerfile parse error line 3: unknown instruction: frobnicate"),
        "{out}"
    );
}

// ---- Where Berth differs from Docker's legacy builder ----

#[test]
fn predefined_proxy_args() {
    let d = daemon();
    let out = build_ok(
        &d,
        "arg_proxy",
        &[
            "-t",
            "proxy",
            "--build-arg",
            "HTTP_PROXY=http://p:3128",
            "--build-arg",
            "no_proxy=localhost",
        ],
    );
    assert!(!out.contains("not consumed"), "{out}");
    assert_eq!(
        run(&d, &["proxy", "cat", "/proxy", "/scope"]),
        "proxy=[http://p:3128] no=[localhost]\nstage_only=[]\n"
    );
    // Nor do they show in the history (Docker still writes the `|0` prefix).
    let hist = history(&d, "proxy");
    assert!(!hist.contains("3128"), "{hist}");
    assert!(
        hist.contains("|0 /bin/sh -c echo \"stage_only=[$STAGE_ONLY]\" > /scope"),
        "{hist}"
    );
}

#[test]
fn env_same_instruction_uses_previous_values() {
    let d = daemon();
    build_ok(&d, "env_same_line", &["-t", "sameline"]);
    let env = d.inspect("sameline", "{{json .Config.Env}}");
    assert!(
        env.contains(r#""Y=-same-line""#) && env.contains(r#""Z=1-next""#),
        "{env}"
    );
}

#[test]
fn default_path_env() {
    let d = daemon();
    build_ok(&d, "stopsignal", &["-t", "withpath"]);
    assert_eq!(
        d.inspect("withpath", "{{json .Config.Env}}"),
        r#"["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]"#
    );
}

#[test]
fn arg_history_entries() {
    let d = daemon();
    build_ok(&d, "arg_from", &["-t", "arghist"]);
    let hist = history(&d, "arghist");
    for want in [
        "/bin/sh -c #(nop)  ARG LOCAL=second",
        "/bin/sh -c #(nop)  ARG LOCAL=first",
        "/bin/sh -c #(nop)  ARG OUTSIDE",
    ] {
        assert!(hist.lines().any(|l| l == want), "missing {want:?}:\n{hist}");
    }
}

#[test]
fn expose_port_ranges() {
    let d = daemon();
    build_ok(&d, "expose_forms", &["-t", "expose"]);
    assert_eq!(
        d.inspect("expose", "{{json .Config.ExposedPorts}}"),
        r#"{"443/tcp":{},"53/udp":{},"7000/tcp":{},"80/tcp":{},"8000/tcp":{},"8001/tcp":{},"8002/tcp":{},"9000/sctp":{}}"#
    );
    // History keeps the words as written, sorted.
    let hist = history(&d, "expose");
    assert!(
        hist.contains("/bin/sh -c #(nop)  EXPOSE 7000 8000-8002 9000/sctp")
            && hist.contains("/bin/sh -c #(nop)  EXPOSE 443/tcp 53/udp 80"),
        "{hist}"
    );
}

#[test]
fn healthcheck_inherits_unset_fields() {
    let d = daemon();
    let out = build_ok(
        &d,
        "healthcheck_opts",
        &["-t", "hcinh", "--target", "shellform"],
    );
    assert!(
        out.contains("Note: overriding previous HEALTHCHECK: [CMD true]"),
        "{out}"
    );
    assert_eq!(
        d.inspect("hcinh", "{{json .Config.Healthcheck}}"),
        r#"{"Test":["CMD-SHELL","test -f /tmp || exit 1"],"Interval":10000000000,"Timeout":3000000000,"StartPeriod":2000000000,"Retries":4}"#
    );
}

#[test]
fn copy_chown_owns_created_directory() {
    let d = daemon();
    build_ok(&d, "copy_chown_names", &["-t", "chdir"]);
    assert_eq!(
        sh(&d, "chdir", "stat -c '%n %u:%g %a' /dir /dir/b"),
        "/dir 1:100 755\n/dir/b 1:100 644\n"
    );
}

#[test]
fn add_extracts_bzip2_and_xz() {
    let d = daemon();
    build_ok(&d, "add_targz", &["-t", "tarbz"]);
    assert_eq!(
        sh(&d, "tarbz", "find /bz2 /xz | sort"),
        "/bz2\n/bz2/sub\n/bz2/sub/nested.txt\n/bz2/top.txt\n/xz\n/xz/sub\n/xz/sub/nested.txt\n/xz/top.txt\n"
    );
}

#[test]
fn dockerignore_drops_dockerfile() {
    let d = daemon();
    build_ok(&d, "dockerignore_rules", &["-t", "igndf"]);
    let listing = run(&d, &["igndf", "cat", "/listing"]);
    assert!(!listing.contains("./Dockerfile"), "{listing}");
}

#[test]
fn failing_run_exit_code() {
    let d = daemon();
    let (code, text) = build(&d, "fail_stage2", &[]);
    assert_eq!(code, Some(7), "{text}");
}

#[test]
#[ignore = "by design: Berth skips stages the target does not need (issue 6 asks for it, as BuildKit does); dockerd 20.10's legacy builder builds every stage up to the target"]
fn unused_stage_is_built() {
    let d = daemon();
    let out = build_ok(&d, "unused_stage", &["-t", "unused"]);
    assert!(
        out.contains("Step 2/4 : RUN echo unused-stage-ran\n")
            && out.contains("unused-stage-ran\n"),
        "{out}"
    );
}

#[test]
fn empty_continuation_line_warning() {
    let d = daemon();
    let out = build_ok(&d, "continuation", &[]);
    assert!(
        out.contains("[WARNING]: Empty continuation line found in:")
            && out.contains(
                "[WARNING]: Empty continuation lines will become errors in a future release."
            ),
        "{out}"
    );
}

#[test]
fn error_texts_exact() {
    let d = daemon();
    let out = build_err(&d, "copy_glob_none");
    assert!(
        out.contains("\nCOPY failed: no source files were specified\n"),
        "{out}"
    );
    let out = build_err(&d, "copy_multi_nodir");
    assert!(
        out.contains(
            "\nWhen using COPY with more than one source file, the destination must be a directory and end with a /\n"
        ),
        "{out}"
    );
    let out = build_err(&d, "unknown_instruction");
    assert!(
        out.contains("dockerfile parse error line 3: unknown instruction: FROBNICATE"),
        "{out}"
    );
}

#[test]
fn history_texts() {
    let d = daemon();
    build_ok(&d, "copy_dest", &["-t", "cphist"]);
    let hist = history(&d, "cphist");
    for want in [
        " in /renamed ",
        " in /newdir/ ",
        " in /multi/ ",
        " in /created/ ",
        " in /deep/a/b/c ",
    ] {
        assert!(hist.contains(want), "missing {want:?}:\n{hist}");
    }
    build_ok(&d, "shell_change", &["-t", "shhist"]);
    let hist = history(&d, "shhist");
    assert!(
        hist.contains("/bin/sh -xc #(nop)  SHELL [/bin/sh -xc]")
            && hist.contains("/bin/busybox sh -c #(nop)  SHELL [/bin/busybox sh -c]"),
        "{hist}"
    );
}

//! Build secrets through our CLI: `berth build --secret …` and `RUN --mount=type=secret`.
//! The value is readable by the RUN (as a file or a variable) and nowhere else: not in a
//! layer, not in the history, not in the cache key; `type=ssh` is refused. Also our CLI's
//! step timings, shown on a terminal only.

use berth_harness::{ok, output, PtySession, TestDaemon};
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_berth");

const FILE_VALUE: &str = "file-s3cr3t-6f1d\n";
const ENV_VALUE: &str = "env-s3cr3t-93ab";

fn daemon() -> TestDaemon {
    TestDaemon::with_busybox(BIN).expect("daemon")
}

/// A context directory with the given Dockerfile.
fn context(dockerfile: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
    dir
}

/// `berth build ARGS CTX` with `TOKEN_VAR` in its environment: (success, stdout+stderr).
fn build(d: &TestDaemon, ctx: &Path, args: &[&str], env_value: &str) -> (bool, String) {
    let mut all = vec!["build"];
    all.extend_from_slice(args);
    let ctx = ctx.to_string_lossy();
    all.push(&ctx);
    let mut cmd = d.cli("berth")(&all);
    cmd.env("TOKEN_VAR", env_value);
    let o = output(&mut cmd);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.success(), text)
}

fn sha256(data: &[u8]) -> String {
    let mut c = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut c.stdin.take().unwrap(), data).unwrap();
    let o = c.wait_with_output().unwrap();
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// Every layer of `image` as `berth save` writes it: (entry names, raw bytes) of each.
fn saved_layers(d: &TestDaemon, image: &str) -> Vec<(Vec<String>, Vec<u8>)> {
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("img.tar");
    ok(&mut d.cli("berth")(&[
        "save",
        "-o",
        &file.to_string_lossy(),
        image,
    ]));
    let mut archive = tar::Archive::new(std::fs::File::open(&file).unwrap());
    let mut layers = Vec::new();
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let mut bytes = Vec::new();
        e.read_to_end(&mut bytes).unwrap();
        if bytes.starts_with(&[0x1f, 0x8b]) {
            let mut gz = Command::new("gzip")
                .arg("-dc")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let mut stdin = gz.stdin.take().unwrap();
            let input = bytes.clone();
            let writer = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &input));
            bytes = gz.wait_with_output().unwrap().stdout;
            let _ = writer.join();
        }
        // A layer is a tar; the config, manifests and index are JSON.
        let Ok(names) = tar::Archive::new(&bytes[..]).entries().and_then(|es| {
            es.map(|e| e.map(|e| String::from_utf8_lossy(&e.path_bytes()).into_owned()))
                .collect::<std::io::Result<Vec<_>>>()
        }) else {
            layers.push((Vec::new(), bytes));
            continue;
        };
        layers.push((names, bytes));
    }
    layers
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

const SECRETS_DOCKERFILE: &str = "FROM busybox
RUN --mount=type=secret,id=tok sha256sum /run/secrets/tok | cut -c1-64 > /file-sum && stat -c '%a %u %g' /run/secrets/tok > /file-perm
RUN --mount=type=secret,id=tok,dst=/etc/tok.conf,mode=0440,uid=1000,gid=100 stat -c '%a %u %g' /etc/tok.conf > /conf-perm
RUN --mount=type=secret,id=envtok,env=TOKEN,required sh -c 'printf %s \"$TOKEN\" | sha256sum | cut -c1-64 > /env-sum; test -e /run/secrets/envtok || echo no-file > /env-only'
RUN --mount=type=secret,id=absent cat /run/secrets/absent 2>/dev/null; echo skipped > /absent
";

#[test]
fn secrets_reach_the_run_and_nothing_else() {
    let d = daemon();
    let ctx = context(SECRETS_DOCKERFILE);
    let secret_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret_file.path(), FILE_VALUE).unwrap();
    let file_arg = format!("id=tok,src={}", secret_file.path().display());
    let args = [
        "-t",
        "sec",
        "--secret",
        &file_arg,
        "--secret",
        "id=envtok,env=TOKEN_VAR",
    ];
    let (okay, text) = build(&d, ctx.path(), &args, ENV_VALUE);
    assert!(okay, "{text}");
    assert!(!text.contains("s3cr3t"), "{text}");

    // The RUNs saw the values, as a file (0400 root by default, or as asked) and a variable.
    let run = |script: &str| d.run_rm(&["sec", "sh", "-c", script]);
    assert_eq!(run("cat /file-sum").trim(), sha256(FILE_VALUE.as_bytes()));
    assert_eq!(run("cat /file-perm"), "400 0 0\n");
    assert_eq!(run("cat /conf-perm"), "440 1000 100\n");
    assert_eq!(run("cat /env-sum").trim(), sha256(ENV_VALUE.as_bytes()));
    assert_eq!(run("cat /env-only"), "no-file\n");
    assert_eq!(run("cat /absent"), "skipped\n");

    // No trace in the image: no file or stub at the targets, no variable, nothing in the
    // history, nothing in any saved layer.
    assert_eq!(
        run("cat /run/secrets/tok 2>&1; ls -A /run 2>&1; cat /etc/tok.conf 2>&1; env | grep -c TOKEN; true"),
        "cat: can't open '/run/secrets/tok': No such file or directory\n\
         ls: /run: No such file or directory\n\
         cat: can't open '/etc/tok.conf': No such file or directory\n0\n"
    );
    let history = ok(&mut d.cli("berth")(&["history", "--no-trunc", "sec"]));
    assert!(!history.contains("s3cr3t"), "{history}");
    let inspect = ok(&mut d.cli("berth")(&["image", "inspect", "sec"]));
    assert!(!inspect.contains("s3cr3t"), "{inspect}");
    let layers = saved_layers(&d, "sec");
    assert!(
        layers
            .iter()
            .any(|(names, _)| names.iter().any(|n| n == "file-sum")),
        "no layer read"
    );
    for (names, bytes) in layers {
        assert!(!contains(&bytes, "s3cr3t"), "a saved blob holds a secret");
        assert!(
            !names
                .iter()
                .any(|n| n.starts_with("run") || n.contains("tok")),
            "{names:?}"
        );
    }
    assert!(!d.daemon_log().contains("s3cr3t"));
    // Nothing on the data root's disk holds a value either: not the database (the step's
    // container never had the variable in its persisted config), not a leftover file.
    let mut stack = vec![d.data_root.clone()];
    while let Some(p) = stack.pop() {
        let md = std::fs::symlink_metadata(&p).unwrap();
        if md.is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        } else if md.is_file() {
            let bytes = std::fs::read(&p).unwrap();
            assert!(
                !contains(&bytes, ENV_VALUE),
                "{} holds the env secret",
                p.display()
            );
            assert!(
                !contains(&bytes, FILE_VALUE.trim()),
                "{} holds the file secret",
                p.display()
            );
        }
    }
    // The private directory of the secret files is gone, and unmounted.
    let secrets_dir = d.exec_root.join("build-secrets");
    let left: Vec<_> = std::fs::read_dir(&secrets_dir)
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&*secrets_dir.to_string_lossy()),
        "{mounts}"
    );

    // Other values for the same secrets: every step comes from the cache.
    std::fs::write(secret_file.path(), "another value\n").unwrap();
    let (okay, again) = build(&d, ctx.path(), &args, "another env value");
    assert!(okay, "{again}");
    assert!(!again.contains("Running in"), "{again}");
    assert_eq!(again.matches("Using cache").count(), 4, "{again}");
}

#[test]
fn an_env_secret_takes_its_container_along_even_with_rm_false() {
    let d = daemon();
    let ctx = context(
        "FROM busybox\nRUN --mount=type=secret,id=envtok,env=TOKEN test -n \"$TOKEN\"\nRUN true\n",
    );
    let (okay, text) = build(
        &d,
        ctx.path(),
        &["--rm=false", "--secret", "id=envtok,env=TOKEN_VAR"],
        ENV_VALUE,
    );
    assert!(okay, "{text}");
    // The step with the variable left no container; the plain one is kept, as asked.
    let kept = ok(&mut d.cli("berth")(&["ps", "-aq"]));
    assert_eq!(kept.lines().count(), 1, "{kept}");
    let env = ok(&mut d.cli("berth")(&[
        "inspect",
        "--format",
        "{{.Config.Env}}",
        kept.trim(),
    ]));
    assert!(!env.contains("s3cr3t"), "{env}");
}

#[test]
fn a_required_secret_missing_fails_and_ssh_is_refused() {
    let d = daemon();
    let ctx =
        context("FROM busybox\nRUN --mount=type=secret,id=tok,required cat /run/secrets/tok\n");
    let (okay, text) = build(&d, ctx.path(), &[], "");
    assert!(!okay, "{text}");
    assert!(
        text.contains("secret tok not found") && text.contains("--secret id=tok"),
        "{text}"
    );
    // A secret file that cannot be read stops the build before anything is sent.
    let (okay, text) = build(&d, ctx.path(), &["--secret", "id=tok,src=/nonexistent"], "");
    assert!(
        !okay && text.contains("failed to read secret tok: /nonexistent"),
        "{text}"
    );
    let (okay, text) = build(&d, ctx.path(), &["--secret", "src=x"], "");
    assert!(!okay && text.contains("secret missing ID"), "{text}");

    let ctx = context("FROM busybox\nRUN --mount=type=ssh ssh-add -l\n");
    let (okay, text) = build(&d, ctx.path(), &[], "");
    assert!(!okay, "{text}");
    assert!(
        text.contains("RUN --mount=type=ssh is not supported")
            && text.contains("no ssh agent forwarding"),
        "{text}"
    );
    assert_eq!(ok(&mut d.cli("berth")(&["ps", "-aq"])).trim(), "");
}

#[test]
fn step_times_show_on_a_terminal_only() {
    let d = daemon();
    let ctx = context("FROM busybox\nRUN sleep 1\nCMD [\"sh\"]\n");
    let mut s = PtySession::spawn(
        d.cli("berth")(&["build", "-t", "timed", &ctx.path().to_string_lossy()]),
        None,
    )
    .unwrap();
    assert!(
        s.wait_exit().is_some_and(|st| st.success()),
        "{}",
        s.seen_text()
    );
    let seen = s.seen_text().replace("\r\n", "\n");
    let times: Vec<f64> = seen
        .lines()
        .filter_map(|l| l.strip_prefix(" ---> Done in "))
        .map(|t| t.trim_end_matches('s').parse().unwrap())
        .collect();
    // One per step, the RUN's at least its second, printed before the next step starts.
    assert_eq!(times.len(), 3, "{seen}");
    assert!(times[1] >= 1.0, "{seen}");
    let (step3, done) = (
        seen.find("Step 3/3").unwrap(),
        seen.match_indices(" ---> Done in "),
    );
    assert_eq!(done.filter(|(i, _)| *i < step3).count(), 2, "{seen}");
    // Piped, the output stays docker's.
    let (okay, text) = build(&d, ctx.path(), &["-t", "timed"], "");
    assert!(okay && !text.contains("Done in"), "{text}");
}

#[test]
fn the_largest_secrets_allowed_fit_the_request_header() {
    let d = daemon();
    let ctx = context(
        "FROM busybox\nRUN --mount=type=secret,id=a --mount=type=secret,id=b,required wc -c /run/secrets/a /run/secrets/b > /sizes\n",
    );
    // 128 KiB in all, incompressible as base64 would see it.
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let noise: Vec<u8> = (0..128 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&a, &noise[..100 * 1024]).unwrap();
    std::fs::write(&b, &noise[100 * 1024..]).unwrap();
    let (sa, sb) = (
        format!("id=a,src={}", a.display()),
        format!("id=b,src={}", b.display()),
    );
    let (okay, text) = build(
        &d,
        ctx.path(),
        &["-t", "big", "--secret", &sa, "--secret", &sb],
        "",
    );
    assert!(okay, "{text}");
    let sizes = d.run_rm(&["big", "cat", "/sizes"]);
    let sizes: Vec<&str> = sizes.split_whitespace().collect();
    assert_eq!(
        sizes,
        [
            "102400",
            "/run/secrets/a",
            "28672",
            "/run/secrets/b",
            "131072",
            "total"
        ]
    );
    // One byte more is refused by the CLI, saying why.
    std::fs::write(&b, &noise[100 * 1024 - 1..]).unwrap();
    let (okay, text) = build(&d, ctx.path(), &["--secret", &sa, "--secret", &sb], "");
    assert!(!okay, "{text}");
    assert!(
        text.contains("the build secrets total 131073 bytes"),
        "{text}"
    );
}

/// Mount points under `dir` in this (the daemon's) mount namespace.
fn mounts_under(dir: &Path) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| Path::new(p).starts_with(dir))
        .map(str::to_string)
        .collect()
}

#[test]
fn a_daemon_killed_mid_build_leaves_nothing_mounted_once_restarted() {
    let mut d = daemon();
    let ctx =
        context("FROM busybox\nRUN --mount=type=secret,id=tok cat /run/secrets/tok && sleep 60\n");
    let src = ctx.path().join("tok.txt");
    std::fs::write(&src, FILE_VALUE).unwrap();
    let secret = format!("id=tok,src={}", src.display());
    let mut child = d
        .berth(&["build", "--secret", &secret, &ctx.path().to_string_lossy()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let secrets_dir = d.exec_root.join("build-secrets");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while mounts_under(&secrets_dir).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the RUN never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    d.kill9();
    let _ = child.kill();
    let _ = child.wait();
    assert!(!mounts_under(&secrets_dir).is_empty());
    d.restart().unwrap();
    assert_eq!(mounts_under(&secrets_dir), Vec::<String>::new());
    assert_eq!(mounts_under(&d.data_root.join("tmp")), Vec::<String>::new());
    assert_eq!(std::fs::read_dir(&secrets_dir).unwrap().count(), 0);
    // The step's container outlived the daemon (its shim owns it); it goes as any other.
    let ids = ok(&mut d.berth(&["ps", "-aq"]));
    for id in ids.split_whitespace() {
        ok(&mut d.berth(&["rm", "-f", id]));
    }
}

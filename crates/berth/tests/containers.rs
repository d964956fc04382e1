//! Containers through the real docker CLI and ours: run, exit codes, flags, logs, lifecycle.

use berth_harness::{ok, output, TestDaemon};
use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_berth");

fn code(o: &std::process::Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

#[test]
fn run_foreground_and_exit_codes() {
    let d = TestDaemon::with_busybox(BIN).unwrap();
    for cli in ["docker", "berth"] {
        let cmd = |args: &[&str]| {
            if cli == "docker" {
                d.docker(args)
            } else {
                d.berth(args)
            }
        };
        let o = output(&mut cmd(&["run", "--rm", "busybox", "echo", "hello world"]));
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            "hello world\n",
            "{cli}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(code(&o), 0);
        let o = output(&mut cmd(&[
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 3",
        ]));
        assert_eq!(code(&o), 3, "{cli}");
        assert_eq!(String::from_utf8_lossy(&o.stdout), "out\n");
        assert_eq!(String::from_utf8_lossy(&o.stderr), "err\n");
        let o = output(&mut cmd(&["run", "--rm", "busybox", "no-such-command"]));
        assert_eq!(
            code(&o),
            127,
            "{cli}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(String::from_utf8_lossy(&o.stderr).contains("executable file not found"));
        let o = output(&mut cmd(&["run", "--rm", "busybox", "/etc"]));
        assert_eq!(
            code(&o),
            126,
            "{cli}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let o = output(&mut cmd(&[
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "sh -c 'kill -9 $$'; exit $?",
        ]));
        assert_eq!(code(&o), 137, "{cli}");
        let o = output(&mut cmd(&["run", "--rm", "no-such-image:1"]));
        assert_eq!(code(&o), 125, "{cli}");
    }
    // --rm removed everything.
    assert!(ok(&mut d.docker(&["ps", "-aq"])).trim().is_empty());
}

#[test]
fn run_flags_reach_the_container() {
    let d = TestDaemon::with_busybox(BIN).unwrap();
    let envfile = d.dir.path().join("env");
    std::fs::write(&envfile, "FROM_FILE=yes\n# comment\n").unwrap();
    let out = ok(&mut d.docker(&[
        "run",
        "--rm",
        "-e",
        "A=1",
        "--env-file",
        &envfile.to_string_lossy(),
        "-w",
        "/tmp",
        "-u",
        "nobody",
        "-h",
        "myhost",
        "busybox",
        "sh",
        "-c",
        "echo $A $FROM_FILE $(pwd) $(id -u) $(hostname)",
    ]));
    assert_eq!(out.trim(), "1 yes /tmp 65534 myhost");
    let out = ok(&mut d.docker(&[
        "run",
        "--rm",
        "--entrypoint",
        "echo",
        "busybox",
        "via",
        "entrypoint",
    ]));
    assert_eq!(out.trim(), "via entrypoint");
    let o = output(&mut d.docker(&["run", "--rm", "--read-only", "busybox", "touch", "/x"]));
    assert_ne!(code(&o), 0, "read-only rootfs is writable");
    ok(&mut d.docker(&[
        "run",
        "--rm",
        "--read-only",
        "busybox",
        "touch",
        "/tmp/../dev/shm/ok",
    ]));
    // Capabilities: Docker's default set is 0x00000000a80425fb.
    let caps = ok(&mut d.docker(&[
        "run",
        "--rm",
        "busybox",
        "grep",
        "CapEff",
        "/proc/self/status",
    ]));
    assert!(caps.contains("00000000a80425fb"), "{caps}");
    let caps = ok(&mut d.docker(&[
        "run",
        "--rm",
        "--cap-drop",
        "ALL",
        "--cap-add",
        "NET_ADMIN",
        "busybox",
        "grep",
        "CapEff",
        "/proc/self/status",
    ]));
    assert!(caps.contains("0000000000001000"), "{caps}");
    let o = output(&mut d.docker(&[
        "run",
        "--rm",
        "--privileged",
        "busybox",
        "grep",
        "CapEff",
        "/proc/self/status",
    ]));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("000001ff")
            || String::from_utf8_lossy(&o.stdout).contains("ffffffff"),
        "{:?}",
        o
    );
    // Seccomp by default: unshare of a user namespace is refused.
    let o = output(&mut d.docker(&["run", "--rm", "busybox", "unshare", "-U", "true"]));
    assert_ne!(code(&o), 0);
    // Networks: none has only lo; host sees the host's interfaces.
    let ifs = ok(&mut d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "ls",
        "/sys/class/net",
    ]));
    assert_eq!(ifs.split_whitespace().collect::<Vec<_>>(), vec!["lo"]);

    let ifs = ok(&mut d.docker(&[
        "run",
        "--rm",
        "--network",
        "host",
        "busybox",
        "ls",
        "/sys/class/net",
    ]));
    // The daemon's own namespace (with its bridge) is its containers' "host".
    assert!(ifs.split_whitespace().any(|i| i == "berth0"), "{ifs}");
    // Resource limits land in the container's cgroup.
    ok(&mut d.docker(&[
        "run",
        "-d",
        "--name",
        "limited",
        "-m",
        "64m",
        "--cpus",
        "0.5",
        "--cpu-shares",
        "512",
        "--pids-limit",
        "50",
        "-l",
        "team=core",
        "busybox",
        "sleep",
        "60",
    ]));
    let pid = d.inspect("limited", "{{.State.Pid}}");
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(cg.contains("/berth/"), "{cg}");
    let id = d.inspect("limited", "{{.Id}}");
    let read = |ctrl: &str, file: &str| {
        let v1 = format!("/sys/fs/cgroup/{ctrl}/berth/{id}/{file}");
        std::fs::read_to_string(&v1)
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    if std::path::Path::new("/sys/fs/cgroup/memory").exists() {
        assert_eq!(
            read("memory", "memory.limit_in_bytes"),
            (64 << 20).to_string()
        );
        assert_eq!(read("pids", "pids.max"), "50");
        assert_eq!(read("cpu", "cpu.cfs_quota_us"), "50000");
        assert_eq!(read("cpu", "cpu.shares"), "512");
    }
    assert_eq!(d.inspect("limited", "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}} {{index .Config.Labels \"team\"}}"), "67108864 500000000 50 core");
    ok(&mut d.docker(&["rm", "-f", "limited"]));
    assert!(
        !std::path::Path::new(&format!("/sys/fs/cgroup/memory/berth/{id}")).exists(),
        "cgroup left behind"
    );
}

#[test]
fn detached_lifecycle_ps_logs_inspect() {
    let d = TestDaemon::with_busybox(BIN).unwrap();
    let id = ok(&mut d.docker(&[
        "run",
        "-d",
        "--name",
        "web",
        "--stop-timeout",
        "1",
        "busybox",
        "sh",
        "-c",
        "echo first; echo oops >&2; trap 'echo bye; exit 0' TERM; while true; do sleep 0.1; done",
    ]))
    .trim()
    .to_string();
    assert_eq!(id.len(), 64);
    // Name conflict.
    let o = output(&mut d.docker(&["run", "-d", "--name", "web", "busybox", "true"]));
    assert_eq!(code(&o), 125);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("is already in use"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Start of a running container is a no-op (304), removal without -f is a 409.
    ok(&mut d.docker(&["start", "web"]));
    let o = output(&mut d.docker(&["rm", "web"]));
    assert_ne!(code(&o), 0);
    assert!(String::from_utf8_lossy(&o.stderr).contains("container is running"));

    let ps = ok(&mut d.docker(&["ps"]));
    assert!(ps.contains("web") && ps.contains("Up "), "{ps}");
    let q = ok(&mut d.docker(&[
        "ps",
        "-q",
        "--filter",
        "status=running",
        "--filter",
        "name=we",
    ]));
    assert_eq!(q.trim(), &id[..12]);
    assert!(
        ok(&mut d.docker(&["ps", "-q", "--filter", "status=exited"]))
            .trim()
            .is_empty()
    );
    let f = ok(&mut d.docker(&[
        "ps",
        "--format",
        "{{.Names}} {{.Image}} {{.State}}",
        "--filter",
        &format!("id={}", &id[..8]),
    ]));
    assert_eq!(f.trim(), "web busybox running");
    let f = ok(&mut d.docker(&["ps", "-q", "--filter", "ancestor=busybox"]));
    assert_eq!(f.trim(), &id[..12]);

    std::thread::sleep(Duration::from_millis(300));
    let o = output(&mut d.docker(&["logs", "web"]));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "first\n");
    assert_eq!(String::from_utf8_lossy(&o.stderr), "oops\n");
    let o = output(&mut d.docker(&["logs", "-t", "--tail", "1", "web"]));
    let t = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    assert_eq!(t.lines().count(), 1, "{t}");
    assert!(t.contains("T") && t.contains("Z "), "{t}");
    let o = output(&mut d.docker(&[
        "logs",
        "--since",
        "2000-01-01T00:00:00Z",
        "--until",
        "2001-01-01T00:00:00Z",
        "web",
    ]));
    assert!(o.stdout.is_empty() && o.stderr.is_empty());
    // logs -f ends when the container stops.
    let follower = d
        .docker(&["logs", "-f", "web"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let fields = d.inspect("web", "{{.Name}} {{.State.Status}} {{.State.Running}} {{.Config.Image}} {{.HostConfig.NetworkMode}} {{.Driver}}");
    assert_eq!(fields, "/web running true busybox bridge overlayfs");
    assert!(d.inspect("web", "{{.LogPath}}").ends_with("container.log"));
    assert!(d.inspect("web", "{{.State.StartedAt}}").starts_with("20"));
    assert!(!d
        .inspect("web", "{{.GraphDriver.Data.MergedDir}}")
        .is_empty());

    let t0 = Instant::now();
    ok(&mut d.docker(&["stop", "web"]));
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "SIGTERM handled, no kill wait"
    );
    assert_eq!(
        d.inspect("web", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 0"
    );
    let logs = follower.wait_with_output().unwrap();
    assert!(
        String::from_utf8_lossy(&logs.stdout).contains("bye"),
        "{:?}",
        logs
    );
    // Stopping a stopped container succeeds (304 under the hood).
    ok(&mut d.docker(&["stop", "web"]));
    let ps = ok(&mut d.docker(&[
        "ps",
        "-a",
        "--filter",
        "exited=0",
        "--format",
        "{{.Names}} {{.Status}}",
    ]));
    assert!(ps.starts_with("web Exited (0)"), "{ps}");

    ok(&mut d.docker(&["rename", "web", "web2"]));
    ok(&mut d.docker(&["restart", "web2"]));
    assert_eq!(d.inspect("web2", "{{.State.Running}}"), "true");
    ok(&mut d.docker(&["kill", "-s", "KILL", "web2"]));
    let w = ok(&mut d.docker(&["wait", "web2"]));
    assert_eq!(w.trim(), "137");
    ok(&mut d.berth(&["start", "web2"]));
    ok(&mut d.berth(&["rm", "-f", "web2"]));
    let o = output(&mut d.docker(&["inspect", "web2"]));
    assert_ne!(code(&o), 0);
    // Nothing mounted under the data root once containers are gone.
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    assert!(
        !mounts.contains(&d.data_root.to_string_lossy().to_string()),
        "leaked mount"
    );
}

#[test]
fn stdin_attach_and_create_start() {
    let d = TestDaemon::with_busybox(BIN).unwrap();
    let mut child = d
        .docker(&["run", "-i", "--rm", "busybox", "sh", "-c", "tr a-z A-Z"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"shout\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "SHOUT\n");

    ok(&mut d.docker(&[
        "create",
        "--name",
        "later",
        "busybox",
        "echo",
        "created then started",
    ]));
    assert_eq!(d.inspect("later", "{{.State.Status}}"), "created");
    let out = ok(&mut d.docker(&["start", "-a", "later"]));
    assert_eq!(out.trim(), "created then started");
    ok(&mut d.docker(&[
        "run",
        "-d",
        "--name",
        "talker",
        "busybox",
        "sh",
        "-c",
        "sleep 0.5; echo late",
    ]));
    let out = ok(&mut d.docker(&["attach", "talker"]));
    assert_eq!(out.trim(), "late");
}

#[test]
fn restart_policies_and_oom() {
    let d = TestDaemon::with_busybox(BIN).unwrap();
    ok(&mut d.docker(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "exit 1",
    ]));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = d.inspect("flaky", "{{.RestartCount}} {{.State.Status}}");
        if s == "2 exited" {
            break;
        }
        assert!(Instant::now() < deadline, "on-failure:2 never settled: {s}");
        std::thread::sleep(Duration::from_millis(100));
    }
    ok(&mut d.docker(&[
        "run",
        "-d",
        "--name",
        "always",
        "--restart",
        "always",
        "busybox",
        "sh",
        "-c",
        "sleep 0.2",
    ]));
    std::thread::sleep(Duration::from_millis(1500));
    let n: i64 = d.inspect("always", "{{.RestartCount}}").parse().unwrap();
    assert!(n >= 1, "always did not restart");
    ok(&mut d.docker(&["stop", "-t", "1", "always"]));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(d.inspect("always", "{{.State.Running}}"), "false");

    if std::path::Path::new("/sys/fs/cgroup/memory").exists()
        || std::path::Path::new("/sys/fs/cgroup/memory.max").exists()
    {
        let o = output(&mut d.docker(&[
            "run",
            "--name",
            "hog",
            "-m",
            "16m",
            "--memory-swap",
            "16m",
            "busybox",
            "tail",
            "/dev/zero",
        ]));
        assert_eq!(code(&o), 137);
        assert_eq!(d.inspect("hog", "{{.State.OOMKilled}}"), "true");
    }
}

#[test]
fn log_rotation_follows_log_opts() {
    let d = TestDaemon::with_busybox(BIN).unwrap();
    ok(&mut d.docker(&[
        "run",
        "--name",
        "chatty",
        "--log-opt",
        "max-size=10k",
        "--log-opt",
        "max-file=2",
        "busybox",
        "sh",
        "-c",
        "i=0; while [ $i -lt 2000 ]; do echo line-$i; i=$((i+1)); done",
    ]));
    let log = d.inspect("chatty", "{{.LogPath}}");
    let dir = std::path::Path::new(&log).parent().unwrap();
    let files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("container.log"))
        .collect();
    assert_eq!(files.len(), 2, "max-file=2");
    for f in &files {
        assert!(f.metadata().unwrap().len() <= 11 * 1024);
    }
    let first = std::fs::read_to_string(&log).unwrap();
    let line: serde_json::Value = serde_json::from_str(first.lines().next().unwrap()).unwrap();
    assert_eq!(line["stream"], "stdout");
    assert!(line["log"].as_str().unwrap().starts_with("line-"));
    let out = ok(&mut d.docker(&["logs", "--tail", "1", "chatty"]));
    assert_eq!(out.trim(), "line-1999");
}

/// A slow stop holds the container's lifecycle lock; listing and inspecting must not wait for it.
/// `--stop-signal` picks what `stop` sends.
#[test]
fn reads_do_not_wait_for_a_slow_stop() {
    let d = TestDaemon::with_busybox(BIN).unwrap();
    ok(&mut d.docker(&[
        "run",
        "-d",
        "--name",
        "stubborn",
        "busybox",
        "sh",
        "-c",
        "trap '' TERM; while true; do sleep 0.1; done",
    ]));
    ok(&mut d.docker(&[
        "run",
        "-d",
        "--name",
        "polite",
        "--stop-signal",
        "USR1",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 42' USR1; while true; do sleep 0.1; done",
    ]));
    let id = d.inspect("stubborn", "{{.Id}}");
    let mut stopper = d.docker(&["stop", "-t", "4", "stubborn"]).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    let ps = ok(&mut d.docker(&["ps", "--format", "{{.Names}}"]));
    assert!(ps.contains("stubborn"));
    assert_eq!(d.inspect("stubborn", "{{.State.Running}}"), "true");
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "reads waited for the stop: {:?}",
        t0.elapsed()
    );
    assert!(stopper.wait().unwrap().success());
    assert_eq!(d.inspect("stubborn", "{{.State.ExitCode}}"), "137");
    ok(&mut d.docker(&["stop", "polite"]));
    assert_eq!(d.inspect("polite", "{{.State.ExitCode}}"), "42");
    assert_eq!(d.inspect("polite", "{{.Config.StopSignal}}"), "USR1");

    // Once removed, nothing of the containers is left: no shim, no mount, no cgroup.
    ok(&mut d.docker(&["rm", "stubborn", "polite"]));
    let shims = std::process::Command::new("pgrep")
        .args(["-f", &format!("berth shim {}", d.exec_root.display())])
        .output()
        .unwrap();
    assert!(
        shims.stdout.is_empty(),
        "shim left: {}",
        String::from_utf8_lossy(&shims.stdout)
    );
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    assert!(!mounts.contains(&*d.data_root.to_string_lossy()));
    for ctrl in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        assert!(
            !ctrl.path().join("berth").join(&id).exists(),
            "cgroup left in {}",
            ctrl.path().display()
        );
    }
    assert!(!d.data_root.join("containers").join(&id).exists());
}

/// Docker's containers start with every signal at its default disposition, whatever the
/// daemon inherited (a daemon started in the background by a shell ignores SIGQUIT).
#[test]
fn container_process_starts_with_default_signal_dispositions() {
    let d = TestDaemon::with_busybox(BIN).unwrap();
    for args in [
        &[
            "run",
            "--rm",
            "busybox",
            "grep",
            "-E",
            "Sig(Ign|Blk)",
            "/proc/self/status",
        ][..],
        &[
            "run", "--rm", "-d", "--name", "sigs", "busybox", "sleep", "100",
        ][..],
    ] {
        let out = ok(&mut d.docker(args));
        if args.contains(&"-d") {
            let out = ok(&mut d.docker(&[
                "exec",
                "sigs",
                "grep",
                "-E",
                "Sig(Ign|Blk)",
                "/proc/1/status",
            ]));
            assert_eq!(
                out,
                "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n"
            );
            ok(&mut d.docker(&["rm", "-f", "sigs"]));
        } else {
            assert_eq!(
                out,
                "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n"
            );
        }
    }
}

//! Healthchecks through the real docker CLI and ours: probes run by the container's shim,
//! State.Health in inspect, ps status and filter, timeouts, image HEALTHCHECK, validation,
//! live-restore of the health state, and the daemon's CPU staying flat while probes run.

use berth_harness::{busybox_tar, ok, output, TestDaemon};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_berth");

fn health(d: &TestDaemon, name: &str) -> serde_json::Value {
    let s = d.inspect(name, "{{json .State.Health}}");
    serde_json::from_str(&s).unwrap_or(serde_json::Value::Null)
}

/// Waits until the container's health status is `want`, returning State.Health.
fn wait_status(d: &TestDaemon, name: &str, want: &str, within: Duration) -> serde_json::Value {
    let deadline = Instant::now() + within;
    loop {
        let h = health(d, name);
        if h["Status"] == want {
            return h;
        }
        if Instant::now() > deadline {
            panic!(
                "{name}: health never became {want}: {h}\nshim log: {}",
                shim_log(d, name)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn shim_log(d: &TestDaemon, name: &str) -> String {
    let id = d.inspect(name, "{{.Id}}");
    std::fs::read_to_string(d.exec_root.join("shims").join(id).join("shim.log")).unwrap_or_default()
}

fn ps(d: &TestDaemon, filter: &str) -> Vec<String> {
    ok(&mut d.docker(&["ps", "--filter", filter, "--format", "{{.Names}}"]))
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn passing_probe_makes_healthy_with_ps_status_and_filter() {
    let d = TestDaemon::with_busybox(BIN).unwrap();
    ok(&mut d.docker(&[
        "run",
        "-d",
        "--name",
        "good",
        "--health-cmd",
        "echo ok",
        "--health-interval",
        "200ms",
        "busybox",
        "sleep",
        "100",
    ]));
    ok(&mut d.berth(&[
        "run",
        "-d",
        "--name",
        "slow",
        "--health-cmd",
        "true",
        "--health-interval",
        "1h",
        "busybox",
        "sleep",
        "100",
    ]));
    ok(&mut d.docker(&["run", "-d", "--name", "plain", "busybox", "sleep", "100"]));

    // Not probed yet: starting.
    assert_eq!(health(&d, "slow")["Status"], "starting");
    let h = wait_status(&d, "good", "healthy", Duration::from_secs(10));
    assert_eq!(h["FailingStreak"], 0);
    let log = h["Log"].as_array().unwrap();
    assert!(!log.is_empty());
    assert_eq!(log[0]["ExitCode"], 0);
    assert_eq!(log[0]["Output"], "ok\n");
    assert!(log[0]["Start"].as_str().unwrap().starts_with("20"));
    assert_eq!(d.inspect("plain", "{{json .State.Health}}"), "null");

    let status = ok(&mut d.docker(&["ps", "--format", "{{.Names}} {{.Status}}"]));
    let line = |n: &str| {
        status
            .lines()
            .find(|l| l.starts_with(&format!("{n} ")))
            .unwrap_or_default()
            .to_string()
    };
    assert!(line("good").ends_with("(healthy)"), "{status}");
    assert!(line("slow").ends_with("(health: starting)"), "{status}");
    assert!(line("plain").starts_with("plain Up "), "{status}");
    assert!(!line("plain").contains('('), "{status}");

    assert_eq!(ps(&d, "health=healthy"), ["good"]);
    assert_eq!(ps(&d, "health=starting"), ["slow"]);
    assert_eq!(ps(&d, "health=none"), ["plain"]);
    assert!(ps(&d, "health=unhealthy").is_empty());
    let berth_ps =
        ok(&mut d.berth(&["ps", "--filter", "health=healthy", "--format", "{{.Names}}"]));
    assert_eq!(berth_ps.trim(), "good");
    let o = output(&mut d.docker(&["ps", "--filter", "health=bogus"]));
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("Unrecognised filter value for health: bogus"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A probe runs as `docker exec` does: in the container's pid namespace and cgroup, under its
/// seccomp filter and without capabilities the container lacks.
#[test]
fn probe_runs_confined_like_the_container() {
    let d = TestDaemon::with_busybox(BIN).unwrap();
    ok(&mut d.docker(&[
        "run",
        "-d",
        "--name",
        "confined",
        "--health-cmd",
        "grep -E '^(Seccomp|NoNewPrivs|CapEff):' /proc/self/status; cat /proc/1/cmdline",
        "--health-interval",
        "200ms",
        "busybox",
        "sleep",
        "100",
    ]));
    let h = wait_status(&d, "confined", "healthy", Duration::from_secs(10));
    let out = h["Log"][0]["Output"].as_str().unwrap().to_string();
    assert!(out.contains("Seccomp:\t2"), "{out}");
    // Docker's default capability set, not the shim's full one.
    assert!(out.contains("CapEff:\t00000000a80425fb"), "{out}");
    assert!(
        out.contains("sleep"),
        "pid 1 is the container's init: {out}"
    );
}

#[test]
fn failing_probe_becomes_unhealthy_after_retries() {
    let d = TestDaemon::with_busybox(BIN).unwrap();
    ok(&mut d.berth(&[
        "run",
        "-d",
        "--name",
        "bad",
        "--health-cmd",
        "echo broken >&2; exit 3",
        "--health-interval",
        "200ms",
        "--health-retries",
        "2",
        "busybox",
        "sleep",
        "100",
    ]));
    let h = wait_status(&d, "bad", "unhealthy", Duration::from_secs(10));
    assert!(h["FailingStreak"].as_i64().unwrap() >= 2, "{h}");
    let log = h["Log"].as_array().unwrap();
    let last = log.last().unwrap();
    assert_eq!(last["ExitCode"], 3);
    assert_eq!(last["Output"], "broken\n");
    // Only the last five results are kept.
    std::thread::sleep(Duration::from_millis(1500));
    let h = health(&d, "bad");
    assert_eq!(h["Log"].as_array().unwrap().len(), 5, "{h}");
    assert!(h["FailingStreak"].as_i64().unwrap() >= 5, "{h}");
    let status = ok(&mut d.berth(&["ps", "--format", "{{.Status}}"]));
    assert!(status.trim().ends_with("(unhealthy)"), "{status}");
    // A stopped container keeps its last results.
    ok(&mut d.docker(&["stop", "-t", "0", "bad"]));
    let h = health(&d, "bad");
    assert_eq!(h["Status"], "unhealthy", "{h}");
    assert_eq!(h["Log"].as_array().unwrap().len(), 5, "{h}");
    assert_eq!(ps(&d, "health=unhealthy"), Vec::<String>::new());
    let all = ok(&mut d.docker(&[
        "ps",
        "-a",
        "--filter",
        "health=unhealthy",
        "--format",
        "{{.Names}}",
    ]));
    assert_eq!(all.trim(), "bad");
    // A restart starts over (starting, no streak) and keeps the earlier results.
    ok(&mut d.docker(&["start", "bad"]));
    let h = health(&d, "bad");
    assert_eq!(h["Log"].as_array().unwrap().len(), 5, "{h}");
    assert!(
        h["Log"][0]["Start"].as_str().unwrap().starts_with("20"),
        "{h}"
    );
}

#[test]
fn hanging_probe_is_killed_at_its_timeout() {
    let d = TestDaemon::with_busybox(BIN).unwrap();
    ok(&mut d.docker(&[
        "run",
        "-d",
        "--name",
        "hang",
        "--health-cmd",
        "sleep 30",
        "--health-interval",
        "200ms",
        "--health-timeout",
        "300ms",
        "--health-retries",
        "1",
        "busybox",
        "sleep",
        "100",
    ]));
    let t0 = Instant::now();
    let h = wait_status(&d, "hang", "unhealthy", Duration::from_secs(10));
    assert!(t0.elapsed() < Duration::from_secs(5));
    let first = &h["Log"][0];
    assert_eq!(first["ExitCode"], -1, "{h}");
    assert_eq!(first["Output"], "Health check exceeded timeout (300ms)");
    // The killed probe is gone: only the container's own sleep stays in its cgroup (a
    // fresh probe may be starting, so look for the hanging one by its command line).
    let id = d.inspect("hang", "{{.Id}}");
    std::thread::sleep(Duration::from_millis(100));
    let procs = std::fs::read_to_string(format!("/sys/fs/cgroup/pids/berth/{id}/cgroup.procs"))
        .or_else(|_| std::fs::read_to_string(format!("/sys/fs/cgroup/berth/{id}/cgroup.procs")))
        .unwrap_or_default();
    let hanging = procs
        .lines()
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .map(|c| c == b"sleep\x0030\x00")
                .unwrap_or(false)
        })
        .count();
    assert!(hanging <= 1, "timed-out probes left running: {hanging}");
}

#[test]
fn image_healthcheck_is_honoured_merged_and_disabled() {
    let d = TestDaemon::with_busybox(BIN).unwrap();
    let tar = busybox_tar().to_string_lossy().into_owned();
    ok(&mut d.docker(&[
        "import",
        "-c",
        "HEALTHCHECK --interval=200ms --retries=4 CMD [\"true\"]",
        "-c",
        "CMD [\"sleep\", \"100\"]",
        &tar,
        "hc:1",
    ]));
    let img = ok(&mut d.docker(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Healthcheck}}",
        "hc:1",
    ]));
    let img: serde_json::Value = serde_json::from_str(img.trim()).unwrap();
    assert_eq!(img["Test"], serde_json::json!(["CMD", "true"]));
    assert_eq!(img["Interval"], 200_000_000);

    ok(&mut d.docker(&["run", "-d", "--name", "fromimage", "hc:1"]));
    wait_status(&d, "fromimage", "healthy", Duration::from_secs(10));

    // Flags given override the image's fields; the rest are inherited.
    ok(&mut d.berth(&[
        "create",
        "--name",
        "merged",
        "--health-retries",
        "9",
        "hc:1",
    ]));
    let hc: serde_json::Value =
        serde_json::from_str(&d.inspect("merged", "{{json .Config.Healthcheck}}")).unwrap();
    assert_eq!(hc["Test"], serde_json::json!(["CMD", "true"]));
    assert_eq!(hc["Retries"], 9);
    assert_eq!(hc["Interval"], 200_000_000);

    for cli in ["docker", "berth"] {
        let name = format!("off-{cli}");
        let args = ["run", "-d", "--name", &name, "--no-healthcheck", "hc:1"];
        ok(&mut if cli == "docker" {
            d.docker(&args)
        } else {
            d.berth(&args)
        });
        assert_eq!(
            d.inspect(&name, "{{json .Config.Healthcheck.Test}}"),
            "[\"NONE\"]"
        );
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(d.inspect(&name, "{{json .State.Health}}"), "null");
    }
    let o = output(&mut d.berth(&["run", "--no-healthcheck", "--health-cmd", "true", "hc:1"]));
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr)
        .contains("--no-healthcheck conflicts with --health-* options"));
}

#[test]
fn invalid_healthcheck_settings_are_rejected() {
    let d = TestDaemon::with_busybox(BIN).unwrap();
    let o = output(&mut d.docker(&[
        "create",
        "--health-cmd",
        "true",
        "--health-interval",
        "500us",
        "busybox",
    ]));
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("Interval in Healthcheck cannot be less than 1ms"),
        "{err}"
    );
    let o = output(&mut d.berth(&["create", "--health-timeout", "-1s", "busybox"]));
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--health-timeout cannot be negative"));
    let body = r#"{"Image":"busybox","Healthcheck":{"Test":["CMD","true"],"Retries":-2}}"#;
    let (status, _, resp) = berth_harness::http(
        &d.socket,
        "POST",
        "/containers/create",
        Some(body.as_bytes()),
    )
    .unwrap();
    let resp = String::from_utf8_lossy(&resp);
    assert_eq!(status, 400, "{resp}");
    assert!(
        resp.contains("Retries in Healthcheck cannot be negative"),
        "{resp}"
    );
    assert_eq!(ok(&mut d.docker(&["ps", "-aq"])).trim(), "");
}

#[test]
fn health_state_survives_a_daemon_restart() {
    let mut d = TestDaemon::with_busybox(BIN).unwrap();
    // Healthy while /tmp/ok exists, which the container removes after a few seconds.
    ok(&mut d.docker(&[
        "run",
        "-d",
        "--name",
        "flip",
        "--health-cmd",
        "test -f /tmp/ok",
        "--health-interval",
        "200ms",
        "--health-retries",
        "1",
        "busybox",
        "sh",
        "-c",
        "touch /tmp/ok; sleep 4; rm /tmp/ok; sleep 100",
    ]));
    wait_status(&d, "flip", "healthy", Duration::from_secs(5));
    d.kill9();
    d.restart().unwrap();
    let h = health(&d, "flip");
    assert!(
        h["Status"] == "healthy" || h["Status"] == "unhealthy",
        "{h}"
    );
    assert!(!h["Log"].as_array().unwrap().is_empty(), "{h}");
    // The restarted daemon hears the shim's next status change.
    wait_status(&d, "flip", "unhealthy", Duration::from_secs(10));
    assert_eq!(ps(&d, "health=unhealthy"), ["flip"]);
}

fn daemon_cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the parenthesised command: utime and stime are the 12th and 13th.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

#[test]
fn probes_cost_the_daemon_no_cpu() {
    let d = TestDaemon::with_busybox(BIN).unwrap();
    for i in 0..5 {
        ok(&mut d.docker(&[
            "run",
            "-d",
            "--name",
            &format!("p{i}"),
            "--health-cmd",
            "true",
            "--health-interval",
            "200ms",
            "busybox",
            "sleep",
            "100",
        ]));
    }
    for i in 0..5 {
        wait_status(&d, &format!("p{i}"), "healthy", Duration::from_secs(10));
    }
    let pid = d.pid().unwrap();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let before = daemon_cpu_ticks(pid);
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    let used = (daemon_cpu_ticks(pid) - before) as f64 / hz;
    let share = used / t0.elapsed().as_secs_f64() * 100.0;
    eprintln!(
        "daemon CPU while 5 containers probe every 200ms: {used:.3}s = {share:.2}% of a core"
    );
    assert!(share < 5.0, "daemon used {share:.2}% of a core");
    // The probes did run meanwhile.
    let h = health(&d, "p0");
    assert_eq!(h["Log"].as_array().unwrap().len(), 5, "{h}");
}

#[test]
fn failures_in_the_start_period_do_not_count() {
    let d = TestDaemon::with_busybox(BIN).unwrap();
    for (cli, name) in [("docker", "sp-docker"), ("berth", "sp-berth")] {
        let args = [
            "run",
            "-d",
            "--name",
            name,
            "--health-cmd",
            "exit 1",
            "--health-interval",
            "500ms",
            "--health-start-period",
            "2s",
            "--health-start-interval",
            "100ms",
            "--health-retries",
            "1",
            "busybox",
            "sleep",
            "100",
        ];
        ok(&mut if cli == "docker" {
            d.docker(&args)
        } else {
            d.berth(&args)
        });
    }
    let t0 = Instant::now();
    // Probed at the start interval, yet still starting: failures do not count yet.
    std::thread::sleep(Duration::from_millis(1000));
    for name in ["sp-docker", "sp-berth"] {
        let h = health(&d, name);
        if t0.elapsed() < Duration::from_millis(1800) {
            assert_eq!(h["Status"], "starting", "{name}: {h}");
            assert_eq!(h["FailingStreak"], 0, "{name}: {h}");
        }
        // More probes than the 500ms interval would allow in a second.
        assert!(h["Log"].as_array().unwrap().len() >= 3, "{name}: {h}");
    }
    // Past the start period the next failure (at the regular interval) makes them unhealthy.
    for name in ["sp-docker", "sp-berth"] {
        let h = wait_status(&d, name, "unhealthy", Duration::from_secs(10));
        // Counted from the end of the start period only.
        let streak = h["FailingStreak"].as_i64().unwrap();
        assert!((1..=2).contains(&streak), "{name}: {h}");
    }
}

//! Resource commands through the real docker CLI and ours: stats, top, pause/unpause, update.

use berth_harness::{http, ok, output, TestDaemon};
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_berth");
const MB: u64 = 1024 * 1024;

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A file of the container's cgroup: `v1` is the controller-relative name, `v2` the
/// unified one.
fn cgroup_file(id: &str, controller: &str, v1: &str, v2: &str) -> PathBuf {
    let root = PathBuf::from("/sys/fs/cgroup");
    if root.join("cgroup.controllers").exists() {
        root.join("berth").join(id).join(v2)
    } else {
        root.join(controller).join("berth").join(id).join(v1)
    }
}

fn read_trim(p: &PathBuf) -> String {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_string()
}

/// The first `n` JSON lines of a streaming GET, then the connection is dropped.
fn stream_lines(d: &TestDaemon, path: &str, n: usize) -> Vec<Value> {
    let mut s = UnixStream::connect(&d.socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    // Status line and headers.
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
    }
    let mut out = Vec::new();
    while out.len() < n {
        line.clear();
        if r.read_line(&mut line).unwrap() == 0 {
            break;
        }
        if let Ok(v) = serde_json::from_str::<Value>(line.trim()) {
            out.push(v);
        }
    }
    out
}

fn percent(s: &str) -> f64 {
    s.trim_end_matches('%').parse().unwrap()
}

#[test]
fn stats_under_load_and_streaming() {
    let d = TestDaemon::with_busybox(BIN).unwrap();
    ok(&mut d.docker(&[
        "run",
        "-d",
        "--name",
        "busy",
        "-m",
        "64m",
        "busybox",
        "sh",
        "-c",
        "while :; do :; done",
    ]));
    ok(&mut d.docker(&["create", "--name", "idle", "busybox", "true"]));
    for (cli, mut cmd) in [
        (
            "docker",
            d.docker(&["stats", "--no-stream", "--format", "{{json .}}", "busy"]),
        ),
        (
            "berth",
            d.berth(&["stats", "--no-stream", "--format", "{{json .}}", "busy"]),
        ),
    ] {
        let row: Value = serde_json::from_str(ok(&mut cmd).trim()).unwrap();
        assert!(
            percent(row["CPUPerc"].as_str().unwrap()) > 0.0,
            "{cli}: {row}"
        );
        assert!(
            row["MemUsage"].as_str().unwrap().ends_with("/ 64MiB"),
            "{cli}: {row}"
        );
        assert_eq!(row["Name"], "busy", "{cli}");
        assert_eq!(row["ID"].as_str().unwrap().len(), 12, "{cli}");
    }
    // The default table of both CLIs.
    for mut cmd in [
        d.docker(&["stats", "--no-stream"]),
        d.berth(&["stats", "--no-stream"]),
    ] {
        let out = ok(&mut cmd);
        assert!(
            out.starts_with("CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT   MEM %"),
            "{out}"
        );
        assert!(out.contains("busy"), "{out}");
        assert!(
            !out.contains("idle"),
            "stopped containers only with -a: {out}"
        );
    }
    let out = ok(&mut d.berth(&["stats", "--no-stream", "-a", "--no-trunc"]));
    assert!(out.contains("idle"), "{out}");

    // Streaming: one frame a second, precpu from the frame before.
    let frames = stream_lines(&d, "/containers/busy/stats", 2);
    assert_eq!(frames.len(), 2);
    let f = &frames[1];
    assert_eq!(f["name"], "/busy");
    assert_eq!(f["memory_stats"]["limit"], 64 * MB);
    assert!(
        f["precpu_stats"]["cpu_usage"]["total_usage"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert!(
        f["cpu_stats"]["cpu_usage"]["total_usage"].as_u64()
            > f["precpu_stats"]["cpu_usage"]["total_usage"].as_u64()
    );
    assert!(f["cpu_stats"]["system_cpu_usage"].as_u64().unwrap() > 0);
    assert!(f["cpu_stats"]["online_cpus"].as_u64().unwrap() >= 1);
    assert_eq!(f["pids_stats"]["current"], 1);
    assert_ne!(f["preread"], "0001-01-01T00:00:00Z");

    // stream=false carries a sample from about a second earlier; one-shot has none.
    let (code, _, body) = http(
        &d.socket,
        "GET",
        "/containers/busy/stats?stream=false",
        None,
    )
    .unwrap();
    assert_eq!(code, 200);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert!(v["precpu_stats"]["system_cpu_usage"].as_u64().unwrap() > 0);
    let (_, _, body) = http(
        &d.socket,
        "GET",
        "/containers/busy/stats?stream=false&one-shot=true",
        None,
    )
    .unwrap();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["precpu_stats"]["cpu_usage"]["total_usage"], 0);
    assert_eq!(v["preread"], "0001-01-01T00:00:00Z");
    let (code, _, _) = http(
        &d.socket,
        "GET",
        "/containers/busy/stats?stream=true&one-shot=true",
        None,
    )
    .unwrap();
    assert_eq!(code, 400);

    // A stopped container: dockerd's zeroed frame.
    let (code, _, body) = http(
        &d.socket,
        "GET",
        "/containers/idle/stats?stream=false",
        None,
    )
    .unwrap();
    assert_eq!(code, 200);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["name"], "/idle");
    assert_eq!(v["read"], "0001-01-01T00:00:00Z");
    assert_eq!(v["cpu_stats"]["cpu_usage"]["total_usage"], 0);
    let (code, _, _) = http(
        &d.socket,
        "GET",
        "/containers/nope/stats?stream=false",
        None,
    )
    .unwrap();
    assert_eq!(code, 404);

    // The stream ends when the container stops.
    let started = Instant::now();
    let mut s = UnixStream::connect(&d.socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "GET /containers/busy/stats HTTP/1.0\r\nHost: localhost\r\n\r\n"
    )
    .unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    ok(&mut d.docker(&["kill", "busy"]));
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut r, &mut rest).unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn top_default_and_custom_args() {
    let d = TestDaemon::with_busybox(BIN).unwrap();
    ok(&mut d.docker(&[
        "run",
        "-d",
        "--name",
        "tp",
        "busybox",
        "sh",
        "-c",
        "sleep 1000 & sleep 1001 & wait",
    ]));
    // The shell's children show as `sh` until they have exec'd sleep.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = ok(&mut d.docker(&["top", "tp", "-o", "pid,args"]));
        if out.contains("sleep 1000\n") && out.contains("sleep 1001\n") {
            break;
        }
        assert!(Instant::now() < deadline, "sleeps never started: {out}");
        std::thread::sleep(Duration::from_millis(100));
    }
    for (cli, mut cmd) in [
        ("docker", d.docker(&["top", "tp"])),
        ("berth", d.berth(&["top", "tp"])),
    ] {
        let out = ok(&mut cmd);
        let mut lines = out.lines();
        let titles: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
        assert_eq!(
            titles,
            ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"],
            "{cli}"
        );
        let rows: Vec<&str> = lines.collect();
        assert_eq!(rows.len(), 3, "{cli}: {out}");
        assert!(
            out.contains("sh -c sleep 1000 & sleep 1001 & wait"),
            "{cli}: {out}"
        );
        assert!(out.contains("sleep 1000\n"), "{cli}: {out}");
        assert!(out.contains("sleep 1001"), "{cli}: {out}");
    }
    for (cli, mut cmd) in [
        ("docker", d.docker(&["top", "tp", "-o", "pid,comm"])),
        ("berth", d.berth(&["top", "tp", "-o", "pid,comm"])),
    ] {
        let out = ok(&mut cmd);
        assert!(out.starts_with("PID "), "{cli}: {out}");
        assert_eq!(out.lines().count(), 4, "{cli}: {out}");
        assert!(
            out.lines()
                .skip(1)
                .all(|l| l.ends_with("sh") || l.ends_with("sleep")),
            "{out}"
        );
    }
    let (code, _, body) = http(&d.socket, "GET", "/containers/tp/top?ps_args=aux", None).unwrap();
    assert_eq!(code, 200);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["Titles"][1], "PID");
    assert_eq!(v["Processes"].as_array().unwrap().len(), 3);

    // ps's own error comes back as the daemon's.
    let o = output(&mut d.docker(&["top", "tp", "--no-such-ps-option"]));
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("Error response from daemon: ps:"),
        "{}",
        stderr(&o)
    );

    ok(&mut d.docker(&["create", "--name", "stopped", "busybox", "true"]));
    for mut cmd in [d.docker(&["top", "stopped"]), d.berth(&["top", "stopped"])] {
        let o = output(&mut cmd);
        assert_eq!(o.status.code(), Some(1));
        assert!(stderr(&o).contains("is not running"), "{}", stderr(&o));
    }
}

fn log_lines(d: &TestDaemon, name: &str) -> usize {
    ok(&mut d.docker(&["logs", name])).lines().count()
}

#[test]
fn pause_freezes_and_unpause_resumes() {
    let d = TestDaemon::with_busybox(BIN).unwrap();
    ok(&mut d.docker(&[
        "run",
        "-d",
        "--name",
        "counter",
        "busybox",
        "sh",
        "-c",
        "i=0; while :; do i=$((i+1)); echo $i; sleep 0.1; done",
    ]));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(ok(&mut d.docker(&["pause", "counter"])).trim(), "counter");
    assert_eq!(
        d.inspect(
            "counter",
            "{{.State.Status}} {{.State.Paused}} {{.State.Running}}"
        ),
        "paused true true"
    );
    let ps = ok(&mut d.berth(&[
        "ps",
        "--filter",
        "status=paused",
        "--format",
        "{{.Names}} {{.Status}}",
    ]));
    assert!(
        ps.trim().starts_with("counter Up") && ps.trim().ends_with("(Paused)"),
        "{ps}"
    );
    let running = ok(&mut d.docker(&["ps", "-q", "--filter", "status=running"]));
    assert!(
        running.trim().is_empty(),
        "a paused container is not 'running' to the filter"
    );
    std::thread::sleep(Duration::from_millis(300));
    let frozen = log_lines(&d, "counter");
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(
        log_lines(&d, "counter"),
        frozen,
        "the counter advanced while paused"
    );

    // Errors, with Docker's messages and exit code 1.
    for mut cmd in [
        d.docker(&["pause", "counter"]),
        d.berth(&["pause", "counter"]),
    ] {
        let o = output(&mut cmd);
        assert_eq!(o.status.code(), Some(1));
        assert!(stderr(&o).contains("is already paused"), "{}", stderr(&o));
    }
    assert_eq!(ok(&mut d.berth(&["unpause", "counter"])).trim(), "counter");
    assert_eq!(
        d.inspect("counter", "{{.State.Status}} {{.State.Paused}}"),
        "running false"
    );
    std::thread::sleep(Duration::from_millis(800));
    assert!(
        log_lines(&d, "counter") > frozen,
        "the counter did not resume"
    );
    for mut cmd in [
        d.docker(&["unpause", "counter"]),
        d.berth(&["unpause", "counter"]),
    ] {
        let o = output(&mut cmd);
        assert_eq!(o.status.code(), Some(1));
        assert!(stderr(&o).contains("is not paused"), "{}", stderr(&o));
    }
    ok(&mut d.docker(&["create", "--name", "stopped", "busybox", "true"]));
    let o = output(&mut d.docker(&["pause", "stopped"]));
    assert!(stderr(&o).contains("is not running"), "{}", stderr(&o));

    // A paused container can still be stopped and killed.
    ok(&mut d.berth(&["pause", "counter"]));
    ok(&mut d.docker(&["stop", "-t", "1", "counter"]));
    assert_eq!(
        d.inspect("counter", "{{.State.Status}} {{.State.Paused}}"),
        "exited false"
    );
    ok(&mut d.docker(&["start", "counter"]));
    ok(&mut d.docker(&["pause", "counter"]));
    ok(&mut d.berth(&["kill", "counter"]));
    assert_eq!(d.inspect("counter", "{{.State.Status}}"), "exited");
    ok(&mut d.docker(&["start", "counter"]));
    ok(&mut d.docker(&["pause", "counter"]));
    ok(&mut d.docker(&["rm", "-f", "counter"]));
}

#[test]
fn update_limits_live_and_persisted() {
    let d = TestDaemon::with_busybox(BIN).unwrap();
    let id = ok(&mut d.docker(&[
        "run",
        "-d",
        "--name",
        "up",
        "-m",
        "64m",
        "--pids-limit",
        "50",
        "busybox",
        "sleep",
        "1000",
    ]))
    .trim()
    .to_string();
    let mem_file = cgroup_file(&id, "memory", "memory.limit_in_bytes", "memory.max");
    let pids_file = cgroup_file(&id, "pids", "pids.max", "pids.max");
    assert_eq!(read_trim(&mem_file), (64 * MB).to_string());

    assert_eq!(
        ok(&mut d.docker(&[
            "update",
            "--memory",
            "128m",
            "--memory-swap",
            "256m",
            "--pids-limit",
            "100",
            "up"
        ]))
        .trim(),
        "up"
    );
    assert_eq!(
        d.inspect(
            "up",
            "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.PidsLimit}}"
        ),
        format!("{} {} 100", 128 * MB, 256 * MB)
    );
    assert_eq!(read_trim(&mem_file), (128 * MB).to_string());
    assert_eq!(read_trim(&pids_file), "100");

    ok(&mut d.berth(&["update", "--pids-limit", "70", "--cpu-shares", "512", "up"]));
    assert_eq!(read_trim(&pids_file), "70");
    assert_eq!(
        d.inspect(
            "up",
            "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}} {{.HostConfig.CpuShares}}"
        ),
        format!("{} 70 512", 128 * MB),
        "fields absent from the update keep their values"
    );

    // Invalid updates: 400 with Docker's message, and nothing changes.
    let before = d.inspect("up", "{{json .HostConfig}}");
    for mut cmd in [
        d.docker(&["update", "--memory", "1m", "--pids-limit", "5", "up"]),
        d.berth(&["update", "--memory", "1m", "--pids-limit", "5", "up"]),
    ] {
        let o = output(&mut cmd);
        assert_eq!(o.status.code(), Some(1));
        assert!(
            stderr(&o).contains("Minimum memory limit allowed is 6MB"),
            "{}",
            stderr(&o)
        );
    }
    let o = output(&mut d.docker(&["update", "--memory", "300m", "--memory-swap", "200m", "up"]));
    assert!(
        stderr(&o).contains("Minimum memoryswap limit should be larger than memory limit"),
        "{}",
        stderr(&o)
    );
    let o = output(&mut d.docker(&["update", "--memory", "512m", "up"]));
    assert!(
        stderr(&o).contains("update the memoryswap at the same time"),
        "{}",
        stderr(&o)
    );
    let (code, _, body) = http(
        &d.socket,
        "POST",
        "/containers/up/update",
        Some(br#"{"Memory":-5}"#),
    )
    .unwrap();
    assert_eq!(code, 400, "{}", String::from_utf8_lossy(&body));
    assert_eq!(d.inspect("up", "{{json .HostConfig}}"), before);
    assert_eq!(read_trim(&mem_file), (128 * MB).to_string());
    assert_eq!(read_trim(&pids_file), "70");
    let (code, _, body) = http(
        &d.socket,
        "POST",
        "/containers/up/update",
        Some(br#"{"PidsLimit":60}"#),
    )
    .unwrap();
    assert_eq!(code, 200);
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap()["Warnings"],
        serde_json::json!([])
    );

    // A stopped container's update applies at its next start.
    ok(&mut d.docker(&["kill", "up"]));
    ok(&mut d.berth(&["update", "--memory", "96m", "up"]));
    ok(&mut d.docker(&["start", "up"]));
    assert_eq!(read_trim(&mem_file), (96 * MB).to_string());
}

#[test]
fn update_restart_policy_applies_to_running_container() {
    let d = TestDaemon::with_busybox(BIN).unwrap();
    ok(&mut d.docker(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "busybox",
        "sh",
        "-c",
        "sleep 2; exit 3",
    ]));
    ok(&mut d.berth(&["update", "--restart", "on-failure:2", "flaky"]));
    assert_eq!(
        d.inspect(
            "flaky",
            "{{.HostConfig.RestartPolicy.Name}} {{.HostConfig.RestartPolicy.MaximumRetryCount}}"
        ),
        "on-failure 2"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while d.inspect("flaky", "{{.RestartCount}}") == "0" {
        assert!(
            Instant::now() < deadline,
            "the updated restart policy was not applied"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    ok(&mut d.docker(&["update", "--restart", "no", "flaky"]));
    assert_eq!(
        d.inspect("flaky", "{{.HostConfig.RestartPolicy.Name}}"),
        "no"
    );

    // --rm containers cannot get a restart policy.
    ok(&mut d.docker(&[
        "run", "-d", "--rm", "--name", "gone", "busybox", "sleep", "100",
    ]));
    let o = output(&mut d.docker(&["update", "--restart", "always", "gone"]));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("AutoRemove is enabled"),
        "{}",
        stderr(&o)
    );
}

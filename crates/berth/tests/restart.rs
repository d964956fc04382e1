//! Restart policies: on-failure limits, always across process and daemon deaths,
//! unless-stopped respecting a stop, the Restarting back-off state, and --rm.

use berth_harness::{ok, output, TestDaemon};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_berth");

fn inspect(d: &TestDaemon, fmt: &str, id: &str) -> String {
    ok(&mut d.docker(&["inspect", "-f", fmt, id]))
        .trim()
        .to_string()
}

/// Polls `f` until it returns true or `secs` pass.
fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn kill_pid(pid: &str) {
    let pid: i32 = pid.parse().unwrap();
    assert!(pid > 0);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
}

#[test]
fn on_failure_stops_after_max_retries() {
    let d = TestDaemon::start(BIN).unwrap();
    d.import_busybox().unwrap();
    let id = ok(&mut d.docker(&[
        "run",
        "-d",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "exit 3",
    ]));
    let id = id.trim();
    let fmt = "{{.State.Status}} {{.RestartCount}} {{.State.ExitCode}}";
    assert!(
        eventually(10, || inspect(&d, fmt, id) == "exited 2 3"),
        "{}",
        inspect(&d, fmt, id)
    );
    // And it stays so: no third restart.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(inspect(&d, fmt, id), "exited 2 3");
    assert_eq!(
        inspect(
            &d,
            "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}",
            id
        ),
        "on-failure:2"
    );
    // A clean exit is not a failure.
    let ok_id = ok(&mut d.berth(&["run", "-d", "--restart", "on-failure", "busybox", "true"]));
    let ok_id = ok_id.trim();
    assert!(eventually(5, || inspect(&d, "{{.State.Status}}", ok_id) == "exited"));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(inspect(&d, "{{.RestartCount}}", ok_id), "0");
}

#[test]
fn always_shows_restarting_during_back_off() {
    let d = TestDaemon::start(BIN).unwrap();
    d.import_busybox().unwrap();
    let id = ok(&mut d.docker(&[
        "run",
        "-d",
        "--restart",
        "always",
        "busybox",
        "sh",
        "-c",
        "exit 1",
    ]));
    let id = id.trim();
    let mut status = String::new();
    assert!(
        eventually(15, || {
            status = ok(&mut d.docker(&[
                "ps",
                "-a",
                "--filter",
                &format!("id={id}"),
                "--format",
                "{{.Status}}",
            ]));
            status.starts_with("Restarting (1) ")
        }),
        "{status}"
    );
    assert!(eventually(10, || inspect(
        &d,
        "{{.State.Restarting}} {{.State.Running}}",
        id
    ) == "true true"));
    // A stop during the back-off cancels the restart at once.
    let t0 = Instant::now();
    ok(&mut d.docker(&["stop", id]));
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    let count = inspect(&d, "{{.RestartCount}}", id);
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(inspect(&d, "{{.State.Status}}", id), "exited");
    assert_eq!(inspect(&d, "{{.RestartCount}}", id), count);
    ok(&mut d.docker(&["rm", id]));
}

#[test]
fn always_survives_process_and_daemon_deaths() {
    let mut d = TestDaemon::start(BIN).unwrap();
    d.import_busybox().unwrap();
    let id = ok(&mut d.docker(&[
        "run",
        "-d",
        "--restart",
        "always",
        "busybox",
        "sleep",
        "300",
    ]))
    .trim()
    .to_string();
    let pid = inspect(&d, "{{.State.Pid}}", &id);
    kill_pid(&pid);
    assert!(
        eventually(10, || {
            // Running is true during the back-off too (as in docker): wait for the process.
            inspect(&d, "{{.State.Status}} {{.RestartCount}}", &id) == "running 1"
        }),
        "{}",
        inspect(&d, "{{.State.Status}} {{.RestartCount}}", &id)
    );
    let pid2 = inspect(&d, "{{.State.Pid}}", &id);
    assert_ne!(pid, pid2);

    // Daemon crash: the container keeps running and is re-attached.
    d.kill9();
    d.restart().unwrap();
    assert_eq!(inspect(&d, "{{.State.Running}}", &id), "true");
    assert_eq!(inspect(&d, "{{.State.Pid}}", &id), pid2);

    // Daemon crash, and the container dies while no daemon watches: restarted on boot.
    d.kill9();
    kill_pid(&pid2);
    std::thread::sleep(Duration::from_millis(200));
    d.restart().unwrap();
    assert!(
        eventually(10, || inspect(&d, "{{.State.Status}}", &id) == "running"),
        "{}",
        inspect(&d, "{{.State.Status}}", &id)
    );
    assert_ne!(inspect(&d, "{{.State.Pid}}", &id), pid2);

    // A manual stop holds while the daemon runs; `always` comes back when the daemon restarts.
    ok(&mut d.docker(&["stop", "-t", "0", &id]));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(inspect(&d, "{{.State.Running}}", &id), "false");
    d.stop();
    d.restart().unwrap();
    assert!(eventually(10, || inspect(&d, "{{.State.Status}}", &id) == "running"));
}

#[test]
fn unless_stopped_stays_stopped_across_daemon_restart() {
    let mut d = TestDaemon::start(BIN).unwrap();
    d.import_busybox().unwrap();
    let id = ok(&mut d.docker(&[
        "run",
        "-d",
        "--restart",
        "unless-stopped",
        "busybox",
        "sleep",
        "300",
    ]))
    .trim()
    .to_string();
    let other = ok(&mut d.docker(&[
        "run",
        "-d",
        "--restart",
        "unless-stopped",
        "busybox",
        "sleep",
        "300",
    ]))
    .trim()
    .to_string();
    ok(&mut d.docker(&["stop", "-t", "0", &id]));
    d.kill9();
    // The other one dies while the daemon is away: it was not stopped by the user.
    kill_pid(&inspect_offline_pid(&d, &other));
    d.restart().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(inspect(&d, "{{.State.Status}}", &id), "exited");
    assert!(eventually(10, || inspect(&d, "{{.State.Status}}", &other) == "running"));
}

/// The pid of a container's process while the daemon is down, from the shim's state.
fn inspect_offline_pid(d: &TestDaemon, id: &str) -> String {
    // The process is a child of the shim, whose pid file lives in the exec root.
    let out = std::process::Command::new("pgrep")
        .args(["-f", "^sleep 300$"])
        .output()
        .unwrap();
    let pids: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect();
    for pid in pids {
        let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        if cg.contains(id) {
            return pid;
        }
    }
    panic!("no process found for {id} under {}", d.exec_root.display());
}

#[test]
fn rm_detached_container_disappears_after_exit() {
    let d = TestDaemon::start(BIN).unwrap();
    d.import_busybox().unwrap();
    for cli in ["docker", "berth"] {
        let args = ["run", "--rm", "-d", "busybox", "sleep", "0.3"];
        let id = if cli == "docker" {
            ok(&mut d.docker(&args))
        } else {
            ok(&mut d.berth(&args))
        };
        let id = id.trim().to_string();
        assert!(
            eventually(10, || {
                let out = output(&mut d.docker(&["inspect", &id]));
                !out.status.success()
            }),
            "{cli}: --rm container still there"
        );
        assert!(!d.data_root.join("containers").join(&id).exists());
    }
}

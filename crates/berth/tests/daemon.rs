//! The daemon as a process: SIGKILL and restart with containers running (live restore),
//! SIGTERM shutdown, and the CLI starting a daemon by itself.

use berth_harness::{ok, output, TestDaemon};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_berth");

#[test]
fn containers_survive_a_daemon_crash() {
    let mut d = TestDaemon::start(BIN).unwrap();
    d.import_busybox().unwrap();
    ok(&mut d.docker(&[
        "run",
        "-d",
        "--name",
        "survivor",
        "busybox",
        "sh",
        "-c",
        "i=0; while true; do echo tick-$i; i=$((i+1)); sleep 0.1; done",
    ]));
    ok(&mut d.docker(&[
        "run",
        "-d",
        "--name",
        "short",
        "busybox",
        "sh",
        "-c",
        "sleep 1; exit 7",
    ]));
    let pid = ok(&mut d.docker(&["inspect", "-f", "{{.State.Pid}}", "survivor"]))
        .trim()
        .to_string();
    d.kill9();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "container died with the daemon"
    );
    d.restart().unwrap();

    let ps = ok(&mut d.docker(&["ps", "--format", "{{.Names}} {{.Status}}"]));
    assert!(ps.contains("survivor Up"), "{ps}");
    // The container that ended while the daemon was down has its real exit code.
    assert_eq!(
        ok(&mut d.docker(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            "short"
        ]))
        .trim(),
        "exited 7"
    );
    // Logs kept flowing while the daemon was gone.
    let logs = ok(&mut d.docker(&["logs", "survivor"]));
    assert!(logs.lines().count() >= 10, "{logs}");
    let waiter = d
        .docker(&["wait", "survivor"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    ok(&mut d.docker(&["stop", "-t", "1", "survivor"]));
    assert!(t0.elapsed() < Duration::from_secs(8));
    let w = waiter.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&w.stdout).trim(), "137");
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
}

#[test]
fn sigterm_stops_cleanly_and_cli_autostarts() {
    let mut d = TestDaemon::start(BIN).unwrap();
    let st = d.stop().unwrap();
    assert!(st.success(), "{st}");
    assert!(!d.socket.exists(), "socket removed on shutdown");

    // With no daemon behind the default socket, the CLI starts one. Point it at a private
    // default socket through its environment, inside the test's network namespace, so the test
    // leaves the host's socket and network alone.
    let out = output(
        d.in_host_netns(&[BIN, "version"])
            .env_remove("DOCKER_HOST")
            .env("BERTH_DEFAULT_HOST", d.host())
            .env(
                "BERTH_DAEMON_ARGS",
                format!(
                    "--data-root {} --exec-root {}",
                    d.data_root.display(),
                    d.exec_root.display()
                ),
            ),
    );
    if out.status.success() {
        assert!(d.ping(), "autostarted daemon answers");
        let pid: i32 = std::fs::read_to_string(d.exec_root.join("berth.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while d.ping() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    } else {
        panic!("autostart failed: {}", String::from_utf8_lossy(&out.stderr));
    }
}

/// Shim sockets under a deep exec root are longer than a UNIX socket path may be.
#[test]
fn deep_exec_root_still_reaches_shims() {
    let nest = "a-rather-long-directory-name-for-the-engine/and-another-level-below-it";
    let d = TestDaemon::start_nested(BIN, nest).unwrap();
    d.import_busybox().unwrap();
    let out = ok(&mut d.docker(&["run", "--rm", "busybox", "echo", "deep"]));
    assert_eq!(out.trim(), "deep");
    ok(&mut d.docker(&["run", "-d", "--name", "deep", "busybox", "sleep", "30"]));
    ok(&mut d.docker(&["stop", "-t", "0", "deep"]));
}

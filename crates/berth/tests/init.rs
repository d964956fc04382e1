//! `--init`: berth's own init runs as PID 1 (/sbin/docker-init), forwards signals, reaps
//! orphans and passes the command's exit status on.

use berth_harness::{ok, output, TestDaemon};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_berth");

#[test]
fn berth_binary_is_static() {
    // Containers without a libc (busybox) must be able to run it.
    let out = std::process::Command::new("ldd").arg(BIN).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("statically linked") || text.contains("not a dynamic executable"),
        "{text}"
    );
}

#[test]
fn init_is_pid_one_and_passes_exit_codes() {
    let d = TestDaemon::start(BIN).unwrap();
    d.import_busybox().unwrap();
    for cli in ["docker", "berth"] {
        let mut cmd = if cli == "docker" {
            d.docker(&["run", "--rm", "--init", "busybox", "ps", "-o", "pid,comm"])
        } else {
            d.berth(&["run", "--rm", "--init", "busybox", "ps", "-o", "pid,comm"])
        };
        let out = ok(&mut cmd);
        let first = out
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|w| w.first() == Some(&"1"))
            .unwrap_or_default();
        assert_eq!(first, vec!["1", "docker-init"], "{cli}: {out}");
    }
    // Exit codes pass through, and a killed command reports 128+signal.
    let out = output(&mut d.docker(&["run", "--rm", "--init", "busybox", "sh", "-c", "exit 7"]));
    assert_eq!(out.status.code(), Some(7));
    let out = output(&mut d.docker(&[
        "run",
        "--rm",
        "--init",
        "busybox",
        "sh",
        "-c",
        "kill -USR1 $$",
    ]));
    assert_eq!(out.status.code(), Some(128 + 10));
    // A command that does not exist still fails like docker's (before the init is involved).
    let out = output(&mut d.docker(&["run", "--rm", "--init", "busybox", "nosuchcmd"]));
    assert_eq!(out.status.code(), Some(127));

    let id = ok(&mut d.docker(&["create", "--init", "busybox", "true"]));
    let init = ok(&mut d.docker(&["inspect", "-f", "{{.HostConfig.Init}}", id.trim()]));
    assert_eq!(init.trim(), "true");
}

#[test]
fn init_forwards_sigterm_and_reaps_zombies() {
    let d = TestDaemon::start(BIN).unwrap();
    d.import_busybox().unwrap();
    // Without an init, sleep as PID 1 ignores SIGTERM and `stop` waits for its timeout; with
    // one, the signal reaches sleep and it ends at once.
    let id = ok(&mut d.docker(&["run", "-d", "--init", "busybox", "sleep", "300"]));
    let id = id.trim();
    let t0 = Instant::now();
    ok(&mut d.docker(&["stop", "-t", "20", id]));
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "stop took {:?}",
        t0.elapsed()
    );
    let code = ok(&mut d.docker(&["inspect", "-f", "{{.State.ExitCode}}", id]));
    assert_eq!(code.trim(), "143");

    // An orphan re-parented to PID 1 is reaped when it exits: no zombie left.
    let out = ok(&mut d.docker(&[
        "run",
        "--rm",
        "--init",
        "busybox",
        "sh",
        "-c",
        "sh -c 'sleep 0.2 &'; sleep 1; cat /proc/[0-9]*/stat",
    ]));
    assert!(!out.contains(") Z "), "zombie left: {out}");
    assert!(out.contains("(docker-init)"), "{out}");
}

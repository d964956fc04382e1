//! `docker exec` end to end, through the real docker CLI and ours.

use berth_harness::{ok, output, PtySession, TestDaemon};
use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_berth");
const CLIS: [&str; 2] = ["docker", "berth"];

fn cli(d: &TestDaemon, which: &str, args: &[&str]) -> std::process::Command {
    if which == "docker" {
        d.docker(args)
    } else {
        d.berth(args)
    }
}

/// (status, body) of one API request.
fn api(d: &TestDaemon, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let host = d.host();
    let sock = std::path::Path::new(host.trim_start_matches("unix://"));
    let (code, _, body) = berth_harness::http(sock, method, path, body.map(str::as_bytes)).unwrap();
    (code, String::from_utf8_lossy(&body).into_owned())
}

fn daemon_with(name: &str, extra: &[&str]) -> TestDaemon {
    let d = TestDaemon::start(BIN).unwrap();
    d.import_busybox().unwrap();
    let mut args = vec!["run", "-d", "--name", name];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["busybox", "sleep", "300"]);
    ok(&mut d.berth(&args));
    d
}

#[test]
fn exit_codes_env_user_workdir() {
    let d = daemon_with("ctr", &["-e", "FROM_IMAGE=1", "-w", "/tmp"]);
    for c in CLIS {
        let out = output(&mut cli(&d, c, &["exec", "ctr", "echo", "hi"]));
        assert_eq!(out.status.code(), Some(0), "{c}: {out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n", "{c}");

        let out = output(&mut cli(
            &d,
            c,
            &["exec", "ctr", "sh", "-c", "echo err >&2; exit 3"],
        ));
        assert_eq!(out.status.code(), Some(3), "{c}: {out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n", "{c}");

        let out = output(&mut cli(&d, c, &["exec", "ctr", "nosuchcmd"]));
        assert_eq!(out.status.code(), Some(127), "{c}: {out:?}");
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(
            text.contains("executable file not found in $PATH"),
            "{c}: {text}"
        );

        let out = output(&mut cli(&d, c, &["exec", "ctr", "/etc/passwd"]));
        assert_eq!(out.status.code(), Some(126), "{c}: {out:?}");

        let out = ok(&mut cli(
            &d,
            c,
            &[
                "exec",
                "-e",
                "A=b",
                "ctr",
                "sh",
                "-c",
                "echo $A $FROM_IMAGE $(pwd)",
            ],
        ));
        assert_eq!(out, "b 1 /tmp\n", "{c}");
        let out = ok(&mut cli(
            &d,
            c,
            &[
                "exec",
                "-w",
                "/etc",
                "-u",
                "65534:65534",
                "ctr",
                "sh",
                "-c",
                "pwd; id -u; id -g",
            ],
        ));
        assert_eq!(out, "/etc\n65534\n65534\n", "{c}");
        let out = ok(&mut cli(
            &d,
            c,
            &["exec", "-u", "nobody", "ctr", "id", "-un"],
        ));
        assert_eq!(out, "nobody\n", "{c}");
    }
}

#[test]
fn stdin_detach_and_inspect() {
    let d = daemon_with("ctr", &[]);
    for c in CLIS {
        let mut child = cli(&d, c, &["exec", "-i", "ctr", "cat"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"hi there\n")
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{c}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "hi there\n", "{c}");

        let marker = format!("/tmp/detached-{c}");
        let out = ok(&mut cli(
            &d,
            c,
            &[
                "exec",
                "-d",
                "ctr",
                "sh",
                "-c",
                &format!("sleep 0.2; touch {marker}"),
            ],
        ));
        assert_eq!(out, "", "{c}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !output(&mut d.berth(&["exec", "ctr", "test", "-e", &marker]))
            .status
            .success()
        {
            assert!(Instant::now() < deadline, "{c}: detached exec did not run");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    // Exec inspect, through the API as docker-py and the CLI use it.
    let (code, body) = api(
        &d,
        "POST",
        "/containers/ctr/exec",
        Some(r#"{"Cmd":["sh","-c","exit 7"],"AttachStdout":true,"User":"nobody"}"#),
    );
    assert_eq!(code, 201, "{body}");
    let id = serde_json::from_str::<serde_json::Value>(&body).unwrap()["Id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(id.len(), 64);
    let inspect = |id: &str| {
        let (code, body) = api(&d, "GET", &format!("/exec/{id}/json"), None);
        assert_eq!(code, 200, "{body}");
        serde_json::from_str::<serde_json::Value>(&body).unwrap()
    };
    let v = inspect(&id);
    assert_eq!(v["Running"], false);
    assert_eq!(v["ExitCode"], serde_json::Value::Null);
    assert_eq!(v["ProcessConfig"]["entrypoint"], "sh");
    assert_eq!(
        v["ProcessConfig"]["arguments"],
        serde_json::json!(["-c", "exit 7"])
    );
    assert_eq!(v["ProcessConfig"]["user"], "nobody");
    assert_eq!(v["OpenStdout"], true);
    assert_eq!(v["OpenStdin"], false);
    let cid = ok(&mut d.berth(&["inspect", "-f", "{{.Id}}", "ctr"]));
    assert_eq!(v["ContainerID"], cid.trim());
    let ids = ok(&mut d.docker(&["inspect", "-f", "{{json .ExecIDs}}", "ctr"]));
    assert!(ids.contains(&id), "{ids}");
    let (code, body) = api(
        &d,
        "POST",
        &format!("/exec/{id}/start"),
        Some(r#"{"Detach":true}"#),
    );
    assert_eq!(code, 200, "{body}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = inspect(&id);
        if v["ExitCode"] == 7 {
            assert_eq!(v["Running"], false);
            break;
        }
        assert!(Instant::now() < deadline, "{v}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, _) = api(&d, "GET", "/exec/nope/json", None);
    assert_eq!(code, 404);
}

#[test]
fn stopped_container_is_a_conflict() {
    let d = TestDaemon::start(BIN).unwrap();
    d.import_busybox().unwrap();
    ok(&mut d.berth(&["create", "--name", "ctr", "busybox", "true"]));
    let id = ok(&mut d.berth(&["inspect", "-f", "{{.Id}}", "ctr"]));
    for c in CLIS {
        let out = output(&mut cli(&d, c, &["exec", "ctr", "true"]));
        assert_eq!(out.status.code(), Some(1), "{c}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("Container {} is not running", id.trim())),
            "{c}: {err}"
        );
    }
    let (code, body) = api(
        &d,
        "POST",
        "/containers/ctr/exec",
        Some(r#"{"Cmd":["true"]}"#),
    );
    assert_eq!(code, 409, "{body}");

    // A paused container refuses execs with dockerd's advice.
    ok(&mut d.berth(&["run", "-d", "--name", "frozen", "busybox", "sleep", "100"]));
    ok(&mut d.berth(&["pause", "frozen"]));
    for c in CLIS {
        let out = output(&mut cli(&d, c, &["exec", "frozen", "true"]));
        assert_eq!(out.status.code(), Some(1), "{c}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("is paused, unpause the container before exec"),
            "{c}: {err}"
        );
    }
    ok(&mut d.berth(&["unpause", "frozen"]));
    ok(&mut d.berth(&["exec", "frozen", "true"]));
}

#[test]
fn joins_the_container_cgroup_and_pid_namespace() {
    let d = daemon_with("ctr", &["--memory", "64m"]);
    let cid = ok(&mut d.berth(&["inspect", "-f", "{{.Id}}", "ctr"]));
    for c in CLIS {
        // In the container's pid namespace, pid 1 is the container's sleep.
        let out = ok(&mut cli(&d, c, &["exec", "ctr", "cat", "/proc/1/cmdline"]));
        assert_eq!(out, "sleep\x00300\x00", "{c}");
        let out = ok(&mut cli(
            &d,
            c,
            &["exec", "ctr", "cat", "/proc/self/cgroup"],
        ));
        assert!(
            out.lines()
                .any(|l| l.contains(":memory:") && l.contains(cid.trim())),
            "{c}: {out}"
        );
        // Same seccomp and capabilities as the container: no CAP_SYS_ADMIN.
        let out = ok(&mut cli(
            &d,
            c,
            &[
                "exec",
                "ctr",
                "grep",
                "-E",
                "^(CapEff|Seccomp):",
                "/proc/self/status",
            ],
        ));
        assert!(out.contains("Seccomp:\t2"), "{c}: {out}");
        assert!(out.contains("CapEff:\t00000000a80425fb"), "{c}: {out}");
        // The shim's own signal dispositions do not leak into the process.
        let out = ok(&mut cli(
            &d,
            c,
            &[
                "exec",
                "ctr",
                "grep",
                "-E",
                "^Sig(Blk|Ign):",
                "/proc/self/status",
            ],
        ));
        assert_eq!(
            out, "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n",
            "{c}"
        );
        let out = ok(&mut cli(
            &d,
            c,
            &[
                "exec",
                "--privileged",
                "ctr",
                "grep",
                "^CapEff:",
                "/proc/self/status",
            ],
        ));
        assert!(!out.contains("a80425fb"), "{c}: {out}");
    }
    // Stopping the container ends its execs and forgets them.
    let mut long = d
        .docker(&["exec", "ctr", "sleep", "300"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    ok(&mut d.berth(&["stop", "-t", "1", "ctr"]));
    let deadline = Instant::now() + Duration::from_secs(15);
    while long.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "exec outlived its container");
        std::thread::sleep(Duration::from_millis(50));
    }
    let ids = ok(&mut d.docker(&["inspect", "-f", "{{json .ExecIDs}}", "ctr"]));
    assert_eq!(ids.trim(), "null");
}

#[test]
fn events_for_exec() {
    let d = daemon_with("ctr", &[]);
    let (code, _) = api(&d, "GET", "/events?since=0&until=1", None);
    if code == 404 {
        eprintln!("no /events route on this branch; skipped");
        return;
    }
    let out = output(&mut d.docker(&["exec", "ctr", "sh", "-c", "exit 4"]));
    assert_eq!(out.status.code(), Some(4));
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1;
    let (code, body) = api(&d, "GET", &format!("/events?since=0&until={until}"), None);
    assert_eq!(code, 200, "{body}");
    let events: Vec<serde_json::Value> = body
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|e: &serde_json::Value| e["Action"].as_str().unwrap_or("").starts_with("exec_"))
        .collect();
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["Action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "exec_create: sh -c exit 4",
            "exec_start: sh -c exit 4",
            "exec_die"
        ],
        "{body}"
    );
    let exec_id = events[0]["Actor"]["Attributes"]["execID"].as_str().unwrap();
    assert_eq!(exec_id.len(), 64);
    assert!(events
        .iter()
        .all(|e| e["Actor"]["Attributes"]["execID"] == exec_id));
    assert_eq!(events[2]["Actor"]["Attributes"]["exitCode"], "4");
}

fn exec_on_pty(d: &TestDaemon, which: &str) {
    let size = nix::pty::Winsize {
        ws_row: 41,
        ws_col: 123,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let cmd = cli(d, which, &["exec", "-it", "ctr", "sh"]);
    let mut s = PtySession::spawn(cmd, Some(size)).unwrap();
    assert!(s.read_until("# "), "{which}: no prompt: {}", s.seen_text());
    s.type_in(b"tty; stty size; echo $TERM; exit 6\r");
    assert!(s.read_until("xterm"), "{which}: {}", s.seen_text());
    let status = s.wait_exit();
    let text = s.seen_text();
    let status = status.unwrap_or_else(|| panic!("{which} exec -it did not end: {text}"));
    assert!(text.contains("/dev/pts/"), "{which}: not a tty: {text}");
    // The client's terminal size reached the exec's pty.
    assert!(
        text.contains("41 123"),
        "{which}: size not passed on: {text}"
    );
    assert_eq!(status.code(), Some(6), "{which}: {text}");
}

#[test]
fn exec_it_gives_a_real_terminal() {
    let d = daemon_with("ctr", &[]);
    exec_on_pty(&d, "docker");
    exec_on_pty(&d, "berth");
}

//! Detach keys: typing the sequence ends the attach session, the client exits 0 and the
//! container keeps running — through docker's CLI, ours, and the daemon's own detector.

use berth_harness::{ok, output, PtySession, TestDaemon};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_berth");

/// Waits for the CLI to exit; its code and everything it printed.
fn wait_exit(s: &mut PtySession, what: &str) -> (i32, String) {
    let st = s.wait_exit();
    let text = s.seen_text();
    let st = st.unwrap_or_else(|| panic!("{what} did not detach: {text}"));
    (st.code().unwrap_or(-1), text)
}

fn running(d: &TestDaemon, name: &str) -> String {
    ok(&mut d.docker(&["inspect", "-f", "{{.State.Running}}", name]))
        .trim()
        .to_string()
}

#[test]
fn run_it_detaches_with_ctrl_p_ctrl_q() {
    let d = TestDaemon::start(BIN).unwrap();
    d.import_busybox().unwrap();
    for cli in ["docker", "berth"] {
        let name = format!("det-{cli}");
        let args = ["run", "-it", "--name", &name, "busybox", "sh"];
        let cmd = if cli == "docker" {
            d.docker(&args)
        } else {
            d.berth(&args)
        };
        let mut s = PtySession::spawn(cmd, None).unwrap();
        assert!(s.read_until("# "), "{cli}: no prompt");
        s.type_in(b"\x10\x11");
        let (code, text) = wait_exit(&mut s, cli);
        assert_eq!(code, 0, "{cli}: {text}");
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(
            running(&d, &name),
            "true",
            "{cli}: container stopped after detach"
        );

        // Re-attach with custom keys and detach again.
        let args = ["attach", "--detach-keys", "ctrl-x,x", &name];
        let cmd = if cli == "docker" {
            d.docker(&args)
        } else {
            d.berth(&args)
        };
        let mut s = PtySession::spawn(cmd, None).unwrap();
        std::thread::sleep(Duration::from_millis(500));
        s.type_in(b"echo hello-$((20+22))\r");
        assert!(s.read_until("hello-42"), "{cli}: attach is not live");
        s.type_in(b"\x18x");
        // `attach` (unlike `run`) reports the detach: "read escape sequence", status 1.
        let (code, text) = wait_exit(&mut s, cli);
        assert_eq!(code, 1, "{cli} attach: {text}");
        assert!(
            text.contains("read escape sequence"),
            "{cli} attach: {text}"
        );
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(
            running(&d, &name),
            "true",
            "{cli}: container stopped after attach detach"
        );
    }
    // Keys docker cannot parse are refused.
    let out = output(&mut d.docker(&["attach", "--detach-keys", "ctrl-1", "det-docker"]));
    assert!(!out.status.success());
}

/// The daemon itself watches the TTY attach stream (`detachKeys`), as dockerd does for clients
/// that pass keys through unfiltered.
#[test]
fn daemon_ends_the_attach_on_detach_keys() {
    let d = TestDaemon::start(BIN).unwrap();
    d.import_busybox().unwrap();
    let id = ok(&mut d.docker(&["run", "-dit", "busybox", "sh"]));
    let id = id.trim();
    let mut s = UnixStream::connect(&d.socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST /containers/{id}/attach?stream=1&stdin=1&stdout=1&stderr=1&detachKeys=ctrl-a,q HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("\r\n\r\n") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 101"));
    s.write_all(b"echo in-$((1+1))\r").unwrap();
    let t0 = Instant::now();
    while !String::from_utf8_lossy(&got).contains("in-2") && t0.elapsed() < Duration::from_secs(10)
    {
        let n = s.read(&mut buf).unwrap_or(0);
        got.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&got).contains("in-2"));
    // ctrl-a followed by something else is ordinary input; ctrl-a q detaches.
    s.write_all(b"\x01q").unwrap();
    let t0 = Instant::now();
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => panic!("connection not closed on detach: {e}"),
        }
        assert!(t0.elapsed() < Duration::from_secs(10));
    }
    assert_eq!(running(&d, id), "true");

    // Bad keys: 400 before any upgrade.
    let (st, _, body) = berth_harness::http(
        &d.socket,
        "POST",
        &format!("/containers/{id}/attach?stream=1&stdin=1&detachKeys=ctrl-12"),
        None,
    )
    .unwrap();
    assert_eq!(st, 400, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("Invalid detach keys"));
}

/// `detachKeys` in the client's config.json replaces ctrl-p,ctrl-q, for docker and for us.
#[test]
fn config_file_detach_keys() {
    let d = TestDaemon::start(BIN).unwrap();
    d.import_busybox().unwrap();
    let cfg = d.dir.path().join("docker-config");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(cfg.join("config.json"), r#"{"detachKeys":"ctrl-x,x"}"#).unwrap();
    for cli in ["docker", "berth"] {
        let name = format!("cfg-{cli}");
        let args = ["run", "-it", "--name", &name, "busybox", "sh"];
        let cmd = if cli == "docker" {
            d.docker(&args)
        } else {
            let mut c = d.berth(&args);
            c.env("DOCKER_CONFIG", &cfg);
            c
        };
        let mut s = PtySession::spawn(cmd, None).unwrap();
        assert!(s.read_until("# "), "{cli}: no prompt");
        s.type_in(b"\x18x");
        let (code, text) = wait_exit(&mut s, cli);
        assert_eq!(code, 0, "{cli}: {text}");
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(running(&d, &name), "true", "{cli}");
    }
}

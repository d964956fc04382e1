//! `run -it` with a real terminal: the CLI runs on a pty, as a user at a shell would.

use berth_harness::TestDaemon;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::process::Stdio;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_berth");

fn interactive(d: &TestDaemon, cli: &str) {
    let pty = nix::pty::openpty(None, None).unwrap();
    let slave = std::fs::File::from(pty.slave);
    let mut cmd = if cli == "docker" {
        d.docker(&["run", "-it", "--rm", "busybox", "sh"])
    } else {
        d.berth(&["run", "-it", "--rm", "busybox", "sh"])
    };
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            if libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave))
        .spawn()
        .unwrap();
    let mut master = std::fs::File::from(pty.master);
    let fd = master.as_raw_fd();
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
    let mut w = master.try_clone().unwrap();
    let mut seen = Vec::new();
    let mut read_until = |needle: &str, seen: &mut Vec<u8>| {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            let mut buf = [0u8; 4096];
            match master.read(&mut buf) {
                Ok(n) if n > 0 => seen.extend_from_slice(&buf[..n]),
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
            if String::from_utf8_lossy(seen).contains(needle) {
                return true;
            }
        }
        false
    };
    // ash asks the terminal for the cursor position at start-up and may eat what was typed
    // before its prompt, so type only once the prompt is there.
    assert!(
        read_until("# ", &mut seen),
        "{cli}: no prompt: {}",
        String::from_utf8_lossy(&seen)
    );
    w.write_all(b"tty; exit 5\r").unwrap();
    assert!(
        read_until("/dev/pts/", &mut seen),
        "{cli}: {}",
        String::from_utf8_lossy(&seen)
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        let mut buf = [0u8; 4096];
        if let Ok(n) = master.read(&mut buf) {
            seen.extend_from_slice(&buf[..n]);
        }
        assert!(
            Instant::now() < deadline,
            "{cli} run -it did not end: {}",
            String::from_utf8_lossy(&seen)
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = String::from_utf8_lossy(&seen);
    assert!(text.contains("/dev/pts/0"), "{cli}: not a tty: {text}");
    assert_eq!(status.code(), Some(5), "{cli}: {text}");
}

#[test]
fn run_it_gives_a_real_terminal() {
    let d = TestDaemon::start(BIN).unwrap();
    d.import_busybox().unwrap();
    interactive(&d, "docker");
    interactive(&d, "berth");
}

//! `run -it` with a real terminal: the CLI runs on a pty, as a user at a shell would.

use berth_harness::{PtySession, TestDaemon};

const BIN: &str = env!("CARGO_BIN_EXE_berth");

fn interactive(d: &TestDaemon, cli: &str) {
    let cmd = if cli == "docker" {
        d.docker(&["run", "-it", "--rm", "busybox", "sh"])
    } else {
        d.berth(&["run", "-it", "--rm", "busybox", "sh"])
    };
    let mut s = PtySession::spawn(cmd, None).unwrap();
    // ash asks the terminal for the cursor position at start-up and may eat what was typed
    // before its prompt, so type only once the prompt is there.
    assert!(s.read_until("# "), "{cli}: no prompt: {}", s.seen_text());
    s.type_in(b"tty; exit 5\r");
    assert!(s.read_until("/dev/pts/"), "{cli}: {}", s.seen_text());
    let status = s.wait_exit();
    let text = s.seen_text();
    let status = status.unwrap_or_else(|| panic!("{cli} run -it did not end: {text}"));
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

//! Pausing through the cgroup freezer: v1 `freezer.state` (FROZEN/THAWED), v2 `cgroup.freeze`.
//! Freezing is asynchronous in the kernel (v1 passes through FREEZING, v2 reports `frozen 1`
//! in cgroup.events once done), so both wait for the state to settle, as runc does.

use super::cgroup::{keyed, Cgroup};
use std::io;
use std::time::{Duration, Instant};

const SETTLE: Duration = Duration::from_secs(5);

pub fn freeze(cg: &Cgroup) -> io::Result<()> {
    set(cg, true)
}

pub fn thaw(cg: &Cgroup) -> io::Result<()> {
    set(cg, false)
}

pub fn is_frozen(cg: &Cgroup) -> bool {
    if cg.is_v2() {
        cg.read("", "cgroup.events")
            .ok()
            .and_then(|t| keyed(&t, "frozen"))
            == Some(1)
    } else {
        cg.read("freezer", "freezer.state")
            .map(|s| s.trim() == "FROZEN")
            .unwrap_or(false)
    }
}

fn settled(cg: &Cgroup, frozen: bool) -> bool {
    if cg.is_v2() {
        is_frozen(cg) == frozen
    } else {
        let want = if frozen { "FROZEN" } else { "THAWED" };
        cg.read("freezer", "freezer.state")
            .map(|s| s.trim() == want)
            .unwrap_or(false)
    }
}

fn set(cg: &Cgroup, frozen: bool) -> io::Result<()> {
    let write = |frozen: bool| {
        if cg.is_v2() {
            cg.write("", "cgroup.freeze", if frozen { "1" } else { "0" })
        } else {
            cg.write(
                "freezer",
                "freezer.state",
                if frozen { "FROZEN" } else { "THAWED" },
            )
        }
    };
    let deadline = Instant::now() + SETTLE;
    let mut pause = Duration::from_micros(100);
    loop {
        // v1 may stay in FREEZING when a task is busy in the kernel; writing again retries.
        write(frozen)?;
        if settled(cg, frozen) {
            return Ok(());
        }
        if Instant::now() > deadline {
            if frozen {
                let _ = write(false);
            }
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the cgroup did not become {} in {SETTLE:?}",
                    if frozen { "frozen" } else { "thawed" }
                ),
            ));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}

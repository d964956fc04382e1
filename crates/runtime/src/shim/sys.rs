//! Small OS helpers for the shim.

use std::io::{self, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::signal::{signal, sigprocmask, SigHandler, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, UnixAddr};

use super::{nix_err, ShimError};

/// Turns the forked child into a daemon-independent monitor: own session,
/// stdio on /dev/null (so the daemon's pipe sees EOF when the launcher
/// exits), cwd in the state dir (sockets are bound by relative name to
/// dodge the 108-byte sun_path limit), child subreaper.
pub(crate) fn detach(state_dir: &Path) -> Result<(), ShimError> {
    nix::unistd::setsid().map_err(nix_err("setsid"))?;
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(super::sys_err("open /dev/null"))?;
    for fd in 0..=2 {
        nix::unistd::dup2(null.as_raw_fd(), fd).map_err(nix_err("dup2 /dev/null"))?;
    }
    nix::unistd::chdir(state_dir).map_err(nix_err("chdir state dir"))?;
    nix::sys::prctl::set_child_subreaper(true).map_err(nix_err("PR_SET_CHILD_SUBREAPER"))?;
    // The container inherits our signal mask and ignored signals across
    // exec (libcontainer resets neither): Rust's runtime ignores SIGPIPE, and
    // a daemon started in the background by a shell has SIGQUIT/SIGINT
    // ignored. Docker's containers start with every disposition at default.
    reset_signal_dispositions();
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .map_err(nix_err("sigprocmask"))?;
    Ok(())
}

/// Closes every fd above stderr except `keep`: the launcher may have
/// inherited pipes (a caller's stdout, a jobserver) whose readers would
/// otherwise wait for EOF as long as the shim lives.
pub(crate) fn close_inherited_fds(keep: &[RawFd]) {
    let fds: Vec<RawFd> = match std::fs::read_dir("/proc/self/fd") {
        Ok(rd) => rd
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect(),
        Err(_) => return,
    };
    for fd in fds {
        if fd > 2 && !keep.contains(&fd) {
            // The fd that listed the directory is already closed: EBADF is fine.
            let _ = nix::unistd::close(fd);
        }
    }
}

/// After the container exists: SIGCHLD through a signalfd, SIGPIPE
/// ignored (writes to departed attach clients return EPIPE instead).
pub(crate) fn monitor_signals() -> Result<SignalFd, ShimError> {
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None).map_err(nix_err("block SIGCHLD"))?;
    // SAFETY: SIG_IGN runs no handler code.
    unsafe { signal(Signal::SIGPIPE, SigHandler::SigIgn) }.map_err(nix_err("SIGPIPE"))?;
    SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(nix_err("signalfd"))
}

pub(crate) fn set_nonblocking(fd: BorrowedFd<'_>) -> Result<(), ShimError> {
    let flags = fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL).map_err(nix_err("F_GETFL"))?;
    let flags = OFlag::from_bits_retain(flags) | OFlag::O_NONBLOCK;
    fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(flags)).map_err(nix_err("F_SETFL"))?;
    Ok(())
}

/// Receives one fd passed with SCM_RIGHTS (libcontainer's pty master).
pub(crate) fn recv_fd(sock: &UnixStream) -> io::Result<OwnedFd> {
    let mut buf = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<UnixAddr>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(fd) = fds.first() {
                // SAFETY: the kernel just installed this fd for us.
                return Ok(unsafe { OwnedFd::from_raw_fd(*fd) });
            }
        }
    }
    Err(io::Error::other("console socket message carried no fd"))
}

pub(crate) fn set_winsize(fd: BorrowedFd<'_>, height: u16, width: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: height,
        ws_col: width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize from the pointer.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn field(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// Whether the kernel OOM-killed anything in the container's memory
/// cgroup; must run before libcontainer deletes the cgroup.
pub(crate) fn oom_killed(cgroups_path: &str) -> bool {
    let rel = cgroups_path.trim_start_matches('/');
    let root = Path::new("/sys/fs/cgroup");
    // cgroup v1 (incl. hybrid): memory controller hierarchy.
    if let Ok(t) = std::fs::read_to_string(root.join("memory").join(rel).join("memory.oom_control"))
    {
        return field(&t, "oom_kill").unwrap_or(0) > 0 || field(&t, "under_oom") == Some(1);
    }
    // cgroup v2 unified.
    if let Ok(t) = std::fs::read_to_string(root.join(rel).join("memory.events")) {
        return field(&t, "oom_kill").unwrap_or(0) > 0;
    }
    false
}

/// SIG_DFL for every signal, through the raw syscall: glibc refuses to touch
/// the two real-time signals it reserves (32, 33), which may arrive ignored.
#[cfg(target_arch = "x86_64")]
pub(crate) fn reset_signal_dispositions() {
    /// The kernel's `struct sigaction` on Linux (not glibc's).
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: libc::c_ulong,
        restorer: usize,
        mask: u64,
    }
    let act = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: rt_sigaction reads one kernel sigaction; SIG_DFL runs no code.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                &act as *const KernelSigaction,
                std::ptr::null_mut::<KernelSigaction>(),
                8usize,
            );
        }
    }
}

/// Elsewhere the kernel's struct layout differs; glibc's wrapper covers the rest.
#[cfg(not(target_arch = "x86_64"))]
pub(crate) fn reset_signal_dispositions() {
    for sig in 1..=64 {
        // SAFETY: SIG_DFL runs no handler code; reserved signals just fail.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
}

#[cfg(test)]
mod tests {
    use super::field;

    #[test]
    fn parses_counters() {
        let t = "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n";
        assert_eq!(field(t, "oom_kill"), Some(2));
        assert_eq!(field(t, "under_oom"), Some(0));
        assert_eq!(field(t, "nope"), None);
    }
}

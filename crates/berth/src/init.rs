//! `berth init -- cmd args...`: the `--init` process, bind-mounted into containers as
//! /sbin/docker-init (tini's job). As PID 1 it runs the command as its only child, passes every
//! catchable signal on to it, reaps the orphans the kernel re-parents to it, and exits with the
//! child's status (128+signal when the child was killed).
//!
//! Signals are blocked and taken synchronously with sigtimedwait: a PID 1 in a PID namespace
//! never receives signals whose disposition is the default, but blocked ones stay pending and
//! can be collected. Single-threaded and allocation-light; it runs inside containers with no
//! libc of their own, which is why the `berth` binary is linked statically.

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;

/// Exit status when the command cannot be started (as tini: 127 not found, 126 not runnable).
fn exec_failure_code(errno: i32) -> i32 {
    if errno == libc::ENOENT {
        127
    } else {
        126
    }
}

/// The shell convention for a wait status: the exit code, or 128 + the killing signal.
pub fn exit_code_of(status: i32) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        1
    }
}

/// `args` are the arguments after the mode (`berth init ...`, or `docker-init ...` when run
/// through the /sbin/docker-init mount): an optional `--`, then the command.
pub fn main(args: &[OsString]) -> i32 {
    let mut cmd = args;
    if cmd.first().is_some_and(|a| a == "--") {
        cmd = &cmd[1..];
    }
    if cmd.is_empty() {
        eprintln!("usage: berth init -- command [args...]");
        return 2;
    }
    let argv: Vec<CString> = match cmd
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<_, _>>()
    {
        Ok(v) => v,
        Err(_) => {
            eprintln!("berth init: argument contains a NUL byte");
            return 2;
        }
    };
    // SAFETY: plain libc calls on locally owned, initialised values; the process is
    // single-threaded here (dispatched before anything could start a thread).
    unsafe { run(&argv) }
}

unsafe fn run(argv: &[CString]) -> i32 {
    let mut all: libc::sigset_t = std::mem::zeroed();
    libc::sigfillset(&mut all);
    let mut old: libc::sigset_t = std::mem::zeroed();
    libc::sigprocmask(libc::SIG_SETMASK, &all, &mut old);

    let child = libc::fork();
    if child < 0 {
        eprintln!("berth init: fork: {}", std::io::Error::last_os_error());
        return 1;
    }
    if child == 0 {
        if libc::isatty(0) == 1 {
            // Own process group in the terminal's foreground, so ^C and job control reach the
            // command itself. SIGTTOU is still blocked, which lets tcsetpgrp succeed.
            libc::setpgid(0, 0);
            libc::tcsetpgrp(0, libc::getpgrp());
        }
        // The command gets the signal mask its parent had, as if started directly.
        libc::sigprocmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        libc::execvp(ptrs[0], ptrs.as_ptr());
        let err = std::io::Error::last_os_error();
        eprintln!(
            "berth init: exec {}: {err}",
            String::from_utf8_lossy(argv[0].as_bytes())
        );
        libc::_exit(exec_failure_code(err.raw_os_error().unwrap_or(0)));
    }

    let timeout = libc::timespec {
        tv_sec: 1,
        tv_nsec: 0,
    };
    loop {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let sig = libc::sigtimedwait(&all, &mut info, &timeout);
        if sig > 0 && sig != libc::SIGCHLD {
            // The child may already be gone; ESRCH is harmless then.
            libc::kill(child, sig);
        }
        // Reap everything that has exited: the command and any orphan re-parented to us.
        loop {
            let mut status = 0;
            let pid = libc::waitpid(-1, &mut status, libc::WNOHANG);
            if pid <= 0 {
                break;
            }
            if pid == child {
                return exit_code_of(status);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_status_to_exit_code() {
        // Encodings as the kernel builds them: exit code in bits 8..15, signal in bits 0..6.
        assert_eq!(exit_code_of(3 << 8), 3);
        assert_eq!(exit_code_of(0), 0);
        assert_eq!(exit_code_of(libc::SIGTERM), 128 + 15);
        assert_eq!(exit_code_of(libc::SIGKILL), 137);
    }

    #[test]
    fn exec_failures() {
        assert_eq!(exec_failure_code(libc::ENOENT), 127);
        assert_eq!(exec_failure_code(libc::EACCES), 126);
    }
}

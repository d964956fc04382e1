//! Starts an exec'd process inside a running container, as `runc exec`
//! does: join the init's cgroups and namespaces, fork once more so the pid
//! namespace applies, then take on the container's credentials, rlimits,
//! capabilities, no_new_privs and seccomp filter, and execve.
//!
//! Done by hand rather than with libcontainer's tenant builder: that one
//! rebuilds `linux` from namespaces and cgroups only, so an exec'd process
//! would run without the container's seccomp filter.
//!
//! Runs in the exec shim, which is single-threaded: the forked children
//! may allocate and run ordinary Rust code.

use std::ffi::CString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use libcontainer::syscall::linux::LinuxSyscall;
use libcontainer::syscall::Syscall;
use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sched::{setns, CloneFlags};
use nix::sys::stat::Mode;
use nix::sys::wait::waitpid;
use nix::unistd::{dup2, execve, fork, getpid, pipe2, setsid, ForkResult, Gid, Pid, Uid};
use oci_spec::runtime::{LinuxCapabilities, LinuxSeccomp, Spec};

use crate::exec_check::resolve_executable;

/// Everything the child needs, prepared before forking.
pub(crate) struct Plan {
    pub init_pid: i32,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub caps: LinuxCapabilities,
    pub no_new_privs: bool,
    pub seccomp: Option<LinuxSeccomp>,
    /// (resource, soft, hard)
    pub rlimits: Vec<(libc::c_int, u64, u64)>,
    pub oom_score_adj: Option<i32>,
}

impl Plan {
    /// The container's own process settings from its spec (args, env, cwd, user, caps,
    /// rlimits, no_new_privs, seccomp): what a healthcheck probe runs with, and the base an
    /// exec overrides. `privileged` gives every capability (the seccomp filter stays, as
    /// with runc).
    pub(crate) fn for_container(
        spec: &Spec,
        init_pid: i32,
        privileged: bool,
    ) -> Result<Plan, String> {
        let process = spec.process().clone().unwrap_or_default();
        let caps = if privileged {
            let all = crate::spec::effective_caps(&[], &[], true).map_err(|e| e.to_string())?;
            serde_json::from_value::<LinuxCapabilities>(serde_json::json!({
                "bounding": all, "effective": all, "permitted": all,
            }))
            .map_err(|e| e.to_string())?
        } else {
            process.capabilities().clone().unwrap_or_default()
        };
        let rlimits = process
            .rlimits()
            .iter()
            .flatten()
            .filter_map(|r| {
                let name = serde_json::to_value(r.typ()).ok()?;
                Some((rlimit_resource(name.as_str()?)?, r.soft(), r.hard()))
            })
            .collect();
        let user = process.user();
        Ok(Plan {
            init_pid,
            args: process.args().clone().unwrap_or_default(),
            env: process.env().clone().unwrap_or_default(),
            cwd: process.cwd().to_string_lossy().into_owned(),
            uid: user.uid(),
            gid: user.gid(),
            additional_gids: user.additional_gids().clone().unwrap_or_default(),
            caps,
            no_new_privs: process.no_new_privileges().unwrap_or(false),
            seccomp: spec.linux().as_ref().and_then(|l| l.seccomp().clone()),
            rlimits,
            oom_score_adj: process.oom_score_adj(),
        })
    }
}

fn rlimit_resource(name: &str) -> Option<libc::c_int> {
    use libc::*;
    Some(match name {
        "RLIMIT_CPU" => RLIMIT_CPU,
        "RLIMIT_FSIZE" => RLIMIT_FSIZE,
        "RLIMIT_DATA" => RLIMIT_DATA,
        "RLIMIT_STACK" => RLIMIT_STACK,
        "RLIMIT_CORE" => RLIMIT_CORE,
        "RLIMIT_RSS" => RLIMIT_RSS,
        "RLIMIT_NPROC" => RLIMIT_NPROC,
        "RLIMIT_NOFILE" => RLIMIT_NOFILE,
        "RLIMIT_MEMLOCK" => RLIMIT_MEMLOCK,
        "RLIMIT_AS" => RLIMIT_AS,
        "RLIMIT_LOCKS" => RLIMIT_LOCKS,
        "RLIMIT_SIGPENDING" => RLIMIT_SIGPENDING,
        "RLIMIT_MSGQUEUE" => RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => RLIMIT_NICE,
        "RLIMIT_RTPRIO" => RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => RLIMIT_RTTIME,
        _ => return None,
    } as libc::c_int)
}

/// The child's stdio: with a tty all three are the pty slave.
pub(crate) struct ChildStdio {
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    pub tty: bool,
}

/// Dockerd's exit code for an exec that failed to start for another reason.
const START_FAILED: i32 = 126;

/// (namespace file, setns flag); the mount namespace last, because joining
/// it changes what `/proc` means for the rest.
const NAMESPACES: &[(&str, CloneFlags)] = &[
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("net", CloneFlags::CLONE_NEWNET),
    ("pid", CloneFlags::CLONE_NEWPID),
    ("cgroup", CloneFlags::CLONE_NEWCGROUP),
    ("mnt", CloneFlags::CLONE_NEWNS),
];

fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// Opens the init's namespaces that differ from ours (joining our own
/// again is pointless, and for some kinds refused).
fn open_namespaces(init_pid: i32) -> Result<Vec<(OwnedFd, CloneFlags)>, String> {
    let mut out = Vec::new();
    for (name, flag) in NAMESPACES {
        let theirs = PathBuf::from(format!("/proc/{init_pid}/ns/{name}"));
        if same_file(&theirs, &PathBuf::from(format!("/proc/self/ns/{name}"))) {
            continue;
        }
        let fd = open(&theirs, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(|e| format!("opening {}: {e}", theirs.display()))?;
        // SAFETY: open returned a fresh descriptor we now own.
        out.push((
            unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) },
            *flag,
        ));
    }
    Ok(out)
}

/// `cgroup.procs` of every hierarchy the init is in, from
/// `/proc/<init>/cgroup` (host view: we are in the host cgroup namespace).
/// Hierarchies where we already are in the same cgroup are skipped: each
/// cgroup v1 migration costs time (the first one an RCU grace period).
fn cgroup_procs(init_pid: i32) -> Result<Vec<PathBuf>, String> {
    let text = std::fs::read_to_string(format!("/proc/{init_pid}/cgroup"))
        .map_err(|e| format!("reading the container's cgroups: {e}"))?;
    let ours = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let ours: Vec<&str> = ours.lines().collect();
    let root = Path::new("/sys/fs/cgroup");
    let mut out = Vec::new();
    for line in text.lines() {
        if ours.contains(&line) {
            continue;
        }
        let mut f = line.splitn(3, ':');
        let (Some(_), Some(ctrls), Some(path)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let rel = path.trim_start_matches('/');
        let base = if ctrls.is_empty() {
            // cgroup v2: the unified mount of a hybrid host, or the root.
            let unified = root.join("unified");
            if unified.is_dir() {
                unified
            } else {
                root.to_path_buf()
            }
        } else {
            root.join(ctrls.strip_prefix("name=").unwrap_or(ctrls))
        };
        let procs = base.join(rel).join("cgroup.procs");
        if procs.exists() {
            out.push(procs);
        }
    }
    Ok(out)
}

fn read_all(fd: OwnedFd) -> Vec<u8> {
    let mut v = Vec::new();
    let _ = File::from(fd).read_to_end(&mut v);
    v
}

/// Forks the process. On success returns its pid once it has called
/// execve; on failure the message (and the pid to reap, if it exists).
pub(crate) fn spawn(plan: &Plan, stdio: &ChildStdio) -> Result<Pid, (Option<Pid>, String)> {
    let ns = open_namespaces(plan.init_pid).map_err(|e| (None, e))?;
    let cgroups = cgroup_procs(plan.init_pid).map_err(|e| (None, e))?;
    let (pid_r, pid_w) = pipe2(OFlag::O_CLOEXEC).map_err(|e| (None, format!("pipe: {e}")))?;
    let (err_r, err_w) = pipe2(OFlag::O_CLOEXEC).map_err(|e| (None, format!("pipe: {e}")))?;
    // SAFETY: the exec shim is single-threaded.
    match unsafe { fork() } {
        Err(e) => Err((None, format!("fork: {e}"))),
        Ok(ForkResult::Child) => {
            drop(pid_r);
            drop(err_r);
            let code = match intermediate(plan, stdio, &ns, &cgroups, pid_w, &err_w) {
                Ok(()) => 0,
                Err(msg) => {
                    let _ = File::from(err_w).write_all(msg.as_bytes());
                    1
                }
            };
            // SAFETY: _exit skips the parent's atexit handlers and buffers.
            unsafe { libc::_exit(code) }
        }
        Ok(ForkResult::Parent { child }) => {
            drop(pid_w);
            drop(err_w);
            let raw = read_all(pid_r);
            while let Err(Errno::EINTR) = waitpid(child, None) {}
            let pid = <[u8; 4]>::try_from(raw.as_slice())
                .ok()
                .map(|b| Pid::from_raw(i32::from_ne_bytes(b)));
            // EOF once the process has called execve (CLOEXEC) or died.
            let err = read_all(err_r);
            match (pid, err.is_empty()) {
                (Some(p), true) => Ok(p),
                (pid, _) if !err.is_empty() => Err((pid, String::from_utf8_lossy(&err).into())),
                (None, _) => Err((None, "exec setup failed".into())),
                (Some(p), false) => Err((Some(p), "exec setup failed".into())),
            }
        }
    }
}

/// The first child: joins cgroups and namespaces, forks the process.
fn intermediate(
    plan: &Plan,
    stdio: &ChildStdio,
    ns: &[(OwnedFd, CloneFlags)],
    cgroups: &[PathBuf],
    pid_w: OwnedFd,
    err_w: &OwnedFd,
) -> Result<(), String> {
    let me = getpid().as_raw().to_string();
    for p in cgroups {
        std::fs::write(p, &me).map_err(|e| format!("joining cgroup {}: {e}", p.display()))?;
    }
    for (fd, flag) in ns {
        setns(fd, *flag).map_err(|e| format!("joining namespace {flag:?}: {e}"))?;
    }
    // SAFETY: still single-threaded.
    match unsafe { fork() } {
        Err(e) => Err(format!("fork: {e}")),
        Ok(ForkResult::Child) => {
            drop(pid_w);
            let (code, msg) = process(plan, stdio);
            let _ = (&File::from(err_w.try_clone().map_err(|e| e.to_string())?))
                .write_all(msg.as_bytes());
            // SAFETY: see above.
            unsafe { libc::_exit(code) }
        }
        Ok(ForkResult::Parent { child }) => File::from(pid_w)
            .write_all(&child.as_raw().to_ne_bytes())
            .map_err(|e| format!("reporting the pid: {e}")),
    }
}

/// Go's wording of an errno ("no such file or directory").
fn go_err(e: Errno) -> String {
    let d = e.desc();
    let mut c = d.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => d.to_string(),
    }
}

fn cstrings(v: &[String]) -> Result<Vec<CString>, String> {
    v.iter()
        .map(|s| CString::new(s.as_bytes()).map_err(|_| format!("NUL byte in {s:?}")))
        .collect()
}

/// The process itself, inside the container: returns only on failure,
/// with its exit code and message.
fn process(plan: &Plan, stdio: &ChildStdio) -> (i32, String) {
    match setup_and_exec(plan, stdio) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

fn fail(msg: impl std::fmt::Display) -> (i32, String) {
    (START_FAILED, msg.to_string())
}

fn setup_and_exec(
    plan: &Plan,
    stdio: &ChildStdio,
) -> Result<std::convert::Infallible, (i32, String)> {
    // Ignored signals and the blocked mask survive execve: the shim blocks SIGCHLD and
    // ignores SIGPIPE (and inherits whatever its launcher ignored).
    super::sys::reset_signal_dispositions();
    nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&nix::sys::signal::SigSet::empty()),
        None,
    )
    .map_err(|e| fail(format!("sigprocmask: {e}")))?;
    setsid().map_err(|e| fail(format!("setsid: {e}")))?;
    for (src, dst) in [(&stdio.stdin, 0), (&stdio.stdout, 1), (&stdio.stderr, 2)] {
        dup2(src.as_raw_fd(), dst).map_err(|e| fail(format!("dup2: {e}")))?;
    }
    if stdio.tty {
        // SAFETY: TIOCSCTTY takes an int argument.
        if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } < 0 {
            return Err(fail(format!(
                "setting the controlling terminal: {}",
                std::io::Error::last_os_error()
            )));
        }
    }
    for (res, soft, hard) in &plan.rlimits {
        let lim = libc::rlimit {
            rlim_cur: *soft,
            rlim_max: *hard,
        };
        // SAFETY: setrlimit reads one rlimit struct.
        if unsafe { libc::setrlimit(*res as _, &lim) } < 0 {
            return Err(fail(format!(
                "setrlimit: {}",
                std::io::Error::last_os_error()
            )));
        }
    }
    if let Some(adj) = plan.oom_score_adj {
        let _ = std::fs::write("/proc/self/oom_score_adj", adj.to_string());
    }
    if plan.no_new_privs {
        nix::sys::prctl::set_no_new_privs().map_err(|e| fail(format!("no_new_privs: {e}")))?;
    }
    let cwd = if plan.cwd.is_empty() {
        "/"
    } else {
        plan.cwd.as_str()
    };
    // As root first: the user may lack search permission on the way there.
    let chdir_later = match nix::unistd::chdir(cwd) {
        Ok(()) => false,
        Err(Errno::EPERM) | Err(Errno::EACCES) => true,
        Err(e) => {
            return Err(fail(format!(
                "chdir to cwd (\"{cwd}\") set in config.json failed: {}",
                go_err(e)
            )))
        }
    };
    let sys = LinuxSyscall;
    let groups: Vec<Gid> = plan
        .additional_gids
        .iter()
        .map(|g| Gid::from_raw(*g))
        .collect();
    sys.set_groups(&groups)
        .map_err(|e| fail(format!("setgroups: {e}")))?;
    sys.set_id(Uid::from_raw(plan.uid), Gid::from_raw(plan.gid))
        .map_err(|e| fail(format!("setting uid/gid: {e}")))?;
    if chdir_later {
        nix::unistd::chdir(cwd).map_err(|e| {
            fail(format!(
                "chdir to cwd (\"{cwd}\") set in config.json failed: {}",
                go_err(e)
            ))
        })?;
    }
    let arg0 = plan.args.first().cloned().unwrap_or_default();
    let path_env = plan.env.iter().find_map(|e| e.strip_prefix("PATH="));
    // Resolved before seccomp, which may refuse openat2.
    let exe = resolve_executable(Path::new("/"), &arg0, path_env, cwd)
        .map_err(|e| (e.exit_code(), e.to_string()))?;
    let exe = CString::new(exe.as_os_str().as_bytes()).map_err(|_| fail("NUL byte in path"))?;
    let args = cstrings(&plan.args).map_err(fail)?;
    let env = cstrings(&plan.env).map_err(fail)?;
    // Without no_new_privs loading a filter needs CAP_SYS_ADMIN, so it
    // goes before the capabilities are dropped (as runc does).
    if let Some(s) = plan.seccomp.as_ref().filter(|_| !plan.no_new_privs) {
        libcontainer::seccomp::initialize_seccomp(s).map_err(|e| fail(format!("seccomp: {e}")))?;
    }
    libcontainer::capabilities::drop_privileges(&plan.caps, &sys)
        .map_err(|e| fail(format!("capabilities: {e}")))?;
    if let Some(s) = plan.seccomp.as_ref().filter(|_| plan.no_new_privs) {
        libcontainer::seccomp::initialize_seccomp(s).map_err(|e| fail(format!("seccomp: {e}")))?;
    }
    // Close anything inherited that is not CLOEXEC already.
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only flags descriptors.
    unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        );
    }
    let e = execve(&exe, &args, &env).unwrap_err();
    let code = match e {
        Errno::ENOENT => 127,
        _ => 126,
    };
    Err((code, format!("exec: \"{arg0}\": {}", go_err(e))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_in_go_wording() {
        assert_eq!(go_err(Errno::ENOENT), "no such file or directory");
        assert_eq!(go_err(Errno::EACCES), "permission denied");
    }

    #[test]
    fn own_cgroups_are_not_rejoined() {
        // Our own process is in exactly our cgroups: nothing to join.
        let me = std::process::id() as i32;
        assert_eq!(cgroup_procs(me).unwrap(), Vec::<PathBuf>::new());
    }
}

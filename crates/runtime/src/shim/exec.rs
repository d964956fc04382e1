//! `berth shim exec <state_dir>`: the monitor of one exec'd process.
//!
//! Same life as the container shim (forked, detached, single-threaded,
//! same socket protocol and event loop), but the process is spawned at
//! `start` inside the running container (see [`super::nsenter`]) and its
//! output is not logged. Attach before `start` so no output is lost.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::unistd::{pipe2, Pid};
use oci_spec::runtime::{LinuxCapabilities, Spec};
use serde::{Deserialize, Serialize};

use super::event_loop::{LoopOptions, Shim, Workload};
use super::launch::Io;
use super::nsenter::{spawn, ChildStdio, Plan};
use super::shimlog::ShimLog;
use super::sys::{self, set_nonblocking, set_winsize};
use super::{nix_err, report, sys_err, ShimError, SHIM_LOG};
use crate::protocol::LaunchReply;
use crate::user::ResolvedUser;

/// The exec shim's configuration file inside its state dir.
pub const EXEC_CONFIG_FILE: &str = "exec.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExecConfig {
    pub exec_id: String,
    /// The container's init (host pid): its namespaces and cgroups are joined.
    pub init_pid: i32,
    /// The container's bundle; its config.json gives the security settings.
    pub bundle: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub user: ResolvedUser,
    /// Every capability (within our bounding set) instead of the container's.
    pub privileged: bool,
    pub tty: bool,
    pub open_stdin: bool,
    /// (height, width) of the pty from the start.
    #[serde(default)]
    pub console_size: Option<(u16, u16)>,
}

pub fn load_exec_config(state_dir: &Path) -> Result<ExecConfig, ShimError> {
    let path = state_dir.join(EXEC_CONFIG_FILE);
    let data = std::fs::read(&path).map_err(|source| ShimError::Config {
        path: path.clone(),
        source,
    })?;
    serde_json::from_slice(&data).map_err(|source| ShimError::ConfigParse { path, source })
}

fn owned(fd: std::os::fd::RawFd) -> OwnedFd {
    // SAFETY: callers pass a descriptor just returned to them.
    unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) }
}

/// A pty allocated in the container's own devpts (through its root), so
/// the process sees a `/dev/pts/N` that exists inside the container.
fn container_pty(init_pid: i32, size: Option<(u16, u16)>) -> Result<(OwnedFd, OwnedFd), ShimError> {
    // The container controls its /dev: resolve inside its root (an absolute symlink must not
    // reach the host's files) and accept only a pty multiplexer.
    let root = PathBuf::from(format!("/proc/{init_pid}/root"));
    let master = crate::inroot::open_in_root(
        &root,
        Path::new("/dev/ptmx"),
        rustix::fs::OFlags::RDWR | rustix::fs::OFlags::NOCTTY,
    )
    .map_err(sys_err("opening the container's /dev/ptmx"))?;
    let st = rustix::fs::fstat(&master)
        .map_err(|e| sys_err("stat /dev/ptmx")(std::io::Error::from(e)))?;
    let is_ptmx = rustix::fs::FileType::from_raw_mode(st.st_mode)
        == rustix::fs::FileType::CharacterDevice
        && rustix::fs::major(st.st_rdev) == 5
        && rustix::fs::minor(st.st_rdev) == 2;
    if !is_ptmx {
        return Err(ShimError::Create(
            "the container's /dev/ptmx is not a pty multiplexer".into(),
        ));
    }
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one int; TIOCGPTPEER returns a new fd.
    let slave = unsafe {
        if libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) < 0 {
            return Err(sys_err("unlocking the pty")(std::io::Error::last_os_error()));
        }
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if slave < 0 {
        return Err(sys_err("opening the pty slave")(
            std::io::Error::last_os_error(),
        ));
    }
    if let Some((h, w)) = size.filter(|(h, w)| *h > 0 && *w > 0) {
        set_winsize(master.as_fd(), h, w).map_err(sys_err("setting the pty size"))?;
    }
    Ok((master, owned(slave)))
}

fn stdio(cfg: &ExecConfig) -> Result<(Io, ChildStdio), ShimError> {
    if cfg.tty {
        let (master, slave) = container_pty(cfg.init_pid, cfg.console_size)?;
        set_nonblocking(master.as_fd())?;
        let dup = |f: &OwnedFd| f.try_clone().map_err(sys_err("dup"));
        let io = Io {
            stdin: Some(File::from(dup(&master)?)),
            stdout: Some(File::from(dup(&master)?)),
            stderr: None,
            pty: Some(File::from(master)),
        };
        let child = ChildStdio {
            stdin: dup(&slave)?,
            stdout: dup(&slave)?,
            stderr: slave,
            tty: true,
        };
        return Ok((io, child));
    }
    let nb = |fd: OwnedFd| -> Result<File, ShimError> {
        set_nonblocking(fd.as_fd())?;
        Ok(File::from(fd))
    };
    let (out_r, out_w) = pipe2(OFlag::O_CLOEXEC).map_err(nix_err("stdout pipe"))?;
    let (err_r, err_w) = pipe2(OFlag::O_CLOEXEC).map_err(nix_err("stderr pipe"))?;
    let (stdin_w, stdin_r) = if cfg.open_stdin {
        let (r, w) = pipe2(OFlag::O_CLOEXEC).map_err(nix_err("stdin pipe"))?;
        (Some(nb(w)?), r)
    } else {
        (
            None,
            File::open("/dev/null")
                .map_err(sys_err("open /dev/null"))?
                .into(),
        )
    };
    let io = Io {
        stdin: stdin_w,
        stdout: Some(nb(out_r)?),
        stderr: Some(nb(err_r)?),
        pty: None,
    };
    let child = ChildStdio {
        stdin: stdin_r,
        stdout: out_w,
        stderr: err_w,
        tty: false,
    };
    Ok((io, child))
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

/// dockerd's exec process: the container's process settings (caps,
/// rlimits, no_new_privs, seccomp) with the exec's args, env, cwd, user.
fn plan(cfg: &ExecConfig) -> Result<Plan, ShimError> {
    let spec = Spec::load(cfg.bundle.join("config.json"))
        .map_err(|e| ShimError::Create(format!("loading the container's spec: {e}")))?;
    let process = spec.process().clone().unwrap_or_default();
    let caps = if cfg.privileged {
        let all = crate::spec::effective_caps(&[], &[], true)
            .map_err(|e| ShimError::Create(e.to_string()))?;
        serde_json::from_value::<LinuxCapabilities>(serde_json::json!({
            "bounding": all, "effective": all, "permitted": all,
        }))
        .map_err(|e| ShimError::Create(e.to_string()))?
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
    Ok(Plan {
        init_pid: cfg.init_pid,
        args: cfg.args.clone(),
        env: cfg.env.clone(),
        cwd: cfg.cwd.clone(),
        uid: cfg.user.uid,
        gid: cfg.user.gid,
        additional_gids: cfg.user.additional_gids.clone(),
        caps,
        no_new_privs: process.no_new_privileges().unwrap_or(false),
        seccomp: spec.linux().as_ref().and_then(|l| l.seccomp().clone()),
        rlimits,
        oom_score_adj: process.oom_score_adj(),
    })
}

struct ExecWorkload {
    plan: Plan,
    log: ShimLog,
    /// The child's ends, closed once it has them so EOF reaches us.
    child_stdio: Option<ChildStdio>,
}

impl Workload for ExecWorkload {
    fn start(&mut self) -> Result<Pid, (Option<Pid>, String)> {
        let Some(stdio) = self.child_stdio.take() else {
            return Err((None, "exec already started".into()));
        };
        let t0 = std::time::Instant::now();
        let r = spawn(&self.plan, &stdio);
        // Where `docker exec` latency goes, for whoever tunes it.
        self.log
            .info(&format!("exec spawned in {:?}", t0.elapsed()));
        r
    }

    fn teardown(&mut self, _log: &ShimLog) -> bool {
        false
    }
}

/// The forked monitor of `berth shim exec`.
pub(crate) fn exec_monitor(cfg: ExecConfig, state_dir: PathBuf, report_fd: OwnedFd) -> i32 {
    sys::close_inherited_fds(&[report_fd.as_raw_fd()]);
    let log = ShimLog::open(&state_dir.join(SHIM_LOG));
    let setup = sys::detach(&state_dir)
        .and_then(|()| Ok((plan(&cfg)?, stdio(&cfg)?)))
        .and_then(|(plan, (io, child))| {
            let opts = LoopOptions {
                name: format!("exec {}", cfg.exec_id),
                log: None,
                open_stdin: cfg.open_stdin,
                // `docker exec -i` closes the process' stdin at the client's EOF.
                stdin_once: true,
                health: None,
            };
            let workload = ExecWorkload {
                plan,
                log: log.clone(),
                child_stdio: Some(child),
            };
            Shim::new(opts, state_dir, None, io, Box::new(workload), log.clone())
        });
    match setup {
        Ok(shim) => {
            report(report_fd, &LaunchReply::Started { pid: 0 });
            shim.run()
        }
        Err(e) => {
            log.error(&format!("exec setup failed: {e}"));
            report(
                report_fd,
                &LaunchReply::Failed {
                    error: e.to_string(),
                },
            );
            1
        }
    }
}

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
use oci_spec::runtime::Spec;
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

/// dockerd's exec process: the container's process settings (caps,
/// rlimits, no_new_privs, seccomp) with the exec's args, env, cwd, user.
fn plan(cfg: &ExecConfig) -> Result<Plan, ShimError> {
    let spec = Spec::load(cfg.bundle.join("config.json"))
        .map_err(|e| ShimError::Create(format!("loading the container's spec: {e}")))?;
    let mut plan =
        Plan::for_container(&spec, cfg.init_pid, cfg.privileged).map_err(ShimError::Create)?;
    plan.args = cfg.args.clone();
    plan.env = cfg.env.clone();
    plan.cwd = cfg.cwd.clone();
    plan.uid = cfg.user.uid;
    plan.gid = cfg.user.gid;
    plan.additional_gids = cfg.user.additional_gids.clone();
    Ok(plan)
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

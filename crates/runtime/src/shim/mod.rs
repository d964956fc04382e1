//! `berth shim <state_dir>`: the per-container monitor.
//!
//! One single-threaded process per container, with no async runtime: it
//! is the only place libcontainer runs (libcontainer clones with raw
//! `clone3` and runs Rust code in the child, which deadlocks if another
//! thread held a lock at that instant). It holds the container's stdio or
//! pty, writes the json-file log, serves attach/start/kill/... on
//! `shim.sock`, reaps the init and records its exit in `exit.json`. It
//! outlives the daemon, which reconnects to `shim.sock` after a restart.

mod event_loop;
pub mod exec;
mod health;
mod launch;
mod nsenter;
mod propagation;
mod shimlog;
mod sys;

use std::fs::File;
use std::io::{BufRead, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::unistd::{fork, pipe2, ForkResult};
use serde::{Deserialize, Serialize};

use crate::protocol::LaunchReply;
use shimlog::ShimLog;

/// The shim's configuration file inside the state dir.
pub const CONFIG_FILE: &str = "shim.json";
/// The shim's own error log inside the state dir.
pub const SHIM_LOG: &str = "shim.log";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShimConfig {
    pub id: String,
    /// Holds config.json; the rootfs is already mounted by the daemon.
    pub bundle: PathBuf,
    pub state_dir: PathBuf,
    /// libcontainer's state root.
    pub runtime_root: PathBuf,
    pub log_path: PathBuf,
    /// Bytes; 0 = unlimited.
    pub log_max_size: u64,
    pub log_max_files: u32,
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    /// Probes this shim runs inside the container; None without a healthcheck.
    #[serde(default)]
    pub healthcheck: Option<crate::health::HealthConfig>,
}

#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    #[error("reading {path}: {source}")]
    Config {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parsing {path}: {source}")]
    ConfigParse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{context}: {source}")]
    Sys {
        context: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("creating container: {0}")]
    Create(String),
    #[error("container {0} already exists in the runtime root")]
    Exists(String),
}

pub(crate) fn sys_err(context: &'static str) -> impl FnOnce(std::io::Error) -> ShimError {
    move |source| ShimError::Sys { context, source }
}

pub(crate) fn nix_err(context: &'static str) -> impl FnOnce(nix::Error) -> ShimError {
    move |e| ShimError::Sys {
        context,
        source: std::io::Error::from(e),
    }
}

/// Loads `<state_dir>/shim.json`.
pub fn load_config(state_dir: &Path) -> Result<ShimConfig, ShimError> {
    let path = state_dir.join(CONFIG_FILE);
    let data = std::fs::read(&path).map_err(|source| ShimError::Config {
        path: path.clone(),
        source,
    })?;
    serde_json::from_slice(&data).map_err(|source| ShimError::ConfigParse { path, source })
}

fn print_reply(r: &LaunchReply) {
    // stdout is the daemon's pipe; if it is gone there is no one to tell.
    if let Ok(s) = serde_json::to_string(r) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{s}");
        let _ = out.flush();
    }
}

/// Entry point of `berth shim <state_dir>`. Must be called before any
/// thread or async runtime exists: it forks.
///
/// The invoked process prints one JSON line (`{"pid":N}` or
/// `{"error":"..."}`) once the container is created, and returns the exit
/// code for it (0 / 1); the forked child stays behind as the monitor.
pub fn shim_main(state_dir: &Path) -> i32 {
    fork_monitor(state_dir, load_config, monitor_main)
}

/// Entry point of `berth shim exec <state_dir>` (one exec'd process; see
/// [`exec`]). Same contract as [`shim_main`]; it reports `{"pid":0}`
/// once ready for attach and `start`.
pub fn exec_main(state_dir: &Path) -> i32 {
    fork_monitor(state_dir, exec::load_exec_config, exec::exec_monitor)
}

fn fork_monitor<C>(
    state_dir: &Path,
    load: impl FnOnce(&Path) -> Result<C, ShimError>,
    monitor: impl FnOnce(C, PathBuf, OwnedFd) -> i32,
) -> i32 {
    let state_dir = match std::path::absolute(state_dir) {
        Ok(p) => p,
        Err(e) => {
            print_reply(&LaunchReply::Failed {
                error: format!("state dir {}: {e}", state_dir.display()),
            });
            return 1;
        }
    };
    let cfg = match load(&state_dir) {
        Ok(c) => c,
        Err(e) => {
            print_reply(&LaunchReply::Failed {
                error: e.to_string(),
            });
            return 1;
        }
    };
    let (rd, wr) = match pipe2(OFlag::O_CLOEXEC) {
        Ok(p) => p,
        Err(e) => {
            print_reply(&LaunchReply::Failed {
                error: format!("pipe: {e}"),
            });
            return 1;
        }
    };
    // SAFETY: the caller guarantees we are single-threaded, so the child
    // may run arbitrary code.
    match unsafe { fork() } {
        Err(e) => {
            print_reply(&LaunchReply::Failed {
                error: format!("fork: {e}"),
            });
            1
        }
        Ok(ForkResult::Parent { .. }) => {
            drop(wr);
            launcher_wait(rd)
        }
        Ok(ForkResult::Child) => {
            drop(rd);
            let code = monitor(cfg, state_dir, wr);
            std::process::exit(code)
        }
    }
}

/// The invoked process: relays the monitor's one report line.
fn launcher_wait(rd: OwnedFd) -> i32 {
    // One line, not EOF: the container's init holds a copy of the write
    // end (CLOEXEC, but it only execs at `start`).
    let mut buf = String::new();
    let _ = std::io::BufReader::new(File::from(rd).take(1 << 20)).read_line(&mut buf);
    let reply = serde_json::from_str::<LaunchReply>(buf.lines().next().unwrap_or(""))
        .unwrap_or_else(|_| LaunchReply::Failed {
            error: "shim exited before reporting (see shim.log)".into(),
        });
    print_reply(&reply);
    match reply {
        LaunchReply::Started { .. } => 0,
        LaunchReply::Failed { .. } => 1,
    }
}

pub(crate) fn report(wr: OwnedFd, r: &LaunchReply) {
    if let Ok(mut s) = serde_json::to_string(r) {
        s.push('\n');
        let _ = File::from(wr).write_all(s.as_bytes());
    }
}

/// The long-lived monitor (forked child).
fn monitor_main(cfg: ShimConfig, state_dir: PathBuf, report_fd: OwnedFd) -> i32 {
    sys::close_inherited_fds(&[report_fd.as_raw_fd()]);
    let log = ShimLog::open(&state_dir.join(SHIM_LOG));
    if let Err(e) = sys::detach(&state_dir) {
        log.error(&format!("detaching: {e}"));
        report(
            report_fd,
            &LaunchReply::Failed {
                error: e.to_string(),
            },
        );
        return 1;
    }
    let launched = match launch::create(&cfg, &state_dir) {
        Ok(l) => l,
        Err(e) => {
            log.error(&format!("create failed: {e}"));
            if !matches!(e, ShimError::Exists(_)) {
                launch::cleanup_failed_create(&cfg);
            }
            report(
                report_fd,
                &LaunchReply::Failed {
                    error: e.to_string(),
                },
            );
            return 1;
        }
    };
    let pid = launched.pid.as_raw();
    let opts = match crate::jsonlog::JsonLogWriter::open(
        &cfg.log_path,
        cfg.log_max_size,
        cfg.log_max_files,
    ) {
        Ok(w) => event_loop::LoopOptions {
            name: format!("container {}", cfg.id),
            log: Some(w),
            open_stdin: cfg.open_stdin,
            stdin_once: cfg.stdin_once,
            health: cfg.healthcheck.clone().and_then(|hc| {
                health::Health::new(hc, &cfg, log.clone())
                    .map_err(|e| log.error(&format!("healthcheck disabled: {e}")))
                    .ok()
            }),
        },
        Err(e) => {
            let e = format!("opening the container log: {e}");
            log.error(&e);
            report(report_fd, &LaunchReply::Failed { error: e });
            let _ = nix::sys::signal::kill(launched.pid, nix::sys::signal::Signal::SIGKILL);
            launch::cleanup_failed_create(&cfg);
            return 1;
        }
    };
    let workload = launch::InitWorkload {
        container: launched.container,
        pid: launched.pid,
        cgroups_path: launched.cgroups_path,
    };
    let shim = match event_loop::Shim::new(
        opts,
        state_dir,
        Some(launched.pid),
        launched.io,
        Box::new(workload),
        log.clone(),
    ) {
        Ok(s) => s,
        Err(e) => {
            log.error(&format!("setting up the monitor: {e}"));
            report(
                report_fd,
                &LaunchReply::Failed {
                    error: e.to_string(),
                },
            );
            // The init is our child; kill it so it does not linger.
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            launch::cleanup_failed_create(&cfg);
            return 1;
        }
    };
    log.info(&format!("created container {} with init pid {pid}", cfg.id));
    report(report_fd, &LaunchReply::Started { pid });
    shim.run()
}

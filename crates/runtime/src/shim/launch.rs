//! libcontainer **create**: the init is set up and waits for `start`.

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::time::Duration;

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::Container;
use libcontainer::syscall::syscall::SyscallType;
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::unistd::{pipe2, Pid};
use oci_spec::runtime::Spec;

use super::event_loop::Workload;
use super::propagation;
use super::shimlog::ShimLog;
use super::sys::{oom_killed, recv_fd, set_nonblocking};
use super::{nix_err, sys_err, ShimConfig, ShimError};

const CONSOLE_SOCKET: &str = "console.sock";

/// The shim's ends of the container's stdio.
pub(crate) struct Io {
    /// Write end of the container's stdin pipe, or a dup of the pty master.
    pub stdin: Option<File>,
    pub stdout: Option<File>,
    /// None with a tty (everything comes through the master, as stdout).
    pub stderr: Option<File>,
    /// The pty master, kept for TIOCSWINSZ.
    pub pty: Option<File>,
}

pub(crate) struct Launched {
    pub container: Container,
    pub pid: Pid,
    pub io: Io,
    pub cgroups_path: String,
}

/// Renders an error with its whole source chain: libcontainer's top-level
/// messages alone ("invalid input") say little.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

/// The bundle's spec as libcontainer read it (it has just loaded it).
fn load_spec(cfg: &ShimConfig) -> Result<Spec, ShimError> {
    Spec::load(cfg.bundle.join("config.json"))
        .map_err(|e| ShimError::Create(format!("reading config.json: {e}")))
}

fn cgroups_path_of(cfg: &ShimConfig, spec: &Spec) -> String {
    spec.linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().clone())
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|| format!("/berth/{}", cfg.id))
}

fn nonblocking_file(fd: OwnedFd) -> Result<File, ShimError> {
    set_nonblocking(fd.as_fd())?;
    Ok(File::from(fd))
}

pub(crate) fn create(cfg: &ShimConfig, state_dir: &Path) -> Result<Launched, ShimError> {
    std::fs::create_dir_all(&cfg.runtime_root).map_err(sys_err("creating runtime root"))?;
    // Checked here (not left to libcontainer) so that the failure cleanup
    // can never remove another live container's state.
    if cfg.runtime_root.join(&cfg.id).exists() {
        return Err(ShimError::Exists(cfg.id.clone()));
    }
    let builder = ContainerBuilder::new(cfg.id.clone(), SyscallType::default())
        .with_root_path(&cfg.runtime_root)
        .and_then(|b| b.validate_id())
        .map_err(|e| ShimError::Create(chain(&e)))?;

    let mut io = Io {
        stdin: None,
        stdout: None,
        stderr: None,
        pty: None,
    };
    let mut console = None;
    let builder = if cfg.tty {
        let _ = std::fs::remove_file(CONSOLE_SOCKET);
        // Bound by relative name (cwd is the state dir); libcontainer gets
        // the absolute path because it symlinks to it from its own dir.
        let l = UnixListener::bind(CONSOLE_SOCKET).map_err(sys_err("binding console socket"))?;
        console = Some(l);
        builder.with_console_socket(Some(state_dir.join(CONSOLE_SOCKET)))
    } else {
        let (out_r, out_w) = pipe2(OFlag::O_CLOEXEC).map_err(nix_err("stdout pipe"))?;
        let (err_r, err_w) = pipe2(OFlag::O_CLOEXEC).map_err(nix_err("stderr pipe"))?;
        io.stdout = Some(nonblocking_file(out_r)?);
        io.stderr = Some(nonblocking_file(err_r)?);
        let stdin: OwnedFd = if cfg.open_stdin {
            let (in_r, in_w) = pipe2(OFlag::O_CLOEXEC).map_err(nix_err("stdin pipe"))?;
            io.stdin = Some(nonblocking_file(in_w)?);
            in_r
        } else {
            File::open("/dev/null")
                .map_err(sys_err("open /dev/null"))?
                .into()
        };
        builder
            .with_stdin(stdin)
            .with_stdout(out_w)
            .with_stderr(err_w)
    };

    // Creates the namespaces, cgroup (linux.cgroupsPath) and init; the init
    // then blocks until `start`. The builder drops the container's pipe
    // ends when done, so EOF on ours means the container closed them.
    let container = builder
        .as_init(&cfg.bundle)
        .with_systemd(false)
        .with_detach(true)
        .build()
        .map_err(|e| ShimError::Create(chain(&e)))?;
    let pid = container
        .pid()
        .ok_or_else(|| ShimError::Create("libcontainer reported no init pid".into()))?;
    let spec = load_spec(cfg)?;
    propagation::apply(pid, &propagation::plan(&spec))?;

    if let Some(l) = console {
        let master = receive_pty(&l);
        let _ = std::fs::remove_file(CONSOLE_SOCKET);
        let master = master?;
        set_nonblocking(master.as_fd())?;
        let input = master.try_clone().map_err(sys_err("dup pty master"))?;
        let output = master.try_clone().map_err(sys_err("dup pty master"))?;
        io.pty = Some(File::from(master));
        io.stdin = Some(File::from(input));
        io.stdout = Some(File::from(output));
    }

    Ok(Launched {
        container,
        pid,
        io,
        cgroups_path: cgroups_path_of(cfg, &spec),
    })
}

/// The container's init, created (and waiting) before the loop runs.
pub(crate) struct InitWorkload {
    pub container: Container,
    pub pid: Pid,
    pub cgroups_path: String,
}

impl Workload for InitWorkload {
    fn start(&mut self) -> Result<Pid, (Option<Pid>, String)> {
        self.container
            .start()
            .map(|_| self.pid)
            .map_err(|e| (Some(self.pid), format!("starting container: {e}")))
    }

    /// The OOM state is read before libcontainer deletes the cgroup.
    fn teardown(&mut self, log: &ShimLog) -> bool {
        let oom = oom_killed(&self.cgroups_path);
        if let Err(e) = self.container.delete(true) {
            log.error(&format!("deleting container: {e}"));
        }
        oom
    }
}

/// The init sent the master before create returned; the timeout only
/// guards against a libcontainer that did not.
fn receive_pty(l: &UnixListener) -> Result<OwnedFd, ShimError> {
    set_nonblocking(l.as_fd())?;
    let mut pfd = [PollFd::new(l.as_fd(), PollFlags::POLLIN)];
    let ready = poll(&mut pfd, PollTimeout::from(5000u16)).map_err(nix_err("poll console"))?;
    if ready == 0 {
        return Err(ShimError::Create(
            "timed out waiting for the pty master".into(),
        ));
    }
    let (sock, _) = l.accept().map_err(sys_err("accept console socket"))?;
    sock.set_nonblocking(false)
        .map_err(sys_err("console socket"))?;
    sock.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(sys_err("console socket"))?;
    recv_fd(&sock).map_err(sys_err("receiving pty master"))
}

/// Best effort removal of what a failed create left: libcontainer state
/// ("creating") and cgroups.
pub(crate) fn cleanup_failed_create(cfg: &ShimConfig) {
    let dir = cfg.runtime_root.join(&cfg.id);
    if let Ok(mut c) = Container::load(dir.clone()) {
        let _ = c.delete(true);
    }
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(CONSOLE_SOCKET);
}

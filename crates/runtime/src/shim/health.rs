//! Healthcheck probes run by the container's own shim, so that the daemon does no work per
//! probe: it only hears about status changes.
//!
//! Each probe is a forked child of the shim ("runner") that starts the probe inside the
//! container as `docker exec` does (`nsenter::spawn`: the container's cgroups, namespaces,
//! user, env, cwd, capabilities, rlimits and seccomp filter, with the probe's argv), then
//! waits for it and exits with its status. Forking keeps the shim's poll loop free while the
//! probe is set up. The runner reports the probe's pid on a status pipe, so that a timeout
//! can kill the probe's whole session (the probe calls `setsid`).

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::signal::{kill, killpg, signal, sigprocmask, SigHandler, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, pipe2, ForkResult, Pid};

use super::nsenter::{spawn, ChildStdio, Plan};
use super::shimlog::ShimLog;
use super::sys::{close_inherited_fds, set_nonblocking};
use super::ShimConfig;
use crate::health::{
    go_duration, HealthConfig, HealthState, HealthStatus, LimitedOutput, ProbeResult,
    MAX_LOG_ENTRIES,
};

fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true)
}

struct Probe {
    runner: Pid,
    output: Option<File>,
    status: File,
    status_buf: Vec<u8>,
    collected: LimitedOutput,
    start_wall: String,
    started: Instant,
    deadline: Instant,
    timed_out: bool,
}

impl Probe {
    /// Reads what the runner reported: `P<pid>\n` once the probe runs, `E\n` if it could not
    /// be started.
    fn read_status(&mut self) {
        let mut buf = [0u8; 64];
        loop {
            match self.status.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => self.status_buf.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }

    fn probe_pid(&mut self) -> Option<Pid> {
        self.read_status();
        let s = std::str::from_utf8(&self.status_buf).ok()?;
        let pid: i32 = s.strip_prefix('P')?.trim().parse().ok()?;
        Some(Pid::from_raw(pid))
    }

    fn start_failed(&mut self) -> bool {
        self.read_status();
        self.status_buf.starts_with(b"E")
    }

    fn drain_output(&mut self) {
        let Some(f) = &mut self.output else { return };
        let mut buf = [0u8; 8192];
        loop {
            match f.read(&mut buf) {
                Ok(0) => {
                    self.output = None;
                    return;
                }
                Ok(n) => self.collected.push(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.output = None;
                    return;
                }
            }
        }
    }

    /// Kills the probe (its whole session) or, before it has run, the runner.
    fn kill(&mut self) {
        match self.probe_pid() {
            Some(p) => {
                let _ = killpg(p, Signal::SIGKILL);
                let _ = kill(p, Signal::SIGKILL);
            }
            None => {
                let _ = kill(self.runner, Signal::SIGKILL);
            }
        }
    }
}

pub(crate) struct Health {
    cfg: HealthConfig,
    /// The container's process with the probe's argv; `init_pid` is set at start.
    plan: Plan,
    state: HealthState,
    container_started: Option<Instant>,
    next_probe: Option<Instant>,
    probe: Option<Probe>,
    log: ShimLog,
}

impl Health {
    /// Prepares the probes' process description from the bundle's config.json.
    pub(crate) fn new(
        cfg: HealthConfig,
        shim: &ShimConfig,
        log: ShimLog,
    ) -> Result<Health, String> {
        if cfg.argv.is_empty() {
            return Err("healthcheck has no command".into());
        }
        let spec = oci_spec::runtime::Spec::load(shim.bundle.join("config.json"))
            .map_err(|e| format!("loading the container's spec: {e}"))?;
        let mut plan = Plan::for_container(&spec, 0, false)?;
        plan.args = cfg.argv.clone();
        let earlier: Vec<ProbeResult> = cfg
            .log
            .iter()
            .rev()
            .take(MAX_LOG_ENTRIES)
            .rev()
            .cloned()
            .collect();
        Ok(Health {
            cfg,
            plan,
            state: HealthState {
                log: earlier,
                ..HealthState::default()
            },
            container_started: None,
            next_probe: None,
            probe: None,
            log,
        })
    }

    pub(crate) fn state(&self) -> &HealthState {
        &self.state
    }

    fn in_start_period(&self, at: Instant) -> bool {
        self.container_started
            .is_some_and(|s| at.saturating_duration_since(s) < self.cfg.start_period())
    }

    /// dockerd probes at the start interval while a container is starting within its start
    /// period, at the regular interval otherwise.
    fn next_interval(&self, now: Instant) -> Duration {
        if self.state.status == HealthStatus::Starting
            && !self.cfg.start_period().is_zero()
            && self.in_start_period(now)
        {
            self.cfg.start_interval()
        } else {
            self.cfg.interval()
        }
    }

    pub(crate) fn on_container_started(&mut self, now: Instant, init: Pid) {
        self.plan.init_pid = init.as_raw();
        self.container_started = Some(now);
        self.next_probe = Some(now + self.next_interval(now));
    }

    /// No more probes: the container is gone.
    pub(crate) fn stop(&mut self) {
        self.next_probe = None;
        if let Some(p) = &mut self.probe {
            p.kill();
        }
    }

    /// The running probe's output pipe, for the poll set.
    pub(crate) fn output_fd(&self) -> Option<RawFd> {
        self.probe
            .as_ref()
            .and_then(|p| p.output.as_ref())
            .map(|f| f.as_raw_fd())
    }

    pub(crate) fn read_output(&mut self) {
        if let Some(p) = &mut self.probe {
            p.drain_output();
        }
    }

    /// The next instant the loop must wake up for: a probe to start or to time out.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        match &self.probe {
            Some(p) if !p.timed_out => Some(p.deadline),
            Some(_) => None,
            None => self.next_probe,
        }
    }

    /// Starts a due probe, kills one past its timeout; returns whether the status changed
    /// (only a probe that could not even be forked is recorded here).
    pub(crate) fn tick(&mut self, now: Instant) -> bool {
        if let Some(p) = &mut self.probe {
            if !p.timed_out && now >= p.deadline {
                p.timed_out = true;
                p.kill();
            }
            return false;
        }
        if self.next_probe.is_some_and(|t| now >= t) {
            self.next_probe = None;
            match self.spawn(now) {
                Ok(p) => self.probe = Some(p),
                Err(e) => {
                    self.log.error(&format!("starting health probe: {e}"));
                    let at = now_rfc3339();
                    let result = ProbeResult {
                        start: at.clone(),
                        end: at,
                        exit_code: -1,
                        output: e,
                    };
                    return self.finish(result, now);
                }
            }
        }
        false
    }

    /// Handles a reaped child; returns `Some(status_changed)` if it was the probe runner.
    pub(crate) fn on_exit(&mut self, pid: Pid, code: i32) -> Option<bool> {
        if self.probe.as_ref().map(|p| p.runner) != Some(pid) {
            return None;
        }
        let mut p = self.probe.take()?;
        p.drain_output();
        let failed_start = p.start_failed();
        let exit_code = if p.timed_out || failed_start {
            -1
        } else {
            i64::from(code)
        };
        let output = if p.timed_out {
            format!(
                "Health check exceeded timeout ({})",
                go_duration(self.cfg.timeout())
            )
        } else {
            std::mem::take(&mut p.collected).into_string()
        };
        let started = p.started;
        let result = ProbeResult {
            start: p.start_wall.clone(),
            end: now_rfc3339(),
            exit_code,
            output,
        };
        let in_start = self.in_start_period(started);
        let changed = self.state.record(result, in_start, self.cfg.retries);
        if self.container_started.is_some() {
            let now = Instant::now();
            self.next_probe = Some(now + self.next_interval(now));
        }
        Some(changed)
    }

    /// Records a probe that never ran; returns whether the status changed.
    fn finish(&mut self, result: ProbeResult, now: Instant) -> bool {
        let in_start = self.in_start_period(now);
        let changed = self.state.record(result, in_start, self.cfg.retries);
        self.next_probe = Some(now + self.next_interval(now));
        changed
    }

    fn spawn(&self, now: Instant) -> Result<Probe, String> {
        let (out_r, out_w) = pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
        let (st_r, st_w) = pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
        let start_wall = now_rfc3339();
        // SAFETY: the shim is single-threaded, so the child may run arbitrary code.
        match unsafe { fork() }.map_err(|e| format!("fork: {e}"))? {
            ForkResult::Child => {
                drop(out_r);
                drop(st_r);
                let code = run_probe(&self.plan, out_w, st_w);
                // SAFETY: _exit skips the parent's atexit handlers and buffered stdio, which
                // belong to the shim.
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => {
                drop(out_w);
                drop(st_w);
                set_nonblocking(out_r.as_fd()).map_err(|e| e.to_string())?;
                set_nonblocking(st_r.as_fd()).map_err(|e| e.to_string())?;
                Ok(Probe {
                    runner: child,
                    output: Some(File::from(out_r)),
                    status: File::from(st_r),
                    status_buf: Vec::new(),
                    collected: LimitedOutput::default(),
                    start_wall,
                    started: now,
                    deadline: now + self.cfg.timeout(),
                    timed_out: false,
                })
            }
        }
    }
}

/// The runner (forked child of the shim): starts the probe in the container, waits for it and
/// exits with its status.
fn run_probe(plan: &Plan, out: OwnedFd, status: OwnedFd) -> i32 {
    close_inherited_fds(&[out.as_raw_fd(), status.as_raw_fd()]);
    // The probe inherits the signal mask and ignored signals across exec; the shim blocks
    // SIGCHLD and ignores SIGPIPE, a probe must not.
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    // SAFETY: installing SIG_DFL runs no handler code.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
    // The probe is forked by an intermediate that exits; as subreaper the runner inherits it
    // and can wait for it.
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let mut status = File::from(status);
    let mut errors = match out.try_clone() {
        Ok(fd) => File::from(fd),
        Err(_) => return 126,
    };
    let fail = |errors: &mut File, status: &mut File, msg: String| {
        let _ = errors.write_all(msg.as_bytes());
        let _ = status.write_all(b"E\n");
        126
    };
    let stdio = match (File::open("/dev/null"), out.try_clone()) {
        (Ok(i), Ok(e)) => ChildStdio {
            stdin: OwnedFd::from(i),
            stdout: out,
            stderr: e,
            tty: false,
        },
        _ => return fail(&mut errors, &mut status, "cannot set up probe stdio".into()),
    };
    let pid = match spawn(plan, &stdio) {
        Ok(p) => p,
        Err((child, msg)) => {
            if let Some(c) = child {
                let _ = waitpid(c, None);
            }
            return fail(
                &mut errors,
                &mut status,
                format!("OCI runtime exec failed: {msg}"),
            );
        }
    };
    drop(stdio);
    drop(errors);
    let _ = status.write_all(format!("P{}\n", pid.as_raw()).as_bytes());
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => return code,
            Ok(WaitStatus::Signaled(_, sig, _)) => return 128 + sig as i32,
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => return 255,
        }
    }
}

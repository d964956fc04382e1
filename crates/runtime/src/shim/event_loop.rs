//! The shim's poll(2) loop: container output -> log + attachers, attacher
//! input -> container stdin, control requests, SIGCHLD -> exit handling.
//!
//! Everything is non-blocking and buffered per peer, so a slow or dead
//! attacher can never stall the container or the log: its backlog is
//! capped and the connection dropped beyond it.

use std::fs::File;
use std::io::{self, ErrorKind, Read, Write};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::health::Health;
use super::launch::Io;
use super::shimlog::ShimLog;
use super::sys::{monitor_signals, set_winsize};
use super::{sys_err, ShimError};
use crate::exit::{write_exit_file, ExitStatus};
use crate::jsonlog::{JsonLogWriter, Stream};
use crate::protocol::{
    encode_frame, ErrorReply, OkReply, Request, StateReply, Status, MAX_REQUEST_LEN, SOCKET_NAME,
    STREAM_STDERR, STREAM_STDOUT,
};

/// Per-attacher output backlog beyond which it is disconnected.
const MAX_CLIENT_BACKLOG: usize = 1 << 20;
/// Pending stdin beyond which attachers are not read (back-pressure).
const MAX_STDIN_BACKLOG: usize = 1 << 20;
/// How long to keep draining output after the init exited.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a departing attacher gets to take its remaining output.
const FINAL_FLUSH_TIMEOUT: Duration = Duration::from_secs(1);
const CHUNK: usize = 64 * 1024;

struct Output {
    file: File,
    log_stream: Stream,
    frame_stream: u8,
    open: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Request line not complete yet.
    Request,
    Attach {
        stdin: bool,
        stdout: bool,
        stderr: bool,
    },
    Wait,
    /// Receives the health state at each status change.
    HealthWatch,
    /// One-shot request answered; close once the reply is out.
    Done,
}

struct Client {
    sock: UnixStream,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    kind: Kind,
    read_open: bool,
    dead: bool,
}

impl Client {
    fn queue(&mut self, data: &[u8]) {
        if self.out.len() + data.len() > MAX_CLIENT_BACKLOG {
            // Too slow (or gone): drop it rather than buffer without bound.
            self.dead = true;
            return;
        }
        self.out.extend_from_slice(data);
    }

    fn queue_json<T: serde::Serialize>(&mut self, v: &T) {
        if let Ok(mut line) = serde_json::to_vec(v) {
            line.push(b'\n');
            self.queue(&line);
        }
    }

    fn flush(&mut self) {
        while !self.out.is_empty() && !self.dead {
            match self.sock.write(&self.out) {
                Ok(0) => self.dead = true,
                Ok(n) => {
                    self.out.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => self.dead = true,
            }
        }
        if self.out.is_empty() && self.kind == Kind::Done {
            self.dead = true;
        }
    }
}

/// What the loop monitors: a container's init (created by libcontainer
/// before the loop runs) or an exec'd process (spawned at `start`).
pub(crate) trait Workload {
    /// Runs the process; returns its pid. An `Err` after a pid exists
    /// (the command could not be executed) still leaves that pid to reap.
    fn start(&mut self) -> Result<Pid, (Option<Pid>, String)>;
    /// Last step after the exit, before anyone hears of it; returns
    /// whether the kernel OOM-killed something.
    fn teardown(&mut self, log: &ShimLog) -> bool;
}

/// How the loop treats the process' stdio.
pub(crate) struct LoopOptions {
    /// Names the process in shim.log.
    pub name: String,
    /// The json-file log, if output is logged (containers, not execs).
    pub log: Option<JsonLogWriter>,
    pub open_stdin: bool,
    /// Close the process' stdin when the first stdin attacher closes.
    pub stdin_once: bool,
    /// Probes run by this shim (containers with a healthcheck).
    pub health: Option<Health>,
}

#[derive(Clone, Copy)]
enum Token {
    Signal,
    Listener,
    Output(usize),
    Stdin,
    Client(usize),
    Probe,
}

pub(crate) struct Shim {
    name: String,
    stdin_once: bool,
    log: ShimLog,
    workload: Box<dyn Workload>,
    /// None until the process exists (execs are spawned at `start`).
    pid: Option<Pid>,
    status: Status,
    jsonlog: Option<JsonLogWriter>,
    log_failed: bool,
    outputs: Vec<Output>,
    stdin: Option<File>,
    stdin_buf: Vec<u8>,
    stdin_close_pending: bool,
    pty: Option<File>,
    listener: UnixListener,
    socket_path: PathBuf,
    sigfd: SignalFd,
    clients: Vec<Client>,
    exited: Option<(i32, String)>,
    drain_deadline: Option<Instant>,
    health: Option<Health>,
}

impl Shim {
    pub(crate) fn new(
        opts: LoopOptions,
        state_dir: PathBuf,
        pid: Option<Pid>,
        io: Io,
        workload: Box<dyn Workload>,
        log: ShimLog,
    ) -> Result<Shim, ShimError> {
        let socket_path = state_dir.join(SOCKET_NAME);
        let _ = std::fs::remove_file(SOCKET_NAME);
        // Relative bind: cwd is the state dir (see sys::detach).
        let listener = UnixListener::bind(SOCKET_NAME).map_err(sys_err("binding shim.sock"))?;
        listener
            .set_nonblocking(true)
            .map_err(sys_err("shim.sock"))?;
        let sigfd = monitor_signals()?;

        let mut outputs = Vec::new();
        if let Some(f) = io.stdout {
            outputs.push(Output {
                file: f,
                log_stream: Stream::Stdout,
                frame_stream: STREAM_STDOUT,
                open: true,
            });
        }
        if let Some(f) = io.stderr {
            outputs.push(Output {
                file: f,
                log_stream: Stream::Stderr,
                frame_stream: STREAM_STDERR,
                open: true,
            });
        }
        Ok(Shim {
            health: opts.health,
            name: opts.name,
            stdin_once: opts.stdin_once,
            log,
            workload,
            pid,
            status: Status::Created,
            jsonlog: opts.log,
            log_failed: false,
            outputs,
            stdin: if opts.open_stdin { io.stdin } else { None },
            stdin_buf: Vec::new(),
            stdin_close_pending: false,
            pty: io.pty,
            listener,
            socket_path,
            sigfd,
            clients: Vec::new(),
            exited: None,
            drain_deadline: None,
        })
    }

    /// Runs until the container has exited and everything is cleaned up.
    pub(crate) fn run(mut self) -> i32 {
        // The init may have died before SIGCHLD was routed to the signalfd.
        self.reap();
        let mut pollfds: Vec<libc::pollfd> = Vec::new();
        let mut tokens: Vec<Token> = Vec::new();
        loop {
            if let Some(deadline) = self.drain_deadline {
                if self.outputs.iter().all(|o| !o.open) || Instant::now() >= deadline {
                    return self.finalize();
                }
            }
            if let Some(h) = &mut self.health {
                let changed = h.tick(Instant::now());
                if changed {
                    self.push_health();
                }
            }
            pollfds.clear();
            tokens.clear();
            let mut add = |fd: RawFd, events: libc::c_short, t: Token| {
                pollfds.push(libc::pollfd {
                    fd,
                    events,
                    revents: 0,
                });
                tokens.push(t);
            };
            add(self.sigfd.as_fd().as_raw_fd(), libc::POLLIN, Token::Signal);
            add(self.listener.as_raw_fd(), libc::POLLIN, Token::Listener);
            for (i, o) in self.outputs.iter().enumerate() {
                if o.open {
                    add(o.file.as_raw_fd(), libc::POLLIN, Token::Output(i));
                }
            }
            if let Some(f) = &self.stdin {
                if !self.stdin_buf.is_empty() {
                    add(f.as_raw_fd(), libc::POLLOUT, Token::Stdin);
                }
            }
            if let Some(fd) = self.health.as_ref().and_then(Health::output_fd) {
                add(fd, libc::POLLIN, Token::Probe);
            }
            let stdin_room = self.stdin_buf.len() < MAX_STDIN_BACKLOG;
            for (j, c) in self.clients.iter().enumerate() {
                let mut ev = 0;
                let wants_read = match c.kind {
                    Kind::Request => true,
                    Kind::Attach { .. } => stdin_room,
                    Kind::Wait | Kind::HealthWatch => true,
                    Kind::Done => false,
                };
                if c.read_open && wants_read {
                    ev |= libc::POLLIN;
                }
                if !c.out.is_empty() {
                    ev |= libc::POLLOUT;
                }
                add(c.sock.as_raw_fd(), ev, Token::Client(j));
            }

            let wake = match (
                self.drain_deadline,
                self.health.as_ref().and_then(Health::deadline),
            ) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let timeout = match wake {
                // Rounded up: waking before a probe's deadline would spin until it.
                Some(d) => d
                    .saturating_duration_since(Instant::now())
                    .as_micros()
                    .div_ceil(1000)
                    .min(i32::MAX as u128) as i32,
                None => -1,
            };
            // SAFETY: pollfds is a valid, exclusively borrowed array.
            let n =
                unsafe { libc::poll(pollfds.as_mut_ptr(), pollfds.len() as libc::nfds_t, timeout) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() != ErrorKind::Interrupted {
                    self.log.error(&format!("poll: {e}"));
                    std::thread::sleep(Duration::from_millis(10));
                }
                continue;
            }
            for (k, p) in pollfds.iter().enumerate() {
                let re = p.revents;
                if re == 0 {
                    continue;
                }
                match tokens[k] {
                    Token::Signal => self.on_signal(),
                    Token::Listener => self.accept(),
                    Token::Output(i) => self.read_output(i),
                    Token::Stdin => self.write_stdin(),
                    Token::Client(j) => self.on_client(j, re),
                    Token::Probe => {
                        if let Some(h) = &mut self.health {
                            h.read_output();
                        }
                    }
                }
            }
            self.clients.retain(|c| !c.dead);
        }
    }

    fn on_signal(&mut self) {
        while let Ok(Some(_)) = self.sigfd.read_signal() {}
        self.reap();
    }

    /// Reaps every exited child: the init (our child through CLONE_PARENT)
    /// and, as subreaper, re-parented orphans.
    fn reap(&mut self) {
        loop {
            let status = waitpid(None, Some(WaitPidFlag::WNOHANG));
            let probe_exit = match status {
                Ok(WaitStatus::Exited(p, code)) => Some((p, code)),
                Ok(WaitStatus::Signaled(p, sig, _)) => Some((p, 128 + sig as i32)),
                _ => None,
            };
            if let Some((p, code)) = probe_exit {
                let changed = self.health.as_mut().and_then(|h| h.on_exit(p, code));
                if let Some(changed) = changed {
                    if changed {
                        self.push_health();
                    }
                    continue;
                }
            }
            match status {
                Ok(WaitStatus::Exited(p, code)) if Some(p) == self.pid => self.on_init_exit(code),
                Ok(WaitStatus::Signaled(p, sig, _)) if Some(p) == self.pid => {
                    self.on_init_exit(128 + sig as i32)
                }
                Ok(WaitStatus::StillAlive) => break,
                Ok(_) => {}
                Err(Errno::EINTR) => {}
                Err(_) => break,
            }
        }
    }

    fn on_init_exit(&mut self, code: i32) {
        let now = Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true);
        let pid = self.pid.map_or(0, Pid::as_raw);
        self.log.info(&format!("pid {pid} exited with {code}"));
        self.exited = Some((code, now));
        self.status = Status::Exited;
        self.drain_deadline = Some(Instant::now() + DRAIN_TIMEOUT);
        if let Some(h) = &mut self.health {
            h.stop();
        }
        self.stdin = None;
        self.stdin_buf.clear();
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((sock, _)) => {
                    if sock.set_nonblocking(true).is_err() {
                        continue;
                    }
                    self.clients.push(Client {
                        sock,
                        inbuf: Vec::new(),
                        out: Vec::new(),
                        kind: Kind::Request,
                        read_open: true,
                        dead: false,
                    });
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    }

    fn read_output(&mut self, i: usize) {
        let mut buf = vec![0u8; CHUNK];
        // Bounded per wake-up so one chatty stream cannot starve the rest.
        for _ in 0..16 {
            match (&self.outputs[i].file).read(&mut buf) {
                Ok(0) => {
                    self.outputs[i].open = false;
                    return;
                }
                Ok(n) => self.dispatch_output(i, &buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                // EIO: the pty's slave side is closed for good.
                Err(_) => {
                    self.outputs[i].open = false;
                    return;
                }
            }
        }
    }

    fn dispatch_output(&mut self, i: usize, data: &[u8]) {
        let (log_stream, frame_stream) = (self.outputs[i].log_stream, self.outputs[i].frame_stream);
        if let Some(jsonlog) = &mut self.jsonlog {
            if let Err(e) = jsonlog.write(log_stream, data) {
                if !self.log_failed {
                    self.log.error(&format!("writing container log: {e}"));
                    self.log_failed = true;
                }
            }
        }
        let mut frame = Vec::new();
        for c in &mut self.clients {
            if let Kind::Attach { stdout, stderr, .. } = c.kind {
                let wanted = match frame_stream {
                    STREAM_STDOUT => stdout,
                    _ => stderr,
                };
                if !wanted || c.dead {
                    continue;
                }
                if frame.is_empty() {
                    encode_frame(frame_stream, data, &mut frame);
                }
                c.queue(&frame);
                c.flush();
            }
        }
    }

    fn write_stdin(&mut self) {
        if let Some(f) = &self.stdin {
            while !self.stdin_buf.is_empty() {
                match (&*f).write(&self.stdin_buf) {
                    Ok(n) => {
                        self.stdin_buf.drain(..n);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    // EPIPE: the container closed its stdin; discard input.
                    Err(_) => {
                        self.stdin = None;
                        self.stdin_buf.clear();
                        break;
                    }
                }
            }
        }
        if self.stdin_buf.is_empty() && self.stdin_close_pending {
            self.stdin_close_pending = false;
            // With a tty the master is also the output; stop forwarding
            // input only (as containerd does).
            self.stdin = None;
        }
    }

    fn on_client(&mut self, j: usize, revents: libc::c_short) {
        if revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0
            && self.clients[j].read_open
        {
            self.read_client(j);
        } else if revents & (libc::POLLHUP | libc::POLLERR) != 0 {
            // Both directions closed: nobody left to deliver output to.
            self.clients[j].dead = true;
        }
        if revents & libc::POLLOUT != 0 {
            self.clients[j].flush();
        }
    }

    fn read_client(&mut self, j: usize) {
        let mut buf = vec![0u8; CHUNK];
        loop {
            if self.clients[j].dead {
                return;
            }
            if matches!(self.clients[j].kind, Kind::Attach { .. })
                && self.stdin_buf.len() >= MAX_STDIN_BACKLOG
            {
                return;
            }
            match self.clients[j].sock.read(&mut buf) {
                Ok(0) => {
                    self.clients[j].read_open = false;
                    self.client_eof(j);
                    return;
                }
                Ok(n) => self.client_data(j, &buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    self.clients[j].dead = true;
                    return;
                }
            }
        }
    }

    fn client_eof(&mut self, j: usize) {
        match self.clients[j].kind {
            // Closed before sending a whole request.
            Kind::Request => self.clients[j].dead = true,
            // dockerd closes a container's stdin when an attach ends only without a TTY; a
            // terminal session survives its client (that is what detaching relies on).
            Kind::Attach { stdin: true, .. } if self.stdin_once && self.pty.is_none() => {
                self.stdin_close_pending = true;
                self.write_stdin();
            }
            _ => {}
        }
    }

    fn client_data(&mut self, j: usize, data: &[u8]) {
        match self.clients[j].kind {
            Kind::Request => {
                let c = &mut self.clients[j];
                c.inbuf.extend_from_slice(data);
                let Some(nl) = c.inbuf.iter().position(|b| *b == b'\n') else {
                    if c.inbuf.len() > MAX_REQUEST_LEN {
                        c.kind = Kind::Done;
                        c.queue_json(&ErrorReply {
                            error: "request line too long".into(),
                        });
                        c.flush();
                    }
                    return;
                };
                let rest = c.inbuf.split_off(nl + 1);
                let line = std::mem::take(&mut c.inbuf);
                self.handle_request(j, &line[..nl]);
                if !rest.is_empty() {
                    self.client_data(j, &rest);
                }
            }
            Kind::Attach { stdin: true, .. }
                if self.stdin.is_some() && !self.stdin_close_pending =>
            {
                self.stdin_buf.extend_from_slice(data);
                self.write_stdin();
            }
            // Input from other clients is ignored.
            _ => {}
        }
    }

    fn handle_request(&mut self, j: usize, line: &[u8]) {
        let req: Request = match serde_json::from_slice(line) {
            Ok(r) => r,
            Err(e) => {
                self.reply_once(
                    j,
                    &ErrorReply {
                        error: format!("bad request: {e}"),
                    },
                );
                return;
            }
        };
        match req {
            Request::Attach {
                stdin,
                stdout,
                stderr,
            } => {
                let c = &mut self.clients[j];
                c.kind = Kind::Attach {
                    stdin,
                    stdout,
                    stderr,
                };
                c.queue_json(&OkReply { ok: true });
                c.flush();
            }
            Request::Start => {
                let r = self.start();
                self.reply_result(j, r);
            }
            Request::Kill { signal } => {
                let r = self.kill(signal);
                self.reply_result(j, r);
            }
            Request::Resize { height, width } => {
                let r = match &self.pty {
                    Some(p) => set_winsize(p.as_fd(), height, width).map_err(|e| e.to_string()),
                    None => Ok(()),
                };
                self.reply_result(j, r);
            }
            Request::State => {
                let st = StateReply {
                    pid: self.pid.map_or(0, Pid::as_raw),
                    status: self.status,
                };
                self.reply_once(j, &st);
            }
            Request::Wait => self.clients[j].kind = Kind::Wait,
            Request::Health | Request::HealthWatch => {
                let watch = matches!(req, Request::HealthWatch);
                match self.health.as_ref().map(|h| h.state().clone()) {
                    None => self.reply_once(
                        j,
                        &ErrorReply {
                            error: "container has no healthcheck".into(),
                        },
                    ),
                    Some(st) if watch => {
                        let c = &mut self.clients[j];
                        c.kind = Kind::HealthWatch;
                        c.queue_json(&st);
                        c.flush();
                    }
                    Some(st) => self.reply_once(j, &st),
                }
            }
        }
    }

    /// Tells the health watchers (the daemon) about a status change.
    fn push_health(&mut self) {
        let Some(st) = self.health.as_ref().map(|h| h.state().clone()) else {
            return;
        };
        for c in &mut self.clients {
            if c.kind == Kind::HealthWatch && !c.dead {
                c.queue_json(&st);
                c.flush();
            }
        }
    }

    fn reply_once<T: serde::Serialize>(&mut self, j: usize, v: &T) {
        let c = &mut self.clients[j];
        c.kind = Kind::Done;
        c.queue_json(v);
        c.flush();
    }

    fn reply_result(&mut self, j: usize, r: Result<(), String>) {
        match r {
            Ok(()) => self.reply_once(j, &OkReply { ok: true }),
            Err(error) => self.reply_once(j, &ErrorReply { error }),
        }
    }

    fn start(&mut self) -> Result<(), String> {
        match self.status {
            Status::Created => {}
            Status::Running => return Err("container is already running".into()),
            Status::Exited => return Err("container has exited".into()),
        }
        let started = self.workload.start();
        self.status = Status::Running;
        match started {
            Ok(pid) => {
                self.pid = Some(pid);
                if let Some(h) = &mut self.health {
                    h.on_container_started(Instant::now(), pid);
                }
                Ok(())
            }
            Err((pid, msg)) => {
                self.log.error(&format!("starting: {msg}"));
                self.pid = pid;
                if pid.is_none() {
                    // Nothing to reap: finish now with dockerd's code for a
                    // start that failed.
                    self.on_init_exit(128);
                } else {
                    // The child may have been reaped by nobody yet.
                    self.reap();
                }
                Err(msg)
            }
        }
    }

    fn kill(&mut self, signal: i32) -> Result<(), String> {
        let sig = Signal::try_from(signal).map_err(|_| format!("invalid signal {signal}"))?;
        if self.exited.is_some() {
            return Ok(());
        }
        let Some(pid) = self.pid else {
            // Nothing spawned yet (an exec never started): the kill ends
            // the monitor, or it would wait forever for a `start`.
            self.on_init_exit(128 + signal);
            return Ok(());
        };
        match kill(pid, sig) {
            Ok(()) | Err(Errno::ESRCH) => Ok(()),
            Err(e) => Err(format!("kill: {e}")),
        }
    }

    /// Exit handling, in an order that keeps every promise: the log is
    /// complete and the OOM state read before the cgroup goes, the
    /// container is deleted before anyone hears it exited.
    fn finalize(mut self) -> i32 {
        if let Some(jsonlog) = &mut self.jsonlog {
            if let Err(e) = jsonlog.flush_partial() {
                self.log.error(&format!("flushing container log: {e}"));
            }
        }
        let (exit_code, finished_at) = self.exited.take().unwrap_or((-1, String::new()));
        // Our pipe ends are no longer needed; close them before teardown.
        self.outputs.clear();
        self.stdin = None;
        self.pty = None;
        let oom = self.workload.teardown(&self.log);
        let st = ExitStatus {
            exit_code,
            oom_killed: oom,
            finished_at,
        };
        if let Some(dir) = self.socket_path.parent() {
            if let Err(e) = write_exit_file(dir, &st) {
                self.log.error(&format!("writing exit.json: {e}"));
            }
        }
        let _ = std::fs::remove_file(&self.socket_path);
        let health = self.health.as_ref().map(|h| h.state().clone());
        for c in &mut self.clients {
            if c.kind == Kind::Wait {
                c.queue_json(&st);
            }
            // The final log and streak, so a stopped container shows its last results.
            if let (Kind::HealthWatch, Some(h)) = (c.kind, &health) {
                c.queue_json(h);
            }
            if c.dead || c.out.is_empty() {
                continue;
            }
            // Last output to attachers, bounded so a stuck peer cannot
            // keep the shim (and the container's cleanup) alive.
            if c.sock.set_nonblocking(false).is_ok()
                && c.sock.set_write_timeout(Some(FINAL_FLUSH_TIMEOUT)).is_ok()
            {
                let _ = c.sock.write_all(&c.out);
            }
        }
        for c in &self.clients {
            let _ = c.sock.shutdown(std::net::Shutdown::Both);
        }
        self.log.info(&format!(
            "{} exited with {} (oom_killed={})",
            self.name, st.exit_code, st.oom_killed
        ));
        0
    }
}

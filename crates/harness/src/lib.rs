//! Test harness: a real `berth daemon` on a temporary socket, data root and exec root, driven
//! through our CLI and the real docker CLI. Dropping it removes every container, mount, shim
//! and cgroup the daemon made, even when the test failed half-way.

use anyhow::{bail, Context, Result};
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub mod registry;

pub use berth_network::netns::run_in as run_in_netns;

pub const DOCKER: &str = "/usr/local/bin/docker";

pub struct TestDaemon {
    pub berth_bin: PathBuf,
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    /// The daemon's own network namespace (pinned here): its bridges, veths and nftables
    /// rules never touch the machine's network, and they vanish with the namespace.
    pub netns: PathBuf,
    /// Extra `berth daemon` flags, kept across restarts.
    pub daemon_args: Vec<String>,
    child: Option<Child>,
}

/// The busybox image tarball, built once per test process from Debian's busybox-static.
pub fn busybox_tar() -> &'static Path {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("berth-fixture-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let out = dir.join("busybox.tar");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/busybox-image.sh");
        let st = Command::new("bash")
            .arg(script)
            .arg(&out)
            .status()
            .expect("run busybox-image.sh");
        assert!(st.success(), "building the busybox fixture failed");
        out
    })
}

impl TestDaemon {
    /// A daemon with the busybox fixture imported as `busybox:latest`.
    pub fn with_busybox(berth_bin: &str) -> Result<Self> {
        let d = Self::start(berth_bin)?;
        d.import_busybox()?;
        Ok(d)
    }

    /// `docker inspect --format FMT NAME`, trimmed; panics (failing the test) on error.
    pub fn inspect(&self, name: &str, fmt: &str) -> String {
        ok(&mut self.docker(&["inspect", "--format", fmt, name]))
            .trim()
            .to_string()
    }

    pub fn start(berth_bin: &str) -> Result<Self> {
        Self::start_nested(berth_bin, "")
    }

    /// A daemon started with extra flags, the busybox fixture imported.
    pub fn with_busybox_args(berth_bin: &str, args: &[&str]) -> Result<Self> {
        let d = Self::start_with(berth_bin, "", args)?;
        d.import_busybox()?;
        Ok(d)
    }

    /// Like `start`, with the data and exec roots under `nest` inside the temp dir: a long
    /// `nest` checks that deep paths (past the UNIX socket path limit) work.
    pub fn start_nested(berth_bin: &str, nest: &str) -> Result<Self> {
        Self::start_with(berth_bin, nest, &[])
    }

    fn start_with(berth_bin: &str, nest: &str, args: &[&str]) -> Result<Self> {
        let dir = tempfile::Builder::new().prefix("berth-test-").tempdir()?;
        let socket = dir.path().join("berth.sock");
        let roots = dir.path().join(nest);
        let netns = dir.path().join("daemon.netns");
        berth_network::netns::create(&netns)?;
        let mut d = TestDaemon {
            berth_bin: PathBuf::from(berth_bin),
            data_root: roots.join("data"),
            exec_root: roots.join("run"),
            socket,
            netns,
            dir,
            daemon_args: args.iter().map(|a| a.to_string()).collect(),
            child: None,
        };
        d.spawn()?;
        Ok(d)
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    fn spawn(&mut self) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("daemon.log"))?;
        let ns = std::fs::File::open(&self.netns).context("open the daemon's netns")?;
        let mut cmd = Command::new(&self.berth_bin);
        // SAFETY: setns is async-signal-safe; the fd stays open in the parent until spawn returns.
        unsafe {
            use std::os::fd::AsRawFd;
            use std::os::unix::process::CommandExt;
            let fd = ns.as_raw_fd();
            cmd.pre_exec(move || {
                if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd
            .args(["daemon", "-H", &self.host(), "--log-level", "debug"])
            .arg("--data-root")
            .arg(&self.data_root)
            .arg("--exec-root")
            .arg(&self.exec_root)
            .args(&self.daemon_args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("spawn berth daemon")?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if self.ping() {
                return Ok(());
            }
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    bail!("daemon exited early ({st}):\n{}", self.daemon_log());
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!("daemon did not answer:\n{}", self.daemon_log())
    }

    pub fn ping(&self) -> bool {
        let Ok(mut s) = UnixStream::connect(&self.socket) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        if s.write_all(b"GET /_ping HTTP/1.0\r\n\r\n").is_err() {
            return false;
        }
        let mut buf = [0u8; 64];
        matches!(std::io::Read::read(&mut s, &mut buf), Ok(n) if n > 12 && buf[..n].starts_with(b"HTTP/1."))
    }

    pub fn daemon_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL, as a crash: shims and containers must survive it.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, and wait for a clean exit.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut c = self.child.take()?;
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(c.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = c.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        c.wait().ok()
    }

    pub fn restart(&mut self) -> Result<()> {
        self.spawn()
    }

    /// The real docker CLI (`which` = "docker") or ours, for tests that run the same steps
    /// through both.
    pub fn cli<'a>(&'a self, which: &'a str) -> impl Fn(&[&str]) -> Command + 'a {
        move |args: &[&str]| {
            if which == "docker" {
                self.docker(args)
            } else {
                self.berth(args)
            }
        }
    }

    /// Our CLI, pointed at this daemon.
    pub fn berth(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.berth_bin);
        c.env("DOCKER_HOST", self.host()).args(args);
        c
    }

    /// The real docker CLI, pointed at this daemon, with its own empty config.
    pub fn docker(&self, args: &[&str]) -> Command {
        let cfg = self.dir.path().join("docker-config");
        let _ = std::fs::create_dir_all(&cfg);
        let mut c = Command::new(DOCKER);
        c.env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", cfg)
            .env("DOCKER_CLI_HINTS", "false")
            .env_remove("DOCKER_CONTEXT")
            .args(args);
        c
    }

    /// Imports the busybox fixture as `busybox:latest` through the real docker CLI.
    pub fn import_busybox(&self) -> Result<String> {
        let out = self
            .docker(&["import", &busybox_tar().to_string_lossy(), "busybox:latest"])
            .output()?;
        if !out.status.success() {
            bail!(
                "docker import failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    fn cleanup(&mut self) {
        if self.child.is_some() && self.ping() {
            if let Ok(out) = self.docker(&["ps", "-aq", "--no-trunc"]).output() {
                let ids = String::from_utf8_lossy(&out.stdout).to_string();
                let ids: Vec<&str> = ids.split_whitespace().collect();
                if !ids.is_empty() {
                    let mut args = vec!["rm", "-f"];
                    args.extend(ids);
                    let _ = self.docker(&args).output();
                }
            }
        }
        self.stop();
        reap_leftovers(self.dir.path(), &self.exec_root);
        let _ = berth_network::netns::remove(&self.netns);
    }

    /// A command run inside the daemon's network namespace (the "host" of its containers).
    pub fn in_host_netns(&self, args: &[&str]) -> Command {
        in_netns(&self.netns, args)
    }

    /// Another namespace joined to the daemon's by a veth pair: a machine on the daemon
    /// host's network. The daemon's side is `10.250.0.1/30`, the outside's `10.250.0.2/30`.
    pub fn outside(&self) -> Result<Outside> {
        let pin = self
            .dir
            .path()
            .join(format!("outside-{}.netns", rand_suffix()));
        berth_network::netns::create(&pin)?;
        let host = |a: &[&str]| run_ok(self.in_host_netns(a));
        let o = Outside { netns: pin.clone() };
        let pin_s = pin.to_string_lossy().into_owned();
        host(&[
            "ip", "link", "add", "up0", "type", "veth", "peer", "name", "up1",
        ])?;
        host(&["ip", "link", "set", "up1", "netns", &pin_s])?;
        host(&["ip", "addr", "add", "10.250.0.1/30", "dev", "up0"])?;
        host(&["ip", "link", "set", "up0", "up"])?;
        run_ok(o.run(&["ip", "addr", "add", "10.250.0.2/30", "dev", "up1"]))?;
        run_ok(o.run(&["ip", "link", "set", "up1", "up"]))?;
        Ok(o)
    }
}

/// The daemon host's address as the outside namespace sees it.
pub const HOST_UPLINK_IP: &str = "10.250.0.1";
pub const OUTSIDE_IP: &str = "10.250.0.2";

/// See [`TestDaemon::outside`]; dropping it removes the namespace and its veth.
pub struct Outside {
    pub netns: PathBuf,
}

impl Outside {
    pub fn run(&self, args: &[&str]) -> Command {
        in_netns(&self.netns, args)
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        let _ = berth_network::netns::remove(&self.netns);
    }
}

fn rand_suffix() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    )
}

pub fn in_netns(pin: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("nsenter");
    c.arg(format!("--net={}", pin.display()))
        .arg("--")
        .args(args);
    c
}

fn run_ok(mut c: Command) -> Result<String> {
    let out = c.output()?;
    if !out.status.success() {
        bail!("{c:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// Last resort after a failed test: kill shims and container processes started under `root`,
/// unmount what is mounted under it, and remove their cgroups.
pub fn reap_leftovers(root: &Path, exec_root: &Path) {
    let root_s = root.to_string_lossy().into_owned();
    let shims = exec_root.join("shims");
    let ids: Vec<String> = std::fs::read_dir(&shims)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    if let Ok(procs) = std::fs::read_dir("/proc") {
        for p in procs.flatten() {
            let Ok(pid) = p.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmd = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
            let cg = std::fs::read_to_string(p.path().join("cgroup")).unwrap_or_default();
            let ours = String::from_utf8_lossy(&cmd).contains(&root_s)
                || ids.iter().any(|id| cg.contains(&format!("/berth/{id}")));
            if ours && pid != std::process::id() as i32 {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
    std::thread::sleep(Duration::from_millis(50));
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let mut targets: Vec<&str> = mounts
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter(|t| t.starts_with(&root_s))
        .collect();
    targets.sort_by_key(|t| std::cmp::Reverse(t.len()));
    for t in targets {
        let _ = nix::mount::umount2(t, nix::mount::MntFlags::MNT_DETACH);
    }
    for id in &ids {
        if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
            for c in rd.flatten() {
                let _ = std::fs::remove_dir(c.path().join("berth").join(id));
            }
        }
    }
}

/// The stderr of a command that must fail (panics if it succeeded).
/// Runs `cmd` with `input` on its standard input; its output captured.
pub fn with_stdin(cmd: &mut Command, input: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input).expect("write stdin");
    }
    child.wait_with_output().expect("wait")
}

pub fn fails(cmd: &mut Command) -> String {
    let o = output(cmd);
    assert!(!o.status.success(), "{cmd:?} should have failed");
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Output as text, with the command's stderr in the panic message when it failed.
pub fn ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("spawn command");
    assert!(
        out.status.success(),
        "{:?} failed ({}):\nstdout: {}\nstderr: {}",
        cmd,
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn output(cmd: &mut Command) -> Output {
    cmd.output().expect("spawn command")
}

/// A raw HTTP/1.0 exchange on the daemon's socket: (status, head, body).
pub fn http(
    socket: &Path,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
) -> Result<(u16, String, Vec<u8>)> {
    let mut s = UnixStream::connect(socket)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let body = body.unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.0\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    let mut resp = Vec::new();
    std::io::Read::read_to_end(&mut s, &mut resp)?;
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no end of headers")?;
    let head = String::from_utf8_lossy(&resp[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no status")?;
    let mut payload = resp[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        payload = dechunk(&payload);
    }
    Ok((status, head, payload))
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(pos) = b.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&b[..pos]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = pos + 2;
        out.extend_from_slice(&b[start..(start + size).min(b.len())]);
        b = &b[(start + size + 2).min(b.len())..];
    }
    out
}

/// A CLI running on a fresh pty as its controlling terminal, as a user at a shell runs it.
pub struct PtySession {
    pub child: std::process::Child,
    pub master: std::fs::File,
    /// Everything read from the terminal so far.
    pub seen: Vec<u8>,
}

impl PtySession {
    pub fn spawn(mut cmd: Command, size: Option<nix::pty::Winsize>) -> Result<Self> {
        use std::os::fd::AsRawFd;
        use std::os::unix::process::CommandExt;
        let pty = nix::pty::openpty(size.as_ref(), None)?;
        let slave = std::fs::File::from(pty.slave);
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                nix::unistd::setsid().map_err(std::io::Error::from)?;
                if libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd
            .stdin(Stdio::from(slave.try_clone()?))
            .stdout(Stdio::from(slave.try_clone()?))
            .stderr(Stdio::from(slave))
            .spawn()?;
        let master = std::fs::File::from(pty.master);
        // SAFETY: fcntl on a descriptor we own.
        unsafe {
            let fd = master.as_raw_fd();
            let flags = libc::fcntl(fd, libc::F_GETFL);
            libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
        }
        Ok(PtySession {
            child,
            master,
            seen: Vec::new(),
        })
    }

    /// Reads until `needle` has appeared in the output (true) or 15 s passed (false).
    pub fn read_until(&mut self, needle: &str) -> bool {
        use std::io::Read;
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            let mut buf = [0u8; 4096];
            match self.master.read(&mut buf) {
                Ok(n) if n > 0 => self.seen.extend_from_slice(&buf[..n]),
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
            if String::from_utf8_lossy(&self.seen).contains(needle) {
                return true;
            }
        }
        false
    }

    /// Waits (15 s at most) for the CLI to exit, reading its output meanwhile; None if it
    /// did not.
    pub fn wait_exit(&mut self) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let done = self.child.try_wait().ok().flatten();
            self.read_available();
            if done.is_some() || Instant::now() >= deadline {
                return done;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn read_available(&mut self) {
        use std::io::Read;
        let mut buf = [0u8; 4096];
        while let Ok(n) = self.master.read(&mut buf) {
            if n == 0 {
                break;
            }
            self.seen.extend_from_slice(&buf[..n]);
        }
    }

    pub fn type_in(&mut self, keys: &[u8]) {
        let _ = self.master.write_all(keys);
    }

    pub fn seen_text(&self) -> String {
        String::from_utf8_lossy(&self.seen).into_owned()
    }
}

/// Dockerfile builds in tests: the fixtures under crates/berth/tests/fixtures/build/ and
/// `DOCKER_BUILDKIT=0 docker build` against a test daemon.
pub mod build {
    use super::{ok, output, TestDaemon};
    use std::path::{Path, PathBuf};
    use std::process::Command;

    /// A fixture's directory (read-only: copy it with `context` to change files).
    pub fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../berth/tests/fixtures/build")
            .join(name)
    }

    /// A private copy of a fixture's context.
    pub fn context(name: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let st = Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", fixture(name).display()))
            .arg(dir.path())
            .status()
            .expect("cp");
        assert!(st.success(), "copying fixture {name}");
        dir
    }

    /// The progress stream with IDs (12 hex digits) masked, from the first step on.
    pub fn masked(out: &str) -> String {
        let from = out.find("Step 1/").unwrap_or(0);
        let mut res = String::new();
        for line in out[from..].lines() {
            let words: Vec<String> = line
                .split(' ')
                .map(|w| {
                    if w.len() == 12 && w.bytes().all(|b| b.is_ascii_hexdigit()) {
                        "<id>".to_string()
                    } else {
                        w.to_string()
                    }
                })
                .collect();
            res.push_str(&words.join(" "));
            res.push('\n');
        }
        res
    }

    impl TestDaemon {
        /// `DOCKER_BUILDKIT=0 docker build ARGS CTX`: the exit code and stdout+stderr.
        pub fn legacy_build(&self, ctx: &Path, args: &[&str]) -> (Option<i32>, String) {
            let ctx = ctx.to_string_lossy().into_owned();
            let mut all = vec!["build"];
            all.extend_from_slice(args);
            all.push(&ctx);
            let mut cmd = self.docker(&all);
            cmd.env("DOCKER_BUILDKIT", "0");
            let o = output(&mut cmd);
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            (o.status.code(), text)
        }

        /// `docker run --rm ARGS`, its stdout (panics on failure).
        pub fn run_rm(&self, args: &[&str]) -> String {
            let mut all = vec!["run", "--rm"];
            all.extend_from_slice(args);
            ok(&mut self.docker(&all))
        }
    }
}

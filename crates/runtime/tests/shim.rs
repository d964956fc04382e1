//! Runs real busybox containers through the shim (`berth-shim-dev`).
//! Needs root; skipped otherwise.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::symlink;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use berth_runtime::protocol::{
    decode_frame_header, request_line, LaunchReply, Reply, Request, StateReply, Status,
};
use berth_runtime::shim::ShimConfig;
use berth_runtime::spec::{generate, Resources, SpecOptions};
use berth_runtime::{read_exit_file, ExitStatus};

const APPLETS: &[&str] = &[
    "sh", "echo", "cat", "sleep", "dd", "true", "id", "ls", "stty", "env", "head", "tail", "grep",
    "touch", "hostname", "mount", "mkdir", "stat", "df",
];

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

struct Fixture {
    id: String,
    _dir: tempfile::TempDir,
    rootfs: PathBuf,
    state_dir: PathBuf,
    runtime_root: PathBuf,
    log_path: PathBuf,
}

#[derive(Default)]
struct Opts {
    tty: bool,
    open_stdin: bool,
    stdin_once: bool,
    resources: Resources,
    user: &'static str,
    privileged: bool,
    readonly_rootfs: bool,
    mounts: Vec<oci_spec::runtime::Mount>,
}

fn build_rootfs(root: &Path) {
    for d in ["bin", "etc", "proc", "sys", "dev", "tmp", "root"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    for a in APPLETS {
        // Absolute links, as `busybox --install -s` makes them.
        symlink("/bin/busybox", root.join("bin").join(a)).unwrap();
    }
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/tmp:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(
        root.join("etc/group"),
        "root:x:0:\nalice:x:1000:\nstaff:x:50:alice\n",
    )
    .unwrap();
}

impl Fixture {
    fn new(name: &str, args: &[&str], o: Opts) -> Fixture {
        let id = format!("rt-{name}-{}", std::process::id());
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("rootfs");
        build_rootfs(&rootfs);
        let bundle = dir.path().join("bundle");
        let state_dir = dir.path().join("state");
        let runtime_root = dir.path().join("runtime");
        std::fs::create_dir_all(&bundle).unwrap();
        std::fs::create_dir_all(&state_dir).unwrap();

        let user = berth_runtime::resolve_user(&rootfs, o.user).unwrap();
        berth_runtime::exec_check::check_executable(&rootfs, args[0], None, "/").unwrap();
        let spec = generate(&SpecOptions {
            id: id.clone(),
            args: args.iter().map(|s| s.to_string()).collect(),
            env: vec!["HOME=/root".into()],
            user,
            hostname: id.chars().take(12).collect(),
            tty: o.tty,
            rootfs: rootfs.clone(),
            cgroups_path: format!("/berth/{id}"),
            resources: o.resources,
            privileged: o.privileged,
            readonly_rootfs: o.readonly_rootfs,
            extra_mounts: o.mounts,
            ..Default::default()
        })
        .unwrap();
        spec.save(bundle.join("config.json")).unwrap();

        let log_path = state_dir.join("container.log");
        let cfg = ShimConfig {
            id: id.clone(),
            bundle,
            state_dir: state_dir.clone(),
            runtime_root: runtime_root.clone(),
            log_path: log_path.clone(),
            log_max_size: 0,
            log_max_files: 1,
            tty: o.tty,
            open_stdin: o.open_stdin,
            stdin_once: o.stdin_once,
            healthcheck: None,
        };
        std::fs::write(
            state_dir.join("shim.json"),
            serde_json::to_vec(&cfg).unwrap(),
        )
        .unwrap();
        Fixture {
            id,
            _dir: dir,
            rootfs,
            state_dir,
            runtime_root,
            log_path,
        }
    }

    /// The shim's launch reply.
    fn try_launch(&self) -> Result<LaunchReply, String> {
        let out = Command::new(env!("CARGO_BIN_EXE_berth-shim-dev"))
            .arg("shim")
            .arg(&self.state_dir)
            .output()
            .unwrap();
        let line = String::from_utf8_lossy(&out.stdout).to_string();
        let reply = serde_json::from_str::<LaunchReply>(line.trim())
            .map_err(|e| format!("{e}: {line:?}"))?;
        if matches!(reply, LaunchReply::Started { .. }) {
            assert!(out.status.success());
        }
        Ok(reply)
    }

    fn launch(&self) -> i32 {
        match self.try_launch() {
            Ok(LaunchReply::Started { pid }) => pid,
            other => {
                let shim_log =
                    std::fs::read_to_string(self.state_dir.join("shim.log")).unwrap_or_default();
                panic!("launch failed: {other:?}\nshim.log:\n{shim_log}")
            }
        }
    }

    fn connect(&self) -> UnixStream {
        let s = UnixStream::connect(self.state_dir.join("shim.sock")).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s
    }

    fn request(&self, r: &Request) -> Reply {
        let mut s = self.connect();
        s.write_all(request_line(r).as_bytes()).unwrap();
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
    }

    fn start(&self) {
        assert_eq!(
            self.request(&Request::Start),
            Reply::Ok(berth_runtime::protocol::OkReply { ok: true })
        );
    }

    fn attach(&self, stdin: bool, stdout: bool, stderr: bool) -> UnixStream {
        let mut s = self.connect();
        s.write_all(
            request_line(&Request::Attach {
                stdin,
                stdout,
                stderr,
            })
            .as_bytes(),
        )
        .unwrap();
        // Read the reply line byte by byte: frames follow directly.
        let mut line = Vec::new();
        let mut b = [0u8; 1];
        while b[0] != b'\n' {
            s.read_exact(&mut b).unwrap();
            line.push(b[0]);
        }
        assert_eq!(String::from_utf8_lossy(&line).trim(), r#"{"ok":true}"#);
        s
    }

    /// Waits for the exit through the socket, or exit.json if the shim is
    /// already gone.
    fn wait(&self) -> ExitStatus {
        if let Ok(mut s) = UnixStream::connect(self.state_dir.join("shim.sock")) {
            s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            if s.write_all(request_line(&Request::Wait).as_bytes()).is_ok() {
                let mut line = String::new();
                if BufReader::new(s).read_line(&mut line).is_ok() && !line.is_empty() {
                    return serde_json::from_str(&line).unwrap();
                }
            }
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(st) = read_exit_file(&self.state_dir) {
                return st;
            }
            assert!(Instant::now() < deadline, "no exit.json");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log_entries(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.log_path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn assert_cleaned_up(&self) {
        assert!(
            !self.runtime_root.join(&self.id).exists(),
            "libcontainer state left"
        );
        for ctrl in ["memory", "pids", "cpu", "devices", "freezer", "unified", ""] {
            let p = Path::new("/sys/fs/cgroup")
                .join(ctrl)
                .join("berth")
                .join(&self.id);
            assert!(!p.exists(), "cgroup left: {}", p.display());
        }
        // The socket goes last, right before the shim exits.
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.state_dir.join("shim.sock").exists() {
            assert!(Instant::now() < deadline, "shim.sock left");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // On failure: make sure no container outlives the test.
        if self.state_dir.join("shim.sock").exists() {
            if let Ok(mut s) = UnixStream::connect(self.state_dir.join("shim.sock")) {
                let _ = s.write_all(request_line(&Request::Kill { signal: 9 }).as_bytes());
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            while self.state_dir.join("shim.sock").exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// Reads frames until EOF: (stdout, stderr).
fn read_frames(s: &mut UnixStream) -> (Vec<u8>, Vec<u8>) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    loop {
        let mut h = [0u8; 8];
        match s.read_exact(&mut h) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => panic!("reading frames: {e}"),
        }
        let (stream, len) = decode_frame_header(&h);
        let mut payload = vec![0u8; len as usize];
        s.read_exact(&mut payload).unwrap();
        match stream {
            1 => out.extend(payload),
            2 => err.extend(payload),
            other => panic!("bad stream {other}"),
        }
    }
    (out, err)
}

macro_rules! require_root {
    () => {
        if !is_root() {
            eprintln!("skipping: needs root");
            return;
        }
    };
}

#[test]
fn echo_via_attach_and_log() {
    require_root!();
    let f = Fixture::new(
        "echo",
        &["sh", "-c", "echo hello; echo oops >&2; printf partial"],
        Opts::default(),
    );
    f.launch();
    match f.request(&Request::State) {
        Reply::State(StateReply { status, .. }) => assert_eq!(status, Status::Created),
        r => panic!("{r:?}"),
    }
    let mut a1 = f.attach(false, true, true);
    let mut a2 = f.attach(false, true, false);
    f.start();
    let (out, err) = read_frames(&mut a1);
    assert_eq!(String::from_utf8_lossy(&out), "hello\npartial");
    assert_eq!(String::from_utf8_lossy(&err), "oops\n");
    let (out2, err2) = read_frames(&mut a2);
    assert_eq!(out2, out);
    assert!(err2.is_empty());
    let st = f.wait();
    assert_eq!(st.exit_code, 0);
    assert!(!st.oom_killed);
    assert!(st.finished_at.ends_with('Z'));
    assert_eq!(read_exit_file(&f.state_dir), Some(st));

    let logs = f.log_entries();
    let lines: Vec<(String, String)> = logs
        .iter()
        .map(|e| {
            (
                e["log"].as_str().unwrap().to_string(),
                e["stream"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        lines.contains(&("hello\n".into(), "stdout".into())),
        "{lines:?}"
    );
    assert!(
        lines.contains(&("oops\n".into(), "stderr".into())),
        "{lines:?}"
    );
    assert!(
        lines.contains(&("partial".into(), "stdout".into())),
        "{lines:?}"
    );
    f.assert_cleaned_up();
}

#[test]
fn exit_code_is_reported() {
    require_root!();
    let f = Fixture::new("exit3", &["sh", "-c", "exit 3"], Opts::default());
    f.launch();
    f.start();
    assert_eq!(f.wait().exit_code, 3);
    f.assert_cleaned_up();
}

#[test]
fn kill_9_gives_137() {
    require_root!();
    let f = Fixture::new("kill", &["sleep", "100"], Opts::default());
    let pid = f.launch();
    let mut waiter = f.connect();
    waiter
        .write_all(request_line(&Request::Wait).as_bytes())
        .unwrap();
    f.start();
    match f.request(&Request::State) {
        Reply::State(s) => {
            assert_eq!(s.status, Status::Running);
            assert_eq!(s.pid, pid);
        }
        r => panic!("{r:?}"),
    }
    f.request(&Request::Kill { signal: 9 });
    let mut line = String::new();
    BufReader::new(waiter).read_line(&mut line).unwrap();
    let st: ExitStatus = serde_json::from_str(&line).unwrap();
    assert_eq!(st.exit_code, 137);
    assert!(!st.oom_killed);
    f.assert_cleaned_up();
}

#[test]
fn kill_before_start_cleans_up() {
    require_root!();
    let f = Fixture::new("nostart", &["sleep", "100"], Opts::default());
    f.launch();
    f.request(&Request::Kill { signal: 9 });
    assert_eq!(f.wait().exit_code, 137);
    f.assert_cleaned_up();
}

#[test]
fn stdin_to_cat_with_half_close() {
    require_root!();
    let f = Fixture::new(
        "stdin",
        &["cat"],
        Opts {
            open_stdin: true,
            stdin_once: true,
            ..Default::default()
        },
    );
    f.launch();
    let mut a = f.attach(true, true, true);
    f.start();
    a.write_all(b"abc\nline two\n").unwrap();
    a.shutdown(std::net::Shutdown::Write).unwrap();
    let (out, _) = read_frames(&mut a);
    assert_eq!(String::from_utf8_lossy(&out), "abc\nline two\n");
    assert_eq!(f.wait().exit_code, 0);
    f.assert_cleaned_up();
}

#[test]
fn tty_mode() {
    require_root!();
    let f = Fixture::new(
        "tty",
        &[
            "sh",
            "-c",
            "stty size; echo tty-ok; [ -t 0 ] && echo is-a-tty",
        ],
        Opts {
            tty: true,
            ..Default::default()
        },
    );
    f.launch();
    assert_eq!(
        f.request(&Request::Resize {
            height: 33,
            width: 101
        }),
        Reply::Ok(berth_runtime::protocol::OkReply { ok: true })
    );
    let mut a = f.attach(false, true, true);
    f.start();
    let (out, err) = read_frames(&mut a);
    let out = String::from_utf8_lossy(&out);
    assert!(err.is_empty());
    // The pty turns \n into \r\n.
    assert!(out.contains("33 101\r\n"), "{out:?}");
    assert!(out.contains("tty-ok\r\n"), "{out:?}");
    assert!(out.contains("is-a-tty"), "{out:?}");
    assert_eq!(f.wait().exit_code, 0);
    assert!(f.log_entries().iter().all(|e| e["stream"] == "stdout"));
    f.assert_cleaned_up();
}

#[test]
fn oom_kill_is_detected() {
    require_root!();
    let v1 = Path::new("/sys/fs/cgroup/memory/memory.oom_control").exists();
    let v2 = std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
        .map(|c| c.split_whitespace().any(|x| x == "memory"))
        .unwrap_or(false);
    if !v1 && !v2 {
        eprintln!("skipping: no memory cgroup controller");
        return;
    }
    let f = Fixture::new(
        "oom",
        &["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"],
        Opts {
            resources: Resources {
                memory: Some(8 << 20),
                memory_swap: Some(8 << 20),
                ..Default::default()
            },
            ..Default::default()
        },
    );
    f.launch();
    f.start();
    let st = f.wait();
    assert!(st.oom_killed, "{st:?}");
    assert_eq!(st.exit_code, 137);
    f.assert_cleaned_up();
}

/// Runs to completion and returns (stdout, stderr, exit code).
fn run(f: &Fixture) -> (String, String, i32) {
    run_created(f, || {})
}

/// As [`run`], calling `created` between create and start.
fn run_created(f: &Fixture, created: impl FnOnce()) -> (String, String, i32) {
    f.launch();
    created();
    let mut a = f.attach(false, true, true);
    f.start();
    let (out, err) = read_frames(&mut a);
    let code = f.wait().exit_code;
    f.assert_cleaned_up();
    (
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
        code,
    )
}

#[test]
fn docker_default_confinement() {
    require_root!();
    let f = Fixture::new(
        "confine",
        &[
            "sh",
            "-c",
            "id; grep -E '^(CapEff|CapInh|Seccomp):' /proc/self/status; \
             hostname; cat /proc/kcore | head -c 1 | grep -c . ; \
             touch /proc/sysrq-trigger 2>/dev/null && echo rw-sysrq; true",
        ],
        Opts {
            user: "alice",
            ..Default::default()
        },
    );
    let (out, err, code) = run(&f);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("uid=1000(alice) gid=1000(alice) groups=50(staff)"),
        "{out}"
    );
    // alice has no capabilities left after the uid change.
    assert!(out.contains("CapEff:\t0000000000000000"), "{out}");
    assert!(out.contains("Seccomp:\t2"), "{out}");
    assert!(out.contains(&f.id[..12]), "{out}");
    assert!(!out.contains("rw-sysrq"), "{out}");

    let f = Fixture::new(
        "rootcaps",
        &[
            "sh",
            "-c",
            "grep -E '^CapEff:' /proc/self/status; touch /x 2>&1 || echo ro-ok",
        ],
        Opts {
            readonly_rootfs: true,
            ..Default::default()
        },
    );
    let (out, _, code) = run(&f);
    assert_eq!(code, 0);
    // Docker's default capability set.
    assert!(out.contains("CapEff:\t00000000a80425fb"), "{out}");
    assert!(out.contains("ro-ok"), "{out}");
}

#[test]
fn privileged_container() {
    require_root!();
    let f = Fixture::new(
        "priv",
        &[
            "sh",
            "-c",
            "grep -E '^(CapEff|Seccomp):' /proc/self/status; ls /dev | grep -c .",
        ],
        Opts {
            privileged: true,
            ..Default::default()
        },
    );
    let (out, err, code) = run(&f);
    assert_eq!(code, 0, "{out}{err}");
    // Everything this process may hold (sandboxes may lack some caps).
    let host = std::fs::read_to_string("/proc/self/status").unwrap();
    let bnd = host.lines().find(|l| l.starts_with("CapBnd:")).unwrap();
    assert!(out.contains(&bnd.replace("CapBnd", "CapEff")), "{out}");
    assert!(out.contains("Seccomp:\t0"), "{out}");
}

#[test]
fn stalled_attacher_does_not_block_container() {
    require_root!();
    let f = Fixture::new(
        "slow",
        &[
            "sh",
            "-c",
            "dd if=/dev/zero bs=65536 count=64 2>/dev/null; echo done",
        ],
        Opts::default(),
    );
    f.launch();
    // Attaches but never reads: must be dropped, not wait on.
    let stalled = f.attach(false, true, true);
    f.start();
    let st = f.wait();
    assert_eq!(st.exit_code, 0);
    let entries = f.log_entries();
    let total: usize = entries
        .iter()
        .map(|e| e["log"].as_str().unwrap().chars().count())
        .sum();
    assert_eq!(total, 64 * 65536 + "done\n".len());
    assert_eq!(entries.last().unwrap()["log"], "done\n");
    drop(stalled);
    f.assert_cleaned_up();
}

/// Runs `f` on a thread in its own mount namespace whose mounts are all
/// private, with a temp dir for its files: what it mounts under that dir
/// is detached before the dir is removed, even when `f` panics, and never
/// reaches the host.
fn in_private_ns(f: impl FnOnce(&Path) + Send + 'static) {
    use nix::mount::{mount, umount2, MntFlags, MsFlags};
    let r = std::thread::spawn(move || {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).unwrap();
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .unwrap();
        let base = tempfile::tempdir().unwrap();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(base.path())));
        let mut under = mount_points_under(base.path());
        under.reverse();
        for m in under {
            let _ = umount2(&m, MntFlags::MNT_DETACH);
        }
        drop(base);
        if let Err(e) = r {
            std::panic::resume_unwind(e);
        }
    })
    .join();
    if let Err(e) = r {
        std::panic::resume_unwind(e);
    }
}

/// This thread's mount points at or below `dir`, in mount order.
fn mount_points_under(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_to_string("/proc/thread-self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(PathBuf::from))
        .filter(|m| m.starts_with(dir))
        .collect()
}

/// Makes `dir` a mount of its own with the given propagation (in the
/// test's namespace).
fn own_mount(dir: &Path, propagation: nix::mount::MsFlags) {
    use nix::mount::{mount, MsFlags};
    mount(Some(dir), dir, None::<&str>, MsFlags::MS_BIND, None::<&str>).unwrap();
    mount(None::<&str>, dir, None::<&str>, propagation, None::<&str>).unwrap();
}

fn tmpfs_at(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    nix::mount::mount(
        Some("tmpfs"),
        dir,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=1m"),
    )
    .unwrap();
}

fn oci_mount(v: serde_json::Value) -> oci_spec::runtime::Mount {
    serde_json::from_value(v).unwrap()
}

fn bind(source: &Path, dest: &str, options: &[&str]) -> oci_spec::runtime::Mount {
    oci_mount(serde_json::json!({
        "type": "bind", "source": source, "destination": dest, "options": options,
    }))
}

fn is_mount_point(path: &Path) -> bool {
    mount_points_under(path).first().is_some_and(|m| m == path)
}

/// A shared bind source with a `sub` directory; the container lists
/// `/data/sub` after the test mounted a tmpfs holding `inmount` there,
/// between create and start (so after the container's mounts were made).
fn host_mount_seen_through(base: &Path, propagation: &str, name: &str) -> String {
    let src = base.join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    own_mount(&src, nix::mount::MsFlags::MS_SHARED);
    let f = Fixture::new(
        name,
        &["ls", "/data/sub"],
        Opts {
            mounts: vec![bind(&src, "/data", &["rbind", propagation])],
            ..Default::default()
        },
    );
    let (out, err, code) = run_created(&f, || {
        tmpfs_at(&src.join("sub"));
        std::fs::write(src.join("sub/inmount"), "x").unwrap();
    });
    assert_eq!(code, 0, "{out}{err}");
    out
}

#[test]
fn bind_is_rprivate_by_default() {
    require_root!();
    in_private_ns(|base| {
        let out = host_mount_seen_through(base, "rprivate", "rprivate");
        assert!(!out.contains("inmount"), "{out:?}");
    });
}

#[test]
fn rslave_bind_sees_host_mounts() {
    require_root!();
    in_private_ns(|base| {
        let out = host_mount_seen_through(base, "rslave", "rslave");
        assert!(out.contains("inmount"), "{out:?}");
    });
}

#[test]
fn rshared_bind_propagates_to_host() {
    require_root!();
    in_private_ns(|base| {
        let src = base.join("src");
        std::fs::create_dir_all(src.join("sub")).unwrap();
        let opts = || Opts {
            privileged: true,
            mounts: vec![bind(&src, "/data", &["rbind", "rshared"])],
            ..Default::default()
        };
        let script = &[
            "sh",
            "-c",
            "mount -t tmpfs tmpfs /data/sub && touch /data/sub/from-container",
        ];
        // Docker refuses it while the source's mount is private.
        let err = generate(&SpecOptions {
            extra_mounts: opts().mounts,
            ..Default::default()
        })
        .unwrap_err();
        assert!(
            err.to_string().ends_with("but it is not a shared mount"),
            "{err}"
        );

        own_mount(&src, nix::mount::MsFlags::MS_SHARED);
        let f = Fixture::new("rshared", script, opts());
        let (out, err, code) = run(&f);
        assert_eq!(code, 0, "{out}{err}");
        assert!(is_mount_point(&src.join("sub")));
        assert!(src.join("sub/from-container").exists());
    });
}

/// A host directory holding only `orig`.
fn marker_dir(path: &Path) {
    std::fs::create_dir_all(path).unwrap();
    std::fs::write(path.join("orig"), "host").unwrap();
}

fn assert_untouched(marker: &Path) {
    let left: Vec<_> = std::fs::read_dir(marker)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("orig")]);
    assert!(!is_mount_point(marker));
}

/// CVE-2021-30465's shape: the image's mount destinations are symlinks to
/// host paths (absolute, and `../` past the root). libcontainer resolves
/// them inside the container's root (pathrs), so the binds land on the
/// in-root targets and the host's directories stay as they were.
#[test]
fn symlinked_destination_stays_in_root() {
    require_root!();
    in_private_ns(|base| {
        let (marker1, marker2) = (base.join("marker1"), base.join("marker2"));
        marker_dir(&marker1);
        marker_dir(&marker2);
        let (src1, src2) = (base.join("src1"), base.join("src2"));
        std::fs::create_dir_all(&src1).unwrap();
        std::fs::create_dir_all(&src2).unwrap();
        let f = Fixture::new(
            "symlink",
            &[
                "sh",
                "-c",
                "echo 1 > /data/f1 && echo 2 > /data2/f2 && ls /data /data2",
            ],
            Opts {
                mounts: vec![
                    bind(&src1, "/data", &["rbind", "rprivate"]),
                    bind(&src2, "/data2", &["rbind", "rprivate"]),
                ],
                ..Default::default()
            },
        );
        let in_root = |p: &Path| f.rootfs.join(p.strip_prefix("/").unwrap());
        std::fs::create_dir_all(in_root(&marker1)).unwrap();
        std::fs::create_dir_all(in_root(&marker2)).unwrap();
        symlink(&marker1, f.rootfs.join("data")).unwrap();
        let up = "../".repeat(16);
        symlink(format!("{up}{}", marker2.display()), f.rootfs.join("data2")).unwrap();
        let (out, err, code) = run_created(&f, || {
            assert!(!is_mount_point(&marker1) && !is_mount_point(&marker2));
        });
        assert_eq!(code, 0, "{out}{err}");
        assert_eq!(out, "/data:\nf1\n\n/data2:\nf2\n");
        assert_eq!(std::fs::read_to_string(src1.join("f1")).unwrap(), "1\n");
        assert_eq!(std::fs::read_to_string(src2.join("f2")).unwrap(), "2\n");
        assert_untouched(&marker1);
        assert_untouched(&marker2);
        assert!(!in_root(&marker1).join("f1").exists());

        // A dangling one (no in-root target) is refused, as runc does.
        let marker3 = base.join("marker3");
        marker_dir(&marker3);
        let f = Fixture::new(
            "dangling",
            &["true"],
            Opts {
                mounts: vec![bind(&src1, "/data", &["rbind", "rprivate"])],
                ..Default::default()
            },
        );
        symlink(&marker3, f.rootfs.join("data")).unwrap();
        assert!(matches!(f.try_launch(), Ok(LaunchReply::Failed { .. })));
        assert_untouched(&marker3);
        assert!(!in_root(&marker3).exists());
        f.assert_cleaned_up();
    });
}

#[test]
fn readonly_bind_and_tmpfs_options() {
    require_root!();
    in_private_ns(|base| {
        let src = base.join("src");
        // A submount: "ro" covers only the top mount of an rbind, "rro"
        // all of them (mount_setattr with AT_RECURSIVE).
        tmpfs_at(&src.join("sub"));
        let f = Fixture::new(
            "ro",
            &[
                "sh",
                "-c",
                "touch /ro/x 2>&1; touch /ro/sub/y && echo sub-rw; \
                 touch /rro/sub/z 2>&1; \
                 stat -c 'mode=%a' /t; df -k /t; touch /t/ok && echo t-rw",
            ],
            Opts {
                mounts: vec![
                    bind(&src, "/ro", &["rbind", "rprivate", "ro"]),
                    bind(&src, "/rro", &["rbind", "rprivate", "ro", "rro"]),
                    oci_mount(serde_json::json!({
                        "type": "tmpfs", "source": "tmpfs", "destination": "/t",
                        "options": ["noexec", "nosuid", "nodev", "size=1m", "mode=1777"],
                    })),
                ],
                ..Default::default()
            },
        );
        let (out, err, code) = run(&f);
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.contains("touch: /ro/x: Read-only file system"), "{out}");
        assert!(out.contains("sub-rw"), "{out}");
        assert!(
            out.contains("touch: /rro/sub/z: Read-only file system"),
            "{out}"
        );
        assert!(out.contains("mode=1777"), "{out}");
        let df = out.lines().find(|l| l.starts_with("tmpfs")).unwrap();
        assert_eq!(df.split_whitespace().nth(1), Some("1024"), "{out}");
        assert!(out.contains("t-rw"), "{out}");
        assert!(!src.join("x").exists());
    });
}

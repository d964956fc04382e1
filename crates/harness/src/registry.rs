//! Registries for tests, run inside a test daemon's network namespace so that the daemon reaches
//! them on its own loopback (127.0.0.1 is an insecure registry by default, as in Docker) and
//! ports never clash between tests: Debian's `docker-registry` (distribution 2.8) and Berth's
//! own `berth registry serve`. Dropping one kills it.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const DISTRIBUTION_BIN: &str = "/usr/bin/docker-registry";

pub struct TestRegistry {
    /// `127.0.0.1:<port>`, as image references name it.
    pub addr: String,
    /// Where the registry keeps its content.
    pub root: tempfile::TempDir,
    pub log: PathBuf,
    child: Child,
}

impl TestRegistry {
    /// Debian's `docker-registry` on `127.0.0.1:port` in `netns`, with htpasswd basic auth when
    /// `htpasswd` is given (a bcrypt file, see `write_htpasswd`).
    pub fn distribution(netns: &Path, port: u16, htpasswd: Option<&Path>) -> Result<Self> {
        let root = tempfile::Builder::new()
            .prefix("berth-distribution-")
            .tempdir()?;
        let auth = match htpasswd {
            Some(p) => format!(
                "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                p.display()
            ),
            None => String::new(),
        };
        let cfg = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}/data\n  delete:\n    enabled: true\n{auth}http:\n  addr: 127.0.0.1:{port}\n",
            root.path().display()
        );
        let cfg_path = root.path().join("config.yml");
        std::fs::write(&cfg_path, cfg)?;
        let mut cmd = crate::in_netns(netns, &[DISTRIBUTION_BIN, "serve"]);
        cmd.arg(&cfg_path);
        Self::spawn(cmd, root, port)
    }

    /// `berth registry serve --addr 127.0.0.1:<port> --root <tmp> <extra…>` in `netns`.
    pub fn berth(berth_bin: &Path, netns: &Path, port: u16, extra: &[&str]) -> Result<Self> {
        let root = tempfile::Builder::new()
            .prefix("berth-registry-")
            .tempdir()?;
        let addr = format!("127.0.0.1:{port}");
        let store = root.path().join("store");
        let bin = berth_bin.to_string_lossy().into_owned();
        let store_s = store.to_string_lossy().into_owned();
        let mut args = vec![
            bin.as_str(),
            "registry",
            "serve",
            "--addr",
            addr.as_str(),
            "--root",
            store_s.as_str(),
        ];
        args.extend_from_slice(extra);
        let cmd = crate::in_netns(netns, &args);
        Self::spawn(cmd, root, port)
    }

    fn spawn(mut cmd: Command, root: tempfile::TempDir, port: u16) -> Result<Self> {
        let log = root.path().join("registry.log");
        let out = std::fs::File::create(&log)?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("start {cmd:?}"))?;
        let mut r = TestRegistry {
            addr: format!("127.0.0.1:{port}"),
            root,
            log,
            child,
        };
        r.wait_listening(port)?;
        Ok(r)
    }

    /// The registry's listening socket shows in its namespace's /proc/net/tcp once it serves.
    fn wait_listening(&mut self, port: u16) -> Result<()> {
        let pid = self.child.id();
        let deadline = Instant::now() + Duration::from_secs(20);
        let needle = format!(":{port:04X} 00000000:0000 0A");
        while Instant::now() < deadline {
            if let Some(st) = self.child.try_wait()? {
                bail!("registry exited with {st}: {}", self.log_text());
            }
            // nsenter execs the registry in place, so the child's pid is the registry's.
            let tcp = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).unwrap_or_default();
            if tcp.lines().any(|l| l.contains(&needle)) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!("registry did not listen on {port}: {}", self.log_text())
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes an htpasswd file with one bcrypt entry (`htpasswd -B`'s format) whose password is
/// `secret`: a fixed hash, so that tests need no htpasswd tool.
pub fn write_htpasswd(dir: &Path, user: &str) -> Result<PathBuf> {
    // Made once with `htpasswd -nbB -C 5 u secret` (cost 5 keeps each check ~2 ms).
    const SECRET_BCRYPT: &str = "$2y$05$bvD60WIljGcv9eHCDEqYaezAB7p0PLzZz.lY7iIhdbUq2PXcvqbtO";
    let p = dir.join("htpasswd");
    std::fs::write(&p, format!("{user}:{SECRET_BCRYPT}\n"))?;
    Ok(p)
}

//! The daemon's side of `berth shim`: launch one per container and speak its line protocol
//! (one JSON request line per connection, defined in `berth_runtime`'s shim protocol).
//! The shim outlives the daemon, so everything here must also work after a daemon restart.

use crate::error::{EngineError, Result};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

#[derive(Debug, Clone, Deserialize)]
pub struct ExitInfo {
    pub exit_code: i64,
    #[serde(default)]
    pub oom_killed: bool,
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct ShimClient {
    state_dir: PathBuf,
}

impl ShimClient {
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        ShimClient {
            state_dir: state_dir.into(),
        }
    }

    pub fn socket(&self) -> PathBuf {
        self.state_dir.join("shim.sock")
    }

    /// Runs `<exe> shim <state_dir>`, which forks the long-lived monitor and prints one line:
    /// `{"pid":N}` once the container is created (not yet started) or `{"error":"…"}`.
    pub async fn launch(exe: &Path, state_dir: &Path) -> Result<i64> {
        Self::launch_role(exe, None, state_dir).await
    }

    /// Runs `<exe> shim exec <state_dir>`: the monitor of one exec'd process, ready for
    /// attach and `start` once this returns.
    pub async fn launch_exec(exe: &Path, state_dir: &Path) -> Result<i64> {
        Self::launch_role(exe, Some("exec"), state_dir).await
    }

    async fn launch_role(exe: &Path, role: Option<&str>, state_dir: &Path) -> Result<i64> {
        let out = tokio::process::Command::new(exe)
            .arg("shim")
            .args(role)
            .arg(state_dir)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .output()
            .await
            .map_err(|e| EngineError::Internal(format!("cannot run the shim: {e}")))?;
        let line = String::from_utf8_lossy(&out.stdout);
        let v: Value = serde_json::from_str(line.trim()).map_err(|_| {
            EngineError::Internal(format!("shim failed ({}): {}", out.status, line.trim()))
        })?;
        if let Some(pid) = v.get("pid").and_then(Value::as_i64) {
            return Ok(pid);
        }
        let msg = v
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("unknown shim error");
        Err(EngineError::Internal(format!(
            "OCI runtime create failed: {msg}"
        )))
    }

    /// UNIX socket paths are limited to 107 bytes; a deep exec root goes past that, so long
    /// paths are reached through the state directory's descriptor instead.
    async fn connect_socket(&self) -> std::io::Result<UnixStream> {
        let path = self.socket();
        if path.as_os_str().len() < 100 {
            return UnixStream::connect(path).await;
        }
        let dir = std::fs::File::open(&self.state_dir)?;
        let short = format!("/proc/self/fd/{}/shim.sock", dir.as_raw_fd());
        let s = UnixStream::connect(short).await;
        drop(dir);
        s
    }

    pub(crate) async fn connect(&self, req: Value) -> Result<(UnixStream, Value)> {
        let mut s = self
            .connect_socket()
            .await
            .map_err(|e| EngineError::Internal(format!("shim not reachable: {e}")))?;
        let mut line = serde_json::to_vec(&req).map_err(EngineError::internal)?;
        line.push(b'\n');
        s.write_all(&line).await?;
        // Read the reply byte by byte: for attach, what follows the line is the output
        // stream and must not be swallowed by a read-ahead buffer.
        let mut reply = Vec::with_capacity(64);
        loop {
            let mut b = [0u8; 1];
            let n = s.read(&mut b).await?;
            if n == 0 || b[0] == b'\n' {
                break;
            }
            reply.push(b[0]);
            if reply.len() > 1 << 20 {
                return Err(EngineError::Internal("shim reply too long".into()));
            }
        }
        let v: Value = serde_json::from_slice(&reply)
            .map_err(|_| EngineError::Internal("shim closed the connection".into()))?;
        if let Some(e) = v.get("error").and_then(Value::as_str) {
            return Err(EngineError::Internal(e.to_string()));
        }
        Ok((s, v))
    }

    pub async fn start(&self) -> Result<()> {
        self.connect(json!({"op": "start"})).await.map(|_| ())
    }

    pub async fn kill(&self, signal: i32) -> Result<()> {
        self.connect(json!({"op": "kill", "signal": signal}))
            .await
            .map(|_| ())
    }

    pub async fn resize(&self, height: u16, width: u16) -> Result<()> {
        self.connect(json!({"op": "resize", "height": height, "width": width}))
            .await
            .map(|_| ())
    }

    /// The monitored process' pid (0 before it exists).
    pub async fn pid(&self) -> Result<i64> {
        let (_s, v) = self.connect(json!({"op": "state"})).await?;
        Ok(v.get("pid").and_then(Value::as_i64).unwrap_or(0))
    }

    /// Whether the shim answers; false once it is gone (the container ended).
    pub async fn alive(&self) -> bool {
        self.connect(json!({"op": "state"})).await.is_ok()
    }

    /// Blocks until the container's init exits.
    pub async fn wait(&self) -> Result<ExitInfo> {
        let (_s, v) = self.connect(json!({"op": "wait"})).await?;
        serde_json::from_value(v).map_err(EngineError::internal)
    }

    /// After this returns, the stream carries 8-byte framed output; writes are stdin.
    pub async fn attach(&self, stdin: bool, stdout: bool, stderr: bool) -> Result<UnixStream> {
        let (s, _) = self
            .connect(json!({"op": "attach", "stdin": stdin, "stdout": stdout, "stderr": stderr}))
            .await?;
        Ok(s)
    }

    /// The exit document the shim leaves behind, for containers that ended while the daemon
    /// was down.
    pub fn exit_file(&self) -> Option<ExitInfo> {
        let b = std::fs::read(self.state_dir.join("exit.json")).ok()?;
        serde_json::from_slice(&b).ok()
    }
}

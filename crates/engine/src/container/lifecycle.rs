//! Start, stop, kill, restart, remove, rename, wait and attach, plus the monitor task that
//! records each exit and applies restart policies and auto-removal.

use super::{Handle, PendingAttach, Status};
use crate::error::{EngineError, Result};
use crate::shim::{ExitInfo, ShimClient};
use crate::{names, signals, Engine};
use bollard_stubs::models::RestartPolicyNameEnum;
use chrono::Utc;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UnixStream;
use tokio::sync::oneshot;

/// What `wait` waits for, as `POST /containers/{id}/wait?condition=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    NotRunning,
    NextExit,
    Removed,
}

impl WaitCondition {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "" | "not-running" => Ok(WaitCondition::NotRunning),
            "next-exit" => Ok(WaitCondition::NextExit),
            "removed" => Ok(WaitCondition::Removed),
            other => Err(EngineError::InvalidArgument(format!(
                "invalid condition: \"{other}\""
            ))),
        }
    }
}

/// Where an attach stream comes from: connected now, or once the container starts.
pub enum AttachTarget {
    Ready(UnixStream),
    Pending(oneshot::Receiver<UnixStream>),
}

/// dockerd's exit code for a start that failed for any reason other than the command.
const START_FAILED: i64 = 128;

/// Why a start failed, with the exit code dockerd records for it (126/127 for a command
/// that cannot be run or found).
struct StartFailure {
    error: EngineError,
    exit_code: i64,
}

impl From<EngineError> for StartFailure {
    fn from(error: EngineError) -> Self {
        StartFailure {
            error,
            exit_code: START_FAILED,
        }
    }
}

impl From<std::io::Error> for StartFailure {
    fn from(e: std::io::Error) -> Self {
        EngineError::from(e).into()
    }
}

impl Engine {
    fn shim(&self, id: &str) -> ShimClient {
        ShimClient::new(self.shim_dir(id))
    }

    pub async fn start_container(self: &Arc<Self>, key: &str) -> Result<()> {
        let h = self.containers.find(key)?;
        let _g = h.lifecycle.lock().await;
        if h.snapshot().state.is_running() {
            return Err(EngineError::NotModified);
        }
        h.update(|r| r.state.stopped_by_user = false);
        self.start_locked(&h).await
    }

    /// Starts `h`; the caller holds its lifecycle lock.
    async fn start_locked(self: &Arc<Self>, h: &Arc<Handle>) -> Result<()> {
        let rec = h.snapshot();
        let Err(StartFailure { error, exit_code }) = self.launch(h).await else {
            return Ok(());
        };
        self.mounts_down(&rec).await;
        self.release_rootfs(&h.id).await;
        self.network_down(h).await;
        let _ = tokio::fs::remove_dir_all(self.shim_dir(&h.id)).await;
        h.update(|r| {
            if r.state.started_at.is_some() || exit_code != START_FAILED {
                r.state.status = Status::Exited;
            }
            r.state.exit_code = exit_code;
            r.state.error = error.to_string();
        });
        let _ = self.persist(h);
        // Attachers waiting for this start get EOF instead of hanging.
        h.pending_attach
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        h.exits.send_modify(|g| *g += 1);
        if rec.host_config.auto_remove.unwrap_or(false) {
            // dockerd removes an auto-remove container whose start failed; `docker run
            // --rm` waits for that removal before it exits.
            let (engine, id) = (self.clone(), h.id.clone());
            tokio::spawn(async move {
                if let Err(e) = engine.remove_container(&id, true, true).await {
                    tracing::warn!(container = %id, "auto-remove after failed start: {e}");
                }
            });
        }
        Err(error)
    }

    async fn launch(self: &Arc<Self>, h: &Arc<Handle>) -> std::result::Result<(), StartFailure> {
        let t0 = std::time::Instant::now();
        let network = self.network_up(h).await?;
        let t_network = t0.elapsed();
        let rec = &h.snapshot();
        let (bundle, opts) = self.prepare_bundle(h, network).await?;
        let t_bundle = t0.elapsed();
        let cwd = opts.cwd.clone();
        let path_env = opts
            .env
            .iter()
            .find_map(|e| e.strip_prefix("PATH="))
            .map(str::to_string);
        let (rootfs, arg0) = (bundle.rootfs.clone(), rec.path.clone());
        tokio::task::spawn_blocking(move || {
            berth_runtime::exec_check::check_executable(&rootfs, &arg0, path_env.as_deref(), &cwd)
        })
        .await
        .map_err(EngineError::internal)?
        .map_err(|e| StartFailure {
            exit_code: i64::from(e.exit_code()),
            error: EngineError::InvalidArgument(format!(
                "OCI runtime create failed: unable to start container process: {e}"
            )),
        })?;
        let t_check = t0.elapsed();
        let spec = berth_runtime::spec::generate(&opts)
            .map_err(|e| EngineError::InvalidArgument(e.to_string()))?;
        let spec_json = serde_json::to_vec_pretty(&spec).map_err(EngineError::internal)?;
        tokio::fs::write(bundle.dir.join("config.json"), spec_json).await?;

        let state_dir = self.shim_dir(&h.id);
        let _ = tokio::fs::remove_dir_all(&state_dir).await;
        tokio::fs::create_dir_all(&state_dir).await?;
        let shim_cfg = berth_runtime::shim::ShimConfig {
            id: h.id.clone(),
            bundle: bundle.dir.clone(),
            state_dir: state_dir.clone(),
            runtime_root: self.runtime_root(),
            log_path: rec.log_path.clone().into(),
            log_max_size: rec.log_max_size,
            log_max_files: rec.log_max_files,
            tty: rec.tty(),
            open_stdin: rec.config.open_stdin.unwrap_or(false),
            stdin_once: rec.config.stdin_once.unwrap_or(false),
            healthcheck: super::health::shim_config(rec),
        };
        let cfg_json = serde_json::to_vec(&shim_cfg).map_err(EngineError::internal)?;
        tokio::fs::write(state_dir.join("shim.json"), cfg_json).await?;
        let t_spec = t0.elapsed();
        let pid = ShimClient::launch(&self.cfg.self_exe, &state_dir).await?;
        let t_launch = t0.elapsed();
        let shim = self.shim(&h.id);

        let pending: Vec<PendingAttach> =
            std::mem::take(&mut *h.pending_attach.lock().unwrap_or_else(|p| p.into_inner()));
        for p in pending {
            match shim.attach(p.stdin, p.stdout, p.stderr).await {
                Ok(s) => {
                    let _ = p.reply.send(s);
                }
                Err(e) => tracing::warn!(container = %h.id, "attach before start failed: {e}"),
            }
        }
        if let Err(e) = shim.start().await {
            let _ = shim.kill(9).await;
            let _ = shim.wait().await;
            return Err(e.into());
        }
        h.update(|r| {
            r.state.status = Status::Running;
            r.state.pid = pid;
            r.state.exit_code = 0;
            r.state.oom_killed = false;
            r.state.error.clear();
            r.state.started_at = Some(Utc::now());
            r.state.health = super::health::on_start(r);
        });
        self.persist(h)?;
        self.emit_container(&h.snapshot(), "start", &[]);
        h.starts.send_modify(|g| *g += 1);
        self.spawn_monitor(h.clone());
        tracing::info!(container = %h.id, pid, "started");
        tracing::debug!(
            container = %h.id,
            network = ?t_network,
            bundle = ?(t_bundle - t_network),
            exec_check = ?(t_check - t_bundle),
            spec = ?(t_spec - t_check),
            shim_create = ?(t_launch - t_spec),
            start = ?(t0.elapsed() - t_launch),
            "start phases"
        );
        Ok(())
    }

    /// Waits for the shim to report the exit, then records it. Also used after a daemon
    /// restart to re-attach to containers that kept running.
    pub(crate) fn spawn_monitor(self: &Arc<Self>, h: Arc<Handle>) {
        self.watch_health(h.clone());
        let engine = self.clone();
        tokio::spawn(async move {
            let shim = engine.shim(&h.id);
            let info = match shim.wait().await {
                Ok(i) => i,
                Err(_) => shim.exit_file().unwrap_or(ExitInfo {
                    exit_code: 255,
                    oom_killed: false,
                    finished_at: None,
                }),
            };
            engine.record_exit(&h, info).await;
        });
    }

    pub(crate) async fn record_exit(self: &Arc<Self>, h: &Arc<Handle>, info: ExitInfo) {
        self.execs.forget_container(&h.id);
        self.release_rootfs(&h.id).await;
        self.mounts_down(&h.snapshot()).await;
        self.network_down(h).await;
        let _ = tokio::fs::remove_dir_all(self.shim_dir(&h.id)).await;
        let shutting_down = self.shutting_down();
        let rec = h.update(|r| {
            let policy = r.host_config.restart_policy.clone().unwrap_or_default();
            let max = policy.maximum_retry_count.unwrap_or(0);
            let restart = !r.state.stopped_by_user
                && !shutting_down
                && match policy.name.unwrap_or(RestartPolicyNameEnum::NO) {
                    RestartPolicyNameEnum::ALWAYS | RestartPolicyNameEnum::UNLESS_STOPPED => true,
                    RestartPolicyNameEnum::ON_FAILURE => {
                        info.exit_code != 0 && (max == 0 || r.restart_count < max)
                    }
                    _ => false,
                };
            // A container about to be restarted shows "Restarting (code) N seconds ago"
            // during the back-off, as with dockerd, never "Exited" in between.
            r.state.status = if restart {
                Status::Restarting
            } else {
                Status::Exited
            };
            r.state.paused = false;
            r.state.pid = 0;
            r.state.exit_code = info.exit_code;
            r.state.oom_killed = info.oom_killed;
            r.state.finished_at = Some(info.finished_at.unwrap_or_else(Utc::now));
            r.clone()
        });
        if let Err(e) = self.persist(h) {
            tracing::error!(container = %h.id, "cannot persist exit: {e}");
        }
        if info.oom_killed {
            self.emit_container(&rec, "oom", &[]);
        }
        let ran = rec
            .state
            .started_at
            .map(|s| (Utc::now() - s).num_seconds())
            .unwrap_or_default();
        self.emit_container(
            &rec,
            "die",
            &[
                ("exitCode", info.exit_code.to_string()),
                ("execDuration", ran.to_string()),
            ],
        );
        h.exits.send_modify(|g| *g += 1);
        tracing::info!(container = %h.id, code = info.exit_code, "exited");

        if rec.state.status == Status::Restarting {
            self.schedule_restart(h.clone(), &rec);
        } else if rec.host_config.auto_remove.unwrap_or(false) {
            let (engine, h) = (self.clone(), h.clone());
            tokio::spawn(async move {
                if let Err(e) = engine.remove_container(&h.id, true, true).await {
                    tracing::warn!(container = %h.id, "auto-remove failed: {e}");
                }
            });
        }
    }

    /// Starts `h` again after dockerd's back-off: 100 ms doubling per restart, reset once the
    /// container had run for 10 s. A stop, kill or removal during the delay cancels it.
    pub(crate) fn schedule_restart(self: &Arc<Self>, h: Arc<Handle>, rec: &super::ContainerRecord) {
        let ran = match (rec.state.started_at, rec.state.finished_at) {
            (Some(s), Some(f)) => f - s,
            _ => chrono::Duration::zero(),
        };
        let delay = if ran > chrono::Duration::seconds(10) {
            100
        } else {
            (100u64 << rec.restart_count.clamp(0, 10)).min(60_000)
        };
        let engine = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(delay)).await;
            let _g = h.lifecycle.lock().await;
            let r = h.snapshot();
            if r.state.stopped_by_user
                || r.state.status != Status::Restarting
                || *h.removed.borrow()
                || engine.shutting_down()
            {
                return;
            }
            h.update(|r| r.restart_count += 1);
            if let Err(e) = engine.start_locked(&h).await {
                tracing::warn!(container = %h.id, "restart failed: {e}");
            }
        });
    }

    /// A restart that is only waiting out its back-off is cancelled, not signalled: there is
    /// no process. Returns true when that was the case.
    fn cancel_restart(&self, h: &Handle) -> bool {
        let cancelled = h.update(|r| {
            if r.state.status != Status::Restarting {
                return false;
            }
            r.state.status = Status::Exited;
            r.state.stopped_by_user = true;
            true
        });
        if cancelled {
            let _ = self.persist(h);
            h.exits.send_modify(|g| *g += 1);
        }
        cancelled
    }

    pub async fn stop_container(
        &self,
        key: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<()> {
        let h = self.containers.find(key)?;
        let _g = h.lifecycle.lock().await;
        self.stop_locked(&h, timeout, signal).await
    }

    async fn stop_locked(
        &self,
        h: &Handle,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<()> {
        let mut exits = h.exits.subscribe();
        // Set even when not running: a stop between two restarts of a restart policy must
        // cancel the pending one (it checks this flag), or the container comes back.
        let rec = h.update(|r| {
            r.state.stopped_by_user = true;
            r.clone()
        });
        if !rec.state.is_running() {
            return Err(EngineError::NotModified);
        }
        if self.cancel_restart(h) {
            return Ok(());
        }
        let sig_name = signal
            .map(str::to_string)
            .or_else(|| rec.config.stop_signal.clone().filter(|s| !s.is_empty()))
            .unwrap_or_else(|| "SIGTERM".into());
        let sig = signals::parse(&sig_name)
            .ok_or_else(|| EngineError::InvalidArgument(format!("Invalid signal: {sig_name}")))?;
        let timeout = timeout.or(rec.config.stop_timeout).unwrap_or(10);
        let shim = self.shim(&h.id);
        exits.borrow_and_update();
        match shim.kill(sig).await {
            Ok(()) => self.emit_container(&rec, "kill", &[("signal", sig.to_string())]),
            Err(e) => tracing::warn!(container = %h.id, "stop signal failed: {e}"),
        }
        // A frozen container gets the signal once thawed, as with dockerd.
        self.thaw_if_paused(h).await;
        if timeout >= 0 {
            let graceful =
                tokio::time::timeout(Duration::from_secs(timeout as u64), exits.changed()).await;
            if graceful.is_ok() {
                self.emit_container(&h.snapshot(), "stop", &[]);
                return Ok(());
            }
            tracing::info!(container = %h.id, "did not stop in {timeout}s, killing");
            if shim.kill(libc::SIGKILL).await.is_ok() {
                self.emit_container(&rec, "kill", &[("signal", libc::SIGKILL.to_string())]);
            }
        }
        let _ = exits.changed().await;
        self.emit_container(&h.snapshot(), "stop", &[]);
        Ok(())
    }

    pub async fn kill_container(&self, key: &str, signal: Option<&str>) -> Result<()> {
        let h = self.containers.find(key)?;
        let name = signal.filter(|s| !s.is_empty()).unwrap_or("SIGKILL");
        let sig = signals::parse(name)
            .ok_or_else(|| EngineError::InvalidArgument(format!("Invalid signal: {name}")))?;
        if !h.snapshot().state.is_running() {
            return Err(EngineError::Conflict(format!(
                "cannot kill container: {key}: {}",
                EngineError::not_running(&h.id)
            )));
        }
        if self.cancel_restart(&h) {
            return Ok(());
        }
        let mut exits = h.exits.subscribe();
        exits.borrow_and_update();
        let stop_signal = h.snapshot().config.stop_signal.filter(|s| !s.is_empty());
        let stopping =
            sig == libc::SIGKILL || Some(sig) == stop_signal.as_deref().and_then(signals::parse);
        if stopping {
            h.update(|r| r.state.stopped_by_user = true);
        }
        self.shim(&h.id).kill(sig).await?;
        self.emit_container(&h.snapshot(), "kill", &[("signal", sig.to_string())]);
        // dockerd thaws a paused container after a signal meant to end it, so it is delivered.
        if stopping || stop_signal.is_none() {
            self.thaw_if_paused(&h).await;
        }
        if sig == libc::SIGKILL {
            // dockerd returns once a SIGKILLed container is gone, so a following inspect
            // already shows it exited.
            let _ = tokio::time::timeout(Duration::from_secs(10), exits.changed()).await;
        }
        Ok(())
    }

    pub async fn restart_container(
        self: &Arc<Self>,
        key: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<()> {
        let h = self.containers.find(key)?;
        let _g = h.lifecycle.lock().await;
        match self.stop_locked(&h, timeout, signal).await {
            Ok(()) | Err(EngineError::NotModified) => {}
            Err(e) => return Err(e),
        }
        h.update(|r| r.state.stopped_by_user = false);
        self.start_locked(&h).await?;
        self.emit_container(&h.snapshot(), "restart", &[]);
        Ok(())
    }

    /// DELETE /containers/{id}; `volumes` (`rm -v`) also removes its anonymous volumes that no
    /// other container uses.
    pub async fn remove_container(&self, key: &str, force: bool, volumes: bool) -> Result<()> {
        let h = self.containers.find(key)?;
        let _g = h.lifecycle.lock().await;
        if *h.removed.borrow() {
            return Err(EngineError::no_such_container(key));
        }
        let rec = h.snapshot();
        if rec.state.is_running() {
            if !force {
                return Err(EngineError::Conflict(format!(
                    "cannot remove container \"/{}\": container is running: stop the container before removing or force remove",
                    rec.name
                )));
            }
            match self.stop_locked(&h, Some(0), Some("SIGKILL")).await {
                Ok(()) | Err(EngineError::NotModified) => {}
                Err(e) => return Err(e),
            }
        }
        h.update(|r| r.state.status = Status::Removing);
        self.release_rootfs(&h.id).await;
        let dir = self.container_dir(&h.id);
        let _ = tokio::fs::remove_dir_all(self.shim_dir(&h.id)).await;
        if let Err(e) = tokio::fs::remove_dir_all(&dir).await {
            if e.kind() != std::io::ErrorKind::NotFound {
                h.update(|r| r.state.status = Status::Dead);
                return Err(EngineError::Internal(format!(
                    "unable to remove filesystem for {}: {e}",
                    h.id
                )));
            }
        }
        self.db.delete_container(&h.id)?;
        self.containers.remove(&h.id);
        self.emit_container(&rec, "destroy", &[]);
        self.execs.forget_container(&h.id);
        h.removed.send_replace(true);
        tracing::info!(container = %h.id, "removed");
        if volumes {
            let names: Vec<String> = rec.mounts.iter().filter_map(|m| m.volume.clone()).collect();
            self.remove_anonymous_volumes(&names).await;
        }
        Ok(())
    }

    pub fn rename_container(&self, key: &str, new_name: &str) -> Result<()> {
        let h = self.containers.find(key)?;
        if !names::valid_name(new_name) {
            return Err(EngineError::InvalidArgument(format!(
                "Invalid container name ({new_name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        let new_name = new_name.trim_start_matches('/');
        let old = h.name();
        if old == new_name {
            return Err(EngineError::Conflict(
                "Renaming a container with the same name as its current name".into(),
            ));
        }
        self.containers.rename(&h.id, &old, new_name)?;
        h.update(|r| r.name = new_name.to_string());
        if let Err(e) = self.persist(&h) {
            self.containers.rename(&h.id, new_name, &old)?;
            h.update(|r| r.name = old);
            return Err(e);
        }
        self.emit_container(&h.snapshot(), "rename", &[("oldName", format!("/{old}"))]);
        Ok(())
    }

    /// Returns the exit code once `condition` holds.
    pub async fn wait_container(&self, key: &str, condition: WaitCondition) -> Result<i64> {
        let h = self.containers.find(key)?;
        self.wait_handle(&h, condition).await
    }

    /// Like `wait_container`, for a handle looked up earlier (so the HTTP layer can send its
    /// headers before blocking).
    pub async fn wait_handle(&self, h: &Handle, condition: WaitCondition) -> Result<i64> {
        let mut exits = h.exits.subscribe();
        let mut removed = h.removed.subscribe();
        exits.borrow_and_update();
        match condition {
            WaitCondition::NotRunning => {
                if !h.snapshot().state.is_running() {
                    return Ok(h.snapshot().state.exit_code);
                }
                let _ = exits.changed().await;
            }
            WaitCondition::NextExit => {
                let _ = exits.changed().await;
            }
            WaitCondition::Removed => {
                let _ = removed.wait_for(|r| *r).await;
            }
        }
        Ok(h.snapshot().state.exit_code)
    }

    pub fn find_container(&self, key: &str) -> Result<Arc<Handle>> {
        self.containers.find(key)
    }

    pub async fn attach_container(
        &self,
        key: &str,
        stdin: bool,
        stdout: bool,
        stderr: bool,
    ) -> Result<AttachTarget> {
        let h = self.containers.find(key)?;
        self.emit_container(&h.snapshot(), "attach", &[]);
        if h.snapshot().state.is_running() {
            if let Ok(s) = self.shim(&h.id).attach(stdin, stdout, stderr).await {
                return Ok(AttachTarget::Ready(s));
            }
        }
        let (tx, rx) = oneshot::channel();
        h.pending_attach
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(PendingAttach {
                stdin,
                stdout,
                stderr,
                reply: tx,
            });
        Ok(AttachTarget::Pending(rx))
    }

    pub async fn resize_container(&self, key: &str, height: u16, width: u16) -> Result<()> {
        let h = self.containers.find(key)?;
        if !h.snapshot().state.is_running() {
            return Err(EngineError::not_running(&h.id));
        }
        self.shim(&h.id).resize(height, width).await?;
        self.emit_container(
            &h.snapshot(),
            "resize",
            &[("height", height.to_string()), ("width", width.to_string())],
        );
        Ok(())
    }
}

//! A running container's resources through its cgroup: stats, top, pause/unpause (freezer)
//! and live updates of its limits.

pub mod cgroup;
pub mod freezer;
pub mod stats;
pub mod top;
pub mod update;

use crate::container::{Handle, Status};
use crate::error::{EngineError, Result};
use crate::Engine;
use bollard_stubs::models::{ContainerTopResponse, ContainerUpdateBody};
use cgroup::Cgroup;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// How often a stats stream sends a frame, as dockerd's collector.
const STATS_INTERVAL: Duration = Duration::from_secs(1);

/// What `GET /containers/{id}/stats` asked for.
#[derive(Debug, Clone, Copy)]
pub struct StatsOptions {
    pub stream: bool,
    pub one_shot: bool,
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(EngineError::internal)
}

impl Engine {
    /// Frames of `GET /stats`: one per second while streaming (ending when the container
    /// stops), or a single one. A container that is not running gets dockerd's zeroed frame.
    pub fn container_stats(&self, key: &str, opts: StatsOptions) -> Result<mpsc::Receiver<Value>> {
        let h = self.containers.find(key)?;
        let (tx, rx) = mpsc::channel(2);
        tokio::spawn(stats_loop(h, opts, tx));
        Ok(rx)
    }

    /// `GET /containers/{id}/top`: the host's `ps` filtered to the container's processes.
    pub async fn top_container(
        &self,
        key: &str,
        ps_args: Option<&str>,
    ) -> Result<ContainerTopResponse> {
        let h = self.containers.find(key)?;
        let rec = h.snapshot();
        if !rec.state.is_running() {
            return Err(EngineError::not_running(&h.id));
        }
        if rec.state.status == Status::Restarting {
            return Err(EngineError::restarting(&h.id));
        }
        let cg = Cgroup::for_container(&h.id);
        let pids = blocking(move || cg.pids()).await?.map_err(|e| {
            EngineError::Internal(format!("cannot list the container's processes: {e}"))
        })?;
        let args = top::ps_args(ps_args);
        let out = top::run_ps(&args, &pids)
            .await
            .map_err(|e| EngineError::Internal(e.to_string()))?;
        top::parse_ps(&out, &pids).map_err(|e| EngineError::Internal(e.to_string()))
    }

    /// Freezes every process of the container (`docker pause`). Takes the container's
    /// lifecycle lock: do not call it while holding that lock.
    pub async fn pause(&self, key: &str) -> Result<()> {
        let h = self.containers.find(key)?;
        let _g = h.lifecycle.lock().await;
        let rec = h.snapshot();
        if !rec.state.is_running() {
            return Err(EngineError::not_running(&h.id));
        }
        if rec.state.status == Status::Restarting {
            return Err(EngineError::restarting(&h.id));
        }
        if rec.state.paused {
            return Err(EngineError::Conflict(format!(
                "Container {} is already paused",
                h.id
            )));
        }
        let cg = Cgroup::for_container(&h.id);
        blocking(move || freezer::freeze(&cg))
            .await?
            .map_err(|e| EngineError::Internal(format!("Cannot pause container {}: {e}", h.id)))?;
        let rec = h.update(|r| {
            r.state.paused = true;
            r.clone()
        });
        self.persist(&h)?;
        self.emit_container(&rec, "pause", &[]);
        tracing::info!(container = %h.id, "paused");
        Ok(())
    }

    /// Thaws a paused container (`docker unpause`). Same locking rule as `pause`.
    pub async fn unpause(&self, key: &str) -> Result<()> {
        let h = self.containers.find(key)?;
        let _g = h.lifecycle.lock().await;
        let rec = h.snapshot();
        if !rec.state.paused || !rec.state.is_running() {
            return Err(EngineError::Conflict(format!(
                "Container {} is not paused",
                h.id
            )));
        }
        self.thaw(&h).await
    }

    /// Thaws `h` and records it; also used after signalling a paused container, so that the
    /// signal is delivered (as dockerd does for kill and stop).
    pub(crate) async fn thaw(&self, h: &Handle) -> Result<()> {
        let cg = Cgroup::for_container(&h.id);
        blocking(move || freezer::thaw(&cg)).await?.map_err(|e| {
            EngineError::Internal(format!("Cannot unpause container {}: {e}", h.id))
        })?;
        let rec = h.update(|r| {
            r.state.paused = false;
            r.clone()
        });
        self.persist(h)?;
        self.emit_container(&rec, "unpause", &[]);
        tracing::info!(container = %h.id, "unpaused");
        Ok(())
    }

    /// Thaws `h` if it is paused, logging failures: for paths that must go on regardless.
    pub(crate) async fn thaw_if_paused(&self, h: &Handle) {
        if h.snapshot().state.paused {
            if let Err(e) = self.thaw(h).await {
                tracing::warn!(container = %h.id, "{e}");
            }
        }
    }

    /// `POST /containers/{id}/update`: merges the body into HostConfig, writes the limits
    /// into the live cgroup of a running container, then persists. Nothing changes when the
    /// body is invalid or the cgroup refuses a value.
    pub async fn update_container(
        &self,
        key: &str,
        body: ContainerUpdateBody,
    ) -> Result<Vec<String>> {
        let h = self.containers.find(key)?;
        let _g = h.lifecycle.lock().await;
        let rec = h.snapshot();
        let ncpu = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let merged = update::merge(&rec.host_config, &body, ncpu).map_err(|e| {
            let msg = format!("Cannot update container {}: {e}", h.id);
            match e {
                update::UpdateError::Invalid(m) => EngineError::InvalidArgument(m),
                update::UpdateError::Conflict(_) => EngineError::Conflict(msg),
            }
        })?;
        if rec.state.is_running() {
            let cg = Cgroup::for_container(&h.id);
            let (old, new) = (rec.host_config.clone(), merged.clone());
            let applied = blocking(move || {
                let r = update::apply(&cg, &old, &new);
                if r.is_err() {
                    // Put back what was there, so a refused value changes nothing.
                    let _ = update::apply(&cg, &new, &old);
                }
                r
            })
            .await?;
            applied.map_err(|e| {
                EngineError::Internal(format!("Cannot update container {}: {e}", h.id))
            })?;
        }
        let rec = h.update(|r| {
            r.host_config = merged;
            r.clone()
        });
        if let Err(e) = self.persist(&h) {
            h.update(|r| r.host_config = rec.host_config.clone());
            return Err(e);
        }
        self.emit_container(&rec, "update", &[]);
        Ok(Vec::new())
    }
}

async fn stats_loop(h: Arc<Handle>, opts: StatsOptions, tx: mpsc::Sender<Value>) {
    let mut pre: Option<stats::Sample> = None;
    let mut was_running = false;
    loop {
        if *h.removed.borrow() {
            break;
        }
        let rec = h.snapshot();
        let frame = if rec.state.is_running() && rec.state.pid > 0 {
            let host_net = rec.host_config.network_mode.as_deref() == Some("host");
            let src = stats::Source {
                cgroup: Cgroup::for_container(&h.id),
                net_pid: (!host_net).then_some(rec.state.pid),
            };
            let Ok(cur) = tokio::task::spawn_blocking(move || stats::Sample::take(&src)).await
            else {
                break;
            };
            if !opts.stream && !opts.one_shot && pre.is_none() {
                // dockerd's non-streaming answer carries a CPU sample from a tick earlier, so
                // clients can compute a percentage from one frame.
                pre = Some(cur);
                tokio::time::sleep(STATS_INTERVAL).await;
                continue;
            }
            was_running = true;
            let f = stats::frame(&rec.name, &rec.id, &cur, pre.as_ref());
            pre = Some(cur);
            f
        } else if was_running {
            // The container stopped: the stream ends, as dockerd's does.
            break;
        } else {
            stats::zero_frame(&rec.name, &rec.id)
        };
        if tx.send(frame).await.is_err() || !opts.stream {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(STATS_INTERVAL) => {}
            _ = tx.closed() => break,
        }
    }
}

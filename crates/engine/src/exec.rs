//! `docker exec`: in-memory exec instances, as dockerd keeps them (they do not survive a
//! daemon restart). Each started exec runs under its own `berth shim exec` in the container's
//! shim directory, which joins the running container and speaks the shim protocol.

use crate::container::Handle;
use crate::error::{EngineError, Result};
use crate::shim::{ExitInfo, ShimClient};
use crate::{names, Engine};
use berth_runtime::shim::exec::{ExecConfig as ShimExecConfig, EXEC_CONFIG_FILE};
use bollard_stubs::models::ExecConfig;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::net::UnixStream;
use tokio::sync::watch;

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Debug, Clone)]
pub struct ExecState {
    pub id: String,
    pub container_id: String,
    pub entrypoint: String,
    pub arguments: Vec<String>,
    pub env: Vec<String>,
    pub user: String,
    pub working_dir: String,
    pub privileged: bool,
    pub tty: bool,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub detach_keys: String,
    pub console_size: Option<(u16, u16)>,
    pub started: bool,
    pub running: bool,
    pub exit_code: Option<i64>,
    pub pid: i64,
}

pub struct ExecInstance {
    state: Mutex<ExecState>,
    /// Becomes true once the exit code is recorded.
    pub done: watch::Sender<bool>,
}

impl ExecInstance {
    pub fn snapshot(&self) -> ExecState {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
    fn update<T>(&self, f: impl FnOnce(&mut ExecState) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()))
    }
    /// Resolves once the exit code is recorded.
    pub async fn wait_done(&self) {
        let mut rx = self.done.subscribe();
        let _ = rx.wait_for(|d| *d).await;
    }
}

#[derive(Default)]
pub struct ExecRegistry {
    by_id: Mutex<HashMap<String, Arc<ExecInstance>>>,
}

impl ExecRegistry {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<ExecInstance>>> {
        self.by_id.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, id: &str) -> Result<Arc<ExecInstance>> {
        self.map()
            .get(id)
            .cloned()
            .ok_or_else(|| EngineError::NotFound(format!("No such exec instance: {id}")))
    }

    /// The container's execs that have not finished (`ExecIDs` of container inspect).
    pub fn ids_of(&self, container_id: &str) -> Vec<String> {
        let mut v: Vec<(String, bool)> = self
            .map()
            .values()
            .map(|e| e.snapshot())
            .filter(|s| s.container_id == container_id && s.exit_code.is_none())
            .map(|s| (s.id, s.started))
            .collect();
        v.sort();
        v.into_iter().map(|(id, _)| id).collect()
    }

    /// Drops every exec of a container that stopped or was removed, as dockerd does.
    pub fn forget_container(&self, container_id: &str) {
        self.map()
            .retain(|_, e| e.snapshot().container_id != container_id);
    }
}

/// What an attached start hands to the API layer.
pub struct ExecStream {
    pub exec: Arc<ExecInstance>,
    /// The exec's output (framed) and stdin; None when nothing is attached.
    pub stream: Option<UnixStream>,
    /// Why the process could not be started (written into the stream, as dockerd does).
    pub start_error: Option<String>,
    pub tty: bool,
}

/// dockerd's refusals for an exec into a container that cannot take one.
fn check_can_exec(rec: &crate::container::ContainerRecord) -> Result<()> {
    if !rec.state.is_running() {
        return Err(EngineError::not_running(&rec.id));
    }
    if rec.state.paused {
        return Err(EngineError::Conflict(format!(
            "Container {} is paused, unpause the container before exec",
            rec.id
        )));
    }
    if rec.state.status == crate::container::Status::Restarting {
        return Err(EngineError::restarting(&rec.id));
    }
    Ok(())
}

/// moby's `ReplaceOrAppendEnvValues`.
fn merge_env(base: Vec<String>, overrides: &[String]) -> Vec<String> {
    let mut out = base;
    for o in overrides {
        let key = o.split('=').next().unwrap_or(o);
        match out
            .iter_mut()
            .find(|e| e.split('=').next().unwrap_or(e) == key)
        {
            Some(slot) => *slot = o.clone(),
            None => out.push(o.clone()),
        }
    }
    out
}

impl Engine {
    fn exec_dir(&self, container_id: &str, exec_id: &str) -> PathBuf {
        self.shim_dir(container_id).join("execs").join(exec_id)
    }

    pub fn find_exec(&self, id: &str) -> Result<Arc<ExecInstance>> {
        self.execs.get(id)
    }

    /// `POST /containers/{id}/exec`.
    pub fn create_exec(&self, key: &str, cfg: ExecConfig) -> Result<String> {
        let h = self.containers.find(key)?;
        let rec = h.snapshot();
        check_can_exec(&rec)?;
        let cmd = cfg.cmd.clone().unwrap_or_default();
        let Some((entrypoint, arguments)) = cmd.split_first() else {
            return Err(EngineError::InvalidArgument(
                "No exec command specified".into(),
            ));
        };
        let console_size = match cfg.console_size.as_deref() {
            None | Some([]) => None,
            Some([h, w]) => Some((
                u16::try_from(*h).unwrap_or(u16::MAX),
                u16::try_from(*w).unwrap_or(u16::MAX),
            )),
            Some(_) => {
                return Err(EngineError::InvalidArgument(
                    "ConsoleSize must be [height, width]".into(),
                ))
            }
        };
        let id = names::random_id();
        let st = ExecState {
            id: id.clone(),
            container_id: h.id.clone(),
            entrypoint: entrypoint.clone(),
            arguments: arguments.to_vec(),
            env: cfg.env.clone().unwrap_or_default(),
            user: cfg
                .user
                .clone()
                .filter(|u| !u.is_empty())
                .or_else(|| rec.config.user.clone())
                .unwrap_or_default(),
            working_dir: cfg.working_dir.clone().unwrap_or_default(),
            privileged: cfg.privileged.unwrap_or(false),
            tty: cfg.tty.unwrap_or(false),
            attach_stdin: cfg.attach_stdin.unwrap_or(false),
            attach_stdout: cfg.attach_stdout.unwrap_or(false),
            attach_stderr: cfg.attach_stderr.unwrap_or(false),
            detach_keys: cfg.detach_keys.clone().unwrap_or_default(),
            console_size,
            started: false,
            running: false,
            exit_code: None,
            pid: 0,
        };
        self.execs.map().insert(
            id.clone(),
            Arc::new(ExecInstance {
                state: Mutex::new(st),
                done: watch::channel(false).0,
            }),
        );
        // dockerd's wording, trailing space included when there are no arguments.
        self.emit_container(
            &rec,
            &format!("exec_create: {} {}", entrypoint, arguments.join(" ")),
            &[("execID", id.clone())],
        );
        Ok(id)
    }

    /// Checks that `id` can be started now (the API answers these with a plain HTTP error
    /// before it hijacks the connection).
    pub fn check_exec_startable(&self, id: &str) -> Result<Arc<ExecInstance>> {
        let ex = self.execs.get(id)?;
        let st = ex.snapshot();
        if st.started {
            return Err(EngineError::Conflict(if st.running {
                format!("Error: Exec command {id} is already running")
            } else {
                format!("Error: Exec command {id} has already run")
            }));
        }
        let h = self.containers.find(&st.container_id)?;
        check_can_exec(&h.snapshot())?;
        Ok(ex)
    }

    /// `POST /exec/{id}/start`: launches the exec shim, attaches (unless `detach`), starts.
    pub async fn start_exec(
        self: &Arc<Self>,
        id: &str,
        detach: bool,
        console_size: Option<(u16, u16)>,
    ) -> Result<ExecStream> {
        let t0 = Instant::now();
        let ex = self.check_exec_startable(id)?;
        if ex.update(|s| std::mem::replace(&mut s.started, true)) {
            return Err(EngineError::Conflict(format!(
                "Error: Exec command {id} is already running"
            )));
        }
        let st = ex.snapshot();
        let h = self.containers.find(&st.container_id)?;
        let rec = h.snapshot();
        let launched = self.launch_exec(&h, &st, console_size).await;
        let t_launch = t0.elapsed();
        let shim = match launched {
            Ok(s) => s,
            Err(e) => {
                ex.update(|s| s.exit_code = Some(126));
                ex.done.send_replace(true);
                let _ = tokio::fs::remove_dir_all(self.exec_dir(&h.id, id)).await;
                return Err(e);
            }
        };
        let want = |b: bool| b && !detach;
        let stream = if want(st.attach_stdin || st.attach_stdout || st.attach_stderr) {
            let attached = shim
                .attach(
                    want(st.attach_stdin),
                    want(st.attach_stdout),
                    want(st.attach_stderr),
                )
                .await;
            match attached {
                Ok(s) => Some(s),
                Err(e) => {
                    // Never started: a kill ends the exec's monitor.
                    let _ = shim.kill(libc::SIGKILL).await;
                    ex.update(|s| s.exit_code = Some(126));
                    ex.done.send_replace(true);
                    return Err(e);
                }
            }
        } else {
            None
        };
        let t_attach = t0.elapsed();
        // dockerd announces the start before the runtime runs it, failing or not.
        self.emit_container(
            &rec,
            &format!("exec_start: {} {}", st.entrypoint, st.arguments.join(" ")),
            &[("execID", id.to_string())],
        );
        let started = shim.start().await;
        let start_error = match started {
            Ok(()) => {
                let pid = shim.pid().await.unwrap_or(0);
                ex.update(|s| {
                    s.running = true;
                    s.pid = pid;
                });
                None
            }
            Err(e) => Some(format!(
                "OCI runtime exec failed: exec failed: unable to start container process: {e}: unknown"
            )),
        };
        tracing::debug!(
            exec = %id,
            launch = ?t_launch,
            attach = ?(t_attach - t_launch),
            start = ?(t0.elapsed() - t_attach),
            "exec start phases"
        );
        let engine = self.clone();
        let (ex2, failed) = (ex.clone(), start_error.is_some());
        let monitor = async move {
            let info = match shim.wait().await {
                Ok(i) => i,
                Err(_) => shim.exit_file().unwrap_or(ExitInfo {
                    exit_code: 126,
                    oom_killed: false,
                    finished_at: None,
                }),
            };
            ex2.update(|s| {
                s.running = false;
                s.exit_code = Some(info.exit_code);
            });
            if !failed {
                engine.emit_container(
                    &rec,
                    "exec_die",
                    &[
                        ("execID", ex2.snapshot().id),
                        ("exitCode", info.exit_code.to_string()),
                    ],
                );
            }
            ex2.done.send_replace(true);
            let dir = engine.exec_dir(&rec.id, &ex2.snapshot().id);
            let _ = tokio::fs::remove_dir_all(dir).await;
        };
        if failed {
            // The client reads the exit code right after the error: record it first.
            monitor.await;
        } else {
            tokio::spawn(monitor);
        }
        Ok(ExecStream {
            exec: ex,
            stream,
            start_error,
            tty: st.tty,
        })
    }

    async fn launch_exec(
        &self,
        h: &Handle,
        st: &crate::exec::ExecState,
        console_size: Option<(u16, u16)>,
    ) -> Result<ShimClient> {
        let rec = h.snapshot();
        let dir = self.container_dir(&h.id);
        let rootfs = dir.join("rootfs");
        let user_spec = st.user.clone();
        let user = tokio::task::spawn_blocking(move || {
            berth_runtime::user::resolve_user(&rootfs, &user_spec)
        })
        .await
        .map_err(EngineError::internal)?
        .map_err(|e| EngineError::InvalidArgument(e.to_string()))?;

        // moby's CreateDaemonEnvironment, then the exec's own variables on top.
        let cenv = rec.config.env.clone().unwrap_or_default();
        let mut base = Vec::new();
        if !cenv.iter().any(|e| e.starts_with("PATH=")) {
            base.push(DEFAULT_PATH.to_string());
        }
        base.push(format!(
            "HOSTNAME={}",
            rec.config.hostname.clone().unwrap_or_default()
        ));
        if st.tty {
            base.push("TERM=xterm".into());
        }
        let base = merge_env(base, &cenv);
        let env = merge_env(base, &st.env);
        let cwd = Some(st.working_dir.clone())
            .filter(|w| !w.is_empty())
            .or_else(|| rec.config.working_dir.clone().filter(|w| !w.is_empty()))
            .unwrap_or_else(|| "/".into());

        let state_dir = self.exec_dir(&h.id, &st.id);
        tokio::fs::create_dir_all(&state_dir).await?;
        let cfg = ShimExecConfig {
            exec_id: st.id.clone(),
            init_pid: i32::try_from(rec.state.pid).unwrap_or(0),
            bundle: dir,
            args: std::iter::once(st.entrypoint.clone())
                .chain(st.arguments.iter().cloned())
                .collect(),
            env,
            cwd,
            user,
            privileged: st.privileged,
            tty: st.tty,
            open_stdin: st.attach_stdin,
            console_size: console_size.or(st.console_size),
        };
        let json = serde_json::to_vec(&cfg).map_err(EngineError::internal)?;
        tokio::fs::write(state_dir.join(EXEC_CONFIG_FILE), json).await?;
        ShimClient::launch_exec(&self.cfg.self_exe, &state_dir).await?;
        Ok(ShimClient::new(state_dir))
    }

    /// `POST /exec/{id}/resize`.
    pub async fn resize_exec(&self, id: &str, height: u16, width: u16) -> Result<()> {
        let ex = self.execs.get(id)?;
        let st = ex.snapshot();
        if !st.running {
            return Err(EngineError::Conflict(format!(
                "Exec {id} is not running, so it can not be resized."
            )));
        }
        ShimClient::new(self.exec_dir(&st.container_id, id))
            .resize(height, width)
            .await
    }

    /// `GET /exec/{id}/json`, fields in dockerd's order.
    pub fn inspect_exec(&self, id: &str) -> Result<Value> {
        let st = self.execs.get(id)?.snapshot();
        let mut v = json!({
            "ID": st.id,
            "Running": st.running,
            "ExitCode": st.exit_code,
            "ProcessConfig": {
                "tty": st.tty,
                "entrypoint": st.entrypoint,
                "arguments": st.arguments,
                "privileged": st.privileged,
                "user": st.user,
            },
            "OpenStdin": st.attach_stdin,
            "OpenStderr": st.attach_stderr,
            "OpenStdout": st.attach_stdout,
            // dockerd 20.10 reports false until its exec GC runs.
            "CanRemove": false,
            "ContainerID": st.container_id,
            "DetachKeys": st.detach_keys,
            "Pid": st.pid,
        });
        if st.user.is_empty() {
            // `user,omitempty` in dockerd's ProcessConfig.
            if let Some(pc) = v["ProcessConfig"].as_object_mut() {
                pc.remove("user");
            }
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::merge_env;

    #[test]
    fn env_overrides_replace_in_place() {
        let base = vec!["PATH=/bin".to_string(), "A=1".to_string()];
        let out = merge_env(base, &["A=2".into(), "B=3".into()]);
        assert_eq!(out, vec!["PATH=/bin", "A=2", "B=3"]);
    }
}

//! The daemon's core: containers' state machine, restart policies and recovery, over the image
//! store (`berth-image`) and the runtime (`berth-runtime`, reached only through `berth shim`).
//! It knows nothing of HTTP; `berth-api` maps requests onto these calls.

pub mod build;
pub mod container;
pub mod detach_keys;
pub mod disk_usage;
pub mod error;
pub mod events;
pub mod exec;
pub mod images;
pub mod logs;
pub mod names;
pub mod network;
pub mod prune;
pub mod registry;
pub mod resources;
pub mod shim;
pub mod signals;
pub mod system;
pub mod volume;

pub use container::lifecycle::{AttachTarget, WaitCondition};
pub use error::{EngineError, Result};
pub use logs::{LogEntry, LogOptions};

use berth_image::ImageService;
use berth_store::MetadataDb;
use container::{ContainerRecord, Handle, Registry};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    /// The `berth` binary, re-executed as `berth shim` for each container.
    pub self_exe: PathBuf,
    /// `--builder-cache-max-size`: the classic builder's cache is cut back to this many
    /// bytes (least recently used steps first) after each build; None or 0: no cap.
    pub builder_cache_max_size: Option<u64>,
    /// dockerd's registry flags (insecure registries, mirrors, transfer limits).
    pub registry: registry::RegistryOptions,
}

pub struct Engine {
    pub cfg: EngineConfig,
    pub db: Arc<MetadataDb>,
    pub images: Arc<ImageService>,
    pub containers: Registry,
    pub engine_id: String,
    pub events: events::EventBus,
    pub execs: exec::ExecRegistry,
    pub networks: network::Networks,
    pub volumes: volume::Volumes,
    /// The registry client: connection pools and tokens shared by every pull and push.
    pub registry: berth_distribution::Client,
    pub(crate) pull_leases: registry::Leases,
    shutting_down: AtomicBool,
}

impl Engine {
    pub async fn open(cfg: EngineConfig) -> Result<Arc<Engine>> {
        for d in [
            cfg.data_root.clone(),
            cfg.data_root.join("containers"),
            cfg.exec_root.join("shims"),
            cfg.exec_root.join("runtime"),
        ] {
            tokio::fs::create_dir_all(&d).await?;
        }
        let registry = cfg.registry.client()?;
        let db = Arc::new(MetadataDb::open(&cfg.data_root.join("berth.db"))?);
        let images = Arc::new(ImageService::open(&cfg.data_root, db.clone())?);
        let _ = images.layers().sweep_temp();
        let id_file = cfg.data_root.join("engine-id");
        let engine_id = match tokio::fs::read_to_string(&id_file).await {
            Ok(s) if !s.trim().is_empty() => s.trim().to_string(),
            _ => {
                let id = names::random_id();
                tokio::fs::write(&id_file, &id).await?;
                id
            }
        };
        let engine = Arc::new(Engine {
            cfg,
            db,
            images,
            containers: Registry::default(),
            engine_id,
            events: events::EventBus::default(),
            execs: exec::ExecRegistry::default(),
            networks: network::Networks::default(),
            volumes: volume::Volumes::default(),
            registry,
            pull_leases: registry::Leases::default(),
            shutting_down: AtomicBool::new(false),
        });
        engine.open_networks().await?;
        engine.open_volumes().await?;
        engine.recover().await?;
        engine.recover_networks().await;
        Ok(engine)
    }

    /// Re-attaches to containers whose shims survived a daemon restart and records the exit of
    /// those that ended meanwhile (applying their restart policies).
    async fn recover(self: &Arc<Self>) -> Result<()> {
        for (id, _name, json) in self.db.list_containers()? {
            let rec: ContainerRecord = match serde_json::from_str(&json) {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(container = %id, "unreadable record, skipped: {e}");
                    continue;
                }
            };
            let handle = Handle::new(rec);
            if let Err(e) = self.containers.insert(handle) {
                tracing::error!(container = %id, "cannot restore: {e}");
            }
        }
        self.recount_volume_devices();
        for h in self.containers.all() {
            let rec = h.snapshot();
            let shim = shim::ShimClient::new(self.shim_dir(&h.id));
            if rec.state.status == container::Status::Restarting {
                // The daemon died during a restart back-off: finish the restart.
                self.release_rootfs(&h.id).await;
                self.schedule_restart(h.clone(), &rec);
                continue;
            }
            if rec.state.is_running() && shim.alive().await {
                tracing::info!(container = %h.id, "re-attached to running container");
                self.spawn_monitor(h.clone());
                continue;
            }
            if rec.state.is_running() {
                let info = shim.exit_file().unwrap_or(shim::ExitInfo {
                    exit_code: 255,
                    oom_killed: false,
                    finished_at: None,
                });
                self.record_exit(&h, info).await;
            } else {
                self.release_rootfs(&h.id).await;
            }
        }
        self.sweep_runtime_state().await;
        self.autostart_on_boot();
        Ok(())
    }

    /// dockerd's restore: on daemon start, `always` containers run again even when they had
    /// been stopped by hand, `unless-stopped` ones unless they were.
    fn autostart_on_boot(self: &Arc<Self>) {
        use bollard_stubs::models::RestartPolicyNameEnum as P;
        for h in self.containers.all() {
            let rec = h.snapshot();
            if rec.state.status != container::Status::Exited || rec.state.started_at.is_none() {
                continue;
            }
            let policy = rec.host_config.restart_policy.as_ref().and_then(|p| p.name);
            let start = match policy {
                Some(P::ALWAYS) => true,
                Some(P::UNLESS_STOPPED) => !rec.state.stopped_by_user,
                _ => false,
            };
            if start {
                let engine = self.clone();
                tokio::spawn(async move {
                    if let Err(e) = engine.start_container(&h.id).await {
                        tracing::warn!(container = %h.id, "start on daemon boot failed: {e}");
                    }
                });
            }
        }
    }

    /// A crashed create can leave libcontainer state and cgroups behind. The exec root is ours
    /// alone, so anything there not belonging to a running container goes; cgroups are shared
    /// with other engines on the host, so only those of our own stopped containers are removed.
    async fn sweep_runtime_state(&self) {
        let recs: Vec<ContainerRecord> =
            self.containers.all().iter().map(|h| h.snapshot()).collect();
        let running: std::collections::HashSet<&str> = recs
            .iter()
            .filter(|r| r.state.is_running())
            .map(|r| r.id.as_str())
            .collect();
        for dir in [self.runtime_root(), self.cfg.exec_root.join("shims")] {
            let Ok(rd) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in rd.flatten() {
                if !running.contains(e.file_name().to_string_lossy().as_ref()) {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        // Namespace pins of containers that are gone (a crash between pinning and recording).
        if let Ok(rd) = std::fs::read_dir(self.cfg.exec_root.join("netns")) {
            for e in rd.flatten() {
                if !running.contains(e.file_name().to_string_lossy().as_ref()) {
                    let _ = berth_network::netns::remove(&e.path());
                }
            }
        }
        // Staged volume subpaths of containers that are not running.
        if let Ok(rd) = std::fs::read_dir(self.cfg.exec_root.join("mounts")) {
            for e in rd.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                if !running.contains(id.as_str()) {
                    self.release_subpaths(&id);
                }
            }
        }
        self.sweep_build_leftovers();
        let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else {
            return;
        };
        let hierarchies: Vec<PathBuf> = hierarchies.flatten().map(|e| e.path()).collect();
        for rec in recs.iter().filter(|r| !running.contains(r.id.as_str())) {
            for h in &hierarchies {
                let cg = h.join("berth").join(&rec.id);
                if cg.exists() && std::fs::remove_dir(&cg).is_ok() {
                    tracing::info!(path = %cg.display(), "removed stale cgroup");
                }
            }
        }
    }

    /// What builds a crash interrupted left mounted (no build outlives its daemon): secret
    /// tmpfs under the exec root, scratch overlays and extracted contexts under the data
    /// root's tmp.
    fn sweep_build_leftovers(&self) {
        let tmp = self.cfg.data_root.join("tmp");
        let secrets = self.cfg.exec_root.join("build-secrets");
        let mut stale: Vec<PathBuf> = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .map(|p| PathBuf::from(p.replace("\\040", " ")))
            .filter(|p| p.starts_with(&tmp) || p.starts_with(&secrets))
            .collect();
        // Deepest first: a mount inside another goes before it.
        stale.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for p in &stale {
            match rustix::mount::unmount(p, rustix::mount::UnmountFlags::DETACH) {
                Ok(()) => tracing::info!(path = %p.display(), "unmounted a build's leftover"),
                Err(e) => tracing::warn!(path = %p.display(), "build leftover: unmount: {e}"),
            }
        }
        for dir in [tmp, secrets] {
            let Ok(rd) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in rd.flatten() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }

    /// Containers keep running when the daemon stops (their shims own them).
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    pub(crate) fn shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// Writes a request body to an anonymous file under the data root (gone on a crash), so an
    /// upload can be checked end to end before any of it is used.
    pub async fn spool_upload<S, E>(&self, body: S, what: &str) -> Result<std::fs::File>
    where
        S: futures_util::Stream<Item = std::result::Result<bytes::Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        use futures_util::StreamExt;
        use tokio::io::AsyncWriteExt;
        let tmp = self.cfg.data_root.join("tmp");
        tokio::fs::create_dir_all(&tmp).await?;
        let mut spool = tokio::fs::File::from_std(tempfile::tempfile_in(&tmp)?);
        let mut body = body;
        while let Some(chunk) = body.next().await {
            let chunk =
                chunk.map_err(|e| EngineError::InvalidArgument(format!("reading {what}: {e}")))?;
            spool.write_all(&chunk).await?;
        }
        spool.flush().await?;
        Ok(spool.into_std().await)
    }

    pub(crate) fn persist(&self, h: &Handle) -> Result<()> {
        let rec = h.snapshot();
        let json = serde_json::to_string(&rec).map_err(EngineError::internal)?;
        self.db.put_container(&rec.id, &rec.name, &json)?;
        Ok(())
    }

    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.cfg.data_root.join("containers").join(id)
    }

    pub fn shim_dir(&self, id: &str) -> PathBuf {
        self.cfg.exec_root.join("shims").join(id)
    }

    pub fn runtime_root(&self) -> PathBuf {
        self.cfg.exec_root.join("runtime")
    }
}

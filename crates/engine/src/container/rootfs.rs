//! Everything a container needs on disk before its shim starts: the overlay rootfs, the
//! generated /etc files, and the OCI bundle (config.json).

use super::Handle;
use crate::error::{EngineError, Result};
use crate::Engine;
use berth_runtime::spec::{NetworkMode, Resources, SpecOptions};
use oci_spec::runtime::{Mount, MountBuilder};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where `--init` puts the init process, as Docker does.
const INIT_PATH: &str = "/sbin/docker-init";

pub struct Bundle {
    pub dir: PathBuf,
    pub rootfs: PathBuf,
}

fn bind(dest: &str, source: &Path, readonly: bool) -> Result<Mount> {
    let mut opts = vec!["rbind".to_string(), "rprivate".to_string()];
    if readonly {
        opts.push("ro".into());
    }
    MountBuilder::default()
        .destination(dest)
        .typ("bind")
        .source(source)
        .options(opts)
        .build()
        .map_err(EngineError::internal)
}

/// Each mount's target resolved inside the container's root and made there (runc's
/// `MkdirAllInRoot`), so the runtime gets symlink-free destinations: a symlink the image
/// planted at a mount target leads inside the container, never onto the host.
async fn resolve_targets(rootfs: &Path, mounts: Vec<Mount>) -> Result<Vec<Mount>> {
    let rootfs = rootfs.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let root = berth_store::inroot::open_root(&rootfs)?;
        mounts
            .into_iter()
            .map(|mut m| {
                let dest = m.destination().to_string_lossy().into_owned();
                let file = m.typ().as_deref() == Some("bind")
                    && m.source().as_ref().is_some_and(|s| !s.is_dir());
                let resolved =
                    berth_store::inroot::mkdir_all_in_root(&root, &dest, file).map_err(|e| {
                        EngineError::InvalidArgument(format!(
                            "error while creating mount target {dest}: {e}"
                        ))
                    })?;
                m.set_destination(resolved.into());
                Ok(m)
            })
            .collect()
    })
    .await
    .map_err(EngineError::internal)?
}

impl Engine {
    /// Mounts the rootfs and writes the bundle. Idempotent: a leftover mount is replaced.
    pub(crate) async fn prepare_bundle(
        &self,
        h: &Arc<Handle>,
        network: NetworkMode,
    ) -> Result<(Bundle, SpecOptions)> {
        let rec = &h.snapshot();
        let dir = self.container_dir(&rec.id);
        let rootfs = dir.join("rootfs");
        let image = self.image_by_name(&rec.image_id).await?;
        let images = self.images.clone();
        let (d, r) = (dir.clone(), rootfs.clone());
        tokio::task::spawn_blocking(move || -> Result<()> {
            let lowers = images.layer_dirs(&image)?;
            let _ = berth_store::overlay::unmount(&r);
            std::fs::create_dir_all(&r)?;
            berth_store::overlay::mount_rootfs(&lowers, &d.join("upper"), &d.join("work"), &r)?;
            Ok(())
        })
        .await
        .map_err(EngineError::internal)??;

        let hc = &rec.host_config;
        let hostname = rec.config.hostname.clone().unwrap_or_default();
        let user_mounts = self.mounts_up(h, &rootfs).await?;
        let mut mounts = Vec::new();
        let shared = hc
            .network_mode
            .as_deref()
            .and_then(|m| m.strip_prefix("container:"));
        let etc_dir = match shared {
            // dockerd: a container in another's namespace sees that one's files.
            Some(other) => self.container_dir(other),
            None => {
                for (name, content) in self.etc_files(rec)? {
                    tokio::fs::write(dir.join(name), content).await?;
                }
                dir.clone()
            }
        };
        for name in ["hosts", "hostname", "resolv.conf"] {
            let dest = format!("/etc/{name}");
            // A user's own file there wins, as with dockerd.
            if !user_mounts
                .iter()
                .any(|m| m.destination() == Path::new(&dest))
            {
                mounts.push(bind(&dest, &etc_dir.join(name), false)?);
            }
        }

        let init = hc.init.unwrap_or(false);
        if init {
            // Docker's --init: our own binary acts as tini (see `berth init`), read-only.
            mounts.push(bind(INIT_PATH, &self.cfg.self_exe, true)?);
        }
        mounts.extend(user_mounts);
        let mut mounts = resolve_targets(&rootfs, mounts).await?;
        // Parents before what is mounted inside them.
        mounts.sort_by_key(|m| m.destination().components().count());

        let mut env = rec.config.env.clone().unwrap_or_default();
        for var in &rec.transient_env {
            super::create::set_env(&mut env, var.clone());
        }
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.insert(0, format!("PATH={DEFAULT_PATH}"));
        }
        if !env.iter().any(|e| e.starts_with("HOSTNAME=")) {
            env.push(format!("HOSTNAME={hostname}"));
        }
        if rec.tty() && !env.iter().any(|e| e.starts_with("TERM=")) {
            env.push("TERM=xterm".into());
        }
        let cwd = rec
            .config
            .working_dir
            .clone()
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into());
        let user_spec = rec.config.user.clone().unwrap_or_default();
        let r = rootfs.clone();
        let user =
            tokio::task::spawn_blocking(move || berth_runtime::user::resolve_user(&r, &user_spec))
                .await
                .map_err(EngineError::internal)?
                .map_err(|e| EngineError::InvalidArgument(e.to_string()))?;

        let mut security = (false, false);
        for opt in hc.security_opt.clone().unwrap_or_default() {
            match opt.as_str() {
                "no-new-privileges" | "no-new-privileges=true" | "no-new-privileges:true" => {
                    security.0 = true
                }
                "seccomp=unconfined" | "seccomp:unconfined" => security.1 = true,
                "no-new-privileges=false" | "no-new-privileges:false" => {}
                other if other.starts_with("label") || other.starts_with("apparmor") => {}
                other => {
                    return Err(EngineError::InvalidArgument(format!(
                        "invalid --security-opt: {other:?}"
                    )))
                }
            }
        }
        let opts = SpecOptions {
            id: rec.id.clone(),
            args: init
                .then(|| [INIT_PATH.to_string(), "--".to_string()])
                .into_iter()
                .flatten()
                .chain(std::iter::once(rec.path.clone()))
                .chain(rec.args.iter().cloned())
                .collect(),
            env,
            cwd,
            user,
            hostname,
            domainname: rec.config.domainname.clone().unwrap_or_default(),
            tty: rec.tty(),
            rootfs: rootfs.clone(),
            readonly_rootfs: hc.readonly_rootfs.unwrap_or(false),
            privileged: hc.privileged.unwrap_or(false),
            cap_add: hc.cap_add.clone().unwrap_or_default(),
            cap_drop: hc.cap_drop.clone().unwrap_or_default(),
            no_new_privileges: security.0,
            seccomp_unconfined: security.1,
            resources: Resources {
                memory: hc.memory.filter(|m| *m > 0),
                memory_swap: hc.memory_swap.filter(|m| *m != 0),
                memory_reservation: hc.memory_reservation.filter(|m| *m > 0),
                cpu_shares: hc.cpu_shares.filter(|c| *c > 0).map(|c| c as u64),
                nano_cpus: hc.nano_cpus.filter(|c| *c > 0),
                cpu_quota: hc.cpu_quota.filter(|c| *c > 0),
                cpu_period: hc.cpu_period.filter(|c| *c > 0).map(|c| c as u64),
                cpuset_cpus: hc.cpuset_cpus.clone().filter(|c| !c.is_empty()),
                pids_limit: hc.pids_limit.filter(|p| *p > 0),
                blkio_weight: hc.blkio_weight.filter(|w| *w > 0),
            },
            network,
            extra_mounts: mounts,
            cgroups_path: format!("/berth/{}", rec.id),
            sysctls: hc
                .sysctls
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect::<HashMap<_, _>>(),
            shm_size: hc.shm_size.unwrap_or(64 << 20).max(0) as u64,
            oom_score_adj: hc.oom_score_adj.map(|v| v as i32),
            rlimits: Vec::new(),
        };
        Ok((Bundle { dir, rootfs }, opts))
    }

    pub(crate) async fn release_rootfs(&self, id: &str) {
        let rootfs = self.container_dir(id).join("rootfs");
        let _ = tokio::task::spawn_blocking(move || berth_store::overlay::unmount(&rootfs)).await;
    }
}

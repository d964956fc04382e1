//! Start and exit: a container's mount points become OCI mounts (volume devices mounted,
//! image content copied into new volumes, missing `-v` sources created) and are released
//! when it exits.

use super::MountPoint;
use crate::container::{ContainerRecord, Handle};
use crate::error::{EngineError, Result};
use crate::Engine;
use berth_volume::local::LocalOptions;
use berth_volume::spec::MountKind;
use oci_spec::runtime::{Mount, MountBuilder};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn oci_mount(typ: &str, source: &Path, dest: &str, options: Vec<String>) -> Result<Mount> {
    MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source)
        .options(options)
        .build()
        .map_err(EngineError::internal)
}

impl Engine {
    /// Where a mount point's content is on the host (None for tmpfs), as inspect shows it.
    pub(crate) fn mount_source(&self, m: &MountPoint) -> Option<PathBuf> {
        let (base, sub) = self.mount_base(m)?;
        Some(match sub {
            Some(p) => base.join(p),
            None => base,
        })
    }

    /// A mount point's host directory or file, and the `volume-subpath` below it.
    pub(crate) fn mount_base(&self, m: &MountPoint) -> Option<(PathBuf, Option<String>)> {
        match &m.spec.kind {
            MountKind::Bind { source, .. } => Some((source.clone(), None)),
            MountKind::Volume { subpath, .. } => {
                Some((self.volume_data(m.volume.as_deref()?), subpath.clone()))
            }
            MountKind::Tmpfs { .. } => None,
        }
    }

    /// Makes the container's mount points ready and returns them as OCI mounts, parents
    /// first. `rootfs` is the container's mounted root (for copy-up). On error, what was
    /// mounted here is released again.
    pub(crate) async fn mounts_up(&self, h: &Arc<Handle>, rootfs: &Path) -> Result<Vec<Mount>> {
        let rec = h.snapshot();
        let mut acquired: Vec<String> = Vec::new();
        let res = self.mounts_up_inner(h, &rec, rootfs, &mut acquired).await;
        match &res {
            Ok(_) => {
                self.volumes.holders().insert(rec.id.clone());
            }
            Err(_) => {
                self.release_subpaths(&rec.id);
                for name in &acquired {
                    self.release_volume_device(name).await;
                }
            }
        }
        res
    }

    async fn mounts_up_inner(
        &self,
        h: &Arc<Handle>,
        rec: &ContainerRecord,
        rootfs: &Path,
        acquired: &mut Vec<String>,
    ) -> Result<Vec<Mount>> {
        let mut out = Vec::new();
        for m in &rec.mounts {
            let s = &m.spec;
            match &s.kind {
                MountKind::Tmpfs { options } => {
                    let mut opts = options.clone();
                    opts.extend(s.read_only.then(|| "ro".to_string()));
                    out.push(oci_mount(
                        "tmpfs",
                        Path::new("tmpfs"),
                        &s.destination,
                        opts,
                    )?);
                    continue;
                }
                MountKind::Bind {
                    source,
                    create_missing,
                    ..
                } => {
                    if !source.exists() {
                        if !create_missing {
                            return Err(EngineError::InvalidArgument(format!(
                                "invalid mount config for type \"bind\": bind source path does not exist: {}",
                                source.display()
                            )));
                        }
                        tokio::fs::create_dir_all(source).await?;
                    }
                }
                MountKind::Volume { .. } => {
                    let Some(name) = m.volume.as_deref() else {
                        continue;
                    };
                    self.acquire_volume_device(name).await?;
                    acquired.push(name.to_string());
                    if m.copy_pending {
                        self.copy_up(rootfs, &s.destination, name).await?;
                    }
                }
            }
            let source = match &s.kind {
                MountKind::Volume {
                    subpath: Some(p), ..
                } => {
                    let name = m.volume.as_deref().unwrap_or_default();
                    self.stage_subpath(&rec.id, out.len(), name, p).await?
                }
                _ => match self.mount_source(m) {
                    Some(s) => s,
                    None => continue,
                },
            };
            let recursive = !matches!(
                s.kind,
                MountKind::Bind {
                    non_recursive: true,
                    ..
                }
            );
            let propagation = s
                .effective_propagation()
                .unwrap_or(berth_volume::Propagation::Rprivate);
            let mut opts = vec![
                if recursive { "rbind" } else { "bind" }.to_string(),
                propagation.as_str().to_string(),
            ];
            if s.read_only {
                // Read-only all the way down, as dockerd does for API ≥ 1.44.
                opts.extend(["ro".to_string(), "rro".to_string()]);
            }
            out.push(oci_mount("bind", &source, &s.destination, opts)?);
        }
        if rec.mounts.iter().any(|m| m.copy_pending) {
            // Copy-up happens once, at the first start (dockerd's happens at create).
            h.update(|r| r.mounts.iter_mut().for_each(|m| m.copy_pending = false));
            self.persist(h)?;
        }
        for m in rec.mounts.iter().filter(|m| m.volume.is_some()) {
            self.emit_volume(
                m.volume.as_deref().unwrap_or_default(),
                "mount",
                &[
                    ("container", rec.id.clone()),
                    ("destination", m.spec.destination.clone()),
                    ("driver", "local".into()),
                    ("propagation", String::new()),
                    ("read/write", (!m.spec.read_only).to_string()),
                ],
            );
        }
        Ok(out)
    }

    /// Releases what `mounts_up` acquired, when the container has exited. Idempotent.
    pub(crate) async fn mounts_down(&self, rec: &ContainerRecord) {
        self.release_subpaths(&rec.id);
        if !self.volumes.holders().remove(&rec.id) {
            return;
        }
        for m in &rec.mounts {
            let Some(name) = m.volume.as_deref() else {
                continue;
            };
            self.release_volume_device(name).await;
            self.emit_volume(
                name,
                "unmount",
                &[("container", rec.id.clone()), ("driver", "local".into())],
            );
        }
    }

    /// Copies the image's content at `dest` into volume `name` if the volume is empty.
    async fn copy_up(&self, rootfs: &Path, dest: &str, name: &str) -> Result<bool> {
        let (rootfs, dest, data) = (
            rootfs.to_path_buf(),
            dest.to_string(),
            self.volume_data(name),
        );
        tokio::task::spawn_blocking(move || -> Result<bool> {
            let root = berth_store::inroot::open_root(&rootfs)?;
            Ok(berth_volume::copy::copy_up(root.as_fd(), &dest, &data)?)
        })
        .await
        .map_err(EngineError::internal)?
    }

    /// Where a container's `volume-subpath` sources are staged, under the exec root.
    fn subpath_staging(&self, id: &str) -> PathBuf {
        self.cfg.exec_root.join("mounts").join(id)
    }

    /// A `volume-subpath` is handed to the runtime as a staging bind of exactly what was
    /// resolved beneath the volume: the volume's content is the containers' to change, and a
    /// path would be resolved again, on the host, by the runtime.
    async fn stage_subpath(
        &self,
        id: &str,
        index: usize,
        name: &str,
        sub: &str,
    ) -> Result<PathBuf> {
        let data = self.volume_data(name);
        let staging = self.subpath_staging(id).join(index.to_string());
        let sub = sub.to_string();
        tokio::task::spawn_blocking(move || -> Result<PathBuf> {
            let fd = open_beneath(&data, &sub)?;
            let is_dir = rustix::fs::fstat(&fd)
                .map(|st| rustix::fs::FileType::from_raw_mode(st.st_mode).is_dir())
                .map_err(std::io::Error::from)?;
            if let Some(parent) = staging.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let made = if is_dir {
                std::fs::create_dir(&staging)
            } else {
                std::fs::File::create(&staging).map(drop)
            };
            if let Err(e) = made {
                if e.kind() != std::io::ErrorKind::AlreadyExists {
                    return Err(e.into());
                }
            }
            bind_fd(&fd, rustix::fs::CWD, &staging)?;
            Ok(staging)
        })
        .await
        .map_err(EngineError::internal)?
    }

    /// Detaches and removes a container's staged subpath sources (none is no error).
    pub(crate) fn release_subpaths(&self, id: &str) {
        let dir = self.subpath_staging(id);
        let Ok(rd) = std::fs::read_dir(&dir) else {
            return;
        };
        for e in rd.flatten() {
            let _ = nix::mount::umount2(&e.path(), nix::mount::MntFlags::MNT_DETACH);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Mounts the device of a volume with `local` driver options for its first user.
    async fn acquire_volume_device(&self, name: &str) -> Result<()> {
        let Some(rec) = self.volumes.get(name) else {
            return Err(EngineError::NotFound(format!("get {name}: no such volume")));
        };
        let data = self.volume_data(name);
        tokio::fs::create_dir_all(&data).await?;
        let Some(opts) = LocalOptions::parse(&rec.options)? else {
            return Ok(());
        };
        let first = {
            let mut mounted = self.volumes.mounted();
            let n = mounted.entry(name.to_string()).or_insert(0);
            *n += 1;
            *n == 1
        };
        if first {
            let res = tokio::task::spawn_blocking(move || opts.mount(&data))
                .await
                .map_err(EngineError::internal)?;
            if let Err(e) = res {
                self.volumes.mounted().remove(name);
                return Err(EngineError::Internal(format!(
                    "error while mounting volume '{}': {e}",
                    self.volume_data(name).display()
                )));
            }
        }
        Ok(())
    }

    async fn release_volume_device(&self, name: &str) {
        let last = {
            let mut mounted = self.volumes.mounted();
            match mounted.get_mut(name) {
                Some(n) if *n > 1 => {
                    *n -= 1;
                    false
                }
                Some(_) => {
                    mounted.remove(name);
                    true
                }
                None => false,
            }
        };
        if last {
            let data = self.volume_data(name);
            let _ = tokio::task::spawn_blocking(move || berth_volume::local::unmount(&data)).await;
        }
    }

    /// After a daemon restart: containers recorded as running still hold their volumes'
    /// devices (those that died meanwhile release them when their exit is recorded).
    pub(crate) fn recount_volume_devices(&self) {
        let mut mounted = self.volumes.mounted();
        let mut holders = self.volumes.holders();
        mounted.clear();
        holders.clear();
        for h in self.containers.all() {
            let rec = h.snapshot();
            if !rec.state.is_running() {
                continue;
            }
            holders.insert(rec.id.clone());
            for name in rec.mounts.iter().filter_map(|m| m.volume.as_deref()) {
                let has_opts = self
                    .volumes
                    .get(name)
                    .is_some_and(|v| !v.options.is_empty());
                if has_opts {
                    *mounted.entry(name.to_string()).or_insert(0) += 1;
                }
            }
        }
    }
}

impl Engine {
    /// `Mounts` of inspect and of `GET /containers/json`, as dockerd shows them (tmpfs from
    /// `HostConfig.Tmpfs` is not listed).
    pub(crate) fn mounts_api(
        &self,
        rec: &ContainerRecord,
    ) -> Vec<bollard_stubs::models::MountPoint> {
        rec.mounts
            .iter()
            .filter(|m| !m.hidden)
            .map(|m| {
                let s = &m.spec;
                let (typ, driver) = match s.kind {
                    MountKind::Bind { .. } => ("bind", None),
                    MountKind::Volume { .. } => ("volume", Some("local".to_string())),
                    MountKind::Tmpfs { .. } => ("tmpfs", None),
                };
                bollard_stubs::models::MountPoint {
                    typ: Some(typ.into()),
                    name: m.volume.clone(),
                    source: Some(
                        self.mount_source(m)
                            .map(|p| p.to_string_lossy().into_owned())
                            .unwrap_or_default(),
                    ),
                    destination: Some(s.destination.clone()),
                    driver,
                    mode: Some(s.mode.clone()),
                    rw: Some(!s.read_only),
                    propagation: Some(
                        s.effective_propagation()
                            .map(|p| p.as_str().to_string())
                            .unwrap_or_default(),
                    ),
                }
            })
            .collect()
    }
}

/// Opens `sub` beneath `base`: symlinks and `..` that stay beneath it are followed, any that
/// would leave it is an error, as dockerd's `safepath` (a volume's content is the containers'
/// to change).
pub(crate) fn open_beneath(base: &Path, sub: &str) -> Result<std::os::fd::OwnedFd> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    let root = berth_store::inroot::open_root(base)?;
    rustix::fs::openat2(
        &root,
        sub,
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
    )
    .map_err(|e| {
        EngineError::InvalidArgument(format!(
            "cannot access path {}: {e}",
            base.join(sub).display()
        ))
    })
}

/// Bind-mounts (recursively) what `fd` names onto `target` relative to `dir` (an empty
/// `target`: `dir` itself).
pub(crate) fn bind_fd(
    fd: &std::os::fd::OwnedFd,
    dir: std::os::fd::BorrowedFd<'_>,
    target: &Path,
) -> Result<()> {
    use rustix::mount::{MoveMountFlags, OpenTreeFlags};
    let tree = rustix::mount::open_tree(
        fd,
        "",
        OpenTreeFlags::OPEN_TREE_CLONE
            | OpenTreeFlags::AT_RECURSIVE
            | OpenTreeFlags::AT_EMPTY_PATH
            | OpenTreeFlags::OPEN_TREE_CLOEXEC,
    )
    .map_err(|e| EngineError::Internal(format!("open_tree: {e}")))?;
    let mut flags = MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH;
    if target.as_os_str().is_empty() {
        flags |= MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH;
    }
    rustix::mount::move_mount(&tree, "", dir, target, flags)
        .map_err(|e| EngineError::Internal(format!("mount on {}: {e}", target.display())))
}

/// `docker ps --filter volume=X`: a volume name or a mount destination.
pub(crate) fn uses_volume(rec: &ContainerRecord, want: &str) -> bool {
    rec.mounts
        .iter()
        .any(|m| m.volume.as_deref() == Some(want) || m.spec.destination == want)
}

//! Container creation's half of volumes: the request's `-v`, `--mount`, `--tmpfs`,
//! `--volumes-from` and the image's `VOLUME`s become the container's mount points, in
//! dockerd's order of precedence (`registerMountPoints`), and the volumes they name are
//! created.

use super::manage::NewVolume;
use super::MountPoint;
use crate::error::{EngineError, Result};
use crate::Engine;
use berth_volume::spec::{self, MountKind, MountSpec};
use bollard_stubs::models::{ContainerConfig, HostConfig};

fn duplicate(dest: &str) -> EngineError {
    EngineError::InvalidArgument(format!("Duplicate mount point: {dest}"))
}

/// The mount points being planned: those inherited through `--volumes-from` (which the
/// container's own may replace) and the container's own (which may not repeat a destination).
#[derive(Default)]
struct Planned {
    inherited: Vec<MountPoint>,
    own: Vec<MountPoint>,
}

impl Planned {
    fn has(&self, dest: &str) -> bool {
        self.inherited
            .iter()
            .chain(&self.own)
            .any(|m| m.spec.destination == dest)
    }

    fn add(&mut self, spec: MountSpec, hidden: bool) -> Result<()> {
        if self
            .own
            .iter()
            .any(|m| m.spec.destination == spec.destination)
        {
            return Err(duplicate(&spec.destination));
        }
        self.inherited
            .retain(|m| m.spec.destination != spec.destination);
        let volume = match &spec.kind {
            MountKind::Volume { name, .. } => name.clone(),
            _ => None,
        };
        let copy_pending = matches!(spec.kind, MountKind::Volume { no_copy: false, .. });
        self.own.push(MountPoint {
            spec,
            volume,
            copy_pending,
            hidden,
        });
        Ok(())
    }
}

impl Engine {
    /// The container's mount points; named volumes that do not exist yet and anonymous ones
    /// are created. Returns them with the names of the volumes created here (to remove if the
    /// container cannot be registered). The caller holds `volumes.lock`.
    pub(crate) async fn plan_mounts(
        &self,
        hc: &HostConfig,
        cfg: &ContainerConfig,
    ) -> Result<(Vec<MountPoint>, Vec<String>)> {
        let mut plan = Planned::default();
        for from in hc.volumes_from.iter().flatten() {
            let (container, rw) = spec::parse_volumes_from(from)?;
            // 400, not 404: the docker CLI takes a 404 from create for a missing image.
            let other = self
                .containers
                .find(&container)
                .map_err(|_| {
                    EngineError::InvalidArgument(format!("No such container: {container}"))
                })?
                .snapshot();
            for mut m in other.mounts.into_iter().filter(|m| !m.hidden) {
                if let Some(rw) = rw {
                    m.spec.read_only = !rw;
                }
                // dockerd shows inherited mounts without their mode.
                m.spec.mode.clear();
                m.copy_pending = false;
                plan.inherited
                    .retain(|p| p.spec.destination != m.spec.destination);
                plan.inherited.push(m);
            }
        }
        for raw in hc.binds.iter().flatten() {
            plan.add(spec::parse_bind(raw)?, false)?;
        }
        for m in hc.mounts.iter().flatten() {
            plan.add(spec::from_api(m)?, false)?;
        }
        for (dest, opts) in hc.tmpfs.iter().flatten() {
            plan.add(spec::parse_tmpfs(dest, opts)?, true)?;
        }
        for dest in cfg.volumes.iter().flatten() {
            let s = spec::anonymous(dest)?;
            if !plan.has(&s.destination) {
                plan.add(s, false)?;
            }
        }
        let mut points = plan.inherited;
        points.extend(plan.own);

        let driver = hc.volume_driver.clone().unwrap_or_default();
        let mut created = Vec::new();
        for m in &mut points {
            let MountKind::Volume {
                name,
                driver: d,
                driver_opts,
                labels,
                ..
            } = &mut m.spec.kind
            else {
                continue;
            };
            if m.volume.is_some() && name.is_none() {
                // Inherited through --volumes-from: the volume exists already.
                continue;
            }
            let want = if d.is_empty() || d == "local" {
                driver.clone()
            } else {
                d.clone()
            };
            let res = self
                .ensure_volume(NewVolume {
                    name: name.clone(),
                    driver: want,
                    options: driver_opts.clone(),
                    labels: labels.clone(),
                })
                .await;
            let (rec, new) = match res {
                Ok(r) => r,
                Err(e) => {
                    self.forget_new_volumes(&created).await;
                    return Err(e);
                }
            };
            if new {
                created.push(rec.name.clone());
            }
            *d = rec.driver.clone();
            m.volume = Some(rec.name);
        }
        // Parents before what is mounted inside them, as dockerd sorts by depth.
        points.sort_by_key(|m| m.spec.destination.matches('/').count());
        Ok((points, created))
    }

    /// Undoes `plan_mounts`' volume creation when the container is not created after all.
    /// The caller holds `volumes.lock`.
    pub(crate) async fn forget_new_volumes(&self, names: &[String]) {
        for name in names {
            if let Err(e) = self.delete_volume_locked(name).await {
                tracing::warn!(volume = %name, "cannot undo volume creation: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bind(dest: &str) -> MountSpec {
        MountSpec {
            kind: MountKind::Bind {
                source: "/src".into(),
                create_missing: true,
                non_recursive: false,
            },
            destination: dest.into(),
            read_only: false,
            mode: String::new(),
            propagation: None,
        }
    }

    #[test]
    fn own_mounts_replace_inherited_ones_but_not_each_other() {
        let mut p = Planned::default();
        p.inherited.push(MountPoint {
            spec: bind("/d"),
            volume: None,
            copy_pending: false,
            hidden: false,
        });
        p.add(bind("/d"), false).unwrap();
        assert!(p.inherited.is_empty());
        assert_eq!(p.own.len(), 1);
        let err = p.add(bind("/d"), true).unwrap_err();
        assert_eq!(err.to_string(), "Duplicate mount point: /d");
        assert!(p.has("/d") && !p.has("/e"));
    }

    #[test]
    fn only_volumes_are_copied_up() {
        let mut p = Planned::default();
        p.add(bind("/b"), false).unwrap();
        let vol = |no_copy| MountSpec {
            kind: MountKind::Volume {
                name: Some("v".into()),
                driver: String::new(),
                driver_opts: Default::default(),
                labels: Default::default(),
                no_copy,
                subpath: None,
            },
            destination: if no_copy { "/n" } else { "/v" }.into(),
            read_only: false,
            mode: "z".into(),
            propagation: None,
        };
        p.add(vol(false), false).unwrap();
        p.add(vol(true), false).unwrap();
        let pending: Vec<bool> = p.own.iter().map(|m| m.copy_pending).collect();
        assert_eq!(pending, vec![false, true, false]);
        assert_eq!(p.own[1].volume.as_deref(), Some("v"));
    }
}

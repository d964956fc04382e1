//! `/volumes`: create, list, inspect, remove and prune.

use super::{VolumeRecord, ANONYMOUS_LABEL};
use crate::container::inspect::{api_date, Filters};
use crate::error::{EngineError, Result};
use crate::prune::{check_keys, labels_pass};
use crate::Engine;
use berth_volume::local::LocalOptions;
use bollard_stubs::models::{
    Volume, VolumeCreateRequest, VolumeListResponse, VolumePruneResponse, VolumeScopeEnum,
};
use std::collections::HashMap;

const LOCAL: &str = "local";

fn no_such_volume(name: &str) -> EngineError {
    EngineError::NotFound(format!("get {name}: no such volume"))
}

fn bool_filter(key: &str, v: &str) -> Result<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(EngineError::InvalidArgument(format!(
            "invalid filter '{key}={v}'"
        ))),
    }
}

/// The volume a request asks for, before it exists.
pub(crate) struct NewVolume {
    pub name: Option<String>,
    pub driver: String,
    pub options: HashMap<String, String>,
    pub labels: HashMap<String, String>,
}

impl Engine {
    pub(crate) fn volume_api(&self, r: &VolumeRecord) -> Volume {
        Volume {
            name: r.name.clone(),
            driver: r.driver.clone(),
            mountpoint: self.volume_data(&r.name).to_string_lossy().into_owned(),
            created_at: api_date(&r.created_at),
            labels: r.labels.clone(),
            scope: Some(VolumeScopeEnum::LOCAL),
            options: r.options.clone(),
            ..Default::default()
        }
    }

    /// Returns the volume `req.name` names, creating it (and, without a name, an anonymous
    /// one) if it does not exist. The caller holds `volumes.lock`.
    pub(crate) async fn ensure_volume(&self, req: NewVolume) -> Result<(VolumeRecord, bool)> {
        let driver = match req.driver.as_str() {
            "" | LOCAL => LOCAL.to_string(),
            other => {
                return Err(EngineError::NotFound(format!(
                    "error looking up volume plugin {other}: plugin \"{other}\" not found"
                )))
            }
        };
        let anonymous = req.name.is_none();
        let name = match req.name {
            Some(n) => {
                berth_volume::name::validate(&n)?;
                n
            }
            None => berth_volume::name::anonymous(),
        };
        if let Some(existing) = self.volumes.get(&name) {
            if existing.driver != driver {
                return Err(EngineError::Conflict(format!(
                    "create {name}: volume name must be unique: a volume with the name {name} already exists with driver {}",
                    existing.driver
                )));
            }
            return Ok((existing, false));
        }
        LocalOptions::parse(&req.options)
            .map_err(|e| EngineError::InvalidArgument(format!("create {name}: {e}")))?;
        let mut labels = req.labels;
        if anonymous {
            labels.insert(ANONYMOUS_LABEL.into(), String::new());
        }
        let rec = VolumeRecord {
            name: name.clone(),
            driver,
            created_at: chrono::Utc::now(),
            labels,
            options: req.options,
            anonymous,
        };
        let data = self.volume_data(&name);
        tokio::fs::create_dir_all(&data).await?;
        if let Err(e) = self.persist_volume(&rec) {
            let _ = tokio::fs::remove_dir_all(self.volumes_root().join(&name)).await;
            return Err(e);
        }
        self.volumes.write().insert(name.clone(), rec.clone());
        self.emit_volume(&name, "create", &[("driver", rec.driver.clone())]);
        tracing::info!(volume = %name, "created");
        Ok((rec, true))
    }

    /// POST /volumes/create. Creating an existing name returns that volume (dockerd's
    /// idempotency, which compose relies on) unless the driver differs.
    pub async fn create_volume(&self, req: VolumeCreateRequest) -> Result<Volume> {
        let _g = self.volumes.lock.lock().await;
        let (rec, _) = self
            .ensure_volume(NewVolume {
                name: req.name.filter(|n| !n.is_empty()),
                driver: req.driver.unwrap_or_default(),
                options: req.driver_opts.unwrap_or_default(),
                labels: req.labels.unwrap_or_default(),
            })
            .await?;
        Ok(self.volume_api(&rec))
    }

    /// GET /volumes/{name}.
    pub async fn inspect_volume(&self, name: &str) -> Result<Volume> {
        let rec = self.volumes.get(name).ok_or_else(|| no_such_volume(name))?;
        Ok(self.volume_api(&rec))
    }

    /// GET /volumes, filters `dangling`, `driver`, `label`, `name`.
    pub async fn list_volumes(&self, filters: &Filters) -> Result<VolumeListResponse> {
        check_keys(filters, &["dangling", "driver", "label", "name"])?;
        let dangling = match filters.get("dangling").and_then(|v| v.last()) {
            Some(v) => Some(bool_filter("dangling", v)?),
            None => None,
        };
        let any = |key: &str, f: &dyn Fn(&str) -> bool| {
            filters.get(key).is_none_or(|v| v.iter().any(|x| f(x)))
        };
        let users = self.volume_users_all();
        let volumes = self
            .volumes
            .all()
            .into_iter()
            .filter(|r| any("name", &|n| r.name.contains(n)))
            .filter(|r| any("driver", &|d| r.driver == d))
            .filter(|r| labels_pass(filters, &r.labels))
            .filter(|r| dangling.is_none_or(|d| d != users.contains_key(&r.name)))
            .map(|r| self.volume_api(&r))
            .collect();
        Ok(VolumeListResponse {
            volumes: Some(volumes),
            warnings: Some(Vec::new()),
        })
    }

    /// DELETE /volumes/{name}: 404 unknown, 409 in use (even with `force`, as dockerd:
    /// force only ignores a missing volume).
    pub async fn remove_volume(&self, name: &str, force: bool) -> Result<()> {
        let _g = self.volumes.lock.lock().await;
        if self.volumes.get(name).is_none() {
            return if force {
                Ok(())
            } else {
                Err(no_such_volume(name))
            };
        }
        let users = self.volume_users(name);
        if !users.is_empty() {
            return Err(EngineError::Conflict(format!(
                "remove {name}: volume is in use - [{}]",
                users.join(", ")
            )));
        }
        self.delete_volume_locked(name).await
    }

    /// Forgets the volume, then deletes its directory (a crash in between leaves a directory
    /// the next start sweeps). The caller holds `volumes.lock` and has checked it is unused.
    pub(crate) async fn delete_volume_locked(&self, name: &str) -> Result<()> {
        self.db.delete_volume(name)?;
        self.volumes.write().remove(name);
        let dir = self.volumes_root().join(name);
        let data = dir.join("_data");
        tokio::task::spawn_blocking(move || {
            let _ = berth_volume::local::unmount(&data);
            std::fs::remove_dir_all(&dir)
        })
        .await
        .map_err(EngineError::internal)?
        .or_else(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Ok(())
            } else {
                Err(e)
            }
        })?;
        self.emit_volume(name, "destroy", &[("driver", LOCAL.into())]);
        tracing::info!(volume = %name, "removed");
        Ok(())
    }

    /// Removes the anonymous volumes of a removed container that nothing else uses
    /// (`rm -v`, `--rm`). Failures are logged: the container is gone either way.
    pub(crate) async fn remove_anonymous_volumes(&self, names: &[String]) {
        let _g = self.volumes.lock.lock().await;
        let users = self.volume_users_all();
        for name in names {
            let anonymous = self.volumes.get(name).is_some_and(|v| v.anonymous);
            if !anonymous || users.contains_key(name) {
                continue;
            }
            if let Err(e) = self.delete_volume_locked(name).await {
                tracing::warn!(volume = %name, "cannot remove anonymous volume: {e}");
            }
        }
    }

    /// POST /volumes/prune: unused anonymous volumes, or every unused one with `all=true`;
    /// filters `label`, `label!`, `all`.
    pub async fn prune_volumes(&self, filters: &Filters) -> Result<VolumePruneResponse> {
        check_keys(filters, &["label", "label!", "all"])?;
        let all = match filters.get("all").and_then(|v| v.last()) {
            Some(v) => bool_filter("all", v)?,
            None => false,
        };
        let _g = self.volumes.lock.lock().await;
        let mut deleted = Vec::new();
        let mut reclaimed: u64 = 0;
        let users = self.volume_users_all();
        for rec in self.volumes.all() {
            if (!all && !rec.labels.contains_key(ANONYMOUS_LABEL))
                || !labels_pass(filters, &rec.labels)
                || users.contains_key(&rec.name)
            {
                continue;
            }
            let data = self.volume_data(&rec.name);
            let size = tokio::task::spawn_blocking(move || crate::disk_usage::dir_size(&data))
                .await
                .map_err(EngineError::internal)?;
            match self.delete_volume_locked(&rec.name).await {
                Ok(()) => {
                    reclaimed += size;
                    deleted.push(rec.name);
                }
                Err(e) => tracing::warn!(volume = %rec.name, "prune: {e}"),
            }
        }
        self.emit(
            "volume",
            "prune",
            "",
            [("reclaimed".to_string(), reclaimed.to_string())].into(),
        );
        Ok(VolumePruneResponse {
            volumes_deleted: Some(deleted),
            space_reclaimed: Some(reclaimed as i64),
        })
    }
}

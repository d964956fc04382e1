//! `GET /system/df` and the sizes behind it, measured from the bytes on disk (du-like), not
//! from what the metadata says they should be.
//!
//! Accounting: a layer's size is its extracted directory; an image's size the sum of its
//! layers; `LayersSize` counts each layer once however many images share it. A container's
//! `SizeRw` is everything under its directory in the data root — the rw (upper) layer, the
//! json-file logs and the bundle files — because that is what removing it frees; `SizeRootFs`
//! adds its image's size. The mounted rootfs is another filesystem and is not walked.
//! `BuildCache` lists the classic builder's steps (see `build::cache` for what an entry's size
//! is); the layers only the cache holds are counted there and left out of `LayersSize`.

use crate::error::{EngineError, Result};
use crate::Engine;
use berth_store::Digest;
use bollard_stubs::models::ContainerSummary;
use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Apparent size of everything below `root` that is not a directory, each inode counted once
/// (hard links), without crossing into other filesystems (mount points). A missing root is 0.
pub fn dir_size(root: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(root) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    let dev = meta.dev();
    let mut seen = HashSet::new();
    let mut total = 0u64;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in rd.flatten() {
            let Ok(m) = entry.metadata() else {
                continue;
            };
            if m.dev() != dev {
                continue;
            }
            if m.is_dir() {
                stack.push(entry.path());
            } else if m.nlink() <= 1 || seen.insert(m.ino()) {
                total += m.len();
            }
        }
    }
    total
}

/// Which parts `GET /system/df?type=` asked for (all when none is named).
#[derive(Debug, Clone, Copy)]
pub struct DfTypes {
    pub containers: bool,
    pub images: bool,
    pub volumes: bool,
    pub build_cache: bool,
}

impl DfTypes {
    pub fn parse(types: &[String]) -> Result<Self> {
        if types.is_empty() {
            return Ok(DfTypes {
                containers: true,
                images: true,
                volumes: true,
                build_cache: true,
            });
        }
        let mut t = DfTypes {
            containers: false,
            images: false,
            volumes: false,
            build_cache: false,
        };
        for ty in types {
            match ty.as_str() {
                "container" => t.containers = true,
                "image" => t.images = true,
                "volume" => t.volumes = true,
                "build-cache" => t.build_cache = true,
                other => {
                    return Err(EngineError::InvalidArgument(format!(
                        "unknown object type: {other}"
                    )))
                }
            }
        }
        Ok(t)
    }
}

impl Engine {
    /// Sizes of the given layers' directories, measured off the request path.
    pub(crate) async fn layer_sizes(&self, chains: Vec<Digest>) -> Result<HashMap<Digest, u64>> {
        let images = self.images.clone();
        tokio::task::spawn_blocking(move || {
            chains
                .into_iter()
                .map(|c| {
                    let size = dir_size(&images.layers().diff_dir(&c));
                    (c, size)
                })
                .collect()
        })
        .await
        .map_err(EngineError::internal)
    }

    /// Bytes under a container's directory (see the module note for what is included).
    pub async fn container_rw_size(&self, id: &str) -> u64 {
        let dir = self.container_dir(id);
        tokio::task::spawn_blocking(move || dir_size(&dir))
            .await
            .unwrap_or(0)
    }

    /// Fills `SizeRw` / `SizeRootFs` (`ps -s`, `system df`).
    pub async fn fill_container_sizes(&self, list: &mut [ContainerSummary]) -> Result<()> {
        let images = self.images.list()?;
        let chains: HashSet<Digest> = images.iter().flat_map(|i| i.layers.clone()).collect();
        let sizes = self.layer_sizes(chains.into_iter().collect()).await?;
        let image_size: HashMap<String, u64> = images
            .iter()
            .map(|i| {
                let s = i.layers.iter().filter_map(|c| sizes.get(c)).sum();
                (i.id.to_string(), s)
            })
            .collect();
        for c in list.iter_mut() {
            let id = c.id.clone().unwrap_or_default();
            let rw = self.container_rw_size(&id).await as i64;
            let img = c
                .image_id
                .as_ref()
                .and_then(|i| image_size.get(i))
                .copied()
                .unwrap_or(0) as i64;
            c.size_rw = Some(rw);
            c.size_root_fs = Some(rw + img);
        }
        Ok(())
    }

    /// The API 1.24–1.51 shape of `GET /system/df` (LayersSize, Images, Containers, Volumes,
    /// BuildCache), which is what the docker CLI of that range reads.
    pub async fn disk_usage(&self, types: DfTypes) -> Result<serde_json::Value> {
        let mut out = serde_json::Map::new();
        let cache = if types.images || types.build_cache {
            self.build_cache_entries().await?
        } else {
            Vec::new()
        };
        if types.images {
            let mut images = self.list_images(false, &HashMap::new())?;
            let all = self.images.list()?;
            let layers_of: HashMap<String, Vec<Digest>> = all
                .iter()
                .map(|i| (i.id.to_string(), i.layers.clone()))
                .collect();
            let mut users: HashMap<&Digest, usize> = HashMap::new();
            for l in layers_of.values().flatten() {
                *users.entry(l).or_default() += 1;
            }
            let chains: Vec<Digest> = users.keys().map(|d| (*d).clone()).collect();
            let sizes = self.layer_sizes(chains).await?;
            // Layers only the build cache holds are counted under BuildCache, not twice.
            let layers_size: u64 = sizes
                .values()
                .sum::<u64>()
                .saturating_sub(Engine::build_cache_size(&cache));
            for img in images.iter_mut() {
                let layers = layers_of.get(&img.id).cloned().unwrap_or_default();
                let size = |shared: bool| -> i64 {
                    layers
                        .iter()
                        .filter(|l| !shared || users.get(l).copied().unwrap_or(0) > 1)
                        .filter_map(|l| sizes.get(l))
                        .sum::<u64>() as i64
                };
                img.size = size(false);
                img.shared_size = size(true);
            }
            out.insert("LayersSize".into(), serde_json::json!(layers_size));
            out.insert(
                "Images".into(),
                serde_json::to_value(&images).map_err(EngineError::internal)?,
            );
        }
        if types.containers {
            let mut list = self.list_containers(true, None, &HashMap::new())?;
            self.fill_container_sizes(&mut list).await?;
            out.insert(
                "Containers".into(),
                serde_json::to_value(&list).map_err(EngineError::internal)?,
            );
        }
        if types.volumes {
            let mut list = Vec::new();
            let users = self.volume_users_all();
            for rec in self.volumes.all() {
                let mut v = self.volume_api(&rec);
                let data = self.volume_data(&rec.name);
                let size = tokio::task::spawn_blocking(move || dir_size(&data))
                    .await
                    .unwrap_or(0);
                v.usage_data = Some(bollard_stubs::models::VolumeUsageData {
                    size: size as i64,
                    ref_count: users.get(&rec.name).map_or(0, Vec::len) as i64,
                });
                list.push(v);
            }
            out.insert(
                "Volumes".into(),
                serde_json::to_value(&list).map_err(EngineError::internal)?,
            );
        }
        if types.build_cache {
            let mut list: Vec<serde_json::Value> = cache.iter().map(cache_record_json).collect();
            list.extend(
                self.kept_build_contexts()
                    .await?
                    .iter()
                    .map(kept_context_json),
            );
            out.insert("BuildCache".into(), serde_json::Value::Array(list));
        }
        Ok(serde_json::Value::Object(out))
    }
}

fn rfc3339(secs: i64) -> serde_json::Value {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .into()
}

/// One entry of `BuildCache` as dockerd serialises BuildKit's records (`Parent` for API
/// clients before 1.42, `Parents` after).
fn cache_record_json(e: &crate::build::CacheEntry) -> serde_json::Value {
    serde_json::json!({
        "ID": e.record.key,
        "Parent": e.parent.clone().unwrap_or_default(),
        "Parents": e.parent.iter().collect::<Vec<_>>(),
        "Type": "regular",
        "Description": e.description,
        "InUse": e.in_use,
        "Shared": e.shared,
        "Size": e.size,
        "CreatedAt": rfc3339(e.record.created),
        "LastUsedAt": rfc3339(e.record.last_used),
        "UsageCount": e.record.usage_count,
    })
}

/// A context kept for Berth's CLI, as BuildKit lists its local sources.
fn kept_context_json(k: &crate::build::KeptContext) -> serde_json::Value {
    serde_json::json!({
        "ID": k.id,
        "Parent": "",
        "Parents": [],
        "Type": "source.local",
        "Description": "local source for context",
        "InUse": k.in_use,
        "Shared": false,
        "Size": k.size,
        "CreatedAt": rfc3339(k.last_used),
        "LastUsedAt": rfc3339(k.last_used),
        "UsageCount": 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_files_once_per_inode_and_skips_directories() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("a/b")).unwrap();
        std::fs::write(t.path().join("a/one"), vec![0u8; 1000]).unwrap();
        std::fs::write(t.path().join("a/b/two"), vec![0u8; 234]).unwrap();
        std::fs::hard_link(t.path().join("a/one"), t.path().join("a/b/link")).unwrap();
        std::os::unix::fs::symlink("one", t.path().join("a/sym")).unwrap();
        assert_eq!(dir_size(t.path()), 1000 + 234 + 3);
        assert_eq!(dir_size(&t.path().join("missing")), 0);
    }

    #[test]
    fn df_types() {
        assert!(DfTypes::parse(&[]).unwrap().volumes);
        let t = DfTypes::parse(&["image".into()]).unwrap();
        assert!(t.images && !t.containers);
        assert!(DfTypes::parse(&["bogus".into()]).is_err());
    }
}

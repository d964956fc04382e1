//! Image operations that need engine policy (which containers use an image), the Docker API's
//! shapes, or events. Save streams through `Engine::images` directly after `images_saved`.

use crate::container::inspect::api_date;
use crate::error::{EngineError, Result};
use crate::Engine;
use berth_image::{DeleteItem, Image, ImportOptions, LoadedImage};
use bollard_stubs::models::*;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};
use std::io::Read;

fn created(img: &Image) -> Option<DateTime<Utc>> {
    img.config
        .created
        .as_deref()
        .and_then(|c| DateTime::parse_from_rfc3339(c).ok())
        .map(|d| d.with_timezone(&Utc))
}

fn labels(img: &Image) -> HashMap<String, String> {
    serde_json::to_value(&img.config.config)
        .ok()
        .and_then(|c| c.get("Labels").cloned())
        .and_then(|l| serde_json::from_value(l).ok())
        .unwrap_or_default()
}

pub(crate) fn label_attrs(img: &Image) -> BTreeMap<String, String> {
    labels(img).into_iter().collect()
}

impl Engine {
    /// `docker import`: dockerd logs `import` with the ID as both actor and name, then `tag`.
    pub async fn import_image(
        &self,
        body: impl Read + Send + 'static,
        opts: ImportOptions,
    ) -> Result<Image> {
        let images = self.images.clone();
        let tag = opts.reference.as_ref().map(|r| r.familiar());
        let img = tokio::task::spawn_blocking(move || images.import(body, opts))
            .await
            .map_err(EngineError::internal)??;
        let id = img.id.to_string();
        self.emit_image(&id, "import", &id, label_attrs(&img));
        if let Some(tag) = tag {
            self.emit_image(&id, "tag", &tag, label_attrs(&img));
        }
        Ok(img)
    }

    /// `docker load`; `progress` receives the lines dockerd streams ("Loaded image: …").
    pub async fn load_images(
        &self,
        body: impl Read + Send + 'static,
    ) -> Result<(Vec<LoadedImage>, Vec<String>)> {
        let images = self.images.clone();
        let (loaded, lines) = tokio::task::spawn_blocking(move || {
            let mut lines = Vec::new();
            images
                .load(body, &mut |m: &str| lines.push(m.to_string()))
                .map(|l| (l, lines))
        })
        .await
        .map_err(EngineError::internal)??;
        for l in &loaded {
            let id = l.id.to_string();
            let attrs = self
                .images
                .resolve(&id)
                .map(|i| label_attrs(&i))
                .unwrap_or_default();
            if l.tags.is_empty() {
                self.emit_image(&id, "load", &id, attrs.clone());
            }
            for t in &l.tags {
                self.emit_image(&id, "load", t, attrs.clone());
                self.emit_image(&id, "tag", t, attrs.clone());
            }
        }
        Ok((loaded, lines))
    }

    /// `target` is the full reference (`docker.io/library/x:1`).
    pub async fn tag_image(&self, source: &str, target: &str) -> Result<()> {
        let images = self.images.clone();
        let (src, tgt) = (source.to_string(), target.to_string());
        let img = tokio::task::spawn_blocking(move || {
            images.tag(&src, &tgt)?;
            images.resolve(&tgt)
        })
        .await
        .map_err(EngineError::internal)??;
        let familiar = berth_image::reference::Reference::parse_normalized(target)
            .map(|r| r.familiar())
            .unwrap_or_else(|_| target.to_string());
        self.emit_image(img.id.as_ref(), "tag", &familiar, label_attrs(&img));
        Ok(())
    }

    /// Checks that every name resolves and logs `save` for each, before the tar streams.
    pub async fn images_saved(&self, names: &[String]) -> Result<()> {
        let mut found = Vec::new();
        for n in names {
            found.push((n, self.image_by_name(n).await?));
        }
        for (n, img) in found {
            self.emit_image(img.id.as_ref(), "save", n, label_attrs(&img));
        }
        Ok(())
    }

    pub async fn image_by_name(&self, name: &str) -> Result<Image> {
        let images = self.images.clone();
        let name = name.to_string();
        tokio::task::spawn_blocking(move || images.resolve(&name))
            .await
            .map_err(EngineError::internal)?
            .map_err(Into::into)
    }

    pub(crate) fn containers_using(&self, image_id: &str) -> Vec<(String, bool)> {
        self.containers
            .all()
            .iter()
            .map(|h| h.snapshot())
            .filter(|r| r.image_id == image_id)
            .map(|r| (r.id, r.state.is_running()))
            .collect()
    }

    pub fn list_images(
        &self,
        all: bool,
        filters: &HashMap<String, Vec<String>>,
    ) -> Result<Vec<ImageSummary>> {
        for key in filters.keys() {
            if !matches!(
                key.as_str(),
                "dangling" | "label" | "reference" | "before" | "since" | "until"
            ) {
                return Err(EngineError::InvalidArgument(format!(
                    "invalid filter '{key}'"
                )));
            }
        }
        let images = self.images.list()?;
        let anchor = |key: &str| -> Result<Option<DateTime<Utc>>> {
            match filters.get(key).and_then(|v| v.first()) {
                Some(name) => Ok(created(&self.images.resolve(name)?)),
                None => Ok(None),
            }
        };
        let (before, since) = (anchor("before")?, anchor("since")?);
        // The classic builder's intermediate images, as dockerd hides images with children.
        let intermediate = if all {
            Default::default()
        } else {
            self.build_cache_parents()
        };
        let mut out = Vec::new();
        for img in images {
            if img.repo_tags.is_empty() && intermediate.contains(img.id.as_str()) {
                continue;
            }
            let labels = labels(&img);
            if let Some(d) = filters.get("dangling").and_then(|v| v.first()) {
                if (d == "true" || d == "1") != img.repo_tags.is_empty() {
                    continue;
                }
            }
            if let Some(want) = filters.get("label") {
                let ok = want.iter().all(|l| match l.split_once('=') {
                    Some((k, v)) => labels.get(k).map(String::as_str) == Some(v),
                    None => labels.contains_key(l.as_str()),
                });
                if !ok {
                    continue;
                }
            }
            let mut tags = img.repo_tags.clone();
            if let Some(refs) = filters.get("reference") {
                tags.retain(|t| refs.iter().any(|r| reference_matches(r, t)));
                if tags.is_empty() {
                    continue;
                }
            }
            let c = created(&img);
            if before.is_some_and(|b| c.is_none_or(|c| c >= b))
                || since.is_some_and(|s| c.is_none_or(|c| c <= s))
            {
                continue;
            }
            out.push(ImageSummary {
                id: img.id.to_string(),
                parent_id: String::new(),
                repo_tags: tags,
                repo_digests: img.repo_digests.clone(),
                created: c.map(|d| d.timestamp()).unwrap_or(0),
                size: img.size as i64,
                shared_size: -1,
                labels,
                containers: self.containers_using(img.id.as_str()).len() as i64,
                ..Default::default()
            });
        }
        out.sort_by_key(|i| std::cmp::Reverse(i.created));
        Ok(out)
    }

    pub async fn inspect_image(&self, name: &str) -> Result<ImageInspect> {
        let img = self.image_by_name(name).await?;
        let cfg = &img.config;
        let lowers = self
            .images
            .layer_dirs(&img)?
            .iter()
            .rev()
            .map(|p| p.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(":");
        let history_comment = cfg.history.last().and_then(|h| h.comment.clone());
        Ok(ImageInspect {
            id: Some(img.id.to_string()),
            repo_tags: Some(img.repo_tags.clone()),
            repo_digests: Some(img.repo_digests.clone()),
            comment: Some(history_comment.unwrap_or_default()),
            created: created(&img).and_then(|d| api_date(&d)),
            author: Some(cfg.author.clone().unwrap_or_default()),
            config: serde_json::to_value(&cfg.config)
                .ok()
                .and_then(|v| serde_json::from_value(v).ok()),
            architecture: Some(cfg.architecture.clone()),
            variant: cfg.variant.clone(),
            os: Some(cfg.os.clone()),
            size: Some(img.size as i64),
            graph_driver: Some(DriverData {
                name: "overlayfs".into(),
                data: HashMap::from([("LowerDir".to_string(), lowers)]),
            }),
            root_fs: Some(ImageInspectRootFs {
                typ: "layers".into(),
                layers: Some(cfg.rootfs.diff_ids.iter().map(|d| d.to_string()).collect()),
            }),
            metadata: Some(ImageInspectMetadata {
                last_tag_time: chrono::DateTime::from_timestamp(img.added_at, 0)
                    .and_then(|d| api_date(&d)),
            }),
            ..Default::default()
        })
    }

    pub async fn image_history(&self, name: &str) -> Result<Vec<ImageHistoryResponseItem>> {
        let images = self.images.clone();
        let name = name.to_string();
        let hist = tokio::task::spawn_blocking(move || images.history(&name))
            .await
            .map_err(EngineError::internal)??;
        Ok(hist
            .into_iter()
            .map(|h| ImageHistoryResponseItem {
                id: h.id,
                created: h.created,
                created_by: h.created_by,
                tags: h.tags,
                size: h.size,
                comment: h.comment,
            })
            .collect())
    }

    pub async fn remove_image(
        &self,
        name: &str,
        force: bool,
        noprune: bool,
    ) -> Result<Vec<ImageDeleteResponseItem>> {
        let img = self.image_by_name(name).await?;
        let users = self.containers_using(img.id.as_str());
        if let Some((id, _)) = users.iter().find(|(_, running)| *running) {
            // Even -f cannot delete an image a running container is using (dockerd's rule);
            // untagging one of several names is still fine.
            let by_id =
                !name.contains(':') && img.id.hex().starts_with(name.trim_start_matches("sha256:"));
            if by_id || img.repo_tags.len() <= 1 {
                return Err(EngineError::Conflict(format!(
                    "unable to delete {} (cannot be forced) - image is being used by running container {}",
                    img.id.short(),
                    &id[..12]
                )));
            }
        }
        let users_for_closure = users.clone();
        let images = self.images.clone();
        let name = name.to_string();
        let items = tokio::task::spawn_blocking(move || {
            images.remove(&name, force, noprune, &|_d| {
                users_for_closure.first().map(|(id, _)| id.clone())
            })
        })
        .await
        .map_err(EngineError::internal)??;
        let id = img.id.to_string();
        for i in &items {
            let action = match i {
                DeleteItem::Untagged(_) => "untag",
                DeleteItem::Deleted(_) => "delete",
            };
            self.emit_image(&id, action, &id, label_attrs(&img));
        }
        Ok(items
            .into_iter()
            .map(|i| match i {
                DeleteItem::Untagged(t) => ImageDeleteResponseItem {
                    untagged: Some(t),
                    deleted: None,
                },
                DeleteItem::Deleted(d) => ImageDeleteResponseItem {
                    untagged: None,
                    deleted: Some(d),
                },
            })
            .collect())
    }
}

/// `reference=` filter: a familiar name with optional `*` globs, matched like Docker's path.Match
/// on the whole reference or on its repository.
fn reference_matches(pattern: &str, tag: &str) -> bool {
    fn glob(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => {
                glob(&p[1..], s) || (!s.is_empty() && s[0] != b'/' && glob(p, &s[1..]))
            }
            (Some(a), Some(b)) if a == b => glob(&p[1..], &s[1..]),
            _ => false,
        }
    }
    let repo = tag.rsplit_once(':').map(|(r, _)| r).unwrap_or(tag);
    glob(pattern.as_bytes(), tag.as_bytes()) || glob(pattern.as_bytes(), repo.as_bytes())
}

#[cfg(test)]
mod tests {
    #[test]
    fn reference_filter() {
        assert!(super::reference_matches("busybox", "busybox:latest"));
        assert!(super::reference_matches("busy*", "busybox:latest"));
        assert!(super::reference_matches("busybox:lat*", "busybox:latest"));
        assert!(!super::reference_matches("alpine", "busybox:latest"));
    }
}

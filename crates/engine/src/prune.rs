//! `POST /containers/prune` and `POST /images/prune`: remove what nothing uses and report
//! the bytes really freed (measured before removal, see `disk_usage`).

use crate::container::inspect::Filters;
use crate::error::{EngineError, Result};
use crate::Engine;
use berth_image::DeleteItem;
use bollard_stubs::models::{ContainerPruneResponse, ImageDeleteResponseItem, ImagePruneResponse};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

pub(crate) fn check_keys(filters: &Filters, allowed: &[&str]) -> Result<()> {
    for key in filters.keys() {
        if !allowed.contains(&key.as_str()) {
            return Err(EngineError::InvalidArgument(format!(
                "invalid filter '{key}'"
            )));
        }
    }
    Ok(())
}

/// docker's `until=` value (timetypes.GetTimestamp).
pub fn parse_until(v: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>> {
    berth_units::parse_timestamp(v, now).ok_or_else(|| {
        EngineError::InvalidArgument(format!(
            "failed to parse value as time or duration: \"{v}\""
        ))
    })
}

pub(crate) fn until_of(filters: &Filters) -> Result<Option<DateTime<Utc>>> {
    let now = Utc::now();
    match filters.get("until").map(Vec::as_slice) {
        None | Some([]) => Ok(None),
        Some([one]) => parse_until(one, now).map(Some),
        Some(_) => Err(EngineError::InvalidArgument(
            "more than one until filter specified".into(),
        )),
    }
}

/// `label=k`, `label=k=v` must all match; `label!=k`, `label!=k=v` must all not.
pub fn labels_pass(filters: &Filters, labels: &HashMap<String, String>) -> bool {
    let has = |want: &str| match want.split_once('=') {
        Some((k, v)) => labels.get(k).map(String::as_str) == Some(v),
        None => labels.contains_key(want),
    };
    filters
        .get("label")
        .is_none_or(|ws| ws.iter().all(|w| has(w)))
        && filters
            .get("label!")
            .is_none_or(|ws| ws.iter().all(|w| !has(w)))
}

fn dangling_only(filters: &Filters) -> Result<bool> {
    let Some(vals) = filters.get("dangling") else {
        return Ok(true);
    };
    let mut out = true;
    for v in vals {
        out = match v.to_ascii_lowercase().as_str() {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => {
                return Err(EngineError::InvalidArgument(format!(
                    "invalid filter 'dangling={v}'"
                )))
            }
        };
    }
    Ok(out)
}

impl Engine {
    pub async fn prune_containers(
        self: &Arc<Self>,
        filters: &Filters,
    ) -> Result<ContainerPruneResponse> {
        check_keys(filters, &["until", "label", "label!"])?;
        let until = until_of(filters)?;
        let mut deleted = Vec::new();
        let mut reclaimed = 0u64;
        for h in self.containers.all() {
            let rec = h.snapshot();
            if rec.state.is_running()
                || rec.state.status == crate::container::Status::Removing
                || until.is_some_and(|u| rec.created >= u)
                || !labels_pass(filters, &rec.config.labels.clone().unwrap_or_default())
            {
                continue;
            }
            let size = self.container_rw_size(&rec.id).await;
            match self.remove_container(&rec.id, false, false).await {
                Ok(()) => {
                    deleted.push(rec.id.clone());
                    reclaimed += size;
                }
                // Started or removed meanwhile: not ours to prune any more (dockerd logs too).
                Err(e) => tracing::warn!(container = %rec.id, "prune: {e}"),
            }
        }
        self.emit(
            "container",
            "prune",
            "",
            BTreeMap::from([("reclaimed".to_string(), reclaimed.to_string())]),
        );
        tracing::info!(count = deleted.len(), reclaimed, "pruned containers");
        Ok(ContainerPruneResponse {
            // dockerd sends null, not [], when nothing was removed.
            containers_deleted: (!deleted.is_empty()).then_some(deleted),
            space_reclaimed: Some(reclaimed as i64),
        })
    }

    pub async fn prune_images(self: &Arc<Self>, filters: &Filters) -> Result<ImagePruneResponse> {
        check_keys(filters, &["dangling", "until", "label", "label!"])?;
        let dangling = dangling_only(filters)?;
        let until = until_of(filters)?;
        let summaries = self.list_images(false, &HashMap::new())?;
        let mut items = Vec::new();
        let mut reclaimed = 0u64;
        for s in summaries {
            if (dangling && !s.repo_tags.is_empty())
                || until.is_some_and(|u| s.created >= u.timestamp())
                || !labels_pass(filters, &s.labels)
            {
                continue;
            }
            // A container of any state keeps its image and layers (its rootfs stacks them).
            if !self.containers_using(&s.id).is_empty() {
                continue;
            }
            match self.prune_one_image(&s.id).await {
                Ok((deleted, bytes)) => {
                    for item in &deleted {
                        match (&item.untagged, &item.deleted) {
                            (Some(t), _) => self.emit_image(&s.id, "untag", t, Default::default()),
                            (_, Some(d)) if *d == s.id => {
                                self.emit_image(&s.id, "delete", &s.id, Default::default())
                            }
                            _ => {}
                        }
                    }
                    items.extend(deleted);
                    reclaimed += bytes;
                }
                Err(e) => tracing::warn!(image = %s.id, "prune: {e}"),
            }
        }
        self.emit(
            "image",
            "prune",
            "",
            BTreeMap::from([("reclaimed".to_string(), reclaimed.to_string())]),
        );
        tracing::info!(count = items.len(), reclaimed, "pruned images");
        Ok(ImagePruneResponse {
            images_deleted: (!items.is_empty()).then_some(items),
            space_reclaimed: Some(reclaimed as i64),
        })
    }

    /// Removes one unused image with its unshared layers; returns the delete items and the
    /// bytes freed (layer directories, layer blobs and the config blob that really went).
    pub(crate) async fn prune_one_image(
        &self,
        id: &str,
    ) -> Result<(Vec<ImageDeleteResponseItem>, u64)> {
        let img = self.image_by_name(id).await?;
        let layer_sizes = self.layer_sizes(img.layers.clone()).await?;
        let images = self.images.clone();
        let id = id.to_string();
        let (items, bytes) = tokio::task::spawn_blocking(move || -> Result<_> {
            let content = images.content();
            let mut blobs: HashMap<String, (berth_store::Digest, u64)> = HashMap::new();
            for chain in &img.layers {
                if let Some(b) = images.db().get_layer(chain)?.and_then(|l| l.blob) {
                    let size = content.size(&b).unwrap_or(0);
                    blobs.insert(chain.to_string(), (b, size));
                }
            }
            let config_size = content.size(&img.id).unwrap_or(0);
            let items = images.remove(&id, true, false, &|_| None)?;
            let mut bytes = 0u64;
            let mut gone: HashSet<String> = HashSet::new();
            for item in &items {
                if let DeleteItem::Deleted(d) = item {
                    gone.insert(d.clone());
                }
            }
            if gone.contains(img.id.as_str()) && !content.contains(&img.id) {
                bytes += config_size;
            }
            for (chain, size) in &layer_sizes {
                if gone.contains(chain.as_str()) {
                    bytes += size;
                    if let Some((b, bsize)) = blobs.get(chain.as_str()) {
                        if !content.contains(b) {
                            bytes += bsize;
                        }
                    }
                }
            }
            Ok((items, bytes))
        })
        .await
        .map_err(EngineError::internal)??;
        let items = items
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
            .collect();
        Ok((items, bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn until_accepts_durations_and_times() {
        let now = DateTime::parse_from_rfc3339("2024-05-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let at = |s: &str| parse_until(s, now).unwrap().to_rfc3339();
        assert_eq!(at("24h"), "2024-04-30T12:00:00+00:00");
        assert_eq!(at("1h30m"), "2024-05-01T10:30:00+00:00");
        assert_eq!(at("1.5h"), "2024-05-01T10:30:00+00:00");
        assert_eq!(at("10s"), "2024-05-01T11:59:50+00:00");
        assert_eq!(at("1714564800"), "2024-05-01T12:00:00+00:00");
        assert_eq!(at("1714564800.5"), "2024-05-01T12:00:00.500+00:00");
        assert_eq!(at("2024-04-01T00:00:00Z"), "2024-04-01T00:00:00+00:00");
        assert_eq!(at("2024-04-01"), "2024-04-01T00:00:00+00:00");
        assert!(parse_until("soon", now).is_err());
        assert!(parse_until("5x", now).is_err());
    }

    #[test]
    fn label_filters() {
        let labels = HashMap::from([("keep".to_string(), "yes".to_string())]);
        let f = |k: &str, v: &str| Filters::from([(k.to_string(), vec![v.to_string()])]);
        assert!(labels_pass(&f("label", "keep"), &labels));
        assert!(labels_pass(&f("label", "keep=yes"), &labels));
        assert!(!labels_pass(&f("label", "keep=no"), &labels));
        assert!(!labels_pass(&f("label!", "keep"), &labels));
        assert!(labels_pass(&f("label!", "keep=no"), &labels));
        assert!(labels_pass(&Filters::new(), &labels));
    }

    #[test]
    fn dangling_values() {
        let f = |v: &str| Filters::from([("dangling".to_string(), vec![v.to_string()])]);
        assert!(dangling_only(&Filters::new()).unwrap());
        assert!(!dangling_only(&f("false")).unwrap());
        assert!(dangling_only(&f("true")).unwrap());
        assert!(dangling_only(&f("maybe")).is_err());
    }
}

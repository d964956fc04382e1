//! `--cache-from`: a step the local cache misses may be taken from the history of an image
//! the user names, as dockerd 20.10's classic builder does (image/cache's `ImageCache`).
//!
//! A source T matches a step on parent P (with n history entries) when T was built on P (its
//! history and layers begin with P's) and T's entry n was made by the same instruction (its
//! created-by text is the step's). If that entry is T's last, the step's image is T itself;
//! otherwise a new image is made: P's layers plus the layer of T's entry n, P's history plus
//! that entry, and the step's config. Such an image is recorded as the step's cache entry, so
//! it is hidden, counted and pruned like any intermediate image, and a later build reuses it
//! from the local cache. After the first image made this way the build keeps to that source
//! (dockerd's narrowing, so a build never mixes two sources' steps).
//!
//! The created-by text is all that is compared: a COPY's text holds the digest of what it
//! copies, a RUN's its command and build args, but a `RUN --mount` reads files its text does
//! not name, so the executor asks only for steps whose cache key is their text.

use crate::error::{EngineError, Result};
use crate::Engine;
use berth_image::config::{ContainerConfig, ImageConfig};
use berth_image::Image;

/// One step as `--cache-from` sees it.
pub(super) struct FromStep<'a> {
    /// The image the step is built on.
    pub parent: &'a Image,
    /// The history text the step would give.
    pub created_by: &'a str,
    /// The config after the step.
    pub config: &'a ContainerConfig,
    pub author: &'a str,
    /// The step's local cache key: the image found is recorded under it.
    pub key: &'a str,
}

impl Engine {
    /// The step's image from a `--cache-from` source, or None. `sources` are the build's
    /// remaining sources: on the first call the names become image IDs and names that match
    /// no image are dropped (with a warning, as dockerd skips them); once an image has been
    /// made from a source, only that source remains.
    pub(super) async fn cache_from_lookup(
        &self,
        sources: &mut Vec<String>,
        step: FromStep<'_>,
    ) -> Result<Option<Image>> {
        let parent = step.parent;
        let n = parent.config.history.len();
        for target in self.cache_sources(sources).await? {
            if !step_matches(&target.config, &parent.config, step.created_by) {
                continue;
            }
            if target.config.history.len() == n + 1 {
                self.cache_store(step.key, parent.id.as_str(), target.id.as_str())?;
                return Ok(Some(target));
            }
            let Some((config, layers)) = restored(parent, &target, step.config, step.author) else {
                tracing::debug!(source = %target.id, "cache-from: layers do not follow history");
                continue;
            };
            let images = self.images.clone();
            let img =
                match tokio::task::spawn_blocking(move || images.create_image(&config, layers))
                    .await
                    .map_err(EngineError::internal)?
                {
                    Ok(img) => img,
                    // The source was removed meanwhile, its layer with it: a miss.
                    Err(berth_image::ImageError::NotFound(what)) => {
                        tracing::warn!(source = %target.id, "cache-from: {what} is gone");
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                };
            tracing::debug!(source = %target.id, image = %img.id, "cache-from: step restored");
            *sources = vec![target.id.to_string()];
            self.cache_store(step.key, parent.id.as_str(), img.id.as_str())?;
            return Ok(Some(img));
        }
        Ok(None)
    }

    /// The images `sources` name, in order; the names are replaced by IDs and the ones that
    /// match nothing are dropped.
    async fn cache_sources(&self, sources: &mut Vec<String>) -> Result<Vec<Image>> {
        let mut found = Vec::with_capacity(sources.len());
        let mut kept = Vec::with_capacity(sources.len());
        for name in sources.iter() {
            match self.image_by_name(name).await {
                Ok(img) => {
                    kept.push(img.id.to_string());
                    found.push(img);
                }
                Err(EngineError::NotFound(_) | EngineError::InvalidArgument(_)) => {
                    tracing::warn!("Could not look up {name} for cache resolution, skipping");
                }
                Err(e) => return Err(e),
            }
        }
        *sources = kept;
        Ok(found)
    }
}

/// dockerd's isValidParent and isValidConfig: `target` was built on `parent` and its next
/// history entry is the step's.
fn step_matches(target: &ImageConfig, parent: &ImageConfig, created_by: &str) -> bool {
    let (th, ph) = (&target.history, &parent.history);
    let (td, pd) = (&target.rootfs.diff_ids, &parent.rootfs.diff_ids);
    th.len() > ph.len()
        && td.len() >= pd.len()
        && th.starts_with(ph)
        && td.starts_with(pd)
        && th[ph.len()].created_by.as_deref().unwrap_or_default() == created_by
}

/// The image a step restored from `target`'s history entry n (n = the parent's history
/// length) is: its config and chain IDs. None when `target`'s layers do not line up with its
/// history (dockerd would index past them).
fn restored(
    parent: &Image,
    target: &Image,
    step_config: &ContainerConfig,
    author: &str,
) -> Option<(ImageConfig, Vec<berth_store::Digest>)> {
    let n = parent.config.history.len();
    let entry = target.config.history.get(n)?.clone();
    let mut layers = parent.layers.clone();
    let mut diff_ids = parent.config.rootfs.diff_ids.clone();
    if !entry.empty_layer {
        // The entry's layer is the one after those of the non-empty entries before it, which
        // are the parent's.
        let index = target.config.history[..n]
            .iter()
            .filter(|h| !h.empty_layer)
            .count();
        if index != layers.len() || target.layers.len() != target.config.rootfs.diff_ids.len() {
            return None;
        }
        layers.push(target.layers.get(index)?.clone());
        diff_ids.push(target.config.rootfs.diff_ids.get(index)?.clone());
    }
    let mut history = parent.config.history.clone();
    let created = entry.created.clone();
    history.push(entry);
    let mut extra = serde_json::Map::new();
    for k in ["os.version", "os.features"] {
        if let Some(v) = target.config.extra.get(k) {
            extra.insert(k.to_string(), v.clone());
        }
    }
    let config = ImageConfig {
        architecture: target.config.architecture.clone(),
        os: target.config.os.clone(),
        variant: target.config.variant.clone(),
        created,
        author: Some(author.to_string()).filter(|a| !a.is_empty()),
        config: Some(step_config.clone()),
        rootfs: berth_image::RootFs {
            diff_ids,
            ..Default::default()
        },
        history,
        extra,
    };
    Some((config, layers))
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_image::History;
    use berth_store::Digest;

    fn d(s: &str) -> Digest {
        Digest::from_sha256_bytes(s.as_bytes())
    }

    fn entry(created_by: &str, empty: bool) -> History {
        History {
            created: Some(format!("2024-01-01T00:00:00Z-{created_by}")),
            created_by: Some(created_by.to_string()),
            empty_layer: empty,
            ..Default::default()
        }
    }

    /// An image whose history is `steps` ((created-by, adds a layer)), one layer per step
    /// that adds one.
    fn image(steps: &[(&str, bool)]) -> Image {
        let mut config = ImageConfig {
            architecture: "amd64".into(),
            os: "linux".into(),
            ..Default::default()
        };
        let mut layers = Vec::new();
        for (text, layer) in steps {
            config.history.push(entry(text, !layer));
            if *layer {
                config.rootfs.diff_ids.push(d(&format!("diff {text}")));
                layers.push(d(&format!("chain {text}")));
            }
        }
        Image {
            id: d(&format!("{steps:?}")),
            config,
            repo_tags: Vec::new(),
            repo_digests: Vec::new(),
            layers,
            size: 0,
            added_at: 0,
            manifest_digest: None,
        }
    }

    const BASE: &[(&str, bool)] = &[("ADD rootfs", true), ("CMD sh", false)];

    fn target() -> Image {
        image(&[
            BASE[0],
            BASE[1],
            ("ENV A=1", false),
            ("RUN make", true),
            ("CMD run", false),
        ])
    }

    #[test]
    fn matches_a_source_built_on_the_parent_with_the_same_step() {
        let (base, t) = (image(BASE), target());
        assert!(step_matches(&t.config, &base.config, "ENV A=1"));
        assert!(!step_matches(&t.config, &base.config, "ENV A=2"));
        // Another parent: a different history, or the same history over other layers.
        let other = image(&[("ADD other", true), ("CMD sh", false)]);
        assert!(!step_matches(&t.config, &other.config, "ENV A=1"));
        let mut relayered = image(BASE);
        relayered.config.rootfs.diff_ids[0] = d("another layer");
        assert!(!step_matches(&t.config, &relayered.config, "ENV A=1"));
        // Nothing past the source's last entry.
        assert!(!step_matches(&t.config, &t.config, "CMD run"));
        // FROM scratch: any source's first entry.
        let scratch = image(&[]);
        assert!(step_matches(&t.config, &scratch.config, "ADD rootfs"));
    }

    #[test]
    fn restores_a_config_step_and_a_layer_step() {
        let (base, t) = (image(BASE), target());
        let cfg = ContainerConfig {
            env: vec!["A=1".into()],
            ..Default::default()
        };
        let (env_cfg, layers) = restored(&base, &t, &cfg, "").unwrap();
        assert_eq!(layers, base.layers);
        assert_eq!(env_cfg.history, t.config.history[..3]);
        assert_eq!(env_cfg.rootfs.diff_ids, base.config.rootfs.diff_ids);
        assert_eq!(env_cfg.created, t.config.history[2].created);
        assert_eq!(env_cfg.config.as_ref(), Some(&cfg));
        assert_eq!(env_cfg.author, None);

        // The next step (RUN) on the image just restored takes the source's second layer.
        let mut env_img = base.clone();
        env_img.config = env_cfg;
        let (run_cfg, layers) = restored(&env_img, &t, &cfg, "me").unwrap();
        assert_eq!(layers, t.layers);
        assert_eq!(run_cfg.rootfs.diff_ids, t.config.rootfs.diff_ids);
        assert_eq!(run_cfg.history, t.config.history[..4]);
        assert_eq!(run_cfg.author.as_deref(), Some("me"));
    }

    #[test]
    fn layers_out_of_line_with_history_restore_nothing() {
        let (base, mut t) = (image(BASE), target());
        let mut env_img = base.clone();
        env_img.config.history.push(t.config.history[2].clone());
        t.layers.pop();
        t.config.rootfs.diff_ids.pop();
        assert!(restored(&env_img, &t, &ContainerConfig::default(), "").is_none());
    }
}

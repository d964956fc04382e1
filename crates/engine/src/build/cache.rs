//! The build cache: step results by cache key, persisted so that a rebuild after a daemon
//! restart is still instant.
//!
//! A key is sha256(parent image ID, the instruction after expansion, the digest of every
//! file the step reads). A step's result is an ordinary image; the table remembers which
//! image a key gave and which image it was built on. Images that are the parent of a cached
//! step are the build's intermediate images: `docker images` hides them (as dockerd hides
//! images with children) and so `image prune` leaves them, until `builder prune` or the size
//! cap drops the cache and with it the intermediate images nothing else holds.
//!
//! Accounting: an entry's size is the layer its step added, measured on disk (the extracted
//! directory and the stored tar, both of which removing it frees), and counts as
//! cache only while every image holding that layer is a cache-only image (an untagged
//! intermediate no container uses). A layer a tagged or visible image or a container also
//! holds is `Shared`: pruning the entry would not free it, and `system df` counts it under
//! Images instead. Layers stack, so an entry's layer is held by its descendants too; evicting
//! an entry therefore evicts the entries built on it (they could never be reached again: a
//! lookup needs the parent image the evicted step gave).

use crate::container::inspect::Filters;
use crate::error::{EngineError, Result};
use crate::Engine;
use berth_store::db::BuildCacheRecord;
use berth_store::Digest;
use sha2::{Digest as _, Sha256};
use std::collections::{HashMap, HashSet};

pub(super) fn key(parent: &str, instruction: &str, digest: &str) -> String {
    let mut h = Sha256::new();
    for part in [parent, instruction, digest] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    hex::encode(h.finalize())
}

/// One cache entry as `system df` and prune see it.
#[derive(Debug, Clone)]
pub struct CacheEntry {
    pub record: BuildCacheRecord,
    /// The entry this step was built on (the step before it), if it is cached too.
    pub parent: Option<String>,
    /// The step: the history line of the image it gave.
    pub description: String,
    /// Bytes of the layer this step added (0 for metadata steps, for a layer an earlier
    /// entry already counts, and when the step's image is gone).
    pub size: u64,
    /// The layer is also held by an image or container outside the cache.
    pub shared: bool,
    /// A container uses the step's image.
    pub in_use: bool,
}

/// The cache's default size cap: 10% of the filesystem holding the data root, at most 20 GB.
/// A share of the disk (BuildKit's default GC policy is disk-relative too) keeps a small CI
/// disk from filling with cache, where a fixed figure would be too small for a workstation or
/// too large for a 10 GB VM; the ceiling bounds what one cap can hold back.
pub fn default_cache_cap(data_root: &std::path::Path) -> u64 {
    const CEILING: u64 = 20 * 1000 * 1000 * 1000;
    const FALLBACK: u64 = 2 * 1000 * 1000 * 1000;
    // The data root may not exist yet: measure the nearest existing ancestor.
    let probe = data_root
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(std::path::Path::new("/"));
    match rustix::fs::statvfs(probe) {
        Ok(st) => (st.f_blocks.saturating_mul(st.f_frsize) / 10).min(CEILING),
        Err(_) => FALLBACK,
    }
}

/// What `POST /build/prune` asks for.
#[derive(Debug, Clone, Default)]
pub struct PruneOptions {
    /// Also entries shared with images (their records; the images stay).
    pub all: bool,
    /// `keep-storage` / `reserved-space`: stop once the cache is at most this big.
    pub keep_storage: Option<u64>,
}

impl Engine {
    /// The image a step gave before, when it still exists.
    pub(super) async fn cache_lookup(&self, key: &str) -> Result<Option<berth_image::Image>> {
        let Some(id) = self
            .images
            .db()
            .build_cache_get(key, chrono::Utc::now().timestamp())?
        else {
            return Ok(None);
        };
        match self.image_by_name(&id).await {
            Ok(img) => Ok(Some(img)),
            Err(EngineError::NotFound(_)) => {
                // The image was removed (rmi): the entry is stale.
                self.images.db().build_cache_delete(key)?;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    pub(super) fn cache_store(&self, key: &str, parent: &str, image: &str) -> Result<()> {
        let now = chrono::Utc::now().timestamp();
        self.images.db().build_cache_put(&BuildCacheRecord {
            key: key.to_string(),
            image_id: image.to_string(),
            parent_id: parent.to_string(),
            created: now,
            last_used: now,
            usage_count: 1,
        })?;
        Ok(())
    }

    /// Intermediate images: untagged parents of cached steps (hidden from `docker images`).
    pub(crate) fn build_cache_parents(&self) -> HashSet<String> {
        self.images.db().build_cache_parents().unwrap_or_default()
    }

    /// Every cache entry with its size measured on disk, least recently used first.
    pub async fn build_cache_entries(&self) -> Result<Vec<CacheEntry>> {
        let records = self.images.db().build_cache_list()?;
        let images: HashMap<String, berth_image::Image> = self
            .images
            .list()?
            .into_iter()
            .map(|i| (i.id.to_string(), i))
            .collect();
        let parents: HashSet<&str> = records.iter().map(|r| r.parent_id.as_str()).collect();
        let cache_only = |img: &berth_image::Image| {
            img.repo_tags.is_empty()
                && parents.contains(img.id.as_str())
                && self.containers_using(img.id.as_str()).is_empty()
        };
        // Layers something outside the cache holds.
        let outside: HashSet<&Digest> = images
            .values()
            .filter(|i| !cache_only(i))
            .flat_map(|i| i.layers.iter())
            .collect();
        let own_layer = |r: &BuildCacheRecord| -> Option<Digest> {
            let img = images.get(&r.image_id)?;
            let below = images.get(&r.parent_id).map_or(0, |p| p.layers.len());
            (img.layers.len() > below)
                .then(|| img.layers.last().cloned())
                .flatten()
        };
        let owned: Vec<Option<Digest>> = records.iter().map(own_layer).collect();
        let sizes = self
            .layer_sizes(owned.iter().flatten().cloned().collect())
            .await?;
        // The newest entry that gave an image is the one a child step was built on.
        let by_image: HashMap<&str, &str> = records
            .iter()
            .map(|r| (r.image_id.as_str(), r.key.as_str()))
            .collect();
        let mut counted: HashSet<&Digest> = HashSet::new();
        let mut out = Vec::with_capacity(records.len());
        for (r, layer) in records.iter().zip(&owned) {
            let img = images.get(&r.image_id);
            let description = img
                .and_then(|i| i.config.history.last())
                .and_then(|h| h.created_by.clone())
                .unwrap_or_default();
            let shared = match (layer, img) {
                (Some(l), _) => outside.contains(l),
                (None, Some(i)) => !cache_only(i),
                (None, None) => false,
            };
            let size = match layer {
                Some(l) if counted.insert(l) => {
                    sizes.get(l).copied().unwrap_or(0) + self.layer_blob_size(l)
                }
                _ => 0,
            };
            out.push(CacheEntry {
                parent: by_image
                    .get(r.parent_id.as_str())
                    .filter(|k| **k != r.key)
                    .map(|k| k.to_string()),
                description,
                size,
                shared,
                in_use: !self.containers_using(&r.image_id).is_empty(),
                record: r.clone(),
            });
        }
        Ok(out)
    }

    /// The stored tar of a layer the builder committed (kept beside its extracted directory,
    /// and freed with it).
    fn layer_blob_size(&self, chain: &Digest) -> u64 {
        match self.images.db().get_layer(chain) {
            Ok(Some(l)) => l
                .blob
                .and_then(|b| self.images.content().size(&b).ok())
                .unwrap_or(0),
            _ => 0,
        }
    }

    /// Bytes the cache holds that pruning it would free.
    pub fn build_cache_size(entries: &[CacheEntry]) -> u64 {
        entries.iter().filter(|e| !e.shared).map(|e| e.size).sum()
    }

    /// POST /build/prune with dockerd's `all` and no size bound.
    pub async fn prune_build_cache(
        &self,
        filters: &Filters,
        all: bool,
    ) -> Result<(Vec<String>, u64)> {
        self.prune_build_cache_with(
            filters,
            &PruneOptions {
                all,
                keep_storage: None,
            },
        )
        .await
    }

    /// POST /build/prune: removes the matching entries (least recently used first, down to
    /// `keep_storage` when given) and the intermediate images only they held; returns the
    /// removed entry IDs and the bytes freed. Without `all`, entries shared with images stay
    /// (BuildKit's "dangling only"); entries in use always stay.
    pub async fn prune_build_cache_with(
        &self,
        filters: &Filters,
        opts: &PruneOptions,
    ) -> Result<(Vec<String>, u64)> {
        crate::prune::check_keys(
            filters,
            &[
                "until",
                "id",
                "parent",
                "type",
                "description",
                "inuse",
                "shared",
                "private",
            ],
        )?;
        let until = crate::prune::until_of(filters)?;
        let entries = self.build_cache_entries().await?;
        let candidates: HashSet<String> = entries
            .iter()
            .filter(|e| !e.in_use && (opts.all || !e.shared))
            .filter(|e| until.is_none_or(|u| e.record.last_used < u.timestamp()))
            .filter(|e| matches_filters(e, filters))
            .map(|e| e.record.key.clone())
            .collect();
        let limit = opts.keep_storage.unwrap_or(0);
        let chosen = choose_evictions(&entries, &candidates, limit, opts.keep_storage.is_none());
        let (mut deleted, mut freed) = self.evict(&entries, &chosen).await?;
        // The contexts kept for Berth's CLI are cache too (BuildKit's `source.local`
        // records): an unfiltered prune removes those no build is using.
        if filters.is_empty() && opts.keep_storage.is_none() {
            let root = self.cfg.data_root.clone();
            let (ids, bytes) = tokio::task::spawn_blocking(move || super::synced::prune(&root))
                .await
                .map_err(EngineError::internal)?;
            deleted.extend(ids);
            freed += bytes;
        }
        Ok((deleted, freed))
    }

    /// Enforces the daemon's `--builder-cache-max-size` after a build: least recently used
    /// entries go (with the steps built on them) until the cache fits.
    pub async fn enforce_build_cache_cap(&self) -> Result<()> {
        let Some(cap) = self.cfg.builder_cache_max_size.filter(|c| *c > 0) else {
            return Ok(());
        };
        let entries = self.build_cache_entries().await?;
        if Self::build_cache_size(&entries) <= cap {
            return Ok(());
        }
        let candidates: HashSet<String> = entries
            .iter()
            .filter(|e| !e.in_use)
            .map(|e| e.record.key.clone())
            .collect();
        let chosen = choose_evictions(&entries, &candidates, cap, false);
        let (removed, freed) = self.evict(&entries, &chosen).await?;
        tracing::info!(
            entries = removed.len(),
            freed,
            cap,
            "build cache over its size cap: evicted least recently used steps"
        );
        Ok(())
    }

    /// Deletes the chosen records, then the images no remaining record needs that nothing
    /// else holds (untagged, no container), newest first so each removal frees its layer.
    async fn evict(&self, entries: &[CacheEntry], chosen: &[String]) -> Result<(Vec<String>, u64)> {
        let db = self.images.db().clone();
        let chosen_set: HashSet<&str> = chosen.iter().map(String::as_str).collect();
        let mut images = Vec::new();
        for e in entries
            .iter()
            .filter(|e| chosen_set.contains(e.record.key.as_str()))
        {
            db.build_cache_delete(&e.record.key)?;
            images.push(e.record.image_id.clone());
            images.push(e.record.parent_id.clone());
        }
        let remaining: Vec<BuildCacheRecord> = db.build_cache_list()?;
        let needed: HashSet<&str> = remaining
            .iter()
            .flat_map(|r| [r.image_id.as_str(), r.parent_id.as_str()])
            .collect();
        // Only images the cache hid (parents of a step) are the cache's to remove; a step's
        // final, visible image is the user's.
        let hidden: HashSet<&str> = entries
            .iter()
            .map(|e| e.record.parent_id.as_str())
            .collect();
        let mut freed = 0u64;
        let mut seen = HashSet::new();
        // Children were stored after their parents: walk back so each removal frees what only
        // it held.
        for id in images.iter().rev() {
            if !seen.insert(id.as_str())
                || needed.contains(id.as_str())
                || !hidden.contains(id.as_str())
            {
                continue;
            }
            let Ok(img) = self.image_by_name(id).await else {
                continue;
            };
            if !img.repo_tags.is_empty() || !self.containers_using(img.id.as_str()).is_empty() {
                continue;
            }
            match self.prune_one_image(img.id.as_str()).await {
                Ok((_, bytes)) => freed += bytes,
                Err(e) => tracing::warn!(image = %id, "build cache: remove image: {e}"),
            }
        }
        tracing::info!(entries = chosen.len(), freed, "pruned build cache");
        Ok((chosen.to_vec(), freed))
    }
}

/// BuildKit's prune filters on a record: `id` (prefix), `parent`, `description` (substring),
/// `type`, `inuse`, `shared`, `private` (not shared).
fn matches_filters(e: &CacheEntry, filters: &Filters) -> bool {
    let truth = |k: &str, v: bool| {
        filters.get(k).is_none_or(|vals| {
            vals.iter().all(|w| match w.to_ascii_lowercase().as_str() {
                "" | "true" | "1" => v,
                _ => !v,
            })
        })
    };
    let any = |k: &str, f: &dyn Fn(&str) -> bool| {
        filters.get(k).is_none_or(|vals| vals.iter().any(|w| f(w)))
    };
    any("id", &|w| e.record.key.starts_with(w))
        && any("parent", &|w| {
            e.parent.as_deref().is_some_and(|p| p.starts_with(w))
        })
        && any("description", &|w| e.description.contains(w))
        && any("type", &|w| w == "regular")
        && truth("inuse", e.in_use)
        && truth("shared", e.shared)
        && truth("private", !e.shared)
}

/// Which entries to remove: among `candidates` in least-recently-used order, each with the
/// entries built on it, until the cache's unshared size is at most `limit` (or all of them
/// when `everything`).
fn choose_evictions(
    entries: &[CacheEntry],
    candidates: &HashSet<String>,
    limit: u64,
    everything: bool,
) -> Vec<String> {
    let mut children: HashMap<&str, Vec<&CacheEntry>> = HashMap::new();
    for e in entries {
        if let Some(p) = &e.parent {
            children.entry(p.as_str()).or_default().push(e);
        }
    }
    let mut total = Engine::build_cache_size(entries);
    let mut gone: HashSet<&str> = HashSet::new();
    let mut order = Vec::new();
    // Entries arrive oldest-used first; among equals the newer (a child step) goes first.
    let mut lru: Vec<&CacheEntry> = entries.iter().collect();
    lru.sort_by_key(|e| (e.record.last_used, std::cmp::Reverse(e.record.created)));
    for e in lru {
        if !everything && total <= limit {
            break;
        }
        if !candidates.contains(&e.record.key) || gone.contains(e.record.key.as_str()) {
            continue;
        }
        // The entry and its descendants, if none of them must stay.
        let mut subtree = vec![e];
        let mut i = 0;
        while i < subtree.len() {
            if let Some(c) = children.get(subtree[i].record.key.as_str()) {
                subtree.extend(c.iter().filter(|c| !gone.contains(c.record.key.as_str())));
            }
            i += 1;
        }
        if subtree.iter().any(|s| s.in_use) {
            continue;
        }
        for s in subtree {
            if gone.insert(s.record.key.as_str()) {
                if !s.shared {
                    total = total.saturating_sub(s.size);
                }
                order.push(s.record.key.clone());
            }
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, parent: Option<&str>, last_used: i64, size: u64) -> CacheEntry {
        CacheEntry {
            record: BuildCacheRecord {
                key: key.into(),
                image_id: format!("img-{key}"),
                parent_id: parent.map_or("base".into(), |p| format!("img-{p}")),
                created: last_used,
                last_used,
                usage_count: 1,
            },
            parent: parent.map(str::to_string),
            description: format!("step {key}"),
            size,
            shared: false,
            in_use: false,
        }
    }

    #[test]
    fn evicts_least_recently_used_with_descendants_until_under_the_limit() {
        // a <- b (old build), c <- d (recent build)
        let entries = vec![
            entry("a", None, 10, 100),
            entry("b", Some("a"), 10, 50),
            entry("c", None, 20, 100),
            entry("d", Some("c"), 20, 10),
        ];
        let all: HashSet<String> = entries.iter().map(|e| e.record.key.clone()).collect();
        let chosen = choose_evictions(&entries, &all, 150, false);
        assert_eq!(chosen, vec!["a".to_string(), "b".to_string()]);
        assert!(choose_evictions(&entries, &all, 1000, false).is_empty());
        assert_eq!(choose_evictions(&entries, &all, 0, true).len(), 4);
        // Only candidates (and what is built on them) go.
        let only_c: HashSet<String> = ["c".to_string()].into();
        assert_eq!(
            choose_evictions(&entries, &only_c, 0, true),
            vec!["c".to_string(), "d".to_string()]
        );
    }

    #[test]
    fn in_use_subtrees_stay() {
        let mut entries = vec![entry("a", None, 10, 100), entry("b", Some("a"), 10, 50)];
        entries[1].in_use = true;
        let all: HashSet<String> = entries.iter().map(|e| e.record.key.clone()).collect();
        assert!(choose_evictions(&entries, &all, 0, true).is_empty());
    }

    #[test]
    fn filters() {
        let e = entry("abc", Some("p"), 1, 1);
        let f = |k: &str, v: &str| -> Filters { [(k.to_string(), vec![v.to_string()])].into() };
        assert!(matches_filters(&e, &f("id", "ab")));
        assert!(!matches_filters(&e, &f("id", "x")));
        assert!(matches_filters(&e, &f("description", "step")));
        assert!(matches_filters(&e, &f("private", "true")));
        assert!(!matches_filters(&e, &f("shared", "true")));
        assert!(matches_filters(&e, &f("parent", "p")));
    }
}

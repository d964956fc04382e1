//! The build cache: step results by cache key, persisted so that a rebuild after a daemon
//! restart is still instant.
//!
//! A key is sha256(parent image ID, the instruction after expansion, the digest of every
//! file the step reads). A step's result is an ordinary image; the table remembers which
//! image a key gave and which image it was built on. Images that are the parent of a cached
//! step are the build's intermediate images: `docker images` hides them (as dockerd hides
//! images with children) and so `image prune` leaves them, until `builder prune` drops the
//! cache and with it the intermediate images nothing else holds.

use crate::container::inspect::Filters;
use crate::error::{EngineError, Result};
use crate::Engine;
use berth_store::db::BuildCacheRecord;
use sha2::{Digest as _, Sha256};
use std::collections::HashSet;

pub(super) fn key(parent: &str, instruction: &str, digest: &str) -> String {
    let mut h = Sha256::new();
    for part in [parent, instruction, digest] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    hex::encode(h.finalize())
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
        })?;
        Ok(())
    }

    /// Intermediate images: untagged parents of cached steps (hidden from `docker images`).
    pub(crate) fn build_cache_parents(&self) -> HashSet<String> {
        self.images.db().build_cache_parents().unwrap_or_default()
    }
}

impl Engine {
    /// POST /build/prune: removes build cache records (all with `all`, else those not used
    /// in the last `until`/`keep-storage` sense dockerd's classic builder has: everything
    /// unused); returns the removed cache IDs and the bytes freed.
    pub async fn prune_build_cache(
        &self,
        filters: &Filters,
        all: bool,
    ) -> Result<(Vec<String>, u64)> {
        let _ = all;
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
        let parents = self.build_cache_parents();
        let db = self.images.db().clone();
        let mut removed = Vec::new();
        let mut images = Vec::new();
        for r in db.build_cache_list()? {
            if until.is_some_and(|u| r.last_used >= u.timestamp()) {
                continue;
            }
            db.build_cache_delete(&r.key)?;
            removed.push(r.key);
            images.push(r.image_id);
        }
        // Children first, so each removal frees what only it held.
        images.reverse();
        let still = self.build_cache_parents();
        let mut freed = 0u64;
        for id in images {
            if !parents.contains(&id) || still.contains(&id) {
                continue;
            }
            let Ok(img) = self.image_by_name(&id).await else {
                continue;
            };
            if !img.repo_tags.is_empty() || !self.containers_using(img.id.as_str()).is_empty() {
                continue;
            }
            match self.prune_one_image(img.id.as_str()).await {
                Ok((_, bytes)) => freed += bytes,
                Err(e) => tracing::warn!(image = %id, "build cache prune: {e}"),
            }
        }
        tracing::info!(entries = removed.len(), freed, "pruned build cache");
        Ok((removed, freed))
    }
}

//! The metadata database (`<root>/berth.db`): images, layers, tags, containers, networks,
//! volumes.
//!
//! One connection behind a mutex: SQLite serialises writers anyway, and the
//! engine calls us from blocking threads.

use std::path::Path;
use std::str::FromStr;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use crate::digest::Digest;
use crate::error::StoreError;

/// Schema versions, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE layers (
    chain_id        TEXT PRIMARY KEY,
    diff_id         TEXT NOT NULL,
    parent          TEXT,
    blob            TEXT,
    blob_media_type TEXT NOT NULL,
    size            INTEGER NOT NULL
);
CREATE TABLE images (
    id              TEXT PRIMARY KEY,
    manifest_digest TEXT,
    size            INTEGER NOT NULL,
    added_at        INTEGER NOT NULL
);
CREATE TABLE image_layers (
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    idx      INTEGER NOT NULL,
    chain_id TEXT NOT NULL REFERENCES layers(chain_id),
    PRIMARY KEY (image_id, idx)
);
CREATE INDEX image_layers_chain ON image_layers(chain_id);
CREATE TABLE tags (
    reference TEXT PRIMARY KEY,
    image_id  TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE
);
CREATE INDEX tags_image ON tags(image_id);
CREATE TABLE containers (
    id     TEXT PRIMARY KEY,
    name   TEXT NOT NULL UNIQUE,
    record TEXT NOT NULL
);
"#,
    r#"
CREATE TABLE networks (
    id     TEXT PRIMARY KEY,
    name   TEXT NOT NULL UNIQUE,
    record TEXT NOT NULL
);
"#,
    r#"
CREATE TABLE volumes (
    name   TEXT PRIMARY KEY,
    record TEXT NOT NULL
);
"#,
    r#"
CREATE TABLE build_cache (
    key       TEXT PRIMARY KEY,
    image_id  TEXT NOT NULL,
    parent_id TEXT NOT NULL,
    created   INTEGER NOT NULL,
    last_used INTEGER NOT NULL
);
CREATE INDEX build_cache_image ON build_cache(image_id);
CREATE INDEX build_cache_parent ON build_cache(parent_id);
"#,
    // How often a step was reused (`system df -v`'s USAGE COUNT).
    r#"
ALTER TABLE build_cache ADD COLUMN usage_count INTEGER NOT NULL DEFAULT 1;
"#,
    // Where a layer's compressed form is known to be (dockerd's v2 metadata): filled by pulls
    // and pushes, read by pushes to skip ("Layer already exists") or mount ("Mounted from")
    // a blob instead of uploading it, and to find the digest a layer compressed here had.
    r#"
CREATE TABLE layer_sources (
    diff_id    TEXT NOT NULL,
    blob       TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size       INTEGER NOT NULL,
    registry   TEXT NOT NULL,
    repository TEXT NOT NULL,
    PRIMARY KEY (diff_id, blob, registry, repository)
);
"#,
];

/// An image: its config digest and the layers it stacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRecord {
    /// The config blob's digest.
    pub id: Digest,
    /// Chain ids, base first.
    pub layers: Vec<Digest>,
    pub manifest_digest: Option<Digest>,
    pub size: u64,
    /// Unix seconds.
    pub added_at: i64,
}

/// One extracted layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerRecord {
    pub chain_id: Digest,
    pub diff_id: Digest,
    pub parent: Option<Digest>,
    /// The archive blob as received, in the ContentStore.
    pub blob: Option<Digest>,
    pub blob_media_type: String,
    /// Bytes of the uncompressed tar.
    pub size: u64,
}

pub struct MetadataDb {
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for MetadataDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetadataDb").finish_non_exhaustive()
    }
}

fn digest_col(s: String) -> Result<Digest, StoreError> {
    Digest::from_str(&s).map_err(|_| StoreError::CorruptRecord(format!("bad digest {s:?}")))
}

fn opt_digest_col(s: Option<String>) -> Result<Option<Digest>, StoreError> {
    s.map(digest_col).transpose()
}

impl MetadataDb {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let tx = conn.transaction()?;
        for (i, m) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
            tracing::info!(version = i + 1, "migrating metadata database");
            tx.execute_batch(m)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        }
        tx.commit()?;
        Ok(MetadataDb {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a half-applied
        // transaction (rusqlite rolls back on drop), so poisoning is ignored.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` in one transaction: everything or nothing is written.
    pub fn transaction<T>(
        &self,
        f: impl FnOnce(&DbTx<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn();
        let tx = DbTx {
            tx: conn.transaction()?,
        };
        let out = f(&tx)?;
        tx.tx.commit()?;
        Ok(out)
    }

    pub fn put_image(&self, r: &ImageRecord) -> Result<(), StoreError> {
        self.transaction(|tx| tx.put_image(r))
    }

    pub fn get_image(&self, id: &Digest) -> Result<Option<ImageRecord>, StoreError> {
        self.transaction(|tx| tx.get_image(id))
    }

    pub fn list_images(&self) -> Result<Vec<ImageRecord>, StoreError> {
        self.transaction(|tx| {
            let ids: Vec<String> = {
                let mut st = tx
                    .tx
                    .prepare("SELECT id FROM images ORDER BY added_at, id")?;
                let rows = st.query_map([], |r| r.get(0))?;
                rows.collect::<Result<_, _>>()?
            };
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(r) = tx.get_image(&digest_col(id)?)? {
                    out.push(r);
                }
            }
            Ok(out)
        })
    }

    /// Deletes the image and its tags; layers stay.
    pub fn delete_image(&self, id: &Digest) -> Result<(), StoreError> {
        self.transaction(|tx| tx.delete_image(id))
    }

    /// Points `reference` at `id`; returns the previous target.
    pub fn set_tag(&self, reference: &str, id: &Digest) -> Result<Option<Digest>, StoreError> {
        self.transaction(|tx| tx.set_tag(reference, id))
    }

    pub fn remove_tag(&self, reference: &str) -> Result<bool, StoreError> {
        self.transaction(|tx| tx.remove_tag(reference))
    }

    pub fn get_tag(&self, reference: &str) -> Result<Option<Digest>, StoreError> {
        self.transaction(|tx| tx.get_tag(reference))
    }

    pub fn list_tags(&self) -> Result<Vec<(String, Digest)>, StoreError> {
        let conn = self.conn();
        let mut st = conn.prepare("SELECT reference, image_id FROM tags ORDER BY reference")?;
        let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (r, id) = row?;
            out.push((r, digest_col(id)?));
        }
        Ok(out)
    }

    pub fn put_layer(&self, r: &LayerRecord) -> Result<(), StoreError> {
        self.transaction(|tx| tx.put_layer(r))
    }

    pub fn get_layer(&self, chain: &Digest) -> Result<Option<LayerRecord>, StoreError> {
        self.transaction(|tx| tx.get_layer(chain))
    }

    pub fn list_layers(&self) -> Result<Vec<LayerRecord>, StoreError> {
        self.transaction(|tx| {
            let chains: Vec<String> = {
                let mut st = tx
                    .tx
                    .prepare("SELECT chain_id FROM layers ORDER BY chain_id")?;
                let rows = st.query_map([], |r| r.get(0))?;
                rows.collect::<Result<_, _>>()?
            };
            let mut out = Vec::new();
            for c in chains {
                if let Some(l) = tx.get_layer(&digest_col(c)?)? {
                    out.push(l);
                }
            }
            Ok(out)
        })
    }

    /// Fails (foreign key) while an image still references the layer.
    pub fn delete_layer(&self, chain: &Digest) -> Result<(), StoreError> {
        self.transaction(|tx| tx.delete_layer(chain))
    }

    /// True when any image references the layer.
    pub fn layer_in_use(&self, chain: &Digest) -> Result<bool, StoreError> {
        self.transaction(|tx| tx.layer_in_use(chain))
    }

    /// Upserts a container by id. Another container holding `name` is a `NameConflict`.
    pub fn put_container(&self, id: &str, name: &str, record_json: &str) -> Result<(), StoreError> {
        self.transaction(|tx| {
            let holder: Option<String> = tx
                .tx
                .query_row("SELECT id FROM containers WHERE name = ?1", [name], |r| {
                    r.get(0)
                })
                .optional()?;
            if holder.as_deref().is_some_and(|h| h != id) {
                return Err(StoreError::NameConflict(name.to_string()));
            }
            tx.tx.execute(
                "INSERT INTO containers (id, name, record) VALUES (?1, ?2, ?3)
                 ON CONFLICT(id) DO UPDATE SET name = excluded.name, record = excluded.record",
                params![id, name, record_json],
            )?;
            Ok(())
        })
    }

    pub fn delete_container(&self, id: &str) -> Result<(), StoreError> {
        self.conn()
            .execute("DELETE FROM containers WHERE id = ?1", [id])?;
        Ok(())
    }

    /// (id, name, json) of every container.
    pub fn list_containers(&self) -> Result<Vec<(String, String, String)>, StoreError> {
        let conn = self.conn();
        let mut st = conn.prepare("SELECT id, name, record FROM containers ORDER BY id")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

impl MetadataDb {
    /// Upserts a network by id; another network holding `name` is a `NameConflict`.
    pub fn put_network(&self, id: &str, name: &str, record_json: &str) -> Result<(), StoreError> {
        let conn = self.conn();
        let holder: Option<String> = conn
            .query_row("SELECT id FROM networks WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?;
        if holder.as_deref().is_some_and(|h| h != id) {
            return Err(StoreError::NameConflict(name.to_string()));
        }
        conn.execute(
            "INSERT INTO networks (id, name, record) VALUES (?1, ?2, ?3)
             ON CONFLICT(id) DO UPDATE SET name = excluded.name, record = excluded.record",
            params![id, name, record_json],
        )?;
        Ok(())
    }

    pub fn delete_network(&self, id: &str) -> Result<(), StoreError> {
        self.conn()
            .execute("DELETE FROM networks WHERE id = ?1", [id])?;
        Ok(())
    }

    /// (id, json) of every network.
    pub fn list_networks(&self) -> Result<Vec<(String, String)>, StoreError> {
        let conn = self.conn();
        let mut st = conn.prepare("SELECT id, record FROM networks ORDER BY id")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

impl MetadataDb {
    pub fn put_volume(&self, name: &str, record_json: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO volumes (name, record) VALUES (?1, ?2)
             ON CONFLICT(name) DO UPDATE SET record = excluded.record",
            params![name, record_json],
        )?;
        Ok(())
    }

    pub fn delete_volume(&self, name: &str) -> Result<(), StoreError> {
        self.conn()
            .execute("DELETE FROM volumes WHERE name = ?1", [name])?;
        Ok(())
    }

    /// (name, json) of every volume.
    pub fn list_volumes(&self) -> Result<Vec<(String, String)>, StoreError> {
        let conn = self.conn();
        let mut st = conn.prepare("SELECT name, record FROM volumes ORDER BY name")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// A layer's compressed blob as one repository of one registry holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerSource {
    /// The uncompressed layer tar's digest.
    pub diff_id: Digest,
    /// The blob's digest (the compressed archive).
    pub blob: Digest,
    pub media_type: String,
    pub size: u64,
    /// `host[:port]` as references name it (`docker.io`).
    pub registry: String,
    /// The repository path (`library/busybox`).
    pub repository: String,
}

impl MetadataDb {
    /// Records (or refreshes) where a layer's blob is.
    pub fn add_layer_source(&self, s: &LayerSource) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO layer_sources (diff_id, blob, media_type, size, registry, repository)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(diff_id, blob, registry, repository) DO UPDATE SET
                 media_type = excluded.media_type, size = excluded.size",
            params![
                s.diff_id.as_str(),
                s.blob.as_str(),
                s.media_type,
                s.size as i64,
                s.registry,
                s.repository
            ],
        )?;
        Ok(())
    }

    /// Where the layer `diff_id` is known to be, most recently recorded last.
    pub fn layer_sources(&self, diff_id: &Digest) -> Result<Vec<LayerSource>, StoreError> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT blob, media_type, size, registry, repository FROM layer_sources
             WHERE diff_id = ?1 ORDER BY rowid",
        )?;
        let rows = st.query_map([diff_id.as_str()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (blob, media_type, size, registry, repository) = row?;
            out.push(LayerSource {
                diff_id: diff_id.clone(),
                blob: digest_col(blob)?,
                media_type,
                size: size.max(0) as u64,
                registry,
                repository,
            });
        }
        Ok(out)
    }

    /// Forgets one source (the registry no longer has the blob).
    pub fn remove_layer_source(&self, s: &LayerSource) -> Result<(), StoreError> {
        self.conn().execute(
            "DELETE FROM layer_sources
             WHERE diff_id = ?1 AND blob = ?2 AND registry = ?3 AND repository = ?4",
            params![
                s.diff_id.as_str(),
                s.blob.as_str(),
                s.registry,
                s.repository
            ],
        )?;
        Ok(())
    }
}

/// One step result of the classic builder: the image a build step produced from `parent_id`,
/// found again by its cache key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildCacheRecord {
    pub key: String,
    pub image_id: String,
    pub parent_id: String,
    /// Unix seconds.
    pub created: i64,
    pub last_used: i64,
    /// Builds that used the step, the one that made it included.
    pub usage_count: i64,
}

const BUILD_CACHE_COLUMNS: &str = "key, image_id, parent_id, created, last_used, usage_count";

impl MetadataDb {
    /// Looks a step up and marks it used.
    pub fn build_cache_get(&self, key: &str, now: i64) -> Result<Option<String>, StoreError> {
        let conn = self.conn();
        let id: Option<String> = conn
            .query_row(
                "SELECT image_id FROM build_cache WHERE key = ?1",
                [key],
                |r| r.get(0),
            )
            .optional()?;
        if id.is_some() {
            conn.execute(
                "UPDATE build_cache SET last_used = ?2, usage_count = usage_count + 1
                 WHERE key = ?1",
                params![key, now],
            )?;
        }
        Ok(id)
    }

    /// Records a step (a rebuild of a known key replaces its image and counts as a use).
    pub fn build_cache_put(&self, r: &BuildCacheRecord) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO build_cache (key, image_id, parent_id, created, last_used, usage_count)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(key) DO UPDATE SET image_id = excluded.image_id,
               parent_id = excluded.parent_id, last_used = excluded.last_used,
               usage_count = usage_count + 1",
            params![
                r.key,
                r.image_id,
                r.parent_id,
                r.created,
                r.last_used,
                r.usage_count
            ],
        )?;
        Ok(())
    }

    pub fn build_cache_delete(&self, key: &str) -> Result<(), StoreError> {
        self.conn()
            .execute("DELETE FROM build_cache WHERE key = ?1", [key])?;
        Ok(())
    }

    /// Every step, least recently used first (the order eviction takes them in).
    pub fn build_cache_list(&self) -> Result<Vec<BuildCacheRecord>, StoreError> {
        let conn = self.conn();
        let mut st = conn.prepare(&format!(
            "SELECT {BUILD_CACHE_COLUMNS} FROM build_cache ORDER BY last_used, created, key"
        ))?;
        let rows = st.query_map([], |r| {
            Ok(BuildCacheRecord {
                key: r.get(0)?,
                image_id: r.get(1)?,
                parent_id: r.get(2)?,
                created: r.get(3)?,
                last_used: r.get(4)?,
                usage_count: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Images that are the parent of a cached step: the build's intermediate images.
    pub fn build_cache_parents(&self) -> Result<std::collections::HashSet<String>, StoreError> {
        let conn = self.conn();
        let mut st = conn.prepare("SELECT DISTINCT parent_id FROM build_cache")?;
        let rows = st.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// Operations inside one [`MetadataDb::transaction`].
pub struct DbTx<'a> {
    tx: Transaction<'a>,
}

impl DbTx<'_> {
    /// Inserts or replaces the image and its layer list.
    pub fn put_image(&self, r: &ImageRecord) -> Result<(), StoreError> {
        self.tx.execute(
            "INSERT INTO images (id, manifest_digest, size, added_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(id) DO UPDATE SET manifest_digest = excluded.manifest_digest,
                 size = excluded.size, added_at = excluded.added_at",
            params![
                r.id.as_str(),
                r.manifest_digest.as_ref().map(Digest::as_str),
                r.size as i64,
                r.added_at
            ],
        )?;
        self.tx.execute(
            "DELETE FROM image_layers WHERE image_id = ?1",
            [r.id.as_str()],
        )?;
        for (i, l) in r.layers.iter().enumerate() {
            self.tx.execute(
                "INSERT INTO image_layers (image_id, idx, chain_id) VALUES (?1, ?2, ?3)",
                params![r.id.as_str(), i as i64, l.as_str()],
            )?;
        }
        Ok(())
    }

    pub fn get_image(&self, id: &Digest) -> Result<Option<ImageRecord>, StoreError> {
        let row: Option<(Option<String>, i64, i64)> = self
            .tx
            .query_row(
                "SELECT manifest_digest, size, added_at FROM images WHERE id = ?1",
                [id.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((manifest, size, added_at)) = row else {
            return Ok(None);
        };
        let mut st = self
            .tx
            .prepare("SELECT chain_id FROM image_layers WHERE image_id = ?1 ORDER BY idx")?;
        let layers = st
            .query_map([id.as_str()], |r| r.get::<_, String>(0))?
            .map(|r| r.map_err(StoreError::from).and_then(digest_col))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(ImageRecord {
            id: id.clone(),
            layers,
            manifest_digest: opt_digest_col(manifest)?,
            size: size as u64,
            added_at,
        }))
    }

    pub fn delete_image(&self, id: &Digest) -> Result<(), StoreError> {
        // Tags and layer links go with it (ON DELETE CASCADE).
        self.tx
            .execute("DELETE FROM images WHERE id = ?1", [id.as_str()])?;
        Ok(())
    }

    pub fn set_tag(&self, reference: &str, id: &Digest) -> Result<Option<Digest>, StoreError> {
        let prev = self.get_tag(reference)?;
        self.tx.execute(
            "INSERT INTO tags (reference, image_id) VALUES (?1, ?2)
             ON CONFLICT(reference) DO UPDATE SET image_id = excluded.image_id",
            params![reference, id.as_str()],
        )?;
        Ok(prev)
    }

    pub fn remove_tag(&self, reference: &str) -> Result<bool, StoreError> {
        Ok(self
            .tx
            .execute("DELETE FROM tags WHERE reference = ?1", [reference])?
            > 0)
    }

    pub fn get_tag(&self, reference: &str) -> Result<Option<Digest>, StoreError> {
        let id: Option<String> = self
            .tx
            .query_row(
                "SELECT image_id FROM tags WHERE reference = ?1",
                [reference],
                |r| r.get(0),
            )
            .optional()?;
        opt_digest_col(id)
    }

    /// Inserts the layer, or keeps the existing record of the same chain id.
    pub fn put_layer(&self, r: &LayerRecord) -> Result<(), StoreError> {
        self.tx.execute(
            "INSERT INTO layers (chain_id, diff_id, parent, blob, blob_media_type, size)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(chain_id) DO UPDATE SET
                 blob = COALESCE(layers.blob, excluded.blob),
                 blob_media_type = CASE WHEN layers.blob IS NULL
                     THEN excluded.blob_media_type ELSE layers.blob_media_type END",
            params![
                r.chain_id.as_str(),
                r.diff_id.as_str(),
                r.parent.as_ref().map(Digest::as_str),
                r.blob.as_ref().map(Digest::as_str),
                r.blob_media_type,
                r.size as i64
            ],
        )?;
        Ok(())
    }

    pub fn get_layer(&self, chain: &Digest) -> Result<Option<LayerRecord>, StoreError> {
        type Row = (String, Option<String>, Option<String>, String, i64);
        let row: Option<Row> = self
            .tx
            .query_row(
                "SELECT diff_id, parent, blob, blob_media_type, size FROM layers WHERE chain_id = ?1",
                [chain.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .optional()?;
        let Some((diff_id, parent, blob, blob_media_type, size)) = row else {
            return Ok(None);
        };
        Ok(Some(LayerRecord {
            chain_id: chain.clone(),
            diff_id: digest_col(diff_id)?,
            parent: opt_digest_col(parent)?,
            blob: opt_digest_col(blob)?,
            blob_media_type,
            size: size as u64,
        }))
    }

    pub fn delete_layer(&self, chain: &Digest) -> Result<(), StoreError> {
        self.tx
            .execute("DELETE FROM layers WHERE chain_id = ?1", [chain.as_str()])?;
        Ok(())
    }

    pub fn layer_in_use(&self, chain: &Digest) -> Result<bool, StoreError> {
        Ok(self.tx.query_row(
            "SELECT EXISTS(SELECT 1 FROM image_layers WHERE chain_id = ?1)",
            [chain.as_str()],
            |r| r.get(0),
        )?)
    }

    /// True when any layer record names `blob` as its archive.
    pub fn blob_in_use(&self, blob: &Digest) -> Result<bool, StoreError> {
        Ok(self.tx.query_row(
            "SELECT EXISTS(SELECT 1 FROM layers WHERE blob = ?1)",
            [blob.as_str()],
            |r| r.get(0),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Digest {
        Digest::from_sha256_bytes(s.as_bytes())
    }

    fn layer(name: &str) -> LayerRecord {
        LayerRecord {
            chain_id: d(name),
            diff_id: d(name),
            parent: None,
            blob: Some(d(&format!("blob-{name}"))),
            blob_media_type: "application/vnd.oci.image.layer.v1.tar".into(),
            size: 10,
        }
    }

    #[test]
    fn images_tags_layers() {
        let dir = tempfile::tempdir().unwrap();
        let db = MetadataDb::open(&dir.path().join("berth.db")).unwrap();
        let l = layer("l1");
        db.put_layer(&l).unwrap();
        assert_eq!(db.get_layer(&l.chain_id).unwrap(), Some(l.clone()));
        let img = ImageRecord {
            id: d("cfg"),
            layers: vec![l.chain_id.clone()],
            manifest_digest: None,
            size: 10,
            added_at: 5,
        };
        db.put_image(&img).unwrap();
        assert_eq!(db.get_image(&img.id).unwrap(), Some(img.clone()));
        assert_eq!(db.list_images().unwrap(), vec![img.clone()]);
        assert!(db.layer_in_use(&l.chain_id).unwrap());
        // The foreign key keeps a used layer.
        assert!(db.delete_layer(&l.chain_id).is_err());

        assert_eq!(db.set_tag("docker.io/library/a:1", &img.id).unwrap(), None);
        assert_eq!(
            db.set_tag("docker.io/library/a:1", &img.id).unwrap(),
            Some(img.id.clone())
        );
        assert_eq!(
            db.get_tag("docker.io/library/a:1").unwrap(),
            Some(img.id.clone())
        );
        assert_eq!(db.list_tags().unwrap().len(), 1);
        // Tagging an unknown image fails.
        assert!(db.set_tag("x", &d("nope")).is_err());

        db.delete_image(&img.id).unwrap();
        assert_eq!(db.get_image(&img.id).unwrap(), None);
        assert!(db.list_tags().unwrap().is_empty());
        assert!(!db.layer_in_use(&l.chain_id).unwrap());
        db.delete_layer(&l.chain_id).unwrap();
        assert_eq!(db.get_layer(&l.chain_id).unwrap(), None);
        assert!(!db.remove_tag("docker.io/library/a:1").unwrap());
    }

    #[test]
    fn transaction_is_all_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let db = MetadataDb::open(&dir.path().join("berth.db")).unwrap();
        let r = db.transaction(|tx| {
            tx.put_layer(&layer("l1"))?;
            // Unknown layer: foreign key violation aborts everything.
            tx.put_image(&ImageRecord {
                id: d("cfg"),
                layers: vec![d("missing")],
                manifest_digest: None,
                size: 0,
                added_at: 0,
            })
        });
        assert!(r.is_err());
        assert_eq!(db.get_layer(&d("l1")).unwrap(), None);
    }

    #[test]
    fn volumes_upsert_and_delete() {
        let dir = tempfile::tempdir().unwrap();
        let db = MetadataDb::open(&dir.path().join("berth.db")).unwrap();
        db.put_volume("data", "{}").unwrap();
        db.put_volume("data", "{\"a\":1}").unwrap();
        assert_eq!(
            db.list_volumes().unwrap(),
            vec![("data".to_string(), "{\"a\":1}".to_string())]
        );
        db.delete_volume("data").unwrap();
        assert!(db.list_volumes().unwrap().is_empty());
    }

    #[test]
    fn containers_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.db");
        {
            let db = MetadataDb::open(&path).unwrap();
            db.put_container("c1", "web", "{}").unwrap();
            db.put_container("c1", "web", "{\"a\":1}").unwrap();
            assert!(matches!(
                db.put_container("c2", "web", "{}"),
                Err(StoreError::NameConflict(n)) if n == "web"
            ));
            db.put_container("c2", "db", "{}").unwrap();
            // Renaming c1 to a free name frees "web".
            db.put_container("c1", "web2", "{}").unwrap();
            db.put_container("c2", "web", "{}").unwrap();
        }
        let db = MetadataDb::open(&path).unwrap();
        let list = db.list_containers().unwrap();
        assert_eq!(
            list,
            vec![
                ("c1".into(), "web2".into(), "{}".into()),
                ("c2".into(), "web".into(), "{}".into())
            ]
        );
        db.delete_container("c1").unwrap();
        assert_eq!(db.list_containers().unwrap().len(), 1);
    }

    #[test]
    fn build_cache_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let db = MetadataDb::open(&dir.path().join("t.db")).unwrap();
        let r = BuildCacheRecord {
            key: "k".into(),
            image_id: "sha256:b".into(),
            parent_id: "sha256:a".into(),
            created: 1,
            last_used: 1,
            usage_count: 1,
        };
        db.build_cache_put(&r).unwrap();
        assert_eq!(
            db.build_cache_get("k", 5).unwrap().as_deref(),
            Some("sha256:b")
        );
        let listed = &db.build_cache_list().unwrap()[0];
        assert_eq!((listed.last_used, listed.usage_count), (5, 2));
        assert!(db.build_cache_parents().unwrap().contains("sha256:a"));
        db.build_cache_delete("k").unwrap();
        assert!(db.build_cache_get("k", 6).unwrap().is_none());
    }

    #[test]
    fn layer_sources_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let db = MetadataDb::open(&dir.path().join("t.db")).unwrap();
        let src = |repo: &str, size| LayerSource {
            diff_id: d("diff"),
            blob: d("blob"),
            media_type: "application/vnd.docker.image.rootfs.diff.tar.gzip".into(),
            size,
            registry: "127.0.0.1:5000".into(),
            repository: repo.into(),
        };
        db.add_layer_source(&src("x/a", 1)).unwrap();
        db.add_layer_source(&src("x/b", 1)).unwrap();
        // The same place again refreshes it, never duplicates it.
        db.add_layer_source(&src("x/a", 2)).unwrap();
        let got = db.layer_sources(&d("diff")).unwrap();
        assert_eq!(got, vec![src("x/a", 2), src("x/b", 1)]);
        assert!(db.layer_sources(&d("other")).unwrap().is_empty());
        db.remove_layer_source(&src("x/a", 2)).unwrap();
        assert_eq!(db.layer_sources(&d("diff")).unwrap(), vec![src("x/b", 1)]);
    }

    #[test]
    fn db_is_send_sync() {
        fn check<T: Send + Sync>() {}
        check::<MetadataDb>();
    }
}

//! Per-repository metadata in SQLite (WAL, synchronous=FULL: an acknowledged push survives a
//! crash): which blobs each repository may serve, its manifests (with what the referrers API
//! answers) and its tags. Blob and manifest bytes live in the content store, written before the
//! row that names them.

use std::path::Path;

use berth_store::Digest;
use rusqlite::{params, Connection, OptionalExtension};

const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS blob_links (
    repo TEXT NOT NULL,
    digest TEXT NOT NULL,
    PRIMARY KEY (repo, digest)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS blob_links_digest ON blob_links (digest);
CREATE TABLE IF NOT EXISTS manifests (
    repo TEXT NOT NULL,
    digest TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    subject TEXT,
    artifact_type TEXT,
    annotations TEXT,
    PRIMARY KEY (repo, digest)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS manifests_subject ON manifests (repo, subject);
CREATE TABLE IF NOT EXISTS tags (
    repo TEXT NOT NULL,
    tag TEXT NOT NULL,
    digest TEXT NOT NULL,
    PRIMARY KEY (repo, tag)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tags_digest ON tags (repo, digest);
";

/// A manifest's row: what GET/HEAD answer and what the referrers API lists.
#[derive(Debug, Clone)]
pub struct ManifestRow {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    pub subject: Option<Digest>,
    pub artifact_type: Option<String>,
    /// JSON object text, when the manifest has annotations.
    pub annotations: Option<String>,
}

pub struct Db {
    conn: Connection,
}

/// Read-only queries, over the database or over an open transaction.
#[derive(Clone, Copy)]
pub struct Reader<'a>(&'a Connection);

impl Db {
    pub fn open(path: &Path) -> rusqlite::Result<Db> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(SCHEMA)?;
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        Ok(Db { conn })
    }

    pub fn reader(&self) -> Reader<'_> {
        Reader(&self.conn)
    }

    pub fn link_blob(&self, repo: &str, d: &Digest) -> rusqlite::Result<()> {
        self.conn.execute(
            "INSERT OR IGNORE INTO blob_links (repo, digest) VALUES (?1, ?2)",
            params![repo, d.as_str()],
        )?;
        Ok(())
    }

    /// Returns whether the link existed.
    pub fn unlink_blob(&self, repo: &str, d: &Digest) -> rusqlite::Result<bool> {
        Ok(self.conn.execute(
            "DELETE FROM blob_links WHERE repo = ?1 AND digest = ?2",
            params![repo, d.as_str()],
        )? > 0)
    }

    /// Forgets a blob everywhere (gc removed its bytes).
    pub fn forget_blob(&self, d: &Digest) -> rusqlite::Result<()> {
        self.conn
            .execute("DELETE FROM blob_links WHERE digest = ?1", [d.as_str()])?;
        Ok(())
    }

    /// Stores a manifest's row and, in the same transaction, points `tag` at it. `check` runs
    /// inside the transaction first (the referenced-content check), so a concurrent delete
    /// cannot slip between check and insert.
    pub fn put_manifest<E>(
        &mut self,
        repo: &str,
        row: &ManifestRow,
        tag: Option<&str>,
        check: impl FnOnce(Reader<'_>) -> Result<(), E>,
    ) -> Result<(), E>
    where
        E: From<rusqlite::Error>,
    {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        check(Reader(&tx))?;
        tx.execute(
            "INSERT OR REPLACE INTO manifests
                 (repo, digest, media_type, size, subject, artifact_type, annotations)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                repo,
                row.digest.as_str(),
                row.media_type,
                row.size as i64,
                row.subject.as_ref().map(Digest::as_str),
                row.artifact_type,
                row.annotations,
            ],
        )?;
        if let Some(tag) = tag {
            tx.execute(
                "INSERT OR REPLACE INTO tags (repo, tag, digest) VALUES (?1, ?2, ?3)",
                params![repo, tag, row.digest.as_str()],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Deletes a manifest and the tags that point at it; returns whether it existed.
    pub fn delete_manifest(&mut self, repo: &str, d: &Digest) -> rusqlite::Result<bool> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "DELETE FROM tags WHERE repo = ?1 AND digest = ?2",
            params![repo, d.as_str()],
        )?;
        let n = tx.execute(
            "DELETE FROM manifests WHERE repo = ?1 AND digest = ?2",
            params![repo, d.as_str()],
        )?;
        tx.commit()?;
        Ok(n > 0)
    }

    pub fn delete_tag(&self, repo: &str, tag: &str) -> rusqlite::Result<bool> {
        Ok(self.conn.execute(
            "DELETE FROM tags WHERE repo = ?1 AND tag = ?2",
            params![repo, tag],
        )? > 0)
    }
}

impl<'a> Reader<'a> {
    /// A repository exists once it has a blob or a manifest.
    pub fn repo_exists(&self, repo: &str) -> rusqlite::Result<bool> {
        self.0.query_row(
            "SELECT EXISTS (SELECT 1 FROM blob_links WHERE repo = ?1)
                     OR EXISTS (SELECT 1 FROM manifests WHERE repo = ?1)",
            [repo],
            |r| r.get(0),
        )
    }
    /// A blob the repository may serve: uploaded or mounted into it, or one of its manifests.
    pub fn has_blob(&self, repo: &str, d: &Digest) -> rusqlite::Result<bool> {
        self.0.query_row(
            "SELECT EXISTS (SELECT 1 FROM blob_links WHERE repo = ?1 AND digest = ?2)
                 OR EXISTS (SELECT 1 FROM manifests WHERE repo = ?1 AND digest = ?2)",
            params![repo, d.as_str()],
            |r| r.get(0),
        )
    }
    pub fn manifest(&self, repo: &str, d: &Digest) -> rusqlite::Result<Option<ManifestRow>> {
        self.0
            .query_row(
                "SELECT digest, media_type, size, subject, artifact_type, annotations
                 FROM manifests WHERE repo = ?1 AND digest = ?2",
                params![repo, d.as_str()],
                manifest_row,
            )
            .optional()
            .map(Option::flatten)
    }
    pub fn tag(&self, repo: &str, tag: &str) -> rusqlite::Result<Option<Digest>> {
        let d: Option<String> = self
            .0
            .query_row(
                "SELECT digest FROM tags WHERE repo = ?1 AND tag = ?2",
                params![repo, tag],
                |r| r.get(0),
            )
            .optional()?;
        Ok(d.and_then(|d| Digest::parse(&d).ok()))
    }
    /// Up to `limit` tags after `last`, in byte order (Go's `sort.Strings`).
    pub fn tags(
        &self,
        repo: &str,
        last: Option<&str>,
        limit: usize,
    ) -> rusqlite::Result<Vec<String>> {
        let mut st = self.0.prepare_cached(
            "SELECT tag FROM tags WHERE repo = ?1 AND tag > ?2 ORDER BY tag LIMIT ?3",
        )?;
        let rows = st.query_map(params![repo, last.unwrap_or(""), limit_param(limit)], |r| {
            r.get(0)
        })?;
        rows.collect()
    }
    /// Up to `limit` repository names after `last`, in byte order.
    pub fn repositories(&self, last: Option<&str>, limit: usize) -> rusqlite::Result<Vec<String>> {
        let mut st = self.0.prepare_cached(
            "SELECT repo FROM (SELECT repo FROM manifests UNION SELECT repo FROM blob_links)
             WHERE repo > ?1 ORDER BY repo LIMIT ?2",
        )?;
        let rows = st.query_map(params![last.unwrap_or(""), limit_param(limit)], |r| {
            r.get(0)
        })?;
        rows.collect()
    }
    /// The manifests of `repo` whose `subject` is `d`, by digest.
    pub fn referrers(&self, repo: &str, d: &Digest) -> rusqlite::Result<Vec<ManifestRow>> {
        let mut st = self.0.prepare_cached(
            "SELECT digest, media_type, size, subject, artifact_type, annotations
             FROM manifests WHERE repo = ?1 AND subject = ?2 ORDER BY digest",
        )?;
        let rows = st.query_map(params![repo, d.as_str()], manifest_row)?;
        Ok(rows
            .collect::<rusqlite::Result<Vec<_>>>()?
            .into_iter()
            .flatten()
            .collect())
    }
    /// Every manifest digest of every repository (gc's roots).
    pub fn all_manifest_digests(&self) -> rusqlite::Result<Vec<Digest>> {
        let mut st = self.0.prepare("SELECT DISTINCT digest FROM manifests")?;
        let rows = st.query_map([], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for r in rows {
            if let Ok(d) = Digest::parse(&r?) {
                out.push(d);
            }
        }
        Ok(out)
    }
}

fn limit_param(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// A row whose digest does not parse (never written by us) is skipped, not an error.
fn manifest_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Option<ManifestRow>> {
    let digest: String = r.get(0)?;
    let Ok(digest) = Digest::parse(&digest) else {
        return Ok(None);
    };
    let subject: Option<String> = r.get(3)?;
    Ok(Some(ManifestRow {
        digest,
        media_type: r.get(1)?,
        size: r.get::<_, i64>(2)?.max(0) as u64,
        subject: subject.and_then(|s| Digest::parse(&s).ok()),
        artifact_type: r.get(4)?,
        annotations: r.get(5)?,
    }))
}

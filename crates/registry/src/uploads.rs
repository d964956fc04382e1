//! Blob upload sessions: `<root>/uploads/<uuid>/data` (the bytes so far) and `…/repo` (the
//! repository the session belongs to). Bytes are hashed while they are written, so finishing
//! a blob costs one fsync and one rename, not a second read; a session recovered from disk
//! after a restart has no hash state and is re-read once when it finishes.
//!
//! One request at a time works on a session (a per-session lock). The lock travels with each
//! write into its blocking job, so a client that disconnects mid-body cannot leave a write
//! running while the next request appends.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::body::Body;
use berth_store::Digest;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use sha2::{Digest as _, Sha256};
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

use crate::error::{ApiError, Code};
use crate::names::{valid_name, valid_upload_id};
use crate::storage::Storage;

/// Bytes gathered from the socket per write: large writes, few syscalls and thread hops.
const WRITE_BUFFER: usize = 1 << 20;

pub struct Session {
    pub id: String,
    pub repo: String,
    dir: PathBuf,
    /// Bytes received so far (the data file's length).
    pub size: u64,
    /// The hash of the first `size` bytes, when this process saw all of them.
    hasher: Option<Sha256>,
    /// Finished or cancelled: a request that waited for the lock finds the session gone.
    gone: bool,
}

pub type SessionGuard = OwnedMutexGuard<Session>;

impl Session {
    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }
}

pub struct Uploads {
    dir: PathBuf,
    sessions: Mutex<HashMap<String, Arc<AsyncMutex<Session>>>>,
}

impl Uploads {
    pub fn new(dir: &Path) -> Uploads {
        Uploads {
            dir: dir.to_path_buf(),
            sessions: Mutex::new(HashMap::new()),
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<AsyncMutex<Session>>>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a session for `repo` and returns it locked.
    pub async fn create(&self, repo: &str) -> Result<SessionGuard, ApiError> {
        let id = new_upload_id();
        let dir = self.dir.join(&id);
        let repo_owned = repo.to_string();
        let dir2 = dir.clone();
        tokio::task::spawn_blocking(move || -> io::Result<()> {
            fs::create_dir(&dir2)?;
            fs::write(dir2.join("repo"), repo_owned.as_bytes())?;
            File::create(dir2.join("data"))?;
            Ok(())
        })
        .await??;
        let session = Arc::new(AsyncMutex::new(Session {
            id: id.clone(),
            repo: repo.to_string(),
            dir,
            size: 0,
            hasher: Some(Sha256::new()),
            gone: false,
        }));
        let guard = Arc::clone(&session).lock_owned().await;
        self.map().insert(id, session);
        Ok(guard)
    }

    /// The session `id` of `repo`, locked; `BLOB_UPLOAD_UNKNOWN` when there is none (or it is
    /// another repository's).
    pub async fn lock(&self, id: &str, repo: &str) -> Result<SessionGuard, ApiError> {
        let unknown = || {
            ApiError::new(Code::BlobUploadUnknown).with_detail(serde_json::json!({ "uuid": id }))
        };
        if !valid_upload_id(id) {
            return Err(unknown());
        }
        let existing = self.map().get(id).cloned();
        let session = match existing {
            Some(s) => s,
            None => {
                let dir = self.dir.join(id);
                let recovered = tokio::task::spawn_blocking(move || recover(&dir)).await?;
                let Some(s) = recovered else {
                    return Err(unknown());
                };
                let s = Arc::new(AsyncMutex::new(s));
                Arc::clone(self.map().entry(id.to_string()).or_insert(s))
            }
        };
        let mut guard = session.lock_owned().await;
        if guard.gone || guard.repo != repo {
            return Err(unknown());
        }
        // The file is the truth: if it differs from what we believe (a write failed half-way),
        // follow it and re-hash at the end.
        let len = tokio::fs::metadata(guard.data()).await.map(|m| m.len());
        match len {
            Ok(len) if len == guard.size => {}
            Ok(len) => {
                guard.size = len;
                guard.hasher = None;
            }
            Err(_) => {
                guard.gone = true;
                self.map().remove(id);
                return Err(unknown());
            }
        }
        Ok(guard)
    }

    /// Ends a session (finished or cancelled) and removes its files.
    pub async fn remove(&self, mut guard: SessionGuard) {
        guard.gone = true;
        self.map().remove(&guard.id);
        let dir = guard.dir.clone();
        let _ = tokio::task::spawn_blocking(move || remove_dir(&dir)).await;
    }

    /// Removes the sessions nobody wrote to for `ttl` (sessions busy right now are skipped).
    /// Returns the ids removed.
    pub fn purge_abandoned(&self, ttl: Duration) -> Vec<String> {
        let mut removed = Vec::new();
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return removed;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let Some(id) = name.to_str().filter(|n| valid_upload_id(n)) else {
                continue;
            };
            let session = self.map().get(id).cloned();
            let guard = match &session {
                Some(s) => match Arc::clone(s).try_lock_owned() {
                    Ok(g) => Some(g),
                    Err(_) => continue,
                },
                None => None,
            };
            if !idle_longer_than(&e.path(), ttl) {
                continue;
            }
            if let Some(mut g) = guard {
                g.gone = true;
            }
            self.map().remove(id);
            remove_dir(&e.path());
            removed.push(id.to_string());
        }
        removed
    }
}

/// Removes every session directory (gc, with no server running: all of them are abandoned).
/// Returns the ids, and removes nothing when `dry_run`.
pub fn sweep_all(uploads_dir: &Path, dry_run: bool) -> io::Result<Vec<String>> {
    let mut out = Vec::new();
    for e in fs::read_dir(uploads_dir)? {
        let e = e?;
        if let Some(id) = e.file_name().to_str().filter(|n| valid_upload_id(n)) {
            if !dry_run {
                remove_dir(&e.path());
            }
            out.push(id.to_string());
        }
    }
    out.sort();
    Ok(out)
}

fn idle_longer_than(dir: &Path, ttl: Duration) -> bool {
    let modified = fs::metadata(dir.join("data"))
        .or_else(|_| fs::metadata(dir))
        .and_then(|m| m.modified());
    match modified {
        Ok(t) => SystemTime::now()
            .duration_since(t)
            .map(|age| age > ttl)
            .unwrap_or(false),
        Err(_) => true,
    }
}

fn remove_dir(dir: &Path) {
    if let Err(e) = fs::remove_dir_all(dir) {
        if e.kind() != io::ErrorKind::NotFound {
            tracing::warn!("cannot remove upload {}: {e}", dir.display());
        }
    }
}

/// A session left on disk by an earlier run of the server.
fn recover(dir: &Path) -> Option<Session> {
    let repo = fs::read_to_string(dir.join("repo")).ok()?;
    if !valid_name(&repo) {
        return None;
    }
    let size = fs::metadata(dir.join("data")).ok()?.len();
    let id = dir.file_name()?.to_str()?.to_string();
    Some(Session {
        id,
        repo,
        dir: dir.to_path_buf(),
        size,
        hasher: None,
        gone: false,
    })
}

fn new_upload_id() -> String {
    let b: [u8; 16] = rand::random();
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// How an append ended.
pub enum AppendError {
    /// The client's body broke off (or stalled past the idle timeout); what arrived is kept.
    Interrupted(String),
    /// The disk refused.
    Io(io::Error),
}

/// A session with its data file open for appending.
type Writer = (SessionGuard, File);

/// The writer, idle or lent to the one write job in flight.
enum Slot {
    Idle(Writer),
    Busy(tokio::task::JoinHandle<(Writer, io::Result<()>)>),
}

impl Slot {
    /// Waits for the write in flight, if any, and returns the writer with its outcome.
    async fn settle(self) -> Result<(Writer, io::Result<()>), tokio::task::JoinError> {
        match self {
            Slot::Idle(w) => Ok((w, Ok(()))),
            Slot::Busy(job) => job.await,
        }
    }
}

/// Appends the request body to the session. Returns the session back (still locked) with the
/// outcome: the bytes appended, or why it stopped.
///
/// The body is gathered into large buffers; each is hashed and written by a short blocking
/// job while the next one arrives. No thread waits on the network, and the session travels
/// with each job: a client that disconnects mid-write cannot leave a write running while the
/// next request appends.
pub async fn append(
    guard: SessionGuard,
    body: Body,
    idle_timeout: Duration,
) -> Result<(SessionGuard, Result<u64, AppendError>), ApiError> {
    let path = guard.data();
    let file =
        tokio::task::spawn_blocking(move || OpenOptions::new().append(true).open(path)).await?;
    let file = match file {
        Ok(f) => f,
        Err(e) => return Ok((guard, Err(AppendError::Io(e)))),
    };
    let mut slot = Slot::Idle((guard, file));
    let mut buf = BytesMut::with_capacity(WRITE_BUFFER);
    let mut total = 0u64;
    let mut interrupted = None;
    let mut stream = body.into_data_stream();
    loop {
        let chunk = match tokio::time::timeout(idle_timeout, stream.next()).await {
            Err(_) => {
                interrupted = Some("the client sent nothing for too long".to_string());
                None
            }
            Ok(None) => None,
            Ok(Some(Ok(c))) => Some(c),
            Ok(Some(Err(e))) => {
                interrupted = Some(e.to_string());
                None
            }
        };
        let done = chunk.is_none();
        if let Some(c) = chunk {
            buf.extend_from_slice(&c);
        }
        if buf.len() < WRITE_BUFFER && !done {
            continue;
        }
        let (writer, written) = slot.settle().await?;
        if let Err(e) = written {
            return Ok((writer.0, Err(AppendError::Io(e))));
        }
        slot = if buf.is_empty() {
            Slot::Idle(writer)
        } else {
            let data = buf.split().freeze();
            total += data.len() as u64;
            Slot::Busy(tokio::task::spawn_blocking(move || {
                write_buffer(writer, data)
            }))
        };
        if done {
            break;
        }
    }
    let ((guard, _file), written) = slot.settle().await?;
    let result = match (written, interrupted) {
        (Err(e), _) => Err(AppendError::Io(e)),
        (Ok(()), Some(why)) => Err(AppendError::Interrupted(why)),
        (Ok(()), None) => Ok(total),
    };
    Ok((guard, result))
}

fn write_buffer((mut guard, mut file): Writer, data: Bytes) -> (Writer, io::Result<()>) {
    let r = file.write_all(&data);
    match &r {
        Ok(()) => {
            if let Some(h) = guard.hasher.as_mut() {
                h.update(&data);
            }
            guard.size += data.len() as u64;
        }
        // Part of it may be on disk: the next lock re-reads the length and drops the hash.
        Err(_) => guard.hasher = None,
    }
    ((guard, file), r)
}

/// Finishes a session: the bytes must hash to `expected`, else the session and its bytes are
/// removed and the answer is `DIGEST_INVALID`. On success the blob is in the content store
/// (fsynced, renamed) and the session is gone; the caller links it into the repository.
pub async fn finish(
    uploads: &Uploads,
    storage: &Arc<Storage>,
    guard: SessionGuard,
    expected: &Digest,
) -> Result<u64, ApiError> {
    let storage2 = Arc::clone(storage);
    let expected2 = expected.clone();
    // The session's files go in the same blocking job: a client that disconnects now leaves
    // nothing behind.
    let (guard, outcome) = tokio::task::spawn_blocking(move || {
        let mut guard = guard;
        let outcome = verify_and_commit(&storage2, &mut guard, &expected2);
        remove_dir(&guard.dir);
        (guard, outcome)
    })
    .await?;
    let size = guard.size;
    uploads.remove(guard).await;
    match outcome {
        Ok(true) => Ok(size),
        Ok(false) => Err(ApiError::new(Code::DigestInvalid)
            .with_detail(serde_json::json!({ "digest": expected.as_str() }))),
        Err(e) => Err(e.into()),
    }
}

/// Ok(false) on a digest mismatch.
fn verify_and_commit(storage: &Storage, s: &mut Session, expected: &Digest) -> io::Result<bool> {
    let actual = match s.hasher.take() {
        Some(h) => hex::encode(h.finalize()),
        None => hash_file(&s.data())?,
    };
    if actual != expected.hex() {
        return Ok(false);
    }
    storage.commit_blob(&s.data(), expected)?;
    Ok(true)
}

fn hash_file(path: &Path) -> io::Result<String> {
    let mut f = File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; WRITE_BUFFER];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => h.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(hex::encode(h.finalize()))
}

//! Containers held by the engine: the registry (id and name indexes) and the per-container
//! handle. Reads (`ps`, `inspect`) take only the short `record` lock; lifecycle operations
//! serialize on `lifecycle`, so a slow stop never blocks a listing.

pub mod archive;
pub mod changes;
pub mod commit;
pub mod create;
pub mod health;
pub mod inspect;
pub mod lifecycle;
mod mount_view;
pub mod record;
pub mod rootfs;

use crate::error::{EngineError, Result};
pub use record::{ContainerRecord, State, Status};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use tokio::net::UnixStream;
use tokio::sync::{oneshot, watch};

/// An attach that arrived before the container was started (`docker run` attaches first):
/// the start path connects it to the shim before the process runs, so no output is lost.
pub struct PendingAttach {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub reply: oneshot::Sender<UnixStream>,
}

pub struct Handle {
    pub id: String,
    pub record: RwLock<ContainerRecord>,
    pub lifecycle: tokio::sync::Mutex<()>,
    /// Bumped after every exit has been recorded.
    pub exits: watch::Sender<u64>,
    /// Bumped after every successful start.
    pub starts: watch::Sender<u64>,
    pub removed: watch::Sender<bool>,
    pub pending_attach: Mutex<Vec<PendingAttach>>,
}

impl Handle {
    pub fn new(rec: ContainerRecord) -> Arc<Self> {
        Arc::new(Handle {
            id: rec.id.clone(),
            record: RwLock::new(rec),
            lifecycle: tokio::sync::Mutex::new(()),
            exits: watch::channel(0).0,
            starts: watch::channel(0).0,
            removed: watch::channel(false).0,
            pending_attach: Mutex::new(Vec::new()),
        })
    }

    pub fn snapshot(&self) -> ContainerRecord {
        match self.record.read() {
            Ok(r) => r.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    pub fn update<T>(&self, f: impl FnOnce(&mut ContainerRecord) -> T) -> T {
        match self.record.write() {
            Ok(mut r) => f(&mut r),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    pub fn name(&self) -> String {
        self.snapshot().name
    }
}

#[derive(Default)]
pub struct Registry {
    inner: RwLock<RegistryInner>,
}

#[derive(Default)]
struct RegistryInner {
    by_id: HashMap<String, Arc<Handle>>,
    by_name: HashMap<String, String>,
}

impl Registry {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, RegistryInner> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, RegistryInner> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Resolves a full id, a name (with or without '/') or a unique id prefix, as dockerd.
    pub fn find(&self, key: &str) -> Result<Arc<Handle>> {
        let inner = self.read();
        if let Some(h) = inner.by_id.get(key) {
            return Ok(h.clone());
        }
        let name = key.strip_prefix('/').unwrap_or(key);
        if let Some(id) = inner.by_name.get(name) {
            if let Some(h) = inner.by_id.get(id) {
                return Ok(h.clone());
            }
        }
        if !key.is_empty() && key.chars().all(|c| c.is_ascii_hexdigit()) {
            let mut found = inner.by_id.iter().filter(|(id, _)| id.starts_with(key));
            if let Some((_, h)) = found.next() {
                if found.next().is_some() {
                    return Err(EngineError::InvalidArgument(format!(
                        "multiple IDs found with provided prefix: {key}"
                    )));
                }
                return Ok(h.clone());
            }
        }
        Err(EngineError::no_such_container(key))
    }

    pub fn all(&self) -> Vec<Arc<Handle>> {
        self.read().by_id.values().cloned().collect()
    }

    pub fn name_owner(&self, name: &str) -> Option<String> {
        self.read().by_name.get(name).cloned()
    }

    /// Reserves `name` for `handle`; fails with Docker's conflict message if it is taken.
    pub fn insert(&self, handle: Arc<Handle>) -> Result<()> {
        let name = handle.name();
        let mut inner = self.write();
        if let Some(owner) = inner.by_name.get(&name) {
            return Err(name_conflict(&name, owner));
        }
        inner.by_name.insert(name, handle.id.clone());
        inner.by_id.insert(handle.id.clone(), handle);
        Ok(())
    }

    pub fn rename(&self, id: &str, old: &str, new: &str) -> Result<()> {
        let mut inner = self.write();
        if let Some(owner) = inner.by_name.get(new) {
            return Err(name_conflict(new, owner));
        }
        inner.by_name.remove(old);
        inner.by_name.insert(new.to_string(), id.to_string());
        Ok(())
    }

    pub fn remove(&self, id: &str) {
        let mut inner = self.write();
        if let Some(h) = inner.by_id.remove(id) {
            let name = h.name();
            if inner.by_name.get(&name).map(String::as_str) == Some(id) {
                inner.by_name.remove(&name);
            }
        }
    }
}

pub fn name_conflict(name: &str, owner: &str) -> EngineError {
    EngineError::Conflict(format!(
        "Conflict. The container name \"/{name}\" is already in use by container \"{owner}\". You have to remove (or rename) that container to be able to reuse that name."
    ))
}

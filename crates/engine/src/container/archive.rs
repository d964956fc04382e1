//! Files in and out of a container: `docker cp` (GET/HEAD/PUT /containers/{id}/archive) and
//! `docker export`, on running and stopped containers alike.
//!
//! Every path the client names is resolved inside the container's root with
//! `RESOLVE_IN_ROOT` (see `berth_store::inroot`): `..` and symlinks, absolute or relative,
//! stay in the container whatever it has planted.

use super::mount_view::{self, ViewMount};
use super::{ContainerRecord, Handle};
use crate::error::{EngineError, Result};
use crate::Engine;
use berth_store::inroot::{fd_path, go_file_mode, lstat_at, open_in_root, open_root};
use berth_store::pack::Packer;
use bytes::Bytes;
use futures_util::Stream;
use rustix::fs::{FileType, OFlags};
use rustix::io::Errno;
use serde::Serialize;
use std::io::{Seek, SeekFrom, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// The `X-Docker-Container-Path-Stat` document (base64 JSON in the header).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    /// Go's `os.FileMode` bits, which the docker CLI decodes.
    pub mode: u32,
    pub mtime: String,
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

/// Options of PUT /containers/{id}/archive.
#[derive(Debug, Clone, Default)]
pub struct ExtractRequest {
    pub path: String,
    pub no_overwrite_dir_non_dir: bool,
    pub copy_uid_gid: bool,
}

/// A tar stream being produced by a blocking thread; errors end it early.
pub type TarStream = mpsc::Receiver<std::io::Result<Bytes>>;

/// A stopped container's overlay, mounted for one operation and detached on drop; the caller
/// holds the container's lifecycle lock meanwhile, so a `start` cannot remount it underneath.
struct RootfsGuard {
    path: PathBuf,
}

impl Drop for RootfsGuard {
    fn drop(&mut self) {
        if let Err(e) = berth_store::overlay::unmount(&self.path) {
            tracing::warn!(path = %self.path.display(), error = %e, "could not release rootfs");
        }
    }
}

/// `filepath.Clean` of Go, for the absolute paths dockerd derives from the request.
fn clean_abs(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    format!("/{}", out.join("/"))
}

/// dockerd's `ResolvePath`: the absolute form of `path`, keeping a trailing "/" or "/." that
/// decides whether the final symlink is followed and whether a directory's contents are meant.
fn absolute_path(path: &str) -> String {
    let clean = clean_abs(path);
    if clean == "/" {
        return clean;
    }
    if path.ends_with("/.") || path == "." {
        format!("{clean}/.")
    } else if path.ends_with('/') {
        format!("{clean}/")
    } else {
        clean
    }
}

/// Go's `filepath.Base` of an absolute path.
fn base_name(abs: &str) -> String {
    let t = abs.trim_end_matches('/');
    if t.is_empty() {
        return "/".into();
    }
    t.rsplit('/').next().unwrap_or(t).to_string()
}

fn not_found(path: &str, rec: &ContainerRecord) -> EngineError {
    EngineError::NotFound(format!(
        "Could not find the file {path} in container {}",
        rec.name
    ))
}

fn fs_error(e: Errno, path: &str, rec: &ContainerRecord) -> EngineError {
    match e {
        Errno::NOENT | Errno::NOTDIR => not_found(path, rec),
        Errno::LOOP => {
            EngineError::InvalidArgument(format!("too many levels of symbolic links: {path}"))
        }
        e => EngineError::Internal(format!("{path}: {e}")),
    }
}

fn rfc3339(secs: i64, nanos: i64) -> String {
    chrono::DateTime::from_timestamp(secs, nanos.clamp(0, 999_999_999) as u32)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// The entry a GET/HEAD names: its parent directory (resolved in the root), its own name
/// there (not followed; empty for the directory itself) and its stat.
struct Source {
    dir: OwnedFd,
    base: Vec<u8>,
    abs: String,
    stat: PathStat,
}

fn resolve_source(
    root: &OwnedFd,
    root_path: &Path,
    path: &str,
    rec: &ContainerRecord,
) -> Result<Source> {
    let abs = absolute_path(path);
    let split = abs.rfind('/').unwrap_or(0);
    let (dir_part, base) = (&abs[..=split], &abs[split + 1..]);
    let dir = open_in_root(root, dir_part, OFlags::PATH | OFlags::DIRECTORY)
        .map_err(|e| fs_error(e, path, rec))?;
    let st = lstat_at(&dir, base.as_bytes()).map_err(|e| fs_error(e, path, rec))?;
    let mut link_target = String::new();
    if FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
        // Fully evaluated inside the root, as an absolute container path.
        link_target = match open_in_root(root, &abs, OFlags::PATH) {
            Ok(fd) => container_path(&fd, root_path).unwrap_or_default(),
            Err(_) => String::new(),
        };
        if link_target.is_empty() {
            let raw = rustix::fs::readlinkat(&dir, base, Vec::new())
                .map(|t| t.to_string_lossy().into_owned())
                .unwrap_or_default();
            link_target = if raw.starts_with('/') {
                clean_abs(&raw)
            } else {
                clean_abs(&format!("{dir_part}{raw}"))
            };
        }
    }
    let stat = PathStat {
        name: base_name(&abs),
        size: st.st_size,
        mode: go_file_mode(st.st_mode),
        mtime: rfc3339(st.st_mtime, st.st_mtime_nsec as i64),
        link_target,
    };
    Ok(Source {
        dir,
        base: base.as_bytes().to_vec(),
        abs,
        stat,
    })
}

/// The container-absolute path of an fd opened inside the root at `root_path`.
fn container_path(fd: &OwnedFd, root_path: &Path) -> Option<String> {
    let p = fd_path(fd).ok()?;
    let rel = p.strip_prefix(root_path).ok()?;
    Some(format!("/{}", rel.to_string_lossy()))
}

/// A `Write` that hands chunks to the HTTP body; a gone client ends the writer.
struct ChannelWriter {
    tx: mpsc::Sender<std::io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    const CHUNK: usize = 64 * 1024;
    fn send_buf(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(Self::CHUNK),
        ));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= Self::CHUNK {
            self.send_buf()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.send_buf()
    }
}

impl Engine {
    /// Runs `f` on a blocking thread with the container's root open. A stopped container's
    /// overlay is mounted for the call and released after it. `with_mounts` (cp) shows the
    /// container's volumes and binds at their destinations, as dockerd's cp does; export and
    /// commit see the root filesystem alone.
    pub(crate) async fn with_rootfs<T, F>(
        &self,
        h: &Arc<Handle>,
        with_mounts: bool,
        f: F,
    ) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&OwnedFd, &Path, &ContainerRecord) -> Result<T> + Send + 'static,
    {
        let lock = h.lifecycle.lock().await;
        let rec = h.snapshot();
        let path = self.container_dir(&rec.id).join("rootfs");
        let mounts: Vec<ViewMount> = if with_mounts {
            rec.mounts
                .iter()
                .filter_map(|m| {
                    let (source, subpath) = self.mount_base(m)?;
                    Some(ViewMount {
                        source,
                        subpath,
                        destination: m.spec.destination.clone(),
                        read_only: m.spec.read_only,
                    })
                })
                .filter(|m| m.source.exists())
                .collect()
        } else {
            Vec::new()
        };
        if rec.state.is_running() {
            if mounts.is_empty() {
                // The fd keeps the mount reachable even if the container exits meanwhile.
                let root = open_root(&path)?;
                drop(lock);
                return tokio::task::spawn_blocking(move || f(&root, &path, &rec))
                    .await
                    .map_err(EngineError::internal)?;
            }
            let res = tokio::task::spawn_blocking(move || {
                mount_view::with_view(&path, &mounts, |root| f(root, &path, &rec))
            })
            .await
            .map_err(EngineError::internal)?;
            drop(lock);
            return res;
        }
        let image = self.image_by_name(&rec.image_id).await?;
        let images = self.images.clone();
        let dir = self.container_dir(&rec.id);
        let res = tokio::task::spawn_blocking(move || -> Result<T> {
            let lowers = images.layer_dirs(&image)?;
            let _ = berth_store::overlay::unmount(&path);
            std::fs::create_dir_all(&path)?;
            berth_store::overlay::mount_rootfs(
                &lowers,
                &dir.join("upper"),
                &dir.join("work"),
                &path,
            )?;
            let guard = RootfsGuard { path: path.clone() };
            let r = mount_view::with_view(&guard.path, &mounts, |root| f(root, &guard.path, &rec));
            drop(guard);
            r
        })
        .await
        .map_err(EngineError::internal)?;
        drop(lock);
        res
    }

    /// HEAD /containers/{id}/archive.
    pub async fn archive_stat(&self, key: &str, path: &str) -> Result<PathStat> {
        let h = self.find_container(key)?;
        let p = path.to_string();
        let stat = self
            .with_rootfs(&h, true, move |root, root_path, rec| {
                Ok(resolve_source(root, root_path, &p, rec)?.stat)
            })
            .await?;
        self.emit_container(&h.snapshot(), "archive-path", &[]);
        Ok(stat)
    }

    /// GET /containers/{id}/archive: the stat, and the tar streamed as it is written.
    pub async fn archive_get(
        self: &Arc<Self>,
        key: &str,
        path: &str,
    ) -> Result<(PathStat, TarStream)> {
        let h = self.find_container(key)?;
        let (stat_tx, stat_rx) = oneshot::channel();
        let (tx, rx) = mpsc::channel(8);
        let engine = self.clone();
        let p = path.to_string();
        let h2 = h.clone();
        tokio::spawn(async move {
            let body_tx = tx.clone();
            let r = engine
                .with_rootfs(&h2, true, move |root, root_path, rec| {
                    let src = match resolve_source(root, root_path, &p, rec) {
                        Ok(s) => s,
                        Err(e) => {
                            let _ = stat_tx.send(Err(e));
                            return Ok(());
                        }
                    };
                    let _ = stat_tx.send(Ok(src.stat.clone()));
                    let as_name = match src.abs.as_str() {
                        "/" => ".".to_string(),
                        a => base_name(a),
                    };
                    let as_name = if src.abs.ends_with("/.") {
                        ".".into()
                    } else {
                        as_name
                    };
                    let mut packer = Packer::new(ChannelWriter {
                        tx,
                        buf: Vec::new(),
                    });
                    packer.add_tree(src.dir.as_fd(), &src.base, &as_name)?;
                    packer.finish()?.flush()?;
                    Ok(())
                })
                .await;
            if let Err(e) = r {
                tracing::warn!(error = %e, "archive stream failed");
                let _ = body_tx
                    .send(Err(std::io::Error::other(e.to_string())))
                    .await;
            }
        });
        let stat = stat_rx
            .await
            .map_err(|_| EngineError::Internal("archive producer ended early".into()))??;
        self.emit_container(&h.snapshot(), "archive-path", &[]);
        Ok((stat, rx))
    }

    /// GET /containers/{id}/export: the merged root filesystem as a tar.
    pub async fn export_container(self: &Arc<Self>, key: &str) -> Result<TarStream> {
        let h = self.find_container(key)?;
        let (tx, rx) = mpsc::channel(8);
        let engine = self.clone();
        let h2 = h.clone();
        tokio::spawn(async move {
            let body_tx = tx.clone();
            let r = engine
                .with_rootfs(&h2, false, move |root, _, _| {
                    let mut packer = Packer::new(ChannelWriter {
                        tx,
                        buf: Vec::new(),
                    });
                    packer.add_children(root.as_fd())?;
                    packer.finish()?.flush()?;
                    Ok(())
                })
                .await;
            if let Err(e) = r {
                tracing::warn!(error = %e, "export stream failed");
                let _ = body_tx
                    .send(Err(std::io::Error::other(e.to_string())))
                    .await;
            }
        });
        self.emit_container(&h.snapshot(), "export", &[]);
        Ok(rx)
    }

    /// PUT /containers/{id}/archive: extracts a tar (plain or compressed) into a directory.
    /// The upload is spooled first and every entry name checked, so a hostile archive is
    /// refused before anything in the container changes.
    pub async fn archive_put<S, E>(&self, key: &str, req: ExtractRequest, body: S) -> Result<()>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let h = self.find_container(key)?;
        let rec = h.snapshot();
        if req.path.is_empty() {
            return Err(EngineError::InvalidArgument("path is required".into()));
        }
        if rec.host_config.readonly_rootfs.unwrap_or(false) && !in_writable_mount(&rec, &req.path) {
            return Err(EngineError::Forbidden(
                "container rootfs is marked read-only".into(),
            ));
        }
        let mut file = self.spool_upload(body, "upload").await?;
        self.with_rootfs(&h, true, move |root, root_path, rec| {
            let dir =
                open_in_root(root, &req.path, OFlags::RDONLY | OFlags::DIRECTORY).map_err(|e| {
                    match e {
                        Errno::NOTDIR => EngineError::InvalidArgument(
                            "extraction point is not a directory".into(),
                        ),
                        e => fs_error(e, &req.path, rec),
                    }
                })?;
            let chown = if req.copy_uid_gid {
                container_owner(root_path, rec)?
            } else {
                None
            };
            let bad = |e: berth_store::StoreError| EngineError::InvalidArgument(e.to_string());
            file.seek(SeekFrom::Start(0))?;
            let (_, stream) = berth_store::compression::decompress(&mut file)
                .map_err(|e| EngineError::InvalidArgument(e.to_string()))?;
            berth_store::check_archive_paths(&mut tar::Archive::new(stream)).map_err(bad)?;
            file.seek(SeekFrom::Start(0))?;
            let (_, stream) = berth_store::compression::decompress(&mut file)
                .map_err(|e| EngineError::InvalidArgument(e.to_string()))?;
            let opts = berth_store::UnpackOptions {
                no_overwrite_dir_non_dir: req.no_overwrite_dir_non_dir,
                chown,
                allow_devices: berth_store::ExtractOptions::default().allow_devices,
            };
            berth_store::unpack_into(&mut tar::Archive::new(stream), dir, &opts).map_err(
                |e| match e {
                    berth_store::StoreError::Io(e)
                        if e.kind() == std::io::ErrorKind::ReadOnlyFilesystem =>
                    {
                        EngineError::Forbidden("mounted volume is marked read-only".into())
                    }
                    berth_store::StoreError::Io(e) => EngineError::Internal(e.to_string()),
                    e => bad(e),
                },
            )
        })
        .await?;
        self.emit_container(&h.snapshot(), "extract-to-dir", &[]);
        Ok(())
    }
}

/// Whether `path` is inside one of the container's writable volumes or binds (which a
/// read-only root filesystem does not make read-only).
fn in_writable_mount(rec: &ContainerRecord, path: &str) -> bool {
    let path = clean_abs(path);
    rec.mounts.iter().any(|m| {
        let d = &m.spec.destination;
        !m.spec.read_only && (path == *d || path.starts_with(&format!("{d}/")))
    })
}

/// The owner `copyUIDGID` gives uploaded files: the container's configured user, as dockerd.
fn container_owner(root_path: &Path, rec: &ContainerRecord) -> Result<Option<(u32, u32)>> {
    let user = rec.config.user.clone().unwrap_or_default();
    if user.is_empty() {
        return Ok(None);
    }
    let u = berth_runtime::user::resolve_user(root_path, &user)
        .map_err(|e| EngineError::InvalidArgument(e.to_string()))?;
    Ok(Some((u.uid, u.gid)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_path_forms() {
        assert_eq!(absolute_path("etc/passwd"), "/etc/passwd");
        assert_eq!(absolute_path("/etc/"), "/etc/");
        assert_eq!(absolute_path("/etc/."), "/etc/.");
        assert_eq!(absolute_path("/a/../../etc"), "/etc");
        assert_eq!(absolute_path("/"), "/");
        assert_eq!(absolute_path("."), "/");
        assert_eq!(base_name("/etc/"), "etc");
        assert_eq!(base_name("/etc/."), ".");
        assert_eq!(base_name("/"), "/");
    }
}

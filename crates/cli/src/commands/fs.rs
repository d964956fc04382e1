//! Container file systems from the command line: `cp`, `export`, `diff`, `commit`.
//!
//! `docker cp`'s path rules (a trailing `/.` copies a directory's contents, copying onto an
//! existing directory puts the source inside it, otherwise the copy takes the destination's
//! name) live in the client, as in the docker CLI; the daemon only tars and untars.

use crate::client::{anyhow_api, api_error_message, http_status, status};
use crate::stream::isatty;
use anyhow::{anyhow, Result};
use bollard::query_parameters as qp;
use bollard::Docker;
use bytes::Bytes;
use clap::{ArgAction, Args};
use futures_util::StreamExt;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

const GO_MODE_DIR: u32 = 1 << 31;
const GO_MODE_SYMLINK: u32 = 1 << 27;

#[derive(Args, Debug)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short = 'a', long)]
    pub archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long = "follow-link")]
    pub follow_link: bool,
    /// Suppress progress output during copy
    #[arg(short = 'q', long)]
    pub quiet: bool,
    pub src: String,
    pub dest: String,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    pub container: String,
}

#[derive(Args, Debug)]
pub struct DiffArgs {
    pub container: String,
}

#[derive(Args, Debug)]
pub struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short = 'a', long)]
    pub author: Option<String>,
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long = "change", action = ArgAction::Append)]
    pub change: Vec<String>,
    /// Commit message
    #[arg(short = 'm', long)]
    pub message: Option<String>,
    /// Pause container during commit
    #[arg(short = 'p', long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub pause: bool,
    pub container: String,
    pub reference: Option<String>,
}

/// One side of `cp`: a local path or `CONTAINER:PATH`.
#[derive(Debug, PartialEq)]
enum CpEnd {
    Local(String),
    Container(String, String),
}

/// docker's `splitCpArg`: a path starting with `/` or `.` is local even if it has a colon.
fn split_cp_arg(arg: &str) -> CpEnd {
    if arg.starts_with('/') || arg.starts_with('.') {
        return CpEnd::Local(arg.to_string());
    }
    match arg.split_once(':') {
        Some((c, p)) if !c.is_empty() => CpEnd::Container(c.to_string(), p.to_string()),
        _ => CpEnd::Local(arg.to_string()),
    }
}

fn copies_contents(path: &str) -> bool {
    path == "." || path.ends_with("/.")
}

fn asserts_dir(path: &str) -> bool {
    path.ends_with('/') || copies_contents(path)
}

fn base_of(path: &str) -> String {
    Path::new(path.trim_end_matches('/'))
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| "/".into())
}

fn parent_of(path: &str) -> String {
    let t = path.trim_end_matches('/');
    match t.rfind('/') {
        Some(0) => "/".into(),
        Some(i) => t[..i].to_string(),
        None => ".".into(),
    }
}

fn human_size(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < units.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n}B")
    } else {
        format!("{:.3}", v)
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
            + units[u]
    }
}

pub async fn cmd_cp(docker: &Docker, a: CpArgs) -> Result<i32> {
    let (src, dst) = (split_cp_arg(&a.src), split_cp_arg(&a.dest));
    let copied = match (src, dst) {
        (CpEnd::Container(c, p), CpEnd::Local(d)) => copy_from(docker, &a, &c, &p, &d).await?,
        (CpEnd::Local(s), CpEnd::Container(c, p)) => copy_to(docker, &a, &s, &c, &p).await?,
        (CpEnd::Container(..), CpEnd::Container(..)) => {
            return Err(status(1, "copying between containers is not supported"))
        }
        (CpEnd::Local(..), CpEnd::Local(..)) => {
            return Err(status(1, "must specify at least one container source"))
        }
    };
    if let Some((n, to)) = copied {
        if !a.quiet && isatty(2) {
            eprintln!("Successfully copied {} to {to}", human_size(n));
        }
    }
    Ok(0)
}

async fn stat_path(
    docker: &Docker,
    container: &str,
    path: &str,
) -> Result<Option<bollard::container::PathStatResponse>> {
    let opts = qp::ContainerArchiveInfoOptions {
        path: path.to_string(),
    };
    match docker
        .get_container_archive_info(container, Some(opts))
        .await
    {
        Ok(s) => Ok(Some(s)),
        Err(e) if http_status(&e) == Some(404) => Ok(None),
        Err(e) => Err(anyhow_api(e)),
    }
}

/// Renames an archive's top entry `old` ("." for a contents archive) to `new`.
fn rebase(name: &str, old: &str, new: &str) -> Option<String> {
    let rest = if old == "." {
        if name == "." {
            ""
        } else {
            name.strip_prefix("./").unwrap_or(name)
        }
    } else {
        let n = name.strip_prefix(old)?;
        if !(n.is_empty() || n.starts_with('/')) {
            return None;
        }
        n
    };
    let rest = rest.trim_start_matches('/');
    Some(if rest.is_empty() {
        new.to_string()
    } else {
        format!("{new}/{rest}")
    })
}

/// A blocking `Read` over the chunks an async task feeds it.
struct ChunkReader {
    rx: std::sync::mpsc::Receiver<std::io::Result<Bytes>>,
    cur: Bytes,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.recv() {
                Ok(Ok(b)) => self.cur = b,
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        self.cur = self.cur.slice(n..);
        Ok(n)
    }
}

/// Extracts a tar into `dir` on the host, renaming its top entry from `old` to `new`. Entry
/// names come from the container: `..`, absolute names and writes through a symlink are
/// refused, so the copy lands under `dir` and nowhere else.
fn extract_local(r: impl Read, dir: &Path, rename: Option<(&str, &str)>) -> Result<u64> {
    let mut ar = tar::Archive::new(r);
    ar.set_preserve_permissions(true);
    ar.set_preserve_mtime(true);
    ar.set_overwrite(true);
    let mut total = 0u64;
    for entry in ar.entries()? {
        let mut entry = entry?;
        let raw = entry.path()?.to_string_lossy().into_owned();
        let name = match rename {
            Some((old, new)) => match rebase(&raw, old, new) {
                Some(n) => n,
                None => continue,
            },
            None => raw.clone(),
        };
        let rel = Path::new(&name);
        if rel
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(anyhow!(
                "invalid archive entry {raw:?}: outside the destination"
            ));
        }
        let target = dir.join(rel);
        // No component between `dir` and the entry may be a symlink.
        let mut p = dir.to_path_buf();
        let comps: Vec<_> = rel.components().collect();
        for c in comps.iter().take(comps.len().saturating_sub(1)) {
            p.push(c);
            match std::fs::symlink_metadata(&p) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(anyhow!(
                        "refusing to extract {raw:?} through the symbolic link {}",
                        p.display()
                    ))
                }
                Ok(_) => {}
                Err(_) => std::fs::create_dir_all(&p)?,
            }
        }
        let is_dir = entry.header().entry_type().is_dir();
        match std::fs::symlink_metadata(&target) {
            Ok(m) if m.is_dir() && is_dir => {}
            Ok(m) if m.is_dir() => {
                return Err(anyhow!(
                    "cannot overwrite directory {:?} with non-directory",
                    target.display()
                ))
            }
            Ok(_) if is_dir => {
                return Err(anyhow!(
                    "cannot overwrite non-directory {:?} with directory",
                    target.display()
                ))
            }
            Ok(_) => std::fs::remove_file(&target)?,
            Err(_) => {}
        }
        total += entry.header().size().unwrap_or(0);
        if entry.header().entry_type() == tar::EntryType::Link {
            // Hard links name another entry of the same archive.
            let Some(t) = entry.link_name()? else {
                continue;
            };
            let t = t.to_string_lossy().into_owned();
            let t = match rename {
                Some((old, new)) => rebase(&t, old, new).unwrap_or(t),
                None => t,
            };
            if Path::new(&t)
                .components()
                .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
            {
                return Err(anyhow!("invalid hard link {raw:?}"));
            }
            std::fs::hard_link(dir.join(t), &target)?;
            continue;
        }
        entry.unpack(&target)?;
    }
    Ok(total)
}

async fn copy_from(
    docker: &Docker,
    a: &CpArgs,
    container: &str,
    src: &str,
    dst: &str,
) -> Result<Option<(u64, String)>> {
    let not_found = || {
        status(1, format!("Error response from daemon: Could not find the file {src} in container {container}"))
    };
    let mut src_path = src.to_string();
    let mut rename_to: Option<String> = None;
    let mut stat = stat_path(docker, container, &src_path)
        .await?
        .ok_or_else(not_found)?;
    if a.follow_link && stat.file_mode & GO_MODE_SYMLINK != 0 {
        let target = if stat.link_target.starts_with('/') {
            stat.link_target.clone()
        } else {
            format!("{}/{}", parent_of(src), stat.link_target)
        };
        rename_to = Some(base_of(src));
        src_path = target;
        stat = stat_path(docker, container, &src_path)
            .await?
            .ok_or_else(not_found)?;
    }
    let opts = qp::DownloadFromContainerOptions {
        path: src_path.clone(),
    };
    let mut body = docker.download_from_container(container, Some(opts));
    if dst == "-" {
        let mut out = std::io::stdout().lock();
        while let Some(chunk) = body.next().await {
            out.write_all(&chunk.map_err(anyhow_api)?)?;
        }
        out.flush()?;
        return Ok(None);
    }

    let src_is_dir = stat.file_mode & GO_MODE_DIR != 0;
    let archive_top = if copies_contents(&src_path) {
        ".".to_string()
    } else {
        stat.name.clone()
    };
    let dst_meta = std::fs::metadata(dst).ok();
    // (directory to extract into, rename of the top entry)
    let (dir, rename): (PathBuf, Option<(String, String)>) = match &dst_meta {
        Some(m) if m.is_dir() => (
            PathBuf::from(dst),
            rename_to.map(|r| (archive_top.clone(), r)),
        ),
        Some(_) if src_is_dir => {
            return Err(status(1, format!("cannot copy directory to file {dst:?}")))
        }
        Some(_) => (
            PathBuf::from(parent_of(dst)),
            Some((archive_top.clone(), base_of(dst))),
        ),
        None => {
            if !src_is_dir && asserts_dir(dst) {
                return Err(status(
                    1,
                    format!("destination directory {dst:?} does not exist"),
                ));
            }
            let parent = parent_of(dst);
            if !Path::new(&parent).is_dir() {
                return Err(status(
                    1,
                    format!("lstat {parent}: no such file or directory"),
                ));
            }
            (
                PathBuf::from(parent),
                Some((archive_top.clone(), base_of(dst))),
            )
        }
    };
    let (tx, rx) = std::sync::mpsc::sync_channel(16);
    let reader = ChunkReader {
        rx,
        cur: Bytes::new(),
    };
    let worker = tokio::task::spawn_blocking(move || {
        extract_local(
            reader,
            &dir,
            rename.as_ref().map(|(o, n)| (o.as_str(), n.as_str())),
        )
    });
    while let Some(chunk) = body.next().await {
        let item = chunk.map_err(|e| std::io::Error::other(api_error_message(&e)));
        let failed = item.is_err();
        if tx.send(item).is_err() || failed {
            break;
        }
    }
    drop(tx);
    let n = worker.await.map_err(|e| anyhow!("{e}"))??;
    Ok(Some((n, dst.to_string())))
}

/// Tars the local `src` with its top entry named `top` ("." for a directory's contents).
fn tar_local(src: &Path, top: &str, follow: bool) -> Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    let meta = if follow {
        std::fs::metadata(src)
    } else {
        std::fs::symlink_metadata(src)
    }
    .map_err(|e| anyhow!("lstat {}: {}", src.display(), crate::io_err_text(&e)))?;
    let real = if follow {
        std::fs::canonicalize(src)?
    } else {
        src.to_path_buf()
    };
    if meta.is_dir() {
        b.append_dir_all(top, &real)?;
    } else {
        b.append_path_with_name(&real, top)?;
    }
    Ok(b.into_inner()?)
}

async fn copy_to(
    docker: &Docker,
    a: &CpArgs,
    src: &str,
    container: &str,
    dst: &str,
) -> Result<Option<(u64, String)>> {
    let mut dst_path = dst.to_string();
    let mut dst_stat = stat_path(docker, container, &dst_path).await?;
    if let Some(s) = &dst_stat {
        if s.file_mode & GO_MODE_SYMLINK != 0 {
            dst_path = if s.link_target.starts_with('/') {
                s.link_target.clone()
            } else {
                format!("{}/{}", parent_of(dst), s.link_target)
            };
            dst_stat = stat_path(docker, container, &dst_path).await?;
        }
    }
    let dst_is_dir = dst_stat
        .as_ref()
        .is_some_and(|s| s.file_mode & GO_MODE_DIR != 0);
    let (target_dir, body) = if src == "-" {
        if !dst_is_dir {
            return Err(status(
                1,
                format!("destination \"{container}:{dst}\" must be a directory"),
            ));
        }
        let mut buf = Vec::new();
        std::io::stdin().lock().read_to_end(&mut buf)?;
        (dst_path.clone(), buf)
    } else {
        let meta = if a.follow_link {
            std::fs::metadata(src)
        } else {
            std::fs::symlink_metadata(src)
        }
        .map_err(|e| status(1, format!("lstat {src}: {}", crate::io_err_text(&e))))?;
        let src_is_dir = meta.is_dir();
        let src_top = if copies_contents(src) {
            ".".to_string()
        } else {
            base_of(src)
        };
        let (dir, top) = match &dst_stat {
            Some(_) if dst_is_dir => (dst_path.clone(), src_top),
            Some(_) if src_is_dir => {
                return Err(status(
                    1,
                    "Error response from daemon: cannot copy directory",
                ))
            }
            Some(_) => (parent_of(&dst_path), base_of(&dst_path)),
            None => {
                if !src_is_dir && asserts_dir(&dst_path) {
                    return Err(status(
                        1,
                        format!("destination directory \"{container}:{dst}\" does not exist"),
                    ));
                }
                (parent_of(&dst_path), base_of(&dst_path))
            }
        };
        let (src_owned, follow) = (PathBuf::from(src), a.follow_link);
        let tar = tokio::task::spawn_blocking(move || tar_local(&src_owned, &top, follow))
            .await
            .map_err(|e| anyhow!("{e}"))??;
        (dir, tar)
    };
    let n = body.len() as u64;
    let opts = qp::UploadToContainerOptions {
        path: target_dir,
        no_overwrite_dir_non_dir: Some("true".into()),
        copy_uidgid: Some(if a.archive { "true" } else { "false" }.into()),
    };
    docker
        .upload_to_container(container, Some(opts), bollard::body_full(body.into()))
        .await
        .map_err(|e| status(1, api_error_message(&e)))?;
    Ok(Some((n, format!("{container}:{dst}"))))
}

pub async fn cmd_export(docker: &Docker, a: ExportArgs) -> Result<i32> {
    if a.output.is_none() && isatty(1) {
        return Err(status(
            1,
            "cowardly refusing to save to a terminal. Use the -o flag or redirect",
        ));
    }
    // Fail before creating the output file when the container does not exist.
    docker
        .inspect_container(&a.container, None::<qp::InspectContainerOptions>)
        .await
        .map_err(|e| status(1, api_error_message(&e)))?;
    let mut s = docker.export_container(&a.container);
    let mut out: Box<dyn Write> = match &a.output {
        Some(p) => Box::new(
            std::fs::File::create(p).map_err(|e| anyhow!("failed to export container: {e}"))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    while let Some(chunk) = s.next().await {
        out.write_all(&chunk.map_err(anyhow_api)?)?;
    }
    out.flush()?;
    Ok(0)
}

pub async fn cmd_diff(docker: &Docker, a: DiffArgs) -> Result<i32> {
    let changes = docker
        .container_changes(&a.container)
        .await
        .map_err(|e| status(1, api_error_message(&e)))?
        .unwrap_or_default();
    let mut out = std::io::stdout().lock();
    for c in changes {
        let k = match c.kind as i32 {
            0 => "C",
            1 => "A",
            _ => "D",
        };
        writeln!(out, "{k} {}", c.path)?;
    }
    Ok(0)
}

/// docker's split of `REPO[:TAG]`: the tag is after the last colon not followed by a `/`.
fn split_reference(r: &str) -> (String, String) {
    match r.rfind(':') {
        Some(i) if !r[i + 1..].contains('/') && !r.contains('@') => {
            (r[..i].to_string(), r[i + 1..].to_string())
        }
        _ => (r.to_string(), String::new()),
    }
}

pub async fn cmd_commit(docker: &Docker, a: CommitArgs) -> Result<i32> {
    let (repo, tag) = a
        .reference
        .as_deref()
        .map(split_reference)
        .unwrap_or_default();
    let opts = qp::CommitContainerOptions {
        container: Some(a.container.clone()),
        repo: Some(repo).filter(|r| !r.is_empty()),
        tag: Some(tag).filter(|t| !t.is_empty()),
        comment: a.message.clone(),
        author: a.author.clone(),
        pause: a.pause,
        changes: None,
    };
    let opts = qp::CommitContainerOptions {
        // bollard sends one `changes` value: one instruction per line, which the daemon splits.
        changes: Some(a.change.join("\n")).filter(|c| !c.is_empty()),
        ..opts
    };
    let id = docker
        .commit_container(opts, bollard::models::ContainerConfig::default())
        .await
        .map_err(|e| status(1, api_error_message(&e)))?
        .id;
    println!("{id}");
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cp_args() {
        assert_eq!(
            split_cp_arg("web:/etc/hosts"),
            CpEnd::Container("web".into(), "/etc/hosts".into())
        );
        assert_eq!(split_cp_arg("./a:b"), CpEnd::Local("./a:b".into()));
        assert_eq!(split_cp_arg("/tmp/x"), CpEnd::Local("/tmp/x".into()));
        assert_eq!(split_cp_arg("-"), CpEnd::Local("-".into()));
        assert!(copies_contents("/tmp/."));
        assert!(asserts_dir("/tmp/"));
    }

    #[test]
    fn rebasing() {
        assert_eq!(rebase("dir/", "dir", "new").as_deref(), Some("new"));
        assert_eq!(rebase("dir/a/b", "dir", "new").as_deref(), Some("new/a/b"));
        assert_eq!(rebase("dirx/a", "dir", "new"), None);
        assert_eq!(rebase("./", ".", "new").as_deref(), Some("new"));
        assert_eq!(
            rebase(".hidden", ".", "new").as_deref(),
            Some("new/.hidden")
        );
        assert_eq!(rebase("a/b", ".", "new").as_deref(), Some("new/a/b"));
    }

    #[test]
    fn references_and_sizes() {
        assert_eq!(split_reference("img:1"), ("img".into(), "1".into()));
        assert_eq!(
            split_reference("reg:5000/img"),
            ("reg:5000/img".into(), "".into())
        );
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(2048), "2.048kB");
    }
}

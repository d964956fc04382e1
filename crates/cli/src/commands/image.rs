//! Image commands: images / image ls, history, tag, rmi, import, load, save.

use crate::client::{anyhow_api, api_error_message, status};
use crate::commands::container::parse_filters;
use crate::output::{self, Format};
use crate::stream::isatty;
use anyhow::{anyhow, Result};
use bollard::query_parameters as qp;
use bollard::Docker;
use bytes::Bytes;
use clap::{ArgAction, Args};
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::io::Write;

#[derive(Args, Debug)]
pub struct ImagesArgs {
    /// Show all images (default hides intermediate images)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Show digests
    #[arg(long)]
    pub digests: bool,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter", action = ArgAction::Append)]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// List multi-platform images as a tree (not supported; accepted for compatibility)
    #[arg(long, hide = true)]
    pub tree: bool,
    /// [REPOSITORY[:TAG]]
    pub reference: Option<String>,
}

/// Splits "repo:tag" at the tag colon (not a registry port).
pub fn split_repo_tag(r: &str) -> (String, String) {
    let slash = r.rfind('/').map(|i| i + 1).unwrap_or(0);
    match r[slash..].rfind(':') {
        Some(i) => (r[..slash + i].to_string(), r[slash + i + 1..].to_string()),
        None => (r.to_string(), String::new()),
    }
}

/// The docker CLI's image "contexts": one row per tag (or one `<none>` row).
pub fn image_rows(img: &Value, trunc: bool, digests: bool) -> Vec<Value> {
    let id = img["Id"].as_str().unwrap_or("");
    let id_s = if trunc {
        output::short_id(id)
    } else {
        id.to_string()
    };
    let created = img["Created"].as_i64().unwrap_or(0);
    let size = img["Size"].as_i64().unwrap_or(0);
    let repo_tags: Vec<String> = img["RepoTags"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str())
                .map(str::to_string)
                .filter(|t| t != "<none>:<none>")
                .collect()
        })
        .unwrap_or_default();
    let repo_digests: Vec<String> = img["RepoDigests"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str())
                .map(str::to_string)
                .filter(|t| t != "<none>@<none>")
                .collect()
        })
        .unwrap_or_default();
    let containers = img["Containers"].as_i64().unwrap_or(-1);
    let mk = |repo: &str, tag: &str, digest: &str| {
        json!({
            "Containers": if containers < 0 { "N/A".to_string() } else { containers.to_string() },
            "CreatedAt": output::go_time_string(created),
            "CreatedSince": output::time_ago(created),
            "Digest": digest,
            "ID": id_s,
            "Repository": repo,
            "SharedSize": match img["SharedSize"].as_i64() { Some(s) if s >= 0 => output::human_size(s as f64), _ => "N/A".into() },
            "Size": output::human_size(size as f64),
            "Tag": tag,
            "UniqueSize": "N/A",
            "VirtualSize": output::human_size_prec(size as f64, 4),
        })
    };
    let mut rows = Vec::new();
    let digest_for = |repo: &str| -> String {
        repo_digests
            .iter()
            .find_map(|d| {
                d.split_once('@')
                    .filter(|(r, _)| *r == repo)
                    .map(|(_, d)| d.to_string())
            })
            .unwrap_or_else(|| "<none>".into())
    };
    if repo_tags.is_empty() {
        if repo_digests.is_empty() {
            rows.push(mk("<none>", "<none>", "<none>"));
        } else {
            for d in &repo_digests {
                let (r, dg) = d.split_once('@').unwrap_or((d, "<none>"));
                rows.push(mk(r, "<none>", dg));
            }
        }
    } else {
        for t in &repo_tags {
            let (r, tag) = split_repo_tag(t);
            rows.push(mk(&r, &tag, &digest_for(&r)));
        }
    }
    let _ = digests;
    rows
}

fn images_headers() -> Value {
    json!({
        "Containers": "CONTAINERS", "CreatedAt": "CREATED AT", "CreatedSince": "CREATED", "Digest": "DIGEST",
        "ID": "IMAGE ID", "Repository": "REPOSITORY", "SharedSize": "SHARED SIZE", "Size": "SIZE",
        "Tag": "TAG", "UniqueSize": "UNIQUE SIZE", "VirtualSize": "SIZE",
    })
}

pub async fn cmd_images(docker: &Docker, a: ImagesArgs) -> Result<i32> {
    let mut filters = parse_filters(&a.filter)?;
    if let Some(r) = &a.reference {
        filters
            .entry("reference".into())
            .or_default()
            .push(r.clone());
    }
    let opts = qp::ListImagesOptions {
        all: a.all,
        filters: if filters.is_empty() {
            None
        } else {
            Some(filters)
        },
        digests: a.digests,
        ..Default::default()
    };
    let mut list = docker.list_images(Some(opts)).await.map_err(anyhow_api)?;
    list.sort_by_key(|i| std::cmp::Reverse(i.created));
    // `-q` prints one ID per row, as docker 28 does: an image with two tags shows up twice.
    let mut rows = Vec::new();
    for img in &list {
        let v = serde_json::to_value(img)?;
        rows.extend(image_rows(&v, !a.no_trunc, a.digests));
    }
    let default = if a.digests {
        "{{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    } else {
        "{{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    };
    let format = if a.quiet {
        Format::Raw("{{.ID}}".into())
    } else {
        Format::parse(a.format.as_deref(), default)
    };
    output::print_out(&output::render_list(&format, &rows, &images_headers())?);
    Ok(0)
}

// ---------- history ----------

#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    /// Print sizes and dates in human readable format
    #[arg(short = 'H', long, default_value = "true", action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub human: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Show history for the given platform
    #[arg(long)]
    pub platform: Option<String>,
    pub image: String,
}

pub async fn cmd_history(docker: &Docker, a: HistoryArgs) -> Result<i32> {
    let hist = docker.image_history(&a.image).await.map_err(anyhow_api)?;
    let trunc = !a.no_trunc;
    let rows: Vec<Value> = hist
        .iter()
        .map(|h| {
            let v = serde_json::to_value(h).unwrap_or(Value::Null);
            let id = v["Id"].as_str().unwrap_or("");
            let id_s = if id == "<missing>" || id.is_empty() {
                "<missing>".to_string()
            } else if trunc {
                output::short_id(id)
            } else {
                id.to_string()
            };
            let created = v["Created"].as_i64().unwrap_or(0);
            let created_by = v["CreatedBy"].as_str().unwrap_or("").replace('\t', " ");
            let created_by = if trunc { output::ellipsis(&created_by, 45) } else { created_by };
            let size = v["Size"].as_i64().unwrap_or(0);
            json!({
                "ID": id_s,
                "CreatedSince": if a.human { output::time_ago(created) } else {
                    chrono::DateTime::from_timestamp(created, 0).map(|t| t.to_rfc3339()).unwrap_or_default() },
                "CreatedAt": chrono::DateTime::from_timestamp(created, 0).map(|t| t.to_rfc3339()).unwrap_or_default(),
                "CreatedBy": created_by,
                "Size": if a.human { output::human_size_prec(size as f64, 3) } else { size.to_string() },
                "Comment": v["Comment"].as_str().unwrap_or(""),
            })
        })
        .collect();
    let headers = json!({"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"});
    let format = if a.quiet {
        Format::Raw("{{.ID}}".into())
    } else {
        Format::parse(
            a.format.as_deref(),
            "{{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}",
        )
    };
    output::print_out(&output::render_list(&format, &rows, &headers)?);
    Ok(0)
}

// ---------- tag / rmi ----------

#[derive(Args, Debug)]
pub struct TagArgs {
    pub source: String,
    pub target: String,
}

pub async fn cmd_tag(docker: &Docker, a: TagArgs) -> Result<i32> {
    if a.target.contains('@') {
        return Err(status(
            1,
            "refusing to create a tag with a digest reference",
        ));
    }
    let (repo, tag) = split_repo_tag(&a.target);
    let opts = qp::TagImageOptions {
        repo: Some(repo),
        tag: Some(if tag.is_empty() { "latest".into() } else { tag }),
    };
    docker
        .tag_image(&a.source, Some(opts))
        .await
        .map_err(anyhow_api)?;
    Ok(0)
}

#[derive(Args, Debug)]
pub struct RmiArgs {
    /// Force removal of the image
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Do not delete untagged parents
    #[arg(long = "no-prune")]
    pub no_prune: bool,
    /// Remove only the given platform variant
    #[arg(long, action = ArgAction::Append)]
    pub platform: Vec<String>,
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

pub async fn cmd_rmi(docker: &Docker, a: RmiArgs) -> Result<i32> {
    let mut failed = false;
    for img in &a.images {
        let opts = qp::RemoveImageOptions {
            force: a.force,
            noprune: a.no_prune,
            platforms: None,
        };
        match docker.remove_image(img, Some(opts), None).await {
            Ok(items) => {
                for it in items {
                    if let Some(u) = it.untagged.filter(|s| !s.is_empty()) {
                        println!("Untagged: {u}");
                    }
                    if let Some(d) = it.deleted.filter(|s| !s.is_empty()) {
                        println!("Deleted: {d}");
                    }
                }
            }
            Err(e) => {
                eprintln!("{}", api_error_message(&e));
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

// ---------- import / load / save ----------

fn file_stream(
    path: Option<String>,
) -> Result<impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static> {
    use std::io::Read;
    let mut reader: Box<dyn Read + Send> = match path {
        Some(p) => Box::new(
            std::fs::File::open(&p).map_err(|e| anyhow!("open {p}: {}", crate::io_err_text(&e)))?,
        ),
        None => Box::new(std::io::stdin()),
    };
    // Read on a blocking thread and hand chunks over.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    if tx
                        .blocking_send(Ok(Bytes::copy_from_slice(&buf[..n])))
                        .is_err()
                    {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
    });
    Ok(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|x| (x, rx))
    }))
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long = "change", action = ArgAction::Append)]
    pub change: Vec<String>,
    /// Set commit message for imported image
    #[arg(short = 'm', long)]
    pub message: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    pub platform: Option<String>,
    /// file|URL|-
    pub source: String,
    /// [REPOSITORY[:TAG]]
    pub reference: Option<String>,
}

pub async fn cmd_import(docker: &Docker, a: ImportArgs) -> Result<i32> {
    let is_url = a.source.starts_with("http://") || a.source.starts_with("https://");
    let opts = qp::CreateImageOptions {
        from_src: Some(if is_url { a.source.clone() } else { "-".into() }),
        repo: a.reference.clone(),
        message: a.message.clone(),
        changes: a.change.clone(),
        platform: a.platform.clone().unwrap_or_default(),
        ..Default::default()
    };
    let body = if is_url {
        None
    } else {
        let path = if a.source == "-" {
            None
        } else {
            Some(a.source.clone())
        };
        Some(bollard::body_try_stream(file_stream(path)?))
    };
    let d = docker
        .clone()
        .with_timeout(std::time::Duration::from_secs(3600));
    let mut s = d.create_image(Some(opts), body, None);
    while let Some(item) = s.next().await {
        let info = item.map_err(|e| match e {
            bollard::errors::Error::DockerStreamError { error } => anyhow!(error),
            other => anyhow_api(other),
        })?;
        if let Some(st) = info.status.filter(|s| !s.is_empty()) {
            match info.id.filter(|s| !s.is_empty()) {
                Some(id) => println!("{id}: {st}"),
                None => println!("{st}"),
            }
        }
    }
    Ok(0)
}

#[derive(Args, Debug)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short = 'i', long)]
    pub input: Option<String>,
    /// Suppress the load output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Load only the given platform(s)
    #[arg(long, action = ArgAction::Append)]
    pub platform: Vec<String>,
}

pub async fn cmd_load(docker: &Docker, a: LoadArgs) -> Result<i32> {
    if a.input.is_none() && isatty(0) {
        return Err(status(1, "requested load from stdin, but stdin is empty"));
    }
    let stream = file_stream(a.input.clone())?;
    // As the docker CLI: no progress when the output is not a terminal.
    let quiet = a.quiet || !isatty(1);
    let opts = qp::ImportImageOptions {
        quiet,
        platform: if a.platform.is_empty() {
            None
        } else {
            Some(a.platform.clone())
        },
    };
    let d = docker
        .clone()
        .with_timeout(std::time::Duration::from_secs(3600));
    let mut s = d.import_image_stream(opts, stream, None);
    while let Some(item) = s.next().await {
        let info = item.map_err(|e| match e {
            bollard::errors::Error::DockerStreamError { error } => anyhow!(error),
            other => anyhow_api(other),
        })?;
        if let Some(st) = info.stream.filter(|s| !s.is_empty()) {
            output::print_out(&st);
        } else if let Some(st) = info.status.filter(|s| !s.is_empty()) {
            if !quiet && info.progress_detail.is_none() {
                println!("{st}");
            }
        }
    }
    Ok(0)
}

#[derive(Args, Debug)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// Save only the given platform(s)
    #[arg(long, action = ArgAction::Append)]
    pub platform: Vec<String>,
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

pub async fn cmd_save(docker: &Docker, a: SaveArgs) -> Result<i32> {
    if a.output.is_none() && isatty(1) {
        return Err(status(
            1,
            "cowardly refusing to save to a terminal. Use the -o flag or redirect",
        ));
    }
    let names: Vec<&str> = a.images.iter().map(String::as_str).collect();
    let d = docker
        .clone()
        .with_timeout(std::time::Duration::from_secs(3600));
    let mut s = d.export_images(&names);
    match &a.output {
        Some(path) => {
            let p = std::path::Path::new(path);
            let dir = p
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            let tmp = dir.join(format!(
                ".{}.berth-tmp-{}",
                p.file_name().and_then(|f| f.to_str()).unwrap_or("save"),
                std::process::id()
            ));
            let mut f =
                std::fs::File::create(&tmp).map_err(|e| anyhow!("failed to save image: {e}"))?;
            let res: Result<()> = async {
                while let Some(chunk) = s.next().await {
                    let chunk = chunk.map_err(anyhow_api)?;
                    f.write_all(&chunk)?;
                }
                f.sync_all()?;
                Ok(())
            }
            .await;
            if let Err(e) = res {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
            std::fs::rename(&tmp, p).map_err(|e| anyhow!("failed to save image: {e}"))?;
        }
        None => {
            let mut out = std::io::stdout().lock();
            while let Some(chunk) = s.next().await {
                let chunk = chunk.map_err(anyhow_api)?;
                out.write_all(&chunk)?;
            }
            out.flush()?;
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_tags() {
        assert_eq!(
            split_repo_tag("busybox:latest"),
            ("busybox".into(), "latest".into())
        );
        assert_eq!(
            split_repo_tag("localhost:5000/a/b"),
            ("localhost:5000/a/b".into(), "".into())
        );
        assert_eq!(
            split_repo_tag("localhost:5000/a:1"),
            ("localhost:5000/a".into(), "1".into())
        );
    }

    #[test]
    fn image_table() {
        let now = chrono::Utc::now().timestamp();
        let img = json!({
            "Id": "sha256:4a2f1e5e9d8c7b6a5f4e3d2c1b0a99887766554433221100ffeeddccbbaa9988",
            "RepoTags": ["busybox:latest", "busybox:1.36"],
            "RepoDigests": ["busybox@sha256:abcd"],
            "Created": now - 150,
            "Size": 4_260_000,
        });
        let rows = image_rows(&img, true, false);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["ID"], "4a2f1e5e9d8c");
        assert_eq!(rows[0]["Digest"], "sha256:abcd");
        let out = output::render_list(
            &Format::parse(
                None,
                "{{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}",
            ),
            &rows,
            &images_headers(),
        )
        .unwrap();
        assert_eq!(
            out,
            "REPOSITORY   TAG       IMAGE ID       CREATED         SIZE\n\
             busybox      latest    4a2f1e5e9d8c   2 minutes ago   4.26MB\n\
             busybox      1.36      4a2f1e5e9d8c   2 minutes ago   4.26MB\n"
        );
        let dangling = image_rows(
            &json!({"Id": "sha256:ab", "RepoTags": [], "Created": now, "Size": 1}),
            true,
            false,
        );
        assert_eq!(dangling[0]["Repository"], "<none>");
        assert_eq!(dangling[0]["Tag"], "<none>");
    }
}

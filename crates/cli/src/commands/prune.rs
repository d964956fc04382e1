//! Disk space commands: `container prune`, `image prune`, `system prune`, `system df`, with
//! the docker CLI's prompts, output and units.

use crate::client::{anyhow_api, http_status, raw_get, status};
use crate::commands::container::{parse_filters, ps_context};
use crate::commands::image::split_repo_tag;
use crate::output::{self, human_size_prec, Format};
use anyhow::Result;
use bollard::query_parameters as qp;
use bollard::Docker;
use clap::{ArgAction, Args};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{BufRead, Write};

#[derive(Args, Debug)]
pub struct ContainerPruneArgs {
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long = "filter", action = ArgAction::Append)]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct ImagePruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long = "filter", action = ArgAction::Append)]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct SystemPruneArgs {
    /// Remove all unused images not just dangling ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Provide filter values (e.g. "label=<key>=<value>")
    #[arg(long = "filter", action = ArgAction::Append)]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Prune volumes
    #[arg(long)]
    pub volumes: bool,
}

#[derive(Args, Debug)]
pub struct DfArgs {
    /// Show detailed information on space usage
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// Pretty-print output using a Go template
    #[arg(long)]
    pub format: Option<String>,
}

/// go-units' `HumanSize` (4 significant digits), which the docker CLI uses for prune totals
/// and `system df`; image and container sizes in tables use 3 (`output::human_size`).
fn human_size(n: f64) -> String {
    human_size_prec(n, 4)
}

/// docker's PromptForConfirmation: true only for "y"/"Y".
/// docker's prune listing: "Deleted Volumes:" and one name per line; empty when nothing went.
pub(crate) fn deleted_list(title: &str, names: Vec<String>) -> String {
    if names.is_empty() {
        return String::new();
    }
    let mut out = format!("Deleted {title}:\n");
    for n in names {
        out.push_str(&n);
        out.push('\n');
    }
    out
}

pub(crate) fn confirm(warning: &str) -> bool {
    print!("{warning}\nAre you sure you want to continue? [y/N] ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    matches!(line.trim(), "y" | "Y")
}

fn filters_opt(f: &[String]) -> Result<Option<HashMap<String, Vec<String>>>> {
    let f = parse_filters(f)?;
    Ok((!f.is_empty()).then_some(f))
}

/// Runs the container pruner; returns (bytes reclaimed, text to print).
async fn prune_containers(docker: &Docker, filter: &[String]) -> Result<(i64, String)> {
    let opts = qp::PruneContainersOptions {
        filters: filters_opt(filter)?,
    };
    let r = docker
        .prune_containers(Some(opts))
        .await
        .map_err(anyhow_api)?;
    let out = deleted_list("Containers", r.containers_deleted.unwrap_or_default());
    Ok((r.space_reclaimed.unwrap_or(0), out))
}

async fn prune_images(docker: &Docker, all: bool, filter: &[String]) -> Result<(i64, String)> {
    let mut filters = parse_filters(filter)?;
    if all {
        filters.insert("dangling".into(), vec!["false".into()]);
    } else {
        filters
            .entry("dangling".into())
            .or_insert_with(|| vec!["true".into()]);
    }
    let opts = qp::PruneImagesOptions {
        filters: Some(filters),
    };
    let r = docker.prune_images(Some(opts)).await.map_err(anyhow_api)?;
    let items = r.images_deleted.unwrap_or_default();
    if items.is_empty() {
        return Ok((0, String::new()));
    }
    let mut out = String::from("Deleted Images:\n");
    for it in items {
        match (it.untagged.filter(|s| !s.is_empty()), it.deleted) {
            (Some(u), _) => out.push_str(&format!("untagged: {u}\n")),
            (None, Some(d)) => out.push_str(&format!("deleted: {d}\n")),
            _ => {}
        }
    }
    Ok((r.space_reclaimed.unwrap_or(0), out))
}

fn print_report(reclaimed: i64, text: &str) {
    if !text.is_empty() {
        println!("{text}");
    }
    println!("Total reclaimed space: {}", human_size(reclaimed as f64));
}

pub async fn cmd_container_prune(docker: &Docker, a: ContainerPruneArgs) -> Result<i32> {
    if !a.force && !confirm("WARNING! This will remove all stopped containers.") {
        return Ok(0);
    }
    let (n, text) = prune_containers(docker, &a.filter).await?;
    print_report(n, &text);
    Ok(0)
}

pub async fn cmd_image_prune(docker: &Docker, a: ImagePruneArgs) -> Result<i32> {
    let warning = if a.all {
        "WARNING! This will remove all images without at least one container associated to them."
    } else {
        "WARNING! This will remove all dangling images."
    };
    if !a.force && !confirm(warning) {
        return Ok(0);
    }
    let (n, text) = prune_images(docker, a.all, &a.filter).await?;
    print_report(n, &text);
    Ok(0)
}

fn system_prune_warning(all: bool, volumes: bool) -> String {
    let mut w = String::from("WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n");
    if volumes {
        w.push_str("  - all volumes not used by at least one container\n");
    }
    if all {
        w.push_str("  - all images without at least one container associated to them\n  - all build cache\n");
    } else {
        w.push_str("  - all dangling images\n  - all dangling build cache\n");
    }
    w
}

/// Pruners of objects this daemon may not have (networks, build cache): a 404 means none.
fn optional(
    r: std::result::Result<(i64, String), bollard::errors::Error>,
) -> Result<(i64, String)> {
    match r {
        Ok(v) => Ok(v),
        Err(e) if matches!(http_status(&e), Some(404)) => Ok((0, String::new())),
        Err(e) => Err(anyhow_api(e)),
    }
}

pub async fn cmd_system_prune(docker: &Docker, a: SystemPruneArgs) -> Result<i32> {
    if !a.force && !confirm(&system_prune_warning(a.all, a.volumes)) {
        return Ok(0);
    }
    let mut total = 0i64;
    let mut report = |(n, text): (i64, String)| {
        total += n;
        if !text.is_empty() {
            println!("{text}");
        }
    };
    report(prune_containers(docker, &a.filter).await?);
    let filters = filters_opt(&a.filter)?;
    report(optional(
        crate::commands::network::prune_report(docker, filters.clone())
            .await
            .map(|text| (0, text)),
    )?);
    if a.volumes {
        // Anonymous volumes only, even with --all, as docker's CLI.
        report(
            crate::commands::volume::prune_report(docker, filters.clone().unwrap_or_default())
                .await?,
        );
    }
    report(prune_images(docker, a.all, &a.filter).await?);
    report(optional(
        docker
            .prune_build(Some(qp::PruneBuildOptions {
                all: Some(a.all),
                filters,
                ..Default::default()
            }))
            .await
            .map(|r| {
                let ids = r.caches_deleted.unwrap_or_default();
                let n = r.space_reclaimed.unwrap_or(0);
                if ids.is_empty() {
                    (n, String::new())
                } else {
                    (
                        n,
                        format!("Deleted build cache objects:\n{}\n", ids.join("\n")),
                    )
                }
            }),
    )?);
    println!("Total reclaimed space: {}", human_size(total as f64));
    Ok(0)
}

// ---------- system df ----------

const DF_TABLE: &str = "{{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}";

fn df_headers() -> Value {
    json!({"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE",
           "Reclaimable": "RECLAIMABLE"})
}

/// "12.3MB (45%)" when there is anything at all, else just the size (docker's formatter).
fn with_percent(reclaimable: i64, total: i64) -> String {
    if total > 0 {
        format!(
            "{} ({}%)",
            human_size(reclaimable as f64),
            reclaimable * 100 / total
        )
    } else {
        human_size(reclaimable as f64)
    }
}

fn arr(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// The four summary rows of `docker system df`.
pub fn df_rows(df: &Value) -> Vec<Value> {
    let images = arr(&df["Images"]);
    let layers = df["LayersSize"].as_i64().unwrap_or(0);
    let used: i64 = images
        .iter()
        .filter(|i| i["Containers"].as_i64().unwrap_or(0) > 0)
        .filter(|i| i["SharedSize"].as_i64() != Some(-1))
        .map(|i| i["Size"].as_i64().unwrap_or(0) - i["SharedSize"].as_i64().unwrap_or(0))
        .sum();
    let containers = arr(&df["Containers"]);
    let active = |c: &Value| {
        matches!(
            c["State"].as_str(),
            Some("running" | "paused" | "restarting")
        )
    };
    let ctr_size: i64 = containers
        .iter()
        .map(|c| c["SizeRw"].as_i64().unwrap_or(0))
        .sum();
    let ctr_free: i64 = containers
        .iter()
        .filter(|c| !active(c))
        .map(|c| c["SizeRw"].as_i64().unwrap_or(0))
        .sum();
    let volumes = arr(&df["Volumes"]);
    let vol_size: i64 = volumes
        .iter()
        .map(|v| v["UsageData"]["Size"].as_i64().unwrap_or(0).max(0))
        .sum();
    let vol_active = volumes
        .iter()
        .filter(|v| v["UsageData"]["RefCount"].as_i64().unwrap_or(0) > 0)
        .count();
    let vol_free: i64 = volumes
        .iter()
        .filter(|v| v["UsageData"]["RefCount"].as_i64().unwrap_or(0) == 0)
        .map(|v| v["UsageData"]["Size"].as_i64().unwrap_or(0).max(0))
        .sum();
    let cache = arr(&df["BuildCache"]);
    let cache_size: i64 = cache
        .iter()
        .filter(|c| !c["Shared"].as_bool().unwrap_or(false))
        .map(|c| c["Size"].as_i64().unwrap_or(0))
        .sum();
    let cache_free: i64 = cache
        .iter()
        .filter(|c| {
            !c["InUse"].as_bool().unwrap_or(false) && !c["Shared"].as_bool().unwrap_or(false)
        })
        .map(|c| c["Size"].as_i64().unwrap_or(0))
        .sum();
    vec![
        json!({"Type": "Images", "TotalCount": images.len().to_string(),
               "Active": images.iter().filter(|i| i["Containers"].as_i64().unwrap_or(0) > 0).count().to_string(),
               "Size": human_size(layers as f64), "Reclaimable": with_percent(layers - used, layers)}),
        json!({"Type": "Containers", "TotalCount": containers.len().to_string(),
               "Active": containers.iter().filter(|c| active(c)).count().to_string(),
               "Size": human_size(ctr_size as f64), "Reclaimable": with_percent(ctr_free, ctr_size)}),
        json!({"Type": "Local Volumes", "TotalCount": volumes.len().to_string(),
               "Active": vol_active.to_string(),
               "Size": human_size(vol_size as f64), "Reclaimable": with_percent(vol_free, vol_size)}),
        json!({"Type": "Build Cache", "TotalCount": cache.len().to_string(),
               "Active": cache.iter().filter(|c| c["InUse"].as_bool().unwrap_or(false)).count().to_string(),
               "Size": human_size(cache_size as f64), "Reclaimable": human_size(cache_free as f64)}),
    ]
}

fn image_df_row(img: &Value) -> Value {
    let tags: Vec<&str> = arr(&img["RepoTags"])
        .iter()
        .filter_map(|t| t.as_str())
        .filter(|t| *t != "<none>:<none>")
        .collect();
    let (repo, tag) = tags
        .first()
        .map(|t| split_repo_tag(t))
        .unwrap_or_else(|| ("<none>".into(), "<none>".into()));
    let size = img["Size"].as_i64().unwrap_or(0);
    let shared = img["SharedSize"].as_i64().unwrap_or(-1);
    json!({
        "Repository": repo,
        "Tag": tag,
        "ID": output::short_id(img["Id"].as_str().unwrap_or("")),
        "CreatedSince": output::time_ago(img["Created"].as_i64().unwrap_or(0)),
        "Size": output::human_size(size as f64),
        "SharedSize": if shared == -1 { "N/A".to_string() } else { human_size(shared as f64) },
        "UniqueSize": if shared == -1 { "N/A".to_string() } else { human_size((size - shared) as f64) },
        "Containers": img["Containers"].as_i64().unwrap_or(0).to_string(),
    })
}

fn verbose_df(df: &Value) -> Result<String> {
    let table = |rows: &[Value], tmpl: &str, headers: Value| {
        output::render_list(&Format::Table(tmpl.to_string()), rows, &headers)
    };
    let images: Vec<Value> = arr(&df["Images"]).iter().map(image_df_row).collect();
    let containers: Vec<Value> = arr(&df["Containers"])
        .iter()
        .map(|c| {
            // The verbose view shows the writable size only, not the virtual size.
            let mut c = c.clone();
            c["SizeRootFs"] = json!(0);
            ps_context(&c, true)
        })
        .collect();
    let volumes: Vec<Value> = arr(&df["Volumes"])
        .iter()
        .map(|v| {
            json!({"Name": v["Name"], "Links": v["UsageData"]["RefCount"].as_i64().unwrap_or(0).to_string(),
                   "Size": human_size(v["UsageData"]["Size"].as_i64().unwrap_or(0) as f64)})
        })
        .collect();
    let cache_size: i64 = arr(&df["BuildCache"])
        .iter()
        .map(|c| c["Size"].as_i64().unwrap_or(0))
        .sum();
    let mut out = String::from("Images space usage:\n\n");
    out.push_str(&table(
        &images,
        "{{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}",
        json!({"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID", "CreatedSince": "CREATED",
               "Size": "SIZE", "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE", "Containers": "CONTAINERS"}),
    )?);
    out.push_str("\nContainers space usage:\n\n");
    out.push_str(&table(
        &containers,
        "{{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}",
        json!({"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "LocalVolumes": "LOCAL VOLUMES",
               "Size": "SIZE", "RunningFor": "CREATED", "Status": "STATUS", "Names": "NAMES"}),
    )?);
    out.push_str("\nLocal Volumes space usage:\n\n");
    out.push_str(&table(
        &volumes,
        "{{.Name}}\t{{.Links}}\t{{.Size}}",
        json!({"Name": "VOLUME NAME", "Links": "LINKS", "Size": "SIZE"}),
    )?);
    out.push_str(&format!(
        "\nBuild cache usage: {}\n\n",
        human_size(cache_size as f64)
    ));
    out.push_str(&table(
        &[],
        "{{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t{{.LastUsedSince}}\t{{.UsageCount}}\t{{.Shared}}",
        json!({"ID": "CACHE ID", "CacheType": "CACHE TYPE", "Size": "SIZE", "CreatedSince": "CREATED",
               "LastUsedSince": "LAST USED", "UsageCount": "USAGE", "Shared": "SHARED"}),
    )?);
    Ok(out)
}

pub async fn cmd_system_df(docker: &Docker, a: DfArgs) -> Result<i32> {
    let Some((code, body)) = raw_get(docker, "/system/df").await? else {
        return Err(status(1, "system df needs a unix:// daemon socket"));
    };
    if code >= 400 {
        let msg: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        return Err(status(
            1,
            format!(
                "Error response from daemon: {}",
                msg["message"].as_str().unwrap_or("system df failed")
            ),
        ));
    }
    let df: Value = serde_json::from_slice(&body)?;
    if a.verbose && a.format.is_none() {
        output::print_out(&verbose_df(&df)?);
        return Ok(0);
    }
    let format = Format::parse(a.format.as_deref(), DF_TABLE);
    output::print_out(&output::render_list(&format, &df_rows(&df), &df_headers())?);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_rows_and_percentages() {
        let df = json!({
            "LayersSize": 2_000_000,
            "Images": [
                {"Id": "sha256:aa", "Size": 1_500_000, "SharedSize": 0, "Containers": 1},
                {"Id": "sha256:bb", "Size": 500_000, "SharedSize": 0, "Containers": 0},
            ],
            "Containers": [
                {"State": "running", "SizeRw": 1000},
                {"State": "exited", "SizeRw": 3000},
            ],
            "Volumes": [], "BuildCache": [],
        });
        let out = output::render_list(&Format::parse(None, DF_TABLE), &df_rows(&df), &df_headers())
            .unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE"
        );
        assert_eq!(
            lines[1],
            "Images          2         1         2MB       500kB (25%)"
        );
        assert_eq!(
            lines[2],
            "Containers      2         1         4kB       3kB (75%)"
        );
        assert_eq!(lines[3], "Local Volumes   0         0         0B        0B");
        assert_eq!(lines[4], "Build Cache     0         0         0B        0B");
    }

    #[test]
    fn system_prune_warning_lists_what_goes() {
        assert!(system_prune_warning(false, false).contains("all dangling images"));
        assert!(system_prune_warning(true, false).contains("without at least one container"));
    }
}

//! Resource commands: stats, top, pause, unpause, update.

use crate::client::{anyhow_api, api_error_message, status};
use crate::commands::run_opts::{parse_cpus, parse_restart, ram_in_bytes};
use crate::output::{self, Format};
use anyhow::Result;
use bollard::query_parameters as qp;
use bollard::Docker;
use bollard_stubs::models::{ContainerStatsResponse, ContainerUpdateBody};
use clap::Args;
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

// ---------- stats ----------

#[derive(Args, Debug)]
pub struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Format output using a custom template ('table', 'table TEMPLATE', 'json', or a Go template)
    #[arg(long)]
    pub format: Option<String>,
    /// Disable streaming stats and only pull the first result
    #[arg(long = "no-stream")]
    pub no_stream: bool,
    /// Do not truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

const STATS_TABLE: &str =
    "{{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";

fn stats_headers() -> Value {
    json!({
        "Container": "CONTAINER", "ID": "CONTAINER ID", "Name": "NAME", "CPUPerc": "CPU %",
        "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O",
        "BlockIO": "BLOCK I/O", "PIDs": "PIDS",
    })
}

/// docker's calculateCPUPercentUnix: the container's share of the host's CPU time between
/// the two samples, scaled to the number of CPUs.
pub fn cpu_percent(s: &ContainerStatsResponse) -> f64 {
    let cur = s.cpu_stats.clone().unwrap_or_default();
    let pre = s.precpu_stats.clone().unwrap_or_default();
    let usage = |c: &bollard_stubs::models::ContainerCpuStats| {
        c.cpu_usage
            .as_ref()
            .and_then(|u| u.total_usage)
            .unwrap_or(0) as f64
    };
    let cpu_delta = usage(&cur) - usage(&pre);
    let sys_delta =
        cur.system_cpu_usage.unwrap_or(0) as f64 - pre.system_cpu_usage.unwrap_or(0) as f64;
    let mut online = cur.online_cpus.unwrap_or(0) as f64;
    if online == 0.0 {
        online = cur
            .cpu_usage
            .as_ref()
            .and_then(|u| u.percpu_usage.as_ref())
            .map(|p| p.len())
            .unwrap_or(0) as f64;
    }
    if sys_delta > 0.0 && cpu_delta > 0.0 {
        cpu_delta / sys_delta * online * 100.0
    } else {
        0.0
    }
}

/// docker's calculateMemUsageUnixNoCache: usage minus the inactive page cache
/// (`total_inactive_file` on cgroup v1, `inactive_file` on v2).
pub fn mem_usage(s: &ContainerStatsResponse) -> f64 {
    let m = s.memory_stats.clone().unwrap_or_default();
    let usage = m.usage.unwrap_or(0);
    let stats = m.stats.unwrap_or_default();
    if let Some(v) = stats.get("total_inactive_file") {
        if *v < usage {
            return (usage - v) as f64;
        }
    }
    match stats.get("inactive_file") {
        Some(v) if *v < usage => (usage - v) as f64,
        _ => usage as f64,
    }
}

fn io_totals(s: &ContainerStatsResponse) -> ((f64, f64), (f64, f64)) {
    let (mut rx, mut tx) = (0.0, 0.0);
    for n in s.networks.iter().flat_map(|m| m.values()) {
        rx += n.rx_bytes.unwrap_or(0) as f64;
        tx += n.tx_bytes.unwrap_or(0) as f64;
    }
    let (mut r, mut w) = (0.0, 0.0);
    let entries = s
        .blkio_stats
        .as_ref()
        .and_then(|b| b.io_service_bytes_recursive.clone())
        .unwrap_or_default();
    for e in entries {
        match e.op.as_deref().map(str::to_ascii_lowercase).as_deref() {
            Some("read") => r += e.value.unwrap_or(0) as f64,
            Some("write") => w += e.value.unwrap_or(0) as f64,
            _ => {}
        }
    }
    ((rx, tx), (r, w))
}

/// The formatter context of one container, with docker's field names and renderings.
pub fn stats_row(container: &str, s: &ContainerStatsResponse, trunc: bool) -> Value {
    let id = s.id.clone().unwrap_or_default();
    let id = if trunc { output::short_id(&id) } else { id };
    let name = s
        .name
        .clone()
        .unwrap_or_default()
        .trim_start_matches('/')
        .to_string();
    let mem = mem_usage(s);
    let limit = s.memory_stats.as_ref().and_then(|m| m.limit).unwrap_or(0) as f64;
    let mem_perc = if limit > 0.0 {
        mem / limit * 100.0
    } else {
        0.0
    };
    let ((rx, tx), (r, w)) = io_totals(s);
    let pids = s.pids_stats.as_ref().and_then(|p| p.current).unwrap_or(0);
    json!({
        "BlockIO": format!("{} / {}", output::human_size_prec(r, 3), output::human_size_prec(w, 3)),
        "CPUPerc": format!("{:.2}%", cpu_percent(s)),
        "Container": container,
        "ID": id,
        "MemPerc": format!("{mem_perc:.2}%"),
        "MemUsage": format!("{} / {}", output::bytes_size(mem), output::bytes_size(limit)),
        "Name": name,
        "NetIO": format!("{} / {}", output::human_size_prec(rx, 3), output::human_size_prec(tx, 3)),
        "PIDs": pids.to_string(),
    })
}

#[derive(Default)]
struct Entry {
    /// Order of first appearance, so rows keep their places between redraws.
    seq: usize,
    row: Option<Value>,
    error: Option<String>,
    done: bool,
}

type Board = Arc<Mutex<BTreeMap<String, Entry>>>;

fn board_lock(b: &Board) -> std::sync::MutexGuard<'_, BTreeMap<String, Entry>> {
    b.lock().unwrap_or_else(|p| p.into_inner())
}

fn collect(docker: &Docker, board: &Board, container: String, stream: bool, trunc: bool) {
    static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    board_lock(board)
        .entry(container.clone())
        .or_insert_with(|| Entry {
            seq: SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            ..Default::default()
        });
    let (docker, board) = (docker.clone(), board.clone());
    tokio::spawn(async move {
        let opts = qp::StatsOptions {
            stream,
            one_shot: false,
        };
        let mut s = docker.stats(&container, Some(opts));
        while let Some(item) = s.next().await {
            let mut b = board_lock(&board);
            let Some(e) = b.get_mut(&container) else {
                return;
            };
            match item {
                Ok(v) => {
                    e.row = Some(stats_row(&container, &v, trunc));
                    e.error = None;
                }
                Err(err) => {
                    e.error = Some(api_error_message(&err));
                    break;
                }
            }
        }
        if let Some(e) = board_lock(&board).get_mut(&container) {
            e.done = true;
        }
    });
}

async fn running_ids(docker: &Docker, all: bool) -> Result<Vec<String>> {
    let list = docker
        .list_containers(Some(qp::ListContainersOptions {
            all,
            ..Default::default()
        }))
        .await
        .map_err(anyhow_api)?;
    Ok(list.into_iter().filter_map(|c| c.id).collect())
}

pub async fn cmd_stats(docker: &Docker, a: StatsArgs) -> Result<i32> {
    let format = Format::parse(a.format.as_deref(), STATS_TABLE);
    let board: Board = Arc::default();
    let stream = !a.no_stream;
    let trunc = !a.no_trunc;
    let named = !a.containers.is_empty();
    let initial = if named {
        a.containers.clone()
    } else {
        running_ids(docker, a.all).await?
    };
    for c in initial {
        collect(docker, &board, c, stream, trunc);
    }
    let render = |board: &Board| -> Result<(String, Vec<String>)> {
        let b = board_lock(board);
        let mut entries: Vec<(&String, &Entry)> = b.iter().collect();
        entries.sort_by_key(|(_, e)| e.seq);
        let rows: Vec<Value> = entries.iter().filter_map(|(_, e)| e.row.clone()).collect();
        let errors = entries
            .iter()
            .filter_map(|(_, e)| e.error.clone())
            .collect();
        Ok((
            output::render_list(&format, &rows, &stats_headers())?,
            errors,
        ))
    };
    if !stream {
        // Every container answers once (two samples a second apart on the server).
        loop {
            let pending = board_lock(&board)
                .values()
                .any(|e| !e.done && e.row.is_none() && e.error.is_none());
            if !pending {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (out, errors) = render(&board)?;
        if !errors.is_empty() && named {
            for e in &errors {
                eprintln!("{e}");
            }
            return Ok(1);
        }
        output::print_out(&out);
        return Ok(0);
    }
    let mut ticks = 0u32;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        ticks += 1;
        if !named && ticks.is_multiple_of(2) {
            // Pick up containers started meanwhile and drop those gone.
            if let Ok(ids) = running_ids(docker, a.all).await {
                let known: Vec<String> = board_lock(&board).keys().cloned().collect();
                for id in ids.iter().filter(|i| !known.contains(i)) {
                    collect(docker, &board, id.clone(), stream, trunc);
                }
                board_lock(&board).retain(|k, e| ids.contains(k) || !e.done);
            }
        }
        let (out, errors) = render(&board)?;
        if named && !errors.is_empty() && board_lock(&board).values().all(|e| e.done) {
            for e in &errors {
                eprintln!("{e}");
            }
            return Ok(1);
        }
        output::print_out(&format!("\x1b[2J\x1b[H{out}"));
    }
}

// ---------- top ----------

#[derive(Args, Debug)]
pub struct TopArgs {
    pub container: String,
    /// Options passed to ps
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ps OPTIONS"
    )]
    pub ps_args: Vec<String>,
}

pub async fn cmd_top(docker: &Docker, a: TopArgs) -> Result<i32> {
    let opts = qp::TopOptions {
        ps_args: if a.ps_args.is_empty() {
            String::new()
        } else {
            a.ps_args.join(" ")
        },
    };
    let opts = (!a.ps_args.is_empty()).then_some(opts);
    let top = docker
        .top_processes(&a.container, opts)
        .await
        .map_err(anyhow_api)?;
    let mut text = top.titles.unwrap_or_default().join("\t");
    text.push('\n');
    for p in top.processes.unwrap_or_default() {
        text.push_str(&p.join("\t"));
        text.push('\n');
    }
    output::print_out(&output::tabwrite_with(&text, 20, 3));
    Ok(0)
}

// ---------- pause / unpause ----------

#[derive(Args, Debug)]
pub struct PauseArgs {
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

async fn each(
    names: &[String],
    op: impl Fn(String) -> futures_util::future::BoxFuture<'static, Result<(), bollard::errors::Error>>,
) -> i32 {
    let results = futures_util::future::join_all(names.iter().map(|n| op(n.clone()))).await;
    let mut failed = false;
    for (n, r) in names.iter().zip(results) {
        match r {
            Ok(()) => println!("{n}"),
            Err(e) => {
                eprintln!("{}", api_error_message(&e));
                failed = true;
            }
        }
    }
    i32::from(failed)
}

pub async fn cmd_pause(docker: &Docker, a: PauseArgs) -> Result<i32> {
    Ok(each(&a.containers, |n| {
        let d = docker.clone();
        Box::pin(async move { d.pause_container(&n).await })
    })
    .await)
}

pub async fn cmd_unpause(docker: &Docker, a: PauseArgs) -> Result<i32> {
    Ok(each(&a.containers, |n| {
        let d = docker.clone();
        Box::pin(async move { d.unpause_container(&n).await })
    })
    .await)
}

// ---------- update ----------

#[derive(Args, Debug, Default)]
pub struct UpdateArgs {
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares")]
    pub cpu_shares: Option<i64>,
    /// Number of CPUs
    #[arg(long)]
    pub cpus: Option<String>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Memory limit
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Restart policy to apply when a container exits
    #[arg(long)]
    pub restart: Option<String>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// The request body for the flags given; an error when none was.
pub fn update_body(a: &UpdateArgs) -> Result<ContainerUpdateBody> {
    let mem = |s: &Option<String>| s.as_deref().map(ram_in_bytes).transpose();
    let body = ContainerUpdateBody {
        blkio_weight: a.blkio_weight,
        cpu_period: a.cpu_period,
        cpu_quota: a.cpu_quota,
        cpu_shares: a.cpu_shares,
        nano_cpus: a.cpus.as_deref().map(parse_cpus).transpose()?,
        cpuset_cpus: a.cpuset_cpus.clone(),
        cpuset_mems: a.cpuset_mems.clone(),
        memory: mem(&a.memory)?,
        memory_reservation: mem(&a.memory_reservation)?,
        memory_swap: match a.memory_swap.as_deref() {
            Some("-1") => Some(-1),
            other => other.map(ram_in_bytes).transpose()?,
        },
        pids_limit: a.pids_limit,
        restart_policy: a.restart.as_deref().map(parse_restart).transpose()?,
        ..Default::default()
    };
    if body == ContainerUpdateBody::default() {
        return Err(status(
            1,
            "you must provide one or more flags when using this command",
        ));
    }
    Ok(body)
}

pub async fn cmd_update(docker: &Docker, a: UpdateArgs) -> Result<i32> {
    let body = update_body(&a)?;
    Ok(each(&a.containers, |n| {
        let (d, body) = (docker.clone(), body.clone());
        Box::pin(async move { d.update_container(&n, body).await })
    })
    .await)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard_stubs::models::*;
    use std::collections::HashMap;

    fn sample() -> ContainerStatsResponse {
        ContainerStatsResponse {
            id: Some("0123456789abcdef0123".into()),
            name: Some("/web".into()),
            cpu_stats: Some(ContainerCpuStats {
                cpu_usage: Some(ContainerCpuUsage {
                    total_usage: Some(2_000_000_000),
                    ..Default::default()
                }),
                system_cpu_usage: Some(20_000_000_000),
                online_cpus: Some(2),
                ..Default::default()
            }),
            precpu_stats: Some(ContainerCpuStats {
                cpu_usage: Some(ContainerCpuUsage {
                    total_usage: Some(1_500_000_000),
                    ..Default::default()
                }),
                system_cpu_usage: Some(18_000_000_000),
                ..Default::default()
            }),
            memory_stats: Some(ContainerMemoryStats {
                usage: Some(10 * 1024 * 1024),
                limit: Some(64 * 1024 * 1024),
                stats: Some(HashMap::from([(
                    "total_inactive_file".to_string(),
                    2 * 1024 * 1024,
                )])),
                ..Default::default()
            }),
            networks: Some(HashMap::from([(
                "eth0".to_string(),
                ContainerNetworkStats {
                    rx_bytes: Some(1500),
                    tx_bytes: Some(250),
                    ..Default::default()
                },
            )])),
            blkio_stats: Some(ContainerBlkioStats {
                io_service_bytes_recursive: Some(vec![
                    ContainerBlkioStatEntry {
                        op: Some("Read".into()),
                        value: Some(4096),
                        ..Default::default()
                    },
                    ContainerBlkioStatEntry {
                        op: Some("Total".into()),
                        value: Some(4096),
                        ..Default::default()
                    },
                ]),
                ..Default::default()
            }),
            pids_stats: Some(ContainerPidsStats {
                current: Some(3),
                limit: None,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn docker_formulas() {
        let s = sample();
        // 0.5 s of 2 s host time on 2 CPUs.
        assert!((cpu_percent(&s) - 50.0).abs() < 1e-9);
        let r = stats_row("web", &s, true);
        assert_eq!(r["ID"], "0123456789ab");
        assert_eq!(r["Name"], "web");
        assert_eq!(r["CPUPerc"], "50.00%");
        assert_eq!(r["MemUsage"], "8MiB / 64MiB");
        assert_eq!(r["MemPerc"], "12.50%");
        assert_eq!(r["NetIO"], "1.5kB / 250B");
        assert_eq!(r["BlockIO"], "4.1kB / 0B");
        assert_eq!(r["PIDs"], "3");
    }

    #[test]
    fn update_needs_a_flag() {
        let a = UpdateArgs {
            containers: vec!["c".into()],
            ..Default::default()
        };
        assert!(update_body(&a).is_err());
        let a = UpdateArgs {
            memory: Some("64m".into()),
            memory_swap: Some("-1".into()),
            containers: vec!["c".into()],
            ..Default::default()
        };
        let b = update_body(&a).unwrap();
        assert_eq!((b.memory, b.memory_swap), (Some(64 << 20), Some(-1)));
    }
}

//! Samples of a container's resource usage, shaped as dockerd's stats JSON for Linux: cgroup
//! counters (v1 or v2), the host's CPU time from /proc/stat, and the interfaces of the
//! container's network namespace.

use super::cgroup::{flat_keyed, keyed, Cgroup};
use bollard_stubs::models::*;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;
use std::collections::HashMap;

/// USER_HZ: the unit of /proc/stat and cpuacct.stat (100 on every Linux ABI dockerd supports).
const CLOCK_TICKS: u64 = 100;
const NS_PER_TICK: u64 = 1_000_000_000 / CLOCK_TICKS;

/// One reading of the counters; `read` is when it was taken.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    pub read: Option<DateTime<Utc>>,
    pub cpu: ContainerCpuStats,
    pub memory: ContainerMemoryStats,
    pub blkio: ContainerBlkioStats,
    pub pids: ContainerPidsStats,
    pub networks: Option<HashMap<String, ContainerNetworkStats>>,
}

/// Where to read from: the cgroup and, unless the container shares the host's network
/// namespace (dockerd reports no interfaces then), its init's pid for /proc/<pid>/net/dev.
pub struct Source {
    pub cgroup: Cgroup,
    pub net_pid: Option<i64>,
}

impl Sample {
    pub fn take(src: &Source) -> Sample {
        let cg = &src.cgroup;
        let host = HostCpu::read();
        let mut cpu = if cg.is_v2() { cpu_v2(cg) } else { cpu_v1(cg) };
        cpu.system_cpu_usage = Some(host.total_ns);
        cpu.online_cpus = Some(host.online);
        Sample {
            read: Some(Utc::now()),
            cpu,
            memory: if cg.is_v2() {
                memory_v2(cg)
            } else {
                memory_v1(cg)
            },
            blkio: if cg.is_v2() {
                blkio_v2(cg)
            } else {
                blkio_v1(cg)
            },
            pids: ContainerPidsStats {
                current: cg.read_u64("pids", "pids.current"),
                limit: Some(cg.read_u64("pids", "pids.max").unwrap_or(0)),
            },
            networks: src.net_pid.map(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/net/dev"))
                    .map(|t| parse_net_dev(&t))
                    .unwrap_or_default()
            }),
        }
    }
}

/// dockerd's frame: `cur` with `pre` as precpu (zeroed when there is none, as in the first
/// frame of a stream or a one-shot read).
pub fn frame(name: &str, id: &str, cur: &Sample, pre: Option<&Sample>) -> Value {
    let zero = Sample::default();
    let pre = pre.unwrap_or(&zero);
    let resp = ContainerStatsResponse {
        name: Some(format!("/{name}")),
        id: Some(id.to_string()),
        pids_stats: Some(cur.pids.clone()),
        blkio_stats: Some(cur.blkio.clone()),
        num_procs: Some(0),
        storage_stats: Some(ContainerStorageStats::default()),
        cpu_stats: Some(with_zero_usage(&cur.cpu)),
        precpu_stats: Some(with_zero_usage(&pre.cpu)),
        memory_stats: Some(cur.memory.clone()),
        networks: cur.networks.clone().filter(|n| !n.is_empty()),
        ..Default::default()
    };
    let mut v = serde_json::to_value(resp).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("read".into(), Value::String(go_time(cur.read)));
        m.insert("preread".into(), Value::String(go_time(pre.read)));
    }
    v
}

/// The frame dockerd sends for a container that is not running: only name and id set.
pub fn zero_frame(name: &str, id: &str) -> Value {
    frame(name, id, &Sample::default(), None)
}

fn with_zero_usage(c: &ContainerCpuStats) -> ContainerCpuStats {
    let mut c = c.clone();
    let u = c.cpu_usage.get_or_insert_with(Default::default);
    u.total_usage.get_or_insert(0);
    u.usage_in_kernelmode.get_or_insert(0);
    u.usage_in_usermode.get_or_insert(0);
    let t = c.throttling_data.get_or_insert_with(Default::default);
    t.periods.get_or_insert(0);
    t.throttled_periods.get_or_insert(0);
    t.throttled_time.get_or_insert(0);
    c
}

/// Go's RFC3339Nano: trailing zeros of the fraction dropped; the zero time for "never".
fn go_time(t: Option<DateTime<Utc>>) -> String {
    let Some(t) = t else {
        return crate::container::inspect::ZERO_TIME.into();
    };
    let s = t.to_rfc3339_opts(SecondsFormat::Nanos, true);
    match s.split_once('.') {
        Some((secs, frac)) => {
            let frac = frac.trim_end_matches('Z').trim_end_matches('0');
            if frac.is_empty() {
                format!("{secs}Z")
            } else {
                format!("{secs}.{frac}Z")
            }
        }
        None => s,
    }
}

struct HostCpu {
    total_ns: u64,
    online: u32,
}

impl HostCpu {
    fn read() -> HostCpu {
        let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        parse_proc_stat(&text)
    }
}

/// The first `cpu` line summed as dockerd does (user..steal, guest time is already in user),
/// and the number of `cpuN` lines.
fn parse_proc_stat(text: &str) -> HostCpu {
    let mut total = 0;
    let mut online = 0;
    for line in text.lines() {
        let mut f = line.split_whitespace();
        match f.next() {
            Some("cpu") => {
                total = f.take(8).filter_map(|x| x.parse::<u64>().ok()).sum::<u64>() * NS_PER_TICK
            }
            Some(c) if c.starts_with("cpu") => online += 1,
            _ => {}
        }
    }
    HostCpu {
        total_ns: total,
        online,
    }
}

pub fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

fn cpu_v1(cg: &Cgroup) -> ContainerCpuStats {
    let acct = cg.read("cpuacct", "cpuacct.stat").unwrap_or_default();
    let percpu: Vec<u64> = cg
        .read("cpuacct", "cpuacct.usage_percpu")
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    let stat = cg.read("cpu", "cpu.stat").unwrap_or_default();
    ContainerCpuStats {
        cpu_usage: Some(ContainerCpuUsage {
            total_usage: cg.read_u64("cpuacct", "cpuacct.usage"),
            percpu_usage: Some(percpu).filter(|p| !p.is_empty()),
            usage_in_kernelmode: keyed(&acct, "system").map(|t| t * NS_PER_TICK),
            usage_in_usermode: keyed(&acct, "user").map(|t| t * NS_PER_TICK),
        }),
        throttling_data: Some(ContainerThrottlingData {
            periods: keyed(&stat, "nr_periods"),
            throttled_periods: keyed(&stat, "nr_throttled"),
            throttled_time: keyed(&stat, "throttled_time"),
        }),
        ..Default::default()
    }
}

fn cpu_v2(cg: &Cgroup) -> ContainerCpuStats {
    let stat = cg.read("cpu", "cpu.stat").unwrap_or_default();
    let us = |k: &str| keyed(&stat, k).map(|v| v * 1000);
    ContainerCpuStats {
        cpu_usage: Some(ContainerCpuUsage {
            total_usage: us("usage_usec"),
            percpu_usage: None,
            usage_in_kernelmode: us("system_usec"),
            usage_in_usermode: us("user_usec"),
        }),
        throttling_data: Some(ContainerThrottlingData {
            periods: keyed(&stat, "nr_periods"),
            throttled_periods: keyed(&stat, "nr_throttled"),
            throttled_time: us("throttled_usec"),
        }),
        ..Default::default()
    }
}

/// An unlimited cgroup reports a huge number (v1) or `max` (v2); dockerd shows the host's
/// memory instead.
fn limit_or_host(limit: Option<u64>) -> u64 {
    let host = host_memory();
    match limit {
        Some(l) if host == 0 || l < host => l,
        _ => host,
    }
}

fn memory_v1(cg: &Cgroup) -> ContainerMemoryStats {
    let stat = cg.read("memory", "memory.stat").unwrap_or_default();
    ContainerMemoryStats {
        usage: cg.read_u64("memory", "memory.usage_in_bytes"),
        max_usage: cg.read_u64("memory", "memory.max_usage_in_bytes"),
        failcnt: cg.read_u64("memory", "memory.failcnt"),
        limit: Some(limit_or_host(
            cg.read_u64("memory", "memory.limit_in_bytes"),
        )),
        stats: Some(flat_keyed(&stat).into_iter().collect()),
        ..Default::default()
    }
}

fn memory_v2(cg: &Cgroup) -> ContainerMemoryStats {
    let stat = cg.read("memory", "memory.stat").unwrap_or_default();
    ContainerMemoryStats {
        usage: cg.read_u64("memory", "memory.current"),
        limit: Some(limit_or_host(cg.read_u64("memory", "memory.max"))),
        stats: Some(flat_keyed(&stat).into_iter().collect()),
        ..Default::default()
    }
}

/// v1 `blkio.*_recursive`: `maj:min Op value` lines (the final `Total n` line has no device).
fn parse_blkio_v1(text: &str) -> Vec<ContainerBlkioStatEntry> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (dev, op, value) = (f.next()?, f.next()?, f.next()?);
            let (maj, min) = dev.split_once(':')?;
            Some(ContainerBlkioStatEntry {
                major: maj.parse().ok(),
                minor: min.parse().ok(),
                op: Some(op.to_string()),
                value: value.parse().ok(),
            })
        })
        .collect()
}

fn blkio_v1(cg: &Cgroup) -> ContainerBlkioStats {
    // The CFQ files are empty under other I/O schedulers; the throttle ones always count.
    let read = |name: &str| {
        let cfq = parse_blkio_v1(
            &cg.read("blkio", &format!("blkio.{name}"))
                .unwrap_or_default(),
        );
        if !cfq.is_empty() {
            return cfq;
        }
        parse_blkio_v1(
            &cg.read("blkio", &format!("blkio.throttle.{name}"))
                .unwrap_or_default(),
        )
    };
    ContainerBlkioStats {
        io_service_bytes_recursive: Some(read("io_service_bytes_recursive")),
        io_serviced_recursive: Some(read("io_serviced_recursive")),
        ..Default::default()
    }
}

/// v2 `io.stat` (`maj:min rbytes=.. wbytes=.. rios=.. …`) as dockerd maps it: read and write
/// bytes per device.
fn parse_io_stat(text: &str) -> Vec<ContainerBlkioStatEntry> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let Some((maj, min)) = f.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let kv: HashMap<&str, u64> = f
            .filter_map(|x| {
                let (k, v) = x.split_once('=')?;
                Some((k, v.parse().ok()?))
            })
            .collect();
        for (key, op) in [("rbytes", "read"), ("wbytes", "write")] {
            out.push(ContainerBlkioStatEntry {
                major: maj.parse().ok(),
                minor: min.parse().ok(),
                op: Some(op.into()),
                value: Some(kv.get(key).copied().unwrap_or(0)),
            });
        }
    }
    out
}

fn blkio_v2(cg: &Cgroup) -> ContainerBlkioStats {
    ContainerBlkioStats {
        io_service_bytes_recursive: Some(parse_io_stat(
            &cg.read("io", "io.stat").unwrap_or_default(),
        )),
        ..Default::default()
    }
}

/// /proc/<pid>/net/dev of the container's namespace, without `lo` (dockerd reports only the
/// endpoints' interfaces).
fn parse_net_dev(text: &str) -> HashMap<String, ContainerNetworkStats> {
    let mut out = HashMap::new();
    for line in text.lines().skip(2) {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name == "lo" {
            continue;
        }
        let n: Vec<u64> = rest
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if n.len() < 12 {
            continue;
        }
        out.insert(
            name.to_string(),
            ContainerNetworkStats {
                rx_bytes: Some(n[0]),
                rx_packets: Some(n[1]),
                rx_errors: Some(n[2]),
                rx_dropped: Some(n[3]),
                tx_bytes: Some(n[8]),
                tx_packets: Some(n[9]),
                tx_errors: Some(n[10]),
                tx_dropped: Some(n[11]),
                ..Default::default()
            },
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_in_ns() {
        let h = parse_proc_stat(
            "cpu  100 0 50 800 10 0 5 5 7 0\ncpu0 50 0 25 400 5 0 2 3 0 0\ncpu1 50 0 25 400 5 0 3 2 0 0\nintr 1\n",
        );
        assert_eq!(h.total_ns, 970 * NS_PER_TICK);
        assert_eq!(h.online, 2);
    }

    #[test]
    fn blkio_v1_lines() {
        let e = parse_blkio_v1("8:0 Read 4096\n8:0 Write 512\n8:0 Total 4608\nTotal 4608\n");
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].op.as_deref(), Some("Read"));
        assert_eq!(
            (e[1].major, e[1].minor, e[1].value),
            (Some(8), Some(0), Some(512))
        );
    }

    #[test]
    fn io_stat_v2() {
        let e = parse_io_stat("259:0 rbytes=1024 wbytes=2048 rios=1 wios=2 dbytes=0 dios=0\n");
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].op.as_deref(), Some("read"));
        assert_eq!(e[1].value, Some(2048));
    }

    #[test]
    fn net_dev_skips_lo() {
        let t = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0\n  eth0:    2000      20    1    2    0     0          0         0     3000      30    3    4    0     0       0          0\n";
        let m = parse_net_dev(t);
        assert_eq!(m.len(), 1);
        let e = &m["eth0"];
        assert_eq!(
            (e.rx_bytes, e.tx_bytes, e.tx_dropped),
            (Some(2000), Some(3000), Some(4))
        );
    }

    #[test]
    fn go_time_format() {
        assert_eq!(go_time(None), "0001-01-01T00:00:00Z");
        let t = DateTime::from_timestamp(1_700_000_000, 120_000_000).unwrap();
        assert_eq!(go_time(Some(t)), "2023-11-14T22:13:20.12Z");
    }

    #[test]
    fn zero_frame_shape() {
        let v = zero_frame("web", "abc");
        assert_eq!(v["name"], "/web");
        assert_eq!(v["read"], "0001-01-01T00:00:00Z");
        assert_eq!(v["cpu_stats"]["cpu_usage"]["total_usage"], 0);
        assert_eq!(v["precpu_stats"]["throttling_data"]["periods"], 0);
    }
}

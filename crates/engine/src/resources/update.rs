//! `docker update`: validate a ContainerUpdate body against the container's HostConfig with
//! dockerd's rules and messages, merge it (absent or zero fields keep their values), and
//! write the merged limits into a running container's cgroup.

use super::cgroup::Cgroup;
use bollard_stubs::models::{ContainerUpdateBody, HostConfig, RestartPolicyNameEnum};
use std::io;

const MIN_MEMORY: i64 = 6 * 1024 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UpdateError {
    /// 400: the request itself is invalid.
    #[error("{0}")]
    Invalid(String),
    /// 409: valid alone, but conflicts with what the container already has.
    #[error("{0}")]
    Conflict(String),
}

fn invalid(m: &str) -> UpdateError {
    UpdateError::Invalid(m.to_string())
}

fn conflict(m: &str) -> UpdateError {
    UpdateError::Conflict(m.to_string())
}

/// dockerd's verifyPlatformContainerResources for an update, on the request alone.
fn verify(u: &ContainerUpdateBody, ncpu: usize) -> Result<(), UpdateError> {
    let memory = u.memory.unwrap_or(0);
    let swap = u.memory_swap.unwrap_or(0);
    let reservation = u.memory_reservation.unwrap_or(0);
    if memory != 0 && memory < MIN_MEMORY {
        return Err(invalid("Minimum memory limit allowed is 6MB"));
    }
    if memory > 0 && swap > 0 && swap < memory {
        return Err(invalid(
            "Minimum memoryswap limit should be larger than memory limit, see usage",
        ));
    }
    if swap < -1 {
        return Err(invalid(
            "invalid value for memory swap: must be -1 (unlimited) or a positive number",
        ));
    }
    if reservation != 0 && reservation < MIN_MEMORY {
        return Err(invalid("Minimum memory reservation allowed is 6MB"));
    }
    if memory > 0 && reservation > 0 && memory < reservation {
        return Err(invalid(
            "Minimum memory limit can not be less than memory reservation limit, see usage",
        ));
    }
    let nano = u.nano_cpus.unwrap_or(0);
    if nano < 0 || nano > ncpu as i64 * 1_000_000_000 {
        return Err(UpdateError::Invalid(format!(
            "Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available"
        )));
    }
    if nano > 0 && (u.cpu_period.unwrap_or(0) > 0 || u.cpu_quota.unwrap_or(0) > 0) {
        return Err(invalid(
            "Conflicting options: Nano CPUs and CPU Period cannot both be set",
        ));
    }
    let period = u.cpu_period.unwrap_or(0);
    if period != 0 && !(1000..=1_000_000).contains(&period) {
        return Err(invalid(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
        ));
    }
    let quota = u.cpu_quota.unwrap_or(0);
    if quota > 0 && quota < 1000 {
        return Err(invalid(
            "CPU cfs quota can not be less than 1ms (i.e. 1000)",
        ));
    }
    if u.cpu_shares.unwrap_or(0) < 0 {
        return Err(invalid("invalid CPU shares: must not be negative"));
    }
    let weight = u.blkio_weight.unwrap_or(0);
    if weight > 0 && !(10..=1000).contains(&weight) {
        return Err(invalid("Range of blkio weight is from 10 to 1000"));
    }
    for (set, what) in [(&u.cpuset_cpus, "cpus"), (&u.cpuset_mems, "mems")] {
        if let Some(s) = set.as_deref().filter(|s| !s.is_empty()) {
            if !valid_cpuset(s) {
                return Err(UpdateError::Invalid(format!(
                    "Invalid value {s} for cpuset {what}"
                )));
            }
        }
    }
    Ok(())
}

/// `0-3,5`: comma-separated numbers and ascending ranges.
fn valid_cpuset(s: &str) -> bool {
    s.split(',').all(|part| match part.split_once('-') {
        Some((a, b)) => matches!((a.parse::<u32>(), b.parse::<u32>()), (Ok(a), Ok(b)) if a <= b),
        None => part.parse::<u32>().is_ok(),
    })
}

/// The container's memory+swap limit as applied: unset with a memory limit means twice it.
pub fn effective_swap(hc: &HostConfig) -> i64 {
    match (hc.memory.unwrap_or(0), hc.memory_swap.unwrap_or(0)) {
        (m, 0) if m > 0 => m * 2,
        (_, s) => s,
    }
}

/// The HostConfig after the update, or why it cannot be done; `hc` is not touched.
pub fn merge(
    hc: &HostConfig,
    u: &ContainerUpdateBody,
    ncpu: usize,
) -> Result<HostConfig, UpdateError> {
    verify(u, ncpu)?;
    let nz = |v: Option<i64>| v.filter(|v| *v != 0);
    let cur_nano = hc.nano_cpus.unwrap_or(0);
    // NanoCpus is a shorthand for period+quota: the two ways cannot be mixed across updates.
    if nz(u.nano_cpus).is_some() && hc.cpu_period.unwrap_or(0) > 0 {
        return Err(conflict(
            "Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set",
        ));
    }
    if nz(u.nano_cpus).is_some() && hc.cpu_quota.unwrap_or(0) > 0 {
        return Err(conflict(
            "Conflicting options: Nano CPUs cannot be updated as CPU Quota has already been set",
        ));
    }
    if u.cpu_period.unwrap_or(0) > 0 && cur_nano > 0 {
        return Err(conflict(
            "Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set",
        ));
    }
    if u.cpu_quota.unwrap_or(0) > 0 && cur_nano > 0 {
        return Err(conflict(
            "Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set",
        ));
    }
    let mut out = hc.clone();
    if let Some(w) = u.blkio_weight.filter(|w| *w != 0) {
        out.blkio_weight = Some(w);
    }
    if let Some(v) = nz(u.cpu_shares) {
        out.cpu_shares = Some(v);
    }
    if let Some(v) = nz(u.nano_cpus) {
        out.nano_cpus = Some(v);
    }
    if let Some(v) = nz(u.cpu_period) {
        out.cpu_period = Some(v);
    }
    if let Some(v) = nz(u.cpu_quota) {
        out.cpu_quota = Some(v);
    }
    if let Some(v) = u.cpuset_cpus.clone().filter(|s| !s.is_empty()) {
        out.cpuset_cpus = Some(v);
    }
    if let Some(v) = u.cpuset_mems.clone().filter(|s| !s.is_empty()) {
        out.cpuset_mems = Some(v);
    }
    if let Some(m) = nz(u.memory) {
        // dockerd refuses to raise memory past the memory+swap limit in place: the swap
        // limit must come along.
        if m > effective_swap(hc) && nz(u.memory_swap).is_none() {
            return Err(conflict("Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time"));
        }
        out.memory = Some(m);
    }
    if let Some(s) = nz(u.memory_swap) {
        out.memory_swap = Some(s);
    } else if nz(u.memory).is_some() {
        out.memory_swap = Some(effective_swap(hc));
    }
    if out.memory_swap.unwrap_or(0) > 0 && out.memory_swap < out.memory {
        return Err(invalid(
            "Minimum memoryswap limit should be larger than memory limit, see usage",
        ));
    }
    if let Some(v) = nz(u.memory_reservation) {
        out.memory_reservation = Some(v);
    }
    if let Some(p) = u.pids_limit {
        // 0 and -1 both mean unlimited; dockerd stores that as 0.
        out.pids_limit = Some(p.max(0));
    }
    if let Some(policy) = &u.restart_policy {
        let name = policy.name.unwrap_or(RestartPolicyNameEnum::EMPTY);
        if name != RestartPolicyNameEnum::EMPTY {
            let retries = policy.maximum_retry_count.unwrap_or(0);
            if retries < 0 {
                return Err(invalid(
                    "invalid restart policy: maximum retry count cannot be negative",
                ));
            }
            if retries > 0 && name != RestartPolicyNameEnum::ON_FAILURE {
                return Err(invalid(
                    "invalid restart policy: maximum retry count can only be used with 'on-failure'",
                ));
            }
            if hc.auto_remove.unwrap_or(false) && name != RestartPolicyNameEnum::NO {
                return Err(conflict(
                    "Restart policy cannot be updated because AutoRemove is enabled for the container",
                ));
            }
            out.restart_policy = Some(policy.clone());
        }
    }
    Ok(out)
}

/// Writes `hc`'s limits into the live cgroup. `old` is what is applied now, so memory and
/// swap are written in the order the kernel accepts (memory ≤ memory+swap at every step).
pub fn apply(cg: &Cgroup, old: &HostConfig, hc: &HostConfig) -> io::Result<()> {
    if cg.is_v2() {
        apply_v2(cg, hc)
    } else {
        apply_v1(cg, old, hc)
    }
}

fn limit_str(v: i64) -> String {
    if v > 0 {
        v.to_string()
    } else {
        "-1".into()
    }
}

fn apply_v1(cg: &Cgroup, old: &HostConfig, hc: &HostConfig) -> io::Result<()> {
    let mem = hc.memory.unwrap_or(0);
    let swap = effective_swap(hc);
    if mem != old.memory.unwrap_or(0) || swap != effective_swap(old) {
        let has_swap = cg.file("memory", "memory.memsw.limit_in_bytes").exists();
        let write_mem = || cg.write("memory", "memory.limit_in_bytes", &limit_str(mem));
        let write_swap = || {
            if has_swap {
                cg.write("memory", "memory.memsw.limit_in_bytes", &limit_str(swap))
            } else {
                Ok(())
            }
        };
        // The kernel keeps memory <= memory+swap at every step: raise swap first, lower
        // memory first; the other order if the first one is refused.
        let old_mem = old.memory.unwrap_or(0);
        let raising = mem <= 0 || (old_mem > 0 && mem > old_mem);
        let both = |swap_first: bool| {
            if swap_first {
                write_swap().and_then(|_| write_mem())
            } else {
                write_mem().and_then(|_| write_swap())
            }
        };
        if both(raising).is_err() {
            both(!raising)?;
        }
    }
    if let Some(r) = hc.memory_reservation.filter(|r| *r > 0) {
        cg.write("memory", "memory.soft_limit_in_bytes", &r.to_string())?;
    }
    if let Some(s) = hc.cpu_shares.filter(|s| *s > 0) {
        cg.write("cpu", "cpu.shares", &s.to_string())?;
    }
    let (period, quota) = cfs(hc);
    if let Some(p) = period {
        cg.write("cpu", "cpu.cfs_period_us", &p.to_string())?;
    }
    if let Some(q) = quota {
        cg.write("cpu", "cpu.cfs_quota_us", &q.to_string())?;
    }
    if let Some(c) = hc.cpuset_cpus.as_deref().filter(|c| !c.is_empty()) {
        cg.write("cpuset", "cpuset.cpus", c)?;
    }
    if let Some(m) = hc.cpuset_mems.as_deref().filter(|m| !m.is_empty()) {
        cg.write("cpuset", "cpuset.mems", m)?;
    }
    if hc.pids_limit != old.pids_limit {
        cg.write("pids", "pids.max", &pids_max(hc))?;
    }
    if let Some(w) = hc.blkio_weight.filter(|w| *w > 0) {
        if cg.file("blkio", "blkio.weight").exists() {
            cg.write("blkio", "blkio.weight", &w.to_string())?;
        }
    }
    Ok(())
}

fn apply_v2(cg: &Cgroup, hc: &HostConfig) -> io::Result<()> {
    let mem = hc.memory.unwrap_or(0);
    let swap = effective_swap(hc);
    cg.write(
        "",
        "memory.max",
        &if mem > 0 {
            mem.to_string()
        } else {
            "max".into()
        },
    )?;
    if cg.file("", "memory.swap.max").exists() {
        let v = if swap > 0 && mem > 0 {
            (swap - mem).max(0).to_string()
        } else {
            "max".into()
        };
        cg.write("", "memory.swap.max", &v)?;
    }
    if let Some(r) = hc.memory_reservation.filter(|r| *r > 0) {
        cg.write("", "memory.low", &r.to_string())?;
    }
    if let Some(s) = hc.cpu_shares.filter(|s| *s > 0) {
        // runc's conversion of shares [2, 262144] to weight [1, 10000].
        let weight = 1 + ((s.clamp(2, 262_144) - 2) * 9999) / 262_142;
        cg.write("", "cpu.weight", &weight.to_string())?;
    }
    let (period, quota) = cfs(hc);
    if period.is_some() || quota.is_some() {
        let q = quota.filter(|q| *q > 0).map(|q| q.to_string());
        cg.write(
            "",
            "cpu.max",
            &format!(
                "{} {}",
                q.as_deref().unwrap_or("max"),
                period.unwrap_or(100_000)
            ),
        )?;
    }
    if let Some(c) = hc.cpuset_cpus.as_deref().filter(|c| !c.is_empty()) {
        cg.write("", "cpuset.cpus", c)?;
    }
    if let Some(m) = hc.cpuset_mems.as_deref().filter(|m| !m.is_empty()) {
        cg.write("", "cpuset.mems", m)?;
    }
    cg.write("", "pids.max", &pids_max(hc))?;
    if let Some(w) = hc.blkio_weight.filter(|w| *w > 0) {
        if cg.file("", "io.weight").exists() {
            cg.write("", "io.weight", &format!("default {w}"))?;
        }
    }
    Ok(())
}

fn pids_max(hc: &HostConfig) -> String {
    match hc.pids_limit {
        Some(p) if p > 0 => p.to_string(),
        _ => "max".into(),
    }
}

/// CFS period and quota in µs: from NanoCpus over a 100 ms period, or as given.
fn cfs(hc: &HostConfig) -> (Option<i64>, Option<i64>) {
    match hc.nano_cpus.filter(|n| *n > 0) {
        Some(n) => (Some(100_000), Some(n * 100_000 / 1_000_000_000)),
        None => (
            hc.cpu_period.filter(|p| *p > 0),
            hc.cpu_quota.filter(|q| *q != 0),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard_stubs::models::RestartPolicy;

    const MB: i64 = 1024 * 1024;

    #[test]
    fn absent_fields_keep_their_values() {
        let hc = HostConfig {
            memory: Some(64 * MB),
            cpu_shares: Some(512),
            pids_limit: Some(50),
            ..Default::default()
        };
        let u = ContainerUpdateBody {
            pids_limit: Some(100),
            ..Default::default()
        };
        let out = merge(&hc, &u, 2).unwrap();
        assert_eq!(out.memory, Some(64 * MB));
        assert_eq!(out.cpu_shares, Some(512));
        assert_eq!(out.pids_limit, Some(100));
    }

    #[test]
    fn docker_messages() {
        let hc = HostConfig::default();
        let mem = |m, s| ContainerUpdateBody {
            memory: Some(m),
            memory_swap: Some(s),
            ..Default::default()
        };
        assert_eq!(
            merge(&hc, &mem(MB, 0), 2).unwrap_err().to_string(),
            "Minimum memory limit allowed is 6MB"
        );
        assert!(matches!(
            merge(&hc, &mem(100 * MB, 50 * MB), 2),
            Err(UpdateError::Invalid(_))
        ));
        assert!(matches!(
            merge(&hc, &mem(100 * MB, 0), 2),
            Err(UpdateError::Conflict(_))
        ));
        let ok = merge(&hc, &mem(100 * MB, 200 * MB), 2).unwrap();
        assert_eq!(
            (ok.memory, ok.memory_swap),
            (Some(100 * MB), Some(200 * MB))
        );
        // Lowering memory under the implied swap (2x) needs no swap.
        let hc = HostConfig {
            memory: Some(64 * MB),
            ..Default::default()
        };
        let ok = merge(&hc, &mem(32 * MB, 0), 2).unwrap();
        assert_eq!((ok.memory, ok.memory_swap), (Some(32 * MB), Some(128 * MB)));
        let cpus = ContainerUpdateBody {
            nano_cpus: Some(3_000_000_000),
            ..Default::default()
        };
        assert_eq!(
            merge(&hc, &cpus, 2).unwrap_err().to_string(),
            "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"
        );
    }

    #[test]
    fn restart_policy() {
        let hc = HostConfig {
            auto_remove: Some(true),
            ..Default::default()
        };
        let u = ContainerUpdateBody {
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::ALWAYS),
                maximum_retry_count: None,
            }),
            ..Default::default()
        };
        assert!(matches!(merge(&hc, &u, 2), Err(UpdateError::Conflict(_))));
        let out = merge(&HostConfig::default(), &u, 2).unwrap();
        assert_eq!(
            out.restart_policy.unwrap().name,
            Some(RestartPolicyNameEnum::ALWAYS)
        );
    }

    #[test]
    fn cpusets() {
        assert!(valid_cpuset("0-1,3"));
        assert!(!valid_cpuset("1-0"));
        assert!(!valid_cpuset("a"));
    }
}

//! `GET /info` and `GET /version`: the facts tools parse to decide what this engine can do.

use crate::Engine;
use bollard_stubs::models::*;
use std::collections::HashMap;

pub const ENGINE_VERSION: &str = env!("CARGO_PKG_VERSION");
/// The highest API version served; requests may name any version from MIN_API_VERSION up.
pub const API_VERSION: &str = "1.47";
pub const MIN_API_VERSION: &str = "1.24";

fn uname() -> (String, String) {
    match nix::sys::utsname::uname() {
        Ok(u) => (
            u.release().to_string_lossy().into_owned(),
            u.machine().to_string_lossy().into_owned(),
        ),
        Err(_) => (String::new(), String::new()),
    }
}

fn go_arch(machine: &str) -> &str {
    match machine {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn os_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("PRETTY_NAME=")
                    .map(|v| v.trim_matches('"').to_string())
            })
        })
        .unwrap_or_else(|| "Linux".into())
}

fn cgroup_version() -> &'static str {
    if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "2"
    } else {
        "1"
    }
}

fn mem_total() -> i64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("MemTotal:")
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
            })
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

impl Engine {
    pub fn version(&self) -> SystemVersion {
        let (kernel, machine) = uname();
        let arch = go_arch(&machine).to_string();
        let details = HashMap::from([
            ("ApiVersion".to_string(), serde_json::json!(API_VERSION)),
            (
                "MinAPIVersion".to_string(),
                serde_json::json!(MIN_API_VERSION),
            ),
            ("Os".to_string(), serde_json::json!("linux")),
            ("Arch".to_string(), serde_json::json!(arch)),
            ("KernelVersion".to_string(), serde_json::json!(kernel)),
            ("GitCommit".to_string(), serde_json::json!("")),
        ]);
        SystemVersion {
            platform: Some(SystemVersionPlatform {
                name: "Berth Engine".into(),
            }),
            components: Some(vec![SystemVersionComponents {
                name: "Engine".into(),
                version: ENGINE_VERSION.into(),
                details: serde_json::from_value(serde_json::json!(details)).ok(),
            }]),
            version: Some(ENGINE_VERSION.into()),
            api_version: Some(API_VERSION.into()),
            min_api_version: Some(MIN_API_VERSION.into()),
            git_commit: Some(String::new()),
            go_version: Some(String::new()),
            os: Some("linux".into()),
            arch: Some(arch),
            kernel_version: Some(kernel),
            experimental: Some(false),
            build_time: Some(String::new()),
        }
    }

    pub fn info(&self) -> SystemInfo {
        let (kernel, machine) = uname();
        let recs: Vec<_> = self.containers.all().iter().map(|h| h.snapshot()).collect();
        let running = recs.iter().filter(|r| r.state.is_running()).count() as i64;
        let images = self.images.list().map(|l| l.len()).unwrap_or(0) as i64;
        let hostname = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_default();
        SystemInfo {
            id: Some(self.engine_id.clone()),
            containers: Some(recs.len() as i64),
            containers_running: Some(running),
            containers_paused: Some(0),
            containers_stopped: Some(recs.len() as i64 - running),
            images: Some(images),
            driver: Some("overlayfs".into()),
            driver_status: Some(vec![vec!["driver-type".into(), "berth.layerstore".into()]]),
            docker_root_dir: Some(self.cfg.data_root.to_string_lossy().into_owned()),
            memory_limit: Some(true),
            swap_limit: Some(true),
            cpu_cfs_period: Some(true),
            cpu_cfs_quota: Some(true),
            cpu_shares: Some(true),
            cpu_set: Some(true),
            pids_limit: Some(true),
            oom_kill_disable: Some(false),
            ipv4_forwarding: Some(true),
            debug: Some(false),
            nfd: Some(
                std::fs::read_dir("/proc/self/fd")
                    .map(|d| d.count() as i64)
                    .unwrap_or(0),
            ),
            n_goroutines: Some(0),
            system_time: Some(crate::container::inspect::rfc3339(&chrono::Utc::now())),
            logging_driver: Some("json-file".into()),
            cgroup_driver: Some(SystemInfoCgroupDriverEnum::CGROUPFS),
            cgroup_version: Some(if cgroup_version() == "2" {
                SystemInfoCgroupVersionEnum::_2
            } else {
                SystemInfoCgroupVersionEnum::_1
            }),
            n_events_listener: Some(0),
            kernel_version: Some(kernel),
            operating_system: Some(os_name()),
            os_version: Some(String::new()),
            os_type: Some("linux".into()),
            architecture: Some(machine),
            ncpu: Some(
                std::thread::available_parallelism()
                    .map(|n| n.get() as i64)
                    .unwrap_or(1),
            ),
            mem_total: Some(mem_total()),
            index_server_address: Some(berth_distribution::DOCKER_HUB_INDEX.into()),
            registry_config: Some(self.cfg.registry.service_config()),
            http_proxy: Some(String::new()),
            https_proxy: Some(String::new()),
            no_proxy: Some(String::new()),
            name: Some(hostname),
            labels: Some(Vec::new()),
            experimental_build: Some(false),
            server_version: Some(ENGINE_VERSION.into()),
            default_runtime: Some("berth".into()),
            live_restore_enabled: Some(true),
            isolation: Some(SystemInfoIsolationEnum::DEFAULT),
            init_binary: Some("docker-init".into()),
            security_options: Some(vec!["name=seccomp,profile=builtin".into()]),
            swarm: Some(SwarmInfo {
                local_node_state: Some(LocalNodeState::INACTIVE),
                node_id: Some(String::new()),
                node_addr: Some(String::new()),
                control_available: Some(false),
                error: Some(String::new()),
                ..Default::default()
            }),
            warnings: Some(Vec::new()),
            ..Default::default()
        }
    }
}

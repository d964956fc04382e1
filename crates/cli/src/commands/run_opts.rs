//! `run` / `create` flags and their translation into the API's create body, as the docker
//! CLI does it (`cli/command/container/opts.go`).

use anyhow::{anyhow, bail, Result};
use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, HostConfigLogConfig, NetworkingConfig,
    PortBinding, RestartPolicy, RestartPolicyNameEnum,
};
use clap::{ArgAction, Args};
use std::collections::HashMap;

#[derive(Args, Debug, Clone, Default)]
pub struct ContainerFlags {
    /// Run container in background and print container ID
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Automatically remove the container and its associated anonymous volumes when it exits
    #[arg(long)]
    pub rm: bool,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env", action = ArgAction::Append)]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file", action = ArgAction::Append)]
    pub env_file: Vec<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// Username or UID (format: "<name|uid>[:<group|gid>]")
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Set meta data on a container
    #[arg(short = 'l', long = "label", action = ArgAction::Append)]
    pub label: Vec<String>,
    /// Read in a line delimited file of labels
    #[arg(long = "label-file", action = ArgAction::Append)]
    pub label_file: Vec<String>,
    /// Container host name
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Container NIS domain name
    #[arg(long)]
    pub domainname: Option<String>,
    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Give extended privileges to this container
    #[arg(long)]
    pub privileged: bool,
    /// Add Linux capabilities
    #[arg(long = "cap-add", action = ArgAction::Append)]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long = "cap-drop", action = ArgAction::Append)]
    pub cap_drop: Vec<String>,
    /// Memory limit
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    /// Number of CPUs
    #[arg(long)]
    pub cpus: Option<String>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares")]
    pub cpu_shares: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Connect a container to a network
    #[arg(long = "network", alias = "net")]
    pub network: Option<String>,
    /// Add network-scoped alias for the container
    #[arg(long = "network-alias", alias = "net-alias", action = ArgAction::Append)]
    pub network_alias: Vec<String>,
    /// Restart policy to apply when a container exits
    #[arg(long)]
    pub restart: Option<String>,
    /// Signal to stop the container
    #[arg(long = "stop-signal")]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long = "stop-timeout", allow_hyphen_values = true)]
    pub stop_timeout: Option<i64>,
    /// Command to run to check health
    #[arg(long = "health-cmd")]
    pub health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h) (default 0s)
    #[arg(long = "health-interval", allow_hyphen_values = true)]
    pub health_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h) (default 0s)
    #[arg(long = "health-timeout", allow_hyphen_values = true)]
    pub health_timeout: Option<String>,
    /// Consecutive failures needed to report unhealthy
    #[arg(long = "health-retries", allow_hyphen_values = true)]
    pub health_retries: Option<i64>,
    /// Start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)
    #[arg(long = "health-start-period", allow_hyphen_values = true)]
    pub health_start_period: Option<String>,
    /// Time between running the check during the start period (ms|s|m|h) (default 0s)
    #[arg(long = "health-start-interval", allow_hyphen_values = true)]
    pub health_start_interval: Option<String>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long = "no-healthcheck")]
    pub no_healthcheck: bool,
    /// Logging driver for the container
    #[arg(long = "log-driver")]
    pub log_driver: Option<String>,
    /// Log driver options
    #[arg(long = "log-opt", action = ArgAction::Append)]
    pub log_opt: Vec<String>,
    /// Security Options
    #[arg(long = "security-opt", action = ArgAction::Append)]
    pub security_opt: Vec<String>,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    pub init: bool,
    /// Attach to STDIN, STDOUT or STDERR
    #[arg(short = 'a', long = "attach", action = ArgAction::Append)]
    pub attach: Vec<String>,
    /// Proxy received signals to the process
    #[arg(long = "sig-proxy", default_value = "true", action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub sig_proxy: bool,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    pub platform: Option<String>,
    /// Pull image before running ("always", "missing", "never")
    #[arg(long, default_value = "missing")]
    pub pull: String,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    /// Bind mount a volume
    #[arg(short = 'v', long = "volume", action = ArgAction::Append)]
    pub volume: Vec<String>,
    /// Publish a container's port(s) to the host
    #[arg(short = 'p', long = "publish", action = ArgAction::Append)]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Expose a port or a range of ports
    #[arg(long, action = ArgAction::Append)]
    pub expose: Vec<String>,
    /// Mount a tmpfs directory
    #[arg(long, action = ArgAction::Append)]
    pub tmpfs: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long = "add-host", action = ArgAction::Append)]
    pub add_host: Vec<String>,
    /// Set custom DNS servers
    #[arg(long, action = ArgAction::Append)]
    pub dns: Vec<String>,
    /// Set DNS options
    #[arg(long = "dns-option", action = ArgAction::Append)]
    pub dns_option: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long = "dns-search", action = ArgAction::Append)]
    pub dns_search: Vec<String>,
    /// Size of /dev/shm
    #[arg(long = "shm-size")]
    pub shm_size: Option<String>,
    /// Runtime to use for this container
    #[arg(long)]
    pub runtime: Option<String>,
    /// Add additional groups to join
    #[arg(long = "group-add", action = ArgAction::Append)]
    pub group_add: Vec<String>,
    /// Kernel parameters
    #[arg(long, action = ArgAction::Append)]
    pub sysctl: Vec<String>,
    /// PID namespace to use
    #[arg(long)]
    pub pid: Option<String>,
    /// IPC mode to use
    #[arg(long)]
    pub ipc: Option<String>,
    /// UTS namespace to use
    #[arg(long)]
    pub uts: Option<String>,
    /// Tune host's OOM preferences (-1000 to 1000)
    #[arg(long = "oom-score-adj", allow_hyphen_values = true)]
    pub oom_score_adj: Option<i64>,
    /// Disable OOM Killer
    #[arg(long = "oom-kill-disable")]
    pub oom_kill_disable: bool,
    /// Write the container ID to the file
    #[arg(long)]
    pub cidfile: Option<String>,
    /// Suppress the pull output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Print usage
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,
    /// IMAGE [COMMAND] [ARG...]
    #[arg(required = true, trailing_var_arg = true, num_args = 1.., value_name = "IMAGE")]
    pub args: Vec<String>,
}

/// What the create body builder needs besides the flags (terminal size, environment).
#[derive(Debug, Clone, Default)]
pub struct Ctx {
    pub console_size: Option<(u16, u16)>,
    pub lookup_env: Option<fn(&str) -> Option<String>>,
}

fn lookup(ctx: &Ctx, k: &str) -> Option<String> {
    match ctx.lookup_env {
        Some(f) => f(k),
        None => std::env::var(k).ok(),
    }
}

/// docker's `RAMInBytes`: "512m", "1.5g", "1024" (binary multipliers).
pub fn ram_in_bytes(s: &str) -> Result<i64> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let num_end = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(num_end);
    let n: f64 = num.parse().map_err(|_| anyhow!("invalid size: '{s}'"))?;
    let unit = unit.trim();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b').filter(|u| !u.is_empty()))
        .unwrap_or(unit);
    let mul: f64 = match unit {
        "" | "b" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => bail!("invalid suffix: '{unit}'"),
    };
    Ok((n * mul) as i64)
}

/// `--cpus 1.5` → NanoCpus.
pub fn parse_cpus(s: &str) -> Result<i64> {
    let f: f64 = s
        .parse()
        .map_err(|_| anyhow!("failed to parse {s} as a rational number"))?;
    let n = (f * 1e9).round();
    if n < 0.0 || n > i64::MAX as f64 {
        bail!("value is too precise");
    }
    Ok(n as i64)
}

pub fn parse_restart(s: &str) -> Result<RestartPolicy> {
    let (name, count) = match s.split_once(':') {
        Some((n, c)) => (n, Some(c)),
        None => (s, None),
    };
    let name_enum = match name {
        "" | "no" => RestartPolicyNameEnum::NO,
        "always" => RestartPolicyNameEnum::ALWAYS,
        "unless-stopped" => RestartPolicyNameEnum::UNLESS_STOPPED,
        "on-failure" => RestartPolicyNameEnum::ON_FAILURE,
        _ => bail!("invalid restart policy format: unknown policy '{name}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"),
    };
    let max = match count {
        Some(c) => {
            if name_enum != RestartPolicyNameEnum::ON_FAILURE {
                bail!("invalid restart policy format: maximum retry count can only be used with 'on-failure'");
            }
            Some(c.parse::<i64>().map_err(|_| {
                anyhow!("invalid restart policy format: maximum retry count must be an integer")
            })?)
        }
        None => None,
    };
    Ok(RestartPolicy {
        name: Some(name_enum),
        maximum_retry_count: max.or(Some(0)),
    })
}

pub(crate) fn read_kv_file(path: &str) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow!("open {path}: {}", crate::io_err_text(&e)))?;
    let mut out = Vec::new();
    for line in text.lines() {
        let l = line.trim_start();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        out.push(l.trim_end_matches('\r').to_string());
    }
    Ok(out)
}

pub(crate) fn env_entry(ctx: &Ctx, e: &str) -> Result<Option<String>> {
    if let Some((k, _)) = e.split_once('=') {
        if k.is_empty() {
            bail!("invalid environment variable: {e}");
        }
        return Ok(Some(e.to_string()));
    }
    Ok(Some(match lookup(ctx, e) {
        Some(v) => format!("{e}={v}"),
        None => e.to_string(),
    }))
}

/// Splits `IMAGE` into a familiar reference with a default tag (for messages and pulls).
pub fn familiar_with_tag(image: &str) -> String {
    if image.contains('@') {
        return image.to_string();
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    if last.contains(':') {
        image.to_string()
    } else {
        format!("{image}:latest")
    }
}

fn parse_port_spec(spec: &str) -> Result<(Vec<String>, Vec<(String, PortBinding)>)> {
    // [ip:][hostPort:]containerPort[/proto]
    let (body, proto) = match spec.rsplit_once('/') {
        Some((b, p)) => (b, p.to_string()),
        None => (spec, "tcp".to_string()),
    };
    let (ip, host, cport) = if let Some(rest) = body.strip_prefix('[') {
        // [ipv6]:host:container
        let (ip, rest) = rest
            .split_once("]:")
            .ok_or_else(|| anyhow!("invalid IP address: {spec}"))?;
        let (h, c) = rest
            .split_once(':')
            .ok_or_else(|| anyhow!("invalid port format: {spec}"))?;
        (ip.to_string(), h.to_string(), c.to_string())
    } else {
        let parts: Vec<&str> = body.split(':').collect();
        match parts.len() {
            1 => (String::new(), String::new(), parts[0].to_string()),
            2 => (String::new(), parts[0].to_string(), parts[1].to_string()),
            3 => (
                parts[0].to_string(),
                parts[1].to_string(),
                parts[2].to_string(),
            ),
            _ => {
                let (rest, c) = body.rsplit_once(':').unwrap();
                let (ip, h) = rest.rsplit_once(':').unwrap();
                (ip.to_string(), h.to_string(), c.to_string())
            }
        }
    };
    if cport.is_empty() {
        bail!("no port specified: {spec}<empty>");
    }
    let range = |s: &str| -> Result<(u32, u32)> {
        let (a, b) = s.split_once('-').unwrap_or((s, s));
        let a: u32 = a
            .parse()
            .map_err(|_| anyhow!("invalid containerPort: {s}"))?;
        let b: u32 = b
            .parse()
            .map_err(|_| anyhow!("invalid containerPort: {s}"))?;
        Ok((a, b))
    };
    let (c0, c1) = range(&cport)?;
    let hrange = if host.is_empty() {
        None
    } else {
        Some(range(&host)?)
    };
    let mut exposed = Vec::new();
    let mut bindings = Vec::new();
    for (i, p) in (c0..=c1).enumerate() {
        let key = format!("{p}/{proto}");
        exposed.push(key.clone());
        let hp = match hrange {
            None => String::new(),
            Some((h0, h1)) if h1 > h0 && h1 - h0 == c1 - c0 => (h0 + i as u32).to_string(),
            Some((h0, h1)) if h1 > h0 => format!("{h0}-{h1}"),
            Some((h0, _)) => h0.to_string(),
        };
        bindings.push((
            key,
            PortBinding {
                host_ip: Some(ip.clone()),
                host_port: Some(hp),
            },
        ));
    }
    Ok((exposed, bindings))
}

/// Builds the create body and the container name from the flags, as `docker run` does.
pub fn build_create(
    f: &ContainerFlags,
    ctx: &Ctx,
    for_run: bool,
) -> Result<(ContainerCreateBody, Option<String>)> {
    let image = f.args[0].clone();
    let cmd: Vec<String> = f.args[1..].to_vec();

    // attach streams
    let mut attach_stdin = false;
    let mut attach_stdout = false;
    let mut attach_stderr = false;
    for a in &f.attach {
        match a.to_ascii_lowercase().as_str() {
            "stdin" => attach_stdin = true,
            "stdout" => attach_stdout = true,
            "stderr" => attach_stderr = true,
            _ => bail!("invalid argument \"{a}\" for \"-a, --attach\" flag: valid streams are STDIN, STDOUT and STDERR"),
        }
    }
    if f.interactive {
        attach_stdin = true;
    }
    if f.attach.is_empty() {
        attach_stdout = true;
        attach_stderr = true;
    }
    if for_run && f.detach {
        if !f.attach.is_empty() {
            bail!("conflicting options: cannot specify both --attach and --detach");
        }
        attach_stdin = false;
        attach_stdout = false;
        attach_stderr = false;
    }
    if !for_run && f.detach {
        // `create` has no -d; accept it quietly
    }
    let stdin_once = attach_stdin && !(for_run && f.detach);

    // env: env-file first, then -e
    let mut env = Vec::new();
    for file in &f.env_file {
        for line in read_kv_file(file)? {
            if let Some(e) = env_entry(ctx, &line)? {
                env.push(e);
            }
        }
    }
    for e in &f.env {
        if let Some(e) = env_entry(ctx, e)? {
            env.push(e);
        }
    }

    // labels: label-file first, then -l
    let mut labels: HashMap<String, String> = HashMap::new();
    let mut label_items = Vec::new();
    for file in &f.label_file {
        label_items.extend(read_kv_file(file)?);
    }
    label_items.extend(f.label.iter().cloned());
    for l in label_items {
        match l.split_once('=') {
            Some((k, v)) => labels.insert(k.to_string(), v.to_string()),
            None => labels.insert(l.clone(), String::new()),
        };
    }

    let entrypoint = f.entrypoint.as_ref().map(|e| vec![e.clone()]);

    let memory = f.memory.as_deref().map(ram_in_bytes).transpose()?;
    let memory_swap = match f.memory_swap.as_deref() {
        Some("-1") => Some(-1),
        Some(s) => Some(ram_in_bytes(s)?),
        None => None,
    };
    let memory_reservation = f
        .memory_reservation
        .as_deref()
        .map(ram_in_bytes)
        .transpose()?;
    let nano_cpus = f.cpus.as_deref().map(parse_cpus).transpose()?;
    if nano_cpus.is_some() && (f.cpu_period.is_some() || f.cpu_quota.is_some()) {
        bail!("conflicting options: Nano CPUs and CPU Period/Quota cannot both be set");
    }
    let shm_size = f.shm_size.as_deref().map(ram_in_bytes).transpose()?;

    let restart_policy = match f.restart.as_deref() {
        Some(r) => {
            let p = parse_restart(r)?;
            if f.rm && p.name != Some(RestartPolicyNameEnum::NO) {
                bail!("conflicting options: cannot specify both --restart and --rm");
            }
            Some(p)
        }
        None => Some(RestartPolicy {
            name: Some(RestartPolicyNameEnum::NO),
            maximum_retry_count: Some(0),
        }),
    };

    let mut log_opts = HashMap::new();
    for o in &f.log_opt {
        let (k, v) = o
            .split_once('=')
            .ok_or_else(|| anyhow!("invalid key/value pair format in logging opts: {o}"))?;
        log_opts.insert(k.to_string(), v.to_string());
    }

    // volumes
    let mut binds = Vec::new();
    let mut anon_volumes = Vec::new();
    for v in &f.volume {
        if v.is_empty() {
            bail!("invalid empty volume spec");
        }
        // `/path` alone (no host part) is an anonymous volume
        let parts: Vec<&str> = v.split(':').collect();
        if parts.len() == 1 {
            anon_volumes.push(v.clone());
        } else {
            binds.push(v.clone());
        }
    }

    // ports
    let mut exposed: Vec<String> = Vec::new();
    let mut port_bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    for p in &f.publish {
        let (ex, b) = parse_port_spec(p)?;
        for e in ex {
            if !exposed.contains(&e) {
                exposed.push(e);
            }
        }
        for (k, pb) in b {
            port_bindings
                .entry(k)
                .or_insert_with(|| Some(vec![]))
                .get_or_insert_with(Vec::new)
                .push(pb);
        }
    }
    for e in &f.expose {
        let (body, proto) = e.split_once('/').unwrap_or((e.as_str(), "tcp"));
        let (a, b) = body.split_once('-').unwrap_or((body, body));
        let a: u32 = a
            .parse()
            .map_err(|_| anyhow!("invalid range format for --expose: {e}"))?;
        let b: u32 = b
            .parse()
            .map_err(|_| anyhow!("invalid range format for --expose: {e}"))?;
        for p in a..=b {
            let k = format!("{p}/{proto}");
            if !exposed.contains(&k) {
                exposed.push(k);
            }
        }
    }

    let mut tmpfs = HashMap::new();
    for t in &f.tmpfs {
        match t.split_once(':') {
            Some((p, o)) => tmpfs.insert(p.to_string(), o.to_string()),
            None => tmpfs.insert(t.clone(), String::new()),
        };
    }
    let mut sysctls = HashMap::new();
    for s in &f.sysctl {
        let (k, v) = s
            .split_once('=')
            .ok_or_else(|| anyhow!("sysctl '{s}' is not allowed"))?;
        sysctls.insert(k.to_string(), v.to_string());
    }

    let network_mode = f.network.clone().unwrap_or_else(|| "bridge".to_string());
    let networking_config = match f.network.as_deref() {
        Some(n) if !matches!(n, "none" | "host" | "default") && !n.starts_with("container:") => {
            let mut eps = HashMap::new();
            eps.insert(
                n.to_string(),
                EndpointSettings {
                    aliases: if f.network_alias.is_empty() {
                        None
                    } else {
                        Some(f.network_alias.clone())
                    },
                    ..Default::default()
                },
            );
            Some(NetworkingConfig {
                endpoints_config: Some(eps),
            })
        }
        _ => None,
    };

    let host_config = HostConfig {
        auto_remove: Some(f.rm),
        binds: if binds.is_empty() { None } else { Some(binds) },
        network_mode: Some(network_mode),
        restart_policy,
        memory,
        memory_swap,
        memory_reservation,
        nano_cpus,
        cpu_shares: f.cpu_shares,
        cpu_period: f.cpu_period,
        cpu_quota: f.cpu_quota,
        cpuset_cpus: f.cpuset_cpus.clone(),
        cpuset_mems: f.cpuset_mems.clone(),
        pids_limit: f.pids_limit,
        cap_add: if f.cap_add.is_empty() {
            None
        } else {
            Some(f.cap_add.clone())
        },
        cap_drop: if f.cap_drop.is_empty() {
            None
        } else {
            Some(f.cap_drop.clone())
        },
        privileged: Some(f.privileged),
        readonly_rootfs: Some(f.read_only),
        log_config: Some(HostConfigLogConfig {
            typ: Some(
                f.log_driver
                    .clone()
                    .unwrap_or_else(|| "json-file".to_string()),
            ),
            config: Some(log_opts),
        }),
        security_opt: if f.security_opt.is_empty() {
            None
        } else {
            Some(f.security_opt.clone())
        },
        init: if f.init { Some(true) } else { None },
        port_bindings: if port_bindings.is_empty() {
            None
        } else {
            Some(port_bindings)
        },
        publish_all_ports: Some(f.publish_all),
        tmpfs: if tmpfs.is_empty() { None } else { Some(tmpfs) },
        extra_hosts: if f.add_host.is_empty() {
            None
        } else {
            Some(f.add_host.clone())
        },
        dns: if f.dns.is_empty() {
            None
        } else {
            Some(f.dns.clone())
        },
        dns_options: if f.dns_option.is_empty() {
            None
        } else {
            Some(f.dns_option.clone())
        },
        dns_search: if f.dns_search.is_empty() {
            None
        } else {
            Some(f.dns_search.clone())
        },
        shm_size,
        runtime: f.runtime.clone(),
        group_add: if f.group_add.is_empty() {
            None
        } else {
            Some(f.group_add.clone())
        },
        sysctls: if sysctls.is_empty() {
            None
        } else {
            Some(sysctls)
        },
        pid_mode: f.pid.clone(),
        ipc_mode: f.ipc.clone(),
        uts_mode: f.uts.clone(),
        oom_score_adj: f.oom_score_adj,
        oom_kill_disable: if f.oom_kill_disable { Some(true) } else { None },
        console_size: ctx
            .console_size
            .filter(|_| f.tty)
            .map(|(h, w)| vec![h as usize, w as usize]),
        ..Default::default()
    };

    let healthcheck = super::health_flags::health_config(f)?;
    let body = ContainerCreateBody {
        healthcheck,
        hostname: f.hostname.clone(),
        domainname: f.domainname.clone(),
        user: f.user.clone(),
        attach_stdin: Some(attach_stdin),
        attach_stdout: Some(attach_stdout),
        attach_stderr: Some(attach_stderr),
        exposed_ports: if exposed.is_empty() {
            None
        } else {
            Some(exposed)
        },
        tty: Some(f.tty),
        open_stdin: Some(f.interactive),
        stdin_once: Some(stdin_once),
        env: Some(env),
        cmd: if cmd.is_empty() { None } else { Some(cmd) },
        image: Some(image),
        volumes: if anon_volumes.is_empty() {
            None
        } else {
            Some(anon_volumes)
        },
        working_dir: f.workdir.clone(),
        entrypoint,
        labels: Some(labels),
        stop_signal: f.stop_signal.clone(),
        stop_timeout: f.stop_timeout,
        host_config: Some(host_config),
        networking_config,
        ..Default::default()
    };
    Ok((body, f.name.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    #[command(disable_help_flag = true)]
    struct T {
        #[command(flatten)]
        f: ContainerFlags,
    }

    fn parse(args: &[&str]) -> ContainerFlags {
        let mut v = vec!["run"];
        v.extend_from_slice(args);
        T::try_parse_from(v).unwrap().f
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }
    fn some_env(k: &str) -> Option<String> {
        if k == "HOME" {
            Some("/root".into())
        } else {
            None
        }
    }

    #[test]
    fn sizes_and_cpus() {
        assert_eq!(ram_in_bytes("512m").unwrap(), 536870912);
        assert_eq!(ram_in_bytes("1g").unwrap(), 1073741824);
        assert_eq!(ram_in_bytes("1.5G").unwrap(), 1610612736);
        assert_eq!(ram_in_bytes("100").unwrap(), 100);
        assert_eq!(ram_in_bytes("10k").unwrap(), 10240);
        assert_eq!(ram_in_bytes("64mb").unwrap(), 64 << 20);
        assert_eq!(ram_in_bytes("2b").unwrap(), 2);
        assert!(ram_in_bytes("12x").is_err());
        assert_eq!(parse_cpus("1.5").unwrap(), 1_500_000_000);
        assert_eq!(parse_cpus("0.25").unwrap(), 250_000_000);
    }

    #[test]
    fn restart_policies() {
        let p = parse_restart("on-failure:3").unwrap();
        assert_eq!(p.name, Some(RestartPolicyNameEnum::ON_FAILURE));
        assert_eq!(p.maximum_retry_count, Some(3));
        assert_eq!(
            parse_restart("unless-stopped").unwrap().name,
            Some(RestartPolicyNameEnum::UNLESS_STOPPED)
        );
        assert!(parse_restart("always:2").is_err());
        assert!(parse_restart("sometimes").is_err());
    }

    #[test]
    fn interactive_tty_rm() {
        let f = parse(&["-it", "--rm", "busybox", "sh"]);
        let (b, name) = build_create(
            &f,
            &Ctx {
                console_size: Some((24, 80)),
                lookup_env: Some(no_env),
            },
            true,
        )
        .unwrap();
        assert_eq!(name, None);
        assert_eq!(b.image.as_deref(), Some("busybox"));
        assert_eq!(b.cmd, Some(vec!["sh".to_string()]));
        assert_eq!(b.tty, Some(true));
        assert_eq!(b.open_stdin, Some(true));
        assert_eq!(b.stdin_once, Some(true));
        assert_eq!(b.attach_stdin, Some(true));
        assert_eq!(b.attach_stdout, Some(true));
        assert_eq!(b.attach_stderr, Some(true));
        let hc = b.host_config.unwrap();
        assert_eq!(hc.auto_remove, Some(true));
        assert_eq!(hc.network_mode.as_deref(), Some("bridge"));
        assert_eq!(hc.console_size, Some(vec![24, 80]));
        assert_eq!(hc.log_config.unwrap().typ.as_deref(), Some("json-file"));
    }

    #[test]
    fn detached_with_everything() {
        let f = parse(&[
            "-d",
            "--name",
            "web",
            "-e",
            "K=V",
            "-e",
            "HOME",
            "-e",
            "UNSET",
            "-m",
            "512m",
            "--cpus",
            "1.5",
            "--restart",
            "unless-stopped",
            "--network",
            "net1",
            "-p",
            "8080:80",
            "-v",
            "data:/d",
            "-v",
            "/anon",
            "-l",
            "a=b",
            "-l",
            "flag",
            "--cap-add",
            "NET_ADMIN",
            "--cap-drop",
            "ALL",
            "--read-only",
            "--privileged",
            "--pids-limit",
            "100",
            "-c",
            "512",
            "--log-opt",
            "max-size=10m",
            "--security-opt",
            "no-new-privileges",
            "--entrypoint",
            "",
            "-w",
            "/tmp",
            "-u",
            "1000:1000",
            "-h",
            "box",
            "--stop-signal",
            "SIGINT",
            "--stop-timeout",
            "5",
            "-i",
            "nginx",
            "-g",
            "daemon off;",
        ]);
        let (b, name) = build_create(
            &f,
            &Ctx {
                console_size: None,
                lookup_env: Some(some_env),
            },
            true,
        )
        .unwrap();
        assert_eq!(name.as_deref(), Some("web"));
        assert_eq!(
            b.cmd,
            Some(vec!["-g".to_string(), "daemon off;".to_string()])
        );
        assert_eq!(
            b.env,
            Some(vec!["K=V".into(), "HOME=/root".into(), "UNSET".into()])
        );
        assert_eq!(b.attach_stdin, Some(false));
        assert_eq!(b.attach_stdout, Some(false));
        assert_eq!(b.open_stdin, Some(true));
        assert_eq!(b.stdin_once, Some(false));
        assert_eq!(b.entrypoint, Some(vec![String::new()]));
        assert_eq!(b.working_dir.as_deref(), Some("/tmp"));
        assert_eq!(b.user.as_deref(), Some("1000:1000"));
        assert_eq!(b.hostname.as_deref(), Some("box"));
        assert_eq!(b.stop_signal.as_deref(), Some("SIGINT"));
        assert_eq!(b.stop_timeout, Some(5));
        assert_eq!(b.volumes, Some(vec!["/anon".to_string()]));
        assert_eq!(b.exposed_ports, Some(vec!["80/tcp".to_string()]));
        let labels = b.labels.unwrap();
        assert_eq!(labels["a"], "b");
        assert_eq!(labels["flag"], "");
        let hc = b.host_config.unwrap();
        assert_eq!(hc.memory, Some(536870912));
        assert_eq!(hc.nano_cpus, Some(1_500_000_000));
        assert_eq!(hc.cpu_shares, Some(512));
        assert_eq!(hc.pids_limit, Some(100));
        assert_eq!(hc.network_mode.as_deref(), Some("net1"));
        assert_eq!(hc.binds, Some(vec!["data:/d".to_string()]));
        assert_eq!(
            hc.restart_policy.unwrap().name,
            Some(RestartPolicyNameEnum::UNLESS_STOPPED)
        );
        assert_eq!(hc.cap_add, Some(vec!["NET_ADMIN".to_string()]));
        assert_eq!(hc.cap_drop, Some(vec!["ALL".to_string()]));
        assert_eq!(hc.readonly_rootfs, Some(true));
        assert_eq!(hc.privileged, Some(true));
        assert_eq!(hc.log_config.unwrap().config.unwrap()["max-size"], "10m");
        assert_eq!(hc.security_opt, Some(vec!["no-new-privileges".to_string()]));
        let pb = hc.port_bindings.unwrap();
        let b80 = pb["80/tcp"].as_ref().unwrap();
        assert_eq!(b80[0].host_port.as_deref(), Some("8080"));
        assert!(b
            .networking_config
            .unwrap()
            .endpoints_config
            .unwrap()
            .contains_key("net1"));
        // JSON shape as docker sends it
        let f = parse(&["-p", "127.0.0.1:80:8080/udp", "busybox"]);
        let (b, _) = build_create(&f, &Ctx::default(), true).unwrap();
        let v = serde_json::to_value(&b).unwrap();
        assert_eq!(v["ExposedPorts"], serde_json::json!({"8080/udp": {}}));
        assert_eq!(
            v["HostConfig"]["PortBindings"]["8080/udp"][0]["HostIp"],
            "127.0.0.1"
        );
        assert_eq!(v["HostConfig"]["RestartPolicy"]["Name"], "no");
        assert!(v.get("Cmd").is_none());
    }

    #[test]
    fn conflicts() {
        let f = parse(&["--rm", "--restart", "always", "busybox"]);
        assert!(build_create(&f, &Ctx::default(), true).is_err());
        let f = parse(&["-d", "-a", "stdout", "busybox"]);
        assert!(build_create(&f, &Ctx::default(), true).is_err());
        let f = parse(&["-a", "stdout", "busybox"]);
        let (b, _) = build_create(&f, &Ctx::default(), true).unwrap();
        assert_eq!(b.attach_stderr, Some(false));
        assert_eq!(b.attach_stdout, Some(true));
    }

    #[test]
    fn trailing_args_belong_to_the_command() {
        let f = parse(&["busybox", "ls", "-la", "--rm"]);
        assert!(!f.rm);
        assert_eq!(f.args, vec!["busybox", "ls", "-la", "--rm"]);
        assert_eq!(familiar_with_tag("busybox"), "busybox:latest");
        assert_eq!(
            familiar_with_tag("localhost:5000/x"),
            "localhost:5000/x:latest"
        );
        assert_eq!(familiar_with_tag("x:1"), "x:1");
    }
}

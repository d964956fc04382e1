//! `run` / `create` flags and their translation into the API's create body, as the docker
//! CLI does it (`cli/command/container/opts.go`).

use super::mount_opts::{parse_mounts, split_volume_specs};
use super::net_opts::{
    flag_error, is_user_defined, is_valid_mac, parse_expose, parse_ip, parse_network_opt,
    parse_port_spec, publish_standard_notation, validate_dns_search, validate_extra_host,
    validate_ip_address, validate_link, NetworkAttachment,
};
use super::network::zero_endpoint;
use anyhow::{anyhow, bail, Result};
use bollard::models::{
    ContainerCreateBody, EndpointIpamConfig, EndpointSettings, HostConfig, HostConfigLogConfig,
    NetworkingConfig, PortBinding, PortMap, RestartPolicy, RestartPolicyNameEnum,
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
    #[arg(long = "network", alias = "net", action = ArgAction::Append)]
    pub network: Vec<String>,
    /// Add network-scoped alias for the container
    #[arg(long = "network-alias", alias = "net-alias", action = ArgAction::Append)]
    pub network_alias: Vec<String>,
    /// IPv4 address (e.g., 172.30.100.104)
    #[arg(long)]
    pub ip: Option<String>,
    /// IPv6 address (e.g., 2001:db8::33)
    #[arg(long)]
    pub ip6: Option<String>,
    /// Add link to another container
    #[arg(long, action = ArgAction::Append)]
    pub link: Vec<String>,
    /// Container IPv4/IPv6 link-local addresses
    #[arg(long = "link-local-ip", action = ArgAction::Append)]
    pub link_local_ip: Vec<String>,
    /// Container MAC address (e.g., 92:d0:c6:0a:29:33)
    #[arg(long = "mac-address")]
    pub mac_address: Option<String>,
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
    /// Attach a filesystem mount to the container
    #[arg(long, action = ArgAction::Append)]
    pub mount: Vec<String>,
    /// Mount volumes from the specified container(s)
    #[arg(long = "volumes-from", action = ArgAction::Append)]
    pub volumes_from: Vec<String>,
    /// Optional volume driver for the container
    #[arg(long = "volume-driver")]
    pub volume_driver: Option<String>,
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
    #[arg(long = "dns-option", alias = "dns-opt", action = ArgAction::Append)]
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

/// Checks (and normalises) each value of a list flag, failing as the docker CLI's flag
/// parser does.
fn validated(
    items: &[String],
    flag: &str,
    check: impl Fn(&str) -> Result<String, String>,
) -> Result<Vec<String>> {
    items
        .iter()
        .map(|v| check(v).map_err(|e| anyhow!(flag_error(flag, v, &e))))
        .collect()
}

/// `-p` and `--expose` as the docker CLI turns them into `ExposedPorts` and `PortBindings`
/// (go-connections' `ParsePortSpecs`; a port may be bound several times).
fn ports(f: &ContainerFlags) -> Result<(Vec<String>, PortMap), String> {
    let mut exposed: Vec<String> = Vec::new();
    let mut bindings: PortMap = HashMap::new();
    fn expose(p: String, exposed: &mut Vec<String>) {
        if !exposed.contains(&p) {
            exposed.push(p);
        }
    }
    for p in &f.publish {
        for m in parse_port_spec(&publish_standard_notation(p)?)? {
            expose(m.port.clone(), &mut exposed);
            bindings
                .entry(m.port)
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(PortBinding {
                    host_ip: Some(m.host_ip),
                    host_port: Some(m.host_port),
                });
        }
    }
    for e in &f.expose {
        for p in parse_expose(e)? {
            expose(p, &mut exposed);
        }
    }
    Ok((exposed, bindings))
}

/// The endpoint of one `--network` value, or None when it asks for nothing
/// (`parseNetworkAttachmentOpt`).
fn endpoint_of(n: &NetworkAttachment) -> Result<Option<EndpointSettings>, String> {
    if n.target.trim().is_empty() {
        return Err("no name set for network".into());
    }
    if !is_user_defined(&n.target) {
        if !n.aliases.is_empty() {
            return Err(
                "network-scoped aliases are only supported for user-defined networks".into(),
            );
        }
        if !n.links.is_empty() {
            return Err("links are only supported for user-defined networks".into());
        }
    }
    if !n.mac_address.is_empty() && !is_valid_mac(n.mac_address.trim()) {
        return Err(format!("{} is not a valid mac address", n.mac_address));
    }
    let has_ipam =
        !n.ipv4_address.is_empty() || !n.ipv6_address.is_empty() || !n.link_local_ips.is_empty();
    let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let nonempty_vec = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
    let ep = EndpointSettings {
        ipam_config: has_ipam.then(|| EndpointIpamConfig {
            ipv4_address: nonempty(&n.ipv4_address),
            ipv6_address: nonempty(&n.ipv6_address),
            link_local_ips: nonempty_vec(&n.link_local_ips),
        }),
        links: nonempty_vec(&n.links),
        aliases: nonempty_vec(&n.aliases),
        mac_address: Some(n.mac_address.clone()),
        driver_opts: (!n.driver_opts.is_empty()).then(|| n.driver_opts.clone()),
        gw_priority: Some(n.gw_priority),
        ..zero_endpoint()
    };
    Ok((ep != zero_endpoint()).then_some(ep))
}

/// The docker CLI's `applyContainerOptions`: the plain flags (`--network-alias`, `--link`,
/// `--ip`, `--ip6`, `--mac-address`, `--link-local-ip`) configure the first network.
fn apply_plain_flags(n: &mut NetworkAttachment, f: &ContainerFlags) -> Result<(), String> {
    let conflict = |what: &str| Err(format!("conflicting options: cannot specify both {what}"));
    if !n.aliases.is_empty() && !f.network_alias.is_empty() {
        return conflict("--network-alias and per-network alias");
    }
    if !n.links.is_empty() && !f.link.is_empty() {
        return conflict("--link and per-network links");
    }
    if !n.ipv4_address.is_empty() && f.ip.as_deref().is_some_and(|s| !s.is_empty()) {
        return conflict("--ip and per-network IPv4 address");
    }
    if !n.ipv6_address.is_empty() && f.ip6.as_deref().is_some_and(|s| !s.is_empty()) {
        return conflict("--ip6 and per-network IPv6 address");
    }
    if !n.mac_address.is_empty() && f.mac_address.as_deref().is_some_and(|s| !s.is_empty()) {
        return conflict("--mac-address and per-network MAC address");
    }
    if !n.link_local_ips.is_empty() && !f.link_local_ip.is_empty() {
        return conflict("--link-local-ip and per-network link-local IP addresses");
    }
    if !f.network_alias.is_empty() {
        n.aliases = f.network_alias.clone();
    }
    // On a user-defined network a link is an endpoint alias; on the default bridge it is a
    // legacy link and stays in HostConfig.Links only.
    if is_user_defined(&n.target) && !f.link.is_empty() {
        n.links = f.link.clone();
    }
    let set = |dst: &mut String, src: &Option<String>| {
        if let Some(v) = src.as_deref().filter(|v| !v.is_empty()) {
            *dst = v.to_string();
        }
    };
    set(&mut n.ipv4_address, &f.ip);
    set(&mut n.ipv6_address, &f.ip6);
    set(&mut n.mac_address, &f.mac_address);
    if !f.link_local_ip.is_empty() {
        n.link_local_ips = f.link_local_ip.clone();
    }
    Ok(())
}

/// `HostConfig.NetworkMode` and `NetworkingConfig.EndpointsConfig` as the docker CLI builds
/// them (`parseNetworkOpts`): "default" with an endpoint for it when no `--network` is
/// given; otherwise the first network is the mode, and each network gets its endpoint
/// (a lone network asking for nothing gets none).
pub fn network_endpoints(
    f: &ContainerFlags,
) -> Result<(String, HashMap<String, EndpointSettings>), String> {
    let mut nets: Vec<NetworkAttachment> = Vec::new();
    for v in &f.network {
        nets.push(parse_network_opt(v).map_err(|e| flag_error("--network", v, &e))?);
    }
    let mut endpoints = HashMap::new();
    if nets.is_empty() {
        let mut n = NetworkAttachment {
            target: "default".into(),
            ..Default::default()
        };
        apply_plain_flags(&mut n, f)?;
        let ep = endpoint_of(&n)?.unwrap_or_else(zero_endpoint);
        endpoints.insert(n.target, ep);
        return Ok(("default".into(), endpoints));
    }
    let mode = nets[0].target.clone();
    let single = nets.len() == 1;
    let (mut user_defined, mut builtin) = (false, false);
    for (i, mut n) in nets.into_iter().enumerate() {
        if is_user_defined(&n.target) {
            user_defined = true;
        } else {
            builtin = true;
        }
        if i == 0 {
            apply_plain_flags(&mut n, f)?;
        }
        let ep = endpoint_of(&n)?;
        if endpoints.contains_key(&n.target) {
            return Err(format!(
                "network {:?} is specified multiple times",
                n.target
            ));
        }
        match ep {
            None if i == 0 && single => {}
            ep => {
                endpoints.insert(n.target, ep.unwrap_or_else(zero_endpoint));
            }
        }
    }
    if user_defined && builtin {
        return Err(
            "conflicting options: cannot attach both user-defined and non-user-defined network-modes"
                .into(),
        );
    }
    Ok((mode, endpoints))
}

/// The docker CLI's warning for a `--dns` server on the loopback, which the container cannot
/// reach from its own network namespace (docker names the first one only).
pub fn dns_warnings(f: &ContainerFlags) -> Vec<String> {
    f.dns
        .iter()
        .filter_map(|d| validate_ip_address(d).ok())
        .find(|ip| parse_ip(ip).is_some_and(|ip| ip.is_loopback()))
        .map(|ip| format!("WARNING: Localhost DNS ({ip}) may fail in containers."))
        .into_iter()
        .collect()
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

    // volumes: the CLI resolves `./` bind sources against its working directory
    let cwd = std::env::current_dir().unwrap_or_else(|_| "/".into());
    let volume_specs = split_volume_specs(&f.volume, &cwd).map_err(|e| anyhow!(e))?;
    let mounts = parse_mounts(&f.mount, &cwd).map_err(|e| anyhow!(e))?;

    // ports
    let (exposed, port_bindings) = ports(f).map_err(|e| anyhow!(e))?;

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

    let (network_mode, endpoints) = network_endpoints(f).map_err(|e| anyhow!(e))?;
    let networking_config = Some(NetworkingConfig {
        endpoints_config: Some(endpoints),
    });
    let links = validated(&f.link, "--link", |l| {
        validate_link(l).map(|()| l.to_string())
    })?;
    let extra_hosts = validated(&f.add_host, "--add-host", validate_extra_host)?;
    let dns = validated(&f.dns, "--dns", validate_ip_address)?;
    let dns_search = validated(&f.dns_search, "--dns-search", validate_dns_search)?;

    let host_config = HostConfig {
        auto_remove: Some(f.rm),
        binds: (!volume_specs.binds.is_empty()).then_some(volume_specs.binds),
        mounts: (!mounts.is_empty()).then_some(mounts),
        volumes_from: (!f.volumes_from.is_empty()).then(|| f.volumes_from.clone()),
        // docker always sends it, "" when not given.
        volume_driver: Some(f.volume_driver.clone().unwrap_or_default()),
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
        port_bindings: Some(port_bindings),
        publish_all_ports: Some(f.publish_all),
        tmpfs: if tmpfs.is_empty() { None } else { Some(tmpfs) },
        extra_hosts: (!extra_hosts.is_empty()).then_some(extra_hosts),
        links: (!links.is_empty()).then_some(links),
        // docker sends these three as empty lists rather than null.
        dns: Some(dns),
        dns_options: Some(f.dns_option.clone()),
        dns_search: Some(dns_search),
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
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        tty: Some(f.tty),
        open_stdin: Some(f.interactive),
        stdin_once: Some(stdin_once),
        env: Some(env),
        cmd: if cmd.is_empty() { None } else { Some(cmd) },
        image: Some(image),
        // docker sends `{}` when there are none.
        volumes: Some(volume_specs.anonymous),
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
        assert_eq!(hc.network_mode.as_deref(), Some("default"));
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
        // A lone network asking for nothing gets no endpoint, as with docker.
        assert!(b
            .networking_config
            .unwrap()
            .endpoints_config
            .unwrap()
            .is_empty());
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

    fn create_json(args: &[&str]) -> serde_json::Value {
        let (b, _) = build_create(&parse(args), &Ctx::default(), false).unwrap();
        serde_json::to_value(&b).unwrap()
    }

    fn create_err(args: &[&str]) -> String {
        format!(
            "{:#}",
            build_create(&parse(args), &Ctx::default(), false).unwrap_err()
        )
    }

    /// The endpoint docker 28.2 sends, with the given fields over its zero values.
    fn docker_endpoint(fields: serde_json::Value) -> serde_json::Value {
        let mut ep = serde_json::json!({
            "MacAddress": "", "GwPriority": 0, "NetworkID": "", "EndpointID": "",
            "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "",
            "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
        });
        for (k, v) in fields.as_object().unwrap() {
            ep[k] = v.clone();
        }
        ep
    }

    #[test]
    fn network_flags_as_docker_sends_them() {
        use serde_json::json;
        // Captured from `docker create` (28.2) against a recording listener.
        let v = create_json(&["busybox"]);
        assert_eq!(v["HostConfig"]["NetworkMode"], "default");
        assert_eq!(
            v["NetworkingConfig"],
            json!({"EndpointsConfig": {"default": docker_endpoint(json!({}))}})
        );
        assert_eq!(v["HostConfig"]["PortBindings"], json!({}));
        assert_eq!(v["HostConfig"]["Dns"], json!([]));
        assert_eq!(v["HostConfig"]["DnsSearch"], json!([]));
        assert_eq!(v["HostConfig"]["DnsOptions"], json!([]));
        assert_eq!(v["HostConfig"]["PublishAllPorts"], false);

        let v = create_json(&[
            "--network",
            "mynet",
            "--network-alias",
            "a1",
            "--network-alias",
            "a2",
            "--ip",
            "172.18.0.5",
            "--ip6",
            "fd00::5",
            "--mac-address",
            "02:42:ac:11:00:02",
            "--link",
            "other:al",
            "--link",
            "x",
            "--add-host",
            "h1:1.2.3.4",
            "--add-host",
            "h2=::1",
            "--dns",
            "8.8.8.8",
            "--dns-search",
            "example.com",
            "--dns-option",
            "ndots:2",
            "--hostname",
            "box",
            "-p",
            "8080:80",
            "-p",
            "127.0.0.1:5353:53/udp",
            "-p",
            "9000-9001:9000-9001",
            "-p",
            "7000",
            "-P",
            "--expose",
            "3000",
            "--expose",
            "4000-4001/udp",
            "busybox",
        ]);
        assert_eq!(v["Hostname"], "box");
        let mut exposed: Vec<&String> = v["ExposedPorts"].as_object().unwrap().keys().collect();
        exposed.sort();
        assert_eq!(
            exposed,
            [
                "3000/tcp", "4000/udp", "4001/udp", "53/udp", "7000/tcp", "80/tcp", "9000/tcp",
                "9001/tcp"
            ]
        );
        let hc = &v["HostConfig"];
        assert_eq!(hc["NetworkMode"], "mynet");
        assert_eq!(
            hc["PortBindings"],
            json!({"53/udp": [{"HostIp": "127.0.0.1", "HostPort": "5353"}],
                   "7000/tcp": [{"HostIp": "", "HostPort": ""}],
                   "80/tcp": [{"HostIp": "", "HostPort": "8080"}],
                   "9000/tcp": [{"HostIp": "", "HostPort": "9000"}],
                   "9001/tcp": [{"HostIp": "", "HostPort": "9001"}]})
        );
        assert_eq!(hc["PublishAllPorts"], true);
        assert_eq!(hc["Dns"], json!(["8.8.8.8"]));
        assert_eq!(hc["DnsOptions"], json!(["ndots:2"]));
        assert_eq!(hc["DnsSearch"], json!(["example.com"]));
        assert_eq!(hc["ExtraHosts"], json!(["h1:1.2.3.4", "h2:::1"]));
        assert_eq!(hc["Links"], json!(["other:al", "x"]));
        assert!(v.get("MacAddress").is_none());
        assert_eq!(
            v["NetworkingConfig"]["EndpointsConfig"],
            json!({"mynet": docker_endpoint(json!({
                "IPAMConfig": {"IPv4Address": "172.18.0.5", "IPv6Address": "fd00::5"},
                "Links": ["other:al", "x"], "Aliases": ["a1", "a2"],
                "MacAddress": "02:42:ac:11:00:02"}))})
        );

        // Built-in modes alone send no endpoint; a legacy link stays in HostConfig only.
        for mode in ["host", "none", "container:abc", "mynet", "name=mynet"] {
            let v = create_json(&["--network", mode, "--link", "a", "busybox"]);
            let want = mode.trim_start_matches("name=");
            assert_eq!(v["HostConfig"]["NetworkMode"], want);
            assert_eq!(v["HostConfig"]["Links"], json!(["a"]));
            if want == "mynet" {
                assert_eq!(
                    v["NetworkingConfig"]["EndpointsConfig"],
                    json!({"mynet": docker_endpoint(json!({"Links": ["a"]}))})
                );
            } else {
                assert_eq!(v["NetworkingConfig"], json!({"EndpointsConfig": {}}));
            }
        }
        let v = create_json(&[
            "--network",
            "bridge",
            "--link",
            "a",
            "--ip",
            "1.2.3.4",
            "busybox",
        ]);
        assert_eq!(
            v["NetworkingConfig"]["EndpointsConfig"],
            json!({"bridge": docker_endpoint(json!({"IPAMConfig": {"IPv4Address": "1.2.3.4"}}))})
        );
        let v = create_json(&[
            "--mac-address",
            "02:42:ac:11:00:02",
            "--ip",
            "bad",
            "busybox",
        ]);
        assert_eq!(
            v["NetworkingConfig"]["EndpointsConfig"],
            json!({"default": docker_endpoint(json!({
                "IPAMConfig": {"IPv4Address": "bad"}, "MacAddress": "02:42:ac:11:00:02"}))})
        );
        // Several networks, the long syntax (lowercased, as docker does) and the plain flags
        // applying to the first one.
        let v = create_json(&[
            "--network",
            "name=MyNet,Alias=Al,ip=172.18.0.9,mac-address=02:42:ac:11:00:09,driver-opt=K=V,gw-priority=3,link-local-ip=169.254.1.1",
            "--network", "n2", "busybox",
        ]);
        assert_eq!(v["HostConfig"]["NetworkMode"], "mynet");
        assert_eq!(
            v["NetworkingConfig"]["EndpointsConfig"],
            json!({
                "mynet": docker_endpoint(json!({
                    "IPAMConfig": {"IPv4Address": "172.18.0.9", "LinkLocalIPs": ["169.254.1.1"]},
                    "Aliases": ["al"], "MacAddress": "02:42:ac:11:00:09",
                    "DriverOpts": {"k": "v"}, "GwPriority": 3})),
                "n2": docker_endpoint(json!({}))
            })
        );
        let v = create_json(&[
            "--network",
            "mynet",
            "--network",
            "n2",
            "--ip",
            "172.18.0.5",
            "busybox",
        ]);
        assert_eq!(
            v["NetworkingConfig"]["EndpointsConfig"]["mynet"]["IPAMConfig"],
            json!({"IPv4Address": "172.18.0.5"})
        );
        let v = create_json(&[
            "--dns",
            " 8.8.8.8 ",
            "--dns",
            "0:0::1",
            "--dns",
            "::ffff:1.2.3.4",
            "--dns-search",
            "example.com.",
            "--dns-search",
            ".",
            "busybox",
        ]);
        assert_eq!(v["HostConfig"]["Dns"], json!(["8.8.8.8", "::1", "1.2.3.4"]));
        assert_eq!(v["HostConfig"]["DnsSearch"], json!(["example.com", "."]));
        assert_eq!(
            dns_warnings(&parse(&[
                "--dns",
                "0:0::1",
                "--dns",
                "127.0.0.1",
                "busybox"
            ])),
            vec!["WARNING: Localhost DNS (::1) may fail in containers."]
        );
        assert_eq!(
            dns_warnings(&parse(&[
                "--dns",
                "127.0.0.2",
                "--dns",
                "8.8.8.8",
                "--dns",
                "::1",
                "busybox"
            ])),
            vec!["WARNING: Localhost DNS (127.0.0.2) may fail in containers."]
        );
        let v = create_json(&["-p", "target=80,published=8080,protocol=udp", "busybox"]);
        assert_eq!(
            v["HostConfig"]["PortBindings"],
            json!({"80/udp": [{"HostIp": "", "HostPort": "8080"}]})
        );

        let cases: &[(&[&str], &str)] = &[
            (&["--network", "bridge", "--network-alias", "x"], "network-scoped aliases are only supported for user-defined networks"),
            (&["--network-alias", "x"], "network-scoped aliases are only supported for user-defined networks"),
            (&["--network", "name=mynet,alias=y", "--network-alias", "x"], "conflicting options: cannot specify both --network-alias and per-network alias"),
            (&["--network", "mynet", "--network", "host"], "conflicting options: cannot attach both user-defined and non-user-defined network-modes"),
            (&["--network", "mynet", "--network", "mynet"], "network \"mynet\" is specified multiple times"),
            (&["--network", "name=mynet,bogus=1"], "invalid argument \"name=mynet,bogus=1\" for \"--network\" flag: invalid field key bogus"),
            (&["--network", "name=mynet,bogus"], "invalid argument \"name=mynet,bogus\" for \"--network\" flag: invalid field bogus"),
            (&["--network", ""], "no name set for network"),
            (&["--mac-address", "bad"], "bad is not a valid mac address"),
            (&["--add-host", "bad"], "invalid argument \"bad\" for \"--add-host\" flag: bad format for add-host: \"bad\""),
            (&["--dns", "bad"], "invalid argument \"bad\" for \"--dns\" flag: IP address is not correctly formatted: bad"),
            (&["--dns-search=-bad"], "invalid argument \"-bad\" for \"--dns-search\" flag: -bad is not a valid domain"),
            (&["--link", "a:b:c"], "invalid argument \"a:b:c\" for \"--link\" flag: bad format for links: a:b:c"),
            (&["--expose", "127.0.0.1:80"], "invalid port format for --expose: 127.0.0.1:80"),
            (&["-p", "80/xyz"], "invalid proto: xyz"),
            (&["-p", "80:90-91"], "invalid ranges specified for container and host Ports: 90-91 and 80"),
        ];
        for (args, want) in cases {
            let mut a = args.to_vec();
            a.push("busybox");
            assert_eq!(create_err(&a), *want, "{args:?}");
        }
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
    fn volume_flags_as_docker_sends_them() {
        use serde_json::json;
        // Captured from `docker create` (28.2) against a recording listener.
        let pick = |v: &serde_json::Value| {
            let h = &v["HostConfig"];
            json!({"Volumes": v["Volumes"], "Binds": h.get("Binds"), "Mounts": h.get("Mounts"),
                   "VolumesFrom": h.get("VolumesFrom"), "VolumeDriver": h["VolumeDriver"]})
        };
        assert_eq!(
            pick(&create_json(&["busybox"])),
            json!({"Volumes": {}, "Binds": null, "Mounts": null, "VolumesFrom": null,
                   "VolumeDriver": ""})
        );
        assert_eq!(
            pick(&create_json(&[
                "-v",
                "/data",
                "-v",
                "data:/d",
                "-v",
                "/h:/c:ro,rshared",
                "--mount",
                "type=tmpfs,dst=/t,tmpfs-size=64m,tmpfs-mode=1770",
                "--mount",
                "type=bind,src=/a,dst=/b,bind-recursive=disabled",
                "--volumes-from",
                "a",
                "--volumes-from",
                "b:ro",
                "--volume-driver",
                "foo",
                "busybox",
            ])),
            json!({"Volumes": {"/data": {}}, "Binds": ["data:/d", "/h:/c:ro,rshared"],
                   "Mounts": [
                       {"Type": "tmpfs", "Target": "/t",
                        "TmpfsOptions": {"SizeBytes": 67108864, "Mode": 1016}},
                       {"Type": "bind", "Source": "/a", "Target": "/b",
                        "BindOptions": {"NonRecursive": true}}],
                   "VolumesFrom": ["a", "b:ro"], "VolumeDriver": "foo"})
        );
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            create_json(&["-v", "./rel:/x", "busybox"])["HostConfig"]["Binds"][0],
            format!("{}/rel:/x", cwd.display())
        );
        assert_eq!(
            create_err(&["-v", "", "busybox"]),
            "invalid empty volume spec"
        );
        assert_eq!(
            create_err(&["-v", "ab:cd:ef:gh", "busybox"]),
            "invalid spec: ab:cd:ef:gh: too many colons"
        );
        assert_eq!(
            create_err(&["--mount", "src=v", "busybox"]),
            "invalid argument \"src=v\" for \"--mount\" flag: target is required"
        );
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

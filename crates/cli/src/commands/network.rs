//! Network commands (`network create/ls/inspect/rm/prune/connect/disconnect`) and `port`,
//! with docker 28's requests, output and exit codes. `ps`'s PORTS column is here too, as it
//! shares `port`'s rendering of bindings.

use crate::client::{anyhow_api, api_error_message, is_not_found, status};
use crate::commands::container::parse_filters;
use crate::commands::net_opts::{
    flag_error, go_parse_u16, kv_map, parse_cidr, parse_ip, validate_label, validate_link,
};
use crate::commands::system::{self as sys, InspectArgs};
use crate::output::{self, Format};
use anyhow::Result;
use bollard::models::{
    ConfigReference, EndpointIpamConfig, EndpointSettings, Ipam, IpamConfig, NetworkConnectRequest,
    NetworkCreateRequest, NetworkDisconnectRequest, PortBinding,
};
use bollard::query_parameters as qp;
use bollard::Docker;
use clap::{ArgAction, Args};
use serde_json::{json, Value};
use std::collections::HashMap;

/// Go's `strconv.ParseBool`, for boolean flags given a value (`--ipv6=false`).
fn go_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(format!(
            "strconv.ParseBool: parsing \"{s}\": invalid syntax"
        )),
    }
}

// ---------- create ----------

#[derive(Args, Debug, Default)]
pub struct CreateArgs {
    /// Enable manual container attachment
    #[arg(long)]
    pub attachable: bool,
    /// Auxiliary IPv4 or IPv6 addresses used by Network driver
    #[arg(long = "aux-address", action = ArgAction::Append)]
    pub aux_address: Vec<String>,
    /// The network from which to copy the configuration
    #[arg(long = "config-from")]
    pub config_from: Option<String>,
    /// Create a configuration only network
    #[arg(long = "config-only")]
    pub config_only: bool,
    /// Driver to manage the Network
    #[arg(short = 'd', long, default_value = "bridge")]
    pub driver: String,
    /// IPv4 or IPv6 Gateway for the master subnet
    #[arg(long, value_delimiter = ',', action = ArgAction::Append)]
    pub gateway: Vec<String>,
    /// Create swarm routing-mesh network
    #[arg(long)]
    pub ingress: bool,
    /// Restrict external access to the network
    #[arg(long)]
    pub internal: bool,
    /// Allocate container ip from a sub-range
    #[arg(long = "ip-range", value_delimiter = ',', action = ArgAction::Append)]
    pub ip_range: Vec<String>,
    /// IP Address Management Driver
    #[arg(long = "ipam-driver", default_value = "default")]
    pub ipam_driver: String,
    /// Set IPAM driver specific options
    #[arg(long = "ipam-opt", action = ArgAction::Append)]
    pub ipam_opt: Vec<String>,
    /// Enable or disable IPv4 address assignment
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool)]
    pub ipv4: Option<bool>,
    /// Enable or disable IPv6 address assignment
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool)]
    pub ipv6: Option<bool>,
    /// Set metadata on a network
    #[arg(long, action = ArgAction::Append)]
    pub label: Vec<String>,
    /// Set driver specific options
    #[arg(short = 'o', long = "opt", action = ArgAction::Append)]
    pub opt: Vec<String>,
    /// Control the network's scope
    #[arg(long)]
    pub scope: Option<String>,
    /// Subnet in CIDR format that represents a network segment
    #[arg(long, value_delimiter = ',', action = ArgAction::Append)]
    pub subnet: Vec<String>,
    #[arg(value_name = "NETWORK")]
    pub name: String,
}

/// The docker CLI's `createIPAMConfig`: subnets with the ranges, gateways and auxiliary
/// addresses that fall in them, one entry per subnet (in the order given).
pub fn ipam_configs(a: &CreateArgs) -> Result<Vec<IpamConfig>, String> {
    if a.subnet.len() < a.ip_range.len() || a.subnet.len() < a.gateway.len() {
        return Err("every ip-range or gateway must have a corresponding subnet".into());
    }
    // `subnetMatches`: does `data` (an address, or a CIDR's address) lie in `subnet`?
    let matches = |subnet: &str, data: &str| -> Result<bool, String> {
        let net = parse_cidr(subnet).map_err(|e| format!("invalid subnet: {e}"))?;
        let ip = if data.contains('/') {
            Some(parse_cidr(data)?.ip)
        } else {
            parse_ip(data)
        };
        Ok(ip.is_some_and(|ip| net.contains(ip)))
    };
    let mut configs: Vec<IpamConfig> = Vec::new();
    for s in &a.subnet {
        for c in &configs {
            let k = c.subnet.as_deref().unwrap_or_default();
            if matches(s, k)? || matches(k, s)? {
                return Err("multiple overlapping subnet configuration is not supported".into());
            }
        }
        configs.push(IpamConfig {
            subnet: Some(s.clone()),
            ..Default::default()
        });
    }
    // Ranges, gateways and aux addresses each go to every subnet that contains them.
    let mut place = |value: &str,
                     what: &str,
                     set: &mut dyn FnMut(&mut IpamConfig) -> Result<(), String>|
     -> Result<(), String> {
        let mut found = false;
        for c in configs.iter_mut() {
            if matches(c.subnet.as_deref().unwrap_or_default(), value)? {
                set(c)?;
                found = true;
            }
        }
        if found {
            Ok(())
        } else {
            Err(format!("no matching subnet for {what} {value}"))
        }
    };
    for r in &a.ip_range {
        parse_cidr(r)?;
        place(r, "range", &mut |c| match &c.ip_range {
            Some(old) => Err(format!(
                "cannot configure multiple ranges ({r}, {old}) on the same subnet ({})",
                c.subnet.as_deref().unwrap_or_default()
            )),
            None => {
                c.ip_range = Some(r.clone());
                Ok(())
            }
        })?;
    }
    for g in &a.gateway {
        place(g, "gateway", &mut |c| match &c.gateway {
            Some(old) => Err(format!(
                "cannot configure multiple gateways ({g}, {old}) for the same subnet ({})",
                c.subnet.as_deref().unwrap_or_default()
            )),
            None => {
                c.gateway = Some(g.clone());
                Ok(())
            }
        })?;
    }
    for (k, v) in aux_addresses(&a.aux_address) {
        place(&v, "aux-address", &mut |c| {
            c.auxiliary_addresses
                .get_or_insert_with(HashMap::new)
                .insert(k.clone(), v.clone());
            Ok(())
        })?;
    }
    Ok(configs)
}

/// `--aux-address name=ip` values; the last one given for a name wins (a Go map).
fn aux_addresses(items: &[String]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (k, v) in items.iter().map(|i| match i.split_once('=') {
        Some((k, v)) => (k.to_string(), v.to_string()),
        None => (i.clone(), String::new()),
    }) {
        out.retain(|(ok, _)| *ok != k);
        out.push((k, v));
    }
    out
}

/// The `POST /networks/create` body for the flags.
pub fn create_request(a: &CreateArgs) -> Result<NetworkCreateRequest> {
    for l in &a.label {
        validate_label(l).map_err(|e| status(125, flag_error("--label", l, &e)))?;
    }
    let configs = ipam_configs(a).map_err(|e| status(1, e))?;
    Ok(NetworkCreateRequest {
        name: a.name.clone(),
        driver: Some(a.driver.clone()),
        scope: Some(a.scope.clone().unwrap_or_default()),
        internal: Some(a.internal),
        attachable: Some(a.attachable),
        ingress: Some(a.ingress),
        config_only: Some(a.config_only),
        config_from: a
            .config_from
            .clone()
            .map(|n| ConfigReference { network: Some(n) }),
        ipam: Some(Ipam {
            driver: Some(a.ipam_driver.clone()),
            config: Some(configs),
            options: Some(kv_map(&a.ipam_opt)),
        }),
        enable_ipv4: a.ipv4,
        enable_ipv6: a.ipv6,
        options: Some(kv_map(&a.opt)),
        labels: Some(kv_map(&a.label)),
    })
}

pub async fn cmd_create(docker: &Docker, a: CreateArgs) -> Result<i32> {
    let body = create_request(&a)?;
    let resp = docker.create_network(body).await.map_err(anyhow_api)?;
    println!("{}", resp.id);
    Ok(0)
}

// ---------- ls ----------

#[derive(Args, Debug, Default)]
pub struct LsArgs {
    /// Provide filter values (e.g. "driver=bridge")
    #[arg(short = 'f', long = "filter", action = ArgAction::Append)]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    /// Do not truncate the output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only display network IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

const NETWORK_TABLE: &str = "{{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}";

fn network_headers() -> Value {
    json!({
        "CreatedAt": "CREATED AT", "Driver": "DRIVER", "ID": "NETWORK ID", "IPv4": "IPV4",
        "IPv6": "IPV6", "Internal": "INTERNAL", "Labels": "LABELS", "Name": "NAME",
        "Scope": "SCOPE",
    })
}

/// The docker CLI's network "context" for `network ls --format` (keys in Go's JSON order).
pub fn network_row(n: &Value, trunc: bool) -> Value {
    let id = n["Id"].as_str().unwrap_or("");
    let flag = |k: &str| n[k].as_bool().unwrap_or(false).to_string();
    let mut labels: Vec<String> = n["Labels"]
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    // docker joins them in Go's random map order; sorted is one of those orders, and stable.
    labels.sort();
    json!({
        "CreatedAt": output::go_time_string_rfc3339(n["Created"].as_str().unwrap_or("")),
        "Driver": n["Driver"].as_str().unwrap_or(""),
        "ID": if trunc { output::short_id(id) } else { id.to_string() },
        "IPv4": flag("EnableIPv4"),
        "IPv6": flag("EnableIPv6"),
        "Internal": flag("Internal"),
        "Labels": labels.join(","),
        "Name": n["Name"].as_str().unwrap_or(""),
        "Scope": n["Scope"].as_str().unwrap_or(""),
    })
}

/// docker's `NewFormat` for networks: `-q` turns the plain table into IDs only.
fn ls_format(a: &LsArgs) -> Format {
    match a.format.as_deref().filter(|f| !f.is_empty()) {
        None | Some("table") if a.quiet => Format::Raw("{{.ID}}".into()),
        f => Format::parse(f, NETWORK_TABLE),
    }
}

pub async fn cmd_ls(docker: &Docker, a: LsArgs) -> Result<i32> {
    let filters = parse_filters(&a.filter)?;
    let opts = qp::ListNetworksOptions {
        filters: (!filters.is_empty()).then_some(filters),
    };
    let list = docker.list_networks(Some(opts)).await.map_err(anyhow_api)?;
    let mut nets: Vec<Value> = list
        .iter()
        .map(|n| serde_json::to_value(n).unwrap_or(Value::Null))
        .collect();
    output::natural_sort_by_key(&mut nets, |n| n["Name"].as_str().unwrap_or(""));
    let rows: Vec<Value> = nets.iter().map(|n| network_row(n, !a.no_trunc)).collect();
    output::print_out(&output::render_list(
        &ls_format(&a),
        &rows,
        &network_headers(),
    )?);
    Ok(0)
}

// ---------- inspect ----------

#[derive(Args, Debug)]
pub struct InspectNetworkArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    /// Verbose output for diagnostics
    #[arg(short = 'v', long)]
    pub verbose: bool,
    #[arg(required = true, value_name = "NETWORK")]
    pub names: Vec<String>,
}

pub async fn cmd_inspect(docker: &Docker, a: InspectNetworkArgs) -> Result<i32> {
    let args = InspectArgs {
        format: a.format,
        size: false,
        typ: None,
        names: a.names,
        verbose: a.verbose,
    };
    sys::cmd_inspect(docker, args, Some("network")).await
}

// ---------- rm ----------

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Do not error if the network does not exist
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(required = true, value_name = "NETWORK")]
    pub networks: Vec<String>,
}

const INGRESS_WARNING: &str = "WARNING! Before removing the routing-mesh network, make sure all the nodes in your swarm run the same docker engine version. Otherwise, removal may not be effective and functionality of newly create ingress networks will be impaired.";

pub async fn cmd_rm(docker: &Docker, a: RmArgs) -> Result<i32> {
    let mut failed = false;
    // One at a time, as docker does: it inspects each network first (to ask before
    // removing a swarm ingress network), then removes it by the name given.
    for name in &a.networks {
        if let Ok(n) = docker
            .inspect_network(name, None::<qp::InspectNetworkOptions>)
            .await
        {
            if n.ingress == Some(true) && !crate::commands::prune::confirm(INGRESS_WARNING) {
                continue;
            }
        }
        match docker.remove_network(name).await {
            Ok(()) => println!("{name}"),
            Err(e) if a.force && is_not_found(&e) => {}
            Err(e) => {
                eprintln!("{}", api_error_message(&e));
                failed = true;
            }
        }
    }
    if failed {
        return Err(status(1, "exit status 1"));
    }
    Ok(0)
}

// ---------- prune ----------

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long = "filter", action = ArgAction::Append)]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
}

/// `POST /networks/prune`; the report docker prints ("Deleted Networks:\n<name>\n…"), empty
/// when nothing was removed. Shared with `system prune`.
pub async fn prune_report(
    docker: &Docker,
    filters: Option<HashMap<String, Vec<String>>>,
) -> Result<String, bollard::errors::Error> {
    let r = docker
        .prune_networks(Some(qp::PruneNetworksOptions { filters }))
        .await?;
    Ok(crate::commands::prune::deleted_list(
        "Networks",
        r.networks_deleted.unwrap_or_default(),
    ))
}

pub async fn cmd_prune(docker: &Docker, a: PruneArgs) -> Result<i32> {
    let filters = parse_filters(&a.filter)?;
    if !a.force
        && !crate::commands::prune::confirm(
            "WARNING! This will remove all custom networks not used by at least one container.",
        )
    {
        return Ok(0);
    }
    let report = prune_report(docker, (!filters.is_empty()).then_some(filters))
        .await
        .map_err(anyhow_api)?;
    if !report.is_empty() {
        println!("{report}");
    }
    Ok(0)
}

// ---------- connect / disconnect ----------

#[derive(Args, Debug, Default)]
pub struct ConnectArgs {
    /// Add network-scoped alias for the container
    #[arg(long, value_delimiter = ',', action = ArgAction::Append)]
    pub alias: Vec<String>,
    /// driver options for the network
    #[arg(long = "driver-opt", value_delimiter = ',', action = ArgAction::Append)]
    pub driver_opt: Vec<String>,
    /// Highest gw-priority provides the default gateway. Accepts positive and negative values.
    #[arg(long = "gw-priority", default_value_t = 0, allow_hyphen_values = true)]
    pub gw_priority: i64,
    /// IPv4 address (e.g., "172.30.100.104")
    #[arg(long)]
    pub ip: Option<String>,
    /// IPv6 address (e.g., "2001:db8::33")
    #[arg(long)]
    pub ip6: Option<String>,
    /// Add link to another container
    #[arg(long, action = ArgAction::Append)]
    pub link: Vec<String>,
    /// Add a link-local address for the container
    #[arg(long = "link-local-ip", value_delimiter = ',', action = ArgAction::Append)]
    pub link_local_ip: Vec<String>,
    #[arg(value_name = "NETWORK")]
    pub network: String,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

/// An endpoint with the zero values the docker CLI's Go struct carries (it has no
/// `omitempty`), so the body matches what docker sends field for field.
pub fn zero_endpoint() -> EndpointSettings {
    EndpointSettings {
        mac_address: Some(String::new()),
        gw_priority: Some(0),
        network_id: Some(String::new()),
        endpoint_id: Some(String::new()),
        gateway: Some(String::new()),
        ip_address: Some(String::new()),
        ip_prefix_len: Some(0),
        ipv6_gateway: Some(String::new()),
        global_ipv6_address: Some(String::new()),
        global_ipv6_prefix_len: Some(0),
        ..Default::default()
    }
}

/// The `POST /networks/{net}/connect` body for the flags.
pub fn connect_request(a: &ConnectArgs) -> Result<NetworkConnectRequest> {
    for l in &a.link {
        validate_link(l).map_err(|e| status(125, flag_error("--link", l, &e)))?;
    }
    let mut driver_opts = HashMap::new();
    for o in &a.driver_opt {
        match o.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                driver_opts.insert(k.trim().to_string(), v.trim().to_string());
            }
            _ => return Err(status(1, "invalid key/value pair format in driver options")),
        }
    }
    let nonempty = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
    let ep = EndpointSettings {
        ipam_config: Some(EndpointIpamConfig {
            ipv4_address: nonempty(&a.ip),
            ipv6_address: nonempty(&a.ip6),
            link_local_ips: (!a.link_local_ip.is_empty()).then(|| a.link_local_ip.clone()),
        }),
        links: (!a.link.is_empty()).then(|| a.link.clone()),
        aliases: Some(a.alias.clone()),
        driver_opts: Some(driver_opts),
        gw_priority: Some(a.gw_priority),
        ..zero_endpoint()
    };
    Ok(NetworkConnectRequest {
        container: a.container.clone(),
        endpoint_config: Some(ep),
    })
}

pub async fn cmd_connect(docker: &Docker, a: ConnectArgs) -> Result<i32> {
    let body = connect_request(&a)?;
    docker
        .connect_network(&a.network, body)
        .await
        .map_err(anyhow_api)?;
    Ok(0)
}

#[derive(Args, Debug)]
pub struct DisconnectArgs {
    /// Force the container to disconnect from a network
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(value_name = "NETWORK")]
    pub network: String,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

pub async fn cmd_disconnect(docker: &Docker, a: DisconnectArgs) -> Result<i32> {
    let body = NetworkDisconnectRequest {
        container: a.container.clone(),
        force: Some(a.force),
    };
    docker
        .disconnect_network(&a.network, body)
        .await
        .map_err(anyhow_api)?;
    Ok(0)
}

// ---------- port ----------

#[derive(Args, Debug)]
pub struct PortArgs {
    pub container: String,
    #[arg(value_name = "PRIVATE_PORT[/PROTO]")]
    pub private_port: Option<String>,
}

/// Go's `net.JoinHostPort`.
fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn binding_addr(b: &PortBinding) -> String {
    join_host_port(
        b.host_ip.as_deref().unwrap_or(""),
        b.host_port.as_deref().unwrap_or(""),
    )
}

/// The lines `docker port` prints for a container's `NetworkSettings.Ports`: every binding
/// as "80/tcp -> 0.0.0.0:8080", or, for one `PRIVATE_PORT[/PROTO]` (tcp by default), just
/// the host addresses. Naturally sorted, as docker does.
pub fn port_lines(
    ports: &HashMap<String, Option<Vec<PortBinding>>>,
    container: &str,
    private: Option<&str>,
) -> Result<Vec<String>> {
    let mut out: Vec<String> = match private {
        Some(spec) => {
            let (port, proto) = spec.split_once('/').unwrap_or((spec, ""));
            let proto = if proto.is_empty() { "tcp" } else { proto };
            go_parse_u16(port)
                .map_err(|e| status(1, format!("Error: invalid port ({port}): {e}")))?;
            let bindings = ports
                .get(&format!("{port}/{proto}"))
                .and_then(|b| b.as_ref())
                .filter(|b| !b.is_empty())
                .ok_or_else(|| {
                    status(
                        1,
                        format!("Error: No public port '{spec}' published for {container}"),
                    )
                })?;
            bindings.iter().map(binding_addr).collect()
        }
        None => ports
            .iter()
            .flat_map(|(from, bs)| {
                bs.iter()
                    .flatten()
                    .map(move |b| format!("{from} -> {}", binding_addr(b)))
            })
            .collect(),
    };
    output::natural_sort_by_key(&mut out, |s| s.as_str());
    Ok(out)
}

pub async fn cmd_port(docker: &Docker, a: PortArgs) -> Result<i32> {
    let c = docker
        .inspect_container(&a.container, None::<qp::InspectContainerOptions>)
        .await
        .map_err(anyhow_api)?;
    let ports = c.network_settings.and_then(|n| n.ports).unwrap_or_default();
    let lines = port_lines(&ports, &a.container, a.private_port.as_deref())?;
    if !lines.is_empty() {
        println!("{}", lines.join("\n"));
    }
    Ok(0)
}

/// docker's `DisplayablePorts` for `ps`: a summary's `Ports` as "0.0.0.0:8080->80/tcp,
/// 443/tcp". Exposed ports, and ports published on the same host port number, are
/// compacted into runs ("8000-8001/tcp", "0.0.0.0:8000-8001->8000-8001/tcp"); other
/// bindings follow, one each.
pub fn displayable_ports(ports: &Value) -> String {
    struct Group {
        first: i64,
        last: i64,
    }
    let mut ps: Vec<(i64, String, i64, String)> = ports
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| {
                    (
                        p["PrivatePort"].as_i64().unwrap_or(0),
                        p["IP"].as_str().unwrap_or("").to_string(),
                        p["PublicPort"].as_i64().unwrap_or(0),
                        p["Type"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    // docker's comparePorts: private port, IP (as a string), public port, type.
    ps.sort();
    let form = |key: &str, g: &Group| -> String {
        let (ip, typ) = match key.split_once('/') {
            Some((ip, typ)) => (ip, typ),
            None => ("", key),
        };
        let mut s = g.first.to_string();
        if g.first != g.last {
            s = format!("{s}-{}", g.last);
        }
        if !ip.is_empty() {
            s = format!("{}->{s}", join_host_port(ip, &s));
        }
        format!("{s}/{typ}")
    };
    let mut groups: HashMap<String, Group> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut result: Vec<String> = Vec::new();
    let mut mappings: Vec<String> = Vec::new();
    for (private, ip, public, typ) in ps {
        let mut key = typ.clone();
        if !ip.is_empty() {
            if public != private {
                mappings.push(format!(
                    "{}->{private}/{typ}",
                    join_host_port(&ip, &public.to_string())
                ));
                continue;
            }
            key = format!("{ip}/{typ}");
        }
        match groups.get_mut(&key) {
            None => {
                groups.insert(
                    key.clone(),
                    Group {
                        first: private,
                        last: private,
                    },
                );
                order.push(key);
            }
            Some(g) if private == g.last + 1 => g.last = private,
            Some(g) => {
                result.push(form(&key, g));
                *g = Group {
                    first: private,
                    last: private,
                };
            }
        }
    }
    for key in &order {
        result.push(form(key, &groups[key]));
    }
    result.extend(mappings);
    result.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::commands::parse_args as parse;

    fn create_json(args: &[&str]) -> Value {
        let a: CreateArgs = parse(args);
        serde_json::to_value(create_request(&a).unwrap()).unwrap()
    }

    fn create_err(args: &[&str]) -> String {
        let a: CreateArgs = parse(args);
        crate::client::error_message(&create_request(&a).unwrap_err())
    }

    #[test]
    fn create_bodies_as_docker_sends_them() {
        let v = create_json(&["n1"]);
        assert_eq!(
            v,
            json!({"Name": "n1", "Driver": "bridge", "Scope": "", "Internal": false,
                   "Attachable": false, "Ingress": false, "ConfigOnly": false,
                   "IPAM": {"Driver": "default", "Config": [], "Options": {}},
                   "Options": {}, "Labels": {}})
        );
        let v = create_json(&[
            "-d",
            "bridge",
            "--subnet",
            "10.1.0.0/16",
            "--gateway",
            "10.1.0.1",
            "--ip-range",
            "10.1.1.0/24",
            "--internal",
            "--label",
            "a=b",
            "--label",
            "c",
            "-o",
            "com.docker.network.bridge.name=br9",
            "-o",
            "x=y",
            "--ipv6",
            "--attachable",
            "--ipam-driver",
            "default",
            "--aux-address",
            "host1=10.1.0.5",
            "n2",
        ]);
        assert_eq!(v["EnableIPv6"], true);
        assert!(v.get("EnableIPv4").is_none());
        assert_eq!(
            v["IPAM"]["Config"],
            json!([{"Subnet": "10.1.0.0/16", "IPRange": "10.1.1.0/24", "Gateway": "10.1.0.1",
                    "AuxiliaryAddresses": {"host1": "10.1.0.5"}}])
        );
        assert_eq!(v["Internal"], true);
        assert_eq!(v["Attachable"], true);
        assert_eq!(v["Labels"], json!({"a": "b", "c": ""}));
        assert_eq!(v["Options"]["com.docker.network.bridge.name"], "br9");
        let v = create_json(&[
            "--subnet",
            "10.1.0.0/16,10.2.0.0/16",
            "--gateway",
            "10.2.0.1,10.1.0.1",
            "--aux-address",
            "a=10.1.0.9",
            "--aux-address",
            "b=10.2.0.9",
            "n",
        ]);
        assert_eq!(
            v["IPAM"]["Config"],
            json!([{"Subnet": "10.1.0.0/16", "Gateway": "10.1.0.1", "AuxiliaryAddresses": {"a": "10.1.0.9"}},
                   {"Subnet": "10.2.0.0/16", "Gateway": "10.2.0.1", "AuxiliaryAddresses": {"b": "10.2.0.9"}}])
        );
        let v = create_json(&[
            "--ipv4=false",
            "--ipv6",
            "--ipam-opt",
            "a=b",
            "--scope",
            "local",
            "--config-only",
            "--config-from",
            "base",
            "n4",
        ]);
        assert_eq!(
            (&v["EnableIPv4"], &v["EnableIPv6"]),
            (&json!(false), &json!(true))
        );
        assert_eq!(v["IPAM"]["Options"], json!({"a": "b"}));
        assert_eq!(v["ConfigFrom"], json!({"Network": "base"}));
        // A lone subnet is not checked on the client.
        assert_eq!(
            create_json(&["--subnet", "bad", "n"])["IPAM"]["Config"][0]["Subnet"],
            "bad"
        );
    }

    #[test]
    fn create_errors_as_docker_words_them() {
        let cases: &[(&[&str], &str)] = &[
            (&["--gateway", "10.0.0.1", "n"], "every ip-range or gateway must have a corresponding subnet"),
            (&["--subnet", "10.1.0.0/16", "--gateway", "10.2.0.1", "n"], "no matching subnet for gateway 10.2.0.1"),
            (&["--subnet", "10.1.0.0/16", "--gateway", "bad", "n"], "no matching subnet for gateway bad"),
            (&["--subnet", "bad", "--gateway", "10.0.0.1", "n"], "invalid subnet: invalid CIDR address: bad"),
            (&["--subnet", "10.1.0.0/16", "--ip-range", "bad", "n"], "invalid CIDR address: bad"),
            (&["--subnet", "10.1.0.0/16", "--ip-range", "10.2.0.0/24", "n"], "no matching subnet for range 10.2.0.0/24"),
            (&["--subnet", "10.1.0.0/16", "--ip-range", "10.1.0.0/24", "--subnet", "10.2.0.0/16", "--ip-range", "10.1.5.0/24", "n"],
             "cannot configure multiple ranges (10.1.5.0/24, 10.1.0.0/24) on the same subnet (10.1.0.0/16)"),
            (&["--subnet", "10.1.0.0/16", "--gateway", "10.1.0.1", "--subnet", "10.2.0.0/16", "--gateway", "10.1.0.2", "n"],
             "cannot configure multiple gateways (10.1.0.2, 10.1.0.1) for the same subnet (10.1.0.0/16)"),
            (&["--subnet", "10.1.0.0/16", "--subnet", "10.1.0.0/24", "n"], "multiple overlapping subnet configuration is not supported"),
            (&["--subnet", "10.1.0.0/16", "--subnet", "bad", "n"], "invalid subnet: invalid CIDR address: bad"),
            (&["--subnet", "10.1.0.0/16", "--aux-address", "a=bad", "n"], "no matching subnet for aux-address bad"),
            (&["--aux-address", "bad", "n"], "no matching subnet for aux-address "),
            (&["--label", "a b=c", "n"], "invalid argument \"a b=c\" for \"--label\" flag: label 'a b' contains whitespaces"),
        ];
        for (args, want) in cases {
            assert_eq!(create_err(args), *want, "{args:?}");
        }
        let a: CreateArgs = parse(&["--label", "=x", "n"]);
        assert_eq!(
            crate::client::exit_code_of(&create_request(&a).unwrap_err()),
            125
        );
        // pflag takes a bool flag's value only after '='.
        let try_parse = crate::commands::try_parse_args::<CreateArgs>;
        assert!(try_parse(&["--ipv6", "n2", "extra"]).is_err());
        assert_eq!(try_parse(&["--ipv6", "n2"]).unwrap().name, "n2");
    }

    #[test]
    fn ls_rows_and_formats() {
        let nets = [
            json!({"Name": "net10", "Id": "aa11bb22cc33dd44ee55", "Created": "2024-01-02T00:00:00.000000000Z",
                   "Scope": "local", "Driver": "bridge", "EnableIPv4": true, "Labels": {"b": "2", "a": "1"}}),
            json!({"Name": "net9", "Id": "0099887766554433", "Created": "2024-01-01T10:11:12.5+01:00",
                   "Scope": "local", "Driver": "host", "Labels": {}}),
        ];
        let mut sorted: Vec<&Value> = nets.iter().collect();
        output::natural_sort_by_key(&mut sorted, |n| n["Name"].as_str().unwrap());
        assert_eq!(sorted[0]["Name"], "net9");
        let rows: Vec<Value> = sorted.iter().map(|n| network_row(n, true)).collect();
        assert_eq!(
            serde_json::to_string(&rows[1]).unwrap(),
            r#"{"CreatedAt":"2024-01-02 00:00:00 +0000 UTC","Driver":"bridge","ID":"aa11bb22cc33","IPv4":"true","IPv6":"false","Internal":"false","Labels":"a=1,b=2","Name":"net10","Scope":"local"}"#
        );
        assert_eq!(rows[0]["CreatedAt"], "2024-01-01 10:11:12.5 +0100 +0100");
        let table =
            output::render_list(&ls_format(&LsArgs::default()), &rows, &network_headers()).unwrap();
        assert_eq!(
            table,
            "NETWORK ID     NAME      DRIVER    SCOPE\n009988776655   net9      host      local\naa11bb22cc33   net10     bridge    local\n"
        );
        let quiet = LsArgs {
            quiet: true,
            ..Default::default()
        };
        assert_eq!(
            output::render_list(&ls_format(&quiet), &rows, &network_headers()).unwrap(),
            "009988776655\naa11bb22cc33\n"
        );
        // An explicit format wins over -q, as in docker.
        let named = LsArgs {
            quiet: true,
            format: Some("{{.Name}}".into()),
            ..Default::default()
        };
        assert_eq!(
            output::render_list(&ls_format(&named), &rows, &network_headers()).unwrap(),
            "net9\nnet10\n"
        );
        let custom = LsArgs {
            format: Some("table {{.Name}}\\t{{.IPv6}}\\t{{.Internal}}\\t{{.Labels}}".into()),
            ..Default::default()
        };
        assert_eq!(
            output::render_list(&ls_format(&custom), &rows, &network_headers()).unwrap(),
            "NAME      IPV6      INTERNAL   LABELS\nnet9      false     false      \nnet10     false     false      a=1,b=2\n"
        );
    }

    #[test]
    fn connect_bodies_as_docker_sends_them() {
        let a: ConnectArgs = parse(&["mynet", "c"]);
        assert_eq!(
            serde_json::to_value(connect_request(&a).unwrap()).unwrap(),
            json!({"Container": "c", "EndpointConfig": {
                "IPAMConfig": {}, "MacAddress": "", "Aliases": [], "DriverOpts": {},
                "GwPriority": 0, "NetworkID": "", "EndpointID": "", "Gateway": "",
                "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "",
                "GlobalIPv6PrefixLen": 0}})
        );
        let a: ConnectArgs = parse(&[
            "--alias",
            "a1",
            "--alias",
            "a2,a3",
            "--ip",
            "172.18.0.5",
            "--ip6",
            "fd00::5",
            "--link",
            "other:al",
            "--link",
            "x",
            "--driver-opt",
            "k=v",
            "--driver-opt",
            "k2=v2",
            "--link-local-ip",
            "169.254.0.5",
            "--gw-priority",
            "-5",
            "mynet",
            "c",
        ]);
        let v = serde_json::to_value(connect_request(&a).unwrap()).unwrap();
        let ep = &v["EndpointConfig"];
        assert_eq!(
            ep["IPAMConfig"],
            json!({"IPv4Address": "172.18.0.5", "IPv6Address": "fd00::5", "LinkLocalIPs": ["169.254.0.5"]})
        );
        assert_eq!(ep["Links"], json!(["other:al", "x"]));
        assert_eq!(ep["Aliases"], json!(["a1", "a2", "a3"]));
        assert_eq!(ep["DriverOpts"], json!({"k": "v", "k2": "v2"}));
        assert_eq!(ep["GwPriority"], -5);
        let a: ConnectArgs = parse(&["--driver-opt", "bad", "n", "c"]);
        assert_eq!(
            crate::client::error_message(&connect_request(&a).unwrap_err()),
            "invalid key/value pair format in driver options"
        );
    }

    fn ports_map() -> HashMap<String, Option<Vec<PortBinding>>> {
        let b = |ip: &str, port: &str| PortBinding {
            host_ip: Some(ip.into()),
            host_port: Some(port.into()),
        };
        HashMap::from([
            (
                "80/tcp".to_string(),
                Some(vec![b("0.0.0.0", "8080"), b("::", "8080")]),
            ),
            ("443/tcp".to_string(), None),
            ("53/udp".to_string(), Some(vec![b("127.0.0.1", "5353")])),
            ("9000/tcp".to_string(), Some(vec![b("0.0.0.0", "9000")])),
            ("8000/tcp".to_string(), Some(vec![b("", "32768")])),
        ])
    }

    #[test]
    fn port_output_like_docker() {
        let p = ports_map();
        assert_eq!(
            port_lines(&p, "c", None).unwrap(),
            vec![
                "53/udp -> 127.0.0.1:5353",
                "80/tcp -> 0.0.0.0:8080",
                "80/tcp -> [::]:8080",
                "8000/tcp -> :32768",
                "9000/tcp -> 0.0.0.0:9000"
            ]
        );
        assert_eq!(
            port_lines(&p, "c", Some("80")).unwrap(),
            vec!["0.0.0.0:8080", "[::]:8080"]
        );
        assert_eq!(
            port_lines(&p, "c", Some("53/udp")).unwrap(),
            vec!["127.0.0.1:5353"]
        );
        let err = |spec: &str| {
            let e = port_lines(&p, "c", Some(spec)).unwrap_err();
            (
                crate::client::error_message(&e),
                crate::client::exit_code_of(&e),
            )
        };
        for spec in ["81", "443", "53", "80/sctp", "80/tcp/x"] {
            assert_eq!(
                err(spec),
                (format!("Error: No public port '{spec}' published for c"), 1)
            );
        }
        assert_eq!(
            err("abc").0,
            "Error: invalid port (abc): strconv.ParseUint: parsing \"abc\": invalid syntax"
        );
    }

    #[test]
    fn ps_ports_column_like_docker() {
        // Output of the docker 28.2 CLI for the same summaries.
        let v = json!([
            {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8000, "Type": "tcp"},
            {"IP": "0.0.0.0", "PrivatePort": 81, "PublicPort": 8001, "Type": "tcp"},
            {"IP": "::", "PrivatePort": 80, "PublicPort": 8000, "Type": "tcp"},
            {"IP": "::", "PrivatePort": 81, "PublicPort": 8001, "Type": "tcp"},
            {"PrivatePort": 443, "Type": "tcp"}, {"PrivatePort": 444, "Type": "tcp"},
            {"IP": "127.0.0.1", "PrivatePort": 53, "PublicPort": 5353, "Type": "udp"},
            {"IP": "0.0.0.0", "PrivatePort": 90, "PublicPort": 9090, "Type": "tcp"}
        ]);
        assert_eq!(
            displayable_ports(&v),
            "443-444/tcp, 127.0.0.1:5353->53/udp, 0.0.0.0:8000->80/tcp, [::]:8000->80/tcp, 0.0.0.0:8001->81/tcp, [::]:8001->81/tcp, 0.0.0.0:9090->90/tcp"
        );
        let v = json!([
            {"IP": "0.0.0.0", "PrivatePort": 8000, "PublicPort": 8000, "Type": "tcp"},
            {"IP": "0.0.0.0", "PrivatePort": 8001, "PublicPort": 8001, "Type": "tcp"},
            {"IP": "::", "PrivatePort": 8000, "PublicPort": 8000, "Type": "tcp"},
            {"IP": "::", "PrivatePort": 8001, "PublicPort": 8001, "Type": "tcp"},
            {"IP": "0.0.0.0", "PrivatePort": 8003, "PublicPort": 8003, "Type": "tcp"},
            {"PrivatePort": 7000, "Type": "udp"}, {"PrivatePort": 7001, "Type": "udp"},
            {"PrivatePort": 7001, "Type": "tcp"}, {"PrivatePort": 7003, "Type": "udp"},
            {"IP": "0.0.0.0", "PrivatePort": 8002, "PublicPort": 9999, "Type": "tcp"},
            {"IP": "0.0.0.0", "PrivatePort": 53, "PublicPort": 53, "Type": "udp"},
            {"IP": "0.0.0.0", "PrivatePort": 53, "PublicPort": 53, "Type": "tcp"}
        ]);
        assert_eq!(
            displayable_ports(&v),
            "7000-7001/udp, 0.0.0.0:53->53/tcp, 0.0.0.0:8000-8001->8000-8001/tcp, 0.0.0.0:8003->8003/tcp, 0.0.0.0:53->53/udp, 7003/udp, 7001/tcp, [::]:8000-8001->8000-8001/tcp, 0.0.0.0:9999->8002/tcp"
        );
        assert_eq!(displayable_ports(&json!([])), "");
        assert_eq!(displayable_ports(&Value::Null), "");
    }
}

//! What `docker create` asks of the network, checked before anything exists.

use std::net::IpAddr;

use berth_network::ipam;
use bollard_stubs::models::{ContainerConfig, EndpointSettings, HostConfig, NetworkingConfig};

use super::ports::requests;
use super::record::*;
use crate::error::{EngineError, Result};
use crate::Engine;

/// What the user asked of one endpoint, checked against the network.
pub(crate) fn plan_endpoint(net: &NetworkRecord, s: Option<&EndpointSettings>) -> Result<Endpoint> {
    let invalid = |m: String| EngineError::InvalidArgument(m);
    let s = s.cloned().unwrap_or_default();
    let aliases: Vec<String> = s
        .aliases
        .unwrap_or_default()
        .into_iter()
        .filter(|a| !a.is_empty())
        .collect();
    let links = s.links.unwrap_or_default();
    if net.predefined() && (!aliases.is_empty() || !links.is_empty()) && net.is_bridge() {
        return Err(invalid(
            "network-scoped alias is supported only for containers in user defined networks".into(),
        ));
    }
    for a in &aliases {
        if a.len() > 255 || a.chars().any(|c| c.is_whitespace() || c == '/') {
            return Err(invalid(format!("invalid alias {a:?}")));
        }
    }
    let ipam_cfg = s.ipam_config.unwrap_or_default();
    let v4 = ipam_cfg.ipv4_address.filter(|a| !a.is_empty());
    let v6 = ipam_cfg.ipv6_address.filter(|a| !a.is_empty());
    let mut ep = Endpoint {
        network_id: net.id.clone(),
        aliases,
        links,
        driver_opts: s.driver_opts.unwrap_or_default().into_iter().collect(),
        gw_priority: s.gw_priority.unwrap_or(0),
        ..Default::default()
    };
    for (addr, want_v4) in [(v4, true), (v6, false)] {
        let Some(addr) = addr else { continue };
        let ip: IpAddr = addr
            .parse()
            .map_err(|_| invalid(format!("invalid IP address: {addr:?}")))?;
        if ip.is_ipv4() != want_v4 {
            return Err(invalid(format!(
                "{addr} is not an IPv{} address",
                if want_v4 { 4 } else { 6 }
            )));
        }
        let subnet = net.subnets.iter().find(|s| s.subnet.contains(&ip));
        match subnet {
            _ if !net.is_bridge() || net.name == DEFAULT_BRIDGE => {
                return Err(invalid(
                    "user specified IP address is supported on user defined networks only".into(),
                ))
            }
            Some(sub) if sub.configured => {
                if ip == sub.gateway || ip == sub.subnet.network() || (ip.is_ipv4() && ip == sub.subnet.broadcast()) {
                    return Err(invalid(format!("IP address {ip} is reserved on network {}", net.name)));
                }
            }
            Some(_) => {
                return Err(invalid(
                    "user specified IP address is supported only when connecting to networks with user configured subnets".into(),
                ))
            }
            None => {
                return Err(invalid(format!(
                    "no configured subnet contains IP address {ip} on network {}",
                    net.name
                )))
            }
        }
        match ip {
            IpAddr::V4(a) => ep.ipv4_static = Some(a),
            IpAddr::V6(a) => ep.ipv6_static = Some(a),
        }
    }
    if let Some(m) = s.mac_address.filter(|m| !m.is_empty()) {
        ipam::parse_mac(&m).map_err(|e| invalid(e.to_string()))?;
        ep.mac_static = Some(m.to_lowercase());
    }
    Ok(ep)
}

impl Engine {
    /// The container's endpoints from `NetworkMode` and `NetworkingConfig`, every user value
    /// checked (networks exist, fixed addresses fit, ports parse, links name containers).
    pub(crate) fn plan_networks(
        &self,
        hc: &mut HostConfig,
        cfg: &ContainerConfig,
        nc: Option<&NetworkingConfig>,
    ) -> Result<ContainerNetwork> {
        let invalid = |m: &str| EngineError::InvalidArgument(m.to_string());
        let mode = hc
            .network_mode
            .clone()
            .unwrap_or_else(|| DEFAULT_BRIDGE.into());
        let mut configs = nc
            .and_then(|n| n.endpoints_config.clone())
            .unwrap_or_default();
        // The docker CLI names the default network "default" when no --network is given.
        if let Some(c) = configs.remove("default") {
            configs.entry(mode.clone()).or_insert(c);
        }
        let has_ports = hc.port_bindings.as_ref().is_some_and(|p| !p.is_empty())
            || hc.publish_all_ports.unwrap_or(false);
        if let Some(other) = mode.strip_prefix("container:") {
            let o = self.containers.find(other)?;
            if has_ports {
                return Err(invalid(
                    "conflicting options: port publishing and the container type network mode",
                ));
            }
            if !configs.is_empty() {
                return Err(invalid(
                    "conflicting options: networking config and the container type network mode",
                ));
            }
            hc.network_mode = Some(format!("container:{}", o.id));
            return Ok(ContainerNetwork::default());
        }
        let primary = self.networks.find(&mode)?;
        let exposed: Vec<String> = cfg.exposed_ports.clone().unwrap_or_default();
        requests(hc, &exposed, None)?;
        for l in hc.links.iter().flatten() {
            let (target, _) = super::names::parse_link(l);
            self.containers.find(&target).map_err(|_| {
                EngineError::InvalidArgument(format!("could not get container for {target}"))
            })?;
        }
        if !primary.is_bridge() && configs.keys().any(|k| k != &mode && k != &primary.name) {
            return Err(invalid(&format!(
                "container cannot be connected to multiple networks with one of the networks in {} mode",
                if primary.driver == "host" { "host" } else { "private" }
            )));
        }
        let mut out = ContainerNetwork::default();
        let primary_cfg = configs.get(&mode).or_else(|| configs.get(&primary.name));
        out.endpoints
            .insert(primary.name.clone(), plan_endpoint(&primary, primary_cfg)?);
        out.order.push(primary.name.clone());
        let mut rest: Vec<(&String, &EndpointSettings)> = configs
            .iter()
            .filter(|(k, _)| **k != mode && **k != primary.name)
            .collect();
        rest.sort_by_key(|(k, _)| k.as_str());
        for (key, settings) in rest {
            let net = self.networks.find(key)?;
            if !net.is_bridge() {
                return Err(invalid(&format!(
                    "container cannot be connected to network {} together with {}",
                    net.name, primary.name
                )));
            }
            if out.endpoints.contains_key(&net.name) {
                continue;
            }
            out.endpoints
                .insert(net.name.clone(), plan_endpoint(&net, Some(settings))?);
            out.order.push(net.name.clone());
        }
        Ok(out)
    }
}

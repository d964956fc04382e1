//! A container's `NetworkSettings`, as `docker inspect` and `docker ps` show them.

use std::collections::HashMap;

use bollard_stubs::models::{EndpointIpamConfig, EndpointSettings, NetworkSettings};

use super::ports::port_map;
use super::record::Endpoint;
use crate::container::ContainerRecord;
use crate::Engine;

fn settings(ep: &Endpoint, dns_names: Option<Vec<String>>) -> EndpointSettings {
    let ipam = (ep.ipv4_static.is_some() || ep.ipv6_static.is_some()).then(|| EndpointIpamConfig {
        ipv4_address: ep.ipv4_static.map(|a| a.to_string()),
        ipv6_address: ep.ipv6_static.map(|a| a.to_string()),
        link_local_ips: None,
    });
    let s = |v: Option<String>| Some(v.unwrap_or_default());
    EndpointSettings {
        ipam_config: ipam,
        links: (!ep.links.is_empty()).then(|| ep.links.clone()),
        mac_address: s(ep.mac.clone()),
        aliases: (!ep.aliases.is_empty()).then(|| ep.aliases.clone()),
        driver_opts: (!ep.driver_opts.is_empty())
            .then(|| ep.driver_opts.clone().into_iter().collect()),
        gw_priority: Some(ep.gw_priority),
        network_id: Some(ep.network_id.clone()),
        endpoint_id: Some(ep.endpoint_id.clone()),
        gateway: s(ep.gateway.filter(|g| g.is_ipv4()).map(|g| g.to_string())),
        ip_address: s(ep.ip.map(|i| i.addr().to_string())),
        ip_prefix_len: Some(ep.ip.map(|i| i64::from(i.prefix_len())).unwrap_or(0)),
        ipv6_gateway: s(ep.gateway6.map(|g| g.to_string())),
        global_ipv6_address: s(ep.ip6.map(|i| i.addr().to_string())),
        global_ipv6_prefix_len: Some(ep.ip6.map(|i| i64::from(i.prefix_len())).unwrap_or(0)),
        dns_names,
    }
}

impl Engine {
    /// `NetworkSettings.Networks`: by network name.
    pub(crate) fn endpoint_settings(
        &self,
        rec: &ContainerRecord,
    ) -> HashMap<String, EndpointSettings> {
        rec.network
            .endpoints
            .iter()
            .map(|(name, ep)| {
                let user_net = self
                    .networks
                    .by_id(&ep.network_id)
                    .is_some_and(|n| n.user_defined_bridge());
                let names = user_net.then(|| super::names::dns_names(rec, ep));
                (name.clone(), settings(ep, names))
            })
            .collect()
    }

    pub(crate) fn network_settings(&self, rec: &ContainerRecord) -> NetworkSettings {
        let exposed: Vec<String> = rec.config.exposed_ports.clone().unwrap_or_default();
        let running = rec.state.is_running();
        NetworkSettings {
            sandbox_id: Some(
                rec.network
                    .sandbox_key
                    .as_ref()
                    .map(|_| rec.id.clone())
                    .unwrap_or_default(),
            ),
            sandbox_key: Some(rec.network.sandbox_key.clone().unwrap_or_default()),
            ports: Some(if running {
                port_map(&exposed, &rec.network.ports)
            } else {
                HashMap::new()
            }),
            networks: Some(self.endpoint_settings(rec)),
        }
    }
}

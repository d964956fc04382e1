//! What the embedded DNS server answers: names of containers on the asking container's
//! user-defined networks (names, aliases, short IDs, its links), as dockerd's resolver.

use std::net::{IpAddr, SocketAddr};
use std::sync::Weak;

use berth_network::dns::Names;

use super::record::Endpoint;
use crate::container::ContainerRecord;
use crate::Engine;

pub struct EngineNames {
    engine: Weak<Engine>,
}

impl EngineNames {
    pub fn new(engine: Weak<Engine>) -> Self {
        EngineNames { engine }
    }
}

/// The names an endpoint answers to on its network: dockerd's `DNSNames`.
pub fn dns_names(rec: &ContainerRecord, ep: &Endpoint) -> Vec<String> {
    let mut names = vec![rec.name.clone(), rec.id[..12].to_string()];
    names.extend(ep.aliases.iter().cloned());
    names.dedup();
    names
}

/// `target:alias` (or a bare `target`), as HostConfig.Links and EndpointSettings.Links hold
/// them; dockerd's stored form `/target:/me/alias` is accepted too.
pub fn parse_link(link: &str) -> (String, String) {
    let (target, alias) = link.split_once(':').unwrap_or((link, link));
    let target = target.trim_start_matches('/').to_string();
    let alias = alias.rsplit('/').next().unwrap_or(alias).to_string();
    (target, alias)
}

/// User-defined networks the container is attached to.
fn user_networks(engine: &Engine, rec: &ContainerRecord) -> Vec<String> {
    rec.network
        .endpoints
        .values()
        .filter(|e| e.attached())
        .filter(|e| {
            engine
                .networks
                .by_id(&e.network_id)
                .is_some_and(|n| n.user_defined_bridge())
        })
        .map(|e| e.network_id.clone())
        .collect()
}

fn addresses(ep: &Endpoint) -> Vec<IpAddr> {
    ep.ip
        .iter()
        .chain(ep.ip6.iter())
        .map(|n| n.addr())
        .collect()
}

impl Names for EngineNames {
    fn lookup(&self, container: &str, name: &str) -> Option<Vec<IpAddr>> {
        let engine = self.engine.upgrade()?;
        let me = engine.containers.find(container).ok()?.snapshot();
        let nets = user_networks(&engine, &me);
        let others: Vec<ContainerRecord> = engine
            .containers
            .all()
            .iter()
            .map(|h| h.snapshot())
            .collect();
        // Links are names only the linking container sees.
        let links = me
            .host_config
            .links
            .iter()
            .flatten()
            .chain(me.network.endpoints.values().flat_map(|e| e.links.iter()));
        let mut target = None;
        for l in links {
            let (t, alias) = parse_link(l);
            if alias.eq_ignore_ascii_case(name) {
                target = Some(t);
            }
        }
        for o in &others {
            let by_link = target
                .as_deref()
                .is_some_and(|t| t == o.name || o.id.starts_with(t));
            for ep in o
                .network
                .endpoints
                .values()
                .filter(|e| e.attached() && nets.contains(&e.network_id))
            {
                if by_link
                    || dns_names(o, ep)
                        .iter()
                        .any(|n| n.eq_ignore_ascii_case(name))
                {
                    return Some(addresses(ep));
                }
            }
        }
        None
    }

    fn reverse(&self, container: &str, ip: IpAddr) -> Option<String> {
        let engine = self.engine.upgrade()?;
        let me = engine.containers.find(container).ok()?.snapshot();
        let nets = user_networks(&engine, &me);
        for h in engine.containers.all() {
            let o = h.snapshot();
            for ep in o
                .network
                .endpoints
                .values()
                .filter(|e| nets.contains(&e.network_id))
            {
                if addresses(ep).contains(&ip) {
                    let net = engine.networks.by_id(&ep.network_id)?;
                    return Some(format!("{}.{}", o.name, net.name));
                }
            }
        }
        None
    }

    fn upstreams(&self, container: &str) -> Vec<SocketAddr> {
        let dns = self
            .engine
            .upgrade()
            .and_then(|e| e.containers.find(container).ok())
            .and_then(|h| h.snapshot().host_config.dns)
            .unwrap_or_default();
        let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        super::etc::upstream_servers(&host, &dns)
            .into_iter()
            .map(|ip| SocketAddr::new(ip, 53))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links() {
        assert_eq!(parse_link("web:db"), ("web".into(), "db".into()));
        assert_eq!(parse_link("web"), ("web".into(), "web".into()));
        assert_eq!(parse_link("/web:/me/db"), ("web".into(), "db".into()));
    }
}

//! `docker network create/ls/inspect/rm/prune`: the records and their API shapes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;

use berth_network::ipam;
use bollard_stubs::models::{
    EndpointResource, Ipam, IpamConfig, Network, NetworkCreateRequest, NetworkInspect,
};
use ipnet::IpNet;

use super::record::*;
use crate::container::inspect::Filters;
use crate::error::{EngineError, Result};
use crate::prune::{check_keys, labels_pass, until_of};
use crate::Engine;

fn invalid(msg: impl Into<String>) -> EngineError {
    EngineError::InvalidArgument(msg.into())
}

/// A Linux interface name the kernel accepts: 1–15 bytes, no '/', ':' or whitespace.
fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() < 16
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace())
}

/// The network name rule dockerd applies.
fn valid_network_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

fn parse_ip(what: &'static str, s: &str) -> Result<IpAddr> {
    s.parse()
        .map_err(|_| invalid(format!("invalid {what}: {s:?} is not an IP address")))
}

impl Engine {
    fn persist_network(&self, rec: &NetworkRecord) -> Result<()> {
        let json = serde_json::to_string(rec).map_err(EngineError::internal)?;
        self.db
            .put_network(&rec.id, &rec.name, &json)
            .map_err(|e| match e {
                berth_store::StoreError::NameConflict(n) => {
                    EngineError::Conflict(format!("network with name {n} already exists"))
                }
                other => other.into(),
            })
    }

    /// Every subnet in use: other networks', and (for automatic choices) the host's routes
    /// and addresses, which include another engine's bridge such as docker0.
    async fn taken_prefixes(&self, with_host: bool) -> Vec<IpNet> {
        let mut taken: Vec<IpNet> = self
            .networks
            .all()
            .iter()
            .flat_map(|n| n.subnets.iter().map(|s| s.subnet))
            .collect();
        if with_host {
            match self.networks.netlink().await {
                Ok(nl) => match nl.host_prefixes().await {
                    Ok(p) => taken.extend(p),
                    Err(e) => tracing::warn!("cannot read the host's routes: {e}"),
                },
                Err(e) => tracing::warn!("cannot read the host's routes: {e}"),
            }
        }
        taken
    }

    pub(crate) async fn create_predefined_networks(&self) -> Result<()> {
        let have: HashSet<String> = self.networks.all().into_iter().map(|n| n.name).collect();
        for (name, driver) in [(DEFAULT_BRIDGE, "bridge"), (HOST, "host"), (NONE, "null")] {
            if have.contains(name) {
                continue;
            }
            let mut rec = NetworkRecord {
                id: crate::names::random_id(),
                name: name.into(),
                driver: driver.into(),
                created: chrono::Utc::now(),
                internal: false,
                attachable: false,
                enable_ipv6: false,
                subnets: Vec::new(),
                ipam_options: BTreeMap::new(),
                options: BTreeMap::new(),
                labels: BTreeMap::new(),
                bridge: String::new(),
            };
            if driver == "bridge" {
                let subnet = IpNet::V4(ipam::pick_subnet(&self.taken_prefixes(true).await)?);
                rec.subnets.push(SubnetRecord::automatic(subnet)?);
                rec.bridge = DEFAULT_BRIDGE_IFNAME.into();
                for (k, v) in [
                    (OPT_BRIDGE_NAME, DEFAULT_BRIDGE_IFNAME),
                    (OPT_ICC, "true"),
                    (OPT_MASQUERADE, "true"),
                    (OPT_HOST_BINDING, "0.0.0.0"),
                    (OPT_MTU, "1500"),
                ] {
                    rec.options.insert(k.into(), v.into());
                }
            }
            self.persist_network(&rec)?;
            tracing::info!(network = name, subnets = ?rec.subnets, "created predefined network");
            self.networks.insert(rec);
        }
        Ok(())
    }

    /// `POST /networks/create`: the record, its bridge and its firewall rules.
    pub async fn create_network(&self, req: NetworkCreateRequest) -> Result<(String, String)> {
        let name = req.name.trim().to_string();
        if name.is_empty() {
            return Err(invalid("network name cannot be empty"));
        }
        if !valid_network_name(&name) {
            return Err(invalid(format!(
                "invalid network name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        let driver = req
            .driver
            .clone()
            .filter(|d| !d.is_empty())
            .unwrap_or("bridge".into());
        if matches!(name.as_str(), DEFAULT_BRIDGE | HOST | NONE) {
            return Err(EngineError::Forbidden(format!(
                "{name} is a pre-defined network and cannot be created"
            )));
        }
        if driver != "bridge" {
            return Err(EngineError::NotFound(format!(
                "plugin \"{driver}\" not found"
            )));
        }
        if req.ingress.unwrap_or(false) || req.config_only.unwrap_or(false) {
            return Err(invalid("ingress and config-only networks need swarm mode"));
        }
        let _g = self.networks.lock.lock().await;
        if self.networks.all().iter().any(|n| n.name == name) {
            return Err(EngineError::Conflict(format!(
                "network with name {name} already exists"
            )));
        }
        let id = crate::names::random_id();
        let options: BTreeMap<String, String> = req
            .options
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        let bridge = match options.get(OPT_BRIDGE_NAME) {
            Some(b) => {
                if !valid_ifname(b) {
                    return Err(invalid(format!("invalid bridge name {b:?}")));
                }
                if self.networks.all().iter().any(|n| &n.bridge == b) {
                    return Err(EngineError::Conflict(format!(
                        "bridge name {b} is already used by another network"
                    )));
                }
                b.clone()
            }
            None => format!("br-{}", &id[..12]),
        };
        for key in [OPT_ICC, OPT_MASQUERADE] {
            if let Some(v) = options.get(key) {
                v.parse::<bool>()
                    .map_err(|_| invalid(format!("invalid value {v:?} for option {key}")))?;
            }
        }
        if let Some(v) = options.get(OPT_MTU) {
            v.parse::<u32>()
                .ok()
                .filter(|m| *m == 0 || (68..=65535).contains(m))
                .ok_or_else(|| invalid(format!("invalid MTU {v:?}")))?;
        }
        if let Some(v) = options.get(OPT_HOST_BINDING) {
            parse_ip("host binding address", v)?;
        }
        let enable_ipv6 = req.enable_ipv6.unwrap_or(false);
        let ipam_req = req.ipam.clone().unwrap_or_default();
        if let Some(d) = ipam_req
            .driver
            .as_deref()
            .filter(|d| !d.is_empty() && *d != "default")
        {
            return Err(EngineError::NotFound(format!("plugin \"{d}\" not found")));
        }
        let subnets = self
            .plan_subnets(&ipam_req.config.unwrap_or_default(), enable_ipv6)
            .await?;
        let rec = NetworkRecord {
            id: id.clone(),
            name: name.clone(),
            driver,
            created: chrono::Utc::now(),
            internal: req.internal.unwrap_or(false),
            attachable: req.attachable.unwrap_or(false),
            enable_ipv6,
            subnets,
            ipam_options: ipam_req.options.unwrap_or_default().into_iter().collect(),
            options,
            labels: req.labels.clone().unwrap_or_default().into_iter().collect(),
            bridge,
        };
        let nl = self.networks.netlink().await?;
        nl.ensure_bridge(&super::bridge_spec(&rec)).await?;
        if rec.enable_ipv6 {
            berth_network::link::set_sysctl("net/ipv6/conf/all/forwarding", "1")?;
        }
        self.networks.insert(rec.clone());
        let done = match self.apply_firewall().await {
            Ok(()) => self.persist_network(&rec),
            Err(e) => Err(e),
        };
        if let Err(e) = done {
            self.networks.forget(&id);
            let _ = nl.delete_link(&rec.bridge).await;
            let _ = self.apply_firewall().await;
            return Err(e);
        }
        self.emit_network(&rec, "create", None);
        Ok((id, String::new()))
    }

    /// The subnets of a new network: the user's (checked against every other network) or
    /// the first free default pool.
    async fn plan_subnets(&self, configs: &[IpamConfig], v6: bool) -> Result<Vec<SubnetRecord>> {
        let others = self.taken_prefixes(false).await;
        let mut out: Vec<SubnetRecord> = Vec::new();
        for c in configs {
            let Some(s) = c.subnet.as_deref().filter(|s| !s.is_empty()) else {
                if c.gateway.is_some() || c.ip_range.is_some() {
                    return Err(invalid("a gateway or ip-range needs a subnet"));
                }
                continue;
            };
            let subnet = ipam::parse_subnet(s).map_err(|e| invalid(e.to_string()))?;
            if subnet.addr().is_ipv6() && !v6 {
                return Err(invalid(format!(
                    "IPv6 subnet {subnet} requires IPv6 to be enabled (--ipv6)"
                )));
            }
            if let Some(o) = others
                .iter()
                .chain(out.iter().map(|r| &r.subnet))
                .find(|o| ipam::overlaps(o, &subnet))
            {
                let owner = self
                    .networks
                    .all()
                    .into_iter()
                    .find(|n| n.subnets.iter().any(|x| &x.subnet == o))
                    .map(|n| format!(" of network {}", n.name))
                    .unwrap_or_default();
                return Err(invalid(format!(
                    "invalid pool request: Pool overlaps with other one on this address space: {subnet} overlaps {o}{owner}"
                )));
            }
            let ip_range = match c.ip_range.as_deref().filter(|s| !s.is_empty()) {
                Some(r) => {
                    let r = ipam::parse_subnet(r).map_err(|e| invalid(e.to_string()))?;
                    if !subnet.contains(&r) {
                        return Err(invalid(format!(
                            "ip-range {r} is not within subnet {subnet}"
                        )));
                    }
                    Some(r)
                }
                None => None,
            };
            let gateway = match c.gateway.as_deref().filter(|s| !s.is_empty()) {
                Some(g) => {
                    let g = parse_ip("gateway", g)?;
                    if !subnet.contains(&g)
                        || g == subnet.network()
                        || (g.is_ipv4() && g == subnet.broadcast())
                    {
                        return Err(invalid(format!(
                            "gateway {g} is not a usable address of subnet {subnet}"
                        )));
                    }
                    g
                }
                None => ipam::first_host(&subnet).map_err(|e| invalid(e.to_string()))?,
            };
            let mut aux = BTreeMap::new();
            for (k, v) in c.auxiliary_addresses.clone().unwrap_or_default() {
                let ip = parse_ip("auxiliary address", &v)?;
                if !subnet.contains(&ip) {
                    return Err(invalid(format!(
                        "auxiliary address {ip} is not within subnet {subnet}"
                    )));
                }
                aux.insert(k, ip);
            }
            out.push(SubnetRecord {
                subnet,
                gateway,
                ip_range,
                aux,
                configured: true,
            });
        }
        if !out.iter().any(|s| s.subnet.addr().is_ipv4()) {
            let subnet = IpNet::V4(ipam::pick_subnet(&self.taken_prefixes(true).await)?);
            out.insert(0, SubnetRecord::automatic(subnet)?);
        }
        if v6 && !out.iter().any(|s| s.subnet.addr().is_ipv6()) {
            let subnet = IpNet::V6(ipam::pick_subnet_v6(&self.taken_prefixes(true).await)?);
            out.push(SubnetRecord::automatic(subnet)?);
        }
        Ok(out)
    }

    pub(crate) fn emit_network(&self, rec: &NetworkRecord, action: &str, container: Option<&str>) {
        let mut attrs = BTreeMap::from([
            ("name".to_string(), rec.name.clone()),
            ("type".to_string(), rec.driver.clone()),
        ]);
        if let Some(c) = container {
            attrs.insert("container".into(), c.to_string());
        }
        self.emit("network", action, &rec.id, attrs);
    }

    /// Containers with an attached endpoint on the network: (container id, name, endpoint).
    pub(crate) fn attached_to(&self, network_id: &str) -> Vec<(String, String, Endpoint)> {
        self.containers
            .all()
            .into_iter()
            .filter_map(|h| {
                let r = h.snapshot();
                let ep = r
                    .network
                    .endpoints
                    .values()
                    .find(|e| e.network_id == network_id && e.attached())?
                    .clone();
                Some((r.id, r.name, ep))
            })
            .collect()
    }

    fn network_model(&self, rec: &NetworkRecord) -> Network {
        let ipam_config = rec
            .subnets
            .iter()
            .map(|s| IpamConfig {
                subnet: Some(s.subnet.to_string()),
                ip_range: s.ip_range.map(|r| r.to_string()),
                gateway: Some(s.gateway.to_string()),
                auxiliary_addresses: (!s.aux.is_empty()).then(|| {
                    s.aux
                        .iter()
                        .map(|(k, v)| (k.clone(), v.to_string()))
                        .collect()
                }),
            })
            .collect();
        Network {
            name: Some(rec.name.clone()),
            id: Some(rec.id.clone()),
            created: Some(
                rec.created
                    .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            ),
            scope: Some("local".into()),
            driver: Some(rec.driver.clone()),
            enable_ipv4: Some(rec.is_bridge()),
            enable_ipv6: Some(rec.enable_ipv6),
            ipam: Some(Ipam {
                driver: Some("default".into()),
                config: Some(ipam_config),
                options: Some(rec.ipam_options.clone().into_iter().collect()),
            }),
            internal: Some(rec.internal),
            attachable: Some(rec.attachable),
            ingress: Some(false),
            config_from: Some(bollard_stubs::models::ConfigReference {
                network: Some(String::new()),
            }),
            config_only: Some(false),
            options: Some(rec.options.clone().into_iter().collect()),
            labels: Some(rec.labels.clone().into_iter().collect()),
            peers: None,
        }
    }

    /// `GET /networks/{id}`: the network with its attached containers.
    pub fn inspect_network(&self, key: &str) -> Result<NetworkInspect> {
        let rec = self.networks.find(key)?;
        let n = self.network_model(&rec);
        let containers: HashMap<String, EndpointResource> = self
            .attached_to(&rec.id)
            .into_iter()
            .map(|(id, name, ep)| {
                (
                    id,
                    EndpointResource {
                        name: Some(name),
                        endpoint_id: Some(ep.endpoint_id.clone()),
                        mac_address: Some(ep.mac.clone().unwrap_or_default()),
                        ipv4_address: Some(ep.ip.map(|i| i.to_string()).unwrap_or_default()),
                        ipv6_address: Some(ep.ip6.map(|i| i.to_string()).unwrap_or_default()),
                    },
                )
            })
            .collect();
        Ok(NetworkInspect {
            name: n.name,
            id: n.id,
            created: n.created,
            scope: n.scope,
            driver: n.driver,
            enable_ipv4: n.enable_ipv4,
            enable_ipv6: n.enable_ipv6,
            ipam: n.ipam,
            internal: n.internal,
            attachable: n.attachable,
            ingress: n.ingress,
            config_from: n.config_from,
            config_only: n.config_only,
            options: n.options,
            labels: n.labels,
            peers: None,
            containers: Some(containers),
            services: None,
            status: None,
        })
    }

    /// `GET /networks` with dockerd's filters.
    pub fn list_networks(&self, filters: &Filters) -> Result<Vec<Network>> {
        check_keys(
            filters,
            &[
                "driver", "id", "label", "label!", "name", "scope", "type", "dangling",
            ],
        )?;
        let used: HashSet<String> = self
            .containers
            .all()
            .iter()
            .flat_map(|h| {
                let r = h.snapshot();
                r.network
                    .endpoints
                    .values()
                    .map(|e| e.network_id.clone())
                    .collect::<Vec<_>>()
            })
            .collect();
        let any = |key: &str, test: &dyn Fn(&str) -> bool| {
            filters
                .get(key)
                .is_none_or(|vs| vs.is_empty() || vs.iter().any(|v| test(v)))
        };
        let mut out = Vec::new();
        for rec in self.networks.all() {
            let pass = any("driver", &|v| v == rec.driver)
                && any("id", &|v| rec.id.starts_with(v))
                && any("name", &|v| rec.name.contains(v))
                && any("scope", &|v| v == "local")
                && any("type", &|v| match v {
                    "builtin" => rec.predefined(),
                    "custom" => !rec.predefined(),
                    _ => false,
                })
                && any("dangling", &|v| {
                    let unused = !rec.predefined() && !used.contains(&rec.id);
                    matches!(v, "true" | "1") == unused
                })
                && labels_pass(filters, &rec.labels.clone().into_iter().collect());
            if pass {
                out.push(self.network_model(&rec));
            }
        }
        if let Some(bad) = filters
            .get("type")
            .into_iter()
            .flatten()
            .find(|v| !matches!(v.as_str(), "builtin" | "custom"))
        {
            return Err(invalid(format!("invalid filter: 'type'='{bad}'")));
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// `DELETE /networks/{id}`.
    pub async fn remove_network(&self, key: &str) -> Result<()> {
        let rec = self.networks.find(key)?;
        if rec.predefined() {
            return Err(EngineError::Forbidden(format!(
                "{} is a pre-defined network and cannot be removed",
                rec.name
            )));
        }
        let _g = self.networks.lock.lock().await;
        let attached = self.attached_to(&rec.id);
        if !attached.is_empty() {
            return Err(EngineError::Conflict(format!(
                "error while removing network: network {} id {} has active endpoints",
                rec.name, rec.id
            )));
        }
        self.db.delete_network(&rec.id)?;
        self.networks.forget(&rec.id);
        self.apply_firewall().await?;
        self.networks
            .netlink()
            .await?
            .delete_link(&rec.bridge)
            .await?;
        self.emit_network(&rec, "destroy", None);
        Ok(())
    }

    /// `POST /networks/prune`: user-defined networks without attached containers.
    pub async fn prune_networks(&self, filters: &Filters) -> Result<Vec<String>> {
        check_keys(filters, &["until", "label", "label!"])?;
        let until = until_of(filters)?;
        let mut deleted = Vec::new();
        for rec in self.networks.all() {
            if rec.predefined()
                || until.is_some_and(|u| rec.created > u)
                || !labels_pass(filters, &rec.labels.clone().into_iter().collect())
                || !self.attached_to(&rec.id).is_empty()
            {
                continue;
            }
            match self.remove_network(&rec.id).await {
                Ok(()) => deleted.push(rec.name),
                Err(e) => tracing::warn!(network = %rec.name, "prune: {e}"),
            }
        }
        deleted.sort();
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_network_name("my-net_1.x"));
        assert!(!valid_network_name("-x"));
        assert!(!valid_network_name("a b"));
        assert!(valid_ifname("br-0123456789a"));
        assert!(!valid_ifname("this-name-is-too-long"));
        assert!(!valid_ifname("a/b"));
    }
}

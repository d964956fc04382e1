//! What the engine persists about networks (one JSON record per network in the metadata DB) and
//! about a container's place on them (inside its ContainerRecord).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use chrono::{DateTime, Utc};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// The three networks every engine has, as dockerd.
pub const DEFAULT_BRIDGE: &str = "bridge";
pub const HOST: &str = "host";
pub const NONE: &str = "none";
/// The default network's Linux bridge.
pub const DEFAULT_BRIDGE_IFNAME: &str = "berth0";

/// dockerd's bridge driver options.
pub const OPT_BRIDGE_NAME: &str = "com.docker.network.bridge.name";
pub const OPT_ICC: &str = "com.docker.network.bridge.enable_icc";
pub const OPT_MASQUERADE: &str = "com.docker.network.bridge.enable_ip_masquerade";
pub const OPT_HOST_BINDING: &str = "com.docker.network.bridge.host_binding_ipv4";
pub const OPT_MTU: &str = "com.docker.network.driver.mtu";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubnetRecord {
    pub subnet: IpNet,
    pub gateway: IpAddr,
    #[serde(default)]
    pub ip_range: Option<IpNet>,
    #[serde(default)]
    pub aux: BTreeMap<String, IpAddr>,
    /// The user chose this subnet (only then may containers ask for a fixed `--ip`).
    #[serde(default)]
    pub configured: bool,
}

impl SubnetRecord {
    /// A subnet IPAM chose, with dockerd's default gateway (its first address).
    pub fn automatic(subnet: IpNet) -> Result<Self, berth_network::NetworkError> {
        Ok(SubnetRecord {
            subnet,
            gateway: berth_network::ipam::first_host(&subnet)?,
            ip_range: None,
            aux: BTreeMap::new(),
            configured: false,
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetworkRecord {
    pub id: String,
    pub name: String,
    /// `bridge`, `host` or `null`.
    pub driver: String,
    pub created: DateTime<Utc>,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub attachable: bool,
    #[serde(default)]
    pub enable_ipv6: bool,
    #[serde(default)]
    pub subnets: Vec<SubnetRecord>,
    #[serde(default)]
    pub ipam_options: BTreeMap<String, String>,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The Linux bridge (bridge driver only).
    #[serde(default)]
    pub bridge: String,
}

impl NetworkRecord {
    pub fn is_bridge(&self) -> bool {
        self.driver == "bridge"
    }

    /// `bridge`, `host` and `none` cannot be removed, and the default bridge has no DNS.
    pub fn predefined(&self) -> bool {
        matches!(self.name.as_str(), DEFAULT_BRIDGE | HOST | NONE)
    }

    pub fn user_defined_bridge(&self) -> bool {
        self.is_bridge() && !self.predefined()
    }

    fn flag(&self, key: &str, default: bool) -> bool {
        self.options
            .get(key)
            .map(|v| v.parse().unwrap_or(default))
            .unwrap_or(default)
    }

    pub fn icc(&self) -> bool {
        self.flag(OPT_ICC, true)
    }

    pub fn masquerade(&self) -> bool {
        self.flag(OPT_MASQUERADE, true)
    }

    pub fn mtu(&self) -> Option<u32> {
        self.options
            .get(OPT_MTU)
            .and_then(|v| v.parse().ok())
            .filter(|m| *m > 0)
    }

    pub fn v4(&self) -> Option<&SubnetRecord> {
        self.subnets.iter().find(|s| s.subnet.addr().is_ipv4())
    }

    pub fn v6(&self) -> Option<&SubnetRecord> {
        self.subnets.iter().find(|s| s.subnet.addr().is_ipv6())
    }
}

/// A container's membership of one network. The first group of fields is what the user asked
/// for; the second is filled while the container runs (dockerd also clears addresses on stop).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub network_id: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    /// `container:alias`, network-scoped (user-defined networks).
    #[serde(default)]
    pub links: Vec<String>,
    #[serde(default)]
    pub ipv4_static: Option<Ipv4Addr>,
    #[serde(default)]
    pub ipv6_static: Option<Ipv6Addr>,
    #[serde(default)]
    pub mac_static: Option<String>,
    #[serde(default)]
    pub driver_opts: BTreeMap<String, String>,
    #[serde(default)]
    pub gw_priority: i64,

    #[serde(default)]
    pub endpoint_id: String,
    #[serde(default)]
    pub ip: Option<IpNet>,
    #[serde(default)]
    pub ip6: Option<IpNet>,
    #[serde(default)]
    pub gateway: Option<IpAddr>,
    #[serde(default)]
    pub gateway6: Option<IpAddr>,
    #[serde(default)]
    pub mac: Option<String>,
    /// The veth's host end while attached.
    #[serde(default)]
    pub host_ifname: Option<String>,
    /// `eth0`, `eth1`, … in the container.
    #[serde(default)]
    pub ifname: Option<String>,
}

impl Endpoint {
    pub fn attached(&self) -> bool {
        self.host_ifname.is_some()
    }

    pub fn clear_live(&mut self) {
        self.endpoint_id.clear();
        self.ip = None;
        self.ip6 = None;
        self.gateway = None;
        self.gateway6 = None;
        self.mac = None;
        self.host_ifname = None;
        self.ifname = None;
    }
}

/// A port published while the container runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedPort {
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
    /// `0.0.0.0` for every address.
    pub host_ip: String,
    pub host_port: u16,
    pub container_port: u16,
}

impl PublishedPort {
    /// The address bound on the host; None for every address (`0.0.0.0`).
    pub fn host_addr(&self) -> Option<IpAddr> {
        self.host_ip
            .parse()
            .ok()
            .filter(|ip: &IpAddr| !ip.is_unspecified())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerNetwork {
    /// By network name, as `NetworkSettings.Networks`; the `NetworkMode` network first in
    /// attachment order (it gets eth0).
    #[serde(default)]
    pub endpoints: BTreeMap<String, Endpoint>,
    /// The order endpoints were attached in; names.
    #[serde(default)]
    pub order: Vec<String>,
    #[serde(default)]
    pub ports: Vec<PublishedPort>,
    /// The pinned network namespace while running.
    #[serde(default)]
    pub sandbox_key: Option<String>,
}

impl ContainerNetwork {
    /// Endpoints in attachment order, then any not attached yet by name.
    pub fn ordered(&self) -> Vec<(&String, &Endpoint)> {
        let mut out: Vec<(&String, &Endpoint)> = self
            .order
            .iter()
            .filter_map(|n| self.endpoints.get_key_value(n))
            .collect();
        for (n, e) in &self.endpoints {
            if !self.order.contains(n) {
                out.push((n, e));
            }
        }
        out
    }
}

//! Networks as dockerd has them: the predefined `bridge`, `host` and `none`, user-defined
//! bridge networks, and each container's endpoints, ports and embedded DNS. The kernel work is
//! `berth-network`'s; this module decides what to ask of it and keeps the records.

pub mod etc;
mod inspect;
pub mod manage;
pub mod names;
mod plan;
pub mod ports;
pub mod record;
mod sandbox;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock, RwLock};

use berth_network::dns::{DnsListener, DnsService};
use berth_network::firewall::{Firewall, NetworkRules, PortForward, Ruleset};
use berth_network::link::{BridgeSpec, Netlink};
use berth_network::ports::PortReservation;
use berth_network::NetworkError;
pub use record::{ContainerNetwork, Endpoint, NetworkRecord, PublishedPort};

use crate::error::{EngineError, Result};
use crate::Engine;

/// Berth's nftables table.
pub const FIREWALL_TABLE: &str = "berth";

/// Kernel resources a running container holds that die with the daemon and are re-created
/// when it comes back.
#[derive(Default)]
struct Live {
    reservations: Vec<PortReservation>,
    dns: Option<DnsListener>,
}

/// Network ID → (container ID, address) of veths being deleted.
type Releasing = HashMap<String, Vec<(String, std::net::IpAddr)>>;

pub struct Networks {
    records: RwLock<BTreeMap<String, NetworkRecord>>,
    netlink: tokio::sync::OnceCell<Netlink>,
    firewall: Arc<Firewall>,
    dns: OnceLock<DnsService>,
    live: std::sync::Mutex<HashMap<String, Live>>,
    /// Serialises address allocation, port reservation and firewall updates.
    lock: tokio::sync::Mutex<()>,
    /// Addresses of veths still being deleted, by network ID, with their container: not handed
    /// to another container until the kernel has removed the old interface, which takes ~20 ms
    /// we keep off `docker run --rm`.
    releasing: Arc<std::sync::Mutex<Releasing>>,
}

impl Default for Networks {
    fn default() -> Self {
        Networks {
            records: RwLock::default(),
            netlink: tokio::sync::OnceCell::new(),
            firewall: Arc::new(Firewall::new(FIREWALL_TABLE)),
            dns: OnceLock::new(),
            live: std::sync::Mutex::default(),
            lock: tokio::sync::Mutex::new(()),
            releasing: Arc::default(),
        }
    }
}

impl From<NetworkError> for EngineError {
    fn from(e: NetworkError) -> Self {
        match e {
            NetworkError::Invalid { .. } => EngineError::InvalidArgument(e.to_string()),
            NetworkError::PortAllocated { .. } => EngineError::Conflict(e.to_string()),
            NetworkError::Exhausted(m) => EngineError::Forbidden(m),
            other => EngineError::Internal(other.to_string()),
        }
    }
}

impl Networks {
    pub fn all(&self) -> Vec<NetworkRecord> {
        self.records
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    pub fn by_id(&self, id: &str) -> Option<NetworkRecord> {
        self.records
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    /// dockerd's lookup order: full ID, exact name, then a unique ID prefix.
    pub fn find(&self, key: &str) -> Result<NetworkRecord> {
        let recs = self.records.read().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = recs.get(key) {
            return Ok(r.clone());
        }
        if let Some(r) = recs.values().find(|r| r.name == key) {
            return Ok(r.clone());
        }
        let matches: Vec<&NetworkRecord> = recs
            .values()
            .filter(|r| !key.is_empty() && r.id.starts_with(key))
            .collect();
        match matches.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(EngineError::NotFound(format!("network {key} not found"))),
            _ => Err(EngineError::InvalidArgument(format!(
                "network {key} is ambiguous ({} matches found based on ID prefix)",
                matches.len()
            ))),
        }
    }

    fn insert(&self, rec: NetworkRecord) {
        self.records
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(rec.id.clone(), rec);
    }

    fn forget(&self, id: &str) {
        self.records
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    async fn netlink(&self) -> Result<&Netlink> {
        Ok(self.netlink.get_or_try_init(Netlink::connect).await?)
    }

    fn dns(&self) -> Result<&DnsService> {
        self.dns
            .get()
            .ok_or_else(|| EngineError::internal("the DNS service is not ready"))
    }

    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<String, Live>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn bridge_spec(rec: &NetworkRecord) -> BridgeSpec {
    BridgeSpec {
        name: rec.bridge.clone(),
        addresses: rec
            .subnets
            .iter()
            .filter_map(|s| ipnet::IpNet::new(s.gateway, s.subnet.prefix_len()).ok())
            .collect(),
        mtu: rec.mtu(),
    }
}

impl Engine {
    /// Whether the container has an interface on a user-defined bridge network: only those
    /// get the embedded DNS server (dockerd's rule).
    pub(crate) fn on_user_network(&self, rec: &crate::container::ContainerRecord) -> bool {
        rec.network.endpoints.values().any(|e| {
            e.attached()
                && self
                    .networks
                    .by_id(&e.network_id)
                    .is_some_and(|n| n.user_defined_bridge())
        })
    }

    /// At daemon start: loads the networks (creating the predefined ones on first start),
    /// makes sure their bridges exist, and gets the DNS service ready.
    pub(crate) async fn open_networks(self: &Arc<Self>) -> Result<()> {
        let names: Arc<dyn berth_network::dns::Names> =
            Arc::new(names::EngineNames::new(Arc::downgrade(self)));
        let _ = self.networks.dns.set(DnsService::new(names));
        for (id, json) in self.db.list_networks()? {
            match serde_json::from_str::<NetworkRecord>(&json) {
                Ok(r) => self.networks.insert(r),
                Err(e) => tracing::error!(network = %id, "unreadable network record, skipped: {e}"),
            }
        }
        self.create_predefined_networks().await?;
        if let Err(e) = self.bring_up_bridges().await {
            // The daemon still serves everything else; bridge containers fail with this error.
            tracing::error!("cannot set up bridge networks: {e}");
        }
        Ok(())
    }

    async fn bring_up_bridges(&self) -> Result<()> {
        let nl = self.networks.netlink().await?;
        let mut v6 = false;
        for rec in self.networks.all().iter().filter(|r| r.is_bridge()) {
            nl.ensure_bridge(&bridge_spec(rec)).await?;
            v6 |= rec.enable_ipv6;
        }
        berth_network::link::set_sysctl("net/ipv4/ip_forward", "1")?;
        if v6 {
            berth_network::link::set_sysctl("net/ipv6/conf/all/forwarding", "1")?;
        }
        Ok(())
    }

    /// The firewall as the networks and the running containers' ports need it.
    fn ruleset(&self) -> Ruleset {
        let nets = self.networks.all();
        let by_id: HashMap<&str, &NetworkRecord> =
            nets.iter().map(|n| (n.id.as_str(), n)).collect();
        let networks = nets
            .iter()
            .filter(|n| n.is_bridge())
            .map(|n| NetworkRules {
                bridge: n.bridge.clone(),
                subnets: n.subnets.iter().map(|s| s.subnet).collect(),
                internal: n.internal,
                masquerade: n.masquerade(),
                icc: n.icc(),
            })
            .collect();
        let mut ports = Vec::new();
        for h in self.containers.all() {
            let rec = h.snapshot();
            let Some((_, ep)) = rec.network.ordered().into_iter().next() else {
                continue;
            };
            let (Some(ip), Some(net)) = (ep.ip, by_id.get(ep.network_id.as_str())) else {
                continue;
            };
            for p in &rec.network.ports {
                ports.push(PortForward {
                    protocol: ports::protocol(&p.protocol),
                    host_ip: p.host_addr(),
                    host_port: p.host_port,
                    container_ip: ip.addr(),
                    container_port: p.container_port,
                    bridge: net.bridge.clone(),
                });
            }
        }
        Ruleset { networks, ports }
    }

    /// Rebuilds Berth's nftables table; the caller holds `networks.lock`.
    async fn apply_firewall(&self) -> Result<()> {
        let rules = self.ruleset();
        let fw = self.networks.firewall.clone();
        tokio::task::spawn_blocking(move || fw.apply(&rules))
            .await
            .map_err(EngineError::internal)??;
        Ok(())
    }

    /// After containers were recovered: the firewall for everything that runs, and the ports
    /// and DNS servers of running containers (their sockets died with the old daemon).
    pub(crate) async fn recover_networks(self: &Arc<Self>) {
        let _g = self.networks.lock.lock().await;
        if let Err(e) = self.apply_firewall().await {
            tracing::error!("cannot program the firewall: {e}");
        }
        for h in self.containers.all() {
            let rec = h.snapshot();
            if !rec.state.is_running() || rec.network.sandbox_key.is_none() {
                continue;
            }
            if let Err(e) = self.revive_sandbox(&rec).await {
                tracing::warn!(container = %rec.id, "cannot restore networking: {e}");
            }
        }
    }

    /// At daemon shutdown: with no container left running, nothing of Berth's stays in the
    /// kernel (bridges, rules). Running containers keep theirs so they stay reachable.
    pub async fn close_networks(&self) {
        if self
            .containers
            .all()
            .iter()
            .any(|h| h.snapshot().state.is_running())
        {
            tracing::info!("containers keep running: bridges and firewall rules stay");
            return;
        }
        let _g = self.networks.lock.lock().await;
        let fw = self.networks.firewall.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || fw.remove())
            .await
            .map_err(EngineError::internal)
            .and_then(|r| r.map_err(EngineError::from))
        {
            tracing::warn!("cannot remove the firewall table: {e}");
        }
        if let Ok(nl) = self.networks.netlink().await {
            for rec in self.networks.all().iter().filter(|r| r.is_bridge()) {
                if let Err(e) = nl.delete_link(&rec.bridge).await {
                    tracing::warn!(bridge = %rec.bridge, "cannot delete bridge: {e}");
                }
            }
        }
    }
}

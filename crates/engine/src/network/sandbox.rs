//! A container's network namespace and endpoints: set up before its process starts, torn down
//! when it exits, changed live by `network connect` and `disconnect`.

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_network::ipam;
use berth_network::link::Attachment;
use berth_network::netns;
use berth_network::ports::{reserve, PortReservation};
use berth_runtime::spec::NetworkMode;
use bollard_stubs::models::EndpointSettings;

use super::plan::plan_endpoint;
use ipnet::IpNet;

use super::ports::{requests, PortRequest};
use super::record::*;
use super::Live;
use crate::container::{ContainerRecord, Handle};
use crate::error::{EngineError, Result};
use crate::Engine;

fn random_hex(n: usize) -> String {
    crate::names::random_id()[..n].to_string()
}

impl Engine {
    fn netns_pin(&self, id: &str) -> PathBuf {
        self.cfg.exec_root.join("netns").join(id)
    }

    /// Addresses on `net` that a new endpoint must not take.
    fn used_addresses(&self, net: &NetworkRecord, except: &str) -> HashSet<IpAddr> {
        let mut used: HashSet<IpAddr> = net
            .subnets
            .iter()
            .flat_map(|s| std::iter::once(s.gateway).chain(s.aux.values().copied()))
            .collect();
        if let Some(held) = self
            .networks
            .releasing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&net.id)
        {
            // A container may take its own address again (a restart with a fixed `--ip`).
            used.extend(held.iter().filter(|(c, _)| c != except).map(|(_, ip)| *ip));
        }
        for h in self.containers.all() {
            let r = h.snapshot();
            if r.id == except {
                continue;
            }
            for ep in r
                .network
                .endpoints
                .values()
                .filter(|e| e.network_id == net.id)
            {
                used.extend(ep.ip.map(|i| i.addr()));
                used.extend(ep.ip6.map(|i| i.addr()));
                // A stopped container keeps its fixed address for its next start.
                used.extend(ep.ipv4_static.map(IpAddr::V4));
                used.extend(ep.ipv6_static.map(IpAddr::V6));
            }
        }
        used
    }

    fn pick_address(
        &self,
        net: &NetworkRecord,
        sub: &SubnetRecord,
        fixed: Option<IpAddr>,
        cid: &str,
    ) -> Result<IpNet> {
        let used = self.used_addresses(net, cid);
        let ip = match fixed {
            Some(ip) if used.contains(&ip) => {
                return Err(EngineError::Conflict(format!(
                    "Address already in use: {ip} on network {}",
                    net.name
                )))
            }
            Some(ip) => ip,
            None => ipam::allocate(&sub.subnet, sub.ip_range.as_ref(), &used)?,
        };
        IpNet::new(ip, sub.subnet.prefix_len()).map_err(EngineError::internal)
    }

    /// Allocates and plugs one endpoint into the namespace at `pin`; the caller holds
    /// `networks.lock`. Returns the endpoint with its live fields set.
    async fn plug(
        &self,
        rec: &ContainerRecord,
        net: &NetworkRecord,
        mut ep: Endpoint,
        pin: &Path,
        ifname: String,
        default_route: bool,
    ) -> Result<Endpoint> {
        let v4 = net.v4().ok_or_else(|| {
            EngineError::internal(format!("network {} has no IPv4 subnet", net.name))
        })?;
        let ip = self.pick_address(net, v4, ep.ipv4_static.map(IpAddr::V4), &rec.id)?;
        let ip6 = match net.v6().filter(|_| net.enable_ipv6) {
            Some(sub) => {
                Some(self.pick_address(net, sub, ep.ipv6_static.map(IpAddr::V6), &rec.id)?)
            }
            None => None,
        };
        let mac = match &ep.mac_static {
            Some(m) => ipam::parse_mac(m)?,
            None => match ip.addr() {
                IpAddr::V4(a) => ipam::mac_for(a),
                IpAddr::V6(_) => ipam::random_mac(),
            },
        };
        let route = default_route && !net.internal;
        let gateway = v4.gateway;
        let gateway6 = net.v6().filter(|_| net.enable_ipv6).map(|s| s.gateway);
        let host_ifname = format!("veth{}", random_hex(7));
        let attachment = Attachment {
            bridge: net.bridge.clone(),
            host_ifname: host_ifname.clone(),
            netns: pin.to_path_buf(),
            ifname: ifname.clone(),
            mac,
            addresses: std::iter::once(ip).chain(ip6).collect(),
            gateway4: match gateway {
                IpAddr::V4(g) if route => Some(g),
                _ => None,
            },
            gateway6: match gateway6 {
                Some(IpAddr::V6(g)) if route => Some(g),
                _ => None,
            },
            mtu: net.mtu(),
        };
        self.networks.netlink().await?.attach(&attachment).await?;
        ep.endpoint_id = crate::names::random_id();
        ep.ip = Some(ip);
        ep.ip6 = ip6;
        ep.gateway = Some(gateway);
        ep.gateway6 = gateway6;
        ep.mac = Some(ipam::format_mac(&mac));
        ep.host_ifname = Some(host_ifname);
        ep.ifname = Some(ifname);
        self.emit_network(net, "connect", Some(&rec.id));
        Ok(ep)
    }

    /// Makes the container's network before its process starts; returns where the runtime
    /// puts it. On error nothing is left behind.
    pub(crate) async fn network_up(self: &Arc<Self>, h: &Arc<Handle>) -> Result<NetworkMode> {
        let rec = h.snapshot();
        let mode = rec.host_config.network_mode.clone().unwrap_or_default();
        if mode == HOST {
            return Ok(NetworkMode::Host);
        }
        if let Some(other) = mode.strip_prefix("container:") {
            let o = self.containers.find(other)?.snapshot();
            if !o.state.is_running() || o.state.pid <= 0 {
                return Err(EngineError::Conflict(format!(
                    "cannot join network namespace of a non running container: {}",
                    o.id
                )));
            }
            return Ok(NetworkMode::Path(
                o.network
                    .sandbox_key
                    .clone()
                    .map(PathBuf::from)
                    .unwrap_or_else(|| PathBuf::from(format!("/proc/{}/ns/net", o.state.pid))),
            ));
        }
        let bridged: Vec<(String, Endpoint, NetworkRecord)> = rec
            .network
            .ordered()
            .into_iter()
            .filter_map(|(name, ep)| {
                let net = self.networks.by_id(&ep.network_id);
                match net {
                    Some(n) if n.is_bridge() => Some(Ok((name.clone(), ep.clone(), n))),
                    Some(_) => None,
                    None => Some(Err(EngineError::NotFound(format!(
                        "network {name} not found"
                    )))),
                }
            })
            .collect::<Result<_>>()?;
        if bridged.is_empty() {
            return Ok(NetworkMode::NewNamespace);
        }
        let pin = self.netns_pin(&rec.id);
        let p = pin.clone();
        tokio::task::spawn_blocking(move || netns::create(&p))
            .await
            .map_err(EngineError::internal)??;
        h.update(|r| r.network.sandbox_key = Some(pin.to_string_lossy().into_owned()));
        match self.plug_all(h, bridged, &pin).await {
            Ok(()) => Ok(NetworkMode::Path(pin)),
            Err(e) => {
                self.network_down(h).await;
                Err(e)
            }
        }
    }

    async fn plug_all(
        self: &Arc<Self>,
        h: &Arc<Handle>,
        eps: Vec<(String, Endpoint, NetworkRecord)>,
        pin: &Path,
    ) -> Result<()> {
        let _g = self.networks.lock.lock().await;
        let rec = h.snapshot();
        let mut routed = false;
        for (i, (name, ep, net)) in eps.into_iter().enumerate() {
            let route = !routed && !net.internal;
            routed |= route;
            let ep = self
                .plug(&rec, &net, ep, pin, format!("eth{i}"), route)
                .await?;
            h.update(|r| {
                r.network.endpoints.insert(name.clone(), ep.clone());
            });
        }
        let rec = h.snapshot();
        let mut live = Live::default();
        let published = self.publish_ports(&rec, &mut live)?;
        let had_ports = !published.is_empty();
        h.update(|r| r.network.ports = published);
        if had_ports {
            self.apply_firewall().await?;
        }
        live.dns = self.start_dns(&h.snapshot(), pin).await?;
        self.networks.live().insert(rec.id.clone(), live);
        Ok(())
    }

    /// Reserves the host ports the container asks for (the DNAT rules follow from the record).
    fn publish_ports(&self, rec: &ContainerRecord, live: &mut Live) -> Result<Vec<PublishedPort>> {
        let Some((_, primary)) = rec
            .network
            .ordered()
            .into_iter()
            .find(|(_, e)| e.ip.is_some())
        else {
            return Ok(Vec::new());
        };
        let net = self.networks.by_id(&primary.network_id);
        if net.as_ref().is_none_or(|n| n.internal) {
            return Ok(Vec::new());
        }
        let default_ip = net
            .and_then(|n| n.options.get(OPT_HOST_BINDING).cloned())
            .and_then(|v| v.parse().ok());
        let exposed: Vec<String> = rec.config.exposed_ports.clone().unwrap_or_default();
        let mut out = Vec::new();
        for req in requests(&rec.host_config, &exposed, default_ip)? {
            let r = self.reserve_one(&req).map_err(|e| {
                EngineError::Conflict(format!(
                    "driver failed programming external connectivity on endpoint {} ({}): {e}",
                    rec.name, primary.endpoint_id
                ))
            })?;
            out.push(PublishedPort {
                protocol: req.protocol.as_str().into(),
                host_ip: r
                    .host_ip
                    .map(|i| i.to_string())
                    .unwrap_or_else(|| "0.0.0.0".into()),
                host_port: r.port,
                container_port: req.container_port,
            });
            live.reservations.push(r);
        }
        Ok(out)
    }

    fn reserve_one(
        &self,
        req: &PortRequest,
    ) -> std::result::Result<PortReservation, berth_network::NetworkError> {
        let (lo, hi) = req.host_ports;
        let mut last = None;
        for port in lo..=hi {
            match reserve(req.protocol, req.host_ip, port) {
                Ok(r) => return Ok(r),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(berth_network::NetworkError::Exhausted(
            "no host port".into(),
        )))
    }

    /// The embedded DNS server, for containers on a user-defined network.
    async fn start_dns(
        &self,
        rec: &ContainerRecord,
        pin: &Path,
    ) -> Result<Option<berth_network::dns::DnsListener>> {
        if !self.on_user_network(rec) {
            return Ok(None);
        }
        Ok(Some(self.networks.dns()?.serve_in(&rec.id, pin).await?))
    }

    /// Tears the container's network down after its process ended (or its start failed).
    pub(crate) async fn network_down(&self, h: &Arc<Handle>) {
        let rec = h.snapshot();
        let live = self.networks.live().remove(&rec.id);
        if let Some(dns) = live.and_then(|l| l.dns) {
            // Its sockets hold the namespace: closed before the namespace goes.
            dns.close().await;
        }
        let attached: Vec<&Endpoint> = rec
            .network
            .endpoints
            .values()
            .filter(|e| e.attached())
            .collect();
        for ep in &attached {
            if let Some(net) = self.networks.by_id(&ep.network_id) {
                self.emit_network(&net, "disconnect", Some(&rec.id));
            }
        }
        if let (Ok(nl), false) = (self.networks.netlink().await, attached.is_empty()) {
            // Deleting a veth waits for the kernel (~20 ms): done in the background, with the
            // addresses held back from new endpoints until the interfaces are gone.
            let gone: Vec<(String, String, Vec<IpAddr>)> = attached
                .iter()
                .filter_map(|e| {
                    let ips = e.ip.iter().chain(e.ip6.iter()).map(|n| n.addr()).collect();
                    Some((e.host_ifname.clone()?, e.network_id.clone(), ips))
                })
                .collect();
            let releasing = self.networks.releasing.clone();
            {
                let mut r = releasing.lock().unwrap_or_else(|p| p.into_inner());
                for (_, net, ips) in &gone {
                    let held = ips.iter().map(|ip| (rec.id.clone(), *ip));
                    r.entry(net.clone()).or_default().extend(held);
                }
            }
            let (nl, id) = (nl.clone(), rec.id.clone());
            tokio::spawn(async move {
                for (ifname, net, ips) in gone {
                    if let Err(e) = nl.detach(&ifname).await {
                        tracing::warn!(container = %id, "cannot remove {ifname}: {e}");
                    }
                    let mut r = releasing.lock().unwrap_or_else(|p| p.into_inner());
                    if let Some(held) = r.get_mut(&net) {
                        held.retain(|(c, ip)| *c != id || !ips.contains(ip));
                    }
                }
            });
        }
        if let Some(pin) = &rec.network.sandbox_key {
            let pin = PathBuf::from(pin);
            let _ = tokio::task::spawn_blocking(move || netns::remove(&pin)).await;
        }
        let had_ports = !rec.network.ports.is_empty();
        h.update(|r| {
            r.network
                .endpoints
                .values_mut()
                .for_each(Endpoint::clear_live);
            r.network.ports.clear();
            r.network.sandbox_key = None;
        });
        if had_ports {
            let _g = self.networks.lock.lock().await;
            if let Err(e) = self.apply_firewall().await {
                tracing::warn!(container = %rec.id, "cannot update the firewall: {e}");
            }
        }
    }

    /// After a daemon restart: the port reservations and DNS server of a container that kept
    /// running (the kernel kept its interfaces and the firewall its rules).
    pub(crate) async fn revive_sandbox(&self, rec: &ContainerRecord) -> Result<()> {
        let mut live = Live::default();
        for p in &rec.network.ports {
            match reserve(
                super::ports::protocol(&p.protocol),
                p.host_addr(),
                p.host_port,
            ) {
                Ok(r) => live.reservations.push(r),
                Err(e) => tracing::warn!(container = %rec.id, "port {} is taken: {e}", p.host_port),
            }
        }
        if let Some(pin) = &rec.network.sandbox_key {
            live.dns = self.start_dns(rec, Path::new(pin)).await?;
        }
        self.networks.live().insert(rec.id.clone(), live);
        Ok(())
    }

    /// `POST /networks/{id}/connect`.
    pub async fn connect_container(
        self: &Arc<Self>,
        net_key: &str,
        container: &str,
        settings: Option<EndpointSettings>,
    ) -> Result<()> {
        let net = self.networks.find(net_key)?;
        let h = self.containers.find(container)?;
        let _lc = h.lifecycle.lock().await;
        let rec = h.snapshot();
        let mode = rec.host_config.network_mode.clone().unwrap_or_default();
        if mode == HOST || mode == NONE || mode.starts_with("container:") || !net.is_bridge() {
            return Err(EngineError::Forbidden(format!(
                "container cannot be connected to network {}: it uses network mode {mode}",
                net.name
            )));
        }
        if rec
            .network
            .endpoints
            .values()
            .any(|e| e.network_id == net.id)
        {
            return Err(EngineError::Forbidden(format!(
                "endpoint with name {} already exists in network {}",
                rec.name, net.name
            )));
        }
        let ep = plan_endpoint(&net, settings.as_ref())?;
        let pin = rec
            .network
            .sandbox_key
            .clone()
            .filter(|_| rec.state.is_running());
        let Some(pin) = pin else {
            h.update(|r| {
                r.network.endpoints.insert(net.name.clone(), ep);
                r.network.order.push(net.name.clone());
            });
            self.persist(&h)?;
            return Ok(());
        };
        let _g = self.networks.lock.lock().await;
        let ifname = format!(
            "eth{}",
            rec.network
                .endpoints
                .values()
                .filter(|e| e.attached())
                .count()
        );
        let ep = self
            .plug(&rec, &net, ep, Path::new(&pin), ifname, false)
            .await?;
        h.update(|r| {
            r.network.endpoints.insert(net.name.clone(), ep);
            if !r.network.order.contains(&net.name) {
                r.network.order.push(net.name.clone());
            }
        });
        let rec = h.snapshot();
        let needs_dns = self
            .networks
            .live()
            .get(&rec.id)
            .is_none_or(|l| l.dns.is_none());
        if needs_dns {
            if let Some(dns) = self.start_dns(&rec, Path::new(&pin)).await? {
                self.networks.live().entry(rec.id.clone()).or_default().dns = Some(dns);
            }
        }
        self.persist(&h)?;
        Ok(())
    }

    /// `POST /networks/{id}/disconnect`.
    pub async fn disconnect_container(
        &self,
        net_key: &str,
        container: &str,
        _force: bool,
    ) -> Result<()> {
        let net = self.networks.find(net_key)?;
        let h = self.containers.find(container)?;
        let _lc = h.lifecycle.lock().await;
        let rec = h.snapshot();
        let Some((name, ep)) = rec
            .network
            .endpoints
            .iter()
            .find(|(_, e)| e.network_id == net.id)
        else {
            return Err(EngineError::Forbidden(format!(
                "container {} is not connected to network {}",
                rec.id, net.name
            )));
        };
        if let Some(ifname) = &ep.host_ifname {
            let _g = self.networks.lock.lock().await;
            self.networks.netlink().await?.detach(ifname).await?;
            self.emit_network(&net, "disconnect", Some(&rec.id));
        }
        let name = name.clone();
        h.update(|r| {
            r.network.endpoints.remove(&name);
            r.network.order.retain(|n| n != &name);
        });
        let still_dns = self.on_user_network(&h.snapshot());
        if !still_dns {
            let dns = self
                .networks
                .live()
                .get_mut(&rec.id)
                .and_then(|l| l.dns.take());
            if let Some(dns) = dns {
                dns.close().await;
            }
        }
        self.persist(&h)?;
        Ok(())
    }
}

//! Bridges, veth pairs, addresses and routes through rtnetlink.

use std::collections::BTreeSet;
use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use futures_util::TryStreamExt;
use ipnet::IpNet;
use netlink_packet_route::address::{AddressAttribute, AddressHeaderFlags, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol,
};
use rtnetlink::{Handle, LinkBridge, LinkBridgePort, LinkUnspec, LinkVeth, RouteMessageBuilder};

use crate::error::{NetworkError, Result};

/// A Linux bridge for one network; its addresses are the network's gateways with their prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeSpec {
    pub name: String,
    pub addresses: Vec<IpNet>,
    pub mtu: Option<u32>,
}

/// One container's interface on one network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub bridge: String,
    /// Name of the host end, e.g. `veth1a2b3c4` (at most 15 bytes).
    pub host_ifname: String,
    /// The container's namespace (a pin file or `/proc/<pid>/ns/net`).
    pub netns: PathBuf,
    /// Name inside the container: `eth0`, `eth1`, …
    pub ifname: String,
    pub mac: [u8; 6],
    /// The container's addresses with the network's prefix length.
    pub addresses: Vec<IpNet>,
    /// Default routes go through these; None on `--internal` networks and on secondary
    /// attachments that must not replace the first network's default route.
    pub gateway4: Option<Ipv4Addr>,
    pub gateway6: Option<Ipv6Addr>,
    pub mtu: Option<u32>,
}

/// An rtnetlink connection in the daemon's namespace.
#[derive(Clone)]
pub struct Netlink {
    handle: Handle,
}

impl Netlink {
    /// Opens the connection; its driver task runs on the current tokio runtime.
    pub async fn connect() -> Result<Netlink> {
        let (connection, handle, _) = rtnetlink::new_connection()
            .map_err(|e| NetworkError::Netlink(format!("open rtnetlink socket: {e}")))?;
        tokio::spawn(connection);
        Ok(Netlink { handle })
    }

    /// Creates the bridge if it is missing, adds any missing address, sets it up, and sets
    /// `route_localnet=1` on it (so DNAT from the host's 127.0.0.1 can leave through it).
    pub async fn ensure_bridge(&self, bridge: &BridgeSpec) -> Result<()> {
        check_ifname(&bridge.name)?;
        if find_link(&self.handle, &bridge.name).await?.is_none() {
            self.create_bridge(bridge).await?;
        }
        let link = find_link(&self.handle, &bridge.name)
            .await?
            .ok_or_else(|| NetworkError::Netlink(format!("bridge {} vanished", bridge.name)))?;
        if !is_bridge(&link) {
            return Err(NetworkError::Invalid {
                what: "bridge",
                value: format!("{} exists and is not a bridge", bridge.name),
            });
        }
        self.bring_up(&link, bridge).await?;
        for net in &bridge.addresses {
            add_address(&self.handle, link.header.index, *net).await?;
        }
        set_sysctl(
            &format!("net/ipv4/conf/{}/route_localnet", bridge.name),
            "1",
        )
    }

    async fn create_bridge(&self, bridge: &BridgeSpec) -> Result<()> {
        // A bridge without a MAC of its own takes the lowest MAC of its ports, so its address
        // would change as containers come and go and stale the containers' ARP entries for
        // the gateway (Docker sets one for the same reason).
        let mut builder = LinkBridge::new(&bridge.name)
            .address(random_mac().to_vec())
            .up();
        if let Some(mtu) = bridge.mtu {
            builder = builder.mtu(mtu);
        }
        match self.handle.link().add(builder.build()).execute().await {
            Err(e) if errno(&e) != Some(libc::EEXIST) => {
                Err(nl_error(&format!("create bridge {}", bridge.name), e))
            }
            // EEXIST: another caller made it in between; it is checked like any other.
            _ => Ok(()),
        }
    }

    /// Sets an existing bridge up and to the wanted MTU, when it is not already.
    async fn bring_up(&self, link: &LinkMessage, bridge: &BridgeSpec) -> Result<()> {
        let mtu_ok = bridge.mtu.is_none_or(|want| link_mtu(link) == Some(want));
        if mtu_ok && link.header.flags.contains(LinkFlags::Up) {
            return Ok(());
        }
        let mut builder = LinkUnspec::new_with_index(link.header.index).up();
        if let Some(mtu) = bridge.mtu {
            builder = builder.mtu(mtu);
        }
        self.handle
            .link()
            .change(builder.build())
            .execute()
            .await
            .map_err(|e| nl_error(&format!("set bridge {} up", bridge.name), e))
    }

    /// Deletes a link by name; a missing link is not an error.
    pub async fn delete_link(&self, name: &str) -> Result<()> {
        check_ifname(name)?;
        let request = LinkUnspec::new_with_name(name).build();
        match self.handle.link().del_with_message(request).execute().await {
            Err(e) if errno(&e) != Some(libc::ENODEV) => {
                Err(nl_error(&format!("delete link {name}"), e))
            }
            _ => Ok(()),
        }
    }

    pub async fn link_exists(&self, name: &str) -> Result<bool> {
        check_ifname(name)?;
        Ok(find_link(&self.handle, name).await?.is_some())
    }

    /// Creates the veth pair, enslaves the host end to the bridge with hairpin mode on, moves
    /// the peer into the container's namespace, and there renames it, sets MAC, MTU and
    /// addresses, sets it up and adds the default routes. On error nothing is left behind.
    ///
    /// The peer is created directly in the container's namespace under its final name, MAC
    /// and MTU, so the container side only sets it up and adds addresses and routes.
    pub async fn attach(&self, a: &Attachment) -> Result<()> {
        check_ifname(&a.host_ifname)?;
        check_ifname(&a.ifname)?;
        // Joining a namespace takes a thread of its own; the socket inside the container's
        // namespace is opened on it while the veth pair is being created.
        let inner_ns = a.netns.clone();
        let inner = tokio::task::spawn_blocking(move || connect_in(&inner_ns));
        let bridge = find_link(&self.handle, &a.bridge)
            .await?
            .ok_or_else(|| NetworkError::Netlink(format!("bridge {} not found", a.bridge)))?;
        let netns = File::open(&a.netns).map_err(|e| ns_error(&a.netns, e))?;
        self.handle
            .link()
            .add(veth_message(a, bridge.header.index, &netns))
            .execute()
            .await
            .map_err(|e| nl_error(&format!("create veth {}", a.host_ifname), e))?;
        let container = async {
            let (connection, handle) = inner.await.map_err(|e| {
                NetworkError::Netlink(format!(
                    "open rtnetlink socket in {}: {e}",
                    a.netns.display()
                ))
            })??;
            configure_container(a, connection, handle).await
        };
        let configured = futures_util::try_join!(self.set_hairpin(&a.host_ifname), container);
        if let Err(e) = configured {
            if let Err(cleanup) = self.delete_link(&a.host_ifname).await {
                tracing::warn!(link = %a.host_ifname, error = %cleanup, "veth left behind");
            }
            return Err(e);
        }
        Ok(())
    }

    /// Lets a container reach itself through the bridge (published port on the host address
    /// DNATed back to the same container), like `bridge link set dev X hairpin on`.
    async fn set_hairpin(&self, port: &str) -> Result<()> {
        let message = LinkBridgePort::new(0).name(port).hairpin(true).build();
        self.handle
            .link()
            .set_port(message)
            .execute()
            .await
            .map_err(|e| nl_error(&format!("set hairpin on {port}"), e))
    }

    /// Removes a container's interface by deleting its host end (the kernel deletes the peer).
    pub async fn detach(&self, host_ifname: &str) -> Result<()> {
        self.delete_link(host_ifname).await
    }

    /// Destination prefixes of the routes in the main table (IPv4 and IPv6) and the addresses
    /// on every interface, so IPAM never picks a subnet that overlaps the host's networks.
    pub async fn host_prefixes(&self) -> Result<Vec<IpNet>> {
        let mut nets = BTreeSet::new();
        let dumps = [
            RouteMessageBuilder::<Ipv4Addr>::new().build(),
            RouteMessageBuilder::<Ipv6Addr>::new().build(),
        ];
        for request in dumps {
            let routes: Vec<RouteMessage> = self
                .handle
                .route()
                .get(request)
                .execute()
                .try_collect()
                .await
                .map_err(|e| nl_error("list routes", e))?;
            nets.extend(
                routes
                    .iter()
                    .filter(|r| r.header.table == RouteHeader::RT_TABLE_MAIN)
                    .filter_map(route_prefix),
            );
        }
        let addresses: Vec<AddressMessage> = self
            .handle
            .address()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|e| nl_error("list addresses", e))?;
        nets.extend(addresses.iter().filter_map(address_prefix));
        Ok(nets.into_iter().filter(overlap_matters).collect())
    }
}

/// Writes a value under /proc/sys in the current network namespace, e.g.
/// `set_sysctl("net/ipv4/ip_forward", "1")`.
pub fn set_sysctl(key: &str, value: &str) -> Result<()> {
    let safe = !key.is_empty()
        && key
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..");
    if !safe {
        return Err(NetworkError::Invalid {
            what: "sysctl key",
            value: key.to_string(),
        });
    }
    std::fs::write(Path::new("/proc/sys").join(key), value).map_err(|source| NetworkError::Sysctl {
        key: key.to_string(),
        source,
    })
}

/// Sets the container's addresses and default routes through a connection opened inside its
/// namespace; the connection is driven here and closed on return, so no socket keeps the
/// namespace alive.
async fn configure_container(a: &Attachment, connection: Connection, handle: Handle) -> Result<()> {
    let work = async move {
        let index = find_link(&handle, &a.ifname)
            .await?
            .ok_or_else(|| {
                NetworkError::Netlink(format!("{} missing in {}", a.ifname, a.netns.display()))
            })?
            .header
            .index;
        // Up first: IPv4 refuses a gateway route through a device that is down.
        handle
            .link()
            .change(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(|e| nl_error(&format!("set {} up", a.ifname), e))?;
        for net in &a.addresses {
            add_address(&handle, index, *net).await?;
        }
        if let Some(gateway) = a.gateway4 {
            let route = RouteMessageBuilder::<Ipv4Addr>::new()
                .output_interface(index)
                .gateway(gateway)
                .protocol(RouteProtocol::Boot)
                .build();
            add_route(&handle, route, IpAddr::V4(gateway)).await?;
        }
        if let Some(gateway) = a.gateway6 {
            let route = RouteMessageBuilder::<Ipv6Addr>::new()
                .output_interface(index)
                .gateway(gateway)
                .protocol(RouteProtocol::Boot)
                .build();
            add_route(&handle, route, IpAddr::V6(gateway)).await?;
        }
        Ok(())
    };
    tokio::select! {
        result = work => result,
        () = connection => Err(NetworkError::Netlink(format!(
            "rtnetlink connection in {} closed", a.netns.display()
        ))),
    }
}

type Connection = rtnetlink::proto::Connection<netlink_packet_route::RouteNetlinkMessage>;

/// Opens an rtnetlink socket inside the namespace at `ns`: a socket belongs to the namespace
/// of the thread that creates it, so a throwaway thread joins the namespace to create it and
/// registers it with the caller's runtime. Blocking: it waits for that thread.
fn connect_in(ns: &Path) -> Result<(Connection, Handle)> {
    let runtime = tokio::runtime::Handle::current();
    let (connection, handle, _) = crate::netns::run_in(ns, move || {
        let _entered = runtime.enter();
        rtnetlink::new_connection()
    })?
    .map_err(|e| {
        NetworkError::Netlink(format!("open rtnetlink socket in {}: {e}", ns.display()))
    })?;
    Ok((connection, handle))
}

/// The host end named `host_ifname`, up and enslaved to the bridge; the peer created straight
/// in the container's namespace with its final name, MAC and MTU. (The peer cannot be set up
/// here: the kernel answers ENOTCONN to an up flag on the peer.)
fn veth_message(a: &Attachment, bridge: u32, netns: &File) -> LinkMessage {
    let mut peer = LinkUnspec::new_with_name(&a.ifname)
        .address(a.mac.to_vec())
        .setns_by_fd(netns.as_raw_fd());
    let mut host = LinkVeth::new(&a.host_ifname, &a.ifname)
        .controller(bridge)
        .up();
    if let Some(mtu) = a.mtu {
        peer = peer.mtu(mtu);
        host = host.mtu(mtu);
    }
    host.set_info_data(InfoData::Veth(InfoVeth::Peer(peer.build())))
        .build()
}

/// Adds an address; one already there is kept. IPv6 addresses skip duplicate address
/// detection so they are usable at once instead of staying tentative for a second or more.
async fn add_address(handle: &Handle, index: u32, net: IpNet) -> Result<()> {
    let mut request = handle.address().add(index, net.addr(), net.prefix_len());
    if net.addr().is_ipv6() {
        request.message_mut().header.flags |= AddressHeaderFlags::Nodad;
    }
    match request.execute().await {
        Err(e) if errno(&e) != Some(libc::EEXIST) => {
            Err(nl_error(&format!("add address {net}"), e))
        }
        _ => Ok(()),
    }
}

async fn add_route(handle: &Handle, route: RouteMessage, gateway: IpAddr) -> Result<()> {
    handle
        .route()
        .add(route)
        .execute()
        .await
        .map_err(|e| nl_error(&format!("add default route via {gateway}"), e))
}

async fn find_link(handle: &Handle, name: &str) -> Result<Option<LinkMessage>> {
    // Drained to the end so the connection never forwards to a dropped receiver.
    let found: std::result::Result<Vec<LinkMessage>, _> = handle
        .link()
        .get()
        .match_name(name)
        .execute()
        .try_collect()
        .await;
    match found {
        Ok(links) => Ok(links.into_iter().next()),
        Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(None),
        Err(e) => Err(nl_error(&format!("get link {name}"), e)),
    }
}

fn is_bridge(link: &LinkMessage) -> bool {
    link.attributes.iter().any(|attr| match attr {
        LinkAttribute::LinkInfo(infos) => infos
            .iter()
            .any(|info| matches!(info, LinkInfo::Kind(InfoKind::Bridge))),
        _ => false,
    })
}

fn link_mtu(link: &LinkMessage) -> Option<u32> {
    link.attributes.iter().find_map(|attr| match attr {
        LinkAttribute::Mtu(mtu) => Some(*mtu),
        _ => None,
    })
}

fn route_prefix(route: &RouteMessage) -> Option<IpNet> {
    let ip = route.attributes.iter().find_map(|attr| match attr {
        RouteAttribute::Destination(RouteAddress::Inet(ip)) => Some(IpAddr::V4(*ip)),
        RouteAttribute::Destination(RouteAddress::Inet6(ip)) => Some(IpAddr::V6(*ip)),
        _ => None,
    })?;
    IpNet::new(ip, route.header.destination_prefix_length)
        .ok()
        .map(|net| net.trunc())
}

fn address_prefix(address: &AddressMessage) -> Option<IpNet> {
    // IFA_ADDRESS: on point-to-point links it is the peer, whose prefix is the reachable one.
    let ip = address.attributes.iter().find_map(|attr| match attr {
        AddressAttribute::Address(ip) => Some(*ip),
        _ => None,
    })?;
    IpNet::new(ip, address.header.prefix_len)
        .ok()
        .map(|net| net.trunc())
}

/// Default routes would overlap everything, and IPv6 link-local prefixes exist on every link
/// without ever being picked by IPAM.
fn overlap_matters(net: &IpNet) -> bool {
    match net {
        IpNet::V4(v4) => v4.prefix_len() > 0,
        IpNet::V6(v6) => v6.prefix_len() > 0 && !v6.addr().is_unicast_link_local(),
    }
}

/// Checked here so a bad name is reported as such instead of as a kernel EINVAL or ERANGE.
fn check_ifname(name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name.len() < libc::IFNAMSIZ
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace());
    if valid {
        Ok(())
    } else {
        Err(NetworkError::Invalid {
            what: "interface name",
            value: name.to_string(),
        })
    }
}

/// A random unicast, locally administered MAC.
fn random_mac() -> [u8; 6] {
    let mut mac: [u8; 6] = rand::random();
    mac[0] = (mac[0] & 0xfe) | 0x02;
    mac
}

fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(message) => Some(-message.raw_code()),
        _ => None,
    }
}

fn nl_error(what: &str, e: rtnetlink::Error) -> NetworkError {
    let detail = match &e {
        rtnetlink::Error::NetlinkError(message) => message.to_io().to_string(),
        other => other.to_string(),
    };
    NetworkError::Netlink(format!("{what}: {detail}"))
}

fn ns_error(path: &Path, source: std::io::Error) -> NetworkError {
    NetworkError::Namespace {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::process::Command;
    use std::time::{Duration, Instant};

    use serde_json::Value;

    use super::*;
    use crate::netns;

    const BRIDGE: &str = "brtest0";

    /// Throwaway namespaces pinned in a temp dir, unpinned on drop even when a test fails; the
    /// links in them die with them.
    struct Lab {
        dir: tempfile::TempDir,
        pins: Vec<PathBuf>,
    }

    impl Lab {
        fn new() -> Lab {
            Lab {
                dir: tempfile::tempdir().expect("temp dir"),
                pins: Vec::new(),
            }
        }

        fn ns(&mut self, name: &str) -> PathBuf {
            let pin = self.dir.path().join(name);
            netns::create(&pin).expect("create namespace");
            self.pins.push(pin.clone());
            pin
        }
    }

    impl Drop for Lab {
        fn drop(&mut self) {
            for pin in &self.pins {
                let _ = netns::remove(pin);
            }
        }
    }

    /// Runs `body` on a thread inside `ns`, on a runtime of its own, so the rtnetlink
    /// connection it opens lives in that namespace.
    fn in_ns<T, F, Fut>(ns: &Path, body: F) -> T
    where
        T: Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T>,
    {
        netns::run_in(ns, move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(body())
        })
        .expect("test body in namespace")
    }

    fn nsenter(ns: &Path, args: &[&str]) -> std::process::Output {
        Command::new("nsenter")
            .arg(format!("--net={}", ns.display()))
            .args(args)
            .output()
            .expect("nsenter")
    }

    /// `ip -j <args>` inside `ns`, as JSON; None when ip fails (e.g. a missing device).
    fn ip_json(ns: &Path, args: &[&str]) -> Option<Value> {
        let out = nsenter(ns, &[&["ip", "-j"], args].concat());
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).expect("ip -j output"))
    }

    fn ip(ns: &Path, args: &[&str]) {
        let out = nsenter(ns, &[&["ip"], args].concat());
        assert!(out.status.success(), "ip {args:?}: {out:?}");
    }

    fn ping(ns: &Path, to: &str) -> bool {
        nsenter(ns, &["/bin/busybox", "ping", "-c1", "-W2", to])
            .status
            .success()
    }

    /// The global addresses of `dev` as `addr/len`, with whether any is still tentative.
    fn addresses(ns: &Path, dev: &str) -> (Vec<String>, bool) {
        let json = ip_json(ns, &["addr", "show", "dev", dev]).expect("device present");
        let infos = json[0]["addr_info"].as_array().cloned().unwrap_or_default();
        let global: Vec<&Value> = infos.iter().filter(|i| i["scope"] == "global").collect();
        let mut list: Vec<String> = global
            .iter()
            .map(|i| format!("{}/{}", i["local"].as_str().unwrap_or(""), i["prefixlen"]))
            .collect();
        list.sort();
        let tentative = global.iter().any(|i| i["tentative"] == true);
        (list, tentative)
    }

    fn link_json(ns: &Path, dev: &str) -> Option<Value> {
        ip_json(ns, &["-d", "link", "show", "dev", dev]).map(|j| j[0].clone())
    }

    fn is_up(link: &Value) -> bool {
        link["flags"]
            .as_array()
            .is_some_and(|flags| flags.iter().any(|f| f == "UP"))
    }

    fn net(s: &str) -> IpNet {
        s.parse().expect("test prefix")
    }

    fn bridge_spec() -> BridgeSpec {
        BridgeSpec {
            name: BRIDGE.into(),
            addresses: vec![net("172.30.0.1/24"), net("fd30::1/64")],
            mtu: Some(1400),
        }
    }

    fn attachment(netns: &Path, n: u8) -> Attachment {
        Attachment {
            bridge: BRIDGE.into(),
            host_ifname: format!("vethtest{n}"),
            netns: netns.to_path_buf(),
            ifname: "eth0".into(),
            mac: [0x02, 0x42, 0xac, 0x1e, 0x00, n],
            addresses: vec![
                net(&format!("172.30.0.{n}/24")),
                net(&format!("fd30::{n}/64")),
            ],
            gateway4: Some(Ipv4Addr::new(172, 30, 0, 1)),
            gateway6: Some("fd30::1".parse().expect("v6")),
            mtu: Some(1400),
        }
    }

    #[test]
    fn ensure_bridge_is_idempotent() {
        let mut lab = Lab::new();
        let host = lab.ns("host");
        let localnet = in_ns(&host, || async {
            let nl = Netlink::connect().await.expect("connect");
            assert!(!nl.link_exists(BRIDGE).await.expect("exists"));
            nl.ensure_bridge(&bridge_spec()).await.expect("create");
            nl.ensure_bridge(&bridge_spec()).await.expect("again");
            let mut more = bridge_spec();
            more.addresses.push(net("172.31.0.1/24"));
            nl.ensure_bridge(&more)
                .await
                .expect("with one more address");
            assert!(nl.link_exists(BRIDGE).await.expect("exists"));
            let mut not_bridge = bridge_spec();
            not_bridge.name = "lo".into();
            let err = nl
                .ensure_bridge(&not_bridge)
                .await
                .expect_err("lo is no bridge");
            assert!(matches!(err, NetworkError::Invalid { .. }), "{err}");
            std::fs::read_to_string(format!("/proc/sys/net/ipv4/conf/{BRIDGE}/route_localnet"))
                .expect("route_localnet")
        });
        assert_eq!(localnet.trim(), "1");
        let link = link_json(&host, BRIDGE).expect("bridge");
        assert_eq!(link["linkinfo"]["info_kind"], "bridge");
        assert_eq!(link["mtu"], 1400);
        assert!(is_up(&link));
        let (addrs, tentative) = addresses(&host, BRIDGE);
        assert_eq!(addrs, ["172.30.0.1/24", "172.31.0.1/24", "fd30::1/64"]);
        assert!(!tentative, "IPv6 gateway address usable at once");

        // A bridge found down (e.g. after `ip link set down`) is brought back up.
        ip(&host, &["link", "set", BRIDGE, "down"]);
        in_ns(&host, || async {
            let nl = Netlink::connect().await.expect("connect");
            nl.ensure_bridge(&bridge_spec()).await.expect("again");
        });
        assert!(is_up(&link_json(&host, BRIDGE).expect("bridge")));
    }

    #[test]
    fn attach_configures_the_container_and_detach_removes_both_ends() {
        let mut lab = Lab::new();
        let host = lab.ns("host");
        let ctr = lab.ns("ctr");
        let a = attachment(&ctr, 2);
        let spec = a.clone();
        in_ns(&host, move || async move {
            let nl = Netlink::connect().await.expect("connect");
            nl.ensure_bridge(&bridge_spec()).await.expect("bridge");
            nl.attach(&spec).await.expect("attach");
        });

        let eth0 = link_json(&ctr, "eth0").expect("eth0 in the container");
        assert_eq!(eth0["address"], "02:42:ac:1e:00:02");
        assert_eq!(eth0["mtu"], 1400);
        assert!(is_up(&eth0));
        let (addrs, tentative) = addresses(&ctr, "eth0");
        assert_eq!(addrs, ["172.30.0.2/24", "fd30::2/64"]);
        assert!(!tentative, "IPv6 address usable at once");
        let v4 = ip_json(&ctr, &["route", "show", "default"]).expect("routes");
        assert_eq!(v4[0]["gateway"], "172.30.0.1", "{v4}");
        assert_eq!(v4[0]["dev"], "eth0");
        let v6 = ip_json(&ctr, &["-6", "route", "show", "default"]).expect("routes");
        assert_eq!(v6[0]["gateway"], "fd30::1", "{v6}");

        let port = link_json(&host, "vethtest2").expect("host end");
        assert_eq!(port["master"], BRIDGE);
        assert_eq!(port["mtu"], 1400);
        assert!(is_up(&port));
        assert_eq!(
            port["linkinfo"]["info_slave_data"]["hairpin"], true,
            "{port}"
        );

        in_ns(&host, || async {
            let nl = Netlink::connect().await.expect("connect");
            nl.detach("vethtest2").await.expect("detach");
            assert!(!nl.link_exists("vethtest2").await.expect("exists"));
            nl.detach("vethtest2")
                .await
                .expect("detach of a missing link");
        });
        assert!(
            link_json(&ctr, "eth0").is_none(),
            "peer deleted with the host end"
        );
    }

    #[test]
    fn containers_on_the_bridge_reach_each_other_and_the_gateway() {
        let mut lab = Lab::new();
        let host = lab.ns("host");
        let (c1, c2) = (lab.ns("c1"), lab.ns("c2"));
        let (a1, a2) = (attachment(&c1, 2), attachment(&c2, 3));
        in_ns(&host, move || async move {
            let nl = Netlink::connect().await.expect("connect");
            nl.ensure_bridge(&bridge_spec()).await.expect("bridge");
            nl.attach(&a1).await.expect("attach c1");
            nl.attach(&a2).await.expect("attach c2");
        });
        assert!(ping(&c1, "172.30.0.3"), "c1 -> c2");
        assert!(ping(&c2, "172.30.0.2"), "c2 -> c1");
        assert!(ping(&c1, "fd30::3"), "c1 -> c2 over IPv6");
        assert!(ping(&c1, "172.30.0.1"), "c1 -> gateway");
        assert!(ping(&host, "172.30.0.3"), "host -> c2");
    }

    #[test]
    fn a_failed_attach_leaves_nothing_behind() {
        let mut lab = Lab::new();
        let host = lab.ns("host");
        let ctr = lab.ns("ctr");
        let ctr_in = ctr.clone();
        in_ns(&host, move || async move {
            let nl = Netlink::connect().await.expect("connect");
            let no_bridge = nl.attach(&attachment(&ctr_in, 2)).await;
            assert!(no_bridge.is_err(), "no bridge yet");
            nl.ensure_bridge(&bridge_spec()).await.expect("bridge");

            let mut unreachable = attachment(&ctr_in, 2);
            unreachable.gateway4 = Some(Ipv4Addr::new(10, 9, 9, 9));
            let err = nl
                .attach(&unreachable)
                .await
                .expect_err("gateway off the subnet");
            assert!(matches!(err, NetworkError::Netlink(_)), "{err}");
            assert!(!nl.link_exists("vethtest2").await.expect("exists"));

            let mut taken = attachment(&ctr_in, 2);
            taken.ifname = "lo".into();
            nl.attach(&taken)
                .await
                .expect_err("name taken in the container");
            assert!(!nl.link_exists("vethtest2").await.expect("exists"));

            let mut long = attachment(&ctr_in, 2);
            long.host_ifname = "a-name-longer-than-15".into();
            let err = nl.attach(&long).await.expect_err("name too long");
            assert!(matches!(err, NetworkError::Invalid { .. }), "{err}");
        });
        assert!(
            link_json(&ctr, "eth0").is_none(),
            "nothing left in the container"
        );
    }

    #[test]
    fn host_prefixes_cover_routes_and_addresses() {
        let mut lab = Lab::new();
        let host = lab.ns("host");
        let prefixes = in_ns(&host, || async {
            let nl = Netlink::connect().await.expect("connect");
            nl.ensure_bridge(&bridge_spec()).await.expect("bridge");
            // `ip` here runs in this namespace: the thread's namespace is inherited.
            let out = Command::new("ip")
                .args(["route", "add", "198.51.100.0/24", "dev", BRIDGE])
                .output()
                .expect("ip route add");
            assert!(out.status.success(), "{out:?}");
            nl.host_prefixes().await.expect("prefixes")
        });
        for want in [
            "172.30.0.0/24",
            "fd30::/64",
            "198.51.100.0/24",
            "127.0.0.0/8",
        ] {
            assert!(prefixes.contains(&net(want)), "{want} in {prefixes:?}");
        }
        assert!(prefixes.iter().all(|p| p.prefix_len() > 0), "{prefixes:?}");
        assert!(!prefixes.contains(&net("fe80::/64")), "{prefixes:?}");
    }

    #[test]
    fn sysctl_keys_stay_under_proc_sys() {
        for key in ["", "/etc/passwd", "net/../../etc/passwd", "net//ipv4"] {
            let err = set_sysctl(key, "1").expect_err(key);
            assert!(matches!(err, NetworkError::Invalid { .. }), "{key}: {err}");
        }
    }

    /// `docker run` waits for attach: it must take a few milliseconds. Run with --nocapture
    /// to see the figures.
    #[test]
    fn attach_is_fast() {
        const ROUNDS: usize = 20;
        let mut lab = Lab::new();
        let host = lab.ns("host");
        let ctr = lab.ns("ctr");
        let (mut attach, mut detach) = in_ns(&host, move || async move {
            let nl = Netlink::connect().await.expect("connect");
            nl.ensure_bridge(&bridge_spec()).await.expect("bridge");
            let a = attachment(&ctr, 2);
            let (mut attach, mut detach) = (Vec::new(), Vec::new());
            for _ in 0..ROUNDS {
                let start = Instant::now();
                nl.attach(&a).await.expect("attach");
                attach.push(start.elapsed());
                let start = Instant::now();
                nl.detach(&a.host_ifname).await.expect("detach");
                detach.push(start.elapsed());
            }
            (attach, detach)
        });
        attach.sort();
        detach.sort();
        let (attach, detach) = (attach[ROUNDS / 2], detach[ROUNDS / 2]);
        eprintln!("median of {ROUNDS}: attach {attach:?}, detach {detach:?}");
        // Generous: the machine is shared; a healthy run is a few ms.
        assert!(attach < Duration::from_millis(50), "attach took {attach:?}");
    }
}

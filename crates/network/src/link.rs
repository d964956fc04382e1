//! Bridges, veth pairs, addresses and routes through rtnetlink.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use ipnet::IpNet;

use crate::error::Result;

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
pub struct Netlink {
    _private: (),
}

impl Netlink {
    /// Opens the connection; its driver task runs on the current tokio runtime.
    pub async fn connect() -> Result<Netlink> {
        unimplemented!("Netlink::connect")
    }

    /// Creates the bridge if it is missing, adds any missing address, sets it up, and sets
    /// `route_localnet=1` on it (so DNAT from the host's 127.0.0.1 can leave through it).
    pub async fn ensure_bridge(&self, bridge: &BridgeSpec) -> Result<()> {
        let _ = bridge;
        unimplemented!()
    }

    /// Deletes a link by name; a missing link is not an error.
    pub async fn delete_link(&self, name: &str) -> Result<()> {
        let _ = name;
        unimplemented!()
    }

    pub async fn link_exists(&self, name: &str) -> Result<bool> {
        let _ = name;
        unimplemented!()
    }

    /// Creates the veth pair, enslaves the host end to the bridge with hairpin mode on, moves
    /// the peer into the container's namespace, and there renames it, sets MAC, MTU and
    /// addresses, sets it up and adds the default routes. On error nothing is left behind.
    pub async fn attach(&self, a: &Attachment) -> Result<()> {
        let _ = a;
        unimplemented!()
    }

    /// Removes a container's interface by deleting its host end (the kernel deletes the peer).
    pub async fn detach(&self, host_ifname: &str) -> Result<()> {
        let _ = host_ifname;
        unimplemented!()
    }

    /// Destination prefixes of the routes in the main table (IPv4 and IPv6) and the addresses
    /// on every interface, so IPAM never picks a subnet that overlaps the host's networks.
    pub async fn host_prefixes(&self) -> Result<Vec<IpNet>> {
        unimplemented!()
    }
}

/// Writes a value under /proc/sys in the current network namespace, e.g.
/// `set_sysctl("net/ipv4/ip_forward", "1")`.
pub fn set_sysctl(key: &str, value: &str) -> Result<()> {
    let _ = (key, value);
    unimplemented!()
}

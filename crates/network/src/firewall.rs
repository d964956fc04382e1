//! Berth's nftables table: masquerading, isolation between networks, `--internal`, and DNAT for
//! published ports. The whole table is rebuilt from a [`Ruleset`] in one atomic nft transaction;
//! nothing outside it is touched except, where another engine set the iptables FORWARD policy to
//! DROP, one accept rule per Berth bridge in that chain.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::error::Result;
use crate::ports::Protocol;

/// What one bridge network needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRules {
    pub bridge: String,
    pub subnets: Vec<IpNet>,
    /// No traffic leaves or enters the bridge except between its own ports.
    pub internal: bool,
    /// Masquerade traffic from the subnets leaving through another interface
    /// (`com.docker.network.bridge.enable_ip_masquerade`, default true).
    pub masquerade: bool,
    /// Containers on the bridge may talk to each other
    /// (`com.docker.network.bridge.enable_icc`, default true).
    pub icc: bool,
}

/// One published port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortForward {
    pub protocol: Protocol,
    /// None: every local address of the host.
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub container_ip: IpAddr,
    pub container_port: u16,
    /// The bridge the container is reached through.
    pub bridge: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ruleset {
    pub networks: Vec<NetworkRules>,
    pub ports: Vec<PortForward>,
}

pub struct Firewall {
    table: String,
}

impl Firewall {
    /// `table` is the nft table's name (`berth`; tests may pick another).
    pub fn new(table: &str) -> Firewall {
        Firewall {
            table: table.to_string(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Replaces the table's contents with `rules` atomically.
    pub fn apply(&self, rules: &Ruleset) -> Result<()> {
        let _ = rules;
        unimplemented!()
    }

    /// Deletes the table and any FORWARD accept rules added for its bridges.
    pub fn remove(&self) -> Result<()> {
        unimplemented!()
    }
}

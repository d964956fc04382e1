//! Host port reservations. Published ports are forwarded by nftables DNAT, not by a proxy, but
//! the engine still binds each one (without listening) so that no other process can take it and
//! a port in use is reported as Docker does ("port is already allocated").

use std::net::IpAddr;

use crate::error::Result;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// A bound socket holding a host port; dropping it frees the port.
#[derive(Debug)]
pub struct PortReservation {
    pub protocol: Protocol,
    pub host_ip: Option<IpAddr>,
    /// The port actually bound (the kernel's choice when 0 was asked for).
    pub port: u16,
    _socket: std::os::fd::OwnedFd,
}

/// Binds `port` (0: an ephemeral port) on `host_ip` (None: every address) in the current
/// network namespace. A port in use is `NetworkError::PortAllocated`.
pub fn reserve(protocol: Protocol, host_ip: Option<IpAddr>, port: u16) -> Result<PortReservation> {
    let _ = (protocol, host_ip, port);
    unimplemented!()
}

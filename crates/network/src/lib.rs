//! Berth's bridge network driver: network namespaces, bridges and veth pairs (rtnetlink), address
//! management, port publishing and NAT in Berth's own nftables table, and the embedded DNS server
//! containers on user-defined networks reach at 127.0.0.11.
//!
//! Nothing here knows about containers or the API; the engine describes what it wants
//! (a bridge, an attachment, a ruleset, a name table) and this crate makes the kernel do it.

pub mod dns;
pub mod error;
pub mod firewall;
pub mod ipam;
pub mod link;
pub mod netns;
pub mod ports;

pub use error::NetworkError;

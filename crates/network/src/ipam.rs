//! Address management: which subnet a new network gets, and which address a container gets on
//! it. Pure arithmetic; the engine keeps the allocations in its records.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::error::{NetworkError, Result};

/// dockerd's default address pools: 172.17–31.0.0/16, then 192.168.0.0/16 in /20s.
fn default_candidates() -> impl Iterator<Item = Ipv4Net> {
    let sixteens = (17u8..=31).filter_map(|b| Ipv4Net::new(Ipv4Addr::new(172, b, 0, 0), 16).ok());
    let twenties = Ipv4Net::new(Ipv4Addr::new(192, 168, 0, 0), 16)
        .ok()
        .into_iter()
        .flat_map(|n| n.subnets(20).ok().into_iter().flatten());
    sixteens.chain(twenties)
}

pub fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The first default-pool subnet that overlaps none of `taken` (the host's routes and
/// addresses, and every other network's subnets).
pub fn pick_subnet(taken: &[IpNet]) -> Result<Ipv4Net> {
    default_candidates()
        .find(|c| !taken.iter().any(|t| overlaps(&IpNet::V4(*c), t)))
        .ok_or_else(|| {
            NetworkError::Exhausted(
                "could not find an available, non-overlapping IPv4 address pool among the \
                 defaults to assign to the network"
                    .into(),
            )
        })
}

/// A random unique-local /64 (fdXX:XXXX:XXXX::/64) for an IPv6 network given no subnet.
pub fn pick_subnet_v6(taken: &[IpNet]) -> Result<Ipv6Net> {
    for _ in 0..64 {
        let r: [u8; 5] = rand::random();
        let addr = Ipv6Addr::new(
            0xfd00 | u16::from(r[0]),
            u16::from_be_bytes([r[1], r[2]]),
            u16::from_be_bytes([r[3], r[4]]),
            0,
            0,
            0,
            0,
            0,
        );
        let net = Ipv6Net::new(addr, 64).map_err(|e| NetworkError::Exhausted(e.to_string()))?;
        if !taken.iter().any(|t| overlaps(&IpNet::V6(net), t)) {
            return Ok(net);
        }
    }
    Err(NetworkError::Exhausted(
        "could not find an available IPv6 unique-local subnet".into(),
    ))
}

/// Parses a CIDR as Docker does: the address must be the network's own (`10.1.2.0/24`, not
/// `10.1.2.3/24`).
pub fn parse_subnet(s: &str) -> Result<IpNet> {
    let net: IpNet = s.parse().map_err(|_| NetworkError::Invalid {
        what: "subnet",
        value: s.to_string(),
    })?;
    if net.network() != net.addr() {
        return Err(NetworkError::Invalid {
            what: "subnet",
            value: format!(
                "{s} (the address is not the network's, did you mean {})",
                net.trunc()
            ),
        });
    }
    Ok(net)
}

/// The first usable address of `subnet`, dockerd's default gateway.
pub fn first_host(subnet: &IpNet) -> Result<IpAddr> {
    subnet.hosts().next().ok_or_else(|| {
        NetworkError::Exhausted(format!("subnet {subnet} has no room for a gateway"))
    })
}

/// The lowest address of `range` (or the whole subnet) that is neither the network nor the
/// broadcast address, nor in `used` (which holds the gateway and the other containers').
pub fn allocate(subnet: &IpNet, range: Option<&IpNet>, used: &HashSet<IpAddr>) -> Result<IpAddr> {
    let pool = range.unwrap_or(subnet);
    pool.hosts()
        .filter(|ip| subnet.contains(ip) && *ip != subnet.network() && *ip != subnet.broadcast())
        .find(|ip| !used.contains(ip))
        .ok_or_else(|| NetworkError::Exhausted(format!("no available IPv4 addresses on {pool}")))
}

/// dockerd's MAC for an IPv4 address: 02:42 followed by the address's four bytes.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

/// A random locally administered unicast MAC, for containers without an IPv4 address.
pub fn random_mac() -> [u8; 6] {
    let mut m: [u8; 6] = rand::random();
    m[0] = (m[0] & 0xfe) | 0x02;
    m
}

pub fn format_mac(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

pub fn parse_mac(s: &str) -> Result<[u8; 6]> {
    let bad = || NetworkError::Invalid {
        what: "MAC address",
        value: s.to_string(),
    };
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut m = [0u8; 6];
    for (d, p) in m.iter_mut().zip(parts) {
        if p.len() != 2 {
            return Err(bad());
        }
        *d = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn picks_around_taken_prefixes() {
        assert_eq!(pick_subnet(&[]).unwrap().to_string(), "172.17.0.0/16");
        let taken = [
            net("172.17.0.0/16"),
            net("172.18.5.0/24"),
            net("10.0.0.0/8"),
        ];
        assert_eq!(pick_subnet(&taken).unwrap().to_string(), "172.19.0.0/16");
        // A wide host route swallows every /16 of 172.16/12.
        let taken = [net("172.16.0.0/12"), net("192.168.0.0/20")];
        assert_eq!(pick_subnet(&taken).unwrap().to_string(), "192.168.16.0/20");
        assert!(pick_subnet(&[net("0.0.0.0/0")]).is_err());
    }

    #[test]
    fn v6_is_unique_local() {
        let n = pick_subnet_v6(&[]).unwrap();
        assert_eq!(n.prefix_len(), 64);
        assert_eq!(n.addr().segments()[0] & 0xff00, 0xfd00);
    }

    #[test]
    fn parse_subnet_rejects_host_bits_and_garbage() {
        assert_eq!(parse_subnet("10.9.0.0/16").unwrap(), net("10.9.0.0/16"));
        assert!(parse_subnet("10.9.0.1/16").is_err());
        assert!(parse_subnet("10.9.0.0").is_err());
        assert!(parse_subnet("300.1.0.0/16").is_err());
        assert!(parse_subnet("fd00::/64").is_ok());
    }

    #[test]
    fn allocates_lowest_free_in_range() {
        let s = net("10.5.0.0/24");
        let gw = first_host(&s).unwrap();
        assert_eq!(gw.to_string(), "10.5.0.1");
        let mut used = HashSet::from([gw]);
        let a = allocate(&s, None, &used).unwrap();
        assert_eq!(a.to_string(), "10.5.0.2");
        used.insert(a);
        assert_eq!(allocate(&s, None, &used).unwrap().to_string(), "10.5.0.3");
        let r = net("10.5.0.128/25");
        assert_eq!(
            allocate(&s, Some(&r), &used).unwrap().to_string(),
            "10.5.0.129"
        );
        let tiny = net("10.6.0.0/30");
        let used = HashSet::from(["10.6.0.1".parse().unwrap(), "10.6.0.2".parse().unwrap()]);
        assert!(allocate(&tiny, None, &used).is_err());
    }

    #[test]
    fn macs() {
        let m = mac_for(Ipv4Addr::new(172, 17, 0, 2));
        assert_eq!(format_mac(&m), "02:42:ac:11:00:02");
        assert_eq!(parse_mac("02:42:AC:11:00:02").unwrap(), m);
        assert!(parse_mac("02:42:ac:11:00").is_err());
        assert!(parse_mac("zz:42:ac:11:00:02").is_err());
        let r = random_mac();
        assert_eq!(r[0] & 0x03, 0x02);
    }
}

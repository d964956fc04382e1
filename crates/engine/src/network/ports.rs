//! `-p`/`-P`: what a container asks to publish (HostConfig.PortBindings, PublishAllPorts and
//! the exposed ports) and the host ports it got.

use std::collections::HashMap;
use std::net::IpAddr;

use berth_network::ports::Protocol;
use bollard_stubs::models::{HostConfig, PortBinding, PortMap, PortSummary, PortSummaryTypeEnum};

use super::record::PublishedPort;
use crate::error::{EngineError, Result};

/// One binding to make: container port, protocol, host address and the host ports to try
/// (one port, a range to pick from, or 0 for any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRequest {
    pub protocol: Protocol,
    pub container_port: u16,
    pub host_ip: Option<IpAddr>,
    pub host_ports: (u16, u16),
}

pub fn protocol(s: &str) -> Protocol {
    match s {
        "udp" => Protocol::Udp,
        "sctp" => Protocol::Sctp,
        _ => Protocol::Tcp,
    }
}

fn invalid(msg: String) -> EngineError {
    EngineError::InvalidArgument(msg)
}

/// `80/tcp`, `53/udp`, `80` → (80, tcp).
pub fn parse_port_key(key: &str) -> Result<(u16, Protocol)> {
    let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let proto = match proto {
        "tcp" | "" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        "sctp" => Protocol::Sctp,
        other => return Err(invalid(format!("invalid proto: {other}"))),
    };
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| invalid(format!("invalid port specification: {key:?}")))?;
    Ok((port, proto))
}

fn parse_host_ports(s: &str) -> Result<(u16, u16)> {
    let bad = || invalid(format!("invalid hostPort: {s}"));
    if s.is_empty() {
        return Ok((0, 0));
    }
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let a: u16 = a.parse().map_err(|_| bad())?;
    let b: u16 = b.parse().map_err(|_| bad())?;
    if a > b {
        return Err(bad());
    }
    Ok((a, b))
}

/// Every binding the container asks for, validated; sorted for a stable order.
pub fn requests(
    hc: &HostConfig,
    exposed: &[String],
    default_ip: Option<IpAddr>,
) -> Result<Vec<PortRequest>> {
    let mut bindings: PortMap = hc.port_bindings.clone().unwrap_or_default();
    if hc.publish_all_ports.unwrap_or(false) {
        for key in exposed {
            let list = bindings.entry(key.clone()).or_insert(None);
            if list.as_ref().is_none_or(Vec::is_empty) {
                *list = Some(vec![PortBinding::default()]);
            }
        }
    }
    let mut out = Vec::new();
    for (key, list) in bindings {
        let (container_port, protocol) = parse_port_key(&key)?;
        for b in list.unwrap_or_default() {
            let host_ip = match b.host_ip.as_deref().filter(|s| !s.is_empty()) {
                Some(ip) => Some(
                    ip.trim_start_matches('[')
                        .trim_end_matches(']')
                        .parse::<IpAddr>()
                        .map_err(|_| invalid(format!("invalid host IP: {ip}")))?,
                ),
                None => default_ip,
            }
            .filter(|ip| !ip.is_unspecified());
            out.push(PortRequest {
                protocol,
                container_port,
                host_ip,
                host_ports: parse_host_ports(b.host_port.as_deref().unwrap_or(""))?,
            });
        }
    }
    out.sort_by_key(|r| (r.container_port, r.protocol, r.host_ip, r.host_ports));
    out.dedup();
    Ok(out)
}

/// `NetworkSettings.Ports`: every exposed or bound port, with the host ports it got (null when
/// only exposed).
pub fn port_map(exposed: &[String], published: &[PublishedPort]) -> PortMap {
    let mut m: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    for key in exposed {
        let key = if key.contains('/') {
            key.clone()
        } else {
            format!("{key}/tcp")
        };
        m.entry(key).or_insert(None);
    }
    for p in published {
        m.entry(format!("{}/{}", p.container_port, p.protocol))
            .or_insert(None)
            .get_or_insert_with(Vec::new)
            .push(PortBinding {
                host_ip: Some(p.host_ip.clone()),
                host_port: Some(p.host_port.to_string()),
            });
    }
    m
}

/// `docker ps --filter publish=8080/tcp` / `expose=8000-8010`: a port or range, tcp by default.
pub fn port_filter_matches(filter: &str, port: u16, protocol: &str) -> bool {
    let (ports, proto) = filter.split_once('/').unwrap_or((filter, "tcp"));
    let Ok((lo, hi)) = parse_host_ports(ports) else {
        return false;
    };
    proto == protocol && (lo..=hi).contains(&port)
}

/// `Ports` of `GET /containers/json`: published ports, then exposed ones without a binding.
pub fn summary_ports(rec: &crate::container::ContainerRecord) -> Vec<PortSummary> {
    let typ = |p: &str| p.parse::<PortSummaryTypeEnum>().ok();
    let mut out: Vec<PortSummary> = rec
        .network
        .ports
        .iter()
        .map(|p| PortSummary {
            ip: Some(p.host_ip.clone()),
            private_port: p.container_port,
            public_port: Some(p.host_port),
            typ: typ(&p.protocol),
        })
        .collect();
    for key in rec.config.exposed_ports.iter().flatten() {
        let Ok((port, proto)) = parse_port_key(key) else {
            continue;
        };
        if !out
            .iter()
            .any(|p| p.private_port == port && p.typ == typ(proto.as_str()))
        {
            out.push(PortSummary {
                ip: None,
                private_port: port,
                public_port: None,
                typ: typ(proto.as_str()),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hc(bindings: &[(&str, &str, &str)], all: bool) -> HostConfig {
        let mut m: PortMap = HashMap::new();
        for (k, ip, port) in bindings {
            m.entry(k.to_string())
                .or_insert(Some(vec![]))
                .as_mut()
                .unwrap()
                .push(PortBinding {
                    host_ip: Some(ip.to_string()),
                    host_port: Some(port.to_string()),
                });
        }
        HostConfig {
            port_bindings: Some(m),
            publish_all_ports: Some(all),
            ..Default::default()
        }
    }

    #[test]
    fn parses_bindings() {
        let r = requests(
            &hc(
                &[("80/tcp", "", "8080"), ("53/udp", "127.0.0.1", "")],
                false,
            ),
            &[],
            None,
        )
        .unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].container_port, 53);
        assert_eq!(r[0].protocol, Protocol::Udp);
        assert_eq!(r[0].host_ip, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(r[0].host_ports, (0, 0));
        assert_eq!(r[1].host_ports, (8080, 8080));
        assert_eq!(r[1].host_ip, None);
        let r = requests(&hc(&[("80/tcp", "0.0.0.0", "8000-8010")], false), &[], None).unwrap();
        assert_eq!(r[0].host_ports, (8000, 8010));
        assert_eq!(r[0].host_ip, None);
    }

    #[test]
    fn ps_port_filters() {
        assert!(port_filter_matches("8080", 8080, "tcp"));
        assert!(port_filter_matches("8080/udp", 8080, "udp"));
        assert!(!port_filter_matches("8080", 8080, "udp"));
        assert!(port_filter_matches("8000-8090/tcp", 8080, "tcp"));
        assert!(!port_filter_matches("x", 8080, "tcp"));
    }

    #[test]
    fn publish_all_uses_exposed() {
        let r = requests(&hc(&[], true), &["80/tcp".into(), "81/udp".into()], None).unwrap();
        assert_eq!(r.len(), 2);
        assert!(r.iter().all(|p| p.host_ports == (0, 0)));
    }

    #[test]
    fn rejects_garbage() {
        assert!(requests(&hc(&[("80/tcp", "nope", "1")], false), &[], None).is_err());
        assert!(requests(&hc(&[("80/tcp", "", "x")], false), &[], None).is_err());
        assert!(requests(&hc(&[("80/tcp", "", "9-3")], false), &[], None).is_err());
        assert!(requests(&hc(&[("0/tcp", "", "1")], false), &[], None).is_err());
        assert!(requests(&hc(&[("80/icmp", "", "1")], false), &[], None).is_err());
    }

    #[test]
    fn map_shows_exposed_and_bound() {
        let m = port_map(
            &["80/tcp".into(), "443/tcp".into()],
            &[PublishedPort {
                protocol: "tcp".into(),
                host_ip: "0.0.0.0".into(),
                host_port: 8080,
                container_port: 80,
            }],
        );
        assert_eq!(m["443/tcp"], None);
        assert_eq!(
            m["80/tcp"].as_ref().unwrap()[0].host_port.as_deref(),
            Some("8080")
        );
    }
}

//! The /etc/hosts and /etc/resolv.conf a container sees, written as dockerd writes them.

use std::net::IpAddr;

use super::record::{DEFAULT_BRIDGE, HOST};
use crate::container::ContainerRecord;
use crate::error::{EngineError, Result};
use crate::Engine;

/// What resolv.conf is built from.
pub struct ResolvInput<'a> {
    /// The host's /etc/resolv.conf.
    pub host: &'a str,
    /// `--network host`: the host's file as it is.
    pub host_network: bool,
    /// On a user-defined network: the embedded server at 127.0.0.11.
    pub embedded_dns: bool,
    pub dns: &'a [String],
    pub dns_search: &'a [String],
    pub dns_options: &'a [String],
}

fn is_loopback(addr: &str) -> bool {
    addr.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

pub fn resolv_conf(i: &ResolvInput<'_>) -> String {
    if i.host_network && i.dns.is_empty() && i.dns_search.is_empty() && i.dns_options.is_empty() {
        return i.host.to_string();
    }
    let mut servers = Vec::new();
    let mut search: Vec<String> = Vec::new();
    let mut options: Vec<String> = Vec::new();
    for line in i.host.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => servers.extend(words.next().map(str::to_string)),
            Some("search") | Some("domain") => search = words.map(str::to_string).collect(),
            Some("options") => options.extend(words.map(str::to_string)),
            _ => {}
        }
    }
    if !i.dns.is_empty() {
        servers = i.dns.to_vec();
    }
    if !i.dns_search.is_empty() {
        // dockerd: `--dns-search .` means no search domains at all.
        search = i.dns_search.iter().filter(|s| *s != ".").cloned().collect();
    }
    if !i.dns_options.is_empty() {
        options = i.dns_options.to_vec();
    }
    let mut out = String::new();
    if i.embedded_dns {
        // The embedded server forwards other names to `servers` itself.
        out.push_str("nameserver 127.0.0.11\n");
        if !options.iter().any(|o| o.starts_with("ndots:")) {
            options.push("ndots:0".into());
        }
    } else {
        // Loopback resolvers are the host's, unreachable from another namespace.
        servers.retain(|s| !is_loopback(s) || i.host_network);
        if servers.is_empty() {
            servers = vec!["8.8.8.8".into(), "8.8.4.4".into()];
        }
        for s in &servers {
            out.push_str(&format!("nameserver {s}\n"));
        }
    }
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    out
}

/// The upstream servers of a container's embedded DNS: its `--dns`, else the host's.
pub fn upstream_servers(host_resolv: &str, dns: &[String]) -> Vec<IpAddr> {
    let from_host = || {
        host_resolv
            .lines()
            .filter_map(|l| l.trim().strip_prefix("nameserver"))
            .filter_map(|a| a.trim().parse().ok())
            .collect::<Vec<IpAddr>>()
    };
    let mut out: Vec<IpAddr> = dns.iter().filter_map(|d| d.parse().ok()).collect();
    if out.is_empty() {
        out = from_host();
    }
    if out.is_empty() {
        out = vec!["8.8.8.8".parse().unwrap_or(IpAddr::from([8, 8, 8, 8]))];
    }
    out
}

pub struct HostsInput<'a> {
    pub hostname: &'a str,
    pub domainname: &'a str,
    /// The container's own address on its first network (none: 127.0.1.1 is not written).
    pub own_ip: Option<IpAddr>,
    /// `--link` entries: (address, names).
    pub links: &'a [(IpAddr, Vec<String>)],
    /// `--add-host`: (name, address).
    pub extra: &'a [(String, String)],
}

pub fn hosts_file(i: &HostsInput<'_>) -> String {
    let mut out = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    for (name, ip) in i.extra {
        out.push_str(&format!("{ip}\t{name}\n"));
    }
    for (ip, names) in i.links {
        out.push_str(&format!("{ip}\t{}\n", names.join(" ")));
    }
    let names = if i.domainname.is_empty() {
        i.hostname.to_string()
    } else {
        format!("{}.{} {}", i.hostname, i.domainname, i.hostname)
    };
    if let Some(ip) = i.own_ip {
        out.push_str(&format!("{ip}\t{names}\n"));
    }
    out
}

/// `--add-host name:ip` (or `name=ip`); `host-gateway` is the default bridge's gateway.
fn parse_extra_host(entry: &str, host_gateway: Option<IpAddr>) -> Result<(String, String)> {
    let (name, ip) = entry
        .split_once('=')
        .or_else(|| entry.split_once(':'))
        .ok_or_else(|| EngineError::InvalidArgument(format!("invalid extra host: {entry}")))?;
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    let ip = if ip == "host-gateway" {
        host_gateway
            .ok_or_else(|| EngineError::InvalidArgument("no host-gateway address".into()))?
            .to_string()
    } else {
        ip.parse::<IpAddr>()
            .map_err(|_| {
                EngineError::InvalidArgument(format!("invalid IP address in add-host: {ip:?}"))
            })?
            .to_string()
    };
    Ok((name.to_string(), ip))
}

impl Engine {
    /// /etc/hosts, /etc/hostname and /etc/resolv.conf for a container whose endpoints are up.
    pub(crate) fn etc_files(&self, rec: &ContainerRecord) -> Result<[(&'static str, String); 3]> {
        let hc = &rec.host_config;
        let host_network = hc.network_mode.as_deref() == Some(HOST);
        let hostname = rec.config.hostname.clone().unwrap_or_default();
        let host_gateway = self
            .networks
            .all()
            .into_iter()
            .find(|n| n.name == DEFAULT_BRIDGE)
            .and_then(|n| n.v4().map(|s| s.gateway));
        let extra = hc
            .extra_hosts
            .iter()
            .flatten()
            .map(|e| parse_extra_host(e, host_gateway))
            .collect::<Result<Vec<_>>>()?;
        let primary = rec
            .network
            .ordered()
            .into_iter()
            .next()
            .map(|(_, e)| e.clone());
        let on_default = primary
            .as_ref()
            .and_then(|e| self.networks.by_id(&e.network_id))
            .is_some_and(|n| n.name == DEFAULT_BRIDGE);
        let mut links = Vec::new();
        if on_default {
            for l in hc.links.iter().flatten() {
                let (target, alias) = super::names::parse_link(l);
                let t = self.containers.find(&target)?.snapshot();
                let ip = t
                    .network
                    .endpoints
                    .get(DEFAULT_BRIDGE)
                    .and_then(|e| e.ip)
                    .filter(|_| t.state.is_running())
                    .ok_or_else(|| {
                        EngineError::InvalidArgument(format!(
                            "Cannot link to a non running container: /{} AS /{}/{alias}",
                            t.name, rec.name
                        ))
                    })?;
                let mut names = vec![
                    alias,
                    t.config.hostname.clone().unwrap_or_default(),
                    t.name.clone(),
                ];
                names.retain(|n| !n.is_empty());
                names.dedup();
                links.push((ip.addr(), names));
            }
        }
        let hosts = if host_network {
            let mut h = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
            for (name, ip) in &extra {
                h.push_str(&format!("{ip}\t{name}\n"));
            }
            h
        } else {
            hosts_file(&HostsInput {
                hostname: &hostname,
                domainname: rec.config.domainname.as_deref().unwrap_or(""),
                own_ip: primary.as_ref().and_then(|e| e.ip).map(|i| i.addr()),
                links: &links,
                extra: &extra,
            })
        };
        let embedded_dns = self.on_user_network(rec);
        let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let resolv = resolv_conf(&ResolvInput {
            host: &host_resolv,
            host_network,
            embedded_dns,
            dns: hc.dns.as_deref().unwrap_or(&[]),
            dns_search: hc.dns_search.as_deref().unwrap_or(&[]),
            dns_options: hc.dns_options.as_deref().unwrap_or(&[]),
        });
        Ok([
            ("hosts", hosts),
            ("hostname", format!("{hostname}\n")),
            ("resolv.conf", resolv),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "# comment\nnameserver 127.0.0.53\nnameserver 10.0.0.1\nsearch corp.example\noptions edns0\n";

    fn input<'a>(embedded: bool, dns: &'a [String]) -> ResolvInput<'a> {
        ResolvInput {
            host: HOST,
            host_network: false,
            embedded_dns: embedded,
            dns,
            dns_search: &[],
            dns_options: &[],
        }
    }

    #[test]
    fn default_bridge_drops_loopback_servers() {
        assert_eq!(
            resolv_conf(&input(false, &[])),
            "nameserver 10.0.0.1\nsearch corp.example\noptions edns0\n"
        );
        let dns = ["1.1.1.1".to_string()];
        assert!(resolv_conf(&input(false, &dns)).starts_with("nameserver 1.1.1.1\nsearch"));
    }

    #[test]
    fn user_network_uses_embedded_server() {
        assert_eq!(
            resolv_conf(&input(true, &[])),
            "nameserver 127.0.0.11\nsearch corp.example\noptions edns0 ndots:0\n"
        );
        let up = upstream_servers(HOST, &[]);
        assert_eq!(
            up.len(),
            2,
            "the daemon can reach the host's loopback resolver"
        );
        let up = upstream_servers(HOST, &["9.9.9.9".into()]);
        assert_eq!(up, vec!["9.9.9.9".parse::<IpAddr>().unwrap()]);
    }

    #[test]
    fn extra_hosts() {
        let gw: IpAddr = "172.17.0.1".parse().unwrap();
        assert_eq!(
            parse_extra_host("a:1.2.3.4", None).unwrap(),
            ("a".into(), "1.2.3.4".into())
        );
        assert_eq!(
            parse_extra_host("a=::1", None).unwrap(),
            ("a".into(), "::1".into())
        );
        assert_eq!(
            parse_extra_host("v6:::1", None).unwrap(),
            ("v6".into(), "::1".into())
        );
        assert_eq!(
            parse_extra_host("h:host-gateway", Some(gw)).unwrap().1,
            "172.17.0.1"
        );
        assert!(parse_extra_host("bad", None).is_err());
        assert!(parse_extra_host("a:notip", None).is_err());
    }

    #[test]
    fn hosts_has_links_extra_and_self() {
        let ip: IpAddr = "172.17.0.3".parse().unwrap();
        let s = hosts_file(&HostsInput {
            hostname: "abc",
            domainname: "",
            own_ip: Some(ip),
            links: &[(
                "172.17.0.2".parse().unwrap(),
                vec!["db".into(), "web".into()],
            )],
            extra: &[("gw".into(), "10.0.0.1".into())],
        });
        assert!(
            s.ends_with("10.0.0.1\tgw\n172.17.0.2\tdb web\n172.17.0.3\tabc\n"),
            "{s}"
        );
    }
}

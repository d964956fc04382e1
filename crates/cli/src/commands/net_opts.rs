//! Values of the docker CLI's networking flags, parsed and validated as the docker CLI does
//! (`opts/*.go`, go-connections' `nat`), with its error texts: addresses, subnets, MAC
//! addresses, links, extra hosts, DNS search domains, labels, `--network` (with its CSV long
//! syntax), `-p` / `--expose` port specs.

use std::collections::HashMap;
use std::net::IpAddr;

/// docker's text for a flag value rejected while the flags are parsed.
pub fn flag_error(flag: &str, value: &str, msg: &str) -> String {
    format!("invalid argument \"{value}\" for \"{flag}\" flag: {msg}")
}

/// Go's `strconv.ParseUint(s, 10, 16)` with its error text.
pub fn go_parse_u16(s: &str) -> Result<u16, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "strconv.ParseUint: parsing \"{s}\": invalid syntax"
        ));
    }
    s.parse()
        .map_err(|_| format!("strconv.ParseUint: parsing \"{s}\": value out of range"))
}

/// Go's `net.ParseIP`.
pub fn parse_ip(s: &str) -> Option<IpAddr> {
    s.parse().ok()
}

/// Go's `net.IP.String()`: an IPv4-mapped IPv6 address prints as IPv4.
pub fn go_ip_string(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        },
        v4 => v4.to_string(),
    }
}

fn unmap(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// A subnet as Go's `net.ParseCIDR` returns it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cidr {
    pub ip: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    /// `net.IPNet.Contains`.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let bits = |ip: IpAddr| -> (u128, u8) {
            match unmap(ip) {
                IpAddr::V4(v4) => (u32::from(v4) as u128, 32),
                IpAddr::V6(v6) => (u128::from(v6), 128),
            }
        };
        let ((net, w1), (addr, w2)) = (bits(self.ip), bits(ip));
        if w1 != w2 {
            return false;
        }
        let shift = u32::from(w1 - self.prefix.min(w1));
        let mask = if shift >= 128 { 0 } else { u128::MAX << shift };
        (net & mask) == (addr & mask)
    }
}

/// Go's `net.ParseCIDR`.
pub fn parse_cidr(s: &str) -> Result<Cidr, String> {
    let bad = || format!("invalid CIDR address: {s}");
    let (ip, len) = s.split_once('/').ok_or_else(bad)?;
    let ip = unmap(parse_ip(ip).ok_or_else(bad)?);
    let max = if ip.is_ipv4() { 32 } else { 128 };
    if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) || len.len() > 3 {
        return Err(bad());
    }
    let prefix: u8 = len.parse().map_err(|_| bad())?;
    if prefix > max {
        return Err(bad());
    }
    Ok(Cidr { ip, prefix })
}

/// `opts.ValidateIPAddress` (`--dns`): the address in Go's canonical form.
pub fn validate_ip_address(val: &str) -> Result<String, String> {
    parse_ip(val.trim())
        .map(go_ip_string)
        .ok_or_else(|| format!("IP address is not correctly formatted: {val}"))
}

fn is_label(l: &str) -> bool {
    let b = l.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
}

/// `opts.ValidateDNSSearch`: a domain name (a trailing dot dropped) or ".".
pub fn validate_dns_search(val: &str) -> Result<String, String> {
    let val = val.trim_matches(' ');
    if val == "." {
        return Ok(val.to_string());
    }
    let bad = || format!("{val} is not a valid domain");
    if !val.bytes().any(|b| b.is_ascii_alphabetic()) {
        return Err(bad());
    }
    let name = val.trim_end();
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.split('.').all(is_label) && name.len() < 255 {
        Ok(name.to_string())
    } else {
        Err(bad())
    }
}

/// `opts.ValidateExtraHost` (`--add-host`): `name:ip`, `name=ip` or `name:[ip]`, given to
/// the API as `name:ip`.
pub fn validate_extra_host(val: &str) -> Result<String, String> {
    let (k, v) = match val.split_once('=') {
        Some(kv) => kv,
        None => val
            .split_once(':')
            .ok_or_else(|| format!("bad format for add-host: {val:?}"))?,
    };
    if k.is_empty() || k.contains(':') {
        return Err(format!("bad format for add-host: {val:?}"));
    }
    let mut v = v;
    if v != "host-gateway" {
        if v.len() > 2 && v.starts_with('[') && v.ends_with(']') {
            v = &v[1..v.len() - 1];
        }
        if parse_ip(v.trim()).is_none() {
            return Err(format!("invalid IP address in add-host: {v:?}"));
        }
    }
    Ok(format!("{k}:{v}"))
}

/// `opts.ValidateLink` (`--link name[:alias]`).
pub fn validate_link(val: &str) -> Result<(), String> {
    if val.is_empty() {
        return Err("empty string specified for links".into());
    }
    if val.splitn(3, ':').count() > 2 {
        return Err(format!("bad format for links: {val}"));
    }
    Ok(())
}

/// Go's `net.ParseMAC`: EUI-48, EUI-64 or 20-byte addresses, with ':' or '-' between
/// bytes or '.' between 4-digit groups.
pub fn is_valid_mac(s: &str) -> bool {
    let hex = |g: &str, n: usize| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit());
    let groups_ok = |sep: char, width: usize, counts: [usize; 3]| {
        let g: Vec<&str> = s.split(sep).collect();
        counts.contains(&g.len()) && g.iter().all(|x| hex(x, width))
    };
    groups_ok(':', 2, [6, 8, 20]) || groups_ok('-', 2, [6, 8, 20]) || groups_ok('.', 4, [3, 4, 10])
}

/// `opts.ValidateLabel`: a non-empty key without whitespace; the value is kept as given.
pub fn validate_label(val: &str) -> Result<(), String> {
    let key = val.split_once('=').map(|(k, _)| k).unwrap_or(val);
    let key = key.trim_start();
    if key.is_empty() {
        return Err(format!("invalid label '{val}': empty name"));
    }
    if key.contains(char::is_whitespace) {
        return Err(format!("label '{key}' contains whitespaces"));
    }
    Ok(())
}

/// `opts.ConvertKVStringsToMap` / `MapOpts`: `k=v`, or `k` for an empty value.
pub fn kv_map(items: &[String]) -> HashMap<String, String> {
    items
        .iter()
        .map(|i| match i.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (i.clone(), String::new()),
        })
        .collect()
}

// ---------- --network ----------

/// One `--network` value (`opts.NetworkAttachmentOpts`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NetworkAttachment {
    pub target: String,
    pub aliases: Vec<String>,
    pub links: Vec<String>,
    pub ipv4_address: String,
    pub ipv6_address: String,
    pub mac_address: String,
    pub link_local_ips: Vec<String>,
    pub driver_opts: HashMap<String, String>,
    pub gw_priority: i64,
}

/// Fields of a CSV record as Go's `encoding/csv` reads one line (quotes group commas).
fn csv_fields(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' if quoted || cur.is_empty() => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// True when `s` has a `\w=\w` somewhere: the docker CLI's test for the long syntax.
fn is_long_syntax(s: &str) -> bool {
    let b = s.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    (1..b.len().saturating_sub(1)).any(|i| b[i] == b'=' && word(b[i - 1]) && word(b[i + 1]))
}

/// `driver-opt` values (`k=v`), lowercased and trimmed as the docker CLI does.
fn parse_driver_opt(opt: &str) -> Result<(String, String), String> {
    let lower = opt.to_lowercase();
    match lower.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
        _ => Err("invalid key value pair format in driver options".into()),
    }
}

/// `opts.NetworkOpt.Set`: a network name, or `name=…,alias=…,ip=…,…`.
pub fn parse_network_opt(value: &str) -> Result<NetworkAttachment, String> {
    if !is_long_syntax(value) {
        return Ok(NetworkAttachment {
            target: value.to_string(),
            ..Default::default()
        });
    }
    let mut n = NetworkAttachment::default();
    for field in csv_fields(value) {
        // The docker CLI lowercases whole fields, values included.
        let lower = field.to_lowercase();
        let Some((key, val)) = lower.split_once('=').filter(|(k, _)| !k.is_empty()) else {
            return Err(format!("invalid field {field}"));
        };
        let val = val.to_string();
        match key.trim() {
            "name" => n.target = val,
            "alias" => n.aliases.push(val),
            "ip" => n.ipv4_address = val,
            "ip6" => n.ipv6_address = val,
            "mac-address" => n.mac_address = val,
            "link-local-ip" => n.link_local_ips.push(val),
            "driver-opt" => {
                let (k, v) = parse_driver_opt(&val)?;
                n.driver_opts.insert(k, v);
            }
            "gw-priority" => {
                n.gw_priority = val.parse().map_err(|e: std::num::ParseIntError| {
                    let why = match e.kind() {
                        std::num::IntErrorKind::PosOverflow
                        | std::num::IntErrorKind::NegOverflow => "value out of range",
                        _ => "invalid syntax",
                    };
                    format!("invalid gw-priority ({val}): {why}")
                })?
            }
            other => return Err(format!("invalid field key {other}")),
        }
    }
    if n.target.is_empty() {
        return Err("network name/id is not specified".into());
    }
    Ok(n)
}

/// `container.NetworkMode.IsUserDefined`.
pub fn is_user_defined(mode: &str) -> bool {
    !matches!(mode, "default" | "bridge" | "host" | "none")
        && mode
            .split_once(':')
            .is_none_or(|(kind, _)| kind != "container")
}

// ---------- ports ----------

/// One container port and the host binding `-p` asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct PortMapping {
    /// "80/tcp"
    pub port: String,
    pub host_ip: String,
    pub host_port: String,
}

/// go-connections' `ParsePortRange`.
fn parse_port_range(s: &str) -> Result<(u16, u16), String> {
    if s.is_empty() {
        return Err("empty string specified for ports".into());
    }
    let Some((a, rest)) = s.split_once('-') else {
        let p = go_parse_u16(s)?;
        return Ok((p, p));
    };
    let b = rest.split('-').next().unwrap_or(rest);
    let (start, end) = (go_parse_u16(a)?, go_parse_u16(b)?);
    if end < start {
        return Err(format!("invalid range specified for port: {s}"));
    }
    Ok((start, end))
}

/// go-connections' `SplitProtoPort`: (proto, port).
fn split_proto_port(raw: &str) -> (String, String) {
    let parts: Vec<&str> = raw.split('/').collect();
    if raw.is_empty() || parts[0].is_empty() {
        return (String::new(), String::new());
    }
    if parts.len() == 1 || parts[1].is_empty() {
        return ("tcp".into(), parts[0].into());
    }
    (parts[1].into(), parts[0].into())
}

/// go-connections' `ParsePortSpec`: `[ip:][hostPort:]containerPort[/proto]`, ranges allowed.
pub fn parse_port_spec(raw: &str) -> Result<Vec<PortMapping>, String> {
    let parts: Vec<&str> = raw.split(':').collect();
    let n = parts.len();
    let (mut ip, host, container) = match n {
        1 => (String::new(), "", parts[0]),
        2 => (String::new(), parts[0], parts[1]),
        3 => (parts[0].to_string(), parts[1], parts[2]),
        _ => (parts[..n - 2].join(":"), parts[n - 2], parts[n - 1]),
    };
    let (proto, container) = split_proto_port(container);
    if let Some(inner) = ip.strip_prefix('[') {
        ip = inner
            .strip_suffix(']')
            .ok_or_else(|| format!("invalid IP address {ip}: missing ']' in address"))?
            .to_string();
    }
    if !ip.is_empty() && parse_ip(&ip).is_none() {
        return Err(format!("invalid IP address: {ip}"));
    }
    if container.is_empty() {
        return Err(format!("no port specified: {raw}<empty>"));
    }
    let (start, end) =
        parse_port_range(&container).map_err(|_| format!("invalid containerPort: {container}"))?;
    let (hstart, hend) = if host.is_empty() {
        (0, 0)
    } else {
        parse_port_range(host).map_err(|_| format!("invalid hostPort: {host}"))?
    };
    if !host.is_empty() && end - start != hend - hstart && end != start {
        return Err(format!(
            "invalid ranges specified for container and host Ports: {container} and {host}"
        ));
    }
    let given_proto = proto;
    let proto = given_proto.to_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {given_proto}"));
    }
    let mut out = Vec::new();
    for i in 0..=(end - start) {
        let mut host_port = if host.is_empty() {
            String::new()
        } else {
            (u32::from(hstart) + u32::from(i)).to_string()
        };
        // One container port and a host range: the daemon picks a free port in the range.
        if start == end && hstart != hend {
            host_port = format!("{host_port}-{hend}");
        }
        out.push(PortMapping {
            port: format!("{}/{proto}", u32::from(start) + u32::from(i)),
            host_ip: ip.clone(),
            host_port,
        });
    }
    Ok(out)
}

/// The docker CLI's `convertToStandardNotation`: `-p target=80,published=8080,protocol=udp`
/// becomes `8080:80/udp`; other values pass unchanged.
pub fn publish_standard_notation(p: &str) -> Result<String, String> {
    if !p.contains('=') {
        return Ok(p.to_string());
    }
    let mut params: Vec<(String, String)> = vec![("protocol".into(), "tcp".into())];
    for param in p.split(',') {
        let Some((k, v)) = param.split_once('=').filter(|(k, _)| !k.is_empty()) else {
            return Err(format!(
                "invalid publish opts format (should be name=value but got '{param}')"
            ));
        };
        params.retain(|(pk, _)| pk != k);
        params.push((k.to_string(), v.to_string()));
    }
    let get = |k: &str| {
        params
            .iter()
            .find(|(pk, _)| pk == k)
            .map(|(_, v)| v.clone())
    };
    let Some(target) = get("target") else {
        params.sort();
        let shown: Vec<String> = params.iter().map(|(k, v)| format!("{k}:{v}")).collect();
        return Err(format!(
            "missing required param 'target' in publish opts. got params: map[{}]",
            shown.join(" ")
        ));
    };
    Ok(format!(
        "{}:{target}/{}",
        get("published").unwrap_or_default(),
        get("protocol").unwrap_or_default()
    ))
}

/// `--expose port[-port][/proto]`: the ports it names ("80/tcp", …).
pub fn parse_expose(e: &str) -> Result<Vec<String>, String> {
    if e.contains(':') {
        return Err(format!("invalid port format for --expose: {e}"));
    }
    let (proto, port) = split_proto_port(e);
    let (start, end) = parse_port_range(&port)
        .map_err(|err| format!("invalid range format for --expose: {e}, error: {err}"))?;
    Ok((start..=end).map(|p| format!("{p}/{proto}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(validate_ip_address(" 8.8.8.8 ").unwrap(), "8.8.8.8");
        assert_eq!(validate_ip_address("0:0::1").unwrap(), "::1");
        assert_eq!(validate_ip_address("::ffff:1.2.3.4").unwrap(), "1.2.3.4");
        assert_eq!(
            validate_ip_address("bad").unwrap_err(),
            "IP address is not correctly formatted: bad"
        );
        let c = parse_cidr("10.1.0.0/16").unwrap();
        assert!(c.contains("10.1.255.1".parse().unwrap()));
        assert!(!c.contains("10.2.0.1".parse().unwrap()));
        assert!(!c.contains("fd00::1".parse().unwrap()));
        assert!(parse_cidr("fd00::/64")
            .unwrap()
            .contains("fd00::5".parse().unwrap()));
        assert!(parse_cidr("0.0.0.0/0")
            .unwrap()
            .contains("1.2.3.4".parse().unwrap()));
        assert_eq!(parse_cidr("bad").unwrap_err(), "invalid CIDR address: bad");
        assert!(parse_cidr("10.0.0.0/33").is_err());
        assert!(is_valid_mac("02:42:ac:11:00:02"));
        assert!(is_valid_mac("02-42-AC-11-00-02"));
        assert!(is_valid_mac("0242.ac11.0002"));
        assert!(!is_valid_mac("bad"));
        assert!(!is_valid_mac("02:42:ac:11:00"));
    }

    #[test]
    fn extra_hosts_links_labels_dns_search() {
        assert_eq!(validate_extra_host("h1:1.2.3.4").unwrap(), "h1:1.2.3.4");
        assert_eq!(validate_extra_host("h2=::1").unwrap(), "h2:::1");
        assert_eq!(validate_extra_host("h3:::1").unwrap(), "h3:::1");
        assert_eq!(validate_extra_host("h4:[::1]").unwrap(), "h4:::1");
        assert_eq!(
            validate_extra_host("gw:host-gateway").unwrap(),
            "gw:host-gateway"
        );
        assert_eq!(
            validate_extra_host("bad").unwrap_err(),
            "bad format for add-host: \"bad\""
        );
        assert_eq!(
            validate_extra_host("[::1]:x").unwrap_err(),
            "invalid IP address in add-host: \":1]:x\""
        );
        assert!(validate_link("other:al").is_ok());
        assert!(validate_link("x").is_ok());
        assert_eq!(
            validate_link("a:b:c").unwrap_err(),
            "bad format for links: a:b:c"
        );
        assert!(validate_label(" a=b").is_ok());
        assert_eq!(
            validate_label("=x").unwrap_err(),
            "invalid label '=x': empty name"
        );
        assert_eq!(
            validate_label("a b=c").unwrap_err(),
            "label 'a b' contains whitespaces"
        );
        assert_eq!(validate_dns_search("example.com.").unwrap(), "example.com");
        assert_eq!(validate_dns_search(".").unwrap(), ".");
        for bad in ["-bad", "123", "a..b"] {
            assert_eq!(
                validate_dns_search(bad).unwrap_err(),
                format!("{bad} is not a valid domain")
            );
        }
        let m = kv_map(&["a=b".into(), "c".into(), "d=e=f".into()]);
        assert_eq!((m["a"].as_str(), m["c"].as_str()), ("b", ""));
        assert_eq!(m["d"], "e=f");
    }

    #[test]
    fn network_values() {
        assert_eq!(parse_network_opt("mynet").unwrap().target, "mynet");
        assert_eq!(
            parse_network_opt("container:abc").unwrap().target,
            "container:abc"
        );
        let n = parse_network_opt(
            "name=MyNet,Alias=Al,ip=172.18.0.9,mac-address=02:42:ac:11:00:09,driver-opt=K=V,gw-priority=3,link-local-ip=169.254.1.1",
        )
        .unwrap();
        assert_eq!(n.target, "mynet");
        assert_eq!(n.aliases, vec!["al"]);
        assert_eq!(n.ipv4_address, "172.18.0.9");
        assert_eq!(n.mac_address, "02:42:ac:11:00:09");
        assert_eq!(n.driver_opts["k"], "v");
        assert_eq!(n.gw_priority, 3);
        assert_eq!(n.link_local_ips, vec!["169.254.1.1"]);
        assert_eq!(
            parse_network_opt("name=mynet,bogus=1").unwrap_err(),
            "invalid field key bogus"
        );
        assert_eq!(
            parse_network_opt("alias=x").unwrap_err(),
            "network name/id is not specified"
        );
        assert_eq!(
            parse_network_opt("name=mynet,gw-priority=x").unwrap_err(),
            "invalid gw-priority (x): invalid syntax"
        );
        assert_eq!(
            parse_network_opt("name=mynet,driver-opt=x").unwrap_err(),
            "invalid key value pair format in driver options"
        );
        assert!(is_user_defined("mynet"));
        for m in ["default", "bridge", "host", "none", "container:x"] {
            assert!(!is_user_defined(m), "{m}");
        }
    }

    fn specs(raw: &str) -> Vec<(String, String, String)> {
        parse_port_spec(raw)
            .unwrap()
            .into_iter()
            .map(|m| (m.port, m.host_ip, m.host_port))
            .collect()
    }

    fn t(p: &str, ip: &str, hp: &str) -> (String, String, String) {
        (p.into(), ip.into(), hp.into())
    }

    #[test]
    fn port_specs_like_go_connections() {
        assert_eq!(specs("8080:80"), vec![t("80/tcp", "", "8080")]);
        assert_eq!(specs("7000"), vec![t("7000/tcp", "", "")]);
        assert_eq!(
            specs("127.0.0.1:5353:53/udp"),
            vec![t("53/udp", "127.0.0.1", "5353")]
        );
        assert_eq!(
            specs("9000-9001:9000-9001"),
            vec![t("9000/tcp", "", "9000"), t("9001/tcp", "", "9001")]
        );
        assert_eq!(specs("80-81:90"), vec![t("90/tcp", "", "80-81")]);
        assert_eq!(specs("[::1]:80:80"), vec![t("80/tcp", "::1", "80")]);
        assert_eq!(specs("::1:81:81"), vec![t("81/tcp", "::1", "81")]);
        assert_eq!(specs("1.2.3.4::80/udp"), vec![t("80/udp", "1.2.3.4", "")]);
        assert_eq!(specs("0:80"), vec![t("80/tcp", "", "0")]);
        assert_eq!(specs("80/TCP"), vec![t("80/tcp", "", "")]);
        let err = |raw: &str| parse_port_spec(raw).unwrap_err();
        assert_eq!(err("80/xyz"), "invalid proto: xyz");
        assert_eq!(err("abc"), "invalid containerPort: abc");
        assert_eq!(
            err("80:90-91"),
            "invalid ranges specified for container and host Ports: 90-91 and 80"
        );
        assert_eq!(err("70000:80"), "invalid hostPort: 70000");
        assert_eq!(err("80-79:80-79"), "invalid containerPort: 80-79");
        assert_eq!(err("bad:80:80"), "invalid IP address: bad");
        assert_eq!(
            publish_standard_notation("target=80,published=8080,protocol=udp").unwrap(),
            "8080:80/udp"
        );
        assert_eq!(publish_standard_notation("target=80").unwrap(), ":80/tcp");
        assert_eq!(publish_standard_notation("8080:80").unwrap(), "8080:80");
        assert!(publish_standard_notation("published=80").is_err());
        assert_eq!(parse_expose("3000").unwrap(), vec!["3000/tcp"]);
        assert_eq!(
            parse_expose("4000-4001/udp").unwrap(),
            vec!["4000/udp", "4001/udp"]
        );
        assert_eq!(parse_expose("80/xyz").unwrap(), vec!["80/xyz"]);
        assert_eq!(
            parse_expose("127.0.0.1:80").unwrap_err(),
            "invalid port format for --expose: 127.0.0.1:80"
        );
        assert_eq!(
            parse_expose("abc").unwrap_err(),
            "invalid range format for --expose: abc, error: strconv.ParseUint: parsing \"abc\": invalid syntax"
        );
        assert_eq!(
            go_parse_u16("70000").unwrap_err(),
            "strconv.ParseUint: parsing \"70000\": value out of range"
        );
    }
}

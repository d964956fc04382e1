//! Berth's nftables table: masquerading, isolation between networks, `--internal`, and DNAT for
//! published ports. The whole table is rebuilt from a [`Ruleset`] in one atomic nft transaction;
//! nothing outside it is touched except, where another engine set the iptables FORWARD policy to
//! DROP, one accept rule per Berth bridge in that chain.
//!
//! The table (`table inet <name>`):
//!
//! ```text
//! chain prerouting  { type nat hook prerouting priority dstnat; fib daddr type local jump ports }
//! chain output      { type nat hook output priority dstnat;     fib daddr type local jump ports }
//! chain ports       { [ip daddr HOST | meta nfproto ipv4] tcp dport HP dnat ip to CIP:CP ... }
//! chain postrouting { type nat hook postrouting priority srcnat;
//!     ip saddr SUBNET oifname != BR masquerade            (masquerade && !internal)
//!     oifname BR ip saddr 127.0.0.0/8 masquerade          (host's localhost -> published port)
//!     oifname BR ct status dnat ip saddr SUBNET masquerade (hairpin) }
//! chain forward     { type filter hook forward priority filter;
//!     iifname BR oifname != BR drop; oifname BR iifname != BR drop   (internal)
//!     ct state established,related accept
//!     ct status dnat accept                                  (published ports, from anywhere)
//!     iifname BR oifname { other Berth bridges } drop        (isolation)
//!     iifname BR oifname BR drop                             (icc=false)
//!     oifname BR iifname != BR drop                          (masquerading networks) }
//! ```
//!
//! The last forward rule is Docker 28's: a NATed network is reachable from outside only through
//! its published ports, not by routing to container addresses directly. A network without
//! masquerading is left routable, as Docker's routed gateway mode.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::io::Write;
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use ipnet::IpNet;
use nftables::batch::Batch;
use nftables::expr::{
    Expression, Fib, FibFlag, FibResult, Meta, MetaKey, NamedExpression, Payload, PayloadField,
    Prefix, SetItem, CT,
};
use nftables::schema::{Chain, NfListObject, Nftables, Rule, Table};
use nftables::stmt::{JumpTarget, Match, NATFamily, Operator, Statement, NAT};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};

use crate::error::{NetworkError, Result};
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
    /// Held for the whole of `apply`/`remove`, so concurrent callers cannot interleave an old
    /// ruleset after a newer one, and caches the FORWARD accept rules in place.
    forward: Mutex<ForwardAccepts>,
}

impl Firewall {
    /// `table` is the nft table's name (`berth`; tests may pick another).
    pub fn new(table: &str) -> Firewall {
        Firewall {
            table: table.to_string(),
            forward: Mutex::new(ForwardAccepts::default()),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Replaces the table's contents with `rules` atomically. An invalid port forward fails the
    /// whole call before anything changes.
    pub fn apply(&self, rules: &Ruleset) -> Result<()> {
        validate(rules)?;
        let started = Instant::now();
        let mut forward = self.lock();
        run_nft(&table_payload(&self.table, rules))?;
        for family in [Xtables::V4, Xtables::V6] {
            let wanted = family.bridges(rules);
            forward.sync(family, &self.table, &wanted)?;
        }
        tracing::debug!(
            table = %self.table,
            networks = rules.networks.len(),
            ports = rules.ports.len(),
            elapsed_us = started.elapsed().as_micros() as u64,
            "firewall applied"
        );
        Ok(())
    }

    /// Deletes the table and any FORWARD accept rules added for its bridges, including ones an
    /// earlier daemon left behind.
    pub fn remove(&self) -> Result<()> {
        let mut forward = self.lock();
        let mut batch = Batch::new();
        // Adding first makes the delete succeed when the table is already gone.
        batch.add(NfListObject::Table(table(&self.table)));
        batch.delete(NfListObject::Table(table(&self.table)));
        run_nft(&batch.to_nftables())?;
        for family in [Xtables::V4, Xtables::V6] {
            forward.clear(family, &self.table)?;
        }
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, ForwardAccepts> {
        // The state is a cache that is re-read when unknown; a panic elsewhere cannot corrupt it.
        self.forward.lock().unwrap_or_else(|e| e.into_inner())
    }
}

// ---------------------------------------------------------------------------------------------
// Validation

fn validate(rules: &Ruleset) -> Result<()> {
    rules.ports.iter().try_for_each(validate_port)
}

fn validate_port(port: &PortForward) -> Result<()> {
    let invalid = |why: &str| NetworkError::Invalid {
        what: "port forward",
        value: format!(
            "{}:{}->{}:{}/{}: {why}",
            port.host_ip.map(|ip| ip.to_string()).unwrap_or_default(),
            port.host_port,
            port.container_ip,
            port.container_port,
            port.protocol.as_str()
        ),
    };
    if port.host_port == 0 || port.container_port == 0 {
        return Err(invalid("port 0"));
    }
    match port.host_ip {
        Some(host) if host.is_ipv4() != port.container_ip.is_ipv4() => Err(invalid(
            "host and container addresses are of different IP versions",
        )),
        _ => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------------
// The table

const PREROUTING: &str = "prerouting";
const OUTPUT: &str = "output";
const PORTS: &str = "ports";
const POSTROUTING: &str = "postrouting";
const FORWARD: &str = "forward";

const PRIO_DSTNAT: i32 = -100;
const PRIO_FILTER: i32 = 0;
const PRIO_SRCNAT: i32 = 100;

type RuleExpr = Vec<Statement<'static>>;

/// [add table, delete table, add table, chains, rules]: one transaction that empties the table
/// (or creates it) and fills it again, so packets see either the old ruleset or the new one.
fn table_payload(name: &str, rules: &Ruleset) -> Nftables<'static> {
    let mut batch = Batch::new();
    batch.add(NfListObject::Table(table(name)));
    batch.delete(NfListObject::Table(table(name)));
    batch.add(NfListObject::Table(table(name)));

    let local = || vec![fib_daddr_local(), jump(PORTS)];
    let chains = [
        (
            PREROUTING,
            Some((NfChainType::NAT, NfHook::Prerouting, PRIO_DSTNAT)),
            vec![local()],
        ),
        (
            OUTPUT,
            Some((NfChainType::NAT, NfHook::Output, PRIO_DSTNAT)),
            vec![local()],
        ),
        (PORTS, None, rules.ports.iter().map(port_rule).collect()),
        (
            POSTROUTING,
            Some((NfChainType::NAT, NfHook::Postrouting, PRIO_SRCNAT)),
            rules.networks.iter().flat_map(postrouting_rules).collect(),
        ),
        (
            FORWARD,
            Some((NfChainType::Filter, NfHook::Forward, PRIO_FILTER)),
            forward_rules(&rules.networks),
        ),
    ];
    // Chains before rules: a jump needs its target to exist.
    for (chain_name, base, _) in &chains {
        batch.add(NfListObject::Chain(chain(name, chain_name, *base)));
    }
    for (chain_name, _, chain_rules) in chains {
        for expr in chain_rules {
            batch.add(NfListObject::Rule(Rule {
                family: NfFamily::INet,
                table: owned(name),
                chain: owned(chain_name),
                expr: expr.into(),
                handle: None,
                index: None,
                comment: None,
            }));
        }
    }
    batch.to_nftables()
}

fn table(name: &str) -> Table<'static> {
    Table {
        family: NfFamily::INet,
        name: owned(name),
        handle: None,
    }
}

/// A base chain's type, hook and priority.
type Hook = (NfChainType, NfHook, i32);

fn chain(table: &str, name: &str, base: Option<Hook>) -> Chain<'static> {
    Chain {
        family: NfFamily::INet,
        table: owned(table),
        name: owned(name),
        _type: base.map(|b| b.0),
        hook: base.map(|b| b.1),
        prio: base.map(|b| b.2),
        policy: base.map(|_| NfChainPolicy::Accept),
        ..Chain::default()
    }
}

/// `[ip daddr HOST | meta nfproto ipv4] tcp dport HP dnat ip to CIP:CP`
fn port_rule(port: &PortForward) -> RuleExpr {
    let v4 = port.container_ip.is_ipv4();
    let family_match = match port.host_ip {
        Some(host) if !host.is_unspecified() => {
            eq(payload(ip_proto(v4), "daddr"), string(host.to_string()))
        }
        // Only the container's own family can be translated.
        _ => eq(
            meta(MetaKey::Nfproto),
            string(if v4 { "ipv4" } else { "ipv6" }),
        ),
    };
    vec![
        family_match,
        eq(
            payload(port.protocol.as_str(), "dport"),
            Expression::Number(port.host_port.into()),
        ),
        Statement::DNAT(Some(NAT {
            addr: Some(string(port.container_ip.to_string())),
            family: Some(if v4 { NATFamily::IP } else { NATFamily::IP6 }),
            port: Some(Expression::Number(port.container_port.into())),
            flags: None,
        })),
    ]
}

fn postrouting_rules(net: &NetworkRules) -> Vec<RuleExpr> {
    let bridge = || string(net.bridge.clone());
    let mut rules = Vec::new();
    for subnet in &net.subnets {
        let saddr = || {
            eq(
                payload(ip_proto(subnet_is_v4(subnet)), "saddr"),
                prefix(subnet),
            )
        };
        if net.masquerade && !net.internal {
            rules.push(vec![
                saddr(),
                ne(meta(MetaKey::Oifname), bridge()),
                masquerade(),
            ]);
        }
        // A container reaching a published port through a host address, when the target is on
        // the same bridge: without this the target would answer it directly, from an address
        // the client never sent to.
        rules.push(vec![
            eq(meta(MetaKey::Oifname), bridge()),
            is(ct("status"), string("dnat")),
            saddr(),
            masquerade(),
        ]);
    }
    // The host's own 127.0.0.1 -> published port (needs route_localnet on the bridge): the
    // container cannot answer 127.0.0.1.
    rules.push(vec![
        eq(meta(MetaKey::Oifname), bridge()),
        eq(payload("ip", "saddr"), prefix_of("127.0.0.0", 8)),
        masquerade(),
    ]);
    rules
}

fn forward_rules(networks: &[NetworkRules]) -> Vec<RuleExpr> {
    let iif = |br: &str| eq(meta(MetaKey::Iifname), string(br));
    let oif = |br: &str| eq(meta(MetaKey::Oifname), string(br));
    let not_iif = |br: &str| ne(meta(MetaKey::Iifname), string(br));
    let not_oif = |br: &str| ne(meta(MetaKey::Oifname), string(br));
    let mut rules = Vec::new();

    // Before the accepts below: nothing, not even a published port, crosses an internal bridge.
    for net in networks.iter().filter(|n| n.internal) {
        rules.push(vec![iif(&net.bridge), not_oif(&net.bridge), drop()]);
        rules.push(vec![oif(&net.bridge), not_iif(&net.bridge), drop()]);
    }
    rules.push(vec![
        is(
            ct("state"),
            Expression::List(vec![string("established"), string("related")]),
        ),
        accept(),
    ]);
    rules.push(vec![is(ct("status"), string("dnat")), accept()]);

    for net in networks {
        let others: Vec<SetItem<'static>> = networks
            .iter()
            .filter(|o| o.bridge != net.bridge)
            .map(|o| SetItem::Element(string(o.bridge.clone())))
            .collect();
        if !others.is_empty() {
            rules.push(vec![
                iif(&net.bridge),
                eq(
                    meta(MetaKey::Oifname),
                    Expression::Named(NamedExpression::Set(others)),
                ),
                drop(),
            ]);
        }
    }
    for net in networks.iter().filter(|n| !n.icc) {
        rules.push(vec![iif(&net.bridge), oif(&net.bridge), drop()]);
    }
    for net in networks.iter().filter(|n| n.masquerade && !n.internal) {
        rules.push(vec![oif(&net.bridge), not_iif(&net.bridge), drop()]);
    }
    rules
}

// Expression and statement shorthands.

fn owned(s: &str) -> Cow<'static, str> {
    Cow::Owned(s.to_string())
}

fn string(s: impl Into<String>) -> Expression<'static> {
    Expression::String(Cow::Owned(s.into()))
}

fn ip_proto(v4: bool) -> &'static str {
    if v4 {
        "ip"
    } else {
        "ip6"
    }
}

fn subnet_is_v4(net: &IpNet) -> bool {
    matches!(net, IpNet::V4(_))
}

fn payload(protocol: &str, field: &str) -> Expression<'static> {
    Expression::Named(NamedExpression::Payload(Payload::PayloadField(
        PayloadField {
            protocol: owned(protocol),
            field: owned(field),
        },
    )))
}

fn meta(key: MetaKey) -> Expression<'static> {
    Expression::Named(NamedExpression::Meta(Meta { key }))
}

fn ct(key: &str) -> Expression<'static> {
    Expression::Named(NamedExpression::CT(CT {
        key: owned(key),
        family: None,
        dir: None,
    }))
}

fn prefix(net: &IpNet) -> Expression<'static> {
    prefix_of(net.network().to_string(), net.prefix_len())
}

fn prefix_of(addr: impl Into<String>, len: u8) -> Expression<'static> {
    Expression::Named(NamedExpression::Prefix(Prefix {
        addr: Box::new(string(addr)),
        len: len.into(),
    }))
}

fn fib_daddr_local() -> Statement<'static> {
    eq(
        Expression::Named(NamedExpression::Fib(Fib {
            result: FibResult::Type,
            flags: [FibFlag::Daddr].into_iter().collect(),
        })),
        string("local"),
    )
}

fn compare(
    left: Expression<'static>,
    op: Operator,
    right: Expression<'static>,
) -> Statement<'static> {
    Statement::Match(Match { left, right, op })
}

fn eq(left: Expression<'static>, right: Expression<'static>) -> Statement<'static> {
    compare(left, Operator::EQ, right)
}

fn ne(left: Expression<'static>, right: Expression<'static>) -> Statement<'static> {
    compare(left, Operator::NEQ, right)
}

/// A flag test (`ct status dnat`), not an equality.
fn is(left: Expression<'static>, right: Expression<'static>) -> Statement<'static> {
    compare(left, Operator::IN, right)
}

fn jump(target: &str) -> Statement<'static> {
    Statement::Jump(JumpTarget {
        target: owned(target),
    })
}

fn masquerade() -> Statement<'static> {
    Statement::Masquerade(None)
}

fn accept() -> Statement<'static> {
    Statement::Accept(None)
}

fn drop() -> Statement<'static> {
    Statement::Drop(None)
}

/// Pipes the payload to `nft -j -f -`. Not the crate's `apply_ruleset`: it leaves nft's stderr
/// unpiped, so a failure would reach the daemon's stderr instead of the error returned here.
fn run_nft(payload: &Nftables) -> Result<()> {
    let json = serde_json::to_vec(payload)
        .map_err(|e| NetworkError::Firewall(format!("serialising the ruleset: {e}")))?;
    let mut child = Command::new("nft")
        .args(["-j", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| NetworkError::Firewall(format!("running nft: {e}")))?;
    let written = child
        .stdin
        .take()
        .map(|mut stdin| stdin.write_all(&json))
        .unwrap_or(Ok(()));
    let output = child
        .wait_with_output()
        .map_err(|e| NetworkError::Firewall(format!("running nft: {e}")))?;
    if !output.status.success() {
        return Err(NetworkError::Firewall(format!(
            "nft failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    written.map_err(|e| NetworkError::Firewall(format!("writing to nft: {e}")))
}

// ---------------------------------------------------------------------------------------------
// FORWARD accept rules for hosts where Docker set the iptables FORWARD policy to DROP: an accept
// in our own base chain cannot override another base chain's drop.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Xtables {
    V4,
    V6,
}

impl Xtables {
    fn binary(self) -> &'static str {
        match self {
            Xtables::V4 => "iptables",
            Xtables::V6 => "ip6tables",
        }
    }

    /// Every bridge carries IPv4 (Docker's own policy is about IPv4 first); IPv6 only where the
    /// network has an IPv6 subnet.
    fn bridges(self, rules: &Ruleset) -> BTreeSet<String> {
        rules
            .networks
            .iter()
            .filter(|n| self == Xtables::V4 || n.subnets.iter().any(|s| !subnet_is_v4(s)))
            .map(|n| n.bridge.clone())
            .collect()
    }
}

/// Per family, the bridges the FORWARD chain has been brought in line with since it was last
/// read; None until then. While the wanted bridges stay the same, `apply` runs no iptables.
#[derive(Debug, Default)]
struct ForwardAccepts {
    v4: Option<BTreeSet<String>>,
    v6: Option<BTreeSet<String>>,
}

/// One of our accept rules as `iptables -S` prints it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct AcceptRule {
    /// `-i` or `-o`.
    direction: &'static str,
    bridge: String,
}

struct ForwardChain {
    drop_policy: bool,
    ours: BTreeSet<AcceptRule>,
}

impl ForwardAccepts {
    fn slot(&mut self, family: Xtables) -> &mut Option<BTreeSet<String>> {
        match family {
            Xtables::V4 => &mut self.v4,
            Xtables::V6 => &mut self.v6,
        }
    }

    fn sync(&mut self, family: Xtables, comment: &str, wanted: &BTreeSet<String>) -> Result<()> {
        let slot = self.slot(family);
        if slot.as_ref() == Some(wanted) {
            return Ok(());
        }
        // Unknown until this succeeds, so a failure is retried on the next apply.
        *slot = None;
        let Some(chain) = read_forward(family, comment)? else {
            *slot = Some(wanted.clone());
            return Ok(());
        };
        for rule in chain.ours.iter().filter(|r| !wanted.contains(&r.bridge)) {
            edit_rule(family, "-D", rule, comment)?;
        }
        if chain.drop_policy {
            for bridge in wanted {
                for direction in ["-i", "-o"] {
                    let rule = AcceptRule {
                        direction,
                        bridge: bridge.clone(),
                    };
                    if !chain.ours.contains(&rule) {
                        edit_rule(family, "-I", &rule, comment)?;
                    }
                }
            }
        }
        *self.slot(family) = Some(wanted.clone());
        Ok(())
    }

    fn clear(&mut self, family: Xtables, comment: &str) -> Result<()> {
        *self.slot(family) = None;
        if let Some(chain) = read_forward(family, comment)? {
            for rule in &chain.ours {
                edit_rule(family, "-D", rule, comment)?;
            }
        }
        Ok(())
    }
}

/// Reads the FORWARD chain; None when the binary is not installed.
fn read_forward(family: Xtables, comment: &str) -> Result<Option<ForwardChain>> {
    let Some(listing) = xtables(family, &["-w", "-S", "FORWARD"])? else {
        return Ok(None);
    };
    Ok(Some(parse_forward(&listing, comment)))
}

fn parse_forward(listing: &str, comment: &str) -> ForwardChain {
    let mut chain = ForwardChain {
        drop_policy: false,
        ours: BTreeSet::new(),
    };
    for line in listing.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["-P", "FORWARD", policy] => chain.drop_policy = *policy == "DROP",
            // Only rules of exactly the shape we add, so `-D` with the same words matches them.
            ["-A", "FORWARD", dir @ ("-i" | "-o"), bridge, "-m", "comment", "--comment", c, "-j", "ACCEPT"]
                if c.trim_matches('"') == comment =>
            {
                chain.ours.insert(AcceptRule {
                    direction: if *dir == "-i" { "-i" } else { "-o" },
                    bridge: bridge.to_string(),
                });
            }
            _ => {}
        }
    }
    chain
}

fn edit_rule(family: Xtables, op: &str, rule: &AcceptRule, comment: &str) -> Result<()> {
    let args = [
        "-w",
        op,
        "FORWARD",
        rule.direction,
        &rule.bridge,
        "-m",
        "comment",
        "--comment",
        comment,
        "-j",
        "ACCEPT",
    ];
    tracing::debug!(binary = family.binary(), ?args, "FORWARD accept rule");
    xtables(family, &args).map(|_| ())
}

/// Runs iptables/ip6tables; Ok(None) when it is not installed (then there is no iptables
/// policy to work around).
fn xtables(family: Xtables, args: &[&str]) -> Result<Option<String>> {
    let binary = family.binary();
    let output = match Command::new(binary)
        .args(args)
        .stdin(Stdio::null())
        .output()
    {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::debug!(binary, "not installed; FORWARD policy not checked");
            return Ok(None);
        }
        Err(e) => return Err(NetworkError::Firewall(format!("running {binary}: {e}"))),
    };
    if !output.status.success() {
        return Err(NetworkError::Firewall(format!(
            "{binary} {} failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(Some(String::from_utf8_lossy(&output.stdout).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};
    use std::process::Child;
    use std::sync::Arc;
    use std::time::Duration;

    /// Throwaway namespaces and the processes started in them; all of it goes away on drop, also
    /// when a test fails.
    struct Lab {
        dir: tempfile::TempDir,
        namespaces: Vec<PathBuf>,
        children: Vec<Child>,
    }

    impl Drop for Lab {
        fn drop(&mut self) {
            for child in &mut self.children {
                let _ = child.kill();
                let _ = child.wait();
            }
            for ns in &self.namespaces {
                let _ = crate::netns::remove(ns);
            }
        }
    }

    impl Lab {
        fn new() -> Lab {
            Lab {
                dir: tempfile::tempdir().unwrap(),
                namespaces: Vec::new(),
                children: Vec::new(),
            }
        }

        fn ns(&mut self, name: &str) -> PathBuf {
            let pin = self.dir.path().join(name);
            crate::netns::create(&pin).unwrap();
            self.namespaces.push(pin.clone());
            pin
        }

        fn command(ns: &Path, program: &str) -> Command {
            let mut cmd = Command::new("nsenter");
            cmd.arg(format!("--net={}", ns.display())).arg(program);
            cmd
        }

        /// Runs a shell script in `ns`; its stdout, or None when it failed.
        fn try_sh(&self, ns: &Path, script: &str) -> Option<String> {
            let out = Self::command(ns, "sh")
                .args(["-c", script])
                .output()
                .unwrap();
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        }

        fn sh(&self, ns: &Path, script: &str) -> String {
            let out = Self::command(ns, "sh")
                .args(["-c", script])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{script}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        }

        fn bridge(&self, ns: &Path, name: &str, cidr: &str) {
            self.sh(
                ns,
                &format!(
                    "ip link add {name} type bridge && ip addr add {cidr} dev {name} \
                     && ip link set {name} up"
                ),
            );
        }

        /// A container namespace on `bridge` of `daemon`, reached through port `port`.
        fn container(&mut self, daemon: &Path, bridge: &str, port: &str, cidr: &str) -> PathBuf {
            let ns = self.ns(port);
            let gateway = self.sh(
                daemon,
                &format!("ip -4 -o addr show {bridge} | awk '{{print $4}}' | cut -d/ -f1"),
            );
            self.sh(
                daemon,
                &format!(
                    "ip link add {port} type veth peer name eth0 netns {} \
                     && ip link set {port} master {bridge} \
                     && ip link set {port} type bridge_slave hairpin on && ip link set {port} up",
                    ns.display()
                ),
            );
            self.sh(
                &ns,
                &format!(
                    "ip addr add {cidr} dev eth0 && ip link set eth0 up \
                     && ip route add default via {gateway}"
                ),
            );
            ns
        }

        /// A daemon namespace with forwarding on and an uplink 10.99.0.1/30 to an "outside"
        /// namespace (10.99.0.2, no route to the container subnets).
        fn daemon_and_outside(&mut self) -> (PathBuf, PathBuf) {
            let daemon = self.ns("daemon");
            let outside = self.ns("outside");
            self.sh(
                &daemon,
                &format!(
                    "ip link add up0 type veth peer name eth0 netns {} \
                     && ip addr add 10.99.0.1/30 dev up0 && ip link set up0 up \
                     && sysctl -qw net.ipv4.ip_forward=1",
                    outside.display()
                ),
            );
            self.sh(
                &outside,
                "ip addr add 10.99.0.2/30 dev eth0 && ip link set eth0 up",
            );
            (daemon, outside)
        }

        /// busybox httpd on port 80 whose /cgi-bin/ip answers the client's address.
        fn httpd(&mut self, ns: &Path) {
            let www = self
                .dir
                .path()
                .join(format!("www-{}", ns.file_name().unwrap().to_string_lossy()));
            std::fs::create_dir_all(www.join("cgi-bin")).unwrap();
            let script = www.join("cgi-bin/ip");
            std::fs::write(
                &script,
                "#!/bin/busybox sh\necho 'Content-Type: text/plain'\necho\necho \"$REMOTE_ADDR\"\n",
            )
            .unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
            let child = Self::command(ns, "/bin/busybox")
                .args(["httpd", "-f", "-p", "0.0.0.0:80", "-h"])
                .arg(&www)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            self.children.push(child);
            for _ in 0..100 {
                if self.fetch(ns, "127.0.0.1:80").is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            panic!("httpd in {} did not start", ns.display());
        }

        /// The client address the server at `addr` saw, or None when it was not reached
        /// within a second.
        fn fetch(&self, ns: &Path, addr: &str) -> Option<String> {
            self.try_sh(
                ns,
                &format!("timeout 1 busybox wget -q -O - http://{addr}/cgi-bin/ip"),
            )
        }
    }

    fn network(bridge: &str, subnet: &str) -> NetworkRules {
        NetworkRules {
            bridge: bridge.into(),
            subnets: vec![subnet.parse().unwrap()],
            internal: false,
            masquerade: true,
            icc: true,
        }
    }

    fn publish(host_port: u16, container_ip: &str, bridge: &str) -> PortForward {
        PortForward {
            protocol: Protocol::Tcp,
            host_ip: None,
            host_port,
            container_ip: container_ip.parse().unwrap(),
            container_port: 80,
            bridge: bridge.into(),
        }
    }

    fn apply_in(ns: &Path, fw: &Arc<Firewall>, rules: &Ruleset) -> Result<()> {
        let (fw, rules) = (fw.clone(), rules.clone());
        crate::netns::run_in(ns, move || fw.apply(&rules))?
    }

    fn remove_in(ns: &Path, fw: &Arc<Firewall>) -> Result<()> {
        let fw = fw.clone();
        crate::netns::run_in(ns, move || fw.remove())?
    }

    /// (a) DNAT from outside, from the daemon's localhost and hairpin; masquerade outbound.
    #[test]
    fn publishes_ports_and_masquerades() {
        let mut lab = Lab::new();
        let (daemon, outside) = lab.daemon_and_outside();
        lab.bridge(&daemon, "br0", "10.77.0.1/24");
        lab.sh(&daemon, "sysctl -qw net.ipv4.conf.br0.route_localnet=1");
        let web = lab.container(&daemon, "br0", "vweb", "10.77.0.2/24");
        lab.httpd(&web);
        lab.httpd(&outside);

        // Without the table: nothing published, and outside cannot answer the container.
        assert_eq!(lab.fetch(&outside, "10.99.0.1:8080"), None);
        assert_eq!(lab.fetch(&web, "10.99.0.2"), None);

        let fw = Arc::new(Firewall::new("berthtest"));
        let rules = Ruleset {
            networks: vec![network("br0", "10.77.0.0/24")],
            ports: vec![publish(8080, "10.77.0.2", "br0")],
        };
        apply_in(&daemon, &fw, &rules).unwrap();

        // The client's address is kept for traffic from outside.
        assert_eq!(
            lab.fetch(&outside, "10.99.0.1:8080").as_deref(),
            Some("10.99.0.2")
        );
        // From the host itself: 127.0.0.1 is masqueraded (the container cannot answer it), a
        // host address is kept.
        assert_eq!(
            lab.fetch(&daemon, "127.0.0.1:8080").as_deref(),
            Some("10.77.0.1")
        );
        assert_eq!(
            lab.fetch(&daemon, "10.99.0.1:8080").as_deref(),
            Some("10.99.0.1")
        );
        // Hairpin: the container through the host address to itself.
        assert_eq!(
            lab.fetch(&web, "10.99.0.1:8080").as_deref(),
            Some("10.77.0.1")
        );
        // Outbound, masqueraded to the uplink address.
        assert_eq!(lab.fetch(&web, "10.99.0.2").as_deref(), Some("10.99.0.1"));

        // A host address other than the published one is not forwarded.
        let rules = Ruleset {
            ports: vec![PortForward {
                host_ip: Some("127.0.0.1".parse().unwrap()),
                ..publish(8080, "10.77.0.2", "br0")
            }],
            ..rules
        };
        apply_in(&daemon, &fw, &rules).unwrap();
        assert_eq!(
            lab.fetch(&daemon, "127.0.0.1:8080").as_deref(),
            Some("10.77.0.1")
        );
        assert_eq!(lab.fetch(&outside, "10.99.0.1:8080"), None);
        remove_in(&daemon, &fw).unwrap();
    }

    /// (b) An internal network neither reaches out nor is reached; a NATed one is reached from
    /// outside only through published ports; a network without masquerading stays routable.
    #[test]
    fn internal_and_inbound() {
        let mut lab = Lab::new();
        let (daemon, outside) = lab.daemon_and_outside();
        lab.bridge(&daemon, "br0", "10.77.0.1/24");
        let ctr = lab.container(&daemon, "br0", "vctr", "10.77.0.2/24");
        lab.httpd(&ctr);
        lab.httpd(&outside);
        // Give outside a route, so only the firewall decides.
        lab.sh(&outside, "ip route add 10.77.0.0/24 via 10.99.0.1");
        assert_eq!(lab.fetch(&ctr, "10.99.0.2").as_deref(), Some("10.77.0.2"));
        assert_eq!(
            lab.fetch(&outside, "10.77.0.2").as_deref(),
            Some("10.99.0.2")
        );

        let fw = Arc::new(Firewall::new("berthtest"));
        let internal = NetworkRules {
            internal: true,
            ..network("br0", "10.77.0.0/24")
        };
        let ruleset = |net: NetworkRules| Ruleset {
            networks: vec![net],
            ports: vec![publish(8080, "10.77.0.2", "br0")],
        };
        apply_in(&daemon, &fw, &ruleset(internal)).unwrap();
        assert_eq!(lab.fetch(&ctr, "10.99.0.2"), None);
        assert_eq!(lab.fetch(&outside, "10.77.0.2"), None);
        assert_eq!(lab.fetch(&outside, "10.99.0.1:8080"), None);

        apply_in(&daemon, &fw, &ruleset(network("br0", "10.77.0.0/24"))).unwrap();
        assert_eq!(lab.fetch(&ctr, "10.99.0.2").as_deref(), Some("10.99.0.1"));
        assert_eq!(lab.fetch(&outside, "10.77.0.2"), None);
        assert_eq!(
            lab.fetch(&outside, "10.99.0.1:8080").as_deref(),
            Some("10.99.0.2")
        );

        let routed = NetworkRules {
            masquerade: false,
            ..network("br0", "10.77.0.0/24")
        };
        apply_in(&daemon, &fw, &ruleset(routed)).unwrap();
        assert_eq!(lab.fetch(&ctr, "10.99.0.2").as_deref(), Some("10.77.0.2"));
        assert_eq!(
            lab.fetch(&outside, "10.77.0.2").as_deref(),
            Some("10.99.0.2")
        );
        remove_in(&daemon, &fw).unwrap();
    }

    /// (c) Bridges are isolated from each other except through published ports; icc=false
    /// separates the containers of one bridge.
    #[test]
    fn isolation_and_icc() {
        let mut lab = Lab::new();
        let daemon = lab.ns("daemon");
        lab.sh(&daemon, "sysctl -qw net.ipv4.ip_forward=1");
        lab.bridge(&daemon, "br1", "10.77.0.1/24");
        lab.bridge(&daemon, "br2", "10.78.0.1/24");
        let c1 = lab.container(&daemon, "br1", "vc1", "10.77.0.2/24");
        let c2 = lab.container(&daemon, "br2", "vc2", "10.78.0.2/24");
        let c3 = lab.container(&daemon, "br2", "vc3", "10.78.0.3/24");
        lab.httpd(&c2);
        assert_eq!(lab.fetch(&c1, "10.78.0.2").as_deref(), Some("10.77.0.2"));
        assert_eq!(lab.fetch(&c3, "10.78.0.2").as_deref(), Some("10.78.0.3"));

        let fw = Arc::new(Firewall::new("berthtest"));
        let mut rules = Ruleset {
            networks: vec![
                network("br1", "10.77.0.0/24"),
                network("br2", "10.78.0.0/24"),
            ],
            ports: vec![publish(8080, "10.78.0.2", "br2")],
        };
        apply_in(&daemon, &fw, &rules).unwrap();
        assert_eq!(lab.fetch(&c1, "10.78.0.2"), None);
        // Published ports are for everyone, other networks included (masqueraded to br2).
        assert_eq!(
            lab.fetch(&c1, "10.77.0.1:8080").as_deref(),
            Some("10.78.0.1")
        );
        assert_eq!(lab.fetch(&c3, "10.78.0.2").as_deref(), Some("10.78.0.3"));

        rules.networks[1].icc = false;
        apply_in(&daemon, &fw, &rules).unwrap();
        let bridged = lab.sh(&daemon, "sysctl -n net.bridge.bridge-nf-call-iptables");
        if bridged == "1" {
            assert_eq!(lab.fetch(&c3, "10.78.0.2"), None);
        } else {
            eprintln!("bridge-nf-call-iptables is off: icc=false cannot be enforced");
        }
        remove_in(&daemon, &fw).unwrap();
        assert_eq!(lab.fetch(&c1, "10.78.0.2").as_deref(), Some("10.77.0.2"));
    }

    fn our_forward_rules(lab: &Lab, ns: &Path) -> Vec<String> {
        let listing = lab.sh(ns, "iptables -w -S FORWARD");
        listing
            .lines()
            .filter(|l| l.contains("--comment berthtest"))
            .map(str::to_string)
            .collect()
    }

    /// (d) Docker's FORWARD DROP policy: per-bridge accepts are added, follow the bridges, and
    /// go away with the table.
    #[test]
    fn coexists_with_forward_drop_policy() {
        let mut lab = Lab::new();
        let (daemon, outside) = lab.daemon_and_outside();
        lab.bridge(&daemon, "br0", "10.77.0.1/24");
        lab.bridge(&daemon, "br1", "10.78.0.1/24");
        let web = lab.container(&daemon, "br0", "vweb", "10.77.0.2/24");
        lab.httpd(&web);
        lab.httpd(&outside);
        lab.sh(&daemon, "iptables -w -P FORWARD DROP && iptables -w -A FORWARD -j ACCEPT -m comment --comment other -i nothing0");

        let fw = Arc::new(Firewall::new("berthtest"));
        let one = Ruleset {
            networks: vec![network("br0", "10.77.0.0/24")],
            ports: vec![publish(8080, "10.77.0.2", "br0")],
        };
        let mut two = one.clone();
        two.networks.push(network("br1", "10.78.0.0/24"));

        apply_in(&daemon, &fw, &one).unwrap();
        assert_eq!(
            lab.fetch(&outside, "10.99.0.1:8080").as_deref(),
            Some("10.99.0.2")
        );
        assert_eq!(lab.fetch(&web, "10.99.0.2").as_deref(), Some("10.99.0.1"));
        let ours = our_forward_rules(&lab, &daemon);
        assert_eq!(ours.len(), 2, "{ours:?}");

        // Control: without those two rules the DROP policy stops the same traffic.
        for rule in &ours {
            lab.sh(
                &daemon,
                &format!("iptables -w {}", rule.replacen("-A", "-D", 1)),
            );
        }
        assert_eq!(lab.fetch(&outside, "10.99.0.1:8080"), None);
        assert_eq!(lab.fetch(&web, "10.99.0.2"), None);

        // A new Firewall (a restarted daemon) reads the chain and puts them back, once.
        let restarted = Arc::new(Firewall::new("berthtest"));
        apply_in(&daemon, &restarted, &one).unwrap();
        apply_in(&daemon, &Arc::new(Firewall::new("berthtest")), &one).unwrap();
        assert_eq!(our_forward_rules(&lab, &daemon), ours);
        assert_eq!(lab.fetch(&web, "10.99.0.2").as_deref(), Some("10.99.0.1"));

        // They follow the bridges in the ruleset.
        apply_in(&daemon, &restarted, &two).unwrap();
        assert_eq!(our_forward_rules(&lab, &daemon).len(), 4);
        apply_in(&daemon, &restarted, &one).unwrap();
        assert_eq!(our_forward_rules(&lab, &daemon), ours);

        remove_in(&daemon, &restarted).unwrap();
        assert!(our_forward_rules(&lab, &daemon).is_empty());
        let listing = lab.sh(&daemon, "iptables -w -S FORWARD");
        assert!(listing.contains("-P FORWARD DROP"), "{listing}");
        assert!(listing.contains("--comment other"), "{listing}");
    }

    /// (e) remove() leaves the ruleset exactly as it was, other tables included.
    #[test]
    fn remove_restores_the_ruleset() {
        let mut lab = Lab::new();
        let ns = lab.ns("host");
        lab.sh(
            &ns,
            "nft add table ip other && \
             nft add chain ip other filt '{ type filter hook forward priority filter; }' && \
             nft add rule ip other filt counter",
        );
        let before = lab.sh(&ns, "nft list ruleset");
        let fw = Arc::new(Firewall::new("berthtest"));
        let rules = Ruleset {
            networks: vec![network("br0", "10.77.0.0/24"), {
                let mut v6 = network("br1", "fd00:77::/64");
                v6.subnets.push("10.78.0.0/24".parse().unwrap());
                v6
            }],
            ports: vec![
                publish(8080, "10.77.0.2", "br0"),
                PortForward {
                    protocol: Protocol::Udp,
                    host_ip: Some("::".parse().unwrap()),
                    ..publish(5353, "fd00:77::2", "br1")
                },
                PortForward {
                    protocol: Protocol::Sctp,
                    host_ip: Some("10.0.0.1".parse().unwrap()),
                    ..publish(9000, "10.78.0.2", "br1")
                },
            ],
        };
        apply_in(&ns, &fw, &rules).unwrap();
        apply_in(&ns, &fw, &rules).unwrap();
        let applied = lab.sh(&ns, "nft list table inet berthtest");
        assert!(applied.contains("dnat ip6 to [fd00:77::2]:80"), "{applied}");
        assert!(
            applied.contains("ip daddr 10.0.0.1 sctp dport 9000 dnat ip to 10.78.0.2:80"),
            "{applied}"
        );
        assert!(lab.sh(&ns, "nft list ruleset").contains("table ip other"));
        remove_in(&ns, &fw).unwrap();
        assert_eq!(lab.sh(&ns, "nft list ruleset"), before);
        remove_in(&ns, &fw).unwrap();
    }

    /// Measures `apply` on the hot path (the bridges unchanged: one nft exec, no iptables).
    #[test]
    fn apply_time() {
        let mut lab = Lab::new();
        let ns = lab.ns("host");
        let fw = Arc::new(Firewall::new("berthtest"));
        let rules = Ruleset {
            networks: (0..3)
                .map(|i| network(&format!("br{i}"), &format!("10.{}.0.0/24", 70 + i)))
                .collect(),
            ports: (0..20)
                .map(|i| publish(8000 + i, &format!("10.70.0.{}", 2 + i), "br0"))
                .collect(),
        };
        apply_in(&ns, &fw, &rules).unwrap();
        let fw2 = fw.clone();
        let mut times = crate::netns::run_in(&ns, move || {
            (0..20)
                .map(|_| {
                    let start = Instant::now();
                    fw2.apply(&rules).unwrap();
                    start.elapsed()
                })
                .collect::<Vec<_>>()
        })
        .unwrap();
        times.sort();
        eprintln!(
            "apply (3 networks, 20 ports): median {:?}, min {:?}, max {:?}",
            times[10], times[0], times[19]
        );
        remove_in(&ns, &fw).unwrap();
    }

    #[test]
    fn invalid_port_forwards_are_refused() {
        let mixed = PortForward {
            host_ip: Some("::1".parse().unwrap()),
            ..publish(8080, "10.0.0.2", "br0")
        };
        let rules = Ruleset {
            networks: vec![],
            ports: vec![mixed],
        };
        assert!(matches!(
            validate(&rules),
            Err(NetworkError::Invalid { .. })
        ));
        let zero = Ruleset {
            networks: vec![],
            ports: vec![publish(0, "10.0.0.2", "br0")],
        };
        assert!(matches!(validate(&zero), Err(NetworkError::Invalid { .. })));
    }

    #[test]
    fn parses_only_our_forward_rules() {
        let listing = "-P FORWARD DROP\n\
            -A FORWARD -j DOCKER-USER\n\
            -A FORWARD -i br0 -m comment --comment berth -j ACCEPT\n\
            -A FORWARD -o br0 -m comment --comment berth -j ACCEPT\n\
            -A FORWARD -o br1 -m comment --comment other -j ACCEPT\n\
            -A FORWARD -i br2 -p tcp -m comment --comment berth -j ACCEPT\n";
        let chain = parse_forward(listing, "berth");
        assert!(chain.drop_policy);
        let ours: Vec<_> = chain
            .ours
            .iter()
            .map(|r| format!("{} {}", r.direction, r.bridge))
            .collect();
        assert_eq!(ours, ["-i br0", "-o br0"]);
        assert!(!parse_forward("-P FORWARD ACCEPT\n", "berth").drop_policy);
    }
}

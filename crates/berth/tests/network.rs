//! Networking: the default bridge, user-defined networks, published ports, embedded DNS,
//! isolation, live connect/disconnect, and cleanup. Each daemon runs in its own network
//! namespace (see `TestDaemon::netns`); `TestDaemon::outside` is a second machine on its
//! network, so nothing here touches the real host's links or rules.

use berth_harness::{ok, output, TestDaemon, HOST_UPLINK_IP, OUTSIDE_IP};
use std::net::UdpSocket;
use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_berth");

/// A busybox httpd serving `text` on port 80.
const HTTPD: &str =
    "mkdir -p /www && echo \"$MSG\" > /www/index.html && exec httpd -f -p 80 -h /www";

fn serve(d: &TestDaemon, name: &str, msg: &str, extra: &[&str]) -> String {
    let env = format!("MSG={msg}");
    let mut args = vec!["run", "-d", "--name", name, "-e", &env];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["busybox", "sh", "-c", HTTPD]);
    ok(&mut d.docker(&args)).trim().to_string()
}

/// An HTTP GET from inside a container (busybox's wget crashes in this static build; nc works).
fn http_get(host: &str, port: u16) -> String {
    format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {host} {port}")
}

/// The body of an HTTP GET done by `args` (a command printing the whole reply), if it worked.
fn body(out: &std::process::Output) -> Option<String> {
    let text = String::from_utf8_lossy(&out.stdout);
    let body = text.split("\r\n\r\n").nth(1)?.trim().to_string();
    (out.status.success() && text.starts_with("HTTP/1.1 200")).then_some(body)
}

/// curl from a namespace; retries briefly, as httpd needs a moment after `run -d` returns.
fn fetch(mut cmd: impl FnMut() -> Command, url: &str) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let out = output(cmd().args(["curl", "-s", "-m", "2", url]));
        if out.status.success() {
            return Some(String::from_utf8_lossy(&out.stdout).trim().to_string());
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn host_cmd(d: &TestDaemon) -> impl FnMut() -> Command + '_ {
    move || d.in_host_netns(&[])
}

fn links(d: &TestDaemon) -> String {
    let mut names: Vec<String> = ok(&mut d.in_host_netns(&["ip", "-o", "link", "show"]))
        .lines()
        .filter_map(|l| {
            l.split(':')
                .nth(1)
                .map(|n| n.trim().split('@').next().unwrap_or("").to_string())
        })
        .collect();
    names.sort();
    names.join(",")
}

/// The daemon's links once they equal `want` (veths are deleted in the background, within
/// a few tens of milliseconds), or as they are after 5 s.
fn links_settle(d: &TestDaemon, want: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = links(d);
        if now == want || Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn ruleset(d: &TestDaemon) -> String {
    ok(&mut d.in_host_netns(&["nft", "list", "ruleset"]))
}

#[test]
fn default_bridge_address_route_files_and_masquerade() {
    let d = TestDaemon::with_busybox(BIN).unwrap();
    let outside = d.outside().unwrap();
    ok(&mut d.docker(&["run", "-d", "--name", "c1", "busybox", "sleep", "300"]));
    let ip = d.inspect("c1", "{{.NetworkSettings.Networks.bridge.IPAddress}}");
    let gw = d.inspect("c1", "{{.NetworkSettings.Networks.bridge.Gateway}}");
    let mac = d.inspect("c1", "{{.NetworkSettings.Networks.bridge.MacAddress}}");
    let net_id = d.inspect("c1", "{{.NetworkSettings.Networks.bridge.NetworkID}}");
    assert!(ip.starts_with("172.17."), "ip {ip}");
    assert_eq!(
        d.inspect("c1", "{{.NetworkSettings.IPAddress}}"),
        ip,
        "legacy field"
    );
    assert_eq!(gw, "172.17.0.1");
    let o: Vec<u8> = ip.split('.').map(|x| x.parse().unwrap()).collect();
    assert_eq!(
        mac,
        format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3])
    );
    let bridge_id = ok(&mut d.docker(&["network", "inspect", "-f", "{{.Id}}", "bridge"]));
    assert_eq!(
        net_id,
        bridge_id.trim(),
        "NetworkID is the network's ID, not its name"
    );

    let route = ok(&mut d.docker(&["exec", "c1", "ip", "route"]));
    assert!(
        route.contains(&format!("default via {gw} dev eth0")),
        "{route}"
    );
    let addr = ok(&mut d.docker(&["exec", "c1", "ip", "addr", "show", "eth0"]));
    assert!(
        addr.contains(&format!("inet {ip}/16")) && addr.contains(&mac),
        "{addr}"
    );
    let hosts = ok(&mut d.docker(&["exec", "c1", "cat", "/etc/hosts"]));
    let hostname = d.inspect("c1", "{{.Config.Hostname}}");
    assert!(hosts.contains(&format!("{ip}\t{hostname}")), "{hosts}");
    let resolv = ok(&mut d.docker(&["exec", "c1", "cat", "/etc/resolv.conf"]));
    assert!(
        !resolv.contains("127.0.0.11"),
        "no embedded DNS on the default bridge: {resolv}"
    );
    assert!(links(&d).contains("berth0"));

    // The outside has no route back to 172.17/16: replies arrive only through masquerade.
    ok(&mut d.docker(&["exec", "c1", "ping", "-c", "1", "-W", "2", OUTSIDE_IP]));
    drop(outside);
}

#[test]
fn published_ports_from_outside_localhost_and_hairpin() {
    let d = TestDaemon::with_busybox(BIN).unwrap();
    let outside = d.outside().unwrap();
    serve(
        &d,
        "web",
        "hello-web",
        &["-p", "8080:80", "-p", "127.0.0.1::80", "--expose", "81"],
    );
    let url = format!("http://{HOST_UPLINK_IP}:8080/");
    assert_eq!(
        fetch(|| outside.run(&[]), &url).as_deref(),
        Some("hello-web"),
        "from outside"
    );
    assert_eq!(
        fetch(host_cmd(&d), "http://127.0.0.1:8080/").as_deref(),
        Some("hello-web"),
        "from the host's localhost"
    );
    // Hairpin: another container, and the container itself, through the host's address.
    let get = http_get(HOST_UPLINK_IP, 8080);
    let other = output(&mut d.docker(&["run", "--rm", "busybox", "sh", "-c", &get]));
    assert_eq!(body(&other).as_deref(), Some("hello-web"), "{other:?}");
    let me = output(&mut d.docker(&["exec", "web", "sh", "-c", &get]));
    assert_eq!(body(&me).as_deref(), Some("hello-web"), "{me:?}");

    let port = ok(&mut d.docker(&["port", "web"]));
    assert!(port.contains("80/tcp -> 0.0.0.0:8080"), "{port}");
    let local = d.inspect(
        "web",
        "{{(index (index .NetworkSettings.Ports \"80/tcp\") 1).HostPort}}",
    );
    let local_port: u16 = local.parse().unwrap();
    assert!(local_port > 1024);
    assert_eq!(
        fetch(host_cmd(&d), &format!("http://127.0.0.1:{local_port}/")).as_deref(),
        Some("hello-web")
    );
    // Exposed only: null, as dockerd.
    assert_eq!(
        d.inspect("web", "{{index .NetworkSettings.Ports \"81/tcp\"}}"),
        "<no value>"
    );
    let ps = ok(&mut d.docker(&["ps", "--format", "{{.Ports}}"]));
    assert!(ps.contains("0.0.0.0:8080->80/tcp"), "{ps}");
    let by_port = ok(&mut d.docker(&[
        "ps",
        "-f",
        "publish=8080",
        "-f",
        "expose=81",
        "--format",
        "{{.Names}}",
    ]));
    assert_eq!(by_port.trim(), "web");
    let by_net = ok(&mut d.docker(&["ps", "-f", "network=bridge", "--format", "{{.Names}}"]));
    assert_eq!(by_net.trim(), "web");

    // -P publishes exposed ports on ephemeral host ports.
    ok(&mut d.docker(&[
        "run", "-d", "--name", "all", "-P", "--expose", "80", "-e", "MSG=all", "busybox", "sh",
        "-c", HTTPD,
    ]));
    let p = d.inspect(
        "all",
        "{{(index (index .NetworkSettings.Ports \"80/tcp\") 0).HostPort}}",
    );
    assert_eq!(
        fetch(
            || outside.run(&[]),
            &format!("http://{HOST_UPLINK_IP}:{p}/")
        )
        .as_deref(),
        Some("all")
    );

    // A taken port: the start fails like Docker's and leaves no interface behind.
    let before = links(&d);
    let out = output(&mut d.docker(&[
        "run", "-d", "--name", "clash", "-p", "8080:80", "busybox", "sleep", "9",
    ]));
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("port is already allocated"),
        "{out:?}"
    );
    assert_eq!(links_settle(&d, &before), before, "nothing half-configured");
    // A port held by a host process is refused the same way.
    let _held =
        berth_harness::run_in_netns(&d.netns, || std::net::TcpListener::bind("0.0.0.0:8181"))
            .unwrap()
            .unwrap();
    let out = output(&mut d.docker(&["run", "--rm", "-p", "8181:80", "busybox", "true"]));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("port is already allocated"),
        "{out:?}"
    );

    ok(&mut d.docker(&["rm", "-f", "web", "all", "clash"]));
    let rules = ruleset(&d);
    assert!(
        !rules.contains("dnat ip to"),
        "the DNAT rules went with the containers: {rules}"
    );
}

/// A minimal DNS server that answers every A query with 10.9.8.7.
fn fake_upstream(sock: UdpSocket) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok((n, peer)) = sock.recv_from(&mut buf) {
            if n < 12 {
                continue;
            }
            let q = &buf[..n];
            let mut r = q[..2].to_vec();
            r.extend_from_slice(&[0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]);
            r.extend_from_slice(&q[12..]);
            r.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 9, 8, 7]);
            let _ = sock.send_to(&r, peer);
        }
    });
}

#[test]
fn user_networks_dns_isolation_and_live_connect() {
    let d = TestDaemon::with_busybox(BIN).unwrap();
    let outside = d.outside().unwrap();
    ok(&mut d.docker(&[
        "network",
        "create",
        "--subnet",
        "10.123.0.0/24",
        "--label",
        "team=a",
        "front",
    ]));
    ok(&mut d.berth(&["network", "create", "back"]));
    ok(&mut d.docker(&["network", "create", "--internal", "vault"]));
    serve(
        &d,
        "web",
        "hello-front",
        &["--network", "front", "--network-alias", "websvc"],
    );
    let web_ip = d.inspect("web", "{{.NetworkSettings.Networks.front.IPAddress}}");
    assert!(web_ip.starts_with("10.123.0."), "{web_ip}");
    let names = d.inspect("web", "{{.NetworkSettings.Networks.front.DNSNames}}");
    assert!(names.contains("web") && names.contains("websvc"), "{names}");

    let lookup = |net: &str, name: &str| {
        output(&mut d.docker(&["run", "--rm", "--network", net, "busybox", "nslookup", name]))
    };
    for name in ["web", "websvc", "WEB"] {
        let out = lookup("front", name);
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(&web_ip),
            "{name}: {out:?}"
        );
    }
    let resolv = ok(&mut d.docker(&[
        "run",
        "--rm",
        "--network",
        "front",
        "busybox",
        "cat",
        "/etc/resolv.conf",
    ]));
    assert!(resolv.contains("nameserver 127.0.0.11"), "{resolv}");
    // Names are network-scoped, and the default bridge has no DNS.
    assert!(!String::from_utf8_lossy(&lookup("back", "web").stdout).contains(&web_ip));
    assert!(!String::from_utf8_lossy(&lookup("bridge", "web").stdout).contains(&web_ip));

    // Other names go to the container's resolvers (here a fake one on the outside machine).
    let up = berth_harness::run_in_netns(&outside.netns, || UdpSocket::bind((OUTSIDE_IP, 53)))
        .unwrap()
        .unwrap();
    fake_upstream(up);
    let out = output(&mut d.docker(&[
        "run",
        "--rm",
        "--network",
        "front",
        "--dns",
        OUTSIDE_IP,
        "busybox",
        "nslookup",
        "elsewhere.example",
    ]));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("10.9.8.7"),
        "{out:?}"
    );

    // Isolation between networks; no way out of an internal one.
    let get = http_get(&web_ip, 80);
    let wget = |net: &str| {
        output(&mut d.docker(&["run", "--rm", "--network", net, "busybox", "sh", "-c", &get]))
    };
    assert_eq!(body(&wget("front")).as_deref(), Some("hello-front"));
    assert_eq!(body(&wget("back")), None, "back reaches front");
    let out = output(&mut d.docker(&[
        "run",
        "--rm",
        "--network",
        "vault",
        "busybox",
        "ping",
        "-c",
        "1",
        "-W",
        "1",
        OUTSIDE_IP,
    ]));
    assert!(!out.status.success(), "internal network got out");

    // Live connect and disconnect.
    ok(&mut d.docker(&[
        "run",
        "-d",
        "--name",
        "client",
        "--network",
        "back",
        "busybox",
        "sleep",
        "300",
    ]));
    let fetch_web = || {
        body(&output(
            &mut d.docker(&["exec", "client", "sh", "-c", &get]),
        ))
    };
    assert_eq!(fetch_web(), None);
    ok(&mut d.docker(&["network", "connect", "--alias", "cli", "front", "client"]));
    assert_eq!(fetch_web().as_deref(), Some("hello-front"));
    let ifs = ok(&mut d.docker(&["exec", "client", "ip", "-o", "link"]));
    assert!(ifs.contains("eth1"), "{ifs}");
    let out = output(&mut d.docker(&["exec", "web", "nslookup", "cli"]));
    assert!(
        out.status.success(),
        "alias given at connect resolves: {out:?}"
    );
    let inspect = ok(&mut d.docker(&["network", "inspect", "front"]));
    assert!(
        inspect.contains("\"Name\": \"client\"") && inspect.contains("\"Name\": \"web\""),
        "{inspect}"
    );
    ok(&mut d.docker(&["network", "disconnect", "front", "client"]));
    assert_eq!(fetch_web(), None, "still connected");

    // Fixed addresses on user subnets; refused elsewhere.
    ok(&mut d.docker(&[
        "run",
        "-d",
        "--name",
        "fixed",
        "--network",
        "front",
        "--ip",
        "10.123.0.77",
        "busybox",
        "sleep",
        "300",
    ]));
    assert_eq!(
        d.inspect("fixed", "{{.NetworkSettings.Networks.front.IPAddress}}"),
        "10.123.0.77"
    );
    let out = output(&mut d.docker(&[
        "run",
        "--rm",
        "--network",
        "back",
        "--ip",
        "10.0.0.9",
        "busybox",
        "true",
    ]));
    assert!(!out.status.success());

    // Removing a network in use is refused; filters work.
    let out = output(&mut d.docker(&["network", "rm", "front"]));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("active endpoints"),
        "{out:?}"
    );
    let ls = ok(&mut d.docker(&[
        "network",
        "ls",
        "--filter",
        "label=team=a",
        "--format",
        "{{.Name}}",
    ]));
    assert_eq!(ls.trim(), "front");
    let builtin = ok(&mut d.docker(&[
        "network",
        "ls",
        "-f",
        "type=builtin",
        "--format",
        "{{.Name}}",
    ]));
    assert_eq!(
        builtin.split_whitespace().collect::<Vec<_>>(),
        ["bridge", "host", "none"]
    );
}

#[test]
fn bad_network_input_changes_nothing() {
    let d = TestDaemon::with_busybox(BIN).unwrap();
    ok(&mut d.docker(&["network", "create", "--subnet", "10.55.0.0/16", "one"]));
    let before = ok(&mut d.docker(&["network", "ls", "-q"]));
    for (args, needle) in [
        (vec!["--subnet", "10.55.3.0/24", "two"], "overlaps"),
        (vec!["--subnet", "10.56.0.0/33", "two"], "invalid"),
        (vec!["--subnet", "nonsense", "two"], "invalid"),
        (
            vec!["--subnet", "10.57.0.0/16", "--gateway", "10.99.0.1", "two"],
            "gateway",
        ),
        (
            vec![
                "--subnet",
                "10.57.0.0/16",
                "--ip-range",
                "10.58.0.0/24",
                "two",
            ],
            "range",
        ),
        (vec!["one"], "already exists"),
    ] {
        let mut a = vec!["network", "create"];
        a.extend(args.iter());
        let out = output(&mut d.docker(&a));
        assert!(!out.status.success(), "{a:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{a:?}: {err}");
    }
    let out = output(&mut d.docker(&["network", "rm", "bridge"]));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("pre-defined"),
        "{out:?}"
    );
    let out = output(&mut d.docker(&[
        "run",
        "--rm",
        "--network",
        "one",
        "--network-alias",
        "bad alias",
        "busybox",
        "true",
    ]));
    assert!(!out.status.success());
    // The docker CLI takes any 404 from create for a missing image, so ask the API directly.
    let req = br#"{"Image":"busybox","HostConfig":{"NetworkMode":"missing"}}"#;
    let (status, _, reply) =
        berth_harness::http(&d.socket, "POST", "/v1.47/containers/create", Some(req)).unwrap();
    assert_eq!(status, 404);
    assert!(String::from_utf8_lossy(&reply).contains("network missing not found"));
    assert_eq!(ok(&mut d.docker(&["network", "ls", "-q"])), before);
    assert!(d.ping());
}

#[test]
fn network_modes_and_run_flags() {
    let d = TestDaemon::with_busybox(BIN).unwrap();
    let none = ok(&mut d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "ip",
        "-o",
        "link",
    ]));
    assert_eq!(none.lines().count(), 1, "only lo: {none}");
    let host = ok(&mut d.docker(&[
        "run",
        "--rm",
        "--network",
        "host",
        "busybox",
        "ip",
        "-o",
        "link",
    ]));
    assert!(host.contains("berth0"), "the daemon's namespace: {host}");

    ok(&mut d.docker(&[
        "run",
        "-d",
        "--name",
        "aa",
        "--hostname",
        "alpha",
        "--mac-address",
        "02:42:de:ad:be:ef",
        "--add-host",
        "db.local:10.1.2.3",
        "--dns",
        "10.0.0.53",
        "--dns-search",
        "corp.example",
        "busybox",
        "sleep",
        "300",
    ]));
    let a_ip = d.inspect("aa", "{{.NetworkSettings.IPAddress}}");
    let files = ok(&mut d.docker(&[
        "exec",
        "aa",
        "cat",
        "/etc/hosts",
        "/etc/resolv.conf",
        "/etc/hostname",
    ]));
    for want in [
        "10.1.2.3\tdb.local",
        &format!("{a_ip}\talpha"),
        "nameserver 10.0.0.53",
        "search corp.example",
        "alpha",
    ] {
        assert!(files.contains(want), "{want:?} in {files}");
    }
    let link = ok(&mut d.docker(&["exec", "aa", "cat", "/sys/class/net/eth0/address"]));
    assert_eq!(link.trim(), "02:42:de:ad:be:ef");

    let shared = ok(&mut d.docker(&[
        "run",
        "--rm",
        "--network",
        "container:aa",
        "busybox",
        "ip",
        "-o",
        "-4",
        "addr",
        "show",
        "eth0",
    ]));
    assert!(shared.contains(&a_ip), "{shared}");

    // --link on the default bridge writes /etc/hosts.
    let hosts = ok(&mut d.docker(&[
        "run",
        "--rm",
        "--link",
        "aa:db",
        "busybox",
        "cat",
        "/etc/hosts",
    ]));
    assert!(
        hosts
            .lines()
            .any(|l| l.starts_with(&a_ip) && l.contains("db")),
        "{hosts}"
    );
}

#[test]
fn cleanup_and_restart_keep_the_host_clean() {
    let mut d = TestDaemon::with_busybox(BIN).unwrap();
    let outside = d.outside().unwrap();
    let links_before = links(&d);
    let rules_before = ruleset(&d);

    ok(&mut d.docker(&["network", "create", "tmpnet"]));
    ok(&mut d.docker(&[
        "run",
        "-d",
        "--name",
        "tt",
        "--network",
        "tmpnet",
        "-p",
        "8090:80",
        "busybox",
        "sleep",
        "300",
    ]));
    ok(&mut d.docker(&["rm", "-f", "tt"]));
    ok(&mut d.docker(&["network", "rm", "tmpnet"]));
    assert_eq!(links_settle(&d, &links_before), links_before);
    assert_eq!(ruleset(&d), rules_before);

    // A daemon crash and restart keeps running containers reachable, by port and by name.
    ok(&mut d.docker(&["network", "create", "app"]));
    serve(
        &d,
        "web",
        "survivor",
        &["--network", "app", "-p", "8082:80"],
    );
    ok(&mut d.docker(&[
        "run",
        "-d",
        "--name",
        "cli",
        "--network",
        "app",
        "busybox",
        "sleep",
        "300",
    ]));
    let web_ip = d.inspect("web", "{{.NetworkSettings.Networks.app.IPAddress}}");
    let url = format!("http://{HOST_UPLINK_IP}:8082/");
    assert_eq!(
        fetch(|| outside.run(&[]), &url).as_deref(),
        Some("survivor")
    );
    d.kill9();
    d.restart().unwrap();
    assert_eq!(
        fetch(|| outside.run(&[]), &url).as_deref(),
        Some("survivor"),
        "port after restart"
    );
    let out = output(&mut d.docker(&["exec", "cli", "nslookup", "web"]));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&web_ip),
        "DNS after restart: {out:?}"
    );
    ok(&mut d.docker(&[
        "run",
        "-d",
        "--name",
        "new",
        "--network",
        "app",
        "busybox",
        "sleep",
        "300",
    ]));
    assert_ne!(
        d.inspect("new", "{{.NetworkSettings.Networks.app.IPAddress}}"),
        web_ip,
        "allocations survived"
    );
    let out = output(&mut d.docker(&["run", "--rm", "-p", "8082:80", "busybox", "true"]));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("port is already allocated"),
        "{out:?}"
    );

    // With nothing running, a daemon shutdown leaves no bridge and no rule.
    ok(&mut d.docker(&["rm", "-f", "web", "cli", "new"]));
    d.stop();
    assert!(!links(&d).contains("berth0"), "{}", links(&d));
    assert!(!ruleset(&d).contains("table inet berth"));
}

#[test]
fn coexists_with_docker_rules_ipv6_and_busy_subnets() {
    let d = TestDaemon::with_busybox(BIN).unwrap();
    let outside = d.outside().unwrap();
    // Another engine's bridge on 172.18/16 (as docker0 often is on 172.17/16), and dockerd's
    // FORWARD policy.
    for cmd in [
        &["ip", "link", "add", "other0", "type", "bridge"][..],
        &["ip", "addr", "add", "172.18.0.1/16", "dev", "other0"],
        &["iptables", "-P", "FORWARD", "DROP"],
    ] {
        ok(&mut d.in_host_netns(cmd));
    }
    ok(&mut d.docker(&["network", "create", "auto"]));
    let subnet = ok(&mut d.docker(&[
        "network",
        "inspect",
        "-f",
        "{{(index .IPAM.Config 0).Subnet}}",
        "auto",
    ]));
    assert_eq!(
        subnet.trim(),
        "172.19.0.0/16",
        "berth0 has 172.17, another engine 172.18"
    );

    serve(
        &d,
        "web",
        "through-drop",
        &["--network", "auto", "-p", "8083:80"],
    );
    let url = format!("http://{HOST_UPLINK_IP}:8083/");
    assert_eq!(
        fetch(|| outside.run(&[]), &url).as_deref(),
        Some("through-drop")
    );
    ok(&mut d.docker(&[
        "run",
        "--rm",
        "--network",
        "auto",
        "busybox",
        "ping",
        "-c",
        "1",
        "-W",
        "2",
        OUTSIDE_IP,
    ]));
    let forward = ok(&mut d.in_host_netns(&["iptables", "-S", "FORWARD"]));
    assert!(
        forward.starts_with("-P FORWARD DROP"),
        "the policy is left alone: {forward}"
    );

    ok(&mut d.docker(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "fd00:beef::/64",
        "six",
    ]));
    ok(&mut d.docker(&[
        "run",
        "-d",
        "--name",
        "v6a",
        "--network",
        "six",
        "busybox",
        "sleep",
        "300",
    ]));
    let v6 = d.inspect("v6a", "{{.NetworkSettings.Networks.six.GlobalIPv6Address}}");
    assert!(v6.starts_with("fd00:beef::"), "{v6}");
    ok(&mut d.docker(&[
        "run",
        "--rm",
        "--network",
        "six",
        "busybox",
        "ping",
        "-6",
        "-c",
        "1",
        "-W",
        "2",
        &v6,
    ]));
    let out = output(&mut d.docker(&[
        "run",
        "--rm",
        "--network",
        "six",
        "busybox",
        "nslookup",
        "v6a",
    ]));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&v6),
        "AAAA by name: {out:?}"
    );
}
